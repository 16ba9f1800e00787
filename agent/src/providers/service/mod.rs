//! The `service` provider: whether a service runs now (`state: running|stopped`) and
//! whether it starts at boot (`enabled`), through each family's init system; `refresh`
//! (a notifying resource changed) restarts it, or reloads it with `reload: true`.
//!
//! - `enabled` omitted leaves the boot setting alone; `state` defaults to `running` (the
//!   schema's first state).
//! - Enabling comes before starting and stopping before disabling, because some inits
//!   refuse to start a disabled service (FreeBSD, OpenBSD, launchd).
//! - A refresh of a service that is not running does nothing: notifications do not start
//!   services (the converge does, when `state: running`). In observe mode refresh does
//!   nothing at all.
//! - Service names are validated (no leading `-`, no whitespace, no `..`; `/` only in SMF
//!   FMRIs) because they become arguments and, on NetBSD, a path.

mod launchd;
mod rc;
mod sc;
mod smf;
mod systemd;

#[cfg(test)]
mod plan_tests;

use vigo_shared::bundle::{AttrValue, Resource};

use super::{Change, Command, Ctx, Output, Provider, ProviderError, attr_str, run_checked};
use crate::family::Family;

/// Converges `type: service` resources.
pub struct ServiceProvider;

impl Provider for ServiceProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &["service", "enabled", "reload"]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let spec = Spec::parse(res, ctx.family)?;
        live_only(ctx, &spec)?;
        converge(&spec, init_for(ctx.family).as_ref(), ctx)
    }

    fn refresh(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<(), ProviderError> {
        let spec = Spec::parse(res, ctx.family)?;
        live_only(ctx, &spec)?;
        refresh(&spec, init_for(ctx.family).as_ref(), ctx)
    }
}

/// Services run on a live system only; under another root there is nothing to start.
fn live_only(ctx: &Ctx<'_>, spec: &Spec) -> Result<(), ProviderError> {
    if ctx.root == std::path::Path::new("/") {
        return Ok(());
    }
    Err(ProviderError(format!(
        "service `{}`: services are managed only on a live system, not under --root {}",
        spec.name,
        ctx.root.display()
    )))
}

/// The desired service, validated.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub name: String,
    pub running: bool,
    pub enabled: Option<bool>,
    pub reload: bool,
}

impl Spec {
    pub fn parse(res: &Resource, family: Family) -> Result<Spec, ProviderError> {
        let name = attr_str(res, "service").unwrap_or(&res.name).to_string();
        let slash_ok = family == Family::Illumos;
        let ok = !name.is_empty()
            && !name.starts_with('-')
            && !name.contains("..")
            && (slash_ok || !name.contains('/'))
            && !name.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(ProviderError(format!(
                "service name `{}` is not valid: no leading `-`, whitespace, `..` or `/` (except in \
                 illumos FMRIs)",
                name.escape_debug()
            )));
        }
        let bad = |attr: &str, expected: &str| {
            ProviderError(format!("service `{name}`: {attr} must be {expected}"))
        };
        let running = match attr_str(res, "state").unwrap_or("running") {
            "running" => true,
            "stopped" => false,
            _ => return Err(bad("state", "running or stopped")),
        };
        let flag = |key: &str| match res.attr(key) {
            None => Ok(None),
            Some(AttrValue::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(key, "true or false")),
        };
        Ok(Spec {
            enabled: flag("enabled")?,
            reload: flag("reload")?.unwrap_or(false),
            running,
            name,
        })
    }
}

/// What an init system reports about a service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status {
    pub running: bool,
    /// Starts at boot; `None` when the notion does not apply (a systemd `static` unit).
    pub enabled: Option<bool>,
    /// launchd: the job is loaded (bootstrapped).
    pub loaded: bool,
    /// SMF: the instance is in maintenance and needs `svcadm clear`.
    pub maintenance: bool,
    /// systemd: the unit is masked.
    pub masked: bool,
    /// Windows: the start type (2 auto, 3 demand, 4 disabled).
    pub start_type: u8,
}

