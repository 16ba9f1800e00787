//! `POST /v1/checkin`, the hot path: verify the request signature against the node's key in
//! the FleetIndex, apply fact deltas, queue results, and answer `unchanged` or the node's
//! signed bundle. No database query happens here; what must be durable goes to the dirty
//! set.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use vigo_shared::protocol::{
    HEADER_NODE, HEADER_SEQ, HEADER_SIGNATURE, HEADER_TIME, MAX_CLOCK_SKEW_SECS, PATH_CHECKIN,
    request_message,
};

use super::routes::{ApiError, read_body, refuse};
use super::{Peer, Policy, State, now_secs};
use crate::fleet::index::{CachedBundle, facts_used};

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
struct CheckinRequest {
    #[serde(default)]
    bundle: String,
    #[serde(default)]
    facts: FactDelta,
    #[serde(default)]
    results: Vec<RunResult>,
}

struct Signed {
    node: String,
    time: u64,
    seq: u64,
    signature: [u8; 64],
}

fn signed_headers(headers: &HeaderMap) -> Option<Signed> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Some(Signed {
        node: get(HEADER_NODE)?.to_string(),
        time: get(HEADER_TIME)?.parse().ok()?,
        seq: get(HEADER_SEQ)?.parse().ok()?,
        signature: vigo_shared::hex::decode_array::<64>(get(HEADER_SIGNATURE)?)?,
    })
}

/// The check-in handler.
pub async fn checkin(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(cert_name) = peer.name.clone() else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            ROUTE,
            &peer,
            "a client certificate is required",
        ));
    };
    let body = read_body(&state, body, ROUTE, &peer).await?;
    let unauthorized = |m: &str| refuse(StatusCode::UNAUTHORIZED, ROUTE, &peer, m);
    let Some(signed) = signed_headers(&headers) else {
        return Err(unauthorized("missing or malformed signature headers"));
    };
    if *signed.node != *cert_name {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            ROUTE,
            &peer,
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
        &signed.node,
        signed.time,
        signed.seq,
        &body,
    );

    // Look the node up, then verify outside the lock: a signature check costs ~100 µs and
    // must not serialize the fleet. The checks are repeated under the lock before any
    // change, in case a concurrent request or a revocation came in between.
    let key = {
        let nodes = state.index.nodes();
        let Some(entry) = nodes.get(&signed.node) else {
            return Err(refuse(StatusCode::FORBIDDEN, ROUTE, &peer, "unknown node"));
        };
        if entry.revoked {
            return Err(refuse(StatusCode::FORBIDDEN, ROUTE, &peer, "node revoked"));
        }
        if signed.seq <= entry.last_seq {
            return Err(unauthorized("replayed or out-of-order sequence number"));
        }
        entry.key
    };
    if !key.verify(&message, &signed.signature) {
        return Err(unauthorized("signature does not verify"));
    }
    let req: CheckinRequest = serde_json::from_slice(&body).map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            ROUTE,
            &peer,
            "malformed check-in body",
        )
    })?;

    // The policy this check-in is answered from: taken once, so that a publish meanwhile
    // cannot mix two versions into one answer.
    let policy = state.policy();

    // Up to the bundle decision, everything happens under the index lock, in memory only.
    let (facts, cached, changed, need_full, stored, agent_bundle) = {
        let mut nodes = state.index.nodes();
        let Some(entry) = nodes.get_mut(&signed.node).filter(|e| e.key == key) else {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                ROUTE,
                &peer,
                "node re-enrolled meanwhile",
            ));
        };
        if entry.revoked {
            return Err(refuse(StatusCode::FORBIDDEN, ROUTE, &peer, "node revoked"));
        }
        if signed.seq <= entry.last_seq {
            return Err(unauthorized("replayed or out-of-order sequence number"));
        }

        // Accepted: from here on state changes.
        entry.last_seq = signed.seq;
        let mut changed: Vec<String> = Vec::new();
        let delta = req.facts;
        if delta.full {
            for k in entry.facts.keys() {
                if !delta.set.contains_key(k) {
                    changed.push(k.clone());
                }
            }
            for (k, v) in &delta.set {
                if entry.facts.get(k) != Some(v) {
                    changed.push(k.clone());
                }
            }
            entry.facts = delta.set;
            entry.facts_known = true;
        } else {
            for (k, v) in delta.set {
                if entry.facts.get(&k) != Some(&v) {
                    changed.push(k.clone());
                    entry.facts.insert(k, v);
                }
            }
            for k in delta.removed {
                if entry.facts.remove(&k).is_some() {
                    changed.push(k);
                }
            }
        }
        let mut dirty = state.index.dirty();
        if !changed.is_empty() {
            dirty.facts(
                &signed.node,
                serde_json::Value::Object(entry.facts.clone()).to_string(),
            );
        }
        for r in req.results {
            if r.seq > entry.results_accepted {
                entry.results_accepted = r.seq;
                dirty.result(&signed.node, entry.enrolled, r.seq, r.report.to_string());
            }
        }
        dirty.progress(&signed.node, entry.enrolled, signed.seq, now);
        drop(dirty);
        let cached = entry.bundle.clone();
        let stale = match &cached {
            None => true,
            Some(b) => {
                b.generation != policy.generation
                    || (!b.with_facts && entry.facts_known)
                    || b.facts_used.contains("*")
                    || changed.iter().any(|f| b.facts_used.contains(f))
            }
        };
        let facts = stale.then(|| entry.facts.clone());
        (
            facts,
            cached,
            stale,
            !entry.facts_known,
            entry.results_stored,
            req.bundle,
        )
    };

    let bundle = match (changed, cached) {
        (false, Some(b)) => b,
        _ => {
            let facts = facts.unwrap_or_default();
            let fresh = compile_for(&state, &policy, &signed.node, key, facts, need_full).await?;
            if let Some(entry) = state.index.nodes().get_mut(&signed.node) {
                // A newer policy may have been published while this one compiled: the
                // entry keeps it only until the next check-in sees the generation differ.
                entry.bundle = Some(fresh.clone());
            }
            fresh
        }
    };
    let unchanged = agent_bundle == bundle.hash.to_string();
    Ok(Json(serde_json::json!({
        "status": if unchanged { "unchanged" } else { "bundle" },
        "bundle": if unchanged { None } else { Some(&bundle.base64) },
        "results_stored": stored,
        "need_full_facts": need_full,
        "interval_secs": policy.config.settings.interval_secs,
    }))
    .into_response())
}

