//! `cargo xtask harden-check [BINARY...]`: checks that shipped binaries carry the usual
//! hardening (PIE, full RELRO, non-executable stack, stripped, stack protector on C code)
//! and that the agent's cargo profile asks for what the size budget assumes.
//!
//! Without arguments it checks every binary under `target/dist/` (written by
//! `cargo xtask dist`), or under `--dist DIR`. Each check prints one line, PASS, FAIL, SKIP
//! or WAIVED, with what was found and, on FAIL, how to fix it; any FAIL makes the command
//! exit non-zero. WAIVED is only for the `pie` and `full-relro` checks of a build that
//! `cross-targets/targets.toml` declares static-but-not-PIE (`not_pie`, with the reason,
//! which is printed): a documented exception, never a silent pass.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::elf::{self, Elf};
use crate::root;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// Failed, but the row's `not_pie` exception in cross-targets/targets.toml covers it.
    Waived,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
            Status::Waived => "WAIVED",
        })
    }
}

#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub found: String,
    pub fix: &'static str,
}

fn check(name: &'static str, ok: bool, found: String, fix: &'static str) -> Check {
    let status = if ok { Status::Pass } else { Status::Fail };
    Check {
        name,
        status,
        found,
        fix,
    }
}

/// Where the stack-protector check reads symbols from: stripped binaries have none, so
/// the dist keeps an unstripped build of the same agent next to them.
pub enum Symbols<'a> {
    From(&'a Elf, &'a Path),
    Missing(String),
}

/// A binary to check and where its symbols are.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    binary: PathBuf,
    companion: Option<PathBuf>,
}

/// A `not_pie` exception of cross-targets/targets.toml that applies to one binary.
#[derive(Debug, PartialEq, Eq)]
pub struct Waiver {
    pub platform: String,
    pub triple: String,
    pub reason: String,
}

/// The checks a `not_pie` exception covers: what follows from a static binary not being
/// position-independent. Everything else still has to pass.
const NOT_PIE_CHECKS: [&str; 2] = ["pie", "full-relro"];

pub fn run(args: &[String]) -> Result<()> {
    let root = root();
    let (dist, args) = match args {
        [flag, dir] if flag == "--dist" => (PathBuf::from(dir), &[][..]),
        [flag, ..] if flag == "--dist" => {
            bail!("usage: cargo xtask harden-check [--dist DIR | BINARY...]")
        }
        _ => (root.join("target/dist"), args),
    };
    let (targets, notes) = if args.is_empty() {
        discover(&dist)?
    } else {
        let targets = args
            .iter()
            .map(|a| {
                let binary = PathBuf::from(a);
                let companion = companion_for(&binary);
                Target { binary, companion }
            })
            .collect();
        (targets, Vec::new())
    };
    for note in &notes {
        println!("note: {note}");
    }
    let matrix = crate::targets::load(&root)?;
    let mut failed = 0;
    let mut waived = Vec::new();
    let manifest = root.join("Cargo.toml");
    let toml = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    failed += report("[profile.agent] in Cargo.toml", &[profile_check(&toml)]);
    for t in &targets {
        let data =
            std::fs::read(&t.binary).with_context(|| format!("reading {}", t.binary.display()))?;
        if !Elf::has_magic(&data) {
            println!("note: {} is not an ELF file; skipped", t.binary.display());
            continue;
        }
        let elf =
            Elf::parse(&data).with_context(|| format!("parsing {} as ELF", t.binary.display()))?;
        let companion = match &t.companion {
            Some(p) if p.exists() => Some((Elf::read(p)?, p.clone())),
            _ => None,
        };
        let symbols = match (&companion, elf.section(".symtab")) {
            (Some((c, p)), _) => Symbols::From(c, p),
            (None, Some(_)) => Symbols::From(&elf, &t.binary),
            (None, None) => Symbols::Missing(match &t.companion {
                Some(p) => format!("unstripped companion {} does not exist", p.display()),
                None => "no unstripped companion is built for this binary".into(),
            }),
        };
        let title = format!("{} ({})", t.binary.display(), describe(&elf));
        let mut checks = check_binary(&elf, &symbols);
        let waiver = triple_of(&t.binary).and_then(|(platform, triple)| {
            matrix
                .iter()
                .filter(|r| platform.is_empty() || r.platform == platform)
                .find_map(|row| {
                    Some(Waiver {
                        platform: row.platform.clone(),
                        reason: row.not_pie_reason(&triple)?.to_string(),
                        triple: triple.clone(),
                    })
                })
        });
        if let Some(w) = &waiver {
            let n = apply_waiver(&mut checks, &elf, w);
            if n > 0 {
                waived.push(format!(
                    "{} ({}, {n} check(s))",
                    t.binary.display(),
                    w.triple
                ));
            }
        }
        failed += report(&title, &checks);
        if let Some(w) = waiver.filter(|_| checks.iter().any(|c| c.status == Status::Waived)) {
            println!(
                "       why WAIVED: cross-targets/targets.toml, {} not_pie = {}: {}",
                w.platform, w.triple, w.reason
            );
        }
    }
    for w in &waived {
        println!("note: WAIVED, not PIE by a documented exception: {w}");
    }
    if failed > 0 {
        bail!("{failed} hardening check(s) failed; see the FAIL lines above");
    }
    Ok(())
}

