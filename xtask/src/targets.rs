//! The OS/arch matrix in `cross-targets/targets.toml`, and what this machine can build of it.
//!
//! The file uses a small subset of TOML (`[[target]]` tables whose keys are strings or
//! booleans, `#` comments); anything else is an error naming the line, so a typo cannot
//! silently drop a target from the release.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One row of the matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Target {
    /// `<os>-<arch>`: the dist directory and what bootstrap.sh asks for.
    pub platform: String,
    /// The Rust target triple.
    pub triple: String,
    /// A triple to use when `triple` cannot be built here.
    pub fallback: Option<String>,
    /// C compiler for ring (CC_<triple>).
    pub cc: Option<String>,
    /// Linker (CARGO_TARGET_<TRIPLE>_LINKER).
    pub linker: Option<String>,
    /// Linked statically.
    pub is_static: bool,
    /// The binary is ELF.
    pub elf: bool,
    /// Init systems driven there.
    pub init: String,
    /// Package tools driven there.
    pub packages: String,
    /// Notes for operators.
    pub notes: String,
    /// Link through the C compiler driver with the `rust-lld` that ships with rustc
    /// (`-fuse-ld=lld`), for rows whose GNU ld cannot pack relative relocations.
    pub rust_lld: bool,
    /// A triple of this row (usually its fallback) that cannot be linked as a static PIE
    /// with the toolchains the release is built with; it is linked static, not PIE.
    pub not_pie: Option<String>,
    /// Why `not_pie` cannot be PIE: printed by `dist` and by `harden-check`, which reports
    /// the `pie` and `full-relro` checks of that build as WAIVED with this reason.
    pub not_pie_reason: String,
}

impl Target {
    /// The reason `triple`, built for this row, is linked static but not PIE, if it is.
    pub fn not_pie_reason(&self, triple: &str) -> Option<&str> {
        (self.not_pie.as_deref() == Some(triple)).then_some(self.not_pie_reason.as_str())
    }
}

/// Reads `cross-targets/targets.toml`.
pub fn load(root: &Path) -> Result<Vec<Target>> {
    let path = root.join("cross-targets/targets.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

/// Parses the matrix.
pub fn parse(text: &str) -> Result<Vec<Target>> {
    let mut targets: Vec<Target> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[target]]" {
            targets.push(Target::default());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {line_no}: expected `[[target]]` or `key = value`, found {line:?}");
        };
        let Some(target) = targets.last_mut() else {
            bail!(
                "line {line_no}: {:?} appears before the first [[target]]",
                key.trim()
            );
        };
        let key = key.trim();
        let value = Value::parse(value.trim())
            .with_context(|| format!("line {line_no}: the value of {key:?}"))?;
        match (key, value) {
            ("platform", Value::Str(s)) => target.platform = s,
            ("triple", Value::Str(s)) => target.triple = s,
            ("fallback", Value::Str(s)) => target.fallback = Some(s),
            ("cc", Value::Str(s)) => target.cc = Some(s),
            ("linker", Value::Str(s)) => target.linker = Some(s),
            ("static", Value::Bool(b)) => target.is_static = b,
            ("elf", Value::Bool(b)) => target.elf = b,
            ("init", Value::Str(s)) => target.init = s,
            ("packages", Value::Str(s)) => target.packages = s,
            ("notes", Value::Str(s)) => target.notes = s,
            ("rust_lld", Value::Bool(b)) => target.rust_lld = b,
            ("not_pie", Value::Str(s)) => target.not_pie = Some(s),
            ("not_pie_reason", Value::Str(s)) => target.not_pie_reason = s,
            (key, value) => bail!("line {line_no}: unknown key {key:?} or wrong type ({value:?})"),
        }
    }
    for (i, t) in targets.iter().enumerate() {
        if t.platform.is_empty() || t.triple.is_empty() {
            bail!("target #{}: platform and triple are required", i + 1);
        }
        let valid = t.platform.split_once('-').is_some_and(|(os, arch)| {
            !os.is_empty()
                && !arch.is_empty()
                && t.platform
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        });
        if !valid {
            bail!(
                "target #{}: platform {:?} must be <os>-<arch> in lower case",
                i + 1,
                t.platform
            );
        }
        if let Some(triple) = &t.not_pie {
            if triple != &t.triple && t.fallback.as_ref() != Some(triple) {
                bail!(
                    "target #{}: not_pie {triple:?} is neither the row's triple nor its fallback",
                    i + 1
                );
            }
            if t.not_pie_reason.is_empty() {
                bail!(
                    "target #{}: not_pie needs a not_pie_reason saying why (harden-check prints it)",
                    i + 1
                );
            }
        }
        if targets[..i].iter().any(|o| o.platform == t.platform) {
            bail!("target #{}: platform {:?} appears twice", i + 1, t.platform);
        }
    }
    Ok(targets)
}

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
}

