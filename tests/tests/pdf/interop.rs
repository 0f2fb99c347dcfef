//! Interop between kyso's PDF signatures and the independent peers: pyHanko (signer and
//! validator), poppler's `pdfsig` and `qpdf --check`.
//!
//! 1. **pyHanko → kyso.** PDFs signed by pyHanko (one signature; a personal then an
//!    organisation signature as an incremental update; later updates changing page content or
//!    adding an annotation; a bit flipped inside the signed range; a revoked signer; the
//!    object-stream sample; EC and RSASSA-PSS keys) are validated by pyHanko and by
//!    `Verifier::verify_pdf`, with the same trust roots and the same revocation sources (the
//!    test PKI's root and intermediates; pyHanko fetches OCSP/CRLs from the same loopback
//!    servers the kyso verifier asks), and the verdicts must agree per signature as the table
//!    below says ([`expected_from_pyhanko`] is the table in code).
//! 2. **kyso → peers.** PDFs signed by `kyso_pades` in every profile (APPROVAL with its
//!    image then ISSUE over it, RECEIVED after ISSUE, COPY, APPENDIX, SCANNED_ISSUE) on the
//!    reportlab decision and on its object-stream rewrite validate in pyHanko (intact, valid,
//!    trusted with the offline CRLs; earlier signatures FORM_FILLING or better, the last one
//!    ENTIRE_FILE and untouched), in `pdfsig` (signature valid, certificate trusted), and pass
//!    `qpdf --check`.
//!
//! ## The verdict mapping (pyHanko → kyso), per signature
//!
//! | pyHanko | kyso |
//! |---|---|
//! | `intact` false (digest over the byte range wrong) | TOTAL_FAILED / HASH_FAILURE |
//! | intact, valid, `revoked` (pyHanko always says REVOKED_NO_POE: it has no proof of time) | revoked at or before the claimed `/M`: TOTAL_FAILED / REVOKED; revoked after it: INDETERMINATE / REVOKED_NO_POE (docs/FLOWS.md "Verdict rules") |
//! | intact, valid, trusted, ENTIRE_FILE, modification NONE (`INTACT:TRUSTED,UNTOUCHED`) | TOTAL_PASSED, covers the whole document, no modification |
//! | intact, valid, trusted, ENTIRE_REVISION, FORM_FILLING, docmdp ok, bottom line true | TOTAL_PASSED, not the whole document, every modification allowed and one a later signature brings (signature value, field/widget, appearance, AcroForm, refreshed `/Info` or XMP metadata, the new xref stream), a SIGNATURE and a SIGNATURE_FIELD among them |
//! | intact, valid, trusted, modification OTHER, docmdp not ok, bottom line false (`EXTENDED_WITH_OTHER,ILLEGAL_MODIFICATIONS`) | TOTAL_FAILED / SIG_CONSTRAINTS_FAILURE, at least one disallowed modification |
//! | modification ANNOTATIONS (pyHanko allows a new comment when DocMDP permits it) | **differs on purpose**: TOTAL_FAILED / SIG_CONSTRAINTS_FAILURE with a disallowed ANNOTATION. A receiving clerk refuses a document altered after signing (V5, W3); a comment drawn over a decision is such an alteration |
//!
//! Always: pyHanko's bottom line ⇔ kyso TOTAL_PASSED; pyHanko ENTIRE_FILE ⇔ kyso
//! `covers_whole_document`; the field names, and the signer, are the same.
//!
//! Differences found and asserted explicitly:
//! - A later update adding a sticky note: pyHanko's default diff policy does not classify a
//!   new non-signature annotation and reports OTHER; kyso names it (ANNOTATION, not allowed).
//!   Both refuse the signature (V5).
//! - A revoked signer whose `/M` is after the revocation: pyHanko REVOKED_NO_POE, kyso REVOKED
//!   (the claimed time is after the revocation, so whatever the true time was, the key was
//!   already revoked; kyso does not need a proof of existence to fail it). When `/M` is
//!   before the revocation both say REVOKED_NO_POE.
//! - RSASSA-PSS with pyHanko's default (longest) salt and with a 32-byte salt: both pass in
//!   both (kyso verifies salts other than the hash length outside aws-lc-rs).
//! - Found and fixed in kyso (`pdf/src/diff.rs`): a later signature refreshing the XMP
//!   metadata stream (catalog `/Metadata`), as pyHanko's does on the object-stream sample, was
//!   "object of the signed document replaced" and failed the earlier signature.
//! - pdfsig on kyso's object-stream APPROVAL+ISSUE+RECEIVED file: "Unknown issue with
//!   Certificate" for the third signature only (a peer quirk, asserted as such below).
//! - A flipped bit: pyHanko reports the digest failure as `INVALID` with `valid` false too
//!   (it does not check the signature once the digest is wrong); kyso says HASH_FAILURE.

