//! `POST /v1/checkin`, the hot path: verify the request signature against the node's key in
//! the FleetIndex, apply fact deltas, queue results, and answer `unchanged` or the node's
//! signed bundle. No database query happens here; what must be durable goes to the dirty
//! set.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use vigo_shared::protocol::{
    HEADER_NODE, HEADER_SEQ, HEADER_SIGNATURE, HEADER_TIME, MAX_CLOCK_SKEW_SECS, PATH_CHECKIN,
    request_message,
};
use vigo_shared::sign::BundleHash;

use super::routes::{ApiError, read_body, refuse};
use super::{Peer, Policy, State, now_secs};
use crate::fleet::index::{BundleMemo, CompiledBundle, FactsText, facts_used};

const ROUTE: &str = "checkin";

#[derive(Deserialize, Default)]
struct FactDelta {
    #[serde(default)]
    full: bool,
    #[serde(default)]
    set: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    removed: Vec<String>,
}

#[derive(Deserialize)]
struct RunResult {
    seq: u64,
    report: serde_json::Value,
}

#[derive(Deserialize)]
struct CheckinRequest<'a> {
    /// Hex, which has nothing to unescape: borrowed from the body.
    #[serde(default, borrow)]
    bundle: Cow<'a, str>,
    #[serde(default)]
    facts: FactDelta,
    #[serde(default)]
    results: Vec<RunResult>,
}

struct Signed<'a> {
    node: &'a str,
    time: u64,
    seq: u64,
    signature: [u8; 64],
}

fn signed_headers(headers: &HeaderMap) -> Option<Signed<'_>> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Some(Signed {
        node: get(HEADER_NODE)?,
        time: get(HEADER_TIME)?.parse().ok()?,
        seq: get(HEADER_SEQ)?.parse().ok()?,
        signature: vigo_shared::hex::decode_array::<64>(get(HEADER_SIGNATURE)?)?,
    })
}

/// The check-in route of the in-process router ([`super::routes::app`]). The TLS listener
/// does not go through it: it hands every check-in to [`handle`] itself (`serve`).
pub async fn route(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    req: Request,
) -> Response {
    handle(&state, &peer, req).await
}

/// Answers one check-in from `peer`: the answer, or the refusal as a response.
pub async fn handle<B>(state: &Arc<State>, peer: &Peer, req: axum::http::Request<B>) -> Response
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (parts, body) = req.into_parts();
    match checkin(state, peer, &parts.headers, body).await {
        Ok(answer) => answer,
        Err(refused) => refused.into_response(),
    }
}

