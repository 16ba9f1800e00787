//! Secrets on the wire, end to end: a unique secret planted in a copy of the example
//! config's secrets reaches the node's file through the real server and agent, online and
//! offline from the cache, while no byte of it — nor of alice's password — appears in the
//! server's SQLite file and WAL, its log, the agent's state folder or the run reports.
//! The offline path too: `vigocli config compile --node-key` seals, `vigo-agent apply --state`
//! opens, and without a key the secret-bearing resources fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::server::{Server, agent, queued, run, seed_root, sibling, text};
use crate::support::Temp;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("writable");
    for e in std::fs::read_dir(from).expect("readable").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copies");
        }
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_planted_secret_travels_sealed_and_converges_online_and_offline() {
    let (Some(server_bin), Some(vigocli)) = (sibling("vigo-server"), sibling("vigocli")) else {
        eprintln!(
            "skipping: vigo-server or vigocli is not built beside vigo-agent; run `cargo test --workspace`"
        );
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let planted = format!("planted-Tok3n-{}-{nanos}", std::process::id());
    let planted_pw = format!("planted-Pg-{nanos}-{}", std::process::id());

    let tmp = Temp::new("sealed");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let secrets = tmp.path().join("secrets");
    copy_dir(&examples.join("secrets"), &secrets);
    std::fs::write(secrets.join("vigo/db/root-token"), &planted).expect("writable");
    std::fs::write(secrets.join("vigo/db/password"), &planted_pw).expect("writable");
    let alice = std::fs::read_to_string(secrets.join("vigo/os-users/alice"))
        .expect("alice's password")
        .trim()
        .to_string();

    let data = tmp.path().join("data");
    let init = run(Command::new(&server_bin)
        .args(["init", "--data"])
        .arg(&data)
        .args(["--hostname", "localhost"]));
    assert!(init.status.success(), "init: {}", text(&init.stderr));
    let fingerprint = text(&init.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ca fingerprint "))
        .expect("init prints the CA fingerprint")
        .trim()
        .to_string();
    let log_path = tmp.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("writable");
    let server = Server(
        Command::new(&server_bin)
            .args(["run", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(examples.join("config"))
            .arg("--secrets")
            .arg(&secrets)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("vigo-server starts"),
    );
    let start = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(data.join("server.addr"))
            && a.ends_with('\n')
        {
            break a.trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = run(Command::new(&vigocli)
        .args(["token", "create", "--hosts", "db*.demo", "--data"])
        .arg(&data));
    assert!(out.status.success(), "token: {}", text(&out.stderr));
    let token = text(&out.stdout)
        .lines()
        .next()
        .expect("a token")
        .trim()
        .to_string();

    let state = tmp.path().join("state");
    let state_s = state.to_str().expect("utf-8 path");
    let out = agent(&[
        "enroll",
        "--server",
        &format!("https://{addr}"),
        "--token",
        &token,
        "--ca-fingerprint",
        &fingerprint,
        "--state",
        state_s,
        "--hostname",
        "db01.demo",
    ]);
    assert!(out.status.success(), "enroll: {}", text(&out.stderr));

    let root = Temp::new("sealed-root");
    seed_root(&root);
    let root_s = root.path().to_str().expect("utf-8 path");
    let mut reports: Vec<u8> = Vec::new();
    let mut once = || {
        let out = agent(&[
            "once", "--state", state_s, "--root", root_s, "--family", "debian", "--json",
        ]);
        reports.extend_from_slice(&out.stdout);
        reports.extend_from_slice(&out.stderr);
        out
    };
    let first = once();
    assert!(
        matches!(first.status.code(), Some(0..=2)),
        "once: {:?} {}",
        first.status.code(),
        text(&first.stderr)
    );
    let token_file = root.at("/etc/vigo-managed/db-root-token");
    let got = std::fs::read_to_string(&token_file).expect("the sealed secret converged");
    assert_eq!(got.trim_end(), planted);
    let pgpass = std::fs::read_to_string(root.at("/etc/vigo-managed/pgpass")).expect("pgpass");
    assert!(pgpass.contains(&planted_pw), "{pgpass}");

    // The first run's result is acknowledged once it is in the database.
    let after_first = queued(&state);
    let start = Instant::now();
    loop {
        let again = once();
        assert!(
            matches!(again.status.code(), Some(0..=2)),
            "{}",
            text(&again.stderr)
        );
        if after_first.iter().all(|f| !queued(&state).contains(f)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "results were never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Offline: the cached (sealed) bundle is opened again in memory and converges.
    drop(server);
    std::fs::remove_file(&token_file).expect("removable");
    let offline = once();
    assert_eq!(offline.status.code(), Some(4), "{}", text(&offline.stderr));
    let got = std::fs::read_to_string(&token_file).expect("converged from the cache");
    assert_eq!(got.trim_end(), planted);

    // No byte of a secret anywhere but in the node's own files.
    let mut files = Vec::new();
    files_under(&data, &mut files);
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
        "the SQLite WAL is among the files checked: {files:?}"
    );
    files_under(&state, &mut files);
    files.push(log_path);
    assert!(state.join("cache/bundle").exists());
    for needle in [planted.as_bytes(), planted_pw.as_bytes(), alice.as_bytes()] {
        for f in &files {
            let bytes = std::fs::read(f).expect("readable");
            assert!(
                !contains(&bytes, needle),
                "{} holds a planted secret",
                f.display()
            );
        }
        assert!(!contains(&reports, needle), "a run report holds a secret");
    }
    assert!(
        !contains(&reports, b"Sealed("),
        "no sealed value in a report"
    );

    // Offline: `vigocli config compile --node-key` seals to the node too, `vigo-agent apply
    // --state` opens with its key, and without a key the secret-bearing resource fails.
    let node_pub = vigo_shared::sign::SigningKey::parse(
        &std::fs::read_to_string(state.join("node.key")).expect("node key"),
    )
    .expect("a node key")
    .public()
    .to_string();
    let facts = agent(&["facts", "--json"]);
    assert!(facts.status.success(), "{}", text(&facts.stderr));
    let facts_file = tmp.path().join("facts.json");
    std::fs::write(&facts_file, &facts.stdout).expect("writable");
    let bundle = tmp.path().join("db01.bundle");
    let signing = tmp.path().join("signing.key");
    let out = run(Command::new(&vigocli)
        .args(["config", "compile", "db01.demo", "--config"])
        .arg(examples.join("config"))
        .arg("--secrets")
        .arg(&secrets)
        .arg("--facts")
        .arg(&facts_file)
        .arg("--out")
        .arg(&bundle)
        .arg("--key")
        .arg(&signing)
        .args(["--node-key", &node_pub]));
    assert!(out.status.success(), "compile: {}", text(&out.stderr));
    let bytes = std::fs::read(&bundle).expect("the bundle file");
    for needle in [planted.as_bytes(), planted_pw.as_bytes(), alice.as_bytes()] {
        assert!(
            !contains(&bytes, needle),
            "the sealed bundle file holds a secret"
        );
    }
    let root2 = Temp::new("sealed-apply");
    seed_root(&root2);
    let trust = format!("{}.pub", signing.display());
    let apply = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "--bundle",
            bundle.to_str().expect("utf-8"),
            "--trust",
            &trust,
            "--root",
            root2.path().to_str().expect("utf-8"),
            "--node",
            "db01.demo",
            "--family",
            "debian",
            "--json",
        ];
        args.extend_from_slice(extra);
        agent(&args)
    };
    let keyless = apply(&[]);
    let out_text = text(&keyless.stdout);
    assert!(
        out_text.contains("is sealed to the node's key and no node key was given"),
        "{out_text}"
    );
    assert!(!root2.at("/etc/vigo-managed/db-root-token").exists());
    let with_key = apply(&["--state", state_s]);
    assert!(
        matches!(with_key.status.code(), Some(0..=2)),
        "{}",
        text(&with_key.stderr)
    );
    let got = std::fs::read_to_string(root2.at("/etc/vigo-managed/db-root-token"))
        .unwrap_or_else(|e| panic!("apply --state: {e}: {}", text(&with_key.stdout)));
    assert_eq!(got.trim_end(), planted);
    for out in [&keyless, &with_key] {
        for needle in [planted.as_bytes(), planted_pw.as_bytes(), alice.as_bytes()] {
            assert!(!contains(&out.stdout, needle) && !contains(&out.stderr, needle));
        }
    }
}
