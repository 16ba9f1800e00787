//! The server's limits, each met by a misbehaving client: a certificate from another CA,
//! oversized bodies, silent and slow clients, too many connections, and enrollment floods.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigo_shared::protocol::{PATH_CHECKIN, PATH_ENROLL};

use crate::serverkit::{Node, Server, wait_for};

/// Reads until the server closes the connection; returns what it sent and how long it took.
fn read_until_closed(stream: &mut impl Read) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return (out, start.elapsed()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A client connection to `server` trusting its CA, presenting `identity` (a certificate
/// chain and its key, PEM) when given, and its TCP stream; no handshake done yet.
fn connect(
    server: &Server,
    identity: Option<(&str, &str)>,
) -> (rustls::ClientConnection, TcpStream) {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca = vigo_server::pki::pem_to_der(&server.file("ca.pem")).unwrap();
    roots.add(ca.into()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain = vec![vigo_server::pki::pem_to_der(cert_pem).unwrap().into()];
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    (conn, tcp)
}

/// A TLS connection without a client certificate, handshake completed.
fn tls(server: &Server) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let (mut conn, mut tcp) = connect(server, None);
    conn.complete_io(&mut tcp).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn a_certificate_from_another_ca_gets_the_servers_alert() {
    // The server's writes during a handshake are held until it reads (daemon/hold.rs); a
    // refused handshake's alert must still reach the client, not just the TCP close.
    let server = Server::start(&[]);
    let (other, _) = vigo_server::pki::Ca::create().unwrap();
    let issued = other.issue_client_with_key("web01.demo").unwrap();
    let (mut conn, mut tcp) = connect(&server, Some((&issued.cert_pem, &issued.key_pem)));
    // TLS 1.3: the client's side of the handshake may complete before the server has
    // checked its certificate; the refusal then arrives on the next read.
    let err = match conn.complete_io(&mut tcp) {
        Err(e) => e.to_string(),
        Ok(_) => {
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let _ = s.write_all(b"GET /v1/admin/stats HTTP/1.1\r\nhost: localhost\r\n\r\n");
            let mut buf = [0u8; 512];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => panic!("the server closed without an alert"),
                    Ok(_) => continue,
                    Err(e) => break e.to_string(),
                }
            }
        }
    };
    assert!(err.contains("received fatal alert"), "{err}");
    wait_for(10, "the refusal in the log", || {
        server.log().contains("TLS handshake with")
    });
}

#[test]
fn oversized_bodies_get_413() {
    let server = Server::start(&["--max-body", "1024"]);
    let big = vec![b' '; 64 * 1024];
    let r = server.anonymous().post(PATH_ENROLL, &big, &[]).unwrap();
    assert_eq!(r.status, 413);
    let mut node = Node::new("web01.demo", 21);
    assert_eq!(node.enroll(&server, &server.token("*", 600)).status, 200);
    let r = node.client(&server).post(PATH_CHECKIN, &big, &[]).unwrap();
    assert_eq!(r.status, 413);
    // Far beyond it the server stops reading: an error or a 413, never a 200.
    let huge = vec![b' '; 4 << 20];
    let r = server.anonymous().post(PATH_ENROLL, &huge, &[]);
    assert!(r.is_err() || r.unwrap().status == 413);
    // Within the limit, the same node is served.
    assert_eq!(node.checkin(&server, &serde_json::json!({})).status, 200);
}

#[test]
fn silent_and_slow_clients_are_dropped() {
    let server = Server::start(&["--header-timeout", "1", "--body-timeout", "1"]);

    // TCP only, no TLS handshake.
    let mut tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (_, took) = read_until_closed(&mut tcp);
    assert!(
        took < Duration::from_secs(10),
        "silent TCP client held for {took:?}"
    );

    // TLS done, then half a request line and silence.
    let mut s = tls(&server);
    s.write_all(b"POST /v1/enroll HTTP/1.1\r\nhost: localhost\r\n")
        .unwrap();
    s.flush().unwrap();
    let (_, took) = read_until_closed(&mut s);
    assert!(
        took < Duration::from_secs(10),
        "slow headers held for {took:?}"
    );

    // A served connection left idle is closed too.
    let mut s = tls(&server);
    s.write_all(b"POST /v1/enroll HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}")
        .unwrap();
    s.flush().unwrap();
    let (answer, took) = read_until_closed(&mut s);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"));
    assert!(
        took < Duration::from_secs(10),
        "idle keep-alive held for {took:?}"
    );

    // Headers complete, body trickles: 408.
    let mut s = tls(&server);
    s.write_all(
        b"POST /v1/enroll HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"tok",
    )
    .unwrap();
    s.flush().unwrap();
    let (answer, took) = read_until_closed(&mut s);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(10));
}

#[test]
fn connections_beyond_the_cap_are_closed() {
    let server = Server::start(&["--max-connections", "2", "--header-timeout", "60"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    // The server accepts in order: once it logs a refusal, the third was the one closed.
    let mut third = TcpStream::connect(&server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (_, took) = read_until_closed(&mut third);
    assert!(took < Duration::from_secs(10));
    wait_for(10, "the refusal in the log", || {
        server.log().contains("connection limit reached")
    });
    drop(held);
    // With the slots free again, clients are served.
    wait_for(20, "a served request", || {
        server
            .anonymous()
            .post(PATH_ENROLL, b"{}", &[])
            .is_ok_and(|r| r.status == 400)
    });
}

#[test]
fn enrollment_attempts_are_rate_limited_per_address() {
    let server = Server::start(&["--enroll-per-minute", "3"]);
    let anon = server.anonymous();
    for _ in 0..3 {
        assert_eq!(anon.post(PATH_ENROLL, b"{}", &[]).unwrap().status, 400);
    }
    assert_eq!(anon.post(PATH_ENROLL, b"{}", &[]).unwrap().status, 429);
    // Even a valid token waits its turn.
    let mut node = Node::new("web01.demo", 22);
    assert_eq!(node.enroll(&server, &server.token("*", 600)).status, 429);
    assert!(server.log().contains("429"));
}
