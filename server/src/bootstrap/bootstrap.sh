#!/bin/sh
# Vigo bootstrap for Linux, macOS, FreeBSD, OpenBSD, NetBSD and illumos (docs/bootstrap.md).
#
#   curl -fsSL --cacert ca.pem https://SERVER:PORT/bootstrap.sh |
#     sudo sh -s -- --token TOKEN --ca-fingerprint SHA256
#
# Checks the CA below against --ca-fingerprint, downloads the agent for this OS and
# architecture over TLS pinned to that CA, verifies its SHA-256 and Ed25519 signature
# against the release key below, installs it, enrolls, installs and starts the service, and
# waits for the first check-in. Safe to run again.
#
# Exit codes: 0 ok; 2 usage error; 3 refused: CA fingerprint, checksum or signature
# mismatch (nothing installed); 4 download failed; 5 a requirement is missing (root,
# curl, openssl 3, a supported OS/architecture, the service manager); 6 enrollment
# failed; 7 installing or starting the service failed; 8 no successful check-in in time.
#
# This file was rendered by the server: the three values below were checked to hold
# only URL or PEM characters before they were pasted in.

VIGO_SERVER_URL='@@VIGO_SERVER_URL@@'
VIGO_CA_PEM='@@VIGO_CA_PEM@@'
VIGO_RELEASE_PUB_PEM='@@VIGO_RELEASE_PUB_PEM@@'

# Everything runs from main, called on the last line, so a truncated download runs nothing.

say() {
    printf 'vigo-bootstrap: %s\n' "$*" >&2
}

die() {
    code=$1
    shift
    printf 'vigo-bootstrap: error: %s\n' "$*" >&2
    exit "$code"
}

usage() {
    cat <<'EOF'
usage: sh bootstrap.sh --token TOKEN --ca-fingerprint SHA256 [options]

  --token TOKEN           one-time enrollment token (vigocli token create)
  --ca-fingerprint FP     SHA-256 of the server CA's DER (vigo-server init prints it)
  --server URL            the server (default: the one this script came from)
  --hostname NAME         the node name to enroll as (default: the agent's fqdn fact)
  --root DIR              install beneath DIR (tests, images); needs --no-start
  --no-start              install the service file but do not start it; run the agent
                          once instead
  --timeout SECS          how long to wait for the first check-in (default 120)
  --os OS, --arch ARCH    override detection (linux darwin freebsd openbsd netbsd
                          illumos; x86_64 aarch64 armv7)
  --openssl PATH          the OpenSSL 3 binary (default: openssl)
  --print-plan            print the service files and commands, change nothing
  --help                  this text
EOF
}

# Reads one option's value: "--opt VALUE" or "--opt=VALUE".
need_value() {
    [ -n "$2" ] || die 2 "$1 needs a value (see --help)"
}

parse_args() {
    TOKEN=''
    FINGERPRINT=''
    SERVER="$VIGO_SERVER_URL"
    NODE_NAME=''
    ROOT=''
    NO_START=0
    PLAN=0
    TIMEOUT=120
    OS=''
    ARCH=''
    OPENSSL=openssl
    while [ $# -gt 0 ]; do
        opt=$1
        val=''
        has_val=0
        case $opt in
        --*=*)
            val=${opt#*=}
            opt=${opt%%=*}
            has_val=1
            ;;
        esac
        case $opt in
        --token | --ca-fingerprint | --server | --hostname | --root | --timeout | --os | --arch | --openssl)
            if [ "$has_val" = 0 ]; then
                [ $# -ge 2 ] || die 2 "$opt needs a value (see --help)"
                val=$2
                shift
            fi
            need_value "$opt" "$val"
            ;;
        esac
        case $opt in
        --token) TOKEN=$val ;;
        --ca-fingerprint) FINGERPRINT=$val ;;
        --server) SERVER=$val ;;
        --hostname) NODE_NAME=$val ;;
        --root) ROOT=$val ;;
        --timeout) TIMEOUT=$val ;;
        --os) OS=$val ;;
        --arch) ARCH=$val ;;
        --openssl) OPENSSL=$val ;;
        --no-start) NO_START=1 ;;
        --print-plan) PLAN=1 ;;
        --help | -h)
            usage
            exit 0
            ;;
        *) die 2 "unknown option $opt (see --help)" ;;
        esac
        shift
    done
}

