//! The JSON of a check-in as the agent writes and reads it (`agent/src/net/checkin.rs`): the
//! request body, typed so that it is written without building a `serde_json::Value`, and
//! the four fields of the answer the simulator checks, read without building one either.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::net::NetError;
use super::node::{bad, now_secs};

/// The check-in body as the agent writes it (`checkin_body`): keys in sorted order, as its
/// JSON objects keep them.
#[derive(Serialize)]
pub struct Body<'a> {
    pub bundle: &'a str,
    pub facts: FactsOut<'a>,
    pub results: Vec<ResultOut<'a>>,
}

#[derive(Serialize)]
pub struct FactsOut<'a> {
    pub full: bool,
    pub removed: Vec<&'a str>,
    pub set: BTreeMap<&'a str, &'a Value>,
}

#[derive(Serialize)]
pub struct ResultOut<'a> {
    pub report: &'a Value,
    pub seq: u64,
}

/// The fields of a check-in answer the simulator checks (the agent reads the same ones).
#[derive(Deserialize)]
struct AnswerFields<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    bundle: Option<Cow<'a, str>>,
    #[serde(default)]
    results_stored: Option<u64>,
    #[serde(default)]
    need_full_facts: bool,
}

/// A check-in answer once read: what the node needs of it after the connection's buffer is
/// gone.
pub struct Parsed {
    pub results_stored: Option<u64>,
    pub need_full_facts: bool,
    /// The decoded signed bundle when the status was `bundle`; `None` for `unchanged`.
    pub bundle: Option<Vec<u8>>,
}

/// Reads a check-in answer: `unchanged`, or `bundle` with the bundle's base64 decoded.
pub fn parse_answer(body: &[u8]) -> Result<Parsed, NetError> {
    let a: AnswerFields = serde_json::from_slice(body).map_err(|e| bad("answer", e))?;
    let bundle = match (&*a.status, a.bundle) {
        ("unchanged", _) => None,
        ("bundle", Some(b64)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| bad("bundle_base64", e))?,
        ),
        _ => return Err(bad("answer", "no status unchanged/bundle")),
    };
    Ok(Parsed {
        results_stored: a.results_stored,
        need_full_facts: a.need_full_facts,
        bundle,
    })
}

/// A short run report like the agent's (format, timing and per-resource counts).
pub fn run_report(seq: u64) -> Value {
    json!({
        "format": 1,
        "seq": seq,
        "started": now_secs(),
        "duration_ms": 412,
        "mode": "enforce",
        "resources": { "total": 23, "changed": (seq % 3), "failed": 0, "skipped": 1 },
        "changes": [ { "id": "file:/etc/motd", "attr": "content", "action": "update" } ],
    })
}
