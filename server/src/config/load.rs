//! Loading a config directory: read every file, parse it with positions, build the model
//! and run every check, collecting all diagnostics instead of stopping at the first.
//!
//! Layout: `vigo.yaml` (settings, optional), `modules/*.yaml`, `nodes/*.yaml`,
//! `waivers/*.yaml`, and `files/` for `source:` attributes. Secrets live outside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use vigo_shared::glob::validate_glob;

use super::check;
use super::diag::{Diagnostic, Span};
use super::model::{Config, Module, NodeRule, Settings, Waiver};
use super::read::Reader;
use super::resource::read_resource;
use super::yaml::{self, Kind, Node};
use crate::secrets::SecretProvider;

const MODULE_KEYS: &[&str] = &[
    "name",
    "description",
    "vars",
    "when",
    "depends_on",
    "compliance",
    "resources",
];
const RULE_KEYS: &[&str] = &[
    "name", "match", "when", "modules", "vars", "priority", "observe",
];
const WAIVER_KEYS: &[&str] = &["tag", "nodes", "reason", "expires", "approved_by"];
const SETTINGS_KEYS: &[&str] = &["vars", "observe", "interval"];

/// Loads and validates the config in `dir`. The config is returned even when there are
/// diagnostics, so that `trace` can still show what it can; publishing refuses a config
/// with any diagnostic.
pub fn load(dir: &Path, secrets: &dyn SecretProvider) -> (Config, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut config = Config {
        dir: dir.clone(),
        ..Config::default()
    };
    let mut hasher = Sha256::new();

    if !dir.is_dir() {
        diags.push(Diagnostic::new(
            Span::file(&dir),
            format!(
                "config directory {} does not exist or is not a directory",
                dir.display()
            ),
        ));
        return (config, diags);
    }

    let settings_file = PathBuf::from("vigo.yaml");
    if let Some(doc) = read_doc(&dir, &settings_file, &mut hasher, &mut diags) {
        config.settings = read_settings(
            &mut Reader {
                file: &settings_file,
                diags: &mut diags,
            },
            &doc,
        );
    }

    for file in yaml_files(&dir, "modules", &mut diags) {
        let Some(doc) = read_doc(&dir, &file, &mut hasher, &mut diags) else {
            continue;
        };
        let mut r = Reader {
            file: &file,
            diags: &mut diags,
        };
        if let Some(module) = read_module(&mut r, &doc, &dir) {
            if let Some(first) = config.modules.get(&module.name) {
                let msg = format!(
                    "module `{}` is already defined at {}; module names must be unique",
                    module.name, first.span
                );
                diags.push(Diagnostic::new(module.span.clone(), msg));
            } else {
                config.modules.insert(module.name.clone(), module);
            }
        }
    }

    let mut rules = Vec::new();
    for file in yaml_files(&dir, "nodes", &mut diags) {
        let Some(doc) = read_doc(&dir, &file, &mut hasher, &mut diags) else {
            continue;
        };
        if let Some(rule) = read_rule(
            &mut Reader {
                file: &file,
                diags: &mut diags,
            },
            &doc,
        ) {
            rules.push(rule);
        }
    }
    // Application order: ascending priority, ties by file name; later rules override.
    rules.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| a.span.file.cmp(&b.span.file))
    });
    config.rules = rules;

    for file in yaml_files(&dir, "waivers", &mut diags) {
        let Some(doc) = read_doc(&dir, &file, &mut hasher, &mut diags) else {
            continue;
        };
        if let Some(w) = read_waiver(
            &mut Reader {
                file: &file,
                diags: &mut diags,
            },
            &doc,
        ) {
            config.waivers.push(w);
        }
    }

    hash_tree(&dir, &dir.join("files"), &mut hasher);
    read_sources(&mut config, &mut hasher, &mut diags);
    config.hash = vigo_shared::hex::encode(&hasher.finalize());

    check::check(&mut config, secrets, &mut diags);
    diags.sort();
    diags.dedup();
    (config, diags)
}