check_args() {
    case $TIMEOUT in
    '' | *[!0-9]*) die 2 "--timeout must be a number of seconds" ;;
    esac
    case $ROOT in
    '') ;;
    /*)
        case $ROOT in *[!A-Za-z0-9._/-]*) die 2 "--root may hold only letters, digits, '.', '_', '-' and '/'" ;; esac
        ROOT=${ROOT%/}
        [ "$PLAN" = 1 ] || [ "$NO_START" = 1 ] ||
            die 2 "--root needs --no-start: this host's service manager cannot start a service installed beneath another root"
        ;;
    *) die 2 "--root must be an absolute path" ;;
    esac
    [ "$PLAN" = 1 ] && return 0
    [ -n "$TOKEN" ] || die 2 "--token is required (create one with: vigocli token create --hosts GLOB)"
    case $TOKEN in
    *[!A-Za-z0-9_]*) die 2 "--token does not look like a Vigo token (vigo_<id>_<secret>)" ;;
    esac
    [ -n "$FINGERPRINT" ] || die 2 "--ca-fingerprint is required (vigo-server init printed it)"
    FINGERPRINT=$(printf '%s' "$FINGERPRINT" | tr -d ':' | tr 'ABCDEF' 'abcdef')
    case $FINGERPRINT in
    *[!0-9a-f]*) die 2 "--ca-fingerprint must be 64 hex digits (colons allowed)" ;;
    esac
    [ "${#FINGERPRINT}" -eq 64 ] || die 2 "--ca-fingerprint must be 64 hex digits (colons allowed)"
    SERVER=${SERVER%/}
    case $SERVER in
    https://*) ;;
    *) die 2 "--server must be an https:// URL" ;;
    esac
    case ${SERVER#https://} in
    '' | *[!A-Za-z0-9.:\[\]-]*) die 2 "--server must be https://HOST[:PORT]" ;;
    esac
    case $NODE_NAME in
    *[!A-Za-z0-9._-]*) die 2 "--hostname may hold only letters, digits, '.', '_' and '-'" ;;
    esac
}

detect_platform() {
    if [ -z "$OS" ]; then
        kernel=$(uname -s)
        case $kernel in
        Linux) OS=linux ;;
        Darwin) OS=darwin ;;
        FreeBSD) OS=freebsd ;;
        OpenBSD) OS=openbsd ;;
        NetBSD) OS=netbsd ;;
        SunOS) OS=illumos ;;
        *) die 5 "unsupported operating system $kernel (supported: Linux, macOS, FreeBSD, OpenBSD, NetBSD, illumos; Windows uses bootstrap.ps1)" ;;
        esac
    fi
    case $OS in
    linux | darwin | freebsd | openbsd | netbsd | illumos) ;;
    windows) die 2 "this script does not install on Windows; use /bootstrap.ps1 (docs/bootstrap.md)" ;;
    *) die 2 "--os must be one of linux darwin freebsd openbsd netbsd illumos" ;;
    esac
    if [ -z "$ARCH" ]; then
        machine=$(uname -m)
        # illumos reports i86pc from uname -m; isainfo names the 64-bit instruction set.
        if [ "$OS" = illumos ] && command -v isainfo >/dev/null 2>&1; then
            machine=$(isainfo -k)
        fi
        case $machine in
        x86_64 | amd64) ARCH=x86_64 ;;
        aarch64 | arm64 | evbarm64*) ARCH=aarch64 ;;
        armv7* | earmv7*) ARCH=armv7 ;;
        *) die 5 "unsupported architecture $machine (supported: x86_64/amd64, aarch64/arm64, armv7)" ;;
        esac
    fi
    case $ARCH in
    x86_64 | aarch64 | armv7) ;;
    *) die 2 "--arch must be one of x86_64 aarch64 armv7" ;;
    esac
    PLATFORM="$OS-$ARCH"
}

# --- Service install: every file and command goes through svc_file, svc_run or
# svc_try, which print them under --print-plan and do them otherwise. ---

BIN_PATH=/usr/local/sbin/vigo-agent
STATE_PATH=/var/lib/vigo/agent

# svc_file PATH MODE, content on stdin: written beside, then renamed over PATH.
svc_file() {
    if [ "$PLAN" = 1 ]; then
        printf 'file %s %s\n' "$ROOT$1" "$2"
        sed 's/^/| /'
        return 0
    fi
    target="$ROOT$1"
    mkdir -p "$(dirname "$target")" || die 7 "cannot create the directory of $target"
    if ! { cat >"$target.vigo-new" && chmod "$2" "$target.vigo-new" && mv -f "$target.vigo-new" "$target"; }; then
        die 7 "writing $target failed"
    fi
}

# svc_run CMD...: a command that must succeed (skipped with --no-start).
svc_run() {
    if [ "$PLAN" = 1 ]; then
        if [ "$NO_START" = 1 ]; then printf 'skip %s\n' "$*"; else printf 'run %s\n' "$*"; fi
        return 0
    fi
    [ "$NO_START" = 1 ] && return 0
    "$@" </dev/null >&2 || die 7 "'$*' failed; the agent is installed and enrolled, run this script again once that is fixed"
}

# svc_try CMD...: a command whose failure is expected at times (stopping what is not running).
svc_try() {
    if [ "$PLAN" = 1 ]; then
        if [ "$NO_START" = 1 ]; then printf 'skip %s\n' "$*"; else printf 'try %s\n' "$*"; fi
        return 0
    fi
    [ "$NO_START" = 1 ] && return 0
    "$@" </dev/null >/dev/null 2>&1 || true
}

service_tool() {
    case $OS in
    linux) echo systemctl ;;
    darwin) echo launchctl ;;
    freebsd) echo service ;;
    openbsd) echo rcctl ;;
    netbsd) echo /etc/rc.d/rc.subr ;;
    illumos) echo svccfg ;;
    esac
}

service_name() {
    case $OS in
    linux) echo vigo-agent.service ;;
    darwin) echo system/com.vigo.agent ;;
    freebsd | openbsd | netbsd) echo vigo_agent ;;
    illumos) echo svc:/site/vigo-agent:default ;;
    esac
}

install_service() {
    case $OS in
    linux) install_systemd ;;
    darwin) install_launchd ;;
    freebsd) install_freebsd ;;
    openbsd) install_openbsd ;;
    netbsd) install_netbsd ;;
    illumos) install_smf ;;
    esac
}

install_systemd() {
    svc_file /etc/systemd/system/vigo-agent.service 0644 <<'EOF'
# Managed by the Vigo bootstrap; rewritten when it runs again.
[Unit]
Description=Vigo agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/sbin/vigo-agent run --state /var/lib/vigo/agent
# SIGTERM: the agent finishes its cycle, then exits 0; a cycle may run package managers.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=300
# Exit 3 (not enrolled) is not fixed by restarting.
RestartPreventExitStatus=3
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
EOF
    svc_run systemctl daemon-reload
    svc_run systemctl enable vigo-agent.service
    svc_run systemctl restart vigo-agent.service
}

install_launchd() {
    svc_file /Library/LaunchDaemons/com.vigo.agent.plist 0644 <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Managed by the Vigo bootstrap; rewritten when it runs again. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.vigo.agent</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/local/sbin/vigo-agent</string>
		<string>run</string>
		<string>--state</string>
		<string>/var/lib/vigo/agent</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ExitTimeOut</key>
	<integer>300</integer>
	<key>StandardErrorPath</key>
	<string>/var/log/vigo-agent.log</string>
</dict>
</plist>
EOF
    svc_try launchctl bootout system/com.vigo.agent
    svc_run launchctl enable system/com.vigo.agent
    svc_run launchctl bootstrap system /Library/LaunchDaemons/com.vigo.agent.plist
}

install_freebsd() {
    svc_file /usr/local/etc/rc.d/vigo_agent 0755 <<'EOF'
#!/bin/sh
#
# PROVIDE: vigo_agent
# REQUIRE: LOGIN NETWORKING
# KEYWORD: shutdown
#
# Managed by the Vigo bootstrap; rewritten when it runs again.

. /etc/rc.subr

name="vigo_agent"
rcvar="vigo_agent_enable"
pidfile="/var/run/vigo_agent.pid"
procname="/usr/local/sbin/vigo-agent"
command="/usr/sbin/daemon"
command_args="-f -S -T vigo-agent -p ${pidfile} ${procname} run --state /var/lib/vigo/agent"

load_rc_config $name
: ${vigo_agent_enable:="NO"}
run_rc_command "$1"
EOF
    svc_file /etc/rc.conf.d/vigo_agent 0644 <<'EOF'
vigo_agent_enable="YES"
EOF
    svc_try service vigo_agent stop
    svc_run service vigo_agent start
}

install_openbsd() {
    svc_file /etc/rc.d/vigo_agent 0555 <<'EOF'
#!/bin/ksh
#
# Managed by the Vigo bootstrap; rewritten when it runs again.

daemon="/usr/local/sbin/vigo-agent"
daemon_flags="run --state /var/lib/vigo/agent"

. /etc/rc.d/rc.subr

rc_bg=YES
rc_reload=NO

rc_cmd $1
EOF
    svc_run rcctl enable vigo_agent
    svc_try rcctl stop vigo_agent
    svc_run rcctl start vigo_agent
}

install_netbsd() {
    svc_file /etc/rc.d/vigo_agent 0555 <<'EOF'
#!/bin/sh
#
# PROVIDE: vigo_agent
# REQUIRE: NETWORKING DAEMON
# KEYWORD: shutdown
#
# Managed by the Vigo bootstrap; rewritten when it runs again.

$_rc_subr_loaded . /etc/rc.subr

name="vigo_agent"
rcvar=$name
command="/usr/local/sbin/vigo-agent"
procname="${command}"
command_args="run --state /var/lib/vigo/agent >/dev/null 2>&1 &"

load_rc_config $name
run_rc_command "$1"
EOF
    svc_file /etc/rc.conf.d/vigo_agent 0644 <<'EOF'
vigo_agent=YES
EOF
    svc_try /etc/rc.d/vigo_agent stop
    svc_run /etc/rc.d/vigo_agent start
}

install_smf() {
    svc_file /var/svc/manifest/site/vigo-agent.xml 0444 <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE service_bundle SYSTEM "/usr/share/lib/xml/dtd/service_bundle.dtd.1">
<!-- Managed by the Vigo bootstrap; rewritten when it runs again. -->
<service_bundle type="manifest" name="vigo-agent">
  <service name="site/vigo-agent" type="service" version="1">
    <create_default_instance enabled="false"/>
    <single_instance/>
    <dependency name="network" grouping="require_all" restart_on="none" type="service">
      <service_fmri value="svc:/milestone/network:default"/>
    </dependency>
    <dependency name="filesystem" grouping="require_all" restart_on="none" type="service">
      <service_fmri value="svc:/system/filesystem/local:default"/>
    </dependency>
    <exec_method type="method" name="start" exec="/usr/local/sbin/vigo-agent run --state /var/lib/vigo/agent" timeout_seconds="60"/>
    <exec_method type="method" name="stop" exec=":kill" timeout_seconds="300"/>
    <property_group name="startd" type="framework">
      <propval name="duration" type="astring" value="child"/>
    </property_group>
    <stability value="Unstable"/>
    <template>
      <common_name>
        <loctext xml:lang="C">Vigo agent</loctext>
      </common_name>
    </template>
  </service>
</service_bundle>
EOF
    svc_run svccfg import /var/svc/manifest/site/vigo-agent.xml
    svc_run svcadm enable svc:/site/vigo-agent:default
    svc_run svcadm restart svc:/site/vigo-agent:default
}

print_plan() {
    printf '# vigo bootstrap plan for %s: service %s\n' "$PLATFORM" "$(service_name)"
    printf 'binary %s\n' "$ROOT$BIN_PATH"
    printf 'state %s\n' "$ROOT$STATE_PATH"
    install_service
}

# --- Download and verification ---

# sha256 FILE: the lower-case hex digest.
sha256() {
    "$OPENSSL" dgst -sha256 -r "$1" </dev/null | sed 's/ .*//' | tr 'ABCDEF' 'abcdef'
}

