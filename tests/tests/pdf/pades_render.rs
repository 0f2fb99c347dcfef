//! The legal appearances kyso draws (DOMAIN.md P1-P4, D3, D6), checked on the rendered page
//! rather than in the PDF's bytes: the Decision sample is signed with `kyso_pades` (the
//! test PKI's key files standing in for the HSM, as in `pades.rs`), page 1 is rendered with
//! poppler's `pdftoppm`, and the pixels the signature changed are compared with where P1-P4
//! put them; `pdftotext -bbox-layout` gives the words' boxes and text.
//!
//! Every rendering is kept under `$CARGO_TARGET_TMPDIR/pades_render/` (PDF and PNG per case,
//! paths printed) so that a person can look at what the assertions measured.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use kyso_pades::{self as pades, PadesRequest, Placement, Profile};
use kyso_pki::cms_build::{self, SigningAlgorithm};
use kyso_pki::time::OffsetDateTime;
use kyso_tests::TestPki;
use kyso_tests::pdf_peers::{
    PdfRect, Peers, PixelRect, RenderedPage, RgbImage, SampleKind, SamplePdf, render,
};

const RSA: SigningAlgorithm = SigningAlgorithm::RsaPkcs1(kyso_pki::crypto::DigestAlgorithm::Sha256);
/// Enough to measure 10 pt text (a digit ≈14 px high) and a 36 mm seal (≈210 px) to a few
/// percent.
const DPI: u32 = 150;
/// 09:30 in Vietnam: the time P3 writes as `2025-03-14T09:30:00+07:00`.
const SIGNED_AT: OffsetDateTime = time::macros::datetime!(2025-03-14 02:30:00 UTC);
const SIGNED_AT_TEXT: &str = "2025-03-14T09:30:00+07:00";
/// P2's default "real size" (kyso's `DEFAULT_SEAL_MM`).
const SEAL_MM: f64 = 36.0;
/// P3, P4: the text size.
const TEXT_PT: f64 = 10.0;

// ---------------------------------------------------------------------------------------------
// Signing (as in pades.rs: prepare → CAdES over the digest → the key file signs → finish)
// ---------------------------------------------------------------------------------------------

fn sign(pdf: &[u8], req: &PadesRequest<'_>, leaf: &str) -> Vec<u8> {
    let pki = TestPki::get();
    let prepared = pades::prepare(pdf, req).expect("pades prepare");
    let p = cms_build::prepare(prepared.cades_request(req.signer_certificate, req.chain, RSA))
        .expect("cms prepare");
    let mut cmd = Command::new("openssl");
    cmd.current_dir(&pki.dir)
        .args(["pkeyutl", "-sign", "-inkey"])
        .arg(pki.leaf_key(leaf))
        .args(["-pkeyopt", "digest:sha256"]);
    let sig = kyso_tests::run(
        &mut cmd,
        Some(&p.digest_to_sign()),
        kyso_tests::COMMAND_TIMEOUT,
    )
    .expect_success()
    .stdout;
    let cms = p.finish(&sig).expect("cms finish");
    prepared.finish(&cms).expect("pades finish")
}

fn chain() -> Vec<Vec<u8>> {
    let pki = TestPki::get();
    vec![pki.cert_der(pki.issuing_ca_cer())]
}

fn decision() -> &'static SamplePdf {
    static S: OnceLock<SamplePdf> = OnceLock::new();
    S.get_or_init(|| Peers::get().sample(SampleKind::Decision))
}

/// The unsigned page: what every appearance is told apart from.
fn decision_page() -> &'static RenderedPage {
    static P: OnceLock<RenderedPage> = OnceLock::new();
    P.get_or_init(|| keep("decision-unsigned", &decision().bytes))
}

