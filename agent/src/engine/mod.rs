//! The resource engine: converges one verified bundle and reports every resource.
//!
//! For each resource, in dependency order ([`order`]): a resource on a dependency cycle
//! fails; one the compiler marked `skip`, one without a provider, one that fails the
//! schema checks ([`check`]) and one whose dependency failed or was skipped for an error
//! is skipped with the reason; then its residual `when:` is evaluated on the node
//! ([`env`]) — false skips it, an error skips it and names the error; then the provider
//! converges it, and (outside observe mode) converges it again in observe mode, which must
//! report nothing, else the resource failed ("did not converge"). A skip because a
//! condition is false does not hold back the resources that depend on it; every other
//! skip and every failure does, transitively. Independent resources always converge.
//!
//! `notify`: when a resource changed, each resource it notifies is refreshed once — right
//! after that resource converged if it comes later in the order, else at the end of the
//! run. A resource whose own convergence just created or started it needs no refresh.
//! In observe mode nothing is refreshed; the report says "would refresh".

pub mod check;
pub mod env;
pub mod localtime;
pub mod order;
pub mod registry;
pub mod unseal;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vigo_shared::bundle::{AttrValue, Bundle, Resource};
use vigo_shared::sign::{SigningKey, VerifiedBundle};
use vigo_shared::when::{self, LocalTime};

use crate::facts::Facts;
use crate::family::Family;
use crate::providers::{Change, Ctx, Provider, Runner};
use crate::report::{ChangeReport, REPORT_FORMAT, Report, ResourceReport, Status, Summary};
use env::AgentEnv;
use order::Blocked;
use registry::Registry;

/// Everything a run needs besides the bundle and the providers.
pub struct Setup<'a> {
    /// The folder that stands for `/`.
    pub root: &'a Path,
    /// This machine's facts.
    pub facts: &'a Facts,
    /// The OS family whose tools the providers use.
    pub family: Family,
    /// Observe mode requested on the command line (the bundle may also ask for it).
    pub observe: bool,
    /// Runs external commands.
    pub runner: &'a dyn Runner,
    /// The local time `hour_range()` and `weekday()` see.
    pub now: LocalTime,
    /// The node's key, to open sealed secret values in memory; without it a resource with a
    /// sealed value fails and the others converge.
    pub node_key: Option<&'a SigningKey>,
}

/// Converges `bundle` and reports every resource.
pub fn apply(bundle: &VerifiedBundle, setup: &Setup<'_>, registry: &Registry) -> Report {
    converge(bundle.bundle(), &bundle.hash().to_string(), setup, registry)
}

/// What happened to one resource so far.
struct Done {
    status: Status,
    message: Option<String>,
    changes: Vec<Change>,
    refresh: Option<String>,
    /// Its dependents are skipped (a failure, or a skip for an error).
    blocks: bool,
    millis: u64,
}

impl Done {
    fn new(status: Status, message: Option<String>, changes: Vec<Change>, blocks: bool) -> Done {
        Done {
            status,
            message,
            changes,
            refresh: None,
            blocks,
            millis: 0,
        }
    }

    fn failed(message: String, changes: Vec<Change>) -> Done {
        Done::new(Status::Failed, Some(message), changes, true)
    }

    fn skipped(message: String, blocks: bool) -> Done {
        Done::new(Status::Skipped, Some(message), Vec::new(), blocks)
    }

    fn converged(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Changed)
    }
}

fn converge(bundle: &Bundle, hash: &str, setup: &Setup<'_>, registry: &Registry) -> Report {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let observe = setup.observe || bundle.observe;
    let ctx = Ctx {
        root: setup.root,
        facts: setup.facts,
        family: setup.family,
        observe,
        runner: setup.runner,
    };
    let recheck_ctx = Ctx {
        observe: true,
        ..ctx_copy(&ctx)
    };
    let env = AgentEnv {
        node: &bundle.node,
        facts: setup.facts,
        root: setup.root,
        now: setup.now,
    };

    // Sealed values are opened here, in memory only: the bundle on disk keeps ciphertext.
    let (opened, unopened) = unseal::open_bundle(bundle, setup.node_key);
    let resources = &opened.resources;
    let plan = order::plan(resources);
    let ids: BTreeMap<String, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id(), i))
        .collect();
    let mut done: Vec<Option<Done>> = resources.iter().map(|_| None).collect();
    let mut pending = vec![false; resources.len()];
    let mut would_refresh = vec![false; resources.len()];

    for &i in &plan.order {
        let t = Instant::now();
        let res = &resources[i];
        let mut d = match &unopened[i] {
            Some(why) => Done::failed(why.clone(), Vec::new()),
            None => step(
                i,
                resources,
                &plan,
                &done,
                registry,
                &env,
                &ctx,
                &recheck_ctx,
            ),
        };
        if d.status == Status::Changed {
            for target in &res.notify {
                match ids.get(target) {
                    Some(&j) if j != i && observe => would_refresh[j] = true,
                    Some(&j) if j != i => pending[j] = true,
                    _ => {}
                }
            }
        }
        if pending[i] && d.converged() {
            pending[i] = false;
            if let Some(p) = registry.get(res.kind) {
                if p.needs_refresh_after(&d.changes) {
                    refresh(&mut d, p, res, &ctx);
                } else {
                    d.refresh =
                        Some("not needed: it was created or started in this run".to_string());
                }
            }
        }
        d.millis = millis(t);
        done[i] = Some(d);
    }
    // Notifications for resources that had already converged when they were notified.
    for &j in &plan.order {
        let (Some(d), Some(p)) = (done[j].as_mut(), registry.get(resources[j].kind)) else {
            continue;
        };
        if !d.converged() {
            continue;
        }
        if pending[j] {
            let t = Instant::now();
            refresh(d, p, &resources[j], &ctx);
            d.millis += millis(t);
        } else if would_refresh[j] {
            d.refresh = Some("would refresh".to_string());
        }
    }

    let reports = plan
        .order
        .iter()
        .filter_map(|&i| done[i].take().map(|d| resource_report(&resources[i], d)))
        .collect();
    let mut report = Report {
        format: REPORT_FORMAT,
        node: bundle.node.clone(),
        policy: bundle.policy.clone(),
        bundle: hash.to_string(),
        observe,
        started_unix,
        duration_ms: millis(started),
        resources: reports,
        summary: <Summary as Default>::default(),
    };
    report.summarize();
    report
}

