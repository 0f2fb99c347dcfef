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
pub mod ltv;
mod marker;
mod placeholder;
mod png;
mod serialize;
mod source;
mod writer;

use std::collections::BTreeMap;
use std::io::Read;

use lopdf::{Dictionary, Document, Object, ObjectId};
use time::OffsetDateTime;

use kyso_pki::cms_build::{CadesRequest, Content, SigningAlgorithm};
use kyso_pki::crypto::DigestAlgorithm;

use placeholder::BYTE_RANGE_PLACEHOLDER;
pub use placeholder::Prepared;
use serialize::{rect as rect_str, text_string, write_dict, write_object};
use source::{FieldInfo, Source};
use writer::{Objects, Trailer};

pub use appearance::StampText;

/// Decodes a signature or seal image as the appearance will, and returns its
/// size in pixels (width, height). Lets a caller refuse an unsupported or
/// oversized PNG before any other work, and gives the fuzz targets the
/// decoder's entry point; the pixels themselves stay internal.
pub fn decode_image(png: &[u8]) -> Result<(u32, u32), PadesError> {
    png::decode(png).map(|img| (img.width, img.height))
}

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
    /// What the signer commits to, as the ETSI commitment-type indication says it:
    /// approval for the competent person's signature, origin for the organisation's issue
    /// (and its annexes), receipt for the received stamp, creation for a copy or comment.
    pub fn commitment(self) -> kyso_pki::cms::commitment::CommitmentType {
        use kyso_pki::cms::commitment::CommitmentType as C;
        match self {
            Self::Approval => C::ProofOfApproval,
            Self::Issue | Self::ScannedIssue | Self::Appendix => C::ProofOfOrigin,
            Self::Received => C::ProofOfReceipt,
            Self::Copy | Self::Comment => C::ProofOfCreation,
        }
    }

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
    /// A time-stamp token that does not verify against the document's digest
    /// (signature, ESS, EKU, imprint): it is never written.
    #[error("time-stamp token refused: {0}")]
    Timestamp(String),
    /// Writing the update failed (a bug or an absurd size).
    #[error("encoding the update: {0}")]
    Encoding(String),
}

impl From<PadesError> for kyso_pki::Error {
    fn from(e: PadesError) -> Self {
        kyso_pki::Error::InvalidRequest(e.to_string())
    }
}

/// The PDF with its update appended and `/Contents` still zeros; the digest, byte
/// range and room are those of any [`Prepared`] document.
#[derive(Clone)]
pub struct PreparedPdf {
    prepared: Prepared,
    signing_time: OffsetDateTime,
    profile: Profile,
}

impl std::fmt::Debug for PreparedPdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.prepared.fmt(f)
    }
}

impl std::ops::Deref for PreparedPdf {
    type Target = Prepared;
    fn deref(&self) -> &Prepared {
        &self.prepared
    }
}

impl PreparedPdf {
    /// The CAdES request for this signature: detached over the byte-range
    /// digest, without the signing-time attribute (ETSI EN 319 142-1
    /// §5.2.1: the time is `/M`), ESS signing-certificate-v2 included, and the
    /// profile's commitment-type indication.
    pub fn cades_request<'c>(
        &'c self,
        signer_certificate: &'c [u8],
        chain: &'c [Vec<u8>],
        signature_algorithm: SigningAlgorithm,
    ) -> CadesRequest<'c> {
        CadesRequest {
            digest_algorithm: self.digest_algorithm(),
            content: Content::Digest(self.digest()),
            signer_certificate,
            chain,
            signing_time: None,
            signature_algorithm,
            content_type: None,
            commitment_type: Some(self.profile.commitment()),
        }
    }

    /// The signing time written to `/M`.
    pub fn signing_time(&self) -> OffsetDateTime {
        self.signing_time
    }

    /// Writes the DER CMS into `/Contents` (hex, zero padded).
    pub fn finish(self, cms: &[u8]) -> Result<Vec<u8>, PadesError> {
        self.prepared.fill(cms)
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
    let prepared = placeholder::patch(
        out,
        sig_at,
        contents_hex_len,
        req.digest_algorithm,
        field_name,
        pdf.len(),
    )?;
    Ok(PreparedPdf {
        prepared,
        signing_time: req.signing_time,
        profile: req.profile,
    })
}

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
