//! `cargo xtask demo`: Vigo end to end on this machine, changing nothing on the host.
//!
//! Builds the binaries, validates the example fleet, and for two demo nodes compiles the
//! signed bundle, converges a temporary root folder with the real agent (observe first,
//! then enforce, then once more to show nothing is left to change), and prints the run
//! reports and one node's resolution trace. The roots stay under the printed folder for
//! inspection.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    for a in args {
        if a != "--once" {
            bail!("unknown option {a}; usage: cargo xtask demo [--once]");
        }
    }
    let root = root();
    step("building vigocli and vigo-agent");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--quiet", "-p", "vigo-server", "-p", "vigo-agent"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let bin = root.join("target/debug");
    let vigocli = bin.join("vigocli");
    let agent = bin.join("vigo-agent");
    let config = root.join("examples/fleet/config");

    let work = std::env::temp_dir().join(format!("vigo-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    step("validating examples/fleet/config");
    run_shown(
        Command::new(&vigocli)
            .args(["config", "validate"])
            .arg(&config),
    )?;

    let host_facts = Command::new(&agent)
        .args(["facts", "--json"])
        .output()
        .context("running vigo-agent facts")?;
    if !host_facts.status.success() {
        bail!(
            "vigo-agent facts failed: {}",
            String::from_utf8_lossy(&host_facts.stderr)
        );
    }
    let key = work.join("bundle-signing.key");

    for (node, what) in NODES {
        step(&format!("{node}: {what}"));
        // The node's facts are this machine's, under the demo node's name, and Debian's
        // family, since its root is laid out like a Debian system.
        let mut facts: serde_json::Value =
            serde_json::from_slice(&host_facts.stdout).context("parsing facts")?;
        facts["hostname"] =
            serde_json::Value::String(node.split('.').next().unwrap_or(node).to_string());
        facts["fqdn"] = serde_json::Value::String(node.to_string());
        facts["os_family"] = serde_json::Value::String("debian".into());
        let facts_file = work.join(format!("{node}.facts.json"));
        std::fs::write(&facts_file, serde_json::to_vec_pretty(&facts)?)?;

        let bundle = work.join(format!("{node}.bundle"));
        run_shown(
            Command::new(&vigocli)
                .args(["config", "compile", node, "--config"])
                .arg(&config)
                .arg("--facts")
                .arg(&facts_file)
                .arg("--out")
                .arg(&bundle)
                .arg("--key")
                .arg(&key),
        )?;
        let node_root = work.join(node);
        seed_root(&node_root)?;
        let apply = |extra: &[&str]| -> Result<()> {
            let mut cmd = Command::new(&agent);
            cmd.arg("apply")
                .arg("--bundle")
                .arg(&bundle)
                .arg("--trust")
                .arg(format!("{}.pub", key.display()));
            cmd.arg("--root")
                .arg(&node_root)
                .args(["--node", node, "--family", "debian"])
                .args(extra);
            println!(
                "$ vigo-agent apply --bundle {node}.bundle --root {} {}",
                node_root.display(),
                extra.join(" ")
            );
            let out = cmd.output().context("running vigo-agent apply")?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            match out.status.code() {
                Some(0) | Some(2) => Ok(()),
                code => bail!("vigo-agent apply exited with {code:?}"),
            }
        };
        apply(&[])?;
        println!("\n-- and once more: a converged node has nothing left to change");
        apply(&[])?;
    }

    step("how db01.demo's policy was resolved: vigocli config trace db01.demo");
    run_shown(
        Command::new(&vigocli)
            .args(["config", "trace", "db01.demo", "--config"])
            .arg(&config)
            .arg("--facts")
            .arg(work.join("db01.demo.facts.json")),
    )?;

    step("done");
    println!(
        "The demo roots, bundles and signing key are in {}.",
        work.display()
    );
    println!(
        "Nothing outside that folder was changed. Edit examples/fleet/config and run the demo again."
    );
    Ok(())
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
fn seed_root(root: &Path) -> Result<()> {
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
