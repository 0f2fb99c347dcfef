//! PAdES signing with `kyso_pades` and the legal appearances (DOMAIN.md P1-P4, D3, D6),
//! signed with the test PKI's key files the way an HSM signs (`openssl pkeyutl` over the
//! prehashed digest), then checked by `openssl cms -verify` over the signed byte ranges,
//! `qpdf --check`, poppler's `pdfsig` and `pdftotext` (each skipped with a printed reason
//! where the binary is absent).

use std::path::Path;
use std::process::Command;

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::Decode;
use der::asn1::ObjectIdentifier;
use kyso_pades::{
    self as pades, PadesError, PadesLimits, PadesRequest, Placement, Profile, StampText,
};
use kyso_pki::cms_build::{self, SigningAlgorithm};
use kyso_pki::time::OffsetDateTime;
use kyso_tests::{CmsVerify, TestPki, openssl_cms_verify_output};

const SIGNING_TIME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ESS_V2_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const RSA: SigningAlgorithm = SigningAlgorithm::RsaPkcs1(kyso_pki::crypto::DigestAlgorithm::Sha256);

// ---------------------------------------------------------------------------------------------
// A small PDF writer: one page with a title line, a marker and a name (classic xref table)
// ---------------------------------------------------------------------------------------------

/// Objects (bodies, numbered from 1) written with a classic cross-reference table.
fn pdf_from(objects: &[String], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<</Size {} /Root 1 0 R{trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A one-page A4 decision: the title line "CHU TICH", a marker `{{chu_ky}}` and the name
/// below; `empty_field`: also an empty signature field between them (a template's place).
fn sample_pdf(empty_field: bool) -> Vec<u8> {
    let content = "BT /F1 12 Tf 1 0 0 1 72 770 Tm (QUYET DINH so 123/QD-UBND) Tj ET\n\
                   BT /F1 12 Tf 1 0 0 1 380 300 Tm (CHU TICH) Tj ET\n\
                   BT /F1 10 Tf 1 0 0 1 370 240 Tm ({{chu_ky}}) Tj ET\n\
                   BT /F1 12 Tf 1 0 0 1 370 170 Tm (Nguyen Van An) Tj ET\n";
    let mut objects = vec![
        if empty_field {
            "<</Type /Catalog /Pages 2 0 R /AcroForm <</Fields [6 0 R]>>>>".to_owned()
        } else {
            "<</Type /Catalog /Pages 2 0 R>>".to_owned()
        },
        "<</Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842]>>".to_owned(),
        if empty_field {
            "<</Type /Page /Parent 2 0 R /Contents 4 0 R /Resources <</Font <</F1 5 0 R>>>> /Annots [6 0 R]>>".to_owned()
        } else {
            "<</Type /Page /Parent 2 0 R /Contents 4 0 R /Resources <</Font <</F1 5 0 R>>>>>>"
                .to_owned()
        },
        format!(
            "<</Length {}>>\nstream\n{content}\nendstream",
            content.len() + 1
        ),
        "<</Type /Font /Subtype /Type1 /BaseFont /Times-Roman>>".to_owned(),
    ];
    if empty_field {
        objects.push(
            "<</Type /Annot /Subtype /Widget /FT /Sig /T (ChuKyChuTich) /Rect [340 200 520 290] /P 3 0 R /F 4>>"
                .to_owned(),
        );
    }
    pdf_from(&objects, "")
}

// ---------------------------------------------------------------------------------------------
// Signing with a software key, the way the signer signs with the HSM
// ---------------------------------------------------------------------------------------------

fn chain() -> Vec<Vec<u8>> {
    let pki = TestPki::get();
    vec![pki.cert_der(pki.issuing_ca_cer())]
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() - time::Duration::minutes(2);
    t.replace_nanosecond(0).expect("whole seconds")
}

/// Prepares, signs with `leaf`'s key and finishes.
fn sign(pdf: &[u8], req: &PadesRequest<'_>, leaf: &str) -> Result<Vec<u8>, PadesError> {
    let prepared = pades::prepare(pdf, req)?;
    let p = cms_build::prepare(prepared.cades_request(req.signer_certificate, req.chain, RSA))
        .expect("cms prepare");
    let sig = TestPki::get().sign_digest(leaf, "sha256", false, &p.digest_to_sign());
    let cms = p.finish(&sig).expect("cms finish");
    prepared.finish(&cms)
}

// ---------------------------------------------------------------------------------------------
// Reading the result back
// ---------------------------------------------------------------------------------------------

/// Every signature of the file: (byte range, CMS DER), in file order.
fn signatures(pdf: &[u8]) -> Vec<([usize; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let needle = b"/ByteRange [";
    let mut from = 0;
    while let Some(p) = pdf[from..].windows(needle.len()).position(|w| w == needle) {
        let at = from + p + needle.len();
        let end = at + pdf[at..].iter().position(|b| *b == b']').unwrap();
        let nums: Vec<usize> = std::str::from_utf8(&pdf[at..end])
            .unwrap()
            .split_ascii_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let br: [usize; 4] = nums.try_into().unwrap();
        let hex = &pdf[br[1] + 1..br[2] - 1];
        let raw = hex::decode(hex).unwrap();
        // The DER length says where the zero padding starts.
        let (header_len, len) = match raw[1] {
            0x81 => (3, raw[2] as usize),
            0x82 => (4, (raw[2] as usize) << 8 | raw[3] as usize),
            0x83 => (
                5,
                (raw[2] as usize) << 16 | (raw[3] as usize) << 8 | raw[4] as usize,
            ),
            n => (2, n as usize),
        };
        out.push((br, raw[..header_len + len].to_vec()));
        from = end;
    }
    out
}

fn signed_bytes(pdf: &[u8], br: [usize; 4]) -> Vec<u8> {
    let mut v = pdf[br[0]..br[0] + br[1]].to_vec();
    v.extend_from_slice(&pdf[br[2]..br[2] + br[3]]);
    v
}

/// The checks every signature must pass: ByteRange covering all but /Contents (the last one
/// up to the end of the file), openssl accepting the CMS over the ranges, no signing-time
/// attribute, ESS signing-certificate-v2 present.
fn check_signatures(pdf: &[u8], expected: usize) {
    let sigs = signatures(pdf);
    assert_eq!(sigs.len(), expected, "signatures in the file");
    for (i, (br, cms)) in sigs.iter().enumerate() {
        assert_eq!(br[0], 0);
        assert_eq!(pdf[br[1]], b'<', "range 1 ends at the /Contents string");
        assert_eq!(pdf[br[2] - 1], b'>', "range 2 starts after it");
        if i + 1 == sigs.len() {
            assert_eq!(
                br[2] + br[3],
                pdf.len(),
                "the last signature covers the whole file"
            );
        }
        let content = signed_bytes(pdf, *br);
        openssl_cms_verify_output(TestPki::get(), cms, Some(&content), &CmsVerify::default())
            .expect_success();
        let ci = ContentInfo::from_der(cms).expect("CMS");
        let sd: SignedData = ci.content.decode_as().expect("SignedData");
        let si = sd.signer_infos.0.iter().next().expect("a signer");
        let attrs: Vec<ObjectIdentifier> = si
            .signed_attrs
            .as_ref()
            .expect("signed attributes")
            .iter()
            .map(|a| a.oid)
            .collect();
        assert!(
            !attrs.contains(&SIGNING_TIME_OID),
            "PAdES: no signing-time attribute"
        );
        assert!(
            attrs.contains(&ESS_V2_OID),
            "ESS signing-certificate-v2 present"
        );
    }
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("SKIPPED part: {name} is not installed (scripts/setup.sh installs it)");
    }
    found
}

fn qpdf_check(pdf: &[u8]) {
    if !tool("qpdf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.pdf");
    std::fs::write(&f, pdf).unwrap();
    let out = kyso_tests::run(
        Command::new("qpdf").arg("--check").arg(&f),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    );
    // Exit 3 is "warnings"; none are expected either.
    assert!(out.success(), "qpdf --check: {out}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("No syntax or stream encoding errors"),
        "{text}"
    );
}

/// poppler's verdict on every signature: the signature itself valid (the test root is not in
/// its NSS store, so the certificate's trust is not asserted here).
fn pdfsig_valid(pdf: &[u8], expected: usize) {
    if !tool("pdfsig") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.pdf");
    std::fs::write(&f, pdf).unwrap();
    let out = kyso_tests::run(
        Command::new("pdfsig").arg(&f),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("Signature Validation: Signature is Valid.")
            .count(),
        expected,
        "pdfsig: {text}"
    );
    assert!(text.contains("ETSI.CAdES.detached"), "{text}");
}

fn pdftotext(pdf: &[u8]) -> Option<String> {
    if !tool("pdftotext") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.pdf");
    std::fs::write(&f, pdf).unwrap();
    let out = kyso_tests::run(
        Command::new("pdftotext")
            .args(["-f", "1", "-l", "1"])
            .arg(&f)
            .arg("-"),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    )
    .expect_success();
    Some(String::from_utf8(out.stdout).expect("UTF-8 text"))
}

/// The widget rectangle of the field named `name`: kyso writes `/T` as a UTF-16 hex string
/// followed (in the same dictionary) by `/Rect`; the last version of the field counts.
fn field_rect(pdf: &[u8], name: &str) -> [f32; 4] {
    let mut t = vec![0xFE, 0xFF];
    for u in name.encode_utf16() {
        t.extend_from_slice(&u.to_be_bytes());
    }
    let utf16 = format!("/T <{}>", hex::encode_upper(t));
    // A field read from the original is written back with its bytes as they were.
    let plain = format!("/T <{}>", hex::encode_upper(name));
    // Latin-1, so that byte offsets are character offsets.
    let text: String = pdf.iter().map(|&b| char::from(b)).collect();
    let at = text
        .rfind(&utf16)
        .max(text.rfind(&plain))
        .unwrap_or_else(|| panic!("no field {name}"));
    let end = at + text[at..].find("endobj").unwrap();
    let rect_at = at + text[at..end].find("/Rect [").expect("a /Rect") + "/Rect [".len();
    let close = rect_at + text[rect_at..].find(']').unwrap();
    let v: Vec<f32> = text[rect_at..close]
        .split_ascii_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    v.try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// APPROVAL then ISSUE (P1, P2, D2)
// ---------------------------------------------------------------------------------------------

#[test]
fn approval_with_image_then_issue_over_it_incrementally_P1_P2_D2() {
    let pki = TestPki::get();
    let original = sample_pdf(false);
    let chain = chain();

    let personal = pki.leaf_der("personal-rsa");
    let mut req = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    req.placement = Placement::Rect {
        page: 1,
        rect: [340.0, 200.0, 520.0, 290.0],
    };
    req.reason = Some("Phê duyệt".into());
    let approved = sign(&original, &req, "personal-rsa").expect("APPROVAL");
    assert!(
        approved.starts_with(&original),
        "incremental: the original is an untouched prefix"
    );
    check_signatures(&approved, 1);
    assert_eq!(
        field_rect(&approved, "kyso_approval_1"),
        [340.0, 200.0, 520.0, 290.0]
    );
    // P1: the image, blue with its alpha channel as a soft mask.
    let text = String::from_utf8_lossy(&approved[original.len()..]);
    assert!(text.contains("/SMask"), "transparent background as /SMask");

    let org = pki.leaf_der("org-rsa");
    let mut req = PadesRequest::new(Profile::Issue, &org, &chain, now());
    req.text = StampText {
        number_and_symbol: Some("123/QĐ-UBND".into()),
        issue_date: Some(now().to_offset(pades::VN_OFFSET).date()),
        ..StampText::default()
    };
    let issued = sign(&approved, &req, "org-rsa").expect("ISSUE");
    assert!(
        issued.starts_with(&approved),
        "the approval's bytes are untouched"
    );
    check_signatures(&issued, 2);

    // P2: the seal at real size (36 mm = 102 pt) covers the left third of the signature.
    let seal = field_rect(&issued, "kyso_issue_1");
    let d = 36.0 * 72.0 / 25.4;
    assert!(((seal[2] - seal[0]) as f64 - d).abs() < 0.1, "{seal:?}");
    assert!(
        (seal[2] as f64 - (340.0 + 180.0 / 3.0)).abs() < 0.1,
        "{seal:?}"
    );
    assert!(((seal[1] + seal[3]) / 2.0 - 245.0).abs() < 0.1, "{seal:?}");

    qpdf_check(&approved);
    qpdf_check(&issued);
    pdfsig_valid(&issued, 2);
}

#[test]
fn approval_fills_a_templates_empty_field_and_finds_a_marker_P1() {
    let pki = TestPki::get();
    let chain = chain();
    let personal = pki.leaf_der("personal-rsa");

    let template = sample_pdf(true);
    let mut req = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    req.placement = Placement::Field("ChuKyChuTich".into());
    let signed = sign(&template, &req, "personal-rsa").expect("fills the field");
    check_signatures(&signed, 1);
    assert_eq!(
        field_rect(&signed, "ChuKyChuTich"),
        [340.0, 200.0, 520.0, 290.0]
    );
    qpdf_check(&signed);
    // The one empty field is also what automatic placement takes.
    let auto = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    sign(&template, &auto, "personal-rsa").expect("automatic placement");
    // Filled already: refused.
    let again = pades::prepare(&signed, &req).unwrap_err();
    assert!(matches!(again, PadesError::Field(_)), "{again}");

    // The marker `{{chu_ky}}` at (370, 240), 10 pt: the image is centred on it.
    let mut req = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    req.placement = Placement::Marker {
        text: "{{chu_ky}}".into(),
        page: None,
    };
    let signed = sign(&sample_pdf(false), &req, "personal-rsa").expect("marker");
    let r = field_rect(&signed, "kyso_approval_1");
    let (cx, cy) = ((r[0] + r[2]) / 2.0, (r[1] + r[3]) / 2.0);
    assert!(
        (cx - (370.0 + 25.0)).abs() < 1.0 && (cy - 243.0).abs() < 1.0,
        "{r:?}"
    );
    check_signatures(&signed, 1);

    // Without any place: a clear error (P1 needs a position).
    let none = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    let e = pades::prepare(&sample_pdf(false), &none).unwrap_err();
    assert!(matches!(e, PadesError::Placement(_)), "{e}");
}

#[test]
fn issue_over_a_pdf_without_approval_is_refused_P2_A6() {
    let pki = TestPki::get();
    let chain = chain();
    let org = pki.leaf_der("org-rsa");
    let req = PadesRequest::new(Profile::Issue, &org, &chain, now());
    let e = pades::prepare(&sample_pdf(false), &req).unwrap_err();
    assert!(matches!(e, PadesError::NoApproval(_)), "{e}");
    // An empty field is no approval either.
    let e = pades::prepare(&sample_pdf(true), &req).unwrap_err();
    assert!(matches!(e, PadesError::NoApproval(_)), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The placeholder
// ---------------------------------------------------------------------------------------------

#[test]
fn placeholder_never_overflows_with_a_four_certificate_chain() {
    let pki = TestPki::get();
    let chain = vec![
        pki.cert_der(pki.issuing_ca_cer()),
        pki.cert_der(pki.root_cer()),
        pki.cert_der(pki.legacy_sub_pem()),
        pki.cert_der(pki.legacy_root_pem()),
    ];
    let org = pki.leaf_der("org-rsa");
    let mut req = PadesRequest::new(Profile::Comment, &org, &chain, now());
    let prepared = pades::prepare(&sample_pdf(false), &req).expect("prepare");
    let capacity = prepared.capacity();
    let p = cms_build::prepare(prepared.cades_request(&org, &chain, RSA)).unwrap();
    let sig = TestPki::get().sign_digest("org-rsa", "sha256", false, &p.digest_to_sign());
    let cms = p.finish(&sig).unwrap();
    assert!(cms.len() < capacity, "{} bytes in {capacity}", cms.len());
    let signed = prepared.finish(&cms).expect("fits");
    check_signatures(&signed, 1);

    // A placeholder asked too small is an error at finish, never a corrupt file.
    req.placeholder_size = Some(100);
    let prepared = pades::prepare(&sample_pdf(false), &req).expect("prepare");
    let e = prepared.finish(&cms).unwrap_err();
    assert!(matches!(e, PadesError::Placeholder { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Cross-reference streams and object streams
// ---------------------------------------------------------------------------------------------

#[test]
fn xref_stream_input_gets_an_xref_stream_update() {
    if !tool("qpdf") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.pdf"), dir.path().join("b.pdf"));
    std::fs::write(&a, sample_pdf(false)).unwrap();
    kyso_tests::run(
        Command::new("qpdf")
            .arg("--object-streams=generate")
            .arg(&a)
            .arg(&b),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    )
    .expect_success();
    let original = std::fs::read(&b).unwrap();
    assert!(
        original.windows(7).any(|w| w == b"/ObjStm"),
        "qpdf made object streams"
    );

    let pki = TestPki::get();
    let chain = chain();
    let personal = pki.leaf_der("personal-rsa");
    let mut req = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    req.placement = Placement::Rect {
        page: 1,
        rect: [340.0, 200.0, 520.0, 290.0],
    };
    let signed = sign(&original, &req, "personal-rsa").expect("sign");
    assert!(signed.starts_with(&original));
    let update = String::from_utf8_lossy(&signed[original.len()..]);
    assert!(update.contains("/Type /XRef"), "an xref stream");
    assert!(!update.contains("\ntrailer"), "no classic trailer");
    check_signatures(&signed, 1);
    qpdf_check(&signed);
    pdfsig_valid(&signed, 1);
}

// ---------------------------------------------------------------------------------------------
// Text appearances: COPY (P3), APPENDIX (P4), SCANNED_ISSUE (D3), RECEIVED (D6)
// ---------------------------------------------------------------------------------------------

#[test]
fn copy_text_top_right_reads_back_in_vietnamese_P3() {
    let pki = TestPki::get();
    let chain = chain();
    let org = pki.leaf_der("org-rsa");
    let t = time::macros::datetime!(2025-03-14 02:30:00 UTC);
    let mut req = PadesRequest::new(Profile::Copy, &org, &chain, t);
    req.text.copy_form = Some("SAO Y BẢN CHÍNH".into());
    let signed = sign(&sample_pdf(false), &req, "org-rsa").expect("COPY");
    check_signatures(&signed, 1);
    qpdf_check(&signed);
    // Top right of page 1 (595 x 842).
    let r = field_rect(&signed, "kyso_copy_1");
    assert!(r[2] > 560.0 && r[3] > 810.0, "{r:?}");
    // Only the glyphs used are embedded.
    assert!(
        signed.len() - sample_pdf(false).len() < 60_000,
        "{} bytes",
        signed.len()
    );
    if let Some(text) = pdftotext(&signed) {
        assert!(text.contains("SAO Y BẢN CHÍNH"), "{text}");
        assert!(text.contains(kyso_tests::ORG_NAME), "{text}");
        assert!(text.contains("2025-03-14T09:30:00+07:00"), "{text}");
    }
    // COPY goes top right of page 1, nowhere else (P3).
    req.placement = Placement::Rect {
        page: 1,
        rect: [0.0, 0.0, 10.0, 10.0],
    };
    assert!(matches!(
        pades::prepare(&sample_pdf(false), &req),
        Err(PadesError::Placement(_))
    ));
}

#[test]
fn appendix_scanned_issue_and_received_appearances_P4_D3_D6() {
    let pki = TestPki::get();
    let chain = chain();
    let org = pki.leaf_der("org-rsa");
    let t = time::macros::datetime!(2025-03-14 02:30:00 UTC);

    let mut req = PadesRequest::new(Profile::Appendix, &org, &chain, t);
    let e = pades::prepare(&sample_pdf(false), &req).unwrap_err();
    assert!(matches!(e, PadesError::Text(_)), "P4 needs the number: {e}");
    req.text.number_and_symbol = Some("45/QĐ-UBND".into());
    let appendix = sign(&sample_pdf(false), &req, "org-rsa").expect("APPENDIX");
    check_signatures(&appendix, 1);

    let req = PadesRequest::new(Profile::ScannedIssue, &org, &chain, t);
    let scanned = sign(&sample_pdf(false), &req, "org-rsa").expect("SCANNED_ISSUE");
    check_signatures(&scanned, 1);

    let mut req = PadesRequest::new(Profile::Received, &org, &chain, t);
    req.text.organisation = Some("Sở Tài chính tỉnh Khánh Hòa".into());
    req.text.incoming_number = Some("1234".into());
    // The received stamp goes over a document that already carries signatures (W3).
    let received = sign(&appendix, &req, "org-rsa").expect("RECEIVED");
    assert!(received.starts_with(&appendix));
    check_signatures(&received, 2);
    qpdf_check(&received);
    pdfsig_valid(&received, 2);

    if let Some(text) = pdftotext(&appendix) {
        assert!(text.contains("45/QĐ-UBND"), "{text}");
        assert!(text.contains("2025-03-14T09:30:00+07:00"), "{text}");
    }
    if let Some(text) = pdftotext(&scanned) {
        assert!(text.contains(kyso_tests::ORG_NAME), "{text}");
    }
    if let Some(text) = pdftotext(&received) {
        assert!(text.contains("ĐẾN"), "{text}");
        assert!(text.contains("1234"), "{text}");
        assert!(text.contains("Sở Tài chính tỉnh Khánh Hòa"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: a typed error, nothing signed
// ---------------------------------------------------------------------------------------------

fn comment_req<'a>(org: &'a [u8], chain: &'a [Vec<u8>]) -> PadesRequest<'a> {
    PadesRequest::new(Profile::Comment, org, chain, now())
}

#[test]
fn bad_inputs_get_typed_errors() {
    let pki = TestPki::get();
    let chain = chain();
    let org = pki.leaf_der("org-rsa");
    let req = comment_req(&org, &chain);
    let good = sample_pdf(false);

    let e = pades::prepare(b"hello, this is not a PDF", &req).unwrap_err();
    assert!(matches!(e, PadesError::NotPdf(_)), "{e}");

    let truncated = &good[..good.len() - 40];
    let e = pades::prepare(truncated, &req).unwrap_err();
    assert!(
        matches!(e, PadesError::NotPdf(_) | PadesError::Malformed(_)),
        "{e}"
    );

    // The xref entries shifted by a few bytes: refused, not repaired.
    let rfind = |needle: &[u8]| {
        good.windows(needle.len())
            .rposition(|w| w == needle)
            .unwrap()
    };
    let at = good.windows(6).position(|w| w == b"\nxref\n").unwrap() + 1;
    let mut broken = good.clone();
    let first_entry = at + "xref\n0 7\n0000000000 65535 f\r\n".len();
    broken[first_entry + 9] = b'3';
    let e = pades::prepare(&broken, &req).unwrap_err();
    assert!(matches!(e, PadesError::Malformed(_)), "{e}");

    // startxref pointing nowhere.
    let mut broken = good.clone();
    let sx = rfind(b"startxref\n") + "startxref\n".len();
    broken[sx] = b'9';
    let e = pades::prepare(&broken, &req).unwrap_err();
    assert!(matches!(e, PadesError::Malformed(_)), "{e}");

    // Deeply nested arrays in the page's resources.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let objects = vec![
        "<</Type /Catalog /Pages 2 0 R>>".to_owned(),
        "<</Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842]>>".to_owned(),
        format!("<</Type /Page /Parent 2 0 R /Resources <</X {deep}>>>>"),
    ];
    let e = pades::prepare(&pdf_from(&objects, ""), &req).unwrap_err();
    assert!(matches!(e, PadesError::TooDeep { .. }), "{e}");

    // Encrypted (a standard security handler dictionary in the trailer).
    let objects = vec![
        "<</Type /Catalog /Pages 2 0 R>>".to_owned(),
        "<</Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842]>>".to_owned(),
        "<</Type /Page /Parent 2 0 R>>".to_owned(),
        "<</Filter /Standard /V 2 /R 3 /Length 128 /O <00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF> /U <00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF> /P -4>>".to_owned(),
    ];
    let encrypted = pdf_from(
        &objects,
        " /Encrypt 4 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]",
    );
    let e = pades::prepare(&encrypted, &req).unwrap_err();
    assert_eq!(e, PadesError::Encrypted);
    if tool("qpdf") {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.pdf"), dir.path().join("b.pdf"));
        std::fs::write(&a, &good).unwrap();
        kyso_tests::run(
            Command::new("qpdf")
                .args(["--encrypt", "", "owner", "256", "--"])
                .arg(&a)
                .arg(&b),
            None,
            kyso_tests::COMMAND_TIMEOUT,
        )
        .expect_success();
        let e = pades::prepare(&std::fs::read(&b).unwrap(), &req).unwrap_err();
        assert_eq!(e, PadesError::Encrypted);
    }

    // Over the size limit.
    let mut small = comment_req(&org, &chain);
    small.limits = PadesLimits {
        max_bytes: 100,
        ..PadesLimits::default()
    };
    let e = pades::prepare(&good, &small).unwrap_err();
    assert!(matches!(e, PadesError::TooLarge { .. }), "{e}");

    // A PNG kind the decoder does not take.
    let mut req = PadesRequest::new(Profile::Approval, &org, &chain, now());
    req.placement = Placement::Rect {
        page: 1,
        rect: [10.0, 10.0, 100.0, 100.0],
    };
    req.image = Some(b"\x89PNG\r\n\x1a\nnot really");
    let e = pades::prepare(&good, &req).unwrap_err();
    assert!(matches!(e, PadesError::Image(_)), "{e}");
    req.image = None;
    req.placement = Placement::Rect {
        page: 7,
        rect: [10.0, 10.0, 100.0, 100.0],
    };
    let e = pades::prepare(&good, &req).unwrap_err();
    assert!(matches!(e, PadesError::Page { page: 7, pages: 1 }), "{e}");
}

#[test]
fn sample_images_are_where_the_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/images");
    assert_eq!(
        std::fs::read(root.join("seal-sample.png")).unwrap(),
        pades::samples::SEAL_PNG
    );
    assert!(root.join("generate.py").exists());
}
