//! Command plans for the Unix account tools: shadow-utils `useradd`/`usermod`/`userdel`
//! (Linux), their BSD and illumos namesakes (whose flags differ in the places noted), and
//! FreeBSD's `pw`. Password hashes never go on our argv: `chpasswd -e` and `pw -H 0` read
//! them on stdin, and on NetBSD/OpenBSD (which only take `usermod -p HASH`) a `sh` reads
//! the hash from stdin and execs usermod, so no command Vigo records or reports holds it.

use super::{Delta, Spec, Tool, World, files};
use crate::family::Family;
use crate::providers::{Command, Ctx, ProviderError, run_checked};

/// Runs `cmd`, failing with `what` and the tool's stderr unless it exits 0.
pub fn run(ctx: &Ctx<'_>, cmd: Command, what: &str) -> Result<(), ProviderError> {
    run_checked(ctx, &cmd, what).map(|_| ())
}

fn push(cmd: &mut Command, args: &[&str]) {
    cmd.args.extend(args.iter().map(|a| a.to_string()));
}

/// `pw [-R ROOT] SUB NAME` or `SUB` (useradd, usermod, userdel) for the other tools; the
/// caller appends NAME at the end for those.
fn base(ctx: &Ctx<'_>, tool: Tool, sub: &str, name: &str) -> Command {
    match tool {
        Tool::Pw { rooted } => {
            let mut c = Command::new("pw", &[]);
            if rooted {
                push(&mut c, &["-R", &ctx.root.display().to_string()]);
            }
            push(&mut c, &[sub, name]);
            c
        }
        _ => Command::new(sub, &[]),
    }
}

fn finish(mut cmd: Command, tool: Tool, name: &str) -> Command {
    if !matches!(tool, Tool::Pw { .. }) {
        push(&mut cmd, &[name]);
    }
    cmd
}

/// The highest free uid of the BSD/illumos system range (100–999) for `system: true`
/// without a uid, as shadow-utils' `useradd -r` picks it: those useradds have no `-r`.
fn system_uid(world: &World) -> Option<u32> {
    (100..1000).rev().find(|id| !world.uids.contains(id))
}

fn groups_flag(cmd: &mut Command, family: Family, groups: &[String]) {
    if family == Family::NetBsd {
        // NetBSD's -G takes one group and may be repeated.
        for g in groups {
            push(cmd, &["-G", g]);
        }
    } else {
        push(cmd, &["-G", &groups.join(",")]);
    }
}

/// Creates the account.
pub fn create(ctx: &Ctx<'_>, tool: Tool, spec: &Spec, world: &World) -> Result<(), ProviderError> {
    let family = ctx.family;
    let mut c = base(ctx, tool, "useradd", &spec.name);
    let uid = spec.uid.or_else(|| {
        if spec.system && !family.is_linux() {
            system_uid(world)
        } else {
            None
        }
    });
    if spec.system && family.is_linux() {
        push(&mut c, &["-r"]);
    }
    if let Some(uid) = uid {
        push(&mut c, &["-u", &uid.to_string()]);
    }
    let own_group = world.groups.iter().any(|g| g.name == spec.name);
    match &spec.gid {
        Some(g) => push(&mut c, &["-g", g]),
        // A group named after the user already exists (declared as a group resource): use
        // it, since useradd would otherwise refuse to create the user-private group.
        None if own_group => push(&mut c, &["-g", &spec.name]),
        // NetBSD and OpenBSD default to a shared group; `=uid` gives a user-private one as
        // on Linux and FreeBSD.
        None if matches!(family, Family::NetBsd | Family::OpenBsd) => push(&mut c, &["-g", "=uid"]),
        None => {}
    }
    if let Some(groups) = spec.groups.as_ref().filter(|g| !g.is_empty()) {
        groups_flag(&mut c, family, groups);
    }
    for (flag, value) in [
        ("-c", &spec.comment),
        ("-d", &spec.home),
        ("-s", &spec.shell),
    ] {
        if let Some(v) = value {
            push(&mut c, &[flag, v]);
        }
    }
    if spec.manage_home {
        push(&mut c, &["-m"]);
    } else if family.is_linux() {
        push(&mut c, &["-M"]);
    }
    run(
        ctx,
        finish(c, tool, &spec.name),
        &format!("creating user `{}`", spec.name),
    )?;
    if spec.password.is_some() {
        set_password(ctx, tool, spec)?;
    }
    Ok(())
}

