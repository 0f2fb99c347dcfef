//! Round trips and every refusal of the reader (N6).

#![allow(clippy::unwrap_used, clippy::expect_used, non_snake_case)] // rule IDs in test names

use time::macros::{date, datetime};

use super::model::*;
use super::*;
use crate::attachment::Attachment;
use crate::organ::OrganId;
use crate::status::{StatusCode, StatusMessage};
use crate::{EdxmlError, EdxmlLimits};

fn organ(code: &str) -> OrganId {
    crate::organ::parse_organ_id(code).unwrap()
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n".to_vec()
}

/// An envelope with every field the model has, and values that need escaping.
pub(crate) fn full_envelope() -> Envelope {
    let mut from = Organization::new(organ("000.00.12.H41"));
    from.organization_in_charge = Some("UBND tỉnh".into());
    from.organ_name = Some("Văn phòng UBND tỉnh".into());
    from.organ_add = Some("1 Lê Lợi, <Huế> & \"vùng\" 'x'".into());
    from.email = Some("vp@example.gov.vn".into());
    from.telephone = Some("0234 3822 111".into());
    from.fax = Some("0234 3822 112".into());
    from.website = Some("https://example.gov.vn".into());
    Envelope {
        header: MessageHeader {
            from,
            to: vec![
                Organization::new(organ("000.00.00.G22")),
                Organization::new(organ("000.03.12.H34")),
            ],
            document_id: DocumentId {
                organ_id: organ("000.00.12.H41"),
                date: date!(2026 - 11 - 30),
                number: "1234".into(),
                notation: "QĐ-UBND".into(),
            },
            code: Code {
                code_number: "1234".into(),
                code_notation: "QĐ-UBND".into(),
            },
            promulgation_info: PromulgationInfo {
                place: "Huế".into(),
                promulgation_date: date!(2026 - 11 - 30),
            },
            document_type: DocumentType {
                doc_type: "1".into(),
                type_detail: Some("2".into()),
                type_name: Some("Quyết định".into()),
            },
            subject: "  Về việc A & B <c>\n\tdòng hai\r\n ".into(),
            content: Some("]]> nội dung".into()),
            signer_info: Some(SignerInfo {
                competence: Some("TM. Ủy ban nhân dân".into()),
                position: Some("Chủ tịch".into()),
                full_name: Some("Nguyễn Văn A".into()),
            }),
            due_date: Some("2026/12/31".into()),
            other_info: Some(OtherInfo {
                priority: Some("0".into()),
                sphere_of_promulgation: Some("Liên thông văn bản quốc gia".into()),
                typer_notation: Some("TB".into()),
                promulgation_amount: Some("10".into()),
                page_amount: Some("2".into()),
                appendixes: vec!["Phụ lục 1".into(), String::new()],
            }),
            response_for: vec![ResponseFor {
                organ_id: organ("000.00.00.G22"),
                code: "7816/VPCP-TTĐT".into(),
                document_id: Some(
                    DocumentId::parse("000.00.00.G22,2015/09/30,7816/VPCP-TTĐT").unwrap(),
                ),
                promulgation_date: Some(date!(2015 - 09 - 30)),
            }],
            steering_type: Some("1".into()),
            to_places: vec!["Bộ Nội vụ".into(), "Lưu: VT".into()],
        },
        trace: TraceHeaderList {
            trace_headers: vec![TraceHeader {
                organ_id: organ("000.00.12.H41"),
                timestamp: datetime!(2026-11-30 08:15:00),
            }],
            bussiness: Some(Bussiness {
                doc_type: BussinessDocType::New,
                reason: Some("Gửi mới".into()),
                document_id: Some("000.00.01.H01,2018,10".into()),
                paper: Some("0".into()),
                staff_info: Some(StaffInfo {
                    department: Some("Văn thư".into()),
                    staff: Some("Trần B".into()),
                    email: None,
                    mobile: Some("0900000000".into()),
                }),
            }),
        },
        manifest: vec![ManifestReference {
            content_id: "cid:1".into(),
            content_type: Some("application/pdf".into()),
            description: Some("Văn bản".into()),
            attachment_name: Some("qd-1234.pdf".into()),
        }],
        attachments: vec![Attachment {
            content_id: "cid:1".into(),
            attachment_name: "qd-1234.pdf".into(),
            description: Some("Văn bản".into()),
            content_type: "application/pdf".into(),
            data: pdf(),
        }],
    }
}

