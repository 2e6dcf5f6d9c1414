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
#endregion sectigo_chain common

#region sectigo_chain iis -- identical in every template that touches IIS (a test checks it)
#endregion sectigo_chain iis

#region sectigo_chain root_policy -- identical where used (a test checks it)
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
            # An SNI entry names its endpoint in its HostnamePort value (as HTTP.sys's own
            # readers do); the subkey name is only the fallback.
            $endpoint = [string]$item.PSChildName
            if ($null -ne $values.HostnamePort -and [string]$values.HostnamePort -ne '') { $endpoint = [string]$values.HostnamePort }
            $null = $sslcert.Add([ordered]@{
                    endpoint         = $endpoint
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
