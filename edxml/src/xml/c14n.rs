//! Canonical XML: the only serialisation of a document that is ever hashed or signed.
//!
//! Implemented: Canonical XML 1.0 and 1.1 (inclusive) and Exclusive XML Canonicalization
//! 1.0, each with or without comments, over the node-sets XML-DSig needs for an enveloped
//! signature: a whole document or an element's subtree (the *apex*: `SignedInfo`,
//! `SignedProperties`), minus at most one excluded subtree (the `Signature` the
//! enveloped-signature transform removes).
//!
//! It writes from the parsed tree, never from a copy: the apex keeps the namespaces and
//! `xml:*` attributes it inherits from the omitted ancestors exactly as the specifications
//! say, and a large attachment streams into a digester without being copied. Prefixes are
//! taken from the source text ([`element_qname`]), because the tree keeps expanded names
//! only and two prefixes may bind one namespace.
//!
//! C14N 1.1 differs from 1.0 only in `xml:id` (not inherited) and `xml:base` (fixed up):
//! the parse refuses `xml:base`, so here 1.1 is one condition.

use roxmltree::{Node, NodeId};

use super::XML_NS;
use super::parse::{attribute_qname, element_qname};
use kyso_pki::crypto::Digester;

/// Where canonical bytes go: a buffer, or a digester so nothing large is held.
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Digester {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Which canonicalisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Canonical XML 1.0 (`http://www.w3.org/TR/2001/REC-xml-c14n-20010315`).
    Inclusive10,
    /// Canonical XML 1.1 (`http://www.w3.org/2006/12/xml-c14n11`).
    Inclusive11,
    /// Exclusive XML Canonicalization 1.0 (`http://www.w3.org/2001/10/xml-exc-c14n#`) with
    /// its InclusiveNamespaces PrefixList (`None` stands for `#default`).
    Exclusive {
        /// Prefixes treated as in inclusive canonicalisation.
        prefixes: Vec<Option<String>>,
    },
}

/// A canonicalisation algorithm as XML-DSig names it: a mode, with or without comments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonicalization {
    /// The mode.
    pub mode: Mode,
    /// Whether comments are kept (the `#WithComments` variants).
    pub with_comments: bool,
}

/// C14N 1.0 URI.
pub const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
/// C14N 1.0 with comments URI.
pub const C14N10_COMMENTS: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
/// C14N 1.1 URI.
pub const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
/// C14N 1.1 with comments URI.
pub const C14N11_COMMENTS: &str = "http://www.w3.org/2006/12/xml-c14n11#WithComments";
/// Exclusive C14N URI.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Exclusive C14N with comments URI.
pub const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";

impl Canonicalization {
    /// The algorithm named by `uri` (exclusive with an empty PrefixList), if it is one of
    /// the six canonicalisation URIs. Near misses (`http://www.w3.org/TR/xml-exc-c14n#`)
    /// are not canonicalisations.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let (mode, with_comments) = match uri {
            C14N10 => (Mode::Inclusive10, false),
            C14N10_COMMENTS => (Mode::Inclusive10, true),
            C14N11 => (Mode::Inclusive11, false),
            C14N11_COMMENTS => (Mode::Inclusive11, true),
            EXC_C14N => (Mode::Exclusive { prefixes: vec![] }, false),
            EXC_C14N_COMMENTS => (Mode::Exclusive { prefixes: vec![] }, true),
            _ => return None,
        };
        Some(Self {
            mode,
            with_comments,
        })
    }
}

/// The namespace declarations rendered by the nearest output ancestor, as (prefix, URI);
/// the default namespace has the prefix `""`. Absent default = `""`.
type Rendered<'a> = Vec<(&'a str, &'a str)>;

fn rendered_uri<'a>(ctx: &Rendered<'a>, prefix: &str) -> Option<&'a str> {
    ctx.iter().find(|(p, _)| *p == prefix).map(|(_, u)| *u)
}

