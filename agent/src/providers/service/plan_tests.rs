//! Command plans of the service provider for every init system: one table per family of
//! (current state → desired state) → the exact argv lines after the status checks, with
//! the status outputs those systems really print.

use vigo_shared::bundle::{AttrValue, ResourceKind};

use super::{Spec, converge, init_for, refresh};
use crate::family::Family;
use crate::providers::Change;
use crate::providers::testing::{Attrs, ScriptedRunner, TempDir, b, ctx, resource, s};

/// (running, enabled) before the run.
type State = (bool, bool);

/// Scripts the status checks for a service that is (or is not) running and enabled.
type Script = fn(ScriptedRunner, &TempDir, bool, bool) -> ScriptedRunner;

struct Table {
    families: &'static [Family],
    script: Script,
    /// The status-check lines, in order.
    checks: &'static [&'static str],
    /// stopped+disabled → running+enabled.
    start_enable: Option<&'static [&'static str]>,
    /// running+enabled → stopped+disabled.
    stop_disable: &'static [&'static str],
    /// stopped+disabled → running (enabled not managed).
    start_only: Option<&'static [&'static str]>,
    /// stopped+disabled → running + enabled: false.
    start_not_enabled: Option<&'static [&'static str]>,
    /// running+enabled → stopped + enabled: true.
    stop_keep_enabled: &'static [&'static str],
    restart: &'static str,
    reload: &'static str,
}

