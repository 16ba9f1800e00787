//! `cargo xtask`: project automation written in Rust, not shell.
//!
//! - `cargo xtask demo`: Vigo end to end on this machine, changing nothing on the host.
//! - `cargo xtask bench`: runs the criterion benchmarks and appends their figures, with
//!   the date and commit, to `bench/results.tsv`.
//! - `cargo xtask dist`: static hardened agents for cross-targets/targets.toml, the server,
//!   SHA256SUMS and Ed25519 signatures (docs/release.md).
//! - `cargo xtask fleetsim`: simulated agents against a release server, figures appended to
//!   `bench/fleetsim.tsv` (docs/performance.md).
//! - `cargo xtask harden-check`: PIE, full RELRO, NX stack, stripped, stack protector of
//!   the dist's binaries.
//! - `cargo xtask size`: the static agent's size against size-report/budget.
//! - `cargo xtask policy`: the code-base policy checks (also run as this crate's tests).

mod bench;
mod converge;
mod demo;
mod dist;
mod elf;
mod fleetsim;
mod harden;
mod pie_link;
mod policy;
mod size;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Started by rustc as a target's linker (dist): link and nothing else.
    if let Some(code) = pie_link::run_if_linker() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("fleetsim") => fleetsim::run(&args[1..]),
        Some("policy") => policy::run(),
        Some("harden-check") => harden::run(&args[1..]),
        Some("size") => size::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\ncommands:\n  demo     run Vigo end to end on this machine, changing nothing on the host\n  bench [--no-fleet]  run the benchmarks (bench/results.tsv) and the simulator at 10k and 100k nodes (bench/fleetsim.tsv)\n  dist [--out DIR] [--key FILE] [--only PLATFORM]... [--no-server]  build, harden and sign the release (docs/release.md)\n  fleetsim [ARGS]  simulate a fleet against a release server and append to bench/fleetsim.tsv\n  policy   check file headers and the agent's dependency allowlist\n  harden-check [--dist DIR] [BINARY...]  check PIE, full RELRO, NX stack, strip, stack protector and the agent profile\n  size [--target TRIPLE] [--check]  build the static agent, report its size and fail over size-report/budget"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
/// A command's standard output, trimmed, when it ran and succeeded.
pub fn stdout_of(cmd: &mut std::process::Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
