//! `kyso-pades`: PAdES baseline B signing (ETSI EN 319 142-1) with the legal
//! appearances (fonts, PNG images, markers), two-phase like
//! [`kyso_pki::cms_build`], because the keys live in an HSM. It writes PDFs and
//! never verifies them (`kyso-pdf` reads, `kyso-validation` judges), and it does
//! no I/O: the caller brings the PDF, the images and the signature value.
//!
//! 1. [`prepare`] reads the PDF (lopdf: classic tables, xref streams, object
//!    streams), refuses what it cannot sign safely, and appends an
//!    incremental update: the signature dictionary (`/SubFilter
//!    /ETSI.CAdES.detached`, the signing time in `/M`), the signature field
//!    and its widget with the legal appearance of the profile (P1-P4, D3,
//!    D6), the page's `/Annots`, the AcroForm (`/SigFlags 3`) and, if
//!    needed, the catalog; then a cross-reference section of the same kind
//!    as the original's last one, with `/Prev`. The original bytes are the
//!    untouched prefix of the result (D7: the signed file is the original).
//!    [`PreparedPdf::digest`] is the digest of everything but `/Contents`.
//! 2. The caller builds the CMS over that digest with
//!    [`kyso_pki::cms_build::prepare`] ([`kyso_pki::cms_build::Content::Digest`],
//!    no signing-time attribute: [`PreparedPdf::cades_request`] fills it in)
//!    and signs it in the HSM; [`PreparedPdf::finish`] writes the CMS into
//!    `/Contents`.
//!
//! Field names: kyso names the fields it creates `kyso_<profile>_<n>`
//! (`kyso_approval_1`, `kyso_issue_1`, …: a partial name has no periods). An ISSUE finds the personal
//! signature it must overlap (P2) by that convention: the last signed field
//! whose name starts with `kyso_approval`; failing that, the signed field
//! named in [`Placement::Field`]; failing that, the last signed signature
//! field that has a visible widget.
//!
//! Limits: pages turned by `/Rotate` get unrotated appearances; a document
//! certified with "no changes allowed" (DocMDP P=1) is refused.

mod appearance;
mod font;
mod marker;
mod png;
mod serialize;
mod writer;

use std::collections::BTreeMap;
use std::io::Read;

use lopdf::{Dictionary, Document, Object, ObjectId};
use time::OffsetDateTime;

use kyso_pki::cms_build::{CadesRequest, Content, SigningAlgorithm};
use kyso_pki::crypto::DigestAlgorithm;

use serialize::{rect as rect_str, text_string, write_dict, write_object};
use writer::{Objects, Trailer};

pub use appearance::StampText;

/// Vietnam's offset: appearance times and `/M` are local (P3).
pub const VN_OFFSET: time::UtcOffset = match time::UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => time::UtcOffset::UTC,
};

/// The sample images, used when a request brings none (real deployments
/// send the person's signature or the organisation's seal).
pub mod samples {
    /// A blue handwritten-like signature on a transparent background (P1).
    pub const SIGNATURE_PNG: &[u8] = include_bytes!("../../assets/images/signature-sample.png");
    /// A red round seal on a transparent background (P2).
    pub const SEAL_PNG: &[u8] = include_bytes!("../../assets/images/seal-sample.png");
}

/// Bounds on what is read, so a hostile PDF costs bounded memory and stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PadesLimits {
    /// Largest input, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and dictionaries (lopdf's parser recurses).
    pub max_depth: usize,
    /// Most objects in the cross-reference table.
    pub max_objects: usize,
    /// Most pages.
    pub max_pages: usize,
}

impl Default for PadesLimits {
    fn default() -> Self {
        Self {
            max_bytes: 32 << 20,
            max_depth: 64,
            max_objects: 500_000,
            max_pages: 20_000,
        }
    }
}

/// The legal form of the signature (DOMAIN.md D1-D6, P1-P4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// The competent person's signature: the handwritten signature image (P1).
    Approval,
    /// The organisation's seal over the person's signature (P2, A6, W2).
    Issue,
    /// The organisation's signature over a scanned paper original (D3).
    ScannedIssue,
    /// A copy made by the organisation: text top right of page 1 (P3).
    Copy,
    /// A separate attachment or annex file: text top right of page 1 (P4, D5).
    Appendix,
    /// The received stamp of the receiving organisation (D6, W3).
    Received,
    /// A comment: an invisible signature.
    Comment,
}

impl Profile {
    /// `approval`, `issue`, … as used in field names.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Issue => "issue",
            Self::ScannedIssue => "scanned_issue",
            Self::Copy => "copy",
            Self::Appendix => "appendix",
            Self::Received => "received",
            Self::Comment => "comment",
        }
    }
}

