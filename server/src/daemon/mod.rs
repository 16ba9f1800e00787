//! The running server: state, the mutual-TLS listener with its connection limits, the
//! background flusher, and clean shutdown.

pub mod bootstrap;
pub mod checkin;
pub mod hold;
pub mod init;
pub mod node_key;
pub mod publish;
pub mod routes;
pub mod verify;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::Method;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use vigo_shared::protocol::PATH_CHECKIN;
use vigo_shared::sign::SigningKey;

use crate::compile::inputs::ConfigDigests;
use crate::config::model::Config;
use crate::fleet::index::{BundleMemo, FleetIndex};
use crate::pki::Ca;
use crate::store::Db;

/// Tunables of the listener; the defaults suit production, tests shorten them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub max_body: usize,
    /// Time allowed for the TLS handshake and for each request's headers.
    pub header_timeout: Duration,
    /// Time allowed to read a request body (408 beyond).
    pub body_timeout: Duration,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Enrollment attempts per source address per minute.
    pub enroll_per_minute: u32,
    /// Time between writes of the dirty set.
    pub flush_interval: Duration,
    /// Time between writes of check-in progress (last sequence number and check-in time)
    /// of nodes that sent no results; see [`flush`].
    pub progress_interval: Duration,
    /// Most check-in signatures verified in one batch; 1 verifies each in its handler.
    pub verify_batch: usize,
    /// Longest a check-in signature waits for others to batch with (at most 1 ms).
    pub verify_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 4 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            enroll_per_minute: 10,
            flush_interval: Duration::from_millis(200),
            progress_interval: Duration::from_secs(5),
            verify_batch: verify::BatchConfig::default().max_batch,
            verify_wait: verify::BatchConfig::default().max_wait,
        }
    }
}

/// The data directory's files.
pub struct DataDir(pub PathBuf);

impl DataDir {
    /// A file in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// Everything a handler needs.
pub struct State {
    /// The in-memory fleet.
    pub index: FleetIndex,
    /// The database: enrollment, admin and the flusher use it; check-ins never do.
    pub db: Mutex<Db>,
    /// Counts database statements.
    pub queries: Arc<AtomicU64>,
    /// Counts bundle compilations (a cache hit compiles nothing).
    pub compiles: AtomicU64,
    /// The config being served; `vigocli config publish` swaps it (see [`State::policy`]).
    pub policy: RwLock<Arc<Policy>>,
    /// Where the config was loaded from, for publish; `None` when the state was built from
    /// a config in memory (tests), and then publish is refused.
    pub source: Option<ConfigSource>,
    /// Serializes publishes, so that two at once cannot interleave load and swap.
    pub publishing: tokio::sync::Mutex<()>,
    /// Signs bundles.
    pub bundle_key: SigningKey,
    /// Issues node certificates.
    pub ca: Ca,
    /// Limits.
    pub limits: Limits,
    /// Per-address enrollment buckets.
    pub enroll_buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// Verifies check-in signatures in micro-batches.
    pub verifier: verify::BatchVerifier,
    /// Bundle compiles running at once: one per core. More would not finish sooner, would
    /// take CPU from check-ins, and each extra compiling thread keeps a malloc arena of its
    /// own (at 10,000 nodes' first check-ins that was ~15 MB of resident memory).
    pub compile_slots: tokio::sync::Semaphore,
    /// The verified dist the bootstrap routes serve (`vigo-server run --dist`); set once
    /// before serving. Empty: those routes answer 404.
    pub dist: std::sync::OnceLock<Arc<bootstrap::Dist>>,
}

/// One loaded and validated config, as served: swapped whole on publish, so a check-in
/// sees either the old or the new one, never a mixture.
pub struct Policy {
    /// The config.
    pub config: Config,
    /// Conditions of node rules, for `facts_used`.
    pub rule_conditions: Vec<String>,
    /// Counts the versions served since start: cached bundles carry it. It is not the
    /// config hash because secret values are not part of that hash, and publishing a
    /// rotated secret must rebuild the bundles that carry it.
    pub generation: u64,
    /// Digests of the config's parts: a bundle of an older generation whose inputs all
    /// digest the same here is kept (`compile::inputs`). `None`: every bundle of an older
    /// generation is recompiled.
    pub digests: Option<ConfigDigests>,
}

impl Policy {
    /// A snapshot of a config that loaded without diagnostics.
    pub fn new(config: Config) -> Policy {
        let rule_conditions = config
            .rules
            .iter()
            .filter_map(|r| r.when.as_ref().map(|c| c.text.clone()))
            .collect();
        let digests = ConfigDigests::of(&config);
        Policy {
            config,
            rule_conditions,
            generation: 0,
            digests,
        }
    }

    /// Whether `memo`, compiled from an older generation for `node`, is still what this
    /// policy would compile (for the same facts).
    pub fn keeps(&self, memo: &BundleMemo, node: &str) -> bool {
        match (&self.digests, &memo.inputs) {
            (Some(digests), Some(inputs)) => digests.unchanged_for(&self.config, inputs, node),
            _ => false,
        }
    }

