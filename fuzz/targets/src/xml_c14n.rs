//! The bounded XML parse and canonical XML (kyso-edxml `xml::parse`, `xml::c14n`): the
//! edXML envelope arrives from another agency. The oracle besides "no panic" is
//! idempotence: the canonical form, parsed again and canonicalised again, is unchanged
//! (in the six modes), which catches escaping and namespace-rendering slips.

use kyso_edxml::EdxmlLimits;
use kyso_edxml::xml::c14n::{
    C14N10, C14N10_COMMENTS, C14N11, C14N11_COMMENTS, Canonicalization, EXC_C14N,
    EXC_C14N_COMMENTS, canonical_bytes,
};
use kyso_edxml::xml::parse::Source;

/// Small limits, so an input costs little whatever it is.
const LIMITS: EdxmlLimits = EdxmlLimits {
    max_bytes: 64 << 10,
    max_depth: 16,
    max_nodes: 2_000,
    max_attributes: 16,
    max_namespaces: 16,
    max_attachments: 4,
    max_attachment_bytes: 32 << 10,
    max_attachments_total_bytes: 32 << 10,
    max_certificates: 4,
    max_references: 3,
    max_transforms: 2,
};

/// Parses and canonicalises; panics when the canonical form is not a fixed point.
pub fn xml_c14n(data: &[u8]) {
    let Ok(source) = Source::new(data, &LIMITS) else {
        return;
    };
    let Ok(doc) = source.parse(&LIMITS) else {
        return;
    };
    // The canonical form may be larger than the input (`<a/>` becomes `<a></a>`, namespace
    // declarations repeat): re-read it with room to spare.
    let again = EdxmlLimits {
        max_bytes: usize::MAX,
        max_nodes: u32::MAX,
        max_namespaces: usize::MAX,
        ..LIMITS
    };
    for uri in [
        C14N10,
        C14N10_COMMENTS,
        C14N11,
        C14N11_COMMENTS,
        EXC_C14N,
        EXC_C14N_COMMENTS,
    ] {
        let Some(c) = Canonicalization::from_uri(uri) else {
            panic!("{uri} is a canonicalisation");
        };
        let once = canonical_bytes(doc.root(), None, &c);
        let source = match Source::new(&once, &again) {
            Ok(s) => s,
            Err(e) => panic!("{uri}: canonical form refused: {e}"),
        };
        let reparsed = match source.parse(&again) {
            Ok(d) => d,
            Err(e) => panic!("{uri}: canonical form does not parse: {e}"),
        };
        let twice = canonical_bytes(reparsed.root(), None, &c);
        assert!(once == twice, "{uri}: canonical XML is not idempotent");
    }
}