fn tables() -> Vec<Table> {
    vec![
        Table {
            families: &[Family::Debian, Family::Rhel, Family::Suse, Family::Arch],
            script: |r, _, run, on| {
                r.exit(
                    "systemctl is-active nginx",
                    if run { 0 } else { 3 },
                    if run { "active\n" } else { "inactive\n" },
                )
                .exit(
                    "systemctl is-enabled nginx",
                    if on { 0 } else { 1 },
                    if on { "enabled\n" } else { "disabled\n" },
                )
            },
            checks: &["systemctl is-active nginx", "systemctl is-enabled nginx"],
            start_enable: Some(&["systemctl enable nginx", "systemctl start nginx"]),
            stop_disable: &["systemctl stop nginx", "systemctl disable nginx"],
            start_only: Some(&["systemctl start nginx"]),
            start_not_enabled: Some(&["systemctl start nginx"]),
            stop_keep_enabled: &["systemctl stop nginx"],
            restart: "systemctl restart nginx",
            reload: "systemctl reload nginx",
        },
        Table {
            families: &[Family::Alpine],
            script: |r, _, run, on| {
                r.exit(
                    "rc-service nginx status",
                    if run { 0 } else { 3 },
                    if run {
                        " * status: started\n"
                    } else {
                        " * status: stopped\n"
                    },
                )
                .ok(
                    "rc-update show default",
                    if on {
                        "            nginx | default\n             sshd | default\n"
                    } else {
                        "             sshd | default\n"
                    },
                )
            },
            checks: &["rc-service nginx status", "rc-update show default"],
            start_enable: Some(&["rc-update add nginx default", "rc-service nginx start"]),
            stop_disable: &["rc-service nginx stop", "rc-update del nginx default"],
            start_only: Some(&["rc-service nginx start"]),
            start_not_enabled: Some(&["rc-service nginx start"]),
            stop_keep_enabled: &["rc-service nginx stop"],
            restart: "rc-service nginx restart",
            reload: "rc-service nginx reload",
        },
        Table {
            families: &[Family::FreeBsd],
            script: |r, _, run, on| {
                r.exit(
                    "service nginx onestatus",
                    if run { 0 } else { 1 },
                    if run {
                        "nginx is running as pid 4242.\n"
                    } else {
                        "nginx is not running.\n"
                    },
                )
                .exit("service nginx enabled", if on { 0 } else { 1 }, "")
            },
            checks: &["service nginx onestatus", "service nginx enabled"],
            start_enable: Some(&["sysrc nginx_enable=YES", "service nginx start"]),
            stop_disable: &["service nginx stop", "sysrc nginx_enable=NO"],
            start_only: Some(&["service nginx onestart"]),
            start_not_enabled: Some(&["service nginx onestart"]),
            stop_keep_enabled: &["service nginx stop"],
            restart: "service nginx restart",
            reload: "service nginx reload",
        },
        Table {
            families: &[Family::NetBsd],
            script: |r, dir, run, on| {
                dir.write("etc/rc.d/nginx", "#!/bin/sh\n");
                dir.write(
                    "etc/rc.conf",
                    if on {
                        "sshd=YES\nnginx=YES\n"
                    } else {
                        "sshd=YES\n"
                    },
                );
                r.exit(
                    "/etc/rc.d/nginx onestatus",
                    if run { 0 } else { 1 },
                    if run {
                        "nginx is running as pid 4242.\n"
                    } else {
                        "nginx is not running.\n"
                    },
                )
            },
            checks: &["/etc/rc.d/nginx onestatus"],
            start_enable: Some(&["/etc/rc.d/nginx start"]),
            stop_disable: &["/etc/rc.d/nginx stop"],
            start_only: Some(&["/etc/rc.d/nginx onestart"]),
            start_not_enabled: Some(&["/etc/rc.d/nginx onestart"]),
            stop_keep_enabled: &["/etc/rc.d/nginx stop"],
            restart: "/etc/rc.d/nginx restart",
            reload: "/etc/rc.d/nginx reload",
        },
        Table {
            families: &[Family::OpenBsd],
            script: |r, _, run, on| {
                r.exit(
                    "rcctl check nginx",
                    if run { 0 } else { 1 },
                    if run {
                        "nginx(ok)\n"
                    } else {
                        "nginx(failed)\n"
                    },
                )
                .ok(
                    "rcctl ls on",
                    if on {
                        "cron\nnginx\nsshd\n"
                    } else {
                        "cron\nsshd\n"
                    },
                )
            },
            checks: &["rcctl check nginx", "rcctl ls on"],
            start_enable: Some(&["rcctl enable nginx", "rcctl start nginx"]),
            stop_disable: &["rcctl stop nginx", "rcctl disable nginx"],
            start_only: Some(&["rcctl -f start nginx"]),
            start_not_enabled: Some(&["rcctl -f start nginx"]),
            stop_keep_enabled: &["rcctl stop nginx"],
            restart: "rcctl restart nginx",
            reload: "rcctl reload nginx",
        },
        Table {
            families: &[Family::Illumos],
            script: |r, _, run, on| {
                r.ok(
                    "svcs -H -o state nginx",
                    if run { "online\n" } else { "disabled\n" },
                )
                .ok(
                    "svcprop -p general/enabled nginx",
                    if on { "true\n" } else { "false\n" },
                )
            },
            checks: &["svcs -H -o state nginx", "svcprop -p general/enabled nginx"],
            start_enable: Some(&["svcadm enable -s nginx"]),
            stop_disable: &["svcadm disable -s nginx"],
            start_only: Some(&["svcadm enable -st nginx"]),
            start_not_enabled: Some(&["svcadm enable -st nginx"]),
            stop_keep_enabled: &["svcadm disable -st nginx"],
            restart: "svcadm restart nginx",
            reload: "svcadm refresh nginx",
        },
        Table {
            families: &[Family::MacOs],
            script: |r, dir, run, on| {
                dir.write("Library/LaunchDaemons/nginx.plist", "<plist/>\n");
                let disabled = if on {
                    "disabled services = {\n\t\"com.apple.ftpd\" => disabled\n}\n"
                } else {
                    "disabled services = {\n\t\"com.apple.ftpd\" => disabled\n\t\"nginx\" => disabled\n}\n"
                };
                let print = if run {
                    "system/nginx = {\n\tactive count = 1\n\tstate = running\n\tpid = 4242\n}\n"
                } else {
                    ""
                };
                r.exit(
                    "launchctl print system/nginx",
                    if run { 0 } else { 113 },
                    print,
                )
                .ok("launchctl print-disabled system", disabled)
            },
            checks: &[
                "launchctl print system/nginx",
                "launchctl print-disabled system",
            ],
            start_enable: Some(&[
                "launchctl enable system/nginx",
                "launchctl bootstrap system /Library/LaunchDaemons/nginx.plist",
                "launchctl kickstart system/nginx",
            ]),
            stop_disable: &[
                "launchctl bootout system/nginx",
                "launchctl disable system/nginx",
            ],
            // launchd cannot run a disabled job.
            start_only: None,
            start_not_enabled: None,
            stop_keep_enabled: &["launchctl bootout system/nginx"],
            restart: "launchctl kickstart -k system/nginx",
            reload: "launchctl kill SIGHUP system/nginx",
        },
        Table {
            families: &[Family::Windows],
            script: |r, _, run, on| {
                let q = if run {
                    "SERVICE_NAME: nginx\r\n        STATE              : 4  RUNNING\r\n"
                } else {
                    "SERVICE_NAME: nginx\r\n        STATE              : 1  STOPPED\r\n"
                };
                let qc = if on {
                    "        START_TYPE         : 2   AUTO_START\r\n"
                } else {
                    "        START_TYPE         : 3   DEMAND_START\r\n"
                };
                r.ok("sc.exe query nginx", q).ok("sc.exe qc nginx", qc)
            },
            checks: &["sc.exe query nginx", "sc.exe qc nginx"],
            start_enable: Some(&["sc.exe config nginx start= auto", "sc.exe start nginx"]),
            stop_disable: &["sc.exe stop nginx", "sc.exe config nginx start= demand"],
            start_only: Some(&["sc.exe start nginx"]),
            start_not_enabled: Some(&["sc.exe start nginx"]),
            stop_keep_enabled: &["sc.exe stop nginx"],
            restart: "powershell.exe -NoProfile -NonInteractive -Command Restart-Service -Name 'nginx' -Force",
            reload: "powershell.exe -NoProfile -NonInteractive -Command Restart-Service -Name 'nginx' -Force",
        },
    ]
}

