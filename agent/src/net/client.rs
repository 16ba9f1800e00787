//! The HTTPS client: blocking ureq over rustls with the ring provider, trusting only the
//! Vigo CA, optionally presenting the node's client certificate. Every failure is a
//! [`NetError`] value; nothing here panics on what the network sends.

use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Largest answer body read from the server (a bundle is far smaller).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// The parts of a `https://host[:port][/]` server URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port (443 unless given).
    pub port: u16,
    /// `https://host:port` without a trailing slash, to which endpoint paths are appended.
    pub base: String,
}

/// Parses a server URL. Only `https://` is accepted: there is no plaintext mode.
pub fn parse_url(text: &str) -> Result<ServerUrl, String> {
    let rest = text.trim().strip_prefix("https://").ok_or_else(|| {
        format!("server URL {text:?} must start with https:// (there is no plaintext mode)")
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "server URL {text:?} must be https://HOST[:PORT] with no path"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("server URL {text:?}: unclosed [ in the address"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("server URL {text:?}: {p:?} is not a port"))?,
    };
    if host.is_empty() {
        return Err(format!("server URL {text:?} has no host"));
    }
    let shown = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(ServerUrl {
        host: host.to_string(),
        port,
        base: format!("https://{shown}:{port}"),
    })
}

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum NetError {
    /// Connection, TLS or transfer failure (the server is unreachable or misbehaving).
    Transport(String),
    /// The server answered with this status and body text (shortened).
    Status(u16, String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Transport(m) => f.write_str(m),
            NetError::Status(code, body) if body.is_empty() => {
                write!(f, "the server answered {code}")
            }
            NetError::Status(code, body) => write!(f, "the server answered {code}: {body}"),
        }
    }
}

/// A client bound to one server, trusting only `ca_der`.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// The node's TLS identity: its certificate chain (DER) and Ed25519 seed.
pub struct Identity {
    pub certs: Vec<Vec<u8>>,
    pub seed: [u8; 32],
}

impl Client {
    /// A client for `url` that trusts only `ca_der` and, with an identity, presents it.
    pub fn new(url: &ServerUrl, ca_der: &[u8], identity: Option<&Identity>) -> Client {
        let client_cert = identity.and_then(|id| {
            let certs: Vec<Certificate<'static>> = id
                .certs
                .iter()
                .map(|c| Certificate::from_der(c).to_owned())
                .collect();
            // ureq takes a key's DER only with a kind it does not export; PEM says PKCS#8.
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                super::base64::encode(&super::tls::ed25519_pkcs8(&id.seed))
            );
            let key = PrivateKey::from_pem(pem.as_bytes()).ok()?;
            Some(ClientCert::new_with_certs(&certs, key))
        });
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&[
                Certificate::from_der(ca_der).to_owned()
            ]))
            .client_cert(client_cert)
            .unversioned_rustls_crypto_provider(Arc::clone(&super::tls::provider()))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(Duration::from_secs(120)))
            .user_agent(concat!("vigo-agent/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: config.into(),
            base: url.base.clone(),
        }
    }

    /// POSTs a JSON body with extra headers; returns the status and the body of the answer.
    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), NetError> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let resp = req
            .send(body)
            .map_err(|e| NetError::Transport(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| {
                NetError::Transport(format!("reading the answer of {}: {e}", self.base))
            })?;
        Ok((status, bytes))
    }
}

/// The first lines of an error body, for a message (never the whole of a large page).
pub fn short_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.trim().chars().take(300).collect();
    if text.trim().chars().count() > 300 {
        s.push('…');
    }
    s.replace('\n', " ")
}

/// Reads every certificate of a PEM text as DER.
pub fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    ureq::tls::parse_pem(pem.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.der().to_vec()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let u = parse_url("https://vigo.example.com:8443/").expect("valid");
        assert_eq!((u.host.as_str(), u.port), ("vigo.example.com", 8443));
        assert_eq!(u.base, "https://vigo.example.com:8443");
        assert_eq!(parse_url("https://vigo").expect("valid").port, 443);
        let v6 = parse_url("https://[::1]:9000").expect("valid");
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.base.as_str()),
            ("::1", 9000, "https://[::1]:9000")
        );
        for bad in [
            "http://vigo",
            "vigo:443",
            "https://",
            "https://vigo:0",
            "https://vigo/x",
            "https://vigo:http",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
