<#
.SYNOPSIS
    sectigo_chain template "observe" (read-only): everything the planner needs to know.
.DESCRIPTION
    Reports every certificate in LocalMachine (and, if asked, CurrentUser) Root, CA, My,
    WebHosting, Disallowed and AuthRoot, with the physical store(s) behind it, friendly name,
    private key presence, key location and exportability; SYSTEM's user CA store; IIS sites,
    bindings and app pools; the HTTP.sys certificate bindings (what "netsh http show sslcert"
    lists, read from the registry to avoid localised text); OS build and UBR; PowerShell
    version; the DisableRootAutoUpdate policy. Certificates travel as base64 DER. Problems that
    do not stop the inventory (a store that does not exist) go to the warning stream.
    Changes nothing.
    Payload: {"include_current_user": bool, "include_system_user": bool}
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

#region sectigo_chain root_policy -- identical where used (a test checks it)
$SectigoRootPolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot'

function Get-SectigoRootAutoUpdatePolicy {
    # $true: DisableRootAutoUpdate=1 (automatic root update off); $false: set to 0; $null: unset.
    if (-not (Test-Path -LiteralPath $SectigoRootPolicyKey)) { return $null }
    $value = (Get-ItemProperty -LiteralPath $SectigoRootPolicyKey).DisableRootAutoUpdate
    if ($null -eq $value) { return $null }
    return ([int]$value -ne 0)
}
#endregion sectigo_chain root_policy

# ---- template body
function Get-SectigoKeyInfo {
    # Where the private key lives (machine or user key set) and whether it is exportable.
    # Reading key metadata changes nothing; a key that cannot be opened reports nulls.
    param($Certificate)
    $info = [ordered]@{ key_storage = $null; key_exportable = $null }
    if (-not $Certificate.HasPrivateKey) { return $info }
    try {
        $key = $null
        try { $key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Certificate) } catch { $key = $null }
        if ($null -eq $key) {
            try { $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($Certificate) } catch { $key = $null }
        }
        if ($null -eq $key) { return $info }
        $typeName = $key.GetType().FullName
        if ($typeName -eq 'System.Security.Cryptography.RSACng' -or $typeName -eq 'System.Security.Cryptography.ECDsaCng') {
            if ($key.Key.IsMachineKey) { $info.key_storage = 'machine' } else { $info.key_storage = 'user' }
            $policy = [int]$key.Key.ExportPolicy
            $info.key_exportable = (($policy -band 3) -ne 0)
        } elseif ($null -ne $key.CspKeyContainerInfo) {
            if ($key.CspKeyContainerInfo.MachineKeyStore) { $info.key_storage = 'machine' } else { $info.key_storage = 'user' }
            $info.key_exportable = [bool]$key.CspKeyContainerInfo.Exportable
        }
    } catch { $null = $_ }
    return $info
}

function Add-SectigoCertificateRecords {
    # One record per physical store the certificate was found in (one with null if none).
    param([System.Collections.ArrayList]$Into, [string]$Location, [string]$StoreName, $Certificate, [string[]]$PhysicalStores, $FriendlyName)
    $keyInfo = Get-SectigoKeyInfo -Certificate $Certificate
    $der = [System.Convert]::ToBase64String($Certificate.RawData)
    if ($null -eq $FriendlyName) { $FriendlyName = [string]$Certificate.FriendlyName }
    $physical = @($PhysicalStores)
    if ($physical.Count -eq 0) { $physical = @($null) }
    foreach ($physicalStore in $physical) {
        $null = $Into.Add([ordered]@{
                store_location  = $Location
                store_name      = $StoreName
                physical_store  = $physicalStore
                thumbprint      = $Certificate.Thumbprint.ToUpperInvariant()
                der_b64         = $der
                friendly_name   = [string]$FriendlyName
                has_private_key = [bool]$Certificate.HasPrivateKey
                key_storage     = $keyInfo.key_storage
                key_exportable  = $keyInfo.key_exportable
            })
    }
}