/// Where the appearance goes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Placement {
    /// The profile's own rule: APPROVAL the only empty signature field;
    /// ISSUE over the APPROVAL signature (P2); COPY, APPENDIX and
    /// SCANNED_ISSUE top right of page 1 (P3, P4); RECEIVED top left of
    /// page 1; COMMENT invisible.
    Auto,
    /// A rectangle `[x0, y0, x1, y1]` in default user space (points) on a
    /// page (1-based).
    Rect {
        /// Page number, from 1.
        page: u32,
        /// The rectangle.
        rect: [f64; 4],
    },
    /// APPROVAL: an existing empty signature field (how templates reserve
    /// the place between the title and the name); ISSUE: the signed
    /// APPROVAL field to overlap.
    Field(String),
    /// A text marker in the page content (for example `{{chu_ky}}`), shown
    /// with a simple font encoding; the appearance is centred on it.
    Marker {
        /// The marker text.
        text: String,
        /// Only this page (1-based); `None`: the first page that has it.
        page: Option<u32>,
    },
}

/// A PAdES signing request.
#[derive(Debug, Clone)]
pub struct PadesRequest<'a> {
    /// The legal form.
    pub profile: Profile,
    /// Where the appearance goes.
    pub placement: Placement,
    /// The new field's name; `None`: `kyso.<profile>.<n>`.
    pub field_name: Option<String>,
    /// The image (PNG, 8-bit RGB or RGBA): the person's signature (APPROVAL)
    /// or the seal (ISSUE); `None`: the sample image.
    pub image: Option<&'a [u8]>,
    /// ISSUE: the seal's real diameter in millimetres (P2 "real size");
    /// `None`: 36 mm.
    pub seal_diameter_mm: Option<f64>,
    /// What the text appearances say.
    pub text: StampText,
    /// The signing time, written to `/M` and to the appearance text.
    pub signing_time: OffsetDateTime,
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
    /// `/ContactInfo`.
    pub contact_info: Option<String>,
    /// `/Name`; `None`: the certificate's common name.
    pub signer_name: Option<String>,
    /// The signer's certificate, DER (sizes the placeholder, names the signer).
    pub signer_certificate: &'a [u8],
    /// The chain the CMS will carry, DER.
    pub chain: &'a [Vec<u8>],
    /// The byte-range digest algorithm (the CMS's).
    pub digest_algorithm: DigestAlgorithm,
    /// Bytes reserved for the CMS; `None`: sized from the certificates.
    pub placeholder_size: Option<usize>,
    /// Input bounds.
    pub limits: PadesLimits,
}

impl<'a> PadesRequest<'a> {
    /// A request with the defaults: automatic placement, sample images,
    /// SHA-256, a placeholder sized from the certificates.
    pub fn new(
        profile: Profile,
        signer_certificate: &'a [u8],
        chain: &'a [Vec<u8>],
        signing_time: OffsetDateTime,
    ) -> Self {
        Self {
            profile,
            placement: Placement::Auto,
            field_name: None,
            image: None,
            seal_diameter_mm: None,
            text: StampText::default(),
            signing_time,
            reason: None,
            location: None,
            contact_info: None,
            signer_name: None,
            signer_certificate,
            chain,
            digest_algorithm: DigestAlgorithm::Sha256,
            placeholder_size: None,
            limits: PadesLimits::default(),
        }
    }
}

