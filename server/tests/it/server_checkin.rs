//! Signed check-ins against a running server: bundles from the example fleet, `unchanged`
//! on a current hash, every kind of forged or replayed request refused without a state
//! change, no database query on the path, and results acknowledged once durable.

use base64::Engine;
use serde_json::{Value, json};
use vigo_shared::protocol::PATH_CHECKIN;
use vigo_shared::sign::{PublicKey, SigningKey, verify_bundle};

use crate::serverkit::{Node, Server, now, wait_for};

const DB_FACTS: &str = r#"{"os_family":"debian","os":"debian","os_version":"12","arch":"x86_64","hostname":"db01","fqdn":"db01.demo","cpus":2}"#;

fn full_facts() -> Value {
    json!({ "full": true, "set": serde_json::from_str::<Value>(DB_FACTS).unwrap(), "removed": [] })
}

fn enrolled(server: &Server, name: &str, seed: u8) -> Node {
    let mut node = Node::new(name, seed);
    let r = node.enroll(server, &server.token("*.demo", 600));
    assert_eq!(r.status, 200, "{}", r.body);
    node
}

/// The bundle in a `bundle` answer, verified against the server's bundle key.
fn bundle_of(server: &Server, reply: &Value) -> vigo_shared::sign::VerifiedBundle {
    assert_eq!(reply["status"], "bundle", "{reply}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reply["bundle"].as_str().unwrap())
        .unwrap();
    let key = PublicKey::parse(server.file("bundle.pub").trim()).unwrap();
    verify_bundle(&bytes, &[key]).unwrap()
}

fn node_state(server: &Server, name: &str) -> Value {
    let list = server.admin().get("/v1/admin/nodes").unwrap().json();
    list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap()
}

#[test]
fn checkin_gets_bundle_then_unchanged_without_database_queries() {
    // The flusher is held back so that any database call during the check-ins would show.
    let server = Server::start(&["--flush-interval-ms", "3600000"]);
    let mut node = enrolled(&server, "db01.demo", 11);

    let before = server.db_queries();
    let r = node.checkin(
        &server,
        &json!({ "bundle": "", "facts": full_facts(), "results": [] }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.json();
    let bundle = bundle_of(&server, &first);
    assert!(!bundle.bundle().resources.is_empty());
    assert_eq!(first["need_full_facts"], false);
    let hash = bundle.hash().to_string();

    // The bundle is the one the compiler makes for this node and these facts.
    let (config, diags) = vigo_server::config::load(
        &crate::serverkit::example().join("config"),
        &vigo_server::secrets::FileProvider::new(&crate::serverkit::example().join("secrets")),
    );
    assert!(diags.is_empty());
    let facts = vigo_server::compile::facts_from_json(DB_FACTS).unwrap();
    let today = vigo_server::date::today_utc();
    let compiled =
        vigo_server::compile::compile(&config, "db01.demo", Some(&facts), &today).unwrap();
    // Secret values travel sealed to the node: the served bundle is the compiled one with
    // each secret value sealed, and the node's key opens them back.
    let sealed_attrs = |b: &vigo_shared::bundle::Bundle| {
        b.resources
            .iter()
            .flat_map(|r| &r.attrs)
            .filter(|a| matches!(a.value, vigo_shared::bundle::AttrValue::Sealed(_)))
            .count()
    };
    let sensitive = compiled
        .bundle
        .resources
        .iter()
        .flat_map(|r| &r.attrs)
        .filter(|a| matches!(a.value, vigo_shared::bundle::AttrValue::Sensitive(_)))
        .count();
    assert!(sensitive > 0);
    assert_eq!(sealed_attrs(bundle.bundle()), sensitive);
    assert_ne!(compiled.hash.to_string(), hash);
    let mut opened = bundle.bundle().clone();
    assert!(vigo_server::seal::open_bundle(&mut opened, &node.key));
    assert_eq!(opened, compiled.bundle);
    let mut wrong = bundle.bundle().clone();
    assert!(!vigo_server::seal::open_bundle(
        &mut wrong,
        &vigo_shared::sign::SigningKey::from_seed([0x5a; 32])
    ));

    let r = node.checkin(
        &server,
        &json!({ "bundle": hash, "facts": { "set": {}, "removed": [] }, "results": [] }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "unchanged");
    assert_eq!(r.json()["bundle"], Value::Null);

    // A fact the policy does not read keeps the cached bundle; one it reads recompiles.
    let compiles = server.compiles();
    assert_eq!(compiles, 1);
    let r = node.checkin(
        &server,
        &json!({ "bundle": hash, "facts": { "set": { "cpus": 8 } } }),
    );
    assert_eq!(r.json()["status"], "unchanged");
    assert_eq!(server.compiles(), compiles, "an unused fact recompiled");
    let r = node.checkin(
        &server,
        &json!({ "bundle": hash, "facts": { "set": { "os_family": "freebsd", "os": "freebsd" } } }),
    );
    let other = bundle_of(&server, &r.json());
    assert_ne!(
        other.hash().to_string(),
        hash,
        "the db rule no longer matches"
    );
    assert_eq!(server.compiles(), compiles + 1);
    for i in 0..20 {
        let r = node.checkin(
            &server,
            &json!({
                "bundle": other.hash().to_string(),
                "results": [ { "seq": i + 1, "report": { "changed": 0 } } ],
            }),
        );
        assert_eq!(r.json()["status"], "unchanged");
    }
    assert_eq!(
        server.db_queries(),
        before,
        "a check-in queried the database"
    );
    assert_eq!(
        server.compiles(),
        compiles + 1,
        "cache hits compile nothing"
    );
    assert_eq!(
        node_state(&server, "db01.demo")["last_seq"].as_u64(),
        Some(node.seq)
    );
}

#[test]
fn forged_replayed_stale_and_revoked_requests_change_nothing() {
    let server = Server::start(&[]);
    let mut node = enrolled(&server, "db02.demo", 12);
    let mut other = enrolled(&server, "web02.demo", 13);
    let r = node.checkin(&server, &json!({ "facts": full_facts() }));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = other.checkin(&server, &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let base = node_state(&server, "db02.demo");
    let client = node.client(&server);
    let body = json!({ "facts": { "set": { "os_family": "rhel" } }, "results": [ { "seq": 9, "report": {} } ] }).to_string();
    let send = |headers: Vec<(&'static str, String)>, body: &str| {
        client
            .post(PATH_CHECKIN, body.as_bytes(), &headers)
            .unwrap()
    };
    let seq = node.seq + 1;

    // Tampered body: signed one thing, sent another.
    let h = node.headers(&node.key, PATH_CHECKIN, b"{}", now(), seq);
    assert_eq!(send(h, &body).status, 401);
    // Wrong key.
    let h = node.headers(
        &SigningKey::from_seed([99; 32]),
        PATH_CHECKIN,
        body.as_bytes(),
        now(),
        seq,
    );
    assert_eq!(send(h, &body).status, 401);
    // Stale time, both directions.
    let h = node.headers(&node.key, PATH_CHECKIN, body.as_bytes(), now() - 301, seq);
    assert_eq!(send(h, &body).status, 401);
    let h = node.headers(&node.key, PATH_CHECKIN, body.as_bytes(), now() + 301, seq);
    assert_eq!(send(h, &body).status, 401);
    // Replayed sequence number (the last accepted one).
    let h = node.headers(&node.key, PATH_CHECKIN, body.as_bytes(), now(), node.seq);
    assert_eq!(send(h, &body).status, 401);
    // Missing headers.
    assert_eq!(send(vec![], &body).status, 401);
    // Node header naming another node than the certificate (signed by that node's key).
    let h = other.headers(&other.key, PATH_CHECKIN, body.as_bytes(), now(), 1_000_000);
    assert_eq!(send(h, &body).status, 403);

    // Nothing changed: same sequence number, no results accepted.
    assert_eq!(node_state(&server, "db02.demo"), base);

    // Revoked: refused at once, even when correctly signed.
    let r = server
        .admin()
        .post("/v1/admin/nodes/db02.demo/revoke", b"", &[])
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let h = node.headers(&node.key, PATH_CHECKIN, body.as_bytes(), now(), seq);
    assert_eq!(send(h, &body).status, 403);
    let after = node_state(&server, "db02.demo");
    assert_eq!(after["last_seq"], base["last_seq"]);
    assert_eq!(after["revoked"], true);
    // The other node is unaffected.
    assert_eq!(other.checkin(&server, &json!({})).status, 200);

    let log = server.log();
    assert!(log.contains("refused checkin"), "refusals are logged");
    assert!(
        !log.contains(&vigo_shared::hex::encode(&node.seed)),
        "a key reached the log"
    );
}

#[test]
fn results_are_acknowledged_once_durable_and_survive_restart() {
    let mut server = Server::start(&[]);
    let mut node = enrolled(&server, "db03.demo", 14);
    let r = node.checkin(&server, &json!({
        "facts": full_facts(),
        "results": [ { "seq": 1, "report": { "changed": 3 } }, { "seq": 2, "report": { "changed": 0 } } ],
    }));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["results_stored"].as_u64().unwrap() <= 2);
    let hash = bundle_of(&server, &r.json()).hash().to_string();
    let mut stored = 0;
    wait_for(10, "results_stored to reach 2", || {
        let r = node.checkin(&server, &json!({ "bundle": hash }));
        stored = r.json()["results_stored"].as_u64().unwrap();
        stored == 2
    });

    // A result sent before shutdown is flushed on SIGTERM.
    let r = node.checkin(
        &server,
        &json!({ "bundle": hash, "results": [ { "seq": 3, "report": {} } ] }),
    );
    assert_eq!(r.status, 200);
    assert!(server.stop().success());
    assert!(
        !server.data.join("server.addr").exists(),
        "a stopped server leaves no address"
    );
    let conn = rusqlite::Connection::open(server.data.join("vigo.db")).unwrap();
    let (count, max): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), MAX(seq) FROM results WHERE node = 'db03.demo'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((count, max), (3, 3));
    let last_seq: i64 = conn
        .query_row(
            "SELECT last_seq FROM nodes WHERE name = 'db03.demo'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last_seq as u64, node.seq);
    drop(conn);

    // After a restart the node is known from the database: its key, sequence number,
    // facts and stored results.
    server.restart(&[]);
    let r = node.checkin(&server, &json!({ "bundle": hash }));
    assert_eq!(r.status, 200, "{}", r.body);
    let json = r.json();
    assert_eq!(json["results_stored"], 3);
    assert_eq!(json["need_full_facts"], false);
    assert_eq!(json["status"], "unchanged", "same facts, same bundle");
    // A replay of the last request before the restart is still refused.
    node.seq -= 1;
    assert_eq!(
        node.checkin(&server, &json!({ "bundle": hash })).status,
        401
    );
}

#[test]
fn a_revoked_node_enrolls_again_with_a_new_key_and_starts_afresh() {
    let server = Server::start(&[]);
    let mut old = enrolled(&server, "db04.demo", 15);
    let report =
        json!({ "facts": full_facts(), "results": [ { "seq": 1, "report": { "run": "old" } } ] });
    assert_eq!(old.checkin(&server, &report).status, 200);
    wait_for(10, "the old result to be stored", || {
        old.checkin(&server, &json!({})).json()["results_stored"] == 1
    });
    let r = server
        .admin()
        .post("/v1/admin/nodes/db04.demo/revoke", b"", &[])
        .unwrap();
    assert_eq!(r.status, 200);

    let mut new = enrolled(&server, "db04.demo", 16);
    assert_eq!(
        old.checkin(&server, &json!({})).status,
        401,
        "the old key is gone"
    );
    let report =
        json!({ "facts": full_facts(), "results": [ { "seq": 1, "report": { "run": "new" } } ] });
    let r = new.checkin(&server, &report);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["results_stored"], 0);
    wait_for(10, "the new result to be stored", || {
        new.checkin(&server, &json!({})).json()["results_stored"] == 1
    });
    let state = node_state(&server, "db04.demo");
    assert_eq!(state["revoked"], false);
    assert_eq!(state["public_key"], new.key.public().to_string());
}

/// `last_seq` of `name` in the database, read with a read-only connection.
fn stored_seq(server: &Server, name: &str) -> u64 {
    let conn = rusqlite::Connection::open_with_flags(
        server.data.join("vigo.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let seq: i64 = conn
        .query_row("SELECT last_seq FROM nodes WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .unwrap();
    seq as u64
}

#[test]
fn progress_of_no_change_checkins_is_written_per_progress_interval_and_at_shutdown() {
    // Facts and results are written every 5 ms; progress alone once an hour.
    let mut server = Server::start(&[
        "--flush-interval-ms",
        "5",
        "--progress-interval-ms",
        "3600000",
    ]);
    let mut quiet = enrolled(&server, "db04.demo", 15);
    let mut busy = enrolled(&server, "db05.demo", 16);
    let r = quiet.checkin(&server, &json!({ "facts": full_facts() }));
    let hash = bundle_of(&server, &r.json()).hash().to_string();
    // Facts are written without the progress of their check-in, and so are none of the
    // no-change check-ins after it.
    for _ in 0..3 {
        let r = quiet.checkin(&server, &json!({ "bundle": hash }));
        assert_eq!(r.json()["status"], "unchanged", "{}", r.body);
    }
    // A result of the other node is acknowledged only after a flush that came after the
    // quiet node's check-ins: by then its progress would have been written, were it due.
    let r = busy.checkin(
        &server,
        &json!({ "results": [ { "seq": 1, "report": {} } ] }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let with_result = busy.seq;
    wait_for(10, "the other node's result to be acknowledged", || {
        busy.checkin(&server, &json!({})).json()["results_stored"] == 1
    });
    assert_eq!(
        stored_seq(&server, "db05.demo"),
        with_result,
        "written with its result"
    );
    assert_eq!(stored_seq(&server, "db04.demo"), 0, "progress alone waits");

    // SIGTERM writes it.
    assert!(server.stop().success());
    assert_eq!(stored_seq(&server, "db04.demo"), quiet.seq);

    // With a short interval it is written without a stop.
    server.restart(&["--progress-interval-ms", "20"]);
    let r = quiet.checkin(&server, &json!({ "bundle": hash }));
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for(10, "the quiet node's progress to be written", || {
        stored_seq(&server, "db04.demo") == quiet.seq
    });
}
