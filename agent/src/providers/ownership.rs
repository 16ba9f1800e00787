//! What the file, directory, symlink and cron providers share: node paths checked and
//! resolved beneath the root, the type, mode and owner of file system objects, owner and
//! group names resolved through the root's own `/etc/passwd` and `/etc/group` (never the
//! host's), and the atomic replacement of a file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use vigo_shared::bundle::{AttrValue, Resource};

use super::{Ctx, ProviderError, attr_str};

/// What is at a path (not following a symlink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A fifo, socket or device.
    Other,
}

impl ObjKind {
    /// How the kind is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            ObjKind::File => "a regular file",
            ObjKind::Dir => "a directory",
            ObjKind::Symlink => "a symbolic link",
            ObjKind::Other => "a special file (fifo, socket or device)",
        }
    }
}

/// Type, permission bits and owner of a file system object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: ObjKind,
    /// Permission bits including setuid, setgid and sticky (`0o4755`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

/// The `state` attribute: `present` (the default) or `absent`.
pub fn wants_present(res: &Resource) -> bool {
    attr_str(res, "state") != Some("absent")
}

/// The node path a file, directory or symlink resource manages: its `path` attribute, or
/// its name. It must be absolute and free of `..` components.
pub fn node_path(res: &Resource) -> Result<String, ProviderError> {
    let path = attr_str(res, "path").unwrap_or(&res.name);
    check_node_path(path)?;
    Ok(path.to_string())
}

/// Refuses a relative path or one with `..`, which could point outside the root.
pub fn check_node_path(path: &str) -> Result<(), ProviderError> {
    if !path.starts_with('/') {
        return Err(ProviderError(format!(
            "path {path:?} is not absolute; write it from / on"
        )));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(ProviderError(format!(
            "path {path:?} contains '..'; write it without parent references"
        )));
    }
    if path.contains('\0') {
        return Err(ProviderError(format!("path {path:?} contains a NUL byte")));
    }
    Ok(())
}

/// Parses a mode attribute: 3 or 4 octal digits (`"0644"`, `"755"`).
pub fn parse_mode(res: &Resource) -> Result<Option<u32>, ProviderError> {
    let text = match res.attr("mode") {
        None => return Ok(None),
        Some(AttrValue::Str(s)) => s.as_str(),
        Some(AttrValue::Int(i)) => {
            return Err(ProviderError(format!(
                "mode {i} must be an octal string such as \"0644\""
            )));
        }
        Some(_) => {
            return Err(ProviderError(
                "mode must be an octal string such as \"0644\"".to_string(),
            ));
        }
    };
    let ok = (3..=4).contains(&text.len()) && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(mode) if ok => Ok(Some(mode)),
        _ => Err(ProviderError(format!(
            "mode {text:?} is not 3 or 4 octal digits such as \"0644\""
        ))),
    }
}

/// A mode as the report shows it: `0644`.
pub fn show_mode(mode: u32) -> String {
    format!("{mode:04o}")
}

/// The metadata of `path`, or `None` when nothing is there.
pub fn meta(path: &Path) -> Result<Option<Meta>, ProviderError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(sys::meta_of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("reading", path, &e)),
    }
}

/// An I/O failure as a provider error: what was being done, where, and why.
pub fn io_error(doing: &str, path: &Path, err: &io::Error) -> ProviderError {
    ProviderError(format!("{doing} {}: {err}", path.display()))
}

/// Which account database a name is looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// `/etc/passwd`: users.
    Passwd,
    /// `/etc/group`: groups.
    Group,
}

impl Db {
    fn file(self) -> &'static str {
        match self {
            Db::Passwd => "/etc/passwd",
            Db::Group => "/etc/group",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Db::Passwd => "user",
            Db::Group => "group",
        }
    }
}

/// Names and ids of one account database of the root.
pub struct Accounts {
    entries: Vec<(String, u32)>,
}

impl Accounts {
    /// Reads the root's database; a missing file is an empty database.
    pub fn read(ctx: &Ctx<'_>, db: Db) -> Result<Accounts, ProviderError> {
        let path = ctx.path(db.file());
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_error("reading", &path, &e)),
        };
        Ok(Accounts::parse(&text))
    }

    /// Parses `name:x:id:...` lines; comments and malformed lines are ignored.
    pub fn parse(text: &str) -> Accounts {
        let entries = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse().ok()?;
                Some((name.to_string(), id))
            })
            .collect();
        Accounts { entries }
    }

    /// The id of `name`.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, id)| id)
    }

    /// The first name with `id`, or the number itself.
    pub fn name(&self, id: u32) -> String {
        self.entries
            .iter()
            .find(|&&(_, i)| i == id)
            .map_or_else(|| id.to_string(), |(n, _)| n.clone())
    }
}

/// A desired owner or group: its text as written, and its id when it could be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// As written in the bundle: a name or a number.
    pub text: String,
    /// The id, unless the name is not (yet) in the root's database.
    pub id: Option<u32>,
}

/// Resolves the `owner` (`Db::Passwd`) or `group` (`Db::Group`) attribute. A name the
/// root does not know resolves to `id: None`: in observe mode the account may be created
/// by a resource that has not run; when applying it is an error, raised by [`require`].
pub fn wanted(
    ctx: &Ctx<'_>,
    res: &Resource,
    key: &str,
    db: Db,
) -> Result<Option<Wanted>, ProviderError> {
    let Some(text) = attr_str(res, key) else {
        return Ok(None);
    };
    if text.is_empty() {
        return Err(ProviderError(format!(
            "{key} is empty; give a {} name or a number",
            db.what()
        )));
    }
    let id = match text.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => Accounts::read(ctx, db)?.id(text),
    };
    Ok(Some(Wanted {
        text: text.to_string(),
        id,
    }))
}

