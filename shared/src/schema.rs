//! The attribute schema of every resource type: which attributes exist, their types,
//! which are required, the allowed `state:` values and which attribute defaults to the
//! resource's name. The server validates YAML against it; the agent refuses (skips) a
//! resource carrying an attribute the schema does not list. One table, both sides.

use crate::bundle::ResourceKind;

/// The type of an attribute's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// Any string.
    Str,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// A list of strings; YAML may also give a comma-separated string (`sudo, adm`).
    List,
    /// An octal file mode given as a string of 3 or 4 octal digits (`"0644"`).
    Mode,
    /// A `KEY=VALUE` list (environment variables).
    Env,
}

impl AttrType {
    /// How the type is named in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            AttrType::Str => "a string",
            AttrType::Int => "an integer",
            AttrType::Bool => "true or false",
            AttrType::List => "a list of strings (or a comma-separated string)",
            AttrType::Mode => "an octal mode in quotes, such as \"0644\"",
            AttrType::Env => "a list of KEY=VALUE strings",
        }
    }
}

/// One attribute of a resource type.
#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    /// The YAML key and bundle attribute name.
    pub name: &'static str,
    /// Its value type.
    pub ty: AttrType,
    /// Whether the resource is invalid without it.
    pub required: bool,
    /// Only the server reads it (e.g. `source:` becomes `content:`); never in a bundle.
    pub server_only: bool,
}

const fn a(name: &'static str, ty: AttrType) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        required: false,
        server_only: false,
    }
}

const fn req(name: &'static str, ty: AttrType) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        required: true,
        server_only: false,
    }
}

const fn server(name: &'static str, ty: AttrType) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        required: false,
        server_only: true,
    }
}

/// The schema of one resource type.
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    /// The type.
    pub kind: ResourceKind,
    /// Its attributes, besides the keys every resource has ([`COMMON_KEYS`]).
    pub attrs: &'static [AttrSpec],
    /// Allowed values of `state:`; the first is the default.
    pub states: &'static [&'static str],
    /// The attribute that defaults to the resource's `name` (`path` for files, …).
    pub name_attr: &'static str,
}

impl KindSpec {
    /// The attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&'static AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// Keys every resource may carry; they are not attributes of the type.
pub const COMMON_KEYS: &[&str] = &[
    "name",
    "type",
    "state",
    "when",
    "depends_on",
    "notify",
    "compliance",
    "dangerous",
];

use AttrType::{Bool, Env, Int, List, Mode, Str};

const PRESENT_ABSENT: &[&str] = &["present", "absent"];

static SPECS: [KindSpec; 9] = [
    KindSpec {
        kind: ResourceKind::File,
        attrs: &[
            a("path", Str),
            a("content", Str),
            server("source", Str),
            a("mode", Mode),
            a("owner", Str),
            a("group", Str),
        ],
        states: PRESENT_ABSENT,
        name_attr: "path",
    },
    KindSpec {
        kind: ResourceKind::Directory,
        attrs: &[
            a("path", Str),
            a("mode", Mode),
            a("owner", Str),
            a("group", Str),
        ],
        states: PRESENT_ABSENT,
        name_attr: "path",
    },
    KindSpec {
        kind: ResourceKind::Symlink,
        attrs: &[
            a("path", Str),
            req("target", Str),
            a("owner", Str),
            a("group", Str),
        ],
        states: PRESENT_ABSENT,
        name_attr: "path",
    },
    KindSpec {
        kind: ResourceKind::User,
        attrs: &[
            a("username", Str),
            a("uid", Int),
            a("gid", Str),
            a("comment", Str),
            a("shell", Str),
            a("home", Str),
            a("groups", List),
            a("password", Str),
            a("sudo_nopasswd", Bool),
            a("authorized_keys", Str),
            a("system", Bool),
            a("manage_home", Bool),
        ],
        states: PRESENT_ABSENT,
        name_attr: "username",
    },
    KindSpec {
        kind: ResourceKind::Group,
        attrs: &[
            a("groupname", Str),
            a("gid", Int),
            a("members", List),
            a("system", Bool),
        ],
        states: PRESENT_ABSENT,
        name_attr: "groupname",
    },
    KindSpec {
        kind: ResourceKind::Package,
        attrs: &[a("package", Str), a("version", Str)],
        states: &["present", "absent", "latest"],
        name_attr: "package",
    },
    KindSpec {
        kind: ResourceKind::Service,
        attrs: &[a("service", Str), a("enabled", Bool), a("reload", Bool)],
        states: &["running", "stopped"],
        name_attr: "service",
    },
    KindSpec {
        kind: ResourceKind::Exec,
        attrs: &[
            req("command", Str),
            a("creates", Str),
            a("unless", Str),
            a("onlyif", Str),
            a("timeout", Int),
            a("environment", Env),
            a("cwd", Str),
            a("refreshonly", Bool),
        ],
        states: &["present"],
        name_attr: "",
    },
    KindSpec {
        kind: ResourceKind::Cron,
        attrs: &[
            req("command", Str),
            a("user", Str),
            a("minute", Str),
            a("hour", Str),
            a("day", Str),
            a("month", Str),
            a("weekday", Str),
            a("environment", Env),
        ],
        states: PRESENT_ABSENT,
        name_attr: "",
    },
];

/// The schema of `kind`.
pub fn spec(kind: ResourceKind) -> &'static KindSpec {
    // SPECS lists the kinds in the order of ResourceKind::ALL, which a test checks, so the
    // discriminant indexes it.
    &SPECS[kind as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_indexed_by_kind() {
        for kind in ResourceKind::ALL {
            assert_eq!(spec(kind).kind, kind);
            let name_attr = spec(kind).name_attr;
            assert!(
                name_attr.is_empty() || spec(kind).attr(name_attr).is_some(),
                "{kind}"
            );
        }
    }
}
