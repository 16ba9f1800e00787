//! `vigo-fleetsim`: many simulated agents against a real `vigo-server`, to measure what one
//! server sustains. Each node enrolls for real (a one-time token per node from the admin
//! API, a key and proof of its own) and then checks in signed exactly as the agent does,
//! over kept-alive mutual-TLS connections or a new (resumed) TLS 1.3 connection per check-in.
//!
//! The driver runs closed-loop: `concurrency` tasks each own every `concurrency`-th node and
//! check them in one after the other as fast as the server answers, so the rate measured is
//! the server's (plus this client's) capacity, not a schedule. It runs on one thread: the
//! simulator is meant to be pinned to a core of its own beside the server's.
//!
//! Errors here are `anyhow` rather than a `thiserror` enum: this is a measuring tool whose
//! every failure ends the run with a message, like `main` and `xtask`.

pub mod net;
pub mod node;
pub mod report;
pub mod spawn;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use vigo_shared::sign::PublicKey;

use net::{Conn, Target};
use node::{Outcome, SimNode};
use report::{EnrollReport, ModeReport, Percentiles, PublishReport, Report};

/// How check-ins use connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Each node keeps its connection open and reuses it.
    Keepalive,
    /// Each check-in opens a new TLS connection (resuming the node's last session).
    Reconnect,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Keepalive => "keepalive",
            Mode::Reconnect => "reconnect",
        }
    }

    pub fn parse(text: &str) -> Result<Mode> {
        match text {
            "keepalive" => Ok(Mode::Keepalive),
            "reconnect" => Ok(Mode::Reconnect),
            _ => bail!("mode {text:?} is neither keepalive nor reconnect"),
        }
    }
}

/// Where the server comes from.
pub enum ServerChoice {
    /// Start one: `vigo-server init` + `run` in a temporary directory.
    Spawn {
        server_bin: PathBuf,
        config: PathBuf,
        secrets: PathBuf,
        cpu: Option<usize>,
        /// More arguments for `vigo-server run`.
        extra_args: Vec<String>,
    },
    /// Attach to a running one; `data` holds the admin credential (and `ca.pem`).
    Attach {
        url: String,
        data: PathBuf,
        ca: Option<PathBuf>,
        pid: Option<u32>,
    },
}

/// What to simulate.
pub struct Options {
    pub nodes: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub modes: Vec<Mode>,
    pub changing_share: f64,
    pub results_share: f64,
    /// In keep-alive mode, how many nodes check in (each over a connection of its own);
    /// the others stay enrolled and idle. `None`: all of them.
    pub keepalive_nodes: Option<usize>,
    /// Seconds into each timed phase at which the config is changed and published (spawned
    /// server only): every node's next check-in then recompiles.
    pub publish_at: Option<f64>,
    pub server: ServerChoice,
}

/// The host-name glob of every simulated node's token, and the names: `db-sim-N.prod` for
/// changing nodes (the example config's `db*.prod` group, whose `when:` reads
/// `os_family`), `node-sim-N.prod` for the others.
pub const TOKEN_GLOB: &str = "*-sim-*.prod";

fn node_name(i: usize, changing: bool) -> String {
    if changing {
        format!("db-sim-{i:06}.prod")
    } else {
        format!("node-sim-{i:06}.prod")
    }
}

fn count(map: &mut BTreeMap<String, u64>, kind: &str, detail: &str) {
    let n = map.entry(kind.to_string()).or_insert(0);
    *n += 1;
    if *n <= 3 {
        eprintln!("vigo-fleetsim: {kind}: {detail}");
    }
}

