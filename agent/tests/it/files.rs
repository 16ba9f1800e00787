//! file, directory and symlink resources converging into a temporary root.

use std::path::Path;

use vigo_shared::bundle::Resource;

use crate::support::*;

/// Something present in the root before the run.
enum Pre {
    File(&'static str, &'static str, u32),
    Dir(&'static str),
    Link(&'static str, &'static str),
}

/// Prepares a root with `pre`, then: an observe run must leave it byte-identical and
/// report `observed` (or `expected` when `observed` is None); the real run must report
/// `expected` (`id=status` lines); a second run must change nothing. Returns the root.
fn check(pre: &[Pre], resources: Vec<Resource>, expected: &str, observed: Option<&str>) -> Temp {
    let root = root();
    for p in pre {
        match p {
            Pre::File(path, content, mode) => {
                root.write(path, content);
                std::fs::set_permissions(
                    root.at(path),
                    std::os::unix::fs::PermissionsExt::from_mode(*mode),
                )
                .expect("chmod");
            }
            Pre::Dir(path) => std::fs::create_dir_all(root.at(path)).expect("mkdir"),
            Pre::Link(path, target) => {
                std::fs::create_dir_all(root.at(path).parent().expect("parent")).expect("mkdir");
                std::os::unix::fs::symlink(target, root.at(path)).expect("symlink");
            }
        }
    }
    let b = bundle(resources);
    let expected: Vec<String> = expected.split_whitespace().map(str::to_string).collect();

    let before = snapshot(root.path());
    let obs = apply(&b, &root, &["--observe"]);
    assert_eq!(
        snapshot(root.path()),
        before,
        "observe mode changed the root\n{}",
        obs.debug()
    );
    let want_obs: Vec<String> = observed.map_or(expected.clone(), |o| {
        o.split_whitespace().map(str::to_string).collect()
    });
    assert_eq!(obs.statuses(), want_obs, "observe run\n{}", obs.debug());

    let first = apply(&b, &root, &[]);
    assert_eq!(first.statuses(), expected, "first run\n{}", first.debug());
    let failed = expected.iter().any(|e| e.ends_with("=failed"));
    let changed = expected.iter().any(|e| e.ends_with("=changed"));
    assert_eq!(
        first.code,
        if failed {
            1
        } else if changed {
            2
        } else {
            0
        },
        "{}",
        first.debug()
    );

    let again = apply(&b, &root, &[]);
    let settled: Vec<String> = expected
        .iter()
        .map(|e| e.replace("=changed", "=ok"))
        .collect();
    assert_eq!(again.statuses(), settled, "second run\n{}", again.debug());
    root
}

fn content(root: &Temp, path: &str) -> String {
    std::fs::read_to_string(root.at(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn files_are_created_with_content_mode_and_owner() {
    let r = check(
        &[],
        vec![res(
            "file",
            "/etc/motd",
            vec![
                ("content", s("hello\n")),
                ("mode", s("0640")),
                ("owner", s("alice")),
                ("group", s("staff")),
            ],
        )],
        "file:/etc/motd=changed",
        None,
    );
    assert_eq!(content(&r, "/etc/motd"), "hello\n");
    assert_eq!(stat(&r.at("/etc/motd")), (0o640, 1000, 50));
    // Nothing but the file itself was left in /etc (no temporary files).
    let names: Vec<_> = std::fs::read_dir(r.at("/etc"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn existing_files_are_corrected_and_diffed() {
    let root = root();
    root.write("/etc/app.conf", "a\nb\nc\n");
    std::fs::set_permissions(
        root.at("/etc/app.conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let b = bundle(vec![res(
        "file",
        "/etc/app.conf",
        vec![
            ("content", s("a\nB\nc\n")),
            ("mode", s("0644")),
            ("owner", s("1234")),
        ],
    )]);
    let run = apply(&b, &root, &[]);
    assert_eq!(
        run.changes("file:/etc/app.conf"),
        [
            "content: 6 bytes -> 6 bytes",
            "diff:  ->  a\n-b\n+B\n c",
            "mode: 0600 -> 0644",
            "owner: root -> 1234"
        ],
        "{}",
        run.debug()
    );
    assert_eq!(stat(&root.at("/etc/app.conf")), (0o644, 1234, 0));
    // Content left unmanaged keeps the file's bytes; only the mode is enforced.
    let b = bundle(vec![res(
        "file",
        "/etc/app.conf",
        vec![("mode", s("0600"))],
    )]);
    let run = apply(&b, &root, &[]);
    assert_eq!(run.changes("file:/etc/app.conf"), ["mode: 0644 -> 0600"]);
    assert_eq!(content(&root, "/etc/app.conf"), "a\nB\nc\n");
    assert_eq!(stat(&root.at("/etc/app.conf")), (0o600, 1234, 0));
}

#[test]
fn file_cases() {
    // Absent removes a file and is a no-op when nothing is there.
    let r = check(
        &[Pre::File("/etc/old", "x", 0o644)],
        vec![
            res("file", "/etc/old", vec![("state", s("absent"))]),
            res("file", "/etc/never", vec![("state", s("absent"))]),
        ],
        "file:/etc/old=changed file:/etc/never=ok",
        None,
    );
    assert!(!r.at("/etc/old").exists());

    // A directory is never replaced by a file, nor removed by a file resource.
    let r = check(
        &[Pre::Dir("/srv/data/sub")],
        vec![
            res("file", "/srv/data", vec![("content", s("x"))]),
            res(
                "file",
                "gone",
                vec![("path", s("/srv/data/sub")), ("state", s("absent"))],
            ),
        ],
        "file:/srv/data=failed file:gone=failed",
        None,
    );
    assert!(r.at("/srv/data/sub").is_dir());

    // A symlink in the way is replaced only with dangerous: true.
    let r = check(
        &[
            Pre::Link("/etc/a", "/etc/passwd"),
            Pre::Link("/etc/b", "/etc/passwd"),
        ],
        vec![
            res("file", "/etc/a", vec![("content", s("A"))]),
            res("file", "/etc/b", vec![("content", s("B"))]).dangerous(),
        ],
        "file:/etc/a=failed file:/etc/b=changed",
        None,
    );
    assert!(
        std::fs::symlink_metadata(r.at("/etc/a"))
            .expect("a")
            .file_type()
            .is_symlink()
    );
    assert_eq!(content(&r, "/etc/b"), "B");
    assert!(
        content(&r, "/etc/passwd").starts_with("root:"),
        "the link target was not written through"
    );

    // A missing parent fails clearly (observe cannot know: it reports would-change).
    let root = root();
    let run = apply(
        &bundle(vec![res("file", "/opt/x/y", vec![("content", s("1"))])]),
        &root,
        &[],
    );
    assert_eq!(run.status("file:/opt/x/y"), "failed");
    assert!(
        run.message("file:/opt/x/y")
            .contains("directory /opt/x does not exist"),
        "{}",
        run.debug()
    );

    // An owner the root does not know fails the resource (the host's accounts do not count).
    let run = apply(
        &bundle(vec![res(
            "file",
            "/etc/f",
            vec![("content", s("1")), ("owner", s("nobody-here"))],
        )]),
        &root,
        &[],
    );
    assert_eq!(run.status("file:/etc/f"), "failed");
    assert!(
        run.message("file:/etc/f")
            .contains("user \"nobody-here\" does not exist in"),
        "{}",
        run.debug()
    );
    assert!(!root.at("/etc/f").exists());
}

#[test]
fn directories_come_before_their_files_whatever_the_bundle_order() {
    let r = check(
        &[],
        vec![
            res(
                "file",
                "/opt/app/conf/app.ini",
                vec![("content", s("k=v\n"))],
            ),
            res(
                "directory",
                "/opt/app/conf",
                vec![("mode", s("0750")), ("group", s("staff"))],
            ),
            res("directory", "/opt/app", vec![]),
            res("directory", "/opt", vec![]),
        ],
        "directory:/opt=changed directory:/opt/app=changed directory:/opt/app/conf=changed file:/opt/app/conf/app.ini=changed",
        None,
    );
    assert_eq!(stat(&r.at("/opt/app/conf")), (0o750, 0, 50));
    assert_eq!(stat(&r.at("/opt/app")).0, 0o755);
    assert_eq!(content(&r, "/opt/app/conf/app.ini"), "k=v\n");
}

#[test]
fn directory_cases() {
    // Removal: an empty directory goes; a full one only when dangerous.
    let r = check(
        &[
            Pre::Dir("/srv/empty"),
            Pre::File("/srv/full/f", "x", 0o644),
            Pre::File("/srv/gone/f", "x", 0o644),
            Pre::File("/srv/file", "", 0o644),
        ],
        vec![
            res("directory", "/srv/empty", vec![("state", s("absent"))]),
            res("directory", "/srv/full", vec![("state", s("absent"))]),
            res("directory", "/srv/gone", vec![("state", s("absent"))]).dangerous(),
            res("directory", "/srv/file", vec![]),
        ],
        "directory:/srv/empty=changed directory:/srv/full=failed directory:/srv/gone=changed directory:/srv/file=failed",
        None,
    );
    assert!(!r.at("/srv/empty").exists());
    assert!(r.at("/srv/full/f").exists());
    assert!(!r.at("/srv/gone").exists());
    assert!(r.at("/srv/file").is_file());

    // A missing parent without a directory resource fails with a hint.
    let root = root();
    let run = apply(&bundle(vec![res("directory", "/a/b", vec![])]), &root, &[]);
    assert!(
        run.message("directory:/a/b")
            .contains("add a directory resource"),
        "{}",
        run.debug()
    );
}

#[test]
fn symlink_cases() {
    let r = check(
        &[
            Pre::Link("/etc/wrong", "/nowhere"),
            Pre::File("/etc/file", "keep", 0o644),
            Pre::File("/etc/replace", "old", 0o644),
            Pre::Link("/etc/old-link", "/x"),
            Pre::File("/etc/not-a-link", "data", 0o644),
        ],
        vec![
            res("symlink", "/etc/new", vec![("target", s("/etc/passwd"))]),
            res("symlink", "/etc/wrong", vec![("target", s("motd"))]),
            res("symlink", "/etc/file", vec![("target", s("/etc/passwd"))]),
            res(
                "symlink",
                "/etc/replace",
                vec![("target", s("/etc/passwd"))],
            )
            .dangerous(),
            res(
                "symlink",
                "/etc/old-link",
                vec![("target", s("/x")), ("state", s("absent"))],
            ),
            res(
                "symlink",
                "/etc/not-a-link",
                vec![("target", s("/x")), ("state", s("absent"))],
            ),
            res(
                "symlink",
                "/etc/owned",
                vec![("target", s("/etc/group")), ("owner", s("bob"))],
            ),
        ],
        "symlink:/etc/new=changed symlink:/etc/wrong=changed symlink:/etc/file=failed symlink:/etc/replace=changed \
         symlink:/etc/old-link=changed symlink:/etc/not-a-link=failed symlink:/etc/owned=changed",
        None,
    );
    let link = |p: &str| {
        std::fs::read_link(r.at(p))
            .ok()
            .map(|t| t.display().to_string())
    };
    assert_eq!(link("/etc/new").as_deref(), Some("/etc/passwd"));
    assert_eq!(link("/etc/wrong").as_deref(), Some("motd"));
    assert_eq!(link("/etc/file"), None);
    assert_eq!(content(&r, "/etc/file"), "keep");
    assert_eq!(link("/etc/replace").as_deref(), Some("/etc/passwd"));
    assert!(
        !r.at("/etc/old-link").exists()
            && std::fs::symlink_metadata(r.at("/etc/old-link")).is_err()
    );
    assert_eq!(content(&r, "/etc/not-a-link"), "data");
    assert_eq!(stat(&r.at("/etc/owned")).1, 1001);
}

#[test]
fn secret_content_never_reaches_the_report() {
    let root = root();
    let b = bundle(vec![res(
        "file",
        "/etc/token",
        vec![("content", secret("s3cr3t-value\n")), ("mode", s("0600"))],
    )]);
    for extra in [&["--observe"][..], &[][..], &["--observe"][..]] {
        let run = apply(&b, &root, extra);
        assert!(
            !run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"),
            "{}",
            run.debug()
        );
    }
    assert_eq!(content(&root, "/etc/token"), "s3cr3t-value\n");
    root.write("/etc/token", "tampered\n");
    let run = apply(&b, &root, &[]);
    assert_eq!(
        run.changes("file:/etc/token"),
        ["content: <redacted> -> <redacted>"],
        "{}",
        run.debug()
    );
    // The human report too.
    root.write("/etc/token", "tampered\n");
    let f = write_bundle(&b);
    let out = agent(&[
        "apply",
        "--bundle",
        &f.bundle.display().to_string(),
        "--trust",
        &f.trust.display().to_string(),
        "--root",
        &root.path().display().to_string(),
        "--node",
        NODE,
        "--family",
        "debian",
    ]);
    assert!(
        out.stdout.contains("content: <redacted> → <redacted>") && !out.stdout.contains("s3cr3t"),
        "{}",
        out.debug()
    );
}

#[test]
fn bad_paths_skip_only_their_resource() {
    let r = check(
        &[],
        vec![
            res("file", "relative/path", vec![("content", s("x"))]),
            res(
                "file",
                "dots",
                vec![("path", s("/etc/../../escape")), ("content", s("x"))],
            ),
            res("file", "/etc/fine", vec![("content", s("x"))]),
        ],
        "file:relative/path=skipped file:dots=skipped file:/etc/fine=changed",
        None,
    );
    assert!(!Path::new(&r.path().parent().expect("parent").join("escape")).exists());
}
