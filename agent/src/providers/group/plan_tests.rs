//! Command plans of the group provider for every family: (family, current group, desired
//! attributes) → the exact argv lines.

use vigo_shared::bundle::{AttrValue, ResourceKind};

use super::{Spec, converge};
use crate::family::Family;
use crate::providers::Change;
use crate::providers::testing::{Attrs, ScriptedRunner, TempDir, b, ctx, i, l, resource, s};
use crate::providers::user::Tool;

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n\
                      bob:x:1002:1002::/home/bob:/bin/sh\ncarol:x:1003:1003::/home/carol:/bin/sh\n";
const WHEEL: &str = "wheel:x:0:root,alice\n";
const OPS: &str = "ops:x:1500:alice,bob\n";

fn ops(attrs: &[(&'static str, AttrValue)]) -> Vec<(&'static str, AttrValue)> {
    attrs.to_vec()
}

/// Runs a plan with the family's native tool against a fixture root; returns the argv
/// lines, the changes and the root.
fn plan(
    family: Family,
    existing: bool,
    attrs: &[(&'static str, AttrValue)],
    observe: bool,
    runner: ScriptedRunner,
) -> (Vec<String>, Vec<Change>, TempDir) {
    let dir = TempDir::new("group-plan");
    dir.write("etc/passwd", PASSWD);
    dir.write(
        "etc/group",
        &format!("{WHEEL}{}", if existing { OPS } else { "" }),
    );
    let res = resource(ResourceKind::Group, "ops", attrs);
    let c = ctx(dir.path(), family, observe, &runner);
    let changes = converge(
        &Spec::parse(&res, family).unwrap(),
        Tool::native(family),
        &c,
    )
    .unwrap_or_else(|e| panic!("{family} {attrs:?}: {e}"));
    (runner.lines(), changes, dir)
}

fn check(
    family: Family,
    existing: bool,
    attrs: &[(&'static str, AttrValue)],
    observe: bool,
    expect: &[&str],
) {
    let (lines, _, _) = plan(family, existing, attrs, observe, ScriptedRunner::new());
    assert_eq!(
        lines, expect,
        "{family} existing={existing} observe={observe} {attrs:?}"
    );
}

fn create() -> Vec<(&'static str, AttrValue)> {
    ops(&[("gid", i(1500)), ("members", l(&["alice", "bob"]))])
}

fn modify() -> Vec<(&'static str, AttrValue)> {
    ops(&[("gid", i(1600)), ("members", l(&["bob", "carol"]))])
}

#[test]
fn linux_plans() {
    for f in [
        Family::Debian,
        Family::Rhel,
        Family::Suse,
        Family::Arch,
        Family::Alpine,
    ] {
        check(
            f,
            false,
            &create(),
            false,
            &["groupadd -g 1500 ops", "gpasswd -M alice,bob ops"],
        );
        check(
            f,
            false,
            &[("system", b(true))],
            false,
            &["groupadd -r ops"],
        );
        check(
            f,
            true,
            &modify(),
            false,
            &["groupmod -g 1600 ops", "gpasswd -M bob,carol ops"],
        );
        check(f, true, &create(), false, &[]);
        check(f, true, &[("members", l(&["bob", "alice"]))], false, &[]);
        check(f, true, &[("members", l(&[]))], false, &["gpasswd -M  ops"]);
        // dave is not a user yet: left for a later run, not a failure.
        check(
            f,
            true,
            &[("members", l(&["alice", "bob", "dave"]))],
            false,
            &[],
        );
        check(f, true, &[("state", s("absent"))], false, &["groupdel ops"]);
        check(f, false, &[("state", s("absent"))], false, &[]);
        check(f, true, &modify(), true, &[]);
        check(f, false, &create(), true, &[]);
    }
}

#[test]
fn bsd_and_illumos_plans() {
    check(
        Family::FreeBsd,
        false,
        &create(),
        false,
        &["pw groupadd ops -g 1500 -M alice,bob"],
    );
    check(
        Family::FreeBsd,
        false,
        &[("system", b(true))],
        false,
        &["pw groupadd ops -g 999"],
    );
    check(
        Family::FreeBsd,
        true,
        &modify(),
        false,
        &["pw groupmod ops -g 1600 -M bob,carol"],
    );
    check(
        Family::FreeBsd,
        true,
        &[("state", s("absent"))],
        false,
        &["pw groupdel ops"],
    );
    check(Family::FreeBsd, true, &modify(), true, &[]);

    check(
        Family::OpenBsd,
        false,
        &create(),
        false,
        &[
            "groupadd -g 1500 ops",
            "usermod -G ops alice",
            "usermod -G ops bob",
        ],
    );
    // alice leaves ops but stays in wheel: -S sets her exact list.
    check(
        Family::OpenBsd,
        true,
        &modify(),
        false,
        &[
            "groupmod -g 1600 ops",
            "usermod -G ops carol",
            "usermod -S wheel alice",
        ],
    );
    check(
        Family::OpenBsd,
        false,
        &[("system", b(true))],
        false,
        &["groupadd -g 999 ops"],
    );
    check(
        Family::OpenBsd,
        true,
        &[("state", s("absent"))],
        false,
        &["groupdel ops"],
    );

    check(
        Family::Illumos,
        false,
        &create(),
        false,
        &[
            "groupadd -g 1500 ops",
            "usermod -G wheel,ops alice",
            "usermod -G ops bob",
        ],
    );
    check(
        Family::Illumos,
        true,
        &modify(),
        false,
        &[
            "groupmod -g 1600 ops",
            "usermod -G ops carol",
            "usermod -G wheel alice",
        ],
    );
    check(
        Family::Illumos,
        true,
        &[("state", s("absent"))],
        false,
        &["groupdel ops"],
    );

    // NetBSD: gid with groupmod, members by editing /etc/group.
    let (lines, changes, dir) = plan(
        Family::NetBsd,
        true,
        &modify(),
        false,
        ScriptedRunner::new(),
    );
    assert_eq!(lines, ["groupmod -g 1600 ops"]);
    assert_eq!(
        changes,
        [
            Change::new("gid", "1500", "1600"),
            Change::new("members", "alice, bob", "bob, carol")
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/group")).unwrap(),
        format!("{WHEEL}ops:x:1500:bob,carol\n")
    );
    let (lines, _, dir) = plan(
        Family::NetBsd,
        false,
        &create(),
        false,
        ScriptedRunner::new(),
    );
    assert_eq!(lines, ["groupadd -g 1500 ops"]);
    // The fake groupadd did not add the line, so there is nothing to edit yet: the re-check
    // of a real run would add the members.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/group")).unwrap(),
        WHEEL
    );
}

#[test]
fn macos_plans() {
    let lists = |r: ScriptedRunner, with_ops: bool| {
        let gids = if with_ops {
            "staff 20\nops 1500\n"
        } else {
            "staff 20\n"
        };
        let members = if with_ops { "ops alice bob\n" } else { "" };
        r.ok("dscl . -list /Groups PrimaryGroupID", gids)
            .ok("dscl . -list /Groups GroupMembership", members)
    };
    let reads = [
        "dscl . -list /Groups PrimaryGroupID",
        "dscl . -list /Groups GroupMembership",
    ];
    let (lines, _, _) = plan(
        Family::MacOs,
        false,
        &create(),
        false,
        lists(ScriptedRunner::new(), false),
    );
    assert_eq!(
        lines[2..],
        [
            "dscl . -create /Groups/ops",
            "dscl . -create /Groups/ops PrimaryGroupID 1500",
            "dseditgroup -o edit -a alice -t user ops",
            "dseditgroup -o edit -a bob -t user ops",
        ]
    );
    assert_eq!(lines[..2], reads);
    let (lines, _, _) = plan(
        Family::MacOs,
        false,
        &[],
        false,
        lists(ScriptedRunner::new(), false),
    );
    assert_eq!(
        lines[2..],
        [
            "dscl . -create /Groups/ops",
            "dscl . -create /Groups/ops PrimaryGroupID 501"
        ]
    );
    let (lines, _, _) = plan(
        Family::MacOs,
        true,
        &modify(),
        false,
        lists(ScriptedRunner::new(), true),
    );
    assert_eq!(
        lines[2..],
        [
            "dscl . -create /Groups/ops PrimaryGroupID 1600",
            "dseditgroup -o edit -a carol -t user ops",
            "dseditgroup -o edit -d alice -t user ops",
        ]
    );
    let (lines, _, _) = plan(
        Family::MacOs,
        true,
        &modify(),
        true,
        lists(ScriptedRunner::new(), true),
    );
    assert_eq!(lines, reads);
    let (lines, _, _) = plan(
        Family::MacOs,
        true,
        &[("state", s("absent"))],
        false,
        lists(ScriptedRunner::new(), true),
    );
    assert_eq!(lines[2..], ["dscl . -delete /Groups/ops"]);
}

#[test]
fn windows_plans() {
    let read = crate::providers::user::windows::powershell(&super::read_script("ops")).argv_line();
    let members = vec![("members", l(&["alice", "bob"]))];
    let cases: Vec<(&str, Attrs, bool, Vec<&str>)> = vec![
        (
            "absent\r\n",
            members.clone(),
            false,
            vec![
                "net localgroup ops /add",
                "net localgroup ops alice /add",
                "net localgroup ops bob /add",
            ],
        ),
        (
            "present\r\nmember=Alice\r\nmember=carol\r\n",
            members.clone(),
            false,
            vec![
                "net localgroup ops bob /add",
                "net localgroup ops carol /delete",
            ],
        ),
        (
            "present\r\nmember=Alice\r\nmember=BOB\r\n",
            members.clone(),
            false,
            vec![],
        ),
        ("present\r\nmember=carol\r\n", members.clone(), true, vec![]),
        (
            "present\r\n",
            vec![("state", s("absent"))],
            false,
            vec!["net localgroup ops /delete"],
        ),
    ];
    for (current, attrs, observe, expect) in cases {
        let (lines, _, _) = plan(
            Family::Windows,
            false,
            &attrs,
            observe,
            ScriptedRunner::new().ok(&read, current),
        );
        assert_eq!(lines[0], read);
        assert_eq!(lines[1..], expect, "{current:?}");
    }
    let err = Spec::parse(
        &resource(ResourceKind::Group, "ops", &[("gid", i(5))]),
        Family::Windows,
    )
    .unwrap_err();
    assert!(err.0.contains("gid is not supported on windows"), "{err}");
}

#[test]
fn freebsd_roots_use_pw_r() {
    use crate::providers::Provider;
    let dir = TempDir::new("group-pw-root");
    dir.write("etc/passwd", PASSWD);
    dir.write("etc/group", WHEEL);
    let runner = ScriptedRunner::new();
    let c = ctx(dir.path(), Family::FreeBsd, false, &runner);
    let res = resource(ResourceKind::Group, "ops", &create());
    super::GroupProvider.converge(&res, &c).unwrap();
    let root = dir.path().display().to_string();
    assert_eq!(
        runner.lines(),
        [format!("pw -R {root} groupadd ops -g 1500 -M alice,bob")]
    );
}
