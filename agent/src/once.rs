//! `vigo-agent once`: one cycle against the server — signed check-in, bundle verified
//! before anything else and cached, convergence with the engine, the run report queued and
//! delivered. When the server cannot be reached or answers something unusable, the cycle
//! converges from the cached bundle instead and says so with its own exit code.
//!
//! [`cycle`] is the unit the long-running `vigo-agent run` loop repeats; it never panics on
//! what the network or the disk hands it, and reports every problem as a value.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use vigo_shared::protocol::PATH_CHECKIN;
use vigo_shared::sign::{PublicKey, SigningKey, VerifiedBundle, verify_bundle};

use crate::cli::{Exit, check_node, choose_family, emit, finish, refuse};
use crate::engine::registry::Registry;
use crate::engine::{self, Setup, localtime};
use crate::facts::{self, Facts};
use crate::net::base64;
use crate::net::checkin::{
    CheckinResponse, checkin_body, fact_delta, parse_checkin_response, sign_headers,
};
use crate::net::client::{Client, Identity, NetError, parse_url, pem_certs, short_body};
use crate::net::tls;
use crate::report::Report;
use crate::runner::ProcessRunner;
use crate::state::{self, StateDir};

/// Exit code: the server was unreachable (or its answer unusable) and the agent converged
/// from its cached bundle; the run report is queued for the next check-in.
pub const EXIT_OFFLINE: u8 = 4;
/// Exit code: the server was unreachable and there is no usable cached bundle; nothing was
/// applied.
pub const EXIT_NO_BUNDLE: u8 = 5;

/// At most this many queued results, and about this many bytes of them, go in one check-in.
const RESULTS_PER_CHECKIN: usize = 50;
const RESULT_BYTES_PER_CHECKIN: usize = 1024 * 1024;

/// An enrolled agent's identity and its client, loaded from the state directory.
pub struct Enrolled {
    pub dir: StateDir,
    pub node: String,
    pub key: SigningKey,
    pub bundle_key: PublicKey,
    pub client: Client,
}

/// Loads the enrollment stored in `dir`.
pub fn load(dir: &Path) -> Result<Enrolled, String> {
    let state = StateDir::new(dir);
    if !state.is_enrolled() {
        return Err(format!(
            "{} holds no enrollment; run `vigo-agent enroll` first (or pass --state DIR)",
            dir.display()
        ));
    }
    let read = |name: &str| {
        state
            .read_text(name)
            .map_err(|e| format!("cannot read {}: {e}", state.file(name).display()))
    };
    let node = read(state::NODE)?;
    let key = SigningKey::parse(&read(state::NODE_KEY)?)
        .map_err(|e| format!("{}: {e}", state.file(state::NODE_KEY).display()))?;
    let bundle_key = PublicKey::parse(&read(state::BUNDLE_KEY)?)
        .map_err(|e| format!("{}: {e}", state.file(state::BUNDLE_KEY).display()))?;
    let url = parse_url(&read(state::SERVER)?)?;
    let certs = pem_certs(&read(state::NODE_CERT)?);
    if !certs
        .first()
        .is_some_and(|c| tls::cert_has_ed25519_key(c, key.public().as_bytes()))
    {
        return Err(format!(
            "{} is not a certificate for the key in {}; enroll again with --force",
            state.file(state::NODE_CERT).display(),
            state.file(state::NODE_KEY).display()
        ));
    }
    let ca = pem_certs(&read(state::CA_CERT)?);
    let Some(ca) = ca.first() else {
        return Err(format!(
            "{} holds no certificate",
            state.file(state::CA_CERT).display()
        ));
    };
    let seed = key_seed(&read(state::NODE_KEY)?)?;
    let client = Client::new(&url, ca, Some(&Identity { certs, seed }));
    Ok(Enrolled {
        dir: state,
        node,
        key,
        bundle_key,
        client,
    })
}

/// The 32-byte seed of a key file (its text form is checked by `SigningKey::parse`).
fn key_seed(text: &str) -> Result<[u8; 32], String> {
    text.trim()
        .strip_prefix("ed25519-seed:")
        .and_then(vigo_shared::hex::decode_array::<32>)
        .ok_or_else(|| "the node key is not 'ed25519-seed:' and 64 hex digits".to_string())
}

/// What one cycle did.
pub struct Cycle {
    /// The run report, when a bundle was converged.
    pub report: Option<Report>,
    /// Why the server could not be used this time (the cycle then used the cache).
    pub offline: Option<String>,
    /// Problems worth telling the operator that did not stop the cycle.
    pub warnings: Vec<String>,
    /// The check-in interval the server asked for, when it answered.
    pub interval_secs: Option<u64>,
}

/// How to converge.
pub struct RunOptions<'a> {
    pub root: &'a Path,
    pub family: Option<&'a str>,
    pub observe: bool,
}

