//! The facts a node reports about itself: OS family, OS, version, architecture, host
//! names, kernel, CPUs, memory, addresses and the PATH that `has_command` searches.
//!
//! Collection uses no external crates: files under /proc and /etc on Linux, a few standard
//! commands (`uname`, `sysctl`, `ifconfig`) elsewhere, each OS in its own small module.
//! What cannot be found is left out rather than guessed.

use std::collections::BTreeMap;

use vigo_shared::when::Value;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(all(unix, not(target_os = "linux")))]
mod unix;
#[cfg(windows)]
mod windows;

/// A node's facts, by name (`os_family`, `hostname`, `cpus`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    values: BTreeMap<String, Value>,
}

impl Facts {
    /// The fact with this name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// A string fact, if present and a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.values.get(name)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Sets a fact.
    pub fn insert(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_string(), value);
    }

    /// All facts, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter()
    }

    fn set_str(&mut self, name: &str, value: Option<String>) {
        if let Some(v) = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            self.insert(name, Value::Str(v));
        }
    }

    fn set_list(&mut self, name: &str, items: Vec<String>) {
        self.insert(
            name,
            Value::List(items.into_iter().map(Value::Str).collect()),
        );
    }

    /// The directories `has_command` searches: `path` as a list of strings.
    pub fn path_dirs(&self) -> Vec<&str> {
        match self.get("path") {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The facts as `name  value` lines, names aligned; lists comma-separated.
    pub fn render_human(&self) -> String {
        let width = self.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, value) in self.iter() {
            out.push_str(&format!("{name:width$}  {}\n", show(value)));
        }
        out
    }

    /// The facts as one JSON object.
    pub fn to_json(&self) -> String {
        let mut obj = miniserde::json::Object::new();
        for (name, value) in self.iter() {
            obj.insert(name.clone(), json_value(value));
        }
        miniserde::json::to_string(&miniserde::json::Value::Object(obj))
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::List(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
    }
}

/// A fact value as JSON: strings, numbers, booleans and arrays.
pub fn json_value(value: &Value) -> miniserde::json::Value {
    use miniserde::json::{Array, Number, Value as J};
    match value {
        Value::Str(s) => J::String(s.clone()),
        Value::Int(i) => J::Number(Number::I64(*i)),
        Value::Bool(b) => J::Bool(*b),
        Value::List(items) => {
            let mut arr = Array::new();
            arr.extend(items.iter().map(json_value));
            J::Array(arr)
        }
    }
}

/// Collects the facts of the machine this runs on.
pub fn collect() -> Facts {
    let mut facts = Facts::default();
    facts.insert("arch", Value::Str(std::env::consts::ARCH.to_string()));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    facts.insert("cpus", Value::Int(i64::try_from(cpus).unwrap_or(i64::MAX)));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<String> = Vec::new();
    for dir in std::env::split_paths(&path).filter_map(|p| p.to_str().map(str::to_string)) {
        if !dir.is_empty() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    facts.set_list("path", dirs);

    let os = os_facts();
    facts.set_str("os_family", os.family);
    facts.set_str("os", os.id);
    facts.set_str("os_version", os.version);
    facts.set_str("kernel", os.kernel);
    if let Some(mb) = os.memory_mb {
        facts.insert(
            "memory_mb",
            Value::Int(i64::try_from(mb).unwrap_or(i64::MAX)),
        );
    }
    let mut addresses = os.addresses;
    addresses.sort();
    addresses.dedup();
    facts.set_list("addresses", addresses);
    if let Some(host) = os
        .hostname
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
    {
        let fqdn = fqdn(&host, os.hosts.as_deref(), os.domain.as_deref());
        let short = host.split('.').next().unwrap_or(&host).to_string();
        facts.set_str("fqdn", Some(fqdn));
        facts.set_str("hostname", Some(short));
    }
    facts
}

/// What each OS module finds.
#[derive(Default)]
struct OsFacts {
    family: Option<String>,
    id: Option<String>,
    version: Option<String>,
    kernel: Option<String>,
    memory_mb: Option<u64>,
    addresses: Vec<String>,
    hostname: Option<String>,
    /// The text of /etc/hosts, to find the fully qualified name.
    hosts: Option<String>,
    /// The NIS/DNS domain the kernel knows, if any.
    domain: Option<String>,
}

#[cfg(target_os = "linux")]
fn os_facts() -> OsFacts {
    linux::collect()
}

#[cfg(all(unix, not(target_os = "linux")))]
fn os_facts() -> OsFacts {
    unix::collect()
}

#[cfg(windows)]
fn os_facts() -> OsFacts {
    windows::collect()
}

#[cfg(not(any(unix, windows)))]
fn os_facts() -> OsFacts {
    OsFacts::default()
}

/// Fields of an os-release file (`ID`, `ID_LIKE`, `VERSION_ID`, …), unquoted. Read on
/// Linux only; kept on every target so its tests run everywhere.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.replace("\\\"", "\"")))
        })
        .collect()
}

