//! Checks that span files: module and node-rule references, module cycles, duplicate
//! resources, dangling and cyclic resource dependencies, unknown variables, secret
//! resolution and the self-protection guardrails.

use std::collections::{BTreeMap, BTreeSet};

use vigo_shared::bundle::ResourceKind;
use vigo_shared::when::{self, Side};

use super::diag::{Diagnostic, Span, did_you_mean};
use super::guardrails;
use super::model::{AttrSrc, Cond, Config, Module, ResourceDef, VarValue, Vars};
use crate::compile::template;
use crate::secrets::{SecretProvider, SecretRef};

/// Runs every cross-file check, resolving the config's secrets into `config.secrets`.
pub fn check(config: &mut Config, secrets: &dyn SecretProvider, diags: &mut Vec<Diagnostic>) {
    check_module_refs(config, diags);
    check_rules(config, diags);
    check_closures(config, diags);
    check_vars(config, diags);
    check_guardrails(config, diags);
    resolve_secrets(config, secrets, diags);
}

fn check_module_refs(config: &Config, diags: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = config.modules.keys().map(String::as_str).collect();
    for m in config.modules.values() {
        for dep in &m.depends_on {
            if !config.modules.contains_key(&dep.name) {
                diags.push(
                    Diagnostic::new(
                        dep.span.clone(),
                        format!(
                            "module `{}` depends on unknown module `{}`",
                            m.name, dep.name
                        ),
                    )
                    .hint(
                        did_you_mean(&dep.name, names.iter().copied())
                            .unwrap_or_else(|| "check the module's name".into()),
                    ),
                );
            }
        }
    }
    // Module cycles: depth-first search with colours.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for name in config.modules.keys() {
        let mut path = Vec::new();
        module_cycle(config, name, &mut state, &mut path, diags);
    }
}

fn module_cycle<'a>(
    config: &'a Config,
    name: &'a str,
    state: &mut BTreeMap<&'a str, u8>,
    path: &mut Vec<&'a str>,
    diags: &mut Vec<Diagnostic>,
) {
    match state.get(name) {
        Some(2) => return,
        Some(1) => {
            let start = path.iter().position(|p| *p == name).unwrap_or(0);
            let mut cycle: Vec<&str> = path[start..].to_vec();
            cycle.push(name);
            if let Some(m) = config.modules.get(name) {
                diags.push(Diagnostic::new(
                    m.span.clone(),
                    format!("module dependency cycle: {}", cycle.join(" -> ")),
                ));
            }
            return;
        }
        _ => {}
    }
    let Some(m) = config.modules.get(name) else {
        return;
    };
    state.insert(name, 1);
    path.push(name);
    for dep in &m.depends_on {
        module_cycle(config, &dep.name, state, path, diags);
    }
    path.pop();
    state.insert(name, 2);
}

fn check_rules(config: &Config, diags: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = config.modules.keys().map(String::as_str).collect();
    let mut seen: BTreeMap<&str, &Span> = BTreeMap::new();
    for rule in &config.rules {
        if let Some(first) = seen.insert(&rule.name, &rule.span) {
            diags.push(Diagnostic::new(
                rule.span.clone(),
                format!("node rule `{}` is already defined at {first}", rule.name),
            ));
        }
        for m in &rule.modules {
            if !config.modules.contains_key(&m.name) {
                let hint = did_you_mean(&m.name, names.iter().copied())
                    .unwrap_or_else(|| "check the module's name".into());
                diags.push(
                    Diagnostic::new(
                        m.span.clone(),
                        format!(
                            "node rule `{}` includes unknown module `{}`",
                            rule.name, m.name
                        ),
                    )
                    .hint(hint),
                );
            }
        }
        if let Some(Cond {
            expr: Some(expr),
            span,
            ..
        }) = &rule.when
        {
            for term in when::terms(expr) {
                if term.side == Side::Agent {
                    diags.push(Diagnostic::new(
                        span.clone(),
                        format!("node rule `{}`: `{}` is evaluated on the node, but a rule's `when` is decided on the server from facts", rule.name, term.text),
                    ).hint("move the condition to the module or resource"));
                }
            }
        }
    }
}

