//! Self-protection: no resource may touch what keeps Vigo itself running.
//!
//! The protected list lives here, in code, and not in config, so that no config (and no
//! `dangerous: true`) can switch it off. A resource is rejected when its path is a protected
//! path, lies beneath a protected directory, or — for anything that removes — is an
//! ancestor of one; and when it names one of Vigo's services or packages.

use vigo_shared::bundle::ResourceKind;

/// Files and directories that belong to Vigo on every OS family it supports.
pub const PROTECTED_PATHS: &[&str] = &[
    // Agent and server binaries.
    "/usr/local/bin/vigo-agent",
    "/usr/local/sbin/vigo-agent",
    "/usr/bin/vigo-agent",
    "/usr/sbin/vigo-agent",
    "/usr/local/bin/vigo-server",
    "/usr/bin/vigo-server",
    "/usr/local/bin/vigocli",
    "/usr/bin/vigocli",
    "/opt/vigo",
    // Configuration, data and cache directories.
    "/etc/vigo",
    "/usr/local/etc/vigo",
    "/var/lib/vigo",
    "/var/cache/vigo",
    "/var/db/vigo",
    "/var/log/vigo",
    "/Library/Application Support/Vigo",
    // Service units: systemd, launchd, rc.d, SMF, OpenRC.
    "/etc/systemd/system/vigo-agent.service",
    "/etc/systemd/system/vigo-server.service",
    "/lib/systemd/system/vigo-agent.service",
    "/lib/systemd/system/vigo-server.service",
    "/usr/lib/systemd/system/vigo-agent.service",
    "/usr/lib/systemd/system/vigo-server.service",
    "/Library/LaunchDaemons/com.vigo.agent.plist",
    "/Library/LaunchDaemons/com.vigo.server.plist",
    "/usr/local/etc/rc.d/vigo_agent",
    "/usr/local/etc/rc.d/vigo_server",
    "/etc/rc.d/vigo_agent",
    "/etc/rc.d/vigo_server",
    "/etc/init.d/vigo-agent",
    "/lib/svc/manifest/site/vigo-agent.xml",
    "/var/svc/manifest/site/vigo-agent.xml",
    // Windows (paths as the agent sees them, forward slashes, case-insensitive).
    "c:/program files/vigo",
    "c:/programdata/vigo",
];

/// Service names that are Vigo's own, across init systems.
pub const PROTECTED_SERVICES: &[&str] = &[
    "vigo-agent",
    "vigo-server",
    "vigo_agent",
    "vigo_server",
    "com.vigo.agent",
    "com.vigo.server",
    "svc:/site/vigo-agent",
    "site/vigo-agent",
    "vigoagent",
];

/// Package names that would replace or remove Vigo.
pub const PROTECTED_PACKAGES: &[&str] = &["vigo-agent", "vigo-server", "vigo"];

/// Why a resource is refused, or `None` when it may be managed. `extra` adds directories
/// known at run time (the config directory being loaded, the server's data directory).
pub fn violation(
    kind: ResourceKind,
    target: &str,
    removes: bool,
    extra: &[String],
) -> Option<String> {
    match kind {
        ResourceKind::File | ResourceKind::Directory | ResourceKind::Symlink => {
            let path = normalize(target);
            let hit = PROTECTED_PATHS
                .iter()
                .map(|p| p.to_string())
                .chain(extra.iter().map(|p| normalize(p)))
                .find(|p| is_within(&path, p) || (removes && is_within(p, &path)));
            hit.map(|p| {
                if is_within(&path, &p) {
                    format!("`{target}` is protected: it belongs to Vigo itself ({p}); Vigo never manages its own files, even with `dangerous: true`")
                } else {
                    format!("removing `{target}` would remove {p}, which belongs to Vigo itself; this is refused even with `dangerous: true`")
                }
            })
        }
        ResourceKind::Service => {
            let name = target.to_ascii_lowercase();
            PROTECTED_SERVICES.contains(&name.as_str()).then(|| {
                format!("service `{target}` is Vigo's own service; Vigo never manages its own service, even with `dangerous: true`")
            })
        }
        ResourceKind::Package => {
            let name = target.to_ascii_lowercase();
            PROTECTED_PACKAGES.contains(&name.as_str()).then(|| {
                format!("package `{target}` is Vigo itself; upgrade the agent with the bootstrap script instead")
            })
        }
        _ => None,
    }
}

/// Lower-cases Windows-style paths, turns `\` into `/`, folds repeated and trailing slashes.
fn normalize(path: &str) -> String {
    let unified = path.replace('\\', "/");
    let windows = unified.len() > 1 && unified.as_bytes()[1] == b':';
    let mut out = String::with_capacity(unified.len());
    for seg in unified.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if !(windows && out.is_empty()) {
            out.push('/');
        }
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    if windows {
        out.to_ascii_lowercase().trim_start_matches('/').to_string()
    } else {
        out
    }
}

/// `path` equals `dir` or lies beneath it.
fn is_within(path: &str, dir: &str) -> bool {
    if dir == "/" {
        return true;
    }
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResourceKind::*;

    #[test]
    fn protected_targets() {
        let cases: &[(ResourceKind, &str, bool, bool)] = &[
            (File, "/usr/local/bin/vigo-agent", false, true),
            (File, "/etc/vigo/agent.key", false, true),
            (File, "/etc//vigo/./x", false, true),
            (File, "/etc/vigorous", false, false),
            (Directory, "/var/lib", true, true),
            (Directory, "/var/lib", false, false),
            (Directory, "/", true, true),
            (
                Symlink,
                "/etc/systemd/system/vigo-agent.service",
                false,
                true,
            ),
            (File, "C:\\Program Files\\Vigo\\vigo-agent.exe", false, true),
            (File, "/etc/motd", false, false),
            (Service, "vigo-agent", false, true),
            (Service, "nginx", false, false),
            (Package, "vigo-agent", false, true),
            (User, "vigo", false, false),
        ];
        for (kind, target, removes, refused) in cases {
            assert_eq!(
                violation(*kind, target, *removes, &[]).is_some(),
                *refused,
                "{kind} {target}"
            );
        }
        let extra = ["/srv/vigo-config".to_string()];
        assert!(violation(File, "/srv/vigo-config/modules/x.yaml", false, &extra).is_some());
    }
}
