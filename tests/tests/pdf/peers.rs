//! The PDF peers checked against themselves: the samples are sound, pyHanko's signatures verify
//! in pyHanko and in poppler's `pdfsig`, each tampered variant gets a fixed verdict from pyHanko
//! (the verdicts the project's verifier is later compared with), a revoked signer is reported
//! revoked, and a rendering shows the visible signature where pyHanko put it.

use std::sync::OnceLock;

use kyso_tests::pdf_peers::{
    self, NssDb, Peers, PyhankoSign, PyhankoSignature, SampleKind, Tamper, ValidateOptions, pdfsig,
    pdftotext, qpdf_check, render,
};
use kyso_tests::{TestPki, shared_servers};

/// The stamp colours: easy to tell from black text on white.
const BLUE: [u8; 3] = [0x1f, 0x4f, 0xbf];
const RED: [u8; 3] = [0xbf, 0x1f, 0x1f];

/// Where the organisation's visible signature goes (bottom left, clear of the text).
fn org_rect() -> pdf_peers::PdfRect {
    pdf_peers::PdfRect::new(100.0, 40.0, 250.0, 90.0)
}

/// The decision signed by pyHanko: "personal-rsa" visibly in the signature block (field
/// Sig1), then "org-rsa" visibly at the bottom left (Sig2) as an incremental update. Made once
/// for the tests of this process.
fn two_signatures() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        let pki = TestPki::get();
        let peers = Peers::get();
        let sample = peers.sample(SampleKind::Decision);
        let one = peers.pyhanko_sign(
            &sample.bytes,
            &PyhankoSign::leaf(pki, "personal-rsa", "Sig1")
                .visible(sample.signature_block.signature_box)
                .color(BLUE),
        );
        peers.pyhanko_sign(
            &one,
            &PyhankoSign::leaf(pki, "org-rsa", "Sig2")
                .visible(org_rect())
                .color(RED),
        )
    })
}

fn by_field<'a>(sigs: &'a [PyhankoSignature], field: &str) -> &'a PyhankoSignature {
    sigs.iter()
        .find(|s| s.field == field)
        .unwrap_or_else(|| panic!("no signature {field} in {sigs:#?}"))
}

#[test]
fn samples_are_clean_and_carry_the_vietnamese_text() {
    let peers = Peers::get();
    for kind in SampleKind::ALL {
        let s = peers.sample(kind);
        assert!(s.bytes.starts_with(b"%PDF-"), "{kind:?} is no PDF");
        if let Err(report) = qpdf_check(&s.bytes) {
            panic!("qpdf --check on the {kind:?} sample: {report}");
        }
        let text = pdftotext(&s.bytes);
        for needle in [
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập - Tự do - Hạnh phúc",
            "Số: 123/QĐ-UBND",
            "QUYẾT ĐỊNH",
            "CHỦ TỊCH",
            "Nguyễn Văn An",
        ] {
            assert!(
                text.contains(needle),
                "{kind:?}: pdftotext lacks {needle:?}:\n{text}"
            );
        }
    }

    let large = peers.sample(SampleKind::Large);
    let mib = large.bytes.len() as f64 / (1024.0 * 1024.0);
    assert!(
        (0.85..1.3).contains(&mib),
        "the large sample is {mib:.2} MiB"
    );
    assert!(pdftotext(&large.bytes).contains("Phụ lục 8"));
    let objstm = peers.sample(SampleKind::ObjectStreams);
    assert!(
        objstm.bytes.windows(7).any(|w| w == b"/ObjStm"),
        "no object stream in the object-stream sample"
    );
    let enc = peers.sample(SampleKind::Encrypted);
    assert!(enc.bytes.windows(8).any(|w| w == b"/Encrypt"));

    // The signature block: title above the box, the box above the name, all on the page.
    let b = &peers.sample(SampleKind::Decision).signature_block;
    assert_eq!(b.page, 1);
    assert_eq!(b.title.text, "CHỦ TỊCH");
    assert_eq!(b.name.text, "Nguyễn Văn An");
    assert!(b.title.y > b.signature_box.y2 && b.signature_box.y2 > b.signature_box.y1);
    assert!(b.signature_box.y1 > b.name.y + b.name.font_size * 0.7);
    assert!(b.signature_box.width() >= 100.0 && b.signature_box.height() >= 60.0);
    assert!((b.title.x_center - b.name.x_center).abs() < 0.01);
}

