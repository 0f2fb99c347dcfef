//! edXML envelopes, status messages and organisation codes (kyso-edxml): everything the
//! exchange axis reads before a signature is checked (N6).
//!
//! The oracles are round trips: whatever the reader accepts, the writer writes and the
//! reader reads back to the same value, so the writer can carry anything the reader hands
//! on and nothing read is lost or changed on the way.

use kyso_edxml::EdxmlLimits;
use kyso_edxml::envelope::model::DocumentId;
use kyso_edxml::envelope::{Message, read_bytes, write, write_status};
use kyso_edxml::organ::{ExchangeAddress, OrganId};
use kyso_edxml::status::StatusCode;

/// Small limits: the same checks as the service's, reached with small inputs.
fn limits() -> EdxmlLimits {
    EdxmlLimits {
        max_bytes: 1 << 20,
        max_nodes: 20_000,
        max_attachments: 8,
        max_attachment_bytes: 256 << 10,
        max_attachments_total_bytes: 512 << 10,
        ..EdxmlLimits::default()
    }
}

/// Reads `data`; what is read must survive write → read unchanged.
fn read_and_round_trip(data: &[u8]) {
    let limits = limits();
    let Ok(read) = read_bytes(data, &limits) else {
        return;
    };
    // The writer's layout (indentation) may exceed the byte and node limits of a compact
    // input; the attachment limits stay.
    let again_limits = EdxmlLimits {
        max_bytes: 8 << 20,
        max_nodes: 200_000,
        ..limits
    };
    let written = match &read.message {
        Message::Envelope(e) => write(e),
        Message::Status(s) => write_status(s),
    };
    let written = match written {
        Ok(w) => w,
        Err(e) => panic!("the writer refused what the reader accepted: {e}"),
    };
    assert!(
        written.text[written.signature_at..].starts_with("</edXML:edXMLHeader>"),
        "signature_at points at the header's end tag"
    );
    match read_bytes(written.text.as_bytes(), &again_limits) {
        Ok(again) => assert_eq!(again.message, read.message, "write then read changed it"),
        Err(e) => panic!("the reader refused what the writer wrote: {e}"),
    }
}

/// Any bytes through everything the verifier runs on an edXML document: the one parse, the
/// reader and the XML signature's core validation (canonicalisation, digests, the signature
/// over the canonical SignedInfo). The oracle: the same bytes give the same verdict twice.
pub fn edxml_open(data: &[u8]) {
    let policy = kyso_edxml::dsig::DsigPolicy { legacy_sha1: true };
    let verdict = |o: &kyso_edxml::Opened| match &o.signature {
        kyso_edxml::SignatureState::Checked(c) => Some(c.check.passed()),
        _ => None,
    };
    let Ok(first) = kyso_edxml::open(data, &limits(), &policy) else {
        return;
    };
    match kyso_edxml::open(data, &limits(), &policy) {
        Ok(again) => assert_eq!(verdict(&again), verdict(&first), "one input, two verdicts"),
        Err(e) => panic!("read once, refused the second time: {e}"),
    }
}

/// Any bytes as an envelope (or a status message).
pub fn edxml_read(data: &[u8]) {
    read_and_round_trip(data);
}

/// Any bytes as a status message; the code alone through [`StatusCode::parse`] too.
pub fn edxml_status(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(code) = StatusCode::parse(text)
    {
        assert_eq!(code.as_str(), text);
    }
    read_and_round_trip(data);
}

/// Any text as an organisation code, an exchange address and a document identifier: each
/// accepted value prints back to what was read, and a code's parents end at level 1.
pub fn organ_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = OrganId::parse_exact(text) {
        assert_eq!(id.to_string(), text);
        let mut levels = 1;
        let mut at = id;
        while let Some(parent) = at.parent() {
            assert!(at.is_within(parent) && parent.depth() < at.depth());
            at = parent;
            levels += 1;
        }
        assert_eq!(levels, id.depth());
    }
    // The lenient form (what an operator types) reads the same code as the exact one.
    if let Ok(id) = OrganId::parse(text) {
        assert_eq!(OrganId::parse_exact(&id.to_string()), Ok(id));
    }
    if let Ok(address) = ExchangeAddress::parse(text) {
        assert_eq!(address.to_string(), text);
    }
    if let Ok(document) = DocumentId::parse(text) {
        assert_eq!(document.to_string(), text);
    }
}
