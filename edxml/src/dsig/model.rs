//! The strict reading of one `ds:Signature` (wrapping rules 4–6): the exact shape XML-DSig
//! allows, in order, with only whitespace between elements, and nothing kyso does not
//! process. Everything refused here is refused before any digest is computed.

use kyso_pki::cms::SignerFailure;
use roxmltree::Node;

use super::DSIG_NS;
use super::alg::{self, SignatureMethod};
use crate::EdxmlLimits;
use crate::xml::c14n::{Canonicalization, EXC_C14N, Mode};
use crate::xml::text::{base64_of, text_of};

type Fail = SignerFailure;

/// Largest decoded DigestValue, SignatureValue or certificate accepted.
const MAX_VALUE: usize = 64 << 10;

/// A Reference, read.
#[derive(Debug)]
pub struct Reference {
    /// The `URI` attribute (`""` for the whole document).
    pub uri: String,
    /// The `Type` attribute.
    pub kind: Option<String>,
    /// Whether the enveloped-signature transform comes first.
    pub enveloped: bool,
    /// The canonicalisation transform, if any.
    pub c14n: Option<Canonicalization>,
    /// The DigestMethod URI and what it names.
    pub digest_uri: String,
    /// The DigestValue.
    pub digest_value: Vec<u8>,
}

/// A Signature element, read.
#[derive(Debug)]
pub struct SignatureModel<'a, 'i> {
    /// The SignedInfo element, canonicalised in situ.
    pub signed_info: Node<'a, 'i>,
    /// SignedInfo's CanonicalizationMethod.
    pub c14n: Canonicalization,
    /// The SignatureMethod URI.
    pub method_uri: String,
    /// What it names, if kyso knows it.
    pub method: Option<SignatureMethod>,
    /// The references, in order.
    pub references: Vec<Reference>,
    /// The SignatureValue.
    pub signature_value: Vec<u8>,
    /// Every KeyInfo/X509Data/X509Certificate (DER, untrusted).
    pub certificates: Vec<Vec<u8>>,
    /// The KeyInfo/KeyValue elements, checked against the signer's key.
    pub key_values: Vec<Node<'a, 'i>>,
    /// Oddities that do not fail the signature.
    pub warnings: Vec<String>,
}

fn dsig(node: Node<'_, '_>, name: &str) -> bool {
    node.tag_name().namespace() == Some(DSIG_NS) && node.tag_name().name() == name
}

fn format(msg: impl Into<String>) -> Fail {
    SignerFailure::Format(msg.into())
}

