//! `vigocli`: the operator's command-line client. `config validate`, `config compile` and
//! `config trace` work on a config directory locally; `config publish`, `config history`,
//! `config trace --online`, `token create`, `node list` and `node revoke` talk to the
//! running server over mutual TLS with the admin credential from the server's data
//! directory. `release sign|verify` sign and check a dist directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use vigo_server::compile::{self, Facts};
use vigo_server::config::{self, Config, Diagnostic};
use vigo_server::secrets::FileProvider;
use vigo_shared::sign::SigningKey;

#[derive(Parser)]
#[command(name = "vigocli", version, about = "Vigo's command-line client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with a config directory.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Enrolled nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Sign or verify a release dist directory (docs/bootstrap.md).
    #[command(subcommand)]
    Release(ReleaseCommand),
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Sign every binary of a dist, write SHA256SUMS, SHA256SUMS.sig, release.pub and
    /// release.pub.pem; prints the public key.
    Sign {
        /// The dist directory (agent/<os>-<arch>/…, server/<os>-<arch>/…).
        #[arg(long)]
        dist: PathBuf,
        /// The release key (`ed25519-seed:<hex>`, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// Create the key (mode 0600) when the file does not exist.
        #[arg(long)]
        create_key: bool,
    },
    /// Verify a dist: SHA256SUMS.sig, every checksum and every .sig. Exit 1 when it fails.
    Verify {
        /// The dist directory.
        #[arg(long)]
        dist: PathBuf,
        /// The key the dist must be signed with (`ed25519:<hex>`); default: its release.pub.
        #[arg(long)]
        key_pub: Option<String>,
    },
}

#[derive(clap::Args)]
struct Server {
    /// The server's data directory, for admin.pem, admin.key, ca.pem and server.addr
    /// (default: $VIGO_DATA or /var/lib/vigo/server).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The server URL (default: the address in DATA/server.addr, else https://127.0.0.1:8443).
    #[arg(long)]
    server: Option<String>,
}