use std::process::Command;
use std::sync::OnceLock;

use kyso_pades::{self as pades, PadesRequest, Placement, Profile, StampText};
use kyso_pki::cms_build::{self, SigningAlgorithm};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::OffsetDateTime;
use kyso_tests::pdf_peers::{
    NssDb, Peers, PyhankoSign, PyhankoSignature, SampleKind, SamplePdf, Tamper, ValidateOptions,
    pdfsig, qpdf_check,
};
use kyso_tests::{TestPki, shared_servers};
use kyso_validation::pdf::{ModificationKind, PdfReport, PdfSignatureReport, PdfVerifyOptions};
use kyso_validation::report::{Indication, SubIndication, TimeSource};

// ---------------------------------------------------------------------------------------------
// The two validators
// ---------------------------------------------------------------------------------------------

fn verifier() -> kyso_validation::verify::Verifier {
    kyso_tests::verifier_from(&kyso_tests::trust_config(shared_servers()))
}

/// kyso's verdict (at the validation time: `/M` is only claimed), revocation required and
/// fetched from the test servers, as the verifier service is configured for the test PKI.
async fn kyso_verify(pdf: &[u8]) -> PdfReport {
    verifier()
        .verify_pdf(pdf, &PdfVerifyOptions::default(), OffsetDateTime::now_utc())
        .await
        .unwrap_or_else(|e| panic!("kyso refused to read the PDF: {e}"))
}

/// pyHanko's verdict with the same trust and revocation sources as [`kyso_verify`]: the test
/// root, the intermediates, OCSP and CRLs fetched from the same loopback servers, revocation
/// data required.
fn pyhanko_verify(pdf: &[u8]) -> Vec<PyhankoSignature> {
    let pki = TestPki::get();
    Peers::get().pyhanko_validate(pdf, &ValidateOptions::online(pki, shared_servers()))
}

// ---------------------------------------------------------------------------------------------
// The mapping
// ---------------------------------------------------------------------------------------------

/// What kyso must say about a signature, given pyHanko's verdict on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// TOTAL_PASSED over the whole file, nothing changed after it.
    PassedWhole,
    /// TOTAL_PASSED over an earlier revision; every later change allowed and a signature's.
    PassedFormFilling,
    /// TOTAL_FAILED / HASH_FAILURE.
    HashFailure,
    /// TOTAL_FAILED / REVOKED or INDETERMINATE / REVOKED_NO_POE, by the time rule.
    Revoked,
    /// TOTAL_FAILED / SIG_CONSTRAINTS_FAILURE, a disallowed modification listed (V5).
    Altered,
}

/// The table of the module documentation. Panics on a pyHanko verdict outside the table (a
/// new kind of verdict needs a decision, not a silent pass).
fn expected_from_pyhanko(p: &PyhankoSignature) -> Expected {
    if !p.intact {
        return Expected::HashFailure;
    }
    assert!(p.valid, "intact but invalid: {}", p.describe());
    if p.revoked {
        return Expected::Revoked;
    }
    assert!(p.trusted, "untrusted for another reason: {}", p.describe());
    match (
        p.coverage.as_deref(),
        p.modification_level.as_deref(),
        p.docmdp_ok,
    ) {
        (Some("ENTIRE_FILE"), Some("NONE"), _) => Expected::PassedWhole,
        (Some("ENTIRE_REVISION"), Some("FORM_FILLING" | "LTA_UPDATES"), Some(true)) => {
            Expected::PassedFormFilling
        }
        // Difference by design: kyso refuses a comment added after signing (V5, W3).
        (Some("ENTIRE_REVISION"), Some("ANNOTATIONS" | "OTHER"), _) => Expected::Altered,
        _ => panic!("no mapping for pyHanko's verdict {}", p.describe()),
    }
}

