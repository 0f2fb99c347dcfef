//! PDF verification: each signature's CMS checked over its byte range like a
//! detached CMS (V2, N3 art. 7), folded with the PDF checks: the byte range
//! and what later revisions changed (V5, W3: an altered document is refused).

use der::Decode;
use serde::Serialize;
use spki::AlgorithmIdentifierOwned;

use kyso_pdf::{EmbeddedSignature, RangeDigests, parse_signatures_with_dss};
use kyso_pki::ber;
use kyso_pki::cms::{self, Detached};
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::{OffsetDateTime, rfc3339};

use crate::archive::{TokenPoe, latest_first};
use crate::certsource::{CertificateSource, SuppliedCertificates};
use crate::embedded::{EmbeddedData, level_reached};
use crate::poe::SignatureTimes;
use crate::report::{
    DocumentReport, Indication, ReferenceTime, RevocationPolicy, SignatureReport, SignerIdentity,
    SubIndication, TimeSource,
};
use crate::timestamps::{SignatureLevel, TimestampKind, TimestampReport, earliest_proof};
use crate::verify::{SourcedCheck, Verifier};

/// The reader's types that appear in this module's API.
pub use kyso_pdf::{Modification, ModificationKind, PdfError, PdfLimits, Revision, SignatureKind};

/// `/SubFilter` values of CMS signatures kyso verifies.
const CMS_SUB_FILTERS: [&str; 2] = ["ETSI.CAdES.detached", "adbe.pkcs7.detached"];
/// `/SubFilter` of a PAdES document time-stamp.
const RFC3161_SUB_FILTER: &str = "ETSI.RFC3161";
/// id-ct-TSTInfo.
const TST_INFO: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// How to verify a PDF.
#[derive(Clone, Debug, Default)]
pub struct PdfVerifyOptions {
    /// A trusted reference time (W5), which wins over every proof of existence.
    pub at: Option<OffsetDateTime>,
    /// The revocation policy, or the verifier's default.
    pub policy: Option<RevocationPolicy>,
    /// Bounds on the PDF.
    pub limits: PdfLimits,
}

/// The report for one signature of a PDF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PdfSignatureReport {
    /// Fully qualified field name.
    pub field_name: String,
    /// Signature or document time-stamp.
    pub kind: SignatureKind,
    /// `/SubFilter`.
    pub sub_filter: String,
    /// The revision the signature covers (0 = the original document).
    pub revision: usize,
    /// Whether it covers the whole file as it is now.
    pub covers_whole_document: bool,
    /// `/ByteRange` as written.
    pub byte_range: Option<[u64; 4]>,
    /// Why the byte range was refused, if it was.
    pub byte_range_error: Option<String>,
    /// `/M`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
    /// `/Name`.
    pub name: Option<String>,
    /// What later revisions changed, each allowed or not.
    pub modifications: Vec<Modification>,
    /// The verdict, with the same checks as a CMS signature. Serialised flat: a PDF
    /// signature's `indication` and `sub_indication` sit at the top level of its
    /// entry, where a CMS signature's are (one JSON shape for every format).
    #[serde(flatten)]
    pub report: SignatureReport,
}

/// The report for one PDF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PdfReport {
    /// The worst indication of all signatures (TOTAL_FAILED when there is none).
    pub indication: Indication,
    /// The revisions, oldest first.
    pub revisions: Vec<Revision>,
    /// Per signature, in the order they were applied.
    pub signatures: Vec<PdfSignatureReport>,
}

impl PdfReport {
    /// The signature reports alone, as for a CMS (metrics, generic output).
    pub fn document(&self) -> DocumentReport {
        DocumentReport::new(self.signatures.iter().map(|s| s.report.clone()).collect())
    }
}

impl Verifier {
    /// Verifies every signature of a PDF. `Err` only when the PDF cannot be
    /// read at all (not a PDF, encrypted, broken cross-reference, too large).
    pub async fn verify_pdf(
        &self,
        pdf: &[u8],
        options: &PdfVerifyOptions,
        now: OffsetDateTime,
    ) -> Result<PdfReport, PdfError> {
        self.verify_pdf_with(pdf, options, &SuppliedCertificates::default(), now)
            .await
    }

