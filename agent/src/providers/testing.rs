//! A scripted, recording [`Runner`] for plan tests: it answers commands with scripted
//! outputs matched by their argv line and keeps every command it was asked to run, so a
//! test can assert the exact command plan of an OS family that cannot run here.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use vigo_shared::bundle::{Attr, AttrValue, Resource, ResourceKind};

use super::{Command, Ctx, Output, ProviderError, Runner};
use crate::facts::Facts;
use crate::family::Family;

/// Answers commands from a script and records them.
///
/// Replies are matched by [`Command::argv_line`]. Several replies for the same line are
/// returned in order and the last one repeats, so a test can script "stopped" for the
/// first check and "running" for the re-check. A command without a reply succeeds with
/// empty output, which is what the mutating commands of a plan need.
#[derive(Default)]
pub struct ScriptedRunner {
    replies: RefCell<BTreeMap<String, VecDeque<Output>>>,
    effects: BTreeMap<String, Vec<Box<dyn Fn()>>>,
    calls: RefCell<Vec<Command>>,
    commands: BTreeSet<String>,
}

impl ScriptedRunner {
    /// An empty script: every command succeeds silently and no program "exists".
    pub fn new() -> ScriptedRunner {
        ScriptedRunner::default()
    }

    /// Answers `argv_line` with `output`.
    pub fn reply(self, argv_line: &str, output: Output) -> ScriptedRunner {
        self.replies
            .borrow_mut()
            .entry(argv_line.to_string())
            .or_default()
            .push_back(output);
        self
    }

    /// Answers `argv_line` with exit status 0 and `stdout`.
    pub fn ok(self, argv_line: &str, stdout: &str) -> ScriptedRunner {
        self.reply(argv_line, out(0, stdout))
    }

    /// Answers `argv_line` with exit `status` and `stdout`.
    pub fn exit(self, argv_line: &str, status: i32, stdout: &str) -> ScriptedRunner {
        self.reply(argv_line, out(status, stdout))
    }

    /// Runs `effect` whenever `argv_line` is run, before replying: a plan test uses it to
    /// play the tool's part (a fake `useradd` appends to the root's passwd) so that the
    /// provider's re-read sees the result.
    pub fn effect(mut self, argv_line: &str, effect: impl Fn() + 'static) -> ScriptedRunner {
        self.effects
            .entry(argv_line.to_string())
            .or_default()
            .push(Box::new(effect));
        self
    }

    /// Makes [`Runner::has_command`] answer true for `program`.
    pub fn with_command(mut self, program: &str) -> ScriptedRunner {
        self.commands.insert(program.to_string());
        self
    }

    /// The argv lines of every command run so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.calls.borrow().iter().map(Command::argv_line).collect()
    }

    /// Every command run so far, in order.
    pub fn calls(&self) -> Vec<Command> {
        self.calls.borrow().clone()
    }
}

impl Runner for ScriptedRunner {
    fn run(&self, cmd: &Command) -> Result<Output, ProviderError> {
        self.calls.borrow_mut().push(cmd.clone());
        for effect in self.effects.get(&cmd.argv_line()).into_iter().flatten() {
            effect();
        }
        let mut replies = self.replies.borrow_mut();
        let Some(queue) = replies.get_mut(&cmd.argv_line()) else {
            return Ok(out(0, ""));
        };
        let reply = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        Ok(reply.unwrap_or_default())
    }

    fn has_command(&self, program: &str) -> bool {
        self.commands.contains(program)
    }
}

/// Runs commands on this host for the real (temporary-root) tests, without depending on
/// the agent's production runner: plain `std::process`, stdin fed, output captured.
pub struct HostRunner;

impl Runner for HostRunner {
    fn run(&self, cmd: &Command) -> Result<Output, ProviderError> {
        use std::io::Write;
        let mut child = std::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| ProviderError(format!("running {}: {e}", cmd.program)))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        if let Some(bytes) = &cmd.stdin {
            stdin
                .write_all(bytes)
                .map_err(|e| ProviderError(format!("writing stdin: {e}")))?;
        }
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|e| ProviderError(format!("waiting: {e}")))?;
        Ok(Output {
            status: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
            timed_out: false,
        })
    }
}

/// An output with `status` and `stdout`.
pub fn out(status: i32, stdout: &str) -> Output {
    Output {
        status: Some(status),
        stdout: stdout.as_bytes().to_vec(),
        ..Output::default()
    }
}

/// Attributes of a resource in a test table.
pub type Attrs = Vec<(&'static str, AttrValue)>;

/// A resource of `kind` named `name` with `attrs` (sorted by key, as in a bundle).
pub fn resource(kind: ResourceKind, name: &str, attrs: &[(&str, AttrValue)]) -> Resource {
    let mut attrs: Vec<Attr> = attrs
        .iter()
        .map(|(k, v)| Attr {
            key: k.to_string(),
            value: v.clone(),
        })
        .collect();
    attrs.sort_by(|a, b| a.key.cmp(&b.key));
    Resource {
        kind,
        name: name.to_string(),
        attrs,
        when: None,
        depends_on: Vec::new(),
        notify: Vec::new(),
        compliance: Vec::new(),
        dangerous: false,
        origin: "test.yaml:1:1".to_string(),
        module: "test".to_string(),
        skip: None,
    }
}

/// A string attribute value.
pub fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_string())
}

/// A boolean attribute value.
pub fn b(v: bool) -> AttrValue {
    AttrValue::Bool(v)
}

/// An integer attribute value.
pub fn i(v: i64) -> AttrValue {
    AttrValue::Int(v)
}

/// A list attribute value.
pub fn l(v: &[&str]) -> AttrValue {
    AttrValue::List(v.iter().map(|x| x.to_string()).collect())
}

/// A secret-derived attribute value.
pub fn secret(v: &str) -> AttrValue {
    AttrValue::Sensitive(vigo_shared::bundle::Sensitive::new(v.to_string()))
}

/// Empty facts for contexts built in tests.
pub fn no_facts() -> &'static Facts {
    static FACTS: std::sync::OnceLock<Facts> = std::sync::OnceLock::new();
    FACTS.get_or_init(Facts::default)
}

/// A context for `family` rooted at `root` that runs commands through `runner`.
pub fn ctx<'a>(
    root: &'a Path,
    family: Family,
    observe: bool,
    runner: &'a ScriptedRunner,
) -> Ctx<'a> {
    Ctx {
        root,
        facts: no_facts(),
        family,
        observe,
        runner,
    }
}

/// A fresh, empty temporary folder for one test, removed when the guard drops.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/vigo-<label>-<pid>-<n>`.
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vigo-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temporary folder is writable");
        TempDir(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `content` to `rel` beneath the folder, creating parents.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.0.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().expect("a file has a parent"))
            .expect("the temporary folder is writable");
        std::fs::write(path, content).expect("the temporary folder is writable");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A listing of everything beneath `root` — path, kind, mode, owner and content — to show
/// that an observe run changed nothing.
#[cfg(unix)]
pub fn snapshot(root: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).expect("listed entries exist");
            let rel = p
                .strip_prefix(root)
                .expect("beneath root")
                .display()
                .to_string();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.push(format!(
                "{rel} {:o} {}:{} {:?}",
                m.mode(),
                m.uid(),
                m.gid(),
                content
            ));
            if m.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.join("\n")
}