/// Only what an envelope must have.
fn minimal_envelope() -> Envelope {
    let mut e = full_envelope();
    let h = &mut e.header;
    h.from = Organization::new(organ("000.00.12.H41"));
    h.to.truncate(1);
    h.document_type.type_detail = None;
    h.document_type.type_name = None;
    h.content = None;
    h.signer_info = None;
    h.due_date = None;
    h.other_info = None;
    h.response_for.clear();
    h.steering_type = None;
    h.to_places.clear();
    e.trace = TraceHeaderList::default();
    e.manifest.clear();
    e.attachments.clear();
    e
}

pub(crate) fn status(code: StatusCode) -> StatusMessage {
    StatusMessage {
        from: Organization::new(organ("000.03.12.H34")),
        response_for: ResponseFor {
            organ_id: organ("000.00.12.H41"),
            code: "1234/QĐ-UBND".into(),
            document_id: Some(DocumentId::parse("000.00.12.H41,2026/11/30,1234/QĐ-UBND").unwrap()),
            promulgation_date: Some(date!(2026 - 11 - 30)),
        },
        staff_info: Some(StaffInfo {
            department: Some("Văn thư".into()),
            staff: Some("Lê C".into()),
            email: Some("vt@example.gov.vn".into()),
            mobile: None,
        }),
        status_code: code,
        description: Some("Thiếu chữ ký <cơ quan> & số".into()),
        timestamp: datetime!(2026-12-01 09:30:05),
    }
}

fn read_text(text: &str) -> crate::error::Result<Read> {
    read_bytes(text.as_bytes(), &EdxmlLimits::default())
}

fn envelope_of(read: &Read) -> &Envelope {
    match &read.message {
        Message::Envelope(e) => e,
        Message::Status(_) => panic!("a status message"),
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in the text");
    text.replacen(from, to, 1)
}

const SIG: &str = r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>"#;

#[test]
fn envelope_round_trips_deterministically_N6() {
    for envelope in [full_envelope(), minimal_envelope()] {
        let written = write(&envelope).unwrap();
        assert_eq!(written, write(&envelope).unwrap(), "deterministic");
        assert!(!written.text.contains('\r'), "LF only");
        assert!(written.text[written.signature_at..].starts_with("</edXML:edXMLHeader>"));
        let read = read_text(&written.text).unwrap();
        assert_eq!(read.message, Message::Envelope(Box::new(envelope)));
        assert_eq!(read.signature, None);
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    }
    let written = write(&full_envelope()).unwrap();
    assert!(written.text.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\" xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">\n"
    ));
    assert!(written.text.contains("<edXML:ContentTransferEncoded>JVBERi0xLjcKMSAwIG9iajw8Pj5lbmRvYmoKJSVFT0YK</edXML:ContentTransferEncoded>"));
    assert!(written.text.contains("&#xD;"), "CR kept as a reference");
}

#[test]
fn status_messages_round_trip_for_every_known_code_N6() {
    for code in StatusCode::ALL {
        let message = status(code);
        let written = write_status(&message).unwrap();
        assert!(written.text[written.signature_at..].starts_with("</edXML:edXMLHeader>"));
        assert!(!written.text.contains("edXMLBody"));
        let read = read_text(&written.text).unwrap();
        assert_eq!(read.message, Message::Status(Box::new(message)));
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    }
    let mut bare = status(StatusCode::Arrived);
    bare.staff_info = None;
    bare.description = None;
    bare.response_for.document_id = None;
    bare.response_for.promulgation_date = None;
    let read = read_text(&write_status(&bare).unwrap().text).unwrap();
    assert_eq!(read.message, Message::Status(Box::new(bare)));
}

