//! The stand-in for `unix.rs` on systems without Unix owners and modes (Windows): every
//! operation that needs them reports that it is not available, which only happens when a
//! Unix-style root is converged from such a host.

use std::path::Path;

use crate::providers::ProviderError;

/// Owner, group and permission bits of a file system object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// It is a symbolic link.
    pub symlink: bool,
    /// It is a folder.
    pub dir: bool,
}

fn unsupported(what: &str, path: &Path) -> ProviderError {
    ProviderError(format!(
        "{what} {}: Unix owners and modes are not available on this system; converge this \
         root from a Unix host",
        path.display()
    ))
}

/// Unavailable here.
pub fn meta(path: &Path) -> Result<Option<Meta>, ProviderError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => Err(unsupported("reading the owner of", path)),
    }
}

/// Unavailable here.
pub fn chown(path: &Path, _uid: u32, _gid: u32) -> Result<(), ProviderError> {
    Err(unsupported("changing the owner of", path))
}

/// Unavailable here.
pub fn chmod(path: &Path, _mode: u32) -> Result<(), ProviderError> {
    Err(unsupported("changing the mode of", path))
}

/// Unavailable here.
pub fn mkdir(path: &Path, _mode: u32, _uid: u32, _gid: u32) -> Result<(), ProviderError> {
    Err(unsupported("creating", path))
}

/// Unavailable here.
pub fn write_atomic(
    path: &Path,
    _content: &[u8],
    _mode: u32,
    _uid: u32,
    _gid: u32,
) -> Result<(), ProviderError> {
    Err(unsupported("writing", path))
}

/// Unknown here; a lock is assumed live.
pub fn process_alive(_pid: u32) -> bool {
    true
}
