//! Signing an envelope in two phases, so the private key stays in the HSM.
//!
//! [`prepare`] splices a complete `ds:Signature` (empty SignatureValue) into the unsigned
//! text at the offset the caller names, with no whitespace around it: the document minus
//! the Signature is then byte for byte the unsigned document, so the Reference digest is
//! that document's canonical digest. SignedInfo is canonicalised in the spliced document,
//! in situ, and its digest is what the HSM signs. [`Prepared::finish`] puts the signature
//! value in place (outside SignedInfo and inside the enveloped subtree, so no digest
//! changes) and verifies the result with [`super::verify`] before returning it. The
//! document is never re-serialised: every step is a splice.
//!
//! kyso signs with the `ds:` prefix, inclusive C14N 1.0 for SignedInfo and the Reference,
//! one Reference `URI=""` [enveloped-signature, C14N 1.0], and the chain in
//! `KeyInfo/X509Data`, the form both xmlsec1 and signxml verify.

use base64ct::{Base64, Encoding};
use kyso_pki::cert::Cert;
use kyso_pki::crypto::{DigestAlgorithm, ec_curve_of, ecdsa_der_to_raw};

use super::alg::{self, SignatureMethod};
use super::verify::{DsigPolicy, verify};
use super::{DSIG_NS, signatures};
use crate::xml::c14n::{C14N10, Canonicalization, canonical_bytes, canonicalize};
use crate::xml::parse::Source;
use crate::{EdxmlError, EdxmlLimits, error::Result};

/// The reference digest kyso signs with.
const DIGEST: DigestAlgorithm = DigestAlgorithm::Sha256;

/// A document with its Signature spliced in, waiting for the signature value.
#[derive(Clone, Debug)]
pub struct Prepared {
    text: String,
    /// Byte offset of the (empty) SignatureValue's content.
    value_at: usize,
    method: SignatureMethod,
    signed_info_digest: Vec<u8>,
    signer: Cert,
    limits: EdxmlLimits,
}

/// Splices the Signature for `chain` (signer first) into `unsigned` at byte offset `at`
/// (e.g. right before `</edXML:edXMLHeader>`), to be signed with `method`.
///
/// Refused: text containing CR (kyso writes LF only, and a CR would be normalised by the
/// parse, so the signed bytes would not be the bytes sent), a document already signed, an
/// offset that is not between two nodes, an empty chain, a method and key that disagree.
pub fn prepare(
    unsigned: &str,
    at: usize,
    chain: &[Cert],
    method: SignatureMethod,
) -> Result<Prepared> {
    let limits = EdxmlLimits::default();
    if unsigned.contains('\r') {
        return Err(EdxmlError::Format(
            "the document to sign contains CR: kyso signs LF-only text".into(),
        ));
    }
    let signer = chain
        .first()
        .ok_or_else(|| EdxmlError::Format("no signer certificate".into()))?
        .clone();
    let spki = &signer.x509().tbs_certificate.subject_public_key_info;
    let is_ec = ec_curve_of(spki).is_some();
    if is_ec != matches!(method, SignatureMethod::Ecdsa(_)) {
        return Err(EdxmlError::Unsupported(format!(
            "signature method {} with this key",
            method.uri()
        )));
    }
    if method.digest() == DigestAlgorithm::Sha1 {
        return Err(EdxmlError::Unsupported(
            "kyso does not sign with SHA-1".into(),
        ));
    }
    if !unsigned.is_char_boundary(at) || at > unsigned.len() {
        return Err(EdxmlError::Format(format!(
            "offset {at} is not inside the document"
        )));
    }

    // The reference digest: the canonical unsigned document.
    let source = Source::new(unsigned.as_bytes(), &limits)?;
    let doc = source.parse(&limits)?;
    if !signatures(&doc).is_empty() {
        return Err(EdxmlError::Ambiguous(
            "the document is already signed".into(),
        ));
    }
    let c14n =
        Canonicalization::from_uri(C14N10).ok_or_else(|| EdxmlError::Format("C14N 1.0".into()))?;
    let mut digester = DIGEST.digester();
    canonicalize(doc.root(), None, &c14n, &mut digester);
    let digest = digester.finish();

    let mut skeleton = format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{C14N10}\"></ds:CanonicalizationMethod>\
         <ds:SignatureMethod Algorithm=\"{}\"></ds:SignatureMethod>\
         <ds:Reference URI=\"\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{}\"></ds:Transform>\
         <ds:Transform Algorithm=\"{C14N10}\"></ds:Transform></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{}\"></ds:DigestMethod>\
         <ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue>",
        method.uri(),
        alg::ENVELOPED,
        alg::digest_uri(DIGEST),
        Base64::encode_string(&digest),
    );
    let value_at = at + skeleton.len();
    skeleton.push_str("</ds:SignatureValue><ds:KeyInfo><ds:X509Data>");
    for cert in chain {
        skeleton.push_str("<ds:X509Certificate>");
        skeleton.push_str(&Base64::encode_string(cert.der()));
        skeleton.push_str("</ds:X509Certificate>");
    }
    skeleton.push_str("</ds:X509Data></ds:KeyInfo></ds:Signature>");
    let mut text = String::with_capacity(unsigned.len() + skeleton.len());
    text.push_str(&unsigned[..at]);
    text.push_str(&skeleton);
    text.push_str(&unsigned[at..]);

    // The spliced document must parse, hold the Signature as one element, and minus it be
    // the unsigned document (an offset inside a tag or an attribute fails one of these).
    let source = Source::new(text.as_bytes(), &limits)?;
    let doc = source.parse(&limits)?;
    let sigs = signatures(&doc);
    let [sig] = sigs.as_slice() else {
        return Err(EdxmlError::Format(format!(
            "offset {at} is not between two nodes"
        )));
    };
    let mut check = DIGEST.digester();
    canonicalize(doc.root(), Some(sig.id()), &c14n, &mut check);
    if sig.range().start != at || check.finish() != digest {
        return Err(EdxmlError::Format(format!(
            "offset {at} is not between two nodes"
        )));
    }
    let signed_info = sig
        .first_element_child()
        .ok_or_else(|| EdxmlError::Format("ds:SignedInfo".into()))?;
    let signed_info_digest = method
        .digest()
        .digest(&canonical_bytes(signed_info, None, &c14n));
    Ok(Prepared {
        text,
        value_at,
        method,
        signed_info_digest,
        signer,
        limits,
    })
}

