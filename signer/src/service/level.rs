//! The signature level of a request (N1): which level it asks for, whether this signer can
//! reach it at all (refused before anything is signed), and raising a built CMS to B-T and
//! B-LT, a signed PDF to B-LT and B-LTA (DSS, document timestamp), within the TSA budget. Past the budget, or when the TSA fails or its token does not pass every
//! check, the signature goes out at B-B with a warning, and the reply and the audit record
//! say so: a level is never claimed that the bytes do not carry. A signature returned below
//! its level is journaled for the background upgrade (`crate::upgrade`, D7).

use kyso_pki::cms_build::{add_signature_timestamp, add_validation_data, unsigned};
use kyso_proto::signer::v1::{self as pb, SignatureLevel};
use time::OffsetDateTime;

use crate::audit::{Decision as AuditDecision, LevelNote};
use crate::config::Caller;
use crate::error::{Error, Result};
use crate::timestamp::level_name;
use crate::upgrade::{Pending, rfc3339};

use super::SignerService;
use super::request::Job;

/// A signature after the timestamp step.
#[derive(Debug)]
pub(super) struct Raised {
    /// The CMS (B-B or B-T).
    pub(super) cms: Vec<u8>,
    /// The level it reaches.
    pub(super) level: SignatureLevel,
    /// Why it is below the level asked for, if it is.
    pub(super) warnings: Vec<String>,
}

impl SignerService {
    /// The level a request asks for: its own, else its profile's (`[levels]`), else B-B.
    /// Refused here, before the registry or the HSM, when this signer cannot reach it.
    pub(super) fn requested_level(
        &self,
        level: i32,
        profile: i32,
        pdf: bool,
    ) -> Result<SignatureLevel> {
        if SignatureLevel::try_from(level).is_err() {
            return Err(Error::InvalidField {
                field: "level",
                reason: format!("{level} is not a SignatureLevel"),
            });
        }
        let l = self.inner.levels.resolve(level, profile);
        match l {
            SignatureLevel::Unspecified | SignatureLevel::BB => Ok(SignatureLevel::BB),
            SignatureLevel::BLta if !pdf => Err(Error::InvalidField {
                field: "level",
                reason: "B-LTA for a CMS is an archive timestamp added later to a stored \
                         original, not a signing level (a PDF takes a document timestamp)"
                    .into(),
            }),
            SignatureLevel::BLt | SignatureLevel::BLta if self.inner.validation.is_none() => {
                Err(Error::LevelUnavailable {
                    level: level_name(l),
                    reason: "this signer has no source of validation data; sign at B-T".into(),
                })
            }
            SignatureLevel::BT | SignatureLevel::BLt | SignatureLevel::BLta
                if self.inner.stamper.is_none() =>
            {
                Err(Error::LevelUnavailable {
                    level: level_name(l),
                    reason: "a signature timestamp needs a timestamp authority, and this signer \
                         has no [tsa] configured"
                        .into(),
                })
            }
            SignatureLevel::BT | SignatureLevel::BLt | SignatureLevel::BLta => Ok(l),
        }
    }

    /// The bytes to reserve in a PDF's /Contents for a token at `level` (0 for B-B).
    pub(super) fn token_reserve(&self, level: SignatureLevel) -> usize {
        match (&self.inner.stamper, level) {
            (Some(s), l) if l >= SignatureLevel::BT => s.pdf_reserve(),
            _ => 0,
        }
    }

    /// Raises a built CMS (one signer, certificate `cert` with `chain`) to `requested`,
    /// within the TSA budget: the signature timestamp (B-T), then for B-LT the certificate
    /// and revocation values of the signer's path (R1), in what is left of the budget.
    pub(super) async fn raise_cms(
        &self,
        cms: Vec<u8>,
        requested: SignatureLevel,
        cert: &kyso_pki::cert::Cert,
        chain: &[kyso_pki::cert::Cert],
        now: OffsetDateTime,
    ) -> Raised {
        let below = |cms: Vec<u8>, why: String| {
            tracing::warn!(reason = %why, "signature returned at B-B");
            Raised {
                cms,
                level: SignatureLevel::BB,
                warnings: vec![format!(
                    "returned at B_B, not {}: {why}",
                    level_name(requested)
                )],
            }
        };
        let stamper = match (&self.inner.stamper, requested) {
            (_, SignatureLevel::BB) => {
                return Raised {
                    cms,
                    level: SignatureLevel::BB,
                    warnings: Vec::new(),
                };
            }
            (Some(s), _) => s,
            (None, _) => return below(cms, "N1: no [tsa] configured".into()),
        };
        let value = match unsigned::signature_value(&cms, 0) {
            Ok(v) => v,
            Err(e) => return below(cms, e.to_string()),
        };
        let started = std::time::Instant::now();
        let r = stamper.stamp_within_budget(&value).await;
        self.inner
            .metrics
            .tsa_seconds
            .with_label_values(&[if r.is_ok() { "ok" } else { "below_level" }])
            .observe(started.elapsed().as_secs_f64());
        let (stamped, token_der) = match r {
            Ok(token) => match add_signature_timestamp(&cms, 0, &token.token) {
                Ok(stamped) => (stamped, token.token),
                Err(e) => return below(cms, e.to_string()),
            },
            Err(e) => return below(cms, e.to_string()),
        };
        let at_bt = |cms: Vec<u8>, warnings: Vec<String>| Raised {
            cms,
            level: SignatureLevel::BT,
            warnings,
        };
        if requested < SignatureLevel::BLt {
            return at_bt(stamped, Vec::new());
        }
        let Some(source) = &self.inner.validation else {
            return at_bt(
                stamped,
                vec!["returned at B_T, not B_LT: no source of validation data".into()],
            );
        };
        // B-LT (R1): the path and its revocation DER, cached per certificate; a fetch that
        // does not fit what is left of the budget leaves the signature at B-T (D7 later).
        let left = stamper.budget().saturating_sub(started.elapsed());
        // The TSA's path and revocation data join the signer's (R1: the signature
        // timestamp stays verifiable offline once the TSA's CA stops answering).
        let fetch = async {
            let mut data = (*source.get(cert, chain, now).await?).clone();
            let tsa = source
                .tsa_data(stamper.paths(), std::slice::from_ref(&token_der), now)
                .await?;
            data.merge(&tsa);
            Ok::<_, String>(data)
        };
        let why = match tokio::time::timeout(left, fetch).await {
            Ok(Ok(data)) => match add_validation_data(&stamped, 0, &data.cades()) {
                Ok(lt) => {
                    return Raised {
                        cms: lt,
                        level: SignatureLevel::BLt,
                        warnings: Vec::new(),
                    };
                }
                Err(e) => e.to_string(),
            },
            Ok(Err(e)) => e,
            Err(_) => format!(
                "N1: the validation data was not fetched within the budget of {:?}",
                stamper.budget()
            ),
        };
        tracing::warn!(reason = %why, "signature returned at B-T, not B-LT");
        at_bt(stamped, vec![format!("returned at B_T, not B_LT: {why}")])
    }

