//! TLS for the agent: trust only the Vigo CA, never a public root store.
//!
//! Enrollment starts with nothing but the CA's fingerprint (`--ca-fingerprint`, SHA-256 of
//! its DER). [`PinningVerifier`] accepts a server only when its presented chain contains a
//! certificate with exactly that fingerprint *and* the end-entity certificate verifies
//! against that certificate as the only trust anchor, for the host name of the URL
//! (delegated to rustls' `WebPkiServerVerifier`). [`probe_ca`] runs one handshake with it
//! to learn the CA certificate; every request after that (enrollment and check-ins) goes
//! through ureq with that one CA as its only root, which is the same trust decision.
//!
//! The node's TLS client key is its Ed25519 node key, handed to rustls as PKCS#8 v1.

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use vigo_shared::hex;

/// The crypto provider of every TLS connection the agent makes: TLS 1.3 only, X25519 key
/// exchange, Ed25519 certificates and client key (all a Vigo server issues and speaks).
///
/// Built field by field instead of from `ring::default_provider()` so that the linker can
/// drop what the agent never uses: P-256/P-384 (ring's precomputed P-256 table alone is
/// 151 KB), RSA and TLS 1.2. That is about a tenth of the static agent
/// (size-report/history.tsv).
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::{cipher_suite, kx_group};
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![kx_group::X25519],
        signature_verification_algorithms: ED25519_ONLY,
        secure_random: &SystemRandom,
        key_provider: &Ed25519Keys,
    })
}

/// Certificate and handshake signatures the agent accepts: Ed25519 only.
static ED25519_ONLY: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[webpki::ring::ED25519],
    mapping: &[(SignatureScheme::ED25519, &[webpki::ring::ED25519])],
};

/// The operating system's random generator, through ring.
#[derive(Debug)]
struct SystemRandom;

impl rustls::crypto::SecureRandom for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

/// Loads the node's TLS client key, which is always an Ed25519 key in PKCS#8.
#[derive(Debug)]
struct Ed25519Keys;

impl rustls::crypto::KeyProvider for Ed25519Keys {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        match key {
            PrivateKeyDer::Pkcs8(der) => rustls::crypto::ring::sign::any_eddsa_type(&der),
            _ => Err(rustls::Error::General(
                "the node key must be an Ed25519 key in PKCS#8".to_string(),
            )),
        }
    }
}

/// SHA-256 of a certificate's DER encoding: the CA fingerprint of `--ca-fingerprint`.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Parses `--ca-fingerprint`: 64 hex digits, colons allowed (as `openssl x509 -fingerprint`
/// prints them), any case.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let clean: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::decode_array::<32>(&clean)
}

/// The PKCS#8 v1 DER of an Ed25519 private key (RFC 8410): a fixed 16-byte prefix, then
/// the 32-byte seed.
pub fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Vec::with_capacity(48);
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed);
    der
}

/// Whether a certificate's DER holds this Ed25519 public key as its subject key: the
/// SubjectPublicKeyInfo of an Ed25519 key is a fixed 12-byte prefix and the key.
pub fn cert_has_ed25519_key(cert_der: &[u8], public: &[u8; 32]) -> bool {
    const SPKI_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(public);
    cert_der.windows(spki.len()).any(|w| w == spki)
}

/// What the pinning verifier saw in the last handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinOutcome {
    /// No certificate in the presented chain has the pinned fingerprint.
    NoMatch,
    /// The pinned CA was presented but the server certificate does not verify against it
    /// for this host name: the message says why.
    Invalid(String),
    /// Accepted; the DER of the pinned CA certificate.
    Accepted(Vec<u8>),
}

/// A rustls server verifier pinned to one CA fingerprint (see the module comment).
#[derive(Debug)]
pub struct PinningVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
    outcome: Mutex<Option<PinOutcome>>,
}

impl PinningVerifier {
    /// A verifier that trusts only the CA whose certificate hashes to `pin`.
    pub fn new(pin: [u8; 32], provider: Arc<CryptoProvider>) -> PinningVerifier {
        PinningVerifier {
            pin,
            provider,
            outcome: Mutex::new(None),
        }
    }