    /// [`Verifier::verify_pdf`], with signer certificates also looked up in `source`
    /// when a signature does not carry its own.
    pub async fn verify_pdf_with(
        &self,
        pdf: &[u8],
        options: &PdfVerifyOptions,
        source: &dyn CertificateSource,
        now: OffsetDateTime,
    ) -> Result<PdfReport, PdfError> {
        self.one_request(self.verify_pdf_inner(pdf, options, source, now))
            .await
    }

    pub(crate) async fn verify_pdf_inner(
        &self,
        pdf: &[u8],
        options: &PdfVerifyOptions,
        source: &dyn CertificateSource,
        now: OffsetDateTime,
    ) -> Result<PdfReport, PdfError> {
        // The signatures and the DSS (PAdES B-LT: validation data for every signature and
        // timestamp) from one reading of the file.
        let (parsed, dss) = parse_signatures_with_dss(pdf, &options.limits)?;
        let dss = match dss {
            Ok(Some(d)) => EmbeddedData::from_dss(&d),
            Ok(None) => EmbeddedData::default(),
            Err(e) => EmbeddedData {
                warnings: vec![format!("the DSS is unreadable and was not used: {e}")],
                ..EmbeddedData::default()
            },
        };
        // Every signature's byte range digested in one pass: an incremental signature's
        // range starts with the earlier ones', and that shared prefix is hashed once.
        let digests = RangeDigests::new(pdf, &parsed.signatures);
        let doc_stamps = self
            .document_timestamps(&digests, &parsed.signatures, options, &dss, now)
            .await;
        let mut signatures = Vec::with_capacity(parsed.signatures.len());
        for (i, sig) in parsed.signatures.iter().enumerate() {
            // The document timestamps applied in later revisions cover this signature
            // (or this earlier document timestamp: an archive timestamp over it).
            let covering: Vec<TimestampReport> = match &sig.coverage {
                Ok(range) => covering(&doc_stamps, range.revision),
                Err(_) => Vec::new(),
            };
            let mut report = self
                .verify_embedded(&digests, sig, i, options, source, &covering, &dss, now)
                .await;
            if is_doc_stamp(sig) {
                // Its own token's verdict as a proof of existence.
                report.timestamps.extend(
                    doc_stamps
                        .iter()
                        .filter(|d| d.index == i)
                        .map(|d| d.report.clone()),
                );
            }
            let (revision, whole, br_err) = match &sig.coverage {
                Ok(b) => (b.revision, b.whole_document, None),
                Err(e) => (sig.revision, false, Some(e.0.clone())),
            };
            signatures.push(PdfSignatureReport {
                field_name: sig.field_name.clone(),
                kind: sig.kind,
                sub_filter: sig.sub_filter.clone(),
                revision,
                covers_whole_document: whole,
                byte_range: sig.byte_range,
                byte_range_error: br_err,
                signing_time: sig.signing_time,
                reason: sig.reason.clone(),
                location: sig.location.clone(),
                name: sig.name.clone(),
                modifications: sig.modifications.clone(),
                report,
            });
        }
        let indication = signatures
            .iter()
            .map(|s| s.report.indication)
            .max_by_key(|i| i.severity())
            .unwrap_or(Indication::TotalFailed);
        Ok(PdfReport {
            indication,
            revisions: parsed.revisions,
            signatures,
        })
    }