    /// Whether `config` is what this policy serves already: same files (hash) and same
    /// secret values.
    pub fn serves(&self, config: &Config) -> bool {
        self.config.hash == config.hash
            && self.config.secrets.len() == config.secrets.len()
            && self
                .config
                .secrets
                .iter()
                .zip(&config.secrets)
                .all(|((ra, a), (rb, b))| ra == rb && a.expose() == b.expose())
    }

    /// The config's hash: names this version of the policy.
    pub fn hash(&self) -> &str {
        &self.config.hash
    }
}

/// The config and secrets directories the server loads (at start and on publish).
#[derive(Clone, Debug)]
pub struct ConfigSource {
    /// The config directory, absolute.
    pub dir: PathBuf,
    /// The secrets directory.
    pub secrets: PathBuf,
}

impl State {
    /// The policy being served now. A clone of an `Arc` under a read lock: cheap, and
    /// never held across a compile.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves `policy` from now on. Cached bundles of the old one are recompiled lazily:
    /// each carries the generation of the policy it came from.
    pub fn swap_policy(&self, mut policy: Policy) {
        let mut current = self.policy.write().unwrap_or_else(|e| e.into_inner());
        policy.generation = current.generation + 1;
        *current = Arc::new(policy);
    }
}

/// Who is on the other end of a connection, as the TLS layer verified it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Common name of the verified client certificate; `None` without one.
    pub name: Option<Arc<str>>,
    /// The remote address.
    pub addr: SocketAddr,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Builds the rustls server config: our certificate chain, client certificates verified
/// against our CA, anonymous clients allowed through TLS only so that `/v1/enroll` is
/// reachable (every other route requires a verified certificate).
pub fn tls_config(data: &DataDir) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca = CertificateDer::from_pem_file(data.file("ca.pem")).context("reading ca.pem")?;
    let mut chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(data.file("server.pem"))
            .context("reading server.pem")?
            .collect::<Result<_, _>>()
            .context("reading server.pem")?;
    chain.push(ca.clone());
    let key =
        PrivateKeyDer::from_pem_file(data.file("server.key")).context("reading server.key")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).context("adding the CA to the client roots")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("building the client verifier")?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("choosing TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("loading the server certificate")?;
    // TLS 1.3 session resumption for agents that reconnect per check-in: stateless tickets
    // (encrypted with a key rotated every 6 h) cost the server no memory per node, whereas
    // rustls' default stateful cache holds only 256 sessions, far fewer than a fleet.
    // A resumed session carries the client certificate chain, so identity is unchanged.
    let mut config = config;
    config.ticketer = rustls::crypto::ring::Ticketer::new().context("creating the TLS ticketer")?;
    // One ticket per handshake, not rustls' two: an agent opens one connection at a time and
    // spends one ticket on each, so the second was encrypted, sent and never used — each
    // ticket carries the client certificate chain (docs/performance.md).
    config.send_tls13_tickets = 1;
    Ok(config)
}

/// Builds the state from the data directory and a loaded config; `source` is where the
/// config came from, which publish loads again.
pub fn state(
    data: &DataDir,
    config: Config,
    source: Option<ConfigSource>,
    limits: Limits,
) -> Result<Arc<State>> {
    let db = Db::open(&data.file("vigo.db")).context("opening the database")?;
    let rows = db.nodes().context("loading nodes")?;
    // The config loaded at start is a version too: the history says what is serving even
    // when it changed on disk between restarts rather than through a publish.
    if db
        .last_accepted_policy()
        .context("reading the publish history")?
        .as_deref()
        != Some(config.hash.as_str())
    {
        db.record_publish(&crate::store::PublishRow {
            policy: config.hash.clone(),
            at: now_secs(),
            who: "vigo-server (start)".to_string(),
            result: "accepted".to_string(),
            diagnostics: 0,
        })
        .context("recording the config loaded at start")?;
    }
    let index = FleetIndex::from_rows(rows);
    let bundle_key = SigningKey::parse(&read(&data.file("bundle.key"))?)
        .map_err(|e| anyhow::anyhow!("reading bundle.key: {e}"))?;
    let ca = Ca::load(&read(&data.file("ca.pem"))?, &read(&data.file("ca.key"))?)
        .context("loading the CA")?;
    let verifier = if limits.verify_batch > 1 {
        verify::BatchVerifier::start(verify::BatchConfig {
            max_batch: limits.verify_batch,
            max_wait: limits.verify_wait.min(Duration::from_millis(1)),
            ..verify::BatchConfig::default()
        })
        .context("starting the signature verifier thread")?
    } else {
        verify::BatchVerifier::inline()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Arc::new(State {
        verifier,
        compile_slots: tokio::sync::Semaphore::new(cores),
        index,
        queries: db.query_counter(),
        compiles: AtomicU64::new(0),
        db: Mutex::new(db),
        policy: RwLock::new(Arc::new(Policy::new(config))),
        source,
        publishing: tokio::sync::Mutex::new(()),
        bundle_key,
        ca,
        limits,
        enroll_buckets: Mutex::new(HashMap::new()),
        dist: std::sync::OnceLock::new(),
    }))
}

