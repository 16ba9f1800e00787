//! `type: file`: a regular file's content (exact bytes), mode, owner and group, or its
//! absence. Content is replaced atomically (temporary file in the same directory with the
//! final mode and owner, fsync, rename), so no reader ever sees a half-written file.

use std::fs;
use std::io::Read;

use vigo_shared::bundle::{AttrValue, Resource};

use super::ownership::{self, Db, Meta, ObjKind, Wanted};
use super::{Change, Ctx, Provider, ProviderError};
use crate::report::diff;

/// Files larger than this are compared but not diffed in the report.
const MAX_DIFF_BYTES: u64 = 1 << 20;

/// Converges `type: file` resources.
pub struct FileProvider;

/// The desired state of one file, shared with the cron provider's `/etc/cron.d` files.
pub struct DesiredFile<'a> {
    /// `state: present` (else absent).
    pub present: bool,
    /// The exact content; `None` leaves an existing file's content alone.
    pub content: Option<&'a [u8]>,
    /// The content derives from a secret: the report shows neither side nor a diff.
    pub sensitive: bool,
    /// Permission bits; `None` keeps an existing file's and gives a new one 0644.
    pub mode: Option<u32>,
    /// Owner; `None` keeps the current one.
    pub owner: Option<Wanted>,
    /// Group; `None` keeps the current one.
    pub group: Option<Wanted>,
    /// A symlink in the way may be replaced (`dangerous: true`).
    pub replace_symlink: bool,
}

impl Provider for FileProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &["path", "content", "mode", "owner", "group", "state"]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let path = ownership::node_path(res)?;
        let (content, sensitive) = match res.attr("content") {
            None => (None, false),
            Some(AttrValue::Str(s)) => (Some(s.as_bytes()), false),
            Some(AttrValue::Sensitive(s)) => (Some(s.expose().as_bytes()), true),
            Some(_) => return Err(ProviderError("content must be a string".to_string())),
        };
        let desired = DesiredFile {
            present: ownership::wants_present(res),
            content,
            sensitive,
            mode: ownership::parse_mode(res)?,
            owner: ownership::wanted(ctx, res, "owner", Db::Passwd)?,
            group: ownership::wanted(ctx, res, "group", Db::Group)?,
            replace_symlink: res.dangerous,
        };
        converge_file(ctx, &path, &desired)
    }
}

/// Brings the file at node path `path` to `d`; returns what changed (or would change).
pub fn converge_file(
    ctx: &Ctx<'_>,
    path: &str,
    d: &DesiredFile<'_>,
) -> Result<Vec<Change>, ProviderError> {
    ownership::check_node_path(path)?;
    let target = ctx.path(path);
    let cur = ownership::meta(&target)?;

    if !d.present {
        let Some(m) = cur else { return Ok(Vec::new()) };
        if m.kind == ObjKind::Dir {
            return Err(ProviderError(format!(
                "refusing to remove {path}: it is a directory, not a file; manage it with a directory resource"
            )));
        }
        if !ctx.observe {
            fs::remove_file(&target).map_err(|e| ownership::io_error("removing", &target, &e))?;
            ownership::sync_parent(&target);
        }
        return Ok(vec![Change::new("state", kind_word(m.kind), "absent")]);
    }

    let cur_file = match cur {
        None => None,
        Some(m) if m.kind == ObjKind::File => Some(m),
        Some(m) if m.kind == ObjKind::Symlink && d.replace_symlink => None,
        Some(m) if m.kind == ObjKind::Symlink => {
            return Err(ProviderError(format!(
                "{path} is a symbolic link; refusing to replace it with a file (set dangerous: true to replace the link)"
            )));
        }
        Some(m) => {
            return Err(ProviderError(format!(
                "refusing to replace {path} with a file: it is {}; remove it first",
                m.kind.describe()
            )));
        }
    };

    let mut changes = Vec::new();
    let mut write = false;
    match cur_file {
        None => {
            write = true;
            changes.push(Change::new(
                "state",
                cur.map_or("absent", |m| kind_word(m.kind)),
                "present",
            ));
            let content = d.content.unwrap_or_default();
            content_changes(&mut changes, d, None, content);
        }
        Some(_) => {
            if let Some(want) = d.content
                && let Some(old) = differing_content(&target, want)?
            {
                write = true;
                content_changes(&mut changes, d, old.as_deref(), want);
            }
        }
    }
    meta_changes(ctx, &mut changes, cur_file.as_ref(), d)?;

    if ctx.observe || changes.is_empty() {
        return Ok(changes);
    }
    let uid = d
        .owner
        .as_ref()
        .map(|w| ownership::require(ctx, w, Db::Passwd))
        .transpose()?;
    let gid = d
        .group
        .as_ref()
        .map(|w| ownership::require(ctx, w, Db::Group))
        .transpose()?;
    if write {
        check_parent(ctx, path)?;
        // A replaced file keeps what the resource does not manage: its mode and owner.
        let mode = d.mode.or(cur_file.map(|m| m.mode)).unwrap_or(0o644);
        let uid = uid.or(cur_file.map(|m| m.uid));
        let gid = gid.or(cur_file.map(|m| m.gid));
        ownership::write_atomic(&target, d.content.unwrap_or_default(), mode, uid, gid)?;
    } else if let Some(m) = cur_file {
        set_meta(&target, &m, d.mode, uid, gid)?;
    }
    Ok(changes)
}

