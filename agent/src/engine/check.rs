//! What the engine checks before handing a resource to its provider: every attribute is
//! in the shared schema for its type (and not a server-only one), the provider knows it,
//! its value has the schema's type, `state` is one the type allows, and paths are
//! absolute without `..`. A resource that fails a check is skipped, naming the problem.

use vigo_shared::bundle::{AttrValue, Resource, ResourceKind};
use vigo_shared::schema::{self, AttrType};

use crate::providers::{Provider, attr_str};

/// Checks `res` against the schema and its provider; the error says what to fix.
pub fn check_resource(res: &Resource, provider: &dyn Provider) -> Result<(), String> {
    let spec = schema::spec(res.kind);
    for attr in &res.attrs {
        let key = attr.key.as_str();
        if key == "state" {
            match &attr.value {
                AttrValue::Str(s) if spec.states.contains(&s.as_str()) => {}
                AttrValue::Str(s) => {
                    return Err(format!(
                        "state {s:?} is not valid for a {}; use one of: {}",
                        res.kind,
                        spec.states.join(", ")
                    ));
                }
                _ => return Err("state must be a string".to_string()),
            }
            continue;
        }
        let Some(a) = spec.attr(key) else {
            return Err(format!(
                "unknown attribute `{key}` for a {} resource",
                res.kind
            ));
        };
        if a.server_only {
            return Err(format!(
                "attribute `{key}` is read by the server only and must not reach the agent"
            ));
        }
        if !provider.attributes().contains(&key) {
            return Err(format!(
                "attribute `{key}` is not supported by this agent's {} provider",
                res.kind
            ));
        }
        let ok = matches!(
            (a.ty, &attr.value),
            (
                AttrType::Str | AttrType::Mode,
                AttrValue::Str(_) | AttrValue::Sensitive(_)
            ) | (AttrType::Int, AttrValue::Int(_))
                | (AttrType::Bool, AttrValue::Bool(_))
                | (AttrType::List | AttrType::Env, AttrValue::List(_))
        );
        if !ok {
            return Err(format!("attribute `{key}` must be {}", a.ty.describe()));
        }
    }
    for a in spec.attrs.iter().filter(|a| a.required) {
        if res.attr(a.name).is_none() {
            return Err(format!("required attribute `{}` is missing", a.name));
        }
    }
    let paths: &[&str] = match res.kind {
        ResourceKind::File | ResourceKind::Directory | ResourceKind::Symlink => &["path"],
        ResourceKind::Exec => &["creates", "cwd"],
        _ => &[],
    };
    for &key in paths {
        let value = match attr_str(res, key) {
            Some(v) => v,
            None if key == "path" => &res.name,
            None => continue,
        };
        if !value.starts_with('/') {
            return Err(format!("{key} {value:?} must be an absolute path"));
        }
        if value.split('/').any(|c| c == "..") {
            return Err(format!("{key} {value:?} must not contain '..'"));
        }
    }
    Ok(())
}