    /// Raises a signed PDF at B-T to `requested` (B-LT: the DSS; B-LTA: and a document
    /// timestamp) in what is `left` of the budget; below it the PDF stays at B-T with a
    /// warning (the background upgrade finishes it, D7).
    pub(super) async fn raise_pdf(
        &self,
        pdf: Vec<u8>,
        raised: &mut Raised,
        requested: SignatureLevel,
        key: &crate::config::KeySpec,
        left: std::time::Duration,
        now: OffsetDateTime,
    ) -> Vec<u8> {
        if raised.level != SignatureLevel::BT || requested < SignatureLevel::BLt {
            return pdf;
        }
        let (Some(stamper), Some(source)) = (&self.inner.stamper, &self.inner.validation) else {
            return pdf;
        };
        let limits = kyso_pades::PadesLimits {
            max_bytes: self.inner.max_pdf_bytes.saturating_mul(2),
            ..Default::default()
        };
        let work = crate::pades_lt::extend(
            &pdf,
            &key.certificate,
            &key.chain,
            requested == SignatureLevel::BLta,
            crate::pades_lt::With { stamper, source },
            &limits,
            now,
        );
        let why = match tokio::time::timeout(left, work).await {
            Ok(Ok(x)) => {
                raised.level = requested;
                return x.pdf;
            }
            Ok(Err(e)) => e,
            Err(_) => format!(
                "N1: the validation data and timestamps did not fit the budget of {:?}",
                stamper.budget()
            ),
        };
        tracing::warn!(reason = %why, "PDF returned at B-T, not {}", level_name(requested));
        raised.warnings.push(format!(
            "returned at B_T, not {}: {why}",
            level_name(requested)
        ));
        pdf
    }

    /// Journals a signature returned below its level (D7) for the background upgrade: a CMS
    /// (`raised.cms`) or a PDF (`pdf`, which carries `raised.cms`). A failure is a warning: the signature itself is good.
    pub(super) fn journal_below_level(
        &self,
        raised: &mut Raised,
        pdf: Option<&[u8]>,
        caller: &Caller,
        job: &Job<'_>,
        requested: SignatureLevel,
        now: OffsetDateTime,
    ) {
        let raised_level = raised.level;
        let kind = if pdf.is_some() { "pdf" } else { "cms" };
        let original = pdf.unwrap_or(&raised.cms).to_vec();
        let warnings = &mut raised.warnings;
        if raised_level >= requested {
            return;
        }
        let Some(upgrades) = &self.inner.upgrades else {
            return;
        };
        let pending = Pending {
            kind: kind.to_owned(),
            sha256: String::new(),
            requested: level_name(requested).to_owned(),
            reached: level_name(raised_level).to_owned(),
            organisation_id: job.ctx.organisation_id.clone(),
            caller: caller.name.clone(),
            key: job.key.name.clone(),
            cert_sha256: job.key.certificate.fingerprint_hex().to_ascii_lowercase(),
            profile: pb::Profile::try_from(job.ctx.profile)
                .map(|p| p.as_str_name().to_owned())
                .unwrap_or_default(),
            acting_person_id: job.ctx.acting_person_id.clone(),
            since: rfc3339(now),
            reason: warnings.join("; "),
        };
        match upgrades.enqueue(&original, pending) {
            Ok(sha) => warnings.push(format!(
                "D7: the stored original {sha} is raised to {} in the background (GetDocument)",
                level_name(requested)
            )),
            Err(e) => warnings.push(format!("D7: the upgrade could not be journaled: {e}")),
        }
    }

    /// The audit record of a signature with its levels.
    pub(super) async fn record_signed_level(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        now: OffsetDateTime,
        label: Option<&str>,
        requested: SignatureLevel,
        reached: SignatureLevel,
    ) -> Result<pb::AuditReceipt> {
        let own;
        let label = match label {
            Some(l) => l,
            None => {
                own = job
                    .digest_algorithm
                    .name()
                    .to_ascii_lowercase()
                    .replace('-', "");
                &own
            }
        };
        let note = LevelNote {
            requested: level_name(requested).to_owned(),
            reached: level_name(reached).to_owned(),
        };
        self.record_level(caller, job, AuditDecision::Signed, now, label, Some(note))
            .await
    }
}
