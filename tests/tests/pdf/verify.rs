//! PDF (PAdES) verification: the strict reader, the byte range checks, the analysis of later
//! incremental updates, and the known PDF signature attacks, on PDFs written by
//! `kyso_tests::pdf_fixtures` and signed with `kyso_pki::cms_build` and the test PKI.
//!
//! Rule IDs: V2 (signature, certificate, path), V5 (an altered document is refused), D2 (the
//! organisation signs after the person on the same PDF), W3 (the clerk verifies both).

use std::time::Duration;

use kyso_pdf::parse_signatures;
use kyso_pki::time::OffsetDateTime;
use kyso_proto::verifier::v1 as pb;
use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use kyso_tests::hostile::{field_fan_out_pdf, form_pdf};
use kyso_tests::pdf_fixtures::{
    BaseOptions, PAGE_TEXT, PdfDoc, SignOptions, classic_pdf, find, huge_xref, shift_last_startxref,
};
use kyso_tests::{PkiServers, TestPki};
use kyso_validation::pdf::{ModificationKind, PdfError, PdfLimits, PdfReport, PdfVerifyOptions};
use kyso_validation::report::{Indication, SubIndication, TimeSource};
use kyso_validation::verify::Verifier;
use tokio::net::TcpListener;
use tonic::Code;
use tonic_types::StatusExt;

fn servers() -> &'static PkiServers {
    kyso_tests::shared_servers()
}

fn verifier() -> Verifier {
    kyso_tests::verifier_from(&kyso_tests::trust_config(servers()))
}

async fn verify(pdf: &[u8]) -> PdfReport {
    verifier()
        .verify_pdf(pdf, &PdfVerifyOptions::default(), OffsetDateTime::now_utc())
        .await
        .unwrap_or_else(|e| panic!("verify_pdf refused the input: {e}"))
}

fn signed(base: &BaseOptions, leaf: &str) -> PdfDoc {
    let mut doc = PdfDoc::base(base);
    doc.sign(&SignOptions::new(leaf, "Sig1"));
    doc
}

fn classic() -> BaseOptions {
    BaseOptions::default()
}

fn streams() -> BaseOptions {
    BaseOptions {
        xref_stream: true,
        ..BaseOptions::default()
    }
}

#[track_caller]
fn assert_passed(r: &PdfReport) {
    assert_eq!(r.indication, Indication::TotalPassed, "{r:#?}");
    for s in &r.signatures {
        assert_eq!(s.report.indication, Indication::TotalPassed, "{s:#?}");
    }
}

#[track_caller]
fn assert_failed(r: &PdfReport, sig: usize, sub: SubIndication, needle: &str) {
    let s = &r.signatures[sig];
    assert_eq!(s.report.indication, Indication::TotalFailed, "{s:#?}");
    assert_eq!(s.report.sub_indication, Some(sub), "{s:#?}");
    assert!(
        s.report.message.contains(needle),
        "message {:?} lacks {needle:?}",
        s.report.message
    );
    assert_eq!(r.indication, Indication::TotalFailed);
}

// ---------------------------------------------------------------------------------------------
// Valid documents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn one_signature_classic_xref_passes_V2() {
    let doc = signed(&classic(), "personal-rsa");
    let r = verify(&doc.bytes).await;
    assert_passed(&r);
    assert_eq!(r.revisions.len(), 2);
    assert_eq!(r.signatures.len(), 1);
    let s = &r.signatures[0];
    assert_eq!(s.field_name, "Sig1");
    assert_eq!(s.sub_filter, "ETSI.CAdES.detached");
    assert_eq!(s.revision, 1);
    assert!(s.covers_whole_document);
    assert!(s.modifications.is_empty(), "{:#?}", s.modifications);
    assert_eq!(s.reason.as_deref(), Some("Ban hanh van ban"));
    assert_eq!(s.location.as_deref(), Some("Khanh Hoa"));
    let br = s.byte_range.expect("byte range");
    assert_eq!(br[0], 0);
    assert_eq!(br[2] + br[3], doc.bytes.len() as u64);
    // PAdES signs no signing-time: /M is the claimed time, reported, never proof (N3).
    assert_eq!(s.report.reference_time.source, TimeSource::ValidationTime);
    assert_eq!(s.report.claimed_signing_time, s.signing_time);
    assert!(s.signing_time.is_some());
    assert!(
        s.report.warnings.iter().any(|w| w.contains("/M")),
        "{:?}",
        s.report.warnings
    );
    assert!(s.report.ess_signing_certificate_v2);
    assert_eq!(
        s.report.signer.as_ref().and_then(|i| i.common_name.clone()),
        Some(kyso_tests::PERSONAL_CN.to_owned())
    );
}