/// Writes the canonical form of the node-set "`apex` and its descendants (the whole
/// document when `apex` is the root), minus the subtree of `excluded`" into `sink`.
///
/// The tree comes from [`super::parse::Source::parse`], so its depth is bounded and the
/// walk here is iterative anyway.
pub fn canonicalize(
    apex: Node<'_, '_>,
    excluded: Option<NodeId>,
    c14n: &Canonicalization,
    sink: &mut dyn Sink,
) {
    let mut w = Writer {
        c14n,
        excluded,
        sink,
    };
    if apex.is_root() {
        let mut after_root = false;
        for child in apex.children() {
            if Some(child.id()) == excluded {
                continue;
            }
            if child.is_element() {
                w.subtree(child);
                after_root = true;
            } else if child.is_comment() && !c14n.with_comments || child.is_text() {
                // Whitespace outside the root element is not part of the data model.
            } else {
                if after_root {
                    w.sink.put(b"\n");
                }
                w.leaf(child);
                if !after_root {
                    w.sink.put(b"\n");
                }
            }
        }
    } else if apex.is_element() {
        w.subtree(apex);
    } else {
        w.leaf(apex);
    }
}

/// Canonical bytes of the node-set, in a buffer.
pub fn canonical_bytes(
    apex: Node<'_, '_>,
    excluded: Option<NodeId>,
    c14n: &Canonicalization,
) -> Vec<u8> {
    let mut out = Vec::new();
    canonicalize(apex, excluded, c14n, &mut out);
    out
}

struct Writer<'s, 'c> {
    c14n: &'c Canonicalization,
    excluded: Option<NodeId>,
    sink: &'s mut dyn Sink,
}

enum Step<'a, 'input> {
    Enter(Node<'a, 'input>),
    Leave(Node<'a, 'input>),
}