/// The decision with the competent person's signature in its signature box (P1).
fn approved() -> &'static [u8] {
    static A: OnceLock<Vec<u8>> = OnceLock::new();
    A.get_or_init(|| {
        let pki = TestPki::get();
        let chain = chain();
        let personal = pki.leaf_der("personal-rsa");
        let b = decision().signature_block.signature_box;
        let mut req = PadesRequest::new(Profile::Approval, &personal, &chain, SIGNED_AT);
        req.placement = Placement::Rect {
            page: decision().signature_block.page,
            rect: [b.x1, b.y1, b.x2, b.y2],
        };
        sign(&decision().bytes, &req, "personal-rsa")
    })
}

/// [`approved`] rendered, once: two tests measure it and [`keep`] writes its files.
fn approved_page() -> &'static RenderedPage {
    static P: OnceLock<RenderedPage> = OnceLock::new();
    P.get_or_init(|| keep("approval", approved()))
}

/// One text profile over the decision, signed by the organisation at [`SIGNED_AT`].
fn org_signed(profile: Profile, text: pades::StampText) -> Vec<u8> {
    let pki = TestPki::get();
    let chain = chain();
    let org = pki.leaf_der("org-rsa");
    let mut req = PadesRequest::new(profile, &org, &chain, SIGNED_AT);
    req.text = text;
    sign(&decision().bytes, &req, "org-rsa")
}

// ---------------------------------------------------------------------------------------------
// Rendering, kept for a person to look at
// ---------------------------------------------------------------------------------------------

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pades_render");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `<name>.pdf` and `<name>.png` (page 1, [`DPI`]) under [`out_dir`], prints their
/// paths and returns the rendering the assertions use.
fn keep(name: &str, pdf: &[u8]) -> RenderedPage {
    let dir = out_dir();
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, pdf).unwrap();
    let png = dir.join(name);
    kyso_tests::run(
        Command::new("pdftoppm")
            .args([
                "-png",
                "-r",
                &DPI.to_string(),
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
            ])
            .arg(&file)
            .arg(&png),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    )
    .expect_success();
    println!("{name}: {} and {}.png", file.display(), png.display());
    render(pdf, 1, DPI)
}

// ---------------------------------------------------------------------------------------------
// Pixels
// ---------------------------------------------------------------------------------------------

/// The ink of the sample images: blue (P1) and red (P2, and the D6 stamp's frame), each
/// also when blended into white by anti-aliasing; black text is neither.
fn is_blue(r: u8, g: u8, b: u8) -> bool {
    i32::from(b) - i32::from(r) > 60 && i32::from(b) - i32::from(g) > 40
}

fn is_red(r: u8, g: u8, b: u8) -> bool {
    i32::from(r) - i32::from(g) > 60 && i32::from(r) - i32::from(b) > 60
}

/// Any hue at all (black, grey and white have none).
fn is_coloured(r: u8, g: u8, b: u8) -> bool {
    r.max(g).max(b) - r.min(g).min(b) > 40
}

/// Black ink, at least half covered.
fn is_dark(r: u8, g: u8, b: u8) -> bool {
    u16::from(r) + u16::from(g) + u16::from(b) < 3 * 128 && !is_coloured(r, g, b)
}

/// What a signature added to the page: the pixels of `after` that differ from `before`
/// (same size), kept only where `pred` holds for the new colour.
struct Changed {
    bbox: Option<PixelRect>,
    count: usize,
}

fn changed(
    before: &RgbImage,
    after: &RgbImage,
    region: Option<PixelRect>,
    pred: impl Fn(u8, u8, u8) -> bool,
) -> Changed {
    assert_eq!((before.width, before.height), (after.width, after.height));
    let region = region.unwrap_or(PixelRect {
        x0: 0,
        y0: 0,
        x1: after.width,
        y1: after.height,
    });
    let mut out = Changed {
        bbox: None,
        count: 0,
    };
    for y in region.y0..region.y1.min(after.height) {
        for x in region.x0..region.x1.min(after.width) {
            let (a, b) = (before.pixel(x, y).unwrap(), after.pixel(x, y).unwrap());
            let differs = a.iter().zip(b).any(|(p, q)| p.abs_diff(q) > 24);
            if !differs || !pred(b[0], b[1], b[2]) {
                continue;
            }
            out.count += 1;
            let bb = out.bbox.get_or_insert(PixelRect {
                x0: x,
                y0: y,
                x1: x + 1,
                y1: y + 1,
            });
            bb.x0 = bb.x0.min(x);
            bb.y0 = bb.y0.min(y);
            bb.x1 = bb.x1.max(x + 1);
            bb.y1 = bb.y1.max(y + 1);
        }
    }
    out
}