impl Server {
    fn client(&self) -> Result<vigo_server::client::Client> {
        let data = self.data.clone().unwrap_or_else(|| {
            std::env::var_os("VIGO_DATA")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/lib/vigo/server"))
        });
        let url = match &self.server {
            Some(url) => url.clone(),
            None => match std::fs::read_to_string(data.join("server.addr")) {
                Ok(addr) => format!("https://{}", addr.trim()),
                Err(_) => "https://127.0.0.1:8443".to_string(),
            },
        };
        vigo_server::client::Client::admin(&url, &data)
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a one-time enrollment token for host names matching a glob; printed once.
    Create {
        /// Host-name glob the token may enroll, e.g. `*.web.prod`.
        #[arg(long)]
        hosts: String,
        /// How long the token stays valid: `30m`, `24h`, `7d` or seconds.
        #[arg(long, default_value = "24h")]
        ttl: String,
        #[command(flatten)]
        server: Server,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// List enrolled nodes.
    List {
        #[command(flatten)]
        server: Server,
    },
    /// End a node's access at once; it may enroll again with a new token.
    Revoke {
        /// The node's name.
        name: String,
        #[command(flatten)]
        server: Server,
    },
}

/// `30m`, `24h`, `7d`, `90s` or plain seconds.
fn parse_duration(text: &str) -> Result<u64> {
    let (num, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{text}` is not a duration; use e.g. 30m, 24h or 7d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("unknown unit in `{text}`; use s, m, h or d"),
    };
    n.checked_mul(mult)
        .filter(|&s| s > 0)
        .with_context(|| format!("`{text}` is not a usable duration"))
}

fn admin_reply(reply: vigo_server::client::Reply) -> Result<serde_json::Value> {
    let json = reply.json();
    if reply.status != 200 {
        let msg = json["error"].as_str().unwrap_or(&reply.body).to_string();
        bail!("the server refused ({}): {msg}", reply.status);
    }
    Ok(json)
}

#[derive(clap::Args)]
struct Source {
    /// The config directory.
    #[arg(long = "config", default_value = ".")]
    config: PathBuf,
    /// The secrets directory (default: `secrets/` beside the config directory; never inside it).
    #[arg(long)]
    secrets: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config directory and report every problem as file:line:col. Exit 1 on errors.
    Validate {
        /// The config directory.
        dir: Option<PathBuf>,
        /// The secrets directory (default: `secrets/` beside the config directory).
        #[arg(long)]
        secrets: Option<PathBuf>,
        /// Print diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile one node's bundle into a signed file for `vigo-agent apply --bundle`.
    Compile {
        /// The node's name (its host name).
        node: String,
        #[command(flatten)]
        source: Source,
        /// Facts of the node, as printed by `vigo-agent facts --json`.
        #[arg(long)]
        facts: Option<PathBuf>,
        /// Where to write the signed bundle.
        #[arg(long)]
        out: PathBuf,
        /// Ed25519 signing key; created (mode 0600, with KEY.pub beside it) if missing.
        /// Default: ~/.config/vigo/bundle-signing.key.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The node's public key (`ed25519:HEX`): secret
        /// values are sealed to it. Without it they stay plaintext in the file, which must then
        /// be treated as a secret itself.
        #[arg(long)]
        node_key: Option<String>,
    },
    /// Show how a node's policy is resolved, each part traced to its file and line.
    Trace {
        /// The node's name.
        node: String,
        #[command(flatten)]
        source: Source,
        /// Facts of the node, as printed by `vigo-agent facts --json`.
        #[arg(long)]
        facts: Option<PathBuf>,
        /// Print the trace as JSON.
        #[arg(long)]
        json: bool,
        /// Ask the running server: its served config and the facts the node reported.
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        server: Server,
    },
    /// Make the running server load and validate its config directory and serve it; a
    /// config with any problem is refused and the previous one keeps serving. Exit 1 then.
    Publish {
        #[command(flatten)]
        server: Server,
    },
    /// List the server's config versions: every publish, accepted or refused.
    History {
        #[command(flatten)]
        server: Server,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Release(cmd) => release(cmd),
        Command::Token(TokenCommand::Create { hosts, ttl, server }) => {
            let ttl_secs = parse_duration(&ttl)?;
            let body = serde_json::json!({ "hosts": hosts, "ttl_secs": ttl_secs }).to_string();
            let json = admin_reply(server.client()?.post(
                "/v1/admin/tokens",
                body.as_bytes(),
                &[],
            )?)?;
            println!("{}", json["token"].as_str().unwrap_or_default());
            eprintln!(
                "token {} for hosts {} (valid {ttl}, one use); it is not shown again",
                json["id"].as_str().unwrap_or_default(),
                hosts
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Node(NodeCommand::List { server }) => {
            let json = admin_reply(server.client()?.get("/v1/admin/nodes")?)?;
            for n in json["nodes"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}",
                    n["name"].as_str().unwrap_or_default(),
                    if n["revoked"].as_bool() == Some(true) {
                        "revoked"
                    } else {
                        "active"
                    },
                    n["bundle"].as_str().unwrap_or("-"),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Node(NodeCommand::Revoke { name, server }) => {
            let path = format!("/v1/admin/nodes/{name}/revoke");
            admin_reply(server.client()?.post(&path, b"", &[])?)?;
            println!("revoked {name}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Validate { dir, secrets, json }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let (config, diags) = load(&dir, secrets.as_deref())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "policy": config.hash, "diagnostics": diags })
                    )?
                );
            } else {
                print_diags(&config, &diags);
                if diags.is_empty() {
                    println!(
                        "{}: ok — {} modules, {} node rules, {} waivers, {} resources",
                        dir.display(),
                        config.modules.len(),
                        config.rules.len(),
                        config.waivers.len(),
                        config
                            .modules
                            .values()
                            .map(|m| m.resources.len())
                            .sum::<usize>()
                    );
                }
            }
            Ok(if diags.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Config(ConfigCommand::Compile {
            node,
            source,
            facts,
            out,
            key,
            node_key,
        }) => {
            let node_key = node_key
                .map(|k| vigo_shared::sign::PublicKey::parse(&k))
                .transpose()
                .map_err(|e| anyhow::anyhow!("reading --node-key: {e}"))?;
            let (config, diags) = load(&source.config, source.secrets.as_deref())?;
            if !diags.is_empty() {
                print_diags(&config, &diags);
                bail!(
                    "the config has {} problem(s); fix them before compiling",
                    diags.len()
                );
            }
            let facts = read_facts(facts.as_deref())?;
            let compiled = compile::compile(
                &config,
                &node,
                facts.as_ref(),
                &vigo_server::date::today_utc(),
            )?;
            let key_path = match key {
                Some(k) => k,
                None => default_key_path()?,
            };
            let key = load_or_create_key(&key_path)?;
            let mut bundle = compiled.bundle;
            let mut hash = compiled.hash;
            if let Some(node_key) = &node_key {
                vigo_server::seal::seal_bundle(&mut bundle, &key, node_key)
                    .context("sealing the secret values")?;
                hash = vigo_shared::sign::BundleHash::of(&vigo_shared::codec::encode(&bundle));
            }
            let bytes = key.sign_bundle(&bundle);
            write_file(&out, &bytes, 0o600)
                .with_context(|| format!("writing the bundle to {}", out.display()))?;
            println!(
                "wrote {} ({} resources, {} bytes, bundle {})\nsigned by {}; agents trust it with: vigo-agent apply --bundle {} --trust {}.pub",
                out.display(),
                bundle.resources.len(),
                bytes.len(),
                hash,
                key.public(),
                out.display(),
                key_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Trace {
            node,
            online: true,
            facts,
            json,
            server,
            ..
        }) => {
            if facts.is_some() {
                bail!(
                    "--facts is for offline traces; online, the server uses the facts the node reported"
                );
            }
            let path = format!("/v1/admin/nodes/{node}/trace");
            let value = admin_reply(server.client()?.get(&path)?)?;
            // Read into the same type the offline trace prints, so both print alike.
            let trace: vigo_server::trace::Trace =
                serde_json::from_value(value).context("reading the trace the server sent")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&trace)?);
            } else {
                print!("{}", trace.render_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Publish { server }) => publish(&server),
        Command::Config(ConfigCommand::History { server }) => {
            let json = admin_reply(server.client()?.get("/v1/admin/publishes")?)?;
            let rows: Vec<vigo_server::store::PublishRow> =
                serde_json::from_value(json["publishes"].clone())
                    .context("reading the history the server sent")?;
            let serving = json["serving"].as_str().unwrap_or_default();
            println!(
                "{:<20}  {:<9}  {:>8}  {:<16}  who",
                "time (UTC)", "result", "problems", "policy"
            );
            // The version serving is the last one accepted (or re-published unchanged).
            let current = rows
                .iter()
                .rposition(|r| r.policy == serving && r.result != "refused");
            for (i, r) in rows.iter().enumerate() {
                println!(
                    "{:<20}  {:<9}  {:>8}  {:<16}  {}{}",
                    utc_time(r.at),
                    r.result,
                    r.diagnostics,
                    r.policy.get(..16).unwrap_or(&r.policy),
                    r.who,
                    if Some(i) == current {
                        "  (serving)"
                    } else {
                        ""
                    },
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Trace {
            node,
            source,
            facts,
            json,
            ..
        }) => {
            let (config, diags) = load(&source.config, source.secrets.as_deref())?;
            if !diags.is_empty() {
                print_diags(&config, &diags);
                eprintln!("(tracing anyway; resources with problems show as skipped)\n");
            }
            let facts = read_facts(facts.as_deref())?;
            let compiled = compile::compile(
                &config,
                &node,
                facts.as_ref(),
                &vigo_server::date::today_utc(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&compiled.trace)?);
            } else {
                print!("{}", compiled.trace.render_text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn release(cmd: ReleaseCommand) -> Result<ExitCode> {
    use vigo_server::release;
    match cmd {
        ReleaseCommand::Sign {
            dist,
            key,
            create_key,
        } => {
            let key = if create_key && !key.exists() {
                let k = release::create_key(&key)?;
                eprintln!("created release key {} (mode 0600)", key.display());
                k
            } else {
                release::read_key(&key)?
            };
            let signed = release::sign_dist(&dist, &key)
                .with_context(|| format!("signing {}", dist.display()))?;
            eprintln!("signed {} files in {}", signed.files.len(), dist.display());
            println!("{}", signed.public);
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::Verify { dist, key_pub } => {
            let expected = key_pub
                .map(|k| vigo_shared::sign::PublicKey::parse(&k))
                .transpose()
                .map_err(|e| anyhow::anyhow!("reading --key-pub: {e}"))?;
            match release::verify_dist(&dist, expected.as_ref()) {
                Ok(v) => {
                    println!(
                        "{}: ok — {} files signed by {}",
                        dist.display(),
                        v.files.len(),
                        v.public
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: the dist does not verify: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn publish(server: &Server) -> Result<ExitCode> {
    let reply = server.client()?.post("/v1/admin/publish", b"", &[])?;
    let json = reply.json();
    let policy = json["policy"].as_str().unwrap_or_default();
    match (reply.status, json["result"].as_str()) {
        (200, Some("accepted")) => {
            println!(
                "published config {policy} (was {}); nodes get it at their next check-in",
                json["previous"].as_str().unwrap_or_default()
            );
            let nodes = &json["nodes"];
            if let (Some(kept), Some(rebuilt), Some(fresh)) = (
                nodes["kept"].as_u64(),
                nodes["rebuilt"].as_u64(),
                nodes["not_compiled"].as_u64(),
            ) {
                println!(
                    "bundles: {rebuilt} node(s) get a new one, {kept} keep theirs (none of their inputs changed), {fresh} not compiled since the server started"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        (200, Some("unchanged")) => {
            println!("config {policy} is already serving; nothing to publish");
            Ok(ExitCode::SUCCESS)
        }
        (422, Some("refused")) => {
            let diags: Vec<Diagnostic> = serde_json::from_value(json["diagnostics"].clone())
                .context("reading the diagnostics the server sent")?;
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "publish refused: {} problem(s) in config {policy}; still serving {}. Fix them (`vigocli config validate`) and publish again",
                diags.len(),
                json["serving"].as_str().unwrap_or_default()
            );
            Ok(ExitCode::FAILURE)
        }
        _ => admin_reply(reply).map(|_| ExitCode::FAILURE),
    }
}

/// `YYYY-MM-DD HH:MM:SS` for Unix seconds, in UTC.
fn utc_time(secs: u64) -> String {
    let rem = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02}",
        vigo_server::date::civil_from_days((secs / 86_400) as i64),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn load(dir: &Path, secrets: Option<&Path>) -> Result<(Config, Vec<Diagnostic>)> {
    let dir_abs =
        std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let secrets = match secrets {
        Some(s) => std::path::absolute(s)?,
        None => dir_abs.parent().unwrap_or(Path::new("/")).join("secrets"),
    };
    if secrets.starts_with(&dir_abs) {
        bail!(
            "the secrets directory {} is inside the config directory {}; secrets must live outside it (use --secrets)",
            secrets.display(),
            dir_abs.display()
        );
    }
    Ok(config::load(&dir_abs, &FileProvider::new(&secrets)))
}

fn print_diags(config: &Config, diags: &[Diagnostic]) {
    for d in diags {
        // Paths relative to the config directory read best when run from inside it; show
        // them relative to where the operator typed the command when that is shorter.
        let _ = config;
        eprintln!("{d}");
    }
    if !diags.is_empty() {
        eprintln!("{} problem(s) found", diags.len());
    }
}

fn read_facts(path: Option<&Path>) -> Result<Option<Facts>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading facts from {}", path.display()))?;
    let facts = compile::facts_from_json(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("in {}", path.display()))?;
    Ok(Some(facts))
}

fn default_key_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").context("HOME is not set; pass --key")?)
            .join(".config"),
    };
    Ok(base.join("vigo").join("bundle-signing.key"))
}

fn load_or_create_key(path: &Path) -> Result<SigningKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key {}", path.display()))?;
        return SigningKey::parse(&text)
            .map_err(|e| anyhow::anyhow!("key {}: {e}", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no system randomness for a new key: {e}"))?;
    let key = SigningKey::from_seed(seed);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_file(path, key.to_file_text().as_bytes(), 0o600)
        .with_context(|| format!("writing key {}", path.display()))?;
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    write_file(&pub_path, format!("{}\n", key.public()).as_bytes(), 0o644)?;
    eprintln!(
        "created signing key {} (public key {})",
        path.display(),
        pub_path.display()
    );
    Ok(key)
}

/// Writes a file atomically with `mode` from the start (a key is never readable by others,
/// not even for a moment).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
