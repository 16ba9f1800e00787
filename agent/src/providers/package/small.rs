//! The managers with one-line answers: Arch's pacman, Alpine's apk and illumos' IPS `pkg`.

use super::{Manager, change, cmd, query, stdout};
use crate::providers::{Ctx, ProviderError};

/// Arch Linux's pacman. It installs only the repositories' current version.
pub struct Pacman;

impl Manager for Pacman {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        // `pacman -Q nginx` → `nginx 1.24.0-1`; exit 1 when not installed.
        let out = query(ctx, &cmd("pacman", &["-Q", name]))?;
        Ok(out
            .success()
            .then(|| stdout(&out).split_whitespace().nth(1).map(str::to_string))
            .flatten())
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        // `pacman -Qu nginx` → `nginx 1.24.0-1 -> 1.26.0-1`; exit 1 when up to date.
        let out = query(ctx, &cmd("pacman", &["-Qu", name]))?;
        Ok(out
            .success()
            .then(|| stdout(&out).split_whitespace().nth(3).map(str::to_string))
            .flatten())
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        if version.is_some() {
            return Err(ProviderError(format!(
                "installing package `{name}`: pacman installs only the repositories' version; remove \
                 `version` (or pin it with IgnorePkg in pacman.conf)"
            )));
        }
        change(
            ctx,
            cmd("pacman", &["-S", "--noconfirm", "--needed", name]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pacman", &["-S", "--noconfirm", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pacman", &["-R", "--noconfirm", name]),
            "removing",
            name,
            &[],
        )
    }
}

/// Alpine's apk.
pub struct Apk;

/// The version in an `apk list` line for `name`: `nginx-1.24.0-r15 x86_64 {nginx} …`.
pub fn apk_version(name: &str, text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l
            .split_whitespace()
            .next()?
            .strip_prefix(name)?
            .strip_prefix('-')?;
        rest.starts_with(|c: char| c.is_ascii_digit())
            .then(|| rest.to_string())
    })
}

impl Manager for Apk {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        let out = query(ctx, &cmd("apk", &["list", "--installed", name]))?;
        Ok(apk_version(name, &stdout(&out)))
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        // `nginx-1.26.0-r0 x86_64 {nginx} (BSD-2-Clause) [upgradable from: nginx-1.24.0-r15]`
        let out = query(ctx, &cmd("apk", &["list", "--upgradable", name]))?;
        Ok(apk_version(name, &stdout(&out)))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let target = version.map_or(name.to_string(), |v| format!("{name}={v}"));
        change(
            ctx,
            cmd("apk", &["add", "--no-cache", &target]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("apk", &["add", "--no-cache", "--upgrade", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, cmd("apk", &["del", name]), "removing", name, &[])
    }
}

/// illumos IPS. Exit status 4 means "nothing to do" for install and update.
pub struct Ips;

impl Manager for Ips {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        // `pkg list -H web/server/nginx` → `web/server/nginx  1.24.0-151046.0  i--`; exit 1
        // when not installed.
        let out = query(ctx, &cmd("pkg", &["list", "-H", name]))?;
        Ok(out
            .success()
            .then(|| stdout(&out).split_whitespace().nth(1).map(str::to_string))
            .flatten())
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        // `pkg list -Hu NAME` lists it only when a newer version is available (exit 1 when
        // not); it shows the installed version, not the candidate.
        let out = query(ctx, &cmd("pkg", &["list", "-Hu", name]))?;
        Ok((out.success() && !stdout(&out).trim().is_empty()).then(|| "newer".to_string()))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let target = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
        change(
            ctx,
            cmd("pkg", &["install", "--accept", &target]),
            "installing",
            name,
            &[4],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd("pkg", &["update", "--accept", name]),
            "upgrading",
            name,
            &[4],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, cmd("pkg", &["uninstall", name]), "removing", name, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_lines_parse() {
        let line = "nginx-1.24.0-r15 x86_64 {nginx} (BSD-2-Clause) [installed]\n";
        assert_eq!(apk_version("nginx", line), Some("1.24.0-r15".into()));
        assert_eq!(
            apk_version(
                "nginx",
                "nginx-mod-http-lua-1.24.0-r15 x86_64 {x} (BSD) [installed]\n"
            ),
            None
        );
        assert_eq!(apk_version("nginx", ""), None);
    }
}
