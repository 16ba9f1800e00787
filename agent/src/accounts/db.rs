//! A root's account databases loaded for reading and editing: `passwd`, `group`, and
//! where they exist `shadow` and `gshadow` (or, on the BSDs, `master.passwd` for reading
//! password hashes). Edits mark a file dirty; [`Db::save`] replaces only dirty files, each
//! atomically with its previous mode and owner, keeping a `<file>-` backup like
//! shadow-utils. Callers hold a [`super::Lock`] from load to save.

use std::path::{Path, PathBuf};

use super::os;
use super::table::{GroupEntry, PasswdEntry, Table, merge_members};
use crate::family::Family;
use crate::providers::ProviderError;

const PASSWD: usize = 0;
const SHADOW: usize = 1;
const GROUP: usize = 2;
const GSHADOW: usize = 3;

/// The file names of the databases, by index, for shadow-style systems.
pub const FILES: [&str; 4] = ["passwd", "shadow", "group", "gshadow"];

/// The loaded databases of one root.
pub struct Db {
    etc: PathBuf,
    /// Parsed files; `None` when the file does not exist (only shadow and gshadow may be
    /// missing).
    tables: [Option<Table>; 4],
    /// The file the password hashes come from (`shadow`, or `master.passwd` on the BSDs).
    shadow_file: &'static str,
    dirty: [bool; 4],
}

