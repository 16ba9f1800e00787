//! Bundles that must be refused with exit code 3, leaving the root untouched.

use crate::support::*;

/// Applies `bytes` (plus `extra` flags) and expects a refusal whose message contains
/// `msg`, with the root unchanged.
fn check(bytes: &[u8], extra: &[&str], msg: &str) {
    let root = root();
    let before = snapshot(root.path());
    let f = write_bytes(bytes);
    let run = apply_files(&f, &root, extra);
    assert_eq!(run.code, 3, "{}", run.debug());
    assert!(
        run.stderr.contains(msg),
        "expected {msg:?} in\n{}",
        run.debug()
    );
    assert!(run.stdout.is_empty(), "{}", run.debug());
    assert_eq!(snapshot(root.path()), before);
}

fn good() -> Vec<u8> {
    let b = bundle(vec![res("file", "/etc/motd", vec![("content", s("hi"))])]);
    key().sign_bundle(&b)
}

#[test]
fn refused_bundles() {
    let good = good();
    check(
        &good[..good.len() - 3],
        &[],
        "bundle signature does not match its contents",
    );
    check(
        &good[..50],
        &[],
        "not a signed vigo bundle (truncated or wrong file); nothing was applied",
    );
    check(b"", &[], "not a signed vigo bundle");
    check(b"name: motd\ntype: file\n", &[], "not a signed vigo bundle");
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    check(&flipped, &[], "tampered or corrupted");
    let other = vigo_shared::sign::SigningKey::from_seed([7; 32]);
    let b = bundle(vec![res("file", "/etc/motd", vec![("content", s("hi"))])]);
    check(
        &other.sign_bundle(&b),
        &[],
        "which this agent does not trust",
    );
    let mut elsewhere = b.clone();
    elsewhere.node = "db01.prod".to_string();
    check(
        &key().sign_bundle(&elsewhere),
        &[],
        "refusing bundle for node \"db01.prod\"",
    );
}

#[test]
fn usage_errors() {
    let check_args = |args: &[&str], msg: &str| {
        let run = agent(args);
        assert_eq!(run.code, 3, "{args:?}\n{}", run.debug());
        assert!(
            run.stderr.contains(msg),
            "{args:?}: expected {msg:?}\n{}",
            run.debug()
        );
    };
    check_args(&["apply"], "apply needs --bundle FILE");
    check_args(
        &[
            "apply",
            "--bundle",
            "/nonexistent/b",
            "--trust",
            "/nonexistent/k",
        ],
        "cannot read trusted keys from /nonexistent/k",
    );
    check_args(&["frobnicate"], "unknown command \"frobnicate\"");
    check_args(&["facts", "--bogus"], "unexpected arguments: --bogus");
    check_args(
        &["apply", "--bundle", "/x", "--root", "/nonexistent-root"],
        "--root /nonexistent-root is not a directory",
    );
    let f = write_bytes(&good());
    std::fs::write(&f.trust, "ed25519:nothex\n").expect("writable");
    let t = Temp::new("usage");
    check_args(
        &[
            "apply",
            "--bundle",
            &f.bundle.display().to_string(),
            "--trust",
            &f.trust.display().to_string(),
            "--root",
            &t.path().display().to_string(),
        ],
        "trusted.pub:1: key must be 64 hexadecimal digits",
    );
    let help = agent(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("EXIT CODES:") && help.stdout.contains("3   refused"),
        "{}",
        help.debug()
    );
}
