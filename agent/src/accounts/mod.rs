//! Local accounts as files: reading and editing a root's `passwd`, `group`, `shadow` and
//! `gshadow` under lock, home folders, the sudoers drop-in and `authorized_keys`.
//!
//! The user and group providers read current state from here on every family whose
//! accounts live in these files, and write through here when converging a `--root` other
//! than `/` (where the native tools would change the host instead).

pub mod db;
pub mod home;
pub mod lock;
pub mod ssh_keys;
pub mod sudoers;
pub mod table;

#[cfg(not(unix))]
pub mod other;
#[cfg(unix)]
pub mod unix;

#[cfg(not(unix))]
pub use other as os;
#[cfg(unix)]
pub use unix as os;

pub use db::Db;
pub use lock::Lock;

use crate::providers::ProviderError;

/// Checks a user or group name: what `useradd` accepts on every family (letters, digits,
/// `_`, `.`, `-`, not starting with `-`, at most 32 characters, an optional trailing `$`
/// for Samba machine accounts). Refusing anything else keeps names from becoming options
/// or breaking the colon-separated files.
pub fn check_name(what: &str, name: &str) -> Result<(), ProviderError> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= 32
        && !body.starts_with('-')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !body.chars().all(|c| c.is_ascii_digit())
        && body != "."
        && body != "..";
    if ok {
        Ok(())
    } else {
        Err(ProviderError(format!(
            "{what} name `{name}` is not valid: use letters, digits, `_`, `.` and `-`, not \
             starting with `-` and not all digits, at most 32 characters"
        )))
    }
}

/// Checks a value that goes into one field of a colon-separated database.
pub fn check_field(what: &str, value: &str) -> Result<(), ProviderError> {
    if value.contains([':', '\n', '\r', '\0']) {
        return Err(ProviderError(format!(
            "{what} `{}` contains `:` or a line break, which the account files cannot hold",
            value.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["alice", "www-data", "a.b", "_x", "host$", "Bob1"] {
            check_name("user", ok).unwrap();
        }
        for bad in [
            "",
            "-x",
            "a b",
            "a:b",
            "1234",
            "x\n",
            "..",
            "é",
            &"a".repeat(33),
        ] {
            assert!(check_name("user", bad).is_err(), "{bad:?}");
        }
        assert!(check_field("comment", "Alice: admin").is_err());
        check_field("comment", "Alice Nguyen, ops").unwrap();
    }
}
