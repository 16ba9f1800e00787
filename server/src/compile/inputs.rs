//! What a node's bundle was compiled from, and whether a newly published config changes
//! it: so that a publish recompiles (and sends a new bundle to) only the nodes it affects.
//!
//! A compile reads, besides the node's name and facts:
//! - the settings of `vigo.yaml` (observe, interval, fleet-wide variables);
//! - every node rule whose host-name globs match the node (whether its `when:` selects the
//!   node, and then its modules, variables, priority and observe);
//! - every module in the closure of the selected rules (resources, variables, conditions,
//!   dependencies, tags, and where each is written, which the bundle carries as origins);
//! - the secret values and `source:` files those parts reference.
//!
//! Each part gets a digest when a config is published ([`ConfigDigests`]); each compile
//! records the digests of the parts it read ([`Inputs`]). When a newer config digests every
//! recorded part the same, and no rule it does not know of globs the node, the compile
//! would give the same bundle: the node keeps it. Facts are tracked apart (`facts_used`).
//! Waivers and the date only change the trace, never the bundle. The config's hash, which
//! the bundle carries as `policy`, is not an input: a kept bundle keeps the hash of the
//! config it was compiled from.
//!
//! Digests are HMAC-SHA-256 under a key drawn when the process starts and never stored:
//! they cover secret values, and a plain hash of a short password could be searched. A
//! digest is taken over the part's `Debug` text (every field, spans included; `Secret`'s
//! `Debug` shows only the reference) followed by the secret values and file texts it
//! references. Digests are compared only within the process that made them. Without
//! system randomness there is no key and no digests: every publish then recompiles every
//! node, as before this module existed.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use vigo_shared::glob::glob_match;

use crate::config::model::{AttrSrc, Config, Module, NodeRule, VarValue, Vars};
use crate::secrets::SecretRef;
use crate::trace::Trace;

/// A keyed digest of one part of a config.
pub type Digest = [u8; 32];

fn key() -> Option<&'static ring::hmac::Key> {
    static KEY: OnceLock<Option<ring::hmac::Key>> = OnceLock::new();
    KEY.get_or_init(|| {
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok()
    })
    .as_ref()
}

/// Digests of every part of one config that a compile can read.
#[derive(Debug)]
pub struct ConfigDigests {
    settings: Digest,
    rules: HashMap<String, Digest>,
    /// One digest over every rule's name and digest: when it is the one a compile
    /// recorded, no rule changed and no rule needs to be globbed against the node.
    all_rules: Digest,
    modules: HashMap<String, Digest>,
}

/// The parts of a config one compile read, with their digests. Interned by the FleetIndex:
/// the nodes a config treats alike share one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Inputs {
    settings: Digest,
    all_rules: Digest,
    /// The rules whose globs match the node: name, digest, and whether it selected the node.
    rules: Box<[(Box<str>, Digest, bool)]>,
    /// The modules the node got.
    modules: Box<[(Box<str>, Digest)]>,
}

impl ConfigDigests {
    /// The digests of `config`'s parts; `None` without a key (no system randomness).
    pub fn of(config: &Config) -> Option<ConfigDigests> {
        let key = key()?;
        let settings = digest(
            key,
            config,
            &config.settings,
            secrets_in_vars(&config.settings.vars),
            &[],
        );
        let rules: Vec<(String, Digest)> = config
            .rules
            .iter()
            .map(|r| (r.name.clone(), rule_digest(key, config, r)))
            .collect();
        let mut all = ring::hmac::Context::with_key(key);
        for (name, d) in &rules {
            all.update(&(name.len() as u64).to_le_bytes());
            all.update(name.as_bytes());
            all.update(d);
        }
        let mut all_rules = [0u8; 32];
        all_rules.copy_from_slice(all.sign().as_ref());
        let modules = config
            .modules
            .values()
            .map(|m| (m.name.clone(), module_digest(key, config, m)))
            .collect();
        Some(ConfigDigests {
            settings,
            rules: rules.into_iter().collect(),
            all_rules,
            modules,
        })
    }