/// The modifications that may follow a signature whose pyHanko level is FORM_FILLING: a later
/// signature and what comes with it (its value, field and widget, appearance streams, the
/// AcroForm entry), the document metadata signers refresh (`/Info`, the XMP stream), new
/// objects reached only through those, and the writer's cross-reference stream object
/// (referenced by nothing).
const SIGNATURE_KINDS: &[ModificationKind] = &[
    ModificationKind::Signature,
    ModificationKind::SignatureField,
    ModificationKind::SignatureAppearance,
    ModificationKind::FormFields,
    ModificationKind::ObjectAdded,
    ModificationKind::Metadata,
    ModificationKind::UnusedObject,
];

/// Asserts that kyso's report on `k` is what the mapping demands for pyHanko's `p`.
#[track_caller]
fn assert_agrees(case: &str, p: &PyhankoSignature, k: &PdfSignatureReport) {
    let ctx = || {
        format!(
            "{case}: pyHanko {} / kyso {} {:?}/{:?}: {} (modifications {:#?})",
            p.describe(),
            k.field_name,
            k.report.indication,
            k.report.sub_indication,
            k.report.message,
            k.modifications
        )
    };
    assert_eq!(p.field, k.field_name, "{}", ctx());
    let passed = k.report.indication == Indication::TotalPassed;
    assert_eq!(
        p.bottom_line,
        passed,
        "bottom line ⇔ TOTAL_PASSED: {}",
        ctx()
    );
    if p.intact {
        assert_eq!(
            p.coverage.as_deref() == Some("ENTIRE_FILE"),
            k.covers_whole_document,
            "ENTIRE_FILE ⇔ covers_whole_document: {}",
            ctx()
        );
    }
    // The same signer, read from the same CMS.
    if let (Some(who), Some(cn)) = (
        p.signer.as_deref(),
        k.report
            .signer
            .as_ref()
            .and_then(|s| s.common_name.as_deref()),
    ) {
        assert!(who.contains(cn), "signer: {}", ctx());
    }
    let disallowed = k.modifications.iter().filter(|m| !m.allowed).count();
    match expected_from_pyhanko(p) {
        Expected::PassedWhole => {
            assert!(passed, "{}", ctx());
            assert!(k.modifications.is_empty(), "{}", ctx());
        }
        Expected::PassedFormFilling => {
            assert!(passed, "{}", ctx());
            assert!(!k.modifications.is_empty(), "{}", ctx());
            assert!(
                k.modifications
                    .iter()
                    .all(|m| m.allowed && SIGNATURE_KINDS.contains(&m.kind)),
                "only a later signature's changes: {}",
                ctx()
            );
            // And a later signature is what there is.
            for kind in [
                ModificationKind::Signature,
                ModificationKind::SignatureField,
            ] {
                assert!(
                    k.modifications.iter().any(|m| m.kind == kind),
                    "no {kind:?}: {}",
                    ctx()
                );
            }
        }
        Expected::HashFailure => {
            assert_eq!(k.report.indication, Indication::TotalFailed, "{}", ctx());
            assert_eq!(
                k.report.sub_indication,
                Some(SubIndication::HashFailure),
                "{}",
                ctx()
            );
        }
        Expected::Revoked => {
            let m = k.signing_time.expect("/M is the claimed time");
            let revoked_at = OffsetDateTime::from(TestPki::get().revoked_at);
            // docs/FLOWS.md: revoked at or before the claimed time fails; revoked after a
            // claimed (unproven) time is indeterminate.
            let (ind, sub) = if revoked_at <= m {
                (Indication::TotalFailed, SubIndication::Revoked)
            } else {
                (Indication::Indeterminate, SubIndication::RevokedNoPoe)
            };
            assert_eq!(
                (k.report.indication, k.report.sub_indication),
                (ind, Some(sub)),
                "{}",
                ctx()
            );
            assert_eq!(
                p.trust_problem.as_deref(),
                Some("REVOKED_NO_POE"),
                "{}",
                ctx()
            );
        }
        Expected::Altered => {
            assert_eq!(k.report.indication, Indication::TotalFailed, "{}", ctx());
            assert_eq!(
                k.report.sub_indication,
                Some(SubIndication::SigConstraintsFailure),
                "{}",
                ctx()
            );
            assert!(disallowed > 0, "{}", ctx());
        }
    }
}

