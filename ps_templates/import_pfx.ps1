<#
.SYNOPSIS
    sectigo_chain template "import_pfx": import a certificate with its private key into
    LocalMachine\My or LocalMachine\WebHosting, in the machine key set.
.DESCRIPTION
    Payload: {"pfx_b64" (secret), "password" (secret), "thumbprint",
              "store_name": "My"|"WebHosting", "exportable": bool, "friendly_name": str|null}
    The PFX bytes and password arrive in the payload and stay in memory: the PFX is opened with
    X509Certificate2(byte[], SecureString, MachineKeySet|PersistKeySet[|Exportable]) and added
    with X509Store.Add; no file is written, so nothing is left on disk but the key container and
    the store entry. The key is not exportable unless "exportable" is true.
    Re-checks first: if the store already holds the thumbprint with a private key, nothing
    changes. Where .NET offers EphemeralKeySet (4.7.2+), the thumbprint is checked before any
    key is persisted. Error messages never contain the password.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

# ---- template body
function ConvertTo-SectigoSecureString {
    param([AllowEmptyString()][string]$Plain)
    $secure = New-Object -TypeName System.Security.SecureString
    foreach ($character in $Plain.ToCharArray()) { $secure.AppendChar($character) }
    $secure.MakeReadOnly()
    return $secure
}

$p = $null
$changed = $false
$data = $null
$errorInfo = $null
$password = $null
$pfxBytes = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    Assert-SectigoElevated
    $password = [string]$p.password
    $thumbprint = Get-SectigoThumbprint -Value ([string]$p.thumbprint)
    $storeName = [string]$p.store_name
    Assert-SectigoChoice -Name 'store_name' -Value $storeName -Allowed @('My', 'WebHosting')
    $data = [ordered]@{
        thumbprint      = $thumbprint
        store_location  = 'LocalMachine'
        store_name      = $storeName
        already_present = $false
        has_private_key = $false
        exportable      = ($p.exportable -eq $true)
    }
    $store = Open-SectigoStore -Location 'LocalMachine' -Name $storeName -Write
    try {
        $existing = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
        if ($null -ne $existing -and $existing.HasPrivateKey) {
            $data.already_present = $true
            $data.has_private_key = $true
        } else {
            $pfxBytes = [System.Convert]::FromBase64String([string]$p.pfx_b64)
            $secure = ConvertTo-SectigoSecureString -Plain $password
            try {
                $flagType = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]
                $probeThumbprint = $null
                if ([System.Enum]::GetNames($flagType) -contains 'EphemeralKeySet') {
                    # Check the thumbprint before any key is persisted. A probe that fails
                    # (wrong password, unsupported flag) is ignored: the real load reports it.
                    try {
                        $probe = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($pfxBytes, $secure, [System.Enum]::Parse($flagType, 'EphemeralKeySet'))
                        $probeThumbprint = $probe.Thumbprint.ToUpperInvariant()
                        $probe.Reset()
                    } catch {
                        $probeThumbprint = $null
                    }
                }
                if ($null -ne $probeThumbprint -and $probeThumbprint -ne $thumbprint) {
                    Stop-Sectigo -Message ('the PFX holds {0}, not {1}' -f $probeThumbprint, $thumbprint) -Category 'InvalidArgument'
                }
                $flags = [int][System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::MachineKeySet
                $flags = $flags -bor [int][System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::PersistKeySet
                if ($p.exportable -eq $true) {
                    $flags = $flags -bor [int][System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::Exportable
                }
                $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($pfxBytes, $secure, [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]$flags)
            } finally {
                $secure.Dispose()
            }
            if ($certificate.Thumbprint.ToUpperInvariant() -ne $thumbprint) {
                Stop-Sectigo -Message ('the PFX holds {0}, not {1}' -f $certificate.Thumbprint, $thumbprint) -Category 'InvalidArgument'
            }
            if (-not $certificate.HasPrivateKey) {
                Stop-Sectigo -Message 'the PFX has no private key for this certificate' -Category 'InvalidArgument'
            }
            if ($null -ne $p.friendly_name) { $certificate.FriendlyName = [string]$p.friendly_name }
            $store.Add($certificate)
            $changed = $true
            $stored = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
            $data.has_private_key = ($null -ne $stored -and $stored.HasPrivateKey)
        }
    } finally {
        $store.Close()
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
    # Defence in depth: never echo the password, even if an error message quoted it.
    if (-not [string]::IsNullOrEmpty($password) -and $null -ne $errorInfo.message) {
        $errorInfo.message = ([string]$errorInfo.message).Replace($password, '********')
    }
} finally {
    if ($null -ne $pfxBytes) { [System.Array]::Clear($pfxBytes, 0, $pfxBytes.Length) }
    $password = $null
    $Payload = $null
    if ($null -ne $p) {
        $p.password = $null
        $p.pfx_b64 = $null
    }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