#[test]
fn pyhanko_signatures_verify_in_pyhanko_and_pdfsig() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let doc = two_signatures();
    qpdf_check(doc).unwrap_or_else(|r| panic!("qpdf --check on the signed file: {r}"));

    let sigs = peers.pyhanko_validate(doc, &ValidateOptions::offline(pki));
    assert_eq!(sigs.len(), 2, "{sigs:#?}");
    for s in &sigs {
        assert!(
            s.intact && s.valid && s.trusted && !s.revoked && s.bottom_line,
            "{}",
            s.describe()
        );
        assert_eq!(s.subfilter.as_deref(), Some("ETSI.CAdES.detached"));
        assert_eq!(s.md_algorithm.as_deref(), Some("sha256"));
    }
    // The first signature is followed by the second's revision: form filling, allowed.
    let first = by_field(&sigs, "Sig1");
    assert_eq!(first.coverage.as_deref(), Some("ENTIRE_REVISION"));
    assert_eq!(first.modification_level.as_deref(), Some("FORM_FILLING"));
    assert!(
        first
            .signer
            .as_deref()
            .is_some_and(|s| s.contains("Nguyễn Văn An"))
    );
    let second = by_field(&sigs, "Sig2");
    assert_eq!(second.coverage.as_deref(), Some("ENTIRE_FILE"));
    assert_eq!(second.modification_level.as_deref(), Some("NONE"));
    assert_eq!(second.summary, "INTACT:TRUSTED,UNTOUCHED");

    // Online: pyHanko fetches OCSP (and the root's CRL) from the loopback servers.
    let servers = shared_servers();
    let before = servers.ocsp_proxy.requests();
    let online = peers.pyhanko_validate(doc, &ValidateOptions::online(pki, servers));
    for s in &online {
        assert!(s.trusted && s.bottom_line, "online: {}", s.describe());
    }
    assert!(
        servers.ocsp_proxy.requests() > before,
        "pyHanko asked no OCSP question"
    );

    let db = NssDb::for_test_pki(pki);
    let ps = pdfsig(doc, &db);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    for s in &ps {
        assert!(s.signature_valid() && s.certificate_trusted(), "{s:#?}");
        assert_eq!(s.signature_type.as_deref(), Some("ETSI.CAdES.detached"));
        assert_eq!(s.hash_algorithm.as_deref(), Some("SHA-256"));
    }
    assert_eq!(ps[0].field.as_deref(), Some("Sig1"));
    assert!(!ps[0].total_document_signed && ps[1].total_document_signed);
    assert_eq!(
        ps[1].signed_ranges.last().map(|r| r.1),
        Some(doc.len() as u64)
    );
}

/// What pyHanko says about each tampered variant of [`two_signatures`]. These are the verdicts
/// the project's verifier is compared with.
#[test]
fn tampered_variants_get_pyhankos_verdicts() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let doc = two_signatures();
    let opts = ValidateOptions::offline(pki);
    let db = NssDb::for_test_pki(pki);

    // (a) a later incremental update changing page 1's content, (b) one adding a sticky note:
    // both signatures stay intact and trusted, but pyHanko's diff analysis calls the update
    // OTHER, not allowed, so the bottom line is false.
    for how in [Tamper::Content, Tamper::Annotation] {
        let t = peers.tamper(doc, how);
        assert!(t.starts_with(doc), "{how:?} is not an incremental update");
        qpdf_check(&t).unwrap_or_else(|r| panic!("{how:?}: {r}"));
        let sigs = peers.pyhanko_validate(&t, &opts);
        assert_eq!(sigs.len(), 2);
        for s in &sigs {
            assert!(
                s.intact && s.valid && s.trusted,
                "{how:?}: {}",
                s.describe()
            );
            assert_eq!(s.coverage.as_deref(), Some("ENTIRE_REVISION"), "{how:?}");
            assert_eq!(s.modification_level.as_deref(), Some("OTHER"), "{how:?}");
            assert_eq!(s.docmdp_ok, Some(false), "{how:?}");
            assert!(!s.bottom_line, "{how:?}: {}", s.describe());
            assert_eq!(
                s.summary, "INTACT:TRUSTED,EXTENDED_WITH_OTHER,ILLEGAL_MODIFICATIONS",
                "{how:?}"
            );
        }
        // pdfsig checks each revision's digest and chain only: both still valid.
        for s in pdfsig(&t, &db) {
            assert!(
                s.signature_valid() && !s.total_document_signed,
                "{how:?}: {s:#?}"
            );
        }
    }

    // (c) a bit flipped inside the signed range: neither digest matches.
    let t = peers.tamper(doc, Tamper::FlipByte);
    assert_eq!(t.len(), doc.len());
    assert_eq!(t.iter().zip(doc).filter(|(a, b)| a != b).count(), 1);
    qpdf_check(&t).unwrap_or_else(|r| panic!("flip-byte: {r}"));
    let sigs = peers.pyhanko_validate(&t, &opts);
    assert_eq!(sigs.len(), 2);
    for s in &sigs {
        assert!(
            !s.intact && !s.trusted && !s.bottom_line,
            "{}",
            s.describe()
        );
        assert_eq!(s.summary, "INVALID");
    }
    for s in pdfsig(&t, &db) {
        assert_eq!(s.signature_validation, "Digest Mismatch.", "{s:#?}");
    }
}