/// The element children of `node`; text between them must be whitespace, and comments or
/// processing instructions are refused (they are outside what is signed).
fn elements<'a, 'i>(node: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, Fail> {
    let mut out = Vec::new();
    for c in node.children() {
        if c.is_element() {
            out.push(c);
        } else if c.is_text() {
            if !c.text().unwrap_or_default().trim().is_empty() {
                return Err(format(format!(
                    "text inside ds:{} where only elements belong",
                    node.tag_name().name()
                )));
            }
        } else {
            return Err(format(format!(
                "a comment or processing instruction inside ds:{}",
                node.tag_name().name()
            )));
        }
    }
    Ok(out)
}

fn algorithm<'a>(node: Node<'a, '_>) -> Result<&'a str, Fail> {
    node.attribute("Algorithm").ok_or_else(|| {
        format(format!(
            "ds:{} without an Algorithm",
            node.tag_name().name()
        ))
    })
}

/// A canonicalisation method or transform element (with exclusive C14N's PrefixList).
fn canonicalization(node: Node<'_, '_>) -> Result<Option<Canonicalization>, Fail> {
    let uri = algorithm(node)?;
    let Some(mut c) = Canonicalization::from_uri(uri) else {
        return Ok(None);
    };
    let children = elements(node)?;
    if let Mode::Exclusive { prefixes } = &mut c.mode {
        for child in children {
            if child.tag_name().namespace() != Some(EXC_C14N)
                || child.tag_name().name() != "InclusiveNamespaces"
            {
                return Err(format(
                    "unexpected element in an exclusive canonicalisation",
                ));
            }
            let list = child.attribute("PrefixList").unwrap_or_default();
            for p in list.split_ascii_whitespace() {
                prefixes.push(if p == "#default" {
                    None
                } else {
                    Some(p.to_owned())
                });
            }
        }
    } else if !children.is_empty() {
        return Err(format(format!("unexpected content in {uri}")));
    }
    Ok(Some(c))
}

/// Reads `signature` strictly (rules 4–6).
pub fn read<'a, 'i>(
    signature: Node<'a, 'i>,
    limits: &EdxmlLimits,
) -> Result<SignatureModel<'a, 'i>, Fail> {
    let parts = elements(signature)?;
    let mut it = parts.into_iter().peekable();
    let signed_info = it
        .next()
        .filter(|n| dsig(*n, "SignedInfo"))
        .ok_or_else(|| format("ds:Signature must start with ds:SignedInfo"))?;
    let value = it
        .next()
        .filter(|n| dsig(*n, "SignatureValue"))
        .ok_or_else(|| format("ds:SignedInfo must be followed by ds:SignatureValue"))?;
    let signature_value = base64_of(value, MAX_VALUE).map_err(|e| format(e.to_string()))?;
    let mut warnings = Vec::new();
    let mut certificates = Vec::new();
    let mut key_values = Vec::new();
    if let Some(key_info) = it.next_if(|n| dsig(*n, "KeyInfo")) {
        read_key_info(
            key_info,
            limits,
            &mut certificates,
            &mut key_values,
            &mut warnings,
        )?;
    }
    for rest in it {
        if !dsig(rest, "Object") {
            return Err(format(format!(
                "unexpected {} in ds:Signature",
                rest.tag_name().name()
            )));
        }
    }

    let si = elements(signed_info)?;
    let mut si = si.into_iter();
    let cm = si
        .next()
        .filter(|n| dsig(*n, "CanonicalizationMethod"))
        .ok_or_else(|| format("ds:SignedInfo must start with ds:CanonicalizationMethod"))?;
    let c14n = canonicalization(cm)?.ok_or_else(|| {
        SignerFailure::CryptoConstraints(format!(
            "canonicalisation {:?} is not supported",
            cm.attribute("Algorithm").unwrap_or_default()
        ))
    })?;
    let sm = si
        .next()
        .filter(|n| dsig(*n, "SignatureMethod"))
        .ok_or_else(|| {
            format("ds:CanonicalizationMethod must be followed by ds:SignatureMethod")
        })?;
    if !elements(sm)?.is_empty() {
        // HMACOutputLength and anything else: an HMAC or a truncated signature.
        return Err(format("ds:SignatureMethod has content (HMACOutputLength?)"));
    }
    let method_uri = algorithm(sm)?.to_owned();
    let method = SignatureMethod::from_uri(&method_uri);
    let mut references = Vec::new();
    for r in si {
        if !dsig(r, "Reference") {
            return Err(format(format!(
                "unexpected {} in ds:SignedInfo",
                r.tag_name().name()
            )));
        }
        if references.len() == limits.max_references {
            return Err(format(format!(
                "more than {} references",
                limits.max_references
            )));
        }
        references.push(read_reference(r, limits)?);
    }
    if references.is_empty() {
        return Err(format("ds:SignedInfo without a ds:Reference"));
    }
    Ok(SignatureModel {
        signed_info,
        c14n,
        method_uri,
        method,
        references,
        signature_value,
        certificates,
        key_values,
        warnings,
    })
}

fn read_reference(r: Node<'_, '_>, limits: &EdxmlLimits) -> Result<Reference, Fail> {
    let uri = r
        .attribute("URI")
        .ok_or_else(|| {
            format("a ds:Reference without URI (the application would choose what it covers)")
        })?
        .to_owned();
    let kind = r.attribute("Type").map(str::to_owned);
    let mut parts = elements(r)?.into_iter().peekable();
    let mut enveloped = false;
    let mut c14n = None;
    if let Some(ts) = parts.next_if(|n| dsig(*n, "Transforms")) {
        let ts = elements(ts)?;
        if ts.is_empty() || ts.len() > limits.max_transforms {
            return Err(format(format!(
                "a ds:Transforms with {} transforms (1 to {} accepted)",
                ts.len(),
                limits.max_transforms
            )));
        }
        for (i, t) in ts.into_iter().enumerate() {
            if !dsig(t, "Transform") {
                return Err(format("unexpected element in ds:Transforms"));
            }
            let a = algorithm(t)?;
            if a == alg::ENVELOPED && i == 0 {
                if !elements(t)?.is_empty() {
                    return Err(format("the enveloped-signature transform has content"));
                }
                enveloped = true;
            } else if let (Some(c), None) = (canonicalization(t)?, &c14n) {
                c14n = Some(c);
            } else {
                // XPath, XPath Filter 2, XSLT, base64, decryption, near-miss URIs, a second
                // canonicalisation: refused before anything is hashed (rule 5).
                return Err(format(format!("transform {a:?} is not accepted here")));
            }
        }
    }
    let dm = parts
        .next()
        .filter(|n| dsig(*n, "DigestMethod"))
        .ok_or_else(|| format("ds:Reference without ds:DigestMethod"))?;
    if !elements(dm)?.is_empty() {
        return Err(format("ds:DigestMethod has content"));
    }
    let digest_uri = algorithm(dm)?.to_owned();
    let dv = parts
        .next()
        .filter(|n| dsig(*n, "DigestValue"))
        .ok_or_else(|| format("ds:DigestMethod must be followed by ds:DigestValue"))?;
    let digest_value = base64_of(dv, MAX_VALUE).map_err(|e| format(e.to_string()))?;
    if parts.next().is_some() {
        return Err(format("unexpected element after ds:DigestValue"));
    }
    Ok(Reference {
        uri,
        kind,
        enveloped,
        c14n,
        digest_uri,
        digest_value,
    })
}

fn read_key_info<'a, 'i>(
    key_info: Node<'a, 'i>,
    limits: &EdxmlLimits,
    certificates: &mut Vec<Vec<u8>>,
    key_values: &mut Vec<Node<'a, 'i>>,
    warnings: &mut Vec<String>,
) -> Result<(), Fail> {
    for item in elements(key_info)? {
        match (item.tag_name().namespace(), item.tag_name().name()) {
            (Some(DSIG_NS), "X509Data") => {
                for x in elements(item)? {
                    if dsig(x, "X509Certificate") {
                        if certificates.len() == limits.max_certificates {
                            return Err(format(format!(
                                "more than {} certificates in ds:KeyInfo",
                                limits.max_certificates
                            )));
                        }
                        certificates
                            .push(base64_of(x, MAX_VALUE).map_err(|e| format(e.to_string()))?);
                    } else if dsig(x, "X509SubjectName") {
                        // Never used for trust (rule 8); read so a malformed one is seen.
                        text_of(x).map_err(|e| format(e.to_string()))?;
                    }
                }
            }
            (Some(DSIG_NS), "RetrievalMethod") => {
                return Err(format("ds:RetrievalMethod: keys are not fetched"));
            }
            (Some(DSIG_NS), "KeyValue") => key_values.push(item),
            (_, name) => warnings.push(format!("ds:KeyInfo/{name} ignored")),
        }
    }
    Ok(())
}