/// The modules a set of roots includes, dependencies first, each once.
pub fn module_closure<'a>(
    config: &'a Config,
    roots: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a Module> {
    fn visit<'a>(
        config: &'a Config,
        name: &str,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<&'a Module>,
    ) {
        if !seen.insert(name.to_string()) {
            return;
        }
        let Some(m) = config.modules.get(name) else {
            return;
        };
        for dep in &m.depends_on {
            visit(config, &dep.name, seen, out);
        }
        out.push(m);
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roots {
        visit(config, r, &mut seen, &mut out);
    }
    out
}

/// Per node rule (and per module for modules no rule includes): duplicates, dangling
/// references and dependency cycles among the resources one node would get.
fn check_closures(config: &Config, diags: &mut Vec<Diagnostic>) {
    let mut groups: Vec<(String, Vec<&Module>)> = Vec::new();
    let mut covered = BTreeSet::new();
    for rule in &config.rules {
        let closure = module_closure(config, rule.modules.iter().map(|m| m.name.as_str()));
        covered.extend(closure.iter().map(|m| m.name.clone()));
        groups.push((format!("nodes matched by rule `{}`", rule.name), closure));
    }
    for name in config.modules.keys() {
        if !covered.contains(name) {
            groups.push((
                format!("module `{name}`"),
                module_closure(config, [name.as_str()]),
            ));
        }
    }
    for (label, modules) in &groups {
        check_resource_set(label, modules, diags);
    }
}

fn check_resource_set(label: &str, modules: &[&Module], diags: &mut Vec<Diagnostic>) {
    let mut by_id: BTreeMap<String, &ResourceDef> = BTreeMap::new();
    for m in modules {
        for r in &m.resources {
            let id = r.id();
            if let Some(first) = by_id.get(&id) {
                diags.push(Diagnostic::new(
                    r.span.clone(),
                    format!(
                        "duplicate resource `{id}` on {label}: first defined at {}",
                        first.span
                    ),
                ));
            } else {
                by_id.insert(id, r);
            }
        }
    }
    let ids: Vec<&str> = by_id.keys().map(String::as_str).collect();
    for r in by_id.values() {
        for (field, refs) in [("depends_on", &r.depends_on), ("notify", &r.notify)] {
            for target in refs.iter() {
                let Some((kind, _)) = target.name.split_once(':') else {
                    diags.push(Diagnostic::new(
                        target.span.clone(),
                        format!(
                            "`{field}: {}` must be `type:name`, e.g. `package:nginx`",
                            target.name
                        ),
                    ));
                    continue;
                };
                if ResourceKind::parse(kind).is_none() {
                    diags.push(Diagnostic::new(
                        target.span.clone(),
                        format!("`{field}: {}` names unknown type `{kind}`", target.name),
                    ));
                    continue;
                }
                if !by_id.contains_key(&target.name) {
                    let hint = did_you_mean(&target.name, ids.iter().copied())
                        .unwrap_or_else(|| "define that resource or fix the reference".into());
                    diags.push(
                        Diagnostic::new(
                            target.span.clone(),
                            format!("`{field}: {}` does not exist on {label}", target.name),
                        )
                        .hint(hint),
                    );
                }
            }
        }
    }
    // Cycles through depends_on and module order (a module's resources come after those of
    // the modules it depends on, so an edge back from a dependency closes a loop).
    let order = crate::compile::order::order_resources(modules);
    if let Err(cycle) = order {
        let span = cycle
            .iter()
            .find_map(|id| by_id.get(id).map(|r| r.span.clone()))
            .or_else(|| modules.first().map(|m| m.span.clone()))
            .unwrap_or_default();
        diags.push(Diagnostic::new(
            span,
            format!("dependency cycle on {label}: {}", cycle.join(" -> ")),
        ));
    }
}