/// Both validators on `pdf`; asserts the mapping for every signature and returns both
/// verdicts for case-specific checks.
async fn compare(case: &str, pdf: &[u8], n: usize) -> (Vec<PyhankoSignature>, PdfReport) {
    let py = pyhanko_verify(pdf);
    let ky = kyso_verify(pdf).await;
    assert_eq!(py.len(), n, "{case}: pyHanko's signatures {py:#?}");
    assert_eq!(ky.signatures.len(), n, "{case}: kyso's signatures {ky:#?}");
    for (p, k) in py.iter().zip(&ky.signatures) {
        assert_agrees(case, p, k);
    }
    (py, ky)
}

// ---------------------------------------------------------------------------------------------
// pyHanko → kyso
// ---------------------------------------------------------------------------------------------

/// The organisation's visible signature (bottom left, clear of the text).
fn org_rect() -> kyso_tests::pdf_peers::PdfRect {
    kyso_tests::pdf_peers::PdfRect::new(100.0, 40.0, 250.0, 90.0)
}

/// The decision signed by pyHanko: `personal-rsa` visibly in the signature block (Sig1), then
/// `org-rsa` visibly as an incremental update (Sig2) (D2's two signatures).
fn pyhanko_two_signatures() -> &'static (Vec<u8>, Vec<u8>) {
    static DOC: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    DOC.get_or_init(|| {
        let pki = TestPki::get();
        let peers = Peers::get();
        let sample = peers.sample(SampleKind::Decision);
        let one = peers.pyhanko_sign(
            &sample.bytes,
            &PyhankoSign::leaf(pki, "personal-rsa", "Sig1")
                .visible(sample.signature_block.signature_box),
        );
        let two = peers.pyhanko_sign(
            &one,
            &PyhankoSign::leaf(pki, "org-rsa", "Sig2").visible(org_rect()),
        );
        (one, two)
    })
}

#[tokio::test]
async fn pyhanko_one_signature_and_personal_then_organisation_agree_V2_D2() {
    let (one, two) = pyhanko_two_signatures();
    let (py, ky) = compare("one signature", one, 1).await;
    assert_eq!(py[0].summary, "INTACT:TRUSTED,UNTOUCHED");
    assert_eq!(ky.indication, Indication::TotalPassed);

    let (py, ky) = compare("personal then organisation", two, 2).await;
    assert_eq!(py[0].modification_level.as_deref(), Some("FORM_FILLING"));
    assert_eq!(py[1].modification_level.as_deref(), Some("NONE"));
    assert_eq!(ky.indication, Indication::TotalPassed);
    assert_eq!(
        (ky.signatures[0].revision, ky.signatures[1].revision),
        (1, 2)
    );
    // The claimed time is /M (pyHanko, as PAdES wants, signs no signing-time attribute): it is
    // reported, never proof; without a timestamp the signatures are judged now (N3).
    for s in &ky.signatures {
        let source = s.report.reference_time.source;
        assert_eq!(source, TimeSource::ValidationTime);
        assert_eq!(s.report.claimed_signing_time, s.signing_time);
    }
}

