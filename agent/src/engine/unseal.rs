//! Opening sealed secret values with the node's key, in memory, just before a run: the
//! cached bundle on disk keeps only ciphertext (format: `vigo_shared::seal`).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use vigo_shared::bundle::{AttrValue, Bundle, Sensitive};
use vigo_shared::seal;
use vigo_shared::sign::SigningKey;

/// Opens one sealed value bound to `resource_id` and `attr_key`. `None` when the value was
/// sealed to another key, for another attribute, or altered; the reason is not narrowed
/// further on purpose (the AEAD cannot tell these apart).
pub fn open_value(
    key: &SigningKey,
    resource_id: &str,
    attr_key: &str,
    sealed: &[u8],
) -> Option<Sensitive> {
    let parts = seal::split(sealed)?;
    let agreement = seal::open_agreement(key, &parts.eph_pub)?;
    let unbound: UnboundKey = Salt::new(HKDF_SHA256, &agreement.salt)
        .extract(&agreement.shared)
        .expand(&[seal::INFO], &CHACHA20_POLY1305)
        .ok()?
        .into();
    let mut buf = parts.ciphertext.to_vec();
    let plain = LessSafeKey::new(unbound)
        .open_in_place(
            Nonce::assume_unique_for_key(parts.nonce),
            Aad::from(seal::aad(resource_id, attr_key)),
            &mut buf,
        )
        .ok()?;
    let text = String::from_utf8(plain.to_vec()).ok()?;
    Some(Sensitive::new(text))
}

/// A copy of `bundle` with every sealed value opened into a `Sensitive` one, and for each
/// resource the reason it cannot be applied when one of its values could not be opened
/// (that value stays sealed; the message names the attribute, never the value).
pub fn open_bundle(bundle: &Bundle, key: Option<&SigningKey>) -> (Bundle, Vec<Option<String>>) {
    let mut out = bundle.clone();
    let mut errors = Vec::with_capacity(out.resources.len());
    for res in &mut out.resources {
        let id = res.id();
        let mut error = None;
        for attr in &mut res.attrs {
            let AttrValue::Sealed(sealed) = &attr.value else {
                continue;
            };
            let opened = key.and_then(|k| open_value(k, &id, &attr.key, sealed));
            match opened {
                Some(v) => attr.value = AttrValue::Sensitive(v),
                None if error.is_none() => {
                    error = Some(match key {
                        None => format!(
                            "attribute `{}` is sealed to the node's key and no node key was given; pass --state with the enrolled node's state folder",
                            attr.key
                        ),
                        Some(_) => format!(
                            "attribute `{}` is sealed and cannot be opened with this node's key (sealed for another node, another attribute, or altered); not applied",
                            attr.key
                        ),
                    });
                }
                None => {}
            }
        }
        errors.push(error);
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seals the way the server does (the server's copy lives in `vigo_server::seal`; this
    /// one keeps the agent's tests free of the server crate).
    fn seal_for(node: &SigningKey, id: &str, attr: &str, plain: &str) -> Vec<u8> {
        let (eph_pub, a) = seal::seal_agreement([3; 32], &node.public()).expect("valid key");
        let unbound: UnboundKey = Salt::new(HKDF_SHA256, &a.salt)
            .extract(&a.shared)
            .expand(&[seal::INFO], &CHACHA20_POLY1305)
            .expect("32-byte key")
            .into();
        let nonce = [5u8; seal::NONCE_LEN];
        let mut buf = plain.as_bytes().to_vec();
        LessSafeKey::new(unbound)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(seal::aad(id, attr)),
                &mut buf,
            )
            .expect("seals");
        seal::join(&eph_pub, &nonce, &buf)
    }

    #[test]
    fn round_trip_and_refusals() {
        let node = SigningKey::from_seed([1; 32]);
        let sealed = seal_for(&node, "file:/etc/x", "content", "s3cr3t");
        let opened = open_value(&node, "file:/etc/x", "content", &sealed).expect("opens");
        assert_eq!(opened.expose(), "s3cr3t");

        let other = SigningKey::from_seed([2; 32]);
        assert!(open_value(&other, "file:/etc/x", "content", &sealed).is_none());
        assert!(open_value(&node, "file:/etc/y", "content", &sealed).is_none());
        assert!(open_value(&node, "file:/etc/x", "mode", &sealed).is_none());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                open_value(&node, "file:/etc/x", "content", &bad).is_none(),
                "byte {i}"
            );
        }
        assert!(open_value(&node, "file:/etc/x", "content", &sealed[..20]).is_none());
    }

    #[test]
    fn a_value_that_cannot_be_opened_fails_only_its_resource() {
        use vigo_shared::bundle::{Attr, Resource, ResourceKind};
        let node = SigningKey::from_seed([1; 32]);
        let res = |name: &str, value: AttrValue| Resource {
            kind: ResourceKind::File,
            name: name.to_string(),
            attrs: vec![Attr {
                key: "content".to_string(),
                value,
            }],
            when: None,
            depends_on: Vec::new(),
            notify: Vec::new(),
            compliance: Vec::new(),
            dangerous: false,
            origin: String::new(),
            module: "m".to_string(),
            skip: None,
        };
        let good = seal_for(&node, "file:/a", "content", "s3cr3t");
        // Sealed for /a but placed on /b: refused.
        let moved = good.clone();
        let bundle = Bundle {
            node: "n".into(),
            policy: "p".into(),
            observe: false,
            interval_secs: 60,
            resources: vec![
                res("/a", AttrValue::Sealed(good)),
                res("/b", AttrValue::Sealed(moved)),
                res("/c", AttrValue::Str("plain".into())),
            ],
        };
        let (opened, errors) = open_bundle(&bundle, Some(&node));
        assert!(
            matches!(opened.resources[0].attr("content"), Some(AttrValue::Sensitive(s)) if s.expose() == "s3cr3t")
        );
        assert!(errors[0].is_none() && errors[2].is_none());
        let why = errors[1].as_deref().expect("refused");
        assert!(
            why.contains("`content`") && why.contains("cannot be opened"),
            "{why}"
        );
        assert!(!why.contains("s3cr3t"));
        assert!(!format!("{:?}", opened.resources[1]).contains("s3cr3t"));

        let (_, errors) = open_bundle(&bundle, None);
        let why = errors[0].as_deref().expect("no key");
        assert!(why.contains("--state"), "{why}");
    }
}
