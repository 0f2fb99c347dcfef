//! Bounds on what one edXML document may cost to read.

/// Limits checked before and during the parse, so memory and CPU stay bounded whatever the
/// sender wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdxmlLimits {
    /// Bytes of the whole document.
    pub max_bytes: usize,
    /// Element nesting depth.
    pub max_depth: usize,
    /// Nodes of the tree (elements, text, attributes, namespaces).
    pub max_nodes: u32,
    /// Attributes on one element.
    pub max_attributes: usize,
    /// Namespaces in scope on one element.
    pub max_namespaces: usize,
    /// Attachments in one envelope.
    pub max_attachments: usize,
    /// Decoded bytes of one attachment.
    pub max_attachment_bytes: usize,
    /// Decoded bytes of all attachments of one envelope.
    pub max_attachments_total_bytes: usize,
    /// Certificates in the signature's KeyInfo.
    pub max_certificates: usize,
    /// References in one SignedInfo.
    pub max_references: usize,
    /// Transforms in one Reference.
    pub max_transforms: usize,
}

impl Default for EdxmlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_depth: 32,
            max_nodes: 200_000,
            max_attributes: 32,
            max_namespaces: 32,
            max_attachments: 100,
            max_attachment_bytes: 48 << 20,
            max_attachments_total_bytes: 48 << 20,
            max_certificates: 10,
            max_references: 3,
            max_transforms: 2,
        }
    }
}