#[test]
fn unknown_status_code_07_is_refused_N6() {
    let text = write_status(&status(StatusCode::Accepted)).unwrap().text;
    for unknown in ["07", "12", "14", "3", "99"] {
        let bad = replace_once(&text, "<StatusCode>03<", &format!("<StatusCode>{unknown}<"));
        assert!(
            matches!(read_text(&bad), Err(EdxmlError::Unsupported(_))),
            "{unknown} accepted"
        );
    }
}

/// Another builder's layout: every element prefixed with another prefix, `To` before
/// `From`, `ToPlaces` before `OtherInfo`, the trace before the message header, the body's
/// attachment area first: the same envelope.
#[test]
fn element_order_and_prefixes_do_not_change_the_reading_N6() {
    let text = r#"<?xml version="1.0"?>
<q:edXML xmlns:q="http://www.mic.gov.vn/TBT/QCVN_102_2016">
<q:AttachmentEncoded><q:Attachment><q:ContentTransferEncoded>JVBERi0x
LjcKMSAwIG9iajw8Pj5lbmRvYmoKJSVFT0YK</q:ContentTransferEncoded><q:ContentType>application/pdf</q:ContentType>
<q:AttachmentName>qd-1234.pdf</q:AttachmentName><q:ContentId>cid:1</q:ContentId></q:Attachment></q:AttachmentEncoded>
<q:edXMLEnvelope><q:edXMLBody><q:edXMLManifest version="1.0"><q:Reference><q:AttachmentName>qd-1234.pdf</q:AttachmentName><q:ContentId>cid:1</q:ContentId></q:Reference></q:edXMLManifest></q:edXMLBody>
<q:edXMLHeader>
<q:TraceHeaderList><q:TraceHeader><q:Timestamp>2026/11/30 08:15:00</q:Timestamp><q:OrganId>000.00.12.H41</q:OrganId></q:TraceHeader></q:TraceHeaderList>
<q:MessageHeader>
<q:Subject>Về việc <![CDATA[A & B]]></q:Subject>
<q:To><q:OrganId>000.00.00.G22</q:OrganId></q:To>
<q:From><q:OrganName>VP</q:OrganName><q:OrganId>000.00.12.H41</q:OrganId></q:From>
<q:ToPlaces><q:Place>Lưu</q:Place></q:ToPlaces>
<q:OtherInfo><q:PageAmount>2</q:PageAmount><q:Priority>0</q:Priority></q:OtherInfo>
<q:DocumentType><q:TypeName>Quyết định</q:TypeName><q:Type>1</q:Type></q:DocumentType>
<q:PromulgationInfo><q:PromulgationDate>2026/11/30</q:PromulgationDate><q:Place>Huế</q:Place></q:PromulgationInfo>
<q:Code><q:CodeNotation>QĐ-UBND</q:CodeNotation><q:CodeNumber>1234</q:CodeNumber></q:Code>
<q:DocumentId>000.00.12.H41,2026/11/30,1234/QĐ-UBND</q:DocumentId>
</q:MessageHeader>
</q:edXMLHeader></q:edXMLEnvelope></q:edXML>"#;
    let read = read_text(text).unwrap();
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let mut expected = minimal_envelope();
    expected.header.from.organ_name = Some("VP".into());
    expected.header.subject = "Về việc A & B".into();
    expected.header.to_places = vec!["Lưu".into()];
    expected.header.other_info = Some(OtherInfo {
        priority: Some("0".into()),
        page_amount: Some("2".into()),
        ..OtherInfo::default()
    });
    expected.header.document_type.type_name = Some("Quyết định".into());
    expected.trace.trace_headers = full_envelope().trace.trace_headers;
    expected.manifest = vec![ManifestReference {
        content_id: "cid:1".into(),
        content_type: None,
        description: None,
        attachment_name: Some("qd-1234.pdf".into()),
    }];
    let mut attachment = full_envelope().attachments.remove(0);
    attachment.description = None;
    expected.attachments = vec![attachment];
    assert_eq!(envelope_of(&read), &expected);
}

