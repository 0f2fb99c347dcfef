//! The values the reader takes from elements: text and base64.

use base64ct::{Base64, Encoding};
use roxmltree::Node;

use crate::{EdxmlError, error::Result};

/// The character data of an element that holds text only: *all* its text children joined
/// (CDATA sections are text), never the first one alone.
///
/// An element child where text is expected is refused: a reader that skipped it would see
/// something else than a reader that did not.
pub fn text_of(node: Node<'_, '_>) -> Result<String> {
    let mut out = String::new();
    for child in node.children() {
        if child.is_text() {
            out.push_str(child.text().unwrap_or_default());
        } else if child.is_element() {
            return Err(EdxmlError::Format(format!(
                "element {:?} where the text of {:?} was expected",
                child.tag_name().name(),
                node.tag_name().name()
            )));
        } else {
            return Err(EdxmlError::Ambiguous(format!(
                "a comment or processing instruction inside {:?}",
                node.tag_name().name()
            )));
        }
    }
    Ok(out)
}

/// The base64 content of an element (`ds:DigestValue`, `ds:X509Certificate`,
/// `edXML:ContentTransferEncoded`), XML whitespace removed, at most `max` decoded bytes.
///
/// The size is checked before decoding, from the encoded length, so an oversized value
/// costs no allocation.
pub fn base64_of(node: Node<'_, '_>, max: usize) -> Result<Vec<u8>> {
    let text = text_of(node)?;
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .collect();
    let padding = compact.len() - compact.trim_end_matches('=').len();
    if (compact.len() / 4 * 3).saturating_sub(padding) > max {
        return Err(EdxmlError::Limit {
            what: "decoded base64 bytes",
            limit: max,
        });
    }
    Base64::decode_vec(&compact)
        .map_err(|e| EdxmlError::Format(format!("{:?} is not base64: {e}", node.tag_name().name())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{EdxmlLimits, xml::parse::Source};

    #[test]
    fn text_joins_every_text_child_and_refuses_elements() {
        let limits = EdxmlLimits::default();
        let source = Source::new(b"<a>A<![CDATA[<B>]]>C</a>", &limits).unwrap();
        let doc = source.parse(&limits).unwrap();
        assert_eq!(text_of(doc.root_element()).unwrap(), "A<B>C");
        let source = Source::new(b"<a>A<b/>C</a>", &limits).unwrap();
        let doc = source.parse(&limits).unwrap();
        assert!(text_of(doc.root_element()).is_err());
    }

    #[test]
    fn base64_ignores_xml_whitespace_and_is_bounded() {
        let limits = EdxmlLimits::default();
        let source = Source::new(b"<a>aGVs\n bG8=</a>", &limits).unwrap();
        let doc = source.parse(&limits).unwrap();
        assert_eq!(base64_of(doc.root_element(), 5).unwrap(), b"hello");
        assert!(matches!(
            base64_of(doc.root_element(), 3),
            Err(EdxmlError::Limit { .. })
        ));
    }
}
