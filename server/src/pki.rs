//! The Vigo certificate authority: creating the CA, the server certificate and client
//! certificates (for the admin and for enrolled nodes), with Ed25519 keys throughout.
//!
//! Node certificates are issued for a public key the node generated itself (rcgen's
//! `PublicKeyData`), so a node's private key never leaves the node.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, PublicKeyData, SignatureAlgorithm,
};
use sha2::{Digest, Sha256};

/// The common name of the CA certificate.
pub const CA_NAME: &str = "Vigo CA";
/// The common name of the admin credential that `vigocli` presents.
pub const ADMIN_NAME: &str = "vigo-admin";

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused.
    #[error("creating a certificate failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM file held no certificate.
    #[error("no certificate found in PEM text")]
    NoCertificate,
}

/// A certificate and its private key, both PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
}

/// The CA: its signing key and the parameters its issuer name comes from.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Ca {
    /// Creates a new CA with a fresh Ed25519 key. Returns the CA and its key (PEM).
    pub fn create() -> Result<(Ca, String), PkiError> {
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let params = ca_params();
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok((
            Ca {
                issuer: Issuer::new(params, key),
                cert_pem: cert.pem(),
            },
            key_pem,
        ))
    }

    /// Loads the CA from its certificate and key (PEM), as `init` wrote them.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Ca {
            issuer: Issuer::new(ca_params(), key),
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The server certificate for `hostname`, `localhost`, `127.0.0.1` and `::1`.
    pub fn issue_server(&self, hostname: &str) -> Result<Issued, PkiError> {
        let mut names = vec![hostname.to_string()];
        for n in ["localhost", "127.0.0.1", "::1"] {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, hostname.to_string());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate with a fresh key (the admin credential).
    pub fn issue_client_with_key(&self, common_name: &str) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let cert = client_params(common_name).signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate for a node's own Ed25519 public key.
    pub fn issue_client_for(
        &self,
        common_name: &str,
        public_key: &[u8; 32],
    ) -> Result<String, PkiError> {
        let key = ForeignEd25519(*public_key);
        Ok(client_params(common_name)
            .signed_by(&key, &self.issuer)?
            .pem())
    }
}

fn client_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name.to_string());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params
}

/// A raw Ed25519 public key that is not ours to sign with.
struct ForeignEd25519([u8; 32]);

impl PublicKeyData for ForeignEd25519 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

/// The DER bytes of the first certificate in `pem`.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .ok_or(PkiError::NoCertificate)
}

/// The CA fingerprint agents pin: SHA-256 of the DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    vigo_shared::hex::encode(&Sha256::digest(der))
}

/// The subject common name of a DER certificate, read with a minimal DER walk. It is only
/// used on certificates the TLS layer already verified against our CA.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (cert, _) = tlv(der)?;
    let (tbs, _) = tlv(cert.1)?;
    let mut rest = tbs.1;
    let (first, after) = tlv(rest)?;
    // An explicit [0] version comes first in v3 certificates.
    if first.0 == 0xa0 {
        rest = after;
    }
    // serial, signature algorithm, issuer, validity, subject
    let mut subject = None;
    for _ in 0..5 {
        let (item, after) = tlv(rest)?;
        subject = Some(item);
        rest = after;
    }
    let subject = subject?;
    // Name ::= SEQUENCE OF SET OF SEQUENCE { oid, value }
    let mut sets = subject.1;
    while !sets.is_empty() {
        let (set, after) = tlv(sets)?;
        sets = after;
        let (atv, _) = tlv(set.1)?;
        let (oid, value) = tlv(atv.1)?;
        if oid.0 == 0x06 && oid.1 == [0x55, 0x04, 0x03] {
            let (v, _) = tlv(value)?;
            return String::from_utf8(v.1.to_vec()).ok();
        }
    }
    None
}

type Tlv<'a> = (u8, &'a [u8]);

/// One DER tag-length-value: ((tag, content), rest).
fn tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let content = input.get(header..end)?;
    Some(((tag, content), &input[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_their_common_name() {
        let (ca, _) = Ca::create().unwrap();
        let ca_der = pem_to_der(&ca.cert_pem).unwrap();
        assert_eq!(subject_common_name(&ca_der).as_deref(), Some(CA_NAME));
        let admin = ca.issue_client_with_key(ADMIN_NAME).unwrap();
        let der = pem_to_der(&admin.cert_pem).unwrap();
        assert_eq!(subject_common_name(&der).as_deref(), Some(ADMIN_NAME));
        let node = ca.issue_client_for("web01.prod", &[7; 32]).unwrap();
        let der = pem_to_der(&node).unwrap();
        assert_eq!(subject_common_name(&der).as_deref(), Some("web01.prod"));
        assert_eq!(fingerprint(&ca_der).len(), 64);
    }
}
