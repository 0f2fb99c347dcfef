//! Small PDFs written byte by byte for the PDF verification tests: a one-page document (classic
//! cross-reference table, or a cross-reference stream with an object stream), PAdES signatures
//! appended as incremental updates (CMS from `kyso_pki::cms_build`, signed by `openssl pkeyutl`
//! with a key of the test PKI, as an HSM would sign the prehashed digest), and the tampered and
//! attacking variants the verifier must catch.
//!
//! Writing the bytes here (instead of with a PDF library) keeps every offset known, which is
//! what the attacks are about.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use kyso_pki::cms_build::{CadesRequest, Content, SigningAlgorithm, prepare};
use kyso_pki::crypto::DigestAlgorithm;
use time::OffsetDateTime;

use crate::{COMMAND_TIMEOUT, TestPki, run};

/// The text drawn on the page of the base document.
pub const PAGE_TEXT: &str = "Quyet dinh so 123/QD-UBND";
/// Hex digits reserved for `/Contents` (bytes × 2).
const CONTENTS_HEX: usize = 24_000;
/// Width of each `/ByteRange` number placeholder.
const BR_WIDTH: usize = 10;

/// How the base document is written.
#[derive(Clone, Debug, Default)]
pub struct BaseOptions {
    /// Cross-reference stream and an object stream (PDF 1.5) instead of a classic table.
    pub xref_stream: bool,
    /// Hide a second, unreferenced definition of the content stream (object 4) in the file,
    /// ready to be pointed at by a later update (the hide-and-replace shadow attack).
    pub shadow_content: bool,
    /// `/Encrypt` in the trailer.
    pub encrypt: bool,
    /// An object of this many nested `[`, referenced from the catalog.
    pub nested_arrays: Option<usize>,
}

/// A document being built: its bytes and what later updates need to rewrite.
#[derive(Clone, Debug)]
pub struct PdfDoc {
    /// The file so far.
    pub bytes: Vec<u8>,
    /// Updates are written with cross-reference streams.
    pub xref_stream: bool,
    next: u32,
    last_xref: usize,
    fields: Vec<u32>,
    annots: Vec<u32>,
    catalog_extra: String,
    /// Offset of the hidden shadow definition of object 4, if any.
    pub shadow_offset: Option<usize>,
}

/// A signer's certificate and private key, of the shared test PKI or of another one (the
/// load corpus has its own): what [`PdfDoc::sign_by`] signs with.
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// The signer's certificate, DER.
    pub certificate: Vec<u8>,
    /// Its private key (PEM file), for `openssl pkeyutl`.
    pub key: PathBuf,
    /// RSA PKCS#1 v1.5 or ECDSA, with SHA-256 (`openssl pkeyutl -pkeyopt digest:sha256`).
    pub algorithm: SigningAlgorithm,
}

impl SigningKey {
    /// A CAdES SignedData over the SHA-256 `digest` of detached content (signed attributes,
    /// no chain), signed by `openssl pkeyutl` over the prehashed attributes as an HSM would.
    pub fn cades(&self, digest: &[u8]) -> Vec<u8> {
        let prepared = prepare(CadesRequest {
            digest_algorithm: DigestAlgorithm::Sha256,
            content: Content::Digest(digest),
            signer_certificate: &self.certificate,
            chain: &[],
            signing_time: None,
            signature_algorithm: self.algorithm,
            content_type: None,
            commitment_type: None,
        })
        .expect("the CAdES request is valid");
        let mut cmd = Command::new("openssl");
        cmd.args(["pkeyutl", "-sign", "-inkey"])
            .arg(&self.key)
            .args(["-pkeyopt", "digest:sha256"]);
        let value = run(&mut cmd, Some(&prepared.digest_to_sign()), COMMAND_TIMEOUT)
            .expect_success()
            .stdout;
        prepared.finish(&value).expect("the CMS is finished")
    }
}

/// Rewrites `[0, a, b, c]` given the file length (to build bad byte ranges).
pub type RangeTweak = fn([u64; 4], usize) -> [u64; 4];