/// Reads the files `source:` attributes name into `config.files`. Those under `files/`
/// are already in the hash; any other is added to it, so the hash still covers every byte
/// a bundle can carry. A missing file was diagnosed by the resource check; one that is not
/// UTF-8 text is diagnosed here.
fn read_sources(config: &mut Config, hasher: &mut Sha256, diags: &mut Vec<Diagnostic>) {
    use super::model::{AttrDef, AttrSrc};
    let mut files = BTreeMap::new();
    for module in config.modules.values() {
        for res in &module.resources {
            let Some(AttrDef {
                value: AttrSrc::Str(path),
                span,
            }) = res.attrs.get("source")
            else {
                continue;
            };
            if files.contains_key(path) {
                continue;
            }
            let Ok(bytes) = std::fs::read(config.dir.join(path)) else {
                continue;
            };
            if !path.starts_with("files/") {
                hasher.update(path.as_bytes());
                hasher.update([0]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            match String::from_utf8(bytes) {
                Ok(text) => {
                    files.insert(path.clone(), text);
                }
                Err(_) => diags.push(
                    Diagnostic::new(span.clone(), format!("`source: {path}` is not UTF-8 text"))
                        .hint("a file resource's content is text; convert the file or manage it another way"),
                ),
            }
        }
    }
    config.files = files;
}

/// The `*.yaml` / `*.yml` files of a sub-directory, sorted, relative to the config dir.
fn yaml_files(dir: &Path, sub: &str, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let rel = Path::new(sub).join(&*name);
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(rel);
        } else if !name.starts_with('.') {
            diags.push(
                Diagnostic::new(
                    Span::file(&rel),
                    format!("`{}` is not a .yaml file and is ignored", rel.display()),
                )
                .hint("rename it to .yaml or move it out of the config directory"),
            );
        }
    }
    out.sort();
    out
}

fn read_doc(
    dir: &Path,
    rel: &Path,
    hasher: &mut Sha256,
    diags: &mut Vec<Diagnostic>,
) -> Option<Node> {
    let bytes = std::fs::read(dir.join(rel)).ok()?;
    hasher.update(rel.to_string_lossy().as_bytes());
    hasher.update([0]);
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(&bytes);
    let Ok(text) = String::from_utf8(bytes) else {
        diags.push(Diagnostic::new(Span::file(rel), "file is not UTF-8 text"));
        return None;
    };
    match yaml::parse(&text) {
        Ok(Some(doc)) => Some(doc),
        Ok(None) => {
            diags.push(
                Diagnostic::new(Span::file(rel), "file is empty")
                    .hint("delete it or give it content"),
            );
            None
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                Span::new(rel, e.pos),
                format!("YAML syntax error: {}", e.message),
            ));
            None
        }
    }
}

fn hash_tree(root: &Path, dir: &Path, hasher: &mut Sha256) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            hash_tree(root, &p, hasher);
        } else if let Ok(bytes) = std::fs::read(&p) {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
}

fn read_settings(r: &mut Reader<'_>, doc: &Node) -> Settings {
    let mut s = Settings {
        span: r.span(doc),
        ..Settings::default()
    };
    let Some(entries) = r.map(doc, "vigo.yaml", SETTINGS_KEYS) else {
        return s;
    };
    for (key, _, v) in entries {
        match key {
            "vars" => s.vars = r.vars(v),
            "observe" => s.observe = r.boolean(v, key).unwrap_or(false),
            "interval" => {
                if let Some(secs) = read_duration(r, v, key) {
                    s.interval_secs = secs;
                }
            }
            _ => {}
        }
    }
    s
}

