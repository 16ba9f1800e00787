//! Debian's apt: `dpkg-query` for what is installed, `apt-cache policy` for the candidate,
//! `apt-get` (non-interactive, keeping locally changed config files) to change.

use super::{Manager, change, cmd, query, stdout};
use crate::providers::{Command, Ctx, ProviderError};

pub struct Apt;

/// `apt-get -y … ARGS` with DEBIAN_FRONTEND=noninteractive; conffiles the admin changed
/// are kept (`--force-confold`), new defaults taken where untouched (`--force-confdef`).
fn apt_get(args: &[&str]) -> Command {
    let mut all = vec![
        "-y",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    all.extend_from_slice(args);
    let mut c = cmd("apt-get", &all);
    c.env
        .push(("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string()));
    c
}

/// Parses `dpkg-query -W -f='${Status} ${Version}\n'`: the version of the first line whose
/// status is installed (a package half-installed or with only config files left is not).
pub fn parse_status(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        let (_want, _err, status) = (it.next()?, it.next()?, it.next()?);
        let version = it.next()?;
        matches!(
            status,
            "installed" | "triggers-pending" | "triggers-awaited"
        )
        .then(|| version.to_string())
    })
}

/// Parses `apt-cache policy`: the `Candidate:` version when it differs from `Installed:`.
pub fn parse_policy(text: &str) -> Option<String> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
    };
    let (installed, candidate) = (field("Installed:")?, field("Candidate:")?);
    (candidate != "(none)" && candidate != installed).then_some(candidate)
}

impl Manager for Apt {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        let out = query(
            ctx,
            &cmd("dpkg-query", &["-W", "-f=${Status} ${Version}\\n", name]),
        )?;
        // Exit 1 with "no packages found matching" is simply "not installed".
        Ok(parse_status(&stdout(&out)))
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        let out = query(ctx, &cmd("apt-cache", &["policy", name]))?;
        Ok(parse_policy(&stdout(&out)))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let c = match version {
            Some(v) => apt_get(&[
                "install",
                "--no-install-recommends",
                "--allow-downgrades",
                &format!("{name}={v}"),
            ]),
            None => apt_get(&["install", "--no-install-recommends", name]),
        };
        change(ctx, c, "installing", name, &[])
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            apt_get(&["install", "--only-upgrade", "--no-install-recommends", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, apt_get(&["remove", name]), "removing", name, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_and_policy_outputs() {
        assert_eq!(
            parse_status("install ok installed 1.22.1-9\n"),
            Some("1.22.1-9".into())
        );
        assert_eq!(parse_status("deinstall ok config-files 1.22.1-9\n"), None);
        assert_eq!(parse_status("unknown ok not-installed \n"), None);
        assert_eq!(parse_status(""), None);
        assert_eq!(
            parse_status("deinstall ok config-files 1.0\ninstall ok installed 1:2.3-1\n"),
            Some("1:2.3-1".into())
        );
        let policy = "nginx:\n  Installed: 1.22.1-9\n  Candidate: 1.22.1-9+deb12u1\n  Version table:\n \
                      *** 1.22.1-9 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n";
        assert_eq!(parse_policy(policy), Some("1.22.1-9+deb12u1".into()));
        assert_eq!(
            parse_policy("nginx:\n  Installed: 1.0\n  Candidate: 1.0\n"),
            None
        );
        assert_eq!(
            parse_policy("nginx:\n  Installed: (none)\n  Candidate: (none)\n"),
            None
        );
    }
}
