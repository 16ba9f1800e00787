//! The command line: `vigo-agent facts`, `apply`, `enroll`, `once`, `run` and `service`,
//! parsed with pico-args.
//! Every failure becomes a message on stderr and an exit code; nothing here panics.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigo_shared::sign::{PublicKey, SigningKey, verify_bundle};

use crate::engine::registry::Registry;
use crate::engine::{self, Setup, localtime};
use crate::facts::{self, Facts};
use crate::family::Family;
use crate::runner::ProcessRunner;

/// The trusted-key file used when no `--trust` is given (on this machine, not under --root).
pub const DEFAULT_TRUST: &str = "/etc/vigo/trusted.pub";

/// Exit code: the bundle was refused, or the command line is wrong.
const EXIT_REFUSED: u8 = 3;

const HELP: &str = "\
vigo-agent: converges this machine to its signed Vigo policy bundle

USAGE:
    vigo-agent facts [--json]
    vigo-agent apply --bundle FILE [--trust KEYFILE]... [--state DIR] [--observe]
                     [--root DIR] [--json] [--node NAME] [--family FAMILY]
    vigo-agent enroll --server URL --token TOKEN --ca-fingerprint SHA256
                      [--state DIR] [--hostname NAME] [--force]
    vigo-agent once [--state DIR] [--root DIR] [--json] [--family FAMILY] [--observe]
    vigo-agent run [--state DIR] [--root DIR] [--family FAMILY] [--interval SECS]
    vigo-agent service [--state DIR] [--root DIR] [--family FAMILY] [--interval SECS]
    vigo-agent help | --help | --version

COMMANDS:
    facts    Print the facts of this machine: os_family, os, os_version, arch,
             hostname, fqdn, kernel, cpus, memory_mb, addresses, path.
    apply    Verify a signed bundle, converge to it and print a run report.
    enroll   Create this node's key and enroll it with the server, which is trusted
             only if its CA has the SHA-256 fingerprint given. The token is never shown.
    once     One cycle: signed check-in, verify and cache the bundle, converge, report.
             Converges from the cached bundle when the server is unavailable.
    run      The service: a cycle every interval (the server's, or --interval SECS,
             at least 10; default 1800) with +-10% jitter. While the server is
             unavailable it keeps converging from the cache and retries check-ins with
             backoff. Exits 0 after SIGTERM/SIGINT once the current cycle is done.
    service  Windows only: run as a Windows service, started by the Service Control
             Manager (the bootstrap registers it). The loop of run; the service's
             stop and shutdown controls end it once the current cycle is done. Logs
             to agent.log in the state directory.

ENROLL, ONCE, RUN AND SERVICE OPTIONS:
    --state DIR       The agent's state directory. Default: /var/lib/vigo/agent
    --hostname NAME   The node name to enroll. Default: the fqdn fact.
    --force           Enroll again over an existing enrollment (replaces the key).

