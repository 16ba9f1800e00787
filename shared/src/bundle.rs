//! The policy bundle: everything one node needs to converge, in apply order.
//!
//! A bundle is produced by the server's compiler for exactly one node and consumed by the
//! agent's engine. It carries no variables and no templates: those are resolved on the
//! server. What the server could not decide (a residual `when:`) travels as canonical
//! expression text that the agent parses and evaluates on the node.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Version of the bundle layout; bumped on any incompatible change of [`Bundle`].
pub const FORMAT_VERSION: u16 = 1;

/// One node's compiled policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The node this bundle was compiled for; the agent refuses a bundle for another node.
    pub node: String,
    /// Hash of the published config snapshot the bundle was compiled from.
    pub policy: String,
    /// Observe mode: report what would change, change nothing.
    pub observe: bool,
    /// How often the agent converges, in seconds.
    pub interval_secs: u32,
    /// Resources in apply order (dependencies first).
    pub resources: Vec<Resource>,
}

/// The resource types the engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// A regular file with content, mode and ownership.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A local user account.
    User,
    /// A local group.
    Group,
    /// An OS package.
    Package,
    /// A system service.
    Service,
    /// A command run under guards (`creates`, `unless`, `onlyif`).
    Exec,
    /// A cron job.
    Cron,
}

impl ResourceKind {
    /// Every kind, in the order of their wire tags.
    pub const ALL: [ResourceKind; 9] = [
        ResourceKind::File,
        ResourceKind::Directory,
        ResourceKind::Symlink,
        ResourceKind::User,
        ResourceKind::Group,
        ResourceKind::Package,
        ResourceKind::Service,
        ResourceKind::Exec,
        ResourceKind::Cron,
    ];

    /// The name used in YAML (`type: file`) and in resource ids (`file:/etc/motd`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::File => "file",
            ResourceKind::Directory => "directory",
            ResourceKind::Symlink => "symlink",
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
            ResourceKind::Package => "package",
            ResourceKind::Service => "service",
            ResourceKind::Exec => "exec",
            ResourceKind::Cron => "cron",
        }
    }

    /// Parses a YAML type name.
    pub fn parse(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub(crate) fn tag(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_tag(tag: u8) -> Option<ResourceKind> {
        ResourceKind::ALL.get(usize::from(tag)).copied()
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource to converge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The resource type.
    pub kind: ResourceKind,
    /// The resource's name, unique per kind within a bundle.
    pub name: String,
    /// Type-specific attributes, sorted by key, keys unique.
    pub attrs: Vec<Attr>,
    /// The residual `when:` condition the agent must evaluate, in canonical text.
    /// `None` means the resource applies unconditionally.
    pub when: Option<String>,
    /// Resources (`type:name`) that must converge before this one.
    pub depends_on: Vec<String>,
    /// Resources (`type:name`, usually services) to restart when this one changes.
    pub notify: Vec<String>,
    /// Compliance tags that apply to this resource (module tags and its own).
    pub compliance: Vec<String>,
    /// The operator allowed destructive operations for this resource.
    pub dangerous: bool,
    /// Where the resource was defined: `modules/x.yaml:12:5`.
    pub origin: String,
    /// The module the resource came from.
    pub module: String,
    /// Set when the compiler could not prepare the resource (a template or `when:` error):
    /// the agent reports it as skipped with this reason and applies the rest.
    pub skip: Option<String>,
}

impl Resource {
    /// The resource's id, `type:name`, as used by `depends_on` and `notify`.
    pub fn id(&self) -> String {
        let mut id = String::from(self.kind.as_str());
        id.push(':');
        id.push_str(&self.name);
        id
    }

    /// The attribute with this key, if present.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs
            .binary_search_by(|a| a.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.attrs[i].value)
    }
}

/// One attribute of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The attribute's name (`content`, `mode`, `groups`, …).
    pub key: String,
    /// The attribute's value.
    pub value: AttrValue,
}

/// An attribute value. Lists are always lists of strings: a comma string such as
/// `groups: sudo, adm` is split by the compiler.
#[derive(Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// An integer (modes are strings such as `"0644"`, not integers).
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(Vec<String>),
    /// A value derived from a secret (file content read from a secret, a password hash):
    /// reports and diffs show it redacted.
    Sensitive(Sensitive),
    /// A secret-derived value sealed to the node's key (see [`crate::seal`]): what a bundle
    /// for an enrolled node carries instead of [`AttrValue::Sensitive`]. The agent opens it
    /// in memory at apply time. `Debug` shows only its length.
    Sealed(Vec<u8>),
}

impl fmt::Debug for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.debug_tuple("Str").field(s).finish(),
            AttrValue::Int(i) => f.debug_tuple("Int").field(i).finish(),
            AttrValue::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            AttrValue::List(l) => f.debug_tuple("List").field(l).finish(),
            AttrValue::Sensitive(s) => f.debug_tuple("Sensitive").field(s).finish(),
            AttrValue::Sealed(b) => write!(f, "Sealed(<{} bytes>)", b.len()),
        }
    }
}

/// A string derived from a secret. Its `Debug` never prints the value, so it cannot leak
/// through a log line or an error by accident; read it with [`Sensitive::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a secret-derived value.
    pub fn new(value: String) -> Sensitive {
        Sensitive(value)
    }

    /// The value itself, for the one place that must write it (the file, the shadow entry).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}
