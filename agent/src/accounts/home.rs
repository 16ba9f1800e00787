//! Home folders Vigo creates itself (under a `--root`, or when an existing account's home
//! is missing): the folder with the root's `HOME_MODE`, populated from the root's
//! `/etc/skel`, everything owned by the user.

use std::path::Path;

use super::os;
use crate::providers::ProviderError;

/// Creates `home` (a path beneath the root) for `uid:gid` with `mode`, copying `skel`
/// into it when `skel` exists. The parent folders are created root-owned as needed.
pub fn create(
    home: &Path,
    skel: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), ProviderError> {
    if let Some(parent) = home.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ProviderError(format!("creating {}: {e}", parent.display())))?;
    }
    os::mkdir(home, mode, uid, gid)?;
    if skel.is_dir() {
        copy_tree(skel, home, uid, gid)?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<(), ProviderError> {
    let entries = std::fs::read_dir(from)
        .map_err(|e| ProviderError(format!("reading {}: {e}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| ProviderError(format!("reading {}: {e}", from.display())))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let Some(meta) = os::meta(&src)? else {
            continue;
        };
        if meta.symlink {
            let target = std::fs::read_link(&src)
                .map_err(|e| ProviderError(format!("reading {}: {e}", src.display())))?;
            symlink(&target, &dst)?;
        } else if meta.dir {
            os::mkdir(&dst, meta.mode, uid, gid)?;
            copy_tree(&src, &dst, uid, gid)?;
            continue;
        } else {
            let bytes = std::fs::read(&src)
                .map_err(|e| ProviderError(format!("reading {}: {e}", src.display())))?;
            os::write_atomic(&dst, &bytes, meta.mode, uid, gid)?;
            continue;
        }
        os::chown(&dst, uid, gid)?;
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<(), ProviderError> {
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| ProviderError(format!("creating the symlink {}: {e}", link.display())))
}

#[cfg(not(unix))]
fn symlink(_target: &Path, link: &Path) -> Result<(), ProviderError> {
    Err(ProviderError(format!(
        "creating the symlink {}: not available on this system",
        link.display()
    )))
}
