//! The FleetIndex: every enrolled node's key, sequence number, facts and cached bundle, in
//! memory. A check-in reads and updates only this; what must become durable (facts,
//! results, sequence numbers) is recorded in the [`Dirty`] set, which a background task
//! writes to SQLite in batches ([`crate::store::Db::flush`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use vigo_shared::sign::{BundleHash, PublicKey};

use crate::compile::inputs::Inputs;
use crate::daemon::verify::{EdwardsPoint, decompress};
use crate::store::{Batch, NodeRow};
use crate::trace::Trace;

/// What the index remembers of a node's last compiled bundle: enough to answer a no-change
/// check-in ("unchanged") without compiling, but not the bundle itself. Keeping every
/// node's signed bundle (kilobytes each, unique per node because secrets are sealed to the
/// node's key) would cost more memory than everything else a node has; a check-in that
/// needs the bytes recompiles, which gives the same bytes (compiling and sealing are
/// deterministic) for a few milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleMemo {
    /// The canonical hash the agent reports back.
    pub hash: BundleHash,
    /// The generation of the policy it was compiled from (`daemon::Policy`): after a
    /// publish it differs from the one served, and the next check-in recompiles.
    pub generation: u64,
    /// The names of the facts the node's policy read: a change in any other fact keeps
    /// this bundle. Shared between the nodes that read the same facts
    /// ([`FleetIndex::intern_facts_used`]).
    pub facts_used: Arc<BTreeSet<String>>,
    /// Whether it was compiled with the node's facts (else fact conditions went to the agent).
    pub with_facts: bool,
    /// The parts of the config the compile read (`compile::inputs`): a publish that
    /// changes none of them keeps this bundle. `None`: recompile after any publish.
    /// Shared like `facts_used` ([`FleetIndex::intern_inputs`]).
    pub inputs: Option<Arc<Inputs>>,
}

/// A freshly compiled bundle: the bytes for this answer and the memo for the index.
pub struct CompiledBundle {
    /// The signed envelope, base64, as the check-in answer carries it.
    pub base64: String,
    /// What the index keeps.
    pub memo: BundleMemo,
}

/// A node's facts as the text of a compact JSON object. A parsed map of a dozen facts takes
/// ~2 KB of heap (a node, a `String` and a `Value` per fact); the text takes ~300 bytes.
/// It is parsed only when a check-in changes facts or a compile reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FactsText(Box<str>);

impl FactsText {
    /// The text of `map`.
    pub fn from_map(map: &serde_json::Map<String, serde_json::Value>) -> FactsText {
        // Serializing a map of JSON values cannot fail (string keys, no custom Serialize).
        FactsText(
            serde_json::to_string(map)
                .unwrap_or_default()
                .into_boxed_str(),
        )
    }

    /// Takes stored text, if it is a JSON object.
    pub fn parse(text: &str) -> Option<FactsText> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
        Some(FactsText::from_map(&map))
    }

    /// The facts as a map (empty for the default, empty text).
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    /// The JSON text (`{}` for no facts).
    pub fn as_json(&self) -> &str {
        if self.0.is_empty() { "{}" } else { &self.0 }
    }
}

/// One node in memory.
pub struct NodeEntry {
    /// When this enrollment of the name happened (Unix microseconds); results and
    /// progress are stored under it so a re-enrolled node starts afresh.
    pub enrolled: u64,
    /// The node's key, parsed once at load or enrollment.
    pub key: PublicKey,
    /// The key decompressed to a curve point, once, for the signature checks of its
    /// check-ins (~8 µs each time otherwise; 168 bytes). `None` if it is no point (only a
    /// row enrolled before keys were checked could be): its signatures never verify.
    pub point: Option<EdwardsPoint>,
    /// The last request sequence number accepted.
    pub last_seq: u64,
    /// The node's facts (JSON values as the agent sent them).
    pub facts: FactsText,
    /// Whether `facts` holds a full set (from a full report or the database).
    pub facts_known: bool,
    /// The last compiled bundle, until a publish or a used fact changes.
    pub bundle: Option<BundleMemo>,
    /// The highest result sequence number taken into the dirty set.
    pub results_accepted: u64,
    /// The highest result sequence number durably stored.
    pub results_stored: u64,
    /// Revoked nodes are refused on every request.
    pub revoked: bool,
}

