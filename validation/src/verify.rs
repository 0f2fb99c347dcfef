//! The whole verification of a CMS signature (N3 art. 7: the signature with
//! the public key, the signer's certificate at the time of signing, the
//! integrity of the document) into one [`SignatureReport`] per signer.
//!
//! Order of judgement, first failure wins: structure and cryptography of the
//! signature itself (TOTAL_FAILED, nothing can repair them), then the path to
//! an anchor, then validity at the reference time (N2 a), then revocation
//! status at the reference time (N2 c, N7).

use std::sync::Arc;

use futures::future::join_all;

use kyso_pki::Result;
use kyso_pki::cert::Cert;
use kyso_pki::cms::{self, Detached, EssStatus, SignedDataMessage, SignerCheck, SignerFailure};
use kyso_pki::path::{PathBudget, PathBuilder, PathFailure, TrustStore, ValidPath};
use kyso_pki::time::{OffsetDateTime, rfc3339};
use kyso_revocation::{Fetcher, PkiMetrics, RevocationChecker, RevocationConfig, Status};

use crate::archive::TokenPoe;
use crate::certsource::{CertificateOrigin, CertificateSource, SuppliedCertificates, describe};
use crate::embedded::{EmbeddedData, level_reached};
use crate::poe::{self, Claim, SignatureTimes};
use crate::report::{
    CertStatus, DocumentReport, Indication, PathEntry, ReferenceTime, RevocationEvidence,
    RevocationPolicy, RevocationSource, SignatureReport, SignerIdentity, SubIndication, TimeSource,
};
use crate::timestamps::{SignatureLevel, earliest_proof};

/// Vietnam's offset: signing tools that write local time as UTC are off by this.
const VIETNAM_OFFSET: time::Duration = time::Duration::hours(7);

/// Everything a [`Verifier`] needs.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Anchors, intermediates, legacy roots.
    pub trust: TrustStore,
    /// Revocation sources and caches.
    pub revocation: RevocationConfig,
    /// Applied when a request does not name a policy.
    pub default_policy: RevocationPolicy,
    /// Download missing intermediates through AIA caIssuers.
    pub fetch_aia: bool,
    /// The work one path build may do (N2).
    pub path_budget: PathBudget,
    /// Added to a NO_CERTIFICATE_CHAIN_FOUND message: which anchors were looked for
    /// (the pinned roots), so that a clerk knows what is missing.
    pub anchor_note: Option<String>,
}

/// One CMS verification request.
#[derive(Clone, Copy, Debug)]
pub struct CmsRequest<'a> {
    /// ContentInfo with SignedData, DER, BER or PEM.
    pub signature: &'a [u8],
    /// The content of a detached signature, or its digest.
    pub detached: Detached<'a>,
    /// A trusted reference time given by the caller.
    pub at: Option<OffsetDateTime>,
    /// The revocation policy, or the configured default.
    pub policy: Option<RevocationPolicy>,
}

/// The status of one certificate with its chain (CheckCertificate).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateReport {
    /// The verdict.
    pub indication: Indication,
    /// Why, when not passed.
    pub sub_indication: Option<SubIndication>,
    /// A sentence a clerk can read.
    pub message: String,
    /// The certificate's subject.
    pub subject: SignerIdentity,
    /// The path to the anchor.
    pub path: Vec<PathEntry>,
    /// The revocation evidence used.
    pub revocation: Vec<RevocationEvidence>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// The time it was judged at.
    pub reference_time: ReferenceTime,
}

/// The verifier: stateless but for its caches. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Verifier {
    paths: PathBuilder,
    anchor_note: Option<String>,
    revocation: RevocationChecker,
    default_policy: RevocationPolicy,
}

/// A verdict under construction: the first failure recorded wins.
pub(crate) struct Verdict {
    pub(crate) indication: Indication,
    pub(crate) sub: Option<SubIndication>,
    pub(crate) message: String,
}

impl Verdict {
    pub(crate) fn passed() -> Self {
        Self {
            indication: Indication::TotalPassed,
            sub: None,
            message: String::new(),
        }
    }
    pub(crate) fn fail(
        indication: Indication,
        sub: SubIndication,
        message: impl Into<String>,
    ) -> Self {
        Self {
            indication,
            sub: Some(sub),
            message: message.into(),
        }
    }
}

