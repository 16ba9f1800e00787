//! The check-in messages (docs/protocol.md): the signature headers of a request, the fact
//! delta, the request body and the server's answer. Pure functions; the HTTP is in
//! [`super::client`].

use std::collections::BTreeMap;

use miniserde::json::{self, Array, Number, Object, Value};
use vigo_shared::hex;
use vigo_shared::protocol::{
    HEADER_NODE, HEADER_SEQ, HEADER_SIGNATURE, HEADER_TIME, request_message,
};
use vigo_shared::sign::SigningKey;

use crate::facts::Facts;

/// The four signature headers of a request, in order.
pub fn sign_headers(
    key: &SigningKey,
    method: &str,
    path: &str,
    node: &str,
    time: u64,
    seq: u64,
    body: &[u8],
) -> [(&'static str, String); 4] {
    let signature = key.sign(&request_message(method, path, node, time, seq, body));
    [
        (HEADER_NODE, node.to_string()),
        (HEADER_TIME, time.to_string()),
        (HEADER_SEQ, seq.to_string()),
        (HEADER_SIGNATURE, hex::encode(&signature)),
    ]
}

/// Which facts a check-in sends.
#[derive(Clone, Debug, PartialEq)]
pub struct FactDelta {
    /// Every fact is in `set` (nothing acknowledged yet, or the server asked for all).
    pub full: bool,
    /// Facts that are new or changed since the acknowledged ones, as JSON text per name.
    pub set: BTreeMap<String, String>,
    /// Facts that disappeared.
    pub removed: Vec<String>,
}

/// The facts as JSON text per name (the canonical form compared for deltas).
pub fn fact_texts(facts: &Facts) -> BTreeMap<String, String> {
    facts
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                json::to_string(&crate::facts::json_value(value)),
            )
        })
        .collect()
}

/// The delta between `current` facts and the `acknowledged` JSON object text (the content
/// of `facts.json`); a missing or unreadable acknowledgement means a full set.
pub fn fact_delta(current: &Facts, acknowledged: Option<&str>) -> FactDelta {
    let now = fact_texts(current);
    let old: Option<BTreeMap<String, String>> = acknowledged
        .and_then(|text| json::from_str::<Value>(text).ok())
        .and_then(|v| match v {
            Value::Object(o) => Some(
                o.into_iter()
                    .map(|(k, v)| (k, json::to_string(&v)))
                    .collect(),
            ),
            _ => None,
        });
    let Some(old) = old else {
        return FactDelta {
            full: true,
            set: now,
            removed: Vec::new(),
        };
    };
    FactDelta {
        full: false,
        set: now
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        removed: old
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect(),
    }
}

/// The body of `POST /v1/checkin`. `results` are queued results, oldest first: sequence
/// number and the report's JSON text.
pub fn checkin_body(bundle: &str, delta: &FactDelta, results: &[(u64, String)]) -> String {
    let mut set = Object::new();
    for (k, v) in &delta.set {
        set.insert(k.clone(), json::from_str::<Value>(v).unwrap_or(Value::Null));
    }
    let mut removed = Array::new();
    removed.extend(delta.removed.iter().map(|r| Value::String(r.clone())));
    let mut facts = Object::new();
    facts.insert("full".to_string(), Value::Bool(delta.full));
    facts.insert("set".to_string(), Value::Object(set));
    facts.insert("removed".to_string(), Value::Array(removed));
    let mut list = Array::new();
    for (seq, report) in results {
        let mut r = Object::new();
        r.insert("seq".to_string(), Value::Number(Number::U64(*seq)));
        r.insert(
            "report".to_string(),
            json::from_str::<Value>(report).unwrap_or(Value::Null),
        );
        list.push(Value::Object(r));
    }
    let mut body = Object::new();
    body.insert("bundle".to_string(), Value::String(bundle.to_string()));
    body.insert("facts".to_string(), Value::Object(facts));
    body.insert("results".to_string(), Value::Array(list));
    json::to_string(&Value::Object(body))
}

/// The server's answer to a check-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckinResponse {
    /// A new bundle (base64 of the signed envelope) when the status was `bundle`.
    pub bundle: Option<String>,
    /// Every result with a sequence number up to this one is durably stored.
    pub results_stored: u64,
    /// Send every fact next time.
    pub need_full_facts: bool,
    /// The server's check-in interval.
    pub interval_secs: u64,
}

/// Reads the body of a `200` check-in answer; `Err` says what is wrong with it.
pub fn parse_checkin_response(body: &[u8]) -> Result<CheckinResponse, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_string())?;
    let Ok(Value::Object(o)) = json::from_str::<Value>(text) else {
        return Err("the answer is not a JSON object".to_string());
    };
    let bundle = match (o.get("status"), o.get("bundle")) {
        (Some(Value::String(s)), _) if s == "unchanged" => None,
        (Some(Value::String(s)), Some(Value::String(b))) if s == "bundle" => Some(b.clone()),
        (Some(Value::String(s)), _) if s == "bundle" => {
            return Err("status is \"bundle\" but no bundle came with it".to_string());
        }
        _ => return Err("no status \"unchanged\" or \"bundle\" in the answer".to_string()),
    };
    Ok(CheckinResponse {
        bundle,
        results_stored: number(o.get("results_stored")).unwrap_or(0),
        need_full_facts: matches!(o.get("need_full_facts"), Some(Value::Bool(true))),
        interval_secs: number(o.get("interval_secs")).unwrap_or(0),
    })
}