/// Why a PDF cannot be signed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PadesError {
    /// The input does not start with `%PDF-` or has no `%%EOF`.
    #[error("not a PDF: {0}")]
    NotPdf(String),
    /// The input is over [`PadesLimits::max_bytes`].
    #[error("the PDF has {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The PDF is encrypted: its content cannot be checked before signing.
    #[error("the PDF is encrypted; decrypt it before signing")]
    Encrypted,
    /// Arrays and dictionaries nest deeper than [`PadesLimits::max_depth`].
    #[error("objects nest {depth} deep, over the limit of {limit}")]
    TooDeep {
        /// The depth found (at least).
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// More objects or pages than the limits allow.
    #[error("the PDF has {count} {what}, over the limit of {limit}")]
    TooMany {
        /// "objects" or "pages".
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The PDF's structure is broken (cross-reference table, trailer,
    /// catalog, page tree) and will not be guessed at.
    #[error("malformed PDF: {0}")]
    Malformed(String),
    /// A PDF feature this signer does not handle.
    #[error("unsupported PDF: {0}")]
    Unsupported(String),
    /// The page asked for does not exist.
    #[error("page {page} does not exist (the document has {pages})")]
    Page {
        /// The page asked for.
        page: u32,
        /// How many there are.
        pages: usize,
    },
    /// The placement cannot be honoured.
    #[error("placement: {0}")]
    Placement(String),
    /// A signature field problem (name taken, already signed, not found).
    #[error("signature field: {0}")]
    Field(String),
    /// ISSUE: no signed APPROVAL field to put the seal over (P2, A6).
    #[error("no personal (APPROVAL) signature to seal over (P2, A6): {0}")]
    NoApproval(String),
    /// The image is not a supported PNG.
    #[error("image: {0}")]
    Image(String),
    /// The embedded font cannot be read or subset.
    #[error("font: {0}")]
    Font(String),
    /// The appearance text is missing or cannot be set.
    #[error("appearance text: {0}")]
    Text(String),
    /// The certificate cannot be read.
    #[error("certificate: {0}")]
    Certificate(String),
    /// [`PreparedPdf::finish`]: the CMS does not fit the placeholder.
    #[error("the CMS has {needed} bytes but the placeholder holds {available}")]
    Placeholder {
        /// The CMS's size.
        needed: usize,
        /// The room reserved.
        available: usize,
    },
    /// Writing the update failed (a bug or an absurd size).
    #[error("encoding the update: {0}")]
    Encoding(String),
}

impl From<PadesError> for kyso_pki::Error {
    fn from(e: PadesError) -> Self {
        kyso_pki::Error::InvalidRequest(e.to_string())
    }
}

/// The PDF with its update appended and `/Contents` still zeros.
#[derive(Clone)]
pub struct PreparedPdf {
    pdf: Vec<u8>,
    /// Offsets of `<` and just after `>` of `/Contents`.
    contents: (usize, usize),
    digest_algorithm: DigestAlgorithm,
    digest: Vec<u8>,
    field_name: String,
    signing_time: OffsetDateTime,
    original_len: usize,
}

impl std::fmt::Debug for PreparedPdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPdf")
            .field("len", &self.pdf.len())
            .field("byte_range", &self.byte_range())
            .field("field_name", &self.field_name)
            .field("digest", &hex::encode(&self.digest))
            .finish_non_exhaustive()
    }
}

impl PreparedPdf {
    /// The digest of the signed byte ranges: the CMS's message digest.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The digest algorithm.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest_algorithm
    }

    /// `/ByteRange`: `[0, a, b, len - b]`, everything but `/Contents`.
    pub fn byte_range(&self) -> [usize; 4] {
        let (a, b) = self.contents;
        [0, a, b, self.pdf.len() - b]
    }

    /// The name of the signature field.
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// How many CMS bytes fit in `/Contents`.
    pub fn capacity(&self) -> usize {
        (self.contents.1 - self.contents.0 - 2) / 2
    }

    /// The length of the original PDF (the update starts there, or one
    /// line end later).
    pub fn original_len(&self) -> usize {
        self.original_len
    }

    /// The CAdES request for this signature: detached over the byte-range
    /// digest, without the signing-time attribute (ETSI EN 319 142-1
    /// §5.2.1: the time is `/M`), ESS signing-certificate-v2 included.
    pub fn cades_request<'c>(
        &'c self,
        signer_certificate: &'c [u8],
        chain: &'c [Vec<u8>],
        signature_algorithm: SigningAlgorithm,
    ) -> CadesRequest<'c> {
        CadesRequest {
            digest_algorithm: self.digest_algorithm,
            content: Content::Digest(&self.digest),
            signer_certificate,
            chain,
            signing_time: None,
            signature_algorithm,
            content_type: None,
        }
    }

    /// The signing time written to `/M`.
    pub fn signing_time(&self) -> OffsetDateTime {
        self.signing_time
    }

    /// Writes the DER CMS into `/Contents` (hex, zero padded).
    pub fn finish(self, cms: &[u8]) -> Result<Vec<u8>, PadesError> {
        let available = self.capacity();
        if cms.is_empty() || cms.len() > available {
            return Err(PadesError::Placeholder {
                needed: cms.len(),
                available,
            });
        }
        let mut pdf = self.pdf;
        let hex = hex::encode_upper(cms);
        let start = self.contents.0 + 1;
        let slot = pdf
            .get_mut(start..start + hex.len())
            .ok_or_else(|| PadesError::Encoding("the placeholder moved".into()))?;
        slot.copy_from_slice(hex.as_bytes());
        Ok(pdf)
    }
}