/// Every variable read by a condition or template must be defined by some layer.
fn check_vars(config: &Config, diags: &mut Vec<Diagnostic>) {
    let mut defined: BTreeSet<&str> = config.settings.vars.keys().map(String::as_str).collect();
    for m in config.modules.values() {
        defined.extend(m.vars.keys().map(String::as_str));
    }
    for r in &config.rules {
        defined.extend(r.vars.keys().map(String::as_str));
    }
    let report = |name: &str, span: &Span, diags: &mut Vec<Diagnostic>| {
        if !defined.contains(name) {
            let hint = did_you_mean(name, defined.iter().copied())
                .unwrap_or_else(|| "define it in a module's vars, vigo.yaml or a node rule".into());
            diags.push(
                Diagnostic::new(
                    span.clone(),
                    format!("variable `{name}` is not defined anywhere"),
                )
                .hint(hint),
            );
        }
    };
    let conds = config
        .modules
        .values()
        .flat_map(|m| {
            m.when
                .iter()
                .chain(m.resources.iter().filter_map(|r| r.when.as_ref()))
        })
        .chain(config.rules.iter().filter_map(|r| r.when.as_ref()));
    for cond in conds {
        if let Some(expr) = &cond.expr {
            for v in when::vars_used(expr) {
                report(&v, &cond.span, diags);
            }
        }
    }
    for m in config.modules.values() {
        for r in &m.resources {
            if let Some(def) = r.attrs.get("content")
                && let AttrSrc::Str(tpl) = &def.value
            {
                for path in template::used_paths(tpl) {
                    if let Some(rest) = path.strip_prefix("vars.") {
                        let name = rest.split('.').next().unwrap_or(rest);
                        report(name, &def.span, diags);
                    }
                }
            }
        }
    }
}

fn check_guardrails(config: &Config, diags: &mut Vec<Diagnostic>) {
    let extra = [config.dir.to_string_lossy().into_owned()];
    for m in config.modules.values() {
        for r in &m.resources {
            let spec = vigo_shared::schema::spec(r.kind);
            let target = match r.attrs.get(spec.name_attr).map(|a| &a.value) {
                Some(AttrSrc::Str(s)) => s.as_str(),
                _ => r.name.as_str(),
            };
            let removes = matches!(r.attrs.get("state").map(|a| &a.value), Some(AttrSrc::Str(s)) if s == "absent");
            if let Some(msg) = guardrails::violation(r.kind, target, removes, &extra) {
                diags.push(Diagnostic::new(
                    r.span.clone(),
                    format!("{} `{}`: {msg}", r.kind, r.name),
                ));
            }
            if r.kind == ResourceKind::Symlink
                && let Some(AttrSrc::Str(t)) = r.attrs.get("target").map(|a| &a.value)
                && guardrails::violation(r.kind, t, false, &extra).is_some()
            {
                diags.push(Diagnostic::new(
                    r.span.clone(),
                    format!(
                        "symlink `{}` points into {t}, which belongs to Vigo itself",
                        r.name
                    ),
                ));
            }
        }
    }
}

fn resolve_secrets(
    config: &mut Config,
    provider: &dyn SecretProvider,
    diags: &mut Vec<Diagnostic>,
) {
    let mut refs: BTreeMap<SecretRef, Span> = BTreeMap::new();
    let add_vars = |vars: &Vars, refs: &mut BTreeMap<SecretRef, Span>| {
        for def in vars.values() {
            collect_var_secrets(&def.value, &def.span, refs);
        }
    };
    add_vars(&config.settings.vars, &mut refs);
    for m in config.modules.values() {
        add_vars(&m.vars, &mut refs);
        for r in &m.resources {
            for a in r.attrs.values() {
                if let AttrSrc::Secret(s) = &a.value {
                    refs.entry(s.clone()).or_insert_with(|| a.span.clone());
                }
            }
        }
    }
    for r in &config.rules {
        add_vars(&r.vars, &mut refs);
    }
    for (reference, span) in refs {
        match provider.resolve(&reference) {
            Ok(secret) => {
                config.secrets.insert(reference, secret);
            }
            Err(msg) => diags.push(Diagnostic::new(span, msg)),
        }
    }
}

fn collect_var_secrets(v: &VarValue, span: &Span, refs: &mut BTreeMap<SecretRef, Span>) {
    match v {
        VarValue::Secret(s) => {
            refs.entry(s.clone()).or_insert_with(|| span.clone());
        }
        VarValue::List(items) => items
            .iter()
            .for_each(|i| collect_var_secrets(i, span, refs)),
        VarValue::Map(m) => m.values().for_each(|i| collect_var_secrets(i, span, refs)),
        _ => {}
    }
}
