//! One simulated node: its Ed25519 key, enrollment through `/v1/enroll`, and check-ins
//! signed and shaped exactly as the agent's (`agent/src/net/checkin.rs`): the same four
//! headers over `request_message`, a sequence above the last one sent, fact deltas against
//! what the server acknowledged, queued run results until `results_stored` covers them, and
//! the bundle hash of the last bundle received.
//!
//! Check-ins are the simulator's hot path, so the simulator must spend far less on one than
//! the server it measures. Hence: the body of a check-in that changes nothing is built once
//! per bundle and reused; the answer is parsed into the four fields that matter rather than
//! a `serde_json::Value`; and check-ins with that body can be signed ahead of a timed phase
//! ([`SimNode::presign`]) — signing is an Ed25519 scalar multiplication, the largest cost
//! per kept-alive check-in. Each request on the wire is still a fresh, correctly signed
//! check-in with a sequence above the last and a time within the server's clock skew.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use vigo_shared::protocol::{
    HEADER_NODE, HEADER_SEQ, HEADER_SIGNATURE, HEADER_TIME, MAX_CLOCK_SKEW_SECS, PATH_CHECKIN,
    PATH_ENROLL, enroll_message, request_message,
};
use vigo_shared::sign::{PublicKey, SigningKey, verify_bundle};

use super::net::{Conn, NetError, Target};
use super::wire::{Body, FactsOut, Parsed, ResultOut, parse_answer, run_report};

/// The fact a changing node flips on every check-in. The example config's `db` group is
/// `when: "os_family('debian') || os_family('rhel') || ..."`, so a `db*` node whose
/// `os_family` goes from `debian` to `freebsd` loses the group and gets a new bundle, and
/// gets the old one back on the next flip.
pub const FLIP_FACT: &str = "os_family";
const FLIP_VALUES: [&str; 2] = ["debian", "freebsd"];

/// A check-in signed ahead is used only while its time is at least this far inside the
/// server's clock skew, so that it is never refused as too old.
const PRESIGN_MARGIN_SECS: u64 = 60;

/// Sequence numbers of check-ins signed ahead are this far apart, so that check-ins signed
/// as they go (with results, or a fact delta) can take the numbers in between (the last
/// sent + 1) without passing the next one signed ahead.
const PRESIGN_SEQ_STRIDE: u64 = 1024;

/// What a node does in the simulation; it decides the node's name and the answers it
/// expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `db-sim-N.prod`: flips `os_family` on every check-in and expects a new bundle each
    /// time.
    Changing,
    /// `web-sim-N.prod`: steady; the example config's `web` rule gives it the `web` module,
    /// which `--publish-change module` edits, so it expects one new bundle per publish.
    Web,
    /// `node-sim-N.prod`: steady; only a publish that changes every node's inputs
    /// (`--publish-change settings`) gives it a new bundle.
    Steady,
}

impl Role {
    /// The node's host name; `*-sim-*.prod` (the tokens' glob) matches every one.
    pub fn node_name(self, i: usize) -> String {
        match self {
            Role::Changing => format!("db-sim-{i:06}.prod"),
            Role::Web => format!("web-sim-{i:06}.prod"),
            Role::Steady => format!("node-sim-{i:06}.prod"),
        }
    }
}

/// The publishes of a run as the nodes see them, to tell an expected new bundle from an
/// unexpected one.
#[derive(Default)]
pub struct Publishes {
    /// Publishes started (counted before the request is sent): publish N is the N-th.
    pub started: AtomicU64,
    /// The number of the last publish the server accepted (set after its answer, so the
    /// policy in force includes it); 0 for none.
    pub accepted: AtomicU64,
    /// Whether a publish changes every node's inputs (`settings`) or only the web nodes'
    /// (`module`).
    pub affects_all: bool,
}

/// What one check-in came to, for the counters.
pub enum Outcome {
    /// `unchanged` as expected.
    Unchanged,
    /// A new bundle that verified and whose hash differs from the one sent.
    Bundle,
}

