<#
.SYNOPSIS
    sectigo_chain template "disallow_certificate": put a certificate into LocalMachine\Disallowed.
.DESCRIPTION
    The drift strategy: a self-signed root that Automatic Root Update would bring back is
    distrusted explicitly instead (reported; see DESIGN.md section 1.3).
    Payload: {"der_b64", "thumbprint"}
    Re-checks first: if Disallowed already holds the thumbprint, nothing changes. The DER is
    loaded in memory. Backs up nothing (undone by remove_certificate on LocalMachine\Disallowed).
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

#region sectigo_chain cert_import -- identical where used (a test checks it)
#endregion sectigo_chain cert_import

# ---- template body
$p = $null
$changed = $false
$data = $null
$errorInfo = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    Assert-SectigoElevated
    $thumbprint = Get-SectigoThumbprint -Value ([string]$p.thumbprint)
    $outcome = Import-SectigoCertificate -DerBase64 ([string]$p.der_b64) -Thumbprint $thumbprint -Location 'LocalMachine' -StoreName 'Disallowed' -FriendlyName $null
    $data = $outcome.data
    $changed = $outcome.changed
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
