# Vigo bootstrap for Windows (docs/bootstrap.md). In an elevated PowerShell:
#
#   curl.exe -fsSL --cacert ca.pem -o bootstrap.ps1 https://SERVER:PORT/bootstrap.ps1
#   powershell -ExecutionPolicy Bypass -File bootstrap.ps1 -Token TOKEN -CaFingerprint SHA256
#
# Checks the CA below against -CaFingerprint, downloads the Windows agent over TLS pinned to
# that CA, verifies its SHA-256 and Ed25519 signature against the release key below,
# installs it, enrolls, installs and starts the service, and waits for the first check-in.
# Safe to run again. Exit codes as bootstrap.sh: 0 ok; 2 usage; 3 refused (fingerprint,
# checksum, signature; nothing installed); 4 download failed; 5 a requirement is missing;
# 6 enrollment failed; 7 service install or start failed; 8 no check-in in time.
#
# This file was rendered by the server: the three values below were checked to hold only
# URL or PEM characters (no quote) before they were pasted in.
[CmdletBinding()]
param(
    [string]$Token = '',
    [string]$CaFingerprint = '',
    [string]$Server = '',
    [string]$Hostname = '',
    [switch]$NoStart,
    [switch]$PrintPlan,
    [int]$Timeout = 120,
    [string]$Arch = '',
    [string]$Curl = '',
    [string]$OpenSsl = ''
)

$ErrorActionPreference = 'Stop'
$VigoServerUrl = '@@VIGO_SERVER_URL@@'
$VigoCaPem = '@@VIGO_CA_PEM@@'
$VigoReleasePubPem = '@@VIGO_RELEASE_PUB_PEM@@'

$ServiceName = 'vigo-agent'
$BinDir = Join-Path $env:ProgramFiles 'Vigo'
$Bin = Join-Path $BinDir 'vigo-agent.exe'
$State = Join-Path $env:ProgramData 'Vigo\agent'
# `service` is `run` under the Service Control Manager: it reports start and stop to the
# SCM, which would otherwise end `run` after its start timeout (error 1053). Logs go to
# agent.log in the state directory.
$BinaryPathName = '"' + $Bin + '" service --state "' + $State + '"'

function Say([string]$Message) { [Console]::Error.WriteLine("vigo-bootstrap: $Message") }
function Fail([int]$Code, [string]$Message) {
    [Console]::Error.WriteLine("vigo-bootstrap: error: $Message")
    exit $Code
}

