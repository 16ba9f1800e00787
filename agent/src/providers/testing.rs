//! A scripted, recording [`Runner`] for plan tests: it answers commands with scripted
//! outputs matched by their argv line and keeps every command it was asked to run, so a
//! test can assert the exact command plan of an OS family that cannot run here.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

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
        self.replies.borrow_mut().entry(argv_line.to_string()).or_default().push_back(output);
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
        let mut replies = self.replies.borrow_mut();
        let Some(queue) = replies.get_mut(&cmd.argv_line()) else {
            return Ok(out(0, ""));
        };
        let reply = if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() };
        Ok(reply.unwrap_or_default())
    }

    fn has_command(&self, program: &str) -> bool {
        self.commands.contains(program)
    }
}

/// An output with `status` and `stdout`.
pub fn out(status: i32, stdout: &str) -> Output {
    Output { status: Some(status), stdout: stdout.as_bytes().to_vec(), ..Output::default() }
}

/// Empty facts for contexts built in tests.
pub fn no_facts() -> &'static Facts {
    static FACTS: std::sync::OnceLock<Facts> = std::sync::OnceLock::new();
    FACTS.get_or_init(Facts::default)
}

/// A context for `family` rooted at `root` that runs commands through `runner`.
pub fn ctx<'a>(root: &'a Path, family: Family, observe: bool, runner: &'a ScriptedRunner) -> Ctx<'a> {
    Ctx { root, facts: no_facts(), family, observe, runner }
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