fetch() {
    url="$SERVER/$1"
    curl -fsS --globoff --proto =https --tlsv1.2 --cacert "$WORK/ca.pem" \
        --max-filesize 268435456 --connect-timeout 20 --max-time 600 \
        -o "$WORK/$2" "$url" </dev/null ||
        die 4 "downloading $url failed (curl exit $?); is the server reachable and started with --dist, and does its dist have an agent for $PLATFORM?"
}

verify_sig() {
    "$OPENSSL" pkeyutl -verify -pubin -inkey "$WORK/release.pub.pem" -rawin \
        -in "$WORK/$1" -sigfile "$WORK/$2" </dev/null >/dev/null 2>&1
}

require_tools() {
    command -v curl >/dev/null 2>&1 ||
        die 5 "curl is required; install it (apt-get install curl, pkg install curl, pkg_add curl, …) and run this again"
    command -v "$OPENSSL" >/dev/null 2>&1 ||
        die 5 "openssl 3 is required to verify the agent; install it or pass --openssl PATH"
    version=$("$OPENSSL" version 2>/dev/null </dev/null)
    case $version in
    "OpenSSL "[3-9].* | "OpenSSL "[1-9][0-9].*) ;;
    *) die 5 "OpenSSL 3 or later is required for Ed25519 verification, found '$version'; install it (e.g. openssl-3 packages) and pass --openssl PATH" ;;
    esac
    if [ "$NO_START" = 0 ]; then
        tool=$(service_tool)
        [ "$OS" = linux ] && [ ! -d /run/systemd/system ] &&
            die 5 "this Linux does not run systemd; install the agent service by hand (docs/bootstrap.md) or use --no-start"
        command -v "$tool" >/dev/null 2>&1 || [ -e "$tool" ] ||
            die 5 "the service manager ($tool) is missing; use --no-start to install without starting"
    fi
}

