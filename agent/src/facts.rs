//! The facts a node reports about itself: OS family, OS, version, architecture, host
//! names, kernel, CPUs, memory, addresses and the PATH that `has_command` searches.

use std::collections::BTreeMap;

use vigo_shared::when::Value;

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
}
