//! The sudoers drop-in that grants a user passwordless sudo: one file per user,
//! `<sudoers.d>/vigo-<user>`, mode 0440, owned by root, checked with `visudo -cf` before it
//! is moved into place (when visudo exists), so a broken file never reaches sudo.

use std::path::PathBuf;

use super::os;
use crate::family::Family;
use crate::providers::{Change, Command, Ctx, ProviderError};

/// The folder sudo includes drop-ins from on `family`; `None` where sudo is not used.
pub fn dir(family: Family) -> Option<&'static str> {
    match family {
        Family::FreeBsd => Some("/usr/local/etc/sudoers.d"),
        Family::NetBsd => Some("/usr/pkg/etc/sudoers.d"),
        Family::Windows => None,
        _ => Some("/etc/sudoers.d"),
    }
}

/// The drop-in's node path. sudo skips drop-ins whose name contains a `.` (or ends in
/// `~`), so a dot in a user name becomes `_` in the file name.
pub fn path(family: Family, user: &str) -> Option<String> {
    dir(family).map(|d| format!("{d}/vigo-{}", user.replace('.', "_")))
}

/// The drop-in's content.
pub fn content(user: &str) -> String {
    format!(
        "# Managed by Vigo (user resource `{user}`); do not edit.\n{user} ALL=(ALL) NOPASSWD: ALL\n"
    )
}

/// Brings `user`'s drop-in to `wanted` (present or absent); returns the change, if any.
pub fn converge(ctx: &Ctx<'_>, user: &str, wanted: bool) -> Result<Option<Change>, ProviderError> {
    let Some(node_path) = path(ctx.family, user) else {
        if wanted {
            return Err(ProviderError(format!(
                "sudo_nopasswd for user `{user}`: {} has no sudo; remove the attribute",
                ctx.family
            )));
        }
        return Ok(None);
    };
    let file = ctx.path(&node_path);
    let body = content(user);
    let current = os::meta(&file)?;
    if current.is_some_and(|m| m.symlink || m.dir) {
        return Err(ProviderError(format!(
            "managing {node_path}: it is a symlink or folder, not a file Vigo wrote; remove it"
        )));
    }
    let exists = current.is_some();
    if !wanted {
        if !exists {
            return Ok(None);
        }
        if !ctx.observe {
            std::fs::remove_file(&file)
                .map_err(|e| ProviderError(format!("removing {node_path}: {e}")))?;
        }
        return Ok(Some(Change::new("sudo_nopasswd", "true", "false")));
    }
    let same = exists
        && std::fs::read(&file).ok().as_deref() == Some(body.as_bytes())
        && current.is_some_and(|m| m.mode == 0o440 && m.uid == 0 && m.gid == 0);
    if same {
        return Ok(None);
    }
    let from = if exists { "true (differs)" } else { "false" };
    if !ctx.observe {
        install(ctx, &node_path, &file, &body)?;
    }
    Ok(Some(Change::new("sudo_nopasswd", from, "true")))
}

fn install(
    ctx: &Ctx<'_>,
    node_path: &str,
    file: &PathBuf,
    body: &str,
) -> Result<(), ProviderError> {
    let dir = file.parent().expect("the drop-in lives in a folder");
    if os::meta(dir)?.is_none() {
        std::fs::create_dir_all(dir.parent().expect("sudoers.d has a parent"))
            .map_err(|e| ProviderError(format!("creating {}: {e}", dir.display())))?;
        os::mkdir(dir, 0o755, 0, 0)?;
    }
    // The candidate's name contains a dot, so sudo ignores it even while it sits in the
    // include folder; it becomes the drop-in only by the rename after validation.
    let candidate = dir.join(format!(
        ".{}.vigo-new",
        file.file_name().unwrap_or_default().display()
    ));
    os::write_atomic(&candidate, body.as_bytes(), 0o440, 0, 0)?;
    if ctx.runner.has_command("visudo") {
        let cmd = Command::new("visudo", &["-cf", &candidate.display().to_string()]);
        let out = ctx.runner.run(&cmd)?;
        if !out.success() {
            let _ = std::fs::remove_file(&candidate);
            return Err(ProviderError(format!(
                "validating {node_path} with visudo failed ({}); the drop-in was not installed",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    std::fs::rename(&candidate, file).map_err(|e| {
        let _ = std::fs::remove_file(&candidate);
        ProviderError(format!("installing {node_path}: {e}"))
    })
}