/// `90`, `"90s"`, `"30m"`, `"2h"` → seconds; between 10 seconds and one day.
fn read_duration(r: &mut Reader<'_>, v: &Node, field: &str) -> Option<u32> {
    let text = v.scalar_text().unwrap_or("");
    let (num, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    let secs = num.parse::<u32>().ok().and_then(|n| n.checked_mul(mult));
    match secs {
        Some(s) if (10..=86_400).contains(&s) => Some(s),
        _ => {
            r.error(v, format!("`{field}` must be a duration between 10s and 24h, such as `30m`, found `{text}`"));
            None
        }
    }
}

fn read_module(r: &mut Reader<'_>, doc: &Node, dir: &Path) -> Option<Module> {
    let entries = r.map(doc, "a module", MODULE_KEYS)?;
    let mut m = Module {
        name: String::new(),
        description: String::new(),
        vars: BTreeMap::new(),
        when: None,
        depends_on: Vec::new(),
        compliance: Vec::new(),
        resources: Vec::new(),
        span: r.span(doc),
    };
    let mut resources_node = None;
    for (key, k, v) in entries {
        match key {
            "name" => {
                m.name = r.string(v, key).unwrap_or_default();
                m.span = r.span(k);
            }
            "description" => m.description = v.scalar_text().unwrap_or_default().to_string(),
            "vars" => m.vars = r.vars(v),
            "when" => m.when = r.cond(v, key),
            "depends_on" => m.depends_on = r.named_list(v, key).unwrap_or_default(),
            "compliance" => m.compliance = r.named_list(v, key).unwrap_or_default(),
            "resources" => resources_node = Some(v),
            _ => {}
        }
    }
    if m.name.is_empty() {
        r.error(doc, "a module needs a `name`");
        return None;
    }
    match resources_node.map(|n| &n.kind) {
        Some(Kind::Seq(items)) => {
            for item in items {
                if let Some(res) = read_resource(r, item, dir) {
                    m.resources.push(res);
                }
            }
        }
        Some(Kind::Null) | None => {}
        Some(_) => {
            if let Some(n) = resources_node {
                r.error(
                    n,
                    format!(
                        "`resources` must be a list of resources, found {}",
                        n.describe()
                    ),
                );
            }
        }
    }
    Some(m)
}

fn read_rule(r: &mut Reader<'_>, doc: &Node) -> Option<NodeRule> {
    let entries = r.map(doc, "a node rule", RULE_KEYS)?;
    let mut rule = NodeRule {
        name: String::new(),
        patterns: Vec::new(),
        when: None,
        modules: Vec::new(),
        vars: BTreeMap::new(),
        priority: 0,
        observe: None,
        span: r.span(doc),
    };
    let mut has_match = false;
    for (key, k, v) in entries {
        match key {
            "name" => {
                rule.name = r.string(v, key).unwrap_or_default();
                rule.span = r.span(k);
            }
            "match" => {
                has_match = true;
                rule.patterns = r.named_list(v, key).unwrap_or_default();
                for p in &rule.patterns {
                    if let Err(e) = validate_glob(&p.name) {
                        r.diags.push(Diagnostic::new(
                            p.span.clone(),
                            format!("invalid host-name glob `{}`: {e}", p.name),
                        ));
                    }
                }
            }
            "when" => rule.when = r.cond(v, key),
            "modules" => rule.modules = r.named_list(v, key).unwrap_or_default(),
            "vars" => rule.vars = r.vars(v),
            "priority" => rule.priority = r.integer(v, key).unwrap_or(0),
            "observe" => rule.observe = r.boolean(v, key),
            _ => {}
        }
    }
    if rule.name.is_empty() {
        r.error(doc, "a node rule needs a `name`");
        return None;
    }
    if !has_match || rule.patterns.is_empty() {
        r.error(
            doc,
            format!(
                "node rule `{}` needs `match`: a host-name glob or a list of globs",
                rule.name
            ),
        );
    }
    Some(rule)
}

fn read_waiver(r: &mut Reader<'_>, doc: &Node) -> Option<Waiver> {
    let entries = r.map(doc, "a waiver", WAIVER_KEYS)?;
    let mut w = Waiver {
        tag: String::new(),
        nodes: String::new(),
        reason: String::new(),
        expires: String::new(),
        approved_by: String::new(),
        span: r.span(doc),
    };
    for (key, _, v) in entries {
        let value = r.string(v, key).unwrap_or_default();
        match key {
            "tag" => w.tag = value,
            "nodes" => {
                if let Err(e) = validate_glob(&value) {
                    r.error(v, format!("invalid host-name glob `{value}`: {e}"));
                }
                w.nodes = value;
            }
            "reason" => w.reason = value,
            "expires" => {
                if !is_date(&value) {
                    r.error(
                        v,
                        format!("`expires` must be a date YYYY-MM-DD, found `{value}`"),
                    );
                }
                w.expires = value;
            }
            "approved_by" => w.approved_by = value,
            _ => {}
        }
    }
    for (field, value) in [
        ("tag", &w.tag),
        ("nodes", &w.nodes),
        ("reason", &w.reason),
        ("expires", &w.expires),
        ("approved_by", &w.approved_by),
    ] {
        if value.is_empty() {
            r.error(doc, format!("waiver is missing `{field}`"));
        }
    }
    Some(w)
}

/// `YYYY-MM-DD` with a plausible month and day.
pub fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let num = |p: &str, len: usize| {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    matches!(
        (num(y, 4), num(m, 2), num(d, 2)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}
