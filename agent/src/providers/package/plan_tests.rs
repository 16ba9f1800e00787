//! Command plans of the package provider for every manager: each family's table gives the
//! exact query, update-check and changing argv lines with realistic outputs; the rows
//! (current state × desired state × observe) assemble the plan expected from them.

use vigo_shared::bundle::{AttrValue, ResourceKind};

use super::{Spec, converge, manager_for};
use crate::family::Family;
use crate::providers::testing::{Attrs, ScriptedRunner, TempDir, ctx, out, resource, s};
use crate::providers::{Change, Output};

/// A scripted exit status and stdout.
type Reply = (i32, &'static str);

/// A query line with its replies when the package is absent and when installed.
type Query = (&'static str, Reply, Reply);

/// One manager's commands for package `nginx` (installed version 1 when present), and
/// version 2 as the pinned or newer version.
struct Table {
    family: Family,
    /// Read-only queries with their outputs when absent and when installed.
    queries: &'static [Query],
    /// The update check with its outputs when a newer version exists and when not.
    newer: Query,
    /// The update check's line in observe mode, when it differs (no metadata refresh).
    newer_observe: &'static str,
    /// Queries run only when the package is installed (FreeBSD's version query).
    installed_queries: &'static [(&'static str, &'static str)],
    install: &'static str,
    install_v2: &'static str,
    upgrade: &'static str,
    remove: &'static str,
    v1: &'static str,
    v2: &'static str,
}

const APT: &str =
    "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

fn tables() -> Vec<Table> {
    let rpm = (
        "rpm -q --qf %{VERSION}-%{RELEASE}\\n nginx",
        (1, "package nginx is not installed\n"),
        (0, "1.20.1-14.el9\n"),
    );
    vec![
        Table {
            family: Family::Debian,
            queries: &[("dpkg-query -W -f=${Status} ${Version}\\n nginx", (1, ""), (0, "install ok installed 1.22.1-9\n"))],
            newer: (
                "apt-cache policy nginx",
                (0, "nginx:\n  Installed: 1.22.1-9\n  Candidate: 1.22.1-9+deb12u1\n"),
                (0, "nginx:\n  Installed: 1.22.1-9\n  Candidate: 1.22.1-9\n"),
            ),
            newer_observe: "",
            installed_queries: &[],
            install: "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --no-install-recommends nginx",
            install_v2: "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --no-install-recommends --allow-downgrades nginx=1.22.1-9+deb12u1",
            upgrade: "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --only-upgrade --no-install-recommends nginx",
            remove: "apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold remove nginx",
            v1: "1.22.1-9",
            v2: "1.22.1-9+deb12u1",
        },
        Table {
            family: Family::Rhel,
            queries: &[],
            newer: ("dnf -q check-update nginx", (100, "\nnginx.x86_64   1:1.20.1-16.el9   appstream\n"), (0, "")),
            newer_observe: "dnf -q --cacheonly check-update nginx",
            installed_queries: &[],
            install: "dnf install -y nginx",
            install_v2: "dnf install -y nginx-1.20.1-16.el9",
            upgrade: "dnf upgrade -y nginx",
            remove: "dnf remove -y nginx",
            v1: "1.20.1-14.el9",
            v2: "1.20.1-16.el9",
        },
        Table {
            family: Family::Suse,
            queries: &[],
            newer: (
                "zypper --non-interactive --quiet list-updates",
                (0, "S | Repository | Name  | Current Version | Available Version | Arch\nv | Main | nginx | 1.20.1-14.el9 | 1.21.5-2.1 | x86_64\n"),
                (0, "No updates found.\n"),
            ),
            newer_observe: "zypper --non-interactive --no-refresh --quiet list-updates",
            installed_queries: &[],
            install: "zypper --non-interactive install --no-recommends nginx",
            install_v2: "zypper --non-interactive install --no-recommends --oldpackage nginx=1.21.5-2.1",
            upgrade: "zypper --non-interactive update nginx",
            remove: "zypper --non-interactive remove nginx",
            v1: "1.20.1-14.el9",
            v2: "1.21.5-2.1",
        },
        Table {
            family: Family::Arch,
            queries: &[("pacman -Q nginx", (1, ""), (0, "nginx 1.24.0-1\n"))],
            newer: ("pacman -Qu nginx", (0, "nginx 1.24.0-1 -> 1.26.0-1\n"), (1, "")),
            newer_observe: "",
            installed_queries: &[],
            install: "pacman -S --noconfirm --needed nginx",
            install_v2: "",
            upgrade: "pacman -S --noconfirm nginx",
            remove: "pacman -R --noconfirm nginx",
            v1: "1.24.0-1",
            v2: "1.26.0-1",
        },
        Table {
            family: Family::Alpine,
            queries: &[("apk list --installed nginx", (0, ""), (0, "nginx-1.24.0-r15 x86_64 {nginx} (BSD-2-Clause) [installed]\n"))],
            newer: (
                "apk list --upgradable nginx",
                (0, "nginx-1.26.1-r0 x86_64 {nginx} (BSD-2-Clause) [upgradable from: nginx-1.24.0-r15]\n"),
                (0, ""),
            ),
            newer_observe: "",
            installed_queries: &[],
            install: "apk add --no-cache nginx",
            install_v2: "apk add --no-cache nginx=1.26.1-r0",
            upgrade: "apk add --no-cache --upgrade nginx",
            remove: "apk del nginx",
            v1: "1.24.0-r15",
            v2: "1.26.1-r0",
        },
        Table {
            family: Family::FreeBsd,
            queries: &[("pkg info -e nginx", (1, ""), (0, ""))],
            newer: (
                "pkg upgrade -n nginx",
                (1, "Installed packages to be UPGRADED:\n\tnginx: 1.24.0_12,3 -> 1.26.1,3\n"),
                (0, "Your packages are up to date.\n"),
            ),
            newer_observe: "pkg upgrade -n -U nginx",
            installed_queries: &[("pkg query %v nginx", "1.24.0_12,3\n")],
            install: "pkg install -y nginx",
            install_v2: "pkg install -y nginx-1.26.1,3",
            upgrade: "pkg upgrade -y nginx",
            remove: "pkg delete -y nginx",
            v1: "1.24.0_12,3",
            v2: "1.26.1,3",
        },
        Table {
            family: Family::OpenBsd,
            queries: &[("pkg_info -q -e nginx-*", (1, ""), (0, "nginx-1.24.0p0\n"))],
            newer: ("pkg_add -u -n -I nginx", (0, "nginx-1.24.0p0->1.26.1: ok\n"), (0, "")),
            newer_observe: "",
            installed_queries: &[],
            install: "pkg_add -I nginx",
            install_v2: "pkg_add -I nginx-1.26.1",
            upgrade: "pkg_add -u -I nginx",
            remove: "pkg_delete -I nginx",
            v1: "1.24.0p0",
            v2: "1.26.1",
        },
        Table {
            family: Family::NetBsd,
            queries: &[("pkg_info -E nginx", (1, ""), (0, "nginx-1.24.0\n"))],
            newer: (
                "pkgin search ^nginx-[0-9]",
                (0, "nginx-1.25.3 <  Lightweight HTTP server and mail proxy server\n"),
                (0, "nginx-1.24.0 =  Lightweight HTTP server and mail proxy server\n"),
            ),
            newer_observe: "",
            installed_queries: &[],
            install: "pkgin -y install nginx",
            install_v2: "pkgin -y install nginx-1.25.3",
            upgrade: "pkgin -y install nginx",
            remove: "pkgin -y remove nginx",
            v1: "1.24.0",
            v2: "1.25.3",
        },
        Table {
            family: Family::Illumos,
            queries: &[("pkg list -H nginx", (1, ""), (0, "nginx    1.24.0-151046.0    i--\n"))],
            newer: ("pkg list -Hu nginx", (0, "nginx    1.24.0-151046.0    i--\n"), (1, "")),
            newer_observe: "",
            installed_queries: &[],
            install: "pkg install --accept nginx",
            install_v2: "pkg install --accept nginx@1.26.0",
            upgrade: "pkg update --accept nginx",
            remove: "pkg uninstall nginx",
            v1: "1.24.0-151046.0",
            v2: "1.26.0",
        },
        Table {
            family: Family::MacOs,
            queries: &[("brew list --versions nginx", (1, ""), (0, "nginx 1.25.3\n"))],
            newer: ("brew outdated --verbose nginx", (0, "nginx (1.25.3) < 1.27.0\n"), (0, "")),
            newer_observe: "",
            installed_queries: &[],
            install: "brew install nginx",
            install_v2: "brew install nginx@1.27.0",
            upgrade: "brew upgrade nginx",
            remove: "brew uninstall nginx",
            v1: "1.25.3",
            v2: "1.27.0",
        },
        Table {
            family: Family::Windows,
            queries: &[(
                "winget list --id nginx --exact --accept-source-agreements --disable-interactivity",
                (-1978335212, "No installed package found matching input criteria.\n"),
                (0, "Name   Id      Version Source\n-----------------------------\nnginx  nginx   1.25.3  winget\n"),
            )],
            newer: (
                "winget list --id nginx --exact --accept-source-agreements --disable-interactivity",
                (0, "Name   Id      Version Available Source\n---------------------------------------\nnginx  nginx   1.25.3  1.27.0    winget\n"),
                (0, "Name   Id      Version Source\n-----------------------------\nnginx  nginx   1.25.3  winget\n"),
            ),
            newer_observe: "",
            installed_queries: &[],
            install: "winget install --id nginx --exact --silent --accept-package-agreements --accept-source-agreements --disable-interactivity",
            install_v2: "winget install --id nginx --exact --silent --accept-package-agreements --version 1.27.0 --accept-source-agreements --disable-interactivity",
            upgrade: "winget upgrade --id nginx --exact --silent --accept-package-agreements --accept-source-agreements --disable-interactivity",
            remove: "winget uninstall --id nginx --exact --silent --accept-source-agreements --disable-interactivity",
            v1: "1.25.3",
            v2: "1.27.0",
        },
    ]
    .into_iter()
    .map(|mut t| {
        if matches!(t.family, Family::Rhel | Family::Suse) {
            t.queries = Box::leak(Box::new([rpm]));
        }
        t
    })
    .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Current {
    Absent,
    /// Version 1 installed, version 2 available.
    Outdated,
    /// Version 1 installed and newest.
    Newest,
}

/// Scripts the runner for `current`, runs the provider and returns (lines, changes).
fn run(
    t: &Table,
    current: Current,
    attrs: &[(&str, AttrValue)],
    observe: bool,
) -> (Vec<String>, Result<Vec<Change>, String>) {
    let mut runner = ScriptedRunner::new().with_command("dnf");
    let reply = |(status, text): (i32, &str)| Output {
        status: Some(status),
        ..out(status, text)
    };
    let installed = current != Current::Absent;
    for (line, absent, present) in t.queries {
        runner = runner.reply(line, reply(if installed { *present } else { *absent }));
    }
    for (line, text) in t.installed_queries {
        runner = runner.ok(line, text);
    }
    let (mut line, yes, no) = t.newer;
    if observe && !t.newer_observe.is_empty() {
        line = t.newer_observe;
    }
    // winget answers the list query and the update check with the same command.
    if !(t.family == Family::Windows && current == Current::Absent) {
        runner = runner.reply(
            line,
            reply(if current == Current::Outdated {
                yes
            } else {
                no
            }),
        );
    }
    let dir = TempDir::new("pkg-plan");
    let c = ctx(dir.path(), t.family, observe, &runner);
    let res = resource(ResourceKind::Package, "nginx", attrs);
    let result = Spec::parse(&res)
        .map_err(|e| e.0)
        .and_then(|spec| converge(&spec, manager_for(&c).as_ref(), &c).map_err(|e| e.0));
    (runner.lines(), result)
}

#[test]
fn every_manager_every_transition() {
    for t in tables() {
        let queries: Vec<&str> = t.queries.iter().map(|q| q.0).collect();
        let installed_queries: Vec<&str> = queries
            .iter()
            .copied()
            .chain(t.installed_queries.iter().map(|q| q.0))
            .collect();
        let plus = |base: &[&str], more: &[&str]| -> Vec<String> {
            base.iter().chain(more).map(|s| s.to_string()).collect()
        };
        let v2 = s(t.v2);
        let newer = |observe: bool| {
            if observe && !t.newer_observe.is_empty() {
                t.newer_observe
            } else {
                t.newer.0
            }
        };
        let rows: Vec<(Current, Attrs, bool, Vec<String>, bool)> = vec![
            (
                Current::Absent,
                vec![],
                false,
                plus(&queries, &[t.install]),
                true,
            ),
            (Current::Absent, vec![], true, plus(&queries, &[]), true),
            (
                Current::Newest,
                vec![],
                false,
                plus(&installed_queries, &[]),
                false,
            ),
            (
                Current::Newest,
                vec![("state", s("absent"))],
                false,
                plus(&installed_queries, &[t.remove]),
                true,
            ),
            (
                Current::Newest,
                vec![("state", s("absent"))],
                true,
                plus(&installed_queries, &[]),
                true,
            ),
            (
                Current::Absent,
                vec![("state", s("absent"))],
                false,
                plus(&queries, &[]),
                false,
            ),
            (
                Current::Absent,
                vec![("state", s("latest"))],
                false,
                plus(&queries, &[t.install]),
                true,
            ),
            (
                Current::Outdated,
                vec![("state", s("latest"))],
                false,
                plus(&installed_queries, &[newer(false), t.upgrade]),
                true,
            ),
            (
                Current::Outdated,
                vec![("state", s("latest"))],
                true,
                plus(&installed_queries, &[newer(true)]),
                true,
            ),
            (
                Current::Newest,
                vec![("state", s("latest"))],
                false,
                plus(&installed_queries, &[newer(false)]),
                false,
            ),
            (
                Current::Newest,
                vec![("version", s(t.v1))],
                false,
                plus(&installed_queries, &[]),
                false,
            ),
            (
                Current::Newest,
                vec![("version", v2.clone())],
                false,
                plus(&installed_queries, &[t.install_v2]),
                true,
            ),
            (
                Current::Newest,
                vec![("version", v2)],
                true,
                plus(&installed_queries, &[]),
                true,
            ),
        ];
        for (current, attrs, observe, expect, changes_expected) in rows {
            let (lines, result) = run(&t, current, &attrs, observe);
            if t.install_v2.is_empty() && !observe && attrs.iter().any(|(_, v)| *v == s(t.v2)) {
                assert!(
                    result
                        .unwrap_err()
                        .contains("pacman installs only the repositories' version")
                );
                continue;
            }
            let changes =
                result.unwrap_or_else(|e| panic!("{} {current:?} {attrs:?}: {e}", t.family));
            assert_eq!(
                lines, expect,
                "{} {current:?} {attrs:?} observe={observe}",
                t.family
            );
            assert_eq!(
                !changes.is_empty(),
                changes_expected,
                "{} {current:?} {attrs:?} {changes:?}",
                t.family
            );
        }
    }
}

#[test]
fn changes_say_what_differs() {
    let t = &tables()[0];
    let (_, r) = run(t, Current::Absent, &[], true);
    assert_eq!(r.unwrap(), [Change::new("state", "absent", "present")]);
    let (_, r) = run(t, Current::Outdated, &[("state", s("latest"))], true);
    assert_eq!(
        r.unwrap(),
        [Change::new("version", "1.22.1-9", "1.22.1-9+deb12u1")]
    );
    let (_, r) = run(t, Current::Newest, &[("state", s("absent"))], true);
    assert_eq!(
        r.unwrap(),
        [Change::new("state", "present (1.22.1-9)", "absent")]
    );
    let (_, r) = run(
        t,
        Current::Newest,
        &[("version", s("1.22.1-9+deb12u1"))],
        true,
    );
    assert_eq!(
        r.unwrap(),
        [Change::new("version", "1.22.1-9", "1.22.1-9+deb12u1")]
    );
}

#[test]
fn details_of_particular_managers() {
    // apt runs non-interactively.
    let (_, _) = run(&tables()[0], Current::Absent, &[], false);
    let runner =
        ScriptedRunner::new().exit("dpkg-query -W -f=${Status} ${Version}\\n nginx", 1, "");
    let dir = TempDir::new("pkg-env");
    let c = ctx(dir.path(), Family::Debian, false, &runner);
    converge(
        &Spec::parse(&resource(ResourceKind::Package, "nginx", &[])).unwrap(),
        manager_for(&c).as_ref(),
        &c,
    )
    .unwrap();
    assert_eq!(
        runner.calls()[1].env,
        [("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())]
    );
    assert!(runner.calls()[1].argv_line().starts_with(APT));

    // yum where dnf is missing.
    let runner = ScriptedRunner::new().exit("rpm -q --qf %{VERSION}-%{RELEASE}\\n nginx", 1, "");
    let c = ctx(dir.path(), Family::Rhel, false, &runner);
    converge(
        &Spec::parse(&resource(ResourceKind::Package, "nginx", &[])).unwrap(),
        manager_for(&c).as_ref(),
        &c,
    )
    .unwrap();
    assert_eq!(runner.lines()[1], "yum install -y nginx");

    // Observe never refreshes metadata.
    let runner = ScriptedRunner::new()
        .with_command("dnf")
        .ok("rpm -q --qf %{VERSION}-%{RELEASE}\\n nginx", "1.0-1\n");
    let c = ctx(dir.path(), Family::Rhel, true, &runner);
    let spec = Spec::parse(&resource(
        ResourceKind::Package,
        "nginx",
        &[("state", s("latest"))],
    ))
    .unwrap();
    converge(&spec, manager_for(&c).as_ref(), &c).unwrap();
    assert_eq!(runner.lines()[1], "dnf -q --cacheonly check-update nginx");

    // IPS' "nothing to do" is success; other failures carry the manager's message.
    let runner = ScriptedRunner::new().exit("pkg list -H nginx", 1, "").exit(
        "pkg install --accept nginx",
        4,
        "",
    );
    let c = ctx(dir.path(), Family::Illumos, false, &runner);
    converge(
        &Spec::parse(&resource(ResourceKind::Package, "nginx", &[])).unwrap(),
        manager_for(&c).as_ref(),
        &c,
    )
    .unwrap();
    let runner = ScriptedRunner::new().exit("pacman -Q nginx", 1, "").reply(
        "pacman -S --noconfirm --needed nginx",
        Output {
            status: Some(1),
            stderr: b"error: target not found: nginx\n".to_vec(),
            ..Output::default()
        },
    );
    let c = ctx(dir.path(), Family::Arch, false, &runner);
    let err = converge(
        &Spec::parse(&resource(ResourceKind::Package, "nginx", &[])).unwrap(),
        manager_for(&c).as_ref(),
        &c,
    )
    .unwrap_err();
    assert_eq!(
        err.0,
        "installing package `nginx`: `pacman -S --noconfirm --needed nginx` exited with status 1: error: target not found: nginx"
    );

    // brew runs as the owner of its executable.
    dir_with_brew(&dir);
    let runner = ScriptedRunner::new().exit("sudo -u #501 -H env HOMEBREW_NO_AUTO_UPDATE=1 HOMEBREW_NO_ANALYTICS=1 /opt/homebrew/bin/brew list --versions wget", 1, "");
    let c = ctx(dir.path(), Family::MacOs, false, &runner);
    converge(
        &Spec::parse(&resource(ResourceKind::Package, "wget", &[])).unwrap(),
        manager_for(&c).as_ref(),
        &c,
    )
    .unwrap();
    assert_eq!(
        runner.lines()[1],
        "sudo -u #501 -H env HOMEBREW_NO_AUTO_UPDATE=1 HOMEBREW_NO_ANALYTICS=1 /opt/homebrew/bin/brew install wget"
    );
}

fn dir_with_brew(dir: &TempDir) {
    dir.write("opt/homebrew/bin/brew", "#!/bin/sh\n");
    #[cfg(unix)]
    std::os::unix::fs::lchown(
        dir.path().join("opt/homebrew/bin/brew"),
        Some(501),
        Some(20),
    )
    .unwrap();
}

#[test]
fn names_cannot_become_options() {
    for bad in ["-y", "nginx vim", "nginx\n", ""] {
        let err = Spec::parse(&resource(
            ResourceKind::Package,
            "x",
            &[("package", s(bad))],
        ))
        .unwrap_err();
        assert!(err.0.contains("is not valid"), "{err}");
    }
    let err = Spec::parse(&resource(
        ResourceKind::Package,
        "nginx",
        &[("version", s("--force"))],
    ))
    .unwrap_err();
    assert!(err.0.contains("is not valid"), "{err}");
    let err = Spec::parse(&resource(
        ResourceKind::Package,
        "nginx",
        &[("version", s("1")), ("state", s("latest"))],
    ))
    .unwrap_err();
    assert!(err.0.contains("version goes with state: present"), "{err}");
    assert!(super::version_matches("1:2.3-1", "2.3-1"));
    assert!(super::version_matches("1.20.1-14.el9", "1.20.1"));
    assert!(!super::version_matches("1.20.10-1", "1.20.1"));
}

#[test]
fn a_root_other_than_slash_is_refused() {
    use crate::providers::Provider;
    let runner = ScriptedRunner::new();
    let dir = TempDir::new("pkg-root");
    let c = ctx(dir.path(), Family::Debian, false, &runner);
    let err = super::PackageProvider
        .converge(&resource(ResourceKind::Package, "nginx", &[]), &c)
        .unwrap_err();
    assert!(err.0.contains("only on a live system"), "{err}");
    assert!(runner.lines().is_empty());
}
