//! Users, groups and the resources that depend on them, through the binary into a root:
//! the PRODUCT.md example user, in a bundle ordered backwards so that only the implicit
//! dependencies (a user's groups, a file's owner, a cron job's user) put it right.

use crate::support::*;

#[test]
fn product_example_user_with_dependents_converges_once() {
    let root = root();
    root.write(
        "/etc/shadow",
        "root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\nbob:*:19000:0:99999:7:::\n",
    );
    root.write(
        "/etc/gshadow",
        "root:*::\nalice:!::\nbob:!::\nstaff:!::alice\n",
    );
    std::fs::create_dir_all(root.at("/home")).expect("mkdir");
    std::fs::create_dir_all(root.at("/etc/sudoers.d")).expect("mkdir");
    std::fs::create_dir_all(root.at("/etc/cron.d")).expect("mkdir");
    // alice already exists in the fixture; carol is new.
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJqR2x0bB7vYV0kq8bK8lL3zQ7O9b0m7pP1nA5mV2XyZ carol@laptop";
    let b = bundle(vec![
        res(
            "cron",
            "carol-report",
            vec![
                ("command", s("report")),
                ("user", s("carol")),
                ("minute", s("5")),
            ],
        ),
        res(
            "file",
            "/home/carol/notes.txt",
            vec![
                ("content", s("hi\n")),
                ("owner", s("carol")),
                ("group", s("carol")),
                ("mode", s("0600")),
            ],
        ),
        res(
            "user",
            "carol",
            vec![
                ("comment", s("Carol Nguyen")),
                ("shell", s("/bin/bash")),
                ("groups", list(&["sudo", "adm"])),
                (
                    "password",
                    secret(
                        "$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstu",
                    ),
                ),
                ("sudo_nopasswd", boolean(true)),
                ("authorized_keys", s(&format!("{key}\n"))),
                ("manage_home", boolean(true)),
            ],
        ),
        res("group", "sudo", vec![]),
        res("group", "adm", vec![]),
    ]);

    let before = snapshot(root.path());
    let obs = apply(&b, &root, &["--observe"]);
    assert_eq!(
        snapshot(root.path()),
        before,
        "observe changed the root\n{}",
        obs.debug()
    );
    assert!(!obs.stdout.contains("$6$saltsalt"), "{}", obs.debug());

    let run = apply(&b, &root, &[]);
    assert_eq!(
        run.statuses(),
        [
            "group:sudo=changed",
            "group:adm=changed",
            "user:carol=changed",
            "cron:carol-report=changed",
            "file:/home/carol/notes.txt=changed",
        ],
        "{}",
        run.debug()
    );
    assert!(!run.stdout.contains("$6$saltsalt"), "{}", run.debug());
    let passwd = std::fs::read_to_string(root.at("/etc/passwd")).expect("passwd");
    let carol = passwd
        .lines()
        .find(|l| l.starts_with("carol:"))
        .expect("carol in passwd");
    let uid: u32 = carol
        .split(':')
        .nth(2)
        .and_then(|u| u.parse().ok())
        .expect("uid");
    let (mode, owner, _) = stat(&root.at("/home/carol/notes.txt"));
    assert_eq!((mode, owner), (0o600, uid));
    let cron =
        std::fs::read_to_string(root.at("/etc/cron.d/vigo-carol-report")).expect("cron file");
    assert!(cron.ends_with("5 * * * * carol report\n"), "{cron}");

    let again = apply(&b, &root, &[]);
    assert_eq!(
        again.code,
        0,
        "second run changed something\n{}",
        again.debug()
    );
}
