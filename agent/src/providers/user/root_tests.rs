//! The user provider for real, on this Linux host, into a temporary root seeded like a
//! minimal Debian: the PRODUCT.md alice converges, a second run changes nothing, modify and
//! remove work, observe changes no byte; results are checked by reading the root's files
//! and with the real tools (`visudo -cf`, `ssh-keygen -lf`, `pwck`/`grpck -R`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use vigo_shared::bundle::{AttrValue, ResourceKind};

use super::UserProvider;
use super::plan_tests::HASH;
use crate::family::Family;
use crate::providers::testing::{HostRunner, TempDir, b, l, resource, s, secret, snapshot};
use crate::providers::{Change, Ctx, Provider};

pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDX1KU3FlSiU0oTux8lGhc2E7OWzMfu5To0mO6eGrZCT alice@laptop\n";
const KEY2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC4aZhaZX2h6uETbHNbtZ5F9ntzx4jNBJGS7UcjO81b6vy84VmKbkIdorYeY8elh/abyfpG5nuQWFZQi4ezUdcDwD+8njPj7QZ1QxDaAQb4ZqzDoGYjRdmJPl3z1ki+sInwwykqNcdtiAFu/CKHkzq39cUw25mIy9REErQpxGswMQ== bob\n";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
pub const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
shadow:x:42:
sudo:x:27:
users:x:100:
nogroup:x:65534:
";

/// A temporary root with the account files of a minimal Debian, with Debian's modes.
pub fn seed_debian() -> TempDir {
    let dir = TempDir::new("root");
    let shadow: String = PASSWD
        .lines()
        .map(|l| format!("{}:*:19000:0:99999:7:::\n", l.split(':').next().unwrap()))
        .collect();
    let gshadow: String = GROUP
        .lines()
        .map(|l| format!("{}:*::\n", l.split(':').next().unwrap()))
        .collect();
    dir.write("etc/passwd", PASSWD);
    dir.write("etc/group", GROUP);
    dir.write("etc/shadow", &shadow);
    dir.write("etc/gshadow", &gshadow);
    dir.write(
        "etc/login.defs",
        "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\n",
    );
    dir.write("etc/default/useradd", "SHELL=/bin/sh\n");
    dir.write("etc/skel/.profile", "# ~/.profile\n");
    dir.write("etc/skel/.bashrc", "# ~/.bashrc\n");
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    for f in ["shadow", "gshadow"] {
        let p = dir.path().join("etc").join(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&p, Some(0), Some(42)).unwrap();
    }
    dir
}

pub fn host_ctx(root: &Path, observe: bool) -> Ctx<'_> {
    Ctx {
        root,
        facts: crate::providers::testing::no_facts(),
        family: Family::Debian,
        observe,
        runner: &HostRunner,
    }
}