/// Runs converge (or refresh) for `family` from (running, enabled) with `attrs`.
fn run(
    t: &Table,
    family: Family,
    from: (bool, bool),
    attrs: &[(&str, AttrValue)],
    observe: bool,
    refresh_it: bool,
) -> (Vec<String>, Result<Vec<Change>, String>, TempDir) {
    let dir = TempDir::new("svc-plan");
    let runner = (t.script)(ScriptedRunner::new(), &dir, from.0, from.1);
    let c = ctx(dir.path(), family, observe, &runner);
    let res = resource(ResourceKind::Service, "nginx", attrs);
    let spec = Spec::parse(&res, family).unwrap();
    let init = init_for(family);
    let result = if refresh_it {
        refresh(&spec, init.as_ref(), &c).map(|()| Vec::new())
    } else {
        converge(&spec, init.as_ref(), &c)
    };
    (runner.lines(), result.map_err(|e| e.0), dir)
}

#[test]
fn every_init_every_transition() {
    for t in tables() {
        for &family in t.families {
            let rows: Vec<(State, Attrs, bool, Option<&[&str]>)> = vec![
                (
                    (false, false),
                    vec![("enabled", b(true))],
                    false,
                    t.start_enable,
                ),
                (
                    (true, true),
                    vec![("state", s("stopped")), ("enabled", b(false))],
                    false,
                    Some(t.stop_disable),
                ),
                ((true, true), vec![("enabled", b(true))], false, Some(&[])),
                (
                    (false, false),
                    vec![("state", s("stopped")), ("enabled", b(false))],
                    false,
                    Some(&[]),
                ),
                ((false, false), vec![], false, t.start_only),
                (
                    (false, false),
                    vec![("enabled", b(false))],
                    false,
                    t.start_not_enabled,
                ),
                (
                    (true, true),
                    vec![("state", s("stopped")), ("enabled", b(true))],
                    false,
                    Some(t.stop_keep_enabled),
                ),
                // Observe: only the checks, even where the apply would fail.
                ((false, false), vec![("enabled", b(true))], true, Some(&[])),
                ((false, false), vec![], true, Some(&[])),
                (
                    (true, true),
                    vec![("state", s("stopped")), ("enabled", b(false))],
                    true,
                    Some(&[]),
                ),
            ];
            for (from, attrs, observe, expect) in rows {
                let (lines, result, _dir) = run(&t, family, from, &attrs, observe, false);
                let label = format!("{family} from={from:?} {attrs:?} observe={observe}");
                match expect {
                    None => assert!(
                        result
                            .unwrap_err()
                            .contains("launchd does not run a disabled job"),
                        "{label}"
                    ),
                    Some(apply) => {
                        let changes = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                        let want: Vec<&str> = t.checks.iter().chain(apply).copied().collect();
                        assert_eq!(lines, want, "{label}");
                        // Every observe row has something to change; apply rows change iff they run something.
                        assert_eq!(
                            changes.is_empty(),
                            apply.is_empty() && !observe,
                            "{label} {changes:?}"
                        );
                    }
                }
            }
            // Refresh: restart or reload a running service; nothing for a stopped one.
            for (reload, cmd) in [(false, t.restart), (true, t.reload)] {
                let (lines, result, _dir) = run(
                    &t,
                    family,
                    (true, true),
                    &[("reload", b(reload))],
                    false,
                    true,
                );
                result.unwrap();
                let want: Vec<&str> = t.checks.iter().copied().chain([cmd]).collect();
                assert_eq!(lines, want, "{family} refresh reload={reload}");
            }
            let (lines, _, _dir) = run(&t, family, (false, true), &[], false, true);
            assert_eq!(lines, t.checks, "{family} refresh of a stopped service");
            let (lines, _, _dir) = run(&t, family, (true, true), &[], true, true);
            assert!(lines.is_empty(), "{family} refresh in observe mode");
        }
    }
}

