$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1 serialises some arrays as {"value": [...], "Count": n} because of an
# extended Count property on System.Array; removing that type data avoids it (reported).
try { Remove-TypeData -TypeName 'System.Array' -ErrorAction SilentlyContinue } catch { $null = $_ }

function Read-SectigoPayload {
    # The only input: base64 of UTF-8 JSON. Values are data; they never become script text.
    # "-Payload -" reads it from standard input instead (keeps secrets off a command line).
    param([Parameter(Mandatory = $true)][string]$Encoded)
    Assert-SectigoNativeProcess
    if ($Encoded -eq '-') { $Encoded = [System.Console]::In.ReadToEnd().Trim() }
    $bytes = [System.Convert]::FromBase64String($Encoded)
    $json = [System.Text.Encoding]::UTF8.GetString($bytes)
    return (ConvertFrom-Json -InputObject $json)
}

function Stop-Sectigo {
    param([Parameter(Mandatory = $true)][string]$Message, [string]$Category = 'InvalidOperation')
    $exception = New-Object -TypeName System.InvalidOperationException -ArgumentList $Message
    $exception.Data['sectigo_category'] = $Category
    throw $exception
}

function Assert-SectigoNativeProcess {
    # A 32-bit PowerShell on 64-bit Windows sees the WOW64 registry and file system views
    # (another HKLM\SOFTWARE, SysWOW64): what it observes or changes is not what IIS uses.
    if ([System.Environment]::Is64BitOperatingSystem -and -not [System.Environment]::Is64BitProcess) {
        Stop-Sectigo -Message 'this is a 32-bit PowerShell on 64-bit Windows: it sees another registry view; run the 64-bit powershell.exe (System32, or Sysnative from a 32-bit process)' -Category 'InvalidOperation'
    }
}

function Assert-SectigoElevated {
    # Changing LocalMachine stores, IIS or services needs an elevated Administrators token; a
    # filtered (UAC) token fails part-way, sometimes as "not found".
    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object -TypeName System.Security.Principal.WindowsPrincipal -ArgumentList $identity
    if (-not $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)) {
        $message = 'this account is not running elevated (not in the Administrators role, or a filtered UAC token): run from an elevated PowerShell, or over WinRM with an administrator account'
        Stop-Sectigo -Message $message -Category 'PermissionDenied'
    }
}

function Test-SectigoNotFound {
    # Whether an error (an ErrorRecord or an exception) is "the store/key does not exist":
    # HRESULT 0x80070002 (ERROR_FILE_NOT_FOUND) anywhere in the exception chain. Access denied
    # (0x80070005) and everything else is not "absent".
    param([Parameter(Mandatory = $true)]$Problem)
    $exception = $Problem
    if ($Problem -is [System.Management.Automation.ErrorRecord]) { $exception = $Problem.Exception }
    while ($null -ne $exception) {
        if ($exception.HResult -eq -2147024894) { return $true }
        $exception = $exception.InnerException
    }
    return $false
}

function New-SectigoError {
    param([Parameter(Mandatory = $true)]$Record)
    $exception = $Record.Exception
    $info = [ordered]@{
        message  = [string]$Record
        category = [string]$Record.CategoryInfo.Category
        type     = $null
        hresult  = $null
        line     = $null
    }
    if ($null -ne $exception) {
        $info.message = [string]$exception.Message
        # PowerShell wraps .NET errors (MethodInvocationException): report the real one.
        $info.type = $exception.GetBaseException().GetType().FullName
        $info.hresult = $exception.GetBaseException().HResult
        if ($exception.Data.Contains('sectigo_category')) {
            $info.category = [string]$exception.Data['sectigo_category']
        }
    }
    if ($null -ne $Record.InvocationInfo) { $info.line = $Record.InvocationInfo.ScriptLineNumber }
    return $info
}

function Write-SectigoResult {
    # Writes the one JSON document of the contract: {"ok", "changed", "data", "error"}.
    param([bool]$Ok, [bool]$Changed, $Data, $ErrorInfo)
    $document = [ordered]@{ ok = $Ok; changed = $Changed; data = $Data; error = $ErrorInfo }
    try {
        $json = ConvertTo-Json -InputObject $document -Depth 10 -Compress
    } catch {
        $problem = [ordered]@{
            message  = 'the result could not be converted to JSON: ' + $_.Exception.Message
            category = 'InvalidResult'
        }
        $fallback = [ordered]@{ ok = $false; changed = $Changed; data = $null; error = $problem }
        $json = ConvertTo-Json -InputObject $fallback -Depth 10 -Compress
    }
    # Escape every non-ASCII character as \uXXXX: the document then survives any console code
    # page (powershell.exe -File writes stdout in the OEM code page).
    $evaluator = [System.Text.RegularExpressions.MatchEvaluator] {
        param($match)
        '\u{0:x4}' -f [int][char]$match.Value
    }
    $json = [System.Text.RegularExpressions.Regex]::Replace($json, '[^\x00-\x7F]', $evaluator)
    Write-Output $json
}

