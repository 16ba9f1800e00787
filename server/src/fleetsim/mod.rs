//! `vigo-fleetsim`: many simulated agents against a real `vigo-server`, to measure what one
//! server sustains. Each node enrolls for real (a one-time token per node from the admin
//! API, a key and proof of its own) and then checks in signed exactly as the agent does,
//! over kept-alive mutual-TLS connections or a new (resumed) TLS 1.3 connection per check-in.
//!
//! The driver runs closed-loop: `concurrency` tasks each own every `concurrency`-th node and
//! check them in one after the other as fast as the server answers, so the rate measured is
//! the server's (plus this client's) capacity, not a schedule. It runs on one thread: the
//! simulator is meant to be pinned to a core of its own beside the server's, and must spend
//! much less per check-in than the server so that the server sets the pace (see node.rs
//! and net.rs for how; `sim_us/ci` in the report is that cost).
//!
//! Errors here are `anyhow` rather than a `thiserror` enum: this is a measuring tool whose
//! every failure ends the run with a message, like `main` and `xtask`.

pub mod net;
pub mod node;
mod phase;
mod publish;
pub mod report;
pub mod spawn;
pub mod steal;
pub mod window;
mod wire;

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
use node::{Publishes, Role, SimNode};
use phase::{Pace, Rounds, checkin_phase, connect_all, deal, presign};
pub use publish::PublishChange;
use publish::publish_change;
use report::{EnrollReport, ModeReport, Percentiles, PublishReport, Report};
use steal::Ticks;
use window::{Reading, StealPeak};

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

/// A timed phase: a mode, the check-ins in flight during it if not `--concurrency`, and
/// the rate they are sent at if paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase {
    pub mode: Mode,
    pub concurrency: Option<usize>,
    /// Check-ins per second offered on a fixed schedule (open loop), instead of each
    /// worker sending its next as soon as the last is answered (closed loop).
    pub rate: Option<u32>,
}

