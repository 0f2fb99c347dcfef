//! The seal's side doors (issue 13): an organisation's key signs only in the legal forms whose
//! checks it passes. Each refusal names its rule and is recorded in the audit log.
//! - No raw signature over a digest with an organisation's key (A6): SignDigest over the audit
//!   log's seal input, or any other digest, would be a seal without a legal form.
//! - The received stamp (RECEIVED) only through ReceiveIncoming, after the incoming document
//!   was verified (W3, D6).
//! - The approval that lets the seal issue a document is by a person with authority in the
//!   sealing organisation, not in another one (A6, A3).
//! - A scanned paper original (SCANNED_ISSUE) only when its named competent person had
//!   authority in the sealing organisation (A3, A6) and, holding a valid personal certificate,
//!   is not required to sign electronically (D2, unless the document type allows it; D3).
//! - A COPY only of a document of the organisation's own outgoing or incoming register (A6,
//!   P3); an APPENDIX only with the number of a registered outgoing document (D5, P4), by
//!   SignCms, SignPdf and the documents flow's SignAttachments alike.

use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::signer::v1 as pb;
use kyso_tests::CmsSign;
use kyso_tests::cluster::{Cluster, change, id};
use serde_json::json;
use tonic::Code;

use crate::pdf::sample_pdf;
use crate::sign::{audit_lines, status_rules};

fn recorded(c: &Cluster, rule: &str) -> bool {
    audit_lines(&c.audit_path())
        .iter()
        .any(|l| l.to_string().contains(rule) && l.to_string().contains("refused"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seal_makes_no_raw_signature_and_no_received_stamp_outside_receive_incoming_A6_W3() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"any bytes at all");

    // A raw signature with the seal: refused whatever the profile (A6).
    for profile in [pb::Profile::Issue, pb::Profile::Copy, pb::Profile::Appendix] {
        let err = client
            .sign_digest(pb::SignDigestRequest {
                key: "seal".into(),
                context: Some(c.ctx(profile, &c.province.clerk)),
                digest_algorithm: "sha256".into(),
                digest: digest.as_ref().to_vec(),
                approval: Vec::new(),
                activation_token: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{profile:?}: {err:?}");
        assert_eq!(status_rules(&err), "A6", "{err:?}");
        assert!(err.message().contains("no raw signature"), "{err:?}");
    }
    assert!(recorded(&c, "no raw signature"), "the refusal is recorded");

    // The received stamp from a caller: refused (W3), by CMS and by PDF.
    let mut received = c.cms_request(
        "seal",
        c.ctx(pb::Profile::Received, &c.province.clerk),
        b"an incoming document",
    );
    received.detached = true;
    let err = client.sign_cms(received).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "W3", "{err:?}");
    let err = client
        .sign_pdf(pb::SignPdfRequest {
            key: "seal".into(),
            context: Some(c.ctx(pb::Profile::Received, &c.province.clerk)),
            pdf: kyso_tests::pdf_fixtures::classic_pdf(
                &[
                    "<</Type /Catalog /Pages 2 0 R>>".to_owned(),
                    "<</Type /Pages /Kids [] /Count 0>>".to_owned(),
                ],
                "",
            ),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "W3", "{err:?}");
    assert!(recorded(&c, "ReceiveIncoming"), "the refusal is recorded");

    // A personal key still makes raw signatures (a PDF's byte ranges, signed elsewhere).
    client
        .sign_digest(pb::SignDigestRequest {
            key: "chairman".into(),
            context: Some(c.ctx(pb::Profile::Approval, &c.province.chairman)),
            digest_algorithm: "sha256".into(),
            digest: digest.as_ref().to_vec(),
            approval: Vec::new(),
            activation_token: String::new(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_director_cannot_approve_this_organisations_seal_A6_A3() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let r = &c.registry;
    let other = &c.province.other_org;
    // The director of another organisation, with authority for the type there.
    let title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Giám đốc"}),
        )
        .await);
    let director = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Nguyễn Văn An",
                   "email": "an.nv@stc.khanhhoa.gov.vn", "organisation_id": other,
                   "service_end": "2045-01-01T00:00:00Z"}),
        )
        .await);
    r.ok(
        &["create-appointment"],
        json!({"change": change("appointment"), "person_id": director, "title_id": title,
               "organisation_id": other, "valid_from": "2020-01-01T00:00:00Z",
               "decision_ref": "7/QĐ-UBND"}),
    )
    .await;
    r.ok(
        &["grant-authority"],
        json!({"change": change("working rules"),
               "title_authorities": [
                   {"organisation_id": other, "title_id": title, "document_type": "QD"}]}),
    )
    .await;
    let leaf = c.pki.path("leaves/personal-rsa.pem");
    r.ok(
        &["register-certificate", "--cert", leaf.to_str().unwrap()],
        json!({"change": change("issued"), "kind": "PERSONAL", "person_id": director}),
    )
    .await;

    // The director approves the document (a valid signature, authority in its own body)...
    let doc = b"QUYET DINH so 09/QD-UBND";
    let approval = kyso_tests::cms_sign_in(&c.pki, &CmsSign::new("personal-rsa", doc));
    // ... which does not let the People's Committee's seal issue it.
    let mut req = c.issue(doc);
    req.approval = approval;
    let err = client.sign_cms(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "A6", "{err:?}");
    assert!(
        err.message().contains("another organisation"),
        "the refusal says why: {err:?}"
    );
    assert!(
        recorded(&c, "another organisation"),
        "the refusal is recorded"
    );
}

