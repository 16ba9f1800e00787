//! `type: cron`: one scheduled job. On Linux families that read `/etc/cron.d` (Debian,
//! RHEL, SUSE, Arch) each job is its own file, `/etc/cron.d/vigo-NAME` (mode 0644, owned
//! by root; environment lines first, then `m h dom mon dow user command`), written like a
//! file resource. Where jobs live in per-user crontabs (Alpine's busybox crond, FreeBSD,
//! OpenBSD, NetBSD, macOS) the job is a marked block in the user's crontab, read with
//! `crontab -u USER -l` and written back whole with `crontab -u USER -` through the runner.
//! Schedule fields are validated before anything is written.

use vigo_shared::bundle::Resource;

use super::exec::parse_env;
use super::file::{DesiredFile, converge_file};
use super::ownership::Wanted;
use super::{Change, Command, Ctx, Provider, ProviderError, attr_str};
use crate::family::Family;

/// Converges `type: cron` resources.
pub struct CronProvider;

/// One schedule field: its attribute, allowed numeric range and names.
struct Field {
    attr: &'static str,
    lo: u32,
    hi: u32,
    /// Names for the values from `lo` on (`jan` = 1, `sun` = 0).
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        attr: "minute",
        lo: 0,
        hi: 59,
        names: &[],
    },
    Field {
        attr: "hour",
        lo: 0,
        hi: 23,
        names: &[],
    },
    Field {
        attr: "day",
        lo: 1,
        hi: 31,
        names: &[],
    },
    Field {
        attr: "month",
        lo: 1,
        hi: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    },
    Field {
        attr: "weekday",
        lo: 0,
        hi: 7,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    },
];

/// A validated job.
struct Job {
    name: String,
    user: String,
    schedule: [String; 5],
    command: String,
    env: Vec<(String, String)>,
}

impl Job {
    fn of(res: &Resource) -> Result<Job, ProviderError> {
        let name = res.name.clone();
        let name_ok = !name.is_empty()
            && name.len() <= 200
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(ProviderError(format!(
                "cron name {name:?} must use only letters, digits, '-' and '_' (cron ignores other file names in /etc/cron.d)"
            )));
        }
        let user = attr_str(res, "user").unwrap_or("root").to_string();
        if user.is_empty()
            || user
                .chars()
                .any(|c| c.is_whitespace() || c == ':' || c == '/')
        {
            return Err(ProviderError(format!(
                "cron user {user:?} is not a valid user name"
            )));
        }
        let mut schedule: [String; 5] = Default::default();
        for (slot, field) in schedule.iter_mut().zip(&FIELDS) {
            let text = attr_str(res, field.attr).unwrap_or("*").trim();
            check_field(field, text)
                .map_err(|why| ProviderError(format!("cron {} {text:?}: {why}", field.attr)))?;
            *slot = text.to_string();
        }
        let command = attr_str(res, "command").unwrap_or("").trim();
        if command.is_empty() {
            return Err(ProviderError(
                "cron command is missing or empty".to_string(),
            ));
        }
        if command.contains('\n') || command.contains('\r') || command.contains('\0') {
            return Err(ProviderError("cron command must be one line".to_string()));
        }
        Ok(Job {
            name,
            user,
            schedule,
            command: escape_percent(command),
            env: parse_env(res)?,
        })
    }

    /// The job's line: `m h dom mon dow [user] command`.
    fn line(&self, with_user: bool) -> String {
        let mut line = self.schedule.join(" ");
        if with_user {
            line.push(' ');
            line.push_str(&self.user);
        }
        line.push(' ');
        line.push_str(&self.command);
        line
    }

    /// Environment lines, then the job line, each ending in a newline.
    fn body(&self, with_user: bool) -> String {
        let mut text = String::new();
        for (k, v) in &self.env {
            text.push_str(&format!("{k}={v}\n"));
        }
        text.push_str(&self.line(with_user));
        text.push('\n');
        text
    }
}

