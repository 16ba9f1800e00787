//! `vigo-agent run` against the real server: the loop converges on its (test-sized)
//! interval; with the server SIGKILLed it keeps converging from the cache (a deleted file
//! comes back) and queues its results; after the server restarts the queued results drain;
//! SIGTERM ends it promptly with exit 0. Also: `run` without an enrollment exits 3.
//!
//! `--max-cycles` and `--interval-ms` are the test-only flags of `run`. Every wait is on a
//! condition with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{Server, agent, queued, run, seed_root, sibling, text};
use crate::support::Temp;

/// Waits until `cond` holds, failing with `what` and the agent's log after `secs`.
fn wait_for(secs: u64, what: &str, log: &Path, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}; agent log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_server(bin: &Path, data: &Path, listen: &str) -> (Server, String) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet/config");
    let addr_file = data.join("server.addr");
    let _ = std::fs::remove_file(&addr_file);
    let server = Server(
        Command::new(bin)
            .args(["run", "--data"])
            .arg(data)
            .arg("--config")
            .arg(&config)
            .args(["--listen", listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vigo-server starts"),
    );
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
        std::thread::sleep(Duration::from_millis(50));
    };
    (server, addr)
}

/// Ends the agent if the test fails before it does.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_without_enrollment_exits_with_a_clear_message() {
    let tmp = Temp::new("run-unenrolled");
    let state = tmp.path().join("state");
    let out = agent(&[
        "run",
        "--state",
        state.to_str().expect("utf-8"),
        "--root",
        tmp.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("run `vigo-agent enroll` first"),
        "{}",
        text(&out.stderr)
    );
    let out = agent(&["run", "--interval-ms", "10"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "--interval-ms needs --max-cycles"
    );
    let out = agent(&["run", "--interval", "1"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an interval under 10 s is refused"
    );
}

#[test]
fn run_keeps_converging_offline_drains_after_restart_and_stops_on_sigterm() {
    let (Some(server_bin), Some(vigocli)) = (sibling("vigo-server"), sibling("vigocli")) else {
        eprintln!(
            "skipping: vigo-server or vigocli is not built beside vigo-agent; run `cargo test --workspace`"
        );
        return;
    };
    let tmp = Temp::new("run");
    let data = tmp.path().join("data");
    let init = run(Command::new(&server_bin)
        .args(["init", "--data"])
        .arg(&data)
        .args(["--hostname", "localhost"]));
    assert!(init.status.success(), "init: {}", text(&init.stderr));
    let fingerprint = text(&init.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("ca fingerprint ")
                .map(|f| f.trim().to_string())
        })
        .expect("init prints the CA fingerprint");
    let (server, addr) = start_server(&server_bin, &data, "127.0.0.1:0");

    let out = run(Command::new(&vigocli)
        .args(["token", "create", "--hosts", "*.demo", "--data"])
        .arg(&data));
    assert!(out.status.success(), "token: {}", text(&out.stderr));
    let token = text(&out.stdout)
        .lines()
        .next()
        .expect("a token")
        .trim()
        .to_string();
    let state: PathBuf = tmp.path().join("state");
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
        "web01.demo",
    ]);
    assert!(out.status.success(), "enroll: {}", text(&out.stderr));

    let root = Temp::new("run-root");
    seed_root(&root);
    let log = tmp.path().join("agent.log");
    let mut child = Agent(
        Command::new(env!("CARGO_BIN_EXE_vigo-agent"))
            .args(["run", "--state", state_s, "--root"])
            .arg(root.path())
            .args([
                "--family",
                "debian",
                "--interval-ms",
                "300",
                "--max-cycles",
                "100000",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("vigo-agent run starts"),
    );
    let motd = root.at("/etc/motd");
    wait_for(60, "the first convergence", &log, || {
        motd.exists() && state.join("cache/bundle").exists()
    });
    wait_for(60, "a cycle with the server", &log, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("server ok"))
    });
    let first = queued(&state);
    wait_for(60, "results acknowledged while online", &log, || {
        let now = queued(&state);
        first.iter().all(|f| !now.contains(f))
    });

    // SIGKILL: the agent keeps converging from the cache and queues what it did.
    drop(server);
    wait_for(30, "a cycle without the server", &log, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("used the cached bundle"))
    });
    std::fs::remove_file(&motd).expect("motd exists");
    wait_for(30, "the deleted file restored offline", &log, || {
        motd.exists()
    });
    wait_for(30, "results queued offline", &log, || {
        queued(&state).len() >= 2
    });
    // Between offline cycles, check-ins alone are retried with backoff (waited for: how
    // many fit in the offline window depends on the machine's load).
    wait_for(
        30,
        "a check-in retried between offline cycles",
        &log,
        || {
            std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("check-in: server unavailable") && l.contains("retry in"))
        },
    );
    let offline = queued(&state);
    assert_eq!(child.0.try_wait().expect("waitable"), None, "still running");

    // The server comes back on the same address: the offline results drain.
    let (_server, _) = start_server(&server_bin, &data, &addr);
    wait_for(60, "the offline results acknowledged", &log, || {
        let now = queued(&state);
        offline.iter().all(|f| !now.contains(f))
    });

    // SIGTERM: the current cycle finishes, then exit 0, promptly.
    let pid = child.0.id().to_string();
    let kill = run(Command::new("kill").args(["-TERM", &pid]));
    assert!(kill.status.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("waitable") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "run did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(status.code(), Some(0), "{log_text}");
    assert!(log_text.contains("stopping"), "{log_text}");
    // Between offline cycles, check-ins alone were retried with backoff.
    assert!(
        log_text.contains("check-in: server unavailable") && log_text.contains("retry in"),
        "{log_text}"
    );
    // One line per cycle, and no secret in it: not the node key, not the token.
    let key = std::fs::read_to_string(state.join("node.key")).expect("key");
    let seed = key.trim().trim_start_matches("ed25519-seed:");
    assert!(!log_text.contains(seed) && !log_text.contains(&token));
}
