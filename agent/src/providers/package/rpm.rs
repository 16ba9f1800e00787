//! RPM families: `rpm -q` for what is installed; dnf (or yum) on RHEL-likes and zypper on
//! SUSE to change and to find updates.

use super::{Manager, change, cmd, query, stdout};
use crate::providers::{Ctx, ProviderError};

/// `rpm -q --qf '%{VERSION}-%{RELEASE}\n' NAME`: the last installed version (several for
/// multi-version packages such as kernels), `None` when not installed.
fn rpm_query(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
    let out = query(
        ctx,
        &cmd("rpm", &["-q", "--qf", "%{VERSION}-%{RELEASE}\\n", name]),
    )?;
    if !out.success() {
        return Ok(None);
    }
    Ok(stdout(&out)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string))
}

/// dnf, or yum where dnf is missing: same verbs, same exit codes.
pub struct Dnf(pub &'static str);

/// Parses `dnf check-update NAME` (exit 100 when updates exist): the candidate version
/// from the `name.arch  [epoch:]version-release  repo` line.
pub fn parse_check_update(name: &str, text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (pkg, version) = (it.next()?, it.next()?);
        let base = pkg.rsplit_once('.').map_or(pkg, |(n, _arch)| n);
        (base == name).then(|| {
            version
                .split_once(':')
                .map_or(version, |(_, v)| v)
                .to_string()
        })
    })
}

impl Manager for Dnf {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        rpm_query(ctx, name)
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        let mut args = vec!["-q"];
        if ctx.observe {
            // Do not refresh the metadata cache: observe writes nothing.
            args.push("--cacheonly");
        }
        args.extend(["check-update", name]);
        let out = query(ctx, &cmd(self.0, &args))?;
        match out.status {
            Some(100) => Ok(Some(
                parse_check_update(name, &stdout(&out)).unwrap_or_else(|| "newer".into()),
            )),
            Some(0) => Ok(None),
            _ => crate::providers::check_output(
                &cmd(self.0, &args),
                out,
                &format!("checking updates of package `{name}`"),
            )
            .map(|_| None),
        }
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        // dnf installs a given version as an up- or downgrade: `NAME-VERSION`.
        let target = version.map_or(name.to_string(), |v| format!("{name}-{v}"));
        change(
            ctx,
            cmd(self.0, &["install", "-y", &target]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        let verb = if self.0 == "yum" { "update" } else { "upgrade" };
        change(
            ctx,
            cmd(self.0, &[verb, "-y", name]),
            "upgrading",
            name,
            &[],
        )
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            cmd(self.0, &["remove", "-y", name]),
            "removing",
            name,
            &[],
        )
    }
}

/// SUSE's zypper.
pub struct Zypper;

/// Parses the table of `zypper list-updates`: `S | Repository | Name | Current | Available | Arch`.
pub fn parse_list_updates(name: &str, text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let cols: Vec<&str> = l.split('|').map(str::trim).collect();
        (cols.len() >= 5 && cols[2] == name).then(|| cols[4].to_string())
    })
}

fn zypper(ctx: &Ctx<'_>, args: &[&str]) -> crate::providers::Command {
    let mut all = vec!["--non-interactive"];
    if ctx.observe {
        all.push("--no-refresh");
    }
    all.extend_from_slice(args);
    cmd("zypper", &all)
}

impl Manager for Zypper {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        rpm_query(ctx, name)
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        let c = zypper(ctx, &["--quiet", "list-updates"]);
        let out = query(ctx, &c)?;
        let out = crate::providers::check_output(
            &c,
            out,
            &format!("checking updates of package `{name}`"),
        )?;
        Ok(parse_list_updates(name, &stdout(&out)))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let c = match version {
            Some(v) => zypper(
                ctx,
                &[
                    "install",
                    "--no-recommends",
                    "--oldpackage",
                    &format!("{name}={v}"),
                ],
            ),
            None => zypper(ctx, &["install", "--no-recommends", name]),
        };
        change(ctx, c, "installing", name, &[])
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, zypper(ctx, &["update", name]), "upgrading", name, &[])
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, zypper(ctx, &["remove", name]), "removing", name, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_listings_parse() {
        let dnf = "\nnginx.x86_64                 2:1.22.1-2.el9              appstream\n";
        assert_eq!(
            parse_check_update("nginx", dnf),
            Some("1.22.1-2.el9".into())
        );
        assert_eq!(parse_check_update("nginx-core", dnf), None);
        let zyp = "S | Repository | Name  | Current Version | Available Version | Arch\n\
                   --+------------+-------+-----------------+-------------------+-------\n\
                   v | Main       | nginx | 1.21.5-1.1      | 1.21.5-2.1        | x86_64\n";
        assert_eq!(parse_list_updates("nginx", zyp), Some("1.21.5-2.1".into()));
        assert_eq!(parse_list_updates("vim", zyp), None);
    }
}
