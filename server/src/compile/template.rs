//! `content:` templates, rendered with `upon` (`{{ vars.x }}`, `{% if %}`, `{% for %}`).
//!
//! Values are looked up lazily through `render_from_fn`, which lets the compiler record
//! every value a template actually read — `config trace` lists them beneath the template —
//! and notice when one of them came from a secret, so that the rendered content is marked
//! sensitive and its trace shows `secret:REF`, never the value.

use std::cell::RefCell;
use std::collections::BTreeMap;

use upon::{Engine, Value, ValueAccess, ValueMember};

use crate::config::model::VarValue;
use crate::secrets::Secret;

/// What a template can read: `vars.*`, `facts.*` and `node.name`.
pub struct Scope<'a> {
    /// Variables, resolved for the resource's module.
    pub vars: &'a BTreeMap<String, VarValue>,
    /// The node's facts (empty when compiling without facts).
    pub facts: &'a BTreeMap<String, VarValue>,
    /// The node's name.
    pub node: &'a str,
    /// Resolved secrets, for variables that reference one.
    pub secrets: &'a BTreeMap<crate::secrets::SecretRef, Secret>,
}

/// One value a template read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    /// Its path: `vars.ntp_servers`, `facts.os`, `node.name`.
    pub path: String,
    /// Its value as the trace shows it (`secret:REF` for secrets).
    pub shown: String,
}

/// A rendered template.
#[derive(Debug)]
pub struct Rendered {
    /// The output.
    pub text: String,
    /// What it read, in first-read order, each path once.
    pub used: Vec<Used>,
    /// Some of what it read came from a secret.
    pub sensitive: bool,
}

/// Checks template syntax only.
pub fn check_syntax(src: &str) -> Result<(), String> {
    Engine::new()
        .compile(src)
        .map(|_| ())
        .map_err(|e| one_line(&e))
}

/// Renders `src` in `scope`. Errors name the problem but never include a secret's value.
pub fn render(src: &str, scope: &Scope<'_>) -> Result<Rendered, String> {
    let engine = Engine::new();
    let template = engine.compile(src).map_err(|e| one_line(&e))?;
    let used: RefCell<Vec<Used>> = RefCell::new(Vec::new());
    let sensitive = RefCell::new(false);
    let text = template
        .render_from_fn(&engine, |path: &[ValueMember<'_>]| {
            let (value, shown, secret) = lookup(path, scope)?;
            let path_text = path_text(path);
            let mut used = used.borrow_mut();
            if !used.iter().any(|u| u.path == path_text) {
                used.push(Used {
                    path: path_text,
                    shown,
                });
            }
            if secret {
                *sensitive.borrow_mut() = true;
            }
            Ok(value)
        })
        .to_string()
        .map_err(|e| one_line(&e))?;
    Ok(Rendered {
        text,
        used: used.into_inner(),
        sensitive: sensitive.into_inner(),
    })
}

/// The `vars.*`, `facts.*` and `node.*` paths a template mentions, found by reading its
/// tags (used by validation, which has no node to render for).
pub fn used_paths(src: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let Some(end) = after.find(close) else { break };
        scan_tag(&after[1..end], &mut out);
        rest = &after[end + close.len()..];
    }
    out
}

