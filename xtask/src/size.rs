//! `cargo xtask size [--target TRIPLE] [--check] [--note TEXT]`: builds the static agent the
//! way the dist does, reports its size, sections, largest crates and functions and a peak
//! RSS, records them under `size-report/`, and fails when it exceeds `size-report/budget`.
//!
//! The build recipe is the dist's (`dist::AgentBuild::command`), so what is measured is what
//! ships; only the target folders differ. With `--check` nothing is written (for CI).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::dist::{self, AgentBuild};
use crate::elf::{self, Elf};
use crate::{root, targets};

/// The agent build to measure: the dist's own recipe for this machine's platform, or the
/// matrix row of `--target TRIPLE` (its triple or its fallback).
fn agent_build(requested: Option<&str>) -> Result<AgentBuild> {
    let Some(triple) = requested else {
        return dist::host_static_agent();
    };
    let rows = targets::load(&root())?;
    let row = rows
        .iter()
        .find(|t| t.triple == triple || t.fallback.as_deref() == Some(triple))
        .with_context(|| format!("{triple} is not in cross-targets/targets.toml"))?;
    if let Some(why) = targets::why_not(row, triple) {
        bail!("cannot build the agent for {triple}: {why}");
    }
    Ok(AgentBuild {
        target: row.clone(),
        triple: triple.to_string(),
    })
}

/// Where the measured builds go: their own target folders, so that the hardening
/// RUSTFLAGS do not invalidate the normal dev build cache; `strip = false` is the
/// unstripped companion of the same build.
pub fn static_target_dir(strip: bool) -> PathBuf {
    root().join(if strip {
        "target/static"
    } else {
        "target/static-symbols"
    })
}

struct Options {
    target: Option<String>,
    check: bool,
    note: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        target: None,
        check: false,
        note: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => o.check = true,
            "--target" => o.target = Some(it.next().context("--target needs a triple")?.clone()),
            "--note" => o.note = Some(it.next().context("--note needs a text")?.clone()),
            other => bail!(
                "unknown argument {other}; usage: cargo xtask size [--target TRIPLE] [--check] [--note TEXT]"
            ),
        }
    }
    Ok(o)
}

/// One measurement of the static agent.
struct Measurement {
    build: AgentBuild,
    budget: u64,
    bytes: u64,
    /// `name size` of the stripped binary's sections, largest first.
    sections: String,
    owners: Ranked,
    functions: Ranked,
    /// How the symbols were read, for the report's header.
    how: &'static str,
    /// The unstripped companion the symbols came from.
    symbols: PathBuf,
    /// Peak RSS of `vigo-agent facts` in KiB, or why it was not measured.
    rss: Result<u64>,
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    let m = measure(agent_build(opts.target.as_deref())?)?;
    let libc = m.build.libc();
    println!(
        "{} ({libc}): {} bytes, budget {}",
        m.build.output(&static_target_dir(true)).display(),
        m.bytes,
        m.budget
    );
    println!("sections: {}", m.sections);
    match &m.rss {
        Ok(kib) => println!("peak RSS of `vigo-agent facts`: {kib} KiB"),
        Err(e) => println!("peak RSS of `vigo-agent facts`: not measured ({e:#})"),
    }
    for (size, owner) in m.owners.iter().take(10) {
        println!("  {size:>9}  {owner}");
    }
    if !opts.check {
        write_reports(&m, opts.note)?;
        println!("appended to size-report/history.tsv and wrote size-report/top-contributors.txt");
    }
    within_budget(libc, m.bytes, m.budget)
}

fn within_budget(libc: &str, bytes: u64, budget: u64) -> Result<()> {
    if bytes > budget {
        bail!(
            "the static {libc} agent is {bytes} bytes, over its budget of {budget} (size-report/budget) by {}; see size-report/top-contributors.txt for what grew",
            bytes - budget
        );
    }
    Ok(())
}

