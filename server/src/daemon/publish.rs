//! The admin side of the config lifecycle: `POST /v1/admin/publish` loads and validates the
//! config directory and swaps it in whole (or leaves the old one serving and returns the
//! diagnostics), `GET /v1/admin/publishes` lists the version history, and
//! `GET /v1/admin/nodes/NAME/trace` traces a node against the served policy and its
//! reported facts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::routes::{ApiError, blocking, refuse, require_admin};
use super::{Peer, Policy, State, now_secs};
use crate::secrets::FileProvider;
use crate::store::PublishRow;

/// `POST /v1/admin/publish`: `{"result": "accepted"|"unchanged", "policy", "previous"}`, or
/// `422` with `{"result": "refused", "policy", "serving", "diagnostics": [...]}`.
pub async fn publish(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    const ROUTE: &str = "admin/publish";
    require_admin(&peer, ROUTE)?;
    let Some(source) = state.source.clone() else {
        return Err(refuse(
            StatusCode::CONFLICT,
            ROUTE,
            &peer,
            "this server was not started from a config directory",
        ));
    };
    let who = peer.name.as_deref().unwrap_or_default().to_string();
    // One publish at a time: two interleaved ones could swap in the older load last.
    let _guard = state.publishing.lock().await;
    let st = state.clone();
    let answer = blocking(move || {
        let (config, diags) = crate::config::load(&source.dir, &FileProvider::new(&source.secrets));
        let previous = st.policy();
        let policy = config.hash.clone();
        let result = if !diags.is_empty() {
            "refused"
        } else if previous.serves(&config) {
            "unchanged"
        } else {
            "accepted"
        };
        // The history is written before the swap: a publish the database cannot record
        // is not served either, so the history never misses a served version.
        st.db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_publish(&PublishRow {
                policy: policy.clone(),
                at: now_secs(),
                who: who.clone(),
                result: result.to_string(),
                diagnostics: diags.len() as u64,
            })
            .map_err(|e| ApiError::internal("recording the publish", e))?;
        let nodes = if result == "accepted" {
            st.swap_policy(Policy::new(config));
            Some(bundles_kept(&st.index, &st.policy()))
        } else {
            None
        };
        let kept = nodes.as_ref().map_or(String::new(), |n| {
            format!(
                "; bundles kept for {} node(s), rebuilt at next check-in for {}, {} not compiled yet",
                n.kept, n.rebuilt, n.not_compiled
            )
        });
        eprintln!(
            "vigo-server: publish by {who}: {result} config {policy} ({} problem(s)); serving {}{kept}",
            diags.len(),
            st.policy().hash()
        );
        let status = if result == "refused" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        Ok((
            status,
            serde_json::json!({
                "result": result,
                "policy": policy,
                "previous": previous.hash(),
                "serving": st.policy().hash(),
                "nodes": nodes,
                "diagnostics": diags,
            }),
        ))
    })
    .await?;
    Ok((answer.0, Json(answer.1)).into_response())
}

/// What a publish does to the bundles compiled so far: `kept` nodes' bundles are what the
/// new policy compiles too (none of their inputs changed); `rebuilt` nodes get a new one
/// at their next check-in; `not_compiled` nodes have had none compiled since the server
/// started (they compile at their next check-in either way). Fact changes aside.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BundlesKept {
    pub kept: u64,
    pub rebuilt: u64,
    pub not_compiled: u64,
}

/// Counts [`BundlesKept`] for `policy`. The memos are copied out under the index lock
/// (shared `Arc`s, no compile) and checked outside it.
pub fn bundles_kept(index: &crate::fleet::index::FleetIndex, policy: &Policy) -> BundlesKept {
    let memos: Vec<(String, Option<crate::fleet::index::BundleMemo>)> = index
        .nodes()
        .iter()
        .filter(|(_, e)| !e.revoked)
        .map(|(name, e)| (name.clone(), e.bundle.clone()))
        .collect();
    let mut out = BundlesKept::default();
    for (name, memo) in memos {
        match memo {
            None => out.not_compiled += 1,
            Some(m) if m.generation == policy.generation || policy.keeps(&m, &name) => {
                out.kept += 1
            }
            Some(_) => out.rebuilt += 1,
        }
    }
    out
}

/// `GET /v1/admin/publishes`: `{"publishes": [PublishRow…], "serving": HASH}`, oldest first.
pub async fn history(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    require_admin(&peer, "admin/publishes")?;
    let st = state.clone();
    let rows = blocking(move || {
        st.db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .publishes()
            .map_err(|e| ApiError::internal("reading the publish history", e))
    })
    .await?;
    Ok(Json(serde_json::json!({
        "publishes": rows,
        "serving": state.policy().hash(),
    }))
    .into_response())
}

/// `GET /v1/admin/nodes/NAME/trace`: the node's trace (the JSON of `vigocli config trace
/// --json`) from the served policy and the facts the node reported; without reported
/// facts, fact conditions stay residual as offline without `--facts`.
pub async fn trace(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    const ROUTE: &str = "admin/trace";
    require_admin(&peer, ROUTE)?;
    let facts = state
        .index
        .nodes()
        .get(&name)
        .map(|n| n.facts_known.then(|| n.facts.clone()));
    let Some(facts) = facts else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            ROUTE,
            &peer,
            &format!("no node named {name} is enrolled"),
        ));
    };
    let policy = state.policy();
    let trace = blocking(move || {
        let facts = facts
            .map(|facts| {
                crate::compile::facts_from_json(facts.as_json())
                    .map_err(|e| ApiError::internal("reading facts", e))
            })
            .transpose()?;
        let today = crate::date::today_utc();
        let compiled = crate::compile::compile(&policy.config, &name, facts.as_ref(), &today)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        Ok(compiled.trace)
    })
    .await?;
    Ok(Json(trace).into_response())
}
