//! macOS accounts through Directory Services: `dscl . -read/-list` to read, `dscl .
//! -create/-delete` to change records and `dseditgroup` for memberships. macOS has no
//! /etc/passwd of its users, and stores passwords as ShadowHashData (not crypt(3)), so
//! `password` is refused on macOS before anything runs.

use std::collections::BTreeMap;

use super::{Current, Delta, GroupInfo, Spec, World, files, unix::run};
use crate::providers::{Command, Ctx, ProviderError, run_checked};

/// Parses `dscl . -read` output: `Key: value` lines, where a long value continues on the
/// following lines indented by one space.
pub(crate) fn parse_record(text: &str) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(key) = &last {
                let v = map.entry(key.clone()).or_default();
                if !v.is_empty() {
                    v.push(' ');
                }
                v.push_str(cont.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            map.insert(key.to_string(), value.trim().to_string());
            last = Some(key.to_string());
        }
    }
    map
}

/// Parses `dscl . -list /Groups KEY` output: a name, then its values, per line.
pub(crate) fn parse_list(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?.to_string();
            Some((name, it.map(str::to_string).collect()))
        })
        .collect()
}

fn not_found(out: &crate::providers::Output) -> bool {
    let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    let text = String::from_utf8_lossy(&all);
    text.contains("eDSRecordNotFound") || text.contains("-14136")
}

fn dscl(args: &[&str]) -> Command {
    let mut all = vec!["."];
    all.extend_from_slice(args);
    Command::new("dscl", &all)
}

/// Reads every group with its gid and members.
pub(crate) fn read_groups(ctx: &Ctx<'_>) -> Result<Vec<GroupInfo>, ProviderError> {
    let what = "listing groups with dscl";
    let gids = run_checked(ctx, &dscl(&["-list", "/Groups", "PrimaryGroupID"]), what)?;
    let members = run_checked(ctx, &dscl(&["-list", "/Groups", "GroupMembership"]), what)?;
    let members: BTreeMap<String, Vec<String>> =
        parse_list(&String::from_utf8_lossy(&members.stdout))
            .into_iter()
            .collect();
    Ok(parse_list(&String::from_utf8_lossy(&gids.stdout))
        .into_iter()
        .filter_map(|(name, v)| {
            let gid = v.first()?.parse().ok()?;
            let members = members.get(&name).cloned().unwrap_or_default();
            Some(GroupInfo { name, gid, members })
        })
        .collect())
}