impl Writer<'_, '_> {
    /// A text, comment or PI node.
    fn leaf(&mut self, node: Node<'_, '_>) {
        if node.is_text() {
            escape_text(self.sink, node.text().unwrap_or_default());
        } else if node.is_comment() {
            if self.c14n.with_comments {
                self.sink.put(b"<!--");
                self.sink.put(node.text().unwrap_or_default().as_bytes());
                self.sink.put(b"-->");
            }
        } else if let Some(pi) = node.pi() {
            self.sink.put(b"<?");
            self.sink.put(pi.target.as_bytes());
            if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
                self.sink.put(b" ");
                self.sink.put(v.as_bytes());
            }
            self.sink.put(b"?>");
        }
    }

    fn subtree<'a, 'input>(&mut self, top: Node<'a, 'input>) {
        // One rendered-namespace context per open output element.
        let mut contexts: Vec<Rendered<'a>> = vec![Vec::new()];
        let mut steps = vec![Step::Enter(top)];
        while let Some(step) = steps.pop() {
            match step {
                Step::Enter(node) => {
                    if Some(node.id()) == self.excluded {
                        continue;
                    }
                    if !node.is_element() {
                        self.leaf(node);
                        continue;
                    }
                    let parent_ctx = contexts.last().cloned().unwrap_or_default();
                    let ctx = self.start_tag(node, node == top, parent_ctx);
                    contexts.push(ctx);
                    steps.push(Step::Leave(node));
                    let children: Vec<_> = node.children().collect();
                    for child in children.into_iter().rev() {
                        steps.push(Step::Enter(child));
                    }
                }
                Step::Leave(node) => {
                    contexts.pop();
                    self.sink.put(b"</");
                    self.sink.put(element_qname(node).as_bytes());
                    self.sink.put(b">");
                }
            }
        }
    }

    /// Writes `<qn ns… attrs…>` and returns the rendered context for the children.
    fn start_tag<'a, 'input: 'a>(
        &mut self,
        node: Node<'a, 'input>,
        is_apex: bool,
        mut ctx: Rendered<'a>,
    ) -> Rendered<'a> {
        let qname = element_qname(node);
        let in_scope: Vec<(&'a str, &'a str)> = node
            .namespaces()
            .map(|n| (n.name().unwrap_or(""), n.uri()))
            .collect();
        let scope_uri = |p: &str| {
            in_scope
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, u)| *u)
                .unwrap_or("")
        };
        // The namespace nodes this element considers for output.
        let mut candidates: Vec<&'a str> = match &self.c14n.mode {
            Mode::Inclusive10 | Mode::Inclusive11 => {
                let mut c: Vec<&str> = in_scope.iter().map(|(p, _)| *p).collect();
                if !c.contains(&"") {
                    c.push("");
                }
                c
            }
            Mode::Exclusive { prefixes } => {
                let mut c: Vec<&'a str> = Vec::new();
                let used = |c: &mut Vec<&'a str>, p: &'a str| {
                    if p != "xml" && p != "xmlns" && !c.contains(&p) {
                        c.push(p);
                    }
                };
                used(&mut c, prefix_of(qname));
                for a in node.attributes() {
                    let aq = attribute_qname(node, &a);
                    if aq.contains(':') {
                        used(&mut c, prefix_of(aq));
                    }
                }
                for p in prefixes {
                    let p = p.as_deref().unwrap_or("");
                    if let Some((q, _)) = in_scope.iter().find(|(q, _)| *q == p) {
                        used(&mut c, q);
                    } else if p.is_empty() {
                        used(&mut c, "");
                    }
                }
                c
            }
        };
        candidates.sort_unstable();
        candidates.dedup();

        self.sink.put(b"<");
        self.sink.put(qname.as_bytes());
        for p in candidates {
            let uri = scope_uri(p);
            let rendered = rendered_uri(&ctx, p).unwrap_or("");
            if p.is_empty() {
                // xmlns="" only undoes a non-empty default in the output context.
                if uri == rendered {
                    continue;
                }
            } else if uri.is_empty() || rendered_uri(&ctx, p) == Some(uri) {
                continue;
            }
            self.sink
                .put(if p.is_empty() { b" xmlns" } else { b" xmlns:" });
            self.sink.put(p.as_bytes());
            self.sink.put(b"=\"");
            escape_attr(self.sink, uri);
            self.sink.put(b"\"");
            ctx.retain(|(q, _)| *q != p);
            ctx.push((p, uri));
        }

        // Attributes sorted by (namespace URI, local name); unqualified first.
        let mut attrs: Vec<(&str, &str, &str, &str)> = node
            .attributes()
            .map(|a| {
                (
                    a.namespace().unwrap_or(""),
                    a.name(),
                    attribute_qname(node, &a),
                    a.value(),
                )
            })
            .collect();
        if is_apex && !matches!(self.c14n.mode, Mode::Exclusive { .. }) {
            // xml:* attributes of the omitted ancestors, nearest first (C14N 1.0 §2.4;
            // 1.1 §2.4 without xml:id; xml:base never reaches here).
            let inherit: &[&str] = match self.c14n.mode {
                Mode::Inclusive10 => &["lang", "space", "id"],
                _ => &["lang", "space"],
            };
            for anc in node.ancestors().skip(1).filter(|n| n.is_element()) {
                for a in anc.attributes() {
                    if a.namespace() == Some(XML_NS)
                        && inherit.contains(&a.name())
                        && !attrs
                            .iter()
                            .any(|(ns, name, _, _)| *ns == XML_NS && *name == a.name())
                    {
                        attrs.push((XML_NS, a.name(), attribute_qname(anc, &a), a.value()));
                    }
                }
            }
        }
        attrs.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
        for (_, _, q, v) in attrs {
            self.sink.put(b" ");
            self.sink.put(q.as_bytes());
            self.sink.put(b"=\"");
            escape_attr(self.sink, v);
            self.sink.put(b"\"");
        }
        self.sink.put(b">");
        ctx
    }
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(p, _)| p)
}

/// Character data: `&`, `<`, `>` and CR escaped (C14N 1.0 §2.3).
fn escape_text(sink: &mut dyn Sink, text: &str) {
    escape(sink, text, |b| match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// Attribute values: `&`, `<`, `"`, TAB, LF and CR escaped (C14N 1.0 §2.3).
fn escape_attr(sink: &mut dyn Sink, text: &str) {
    escape(sink, text, |b| match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'"' => Some(b"&quot;"),
        b'\t' => Some(b"&#x9;"),
        b'\n' => Some(b"&#xA;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// Writes `text`, replacing the ASCII bytes `map` names; runs between them go in one piece.
fn escape(sink: &mut dyn Sink, text: &str, map: impl Fn(u8) -> Option<&'static [u8]>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(rep) = map(b) {
            sink.put(&bytes[start..i]);
            sink.put(rep);
            start = i + 1;
        }
    }
    sink.put(&bytes[start..]);
}

#[cfg(test)]
#[path = "c14n_tests.rs"]
mod tests;