    /// The document timestamps (B-LTA), each judged as a proof of existence of the
    /// revisions its byte range covers (earlier signatures, earlier document timestamps,
    /// the DSS). The latest first: its proof is the one an earlier stamp's TSA is judged
    /// at (`archive`). Returned in file order.
    async fn document_timestamps(
        &self,
        digests: &RangeDigests<'_>,
        signatures: &[EmbeddedSignature],
        options: &PdfVerifyOptions,
        dss: &EmbeddedData,
        now: OffsetDateTime,
    ) -> Vec<DocStamp> {
        let policy = options.policy.unwrap_or(self.default_policy());
        let stamps: Vec<(usize, usize)> = signatures
            .iter()
            .enumerate()
            .filter(|(_, sig)| is_doc_stamp(sig) && sig.sub_filter == RFC3161_SUB_FILTER)
            .filter_map(|(index, sig)| sig.coverage.as_ref().ok().map(|r| (index, r.revision)))
            .collect();
        let revisions: Vec<usize> = stamps.iter().map(|s| s.1).collect();
        let mut out: Vec<DocStamp> = Vec::with_capacity(stamps.len());
        for position in latest_first(&revisions) {
            let (index, revision) = stamps[position];
            let Some(sig) = signatures.get(index) else {
                continue;
            };
            let poe = TokenPoe::of(&covering(&out, revision), now);
            let imprint = |a: DigestAlgorithm| digests.get(index, a);
            let report = self
                .judge_timestamp(
                    TimestampKind::Document,
                    &sig.contents,
                    &imprint,
                    poe,
                    dss,
                    policy,
                    now,
                )
                .await;
            out.push(DocStamp {
                index,
                revision,
                report,
            });
        }
        out.sort_by_key(|d| d.index);
        out
    }

    #[allow(clippy::too_many_arguments)]
    async fn verify_embedded(
        &self,
        digests: &RangeDigests<'_>,
        sig: &EmbeddedSignature,
        index: usize,
        options: &PdfVerifyOptions,
        source: &dyn CertificateSource,
        covering: &[TimestampReport],
        dss: &EmbeddedData,
        now: OffsetDateTime,
    ) -> SignatureReport {
        let policy = options.policy.unwrap_or(self.default_policy());
        let mut report = match self
            .cms_report(
                digests, sig, index, options, source, covering, dss, policy, now,
            )
            .await
        {
            Ok(r) => r,
            Err((indication, sub, message)) => {
                let mut r = bare_report(
                    index,
                    indication,
                    sub,
                    message,
                    policy,
                    sig,
                    SignatureTimes::caller(options.at).reference(now),
                );
                // Who signed is worth saying even when the signature fails.
                if let Ok(msg) = cms::parse(&sig.contents) {
                    let c = cms::check_signer(&msg, 0, &Detached::None, &[]);
                    r.signer = c.signer_cert.as_ref().map(SignerIdentity::from_cert);
                }
                r
            }
        };
        report.warnings.extend(sig.warnings.iter().cloned());
        fold_modifications(&mut report, sig);
        report
    }

