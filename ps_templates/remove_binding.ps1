<#
.SYNOPSIS
    sectigo_chain template "remove_binding": remove one IIS https binding (the rollback of a
    binding that set_binding created).
.DESCRIPTION
    Payload: {"site", "ip", "port", "host"}
    Removes only the https binding "ip:port:host" of that site; the rest of the collection is
    untouched. Re-checks first: no such binding -> nothing changes.
    Backup: data.previous is the binding as it was.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

#region sectigo_chain iis -- identical in every template that touches IIS (a test checks it)
#endregion sectigo_chain iis

# ---- template body
$p = $null
$changed = $false
$data = $null
$errorInfo = $null
$manager = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    Assert-SectigoElevated
    $information = Get-SectigoBindingInformation -Parameters $p
    $manager = Get-SectigoServerManager
    if ($null -eq $manager) { Stop-Sectigo -Message 'IIS is not installed' -Category 'NotFound' }
    $site = Get-SectigoSite -Manager $manager -Name ([string]$p.site)
    $data = [ordered]@{ removed = $false; previous = $null }
    $binding = Find-SectigoHttpsBinding -Site $site -Information $information
    if ($null -ne $binding) {
        $data.previous = Get-SectigoBindingRecord -Site $site -Binding $binding
        $site.Bindings.Remove($binding)
        $manager.CommitChanges()
        $changed = $true
        $data.removed = $true
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    if ($null -ne $manager) { $manager.Dispose() }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
