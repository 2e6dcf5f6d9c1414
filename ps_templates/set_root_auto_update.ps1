<#
.SYNOPSIS
    sectigo_chain template "set_root_auto_update": set or clear the DisableRootAutoUpdate policy.
.DESCRIPTION
    Payload: {"disabled": true|false|null}
    true writes HKLM\SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot
    DisableRootAutoUpdate=1 (DWORD), false writes 0, null deletes the value. Re-checks first:
    nothing changes when the value is already as asked. Backup: data.previous is the value as
    it was (null = not set), which is also what rollback passes back.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

#region sectigo_chain root_policy -- identical where used (a test checks it)
#endregion sectigo_chain root_policy

# ---- template body
$p = $null
$changed = $false
$data = $null
$errorInfo = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    Assert-SectigoElevated
    $desired = $null
    if ($null -ne $p.disabled) { $desired = ($p.disabled -eq $true) }
    $previous = Get-SectigoRootAutoUpdatePolicy
    $data = [ordered]@{ previous = $previous; current = $previous }
    if ($null -eq $desired) {
        if ($null -ne $previous) {
            Remove-ItemProperty -LiteralPath $SectigoRootPolicyKey -Name 'DisableRootAutoUpdate'
            $changed = $true
        }
    } elseif ($null -eq $previous -or $previous -ne $desired) {
        if (-not (Test-Path -LiteralPath $SectigoRootPolicyKey)) {
            $null = New-Item -Path $SectigoRootPolicyKey -Force
        }
        $value = 0
        if ($desired) { $value = 1 }
        $null = New-ItemProperty -LiteralPath $SectigoRootPolicyKey -Name 'DisableRootAutoUpdate' -PropertyType DWord -Value $value -Force
        $changed = $true
    }
    $data.current = Get-SectigoRootAutoUpdatePolicy
} catch {
    $errorInfo = New-SectigoError -Record $_
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
