//! The HTTP routes: enrollment, the admin API, and the error type every handler answers
//! with. The check-in handler lives in [`super::checkin`], the bootstrap routes in
//! [`super::bootstrap`].

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use vigo_shared::glob::glob_match;
use vigo_shared::protocol::{PATH_CHECKIN, PATH_ENROLL, enroll_message};
use vigo_shared::sign::PublicKey;

use super::{Peer, State, now_micros, now_secs};
use crate::pki::ADMIN_NAME;

/// A refusal: a status and a message safe to show the client. The cause is logged once,
/// where the error is made, without secrets.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A refusal with `status`; logs `message` with the route's context.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// An internal failure: logged in full, the client sees only that it failed.
    pub fn internal(what: &str, cause: impl std::fmt::Display) -> ApiError {
        eprintln!("vigo-server: {what}: {cause}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Logs a refusal and returns it.
pub fn refuse(status: StatusCode, route: &str, peer: &Peer, message: &str) -> ApiError {
    eprintln!(
        "vigo-server: refused {route} from {} ({}): {status} {message}",
        peer.addr,
        peer.name.as_deref().unwrap_or("no certificate")
    );
    ApiError::new(status, message)
}

/// The router. Every route but `/v1/enroll` and the bootstrap routes (scripts and agent
/// binaries, [`super::bootstrap`]) requires a verified client certificate.
pub fn app(state: Arc<State>) -> Router {
    Router::new()
        .merge(super::bootstrap::routes())
        .route(PATH_ENROLL, post(enroll))
        .route(PATH_CHECKIN, post(super::checkin::route))
        .route("/v1/admin/tokens", post(create_token))
        .route("/v1/admin/nodes", get(list_nodes))
        .route("/v1/admin/nodes/{name}/revoke", post(revoke_node))
        .route("/v1/admin/stats", get(stats))
        .route("/v1/admin/publish", post(super::publish::publish))
        .route("/v1/admin/publishes", get(super::publish::history))
        .route("/v1/admin/nodes/{name}/trace", get(super::publish::trace))
        .with_state(state)
}

/// Reads a body within the size and time limits.
pub async fn read_body<B>(
    state: &State,
    body: B,
    route: &str,
    peer: &Peer,
) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let limits = &state.limits;
    match tokio::time::timeout(limits.body_timeout, collect(body, limits.max_body)).await {
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            route,
            peer,
            "request body too slow",
        )),
        Ok(Err(Overflow::TooLarge)) => Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            route,
            peer,
            "request body too large",
        )),
        Ok(Err(Overflow::Broken)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            route,
            peer,
            "request body unreadable",
        )),
        Ok(Ok(b)) => Ok(b),
    }
}

enum Overflow {
    TooLarge,
    Broken,
}

/// Collects at most `max` bytes. Beyond that it keeps reading and discarding, up to a bound,
/// so that an honest client with a large body reads its 413 instead of a connection reset;
/// a client that sends more than the bound (or too slowly) is cut off.
async fn collect<B>(mut body: B, max: usize) -> Result<Bytes, Overflow>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let mut kept = Kept::Nothing;
    let mut seen = 0usize;
    let drain_bound = max.saturating_mul(4).max(1 << 20);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Overflow::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= max {
            kept = kept.and(data);
        } else if seen > drain_bound {
            return Err(Overflow::TooLarge);
        }
    }
    if seen > max {
        return Err(Overflow::TooLarge);
    }
    Ok(kept.into_bytes())
}

/// The frames of a body read so far. A small body (every check-in) comes in one frame,
/// which is kept as it is rather than copied.
enum Kept {
    Nothing,
    One(Bytes),
    Many(Vec<u8>),
}

impl Kept {
    fn and(self, data: Bytes) -> Kept {
        match self {
            Kept::Nothing => Kept::One(data),
            Kept::One(first) => {
                let mut all = Vec::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                Kept::Many(all)
            }
            Kept::Many(mut all) => {
                all.extend_from_slice(&data);
                Kept::Many(all)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Kept::Nothing => Bytes::new(),
            Kept::One(data) => data,
            Kept::Many(all) => Bytes::from(all),
        }
    }
}

pub(super) fn require_admin(peer: &Peer, route: &str) -> Result<(), ApiError> {
    match peer.name.as_deref() {
        None => Err(refuse(
            StatusCode::UNAUTHORIZED,
            route,
            peer,
            "a client certificate is required",
        )),
        Some(ADMIN_NAME) => Ok(()),
        Some(_) => Err(refuse(
            StatusCode::FORBIDDEN,
            route,
            peer,
            "admin credential required",
        )),
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("a background task", e))?
}

#[derive(Deserialize)]
struct EnrollRequest {
    token: String,
    hostname: String,
    public_key: String,
    proof: String,
}

fn rate_limited(state: &State, peer: &Peer) -> bool {
    let per_minute = f64::from(state.limits.enroll_per_minute.max(1));
    let mut buckets = state
        .enroll_buckets
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if buckets.len() > 100_000 {
        // Bound memory against address sprays: full buckets carry no information.
        buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
    }
    let (tokens, at) = buckets.entry(peer.addr.ip()).or_insert((per_minute, now));
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_minute / 60.0).min(per_minute);
    *at = now;
    if *tokens < 1.0 {
        return true;
    }
    *tokens -= 1.0;
    false
}