#[tokio::test]
async fn xref_stream_and_object_stream_pass() {
    let doc = signed(&streams(), "org-rsa");
    let parsed = parse_signatures(&doc.bytes, &PdfLimits::default()).expect("parses");
    assert!(parsed.revisions.iter().all(|r| r.xref_stream));
    let r = verify(&doc.bytes).await;
    assert_passed(&r);
    assert_eq!(r.signatures[0].revision, 1);
    assert!(r.signatures[0].covers_whole_document);
}

#[tokio::test]
async fn adbe_pkcs7_detached_is_accepted() {
    let mut doc = PdfDoc::base(&classic());
    let mut o = SignOptions::new("personal-rsa", "Sig1");
    o.sub_filter = "adbe.pkcs7.detached".into();
    doc.sign(&o);
    assert_passed(&verify(&doc.bytes).await);
}

#[tokio::test]
async fn second_signature_is_an_allowed_change_for_the_first_D2() {
    for base in [classic(), streams()] {
        let mut doc = signed(&base, "personal-rsa");
        doc.sign(&SignOptions::new("org-rsa", "Seal"));
        let r = verify(&doc.bytes).await;
        assert_passed(&r);
        assert_eq!(r.signatures.len(), 2);
        let (first, second) = (&r.signatures[0], &r.signatures[1]);
        assert_eq!((first.field_name.as_str(), first.revision), ("Sig1", 1));
        assert_eq!((second.field_name.as_str(), second.revision), ("Seal", 2));
        assert!(!first.covers_whole_document);
        assert!(second.covers_whole_document);
        assert!(!first.modifications.is_empty());
        assert!(
            first
                .modifications
                .iter()
                .all(|m| m.allowed && m.revision == 2),
            "{:#?}",
            first.modifications
        );
        assert!(
            first
                .modifications
                .iter()
                .any(|m| m.kind == ModificationKind::Signature)
        );
        assert!(second.modifications.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Tampering and disallowed changes (V5)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn byte_flipped_inside_the_range_is_hash_failure_V5() {
    let mut doc = signed(&classic(), "personal-rsa");
    let at = find(&doc.bytes, PAGE_TEXT.as_bytes()) + 14;
    doc.bytes[at] ^= 0x01;
    let r = verify(&doc.bytes).await;
    assert_failed(&r, 0, SubIndication::HashFailure, "");
}

#[tokio::test]
async fn changed_page_after_signature_fails_that_signature_V5() {
    for base in [classic(), streams()] {
        let mut doc = signed(&base, "personal-rsa");
        doc.change_page_content("Quyet dinh so 999/QD-UBND");
        let r = verify(&doc.bytes).await;
        assert_failed(
            &r,
            0,
            SubIndication::SigConstraintsFailure,
            "changed after this signature",
        );
        let s = &r.signatures[0];
        assert_eq!(s.revision, 1);
        assert!(!s.covers_whole_document);
        let bad: Vec<_> = s.modifications.iter().filter(|m| !m.allowed).collect();
        assert_eq!(bad.len(), 1, "{bad:#?}");
        assert_eq!(bad[0].kind, ModificationKind::PageContent);
        assert_eq!(bad[0].revision, 2);
        assert_eq!(bad[0].object, Some((4, 0)));
    }
}

#[tokio::test]
async fn non_signature_annotation_after_signature_fails_V5() {
    let mut doc = signed(&classic(), "personal-rsa");
    doc.add_text_annotation();
    let r = verify(&doc.bytes).await;
    assert_failed(&r, 0, SubIndication::SigConstraintsFailure, "annotation");
    let s = &r.signatures[0];
    assert!(
        s.modifications
            .iter()
            .any(|m| !m.allowed && m.kind == ModificationKind::Annotation),
        "{:#?}",
        s.modifications
    );
}

#[tokio::test]
async fn page_change_between_two_signatures_fails_only_the_first() {
    let mut doc = signed(&classic(), "personal-rsa");
    doc.change_page_content("Quyet dinh so 999/QD-UBND");
    doc.sign(&SignOptions::new("org-rsa", "Seal"));
    let r = verify(&doc.bytes).await;
    assert_eq!(r.indication, Indication::TotalFailed);
    assert_eq!(
        r.signatures[0].report.sub_indication,
        Some(SubIndication::SigConstraintsFailure)
    );
    assert_eq!(r.signatures[1].report.indication, Indication::TotalPassed);
    assert_eq!(r.signatures[1].revision, 3);
}

#[tokio::test]
async fn bytes_appended_after_the_signed_eof_fail() {
    let mut doc = signed(&classic(), "personal-rsa");
    doc.bytes
        .extend_from_slice(b"1 0 obj\n<< /Type /Catalog >>\nendobj\n");
    let r = verify(&doc.bytes).await;
    assert_failed(&r, 0, SubIndication::SigConstraintsFailure, "no revision");
    assert!(!r.signatures[0].covers_whole_document);
    assert!(
        r.signatures[0]
            .modifications
            .iter()
            .any(|m| m.kind == ModificationKind::TrailingData)
    );
    // White space after %%EOF is not a change.
    let mut ws = signed(&classic(), "personal-rsa");
    ws.bytes.extend_from_slice(b"\r\n\n");
    assert_passed(&verify(&ws.bytes).await);
}

// ---------------------------------------------------------------------------------------------
// Byte range checks
// ---------------------------------------------------------------------------------------------

async fn with_tweak(t: fn([u64; 4], usize) -> [u64; 4]) -> PdfReport {
    let mut doc = PdfDoc::base(&classic());
    let mut o = SignOptions::new("personal-rsa", "Sig1");
    o.tweak = Some(t);
    doc.sign(&o);
    verify(&doc.bytes).await
}

#[tokio::test]
async fn overlapping_ranges_fail() {
    let r = with_tweak(|b, len| [0, b[1], b[1] - 100, len as u64 - (b[1] - 100)]).await;
    assert_failed(&r, 0, SubIndication::HashFailure, "overlap");
    assert!(r.signatures[0].byte_range_error.is_some());
}

#[tokio::test]
async fn short_second_range_fails() {
    let r = with_tweak(|b, _| [0, b[1], b[2], b[3] - 7]).await;
    assert_failed(&r, 0, SubIndication::HashFailure, "not the end");
}

#[tokio::test]
async fn gap_that_is_not_the_contents_fails() {
    // The gap leaves out the `<` `>` delimiters: the CMS is valid over the stated ranges,
    // but two bytes inside /Contents would be signed and the string itself would not.
    let r = with_tweak(|b, _| [0, b[1] + 1, b[2] - 1, b[3] + 1]).await;
    assert_failed(
        &r,
        0,
        SubIndication::HashFailure,
        "not exactly this signature's /Contents",
    );
    // A gap wider than /Contents leaves unsigned bytes of the dictionary.
    let r = with_tweak(|b, _| [0, b[1] - 20, b[2], b[3]]).await;
    assert_failed(&r, 0, SubIndication::HashFailure, "not exactly");
}

#[tokio::test]
async fn first_range_not_from_zero_fails() {
    let r = with_tweak(|b, _| [5, b[1] - 5, b[2], b[3]]).await;
    assert_failed(&r, 0, SubIndication::HashFailure, "not at 0");
}

// ---------------------------------------------------------------------------------------------
// Attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn shadow_object_brought_in_by_a_later_xref_fails() {
    let mut doc = signed(
        &BaseOptions {
            shadow_content: true,
            ..classic()
        },
        "personal-rsa",
    );
    // Before the attack, the hidden object is harmless: nothing refers to it.
    assert_passed(&verify(&doc.bytes).await);
    doc.redirect_to_shadow();
    let r = verify(&doc.bytes).await;
    assert_failed(
        &r,
        0,
        SubIndication::SigConstraintsFailure,
        "earlier revision",
    );
    assert!(r.signatures[0].modifications.iter().any(|m| !m.allowed
        && m.kind == ModificationKind::XrefRedirect
        && m.object == Some((4, 0))));
}

#[tokio::test]
async fn a_second_xref_section_hidden_in_an_update_fails() {
    let mut doc = signed(&classic(), "personal-rsa");
    doc.update_with_hidden_xref();
    let r = verify(&doc.bytes).await;
    assert_failed(
        &r,
        0,
        SubIndication::SigConstraintsFailure,
        "cross-reference section",
    );
}

#[test]
fn signatures_are_found_in_every_revision_even_if_removed_later() {
    // An update that drops the signature field from /AcroForm does not make the signature
    // disappear: it is still reported, with the removal as a disallowed change.
    let mut doc = signed(&classic(), "personal-rsa");
    let catalog = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
    doc.append_update(&[(1, catalog)]);
    let parsed = parse_signatures(&doc.bytes, &PdfLimits::default()).expect("parses");
    assert_eq!(parsed.signatures.len(), 1);
    assert!(parsed.signatures[0].has_disallowed_modifications());
}

// ---------------------------------------------------------------------------------------------
// Bad input: clear errors
// ---------------------------------------------------------------------------------------------

fn parse_err(pdf: &[u8]) -> PdfError {
    match parse_signatures(pdf, &PdfLimits::default()) {
        Ok(p) => panic!("parsed: {p:#?}"),
        Err(e) => e,
    }
}

#[test]
fn encrypted_pdf_is_refused() {
    let doc = PdfDoc::base(&BaseOptions {
        encrypt: true,
        ..classic()
    });
    assert_eq!(parse_err(&doc.bytes), PdfError::Encrypted);
    let doc = PdfDoc::base(&BaseOptions {
        encrypt: true,
        ..streams()
    });
    assert_eq!(parse_err(&doc.bytes), PdfError::Encrypted);
}

#[test]
fn not_a_pdf_and_truncated_files_are_refused() {
    assert!(matches!(
        parse_err(b"PK\x03\x04 a zip"),
        PdfError::NotPdf(_)
    ));
    assert!(matches!(parse_err(b""), PdfError::NotPdf(_)));
    let doc = PdfDoc::base(&classic());
    let half = &doc.bytes[..doc.bytes.len() / 2];
    assert!(matches!(parse_err(half), PdfError::NotPdf(_)));
}

#[tokio::test]
async fn truncated_signature_update_leaves_no_signature() {
    let doc = signed(&classic(), "personal-rsa");
    let cut = &doc.bytes[..doc.bytes.len() - 12];
    let r = verify(cut).await;
    assert!(r.signatures.is_empty(), "{r:#?}");
    assert_eq!(r.indication, Indication::TotalFailed);
}

#[test]
fn broken_xref_is_refused_not_repaired() {
    let doc = signed(&classic(), "personal-rsa");
    let broken = shift_last_startxref(&doc.bytes, 3);
    assert!(
        matches!(parse_err(&broken), PdfError::BrokenXref { .. }),
        "{:?}",
        parse_err(&broken)
    );
    let doc = signed(&streams(), "personal-rsa");
    let broken = shift_last_startxref(&doc.bytes, -1);
    assert!(matches!(parse_err(&broken), PdfError::BrokenXref { .. }));
}

#[test]
fn deeply_nested_arrays_are_refused() {
    for base in [classic(), streams()] {
        let doc = PdfDoc::base(&BaseOptions {
            nested_arrays: Some(100_000),
            ..base
        });
        let started = std::time::Instant::now();
        let e = parse_err(&doc.bytes);
        assert!(
            matches!(
                e,
                PdfError::TooLarge {
                    what: "object nesting depth",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn huge_object_counts_and_sizes_are_refused() {
    assert!(matches!(
        parse_err(&huge_xref(200_000_000)),
        PdfError::TooLarge { .. }
    ));
    let doc = PdfDoc::base(&classic());
    let small = PdfLimits {
        max_bytes: 100,
        ..PdfLimits::default()
    };
    assert!(matches!(
        parse_signatures(&doc.bytes, &small),
        Err(PdfError::TooLarge { .. })
    ));
}

/// Parses and verifies `pdf` in-process; an error or a report, promptly, never a panic.
async fn answered_promptly(label: &str, pdf: &[u8]) -> Result<(), PdfError> {
    let started = std::time::Instant::now();
    let parsed = parse_signatures(pdf, &PdfLimits::default()).map(|_| ());
    let verified = verifier()
        .verify_pdf(pdf, &PdfVerifyOptions::default(), OffsetDateTime::now_utc())
        .await
        .map(|_| ());
    let took = started.elapsed();
    eprintln!(
        "{label}: {} bytes answered in {took:?}: {parsed:?}",
        pdf.len()
    );
    assert!(took < Duration::from_secs(5), "{label}: took {took:?}");
    assert_eq!(
        parsed, verified,
        "{label}: the reader and the verifier agree"
    );
    parsed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_field_fan_out_with_a_huge_name_is_refused_promptly() {
    // A 1 MiB field name and 100,000 references to one kid: building the kid's dotted
    // name once per reference would need about 100 GB.
    let refs = "4 0 R ".repeat(100_000);
    let pdf = field_fan_out_pdf();
    assert!(pdf.len() > 1_600_000);
    let e = answered_promptly("fan-out, 1 MiB name", &pdf)
        .await
        .expect_err("a 1 MiB field name is refused");
    assert!(
        matches!(
            e,
            PdfError::TooLarge {
                what: "form field name length",
                ..
            }
        ),
        "{e:?}"
    );
    // With a short name the shared kid is walked once and the PDF read.
    let pdf = form_pdf("parent", &refs, "");
    answered_promptly("fan-out, short name", &pdf).await.ok();
    let parsed =
        parse_signatures(&pdf, &PdfLimits::default()).expect("a fan-out to one kid is read");
    assert!(parsed.signatures.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_field_cycle_is_walked_once() {
    // The kid lists its parent among its own kids: 3 → 4 → 3.
    let pdf = form_pdf("a", "4 0 R", " /Kids [3 0 R 4 0 R]");
    let r = answered_promptly("field cycle", &pdf).await;
    assert!(r.is_ok(), "a cycle is walked once, not refused: {r:?}");
}

#[test]
fn arrays_longer_than_the_limit_are_refused() {
    let pdf = form_pdf("a", &"4 0 R ".repeat(2_000), "");
    let small = PdfLimits {
        max_array_len: 1_000,
        ..PdfLimits::default()
    };
    assert!(
        matches!(
            parse_signatures(&pdf, &small),
            Err(PdfError::TooLarge {
                what: "array or dictionary size",
                ..
            })
        ),
        "an array of 2,000 elements under a limit of 1,000"
    );
    assert!(parse_signatures(&pdf, &PdfLimits::default()).is_ok());
    // Distinct fields beyond the field count: refused when queued.
    let objects: Vec<String> = [
        "<</Type /Catalog /Pages 2 0 R /AcroForm <</Fields [3 0 R]>>>>".to_owned(),
        "<</Type /Pages /Kids [] /Count 0>>".to_owned(),
        format!(
            "<</T (p) /Kids [{}]>>",
            (4..54).map(|n| format!("{n} 0 R ")).collect::<String>()
        ),
    ]
    .into_iter()
    .chain((4..54).map(|n| format!("<</T (f{n}) /Parent 3 0 R>>")))
    .collect();
    let pdf = classic_pdf(&objects, "");
    let few = PdfLimits {
        max_form_fields: 20,
        ..PdfLimits::default()
    };
    assert!(
        matches!(
            parse_signatures(&pdf, &few),
            Err(PdfError::TooLarge {
                what: "form fields",
                ..
            })
        ),
        "51 fields under a limit of 20"
    );
    assert!(parse_signatures(&pdf, &PdfLimits::default()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Through the gRPC service
// ---------------------------------------------------------------------------------------------

async fn start_service() -> (String, tokio::sync::oneshot::Sender<()>) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = kyso_tests::verifier_config(servers());
    tokio::spawn(kyso_verifier::serve(
        config,
        kyso_verifier::Listeners {
            grpc,
            metrics: None,
        },
        kyso_verifier::system_clock(),
        async move {
            let _ = rx.await;
        },
    ));
    (format!("http://{addr}"), tx)
}

#[tokio::test]
async fn grpc_verify_pdf_reports_each_signature_and_refuses_bad_input() {
    let (url, _stop) = start_service().await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let mut client = VerifierClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);

    let mut doc = signed(&classic(), "personal-rsa");
    doc.sign(&SignOptions::new("org-rsa", "Seal"));
    let resp = client
        .verify_pdf(pb::VerifyPdfRequest {
            pdf: doc.bytes.clone().into(),
            ..Default::default()
        })
        .await
        .expect("VerifyPdf answers")
        .into_inner();
    assert_eq!(
        resp.indication,
        pb::Indication::TotalPassed as i32,
        "{resp:#?}"
    );
    assert_eq!(resp.revisions.len(), 3);
    assert_eq!(resp.signatures.len(), 2);
    let first = &resp.signatures[0];
    assert_eq!(first.field_name, "Sig1");
    assert_eq!(first.revision, 1);
    assert!(!first.covers_whole_document);
    assert_eq!(first.byte_range.len(), 4);
    assert!(!first.modifications.is_empty());
    assert!(first.modifications.iter().all(|m| m.allowed));
    assert_eq!(
        first.report.as_ref().map(|r| r.indication),
        Some(pb::Indication::TotalPassed as i32)
    );
    assert!(resp.signatures[1].covers_whole_document);

    // A changed page: the first signature says so.
    doc.change_page_content("Quyet dinh so 999");
    let resp = client
        .verify_pdf(pb::VerifyPdfRequest {
            pdf: doc.bytes.clone().into(),
            ..Default::default()
        })
        .await
        .expect("VerifyPdf answers")
        .into_inner();
    assert_eq!(resp.indication, pb::Indication::TotalFailed as i32);
    let m = resp.signatures[0]
        .modifications
        .iter()
        .find(|m| !m.allowed)
        .expect("a disallowed modification");
    assert_eq!(m.kind, pb::ModificationKind::PageContent as i32);
    assert_eq!(m.object_number, 4);
    assert_eq!(m.revision, 3);

    // Not a PDF: INVALID_ARGUMENT with a field violation on `pdf`.
    let err = client
        .verify_pdf(pb::VerifyPdfRequest {
            pdf: b"not a pdf".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("not a PDF"), "{}", err.message());
    let details = err.get_error_details();
    let br = details.bad_request().expect("field violations");
    assert_eq!(br.field_violations[0].field, "pdf");

    // Encrypted: INVALID_ARGUMENT, said in so many words.
    let enc = PdfDoc::base(&BaseOptions {
        encrypt: true,
        ..classic()
    });
    let err = client
        .verify_pdf(pb::VerifyPdfRequest {
            pdf: enc.bytes.into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("encrypted"), "{}", err.message());
    let _ = TestPki::get();
}
