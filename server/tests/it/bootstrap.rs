//! The bootstrap end to end: a real `vigo-server run --dist` on 127.0.0.1 serving a dist
//! built from the debug `vigo-agent` and signed with a throwaway key; real curl, openssl and
//! dash run the served `bootstrap.sh` into a temporary root (`--root --no-start`). Also the
//! tampered cases (binary, signature, SHA256SUMS.sig, CA fingerprint), the route gating,
//! `bootstrap.ps1`, `vigocli release sign|verify`, and the service plans of every OS family
//! (`--print-plan`, compared with `tests/fixtures/bootstrap/plan-*.expected`).
//!
//! These tests need curl, openssl 3 and dash and fail, rather than pass, without them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use vigo_shared::sign::SigningKey;

use crate::e2e::{agent_bin, seed_root};
use crate::fixture::TempDir;
use crate::serverkit::{Server, init, server_bin};

/// Fails the test when a tool the bootstrap needs is missing (CI installs them).
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required by the bootstrap tests; install it (apt-get install -y curl openssl dash)"
    );
}

fn require_all() {
    for tool in ["curl", "openssl", "dash"] {
        require(tool);
    }
}

/// The platform folder of this machine, as the script computes it.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "arm" => "armv7",
        other => panic!("no dist platform for {other}"),
    };
    format!("linux-{arch}")
}

/// A dist with the debug agent for this machine, signed with a throwaway key.
fn make_dist(dir: &Path) -> PathBuf {
    let dist = dir.join("dist");
    let pdir = dist.join("agent").join(platform());
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::copy(agent_bin(), pdir.join("vigo-agent")).unwrap();
    // A second platform, so that SHA256SUMS has more than the one line the script wants.
    let other = dist.join("agent/freebsd-x86_64");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("vigo-agent"), b"not really an agent\n").unwrap();
    vigo_server::release::sign_dist(&dist, &SigningKey::from_seed([42; 32])).unwrap();
    dist
}

fn agent_path(dist: &Path) -> PathBuf {
    dist.join("agent").join(platform()).join("vigo-agent")
}