/// Reads `pdf` and appends the signature's incremental update.
pub fn prepare(pdf: &[u8], req: &PadesRequest<'_>) -> Result<PreparedPdf, PadesError> {
    if req.digest_algorithm == DigestAlgorithm::Sha1 {
        return Err(PadesError::Unsupported(
            "SHA-1 is not accepted for new signatures".into(),
        ));
    }
    let src = Source::load(pdf, &req.limits)?;
    let cert = kyso_pki::cert::Cert::from_der(req.signer_certificate)
        .map_err(|e| PadesError::Certificate(e.to_string()))?;
    let cn = cert.subject_attr(const_oid::db::rfc4519::CN);
    let org = cert
        .subject_attr(const_oid::db::rfc4519::O)
        .or_else(|| cn.clone());

    let mut objs = Objects::new(src.size);
    let fields = src.fields()?;
    let field_name = match &req.field_name {
        Some(n) => {
            if fields.iter().any(|f| &f.name == n)
                && !matches!(&req.placement, Placement::Field(p) if p == n && req.profile != Profile::Issue)
            {
                return Err(PadesError::Field(format!("a field named {n:?} exists")));
            }
            n.clone()
        }
        None => {
            // A partial field name must not contain a period (ISO 32000-1 12.7.3.2).
            let prefix = format!("kyso_{}_", req.profile.slug());
            let n = (1..)
                .find(|i| !fields.iter().any(|f| f.name == format!("{prefix}{i}")))
                .unwrap_or(1);
            format!("{prefix}{n}")
        }
    };

    // Where the widget goes: an existing empty field, or a new one on a page.
    let target = appearance::place(&src, &fields, req)?;
    let (form, rect) = appearance::draw(&mut objs, req, &target, org.as_deref())?;

    let sig_id = objs.reserve();
    let (contents_hex_len, sig_body) = signature_dictionary(req, cn.as_deref())?;
    objs.set(sig_id, 0, sig_body);

    match &target.existing {
        Some(field) => {
            // A template's empty field: it gets the value, its widget the
            // appearance; it is already in /Fields and in the page's /Annots.
            let mut fd = src.dict(field.id)?.clone();
            fd.set("V", Object::Reference((sig_id, 0)));
            if field.widget == field.id {
                widget_entries(&mut fd, form, target.page_id);
            } else {
                let mut wd = src.dict(field.widget)?.clone();
                widget_entries(&mut wd, form, target.page_id);
                objs.set(field.widget.0, field.widget.1, dict_bytes(&wd)?);
            }
            objs.set(field.id.0, field.id.1, dict_bytes(&fd)?);
            src.update_acroform(&mut objs, None)?;
        }
        None => {
            let widget = objs.reserve();
            objs.set(
                widget,
                0,
                format!(
                    "<</Type /Annot /Subtype /Widget /FT /Sig /T {} /V {sig_id} 0 R /Rect {} \
                     /P {} {} R /F 4 /AP <</N {form} 0 R>>>>",
                    text_string(&field_name),
                    rect_str(rect),
                    target.page_id.0,
                    target.page_id.1,
                )
                .into_bytes(),
            );
            src.add_annot(&mut objs, target.page_id, widget)?;
            src.update_acroform(&mut objs, Some(widget))?;
        }
    }

    let (out, starts) = writer::write_update(pdf, objs, &src.trailer)?;
    let sig_at = *starts
        .get(&sig_id)
        .ok_or_else(|| PadesError::Encoding("the signature dictionary was not written".into()))?;
    let find = |needle: &[u8]| -> Result<usize, PadesError> {
        out.get(sig_at..)
            .and_then(|s| s.windows(needle.len()).position(|w| w == needle))
            .map(|p| sig_at + p)
            .ok_or_else(|| PadesError::Encoding("placeholder not found".into()))
    };
    let br_at = find(BYTE_RANGE_PLACEHOLDER.as_bytes())?;
    let contents_at = find(b"/Contents <")? + b"/Contents ".len();
    let contents_end = contents_at + contents_hex_len + 2;
    let mut out = out;
    let range = [0, contents_at, contents_end, out.len() - contents_end];
    let written = format!("[{} {} {} {}", range[0], range[1], range[2], range[3]);
    let width = BYTE_RANGE_PLACEHOLDER.len() - "/ByteRange ".len() - 1;
    if written.len() > width {
        return Err(PadesError::Encoding("the byte range does not fit".into()));
    }
    let patched = format!("/ByteRange {written:<width$}]");
    out.get_mut(br_at..br_at + patched.len())
        .ok_or_else(|| PadesError::Encoding("the byte range placeholder moved".into()))?
        .copy_from_slice(patched.as_bytes());

    let mut d = req.digest_algorithm.digester();
    d.update(&out[..contents_at]);
    d.update(&out[contents_end..]);
    Ok(PreparedPdf {
        digest: d.finish(),
        pdf: out,
        contents: (contents_at, contents_end),
        digest_algorithm: req.digest_algorithm,
        field_name,
        signing_time: req.signing_time,
        original_len: pdf.len(),
    })
}

const BYTE_RANGE_PLACEHOLDER: &str = "/ByteRange [0 0000000000 0000000000 0000000000]";

/// The widget entries of a field filled in place.
fn widget_entries(d: &mut Dictionary, form: u32, page: ObjectId) {
    let mut ap = Dictionary::new();
    ap.set("N", Object::Reference((form, 0)));
    d.set("AP", Object::Dictionary(ap));
    d.set("F", Object::Integer(4));
    if !d.has(b"P") {
        d.set("P", Object::Reference(page));
    }
}

