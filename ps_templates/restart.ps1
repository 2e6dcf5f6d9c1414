<#
.SYNOPSIS
    sectigo_chain template "restart": refresh the served chain (iisreset, app pool recycle or
    an HTTP service restart).
.DESCRIPTION
    Payload: {"mode": "iisreset"|"recycle"|"http_service", "app_pools": [str]}
    iisreset:     iisreset.exe /restart /noforce /timeout:120 (IIS is stopped gracefully,
                  never killed); its exit code is checked.
    recycle:      recycles the named application pools through Microsoft.Web.Administration
                  (names are never passed on a command line); all names are checked first.
    http_service: net stop http /y, net start http (each exit code checked). Refused inside a
                  remote session: WinRM depends on HTTP and would stop with it.
    iisreset and http_service start again, in a finally block, every HTTP-related service
    (HTTP, its dependants, WAS, W3SVC) that was running before, also when a step failed or
    stopped only part of them; data.not_restarted lists those that would not start. Other
    services are neither recorded nor started. Not idempotent: never retried after a timeout.
    Changes service state only; backs up nothing. Needs an elevated administrator.
    Windows PowerShell 5.1 compatible. Output: one JSON document (see docs/templates.md).
#>
param([Parameter(Mandatory = $true)][string]$Payload)

#region sectigo_chain common -- identical in every template (tests/unit/test_ps_syntax.py checks it)
#endregion sectigo_chain common

#region sectigo_chain iis -- identical in every template that touches IIS (a test checks it)
#endregion sectigo_chain iis

function Start-SectigoServices {
    # Starts every named service that is not running; returns the names that would not start.
    param([string[]]$Names)
    $notRestarted = New-Object -TypeName System.Collections.ArrayList
    foreach ($name in $Names) {
        $service = Get-Service -Name $name -ErrorAction SilentlyContinue
        if ($null -ne $service -and $service.Status -ne 'Running') {
            try { Start-Service -Name $name } catch { $null = $notRestarted.Add($name) }
        }
    }
    return , ([string[]]$notRestarted.ToArray())
}

function Get-SectigoHttpServices {
    # What iisreset and "net stop http /y" stop: HTTP, every service that depends on it
    # (ServiceController.DependentServices: direct and indirect dependants) and WAS/W3SVC.
    # Only these are snapshotted and started again: other services are none of our business
    # (a trigger-start service that stopped by itself meanwhile must not be started).
    $names = New-Object -TypeName System.Collections.ArrayList
    $http = Get-Service -Name 'HTTP' -ErrorAction SilentlyContinue
    if ($null -ne $http) {
        $null = $names.Add([string]$http.Name)
        foreach ($dependant in $http.DependentServices) {
            if (-not $names.Contains([string]$dependant.Name)) { $null = $names.Add([string]$dependant.Name) }
        }
    }
    foreach ($name in @('WAS', 'W3SVC')) {
        if (-not $names.Contains($name)) { $null = $names.Add($name) }
    }
    return , ([string[]]$names.ToArray())
}

function Get-SectigoRunningHttpServices {
    # The HTTP-related services running now (names), asked one by one so that a service that
    # cannot be queried is skipped instead of failing the template.
    $candidates = Get-SectigoHttpServices
    $running = New-Object -TypeName System.Collections.ArrayList
    foreach ($name in $candidates) {
        $service = Get-Service -Name $name -ErrorAction SilentlyContinue
        if ($null -ne $service -and $service.Status -eq 'Running') { $null = $running.Add($name) }
    }
    return , ([string[]]$running.ToArray())
}

# ---- template body
$p = $null
$changed = $false
$data = $null
$errorInfo = $null
$manager = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    Assert-SectigoElevated
    $mode = [string]$p.mode
    Assert-SectigoChoice -Name 'mode' -Value $mode -Allowed @('iisreset', 'recycle', 'http_service')
    $recycled = New-Object -TypeName System.Collections.ArrayList
    $data = [ordered]@{ mode = $mode; exit_code = $null; output = $null; recycled = $recycled; not_restarted = @() }
    if ($mode -eq 'iisreset') {
        # /noforce: IIS is stopped gracefully, never killed; /timeout bounds the wait.
        $running = Get-SectigoRunningHttpServices
        $failure = $null
        try {
            $run = Invoke-SectigoNative -FilePath (Join-Path -Path $env:windir -ChildPath 'System32\iisreset.exe') -Arguments @('/restart', '/noforce', '/timeout:120')
            $data.exit_code = $run.exit_code
            $data.output = $run.output
            $changed = $true
            if ($run.exit_code -ne 0) {
                $failure = 'iisreset /restart /noforce failed with exit code {0}: {1}' -f $run.exit_code, $run.output
            }
        } finally {
            # Whatever happened, every service that was running before runs again.
            $data.not_restarted = Start-SectigoServices -Names $running
        }
        if ($null -ne $failure) { Stop-Sectigo -Message $failure -Category 'NativeCommandFailed' }
        if ($data.not_restarted.Count -gt 0) {
            Stop-Sectigo -Message ('services not restarted: ' + ($data.not_restarted -join ', ')) -Category 'NativeCommandFailed'
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
        $running = Get-SectigoRunningHttpServices
        $net = Join-Path -Path $env:windir -ChildPath 'System32\net.exe'
        $failure = $null
        try {
            $stop = Invoke-SectigoNative -FilePath $net -Arguments @('stop', 'http', '/y')
            $changed = $true
            $data.exit_code = $stop.exit_code
            $data.output = $stop.output
            if ($stop.exit_code -ne 0) {
                # Some dependants may have stopped, others not: the finally block starts them.
                $failure = 'net stop http /y failed with exit code {0}: {1}' -f $stop.exit_code, $stop.output
            } else {
                $start = Invoke-SectigoNative -FilePath $net -Arguments @('start', 'http')
                $data.exit_code = $start.exit_code
                $data.output = $stop.output + "`n" + $start.output
                if ($start.exit_code -ne 0) {
                    $failure = 'net start http failed with exit code {0}: {1}' -f $start.exit_code, $start.output
                }
            }
        } finally {
            # Whatever happened, every service that was running before runs again.
            $data.not_restarted = Start-SectigoServices -Names $running
        }
        if ($null -ne $failure) { Stop-Sectigo -Message $failure -Category 'NativeCommandFailed' }
        if ($data.not_restarted.Count -gt 0) {
            Stop-Sectigo -Message ('services not restarted: ' + ($data.not_restarted -join ', ')) -Category 'NativeCommandFailed'
        }
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    if ($null -ne $manager) { $manager.Dispose() }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