fn scan_tag(tag: &str, out: &mut Vec<String>) {
    let mut word = String::new();
    let mut in_string = None;
    for c in tag.chars().chain(std::iter::once(' ')) {
        if let Some(q) = in_string {
            if c == q {
                in_string = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            in_string = Some(c);
            word.clear();
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            word.push(c);
        } else {
            let w = std::mem::take(&mut word);
            let rooted = ["vars.", "facts.", "node."]
                .iter()
                .any(|p| w.starts_with(p));
            if rooted && !out.contains(&w) {
                out.push(w);
            }
        }
    }
}

fn path_text(path: &[ValueMember<'_>]) -> String {
    let mut s = String::new();
    for (i, m) in path.iter().enumerate() {
        match m.access {
            ValueAccess::Key(k) => {
                if i > 0 {
                    s.push('.');
                }
                s.push_str(k);
            }
            ValueAccess::Index(n) => s.push_str(&format!("[{n}]")),
        }
    }
    s
}

fn lookup(path: &[ValueMember<'_>], scope: &Scope<'_>) -> Result<(Value, String, bool), String> {
    let key = |i: usize| match path.get(i).map(|m| m.access) {
        Some(ValueAccess::Key(k)) => Some(k),
        _ => None,
    };
    let (root, rest) = match key(0) {
        Some("node") => {
            return match key(1) {
                Some("name") if path.len() == 2 => {
                    Ok((Value::String(scope.node.into()), scope.node.into(), false))
                }
                _ => Err("`node` has only `node.name`".into()),
            };
        }
        Some("vars") => (scope.vars, &path[1..]),
        Some("facts") => (scope.facts, &path[1..]),
        _ => {
            return Err(format!(
                "unknown name `{}`: templates read vars.*, facts.* and node.name",
                path_text(path)
            ));
        }
    };
    let Some(ValueAccess::Key(first)) = rest.first().map(|m| m.access) else {
        return Err(format!(
            "`{}` needs a name after it, such as vars.ntp_servers",
            path_text(path)
        ));
    };
    let mut current = root
        .get(first)
        .ok_or_else(|| format!("`{}` is not defined for this node", path_text(&path[..2])))?;
    for m in &rest[1..] {
        current = match (current, m.access) {
            (VarValue::Map(map), ValueAccess::Key(k)) => map.get(k),
            (VarValue::List(items), ValueAccess::Index(i)) => items.get(i),
            _ => None,
        }
        .ok_or_else(|| format!("`{}` is not defined for this node", path_text(path)))?;
    }
    to_upon(current, scope)
}

/// Converts a variable value; secrets become their value (marked) and show as `secret:REF`.
fn to_upon(v: &VarValue, scope: &Scope<'_>) -> Result<(Value, String, bool), String> {
    Ok(match v {
        VarValue::Null => (Value::None, "~".into(), false),
        VarValue::Str(s) => (Value::String(s.clone()), s.clone(), false),
        VarValue::Int(i) => (Value::Integer(*i), i.to_string(), false),
        VarValue::Float(f) => (Value::Float(f.parse().unwrap_or(0.0)), f.clone(), false),
        VarValue::Bool(b) => (Value::Bool(*b), b.to_string(), false),
        VarValue::Secret(r) => {
            let secret = scope
                .secrets
                .get(r)
                .ok_or_else(|| format!("{r} is not resolved"))?;
            (
                Value::String(secret.expose().to_string()),
                r.to_string(),
                true,
            )
        }
        VarValue::List(items) => {
            let mut out = Vec::new();
            let mut shown = Vec::new();
            let mut secret = false;
            for i in items {
                let (v, s, sec) = to_upon(i, scope)?;
                out.push(v);
                shown.push(s);
                secret |= sec;
            }
            (Value::List(out), format!("[{}]", shown.join(", ")), secret)
        }
        VarValue::Map(m) => {
            let mut out = BTreeMap::new();
            let mut shown = Vec::new();
            let mut secret = false;
            for (k, i) in m {
                let (v, s, sec) = to_upon(i, scope)?;
                out.insert(k.clone(), v);
                shown.push(format!("{k}: {s}"));
                secret |= sec;
            }
            (Value::Map(out), format!("{{{}}}", shown.join(", ")), secret)
        }
    })
}

fn one_line(e: &upon::Error) -> String {
    // `{:#}` adds the template line and a caret; the plain form plus our own position
    // keeps diagnostics on one line.
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretRef, secret_from_parts};

    fn scope_parts() -> (
        BTreeMap<String, VarValue>,
        BTreeMap<String, VarValue>,
        BTreeMap<SecretRef, Secret>,
    ) {
        let r = SecretRef::parse("db/pw").unwrap();
        let mut vars = BTreeMap::new();
        vars.insert(
            "ntp".into(),
            VarValue::List(vec![
                VarValue::Str("a.pool".into()),
                VarValue::Str("b.pool".into()),
            ]),
        );
        vars.insert("db_pw".into(), VarValue::Secret(r.clone()));
        vars.insert("port".into(), VarValue::Int(5432));
        let mut facts = BTreeMap::new();
        facts.insert("os".into(), VarValue::Str("debian".into()));
        let mut secrets = BTreeMap::new();
        secrets.insert(r.clone(), secret_from_parts(r, "s3cr3t".into()));
        (vars, facts, secrets)
    }

    #[test]
    fn renders_and_records_what_it_read() {
        let (vars, facts, secrets) = scope_parts();
        let scope = Scope {
            vars: &vars,
            facts: &facts,
            node: "web01",
            secrets: &secrets,
        };
        let out = render("{% for s in vars.ntp %}server {{ s }}\n{% endfor %}# {{ node.name }} on {{ facts.os }}:{{ vars.port }}\n", &scope).unwrap();
        assert_eq!(
            out.text,
            "server a.pool\nserver b.pool\n# web01 on debian:5432\n"
        );
        let paths: Vec<&str> = out.used.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["vars.ntp", "node.name", "facts.os", "vars.port"]);
        assert!(!out.sensitive);
    }

    #[test]
    fn secrets_mark_the_output_sensitive_and_show_as_references() {
        let (vars, facts, secrets) = scope_parts();
        let scope = Scope {
            vars: &vars,
            facts: &facts,
            node: "web01",
            secrets: &secrets,
        };
        let out = render("password={{ vars.db_pw }}\n", &scope).unwrap();
        assert_eq!(out.text, "password=s3cr3t\n");
        assert!(out.sensitive);
        assert_eq!(
            out.used,
            vec![Used {
                path: "vars.db_pw".into(),
                shown: "secret:db/pw".into()
            }]
        );
    }

    #[test]
    fn errors() {
        let (vars, facts, secrets) = scope_parts();
        let scope = Scope {
            vars: &vars,
            facts: &facts,
            node: "web01",
            secrets: &secrets,
        };
        assert!(check_syntax("{{ vars.x ").is_err());
        let err = render("{{ vars.missing }}", &scope).unwrap_err();
        assert!(err.contains("vars.missing"), "{err}");
    }

    #[test]
    fn static_scan_finds_rooted_paths() {
        let src = "{% if vars.enabled %}{{ vars.ntp.servers }} '{{ \"vars.not\" }}' {{ facts.os }}{% endif %} {x}";
        assert_eq!(
            used_paths(src),
            ["vars.enabled", "vars.ntp.servers", "facts.os"]
        );
    }
}