#[test]
fn changes_and_rc_conf_edits() {
    let t = &tables()[0];
    let (_, r, _) = run(
        t,
        Family::Debian,
        (false, false),
        &[("enabled", b(true))],
        true,
        false,
    );
    assert_eq!(
        r.unwrap(),
        [
            Change::new("state", "stopped", "running"),
            Change::new("enabled", "false", "true")
        ]
    );

    let netbsd = tables()
        .into_iter()
        .find(|t| t.families == [Family::NetBsd])
        .unwrap();
    let (_, r, dir) = run(
        &netbsd,
        Family::NetBsd,
        (false, false),
        &[("enabled", b(true))],
        false,
        false,
    );
    r.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/rc.conf")).unwrap(),
        "sshd=YES\nnginx=YES\n"
    );
    let (_, r, dir) = run(
        &netbsd,
        Family::NetBsd,
        (true, true),
        &[("state", s("stopped")), ("enabled", b(false))],
        false,
        false,
    );
    r.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/rc.conf")).unwrap(),
        "sshd=YES\nnginx=NO\n"
    );
    let (_, r, dir) = run(
        &netbsd,
        Family::NetBsd,
        (false, false),
        &[("enabled", b(true))],
        true,
        false,
    );
    r.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/rc.conf")).unwrap(),
        "sshd=YES\n",
        "observe edits nothing"
    );
}

