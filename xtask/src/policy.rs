//! Code-base policy, checked by `cargo xtask policy` and by this crate's tests:
//! every Rust file starts with a `//!` line saying what it is for, and the agent depends
//! only on crates from its allowlist (its size budget is a dependency budget).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::root;

/// Crates the agent may depend on directly. Adding one means measuring its size cost and
/// recording it in size-report/ first.
pub const AGENT_ALLOWLIST: &[&str] = &[
    "vigo-shared",
    "ureq",
    "rustls",
    "rustls-pki-types",
    // rustls-webpki, linked through rustls anyway; named for its Ed25519 algorithm only.
    "webpki",
    "ring",
    "ed25519-compact",
    "miniserde",
    "heapless",
    "pico-args",
    "libc",
];

/// Crates the agent must never depend on.
pub const AGENT_FORBIDDEN: &[&str] = &[
    "tokio",
    "clap",
    "serde_json",
    "anyhow",
    "regex",
    "async-std",
    "reqwest",
];

pub fn run() -> Result<()> {
    let problems = check(&root());
    if problems.is_empty() {
        println!("policy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("{p}");
    }
    bail!("{} policy problem(s)", problems.len())
}

/// Every problem found under `root`.
pub fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for crate_dir in ["agent", "server", "shared", "xtask"] {
        for file in rust_files(&root.join(crate_dir)) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if !text.trim_start().starts_with("//!") {
                let rel = file.strip_prefix(root).unwrap_or(&file);
                problems.push(format!(
                    "{}: must start with a `//!` comment saying what the module is for",
                    rel.display()
                ));
            }
        }
    }
    problems.extend(agent_dependencies(root));
    problems
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && name != "target" && name != "fixtures" {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Direct `[dependencies]` of the agent (not dev- or build-dependencies).
fn agent_dependencies(root: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("agent/Cargo.toml")).unwrap_or_default();
    let mut problems = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]"
                || line.starts_with("[target.") && line.ends_with(".dependencies]");
            continue;
        }
        if !in_deps || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(name) = line.split(['=', '.']).next().map(str::trim) else {
            continue;
        };
        if AGENT_FORBIDDEN.contains(&name) {
            problems.push(format!("agent/Cargo.toml: `{name}` is forbidden on the agent (size budget, no async runtime)"));
        } else if !AGENT_ALLOWLIST.contains(&name) {
            problems.push(format!(
                "agent/Cargo.toml: `{name}` is not on the agent's allowlist (xtask/src/policy.rs); measure its size cost, record it in size-report/, then add it"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_follows_the_policy() {
        let problems = check(&root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_checks_catch_violations() {
        let dir = std::env::temp_dir().join(format!("vigo-policy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("agent/src")).unwrap();
        std::fs::write(dir.join("agent/src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(dir.join("agent/Cargo.toml"), "[package]\nname = \"a\"\n[dependencies]\ntokio = \"1\"\nleftpad = \"1\"\nminiserde = \"0.1\"\n[dev-dependencies]\nserde_json = \"1\"\n").unwrap();
        let problems = check(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("agent/src/main.rs"));
        assert!(problems[1].contains("`tokio` is forbidden"));
        assert!(problems[2].contains("`leftpad` is not on the agent's allowlist"));
    }
}
