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
        let linker_var = format!("CARGO_TARGET_{}_LINKER", env_triple.to_uppercase());
        if targets::needs_own_tools(&self.triple) {
            if let Some(cc) = &self.target.cc {
                cmd.env(format!("CC_{env_triple}"), cc);
            }
            if let Some(linker) = &self.target.linker {
                cmd.env(&linker_var, linker);
            }
        }
        if self.static_pie_wrapper() {
            // rustc links this target `-static -no-pie` with crt1.o; the wrapper turns that
            // into the static-pie link rustc does for x86_64 musl (xtask/src/pie_link.rs:
            // this very binary, started as the linker).
            let real = self.target.linker.as_deref().unwrap_or("cc");
            cmd.env(&linker_var, static_pie_link())
                .env(crate::pie_link::REAL_LINKER_VAR, real);
        }
        if self.target.elf {
            // ring's C and assembly: stack protector, like the distributions build C.
            cmd.env(format!("CFLAGS_{env_triple}"), "-fstack-protector-strong");
        }
        cmd
    }

    /// Flags for rustc: full RELRO and a non-executable stack for ELF targets, packed
    /// relative relocations (RELR) for position-independent ones (PIE is rustc's default;
    /// a row's `not_pie` build has no relative relocations to pack), rustc's own `rust-lld`
    /// for rows that ask for it, and `+crt-static` where the target is linked statically.
    pub fn rustflags(&self) -> String {
        let mut flags: Vec<String> = Vec::new();
        if self.target.elf {
            flags.extend([
                "-C link-arg=-Wl,-z,relro,-z,now".to_string(),
                "-C link-arg=-Wl,-z,noexecstack".to_string(),
            ]);
            if self.not_pie_reason().is_none() {
                // RELR: the static-pie's relative relocations in a few hundred bytes
                // instead of ~70 KB (GNU ld >= 2.38 on x86_64, lld; musl >= 1.2.4 and
                // glibc >= 2.36 start-up). The GNU ld 2.40 of Debian 12's aarch64 and arm
                // cross binutils ignore it ("-z pack-relative-relocs ignored"), which is
                // what the rows' `rust_lld` is for.
                flags.push("-C link-arg=-Wl,-z,pack-relative-relocs".to_string());
            }
        }
        if self.target.rust_lld
            && let Some(dir) = rust_lld_dir()
        {
            // What rustc itself passes when it links with rust-lld through `cc`: the
            // gcc-ld folder holds an `ld.lld` that runs rust-lld.
            flags.push(format!("-C link-arg=-B{}", dir.display()));
            flags.push("-C link-arg=-fuse-ld=lld".to_string());
        }
        if self.glibc_static() || self.triple.contains("windows") {
            flags.push("-C target-feature=+crt-static".to_string());
        }
        flags.join(" ")
    }

    /// Why this build is static but not PIE (the row's `not_pie`), if it is.
    pub fn not_pie_reason(&self) -> Option<&str> {
        self.target.not_pie_reason(&self.triple)
    }

    /// Whether the link goes through xtask/src/pie_link.rs: static Linux builds
    /// that should be static-pie but whose Rust target spec does not link static-pie
    /// (`static-position-independent-executables`, seen with `RUSTC_BOOTSTRAP=1 rustc -Z
    /// unstable-options --print target-spec-json --target T`). In Rust 1.95, of the Linux
    /// triples in targets.toml only x86_64's (musl and gnu) have it; the wrapper leaves a
    /// static-pie command unchanged, so a target that gains it later links the same.
    pub fn static_pie_wrapper(&self) -> bool {
        let linux_static =
            self.target.elf && self.target.is_static && matches!(self.libc(), "musl" | "glibc");
        linux_static
            && self.not_pie_reason().is_none()
            && !self.triple.starts_with("x86_64-unknown-linux-")
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
    let build = plan_triple(target)?;
    if target.rust_lld && rust_lld_dir().is_none() {
        return Err(
            "the row asks for rust-lld, but this toolchain has no lib/rustlib/<host>/bin/gcc-ld/ld.lld"
                .into(),
        );
    }
    Ok(build)
}

