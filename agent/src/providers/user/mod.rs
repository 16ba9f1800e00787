//! The `user` provider: local accounts, their supplementary groups, password hash,
//! passwordless sudo and SSH keys.
//!
//! One flow for every family: read the account (from the root's files, or from `dscl` /
//! PowerShell where accounts do not live in files), diff it with the resource, apply the
//! difference with the family's tool ([`Tool`]), then converge the files that hang off the
//! account (home folder, `authorized_keys`, sudoers drop-in).
//!
//! Decisions an operator should know:
//! - Attributes that are not given are not managed (except `state`, `manage_home` and
//!   `sudo_nopasswd`, whose defaults are `present`, `true` and "no drop-in").
//! - `groups` is the exact list of supplementary groups: the user is added to the listed
//!   groups and removed from every other supplementary group. The primary group (`gid`) is
//!   separate. Omit `groups` to leave memberships alone; `groups: []` removes them all.
//! - `password` must be a crypt(3) hash; it never appears in a change, error or argv.
//! - `state: absent` keeps the home folder unless the resource is marked `dangerous`.

pub(crate) mod dscl;
pub(crate) mod files;
pub(crate) mod unix;
pub(crate) mod windows;

#[cfg(test)]
mod mac_win_plan_tests;
#[cfg(test)]
pub(crate) mod plan_tests;
#[cfg(all(test, target_os = "linux"))]
pub(crate) mod root_tests;

use vigo_shared::bundle::{AttrValue, Resource, Sensitive};

use super::{Change, Ctx, Provider, ProviderError, attr_str};
use crate::accounts::{self, ssh_keys, sudoers};
use crate::family::Family;

/// Converges `type: user` resources.
pub struct UserProvider;

impl Provider for UserProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &[
            "username",
            "uid",
            "gid",
            "comment",
            "shell",
            "home",
            "groups",
            "password",
            "sudo_nopasswd",
            "authorized_keys",
            "system",
            "manage_home",
        ]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let spec = Spec::parse(res, ctx.family)?;
        converge(&spec, Tool::for_ctx(ctx)?, ctx)
    }
}

/// The desired account, validated.
#[derive(Debug)]
pub(crate) struct Spec {
    pub name: String,
    pub present: bool,
    pub uid: Option<u32>,
    /// A group name or number, as given.
    pub gid: Option<String>,
    pub comment: Option<String>,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub groups: Option<Vec<String>>,
    pub password: Option<Sensitive>,
    pub sudo: bool,
    pub keys: Option<String>,
    pub system: bool,
    pub manage_home: bool,
    /// Remove the home folder with the account (`dangerous: true`).
    pub purge_home: bool,
}

impl Spec {
    pub fn parse(res: &Resource, family: Family) -> Result<Spec, ProviderError> {
        let name = attr_str(res, "username").unwrap_or(&res.name).to_string();
        let check_name = |what: &str, n: &str| {
            if family == Family::Windows {
                windows::check_name(what, n)
            } else {
                accounts::check_name(what, n)
            }
        };
        check_name("user", &name)?;
        let what = |attr: &str| format!("user `{name}`: {attr}");
        let bad = |attr: &str, expected: &str| {
            ProviderError(format!("user `{name}`: {attr} must be {expected}"))
        };
        let present = match attr_str(res, "state").unwrap_or("present") {
            "present" => true,
            "absent" => false,
            _ => return Err(bad("state", "present or absent")),
        };
        let uid = match res.attr("uid") {
            None => None,
            Some(AttrValue::Int(n)) => {
                Some(u32::try_from(*n).map_err(|_| bad("uid", "0 to 4294967294"))?)
            }
            Some(_) => return Err(bad("uid", "an integer")),
        };
        let gid = match res.attr("gid") {
            None => None,
            Some(AttrValue::Int(n)) => Some(n.to_string()),
            Some(AttrValue::Str(s)) => {
                if s.parse::<u32>().is_err() {
                    accounts::check_name("group", s)?;
                }
                Some(s.clone())
            }
            Some(_) => return Err(bad("gid", "a group name or number")),
        };
        let text = |key: &str| -> Result<Option<String>, ProviderError> {
            match attr_str(res, key) {
                None => Ok(None),
                Some(v) => {
                    accounts::check_field(&what(key), v)?;
                    Ok(Some(v.to_string()))
                }
            }
        };
        let comment = text("comment")?;
        let shell = text("shell")?;
        let home = text("home")?;
        for (key, path) in [("shell", &shell), ("home", &home)] {
            if path.as_deref().is_some_and(|p| !p.starts_with('/')) && family != Family::Windows {
                return Err(bad(key, "an absolute path"));
            }
        }
        let groups = match res.attr("groups") {
            None => None,
            Some(AttrValue::List(l)) => Some(l.clone()),
            Some(AttrValue::Str(s)) => Some(accounts::table::split_members(s)),
            Some(_) => return Err(bad("groups", "a list of group names")),
        };
        for g in groups.iter().flatten() {
            check_name("group", g)?;
        }
        let password = match res.attr("password") {
            None => None,
            Some(AttrValue::Sensitive(s)) => Some(s.clone()),
            Some(AttrValue::Str(s)) => Some(Sensitive::new(s.clone())),
            Some(_) => return Err(bad("password", "a crypt(3) hash")),
        };
        if let Some(p) = &password
            && !is_crypt_hash(p.expose())
        {
            return Err(ProviderError(format!(
                "user `{name}`: password is not a crypt(3) hash (such as `$6$…` from `mkpasswd -m \
                 sha-512`, or `!` to lock); Vigo never takes a plaintext password"
            )));
        }
        let flag = |key: &str, default: bool| match res.attr(key) {
            None => Ok(default),
            Some(AttrValue::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(key, "true or false")),
        };
        let keys = attr_str(res, "authorized_keys").map(str::to_string);
        if let Some(k) = &keys {
            ssh_keys::validate(k).map_err(|e| ProviderError(format!("user `{name}`: {e}")))?;
        }
        let spec = Spec {
            present,
            uid,
            gid,
            comment,
            shell,
            home,
            groups,
            password,
            sudo: flag("sudo_nopasswd", false)?,
            keys,
            system: flag("system", false)?,
            manage_home: flag("manage_home", true)?,
            purge_home: res.dangerous,
            name,
        };
        spec.check_supported(family)?;
        Ok(spec)
    }