/// The id of a wanted owner or group, or an error naming the missing account.
pub fn require(ctx: &Ctx<'_>, w: &Wanted, db: Db) -> Result<u32, ProviderError> {
    w.id.ok_or_else(|| {
        ProviderError(format!(
            "{} {:?} does not exist in {}; create it with a {} resource or fix the name",
            db.what(),
            w.text,
            ctx.path(db.file()).display(),
            db.what()
        ))
    })
}

/// Current owner and group as the report shows them (names from the root's databases).
pub fn owner_names(ctx: &Ctx<'_>, m: &Meta) -> Result<(String, String), ProviderError> {
    Ok((
        Accounts::read(ctx, Db::Passwd)?.name(m.uid),
        Accounts::read(ctx, Db::Group)?.name(m.gid),
    ))
}

/// Sets the permission bits of `path` (not used on symlinks).
pub fn chmod(path: &Path, mode: u32) -> Result<(), ProviderError> {
    sys::chmod(path, mode).map_err(|e| io_error("setting the mode of", path, &e))
}

/// Sets owner and/or group of `path` without following a symlink.
pub fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), ProviderError> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    sys::lchown(path, uid, gid).map_err(|e| io_error("setting the owner of", path, &e))
}

/// Creates one directory (not its parents) with `mode`, closed to others until its owner
/// and mode are set.
pub fn mkdir(
    path: &Path,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ProviderError> {
    sys::mkdir_private(path).map_err(|e| io_error("creating directory", path, &e))?;
    chown(path, uid, gid)?;
    chmod(path, mode)
}

/// A temporary name beside `path` in the same directory, so that `rename` is atomic.
pub fn temp_beside(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{base}.vigo-{}-{n}", std::process::id()))
}

/// Replaces (or creates) the file at `path` with `content`, `mode` and owner: writes a
/// temporary file in the same directory, sets its mode and owner, flushes it to disk and
/// renames it over `path`, then flushes the directory. Readers see the old file or the new
/// one, never a half-written one; on any error the temporary file is removed.
pub fn write_atomic(
    path: &Path,
    content: &[u8],
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(), ProviderError> {
    let tmp = temp_beside(path);
    let result = (|| {
        let mut f =
            sys::create_private(&tmp).map_err(|e| io_error("creating temporary file", &tmp, &e))?;
        f.write_all(content)
            .map_err(|e| io_error("writing", &tmp, &e))?;
        chown(&tmp, uid, gid)?;
        chmod(&tmp, mode)?;
        f.sync_all().map_err(|e| io_error("flushing", &tmp, &e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| io_error("renaming the new file over", path, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_parent(path);
    Ok(())
}

/// Flushes the directory holding `path` so that a rename survives a crash. Best effort:
/// some systems cannot open a directory for syncing, and the rename already happened.
pub fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

#[cfg(unix)]
mod sys {
    //! Unix: modes and owners through std's Unix extensions; no unsafe code needed.

    use std::fs::{self, DirBuilder, File, OpenOptions};
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    use super::{Meta, ObjKind};

    pub fn meta_of(m: &fs::Metadata) -> Meta {
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            ObjKind::Symlink
        } else if ft.is_dir() {
            ObjKind::Dir
        } else if ft.is_file() {
            ObjKind::File
        } else {
            ObjKind::Other
        };
        Meta {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    pub fn lchown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        std::os::unix::fs::lchown(path, uid, gid)
    }

    pub fn mkdir_private(path: &Path) -> io::Result<()> {
        DirBuilder::new().mode(0o700).create(path)
    }

    pub fn create_private(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }
}

#[cfg(not(unix))]
mod sys {
    //! Systems without Unix modes and owners (Windows): content and links work; a mode or
    //! owner that would have to change is an error, so nothing is silently ignored.

    use std::fs::{self, File, OpenOptions};
    use std::io;
    use std::path::Path;

    use super::{Meta, ObjKind};

    pub fn meta_of(m: &fs::Metadata) -> Meta {
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            ObjKind::Symlink
        } else if ft.is_dir() {
            ObjKind::Dir
        } else if ft.is_file() {
            ObjKind::File
        } else {
            ObjKind::Other
        };
        let mode = if ft.is_dir() { 0o755 } else { 0o644 };
        Meta {
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix modes and owners are not available on this system",
        )
    }

    pub fn chmod(_path: &Path, mode: u32) -> io::Result<()> {
        if mode == 0o644 || mode == 0o755 {
            Ok(())
        } else {
            Err(unsupported())
        }
    }

    pub fn lchown(_path: &Path, _uid: Option<u32>, _gid: Option<u32>) -> io::Result<()> {
        Err(unsupported())
    }

    pub fn mkdir_private(path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    pub fn create_private(path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_paths_must_be_absolute_without_parent_references() {
        let check = |p: &str, ok: bool| assert_eq!(check_node_path(p).is_ok(), ok, "{p}");
        check("/etc/motd", true);
        check("/etc/../motd", false);
        check("etc/motd", false);
        check("/a/..", false);
        check("/a/..b", true);
        check("", false);
    }

    #[test]
    fn account_files_resolve_names_and_ids() {
        let a = Accounts::parse(
            "root:x:0:0:root:/root:/bin/sh\n# c\nalice:x:1000:1000::/home/alice:/bin/sh\nbad\n",
        );
        assert_eq!(a.id("alice"), Some(1000));
        assert_eq!(a.id("bob"), None);
        assert_eq!(a.name(0), "root");
        assert_eq!(a.name(42), "42");
    }
}
