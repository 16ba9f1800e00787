//! Typed reading of YAML nodes that records a diagnostic for every problem instead of
//! stopping: unknown keys (with "did you mean"), duplicate keys, wrong types, malformed
//! secret references and `when:` expressions.

use std::collections::BTreeMap;
use std::path::Path;

use vigo_shared::schema::AttrType;
use vigo_shared::when;

use super::diag::{Diagnostic, Span, did_you_mean};
use super::model::{AttrSrc, Cond, Named, VarDef, VarValue, Vars};
use super::yaml::{Kind, Node};
use crate::secrets::{PREFIX, SecretRef};

/// Reads nodes of one file, collecting diagnostics.
pub struct Reader<'a> {
    /// The file, relative to the config directory.
    pub file: &'a Path,
    /// Where problems go.
    pub diags: &'a mut Vec<Diagnostic>,
}

/// The entries of a mapping whose keys are strings, in source order, without duplicates.
pub type Entries<'n> = Vec<(&'n str, &'n Node, &'n Node)>;

impl Reader<'_> {
    /// The span of `node` in this file.
    pub fn span(&self, node: &Node) -> Span {
        Span::new(self.file, node.pos)
    }

    /// Records a diagnostic at `node`.
    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        let d = Diagnostic::new(self.span(node), message);
        self.diags.push(d);
    }

    /// Records a diagnostic with a hint.
    pub fn error_hint(&mut self, node: &Node, message: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::new(self.span(node), message);
        d.hint = hint;
        self.diags.push(d);
    }

    /// The entries of a mapping, checking every key against `allowed`.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Entries<'n>> {
        let Kind::Map(pairs) = &node.kind else {
            self.error(
                node,
                format!(
                    "{what} must be a mapping of keys to values, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut out: Entries<'n> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Some(key) = k.as_str().or_else(|| k.scalar_text()) else {
                self.error(
                    k,
                    format!("keys in {what} must be strings, found {}", k.describe()),
                );
                continue;
            };
            if out.iter().any(|(seen, _, _)| *seen == key) {
                self.error(
                    k,
                    format!(
                        "duplicate key `{key}` in {what}; YAML keeps only one: remove the other"
                    ),
                );
                continue;
            }
            if !allowed.contains(&key) {
                let hint = did_you_mean(key, allowed.iter().copied())
                    .or_else(|| Some(format!("allowed keys: {}", allowed.join(", "))));
                self.error_hint(k, format!("unknown key `{key}` in {what}"), hint);
                continue;
            }
            out.push((key, k, v));
        }
        Some(out)
    }

    /// A required string.
    pub fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s) if !s.is_empty() => Some(s.clone()),
            Kind::Str(_) | Kind::Null => {
                self.error(node, format!("`{field}` must not be empty"));
                None
            }
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => Some(node.raw.clone()),
            _ => {
                self.error(
                    node,
                    format!("`{field}` must be a string, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                let hint = match node.raw.as_str() {
                    "yes" | "on" => {
                        Some("YAML 1.2 reads `yes`/`on` as a string: write `true`".to_string())
                    }
                    "no" | "off" => {
                        Some("YAML 1.2 reads `no`/`off` as a string: write `false`".to_string())
                    }
                    _ => None,
                };
                self.error_hint(
                    node,
                    format!("`{field}` must be true or false, found {}", node.describe()),
                    hint,
                );
                None
            }
        }
    }

    /// An integer.
    pub fn integer(&mut self, node: &Node, field: &str) -> Option<i64> {
        match node.kind {
            Kind::Int(i) => Some(i),
            _ => {
                self.error(
                    node,
                    format!("`{field}` must be an integer, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// A list of strings, also accepting one comma-separated string (`sudo, adm`).
    pub fn string_list(&mut self, node: &Node, field: &str) -> Option<Vec<String>> {
        self.named_list(node, field)
            .map(|v| v.into_iter().map(|n| n.name).collect())
    }

    /// Like [`Reader::string_list`], keeping where each item was written.
    pub fn named_list(&mut self, node: &Node, field: &str) -> Option<Vec<Named>> {
        match &node.kind {
            Kind::Null => Some(Vec::new()),
            Kind::Str(s) => Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Named {
                        name: p.to_string(),
                        span: self.span(node),
                    })
                    .collect(),
            ),
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item.scalar_text() {
                        Some(t) if !t.is_empty() => out.push(Named {
                            name: t.to_string(),
                            span: self.span(item),
                        }),
                        _ => self.error(
                            item,
                            format!(
                                "items of `{field}` must be strings, found {}",
                                item.describe()
                            ),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                self.error(
                    node,
                    format!(
                        "`{field}` must be a list of strings, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    /// A `when:` condition: parsed now so syntax errors are reported at load.
    pub fn cond(&mut self, node: &Node, field: &str) -> Option<Cond> {
        let text = match &node.kind {
            Kind::Str(s) => s.clone(),
            Kind::Bool(_) => node.raw.clone(),
            _ => {
                self.error(
                    node,
                    format!(
                        "`{field}` must be an expression string, found {}",
                        node.describe()
                    ),
                );
                return None;
            }
        };
        let expr = match when::parse(&text) {
            Ok(e) => Some(e),
            Err(e) => {
                self.error(node, format!("invalid `{field}` expression `{text}`: {e}"));
                None
            }
        };
        Some(Cond {
            text,
            expr,
            span: self.span(node),
        })
    }

    /// A mapping of variables.
    pub fn vars(&mut self, node: &Node) -> Vars {
        let mut out = BTreeMap::new();
        let Kind::Map(pairs) = &node.kind else {
            if node.kind != Kind::Null {
                self.error(
                    node,
                    format!(
                        "`vars` must be a mapping of names to values, found {}",
                        node.describe()
                    ),
                );
            }
            return out;
        };
        for (k, v) in pairs {
            let Some(name) = k.scalar_text() else {
                self.error(k, "variable names must be strings");
                continue;
            };
            if !is_identifier(name) {
                self.error(k, format!("variable name `{name}` must be letters, digits and `_`, not starting with a digit"));
                continue;
            }
            if out.contains_key(name) {
                self.error(k, format!("variable `{name}` is set twice here; keep one"));
                continue;
            }
            if let Some(value) = self.var_value(v) {
                out.insert(
                    name.to_string(),
                    VarDef {
                        value,
                        span: self.span(k),
                    },
                );
            }
        }
        out
    }

    fn var_value(&mut self, node: &Node) -> Option<VarValue> {
        Some(match &node.kind {
            Kind::Null => VarValue::Null,
            Kind::Bool(b) => VarValue::Bool(*b),
            Kind::Int(i) => VarValue::Int(*i),
            Kind::Float(f) => VarValue::Float(f.clone()),
            Kind::Str(s) => match s.strip_prefix(PREFIX) {
                Some(path) => VarValue::Secret(self.secret_ref(node, path)?),
                None => VarValue::Str(s.clone()),
            },
            Kind::Seq(items) => {
                VarValue::List(items.iter().filter_map(|i| self.var_value(i)).collect())
            }
            Kind::Map(pairs) => {
                let mut m = BTreeMap::new();
                for (k, v) in pairs {
                    let Some(key) = k.scalar_text() else {
                        self.error(k, "keys of a variable's mapping must be strings");
                        continue;
                    };
                    if let Some(val) = self.var_value(v) {
                        m.insert(key.to_string(), val);
                    }
                }
                VarValue::Map(m)
            }
        })
    }

    fn secret_ref(&mut self, node: &Node, path: &str) -> Option<SecretRef> {
        match SecretRef::parse(path) {
            Ok(r) => Some(r),
            Err(msg) => {
                self.error(node, msg);
                None
            }
        }
    }

    /// An attribute value of the given schema type.
    pub fn attr(&mut self, node: &Node, field: &str, ty: AttrType) -> Option<AttrSrc> {
        if let Some(path) = node.as_str().and_then(|s| s.strip_prefix(PREFIX)) {
            if ty != AttrType::Str {
                self.error(
                    node,
                    format!(
                        "`{field}` cannot come from a secret; it must be {}",
                        ty.describe()
                    ),
                );
                return None;
            }
            return self.secret_ref(node, path).map(AttrSrc::Secret);
        }
        let wrong = |r: &mut Self| {
            r.error(
                node,
                format!(
                    "`{field}` must be {}, found {}",
                    ty.describe(),
                    node.describe()
                ),
            );
            None
        };
        match ty {
            AttrType::Str => match &node.kind {
                Kind::Str(s) => Some(AttrSrc::Str(s.clone())),
                Kind::Int(_) | Kind::Float(_) => Some(AttrSrc::Str(node.raw.clone())),
                _ => wrong(self),
            },
            AttrType::Int => match node.kind {
                Kind::Int(i) => Some(AttrSrc::Int(i)),
                _ => wrong(self),
            },
            AttrType::Bool => match node.kind {
                Kind::Bool(b) => Some(AttrSrc::Bool(b)),
                _ => wrong(self),
            },
            AttrType::List => self.string_list(node, field).map(AttrSrc::List),
            AttrType::Mode => {
                // `mode: 0644` without quotes is the integer 644 in YAML 1.2; its source text
                // still says what the operator meant, so accept it as octal.
                let text = match &node.kind {
                    Kind::Str(s) => s.as_str(),
                    Kind::Int(_) => node.raw.as_str(),
                    _ => return wrong(self),
                };
                match normalize_mode(text) {
                    Some(m) => Some(AttrSrc::Str(m)),
                    None => wrong(self),
                }
            }
            AttrType::Env => self.env_list(node, field).map(AttrSrc::List),
        }
    }

    fn env_list(&mut self, node: &Node, field: &str) -> Option<Vec<String>> {
        match &node.kind {
            Kind::Map(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    match (k.scalar_text(), v.scalar_text()) {
                        (Some(k), Some(v)) if is_env_name(k) => out.push(format!("{k}={v}")),
                        _ => self.error(
                            k,
                            format!(
                                "`{field}` entries must be NAME: value with a valid variable name"
                            ),
                        ),
                    }
                }
                Some(out)
            }
            Kind::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item
                        .as_str()
                        .and_then(|s| s.split_once('=').map(|(k, _)| (k, s)))
                    {
                        Some((k, s)) if is_env_name(k) => out.push(s.to_string()),
                        _ => {
                            self.error(item, format!("`{field}` items must be NAME=value strings"))
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.error(
                    node,
                    format!(
                        "`{field}` must be a mapping of NAME: value, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_env_name(s: &str) -> bool {
    is_identifier(s)
}

/// `644`, `0644`, `4755` → four octal digits; anything else → `None`.
pub fn normalize_mode(text: &str) -> Option<String> {
    let t = text.trim();
    if !(3..=4).contains(&t.len()) || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    Some(format!("{t:0>4}"))
}
