//! Tests of the `when:` language through its public API, with the environments
//! they share: a server that knows facts and variables, an agent that knows the live
//! machine, and a node where everything is known.

mod eval;
mod fuzz;
mod parse;
mod terms;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Env, LocalTime, Lookup, Value};

/// An environment built from tables. A `None` table means "unknown on this side".
pub(super) struct TestEnv {
    node_name: &'static str,
    facts: Option<BTreeMap<&'static str, Value>>,
    vars: Option<BTreeMap<&'static str, Value>>,
    commands: Option<Vec<&'static str>>,
    files: Option<Vec<&'static str>>,
    now: Option<LocalTime>,
}

fn s(text: &str) -> Value {
    Value::Str(String::from(text))
}

/// The facts every test node reports.
fn node_facts() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("os_family", s("debian")),
        ("os", s("linux")),
        ("arch", s("x86_64")),
        ("hostname", s("web01.prod")),
        ("os_version", s("12.4")),
        ("os.name", s("Debian GNU/Linux")),
        ("cpus", Value::Int(8)),
        ("virtual", Value::Bool(false)),
        ("addresses", Value::List(vec![s("10.0.0.5"), s("fe80::1")])),
    ])
}

fn node_vars() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("tier", s("prod")),
        ("replicas", Value::Int(3)),
        ("min_version", s("12")),
        ("debug", Value::Bool(false)),
        ("fact_name", s("cpus")),
        ("dns", Value::List(vec![s("10.0.0.53")])),
        ("late", Value::Int(30)),
    ])
}

impl TestEnv {
    /// What the server knows when compiling for the node: facts and variables.
    pub(super) fn server() -> TestEnv {
        TestEnv {
            node_name: "web01.prod",
            facts: Some(node_facts()),
            vars: Some(node_vars()),
            commands: None,
            files: None,
            now: None,
        }
    }

    /// What the agent knows when applying: its facts and the live machine, at
    /// 03:00 on a Saturday. It has no variables; residuals never need them.
    pub(super) fn agent() -> TestEnv {
        TestEnv {
            node_name: "web01.prod",
            facts: Some(node_facts()),
            vars: None,
            commands: Some(vec!["nginx", "curl"]),
            files: Some(vec!["/etc/nginx/nginx.conf"]),
            now: Some(LocalTime {
                hour: 3,
                weekday: 5,
            }),
        }
    }

    /// A node where everything is known.
    pub(super) fn full() -> TestEnv {
        TestEnv {
            vars: Some(node_vars()),
            ..TestEnv::agent()
        }
    }

    /// A server that knows variables but none of the node's facts, as when a node
    /// has never checked in.
    pub(super) fn server_without_facts() -> TestEnv {
        TestEnv {
            facts: None,
            ..TestEnv::server()
        }
    }
}

fn lookup<T: Clone>(table: &Option<BTreeMap<&'static str, T>>, name: &str) -> Lookup<Option<T>> {
    match table {
        Some(table) => Lookup::Known(table.get(name).cloned()),
        None => Lookup::Unknown,
    }
}

fn contains(list: &Option<Vec<&'static str>>, item: &str) -> Lookup<bool> {
    match list {
        Some(list) => Lookup::Known(list.contains(&item)),
        None => Lookup::Unknown,
    }
}

impl Env for TestEnv {
    fn node_name(&self) -> &str {
        self.node_name
    }

    fn fact(&self, name: &str) -> Lookup<Option<Value>> {
        lookup(&self.facts, name)
    }

    fn var(&self, name: &str) -> Lookup<Option<Value>> {
        lookup(&self.vars, name)
    }

    fn has_command(&self, name: &str) -> Lookup<bool> {
        contains(&self.commands, name)
    }

    fn file_exists(&self, path: &str) -> Lookup<bool> {
        contains(&self.files, path)
    }

    fn now(&self) -> Lookup<LocalTime> {
        match self.now {
            Some(now) => Lookup::Known(now),
            None => Lookup::Unknown,
        }
    }
}
