//! XAdES-BES qualifying properties (wrapping rules 6 and 9): the only ID references kyso
//! follows, and what they carry (signing time, signing certificate).
//!
//! An ID reference may point only at this Signature's own `xades:SignedProperties` (inside
//! `ds:Object/xades:QualifyingProperties` whose `Target` names this Signature) or at its
//! own `ds:KeyInfo`, and the ID must occur once in the whole document: nothing outside the
//! signature can be signed by ID, so the element the reader uses is always the one under
//! `URI=""`.

use kyso_pki::cert::Cert;
use kyso_pki::cms::{EssStatus, SignerCheck, SignerFailure};
use kyso_pki::crypto::DigestAlgorithm;
use roxmltree::{Document, Node};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{DSIG_NS, alg};
use crate::xml::text::{base64_of, text_of};

/// The XAdES 1.3.2 namespace.
pub const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
/// The Reference `Type` of SignedProperties.
pub const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";

fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(*c, ns, name))
}

fn format(msg: impl Into<String>) -> SignerFailure {
    SignerFailure::Format(msg.into())
}

/// What an ID reference may point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// This Signature's SignedProperties.
    SignedProperties,
    /// This Signature's KeyInfo.
    KeyInfo,
}

/// Resolves `uri` (`#X`) under rule 6.
pub fn resolve<'a, 'i>(
    doc: &'a Document<'i>,
    signature: Node<'a, 'i>,
    uri: &str,
    kind: Option<&str>,
) -> Result<(Node<'a, 'i>, Target), SignerFailure> {
    let id = uri
        .strip_prefix('#')
        .filter(|id| !id.is_empty() && !id.starts_with("xpointer("))
        .ok_or_else(|| format(format!("reference URI={uri:?} is not a plain ID")))?;
    let mut found = doc.descendants().filter(|n| {
        n.is_element()
            && n.attributes().any(|a| {
                matches!(a.name(), "Id" | "ID" | "id")
                    && (a.namespace().is_none() || a.namespace() == Some(crate::xml::XML_NS))
                    && a.value() == id
            })
    });
    let (Some(node), None) = (found.next(), found.next()) else {
        return Err(format(format!(
            "reference URI={uri:?}: the ID must name exactly one element"
        )));
    };
    if is(node, XADES_NS, "SignedProperties") && kind == Some(SIGNED_PROPERTIES_TYPE) {
        let qp = node
            .parent()
            .filter(|p| is(*p, XADES_NS, "QualifyingProperties"));
        let object = qp
            .and_then(|q| q.parent())
            .filter(|o| is(*o, DSIG_NS, "Object"));
        let target_ok = match (qp, signature.attribute("Id")) {
            (Some(q), Some(sig_id)) => q.attribute("Target") == Some(&format!("#{sig_id}")),
            _ => false,
        };
        if object.and_then(|o| o.parent()) == Some(signature) && target_ok {
            return Ok((node, Target::SignedProperties));
        }
    } else if is(node, DSIG_NS, "KeyInfo") && node.parent() == Some(signature) && kind.is_none() {
        return Ok((node, Target::KeyInfo));
    }
    Err(format(format!(
        "reference URI={uri:?}: an ID reference may name only this signature's \
         SignedProperties or KeyInfo"
    )))
}

/// Reads SigningTime and SigningCertificate(V2) of verified `signed_properties` for
/// `signer` into `check` (rule 9).
pub fn read_properties(
    signed_properties: Node<'_, '_>,
    signer: &Cert,
    legacy_sha1: bool,
    check: &mut SignerCheck,
) -> Result<(), SignerFailure> {
    let Some(ssp) = child(signed_properties, XADES_NS, "SignedSignatureProperties") else {
        return Ok(());
    };
    if let Some(t) = child(ssp, XADES_NS, "SigningTime") {
        let text = text_of(t).map_err(|e| format(e.to_string()))?;
        let at = OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map_err(|e| format(format!("xades:SigningTime {text:?}: {e}")))?;
        check.signing_time = Some(at);
    }
    check.signed_attributes = true;
    let (sc, v2) = match (
        child(ssp, XADES_NS, "SigningCertificateV2"),
        child(ssp, XADES_NS, "SigningCertificate"),
    ) {
        (Some(sc), _) => (sc, true),
        (None, Some(sc)) => (sc, false),
        (None, None) => return Ok(()),
    };
    let cert = child(sc, XADES_NS, "Cert")
        .ok_or_else(|| format("xades:SigningCertificate without a Cert"))?;
    let cd = child(cert, XADES_NS, "CertDigest")
        .ok_or_else(|| format("xades:Cert without a CertDigest"))?;
    let (Some(dm), Some(dv)) = (
        child(cd, DSIG_NS, "DigestMethod"),
        child(cd, DSIG_NS, "DigestValue"),
    ) else {
        return Err(format("xades:CertDigest is incomplete"));
    };
    let uri = dm.attribute("Algorithm").unwrap_or_default();
    let d = alg::digest(uri).ok_or_else(|| {
        SignerFailure::CryptoConstraints(format!("certificate digest {uri:?} is not supported"))
    })?;
    if d == DigestAlgorithm::Sha1 && v2 && !legacy_sha1 {
        return Err(SignerFailure::CryptoConstraints(
            "SHA-1 is accepted only under the legacy policy".into(),
        ));
    }
    let value = base64_of(dv, 128).map_err(|e| format(e.to_string()))?;
    if value != d.digest(signer.der()) {
        return Err(SignerFailure::SigConstraints(
            "the XAdES signing certificate is not the certificate that verified the signature"
                .into(),
        ));
    }
    if v2 {
        check.ess = EssStatus::V2Matched;
    } else {
        check.ess = EssStatus::V1Matched;
        check
            .warnings
            .push("XAdES SigningCertificate (v1, SHA-1 binding) instead of V2".into());
    }
    Ok(())
}
