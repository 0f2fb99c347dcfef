//! W1 -> send (N6): an issued document sent as an edXML envelope sealed by the signer on the
//! test cluster (SoftHSM2 behind `p11-kit server`, the registry deciding). The envelope kyso
//! sealed passes `xmlsec1 --verify`, signxml and `kyso verify`; a tampered one fails in both
//! peers; the header comes from the outgoing register entry and the attachment is the issued
//! original; a document not in the outgoing register is refused (W1); the seal over an edXML
//! message is never made by SignPdf or SignCms (N6); the audit log holds the seal.

use kyso_edxml::EdxmlLimits;
use kyso_edxml::envelope::{Message, read_bytes};
use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::signer::v1 as pb;
use kyso_tests::cluster::{Cluster, change};
use kyso_tests::pdf_peers::{Peers, SampleKind};
use kyso_tests::xml_peers::{signxml_verify, xmlsec_verify};
use serde_json::json;
use tonic::Code;

use crate::documents::{kyso_doc, sha256_hex};
use crate::sign::{audit_lines, status_rules};

/// The People's Committee's organisation code (Decision 20/2020).
const UBND_CODE: &str = "000.00.00.H34";
/// The recipients: the Government Office and the Ministry of Finance.
const RECIPIENTS: [&str; 2] = ["000.00.00.G22", "000.00.00.G09"];

/// The sample decision issued by the People's Committee through `kyso doc issue` (W1): the
/// chairman's approval, the clerk's seal, the outgoing register; the issued original.
pub(crate) fn issue(c: &Cluster, number: &str) -> Vec<u8> {
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let dir = c.dir.path();
    let input = dir.join("draft.pdf");
    std::fs::write(&input, &sample.bytes).unwrap();
    let b = &sample.signature_block.signature_box;
    let rect = format!(
        "{},{},{},{},{}",
        sample.signature_block.page, b.x1, b.y1, b.x2, b.y2
    );
    let issued = dir.join(format!("{}.pdf", number.replace('/', "_")));
    let today = Cluster::today();
    let (code, out) = kyso_doc(
        c,
        &[
            "issue",
            input.to_str().unwrap(),
            "--out",
            issued.to_str().unwrap(),
            "--organisation",
            &c.province.ubnd,
            "--document-type",
            "QD",
            "--number",
            number,
            "--issue-date",
            &today,
            "--approval-key",
            "chairman",
            "--approver",
            &c.province.chairman,
            "--approval-rect",
            &rect,
            "--seal-key",
            "seal",
            "--custodian",
            &c.province.clerk,
            "--recipients",
            "Văn phòng Chính phủ",
        ],
    );
    assert_eq!(code, 0, "kyso doc issue: {out}");
    std::fs::read(&issued).unwrap()
}

fn send_request(c: &Cluster, sha256: &str) -> dpb::SendOutgoingRequest {
    dpb::SendOutgoingRequest {
        organisation_id: c.province.ubnd.clone(),
        sha256: sha256.to_owned(),
        recipients: RECIPIENTS.iter().map(|s| (*s).to_owned()).collect(),
        seal_key: "seal".into(),
        custodian_person_id: c.province.clerk.clone(),
        subject: "Về việc ban hành quy chế & <thử>".into(),
        place: "Khánh Hòa".into(),
        idempotency_key: format!("send-{sha256}"),
        ..Default::default()
    }
}