    /// The CMS checks over the byte range; `Err` is a verdict reached before
    /// the CMS could be judged.
    #[allow(clippy::too_many_arguments)]
    async fn cms_report(
        &self,
        digests: &RangeDigests<'_>,
        sig: &EmbeddedSignature,
        index: usize,
        options: &PdfVerifyOptions,
        source: &dyn CertificateSource,
        covering: &[TimestampReport],
        dss: &EmbeddedData,
        policy: RevocationPolicy,
        now: OffsetDateTime,
    ) -> Result<SignatureReport, (Indication, SubIndication, String)> {
        let tst = is_doc_stamp(sig);
        if tst && sig.sub_filter != RFC3161_SUB_FILTER {
            return Err((
                Indication::Indeterminate,
                SubIndication::FormatFailure,
                format!(
                    "a document time-stamp with /SubFilter {:?} (expected ETSI.RFC3161)",
                    sig.sub_filter
                ),
            ));
        }
        if !tst && !CMS_SUB_FILTERS.contains(&sig.sub_filter.as_str()) {
            return Err((
                Indication::Indeterminate,
                SubIndication::FormatFailure,
                format!(
                    "/SubFilter {:?} is not supported (ETSI.CAdES.detached or adbe.pkcs7.detached)",
                    sig.sub_filter
                ),
            ));
        }
        let range = match &sig.coverage {
            Ok(r) => r,
            Err(e) => {
                return Err((
                    Indication::TotalFailed,
                    SubIndication::HashFailure,
                    format!("the /ByteRange does not protect the document as signed: {e}"),
                ));
            }
        };
        let msg = cms::parse(&sig.contents).map_err(|e| {
            (
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                format!("/Contents is not a CMS SignedData: {e}"),
            )
        })?;
        if msg.signer_count() == 0 {
            return Err((
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                "the CMS in /Contents has no signer".into(),
            ));
        }
        let mut extra_warnings = Vec::new();
        if msg.signer_count() > 1 {
            extra_warnings.push(format!(
                "the CMS has {} signers; a PDF signature has one, only the first is judged",
                msg.signer_count()
            ));
        }
        let digest_alg = msg
            .signer(0)
            .and_then(|s| DigestAlgorithm::from_oid(&s.digest_alg.oid));
        let digest = digest_alg.and_then(|a| digests.get(index, a));
        let detached = if tst {
            if msg.econtent_type() != TST_INFO {
                return Err((
                    Indication::TotalFailed,
                    SubIndication::FormatFailure,
                    "the document time-stamp does not hold a TSTInfo".into(),
                ));
            }
            let tst_info = msg.content().unwrap_or_default();
            check_imprint(tst_info, digests, index)?;
            Detached::None
        } else {
            if !msg.is_detached() {
                return Err((
                    Indication::TotalFailed,
                    SubIndication::FormatFailure,
                    "the CMS carries its own content; a PDF signature must be detached over the byte range".into(),
                ));
            }
            match (digest_alg, &digest) {
                (Some(algorithm), Some(value)) => Detached::Digest { algorithm, value },
                _ => Detached::None,
            }
        };
        let sourced = SourcedCheck::run(&msg, 0, &detached, source).await;
        let mut check = sourced.check;
        check.warnings.extend(extra_warnings);
        let from_m = check.signing_time.is_none() && sig.signing_time.is_some() && !tst;
        // PAdES B-T: the signature timestamp in the CMS is the signature's proof of
        // existence; B-LTA: so are the document timestamps of later revisions.
        // Validation data: the DSS and what the CMS itself embeds.
        let embedded = EmbeddedData::from_cms(&msg, 0).with(dss);
        let mut timestamps = if tst {
            Vec::new()
        } else {
            let poe = TokenPoe::of(covering, now);
            self.signature_timestamps(&msg, 0, poe, &embedded, policy, now)
                .await
        };
        timestamps.extend(covering.iter().cloned());
        let times = SignatureTimes {
            at: options.at,
            poe: earliest_proof(&timestamps),
            claim_source: if from_m {
                TimeSource::PdfSignatureDictionary
            } else {
                TimeSource::SigningTimeAttribute
            },
        };
        match (check.signing_time, sig.signing_time) {
            (None, Some(m)) if !tst => {
                check.signing_time = Some(m);
                check.warnings.push(format!(
                    "the claimed signing time {} is the signature dictionary's /M (PAdES signs no signing-time attribute); it is claimed, not proven",
                    rfc3339(m)
                ));
            }
            (Some(_), _) if sig.sub_filter == "ETSI.CAdES.detached" => check.warnings.push(
                "the CMS has a signing-time attribute, which PAdES (ETSI.CAdES.detached) does not allow; it is used as the claimed time".into(),
            ),
            _ => {}
        }
        let mut report = self
            .judge_signer(check, &sourced.pool, &embedded, times, policy, now)
            .await;
        report.poe = times.poe;
        // B-LT: the DSS or CAdES revocation values settled the signer's path.
        report.level = level_reached(&timestamps, &embedded, &mut report);
        report.warnings.extend(embedded.warnings.iter().cloned());
        report.timestamps = timestamps;
        sourced.note.apply(&mut report);
        report.index = u32::try_from(index).unwrap_or(u32::MAX);
        if report.indication == Indication::TotalPassed && !range.whole_document {
            report
                .warnings
                .push(format!("the signature covers revision {} only; later revisions are listed as modifications", range.revision));
        }
        Ok(report)
    }
}

/// A judged document timestamp: signature `index` of the file, applied in `revision`.
struct DocStamp {
    index: usize,
    revision: usize,
    report: TimestampReport,
}

/// The judged document timestamps applied after `revision`: those covering it.
fn covering(stamps: &[DocStamp], revision: usize) -> Vec<TimestampReport> {
    stamps
        .iter()
        .filter(|d| d.revision > revision)
        .map(|d| d.report.clone())
        .collect()
}

