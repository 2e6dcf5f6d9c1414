<#
.SYNOPSIS
    sectigo_chain template "verify_chain" (read-only): build the chain Windows builds for one
    certificate, from the machine's stores.
.DESCRIPTION
    Payload: {"thumbprint", "store_location": "LocalMachine"|"CurrentUser", "store_name"}
    X509Chain in the machine context (as SChannel uses), revocation off. Online retrieval:
    where .NET has DisableCertificateDownloads (PowerShell 7) it is switched on; Windows
    PowerShell 5.1 (.NET Framework) has no such switch, so the URL retrieval timeout is set to
    1 ms instead (data.network_retrieval says which). Changes nothing.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

# ---- template body
function Get-SectigoStatusNames {
    param($StatusList)
    $names = New-Object -TypeName System.Collections.ArrayList
    foreach ($status in @($StatusList)) {
        if ($null -ne $status) { $null = $names.Add([string]$status.Status) }
    }
    return , ([string[]]$names.ToArray())
}

$p = $null
$changed = $false
$data = $null
$errorInfo = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    $thumbprint = Get-SectigoThumbprint -Value ([string]$p.thumbprint)
    $location = [string]$p.store_location
    $storeName = [string]$p.store_name
    Assert-SectigoChoice -Name 'store_location' -Value $location -Allowed @('LocalMachine', 'CurrentUser')
    Assert-SectigoChoice -Name 'store_name' -Value $storeName -Allowed @('My', 'WebHosting', 'CA', 'Root', 'AuthRoot', 'Disallowed')
    $store = Open-SectigoStore -Location $location -Name $storeName -MustExist
    try {
        $certificate = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
    } finally {
        $store.Close()
    }
    if ($null -eq $certificate) {
        Stop-Sectigo -Message ('{0} is not in {1}\{2}' -f $thumbprint, $location, $storeName) -Category 'NotFound'
    }
    $chain = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Chain -ArgumentList $true
    $chain.ChainPolicy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::NoCheck
    $chain.ChainPolicy.UrlRetrievalTimeout = [System.TimeSpan]::FromMilliseconds(1)
    $retrieval = 'timeout_1ms'
    if ($null -ne $chain.ChainPolicy.PSObject.Properties['DisableCertificateDownloads']) {
        $chain.ChainPolicy.DisableCertificateDownloads = $true
        $retrieval = 'disabled'
    }
    $valid = $chain.Build($certificate)
    $elements = New-Object -TypeName System.Collections.ArrayList
    foreach ($element in $chain.ChainElements) {
        $null = $elements.Add([ordered]@{
                thumbprint = $element.Certificate.Thumbprint.ToUpperInvariant()
                subject    = [string]$element.Certificate.Subject
                issuer     = [string]$element.Certificate.Issuer
                der_b64    = [System.Convert]::ToBase64String($element.Certificate.RawData)
                status     = (Get-SectigoStatusNames -StatusList $element.ChainElementStatus)
            })
    }
    $data = [ordered]@{
        thumbprint        = $thumbprint
        valid             = [bool]$valid
        status            = (Get-SectigoStatusNames -StatusList $chain.ChainStatus)
        elements          = $elements
        network_retrieval = $retrieval
    }
    $chain.Reset()
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
