//! Command plans for groups per family, and the direct-edit backend for a `--root`.
//!
//! Members are set with the family's exact-list tool where one exists (`gpasswd -M`,
//! `pw groupmod -M`); OpenBSD and illumos only manage memberships per user, so each
//! affected user gets its new list (`usermod -G`/`-S`); NetBSD has no tool that removes a
//! membership, so its /etc/group is edited under lock; macOS uses `dseditgroup` and
//! Windows `net localgroup`.

use super::{GroupWorld, Spec};
use crate::accounts::db::{Defs, next_id};
use crate::family::Family;
use crate::providers::user::{Tool, files, unix::run};
use crate::providers::{Command, Ctx, ProviderError};

fn cmd(program: &str, args: &[&str]) -> Command {
    Command::new(program, args)
}

/// `pw [-R ROOT] SUB NAME`.
fn pw(ctx: &Ctx<'_>, rooted: bool, sub: &str, name: &str) -> Command {
    let root = ctx.root.display().to_string();
    let mut args = if rooted {
        vec!["-R", root.as_str()]
    } else {
        Vec::new()
    };
    args.extend([sub, name]);
    cmd("pw", &args)
}

fn push(c: &mut Command, args: &[&str]) {
    c.args.extend(args.iter().map(|a| a.to_string()));
}

/// The gid for a new group where the tool cannot pick one itself (or picks it from the
/// wrong range): `None` lets the tool choose.
fn pick_gid(
    ctx: &Ctx<'_>,
    tool: Tool,
    spec: &Spec,
    world: &GroupWorld,
) -> Result<Option<u32>, ProviderError> {
    if spec.gid.is_some() {
        return Ok(spec.gid);
    }
    let used: Vec<u32> = world.all.iter().map(|g| g.gid).collect();
    let range = match tool {
        Tool::Files => {
            let defs = Defs::load(ctx.root);
            if spec.system { defs.sys_gid } else { defs.gid }
        }
        // macOS: regular groups above 500 like users, system groups below.
        Tool::Dscl if spec.system => (200, 499),
        Tool::Dscl => (501, 60000),
        // BSD and illumos groupadd have no -r: pick from the system range ourselves.
        Tool::Useradd | Tool::Pw { .. } if spec.system && !ctx.family.is_linux() => (100, 999),
        _ => return Ok(None),
    };
    let system = spec.system && tool != Tool::Dscl;
    let gid = next_id(&used, range, system).or_else(|| next_id(&used, range, !system));
    gid.map(Some).ok_or_else(|| {
        ProviderError(format!(
            "group `{}`: no free gid in {}..{}; set gid",
            spec.name, range.0, range.1
        ))
    })
}

/// Creates the group with `members` (already reduced to existing users).
pub fn create(
    ctx: &Ctx<'_>,
    tool: Tool,
    spec: &Spec,
    world: &GroupWorld,
    members: &[String],
) -> Result<(), ProviderError> {
    let what = format!("creating group `{}`", spec.name);
    let gid = pick_gid(ctx, tool, spec, world)?;
    match tool {
        Tool::Files => {
            let (_lock, mut db) = files::locked_db(ctx)?;
            db.add_group(&spec.name, gid.expect("files always pick a gid"), members);
            return db.save();
        }
        Tool::Pw { rooted } => {
            let mut c = pw(ctx, rooted, "groupadd", &spec.name);
            if let Some(gid) = gid {
                push(&mut c, &["-g", &gid.to_string()]);
            }
            if !members.is_empty() {
                push(&mut c, &["-M", &members.join(",")]);
            }
            return run(ctx, c, &what);
        }
        Tool::Useradd => {
            let mut c = cmd("groupadd", &[]);
            if spec.system && ctx.family.is_linux() {
                push(&mut c, &["-r"]);
            }
            if let Some(gid) = gid {
                push(&mut c, &["-g", &gid.to_string()]);
            }
            push(&mut c, &[&spec.name]);
            run(ctx, c, &what)?;
        }
        Tool::Dscl => {
            let path = format!("/Groups/{}", spec.name);
            run(ctx, cmd("dscl", &[".", "-create", &path]), &what)?;
            let gid = gid.expect("dscl always picks a gid").to_string();
            run(
                ctx,
                cmd("dscl", &[".", "-create", &path, "PrimaryGroupID", &gid]),
                &what,
            )?;
        }
        Tool::Windows => run(ctx, cmd("net", &["localgroup", &spec.name, "/add"]), &what)?,
    }
    if !members.is_empty() {
        set_members(ctx, tool, spec, world, &[], members)?;
    }
    Ok(())
}

