//! The exchange axis end to end (N6, W3, W4, V5, N5): two provinces' clusters under one test
//! root (two registries, two signers, two SoftHSM tokens behind their own `p11-kit server`),
//! the envelopes and status messages carried between them by the test as the exchange would.
//! Province A (Khánh Hòa) issues and sends; province B (Phú Yên) receives, stamps and
//! answers 03; a tampered envelope is answered 02 with its reasons, which reach A's register;
//! A takes a document back and B confirms 15; an envelope from a third organisation that
//! neither registry holds (a ministry, signed with `xmlsec1`) is accepted with "authority
//! not checked".

use std::process::Command;

use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::registry::v1 as reg;
use kyso_tests::cluster::{Cluster, KHANH_HOA, PHU_YEN, Site};
use kyso_tests::hsm::workspace_bin;
use serde_json::Value;

const A_CODE: &str = "000.00.00.H41";
const B_CODE: &str = "000.00.00.H54";

async fn documents(c: &Cluster) -> DocumentsClient<tonic::transport::Channel> {
    DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap()
}

async fn registry(c: &Cluster) -> reg::registry_client::RegistryClient<tonic::transport::Channel> {
    reg::registry_client::RegistryClient::connect(c.registry.url())
        .await
        .unwrap()
}

/// W1 through `kyso doc issue` (approved by the Chairman, sealed by the clerk, in the
/// outgoing register): the issued original's SHA-256.
fn issue(c: &Cluster, number: &str) -> String {
    hex::encode(kyso_pki::crypto::sha256(&crate::exchange_seal::issue(
        c, number,
    )))
}

