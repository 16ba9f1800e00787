//! Reading one resource of a module: its type decides which keys are allowed; attribute
//! values are checked against the shared schema, and rules that involve several
//! attributes or the file system (`content` xor `source`, `source` inside the config
//! directory, template syntax, absolute paths) are checked here.

use std::collections::BTreeMap;
use std::path::Path;

use vigo_shared::bundle::ResourceKind;
use vigo_shared::schema::{self, COMMON_KEYS};

use super::diag::{Diagnostic, did_you_mean};
use super::model::{AttrDef, AttrSrc, ResourceDef};
use super::read::Reader;
use super::yaml::{Kind, Node};

pub fn read_resource(r: &mut Reader<'_>, node: &Node, dir: &Path) -> Option<ResourceDef> {
    let Kind::Map(pairs) = &node.kind else {
        r.error(
            node,
            format!("a resource must be a mapping, found {}", node.describe()),
        );
        return None;
    };
    // The type decides which keys are allowed, so find it first.
    let type_node = pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some("type"))
        .map(|(_, v)| v);
    let Some(type_node) = type_node else {
        r.error(node, "resource has no `type`");
        return None;
    };
    let type_name = type_node.scalar_text().unwrap_or("");
    let Some(kind) = ResourceKind::parse(type_name) else {
        let hint =
            did_you_mean(type_name, ResourceKind::ALL.iter().map(|k| k.as_str())).or_else(|| {
                Some(format!(
                    "known types: {}",
                    ResourceKind::ALL.map(|k| k.as_str()).join(", ")
                ))
            });
        r.error_hint(
            type_node,
            format!("unknown resource type `{type_name}`"),
            hint,
        );
        return None;
    };
    let spec = schema::spec(kind);
    let allowed: Vec<&str> = COMMON_KEYS
        .iter()
        .copied()
        .chain(spec.attrs.iter().map(|a| a.name))
        .collect();
    let entries = r.map(node, &format!("a {kind} resource"), &allowed)?;

    let mut res = ResourceDef {
        name: String::new(),
        kind,
        attrs: BTreeMap::new(),
        when: None,
        depends_on: Vec::new(),
        notify: Vec::new(),
        compliance: Vec::new(),
        dangerous: false,
        span: r.span(node),
    };
    for (key, _, v) in entries {
        match key {
            "type" => {}
            "name" => res.name = r.string(v, key).unwrap_or_default(),
            "state" => {
                let state = v.scalar_text().unwrap_or("");
                if spec.states.contains(&state) {
                    res.attrs.insert(
                        "state".into(),
                        AttrDef {
                            value: AttrSrc::Str(state.into()),
                            span: r.span(v),
                        },
                    );
                } else {
                    let hint = did_you_mean(state, spec.states.iter().copied())
                        .or_else(|| Some(format!("a {kind} can be: {}", spec.states.join(", "))));
                    r.error_hint(v, format!("invalid state `{state}` for a {kind}"), hint);
                }
            }
            "when" => res.when = r.cond(v, key),
            "depends_on" => res.depends_on = r.named_list(v, key).unwrap_or_default(),
            "notify" => res.notify = r.named_list(v, key).unwrap_or_default(),
            "compliance" => res.compliance = r.named_list(v, key).unwrap_or_default(),
            "dangerous" => res.dangerous = r.boolean(v, key).unwrap_or(false),
            _ => {
                let Some(attr) = spec.attr(key) else { continue };
                if let Some(value) = r.attr(v, key, attr.ty) {
                    res.attrs.insert(
                        key.to_string(),
                        AttrDef {
                            value,
                            span: r.span(v),
                        },
                    );
                }
            }
        }
    }
    if res.name.is_empty() {
        r.error(node, format!("{kind} resource has no `name`"));
        return None;
    }
    for a in spec.attrs.iter().filter(|a| a.required) {
        if !res.attrs.contains_key(a.name) {
            r.error(
                node,
                format!(
                    "{kind} `{}` is missing required attribute `{}`",
                    res.name, a.name
                ),
            );
        }
    }
    check_resource_attrs(r, node, &res, dir);
    Some(res)
}

/// Attribute rules that involve more than one attribute or the file system.
fn check_resource_attrs(r: &mut Reader<'_>, node: &Node, res: &ResourceDef, dir: &Path) {
    let attr = |k: &str| res.attrs.get(k);
    if res.kind == ResourceKind::File {
        if attr("content").is_some() && attr("source").is_some() {
            r.error(
                node,
                format!(
                    "file `{}` has both `content` and `source`; keep one",
                    res.name
                ),
            );
        }
        if let Some(AttrDef {
            value: AttrSrc::Str(src),
            span,
        }) = attr("source")
        {
            let bad = Path::new(src).is_absolute() || src.split('/').any(|s| s == "..");
            if bad {
                r.diags.push(Diagnostic::new(
                    span.clone(),
                    format!("`source: {src}` must be a path inside the config directory, such as files/motd"),
                ));
            } else if !dir.join(src).is_file() {
                r.diags.push(
                    Diagnostic::new(
                        span.clone(),
                        format!("`source: {src}` does not exist in the config directory"),
                    )
                    .hint("put the file under files/ and name it relative to the config directory"),
                );
            }
        }
        if let Some(AttrDef {
            value: AttrSrc::Str(tpl),
            span,
        }) = attr("content")
            && let Err(e) = crate::compile::template::check_syntax(tpl)
        {
            r.diags.push(Diagnostic::new(
                span.clone(),
                format!("template error in `content`: {e}"),
            ));
        }
    }
    let name_attr = schema::spec(res.kind).name_attr;
    let path_like = matches!(
        res.kind,
        ResourceKind::File | ResourceKind::Directory | ResourceKind::Symlink
    );
    if path_like {
        let path = match attr(name_attr).map(|a| &a.value) {
            Some(AttrSrc::Str(p)) => p.as_str(),
            _ => res.name.as_str(),
        };
        if !path.starts_with('/') || path.split('/').any(|s| s == ".." || s == ".") {
            r.error(
                node,
                format!(
                    "{} `{}`: path `{path}` must be absolute and must not contain `.` or `..`",
                    res.kind, res.name
                ),
            );
        }
    }
}
