//! Engine tests with a scripted fake provider: call order, skip propagation, re-check,
//! notifications, observe mode and redaction, without touching the file system.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use vigo_shared::bundle::{Attr, AttrValue, Bundle, Resource, ResourceKind, Sensitive};
use vigo_shared::when::LocalTime;

use super::registry::Registry;
use super::{Setup, converge};
use crate::facts::Facts;
use crate::family::Family;
use crate::providers::testing::ScriptedRunner;
use crate::providers::{Change, Ctx, Provider, ProviderError};
use crate::report::Report;

/// Behaves as its resource's `command` (exec) or `content` (file) attribute says:
/// `ok`, `change` (changes once, then converged), `flap` (always changes), `fail`,
/// `start` (a change of `state`), `leak` (reports its secret `content` in a change and
/// an error). Records `converge:NAME`, `observe:NAME` and `refresh:NAME` calls.
#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    converged: RefCell<BTreeSet<String>>,
}

fn behaviour(res: &Resource) -> String {
    let key = if res.kind == ResourceKind::Exec {
        "command"
    } else {
        "content"
    };
    match res.attr(key) {
        Some(AttrValue::Str(s)) => s.clone(),
        Some(AttrValue::Sensitive(_)) => "leak".to_string(),
        _ => "ok".to_string(),
    }
}

impl Provider for &'static Fake {
    fn attributes(&self) -> &'static [&'static str] {
        &[
            "command",
            "content",
            "path",
            "owner",
            "group",
            "mode",
            "state",
            "refreshonly",
        ]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let verb = if ctx.observe { "observe" } else { "converge" };
        self.calls.borrow_mut().push(format!("{verb}:{}", res.name));
        let done = self.converged.borrow().contains(&res.name);
        match behaviour(res).as_str() {
            "ok" => Ok(vec![]),
            "fail" => Err(ProviderError("it broke".to_string())),
            "flap" => Ok(vec![Change::new("x", "a", "b")]),
            "leak" => {
                let Some(AttrValue::Sensitive(s)) = res.attr("content") else {
                    return Ok(vec![]);
                };
                if ctx.observe {
                    return Err(ProviderError(format!("cannot check {}", s.expose())));
                }
                Ok(vec![Change::new("content", "old", s.expose())])
            }
            kind => {
                if done {
                    return Ok(vec![]);
                }
                if !ctx.observe {
                    self.converged.borrow_mut().insert(res.name.clone());
                }
                let field = if kind == "start" { "state" } else { "content" };
                Ok(vec![Change::new(field, "before", "after")])
            }
        }
    }

    fn refresh(&self, res: &Resource, _ctx: &Ctx<'_>) -> Result<(), ProviderError> {
        self.calls
            .borrow_mut()
            .push(format!("refresh:{}", res.name));
        if res.name.contains("bad-refresh") {
            Err(ProviderError("restart failed".to_string()))
        } else {
            Ok(())
        }
    }
}

fn r(kind: ResourceKind, name: &str, behaviour: &str) -> Resource {
    let key = if kind == ResourceKind::Exec {
        "command"
    } else {
        "content"
    };
    let value = if behaviour == "leak" {
        AttrValue::Sensitive(Sensitive::new("hunter2-secret".to_string()))
    } else {
        AttrValue::Str(behaviour.to_string())
    };
    Resource {
        kind,
        name: name.to_string(),
        // Directories have no content attribute: the fake treats them as converged.
        attrs: if kind == ResourceKind::Directory {
            vec![]
        } else {
            vec![Attr {
                key: key.to_string(),
                value,
            }]
        },
        when: None,
        depends_on: vec![],
        notify: vec![],
        compliance: vec![],
        dangerous: false,
        origin: String::new(),
        module: String::new(),
        skip: None,
    }
}

fn exec(name: &str, behaviour: &str) -> Resource {
    r(ResourceKind::Exec, name, behaviour)
}