/// A refusal by `rule` of a `profile` request, as the audit log records it.
fn refused_in_log(c: &Cluster, rule: &str, profile: &str) -> bool {
    audit_lines(&c.audit_path()).iter().any(|l| {
        let e = l.get("entry").unwrap_or(l);
        e["decision"] == "refused"
            && e["rules"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == rule))
            && e["profile"].as_str().is_some_and(|p| p.contains(profile))
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(kyso_pki::crypto::sha256(bytes))
}

/// The seal's own uses of a type: what the registry lets the organisation certificate do (A4).
async fn grant_seal(c: &Cluster, doc: &str, profiles: &[&str]) {
    let ops: Vec<_> = profiles
        .iter()
        .map(|p| json!({"organisation_id": c.province.ubnd, "document_type": doc, "profile": p}))
        .collect();
    c.registry
        .ok(
            &["grant-authority"],
            json!({"change": change("working rules"), "organisation_profiles": ops}),
        )
        .await;
}

fn scanned(c: &Cluster, doc: &str, person: &str, content: &[u8]) -> pb::SignCmsRequest {
    let mut ctx = c.ctx(pb::Profile::ScannedIssue, &c.province.clerk);
    if let Some(d) = ctx.document.as_mut() {
        d.document_type = doc.into();
    }
    pb::SignCmsRequest {
        competent_person_id: person.into(),
        ..c.cms_request("seal", ctx, content)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_original_is_sealed_only_when_its_signer_may_not_sign_electronically_D2_D3_A3_A6()
{
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let r = &c.registry;
    // A type whose scanned paper form the province allows even for a leader with a
    // certificate (D2 "unless the document type says otherwise").
    r.ok(
        &["create-document-type"],
        json!({"change": change("document types"), "code": "TB", "name": "Thông báo",
               "classification": "NONE", "scanned_issue_allowed": true}),
    )
    .await;
    grant_seal(&c, "QD", &["PROFILE_SCANNED_ISSUE"]).await;
    grant_seal(&c, "TB", &["PROFILE_SCANNED_ISSUE"]).await;
    // A standing vice-chairman with authority for both types and, for now, no certificate.
    let title = id(&r
        .ok(
            &["create-title"],
            json!({"change": change("titles"), "name": "Phó Chủ tịch Thường trực"}),
        )
        .await);
    let vice = id(&r
        .ok(
            &["create-person"],
            json!({"change": change("staff"), "full_name": "Hoàng Văn Em",
                   "email": "em.hv@khanhhoa.gov.vn", "organisation_id": c.province.ubnd,
                   "service_end": "2045-01-01T00:00:00Z"}),
        )
        .await);
    r.ok(
        &["create-appointment"],
        json!({"change": change("appointment"), "person_id": vice, "title_id": title,
               "organisation_id": c.province.ubnd, "valid_from": "2020-01-01T00:00:00Z",
               "decision_ref": "9/QĐ-UBND"}),
    )
    .await;
    r.ok(
        &["grant-authority"],
        json!({"change": change("working rules"),
               "title_authorities": [
                   {"organisation_id": c.province.ubnd, "title_id": title, "document_type": "QD"},
                   {"organisation_id": c.province.ubnd, "title_id": title, "document_type": "TB"}]}),
    )
    .await;

    // D2: the Chairman holds a valid personal certificate, so a decision he signed on paper
    // is not issued by scanning it: he signs it electronically, then the seal.
    let err = client
        .sign_cms(scanned(&c, "QD", &c.province.chairman, b"QD scanned 1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "D2", "{err:?}");
    assert!(err.message().contains("electronic form"), "{err:?}");
    assert!(
        refused_in_log(&c, "D2", "SCANNED_ISSUE"),
        "the refusal is recorded"
    );
    // ... the same by SignPdf.
    let err = client
        .sign_pdf(pb::SignPdfRequest {
            key: "seal".into(),
            context: Some(
                scanned(&c, "QD", &c.province.chairman, b"")
                    .context
                    .unwrap(),
            ),
            pdf: sample_pdf(),
            competent_person_id: c.province.chairman.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "D2", "{err:?}");

    // A3: the clerk is nobody's competent person for a decision; nor is another body's
    // staff; the caller's word does not make them one.
    let err = client
        .sign_cms(scanned(&c, "QD", &c.province.clerk, b"QD scanned 2"))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "A3", "{err:?}");
    assert!(
        refused_in_log(&c, "A3", "SCANNED_ISSUE"),
        "the refusal is recorded"
    );
    // A6: a person the book does not know.
    let err = client
        .sign_cms(scanned(&c, "QD", "per_nobody", b"QD scanned 3"))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "A6", "{err:?}");
    assert!(
        refused_in_log(&c, "A6", "SCANNED_ISSUE"),
        "the refusal is recorded"
    );

    // Without naming the competent person: bad input, nothing asked, nothing recorded.
    let before = audit_lines(&c.audit_path()).len();
    let err = client
        .sign_cms(scanned(&c, "QD", "", b"QD scanned 4"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(audit_lines(&c.audit_path()).len(), before);

    // D3: a competent person without a certificate signs on paper; the scan is sealed, by
    // CMS and by PDF.
    client
        .sign_cms(scanned(&c, "QD", &vice, b"QD scanned 5"))
        .await
        .unwrap();
    let signed = client
        .sign_pdf(pb::SignPdfRequest {
            key: "seal".into(),
            context: Some(scanned(&c, "QD", &vice, b"").context.unwrap()),
            pdf: sample_pdf(),
            competent_person_id: vice.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(signed.pdf.len() > sample_pdf().len());

    // Once the vice-chairman holds a certificate, D2 applies to him too; a type that allows
    // the scanned form (TB) still takes it.
    r.ok(
        &[
            "register-certificate",
            "--cert",
            c.pki.path("leaves/personal-rsa.pem").to_str().unwrap(),
        ],
        json!({"change": change("issued"), "kind": "PERSONAL", "person_id": vice}),
    )
    .await;
    let err = client
        .sign_cms(scanned(&c, "QD", &vice, b"QD scanned 6"))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "D2", "{err:?}");
    client
        .sign_cms(scanned(&c, "TB", &vice, b"TB scanned 7"))
        .await
        .unwrap();
    // A type that allows the scanned form still needs its competent person: the Chairman's
    // title was granted no authority for TB here (A3).
    let err = client
        .sign_cms(scanned(&c, "TB", &c.province.chairman, b"TB scanned 8"))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "A3", "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_and_appendices_only_of_the_organisations_registered_documents_P3_D5_A6() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    grant_seal(&c, "QD", &["PROFILE_COPY"]).await;
    let ubnd = c.province.ubnd.clone();
    let copy = |content: &[u8]| {
        let mut req = c.cms_request("seal", c.ctx(pb::Profile::Copy, &c.province.clerk), content);
        req.detached = true;
        req
    };

    // P3: a copy of something that is in none of the organisation's registers.
    let outgoing = b"QUYET DINH so 15/QD-UBND (the stored original)";
    let err = client.sign_cms(copy(outgoing)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "P3", "{err:?}");
    assert!(err.message().contains("register"), "{err:?}");
    assert!(refused_in_log(&c, "P3", "COPY"), "the refusal is recorded");
    // Another body's register does not let this body's seal copy it.
    c.register_document(
        &c.province.other_org,
        "OUTGOING",
        "3/QĐ-STC",
        &sha256_hex(outgoing),
    )
    .await;
    let err = client.sign_cms(copy(outgoing)).await.unwrap_err();
    assert_eq!(status_rules(&err), "P3", "{err:?}");

    // A document of its own outgoing register: copied (A6 "copies it made itself").
    c.register_document(&ubnd, "OUTGOING", "15/QĐ-UBND", &sha256_hex(outgoing))
        .await;
    client.sign_cms(copy(outgoing)).await.unwrap();
    // ... and of its incoming register, sent as a SHA-256 digest, or as the PDF itself.
    let incoming = b"QUYET DINH so 7/QD-BTC (received)";
    c.register_document(&ubnd, "INCOMING", "7/QĐ-BTC", &sha256_hex(incoming))
        .await;
    let mut by_digest = copy(b"");
    by_digest.payload = Some(pb::sign_cms_request::Payload::Digest(
        kyso_pki::crypto::sha256(incoming).to_vec(),
    ));
    client.sign_cms(by_digest).await.unwrap();
    let pdf = sample_pdf();
    let pdf_copy = |pdf: Vec<u8>| pb::SignPdfRequest {
        key: "seal".into(),
        context: Some(c.ctx(pb::Profile::Copy, &c.province.clerk)),
        pdf,
        copy_form: "SAO Y".into(),
        ..Default::default()
    };
    let err = client.sign_pdf(pdf_copy(pdf.clone())).await.unwrap_err();
    assert_eq!(status_rules(&err), "P3", "{err:?}");
    c.register_document(&ubnd, "INCOMING", "8/QĐ-BTC", &sha256_hex(&pdf))
        .await;
    client.sign_pdf(pdf_copy(pdf.clone())).await.unwrap();

    // D5: an attachment with a number the outgoing register does not hold (an incoming
    // document's number is not one), by SignCms, SignPdf and SignAttachments.
    let appendix = |number: &str| {
        let mut ctx = c.ctx(pb::Profile::Appendix, &c.province.clerk);
        if let Some(d) = ctx.document.as_mut() {
            d.number_and_symbol = number.into();
        }
        ctx
    };
    for number in ["16/QĐ-UBND", "7/QĐ-BTC", "3/QĐ-STC"] {
        let err = client
            .sign_cms(c.cms_request("seal", appendix(number), b"Phu luc"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert_eq!(status_rules(&err), "D5", "{number}: {err:?}");
    }
    assert!(
        refused_in_log(&c, "D5", "APPENDIX"),
        "the refusal is recorded"
    );
    let err = client
        .sign_pdf(pb::SignPdfRequest {
            key: "seal".into(),
            context: Some(appendix("16/QĐ-UBND")),
            pdf: pdf.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "D5", "{err:?}");
    let mut documents = DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap();
    let attach = |number: &str| dpb::SignAttachmentsRequest {
        attachments: vec![dpb::Attachment {
            name: "phu-luc.pdf".into(),
            pdf: pdf.clone(),
        }],
        document: appendix(number).document,
        organisation_id: ubnd.clone(),
        seal_key: "seal".into(),
        custodian_person_id: c.province.clerk.clone(),
        idempotency_key: String::new(),
    };
    let err = documents
        .sign_attachments(attach("16/QĐ-UBND"))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), "D5", "{err:?}");

    // With the number of its registered outgoing document: sealed, every way.
    client
        .sign_cms(c.cms_request("seal", appendix("15/QĐ-UBND"), b"Phu luc"))
        .await
        .unwrap();
    client
        .sign_pdf(pb::SignPdfRequest {
            key: "seal".into(),
            context: Some(appendix("15/QĐ-UBND")),
            pdf: pdf.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let signed = documents
        .sign_attachments(attach("15/QĐ-UBND"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signed.attachments.len(), 1);
}