/// The envelope of an issued decision: its header from the outgoing register entry and the
/// registry, the issued original attached, sealed last by the clerk with the organisation's
/// key; xmlsec1, signxml and `kyso verify` accept it, and reject it tampered; a retry gives
/// the same envelope; the audit log records the seal (sha256-in-out, EXCHANGE) and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_documents_are_sent_as_sealed_envelopes_the_peers_verify_W1_N6() {
    let c = Cluster::start().await;
    c.registry
        .ok(
            &["update-organisation"],
            json!({"change": change("codes"), "organisation_id": c.province.ubnd,
                   "code": UBND_CODE}),
        )
        .await;
    let number = "123/QĐ-UBND";
    let issued = issue(&c, number);
    let issued_sha = sha256_hex(&issued);
    let mut docs = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap();
    let sent = docs
        .send_outgoing(send_request(&c, &issued_sha))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.envelope_sha256, sha256_hex(&sent.envelope));
    assert_eq!(sent.register_number, 1, "{sent:?}");
    let text = String::from_utf8(sent.envelope.clone()).unwrap();

    // The header as the register and the registry have it; the attachment is the original.
    let read = read_bytes(&sent.envelope, &EdxmlLimits::default()).unwrap();
    assert!(read.signature.is_some(), "the envelope is signed");
    let Message::Envelope(env) = read.message else {
        panic!("not an envelope")
    };
    let h = &env.header;
    assert_eq!(h.from.organ_id.to_string(), UBND_CODE);
    assert_eq!(
        h.from.organ_name.as_deref(),
        Some("Ủy ban nhân dân tỉnh Khánh Hòa")
    );
    let to: Vec<String> = h.to.iter().map(|o| o.organ_id.to_string()).collect();
    assert_eq!(to, RECIPIENTS);
    assert_eq!(
        (h.code.code_number.as_str(), h.code.code_notation.as_str()),
        ("123", "QĐ-UBND")
    );
    let today = Cluster::today().replace('-', "/");
    assert_eq!(
        h.document_id.to_string(),
        format!("{UBND_CODE},{today},123/QĐ-UBND")
    );
    assert_eq!(h.document_type.doc_type, "QD");
    assert_eq!(h.subject, "Về việc ban hành quy chế & <thử>");
    assert_eq!(h.promulgation_info.place, "Khánh Hòa");
    assert_eq!(env.trace.trace_headers.len(), 1);
    assert_eq!(env.trace.trace_headers[0].organ_id.to_string(), UBND_CODE);
    assert_eq!(env.attachments.len(), 1);
    assert_eq!(
        env.attachments[0].data, issued,
        "the issued original, unchanged"
    );
    assert_eq!(env.manifest[0].content_id, env.attachments[0].content_id);

    // The peers: xmlsec1 (the test PKI's root trusted) and signxml accept it ...
    assert!(xmlsec_verify(&c.pki, &text), "xmlsec1 --verify");
    assert!(signxml_verify(&c.pki, &text), "signxml verify");
    // ... and kyso's own verifier, with the test PKI's revocation servers.
    let verdict = c.kyso_verify(&sent.envelope, None);
    assert_eq!(verdict["indication"], "TOTAL_PASSED", "{verdict:#}");
    assert_eq!(verdict["signatures"][0]["part"], "envelope", "{verdict:#}");
    // Tampered (the subject, and the attachment's bytes): both peers refuse it.
    let subject = text.replace("ban hành quy chế", "ban hành quy chê");
    let b64 = {
        use base64ct::Encoding;
        base64ct::Base64::encode_string(&issued)
    };
    // One base64 digit of the attached PDF changed (its 100th).
    let at = text.find(&b64).unwrap() + 100;
    let flipped = if &text[at..=at] == "A" { "B" } else { "A" };
    let attachment = format!("{}{flipped}{}", &text[..at], &text[at + 1..]);
    for (what, tampered) in [("subject", subject), ("attachment", attachment)] {
        assert!(tampered != text, "{what}: changed");
        assert!(!xmlsec_verify(&c.pki, &tampered), "{what}: xmlsec1");
        assert!(!signxml_verify(&c.pki, &tampered), "{what}: signxml");
    }

    // A retry with the same key, through `kyso doc send`: the same envelope, no second seal.
    let again = c.dir.path().join("again.edxml");
    let (code, out) = kyso_doc(
        &c,
        &[
            "send",
            &issued_sha,
            "--out",
            again.to_str().unwrap(),
            "--organisation",
            &c.province.ubnd,
            "--seal-key",
            "seal",
            "--custodian",
            &c.province.clerk,
            "--to",
            RECIPIENTS[0],
            "--to",
            RECIPIENTS[1],
            "--subject",
            "Về việc ban hành quy chế & <thử>",
            "--place",
            "Khánh Hòa",
            "--idempotency-key",
            &format!("send-{issued_sha}"),
        ],
    );
    assert_eq!(code, 0, "kyso doc send: {out}");
    assert_eq!(std::fs::read(&again).unwrap(), sent.envelope);
    assert_eq!(out["envelope_sha256"], json!(sent.envelope_sha256));
    assert_eq!(
        out["audit_sequence"],
        json!(sent.audit.as_ref().unwrap().sequence)
    );

    // D7: the envelope is kept with the organisation's originals.
    let stored = docs
        .get_document(dpb::GetDocumentRequest {
            sha256: sent.envelope_sha256.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.pdf, sent.envelope);

    // The audit log: one EXCHANGE seal by the clerk, binding the unsigned text and the
    // envelope (sha256-in-out); the log verifies.
    let seq = sent.audit.as_ref().unwrap().sequence;
    let lines = audit_lines(&c.audit_path());
    let exchange: Vec<_> = lines
        .iter()
        .filter(|l| l["entry"]["profile"] == "PROFILE_EXCHANGE")
        .collect();
    assert_eq!(exchange.len(), 1, "{exchange:?}");
    let e = &exchange[0];
    assert_eq!(e["seq"], seq);
    assert_eq!(e["entry"]["decision"], "signed");
    assert_eq!(e["entry"]["digest_alg"], "sha256-in-out");
    assert_eq!(e["entry"]["key"], "seal");
    assert_eq!(e["entry"]["acting_person_id"], json!(c.province.clerk));
    assert_eq!(e["entry"]["number_and_symbol"], number);
    assert!(
        e["entry"]["digest"]
            .as_str()
            .unwrap()
            .ends_with(&sent.envelope_sha256),
        "{e}"
    );
    let out = c.kyso_audit_verify(&c.audit_path());
    assert!(out.success(), "kyso audit verify: {}", out.stderr_str());
}