/// The Linux family from os-release `ID` and `ID_LIKE`: the ID decides when it is known,
/// else the first `ID_LIKE` entry that is.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn linux_family(id: &str, id_like: &str) -> Option<&'static str> {
    let of = |name: &str| -> Option<&'static str> {
        match name {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "elementary" | "kali"
            | "devuan" => Some("debian"),
            "rhel" | "fedora" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" | "scientific"
            | "eurolinux" => Some("rhel"),
            "suse" | "sles" | "sled" | "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" => {
                Some("suse")
            }
            "arch" | "manjaro" | "endeavouros" | "archarm" => Some("arch"),
            "alpine" => Some("alpine"),
            _ => None,
        }
    };
    of(id).or_else(|| id_like.split_whitespace().find_map(of))
}

/// The fully qualified name: the host name when it has a dot; else the first dotted name
/// of the /etc/hosts line that lists the host name; else host name plus the kernel's domain.
pub fn fqdn(hostname: &str, hosts: Option<&str>, domain: Option<&str>) -> String {
    if hostname.contains('.') {
        return hostname.to_string();
    }
    let prefix = format!("{hostname}.");
    if let Some(hosts) = hosts {
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let names: Vec<&str> = line.split_whitespace().skip(1).collect();
            if names.contains(&hostname)
                && let Some(full) = names.iter().find(|n| n.starts_with(&prefix))
            {
                return full.to_string();
            }
        }
    }
    match domain.map(str::trim) {
        Some(d) if !d.is_empty() && d != "(none)" => format!("{hostname}.{d}"),
        _ => hostname.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_and_family() {
        let f = parse_os_release(
            "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID='9.3'\n# x=y\n",
        );
        assert_eq!(f.get("ID").map(String::as_str), Some("rocky"));
        assert_eq!(f.get("VERSION_ID").map(String::as_str), Some("9.3"));
        let check = |id: &str, like: &str, want: Option<&str>| {
            assert_eq!(linux_family(id, like), want, "{id} {like}")
        };
        check("debian", "", Some("debian"));
        check("ubuntu", "debian", Some("debian"));
        check("rocky", "rhel centos fedora", Some("rhel"));
        check("opensuse-leap", "suse opensuse", Some("suse"));
        check("zorin", "ubuntu debian", Some("debian"));
        check("alpine", "", Some("alpine"));
        check("endeavouros", "arch", Some("arch"));
        check("gentoo", "", None);
    }

    #[test]
    fn fully_qualified_names() {
        let hosts = "127.0.0.1 localhost\n10.0.0.5 web01.prod.example web01 # x\n";
        assert_eq!(fqdn("web01", Some(hosts), None), "web01.prod.example");
        assert_eq!(fqdn("db.x", Some(hosts), None), "db.x");
        assert_eq!(fqdn("db", Some(hosts), Some("(none)")), "db");
        assert_eq!(fqdn("db", None, Some("corp")), "db.corp");
    }

    #[test]
    fn human_and_json_output() {
        let mut f = Facts::default();
        f.insert("os", Value::Str("de\"b".into()));
        f.insert("cpus", Value::Int(2));
        f.insert(
            "addresses",
            Value::List(vec![
                Value::Str("10.0.0.1".into()),
                Value::Str("::1".into()),
            ]),
        );
        assert_eq!(
            f.render_human(),
            "addresses  10.0.0.1, ::1\ncpus       2\nos         de\"b\n"
        );
        assert_eq!(
            f.to_json(),
            r#"{"addresses":["10.0.0.1","::1"],"cpus":2,"os":"de\"b"}"#
        );
    }

    #[test]
    fn this_machine_has_the_basic_facts() {
        let f = collect();
        for name in ["arch", "cpus", "path"] {
            assert!(f.get(name).is_some(), "{name} missing: {f:?}");
        }
        #[cfg(target_os = "linux")]
        for name in ["hostname", "fqdn", "kernel", "memory_mb"] {
            assert!(f.get(name).is_some(), "{name} missing: {f:?}");
        }
    }
}
