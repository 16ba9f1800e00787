//! `vigo-fleetsim`: simulates N enrolled agents against a real `vigo-server` on loopback and
//! reports check-ins per second, latency percentiles, errors, enrollment time and the
//! server's memory, CPU and database size (docs/performance.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use vigo_server::fleetsim::{self, Options, Phase, ServerChoice, spawn};

#[derive(Parser)]
#[command(
    name = "vigo-fleetsim",
    version,
    about = "Simulate a fleet of agents against a vigo-server"
)]
struct Cli {
    /// Simulated nodes (each enrolls with a token and key of its own).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Check-ins in flight at once (closed loop).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of check-ins per mode.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// `keepalive`, `reconnect`, or several comma-separated (run one after the other on the
    /// same enrolled fleet); `MODE@N` runs that phase with N check-ins in flight instead of
    /// `--concurrency` (`keepalive,keepalive@16`: the peak, then the latency below it).
    #[arg(long, default_value = "keepalive")]
    mode: String,
    /// Share of nodes whose bundle changes on every check-in (they flip `os_family`, which
    /// the example config's `db` group reads in its `when:`).
    #[arg(long, default_value_t = 0.01)]
    changing_share: f64,
    /// Share of check-ins that carry a new run result.
    #[arg(long, default_value_t = 0.1)]
    results_share: f64,
    /// In keepalive mode, only this many nodes check in, each over its own kept connection
    /// (the rest stay enrolled and idle); default: every node.
    #[arg(long)]
    keepalive_nodes: Option<usize>,
    /// Seconds into each timed phase at which a copy of the config is changed and published
    /// (needs --spawn): the check-in rate around it, the compiles it caused and the nodes
    /// it reached are reported.
    #[arg(long)]
    publish_at: Option<f64>,
    /// What that publish changes: `module` (the `listen_port` default of the web module,
    /// which only the web nodes include: a server that recompiles selectively recompiles
    /// only them; any other steady node that gets a new bundle is an `unexpected_bundle`
    /// error) or `settings` (a vigo.yaml variable every node reads: the whole fleet
    /// recompiles).
    #[arg(long, default_value = "module")]
    publish_change: String,
    /// Share of the steady (non-changing) nodes named `web-sim-N.prod`: the example
    /// config's `web` rule gives them the web module, which `--publish-change module`
    /// edits.
    #[arg(long, default_value_t = 0.1)]
    publish_share: f64,
    /// Check-ins per second to sign ahead of each keepalive phase, spread over the nodes
    /// that check in during it (0: sign each check-in as it is sent). Signing is the
    /// simulator's largest cost per kept-alive check-in; signed ahead, it stays out of the
    /// timed phase (it takes about as long as the phase before it starts).
    /// Only check-ins that change nothing can be signed ahead (no fact delta, no results);
    /// a node that has used its own up signs the rest as it goes. Set it above the rate
    /// expected.
    #[arg(long, default_value_t = 15_000.0)]
    presign_rate: f64,
    /// Start a vigo-server in a temporary data directory.
    #[arg(long, conflicts_with = "server")]
    spawn: bool,
    /// Attach to a running server at this URL (needs --data for the admin credential).
    #[arg(long)]
    server: Option<String>,
    /// The attached server's data directory (admin.pem, admin.key, ca.pem, bundle.pub).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The CA certificate (default: ca.pem in --data).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The attached server's process id, for its memory and CPU figures.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The vigo-server binary to spawn (default: the one beside this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The config directory the spawned server runs (default: examples/fleet/config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// An extra argument for the spawned server's `run`, e.g. `--server-arg=--verify-batch=1`
    /// (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// CPU to pin the spawned server to (taskset).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// CPU to pin this simulator to.
    #[arg(long)]
    sim_cpu: Option<usize>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(cpu) = cli.sim_cpu {
        spawn::pin_self(cpu)?;
    }
    let phases = cli
        .mode
        .split(',')
        .map(|m| Phase::parse(m.trim()))
        .collect::<Result<Vec<_>>>()?;
    for (name, share) in [
        ("--changing-share", cli.changing_share),
        ("--results-share", cli.results_share),
        ("--publish-share", cli.publish_share),
    ] {
        if !(0.0..=1.0).contains(&share) {
            bail!("{name} must be between 0 and 1");
        }
    }
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet");
    let server = if cli.spawn {
        let server_bin = match cli.server_bin {
            Some(b) => b,
            None => std::env::current_exe()
                .context("finding this binary")?
                .with_file_name("vigo-server"),
        };
        let config = cli.config.unwrap_or_else(|| example.join("config"));
        let secrets = config
            .parent()
            .map(|p| p.join("secrets"))
            .unwrap_or_else(|| example.join("secrets"));
        ServerChoice::Spawn {
            server_bin,
            config,
            secrets,
            cpu: cli.server_cpu,
            extra_args: cli.server_args,
        }
    } else {
        let (Some(url), Some(data)) = (cli.server, cli.data) else {
            bail!("give --spawn, or --server URL with --data DIR of that server");
        };
        ServerChoice::Attach {
            url,
            data,
            ca: cli.ca,
            pid: cli.server_pid,
        }
    };
    let report = fleetsim::run(Options {
        nodes: cli.nodes,
        concurrency: cli.concurrency,
        duration: Duration::from_secs_f64(cli.duration.max(0.1)),
        phases,
        changing_share: cli.changing_share,
        results_share: cli.results_share,
        keepalive_nodes: cli.keepalive_nodes,
        publish_at: cli.publish_at,
        publish_change: fleetsim::PublishChange::parse(&cli.publish_change)?,
        publish_share: cli.publish_share,
        presign_rate: cli.presign_rate,
        server,
    })?;
    print!("{}", report.table());
    if let Some(path) = cli.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