/// What a successful check-in reports back to the phase's counters.
pub struct Done {
    pub outcome: Outcome,
    /// Latency in µs, including the handshake when one happened.
    pub micros: u64,
    /// Whether a new TLS handshake resumed a session (`None`: no handshake).
    pub handshake: Option<bool>,
    /// The request was signed ahead ([`SimNode::presign`]).
    pub presigned: bool,
}

/// A check-in signed ahead for the node's body that changes nothing.
struct Presigned {
    time: u64,
    seq: u64,
    signature: [u8; 64],
}

/// A simulated node.
pub struct SimNode {
    pub name: String,
    pub role: Role,
    key: SigningKey,
    /// The same key, to sign check-ins with ed25519-zebra (curve25519-dalek's precomputed
    /// base-point table), which signs in ~34 µs on the benchmark VM against ~47 µs for
    /// ring. Ed25519 signatures are deterministic (RFC 8032): the bytes are the ones the
    /// agent makes with ring (see the test below).
    signer: ed25519_zebra::SigningKey,
    seed: [u8; 32],
    config: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    /// The last sequence number sent.
    seq: u64,
    /// Facts as the node has them now.
    facts: BTreeMap<String, Value>,
    /// Facts the server acknowledged (the answer to the last check-in came back); `None`
    /// means send them all.
    acked: Option<BTreeMap<String, Value>>,
    /// Whether `facts` may differ from `acked` (set when a fact changes).
    facts_changed: bool,
    /// Hex hash of the bundle last received, empty before the first.
    bundle: String,
    /// The body of a check-in with no fact delta and no results, for `bundle`; built on
    /// first use after each new bundle.
    steady_body: Option<Arc<[u8]>>,
    /// Check-ins signed ahead with `steady_body`, oldest first.
    presigned: VecDeque<Presigned>,
    /// Run results not yet covered by `results_stored`: result sequence and report.
    pending: Vec<(u64, Value)>,
    result_seq: u64,
    pub checkins: u64,
    pub bundles: u64,
    /// New bundles a steady node took because of a publish (at most one per publish).
    pub publish_bundles: u64,
    /// Publishes started when the held bundle arrived: it cannot include a later one (it
    /// may or may not include those, depending on whether the server had swapped the
    /// policy in when it answered).
    publishes_at_bundle: u64,
    /// The last accepted publish (its number) seen at the start of a successful check-in.
    pub publishes_seen: u64,
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Sends a check-in on `conn` and reads the answer. The outer error is the connection's; the
/// inner one an answer other than 200 or one that does not parse.
async fn send(
    conn: &mut Conn,
    target: &Target,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Result<Parsed, NetError>, NetError> {
    let answer = conn
        .request(target, "POST", PATH_CHECKIN, headers, body)
        .await?;
    if answer.status != 200 {
        return Ok(Err(NetError {
            kind: status_kind(answer.status),
            detail: String::from_utf8_lossy(answer.body).into_owned(),
        }));
    }
    Ok(parse_answer(answer.body))
}

impl SimNode {
    /// A node with a fresh random key.
    pub fn new(name: String, role: Role) -> SimNode {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the system has randomness");
        let mut facts = BTreeMap::new();
        // A typical fact set of a small Linux host (the agent sends more; these are the
        // kinds of values it sends). `os_family` debian is what the web and db rules'
        // `when:` ask for.
        for (k, v) in [
            ("os_family", json!("debian")),
            ("os", json!("debian")),
            ("os_version", json!("12")),
            ("kernel", json!("6.1.0-28-amd64")),
            ("arch", json!("x86_64")),
            ("cpus", json!(2)),
            ("memory_mb", json!(3914)),
            ("hostname", json!(name)),
            ("addresses", json!(["10.1.2.3", "fe80::1"])),
            ("init", json!("systemd")),
            ("virtual", json!("kvm")),
            ("agent_version", json!(env!("CARGO_PKG_VERSION"))),
        ] {
            facts.insert(k.to_string(), v);
        }
        SimNode {
            name,
            role,
            key: SigningKey::from_seed(seed),
            signer: ed25519_zebra::SigningKey::from(seed),
            seed,
            config: None,
            conn: None,
            seq: 0,
            facts,
            acked: None,
            facts_changed: false,
            bundle: String::new(),
            steady_body: None,
            presigned: VecDeque::new(),
            pending: Vec::new(),
            result_seq: 0,
            checkins: 0,
            bundles: 0,
            publish_bundles: 0,
            publishes_at_bundle: 0,
            publishes_seen: 0,
        }
    }

    pub fn enrolled(&self) -> bool {
        self.config.is_some()
    }

    /// Whether a publish of this run changes this node's inputs.
    pub fn affected_by(&self, publishes: &Publishes) -> bool {
        match self.role {
            Role::Web => true,
            Role::Steady => publishes.affects_all,
            Role::Changing => false,
        }
    }

    /// Enrolls with `token` over a new anonymous connection, as `vigo-agent enroll` does.
    pub async fn enroll(
        &mut self,
        target: &Target,
        anonymous: &Arc<rustls::ClientConfig>,
        ca: &CertificateDer<'static>,
        token: &str,
    ) -> Result<(), NetError> {
        let public = self.key.public().to_string();
        let proof = self.key.sign(&enroll_message(&self.name, &public, token));
        let body = json!({
            "token": token,
            "hostname": self.name,
            "public_key": public,
            "proof": vigo_shared::hex::encode(&proof),
        })
        .to_string();
        let mut conn = Conn::open(target, anonymous).await?;
        let answer = conn
            .request(target, "POST", PATH_ENROLL, &[], body.as_bytes())
            .await?;
        if answer.status != 200 {
            return Err(NetError {
                kind: status_kind(answer.status),
                detail: String::from_utf8_lossy(answer.body).into_owned(),
            });
        }
        let v: Value = serde_json::from_slice(answer.body).map_err(|e| bad("enroll answer", e))?;
        let cert = v["certificate"]
            .as_str()
            .ok_or_else(|| bad("enroll answer", "no certificate"))?;
        if v["node"].as_str() != Some(self.name.as_str()) {
            return Err(bad("enroll answer", "another node name"));
        }
        self.config =
            Some(super::net::node_config(ca, cert, &self.seed).map_err(|e| bad("certificate", e))?);
        Ok(())
    }

    /// Drops the kept connection (between modes).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Opens the connection the node's next check-ins keep using, sending nothing: a
    /// keep-alive phase starts with every connection open, so that its figures are those of
    /// kept-alive check-ins and not of a burst of handshakes (the reconnect phase measures
    /// those).
    pub async fn connect(&mut self, target: &Target) -> Result<(), NetError> {
        let config = self
            .config
            .clone()
            .ok_or_else(|| bad("state", "node is not enrolled"))?;
        self.conn = Some(Conn::open(target, &config).await?);
        Ok(())
    }

    /// Signs `count` check-ins ahead with the body that changes nothing, replacing those
    /// signed before; they are used while that body is the one to send (no fact change, no
    /// queued result, the same bundle held) and their time is well inside the server's clock
    /// skew. Nothing is signed for a node without a bundle or one whose facts change on
    /// every check-in. Returns how many were signed.
    pub fn presign(&mut self, count: usize) -> usize {
        self.presigned.clear();
        if self.role == Role::Changing || self.bundle.is_empty() || count == 0 {
            return 0;
        }
        let body = self.steady_body();
        let time = now_secs();
        let first = (self.seq + 1).max(now_micros());
        self.presigned.reserve_exact(count);
        for i in 0..count as u64 {
            let seq = first + i * PRESIGN_SEQ_STRIDE;
            let signature = self.sign(&request_message(
                "POST",
                PATH_CHECKIN,
                &self.name,
                time,
                seq,
                &body,
            ));
            self.presigned.push_back(Presigned {
                time,
                seq,
                signature,
            });
        }
        count
    }

    /// Signs a request message.
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signer.sign(message).into()
    }

    /// The body of a check-in with no fact delta and no results, built once per bundle.
    fn steady_body(&mut self) -> Arc<[u8]> {
        let bundle = &self.bundle;
        let body = self.steady_body.get_or_insert_with(|| {
            let text = serde_json::to_vec(&Body {
                bundle,
                facts: FactsOut {
                    full: false,
                    removed: Vec::new(),
                    set: BTreeMap::new(),
                },
                results: Vec::new(),
            })
            .expect("a body of strings, maps and numbers always serializes");
            Arc::from(text)
        });
        body.clone()
    }

    /// The body of a check-in that sends facts or results, built as the agent builds it.
    fn changing_body(&self) -> Vec<u8> {
        let facts = match &self.acked {
            None => FactsOut {
                full: true,
                removed: Vec::new(),
                set: self.facts.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            },
            Some(old) => FactsOut {
                full: false,
                removed: old
                    .keys()
                    .filter(|k| !self.facts.contains_key(*k))
                    .map(String::as_str)
                    .collect(),
                set: self
                    .facts
                    .iter()
                    .filter(|(k, v)| old.get(*k) != Some(*v))
                    .map(|(k, v)| (k.as_str(), v))
                    .collect(),
            },
        };
        let results = self
            .pending
            .iter()
            .map(|(seq, report)| ResultOut { report, seq: *seq })
            .collect();
        serde_json::to_vec(&Body {
            bundle: &self.bundle,
            facts,
            results,
        })
        .expect("a body of strings, maps and numbers always serializes")
    }

    /// One signed check-in; `reconnect` opens a new TLS connection for it (and drops it
    /// after), otherwise the kept connection is reused.
    pub async fn checkin(
        &mut self,
        target: &Target,
        bundle_key: &PublicKey,
        reconnect: bool,
        with_result: bool,
        publishes: &Publishes,
    ) -> Result<Done, NetError> {
        let config = self
            .config
            .clone()
            .ok_or_else(|| bad("state", "node is not enrolled"))?;
        if self.role == Role::Changing && self.acked.is_some() {
            let now = self.facts.get(FLIP_FACT).and_then(Value::as_str);
            let next = if now == Some(FLIP_VALUES[0]) {
                FLIP_VALUES[1]
            } else {
                FLIP_VALUES[0]
            };
            self.facts
                .insert(FLIP_FACT.to_string(), Value::String(next.to_string()));
            self.facts_changed = true;
        }
        if with_result {
            self.result_seq += 1;
            self.pending
                .push((self.result_seq, run_report(self.result_seq)));
        }
        // What the request sends: facts in full, a delta, results, or nothing new.
        let sends_full = self.acked.is_none();
        let steady = !sends_full && !self.facts_changed && self.pending.is_empty();
        let (body, signed): (Arc<[u8]>, _) = if steady {
            let time = now_secs();
            let last = self.seq;
            let expired = |p: &Presigned| {
                p.seq <= last || time > p.time + MAX_CLOCK_SKEW_SECS - PRESIGN_MARGIN_SECS
            };
            while self.presigned.front().is_some_and(expired) {
                self.presigned.pop_front();
            }
            (self.steady_body(), self.presigned.pop_front())
        } else {
            (Arc::from(self.changing_body()), None)
        };
        let presigned = signed.is_some();
        let (time, seq, signature) = match signed {
            Some(p) => (p.time, p.seq, p.signature),
            None => {
                // The agent's sequence is max(last + 1, Unix µs); while check-ins signed
                // ahead wait, the next number is taken instead so as not to pass them.
                let seq = if self.presigned.is_empty() {
                    (self.seq + 1).max(now_micros())
                } else {
                    self.seq + 1
                };
                let time = now_secs();
                let message = request_message("POST", PATH_CHECKIN, &self.name, time, seq, &body);
                (time, seq, self.sign(&message))
            }
        };
        self.seq = seq;
        let time = time.to_string();
        let seq = seq.to_string();
        let signature = vigo_shared::hex::encode(&signature);
        let headers = [
            (HEADER_NODE, self.name.as_str()),
            (HEADER_TIME, time.as_str()),
            (HEADER_SEQ, seq.as_str()),
            (HEADER_SIGNATURE, signature.as_str()),
        ];
        let accepted_before = publishes.accepted.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut handshake = None;
        let mut conn = match self.conn.take() {
            Some(c) if !reconnect && c.usable() => c,
            _ => {
                let c = Conn::open(target, &config).await?;
                handshake = Some(c.resumed);
                c
            }
        };
        let mut answer = send(&mut conn, target, &headers, &body).await;
        if handshake.is_none() && answer.as_ref().is_err_and(|e| e.kind == "closed") {
            // The server closed the kept connection while it was idle (hyper's header read
            // timeout) and saw nothing of this request: send it again on a new connection,
            // as the agent's next attempt would.
            conn = Conn::open(target, &config).await?;
            handshake = Some(conn.resumed);
            answer = send(&mut conn, target, &headers, &body).await;
        }
        let micros = started.elapsed().as_micros() as u64;
        if !reconnect && answer.is_ok() && conn.usable() {
            self.conn = Some(conn);
        }
        let answer = answer??;
        self.acknowledged(sends_full, &answer);
        if let Some(stored) = answer.results_stored {
            self.pending.retain(|(seq, _)| *seq > stored);
        }
        self.checkins += 1;
        self.publishes_seen = self.publishes_seen.max(accepted_before);
        let outcome = match answer.bundle {
            None => {
                if self.bundle.is_empty() {
                    return Err(bad("unchanged_without_bundle", "unchanged but none held"));
                }
                if self.role == Role::Changing {
                    return Err(bad("missed_change", "a flipped fact left the bundle"));
                }
                // The held bundle came before a publish that changes this node's inputs had
                // started, and the server had accepted that publish when this check-in
                // began: a new bundle was due.
                if self.affected_by(publishes) && self.publishes_at_bundle < accepted_before {
                    return Err(bad(
                        "missed_publish",
                        "unchanged after a publish that changed this node's inputs",
                    ));
                }
                Outcome::Unchanged
            }
            Some(bytes) => {
                let verified = verify_bundle(&bytes, &[*bundle_key])
                    .map_err(|e| bad("bundle_signature", e))?;
                let hash = verified.hash().to_string();
                if hash == self.bundle {
                    return Err(bad(
                        "same_bundle_resent",
                        "status bundle with the held hash",
                    ));
                }
                // A publish that changes the node's inputs gives it one new bundle per
                // publish started so far; any other new bundle of a steady node is an error.
                // The node keeps the bundle either way, as the agent would apply it: a node
                // that refused it would have the server compile for it on every check-in.
                let steady_update = !self.bundle.is_empty() && self.role != Role::Changing;
                let unexpected = steady_update
                    && (!self.affected_by(publishes)
                        || self.publish_bundles >= publishes.started.load(Ordering::SeqCst));
                if steady_update && !unexpected {
                    self.publish_bundles += 1;
                }
                self.bundle = hash;
                self.publishes_at_bundle = publishes.started.load(Ordering::SeqCst);
                self.steady_body = None;
                self.presigned.clear();
                self.bundles += 1;
                if unexpected {
                    return Err(bad("unexpected_bundle", "a steady node got a new bundle"));
                }
                Outcome::Bundle
            }
        };
        Ok(Done {
            outcome,
            micros,
            handshake,
            presigned,
        })
    }

    /// The server answered: the facts sent are acknowledged, as the agent then writes
    /// facts.json; or it asked for all of them.
    fn acknowledged(&mut self, sent_full: bool, answer: &Parsed) {
        if answer.need_full_facts {
            self.acked = None;
        } else if sent_full || self.facts_changed {
            self.acked = Some(self.facts.clone());
            self.facts_changed = false;
        }
    }
}

pub(super) fn bad(kind: &'static str, e: impl std::fmt::Display) -> NetError {
    NetError {
        kind,
        detail: e.to_string(),
    }
}

fn status_kind(status: u16) -> &'static str {
    match status {
        400 => "http_400",
        401 => "http_401",
        403 => "http_403",
        408 => "http_408",
        409 => "http_409",
        413 => "http_413",
        429 => "http_429",
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}

#[cfg(test)]
mod tests {
    use super::{Role, SimNode};

    #[test]
    fn check_ins_are_signed_as_the_agent_signs_them() {
        let node = SimNode::new(Role::Steady.node_name(7), Role::Steady);
        let message = vigo_shared::protocol::request_message(
            "POST",
            "/v1/checkin",
            &node.name,
            1_700_000_000,
            1_700_000_000_000_001,
            b"{}",
        );
        assert_eq!(node.sign(&message), node.key.sign(&message));
        assert!(node.key.public().verify(&message, &node.sign(&message)));
    }
}
