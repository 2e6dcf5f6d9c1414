<#
.SYNOPSIS
    Probe for the open Windows questions of issue 11 (docs/windows-facts.md).
.DESCRIPTION
    TEST CODE for a throwaway Windows runner, not a template: it changes certificate stores,
    HTTP.sys entries and IIS, and puts back what it can. Writes one JSON document to stdout:
      x509store_remove      which physical copy X509Store.Remove on LocalMachine\Root deletes
                            when a certificate sits in both .Default and .AuthRoot;
      sni_subkeys           how SslSniBindingInfo subkeys are named, and their HostnamePort;
      inplace_change        whether an in-place CertificateHash change + commit, and a
                            replacement of the binding element + commit, re-create the HTTP.sys
                            entry (a marker value on the entry's key survives or not);
      auto_root_update      whether building a chain for a CTL root removed from AuthRoot
                            puts it back (Automatic Root Update);
      elevated, is64bit     the account and process the probe ran as.
    Windows PowerShell 5.1.
#>
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$facts = [ordered]@{}
$machine = [System.Security.Cryptography.X509Certificates.StoreLocation]::LocalMachine
$rw = [System.Security.Cryptography.X509Certificates.OpenFlags]::ReadWrite
$certKeys = 'HKLM:\SOFTWARE\Microsoft\SystemCertificates'
$http = 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters'

$principal = New-Object System.Security.Principal.WindowsPrincipal ([System.Security.Principal.WindowsIdentity]::GetCurrent())
$facts.elevated = $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)
$facts.is64bit = [System.Environment]::Is64BitProcess
$facts.os = [System.Environment]::OSVersion.VersionString

function Open-Store([string]$Name) {
    $store = New-Object System.Security.Cryptography.X509Certificates.X509Store -ArgumentList $Name, $machine
    $store.Open($rw)
    return $store
}

# A throwaway self-signed certificate (private key removed afterwards).
$temp = New-SelfSignedCertificate -Subject 'CN=sectigo-chain windows facts' -CertStoreLocation 'Cert:\LocalMachine\My' -KeyExportPolicy Exportable -NotAfter (Get-Date).AddDays(2)
$tp = $temp.Thumbprint
$public = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (, $temp.RawData)

# ---- 1. X509Store.Remove with a copy in .Default and in .AuthRoot
try {
    $root = Open-Store 'Root'; $root.Add($public); $root.Close()
    $auth = Open-Store 'AuthRoot'; $auth.Add($public); $auth.Close()
    $before = [ordered]@{
        default  = Test-Path "$certKeys\Root\Certificates\$tp"
        authroot = Test-Path "$certKeys\AuthRoot\Certificates\$tp"
    }
    $root = Open-Store 'Root'; $root.Remove($public); $root.Close()
    $facts.x509store_remove = [ordered]@{
        before = $before
        after  = [ordered]@{
            default  = Test-Path "$certKeys\Root\Certificates\$tp"
            authroot = Test-Path "$certKeys\AuthRoot\Certificates\$tp"
        }
    }
} catch {
    $facts.x509store_remove = [ordered]@{ error = $_.Exception.GetBaseException().Message }
} finally {
    foreach ($name in @('Root', 'AuthRoot')) {
        if (Test-Path "$certKeys\$name\Certificates\$tp") { Remove-Item "$certKeys\$name\Certificates\$tp" -Recurse -Force }
    }
}

# ---- 2. SNI subkey names
$appId = '{4dc3e181-e14b-4a21-b022-59fc669b0914}'
try {
    $null = & netsh.exe http add sslcert hostnameport=facts.example.test:8444 certhash=$tp appid=$appId certstorename=MY
    $entries = @()
    foreach ($item in @(Get-ChildItem "$http\SslSniBindingInfo" -ErrorAction SilentlyContinue)) {
        $values = Get-ItemProperty -LiteralPath $item.PSPath
        $entries += [ordered]@{ subkey = $item.PSChildName; hostname_port = $values.HostnamePort }
    }
    $facts.sni_subkeys = $entries
} catch {
    $facts.sni_subkeys = [ordered]@{ error = $_.Exception.GetBaseException().Message }
} finally {
    $null = & netsh.exe http delete sslcert hostnameport=facts.example.test:8444
}