/// Turns the failed `pie` and `full-relro` checks of a `not_pie` build into WAIVED; returns
/// how many. `full-relro` is waived only when there is a PT_GNU_RELRO segment (a static
/// non-PIE binary has no dynamic section to carry BIND_NOW, and no lazy binding either).
pub fn apply_waiver(checks: &mut [Check], elf: &Elf, waiver: &Waiver) -> usize {
    let mut n = 0;
    for c in checks.iter_mut() {
        if c.status != Status::Fail || !NOT_PIE_CHECKS.contains(&c.name) {
            continue;
        }
        if c.name == "full-relro" && elf.segment(elf::PT_GNU_RELRO).is_none() {
            continue;
        }
        c.status = Status::Waived;
        let _ = write!(c.found, " (not_pie exception for {})", waiver.triple);
        n += 1;
    }
    n
}

/// The platform and Rust triple a binary was built for, from the layouts `dist` and
/// `size` write: `<dist>/agent/<platform>/X` with the triple in `<dist>/manifest.json`,
/// or `…/static[-symbols]/<triple>/…` (platform unknown: empty).
fn triple_of(binary: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = binary
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(i) = parts
        .iter()
        .rposition(|p| p == "static" || p == "static-symbols")
    {
        return parts.get(i + 1).map(|t| (String::new(), t.clone()));
    }
    let i = parts.iter().rposition(|p| p == "agent")?;
    let platform = parts.get(i + 1)?.clone();
    let dist: PathBuf = parts[..i].iter().collect();
    let text = std::fs::read_to_string(dist.join("manifest.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    let triple = manifest["targets"]
        .as_array()?
        .iter()
        .find(|t| t["platform"] == platform.as_str())?["triple"]
        .as_str()?
        .to_string();
    Some((platform, triple))
}

/// Class, byte order, machine and linking of a binary, for the report's title line.
fn describe(elf: &Elf) -> String {
    let class = if elf.is_64 { "ELF64" } else { "ELF32" };
    let order = if elf.big_endian {
        "big-endian"
    } else {
        "little-endian"
    };
    let linking = if elf.needed.is_empty() {
        "no DT_NEEDED".to_string()
    } else {
        format!("needs {}", elf.needed.join(", "))
    };
    format!("{class} {order}, e_machine {}, {linking}", elf.machine)
}

/// Prints one binary's checks; returns how many failed.
fn report(title: &str, checks: &[Check]) -> usize {
    println!("{title}");
    for c in checks {
        println!("  {:<6} {:<16} {}", c.status, c.name, c.found);
        if c.status == Status::Fail {
            println!("       fix: {}", c.fix);
        }
    }
    checks.iter().filter(|c| c.status == Status::Fail).count()
}

/// Finds the binaries of `target/dist/{agent,server}/<os>-<arch>/` and the unstripped
/// agent companions under `target/dist/symbols/<os>-<arch>/`.
fn discover(dist: &Path) -> Result<(Vec<Target>, Vec<String>)> {
    let mut targets = Vec::new();
    let mut notes = Vec::new();
    for kind in ["agent", "server"] {
        for platform in sorted_entries(&dist.join(kind))? {
            for file in sorted_entries(&platform)? {
                if !file.is_file() || file.extension().is_some_and(|e| e == "sig") {
                    continue;
                }
                let head = read_head(&file)?;
                if !Elf::has_magic(&head) {
                    notes.push(format!("{} is not an ELF file; skipped", file.display()));
                    continue;
                }
                let companion = (kind == "agent").then(|| {
                    let platform = platform.file_name().unwrap_or_default();
                    let name = file.file_name().unwrap_or_default();
                    dist.join("symbols").join(platform).join(name)
                });
                targets.push(Target {
                    binary: file,
                    companion,
                });
            }
        }
    }
    if targets.is_empty() {
        bail!(
            "no ELF binaries under {}: run cargo xtask dist first",
            dist.display()
        );
    }
    Ok((targets, notes))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    out.sort();
    Ok(out)
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(4);
    std::fs::File::open(path)
        .and_then(|f| f.take(4).read_to_end(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(head)
}

/// The unstripped build of the same agent, by the layouts that `dist` and `size` write:
/// `dist/agent/<platform>/X` → `dist/symbols/<platform>/X`, and
/// `target/static/<rest>` → `target/static-symbols/<rest>`.
fn companion_for(binary: &Path) -> Option<PathBuf> {
    let parts: Vec<String> = binary
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let dist_agent = parts
        .windows(2)
        .rposition(|w| w[0] == "dist" && w[1] == "agent");
    let index = match dist_agent {
        Some(i) => Some((i + 1, "symbols")),
        None => parts
            .iter()
            .rposition(|p| p == "static")
            .map(|i| (i, "static-symbols")),
    }?;
    let mut out = PathBuf::new();
    for (i, p) in parts.iter().enumerate() {
        out.push(if i == index.0 { index.1 } else { p });
    }
    Some(out)
}

pub fn check_binary(elf: &Elf, symbols: &Symbols) -> Vec<Check> {
    vec![
        pie(elf),
        relro(elf),
        nx_stack(elf),
        stripped(elf),
        stack_protector(symbols),
    ]
}

fn pie(elf: &Elf) -> Check {
    let fix = "build position-independent: do not pass -no-pie / relocation-model=static; for a static binary use static-pie (+crt-static on gnu, the default on musl)";
    if elf.file_type != elf::ET_DYN {
        let found = match elf.file_type {
            elf::ET_EXEC => "ET_EXEC: not position-independent".to_string(),
            other => format!("e_type {other}: neither ET_EXEC nor ET_DYN"),
        };
        return check("pie", false, found, fix);
    }
    let linking = if elf.segment(elf::PT_INTERP).is_some() {
        "dynamic PIE"
    } else {
        "static-pie (no PT_INTERP)"
    };
    if elf.segment(elf::PT_DYNAMIC).is_none() {
        return check(
            "pie",
            true,
            format!("ET_DYN, {linking}, no dynamic section"),
            fix,
        );
    }
    let pie_flag = elf.dyn_value(elf::DT_FLAGS_1).unwrap_or(0) & elf::DF_1_PIE != 0;
    let found = if pie_flag {
        format!("ET_DYN, {linking}, DF_1_PIE set")
    } else {
        format!("ET_DYN but DF_1_PIE is not set: a shared library rather than a PIE ({linking})")
    };
    check("pie", pie_flag, found, fix)
}

fn relro(elf: &Elf) -> Check {
    let relro = elf.segment(elf::PT_GNU_RELRO).is_some();
    let flags = elf.dyn_value(elf::DT_FLAGS).unwrap_or(0);
    let flags_1 = elf.dyn_value(elf::DT_FLAGS_1).unwrap_or(0);
    let mut now = Vec::new();
    if elf.dyn_value(elf::DT_BIND_NOW).is_some() {
        now.push("DT_BIND_NOW");
    }
    if flags & elf::DF_BIND_NOW != 0 {
        now.push("DF_BIND_NOW");
    }
    if flags_1 & elf::DF_1_NOW != 0 {
        now.push("DF_1_NOW");
    }
    let found = match (relro, now.is_empty()) {
        (true, false) => format!("PT_GNU_RELRO and {}: full RELRO", now.join(", ")),
        (true, true) if elf.segment(elf::PT_DYNAMIC).is_none() => {
            "PT_GNU_RELRO but no dynamic section to carry BIND_NOW (static, not PIE)".into()
        }
        (true, true) => "PT_GNU_RELRO without BIND_NOW: partial RELRO (lazy binding)".into(),
        (false, _) => "no PT_GNU_RELRO segment: no RELRO".into(),
    };
    let fix = "link with -Wl,-z,relro,-z,now (RUSTFLAGS=\"-C link-arg=-Wl,-z,relro,-z,now\")";
    check("full-relro", relro && !now.is_empty(), found, fix)
}

fn nx_stack(elf: &Elf) -> Check {
    let fix = "link with -Wl,-z,noexecstack and find the object that asks for an executable stack (assembly without .note.GNU-stack)";
    match elf.segment(elf::PT_GNU_STACK) {
        None => check(
            "nx-stack",
            false,
            "no PT_GNU_STACK: the loader may make the stack executable".into(),
            fix,
        ),
        Some(s) if s.flags & elf::PF_X != 0 => check(
            "nx-stack",
            false,
            "PT_GNU_STACK has PF_X: executable stack".into(),
            fix,
        ),
        Some(_) => check("nx-stack", true, "PT_GNU_STACK without PF_X".into(), fix),
    }
}

fn stripped(elf: &Elf) -> Check {
    let mut found = Vec::new();
    if elf.section(".symtab").is_some() {
        found.push(".symtab".to_string());
    }
    found.extend(elf.debug_sections().map(|s| s.name.clone()));
    let fix = "set strip = true in the cargo profile (or strip the file) before shipping";
    if found.is_empty() {
        check(
            "stripped",
            true,
            "no .symtab, no .debug_* sections".into(),
            fix,
        )
    } else {
        check("stripped", false, format!("has {}", found.join(" ")), fix)
    }
}

fn stack_protector(symbols: &Symbols) -> Check {
    let fix = "compile C code with -fstack-protector-strong (CFLAGS_<target>=\"-fstack-protector-strong\")";
    let (elf, path) = match symbols {
        Symbols::From(elf, path) => (elf, path),
        Symbols::Missing(why) => {
            return Check {
                name: "stack-protector",
                status: Status::Skip,
                found: why.clone(),
                fix,
            };
        }
    };
    let c_files = elf
        .symbols
        .iter()
        .filter(|s| s.kind == elf::STT_FILE && s.name.ends_with(".c"))
        .count();
    let ring_c = elf
        .symbols
        .iter()
        .filter(|s| s.kind == elf::STT_FUNC && s.name.starts_with("ring_core_"))
        .count();
    let chk = elf.symbols.iter().find(|s| s.name == "__stack_chk_fail");
    let mut found = String::new();
    let _ = write!(
        found,
        "symbols of {}: {c_files} C file symbols, {ring_c} ring_core_* functions, ",
        path.display()
    );
    if c_files + ring_c == 0 {
        found.push_str("no C code: nothing to protect");
        return check("stack-protector", true, found, fix);
    }
    match chk {
        Some(s) => {
            let how = if s.defined {
                "defined"
            } else {
                "undefined (imported)"
            };
            let _ = write!(found, "__stack_chk_fail {how}");
        }
        None => found.push_str("no __stack_chk_fail: C code built without a stack protector"),
    }
    check("stack-protector", chk.is_some(), found, fix)
}

/// Checks `[profile.agent]` of the workspace manifest. LTO and friends leave no mark in
/// the binary, so the manifest is the only place to check them.
fn profile_check(toml: &str) -> Check {
    let get = |key: &str| profile_value(toml, "agent", key);
    let want: [(&str, &[&str]); 5] = [
        ("lto", &["\"fat\"", "true"]),
        ("codegen-units", &["1"]),
        ("panic", &["\"abort\""]),
        ("strip", &["true", "\"symbols\""]),
        ("opt-level", &["\"z\"", "\"s\""]),
    ];
    let mut found = Vec::new();
    let mut bad = Vec::new();
    for (key, allowed) in want {
        let value = get(key).unwrap_or_else(|| "(unset)".into());
        if !allowed.contains(&value.as_str()) {
            bad.push(format!("{key} should be {}", allowed.join(" or ")));
        }
        found.push(format!("{key}={value}"));
    }
    let mut found = found.join(" ");
    if !bad.is_empty() {
        let _ = write!(found, "; {}", bad.join(", "));
    }
    check(
        "lto-profile",
        bad.is_empty(),
        found,
        "set lto = \"fat\", codegen-units = 1, panic = \"abort\", strip = true, opt-level = \"z\" under [profile.agent]",
    )
}

/// A key of `[profile.<name>]`, following `inherits` (not into cargo's built-in defaults);
/// the loop bound stops an inheritance cycle.
fn profile_value(toml: &str, profile: &str, key: &str) -> Option<String> {
    let mut profile = profile.to_string();
    for _depth in 0..8 {
        let table = format!("[profile.{profile}]");
        let mut inside = false;
        let mut inherits = None;
        for line in toml.lines() {
            let line = line.split(" #").next().unwrap_or("").trim();
            if line.starts_with('[') {
                inside = line == table;
                continue;
            }
            let Some((k, v)) = line.split_once('=').filter(|_| inside) else {
                continue;
            };
            match k.trim() {
                k if k == key => return Some(v.trim().to_string()),
                "inherits" => inherits = Some(v.trim().trim_matches('"').to_string()),
                _ => {}
            }
        }
        profile = inherits?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A C program with a char array on the stack that escapes to `puts`, so that every
    /// stack protector level instruments `fill` even when optimised.
    const PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
int fill(const char *s) { char buf[64]; strcpy(buf, s); puts(buf); return buf[0]; }
int main(int argc, char **argv) { return fill(argc > 1 ? argv[1] : "x"); }
"#;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigo-xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        dir
    }

    fn gcc(dir: &Path, out: &str, flags: &[&str]) -> PathBuf {
        let src = dir.join("prog.c");
        std::fs::write(&src, PROGRAM).expect("temp dir is writable");
        let exe = dir.join(out);
        // PIE unless the case says otherwise, whatever this distribution's gcc defaults to.
        let pie: &[&str] = if flags.iter().any(|f| f.ends_with("-pie") && *f != "-pie") {
            &[]
        } else {
            &["-fPIE", "-pie"]
        };
        let result = std::process::Command::new("gcc")
            .arg("-O1")
            .args(pie)
            .args(flags)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output();
        let output = match result {
            Ok(o) => o,
            Err(e) => panic!(
                "cannot run gcc ({e}): the harden-check tests compile C programs; install gcc (CI does)"
            ),
        };
        assert!(
            output.status.success(),
            "gcc {flags:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        exe
    }

    fn verdicts(checks: &[Check]) -> String {
        let parts: Vec<String> = checks
            .iter()
            .map(|c| format!("{}:{}", c.name, c.status))
            .collect();
        parts.join(" ")
    }

    #[test]
    fn gcc_builds_pass_and_fail_the_right_checks() {
        // (flags, also build an unstripped companion without -s, expected verdicts)
        let cases: &[(&str, bool, &str)] = &[
            (
                "-fstack-protector-all -Wl,-z,relro,-z,now -Wl,-z,noexecstack -s",
                true,
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:PASS stack-protector:PASS",
            ),
            (
                "-fstack-protector-all -Wl,-z,relro,-z,now -s",
                false,
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:PASS stack-protector:SKIP",
            ),
            (
                "-static-pie -fstack-protector-all -Wl,-z,relro,-z,now -s",
                true,
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:PASS stack-protector:PASS",
            ),
            (
                "-no-pie -fstack-protector-all -Wl,-z,relro,-z,now -s",
                true,
                "pie:FAIL full-relro:PASS nx-stack:PASS stripped:PASS stack-protector:PASS",
            ),
            (
                "-z execstack -Wl,-z,relro,-z,now -s",
                false,
                "pie:PASS full-relro:PASS nx-stack:FAIL stripped:PASS stack-protector:SKIP",
            ),
            (
                "-Wl,-z,norelro -s",
                false,
                "pie:PASS full-relro:FAIL nx-stack:PASS stripped:PASS stack-protector:SKIP",
            ),
            (
                "-Wl,-z,relro,-z,lazy -s",
                false,
                "pie:PASS full-relro:FAIL nx-stack:PASS stripped:PASS stack-protector:SKIP",
            ),
            (
                "-fstack-protector-all -Wl,-z,relro,-z,now",
                false,
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:FAIL stack-protector:PASS",
            ),
            (
                "-g -fstack-protector-strong -Wl,-z,relro,-z,now",
                false,
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:FAIL stack-protector:PASS",
            ),
            (
                "-fno-stack-protector -Wl,-z,relro,-z,now -s",
                true,
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:PASS stack-protector:FAIL",
            ),
        ];
        let dir = temp_dir("harden");
        let mut failures = Vec::new();
        for (i, (flags, companion, expected)) in cases.iter().enumerate() {
            let flags: Vec<&str> = flags.split_whitespace().collect();
            let exe = gcc(&dir, &format!("case{i}"), &flags);
            let unstripped: Vec<&str> = flags.iter().copied().filter(|f| *f != "-s").collect();
            let sym_path = companion.then(|| gcc(&dir, &format!("case{i}.sym"), &unstripped));
            let elf = Elf::read(&exe).expect("gcc output is ELF");
            let sym_elf = sym_path
                .as_ref()
                .map(|p| Elf::read(p).expect("gcc output is ELF"));
            let symbols = match (&sym_elf, &sym_path, elf.section(".symtab")) {
                (Some(e), Some(p), _) => Symbols::From(e, p),
                (_, _, Some(_)) => Symbols::From(&elf, &exe),
                _ => Symbols::Missing("no companion".into()),
            };
            let checks = check_binary(&elf, &symbols);
            let got = verdicts(&checks);
            if got != *expected {
                let detail: Vec<String> = checks
                    .iter()
                    .map(|c| format!("    {} {}", c.name, c.found))
                    .collect();
                failures.push(format!(
                    "gcc {flags:?}\n  expected {expected}\n  got      {got}\n{}",
                    detail.join("\n")
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_not_pie_exception_waives_only_what_not_being_pie_explains() {
        let waiver = Waiver {
            platform: "linux-test".into(),
            triple: "test-unknown-linux-gnu".into(),
            reason: "no rcrt1.o".into(),
        };
        // (flags, verdicts after the waiver)
        let cases: &[(&str, &str)] = &[
            (
                "-static -no-pie -fstack-protector-all -Wl,-z,relro,-z,now -Wl,-z,noexecstack -s",
                "pie:WAIVED full-relro:WAIVED nx-stack:PASS stripped:PASS stack-protector:SKIP",
            ),
            (
                "-static -no-pie -Wl,-z,norelro -Wl,-z,noexecstack -s",
                "pie:WAIVED full-relro:FAIL nx-stack:PASS stripped:PASS stack-protector:SKIP",
            ),
            (
                "-static -no-pie -fstack-protector-all -Wl,-z,relro,-z,now -z execstack",
                "pie:WAIVED full-relro:WAIVED nx-stack:FAIL stripped:FAIL stack-protector:PASS",
            ),
            (
                "-static-pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack -s",
                "pie:PASS full-relro:PASS nx-stack:PASS stripped:PASS stack-protector:SKIP",
            ),
        ];
        let dir = temp_dir("waiver");
        let mut failures = Vec::new();
        for (i, (flags, expected)) in cases.iter().enumerate() {
            let flags: Vec<&str> = flags.split_whitespace().collect();
            let exe = gcc(&dir, &format!("case{i}"), &flags);
            let elf = Elf::read(&exe).expect("gcc output is ELF");
            let symbols = match elf.section(".symtab") {
                Some(_) => Symbols::From(&elf, &exe),
                None => Symbols::Missing("no companion".into()),
            };
            let mut checks = check_binary(&elf, &symbols);
            apply_waiver(&mut checks, &elf, &waiver);
            let got = verdicts(&checks);
            if got != *expected {
                failures.push(format!(
                    "gcc {flags:?}\n  expected {expected}\n  got      {got}"
                ));
            }
            for c in checks.iter().filter(|c| c.status == Status::Waived) {
                assert!(
                    c.found
                        .contains("not_pie exception for test-unknown-linux-gnu")
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_triple_comes_from_the_dist_manifest_or_the_size_layout() {
        let dist = temp_dir("triple");
        std::fs::write(
            dist.join("manifest.json"),
            r#"{"targets": [{"platform": "linux-armv7", "triple": "armv7-unknown-linux-gnueabihf", "built": true}]}"#,
        )
        .expect("writable");
        let got = [
            triple_of(&dist.join("agent/linux-armv7/vigo-agent")),
            triple_of(&dist.join("agent/linux-aarch64/vigo-agent")),
            triple_of(Path::new(
                "target/static/aarch64-unknown-linux-musl/agent/vigo-agent",
            )),
            triple_of(Path::new("/usr/bin/true")),
        ];
        let _ = std::fs::remove_dir_all(&dist);
        let pair = |p: &str, t: &str| Some((p.to_string(), t.to_string()));
        assert_eq!(
            got,
            [
                pair("linux-armv7", "armv7-unknown-linux-gnueabihf"),
                None,
                pair("", "aarch64-unknown-linux-musl"),
                None,
            ]
        );
    }

    #[test]
    fn profile_check_reads_the_agent_profile() {
        let good = "[profile.agent]\ninherits = \"release\"\nopt-level = \"z\"\nlto = \"fat\"\ncodegen-units = 1\npanic = \"abort\"\nstrip = true\n";
        let cases: &[(String, Status, &str)] = &[
            (
                good.into(),
                Status::Pass,
                "lto=\"fat\" codegen-units=1 panic=\"abort\" strip=true opt-level=\"z\"",
            ),
            (
                good.replace("\"fat\"", "\"thin\""),
                Status::Fail,
                "lto should be \"fat\" or true",
            ),
            (
                good.replace("codegen-units = 1\n", ""),
                Status::Fail,
                "codegen-units=(unset)",
            ),
            (
                format!(
                    "{}\n[profile.release]\ncodegen-units = 1 # one unit\n",
                    good.replace("codegen-units = 1\n", "")
                ),
                Status::Pass,
                "codegen-units=1 ",
            ),
            (
                good.replace("\"z\"", "3"),
                Status::Fail,
                "opt-level should be \"z\" or \"s\"",
            ),
            (
                good.replace("[profile.agent]", "[profile.other]"),
                Status::Fail,
                "lto=(unset)",
            ),
            (
                "[profile.agent]\ninherits = \"x\"\n[profile.x]\ninherits = \"agent\"\n".into(),
                Status::Fail,
                "strip=(unset)",
            ),
        ];
        for (toml, status, want) in cases {
            let c = profile_check(toml);
            assert_eq!(c.status, *status, "{toml}\n{}", c.found);
            assert!(c.found.contains(want), "expected {want:?} in {:?}", c.found);
        }
    }

    #[test]
    fn companions_follow_the_dist_and_size_layouts() {
        let cases = [
            (
                "target/dist/agent/linux-x86_64/vigo-agent",
                Some("target/dist/symbols/linux-x86_64/vigo-agent"),
            ),
            (
                "target/static/x86_64-unknown-linux-musl/agent/vigo-agent",
                Some("target/static-symbols/x86_64-unknown-linux-musl/agent/vigo-agent"),
            ),
            ("target/dist/server/linux-x86_64/vigo-server", None),
            ("/usr/bin/true", None),
        ];
        for (binary, want) in cases {
            assert_eq!(
                companion_for(Path::new(binary)),
                want.map(PathBuf::from),
                "{binary}"
            );
        }
    }

    #[test]
    fn discovery_skips_non_elf_and_signatures_and_needs_a_dist() {
        let dist = temp_dir("dist");
        let err = discover(&dist).expect_err("empty dist");
        assert!(
            format!("{err:#}").contains("run cargo xtask dist first"),
            "{err:#}"
        );

        let put = |rel: &str, bytes: &[u8]| {
            let p = dist.join(rel);
            std::fs::create_dir_all(p.parent().expect("has a parent")).expect("writable");
            std::fs::write(p, bytes).expect("writable");
        };
        put("agent/windows-x86_64/vigo-agent.exe", b"MZ\x90\0");
        put("agent/linux-x86_64/vigo-agent", b"\x7fELF\x02\x01");
        put("agent/linux-x86_64/vigo-agent.sig", b"\x7fELF-not-really");
        put("server/linux-x86_64/vigo-server", b"\x7fELF\x02\x01");
        put("server/linux-x86_64/vigocli", b"\x7fELF\x02\x01");
        let (targets, notes) = discover(&dist).expect("binaries present");
        let rel = |p: &Path| {
            p.strip_prefix(&dist)
                .expect("under dist")
                .display()
                .to_string()
        };
        let got: Vec<(String, Option<String>)> = targets
            .iter()
            .map(|t| (rel(&t.binary), t.companion.as_deref().map(rel)))
            .collect();
        let _ = std::fs::remove_dir_all(&dist);
        assert_eq!(
            got,
            [
                (
                    "agent/linux-x86_64/vigo-agent".into(),
                    Some("symbols/linux-x86_64/vigo-agent".into())
                ),
                ("server/linux-x86_64/vigo-server".into(), None),
                ("server/linux-x86_64/vigocli".into(), None),
            ]
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].ends_with("vigo-agent.exe is not an ELF file; skipped"),
            "{notes:?}"
        );
    }
}