impl Prepared {
    /// The digest of the canonical SignedInfo: what the HSM signs (RSA PKCS#1 v1.5 or
    /// RSA-PSS with the method's hash, or ECDSA).
    pub fn signed_info_digest(&self) -> &[u8] {
        &self.signed_info_digest
    }

    /// The signature method being used.
    pub fn method(&self) -> SignatureMethod {
        self.method
    }

    /// Puts `signature` (as the HSM returns it: DER for ECDSA) in place and verifies the
    /// signed document; returns its text.
    pub fn finish(self, signature: &[u8]) -> Result<String> {
        let value = match self.method {
            SignatureMethod::Ecdsa(_) => {
                let spki = &self.signer.x509().tbs_certificate.subject_public_key_info;
                let curve = ec_curve_of(spki)
                    .ok_or_else(|| EdxmlError::Unsupported("the signer key's curve".into()))?;
                ecdsa_der_to_raw(signature, curve).ok_or_else(|| {
                    EdxmlError::Format("the ECDSA signature is not a DER Ecdsa-Sig-Value".into())
                })?
            }
            _ => signature.to_vec(),
        };
        let mut text = self.text;
        text.insert_str(self.value_at, &Base64::encode_string(&value));

        let source = Source::new(text.as_bytes(), &self.limits)?;
        let doc = source.parse(&self.limits)?;
        let sigs = signatures(&doc);
        let [sig] = sigs.as_slice() else {
            return Err(EdxmlError::Format(
                "the signed document lost its signature".into(),
            ));
        };
        let check = verify(&doc, *sig, &DsigPolicy::default(), &self.limits)?.check;
        if let Some(f) = check.failure {
            return Err(EdxmlError::Format(format!(
                "the signed document does not verify: {f}"
            )));
        }
        if check.signer_cert.as_ref().map(Cert::der) != Some(self.signer.der()) {
            return Err(EdxmlError::Format(
                "the signature was not made with the signer certificate's key".into(),
            ));
        }
        drop(doc);
        Ok(source.as_str().to_owned())
    }
}