function Get-SectigoThumbprint {
    # Python normalises thumbprints; the host re-checks the form before using one in a path.
    param([AllowNull()][AllowEmptyString()][string]$Value)
    if ($Value -cnotmatch '^[0-9A-F]{40}$') {
        Stop-Sectigo -Message ('not a SHA-1 thumbprint (40 upper-case hex digits): ' + $Value) -Category 'InvalidArgument'
    }
    return $Value
}

function Assert-SectigoChoice {
    param([string]$Name, [AllowNull()][AllowEmptyString()][string]$Value, [string[]]$Allowed)
    if ($Allowed -cnotcontains $Value) {
        $message = '{0} must be one of {1}, not "{2}"' -f $Name, ($Allowed -join ', '), $Value
        Stop-Sectigo -Message $message -Category 'InvalidArgument'
    }
}

function Open-SectigoStore {
    # In-memory .NET store access: nothing is written to disk except the store change itself.
    param([string]$Location, [string]$Name, [switch]$Write, [switch]$MustExist)
    $storeLocation = [System.Security.Cryptography.X509Certificates.StoreLocation]$Location
    $store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList $Name, $storeLocation
    $flags = [int][System.Security.Cryptography.X509Certificates.OpenFlags]::ReadOnly
    if ($Write) { $flags = [int][System.Security.Cryptography.X509Certificates.OpenFlags]::ReadWrite }
    if ($MustExist) { $flags = $flags -bor [int][System.Security.Cryptography.X509Certificates.OpenFlags]::OpenExistingOnly }
    $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]$flags)
    return $store
}

function Find-SectigoCertificate {
    # The exact thumbprint in one opened store, or $null.
    param($Store, [string]$Thumbprint)
    foreach ($certificate in $Store.Certificates) {
        if ($certificate.Thumbprint.ToUpperInvariant() -eq $Thumbprint) { return $certificate }
    }
    return $null
}

$SectigoKeyCache = @{}

function Test-SectigoKeyHolds {
    # Whether the registry key (or folder) $Path has a subkey (or file) named $Thumbprint.
    # Each key is listed once per run.
    param([string]$Path, [string]$Thumbprint)
    if (-not $SectigoKeyCache.ContainsKey($Path)) {
        $names = New-Object -TypeName 'System.Collections.Generic.HashSet[string]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
        if (Test-Path -LiteralPath $Path) {
            # -ErrorAction Stop: a key that cannot be read (access denied) is an error, never
            # "holds nothing" (which would make a removal report success and remove nothing).
            foreach ($item in @(Get-ChildItem -LiteralPath $Path -ErrorAction Stop)) {
                $null = $names.Add([string]$item.PSChildName)
            }
        }
        $SectigoKeyCache[$Path] = $names
    }
    return $SectigoKeyCache[$Path].Contains($Thumbprint)
}

function Get-SectigoPhysicalStores {
    # Registry keys behind the logical store (reported by public documentation, unverified here):
    # .Default, .AuthRoot (LocalMachine Root only), .GroupPolicy, .Enterprise. A CurrentUser
    # certificate inherited from the machine stores matches none of the user keys: no entry.
    param([string]$Location, [string]$StoreName, [string]$Thumbprint)
    $found = New-Object -TypeName System.Collections.ArrayList
    foreach ($candidate in (Get-SectigoPhysicalLocations -Location $Location -StoreName $StoreName)) {
        if ((Test-SectigoKeyHolds -Path $candidate[1] -Thumbprint $Thumbprint) -and -not $found.Contains($candidate[0])) {
            $null = $found.Add($candidate[0])
        }
    }
    return , ([string[]]$found.ToArray())
}