/// A sends the issued document `sha256` to `to` on the exchange: the sealed envelope.
async fn send(a: &Cluster, sha256: &str, to: &[&str]) -> Vec<u8> {
    documents(a)
        .await
        .send_outgoing(dpb::SendOutgoingRequest {
            organisation_id: a.province.ubnd.clone(),
            sha256: sha256.to_owned(),
            recipients: to.iter().map(|s| s.to_string()).collect(),
            seal_key: "seal".into(),
            custodian_person_id: a.province.clerk.clone(),
            subject: "Quyết định về việc ban hành quy chế".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .envelope
}

async fn receive(b: &Cluster, envelope: Vec<u8>) -> dpb::ReceiveEnvelopeResponse {
    documents(b)
        .await
        .receive_envelope(dpb::ReceiveEnvelopeRequest {
            envelope,
            organisation_id: b.province.ubnd.clone(),
            seal_key: "seal".into(),
            custodian_person_id: b.province.clerk.clone(),
            document_type: "QD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn status(
    c: &Cluster,
    message: &dpb::SignedStatus,
) -> Result<dpb::ReceiveStatusResponse, tonic::Status> {
    documents(c)
        .await
        .receive_status(dpb::ReceiveStatusRequest {
            status: message.xml.clone(),
            organisation_id: c.province.ubnd.clone(),
            seal_key: "seal".into(),
            custodian_person_id: c.province.clerk.clone(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn history(c: &Cluster, entry: &str) -> Vec<(String, i32, String, String)> {
    registry(c)
        .await
        .list_document_status(reg::ListDocumentStatusRequest {
            organisation_id: c.province.ubnd.clone(),
            register_entry_id: entry.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .statuses
        .into_iter()
        .map(|s| (s.code, s.direction, s.counterparty_code, s.description))
        .collect()
}

async fn unconfirmed(c: &Cluster) -> Vec<(String, String, String)> {
    registry(c)
        .await
        .list_unconfirmed(reg::ListUnconfirmedRequest {
            organisation_id: c.province.ubnd.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .documents
        .into_iter()
        .map(|u| {
            (
                u.entry.map(|e| e.sha256).unwrap_or_default(),
                u.counterparty_code,
                u.last_code,
            )
        })
        .collect()
}

/// The statuses' codes.
fn codes(s: &[dpb::SignedStatus]) -> Vec<&str> {
    s.iter().map(|s| s.code.as_str()).collect()
}

const SENT: i32 = reg::StatusDirection::Sent as i32;
const RECEIVED: i32 = reg::StatusDirection::Received as i32;

/// Two provinces on one root: send, receive and 03; a tampered envelope and its 02 with
/// the reasons in the sender's register; the sender's unconfirmed view (W4) until the
/// answer; take-back 13 and its 15, the copies deleted; an unknown status code refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_provinces_exchange_envelopes_and_statuses_N6_W3_W4_V5_N5_N3() {
    let a = Cluster::start_province(Site {
        code: Some(A_CODE),
        ..KHANH_HOA
    })
    .await;
    let b = a.start_neighbour(PHU_YEN, "").await;

    // A issues and sends; until B answers, A's unconfirmed view holds it (W4).
    let first = issue(&a, "15/QĐ-UBND");
    let envelope = send(&a, &first, &[B_CODE]).await;
    assert_eq!(
        unconfirmed(&a).await,
        [(first.clone(), B_CODE.to_owned(), String::new())]
    );

    // B receives: 01 then 03 with the incoming number; A's signers are outside B's registry.
    let got = receive(&b, envelope.clone()).await;
    assert!(got.accepted, "{:?}", got.problems);
    assert_eq!(codes(&got.statuses), ["01", "03"]);
    assert_eq!((got.sender_code.as_str(), got.incoming_number), (A_CODE, 1));
    assert_eq!(got.number_and_symbol, "15/QĐ-UBND");
    assert!(
        got.signatures
            .iter()
            .all(|s| s.outcome == reg::AuthorityOutcome::Outside as i32),
        "{:?}",
        got.signatures
    );
    assert_eq!(got.signatures[0].field_name, "edXML");
    assert!(!got.pdf.is_empty());
    // N3, D7: the verification is kept with the envelope and the stamped document, in the
    // audit log before the answer, and GetDocument returns it.
    let kept = got.evidence.clone().expect("evidence kept");
    let report: dpb::VerificationEvidence =
        prost::Message::decode(kept.evidence.as_slice()).unwrap();
    assert!(report.accepted);
    assert_eq!(
        (report.received_sha256.as_str(), report.sha256.as_str()),
        (got.envelope_sha256.as_str(), got.sha256.as_str())
    );
    assert!(matches!(
        report.report,
        Some(dpb::verification_evidence::Report::Edxml(_))
    ));
    let stored = documents(&b)
        .await
        .get_document(dpb::GetDocumentRequest {
            sha256: got.envelope_sha256.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.evidence, [kept]);

    // A takes 01 (still unconfirmed) then 03 (confirmed): W4.
    let r01 = status(&a, &got.statuses[0]).await.unwrap();
    assert_eq!(r01.code, "01");
    assert_eq!(unconfirmed(&a).await.len(), 1);
    assert_eq!(unconfirmed(&a).await[0].2, "01");
    status(&a, &got.statuses[1]).await.unwrap();
    assert!(unconfirmed(&a).await.is_empty());
    let sent_entry = r01.register_entry_id.clone();

    // A tampered envelope (a header text changed after signing): 02 with the reasons, which
    // reach A's register; B registers it as refused.
    let second = issue(&a, "16/QĐ-UBND");
    let envelope2 = send(&a, &second, &[B_CODE]).await;
    let text = String::from_utf8(envelope2).unwrap();
    let tampered = text.replacen("ban hành quy chế", "ban hành quy chế mới", 1);
    assert_ne!(text, tampered);
    let refused = receive(&b, tampered.into_bytes()).await;
    assert!(!refused.accepted);
    assert_eq!(codes(&refused.statuses), ["01", "02"]);
    assert!(
        refused
            .problems
            .iter()
            .any(|p| p.field_name == "edXML" && p.rule == "V1"),
        "{:?}",
        refused.problems
    );
    let r02 = status(&a, &refused.statuses[1]).await.unwrap();
    let h = history(&a, &r02.register_entry_id).await;
    let answer = h.iter().find(|s| s.0 == "02").expect("02 in A's history");
    assert_eq!((answer.1, answer.2.as_str()), (RECEIVED, B_CODE));
    assert!(answer.3.contains("V1"), "the reasons reach A: {answer:?}");

    // Take-back: 13 to B, B deletes its copies and answers 15, A records it.
    let back = documents(&a)
        .await
        .take_back(dpb::TakeBackRequest {
            organisation_id: a.province.ubnd.clone(),
            sha256: first.clone(),
            reason: "Sai sót về thể thức".into(),
            seal_key: "seal".into(),
            custodian_person_id: a.province.clerk.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&back.statuses), ["13"]);
    let at_b = status(&b, &back.statuses[0]).await.unwrap();
    let reply = at_b.answer.expect("an answer to 13");
    assert_eq!(reply.code, "15");
    assert_eq!(at_b.register_entry_id, got.register_entry_id);
    let gone = documents(&b)
        .await
        .get_document(dpb::GetDocumentRequest {
            sha256: got.sha256.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    status(&a, &reply).await.unwrap();
    let h: Vec<(String, i32)> = history(&a, &sent_entry)
        .await
        .into_iter()
        .map(|s| (s.0, s.1))
        .collect();
    let want: Vec<(String, i32)> = [
        ("", SENT),
        ("01", RECEIVED),
        ("03", RECEIVED),
        ("13", SENT),
        ("15", RECEIVED),
    ]
    .iter()
    .map(|(c, d)| (c.to_string(), *d))
    .collect();
    assert_eq!(h, want);
    let hb: Vec<String> = history(&b, &got.register_entry_id)
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(hb, ["", "01", "03", "13", "15"]);

    // N6: a status code without a known meaning is refused, nothing recorded.
    let text = String::from_utf8(got.statuses[1].xml.clone()).unwrap();
    let unknown = text.replacen(">03<", ">07<", 1);
    assert_ne!(text, unknown);
    let err = status(
        &a,
        &dpb::SignedStatus {
            xml: unknown.into_bytes(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(history(&a, &sent_entry).await.len(), 5);
}

/// The ministry's unsigned envelope to province B carrying `pdf`, with an xmlsec1 signature
/// template as the header's last child (as the exchange's own builders lay it out).
fn ministry_envelope(pdf: &[u8]) -> String {
    use base64ct::Encoding;
    let b64 = base64ct::Base64::encode_string(pdf);
    let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
    let date = format!(
        "{:04}/{:02}/{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXML xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope>
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>000.00.00.G15</edXML:OrganId><edXML:OrganName>Bộ Y tế</edXML:OrganName></edXML:From>
        <edXML:To><edXML:OrganId>{B_CODE}</edXML:OrganId></edXML:To>
        <edXML:DocumentId>000.00.00.G15,{date},77/BYT-KCB</edXML:DocumentId>
        <edXML:Code><edXML:CodeNumber>77</edXML:CodeNumber><edXML:CodeNotation>BYT-KCB</edXML:CodeNotation></edXML:Code>
        <edXML:PromulgationInfo><edXML:Place>Hà Nội</edXML:Place><edXML:PromulgationDate>{date}</edXML:PromulgationDate></edXML:PromulgationInfo>
        <edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeName>Quyết định</edXML:TypeName></edXML:DocumentType>
        <edXML:Subject>Về việc hướng dẫn khám chữa bệnh</edXML:Subject>
      </edXML:MessageHeader>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>
 <ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
 <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
 <ds:Reference URI=""><ds:Transforms>
  <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
  <ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/></ds:Transforms>
  <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/>
 </ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
</ds:Signature>
    </edXML:edXMLHeader>
    <edXML:edXMLBody>
      <edXML:edXMLManifest version="1.0">
        <edXML:Reference><edXML:ContentId>cid:1</edXML:ContentId><edXML:ContentType>application/pdf</edXML:ContentType><edXML:AttachmentName>77-BYT-KCB.pdf</edXML:AttachmentName></edXML:Reference>
      </edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <edXML:AttachmentEncoded>
    <edXML:Attachment><edXML:ContentId>cid:1</edXML:ContentId><edXML:AttachmentName>77-BYT-KCB.pdf</edXML:AttachmentName><edXML:ContentType>application/pdf</edXML:ContentType><edXML:ContentTransferEncoded>{b64}</edXML:ContentTransferEncoded></edXML:Attachment>
  </edXML:AttachmentEncoded>
</edXML:edXML>
"#
    )
}

/// A4, N6: an envelope from a ministry neither registry holds (its seal from the same root,
/// the envelope signed with `xmlsec1`, the PDF inside with pyHanko) is verified and accepted
/// at B with "outside this registry: authority not checked" for both signatures, the 03
/// addressed to the ministry; the same envelope addressed elsewhere is refused (N5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_from_an_organisation_no_registry_holds_is_accepted_unchecked_N6_N5() {
    let b = Cluster::start_province(PHU_YEN).await;
    let ministry = crate::outside::outside_leaf(&b, "moh", crate::outside::MINISTRY);
    let pdf = std::fs::read(crate::outside::signed_sample(&b, &ministry, "moh.pdf")).unwrap();
    let sign = |doc: &str| {
        let dir = tempfile::tempdir().unwrap();
        let tmpl = dir.path().join("tmpl.xml");
        let out = dir.path().join("out.xml");
        std::fs::write(&tmpl, doc).unwrap();
        let keys = format!(
            "{},{},{}",
            ministry.key.display(),
            ministry.cert.display(),
            ministry.chain[0].display()
        );
        let o = kyso_tests::xml_peers::xmlsec1(&[
            &"--sign",
            &"--privkey-pem",
            &keys,
            &"--output",
            &out,
            &tmpl,
        ]);
        assert!(o.success(), "xmlsec1 --sign: {}", o.stderr_str());
        std::fs::read(&out).unwrap()
    };
    let envelope = sign(&ministry_envelope(&pdf));

    let got = receive(&b, envelope).await;
    assert!(got.accepted, "{:?}", got.problems);
    assert_eq!(got.sender_code, "000.00.00.G15");
    assert_eq!(got.signatures.len(), 2, "{:?}", got.signatures);
    for s in &got.signatures {
        assert_eq!(s.outcome, reg::AuthorityOutcome::Outside as i32, "{s:?}");
        assert!(s.message.contains("authority not checked"), "{s:?}");
        assert!(s.subject.contains("O=Bộ Y tế"), "{s:?}");
    }
    assert_eq!(codes(&got.statuses), ["01", "03"]);
    assert!(
        got.statuses
            .iter()
            .all(|s| s.counterparty_code == "000.00.00.G15")
    );
    // The 03 B signed verifies with xmlsec1 under the same root.
    let answer = String::from_utf8(got.statuses[1].xml.clone()).unwrap();
    assert!(kyso_tests::xml_peers::xmlsec_verify(&b.pki, &answer));

    // Misaddressed (N5): sent to another province, refused with the reason, through
    // `kyso doc receive-envelope`, which writes the two status messages for the exchange.
    let elsewhere = ministry_envelope(&pdf).replacen(B_CODE, "000.00.00.H41", 1);
    let file = b.dir.path().join("elsewhere.edxml");
    std::fs::write(&file, sign(&elsewhere)).unwrap();
    let out_dir = b.dir.path().join("answers");
    let out = Command::new(workspace_bin("kyso"))
        .args(["doc", "receive-envelope", "--server"])
        .arg(format!("http://{}", b.addr))
        .arg(&file)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["--organisation", &b.province.ubnd, "--document-type", "QD"])
        .args(["--seal-key", "seal", "--custodian", &b.province.clerk])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "a refusal is a verdict: {v}");
    assert_eq!(v["accepted"], false, "{v}");
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["rule"] == "N5"),
        "{v}"
    );
    let codes: Vec<&str> = v["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["01", "02"]);
    let refusal = std::fs::read_to_string(out_dir.join("02-000.00.00.G15.xml")).unwrap();
    assert!(refusal.contains("N5"), "the 02 carries the reason");
    assert!(kyso_tests::xml_peers::xmlsec_verify(&b.pki, &refusal));
}

/// Who may call the exchange RPCs: a caller known by its client certificate acting for the
/// organisation it names. A stranger's certificate and a caller bound to another
/// organisation are refused before anything is read, kept, sealed or registered (N6, W4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_rpcs_answer_only_callers_acting_for_the_organisation_N6_W4() {
    use crate::sign::{callers_config, make_tls, mtls_channel, status_rules};
    let tls = make_tls(&["dms", "dms-other", "stranger"]);
    let c = Cluster::start_with(&callers_config(&tls)).await;
    let audit_before = std::fs::read(c.audit_path()).unwrap_or_default();
    for (who, code, rule) in [
        ("stranger", tonic::Code::PermissionDenied, "caller"),
        ("dms-other", tonic::Code::PermissionDenied, "caller"),
    ] {
        let channel = mtls_channel(c.addr, tls.path(), Some(who)).await.unwrap();
        let mut d = DocumentsClient::new(channel);
        let org = c.province.ubnd.clone();
        let clerk = c.province.clerk.clone();
        let errors = [
            d.receive_envelope(dpb::ReceiveEnvelopeRequest {
                envelope: b"<edXML/>".to_vec(),
                organisation_id: org.clone(),
                seal_key: "seal".into(),
                custodian_person_id: clerk.clone(),
                document_type: "QD".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
            d.receive_status(dpb::ReceiveStatusRequest {
                status: b"<edXML/>".to_vec(),
                organisation_id: org.clone(),
                seal_key: "seal".into(),
                custodian_person_id: clerk.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
            d.take_back(dpb::TakeBackRequest {
                organisation_id: org.clone(),
                sha256: "ab".repeat(32),
                reason: "x".into(),
                seal_key: "seal".into(),
                custodian_person_id: clerk.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.code(), code, "{who}: {err:?}");
            assert_eq!(status_rules(&err), rule, "{who}: {err:?}");
        }
    }
    assert_eq!(
        std::fs::read(c.audit_path()).unwrap_or_default(),
        audit_before,
        "nothing sealed, nothing recorded"
    );
    let mut r = registry(&c).await;
    let entries = r
        .list_register(reg::ListRegisterRequest {
            organisation_id: c.province.ubnd.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(entries.is_empty(), "{entries:?}");
}
