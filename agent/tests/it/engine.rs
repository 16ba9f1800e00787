//! Engine behaviour through the binary: dependency failures, skips, cycles, conditions,
//! notifications, exit codes and the human report.

use vigo_shared::bundle::Resource;

use crate::support::*;

/// Applies `resources` to a fresh root and compares every resource's `id=status`, in
/// report order, and the exit code. Returns the run and the root.
fn check(resources: Vec<Resource>, expected: &str, code: i32) -> (Run, Temp) {
    let root = root();
    let run = apply(&bundle(resources), &root, &[]);
    let want: Vec<&str> = expected.split_whitespace().collect();
    assert_eq!(run.statuses(), want, "{}", run.debug());
    assert_eq!(run.code, code, "{}", run.debug());
    (run, root)
}

fn fails() -> Resource {
    res(
        "exec",
        "fail",
        vec![("command", s("echo broken >&2; exit 4"))],
    )
}

#[test]
fn a_failure_skips_dependents_transitively_and_nothing_else() {
    let (run, root) = check(
        vec![
            fails(),
            res("file", "/etc/needs-fail", vec![("content", s("x"))]).depends(&["exec:fail"]),
            res("file", "/etc/needs-needs", vec![("content", s("x"))])
                .depends(&["file:/etc/needs-fail"]),
            res("file", "/etc/independent", vec![("content", s("x"))]),
        ],
        "exec:fail=failed file:/etc/needs-fail=skipped file:/etc/needs-needs=skipped file:/etc/independent=changed",
        1,
    );
    assert!(
        run.message("exec:fail")
            .contains("exited with status 4; output:\nbroken"),
        "{}",
        run.debug()
    );
    assert_eq!(
        run.message("file:/etc/needs-fail"),
        "dependency exec:fail failed"
    );
    assert_eq!(
        run.message("file:/etc/needs-needs"),
        "dependency file:/etc/needs-fail was skipped"
    );
    assert!(!root.at("/etc/needs-fail").exists() && root.at("/etc/independent").exists());
    assert_eq!(run.summary(), [0, 1, 1, 2]);
}

#[test]
fn bad_resources_are_skipped_alone() {
    let ok = |n: &str| res("file", n, vec![("content", s("x"))]);
    let (run, _root) = check(
        vec![
            ok("/etc/bad-when").when("has_command("),
            ok("/etc/unknown-attr").when("true"),
            res(
                "file",
                "/etc/unknown",
                vec![("content", s("x")), ("colour", s("red"))],
            ),
            res("file", "/etc/server-only", vec![("source", s("files/x"))]),
            res("file", "/etc/wrong-type", vec![("content", int(3))]),
            res("file", "/etc/bad-state", vec![("state", s("running"))]),
            ok("/etc/compiler-skip")
                .skip("template error: unknown variable x at modules/a.yaml:3:9"),
            ok("/etc/false").when("file_exists('/nonexistent')"),
            ok("/etc/after-false").depends(&["file:/etc/false"]),
            ok("/etc/after-bad").depends(&["file:/etc/bad-when"]),
            ok("/etc/fine"),
        ],
        "file:/etc/bad-when=skipped file:/etc/unknown-attr=changed file:/etc/unknown=skipped file:/etc/server-only=skipped \
         file:/etc/wrong-type=skipped file:/etc/bad-state=skipped file:/etc/compiler-skip=skipped file:/etc/false=skipped \
         file:/etc/after-false=changed file:/etc/after-bad=skipped file:/etc/fine=changed",
        2,
    );
    let expect = [
        (
            "file:/etc/bad-when",
            "condition \"has_command(\" does not parse",
        ),
        (
            "file:/etc/unknown",
            "unknown attribute `colour` for a file resource",
        ),
        (
            "file:/etc/server-only",
            "attribute `source` is read by the server only",
        ),
        (
            "file:/etc/wrong-type",
            "attribute `content` must be a string",
        ),
        (
            "file:/etc/bad-state",
            "state \"running\" is not valid for a file",
        ),
        (
            "file:/etc/compiler-skip",
            "skipped by the server: template error: unknown variable x",
        ),
        (
            "file:/etc/false",
            "condition false: file_exists('/nonexistent')",
        ),
        (
            "file:/etc/after-bad",
            "dependency file:/etc/bad-when was skipped",
        ),
    ];
    for (id, msg) in expect {
        assert!(
            run.message(id).starts_with(msg),
            "{id}: {:?} should start with {msg:?}",
            run.message(id)
        );
    }
}

#[test]
fn conditions_see_the_root_the_path_and_facts() {
    let root = root();
    root.write("/etc/marker", "");
    let ok = |n: &str, when: &str| res("file", n, vec![("content", s("x"))]).when(when);
    let b = bundle(vec![
        ok("/etc/a", "file_exists('/etc/marker')"),
        ok(
            "/etc/b",
            "has_command('sh') && !has_command('vigo-no-such-command')",
        ),
        ok("/etc/c", "facts.cpus >= 1"),
        ok("/etc/d", "facts.no_such_fact == 'x'"),
        ok("/etc/e", "hour_range(0, 24) || !hour_range(0, 24)"),
    ]);
    let run = apply(&b, &root, &[]);
    assert_eq!(
        run.statuses(),
        [
            "file:/etc/a=changed",
            "file:/etc/b=changed",
            "file:/etc/c=changed",
            "file:/etc/d=skipped",
            "file:/etc/e=changed"
        ],
        "{}",
        run.debug()
    );
    assert!(
        run.message("file:/etc/d")
            .contains("could not be evaluated"),
        "{}",
        run.debug()
    );
}

