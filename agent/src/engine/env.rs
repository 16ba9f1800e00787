//! The agent's side of a `when:` condition: facts of this machine, commands on its PATH,
//! files beneath the root and the local clock. Variables were all resolved by the server,
//! so a residual that still reads one is an error.

use std::path::Path;

use vigo_shared::when::{Env, LocalTime, Lookup, Value};

use crate::facts::Facts;

/// What a residual `when:` is evaluated against on the node.
pub struct AgentEnv<'a> {
    /// The bundle's node name.
    pub node: &'a str,
    /// This machine's facts; their `path` list is where `has_command` looks.
    pub facts: &'a Facts,
    /// `file_exists` looks beneath this folder.
    pub root: &'a Path,
    /// The local time, read once per run.
    pub now: LocalTime,
}

/// Folders a root shell searches besides PATH; `has_command` agrees with the runner.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

impl Env for AgentEnv<'_> {
    fn node_name(&self) -> &str {
        self.node
    }

    fn fact(&self, name: &str) -> Lookup<Option<Value>> {
        Lookup::Known(self.facts.get(name).cloned())
    }

    fn var(&self, _name: &str) -> Lookup<Option<Value>> {
        Lookup::Known(None)
    }

    fn has_command(&self, name: &str) -> Lookup<bool> {
        if name.is_empty() || name.contains('/') {
            return Lookup::Known(!name.is_empty() && is_executable(Path::new(name)));
        }
        let dirs = self.facts.path_dirs();
        let found = dirs
            .into_iter()
            .chain(SBIN)
            .any(|dir| is_executable(&Path::new(dir).join(name)));
        Lookup::Known(found)
    }

    fn file_exists(&self, path: &str) -> Lookup<bool> {
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            // Neither true nor false: evaluation fails and the resource is skipped.
            return Lookup::Unknown;
        }
        let full = self.root.join(path.trim_start_matches('/'));
        Lookup::Known(std::fs::symlink_metadata(full).is_ok())
    }

    fn now(&self) -> Lookup<LocalTime> {
        Lookup::Known(self.now)
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}
