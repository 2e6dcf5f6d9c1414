<#
.SYNOPSIS
    sectigo_chain template "set_binding": create or update one IIS https binding.
.DESCRIPTION
    Payload: {"site", "ip": "*"|address, "port": int, "host": str, "thumbprint",
              "store_name": "My"|"WebHosting", "ssl_flags_set": int, "ssl_flags_clear": int,
              "reapply": bool}
    Finds the https binding "ip:port:host" of the site. If it exists and its certificate hash,
    certificate store or sslFlags bits (ssl_flags_set / ssl_flags_clear) differ, the binding
    element is replaced at the same position by one with the new certificate and every other
    attribute copied (an in-place certificate change fails on some servers: win-acme #371);
    every other bit and attribute stays. If it does not exist, it is added. The bindings
    collection is never cleared. The certificate must already be in LocalMachine\<store_name>
    with a private key (re-checked). Nothing is committed when nothing differs, unless
    "reapply" is true: then the binding is replaced by an identical one and committed, so that
    IIS pushes it to HTTP.sys again (the first rung of verify's ladder; whether this refreshes
    the served chain on a given Windows build is reported, not verified). Needs an elevated
    administrator.
    Backup: data.previous is the binding as it was (null if created).
    Uses Microsoft.Web.Administration in memory (no appcmd, no command-line arguments).
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
    $thumbprint = Get-SectigoThumbprint -Value ([string]$p.thumbprint)
    $storeName = [string]$p.store_name
    Assert-SectigoChoice -Name 'store_name' -Value $storeName -Allowed @('My', 'WebHosting')
    $setBits = [int]$p.ssl_flags_set
    $clearBits = [int]$p.ssl_flags_clear
    if (($setBits -band $clearBits) -ne 0) {
        Stop-Sectigo -Message 'ssl_flags_set and ssl_flags_clear overlap' -Category 'InvalidArgument'
    }
    $information = Get-SectigoBindingInformation -Parameters $p

    # Re-check: the certificate must be there, with its private key, before IIS points at it.
    $store = Open-SectigoStore -Location 'LocalMachine' -Name $storeName -MustExist
    try {
        $certificate = Find-SectigoCertificate -Store $store -Thumbprint $thumbprint
    } finally {
        $store.Close()
    }
    if ($null -eq $certificate) {
        Stop-Sectigo -Message ('{0} is not in LocalMachine\{1}' -f $thumbprint, $storeName) -Category 'NotFound'
    }
    if (-not $certificate.HasPrivateKey) {
        Stop-Sectigo -Message ('{0} in LocalMachine\{1} has no private key' -f $thumbprint, $storeName) -Category 'InvalidArgument'
    }

    $manager = Get-SectigoServerManager
    if ($null -eq $manager) { Stop-Sectigo -Message 'IIS is not installed' -Category 'NotFound' }
    $site = Get-SectigoSite -Manager $manager -Name ([string]$p.site)
    $hash = New-Object -TypeName byte[] -ArgumentList 20
    for ($i = 0; $i -lt 20; $i++) { $hash[$i] = [System.Convert]::ToByte($thumbprint.Substring(2 * $i, 2), 16) }
    $data = [ordered]@{ created = $false; previous = $null; current = $null }
    $binding = Find-SectigoHttpsBinding -Site $site -Information $information
    if ($null -eq $binding) {
        $binding = $site.Bindings.Add($information, $hash, $storeName)
        if ($setBits -ne 0) { $binding.SetAttributeValue('sslFlags', $setBits) }
        $data.created = $true
        $changed = $true
    } else {
        $data.previous = Get-SectigoBindingRecord -Site $site -Binding $binding
        $oldFlags = Get-SectigoSslFlags -Binding $binding
        $newFlags = ($oldFlags -bor $setBits) -band (-bnot $clearBits)
        $differs = ($data.previous.certificate_hash -ne $thumbprint -or $data.previous.certificate_store -ne $storeName -or $newFlags -ne $oldFlags)
        if ($differs -or [bool]$p.reapply) {
            # Replace the binding element rather than change its certificate in place: an
            # in-place change fails on some servers ("A specified logon session does not
            # exist", win-acme issue #371). Every other attribute is copied; the position in
            # the collection is kept. "reapply" replaces it too: a real re-commit to HTTP.sys.
            $handled = @('protocol', 'bindingInformation', 'sslFlags', 'certificateStoreName', 'certificateHash')
            $replacement = $site.Bindings.CreateElement('binding')
            $replacement.Protocol = $binding.Protocol
            $replacement.BindingInformation = $binding.BindingInformation
            $replacement.CertificateStoreName = $storeName
            $replacement.CertificateHash = $hash
            foreach ($attribute in $binding.Attributes) {
                if ($handled -notcontains $attribute.Name -and $null -ne $attribute.Value -and -not $attribute.IsInheritedFromDefaultValue) {
                    $replacement.SetAttributeValue($attribute.Name, $attribute.Value)
                }
            }
            if ($newFlags -ne 0) { $replacement.SetAttributeValue('sslFlags', $newFlags) }
            $index = $site.Bindings.IndexOf($binding)
            $site.Bindings.Remove($binding)
            if ($index -ge 0) {
                $null = $site.Bindings.AddAt($index, $replacement)
            } else {
                $null = $site.Bindings.Add($replacement)
            }
            $binding = $replacement
            $changed = $true
        }
    }
    if ($changed) { $manager.CommitChanges() }
    $manager.Dispose()
    $manager = $null

    # Re-read what IIS now holds.
    $manager = Get-SectigoServerManager
    $site = Get-SectigoSite -Manager $manager -Name ([string]$p.site)
    $current = Find-SectigoHttpsBinding -Site $site -Information $information
    if ($null -ne $current) { $data.current = Get-SectigoBindingRecord -Site $site -Binding $current }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    if ($null -ne $manager) { $manager.Dispose() }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
