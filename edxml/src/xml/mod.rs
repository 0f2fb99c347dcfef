//! The XML layer: one bounded parse into a read-only tree, the text of its elements, and
//! canonical XML, the only serialisation that is ever hashed.

pub mod c14n;
pub mod parse;
pub mod text;

/// The XML namespace, bound to the prefix `xml` by definition (Namespaces in XML 1.0 §3).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
