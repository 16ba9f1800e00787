//! `type: symlink`: a symbolic link with its target (written verbatim, relative or
//! absolute) and optional owner/group, or its absence. A wrong link is replaced atomically
//! (new link beside it, renamed over it); a regular file or directory in the way is
//! replaced only when the resource is `dangerous`.

use std::fs;
use std::path::Path;

use vigo_shared::bundle::Resource;

use super::file::{check_parent, id_change, kind_word};
use super::ownership::{self, Db, ObjKind};
use super::{Change, Ctx, Provider, ProviderError, attr_str};

/// Converges `type: symlink` resources.
pub struct SymlinkProvider;

impl Provider for SymlinkProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &["path", "target", "owner", "group", "state"]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let path = ownership::node_path(res)?;
        let link = ctx.path(&path);
        let cur = ownership::meta(&link)?;

        if !ownership::wants_present(res) {
            let Some(m) = cur else { return Ok(Vec::new()) };
            if m.kind != ObjKind::Symlink {
                return Err(ProviderError(format!(
                    "refusing to remove {path}: it is {}, not a symbolic link",
                    m.kind.describe()
                )));
            }
            if !ctx.observe {
                fs::remove_file(&link).map_err(|e| ownership::io_error("removing", &link, &e))?;
                ownership::sync_parent(&link);
            }
            return Ok(vec![Change::new("state", "symlink", "absent")]);
        }

        let target = match attr_str(res, "target") {
            Some(t) if !t.is_empty() && !t.contains('\0') => t,
            _ => return Err(ProviderError("target must be a non-empty path".to_string())),
        };
        let owner = ownership::wanted(ctx, res, "owner", Db::Passwd)?;
        let group = ownership::wanted(ctx, res, "group", Db::Group)?;

        let mut changes = Vec::new();
        let mut create = true;
        match cur {
            None => changes.push(Change::new("state", "absent", "symlink")),
            Some(m) if m.kind == ObjKind::Symlink => {
                let old = fs::read_link(&link)
                    .map_err(|e| ownership::io_error("reading link", &link, &e))?;
                if old.as_os_str() == target {
                    create = false;
                } else {
                    changes.push(Change::new("target", old.to_string_lossy(), target));
                }
            }
            Some(m) if res.dangerous && matches!(m.kind, ObjKind::File | ObjKind::Dir) => {
                changes.push(Change::new("state", kind_word(m.kind), "symlink"));
            }
            Some(m) => {
                return Err(ProviderError(format!(
                    "refusing to replace {path} with a symbolic link: it is {} (set dangerous: true to replace it)",
                    m.kind.describe()
                )));
            }
        }
        if create {
            if cur.is_none_or(|m| m.kind != ObjKind::Symlink) {
                changes.push(Change::new("target", "absent", target));
            }
            id_change(&mut changes, "owner", None, owner.as_ref());
            id_change(&mut changes, "group", None, group.as_ref());
        } else if let Some(m) = cur {
            let (o, g) = ownership::owner_names(ctx, &m)?;
            id_change(&mut changes, "owner", Some((m.uid, o)), owner.as_ref());
            id_change(&mut changes, "group", Some((m.gid, g)), group.as_ref());
        }
        if ctx.observe || changes.is_empty() {
            return Ok(changes);
        }

        let uid = owner
            .as_ref()
            .map(|w| ownership::require(ctx, w, Db::Passwd))
            .transpose()?;
        let gid = group
            .as_ref()
            .map(|w| ownership::require(ctx, w, Db::Group))
            .transpose()?;
        if create {
            check_parent(ctx, &path)?;
            if cur.is_some_and(|m| m.kind == ObjKind::Dir) {
                // Only reached with dangerous: true (checked above); rename cannot replace
                // a directory with a link, so it goes first.
                fs::remove_dir_all(&link)
                    .map_err(|e| ownership::io_error("removing directory", &link, &e))?;
            }
            replace_link(&link, target, uid, gid)?;
        } else {
            ownership::chown(&link, uid, gid)?;
        }
        Ok(changes)
    }
}

/// Creates the link beside `link` and renames it over whatever is there (a link or a
/// file): the path never goes missing in between.
fn replace_link(
    link: &Path,
    target: &str,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ProviderError> {
    let tmp = ownership::temp_beside(link);
    let result = (|| {
        make_symlink(target, &tmp).map_err(|e| ownership::io_error("creating link", &tmp, &e))?;
        ownership::chown(&tmp, uid, gid)?;
        fs::rename(&tmp, link)
            .map_err(|e| ownership::io_error("renaming the new link over", link, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        ownership::sync_parent(link);
    }
    result
}

#[cfg(unix)]
fn make_symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn make_symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn make_symlink(_target: &str, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "symbolic links are not supported on this system",
    ))
}
