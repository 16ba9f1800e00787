//! Accounts as files: reading the root's passwd/shadow/group (every family whose accounts
//! live there), and the direct-edit backend used under a `--root` other than `/` — and,
//! on a live system, for the two things the native tools cannot do: setting a hash on
//! illumos (no `chpasswd`) and removing a NetBSD user from a group (its `usermod -G`
//! only adds).

use super::{Current, Delta, GroupInfo, Spec, Tool, World};
use crate::accounts::db::{Defs, FILES, next_id};
use crate::accounts::table::PasswdEntry;
use crate::accounts::{Db, Lock, home};
use crate::providers::{Command, Ctx, ProviderError};

/// Reads the account `name`, every group and the uids in use from the root's files.
pub fn read(ctx: &Ctx<'_>, name: &str) -> Result<World, ProviderError> {
    let db = Db::load(ctx.root, ctx.family)?;
    let users = db.users()?;
    let user = users.iter().find(|u| u.name == name).map(|u| Current {
        uid: u.uid,
        gid: u.gid,
        comment: u.gecos.clone(),
        home: u.home.clone(),
        shell: u.shell.clone(),
        hash: db.hash(name),
    });
    let groups = db
        .groups()?
        .into_iter()
        .map(|g| GroupInfo {
            name: g.name,
            gid: g.gid,
            members: g.members,
        })
        .collect();
    Ok(World {
        user,
        groups,
        uids: users.iter().map(|u| u.uid).collect(),
    })
}

pub(crate) fn locked_db(ctx: &Ctx<'_>) -> Result<(Lock, Db), ProviderError> {
    let lock = Lock::acquire(ctx.root, &FILES)?;
    // Loaded under the lock, so no concurrent edit is lost.
    let db = Db::load(ctx.root, ctx.family)?;
    Ok((lock, db))
}

fn resolve_gid(db: &Db, spec: &Spec, group: &str) -> Result<u32, ProviderError> {
    if let Ok(n) = group.parse() {
        return Ok(n);
    }
    db.group(group)?.map(|g| g.gid).ok_or_else(|| {
        ProviderError(format!(
            "user `{}`: group `{group}` does not exist; declare it as a group resource or create it",
            spec.name
        ))
    })
}

/// Creates the account as `useradd` would on Debian: the next free uid in the root's
/// login.defs range, a user-private group named after the user unless `gid` is given,
/// a locked password unless a hash is given, the home folder populated from /etc/skel.
pub fn create(ctx: &Ctx<'_>, spec: &Spec) -> Result<(), ProviderError> {
    let defs = Defs::load(ctx.root);
    let (lock, mut db) = locked_db(ctx)?;
    let used_uids: Vec<u32> = db.users()?.iter().map(|u| u.uid).collect();
    let groups = db.groups()?;
    let used_gids: Vec<u32> = groups.iter().map(|g| g.gid).collect();
    let range = if spec.system { defs.sys_uid } else { defs.uid };
    let uid = match spec.uid {
        Some(uid) => uid,
        None => next_id(&used_uids, range, spec.system).ok_or_else(|| {
            ProviderError(format!(
                "user `{}`: no free uid in {}..{}; set uid",
                spec.name, range.0, range.1
            ))
        })?,
    };
    let gid = match &spec.gid {
        Some(g) => resolve_gid(&db, spec, g)?,
        None => match groups.iter().find(|g| g.name == spec.name) {
            Some(g) => g.gid,
            None => {
                let range = if spec.system { defs.sys_gid } else { defs.gid };
                let gid = if used_gids.contains(&uid) {
                    next_id(&used_gids, range, spec.system).ok_or_else(|| {
                        ProviderError(format!(
                            "user `{}`: no free gid for its group; set gid",
                            spec.name
                        ))
                    })?
                } else {
                    uid
                };
                db.add_group(&spec.name, gid, &[]);
                gid
            }
        },
    };
    let entry = PasswdEntry {
        name: spec.name.clone(),
        uid,
        gid,
        gecos: spec.comment.clone().unwrap_or_default(),
        home: spec
            .home
            .clone()
            .unwrap_or_else(|| spec.default_home(ctx.family)),
        shell: spec.shell.clone().unwrap_or_else(|| default_shell(ctx)),
    };
    db.add_user(&entry, spec.password.as_ref().map(|p| p.expose()));
    for g in spec.groups.iter().flatten() {
        let mut members = db.group(g)?.map(|g| g.members).unwrap_or_default();
        members.push(spec.name.clone());
        db.set_members(g, &members);
    }
    db.save()?;
    drop(lock);
    let home_dir = ctx.path(&entry.home);
    if spec.manage_home && !home_dir.exists() {
        home::create(&home_dir, &ctx.path("/etc/skel"), defs.home_mode, uid, gid)?;
    }
    Ok(())
}

