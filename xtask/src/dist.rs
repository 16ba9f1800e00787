//! `cargo xtask dist`: the release. Static, hardened agents for every target of
//! `cross-targets/targets.toml` this machine can build, the server, and a signed
//! SHA256SUMS over all of them (docs/release.md).
//!
//! Layout of the output (default `target/dist`, served by `vigo-server run --dist`):
//! `agent/<platform>/vigo-agent[.exe]` (+ `.sig`), `server/<platform>/{vigo-server,vigocli}`
//! (+ `.sig`), `SHA256SUMS`, `SHA256SUMS.sig`, `release.pub`, `release.pub.pem`, and, not
//! shipped, `symbols/<platform>/vigo-agent` (the same build unstripped, read by
//! `cargo xtask harden-check` and `cargo xtask size`) and `manifest.json` (what was built
//! and skipped, and why).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::targets::{self, Target};

/// One agent build this machine can make.
#[derive(Clone, Debug)]
pub struct AgentBuild {
    /// The matrix row.
    pub target: Target,
    /// The triple actually built (the row's, or its fallback).
    pub triple: String,
}

impl AgentBuild {
    /// `musl`, `glibc`, or the OS name for non-Linux targets.
    pub fn libc(&self) -> &'static str {
        if self.triple.contains("-linux-musl") {
            "musl"
        } else if self.triple.contains("-linux-gnu") {
            "glibc"
        } else {
            "system"
        }
    }

    /// Whether this is the static-glibc fallback (linked with `+crt-static`).
    fn glibc_static(&self) -> bool {
        self.libc() == "glibc" && self.target.is_static
    }

    fn file_name(&self) -> &'static str {
        if self.triple.contains("windows") {
            "vigo-agent.exe"
        } else {
            "vigo-agent"
        }
    }

    /// The `cargo build` of the agent with the `agent` profile, hardened, into `target_dir`.
    /// `strip: false` gives the symbols companion of the same build.
    pub fn command(&self, target_dir: &Path, strip: bool) -> Command {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(crate::root())
            .args([
                "build",
                "--profile",
                "agent",
                "-p",
                "vigo-agent",
                "--target",
            ])
            .arg(&self.triple)
            .env("CARGO_TARGET_DIR", target_dir)
            .env(
                "CARGO_PROFILE_AGENT_STRIP",
                if strip { "true" } else { "false" },
            )
            .env("RUSTFLAGS", self.rustflags());
        let env_triple = self.triple.replace('-', "_");
        if targets::needs_own_tools(&self.triple) {
            if let Some(cc) = &self.target.cc {
                cmd.env(format!("CC_{env_triple}"), cc);
            }
            if let Some(linker) = &self.target.linker {
                cmd.env(
                    format!("CARGO_TARGET_{}_LINKER", env_triple.to_uppercase()),
                    linker,
                );
            }
        }
        if self.target.elf {
            // ring's C and assembly: stack protector, like the distributions build C.
            cmd.env(format!("CFLAGS_{env_triple}"), "-fstack-protector-strong");
        }
        cmd
    }

    /// Flags for rustc: full RELRO, non-executable stack and packed relative relocations
    /// for ELF targets (PIE is rustc's default), and `+crt-static` where the target is
    /// linked statically.
    pub fn rustflags(&self) -> String {
        let mut flags: Vec<&str> = Vec::new();
        if self.target.elf {
            flags.extend([
                "-C link-arg=-Wl,-z,relro,-z,now",
                "-C link-arg=-Wl,-z,noexecstack",
                // RELR: the static-pie's relative relocations in a few hundred bytes
                // instead of ~70 KB (GNU ld >= 2.38, musl and glibc >= 2.36 start-up).
                "-C link-arg=-Wl,-z,pack-relative-relocs",
            ]);
        }
        if self.glibc_static() || self.triple.contains("windows") {
            flags.push("-C target-feature=+crt-static");
        }
        flags.join(" ")
    }

    /// Where `cargo build` leaves the binary.
    pub fn output(&self, target_dir: &Path) -> PathBuf {
        target_dir
            .join(&self.triple)
            .join("agent")
            .join(self.file_name())
    }
}

/// What the matrix row becomes on this machine: a build, or the reason it is skipped.
pub fn plan(target: &Target) -> Result<AgentBuild, String> {
    let Some(reason) = targets::why_not(target, &target.triple) else {
        return Ok(AgentBuild {
            target: target.clone(),
            triple: target.triple.clone(),
        });
    };
    match &target.fallback {
        Some(fallback) => match targets::why_not(target, fallback) {
            None => Ok(AgentBuild {
                target: target.clone(),
                triple: fallback.clone(),
            }),
            Some(other) => Err(format!("{reason}; fallback {fallback}: {other}")),
        },
        None => Err(reason),
    }
}

