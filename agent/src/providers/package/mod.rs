//! The `package` provider: OS packages through each family's package manager.
//!
//! Every manager answers the same five questions ([`Manager`]): which version is
//! installed, is a newer one available, install (optionally a version), upgrade, remove.
//! The flow on top is shared: `present` installs when missing (or when `version` differs),
//! `latest` also upgrades when the manager reports a newer candidate, `absent` removes.
//!
//! - Package names and versions are validated (no leading `-`, no whitespace or control
//!   characters) so that they can never be read as an option.
//! - Observe mode runs only the read-only queries, asking managers not to refresh their
//!   metadata where they would (`dnf --cacheonly`, `zypper --no-refresh`, `pkg -U`).
//! - Vigo does not refresh package indexes itself (`apt-get update`): `latest` compares with
//!   the index as it is; refresh it with an exec resource on the schedule you want.
//! - Packages are changed only on a live system: a `--root` other than `/` is refused,
//!   since not every manager can install into a root.

mod apt;
mod bsd;
mod mac_win;
mod rpm;
mod small;

#[cfg(test)]
mod plan_tests;

use vigo_shared::bundle::Resource;

use super::{Change, Command, Ctx, Output, Provider, ProviderError, attr_str, check_output};
use crate::family::Family;

/// Converges `type: package` resources.
pub struct PackageProvider;

impl Provider for PackageProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &["package", "version"]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let spec = Spec::parse(res)?;
        if ctx.root != std::path::Path::new("/") {
            return Err(ProviderError(format!(
                "package `{}`: packages are installed only on a live system, not under --root {}; \
                 install them in the image build instead",
                spec.name,
                ctx.root.display()
            )));
        }
        converge(&spec, manager_for(ctx).as_ref(), ctx)
    }
}

/// What the resource asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    Present,
    Absent,
    Latest,
}

/// The desired package, validated.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub name: String,
    pub version: Option<String>,
    pub want: Want,
}

/// Checks a package name or version: it goes on the manager's argv, so it must not start
/// with `-` (an option) nor hold whitespace or control characters (which no package name
/// has, and which would smuggle extra words into tools that split).
pub(crate) fn check_word(what: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty()
        || value.starts_with('-')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ProviderError(format!(
            "{what} `{}` is not valid: it must not be empty, start with `-` or contain whitespace",
            value.escape_debug()
        )));
    }
    Ok(())
}

impl Spec {
    pub fn parse(res: &Resource) -> Result<Spec, ProviderError> {
        let name = attr_str(res, "package").unwrap_or(&res.name).to_string();
        check_word("package name", &name)?;
        let version = attr_str(res, "version").map(str::to_string);
        if let Some(v) = &version {
            check_word(&format!("version of package `{name}`"), v)?;
        }
        let want = match attr_str(res, "state").unwrap_or("present") {
            "present" => Want::Present,
            "absent" => Want::Absent,
            "latest" => Want::Latest,
            _ => {
                return Err(ProviderError(format!(
                    "package `{name}`: state must be present, absent or latest"
                )));
            }
        };
        if version.is_some() && want != Want::Present {
            return Err(ProviderError(format!(
                "package `{name}`: version goes with state: present only; remove one of them"
            )));
        }
        Ok(Spec {
            name,
            version,
            want,
        })
    }
}

/// One package manager.
pub(crate) trait Manager {
    /// The installed version, `None` when the package is not installed.
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError>;
    /// The candidate version when a newer one than `installed` is available (or
    /// `"newer"` when the manager does not say which).
    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        installed: &str,
    ) -> Result<Option<String>, ProviderError>;
    /// Installs the package, at `version` when given (up- or downgrading).
    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError>;
    /// Upgrades the installed package to the newest available version.
    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError>;
    /// Removes the package.
    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError>;
}

