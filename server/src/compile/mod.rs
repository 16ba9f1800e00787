//! Compiling one node's bundle from a loaded config: select node rules, include modules,
//! layer variables, decide conditions, render templates, hash passwords, order resources.
//!
//! `compile(config, node, facts)` is pure: same config, node and facts give the same bundle
//! bytes. Errors confined to one resource (a template that fails to render for this node, a
//! condition that cannot be evaluated) skip that resource only; the bundle carries the reason
//! so the agent reports it, and the rest of the policy still converges.

pub mod env;
pub mod inputs;
pub mod order;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};

use vigo_shared::bundle::{Attr, AttrValue, Bundle, Resource, ResourceKind, Sensitive};
use vigo_shared::glob::glob_match;
use vigo_shared::schema;
use vigo_shared::sign::BundleHash;
use vigo_shared::when::{self, Partial, Side};

use crate::config::check::module_closure;
use crate::config::model::{AttrSrc, Cond, Config, Module, ResourceDef, VarValue};
use crate::trace::{
    CondTrace, ModuleTrace, ResourceTrace, RuleTrace, TagTrace, TemplateUse, TermTrace, Trace,
    VarLayer, VarTrace, WaiverTrace,
};
use env::ServerEnv;

/// A node's facts as the server holds them (from `vigo-agent facts --json`).
pub type Facts = BTreeMap<String, VarValue>;

/// Why no bundle could be built for a node at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    /// Two included modules define the same resource.
    #[error(
        "resource `{id}` is defined twice for node {node}: at {first} and at {second}; remove one or give them different names"
    )]
    Duplicate {
        /// The node.
        node: String,
        /// `type:name`.
        id: String,
        /// First definition.
        first: String,
        /// Second definition.
        second: String,
    },
    /// The resources' dependencies form a loop.
    #[error("dependency cycle for node {node}: {}", cycle.join(" -> "))]
    Cycle {
        /// The node.
        node: String,
        /// The ids along the cycle.
        cycle: Vec<String>,
    },
}

/// A compiled bundle and how it came about.
#[derive(Debug)]
pub struct Compiled {
    /// The bundle.
    pub bundle: Bundle,
    /// Its canonical hash.
    pub hash: BundleHash,
    /// The resolution trace.
    pub trace: Trace,
}

/// Parses `vigo-agent facts --json` output.
pub fn facts_from_json(text: &str) -> Result<Facts, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("facts are not valid JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("facts must be a JSON object of name: value".into());
    };
    Ok(map.into_iter().map(|(k, v)| (k, from_json(v))).collect())
}

