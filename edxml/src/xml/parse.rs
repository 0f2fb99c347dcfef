//! The one parse of an untrusted XML document.
//!
//! Before any tree is built the bytes are checked for what the XML layer would otherwise
//! accept silently: the size, UTF-8 (the only encoding kyso reads; a declaration naming
//! another encoding is refused rather than misread), XML 1.0, and line ends, which are
//! normalised to LF on the whole input (XML 1.0 §2.11) because roxmltree normalises them in
//! text but not in comments and processing instructions, and canonical XML hashes both.
//!
//! The tree is roxmltree's: a strict well-formedness checker that refuses any DOCTYPE (so
//! no entity expansion, no DTD-declared IDs) and stops at a node count. It has no depth or
//! attribute limit, so one iterative walk right after the parse checks them before anything
//! recursive runs. `xml:base` is refused: canonical XML 1.1 would have to rewrite it, and no
//! edXML builder writes it.

use roxmltree::{Document, Node, ParsingOptions};

use super::XML_NS;
use crate::{EdxmlError, EdxmlLimits, error::Result};

/// The document's text after the checks that come before any tree: UTF-8 without a byte
/// order mark, an XML 1.0 declaration (if any) naming UTF-8, LF line ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    text: String,
}

impl Source {
    /// Checks and normalises `bytes` (see the module documentation).
    pub fn new(bytes: &[u8], limits: &EdxmlLimits) -> Result<Self> {
        if bytes.len() > limits.max_bytes {
            return Err(EdxmlError::Limit {
                what: "document bytes",
                limit: limits.max_bytes,
            });
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes)
            .map_err(|e| EdxmlError::Format(format!("not UTF-8: {e}")))?;
        check_declaration(text)?;
        let text = if text.contains('\r') {
            text.replace("\r\n", "\n").replace('\r', "\n")
        } else {
            text.to_owned()
        };
        Ok(Self { text })
    }

    /// The normalised text; every byte range of the tree points into it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses the text into a tree within `limits`.
    pub fn parse(&self, limits: &EdxmlLimits) -> Result<Document<'_>> {
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: limits.max_nodes,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(&self.text, options).map_err(|e| match e {
            roxmltree::Error::NodesLimitReached => EdxmlError::Limit {
                what: "XML nodes",
                limit: limits.max_nodes as usize,
            },
            roxmltree::Error::DtdDetected => {
                EdxmlError::Unsupported("a document type declaration (DTD)".into())
            }
            e => EdxmlError::Format(e.to_string()),
        })?;
        check_tree(&doc, limits)?;
        Ok(doc)
    }
}

/// The XML declaration, if present: version 1.0, encoding absent or UTF-8.
fn check_declaration(text: &str) -> Result<()> {
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    if !rest.starts_with([' ', '\t', '\r', '\n']) {
        // `<?xml-stylesheet …?>` and the like: a processing instruction, not a declaration.
        return Ok(());
    }
    let end = rest
        .find("?>")
        .ok_or_else(|| EdxmlError::Format("unterminated XML declaration".into()))?;
    let decl = &rest[..end];
    match pseudo_attribute(decl, "version") {
        Some("1.0") => {}
        Some(v) => return Err(EdxmlError::Unsupported(format!("XML version {v:?}"))),
        None => return Err(EdxmlError::Format("XML declaration without version".into())),
    }
    match pseudo_attribute(decl, "encoding") {
        None => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("utf-8") => Ok(()),
        Some(e) => Err(EdxmlError::Unsupported(format!(
            "encoding {e:?}: only UTF-8 is read"
        ))),
    }
}

