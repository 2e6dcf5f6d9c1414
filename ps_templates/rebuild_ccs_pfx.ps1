<#
.SYNOPSIS
    sectigo_chain template "rebuild_ccs_pfx": add the missing intermediates to a Central
    Certificate Store PFX, keeping the original beside it (undone by "restore_ccs_pfx").
.DESCRIPTION
    Payload: {"path", "backup_path", "expected_sha256", "add_der_b64": [base64 DER, ...],
              "password": string|null (secret)}
    Python decides everything (which file, which certificates, the backup's name); this
    template only does it. If the file already holds every certificate to add, nothing
    changes. Else the file must still have the SHA-256 observed when the plan was made (else it
    stops: the file changed since) and the backup path must not exist yet; the file is copied
    to the backup path first, then opened in memory with the password (Exportable, not
    persisted), the certificates are added, the collection is exported as PKCS#12 with the same
    password to a temporary file beside it, and that file replaces the original.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

# ---- template body
function Get-SectigoFileHash256 {
    param([Parameter(Mandatory = $true)][byte[]]$Bytes)
    $hasher = [System.Security.Cryptography.SHA256]::Create()
    try {
        return ([System.BitConverter]::ToString($hasher.ComputeHash($Bytes))).Replace('-', '')
    } finally {
        $hasher.Dispose()
    }
}

$p = $null
$changed = $false
$data = $null
$errorInfo = $null
$password = $null
$temporary = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    Assert-SectigoElevated
    $path = [string]$p.path
    $backupPath = [string]$p.backup_path
    if (-not $path.EndsWith('.pfx', [System.StringComparison]::OrdinalIgnoreCase) -or $backupPath -eq '' -or $backupPath -eq $path) {
        Stop-Sectigo -Message 'path must name a .pfx file and backup_path another file' -Category 'InvalidArgument'
    }
    $data = [ordered]@{
        path            = $path
        backup_path     = $backupPath
        previous_sha256 = $null
        sha256          = $null
        added           = @()
    }
    if ($null -ne $p.password) { $password = [string]$p.password }
    $bytes = [System.IO.File]::ReadAllBytes($path)
    $data.previous_sha256 = Get-SectigoFileHash256 -Bytes $bytes
    $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::Exportable
    $collection = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2Collection
    $collection.Import($bytes, $password, $flags)
    $held = @{}
    foreach ($certificate in $collection) { $held[[string]$certificate.Thumbprint] = $true }
    $toAdd = New-Object -TypeName System.Collections.ArrayList
    foreach ($der in @($p.add_der_b64)) {
        $extra = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (, [System.Convert]::FromBase64String([string]$der))
        if (-not $held.ContainsKey([string]$extra.Thumbprint)) { $null = $toAdd.Add($extra) }
    }
    if ($toAdd.Count -gt 0) {
        if ($data.previous_sha256 -ne [string]$p.expected_sha256) {
            Stop-Sectigo -Message ('the file changed since it was observed (SHA-256 ' + $data.previous_sha256 + '): plan again') -Category 'InvalidOperation'
        }
        if (Test-Path -LiteralPath $backupPath) {
            Stop-Sectigo -Message ('the backup path exists already: ' + $backupPath) -Category 'ResourceExists'
        }
        Copy-Item -LiteralPath $path -Destination $backupPath
        $added = New-Object -TypeName System.Collections.ArrayList
        foreach ($extra in $toAdd) {
            $null = $collection.Add($extra)
            $null = $added.Add([string]$extra.Thumbprint)
        }
        $rebuilt = $collection.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pkcs12, $password)
        $temporary = $path + '.sectigo-new'
        [System.IO.File]::WriteAllBytes($temporary, $rebuilt)
        Move-Item -LiteralPath $temporary -Destination $path -Force
        $temporary = $null
        $data.added = $added
        $changed = $true
    }
    foreach ($certificate in $collection) { $certificate.Reset() }
    $data.sha256 = Get-SectigoFileHash256 -Bytes ([System.IO.File]::ReadAllBytes($path))
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    $password = $null
    if ($null -ne $temporary -and (Test-Path -LiteralPath $temporary)) { Remove-Item -LiteralPath $temporary -Force }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
