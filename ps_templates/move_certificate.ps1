<#
.SYNOPSIS
    sectigo_chain template "move_certificate": copy a certificate (with its key link) to
    another store, optionally removing it from the source.
.DESCRIPTION
    Payload: {"thumbprint", "from_location", "from_store", "to_location", "to_store",
              "remove_source": bool, "with_key": bool}
    Without with_key, the certificate object read from the source store is added to the
    destination store in memory; its key-provider property comes with it, so a private key
    stays where it is: moving a user-key-set key into LocalMachine does not move the key.
    With with_key, a certificate with a private key is exported in memory (PFX bytes under a
    random password, never written) and imported again into the destination location's key set
    (MachineKeySet for LocalMachine, UserKeySet for CurrentUser) with PersistKeySet, and
    Exportable only when the source key was exportable; a key that cannot be exported stops
    the template before anything changes. The source key container is not deleted.
    Re-checks: already in the destination -> not copied again; gone from the source but in the
    destination -> success with nothing to do. BACKUP FIRST: before removing the source copy,
    data.backup holds its DER, store, physical stores and friendly name.
    remove_source deletes the source copy from the one physical store that holds it (its
    registry key or roaming-profile file, as remove_certificate does); X509Store.Remove on the
    logical store is never used, because it deletes the first match across every physical
    store behind it. A source copy in several physical stores, or only in .GroupPolicy or
    .Enterprise, is refused before anything is copied; one seen only through another location
    (a machine certificate a CurrentUser store shows) is copied and not removed.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

# ---- template body
function Copy-SectigoCertificateWithKey {
    # The certificate with its private key re-imported into the destination's key set, in
    # memory: Export(Pfx) under a random password, then X509Certificate2(byte[], password,
    # flags). Throws (nothing changed yet) when the key cannot be exported.
    param($Certificate, [string]$ToLocation)
    $exportable = $false
    try {
        $exportable = $true
        $bytes = $Certificate.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, [string]'probe')
        [System.Array]::Clear($bytes, 0, $bytes.Length)
    } catch {
        $exportable = $false
    }
    if (-not $exportable) {
        Stop-Sectigo -Message ('the private key of {0} cannot be exported: it cannot be moved into another key set; re-import the original PFX' -f $Certificate.Thumbprint) -Category 'InvalidOperation'
    }
    $secret = [System.Guid]::NewGuid().ToString('N')
    $pfxBytes = $Certificate.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, $secret)
    try {
        $flagType = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]
        $flags = [int]$flagType::PersistKeySet -bor [int]$flagType::Exportable
        if ($ToLocation -eq 'LocalMachine') {
            $flags = $flags -bor [int]$flagType::MachineKeySet
        } else {
            $flags = $flags -bor [int]$flagType::UserKeySet
        }
        $copy = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList @($pfxBytes, $secret, [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]$flags)
    } finally {
        [System.Array]::Clear($pfxBytes, 0, $pfxBytes.Length)
        $secret = $null
    }
    $copy.FriendlyName = $Certificate.FriendlyName
    return $copy
}