# ---- 3. In-place certificate change vs replacement: is the HTTP.sys entry re-created?
try {
    Import-Module WebAdministration
    [System.Reflection.Assembly]::LoadWithPartialName('Microsoft.Web.Administration') | Out-Null
    $hash = $temp.GetCertHash()
    $manager = New-Object Microsoft.Web.Administration.ServerManager
    $site = $manager.Sites['Default Web Site']
    $null = $site.Bindings.Add('*:8445:', $hash, 'My')
    $manager.CommitChanges(); $manager.Dispose()
    $entry = "$http\SslBindingInfo\0.0.0.0:8445"
    $result = [ordered]@{ entry_created = (Test-Path $entry) }
    New-ItemProperty -Path $entry -Name 'SectigoChainMarker' -Value 1 -PropertyType DWord -Force | Out-Null
    $manager = New-Object Microsoft.Web.Administration.ServerManager
    $binding = $manager.Sites['Default Web Site'].Bindings | Where-Object { $_.BindingInformation -eq '*:8445:' }
    $binding.CertificateHash = $hash
    $binding.CertificateStoreName = 'My'
    $manager.CommitChanges(); $manager.Dispose()
    $result.marker_after_inplace = ($null -ne (Get-ItemProperty -Path $entry -ErrorAction SilentlyContinue).SectigoChainMarker)
    New-ItemProperty -Path $entry -Name 'SectigoChainMarker' -Value 1 -PropertyType DWord -Force | Out-Null
    $manager = New-Object Microsoft.Web.Administration.ServerManager
    $site = $manager.Sites['Default Web Site']
    $binding = $site.Bindings | Where-Object { $_.BindingInformation -eq '*:8445:' }
    $replacement = $site.Bindings.CreateElement('binding')
    $replacement.Protocol = 'https'
    $replacement.BindingInformation = '*:8445:'
    $replacement.CertificateStoreName = 'My'
    $replacement.CertificateHash = $hash
    $index = $site.Bindings.IndexOf($binding)
    $site.Bindings.Remove($binding)
    $null = $site.Bindings.AddAt($index, $replacement)
    $manager.CommitChanges(); $manager.Dispose()
    $result.marker_after_replacement = ($null -ne (Get-ItemProperty -Path $entry -ErrorAction SilentlyContinue).SectigoChainMarker)
    $result.entry_after_replacement = (Test-Path $entry)
    $facts.inplace_change = $result
} catch {
    $facts.inplace_change = [ordered]@{ error = $_.Exception.GetBaseException().Message }
} finally {
    try {
        $manager = New-Object Microsoft.Web.Administration.ServerManager
        $site = $manager.Sites['Default Web Site']
        foreach ($b in @($site.Bindings | Where-Object { $_.BindingInformation -eq '*:8445:' })) { $site.Bindings.Remove($b) }
        $manager.CommitChanges(); $manager.Dispose()
    } catch { $null = $_ }
}

# ---- 4. Automatic Root Update: does building a chain re-add a removed CTL root?
$usertrust = '2B8F1B57330DBBA2D07A6C51F70EE90DDAB9AD8E'  # USERTrust RSA Certification Authority
$authKey = "$certKeys\AuthRoot\Certificates\$usertrust"
try {
    $policy = Get-ItemProperty 'HKLM:\SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot' -ErrorAction SilentlyContinue
    $result = [ordered]@{
        disable_root_auto_update = $policy.DisableRootAutoUpdate
        present_before           = (Test-Path $authKey)
    }
    $store = New-Object System.Security.Cryptography.X509Certificates.X509Store -ArgumentList 'Root', $machine
    $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]::ReadOnly)
    $copy = $store.Certificates | Where-Object { $_.Thumbprint -eq $usertrust } | Select-Object -First 1
    $store.Close()
    if ($null -ne $copy -and $result.present_before) {
        $saved = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (, $copy.RawData)
        Remove-Item $authKey -Recurse -Force
        $result.present_after_remove = (Test-Path $authKey)
        $chain = New-Object System.Security.Cryptography.X509Certificates.X509Chain
        $chain.ChainPolicy.RevocationMode = 'NoCheck'
        $result.chain_built = $chain.Build($saved)
        Start-Sleep -Seconds 5
        $result.present_after_build = (Test-Path $authKey)
        if (-not (Test-Path $authKey)) {
            $auth = Open-Store 'AuthRoot'; $auth.Add($saved); $auth.Close()
            $result.restored_by_probe = $true
        }
    }
    $facts.auto_root_update = $result
} catch {
    $facts.auto_root_update = [ordered]@{ error = $_.Exception.GetBaseException().Message }
}

# Clean up the throwaway certificate (and its key).
Remove-Item "Cert:\LocalMachine\My\$tp" -DeleteKey -ErrorAction SilentlyContinue
ConvertTo-Json -InputObject $facts -Depth 6 -Compress