/// Cron turns an unescaped `%` into a newline (the rest becomes stdin); the command is
/// meant literally, so every `%` not already escaped is escaped.
fn escape_percent(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut prev = '\0';
    for c in command.chars() {
        if c == '%' && prev != '\\' {
            out.push('\\');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Validates one schedule field: `*`, `*/step`, numbers, ranges `a-b`, steps `a-b/n`,
/// comma lists of those, or one name (`mon`, `jan`) on its own.
fn check_field(field: &Field, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty field".to_string());
    }
    if field.names.iter().any(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(());
    }
    let number = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 3 {
            let hint = if field.names.is_empty() {
                String::new()
            } else {
                "; names are allowed only alone".to_string()
            };
            return Err(format!("{s:?} is not a number{hint}"));
        }
        let n: u32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
        if n < field.lo || n > field.hi {
            return Err(format!("{n} is outside {}-{}", field.lo, field.hi));
        }
        Ok(n)
    };
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            let ok =
                !step.is_empty() && step.len() <= 3 && step.bytes().all(|b| b.is_ascii_digit());
            match step.parse::<u32>() {
                Ok(n) if ok && n >= 1 && n <= field.hi.max(1) => {}
                _ => {
                    return Err(format!(
                        "step {step:?} must be a number from 1 to {}",
                        field.hi.max(1)
                    ));
                }
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("range {a}-{b} runs backwards"));
                }
            }
            None => {
                number(range)?;
            }
        }
    }
    Ok(())
}

impl Provider for CronProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &[
            "command",
            "user",
            "minute",
            "hour",
            "day",
            "month",
            "weekday",
            "environment",
            "state",
        ]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let present = attr_str(res, "state") != Some("absent");
        let job = Job::of(res)?;
        match ctx.family {
            Family::Debian | Family::Rhel | Family::Suse | Family::Arch => {
                cron_d(&job, present, res, ctx)
            }
            Family::Alpine | Family::FreeBsd | Family::OpenBsd | Family::NetBsd | Family::MacOs => {
                user_crontab(&job, present, ctx)
            }
            Family::Illumos | Family::Windows => Err(ProviderError(format!(
                "cron jobs are not supported on {} yet; use the system scheduler through an exec resource",
                ctx.family
            ))),
        }
    }
}

/// `/etc/cron.d/vigo-NAME`, converged as a root-owned 0644 file.
fn cron_d(
    job: &Job,
    present: bool,
    res: &Resource,
    ctx: &Ctx<'_>,
) -> Result<Vec<Change>, ProviderError> {
    let mut content = format!(
        "# Managed by vigo: cron {} ({}). Local changes are overwritten.\n",
        job.name, res.origin
    );
    content.push_str(&job.body(true));
    let root = || {
        Some(Wanted {
            text: "root".to_string(),
            id: Some(0),
        })
    };
    let desired = DesiredFile {
        present,
        content: Some(content.as_bytes()),
        sensitive: false,
        mode: Some(0o644),
        owner: root(),
        group: root(),
        replace_symlink: false,
    };
    converge_file(ctx, &format!("/etc/cron.d/vigo-{}", job.name), &desired)
}

fn begin_marker(name: &str) -> String {
    format!("# vigo:begin {name}")
}

fn end_marker(name: &str) -> String {
    format!("# vigo:end {name}")
}