/// Writes the dirty set to the database in one transaction and marks results durable.
/// Facts and results are written every time, results with their node's progress (its
/// `results_stored` acknowledges them); the progress of other nodes (sequence number and
/// check-in time: all a no-change check-in moves) only when `progress` is true, which the
/// flusher makes it once per [`Limits::progress_interval`] and shutdown always. Each such
/// row is a random page of the nodes table rewritten: at 100,000 nodes, 1,000 of them cost
/// ~45 ms a flush (benches/store.rs), and a node that checks in often needs its row
/// written once per interval, not once per flush.
pub async fn flush(state: &Arc<State>, progress: bool) {
    let batch = state.index.dirty().take(progress);
    if batch.is_empty() {
        return;
    }
    let st = state.clone();
    let written = tokio::task::spawn_blocking(move || {
        let now = now_secs();
        let result = st
            .db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush(&batch, now);
        (result, batch)
    })
    .await;
    match written {
        Ok((Ok(()), batch)) => state.index.mark_stored(&batch),
        Ok((Err(e), batch)) => {
            eprintln!("vigo-server: flushing to the database failed, will retry: {e}");
            state.index.dirty().restore(batch);
        }
        Err(e) => eprintln!("vigo-server: the flush task failed: {e}"),
    }
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix microseconds now.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Serves on `listener` until SIGTERM or Ctrl-C, then flushes the dirty set.
pub async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    state: Arc<State>,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let router = routes::app(state.clone());
    let slots = Arc::new(Semaphore::new(state.limits.max_connections));

    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.limits.flush_interval);
            let mut progress_due = tokio::time::Instant::now() + state.limits.progress_interval;
            loop {
                let now = tick.tick().await;
                let progress = now >= progress_due;
                if progress {
                    progress_due = now + state.limits.progress_interval;
                }
                flush(&state, progress).await;
            }
        })
    };

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("vigo-server: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            eprintln!("vigo-server: connection from {addr} closed: connection limit reached");
            drop(tcp);
            continue;
        };
        // Without TCP_NODELAY, a small write waits for the client's ACK of the one before
        // (delayed up to ~40 ms on Linux): measured with vigo-fleetsim in reconnect mode,
        // when the answer followed the session ticket (docs/performance.md).
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let header_timeout = state.limits.header_timeout;
            // The handshake's writes are held until it reads, and a TLS 1.3 session ticket
            // until the first response: one write fewer per connection (hold.rs).
            let tcp = hold::HoldingStream::new(tcp);
            let accept = acceptor.accept(tcp).into_fallible();
            let mut tls = match tokio::time::timeout(header_timeout, accept).await {
                Ok(Ok(tls)) => tls,
                Ok(Err((e, mut tcp))) => {
                    // Send the alert rustls wrote, which is held like the handshake.
                    tcp.handshake_done(false);
                    let _ = tokio::time::timeout(header_timeout, tcp.shutdown()).await;
                    eprintln!("vigo-server: TLS handshake with {addr} failed: {e}");
                    return;
                }
                Err(_) => {
                    eprintln!("vigo-server: TLS handshake with {addr} timed out");
                    return;
                }
            };
            let tls13 =
                tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
            tls.get_mut().0.handshake_done(tls13);
            let name = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::pki::subject_common_name(c))
                .map(Arc::<str>::from);
            let peer = Peer { name, addr };
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let (state, peer, mut router) = (state.clone(), peer.clone(), router.clone());
                async move {
                    // Every agent's every poll goes straight to the check-in handler,
                    // without the router's matching, the request extension and the
                    // router's boxed futures (with the handler's borrowing, 18 % fewer
                    // instructions per kept-alive check-in: docs/performance.md).
                    if req.method() == Method::POST && req.uri().path() == PATH_CHECKIN {
                        return Ok(checkin::handle(&state, &peer, req).await);
                    }
                    let mut req = req;
                    req.extensions_mut().insert(peer);
                    tower_service::Service::call(&mut router, req).await
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                // A peer that closes first (a probe handshake, an agent done with its
                // keep-alive connection) makes hyper's own shutdown fail: not worth a line.
                if !e.is_incomplete_message() && !e.to_string().contains("shutting down") {
                    eprintln!("vigo-server: connection with {addr} ended: {e}");
                }
            }
        });
    }
    eprintln!("vigo-server: shutting down; flushing state");
    flusher.abort();
    flush(&state, true).await;
    eprintln!("vigo-server: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("vigo-server: cannot listen for SIGTERM: {e}");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