/// The manager of the context's family. RHEL-likes use dnf, or yum where dnf is missing
/// (RHEL/CentOS 7).
pub(crate) fn manager_for(ctx: &Ctx<'_>) -> Box<dyn Manager> {
    match ctx.family {
        Family::Debian => Box::new(apt::Apt),
        Family::Rhel if ctx.runner.has_command("dnf") => Box::new(rpm::Dnf("dnf")),
        Family::Rhel => Box::new(rpm::Dnf("yum")),
        Family::Suse => Box::new(rpm::Zypper),
        Family::Arch => Box::new(small::Pacman),
        Family::Alpine => Box::new(small::Apk),
        Family::FreeBsd => Box::new(bsd::Pkg),
        Family::OpenBsd => Box::new(bsd::PkgAdd),
        Family::NetBsd => Box::new(bsd::Pkgin),
        Family::Illumos => Box::new(small::Ips),
        Family::MacOs => Box::new(mac_win::Brew::locate(ctx)),
        Family::Windows => Box::new(mac_win::Winget),
    }
}

/// Whether `installed` satisfies the requested `wanted` version: equal, or `wanted`
/// followed by a release suffix (`1.20.1` matches rpm's `1.20.1-14.el9`, apk's
/// `1.24.0-r15`, IPS's `1.24.0,5.11-151046.0`); a Debian epoch (`1:`) may be omitted.
pub(crate) fn version_matches(installed: &str, wanted: &str) -> bool {
    let strip_epoch = |v: &str| match v.split_once(':') {
        Some((e, rest)) if e.chars().all(|c| c.is_ascii_digit()) => rest.to_string(),
        _ => v.to_string(),
    };
    let candidates = [installed.to_string(), strip_epoch(installed)];
    candidates.iter().any(|i| {
        i == wanted
            || i.strip_prefix(wanted)
                .is_some_and(|rest| rest.starts_with(['-', '+', '~', ',', '_']))
    })
}

fn converge(spec: &Spec, m: &dyn Manager, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
    let name = spec.name.as_str();
    let installed = m.query(ctx, name)?;
    let change = match (spec.want, &installed, &spec.version) {
        (Want::Absent, None, _) => None,
        (Want::Absent, Some(v), _) => {
            if !ctx.observe {
                m.remove(ctx, name)?;
            }
            Some(Change::new("state", format!("present ({v})"), "absent"))
        }
        (_, None, version) => {
            if !ctx.observe {
                m.install(ctx, name, version.as_deref())?;
            }
            let to = match (spec.want, version) {
                (_, Some(v)) => v.clone(),
                (Want::Latest, None) => "latest".to_string(),
                _ => "present".to_string(),
            };
            Some(Change::new("state", "absent", to))
        }
        (Want::Present, Some(v), Some(wanted)) if !version_matches(v, wanted) => {
            if !ctx.observe {
                m.install(ctx, name, Some(wanted))?;
            }
            Some(Change::new("version", v.clone(), wanted.clone()))
        }
        (Want::Present, Some(_), _) => None,
        (Want::Latest, Some(v), _) => match m.newer(ctx, name, v)? {
            None => None,
            Some(candidate) => {
                if !ctx.observe {
                    m.upgrade(ctx, name)?;
                }
                Some(Change::new("version", v.clone(), candidate))
            }
        },
    };
    Ok(change.into_iter().collect())
}

/// Runs a read-only query; its exit status is for the caller to interpret.
pub(crate) fn query(ctx: &Ctx<'_>, cmd: &Command) -> Result<Output, ProviderError> {
    ctx.runner.run(cmd)
}

/// Runs a changing command, failing with the manager's message unless it exits 0 (or one
/// of `also_ok`, for managers that use a status for "nothing to do").
pub(crate) fn change(
    ctx: &Ctx<'_>,
    cmd: Command,
    what: &str,
    name: &str,
    also_ok: &[i32],
) -> Result<(), ProviderError> {
    let out = ctx.runner.run(&cmd)?;
    if out.status.is_some_and(|s| also_ok.contains(&s)) {
        return Ok(());
    }
    check_output(&cmd, out, &format!("{what} package `{name}`")).map(|_| ())
}

/// A command with arguments given as owned strings.
pub(crate) fn cmd(program: &str, args: &[&str]) -> Command {
    Command::new(program, args)
}

/// The text of an output's stdout.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
