//! Attachments: the documents an envelope carries, base64 in `AttachmentEncoded` (N6).
//!
//! The declared content type is the sender's word; the bytes say what they are. The reader
//! sniffs the few formats the exchange carries (PDF, ZIP/OOXML, OLE for .doc/.xls) and warns
//! when the declaration disagrees, so a verifier looks for signatures by what the bytes are.

use roxmltree::Node;
use sha2::{Digest, Sha256};

use crate::xml::text::base64_of;
use crate::{EdxmlLimits, error::Result};

/// `AttachmentEncoded/Attachment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// `ContentId` (`cid:1`), unique in the envelope.
    pub content_id: String,
    /// `AttachmentName`.
    pub attachment_name: String,
    /// `Description`.
    pub description: Option<String>,
    /// `ContentType`, as declared.
    pub content_type: String,
    /// The decoded content of `edXML:ContentTransferEncoded`.
    pub data: Vec<u8>,
}

impl Attachment {
    /// SHA-256 of the decoded content.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.data).into()
    }

    /// What the content is, by its first bytes.
    pub fn sniff(&self) -> Sniffed {
        sniff(&self.data)
    }

    /// A warning when the declared type and the content disagree.
    pub fn type_mismatch(&self) -> Option<String> {
        let sniffed = self.sniff();
        (!declared_fits(&self.content_type, sniffed)).then(|| {
            format!(
                "attachment {:?} ({:?}) is declared {:?} but its content is {}",
                self.content_id,
                self.attachment_name,
                self.content_type,
                sniffed.describe()
            )
        })
    }
}

/// Whether a declared content type agrees with what the bytes are. Unknown bytes disagree
/// only with a declaration that promises one of the sniffed formats.
pub fn declared_fits(declared: &str, sniffed: Sniffed) -> bool {
    let declared = declared.trim().to_ascii_lowercase();
    let declared = declared.split(';').next().unwrap_or_default().trim();
    let ooxml = declared.starts_with("application/vnd.openxmlformats-officedocument.");
    match sniffed {
        Sniffed::Pdf => declared == "application/pdf",
        Sniffed::Zip => {
            declared == "application/zip" || declared == "application/x-zip-compressed" || ooxml
        }
        Sniffed::Ole => {
            declared == "application/msword"
                || declared == "application/vnd.ms-excel"
                || declared == "application/vnd.ms-powerpoint"
        }
        Sniffed::Unknown => !KNOWN_TYPES.contains(&declared) && !ooxml,
    }
}

/// Declared types that promise one of the sniffed formats.
const KNOWN_TYPES: &[&str] = &[
    "application/pdf",
    "application/zip",
    "application/x-zip-compressed",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
];

/// What an attachment's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sniffed {
    /// `%PDF-`.
    Pdf,
    /// `PK\x03\x04`: ZIP, and so OOXML (.docx, .xlsx).
    Zip,
    /// `D0 CF 11 E0 A1 B1 1A E1`: OLE compound file (.doc, .xls).
    Ole,
    /// Anything else.
    Unknown,
}

impl Sniffed {
    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Zip => "ZIP (or OOXML)",
            Self::Ole => "OLE (.doc/.xls)",
            Self::Unknown => "of no known format",
        }
    }
}

/// What `data` is, by its first bytes.
pub fn sniff(data: &[u8]) -> Sniffed {
    if data.starts_with(b"%PDF-") {
        Sniffed::Pdf
    } else if data.starts_with(b"PK\x03\x04") {
        Sniffed::Zip
    } else if data.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Sniffed::Ole
    } else {
        Sniffed::Unknown
    }
}

/// Decodes `edXML:ContentTransferEncoded` within the per-attachment limit and what is left of
/// the per-envelope budget (`remaining`, decreased by the decoded size).
pub(crate) fn decode(
    node: Node<'_, '_>,
    limits: &EdxmlLimits,
    remaining: &mut usize,
) -> Result<Vec<u8>> {
    let data = base64_of(node, limits.max_attachment_bytes.min(*remaining))?;
    *remaining -= data.len();
    Ok(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, non_snake_case)] // rule IDs in test names
mod tests {
    use super::*;

    fn attachment(content_type: &str, data: &[u8]) -> Attachment {
        Attachment {
            content_id: "cid:1".into(),
            attachment_name: "a".into(),
            description: None,
            content_type: content_type.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn sniffing_and_type_mismatch_warnings_N6() {
        assert_eq!(sniff(b"%PDF-1.7\n"), Sniffed::Pdf);
        assert_eq!(sniff(b"PK\x03\x04rest"), Sniffed::Zip);
        assert_eq!(
            sniff(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0]),
            Sniffed::Ole
        );
        assert_eq!(sniff(b"%PD"), Sniffed::Unknown);
        assert!(
            attachment("application/pdf", b"%PDF-1.7")
                .type_mismatch()
                .is_none()
        );
        assert!(
            attachment("Application/PDF; x=y", b"%PDF-1.7")
                .type_mismatch()
                .is_none()
        );
        assert!(
            attachment(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                b"PK\x03\x04"
            )
            .type_mismatch()
            .is_none()
        );
        assert!(
            attachment("application/pdf", b"PK\x03\x04")
                .type_mismatch()
                .is_some()
        );
        assert!(
            attachment("application/zip", b"%PDF-1.4")
                .type_mismatch()
                .is_some()
        );
        assert!(
            attachment("application/pdf", b"hello")
                .type_mismatch()
                .is_some()
        );
        assert!(attachment("text/plain", b"hello").type_mismatch().is_none());
        let a = attachment("text/plain", b"abc");
        assert_eq!(a.sha256()[..4], [0xba, 0x78, 0x16, 0xbf], "SHA-256 of abc");
    }
}