/// Compiles the node's bundle, seals its secret values to the node's key and signs it, on a
/// blocking thread. The hash is that of the sealed bundle, the one the agent caches and
/// reports back; it stays stable until the next recompile.
async fn compile_for(
    state: &Arc<State>,
    policy: &Arc<Policy>,
    node: &str,
    node_key: vigo_shared::sign::PublicKey,
    facts: serde_json::Map<String, serde_json::Value>,
    facts_unknown: bool,
) -> Result<Arc<CachedBundle>, ApiError> {
    let st = state.clone();
    let policy = policy.clone();
    let node = node.to_string();
    tokio::task::spawn_blocking(move || {
        let facts = if facts_unknown {
            None
        } else {
            Some(
                crate::compile::facts_from_json(&serde_json::Value::Object(facts).to_string())
                    .map_err(|e| ApiError::internal("reading facts", e))?,
            )
        };
        st.compiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let today = crate::date::today_utc();
        let compiled = crate::compile::compile(&policy.config, &node, facts.as_ref(), &today)
            .map_err(|e| ApiError::internal("compiling the bundle", e))?;
        let rules: Vec<&str> = policy.rule_conditions.iter().map(String::as_str).collect();
        let mut bundle = compiled.bundle;
        crate::seal::seal_bundle(&mut bundle, &st.bundle_key, &node_key)
            .map_err(|e| ApiError::internal("sealing the bundle", e))?;
        let signed = st.bundle_key.sign_bundle(&bundle);
        Ok(Arc::new(CachedBundle {
            base64: base64::engine::general_purpose::STANDARD.encode(signed),
            hash: vigo_shared::sign::BundleHash::of(&vigo_shared::codec::encode(&bundle)),
            generation: policy.generation,
            facts_used: facts_used(&compiled.trace, &rules),
            with_facts: !facts_unknown,
        }))
    })
    .await
    .map_err(|e| ApiError::internal("the compile task", e))?
}
