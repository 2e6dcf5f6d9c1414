<#
.SYNOPSIS
    sectigo_chain template "import_certificate": add a public certificate to a LocalMachine store.
.DESCRIPTION
    Payload: {"der_b64", "thumbprint", "store_location": "LocalMachine",
              "store_name": "CA"|"Root"|"My"|"WebHosting"|"Disallowed", "friendly_name": str|null}
    Re-checks the store first: if the thumbprint is already there, nothing changes
    (already_present = true). The DER is loaded in memory; nothing is written to disk but the
    store entry. Backs up nothing (adding is undone by remove_certificate).
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
    Assert-SectigoChoice -Name 'store_location' -Value ([string]$p.store_location) -Allowed @('LocalMachine')
    Assert-SectigoChoice -Name 'store_name' -Value ([string]$p.store_name) -Allowed @('CA', 'Root', 'My', 'WebHosting', 'Disallowed')
    $outcome = Import-SectigoCertificate -DerBase64 ([string]$p.der_b64) -Thumbprint $thumbprint -Location ([string]$p.store_location) -StoreName ([string]$p.store_name) -FriendlyName $p.friendly_name
    $data = $outcome.data
    $changed = $outcome.changed
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