/// The row's triple, or its fallback, whichever this machine can build.
fn plan_triple(target: &Target) -> Result<AgentBuild, String> {
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

/// The linker that makes a static link static-pie: this xtask binary (see pie_link.rs).
fn static_pie_link() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| crate::root().join("target/debug/xtask"))
}

/// rustc's folder with an `ld.lld` that runs its bundled rust-lld (for `cc -fuse-ld=lld`).
fn rust_lld_dir() -> Option<PathBuf> {
    let host = targets::host_triple()?;
    let dir = targets::sysroot()?
        .join("lib/rustlib")
        .join(host)
        .join("bin/gcc-ld");
    dir.join("ld.lld").is_file().then_some(dir)
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
        if let Some(why) = build.not_pie_reason() {
            println!("      {:<16} static, not PIE: {why}", "");
        }
        manifest_targets.push(json!({
            "platform": target.platform, "triple": build.triple, "built": true,
            "libc": build.libc(), "static": target.is_static, "bytes": bytes,
            "pie": build.not_pie_reason().is_none(), "not_pie_reason": build.not_pie_reason(),
            "static_pie_wrapper": build.static_pie_wrapper(),
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

    /// One line per build of the repository's matrix: what the link gets.
    fn link_recipe(build: &AgentBuild) -> String {
        let flags = build.rustflags();
        let mut out = Vec::new();
        for (flag, name) in [
            ("-z,relro,-z,now", "relro"),
            ("noexecstack", "nx"),
            ("pack-relative-relocs", "relr"),
            ("-fuse-ld=lld", "rust-lld"),
            ("+crt-static", "crt-static"),
        ] {
            if flags.contains(flag) {
                out.push(name.to_string());
            }
        }
        if build.static_pie_wrapper() {
            out.push("static-pie-link".into());
        }
        if let Some(why) = build.not_pie_reason() {
            out.push(format!("not-pie({})", why.split(':').next().unwrap_or(why)));
        }
        out.join(" ")
    }

    #[test]
    fn link_recipes_follow_the_matrix() {
        let matrix = targets::load(&crate::root()).expect("cross-targets/targets.toml parses");
        let row = |platform: &str| {
            matrix
                .iter()
                .find(|t| t.platform == platform)
                .cloned()
                .expect("the row exists")
        };
        let lld = if rust_lld_dir().is_some() {
            " rust-lld"
        } else {
            ""
        };
        let cases = [
            (
                "linux-x86_64",
                "x86_64-unknown-linux-musl",
                "relro nx relr".to_string(),
            ),
            (
                "linux-x86_64",
                "x86_64-unknown-linux-gnu",
                "relro nx relr crt-static".to_string(),
            ),
            (
                "linux-aarch64",
                "aarch64-unknown-linux-musl",
                format!("relro nx relr{lld} static-pie-link"),
            ),
            (
                "linux-armv7",
                "armv7-unknown-linux-musleabihf",
                "relro nx relr static-pie-link".to_string(),
            ),
            (
                "linux-armv7",
                "armv7-unknown-linux-gnueabihf",
                "relro nx crt-static not-pie(Debian 12 armhf glibc 2.36 has no static-pie support)"
                    .to_string(),
            ),
            (
                "windows-x86_64",
                "x86_64-pc-windows-gnu",
                "crt-static".to_string(),
            ),
            (
                "freebsd-x86_64",
                "x86_64-unknown-freebsd",
                "relro nx relr".to_string(),
            ),
        ];
        let mut failures = Vec::new();
        for (platform, triple, want) in cases {
            let build = AgentBuild {
                target: row(platform),
                triple: triple.to_string(),
            };
            let got = link_recipe(&build);
            if got != want {
                failures.push(format!(
                    "{platform} {triple}\n  expected {want}\n  got      {got}\n  flags    {}",
                    build.rustflags()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[cfg(unix)]
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