fn alice(extra: &[(&'static str, AttrValue)]) -> vigo_shared::bundle::Resource {
    let mut attrs = vec![
        ("username", s("alice")),
        ("comment", s("Alice Nguyen")),
        ("shell", s("/bin/bash")),
        ("groups", l(&["sudo", "adm"])),
        ("state", s("present")),
        ("password", secret(HASH)),
        ("sudo_nopasswd", b(true)),
        ("authorized_keys", s(KEY)),
    ];
    for (k, v) in extra {
        attrs.retain(|(key, _)| key != k);
        attrs.push((k, v.clone()));
    }
    resource(ResourceKind::User, "alice", &attrs)
}

fn read(root: &Path, file: &str) -> String {
    std::fs::read_to_string(root.join(file)).unwrap()
}

fn entry(root: &Path, file: &str, name: &str) -> Option<String> {
    read(root, file)
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
}

fn meta(root: &Path, rel: &str) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(root.join(rel)).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// Runs a host tool; `None` when it is not installed.
fn tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
    crate::providers::find_program(program)?;
    Some(
        std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn product_alice_converges_into_a_root_and_then_is_stable() {
    let dir = seed_debian();
    let root = dir.path();
    let ctx = host_ctx(root, false);
    let changes = UserProvider.converge(&alice(&[]), &ctx).unwrap();
    assert_eq!(
        changes,
        [
            Change::new("state", "absent", "present"),
            Change::new("authorized_keys", "absent", "1 key (alice@laptop)"),
            Change::new("sudo_nopasswd", "false", "true"),
        ]
    );
    assert!(!format!("{changes:?}").contains(HASH));

    // passwd, shadow, group, gshadow: new entries, untouched lines byte-identical.
    assert_eq!(
        read(root, "etc/passwd"),
        format!("{PASSWD}alice:x:1000:1000:Alice Nguyen:/home/alice:/bin/bash\n")
    );
    let shadow = entry(root, "etc/shadow", "alice").unwrap();
    assert!(shadow.starts_with(&format!("alice:{HASH}:")), "{shadow}");
    let group = read(root, "etc/group");
    assert!(group.starts_with("root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:alice\nshadow:x:42:\nsudo:x:27:alice\n"), "{group}");
    assert!(
        group.ends_with("nogroup:x:65534:\nalice:x:1000:\n"),
        "{group}"
    );
    assert_eq!(entry(root, "etc/gshadow", "sudo").unwrap(), "sudo:*::alice");
    assert_eq!(entry(root, "etc/gshadow", "alice").unwrap(), "alice:!::");
    // Modes and owners of the databases are kept; backups exist; no lock is left behind.
    assert_eq!(meta(root, "etc/shadow"), (0o640, 0, 42));
    assert_eq!(meta(root, "etc/passwd").0, 0o644);
    assert_eq!(read(root, "etc/passwd-"), PASSWD);
    assert!(!root.join("etc/passwd.lock").exists() && !root.join("etc/shadow+").exists());

    // Home from skel, owned by alice.
    assert_eq!(meta(root, "home/alice"), (0o755, 1000, 1000));
    assert_eq!(meta(root, "home/alice/.bashrc").1, 1000);
    assert_eq!(read(root, "home/alice/.profile"), "# ~/.profile\n");

    // authorized_keys: content, modes, owner, and ssh-keygen accepts it.
    assert_eq!(read(root, "home/alice/.ssh/authorized_keys"), KEY);
    assert_eq!(meta(root, "home/alice/.ssh"), (0o700, 1000, 1000));
    assert_eq!(
        meta(root, "home/alice/.ssh/authorized_keys"),
        (0o600, 1000, 1000)
    );
    let keys = root
        .join("home/alice/.ssh/authorized_keys")
        .display()
        .to_string();
    if let Some(out) = tool("ssh-keygen", &["-lf", &keys]) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("alice@laptop (ED25519)"));
    }

    // The sudoers drop-in, checked by the real visudo.
    let dropin = root.join("etc/sudoers.d/vigo-alice");
    assert_eq!(
        read(root, "etc/sudoers.d/vigo-alice"),
        super::sudoers::content("alice")
    );
    assert_eq!(meta(root, "etc/sudoers.d/vigo-alice"), (0o440, 0, 0));
    if let Some(out) = tool("visudo", &["-cf", &dropin.display().to_string()]) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        std::fs::read_dir(root.join("etc/sudoers.d"))
            .unwrap()
            .count()
            == 1,
        "no candidate left behind"
    );

    // shadow-utils' own checkers agree the databases are consistent.
    let r = root.display().to_string();
    dir.write("bin/bash", "");
    std::fs::set_permissions(
        root.join("bin/bash"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for (checker, args) in [("pwck", ["-r", "-R", &r]), ("grpck", ["-r", "-R", &r])] {
        if let Some(out) = tool(checker, &args) {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            // The seed's system accounts have homes and shells that do not exist in the root;
            // a complaint about alice or about the files' syntax would be ours.
            assert!(
                !text.contains("alice") && !text.contains("invalid"),
                "{checker}: {text}"
            );
            assert!(
                out.status.code().is_some_and(|c| c <= 2),
                "{checker}: {text}"
            );
        }
    }

    // A second run: nothing to do, and no file is rewritten.
    let before = snapshot(root);
    assert_eq!(UserProvider.converge(&alice(&[]), &ctx).unwrap(), []);
    assert_eq!(snapshot(root), before);
}

#[test]
fn observe_reports_and_changes_nothing() {
    let dir = seed_debian();
    let before = snapshot(dir.path());
    let changes = UserProvider
        .converge(&alice(&[]), &host_ctx(dir.path(), true))
        .unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn modify_then_remove() {
    let dir = seed_debian();
    let root = dir.path();
    let ctx = host_ctx(root, false);
    UserProvider.converge(&alice(&[]), &ctx).unwrap();

    // Modify: other shell and comment, only adm, a new hash, no sudo, two keys, uid.
    let new_hash = "$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno01";
    let modified = alice(&[
        ("comment", s("Alice N.")),
        ("shell", s("/bin/sh")),
        ("groups", l(&["adm", "users"])),
        ("password", secret(new_hash)),
        ("sudo_nopasswd", b(false)),
        ("authorized_keys", s(&format!("{KEY}{KEY2}"))),
        ("uid", AttrValue::Int(1500)),
    ]);
    let changes = UserProvider.converge(&modified, &ctx).unwrap();
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "uid",
            "comment",
            "shell",
            "groups",
            "password",
            "authorized_keys",
            "sudo_nopasswd"
        ]
    );
    assert_eq!(changes[3], Change::new("groups", "adm, sudo", "adm, users"));
    assert_eq!(
        changes[4],
        Change::new("password", "<redacted>", "<redacted>")
    );
    assert_eq!(
        entry(root, "etc/passwd", "alice").unwrap(),
        "alice:x:1500:1000:Alice N.:/home/alice:/bin/sh"
    );
    assert!(
        entry(root, "etc/shadow", "alice")
            .unwrap()
            .starts_with(&format!("alice:{new_hash}:"))
    );
    assert_eq!(entry(root, "etc/group", "sudo").unwrap(), "sudo:x:27:");
    assert_eq!(
        entry(root, "etc/group", "users").unwrap(),
        "users:x:100:alice"
    );
    assert_eq!(
        entry(root, "etc/gshadow", "users").unwrap(),
        "users:*::alice"
    );
    assert!(!root.join("etc/sudoers.d/vigo-alice").exists());
    // The keys follow the new uid.
    assert_eq!(
        meta(root, "home/alice/.ssh/authorized_keys"),
        (0o600, 1500, 1000)
    );
    assert_eq!(UserProvider.converge(&modified, &ctx).unwrap(), []);

    // Remove: the account, its private group and memberships go; the home stays.
    let absent = resource(ResourceKind::User, "alice", &[("state", s("absent"))]);
    assert_eq!(
        UserProvider.converge(&absent, &ctx).unwrap(),
        [Change::new("state", "present", "absent")]
    );
    assert_eq!(read(root, "etc/passwd"), PASSWD);
    assert_eq!(read(root, "etc/group"), GROUP);
    assert!(
        entry(root, "etc/shadow", "alice").is_none()
            && entry(root, "etc/gshadow", "alice").is_none()
    );
    assert!(root.join("home/alice").exists());
    assert_eq!(UserProvider.converge(&absent, &ctx).unwrap(), []);

    // With `dangerous`, the home folder goes too.
    UserProvider.converge(&alice(&[]), &ctx).unwrap();
    let mut purge = absent.clone();
    purge.dangerous = true;
    UserProvider.converge(&purge, &ctx).unwrap();
    assert!(!root.join("home/alice").exists());
}

#[test]
fn explicit_ids_system_users_and_existing_groups() {
    let dir = seed_debian();
    let root = dir.path();
    let ctx = host_ctx(root, false);
    let svc = resource(
        ResourceKind::User,
        "svc",
        &[
            ("system", b(true)),
            ("manage_home", b(false)),
            ("home", s("/var/lib/svc")),
            ("shell", s("/usr/sbin/nologin")),
        ],
    );
    UserProvider.converge(&svc, &ctx).unwrap();
    assert_eq!(
        entry(root, "etc/passwd", "svc").unwrap(),
        "svc:x:999:999::/var/lib/svc:/usr/sbin/nologin"
    );
    assert_eq!(
        entry(root, "etc/shadow", "svc").unwrap().split(':').nth(1),
        Some("!")
    );
    assert!(!root.join("var/lib/svc").exists());

    let bob = resource(
        ResourceKind::User,
        "bob",
        &[("uid", AttrValue::Int(2001)), ("gid", s("users"))],
    );
    UserProvider.converge(&bob, &ctx).unwrap();
    assert_eq!(
        entry(root, "etc/passwd", "bob").unwrap(),
        "bob:x:2001:100::/home/bob:/bin/sh"
    );
    assert!(
        entry(root, "etc/group", "bob").is_none(),
        "an explicit gid means no private group"
    );
    assert_eq!(meta(root, "home/bob"), (0o755, 2001, 100));
    assert_eq!(UserProvider.converge(&bob, &ctx).unwrap(), []);

    let missing = resource(ResourceKind::User, "carol", &[("gid", s("wheel"))]);
    let err = UserProvider.converge(&missing, &ctx).unwrap_err();
    assert!(err.0.contains("group `wheel` does not exist"), "{err}");
    assert!(entry(root, "etc/passwd", "carol").is_none());
}

#[test]
fn symlinked_ssh_folder_is_refused() {
    let dir = seed_debian();
    let root = dir.path();
    let ctx = host_ctx(root, false);
    UserProvider
        .converge(&alice(&[("authorized_keys", s(""))]), &ctx)
        .unwrap();
    std::fs::remove_dir_all(root.join("home/alice/.ssh")).unwrap();
    std::os::unix::fs::symlink(root.join("etc"), root.join("home/alice/.ssh")).unwrap();
    let err = UserProvider.converge(&alice(&[]), &ctx).unwrap_err();
    assert!(err.0.contains("is a symlink"), "{err}");
    assert!(!root.join("etc/authorized_keys").exists());
}

#[test]
fn a_drop_in_visudo_rejects_is_not_installed() {
    use crate::providers::testing::{ScriptedRunner, ctx};
    let dir = seed_debian();
    let root = dir.path();
    let candidate = root
        .join("etc/sudoers.d/.vigo-alice.vigo-new")
        .display()
        .to_string();
    let runner = ScriptedRunner::new().with_command("visudo").reply(
        &format!("visudo -cf {candidate}"),
        crate::providers::Output {
            status: Some(1),
            stderr: b"syntax error near line 2\n".to_vec(),
            ..Default::default()
        },
    );
    let c = ctx(root, Family::Debian, false, &runner);
    let err = UserProvider.converge(&alice(&[]), &c).unwrap_err();
    assert!(
        err.0
            .contains("validating /etc/sudoers.d/vigo-alice with visudo failed"),
        "{err}"
    );
    assert!(err.0.contains("syntax error near line 2"), "{err}");
    assert_eq!(
        std::fs::read_dir(root.join("etc/sudoers.d"))
            .unwrap()
            .count(),
        0
    );
}
