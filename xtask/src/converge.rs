//! The agent's no-change convergence benchmark (part of `cargo xtask bench`): the example
//! fleet's users (alice among them) plus a module of N managed files, compiled into a
//! signed bundle, applied once into a seeded root, then applied again and again with
//! nothing to change. Each timed run is the whole `vigo-agent apply` process: start,
//! verify the bundle, check every resource, report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The node the benchmark compiles for (matched by the node rule it writes).
const NODE: &str = "bench01.demo";

/// Mean and 95 % confidence bounds of the no-change runs, in milliseconds.
#[derive(Debug)]
pub struct Figures {
    pub resources: usize,
    pub mean_ms: f64,
    pub low_ms: f64,
    pub high_ms: f64,
}

/// Measures `runs` no-change applies of a bundle with `files` managed files, using the
/// given agent and vigocli binaries, in a temporary folder it removes afterwards.
pub fn measure(agent: &Path, vigocli: &Path, files: usize, runs: usize) -> Result<Figures> {
    let work = std::env::temp_dir().join(format!("vigo-converge-{}", std::process::id()));
    let result = measure_in(&work, agent, vigocli, files, runs);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure_in(
    work: &Path,
    agent: &Path,
    vigocli: &Path,
    files: usize,
    runs: usize,
) -> Result<Figures> {
    let examples = crate::root().join("examples/fleet");
    let config = work.join("config");
    copy_dir(&examples.join("config"), &config)?;
    copy_dir(&examples.join("secrets"), &work.join("secrets"))?;
    std::fs::write(config.join("modules/bench-files.yaml"), files_module(files))?;
    std::fs::write(
        config.join("nodes/50-bench.yaml"),
        "name: bench\nmatch: \"bench*\"\nmodules: [bench-files]\npriority: 50\n",
    )?;

    let bundle = work.join("bench.bundle");
    let key = work.join("bundle.key");
    run_ok(
        Command::new(vigocli)
            .args(["config", "compile", "--config"])
            .arg(&config)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&bundle)
            .arg(NODE),
        "vigocli config compile",
    )?;

    let root = work.join("root");
    crate::demo::seed_root(&root)?;
    std::fs::create_dir_all(root.join("srv"))?;
    let mut trust = key.into_os_string();
    trust.push(".pub");
    let apply = || {
        let mut cmd = Command::new(agent);
        cmd.args(["apply", "--family", "debian", "--node", NODE, "--bundle"])
            .arg(&bundle)
            .arg("--trust")
            .arg(&trust)
            .arg("--root")
            .arg(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };

    // The first run converges (exit 2: changed); from then on nothing may change.
    let first = apply().output().context("running vigo-agent apply")?;
    if first.status.code() != Some(2) {
        bail!(
            "the first apply should change the root (exit 2), got {}: {}",
            first.status,
            String::from_utf8_lossy(&first.stdout)
        );
    }
    let summary = String::from_utf8_lossy(&first.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let resources = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("reading the resource count from {summary:?}"))?;

    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let out = apply().output().context("running vigo-agent apply")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            bail!(
                "a no-change apply exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    let (mean_ms, half) = mean_and_ci(&times);
    Ok(Figures {
        resources,
        mean_ms,
        low_ms: mean_ms - half,
        high_ms: mean_ms + half,
    })
}

/// The mean and the half-width of its 95 % confidence interval (normal approximation).
fn mean_and_ci(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = samples.iter().sum::<f64>() / n;
    if samples.len() < 2 {
        return (mean, 0.0);
    }
    let var = samples.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (var / n).sqrt())
}

/// A module of `n` small managed files under /srv/bench.
fn files_module(n: usize) -> String {
    let mut s = String::from(
        "name: bench-files\ndescription: managed files for the convergence benchmark\nresources:\n  - name: /srv/bench\n    type: directory\n    mode: \"0755\"\n",
    );
    for i in 0..n {
        let _ = write!(
            s,
            "  - name: /srv/bench/f{i:04}.conf\n    type: file\n    mode: \"0644\"\n    content: \"setting_{i} = {}\\n\"\n",
            i * 7
        );
    }
    s
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("{}", from.display()))? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's set-up really converges and then really changes nothing: with the
    /// debug binaries and a small module, every timed run exits 0 and the count includes
    /// the generated files and the example users.
    #[test]
    fn the_convergence_benchmark_measures_no_change_runs() {
        let bin = crate::root().join("target/debug");
        let status = Command::new(env!("CARGO"))
            .current_dir(crate::root())
            .args(["build", "--quiet", "-p", "vigo-server", "-p", "vigo-agent"])
            .status()
            .expect("cargo build runs");
        assert!(status.success());
        let figures = measure(&bin.join("vigo-agent"), &bin.join("vigocli"), 20, 3)
            .expect("the benchmark runs");
        // 20 files + their directory + the example fleet's base and os-users resources.
        assert!(figures.resources > 21, "{figures:?}");
        assert!(figures.mean_ms.is_finite() && figures.low_ms <= figures.high_ms);
    }

    #[test]
    fn confidence_interval_of_known_samples() {
        let cases: [(&[f64], f64, f64); 3] = [
            (&[2.0, 2.0, 2.0], 2.0, 0.0),
            (&[1.0, 3.0], 2.0, 1.96),
            (&[5.0], 5.0, 0.0),
        ];
        for (samples, mean, half) in cases {
            let (m, h) = mean_and_ci(samples);
            assert!(
                (m - mean).abs() < 1e-9 && (h - half).abs() < 1e-9,
                "{samples:?}"
            );
        }
    }
}
