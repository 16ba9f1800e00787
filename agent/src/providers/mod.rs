//! The contract between the engine and the resource providers.
//!
//! A provider converges one resource of one type: it reads the current state under
//! [`Ctx::root`], compares it with the desired attributes, and — unless the run observes
//! only — changes the machine, then reads the state again to confirm. It reports what it
//! changed (or would change) as [`Change`]s. Every external command goes through
//! [`Ctx::runner`], so tests can record the exact command plan for an OS family that cannot
//! run here, and the observe mode can be enforced in one place.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vigo_shared::bundle::{AttrValue, Resource};

use crate::facts::Facts;
use crate::family::Family;

pub mod cron;
pub mod directory;
pub mod exec;
pub mod file;
pub mod group;
pub mod ownership;
pub mod package;
pub mod service;
pub mod symlink;
#[cfg(test)]
pub mod testing;
pub mod user;

/// Everything a provider may use while converging one resource.
pub struct Ctx<'a> {
    /// Folder that stands for `/`: `/` on a real node, a temporary folder in tests and image
    /// builds. Every path a provider touches is resolved beneath it with [`Ctx::path`].
    pub root: &'a Path,
    /// The node's facts.
    pub facts: &'a Facts,
    /// The OS family whose native tools the providers use (a runtime choice, from facts).
    pub family: Family,
    /// Report what would change; change nothing.
    pub observe: bool,
    /// Runs (or, in plan tests, records) external commands.
    pub runner: &'a dyn Runner,
}

impl Ctx<'_> {
    /// Resolves an absolute node path (`/etc/motd`) beneath the root.
    pub fn path(&self, node_path: &str) -> PathBuf {
        self.root.join(node_path.trim_start_matches('/'))
    }
}

/// One external command: program, arguments, environment, optional stdin and a timeout.
/// Secrets (a password hash) travel only on stdin, which `Debug` shows as a length.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// The program (looked up on PATH when it has no slash).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Bytes written to its stdin, if any.
    pub stdin: Option<Vec<u8>>,
    /// The command is killed when it runs longer than this.
    pub timeout: Duration,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env)
            .field(
                "stdin",
                &self.stdin.as_ref().map(|s| format!("<{} bytes>", s.len())),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Command {
    /// A command with arguments, no extra environment, no stdin and a 5-minute timeout.
    pub fn new(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(300),
        }
    }

    /// The argv as one line, for plan tests and reports: `sysrc nginx_enable=YES`.
    pub fn argv_line(&self) -> String {
        let mut line = self.program.clone();
        for a in &self.args {
            line.push(' ');
            line.push_str(a);
        }
        line
    }
}

/// What a finished command returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when it was killed by a signal or the timeout.
    pub status: Option<i32>,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
}

impl Output {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Runs external commands. The real runner spawns processes; a recording runner in tests
/// returns scripted outputs and keeps the argv of every call.
pub trait Runner {
    /// Runs `cmd` to completion (or its timeout).
    fn run(&self, cmd: &Command) -> Result<Output, ProviderError>;

    /// Whether `program` can be run: found on PATH or in the usual sbin folders. Providers
    /// use it to pick a tool (dnf or yum) or to skip an optional check (visudo); the
    /// recording runner answers from its script so that plans stay deterministic.
    fn has_command(&self, program: &str) -> bool {
        find_program(program).is_some()
    }
}

/// Runs `cmd` and fails unless it exits 0. The error names `what` was being done, the
/// argv (which, by the providers' rule, never carries a secret: those go on stdin) and the
/// end of stderr (or stdout when stderr is empty).
pub fn run_checked(ctx: &Ctx<'_>, cmd: &Command, what: &str) -> Result<Output, ProviderError> {
    check_output(cmd, ctx.runner.run(cmd)?, what)
}

/// The output of `cmd` when it exited 0, else the error [`run_checked`] describes.
pub fn check_output(cmd: &Command, out: Output, what: &str) -> Result<Output, ProviderError> {
    if out.success() {
        return Ok(out);
    }
    let stream = if out.stderr.iter().all(u8::is_ascii_whitespace) {
        &out.stdout
    } else {
        &out.stderr
    };
    let text = String::from_utf8_lossy(stream);
    let text = text.trim();
    let start = text.char_indices().rev().nth(299).map_or(0, |(i, _)| i);
    let status = match (out.status, out.timed_out) {
        (_, true) => "timed out".to_string(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, _) => "was killed by a signal".to_string(),
    };
    let mut msg = format!("{what}: `{}` {status}", cmd.argv_line());
    if !text.is_empty() {
        msg.push_str(": ");
        msg.push_str(&text[start..]);
    }
    Err(ProviderError(msg))
}

/// Finds `program` on PATH or in the sbin folders that a root shell would search.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(sbin)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// One difference between the current and the desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What differs: `content`, `mode`, `owner`, `state`, `groups`, …
    pub field: String,
    /// The current value, shortened for the report (`absent` when it does not exist).
    pub from: String,
    /// The desired value, shortened for the report.
    pub to: String,
}

impl Change {
    /// A change of `field` from `from` to `to`.
    pub fn new(field: &str, from: impl Into<String>, to: impl Into<String>) -> Change {
        Change {
            field: field.to_string(),
            from: from.into(),
            to: to.into(),
        }
    }
}

/// Why a resource could not be converged. The message says what was being done and,
/// where it helps, what to do; it never contains a secret-derived value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError(pub String);

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Converges resources of one type.
pub trait Provider {
    /// The attribute names this provider understands (besides `name`); the engine skips a
    /// resource that carries any other attribute, naming it.
    fn attributes(&self) -> &'static [&'static str];

    /// Brings `res` to its desired state (or, when `ctx.observe`, only computes the changes).
    /// Returns the changes made or that would be made; empty when already converged.
    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError>;

    /// Restarts or reloads the resource because a resource that notifies it changed.
    /// Only services do anything here.
    fn refresh(&self, _res: &Resource, _ctx: &Ctx<'_>) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Whether the engine confirms a change by converging again in observe mode, which
    /// must then report nothing. Providers whose change is an action (exec) say no.
    fn recheck(&self) -> bool {
        true
    }

    /// Whether a pending `refresh` is still needed after converging made `changes`. By
    /// default a resource that was just brought into existence or started (a `state`
    /// change) needs no restart on top.
    fn needs_refresh_after(&self, changes: &[Change]) -> bool {
        !changes.iter().any(|c| c.field == "state")
    }
}

/// Reads a string attribute (plain or sensitive).
pub fn attr_str<'a>(res: &'a Resource, key: &str) -> Option<&'a str> {
    match res.attr(key)? {
        AttrValue::Str(s) => Some(s),
        AttrValue::Sensitive(s) => Some(s.expose()),
        _ => None,
    }
}
