//! `vigo-server`: `init` creates a data directory (CA, server certificate, bundle key,
//! admin credential, database); `run` serves agents and `vigocli` over mutual TLS, and
//! with `--dist` the bootstrap scripts and agent binaries.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use vigo_server::config;
use vigo_server::daemon::{self, DataDir, Limits};
use vigo_server::secrets::FileProvider;

/// The default listen address: loopback only until the operator chooses otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

#[derive(Parser)]
#[command(name = "vigo-server", version, about = "The Vigo server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory: CA, server certificate, bundle key, admin credential, database.
    Init {
        /// The data directory (default: $VIGO_DATA or /var/lib/vigo/server); must not exist.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The host name agents use to reach this server (default: localhost).
        #[arg(long, default_value = "localhost")]
        hostname: String,
    },
    /// Serve agents and vigocli over mutual TLS until SIGTERM or Ctrl-C.
    Run {
        /// The data directory made by `init` (default: $VIGO_DATA or /var/lib/vigo/server).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The config directory (default: examples/fleet/config of the source tree).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The secrets directory (default: `secrets/` beside the config directory).
        #[arg(long)]
        secrets: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Largest request body in bytes.
        #[arg(long, default_value_t = 4 << 20)]
        max_body: usize,
        /// Seconds allowed for the TLS handshake and for each request's headers.
        #[arg(long, default_value_t = 10)]
        header_timeout: u64,
        /// Seconds allowed to read a request body.
        #[arg(long, default_value_t = 30)]
        body_timeout: u64,
        /// Connections served at once; more are closed.
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
        /// Enrollment attempts allowed per source address per minute.
        #[arg(long, default_value_t = 10)]
        enroll_per_minute: u32,
        /// Milliseconds between writes of the dirty set to the database.
        #[arg(long, default_value_t = 200)]
        flush_interval_ms: u64,
        /// Milliseconds between writes of the last sequence number and check-in time of
        /// nodes whose check-ins carried no results (results take them along at once).
        #[arg(long, default_value_t = 5000)]
        progress_interval_ms: u64,
        /// Most check-in signatures verified together in one batch (1: each on its own).
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
        verify_batch: u64,
        /// Microseconds a check-in signature may wait for others to batch with (0-1000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=1000))]
        verify_wait_us: u64,
        /// A signed release dist (`cargo xtask dist`) to serve /bootstrap.sh,
        /// /bootstrap.ps1 and the agent binaries from; verified at start.
        #[arg(long)]
        dist: Option<PathBuf>,
    },
}

fn default_data() -> PathBuf {
    std::env::var_os("VIGO_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/vigo/server"))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Init { data, hostname } => init(&data.unwrap_or_else(default_data), &hostname),
        Command::Run {
            data,
            config,
            secrets,
            listen,
            max_body,
            header_timeout,
            body_timeout,
            max_connections,
            enroll_per_minute,
            flush_interval_ms,
            progress_interval_ms,
            verify_batch,
            verify_wait_us,
            dist,
        } => {
            let limits = Limits {
                max_body,
                header_timeout: Duration::from_secs(header_timeout),
                body_timeout: Duration::from_secs(body_timeout),
                max_connections: max_connections.max(1),
                enroll_per_minute,
                flush_interval: Duration::from_millis(flush_interval_ms.max(1)),
                progress_interval: Duration::from_millis(progress_interval_ms),
                // Bounded to 1..=4096 by the parser, so it fits.
                verify_batch: verify_batch as usize,
                verify_wait: Duration::from_micros(verify_wait_us),
            };
            let config = config.unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fleet/config")
            });
            run(
                &data.unwrap_or_else(default_data),
                &config,
                secrets,
                listen,
                limits,
                dist.as_deref(),
            )
        }
    }
}

fn init(data: &Path, hostname: &str) -> Result<()> {
    let done = daemon::init::init(data, hostname)?;
    println!("initialized {}", data.display());
    println!("ca fingerprint {}", done.ca_fingerprint);
    println!("bundle key {}", done.bundle_key);
    Ok(())
}

fn run(
    data: &Path,
    config_dir: &Path,
    secrets: Option<PathBuf>,
    listen: SocketAddr,
    limits: Limits,
    dist: Option<&Path>,
) -> Result<()> {
    let data = DataDir(data.to_path_buf());
    if !data.file("ca.pem").exists() {
        bail!(
            "{} is not a vigo data directory; create one with `vigo-server init --data {}`",
            data.0.display(),
            data.0.display()
        );
    }
    let config_dir = std::path::absolute(config_dir)
        .with_context(|| format!("resolving {}", config_dir.display()))?;
    let secrets = secrets.unwrap_or_else(|| {
        config_dir
            .parent()
            .unwrap_or(Path::new("/"))
            .join("secrets")
    });
    let (config, diags) = config::load(&config_dir, &FileProvider::new(&secrets));
    if !diags.is_empty() {
        for d in &diags {
            eprintln!("{d}");
        }
        bail!(
            "the config in {} has {} problem(s); fix them (see `vigocli config validate`) and start again",
            config_dir.display(),
            diags.len()
        );
    }
    // A dist that does not verify is refused before anything listens: serving agents
    // that the bootstrap would then reject helps no one.
    let dist = dist
        .map(|dir| {
            daemon::bootstrap::Dist::open(dir)
                .with_context(|| format!("the dist {} does not verify; rebuild and sign it (cargo xtask dist, vigocli release sign)", dir.display()))
        })
        .transpose()?;
    let tls = daemon::tls_config(&data)?;
    let source = daemon::ConfigSource {
        dir: config_dir,
        secrets,
    };
    let state = daemon::state(&data, config, Some(source), limits)?;
    if let Some(dist) = dist {
        eprintln!(
            "vigo-server: serving the bootstrap and the dist signed by {}",
            dist.release_pub()
        );
        let _ = state.dist.set(std::sync::Arc::new(dist));
    }
    // Blocking work (compiles, enrollments, database writes) mostly waits for the CPU or
    // for the database lock: more threads than a few per core only add stacks and malloc
    // arenas (10,000 enrollments at once grew the default pool to 339 threads and ~20 MB).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((4 * cores).max(8))
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // vigocli finds the server through this file; tests read the line on stdout.
        // Written whole, then renamed, so a reader never sees half an address.
        let tmp = data.file("server.addr.tmp");
        std::fs::write(&tmp, format!("{addr}\n")).context("writing server.addr")?;
        std::fs::rename(&tmp, data.file("server.addr")).context("writing server.addr")?;
        println!("listening on https://{addr}");
        let _ = std::io::stdout().flush();
        let served = daemon::serve(listener, tls, state).await;
        let _ = std::fs::remove_file(data.file("server.addr"));
        served
    })
}