/// One init system.
pub(crate) trait Init {
    /// Reads the service's state (read-only commands).
    fn status(&self, ctx: &Ctx<'_>, name: &str) -> Result<Status, ProviderError>;

    /// Brings the service from `cur` to running `run` and (when given) `enable`.
    fn apply(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        cur: &Status,
        run: bool,
        enable: Option<bool>,
    ) -> Result<(), ProviderError>;

    /// The command that restarts (or, with `reload`, reloads) the running service.
    fn refresh_cmd(&self, name: &str, cur: &Status, reload: bool) -> Command;
}

pub(crate) fn init_for(family: Family) -> Box<dyn Init> {
    match family {
        Family::Debian | Family::Rhel | Family::Suse | Family::Arch => Box::new(systemd::Systemd),
        Family::Alpine => Box::new(rc::OpenRc),
        Family::FreeBsd => Box::new(rc::FreeBsd),
        Family::NetBsd => Box::new(rc::NetBsd),
        Family::OpenBsd => Box::new(rc::Rcctl),
        Family::Illumos => Box::new(smf::Smf),
        Family::MacOs => Box::new(launchd::Launchd),
        Family::Windows => Box::new(sc::Sc),
    }
}

fn word(running: bool) -> &'static str {
    if running { "running" } else { "stopped" }
}

fn converge(spec: &Spec, init: &dyn Init, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
    let cur = init.status(ctx, &spec.name)?;
    let mut changes = Vec::new();
    if cur.running != spec.running {
        changes.push(Change::new("state", word(cur.running), word(spec.running)));
    }
    let enable = match (spec.enabled, cur.enabled) {
        (Some(want), Some(have)) if want != have => {
            changes.push(Change::new("enabled", have.to_string(), want.to_string()));
            Some(want)
        }
        _ => None,
    };
    if !changes.is_empty() && !ctx.observe {
        init.apply(ctx, &spec.name, &cur, spec.running, enable)?;
    }
    Ok(changes)
}

fn refresh(spec: &Spec, init: &dyn Init, ctx: &Ctx<'_>) -> Result<(), ProviderError> {
    if ctx.observe || !spec.running {
        return Ok(());
    }
    let cur = init.status(ctx, &spec.name)?;
    if !cur.running {
        return Ok(());
    }
    let verb = if spec.reload {
        "reloading"
    } else {
        "restarting"
    };
    run(
        ctx,
        init.refresh_cmd(&spec.name, &cur, spec.reload),
        verb,
        &spec.name,
    )
}

/// Runs a read-only check; the caller interprets its status.
pub(crate) fn check(ctx: &Ctx<'_>, program: &str, args: &[&str]) -> Result<Output, ProviderError> {
    ctx.runner.run(&Command::new(program, args))
}

/// Runs a changing command, failing with the tool's message unless it exits 0.
pub(crate) fn run(
    ctx: &Ctx<'_>,
    cmd: Command,
    verb: &str,
    name: &str,
) -> Result<(), ProviderError> {
    run_checked(ctx, &cmd, &format!("{verb} service `{name}`")).map(|_| ())
}

/// The commands one init system converges a service with.
pub(crate) struct Steps {
    /// Marks the service to start at boot.
    pub enable: Command,
    /// Unmarks it.
    pub disable: Command,
    /// Starts it, with what each command does (more than one where a start needs a
    /// preparation, such as allowing a disabled Windows service to start).
    pub start: Vec<(Command, &'static str)>,
    /// Stops it.
    pub stop: Command,
}

/// Runs the steps in the order every init system here needs: enable before starting (so
/// the start honours it), start or stop, and disable last.
pub(crate) fn apply_steps(
    ctx: &Ctx<'_>,
    name: &str,
    cur: &Status,
    run_it: bool,
    enable: Option<bool>,
    steps: Steps,
) -> Result<(), ProviderError> {
    if enable == Some(true) {
        run(ctx, steps.enable, "enabling", name)?;
    }
    if run_it && !cur.running {
        for (cmd, what) in steps.start {
            run(ctx, cmd, what, name)?;
        }
    }
    if !run_it && cur.running {
        run(ctx, steps.stop, "stopping", name)?;
    }
    if enable == Some(false) {
        run(ctx, steps.disable, "disabling", name)?;
    }
    Ok(())
}

/// The text of both output streams, for the inits whose answer may be on either.
pub(crate) fn text(out: &Output) -> String {
    let mut t = String::from_utf8_lossy(&out.stdout).into_owned();
    t.push_str(&String::from_utf8_lossy(&out.stderr));
    t
}

/// The error for a service the init system does not know.
pub(crate) fn unknown(name: &str, init: &str) -> ProviderError {
    ProviderError(format!(
        "service `{name}`: {init} does not know it; install its package or unit first (and make the \
         service depend on it)"
    ))
}
