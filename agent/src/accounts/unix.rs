//! File ownership and modes, the Unix-only part of account management: reading and
//! setting owner and mode, and replacing a file atomically (temporary file, fsync,
//! rename, fsync of the folder) with the mode and owner it must have.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::providers::ProviderError;

/// Owner, group and permission bits of a file system object (not following a symlink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits (`0o640`).
    pub mode: u32,
    /// It is a symbolic link.
    pub symlink: bool,
    /// It is a folder.
    pub dir: bool,
}

/// The metadata of `path`, or `None` when it does not exist.
pub fn meta(path: &Path) -> Result<Option<Meta>, ProviderError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
            symlink: m.file_type().is_symlink(),
            dir: m.is_dir(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading the metadata of", path, &e)),
    }
}

/// Sets owner and group of `path` (not following a symlink).
pub fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), ProviderError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| io_err("changing the owner of", path, &e))
}

/// Sets the permission bits of `path`.
pub fn chmod(path: &Path, mode: u32) -> Result<(), ProviderError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("changing the mode of", path, &e))
}

/// Creates the folder `path` (its parent must exist) with `mode`, owned by `uid:gid`.
pub fn mkdir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), ProviderError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| io_err("creating the folder", path, &e))?;
    chown(path, uid, gid)?;
    chmod(path, mode)
}

/// Replaces `path` with `content`, owned by `uid:gid` with `mode`, so that a reader sees
/// either the old or the new file and never a partial one: the content goes to
/// `<path>+` (the shadow-utils convention), created private, then is fsynced, given its
/// owner and mode and renamed over `path`; finally the folder is fsynced so the rename
/// survives a crash.
pub fn write_atomic(
    path: &Path,
    content: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), ProviderError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push("+");
    let tmp = path.with_file_name(tmp_name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err("creating", &tmp, &e))?;
        file.write_all(content)
            .map_err(|e| io_err("writing", &tmp, &e))?;
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|e| io_err("changing the owner of", &tmp, &e))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("changing the mode of", &tmp, &e))?;
        file.sync_all().map_err(|e| io_err("flushing", &tmp, &e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("replacing", path, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Some(dir) = path.parent() {
        // Opening a folder read-only and fsyncing it is how the rename is made durable;
        // a file system that refuses it (some network mounts) still has the new file.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Whether the process with `pid` still runs (used to break stale shadow-utils locks).
/// Only Linux has a cheap answer (/proc); elsewhere a lock is assumed live.
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> ProviderError {
    ProviderError(format!("{what} {}: {e}", path.display()))
}
