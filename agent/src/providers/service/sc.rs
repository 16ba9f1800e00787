//! Windows services through `sc.exe`: `query` for the state, `qc` for the start type,
//! `config NAME start= auto|demand` to enable or disable at boot, `start`/`stop`.
//!
//! "Enabled" means start type automatic (delayed automatic included); disabling sets
//! "manual" (demand), which still lets the service run when asked. A service whose start
//! type is "disabled" is switched to manual before Vigo starts it. `sc.exe` labels are not
//! translated, and Vigo reads the state numbers, not their names. Windows has no reload:
//! a refresh restarts (PowerShell `Restart-Service`, which waits, unlike `sc.exe stop`).

use super::{Init, Status, Steps, apply_steps, check, text, unknown};
use crate::providers::user::windows::{powershell, ps_quote};
use crate::providers::{Command, Ctx, ProviderError};

pub struct Sc;

/// The number after `KEY :` in `sc.exe` output (`STATE : 4  RUNNING` → 4).
pub fn field(text: &str, key: &str) -> Option<u8> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key)
            .then(|| v.split_whitespace().next()?.parse().ok())
            .flatten()
    })
}

fn sc(args: &[&str]) -> Command {
    Command::new("sc.exe", args)
}

impl Init for Sc {
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError> {
        let query = check(ctx, "sc.exe", &["query", name])?;
        // 1060: "The specified service does not exist as an installed service."
        if query.status == Some(1060) {
            return Err(unknown(name, "the service control manager"));
        }
        let state = field(&text(&query), "STATE").ok_or_else(|| {
            ProviderError(format!(
                "reading service `{name}`: `sc.exe query` printed no STATE; is it a service?"
            ))
        })?;
        let qc = check(ctx, "sc.exe", &["qc", name])?;
        let start_type = field(&text(&qc), "START_TYPE").unwrap_or(3);
        // 2 START_PENDING and 4 RUNNING count as running; 1 STOPPED and 3 STOP_PENDING not.
        Ok(Status {
            running: matches!(state, 2 | 4),
            enabled: Some(start_type == 2),
            start_type,
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
        let mut start = Vec::new();
        // A disabled service (start type 4) cannot start until it is allowed to.
        if cur.start_type == 4 && enable != Some(true) {
            start.push((
                sc(&["config", name, "start=", "demand"]),
                "allowing to start",
            ));
        }
        start.push((sc(&["start", name]), "starting"));
        let steps = Steps {
            enable: sc(&["config", name, "start=", "auto"]),
            disable: sc(&["config", name, "start=", "demand"]),
            start,
            stop: sc(&["stop", name]),
        };
        apply_steps(ctx, name, cur, run_it, enable, steps)
    }

    fn refresh_cmd(&self, name: &str, _cur: &Status, _reload: bool) -> Command {
        powershell(&format!("Restart-Service -Name {} -Force", ps_quote(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sc_outputs_parse() {
        let q = "\r\nSERVICE_NAME: nginx \r\n        TYPE               : 10  WIN32_OWN_PROCESS  \r\n        STATE              : 4  RUNNING \r\n";
        assert_eq!(field(q, "STATE"), Some(4));
        assert_eq!(
            field(
                "        START_TYPE         : 2   AUTO_START  (DELAYED)\r\n",
                "START_TYPE"
            ),
            Some(2)
        );
        assert_eq!(field("nothing", "STATE"), None);
    }
}
