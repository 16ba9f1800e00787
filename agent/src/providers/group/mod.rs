//! The `group` provider: local groups, their gid and (optionally) their exact member list.
//!
//! Same split as users: the family's tool on a live system, direct edits of group/gshadow
//! under another root (see [`crate::providers::user`]'s `Tool`). Decisions:
//! - `members` is the exact list of supplementary members when given; omitted, membership
//!   is left alone (users may manage their own with `groups:`). Manage a membership from
//!   one side only: a group's `members` and a user's `groups` are both exact and would undo
//!   each other.
//! - A listed member that is not (yet) a user is left out instead of failing, on the
//!   families where users are known (files-based): the engine converges a user after the
//!   groups it names, so the member is added on the next run once the user exists.
//! - `system: true` picks the gid from the system range when `gid` is not given.

mod native;

#[cfg(test)]
mod plan_tests;
#[cfg(all(test, target_os = "linux"))]
mod root_tests;

use vigo_shared::bundle::{AttrValue, Resource};

use super::user::{GroupInfo, Tool, dscl, windows};
use super::{Change, Ctx, Provider, ProviderError, attr_str, run_checked};
use crate::accounts::{self, Db};
use crate::family::Family;

/// Converges `type: group` resources.
pub struct GroupProvider;

impl Provider for GroupProvider {
    fn attributes(&self) -> &'static [&'static str] {
        &["groupname", "gid", "members", "system"]
    }

    fn converge(&self, res: &Resource, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
        let spec = Spec::parse(res, ctx.family)?;
        converge(&spec, Tool::for_ctx(ctx)?, ctx)
    }
}

/// The desired group, validated.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub name: String,
    pub present: bool,
    pub gid: Option<u32>,
    pub members: Option<Vec<String>>,
    pub system: bool,
}

impl Spec {
    pub fn parse(res: &Resource, family: Family) -> Result<Spec, ProviderError> {
        let name = attr_str(res, "groupname").unwrap_or(&res.name).to_string();
        let check = |what: &str, n: &str| {
            if family == Family::Windows {
                windows::check_name(what, n)
            } else {
                accounts::check_name(what, n)
            }
        };
        check("group", &name)?;
        let bad = |attr: &str, expected: &str| {
            ProviderError(format!("group `{name}`: {attr} must be {expected}"))
        };
        let present = match attr_str(res, "state").unwrap_or("present") {
            "present" => true,
            "absent" => false,
            _ => return Err(bad("state", "present or absent")),
        };
        let gid = match res.attr("gid") {
            None => None,
            Some(AttrValue::Int(n)) => {
                Some(u32::try_from(*n).map_err(|_| bad("gid", "0 to 4294967294"))?)
            }
            Some(_) => return Err(bad("gid", "an integer")),
        };
        if gid.is_some() && family == Family::Windows {
            return Err(ProviderError(format!(
                "group `{name}`: gid is not supported on windows; remove it or guard the resource with `when:`"
            )));
        }
        let members = match res.attr("members") {
            None => None,
            Some(AttrValue::List(l)) => Some(l.clone()),
            Some(AttrValue::Str(s)) => Some(accounts::table::split_members(s)),
            Some(_) => return Err(bad("members", "a list of user names")),
        };
        for m in members.iter().flatten() {
            check("user", m)?;
        }
        let system = match res.attr("system") {
            None => false,
            Some(AttrValue::Bool(b)) => *b,
            Some(_) => return Err(bad("system", "true or false")),
        };
        Ok(Spec {
            name,
            present,
            gid,
            members,
            system,
        })
    }
}

/// What was read: the group, every group (for allocating a gid and for per-user
/// membership lists) and the users when known.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupWorld {
    pub group: Option<GroupInfo>,
    pub all: Vec<GroupInfo>,
    pub users: Option<Vec<String>>,
}

impl GroupWorld {
    /// The supplementary groups of `user`.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.all
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.name.clone())
            .collect()
    }
}