    /// Refuses attributes the family's account system has no place for, instead of
    /// silently ignoring them.
    fn check_supported(&self, family: Family) -> Result<(), ProviderError> {
        let unsupported: &[(&str, bool)] = match family {
            Family::Windows => &[
                ("uid", self.uid.is_some()),
                ("gid", self.gid.is_some()),
                ("shell", self.shell.is_some()),
                ("home", self.home.is_some()),
                ("password", self.password.is_some()),
                ("sudo_nopasswd", self.sudo),
                ("authorized_keys", self.keys.is_some()),
            ],
            // macOS keeps passwords as salted PBKDF2 in ShadowHashData, not crypt(3).
            Family::MacOs => &[("password", self.password.is_some())],
            _ => &[],
        };
        match unsupported.iter().find(|(_, set)| *set) {
            Some((attr, _)) => Err(ProviderError(format!(
                "user `{}`: {attr} is not supported on {family}; remove it or guard the resource \
                 with `when: \"!os_family('{family}')\"`",
                self.name
            ))),
            None => Ok(()),
        }
    }

    /// The home folder a new account gets when `home` is not given.
    pub fn default_home(&self, family: Family) -> String {
        match family {
            Family::MacOs => format!("/Users/{}", self.name),
            _ => format!("/home/{}", self.name),
        }
    }
}

/// Whether `h` is a crypt(3) hash (`$id$…`, a 13-character DES hash) or a locked/disabled
/// marker (`!`, `*`, or either before a hash). Plaintext is refused by this check.
pub(crate) fn is_crypt_hash(h: &str) -> bool {
    let body = h.trim_start_matches(['!', '*']);
    if body.is_empty() {
        return !h.is_empty();
    }
    let charset =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '$' | '=' | ',' | '+' | '-');
    if !body.chars().all(charset) {
        return false;
    }
    if let Some(rest) = body.strip_prefix('$') {
        return rest.split('$').count() >= 3 && rest.split('$').all(|p| !p.is_empty());
    }
    body.len() == 13 && !body.contains('$')
}

/// A user's current account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Current {
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
    /// The password hash, when the family lets us read it.
    pub hash: Option<String>,
}

/// A group as the user provider sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupInfo {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// What was read before deciding: the account, the groups (all of them, or on Windows
/// those the user belongs to) and the uids in use (for allocating one).
#[derive(Clone, Debug, Default)]
pub(crate) struct World {
    pub user: Option<Current>,
    pub groups: Vec<GroupInfo>,
    pub uids: Vec<u32>,
}

impl World {
    pub fn gid_of(&self, group: &str) -> Option<u32> {
        group
            .parse()
            .ok()
            .or_else(|| self.groups.iter().find(|g| g.name == group).map(|g| g.gid))
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// The supplementary groups of `user`, in the order the groups are listed.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.name.clone())
            .collect()
    }
}

/// One field of an existing account that must change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Delta {
    Uid(u32),
    /// The group as given (name or number) and its gid when known.
    Gid(String),
    Comment(String),
    Home(String),
    Shell(String),
    /// The exact list of supplementary groups.
    Groups(Vec<String>),
    Password,
}