/// Changes the gid and/or the member list.
pub fn modify(
    ctx: &Ctx<'_>,
    tool: Tool,
    spec: &Spec,
    world: &GroupWorld,
    gid: Option<u32>,
    members: Option<&[String]>,
) -> Result<(), ProviderError> {
    let what = format!("modifying group `{}`", spec.name);
    let current = world
        .group
        .as_ref()
        .map(|g| g.members.clone())
        .unwrap_or_default();
    match tool {
        Tool::Files => {
            let (_lock, mut db) = files::locked_db(ctx)?;
            if let Some(gid) = gid {
                db.set_gid(&spec.name, gid);
            }
            if let Some(m) = members {
                db.set_members(&spec.name, m);
            }
            return db.save();
        }
        Tool::Pw { rooted } => {
            let mut c = pw(ctx, rooted, "groupmod", &spec.name);
            if let Some(gid) = gid {
                push(&mut c, &["-g", &gid.to_string()]);
            }
            if let Some(m) = members {
                push(&mut c, &["-M", &m.join(",")]);
            }
            return run(ctx, c, &what);
        }
        Tool::Useradd => {
            if let Some(gid) = gid {
                run(
                    ctx,
                    cmd("groupmod", &["-g", &gid.to_string(), &spec.name]),
                    &what,
                )?;
            }
        }
        Tool::Dscl => {
            if let Some(gid) = gid {
                let path = format!("/Groups/{}", spec.name);
                run(
                    ctx,
                    cmd(
                        "dscl",
                        &[".", "-create", &path, "PrimaryGroupID", &gid.to_string()],
                    ),
                    &what,
                )?;
            }
        }
        Tool::Windows => {}
    }
    if let Some(m) = members {
        set_members(ctx, tool, spec, world, &current, m)?;
    }
    Ok(())
}

/// Makes `want` the member list, from `have`, with the family's membership tool.
fn set_members(
    ctx: &Ctx<'_>,
    tool: Tool,
    spec: &Spec,
    world: &GroupWorld,
    have: &[String],
    want: &[String],
) -> Result<(), ProviderError> {
    let what = format!("setting the members of group `{}`", spec.name);
    let family = ctx.family;
    let added: Vec<&String> = want.iter().filter(|m| !contains(family, have, m)).collect();
    let removed: Vec<&String> = have.iter().filter(|m| !contains(family, want, m)).collect();
    match (tool, family) {
        (Tool::Useradd, f) if f.is_linux() => run(
            ctx,
            cmd("gpasswd", &["-M", &want.join(","), &spec.name]),
            &what,
        ),
        (Tool::Useradd, Family::NetBsd) => {
            let (_lock, mut db) = files::locked_db(ctx)?;
            db.set_members(&spec.name, want);
            db.save()
        }
        (Tool::Useradd, Family::OpenBsd) => {
            for user in added {
                run(ctx, cmd("usermod", &["-G", &spec.name, user]), &what)?;
            }
            for user in removed {
                let rest: Vec<String> = world
                    .groups_of(user)
                    .into_iter()
                    .filter(|g| *g != spec.name)
                    .collect();
                run(ctx, cmd("usermod", &["-S", &rest.join(","), user]), &what)?;
            }
            Ok(())
        }
        (Tool::Useradd, _) => {
            // illumos: usermod -G replaces a user's whole supplementary list.
            for user in added.into_iter().chain(removed) {
                let mut list: Vec<String> = world
                    .groups_of(user)
                    .into_iter()
                    .filter(|g| *g != spec.name)
                    .collect();
                if want.contains(user) {
                    list.push(spec.name.clone());
                }
                run(ctx, cmd("usermod", &["-G", &list.join(","), user]), &what)?;
            }
            Ok(())
        }
        (Tool::Dscl, _) => {
            for (users, op) in [(added, "-a"), (removed, "-d")] {
                for user in users {
                    run(
                        ctx,
                        cmd(
                            "dseditgroup",
                            &["-o", "edit", op, user, "-t", "user", &spec.name],
                        ),
                        &what,
                    )?;
                }
            }
            Ok(())
        }
        (Tool::Windows, _) => {
            for (users, op) in [(added, "/add"), (removed, "/delete")] {
                for user in users {
                    run(
                        ctx,
                        cmd("net", &["localgroup", &spec.name, user, op]),
                        &what,
                    )?;
                }
            }
            Ok(())
        }
        (Tool::Files | Tool::Pw { .. }, _) => {
            unreachable!("files and pw set members with the group")
        }
    }
}

fn contains(family: Family, list: &[String], name: &str) -> bool {
    list.iter().any(|m| {
        if family == Family::Windows {
            m.eq_ignore_ascii_case(name)
        } else {
            m == name
        }
    })
}

/// Removes the group.
pub fn delete(ctx: &Ctx<'_>, tool: Tool, spec: &Spec) -> Result<(), ProviderError> {
    let what = format!("removing group `{}`", spec.name);
    let c = match tool {
        Tool::Files => {
            let (_lock, mut db) = files::locked_db(ctx)?;
            if let Some(user) = db
                .users()?
                .into_iter()
                .find(|u| Some(u.gid) == db.group(&spec.name).ok().flatten().map(|g| g.gid))
            {
                return Err(ProviderError(format!(
                    "removing group `{}`: it is the primary group of user `{}`; change or remove that user first",
                    spec.name, user.name
                )));
            }
            db.remove_group(&spec.name);
            return db.save();
        }
        Tool::Pw { rooted } => pw(ctx, rooted, "groupdel", &spec.name),
        Tool::Useradd => cmd("groupdel", &[&spec.name]),
        Tool::Dscl => cmd("dscl", &[".", "-delete", &format!("/Groups/{}", spec.name)]),
        Tool::Windows => cmd("net", &["localgroup", &spec.name, "/delete"]),
    };
    run(ctx, c, &what)
}