fn dict_bytes(d: &Dictionary) -> Result<Vec<u8>, PadesError> {
    let mut out = Vec::new();
    write_dict(&mut out, d)?;
    Ok(out)
}

/// The signature dictionary with its placeholders; returns the hex length
/// of `/Contents`.
fn signature_dictionary(
    req: &PadesRequest<'_>,
    cn: Option<&str>,
) -> Result<(usize, Vec<u8>), PadesError> {
    let room = match req.placeholder_size {
        Some(n) => n,
        None => placeholder_size(req.signer_certificate, req.chain),
    };
    let hex_len = room * 2;
    let t = req.signing_time.to_offset(VN_OFFSET);
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let m = t
        .format(&fmt)
        .map_err(|e| PadesError::Encoding(format!("/M: {e}")))?;
    let (oh, om) = (
        t.offset().whole_hours(),
        t.offset().minutes_past_hour().abs(),
    );
    let sign = if oh < 0 { '-' } else { '+' };
    let mut s = format!(
        "<</Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached {BYTE_RANGE_PLACEHOLDER} \
         /Contents <{}> /M (D:{m}{sign}{:02}'{om:02}')",
        "0".repeat(hex_len),
        oh.abs()
    );
    let name = req.signer_name.as_deref().or(cn);
    for (key, value) in [
        ("Name", name),
        ("Reason", req.reason.as_deref()),
        ("Location", req.location.as_deref()),
        ("ContactInfo", req.contact_info.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            s.push_str(&format!(" /{key} {}", text_string(v)));
        }
    }
    s.push_str(" /Prop_Build <</App <</Name /kyso>>>>>>");
    Ok((hex_len, s.into_bytes()))
}

/// Room for the CMS: the certificates it embeds, the signer's issuer name
/// again (ESS, issuerAndSerialNumber), a signature of up to RSA-8192, the
/// attributes and structure, and a margin; so it never overflows for what
/// [`kyso_pki::cms_build`] writes.
pub fn placeholder_size(signer_certificate: &[u8], chain: &[Vec<u8>]) -> usize {
    let certs: usize = signer_certificate.len() + chain.iter().map(Vec::len).sum::<usize>();
    certs + 2 * signer_certificate.len() + 1024 + 2048 + 4096
}

/// A field of the AcroForm.
#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    pub id: ObjectId,
    pub name: String,
    pub is_sig: bool,
    pub signed: bool,
    pub widget: ObjectId,
    pub rect: Option<[f64; 4]>,
    pub page: Option<ObjectId>,
}

/// The original document, as read.
pub(crate) struct Source<'a> {
    _bytes: std::marker::PhantomData<&'a [u8]>,
    pub doc: Document,
    pub trailer: Trailer,
    pub size: u32,
    pub root: ObjectId,
    pub pages: BTreeMap<u32, ObjectId>,
}

