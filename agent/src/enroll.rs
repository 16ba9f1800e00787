//! `vigo-agent enroll`: create the node key, prove a one-time token to the server pinned by
//! its CA fingerprint, and store the node's certificate, the CA and the bundle key.
//!
//! Nothing is written to the state directory until the server has accepted the enrollment
//! and its answer has been checked (the certificate is for our key, the CA is the pinned
//! one, the bundle key parses). The token is never printed.

use std::path::PathBuf;

use ring::rand::SecureRandom;
use vigo_shared::protocol::{PATH_ENROLL, enroll_message};
use vigo_shared::sign::{PublicKey, SigningKey};

use crate::cli::{Exit, emit, finish, refuse};
use crate::net::checkin::{enroll_body, parse_enroll_response};
use crate::net::client::{Client, parse_url, pem_certs, short_body};
use crate::net::tls::{self, ProbeError};
use crate::state::{self, StateDir};

/// Exit code: the server could not be reached or answered something unusable.
pub const EXIT_UNREACHABLE: u8 = 4;

struct EnrollArgs {
    server: String,
    token: String,
    fingerprint: String,
    state: PathBuf,
    hostname: Option<String>,
    force: bool,
}

fn parse(mut args: pico_args::Arguments) -> Result<EnrollArgs, Exit> {
    let bad = |e: pico_args::Error| refuse(format!("{e}; see vigo-agent --help"));
    let path = |s: &std::ffi::OsStr| -> Result<PathBuf, &'static str> { Ok(PathBuf::from(s)) };
    let server: Option<String> = args.opt_value_from_str("--server").map_err(bad)?;
    let token: Option<String> = args.opt_value_from_str("--token").map_err(bad)?;
    let fingerprint: Option<String> = args.opt_value_from_str("--ca-fingerprint").map_err(bad)?;
    let state: Option<PathBuf> = args.opt_value_from_os_str("--state", path).map_err(bad)?;
    let hostname: Option<String> = args.opt_value_from_str("--hostname").map_err(bad)?;
    let force = args.contains("--force");
    finish(args)?;
    let need = |what: &str| refuse(format!("enroll needs {what}; see vigo-agent --help"));
    Ok(EnrollArgs {
        server: server.ok_or_else(|| need("--server URL"))?,
        token: token.ok_or_else(|| need("--token TOKEN"))?,
        fingerprint: fingerprint.ok_or_else(|| need("--ca-fingerprint SHA256"))?,
        state: state.unwrap_or_else(|| PathBuf::from(state::DEFAULT_STATE)),
        hostname,
        force,
    })
}

fn unreachable(message: String) -> Exit {
    Exit {
        code: EXIT_UNREACHABLE,
        message: format!("{message}; nothing was stored"),
    }
}

