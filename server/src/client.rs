//! A small blocking HTTPS client with mutual TLS pinned to the Vigo CA: `vigocli` uses it
//! with the admin credential, and tests use it as admin, as a node, or with no certificate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// A client for one server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// A response: status and body text.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Client {
    /// A client trusting only `ca_pem`, presenting `identity` (certificate PEM, key PEM)
    /// when given.
    pub fn new(base: &str, ca_pem: &str, identity: Option<(&str, &str)>) -> Result<Client> {
        let ca = Certificate::from_pem(ca_pem.as_bytes()).context("reading the CA certificate")?;
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(RootCerts::Specific(Arc::new(vec![ca])));
        if let Some((cert, key)) = identity {
            let cert =
                Certificate::from_pem(cert.as_bytes()).context("reading the client certificate")?;
            let key = PrivateKey::from_pem(key.as_bytes()).context("reading the client key")?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Ok(Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// The admin client from a data directory (`ca.pem`, `admin.pem`, `admin.key`).
    pub fn admin(base: &str, data: &Path) -> Result<Client> {
        let read = |f: &str| {
            std::fs::read_to_string(data.join(f))
                .with_context(|| format!("reading {}", data.join(f).display()))
        };
        Client::new(
            base,
            &read("ca.pem")?,
            Some((&read("admin.pem")?, &read("admin.key")?)),
        )
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Reply> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .with_context(|| format!("GET {path}"))?;
        reply(resp)
    }

    /// `POST path` with a body and extra headers.
    pub fn post(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> Result<Reply> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send(body).with_context(|| format!("POST {path}"))?;
        reply(resp)
    }
}

fn reply(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply> {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .context("reading the response")?;
    Ok(Reply { status, body })
}
