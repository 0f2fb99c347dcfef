//! The writer: envelopes and status messages as text kyso then signs (N6).
//!
//! The output is deterministic (same value, same bytes), UTF-8 with LF line ends only, in
//! the namespace layout the exchange's builders use: the root `edXML` unprefixed in the
//! QCVN namespace, which is also bound to `edXML:` for the structural elements. Attachments
//! are base64 on one line. The signature goes last into `edXML:edXMLHeader`:
//! [`Written::signature_at`] is the byte offset of `</edXML:edXMLHeader>`, where it is
//! spliced without adding whitespace, so the signed document minus its `Signature` is
//! exactly this text and nothing is re-serialised after signing.

use base64ct::{Base64, Encoding};

use super::model::*;
use crate::status::StatusMessage;
use crate::{EdxmlError, error::Result};

/// A written message and where its signature goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The document.
    pub text: String,
    /// Byte offset of `</edXML:edXMLHeader>` in `text`: the signature is inserted here.
    pub signature_at: usize,
}

impl Written {
    /// The document with `signature` (a complete `Signature` element) spliced in place.
    pub fn with_signature(&self, signature: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + signature.len());
        out.push_str(&self.text[..self.signature_at]);
        out.push_str(signature);
        out.push_str(&self.text[self.signature_at..]);
        out
    }
}

const HEADER_END: &str = "</edXML:edXMLHeader>";

