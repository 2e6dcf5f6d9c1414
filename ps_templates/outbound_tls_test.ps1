<#
.SYNOPSIS
    sectigo_chain template "outbound_tls_test" (read-only): can this host's own clients still
    validate the TLS certificate of a URL (after a distrust action)?
.DESCRIPTION
    Payload: {"url": "https://...", "timeout_ms": int}
    One HEAD request with System.Net.HttpWebRequest, the .NET Framework client most Windows
    tools (ACME clients, PowerShell's Invoke-WebRequest) use: the server certificate is
    validated by the machine's chain engine as for any client on this host. No callback
    replaces the validation. The WebException's Status (found in the exception chain: a .NET
    method's exception arrives wrapped in MethodInvocationException) tells the outcome: TrustFailure is an
    untrusted chain; ProtocolError is an HTTP error after a trusted handshake; NameResolution-
    Failure, ConnectFailure, Timeout and the like say the URL was not reached. Python decides
    what each means (data.web_status is reported as it is). The server's certificate, when
    the handshake got that far (ServicePoint.Certificate), is built with X509Chain in the
    machine context, revocation off, for the report. TLS 1.2 is added to this process's
    ServicePointManager.SecurityProtocol (older .NET defaults lack it); nothing else changes.
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
$response = $null
try {
    $p = Read-SectigoPayload -Encoded $Payload
    $url = [string]$p.url
    if (-not $url.StartsWith('https://', [System.StringComparison]::OrdinalIgnoreCase)) {
        Stop-Sectigo -Message 'url must start with https://' -Category 'InvalidArgument'
    }
    [System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor [System.Net.SecurityProtocolType]::Tls12
    $request = [System.Net.HttpWebRequest]::Create($url)
    $request.Method = 'HEAD'
    $request.AllowAutoRedirect = $false
    $request.Timeout = [int]$p.timeout_ms
    $webStatus = 'Success'
    $httpStatus = $null
    $message = $null
    try {
        $response = $request.GetResponse()
        $httpStatus = [int]$response.StatusCode
    } catch {
        # A .NET method's exception arrives wrapped (MethodInvocationException): find the
        # WebException in the chain; anything else is not an answer of the server: rethrow.
        $webError = $_.Exception
        while ($null -ne $webError -and -not ($webError -is [System.Net.WebException])) { $webError = $webError.InnerException }
        if ($null -eq $webError) { throw }
        $webStatus = [string]$webError.Status
        $message = [string]$webError.Message
        if ($null -ne $webError.Response) {
            $httpStatus = [int]$webError.Response.StatusCode
            $webError.Response.Close()
        }
    }
    $leaf = $null
    $chainStatus = New-Object -TypeName System.Collections.ArrayList
    if ($null -ne $request.ServicePoint -and $null -ne $request.ServicePoint.Certificate) {
        $certificate = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $request.ServicePoint.Certificate
        $leaf = $certificate.Thumbprint.ToUpperInvariant()
        $chain = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Chain -ArgumentList $true
        $chain.ChainPolicy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::NoCheck
        $null = $chain.Build($certificate)
        foreach ($status in @($chain.ChainStatus)) { $null = $chainStatus.Add([string]$status.Status) }
        $chain.Reset()
    }
    $data = [ordered]@{
        url             = $url
        web_status      = $webStatus
        http_status     = $httpStatus
        message         = $message
        leaf_thumbprint = $leaf
        chain_status    = $chainStatus
    }
} catch {
    $errorInfo = New-SectigoError -Record $_
} finally {
    if ($null -ne $response) { $response.Close() }
}
Write-SectigoResult -Ok ($null -eq $errorInfo) -Changed $changed -Data $data -ErrorInfo $errorInfo
