//! exec resources: guards, timeouts, environment, working directory, output capture and
//! observe mode. Commands write beneath "$VIGO_ROOT" so that each test keeps to its root.

use std::time::{Duration, Instant};

use vigo_shared::bundle::AttrValue;

use crate::support::*;

/// One exec case: attributes, the status of the first and second run, and the files
/// (relative to the root) that must exist afterwards (`+path`) or must not (`-path`).
struct Case {
    attrs: Vec<(&'static str, AttrValue)>,
    pre: &'static [&'static str],
    first: &'static str,
    second: &'static str,
    files: &'static [&'static str],
}

fn check(name: &str, case: Case) -> Run {
    let root = root();
    for p in case.pre {
        root.write(p, "");
    }
    let b = bundle(vec![res("exec", name, case.attrs)]);
    let id = format!("exec:{name}");
    let first = apply(&b, &root, &[]);
    assert_eq!(
        first.status(&id),
        case.first,
        "{name} first run\n{}",
        first.debug()
    );
    let second = apply(&b, &root, &[]);
    assert_eq!(
        second.status(&id),
        case.second,
        "{name} second run\n{}",
        second.debug()
    );
    for f in case.files {
        let (want, path) = f.split_at(1);
        assert_eq!(
            root.at(path).exists(),
            want == "+",
            "{name}: {f}\n{}",
            first.debug()
        );
    }
    first
}

const TOUCH_RAN: &str = "touch \"$VIGO_ROOT/ran\"";

#[test]
fn guards() {
    check(
        "creates",
        Case {
            attrs: vec![
                ("command", s("touch \"$VIGO_ROOT/made\"")),
                ("creates", s("/made")),
            ],
            pre: &[],
            first: "changed",
            second: "ok",
            files: &["+/made"],
        },
    );
    check(
        "created-already",
        Case {
            attrs: vec![("command", s(TOUCH_RAN)), ("creates", s("/made"))],
            pre: &["/made"],
            first: "ok",
            second: "ok",
            files: &["-/ran"],
        },
    );
    check(
        "unless-true",
        Case {
            attrs: vec![("command", s(TOUCH_RAN)), ("unless", s("true"))],
            pre: &[],
            first: "ok",
            second: "ok",
            files: &["-/ran"],
        },
    );
    check(
        "unless-file",
        Case {
            attrs: vec![
                ("command", s(TOUCH_RAN)),
                ("unless", s("test -e \"$VIGO_ROOT/ran\"")),
            ],
            pre: &[],
            first: "changed",
            second: "ok",
            files: &["+/ran"],
        },
    );
    check(
        "onlyif-false",
        Case {
            attrs: vec![("command", s(TOUCH_RAN)), ("onlyif", s("false"))],
            pre: &[],
            first: "ok",
            second: "ok",
            files: &["-/ran"],
        },
    );
    check(
        "onlyif-true",
        Case {
            attrs: vec![
                ("command", s(TOUCH_RAN)),
                ("onlyif", s("test -e \"$VIGO_ROOT/go\"")),
            ],
            pre: &["/go"],
            first: "changed",
            second: "changed",
            files: &["+/ran"],
        },
    );
    let run = check(
        "creates-broken-promise",
        Case {
            attrs: vec![("command", s("true")), ("creates", s("/never"))],
            pre: &[],
            first: "failed",
            second: "failed",
            files: &[],
        },
    );
    assert!(
        run.message("exec:creates-broken-promise")
            .contains("did not create /never"),
        "{}",
        run.debug()
    );
    check(
        "refreshonly",
        Case {
            attrs: vec![("command", s(TOUCH_RAN)), ("refreshonly", boolean(true))],
            pre: &[],
            first: "ok",
            second: "ok",
            files: &["-/ran"],
        },
    );
}

#[test]
fn environment_cwd_and_output() {
    let run = check(
        "env",
        Case {
            attrs: vec![
                (
                    "command",
                    s("echo \"$GREETING $WHO from $(pwd)\"; echo warn >&2"),
                ),
                ("environment", list(&["GREETING=hello", "WHO=a b=c"])),
                ("cwd", s("/work")),
            ],
            pre: &["/work/.keep"],
            first: "changed",
            second: "changed",
            files: &[],
        },
    );
    let changes = run.changes("exec:env");
    assert_eq!(changes[0], "command: not run -> ran (exit 0)");
    assert!(
        changes[1].starts_with("output:  -> hello a b=c from /")
            && changes[1].ends_with("/work\nwarn"),
        "{changes:?}"
    );

    let run = check(
        "bad-cwd",
        Case {
            attrs: vec![("command", s(TOUCH_RAN)), ("cwd", s("/missing"))],
            pre: &[],
            first: "failed",
            second: "failed",
            files: &["-/ran"],
        },
    );
    assert!(
        run.message("exec:bad-cwd")
            .starts_with("command exited with status"),
        "{}",
        run.debug()
    );

    let run = check(
        "bad-env",
        Case {
            attrs: vec![("command", s("true")), ("environment", list(&["1BAD=x"]))],
            pre: &[],
            first: "failed",
            second: "failed",
            files: &[],
        },
    );
    assert!(
        run.message("exec:bad-env").contains("not KEY=VALUE"),
        "{}",
        run.debug()
    );
}

#[test]
fn long_output_keeps_its_end() {
    let run = check(
        "loud",
        Case {
            attrs: vec![(
                "command",
                s("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; exit 3"),
            )],
            pre: &[],
            first: "failed",
            second: "failed",
            files: &[],
        },
    );
    let msg = run.message("exec:loud");
    assert!(
        msg.starts_with("command exited with status 3; output:\n… ("),
        "{}",
        &msg[..100.min(msg.len())]
    );
    assert!(
        msg.ends_with("line-1999") && msg.len() < 4300,
        "{} bytes",
        msg.len()
    );
}

#[test]
fn timeouts_kill_the_command_and_its_children() {
    let start = Instant::now();
    let run = check(
        "slow",
        Case {
            attrs: vec![
                ("command", s("echo started; sleep 30 & sleep 30")),
                ("timeout", int(1)),
            ],
            pre: &[],
            first: "failed",
            second: "failed",
            files: &[],
        },
    );
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        run.message("exec:slow"),
        "command timed out after 1 s and was killed; output:\nstarted"
    );
}

#[test]
fn observe_runs_neither_command_nor_guards() {
    let root = root();
    let guard = "touch \"$VIGO_ROOT/guard-ran\"; false";
    let b = bundle(vec![
        res(
            "exec",
            "guarded",
            vec![("command", s(TOUCH_RAN)), ("unless", s(guard))],
        ),
        res("exec", "plain", vec![("command", s(TOUCH_RAN))]),
        res(
            "exec",
            "done",
            vec![("command", s(TOUCH_RAN)), ("creates", s("/etc/passwd"))],
        ),
    ]);
    let before = snapshot(root.path());
    let run = apply(&b, &root, &["--observe"]);
    assert_eq!(snapshot(root.path()), before);
    assert_eq!(
        run.changes("exec:guarded"),
        ["command: not run -> would run (guards not evaluated in observe mode)"]
    );
    assert_eq!(run.changes("exec:plain"), ["command: not run -> would run"]);
    assert_eq!(run.status("exec:done"), "ok");
}