#[test]
fn a_signature_is_found_only_in_the_header_N6() {
    let written = write(&full_envelope()).unwrap();
    let signed = written.with_signature(SIG);
    let read = read_text(&signed).unwrap();
    assert!(read.signature.is_some() && read.signature_verifiable());
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    assert_eq!(read.message, Message::Envelope(Box::new(full_envelope())));

    // Not last in the header: read, with a warning.
    let early = replace_once(
        &written.text,
        "<edXML:MessageHeader>",
        &format!("{SIG}<edXML:MessageHeader>"),
    );
    let read = read_text(&early).unwrap();
    assert!(read.signature.is_some());
    assert!(read.warnings.iter().any(|w| w.contains("not the last")));

    // Two signatures: which one would the verifier take?
    let two = written.with_signature(&format!("{SIG}{SIG}"));
    assert!(matches!(read_text(&two), Err(EdxmlError::Ambiguous(_))));
    // One in the header, one hidden among the attachments.
    let hidden = replace_once(
        &signed,
        "</AttachmentEncoded>",
        &format!("<Attachment>{SIG}</Attachment></AttachmentEncoded>"),
    );
    assert!(matches!(read_text(&hidden), Err(EdxmlError::Ambiguous(_))));
    // Anywhere but a child of the header.
    for (at, with) in [
        (
            "</edXML:MessageHeader>",
            format!("{SIG}</edXML:MessageHeader>"),
        ),
        (
            "</edXML:edXMLEnvelope>",
            format!("{SIG}</edXML:edXMLEnvelope>"),
        ),
        ("</edXML>", format!("{SIG}</edXML>")),
        ("</Attachment>", format!("{SIG}</Attachment>")),
    ] {
        let moved = replace_once(&written.text, at, &with);
        assert!(
            matches!(read_text(&moved), Err(EdxmlError::Format(_))),
            "signature before {at} accepted"
        );
    }
}

#[test]
fn a_signature_in_the_qcvn_namespace_is_read_but_not_verifiable_N6() {
    let written = write(&full_envelope()).unwrap();
    let wrong = written.with_signature("<Signature><SignedInfo/></Signature>");
    let read = read_text(&wrong).unwrap();
    assert_eq!(read.signature, None);
    assert!(read.qcvn_signature.is_some());
    assert!(!read.signature_verifiable());
    assert!(
        read.warnings.iter().any(|w| w.contains(QCVN_NS)),
        "{:?}",
        read.warnings
    );
    assert_eq!(read.message, Message::Envelope(Box::new(full_envelope())));
    let both = written.with_signature(&format!("<Signature/>{SIG}"));
    assert!(matches!(read_text(&both), Err(EdxmlError::Ambiguous(_))));
}

#[test]
fn repeated_singletons_are_ambiguous_N6() {
    let text = write(&full_envelope()).unwrap().text;
    for (at, extra) in [
        ("<edXML:MessageHeader>", "<Subject>Khác</Subject>"),
        (
            "<edXML:MessageHeader>",
            "<From><OrganId>000.00.00.H34</OrganId></From>",
        ),
        (
            "<edXML:MessageHeader>",
            "<DocumentId>000.00.00.H34,2026/01/01,1/X</DocumentId>",
        ),
        (
            "<edXML:MessageHeader>",
            "<Code><CodeNumber>1</CodeNumber><CodeNotation>X</CodeNotation></Code>",
        ),
        ("<edXML:edXMLHeader>", "<edXML:MessageHeader/>"),
        ("<edXML:edXMLEnvelope>", "<edXML:edXMLHeader/>"),
        ("<edXML:edXMLEnvelope>", "<edXML:edXMLBody/>"),
        (
            "</edXML:edXMLEnvelope>",
            "<edXML:edXMLEnvelope><edXML:edXMLHeader/></edXML:edXMLEnvelope>",
        ),
        ("<edXML:edXMLBody>", "<edXML:edXMLManifest/>"),
        ("<edXML:edXMLHeader>", "<edXML:TraceHeaderList/>"),
        (
            "<AttachmentEncoded>",
            "</AttachmentEncoded><AttachmentEncoded>",
        ),
        ("<Attachment>", "<ContentType>application/zip</ContentType>"),
    ] {
        let bad = replace_once(&text, at, &format!("{at}{extra}"));
        assert!(
            matches!(read_text(&bad), Err(EdxmlError::Ambiguous(_))),
            "{extra} after {at} accepted"
        );
    }
}

