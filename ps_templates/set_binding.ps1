<#
.SYNOPSIS
    sectigo_chain template "set_binding": create or update one IIS https binding.
.DESCRIPTION
    Payload: {"site", "ip": "*"|address, "port": int, "host": str, "thumbprint",
              "store_name": "My"|"WebHosting", "ssl_flags_set": int, "ssl_flags_clear": int,
              "reapply": bool}
    Finds the https binding "ip:port:host" of the site. If it exists, only its certificate hash,
    certificate store and the sslFlags bits in ssl_flags_set / ssl_flags_clear change; every
    other bit and attribute stays. If it does not exist, it is added. The bindings collection
    is never cleared. The certificate must already be in LocalMachine\<store_name> with a
    private key (re-checked). Nothing is committed when nothing differs, unless "reapply" is
    true: then the same certificate is written again and committed, so that IIS pushes the
    binding to HTTP.sys again (the first rung of verify's ladder; whether this refreshes the
    served chain on a given Windows build is reported, not verified).
    Backup: data.previous is the binding as it was (null if created).
    Uses Microsoft.Web.Administration in memory (no appcmd, no command-line arguments).
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
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
#endregion sectigo_chain common

#region sectigo_chain iis -- identical in every template that touches IIS (a test checks it)
function Get-SectigoServerManager {
    # Microsoft.Web.Administration in memory (no appcmd, no native arguments); $null without IIS.
    $path = Join-Path -Path $env:windir -ChildPath 'System32\inetsrv\Microsoft.Web.Administration.dll'
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    Add-Type -Path $path
    return (New-Object -TypeName Microsoft.Web.Administration.ServerManager)
}

function ConvertTo-SectigoHex {
    param($Bytes)
    if ($null -eq $Bytes -or $Bytes.Length -eq 0) { return $null }
    return ([System.BitConverter]::ToString([byte[]]$Bytes) -replace '-', '')
}

function Get-SectigoSslFlags {
    param($Binding)
    try { return [int]$Binding.GetAttributeValue('sslFlags') } catch { return 0 }
}

function Get-SectigoBindingRecord {
    param($Site, $Binding)
    # The contract's Binding; ip/port/host stay ''/0/'' for non-HTTP protocols (net.tcp, ...).
    $record = [ordered]@{
        site              = [string]$Site.Name
        protocol          = [string]$Binding.Protocol
        ip                = ''
        port              = 0
        host              = ''
        ssl_flags         = 0
        certificate_hash  = $null
        certificate_store = $null
    }
    if ($record.protocol -eq 'http' -or $record.protocol -eq 'https') {
        try {
            $information = [string]$Binding.BindingInformation
            $hostIndex = $information.LastIndexOf(':')
            $rest = $information.Substring(0, $hostIndex)
            $portIndex = $rest.LastIndexOf(':')
            $ip = $rest.Substring(0, $portIndex)
            if ($ip.StartsWith('[') -and $ip.EndsWith(']')) { $ip = $ip.Substring(1, $ip.Length - 2) }
            $record.ip = $ip
            $record.port = [int]$rest.Substring($portIndex + 1)
            $record.host = $information.Substring($hostIndex + 1)
        } catch { $null = $_ }
    }
    if ($record.protocol -eq 'https') {
        $record.ssl_flags = Get-SectigoSslFlags -Binding $Binding
        $record.certificate_hash = ConvertTo-SectigoHex -Bytes $Binding.CertificateHash
        $storeName = [string]$Binding.CertificateStoreName
        if ($storeName.Length -gt 0) { $record.certificate_store = $storeName }
    }
    return $record
}

function Get-SectigoBindingInformation {
    # "IP:port:host" as IIS stores it; an IPv6 address goes in brackets.
    param($Parameters)
    $ip = [string]$Parameters.ip
    if ($ip -ne '*' -and $ip.Contains(':')) { $ip = '[' + $ip + ']' }
    return ('{0}:{1}:{2}' -f $ip, [int]$Parameters.port, [string]$Parameters.host)
}

