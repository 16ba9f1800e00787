//! Transport and enrollment against a running server: no plaintext, no anonymous access
//! beyond `/v1/enroll`, and one-time, glob-bound, expiring tokens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use vigo_shared::protocol::{PATH_CHECKIN, PATH_ENROLL};

use crate::serverkit::{Node, Server, now, wait_for};

#[test]
fn plaintext_and_anonymous_clients_are_refused() {
    let server = Server::start(&[]);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"POST /v1/checkin HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        .unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1"),
        "plaintext got an HTTP answer"
    );
    // An HTTP client pointed at it fails outright.
    let plain = vigo_server::client::Client::new(
        &format!("http://{}", server.addr),
        &server.file("ca.pem"),
        None,
    )
    .unwrap();
    assert!(plain.post(PATH_CHECKIN, b"{}", &[]).is_err());
    assert!(plain.get("/v1/admin/nodes").is_err());

    // TLS without a client certificate: only enrollment is reachable.
    let anon = server.anonymous();
    assert_eq!(anon.post(PATH_CHECKIN, b"{}", &[]).unwrap().status, 401);
    assert_eq!(anon.get("/v1/admin/nodes").unwrap().status, 401);
    assert_eq!(anon.get("/v1/admin/stats").unwrap().status, 401);
    assert_eq!(
        anon.post("/v1/admin/tokens", br#"{"hosts":"*","ttl_secs":60}"#, &[])
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        anon.post("/v1/admin/nodes/x/revoke", b"", &[])
            .unwrap()
            .status,
        401
    );
    assert_eq!(anon.post(PATH_ENROLL, b"{}", &[]).unwrap().status, 400);

    // A node certificate is not an admin credential.
    let mut node = Node::new("web01.prod", 1);
    assert_eq!(
        node.enroll(&server, &server.token("*.prod", 600)).status,
        200
    );
    assert_eq!(
        node.client(&server).get("/v1/admin/nodes").unwrap().status,
        403
    );
    assert_eq!(
        node.client(&server)
            .post("/v1/admin/tokens", br#"{"hosts":"*","ttl_secs":60}"#, &[])
            .unwrap()
            .status,
        403
    );
}

#[test]
fn tokens_are_one_time_glob_bound_and_expire() {
    // Many attempts from one address: the rate limit has its own test.
    let server = Server::start(&["--enroll-per-minute", "100"]);
    let token = server.token("*.web.prod", 600);
    assert!(token.starts_with("vigo_"));

    // Wrong host for the glob: 403, and the token is still good afterwards.
    let mut db = Node::new("db01.staging", 2);
    assert_eq!(db.enroll(&server, &token).status, 403);

    // A proof made with another key: 401.
    let mut liar = Node::new("web02.web.prod", 3);
    let public = Node::new("x", 4).key.public().to_string();
    let proof = liar.key.sign(&vigo_shared::protocol::enroll_message(
        &liar.name, &public, &token,
    ));
    let body = serde_json::json!({
        "token": token, "hostname": liar.name, "public_key": public,
        "proof": vigo_shared::hex::encode(&proof),
    });
    let r = server
        .anonymous()
        .post(PATH_ENROLL, body.to_string().as_bytes(), &[])
        .unwrap();
    assert_eq!(r.status, 401);

    // A small-order key (the identity) with the signature that verifies for any message
    // under it (R = identity, S = 0): 400 before the token is looked at.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut forged = [0u8; 64];
    forged[0] = 1;
    let body = serde_json::json!({
        "token": token, "hostname": "web03.web.prod",
        "public_key": format!("ed25519:{}", vigo_shared::hex::encode(&identity)),
        "proof": vigo_shared::hex::encode(&forged),
    });
    let r = server
        .anonymous()
        .post(PATH_ENROLL, body.to_string().as_bytes(), &[])
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("small order"), "{}", r.body);

    let mut web = Node::new("web01.web.prod", 5);
    let r = web.enroll(&server, &token);
    assert_eq!(r.status, 200, "{}", r.body);
    let json = r.json();
    assert_eq!(json["node"], "web01.web.prod");
    assert_eq!(json["ca"].as_str().unwrap(), server.file("ca.pem"));
    assert_eq!(
        json["bundle_key"].as_str().unwrap(),
        server.file("bundle.pub").trim()
    );
    let der = vigo_server::pki::pem_to_der(web.cert.as_deref().unwrap()).unwrap();
    assert_eq!(
        vigo_server::pki::subject_common_name(&der).as_deref(),
        Some("web01.web.prod")
    );

    // Used once: refused for another node.
    assert_eq!(liar.enroll(&server, &token).status, 401);
    // An unknown or garbled token: 401, and the token text never reaches the log.
    assert_eq!(liar.enroll(&server, "vigo_00_11").status, 401);
    assert_eq!(liar.enroll(&server, "not a token").status, 401);
    // The same name again: 409.
    let mut again = Node::new("web01.web.prod", 6);
    assert_eq!(again.enroll(&server, &server.token("*", 600)).status, 409);

    // Expired.
    let body = serde_json::json!({ "hosts": "*", "ttl_secs": 1 }).to_string();
    let r = server
        .admin()
        .post("/v1/admin/tokens", body.as_bytes(), &[])
        .unwrap();
    let expires = r.json()["expires"].as_u64().unwrap();
    let short = r.json()["token"].as_str().unwrap().to_string();
    wait_for(10, "the token to expire", || now() > expires);
    let mut late = Node::new("late.web.prod", 7);
    assert_eq!(late.enroll(&server, &short).status, 401);

    assert!(!server.log().contains(&token), "a token reached the log");
    assert!(!server.log().contains(&short), "a token reached the log");
}

#[test]
fn vigocli_creates_tokens_lists_and_revokes() {
    let server = Server::start(&[]);
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vigocli"))
            .args(args)
            .arg("--data")
            .arg(&server.data)
            .output()
            .unwrap()
    };
    let out = cli(&["token", "create", "--hosts", "*.demo", "--ttl", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut node = Node::new("web01.demo", 8);
    assert_eq!(node.enroll(&server, &token).status, 200);

    let out = cli(&["node", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(list.starts_with("web01.demo\tactive"), "{list}");

    let out = cli(&["node", "revoke", "web01.demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(cli(&["node", "list"]).stdout).unwrap();
    assert!(list.starts_with("web01.demo\trevoked"), "{list}");
    assert!(!cli(&["node", "revoke", "nosuch"]).status.success());
}
