//! The enveloped XML signature (XML-DSig), under the edXML wrapping rules (N6): exactly one
//! `ds:Signature`, one Reference `URI=""` over the whole document minus the signature, a
//! transform allow-list, SHA-256/384/512 (SHA-1 under the legacy policy only), RSA
//! PKCS#1 v1.5, RSA-PSS and ECDSA. Core validation gives a [`kyso_pki::cms::SignerCheck`]
//! so path building, validity and revocation are the CMS ones.

pub mod alg;
pub mod keyvalue;
pub mod model;
pub mod sign;
pub mod verify;
pub mod xades;

use roxmltree::{Document, Node};

pub use sign::{Prepared, prepare};
pub use verify::{DsigCheck, DsigPolicy, verify};

/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Every `{http://www.w3.org/2000/09/xmldsig#}Signature` element of the document, in
/// document order.
pub fn signatures<'a, 'i>(doc: &'a Document<'i>) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.tag_name().namespace() == Some(DSIG_NS) && n.tag_name().name() == "Signature")
        .collect()
}