/// One cycle: check in, converge the current bundle, queue and deliver the report.
pub fn cycle(e: &Enrolled, opts: &RunOptions<'_>) -> Result<Cycle, Exit> {
    let mut warnings = Vec::new();
    let facts = facts::collect();
    let family = choose_family(opts.family, &facts)?;
    let cached = match e.dir.cached_bundle(&[e.bundle_key]) {
        Ok(c) => c,
        Err(err) => {
            warnings.push(format!(
                "the cached bundle was refused and removed ({err}); it will be fetched again"
            ));
            None
        }
    };
    let applied = cached
        .as_ref()
        .map(|c| c.hash().to_string())
        .unwrap_or_default();

    let mut offline = None;
    let mut interval_secs = None;
    let bundle = match checkin(e, &facts, &applied, &mut warnings) {
        Ok(resp) => {
            interval_secs = Some(resp.interval_secs);
            match resp.bundle {
                None => {
                    if cached.is_none() {
                        offline = Some(
                            "the server answered \"unchanged\" but no bundle is cached".to_string(),
                        );
                    }
                    cached
                }
                Some(b64) => match accept_bundle(e, &b64, &facts) {
                    Ok(v) => Some(v),
                    Err(why) => {
                        offline = Some(why);
                        cached
                    }
                },
            }
        }
        Err(why) => {
            offline = Some(why);
            cached
        }
    };
    let Some(bundle) = bundle else {
        return Ok(Cycle {
            report: None,
            offline,
            warnings,
            interval_secs,
        });
    };

    let setup = Setup {
        root: opts.root,
        facts: &facts,
        family,
        observe: opts.observe,
        runner: &ProcessRunner,
        now: localtime::now(),
        node_key: Some(&e.key),
    };
    let report = engine::apply(&bundle, &setup, &Registry::standard());
    let queue = e.dir.results();
    let queued = e
        .dir
        .next_seq()
        .and_then(|seq| queue.push(seq, &report.to_json()));
    match queued {
        Ok(0) => {}
        Ok(n) => warnings.push(format!(
            "the result queue was full: dropped the {n} oldest result(s) ({} in all)",
            queue.dropped()
        )),
        Err(err) => warnings.push(format!(
            "cannot queue the run report in {}: {err}",
            e.dir.path().display()
        )),
    }
    if offline.is_none() {
        // Deliver the report now rather than at the next cycle. A failure here leaves it
        // queued; a new bundle in this answer is verified and cached for the next run.
        let applied = bundle.hash().to_string();
        match checkin(e, &facts, &applied, &mut warnings) {
            Ok(CheckinResponse {
                bundle: Some(b64), ..
            }) => {
                if let Err(why) = accept_bundle(e, &b64, &facts) {
                    warnings.push(why);
                }
            }
            Ok(_) => {}
            Err(why) => warnings.push(format!("the run report stays queued: {why}")),
        }
    }
    Ok(Cycle {
        report: Some(report),
        offline,
        warnings,
        interval_secs,
    })
}

/// A check-in without converging, for `vigo-agent run` retrying while the server is
/// unavailable: delivers queued results and caches a new bundle (verified first) for the
/// next cycle. Returns the interval the server gave.
pub fn checkin_only(e: &Enrolled, warnings: &mut Vec<String>) -> Result<u64, String> {
    let facts = facts::collect();
    let applied = match e.dir.cached_bundle(&[e.bundle_key]) {
        Ok(Some(c)) => c.hash().to_string(),
        Ok(None) => String::new(),
        Err(err) => {
            warnings.push(format!(
                "the cached bundle was refused and removed ({err}); it will be fetched again"
            ));
            String::new()
        }
    };
    let resp = checkin(e, &facts, &applied, warnings)?;
    if let Some(b64) = &resp.bundle {
        accept_bundle(e, b64, &facts)?;
    }
    Ok(resp.interval_secs)
}

/// Verifies a bundle from the server against the bundle key before anything else, checks
/// that it is for this node, then caches it.
fn accept_bundle(e: &Enrolled, b64: &str, facts: &Facts) -> Result<VerifiedBundle, String> {
    let bytes = base64::decode(b64)
        .ok_or_else(|| "the server's bundle is not valid base64; not applied".to_string())?;
    let verified = verify_bundle(&bytes, &[e.bundle_key])
        .map_err(|err| format!("the server's bundle was refused: {err}"))?;
    check_node(&verified.bundle().node, Some(&e.node), facts).map_err(|x| x.message)?;
    if let Err(err) = e.dir.cache_bundle(&bytes) {
        return Err(format!(
            "cannot cache the bundle in {}: {err}",
            e.dir.path().display()
        ));
    }
    Ok(verified)
}

