//! The simulator's HTTPS client: a small HTTP/1.1 client written for this one purpose over
//! tokio-rustls, one rustls `ClientConfig` per identity (so a node never resumes another
//! node's session), and a connection that is kept for keep-alive reuse or dropped after each
//! request.
//!
//! It is hand-written rather than hyper's client because the simulator must cost much less
//! CPU per check-in than the server it measures: hyper's client drives each connection from
//! a task of its own and hands every request and answer across a channel, and builds a
//! header map both ways. Here a request is one buffer written as one TLS record, and the
//! answer is read into a buffer kept with the connection, with only the status line and the
//! three headers that frame it looked at. What goes over the wire is ordinary HTTP/1.1.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Where the server is and how it is named for certificate checks.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub name: ServerName<'static>,
    pub host_header: String,
}

impl Target {
    /// Parses `https://HOST:PORT` (HOST an IP address or `localhost`).
    pub fn parse(url: &str) -> Result<Target> {
        let authority = url
            .trim()
            .strip_prefix("https://")
            .context("the server URL must start with https://")?
            .trim_end_matches('/');
        let addr: SocketAddr = match authority.parse() {
            Ok(a) => a,
            Err(_) => {
                use std::net::ToSocketAddrs;
                authority
                    .to_socket_addrs()
                    .with_context(|| format!("resolving {authority}"))?
                    .next()
                    .with_context(|| format!("{authority} resolves to no address"))?
            }
        };
        let host = match authority.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => authority,
        };
        let name = ServerName::try_from(host.to_string())
            .with_context(|| format!("{host} is not a server name"))?;
        Ok(Target {
            addr,
            name,
            host_header: authority.to_string(),
        })
    }
}

/// The PKCS#8 v1 DER of an Ed25519 seed (the form rustls takes a private key in).
pub fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

/// Every certificate of a PEM text, as DER.
pub fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading PEM certificates")
}

/// A client config trusting only `ca`, presenting `identity` when given, with a small
/// session cache of its own for TLS 1.3 resumption.
pub fn client_config(
    ca: &CertificateDer<'static>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>> {
    // What the real agent offers (agent/src/net/tls.rs): TLS 1.3 with AES-128-GCM or
    // ChaCha20 and X25519, so the server's handshake cost is the one real agents cause.
    use rustls::crypto::ring::{cipher_suite, default_provider, kx_group};
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![kx_group::X25519],
        ..default_provider()
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).context("adding the CA")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("choosing TLS 1.3")?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .context("loading the client certificate")?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::in_memory_sessions(4);
    Ok(Arc::new(config))
}

/// A node's client config from its certificate PEM and Ed25519 seed.
pub fn node_config(
    ca: &CertificateDer<'static>,
    cert_pem: &str,
    seed: &[u8; 32],
) -> Result<Arc<rustls::ClientConfig>> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ed25519_pkcs8(seed)));
    client_config(ca, Some((pem_certs(cert_pem)?, key)))
}