#[tokio::test]
async fn pyhanko_later_content_change_fails_both_signatures_V5() {
    let (_, two) = pyhanko_two_signatures();
    let t = Peers::get().tamper(two, Tamper::Content);
    let (py, ky) = compare("later content update", &t, 2).await;
    for (p, k) in py.iter().zip(&ky.signatures) {
        assert_eq!(p.modification_level.as_deref(), Some("OTHER"));
        // kyso names what changed: page 1's content.
        assert!(
            k.modifications
                .iter()
                .any(|m| !m.allowed && m.kind == ModificationKind::PageContent),
            "{:#?}",
            k.modifications
        );
    }
}

/// The documented difference: pyHanko says OTHER (its diff policy does not classify a new
/// non-signature annotation), kyso names it ANNOTATION, not allowed; both refuse (V5, W3).
#[tokio::test]
async fn pyhanko_later_annotation_is_refused_by_both_named_by_kyso_V5_W3() {
    let (_, two) = pyhanko_two_signatures();
    let t = Peers::get().tamper(two, Tamper::Annotation);
    let (py, ky) = compare("later annotation", &t, 2).await;
    for (p, k) in py.iter().zip(&ky.signatures) {
        assert_eq!(p.modification_level.as_deref(), Some("OTHER"));
        assert!(
            k.modifications
                .iter()
                .any(|m| !m.allowed && m.kind == ModificationKind::Annotation),
            "{:#?}",
            k.modifications
        );
    }
}

#[tokio::test]
async fn pyhanko_byte_flipped_in_range_is_hash_failure_V5() {
    let (_, two) = pyhanko_two_signatures();
    let t = Peers::get().tamper(two, Tamper::FlipByte);
    let (py, _) = compare("flipped byte", &t, 2).await;
    assert!(py.iter().all(|p| p.summary == "INVALID"), "{py:#?}");
}

#[tokio::test]
async fn pyhanko_revoked_signer_is_revoked_in_both_V1() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let signed = peers.pyhanko_sign(&sample.bytes, &PyhankoSign::leaf(pki, "revoked", "Sig1"));
    let (py, ky) = compare("revoked signer", &signed, 1).await;
    assert_eq!(py[0].summary, "INTACT:REVOKED,UNTOUCHED");
    // pyHanko signed now, an hour after the revocation: kyso fails it outright.
    assert_eq!(
        ky.signatures[0].report.sub_indication,
        Some(SubIndication::Revoked)
    );
    // A caller-given (trusted, W5) time after the revocation: revoked as well.
    let at = verifier()
        .verify_pdf(
            &signed,
            &PdfVerifyOptions {
                at: Some(OffsetDateTime::now_utc()),
                ..PdfVerifyOptions::default()
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(
        at.signatures[0].report.sub_indication,
        Some(SubIndication::Revoked),
        "{at:#?}"
    );
}

/// pyHanko over the object-stream sample (xref streams, compressed objects), and with EC
/// P-256 and RSASSA-PSS keys.
#[tokio::test]
async fn pyhanko_object_streams_ec_and_pss_agree_V2() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let objstm = peers.sample(SampleKind::ObjectStreams);
    let one = peers.pyhanko_sign(
        &objstm.bytes,
        &PyhankoSign::leaf(pki, "personal-ec256", "Sig1")
            .visible(objstm.signature_block.signature_box),
    );
    // pyHanko rewrites the XMP stream only when its dates change: sign the second time in
    // another second, so the regression below is exercised on a fast machine too.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let two = peers.pyhanko_sign(
        &one,
        &PyhankoSign::leaf(pki, "org-rsa", "Sig2").visible(org_rect()),
    );
    let (_, ky) = compare("object streams, EC then RSA", &two, 2).await;
    assert!(ky.revisions.iter().all(|r| r.xref_stream), "{ky:#?}");
    // Regression: pyHanko's first signature adds an XMP metadata stream (catalog /Metadata)
    // and its second rewrites it. kyso called that "object of the signed document replaced"
    // and failed Sig1 (pdf/src/diff.rs now treats the XMP stream as metadata, like /Info).
    // When the later revision rewrote it (pyHanko skips an unchanged stream), the rewrite is
    // allowed metadata; either way nothing after Sig1 is a disallowed change.
    let first = &ky.signatures[0];
    assert!(
        first.modifications.iter().all(|m| m.allowed),
        "{:#?}",
        first.modifications
    );
    assert!(
        !first
            .modifications
            .iter()
            .any(|m| m.kind == ModificationKind::ObjectReplaced),
        "{:#?}",
        first.modifications
    );

    // RSASSA-PSS with the salt as long as the hash (RFC 4055's recommendation, what kyso and
    // HSMs make): both pass.
    let decision = peers.sample(SampleKind::Decision);
    let pss = pyhanko_sign_pss(&decision.bytes, "personal-pss", "Sig1", Some(32));
    let (_, ky) = compare("RSASSA-PSS salt 32", &pss, 1).await;
    assert!(
        ky.signatures[0]
            .report
            .signature_algorithm
            .as_deref()
            .is_some_and(|a| a.contains("PSS")),
        "{:#?}",
        ky.signatures[0].report
    );
}