fn ctx_copy<'a>(ctx: &Ctx<'a>) -> Ctx<'a> {
    Ctx {
        root: ctx.root,
        facts: ctx.facts,
        family: ctx.family,
        observe: ctx.observe,
        runner: ctx.runner,
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn refresh(d: &mut Done, provider: &dyn Provider, res: &Resource, ctx: &Ctx<'_>) {
    match provider.refresh(res, ctx) {
        Ok(()) => d.refresh = Some("refreshed".to_string()),
        Err(e) => {
            d.refresh = Some(format!("failed: {e}"));
            d.status = Status::Failed;
            d.blocks = true;
            d.message = Some(format!("refresh failed: {e}"));
        }
    }
}

/// Decides and converges one resource.
#[allow(clippy::too_many_arguments)]
fn step(
    i: usize,
    resources: &[Resource],
    plan: &order::Plan,
    done: &[Option<Done>],
    registry: &Registry,
    env: &AgentEnv<'_>,
    ctx: &Ctx<'_>,
    recheck_ctx: &Ctx<'_>,
) -> Done {
    let res = &resources[i];
    if let Some(Blocked::Cycle(msg)) = &plan.blocked[i] {
        return Done::failed(msg.clone(), Vec::new());
    }
    if let Some(reason) = &res.skip {
        return Done::skipped(format!("skipped by the server: {reason}"), true);
    }
    let Some(provider) = registry.get(res.kind) else {
        return Done::skipped(
            format!("this agent has no provider for {} resources", res.kind),
            true,
        );
    };
    if let Err(e) = check::check_resource(res, provider) {
        return Done::skipped(e, true);
    }
    for &dep in &plan.deps[i] {
        let Some(d) = done[dep].as_ref() else {
            continue;
        };
        let what = match d.status {
            Status::Failed => "failed",
            Status::Skipped if d.blocks => "was skipped",
            _ => continue,
        };
        return Done::skipped(format!("dependency {} {what}", resources[dep].id()), true);
    }
    if let Some(Blocked::Missing(id)) = &plan.blocked[i] {
        return Done::skipped(
            format!("depends on {id}, which is not in this bundle"),
            true,
        );
    }
    if let Some(text) = &res.when {
        let expr = match when::parse(text) {
            Ok(e) => e,
            Err(e) => {
                return Done::skipped(format!("condition {text:?} does not parse: {e}"), true);
            }
        };
        match when::eval(&expr, env) {
            Ok(true) => {}
            Ok(false) => return Done::skipped(format!("condition false: {text}"), false),
            Err(e) => {
                return Done::skipped(
                    format!("condition {text:?} could not be evaluated: {e}"),
                    true,
                );
            }
        }
    }
    let changes = match provider.converge(res, ctx) {
        Ok(c) => c,
        Err(e) => return Done::failed(e.to_string(), Vec::new()),
    };
    if changes.is_empty() {
        return Done::new(Status::Ok, None, changes, false);
    }
    if !ctx.observe && provider.recheck() {
        match provider.converge(res, recheck_ctx) {
            Ok(again) if again.is_empty() => {}
            Ok(again) => {
                let left: Vec<String> = again
                    .iter()
                    .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
                    .collect();
                return Done::failed(
                    format!("did not converge: still {}", left.join(", ")),
                    changes,
                );
            }
            Err(e) => {
                return Done::failed(
                    format!("did not converge: checking again failed: {e}"),
                    changes,
                );
            }
        }
    }
    Done::new(Status::Changed, None, changes, false)
}

/// The report entry for one resource, with every secret-derived value scrubbed out.
fn resource_report(res: &Resource, d: Done) -> ResourceReport {
    let secrets: Vec<&str> = res
        .attrs
        .iter()
        .filter_map(|a| match &a.value {
            AttrValue::Sensitive(s) if !s.expose().is_empty() => Some(s.expose()),
            _ => None,
        })
        .collect();
    let scrub = |text: String| -> String {
        secrets.iter().fold(text, |t, s| {
            if t.contains(s) {
                t.replace(s, "<redacted>")
            } else {
                t
            }
        })
    };
    ResourceReport {
        id: res.id(),
        kind: res.kind.as_str().to_string(),
        name: res.name.clone(),
        module: res.module.clone(),
        origin: res.origin.clone(),
        status: d.status,
        message: d.message.map(scrub),
        changes: d
            .changes
            .into_iter()
            .map(|c| ChangeReport {
                field: c.field,
                from: scrub(c.from),
                to: scrub(c.to),
            })
            .collect(),
        refresh: d.refresh.map(scrub),
        compliance: res.compliance.clone(),
        duration_ms: d.millis,
    }
}

#[cfg(test)]
mod tests;
