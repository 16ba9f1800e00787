//! systemd (Debian, RHEL, SUSE, Arch): `systemctl is-active` and `is-enabled` to read,
//! `start`/`stop`/`enable`/`disable`/`restart`/`reload` to change.

use super::{Init, Status, Steps, apply_steps, check, text, unknown};
use crate::providers::{Command, Ctx, ProviderError};

pub struct Systemd;

/// Reads `systemctl is-enabled` output: `Some(true/false)` for units that can be enabled,
/// `None` for those where the notion does not apply (static, generated, transient,
/// indirect units), and whether the unit is masked. `Err(())` when the unit is unknown.
pub fn parse_is_enabled(out: &str) -> Result<(Option<bool>, bool), ()> {
    match out.lines().next().unwrap_or("").trim() {
        "enabled" | "enabled-runtime" | "alias" | "linked" | "linked-runtime" => {
            Ok((Some(true), false))
        }
        "disabled" => Ok((Some(false), false)),
        "masked" | "masked-runtime" => Ok((Some(false), true)),
        "static" | "generated" | "transient" | "indirect" => Ok((None, false)),
        _ => Err(()),
    }
}

fn systemctl(args: &[&str]) -> Command {
    Command::new("systemctl", args)
}

impl Init for Systemd {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        let active = check(ctx, "systemctl", &["is-active", name])?;
        let enabled = check(ctx, "systemctl", &["is-enabled", name])?;
        let (enabled, masked) =
            parse_is_enabled(&text(&enabled)).map_err(|()| unknown(name, "systemd"))?;
        // `active`, or on its way there / reloading: running for our purpose.
        let state = text(&active);
        let running = matches!(
            state.lines().next().unwrap_or("").trim(),
            "active" | "reloading" | "activating"
        );
        Ok(Status {
            running,
            enabled,
            masked,
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
        if cur.masked && (run_it || enable == Some(true)) {
            return Err(ProviderError(format!(
                "service `{name}`: the unit is masked; unmask it (`systemctl unmask {name}`) if it should run"
            )));
        }
        let steps = Steps {
            enable: systemctl(&["enable", name]),
            disable: systemctl(&["disable", name]),
            start: vec![(systemctl(&["start", name]), "starting")],
            stop: systemctl(&["stop", name]),
        };
        apply_steps(ctx, name, cur, run_it, enable, steps)
    }

    fn refresh_cmd(&self, name: &str, _cur: &Status, reload: bool) -> Command {
        systemctl(&[if reload { "reload" } else { "restart" }, name])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_enabled_outputs() {
        assert_eq!(parse_is_enabled("enabled\n"), Ok((Some(true), false)));
        assert_eq!(parse_is_enabled("disabled\n"), Ok((Some(false), false)));
        assert_eq!(parse_is_enabled("static\n"), Ok((None, false)));
        assert_eq!(parse_is_enabled("masked\n"), Ok((Some(false), true)));
        assert_eq!(
            parse_is_enabled(
                "Failed to get unit file state for nope.service: No such file or directory\n"
            ),
            Err(())
        );
    }
}
