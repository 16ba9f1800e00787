//! The group provider for real, into a temporary root seeded like a minimal Debian:
//! groups with gid and members converge, a second run changes nothing, observe changes no
//! byte, and the results are read back from the root's group and gshadow.

use vigo_shared::bundle::ResourceKind;

use super::GroupProvider;
use crate::providers::testing::{b, i, l, resource, s, snapshot};
use crate::providers::user::UserProvider;
use crate::providers::user::root_tests::{GROUP, host_ctx, seed_debian};
use crate::providers::{Change, Provider};

fn entry(root: &std::path::Path, file: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(file))
        .unwrap()
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
}

#[test]
fn groups_with_gid_and_members_converge() {
    let dir = seed_debian();
    let root = dir.path();
    let ctx = host_ctx(root, false);
    for u in ["alice", "bob"] {
        UserProvider
            .converge(
                &resource(ResourceKind::User, u, &[("manage_home", b(false))]),
                &ctx,
            )
            .unwrap();
    }
    let ops = resource(
        ResourceKind::Group,
        "ops",
        &[("gid", i(1500)), ("members", l(&["alice", "bob", "dave"]))],
    );

    let before = snapshot(root);
    assert_eq!(
        GroupProvider.converge(&ops, &host_ctx(root, true)).unwrap(),
        [Change::new("state", "absent", "present")]
    );
    assert_eq!(snapshot(root), before, "observe changes nothing");

    assert_eq!(
        GroupProvider.converge(&ops, &ctx).unwrap(),
        [Change::new("state", "absent", "present")]
    );
    assert_eq!(
        entry(root, "etc/group", "ops").unwrap(),
        "ops:x:1500:alice,bob"
    );
    assert_eq!(
        entry(root, "etc/gshadow", "ops").unwrap(),
        "ops:!::alice,bob"
    );
    assert_eq!(
        GroupProvider.converge(&ops, &ctx).unwrap(),
        [],
        "dave is not a user: nothing to do yet"
    );

    // dave appears: the next run adds him.
    UserProvider
        .converge(
            &resource(ResourceKind::User, "dave", &[("manage_home", b(false))]),
            &ctx,
        )
        .unwrap();
    assert_eq!(
        GroupProvider.converge(&ops, &ctx).unwrap(),
        [Change::new("members", "alice, bob", "alice, bob, dave")]
    );
    assert_eq!(
        entry(root, "etc/group", "ops").unwrap(),
        "ops:x:1500:alice,bob,dave"
    );

    // Modify gid and members.
    let ops2 = resource(
        ResourceKind::Group,
        "ops",
        &[("gid", i(1600)), ("members", l(&["dave"]))],
    );
    assert_eq!(
        GroupProvider.converge(&ops2, &ctx).unwrap(),
        [
            Change::new("gid", "1500", "1600"),
            Change::new("members", "alice, bob, dave", "dave"),
        ]
    );
    assert_eq!(entry(root, "etc/group", "ops").unwrap(), "ops:x:1600:dave");
    assert_eq!(entry(root, "etc/gshadow", "ops").unwrap(), "ops:!::dave");
    assert_eq!(GroupProvider.converge(&ops2, &ctx).unwrap(), []);

    // A system group without gid gets the highest free system gid.
    let sys = resource(ResourceKind::Group, "svc", &[("system", b(true))]);
    GroupProvider.converge(&sys, &ctx).unwrap();
    assert_eq!(entry(root, "etc/group", "svc").unwrap(), "svc:x:999:");
    // A regular one gets one above the highest gid in use in the range (ops has 1600), as
    // groupadd picks it.
    GroupProvider
        .converge(&resource(ResourceKind::Group, "web", &[]), &ctx)
        .unwrap();
    assert_eq!(entry(root, "etc/group", "web").unwrap(), "web:x:1601:");

    // Removing: a group that is someone's primary group is refused; others go.
    let err = GroupProvider
        .converge(
            &resource(ResourceKind::Group, "alice", &[("state", s("absent"))]),
            &ctx,
        )
        .unwrap_err();
    assert!(err.0.contains("primary group of user `alice`"), "{err}");
    for g in ["ops", "svc", "web"] {
        let absent = resource(ResourceKind::Group, g, &[("state", s("absent"))]);
        assert_eq!(
            GroupProvider.converge(&absent, &ctx).unwrap(),
            [Change::new("state", "present", "absent")]
        );
        assert_eq!(GroupProvider.converge(&absent, &ctx).unwrap(), []);
        assert!(entry(root, "etc/group", g).is_none() && entry(root, "etc/gshadow", g).is_none());
    }
    assert!(
        std::fs::read_to_string(root.join("etc/group"))
            .unwrap()
            .starts_with(GROUP)
    );
}