#[test]
fn special_states() {
    let dir = TempDir::new("svc-special");
    // A masked systemd unit is not started.
    let runner = ScriptedRunner::new()
        .exit("systemctl is-active nginx", 3, "inactive\n")
        .exit("systemctl is-enabled nginx", 1, "masked\n");
    let c = ctx(dir.path(), Family::Debian, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nginx", &[]),
        Family::Debian,
    )
    .unwrap();
    let err = converge(&spec, init_for(Family::Debian).as_ref(), &c).unwrap_err();
    assert!(err.0.contains("masked; unmask it"), "{err}");
    assert_eq!(runner.lines().len(), 2);

    // An unknown unit is a clear error.
    let runner = ScriptedRunner::new()
        .exit("systemctl is-active nope", 3, "inactive\n")
        .reply(
            "systemctl is-enabled nope",
            crate::providers::Output {
                status: Some(1),
                stderr:
                    b"Failed to get unit file state for nope.service: No such file or directory\n"
                        .to_vec(),
                ..Default::default()
            },
        );
    let c = ctx(dir.path(), Family::Debian, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nope", &[]),
        Family::Debian,
    )
    .unwrap();
    let err = converge(&spec, init_for(Family::Debian).as_ref(), &c).unwrap_err();
    assert!(err.0.contains("systemd does not know it"), "{err}");

    // A static unit has no enable switch: nothing to change.
    let runner = ScriptedRunner::new()
        .ok("systemctl is-active nginx", "active\n")
        .ok("systemctl is-enabled nginx", "static\n");
    let c = ctx(dir.path(), Family::Debian, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nginx", &[("enabled", b(true))]),
        Family::Debian,
    )
    .unwrap();
    assert_eq!(
        converge(&spec, init_for(Family::Debian).as_ref(), &c).unwrap(),
        []
    );

    // SMF maintenance is cleared before the start.
    let runner = ScriptedRunner::new()
        .ok("svcs -H -o state nginx", "maintenance\n")
        .ok("svcprop -p general/enabled nginx", "true\n");
    let c = ctx(dir.path(), Family::Illumos, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nginx", &[("enabled", b(true))]),
        Family::Illumos,
    )
    .unwrap();
    converge(&spec, init_for(Family::Illumos).as_ref(), &c).unwrap();
    assert_eq!(
        runner.lines()[2..],
        ["svcadm clear nginx", "svcadm enable -s nginx"]
    );

    // SMF: keep running but turn the persistent flag off (two steps).
    let runner = ScriptedRunner::new()
        .ok("svcs -H -o state nginx", "online\n")
        .ok("svcprop -p general/enabled nginx", "true\n");
    let c = ctx(dir.path(), Family::Illumos, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nginx", &[("enabled", b(false))]),
        Family::Illumos,
    )
    .unwrap();
    converge(&spec, init_for(Family::Illumos).as_ref(), &c).unwrap();
    assert_eq!(
        runner.lines()[2..],
        ["svcadm disable -s nginx", "svcadm enable -st nginx"]
    );

    // Windows: a service whose start type is disabled is made startable first.
    let runner = ScriptedRunner::new()
        .ok(
            "sc.exe query nginx",
            "        STATE              : 1  STOPPED\r\n",
        )
        .ok(
            "sc.exe qc nginx",
            "        START_TYPE         : 4   DISABLED\r\n",
        );
    let c = ctx(dir.path(), Family::Windows, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nginx", &[]),
        Family::Windows,
    )
    .unwrap();
    converge(&spec, init_for(Family::Windows).as_ref(), &c).unwrap();
    assert_eq!(
        runner.lines()[2..],
        ["sc.exe config nginx start= demand", "sc.exe start nginx"]
    );

    // launchd: starting a loaded but stopped job only kickstarts it.
    let runner = ScriptedRunner::new()
        .ok(
            "launchctl print system/nginx",
            "system/nginx = {\n\tstate = not running\n}\n",
        )
        .ok(
            "launchctl print-disabled system",
            "disabled services = {\n}\n",
        );
    let c = ctx(dir.path(), Family::MacOs, false, &runner);
    let spec = Spec::parse(
        &resource(ResourceKind::Service, "nginx", &[]),
        Family::MacOs,
    )
    .unwrap();
    converge(&spec, init_for(Family::MacOs).as_ref(), &c).unwrap();
    assert_eq!(runner.lines()[2..], ["launchctl kickstart system/nginx"]);
}

#[test]
fn names_are_checked_and_roots_refused() {
    use crate::providers::Provider;
    for bad in ["-x", "a b", "../x", "a/b", ""] {
        assert!(
            Spec::parse(
                &resource(ResourceKind::Service, "x", &[("service", s(bad))]),
                Family::Debian
            )
            .is_err(),
            "{bad}"
        );
    }
    Spec::parse(
        &resource(ResourceKind::Service, "svc:/network/ssh:default", &[]),
        Family::Illumos,
    )
    .unwrap();
    let runner = ScriptedRunner::new();
    let dir = TempDir::new("svc-root");
    let c = ctx(dir.path(), Family::Debian, false, &runner);
    let err = super::ServiceProvider
        .converge(&resource(ResourceKind::Service, "nginx", &[]), &c)
        .unwrap_err();
    assert!(err.0.contains("only on a live system"), "{err}");
    assert!(runner.lines().is_empty());
}
