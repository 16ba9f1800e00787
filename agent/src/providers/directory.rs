//! `type: directory`: a directory with mode, owner and group, or its absence. Only the
//! directory itself is created (its parent must exist, usually through another directory
//! resource); removal takes only an empty directory unless the resource is `dangerous`.

use std::fs;

use vigo_shared::bundle::Resource;

use super::file::{check_parent, id_change, set_meta};
use super::ownership::{self, Db, ObjKind};
use super::{Change, Ctx, Provider, ProviderError};

/// Converges `type: directory` resources.
pub struct DirectoryProvider;

impl Provider for DirectoryProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &["path", "mode", "owner", "group", "state"]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let path = ownership::node_path(res)?;
        let target = ctx.path(&path);
        let cur = ownership::meta(&target)?;

        if !ownership::wants_present(res) {
            let Some(m) = cur else { return Ok(Vec::new()) };
            if m.kind != ObjKind::Dir {
                return Err(ProviderError(format!(
                    "refusing to remove {path}: it is {}, not a directory",
                    m.kind.describe()
                )));
            }
            if path == "/" {
                return Err(ProviderError(
                    "refusing to remove the root directory".to_string(),
                ));
            }
            let empty = fs::read_dir(&target)
                .map_err(|e| ownership::io_error("listing", &target, &e))?
                .next()
                .is_none();
            if !empty && !res.dangerous {
                return Err(ProviderError(format!(
                    "directory {path} is not empty; remove its contents first or set dangerous: true to remove it recursively"
                )));
            }
            if !ctx.observe {
                let removed = if empty {
                    fs::remove_dir(&target)
                } else {
                    fs::remove_dir_all(&target)
                };
                removed.map_err(|e| ownership::io_error("removing", &target, &e))?;
                ownership::sync_parent(&target);
            }
            let from = if empty {
                "directory"
            } else {
                "directory with contents"
            };
            return Ok(vec![Change::new("state", from, "absent")]);
        }

        let mode = ownership::parse_mode(res)?;
        let owner = ownership::wanted(ctx, res, "owner", Db::Passwd)?;
        let group = ownership::wanted(ctx, res, "group", Db::Group)?;
        let mut changes = Vec::new();
        match cur {
            Some(m) if m.kind == ObjKind::Dir => {
                if let Some(mode) = mode.filter(|&w| w != m.mode) {
                    changes.push(Change::new(
                        "mode",
                        ownership::show_mode(m.mode),
                        ownership::show_mode(mode),
                    ));
                }
                let (o, g) = ownership::owner_names(ctx, &m)?;
                id_change(&mut changes, "owner", Some((m.uid, o)), owner.as_ref());
                id_change(&mut changes, "group", Some((m.gid, g)), group.as_ref());
            }
            Some(m) => {
                return Err(ProviderError(format!(
                    "refusing to replace {path} with a directory: it is {}; remove it first",
                    m.kind.describe()
                )));
            }
            None => {
                changes.push(Change::new("state", "absent", "directory"));
                changes.push(Change::new(
                    "mode",
                    "absent",
                    ownership::show_mode(mode.unwrap_or(0o755)),
                ));
                id_change(&mut changes, "owner", None, owner.as_ref());
                id_change(&mut changes, "group", None, group.as_ref());
            }
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
        match cur {
            Some(m) => set_meta(&target, &m, mode, uid, gid)?,
            None => {
                check_parent(ctx, &path)?;
                ownership::mkdir(&target, mode.unwrap_or(0o755), uid, gid)?;
                ownership::sync_parent(&target);
            }
        }
        Ok(changes)
    }
}