/// Whether a signature dictionary is a document time-stamp (by type or sub-filter).
fn is_doc_stamp(sig: &EmbeddedSignature) -> bool {
    sig.kind == SignatureKind::DocTimeStamp || sig.sub_filter == RFC3161_SUB_FILTER
}

/// The messageImprint of a document time-stamp must be the byte range's digest.
fn check_imprint(
    tst_info: &[u8],
    digests: &RangeDigests<'_>,
    index: usize,
) -> Result<(), (Indication, SubIndication, String)> {
    let bad = |m: String| (Indication::TotalFailed, SubIndication::FormatFailure, m);
    let (seq, _) = ber::read_tlv(tst_info).map_err(|e| bad(format!("TSTInfo: {e}")))?;
    let mut kids = ber::children(seq.content);
    let _version = kids.next();
    let _policy = kids.next();
    let imprint = kids
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| bad("TSTInfo has no messageImprint".into()))?;
    let (imp, _) = ber::read_tlv(imprint.raw).map_err(|e| bad(format!("messageImprint: {e}")))?;
    let mut parts = ber::children(imp.content);
    let alg = parts
        .next()
        .and_then(Result::ok)
        .and_then(|t| AlgorithmIdentifierOwned::from_der(t.raw).ok())
        .ok_or_else(|| bad("messageImprint has no hash algorithm".into()))?;
    let value = parts
        .next()
        .and_then(Result::ok)
        .filter(|t| t.tag == 0x04)
        .ok_or_else(|| bad("messageImprint has no hash value".into()))?;
    let algorithm = DigestAlgorithm::from_oid(&alg.oid).ok_or_else(|| {
        (
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
            format!(
                "the time-stamp imprint uses an unsupported hash {}",
                alg.oid
            ),
        )
    })?;
    let digest = digests.get(index, algorithm).unwrap_or_default();
    if digest != value.content {
        return Err((
            Indication::TotalFailed,
            SubIndication::HashFailure,
            "the document time-stamp's message imprint does not match the byte range".into(),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn bare_report(
    index: usize,
    indication: Indication,
    sub: SubIndication,
    message: String,
    policy: RevocationPolicy,
    sig: &EmbeddedSignature,
    reference_time: ReferenceTime,
) -> SignatureReport {
    SignatureReport {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        indication,
        sub_indication: Some(sub),
        message,
        signer: None,
        reference_time,
        claimed_signing_time: sig.signing_time,
        path: Vec::new(),
        revocation: Vec::new(),
        warnings: Vec::new(),
        digest_algorithm: None,
        signature_algorithm: None,
        revocation_policy: policy,
        signed_attributes: false,
        ess_signing_certificate_v2: false,
        detached: true,
        commitment_type: None,
        signer_certificate_origin: None,
        timestamps: Vec::new(),
        poe: None,
        level: SignatureLevel::BB,
    }
}

/// A change after the signature that a signer would not have allowed makes
/// the signature fail, whatever its cryptography says: the document shown is
/// not the document signed (V5). TOTAL_FAILED because no further data can
/// repair it; SIG_CONSTRAINTS_FAILURE because the signed bytes themselves
/// are intact.
fn fold_modifications(report: &mut SignatureReport, sig: &EmbeddedSignature) {
    let bad: Vec<&Modification> = sig.modifications.iter().filter(|m| !m.allowed).collect();
    if bad.is_empty() {
        return;
    }
    let mut what: Vec<String> = bad
        .iter()
        .take(3)
        .map(|m| format!("revision {}: {}", m.revision, m.description))
        .collect();
    if bad.len() > 3 {
        what.push(format!("and {} more", bad.len() - 3));
    }
    let said = format!(
        "the document was changed after this signature in ways a later signature does not allow (V5): {}",
        what.join("; ")
    );
    if report.indication == Indication::TotalFailed {
        report.message = format!("{}; also, {said}", report.message);
    } else {
        if report.indication != Indication::TotalPassed {
            report
                .warnings
                .push(format!("before the modification check: {}", report.message));
        }
        report.indication = Indication::TotalFailed;
        report.sub_indication = Some(SubIndication::SigConstraintsFailure);
        report.message = said;
    }
}