impl Phase {
    /// `MODE[@N][/RATE]`: `keepalive` or `reconnect`; `@N` for N check-ins in flight at most
    /// (`keepalive@16`); `/RATE` to offer RATE check-ins per second on a schedule
    /// (`keepalive/9600`: the latency at that load, which a closed loop cannot hold).
    pub fn parse(text: &str) -> Result<Phase> {
        let (head, rate) = match text.split_once('/') {
            None => (text, None),
            Some((head, r)) => match r.parse::<u32>() {
                Ok(r) if r > 0 => (head, Some(r)),
                _ => bail!(
                    "{text:?}: the rate after / must be a whole number of check-ins per second, at least 1"
                ),
            },
        };
        let (mode, concurrency) = match head.split_once('@') {
            None => (head, None),
            Some((mode, n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => (mode, Some(n)),
                _ => {
                    bail!("{text:?}: the concurrency after @ must be a whole number of at least 1")
                }
            },
        };
        Ok(Phase {
            mode: Mode::parse(mode)?,
            concurrency,
            rate,
        })
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
    /// The timed phases, one after the other.
    pub phases: Vec<Phase>,
    pub changing_share: f64,
    pub results_share: f64,
    /// In keep-alive mode, how many nodes check in (each over a connection of its own);
    /// the others stay enrolled and idle. `None`: all of them.
    pub keepalive_nodes: Option<usize>,
    /// Seconds into each timed phase at which the config is changed and published (spawned
    /// server only).
    pub publish_at: Option<f64>,
    /// What the publish changes.
    pub publish_change: PublishChange,
    /// Share of the steady nodes named `web-sim-N.prod`, whose bundles a module publish
    /// changes.
    pub publish_share: f64,
    /// Check-ins per second to sign ahead of each keep-alive phase (0: none), spread over
    /// the nodes that check in during it.
    pub presign_rate: f64,
    pub server: ServerChoice,
}

/// The host-name glob of every simulated node's token; the names are `db-sim-N.prod`,
/// `web-sim-N.prod` and `node-sim-N.prod` by [`Role`].
pub const TOKEN_GLOB: &str = "*-sim-*.prod";

/// The most check-ins in flight in any part of the run.
fn most_in_flight(opts: &Options) -> usize {
    opts.phases
        .iter()
        .filter_map(|p| p.concurrency)
        .fold(opts.concurrency, usize::max)
}

/// Whether the `k`-th of a series is one of an exact `share` of it, spread evenly: it is
/// when `k * share` crosses an integer.
fn in_share(k: u64, share: f64) -> bool {
    ((k + 1) as f64 * share).floor() > (k as f64 * share).floor()
}

/// The role of node `i`: the first `changing` nodes change; of the others, an evenly spread
/// `web_share` are web nodes (so that any run of nodes, such as the keep-alive subset, holds
/// about that share of them).
fn role(i: usize, changing: usize, web_share: f64) -> Role {
    if i < changing {
        Role::Changing
    } else if in_share((i - changing) as u64, web_share) {
        Role::Web
    } else {
        Role::Steady
    }
}

/// Adds counts by kind to `into`.
fn add_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (kind, n) in from {
        *into.entry(kind).or_insert(0) += n;
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
            max_connections: opts.nodes + most_in_flight(&opts) + 256,
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
    /// Publishes made by `--publish-at`.
    publishes: Publishes,
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
    body: &[u8],
) -> Result<Value> {
    if !conn.as_ref().is_some_and(Conn::usable) {
        *conn = Some(
            Conn::open(&ctx.target, &ctx.admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let c = conn.as_mut().expect("opened above");
    let answer = c
        .request(&ctx.target, method, path, &[], body)
        .await
        .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
    if answer.status != 200 {
        bail!(
            "{method} {path} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(answer.body)
        );
    }
    serde_json::from_slice(answer.body).with_context(|| format!("{method} {path}: not JSON"))
}

async fn stats(ctx: &Ctx) -> Value {
    let mut conn = None;
    admin_call(ctx, &mut conn, "GET", "/v1/admin/stats", &[])
        .await
        .unwrap_or(Value::Null)
}

fn proc_now(pid: Option<u32>) -> spawn::ProcStats {
    pid.map(spawn::proc_stats).unwrap_or_default()
}

/// Reads the server's CPU time (all threads, when its pid is known) and the host steal of
/// its CPU (`steal`, when the server runs on this host) every [`window::WINDOW_MS`] from
/// `started` until `until`, counted from `started`, for the phase's windows.
async fn sample_cpu(
    pid: Option<u32>,
    steal: Option<steal::Scope>,
    started: Instant,
    until: Instant,
) -> Vec<Reading> {
    let width = Duration::from_millis(u64::from(window::WINDOW_MS));
    let mut last = pid.map(spawn::thread_cpu_ns);
    let host_start = steal.and_then(steal::read);
    let mut total = 0;
    let mut readings = Vec::new();
    let mut tick = tokio::time::interval_at((started + width).into(), width);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let server_ns = match (pid, &mut last) {
            (Some(pid), Some(last)) => {
                let now = spawn::thread_cpu_ns(pid);
                total += spawn::cpu_ns_between(last, &now);
                *last = now;
                Some(total)
            }
            _ => None,
        };
        let host = host_start
            .zip(steal.and_then(steal::read))
            .map(|(start, now)| now.since(start));
        readings.push(Reading {
            at_ms: started.elapsed().as_millis() as u32,
            server_ns,
            host,
        });
        if Instant::now() >= until {
            return readings;
        }
    }
}

async fn simulate(
    opts: &Options,
    url: &str,
    data: &std::path::Path,
    ca_path: &std::path::Path,
    pid: Option<u32>,
    config: Option<PathBuf>,
) -> Result<Report> {
    // Whose steal counts: the CPU the spawned server is pinned to, or all of this host's
    // when it is not; an attached server is on this host only when its pid was given.
    let steal_scope = match &opts.server {
        ServerChoice::Spawn { cpu: Some(n), .. } => Some(steal::Scope::Cpu(*n)),
        ServerChoice::Spawn { cpu: None, .. } | ServerChoice::Attach { pid: Some(_), .. } => {
            Some(steal::Scope::AllCpus)
        }
        ServerChoice::Attach { pid: None, .. } => None,
    };
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ca = CertificateDer::from_pem_slice(&read(ca_path)?).context("reading the CA")?;
    let admin_chain = net::pem_certs(&String::from_utf8_lossy(&read(&data.join("admin.pem"))?))?;
    let admin_key = PrivateKeyDer::from_pem_slice(&read(&data.join("admin.key"))?)
        .context("reading admin.key")?;
    let ctx = Arc::new(Ctx {
        publishes: Publishes {
            affects_all: opts.publish_change == PublishChange::Settings,
            ..Publishes::default()
        },
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
        .map(|i| {
            let role = role(i, changing, opts.publish_share);
            SimNode::new(role.node_name(i), role)
        })
        .collect();
    report.web_nodes = nodes.iter().filter(|n| n.role == Role::Web).count();

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
                let v = admin_call(&ctx, &mut conn, "POST", "/v1/admin/tokens", body.as_bytes())
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
        add_counts(&mut enroll_errors, errors);
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
    let (back, tally) = checkin_phase(&ctx, nodes, c, Rounds::Once, true, 0.0, 0).await;
    nodes = back;
    report.first_checkin_secs = started.elapsed().as_secs_f64();
    report.first_checkin_errors = tally.errors;
    // The connections of that pass are closed; the server may still be writing the last
    // facts. Its memory now is the enrolled fleet's.
    report.server_fleet = proc_now(pid);

    for phase in &opts.phases {
        let mode = phase.mode;
        let c = phase
            .concurrency
            .unwrap_or(opts.concurrency)
            .min(opts.nodes);
        for n in nodes.iter_mut() {
            n.disconnect();
        }
        // By name: a phase hands the nodes back in another order (see `deal`).
        let bundles_before: std::collections::HashMap<String, (u64, u64)> = nodes
            .iter()
            .map(|n| (n.name.clone(), (n.bundles, n.publish_bundles)))
            .collect();
        let active = match (mode, opts.keepalive_nodes) {
            (Mode::Keepalive, Some(k)) => k.clamp(1, nodes.len().max(1)),
            _ => nodes.len(),
        };
        let idle = nodes.split_off(active.min(nodes.len()));
        // Only kept-alive check-ins are signed ahead: a reconnecting one costs this client
        // a TLS handshake (X25519) besides, which signing ahead would not take away.
        let presign_rate = if mode == Mode::Keepalive {
            opts.presign_rate
        } else {
            0.0
        };
        let presign = presign(&mut nodes, presign_rate, opts.duration);
        let connect_errors = if mode == Mode::Keepalive {
            let (back, errors) = connect_all(&ctx, nodes, c).await;
            nodes = back;
            errors
        } else {
            BTreeMap::new()
        };
        eprintln!("vigo-fleetsim: {} for {:?}", mode.name(), opts.duration);
        let stats_before = stats(&ctx).await;
        let server_before = proc_now(pid);
        let sim_before = spawn::proc_stats(std::process::id());
        let started = Instant::now();
        let publishes_before = ctx
            .publishes
            .started
            .load(std::sync::atomic::Ordering::SeqCst);
        let publisher = match (opts.publish_at, &config) {
            (Some(at), Some(dir)) => {
                let ctx = ctx.clone();
                let dir = dir.clone();
                let change = opts.publish_change;
                let when = started + Duration::from_secs_f64(at.max(0.0));
                Some(tokio::spawn(async move {
                    tokio::time::sleep_until(when.into()).await;
                    publish_change(&ctx, &dir, change, started).await
                }))
            }
            _ => None,
        };
        let until = started + opts.duration;
        let sampler = tokio::spawn(sample_cpu(pid, steal_scope, started, until));
        let rounds = match phase.rate {
            Some(rate) => Rounds::Paced(until, Arc::new(Pace::new(rate, started))),
            None => Rounds::Until(until),
        };
        let (back, mut tally) = checkin_phase(
            &ctx,
            nodes,
            c,
            rounds,
            mode == Mode::Reconnect,
            opts.results_share,
            publishes_before,
        )
        .await;
        nodes = back;
        nodes.extend(idle);
        let readings = sampler.await.unwrap_or_default();
        for (kind, n) in connect_errors {
            *tally.errors.entry(format!("warm_up_{kind}")).or_insert(0) += n;
        }
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
        let windows = window::windows(&tally.samples, &readings);
        let host_steal_max = StealPeak::of(&windows);
        let publish = publish.map(|mut p| {
            // Who the publish reached: nodes whose inputs it changed that checked in after
            // it was accepted, and those that took a new bundle for it in this phase.
            let affected = |n: &&SimNode| n.affected_by(&ctx.publishes);
            p.affected_nodes = nodes
                .iter()
                .filter(affected)
                .filter(|n| p.number > 0 && n.publishes_seen >= p.number)
                .count() as u64;
            p.nodes_with_new_bundle = nodes
                .iter()
                .filter(affected)
                .filter(|n| n.publish_bundles > bundles_before.get(&n.name).map_or(0, |b| b.1))
                .count() as u64;
            let compiles = stats_after.get("compiles").and_then(Value::as_u64);
            p.compiles_since = compiles.map_or(0, |c| c.saturating_sub(p.compiles_before));
            p.changing_bundles_since = tally.changing_bundles_after_publish;
            p.with_rates(&per_second)
        });
        report.modes.push(ModeReport {
            mode: mode.name().to_string(),
            label: match phase.rate {
                Some(rate) => format!("{}/{rate}", mode.name()),
                None => mode.name().to_string(),
            },
            concurrency: c,
            offered_per_sec: phase.rate,
            late_starts: tally.late_starts,
            duration_secs: secs,
            checkins: tally.checkins,
            checkins_per_sec: tally.checkins as f64 / secs.max(1e-9),
            latency: Percentiles::of(
                &mut tally.samples.iter().map(|s| s.micros).collect::<Vec<_>>(),
            ),
            windows,
            // The last reading that has the ticks: a missed one at the end loses 100 ms.
            host_steal_pct: readings
                .iter()
                .rev()
                .find_map(|r| r.host)
                .and_then(Ticks::steal_pct),
            host_steal_max,
            host_steal_line: steal_scope.map(steal::Scope::line),
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
                    n.role == Role::Changing
                        && n.bundles > bundles_before.get(&n.name).map_or(0, |b| b.0)
                })
                .count() as u64,
            presigned: presign.signed,
            presign_secs: presign.secs,
            presign_cpu_secs: presign.cpu_secs,
            checkins_presigned: tally.presigned,
            server_before,
            server_after,
            server_cpu_secs: server_cpu,
            server_cpu_us_per_checkin: server_cpu * 1e6 / tally.checkins.max(1) as f64,
            sim_cpu_secs: sim_cpu,
            sim_cpu_us_per_checkin: sim_cpu * 1e6 / tally.checkins.max(1) as f64,
            stats_before,
            stats_after,
            publish,
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

#[cfg(test)]
mod tests {
    use super::{Mode, Phase};

    #[test]
    fn phases_parse_with_and_without_a_concurrency_and_a_rate() {
        use Mode::{Keepalive, Reconnect};
        for (text, want) in [
            ("keepalive", Some((Keepalive, None, None))),
            ("reconnect", Some((Reconnect, None, None))),
            ("keepalive@16", Some((Keepalive, Some(16), None))),
            ("reconnect@1", Some((Reconnect, Some(1), None))),
            ("keepalive/9600", Some((Keepalive, None, Some(9600)))),
            ("keepalive@64/9600", Some((Keepalive, Some(64), Some(9600)))),
            ("reconnect@8/1", Some((Reconnect, Some(8), Some(1)))),
            ("keepalive@0", None),
            ("keepalive@", None),
            ("keepalive@-3", None),
            ("keepalive@x", None),
            ("keepalive/0", None),
            ("keepalive/", None),
            ("keepalive/9600.5", None),
            ("keepalive/-1", None),
            ("keepalive/9600@64", None),
            ("keepalive@0/100", None),
            ("/100", None),
            ("@16", None),
            ("sideways", None),
            ("sideways@4", None),
            ("sideways/4", None),
        ] {
            let got = Phase::parse(text)
                .ok()
                .map(|p| (p.mode, p.concurrency, p.rate));
            assert_eq!(got, want, "{text:?}");
        }
    }
}
