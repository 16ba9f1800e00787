//! illumos SMF: `svcs -H -o state` for the state, `svcprop -p general/enabled` for the
//! persistent enable flag, `svcadm` to change.
//!
//! SMF has no "enabled but stopped": enabling an instance starts it. Vigo maps the two
//! attributes onto SMF's persistent and temporary (`-t`, until reboot) settings:
//! - running + enabled → `svcadm enable -s` (persistent);
//! - stopped + disabled → `svcadm disable -s` (persistent);
//! - running + not enabled → `svcadm enable -st` (runs until reboot);
//! - stopped + enabled → `svcadm disable -st` (stopped until reboot);
//! - `enabled` omitted keeps the persistent flag and uses the temporary forms.
//!
//! Flipping the persistent flag the "other way" from the wanted state needs two steps
//! (`svcadm disable -s` then `svcadm enable -st`), which bounces a running service once.
//! An instance in maintenance is cleared (`svcadm clear`) before it is started.

use super::{Init, Status, check, run, text, unknown};
use crate::providers::{Command, Ctx, ProviderError};

pub struct Smf;

fn svcadm(args: &[&str]) -> Command {
    Command::new("svcadm", args)
}

impl Init for Smf {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        let out = check(ctx, "svcs", &["-H", "-o", "state", name])?;
        if !out.success() {
            // "svcs: Pattern 'x' doesn't match any instances"
            return Err(unknown(name, "SMF"));
        }
        let state = text(&out);
        let state = state.lines().next().unwrap_or("").trim();
        let prop = check(ctx, "svcprop", &["-p", "general/enabled", name])?;
        let persistent = String::from_utf8_lossy(&prop.stdout).trim() == "true";
        Ok(Status {
            running: matches!(state, "online" | "degraded" | "legacy_run"),
            enabled: Some(persistent),
            maintenance: state == "maintenance",
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
        let persistent_now = cur.enabled == Some(true);
        let persistent = enable.unwrap_or(persistent_now);
        let mut steps: Vec<&[&str]> = Vec::new();
        if run_it && cur.maintenance {
            steps.push(&["clear"]);
        }
        match (persistent != persistent_now, persistent, run_it) {
            (true, true, true) => steps.push(&["enable", "-s"]),
            (true, true, false) => {
                steps.push(&["enable", "-s"]);
                steps.push(&["disable", "-st"]);
            }
            (true, false, true) => {
                steps.push(&["disable", "-s"]);
                steps.push(&["enable", "-st"]);
            }
            (true, false, false) => steps.push(&["disable", "-s"]),
            (false, on, true) if !cur.running => steps.push(if on {
                &["enable", "-s"]
            } else {
                &["enable", "-st"]
            }),
            (false, on, false) if cur.running => steps.push(if on {
                &["disable", "-st"]
            } else {
                &["disable", "-s"]
            }),
            (false, _, _) => {}
        }
        for step in steps {
            let mut args = step.to_vec();
            args.push(name);
            let what = if args[0] == "disable" {
                "stopping"
            } else {
                "starting"
            };
            run(ctx, svcadm(&args), what, name)?;
        }
        Ok(())
    }

    fn refresh_cmd(&self, name: &str, _cur: &Status, reload: bool) -> Command {
        // `svcadm refresh` re-reads the configuration and runs the refresh method.
        svcadm(&[if reload { "refresh" } else { "restart" }, name])
    }
}
