//! Script-based inits: Alpine's OpenRC, FreeBSD's rc.d with `sysrc`, NetBSD's rc.d with a
//! managed line in /etc/rc.conf, and OpenBSD's `rcctl`.
//!
//! FreeBSD, NetBSD and OpenBSD refuse `start` for a service that is not enabled; Vigo then
//! uses their "one-shot" forms (`onestart`, `rcctl -f start`), so `state: running` with
//! `enabled: false` works as it reads: running now, not at boot.

use super::{Init, Status, Steps, apply_steps, check, run, text, unknown};
use crate::accounts::os;
use crate::providers::{Command, Ctx, ProviderError};

/// The rc.conf variable of a service: rc.subr names use `_` where the script name has `-`.
fn rcvar(name: &str) -> String {
    name.replace(['-', '.'], "_")
}

/// Alpine's OpenRC: `rc-service` and `rc-update` in the `default` runlevel.
pub struct OpenRc;

/// Parses `rc-update show default`: whether `name` is listed (` nginx | default`).
pub fn in_runlevel(name: &str, text: &str) -> bool {
    text.lines()
        .any(|l| l.split('|').next().map(str::trim) == Some(name))
}

impl Init for OpenRc {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        let out = text(&check(ctx, "rc-service", &[name, "status"])?);
        if out.contains("does not exist") {
            return Err(unknown(name, "OpenRC"));
        }
        let levels = text(&check(ctx, "rc-update", &["show", "default"])?);
        Ok(Status {
            running: out.contains("status: started"),
            enabled: Some(in_runlevel(name, &levels)),
            ..Status::default()
        })
    }

    fn apply(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        cur: &Status,
        run_it: bool,
        enable: Option<bool>,
    ) -> Result<(), ProviderError> {
        let steps = Steps {
            enable: Command::new("rc-update", &["add", name, "default"]),
            disable: Command::new("rc-update", &["del", name, "default"]),
            start: vec![(Command::new("rc-service", &[name, "start"]), "starting")],
            stop: Command::new("rc-service", &[name, "stop"]),
        };
        apply_steps(ctx, name, cur, run_it, enable, steps)
    }

    fn refresh_cmd(&self, name: &str, _cur: &Status, reload: bool) -> Command {
        Command::new(
            "rc-service",
            &[name, if reload { "reload" } else { "restart" }],
        )
    }
}

/// The verb for an rc.d script: the plain one when the service is enabled, the `one…`
/// form (which ignores the rc.conf switch) when it is not.
fn rc_verb(verb: &str, enabled: bool) -> String {
    if enabled {
        verb.to_string()
    } else {
        format!("one{verb}")
    }
}

/// FreeBSD: `service NAME onestatus` / `service NAME enabled` to read, `sysrc` to enable.
pub struct FreeBsd;

impl Init for FreeBsd {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        // onestatus answers whether or not the service is enabled.
        let status = check(ctx, "service", &[name, "onestatus"])?;
        if text(&status).contains("does not exist") {
            return Err(unknown(name, "rc.d"));
        }
        let enabled = check(ctx, "service", &[name, "enabled"])?;
        Ok(Status {
            running: status.success(),
            enabled: Some(enabled.success()),
            ..Status::default()
        })
    }

    fn apply(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        cur: &Status,
        run_it: bool,
        enable: Option<bool>,
    ) -> Result<(), ProviderError> {
        let var = rcvar(name);
        if enable == Some(true) {
            run(
                ctx,
                Command::new("sysrc", &[&format!("{var}_enable=YES")]),
                "enabling",
                name,
            )?;
        }
        let enabled_now = enable.unwrap_or(cur.enabled == Some(true));
        if run_it && !cur.running {
            run(
                ctx,
                Command::new("service", &[name, &rc_verb("start", enabled_now)]),
                "starting",
                name,
            )?;
        }
        if !run_it && cur.running {
            // Stopping happens before disabling: the current switch decides the verb.
            run(
                ctx,
                Command::new(
                    "service",
                    &[name, &rc_verb("stop", cur.enabled == Some(true))],
                ),
                "stopping",
                name,
            )?;
        }
        if enable == Some(false) {
            run(
                ctx,
                Command::new("sysrc", &[&format!("{var}_enable=NO")]),
                "disabling",
                name,
            )?;
        }
        Ok(())
    }

    fn refresh_cmd(&self, name: &str, cur: &Status, reload: bool) -> Command {
        let verb = rc_verb(
            if reload { "reload" } else { "restart" },
            cur.enabled == Some(true),
        );
        Command::new("service", &[name, &verb])
    }
}

/// NetBSD: `/etc/rc.d/NAME onestatus`; enabled is `NAME=YES` in /etc/rc.conf (over
/// /etc/defaults/rc.conf), which Vigo edits itself since NetBSD has no sysrc.
pub struct NetBsd;

/// The value of `var` after reading rc.conf-style `text` (the last plain assignment).
pub fn rc_conf_value(text: &str, var: &str) -> Option<bool> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let value = l.strip_prefix(var)?.strip_prefix('=')?;
            let value = value
                .split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            Some(matches!(
                value.to_ascii_lowercase().as_str(),
                "yes" | "true" | "on" | "1"
            ))
        })
        .next_back()
}