/// The check-in itself.
async fn checkin<B>(
    state: &Arc<State>,
    peer: &Peer,
    headers: &HeaderMap,
    body: B,
) -> Result<Response, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let Some(cert_name) = peer.name.as_deref() else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            ROUTE,
            peer,
            "a client certificate is required",
        ));
    };
    let body = read_body(state, body, ROUTE, peer).await?;
    let unauthorized = |m: &str| refuse(StatusCode::UNAUTHORIZED, ROUTE, peer, m);
    let Some(signed) = signed_headers(headers) else {
        return Err(unauthorized("missing or malformed signature headers"));
    };
    if signed.node != cert_name {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            ROUTE,
            peer,
            "x-vigo-node does not match the client certificate",
        ));
    }
    let now = now_secs();
    if now.abs_diff(signed.time) > MAX_CLOCK_SKEW_SECS {
        return Err(unauthorized(
            "request time too far from the server's clock; check the node's clock",
        ));
    }
    let message = request_message(
        "POST",
        PATH_CHECKIN,
        signed.node,
        signed.time,
        signed.seq,
        &body,
    );

    // The policy this check-in is answered from: taken once, so that a publish meanwhile
    // cannot mix two versions into one answer.
    let policy = state.policy();

    // Look the node up, then verify outside the lock, in a micro-batch (daemon/verify.rs): a
    // signature check costs ~100 µs alone and must not serialize the fleet. The checks are
    // repeated under the lock before any change, in case a concurrent request or a
    // revocation came in between. A bundle compiled from an older policy is taken out
    // too, to see (outside the lock) whether this policy keeps it.
    let (key, point, older) = {
        let nodes = state.index.nodes();
        let Some(entry) = nodes.get(signed.node) else {
            return Err(refuse(StatusCode::FORBIDDEN, ROUTE, peer, "unknown node"));
        };
        if entry.revoked {
            return Err(refuse(StatusCode::FORBIDDEN, ROUTE, peer, "node revoked"));
        }
        if signed.seq <= entry.last_seq {
            return Err(unauthorized("replayed or out-of-order sequence number"));
        }
        let older = entry
            .bundle
            .as_ref()
            .filter(|b| b.generation != policy.generation)
            .cloned();
        (entry.key, entry.point, older)
    };
    if !state
        .verifier
        .verify(*key.as_bytes(), point, message, signed.signature)
        .await
    {
        return Err(unauthorized("signature does not verify"));
    }
    let kept = older.filter(|memo| policy.keeps(memo, signed.node));
    let req: CheckinRequest = serde_json::from_slice(&body).map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            ROUTE,
            peer,
            "malformed check-in body",
        )
    })?;
    // The hash of the bundle the agent holds (none, or not a hash: it holds none we made).
    let held = vigo_shared::hex::decode_array::<32>(&req.bundle).map(BundleHash);

    // Up to the bundle decision, everything happens under the index lock, in memory only.
    let (facts, need_full, stored) = {
        let mut nodes = state.index.nodes();
        let Some(entry) = nodes.get_mut(signed.node).filter(|e| e.key == key) else {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                ROUTE,
                peer,
                "node re-enrolled meanwhile",
            ));
        };
        if entry.revoked {
            return Err(refuse(StatusCode::FORBIDDEN, ROUTE, peer, "node revoked"));
        }
        if signed.seq <= entry.last_seq {
            return Err(unauthorized("replayed or out-of-order sequence number"));
        }

        // Accepted: from here on state changes.
        entry.last_seq = signed.seq;
        let full = req.facts.full;
        let changed = apply_delta(&mut entry.facts, req.facts);
        entry.facts_known |= full;
        let mut dirty = state.index.dirty();
        if !changed.is_empty() {
            dirty.facts(signed.node, entry.facts.as_json().to_string());
        }
        for r in req.results {
            if r.seq > entry.results_accepted {
                entry.results_accepted = r.seq;
                dirty.result(signed.node, entry.enrolled, r.seq, r.report.to_string());
            }
        }
        dirty.progress(signed.node, entry.enrolled, signed.seq, now);
        drop(dirty);
        // The publish did not touch what this node's bundle was compiled from: it is
        // current (unless the bundle was replaced meanwhile).
        if let (Some(kept), Some(b)) = (&kept, entry.bundle.as_mut())
            && b.hash == kept.hash
            && b.generation == kept.generation
        {
            b.generation = policy.generation;
        }
        let memo = entry.bundle.clone();
        let stale = match &memo {
            None => true,
            Some(b) => {
                b.generation != policy.generation
                    || (!b.with_facts && entry.facts_known)
                    || b.facts_used.contains("*")
                    || changed.iter().any(|f| b.facts_used.contains(f))
            }
        };
        // The bytes are needed when the bundle may have changed, or when the agent does
        // not hold the current one (it lost its cache, or a previous answer did not
        // reach it): then compile, which gives the same bytes as before when nothing
        // changed.
        let current = memo.filter(|_| !stale);
        let agent_has_it = current.as_ref().is_some_and(|m| Some(m.hash) == held);
        let facts = (!agent_has_it).then(|| entry.facts.clone());
        (facts, !entry.facts_known, entry.results_stored)
    };

    // No facts taken: the agent holds the current bundle.
    let Some(facts) = facts else {
        return Ok(answer(&policy, None, need_full, stored));
    };
    let fresh = compile_for(state, &policy, signed.node, key, facts, need_full).await?;
    if let Some(entry) = state.index.nodes().get_mut(signed.node) {
        // A newer policy may have been published while this one compiled: the entry
        // keeps it only until the next check-in sees the generation differ.
        entry.bundle = Some(fresh.memo.clone());
    }
    let unchanged = held == Some(fresh.memo.hash);
    let bytes = (!unchanged).then_some(fresh.base64.as_str());
    Ok(answer(&policy, bytes, need_full, stored))
}

/// The check-in answer (docs/protocol.md).
#[derive(serde::Serialize)]
struct Answer<'a> {
    status: &'static str,
    bundle: Option<&'a str>,
    results_stored: u64,
    need_full_facts: bool,
    interval_secs: u32,
}

/// The check-in answer: `unchanged`, or the node's signed bundle.
fn answer(policy: &Policy, bundle: Option<&str>, need_full: bool, stored: u64) -> Response {
    Json(Answer {
        status: if bundle.is_some() {
            "bundle"
        } else {
            "unchanged"
        },
        bundle,
        results_stored: stored,
        need_full_facts: need_full,
        interval_secs: policy.config.settings.interval_secs,
    })
    .into_response()
}

/// Applies a check-in's fact delta to the node's facts; returns the names of the facts that
/// changed. A delta with nothing in it (every no-change check-in) touches nothing.
fn apply_delta(facts: &mut FactsText, delta: FactDelta) -> Vec<String> {
    if !delta.full && delta.set.is_empty() && delta.removed.is_empty() {
        return Vec::new();
    }
    let mut map = facts.to_map();
    let mut changed: Vec<String> = Vec::new();
    if delta.full {
        for k in map.keys() {
            if !delta.set.contains_key(k) {
                changed.push(k.clone());
            }
        }
        for (k, v) in &delta.set {
            if map.get(k) != Some(v) {
                changed.push(k.clone());
            }
        }
        map = delta.set;
    } else {
        for (k, v) in delta.set {
            if map.get(&k) != Some(&v) {
                changed.push(k.clone());
                map.insert(k, v);
            }
        }
        for k in delta.removed {
            if map.remove(&k).is_some() {
                changed.push(k);
            }
        }
    }
    if !changed.is_empty() || delta.full {
        *facts = FactsText::from_map(&map);
    }
    changed
}

