//! The seal's side doors (issue 13): an organisation's key signs only in the legal forms whose
//! checks it passes. Each refusal names its rule and is recorded in the audit log.
//! - No raw signature over a digest with an organisation's key (A6): SignDigest over the audit
//!   log's seal input, or any other digest, would be a seal without a legal form.
//! - The received stamp (RECEIVED) only through ReceiveIncoming, after the incoming document
//!   was verified (W3, D6).
//! - The approval that lets the seal issue a document is by a person with authority in the
//!   sealing organisation, not in another one (A6, A3).

use kyso_proto::signer::v1 as pb;
use kyso_tests::CmsSign;
use kyso_tests::cluster::{Cluster, change, id};
use serde_json::json;
use tonic::Code;

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