impl Verifier {
    /// A verifier with its own caches; `fetcher` serves OCSP, CRL and AIA.
    pub fn new(cfg: VerifierConfig, fetcher: Fetcher, metrics: PkiMetrics) -> Self {
        let aia = cfg
            .fetch_aia
            .then(|| Arc::new(fetcher.clone()) as Arc<dyn kyso_pki::path::IssuerSource>);
        Self {
            paths: PathBuilder::new(Arc::new(cfg.trust), aia).with_budget(cfg.path_budget),
            revocation: RevocationChecker::new(cfg.revocation, fetcher, metrics),
            default_policy: cfg.default_policy,
            anchor_note: cfg.anchor_note,
        }
    }

    /// A verifier with its own HTTP fetcher, built from `cfg.revocation.fetch`, serving
    /// OCSP, CRL and AIA. Fails only when the HTTP client cannot be set up.
    pub fn from_config(
        cfg: VerifierConfig,
        metrics: PkiMetrics,
    ) -> std::result::Result<Self, kyso_revocation::Error> {
        let fetcher = Fetcher::new(cfg.revocation.fetch.clone(), metrics.clone())?;
        Ok(Self::new(cfg, fetcher, metrics))
    }

    /// The path builder (its trust store).
    pub fn paths(&self) -> &PathBuilder {
        &self.paths
    }

    /// The revocation checker (its caches).
    pub fn revocation(&self) -> &RevocationChecker {
        &self.revocation
    }

    /// The policy applied when a request names none.
    pub fn default_policy(&self) -> RevocationPolicy {
        self.default_policy
    }