fn px_per_pt() -> f64 {
    f64::from(DPI) / 72.0
}

/// Whether `inner` lies in `outer` (points), with `slack` points to spare for anti-aliasing.
fn inside(inner: &PdfRect, outer: &PdfRect, slack: f64) -> bool {
    inner.x1 >= outer.x1 - slack
        && inner.y1 >= outer.y1 - slack
        && inner.x2 <= outer.x2 + slack
        && inner.y2 <= outer.y2 + slack
}

// ---------------------------------------------------------------------------------------------
// Words and their boxes (`pdftotext -bbox-layout`)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Word {
    text: String,
    /// In PDF points, origin bottom left (converted from poppler's top-left boxes).
    rect: PdfRect,
}

#[derive(Debug, Clone)]
struct Line {
    words: Vec<Word>,
}

impl Line {
    fn text(&self) -> String {
        let w: Vec<&str> = self.words.iter().map(|w| w.text.as_str()).collect();
        w.join(" ")
    }

    fn rect(&self) -> PdfRect {
        let f = |g: fn(&PdfRect) -> f64, pick: fn(f64, f64) -> f64| {
            self.words.iter().map(|w| g(&w.rect)).reduce(pick).unwrap()
        };
        PdfRect::new(
            f(|r| r.x1, f64::min),
            f(|r| r.y1, f64::min),
            f(|r| r.x2, f64::max),
            f(|r| r.y2, f64::max),
        )
    }
}