impl Db {
    /// Loads the databases of `root` for `family`.
    pub fn load(root: &Path, family: Family) -> Result<Db, ProviderError> {
        let etc = root.join("etc");
        let shadow_file = match family {
            Family::FreeBsd | Family::OpenBsd | Family::NetBsd => "master.passwd",
            _ => "shadow",
        };
        let read = |name: &str, required: bool| -> Result<Option<Table>, ProviderError> {
            let path = etc.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => String::from_utf8(bytes)
                    .map(|t| Some(Table::parse(&t)))
                    .map_err(|_| {
                        ProviderError(format!(
                            "reading {}: it is not valid UTF-8; fix the file by hand",
                            path.display()
                        ))
                    }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
                Err(e) => Err(ProviderError(format!(
                    "reading {}: {e}{}",
                    path.display(),
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "; the root needs a base system's account files first"
                    } else {
                        ""
                    }
                ))),
            }
        };
        let tables = [
            read("passwd", true)?,
            read(shadow_file, false)?,
            read("group", true)?,
            read("gshadow", false)?,
        ];
        Ok(Db {
            etc,
            tables,
            shadow_file,
            dirty: [false; 4],
        })
    }

    fn table(&self, i: usize) -> Option<&Table> {
        self.tables[i].as_ref()
    }

    fn path(&self, i: usize) -> String {
        let name = if i == SHADOW {
            self.shadow_file
        } else {
            FILES[i]
        };
        self.etc.join(name).display().to_string()
    }

    /// Every user.
    pub fn users(&self) -> Result<Vec<PasswdEntry>, ProviderError> {
        let file = self.path(PASSWD);
        let t = self.table(PASSWD).expect("passwd is required at load");
        t.entries()
            .map(|f| PasswdEntry::from_fields(&f, &file))
            .collect()
    }

    /// Every group.
    pub fn groups(&self) -> Result<Vec<GroupEntry>, ProviderError> {
        let file = self.path(GROUP);
        let t = self.table(GROUP).expect("group is required at load");
        t.entries()
            .map(|f| GroupEntry::from_fields(&f, &file))
            .collect()
    }

    /// The group `name`.
    pub fn group(&self, name: &str) -> Result<Option<GroupEntry>, ProviderError> {
        let t = self.table(GROUP).expect("group is required at load");
        t.get(name)
            .map(|f| GroupEntry::from_fields(&f, &self.path(GROUP)))
            .transpose()
    }

    /// The password hash of `name` (`!`, `*` or empty when locked or unset), when the hash
    /// file exists and has an entry for the user.
    pub fn hash(&self, name: &str) -> Option<String> {
        let fields = self.table(SHADOW)?.get(name)?;
        fields.get(1).map(|h| h.to_string())
    }

    /// Whether the root keeps group passwords in `gshadow`.
    pub fn has_gshadow(&self) -> bool {
        self.tables[GSHADOW].is_some()
    }

    fn edit(&mut self, i: usize) -> Option<&mut Table> {
        self.dirty[i] = true;
        self.tables[i].as_mut()
    }

    /// Adds a user with an entry in `shadow` (created when missing); `hash` `None` locks
    /// the password (`!`), as `useradd` does.
    pub fn add_user(&mut self, e: &PasswdEntry, hash: Option<&str>) {
        let fields = [
            e.name.clone(),
            "x".to_string(),
            e.uid.to_string(),
            e.gid.to_string(),
            e.gecos.clone(),
            e.home.clone(),
            e.shell.clone(),
        ];
        self.edit(PASSWD)
            .expect("passwd is required at load")
            .push(&fields);
        if self.tables[SHADOW].is_none() {
            self.tables[SHADOW] = Some(Table::default());
        }
        let shadow = [
            e.name.clone(),
            hash.unwrap_or("!").to_string(),
            days_since_epoch().to_string(),
            "0".to_string(),
            "99999".to_string(),
            "7".to_string(),
            String::new(),
            String::new(),
            String::new(),
        ];
        self.edit(SHADOW)
            .expect("shadow was just created")
            .push(&shadow);
    }

    /// Sets field `idx` of user `name`'s passwd entry.
    pub fn set_user_field(&mut self, name: &str, idx: usize, value: &str) {
        let t = self.tables[PASSWD]
            .as_mut()
            .expect("passwd is required at load");
        if t.set_field(name, idx, value) {
            self.dirty[PASSWD] = true;
        }
    }

    /// Sets user `name`'s password hash, adding a shadow entry when missing, and records
    /// the day of the change (like `chpasswd -e`).
    pub fn set_hash(&mut self, name: &str, hash: &str) {
        let t = self.tables[SHADOW].get_or_insert_with(Table::default);
        if t.get(name).is_none() {
            let fields: Vec<String> = [name, hash, "", "0", "99999", "7", "", "", ""]
                .map(String::from)
                .to_vec();
            t.push(&fields);
        } else {
            t.set_field(name, 1, hash);
        }
        t.set_field(name, 2, &days_since_epoch().to_string());
        self.dirty[SHADOW] = true;
    }

    /// Removes user `name` from passwd, shadow and every group's member and admin lists.
    pub fn remove_user(&mut self, name: &str) -> Result<(), ProviderError> {
        if let Some(t) = self.tables[PASSWD].as_mut() {
            self.dirty[PASSWD] |= t.remove(name);
        }
        if let Some(t) = self.tables[SHADOW].as_mut() {
            self.dirty[SHADOW] |= t.remove(name);
        }
        for g in self.groups()? {
            if g.members.iter().any(|m| m == name) {
                let keep: Vec<String> = g.members.iter().filter(|m| *m != name).cloned().collect();
                self.set_members(&g.name, &keep);
            }
        }
        if let Some(t) = self.tables[GSHADOW].as_mut() {
            let names = t.names();
            for g in names {
                let fields: Vec<String> = t
                    .get(&g)
                    .expect("listed")
                    .iter()
                    .map(|f| f.to_string())
                    .collect();
                let admins = fields.get(2).map(|a| strip(a, name));
                if let Some(admins) = admins
                    && t.set_field(&g, 2, &admins)
                {
                    self.dirty[GSHADOW] = true;
                }
            }
        }
        Ok(())
    }

    /// Adds a group (and its gshadow entry when the root has gshadow).
    pub fn add_group(&mut self, name: &str, gid: u32, members: &[String]) {
        let list = members.join(",");
        let fields = [
            name.to_string(),
            "x".to_string(),
            gid.to_string(),
            list.clone(),
        ];
        self.edit(GROUP)
            .expect("group is required at load")
            .push(&fields);
        if self.has_gshadow() {
            let fields = [name.to_string(), "!".to_string(), String::new(), list];
            self.edit(GSHADOW).expect("gshadow exists").push(&fields);
        }
    }

    /// Changes the gid of group `name`.
    pub fn set_gid(&mut self, name: &str, gid: u32) {
        let t = self.tables[GROUP]
            .as_mut()
            .expect("group is required at load");
        if t.set_field(name, 2, &gid.to_string()) {
            self.dirty[GROUP] = true;
        }
    }

    /// Makes `members` the exact member list of group `name` in group and gshadow,
    /// keeping the order of members that stay.
    pub fn set_members(&mut self, name: &str, members: &[String]) {
        for i in [GROUP, GSHADOW] {
            let Some(t) = self.tables[i].as_mut() else {
                continue;
            };
            let Some(fields) = t.get(name) else { continue };
            let current = super::table::split_members(fields.get(3).copied().unwrap_or(""));
            let merged = merge_members(&current, members).join(",");
            if t.set_field(name, 3, &merged) {
                self.dirty[i] = true;
            }
        }
    }

    /// Removes group `name` from group and gshadow.
    pub fn remove_group(&mut self, name: &str) {
        for i in [GROUP, GSHADOW] {
            if let Some(t) = self.tables[i].as_mut() {
                self.dirty[i] |= t.remove(name);
            }
        }
    }

    /// Writes every changed file atomically with its previous mode and owner (new files:
    /// `shadow` 0640 root:shadow-or-root as Debian ships it, others 0644 root:root), after
    /// saving the previous content as `<file>-`.
    pub fn save(&mut self) -> Result<(), ProviderError> {
        for (i, table) in self.tables.iter().enumerate() {
            if !self.dirty[i] {
                continue;
            }
            let Some(table) = table else { continue };
            let name = if i == SHADOW {
                self.shadow_file
            } else {
                FILES[i]
            };
            let path = self.etc.join(name);
            let (mode, uid, gid) = match os::meta(&path)? {
                Some(m) => (m.mode, m.uid, m.gid),
                None if i == SHADOW || i == GSHADOW => (0o640, 0, self.shadow_gid()),
                None => (0o644, 0, 0),
            };
            if let Ok(old) = std::fs::read(&path) {
                os::write_atomic(
                    &path.with_file_name(format!("{name}-")),
                    &old,
                    mode,
                    uid,
                    gid,
                )?;
            }
            os::write_atomic(&path, table.render().as_bytes(), mode, uid, gid)?;
        }
        self.dirty = [false; 4];
        Ok(())
    }

    fn shadow_gid(&self) -> u32 {
        self.group("shadow").ok().flatten().map_or(0, |g| g.gid)
    }
}

