//! `cargo xtask demo`: Vigo end to end on this machine, changing nothing on the host.
//!
//! Builds the binaries, initializes a server in a temporary data directory and runs it on
//! loopback with the example fleet; for each demo node creates a one-time token, enrolls an
//! agent whose `--root` is a temporary folder, converges it twice (the second run shows a
//! converged node has nothing left to change), and prints one node's resolution trace. The
//! server then keeps running until Ctrl-C (or exits at once with `--once`); every file the
//! demo made stays under the folder it prints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::root;

/// Demo nodes: (node name, what it shows).
const NODES: &[(&str, &str)] = &[
    (
        "db01.demo",
        "base + os-users + db: files, templates, users, groups, sudo, SSH keys, cron, exec, secrets",
    ),
    (
        "canary01.demo",
        "base in observe mode: reports what it would change, changes nothing",
    ),
];

pub fn run(args: &[String]) -> Result<()> {
    let mut once = false;
    for a in args {
        match a.as_str() {
            "--once" => once = true,
            _ => bail!("unknown option {a}; usage: cargo xtask demo [--once]"),
        }
    }
    let root = root();
    step("building vigo-server, vigocli and vigo-agent");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--quiet", "-p", "vigo-server", "-p", "vigo-agent"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let bin = root.join("target/debug");
    let (server_bin, vigocli, agent) = (
        bin.join("vigo-server"),
        bin.join("vigocli"),
        bin.join("vigo-agent"),
    );
    let config = root.join("examples/fleet/config");

    let work = std::env::temp_dir().join(format!("vigo-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let data = work.join("server");

    step("validating examples/fleet/config");
    run_shown(
        Command::new(&vigocli)
            .args(["config", "validate"])
            .arg(&config),
    )?;

    step("vigo-server init: CA, server certificate, bundle key, admin credential, database");
    let init = Command::new(&server_bin)
        .args(["init", "--hostname", "localhost", "--data"])
        .arg(&data)
        .output()?;
    print!("{}", String::from_utf8_lossy(&init.stdout));
    if !init.status.success() {
        bail!(
            "vigo-server init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let fingerprint = String::from_utf8_lossy(&init.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ca fingerprint ").map(str::to_string))
        .context("vigo-server init printed no CA fingerprint")?;

    step("vigo-server run: mutual TLS on 127.0.0.1, the example fleet as config");
    let mut server = Server(
        Command::new(&server_bin)
            .args(["run", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting vigo-server")?,
    );
    let url = server.wait_listening(Duration::from_secs(30))?;
    println!("listening on {url}");

    for (node, what) in NODES {
        step(&format!("{node}: {what}"));
        let token = Command::new(&vigocli)
            .args(["token", "create", "--hosts", node, "--ttl", "10m", "--data"])
            .arg(&data)
            .output()?;
        if !token.status.success() {
            bail!(
                "vigocli token create failed: {}",
                String::from_utf8_lossy(&token.stderr)
            );
        }
        let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
        println!("$ vigocli token create --hosts {node}        (a one-time token, printed once)");

        let state = work.join(node).join("state");
        let node_root = work.join(node).join("root");
        seed_root(&node_root)?;
        println!(
            "$ vigo-agent enroll --server {url} --token … --ca-fingerprint {}…",
            &fingerprint[..16]
        );
        run_shown(
            Command::new(&agent)
                .args([
                    "enroll",
                    "--server",
                    &url,
                    "--token",
                    &token,
                    "--ca-fingerprint",
                    &fingerprint,
                    "--hostname",
                    node,
                    "--state",
                ])
                .arg(&state),
        )?;
        for pass in [
            "first run",
            "second run: a converged node has nothing left to change",
        ] {
            println!(
                "\n-- {pass}\n$ vigo-agent once --root {}",
                node_root.display()
            );
            let out = Command::new(&agent)
                .args(["once", "--family", "debian", "--state"])
                .arg(&state)
                .arg("--root")
                .arg(&node_root)
                .output()
                .context("running vigo-agent once")?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            if !matches!(out.status.code(), Some(0) | Some(2)) {
                bail!("vigo-agent once exited with {:?}", out.status.code());
            }
        }
    }

    step("how db01.demo's policy was resolved: vigocli config trace db01.demo");
    let facts = node_facts(&agent, "db01.demo", &work)?;
    run_shown(
        Command::new(&vigocli)
            .args(["config", "trace", "db01.demo", "--config"])
            .arg(&config)
            .arg("--facts")
            .arg(&facts),
    )?;

    step("enrolled nodes: vigocli node list");
    run_shown(
        Command::new(&vigocli)
            .args(["node", "list", "--data"])
            .arg(&data),
    )?;

    println!(
        "\nThe server, agent state and node roots are under {}.",
        work.display()
    );
    println!("Nothing outside that folder was changed.");
    if once {
        server.stop();
        return Ok(());
    }
    println!("The server keeps running at {url}; press Ctrl-C to stop it. Try, in another shell:");
    println!(
        "  target/debug/vigo-agent once --family debian --state {} --root {}",
        work.join("db01.demo/state").display(),
        work.join("db01.demo/root").display()
    );
    // Ctrl-C reaches the server too (same process group); it flushes its state and exits.
    let status = server.0.wait()?;
    println!("vigo-server stopped ({status})");
    Ok(())
}

/// The running server; killed when the demo fails half-way.
struct Server(Child);

impl Server {
    /// Reads the server's output until it says where it listens.
    fn wait_listening(&mut self, deadline: Duration) -> Result<String> {
        let stdout = self.0.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                println!("  [server] {line}");
            }
        });
        let start = Instant::now();
        loop {
            if let Ok(url) = rx.recv_timeout(Duration::from_millis(200)) {
                return Ok(url);
            }
            if let Some(status) = self.0.try_wait()? {
                bail!("vigo-server exited before listening ({status})");
            }
            if start.elapsed() > deadline {
                bail!("vigo-server did not start listening within {deadline:?}");
            }
        }
    }

    fn stop(&mut self) {
        // SIGTERM lets the server flush; fall back to kill if it cannot be sent.
        let term = Command::new("kill").arg(self.0.id().to_string()).status();
        if term.map(|s| s.success()).unwrap_or(false) {
            let _ = self.0.wait();
        } else {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

/// This machine's facts under the demo node's name, for the offline trace.
fn node_facts(agent: &Path, node: &str, work: &Path) -> Result<PathBuf> {
    let out = Command::new(agent)
        .args(["facts", "--json"])
        .output()
        .context("running vigo-agent facts")?;
    let mut facts: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing facts")?;
    facts["hostname"] =
        serde_json::Value::String(node.split('.').next().unwrap_or(node).to_string());
    facts["fqdn"] = serde_json::Value::String(node.to_string());
    facts["os_family"] = serde_json::Value::String("debian".into());
    let file = work.join(format!("{node}.facts.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&facts)?)?;
    Ok(file)
}

fn step(title: &str) {
    println!("\n==> {title}");
}

fn run_shown(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// A root laid out like a fresh Debian system: account files, skeleton, cron directory.
pub fn seed_root(root: &Path) -> Result<()> {
    let etc: PathBuf = root.join("etc");
    for dir in ["skel", "cron.d", "sudoers.d"] {
        std::fs::create_dir_all(etc.join(dir))?;
    }
    std::fs::create_dir_all(root.join("home"))?;
    let files = [
        ("passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        ("group", "root:x:0:\n"),
        ("shadow", "root:*:20000:0:99999:7:::\n"),
        ("gshadow", "root:*::\n"),
        ("skel/.profile", "# ~/.profile\n"),
    ];
    for (name, content) in files {
        std::fs::write(etc.join(name), content)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The README's first command works: the whole demo, server included, exits cleanly
    /// with `--once` and leaves its nodes converged (or, in observe mode, untouched).
    #[test]
    fn the_demo_runs_end_to_end() {
        super::run(&["--once".to_string()]).expect("cargo xtask demo --once succeeds");
        let dir = std::env::temp_dir().join(format!("vigo-demo-{}", std::process::id()));
        let motd = std::fs::read_to_string(dir.join("db01.demo/root/etc/motd"))
            .expect("db01.demo converged");
        assert!(motd.contains("Host: db01.demo"), "{motd}");
        assert!(
            !dir.join("canary01.demo/root/etc/motd").exists(),
            "canary01.demo observes only"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
