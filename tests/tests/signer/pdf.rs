//! SignPdf through the real signer (SoftHSM2 behind p11-kit, the registry, N1 against the
//! test PKI's OCSP/CRL): the Chairman's APPROVAL (P1) then the seal's ISSUE (P2, A6, D2) as
//! incremental updates of one PDF; refusals (A6 without an approval, A7) recorded in the
//! audit log. Build the binaries first (`cargo build --workspace --bins`).

use std::process::Command;

use kyso_proto::signer::v1 as pb;
use kyso_tests::cluster::Cluster;

use super::sign::{audit_lines, status_rules};
use serde_json::{Value, json};
use tonic::Code;

/// A one-page A4 decision with a classic xref table.
pub(crate) fn sample_pdf() -> Vec<u8> {
    let content = "BT /F1 12 Tf 1 0 0 1 72 770 Tm (QUYET DINH so 01/QD-UBND) Tj ET\n\
                   BT /F1 12 Tf 1 0 0 1 380 300 Tm (CHU TICH) Tj ET\n\
                   BT /F1 12 Tf 1 0 0 1 370 170 Tm (Nguyen Van An) Tj ET\n";
    let objects = [
        "<</Type /Catalog /Pages 2 0 R>>".to_owned(),
        "<</Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842]>>".to_owned(),
        "<</Type /Page /Parent 2 0 R /Contents 4 0 R /Resources <</Font <</F1 5 0 R>>>>>>"
            .to_owned(),
        format!(
            "<</Length {}>>\nstream\n{content}\nendstream",
            content.len() + 1
        ),
        "<</Type /Font /Subtype /Type1 /BaseFont /Times-Roman>>".to_owned(),
    ];
    kyso_tests::pdf_fixtures::classic_pdf(&objects, "")
}

pub(crate) fn pdf_request(key: &str, ctx: pb::SigningContext, pdf: Vec<u8>) -> pb::SignPdfRequest {
    pb::SignPdfRequest {
        key: key.into(),
        context: Some(ctx),
        pdf,
        placement: None,
        image: Vec::new(),
        seal_diameter_mm: 0.0,
        copy_form: String::new(),
        incoming_number: String::new(),
        organisation_name: String::new(),
        reason: String::new(),
        location: String::new(),
        signing_time: None,
        field_name: String::new(),
        competent_person_id: String::new(),
        activation_token: String::new(),
        level: 0,
    }
}

pub(crate) fn approval(c: &Cluster, pdf: Vec<u8>) -> pb::SignPdfRequest {
    let mut r = pdf_request(
        "chairman",
        c.ctx(pb::Profile::Approval, &c.province.chairman),
        pdf,
    );
    r.placement = Some(pb::PdfPlacement {
        r#where: Some(pb::pdf_placement::Where::Rect(pb::PdfRect {
            page: 1,
            x0: 340.0,
            y0: 200.0,
            x1: 520.0,
            y1: 290.0,
        })),
    });
    r
}

fn issue(c: &Cluster, pdf: Vec<u8>) -> pb::SignPdfRequest {
    pdf_request("seal", c.ctx(pb::Profile::Issue, &c.province.clerk), pdf)
}

fn check_with_peers(pdf: &[u8], signatures: usize) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("signed.pdf");
    std::fs::write(&f, pdf).unwrap();
    for (tool, args) in [("qpdf", vec!["--check"]), ("pdfsig", vec![])] {
        let present = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !present {
            println!("SKIPPED part: {tool} is not installed");
            continue;
        }
        let out = kyso_tests::run(
            Command::new(tool).args(&args).arg(&f),
            None,
            kyso_tests::COMMAND_TIMEOUT,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if tool == "qpdf" {
            assert!(out.success(), "qpdf --check: {out}");
        } else {
            assert_eq!(
                text.matches("Signature Validation: Signature is Valid.")
                    .count(),
                signatures,
                "pdfsig: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_then_issue_on_one_pdf_through_the_signer_P1_P2_A6_D2() {
    let c = Cluster::start().await;
    let mut client = c.client().await;
    let original = sample_pdf();

    let approved = client
        .sign_pdf(approval(&c, original.clone()))
        .await
        .expect("APPROVAL")
        .into_inner();
    assert!(approved.pdf.starts_with(&original), "incremental update");
    assert_eq!(approved.field_name, "kyso_approval_1");
    assert_eq!(
        approved.sha256,
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &approved.pdf).as_ref()
    );
    assert_eq!(approved.signatory.unwrap().title, "Chủ tịch");
    check_with_peers(&approved.pdf, 1);

    let issued = client
        .sign_pdf(issue(&c, approved.pdf.clone()))
        .await
        .expect("ISSUE over the approved PDF (A6 satisfied)")
        .into_inner();
    assert!(
        issued.pdf.starts_with(&approved.pdf),
        "the approval untouched"
    );
    assert_eq!(issued.field_name, "kyso_issue_1");
    check_with_peers(&issued.pdf, 2);
    // Each signature carries its legal form as its ETSI commitment type (issue 13).
    let report = c.kyso_verify(&issued.pdf, None);
    let commitment = |i: usize| report["signatures"][i]["commitment_type"].clone();
    assert_eq!(commitment(0), json!("proof-of-approval"), "{report}");
    assert_eq!(commitment(1), json!("proof-of-origin"), "{report}");

    // The audit record binds the input and the output.
    let receipt = issued.audit.unwrap();
    let lines = audit_lines(&c.audit_path());
    let rec = lines
        .iter()
        .find(|l| l["hash"] == json!(receipt.record_hash))
        .expect("the receipt's record is in the log");
    assert_eq!(rec["entry"]["digest_alg"], json!("sha256-in-out"), "{rec}");
    let in_out = format!(
        "{}{}",
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &approved.pdf
        )),
        hex::encode(&issued.sha256)
    );
    assert_eq!(rec["entry"]["digest"], json!(in_out), "{rec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_without_approval_A6_and_classified_A7_pdfs_are_refused_and_recorded() {
    let c = Cluster::start().await;
    let mut client = c.client().await;

    let err = client.sign_pdf(issue(&c, sample_pdf())).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "A6");

    // An APPROVAL made by the seal key is no competent person's signature (A6): sealing
    // over it is refused after the PDF's signatures are verified.
    let mut not_personal = pdf_request(
        "seal",
        c.ctx(pb::Profile::Approval, &c.province.clerk),
        sample_pdf(),
    );
    not_personal.placement = approval(&c, Vec::new()).placement;
    if let Ok(r) = client.sign_pdf(not_personal).await {
        let err = client
            .sign_pdf(issue(&c, r.into_inner().pdf))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert_eq!(status_rules(&err), "A6", "{err:?}");
    }

    let mut secret = approval(&c, sample_pdf());
    if let Some(d) = secret.context.as_mut().and_then(|c| c.document.as_mut()) {
        d.classification = pb::Classification::Secret as i32;
    }
    let err = client.sign_pdf(secret).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "A7");

    let mut garbage = approval(&c, b"%PDF-1.7\nnot really".to_vec());
    garbage.pdf.extend_from_slice(b"\n%%EOF\n");
    let err = client.sign_pdf(garbage).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let lines = audit_lines(&c.audit_path());
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    assert!(text.iter().any(|l| l.contains("A6")), "{text:?}");
    assert!(text.iter().any(|l| l.contains("A7")), "{text:?}");
}