    /// What the compile of `trace.node` under this config read: the rules that glob it
    /// (and whether each selected it) and the modules it got, from the compile's trace.
    /// `None` when a part is unknown to this config (it cannot be, for a compile of this
    /// config; `None` only means "do not keep this bundle across a publish").
    pub fn record(&self, config: &Config, trace: &Trace) -> Option<Inputs> {
        let node = trace.node.as_str();
        let selected: BTreeSet<&str> = trace
            .rules
            .iter()
            .filter(|r| r.matched)
            .map(|r| r.name.as_str())
            .collect();
        let rules = config
            .rules
            .iter()
            .filter(|r| globs(r, node))
            .map(|r| {
                let d = *self.rules.get(&r.name)?;
                Some((
                    r.name.as_str().into(),
                    d,
                    selected.contains(r.name.as_str()),
                ))
            })
            .collect::<Option<_>>()?;
        let modules = trace
            .modules
            .iter()
            .map(|m| Some((m.name.as_str().into(), *self.modules.get(&m.name)?)))
            .collect::<Option<_>>()?;
        Some(Inputs {
            settings: self.settings,
            all_rules: self.all_rules,
            rules,
            modules,
        })
    }

    /// Whether compiling `node` under `config` (whose digests these are) would read the
    /// same parts, unchanged, as the compile that recorded `inputs`: then it would give
    /// the same bundle (for the same facts).
    pub fn unchanged_for(&self, config: &Config, inputs: &Inputs, node: &str) -> bool {
        if self.settings != inputs.settings {
            return false;
        }
        let modules_same = inputs
            .modules
            .iter()
            .all(|(name, d)| self.modules.get(&**name) == Some(d));
        // A rule that selected the node must still be there, the same.
        let selected_same = inputs
            .rules
            .iter()
            .filter(|(_, _, selected)| *selected)
            .all(|(name, d, _)| self.rules.get(&**name) == Some(d));
        // Every rule that globs the node now was known, the same (a new or changed rule
        // could select it; one that globs it no more and did not select it changes
        // nothing). Needed only when some rule changed: ~0.3 µs a rule.
        let globbing_known = || {
            config.rules.iter().filter(|r| globs(r, node)).all(|r| {
                inputs
                    .rules
                    .iter()
                    .any(|(name, d, _)| **name == r.name && self.rules.get(&r.name) == Some(d))
            })
        };
        modules_same && selected_same && (inputs.all_rules == self.all_rules || globbing_known())
    }
}

/// Whether one of the rule's host-name globs matches the node (its `when:` aside).
fn globs(rule: &NodeRule, node: &str) -> bool {
    rule.patterns.iter().any(|p| glob_match(&p.name, node))
}

fn rule_digest(key: &ring::hmac::Key, config: &Config, rule: &NodeRule) -> Digest {
    digest(key, config, rule, secrets_in_vars(&rule.vars), &[])
}

fn module_digest(key: &ring::hmac::Key, config: &Config, module: &Module) -> Digest {
    let mut secrets = secrets_in_vars(&module.vars);
    let mut files = Vec::new();
    for r in &module.resources {
        for (name, attr) in &r.attrs {
            match &attr.value {
                AttrSrc::Secret(s) => {
                    secrets.insert(s);
                }
                AttrSrc::Str(path) if name == "source" => files.push(path.as_str()),
                _ => {}
            }
        }
    }
    digest(key, config, module, secrets, &files)
}

/// The digest of one part: its `Debug` text, then each secret it references (reference and
/// value) and each file it reads (path and text), every piece length-prefixed.
fn digest(
    key: &ring::hmac::Key,
    config: &Config,
    part: &dyn std::fmt::Debug,
    secrets: BTreeSet<&SecretRef>,
    files: &[&str],
) -> Digest {
    let mut ctx = ring::hmac::Context::with_key(key);
    let mut put = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_le_bytes());
        ctx.update(bytes);
    };
    put(format!("{part:?}").as_bytes());
    for s in secrets {
        put(s.to_string().as_bytes());
        match config.secrets.get(s) {
            Some(secret) => put(secret.expose().as_bytes()),
            None => put(b"\xffunresolved"),
        }
    }
    for f in files {
        put(f.as_bytes());
        match config.files.get(*f) {
            Some(text) => put(text.as_bytes()),
            None => put(b"\xffunread"),
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

fn secrets_in_vars(vars: &Vars) -> BTreeSet<&SecretRef> {
    fn walk<'a>(v: &'a VarValue, out: &mut BTreeSet<&'a SecretRef>) {
        match v {
            VarValue::Secret(s) => {
                out.insert(s);
            }
            VarValue::List(items) => items.iter().for_each(|i| walk(i, out)),
            VarValue::Map(m) => m.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for def in vars.values() {
        walk(&def.value, &mut out);
    }
    out
}
