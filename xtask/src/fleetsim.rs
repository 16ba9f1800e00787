//! `cargo xtask fleetsim [ARGS]`: builds `vigo-server` and `vigo-fleetsim` in release mode,
//! runs the simulator against a spawned server (server pinned to CPU 0, simulator to CPU 1)
//! and appends one row per mode to `bench/fleetsim.tsv` (columns in docs/performance.md).
//! ARGS go to `vigo-fleetsim` as they are, e.g. `--nodes 1000 --mode keepalive,reconnect`.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::root;

const HEADER: &str = "date\tcommit\tnodes\tmode\tconcurrency\tduration_s\tcheckins_per_s\tp50_ms\tp95_ms\tp99_ms\terrors\tserver_rss_mb\trss_per_node_b\tserver_cpu_s\tsqlite_bytes\tenroll_s\tserver_cpu_us_per_checkin\tresumed_share\tfleet_rss_mb\thost_steal_pct";

/// An older file under the current header: rows written before a column existed get `-`
/// in it.
fn with_header(existing: &str) -> String {
    let columns = HEADER.split('\t').count();
    let mut out = format!("{HEADER}\n");
    for line in existing.lines().skip(1).filter(|l| !l.is_empty()) {
        out.push_str(line);
        for _ in line.split('\t').count()..columns {
            out.push_str("\t-");
        }
        out.push('\n');
    }
    out
}

pub fn run(args: &[String]) -> Result<()> {
    let root = root();
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "vigo-server",
            "--bin",
            "vigo-server",
            "--bin",
            "vigo-fleetsim",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building vigo-server and vigo-fleetsim failed");
    }
    let json = std::env::temp_dir().join(format!("vigo-fleetsim-{}.json", std::process::id()));
    let status = Command::new(root.join("target/release/vigo-fleetsim"))
        .current_dir(&root)
        .args(["--spawn", "--server-cpu", "0", "--sim-cpu", "1", "--json"])
        .arg(&json)
        .args(args)
        .status()
        .context("running vigo-fleetsim")?;
    if !status.success() {
        bail!("vigo-fleetsim failed");
    }
    let text = std::fs::read_to_string(&json).context("reading the simulator's JSON")?;
    let _ = std::fs::remove_file(&json);
    let r: serde_json::Value = serde_json::from_str(&text).context("reading the JSON report")?;

    let date =
        crate::stdout_of(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%MZ"])).unwrap_or_default();
    let commit = crate::bench::commit();
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let nodes = r["nodes"].as_u64().unwrap_or(0);
    let sqlite =
        r["sqlite_bytes"].as_u64().unwrap_or(0) + r["sqlite_wal_bytes"].as_u64().unwrap_or(0);
    let mut rows = String::new();
    for m in r["modes"].as_array().into_iter().flatten() {
        let rss = m["server_after"]["rss_bytes"].as_u64().unwrap_or(0);
        let handshakes = f(&m["handshakes_full"]) + f(&m["handshakes_resumed"]);
        let resumed = if handshakes > 0.0 {
            format!("{:.3}", f(&m["handshakes_resumed"]) / handshakes)
        } else {
            "-".to_string()
        };
        // A paced phase is `keepalive/9600`, as the simulator labels it.
        let mode = m["label"].as_str().unwrap_or("?");
        let steal = m["host_steal_pct"]
            .as_f64()
            .map_or("-".to_string(), |p| format!("{p:.1}"));
        let _ = writeln!(
            rows,
            "{date}\t{commit}\t{nodes}\t{mode}\t{}\t{:.1}\t{:.0}\t{:.2}\t{:.2}\t{:.2}\t{}\t{:.1}\t{:.0}\t{:.2}\t{sqlite}\t{:.1}\t{:.0}\t{resumed}\t{:.1}\t{steal}",
            m["concurrency"],
            f(&m["duration_secs"]),
            f(&m["checkins_per_sec"]),
            f(&m["latency"]["p50_ms"]),
            f(&m["latency"]["p95_ms"]),
            f(&m["latency"]["p99_ms"]),
            m["errors"],
            rss as f64 / (1024.0 * 1024.0),
            rss as f64 / nodes.max(1) as f64,
            f(&m["server_cpu_secs"]),
            f(&r["enrollment"]["enroll_secs"]),
            f(&m["server_cpu_us_per_checkin"]),
            r["server_fleet"]["rss_bytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0),
        );
    }
    let path = root.join("bench/fleetsim.tsv");
    let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
    if existing.is_empty() {
        existing = format!("{HEADER}\n");
    } else if !existing.starts_with(&format!("{HEADER}\n")) {
        existing = with_header(&existing);
    }
    existing.push_str(&rows);
    std::fs::write(&path, existing).with_context(|| format!("writing {}", path.display()))?;
    print!("{rows}");
    println!("appended to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{HEADER, with_header};

    #[test]
    fn older_rows_get_the_new_columns_as_dashes() {
        let columns = HEADER.split('\t').count();
        let old_header: Vec<&str> = HEADER.split('\t').take(columns - 1).collect();
        let old_row: Vec<String> = (0..columns - 1).map(|i| i.to_string()).collect();
        let old = format!("{}\n{}\n", old_header.join("\t"), old_row.join("\t"));
        let new = with_header(&old);
        let lines: Vec<&str> = new.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines[1], format!("{}\t-", old_row.join("\t")));
        assert_eq!(lines.len(), 2);
    }
}