/// pyHanko's `prefer_pss` signs with the longest salt (222 bytes for RSA-2048/SHA-256):
/// RSASSA-PSS is mandatory in the national catalogue, so kyso verifies any salt length and
/// agrees with pyHanko.
#[tokio::test]
async fn pyhanko_pss_with_the_longest_salt_passes_in_both_V2() {
    let peers = Peers::get();
    let decision = peers.sample(SampleKind::Decision);
    let pss = pyhanko_sign_pss(&decision.bytes, "personal-pss", "Sig1", None);
    let (_, ky) = compare("RSASSA-PSS longest salt", &pss, 1).await;
    assert_eq!(ky.signatures[0].report.indication, Indication::TotalPassed);
}

/// pyHanko signing with RSASSA-PSS, which `pyhanko_tool.py sign` has no switch for: the same
/// calls, in the peers' venv. `salt`: the salt length; `None`: pyHanko's `prefer_pss` default
/// (the longest salt the key allows).
fn pyhanko_sign_pss(pdf: &[u8], leaf: &str, field: &str, salt: Option<u32>) -> Vec<u8> {
    let pki = TestPki::get();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&input, pdf).unwrap();
    let script = r#"
import sys
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from asn1crypto import algos
from pyhanko.sign import fields, signers
key, cert, chain, field, src, dst, salt = sys.argv[1:8]
mech = None
if salt != "max":
    mech = algos.SignedDigestAlgorithm({
        "algorithm": "rsassa_pss",
        "parameters": algos.RSASSAPSSParams({
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1",
                                   "parameters": {"algorithm": "sha256"}},
            "salt_length": int(salt),
        }),
    })
signer = signers.SimpleSigner.load(key, cert, ca_chain_files=(chain,), prefer_pss=True,
                                   signature_mechanism=mech)
meta = signers.PdfSignatureMetadata(field_name=field, md_algorithm="sha256",
                                    subfilter=fields.SigSeedSubFilter.PADES)
with open(src, "rb") as inf:
    w = IncrementalPdfFileWriter(inf, strict=False)
    with open(dst, "wb") as outf:
        signers.PdfSigner(meta, signer=signer).sign_pdf(w, output=outf)
"#;
    let mut cmd = Command::new(Peers::get().python());
    cmd.arg("-c")
        .arg(script)
        .arg(pki.leaf_key(leaf))
        .arg(pki.leaf_cert(leaf))
        .arg(pki.leaf_issuer(leaf))
        .arg(field)
        .arg(&input)
        .arg(&output)
        .arg(salt.map_or("max".to_owned(), |n| n.to_string()));
    kyso_tests::run(&mut cmd, None, std::time::Duration::from_secs(180)).expect_success();
    std::fs::read(&output).unwrap()
}

// ---------------------------------------------------------------------------------------------
// kyso → peers
// ---------------------------------------------------------------------------------------------

const RSA: SigningAlgorithm = SigningAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256);

/// The signing time (`/M`): now, in whole seconds, as pyHanko does.
fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).expect("whole seconds")
}

fn chain() -> Vec<Vec<u8>> {
    let pki = TestPki::get();
    vec![pki.cert_der(pki.issuing_ca_cer())]
}

