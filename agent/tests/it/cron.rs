//! cron resources on a Linux family: one /etc/cron.d file per job.

use vigo_shared::bundle::AttrValue;

use crate::support::*;

/// Applies one cron job named `name`; `expected` is the file's content, or the start of
/// the failure message prefixed with `!`.
fn check(name: &str, attrs: Vec<(&str, AttrValue)>, expected: &str) {
    let root = root();
    root.write("/etc/cron.d/.placeholder", "");
    let b = bundle(vec![res("cron", name, attrs)]);
    let id = format!("cron:{name}");
    let run = apply(&b, &root, &[]);
    let path = root.at(&format!("/etc/cron.d/vigo-{name}"));
    if let Some(msg) = expected.strip_prefix('!') {
        assert_eq!(run.status(&id), "failed", "{}", run.debug());
        assert!(
            run.message(&id).starts_with(msg),
            "{name}: {:?}",
            run.message(&id)
        );
        assert!(!path.exists());
        return;
    }
    assert_eq!(run.status(&id), "changed", "{}", run.debug());
    assert_eq!(
        std::fs::read_to_string(&path).expect("cron file"),
        expected,
        "{name}"
    );
    assert_eq!(stat(&path), (0o644, 0, 0));
    assert_eq!(apply(&b, &root, &[]).status(&id), "ok");
}

#[test]
fn cron_files() {
    check(
        "backup",
        vec![
            ("command", s("/usr/local/bin/backup --date +%F")),
            ("user", s("bob")),
            ("minute", s("30")),
            ("hour", s("2")),
            ("weekday", s("1-5")),
        ],
        "# Managed by vigo: cron backup (modules/test.yaml:6:5). Local changes are overwritten.\n30 2 * * 1-5 bob /usr/local/bin/backup --date +\\%F\n",
    );
    check(
        "env_job",
        vec![
            ("command", s("run")),
            (
                "environment",
                list(&["MAILTO=ops@example.com", "PATH=/usr/bin:/bin"]),
            ),
            ("minute", s("*/15")),
            ("month", s("jan")),
        ],
        "# Managed by vigo: cron env_job (modules/test.yaml:7:5). Local changes are overwritten.\nMAILTO=ops@example.com\nPATH=/usr/bin:/bin\n*/15 * * jan * root run\n",
    );
    check(
        "bad-minute",
        vec![("command", s("x")), ("minute", s("61"))],
        "!cron minute \"61\": 61 is outside 0-59",
    );
    check(
        "bad-step",
        vec![("command", s("x")), ("hour", s("*/0"))],
        "!cron hour \"*/0\": step",
    );
    check(
        "bad-names",
        vec![("command", s("x")), ("weekday", s("mon-fri"))],
        "!cron weekday \"mon-fri\": \"mon\" is not a number",
    );
    check(
        "bad.name",
        vec![("command", s("x"))],
        "!cron name \"bad.name\" must use only letters",
    );
    check(
        "two-lines",
        vec![("command", s("a\nb"))],
        "!cron command must be one line",
    );
}

#[test]
fn absent_cron_jobs_are_removed() {
    let root = root();
    root.write("/etc/cron.d/vigo-old", "* * * * * root true\n");
    let b = bundle(vec![res(
        "cron",
        "old",
        vec![("command", s("true")), ("state", s("absent"))],
    )]);
    let run = apply(&b, &root, &[]);
    assert_eq!(run.status("cron:old"), "changed", "{}", run.debug());
    assert!(!root.at("/etc/cron.d/vigo-old").exists());
    assert_eq!(apply(&b, &root, &[]).status("cron:old"), "ok");
}
