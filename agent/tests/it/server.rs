//! The agent against the real server: `vigo-server init` and `run` on 127.0.0.1:0, a token
//! from `vigocli token create`, `vigo-agent enroll` (a wrong CA fingerprint and a reused
//! token are refused, nothing stored), `vigo-agent once` into a temporary root, results
//! acknowledged and removed from the queue, the offline path once the server is gone, and
//! the queue draining when it comes back.
//!
//! The server binaries are looked up beside the agent's (`cargo test --workspace` builds
//! them); when they are missing the test says so and returns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::Temp;

pub(crate) fn sibling(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_vigo-agent")).with_file_name(name);
    p.exists().then_some(p)
}

pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn agent(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_vigo-agent")).args(args))
}

pub(crate) fn queued(state: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state.join("results"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub(crate) fn seed_root(root: &Temp) {
    root.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    root.write("/etc/group", "root:x:0:\n");
    root.write("/etc/shadow", "root:*:20000:0:99999:7:::\n");
    root.write("/etc/gshadow", "root:*::\n");
    root.write("/etc/skel/.profile", "# ~/.profile\n");
    std::fs::create_dir_all(root.at("/etc/cron.d")).expect("writable");
    std::fs::create_dir_all(root.at("/home")).expect("writable");
}

#[test]
fn enroll_and_once_against_the_real_server() {
    let (Some(server_bin), Some(vigocli)) = (sibling("vigo-server"), sibling("vigocli")) else {
        eprintln!(
            "skipping: vigo-server or vigocli is not built beside vigo-agent; run `cargo test --workspace`"
        );
        return;
    };
    let tmp = Temp::new("server");
    let data = tmp.path().join("data");
    let init = run(Command::new(&server_bin)
        .args(["init", "--data"])
        .arg(&data)
        .args(["--hostname", "localhost"]));
    assert!(init.status.success(), "init: {}", text(&init.stderr));
    let init_out = text(&init.stdout);
    let fingerprint = init_out
        .lines()
        .find_map(|l| l.strip_prefix("ca fingerprint "))
        .expect("init prints the CA fingerprint")
        .trim()
        .to_string();

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet/config");
    let server = Server(
        Command::new(&server_bin)
            .args(["run", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vigo-server starts"),
    );
    let addr_file = data.join("server.addr");
    let start = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
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
    let url = format!("https://{addr}");

    let token = |hosts: &str| {
        let out = run(Command::new(&vigocli)
            .args(["token", "create", "--hosts", hosts, "--data"])
            .arg(&data));
        assert!(out.status.success(), "token: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .next()
            .expect("a token")
            .trim()
            .to_string()
    };

    // A wrong fingerprint: refused before the token is sent, nothing stored.
    let t = token("*.demo");
    let bad_state = tmp.path().join("bad-state");
    let mut wrong = fingerprint.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("hex");
    let bad_state_s = bad_state.to_str().expect("utf-8 path");
    let out = agent(&[
        "enroll",
        "--server",
        &url,
        "--token",
        &t,
        "--ca-fingerprint",
        &wrong,
        "--state",
        bad_state_s,
        "--hostname",
        "web01.demo",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("does not match --ca-fingerprint; nothing was stored"),
        "{}",
        text(&out.stderr)
    );
    assert!(!bad_state.exists());
    assert!(!text(&out.stderr).contains(&t) && !text(&out.stdout).contains(&t));

    // The same (still unused) token with the right fingerprint enrolls.
    let state = tmp.path().join("state");
    let state_s = state.to_str().expect("utf-8 path");
    let out = agent(&[
        "enroll",
        "--server",
        &url,
        "--token",
        &t,
        "--ca-fingerprint",
        &fingerprint,
        "--state",
        state_s,
        "--hostname",
        "web01.demo",
    ]);
    assert!(out.status.success(), "enroll: {}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains(&t),
        "the token is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("node.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Enrolling again without --force is refused; a used token is refused by the server.
    let out = agent(&[
        "enroll",
        "--server",
        &url,
        "--token",
        &t,
        "--ca-fingerprint",
        &fingerprint,
        "--state",
        state_s,
        "--hostname",
        "web01.demo",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    let other = tmp.path().join("other");
    let out = agent(&[
        "enroll",
        "--server",
        &url,
        "--token",
        &t,
        "--ca-fingerprint",
        &fingerprint,
        "--state",
        other.to_str().expect("utf-8"),
        "--hostname",
        "web02.demo",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("already used"),
        "{}",
        text(&out.stderr)
    );
    // A token for another glob cannot enroll this host name.
    let db = token("db*.demo");
    let out = agent(&[
        "enroll",
        "--server",
        &url,
        "--token",
        &db,
        "--ca-fingerprint",
        &fingerprint,
        "--state",
        other.to_str().expect("utf-8"),
        "--hostname",
        "web02.demo",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("does not allow"),
        "{}",
        text(&out.stderr)
    );
    assert!(!other.exists());

    // One cycle converges the temporary root and queues its report.
    let root = Temp::new("server-root");
    seed_root(&root);
    let root_s = root.path().to_str().expect("utf-8 path");
    let once = |extra: &[&str]| {
        let mut args = vec![
            "once", "--state", state_s, "--root", root_s, "--family", "debian", "--json",
        ];
        args.extend_from_slice(extra);
        agent(&args)
    };
    let first = once(&[]);
    let code = first.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "once: {code:?} {}",
        text(&first.stderr)
    );
    assert!(text(&first.stdout).contains("\"node\":\"web01.demo\""));
    assert!(
        root.at("/etc/motd").exists(),
        "the bundle converged the root"
    );
    assert!(state.join("cache/bundle").exists());
    assert!(state.join("facts.json").exists());
    let after_first = queued(&state);
    assert!(!after_first.is_empty());

    // The server acknowledges results once they are in its database (flushed
    // asynchronously); the first run's result leaves the queue within a few cycles.
    let start = Instant::now();
    loop {
        let again = once(&[]);
        assert!(
            matches!(again.status.code(), Some(0..=2)),
            "{}",
            text(&again.stderr)
        );
        let now = queued(&state);
        if after_first.iter().all(|f| !now.contains(f)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "results were never acknowledged: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // The server goes away: the agent converges from its cache, exits 4, queues the report.
    drop(server);
    let before = queued(&state).len();
    let offline = once(&[]);
    assert_eq!(offline.status.code(), Some(4), "{}", text(&offline.stderr));
    assert!(text(&offline.stderr).contains("converged from the cached bundle"));
    assert_eq!(queued(&state).len(), before + 1);
    // Something that is not a TLS server answers on the server's address: the same.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let garbage_addr = garbage.local_addr().expect("address");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in garbage.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nnot json");
        }
    });
    let server_file = state.join("server");
    let real_server = std::fs::read_to_string(&server_file).expect("server file");
    std::fs::write(&server_file, format!("https://{garbage_addr}\n")).expect("writable");
    let confused = once(&[]);
    assert_eq!(
        confused.status.code(),
        Some(4),
        "{}",
        text(&confused.stderr)
    );
    assert_eq!(queued(&state).len(), before + 2);
    std::fs::write(&server_file, real_server).expect("writable");

    // A corrupted cache is refused and removed; with no server either, nothing is applied.
    std::fs::write(state.join("cache/bundle"), b"garbage").expect("writable");
    let broken = once(&[]);
    assert_eq!(broken.status.code(), Some(5), "{}", text(&broken.stderr));
    assert!(!state.join("cache/bundle").exists());

    // The server comes back on the same address: the bundle is fetched again and the
    // results produced offline drain.
    let offline_results = queued(&state);
    std::fs::remove_file(&addr_file).expect("server.addr");
    let _server = Server(
        Command::new(&server_bin)
            .args(["run", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(["--listen", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vigo-server starts again"),
    );
    let start = Instant::now();
    while !addr_file.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = Instant::now();
    loop {
        let back = once(&[]);
        assert!(
            matches!(back.status.code(), Some(0..=2)),
            "{}",
            text(&back.stderr)
        );
        assert!(
            state.join("cache/bundle").exists(),
            "the bundle is refetched"
        );
        let now = queued(&state);
        if offline_results.iter().all(|f| !now.contains(f)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "offline results were never acknowledged: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