/// How a signature is made.
#[derive(Clone, Debug)]
pub struct SignOptions {
    /// A leaf of the test PKI.
    pub leaf: String,
    /// The field's partial name.
    pub field: String,
    /// `/SubFilter`.
    pub sub_filter: String,
    /// `/M`.
    pub time: OffsetDateTime,
    /// Changes the computed `[0, a, b, c]` before it is written and hashed.
    pub tweak: Option<RangeTweak>,
}

impl SignOptions {
    /// A PAdES baseline signature by `leaf` in field `field`, /M now.
    pub fn new(leaf: &str, field: &str) -> Self {
        Self {
            leaf: leaf.into(),
            field: field.into(),
            sub_filter: "ETSI.CAdES.detached".into(),
            time: OffsetDateTime::now_utc(),
            tweak: None,
        }
    }
}

fn obj(out: &mut Vec<u8>, num: u32, body: &[u8]) -> usize {
    let off = out.len();
    out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\nendobj\n");
    off
}

fn stream(dict_extra: &str, data: &[u8]) -> Vec<u8> {
    let mut v = format!("<< /Length {}{dict_extra} >>\nstream\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\nendstream");
    v
}

/// A zlib stream of stored (uncompressed) blocks: FlateDecode without a compressor.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(65_535).collect()
    };
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        out.push(u8::from(i + 1 == n));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for x in data {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// Rows of `(type, field2, field3)` as a `/W [1 4 2]` cross-reference stream body with the PNG
/// Up predictor (`/Predictor 12 /Columns 7`), Flate-wrapped.
fn xref_stream_data(rows: &[(u8, u32, u16)]) -> Vec<u8> {
    let mut prev = [0u8; 7];
    let mut raw = Vec::new();
    for (t, f2, f3) in rows {
        let mut row = [0u8; 7];
        row[0] = *t;
        row[1..5].copy_from_slice(&f2.to_be_bytes());
        row[5..7].copy_from_slice(&f3.to_be_bytes());
        raw.push(2u8);
        for i in 0..7 {
            raw.push(row[i].wrapping_sub(prev[i]));
        }
        prev = row;
    }
    zlib_stored(&raw)
}

fn pdf_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+00'00'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl PdfDoc {
    /// The one-page base document.
    pub fn base(opts: &BaseOptions) -> PdfDoc {
        let mut doc = PdfDoc {
            bytes: b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec(),
            xref_stream: opts.xref_stream,
            next: 6,
            last_xref: 0,
            fields: Vec::new(),
            annots: Vec::new(),
            catalog_extra: String::new(),
            shadow_offset: None,
        };
        let mut extra_objs: Vec<(u32, Vec<u8>)> = Vec::new();
        if let Some(depth) = opts.nested_arrays {
            let n = doc.next;
            doc.next += 1;
            doc.catalog_extra = format!(" /Nest {n} 0 R");
            let mut body = "[".repeat(depth).into_bytes();
            body.extend_from_slice(&b"]".repeat(depth));
            extra_objs.push((n, body));
        }
        let content = stream(
            "",
            format!("BT /F1 24 Tf 72 720 Td ({PAGE_TEXT}) Tj ET").as_bytes(),
        );
        if opts.shadow_content {
            // Prepared before signing, referenced by nothing: invisible until an update's
            // cross-reference points object 4 here.
            doc.shadow_offset = Some(obj(
                &mut doc.bytes,
                4,
                &stream(
                    "",
                    b"BT /F1 24 Tf 72 720 Td (Quyet dinh so 999/QD-UBND) Tj ET",
                ),
            ));
        }
        let small: Vec<(u32, Vec<u8>)> = vec![
            (1, doc.catalog().into_bytes()),
            (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec()),
            (3, doc.page().into_bytes()),
            (
                5,
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
            ),
        ];
        let trailer_extra = if opts.encrypt {
            " /Encrypt << /Filter /Standard /V 2 /R 3 /Length 128 /P -4 >> /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]"
        } else {
            ""
        };
        if !opts.xref_stream {
            let mut offsets = vec![(4u32, obj(&mut doc.bytes, 4, &content))];
            for (n, b) in small.iter().chain(extra_objs.iter()) {
                offsets.push((*n, obj(&mut doc.bytes, *n, b)));
            }
            offsets.sort();
            let xref = doc.bytes.len();
            let mut t = format!("xref\n0 {}\n0000000000 65535 f\r\n", doc.next);
            for n in 1..doc.next {
                let off = offsets.iter().find(|(k, _)| *k == n).map_or(0, |(_, o)| *o);
                let _ = write!(t, "{off:010} 00000 n\r\n");
            }
            let _ = write!(
                t,
                "trailer\n<< /Size {} /Root 1 0 R{trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
                doc.next
            );
            doc.bytes.extend_from_slice(t.as_bytes());
            doc.last_xref = xref;
        } else {
            // Objects 1, 2, 3, 5 (and the nested one) in object stream `objstm`.
            let objstm = doc.next;
            let xref_num = doc.next + 1;
            doc.next += 2;
            let content_off = obj(&mut doc.bytes, 4, &content);
            let members: Vec<&(u32, Vec<u8>)> = small.iter().chain(extra_objs.iter()).collect();
            let mut header = String::new();
            let mut body = Vec::new();
            for (n, b) in &members {
                let _ = write!(header, "{n} {} ", body.len());
                body.extend_from_slice(b);
                body.push(b'\n');
            }
            let mut data = header.clone().into_bytes();
            data.extend_from_slice(&body);
            let compressed = zlib_stored(&data);
            let objstm_off = obj(
                &mut doc.bytes,
                objstm,
                &stream(
                    &format!(
                        " /Type /ObjStm /N {} /First {} /Filter /FlateDecode",
                        members.len(),
                        header.len()
                    ),
                    &compressed,
                ),
            );
            let xref = doc.bytes.len();
            let mut rows = vec![(0u8, 0u32, 65_535u16)];
            for n in 1..doc.next {
                let row = if n == 4 {
                    (1, content_off as u32, 0)
                } else if n == objstm {
                    (1, objstm_off as u32, 0)
                } else if n == xref_num {
                    (1, xref as u32, 0)
                } else {
                    let idx = members.iter().position(|(k, _)| *k == n).unwrap_or(0);
                    (2, objstm, idx as u16)
                };
                rows.push(row);
            }
            let data = xref_stream_data(&rows);
            obj(
                &mut doc.bytes,
                xref_num,
                &stream(
                    &format!(
                        " /Type /XRef /Size {} /W [1 4 2] /Root 1 0 R /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 7 >>{trailer_extra}",
                        doc.next
                    ),
                    &data,
                ),
            );
            doc.bytes
                .extend_from_slice(format!("startxref\n{xref}\n%%EOF\n").as_bytes());
            doc.last_xref = xref;
        }
        doc
    }

    fn catalog(&self) -> String {
        let acroform = if self.fields.is_empty() {
            String::new()
        } else {
            format!(
                " /AcroForm << /Fields [{}] /SigFlags 3 >>",
                refs(&self.fields)
            )
        };
        format!(
            "<< /Type /Catalog /Pages 2 0 R{acroform}{} >>",
            self.catalog_extra
        )
    }

    fn page(&self) -> String {
        let annots = if self.annots.is_empty() {
            String::new()
        } else {
            format!(" /Annots [{}]", refs(&self.annots))
        };
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >>{annots} >>"
        )
    }

    /// A fresh object number.
    pub fn alloc(&mut self) -> u32 {
        self.next += 1;
        self.next - 1
    }

    /// Appends an incremental update holding `objects`; returns their offsets.
    pub fn append_update(&mut self, objects: &[(u32, Vec<u8>)]) -> Vec<usize> {
        let mut offs = Vec::new();
        for (n, b) in objects {
            offs.push(obj(&mut self.bytes, *n, b));
        }
        let entries: Vec<(u32, usize)> = objects
            .iter()
            .map(|(n, _)| *n)
            .zip(offs.iter().copied())
            .collect();
        self.append_xref(&entries);
        offs
    }

    /// Appends a cross-reference section (table or stream) for `entries` and the end marker.
    pub fn append_xref(&mut self, entries: &[(u32, usize)]) {
        let xref = self.bytes.len();
        if !self.xref_stream {
            let mut t = String::from("xref\n");
            for (n, off) in entries {
                let _ = write!(t, "{n} 1\n{off:010} 00000 n\r\n");
            }
            let _ = write!(
                t,
                "trailer\n<< /Size {} /Root 1 0 R /Prev {} >>\nstartxref\n{xref}\n%%EOF\n",
                self.next, self.last_xref
            );
            self.bytes.extend_from_slice(t.as_bytes());
        } else {
            let me = self.alloc();
            let mut all: Vec<(u32, usize)> = entries.to_vec();
            all.push((me, xref));
            let index: Vec<String> = all.iter().map(|(n, _)| format!("{n} 1")).collect();
            let rows: Vec<(u8, u32, u16)> =
                all.iter().map(|(_, o)| (1u8, *o as u32, 0u16)).collect();
            let data = xref_stream_data(&rows);
            obj(
                &mut self.bytes,
                me,
                &stream(
                    &format!(
                        " /Type /XRef /Size {} /Index [{}] /W [1 4 2] /Root 1 0 R /Prev {} /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 7 >>",
                        self.next,
                        index.join(" "),
                        self.last_xref
                    ),
                    &data,
                ),
            );
            self.bytes
                .extend_from_slice(format!("startxref\n{xref}\n%%EOF\n").as_bytes());
        }
        self.last_xref = xref;
    }

    /// Appends a PAdES signature (new signature field with widget and appearance) by
    /// `opts.leaf` of the shared test PKI.
    pub fn sign(&mut self, opts: &SignOptions) {
        let pki = TestPki::get();
        let key = SigningKey {
            certificate: pki.leaf_der(&opts.leaf),
            key: pki.dir.join(pki.leaf_key(&opts.leaf)),
            algorithm: SigningAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256),
        };
        self.sign_by(&key, opts);
    }

    /// Appends a PAdES signature made with `key`, a key of any PKI (`opts.leaf` is not used).
    pub fn sign_by(&mut self, key: &SigningKey, opts: &SignOptions) {
        let sig = self.alloc();
        let field = self.alloc();
        let ap = self.alloc();
        self.fields.push(field);
        self.annots.push(field);
        let ph = "9".repeat(BR_WIDTH);
        let sig_body = format!(
            "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /{} /ByteRange [{ph} {ph} {ph} {ph}] /Contents <{}> /M ({}) /Reason (Ban hanh van ban) /Location (Khanh Hoa) >>",
            opts.sub_filter,
            "0".repeat(CONTENTS_HEX),
            pdf_date(opts.time)
        );
        let widget = format!(
            "<< /Type /Annot /Subtype /Widget /FT /Sig /T ({}) /V {sig} 0 R /F 132 /Rect [72 72 272 122] /P 3 0 R /AP << /N {ap} 0 R >> >>",
            opts.field
        );
        let appearance = stream(
            " /Type /XObject /Subtype /Form /BBox [0 0 200 50]",
            b"q 0 0 1 rg 0 0 200 50 re f Q",
        );
        let offs = self.append_update(&[
            (sig, sig_body.into_bytes()),
            (field, widget.into_bytes()),
            (ap, appearance),
            (1, self.catalog().into_bytes()),
            (3, self.page().into_bytes()),
        ]);
        let sig_off = offs[0];
        let len = self.bytes.len();
        let lt = sig_off + find(&self.bytes[sig_off..], b"/Contents <") + 10;
        let gt = lt + 1 + CONTENTS_HEX;
        assert_eq!(
            self.bytes[gt], b'>',
            "the /Contents placeholder ends where expected"
        );
        let mut br = [0, lt as u64, (gt + 1) as u64, (len - gt - 1) as u64];
        if let Some(t) = opts.tweak {
            br = t(br, len);
        }
        let br_text = format!(
            "{:<w$} {:<w$} {:<w$} {:<w$}",
            br[0],
            br[1],
            br[2],
            br[3],
            w = BR_WIDTH
        );
        let at = sig_off + find(&self.bytes[sig_off..], b"/ByteRange [") + 12;
        self.bytes[at..at + br_text.len()].copy_from_slice(br_text.as_bytes());

        let mut hashed = Vec::new();
        let clamp = |x: u64| (x as usize).min(len);
        hashed.extend_from_slice(&self.bytes[clamp(br[0])..clamp(br[0] + br[1])]);
        hashed.extend_from_slice(&self.bytes[clamp(br[2])..clamp(br[2] + br[3])]);
        let digest = DigestAlgorithm::Sha256.digest(&hashed);
        let cms = key.cades(&digest);
        let hex = hex::encode_upper(&cms);
        assert!(hex.len() <= CONTENTS_HEX, "the CMS fits in /Contents");
        self.bytes[lt + 1..lt + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    }

    /// An update replacing the page's content stream (object 4): a changed page.
    pub fn change_page_content(&mut self, text: &str) {
        let body = stream(
            "",
            format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET").as_bytes(),
        );
        self.append_update(&[(4, body)]);
    }

    /// An update adding a text (sticky note) annotation to the page.
    pub fn add_text_annotation(&mut self) {
        let n = self.alloc();
        self.annots.push(n);
        let annot = b"<< /Type /Annot /Subtype /Text /Rect [300 700 320 720] /Contents (Da duyet) /Open true >>".to_vec();
        self.append_update(&[(n, annot), (3, self.page().into_bytes())]);
    }

    /// An update that points object 4 at its hidden shadow definition in the signed bytes.
    pub fn redirect_to_shadow(&mut self) {
        let off = self
            .shadow_offset
            .expect("the base was written with a shadow object");
        self.append_xref(&[(4, off)]);
    }

    /// An update holding a second cross-reference section that its trailer chain does not use
    /// (it redefines the page content for readers that pick it up).
    pub fn update_with_hidden_xref(&mut self) {
        let body = stream("", b"BT /F1 24 Tf 72 720 Td (Quyet dinh so 666) Tj ET");
        let off = obj(&mut self.bytes, 4, &body);
        let hidden = format!(
            "xref\n4 1\n{off:010} 00000 n\r\ntrailer\n<< /Size {} /Root 1 0 R /Prev {} >>\n",
            self.next, self.last_xref
        );
        self.bytes.extend_from_slice(hidden.as_bytes());
        let n = self.alloc();
        let info = b"<< /Producer (kyso tests) >>".to_vec();
        let o = obj(&mut self.bytes, n, &info);
        self.append_xref(&[(n, o)]);
    }
}