APPLY OPTIONS:
    --bundle FILE     The signed bundle to apply.
    --trust KEYFILE   A file of trusted server keys, one `ed25519:<64 hex>` per line
                      (# comments allowed). May be repeated. Default: /etc/vigo/trusted.pub
    --state DIR       An enrolled node's state directory, whose node.key opens the secret
                      values sealed to this node (`vigocli config compile --node-key`).
                      on this machine (never read from beneath --root).
    --observe         Change nothing; report what would change (the bundle can also
                      ask for observe mode).
    --root DIR        Treat DIR as / for every path in the bundle (files, account
                      databases, cron.d, `creates`, `cwd`, file_exists()). Default: /
    --json            Print the report as one JSON object instead of text.
    --node NAME       The node name this machine answers to. Default: a bundle is
                      accepted when its node is this machine's hostname or fqdn.
    --family FAMILY   OS family whose tools the providers use (debian, rhel, suse,
                      arch, alpine, freebsd, openbsd, netbsd, illumos, macos, windows).
                      Default: the os_family fact.

EXIT CODES:
    0   converged: nothing changed and nothing failed
    1   at least one resource failed
    2   something changed (in observe mode: would change), nothing failed
    3   refused: unreadable, unsigned, untrusted, corrupted or truncated bundle, a
        bundle for another node, or a usage error; nothing was applied
        (enroll: refused by the server or CA fingerprint mismatch; nothing stored)
    4   once: server unavailable, converged from the cached bundle (report queued);
        enroll: server unreachable, nothing stored
    5   once: server unavailable and no usable cached bundle; nothing was applied
    run: 0 after SIGTERM/SIGINT; 3 when not enrolled, on a usage error or an unknown
        OS family; never on a transient failure
    service: as run; the Service Control Manager records 3 as a service-specific
        error code
";

/// An error that ends the command: message for stderr, exit code.
pub struct Exit {
    pub code: u8,
    pub message: String,
}

pub fn refuse(message: String) -> Exit {
    Exit {
        code: EXIT_REFUSED,
        message,
    }
}

/// Runs the agent's command line.
pub fn main() -> ExitCode {
    let mut args = pico_args::Arguments::from_env();
    let result = if args.contains("--version") {
        emit(&format!("vigo-agent {}\n", env!("CARGO_PKG_VERSION")));
        Ok(0)
    } else if args.contains(["-h", "--help"]) {
        emit(HELP);
        Ok(0)
    } else {
        match args.subcommand() {
            Ok(Some(cmd)) if cmd == "facts" => facts_command(args),
            Ok(Some(cmd)) if cmd == "apply" => apply_command(args),
            Ok(Some(cmd)) if cmd == "enroll" => crate::enroll::command(args),
            Ok(Some(cmd)) if cmd == "once" => crate::once::command(args),
            Ok(Some(cmd)) if cmd == "run" => crate::run::command(args),
            Ok(Some(cmd)) if cmd == "service" => crate::service::command(args),
            Ok(Some(cmd)) if cmd == "help" => {
                emit(HELP);
                Ok(0)
            }
            Ok(None) => {
                let _ = std::io::stderr().write_all(HELP.as_bytes());
                Err(refuse("no command given".to_string()))
            }
            Ok(Some(cmd)) => Err(refuse(format!(
                "unknown command {cmd:?}; see vigo-agent --help"
            ))),
            Err(e) => Err(refuse(format!("{e}; see vigo-agent --help"))),
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "vigo-agent: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// Writes to stdout, ignoring a closed pipe rather than panicking like `print!`.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub fn finish(args: pico_args::Arguments) -> Result<(), Exit> {
    let rest: Vec<OsString> = args.finish();
    if rest.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Err(refuse(format!(
        "unexpected arguments: {}; see vigo-agent --help",
        shown.join(" ")
    )))
}

fn facts_command(mut args: pico_args::Arguments) -> Result<u8, Exit> {
    let json = args.contains("--json");
    finish(args)?;
    let facts = facts::collect();
    if json {
        emit(&(facts.to_json() + "\n"));
    } else {
        emit(&facts.render_human());
    }
    Ok(0)
}

struct ApplyArgs {
    bundle: PathBuf,
    trust: Vec<PathBuf>,
    observe: bool,
    root: PathBuf,
    json: bool,
    node: Option<String>,
    family: Option<String>,
    state: Option<PathBuf>,
}

fn parse_apply(mut args: pico_args::Arguments) -> Result<ApplyArgs, Exit> {
    let bad = |e: pico_args::Error| refuse(format!("{e}; see vigo-agent --help"));
    let path = |s: &std::ffi::OsStr| -> Result<PathBuf, &'static str> { Ok(PathBuf::from(s)) };
    let bundle: Option<PathBuf> = args.opt_value_from_os_str("--bundle", path).map_err(bad)?;
    let trust: Vec<PathBuf> = args.values_from_os_str("--trust", path).map_err(bad)?;
    let root: Option<PathBuf> = args.opt_value_from_os_str("--root", path).map_err(bad)?;
    let node: Option<String> = args.opt_value_from_str("--node").map_err(bad)?;
    let family: Option<String> = args.opt_value_from_str("--family").map_err(bad)?;
    let state: Option<PathBuf> = args.opt_value_from_os_str("--state", path).map_err(bad)?;
    let observe = args.contains("--observe");
    let json = args.contains("--json");
    finish(args)?;
    let Some(bundle) = bundle else {
        return Err(refuse(
            "apply needs --bundle FILE; see vigo-agent --help".to_string(),
        ));
    };
    Ok(ApplyArgs {
        bundle,
        trust,
        observe,
        root: root.unwrap_or_else(|| PathBuf::from("/")),
        json,
        node,
        family,
        state,
    })
}

fn apply_command(args: pico_args::Arguments) -> Result<u8, Exit> {
    let a = parse_apply(args)?;
    if !a.root.is_dir() {
        return Err(refuse(format!(
            "--root {} is not a directory",
            a.root.display()
        )));
    }
    let trusted = read_trust(&a.trust)?;
    let bytes = std::fs::read(&a.bundle).map_err(|e| {
        refuse(format!(
            "cannot read bundle {}: {e}; nothing was applied",
            a.bundle.display()
        ))
    })?;
    let verified = verify_bundle(&bytes, &trusted)
        .map_err(|e| refuse(format!("refusing bundle {}: {e}", a.bundle.display())))?;

    let facts = facts::collect();
    check_node(&verified.bundle().node, a.node.as_deref(), &facts)?;
    let family = choose_family(a.family.as_deref(), &facts)?;
    // The node key opens sealed secret values; a bundle without any needs no key.
    let node_key = match &a.state {
        None => None,
        Some(dir) => {
            let dir = crate::state::StateDir::new(dir);
            let text = dir.read_text(crate::state::NODE_KEY).map_err(|e| {
                refuse(format!(
                    "cannot read {}: {e}; nothing was applied",
                    dir.file(crate::state::NODE_KEY).display()
                ))
            })?;
            Some(SigningKey::parse(&text).map_err(|e| {
                refuse(format!(
                    "{} is not a node key ({e}); nothing was applied",
                    dir.file(crate::state::NODE_KEY).display()
                ))
            })?)
        }
    };
    let setup = Setup {
        root: &a.root,
        facts: &facts,
        family,
        observe: a.observe,
        runner: &ProcessRunner,
        now: localtime::now(),
        node_key: node_key.as_ref(),
    };
    let report = engine::apply(&verified, &setup, &Registry::standard());
    if a.json {
        emit(&(report.to_json() + "\n"));
    } else {
        emit(&report.render_human());
    }
    Ok(report.outcome().code())
}

/// Reads the trusted keys: every `--trust` file, or the default file.
fn read_trust(files: &[PathBuf]) -> Result<Vec<PublicKey>, Exit> {
    let default = [PathBuf::from(DEFAULT_TRUST)];
    let files = if files.is_empty() {
        &default[..]
    } else {
        files
    };
    let mut keys = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            refuse(format!(
                "cannot read trusted keys from {}: {e}; pass --trust KEYFILE",
                file.display()
            ))
        })?;
        keys.extend(parse_keys(&text, file)?);
    }
    if keys.is_empty() {
        return Err(refuse(
            "no trusted keys found; a trust file holds lines such as ed25519:<64 hex digits>"
                .to_string(),
        ));
    }
    Ok(keys)
}