# The service install, printed by -PrintPlan and done otherwise.
function Install-VigoService {
    $existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($PrintPlan) {
        'run New-Service -Name vigo-agent -BinaryPathName ''' + $BinaryPathName + ''' -DisplayName ''Vigo agent'' -StartupType Automatic (Win32_Service.Change when it exists)'
        'run sc.exe failure vigo-agent reset= 86400 actions= restart/10000/restart/10000/restart/60000'
        if ($NoStart) { 'skip Start-Service vigo-agent' } else { 'run Restart-Service vigo-agent (Start-Service when stopped)' }
        return
    }
    if ($existing) {
        # Through CIM rather than sc.exe: Windows PowerShell 5.1 does not escape the quotes
        # inside a native command's argument, and the path has both quotes and spaces.
        $svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'"
        $changed = Invoke-CimMethod -InputObject $svc -MethodName Change -Arguments @{ PathName = $BinaryPathName; StartMode = 'Automatic' }
        if ($changed.ReturnValue -ne 0) { Fail 7 "updating the service $ServiceName failed (Win32_Service.Change returned $($changed.ReturnValue))" }
    } else {
        try {
            New-Service -Name $ServiceName -BinaryPathName $BinaryPathName -DisplayName 'Vigo agent' `
                -Description 'Converges this machine to its Vigo policy' -StartupType Automatic | Out-Null
        } catch { Fail 7 "New-Service failed: $_" }
    }
    # The restarts apply when the process dies without reporting SERVICE_STOPPED. Not
    # enrolled (service-specific error 3) is reported, so it is not restarted: no restart
    # fixes it (RestartPreventExitStatus=3 under systemd).
    & sc.exe failure $ServiceName reset= 86400 actions= restart/10000/restart/10000/restart/60000 | Out-Null
    if ($NoStart) { return }
    try {
        if ((Get-Service -Name $ServiceName).Status -eq 'Running') { Restart-Service -Name $ServiceName }
        else { Start-Service -Name $ServiceName }
    } catch { Fail 7 "starting the service failed: $_; the agent is installed and enrolled, run this script again once that is fixed" }
}

if ($Arch -eq '') {
    switch ($env:PROCESSOR_ARCHITECTURE) {
        'AMD64' { $Arch = 'x86_64' }
        'ARM64' { $Arch = 'aarch64' }
        default { Fail 5 "unsupported architecture $($env:PROCESSOR_ARCHITECTURE) (supported: AMD64, ARM64)" }
    }
}
if ($Arch -notin @('x86_64', 'aarch64')) { Fail 2 '-Arch must be x86_64 or aarch64' }
$Platform = "windows-$Arch"

if ($PrintPlan) {
    "# vigo bootstrap plan for ${Platform}: service $ServiceName"
    "binary $Bin"
    "state $State"
    Install-VigoService
    exit 0
}

if ($Server -eq '') { $Server = $VigoServerUrl }
$Server = $Server.TrimEnd('/')
if ($Server -notmatch '^https://[A-Za-z0-9.:\[\]-]+$') { Fail 2 '-Server must be https://HOST[:PORT]' }
if ($Token -notmatch '^[A-Za-z0-9_]+$') { Fail 2 '-Token is required (vigocli token create)' }
$Fingerprint = ($CaFingerprint -replace ':', '').ToLowerInvariant()
if ($Fingerprint -notmatch '^[0-9a-f]{64}$') { Fail 2 '-CaFingerprint must be 64 hex digits (vigo-server init printed it)' }
if ($Hostname -notmatch '^[A-Za-z0-9._-]*$') { Fail 2 "-Hostname may hold only letters, digits, '.', '_' and '-'" }

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 5 'run this from an elevated (administrator) PowerShell'
}

# Tools: the agent and its server use Ed25519 certificates and signatures, which neither
# Schannel nor .NET Framework handle, so the download and the verification need an
# OpenSSL-based curl.exe and openssl.exe (Git for Windows ships both).
$gitBin = Join-Path $env:ProgramFiles 'Git\mingw64\bin'
if ($Curl -eq '') {
    if (Test-Path (Join-Path $gitBin 'curl.exe')) { $Curl = Join-Path $gitBin 'curl.exe' } else { $Curl = 'curl.exe' }
}
if ($OpenSsl -eq '') {
    if (Test-Path (Join-Path $gitBin 'openssl.exe')) { $OpenSsl = Join-Path $gitBin 'openssl.exe' } else { $OpenSsl = 'openssl.exe' }
}
if (-not (Get-Command $Curl -ErrorAction SilentlyContinue)) { Fail 5 'curl.exe is required (pass -Curl PATH)' }
if (-not (Get-Command $OpenSsl -ErrorAction SilentlyContinue)) { Fail 5 'openssl.exe 3 is required to verify the agent (Git for Windows ships one; pass -OpenSsl PATH)' }
$version = & $OpenSsl version
if ($version -notmatch '^OpenSSL ([3-9]|[1-9][0-9])\.') { Fail 5 "OpenSSL 3 or later is required, found '$version'" }

$Work = Join-Path ([IO.Path]::GetTempPath()) ("vigo-bootstrap-" + [Guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $Work | Out-Null
try {
    $ascii = New-Object Text.UTF8Encoding($false)
    [IO.File]::WriteAllText((Join-Path $Work 'ca.pem'), $VigoCaPem + "`n", $ascii)
    [IO.File]::WriteAllText((Join-Path $Work 'release.pub.pem'), $VigoReleasePubPem + "`n", $ascii)
    $b64 = ($VigoCaPem -split "`n" | Where-Object { $_ -notmatch '^-----' }) -join ''
    $sha = [Security.Cryptography.SHA256]::Create()
    $actual = ([BitConverter]::ToString($sha.ComputeHash([Convert]::FromBase64String($b64))) -replace '-', '').ToLowerInvariant()
    if ($actual -ne $Fingerprint) {
        Fail 3 "the server's CA (fingerprint $actual) does not match -CaFingerprint $Fingerprint; nothing was downloaded or installed"
    }

    function Fetch([string]$Path, [string]$Out) {
        & $Curl -fsS --proto =https --tlsv1.2 --cacert (Join-Path $Work 'ca.pem') --max-filesize 268435456 `
            --connect-timeout 20 --max-time 600 -o (Join-Path $Work $Out) "$Server/$Path"
        if ($LASTEXITCODE -ne 0) { Fail 4 "downloading $Server/$Path failed (curl exit $LASTEXITCODE)" }
    }
    function Test-Signature([string]$File, [string]$Sig) {
        & $OpenSsl pkeyutl -verify -pubin -inkey (Join-Path $Work 'release.pub.pem') -rawin `
            -in (Join-Path $Work $File) -sigfile (Join-Path $Work $Sig) | Out-Null
        return ($LASTEXITCODE -eq 0)
    }

    Say "downloading the $Platform agent from $Server"
    Fetch 'dist/SHA256SUMS' 'SHA256SUMS'
    Fetch 'dist/SHA256SUMS.sig' 'SHA256SUMS.sig'
    Fetch "dist/agent/$Platform/vigo-agent.exe" 'vigo-agent.exe'
    Fetch "dist/agent/$Platform/vigo-agent.exe.sig" 'vigo-agent.exe.sig'
    if (-not (Test-Signature 'SHA256SUMS' 'SHA256SUMS.sig')) {
        Fail 3 'SHA256SUMS is not signed by the release key in this script; refusing to install anything'
    }
    $want = ''
    foreach ($line in Get-Content (Join-Path $Work 'SHA256SUMS')) {
        $parts = $line -split '  ', 2
        if ($parts.Count -eq 2 -and $parts[1] -eq "agent/$Platform/vigo-agent.exe") { $want = $parts[0] }
    }
    if ($want -eq '') { Fail 3 "SHA256SUMS lists no agent/$Platform/vigo-agent.exe; refusing to install anything" }
    $got = (Get-FileHash -Algorithm SHA256 (Join-Path $Work 'vigo-agent.exe')).Hash.ToLowerInvariant()
    if ($got -ne $want) { Fail 3 "the downloaded agent's SHA-256 $got is not $want from SHA256SUMS; refusing to install anything" }
    if (-not (Test-Signature 'vigo-agent.exe' 'vigo-agent.exe.sig')) {
        Fail 3 "the agent's signature does not verify against the release key; refusing to install anything"
    }
    Say "verified agent/$Platform/vigo-agent.exe (sha256 $got)"

    # A running service holds its executable open: stop it before the replacement.
    $existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($existing -and $existing.Status -ne 'Stopped') { Stop-Service -Name $ServiceName -Force }
    New-Item -ItemType Directory -Force -Path $BinDir | Out-Null
    Copy-Item -Force (Join-Path $Work 'vigo-agent.exe') "$Bin.new"
    Move-Item -Force "$Bin.new" $Bin

    if ((Test-Path (Join-Path $State 'node.pem')) -and (Test-Path (Join-Path $State 'node'))) {
        Say "already enrolled as $(Get-Content (Join-Path $State 'node')); not enrolling again"
    } else {
        $enrollArgs = @('enroll', '--server', $Server, '--token', $Token, '--ca-fingerprint', $Fingerprint, '--state', $State)
        if ($Hostname -ne '') { $enrollArgs += @('--hostname', $Hostname) }
        & $Bin @enrollArgs
        if ($LASTEXITCODE -ne 0) { Fail 6 "enrollment failed (vigo-agent exit $LASTEXITCODE); see the message above" }
    }

    Install-VigoService

    if ($NoStart) {
        & $Bin once --state $State | Out-Null
        if ($LASTEXITCODE -notin @(0, 1, 2)) { Fail 8 "the first check-in failed (vigo-agent once exit $LASTEXITCODE)" }
        $result = 'converged once'
        $started = "service $ServiceName installed, not started (-NoStart)"
    } else {
        $deadline = (Get-Date).AddSeconds($Timeout)
        while (-not (Test-Path (Join-Path $State 'cache\bundle'))) {
            if ((Get-Date) -gt $deadline) { Fail 8 "no successful check-in within $Timeout s; check the service and that this machine reaches $Server" }
            Start-Sleep -Seconds 1
        }
        $result = 'checked in'
        $started = "service $ServiceName running"
    }
    $node = Get-Content (Join-Path $State 'node')
    "vigo-bootstrap: ok: $node enrolled with $Server and $result; agent $Bin, $started"
} finally {
    Remove-Item -Recurse -Force $Work -ErrorAction SilentlyContinue
}