impl<'a> Source<'a> {
    fn load(bytes: &'a [u8], limits: &PadesLimits) -> Result<Self, PadesError> {
        if bytes.len() > limits.max_bytes {
            return Err(PadesError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        if !bytes.starts_with(b"%PDF-") {
            return Err(PadesError::NotPdf("it does not start with %PDF-".into()));
        }
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        if !tail.windows(5).any(|w| w == b"%%EOF") {
            return Err(PadesError::NotPdf(
                "no %%EOF at the end: truncated or not a PDF".into(),
            ));
        }
        check_depth(bytes, limits.max_depth)?;
        let doc = match Document::load_mem(bytes) {
            Ok(d) => d,
            Err(e) => {
                if has_encrypt_key(bytes) {
                    return Err(PadesError::Encrypted);
                }
                return Err(PadesError::Malformed(format!("lopdf cannot read it: {e}")));
            }
        };
        if doc.trailer.has(b"Encrypt") || doc.is_encrypted() {
            return Err(PadesError::Encrypted);
        }
        let entries = doc.reference_table.entries.len();
        if entries > limits.max_objects {
            return Err(PadesError::TooMany {
                what: "objects",
                count: entries,
                limit: limits.max_objects,
            });
        }
        check_xref_offsets(bytes, &doc)?;
        let root = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| PadesError::Malformed("the trailer has no /Root reference".into()))?;
        let catalog = doc
            .get_dictionary(root)
            .map_err(|e| PadesError::Malformed(format!("the catalog {root:?}: {e}")))?;
        if catalog.has(b"Perms") {
            check_docmdp(&doc, catalog)?;
        }
        let pages = doc.get_pages();
        if pages.is_empty() {
            return Err(PadesError::Malformed("the page tree has no page".into()));
        }
        if pages.len() > limits.max_pages {
            return Err(PadesError::TooMany {
                what: "pages",
                count: pages.len(),
                limit: limits.max_pages,
            });
        }
        let mut entries = String::new();
        entries.push_str(&format!("/Root {} {} R", root.0, root.1));
        for key in ["Info", "ID"] {
            if let Ok(v) = doc.trailer.get(key.as_bytes()) {
                let mut b = Vec::new();
                write_object(&mut b, v)?;
                entries.push_str(&format!(" /{key} "));
                entries.push_str(&String::from_utf8_lossy(&b));
            }
        }
        let xref_stream = matches!(
            doc.reference_table.cross_reference_type,
            lopdf::xref::XrefType::CrossReferenceStream
        );
        let size = doc.reference_table.size.max(doc.max_id.saturating_add(1));
        let trailer = Trailer {
            entries,
            prev: doc.xref_start,
            size,
            xref_stream,
        };
        Ok(Self {
            _bytes: std::marker::PhantomData,
            doc,
            trailer,
            size,
            root,
            pages,
        })
    }

    pub(crate) fn dict(&self, id: ObjectId) -> Result<&Dictionary, PadesError> {
        self.doc
            .get_dictionary(id)
            .map_err(|e| PadesError::Malformed(format!("object {} {}: {e}", id.0, id.1)))
    }

    /// Follows references (a bounded chain).
    pub(crate) fn deref<'o>(&'o self, o: &'o Object) -> Result<&'o Object, PadesError> {
        let mut cur = o;
        for _ in 0..32 {
            match cur {
                Object::Reference(id) => {
                    cur = self.doc.get_object(*id).map_err(|e| {
                        PadesError::Malformed(format!("object {} {}: {e}", id.0, id.1))
                    })?;
                }
                other => return Ok(other),
            }
        }
        Err(PadesError::Malformed(
            "a chain of references too long".into(),
        ))
    }

    fn catalog(&self) -> Result<&Dictionary, PadesError> {
        self.dict(self.root)
    }

    /// Page number (1-based) and object of every page.
    pub(crate) fn page(&self, n: u32) -> Result<ObjectId, PadesError> {
        self.pages.get(&n).copied().ok_or(PadesError::Page {
            page: n,
            pages: self.pages.len(),
        })
    }

    /// An inheritable page attribute (PDF 32000 §7.7.3.4).
    pub(crate) fn inherited(
        &self,
        page: ObjectId,
        key: &[u8],
    ) -> Result<Option<&Object>, PadesError> {
        let mut cur = self.dict(page)?;
        for _ in 0..64 {
            if let Ok(v) = cur.get(key) {
                return Ok(Some(self.deref(v)?));
            }
            match cur.get(b"Parent").and_then(Object::as_reference) {
                Ok(p) => cur = self.dict(p)?,
                Err(_) => return Ok(None),
            }
        }
        Err(PadesError::Malformed("the page tree is too deep".into()))
    }

    /// The visible box of a page (CropBox, else MediaBox), normalised.
    pub(crate) fn page_box(&self, page: ObjectId) -> Result<[f64; 4], PadesError> {
        let b = match self.inherited(page, b"CropBox")? {
            Some(b) => b,
            None => self
                .inherited(page, b"MediaBox")?
                .ok_or_else(|| PadesError::Malformed("a page without /MediaBox".into()))?,
        };
        let r = self
            .rect(b)
            .ok_or_else(|| PadesError::Malformed("a page box that is not 4 numbers".into()))?;
        Ok(r)
    }

    pub(crate) fn rect(&self, o: &Object) -> Option<[f64; 4]> {
        let a = self.deref(o).ok()?.as_array().ok()?;
        if a.len() != 4 {
            return None;
        }
        let mut v = [0f64; 4];
        for (slot, o) in v.iter_mut().zip(a) {
            *slot = f64::from(self.deref(o).ok()?.as_float().ok()?);
        }
        Some([
            v[0].min(v[2]),
            v[1].min(v[3]),
            v[0].max(v[2]),
            v[1].max(v[3]),
        ])
    }

    /// The page's rotation in degrees.
    pub(crate) fn rotation(&self, page: ObjectId) -> Result<i64, PadesError> {
        Ok(self
            .inherited(page, b"Rotate")?
            .and_then(|o| o.as_i64().ok())
            .unwrap_or(0)
            .rem_euclid(360))
    }

    fn acroform(&self) -> Result<Option<(Option<ObjectId>, &Dictionary)>, PadesError> {
        match self.catalog()?.get(b"AcroForm") {
            Ok(Object::Reference(id)) => Ok(Some((Some(*id), self.dict(*id)?))),
            Ok(Object::Dictionary(d)) => Ok(Some((None, d))),
            Ok(_) => Err(PadesError::Malformed(
                "/AcroForm is not a dictionary".into(),
            )),
            Err(_) => Ok(None),
        }
    }

    /// The top-level fields of the AcroForm (signature fields with their
    /// first widget).
    pub(crate) fn fields(&self) -> Result<Vec<FieldInfo>, PadesError> {
        let Some((_, form)) = self.acroform()? else {
            return Ok(Vec::new());
        };
        let Ok(list) = form.get(b"Fields") else {
            return Ok(Vec::new());
        };
        let list = self
            .deref(list)?
            .as_array()
            .map_err(|_| PadesError::Malformed("/Fields is not an array".into()))?;
        let mut out = Vec::new();
        for f in list {
            let Ok(id) = f.as_reference() else { continue };
            let Ok(d) = self.dict(id) else { continue };
            let name = d
                .get(b"T")
                .ok()
                .and_then(|t| self.deref(t).ok())
                .and_then(|t| t.as_str().ok())
                .map(decode_text)
                .unwrap_or_default();
            let is_sig = d
                .get(b"FT")
                .and_then(Object::as_name)
                .is_ok_and(|n| n == b"Sig");
            let signed = d.get(b"V").is_ok_and(|v| !matches!(v, Object::Null));
            let widget = match d.get(b"Kids").ok().map(|k| self.deref(k)) {
                Some(Ok(Object::Array(kids))) => kids
                    .first()
                    .and_then(|k| k.as_reference().ok())
                    .unwrap_or(id),
                _ => id,
            };
            let wd = self.dict(widget).ok();
            let rect = wd
                .and_then(|w| w.get(b"Rect").ok())
                .and_then(|r| self.rect(r));
            let page = match wd.and_then(|w| w.get(b"P").ok()).map(Object::as_reference) {
                Some(Ok(p)) => Some(p),
                _ => self.page_of(widget),
            };
            out.push(FieldInfo {
                id,
                name,
                is_sig,
                signed,
                widget,
                rect,
                page,
            });
        }
        Ok(out)
    }

    /// The page whose /Annots holds `annot`.
    fn page_of(&self, annot: ObjectId) -> Option<ObjectId> {
        self.pages.values().copied().find(|p| {
            self.dict(*p)
                .ok()
                .and_then(|d| d.get(b"Annots").ok())
                .and_then(|a| self.deref(a).ok())
                .and_then(|a| a.as_array().ok())
                .is_some_and(|a| a.iter().any(|o| o.as_reference().ok() == Some(annot)))
        })
    }

    /// Adds the widget to the page's /Annots (rewriting the page, or the
    /// array when it is an object of its own).
    fn add_annot(&self, objs: &mut Objects, page: ObjectId, widget: u32) -> Result<(), PadesError> {
        let pd = self.dict(page)?;
        let wref = Object::Reference((widget, 0));
        match pd.get(b"Annots") {
            Ok(Object::Reference(id)) => {
                let mut a = self
                    .deref(&Object::Reference(*id))?
                    .as_array()
                    .map_err(|_| PadesError::Malformed("/Annots is not an array".into()))?
                    .clone();
                a.push(wref);
                let mut b = Vec::new();
                write_object(&mut b, &Object::Array(a))?;
                objs.set(id.0, id.1, b);
            }
            Ok(Object::Array(a)) => {
                let mut a = a.clone();
                a.push(wref);
                let mut d = pd.clone();
                d.set("Annots", Object::Array(a));
                objs.set(page.0, page.1, dict_bytes(&d)?);
            }
            Ok(_) => return Err(PadesError::Malformed("/Annots is not an array".into())),
            Err(_) => {
                let mut d = pd.clone();
                d.set("Annots", Object::Array(vec![wref]));
                objs.set(page.0, page.1, dict_bytes(&d)?);
            }
        }
        Ok(())
    }

    /// The AcroForm with `/SigFlags 3` and the new field in `/Fields`.
    fn update_acroform(&self, objs: &mut Objects, field: Option<u32>) -> Result<(), PadesError> {
        let existing = self.acroform()?;
        let mut form = existing.map(|(_, d)| d.clone()).unwrap_or_default();
        form.set("SigFlags", Object::Integer(3));
        if let Some(field) = field {
            let fref = Object::Reference((field, 0));
            match form.get(b"Fields") {
                Ok(Object::Reference(id)) => {
                    let id = *id;
                    let mut a = self
                        .deref(&Object::Reference(id))?
                        .as_array()
                        .map_err(|_| PadesError::Malformed("/Fields is not an array".into()))?
                        .clone();
                    a.push(fref);
                    let mut b = Vec::new();
                    write_object(&mut b, &Object::Array(a))?;
                    objs.set(id.0, id.1, b);
                }
                Ok(Object::Array(a)) => {
                    let mut a = a.clone();
                    a.push(fref);
                    form.set("Fields", Object::Array(a));
                }
                _ => form.set("Fields", Object::Array(vec![fref])),
            }
        }
        match existing {
            Some((Some(id), _)) => objs.set(id.0, id.1, dict_bytes(&form)?),
            _ => {
                let id = objs.add(dict_bytes(&form)?);
                let mut cat = self.catalog()?.clone();
                cat.set("AcroForm", Object::Reference((id, 0)));
                objs.set(self.root.0, self.root.1, dict_bytes(&cat)?);
            }
        }
        Ok(())
    }
}

/// A PDF text string: UTF-16BE with a BOM, else PDFDocEncoding (read as Latin-1).
pub(crate) fn decode_text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        b.iter().map(|&c| char::from(c)).collect()
    }
}