/// One signed check-in; on `200` records what the server acknowledged (facts, results).
fn checkin(
    e: &Enrolled,
    facts: &Facts,
    applied: &str,
    warnings: &mut Vec<String>,
) -> Result<CheckinResponse, String> {
    let delta = fact_delta(facts, e.dir.acknowledged_facts().as_deref());
    let results = queued_results(&e.dir, warnings);
    let body = checkin_body(applied, &delta, &results);
    let seq = e
        .dir
        .next_seq()
        .map_err(|err| format!("cannot record the request sequence number: {err}"))?;
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let headers = sign_headers(
        &e.key,
        "POST",
        PATH_CHECKIN,
        &e.node,
        time,
        seq,
        body.as_bytes(),
    );
    let (status, answer) = e
        .client
        .post(PATH_CHECKIN, &headers, body.as_bytes())
        .map_err(|err| err.to_string())?;
    match status {
        200 => {}
        401 => {
            return Err(format!(
                "the server refused the request signature (401: {}); check this machine's clock",
                short_body(&answer)
            ));
        }
        403 => {
            return Err(format!(
                "the server refused this node (403: {}); it may have been revoked: enroll again",
                short_body(&answer)
            ));
        }
        other => return Err(NetError::Status(other, short_body(&answer)).to_string()),
    }
    let resp = parse_checkin_response(&answer)
        .map_err(|why| format!("the server's check-in answer is unusable: {why}"))?;
    let record = || -> std::io::Result<()> {
        if resp.need_full_facts {
            e.dir.forget_facts()?;
        } else {
            e.dir.set_acknowledged_facts(&facts.to_json())?;
        }
        e.dir.results().acknowledge(resp.results_stored)?;
        Ok(())
    };
    if let Err(err) = record() {
        warnings.push(format!(
            "cannot update the state in {}: {err}",
            e.dir.path().display()
        ));
    }
    Ok(resp)
}

/// Queued results to send, oldest first, within the per-check-in bounds. A result file that
/// cannot be read as JSON is removed (it could never be delivered).
fn queued_results(dir: &StateDir, warnings: &mut Vec<String>) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for (seq, path) in dir.results().list() {
        if out.len() >= RESULTS_PER_CHECKIN
            || (bytes >= RESULT_BYTES_PER_CHECKIN && !out.is_empty())
        {
            break;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) if miniserde::json::from_str::<miniserde::json::Value>(&text).is_ok() => {
                bytes += text.len();
                out.push((seq, text));
            }
            _ => {
                let _ = std::fs::remove_file(&path);
                warnings.push(format!(
                    "removed the unreadable queued result {}",
                    path.display()
                ));
            }
        }
    }
    out
}

struct OnceArgs {
    state: PathBuf,
    root: PathBuf,
    json: bool,
    observe: bool,
    family: Option<String>,
}

fn parse(mut args: pico_args::Arguments) -> Result<OnceArgs, Exit> {
    let bad = |e: pico_args::Error| refuse(format!("{e}; see vigo-agent --help"));
    let path = |s: &std::ffi::OsStr| -> Result<PathBuf, &'static str> { Ok(PathBuf::from(s)) };
    let state: Option<PathBuf> = args.opt_value_from_os_str("--state", path).map_err(bad)?;
    let root: Option<PathBuf> = args.opt_value_from_os_str("--root", path).map_err(bad)?;
    let family: Option<String> = args.opt_value_from_str("--family").map_err(bad)?;
    let observe = args.contains("--observe");
    let json = args.contains("--json");
    finish(args)?;
    Ok(OnceArgs {
        state: state.unwrap_or_else(|| PathBuf::from(state::DEFAULT_STATE)),
        root: root.unwrap_or_else(|| PathBuf::from("/")),
        json,
        observe,
        family,
    })
}

/// Runs `vigo-agent once`.
pub fn command(args: pico_args::Arguments) -> Result<u8, Exit> {
    let a = parse(args)?;
    if !a.root.is_dir() {
        return Err(refuse(format!(
            "--root {} is not a directory",
            a.root.display()
        )));
    }
    let enrolled = load(&a.state).map_err(refuse)?;
    let c = cycle(
        &enrolled,
        &RunOptions {
            root: &a.root,
            family: a.family.as_deref(),
            observe: a.observe,
        },
    )?;
    let mut err = String::new();
    for w in &c.warnings {
        err.push_str(&format!("vigo-agent: warning: {w}\n"));
    }
    let code = match (&c.report, &c.offline) {
        (Some(r), None) => r.outcome().code(),
        (Some(_), Some(why)) => {
            err.push_str(&format!(
                "vigo-agent: server unavailable ({why}); converged from the cached bundle; the report is queued\n"
            ));
            EXIT_OFFLINE
        }
        (None, why) => {
            err.push_str(&format!(
                "vigo-agent: server unavailable ({}) and no usable cached bundle; nothing was applied\n",
                why.as_deref().unwrap_or("no answer")
            ));
            EXIT_NO_BUNDLE
        }
    };
    if let Some(r) = &c.report {
        if a.json {
            emit(&(r.to_json() + "\n"));
        } else {
            emit(&r.render_human());
        }
    }
    if !err.is_empty() {
        use std::io::Write;
        let _ = std::io::stderr().write_all(err.as_bytes());
    }
    Ok(code)
}