function Get-SectigoPhysicalLocations {
    # (physical store name, registry key or folder) pairs behind one logical store.
    param([string]$Location, [string]$StoreName)
    $machine = New-Object -TypeName System.Collections.ArrayList
    $null = $machine.Add(@('.Default', "HKLM:\SOFTWARE\Microsoft\SystemCertificates\$StoreName\Certificates"))
    if ($StoreName -eq 'Root') {
        $null = $machine.Add(@('.AuthRoot', 'HKLM:\SOFTWARE\Microsoft\SystemCertificates\AuthRoot\Certificates'))
    }
    $null = $machine.Add(@('.GroupPolicy', "HKLM:\SOFTWARE\Policies\Microsoft\SystemCertificates\$StoreName\Certificates"))
    $null = $machine.Add(@('.Enterprise', "HKLM:\SOFTWARE\Microsoft\EnterpriseCertificates\$StoreName\Certificates"))
    $candidates = $machine
    if ($Location -ne 'LocalMachine') {
        $candidates = New-Object -TypeName System.Collections.ArrayList
        $null = $candidates.Add(@('.Default', "HKCU:\SOFTWARE\Microsoft\SystemCertificates\$StoreName\Certificates"))
        if ($null -ne $env:APPDATA) {
            $null = $candidates.Add(@('.Default', (Join-Path -Path $env:APPDATA -ChildPath "Microsoft\SystemCertificates\$StoreName\Certificates")))
        }
        $null = $candidates.Add(@('.GroupPolicy', "HKCU:\SOFTWARE\Policies\Microsoft\SystemCertificates\$StoreName\Certificates"))
    }
    return , $candidates
}

function Remove-SectigoPhysicalCopy {
    # Deletes the copy of $Thumbprint in ONE physical store (its registry key, or its file in
    # the roaming user store) and nothing else. X509Store.Remove on the logical store would
    # delete the first match across every physical store behind it (.GroupPolicy and
    # .Enterprise included). Returns how many keys or files were deleted.
    param([string]$Location, [string]$StoreName, [string]$PhysicalStore, [string]$Thumbprint)
    if (@('.Default', '.AuthRoot') -cnotcontains $PhysicalStore) {
        $message = 'refusing to remove from physical store {0}: policy would put it back; change the policy instead' -f $PhysicalStore
        Stop-Sectigo -Message $message -Category 'Refused'
    }
    $deleted = 0
    foreach ($candidate in (Get-SectigoPhysicalLocations -Location $Location -StoreName $StoreName)) {
        if ($candidate[0] -cne $PhysicalStore) { continue }
        $item = Join-Path -Path $candidate[1] -ChildPath $Thumbprint
        if (Test-Path -LiteralPath $item) {
            Remove-Item -LiteralPath $item -Recurse -Force
            $deleted += 1
        }
    }
    $SectigoKeyCache.Clear()
    return $deleted
}

function Get-SectigoCertificateBackup {
    # Everything needed to put a certificate back: DER, store, physical stores, friendly name.
    param($Certificate, [string]$Location, [string]$StoreName, [AllowNull()]$PhysicalStore)
    # physical_store: the one asked for, else the first one the registry shows (or null).
    $thumbprint = $Certificate.Thumbprint.ToUpperInvariant()
    if ($null -eq $PhysicalStore) {
        # The function returns one string[] (unary comma): index it, never pipe it.
        $physicalStores = Get-SectigoPhysicalStores -Location $Location -StoreName $StoreName -Thumbprint $thumbprint
        if ($physicalStores.Count -gt 0) { $PhysicalStore = [string]$physicalStores[0] }
    }
    return [ordered]@{
        der_b64         = [System.Convert]::ToBase64String($Certificate.RawData)
        thumbprint      = $thumbprint
        store_location  = $Location
        store_name      = $StoreName
        physical_store  = $PhysicalStore
        friendly_name   = [string]$Certificate.FriendlyName
        has_private_key = [bool]$Certificate.HasPrivateKey
    }
}

function Invoke-SectigoNative {
    # Runs a native tool with literal arguments (templates never pass payload values to one),
    # stderr merged into the captured output, and returns its exit code and text.
    param([Parameter(Mandatory = $true)][string]$FilePath, [string[]]$Arguments = @())
    if (-not (Test-Path -LiteralPath $FilePath)) {
        Stop-Sectigo -Message ('not found: ' + $FilePath) -Category 'NotFound'
    }
    # A native tool's stderr must not become a terminating error under 'Stop'.
    $ErrorActionPreference = 'Continue'
    $lines = & $FilePath @Arguments 2>&1 | ForEach-Object { [string]$_ }
    $exitCode = $LASTEXITCODE
    return [ordered]@{ exit_code = $exitCode; output = (@($lines) -join "`n") }
}