/// What is waiting to be written.
#[derive(Default)]
pub struct Dirty {
    facts: HashMap<String, String>,
    results: Vec<(String, u64, u64, String)>,
    /// node -> (enrollment, last seq, results stored, check-in time)
    progress: HashMap<String, (u64, u64, u64, u64)>,
}

impl Dirty {
    /// Records a node's new facts (replacing any not yet written).
    pub fn facts(&mut self, node: &str, json: String) {
        self.facts.insert(node.to_string(), json);
    }

    /// Records one run result of a node's enrollment.
    pub fn result(&mut self, node: &str, enrollment: u64, seq: u64, report: String) {
        self.results
            .push((node.to_string(), enrollment, seq, report));
    }

    /// Records a node's progress: last sequence number and check-in time.
    pub fn progress(&mut self, node: &str, enrollment: u64, seq: u64, at: u64) {
        // Most check-ins find their node here already: no key is allocated for them.
        let p = match self.progress.get_mut(node) {
            Some(p) => p,
            None => self.progress.entry(node.to_string()).or_default(),
        };
        if p.0 != enrollment {
            *p = (enrollment, 0, 0, 0);
        }
        p.1 = p.1.max(seq);
        p.3 = at;
    }

    /// Puts back a batch whose write failed, under anything recorded since (which is
    /// newer), so that the next flush retries it and no result is lost.
    pub fn restore(&mut self, batch: Batch) {
        for (node, json) in batch.facts {
            self.facts.entry(node).or_insert(json);
        }
        let newer = std::mem::replace(&mut self.results, batch.results);
        self.results.extend(newer);
        for (node, enrollment, seq, stored, at) in batch.nodes {
            let p = self
                .progress
                .entry(node)
                .or_insert((enrollment, seq, stored, at));
            if p.0 == enrollment {
                p.1 = p.1.max(seq);
                p.2 = p.2.max(stored);
            }
        }
    }

    /// Takes what is recorded so far as one batch: facts and results, and with them the
    /// progress of the nodes whose results they are (their `results_stored` acknowledges
    /// them); the progress of every other node too when `all_progress`.
    pub fn take(&mut self, all_progress: bool) -> Batch {
        let mut progress = if all_progress {
            std::mem::take(&mut self.progress)
        } else {
            let mut with_results = HashMap::new();
            for (node, _, _, _) in &self.results {
                if let Some((node, p)) = self.progress.remove_entry(node.as_str()) {
                    with_results.insert(node, p);
                }
            }
            with_results
        };
        // Every result has a progress record: `progress` runs in the same check-in.
        for (node, enrollment, seq, _) in &self.results {
            if let Some(p) = progress.get_mut(node).filter(|p| p.0 == *enrollment) {
                p.2 = p.2.max(*seq);
            }
        }
        Batch {
            facts: std::mem::take(&mut self.facts).into_iter().collect(),
            results: std::mem::take(&mut self.results),
            nodes: progress
                .into_iter()
                .map(|(node, (enrollment, seq, stored, at))| (node, enrollment, seq, stored, at))
                .collect(),
        }
    }
}

/// The in-memory fleet.
#[derive(Default)]
pub struct FleetIndex {
    nodes: Mutex<HashMap<String, NodeEntry>>,
    dirty: Mutex<Dirty>,
    /// Distinct `facts_used` sets, shared by the memos of every node that has one.
    facts_used: Pool<BTreeSet<String>>,
    /// Distinct compile inputs, likewise.
    inputs: Pool<Inputs>,
}