/// The shell `useradd` would give: `SHELL=` in the root's /etc/default/useradd, else
/// `/bin/sh`.
fn default_shell(ctx: &Ctx<'_>) -> String {
    std::fs::read_to_string(ctx.path("/etc/default/useradd"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SHELL="))
        .map(|s| s.trim().trim_matches('"').to_string())
        .find(|s| s.starts_with('/'))
        .unwrap_or_else(|| "/bin/sh".to_string())
}

/// Applies `deltas` to an existing account.
pub fn modify(ctx: &Ctx<'_>, spec: &Spec, deltas: &[Delta]) -> Result<(), ProviderError> {
    let (_lock, mut db) = locked_db(ctx)?;
    let name = &spec.name;
    for d in deltas {
        match d {
            Delta::Uid(uid) => db.set_user_field(name, 2, &uid.to_string()),
            Delta::Gid(g) => {
                let gid = resolve_gid(&db, spec, g)?;
                db.set_user_field(name, 3, &gid.to_string());
            }
            Delta::Comment(c) => db.set_user_field(name, 4, c),
            Delta::Home(h) => db.set_user_field(name, 5, h),
            Delta::Shell(s) => db.set_user_field(name, 6, s),
            Delta::Groups(want) => set_groups_in(&mut db, spec, want)?,
            Delta::Password => {
                let hash = spec
                    .password
                    .as_ref()
                    .expect("a password delta has a password");
                db.set_hash(name, hash.expose());
            }
        }
    }
    db.save()
}

fn set_groups_in(db: &mut Db, spec: &Spec, want: &[String]) -> Result<(), ProviderError> {
    for g in db.groups()? {
        let member = g.members.contains(&spec.name);
        let listed = want.contains(&g.name);
        if member != listed {
            let members: Vec<String> = if listed {
                g.members
                    .iter()
                    .cloned()
                    .chain([spec.name.clone()])
                    .collect()
            } else {
                g.members
                    .iter()
                    .filter(|m| **m != spec.name)
                    .cloned()
                    .collect()
            };
            db.set_members(&g.name, &members);
        }
    }
    Ok(())
}

/// Makes `want` the exact supplementary groups of `spec.name` by editing /etc/group under
/// lock (NetBSD, whose `usermod -G` cannot remove a membership).
pub fn set_groups(ctx: &Ctx<'_>, spec: &Spec, want: &[String]) -> Result<(), ProviderError> {
    let (_lock, mut db) = locked_db(ctx)?;
    set_groups_in(&mut db, spec, want)?;
    db.save()
}

/// Sets the password hash by editing /etc/shadow under lock (illumos: `passwd` takes only
/// plaintext and there is no `chpasswd -e`).
pub fn set_password(ctx: &Ctx<'_>, spec: &Spec) -> Result<(), ProviderError> {
    let (_lock, mut db) = locked_db(ctx)?;
    db.set_hash(
        &spec.name,
        spec.password
            .as_ref()
            .expect("called with a password")
            .expose(),
    );
    db.save()
}

/// Removes the account, its user-private group when nothing else uses it, and — only for a
/// `dangerous` resource — its home folder.
pub fn delete(ctx: &Ctx<'_>, spec: &Spec, cur: &Current) -> Result<(), ProviderError> {
    let (lock, mut db) = locked_db(ctx)?;
    db.remove_user(&spec.name)?;
    let private = db
        .group(&spec.name)?
        .filter(|g| g.gid == cur.gid && g.members.is_empty());
    if private.is_some() && !db.users()?.iter().any(|u| u.gid == cur.gid) {
        db.remove_group(&spec.name);
    }
    db.save()?;
    drop(lock);
    if spec.purge_home {
        purge_home(ctx, spec, &cur.home)?;
    }
    Ok(())
}

/// Removes a home folder, refusing paths that cannot be a personal home (`/`, `/home`).
pub fn purge_home(ctx: &Ctx<'_>, spec: &Spec, home: &str) -> Result<(), ProviderError> {
    let depth = home
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .count();
    if depth < 2 || home.contains("/../") {
        return Err(ProviderError(format!(
            "user `{}`: not removing the home folder `{home}`: it does not look like a personal \
             home; remove it by hand",
            spec.name
        )));
    }
    match std::fs::remove_dir_all(ctx.path(home)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ProviderError(format!(
            "user `{}`: removing the home folder {home}: {e}",
            spec.name
        ))),
    }
}

/// Creates the home folder of an existing account whose folder is missing: macOS has its
/// own tool; elsewhere Vigo creates it as useradd would.
pub fn make_home(
    ctx: &Ctx<'_>,
    spec: &Spec,
    tool: Tool,
    acct: &Current,
) -> Result<(), ProviderError> {
    if tool == Tool::Dscl {
        return super::unix::run(
            ctx,
            Command::new("createhomedir", &["-c", "-u", &spec.name]),
            "creating the home folder",
        );
    }
    let defs = Defs::load(ctx.root);
    home::create(
        &ctx.path(&acct.home),
        &ctx.path("/etc/skel"),
        defs.home_mode,
        acct.uid,
        acct.gid,
    )
}