fn read(ctx: &Ctx<'_>, tool: Tool, spec: &Spec) -> Result<GroupWorld, ProviderError> {
    match tool {
        Tool::Files | Tool::Useradd | Tool::Pw { .. } => {
            let db = Db::load(ctx.root, ctx.family)?;
            let all: Vec<GroupInfo> = db
                .groups()?
                .into_iter()
                .map(|g| GroupInfo {
                    name: g.name,
                    gid: g.gid,
                    members: g.members,
                })
                .collect();
            let users = db.users()?.into_iter().map(|u| u.name).collect();
            Ok(GroupWorld {
                group: all.iter().find(|g| g.name == spec.name).cloned(),
                all,
                users: Some(users),
            })
        }
        Tool::Dscl => {
            let all = dscl::read_groups(ctx)?;
            Ok(GroupWorld {
                group: all.iter().find(|g| g.name == spec.name).cloned(),
                all,
                users: None,
            })
        }
        Tool::Windows => {
            let out = run_checked(
                ctx,
                &windows::powershell(&read_script(&spec.name)),
                &format!("reading group `{}`", spec.name),
            )?;
            Ok(GroupWorld {
                group: parse_windows(&spec.name, &String::from_utf8_lossy(&out.stdout)),
                all: Vec::new(),
                users: None,
            })
        }
    }
}

pub(crate) fn read_script(name: &str) -> String {
    let n = windows::ps_quote(name);
    format!(
        "$g = Get-LocalGroup -Name {n} -ErrorAction SilentlyContinue; \
         if ($null -eq $g) {{ 'absent'; exit 0 }}; 'present'; \
         foreach ($m in @(Get-LocalGroupMember -Group {n} -ErrorAction SilentlyContinue)) {{ \
         'member=' + ($m.Name -split '\\\\')[-1] }}"
    )
}

fn parse_windows(name: &str, text: &str) -> Option<GroupInfo> {
    if !text.lines().any(|l| l.trim() == "present") {
        return None;
    }
    let members = text
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("member="))
        .map(str::to_string)
        .collect();
    Some(GroupInfo {
        name: name.to_string(),
        gid: 0,
        members,
    })
}

/// Whether two member lists hold the same names (Windows names ignore case).
fn same_members(family: Family, a: &[String], b: &[String]) -> bool {
    let norm = |l: &[String]| {
        let mut v: Vec<String> = l
            .iter()
            .map(|m| {
                if family == Family::Windows {
                    m.to_lowercase()
                } else {
                    m.clone()
                }
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

fn converge(spec: &Spec, tool: Tool, ctx: &Ctx<'_>) -> Result<Vec<Change>, ProviderError> {
    let world = read(ctx, tool, spec)?;
    // Members that are not users yet are left for a later run (see the module comment).
    let members: Option<Vec<String>> = spec.members.as_ref().map(|m| match &world.users {
        Some(users) => m.iter().filter(|u| users.contains(u)).cloned().collect(),
        None => m.clone(),
    });
    let mut changes = Vec::new();
    match (&world.group, spec.present) {
        (None, false) => {}
        (Some(_), false) => {
            changes.push(Change::new("state", "present", "absent"));
            if !ctx.observe {
                native::delete(ctx, tool, spec)?;
            }
        }
        (None, true) => {
            changes.push(Change::new("state", "absent", "present"));
            if !ctx.observe {
                native::create(ctx, tool, spec, &world, members.as_deref().unwrap_or(&[]))?;
            }
        }
        (Some(g), true) => {
            let gid = spec.gid.filter(|gid| *gid != g.gid);
            let members = members.filter(|m| !same_members(ctx.family, &g.members, m));
            if let Some(gid) = gid {
                changes.push(Change::new("gid", g.gid.to_string(), gid.to_string()));
            }
            if let Some(m) = &members {
                changes.push(Change::new("members", g.members.join(", "), m.join(", ")));
            }
            if !ctx.observe && (gid.is_some() || members.is_some()) {
                native::modify(ctx, tool, spec, &world, gid, members.as_deref())?;
            }
        }
    }
    Ok(changes)
}
