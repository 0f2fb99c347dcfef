//! edXML verification (N6): the envelope's own enveloped XML signature judged like a CMS
//! signer (path, validity and revocation at the reference time: the same `judge_signer`),
//! and each attached PDF or CMS verified as a document of its own (V5, W3: the clerk
//! checks the organisation's and the person's signatures of what arrived).

use serde::Serialize;

use kyso_edxml::attachment::Sniffed;
use kyso_edxml::dsig::DsigPolicy;
use kyso_edxml::envelope::Message;
use kyso_edxml::{EdxmlError, EdxmlLimits, SignatureState};
use kyso_pdf::PdfLimits;
use kyso_pki::cms::Detached;
use kyso_pki::time::OffsetDateTime;

use crate::certsource::SuppliedCertificates;
use crate::pdf::{PdfReport, PdfVerifyOptions};
use crate::report::{DocumentReport, Indication, RevocationPolicy, SignatureReport};
use crate::verify::{CmsRequest, Verifier};

/// How to verify an edXML document.
#[derive(Clone, Debug, Default)]
pub struct EdxmlVerifyOptions {
    /// A trusted reference time (W5), instead of the XAdES signing time or now.
    pub at: Option<OffsetDateTime>,
    /// The revocation policy, or the verifier's default.
    pub policy: Option<RevocationPolicy>,
    /// Bounds on the XML.
    pub limits: EdxmlLimits,
    /// Bounds on each attached PDF.
    pub pdf_limits: PdfLimits,
    /// Accept SHA-1 digests and signatures (old builders), always reported.
    pub legacy_sha1: bool,
}

/// Who sent what, as the header says (shown to the clerk beside the verdict).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EdxmlSummary {
    /// `envelope` or `status`.
    pub kind: String,
    /// The sender's organisation code.
    pub from: String,
    /// The sender's name, when given.
    pub from_name: Option<String>,
    /// The recipients' codes (envelopes).
    pub to: Vec<String>,
    /// `DocumentId` (envelopes) or the answered document's (status messages).
    pub document_id: String,
    /// Number and symbol (envelopes).
    pub code: Option<String>,
    /// `Subject` (envelopes).
    pub subject: Option<String>,
    /// The status code and its meaning (status messages).
    pub status: Option<String>,
}

/// One attachment and, for a PDF or a CMS, its own verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentReport {
    /// `ContentId`.
    pub content_id: String,
    /// `AttachmentName`.
    pub name: String,
    /// `ContentType` as declared.
    pub content_type: String,
    /// What the bytes are.
    pub sniffed: String,
    /// Decoded size.
    pub size: usize,
    /// SHA-256 of the decoded content, hex.
    pub sha256: String,
    /// The PDF's signatures, when it is a PDF.
    pub pdf: Option<PdfReport>,
    /// The CMS's signatures, when it is a CMS (`.p7s`, `.p7m`).
    pub cms: Option<DocumentReport>,
    /// Why a PDF or CMS could not be read at all.
    pub error: Option<String>,
}

/// The report for one edXML document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EdxmlReport {
    /// The worst of the envelope's signature and its attachments' (TOTAL_FAILED for an
    /// unsigned or unverifiable envelope).
    pub indication: Indication,
    /// The header.
    pub summary: EdxmlSummary,
    /// The envelope's XML signature; `None` when there is none or it cannot be verified
    /// (the reason is in `warnings`).
    pub signature: Option<SignatureReport>,
    /// The attachments.
    pub attachments: Vec<AttachmentReport>,
    /// What the reader noticed.
    pub warnings: Vec<String>,
}

impl Verifier {
    /// Verifies an edXML envelope or status message and its attached documents. `Err` only
    /// when the XML cannot be read at all.
    pub async fn verify_edxml(
        &self,
        xml: &[u8],
        options: &EdxmlVerifyOptions,
        now: OffsetDateTime,
    ) -> Result<EdxmlReport, EdxmlError> {
        self.one_request(self.verify_edxml_inner(xml, options, now))
            .await
    }

