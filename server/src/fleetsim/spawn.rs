//! Starting a real `vigo-server` for a simulation (`init` into a temporary data directory,
//! `run` on 127.0.0.1:0, optionally pinned to a CPU with `taskset`), and reading a process's
//! memory and CPU time from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// A server this simulator started; killed when dropped.
pub struct Spawned {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    /// The temporary directory holding the data directory and the server's log.
    pub dir: PathBuf,
    /// The server's config directory: a copy, so that `--publish-at` can change it.
    pub config: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("VIGO_FLEETSIM_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What `spawn` needs.
pub struct SpawnOptions<'a> {
    pub server_bin: &'a Path,
    pub config: &'a Path,
    pub secrets: &'a Path,
    pub cpu: Option<usize>,
    pub max_connections: usize,
    /// More arguments for `vigo-server run`.
    pub extra_args: &'a [String],
}

fn command(bin: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Inits a data directory in a new temporary directory and starts `vigo-server run`.
pub fn spawn(opts: &SpawnOptions) -> Result<Spawned> {
    let mut rnd = [0u8; 6];
    getrandom::fill(&mut rnd).context("no system randomness")?;
    let dir =
        std::env::temp_dir().join(format!("vigo-fleetsim-{}", vigo_shared::hex::encode(&rnd)));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir.join("data");
    let config = dir.join("config");
    let secrets = dir.join("secrets");
    copy_dir(opts.config, &config)?;
    if opts.secrets.is_dir() {
        copy_dir(opts.secrets, &secrets)?;
    } else {
        std::fs::create_dir_all(&secrets)
            .with_context(|| format!("creating {}", secrets.display()))?;
    }
    let out = Command::new(opts.server_bin)
        .args(["init", "--data"])
        .arg(&data)
        .output()
        .with_context(|| format!("running {} init", opts.server_bin.display()))?;
    if !out.status.success() {
        bail!(
            "vigo-server init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = std::fs::File::create(dir.join("server.log")).context("creating server.log")?;
    let mut child = command(opts.server_bin, opts.cpu)
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .arg("--secrets")
        .arg(&secrets)
        // Every simulated node enrolls from 127.0.0.1: the per-address limit must not
        // stand in the way, nor the connection limit with one connection per node.
        .args(["--enroll-per-minute", "100000000"])
        .args(["--max-connections", &opts.max_connections.to_string()])
        .args(opts.extra_args)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {} run", opts.server_bin.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let spawned = |url| Spawned {
        child,
        url,
        data: data.clone(),
        dir: dir.clone(),
        config: config.clone(),
    };
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Ok(spawned(url)),
        Err(_) => {
            let s = spawned(String::new());
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            drop(s);
            bail!("the server did not start; its log:\n{log}")
        }
    }
}

/// Copies a directory tree (files and folders; the example config has nothing else).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("copying {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// Memory and CPU time of a process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcStats {
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    pub cpu_secs: f64,
}

/// Reads a process's figures; zeros when `/proc` is unavailable.
pub fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3; utime and
    // stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ProcStats {
        rss_bytes: kb("VmRSS:"),
        hwm_bytes: kb("VmHWM:"),
        cpu_secs: ticks as f64 / 100.0,
    }
}

/// CPU nanoseconds each thread of `pid` has run so far, by thread id, from
/// `/proc/PID/task/*/schedstat` (nanoseconds, where `stat` counts 10 ms ticks); empty when
/// `/proc` is unavailable.
pub fn thread_cpu_ns(pid: u32) -> std::collections::BTreeMap<u32, u64> {
    let mut threads = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = ns {
            threads.insert(tid, ns);
        }
    }
    threads
}

/// CPU nanoseconds run between two [`thread_cpu_ns`] readings: what each thread present in
/// both added, plus all of what threads started since have run.
pub fn cpu_ns_between(
    before: &std::collections::BTreeMap<u32, u64>,
    after: &std::collections::BTreeMap<u32, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// Size of the database and its write-ahead log in a data directory.
pub fn sqlite_bytes(data: &Path) -> (u64, u64) {
    let size = |f: &str| {
        std::fs::metadata(data.join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    (size("vigo.db"), size("vigo.db-wal"))
}

/// Pins this process (all its threads so far, and those it starts later) to `cpu`.
pub fn pin_self(cpu: usize) -> Result<()> {
    let st = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    if !st.success() {
        bail!("taskset could not pin the simulator to CPU {cpu}");
    }
    Ok(())
}
