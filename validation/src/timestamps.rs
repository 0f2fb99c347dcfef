//! Timestamps as proofs of existence (issue 16 item 4; ETSI EN 319 102-1 5.4): a
//! signature timestamp (CAdES/PAdES B-T, over the signature value) or a PDF document
//! timestamp (B-LTA, over its byte range). A token is verified by `kyso_pki::tsp`
//! (signature, ESS, critical timeStamping EKU, imprint, genTime inside the TSA
//! certificate's validity); its TSA certificate's path to the verifier's anchors and its
//! revocation are judged here, as for any signer, at the token's own proof of existence
//! (`archive::TokenPoe`: a later document timestamp covering it, else now). Only a token that passes all of it is a proof of existence; a bad
//! token does not fail the signature, it just proves nothing (the report says why).

use serde::Serialize;

use kyso_pki::cms;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::time::{OffsetDateTime, rfc3339};
use kyso_pki::tsp::{self, Expected, TspError, TstInfo};

use crate::archive::TokenPoe;
use crate::embedded::EmbeddedData;
use crate::report::{
    Indication, PathEntry, ReferenceTime, RevocationEvidence, RevocationPolicy, SignerIdentity,
    SubIndication, TimeSource,
};
use crate::verify::{Verdict, Verifier};

/// What a timestamp stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimestampKind {
    /// `id-aa-signatureTimeStampToken` over a signer's signature value (B-T).
    Signature,
    /// A PDF document timestamp (`/Type /DocTimeStamp`) over its byte range (B-LTA).
    Document,
}

impl TimestampKind {
    /// The reference-time source its genTime is.
    pub fn time_source(self) -> TimeSource {
        match self {
            Self::Signature => TimeSource::SignatureTimestamp,
            Self::Document => TimeSource::DocumentTimestamp,
        }
    }
}

/// The verdict on one timestamp token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimestampReport {
    /// Signature or document timestamp.
    pub kind: TimestampKind,
    /// TOTAL_PASSED: a proof of existence at `gen_time`. Otherwise it proves nothing.
    pub indication: Indication,
    /// Why, when not passed.
    pub sub_indication: Option<SubIndication>,
    /// A sentence a clerk can read.
    pub message: String,
    /// genTime, when the token could be read.
    #[serde(with = "time::serde::rfc3339::option")]
    pub gen_time: Option<OffsetDateTime>,
    /// The TSA certificate's subject, when the token's signature verified.
    pub tsa: Option<SignerIdentity>,
    /// The TSA certificate's path.
    pub path: Vec<PathEntry>,
    /// The revocation evidence for the TSA's path.
    pub revocation: Vec<RevocationEvidence>,
    /// Oddities that do not change the verdict.
    pub warnings: Vec<String>,
}

impl TimestampReport {
    /// The proof of existence this timestamp gives, if it passed: its genTime plus the
    /// TSA's accuracy would be the cautious bound, but genTime is what ETSI uses.
    pub fn proof(&self) -> Option<ReferenceTime> {
        (self.indication == Indication::TotalPassed)
            .then_some(self.gen_time)
            .flatten()
            .map(|time| ReferenceTime {
                time,
                source: self.kind.time_source(),
            })
    }