/// Writes an envelope. Refused: no recipient, a value XML cannot carry (control
/// characters), a `DocumentId` or date that would not read back the same, a manifest entry
/// without its attachment.
pub fn write(envelope: &Envelope) -> Result<Written> {
    let h = &envelope.header;
    if h.to.is_empty() {
        return Err(EdxmlError::Format(
            "an envelope needs a recipient (To)".into(),
        ));
    }
    for entry in &envelope.manifest {
        if !envelope
            .attachments
            .iter()
            .any(|a| a.content_id == entry.content_id)
        {
            return Err(EdxmlError::Format(format!(
                "the manifest names ContentId {:?} and no attachment has it",
                entry.content_id
            )));
        }
    }
    let mut w = Writer::start();
    w.open("edXML:MessageHeader");
    organization(&mut w, "From", &h.from)?;
    for to in &h.to {
        organization(&mut w, "To", to)?;
    }
    h.document_id.check_writable()?;
    check_date(h.document_id.date)?;
    w.leaf("DocumentId", &h.document_id.to_string())?;
    w.open("Code");
    w.leaf("CodeNumber", &h.code.code_number)?;
    w.leaf("CodeNotation", &h.code.code_notation)?;
    w.close("Code");
    w.open("PromulgationInfo");
    w.leaf("Place", &h.promulgation_info.place)?;
    w.date("PromulgationDate", h.promulgation_info.promulgation_date)?;
    w.close("PromulgationInfo");
    w.open("DocumentType");
    w.leaf("Type", &h.document_type.doc_type)?;
    w.opt("TypeDetail", &h.document_type.type_detail)?;
    w.opt("TypeName", &h.document_type.type_name)?;
    w.close("DocumentType");
    w.leaf("Subject", &h.subject)?;
    w.opt("Content", &h.content)?;
    if let Some(s) = &h.signer_info {
        w.open("SignerInfo");
        w.opt("Competence", &s.competence)?;
        w.opt("Position", &s.position)?;
        w.opt("FullName", &s.full_name)?;
        w.close("SignerInfo");
    }
    w.opt("DueDate", &h.due_date)?;
    if let Some(o) = &h.other_info {
        w.open("OtherInfo");
        w.opt("Priority", &o.priority)?;
        w.opt("SphereOfPromulgation", &o.sphere_of_promulgation)?;
        w.opt("TyperNotation", &o.typer_notation)?;
        w.opt("PromulgationAmount", &o.promulgation_amount)?;
        w.opt("PageAmount", &o.page_amount)?;
        if !o.appendixes.is_empty() {
            w.open("Appendixes");
            for a in &o.appendixes {
                w.leaf("Appendix", a)?;
            }
            w.close("Appendixes");
        }
        w.close("OtherInfo");
    }
    for r in &h.response_for {
        response_for(&mut w, r)?;
    }
    w.opt("SteeringType", &h.steering_type)?;
    if !h.to_places.is_empty() {
        w.open("ToPlaces");
        for p in &h.to_places {
            w.leaf("Place", p)?;
        }
        w.close("ToPlaces");
    }
    w.close("edXML:MessageHeader");
    let t = &envelope.trace;
    if !t.trace_headers.is_empty() || t.bussiness.is_some() {
        w.open("edXML:TraceHeaderList");
        for th in &t.trace_headers {
            w.open("TraceHeader");
            w.leaf("OrganId", &th.organ_id.to_string())?;
            w.timestamp("Timestamp", th.timestamp)?;
            w.close("TraceHeader");
        }
        if let Some(b) = &t.bussiness {
            w.open("Bussiness");
            w.leaf("BussinessDocType", b.doc_type.as_str())?;
            w.opt("BussinessDocReason", &b.reason)?;
            w.opt("DocumentId", &b.document_id)?;
            w.opt("Paper", &b.paper)?;
            if let Some(s) = &b.staff_info {
                staff_info(&mut w, s)?;
            }
            w.close("Bussiness");
        }
        w.close("edXML:TraceHeaderList");
    }
    let signature_at = w.end_header();
    w.open("edXML:edXMLBody");
    w.open_with("edXML:edXMLManifest", r#" version="1.0""#);
    for r in &envelope.manifest {
        w.open("Reference");
        w.leaf("ContentId", &r.content_id)?;
        w.opt("ContentType", &r.content_type)?;
        w.opt("Description", &r.description)?;
        w.opt("AttachmentName", &r.attachment_name)?;
        w.close("Reference");
    }
    w.close("edXML:edXMLManifest");
    w.close("edXML:edXMLBody");
    w.close("edXML:edXMLEnvelope");
    if !envelope.attachments.is_empty() {
        w.open("AttachmentEncoded");
        for a in &envelope.attachments {
            w.open("Attachment");
            w.leaf("ContentId", &a.content_id)?;
            w.leaf("AttachmentName", &a.attachment_name)?;
            w.opt("Description", &a.description)?;
            w.leaf("ContentType", &a.content_type)?;
            // Base64 has nothing to escape: written straight, one line.
            w.indent();
            w.out.push_str("<edXML:ContentTransferEncoded>");
            w.out.push_str(&Base64::encode_string(&a.data));
            w.out.push_str("</edXML:ContentTransferEncoded>\n");
            w.close("Attachment");
        }
        w.close("AttachmentEncoded");
    }
    Ok(w.finish(signature_at))
}

/// Writes a status message: the same root and envelope, a header with only a
/// `MessageHeader`, no body.
pub fn write_status(status: &StatusMessage) -> Result<Written> {
    let mut w = Writer::start();
    w.open("edXML:MessageHeader");
    organization(&mut w, "From", &status.from)?;
    response_for(&mut w, &status.response_for)?;
    if let Some(s) = &status.staff_info {
        staff_info(&mut w, s)?;
    }
    w.leaf("StatusCode", status.status_code.as_str())?;
    w.opt("Description", &status.description)?;
    w.timestamp("Timestamp", status.timestamp)?;
    w.close("edXML:MessageHeader");
    let signature_at = w.end_header();
    w.close("edXML:edXMLEnvelope");
    Ok(w.finish(signature_at))
}

fn organization(w: &mut Writer, name: &str, o: &Organization) -> Result<()> {
    w.open(name);
    w.leaf("OrganId", &o.organ_id.to_string())?;
    w.opt("OrganizationInCharge", &o.organization_in_charge)?;
    w.opt("OrganName", &o.organ_name)?;
    w.opt("OrganAdd", &o.organ_add)?;
    w.opt("Email", &o.email)?;
    w.opt("Telephone", &o.telephone)?;
    w.opt("Fax", &o.fax)?;
    w.opt("Website", &o.website)?;
    w.close(name);
    Ok(())
}

fn response_for(w: &mut Writer, r: &ResponseFor) -> Result<()> {
    w.open("ResponseFor");
    w.leaf("OrganId", &r.organ_id.to_string())?;
    w.leaf("Code", &r.code)?;
    if let Some(id) = &r.document_id {
        id.check_writable()?;
        check_date(id.date)?;
        w.leaf("DocumentId", &id.to_string())?;
    }
    if let Some(date) = r.promulgation_date {
        w.date("PromulgationDate", date)?;
    }
    w.close("ResponseFor");
    Ok(())
}

fn staff_info(w: &mut Writer, s: &StaffInfo) -> Result<()> {
    w.open("StaffInfo");
    w.opt("Department", &s.department)?;
    w.opt("Staff", &s.staff)?;
    w.opt("Email", &s.email)?;
    w.opt("Mobile", &s.mobile)?;
    w.close("StaffInfo");
    Ok(())
}

/// Indented elements, escaped text.
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    /// The declaration, the root with its two bindings of the QCVN namespace, the envelope
    /// and the header opened.
    fn start() -> Self {
        let mut w = Self {
            out: String::with_capacity(4096),
            depth: 0,
        };
        w.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w.open_with(
            "edXML",
            &format!(r#" xmlns="{QCVN_NS}" xmlns:edXML="{QCVN_NS}""#),
        );
        w.open("edXML:edXMLEnvelope");
        w.open("edXML:edXMLHeader");
        w
    }

    /// Closes the header; returns the offset of its end tag (where the signature goes).
    fn end_header(&mut self) -> usize {
        self.depth -= 1;
        self.indent();
        let at = self.out.len();
        self.out.push_str(HEADER_END);
        self.out.push('\n');
        at
    }

    fn finish(mut self, signature_at: usize) -> Written {
        self.close("edXML");
        Written {
            text: self.out,
            signature_at,
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.open_with(name, "");
    }

    fn open_with(&mut self, name: &str, attributes: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(attributes);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, text: &str) -> Result<()> {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_text(&mut self.out, name, text)?;
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        Ok(())
    }

    fn opt(&mut self, name: &str, text: &Option<String>) -> Result<()> {
        match text {
            Some(t) => self.leaf(name, t),
            None => Ok(()),
        }
    }

    fn date(&mut self, name: &str, date: time::Date) -> Result<()> {
        check_date(date)?;
        self.leaf(name, &DateText(date).to_string())
    }

    fn timestamp(&mut self, name: &str, at: time::PrimitiveDateTime) -> Result<()> {
        check_date(at.date())?;
        self.leaf(name, &TimestampText(at).to_string())
    }
}

/// Character data: `&`, `<`, `>` escaped, CR as a character reference (so it survives
/// line-end normalisation and the output has LF line ends only); characters XML 1.0 cannot
/// carry at all are refused.
fn escape_text(out: &mut String, name: &str, text: &str) -> Result<()> {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                return Err(EdxmlError::Format(format!(
                    "{name}: character U+{:04X} cannot be written in XML",
                    u32::from(c)
                )));
            }
            c => out.push(c),
        }
    }
    Ok(())
}