#[test]
fn attachments_and_manifest_must_agree_N6() {
    let mut envelope = full_envelope();
    let mut second = envelope.attachments[0].clone();
    envelope.attachments.push(second.clone());
    // write() does not check uniqueness; the reader refuses it.
    let text = write(&envelope).unwrap().text;
    assert!(matches!(read_text(&text), Err(EdxmlError::Ambiguous(_))));

    // A manifest entry with no attachment.
    let text = write(&full_envelope()).unwrap().text;
    let bad = replace_once(
        &text,
        "<ContentId>cid:1</ContentId>\n          <ContentType>",
        "<ContentId>cid:9</ContentId>\n          <ContentType>",
    );
    assert!(matches!(read_text(&bad), Err(EdxmlError::Format(_))));

    // An attachment the manifest does not list, a declared type the bytes contradict.
    let mut envelope = full_envelope();
    second.content_id = "cid:2".into();
    second.content_type = "application/pdf".into();
    second.data = b"PK\x03\x04zip".to_vec();
    envelope.attachments.push(second);
    envelope.manifest[0].content_type = Some("application/msword".into());
    let read = read_text(&write(&envelope).unwrap().text).unwrap();
    assert_eq!(read.warnings.len(), 3, "{:?}", read.warnings);
    assert_eq!(envelope_of(&read), &envelope);
}

#[test]
fn attachment_count_and_size_are_bounded() {
    let mut envelope = full_envelope();
    for i in 2..=4 {
        let mut a = envelope.attachments[0].clone();
        a.content_id = format!("cid:{i}");
        envelope.attachments.push(a);
    }
    let text = write(&envelope).unwrap().text;
    let limits = EdxmlLimits {
        max_attachments: 3,
        ..EdxmlLimits::default()
    };
    assert!(matches!(
        read_bytes(text.as_bytes(), &limits),
        Err(EdxmlError::Limit {
            what: "attachments",
            ..
        })
    ));
    let limits = EdxmlLimits {
        max_attachment_bytes: pdf().len() - 1,
        ..EdxmlLimits::default()
    };
    assert!(matches!(
        read_bytes(text.as_bytes(), &limits),
        Err(EdxmlError::Limit { .. })
    ));
    let limits = EdxmlLimits {
        max_attachments_total_bytes: pdf().len() * 4 - 1,
        ..EdxmlLimits::default()
    };
    assert!(matches!(
        read_bytes(text.as_bytes(), &limits),
        Err(EdxmlError::Limit { .. })
    ));
    let limits = EdxmlLimits {
        max_attachments_total_bytes: pdf().len() * 4,
        ..EdxmlLimits::default()
    };
    assert!(read_bytes(text.as_bytes(), &limits).is_ok());
}

