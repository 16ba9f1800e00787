//! macOS launchd, for daemons in the system domain: the service name is the job's label
//! and its plist is `/Library/LaunchDaemons/LABEL.plist`.
//!
//! Reading: `launchctl print system/LABEL` (exit 113 when the job is not loaded; `state =
//! running` when it runs) and `launchctl print-disabled system` (the enable overrides).
//! Running means loaded and running: `bootstrap` loads the plist, `kickstart` starts it;
//! stopping is `bootout` (unload), the only way to keep a KeepAlive job down. Restart is
//! `kickstart -k`; launchd has no reload, so `reload: true` sends SIGHUP.

use super::{Init, Status, check, run};
use crate::providers::{Command, Ctx, ProviderError};

pub struct Launchd;

/// Parses `launchctl print-disabled system`: whether `label` is disabled. macOS 13+ prints
/// `"label" => disabled|enabled`, earlier versions `=> true|false` (true = disabled).
pub fn is_disabled(label: &str, text: &str) -> bool {
    let quoted = format!("\"{label}\"");
    text.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix(&quoted)
            .and_then(|rest| rest.trim().strip_prefix("=>"))
            .is_some_and(|v| matches!(v.trim(), "disabled" | "true"))
    })
}

fn launchctl(args: &[&str]) -> Command {
    Command::new("launchctl", args)
}

impl Init for Launchd {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        let target = format!("system/{name}");
        let print = check(ctx, "launchctl", &["print", &target])?;
        let loaded = print.success();
        let running = loaded
            && String::from_utf8_lossy(&print.stdout)
                .lines()
                .any(|l| l.trim() == "state = running");
        let disabled = check(ctx, "launchctl", &["print-disabled", "system"])?;
        let enabled = !is_disabled(name, &String::from_utf8_lossy(&disabled.stdout));
        Ok(Status {
            running,
            enabled: Some(enabled),
            loaded,
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
        let target = format!("system/{name}");
        let enabled_after = enable.unwrap_or(cur.enabled == Some(true));
        if run_it && !cur.running && !enabled_after {
            return Err(ProviderError(format!(
                "service `{name}`: launchd does not run a disabled job; set enabled: true or state: stopped"
            )));
        }
        if enable == Some(true) {
            run(ctx, launchctl(&["enable", &target]), "enabling", name)?;
        }
        if run_it && !cur.running {
            if !cur.loaded {
                let plist = format!("/Library/LaunchDaemons/{name}.plist");
                if !ctx.path(&plist).exists() {
                    return Err(ProviderError(format!(
                        "starting service `{name}`: {plist} does not exist; install it with a file resource first"
                    )));
                }
                run(
                    ctx,
                    launchctl(&["bootstrap", "system", &plist]),
                    "loading",
                    name,
                )?;
            }
            run(ctx, launchctl(&["kickstart", &target]), "starting", name)?;
        }
        if !run_it && cur.loaded {
            run(ctx, launchctl(&["bootout", &target]), "stopping", name)?;
        }
        if enable == Some(false) {
            run(ctx, launchctl(&["disable", &target]), "disabling", name)?;
        }
        Ok(())
    }

    fn refresh_cmd(&self, name: &str, _cur: &Status, reload: bool) -> Command {
        let target = format!("system/{name}");
        if reload {
            launchctl(&["kill", "SIGHUP", &target])
        } else {
            launchctl(&["kickstart", "-k", &target])
        }
    }
}
