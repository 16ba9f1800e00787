//! `type: exec`: a command run through the shell (`/bin/sh -c`; `cmd /C` on Windows) when
//! its guards allow: `creates` (a path beneath the root that, when present, means the work
//! is done), `unless` (skip when this command succeeds), `onlyif` (run only when this
//! command succeeds). `refreshonly` runs it only when a resource that notifies it changed.
//! A nonzero exit, a signal or the timeout fails the resource; the end of the output goes
//! into the report. In observe mode neither the command nor its guards run: guards are
//! commands too and may have side effects.

use std::time::Duration;

use vigo_shared::bundle::{AttrValue, Resource};

use super::ownership;
use super::{Change, Command, Ctx, Output, Provider, ProviderError, attr_str};
use crate::family::Family;

/// The report keeps this many bytes of a command's output: the end, where errors are.
pub const OUTPUT_TAIL: usize = 4096;

/// Default timeout of a command and of each guard, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// Converges `type: exec` resources.
pub struct ExecProvider;

struct Spec<'a> {
    command: &'a str,
    creates: Option<&'a str>,
    unless: Option<&'a str>,
    onlyif: Option<&'a str>,
    timeout: Duration,
    env: Vec<(String, String)>,
    cwd: Option<&'a str>,
    refreshonly: bool,
}

impl<'a> Spec<'a> {
    fn of(res: &'a Resource) -> Result<Spec<'a>, ProviderError> {
        let command = attr_str(res, "command")
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| ProviderError("command is missing or empty".to_string()))?;
        let creates = attr_str(res, "creates");
        if let Some(c) = creates {
            ownership::check_node_path(c).map_err(|e| ProviderError(format!("creates: {e}")))?;
        }
        let cwd = attr_str(res, "cwd");
        if let Some(c) = cwd {
            ownership::check_node_path(c).map_err(|e| ProviderError(format!("cwd: {e}")))?;
        }
        let timeout = match res.attr("timeout") {
            None => DEFAULT_TIMEOUT_SECS,
            Some(AttrValue::Int(n)) if *n > 0 => *n as u64,
            Some(_) => {
                return Err(ProviderError(
                    "timeout must be a positive number of seconds".to_string(),
                ));
            }
        };
        let refreshonly = match res.attr("refreshonly") {
            None => false,
            Some(AttrValue::Bool(b)) => *b,
            Some(_) => {
                return Err(ProviderError(
                    "refreshonly must be true or false".to_string(),
                ));
            }
        };
        Ok(Spec {
            command,
            creates,
            unless: attr_str(res, "unless"),
            onlyif: attr_str(res, "onlyif"),
            timeout: Duration::from_secs(timeout),
            env: parse_env(res)?,
            cwd,
            refreshonly,
        })
    }

    fn has_guards(&self) -> bool {
        self.unless.is_some() || self.onlyif.is_some()
    }
}