#[test]
fn cycles_fail_their_members_and_the_rest_converges() {
    let (run, _root) = check(
        vec![
            res("exec", "a", vec![("command", s("true"))]).depends(&["exec:b"]),
            res("exec", "b", vec![("command", s("true"))]).depends(&["exec:a"]),
            res("exec", "c", vec![("command", s("true"))]).depends(&["exec:a"]),
            res("file", "/etc/free", vec![("content", s("x"))]),
            res("file", "/etc/lost", vec![("content", s("x"))]).depends(&["exec:nope"]),
        ],
        "file:/etc/free=changed file:/etc/lost=skipped exec:a=failed exec:b=failed exec:c=skipped",
        1,
    );
    assert!(
        run.message("exec:a")
            .starts_with("dependency cycle between exec:a, exec:b"),
        "{}",
        run.debug()
    );
    assert_eq!(
        run.message("file:/etc/lost"),
        "depends on exec:nope, which is not in this bundle"
    );
}

#[test]
fn notify_refreshes_once_after_a_change_and_not_when_nothing_changed() {
    let root = root();
    let log = |name: &str| {
        res(
            "exec",
            name,
            vec![
                ("command", s(&format!("echo {name} >> \"$VIGO_ROOT/log\""))),
                ("refreshonly", boolean(true)),
            ],
        )
    };
    let b = bundle(vec![
        // Notified before it comes in the order: refreshed at the end.
        log("early"),
        res("file", "/etc/a.conf", vec![("content", s("1"))]).notify(&["exec:early", "exec:late"]),
        res("file", "/etc/b.conf", vec![("content", s("2"))]).notify(&["exec:late"]),
        log("late"),
        log("never"),
    ]);
    let run = apply(&b, &root, &[]);
    assert_eq!(
        std::fs::read_to_string(root.at("/log")).expect("log"),
        "late\nearly\n",
        "{}",
        run.debug()
    );
    assert_eq!(
        (
            run.refresh("exec:early"),
            run.refresh("exec:late"),
            run.refresh("exec:never")
        ),
        ("refreshed".into(), "refreshed".into(), String::new())
    );
    assert_eq!(run.status("exec:late"), "ok");

    let again = apply(&b, &root, &[]);
    assert_eq!(again.code, 0, "{}", again.debug());
    assert_eq!(
        std::fs::read_to_string(root.at("/log")).expect("log"),
        "late\nearly\n"
    );

    root.write("/etc/b.conf", "changed by hand");
    let obs = apply(&b, &root, &["--observe"]);
    assert_eq!(obs.refresh("exec:late"), "would refresh", "{}", obs.debug());
    assert_eq!(
        std::fs::read_to_string(root.at("/log")).expect("log"),
        "late\nearly\n"
    );
}

#[test]
fn a_failed_refresh_fails_the_notified_resource() {
    let root = root();
    let b = bundle(vec![
        res("file", "/etc/a.conf", vec![("content", s("1"))]).notify(&["exec:reload"]),
        res(
            "exec",
            "reload",
            vec![("command", s("exit 9")), ("refreshonly", boolean(true))],
        ),
    ]);
    let run = apply(&b, &root, &[]);
    assert_eq!(run.status("exec:reload"), "failed", "{}", run.debug());
    assert!(
        run.message("exec:reload")
            .starts_with("refresh failed: command exited with status 9"),
        "{}",
        run.debug()
    );
    assert_eq!(run.code, 1);
}

#[test]
fn human_report_and_exit_codes() {
    let root = root();
    let b = bundle(vec![res("file", "/etc/motd", vec![("content", s("hi\n"))])]);
    let f = write_bundle(&b);
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["apply", "--bundle"].map(String::from).to_vec();
        a.push(f.bundle.display().to_string());
        a.extend([
            "--trust".to_string(),
            f.trust.display().to_string(),
            "--root".into(),
            root.path().display().to_string(),
        ]);
        a.extend(["--node", NODE, "--family", "debian"].map(String::from));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let obs = agent(&args(&["--observe"]));
    assert_eq!(obs.code, 2, "{}", obs.debug());
    assert!(
        obs.stdout
            .ends_with("1 resource: 0 ok, 1 changed, 0 failed, 0 skipped (observe)\n"),
        "{}",
        obs.debug()
    );
    let first = agent(&args(&[]));
    assert_eq!(first.code, 2);
    assert!(
        first.stdout.contains(
            "changed  file:/etc/motd  (modules/test.yaml:9:5)\n    state: absent → present\n"
        ),
        "{}",
        first.debug()
    );
    let second = agent(&args(&[]));
    assert_eq!(
        (second.code, second.stdout.as_str()),
        (
            0,
            "ok       file:/etc/motd\n1 resource: 1 ok, 0 changed, 0 failed, 0 skipped\n"
        )
    );
}

#[test]
fn bundle_observe_flag_is_honoured() {
    let root = root();
    let mut b = bundle(vec![res("file", "/etc/motd", vec![("content", s("hi\n"))])]);
    b.observe = true;
    let run = apply(&b, &root, &[]);
    assert_eq!(
        (run.code, run.status("file:/etc/motd")),
        (2, "changed".to_string())
    );
    assert!(!root.at("/etc/motd").exists());
}