#[test]
fn a_revoked_signer_is_reported_revoked() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let sample = peers.sample(SampleKind::Decision);
    let signed = peers.pyhanko_sign(&sample.bytes, &PyhankoSign::leaf(pki, "revoked", "Sig1"));
    let sigs = peers.pyhanko_validate(&signed, &ValidateOptions::offline(pki));
    assert_eq!(sigs.len(), 1);
    let s = &sigs[0];
    assert!(s.intact && s.valid, "{}", s.describe());
    assert!(
        s.revoked && !s.trusted && !s.bottom_line,
        "{}",
        s.describe()
    );
    assert_eq!(s.trust_problem.as_deref(), Some("REVOKED_NO_POE"));
    assert_eq!(s.revocation_reason.as_deref(), Some("key_compromise"));
    assert_eq!(s.summary, "INTACT:REVOKED,UNTOUCHED");

    let ps = pdfsig(&signed, &NssDb::for_test_pki(pki));
    assert_eq!(ps.len(), 1);
    assert!(
        ps[0].signature_valid() && ps[0].certificate_revoked(),
        "{ps:#?}"
    );
}

#[test]
fn the_visible_signatures_render_where_pyhanko_put_them() {
    let peers = Peers::get();
    let doc = two_signatures();
    let block = peers.sample(SampleKind::Decision).signature_block;
    let page = render(doc, block.page, 144);
    assert_eq!(page.image.width, 1191, "A4 at 144 dpi");

    let near = |c: [u8; 3]| {
        move |r: u8, g: u8, b: u8| {
            r.abs_diff(c[0]) < 24 && g.abs_diff(c[1]) < 24 && b.abs_diff(c[2]) < 24
        }
    };
    // pyHanko rounds the field's rectangle to whole points.
    let box_ = block.signature_box;
    let want = pdf_peers::PdfRect::new(
        box_.x1.round(),
        box_.y1.round(),
        box_.x2.round(),
        box_.y2.round(),
    );
    let blue = page
        .rect_where(near(BLUE))
        .expect("the personal signature's stamp is on the page");
    assert!(
        blue.close_to(&want, 1.0),
        "blue stamp at {blue}, field at {want}"
    );
    let red = page
        .rect_where(near(RED))
        .expect("the organisation's stamp is on the page");
    assert!(red.close_to(&org_rect(), 1.0), "red stamp at {red}");

    // The title line above the stamp and the name below it are still there, dark on white.
    let dark = |r: u8, g: u8, b: u8| r < 100 && g < 100 && b < 100;
    for line in [&block.title, &block.name] {
        let area = page.rect_to_pixels(pdf_peers::PdfRect::new(
            line.x - 2.0,
            line.y - 4.0,
            line.x + line.width + 2.0,
            line.y + line.font_size,
        ));
        let ink = page.image.count_where_in(area, dark);
        assert!(
            ink > 100,
            "{:?}: only {ink} dark pixels at {area:?}",
            line.text
        );
    }
    // Nothing dark inside the stamp: the stamp covers the blank space only.
    let inside = page.rect_to_pixels(pdf_peers::PdfRect::new(
        want.x1 + 2.0,
        want.y1 + 2.0,
        want.x2 - 2.0,
        want.y2 - 2.0,
    ));
    assert_eq!(page.image.count_where_in(inside, dark), 0);
}

#[test]
fn pyhanko_signs_every_sample_kind() {
    let pki = TestPki::get();
    let peers = Peers::get();
    let db = NssDb::for_test_pki(pki);
    for kind in [
        SampleKind::ObjectStreams,
        SampleKind::Encrypted,
        SampleKind::Large,
    ] {
        let sample = peers.sample(kind);
        let signed = peers.pyhanko_sign(
            &sample.bytes,
            &PyhankoSign::leaf(pki, "personal-ec256", "Sig1")
                .visible(sample.signature_block.signature_box),
        );
        qpdf_check(&signed).unwrap_or_else(|r| panic!("{kind:?}: {r}"));
        let sigs = peers.pyhanko_validate(&signed, &ValidateOptions::offline(pki));
        assert_eq!(sigs.len(), 1, "{kind:?}");
        assert!(sigs[0].bottom_line, "{kind:?}: {}", sigs[0].describe());
        assert_eq!(sigs[0].coverage.as_deref(), Some("ENTIRE_FILE"));
        let ps = pdfsig(&signed, &db);
        assert!(
            ps.len() == 1 && ps[0].signature_valid() && ps[0].certificate_trusted(),
            "{kind:?}: {ps:#?}"
        );
        if kind == SampleKind::Large {
            let secs = peers.pyhanko_bench(&signed, &ValidateOptions::offline(pki), 2);
            assert!(secs > 0.0 && secs < 30.0, "pyHanko took {secs} s");
            eprintln!(
                "pyHanko validates the ~1 MiB sample in {:.1} ms",
                secs * 1e3
            );
        }
    }
}