/// Runs the engine over `resources` with a fresh fake; returns the report and the calls.
fn run(resources: Vec<Resource>, observe: bool) -> (Report, Vec<String>) {
    let fake: &'static Fake = Box::leak(Box::default());
    let registry = Registry::empty()
        .with(ResourceKind::Exec, Box::new(fake))
        .with(ResourceKind::File, Box::new(fake))
        .with(ResourceKind::Directory, Box::new(fake));
    let facts = Facts::default();
    let runner = ScriptedRunner::new();
    let setup = Setup {
        root: Path::new("/nonexistent-root"),
        facts: &facts,
        family: Family::Debian,
        observe,
        runner: &runner,
        now: LocalTime {
            hour: 12,
            weekday: 0,
        },
        node_key: None,
    };
    let bundle = Bundle {
        node: "n".into(),
        policy: "p".into(),
        observe: false,
        interval_secs: 60,
        resources,
    };
    let report = converge(&bundle, "hash", &setup, &registry);
    let calls = fake.calls.borrow().clone();
    (report, calls)
}

/// `id=status[: message]` per resource, in report order.
fn shown(report: &Report) -> Vec<String> {
    report
        .resources
        .iter()
        .map(|r| match &r.message {
            Some(m) => format!("{}={}: {m}", r.id, r.status.as_str()),
            None => format!("{}={}", r.id, r.status.as_str()),
        })
        .collect()
}

fn check(
    resources: Vec<Resource>,
    observe: bool,
    expected: &[&str],
    expected_calls: &str,
) -> Report {
    let (report, calls) = run(resources, observe);
    assert_eq!(shown(&report), expected);
    assert_eq!(calls.join(" "), expected_calls);
    report
}

#[test]
fn order_follows_dependencies_and_implicit_parents() {
    let mut a = exec("a", "change");
    a.depends_on = vec!["exec:b".into()];
    check(
        vec![
            a,
            exec("b", "ok"),
            r(ResourceKind::File, "/srv/x/f", "change"),
            r(ResourceKind::Directory, "/srv/x", "ok"),
        ],
        false,
        &[
            "exec:b=ok",
            "exec:a=changed",
            "directory:/srv/x=ok",
            "file:/srv/x/f=changed",
        ],
        "converge:b converge:a observe:a converge:/srv/x converge:/srv/x/f observe:/srv/x/f",
    );
}

#[test]
fn failures_and_cycles_propagate_as_skips() {
    let mut dep = exec("dep", "change");
    dep.depends_on = vec!["exec:bad".into()];
    let mut dep2 = exec("dep2", "change");
    dep2.depends_on = vec!["exec:dep".into()];
    let mut c1 = exec("c1", "ok");
    c1.depends_on = vec!["exec:c2".into()];
    let mut c2 = exec("c2", "ok");
    c2.depends_on = vec!["exec:c1".into()];
    let mut c3 = exec("c3", "ok");
    c3.depends_on = vec!["exec:c2".into()];
    check(
        vec![
            exec("bad", "fail"),
            dep,
            dep2,
            exec("free", "change"),
            c1,
            c2,
            c3,
        ],
        false,
        &[
            "exec:bad=failed: it broke",
            "exec:dep=skipped: dependency exec:bad failed",
            "exec:dep2=skipped: dependency exec:dep was skipped",
            "exec:free=changed",
            "exec:c1=failed: dependency cycle between exec:c1, exec:c2; break it by removing one depends_on",
            "exec:c2=failed: dependency cycle between exec:c1, exec:c2; break it by removing one depends_on",
            "exec:c3=skipped: dependency exec:c2 failed",
        ],
        "converge:bad converge:free observe:free",
    );
}

#[test]
fn a_change_that_does_not_hold_fails() {
    check(
        vec![exec("flappy", "flap")],
        false,
        &["exec:flappy=failed: did not converge: still x: a → b"],
        "converge:flappy observe:flappy",
    );
}