function Find-SectigoHttpsBinding {
    param($Site, [string]$Information)
    foreach ($binding in $Site.Bindings) {
        if ($binding.Protocol -eq 'https' -and $binding.BindingInformation -eq $Information) {
            return $binding
        }
    }
    return $null
}

function Get-SectigoSite {
    param($Manager, [string]$Name)
    foreach ($site in $Manager.Sites) {
        if ($site.Name -eq $Name) { return $site }
    }
    Stop-Sectigo -Message ('no IIS site named "' + $Name + '"') -Category 'NotFound'
}
#endregion sectigo_chain iis

# ---- template body
$p = $null
$changed = $false
$data = $null
$errorInfo = $null
$manager = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    $thumbprint = Get-SectigoThumbprint -Value ([string]$p.thumbprint)
    $storeName = [string]$p.store_name
    Assert-SectigoChoice -Name 'store_name' -Value $storeName -Allowed @('My', 'WebHosting')
    $setBits = [int]$p.ssl_flags_set
    $clearBits = [int]$p.ssl_flags_clear
    if (($setBits -band $clearBits) -ne 0) {
        Stop-Sectigo -Message 'ssl_flags_set and ssl_flags_clear overlap' -Category 'InvalidArgument'
    }
    $information = Get-SectigoBindingInformation -Parameters $p

    # Re-check: the certificate must be there, with its private key, before IIS points at it.
    $store = Open-SectigoStore -Location 'LocalMachine' -Name $storeName -MustExist
    try {
        $certificate = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
    } finally {
        $store.Close()
    }
    if ($null -eq $certificate) {
        Stop-Sectigo -Message ('{0} is not in LocalMachine\{1}' -f $thumbprint, $storeName) -Category 'NotFound'
    }
    if (-not $certificate.HasPrivateKey) {
        Stop-Sectigo -Message ('{0} in LocalMachine\{1} has no private key' -f $thumbprint, $storeName) -Category 'InvalidArgument'
    }

    $manager = Get-SectigoServerManager
    if ($null -eq $manager) { Stop-Sectigo -Message 'IIS is not installed' -Category 'NotFound' }
    $site = Get-SectigoSite -Manager $manager -Name ([string]$p.site)
    $hash = New-Object -TypeName byte[] -ArgumentList 20
    for ($i = 0; $i -lt 20; $i++) { $hash[$i] = [System.Convert]::ToByte($thumbprint.Substring(2 * $i, 2), 16) }
    $data = [ordered]@{ created = $false; previous = $null; current = $null }
    $binding = Find-SectigoHttpsBinding -Site $site -Information $information
    if ($null -eq $binding) {
        $binding = $site.Bindings.Add($information, $hash, $storeName)
        if ($setBits -ne 0) { $binding.SetAttributeValue('sslFlags', $setBits) }
        $data.created = $true
        $changed = $true
    } else {
        $data.previous = Get-SectigoBindingRecord -Site $site -Binding $binding
        $oldFlags = Get-SectigoSslFlags -Binding $binding
        $newFlags = ($oldFlags -bor $setBits) -band (-bnot $clearBits)
        if ($data.previous.certificate_hash -ne $thumbprint -or $data.previous.certificate_store -ne $storeName) {
            $binding.CertificateHash = $hash
            $binding.CertificateStoreName = $storeName
            $changed = $true
        }
        if ($newFlags -ne $oldFlags) {
            $binding.SetAttributeValue('sslFlags', $newFlags)
            $changed = $true
        }
        if (-not $changed -and [bool]$p.reapply) {
            $binding.CertificateHash = $hash
            $binding.CertificateStoreName = $storeName
            $changed = $true
        }
    }
    if ($changed) { $manager.CommitChanges() }
    $manager.Dispose()
    $manager = $null

    # Re-read what IIS now holds.
    $manager = Get-SectigoServerManager
    $site = Get-SectigoSite -Manager $manager -Name ([string]$p.site)
    $current = Find-SectigoHttpsBinding -Site $site -Information $information
    if ($null -ne $current) { $data.current = Get-SectigoBindingRecord -Site $site -Binding $current }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    if ($null -ne $manager) { $manager.Dispose() }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
