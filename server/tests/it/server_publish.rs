//! Publishing against a running server: a broken config is refused with its diagnostics
//! and the old one keeps serving; a fixed one reaches the next check-in; the history lists
//! every attempt; publishes under a stream of check-ins serve one whole version at a time
//! and reach every node; `config trace --online` traces a node from the served config and
//! its reported facts.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};
use vigo_shared::sign::{PublicKey, verify_bundle};

use crate::fixture::TempDir;
use crate::serverkit::{Node, Server, copy_tree, example};

const FACTS: &str = r#"{"os_family":"debian","os":"debian","os_version":"12","arch":"x86_64","hostname":"db01","fqdn":"db01.demo","cpus":2}"#;

const EXTRA_RULE: &str = "name: extra\nmatch: \"*\"\nmodules: [extra]\n";
const BROKEN: &str =
    "name: extra\nresources:\n  - name: /etc/extra-banner\n    type: fiel\n    content: hello\n";
const FIXED: &str =
    "name: extra\nresources:\n  - name: /etc/extra-banner\n    type: file\n    content: hello\n";

/// A server running with its own copy of the example config.
fn server_with_copy(tmp: &TempDir) -> Server {
    let config = tmp.0.join("config");
    copy_tree(&example().join("config"), &config);
    Server::start_with((config, example().join("secrets")), &[])
}

