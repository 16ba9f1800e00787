//! The resolution trace of one node: why each module is included, where each variable's
//! value comes from, what each `when:` decided and what it left for the agent, which
//! compliance tags and waivers apply, what each template read, and what was skipped.
//!
//! Built by the compiler alongside the bundle; printed by `vigocli config trace` as
//! aligned text or as JSON (the field names are a stable interface for scripts).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::diag::Span;

/// The whole trace.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trace {
    /// The node.
    pub node: String,
    /// The config version (hash) it was compiled from.
    pub policy: String,
    /// Whether facts were given; without them, fact-dependent conditions stay residual.
    pub facts_given: bool,
    /// Observe mode for this node.
    pub observe: bool,
    /// Convergence interval, seconds.
    pub interval_secs: u32,
    /// Every node rule, matched or not, in application order.
    pub rules: Vec<RuleTrace>,
    /// Included modules, dependencies first.
    pub modules: Vec<ModuleTrace>,
    /// Variables with their final value and every layer that set them.
    pub vars: Vec<VarTrace>,
    /// Every resource of the included modules.
    pub resources: Vec<ResourceTrace>,
    /// Content hash of the compiled bundle.
    pub bundle_hash: String,
}

/// A node rule and whether it selected the node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleTrace {
    /// Rule name.
    pub name: String,
    /// Where it is defined.
    pub at: Span,
    /// Priority.
    pub priority: i64,
    /// Whether it applies to the node.
    pub matched: bool,
    /// Why (which glob matched, or why not).
    pub why: String,
}

/// An included module.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModuleTrace {
    /// Module name.
    pub name: String,
    /// Where it is defined.
    pub at: Span,
    /// Why it is included: `rule web (nodes/web.yaml:1:7)` or `dependency of nginx`.
    pub via: Vec<String>,
}

/// One variable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VarTrace {
    /// Its name.
    pub name: String,
    /// The value the highest layer gives (`secret:REF` for secrets).
    pub value: String,
    /// Every layer that sets it, lowest first; the last one wins.
    pub layers: Vec<VarLayer>,
}

/// One layer's setting of a variable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VarLayer {
    /// `module nginx (default)`, `vigo.yaml`, `rule web`.
    pub layer: String,
    /// The value it sets.
    pub value: String,
    /// Where.
    pub at: Span,
}

/// One resource.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResourceTrace {
    /// `type:name`.
    pub id: String,
    /// Its module.
    pub module: String,
    /// Where it is defined.
    pub at: Span,
    /// `included`, `excluded` (a condition is false on the server) or `skipped` (an error:
    /// the agent will report it skipped).
    pub status: String,
    /// Why excluded or skipped.
    pub reason: Option<String>,
    /// Conditions (module's and its own).
    pub conditions: Vec<CondTrace>,
    /// Explicit dependencies present on this node.
    pub depends_on: Vec<String>,
    /// Resources it refreshes.
    pub notify: Vec<String>,
    /// Compliance tags and their waivers.
    pub compliance: Vec<TagTrace>,
    /// What its `content:` template read.
    pub template: Vec<TemplateUse>,
}

/// One `when:` condition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CondTrace {
    /// `module` or `resource`.
    pub scope: String,
    /// As written.
    pub expr: String,
    /// Where.
    pub at: Span,
    /// Each leaf term with the side that evaluates it.
    pub terms: Vec<TermTrace>,
    /// `true`/`false` when the server decided it; `residual` when the agent must.
    pub outcome: String,
    /// What ships to the agent, if anything.
    pub residual: Option<String>,
}

/// A leaf of a condition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TermTrace {
    /// The term's text.
    pub term: String,
    /// `server` or `agent`.
    pub side: String,
}

/// A compliance tag on a resource.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagTrace {
    /// The tag.
    pub tag: String,
    /// `module` or `resource`.
    pub from: String,
    /// A waiver that covers it on this node, if any.
    pub waiver: Option<WaiverTrace>,
}

