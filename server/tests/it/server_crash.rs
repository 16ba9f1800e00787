//! The server killed with SIGKILL at arbitrary points, also while a flush may be under way
//! (a 5 ms flush interval under a stream of check-ins): every result acknowledged before
//! the kill is in the database, and an agent resending everything it holds after the
//! restart stores nothing twice.

use std::time::{Duration, Instant};

use base64::Engine;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use crate::serverkit::{Node, Server, wait_for};

const FLAGS: &[&str] = &["--flush-interval-ms", "5"];

/// (seq, report) of every stored result of `node`, read with a read-only connection.
fn stored(server: &Server, node: &str) -> Vec<(u64, Value)> {
    let conn = Connection::open_with_flags(
        server.data.join("vigo.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, report FROM results WHERE node = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([node], |r| {
        let report: String = r.get(1)?;
        Ok((
            r.get::<_, i64>(0)? as u64,
            serde_json::from_str(&report).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// What the agent keeps across server crashes: results not yet acknowledged, and the hash
/// of the bundle it holds (sent with every check-in, as the agent does).
struct Queue {
    bundle: String,
    next: u64,
    pending: Vec<u64>,
    acked: u64,
}

fn body(queue: &Queue, tag: &str) -> Value {
    let results: Vec<Value> = queue
        .pending
        .iter()
        .map(|s| json!({ "seq": s, "report": { "run": s, "sent": tag } }))
        .collect();
    json!({ "bundle": queue.bundle, "results": results })
}

#[test]
fn sigkill_loses_no_acknowledged_result_and_resending_stores_none_twice() {
    let mut server = Server::start(FLAGS);
    let mut node = Node::new("db05.demo", 31);
    let r = node.enroll(&server, &server.token("*.demo", 600));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut queue = Queue {
        bundle: String::new(),
        next: 1,
        pending: Vec::new(),
        acked: 0,
    };
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;

    for round in 0..5u64 {
        // Check-ins back to back, each with a new result and everything unacknowledged,
        // from another thread, until the kill cuts them off.
        let client = node.client(&server);
        let bundle_key =
            vigo_shared::sign::PublicKey::parse(server.file("bundle.pub").trim()).unwrap();
        let acked_seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(queue.acked));
        let seen = acked_seen.clone();
        let sender = std::thread::spawn(move || {
            let started = Instant::now();
            loop {
                queue.pending.push(queue.next);
                queue.next += 1;
                let reply = match node.checkin_with(&client, &body(&queue, "first")) {
                    Ok(r) if r.status == 200 => r,
                    _ => break,
                };
                let answer = reply.json();
                if answer["status"] == "bundle" {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(answer["bundle"].as_str().unwrap())
                        .unwrap();
                    let verified = vigo_shared::sign::verify_bundle(&bytes, &[bundle_key]);
                    queue.bundle = verified.unwrap().hash().to_string();
                }
                let acked = answer["results_stored"].as_u64().unwrap();
                assert!(acked >= queue.acked, "the acknowledgement went backwards");
                queue.acked = acked;
                seen.store(acked, std::sync::atomic::Ordering::SeqCst);
                queue.pending.retain(|s| *s > acked);
                if started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
            (node, queue)
        });
        // The first round kills only after something was acknowledged (a loaded machine
        // may take a while for the first compile and flush); then at a varying moment.
        if round == 0 {
            wait_for(60, "a first acknowledged result", || {
                acked_seen.load(std::sync::atomic::Ordering::SeqCst) > 0
            });
        }
        let delay = 250 + (round * 53 + jitter / 1000) % 250;
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
        (node, queue) = sender.join().unwrap();
        assert!(queue.acked > 0, "nothing was acknowledged");

        // Every acknowledged result is durable; none is stored twice.
        let rows = stored(&server, "db05.demo");
        let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "gaps or duplicates after a kill at {delay} ms"
        );
        assert!(
            seqs.len() as u64 >= queue.acked,
            "round {round} (kill at {delay} ms): {} stored, {} acknowledged",
            seqs.len(),
            queue.acked
        );
        eprintln!(
            "round {round}: killed at {delay} ms; {} sent, {} stored, {} acknowledged",
            queue.next - 1,
            seqs.len(),
            queue.acked
        );
        server.restart(FLAGS);
    }

    // After the last restart the agent resends what it holds; for good measure this one
    // resends every result it ever made, twice, with a different report.
    let sent = queue.next - 1;
    let acked_before = queue.acked;
    queue.pending = (1..=sent).collect();
    for _ in 0..2 {
        let r = node.checkin(&server, &body(&queue, "resent"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    wait_for(10, "every result to be stored", || {
        node.checkin(&server, &json!({})).json()["results_stored"].as_u64() == Some(sent)
    });
    assert!(server.stop().success());
    let rows = stored(&server, "db05.demo");
    assert_eq!(rows.len() as u64, sent, "each result stored exactly once");
    for (i, (seq, report)) in rows.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(report["run"], *seq);
        if *seq <= acked_before {
            assert_eq!(
                report["sent"], "first",
                "an acknowledged result was overwritten by its resend"
            );
        }
    }
}