/// Compiles the node's bundle, seals its secret values to the node's key and signs it, on a
/// blocking thread. The hash is that of the sealed bundle, the one the agent caches and
/// reports back; it stays stable until the next recompile.
async fn compile_for(
    state: &Arc<State>,
    policy: &Arc<Policy>,
    node: &str,
    node_key: vigo_shared::sign::PublicKey,
    facts: FactsText,
    facts_unknown: bool,
) -> Result<CompiledBundle, ApiError> {
    let st = state.clone();
    let policy = policy.clone();
    let node = node.to_string();
    let _slot = state
        .compile_slots
        .acquire()
        .await
        .map_err(|e| ApiError::internal("waiting for a compile slot", e))?;
    tokio::task::spawn_blocking(move || {
        let facts = if facts_unknown {
            None
        } else {
            Some(
                crate::compile::facts_from_json(facts.as_json())
                    .map_err(|e| ApiError::internal("reading facts", e))?,
            )
        };
        st.compiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let today = crate::date::today_utc();
        let compiled = crate::compile::compile(&policy.config, &node, facts.as_ref(), &today)
            .map_err(|e| ApiError::internal("compiling the bundle", e))?;
        let rules: Vec<&str> = policy.rule_conditions.iter().map(String::as_str).collect();
        let inputs = policy.digests.as_ref().and_then(|d| {
            d.record(&policy.config, &compiled.trace)
                .map(|i| st.index.intern_inputs(i))
        });
        let mut bundle = compiled.bundle;
        crate::seal::seal_bundle(&mut bundle, &st.bundle_key, &node_key)
            .map_err(|e| ApiError::internal("sealing the bundle", e))?;
        let signed = st.bundle_key.sign_bundle(&bundle);
        Ok(CompiledBundle {
            base64: base64::engine::general_purpose::STANDARD.encode(signed),
            memo: BundleMemo {
                hash: vigo_shared::sign::BundleHash::of(&vigo_shared::codec::encode(&bundle)),
                generation: policy.generation,
                facts_used: st
                    .index
                    .intern_facts_used(facts_used(&compiled.trace, &rules)),
                with_facts: !facts_unknown,
                inputs,
            },
        })
    })
    .await
    .map_err(|e| ApiError::internal("the compile task", e))?
}

#[cfg(test)]
mod tests {
    use super::{FactDelta, FactsText, apply_delta};
    use serde_json::json;

    fn delta(v: serde_json::Value) -> FactDelta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fact_deltas() {
        let start = json!({"os": "debian", "cpus": 2, "addresses": ["10.0.0.1"]});
        // (what the agent sent, facts afterwards, names reported as changed)
        let cases = [
            (json!({}), start.clone(), vec![]),
            (json!({"set": {"cpus": 2}}), start.clone(), vec![]),
            (
                json!({"set": {"cpus": 4}}),
                json!({"os": "debian", "cpus": 4, "addresses": ["10.0.0.1"]}),
                vec!["cpus"],
            ),
            (
                json!({"set": {"kernel": "6.1"}, "removed": ["addresses", "nope"]}),
                json!({"os": "debian", "cpus": 2, "kernel": "6.1"}),
                vec!["kernel", "addresses"],
            ),
            (
                json!({"full": true, "set": {"os": "debian", "cpus": 8}}),
                json!({"os": "debian", "cpus": 8}),
                vec!["addresses", "cpus"],
            ),
            (
                json!({"full": true, "set": start.clone()}),
                start.clone(),
                vec![],
            ),
        ];
        for (sent, want, want_changed) in cases {
            let mut facts = FactsText::from_map(start.as_object().unwrap());
            let changed = apply_delta(&mut facts, delta(sent.clone()));
            assert_eq!(changed, want_changed, "delta {sent}");
            assert_eq!(
                serde_json::Value::Object(facts.to_map()),
                want,
                "delta {sent}"
            );
        }
    }

    #[test]
    fn facts_text_round_trips_and_refuses_non_objects() {
        assert_eq!(FactsText::default().as_json(), "{}");
        assert!(FactsText::default().to_map().is_empty());
        let t = FactsText::parse(r#"{ "b": [1, 2], "a": {"x": null} }"#).unwrap();
        assert_eq!(t.as_json(), r#"{"a":{"x":null},"b":[1,2]}"#);
        for bad in ["", "[]", "1", "\"x\"", "{", "null"] {
            assert!(FactsText::parse(bad).is_none(), "{bad:?}");
        }
    }
}