/// Reads `environment`: `KEY=VALUE` strings.
pub fn parse_env(res: &Resource) -> Result<Vec<(String, String)>, ProviderError> {
    let items: Vec<&str> = match res.attr("environment") {
        None => Vec::new(),
        Some(AttrValue::List(items)) => items.iter().map(String::as_str).collect(),
        Some(AttrValue::Str(s)) => vec![s.as_str()],
        Some(_) => {
            return Err(ProviderError(
                "environment must be a list of KEY=VALUE strings".to_string(),
            ));
        }
    };
    items
        .into_iter()
        .map(|item| {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let valid = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid || !item.contains('=') {
                return Err(ProviderError(format!(
                    "environment entry {k:?} is not KEY=VALUE with a valid variable name"
                )));
            }
            if v.contains('\n') || v.contains('\0') {
                return Err(ProviderError(format!(
                    "environment variable {k} contains a newline or NUL byte"
                )));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

impl Provider for ExecProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &[
            "command",
            "creates",
            "unless",
            "onlyif",
            "timeout",
            "environment",
            "cwd",
            "refreshonly",
            "state",
        ]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let spec = Spec::of(res)?;
        if spec.refreshonly || created(&spec, ctx) {
            return Ok(Vec::new());
        }
        if ctx.observe {
            let to = if spec.has_guards() {
                "would run (guards not evaluated in observe mode)"
            } else {
                "would run"
            };
            return Ok(vec![Change::new("command", "not run", to)]);
        }
        run_guarded(&spec, ctx)
    }

    fn refresh(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<(), ProviderError> {
        let spec = Spec::of(res)?;
        if ctx.observe || created(&spec, ctx) {
            return Ok(());
        }
        run_guarded(&spec, ctx).map(|_| ())
    }

    fn recheck(&self) -> bool {
        // Running the command is the change; a second look would only run it again. The
        // `creates` promise is checked right after the run instead.
        false
    }

    fn needs_refresh_after(&self, changes: &[Change]) -> bool {
        !changes.iter().any(|c| c.field == "command")
    }
}

fn created(spec: &Spec<'_>, ctx: &Ctx<'_>) -> bool {
    spec.creates
        .is_some_and(|c| std::fs::symlink_metadata(ctx.path(c)).is_ok())
}

/// Runs the guards, then the command; `[]` when a guard says not to run.
fn run_guarded(spec: &Spec<'_>, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
    if let Some(unless) = spec.unless
        && guard(spec, ctx, "unless", unless)?
    {
        return Ok(Vec::new());
    }
    if let Some(onlyif) = spec.onlyif
        && !guard(spec, ctx, "onlyif", onlyif)?
    {
        return Ok(Vec::new());
    }
    let out = ctx.runner.run(&shell(spec, ctx, spec.command))?;
    let tail = output_tail(&out);
    if out.timed_out {
        return Err(ProviderError(format!(
            "command timed out after {} s and was killed{}",
            spec.timeout.as_secs(),
            with_output(&tail)
        )));
    }
    match out.status {
        Some(0) => {}
        Some(code) => {
            return Err(ProviderError(format!(
                "command exited with status {code}{}",
                with_output(&tail)
            )));
        }
        None => {
            return Err(ProviderError(format!(
                "command was killed by a signal{}",
                with_output(&tail)
            )));
        }
    }
    if let Some(c) = spec.creates
        && !created(spec, ctx)
    {
        return Err(ProviderError(format!(
            "command succeeded but did not create {c}{}",
            with_output(&tail)
        )));
    }
    let mut changes = vec![Change::new("command", "not run", "ran (exit 0)")];
    if !tail.is_empty() {
        changes.push(Change::new("output", "", tail));
    }
    Ok(changes)
}

/// Runs a guard; `true` when it exits 0. A guard that cannot run or times out fails the
/// resource rather than deciding either way.
fn guard(spec: &Spec<'_>, ctx: &Ctx<'_>, which: &str, script: &str) -> Result<bool, ProviderError> {
    let out = ctx.runner.run(&shell(spec, ctx, script))?;
    if out.timed_out {
        return Err(ProviderError(format!(
            "{which} guard timed out after {} s and was killed{}",
            spec.timeout.as_secs(),
            with_output(&output_tail(&out))
        )));
    }
    Ok(out.success())
}

/// The shell command line for `script`: `/bin/sh -c SCRIPT`, or with a working directory
/// `/bin/sh -c 'cd -- "$1" && exec /bin/sh -c "$2"' vigo-exec DIR SCRIPT` so that a missing
/// directory fails before the script runs. `VIGO_ROOT` tells the script the root.
fn shell(spec: &Spec<'_>, ctx: &Ctx<'_>, script: &str) -> Command {
    let cwd = spec.cwd.map(|c| ctx.path(c).to_string_lossy().into_owned());
    let mut cmd = if ctx.family == Family::Windows {
        match &cwd {
            Some(dir) => Command::new("cmd", &["/C", &format!("cd /d \"{dir}\" && {script}")]),
            None => Command::new("cmd", &["/C", script]),
        }
    } else {
        match &cwd {
            Some(dir) => Command::new(
                "/bin/sh",
                &[
                    "-c",
                    "cd -- \"$1\" && exec /bin/sh -c \"$2\"",
                    "vigo-exec",
                    dir,
                    script,
                ],
            ),
            None => Command::new("/bin/sh", &["-c", script]),
        }
    };
    cmd.timeout = spec.timeout;
    cmd.env = spec.env.clone();
    cmd.env.push((
        "VIGO_ROOT".to_string(),
        ctx.root.to_string_lossy().into_owned(),
    ));
    cmd
}

/// The last [`OUTPUT_TAIL`] bytes of stdout followed by stderr, as text.
pub fn output_tail(out: &Output) -> String {
    let mut all = out.stdout.clone();
    if !out.stderr.is_empty() {
        if !all.is_empty() && !all.ends_with(b"\n") {
            all.push(b'\n');
        }
        all.extend_from_slice(&out.stderr);
    }
    let cut = all.len().saturating_sub(OUTPUT_TAIL);
    let mut text = String::from_utf8_lossy(&all[cut..]).into_owned();
    // A cut in the middle of a UTF-8 sequence leaves replacement characters at the start.
    let trimmed = text.trim_start_matches('\u{fffd}').len();
    text.drain(..text.len() - trimmed);
    while text.ends_with('\n') {
        text.pop();
    }
    if cut > 0 {
        text.insert_str(0, &format!("… ({cut} earlier bytes cut)\n"));
    }
    text
}

fn with_output(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; output:\n{tail}")
    }
}
