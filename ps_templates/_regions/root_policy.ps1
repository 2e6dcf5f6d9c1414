$SectigoRootPolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\SystemCertificates\AuthRoot'

function Get-SectigoRootAutoUpdatePolicy {
    # $true: DisableRootAutoUpdate=1 (automatic root update off); $false: set to 0; $null: unset.
    if (-not (Test-Path -LiteralPath $SectigoRootPolicyKey)) { return $null }
    $value = (Get-ItemProperty -LiteralPath $SectigoRootPolicyKey).DisableRootAutoUpdate
    if ($null -eq $value) { return $null }
    return ([int]$value -ne 0)
}