    fn failed(kind: TimestampKind, v: Verdict, gen_time: Option<OffsetDateTime>) -> Self {
        Self {
            kind,
            indication: v.indication,
            sub_indication: v.sub,
            message: v.message,
            gen_time,
            tsa: None,
            path: Vec::new(),
            revocation: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The AdES baseline level a signature carries AND verifies (ETSI EN 319 122-1 / 319 142-1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum SignatureLevel {
    /// Basic: no timestamp that verifies.
    #[default]
    #[serde(rename = "B_B")]
    BB,
    /// A signature timestamp that verifies.
    #[serde(rename = "B_T")]
    BT,
    /// B-T and embedded validation data (a PDF DSS; CAdES revocation values or
    /// SignedData.crls) that settled the revocation of the signer's path.
    #[serde(rename = "B_LT")]
    BLt,
    /// B-LT and a document timestamp that verifies over it.
    #[serde(rename = "B_LTA")]
    BLta,
}

impl SignatureLevel {
    /// The level of a signature with these judged `timestamps` (its own signature
    /// timestamps and the document timestamps covering it) and whether validation data is
    /// embedded with it.
    pub fn of(timestamps: &[TimestampReport], validation_data: bool) -> Self {
        let passed = |k: TimestampKind| {
            timestamps
                .iter()
                .any(|t| t.kind == k && t.indication == Indication::TotalPassed)
        };
        match (
            passed(TimestampKind::Signature),
            validation_data,
            passed(TimestampKind::Document),
        ) {
            (false, _, _) => Self::BB,
            (true, false, _) => Self::BT,
            (true, true, false) => Self::BLt,
            (true, true, true) => Self::BLta,
        }
    }
}

/// The earliest proof among `reports` (ETSI's best-signature-time).
pub fn earliest_proof(reports: &[TimestampReport]) -> Option<ReferenceTime> {
    reports
        .iter()
        .filter_map(TimestampReport::proof)
        .min_by_key(|p| p.time)
}

/// The imprint a token must carry: the digest, under the token's own hash
/// algorithm, of what it stamps (`None`: that algorithm cannot be computed here).
pub(crate) type Imprint<'a> = &'a (dyn Fn(DigestAlgorithm) -> Option<Vec<u8>> + Sync);

impl Verifier {
    /// Verifies one token stamping what `imprint` digests, then its TSA's path and
    /// revocation at the token's proof of existence `poe` (never at its own genTime).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn judge_timestamp(
        &self,
        kind: TimestampKind,
        token: &[u8],
        imprint: Imprint<'_>,
        poe: TokenPoe,
        embedded: &EmbeddedData,
        policy: RevocationPolicy,
        now: OffsetDateTime,
    ) -> TimestampReport {
        let tst = match read_tst_info(token) {
            Ok(t) => t,
            Err(m) => {
                let v = Verdict::fail(Indication::TotalFailed, SubIndication::FormatFailure, m);
                return TimestampReport::failed(kind, v, None);
            }
        };
        let gen_time = Some(tst.gen_time);
        let oid = tst.message_imprint.hash_algorithm.oid;
        let Some((algorithm, digest)) =
            DigestAlgorithm::from_oid(&oid).and_then(|a| imprint(a).map(|d| (a, d)))
        else {
            let v = Verdict::fail(
                Indication::Indeterminate,
                SubIndication::CryptoConstraintsFailure,
                format!("the timestamp's imprint uses an unsupported hash {oid}"),
            );
            return TimestampReport::failed(kind, v, gen_time);
        };
        let expected = Expected {
            algorithm,
            digest: &digest,
            nonce: None,
            policy: None,
        };
        let vt = match tsp::verify_token(token, &expected, &[]) {
            Ok(vt) => vt,
            Err(e) => {
                let sub = match e {
                    TspError::ImprintMismatch(_) => SubIndication::HashFailure,
                    TspError::Signature(_) => SubIndication::SigCryptoFailure,
                    TspError::SigningCertificate(_) | TspError::NotTimestampingCert(_) => {
                        SubIndication::SigConstraintsFailure
                    }
                    _ => SubIndication::FormatFailure,
                };
                let what = match kind {
                    TimestampKind::Signature => "the signature value",
                    TimestampKind::Document => "the byte range",
                };
                let v = Verdict::fail(
                    Indication::TotalFailed,
                    sub,
                    format!("the timestamp token is not valid over {what}: {e}"),
                );
                return TimestampReport::failed(kind, v, gen_time);
            }
        };
        let at = poe.reference();
        let mut path = Vec::new();
        let mut revocation = Vec::new();
        let mut warnings = vt.warnings.clone();
        warnings.extend(poe.note());
        let verdict = self
            .judge_certificate(
                &vt.tsa_cert,
                &vt.pool,
                embedded,
                at,
                None,
                policy,
                now,
                &mut path,
                &mut revocation,
                &mut warnings,
            )
            .await;
        let message = if verdict.indication == Indication::TotalPassed {
            format!(
                "a valid timestamp: the stamped data existed at {}",
                rfc3339(vt.gen_time())
            )
        } else {
            format!(
                "the timestamp proves nothing: {}: {}",
                poe.failure_words(),
                verdict.message
            )
        };
        TimestampReport {
            kind,
            indication: verdict.indication,
            sub_indication: verdict.sub,
            message,
            gen_time,
            tsa: Some(SignerIdentity::from_cert(&vt.tsa_cert)),
            path,
            revocation,
            warnings,
        }
    }

    /// The signature timestamps of signer `index` of `msg`, each judged at `poe` (the
    /// proof of the document timestamps covering the signature, else now).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn signature_timestamps(
        &self,
        msg: &cms::SignedDataMessage,
        index: usize,
        poe: TokenPoe,
        embedded: &EmbeddedData,
        policy: RevocationPolicy,
        now: OffsetDateTime,
    ) -> Vec<TimestampReport> {
        let tokens = cms::embedded(msg, index)
            .map(|e| e.timestamp_tokens)
            .unwrap_or_default();
        let value = cms::signature_value(msg, index).unwrap_or_default();
        let imprint = |a: DigestAlgorithm| Some(a.digest(value));
        let mut out = Vec::with_capacity(tokens.len());
        for t in &tokens {
            out.push(
                self.judge_timestamp(
                    TimestampKind::Signature,
                    t,
                    &imprint,
                    poe,
                    embedded,
                    policy,
                    now,
                )
                .await,
            );
        }
        out
    }
}

/// The token's TSTInfo, read before verification to learn its imprint's algorithm.
fn read_tst_info(token: &[u8]) -> Result<TstInfo, String> {
    let msg = cms::parse(token).map_err(|e| format!("the timestamp token is unreadable: {e}"))?;
    let content = msg
        .content()
        .ok_or_else(|| "the timestamp token encapsulates no TSTInfo".to_owned())?;
    TstInfo::from_der(content).map_err(|e| format!("the timestamp's TSTInfo is unreadable: {e}"))
}
