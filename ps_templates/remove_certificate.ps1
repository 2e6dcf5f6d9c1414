<#
.SYNOPSIS
    sectigo_chain template "remove_certificate": remove one exact thumbprint from one store.
.DESCRIPTION
    Payload: {"thumbprint", "store_location": "LocalMachine"|"CurrentUser",
              "store_name": "Root"|"CA"|"My"|"WebHosting"|"Disallowed"|"AuthRoot",
              "physical_store": null|".Default"|".AuthRoot"}
    Only the named physical store loses its copy: its registry key (or roaming-profile file)
    is deleted; X509Store.Remove on the logical store is never used, because it deletes the
    first match across every physical store behind it. physical_store ".AuthRoot" (LocalMachine
    Root only) is the AuthRoot registry store. With physical_store null the copy in the one
    physical store that holds it is removed; in several, the run is refused (name one); in
    none (a machine certificate a CurrentUser store shows), nothing is removed. .GroupPolicy and
    .Enterprise copies are refused: policy puts them back; change the policy instead.
    Only "store not found" (0x80070002) reads as absent; access denied is an error. Needs an
    elevated administrator.
    BACKUP FIRST: the certificate's DER, store, physical store, friendly name and private-key
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
    if ($null -ne $p.physical_store) {
        $physicalStore = [string]$p.physical_store
        if ($physicalStore -eq '.AuthRoot') {
            if ($location -ne 'LocalMachine' -or $storeName -ne 'Root') {
                Stop-Sectigo -Message 'physical_store .AuthRoot exists only under LocalMachine\Root' -Category 'InvalidArgument'
            }
        } elseif ($physicalStore -ne '.Default') {
            $message = 'refusing to remove from physical store {0}: policy would put it back; change the policy instead' -f $physicalStore
            Stop-Sectigo -Message $message -Category 'Refused'
        }
    }
    Assert-SectigoElevated
    $data = [ordered]@{
        thumbprint     = $thumbprint
        store_location = $location
        store_name     = $storeName
        physical_store = $physicalStore
        removed        = $false
        backup         = $null
        still_present  = $false
    }
    # Read the certificate from the logical store (read-only); only "store not found" means
    # absent: access denied and every other error is reported.
    $certificate = $null
    $store = $null
    try {
        $store = Open-SectigoStore -Location $location -Name $storeName -MustExist
    } catch {
        if (-not (Test-SectigoNotFound -Problem $_)) { throw }
        $store = $null
    }
    if ($null -ne $store) {
        try {
            $certificate = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
        } finally {
            $store.Close()
        }
    }
    if ($null -ne $certificate) {
        # Which physical stores hold it (the registry keys behind the logical store).
        $held = Get-SectigoPhysicalStores -Location $location -StoreName $storeName -Thumbprint $thumbprint
        if ($null -eq $physicalStore) {
            if ($held.Count -gt 1) {
                $message = '{0} is in {1} physical store(s) of {2}\{3} ({4}): name the one to remove (physical_store); removing from the logical store could delete a copy that must stay' -f $thumbprint, $held.Count, $location, $storeName, ($held -join ', ')
                Stop-Sectigo -Message $message -Category 'Refused'
            }
            # In none: for CurrentUser, the machine's certificate seen through the user's store
            # (nothing of the user's own to remove). For LocalMachine, a physical store this
            # tool does not know: refuse rather than report success and remove nothing.
            if ($held.Count -eq 0 -and $location -eq 'LocalMachine') {
                $message = '{0} is in {1}\{2} but in none of its physical stores this tool knows (.Default, .AuthRoot, .GroupPolicy, .Enterprise): nothing removed; remove it by hand' -f $thumbprint, $location, $storeName
                Stop-Sectigo -Message $message -Category 'Refused'
            }
            if ($held.Count -eq 1) { $physicalStore = [string]$held[0] }
            $data.physical_store = $physicalStore
        }
        if ($null -ne $physicalStore -and $held -ccontains $physicalStore) {
            # Backup before delete: the result carries it even if the removal fails.
            $data.backup = Get-SectigoCertificateBackup -Certificate $certificate -Location $location -StoreName $storeName -PhysicalStore $physicalStore
            $deleted = Remove-SectigoPhysicalCopy -Location $location -StoreName $storeName -PhysicalStore $physicalStore -Thumbprint $thumbprint
            if ($deleted -gt 0) {
                $changed = $true
                $data.removed = $true
            }
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
        if (-not (Test-SectigoNotFound -Problem $_)) { throw }
        $data.still_present = $false
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