/// Refusals: a document not in the organisation's outgoing register is not sent (W1), bad
/// recipients and a missing code are bad input, and the seal over an edXML message is never
/// made by SignPdf or SignCms, whatever the caller (N6); each refusal is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_registered_outgoing_documents_are_sealed_for_the_exchange_W1_N6() {
    let c = Cluster::start().await;
    let mut docs = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap();
    // Not in the outgoing register (an incoming entry does not count either).
    let received = "ab".repeat(32);
    c.register_document(&c.province.ubnd, "INCOMING", "9/QĐ-BTC", &received)
        .await;
    for sha in ["cd".repeat(32), received] {
        let err = docs
            .send_outgoing(send_request(&c, &sha))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert_eq!(status_rules(&err), "W1", "{err:?}");
    }
    // Bad input: a recipient that is not an organisation code, no recipient, no subject.
    let mut bad = send_request(&c, &"cd".repeat(32));
    bad.recipients = vec!["Văn phòng Chính phủ".into()];
    let mut none = send_request(&c, &"cd".repeat(32));
    none.recipients.clear();
    let mut no_subject = send_request(&c, &"cd".repeat(32));
    no_subject.subject = " ".into();
    for r in [bad, none, no_subject] {
        let err = docs.send_outgoing(r).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    // Registered and issued, but the organisation has no code yet: nothing to put in From.
    let issued = issue(&c, "7/QĐ-UBND");
    let err = docs
        .send_outgoing(send_request(&c, &sha256_hex(&issued)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("organisation code"), "{err:?}");

    // SignPdf and SignCms never make the seal of an envelope or a status message (N6).
    let mut signer = c.client().await;
    let before = audit_lines(&c.audit_path()).len();
    for profile in [pb::Profile::Exchange, pb::Profile::Status] {
        let err = signer
            .sign_pdf(pb::SignPdfRequest {
                key: "seal".into(),
                context: Some(c.ctx(profile, &c.province.clerk)),
                pdf: issued.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{profile:?}: {err:?}");
        assert_eq!(status_rules(&err), "N6", "{profile:?}: {err:?}");
        let mut cms = c.issue(b"<edXML/>");
        cms.context = Some(c.ctx(profile, &c.province.clerk));
        let err = signer.sign_cms(cms).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{profile:?}: {err:?}");
        assert_eq!(status_rules(&err), "N6", "{profile:?}: {err:?}");
    }
    let refused: Vec<_> = audit_lines(&c.audit_path())
        .into_iter()
        .skip(before)
        .filter(|l| l["entry"]["decision"] == "refused")
        .collect();
    assert_eq!(refused.len(), 4, "each refusal recorded: {refused:?}");
    assert!(
        refused.iter().all(|l| l["entry"]["rules"] == json!(["N6"])),
        "{refused:?}"
    );
}