fn has_encrypt_key(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(8).any(|w| w == b"/Encrypt")
}

/// Refuses a document certified with "no changes allowed" (DocMDP P=1):
/// a signature added to it would invalidate the certification.
fn check_docmdp(doc: &Document, catalog: &Dictionary) -> Result<(), PadesError> {
    let p = (|| -> Option<i64> {
        let perms = catalog.get_deref(b"Perms", doc).ok()?.as_dict().ok()?;
        let sig = perms.get_deref(b"DocMDP", doc).ok()?.as_dict().ok()?;
        let refs = sig.get_deref(b"Reference", doc).ok()?.as_array().ok()?;
        refs.iter().find_map(|r| {
            let r = doc.dereference(r).ok()?.1.as_dict().ok()?;
            let params = r.get_deref(b"TransformParams", doc).ok()?.as_dict().ok()?;
            params.get(b"P").ok()?.as_i64().ok()
        })
    })();
    if p == Some(1) {
        return Err(PadesError::Unsupported(
            "the document is certified with no changes allowed (DocMDP P=1)".into(),
        ));
    }
    Ok(())
}

/// Every in-use entry of the cross-reference must point at `N G obj`: a
/// broken table is refused rather than repaired by guessing.
fn check_xref_offsets(bytes: &[u8], doc: &Document) -> Result<(), PadesError> {
    for (id, e) in &doc.reference_table.entries {
        if let lopdf::xref::XrefEntry::Normal { offset, generation } = e {
            let at = *offset as usize;
            let ok = bytes
                .get(at..bytes.len().min(at + 40))
                .is_some_and(|s| starts_with_obj_header(s, *id, *generation));
            if !ok {
                return Err(PadesError::Malformed(format!(
                    "the cross-reference entry of object {id} {generation} points at offset {offset}, \
                     where that object does not begin"
                )));
            }
        }
    }
    Ok(())
}

