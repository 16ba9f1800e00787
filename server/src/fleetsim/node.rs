//! One simulated node: its Ed25519 key, enrollment through `/v1/enroll`, and check-ins
//! signed and shaped exactly as the agent's (`agent/src/net/checkin.rs`): the same four
//! headers over `request_message`, a sequence of max(last + 1, Unix µs), fact deltas
//! against what the server acknowledged, queued run results until `results_stored` covers
//! them, and the bundle hash of the last bundle received.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use vigo_shared::protocol::{
    HEADER_NODE, HEADER_SEQ, HEADER_SIGNATURE, HEADER_TIME, PATH_CHECKIN, PATH_ENROLL,
    enroll_message, request_message,
};
use vigo_shared::sign::{PublicKey, SigningKey, verify_bundle};

use super::net::{Conn, NetError, Target};

/// The fact a changing node flips on every check-in. The example config's `db` group is
/// `when: "os_family('debian') || os_family('rhel') || ..."`, so a `db*` node whose
/// `os_family` goes from `debian` to `freebsd` loses the group and gets a new bundle, and
/// gets the old one back on the next flip.
pub const FLIP_FACT: &str = "os_family";
const FLIP_VALUES: [&str; 2] = ["debian", "freebsd"];

/// What one check-in came to, for the counters.
pub enum Outcome {
    /// `unchanged` as expected.
    Unchanged,
    /// A new bundle that verified and whose hash differs from the one sent.
    Bundle,
}

/// A simulated node.
pub struct SimNode {
    pub name: String,
    pub changing: bool,
    key: SigningKey,
    seed: [u8; 32],
    config: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    seq: u64,
    /// Facts as the node has them now.
    facts: BTreeMap<String, Value>,
    /// Facts the server acknowledged (the answer to the last check-in came back); `None`
    /// means send them all.
    acked: Option<BTreeMap<String, Value>>,
    /// Hex hash of the bundle last received, empty before the first.
    bundle: String,
    /// Run results not yet covered by `results_stored`: result sequence and report.
    pending: Vec<(u64, Value)>,
    result_seq: u64,
    pub checkins: u64,
    pub bundles: u64,
    /// New bundles a steady node took because of a publish (at most one per publish).
    publish_bundles: u64,
}

