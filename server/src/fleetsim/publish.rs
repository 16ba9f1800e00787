//! `--publish-at`: a real change to the spawned server's copy of the config, published
//! through `/v1/admin/publish` during a timed phase. By default it changes one module that
//! only the web nodes include, so a server that recompiles only the nodes whose inputs
//! changed recompiles those and no other; `--publish-change settings` changes a variable
//! every node reads, for a whole-fleet recompile under load.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Result, bail};

use super::report::PublishReport;
use super::{Ctx, admin_call, stats};

/// What `--publish-at` changes in the config before publishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishChange {
    /// The `listen_port` default of `modules/web.yaml`: only the web nodes' bundles change,
    /// so a server that recompiles selectively recompiles only them.
    Module,
    /// The `admin_email` variable of `vigo.yaml` (the base module's motd reads it): every
    /// node's inputs change, so the whole fleet recompiles.
    Settings,
}

impl PublishChange {
    pub fn parse(text: &str) -> Result<PublishChange> {
        match text {
            "module" => Ok(PublishChange::Module),
            "settings" => Ok(PublishChange::Settings),
            _ => bail!("publish change {text:?} is neither module nor settings"),
        }
    }
}

/// Replaces the value of the first indented `NAME: VALUE` line of a YAML text (a variable
/// under `vars:`), keeping its indentation; `None` when there is no such line.
fn set_var(text: &str, name: &str, value: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut found = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let is_it = !indent.is_empty()
            && body
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':'));
        if is_it && !found {
            found = true;
            out.push_str(&format!("{indent}{name}: {value}\n"));
        } else {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

/// Changes the served config for the `number`-th publish of the run: which file, which
/// variable and its new value.
fn change_for(change: PublishChange, number: u64) -> (&'static str, &'static str, String) {
    match change {
        // The web module's `listen_port` default goes into its site.conf: the bundles of
        // the nodes that include the module (the web nodes) change, no other node's.
        PublishChange::Module => (
            "modules/web.yaml",
            "listen_port",
            (8080 + number).to_string(),
        ),
        // A fleet-wide variable, read by the base module's motd: every bundle changes.
        PublishChange::Settings => (
            "vigo.yaml",
            "admin_email",
            format!("ops+publish{number}@example.com"),
        ),
    }
}

/// Changes the served config and publishes it (`--publish-at`). A real change, so that a
/// server that recompiles only the nodes whose inputs changed has those to recompile: by
/// default one module that only the web nodes include, or with `--publish-change settings`
/// a variable every node reads.
pub async fn publish_change(
    ctx: &Ctx,
    config: &Path,
    change: PublishChange,
    phase_start: Instant,
) -> PublishReport {
    let at_secs = phase_start.elapsed().as_secs_f64();
    // Publishes are made one at a time (one per phase), so this is the number the counter
    // takes below.
    let number = ctx.publishes.started.load(Ordering::SeqCst) + 1;
    let (file, var, value) = change_for(change, number);
    let path = config.join(file);
    let mut report = PublishReport {
        at_secs,
        change: format!("{file}: {var} = {value}"),
        ..PublishReport::default()
    };
    let changed = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| set_var(&text, var, &value).ok_or_else(|| format!("no {var}: line")))
        .and_then(|text| std::fs::write(&path, text).map_err(|e| e.to_string()));
    if let Err(e) = changed {
        report.error = Some(format!("changing {}: {e}", path.display()));
        return report;
    }
    let mut conn = None;
    let before = stats(ctx).await;
    ctx.publishes.started.fetch_add(1, Ordering::SeqCst);
    match admin_call(ctx, &mut conn, "POST", "/v1/admin/publish", &[]).await {
        Ok(v) => {
            report.result = v["result"].as_str().unwrap_or("?").to_string();
            report.compiles_before = before["compiles"].as_u64().unwrap_or(0);
            if report.result == "accepted" {
                report.number = number;
                ctx.publishes.accepted.store(number, Ordering::SeqCst);
            }
        }
        Err(e) => report.error = Some(format!("publishing: {e:#}")),
    }
    report.took_secs = phase_start.elapsed().as_secs_f64() - at_secs;
    report
}

#[cfg(test)]
mod tests {
    use super::set_var;

    fn check(text: &str, name: &str, value: &str, expected: Option<&str>) {
        assert_eq!(set_var(text, name, value).as_deref(), expected);
    }

    #[test]
    fn a_variable_is_set_in_place() {
        check(
            "name: web\nvars:\n  listen_port: 80\n  server_name: x\nresources: []\n",
            "listen_port",
            "8081",
            Some("name: web\nvars:\n  listen_port: 8081\n  server_name: x\nresources: []\n"),
        );
        // Only the first, only indented lines, and not a longer name or a template use.
        check(
            "listen_port: 1\n  listen_port_x: 2\n  listen {{ vars.listen_port }};\n  listen_port: 3\n  listen_port: 4",
            "listen_port",
            "5",
            Some(
                "listen_port: 1\n  listen_port_x: 2\n  listen {{ vars.listen_port }};\n  listen_port: 5\n  listen_port: 4",
            ),
        );
        check("vars:\n  other: 1\n", "listen_port", "5", None);
    }
}