/// Builds the stripped agent and its unstripped companion, and measures them.
fn measure(build: AgentBuild) -> Result<Measurement> {
    let libc = build.libc();
    let budgets = std::fs::read_to_string(root().join("size-report/budget"))
        .context("reading size-report/budget")?;
    let budget = parse_budget(&budgets)?
        .get(libc)
        .copied()
        .with_context(|| format!("size-report/budget has no line for {libc}"))?;
    for strip in [true, false] {
        let mut cmd = build.command(&static_target_dir(strip), strip);
        println!("building: {}", describe(&cmd));
        let status = cmd.status().context("running cargo build")?;
        if !status.success() {
            bail!("the agent build for {} failed", build.triple);
        }
    }
    let binary = build.output(&static_target_dir(true));
    let symbols = build.output(&static_target_dir(false));
    let bytes = std::fs::metadata(&binary)
        .with_context(|| format!("reading {}", binary.display()))?
        .len();
    let sections = section_sizes(&Elf::read(&binary)?)
        .iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join("  ");
    let (owners, functions, how) = text_symbols(&symbols)?;
    let rss = peak_rss(&binary, &build.triple);
    Ok(Measurement {
        build,
        budget,
        bytes,
        sections,
        owners,
        functions,
        how,
        symbols,
        rss,
    })
}

/// Appends the row to `history.tsv` and rewrites `top-contributors.txt`.
fn write_reports(m: &Measurement, note: Option<String>) -> Result<()> {
    let root = root();
    let libc = m.build.libc();
    let date = command_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(|| "unknown".into());
    let commit = crate::bench::commit();
    let note = note.unwrap_or_else(|| {
        format!(
            "cargo xtask size (the dist's build): {libc}, RUSTFLAGS \"{}\", C with -fstack-protector-strong",
            m.build.rustflags()
        )
    });
    let rss = m
        .rss
        .as_ref()
        .map_or_else(|_| "-".to_string(), u64::to_string);
    let row = [
        date.as_str(),
        &commit,
        "agent",
        &m.build.triple,
        &m.bytes.to_string(),
        &note,
        libc,
        &m.budget.to_string(),
        &rss,
    ]
    .join("\t");
    let history = root.join("size-report/history.tsv");
    let existing = std::fs::read_to_string(&history).unwrap_or_default();
    std::fs::write(&history, append_history(&existing, &row)?)
        .context("writing size-report/history.tsv")?;
    let header = format!(
        "# vigo-agent, profile agent (opt-level z, fat LTO, codegen-units 1, panic=abort), {libc} ({}),\n\
         # {date}, commit {commit}: {} bytes stripped (budget {}); peak RSS of `vigo-agent facts` {rss} KiB.\n\
         # Produced by `cargo xtask size`: {} on the unstripped build of the same profile\n\
         # ({}), text symbols summed by the first crate path of the demangled name;\n\
         # vigo_agent by module; ring's C and assembly (`ring_core_*`) apart from its Rust;\n\
         # symbols without a path under \"libc, asm, other\". Generic code counts under the\n\
         # first crate its name mentions, so `core` includes code monomorphized for the agent.\n\
         # Sections of the stripped binary: {}\n",
        m.build.triple,
        m.bytes,
        m.budget,
        m.how,
        m.symbols
            .strip_prefix(&root)
            .unwrap_or(&m.symbols)
            .display(),
        m.sections,
    );
    std::fs::write(
        root.join("size-report/top-contributors.txt"),
        contributors(&header, &m.owners, &m.functions),
    )
    .context("writing size-report/top-contributors.txt")
}

fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            let _ = write!(s, "{}={:?} ", k.to_string_lossy(), v.to_string_lossy());
        }
    }
    let _ = write!(s, "cargo");
    for a in cmd.get_args() {
        let _ = write!(s, " {}", a.to_string_lossy());
    }
    s
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    crate::stdout_of(Command::new(program).args(args))
}

/// `libc bytes` lines; `#` starts a comment.
fn parse_budget(text: &str) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(libc), Some(bytes), None) = (words.next(), words.next(), words.next()) else {
            bail!(
                "size-report/budget line {}: expected `<libc> <bytes>`, got {line:?}",
                i + 1
            );
        };
        let bytes = bytes.parse().with_context(|| {
            format!(
                "size-report/budget line {}: {bytes:?} is not a number of bytes",
                i + 1
            )
        })?;
        out.insert(libc.to_string(), bytes);
    }
    Ok(out)
}

const OLD_HEADER: &str = "date\tcommit\tprofile\ttarget\tbytes\tnote";
const HEADER: &str = "date\tcommit\tprofile\ttarget\tbytes\tnote\tlibc\tbudget\tfacts_peak_rss_kib";

