//! Issue 15, item 8, in the document flow: a received PDF whose CMS does not carry its
//! signer's certificate is verified by `ReceiveIncoming` with the copy in the registry's
//! certificate book (`FindCertificates`), and the report says where the certificate came from
//! (REGISTRY). The document is the one the cluster issues (the Chairman's approval, then the
//! seal); the seal's CMS loses the seal certificate after signing: the certificates of a
//! SignedData are outside what is signed, so the signature stays intact and only the lookup
//! changes.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{CertificateSet, SignedData};
use der::asn1::SetOfVec;
use der::{Decode, Encode, SliceReader};
use kyso_pki::cert::Cert;
use kyso_pki::cms::matches_sid;
use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::registry::v1 as reg;
use kyso_proto::verifier::v1 as vpb;
use kyso_tests::cluster::Cluster;
use kyso_tests::pdf_peers::{Peers, SampleKind};

use crate::documents::register;
use crate::retry::issue_request;

/// Where each `/Contents <hex>` of a signature dictionary starts and ends (the hex digits).
fn contents(pdf: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = pdf[from..].windows(9).position(|w| w == b"/Contents") {
        let mut at = from + i + 9;
        while pdf.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        if pdf.get(at) == Some(&b'<') {
            let start = at + 1;
            let len = pdf[start..].iter().position(|b| *b == b'>').unwrap();
            out.push((start, start + len));
        }
        from = at;
    }
    out
}

/// Removes the signer's own certificate from the CMS of the last signature, in place (the
/// hex is padded back with zeros, as a signer pads it); the certificate removed.
fn strip_last_signer_certificate(pdf: &mut [u8]) -> Cert {
    let (start, end) = *contents(pdf).last().unwrap();
    let der = hex::decode(&pdf[start..end]).unwrap();
    // The CMS is followed by the placeholder's zeros: read one value, ignore the rest.
    let mut reader = SliceReader::new(&der).unwrap();
    let info = ContentInfo::decode(&mut reader).unwrap();
    let mut sd: SignedData = info.content.decode_as().unwrap();
    let sid = sd.signer_infos.0.iter().next().unwrap().sid.clone();
    let mut removed = None;
    let mut kept = Vec::new();
    for choice in sd.certificates.take().unwrap().0.iter() {
        let CertificateChoices::Certificate(c) = choice else {
            kept.push(choice.clone());
            continue;
        };
        let cert = Cert::from_der(&c.to_der().unwrap()).unwrap();
        if matches_sid(&cert, &sid) {
            removed = Some(cert);
        } else {
            kept.push(choice.clone());
        }
    }
    if !kept.is_empty() {
        sd.certificates = Some(CertificateSet(SetOfVec::try_from(kept).unwrap()));
    }
    let stripped = ContentInfo {
        content_type: info.content_type,
        content: der::Any::encode_from(&sd).unwrap(),
    }
    .to_der()
    .unwrap();
    let mut hex = hex::encode_upper(&stripped).into_bytes();
    assert!(hex.len() < end - start);
    hex.resize(end - start, b'0');
    pdf[start..end].copy_from_slice(&hex);
    // Read back: no certificate of the CMS is the signer's any more.
    let back: SignedData = ContentInfo::from_der(&stripped)
        .unwrap()
        .content
        .decode_as()
        .unwrap();
    for choice in back.certificates.iter().flat_map(|s| s.0.iter()) {
        if let CertificateChoices::Certificate(c) = choice {
            let cert = Cert::from_der(&c.to_der().unwrap()).unwrap();
            assert!(!matches_sid(&cert, &sid));
        }
    }
    removed.expect("the CMS carried its signer's certificate")
}

/// V5, W3: the seal's signature without its certificate is verified with the registry's
/// copy: every signature passes, the seal's certificate is reported as from the REGISTRY
/// (the Chairman's as EMBEDDED), the document is accepted and numbered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_without_its_certificate_is_verified_with_the_registry_copy_V5_W3() {
    let c = Cluster::start().await;
    let sample = Peers::get().sample(SampleKind::Decision);
    let mut documents = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let mut pdf = documents
        .issue_outgoing(issue_request(
            &c,
            &sample.bytes,
            "46/QĐ-UBND",
            "certbook-46",
        ))
        .await
        .unwrap()
        .into_inner()
        .pdf;
    let removed = strip_last_signer_certificate(&mut pdf);
    // The seal's certificate (the cluster's, for its HSM key), an organisation's.
    assert!(
        kyso_pki::name::rfc4514(removed.subject())
            .starts_with("CN=Ủy ban nhân dân tỉnh Khánh Hòa,"),
        "{}",
        kyso_pki::name::rfc4514(removed.subject())
    );

    let answer = documents
        .receive_incoming(dpb::ReceiveIncomingRequest {
            pdf: pdf.clone(),
            organisation_id: c.province.ubnd.clone(),
            seal_key: "seal".into(),
            custodian_person_id: c.province.clerk.clone(),
            sender: "UBND tỉnh Khánh Hòa".into(),
            document_type: "QD".into(),
            idempotency_key: "certbook-receive-46".into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", c.signer_log()))
        .into_inner();
    assert!(answer.accepted, "{:?}", answer.problems);
    assert!(answer.incoming_number > 0);
    let verification = answer.verification.unwrap();
    let origins: Vec<(i32, i32)> = verification
        .signatures
        .iter()
        .map(|s| {
            let r = s.report.as_ref().unwrap();
            (r.indication, r.signer_certificate_origin)
        })
        .collect();
    let passed = vpb::Indication::TotalPassed as i32;
    assert_eq!(
        origins,
        vec![
            (passed, vpb::SignerCertificateOrigin::Embedded as i32),
            (passed, vpb::SignerCertificateOrigin::Registry as i32),
        ],
        "{verification:?}"
    );
    // The seal's outcome names the organisation certificate found in the book.
    let seal = answer.signatures.last().unwrap();
    assert_eq!(
        seal.outcome,
        reg::AuthorityOutcome::Allowed as i32,
        "{seal:?}"
    );
    assert_eq!(seal.fingerprint, removed.fingerprint_hex(), "{seal:?}");
    let entries = register(&c, reg::Direction::Incoming).await;
    assert!(
        entries
            .iter()
            .any(|e| !e.refused && e.number == answer.incoming_number),
        "{entries:?}"
    );
}