/// Shared copies of values many nodes hold alike: one `Arc` per distinct value. Values no
/// memo holds any more are dropped when the pool grows past a bound.
struct Pool<T>(Mutex<std::collections::HashSet<Arc<T>>>);

impl<T> Default for Pool<T> {
    fn default() -> Pool<T> {
        Pool(Mutex::default())
    }
}

impl<T: Eq + std::hash::Hash> Pool<T> {
    /// Distinct values kept before unused ones are dropped.
    const BOUND: usize = 1024;

    fn intern(&self, value: T) -> Arc<T> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = pool.get(&value) {
            return shared.clone();
        }
        if pool.len() >= Self::BOUND {
            pool.retain(|s| Arc::strong_count(s) > 1);
        }
        let shared = Arc::new(value);
        pool.insert(shared.clone());
        shared
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl FleetIndex {
    /// Builds the index from the database rows read at start.
    pub fn from_rows(rows: Vec<NodeRow>) -> FleetIndex {
        let index = FleetIndex::default();
        {
            let mut nodes = index.nodes();
            for row in rows {
                let Ok(key) = PublicKey::parse(&row.public_key) else {
                    eprintln!(
                        "vigo-server: node {} has an unreadable public key in the database; it cannot check in until re-enrolled",
                        row.name
                    );
                    continue;
                };
                let facts = row.facts.as_deref().and_then(FactsText::parse);
                nodes.insert(
                    row.name,
                    NodeEntry {
                        enrolled: row.enrolled,
                        point: decompress(key.as_bytes()),
                        key,
                        last_seq: row.last_seq,
                        facts_known: facts.is_some(),
                        facts: facts.unwrap_or_default(),
                        bundle: None,
                        results_accepted: row.results_stored,
                        results_stored: row.results_stored,
                        revoked: row.revoked,
                    },
                );
            }
        }
        index
    }

    /// The nodes, locked. Held only for in-memory work, never across I/O or compiles.
    pub fn nodes(&self) -> MutexGuard<'_, HashMap<String, NodeEntry>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dirty set, locked.
    pub fn dirty(&self) -> MutexGuard<'_, Dirty> {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces, after revocation) an enrolled node.
    pub fn enroll(&self, name: &str, key: PublicKey, enrolled: u64) {
        self.nodes().insert(
            name.to_string(),
            NodeEntry {
                enrolled,
                point: decompress(key.as_bytes()),
                key,
                last_seq: 0,
                facts: FactsText::default(),
                facts_known: false,
                bundle: None,
                results_accepted: 0,
                results_stored: 0,
                revoked: false,
            },
        );
    }

    /// The shared copy of `set`: nodes whose policies read the same facts share one set.
    pub fn intern_facts_used(&self, set: BTreeSet<String>) -> Arc<BTreeSet<String>> {
        self.facts_used.intern(set)
    }

    /// The shared copy of `inputs`: nodes a config treats alike share one.
    pub fn intern_inputs(&self, inputs: Inputs) -> Arc<Inputs> {
        self.inputs.intern(inputs)
    }

    /// After a flush: results up to these sequence numbers are durable.
    pub fn mark_stored(&self, batch: &Batch) {
        let mut nodes = self.nodes();
        for (node, enrollment, _, stored, _) in &batch.nodes {
            if let Some(e) = nodes.get_mut(node).filter(|e| e.enrolled == *enrollment) {
                e.results_stored = e.results_stored.max(*stored);
            }
        }
    }
}

/// The fact names a compiled policy read: those its conditions read (including the
/// implicit ones of builtins, e.g. `os_family()` reads `os_family`, `hostname_matches()`
/// reads `hostname`; see `vigo_shared::when::facts_used`) and the `facts.*` paths its
/// templates read. `*` stands for "any fact" (a template that reads all of `facts`, or a
/// condition that no longer parses), which makes every fact change recompile.
pub fn facts_used(trace: &Trace, rule_conditions: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let conditions = rule_conditions.iter().copied().chain(
        trace
            .resources
            .iter()
            .flat_map(|r| r.conditions.iter().map(|c| c.expr.as_str())),
    );
    for text in conditions {
        match vigo_shared::when::parse(text) {
            Ok(expr) => out.extend(vigo_shared::when::facts_used(&expr)),
            Err(_) => {
                out.insert("*".to_string());
            }
        }
    }
    for r in &trace.resources {
        for t in &r.template {
            match t.path.strip_prefix("facts.") {
                Some(f) => {
                    out.insert(f.split(['.', '[']).next().unwrap_or(f).to_string());
                }
                None if t.path == "facts" => {
                    out.insert("*".to_string());
                }
                None => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_carries_the_highest_result_per_enrollment_and_survives_a_failed_write() {
        let mut dirty = Dirty::default();
        dirty.progress("a", 7, 100, 1);
        dirty.result("a", 7, 1, "{}".into());
        dirty.result("a", 7, 2, "{}".into());
        dirty.progress("a", 7, 101, 2);
        let batch = dirty.take(true);
        assert_eq!(batch.results.len(), 2);
        assert_eq!(batch.nodes, vec![("a".to_string(), 7, 101, 2, 2)]);
        assert!(dirty.take(true).is_empty());

        // The write failed; a newer result arrived meanwhile.
        dirty.progress("a", 7, 102, 3);
        dirty.result("a", 7, 3, "{}".into());
        dirty.restore(batch);
        let retry = dirty.take(false);
        let seqs: Vec<u64> = retry.results.iter().map(|r| r.2).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(retry.nodes, vec![("a".to_string(), 7, 102, 3, 3)]);
    }

    /// Progress alone waits for a batch that takes all progress; progress of a node with
    /// results goes with them, since its `results_stored` acknowledges them.
    #[test]
    fn progress_without_results_waits_for_its_interval() {
        let mut dirty = Dirty::default();
        dirty.progress("with-result", 1, 10, 100);
        dirty.result("with-result", 1, 4, "{}".into());
        dirty.progress("facts-only", 2, 20, 100);
        dirty.facts("facts-only", "{\"os\":\"debian\"}".into());
        dirty.progress("no-change", 3, 30, 100);

        let batch = dirty.take(false);
        assert_eq!(batch.results.len(), 1);
        assert_eq!(batch.facts.len(), 1);
        assert_eq!(
            batch.nodes,
            vec![("with-result".to_string(), 1, 10, 4, 100)]
        );

        // Later check-ins raise what is waiting; the next full take has the latest.
        dirty.progress("no-change", 3, 31, 101);
        dirty.progress("with-result", 1, 11, 101);
        assert!(dirty.take(false).is_empty());
        let mut all = dirty.take(true);
        all.nodes.sort();
        assert_eq!(
            all.nodes,
            vec![
                ("facts-only".to_string(), 2, 20, 0, 100),
                ("no-change".to_string(), 3, 31, 0, 101),
                ("with-result".to_string(), 1, 11, 0, 101),
            ]
        );
        assert!(dirty.take(true).is_empty());
    }
}

#[cfg(test)]
mod interning_tests {
    use super::*;

    #[test]
    fn equal_fact_sets_are_shared_and_unused_ones_dropped() {
        let index = FleetIndex::default();
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let a = index.intern_facts_used(set(&["os_family", "hostname"]));
        let b = index.intern_facts_used(set(&["hostname", "os_family"]));
        assert!(Arc::ptr_eq(&a, &b));
        let c = index.intern_facts_used(set(&["os_family"]));
        assert!(!Arc::ptr_eq(&a, &c));
        // Fill the pool with sets nobody keeps: the next insertion drops them, not `a`.
        for i in 0..1100 {
            let _ = index.intern_facts_used(set(&[&format!("f{i}")]));
        }
        let pool = index.facts_used.len();
        assert!(pool < 1100, "unused sets were dropped (pool {pool})");
        let again = index.intern_facts_used(set(&["hostname", "os_family"]));
        assert!(Arc::ptr_eq(&a, &again));
    }
}
