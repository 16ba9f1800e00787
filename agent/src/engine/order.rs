//! The order resources converge in: `depends_on` plus implicit dependencies, sorted
//! topologically and stably (among resources that are ready, the one earlier in the
//! bundle goes first). Resources on a dependency cycle are marked so that the engine
//! fails them; everything else still gets a place in the order.
//!
//! Implicit dependencies, each only when both resources are present (when both are
//! absent the edge is reversed — remove the file, then its directory; when one is absent
//! and the other present there is no edge):
//! - a file, directory or symlink needs the directory resource of its nearest ancestor
//!   path, and the user and group resources named by its `owner` and `group`;
//! - a user needs the group resources named by its `gid` and `groups`;
//! - a service needs the package resource of the same name;
//! - a cron job needs the user resource named by its `user`.

use std::collections::{BTreeMap, BTreeSet};

use vigo_shared::bundle::{AttrValue, Resource, ResourceKind};

use crate::providers::attr_str;

/// Why a resource cannot run because of its place in the dependency graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// It is on a dependency cycle; the message lists the cycle's members.
    Cycle(String),
    /// A `depends_on` entry names a resource that is not in the bundle.
    Missing(String),
}

/// The converge order and the dependency graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Indices into the bundle's resources, in the order to process them.
    pub order: Vec<usize>,
    /// For each resource, the resources it depends on (explicit and implicit).
    pub deps: Vec<Vec<usize>>,
    /// For each resource, whether the graph keeps it from running.
    pub blocked: Vec<Option<Blocked>>,
}

/// Builds the plan for `resources`.
pub fn plan(resources: &[Resource]) -> Plan {
    let n = resources.len();
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    let mut blocked: Vec<Option<Blocked>> = vec![None; n];

    let ids: BTreeMap<String, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id(), i))
        .collect();
    let by = |kind: ResourceKind, attr: &str| -> BTreeMap<&str, usize> {
        let mut map = BTreeMap::new();
        for (i, r) in resources.iter().enumerate().filter(|(_, r)| r.kind == kind) {
            map.entry(attr_str(r, attr).unwrap_or(&r.name)).or_insert(i);
        }
        map
    };
    let dirs = by(ResourceKind::Directory, "path");
    let users = by(ResourceKind::User, "username");
    let groups = by(ResourceKind::Group, "groupname");
    let packages = by(ResourceKind::Package, "package");

    for (i, r) in resources.iter().enumerate() {
        for dep in &r.depends_on {
            match ids.get(dep.as_str()) {
                Some(&j) => {
                    deps[i].insert(j);
                }
                None => {
                    blocked[i].get_or_insert(Blocked::Missing(dep.clone()));
                }
            }
        }
        let mut implicit = |j: Option<&usize>| {
            let Some(&j) = j else { return };
            if j == i {
                return;
            }
            match (present(r), present(&resources[j])) {
                (true, true) => {
                    deps[i].insert(j);
                }
                (false, false) => {
                    deps[j].insert(i);
                }
                _ => {}
            }
        };
        match r.kind {
            ResourceKind::File | ResourceKind::Directory | ResourceKind::Symlink => {
                let path = attr_str(r, "path").unwrap_or(&r.name);
                let mut cur = path.trim_end_matches('/');
                while let Some((parent, _)) = cur.rsplit_once('/') {
                    let parent_path = if parent.is_empty() { "/" } else { parent };
                    if let Some(j) = dirs.get(parent_path) {
                        implicit(Some(j));
                        break;
                    }
                    cur = parent;
                }
                implicit(attr_str(r, "owner").and_then(|o| users.get(o)));
                implicit(attr_str(r, "group").and_then(|g| groups.get(g)));
            }
            ResourceKind::User => {
                implicit(attr_str(r, "gid").and_then(|g| groups.get(g)));
                if let Some(AttrValue::List(names)) = r.attr("groups") {
                    for g in names {
                        implicit(groups.get(g.as_str()));
                    }
                }
            }
            ResourceKind::Service => {
                implicit(packages.get(attr_str(r, "service").unwrap_or(&r.name)));
            }
            ResourceKind::Cron => {
                implicit(users.get(attr_str(r, "user").unwrap_or("root")));
            }
            ResourceKind::Group | ResourceKind::Package | ResourceKind::Exec => {}
        }
    }

    let deps: Vec<Vec<usize>> = deps.into_iter().map(|d| d.into_iter().collect()).collect();
    let order = sort(&deps, resources, &mut blocked);
    Plan {
        order,
        deps,
        blocked,
    }
}

/// `state: absent` is the only state that removes something.
fn present(r: &Resource) -> bool {
    attr_str(r, "state") != Some("absent")
}

