//! The loaded config: settings, modules, node rules and waivers, every part remembering
//! the file, line and column it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vigo_shared::bundle::ResourceKind;
use vigo_shared::when::Expr;

use super::diag::Span;
use crate::secrets::{Secret, SecretRef};

/// One consistent view of a config directory.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The config directory (absolute).
    pub dir: PathBuf,
    /// SHA-256 over every file's path and bytes: names this version of the config.
    pub hash: String,
    /// `vigo.yaml`.
    pub settings: Settings,
    /// Modules by name.
    pub modules: BTreeMap<String, Module>,
    /// Node rules in the order they are applied: ascending priority, then file name, so a
    /// later rule overrides an earlier one.
    pub rules: Vec<NodeRule>,
    /// Compliance waivers.
    pub waivers: Vec<Waiver>,
    /// Every secret the config references, resolved (values stay in memory only).
    pub secrets: BTreeMap<SecretRef, Secret>,
    /// The text of every file a `source:` attribute names, by the path as written, read
    /// when the config was loaded: a bundle compiled later gets the published text, not
    /// whatever the file holds by then.
    pub files: BTreeMap<String, String>,
}

/// Fleet-wide settings from `vigo.yaml`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Observe mode for the whole fleet.
    pub observe: bool,
    /// Convergence interval in seconds.
    pub interval_secs: u32,
    /// Fleet-wide variables.
    pub vars: Vars,
    /// Where `vigo.yaml` is (or would be).
    pub span: Span,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            observe: false,
            interval_secs: DEFAULT_INTERVAL_SECS,
            vars: Vars::new(),
            span: Span::file(std::path::Path::new("vigo.yaml")),
        }
    }
}

/// The interval when `vigo.yaml` sets none: 30 minutes.
pub const DEFAULT_INTERVAL_SECS: u32 = 1800;

/// Variables by name.
pub type Vars = BTreeMap<String, VarDef>;

/// A variable as one layer defines it.
#[derive(Clone, Debug, PartialEq)]
pub struct VarDef {
    /// The value.
    pub value: VarValue,
    /// Where it is set.
    pub span: Span,
}

/// A variable's value.
#[derive(Clone, Debug, PartialEq)]
pub enum VarValue {
    /// No value (`~`).
    Null,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number, as written.
    Float(String),
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Vec<VarValue>),
    /// A mapping.
    Map(BTreeMap<String, VarValue>),
    /// A `secret:PATH` reference.
    Secret(SecretRef),
}

/// A `when:` condition as written and parsed.
#[derive(Clone, Debug)]
pub struct Cond {
    /// The source text.
    pub text: String,
    /// The parsed expression; `None` when it did not parse (already diagnosed).
    pub expr: Option<Expr>,
    /// Where it is.
    pub span: Span,
}

/// A name with the place it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The name.
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A module: a named group of resources with defaults.
#[derive(Clone, Debug)]
pub struct Module {
    /// Its name (unique).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Variable defaults (the lowest layer).
    pub vars: Vars,
    /// Condition on all its resources.
    pub when: Option<Cond>,
    /// Modules included with it and converged before it.
    pub depends_on: Vec<Named>,
    /// Compliance tags applied to all its resources.
    pub compliance: Vec<Named>,
    /// Its resources, in file order.
    pub resources: Vec<ResourceDef>,
    /// Where `name:` is.
    pub span: Span,
}

/// A resource as written in a module.
#[derive(Clone, Debug)]
pub struct ResourceDef {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: ResourceKind,
    /// Type-specific attributes (with the name attribute defaulted and `state` included).
    pub attrs: BTreeMap<String, AttrDef>,
    /// Its own condition.
    pub when: Option<Cond>,
    /// Explicit dependencies (`type:name`).
    pub depends_on: Vec<Named>,
    /// Resources to refresh when it changes (`type:name`).
    pub notify: Vec<Named>,
    /// Its own compliance tags.
    pub compliance: Vec<Named>,
    /// Destructive operations allowed.
    pub dangerous: bool,
    /// Where the resource starts.
    pub span: Span,
}

impl ResourceDef {
    /// `type:name`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

/// One attribute value as written.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrDef {
    /// The value.
    pub value: AttrSrc,
    /// Where.
    pub span: Span,
}

/// An attribute value before compilation.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrSrc {
    /// A string (for `content:`, a template).
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(Vec<String>),
    /// A `secret:PATH` reference.
    Secret(SecretRef),
}

/// A node rule: which nodes get which modules and variables.
#[derive(Clone, Debug)]
pub struct NodeRule {
    /// Its name.
    pub name: String,
    /// Host-name globs; any one matching selects the node.
    pub patterns: Vec<Named>,
    /// Condition on the node's facts (server side only).
    pub when: Option<Cond>,
    /// Modules to include.
    pub modules: Vec<Named>,
    /// Variables (override module defaults and `vigo.yaml`).
    pub vars: Vars,
    /// Higher wins.
    pub priority: i64,
    /// Observe mode for the nodes it selects (overrides `vigo.yaml` when set).
    pub observe: Option<bool>,
    /// Where `name:` is.
    pub span: Span,
}

/// A compliance waiver.
#[derive(Clone, Debug)]
pub struct Waiver {
    /// The tag it waives.
    pub tag: String,
    /// Host-name glob of the nodes it covers.
    pub nodes: String,
    /// Why.
    pub reason: String,
    /// Last day it applies (`YYYY-MM-DD`, inclusive).
    pub expires: String,
    /// Who approved it.
    pub approved_by: String,
    /// Where it is.
    pub span: Span,
}