fn from_json(v: serde_json::Value) -> VarValue {
    match v {
        serde_json::Value::Null => VarValue::Null,
        serde_json::Value::Bool(b) => VarValue::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => VarValue::Int(i),
            None => VarValue::Float(n.to_string()),
        },
        serde_json::Value::String(s) => VarValue::Str(s),
        serde_json::Value::Array(a) => VarValue::List(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            VarValue::Map(o.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

/// How a variable value shows in traces: secrets as their reference.
pub fn show(v: &VarValue) -> String {
    match v {
        VarValue::Null => "~".into(),
        VarValue::Str(s) => format!("{s:?}"),
        VarValue::Int(i) => i.to_string(),
        VarValue::Float(f) => f.clone(),
        VarValue::Bool(b) => b.to_string(),
        VarValue::Secret(r) => r.to_string(),
        VarValue::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        VarValue::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Compiles the bundle of `node`. `today` (`YYYY-MM-DD`) decides which waivers expired.
pub fn compile(
    config: &Config,
    node: &str,
    facts: Option<&Facts>,
    today: &str,
) -> Result<Compiled, CompileError> {
    // Node rules.
    let mut rules = Vec::new();
    let mut matched = Vec::new();
    for rule in &config.rules {
        let (is_match, why) = rule_matches(config, rule, node, facts);
        if is_match {
            matched.push(rule);
        }
        rules.push(RuleTrace {
            name: rule.name.clone(),
            at: rule.span.clone(),
            priority: rule.priority,
            matched: is_match,
            why,
        });
    }

    // Modules.
    let closure = module_closure(
        config,
        matched
            .iter()
            .flat_map(|r| r.modules.iter().map(|m| m.name.as_str())),
    );
    let mut via: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for rule in &matched {
        for m in &rule.modules {
            via.entry(&m.name)
                .or_default()
                .push(format!("rule {} ({})", rule.name, m.span));
        }
    }
    for m in &closure {
        for d in &m.depends_on {
            via.entry(&d.name)
                .or_default()
                .push(format!("dependency of {} ({})", m.name, d.span));
        }
    }
    let modules: Vec<ModuleTrace> = closure
        .iter()
        .map(|m| ModuleTrace {
            name: m.name.clone(),
            at: m.span.clone(),
            via: via.remove(m.name.as_str()).unwrap_or_default(),
        })
        .collect();

    // Settings.
    let mut observe = config.settings.observe;
    for r in &matched {
        if let Some(o) = r.observe {
            observe = o;
        }
    }

    // Variables: per module, module defaults < vigo.yaml < matched rules in order.
    let mut module_vars: BTreeMap<&str, BTreeMap<String, VarValue>> = BTreeMap::new();
    for m in &closure {
        let mut vars: BTreeMap<String, VarValue> = BTreeMap::new();
        let layers = std::iter::once(&m.vars)
            .chain(std::iter::once(&config.settings.vars))
            .chain(matched.iter().map(|r| &r.vars));
        for layer in layers {
            for (k, def) in layer {
                vars.insert(k.clone(), def.value.clone());
            }
        }
        module_vars.insert(&m.name, vars);
    }
    let vars = var_traces(config, &closure, &matched);

    // Resources in apply order.
    let ordered = order::order_resources(&closure).map_err(|cycle| CompileError::Cycle {
        node: node.to_string(),
        cycle,
    })?;
    let mut seen: BTreeMap<String, &ResourceDef> = BTreeMap::new();
    for (_, r) in &ordered {
        if let Some(first) = seen.insert(r.id(), r) {
            return Err(CompileError::Duplicate {
                node: node.into(),
                id: r.id(),
                first: first.span.to_string(),
                second: r.span.to_string(),
            });
        }
    }

    let empty = BTreeMap::new();
    let mut resources = Vec::new();
    let mut traces = Vec::new();
    for (m, r) in &ordered {
        let vars = module_vars.get(m.name.as_str()).unwrap_or(&empty);
        let env = ServerEnv { node, facts, vars };
        let (resource, trace) = compile_resource(config, m, r, &env, today);
        traces.push(trace);
        if let Some(res) = resource {
            resources.push(res);
        }
    }
    // Dependencies on resources this node does not get are satisfied by definition.
    let present: BTreeSet<String> = resources.iter().map(Resource::id).collect();
    for r in &mut resources {
        r.depends_on.retain(|d| present.contains(d));
        r.notify.retain(|d| present.contains(d));
    }
    for t in &mut traces {
        t.depends_on.retain(|d| present.contains(d));
        t.notify.retain(|d| present.contains(d));
    }

    let bundle = Bundle {
        node: node.to_string(),
        policy: config.hash.clone(),
        observe,
        interval_secs: config.settings.interval_secs,
        resources,
    };
    let hash = BundleHash::of(&vigo_shared::codec::encode(&bundle));
    let trace = Trace {
        node: node.to_string(),
        policy: config.hash.clone(),
        facts_given: facts.is_some(),
        observe,
        interval_secs: config.settings.interval_secs,
        rules,
        modules,
        vars,
        resources: traces,
        bundle_hash: hash.to_string(),
    };
    Ok(Compiled {
        bundle,
        hash,
        trace,
    })
}

fn rule_matches(
    config: &Config,
    rule: &crate::config::model::NodeRule,
    node: &str,
    facts: Option<&Facts>,
) -> (bool, String) {
    let Some(p) = rule.patterns.iter().find(|p| glob_match(&p.name, node)) else {
        let globs: Vec<&str> = rule.patterns.iter().map(|p| p.name.as_str()).collect();
        return (false, format!("no glob matches ({})", globs.join(", ")));
    };
    let Some(cond) = &rule.when else {
        return (true, format!("matches `{}`", p.name));
    };
    let vars: BTreeMap<String, VarValue> = config
        .settings
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    let env = ServerEnv {
        node,
        facts,
        vars: &vars,
    };
    let Some(expr) = &cond.expr else {
        return (false, "its `when` does not parse".into());
    };
    match when::partial_eval(expr, &env) {
        Ok(Partial::Known(true)) => (true, format!("matches `{}` and `{}`", p.name, cond.text)),
        Ok(Partial::Known(false)) => (
            false,
            format!("matches `{}` but `{}` is false", p.name, cond.text),
        ),
        Ok(Partial::Residual(_)) => (
            false,
            format!(
                "matches `{}` but `{}` needs the node's facts (give --facts)",
                p.name, cond.text
            ),
        ),
        Err(e) => (
            false,
            format!("matches `{}` but `{}` failed: {e}", p.name, cond.text),
        ),
    }
}

fn var_traces(
    config: &Config,
    closure: &[&Module],
    matched: &[&crate::config::model::NodeRule],
) -> Vec<VarTrace> {
    let mut out: BTreeMap<String, Vec<VarLayer>> = BTreeMap::new();
    for m in closure {
        for (k, d) in &m.vars {
            out.entry(k.clone()).or_default().push(VarLayer {
                layer: format!("module {} (default)", m.name),
                value: show(&d.value),
                at: d.span.clone(),
            });
        }
    }
    for (k, d) in &config.settings.vars {
        out.entry(k.clone()).or_default().push(VarLayer {
            layer: "vigo.yaml".into(),
            value: show(&d.value),
            at: d.span.clone(),
        });
    }
    for r in matched {
        for (k, d) in &r.vars {
            out.entry(k.clone()).or_default().push(VarLayer {
                layer: format!("rule {}", r.name),
                value: show(&d.value),
                at: d.span.clone(),
            });
        }
    }
    out.into_iter()
        .map(|(name, layers)| {
            let value = layers.last().map(|l| l.value.clone()).unwrap_or_default();
            VarTrace {
                name,
                value,
                layers,
            }
        })
        .collect()
}

fn cond_trace(
    scope: &str,
    cond: &Cond,
    env: &ServerEnv<'_>,
) -> (CondTrace, Result<Partial, String>) {
    let mut t = CondTrace {
        scope: scope.into(),
        expr: cond.text.clone(),
        at: cond.span.clone(),
        terms: Vec::new(),
        outcome: String::new(),
        residual: None,
    };
    let Some(expr) = &cond.expr else {
        t.outcome = "error".into();
        return (t, Err(format!("condition `{}` does not parse", cond.text)));
    };
    t.terms = when::terms(expr)
        .into_iter()
        .map(|term| TermTrace {
            term: term.text,
            side: if term.side == Side::Server {
                "server".into()
            } else {
                "agent".into()
            },
        })
        .collect();
    let result =
        when::partial_eval(expr, env).map_err(|e| format!("condition `{}`: {e}", cond.text));
    t.outcome = match &result {
        Ok(Partial::Known(b)) => b.to_string(),
        Ok(Partial::Residual(r)) => {
            t.residual = Some(r.to_string());
            "residual".into()
        }
        Err(e) => format!("error: {e}"),
    };
    (t, result)
}

fn compile_resource(
    config: &Config,
    m: &Module,
    r: &ResourceDef,
    env: &ServerEnv<'_>,
    today: &str,
) -> (Option<Resource>, ResourceTrace) {
    let mut trace = ResourceTrace {
        id: r.id(),
        module: m.name.clone(),
        at: r.span.clone(),
        status: "included".into(),
        reason: None,
        conditions: Vec::new(),
        depends_on: r.depends_on.iter().map(|d| d.name.clone()).collect(),
        notify: r.notify.iter().map(|d| d.name.clone()).collect(),
        compliance: Vec::new(),
        template: Vec::new(),
    };
    let mut skip: Option<String> = None;
    let mut residuals: Vec<String> = Vec::new();
    for (scope, cond) in [("module", m.when.as_ref()), ("resource", r.when.as_ref())] {
        let Some(cond) = cond else { continue };
        let (ct, result) = cond_trace(scope, cond, env);
        trace.conditions.push(ct);
        match result {
            Ok(Partial::Known(true)) => {}
            Ok(Partial::Known(false)) => {
                trace.status = "excluded".into();
                trace.reason = Some(format!(
                    "{scope} condition `{}` is false for this node",
                    cond.text
                ));
            }
            Ok(Partial::Residual(e)) => residuals.push(e.to_string()),
            Err(e) => skip = skip.or(Some(e)),
        }
    }

    let mut tags: Vec<(String, &str)> = m
        .compliance
        .iter()
        .map(|t| (t.name.clone(), "module"))
        .collect();
    for t in &r.compliance {
        if !tags.iter().any(|(n, _)| *n == t.name) {
            tags.push((t.name.clone(), "resource"));
        }
    }
    trace.compliance = tags
        .iter()
        .map(|(tag, from)| TagTrace {
            tag: tag.clone(),
            from: (*from).into(),
            waiver: waiver_for(config, tag, env.node, today).map(|w| WaiverTrace {
                reason: w.reason.clone(),
                approved_by: w.approved_by.clone(),
                expires: w.expires.clone(),
                expired: w.expires.as_str() < today,
                at: w.span.clone(),
            }),
        })
        .collect();

    if trace.status == "excluded" {
        return (None, trace);
    }

    let attrs = match compile_attrs(config, r, env, &mut trace.template) {
        Ok(a) => a,
        Err(e) => {
            skip = skip.or(Some(e));
            Vec::new()
        }
    };
    if let Some(reason) = &skip {
        trace.status = "skipped".into();
        trace.reason = Some(reason.clone());
    }
    let when = match residuals.len() {
        0 => None,
        1 => residuals.pop(),
        _ => Some(
            residuals
                .iter()
                .map(|r| format!("({r})"))
                .collect::<Vec<_>>()
                .join(" && "),
        ),
    };
    let resource = Resource {
        kind: r.kind,
        name: r.name.clone(),
        attrs: if skip.is_some() { Vec::new() } else { attrs },
        when,
        depends_on: trace.depends_on.clone(),
        notify: trace.notify.clone(),
        compliance: tags.into_iter().map(|(t, _)| t).collect(),
        dangerous: r.dangerous,
        origin: r.span.to_string(),
        module: m.name.clone(),
        skip,
    };
    (Some(resource), trace)
}

/// The waiver of `tag` covering `node`: a current one if there is any, else an expired one
/// (which the trace shows as expired).
fn waiver_for<'a>(
    config: &'a Config,
    tag: &str,
    node: &str,
    today: &str,
) -> Option<&'a crate::config::model::Waiver> {
    let mut covering = config
        .waivers
        .iter()
        .filter(|w| w.tag == tag && glob_match(&w.nodes, node));
    let all: Vec<_> = covering.by_ref().collect();
    all.iter()
        .find(|w| w.expires.as_str() >= today)
        .or(all.first())
        .copied()
}

fn compile_attrs(
    config: &Config,
    r: &ResourceDef,
    env: &ServerEnv<'_>,
    used: &mut Vec<TemplateUse>,
) -> Result<Vec<Attr>, String> {
    let spec = schema::spec(r.kind);
    let mut attrs: BTreeMap<String, AttrValue> = BTreeMap::new();
    for (key, def) in &r.attrs {
        let value = match (&def.value, key.as_str()) {
            (AttrSrc::Str(path), "source") => {
                let text = config.files.get(path).ok_or_else(|| {
                    format!("`source: {path}` could not be read when the config was loaded")
                })?;
                attrs.insert("content".into(), AttrValue::Str(text.clone()));
                continue;
            }
            (AttrSrc::Str(tpl), "content") => {
                let facts = env.facts.cloned().unwrap_or_default();
                let scope = template::Scope {
                    vars: env.vars,
                    facts: &facts,
                    node: env.node,
                    secrets: &config.secrets,
                };
                let out = template::render(tpl, &scope)
                    .map_err(|e| format!("template in `content` ({}): {e}", def.span))?;
                used.extend(out.used.into_iter().map(|u| TemplateUse {
                    path: u.path,
                    value: u.shown,
                }));
                if out.sensitive {
                    AttrValue::Sensitive(Sensitive::new(out.text))
                } else {
                    AttrValue::Str(out.text)
                }
            }
            (AttrSrc::Str(s), _) => AttrValue::Str(s.clone()),
            (AttrSrc::Int(i), _) => AttrValue::Int(*i),
            (AttrSrc::Bool(b), _) => AttrValue::Bool(*b),
            (AttrSrc::List(l), _) => AttrValue::List(l.clone()),
            (AttrSrc::Secret(reference), _) => {
                let secret = config
                    .secrets
                    .get(reference)
                    .ok_or_else(|| format!("{reference} is not resolved"))?;
                if r.kind == ResourceKind::User && key == "password" {
                    let user = match r.attrs.get("username").map(|a| &a.value) {
                        Some(AttrSrc::Str(u)) => u.as_str(),
                        _ => r.name.as_str(),
                    };
                    AttrValue::Sensitive(Sensitive::new(crate::crypt::hash_password(
                        secret.expose(),
                        env.node,
                        user,
                    )?))
                } else {
                    AttrValue::Sensitive(Sensitive::new(secret.expose().to_string()))
                }
            }
        };
        attrs.insert(key.clone(), value);
    }
    if !spec.name_attr.is_empty() && !attrs.contains_key(spec.name_attr) {
        attrs.insert(spec.name_attr.into(), AttrValue::Str(r.name.clone()));
    }
    if !attrs.contains_key("state")
        && let Some(default) = spec.states.first()
    {
        attrs.insert("state".into(), AttrValue::Str((*default).into()));
    }
    Ok(attrs
        .into_iter()
        .map(|(key, value)| Attr { key, value })
        .collect())
}