/// The answer to `POST /v1/enroll`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollResponse {
    pub node: String,
    pub certificate: String,
    pub ca: String,
    pub bundle_key: String,
}

/// The body of `POST /v1/enroll`.
pub fn enroll_body(token: &str, hostname: &str, public_key: &str, proof: &[u8; 64]) -> String {
    let mut o = Object::new();
    for (k, v) in [
        ("token", token.to_string()),
        ("hostname", hostname.to_string()),
        ("public_key", public_key.to_string()),
        ("proof", hex::encode(proof)),
    ] {
        o.insert(k.to_string(), Value::String(v));
    }
    json::to_string(&Value::Object(o))
}

/// Reads the body of a `200` enrollment answer.
pub fn parse_enroll_response(body: &[u8]) -> Result<EnrollResponse, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_string())?;
    let Ok(Value::Object(o)) = json::from_str::<Value>(text) else {
        return Err("the answer is not a JSON object".to_string());
    };
    let field = |name: &str| match o.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("the answer has no {name:?}")),
    };
    Ok(EnrollResponse {
        node: field("node")?,
        certificate: field("certificate")?,
        ca: field("ca")?,
        bundle_key: field("bundle_key")?,
    })
}

fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(Number::U64(n)) => Some(*n),
        Value::Number(Number::I64(n)) => u64::try_from(*n).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigo_shared::protocol::PATH_CHECKIN;
    use vigo_shared::when::Value as Fact;

    #[test]
    fn signed_headers_verify_with_the_shared_request_message() {
        let key = SigningKey::from_seed([9; 32]);
        let body = br#"{"bundle":""}"#;
        let headers = sign_headers(&key, "POST", PATH_CHECKIN, "web01", 1_700_000_000, 42, body);
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "x-vigo-node",
                "x-vigo-time",
                "x-vigo-seq",
                "x-vigo-signature"
            ]
        );
        assert_eq!(headers[0].1, "web01");
        assert_eq!(headers[1].1, "1700000000");
        assert_eq!(headers[2].1, "42");
        let sig = hex::decode_array::<64>(&headers[3].1).expect("128 hex digits");
        let msg = request_message("POST", PATH_CHECKIN, "web01", 1_700_000_000, 42, body);
        assert!(key.public().verify(&msg, &sig));
        let other = request_message("POST", PATH_CHECKIN, "web01", 1_700_000_000, 42, b"{}");
        assert!(!key.public().verify(&other, &sig));
    }

    fn facts(pairs: &[(&str, Fact)]) -> Facts {
        let mut f = Facts::default();
        for (k, v) in pairs {
            f.insert(k, v.clone());
        }
        f
    }

    #[test]
    fn fact_deltas() {
        let first = facts(&[
            ("os_family", Fact::Str("debian".into())),
            ("cpus", Fact::Int(2)),
            ("addresses", Fact::List(vec![Fact::Str("10.0.0.1".into())])),
        ]);
        let d = fact_delta(&first, None);
        assert!(d.full);
        assert_eq!(d.set.len(), 3);
        assert!(fact_delta(&first, Some("garbage")).full);

        let acked = first.to_json();
        let same = fact_delta(&first, Some(&acked));
        assert_eq!(
            same,
            FactDelta {
                full: false,
                set: BTreeMap::new(),
                removed: Vec::new()
            }
        );

        let later = facts(&[
            ("os_family", Fact::Str("debian".into())),
            ("cpus", Fact::Int(4)),
            ("kernel", Fact::Str("6.1".into())),
        ]);
        let d = fact_delta(&later, Some(&acked));
        assert!(!d.full);
        assert_eq!(
            d.set.into_iter().collect::<Vec<_>>(),
            [
                ("cpus".to_string(), "4".to_string()),
                ("kernel".to_string(), "\"6.1\"".to_string())
            ]
        );
        assert_eq!(d.removed, ["addresses"]);
    }

    #[test]
    fn checkin_body_layout() {
        // miniserde objects keep their keys sorted.
        let d = fact_delta(&facts(&[("cpus", Fact::Int(2))]), None);
        let body = checkin_body("ab", &d, &[(7, r#"{"format":1}"#.to_string())]);
        assert_eq!(
            body,
            r#"{"bundle":"ab","facts":{"full":true,"removed":[],"set":{"cpus":2}},"results":[{"report":{"format":1},"seq":7}]}"#
        );
    }

    #[test]
    fn checkin_responses() {
        let r = parse_checkin_response(
            br#"{"status":"unchanged","bundle":null,"results_stored":41,"need_full_facts":false,"interval_secs":1800}"#,
        )
        .expect("valid");
        assert_eq!(
            r,
            CheckinResponse {
                bundle: None,
                results_stored: 41,
                need_full_facts: false,
                interval_secs: 1800
            }
        );
        let r = parse_checkin_response(
            br#"{"status":"bundle","bundle":"Zm9v","results_stored":null,"need_full_facts":true}"#,
        )
        .expect("valid");
        assert_eq!(r.bundle.as_deref(), Some("Zm9v"));
        assert_eq!(r.results_stored, 0);
        assert!(r.need_full_facts);
        for bad in [
            &b"<html>"[..],
            b"[]",
            br#"{"status":"bundle"}"#,
            br#"{"status":"nope"}"#,
            b"\xff",
        ] {
            assert!(parse_checkin_response(bad).is_err());
        }
    }
}