impl Value {
    fn parse(text: &str) -> Result<Value> {
        match text {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
            bail!("expected a \"string\", true or false, found {text:?}");
        };
        if inner.contains('"') || inner.contains('\\') {
            bail!("quotes and backslashes are not supported inside strings");
        }
        Ok(Value::Str(inner.to_string()))
    }
}

/// Whether the Rust standard library for `triple` is installed in the active toolchain.
pub fn std_installed(triple: &str) -> bool {
    sysroot().is_some_and(|root| root.join("lib/rustlib").join(triple).join("lib").is_dir())
}

/// The active toolchain's sysroot (`rustc --print sysroot`, asked once).
pub fn sysroot() -> Option<PathBuf> {
    static SYSROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            crate::stdout_of(Command::new("rustc").args(["--print", "sysroot"])).map(PathBuf::from)
        })
        .clone()
}

/// Whether building for `triple` needs the row's C compiler and linker: always, except for
/// this machine's own triple (a static-glibc fallback is built with the host's own tools).
pub fn needs_own_tools(triple: &str) -> bool {
    host_triple().is_none_or(|host| host != triple)
}

/// The triple of the machine running xtask (`rustc -vV`, asked once).
pub fn host_triple() -> Option<String> {
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let out = Command::new("rustc").arg("-vV").output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
    })
    .clone()
}

/// Whether `program` is an executable on PATH (or a path that exists).
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file()
        })
    })
}

/// Why `triple` (with `target`'s tools) cannot be built here, or `None` when it can.
pub fn why_not(target: &Target, triple: &str) -> Option<String> {
    if !std_installed(triple) {
        return Some(format!(
            "the standard library for {triple} is not installed (rustup target add {triple})"
        ));
    }
    for tool in [&target.cc, &target.linker].into_iter().flatten() {
        if needs_own_tools(triple) && !on_path(tool) {
            return Some(format!(
                "{tool} (C compiler/linker for {triple}) is not on PATH"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_matrix_parses_and_covers_the_seven_families() {
        let targets = load(&crate::root()).expect("cross-targets/targets.toml parses");
        for family in [
            "linux", "darwin", "freebsd", "openbsd", "netbsd", "illumos", "windows",
        ] {
            assert!(
                targets
                    .iter()
                    .any(|t| t.platform.starts_with(&format!("{family}-"))),
                "no target for {family}"
            );
        }
        for platform in ["linux-x86_64", "linux-aarch64", "linux-armv7"] {
            assert!(targets.iter().any(|t| t.platform == platform), "{platform}");
        }
        assert!(
            targets
                .iter()
                .all(|t| !t.init.is_empty() && !t.packages.is_empty())
        );
    }

    #[test]
    fn a_not_pie_exception_names_one_triple_of_its_row() {
        let text = "[[target]]\nplatform = \"linux-armv7\"\ntriple = \"armv7-unknown-linux-musleabihf\"\nfallback = \"armv7-unknown-linux-gnueabihf\"\nrust_lld = true\nnot_pie = \"armv7-unknown-linux-gnueabihf\"\nnot_pie_reason = \"no rcrt1.o\"\n";
        let rows = parse(text).expect("valid");
        let row = &rows[0];
        assert!(row.rust_lld);
        assert_eq!(
            row.not_pie_reason("armv7-unknown-linux-gnueabihf"),
            Some("no rcrt1.o")
        );
        assert_eq!(row.not_pie_reason("armv7-unknown-linux-musleabihf"), None);
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let cases = [
            (
                "platform = \"x-y\"\n",
                "line 1: \"platform\" appears before",
            ),
            (
                "[[target]]\nplatfrom = \"a-b\"\n",
                "line 2: unknown key \"platfrom\"",
            ),
            (
                "[[target]]\nstatic = \"yes\"\n",
                "line 2: unknown key \"static\"",
            ),
            (
                "[[target]]\nplatform = a-b\n",
                "line 2: the value of \"platform\"",
            ),
            ("[[target]]\n[target]\n", "line 2: expected"),
            (
                "[[target]]\ntriple = \"t\"\n",
                "platform and triple are required",
            ),
            (
                "[[target]]\nplatform = \"Linux\"\ntriple = \"t\"\n",
                "must be <os>-<arch>",
            ),
            (
                "[[target]]\nplatform = \"a-b\"\ntriple = \"t\"\n[[target]]\nplatform = \"a-b\"\ntriple = \"u\"\n",
                "appears twice",
            ),
            (
                "[[target]]\nplatform = \"a-b\"\ntriple = \"t\"\nnot_pie = \"u\"\nnot_pie_reason = \"r\"\n",
                "neither the row's triple nor its fallback",
            ),
            (
                "[[target]]\nplatform = \"a-b\"\ntriple = \"t\"\nnot_pie = \"t\"\n",
                "needs a not_pie_reason",
            ),
            (
                "[[target]]\nrust_lld = \"yes\"\n",
                "line 2: unknown key \"rust_lld\"",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", parse(text).expect_err(text));
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