/// The job as a marked block in the user's crontab.
fn user_crontab(job: &Job, present: bool, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
    let list = ctx
        .runner
        .run(&Command::new("crontab", &["-u", &job.user, "-l"]))?;
    let current = if list.success() {
        String::from_utf8_lossy(&list.stdout).into_owned()
    } else {
        let msg = String::from_utf8_lossy(&list.stderr).to_lowercase();
        if !msg.contains("no crontab") {
            return Err(ProviderError(format!(
                "reading the crontab of {} failed: {}",
                job.user,
                String::from_utf8_lossy(&list.stderr).trim()
            )));
        }
        String::new()
    };
    let (before, old_block, after) = split_block(&current, &job.name);
    let new_block = if present {
        Some(format!(
            "{}\n{}{}\n",
            begin_marker(&job.name),
            job.body(false),
            end_marker(&job.name)
        ))
    } else {
        None
    };
    if old_block == new_block.as_deref() {
        return Ok(Vec::new());
    }
    let show = |block: Option<&str>| {
        block.map_or_else(
            || "absent".to_string(),
            |b| {
                b.lines()
                    .filter(|l| !l.starts_with("# vigo:"))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        )
    };
    let changes = vec![Change::new(
        "job",
        show(old_block),
        show(new_block.as_deref()),
    )];
    if ctx.observe {
        return Ok(changes);
    }
    let mut text = before.to_string();
    if let Some(block) = &new_block {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(block);
    }
    text.push_str(after);
    let mut write = Command::new("crontab", &["-u", &job.user, "-"]);
    write.stdin = Some(text.into_bytes());
    let out = ctx.runner.run(&write)?;
    if !out.success() {
        return Err(ProviderError(format!(
            "writing the crontab of {} failed: {}",
            job.user,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(changes)
}

/// Splits a crontab into the text before the job's block, the block (markers included)
/// and the text after it. Without a block, everything is "before".
fn split_block<'a>(text: &'a str, name: &str) -> (&'a str, Option<&'a str>, &'a str) {
    let begin = begin_marker(name) + "\n";
    let end = end_marker(name) + "\n";
    let start = if text.starts_with(&begin) {
        Some(0)
    } else {
        text.find(&format!("\n{begin}")).map(|i| i + 1)
    };
    let Some(start) = start else {
        return (text, None, "");
    };
    match text[start..].find(&end) {
        Some(off) => {
            let stop = start + off + end.len();
            (&text[..start], Some(&text[start..stop]), &text[stop..])
        }
        None => (text, None, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_fields() {
        let check = |attr: &str, text: &str, ok: bool| {
            let field = FIELDS.iter().find(|f| f.attr == attr).expect("known field");
            assert_eq!(
                check_field(field, text).is_ok(),
                ok,
                "{attr} {text:?}: {:?}",
                check_field(field, text)
            );
        };
        for good in ["*", "0", "59", "*/5", "0-30/10", "1,2,3", "5/15"] {
            check("minute", good, true);
        }
        for bad in [
            "", "60", "-1", "a", "*/0", "*/", "5-1", "1,,2", "1 2", "*/61", "0x1",
        ] {
            check("minute", bad, false);
        }
        check("month", "JAN", true);
        check("month", "jan-mar", false);
        check("month", "0", false);
        check("weekday", "7", true);
        check("weekday", "sun", true);
        check("weekday", "mon,tue", false);
        check("day", "0", false);
        check("day", "31", true);
    }

    #[test]
    fn percent_signs_are_escaped_once() {
        assert_eq!(escape_percent("date +%Y-%m"), "date +\\%Y-\\%m");
        assert_eq!(escape_percent("date +\\%Y"), "date +\\%Y");
    }

    use crate::providers::Output;
    use crate::providers::testing::{ScriptedRunner, TempDir, ctx, out};
    use vigo_shared::bundle::{Attr, AttrValue};

    fn job(state: &str) -> Resource {
        let attr = |k: &str, v: &str| Attr {
            key: k.to_string(),
            value: AttrValue::Str(v.to_string()),
        };
        Resource {
            kind: vigo_shared::bundle::ResourceKind::Cron,
            name: "backup".to_string(),
            attrs: vec![
                attr("command", "backup --at %H"),
                attr("hour", "3"),
                attr("minute", "0"),
                attr("state", state),
                attr("user", "alice"),
            ],
            when: None,
            depends_on: vec![],
            notify: vec![],
            compliance: vec![],
            dangerous: false,
            origin: String::new(),
            module: String::new(),
            skip: None,
        }
    }

    /// Converges the job on `family` against a scripted `crontab -l` answer; returns the
    /// command plan (argv lines, and the stdin of the write) and the reported changes.
    fn plan(
        family: Family,
        state: &str,
        current: Output,
        observe: bool,
    ) -> (Vec<String>, Option<String>, Vec<Change>) {
        let root = TempDir::new("cron-plan");
        let runner = ScriptedRunner::new().reply("crontab -u alice -l", current);
        let changes = CronProvider
            .converge(&job(state), &ctx(root.path(), family, observe, &runner))
            .expect("converges");
        let stdin = runner
            .calls()
            .iter()
            .find_map(|c| c.stdin.clone())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        (runner.lines(), stdin, changes)
    }

    fn no_crontab() -> Output {
        Output {
            status: Some(1),
            stderr: b"crontab: no crontab for alice\n".to_vec(),
            ..Output::default()
        }
    }

    #[test]
    fn user_crontab_plans() {
        let block = "# vigo:begin backup\n0 3 * * * backup --at \\%H\n# vigo:end backup\n";
        for family in [
            Family::FreeBsd,
            Family::OpenBsd,
            Family::NetBsd,
            Family::MacOs,
            Family::Alpine,
        ] {
            // A user without a crontab gets one with just the block.
            let (lines, stdin, changes) = plan(family, "present", no_crontab(), false);
            assert_eq!(
                lines,
                ["crontab -u alice -l", "crontab -u alice -"],
                "{family}"
            );
            assert_eq!(stdin.as_deref(), Some(block));
            assert_eq!(
                changes,
                [Change::new("job", "absent", "0 3 * * * backup --at \\%H")]
            );
        }
        // Other lines stay; an outdated block is replaced where it is.
        let current =
            "MAILTO=a\n# vigo:begin backup\n0 4 * * * old\n# vigo:end backup\n5 * * * * mine\n";
        let (lines, stdin, _) = plan(Family::FreeBsd, "present", out(0, current), false);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            stdin.expect("written"),
            format!("MAILTO=a\n{block}5 * * * * mine\n")
        );
        // Converged: only the read.
        let (lines, _, changes) = plan(
            Family::FreeBsd,
            "present",
            out(0, &format!("x\n{block}")),
            false,
        );
        assert_eq!((lines.len(), changes.len()), (1, 0));
        // Observe: only the read, the change is reported.
        let (lines, _, changes) = plan(Family::OpenBsd, "present", no_crontab(), true);
        assert_eq!(
            (lines, changes.len()),
            (vec!["crontab -u alice -l".to_string()], 1)
        );
        // Absent removes the block and keeps the rest.
        let (_, stdin, changes) = plan(
            Family::NetBsd,
            "absent",
            out(0, &format!("a\n{block}b\n")),
            false,
        );
        assert_eq!(stdin.as_deref(), Some("a\nb\n"));
        assert_eq!(changes[0].to, "absent");
        // A crontab that cannot be read is an error, not an empty crontab.
        let root = TempDir::new("cron-plan");
        let runner = ScriptedRunner::new().reply(
            "crontab -u alice -l",
            Output {
                status: Some(1),
                stderr: b"permission denied".to_vec(),
                ..Output::default()
            },
        );
        let err = CronProvider
            .converge(
                &job("present"),
                &ctx(root.path(), Family::FreeBsd, false, &runner),
            )
            .unwrap_err();
        assert!(
            err.0
                .contains("reading the crontab of alice failed: permission denied"),
            "{err}"
        );
        // illumos and Windows say so.
        let runner = ScriptedRunner::new();
        let err = CronProvider
            .converge(
                &job("present"),
                &ctx(root.path(), Family::Illumos, false, &runner),
            )
            .unwrap_err();
        assert!(
            err.0.starts_with("cron jobs are not supported on illumos"),
            "{err}"
        );
        assert!(runner.lines().is_empty());
    }

    #[test]
    fn blocks_are_found_between_markers() {
        let text = "MAILTO=x\n# vigo:begin a\n1 * * * * x\n# vigo:end a\n# other\n";
        assert_eq!(
            split_block(text, "a"),
            (
                "MAILTO=x\n",
                Some("# vigo:begin a\n1 * * * * x\n# vigo:end a\n"),
                "# other\n"
            )
        );
        assert_eq!(split_block(text, "b"), (text, None, ""));
        assert_eq!(
            split_block("# vigo:begin ab\n", "a"),
            ("# vigo:begin ab\n", None, "")
        );
    }
}