fn starts_with_obj_header(s: &[u8], id: u32, generation: u16) -> bool {
    let text = String::from_utf8_lossy(s);
    let mut parts = text.split_ascii_whitespace();
    parts.next() == Some(&id.to_string())
        && parts.next().and_then(|g| g.parse::<u16>().ok()) == Some(generation)
        && parts.next().is_some_and(|o| o.starts_with("obj"))
}

/// Refuses nesting deeper than `limit` before lopdf's recursive parser sees
/// it, in the file and in the object streams (inflated, bounded).
fn check_depth(bytes: &[u8], limit: usize) -> Result<(), PadesError> {
    scan_depth(bytes, limit, true)
}

fn scan_depth(bytes: &[u8], limit: usize, top: bool) -> Result<(), PadesError> {
    let mut depth = 0usize;
    let mut i = 0;
    let n = bytes.len();
    let mut last_obj = 0usize;
    while i < n {
        match bytes[i] {
            b'%' => {
                while i < n && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                let mut level = 0usize;
                while i < n {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'(' => level += 1,
                        b')' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b'<' => {
                while i < n && bytes[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'o' if bytes[i..].starts_with(b"obj") => last_obj = i,
            b's' if bytes[i..].starts_with(b"stream") && !bytes[..i].ends_with(b"end") => {
                let start = i + 6;
                let data_start = match bytes.get(start..start + 2) {
                    Some(b"\r\n") => start + 2,
                    Some([b'\n', _]) | Some([b'\r', _]) => start + 1,
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                let end = bytes[data_start..]
                    .windows(9)
                    .position(|w| w == b"endstream")
                    .map_or(n, |p| data_start + p);
                if top {
                    let head = &bytes[last_obj..i];
                    if head.windows(7).any(|w| w == b"/ObjStm") {
                        let data = &bytes[data_start..end];
                        let inner = if head.windows(12).any(|w| w == b"/FlateDecode") {
                            let mut v = Vec::new();
                            // Bounded: an object stream inflating past 64 MiB is refused below.
                            flate2::read::ZlibDecoder::new(data)
                                .take(64 << 20)
                                .read_to_end(&mut v)
                                .map_err(|e| {
                                    PadesError::Malformed(format!(
                                        "an object stream does not inflate: {e}"
                                    ))
                                })?;
                            v
                        } else {
                            data.to_vec()
                        };
                        scan_depth(&inner, limit, false)?;
                    }
                }
                i = end + 9;
                continue;
            }
            _ => {}
        }
        if depth > limit {
            return Err(PadesError::TooDeep { depth, limit });
        }
        i += 1;
    }
    Ok(())
}
