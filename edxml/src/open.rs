//! Opening an edXML document: one parse, the reader and the signature check over the same
//! tree (wrapping rule 1: the header a clerk is shown is the header that was signed).

use crate::dsig::{self, DsigCheck, DsigPolicy};
use crate::envelope::{Message, read};
use crate::xml::parse::Source;
use crate::{EdxmlError, EdxmlLimits, error::Result};

/// What the document's signature is.
#[derive(Clone, Debug)]
pub enum SignatureState {
    /// No signature (a status message from a trusted channel may be unsigned, N6).
    Unsigned,
    /// A `Signature` that cannot be checked as XML-DSig (written in the QCVN namespace by
    /// a faulty builder): the reason.
    NotVerifiable(String),
    /// The XML-DSig core validation, for kyso-validation to judge path and revocation.
    Checked(Box<DsigCheck>),
}

/// An edXML document read and its signature checked, all owned.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The envelope or the status message.
    pub message: Message,
    /// The signature's core validation.
    pub signature: SignatureState,
    /// What the reader noticed and did not refuse.
    pub warnings: Vec<String>,
}

/// Reads `bytes` as an edXML envelope or status message and checks its signature (N6).
/// `Err` when the document cannot be read at all; a signature that fails is in
/// [`Opened::signature`].
pub fn open(bytes: &[u8], limits: &EdxmlLimits, policy: &DsigPolicy) -> Result<Opened> {
    let source = Source::new(bytes, limits)?;
    let doc = source.parse(limits)?;
    let read = read(&doc, limits)?;
    let signature = match (read.signature, read.qcvn_signature) {
        (_, Some(_)) => SignatureState::NotVerifiable(
            "the Signature element is in the QCVN namespace, not XML-DSig's (a faulty builder): it cannot be verified".into(),
        ),
        (Some(id), None) => {
            let node = doc.get_node(id).ok_or_else(|| {
                EdxmlError::Format("the signature element is not in the document".into())
            })?;
            SignatureState::Checked(Box::new(dsig::verify(&doc, node, policy, limits)?))
        }
        (None, None) => SignatureState::Unsigned,
    };
    Ok(Opened {
        message: read.message,
        signature,
        warnings: read.warnings,
    })
}

/// Whether `bytes` look like an edXML document (an XML document whose root is named
/// `edXML`), judged from the start only, so a caller can route a file before reading it.
pub fn looks_like_edxml(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let Ok(text) = std::str::from_utf8(head)
        .or_else(|e| std::str::from_utf8(head.get(..e.valid_up_to()).unwrap_or_default()))
    else {
        return false;
    };
    let mut rest = text.trim_start();
    // Skip the declaration, comments and processing instructions before the root.
    loop {
        if let Some(r) = rest.strip_prefix("<?") {
            match r.find("?>") {
                Some(end) => rest = r[end + 2..].trim_start(),
                None => return false,
            }
        } else if let Some(r) = rest.strip_prefix("<!--") {
            match r.find("-->") {
                Some(end) => rest = r[end + 3..].trim_start(),
                None => return false,
            }
        } else {
            break;
        }
    }
    let Some(r) = rest.strip_prefix('<') else {
        return false;
    };
    let name_end = r
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(r.len());
    let name = &r[..name_end];
    name == "edXML"
        || name
            .rsplit_once(':')
            .is_some_and(|(_, local)| local == "edXML")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn edxml_is_recognised_from_its_root() {
        assert!(looks_like_edxml(
            b"<?xml version=\"1.0\"?>\n<edXML xmlns=\"x\"/>"
        ));
        assert!(looks_like_edxml(
            b"\xEF\xBB\xBF<!-- c --><q:edXML xmlns:q=\"x\">"
        ));
        assert!(!looks_like_edxml(b"<html/>"));
        assert!(!looks_like_edxml(b"%PDF-1.7"));
        assert!(!looks_like_edxml(b"\x30\x82\x01"));
    }
}