fn strip(list: &str, name: &str) -> String {
    list.split(',')
        .filter(|m| !m.is_empty() && *m != name)
        .collect::<Vec<_>>()
        .join(",")
}

fn days_since_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// Id ranges and the home-folder mode from the root's `/etc/login.defs`, with the
/// shadow-utils defaults where it is silent or missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defs {
    /// First and last uid of regular users.
    pub uid: (u32, u32),
    /// First and last uid of system users.
    pub sys_uid: (u32, u32),
    /// First and last gid of regular groups.
    pub gid: (u32, u32),
    /// First and last gid of system groups.
    pub sys_gid: (u32, u32),
    /// Mode of a home folder Vigo creates (`HOME_MODE`, else 0777 less `UMASK`).
    pub home_mode: u32,
}

impl Defs {
    /// Reads `<root>/etc/login.defs`.
    pub fn load(root: &Path) -> Defs {
        let text = std::fs::read_to_string(root.join("etc/login.defs")).unwrap_or_default();
        Defs::parse(&text)
    }

    /// Parses the text of a login.defs file.
    pub fn parse(text: &str) -> Defs {
        let get = |key: &str, default: u32, radix: u32| -> u32 {
            text.lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next() == Some(key)).then(|| it.next()).flatten()
                })
                .filter_map(|v| u32::from_str_radix(v, radix).ok())
                .next_back()
                .unwrap_or(default)
        };
        Defs {
            uid: (get("UID_MIN", 1000, 10), get("UID_MAX", 60000, 10)),
            sys_uid: (get("SYS_UID_MIN", 100, 10), get("SYS_UID_MAX", 999, 10)),
            gid: (get("GID_MIN", 1000, 10), get("GID_MAX", 60000, 10)),
            sys_gid: (get("SYS_GID_MIN", 100, 10), get("SYS_GID_MAX", 999, 10)),
            // useradd: HOME_MODE, else what UMASK leaves of 0777 (0755 on Debian).
            home_mode: get("HOME_MODE", 0o777 & !get("UMASK", 0o022, 8), 8),
        }
    }
}

/// The id a new account gets, as shadow-utils picks it: for a regular account one above
/// the highest id in use in the range; for a system account the highest free id of the
/// system range. `None` when the range is full.
pub fn next_id(used: &[u32], range: (u32, u32), system: bool) -> Option<u32> {
    let (lo, hi) = range;
    if system {
        return (lo..=hi).rev().find(|id| !used.contains(id));
    }
    let top = used
        .iter()
        .copied()
        .filter(|id| (lo..=hi).contains(id))
        .max();
    match top {
        Some(top) if top < hi => Some(top + 1),
        Some(_) => (lo..=hi).find(|id| !used.contains(id)),
        None => Some(lo),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_defs_and_id_allocation() {
        let d = Defs::parse("# x\nUID_MIN  2000\nUID_MAX 3000\nHOME_MODE 0750\n#GID_MIN 5\n");
        assert_eq!(d.uid, (2000, 3000));
        assert_eq!(d.gid, (1000, 60000));
        assert_eq!(d.home_mode, 0o750);
        assert_eq!(Defs::parse("").home_mode, 0o755);
        assert_eq!(Defs::parse("UMASK 077\n").home_mode, 0o700);
        assert_eq!(
            next_id(&[0, 1000, 1001, 65534], (1000, 60000), false),
            Some(1002)
        );
        assert_eq!(next_id(&[0, 65534], (1000, 60000), false), Some(1000));
        assert_eq!(next_id(&[0, 999, 998], (100, 999), true), Some(997));
        assert_eq!(next_id(&[5, 6], (5, 6), false), None);
        assert_eq!(next_id(&[6], (5, 6), false), Some(5));
    }
}