/// How a family's accounts are changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tool {
    /// Direct edits of passwd/shadow/group/gshadow under the root, with locking.
    Files,
    /// useradd/usermod/userdel (Linux, NetBSD, OpenBSD, illumos).
    Useradd,
    /// FreeBSD's pw; `rooted` adds `-R ROOT`.
    Pw { rooted: bool },
    /// macOS dscl.
    Dscl,
    /// Windows PowerShell and `net localgroup`.
    Windows,
}

impl Tool {
    /// The tool for the context: the native one on a live system (`root` is `/`); under
    /// another root, direct file edits where the files are the whole truth (Linux, illumos)
    /// and `pw -R` on FreeBSD.
    ///
    /// Why file edits rather than `useradd --prefix`: the edits are the same code on every
    /// host (an image may be built on a host without shadow-utils, or with a different
    /// version), they never consult the host's NSS, PAM or login.defs, and they keep every
    /// line Vigo does not manage byte-identical. They follow shadow-utils' conventions
    /// (locks, `file-` backups, id ranges from the root's login.defs).
    pub fn for_ctx(ctx: &Ctx<'_>) -> Result<Tool, ProviderError> {
        if ctx.root == std::path::Path::new("/") {
            return Ok(Tool::native(ctx.family));
        }
        match ctx.family {
            Family::FreeBsd => Ok(Tool::Pw { rooted: true }),
            f if f.is_linux() || f == Family::Illumos => Ok(Tool::Files),
            f => Err(ProviderError(format!(
                "managing users under --root {}: not supported for {f}; converge such a root \
                 from inside the system",
                ctx.root.display()
            ))),
        }
    }

    /// The family's own tool, used on a live system.
    pub fn native(family: Family) -> Tool {
        match family {
            Family::FreeBsd => Tool::Pw { rooted: false },
            Family::MacOs => Tool::Dscl,
            Family::Windows => Tool::Windows,
            _ => Tool::Useradd,
        }
    }

    fn read(self, ctx: &Ctx<'_>, name: &str) -> Result<World, ProviderError> {
        match self {
            Tool::Files | Tool::Useradd | Tool::Pw { .. } => files::read(ctx, name),
            Tool::Dscl => dscl::read(ctx, name),
            Tool::Windows => windows::read(ctx, name),
        }
    }
}

fn converge(spec: &Spec, tool: Tool, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
    let world = tool.read(ctx, &spec.name)?;
    let mut changes = Vec::new();
    let mut applied = false;
    match (&world.user, spec.present) {
        (None, false) => {}
        (Some(cur), false) => {
            changes.push(Change::new("state", "present", "absent"));
            if !ctx.observe {
                match tool {
                    Tool::Files => files::delete(ctx, spec, cur)?,
                    Tool::Useradd | Tool::Pw { .. } => unix::delete(ctx, tool, spec)?,
                    Tool::Dscl => dscl::delete(ctx, spec, &world, cur)?,
                    Tool::Windows => windows::delete(ctx, spec)?,
                }
            }
        }
        (None, true) => {
            changes.push(Change::new("state", "absent", "present"));
            if let Some(missing) = missing_group(spec, &world, tool)
                && !ctx.observe
            {
                return Err(missing);
            }
            if !ctx.observe {
                match tool {
                    Tool::Files => files::create(ctx, spec)?,
                    Tool::Useradd | Tool::Pw { .. } => unix::create(ctx, tool, spec, &world)?,
                    Tool::Dscl => dscl::create(ctx, spec, &world)?,
                    Tool::Windows => windows::create(ctx, spec)?,
                }
                applied = true;
            }
        }
        (Some(cur), true) => {
            let deltas = diff(spec, cur, &world, tool);
            changes.extend(deltas.iter().map(|d| describe(d, cur, spec, &world)));
            if !deltas.is_empty() && !ctx.observe {
                if let Some(missing) = missing_group(spec, &world, tool) {
                    return Err(missing);
                }
                match tool {
                    Tool::Files => files::modify(ctx, spec, &deltas)?,
                    Tool::Useradd | Tool::Pw { .. } => {
                        unix::modify(ctx, tool, spec, &deltas, &world)?
                    }
                    Tool::Dscl => dscl::modify(ctx, spec, &deltas, &world)?,
                    Tool::Windows => windows::modify(ctx, spec, &deltas, &world)?,
                }
                applied = true;
            }
        }
    }
    if tool != Tool::Windows {
        if spec.present {
            let account = if applied {
                tool.read(ctx, &spec.name)?.user
            } else {
                world.user.clone()
            };
            changes.extend(converge_files(ctx, spec, tool, account.as_ref())?);
        }
        changes.extend(sudoers::converge(
            ctx,
            &spec.name,
            spec.present && spec.sudo,
        )?);
    }
    Ok(changes)
}