/// SHA-256 of the CA certificate's DER.
fn ca_fingerprint(server: &Server) -> String {
    let pem = server.file("ca.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    vigo_shared::hex::encode(&Sha256::digest(&der))
}

fn ca_file(server: &Server) -> String {
    server.data.join("ca.pem").display().to_string()
}

/// `curl … URL/bootstrap.sh | dash -s -- ARGS`, exactly as an operator runs it;
/// `VIGO_BOOTSTRAP_SHELL` (e.g. `mksh`, `posh`, `busybox sh`) replaces dash.
fn bootstrap(server: &Server, args: &[&str]) -> Output {
    let shell = std::env::var("VIGO_BOOTSTRAP_SHELL").unwrap_or_else(|_| "dash".to_string());
    bootstrap_with(&shell, server, args)
}

/// The same through another shell, e.g. `busybox sh`.
fn bootstrap_with(shell: &str, server: &Server, args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let line = format!(
        "set -o pipefail; curl -fsSL --cacert '{}' '{}/bootstrap.sh' | {shell} -s -- {}",
        ca_file(server),
        server.url(),
        quoted.join(" ")
    );
    Command::new("bash").args(["-c", &line]).output().unwrap()
}

/// `busybox sh` when busybox is installed, else `dash` (with a note).
fn busybox_or_dash() -> &'static str {
    let busybox = Command::new("busybox")
        .args(["sh", "-c", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if busybox {
        "busybox sh"
    } else {
        eprintln!("note: busybox is not installed; running under dash only");
        "dash"
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A root seeded like a minimal Debian, and the standard arguments for it.
struct Target {
    _tmp: TempDir,
    root: PathBuf,
}

impl Target {
    fn new() -> Target {
        let tmp = TempDir::new("bootstrap-root");
        let root = tmp.0.join("root");
        seed_root(&root);
        Target { _tmp: tmp, root }
    }

    fn args<'a>(&'a self, token: &'a str, fp: &'a str) -> Vec<&'a str> {
        vec![
            "--token",
            token,
            "--ca-fingerprint",
            fp,
            "--hostname",
            "web01.fleet",
            "--root",
            self.root.to_str().unwrap(),
            "--no-start",
        ]
    }

    fn nothing_installed(&self) -> bool {
        !self.root.join("usr/local/sbin/vigo-agent").exists()
            && !self.root.join("var/lib/vigo").exists()
    }
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().unwrap()
}

#[test]
fn bootstrap_enrolls_converges_and_is_safe_to_run_again() {
    require_all();
    let tmp = TempDir::new("bootstrap-dist");
    let dist = make_dist(&tmp.0);
    let server = Server::start(&["--dist", dist.to_str().unwrap()]);
    let fp = ca_fingerprint(&server);
    let target = Target::new();
    let token = server.token("web01.fleet", 600);

    let out = bootstrap(&server, &target.args(&token, &fp));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root = target.root.display();
    assert_eq!(
        stdout,
        format!(
            "vigo-bootstrap: ok: web01.fleet enrolled with {} and converged once; agent {root}/usr/local/sbin/vigo-agent, service vigo-agent.service installed, not started (--no-start)\n",
            server.url()
        ),
        "{}",
        text(&out)
    );
    let state = target.root.join("var/lib/vigo/agent");
    assert!(state.join("node.pem").is_file(), "enrolled: {}", text(&out));
    assert!(state.join("cache/bundle").is_file(), "checked in");
    let installed = target.root.join("usr/local/sbin/vigo-agent");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(agent_path(&dist)).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let motd = std::fs::read_to_string(target.root.join("etc/motd")).unwrap();
    assert!(motd.contains("Host: web01.fleet"), "converged: {motd}");
    let unit =
        std::fs::read_to_string(target.root.join("etc/systemd/system/vigo-agent.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/sbin/vigo-agent run --state /var/lib/vigo/agent"),
        "{unit}"
    );

    // Again, with the used token (and busybox's sh when it is here): no second
    // enrollment, the same success.
    let node_pem = std::fs::read(state.join("node.pem")).unwrap();
    let again = bootstrap_with(busybox_or_dash(), &server, &target.args(&token, &fp));
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already enrolled as web01.fleet"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read(state.join("node.pem")).unwrap(), node_pem);
    assert_eq!(
        server.log().matches("enrolled node web01.fleet").count(),
        1,
        "{}",
        server.log()
    );
    assert_eq!(
        std::fs::read_to_string(target.root.join("etc/systemd/system/vigo-agent.service")).unwrap(),
        unit
    );
}

/// Runs the bootstrap against a dist changed by `tamper` after the server verified it.
fn refused(tamper: impl FnOnce(&Path), args_fp: Option<&str>) -> (Output, Target, Server) {
    let tmp = TempDir::new("bootstrap-dist");
    let dist = make_dist(&tmp.0);
    let server = Server::start(&["--dist", dist.to_str().unwrap()]);
    tamper(&dist);
    let fp = args_fp
        .map(str::to_string)
        .unwrap_or_else(|| ca_fingerprint(&server));
    let target = Target::new();
    let token = server.token("web01.fleet", 600);
    let out = bootstrap(&server, &target.args(&token, &fp));
    assert!(
        target.nothing_installed(),
        "nothing may be installed: {}",
        text(&out)
    );
    assert!(!server.log().contains("enrolled node"), "{}", server.log());
    (out, target, server)
}

fn assert_refused(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(3), "{}", text(out));
    assert!(out.stdout.is_empty(), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(message),
        "expected {message:?} in {}",
        text(out)
    );
}

#[test]
fn bootstrap_refuses_a_tampered_binary() {
    require_all();
    let (out, ..) = refused(
        |dist| {
            let path = agent_path(dist);
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
        },
        None,
    );
    assert_refused(&out, "is not");
    assert_refused(&out, "from SHA256SUMS; refusing to install anything");
}

#[test]
fn bootstrap_refuses_a_binary_whose_checksum_was_changed_too() {
    require_all();
    // The attacker replaces the binary and fixes SHA256SUMS, but cannot re-sign it.
    let (out, ..) = refused(
        |dist| {
            let path = agent_path(dist);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(b"evil");
            std::fs::write(&path, &bytes).unwrap();
            let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
            let old = vigo_server::release::sha256_hex(&bytes[..bytes.len() - 4]);
            let new = vigo_server::release::sha256_hex(&bytes);
            std::fs::write(dist.join("SHA256SUMS"), sums.replace(&old, &new)).unwrap();
        },
        None,
    );
    assert_refused(&out, "SHA256SUMS is not signed by the release key");
}

#[test]
fn bootstrap_refuses_a_bad_signature() {
    require_all();
    // SHA256SUMS.sig made by another key.
    let (out, ..) = refused(
        |dist| {
            let sums = std::fs::read(dist.join("SHA256SUMS")).unwrap();
            let other = SigningKey::from_seed([7; 32]);
            std::fs::write(dist.join("SHA256SUMS.sig"), other.sign(&sums)).unwrap();
        },
        None,
    );
    assert_refused(&out, "SHA256SUMS is not signed by the release key");
    // The binary's own .sig flipped, its checksum intact.
    let (out, ..) = refused(
        |dist| {
            let sig = dist.join("agent").join(platform()).join("vigo-agent.sig");
            let mut bytes = std::fs::read(&sig).unwrap();
            bytes[0] ^= 0x80;
            std::fs::write(&sig, bytes).unwrap();
        },
        None,
    );
    assert_refused(&out, "the agent's signature does not verify");
}

#[test]
fn bootstrap_refuses_a_wrong_ca_fingerprint_before_any_download() {
    require_all();
    let wrong = "00".repeat(32);
    let (out, _target, server) = refused(|_| {}, Some(&wrong));
    assert_refused(&out, "does not match --ca-fingerprint");
    assert!(!server.log().contains("served dist/"), "{}", server.log());
    assert!(
        server.log().contains("served bootstrap.sh"),
        "{}",
        server.log()
    );
}

#[test]
fn the_server_refuses_to_start_with_a_bad_dist() {
    let tmp = TempDir::new("bootstrap-bad-dist");
    let dist = make_dist(&tmp.0);
    let path = agent_path(&dist);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let data = tmp.0.join("data");
    assert!(init(&data).status.success());
    let out = Command::new(server_bin())
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--dist")
        .arg(&dist)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not verify") && stderr.contains(&path.display().to_string()),
        "{stderr}"
    );
    // And a SHA256SUMS.sig by another key.
    let tmp2 = TempDir::new("bootstrap-bad-dist");
    let dist = make_dist(&tmp2.0);
    std::fs::write(dist.join("SHA256SUMS.sig"), [0u8; 64]).unwrap();
    let out = Command::new(server_bin())
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--dist")
        .arg(&dist)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SHA256SUMS.sig"),
        "{}",
        text(&out)
    );
}