/// `text` with every plain assignment of `var` replaced by `var=VALUE` (the first kept,
/// later ones dropped so one line decides), or the line appended when there is none.
pub fn set_rc_conf(text: &str, var: &str, on: bool) -> String {
    let line = format!("{var}={}", if on { "YES" } else { "NO" });
    let mut out = Vec::new();
    let mut done = false;
    for l in text.lines() {
        let assigns = l
            .trim()
            .strip_prefix(var)
            .is_some_and(|r| r.starts_with('='));
        if !assigns {
            out.push(l.to_string());
        } else if !done {
            out.push(line.clone());
            done = true;
        }
    }
    if !done {
        out.push(line);
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

impl NetBsd {
    fn script(name: &str) -> String {
        format!("/etc/rc.d/{name}")
    }

    fn set_enabled(ctx: &Ctx<'_>, name: &str, on: bool) -> Result<(), ProviderError> {
        let path = ctx.path("/etc/rc.conf");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let (mode, uid, gid) = os::meta(&path)?.map_or((0o644, 0, 0), |m| (m.mode, m.uid, m.gid));
        os::write_atomic(
            &path,
            set_rc_conf(&current, &rcvar(name), on).as_bytes(),
            mode,
            uid,
            gid,
        )
        .map_err(|e| {
            ProviderError(format!(
                "{} service `{name}`: {e}",
                if on { "enabling" } else { "disabling" }
            ))
        })
    }
}

impl Init for NetBsd {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        if !ctx.path(&NetBsd::script(name)).exists() {
            return Err(unknown(name, "rc.d (no /etc/rc.d script)"));
        }
        let status = check(ctx, &NetBsd::script(name), &["onestatus"])?;
        let var = rcvar(name);
        let read = |p: &str| std::fs::read_to_string(ctx.path(p)).unwrap_or_default();
        let enabled = rc_conf_value(&read("/etc/rc.conf"), &var)
            .or_else(|| rc_conf_value(&read("/etc/defaults/rc.conf"), &var))
            .unwrap_or(false);
        Ok(Status {
            running: status.success(),
            enabled: Some(enabled),
            ..Status::default()
        })
    }

    fn apply(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        cur: &Status,
        run_it: bool,
        enable: Option<bool>,
    ) -> Result<(), ProviderError> {
        let script = NetBsd::script(name);
        if enable == Some(true) {
            NetBsd::set_enabled(ctx, name, true)?;
        }
        let enabled_now = enable.unwrap_or(cur.enabled == Some(true));
        if run_it && !cur.running {
            run(
                ctx,
                Command::new(&script, &[&rc_verb("start", enabled_now)]),
                "starting",
                name,
            )?;
        }
        if !run_it && cur.running {
            run(
                ctx,
                Command::new(&script, &[&rc_verb("stop", cur.enabled == Some(true))]),
                "stopping",
                name,
            )?;
        }
        if enable == Some(false) {
            NetBsd::set_enabled(ctx, name, false)?;
        }
        Ok(())
    }

    fn refresh_cmd(&self, name: &str, cur: &Status, reload: bool) -> Command {
        let verb = rc_verb(
            if reload { "reload" } else { "restart" },
            cur.enabled == Some(true),
        );
        Command::new(&NetBsd::script(name), &[&verb])
    }
}

/// OpenBSD's rcctl. `-f` starts a daemon that is not enabled.
pub struct Rcctl;

impl Init for Rcctl {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        let status = check(ctx, "rcctl", &["check", name])?;
        if text(&status).contains("does not exist") {
            return Err(unknown(name, "rcctl"));
        }
        let on = check(ctx, "rcctl", &["ls", "on"])?;
        let enabled = String::from_utf8_lossy(&on.stdout)
            .lines()
            .any(|l| l.trim() == name);
        Ok(Status {
            running: status.success(),
            enabled: Some(enabled),
            ..Status::default()
        })
    }

    fn apply(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        cur: &Status,
        run_it: bool,
        enable: Option<bool>,
    ) -> Result<(), ProviderError> {
        // A service that stays disabled starts only with -f.
        let enabled_now = enable.unwrap_or(cur.enabled == Some(true));
        let start: &[&str] = if enabled_now {
            &["start", name]
        } else {
            &["-f", "start", name]
        };
        let steps = Steps {
            enable: Command::new("rcctl", &["enable", name]),
            disable: Command::new("rcctl", &["disable", name]),
            start: vec![(Command::new("rcctl", start), "starting")],
            stop: Command::new("rcctl", &["stop", name]),
        };
        apply_steps(ctx, name, cur, run_it, enable, steps)
    }

    fn refresh_cmd(&self, name: &str, cur: &Status, reload: bool) -> Command {
        match (reload, cur.enabled == Some(true)) {
            (true, _) => Command::new("rcctl", &["reload", name]),
            (false, true) => Command::new("rcctl", &["restart", name]),
            (false, false) => Command::new("rcctl", &["-f", "restart", name]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc_conf_and_runlevels() {
        let conf = "# rc.conf\nsshd=YES\nnginx=NO\nnginx=\"YES\" # later wins\n#postfix=YES\n";
        assert_eq!(rc_conf_value(conf, "nginx"), Some(true));
        assert_eq!(rc_conf_value(conf, "sshd"), Some(true));
        assert_eq!(rc_conf_value(conf, "postfix"), None);
        assert_eq!(rc_conf_value(conf, "ssh"), None);
        assert_eq!(
            set_rc_conf(conf, "nginx", false),
            "# rc.conf\nsshd=YES\nnginx=NO\n#postfix=YES\n"
        );
        assert_eq!(
            set_rc_conf("sshd=YES\n", "nginx", true),
            "sshd=YES\nnginx=YES\n"
        );
        let levels = " nginx | default\n  sshd | default\n  ";
        assert!(in_runlevel("nginx", levels));
        assert!(!in_runlevel("ngin", levels));
    }
}
