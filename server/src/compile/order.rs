//! Apply order: a stable topological sort of a node's resources.
//!
//! Edges come from `depends_on` and from module order: every resource of a module comes
//! after every resource of the modules it depends on. Among resources with no constraint
//! between them, the order is the order they were written in (modules in dependency order,
//! then file order), so the same config always gives the same bundle.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::config::model::{Module, ResourceDef};

/// The resources of `modules` (given dependencies first) in apply order, or the ids along
/// one dependency cycle. References to resources outside the set are ignored here (the
/// loader reports them).
pub fn order_resources<'a>(
    modules: &[&'a Module],
) -> Result<Vec<(&'a Module, &'a ResourceDef)>, Vec<String>> {
    // Nodes: resources first, then one "module done" node per module, which depends on all
    // of that module's resources and is depended on by the resources of its dependents.
    let mut items: Vec<(&Module, &ResourceDef)> = Vec::new();
    for m in modules {
        for r in &m.resources {
            items.push((m, r));
        }
    }
    let n = items.len();
    let module_node: BTreeMap<&str, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), n + i))
        .collect();
    let total = n + modules.len();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (_, r)) in items.iter().enumerate() {
        index.entry(r.id()).or_insert(i);
    }

    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (i, (m, r)) in items.iter().enumerate() {
        for d in &r.depends_on {
            if let Some(&j) = index.get(&d.name) {
                preds[i].push(j);
            }
        }
        for dep in &m.depends_on {
            if let Some(&j) = module_node.get(dep.name.as_str()) {
                preds[i].push(j);
            }
        }
        if let Some(&done) = module_node.get(m.name.as_str()) {
            preds[done].push(i);
        }
    }

    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut indegree = vec![0usize; total];
    for (i, ps) in preds.iter().enumerate() {
        for &p in ps {
            succs[p].push(i);
            indegree[i] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..total)
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut done = 0;
    while let Some(Reverse(i)) = ready.pop() {
        done += 1;
        if i < n {
            out.push(items[i]);
        }
        for &s in &succs[i] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if done == total {
        return Ok(out);
    }
    // Walk back along unfinished predecessors until a node repeats: that is a cycle.
    let name = |i: usize| {
        if i < n {
            items[i].1.id()
        } else {
            format!("module:{}", modules[i - n].name)
        }
    };
    let Some(mut at) = (0..total).find(|&i| indegree[i] > 0) else {
        return Ok(out);
    };
    let mut path: Vec<usize> = Vec::new();
    loop {
        if let Some(pos) = path.iter().position(|&p| p == at) {
            // `path` runs against the edges (each entry is a predecessor of the one
            // before), so reversing it gives the cycle in apply order; close the loop by
            // repeating its first element.
            let mut cycle: Vec<String> = path[pos..].iter().rev().map(|&i| name(i)).collect();
            if let Some(first) = cycle.first().cloned() {
                cycle.push(first);
            }
            return Err(cycle);
        }
        path.push(at);
        match preds[at].iter().copied().find(|&p| indegree[p] > 0) {
            Some(p) => at = p,
            None => return Err(vec![name(at)]),
        }
    }
}
