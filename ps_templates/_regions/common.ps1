$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1 serialises some arrays as {"value": [...], "Count": n} because of an
# extended Count property on System.Array; removing that type data avoids it (reported).
try { Remove-TypeData -TypeName 'System.Array' -ErrorAction SilentlyContinue } catch { $null = $_ }

function Read-SectigoPayload {
    # The only input: base64 of UTF-8 JSON. Values are data; they never become script text.
    # "-Payload -" reads it from standard input instead (keeps secrets off a command line).
    param([Parameter(Mandatory = $true)][string]$Encoded)
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
        $info.type = $exception.GetType().FullName
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
            foreach ($item in @(Get-ChildItem -LiteralPath $Path -ErrorAction SilentlyContinue)) {
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
    $found = New-Object -TypeName System.Collections.ArrayList
    foreach ($candidate in $candidates) {
        if ((Test-SectigoKeyHolds -Path $candidate[1] -Thumbprint $Thumbprint) -and -not $found.Contains($candidate[0])) {
            $null = $found.Add($candidate[0])
        }
    }
    return , ([string[]]$found.ToArray())
}

function Get-SectigoCertificateBackup {
    # Everything needed to put a certificate back: DER, store, physical stores, friendly name.
    param($Certificate, [string]$Location, [string]$StoreName, [AllowNull()]$PhysicalStore)
    # physical_store: the one asked for, else the first one the registry shows (or null).
    $thumbprint = $Certificate.Thumbprint.ToUpperInvariant()
    if ($null -eq $PhysicalStore) {
        $PhysicalStore = @(Get-SectigoPhysicalStores -Location $Location -StoreName $StoreName -Thumbprint $thumbprint) | Select-Object -First 1
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
