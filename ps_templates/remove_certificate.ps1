<#
.SYNOPSIS
    sectigo_chain template "remove_certificate": remove one exact thumbprint from one store.
.DESCRIPTION
    Payload: {"thumbprint", "store_location": "LocalMachine"|"CurrentUser",
              "store_name": "Root"|"CA"|"My"|"WebHosting"|"Disallowed"|"AuthRoot",
              "physical_store": null|".Default"|".AuthRoot"}
    physical_store ".AuthRoot" (LocalMachine Root only) removes the copy that lives in the
    AuthRoot registry store (opened as the logical AuthRoot store). .GroupPolicy and .Enterprise
    copies are refused: policy puts them back; change the policy instead.
    BACKUP FIRST: the certificate's DER, store, physical stores, friendly name and private-key
    flag go into data.backup before anything is deleted (also when the removal then fails).
    A private key, if any, is NOT deleted. Afterwards the logical store is re-read:
    data.still_present says whether another physical store still provides the certificate.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

# ---- template body
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
    Assert-SectigoChoice -Name 'store_name' -Value $storeName -Allowed @('Root', 'CA', 'My', 'WebHosting', 'Disallowed', 'AuthRoot')
    $physicalStore = $null
    $target = $storeName
    if ($null -ne $p.physical_store) {
        $physicalStore = [string]$p.physical_store
        if ($physicalStore -eq '.AuthRoot') {
            if ($location -ne 'LocalMachine' -or $storeName -ne 'Root') {
                Stop-Sectigo -Message 'physical_store .AuthRoot exists only under LocalMachine\Root' -Category 'InvalidArgument'
            }
            $target = 'AuthRoot'
        } elseif ($physicalStore -ne '.Default') {
            $message = 'refusing to remove from physical store {0}: policy would put it back; change the policy instead' -f $physicalStore
            Stop-Sectigo -Message $message -Category 'Refused'
        }
    }
    $data = [ordered]@{
        thumbprint     = $thumbprint
        store_location = $location
        store_name     = $storeName
        physical_store = $physicalStore
        removed        = $false
        backup         = $null
        still_present  = $false
    }
    $store = $null
    try {
        $store = Open-SectigoStore -Location $location -Name $target -Write -MustExist
    } catch {
        $store = $null
    }
    if ($null -ne $store) {
        try {
            $certificate = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
            if ($null -ne $certificate) {
                # Backup before delete: the result carries it even if Remove fails.
                $data.backup = Get-SectigoCertificateBackup -Certificate $certificate -Location $location -StoreName $storeName -PhysicalStore $physicalStore
                $store.Remove($certificate)
                $changed = $true
                $data.removed = $true
            }
        } finally {
            $store.Close()
        }
    }
    # Re-check the logical store: another physical store may still provide the certificate.
    try {
        $check = Open-SectigoStore -Location $location -Name $storeName -MustExist
        try {
            $data.still_present = ($null -ne (Find-SectigoCertificate -Store $check -Thumbprint $thumbprint))
        } finally {
            $check.Close()
        }
    } catch {
        $data.still_present = $false
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
