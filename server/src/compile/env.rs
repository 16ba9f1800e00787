//! The server's side of `when:` evaluation: facts the node reported (when known) and the
//! variables of the resource's module. Agent-side builtins stay unknown, so they end up in
//! the residual expression that ships in the bundle.

use std::collections::BTreeMap;

use vigo_shared::when::{Env, LocalTime, Lookup, Value};

use crate::config::model::VarValue;

/// What the server knows about one node while compiling.
pub struct ServerEnv<'a> {
    /// The node's name.
    pub node: &'a str,
    /// Its facts; `None` compiles without facts (everything about the node is residual).
    pub facts: Option<&'a BTreeMap<String, VarValue>>,
    /// Variables in scope.
    pub vars: &'a BTreeMap<String, VarValue>,
}

/// A variable or fact as an expression value. Maps, nulls and secrets have no expression
/// form: a secret must never be folded into a residual that travels in the clear.
pub fn to_when(v: &VarValue) -> Option<Value> {
    Some(match v {
        VarValue::Str(s) => Value::Str(s.clone()),
        VarValue::Int(i) => Value::Int(*i),
        VarValue::Bool(b) => Value::Bool(*b),
        VarValue::Float(f) => Value::Str(f.clone()),
        VarValue::List(items) => {
            Value::List(items.iter().map(to_when).collect::<Option<Vec<_>>>()?)
        }
        VarValue::Null | VarValue::Map(_) | VarValue::Secret(_) => return None,
    })
}

impl Env for ServerEnv<'_> {
    fn node_name(&self) -> &str {
        self.node
    }

    fn fact(&self, name: &str) -> Lookup<Option<Value>> {
        match self.facts {
            Some(facts) => Lookup::Known(facts.get(name).and_then(to_when)),
            None => Lookup::Unknown,
        }
    }

    fn var(&self, name: &str) -> Lookup<Option<Value>> {
        Lookup::Known(self.vars.get(name).and_then(to_when))
    }

    fn has_command(&self, _name: &str) -> Lookup<bool> {
        Lookup::Unknown
    }

    fn file_exists(&self, _path: &str) -> Lookup<bool> {
        Lookup::Unknown
    }

    fn now(&self) -> Lookup<LocalTime> {
        Lookup::Unknown
    }
}