    /// The decision of the last handshake, if one got that far.
    pub fn outcome(&self) -> Option<PinOutcome> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    fn record(&self, outcome: PinOutcome) {
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome);
        }
    }

    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> PinOutcome {
        let Some(ca) = std::iter::once(end_entity)
            .chain(intermediates)
            .find(|c| fingerprint(c) == self.pin)
        else {
            return PinOutcome::NoMatch;
        };
        let mut roots = RootCertStore::empty();
        if let Err(e) = roots.add(ca.clone().into_owned()) {
            return PinOutcome::Invalid(format!("the pinned CA certificate is unusable: {e}"));
        }
        let webpki = match WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        {
            Ok(v) => v,
            Err(e) => return PinOutcome::Invalid(e.to_string()),
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Ok(_) => PinOutcome::Accepted(ca.to_vec()),
            Err(e) => PinOutcome::Invalid(e.to_string()),
        }
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = self.decide(end_entity, intermediates, server_name, ocsp, now);
        let result = match &outcome {
            PinOutcome::Accepted(_) => Ok(ServerCertVerified::assertion()),
            PinOutcome::NoMatch => Err(rustls::Error::General(
                "the server's CA does not match the pinned fingerprint".to_string(),
            )),
            PinOutcome::Invalid(why) => Err(rustls::Error::General(why.clone())),
        };
        self.record(outcome);
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why [`probe_ca`] could not learn the CA.
#[derive(Debug)]
pub enum ProbeError {
    /// TCP or TLS failed before the certificate was checked.
    Connect(String),
    /// The presented chain holds no certificate with the pinned fingerprint.
    Mismatch,
    /// The pinned CA was presented but does not vouch for this server and host name.
    Invalid(String),
}

/// One TLS handshake with `host:port`, verified by a [`PinningVerifier`] for `pin`; returns
/// the DER of the pinned CA certificate. Nothing is sent over the connection.
pub fn probe_ca(host: &str, port: u16, pin: [u8; 32]) -> Result<Vec<u8>, ProbeError> {
    let provider = provider();
    let verifier = Arc::new(PinningVerifier::new(pin, provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| ProbeError::Connect(format!("{host:?} is not a valid host name")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| ProbeError::Connect(e.to_string()))?;
    let mut tcp = TcpStream::connect((host, port))
        .map_err(|e| ProbeError::Connect(format!("cannot connect to {host}:{port}: {e}")))?;
    let timeout = Some(Duration::from_secs(15));
    let _ = tcp.set_read_timeout(timeout);
    let _ = tcp.set_write_timeout(timeout);
    let handshake = loop {
        if !conn.is_handshaking() {
            break Ok(());
        }
        if let Err(e) = conn.complete_io(&mut tcp) {
            break Err(e);
        }
    };
    match (verifier.outcome(), handshake) {
        (Some(PinOutcome::NoMatch), _) => Err(ProbeError::Mismatch),
        (Some(PinOutcome::Invalid(why)), _) => Err(ProbeError::Invalid(why)),
        (Some(PinOutcome::Accepted(ca)), Ok(())) => {
            conn.send_close_notify();
            let _ = conn.complete_io(&mut tcp);
            let _ = tcp.flush();
            Ok(ca)
        }
        (_, Err(e)) => Err(ProbeError::Connect(format!(
            "TLS handshake with {host}:{port} failed: {e}"
        ))),
        (None, Ok(())) => Err(ProbeError::Connect(
            "TLS handshake ended without a certificate".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ED25519};

    struct Pki {
        ca_der: Vec<u8>,
        server_der: Vec<u8>,
    }

    fn pki(name: &str) -> Pki {
        let ca_key = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let server_key = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key");
        let server_params = CertificateParams::new(vec![name.to_string()]).expect("params");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let server = server_params
            .signed_by(&server_key, &issuer)
            .expect("server cert");
        Pki {
            ca_der: ca.der().to_vec(),
            server_der: server.der().to_vec(),
        }
    }

    fn check(pin: [u8; 32], p: &Pki, host: &str) -> PinOutcome {
        let v = PinningVerifier::new(pin, provider());
        let ee = CertificateDer::from(p.server_der.clone());
        let chain = [CertificateDer::from(p.ca_der.clone())];
        let name = ServerName::try_from(host.to_string()).expect("host name");
        let result = v.verify_server_cert(&ee, &chain, &name, &[], UnixTime::now());
        let outcome = v.outcome().expect("an outcome is recorded");
        assert_eq!(result.is_ok(), matches!(outcome, PinOutcome::Accepted(_)));
        outcome
    }

    #[test]
    fn the_pinned_ca_is_accepted_for_its_host() {
        let p = pki("vigo.test");
        assert_eq!(
            check(fingerprint(&p.ca_der), &p, "vigo.test"),
            PinOutcome::Accepted(p.ca_der.clone())
        );
    }

    #[test]
    fn another_fingerprint_is_refused() {
        let p = pki("vigo.test");
        let mut pin = fingerprint(&p.ca_der);
        pin[0] ^= 1;
        assert_eq!(check(pin, &p, "vigo.test"), PinOutcome::NoMatch);
        // Pinning the server certificate itself is not enough: it is no trust anchor for
        // itself.
        assert!(matches!(
            check(fingerprint(&p.server_der), &p, "vigo.test"),
            PinOutcome::Invalid(_)
        ));
    }

    #[test]
    fn a_chain_from_another_ca_presenting_the_pinned_ca_is_refused() {
        let pinned = pki("vigo.test");
        let other = pki("vigo.test");
        // The attacker's server certificate with the genuine CA appended to the chain.
        let forged = Pki {
            ca_der: pinned.ca_der.clone(),
            server_der: other.server_der,
        };
        assert!(matches!(
            check(fingerprint(&pinned.ca_der), &forged, "vigo.test"),
            PinOutcome::Invalid(_)
        ));
    }

    #[test]
    fn the_wrong_host_name_is_refused() {
        let p = pki("vigo.test");
        assert!(matches!(
            check(fingerprint(&p.ca_der), &p, "evil.test"),
            PinOutcome::Invalid(_)
        ));
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abc"), None);
    }

    #[test]
    fn pkcs8_of_the_node_key_is_accepted_by_ring() {
        let seed = [7u8; 32];
        let key = vigo_shared::sign::SigningKey::from_seed(seed);
        let pair =
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&ed25519_pkcs8(&seed))
                .expect("PKCS#8 v1 parses");
        use ring::signature::KeyPair as _;
        assert_eq!(pair.public_key().as_ref(), key.public().as_bytes());
    }
}