fn parse_keys(text: &str, file: &Path) -> Result<Vec<PublicKey>, Exit> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            PublicKey::parse(line).map_err(|e| refuse(format!("{}:{}: {e}", file.display(), n + 1)))
        })
        .collect()
}

/// A bundle is applied only on the node it was compiled for.
pub fn check_node(bundle_node: &str, flag: Option<&str>, facts: &Facts) -> Result<(), Exit> {
    let names: Vec<&str> = match flag {
        Some(n) => vec![n],
        None => ["fqdn", "hostname"]
            .iter()
            .filter_map(|f| facts.get_str(f))
            .collect(),
    };
    if names.iter().any(|n| n.eq_ignore_ascii_case(bundle_node)) {
        return Ok(());
    }
    Err(refuse(format!(
        "refusing bundle for node {bundle_node:?}: this machine is {}; pass --node {bundle_node} to apply it here anyway; nothing was applied",
        if names.is_empty() {
            "unnamed".to_string()
        } else {
            names.join(" / ")
        }
    )))
}

pub fn choose_family(flag: Option<&str>, facts: &Facts) -> Result<Family, Exit> {
    if let Some(name) = flag {
        return Family::parse(name).ok_or_else(|| {
            refuse(format!(
                "unknown --family {name:?}; see vigo-agent --help for the list"
            ))
        });
    }
    if let Some(f) = facts.get_str("os_family").and_then(Family::parse) {
        return Ok(f);
    }
    Err(refuse(
        "cannot tell this machine's OS family from its facts; pass --family (e.g. --family debian)"
            .to_string(),
    ))
}
