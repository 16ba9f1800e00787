//! `cargo xtask`: project automation written in Rust, not shell.
//!
//! - `cargo xtask demo`: Vigo end to end on this machine, changing nothing on the host.
//! - `cargo xtask bench`: runs the criterion benchmarks and appends their figures, with
//!   the date and commit, to `bench/results.tsv`.
//! - `cargo xtask policy`: the code-base policy checks (also run as this crate's tests).

mod bench;
mod demo;
mod policy;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("policy") => policy::run(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\ncommands:\n  demo     run Vigo end to end on this machine, changing nothing on the host\n  bench    run the benchmarks and append the figures to bench/results.tsv\n  policy   check file headers and the agent's dependency allowlist"
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
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