/// Appends a row, widening the original six-column header in place; old rows keep their
/// six columns (the new ones are empty for them).
fn append_history(existing: &str, row: &str) -> Result<String> {
    let (first, rest) = existing.split_once('\n').unwrap_or((existing, ""));
    let mut out = match first {
        "" => format!("{HEADER}\n"),
        OLD_HEADER | HEADER => format!("{HEADER}\n{rest}"),
        other => bail!("size-report/history.tsv starts with an unknown header {other:?}"),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(row);
    out.push('\n');
    Ok(out)
}

/// Sizes of the sections that occupy the file, largest first.
fn section_sizes(elf: &Elf) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = elf
        .sections
        .iter()
        .filter(|s| s.kind != elf::SHT_NOBITS && s.size > 0 && !s.name.is_empty())
        .map(|s| (s.name.clone(), s.size))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

type Ranked = Vec<(u64, String)>;

/// Text symbols of the unstripped build: totals by owner and the 25 largest functions, with
/// how they were read (`nm -C` when present, else this crate's ELF reader).
fn text_symbols(path: &Path) -> Result<(Ranked, Ranked, &'static str)> {
    let nm = Command::new("nm")
        .args(["-C", "--size-sort", "-S"])
        .arg(path)
        .output();
    let (symbols, how): (Vec<(u64, String)>, _) = match nm {
        Ok(out) if out.status.success() => (
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(parse_nm_line)
                .collect(),
            "`nm -C --size-sort -S`",
        ),
        _ => {
            let elf = Elf::read(path)?;
            let syms = elf
                .symbols
                .iter()
                .filter(|s| s.kind == elf::STT_FUNC && s.defined && !s.dynamic && s.size > 0)
                .map(|s| (s.size, s.name.clone()))
                .collect();
            (syms, "the xtask ELF reader (no nm; names left mangled)")
        }
    };
    let mut owners: BTreeMap<String, u64> = BTreeMap::new();
    for (size, name) in &symbols {
        *owners.entry(owner(name)).or_default() += size;
    }
    let mut owners: Ranked = owners.into_iter().map(|(o, s)| (s, o)).collect();
    owners.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut functions = symbols;
    functions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    functions.truncate(25);
    Ok((owners, functions, how))
}

/// `address size type name` lines of text symbols (t, T, w, W).
fn parse_nm_line(line: &str) -> Option<(u64, String)> {
    let mut parts = line.splitn(4, ' ');
    let (_addr, size, kind, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if !matches!(kind, "t" | "T" | "w" | "W") {
        return None;
    }
    Some((u64::from_str_radix(size, 16).ok()?, name.to_string()))
}

/// Who owns a symbol: the first crate path in its (demangled or legacy-mangled) name.
fn owner(name: &str) -> String {
    if name.starts_with("ring_core_") {
        return "ring (C and asm)".into();
    }
    let path: Vec<&str> = match name.strip_prefix("_ZN") {
        Some(mangled) => legacy_path(mangled),
        None => name
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .find(|t| t.contains("::") && !t.starts_with(':'))
            .map(|t| t.split("::").collect())
            .unwrap_or_default(),
    };
    match path.as_slice() {
        [] | [_] => "libc, asm, other".into(),
        ["vigo_agent", "providers", m, _, ..] => format!("vigo_agent::providers::{m}"),
        ["vigo_agent", m, _, ..] => format!("vigo_agent::{m}"),
        [krate, ..] => (*krate).to_string(),
    }
}

/// The identifiers of a legacy `_ZN<len><ident>...E` name (without the prefix).
fn legacy_path(mut s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    loop {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(len) = s[..digits].parse::<usize>() else {
            return out;
        };
        let Some(ident) = s.get(digits..digits + len) else {
            return out;
        };
        out.push(ident);
        s = &s[digits + len..];
    }
}

fn contributors(header: &str, owners: &Ranked, functions: &Ranked) -> String {
    let mut s = header.to_string();
    s.push_str("bytes\towner\n");
    for (size, owner) in owners {
        let _ = writeln!(s, "{size}\t{owner}");
    }
    s.push_str("\n# The 25 largest functions.\nbytes\tfunction\n");
    for (size, name) in functions {
        let _ = writeln!(s, "{size}\t{name}");
    }
    s
}

/// Peak RSS in KiB of `vigo-agent facts`: the agent's `run` exits at once on a state dir
/// that is not enrolled, so its idle RSS cannot be measured without a server; `facts` is
/// the closest honest figure, and it is labelled as what it is.
fn peak_rss(binary: &Path, triple: &str) -> Result<u64> {
    if !triple.starts_with(std::env::consts::ARCH) || !triple.contains("linux") {
        bail!("{triple} binaries do not run on this host");
    }
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        bail!("/usr/bin/time is not installed (apt-get install time)");
    }
    let out = Command::new(time)
        .args(["-f", "%M"])
        .arg(binary)
        .arg("facts")
        .stdout(Stdio::null())
        .output()
        .context("running /usr/bin/time vigo-agent facts")?;
    if !out.status.success() {
        bail!(
            "vigo-agent facts failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("").trim();
    last.parse()
        .with_context(|| format!("reading the max RSS from /usr/bin/time output {last:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_enforced() {
        let cases = [
            (2_097_152, "ok"),
            (1_975_096, "ok"),
            (
                2_097_153,
                "the static musl agent is 2097153 bytes, over its budget of 2097152 (size-report/budget) by 1;",
            ),
        ];
        for (bytes, want) in cases {
            let got = match within_budget("musl", bytes, 2_097_152) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                got.starts_with(want),
                "{bytes}: expected {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn budget_lines() {
        let cases: &[(&str, &str)] = &[
            (
                "# comment\nmusl 2097152\nglibc 3145728  # static-pie\n",
                "Ok({\"glibc\": 3145728, \"musl\": 2097152})",
            ),
            ("", "Ok({})"),
            ("musl two", "line 1: \"two\" is not a number of bytes"),
            ("\nmusl", "line 2: expected `<libc> <bytes>`, got \"musl\""),
            ("musl 1 2", "expected `<libc> <bytes>`"),
        ];
        for (input, want) in cases {
            let got = match parse_budget(input) {
                Ok(m) => format!("Ok({m:?})"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                got.contains(want),
                "{input:?}: expected {want:?} in {got:?}"
            );
        }
    }

    #[test]
    fn owners_of_symbol_names() {
        let cases = [
            ("rustls::client::hs::emit_client_hello_for_retry", "rustls"),
            (
                "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop",
                "alloc",
            ),
            ("<&T as core::fmt::Debug>::fmt", "core"),
            ("core::ptr::drop_in_place<vigo_agent::engine::Plan>", "core"),
            (
                "vigo_agent::providers::user::linux::plan",
                "vigo_agent::providers::user",
            ),
            ("vigo_agent::engine::apply", "vigo_agent::engine"),
            ("vigo_agent::main", "vigo_agent"),
            ("ring_core_0_17_14_bn_mul_mont", "ring (C and asm)"),
            ("memcpy", "libc, asm, other"),
            ("_ZN6rustls6client2hs4emit17h0123456789abcdefE", "rustls"),
            (
                "_ZN10vigo_agent9providers4user4plan17h0123456789abcdefE",
                "vigo_agent::providers::user",
            ),
            ("_ZN99broken", "libc, asm, other"),
        ];
        for (name, want) in cases {
            assert_eq!(owner(name), want, "{name}");
        }
    }

    #[test]
    fn nm_lines() {
        let cases = [
            (
                "0000000000401000 00000000000000a0 T main",
                Some((160, "main")),
            ),
            (
                "0000000000401000 0000000000000010 t <&T as core::fmt::Debug>::fmt",
                Some((16, "<&T as core::fmt::Debug>::fmt")),
            ),
            ("0000000000601000 0000000000000008 D some_data", None),
            ("garbage", None),
            ("0 zz T bad_size", None),
        ];
        for (line, want) in cases {
            let got = parse_nm_line(line);
            assert_eq!(got.as_ref().map(|(s, n)| (*s, n.as_str())), want, "{line}");
        }
    }

    #[test]
    fn history_keeps_rows_and_widens_the_header() {
        let old = format!("{OLD_HEADER}\n2026-11-29\tabc\tagent\tx\t1\told row\n");
        let cases: &[(&str, &str)] = &[
            (&old, "HEADER\n2026-11-29\tabc\tagent\tx\t1\told row\nROW\n"),
            ("", "HEADER\nROW\n"),
            ("HEADER\nr1", "HEADER\nr1\nROW\n"),
            ("something else\n", "unknown header"),
        ];
        for (existing, want) in cases {
            let existing = existing.replace("HEADER", HEADER);
            let got = match append_history(&existing, "ROW") {
                Ok(s) => s.replace(HEADER, "HEADER"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                got.contains(want),
                "{existing:?}: expected {want:?} in {got:?}"
            );
        }
    }
}
