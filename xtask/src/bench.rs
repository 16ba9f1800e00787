//! `cargo xtask bench [--no-fleet] [CRITERION ARGS]`: runs the criterion benchmarks and
//! records their figures, then the fleet simulator at 10,000 and 100,000 nodes.
//!
//! Each run appends one row per benchmark to `bench/results.tsv`: date (UTC), commit,
//! benchmark, mean and the 95% confidence bounds in milliseconds; plus the agent's
//! no-change convergence of the example users and 500 files (converge.rs). The simulator
//! runs (fleetsim.rs, [`FLEETS`] and [`fleet_args`]) append to `bench/fleetsim.tsv`; `--no-fleet` skips them
//! (the 100,000-node run takes about 15 minutes, most of it enrollment and first compiles).
//! Timing lives here, in benchmarks that anyone can rerun, never as assertions in tests.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::root;

/// Benchmarks to run: (package, bench target).
const BENCHES: &[(&str, &str)] = &[
    ("vigo-server", "config"),
    ("vigo-server", "checkin"),
    ("vigo-server", "store"),
];

/// The simulator runs, by fleet size: no-change check-ins (the targets in
/// docs/performance.md are for those), a reconnecting phase over the whole fleet, then a
/// keep-alive phase of 1,000 nodes (each holding a connection) among all enrolled ones at
/// 64 check-ins in flight (the peak rate), and the same nodes paced at 9,600 check-ins/s —
/// 80 % of the 12,000/s target, the load the p99 target is about.
const FLEETS: &[usize] = &[10_000, 100_000];

/// `vigo-fleetsim` arguments for a run of `nodes`.
fn fleet_args(nodes: usize) -> Vec<String> {
    let nodes = nodes.to_string();
    [
        "--nodes",
        &nodes,
        "--concurrency",
        "64",
        "--duration",
        "20",
        "--mode",
        "reconnect,keepalive,keepalive/9600",
        "--keepalive-nodes",
        "1000",
        "--changing-share",
        "0",
        "--results-share",
        "0",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

pub fn run(args: &[String]) -> Result<()> {
    let root = root();
    let fleet = !args.iter().any(|a| a == "--no-fleet");
    let extra: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--no-fleet")
        .collect();
    for (package, bench) in BENCHES {
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["bench", "-p", package, "--bench", bench, "--"])
            .args(&extra)
            .status()
            .context("running cargo bench")?;
        if !status.success() {
            bail!("cargo bench -p {package} --bench {bench} failed");
        }
    }
    let commit = commit();
    let date = git(&root, &["log", "-1", "--format=%cs"]).unwrap_or_default();
    let date = today().unwrap_or(date);

    let mut rows = String::new();
    let criterion = root.join("target/criterion");
    for estimates in find_estimates(&criterion) {
        let text = std::fs::read_to_string(&estimates)?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("reading {}", estimates.display()))?;
        let ms = |p: &serde_json::Value| p.as_f64().unwrap_or(f64::NAN) / 1e6;
        let name = estimates
            .parent()
            .and_then(Path::parent)
            .and_then(|p| p.strip_prefix(&criterion).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mean = &v["mean"];
        let _ = writeln!(
            rows,
            "{date}\t{commit}\t{name}\t{:.3}\t{:.3}\t{:.3}",
            ms(&mean["point_estimate"]),
            ms(&mean["confidence_interval"]["lower_bound"]),
            ms(&mean["confidence_interval"]["upper_bound"])
        );
    }
    let agent = agent_convergence()?;
    let _ = writeln!(
        rows,
        "{date}\t{commit}\tagent/no-change-converge/{}-resources\t{:.3}\t{:.3}\t{:.3}",
        agent.resources, agent.mean_ms, agent.low_ms, agent.high_ms
    );
    let results = root.join("bench/results.tsv");
    let mut existing = std::fs::read_to_string(&results).unwrap_or_default();
    if existing.is_empty() {
        existing.push_str("date\tcommit\tbenchmark\tmean_ms\tlow_ms\thigh_ms\n");
    }
    existing.push_str(&rows);
    std::fs::write(&results, existing)?;
    print!("appended to bench/results.tsv:\n{rows}");
    if fleet {
        for &nodes in FLEETS {
            crate::fleetsim::run(&fleet_args(nodes))?;
        }
    }
    Ok(())
}

/// The shipped (static, `agent` profile) agent converging the example users plus 500
/// managed files with nothing to change, 40 times (xtask/src/converge.rs).
fn agent_convergence() -> Result<crate::converge::Figures> {
    let build = crate::dist::host_static_agent()?;
    let dir = crate::size::static_target_dir(true);
    let status = build
        .command(&dir, true)
        .status()
        .context("building the static agent")?;
    if !status.success() {
        bail!("building the static agent failed");
    }
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "--quiet", "-p", "vigo-server", "--bin", "vigocli"])
        .status()
        .context("building vigocli")?;
    if !status.success() {
        bail!("building vigocli failed");
    }
    crate::converge::measure(
        &build.output(&dir),
        &root().join("target/debug/vigocli"),
        500,
        40,
    )
}

/// The short commit of the work tree, with `+dirty` when it has uncommitted changes.
pub fn commit() -> String {
    let root = crate::root();
    let commit = git(&root, &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&root, &["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}+dirty")
    } else {
        commit
    }
}

fn find_estimates(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            let est = p.join("new/estimates.json");
            if est.is_file() {
                out.push(est);
            } else {
                out.extend(find_estimates(&p));
            }
        }
    }
    out.sort();
    out
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    crate::stdout_of(Command::new("git").current_dir(root).args(args))
}

fn today() -> Option<String> {
    crate::stdout_of(Command::new("date").args(["-u", "+%Y-%m-%d"]))
}