download_and_verify() {
    printf '%s\n' "$VIGO_CA_PEM" >"$WORK/ca.pem"
    printf '%s\n' "$VIGO_RELEASE_PUB_PEM" >"$WORK/release.pub.pem"
    "$OPENSSL" x509 -in "$WORK/ca.pem" -outform DER -out "$WORK/ca.der" </dev/null 2>/dev/null ||
        die 3 "the CA certificate in this script is unreadable; download the script again"
    actual=$(sha256 "$WORK/ca.der")
    [ "$actual" = "$FINGERPRINT" ] ||
        die 3 "the server's CA (fingerprint $actual) does not match --ca-fingerprint $FINGERPRINT; nothing was downloaded or installed"

    say "downloading the $PLATFORM agent from $SERVER"
    BIN_NAME=vigo-agent
    fetch dist/SHA256SUMS SHA256SUMS
    fetch dist/SHA256SUMS.sig SHA256SUMS.sig
    fetch "dist/agent/$PLATFORM/$BIN_NAME" agent
    fetch "dist/agent/$PLATFORM/$BIN_NAME.sig" agent.sig

    verify_sig SHA256SUMS SHA256SUMS.sig ||
        die 3 "SHA256SUMS is not signed by the release key in this script; refusing to install anything"
    want=$(awk -v p="agent/$PLATFORM/$BIN_NAME" '$2 == p { print $1 }' "$WORK/SHA256SUMS")
    [ -n "$want" ] ||
        die 3 "SHA256SUMS lists no agent/$PLATFORM/$BIN_NAME; refusing to install anything"
    got=$(sha256 "$WORK/agent")
    [ "$got" = "$want" ] ||
        die 3 "the downloaded agent's SHA-256 $got is not $want from SHA256SUMS; refusing to install anything"
    verify_sig agent agent.sig ||
        die 3 "the agent's signature does not verify against the release key; refusing to install anything"
    say "verified agent/$PLATFORM/$BIN_NAME (sha256 $got, signed by the release key)"
}