/// Sets owner, then mode (changing the owner can clear setuid bits), where they differ.
pub fn set_meta(
    target: &std::path::Path,
    m: &Meta,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ProviderError> {
    let uid = uid.filter(|&u| u != m.uid);
    let gid = gid.filter(|&g| g != m.gid);
    ownership::chown(target, uid, gid)?;
    if let Some(mode) = mode
        && (mode != m.mode || uid.is_some() || gid.is_some())
    {
        ownership::chmod(target, mode)?;
    }
    Ok(())
}

/// Fails clearly when the directory that should hold `path` does not exist.
pub fn check_parent(ctx: &Ctx<'_>, path: &str) -> Result<(), ProviderError> {
    let parent = path
        .rsplit_once('/')
        .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
    match ownership::meta(&ctx.path(parent))? {
        Some(m) if m.kind == ObjKind::Dir => Ok(()),
        Some(m) if m.kind == ObjKind::Symlink && ctx.path(parent).is_dir() => Ok(()),
        Some(m) => Err(ProviderError(format!(
            "cannot create {path}: {parent} is {}, not a directory",
            m.kind.describe()
        ))),
        None => Err(ProviderError(format!(
            "cannot create {path}: directory {parent} does not exist; add a directory resource for it"
        ))),
    }
}

/// How the report names what is at a path.
pub fn kind_word(kind: ObjKind) -> &'static str {
    match kind {
        ObjKind::File => "file",
        ObjKind::Dir => "directory",
        ObjKind::Symlink => "symlink",
        ObjKind::Other => "special file",
    }
}

/// `Some(old content)` when the file's content differs from `want` (the old content is
/// `None` when it is too large to diff), `None` when it is the same.
fn differing_content(
    target: &std::path::Path,
    want: &[u8],
) -> Result<Option<Option<Vec<u8>>>, ProviderError> {
    let len = fs::metadata(target)
        .map_err(|e| ownership::io_error("reading", target, &e))?
        .len();
    if len != want.len() as u64 {
        if len > MAX_DIFF_BYTES {
            return Ok(Some(None));
        }
        return fs::read(target)
            .map(|b| Some(Some(b)))
            .map_err(|e| ownership::io_error("reading", target, &e));
    }
    // Same length: compare in chunks without holding a huge file in memory twice.
    let mut f = fs::File::open(target).map_err(|e| ownership::io_error("reading", target, &e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0usize;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ownership::io_error("reading", target, &e))?;
        if n == 0 {
            break;
        }
        let end = at + n;
        if want.get(at..end) != Some(&buf[..n]) {
            if len > MAX_DIFF_BYTES {
                return Ok(Some(None));
            }
            return fs::read(target)
                .map(|b| Some(Some(b)))
                .map_err(|e| ownership::io_error("reading", target, &e));
        }
        at = end;
    }
    Ok(if at == want.len() { None } else { Some(None) })
}

fn content_changes(changes: &mut Vec<Change>, d: &DesiredFile<'_>, old: Option<&[u8]>, new: &[u8]) {
    if d.sensitive {
        changes.push(Change::new("content", "<redacted>", "<redacted>"));
        return;
    }
    let from = old.map_or_else(|| "absent".to_string(), |o| size(o.len()));
    changes.push(Change::new("content", from, size(new.len())));
    if let Some(text) = diff::line_diff(old.unwrap_or_default(), new).filter(|t| !t.is_empty()) {
        changes.push(Change::new("diff", "", text));
    }
}

fn size(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

fn meta_changes(
    ctx: &Ctx<'_>,
    changes: &mut Vec<Change>,
    cur: Option<&Meta>,
    d: &DesiredFile<'_>,
) -> Result<(), ProviderError> {
    let (cur_owner, cur_group) = match cur {
        Some(m) => {
            let (o, g) = ownership::owner_names(ctx, m)?;
            (Some((m.uid, o)), Some((m.gid, g)))
        }
        None => (None, None),
    };
    match (cur, d.mode) {
        (Some(m), Some(mode)) if m.mode != mode => {
            changes.push(Change::new(
                "mode",
                ownership::show_mode(m.mode),
                ownership::show_mode(mode),
            ));
        }
        (None, mode) => changes.push(Change::new(
            "mode",
            "absent",
            ownership::show_mode(mode.unwrap_or(0o644)),
        )),
        _ => {}
    }
    id_change(changes, "owner", cur_owner, d.owner.as_ref());
    id_change(changes, "group", cur_group, d.group.as_ref());
    Ok(())
}

/// Records an owner or group change: `cur` is the current (id, name), `None` for a new
/// object.
pub fn id_change(
    changes: &mut Vec<Change>,
    field: &str,
    cur: Option<(u32, String)>,
    want: Option<&Wanted>,
) {
    let Some(want) = want else { return };
    match cur {
        Some((id, _)) if want.id == Some(id) => {}
        Some((_, name)) => changes.push(Change::new(field, name, want.text.clone())),
        None => changes.push(Change::new(field, "absent", want.text.clone())),
    }
}