$p = $null
$changed = $false
$data = $null
$errorInfo = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    $thumbprint = Get-SectigoThumbprint -Value ([string]$p.thumbprint)
    $locations = @('LocalMachine', 'CurrentUser')
    $names = @('Root', 'CA', 'My', 'WebHosting', 'Disallowed', 'AuthRoot')
    $fromLocation = [string]$p.from_location
    $fromStore = [string]$p.from_store
    $toLocation = [string]$p.to_location
    $toStore = [string]$p.to_store
    Assert-SectigoChoice -Name 'from_location' -Value $fromLocation -Allowed $locations
    Assert-SectigoChoice -Name 'from_store' -Value $fromStore -Allowed $names
    Assert-SectigoChoice -Name 'to_location' -Value $toLocation -Allowed $locations
    Assert-SectigoChoice -Name 'to_store' -Value $toStore -Allowed $names
    if ($fromLocation -eq $toLocation -and $fromStore -eq $toStore) {
        Stop-Sectigo -Message 'source and destination are the same store' -Category 'InvalidArgument'
    }
    $removeSource = ($p.remove_source -eq $true)
    Assert-SectigoElevated
    $data = [ordered]@{
        thumbprint     = $thumbprint
        copied         = $false
        removed_source = $false
        backup         = $null
    }
    $source = $null
    try {
        $source = Open-SectigoStore -Location $fromLocation -Name $fromStore -MustExist
    } catch {
        # Only "store not found" (0x80070002) means absent; access denied is an error.
        if (-not (Test-SectigoNotFound -Problem $_)) { throw }
        $source = $null
    }
    try {
        $certificate = $null
        if ($null -ne $source) { $certificate = Find-SectigoCertificate -Store $source -Thumbprint $thumbprint }
        # The physical store the source copy is removed from, decided before anything changes.
        $sourcePhysical = $null
        if ($removeSource -and $null -ne $certificate) {
            $held = Get-SectigoPhysicalStores -Location $fromLocation -StoreName $fromStore -Thumbprint $thumbprint
            if ($held.Count -gt 1) {
                $message = '{0} is in {1} physical store(s) of {2}\{3} ({4}): remove the extra copies first; removing from the logical store could delete a copy that must stay' -f $thumbprint, $held.Count, $fromLocation, $fromStore, ($held -join ', ')
                Stop-Sectigo -Message $message -Category 'Refused'
            }
            if ($held.Count -eq 1) {
                $sourcePhysical = [string]$held[0]
                if (@('.Default', '.AuthRoot') -cnotcontains $sourcePhysical) {
                    $message = 'refusing to move {0} out of physical store {1}: policy would put it back; change the policy instead' -f $thumbprint, $sourcePhysical
                    Stop-Sectigo -Message $message -Category 'Refused'
                }
            }
        }
        $destination = Open-SectigoStore -Location $toLocation -Name $toStore -Write
        try {
            $present = Find-SectigoCertificate -Store $destination -Thumbprint $thumbprint
            if ($null -ne $present -and $toLocation -eq 'CurrentUser') {
                # CurrentUser's Root/CA/Disallowed also show LocalMachine's certificates (the
                # .LocalMachine physical store): only a copy in the user's own physical stores
                # is present (a rollback stages a user copy in LocalMachine before moving it).
                $own = Get-SectigoPhysicalStores -Location $toLocation -StoreName $toStore -Thumbprint $thumbprint
                if ($own.Count -eq 0) { $present = $null }
            }
            if ($null -eq $present) {
                if ($null -eq $certificate) {
                    $message = '{0} is in neither {1}\{2} nor {3}\{4}' -f $thumbprint, $fromLocation, $fromStore, $toLocation, $toStore
                    Stop-Sectigo -Message $message -Category 'NotFound'
                }
                $toAdd = $certificate
                if ($p.with_key -eq $true -and $certificate.HasPrivateKey) {
                    $toAdd = Copy-SectigoCertificateWithKey -Certificate $certificate -ToLocation $toLocation
                }
                $destination.Add($toAdd)
                $changed = $true
                $data.copied = $true
            }
        } finally {
            $destination.Close()
        }
        if ($removeSource -and $null -ne $sourcePhysical) {
            # Backup before delete: the result carries it even if the removal fails.
            $data.backup = Get-SectigoCertificateBackup -Certificate $certificate -Location $fromLocation -StoreName $fromStore -PhysicalStore $sourcePhysical
            $deleted = Remove-SectigoPhysicalCopy -Location $fromLocation -StoreName $fromStore -PhysicalStore $sourcePhysical -Thumbprint $thumbprint
            if ($deleted -gt 0) {
                $changed = $true
                $data.removed_source = $true
            }
        }
    } finally {
        if ($null -ne $source) { $source.Close() }
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