fn attr(tag: &str, name: &str) -> f64 {
    let key = format!("{name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    let end = at + tag[at..].find('"').unwrap();
    tag[at..end].parse().unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The lines of page 1 with their words, as poppler reads them.
fn bbox_layout(pdf: &[u8]) -> Vec<Line> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.pdf");
    std::fs::write(&f, pdf).unwrap();
    let out = kyso_tests::run(
        Command::new("pdftotext")
            .args(["-bbox-layout", "-enc", "UTF-8", "-f", "1", "-l", "1"])
            .arg(&f)
            .arg("-"),
        None,
        kyso_tests::COMMAND_TIMEOUT,
    )
    .expect_success();
    let xml = String::from_utf8(out.stdout).expect("UTF-8");
    let page_tag = &xml[xml.find("<page ").expect("a page")..];
    let height = attr(&page_tag[..page_tag.find('>').unwrap()], "height");
    let mut lines = Vec::new();
    for chunk in xml.split("<line ").skip(1) {
        let chunk = &chunk[..chunk.find("</line>").expect("</line>")];
        let mut words = Vec::new();
        for w in chunk.split("<word ").skip(1) {
            let close = w.find('>').unwrap();
            let tag = &w[..close];
            let text = &w[close + 1..w.find("</word>").unwrap()];
            words.push(Word {
                text: unescape(text),
                rect: PdfRect::new(
                    attr(tag, "xMin"),
                    height - attr(tag, "yMax"),
                    attr(tag, "xMax"),
                    height - attr(tag, "yMin"),
                ),
            });
        }
        lines.push(Line { words });
    }
    lines
}

#[track_caller]
fn line_with(lines: &[Line], text: &str) -> Line {
    lines
        .iter()
        .find(|l| l.text() == text)
        .cloned()
        .unwrap_or_else(|| {
            let all: Vec<String> = lines.iter().map(Line::text).collect();
            panic!("no line reads exactly {text:?}; the page has {all:#?}")
        })
}

/// Any ink at all, anti-aliased edges included: for measuring glyph heights the same way on
/// the sample's text and on kyso's.
fn is_ink(r: u8, g: u8, b: u8) -> bool {
    u16::from(r) + u16::from(g) + u16::from(b) < 3 * 224
}

/// The ink box of a word on a page (its pixels not white), searched in the word's box.
fn ink_of(page: &RenderedPage, word: &PdfRect) -> PdfRect {
    let px = page.rect_to_pixels(*word);
    let b = page
        .image
        .bbox_where_in(px, is_ink)
        .unwrap_or_else(|| panic!("no ink in {word}"));
    page.pixels_to_rect(b)
}

/// Height of Liberation Serif's figures per point of font size, measured on the page: the
/// "2026" of the sample's place-and-date line, which reportlab sets in Liberation Serif
/// regular at 13 pt. Measured, not taken from the font file, so that rasterisation affects
/// both sides alike.
fn figure_height_per_pt() -> f64 {
    static R: OnceLock<f64> = OnceLock::new();
    *R.get_or_init(|| {
        let lines = bbox_layout(&decision().bytes);
        let line = lines
            .iter()
            .find(|l| l.text().starts_with("Khánh Hòa, ngày"))
            .expect("the sample's place and date");
        let w = line.words.iter().find(|w| w.text == "2026").unwrap();
        ink_of(decision_page(), &w.rect).height() / 13.0
    })
}

/// A number of the font descriptor kyso wrote in the update (`/Ascent `, `/Descent `, in
/// thousandths of an em).
fn descriptor_value(update: &str, key: &str) -> f64 {
    let at = update.find(key).unwrap_or_else(|| panic!("no {key}")) + key.len();
    let end = at + update[at..].find([' ', '/', '>']).unwrap();
    update[at..end].parse().unwrap()
}

/// poppler's word box is `(Ascent - Descent) / 1000` × the font size.
fn descriptor_box_per_pt(update: &str) -> f64 {
    (descriptor_value(update, "/Ascent ") - descriptor_value(update, "/Descent ")) / 1000.0
}

// ---------------------------------------------------------------------------------------------
// P1, P2: the images
// ---------------------------------------------------------------------------------------------

#[test]
fn approval_image_centred_between_title_and_name_P1() {
    let block = &decision().signature_block;
    let page = approved_page();
    let before = decision_page();

    // What APPROVAL added is the blue signature image, nothing else.
    let blue = changed(&before.image, &page.image, None, is_blue);
    // Anti-aliased blue blends into light blues: "other" is any colour whose strongest
    // channel is not blue.
    let other = changed(&before.image, &page.image, None, |r, g, b| {
        is_coloured(r, g, b) && b < r.max(g)
    });
    let ink = page.pixels_to_rect(blue.bbox.expect("blue signature pixels (P1)"));
    println!("blue ink {ink}, {} px", blue.count);
    assert!(blue.count > 500, "a signature, not a speck: {}", blue.count);
    assert_eq!(other.count, 0, "no other colour than the blue image");
    assert_clear_of_page_text("approval", before, blue.bbox.unwrap());

    // Horizontally: centred on the title and name lines (they share their centre).
    let centre = (block.title.x_center + block.name.x_center) / 2.0;
    let ink_cx = (ink.x1 + ink.x2) / 2.0;
    // 3 pt: the sample image's ink is centred in its PNG to a few pixels of 600.
    assert!(
        (ink_cx - centre).abs() <= 3.0,
        "ink centre x {ink_cx:.1} vs the lines' centre {centre:.1}"
    );

    // Vertically: below the title's baseline, above the top of the name line, and roughly
    // in the middle of that gap.
    let lines = bbox_layout(approved());
    let name_top = line_with(&lines, &block.name.text).rect().y2;
    let title_baseline = block.title.y;
    assert!(
        ink.y2 <= title_baseline && ink.y1 >= name_top,
        "ink {ink} must lie between the title's baseline {title_baseline} and the name's top {name_top:.1}"
    );
    let gap_cy = (title_baseline + name_top) / 2.0;
    let ink_cy = (ink.y1 + ink.y2) / 2.0;
    // 15% of the gap: the image is fitted (aspect kept) and centred in the box, and the ink
    // is not exactly centred in the PNG.
    assert!(
        (ink_cy - gap_cy).abs() <= 0.15 * (title_baseline - name_top),
        "ink centre y {ink_cy:.1} vs the gap's middle {gap_cy:.1}"
    );

    // The block's text is still there, as text.
    line_with(&lines, &block.title.text);
    line_with(&lines, &block.name.text);
}

#[test]
fn issue_seal_real_size_round_over_left_third_of_signature_P2() {
    let pki = TestPki::get();
    let chain = chain();
    let org = pki.leaf_der("org-rsa");
    let mut req = PadesRequest::new(Profile::Issue, &org, &chain, SIGNED_AT);
    req.text.number_and_symbol = Some("123/QĐ-UBND".into());
    req.text.issue_date = Some(SIGNED_AT.to_offset(pades::VN_OFFSET).date());
    let issued = sign(approved(), &req, "org-rsa");
    let approval_page = approved_page();
    let page = keep("issue", &issued);

    let blue = approval_page
        .rect_where(is_blue)
        .expect("the approval's blue ink");
    // The seal is what ISSUE changed, red.
    let red = changed(&approval_page.image, &page.image, None, is_red);
    let seal_px = red.bbox.expect("red seal pixels (P2)");
    let seal = page.pixels_to_rect(seal_px);
    println!("seal {seal} ({} px), signature {blue}", red.count);

    // Real size: the sample seal is drawn edge to edge, so its ink is the diameter.
    // ±10%: anti-aliasing and the outer ring's stroke inside the image edge.
    let d = SEAL_MM * 72.0 / 25.4;
    for (what, v) in [("width", seal.width()), ("height", seal.height())] {
        assert!(
            (v - d).abs() <= 0.10 * d,
            "seal {what} {v:.1} pt, real size {d:.1} pt (36 mm)"
        );
    }
    // Round: as wide as high, and the corners of its box empty (a square would fill them).
    assert!(
        (seal.width() - seal.height()).abs() <= 0.03 * d,
        "seal {seal} is not round"
    );
    let corner = (0.12 * d * px_per_pt()) as u32;
    for (x0, y0) in [
        (seal_px.x0, seal_px.y0),
        (seal_px.x1 - corner, seal_px.y0),
        (seal_px.x0, seal_px.y1 - corner),
        (seal_px.x1 - corner, seal_px.y1 - corner),
    ] {
        let c = PixelRect {
            x0,
            y0,
            x1: x0 + corner,
            y1: y0 + corner,
        };
        assert_eq!(
            page.image.count_where_in(c, is_red),
            0,
            "a corner of the seal's box {c:?} has red ink: not round"
        );
    }

    // On the signature's left, covering about a third of it: the seal's right edge falls
    // about a third of the way into the signature's ink, and its left edge is left of the
    // ink. Tolerance 1/3 ± 1/12 of the signature's width: P2 says "about", kyso places the
    // seal on the widget box (the fitted image's ink starts some points inside it), and
    // anti-aliasing moves edges by a pixel.
    let covered = (seal.x2 - blue.x1) / blue.width();
    println!("the seal covers {covered:.3} of the signature's width");
    assert!(
        (covered - 1.0 / 3.0).abs() <= 1.0 / 12.0,
        "the seal covers {covered:.3} of the signature, not about 1/3"
    );
    assert!(seal.x1 < blue.x1, "the seal sticks out on the left");
    // Against the signature image itself (the sample PNG, 600×240, fills the box's width
    // when fitted into the 150 pt wide box, so the image is the box's width): a third,
    // to a pixel (0.48 pt at 150 dpi) either side.
    let b = decision().signature_block.signature_box;
    let of_image = (seal.x2 - b.x1) / b.width();
    assert!(
        (of_image - 1.0 / 3.0).abs() <= 1.0 / b.width(),
        "the seal covers {of_image:.3} of the signature image, not 1/3"
    );
    // Vertically over the signature: the centres within a fifth of the seal.
    let dy = (seal.y1 + seal.y2) / 2.0 - (blue.y1 + blue.y2) / 2.0;
    assert!(
        dy.abs() <= 0.2 * d,
        "the seal is {dy:.1} pt off the signature's middle"
    );
    // The signature still shows through the seal's transparent background: blue pixels
    // remain inside the seal's box.
    let under = page.image.count_where_in(seal_px, is_blue);
    assert!(
        under > 20,
        "the seal hides the signature ({under} blue px left)"
    );
}

// ---------------------------------------------------------------------------------------------
// P3, P4, D3: black text top right of page 1; D6: the received stamp
// ---------------------------------------------------------------------------------------------

/// The top right of page 1 where P3 and P4 text goes: the right half, top inch.
fn top_right(page: &RenderedPage) -> PdfRect {
    PdfRect::new(
        page.width_pt / 2.0,
        page.height_pt - 72.0,
        page.width_pt,
        page.height_pt,
    )
}

/// Checks a P3/P4-style text appearance: `lines` (exact text, top to bottom) set by kyso in
/// black upright 10 pt inside the top right of page 1, and nothing else drawn.
#[track_caller]
fn check_top_right_text(name: &str, signed: &[u8], expected: &[&str]) {
    let page = keep(name, signed);
    let before = decision_page();
    let region = top_right(&page);

    // Every pixel the signature changed is black (or its anti-aliased grey), in the region.
    let all = changed(&before.image, &page.image, None, |_, _, _| true);
    let bbox = page.pixels_to_rect(all.bbox.expect("the appearance drew something"));
    println!("{name}: ink {bbox}, {} px", all.count);
    assert!(
        inside(&bbox, &region, 0.0),
        "ink {bbox} outside the top right {region}"
    );
    let coloured = changed(&before.image, &page.image, None, is_coloured);
    assert_eq!(coloured.count, 0, "no image, no colour: black text only");
    let dark = changed(&before.image, &page.image, None, is_dark);
    assert!(dark.count > 100, "black text ({} dark px)", dark.count);
    // Close to the page's top and right edges (kyso keeps 15 pt off the edge, 3 pt padding).
    assert!(page.width_pt - bbox.x2 <= 30.0, "right edge {bbox}");
    assert!(page.height_pt - bbox.y2 <= 30.0, "top edge {bbox}");

    assert_clear_of_page_text(name, before, all.bbox.unwrap());

    // The words, where the ink is, in order, 10 pt.
    let lines = bbox_layout(signed);
    let update = String::from_utf8_lossy(&signed[decision().bytes.len()..]);
    let per_pt = descriptor_box_per_pt(&update);
    let mut last_y = f64::INFINITY;
    for text in expected {
        let l = line_with(&lines, text);
        let r = l.rect();
        assert!(inside(&r, &region, 0.0), "{text:?} at {r} outside {region}");
        assert!(
            inside(&r, &bbox, 3.0),
            "{text:?} at {r} is not where the ink is {bbox}"
        );
        assert!(r.y2 <= last_y + 0.5, "{text:?} is out of order");
        last_y = r.y1;
        for w in &l.words {
            let size = w.rect.height() / per_pt;
            assert!(
                (size - TEXT_PT).abs() <= 0.02 * TEXT_PT,
                "{:?}: {size:.2} pt, not {TEXT_PT} (P3)",
                w.text
            );
            // Ink under every word: no glyph silently missing.
            let px = page.rect_to_pixels(w.rect);
            let ink = changed(&before.image, &page.image, Some(px), is_dark).count;
            assert!(ink > 0, "no ink under {:?} at {}", w.text, w.rect);
        }
    }

    // The glyphs drawn are 10 pt too (not only the size poppler reads from `Tf`): the
    // figures of the time against the sample's 13 pt figures. ±15%: a pixel either way on
    // ≈14 px and ≈18 px high figures at 150 dpi.
    if let Some(time) = expected.iter().find(|t| is_p3_time(t)) {
        let w = &line_with(&lines, time).words[0];
        let size = ink_of(&page, &w.rect).height() / figure_height_per_pt();
        println!("{name}: the time's figures are {size:.2} pt");
        assert!(
            (size - TEXT_PT).abs() <= 0.15 * TEXT_PT,
            "the time is drawn at {size:.2} pt, not {TEXT_PT}"
        );
    }

    // Times New Roman's metric twin, upright: the subset Liberation Serif regular, no bold
    // or italic face, named in the update's font dictionaries.
    assert!(
        update.contains("+LiberationSerif /"),
        "Liberation Serif regular"
    );
    assert!(!update.contains("LiberationSerif-Bold"), "no bold face");
    assert!(!update.contains("-Italic"), "no italic face");
    assert!(update.contains("/ItalicAngle 0 "), "upright");
}

/// The appearance's box (pixels) holds none of the unsigned page's ink: it covers none of the
/// document's own text (the header under the top margin stays readable).
#[track_caller]
fn assert_clear_of_page_text(name: &str, before: &RenderedPage, appearance: PixelRect) {
    let n = before.image.count_where_in(appearance, is_ink);
    assert_eq!(
        n,
        0,
        "{name} is drawn over the page's own text ({n} px of it inside {})",
        before.pixels_to_rect(appearance)
    );
}

/// `YYYY-MM-DDThh:mm:ss+07:00`, the only form P3 allows.
fn is_p3_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 25
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 | 22 => *c == b':',
            19 => *c == b'+',
            _ => c.is_ascii_digit(),
        })
        && s.ends_with("+07:00")
}