/// The static agent for this machine's own platform (linux-x86_64): musl when possible,
/// else static glibc. Used by `cargo xtask size` too.
pub fn host_static_agent() -> Result<AgentBuild> {
    let all = targets::load(&crate::root())?;
    let Some(row) = all.iter().find(|t| t.platform == host_platform()) else {
        bail!(
            "cross-targets/targets.toml has no row for this machine ({})",
            host_platform()
        );
    };
    plan(row).map_err(|why| anyhow::anyhow!("cannot build the agent for this machine: {why}"))
}

/// `<os>-<arch>` of the machine running xtask.
pub fn host_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "solaris" => "illumos",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "arm" => "armv7",
        other => other,
    };
    format!("{os}-{arch}")
}

fn host_triple() -> Result<String> {
    targets::host_triple().context("rustc -vV printed no host triple")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

struct Options {
    out: PathBuf,
    key: Option<PathBuf>,
    only: Vec<String>,
    server: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let root = crate::root();
    let mut o = Options {
        out: root.join("target/dist"),
        key: std::env::var_os("VIGO_RELEASE_KEY").map(PathBuf::from),
        only: Vec::new(),
        server: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--out" => o.out = PathBuf::from(value("--out")?),
            "--key" => o.key = Some(PathBuf::from(value("--key")?)),
            "--only" => o.only.push(value("--only")?),
            "--no-server" => o.server = false,
            other => bail!(
                "unknown option {other:?}; usage: cargo xtask dist [--out DIR] [--key FILE] [--only PLATFORM]... [--no-server]"
            ),
        }
    }
    Ok(o)
}

/// Runs `cargo xtask dist`.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse_options(args)?;
    let root = crate::root();
    let matrix = targets::load(&root)?;
    for name in &opts.only {
        if !matrix.iter().any(|t| &t.platform == name) {
            bail!("--only {name}: no such platform in cross-targets/targets.toml");
        }
    }
    if opts.out.exists() {
        fs::remove_dir_all(&opts.out)
            .with_context(|| format!("removing the old {}", opts.out.display()))?;
    }
    fs::create_dir_all(&opts.out)?;
    // The agent builds share their folders with `cargo xtask size`, which therefore
    // measures exactly these binaries (and costs no second build after a dist).
    let agent_dir = crate::size::static_target_dir(true);
    let symbols_dir = crate::size::static_target_dir(false);
    let build_dir = root.join("target/dist-build");

    let mut manifest_targets = Vec::new();
    let mut built = 0;
    for target in &matrix {
        if !opts.only.is_empty() && !opts.only.contains(&target.platform) {
            continue;
        }
        let build = match plan(target) {
            Ok(build) => build,
            Err(why) => {
                println!("skip  {:<16} {why}", target.platform);
                manifest_targets.push(json!({
                    "platform": target.platform, "triple": target.triple,
                    "built": false, "reason": why,
                }));
                continue;
            }
        };
        println!(
            "build {:<16} {} ({}, {})",
            target.platform,
            build.triple,
            build.libc(),
            if target.is_static {
                "static"
            } else {
                "dynamic"
            }
        );
        run_cmd(build.command(&agent_dir, true), "the agent build")?;
        let dest = opts.out.join("agent").join(&target.platform);
        fs::create_dir_all(&dest)?;
        let shipped = dest.join(build.file_name());
        fs::copy(build.output(&agent_dir), &shipped)
            .with_context(|| format!("copying the agent to {}", shipped.display()))?;
        if target.elf {
            run_cmd(build.command(&symbols_dir, false), "the symbols build")?;
            let sym_dest = opts.out.join("symbols").join(&target.platform);
            fs::create_dir_all(&sym_dest)?;
            fs::copy(build.output(&symbols_dir), sym_dest.join(build.file_name()))?;
        }
        let bytes = fs::metadata(&shipped)?.len();
        println!("      {:<16} {bytes} bytes", "");
        manifest_targets.push(json!({
            "platform": target.platform, "triple": build.triple, "built": true,
            "libc": build.libc(), "static": target.is_static, "bytes": bytes,
            "rustflags": build.rustflags(),
        }));
        built += 1;
    }
    if built == 0 {
        bail!("no agent target could be built on this machine (see the skip lines above)");
    }

    let host = host_triple()?;
    let vigocli = build_server(&root, &build_dir, &host)?;
    if opts.server {
        let dest = opts.out.join("server").join(host_platform());
        fs::create_dir_all(&dest)?;
        for bin in ["vigo-server", "vigocli"] {
            fs::copy(
                build_dir.join(&host).join("release").join(bin),
                dest.join(bin),
            )?;
        }
    }

    let manifest = json!({
        "commit": crate::bench::commit(),
        "rustc": rustc_version(),
        "targets": manifest_targets,
    });
    fs::write(
        opts.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;

    sign(&vigocli, &opts)?;
    println!("dist written to {}", opts.out.display());
    Ok(())
}

