//! The simulator's HTTPS client: hyper's HTTP/1.1 client connection over tokio-rustls, one
//! rustls `ClientConfig` per identity (so a node never resumes another node's session), and
//! a connection that is kept for keep-alive reuse or dropped after each request.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::TlsConnector;

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

/// One open HTTP/1.1 connection and whether its TLS handshake resumed a session.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    pub resumed: bool,
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

impl Conn {
    /// Opens TCP, then TLS, then the HTTP/1.1 connection (driven by a spawned task).
    pub async fn open(
        target: &Target,
        config: &Arc<rustls::ClientConfig>,
    ) -> Result<Conn, NetError> {
        let tcp = tokio::net::TcpStream::connect(target.addr)
            .await
            .map_err(|e| err("connect", e))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(config.clone())
            .connect(target.name.clone(), tcp)
            .await
            .map_err(|e| err("tls", e))?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| err("http", e))?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it.
            let _ = conn.await;
        });
        Ok(Conn { sender, resumed })
    }

    /// Whether the connection can still carry a request (the server may have closed it).
    pub fn usable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends one request and reads the whole answer: status and body.
    pub async fn request(
        &mut self,
        target: &Target,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), NetError> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &target.host_header)
            .header("content-type", "application/json")
            .header("user-agent", "vigo-fleetsim");
        for (n, v) in headers {
            req = req.header(*n, v.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| err("request", e))?;
        self.sender.ready().await.map_err(|e| err("closed", e))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| err("send", e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| err("read", e))?
            .to_bytes();
        Ok((status, body))
    }
}