/// Why a request failed, as a short kind for the error table.
#[derive(Debug)]
pub struct NetError {
    pub kind: &'static str,
    pub detail: String,
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

fn err(kind: &'static str, e: impl std::fmt::Display) -> NetError {
    NetError {
        kind,
        detail: e.to_string(),
    }
}

/// The largest answer head (status line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The largest answer body accepted (a bundle is a few KB of base64).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One open HTTP/1.1 connection and whether its TLS handshake resumed a session.
pub struct Conn {
    tls: TlsStream<TcpStream>,
    /// The last answer as read (kept to reuse its allocation).
    input: Vec<u8>,
    /// The request being written; kept to reuse its allocation.
    output: Vec<u8>,
    /// The server said `connection: close`, or the connection failed.
    closed: bool,
    /// No answer has been read on this connection yet.
    fresh: bool,
    pub resumed: bool,
}

/// An answer: its status and body. The body is a range of the connection's input buffer,
/// valid until the next request on it.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Conn {
    /// Opens TCP, then TLS.
    pub async fn open(
        target: &Target,
        config: &Arc<rustls::ClientConfig>,
    ) -> Result<Conn, NetError> {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|e| err("connect", e))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(config.clone())
            .connect(target.name.clone(), tcp)
            .await
            .map_err(|e| err("tls", e))?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Ok(Conn {
            tls,
            input: Vec::with_capacity(4096),
            output: Vec::with_capacity(1024),
            closed: false,
            fresh: true,
            resumed,
        })
    }

    /// Whether the connection can carry another request as far as is known here. A server
    /// that closed an idle kept connection is only noticed by the next request, which then
    /// fails with [`NetError`] kind `closed` before any answer came; the request can then
    /// be made again on a new connection.
    pub fn usable(&self) -> bool {
        !self.closed
    }

    /// Sends one request and reads the whole answer. `headers` are written as given, after
    /// `host`, `content-type`, `user-agent` and `content-length`.
    pub async fn request(
        &mut self,
        target: &Target,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer<'_>, NetError> {
        if self.closed {
            return Err(err("closed", "the connection was closed before"));
        }
        self.output.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.output,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             user-agent: vigo-fleetsim\r\ncontent-length: {}\r\n",
            target.host_header,
            body.len()
        );
        for (name, value) in headers {
            for part in [*name, ": ", *value, "\r\n"] {
                self.output.extend_from_slice(part.as_bytes());
            }
        }
        self.output.extend_from_slice(b"\r\n");
        self.output.extend_from_slice(body);
        // One write, so that the request leaves as one TLS record and one segment.
        let written = async {
            self.tls.write_all(&self.output).await?;
            self.tls.flush().await
        }
        .await;
        if let Err(e) = written {
            self.closed = true;
            return Err(err(if self.fresh { "send" } else { "closed" }, e));
        }
        let framed = self.read_answer().await;
        let (status, start, len) = match framed {
            Ok(f) => f,
            Err(e) => {
                self.closed = true;
                return Err(e);
            }
        };
        self.fresh = false;
        Ok(Answer {
            status,
            body: &self.input[start..start + len],
        })
    }

    /// Reads one answer into `input`: its status and where its body lies. What the last
    /// answer left in the buffer is dropped first (a server does not send unasked).
    async fn read_answer(&mut self) -> Result<(u16, usize, usize), NetError> {
        self.input.clear();
        let head_end = loop {
            if let Some(i) = find_head_end(&self.input) {
                break i;
            }
            if self.input.len() > MAX_HEAD {
                return Err(err("read", "answer head too long"));
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.input[..head_end])
            .map_err(|_| err("read", "answer head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| err("read", "no HTTP/1.1 status line"))?;
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| err("read", "bad content-length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // The server (axum) sends every answer with a known length.
                return Err(err(
                    "read",
                    format!("transfer-encoding {value} not supported"),
                ));
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                self.closed = true;
            }
        }
        let length = length.ok_or_else(|| err("read", "answer without content-length"))?;
        if length > MAX_BODY {
            return Err(err("read", "answer body too large"));
        }
        let start = head_end + 4;
        while self.input.len() < start + length {
            self.fill().await?;
        }
        Ok((status, start, length))
    }

    /// Reads more of the connection into `input`. The end of the stream is an error here,
    /// since this only runs while an answer is awaited; on a kept connection that ends
    /// before any byte of the answer, the kind is `closed` (the server closed it while idle).
    async fn fill(&mut self) -> Result<(), NetError> {
        if self.input.capacity() - self.input.len() < 2048 {
            self.input.reserve(8192);
        }
        let detail = match self.tls.read_buf(&mut self.input).await {
            Ok(0) => "the server closed the connection".to_string(),
            Ok(_) => return Ok(()),
            Err(e) => e.to_string(),
        };
        let kind = if self.input.is_empty() && !self.fresh {
            "closed"
        } else {
            "read"
        };
        Err(NetError { kind, detail })
    }
}

/// The end of the answer head (the index of its blank line's `\r\n\r\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}
