//! Command plans of the user provider on macOS (dscl) and Windows (PowerShell, net
//! localgroup): scripted reads, then the exact argv lines of each action.

use vigo_shared::bundle::ResourceKind;

use super::{Spec, Tool, converge};
use crate::family::Family;
use crate::providers::testing::{Attrs, ScriptedRunner, TempDir, b, ctx, l, resource, s};
use crate::providers::{Change, Output};

#[test]
fn macos_plans() {
    let read =
        "dscl . -read /Users/alice UniqueID PrimaryGroupID NFSHomeDirectory UserShell RealName";
    let record = "NFSHomeDirectory: /Users/alice\nPrimaryGroupID: 20\nRealName:\n Alice\nUniqueID: 502\nUserShell: /bin/zsh\n";
    let missing = Output {
        status: Some(56),
        stderr: b"<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)\n".to_vec(),
        ..Output::default()
    };
    let groups = |r: ScriptedRunner| {
        r.ok("dscl . -list /Groups PrimaryGroupID", "admin                    80\nstaff                    20\nwheel                    0\n")
            .ok("dscl . -list /Groups GroupMembership", "admin                    root\nwheel                    root alice\n")
    };
    let attrs = vec![
        ("comment", s("Alice Nguyen")),
        ("shell", s("/bin/bash")),
        ("groups", l(&["admin"])),
        ("sudo_nopasswd", b(true)),
    ];

    // Create: allocate the uid after the highest regular one, then the home folder.
    let runner = groups(ScriptedRunner::new().with_command("visudo"))
        .reply(read, missing.clone())
        .ok(read, record)
        .ok("dscl . -list /Users UniqueID", "root 0\nbob 501\n_www 70\n");
    let dir = TempDir::new("user-mac");
    let res = resource(ResourceKind::User, "alice", &attrs);
    let c = ctx(dir.path(), Family::MacOs, false, &runner);
    let changes = converge(&Spec::parse(&res, Family::MacOs).unwrap(), Tool::Dscl, &c).unwrap();
    let root = dir.path().display().to_string();
    let lines: Vec<String> = runner
        .lines()
        .iter()
        .map(|l| l.replace(&root, "ROOT"))
        .collect();
    assert_eq!(
        lines,
        [
            read,
            "dscl . -list /Users UniqueID",
            "dscl . -list /Groups PrimaryGroupID",
            "dscl . -list /Groups GroupMembership",
            "dscl . -create /Users/alice",
            "dscl . -create /Users/alice UniqueID 502",
            "dscl . -create /Users/alice PrimaryGroupID 20",
            "dscl . -create /Users/alice UserShell /bin/bash",
            "dscl . -create /Users/alice NFSHomeDirectory /Users/alice",
            "dscl . -create /Users/alice RealName Alice Nguyen",
            "dscl . -create /Users/alice Password *",
            "dseditgroup -o edit -a alice -t user admin",
            read,
            "dscl . -list /Groups PrimaryGroupID",
            "dscl . -list /Groups GroupMembership",
            "createhomedir -c -u alice",
            "visudo -cf ROOT/etc/sudoers.d/.vigo-alice.vigo-new",
        ]
    );
    assert_eq!(changes[0], Change::new("state", "absent", "present"));

    // Modify: alice is in wheel (to be removed) and not in admin.
    let runner = groups(ScriptedRunner::new()).ok(read, record);
    std::fs::create_dir_all(dir.path().join("Users/alice")).unwrap();
    let c = ctx(dir.path(), Family::MacOs, false, &runner);
    let res = resource(ResourceKind::User, "alice", &attrs[..3]);
    let changes = converge(&Spec::parse(&res, Family::MacOs).unwrap(), Tool::Dscl, &c).unwrap();
    assert_eq!(
        runner.lines()[3..7],
        [
            "dscl . -create /Users/alice RealName Alice Nguyen",
            "dscl . -create /Users/alice UserShell /bin/bash",
            "dseditgroup -o edit -a alice -t user admin",
            "dseditgroup -o edit -d alice -t user wheel",
        ]
    );
    assert_eq!(
        changes,
        [
            Change::new("comment", "Alice", "Alice Nguyen"),
            Change::new("shell", "/bin/zsh", "/bin/bash"),
            Change::new("groups", "wheel", "admin"),
            // The drop-in the create step installed goes: sudo_nopasswd is no longer set.
            Change::new("sudo_nopasswd", "true", "false"),
        ]
    );

    // Delete.
    let runner = groups(ScriptedRunner::new()).ok(read, record);
    let c = ctx(dir.path(), Family::MacOs, false, &runner);
    let res = resource(ResourceKind::User, "alice", &[("state", s("absent"))]);
    converge(&Spec::parse(&res, Family::MacOs).unwrap(), Tool::Dscl, &c).unwrap();
    assert_eq!(
        runner.lines()[3..],
        [
            "dseditgroup -o edit -d alice -t user wheel",
            "dscl . -delete /Users/alice"
        ]
    );

    // Observe: reads only.
    let runner = groups(ScriptedRunner::new()).ok(read, record);
    let c = ctx(dir.path(), Family::MacOs, true, &runner);
    let res = resource(ResourceKind::User, "alice", &attrs[..3]);
    let changes = converge(&Spec::parse(&res, Family::MacOs).unwrap(), Tool::Dscl, &c).unwrap();
    assert_eq!(changes.len(), 3);
    assert!(
        runner
            .lines()
            .iter()
            .all(|l| l.contains(" -read ") || l.contains(" -list ")),
        "{:?}",
        runner.lines()
    );
}

#[test]
fn windows_plans() {
    let read_line = super::windows::powershell(&super::windows::read_script("alice")).argv_line();
    let ps = "powershell.exe -NoProfile -NonInteractive -Command";
    let attrs = vec![
        ("comment", s("Alice Nguyen")),
        ("groups", l(&["Administrators"])),
    ];
    let cases: Vec<(&str, Attrs, bool, Vec<String>)> = vec![
        (
            "absent\r\n",
            attrs.clone(),
            false,
            vec![
                format!("{ps} New-LocalUser -Name 'alice' -NoPassword -FullName 'Alice Nguyen'"),
                "net localgroup Administrators alice /add".to_string(),
            ],
        ),
        (
            "fullname=Alice\r\ngroup=Users\r\n",
            attrs.clone(),
            false,
            vec![
                format!("{ps} Set-LocalUser -Name 'alice' -FullName 'Alice Nguyen'"),
                "net localgroup Administrators alice /add".to_string(),
                "net localgroup Users alice /delete".to_string(),
            ],
        ),
        (
            "fullname=Alice\r\ngroup=Users\r\n",
            attrs.clone(),
            true,
            vec![],
        ),
        (
            "fullname=Alice Nguyen\r\ngroup=Administrators\r\n",
            attrs.clone(),
            false,
            vec![],
        ),
        (
            "fullname=Alice\r\n",
            vec![("state", s("absent"))],
            false,
            vec![format!("{ps} Remove-LocalUser -Name 'alice'")],
        ),
    ];
    for (current, attrs, observe, expect) in cases {
        let dir = TempDir::new("user-win");
        let res = resource(ResourceKind::User, "alice", &attrs);
        let runner = ScriptedRunner::new().ok(&read_line, current);
        let c = ctx(dir.path(), Family::Windows, observe, &runner);
        converge(
            &Spec::parse(&res, Family::Windows).unwrap(),
            Tool::Windows,
            &c,
        )
        .unwrap();
        let mut want = vec![read_line.clone()];
        want.extend(expect);
        assert_eq!(runner.lines(), want, "{current:?} observe={observe}");
    }
}