#[test]
fn notifications() {
    let mut early = exec("early", "ok");
    early.name = "early".into();
    let mut trigger = exec("trigger", "change");
    trigger.notify = vec![
        "exec:early".into(),
        "exec:late".into(),
        "exec:started".into(),
        "exec:nowhere".into(),
    ];
    let mut quiet = exec("quiet", "ok");
    quiet.notify = vec!["exec:late".into()];
    let report = check(
        vec![
            early,
            trigger,
            quiet,
            exec("late", "ok"),
            exec("started", "start"),
        ],
        false,
        &[
            "exec:early=ok",
            "exec:trigger=changed",
            "exec:quiet=ok",
            "exec:late=ok",
            "exec:started=changed",
        ],
        "converge:early converge:trigger observe:trigger converge:quiet converge:late refresh:late \
         converge:started observe:started refresh:early",
    );
    let refresh: Vec<Option<&str>> = report
        .resources
        .iter()
        .map(|r| r.refresh.as_deref())
        .collect();
    assert_eq!(
        refresh,
        [
            Some("refreshed"),
            None,
            None,
            Some("refreshed"),
            Some("not needed: it was created or started in this run")
        ]
    );
}

#[test]
fn failed_refresh_fails_the_resource_and_skips_its_dependents() {
    let mut trigger = exec("trigger", "change");
    trigger.notify = vec!["exec:bad-refresh".into()];
    let mut after = exec("after", "ok");
    after.depends_on = vec!["exec:bad-refresh".into()];
    check(
        vec![trigger, exec("bad-refresh", "ok"), after],
        false,
        &[
            "exec:trigger=changed",
            "exec:bad-refresh=failed: refresh failed: restart failed",
            "exec:after=skipped: dependency exec:bad-refresh failed",
        ],
        "converge:trigger observe:trigger converge:bad-refresh refresh:bad-refresh",
    );
}

#[test]
fn observe_mode_only_observes() {
    let mut trigger = exec("trigger", "change");
    trigger.notify = vec!["exec:svc".into()];
    let report = check(
        vec![trigger, exec("svc", "ok")],
        true,
        &["exec:trigger=changed", "exec:svc=ok"],
        "observe:trigger observe:svc",
    );
    assert_eq!(
        report.resources[1].refresh.as_deref(),
        Some("would refresh")
    );
    assert!(report.observe);
    assert_eq!(
        report.summary_line(),
        "2 resources: 1 ok, 1 changed, 0 failed, 0 skipped (observe)"
    );
}

#[test]
fn sensitive_values_are_scrubbed_from_changes_and_errors() {
    let report = check(
        vec![r(ResourceKind::File, "/etc/token", "leak")],
        false,
        &[
            "file:/etc/token=failed: did not converge: checking again failed: cannot check <redacted>",
        ],
        "converge:/etc/token observe:/etc/token",
    );
    let json = report.to_json();
    assert!(
        !json.contains("hunter2") && json.contains("<redacted>"),
        "{json}"
    );
    assert!(!report.render_human().contains("hunter2"));
}

#[test]
fn conditions_and_compiler_skips() {
    let mut when_false = exec("off", "change");
    when_false.when = Some("hour_range(0, 6)".into());
    let mut when_true = exec("on", "ok");
    when_true.when = Some("weekday('mon') && hour_range(9, 17)".into());
    let mut after_off = exec("after-off", "ok");
    after_off.depends_on = vec!["exec:off".into()];
    let mut skipped = exec("compiler", "ok");
    skipped.skip = Some("template error".into());
    let mut unknown = exec("unknown", "ok");
    unknown.attrs.push(Attr {
        key: "zzz".into(),
        value: AttrValue::Bool(true),
    });
    check(
        vec![when_false, when_true, after_off, skipped, unknown],
        false,
        &[
            "exec:off=skipped: condition false: hour_range(0, 6)",
            "exec:on=ok",
            "exec:after-off=ok",
            "exec:compiler=skipped: skipped by the server: template error",
            "exec:unknown=skipped: unknown attribute `zzz` for a exec resource",
        ],
        "converge:on converge:after-off",
    );
}