#[test]
fn unknown_elements_are_warnings_and_prefixes_never_match_N6() {
    let text = write(&full_envelope()).unwrap().text;
    let extra = replace_once(
        &text,
        "<edXML:MessageHeader>",
        r#"<edXML:MessageHeader><Novelty>x</Novelty><o:Subject xmlns:o="urn:other">y</o:Subject>"#,
    );
    let read = read_text(&extra).unwrap();
    assert_eq!(read.warnings.len(), 2, "{:?}", read.warnings);
    assert_eq!(envelope_of(&read), &full_envelope());

    // `edXML:` bound to another namespace: its Subject is not the header's Subject.
    let rebound = replace_once(
        &text,
        "<edXML:MessageHeader>",
        r#"<edXML:MessageHeader xmlns:edXML="urn:other">"#,
    );
    let rebound = replace_once(&rebound, "</edXML:MessageHeader>", "</edXML:MessageHeader>");
    assert!(matches!(read_text(&rebound), Err(EdxmlError::Format(_))));
    // The default namespace emptied: `Subject` is no QCVN element any more.
    let unqualified = replace_once(&text, "<Subject>", r#"<Subject xmlns="">"#);
    assert!(matches!(
        read_text(&unqualified),
        Err(EdxmlError::Format(_))
    ));
}

#[test]
fn malformed_structure_is_refused_N6() {
    let text = write(&full_envelope()).unwrap().text;
    let cases: Vec<(String, &str)> = vec![
        (
            replace_once(&text, "<Subject>  Về", "<Subject>  <!--x-->Về"),
            "comment",
        ),
        (
            replace_once(&text, "<Subject>  Về", "<Subject>  <?pi x?>Về"),
            "PI",
        ),
        (
            replace_once(&text, "<edXML:MessageHeader>", "<edXML:MessageHeader>stray"),
            "text",
        ),
        (
            replace_once(&text, "<Subject>  Về", "<Subject><b>x</b>  Về"),
            "element in a value",
        ),
        (
            replace_once(&text, "<Subject>", "<Content>").replacen("</Subject>", "</Content>", 1),
            "no Subject",
        ),
        (
            text.replace("<To>", "<Cc>").replace("</To>", "</Cc>"),
            "no To",
        ),
        (
            replace_once(&text, "2026/11/30,1234", "2026/13/30,1234"),
            "bad date",
        ),
        (
            replace_once(&text, "2026/11/30,1234/QĐ-UBND", "2026/11/30,1234"),
            "no notation",
        ),
        (
            text.replacen(
                "<OrganId>000.00.00.G22</OrganId>",
                "<OrganId>G22</OrganId>",
                1,
            ),
            "bad code",
        ),
        (
            replace_once(&text, "2026/11/30 08:15:00", "2026/11/30 25:15:00"),
            "bad time",
        ),
        (
            replace_once(&text, "<BussinessDocType>0<", "<BussinessDocType>7<"),
            "bad business type",
        ),
        (replace_once(&text, "JVBERi0x", "JVBER!0x"), "bad base64"),
        (
            text.replace("<edXML ", "<edXMLX ")
                .replace("</edXML>", "</edXMLX>"),
            "wrong root",
        ),
    ];
    for (bad, what) in cases {
        assert!(read_text(&bad).is_err(), "{what} accepted");
    }
    // A status message with a body or attachments is not a status message.
    let status = write_status(&status(StatusCode::Refused)).unwrap().text;
    let with_body = replace_once(
        &status,
        "</edXML:edXMLEnvelope>",
        "<edXML:edXMLBody/></edXML:edXMLEnvelope>",
    );
    assert!(matches!(read_text(&with_body), Err(EdxmlError::Format(_))));
}

#[test]
fn the_writer_refuses_what_would_not_read_back() {
    let mut e = full_envelope();
    e.header.subject = "a\u{1}b".into();
    assert!(write(&e).is_err());
    let mut e = full_envelope();
    e.header.document_id.number = "12/34".into();
    assert!(write(&e).is_err());
    let mut e = full_envelope();
    e.header.to.clear();
    assert!(write(&e).is_err());
    let mut e = full_envelope();
    e.manifest[0].content_id = "cid:7".into();
    assert!(write(&e).is_err());
    let mut e = full_envelope();
    e.header.promulgation_info.promulgation_date = date!(-0001 - 01 - 01);
    assert!(write(&e).is_err());
}