    /// Verifies every signer of a CMS SignedData. `Err` only when the input
    /// cannot be judged at all (not a CMS, inconsistent request).
    pub async fn verify_cms(
        &self,
        req: CmsRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<DocumentReport> {
        self.verify_cms_with(req, &SuppliedCertificates::default(), now)
            .await
    }

    /// [`Verifier::verify_cms`], with the signer's certificate also looked up in
    /// `source` (the caller's certificates, a service's book) when the signature
    /// does not carry it; `source`'s path certificates serve as intermediates.
    pub async fn verify_cms_with(
        &self,
        req: CmsRequest<'_>,
        source: &dyn CertificateSource,
        now: OffsetDateTime,
    ) -> Result<DocumentReport> {
        self.one_request(self.verify_cms_inner(req, source, now))
            .await
    }

    /// Runs `f` as one request of the fetch policy: its network fetches (OCSP, CRL,
    /// AIA) are counted against `max_fetches_per_request`.
    pub(crate) async fn one_request<F: Future>(&self, f: F) -> F::Output {
        let max = self.revocation.fetcher().policy().max_fetches_per_request;
        kyso_revocation::policy::per_request(max, f).await
    }

    pub(crate) async fn verify_cms_inner(
        &self,
        req: CmsRequest<'_>,
        source: &dyn CertificateSource,
        now: OffsetDateTime,
    ) -> Result<DocumentReport> {
        let msg = cms::parse(req.signature)?;
        let policy = req.policy.unwrap_or(self.default_policy);
        let checks = join_all(
            (0..msg.signer_count()).map(|i| SourcedCheck::run(&msg, i, &req.detached, source)),
        )
        .await;
        let msg = &msg;
        let reports = join_all(checks.into_iter().map(|c| async move {
            // Validation data embedded by the signer (CAdES B-LT), for the signer's
            // and the TSA's paths.
            let embedded = EmbeddedData::from_cms(msg, c.check.index);
            // Proofs of existence: the signer's own signature timestamps (B-T).
            let timestamps = self
                .signature_timestamps(
                    msg,
                    c.check.index,
                    TokenPoe::Now(now),
                    &embedded,
                    policy,
                    now,
                )
                .await;
            let times = SignatureTimes {
                poe: earliest_proof(&timestamps),
                ..SignatureTimes::caller(req.at)
            };
            let mut report = self
                .judge_signer(c.check, &c.pool, &embedded, times, policy, now)
                .await;
            report.poe = times.poe;
            report.level = level_reached(&timestamps, &embedded, &mut report);
            report.warnings.extend(embedded.warnings.iter().cloned());
            report.timestamps = timestamps;
            c.note.apply(&mut report);
            report
        }))
        .await;
        Ok(DocumentReport::new(reports))
    }

    /// The status of a certificate (first) with its chain at `at` (or now).
    pub async fn check_certificate(
        &self,
        chain: &[Cert],
        at: Option<OffsetDateTime>,
        policy: Option<RevocationPolicy>,
        now: OffsetDateTime,
    ) -> Result<CertificateReport> {
        self.one_request(self.check_certificate_inner(chain, at, policy, now))
            .await
    }

    async fn check_certificate_inner(
        &self,
        chain: &[Cert],
        at: Option<OffsetDateTime>,
        policy: Option<RevocationPolicy>,
        now: OffsetDateTime,
    ) -> Result<CertificateReport> {
        let Some(leaf) = chain.first() else {
            return Err(kyso_pki::Error::InvalidRequest(
                "the chain is empty: give the certificate first".into(),
            ));
        };
        let policy = policy.unwrap_or(self.default_policy);
        let reference_time = match at {
            Some(t) => ReferenceTime {
                time: t,
                source: TimeSource::Caller,
            },
            None => ReferenceTime {
                time: now,
                source: TimeSource::ValidationTime,
            },
        };
        let mut warnings = Vec::new();
        let mut path = Vec::new();
        let mut evidence = Vec::new();
        let verdict = self
            .judge_certificate(
                leaf,
                chain.get(1..).unwrap_or_default(),
                &EmbeddedData::default(),
                reference_time,
                None,
                policy,
                now,
                &mut path,
                &mut evidence,
                &mut warnings,
            )
            .await;
        Ok(CertificateReport {
            indication: verdict.indication,
            sub_indication: verdict.sub,
            message: finish_message(&verdict),
            subject: SignerIdentity::from_cert(leaf),
            path,
            revocation: evidence,
            warnings,
            reference_time,
        })
    }

    pub(crate) async fn judge_signer(
        &self,
        check: SignerCheck,
        pool: &[Cert],
        embedded: &EmbeddedData,
        times: SignatureTimes,
        policy: RevocationPolicy,
        now: OffsetDateTime,
    ) -> SignatureReport {
        // Never the claimed time: it is reported and checked, not proof (issue 16).
        let reference_time = times.reference(now);
        let claim = check.signing_time.map(|time| Claim {
            time,
            source: times.claim_source,
        });
        let mut warnings = check.warnings.clone();
        if let Some(st) = check.signing_time {
            let against = times.at.unwrap_or(now);
            if let Some(w) = local_time_warning(st, against, times.at.is_some()) {
                warnings.push(w);
            }
        }
        let mut path = Vec::new();
        let mut evidence = Vec::new();
        let verdict = match (&check.failure, &check.signer_cert) {
            (Some(f), _) => signer_failure_verdict(f),
            (None, None) => Verdict::fail(
                Indication::Indeterminate,
                SubIndication::NoSigningCertificateFound,
                "the signer's certificate is neither in the signature nor given",
            ),
            (None, Some(leaf)) => {
                self.judge_certificate(
                    leaf,
                    pool,
                    embedded,
                    reference_time,
                    claim,
                    policy,
                    now,
                    &mut path,
                    &mut evidence,
                    &mut warnings,
                )
                .await
            }
        };
        if verdict.indication == Indication::TotalPassed
            && let Some(leaf) = &check.signer_cert
            && !leaf.key_usage_allows(x509_cert::ext::pkix::KeyUsages::DigitalSignature)
            && !leaf.key_usage_allows(x509_cert::ext::pkix::KeyUsages::NonRepudiation)
        {
            return self.report(
                &check,
                Verdict::fail(
                    Indication::TotalFailed,
                    SubIndication::ChainConstraintsFailure,
                    "the signer's certificate does not allow digitalSignature nor nonRepudiation",
                ),
                reference_time,
                policy,
                path,
                evidence,
                warnings,
            );
        }
        self.report(
            &check,
            verdict,
            reference_time,
            policy,
            path,
            evidence,
            warnings,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        check: &SignerCheck,
        verdict: Verdict,
        reference_time: ReferenceTime,
        policy: RevocationPolicy,
        path: Vec<PathEntry>,
        revocation: Vec<RevocationEvidence>,
        warnings: Vec<String>,
    ) -> SignatureReport {
        SignatureReport {
            index: u32::try_from(check.index).unwrap_or(u32::MAX),
            indication: verdict.indication,
            sub_indication: verdict.sub,
            message: finish_message(&verdict),
            signer: check.signer_cert.as_ref().map(SignerIdentity::from_cert),
            reference_time,
            claimed_signing_time: check.signing_time,
            path,
            revocation,
            warnings,
            digest_algorithm: check.digest_algorithm.map(|d| d.name().to_owned()),
            signature_algorithm: check.signature_algorithm.clone(),
            revocation_policy: policy,
            signed_attributes: check.signed_attributes,
            ess_signing_certificate_v2: check.ess == EssStatus::V2Matched,
            detached: check.detached,
            commitment_type: check.commitment_type.clone(),
            // Set by [`SourceNote::apply`], which knows the message and the source.
            signer_certificate_origin: None,
            // Set by the caller, which judged them before the signer (they set its POE).
            timestamps: Vec::new(),
            poe: None,
            level: SignatureLevel::BB,
        }
    }

    /// Path, validity and revocation of `leaf` at the reference time.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn judge_certificate(
        &self,
        leaf: &Cert,
        pool: &[Cert],
        embedded: &EmbeddedData,
        reference: ReferenceTime,
        claim: Option<Claim>,
        policy: RevocationPolicy,
        now: OffsetDateTime,
        path_out: &mut Vec<PathEntry>,
        evidence_out: &mut Vec<RevocationEvidence>,
        warnings: &mut Vec<String>,
    ) -> Verdict {
        // Embedded certificates (DSS, certificate-values) are candidates for the path,
        // never anchors.
        let joined: Vec<Cert>;
        let pool = if embedded.certs.is_empty() {
            pool
        } else {
            joined = pool
                .iter()
                .chain(embedded.certs.iter().filter(|c| !pool.contains(c)))
                .cloned()
                .collect();
            &joined
        };
        let vp = match self.paths.build(leaf, pool).await {
            Ok(vp) => vp,
            Err(f) => {
                let mut v = path_failure_verdict(f);
                if v.sub == Some(SubIndication::NoCertificateChainFound)
                    && let Some(note) = &self.anchor_note
                {
                    v.message.push_str(note);
                }
                return v;
            }
        };
        path_out.extend(
            vp.certs
                .iter()
                .map(|pc| PathEntry::new(&pc.cert, pc.source.clone())),
        );
        if let Some(v) = poe::validity(&vp, reference, claim, warnings) {
            return v;
        }
        self.judge_revocation(
            &vp,
            embedded,
            reference,
            claim,
            policy,
            now,
            evidence_out,
            warnings,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn judge_revocation(
        &self,
        vp: &ValidPath,
        embedded: &EmbeddedData,
        reference: ReferenceTime,
        claim: Option<Claim>,
        policy: RevocationPolicy,
        now: OffsetDateTime,
        evidence_out: &mut Vec<RevocationEvidence>,
        warnings: &mut Vec<String>,
    ) -> Verdict {
        if policy == RevocationPolicy::Off {
            warnings.push("revocation was not checked: the revocation policy is off".into());
            return Verdict::passed();
        }
        // Every certificate but the anchor, concurrently (N2 art. 32).
        let pairs: Vec<(&Cert, &Cert)> = vp
            .certs
            .windows(2)
            .map(|w| (&w[0].cert, &w[1].cert))
            .collect();
        // Embedded evidence first (past validation: the source may no longer answer);
        // a certificate it does not settle is checked online, as always.
        let outcomes = join_all(pairs.iter().map(|(c, issuer)| async move {
            let mut ignored = Vec::new();
            let settled = self
                .revocation
                .check_embedded(
                    c,
                    issuer,
                    &embedded.revocation,
                    reference.time,
                    now,
                    &mut ignored,
                )
                .await;
            match settled {
                Some(o) => (o, ignored),
                None => (
                    self.revocation
                        .check(c, issuer, reference.time, now, policy)
                        .await,
                    ignored,
                ),
            }
        }))
        .await;
        let outcomes: Vec<_> = outcomes
            .into_iter()
            .map(|(o, ignored)| {
                warnings.extend(ignored);
                o
            })
            .collect();
        let mut verdict = Verdict::passed();
        for (i, ((cert, _), outcome)) in pairs.iter().zip(outcomes).enumerate() {
            evidence_out.extend(outcome.evidence);
            if verdict.indication != Indication::TotalPassed || outcome.status == Status::Good {
                continue;
            }
            // Rendered only when there is something to say.
            let who = if i == 0 {
                "the signer's certificate".to_owned()
            } else {
                format!("the CA certificate {}", cert.entry_names().subject)
            };
            match outcome.status {
                Status::Good => {}
                Status::NotChecked => {
                    warnings.push(format!("revocation of {who} was not checked"));
                }
                Status::Revoked { time, reason } => {
                    let what = match reason.as_deref() {
                        Some("certificateHold") => "suspended (certificateHold, N7)",
                        _ => "revoked",
                    };
                    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    if let Some(v) = poe::revocation_verdict(
                        &who, what, &why, i, time, reference, claim, warnings,
                    ) {
                        verdict = v;
                    }
                }
                Status::Unknown => match policy {
                    RevocationPolicy::Require => {
                        verdict = Verdict::fail(
                            Indication::Indeterminate,
                            SubIndication::TryLater,
                            format!(
                                "no revocation status could be obtained for {who}; the policy requires one (fail closed)"
                            ),
                        );
                    }
                    RevocationPolicy::SoftFail => warnings.push(format!(
                        "no revocation status could be obtained for {who}; accepted under the soft-fail policy"
                    )),
                    RevocationPolicy::Off => {}
                },
            }
        }
        if evidence_out.is_empty() && policy != RevocationPolicy::Off {
            evidence_out.push(RevocationEvidence {
                certificate_subject: String::new(),
                certificate_serial: String::new(),
                source: RevocationSource::None,
                url: None,
                status: CertStatus::NotChecked,
                this_update: None,
                next_update: None,
                produced_at: None,
                revocation_time: None,
                revocation_reason: None,
                from_cache: false,
                origin: Default::default(),
                stale: false,
                detail: Some("no certificate to check".into()),
            });
        }
        verdict
    }
}

/// A signer's check with the certificates a [`CertificateSource`] offered, and the pool
/// of certificates its path may be built from.
pub(crate) struct SourcedCheck {
    pub(crate) check: SignerCheck,
    pub(crate) pool: Vec<Cert>,
    pub(crate) note: SourceNote,
}

/// What the report says about where the signer's certificate came from.
pub(crate) struct SourceNote {
    origin: Option<CertificateOrigin>,
    warnings: Vec<String>,
    message_suffix: Option<String>,
}

impl SourcedCheck {
    /// Checks signer `index` of `msg` with its own certificates first, then those
    /// `source` finds for its SignerIdentifier. The signature value decides which
    /// candidate is the signer's; the others are reported, not used.
    pub(crate) async fn run(
        msg: &SignedDataMessage,
        index: usize,
        detached: &Detached<'_>,
        source: &dyn CertificateSource,
    ) -> SourcedCheck {
        let candidates = match msg.signer(index) {
            Some(si) => source.signer_candidates(&si.sid).await,
            None => Vec::new(),
        };
        let check = cms::check_signer(msg, index, detached, &candidates);
        let embedded = msg.certificates();
        let origin = check.signer_cert.as_ref().map(|c| {
            if embedded.contains(c) {
                CertificateOrigin::Embedded
            } else {
                source.origin()
            }
        });
        let outside: Vec<&Cert> = candidates
            .iter()
            .filter(|c| !embedded.contains(c))
            .collect();
        let mut warnings = Vec::new();
        let mut message_suffix = None;
        match &check.failure {
            // A signer verified: every other outside candidate is named, not used.
            None => {
                for c in &outside {
                    if check.signer_cert.as_ref() != Some(*c) {
                        warnings.push(format!(
                            "the supplied certificate {} matches the signer identifier but is not the one the signature value verifies with: not used",
                            describe(c)
                        ));
                    }
                }
            }
            // No candidate verified: say which supplied ones were tried.
            Some(SignerFailure::SigCrypto(_)) if !outside.is_empty() => {
                let names: Vec<String> = outside.iter().map(|c| describe(c)).collect();
                message_suffix = Some(format!(
                    "; tried the supplied certificate(s) {}: none verifies the signature, none is used",
                    names.join(", ")
                ));
            }
            _ => {}
        }
        let mut pool = embedded.to_vec();
        for c in source.path_certificates() {
            if !pool.contains(c) {
                pool.push(c.clone());
            }
        }
        SourcedCheck {
            check,
            pool,
            note: SourceNote {
                origin,
                warnings,
                message_suffix,
            },
        }
    }
}

impl SourceNote {
    /// Writes the origin, warnings and message addition into `report`.
    pub(crate) fn apply(self, report: &mut SignatureReport) {
        if report.signer.is_some() {
            report.signer_certificate_origin = self.origin;
        }
        report.warnings.extend(self.warnings);
        if let Some(s) = self.message_suffix {
            report.message.push_str(&s);
        }
    }
}

fn finish_message(v: &Verdict) -> String {
    if v.indication == Indication::TotalPassed {
        "the signature is valid: intact, made with the signer's key, and the certificate was valid at the reference time".into()
    } else {
        v.message.clone()
    }
}

fn signer_failure_verdict(f: &SignerFailure) -> Verdict {
    use Indication::{Indeterminate, TotalFailed};
    match f {
        SignerFailure::Format(m) => Verdict::fail(TotalFailed, SubIndication::FormatFailure, m),
        SignerFailure::HashFailure(m) => Verdict::fail(TotalFailed, SubIndication::HashFailure, m),
        SignerFailure::SigCrypto(m) => {
            Verdict::fail(TotalFailed, SubIndication::SigCryptoFailure, m)
        }
        SignerFailure::NoSigningCertificate(m) => {
            Verdict::fail(Indeterminate, SubIndication::NoSigningCertificateFound, m)
        }
        SignerFailure::SignedDataNotFound(m) => {
            Verdict::fail(Indeterminate, SubIndication::SignedDataNotFound, m)
        }
        SignerFailure::CryptoConstraints(m) => {
            Verdict::fail(Indeterminate, SubIndication::CryptoConstraintsFailure, m)
        }
        SignerFailure::SigConstraints(m) => {
            Verdict::fail(Indeterminate, SubIndication::SigConstraintsFailure, m)
        }
    }
}

fn path_failure_verdict(f: PathFailure) -> Verdict {
    use Indication::Indeterminate;
    match f {
        PathFailure::NoChain(m) => {
            Verdict::fail(Indeterminate, SubIndication::NoCertificateChainFound, m)
        }
        PathFailure::Constraints(m) => {
            Verdict::fail(Indeterminate, SubIndication::ChainConstraintsFailure, m)
        }
        PathFailure::General(m) => Verdict::fail(
            Indeterminate,
            SubIndication::CertificateChainGeneralFailure,
            m,
        ),
        PathFailure::Crypto(m) => {
            Verdict::fail(Indeterminate, SubIndication::CryptoConstraintsFailure, m)
        }
    }
}

/// Some signing tools write Vietnam local time into the UTC signingTime; the
/// claimed time then lies up to seven hours in the future. Reported, never
/// corrected: the signed bytes say what they say.
fn local_time_warning(
    signing_time: OffsetDateTime,
    against: OffsetDateTime,
    against_is_given: bool,
) -> Option<String> {
    let ahead = signing_time - against;
    let slack = time::Duration::minutes(5);
    if ahead <= slack {
        return None;
    }
    let base = if against_is_given {
        "the given reference time"
    } else {
        "the validation time"
    };
    if ahead <= VIETNAM_OFFSET + slack {
        Some(format!(
            "the signing time {} is {} min ahead of {base}: it looks like Vietnam local time (+07:00) written as UTC; it was not corrected",
            rfc3339(signing_time),
            ahead.whole_minutes()
        ))
    } else {
        Some(format!(
            "the signing time {} is in the future relative to {base}",
            rfc3339(signing_time)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn local_time_written_as_utc_is_warned_not_corrected() {
        let now = datetime!(2025-03-14 02:30 UTC);
        let w = local_time_warning(datetime!(2025-03-14 09:29 UTC), now, false);
        assert!(w.is_some_and(|w| w.contains("+07:00")));
        assert_eq!(
            local_time_warning(datetime!(2025-03-14 02:31 UTC), now, false),
            None
        );
        let far = local_time_warning(datetime!(2025-03-15 09:29 UTC), now, false);
        assert!(far.is_some_and(|w| w.contains("future")));
    }
}