fn now_secs() -> u64 {
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

impl SimNode {
    /// A node with a fresh random key.
    pub fn new(name: String, changing: bool) -> SimNode {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the system has randomness");
        let mut facts = BTreeMap::new();
        // A typical fact set of a small Linux host (the agent sends more; these are the
        // kinds of values it sends).
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
            changing,
            key: SigningKey::from_seed(seed),
            seed,
            config: None,
            conn: None,
            seq: 0,
            facts,
            acked: None,
            bundle: String::new(),
            publish_bundles: 0,
            pending: Vec::new(),
            result_seq: 0,
            checkins: 0,
            bundles: 0,
        }
    }

    pub fn enrolled(&self) -> bool {
        self.config.is_some()
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
        let (status, answer) = conn
            .request(target, "POST", PATH_ENROLL, &[], body.into_bytes())
            .await?;
        if status != 200 {
            return Err(NetError {
                kind: status_kind(status),
                detail: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        let v: Value = serde_json::from_slice(&answer).map_err(|e| bad("enroll answer", e))?;
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

    /// The body the agent would send now; `with_result` queues a new run result first.
    fn body(&mut self, with_result: bool) -> (Vec<u8>, BTreeMap<String, Value>) {
        if self.changing && self.acked.is_some() {
            let now = self.facts.get(FLIP_FACT).and_then(Value::as_str);
            let next = if now == Some(FLIP_VALUES[0]) {
                FLIP_VALUES[1]
            } else {
                FLIP_VALUES[0]
            };
            self.facts.insert(FLIP_FACT.to_string(), json!(next));
        }
        if with_result {
            self.result_seq += 1;
            self.pending
                .push((self.result_seq, run_report(self.result_seq)));
        }
        let facts = match &self.acked {
            None => json!({ "full": true, "set": self.facts, "removed": [] }),
            Some(old) => {
                let set: serde_json::Map<String, Value> = self
                    .facts
                    .iter()
                    .filter(|(k, v)| old.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Vec<&String> = old
                    .keys()
                    .filter(|k| !self.facts.contains_key(*k))
                    .collect();
                json!({ "full": false, "set": set, "removed": removed })
            }
        };
        let results: Vec<Value> = self
            .pending
            .iter()
            .map(|(seq, report)| json!({ "seq": seq, "report": report }))
            .collect();
        let body = json!({ "bundle": self.bundle, "facts": facts, "results": results });
        (body.to_string().into_bytes(), self.facts.clone())
    }

    /// One signed check-in; `reconnect` opens a new TLS connection for it (and drops it
    /// after), otherwise the kept connection is reused. Returns the outcome, the latency
    /// in µs and whether a new handshake resumed (`None` when no handshake happened).
    pub async fn checkin(
        &mut self,
        target: &Target,
        bundle_key: &PublicKey,
        reconnect: bool,
        with_result: bool,
        publishes: &std::sync::atomic::AtomicU64,
    ) -> Result<(Outcome, u64, Option<bool>), NetError> {
        let config = self
            .config
            .clone()
            .ok_or_else(|| bad("state", "node is not enrolled"))?;
        let (body, facts_now) = self.body(with_result);
        let started = Instant::now();
        let mut handshake = None;
        if reconnect || !self.conn.as_ref().is_some_and(Conn::usable) {
            let c = Conn::open(target, &config).await?;
            handshake = Some(c.resumed);
            self.conn = Some(c);
        }
        self.seq = (self.seq + 1).max(now_micros());
        let time = now_secs();
        let sig = self.key.sign(&request_message(
            "POST",
            PATH_CHECKIN,
            &self.name,
            time,
            self.seq,
            &body,
        ));
        let headers = [
            (HEADER_NODE, self.name.clone()),
            (HEADER_TIME, time.to_string()),
            (HEADER_SEQ, self.seq.to_string()),
            (HEADER_SIGNATURE, vigo_shared::hex::encode(&sig)),
        ];
        let conn = self.conn.as_mut().expect("opened above");
        let answer = conn
            .request(target, "POST", PATH_CHECKIN, &headers, body)
            .await;
        let micros = started.elapsed().as_micros() as u64;
        if reconnect || answer.is_err() {
            self.conn = None;
        }
        let (status, answer) = answer?;
        if status != 200 {
            return Err(NetError {
                kind: status_kind(status),
                detail: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        let v: Value = serde_json::from_slice(&answer).map_err(|e| bad("answer", e))?;
        // The server answered: the facts sent are acknowledged, as the agent then writes
        // facts.json.
        self.acked = if v["need_full_facts"] == Value::Bool(true) {
            None
        } else {
            Some(facts_now)
        };
        if let Some(stored) = v["results_stored"].as_u64() {
            self.pending.retain(|(seq, _)| *seq > stored);
        }
        self.checkins += 1;
        let outcome = match (v["status"].as_str(), v["bundle"].as_str()) {
            (Some("unchanged"), _) => {
                if self.bundle.is_empty() {
                    return Err(bad("unchanged_without_bundle", "unchanged but none held"));
                }
                if self.changing {
                    return Err(bad("missed_change", "a flipped fact left the bundle"));
                }
                Outcome::Unchanged
            }
            (Some("bundle"), Some(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| bad("bundle_base64", e))?;
                let verified = verify_bundle(&bytes, &[*bundle_key])
                    .map_err(|e| bad("bundle_signature", e))?;
                let hash = verified.hash().to_string();
                if hash == self.bundle {
                    return Err(bad(
                        "same_bundle_resent",
                        "status bundle with the held hash",
                    ));
                }
                if !self.bundle.is_empty() && !self.changing {
                    // A publish gives every node a new bundle (it carries the policy
                    // version): one per publish started so far is expected.
                    let started = publishes.load(std::sync::atomic::Ordering::SeqCst);
                    if self.publish_bundles >= started {
                        return Err(bad("unexpected_bundle", "a steady node got a new bundle"));
                    }
                    self.publish_bundles += 1;
                }
                self.bundle = hash;
                self.bundles += 1;
                Outcome::Bundle
            }
            _ => return Err(bad("answer", "no status unchanged/bundle")),
        };
        Ok((outcome, micros, handshake))
    }
}

/// A short run report like the agent's (format, timing and per-resource counts).
fn run_report(seq: u64) -> Value {
    json!({
        "format": 1,
        "seq": seq,
        "started": now_secs(),
        "duration_ms": 412,
        "mode": "enforce",
        "resources": { "total": 23, "changed": (seq % 3), "failed": 0, "skipped": 1 },
        "changes": [ { "id": "file:/etc/motd", "attr": "content", "action": "update" } ],
    })
}

fn bad(kind: &'static str, e: impl std::fmt::Display) -> NetError {
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
