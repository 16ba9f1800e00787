//! Secret references (`secret:PATH`) and the providers that resolve them.
//!
//! A secret value lives only in memory, inside [`Secret`], whose `Debug` prints the
//! reference and never the value and which has no `Display`. Config files, traces, errors
//! and logs carry the reference only.

use std::fmt;
use std::path::{Path, PathBuf};

/// The prefix that makes a whole scalar value a secret reference.
pub const PREFIX: &str = "secret:";

/// A validated reference: the `PATH` of `secret:PATH`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef(String);

impl SecretRef {
    /// Parses the text after `secret:`. A path is one or more `/`-separated segments of
    /// letters, digits, `.`, `_` and `-`, none of them `.` or `..`.
    pub fn parse(path: &str) -> Result<SecretRef, String> {
        if path.is_empty() {
            return Err(
                "empty secret reference: write secret:PATH, e.g. secret:vigo/db/password".into(),
            );
        }
        for seg in path.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(format!(
                    "malformed secret reference `{PREFIX}{path}`: segments must be non-empty and not `.` or `..`"
                ));
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
            {
                return Err(format!(
                    "malformed secret reference `{PREFIX}{path}`: character {c:?} is not allowed (letters, digits, `.`, `_`, `-`, `/`)"
                ));
            }
        }
        Ok(SecretRef(path.to_string()))
    }

    /// The path part.
    pub fn path(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.0)
    }
}

/// A resolved secret value. No `Display`; `Debug` shows only the reference.
#[derive(Clone)]
pub struct Secret {
    reference: SecretRef,
    value: String,
}

impl Secret {
    /// The reference it was resolved from.
    pub fn reference(&self) -> &SecretRef {
        &self.reference
    }

    /// The value, for the few places that must use it (hashing a password, rendering a
    /// file's content into a bundle attribute marked sensitive).
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.reference)
    }
}

/// Resolves secret references. Implementations must not put the value into their errors.
pub trait SecretProvider: Send + Sync {
    /// Looks `reference` up.
    fn resolve(&self, reference: &SecretRef) -> Result<Secret, String>;
}

/// The default provider: the secret `a/b/c` is the file `a/b/c` under a secrets directory
/// that lies outside the config directory. One trailing newline is dropped, so that
/// `echo pw > file` works as expected.
#[derive(Clone, Debug)]
pub struct FileProvider {
    dir: PathBuf,
}

impl FileProvider {
    /// A provider reading under `dir`.
    pub fn new(dir: &Path) -> FileProvider {
        FileProvider {
            dir: dir.to_path_buf(),
        }
    }

    /// The secrets directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl SecretProvider for FileProvider {
    fn resolve(&self, reference: &SecretRef) -> Result<Secret, String> {
        let file = self.dir.join(reference.path());
        match std::fs::read(&file) {
            Ok(bytes) => {
                let mut value = String::from_utf8(bytes).map_err(|_| {
                    format!(
                        "secret {reference} (file {}) is not UTF-8 text",
                        file.display()
                    )
                })?;
                if value.ends_with('\n') {
                    value.pop();
                    if value.ends_with('\r') {
                        value.pop();
                    }
                }
                Ok(Secret {
                    reference: reference.clone(),
                    value,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "secret {reference} cannot be resolved: no file {}; create it (mode 0600) or fix the reference",
                file.display()
            )),
            Err(e) => Err(format!(
                "secret {reference} cannot be read from {}: {e}",
                file.display()
            )),
        }
    }
}

/// A provider reading environment variables `VIGO_SECRET_<PATH>` (path upper-cased, `/`,
/// `.` and `-` turned into `_`), for CI systems that inject secrets that way.
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvProvider;

impl EnvProvider {
    /// The variable that holds `reference`.
    pub fn variable(reference: &SecretRef) -> String {
        let mut name = String::from("VIGO_SECRET_");
        for c in reference.path().chars() {
            name.push(if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            });
        }
        name
    }
}

impl SecretProvider for EnvProvider {
    fn resolve(&self, reference: &SecretRef) -> Result<Secret, String> {
        let var = EnvProvider::variable(reference);
        match std::env::var(&var) {
            Ok(value) => Ok(Secret {
                reference: reference.clone(),
                value,
            }),
            Err(_) => Err(format!(
                "secret {reference} cannot be resolved: environment variable {var} is not set"
            )),
        }
    }
}

/// Builds a secret for tests and for providers in other modules.
pub fn secret_from_parts(reference: SecretRef, value: String) -> Secret {
    Secret { reference, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_validated() {
        let cases = [
            ("vigo/os-users/alice", true),
            ("db.password", true),
            ("", false),
            ("../etc/shadow", false),
            ("a//b", false),
            ("/abs", false),
            ("a b", false),
        ];
        for (path, ok) in cases {
            assert_eq!(SecretRef::parse(path).is_ok(), ok, "{path}");
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = secret_from_parts(SecretRef::parse("a/b").unwrap(), "hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(secret:a/b)");
    }

    #[test]
    fn env_variable_names() {
        assert_eq!(
            EnvProvider::variable(&SecretRef::parse("vigo/db-main/pw.txt").unwrap()),
            "VIGO_SECRET_VIGO_DB_MAIN_PW_TXT"
        );
    }
}