/// Reads the user record, the groups and (when the user is missing) the uids in use.
pub fn read(ctx: &Ctx<'_>, name: &str) -> Result<World, ProviderError> {
    let path = format!("/Users/{name}");
    let cmd = dscl(&[
        "-read",
        &path,
        "UniqueID",
        "PrimaryGroupID",
        "NFSHomeDirectory",
        "UserShell",
        "RealName",
    ]);
    let out = ctx.runner.run(&cmd)?;
    let record = parse_record(&String::from_utf8_lossy(&out.stdout));
    let user = if record.contains_key("UniqueID") {
        let num = |k: &str| record.get(k).and_then(|v| v.parse().ok());
        let text = |k: &str| record.get(k).cloned().unwrap_or_default();
        Some(Current {
            uid: num("UniqueID").ok_or_else(|| bad_record(name))?,
            gid: num("PrimaryGroupID").ok_or_else(|| bad_record(name))?,
            comment: text("RealName"),
            home: text("NFSHomeDirectory"),
            shell: text("UserShell"),
            hash: None,
        })
    } else if not_found(&out) {
        None
    } else {
        run_checked(ctx, &cmd, &format!("reading user `{name}` with dscl"))?;
        return Err(bad_record(name));
    };
    let uids = if user.is_none() {
        let out = run_checked(
            ctx,
            &dscl(&["-list", "/Users", "UniqueID"]),
            "listing users with dscl",
        )?;
        parse_list(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .filter_map(|(_, v)| v.first()?.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    Ok(World {
        user,
        groups: read_groups(ctx)?,
        uids,
    })
}

fn bad_record(name: &str) -> ProviderError {
    ProviderError(format!(
        "reading user `{name}` with dscl: the record has no numeric UniqueID or PrimaryGroupID; repair it"
    ))
}

fn set(ctx: &Ctx<'_>, spec: &Spec, key: &str, value: &str) -> Result<(), ProviderError> {
    let path = format!("/Users/{}", spec.name);
    run(
        ctx,
        dscl(&["-create", &path, key, value]),
        &format!("setting {key} of user `{}`", spec.name),
    )
}

fn membership(ctx: &Ctx<'_>, spec: &Spec, group: &str, add: bool) -> Result<(), ProviderError> {
    let op = if add { "-a" } else { "-d" };
    let cmd = Command::new(
        "dseditgroup",
        &["-o", "edit", op, &spec.name, "-t", "user", group],
    );
    run(
        ctx,
        cmd,
        &format!(
            "changing membership of user `{}` in group `{group}`",
            spec.name
        ),
    )
}

fn numeric_gid(spec: &Spec, world: &World, group: &str) -> Result<u32, ProviderError> {
    world.gid_of(group).ok_or_else(|| {
        ProviderError(format!(
            "user `{}`: group `{group}` does not exist; declare it as a group resource",
            spec.name
        ))
    })
}

/// Creates the record: uid above 500 (or, for `system`, the highest free one below 500, as
/// macOS daemons' accounts are), primary group `staff` (20) unless `gid` is given, a
/// disabled password (`*`). The home folder is created afterwards with `createhomedir`.
pub fn create(ctx: &Ctx<'_>, spec: &Spec, world: &World) -> Result<(), ProviderError> {
    let uid = match spec.uid {
        Some(u) => u,
        None if spec.system => (200..500)
            .rev()
            .find(|u| !world.uids.contains(u))
            .ok_or_else(|| {
                ProviderError(format!(
                    "user `{}`: no free system uid below 500; set uid",
                    spec.name
                ))
            })?,
        None => world
            .uids
            .iter()
            .copied()
            .filter(|u| *u >= 501)
            .max()
            .map_or(501, |u| u + 1),
    };
    let gid = match &spec.gid {
        Some(g) => numeric_gid(spec, world, g)?,
        None => 20,
    };
    let path = format!("/Users/{}", spec.name);
    run(
        ctx,
        dscl(&["-create", &path]),
        &format!("creating user `{}`", spec.name),
    )?;
    set(ctx, spec, "UniqueID", &uid.to_string())?;
    set(ctx, spec, "PrimaryGroupID", &gid.to_string())?;
    let shell = spec.shell.clone().unwrap_or_else(|| {
        if spec.system {
            "/usr/bin/false"
        } else {
            "/bin/zsh"
        }
        .into()
    });
    set(ctx, spec, "UserShell", &shell)?;
    set(
        ctx,
        spec,
        "NFSHomeDirectory",
        &spec
            .home
            .clone()
            .unwrap_or_else(|| spec.default_home(ctx.family)),
    )?;
    if let Some(c) = &spec.comment {
        set(ctx, spec, "RealName", c)?;
    }
    set(ctx, spec, "Password", "*")?;
    if spec.system {
        set(ctx, spec, "IsHidden", "1")?;
    }
    for g in spec.groups.iter().flatten() {
        membership(ctx, spec, g, true)?;
    }
    Ok(())
}

/// Changes the fields in `deltas`.
pub fn modify(
    ctx: &Ctx<'_>,
    spec: &Spec,
    deltas: &[Delta],
    world: &World,
) -> Result<(), ProviderError> {
    for d in deltas {
        match d {
            Delta::Uid(u) => set(ctx, spec, "UniqueID", &u.to_string())?,
            Delta::Gid(g) => set(
                ctx,
                spec,
                "PrimaryGroupID",
                &numeric_gid(spec, world, g)?.to_string(),
            )?,
            Delta::Comment(c) => set(ctx, spec, "RealName", c)?,
            Delta::Home(h) => set(ctx, spec, "NFSHomeDirectory", h)?,
            Delta::Shell(s) => set(ctx, spec, "UserShell", s)?,
            Delta::Groups(want) => {
                let have = world.groups_of(&spec.name);
                for g in want.iter().filter(|g| !have.contains(g)) {
                    membership(ctx, spec, g, true)?;
                }
                for g in have.iter().filter(|g| !want.contains(g)) {
                    membership(ctx, spec, g, false)?;
                }
            }
            Delta::Password => unreachable!("password is refused on macOS when the spec is parsed"),
        }
    }
    Ok(())
}

/// Removes the user from its groups, then the record; the home folder only when
/// `dangerous`.
pub fn delete(
    ctx: &Ctx<'_>,
    spec: &Spec,
    world: &World,
    cur: &Current,
) -> Result<(), ProviderError> {
    for g in world.groups_of(&spec.name) {
        membership(ctx, spec, &g, false)?;
    }
    let path = format!("/Users/{}", spec.name);
    run(
        ctx,
        dscl(&["-delete", &path]),
        &format!("removing user `{}`", spec.name),
    )?;
    if spec.purge_home {
        files::purge_home(ctx, spec, &cur.home)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_lists_parse() {
        let r = parse_record(
            "NFSHomeDirectory: /Users/alice\nPrimaryGroupID: 20\nRealName:\n Alice Nguyen\nUniqueID: 501\nUserShell: /bin/zsh\n",
        );
        assert_eq!(r["RealName"], "Alice Nguyen");
        assert_eq!(r["UniqueID"], "501");
        let l = parse_list("admin                    root alice\nstaff                    root\n");
        assert_eq!(
            l[0],
            (
                "admin".to_string(),
                vec!["root".to_string(), "alice".to_string()]
            )
        );
    }
}