function ConvertFrom-SectigoSerializedCertificate {
    # A registry "Blob" is a list of (property id, reserved, length, bytes) entries; property 32
    # holds the DER and 11 the friendly name (reported format). Returns @{der; friendly_name}.
    param([byte[]]$Blob)
    $result = @{ der = $null; friendly_name = $null }
    $offset = 0
    while ($offset + 12 -le $Blob.Length) {
        $propertyId = [System.BitConverter]::ToUInt32($Blob, $offset)
        $length = [int][System.BitConverter]::ToUInt32($Blob, $offset + 8)
        $start = $offset + 12
        if ($length -lt 0 -or $start + $length -gt $Blob.Length) { break }
        if ($propertyId -eq 32) {
            $der = New-Object -TypeName byte[] -ArgumentList $length
            [System.Array]::Copy($Blob, $start, $der, 0, $length)
            $result.der = $der
        } elseif ($propertyId -eq 11) {
            $result.friendly_name = [System.Text.Encoding]::Unicode.GetString($Blob, $start, $length).TrimEnd([char]0)
        }
        $offset = $start + $length
    }
    return $result
}

$p = $null
$changed = $false
$data = $null
$errorInfo = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    $warnings = New-Object -TypeName System.Collections.ArrayList
    $certificates = New-Object -TypeName System.Collections.ArrayList

    # Certificates in the logical stores, annotated with their physical stores.
    $locations = @('LocalMachine')
    if ($p.include_current_user -eq $true) { $locations += 'CurrentUser' }
    $storeNames = @('Root', 'CA', 'My', 'WebHosting', 'Disallowed', 'AuthRoot')
    foreach ($location in $locations) {
        foreach ($storeName in $storeNames) {
            $store = $null
            try {
                $store = Open-SectigoStore -Location $location -Name $storeName -MustExist
            } catch {
                $null = $warnings.Add(('{0}\{1} not opened: {2}' -f $location, $storeName, $_.Exception.Message))
                continue
            }
            try {
                foreach ($certificate in $store.Certificates) {
                    $thumbprint = $certificate.Thumbprint.ToUpperInvariant()
                    $physical = Get-SectigoPhysicalStores -Location $location -StoreName $storeName -Thumbprint $thumbprint
                    Add-SectigoCertificateRecords -Into $certificates -Location $location -StoreName $storeName -Certificate $certificate -PhysicalStores $physical -FriendlyName $null
                }
            } finally {
                $store.Close()
            }
        }
    }

    # SYSTEM's user CA store (SChannel runs as SYSTEM), read from HKEY_USERS\S-1-5-18.
    $systemKey = 'Registry::HKEY_USERS\S-1-5-18\Software\Microsoft\SystemCertificates\CA\Certificates'
    if ($p.include_system_user -eq $true -and (Test-Path -LiteralPath $systemKey)) {
        foreach ($item in @(Get-ChildItem -LiteralPath $systemKey)) {
            try {
                $blob = (Get-ItemProperty -LiteralPath $item.PSPath).Blob
                if ($null -eq $blob) { continue }
                $parsed = ConvertFrom-SectigoSerializedCertificate -Blob ([byte[]]$blob)
                if ($null -ne $parsed.der) {
                    $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new([byte[]]$parsed.der)
                } else {
                    $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new([byte[]]$blob)
                }
                Add-SectigoCertificateRecords -Into $certificates -Location 'SYSTEM' -StoreName 'CA' -Certificate $certificate -PhysicalStores @('.Default') -FriendlyName $parsed.friendly_name
            } catch {
                $null = $warnings.Add(('SYSTEM\CA entry {0} not read: {1}' -f $item.PSChildName, $_.Exception.Message))
            }
        }
    }

    # IIS sites, bindings and application pools.
    $sites = New-Object -TypeName System.Collections.ArrayList
    $pools = New-Object -TypeName System.Collections.ArrayList
    $iisInstalled = $false
    $manager = $null
    try {
        $manager = Get-SectigoServerManager
    } catch {
        $null = $warnings.Add('IIS configuration not read: ' + $_.Exception.Message)
    }
    if ($null -ne $manager) {
        $iisInstalled = $true
        try {
            foreach ($site in $manager.Sites) {
                $state = 'Unknown'
                try { $state = [string]$site.State } catch { $null = $_ }
                $appPool = ''
                try { $appPool = [string]$site.Applications['/'].ApplicationPoolName } catch { $null = $_ }
                $bindings = New-Object -TypeName System.Collections.ArrayList
                foreach ($binding in $site.Bindings) {
                    $record = Get-SectigoBindingRecord -Site $site -Binding $binding
                    $record.Remove('site')
                    $null = $bindings.Add($record)
                }
                $null = $sites.Add([ordered]@{
                        name     = [string]$site.Name
                        id       = [long]$site.Id
                        state    = $state
                        app_pool = $appPool
                        bindings = $bindings
                    })
            }
            foreach ($pool in $manager.ApplicationPools) {
                $state = 'Unknown'
                try { $state = [string]$pool.State } catch { $null = $_ }
                $null = $pools.Add([ordered]@{ name = [string]$pool.Name; state = $state })
            }
        } finally {
            $manager.Dispose()
        }
    }

    # HTTP.sys certificate bindings, read from the registry where HTTP.sys keeps them: the same
    # entries "netsh http show sslcert" lists, without parsing its localised text.
    $sslcert = New-Object -TypeName System.Collections.ArrayList
    $httpKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters'
    $sources = @(
        @{ kind = 'ipport'; path = "$httpKey\SslBindingInfo" },
        @{ kind = 'hostnameport'; path = "$httpKey\SslSniBindingInfo" },
        @{ kind = 'ccs'; path = "$httpKey\SslCcsBindingInfo" }
    )
    foreach ($source in $sources) {
        if (-not (Test-Path -LiteralPath $source.path)) { continue }
        foreach ($item in @(Get-ChildItem -LiteralPath $source.path)) {
            $values = Get-ItemProperty -LiteralPath $item.PSPath
            $appId = $null
            if ($null -ne $values.AppId) {
                try { $appId = ([guid]::new([byte[]]$values.AppId)).ToString('B') } catch { $null = $_ }
            }
            $storeName = $null
            if ($null -ne $values.SslCertStoreName) { $storeName = [string]$values.SslCertStoreName }
            $null = $sslcert.Add([ordered]@{
                    endpoint         = [string]$item.PSChildName
                    kind             = $source.kind
                    certificate_hash = (ConvertTo-SectigoHex -Bytes $values.SslCertHash)
                    store_name       = $storeName
                    app_id           = $appId
                })
        }
    }

    # Operating system, PowerShell, root update policy.
    $currentVersion = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    $ubr = $null
    if ($null -ne $currentVersion.UBR) { $ubr = [long]$currentVersion.UBR }
    $osVersion = [System.Environment]::OSVersion.Version
    $os = [ordered]@{
        caption = [string]$currentVersion.ProductName
        version = ('{0}.{1}.{2}' -f $osVersion.Major, $osVersion.Minor, $osVersion.Build)
        build   = [long]$currentVersion.CurrentBuildNumber
        ubr     = $ubr
    }

    $data = [ordered]@{
        computer_name            = [string]$env:COMPUTERNAME
        os                       = $os
        powershell_version       = $PSVersionTable.PSVersion.ToString()
        disable_root_auto_update = (Get-SectigoRootAutoUpdatePolicy)
        iis_installed            = $iisInstalled
        certificates             = $certificates
        sites                    = $sites
        app_pools                = $pools
        sslcert                  = $sslcert
    }
    # Problems that did not stop the inventory go to the warning stream, not into data.
    foreach ($warning in $warnings) { Write-Warning -Message $warning }
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