/// kyso's two-phase PAdES signing with `leaf`'s key file.
fn kyso_sign(pdf: &[u8], req: &PadesRequest<'_>, leaf: &str) -> Vec<u8> {
    let prepared = pades::prepare(pdf, req).unwrap_or_else(|e| panic!("{leaf}: prepare: {e}"));
    let p = cms_build::prepare(prepared.cades_request(req.signer_certificate, req.chain, RSA))
        .expect("cms prepare");
    let sig = TestPki::get().sign_digest(leaf, "sha256", false, &p.digest_to_sign());
    let cms = p.finish(&sig).expect("cms finish");
    let signed = prepared.finish(&cms).expect("finish");
    assert!(signed.starts_with(pdf), "{leaf}: not an incremental update");
    signed
}

/// The files kyso makes from one sample, by name: APPROVAL (image, in the signature block)
/// then ISSUE over it (D2, P1, P2), RECEIVED after the ISSUE (D6), COPY (P3), APPENDIX (P4),
/// SCANNED_ISSUE (D3).
fn kyso_profiles(sample: &SamplePdf) -> Vec<(&'static str, Vec<u8>, usize)> {
    let pki = TestPki::get();
    let chain = chain();
    let personal = pki.leaf_der("personal-rsa");
    let org = pki.leaf_der("org-rsa");
    let b = sample.signature_block.signature_box;

    let mut req = PadesRequest::new(Profile::Approval, &personal, &chain, now());
    req.placement = Placement::Rect {
        page: sample.signature_block.page,
        rect: [b.x1, b.y1, b.x2, b.y2],
    };
    let approved = kyso_sign(&sample.bytes, &req, "personal-rsa");

    let mut req = PadesRequest::new(Profile::Issue, &org, &chain, now());
    req.text = StampText {
        number_and_symbol: Some("123/QĐ-UBND".into()),
        issue_date: Some(now().to_offset(pades::VN_OFFSET).date()),
        ..StampText::default()
    };
    let issued = kyso_sign(&approved, &req, "org-rsa");

    let mut req = PadesRequest::new(Profile::Received, &org, &chain, now());
    req.text.organisation = Some("Sở Tài chính tỉnh Khánh Hòa".into());
    req.text.incoming_number = Some("1234".into());
    let received = kyso_sign(&issued, &req, "org-rsa");

    let mut req = PadesRequest::new(Profile::Copy, &org, &chain, now());
    req.text.copy_form = Some("SAO Y BẢN CHÍNH".into());
    let copy = kyso_sign(&sample.bytes, &req, "org-rsa");

    let mut req = PadesRequest::new(Profile::Appendix, &org, &chain, now());
    req.text.number_and_symbol = Some("45/QĐ-UBND".into());
    let appendix = kyso_sign(&sample.bytes, &req, "org-rsa");

    let req = PadesRequest::new(Profile::ScannedIssue, &org, &chain, now());
    let scanned = kyso_sign(&sample.bytes, &req, "org-rsa");

    vec![
        ("APPROVAL", approved, 1),
        ("APPROVAL+ISSUE", issued, 2),
        ("APPROVAL+ISSUE+RECEIVED", received, 3),
        ("COPY", copy, 1),
        ("APPENDIX", appendix, 1),
        ("SCANNED_ISSUE", scanned, 1),
    ]
}