/// A cycle message names at most this many members.
const MAX_NAMED: usize = 8;

/// Kahn's algorithm with the lowest ready index first. When it stalls, the strongly
/// connected components of what is left are the cycles: their members are marked and
/// released so that the resources after them still get a place.
fn sort(
    deps: &[Vec<usize>],
    resources: &[Resource],
    blocked: &mut [Option<Blocked>],
) -> Vec<usize> {
    let n = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
            waiting[i] += 1;
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let Some(i) = ready.pop_first() else {
            // Stalled: every resource left waits on a cycle or is on one.
            let left: Vec<usize> = (0..n).filter(|&i| !done[i]).collect();
            let mut released = false;
            for scc in components(deps, &left, &done) {
                // A component always has at least the node it was started from.
                let cyclic = scc.len() > 1 || scc.first().is_some_and(|&k| deps[k].contains(&k));
                if !cyclic {
                    continue;
                }
                let mut names: Vec<String> = scc
                    .iter()
                    .take(MAX_NAMED)
                    .map(|&k| resources[k].id())
                    .collect();
                if scc.len() > MAX_NAMED {
                    names.push(format!("{} more", scc.len() - MAX_NAMED));
                }
                let msg = format!(
                    "dependency cycle between {}; break it by removing one depends_on",
                    names.join(", ")
                );
                for &k in &scc {
                    blocked[k] = Some(Blocked::Cycle(msg.clone()));
                    waiting[k] = 0;
                    ready.insert(k);
                    released = true;
                }
            }
            if !released {
                // Cannot happen (a stalled graph has a cycle), but never loop forever.
                ready.extend(left);
            }
            continue;
        };
        if done[i] {
            continue;
        }
        done[i] = true;
        order.push(i);
        for &j in &dependents[i] {
            if !done[j] && waiting[j] > 0 {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.insert(j);
                }
            }
        }
    }
    order
}