/// Splits `vigo_<id>_<secret>` into its id; `None` when it does not look like a token.
pub fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("vigo_")?;
    let (id, secret) = rest.split_once('_')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (ok(id) && ok(secret)).then_some(id)
}

async fn enroll(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    body: Body,
) -> Result<Response, ApiError> {
    const ROUTE: &str = "enroll";
    if rate_limited(&state, &peer) {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            ROUTE,
            &peer,
            "too many enrollment attempts; wait a minute",
        ));
    }
    let body = read_body(&state, body, ROUTE, &peer).await?;
    let req: EnrollRequest = serde_json::from_slice(&body).map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            ROUTE,
            &peer,
            "malformed enrollment request",
        )
    })?;
    let bad = |m: &str| refuse(StatusCode::BAD_REQUEST, ROUTE, &peer, m);
    if req.hostname.is_empty()
        || req.hostname.len() > 253
        || !req
            .hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(bad("hostname must be letters, digits, '.', '-' or '_'"));
    }
    if req.hostname == ADMIN_NAME {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            ROUTE,
            &peer,
            "this name is reserved",
        ));
    }
    let key = PublicKey::parse(&req.public_key)
        .map_err(|_| bad("public_key must be ed25519:<64 hex>"))?;
    super::node_key::check(key.as_bytes()).map_err(|weak| bad(weak.reason()))?;
    let proof = vigo_shared::hex::decode_array::<64>(&req.proof)
        .ok_or_else(|| bad("proof must be 128 hex digits"))?;
    let Some(id) = token_id(&req.token).map(str::to_string) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            ROUTE,
            &peer,
            "unknown, used or expired token",
        ));
    };

    let st = state.clone();
    let peer2 = peer.clone();
    let cert = blocking(move || {
        let peer = peer2;
        let unauthorized = |why: &str| {
            eprintln!(
                "vigo-server: enrollment of {} with token id {id} refused: {why}",
                req.hostname
            );
            refuse(
                StatusCode::UNAUTHORIZED,
                ROUTE,
                &peer,
                "unknown, used or expired token",
            )
        };
        let row = {
            let db = st.db.lock().unwrap_or_else(|e| e.into_inner());
            db.token(&id)
                .map_err(|e| ApiError::internal("reading a token", e))?
        };
        let Some(row) = row else {
            return Err(unauthorized("no such token"));
        };
        // The hash check comes first so that a guessed id learns nothing else.
        if !crate::tokens::verify(&req.token, &row.hash) {
            return Err(unauthorized("wrong secret"));
        }
        if row.used_by.is_some() {
            return Err(unauthorized("token already used"));
        }
        if row.expires <= now_secs() {
            return Err(unauthorized("token expired"));
        }
        if !glob_match(&row.glob, &req.hostname) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                ROUTE,
                &peer,
                &format!("host name {} is not allowed by this token", req.hostname),
            ));
        }
        if !key.verify(
            &enroll_message(&req.hostname, &req.public_key, &req.token),
            &proof,
        ) {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                ROUTE,
                &peer,
                "proof of possession does not verify",
            ));
        }
        // From here to the index update the database lock is held, so that two
        // enrollments of one name cannot both pass the conflict check.
        let mut db = st.db.lock().unwrap_or_else(|e| e.into_inner());
        if st
            .index
            .nodes()
            .get(&req.hostname)
            .is_some_and(|n| !n.revoked)
        {
            return Err(refuse(
                StatusCode::CONFLICT,
                ROUTE,
                &peer,
                &format!("node {} is already enrolled; revoke it first", req.hostname),
            ));
        }
        let cert = st
            .ca
            .issue_client_for(&req.hostname, key.as_bytes())
            .map_err(|e| ApiError::internal("issuing a certificate", e))?;
        let enrolled = now_micros();
        let stored = db
            .enroll(&id, &req.hostname, &req.public_key, enrolled)
            .map_err(|e| ApiError::internal("storing an enrollment", e))?;
        if !stored {
            return Err(unauthorized("token used concurrently"));
        }
        st.index.enroll(&req.hostname, key, enrolled);
        drop(db);
        eprintln!(
            "vigo-server: enrolled node {} from {}",
            req.hostname, peer.addr
        );
        Ok((req.hostname, cert))
    })
    .await?;
    Ok(Json(serde_json::json!({
        "node": cert.0,
        "certificate": cert.1,
        "ca": state.ca.cert_pem,
        "bundle_key": state.bundle_key.public().to_string(),
        "interval_secs": state.policy().config.settings.interval_secs,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct TokenRequest {
    hosts: String,
    ttl_secs: u64,
}

async fn create_token(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    body: Body,
) -> Result<Response, ApiError> {
    const ROUTE: &str = "admin/tokens";
    require_admin(&peer, ROUTE)?;
    let body = read_body(&state, body, ROUTE, &peer).await?;
    let req: TokenRequest = serde_json::from_slice(&body).map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            ROUTE,
            &peer,
            "expected {hosts, ttl_secs}",
        )
    })?;
    if req.hosts.is_empty() || req.ttl_secs == 0 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            ROUTE,
            &peer,
            "hosts and a positive ttl are required",
        ));
    }
    let created = blocking(move || {
        let token = crate::tokens::new_token().map_err(|e| ApiError::internal("creating a token", e))?;
        let expires = now_secs().saturating_add(req.ttl_secs);
        state
            .db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert_token(&token.id, &token.hash, &req.hosts, expires, now_secs())
            .map_err(|e| ApiError::internal("storing a token", e))?;
        eprintln!("vigo-server: created token id {} for hosts {} expiring at {expires}", token.id, req.hosts);
        Ok(serde_json::json!({ "id": token.id, "token": token.text, "hosts": req.hosts, "expires": expires }))
    })
    .await?;
    Ok(Json(created).into_response())
}