/// Runs `vigo-agent enroll`.
pub fn command(args: pico_args::Arguments) -> Result<u8, Exit> {
    let a = parse(args)?;
    let url = parse_url(&a.server).map_err(refuse)?;
    let pin = tls::parse_fingerprint(&a.fingerprint).ok_or_else(|| {
        refuse("--ca-fingerprint must be the 64 hex digits of the CA certificate's SHA-256 (vigo-server init prints it)".to_string())
    })?;
    if a.token.trim().is_empty() {
        return Err(refuse("--token is empty".to_string()));
    }
    let dir = StateDir::new(&a.state);
    if dir.is_enrolled() && !a.force {
        let node = dir.read_text(state::NODE).unwrap_or_default();
        return Err(refuse(format!(
            "{} already holds an enrollment{}; pass --force to enroll again (the node key is replaced)",
            a.state.display(),
            if node.is_empty() {
                String::new()
            } else {
                format!(" as {node}")
            }
        )));
    }
    let hostname = match a.hostname {
        Some(h) => h,
        None => {
            let facts = crate::facts::collect();
            facts
                .get_str("fqdn")
                .or_else(|| facts.get_str("hostname"))
                .map(str::to_string)
                .ok_or_else(|| {
                    refuse("cannot tell this machine's host name; pass --hostname".to_string())
                })?
        }
    };

    let ca_der = tls::probe_ca(&url.host, url.port, pin).map_err(|e| match e {
        ProbeError::Mismatch => refuse(
            "the server's CA does not match --ca-fingerprint; nothing was stored".to_string(),
        ),
        ProbeError::Invalid(why) => refuse(format!(
            "the server presented the pinned CA but its certificate does not verify for {}: {why}; nothing was stored",
            url.host
        )),
        ProbeError::Connect(why) => unreachable(why),
    })?;

    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| refuse("the operating system's random number generator failed".to_string()))?;
    let key = SigningKey::from_seed(seed);
    let public = key.public().to_string();
    let proof = key.sign(&enroll_message(&hostname, &public, &a.token));
    let body = enroll_body(&a.token, &hostname, &public, &proof);

    let client = Client::new(&url, &ca_der, None);
    let (status, answer) = client
        .post(PATH_ENROLL, &[], body.as_bytes())
        .map_err(|e| unreachable(e.to_string()))?;
    let refused = |why: String| refuse(format!("enrollment refused: {why}; nothing was stored"));
    match status {
        200 => {}
        400 => return Err(refused(format!("the server found the request malformed ({})", short_body(&answer)))),
        401 => return Err(refused("the token is unknown, already used or expired; create a new one with `vigocli token create`".to_string())),
        403 => return Err(refused(format!("the token does not allow the host name {hostname:?}; use a token whose --hosts matches it, or pass --hostname"))),
        409 => return Err(refused(format!("a node named {hostname:?} is already enrolled; revoke it first with `vigocli node revoke {hostname}`"))),
        429 => return Err(refused("too many enrollment attempts from this address; wait a minute and try again".to_string())),
        other => return Err(unreachable(format!("the server answered {other}: {}", short_body(&answer)))),
    }
    let resp = parse_enroll_response(&answer)
        .map_err(|e| unreachable(format!("the server's enrollment answer is unusable: {e}")))?;
    let certs = pem_certs(&resp.certificate);
    if !certs
        .first()
        .is_some_and(|c| tls::cert_has_ed25519_key(c, key.public().as_bytes()))
    {
        return Err(unreachable(
            "the certificate the server issued is not for this node's key".to_string(),
        ));
    }
    let ca_pem = pem_certs(&resp.ca);
    if !ca_pem.iter().any(|c| tls::fingerprint(c) == pin) {
        return Err(unreachable(
            "the CA in the server's answer is not the pinned CA".to_string(),
        ));
    }
    PublicKey::parse(&resp.bundle_key)
        .map_err(|e| unreachable(format!("the server's bundle key is unusable: {e}")))?;

    let io = |e: std::io::Error| {
        refuse(format!(
            "cannot write the state in {}: {e}",
            a.state.display()
        ))
    };
    dir.create().map_err(io)?;
    dir.write(state::NODE_KEY, key.to_file_text().as_bytes(), true)
        .map_err(io)?;
    dir.write(state::NODE_CERT, resp.certificate.as_bytes(), false)
        .map_err(io)?;
    dir.write(state::CA_CERT, resp.ca.as_bytes(), false)
        .map_err(io)?;
    dir.write(
        state::BUNDLE_KEY,
        format!("{}\n", resp.bundle_key.trim()).as_bytes(),
        false,
    )
    .map_err(io)?;
    dir.write(state::SERVER, format!("{}\n", url.base).as_bytes(), false)
        .map_err(io)?;
    dir.write(state::NODE, format!("{}\n", resp.node).as_bytes(), false)
        .map_err(io)?;
    // A new identity starts afresh: all facts at the next check-in, the bundle refetched.
    dir.forget_facts().map_err(io)?;
    dir.forget_cache().map_err(io)?;
    emit(&format!(
        "enrolled as {} with {}; state in {}\n",
        resp.node,
        url.base,
        a.state.display()
    ));
    Ok(0)
}
