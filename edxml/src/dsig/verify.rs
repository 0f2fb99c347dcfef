//! XML-DSig core validation of an enveloped signature (wrapping rules 2, 4–8).
//!
//! Reference validation first (the digest of the document minus this signature), then
//! signature validation over SignedInfo canonicalised in situ. The signer is the
//! KeyInfo certificate whose key verifies the SignatureValue: KeyInfo is not signed, so its
//! certificates are only a pool for path building, judged later like a CMS signer's.

use kyso_pki::cert::Cert;
use kyso_pki::cms::{EssStatus, SignerCheck, SignerFailure};
use kyso_pki::crypto::{
    AlgorithmPolicy, DigestAlgorithm, SigError, ec_curve_of, ecdsa_raw_to_der, verify_signature,
};
use roxmltree::{Document, Node};

use super::alg::{self, SignatureMethod};
use super::model::{self, SignatureModel};
use super::xades;
use super::{DSIG_NS, signatures};
use crate::xml::c14n::{Canonicalization, Mode, canonical_bytes, canonicalize};
use crate::xml::parse::refuse_comments_and_pis_in_root;
use crate::{EdxmlError, EdxmlLimits, error::Result};

/// At most this many KeyInfo certificates are tried as the signer (rule 8).
const MAX_TRIED: usize = 10;

/// What the caller allows beyond the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsigPolicy {
    /// Accept SHA-1 digests and signatures (old builders); always reported as a warning.
    pub legacy_sha1: bool,
}

/// The cryptographic verdict on one enveloped signature.
#[derive(Clone, Debug)]
pub struct DsigCheck {
    /// The verdict, in the shape of a CMS signer's.
    pub check: SignerCheck,
    /// The KeyInfo certificates: untrusted, for path building.
    pub pool: Vec<Cert>,
}

/// Verifies the enveloped `signature` of `doc` (see the module documentation).
///
/// `Err` only when `signature` is not a `ds:Signature` of `doc`; anything else that fails
/// is a [`SignerCheck`] with its failure.
pub fn verify(
    doc: &Document<'_>,
    signature: Node<'_, '_>,
    policy: &DsigPolicy,
    limits: &EdxmlLimits,
) -> Result<DsigCheck> {
    if signature.tag_name().namespace() != Some(DSIG_NS)
        || signature.tag_name().name() != "Signature"
        || !std::ptr::eq(signature.document(), doc)
    {
        return Err(EdxmlError::Format(
            "not a ds:Signature element of this document".into(),
        ));
    }
    let mut out = DsigCheck {
        check: SignerCheck {
            index: 0,
            signer_cert: None,
            digest_algorithm: None,
            signature_algorithm: None,
            signing_time: None,
            commitment_type: None,
            signed_attributes: false,
            ess: EssStatus::Absent,
            detached: false,
            warnings: Vec::new(),
            failure: None,
        },
        pool: Vec::new(),
    };
    if let Err(f) = run(doc, signature, policy, limits, &mut out) {
        out.check.failure = Some(f);
    }
    Ok(out)
}

fn run(
    doc: &Document<'_>,
    signature: Node<'_, '_>,
    policy: &DsigPolicy,
    limits: &EdxmlLimits,
    out: &mut DsigCheck,
) -> std::result::Result<(), SignerFailure> {
    // Rule 2: one signature in the whole document, so "which one did the reader trust" has
    // one answer.
    let count = signatures(doc).len();
    if count != 1 {
        return Err(SignerFailure::Format(format!(
            "{count} ds:Signature elements: exactly one is accepted"
        )));
    }
    // Rule 11: comments are outside `URI=""`, so they could change what a reader sees.
    refuse_comments_and_pis_in_root(doc).map_err(|e| SignerFailure::Format(e.to_string()))?;
    let m = model::read(signature, limits)?;
    out.check.warnings.extend(m.warnings.iter().cloned());
    let (data, by_id) = check_references(&m)?;
    // Resolve every ID reference before hashing anything (rule 6).
    let mut targets = Vec::new();
    for r in by_id {
        let (node, target) = xades::resolve(doc, signature, &r.uri, r.kind.as_deref())?;
        targets.push((r, node, target));
    }
    let method = m.method.ok_or_else(|| {
        SignerFailure::CryptoConstraints(format!(
            "signature method {:?} is not supported",
            m.method_uri
        ))
    })?;
    out.check.signature_algorithm = Some(method.uri());
    for der in &m.certificates {
        let cert = Cert::from_der(der)
            .map_err(|e| SignerFailure::Format(format!("a ds:X509Certificate: {e}")))?;
        out.pool.push(cert);
    }

    // Reference validation: the document minus this Signature element (enveloped
    // transform), comments excluded whatever the transform says (`URI=""`).
    let d = digest_of(&data.digest_uri, policy, &mut out.check.warnings)?;
    out.check.digest_algorithm = Some(d);
    let c14n = Canonicalization {
        with_comments: false,
        ..data.c14n.clone().unwrap_or(Canonicalization {
            mode: Mode::Inclusive10,
            with_comments: false,
        })
    };
    let mut digester = d.digester();
    canonicalize(doc.root(), Some(signature.id()), &c14n, &mut digester);
    if digester.finish() != data.digest_value {
        return Err(SignerFailure::HashFailure(
            "the document does not match the signed digest (changed after signing)".into(),
        ));
    }

    let mut signed_properties = None;
    for (r, node, target) in &targets {
        let d = digest_of(&r.digest_uri, policy, &mut out.check.warnings)?;
        let c14n = r.c14n.clone().unwrap_or(Canonicalization {
            mode: Mode::Inclusive10,
            with_comments: false,
        });
        let mut digester = d.digester();
        canonicalize(*node, None, &c14n, &mut digester);
        if digester.finish() != r.digest_value {
            return Err(SignerFailure::HashFailure(format!(
                "the element {} names does not match its signed digest",
                r.uri
            )));
        }
        if *target == xades::Target::SignedProperties {
            signed_properties = Some(*node);
        }
    }

    // Signature validation over SignedInfo as canonicalised in situ.
    if method.digest() == DigestAlgorithm::Sha1 {
        digest_of(
            alg::digest_uri(DigestAlgorithm::Sha1),
            policy,
            &mut out.check.warnings,
        )?;
    }
    let signed_info = canonical_bytes(m.signed_info, None, &m.c14n);
    verify_value(&m, method, &signed_info, policy, out)?;
    if let (Some(sp), Some(signer)) = (signed_properties, out.check.signer_cert.clone()) {
        xades::read_properties(sp, &signer, policy.legacy_sha1, &mut out.check)?;
    }
    Ok(())
}

