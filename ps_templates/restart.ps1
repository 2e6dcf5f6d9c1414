<#
.SYNOPSIS
    sectigo_chain template "restart": refresh the served chain (iisreset, app pool recycle or
    an HTTP service restart).
.DESCRIPTION
    Payload: {"mode": "iisreset"|"recycle"|"http_service", "app_pools": [str]}
    iisreset:     iisreset.exe /restart; its exit code is checked.
    recycle:      recycles the named application pools through Microsoft.Web.Administration
                  (names are never passed on a command line); all names are checked first.
    http_service: net stop http /y, net start http, then starts again every service that was
                  running before. Refused inside a remote session: WinRM depends on HTTP and
                  would stop with it.
    Changes service state only; backs up nothing.
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
    $mode = [string]$p.mode
    Assert-SectigoChoice -Name 'mode' -Value $mode -Allowed @('iisreset', 'recycle', 'http_service')
    $recycled = New-Object -TypeName System.Collections.ArrayList
    $data = [ordered]@{ mode = $mode; exit_code = $null; output = $null; recycled = $recycled; not_restarted = @() }
    if ($mode -eq 'iisreset') {
        $run = Invoke-SectigoNative -FilePath (Join-Path -Path $env:windir -ChildPath 'System32\iisreset.exe') -Arguments @('/restart')
        $data.exit_code = $run.exit_code
        $data.output = $run.output
        $changed = $true
        if ($run.exit_code -ne 0) {
            Stop-Sectigo -Message ('iisreset /restart failed with exit code {0}: {1}' -f $run.exit_code, $run.output) -Category 'NativeCommandFailed'
        }
    } elseif ($mode -eq 'recycle') {
        $manager = Get-SectigoServerManager
        if ($null -eq $manager) { Stop-Sectigo -Message 'IIS is not installed' -Category 'NotFound' }
        $pools = New-Object -TypeName System.Collections.ArrayList
        foreach ($name in @($p.app_pools)) {
            $found = $null
            foreach ($pool in $manager.ApplicationPools) {
                if ($pool.Name -eq [string]$name) { $found = $pool }
            }
            if ($null -eq $found) { Stop-Sectigo -Message ('no application pool named "' + $name + '"') -Category 'NotFound' }
            $null = $pools.Add($found)
        }
        foreach ($pool in $pools) {
            $null = $pool.Recycle()
            $changed = $true
            $null = $recycled.Add([string]$pool.Name)
        }
    } else {
        if ($null -ne $PSSenderInfo) {
            $message = 'restarting the HTTP service from a remote session would stop WinRM with it; run it on the console or reboot'
            Stop-Sectigo -Message $message -Category 'Refused'
        }
        $running = @(Get-Service | Where-Object { $_.Status -eq 'Running' } | ForEach-Object { $_.Name })
        $net = Join-Path -Path $env:windir -ChildPath 'System32\net.exe'
        $stop = Invoke-SectigoNative -FilePath $net -Arguments @('stop', 'http', '/y')
        $changed = $true
        $data.exit_code = $stop.exit_code
        $data.output = $stop.output
        if ($stop.exit_code -ne 0) {
            Stop-Sectigo -Message ('net stop http /y failed with exit code {0}: {1}' -f $stop.exit_code, $stop.output) -Category 'NativeCommandFailed'
        }
        $start = Invoke-SectigoNative -FilePath $net -Arguments @('start', 'http')
        $data.exit_code = $start.exit_code
        $data.output = $stop.output + "`n" + $start.output
        $notRestarted = New-Object -TypeName System.Collections.ArrayList
        foreach ($name in $running) {
            $service = Get-Service -Name $name -ErrorAction SilentlyContinue
            if ($null -ne $service -and $service.Status -ne 'Running') {
                try { Start-Service -Name $name } catch { $null = $notRestarted.Add($name) }
            }
        }
        $data.not_restarted = $notRestarted
        if ($notRestarted.Count -gt 0) {
            Stop-Sectigo -Message ('services not restarted: ' + ($notRestarted -join ', ')) -Category 'NativeCommandFailed'
        }
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    if ($null -ne $manager) { $manager.Dispose() }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