/// Every kyso-signed file of `kind` in pyHanko (offline CRLs), pdfsig and qpdf, and in kyso.
async fn kyso_files_verify_in_the_peers(kind: SampleKind) {
    let pki = TestPki::get();
    let peers = Peers::get();
    let sample = peers.sample(kind);
    let db = NssDb::for_test_pki(pki);
    let mut problems = Vec::new();
    for (name, pdf, n) in kyso_profiles(&sample) {
        let case = format!("{kind:?} {name}");
        if let Err(r) = qpdf_check(&pdf) {
            problems.push(format!("{case}: qpdf --check: {r}"));
        }

        let py = peers.pyhanko_validate(&pdf, &ValidateOptions::offline(pki));
        if py.len() != n {
            problems.push(format!("{case}: pyHanko found {} signatures", py.len()));
        }
        for (i, p) in py.iter().enumerate() {
            let last = i + 1 == n;
            let ok_level = if last {
                p.coverage.as_deref() == Some("ENTIRE_FILE")
                    && p.modification_level.as_deref() == Some("NONE")
            } else {
                p.coverage.as_deref() == Some("ENTIRE_REVISION")
                    && matches!(
                        p.modification_level.as_deref(),
                        Some("NONE" | "LTA_UPDATES" | "FORM_FILLING")
                    )
            };
            if !(p.intact && p.valid && p.trusted && !p.revoked && p.bottom_line && ok_level) {
                problems.push(format!(
                    "{case}: pyHanko: {}\n{}",
                    p.describe(),
                    p.details.as_deref().unwrap_or("")
                ));
            }
        }

        // pdfsig: every signature valid and its certificate trusted. One known peer quirk,
        // asserted as such: on the object-stream APPROVAL+ISSUE+RECEIVED file poppler 22.12 /
        // NSS answer "Unknown issue with Certificate or corrupted data" for the third
        // signature while trusting the very same organisation certificate in the second one
        // (and in the classic-xref file, and sometimes in this one when run by hand later).
        // The signature itself is valid for pdfsig, and pyHanko, qpdf and kyso find nothing
        // wrong with the file; the cause is not in the file as far as we could tell (left
        // for a follow-up).
        let ps = pdfsig(&pdf, &db);
        let quirk = |i: usize| {
            kind == SampleKind::ObjectStreams
                && name == "APPROVAL+ISSUE+RECEIVED"
                && i == 2
                && ps[i].certificate_validation.as_deref()
                    == Some("Unknown issue with Certificate or corrupted data.")
                && ps[1].certificate_trusted()
                && ps[1].signer_dn == ps[2].signer_dn
        };
        if ps.len() != n
            || !ps
                .iter()
                .enumerate()
                .all(|(i, s)| s.signature_valid() && (s.certificate_trusted() || quirk(i)))
        {
            problems.push(format!("{case}: pdfsig: {ps:#?}"));
        }

        // kyso's own verifier agrees with pyHanko on its files.
        let ky = kyso_verify(&pdf).await;
        if ky.indication != Indication::TotalPassed || ky.signatures.len() != n {
            problems.push(format!("{case}: kyso: {ky:#?}"));
        }
        for (p, k) in py.iter().zip(&ky.signatures) {
            if let Err(e) = std::panic::catch_unwind(|| assert_agrees(&case, p, k)) {
                problems.push(format!("{case}: mapping: {e:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[tokio::test]
async fn kyso_profiles_on_the_decision_verify_in_pyhanko_pdfsig_qpdf_P1_P2_P3_P4_D3_D6() {
    kyso_files_verify_in_the_peers(SampleKind::Decision).await;
}

#[tokio::test]
async fn kyso_profiles_on_object_streams_verify_in_pyhanko_pdfsig_qpdf_P1_P2_P3_P4_D3_D6() {
    kyso_files_verify_in_the_peers(SampleKind::ObjectStreams).await;
}

/// A kyso signature by `revoked` claiming a time before the revocation: pyHanko and kyso both
/// say REVOKED_NO_POE (nothing proves the signature existed before the revocation).
#[tokio::test]
async fn kyso_signature_claimed_before_revocation_is_revoked_no_poe_in_both_V3() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let chain = chain();
    let cert = pki.leaf_der("revoked");
    let before = OffsetDateTime::from(pki.revoked_at) - time::Duration::minutes(30);
    let req = PadesRequest::new(
        Profile::Comment,
        &cert,
        &chain,
        before.replace_nanosecond(0).unwrap(),
    );
    let signed = kyso_sign(&sample.bytes, &req, "revoked");
    let (py, ky) = compare("revoked, claimed before", &signed, 1).await;
    assert!(py[0].revoked, "{}", py[0].describe());
    assert_eq!(
        (
            ky.signatures[0].report.indication,
            ky.signatures[0].report.sub_indication
        ),
        (Indication::Indeterminate, Some(SubIndication::RevokedNoPoe))
    );
}