/// Strongly connected components among the not-done nodes `left` (Kosaraju, iterative),
/// each sorted by index.
fn components(deps: &[Vec<usize>], left: &[usize], done: &[bool]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let live = |k: usize| !done[k];
    let mut rev: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &i in left {
        for &d in deps[i].iter().filter(|&&d| live(d)) {
            rev[d].push(i);
        }
    }
    // First pass: finishing order on the dependency edges.
    let mut seen = vec![false; n];
    let mut finish = Vec::with_capacity(left.len());
    for &start in left {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((v, next)) = stack.last_mut() {
            let v = *v;
            let edges = &deps[v];
            if let Some(&w) = edges.get(*next) {
                *next += 1;
                if live(w) && !seen[w] {
                    seen[w] = true;
                    stack.push((w, 0));
                }
            } else {
                finish.push(v);
                stack.pop();
            }
        }
    }
    // Second pass: reverse edges in reverse finishing order.
    let mut comp = vec![usize::MAX; n];
    let mut out = Vec::new();
    for &start in finish.iter().rev() {
        if comp[start] != usize::MAX {
            continue;
        }
        let id = out.len();
        let mut members = vec![start];
        comp[start] = id;
        let mut stack = vec![start];
        while let Some(v) = stack.pop() {
            for &w in &rev[v] {
                if comp[w] == usize::MAX {
                    comp[w] = id;
                    members.push(w);
                    stack.push(w);
                }
            }
        }
        members.sort_unstable();
        out.push(members);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigo_shared::bundle::Attr;

    /// `spec` is `kind:name [key=value]... [>dep]...`; `key=a,b` makes a list for `groups`.
    fn res(spec: &str) -> Resource {
        let mut words = spec.split_whitespace();
        let id = words.next().expect("an id");
        let (kind, name) = id.split_once(':').expect("kind:name");
        let mut attrs = Vec::new();
        let mut depends_on = Vec::new();
        for w in words {
            if let Some(dep) = w.strip_prefix('>') {
                depends_on.push(dep.to_string());
            } else if let Some((k, v)) = w.split_once('=') {
                let value = if k == "groups" {
                    AttrValue::List(v.split(',').map(str::to_string).collect())
                } else {
                    AttrValue::Str(v.to_string())
                };
                attrs.push(Attr {
                    key: k.to_string(),
                    value,
                });
            }
        }
        attrs.sort_by(|a, b| a.key.cmp(&b.key));
        Resource {
            kind: ResourceKind::parse(kind).expect("a known kind"),
            name: name.to_string(),
            attrs,
            when: None,
            depends_on,
            notify: Vec::new(),
            compliance: Vec::new(),
            dangerous: false,
            origin: String::new(),
            module: String::new(),
            skip: None,
        }
    }

    /// Plans `specs` and renders the order, marking blocked resources.
    fn check(specs: &[&str], expected: &str) {
        let resources: Vec<Resource> = specs.iter().map(|s| res(s)).collect();
        let p = plan(&resources);
        let shown: Vec<String> = p
            .order
            .iter()
            .map(|&i| match &p.blocked[i] {
                None => resources[i].id(),
                Some(Blocked::Cycle(_)) => format!("{}!cycle", resources[i].id()),
                Some(Blocked::Missing(m)) => format!("{}!missing={m}", resources[i].id()),
            })
            .collect();
        assert_eq!(shown.join(" "), expected, "{specs:?}");
    }

    #[test]
    fn ordering() {
        // Bundle order is kept when nothing constrains it.
        check(&["exec:b", "exec:a", "exec:c"], "exec:b exec:a exec:c");
        // Explicit depends_on.
        check(
            &["exec:a >exec:c", "exec:b", "exec:c"],
            "exec:b exec:c exec:a",
        );
        // Files need their nearest ancestor directory; directories need theirs.
        check(
            &[
                "file:/etc/app/conf.d/x",
                "directory:/etc/app",
                "directory:/etc/app/conf.d",
                "file:/etc/motd",
            ],
            "directory:/etc/app directory:/etc/app/conf.d file:/etc/app/conf.d/x file:/etc/motd",
        );
        check(
            &["file:x path=/srv/a", "directory:srv path=/srv"],
            "directory:srv file:x",
        );
        check(&["file:/a/b", "directory:/"], "directory:/ file:/a/b");
        // Absent: the file goes before its directory.
        check(
            &["directory:/d state=absent", "file:/d/f state=absent"],
            "file:/d/f directory:/d",
        );
        // Mixed states: no implicit edge.
        check(
            &["file:/d/f", "directory:/d state=absent"],
            "file:/d/f directory:/d",
        );
        // Owners, groups, users' groups, services' packages, cron users.
        check(
            &[
                "file:/f owner=alice group=staff",
                "user:alice groups=sudo,adm gid=staff",
                "group:staff",
                "group:sudo",
                "group:adm",
            ],
            "group:staff group:sudo group:adm user:alice file:/f",
        );
        check(
            &["service:nginx", "package:nginx"],
            "package:nginx service:nginx",
        );
        check(
            &[
                "service:web service=nginx",
                "package:nginx-pkg package=nginx",
            ],
            "package:nginx-pkg service:web",
        );
        check(
            &["cron:backup user=bob", "user:bob"],
            "user:bob cron:backup",
        );
        check(&["cron:backup", "user:root"], "user:root cron:backup");
    }

    #[test]
    fn cycles_and_missing_dependencies() {
        check(
            &[
                "exec:a >exec:b",
                "exec:b >exec:a",
                "exec:c",
                "exec:d >exec:a",
            ],
            "exec:c exec:a!cycle exec:b!cycle exec:d",
        );
        check(&["exec:a >exec:a", "exec:b"], "exec:b exec:a!cycle");
        check(
            &[
                "exec:a >exec:b",
                "exec:b >exec:c",
                "exec:c >exec:a",
                "exec:x >exec:y",
                "exec:y >exec:x",
            ],
            "exec:a!cycle exec:b!cycle exec:c!cycle exec:x!cycle exec:y!cycle",
        );
        check(
            &["exec:a >exec:nope", "exec:b"],
            "exec:a!missing=exec:nope exec:b",
        );
        // A directory/file cycle through an explicit dependency.
        check(
            &["directory:/d >file:/d/f", "file:/d/f"],
            "directory:/d!cycle file:/d/f!cycle",
        );
    }

    #[test]
    fn deps_are_recorded_for_skip_propagation() {
        let resources: Vec<Resource> = ["directory:/d", "file:/d/f >exec:x", "exec:x"]
            .iter()
            .map(|s| res(s))
            .collect();
        assert_eq!(plan(&resources).deps, vec![vec![], vec![0, 2], vec![]]);
    }

    #[test]
    fn large_chains_do_not_overflow() {
        let specs: Vec<String> = (0..20_000)
            .map(|i| format!("exec:{i} >exec:{}", (i + 1) % 20_000))
            .collect();
        let resources: Vec<Resource> = specs.iter().map(|s| res(s)).collect();
        let p = plan(&resources);
        assert_eq!(p.order.len(), 20_000);
        assert!(
            p.blocked
                .iter()
                .all(|b| matches!(b, Some(Blocked::Cycle(_))))
        );
    }
}