#[test]
fn copy_text_top_right_black_10pt_with_form_org_and_time_P3() {
    let text = pades::StampText {
        copy_form: Some("SAO Y".into()),
        organisation: Some(kyso_tests::ORG_NAME.into()),
        ..Default::default()
    };
    let signed = org_signed(Profile::Copy, text);
    assert!(is_p3_time(SIGNED_AT_TEXT));
    check_top_right_text(
        "copy",
        &signed,
        &["SAO Y", kyso_tests::ORG_NAME, SIGNED_AT_TEXT],
    );
}

#[test]
fn appendix_text_top_right_number_and_time_P4() {
    let text = pades::StampText {
        number_and_symbol: Some("45/QĐ-UBND".into()),
        ..Default::default()
    };
    let signed = org_signed(Profile::Appendix, text);
    check_top_right_text("appendix", &signed, &["45/QĐ-UBND", SIGNED_AT_TEXT]);
}

#[test]
fn scanned_issue_text_top_right_org_and_time_D3() {
    let text = pades::StampText {
        organisation: Some(kyso_tests::ORG_NAME.into()),
        ..Default::default()
    };
    let signed = org_signed(Profile::ScannedIssue, text);
    check_top_right_text(
        "scanned_issue",
        &signed,
        &[kyso_tests::ORG_NAME, SIGNED_AT_TEXT],
    );
}