fn bundle_hash(server: &Server, reply: &Value) -> (String, Vec<String>) {
    assert_eq!(reply["status"], "bundle", "{reply}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reply["bundle"].as_str().unwrap())
        .unwrap();
    let key = PublicKey::parse(server.file("bundle.pub").trim()).unwrap();
    let verified = verify_bundle(&bytes, &[key]).unwrap();
    let ids = verified
        .bundle()
        .resources
        .iter()
        .map(|r| r.name.clone())
        .collect();
    (verified.hash().to_string(), ids)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &Path, file: &str, body: &str) {
    std::fs::write(dir.join(file), body).unwrap();
}

/// Replaces `from` (which must be there) with `to` in a file of the config.
fn replace_in(dir: &Path, file: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    write(dir, file, &text.replace(from, to));
}

#[test]
fn a_bad_publish_keeps_the_old_config_and_a_fixed_one_reaches_the_next_checkin() {
    let tmp = TempDir::new("publish");
    let mut server = server_with_copy(&tmp);
    let config = server.config.0.clone();
    let mut node = Node::new("db01.demo", 21);
    let r = node.enroll(&server, &server.token("*.demo", 600));
    assert_eq!(r.status, 200, "{}", r.body);
    let facts = json!({ "full": true, "set": serde_json::from_str::<Value>(FACTS).unwrap() });
    let r = node.checkin(&server, &json!({ "facts": facts }));
    assert_eq!(r.status, 200, "{}", r.body);
    let (old, _) = bundle_hash(&server, &r.json());

    // Nothing changed on disk: a no-op, said so.
    let out = server.vigocli(&["config", "publish"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already serving"), "{}", text(&out));

    // A broken module: refused with file:line:col, exit 1, the old bundle still current.
    write(&config, "nodes/50-extra.yaml", EXTRA_RULE);
    write(&config, "modules/extra.yaml", BROKEN);
    let out = server.vigocli(&["config", "publish"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("modules/extra.yaml:4:11:"),
        "diagnostic with file:line:col: {stderr}"
    );
    assert!(stderr.contains("publish refused"), "{stderr}");
    for _ in 0..2 {
        let r = node.checkin(&server, &json!({ "bundle": old }));
        assert_eq!(r.json()["status"], "unchanged", "{}", r.body);
    }

    // Fixed: accepted, and the next check-in gets the new bundle with the new resource.
    write(&config, "modules/extra.yaml", FIXED);
    let out = server.vigocli(&["config", "publish"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("published config"), "{}", text(&out));
    let r = node.checkin(&server, &json!({ "bundle": old }));
    let (new, names) = bundle_hash(&server, &r.json());
    assert_ne!(new, old);
    assert!(names.iter().any(|n| n == "/etc/extra-banner"), "{names:?}");
    let r = node.checkin(&server, &json!({ "bundle": new }));
    assert_eq!(r.json()["status"], "unchanged", "{}", r.body);

    // The history: the config loaded at start, the no-op, the refusal, the acceptance.
    let history = server.admin().get("/v1/admin/publishes").unwrap().json();
    let rows = history["publishes"].as_array().unwrap();
    let results: Vec<&str> = rows.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["accepted", "unchanged", "refused", "accepted"]);
    assert_eq!(rows[0]["who"], "vigo-server (start)");
    assert_eq!(rows[2]["who"], "vigo-admin");
    assert!(rows[2]["diagnostics"].as_u64().unwrap() >= 1);
    assert_eq!(rows[3]["diagnostics"], 0);
    assert_eq!(rows[3]["policy"], history["serving"]);
    assert_ne!(rows[2]["policy"], rows[3]["policy"]);
    let out = server.vigocli(&["config", "history"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.lines().count(), 5, "{listing}");
    assert!(listing.contains("refused"), "{listing}");
    assert_eq!(listing.matches("(serving)").count(), 1, "{listing}");

    // A restart on the same files serves the published version and adds no entry; the
    // node's bundle stays current.
    assert!(server.stop().success());
    server.restart(&[]);
    let after = server.admin().get("/v1/admin/publishes").unwrap().json();
    assert_eq!(after["publishes"], history["publishes"]);
    let r = node.checkin(&server, &json!({ "bundle": new }));
    assert_eq!(r.json()["status"], "unchanged", "{}", r.body);
}

#[test]
fn online_trace_matches_the_offline_trace_with_the_reported_facts() {
    let tmp = TempDir::new("online-trace");
    let server = server_with_copy(&tmp);
    let mut node = Node::new("db01.demo", 22);
    let r = node.enroll(&server, &server.token("*.demo", 600));
    assert_eq!(r.status, 200, "{}", r.body);
    let facts = json!({ "full": true, "set": serde_json::from_str::<Value>(FACTS).unwrap() });
    assert_eq!(
        node.checkin(&server, &json!({ "facts": facts })).status,
        200
    );

    let facts_file = tmp.0.join("facts.json");
    std::fs::write(&facts_file, FACTS).unwrap();
    let offline = |json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vigocli"));
        cmd.args(["config", "trace", "db01.demo", "--config"])
            .arg(&server.config.0)
            .arg("--secrets")
            .arg(&server.config.1)
            .arg("--facts")
            .arg(&facts_file);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    for json in [true, false] {
        let mut args = vec!["config", "trace", "db01.demo", "--online"];
        if json {
            args.push("--json");
        }
        let online = server.vigocli(&args);
        assert!(online.status.success(), "{}", text(&online));
        let local = offline(json);
        assert!(local.status.success(), "{}", text(&local));
        // Compared as a boolean so that a failure does not print two whole traces.
        assert!(
            online.stdout == local.stdout,
            "online and offline traces differ (json: {json}); online:\n{}",
            String::from_utf8_lossy(&online.stdout)
                .lines()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    let out = server.vigocli(&["config", "trace", "nosuch.demo", "--online"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no node named nosuch.demo"),
        "{}",
        text(&out)
    );
    let r = node
        .client(&server)
        .get("/v1/admin/nodes/db01.demo/trace")
        .unwrap();
    assert_eq!(r.status, 403, "a node cannot read traces");
}

/// The hash of the bundle the server serves `node` (enrolled with key seed `seed_byte`) with
/// [`FACTS`] from the config in `dir` now: compiled, then its secret values sealed to the
/// node (deterministically for the server's key, so the hash can be computed here).
fn expected_hash(server: &Server, node: &str, seed_byte: u8) -> String {
    let (config, diags) = vigo_server::config::load(
        &server.config.0,
        &vigo_server::secrets::FileProvider::new(&server.config.1),
    );
    assert!(diags.is_empty(), "{diags:?}");
    let facts = vigo_server::compile::facts_from_json(FACTS).unwrap();
    let today = vigo_server::date::today_utc();
    let mut bundle = vigo_server::compile::compile(&config, node, Some(&facts), &today)
        .unwrap()
        .bundle;
    let server_key = vigo_shared::sign::SigningKey::parse(&server.file("bundle.key")).unwrap();
    let node_key = Node::new(node, seed_byte).key.public();
    vigo_server::seal::seal_bundle(&mut bundle, &server_key, &node_key).unwrap();
    vigo_shared::sign::BundleHash::of(&vigo_shared::codec::encode(&bundle)).to_string()
}

#[test]
fn publishes_under_concurrent_checkins_serve_one_whole_version_and_reach_every_node() {
    let tmp = TempDir::new("publish-race");
    let server = server_with_copy(&tmp);
    let config = server.config.0.clone();
    let names = ["db01.demo", "db02.demo", "db03.demo"];
    let hashes = |server: &Server| -> Vec<String> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| expected_hash(server, n, 40 + i as u8))
            .collect()
    };
    let old: Vec<String> = hashes(&server);
    write(&config, "nodes/50-extra.yaml", EXTRA_RULE);
    write(&config, "modules/extra.yaml", FIXED);
    let new: Vec<String> = hashes(&server);
    std::fs::remove_file(config.join("nodes/50-extra.yaml")).unwrap();
    std::fs::remove_file(config.join("modules/extra.yaml")).unwrap();

    let facts = json!({ "full": true, "set": serde_json::from_str::<Value>(FACTS).unwrap() });
    let mut senders = Vec::new();
    let mut seen_by = Vec::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (i, name) in names.iter().enumerate() {
        let mut node = Node::new(name, 40 + i as u8);
        let r = node.enroll(&server, &server.token("*.demo", 600));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            node.checkin(&server, &json!({ "facts": facts })).status,
            200
        );
        let client = node.client(&server);
        let key = PublicKey::parse(server.file("bundle.pub").trim()).unwrap();
        let allowed = [old[i].clone(), new[i].clone()];
        let stop = stop.clone();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        seen_by.push(seen.clone());
        senders.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // An empty hash asks for the whole bundle every time.
                let r = node
                    .checkin_with(&client, &json!({ "bundle": "" }))
                    .unwrap();
                assert_eq!(r.status, 200, "{}", r.body);
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(r.json()["bundle"].as_str().unwrap())
                    .unwrap();
                let hash = verify_bundle(&bytes, &[key]).unwrap().hash().to_string();
                assert!(
                    allowed.contains(&hash),
                    "a bundle of neither version: {hash}"
                );
                seen.lock().unwrap().insert(hash);
            }
            node
        }));
    }

    // Alternate between the two versions, ending on the new one.
    for round in 0..5 {
        if round % 2 == 0 {
            write(&config, "nodes/50-extra.yaml", EXTRA_RULE);
            write(&config, "modules/extra.yaml", FIXED);
        } else {
            std::fs::remove_file(config.join("nodes/50-extra.yaml")).unwrap();
            std::fs::remove_file(config.join("modules/extra.yaml")).unwrap();
        }
        let r = server.admin().post("/v1/admin/publish", b"", &[]).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["result"], "accepted", "{}", r.body);
        // The next round starts once every node has been served this version while the
        // others keep checking in.
        let want = if round % 2 == 0 { &new } else { &old };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        for (i, seen) in seen_by.iter().enumerate() {
            while !seen.lock().unwrap().contains(&want[i]) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} was never served the version of round {round}",
                    names[i]
                );
                // Polling interval of a condition with a deadline, not a synchronisation.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            seen.lock().unwrap().clear();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for (i, sender) in senders.into_iter().enumerate() {
        let mut node = sender.join().unwrap();
        // After the last publish every node's next check-in gets the new version.
        let r = node.checkin(&server, &json!({ "bundle": old[i] }));
        let (hash, _) = bundle_hash(&server, &r.json());
        assert_eq!(hash, new[i], "{}", names[i]);
    }
}