/// The first listed group (primary or supplementary) that does not exist, as an error.
fn missing_group(spec: &Spec, world: &World, tool: Tool) -> Option<ProviderError> {
    if tool == Tool::Windows {
        // Windows reads only the user's own groups; `net localgroup` reports missing ones.
        return None;
    }
    let primary = spec.gid.iter().filter(|g| world.gid_of(g).is_none());
    let extra = spec
        .groups
        .iter()
        .flatten()
        .filter(|g| !world.groups.iter().any(|w| &w.name == *g));
    primary.chain(extra).next().map(|g| {
        ProviderError(format!(
            "user `{}`: group `{g}` does not exist; declare it as a group resource (the engine \
             converges groups a user names first) or create it",
            spec.name
        ))
    })
}

/// The fields of `cur` that differ from `spec`.
fn diff(spec: &Spec, cur: &Current, world: &World, tool: Tool) -> Vec<Delta> {
    let mut d = Vec::new();
    if let Some(uid) = spec.uid
        && uid != cur.uid
    {
        d.push(Delta::Uid(uid));
    }
    if let Some(g) = &spec.gid
        && world.gid_of(g) != Some(cur.gid)
    {
        d.push(Delta::Gid(g.clone()));
    }
    let text = [
        (
            &spec.comment,
            &cur.comment,
            Delta::Comment as fn(String) -> Delta,
        ),
        (&spec.home, &cur.home, Delta::Home),
        (&spec.shell, &cur.shell, Delta::Shell),
    ];
    for (want, have, make) in text {
        if let Some(w) = want
            && w != have
        {
            d.push(make(w.clone()));
        }
    }
    if let Some(want) = &spec.groups {
        let mut have = world.groups_of(&spec.name);
        let mut want_sorted = want.clone();
        have.sort();
        have.dedup();
        want_sorted.sort();
        want_sorted.dedup();
        if have != want_sorted {
            d.push(Delta::Groups(want.clone()));
        }
    }
    if let Some(p) = &spec.password
        && tool != Tool::Windows
        && cur.hash.as_deref() != Some(p.expose())
    {
        d.push(Delta::Password);
    }
    d
}

/// The report line for a delta. Passwords are always `<redacted>`.
fn describe(d: &Delta, cur: &Current, spec: &Spec, world: &World) -> Change {
    let gid_name = |gid: u32| match world.group_name(gid) {
        Some(n) => format!("{n} ({gid})"),
        None => gid.to_string(),
    };
    match d {
        Delta::Uid(u) => Change::new("uid", cur.uid.to_string(), u.to_string()),
        Delta::Gid(g) => Change::new(
            "gid",
            gid_name(cur.gid),
            match world.gid_of(g) {
                Some(id) if g.parse::<u32>().is_err() => format!("{g} ({id})"),
                _ => g.clone(),
            },
        ),
        Delta::Comment(c) => Change::new("comment", cur.comment.clone(), c.clone()),
        Delta::Home(h) => Change::new("home", cur.home.clone(), h.clone()),
        Delta::Shell(s) => Change::new("shell", cur.shell.clone(), s.clone()),
        Delta::Groups(g) => Change::new(
            "groups",
            world.groups_of(&spec.name).join(", "),
            g.join(", "),
        ),
        Delta::Password => {
            let from = match cur.hash.as_deref() {
                None => "absent",
                Some(h) if h.is_empty() || h.starts_with(['!', '*']) => "locked",
                Some(_) => "<redacted>",
            };
            Change::new("password", from, "<redacted>")
        }
    }
}

/// Home folder and authorized_keys of an account that exists (or, in observe mode, is
/// about to).
fn converge_files(
    ctx: &Ctx<'_>,
    spec: &Spec,
    tool: Tool,
    account: Option<&Current>,
) -> Result<Vec<Change>, ProviderError> {
    let Some(acct) = account else {
        if ctx.observe {
            // The account does not exist yet; its creation is already reported, and so are
            // the keys it would get.
            let keys = spec
                .keys
                .as_deref()
                .map(|k| Change::new("authorized_keys", "absent", ssh_keys::describe(k)));
            return Ok(keys.into_iter().collect());
        }
        return Err(ProviderError(format!(
            "user `{}`: the account is still missing after creating it; check the system's \
             account tools",
            spec.name
        )));
    };
    let mut changes = Vec::new();
    let home_dir = ctx.path(&acct.home);
    if spec.manage_home && !acct.home.is_empty() && acct.home != "/" && !home_dir.exists() {
        changes.push(Change::new("home_dir", "absent", acct.home.clone()));
        if !ctx.observe {
            files::make_home(ctx, spec, tool, acct)?;
        }
    }
    if let Some(keys) = &spec.keys {
        changes.extend(ssh_keys::converge(
            ctx, &acct.home, acct.uid, acct.gid, keys,
        )?);
    }
    Ok(changes)
}