fn refs(nums: &[u32]) -> String {
    nums.iter()
        .map(|n| format!("{n} 0 R"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Position of `needle` in `hay` (panics when absent: a fixture bug).
pub fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

/// A PDF whose cross-reference table claims `count` entries.
pub fn huge_xref(count: u64) -> Vec<u8> {
    format!(
        "%PDF-1.4\nxref\n0 {count}\n0000000000 65535 f\r\ntrailer\n<< /Size {count} >>\nstartxref\n9\n%%EOF\n"
    )
    .into_bytes()
}

/// Moves the last `startxref` value by `delta` bytes (a broken cross-reference).
pub fn shift_last_startxref(pdf: &[u8], delta: i64) -> Vec<u8> {
    let at = pdf
        .windows(10)
        .rposition(|w| w == b"startxref\n")
        .expect("has startxref")
        + 10;
    let end = at + pdf[at..].iter().position(|b| *b == b'\n').expect("EOL");
    let v: i64 = std::str::from_utf8(&pdf[at..end])
        .expect("digits")
        .parse()
        .expect("number");
    let mut out = pdf[..at].to_vec();
    out.extend_from_slice((v + delta).to_string().as_bytes());
    out.extend_from_slice(&pdf[end..]);
    out
}

/// Objects (bodies, numbered from 1; object 1 is the catalog) written as a whole PDF with a
/// classic cross-reference table; `trailer_extra` goes into the trailer dictionary.
pub fn classic_pdf(objects: &[String], trailer_extra: &str) -> Vec<u8> {
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