install_binary() {
    target="$ROOT$BIN_PATH"
    mkdir -p "$(dirname "$target")" || die 7 "cannot create $(dirname "$target")"
    # A new file beside the old one, renamed over it: a running agent keeps its inode.
    if ! { cp "$WORK/agent" "$target.vigo-new" && chmod 0755 "$target.vigo-new" && mv -f "$target.vigo-new" "$target"; }; then
        die 7 "installing $target failed"
    fi
}

enroll() {
    STATE="$ROOT$STATE_PATH"
    if [ -s "$STATE/node.pem" ] && [ -s "$STATE/node" ]; then
        say "already enrolled as $(cat "$STATE/node") with $(cat "$STATE/server" 2>/dev/null); not enrolling again"
        return 0
    fi
    set -- enroll --server "$SERVER" --token "$TOKEN" --ca-fingerprint "$FINGERPRINT" --state "$STATE"
    [ -n "$NODE_NAME" ] && set -- "$@" --hostname "$NODE_NAME"
    "$ROOT$BIN_PATH" "$@" </dev/null >"$WORK/enroll.log" 2>&1 || {
        code=$?
        cat "$WORK/enroll.log" >&2
        die 6 "enrollment failed (vigo-agent exit $code); see the message above"
    }
}

first_checkin() {
    if [ "$NO_START" = 1 ]; then
        set -- once --state "$STATE"
        [ -n "$ROOT" ] && set -- "$@" --root "$ROOT"
        code=0
        "$ROOT$BIN_PATH" "$@" </dev/null >"$WORK/once.log" 2>&1 || code=$?
        case $code in
        0 | 2) RESULT="converged once" ;;
        1)
            grep '^failed' "$WORK/once.log" >&2
            RESULT="converged once, with failed resources (listed above)"
            ;;
        *)
            cat "$WORK/once.log" >&2
            die 8 "the first check-in failed (vigo-agent once exit $code); see the message above"
            ;;
        esac
        return 0
    fi
    waited=0
    until [ -s "$STATE/cache/bundle" ]; do
        [ "$waited" -ge "$TIMEOUT" ] &&
            die 8 "no successful check-in within $TIMEOUT s: $STATE/cache/bundle is missing; check the service's log and that this machine reaches $SERVER"
        sleep 1
        waited=$((waited + 1))
    done
    RESULT="checked in"
}

main() {
    umask 022
    parse_args "$@"
    check_args
    detect_platform
    if [ "$PLAN" = 1 ]; then
        print_plan
        exit 0
    fi
    if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
        die 5 "run this as root (sudo sh -s -- …) or with --root DIR --no-start"
    fi
    require_tools
    WORK=$(mktemp -d 2>/dev/null) || die 5 "mktemp -d failed; cannot create a working directory"
    trap 'rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM

    download_and_verify
    install_binary
    enroll
    install_service
    first_checkin
    node=$(cat "$STATE/node" 2>/dev/null)
    if [ "$NO_START" = 1 ]; then
        started="service $(service_name) installed, not started (--no-start)"
    else
        started="service $(service_name) running"
    fi
    printf 'vigo-bootstrap: ok: %s enrolled with %s and %s; agent %s, %s\n' \
        "$node" "$SERVER" "$RESULT" "$ROOT$BIN_PATH" "$started"
}

main "$@"
