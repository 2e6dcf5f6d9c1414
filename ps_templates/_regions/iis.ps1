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