/// Changes the fields in `deltas` of an existing account. `usermod -d` does not move the
/// old home's content (no `-m`): moving data is left to the operator.
pub fn modify(
    ctx: &Ctx<'_>,
    tool: Tool,
    spec: &Spec,
    deltas: &[Delta],
    _world: &World,
) -> Result<(), ProviderError> {
    let family = ctx.family;
    let mut c = base(ctx, tool, "usermod", &spec.name);
    let mut flags = 0;
    let mut netbsd_groups = None;
    for d in deltas {
        match d {
            Delta::Uid(uid) => push(&mut c, &["-u", &uid.to_string()]),
            Delta::Gid(g) => push(&mut c, &["-g", g]),
            Delta::Comment(v) => push(&mut c, &["-c", v]),
            Delta::Home(v) => push(&mut c, &["-d", v]),
            Delta::Shell(v) => push(&mut c, &["-s", v]),
            // OpenBSD's -G appends; its -S sets the exact list.
            Delta::Groups(g) if family == Family::OpenBsd && tool == Tool::Useradd => {
                push(&mut c, &["-S", &g.join(",")]);
            }
            Delta::Groups(g) if family == Family::NetBsd && tool == Tool::Useradd => {
                netbsd_groups = Some(g);
                continue;
            }
            // shadow-utils, illumos and pw: -G sets the exact list ("" clears it).
            Delta::Groups(g) => push(&mut c, &["-G", &g.join(",")]),
            Delta::Password => continue,
        }
        flags += 1;
    }
    if flags > 0 {
        run(
            ctx,
            finish(c, tool, &spec.name),
            &format!("modifying user `{}`", spec.name),
        )?;
    }
    if let Some(groups) = netbsd_groups {
        files::set_groups(ctx, spec, groups)?;
    }
    if deltas.contains(&Delta::Password) {
        set_password(ctx, tool, spec)?;
    }
    Ok(())
}

/// Sets the password hash without putting it on argv (see the module comment).
fn set_password(ctx: &Ctx<'_>, tool: Tool, spec: &Spec) -> Result<(), ProviderError> {
    let hash = spec
        .password
        .as_ref()
        .expect("called with a password")
        .expose();
    let what = format!("setting the password of user `{}`", spec.name);
    let mut cmd = match (tool, ctx.family) {
        (Tool::Pw { .. }, _) => {
            let mut c = base(ctx, tool, "usermod", &spec.name);
            push(&mut c, &["-H", "0"]);
            c.stdin = Some(format!("{hash}\n").into_bytes());
            return run(ctx, c, &what);
        }
        (_, Family::Illumos) => return files::set_password(ctx, spec),
        (_, Family::NetBsd | Family::OpenBsd) => Command::new(
            "sh",
            &[
                "-c",
                "IFS= read -r h && exec usermod -p \"$h\" \"$1\"",
                "sh",
                &spec.name,
            ],
        ),
        _ => Command::new("chpasswd", &["-e"]),
    };
    let line = if cmd.program == "chpasswd" {
        format!("{}:{hash}\n", spec.name)
    } else {
        format!("{hash}\n")
    };
    cmd.stdin = Some(line.into_bytes());
    run(ctx, cmd, &what)
}

/// Removes the account; its home folder too only for a `dangerous` resource.
pub fn delete(ctx: &Ctx<'_>, tool: Tool, spec: &Spec) -> Result<(), ProviderError> {
    let mut c = base(ctx, tool, "userdel", &spec.name);
    if spec.purge_home {
        push(&mut c, &["-r"]);
    }
    run(
        ctx,
        finish(c, tool, &spec.name),
        &format!("removing user `{}`", spec.name),
    )
}
