//! OS families: which native tools converge users, groups, packages and services.
//!
//! The family is chosen at run time from the `os_family` fact, not only by `cfg`, so that
//! every family's command plans can be exercised by tests on Linux.

use std::fmt;

/// An OS family, as reported in the `os_family` fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Debian, Ubuntu and derivatives: apt, systemd, useradd.
    Debian,
    /// RHEL, Fedora, Rocky, Alma, CentOS: dnf (or yum), systemd, useradd.
    Rhel,
    /// SUSE and openSUSE: zypper, systemd, useradd.
    Suse,
    /// Arch Linux: pacman, systemd, useradd.
    Arch,
    /// Alpine Linux: apk, OpenRC, useradd (shadow) or adduser.
    Alpine,
    /// FreeBSD: pkg, rc.d with sysrc, pw.
    FreeBsd,
    /// OpenBSD: pkg_add, rcctl, useradd.
    OpenBsd,
    /// NetBSD: pkgin, rc.d with rc.conf, useradd.
    NetBsd,
    /// illumos (OmniOS, OpenIndiana, SmartOS): IPS pkg, SMF, useradd.
    Illumos,
    /// macOS: brew, launchctl, dscl.
    MacOs,
    /// Windows: winget, sc.exe, net user / PowerShell.
    Windows,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 11] = [
        Family::Debian,
        Family::Rhel,
        Family::Suse,
        Family::Arch,
        Family::Alpine,
        Family::FreeBsd,
        Family::OpenBsd,
        Family::NetBsd,
        Family::Illumos,
        Family::MacOs,
        Family::Windows,
    ];

    /// The `os_family` fact value.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Debian => "debian",
            Family::Rhel => "rhel",
            Family::Suse => "suse",
            Family::Arch => "arch",
            Family::Alpine => "alpine",
            Family::FreeBsd => "freebsd",
            Family::OpenBsd => "openbsd",
            Family::NetBsd => "netbsd",
            Family::Illumos => "illumos",
            Family::MacOs => "macos",
            Family::Windows => "windows",
        }
    }

    /// Parses an `os_family` fact value.
    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Linux distributions share the Linux kernel's interfaces (/proc, /etc/shadow).
    pub fn is_linux(self) -> bool {
        matches!(
            self,
            Family::Debian | Family::Rhel | Family::Suse | Family::Arch | Family::Alpine
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
