//! The linker `cargo xtask dist` gives rustc for static Linux agents whose Rust target does
//! not link static-pie by itself (aarch64-unknown-linux-musl as of Rust 1.95: its target spec
//! lacks `static-position-independent-executables`). rustc then links with `-static -no-pie`
//! and musl's crt1.o, crtbegin.o and crtend.o: the result is ET_EXEC, and adding
//! `-static-pie` alone yields an ET_DYN whose crt1.o never applies its own relocations, so it
//! crashes at start. This rewrites the command into the one rustc itself uses for
//! x86_64-unknown-linux-musl — `-static-pie` with rcrt1.o (musl's self-relocating start-up),
//! crtbeginS.o and crtendS.o — and runs the real compiler driver named in
//! [`REAL_LINKER_VAR`]. A command that is already static-pie passes through unchanged.
//!
//! It is this xtask binary itself: dist sets it as the target's linker together with
//! [`REAL_LINKER_VAR`], and `main` hands over to [`run_if_linker`] before anything else.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

/// Set to the real C compiler driver when xtask is started as the linker.
pub const REAL_LINKER_VAR: &str = "VIGO_STATIC_PIE_LINK_CC";

/// The static-pie form of a `-static -no-pie` link command line.
pub fn rewrite(args: &[OsString]) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let Some(text) = arg.to_str() else {
            out.push(arg.clone());
            continue;
        };
        if text.starts_with('@') {
            return Err(format!(
                "response files ({text}) are not supported: the link line cannot be rewritten"
            ));
        }
        let replaced = match text {
            "-static" => "-static-pie".to_string(),
            "-no-pie" => continue,
            _ => [
                ("/self-contained/crt1.o", "/self-contained/rcrt1.o"),
                ("/self-contained/crtbegin.o", "/self-contained/crtbeginS.o"),
                ("/self-contained/crtend.o", "/self-contained/crtendS.o"),
            ]
            .iter()
            .find_map(|(from, to)| {
                text.strip_suffix(from)
                    .map(|prefix| format!("{prefix}{to}"))
            })
            .unwrap_or_else(|| text.to_string()),
        };
        out.push(replaced.into());
    }
    Ok(out)
}

/// When started as the linker (the variable is set), links and returns the exit code.
pub fn run_if_linker() -> Option<ExitCode> {
    let real = std::env::var_os(REAL_LINKER_VAR)?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match rewrite(&args) {
        Err(e) => {
            eprintln!("xtask static-pie link: {e}");
            ExitCode::from(2)
        }
        Ok(args) => match Command::new(&real).args(&args).status() {
            Ok(status) if status.success() => ExitCode::SUCCESS,
            Ok(status) => {
                ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1).max(1))
            }
            Err(e) => {
                eprintln!(
                    "xtask static-pie link: running {}: {e}",
                    real.to_string_lossy()
                );
                ExitCode::from(2)
            }
        },
    };
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn static_links_become_static_pie() {
        let sc = "/rs/lib/rustlib/aarch64-unknown-linux-musl/lib/self-contained";
        let cases = [
            (
                format!(
                    "{sc}/crt1.o {sc}/crti.o {sc}/crtbegin.o main.o -lc -static -no-pie -Wl,-z,relro,-z,now {sc}/crtend.o {sc}/crtn.o"
                ),
                format!(
                    "{sc}/rcrt1.o {sc}/crti.o {sc}/crtbeginS.o main.o -lc -static-pie -Wl,-z,relro,-z,now {sc}/crtendS.o {sc}/crtn.o"
                ),
            ),
            (
                format!("{sc}/rcrt1.o {sc}/crtbeginS.o main.o -static-pie {sc}/crtendS.o"),
                format!("{sc}/rcrt1.o {sc}/crtbeginS.o main.o -static-pie {sc}/crtendS.o"),
            ),
            // A crt1.o outside rustc's self-contained folder is not musl's: left alone.
            (
                "/usr/lib/crt1.o main.o".to_string(),
                "/usr/lib/crt1.o main.o".to_string(),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(rewrite(&line(&args)).unwrap(), line(&want), "{args}");
        }
        let err = rewrite(&line("main.o @linker-args")).unwrap_err();
        assert!(err.contains("response files"), "{err}");
    }
}
