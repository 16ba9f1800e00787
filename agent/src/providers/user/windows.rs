//! Windows local accounts: PowerShell's LocalAccounts cmdlets (`Get-LocalUser`,
//! `New-LocalUser`, `Set-LocalUser`, `Remove-LocalUser`) and `net localgroup` for
//! memberships. Reads go through one PowerShell script whose output is Vigo's own
//! `key=value` lines, so parsing does not depend on the system's display language.
//! Windows has no uid, gid, shell, crypt(3) hash or sudo: those attributes are refused when
//! the resource is parsed; `comment` is the account's full name.

use super::{Current, Delta, GroupInfo, Spec, World, unix::run};
use crate::providers::{Command, Ctx, ProviderError, run_checked};

/// Quotes `s` as a PowerShell single-quoted string. PowerShell also treats the
/// typographic single quotes as quote characters, so they are doubled too.
pub(crate) fn ps_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Checks a Windows account or group name: spaces are allowed (`Remote Desktop Users`),
/// the characters Windows forbids in names, control characters and a leading `-` or `/`
/// (which `net` would read as an option) are not.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ProviderError> {
    let ok = !name.trim().is_empty()
        && name.len() <= 256
        && !name.starts_with(['-', '/'])
        && !name
            .chars()
            .any(|c| c.is_control() || "\"/\\[]:;|=,+*?<>@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ProviderError(format!(
            "{what} name `{}` is not a valid Windows account name",
            name.escape_debug()
        )))
    }
}

/// `powershell.exe -NoProfile -NonInteractive -Command SCRIPT`.
pub(crate) fn powershell(script: &str) -> Command {
    Command::new(
        "powershell.exe",
        &["-NoProfile", "-NonInteractive", "-Command", script],
    )
}

pub(super) fn read_script(name: &str) -> String {
    let n = ps_quote(name);
    format!(
        "$u = Get-LocalUser -Name {n} -ErrorAction SilentlyContinue; \
         if ($null -eq $u) {{ 'absent'; exit 0 }}; \
         'fullname=' + $u.FullName; \
         foreach ($g in Get-LocalGroup) {{ \
         foreach ($m in @(Get-LocalGroupMember -Group $g.Name -ErrorAction SilentlyContinue)) {{ \
         if ($m.SID -eq $u.SID) {{ 'group=' + $g.Name }} }} }}"
    )
}

/// Reads the account and the groups it belongs to.
pub fn read(ctx: &Ctx<'_>, name: &str) -> Result<World, ProviderError> {
    let out = run_checked(
        ctx,
        &powershell(&read_script(name)),
        &format!("reading user `{name}`"),
    )?;
    Ok(parse_read(name, &String::from_utf8_lossy(&out.stdout)))
}

fn parse_read(name: &str, text: &str) -> World {
    let mut world = World::default();
    if text.lines().any(|l| l.trim() == "absent") {
        return world;
    }
    let mut cur = Current {
        uid: 0,
        gid: 0,
        comment: String::new(),
        home: String::new(),
        shell: String::new(),
        hash: None,
    };
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix("fullname=") {
            cur.comment = v.to_string();
        } else if let Some(g) = line.strip_prefix("group=") {
            world.groups.push(GroupInfo {
                name: g.to_string(),
                gid: 0,
                members: vec![name.to_string()],
            });
        }
    }
    world.user = Some(cur);
    world
}

fn membership(ctx: &Ctx<'_>, spec: &Spec, group: &str, add: bool) -> Result<(), ProviderError> {
    let op = if add { "/add" } else { "/delete" };
    let cmd = Command::new("net", &["localgroup", group, &spec.name, op]);
    run(
        ctx,
        cmd,
        &format!(
            "changing membership of user `{}` in group `{group}`",
            spec.name
        ),
    )
}

/// Creates the account without a password (`system` has no Windows equivalent and is
/// ignored), then adds it to its groups.
pub fn create(ctx: &Ctx<'_>, spec: &Spec) -> Result<(), ProviderError> {
    let mut script = format!("New-LocalUser -Name {} -NoPassword", ps_quote(&spec.name));
    if let Some(c) = &spec.comment {
        script.push_str(&format!(" -FullName {}", ps_quote(c)));
    }
    run(
        ctx,
        powershell(&script),
        &format!("creating user `{}`", spec.name),
    )?;
    for g in spec.groups.iter().flatten() {
        membership(ctx, spec, g, true)?;
    }
    Ok(())
}

/// Changes the full name and group memberships.
pub fn modify(
    ctx: &Ctx<'_>,
    spec: &Spec,
    deltas: &[Delta],
    world: &World,
) -> Result<(), ProviderError> {
    for d in deltas {
        match d {
            Delta::Comment(c) => {
                let script = format!(
                    "Set-LocalUser -Name {} -FullName {}",
                    ps_quote(&spec.name),
                    ps_quote(c)
                );
                run(
                    ctx,
                    powershell(&script),
                    &format!("modifying user `{}`", spec.name),
                )?;
            }
            Delta::Groups(want) => {
                let have = world.groups_of(&spec.name);
                for g in want.iter().filter(|g| !have.contains(g)) {
                    membership(ctx, spec, g, true)?;
                }
                for g in have.iter().filter(|g| !want.contains(g)) {
                    membership(ctx, spec, g, false)?;
                }
            }
            // Refused for Windows when the spec is parsed.
            _ => {}
        }
    }
    Ok(())
}

/// Removes the account (its profile folder stays, as with `Remove-LocalUser`).
pub fn delete(ctx: &Ctx<'_>, spec: &Spec) -> Result<(), ProviderError> {
    let script = format!("Remove-LocalUser -Name {}", ps_quote(&spec.name));
    run(
        ctx,
        powershell(&script),
        &format!("removing user `{}`", spec.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_parsing() {
        assert_eq!(
            ps_quote("O'Brien \u{2019}x"),
            "'O''Brien \u{2019}\u{2019}x'"
        );
        let w = parse_read(
            "alice",
            "fullname=Alice Nguyen\r\ngroup=Administrators\r\ngroup=Users\r\n",
        );
        assert_eq!(w.user.as_ref().unwrap().comment, "Alice Nguyen");
        assert_eq!(w.groups_of("alice"), ["Administrators", "Users"]);
        assert!(parse_read("alice", "absent\r\n").user.is_none());
    }
}