#[test]
fn bootstrap_routes_are_open_and_nothing_else_is() {
    require("curl");
    let tmp = TempDir::new("bootstrap-dist");
    let dist = make_dist(&tmp.0);
    let server = Server::start(&["--dist", dist.to_str().unwrap()]);
    let ca = ca_file(&server);
    // An unenrolled client (no certificate).
    let status = |path: &str, extra: &[&str]| -> String {
        let url = format!("{}{path}", server.url());
        let mut args = vec![
            "-sS",
            "--path-as-is",
            "--cacert",
            &ca,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        let out = curl(&args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status("/bootstrap.sh", &[]), "200");
    assert_eq!(status("/bootstrap.ps1", &[]), "200");
    assert_eq!(status("/dist/SHA256SUMS", &[]), "200");
    assert_eq!(status("/dist/release.pub", &[]), "200");
    assert_eq!(
        status(&format!("/dist/agent/{}/vigo-agent", platform()), &[]),
        "200"
    );
    assert_eq!(status("/v1/checkin", &["-X", "POST", "-d", "{}"]), "401");
    assert_eq!(status("/v1/admin/nodes", &[]), "401");
    assert_eq!(
        status("/v1/admin/tokens", &["-X", "POST", "-d", "{}"]),
        "401"
    );
    for path in [
        "/dist/../data/ca.key",
        "/dist/agent/../../data/ca.key",
        "/dist/agent/linux-x86_64/../../SHA256SUMS",
        "/dist/agent/linux-x86_64/..%2f..%2fSHA256SUMS",
        "/dist/agent/..%2f..%2f..%2fetc/passwd",
        "/dist/%2e%2e%2fSHA256SUMS",
        "/dist/manifest.json",
        "/dist/agent/linux-x86_64/vigocli",
        "/dist/agent/linux-x86_64/vigo-agent.exe",
        "/dist/agent/windows-x86_64/vigo-agent",
        "/dist/agent/linux-mips/vigo-agent",
        "/dist/agent/freebsd-x86_64/vigo-agent.tmp",
        "/dist/server/linux-x86_64/vigo-server",
        "/dist/agent/netbsd-armv7/vigo-agent",
    ] {
        assert_eq!(status(path, &[]), "404", "{path}");
    }
    // The Host header becomes the URL in the script only when it is a plain host.
    assert_eq!(status("/bootstrap.sh", &["-H", "Host: x'$(id)"]), "400");

    let get = |path: &str| -> String {
        let out = curl(&["-fsS", "--cacert", &ca, &format!("{}{path}", server.url())]);
        assert!(out.status.success(), "{path}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let release_pem = std::fs::read_to_string(dist.join("release.pub.pem")).unwrap();
    let ca_pem = server.file("ca.pem");
    for (path, url_line) in [
        (
            "/bootstrap.sh",
            format!("VIGO_SERVER_URL='{}'", server.url()),
        ),
        (
            "/bootstrap.ps1",
            format!("$VigoServerUrl = '{}'", server.url()),
        ),
    ] {
        let script = get(path);
        assert!(script.contains(&url_line), "{path}: {script}");
        assert!(script.contains(release_pem.trim_end()), "{path}");
        assert!(script.contains(ca_pem.trim_end()), "{path}");
        assert!(
            !script.contains("@@VIGO_"),
            "{path}: a placeholder was left"
        );
    }
    let ps1 = get("/bootstrap.ps1");
    for needle in [
        // The agent's Service Control Manager entry, not `run` (which the SCM would end).
        r#"$BinaryPathName = '"' + $Bin + '" service --state "' + $State + '"'"#,
        "New-Service -Name $ServiceName -BinaryPathName $BinaryPathName",
        "-MethodName Change -Arguments @{ PathName = $BinaryPathName",
        "sc.exe failure $ServiceName reset= 86400",
        "dist/agent/$Platform/vigo-agent.exe.sig",
        "pkeyutl -verify -pubin",
        "$VigoReleasePubPem = '-----BEGIN PUBLIC KEY-----",
    ] {
        assert!(ps1.contains(needle), "bootstrap.ps1 lacks {needle:?}");
    }
    assert!(
        !ps1.contains("\" run --state"),
        "bootstrap.ps1 registers `run`"
    );
    assert_eq!(
        get("/dist/release.pub"),
        std::fs::read_to_string(dist.join("release.pub")).unwrap()
    );
}

#[test]
fn without_dist_the_bootstrap_routes_say_so() {
    require("curl");
    let server = Server::start(&[]);
    let out = curl(&[
        "-sS",
        "--cacert",
        &ca_file(&server),
        &format!("{}/bootstrap.sh", server.url()),
        "-w",
        "\n%{http_code}",
    ]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.ends_with("\n404"), "{body}");
    assert!(body.contains("started without --dist"), "{body}");
}

#[test]
fn vigocli_release_sign_and_verify() {
    let tmp = TempDir::new("release-cli");
    let dist = tmp.0.join("dist");
    let pdir = dist.join("agent/linux-x86_64");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("vigo-agent"), b"agent bytes").unwrap();
    std::fs::create_dir_all(dist.join("server/linux-x86_64")).unwrap();
    std::fs::write(dist.join("server/linux-x86_64/vigocli"), b"cli bytes").unwrap();
    let key = tmp.0.join("keys/release.key");
    let vigocli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vigocli"))
            .args(args)
            .output()
            .unwrap()
    };
    let (d, k) = (dist.to_str().unwrap(), key.to_str().unwrap());
    // No key and no --create-key: refused.
    let out = vigocli(&["release", "sign", "--dist", d, "--key", k]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = vigocli(&["release", "sign", "--dist", d, "--key", k, "--create-key"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(public.starts_with("ed25519:"), "{public}");
    assert_eq!(
        std::fs::read_to_string(dist.join("release.pub"))
            .unwrap()
            .trim(),
        public
    );
    assert_eq!(
        std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap(),
        format!(
            "{}  agent/linux-x86_64/vigo-agent\n{}  server/linux-x86_64/vigocli\n",
            vigo_server::release::sha256_hex(b"agent bytes"),
            vigo_server::release::sha256_hex(b"cli bytes")
        )
    );
    assert_eq!(
        std::fs::read(pdir.join("vigo-agent.sig")).unwrap().len(),
        64
    );
    // Deterministic: signing again writes the same bytes.
    let before: Vec<Vec<u8>> = [
        "SHA256SUMS.sig",
        "release.pub.pem",
        "agent/linux-x86_64/vigo-agent.sig",
    ]
    .iter()
    .map(|f| std::fs::read(dist.join(f)).unwrap())
    .collect();
    assert!(
        vigocli(&["release", "sign", "--dist", d, "--key", k, "--create-key"])
            .status
            .success()
    );
    let after: Vec<Vec<u8>> = [
        "SHA256SUMS.sig",
        "release.pub.pem",
        "agent/linux-x86_64/vigo-agent.sig",
    ]
    .iter()
    .map(|f| std::fs::read(dist.join(f)).unwrap())
    .collect();
    assert_eq!(before, after);
    // The PEM is what openssl reads, when openssl is here (the bootstrap tests require it).
    let out = vigocli(&["release", "verify", "--dist", d, "--key-pub", &public]);
    assert!(out.status.success(), "{}", text(&out));
    let out = vigocli(&[
        "release",
        "verify",
        "--dist",
        d,
        "--key-pub",
        &SigningKey::from_seed([1; 32]).public().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A key others may read is refused.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = vigocli(&["release", "sign", "--dist", d, "--key", k]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mode 0600"),
        "{}",
        text(&out)
    );
    // A changed binary fails verification, naming it.
    std::fs::write(pdir.join("vigo-agent"), b"agent bytes!").unwrap();
    let out = vigocli(&["release", "verify", "--dist", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("agent/linux-x86_64/vigo-agent"),
        "{}",
        text(&out)
    );
}

#[test]
fn release_pem_verifies_with_openssl() {
    require("openssl");
    let tmp = TempDir::new("release-openssl");
    let dist = make_dist(&tmp.0);
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(dist.join("release.pub.pem"))
        .arg("-rawin")
        .arg("-in")
        .arg(dist.join("SHA256SUMS"))
        .arg("-sigfile")
        .arg(dist.join("SHA256SUMS.sig"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bootstrap/bootstrap.sh")
}

/// `--print-plan` for every OS family, compared with fixture files.
#[test]
fn service_plans_of_every_os_family() {
    require("dash");
    let mut shells = vec![vec!["dash"]];
    if Command::new("busybox")
        .arg("sh")
        .arg("-c")
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        shells.push(vec!["busybox", "sh"]);
    } else {
        eprintln!("note: busybox is not installed; the plans are checked under dash only");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bootstrap");
    let cases: &[(&str, &[&str])] = &[
        ("linux", &["--os", "linux", "--arch", "x86_64"]),
        (
            "linux-root-no-start",
            &[
                "--os",
                "linux",
                "--arch",
                "aarch64",
                "--root",
                "/tmp/r",
                "--no-start",
            ],
        ),
        ("darwin", &["--os", "darwin", "--arch", "aarch64"]),
        ("freebsd", &["--os", "freebsd", "--arch", "x86_64"]),
        ("openbsd", &["--os", "openbsd", "--arch", "x86_64"]),
        ("netbsd", &["--os", "netbsd", "--arch", "armv7"]),
        ("illumos", &["--os", "illumos", "--arch", "x86_64"]),
    ];
    let mut failures = Vec::new();
    for shell in &shells {
        for (name, args) in cases {
            let out = Command::new(shell[0])
                .args(&shell[1..])
                .arg(template())
                .arg("--print-plan")
                .args(*args)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{shell:?} {name}: {}",
                text(&out)
            );
            let fixture = dir.join(format!("plan-{name}.txt"));
            if let Some(f) = crate::fixture::expect(&fixture, &String::from_utf8_lossy(&out.stdout))
            {
                failures.push(format!("{shell:?}: {f}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Windows is bootstrap.ps1's: the POSIX script says so.
    let out = Command::new("dash")
        .arg(template())
        .args(["--print-plan", "--os", "windows"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bootstrap.ps1"));
}

#[test]
fn the_script_checks_its_arguments() {
    require("dash");
    let run = |args: &[&str]| {
        Command::new("dash")
            .arg(template())
            .args(args)
            .output()
            .unwrap()
    };
    for (args, message) in [
        (&["--ca-fingerprint", "ab"][..], "--token is required"),
        (&["--token", "vigo_1_2"][..], "--ca-fingerprint is required"),
        (
            &["--token", "vigo_1_2", "--ca-fingerprint", "abc"][..],
            "64 hex digits",
        ),
        (
            &["--token", "a;b", "--ca-fingerprint", "abc"][..],
            "does not look like a Vigo token",
        ),
        (&["--bogus"][..], "unknown option --bogus"),
        (
            &["--root", "relative"][..],
            "--root must be an absolute path",
        ),
        (&["--root", "/x"][..], "--root needs --no-start"),
        (
            &["--print-plan", "--os", "plan9"][..],
            "--os must be one of",
        ),
        (
            &["--print-plan", "--arch", "mips"][..],
            "--arch must be one of",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out)
        );
    }
    // shellcheck, when installed, has nothing to say.
    match Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(template())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => eprintln!("note: shellcheck is not installed; skipped"),
    }
    let out = Command::new("dash")
        .arg("-n")
        .arg(template())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