/// The server, hardened like the agent (but with the release profile: the server keeps
/// unwinding and thin LTO). Returns the path of the built vigocli.
fn build_server(root: &Path, build_dir: &Path, host: &str) -> Result<PathBuf> {
    println!("build server           {host} (release)");
    let env_triple = host.replace('-', "_");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "vigo-server",
            "--bin",
            "vigo-server",
            "--bin",
            "vigocli",
            "--target",
            host,
        ])
        .env("CARGO_TARGET_DIR", build_dir)
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env(
            "RUSTFLAGS",
            "-C link-arg=-Wl,-z,relro,-z,now -C link-arg=-Wl,-z,noexecstack",
        )
        .env(
            format!("CFLAGS_{env_triple}"),
            "-fstack-protector-strong -D_FORTIFY_SOURCE=2 -O2",
        );
    run_cmd(cmd, "the server build")?;
    Ok(build_dir.join(host).join("release").join("vigocli"))
}

/// Signs the dist with the release key (`--key`, `$VIGO_RELEASE_KEY`, or a throwaway key
/// kept in target/dist-key for local builds).
fn sign(vigocli: &Path, opts: &Options) -> Result<()> {
    let mut cmd = Command::new(vigocli);
    cmd.args(["release", "sign", "--dist"]).arg(&opts.out);
    match &opts.key {
        Some(key) => {
            println!("sign  with the release key {}", key.display());
            cmd.arg("--key").arg(key);
        }
        None => {
            let key = crate::root().join("target/dist-key/release.key");
            fs::create_dir_all(key.parent().unwrap_or(Path::new(".")))?;
            println!(
                "sign  with a throwaway local key {} (set VIGO_RELEASE_KEY or --key for a release)",
                key.display()
            );
            cmd.arg("--key").arg(key).arg("--create-key");
        }
    }
    run_cmd(cmd, "vigocli release sign")
}

fn rustc_version() -> String {
    Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn run_cmd(mut cmd: Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {what}: {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {cmd:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(platform: &str, triple: &str, elf: bool, is_static: bool) -> Target {
        Target {
            platform: platform.to_string(),
            triple: triple.to_string(),
            elf,
            is_static,
            ..Target::default()
        }
    }

    #[test]
    fn rustflags_follow_the_target() {
        let cases = [
            (
                row("linux-x86_64", "x86_64-unknown-linux-musl", true, true),
                "x86_64-unknown-linux-musl",
                true,
                false,
            ),
            (
                row("linux-x86_64", "x86_64-unknown-linux-musl", true, true),
                "x86_64-unknown-linux-gnu",
                true,
                true,
            ),
            (
                row("windows-x86_64", "x86_64-pc-windows-gnu", false, true),
                "x86_64-pc-windows-gnu",
                false,
                true,
            ),
            (
                row("freebsd-x86_64", "x86_64-unknown-freebsd", true, false),
                "x86_64-unknown-freebsd",
                true,
                false,
            ),
        ];
        for (target, triple, relro, crt_static) in cases {
            let build = AgentBuild {
                target,
                triple: triple.to_string(),
            };
            let flags = build.rustflags();
            assert_eq!(
                flags.contains("-z,relro,-z,now"),
                relro,
                "{triple}: {flags}"
            );
            assert_eq!(flags.contains("noexecstack"), relro, "{triple}: {flags}");
            assert_eq!(
                flags.contains("+crt-static"),
                crt_static,
                "{triple}: {flags}"
            );
        }
    }

    #[test]
    fn a_target_without_its_standard_library_is_skipped_with_the_reason() {
        let target = row("nowhere-x86_64", "x86_64-unknown-nowhere", true, true);
        let why = plan(&target).expect_err("not installed");
        assert!(
            why.contains("rustup target add x86_64-unknown-nowhere"),
            "{why}"
        );
    }
}