/// The value of `name="…"` or `name='…'` in an XML declaration.
fn pseudo_attribute<'a>(decl: &'a str, name: &str) -> Option<&'a str> {
    let at = decl.find(name)?;
    let rest = decl[at + name.len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// Depth, attributes and namespaces per element, and no `xml:base`, in one iterative walk.
fn check_tree(doc: &Document<'_>, limits: &EdxmlLimits) -> Result<()> {
    let mut stack: Vec<(Node<'_, '_>, usize)> = vec![(doc.root(), 0)];
    while let Some((node, depth)) = stack.pop() {
        if node.is_element() {
            if depth > limits.max_depth {
                return Err(EdxmlError::Limit {
                    what: "element depth",
                    limit: limits.max_depth,
                });
            }
            if node.attributes().len() > limits.max_attributes {
                return Err(EdxmlError::Limit {
                    what: "attributes on one element",
                    limit: limits.max_attributes,
                });
            }
            if node.namespaces().len() > limits.max_namespaces {
                return Err(EdxmlError::Limit {
                    what: "namespaces in scope",
                    limit: limits.max_namespaces,
                });
            }
            if node
                .attributes()
                .any(|a| a.namespace() == Some(XML_NS) && a.name() == "base")
            {
                return Err(EdxmlError::Unsupported(
                    "xml:base (canonical XML 1.1 would rewrite it)".into(),
                ));
            }
        }
        for child in node.children() {
            stack.push((child, depth + 1));
        }
    }
    Ok(())
}

/// Refuses comments and processing instructions inside the root element.
///
/// A signature over `URI=""` covers the document *without* comments, so
/// `<Subject>AB<!--x-->C</Subject>` signs like `ABC` while a reader that stops at the
/// comment sees `AB` (the comment-truncation class of attacks on signed XML). Nothing the
/// exchange carries needs either, so both are refused outright.
pub fn refuse_comments_and_pis_in_root(doc: &Document<'_>) -> Result<()> {
    let root = doc.root_element();
    if let Some(n) = root.descendants().find(|n| n.is_comment() || n.is_pi()) {
        let what = if n.is_comment() {
            "a comment"
        } else {
            "a processing instruction"
        };
        let pos = doc.text_pos_at(n.range().start);
        return Err(EdxmlError::Ambiguous(format!(
            "{what} inside the root element (line {}, column {}): it is outside what a signature over the document covers",
            pos.row, pos.col
        )));
    }
    Ok(())
}

/// The element's name as written in the source (`edXML:Subject`, `ds:Signature`, `To`).
///
/// The tree keeps expanded names only, and a prefix cannot be recovered from the namespace
/// when two prefixes bind one URI (the edXML root binds both the default namespace and
/// `edXML:` to QCVN's): canonical XML must write the QName the document wrote.
pub fn element_qname<'a>(node: Node<'_, 'a>) -> &'a str {
    let text = node.document().input_text();
    let start = node.range().start + 1; // past '<'
    let rest = text.get(start..).unwrap_or_default();
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The attribute's name as written in the source (`Algorithm`, `xml:lang`, `xsi:type`).
pub fn attribute_qname<'a>(
    node: Node<'_, 'a>,
    attribute: &roxmltree::Attribute<'_, 'a>,
) -> &'a str {
    node.document()
        .input_text()
        .get(attribute.range_qname())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<()> {
        let limits = EdxmlLimits::default();
        let source = Source::new(text.as_bytes(), &limits)?;
        source.parse(&limits).map(|_| ())
    }

    #[test]
    fn refuses_what_the_tree_would_accept_silently() {
        assert!(parse(r#"<?xml version="1.0" encoding="UTF-8"?><a/>"#).is_ok());
        assert!(parse("\u{FEFF}<a/>").is_ok());
        assert!(matches!(
            parse(r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#),
            Err(EdxmlError::Unsupported(_))
        ));
        assert!(matches!(
            parse(r#"<?xml version="1.1"?><a/>"#),
            Err(EdxmlError::Unsupported(_))
        ));
        assert!(matches!(
            parse("<!DOCTYPE a><a/>"),
            Err(EdxmlError::Unsupported(_))
        ));
        assert!(matches!(
            parse(r#"<a xml:base="http://x/"/>"#),
            Err(EdxmlError::Unsupported(_))
        ));
        let limits = EdxmlLimits::default();
        assert!(matches!(
            Source::new(b"<a>\xFF</a>", &limits),
            Err(EdxmlError::Format(_))
        ));
    }

    #[test]
    fn depth_attributes_and_size_are_bounded() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(matches!(
            parse(&deep),
            Err(EdxmlError::Limit {
                what: "element depth",
                ..
            })
        ));
        let attrs: String = (0..40).map(|i| format!(" a{i}=\"\"")).collect();
        assert!(matches!(
            parse(&format!("<a{attrs}/>")),
            Err(EdxmlError::Limit { .. })
        ));
        let small = EdxmlLimits {
            max_bytes: 10,
            ..EdxmlLimits::default()
        };
        assert!(matches!(
            Source::new(b"<a>0123456789</a>", &small),
            Err(EdxmlError::Limit { .. })
        ));
    }

    #[test]
    fn line_ends_are_normalised_everywhere() {
        let limits = EdxmlLimits::default();
        let source = Source::new(b"<a><!-- x\r\ny -->b\rc</a>", &limits).unwrap();
        assert_eq!(source.as_str(), "<a><!-- x\ny -->b\nc</a>");
    }

    #[test]
    fn comments_inside_the_root_are_refused() {
        let limits = EdxmlLimits::default();
        let source = Source::new(b"<!--ok--><a>AB<!--x-->C</a>", &limits).unwrap();
        let doc = source.parse(&limits).unwrap();
        assert!(matches!(
            refuse_comments_and_pis_in_root(&doc),
            Err(EdxmlError::Ambiguous(_))
        ));
        let source = Source::new(b"<!--ok--><a>ABC</a><?pi x?>", &limits).unwrap();
        let doc = source.parse(&limits).unwrap();
        assert!(refuse_comments_and_pis_in_root(&doc).is_ok());
    }

    #[test]
    fn qualified_names_come_from_the_source() {
        let limits = EdxmlLimits::default();
        let text = r#"<edXML xmlns="urn:q" xmlns:edXML="urn:q"><edXML:Subject xml:lang="vi"/><To/></edXML>"#;
        let source = Source::new(text.as_bytes(), &limits).unwrap();
        let doc = source.parse(&limits).unwrap();
        let names: Vec<&str> = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(element_qname)
            .collect();
        assert_eq!(names, ["edXML", "edXML:Subject", "To"]);
        let subject = doc
            .descendants()
            .find(|n| n.has_tag_name("Subject"))
            .unwrap();
        let attr = subject.attributes().next().unwrap();
        assert_eq!(attribute_qname(subject, &attr), "xml:lang");
    }
}
