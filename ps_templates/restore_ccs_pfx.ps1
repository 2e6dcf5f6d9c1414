<#
.SYNOPSIS
    sectigo_chain template "restore_ccs_pfx": put back the Central Certificate Store PFX that
    "rebuild_ccs_pfx" kept beside it (the undo of a rebuild).
.DESCRIPTION
    Payload: {"path", "backup_path"}
    If the backup exists, it is copied over the file (the backup is kept: an original copy is
    never deleted); else nothing changes (the rebuild never got as far as the backup).
    Needs no password: the bytes are copied as they are.
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
    Assert-SectigoElevated
    $path = [string]$p.path
    $backupPath = [string]$p.backup_path
    if (-not $path.EndsWith('.pfx', [System.StringComparison]::OrdinalIgnoreCase) -or $backupPath -eq '' -or $backupPath -eq $path) {
        Stop-Sectigo -Message 'path must name a .pfx file and backup_path another file' -Category 'InvalidArgument'
    }
    $data = [ordered]@{ path = $path; backup_path = $backupPath; restored = $false; sha256 = $null }
    if (Test-Path -LiteralPath $backupPath -PathType Leaf) {
        Copy-Item -LiteralPath $backupPath -Destination $path -Force
        $data.restored = $true
        $changed = $true
    }
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        $hasher = [System.Security.Cryptography.SHA256]::Create()
        try {
            $data.sha256 = ([System.BitConverter]::ToString($hasher.ComputeHash([System.IO.File]::ReadAllBytes($path)))).Replace('-', '')
        } finally {
            $hasher.Dispose()
        }
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