#[test]
fn received_stamp_top_left_with_incoming_number_D6() {
    const ORG: &str = "Sở Tài chính tỉnh Khánh Hòa";
    let text = pades::StampText {
        organisation: Some(ORG.into()),
        incoming_number: Some("1234".into()),
        ..Default::default()
    };
    let signed = org_signed(Profile::Received, text);
    let page = keep("received", &signed);
    let before = decision_page();

    // kyso's D6 stamp: a red frame with red text, top left of page 1.
    let top_left = PdfRect::new(
        0.0,
        page.height_pt - 100.0,
        page.width_pt / 2.0,
        page.height_pt,
    );
    let all = changed(&before.image, &page.image, None, |_, _, _| true);
    let bbox = page.pixels_to_rect(all.bbox.expect("a stamp"));
    println!("received: stamp {bbox}");
    assert!(
        inside(&bbox, &top_left, 0.0),
        "stamp {bbox} outside the top left {top_left}"
    );
    assert_clear_of_page_text("received", before, all.bbox.unwrap());
    let red = changed(&before.image, &page.image, None, is_red);
    let frame = page.pixels_to_rect(red.bbox.expect("red stamp"));
    assert!(
        frame.close_to(&bbox, 1.0),
        "the red frame {frame} is the stamp's box {bbox}"
    );
    assert_eq!(
        changed(&before.image, &page.image, None, is_blue).count,
        0,
        "no blue"
    );

    let lines = bbox_layout(&signed);
    let date_line = "Ngày: 14/03/2025 Giờ: 09:30";
    for text in [ORG, "ĐẾN Số: 1234", date_line] {
        let r = line_with(&lines, text).rect();
        assert!(
            inside(&r, &frame, 0.0),
            "{text:?} at {r} outside the frame {frame}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Vietnamese on the page
// ---------------------------------------------------------------------------------------------

#[test]
fn vietnamese_diacritics_render_where_the_words_are_and_extract_exactly_P3() {
    // Marks above and below, stacked marks (ễ, ộ), the hook (ỉ, Ủ), đ/Đ and an em dash.
    const LINE: &str = "Ủy ban nhân dân tỉnh Khánh Hòa — Đến số 15, ngày Lễ hội Đống Đa";
    // The input is precomposed (NFC): no combining marks (U+0300-U+036F) in it.
    assert!(!LINE.chars().any(|c| ('\u{300}'..='\u{36F}').contains(&c)));
    let text = pades::StampText {
        copy_form: Some("SAO Y".into()),
        organisation: Some(LINE.into()),
        ..Default::default()
    };
    let signed = org_signed(Profile::Copy, text);
    let page = keep("vietnamese", &signed);
    let before = decision_page();

    let line = line_with(&bbox_layout(&signed), LINE);
    assert_eq!(line.text(), LINE, "extracted exactly, in NFC");
    // Each word's ink, in ems from its baseline (poppler's box bottom is the baseline less
    // the descriptor's descent).
    let update = String::from_utf8_lossy(&signed[decision().bytes.len()..]);
    let descent = -descriptor_value(&update, "/Descent ") / 1000.0 * TEXT_PT;
    let mut ink = std::collections::BTreeMap::new();
    for w in &line.words {
        // Up to 2 pt above poppler's box, which ends at the font's ascent while marks over
        // capitals reach higher; the line above ("SAO Y", no descenders) starts 3 pt up.
        let mut r = w.rect;
        r.y2 += 2.0;
        let px = page.rect_to_pixels(r);
        let b = changed(&before.image, &page.image, Some(px), is_dark)
            .bbox
            .unwrap_or_else(|| panic!("no ink in {:?}'s box {}", w.text, w.rect));
        let b = page.pixels_to_rect(b);
        let baseline = w.rect.y1 + descent;
        ink.insert(
            w.text.as_str(),
            ((b.y1 - baseline) / TEXT_PT, (b.y2 - baseline) / TEXT_PT),
        );
    }
    println!("ink (bottom, top) in ems from the baseline: {ink:?}");
    // The marks are drawn where they belong; a dropped mark leaves the bare letter's height.
    // Liberation Serif: capitals 0.655 em, x-height 0.459 em, ascenders 0.683 em.
    let top = |w: &str| ink[w].1;
    let bottom = |w: &str| ink[w].0;
    // The hook above Ủ rises over the capitals and the ascenders.
    assert!(top("Ủy") > 0.76, "Ủ's hook: top {:.3} em", top("Ủy"));
    // Marks over lowercase letters without ascenders (ố, ế, ễ stack two) rise well over
    // the x-height.
    for w in ["số", "Lễ", "ngày"] {
        assert!(top(w) > 0.6, "{w:?}'s mark: top {:.3} em", top(w));
    }
    // (A pixel is 0.048 em at 150 dpi: the bounds keep a pixel or more to spare.)
    assert!(
        top("ban") < top("Ủy") - 0.1,
        "unmarked ascenders stay lower"
    );
    // The dot below ộ hangs under the baseline; an unmarked word sits on it.
    assert!(
        bottom("hội") < -0.08,
        "ộ's dot: bottom {:.3} em",
        bottom("hội")
    );
    assert!(bottom("ban") > -0.06, "\"ban\" sits on the baseline");
}