async fn list_nodes(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    require_admin(&peer, "admin/nodes")?;
    let mut nodes: Vec<serde_json::Value> = state
        .index
        .nodes()
        .iter()
        .map(|(name, n)| {
            serde_json::json!({
                "name": name,
                "public_key": n.key.to_string(),
                "revoked": n.revoked,
                "last_seq": n.last_seq,
                "results_stored": n.results_stored,
                "bundle": n.bundle.as_ref().map(|b| b.hash.to_string()),
            })
        })
        .collect();
    nodes.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(serde_json::json!({ "nodes": nodes })).into_response())
}

async fn revoke_node(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    const ROUTE: &str = "admin/revoke";
    require_admin(&peer, ROUTE)?;
    // The index first: from this moment every request of the node is refused.
    let known = match state.index.nodes().get_mut(&name) {
        Some(n) => {
            n.revoked = true;
            n.bundle = None;
            true
        }
        None => false,
    };
    if !known {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            ROUTE,
            &peer,
            &format!("no node named {name}"),
        ));
    }
    let st = state.clone();
    let n = name.clone();
    blocking(move || {
        st.db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .revoke(&n)
            .map_err(|e| ApiError::internal("storing a revocation", e))
    })
    .await?;
    eprintln!("vigo-server: revoked node {name}");
    Ok(Json(serde_json::json!({ "revoked": name })).into_response())
}

async fn stats(
    AxState(state): AxState<Arc<State>>,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    require_admin(&peer, "admin/stats")?;
    use std::sync::atomic::Ordering::Relaxed;
    let nodes = state.index.nodes().len();
    let v = &state.verifier.stats;
    Ok(Json(serde_json::json!({
        "db_queries": state.queries.load(Relaxed),
        "compiles": state.compiles.load(Relaxed),
        "nodes": nodes,
        "verify_batches": v.batches.load(Relaxed),
        "verify_batched": v.batched.load(Relaxed),
        "verify_fallbacks": v.fallbacks.load(Relaxed),
        "verify_inline": v.inline.load(Relaxed),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::Bytes;
    use hyper::body::Frame;

    use super::{Overflow, collect, token_id};

    /// A body that hands out the given frames, one per poll.
    struct Frames(VecDeque<Bytes>);

    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn bodies_are_collected_whole_in_any_framing_within_the_limit() {
        // (frames, limit, the body or None for too large)
        let cases: [(&[&str], usize, Option<&str>); 8] = [
            (&[], 10, Some("")),
            (&["{}"], 10, Some("{}")),
            (&["ab", "cd"], 10, Some("abcd")),
            (&["a", "", "bc", "d"], 10, Some("abcd")),
            (&["0123456789"], 10, Some("0123456789")),
            (&["0123456789", "a"], 10, None),
            (&["0123", "456789a"], 10, None),
            (&["01234567890"], 10, None),
        ];
        for (frames, max, want) in cases {
            let body = Frames(frames.iter().map(|f| Bytes::from(f.to_string())).collect());
            let got = collect(body, max).await;
            match (got, want) {
                (Ok(bytes), Some(want)) => assert_eq!(&bytes[..], want.as_bytes(), "{frames:?}"),
                (Err(Overflow::TooLarge), None) => {}
                (Ok(bytes), None) => panic!("{frames:?}: collected {bytes:?} past the limit"),
                (Err(_), want) => panic!("{frames:?}: refused, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn token_ids_come_only_from_well_formed_tokens() {
        for (text, id) in [
            ("vigo_0a1b_ffee", Some("0a1b")),
            ("vigo__ffee", None),
            ("vigo_0a1b_", None),
            ("vigo_0a1b", None),
            ("vigo_zz_ff", None),
            ("0a1b_ffee", None),
            ("", None),
        ] {
            assert_eq!(token_id(text), id, "{text:?}");
        }
    }
}