#[test]
fn a_rotated_secret_is_published_although_the_files_hash_the_same() {
    let tmp = TempDir::new("publish-secret");
    let config = tmp.0.join("config");
    let secrets = tmp.0.join("secrets");
    copy_tree(&example().join("config"), &config);
    copy_tree(&example().join("secrets"), &secrets);
    let server = Server::start_with((config, secrets.clone()), &[]);
    let mut node = Node::new("db01.demo", 23);
    let r = node.enroll(&server, &server.token("*.demo", 600));
    assert_eq!(r.status, 200, "{}", r.body);
    let facts = json!({ "full": true, "set": serde_json::from_str::<Value>(FACTS).unwrap() });
    let (old, _) = bundle_hash(
        &server,
        &node.checkin(&server, &json!({ "facts": facts })).json(),
    );

    let planted = "rotated-Pa55-9f3c1e";
    write(&secrets, "vigo/db/password", planted);
    let out = server.vigocli(&["config", "publish"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("published config"), "{}", text(&out));
    let r = node.checkin(&server, &json!({ "bundle": old }));
    let (new, _) = bundle_hash(&server, &r.json());
    assert_ne!(new, old, "the rotated secret reached no bundle");

    let history = server.vigocli(&["config", "history"]);
    let rows = server.admin().get("/v1/admin/publishes").unwrap().json();
    let rows = rows["publishes"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["result"], "accepted");
    assert_eq!(
        rows[0]["policy"], rows[1]["policy"],
        "secrets are not in the hash"
    );
    for shown in [text(&out), text(&history), server.log()] {
        assert!(!shown.contains(planted), "the secret was shown: {shown}");
    }
}

/// A publish that changes one module rebuilds only the bundles of the nodes that include
/// it: another node's next check-in is answered `unchanged` without a compile, and the
/// publish says how many nodes keep their bundle.
#[test]
fn a_publish_changing_one_module_recompiles_only_the_nodes_that_include_it() {
    let tmp = TempDir::new("publish-selective");
    let server = server_with_copy(&tmp);
    let config = server.config.0.clone();
    let facts = json!({ "full": true, "set": serde_json::from_str::<Value>(FACTS).unwrap() });
    // web01 gets modules web + base + os-users; app01 only base + os-users.
    let mut nodes = [Node::new("web01.demo", 24), Node::new("app01.demo", 25)];
    let mut held = Vec::new();
    for node in &mut nodes {
        let r = node.enroll(&server, &server.token("*.demo", 600));
        assert_eq!(r.status, 200, "{}", r.body);
        let r = node.checkin(&server, &json!({ "facts": facts }));
        held.push(bundle_hash(&server, &r.json()).0);
    }
    let [web, app] = &mut nodes;

    replace_in(
        &config,
        "modules/web.yaml",
        "listen_port: 80",
        "listen_port: 8080",
    );
    let out = server.vigocli(&["config", "publish"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("bundles: 1 node(s) get a new one, 1 keep theirs"),
        "{}",
        text(&out)
    );

    let compiles = server.compiles();
    for _ in 0..2 {
        let r = app.checkin(&server, &json!({ "bundle": held[1] }));
        assert_eq!(r.json()["status"], "unchanged", "{}", r.body);
    }
    assert_eq!(
        server.compiles(),
        compiles,
        "the unaffected node recompiled"
    );
    let r = web.checkin(&server, &json!({ "bundle": held[0] }));
    let (new, _) = bundle_hash(&server, &r.json());
    assert_ne!(new, held[0]);
    assert_eq!(server.compiles(), compiles + 1);
    let r = web.checkin(&server, &json!({ "bundle": new }));
    assert_eq!(r.json()["status"], "unchanged", "{}", r.body);

    // A fleet-wide variable reaches both.
    replace_in(&config, "vigo.yaml", "ops@example.com", "sre@example.com");
    let out = server.vigocli(&["config", "publish"]);
    assert!(
        text(&out).contains("bundles: 2 node(s) get a new one, 0 keep theirs"),
        "{}",
        text(&out)
    );
    let r = app.checkin(&server, &json!({ "bundle": held[1] }));
    assert_ne!(bundle_hash(&server, &r.json()).0, held[1]);
}