    async fn verify_edxml_inner(
        &self,
        xml: &[u8],
        options: &EdxmlVerifyOptions,
        now: OffsetDateTime,
    ) -> Result<EdxmlReport, EdxmlError> {
        let policy = DsigPolicy {
            legacy_sha1: options.legacy_sha1,
        };
        let opened = kyso_edxml::open(xml, &options.limits, &policy)?;
        let mut warnings = opened.warnings;
        let revocation = options.policy.unwrap_or(self.default_policy());
        let signature = match opened.signature {
            SignatureState::Checked(d) => Some(
                self.judge_signer(
                    d.check,
                    &d.pool,
                    &crate::embedded::EmbeddedData::default(),
                    crate::poe::SignatureTimes::caller(options.at),
                    revocation,
                    now,
                )
                .await,
            ),
            SignatureState::NotVerifiable(why) => {
                warnings.push(why);
                None
            }
            SignatureState::Unsigned => {
                warnings.push("the document carries no XML signature".into());
                None
            }
        };
        let mut indication = signature
            .as_ref()
            .map_or(Indication::TotalFailed, |s| s.indication);
        let (summary, attachments) = match &opened.message {
            Message::Envelope(e) => (
                EdxmlSummary {
                    kind: "envelope".into(),
                    from: e.header.from.organ_id.to_string(),
                    from_name: e.header.from.organ_name.clone(),
                    to: e.header.to.iter().map(|o| o.organ_id.to_string()).collect(),
                    document_id: e.header.document_id.to_string(),
                    code: Some(format!(
                        "{}/{}",
                        e.header.code.code_number, e.header.code.code_notation
                    )),
                    subject: Some(e.header.subject.clone()),
                    status: None,
                },
                e.attachments.as_slice(),
            ),
            Message::Status(s) => (
                EdxmlSummary {
                    kind: "status".into(),
                    from: s.from.organ_id.to_string(),
                    from_name: s.from.organ_name.clone(),
                    to: Vec::new(),
                    document_id: s
                        .response_for
                        .document_id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    code: None,
                    subject: None,
                    status: Some(format!(
                        "{} ({})",
                        s.status_code.as_str(),
                        s.status_code.meaning()
                    )),
                },
                &[][..],
            ),
        };
        let mut reports = Vec::with_capacity(attachments.len());
        for a in attachments {
            let report = self.verify_attachment(a, options, revocation, now).await;
            // An attachment without signatures is listed, not judged: the envelope's
            // signature covers its bytes.
            let inner = report
                .pdf
                .as_ref()
                .filter(|p| !p.signatures.is_empty())
                .map(|p| p.indication)
                .or(report.cms.as_ref().map(|c| c.indication));
            if report.pdf.as_ref().is_some_and(|p| p.signatures.is_empty()) {
                warnings.push(format!(
                    "attachment {:?} is a PDF without signatures",
                    report.name
                ));
            }
            if let Some(i) = inner
                && i.severity() > indication.severity()
            {
                indication = i;
            }
            if report.error.is_some() && indication == Indication::TotalPassed {
                indication = Indication::Indeterminate;
            }
            reports.push(report);
        }
        Ok(EdxmlReport {
            indication,
            summary,
            signature,
            attachments: reports,
            warnings,
        })
    }

    async fn verify_attachment(
        &self,
        a: &kyso_edxml::attachment::Attachment,
        options: &EdxmlVerifyOptions,
        revocation: RevocationPolicy,
        now: OffsetDateTime,
    ) -> AttachmentReport {
        let sniffed = a.sniff();
        let mut report = AttachmentReport {
            content_id: a.content_id.clone(),
            name: a.attachment_name.clone(),
            content_type: a.content_type.clone(),
            sniffed: sniffed.describe().into(),
            size: a.data.len(),
            sha256: hex::encode(a.sha256()),
            pdf: None,
            cms: None,
            error: None,
        };
        let none = SuppliedCertificates::new(Vec::new());
        if sniffed == Sniffed::Pdf {
            let pdf_options = PdfVerifyOptions {
                at: options.at,
                policy: Some(revocation),
                limits: options.pdf_limits.clone(),
            };
            match self
                .verify_pdf_inner(&a.data, &pdf_options, &none, now)
                .await
            {
                Ok(r) => report.pdf = Some(r),
                Err(e) => report.error = Some(e.to_string()),
            }
        } else if is_cms(a) {
            let req = CmsRequest {
                signature: &a.data,
                detached: Detached::None,
                at: options.at,
                policy: Some(revocation),
            };
            match self.verify_cms_inner(req, &none, now).await {
                Ok(r) => report.cms = Some(r),
                Err(e) => report.error = Some(e.to_string()),
            }
        }
        report
    }
}

/// A CMS attachment, by its declared type or name (its bytes, a DER SEQUENCE, say too little).
fn is_cms(a: &kyso_edxml::attachment::Attachment) -> bool {
    let name = a.attachment_name.to_ascii_lowercase();
    a.content_type.starts_with("application/pkcs7")
        || a.content_type.starts_with("application/cms")
        || name.ends_with(".p7s")
        || name.ends_with(".p7m")
}
