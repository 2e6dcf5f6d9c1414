<#
.SYNOPSIS
    sectigo_chain template "inspect_ccs": what the Central Certificate Store's PFX files hold.
.DESCRIPTION
    Read-only. Reads the IIS Central Certificate Store settings (the registry key
    HKLM\SOFTWARE\Microsoft\IIS\CentralCertProvider: Enabled, CertStoreLocation) and, for each
    file name in the payload (Python names them: <host>.pfx, _.<domain>.pfx for a wildcard),
    whether the file exists, the SHA-256 of its bytes (no password needed) and, opened with the
    password, the certificates it holds (public parts only) and which one has the private key.
    The PFX is opened in memory (X509Certificate2Collection.Import(byte[], ...)); each
    certificate object is released with Reset() at once. A file that cannot be read or opened
    is reported in its own "error"; the template fails only when the payload is wrong.
    Payload: {"files": [file name, ...], "password": string|null (secret)}
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
$password = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    if ($null -ne $p.password) { $password = [string]$p.password }
    $providerKey = 'HKLM:\SOFTWARE\Microsoft\IIS\CentralCertProvider'
    $enabled = $false
    $location = ''
    if (Test-Path -LiteralPath $providerKey) {
        $provider = Get-ItemProperty -LiteralPath $providerKey
        if ($null -ne $provider.Enabled) { $enabled = ([int]$provider.Enabled -ne 0) }
        if ($null -ne $provider.CertStoreLocation) { $location = [string]$provider.CertStoreLocation }
    }
    $files = New-Object -TypeName System.Collections.ArrayList
    foreach ($name in @($p.files)) {
        $fileName = [string]$name
        if ($fileName -cnotmatch '^[A-Za-z0-9_][A-Za-z0-9_.-]*\.pfx$') {
            Stop-Sectigo -Message ('not a CCS file name: ' + $fileName) -Category 'InvalidArgument'
        }
        $certificates = New-Object -TypeName System.Collections.ArrayList
        $record = [ordered]@{
            file         = $fileName
            path         = ''
            present      = $false
            sha256       = $null
            certificates = $certificates
            error        = $null
        }
        $null = $files.Add($record)
        if ($location -eq '') {
            $record.error = 'no Central Certificate Store location is configured'
            continue
        }
        $path = Join-Path -Path $location -ChildPath $fileName
        $record.path = $path
        try {
            if (-not (Test-Path -LiteralPath $path -PathType Leaf)) { continue }
            $record.present = $true
            $bytes = [System.IO.File]::ReadAllBytes($path)
            $hasher = [System.Security.Cryptography.SHA256]::Create()
            try {
                $record.sha256 = ([System.BitConverter]::ToString($hasher.ComputeHash($bytes))).Replace('-', '')
            } finally {
                $hasher.Dispose()
            }
            $collection = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2Collection
            $collection.Import($bytes, $password, [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::DefaultKeySet)
            foreach ($certificate in $collection) {
                $null = $certificates.Add([ordered]@{
                        der_b64         = [System.Convert]::ToBase64String($certificate.RawData)
                        thumbprint      = [string]$certificate.Thumbprint
                        has_private_key = [bool]$certificate.HasPrivateKey
                    })
                $certificate.Reset()
            }
        } catch {
            $record.error = [string]$_.Exception.GetBaseException().Message
        }
    }
    $data = [ordered]@{ enabled = $enabled; location = $location; files = $files; error = $null }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    $password = $null
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
