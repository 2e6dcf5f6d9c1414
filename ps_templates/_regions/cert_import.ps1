function Import-SectigoCertificate {
    # Adds a public certificate (DER from the payload, in memory) unless the store has it.
    param([string]$DerBase64, [string]$Thumbprint, [string]$Location, [string]$StoreName, [AllowNull()]$FriendlyName)
    $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new([System.Convert]::FromBase64String($DerBase64))
    if ($certificate.Thumbprint.ToUpperInvariant() -ne $Thumbprint) {
        $message = 'the certificate in der_b64 has thumbprint {0}, not {1}' -f $certificate.Thumbprint, $Thumbprint
        Stop-Sectigo -Message $message -Category 'InvalidArgument'
    }
    $data = [ordered]@{
        thumbprint      = $Thumbprint
        store_location  = $Location
        store_name      = $StoreName
        already_present = $false
        friendly_name   = $null
    }
    $changed = $false
    $store = Open-SectigoStore -Location $Location -Name $StoreName -Write
    try {
        $existing = Find-SectigoCertificate -Store $store -Thumbprint $Thumbprint
        if ($null -ne $existing) {
            $data.already_present = $true
            $data.friendly_name = [string]$existing.FriendlyName
        } else {
            if ($null -ne $FriendlyName) { $certificate.FriendlyName = [string]$FriendlyName }
            $store.Add($certificate)
            $changed = $true
            $data.friendly_name = [string]$certificate.FriendlyName
        }
    } finally {
        $store.Close()
    }
    return [ordered]@{ data = $data; changed = $changed }
}