/// Rule 5 and 6: exactly one data Reference `URI=""` with [enveloped(, one C14N)]; the
/// others are ID references (resolved under rule 6 by [`xades::resolve`]); external URIs
/// are refused.
#[allow(clippy::type_complexity)]
fn check_references<'m>(
    m: &'m SignatureModel<'_, '_>,
) -> std::result::Result<(&'m model::Reference, Vec<&'m model::Reference>), SignerFailure> {
    let mut data = None;
    let mut by_id = Vec::new();
    for r in &m.references {
        if r.uri.is_empty() {
            if data.is_some() {
                return Err(SignerFailure::Format("two references URI=\"\"".into()));
            }
            if !r.enveloped {
                return Err(SignerFailure::Format(
                    "the reference URI=\"\" must start with the enveloped-signature transform"
                        .into(),
                ));
            }
            data = Some(r);
        } else if r.uri.starts_with('#') {
            if r.enveloped {
                return Err(SignerFailure::Format(format!(
                    "reference URI={:?}: the enveloped-signature transform on an ID reference",
                    r.uri
                )));
            }
            by_id.push(r);
        } else {
            return Err(SignerFailure::Format(format!(
                "reference URI={:?}: external content is never fetched",
                r.uri
            )));
        }
    }
    let data = data.ok_or_else(|| SignerFailure::Format("no reference URI=\"\"".into()))?;
    Ok((data, by_id))
}

fn digest_of(
    uri: &str,
    policy: &DsigPolicy,
    warnings: &mut Vec<String>,
) -> std::result::Result<DigestAlgorithm, SignerFailure> {
    let d = alg::digest(uri).ok_or_else(|| {
        SignerFailure::CryptoConstraints(format!("digest {uri:?} is not supported"))
    })?;
    if d == DigestAlgorithm::Sha1 {
        if !policy.legacy_sha1 {
            return Err(SignerFailure::CryptoConstraints(
                "SHA-1 is accepted only under the legacy policy".into(),
            ));
        }
        let w = "SHA-1 accepted under the legacy policy".to_owned();
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    Ok(d)
}

/// Finds the pool certificate whose key verifies the SignatureValue (rule 8).
fn verify_value(
    m: &SignatureModel<'_, '_>,
    method: SignatureMethod,
    signed_info: &[u8],
    policy: &DsigPolicy,
    out: &mut DsigCheck,
) -> std::result::Result<(), SignerFailure> {
    if out.pool.is_empty() {
        return Err(SignerFailure::NoSigningCertificate(
            "ds:KeyInfo carries no X509Certificate".into(),
        ));
    }
    let alg_id = method
        .algorithm_identifier()
        .map_err(|e| SignerFailure::CryptoConstraints(e.to_string()))?;
    let apolicy = AlgorithmPolicy {
        allow_sha1: policy.legacy_sha1,
        ..AlgorithmPolicy::default()
    };
    let mut constraint = None;
    for (i, cert) in out.pool.iter().take(MAX_TRIED).enumerate() {
        let spki = &cert.x509().tbs_certificate.subject_public_key_info;
        let value = match method {
            SignatureMethod::Ecdsa(_) => {
                let Some(curve) = ec_curve_of(spki) else {
                    continue;
                };
                if m.signature_value.len() != 2 * curve.field_bytes() {
                    constraint.get_or_insert(SignerFailure::SigCrypto(format!(
                        "an ECDSA {} SignatureValue has {} bytes, not {}",
                        curve.name(),
                        2 * curve.field_bytes(),
                        m.signature_value.len()
                    )));
                    continue;
                }
                match ecdsa_raw_to_der(&m.signature_value) {
                    Some(v) => v,
                    None => continue,
                }
            }
            _ => m.signature_value.clone(),
        };
        match verify_signature(spki, &alg_id, None, signed_info, &value, apolicy) {
            Ok(used) => {
                out.check.signature_algorithm = Some(used.name());
                out.check.signer_cert = Some(cert.clone());
                for kv in &m.key_values {
                    super::keyvalue::check(*kv, spki)?;
                }
                if i != 0 {
                    out.check.warnings.push(format!(
                        "the signer is certificate {} of ds:KeyInfo, not the first",
                        i + 1
                    ));
                }
                return Ok(());
            }
            Err(SigError::Invalid) => {}
            Err(e @ SigError::Weak(_)) => {
                constraint.get_or_insert(SignerFailure::CryptoConstraints(e.to_string()));
            }
            Err(SigError::Unsupported(_)) => {}
        }
    }
    out.check.signer_cert = out.pool.first().cloned();
    Err(constraint.unwrap_or_else(|| {
        SignerFailure::SigCrypto(
            "the SignatureValue does not verify with any ds:KeyInfo certificate".into(),
        )
    }))
}
