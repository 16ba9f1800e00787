//! The BSDs: FreeBSD's pkg, OpenBSD's pkg_add/pkg_info/pkg_delete and NetBSD's pkgin
//! (with pkg_info for what is installed).

use super::{Manager, change, cmd, query, stdout};
use crate::providers::{Ctx, ProviderError};

/// FreeBSD pkg.
pub struct Pkg;

/// Parses `pkg upgrade -n NAME`: the `\tNAME: OLD -> NEW` line of the plan.
pub fn parse_pkg_upgrade(name: &str, text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (_, new) = l
            .trim()
            .strip_prefix(name)?
            .strip_prefix(": ")?
            .split_once(" -> ")?;
        Some(new.split_whitespace().next()?.to_string())
    })
}

impl Manager for Pkg {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        if !query(ctx, &cmd("pkg", &["info", "-e", name]))?.success() {
            return Ok(None);
        }
        let out = query(ctx, &cmd("pkg", &["query", "%v", name]))?;
        Ok(Some(stdout(&out).trim().to_string()))
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        // A dry run; in observe mode it must not fetch the catalogue either (-U).
        let args: &[&str] = if ctx.observe {
            &["upgrade", "-n", "-U", name]
        } else {
            &["upgrade", "-n", name]
        };
        let out = query(ctx, &cmd("pkg", args))?;
        Ok(parse_pkg_upgrade(name, &stdout(&out)))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let target = version.map_or(name.to_string(), |v| format!("{name}-{v}"));
        change(
            ctx,
            cmd("pkg", &["install", "-y", &target]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pkg", &["upgrade", "-y", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pkg", &["delete", "-y", name]),
            "removing",
            name,
            &[],
        )
    }
}

/// The version in a package file name `NAME-VERSION` (OpenBSD may prefix `inst:`), when
/// the stem is exactly `name`.
pub fn stem_version(name: &str, pkgname: &str) -> Option<String> {
    let pkgname = pkgname.trim().trim_start_matches("inst:");
    let rest = pkgname.strip_prefix(name)?.strip_prefix('-')?;
    rest.starts_with(|c: char| c.is_ascii_digit())
        .then(|| rest.to_string())
}

/// OpenBSD pkg_add and friends (`-I`: never ask).
pub struct PkgAdd;

impl Manager for PkgAdd {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        // A package spec `NAME-*` matches the stem NAME only (not NAME-extra-1.0).
        let out = query(ctx, &cmd("pkg_info", &["-q", "-e", &format!("{name}-*")]))?;
        Ok(out
            .success()
            .then(|| stdout(&out).lines().find_map(|l| stem_version(name, l)))
            .flatten())
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        // A dry-run update prints `NAME-OLD->NEW` for a package it would update.
        let out = query(ctx, &cmd("pkg_add", &["-u", "-n", "-I", name]))?;
        let text = stdout(&out);
        Ok(text.split_whitespace().find_map(|w| {
            let (old, new) = w.trim_end_matches(':').split_once("->")?;
            stem_version(name, old)?;
            Some(new.to_string())
        }))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let target = version.map_or(name.to_string(), |v| format!("{name}-{v}"));
        change(
            ctx,
            cmd("pkg_add", &["-I", &target]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pkg_add", &["-u", "-I", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, cmd("pkg_delete", &["-I", name]), "removing", name, &[])
    }
}

/// NetBSD pkgin.
pub struct Pkgin;

/// Parses `pkgin search`: `NAME-VERSION <  comment`, where `<` marks an installed
/// package with a newer version available.
pub fn parse_pkgin_search(name: &str, text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (pkg, flag) = (it.next()?, it.next()?);
        (flag == "<").then(|| stem_version(name, pkg)).flatten()
    })
}

impl Manager for Pkgin {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        // `pkg_info -E NAME` prints `NAME-VERSION` and exits 0 when installed.
        let out = query(ctx, &cmd("pkg_info", &["-E", name]))?;
        Ok(out
            .success()
            .then(|| stdout(&out).lines().find_map(|l| stem_version(name, l)))
            .flatten())
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        let out = query(ctx, &cmd("pkgin", &["search", &format!("^{name}-[0-9]")]))?;
        Ok(parse_pkgin_search(name, &stdout(&out)))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let target = version.map_or(name.to_string(), |v| format!("{name}-{v}"));
        change(
            ctx,
            cmd("pkgin", &["-y", "install", &target]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        // pkgin's install of an installed package with a newer version upgrades it.
        change(
            ctx,
            cmd("pkgin", &["-y", "install", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pkgin", &["-y", "remove", name]),
            "removing",
            name,
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsd_outputs_parse() {
        let plan = "Updating FreeBSD repository catalogue...\nChecking for upgrades (2 candidates): 100%\n\
                    The following 1 package(s) will be affected (of 0 checked):\n\n\
                    Installed packages to be UPGRADED:\n\tnginx: 1.24.0_12,3 -> 1.26.1,3\n\n\
                    Number of packages to be upgraded: 1\n";
        assert_eq!(parse_pkg_upgrade("nginx", plan), Some("1.26.1,3".into()));
        assert_eq!(
            parse_pkg_upgrade("nginx", "Your packages are up to date.\n"),
            None
        );
        assert_eq!(
            stem_version("nginx", "inst:nginx-1.24.0p0"),
            Some("1.24.0p0".into())
        );
        assert_eq!(stem_version("nginx", "nginx-lua-1.0"), None);
        let search = "nginx-1.25.3 <  Lightweight HTTP server and mail proxy server\n\n\
                      =: package is installed and up-to-date\n<: package is installed but newer version is available\n";
        assert_eq!(parse_pkgin_search("nginx", search), Some("1.25.3".into()));
        assert_eq!(
            parse_pkgin_search("nginx", "nginx-1.25.3 =  Lightweight HTTP server\n"),
            None
        );
    }
}