/// A waiver that applies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WaiverTrace {
    /// Why it was granted.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
    /// Last day.
    pub expires: String,
    /// Whether it has expired (then it no longer waives anything).
    pub expired: bool,
    /// Where.
    pub at: Span,
}

/// A value a template read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TemplateUse {
    /// `vars.x`, `facts.y`, `node.name`.
    pub path: String,
    /// Its value (`secret:REF` for secrets).
    pub value: String,
}

impl Trace {
    /// The compact, aligned human form.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "node      {}", self.node);
        let _ = writeln!(o, "policy    {}", short(&self.policy));
        let _ = writeln!(o, "bundle    {}", short(&self.bundle_hash));
        let _ = writeln!(
            o,
            "facts     {}",
            if self.facts_given {
                "given"
            } else {
                "none (fact conditions left to the agent)"
            }
        );
        let _ = writeln!(
            o,
            "mode      {}, every {}s",
            if self.observe { "observe" } else { "enforce" },
            self.interval_secs
        );

        let _ = writeln!(o, "\nrules");
        let w = self.rules.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &self.rules {
            let mark = if r.matched { "+" } else { "-" };
            let _ = writeln!(
                o,
                "  {mark} {:<w$}  prio {:<4} {}  {}",
                r.name, r.priority, r.at, r.why
            );
        }

        let _ = writeln!(o, "\nmodules");
        let w = self.modules.iter().map(|m| m.name.len()).max().unwrap_or(0);
        for m in &self.modules {
            let _ = writeln!(o, "  {:<w$}  {}  via {}", m.name, m.at, m.via.join("; "));
        }

        let _ = writeln!(o, "\nvars");
        let w = self.vars.iter().map(|v| v.name.len()).max().unwrap_or(0);
        for v in &self.vars {
            let _ = writeln!(o, "  {:<w$} = {}", v.name, v.value);
            for l in &v.layers {
                let _ = writeln!(o, "  {:<w$}   <- {:<24} {}  {}", "", l.layer, l.value, l.at);
            }
        }

        let _ = writeln!(o, "\nresources");
        for r in &self.resources {
            let _ = write!(o, "  {:<8} {}  ({}, {})", r.status, r.id, r.module, r.at);
            if let Some(why) = &r.reason {
                let _ = write!(o, "  -- {why}");
            }
            o.push('\n');
            for c in &r.conditions {
                let _ = writeln!(
                    o,
                    "           when[{}] {}  => {}",
                    c.scope, c.expr, c.outcome
                );
                for t in &c.terms {
                    let _ = writeln!(o, "             {:<6} {}", t.side, t.term);
                }
                if let Some(res) = &c.residual {
                    let _ = writeln!(o, "             agent evaluates: {res}");
                }
            }
            if !r.depends_on.is_empty() {
                let _ = writeln!(o, "           depends on {}", r.depends_on.join(", "));
            }
            if !r.notify.is_empty() {
                let _ = writeln!(o, "           notifies {}", r.notify.join(", "));
            }
            for t in &r.compliance {
                match &t.waiver {
                    Some(wv) if !wv.expired => {
                        let _ = writeln!(
                            o,
                            "           compliance {} ({}) WAIVED until {} by {}: {} ({})",
                            t.tag, t.from, wv.expires, wv.approved_by, wv.reason, wv.at
                        );
                    }
                    Some(wv) => {
                        let _ = writeln!(
                            o,
                            "           compliance {} ({}) waiver EXPIRED {} ({})",
                            t.tag, t.from, wv.expires, wv.at
                        );
                    }
                    None => {
                        let _ = writeln!(o, "           compliance {} ({})", t.tag, t.from);
                    }
                }
            }
            for u in &r.template {
                let _ = writeln!(o, "           template {} = {}", u.path, u.value);
            }
        }
        o
    }
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}