/// Runs the simulation and returns what it measured.
pub fn run(opts: Options) -> Result<Report> {
    if opts.nodes == 0 || opts.concurrency == 0 {
        bail!("--nodes and --concurrency must be at least 1");
    }
    let spawned = match &opts.server {
        ServerChoice::Spawn {
            server_bin,
            config,
            secrets,
            cpu,
            extra_args,
        } => Some(spawn::spawn(&spawn::SpawnOptions {
            server_bin,
            config,
            secrets,
            cpu: *cpu,
            max_connections: opts.nodes + opts.concurrency + 256,
            extra_args,
        })?),
        ServerChoice::Attach { .. } => None,
    };
    if opts.publish_at.is_some() && spawned.is_none() {
        bail!("--publish-at changes the server's config: it needs --spawn");
    }
    let config = spawned.as_ref().map(|s| s.config.clone());
    let (url, data, ca_path, pid) = match (&opts.server, &spawned) {
        (_, Some(s)) => (
            s.url.clone(),
            s.data.clone(),
            s.data.join("ca.pem"),
            Some(s.child.id()),
        ),
        (ServerChoice::Attach { url, data, ca, pid }, None) => (
            url.clone(),
            data.clone(),
            ca.clone().unwrap_or_else(|| data.join("ca.pem")),
            *pid,
        ),
        _ => unreachable!("a spawned server exists exactly when asked for"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = rt.block_on(simulate(&opts, &url, &data, &ca_path, pid, config))?;
    drop(spawned);
    Ok(report)
}

struct Ctx {
    /// Publishes started by `--publish-at` (counted before the request is sent).
    publishes: std::sync::atomic::AtomicU64,
    target: Target,
    ca: CertificateDer<'static>,
    admin: Arc<rustls::ClientConfig>,
    anonymous: Arc<rustls::ClientConfig>,
    bundle_key: PublicKey,
}

async fn admin_call(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Value> {
    if !conn.as_ref().is_some_and(Conn::usable) {
        *conn = Some(
            Conn::open(&ctx.target, &ctx.admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let c = conn.as_mut().expect("opened above");
    let (status, answer) = c
        .request(&ctx.target, method, path, &[], body)
        .await
        .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
    if status != 200 {
        bail!(
            "{method} {path} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    serde_json::from_slice(&answer).with_context(|| format!("{method} {path}: not JSON"))
}

async fn stats(ctx: &Ctx) -> Value {
    let mut conn = None;
    admin_call(ctx, &mut conn, "GET", "/v1/admin/stats", Vec::new())
        .await
        .unwrap_or(Value::Null)
}

fn proc_now(pid: Option<u32>) -> spawn::ProcStats {
    pid.map(spawn::proc_stats).unwrap_or_default()
}

/// Changes the served config and publishes it: a comment line appended to one module
/// changes the config's hash and no resource, so every node's next check-in recompiles (the
/// policy generation changed) and gets a new bundle that differs only in the policy version
/// it carries — the whole-fleet recompile a publish causes, without changing what the nodes
/// converge to.
async fn publish_change(
    ctx: &Ctx,
    config: &std::path::Path,
    phase_start: Instant,
) -> PublishReport {
    let at_secs = phase_start.elapsed().as_secs_f64();
    let module = config.join("modules/base.yaml");
    let mut report = PublishReport {
        at_secs,
        ..PublishReport::default()
    };
    let changed = std::fs::read_to_string(&module).and_then(|text| {
        std::fs::write(
            &module,
            format!("{text}\n# vigo-fleetsim publish at {at_secs:.1} s\n"),
        )
    });
    if let Err(e) = changed {
        report.error = Some(format!("changing {}: {e}", module.display()));
        return report;
    }
    let mut conn = None;
    let before = stats(ctx).await;
    ctx.publishes
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    match admin_call(ctx, &mut conn, "POST", "/v1/admin/publish", Vec::new()).await {
        Ok(v) => {
            report.result = v["result"].as_str().unwrap_or("?").to_string();
            report.compiles_before = before["compiles"].as_u64().unwrap_or(0);
        }
        Err(e) => report.error = Some(format!("publishing: {e:#}")),
    }
    report.took_secs = phase_start.elapsed().as_secs_f64() - at_secs;
    report
}

/// Splits the nodes among `c` workers (worker w gets nodes w, w + c, ...).
fn deal(nodes: Vec<SimNode>, c: usize) -> Vec<Vec<SimNode>> {
    let mut hands: Vec<Vec<SimNode>> = (0..c).map(|_| Vec::new()).collect();
    for (i, n) in nodes.into_iter().enumerate() {
        hands[i % c].push(n);
    }
    hands
}

async fn simulate(
    opts: &Options,
    url: &str,
    data: &std::path::Path,
    ca_path: &std::path::Path,
    pid: Option<u32>,
    config: Option<PathBuf>,
) -> Result<Report> {
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ca = CertificateDer::from_pem_slice(&read(ca_path)?).context("reading the CA")?;
    let admin_chain = net::pem_certs(&String::from_utf8_lossy(&read(&data.join("admin.pem"))?))?;
    let admin_key = PrivateKeyDer::from_pem_slice(&read(&data.join("admin.key"))?)
        .context("reading admin.key")?;
    let ctx = Arc::new(Ctx {
        publishes: std::sync::atomic::AtomicU64::new(0),
        target: Target::parse(url)?,
        admin: net::client_config(&ca, Some((admin_chain, admin_key)))?,
        anonymous: net::client_config(&ca, None)?,
        ca,
        bundle_key: PublicKey::parse(
            String::from_utf8_lossy(&read(&data.join("bundle.pub"))?).trim(),
        )
        .map_err(|e| anyhow::anyhow!("reading the bundle key: {e}"))?,
    });
    let c = opts.concurrency.min(opts.nodes);
    let mut report = Report {
        nodes: opts.nodes,
        changing_share: opts.changing_share,
        results_share: opts.results_share,
        server_pid: pid,
        stats_start: stats(&ctx).await,
        ..Report::default()
    };
    let changing = ((opts.nodes as f64) * opts.changing_share).round() as usize;
    report.changing_nodes = changing;
    let nodes: Vec<SimNode> = (0..opts.nodes)
        .map(|i| SimNode::new(node_name(i, i < changing), i < changing))
        .collect();

    // Tokens: one per node (they are one-time), all for the simulator's glob.
    eprintln!("vigo-fleetsim: creating {} tokens", opts.nodes);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..c {
        let ctx = ctx.clone();
        let n = opts.nodes;
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut tokens = Vec::new();
            let body = serde_json::json!({ "hosts": TOKEN_GLOB, "ttl_secs": 86_400 }).to_string();
            for _ in (w..n).step_by(c) {
                let v = admin_call(
                    &ctx,
                    &mut conn,
                    "POST",
                    "/v1/admin/tokens",
                    body.clone().into_bytes(),
                )
                .await?;
                tokens.push(
                    v["token"]
                        .as_str()
                        .context("no token in the answer")?
                        .to_string(),
                );
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut tokens: Vec<Vec<String>> = Vec::new();
    for t in tasks {
        tokens.push(t.await.context("token task")??);
    }
    report.enrollment.tokens_secs = started.elapsed().as_secs_f64();

    // Enrollment.
    eprintln!("vigo-fleetsim: enrolling {} nodes", opts.nodes);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (hand, tokens) in deal(nodes, c).into_iter().zip(tokens) {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = BTreeMap::new();
            let mut hand = hand;
            for (node, token) in hand.iter_mut().zip(tokens) {
                if let Err(e) = node
                    .enroll(&ctx.target, &ctx.anonymous, &ctx.ca, &token)
                    .await
                {
                    count(&mut errors, e.kind, &e.detail);
                }
            }
            (hand, errors)
        }));
    }
    let mut nodes = Vec::new();
    let mut enroll_errors = BTreeMap::new();
    for t in tasks {
        let (hand, errors) = t.await.context("enroll task")?;
        nodes.extend(hand);
        for (k, v) in errors {
            *enroll_errors.entry(k).or_insert(0) += v;
        }
    }
    let enroll_secs = started.elapsed().as_secs_f64();
    let enrolled = nodes.iter().filter(|n| n.enrolled()).count();
    report.enrollment = EnrollReport {
        enrolled,
        tokens_secs: report.enrollment.tokens_secs,
        enroll_secs,
        enroll_per_sec: enrolled as f64 / enroll_secs.max(1e-9),
        errors_by_kind: enroll_errors,
    };
    nodes.retain(SimNode::enrolled);
    if nodes.is_empty() {
        bail!("no node enrolled; see the errors above");
    }

    // First check-in of every node: full facts, the first compile of its bundle.
    eprintln!("vigo-fleetsim: first check-in of {} nodes", nodes.len());
    let started = Instant::now();
    // Each node closes its connection afterwards, as a real agent does: a fleet of 100,000
    // would otherwise hold 100,000 connections open on the server at the end of this pass.
    let (back, tally) = checkin_phase(&ctx, nodes, c, None, true, 0.0).await;
    nodes = back;
    report.first_checkin_secs = started.elapsed().as_secs_f64();
    report.first_checkin_errors = tally.errors;
    // The connections of that pass are closed; the server may still be writing the last
    // facts. Its memory now is the enrolled fleet's.
    report.server_fleet = proc_now(pid);

    for &mode in &opts.modes {
        for n in nodes.iter_mut() {
            n.disconnect();
        }
        // By name: a phase hands the nodes back in another order (see `deal`).
        let bundles_before: std::collections::HashMap<String, u64> =
            nodes.iter().map(|n| (n.name.clone(), n.bundles)).collect();
        eprintln!("vigo-fleetsim: {} for {:?}", mode.name(), opts.duration);
        let stats_before = stats(&ctx).await;
        let server_before = proc_now(pid);
        let sim_before = spawn::proc_stats(std::process::id());
        let started = Instant::now();
        let active = match (mode, opts.keepalive_nodes) {
            (Mode::Keepalive, Some(k)) => k.clamp(1, nodes.len().max(1)),
            _ => nodes.len(),
        };
        let idle = nodes.split_off(active.min(nodes.len()));
        let publisher = match (opts.publish_at, &config) {
            (Some(at), Some(dir)) => {
                let ctx = ctx.clone();
                let dir = dir.clone();
                let when = started + Duration::from_secs_f64(at.max(0.0));
                Some(tokio::spawn(async move {
                    tokio::time::sleep_until(when.into()).await;
                    publish_change(&ctx, &dir, started).await
                }))
            }
            _ => None,
        };
        let (back, mut tally) = checkin_phase(
            &ctx,
            nodes,
            c,
            Some(started + opts.duration),
            mode == Mode::Reconnect,
            opts.results_share,
        )
        .await;
        nodes = back;
        nodes.extend(idle);
        let publish = match publisher {
            Some(task) => Some(task.await.unwrap_or_else(|e| PublishReport {
                error: Some(format!("the publish task failed: {e}")),
                ..PublishReport::default()
            })),
            None => None,
        };
        let secs = started.elapsed().as_secs_f64();
        let server_after = proc_now(pid);
        let sim_cpu = spawn::proc_stats(std::process::id()).cpu_secs - sim_before.cpu_secs;
        let stats_after = stats(&ctx).await;
        let server_cpu = server_after.cpu_secs - server_before.cpu_secs;
        let per_second = std::mem::take(&mut tally.per_second);
        report.modes.push(ModeReport {
            mode: mode.name().to_string(),
            concurrency: c,
            duration_secs: secs,
            checkins: tally.checkins,
            checkins_per_sec: tally.checkins as f64 / secs.max(1e-9),
            latency: Percentiles::of(&mut tally.latencies),
            errors: tally.errors.values().sum(),
            errors_by_kind: tally.errors,
            bundles: tally.bundles,
            unchanged: tally.unchanged,
            with_results: tally.with_results,
            handshakes_full: tally.full,
            handshakes_resumed: tally.resumed,
            changing_nodes_with_new_bundle: nodes
                .iter()
                .filter(|n| {
                    n.changing && n.bundles > bundles_before.get(&n.name).copied().unwrap_or(0)
                })
                .count() as u64,
            server_before,
            server_after,
            server_cpu_secs: server_cpu,
            server_cpu_us_per_checkin: server_cpu * 1e6 / tally.checkins.max(1) as f64,
            sim_cpu_secs: sim_cpu,
            sim_cpu_us_per_checkin: sim_cpu * 1e6 / tally.checkins.max(1) as f64,
            stats_before,
            stats_after,
            publish: publish.map(|p| p.with_rates(&per_second)),
            per_second,
        });
    }
    for n in nodes.iter_mut() {
        n.disconnect();
    }
    // Let the server's flusher write what the last check-ins queued before measuring.
    tokio::time::sleep(Duration::from_millis(600)).await;
    report.stats_end = stats(&ctx).await;
    report.server_end = proc_now(pid);
    let (db, wal) = spawn::sqlite_bytes(data);
    report.sqlite_bytes = db;
    report.sqlite_wal_bytes = wal;
    Ok(report)
}

#[derive(Default)]
struct Tally {
    /// Check-ins completed in each second of the phase.
    per_second: Vec<u64>,
    checkins: u64,
    latencies: Vec<u64>,
    errors: BTreeMap<String, u64>,
    bundles: u64,
    unchanged: u64,
    with_results: u64,
    full: u64,
    resumed: u64,
}

/// Check-ins by `c` workers: each node once when `until` is `None`, else round after
/// round until then.
async fn checkin_phase(
    ctx: &Arc<Ctx>,
    nodes: Vec<SimNode>,
    c: usize,
    until: Option<Instant>,
    reconnect: bool,
    results_share: f64,
) -> (Vec<SimNode>, Tally) {
    let mut tasks = Vec::new();
    let phase_start = Instant::now();
    for hand in deal(nodes, c) {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let mut hand = hand;
            let mut t = Tally::default();
            let mut k: u64 = 0;
            'rounds: loop {
                for node in hand.iter_mut() {
                    if until.is_some_and(|u| Instant::now() >= u) {
                        break 'rounds;
                    }
                    // An exact share: a result whenever k * share crosses an integer.
                    let with_result = ((k + 1) as f64 * results_share).floor()
                        > (k as f64 * results_share).floor();
                    k += 1;
                    match node
                        .checkin(
                            &ctx.target,
                            &ctx.bundle_key,
                            reconnect,
                            with_result,
                            &ctx.publishes,
                        )
                        .await
                    {
                        Ok((outcome, micros, hs)) => {
                            t.checkins += 1;
                            let second = phase_start.elapsed().as_secs() as usize;
                            if t.per_second.len() <= second {
                                t.per_second.resize(second + 1, 0);
                            }
                            t.per_second[second] += 1;
                            t.latencies.push(micros);
                            match outcome {
                                Outcome::Bundle => t.bundles += 1,
                                Outcome::Unchanged => t.unchanged += 1,
                            }
                            t.with_results += u64::from(with_result);
                            match hs {
                                Some(true) => t.resumed += 1,
                                Some(false) => t.full += 1,
                                None => {}
                            }
                        }
                        Err(e) => count(&mut t.errors, e.kind, &e.detail),
                    }
                }
                if until.is_none() {
                    break;
                }
            }
            (hand, t)
        }));
    }
    let mut nodes = Vec::new();
    let mut all = Tally::default();
    for task in tasks {
        let Ok((hand, t)) = task.await else {
            count(&mut all.errors, "task_panicked", "a worker panicked");
            continue;
        };
        nodes.extend(hand);
        if all.per_second.len() < t.per_second.len() {
            all.per_second.resize(t.per_second.len(), 0);
        }
        for (sum, n) in all.per_second.iter_mut().zip(&t.per_second) {
            *sum += n;
        }
        all.checkins += t.checkins;
        all.latencies.extend(t.latencies);
        for (k, v) in t.errors {
            *all.errors.entry(k).or_insert(0) += v;
        }
        all.bundles += t.bundles;
        all.unchanged += t.unchanged;
        all.with_results += t.with_results;
        all.full += t.full;
        all.resumed += t.resumed;
    }
    (nodes, all)
}
