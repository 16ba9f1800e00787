//! The whole offline path with real processes: `vigocli config compile` turns the example
//! fleet into a signed bundle, `vigo-agent apply` converges a temporary root with it, a
//! second run changes nothing, observe mode changes no byte, and no secret leaks into the
//! reports. The agent binary is the workspace's own build (`cargo test --workspace`
//! builds it beside `vigocli`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fixture::TempDir;

pub fn agent_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_vigocli")).with_file_name("vigo-agent");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so the agent is built",
        bin.display()
    );
    bin
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet")
}

/// A root with the account files a minimal Debian has before Vigo runs.
pub fn seed_root(root: &Path) {
    let etc = root.join("etc");
    std::fs::create_dir_all(etc.join("skel")).unwrap();
    std::fs::create_dir_all(etc.join("cron.d")).unwrap();
    std::fs::create_dir_all(root.join("home")).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\n").unwrap();
    std::fs::write(etc.join("shadow"), "root:*:20000:0:99999:7:::\n").unwrap();
    std::fs::write(etc.join("gshadow"), "root:*::\n").unwrap();
    std::fs::write(etc.join("skel/.profile"), "# ~/.profile\n").unwrap();
}

fn compile(dir: &Path, node: &str, facts: &str) -> (PathBuf, PathBuf) {
    let facts_file = dir.join(format!("{node}.facts.json"));
    std::fs::write(&facts_file, facts).unwrap();
    let bundle = dir.join(format!("{node}.bundle"));
    let key = dir.join("signing.key");
    let out = Command::new(env!("CARGO_BIN_EXE_vigocli"))
        .args(["config", "compile", node, "--config"])
        .arg(example().join("config"))
        .arg("--facts")
        .arg(&facts_file)
        .arg("--out")
        .arg(&bundle)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (bundle, PathBuf::from(format!("{}.pub", key.display())))
}

fn apply(
    bundle: &Path,
    trust: &Path,
    root: &Path,
    node: &str,
    observe: bool,
) -> (Output, serde_json::Value) {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("apply")
        .arg("--bundle")
        .arg(bundle)
        .arg("--trust")
        .arg(trust)
        .arg("--root")
        .arg(root);
    cmd.args(["--node", node, "--family", "debian", "--json"]);
    if observe {
        cmd.arg("--observe");
    }
    let out = cmd.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

/// Every file under `dir` with its type, mode, owner and content, for before/after checks.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                stack.push(p.clone());
                Vec::new()
            };
            out.push((p, m.mode(), m.uid(), content));
        }
    }
    out.sort();
    out
}

fn status_of<'a>(report: &'a serde_json::Value, id: &str) -> &'a str {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["status"].as_str())
        .unwrap_or("missing")
}

const DB_FACTS: &str = r#"{"os_family":"debian","os":"debian","os_version":"12","arch":"x86_64","hostname":"db01","fqdn":"db01.demo","cpus":2,"path":["/usr/bin","/bin"]}"#;

#[test]
fn example_fleet_converges_a_root_idempotently_without_leaking_secrets() {
    let tmp = TempDir::new("e2e");
    let root = tmp.0.join("root");
    seed_root(&root);
    let (bundle, trust) = compile(&tmp.0, "db01.demo", DB_FACTS);

    // Observe first: everything would change, and not one byte of the root does.
    let before = snapshot(&root);
    let (out, report) = apply(&bundle, &trust, &root, "db01.demo", true);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report["summary"]["changed"].as_u64().unwrap() > 10,
        "{report}"
    );
    assert_eq!(snapshot(&root), before, "observe mode changed the root");

    // Enforce: converges; nothing fails.
    let (out, report) = apply(&bundle, &trust, &root, "db01.demo", false);
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(status_of(&report, "user:alice"), "changed");
    // file_exists() looks beneath --root, where there is no /.dockerenv.
    assert_eq!(
        status_of(&report, "file:/etc/vigo-managed/container-note"),
        "skipped"
    );

    let motd = std::fs::read_to_string(root.join("etc/motd")).unwrap();
    assert_eq!(
        motd,
        "Managed by Vigo — local changes are reverted\nHost: db01.demo — questions to ops@example.com\n"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(
            |l| l.starts_with("alice:x:") && l.ends_with(":Alice Nguyen:/home/alice:/bin/bash")
        ),
        "{passwd}"
    );
    assert!(
        passwd.lines().any(|l| l.starts_with("bob:x:2001:")),
        "{passwd}"
    );
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(
        shadow.lines().any(|l| l.starts_with("alice:$6$")),
        "{shadow}"
    );
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("sudo:") && l.ends_with(":alice")),
        "{group}"
    );
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("developers:x:2000:bob")),
        "{group}"
    );
    let pgpass = std::fs::metadata(root.join("etc/vigo-managed/pgpass")).unwrap();
    assert_eq!(pgpass.mode() & 0o777, 0o600);
    assert_eq!(pgpass.uid(), 2001, "pgpass is owned by bob");
    assert!(root.join("etc/cron.d/vigo-tmp-cleanup").is_file());
    assert!(root.join("etc/sudoers.d/vigo-alice").is_file());
    assert_eq!(
        std::fs::read_link(root.join("etc/vigo-managed/current")).unwrap(),
        Path::new("/etc/vigo-managed/timesyncd.conf")
    );

    // The planted secrets: alice's password reaches the node only as a hash; the report
    // (text and JSON) never shows any secret, even where the file holds it by design.
    let secrets: Vec<String> = [
        "vigo/os-users/alice",
        "vigo/db/password",
        "vigo/db/root-token",
    ]
    .iter()
    .map(|p| {
        std::fs::read_to_string(example().join("secrets").join(p))
            .unwrap()
            .trim()
            .to_string()
    })
    .collect();
    let report_text = report.to_string();
    for s in &secrets {
        assert!(
            !report_text.contains(s.as_str()),
            "secret leaked into the JSON report"
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains(s.as_str()),
            "secret leaked to stderr"
        );
    }
    for (path, _, _, content) in snapshot(&root) {
        assert!(
            !String::from_utf8_lossy(&content).contains(secrets[0].as_str()),
            "alice's plaintext password is in {}",
            path.display()
        );
    }

    // Second run: converged, zero changes.
    let (out, report) = apply(&bundle, &trust, &root, "db01.demo", false);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["summary"]["changed"], 0);

    // Drift is repaired: a hand edit of a managed file is reverted.
    std::fs::write(root.join("etc/motd"), "hacked\n").unwrap();
    let (_, report) = apply(&bundle, &trust, &root, "db01.demo", false);
    assert_eq!(status_of(&report, "file:/etc/motd"), "changed");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        motd
    );
}

#[test]
fn a_bundle_signed_by_an_untrusted_key_is_refused_and_changes_nothing() {
    let tmp = TempDir::new("e2e-untrusted");
    let root = tmp.0.join("root");
    seed_root(&root);
    let (bundle, _) = compile(&tmp.0, "db01.demo", DB_FACTS);
    let other = tmp.0.join("other.pub");
    std::fs::write(
        &other,
        format!(
            "{}\n",
            vigo_shared::sign::SigningKey::from_seed([1; 32]).public()
        ),
    )
    .unwrap();
    let before = snapshot(&root);
    let out = Command::new(agent_bin())
        .arg("apply")
        .arg("--bundle")
        .arg(&bundle)
        .arg("--trust")
        .arg(&other)
        .arg("--root")
        .arg(&root)
        .args(["--node", "db01.demo", "--family", "debian"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not trust"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&root), before);
}
