//! `ds:KeyValue` (wrapping rule 8): KeyInfo is not signed, so a KeyValue is only a claim
//! about the signer's key. When present it must be the key that verified the signature;
//! a different key is refused rather than ignored, because another reader could trust it.

use der::Decode;
use der::asn1::UintRef;
use kyso_pki::cms::SignerFailure;
use kyso_pki::crypto::ec_curve_of;
use roxmltree::Node;
use spki::SubjectPublicKeyInfoOwned;

use super::DSIG_NS;
use crate::xml::text::base64_of;

/// The XML-DSig 1.1 namespace (`ECKeyValue`).
pub const DSIG11_NS: &str = "http://www.w3.org/2009/xmldsig11#";

/// Largest decoded key component accepted.
const MAX_COMPONENT: usize = 2048;

/// RSAPublicKey (RFC 8017 A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name)
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[first..]
}

/// Checks a `ds:KeyValue` against the signer's key.
pub fn check(
    key_value: Node<'_, '_>,
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<(), SignerFailure> {
    let mismatch = || {
        SignerFailure::Format(
            "ds:KeyValue names another key than the one that verified the signature".into(),
        )
    };
    let bad = |e: crate::EdxmlError| SignerFailure::Format(format!("ds:KeyValue: {e}"));
    let key = spki.subject_public_key.as_bytes().unwrap_or_default();
    if let Some(rsa) = child(key_value, DSIG_NS, "RSAKeyValue") {
        let (Some(m), Some(e)) = (
            child(rsa, DSIG_NS, "Modulus"),
            child(rsa, DSIG_NS, "Exponent"),
        ) else {
            return Err(SignerFailure::Format("ds:RSAKeyValue is incomplete".into()));
        };
        let m = base64_of(m, MAX_COMPONENT).map_err(bad)?;
        let e = base64_of(e, MAX_COMPONENT).map_err(bad)?;
        let k = RsaPublicKey::from_der(key).map_err(|_| mismatch())?;
        if strip_zeros(&m) != strip_zeros(k.modulus.as_bytes())
            || strip_zeros(&e) != strip_zeros(k.public_exponent.as_bytes())
        {
            return Err(mismatch());
        }
        return Ok(());
    }
    if let Some(ec) = child(key_value, DSIG11_NS, "ECKeyValue") {
        let Some(point) = child(ec, DSIG11_NS, "PublicKey") else {
            return Err(SignerFailure::Format(
                "dsig11:ECKeyValue without PublicKey".into(),
            ));
        };
        let point = base64_of(point, MAX_COMPONENT).map_err(bad)?;
        let curve = child(ec, DSIG11_NS, "NamedCurve").and_then(|c| c.attribute("URI"));
        let expected = ec_curve_of(spki).map(|c| match c {
            kyso_pki::crypto::Curve::P256 => "urn:oid:1.2.840.10045.3.1.7",
            kyso_pki::crypto::Curve::P384 => "urn:oid:1.3.132.0.34",
        });
        if point != key || curve.is_some_and(|c| Some(c) != expected) {
            return Err(mismatch());
        }
        return Ok(());
    }
    Err(SignerFailure::Format(
        "ds:KeyValue of a kind kyso does not read (RSA and EC only)".into(),
    ))
}
