//! Holder consent for personal keys (A1, I5): the `AuthorizeSignature` flow (the holder's
//! one-time code checked by the HSM, the attempt counter, the lock and its unlock) and the
//! check every signing flow makes before the registry is asked (`consent`).
//!
//! The counter lives on the token beside the seed (`hsm::otp`): it survives a restart and
//! every replica using the same token counts the same attempts. Within a replica one
//! authorisation per key runs at a time; two replicas racing on one credential can each
//! read the counter before the other writes it, so at worst one extra attempt is counted
//! once (docs/OPERATIONS.md).

use kyso_pki::cert::CertKind;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::audit::Decision as AuditDecision;
use crate::config::Caller;
use crate::consent::{self, Factor, MAX_BATCH};
use crate::error::{Error, Refusal, Result};
use crate::hsm::otp::{self, OtpFailure, OtpState};
use crate::hsm::{HsmError, KeySelector};

use super::SignerService;
use super::request::{Job, check_digest_len};

/// What the token said of one code.
enum Verdict {
    /// Right, for this time step (now the last one used).
    Accepted,
    /// Wrong (or a step already used); `left` attempts before the lock.
    Wrong { left: u32 },
    /// Locked since `locked_at` (Unix seconds).
    Locked { locked_at: i64 },
    /// Nothing enrolled for the key.
    NotEnrolled,
}

fn refused(rule: &str, reason: String) -> Error {
    Error::Refused(vec![Refusal {
        rule: rule.into(),
        reason,
    }])
}

fn otp_error(key: &str, e: OtpFailure) -> Error {
    Error::Hsm(HsmError::Pkcs11 {
        slot: key.to_owned(),
        operation: "one-time-code credential".to_owned(),
        reason: e.to_string(),
    })
}

/// On the token: the stored state, the lock (lifted when the registry recorded an unlock
/// done after it: `unlocked_at`), the code checked over the steps now, now − 1, now + 1
/// (RFC 6238 5.2: one step of drift each way) that are newer than the last used, and the new
/// state written. In the usual case one `C_Sign` over 8 bytes.
fn check_code(
    session: &cryptoki::session::Session,
    sel: &KeySelector,
    code: u32,
    step: u64,
    max_failures: u32,
    now: i64,
    unlocked_at: Option<i64>,
) -> std::result::Result<Verdict, OtpFailure> {
    let seed = match otp::find_seed(session, sel) {
        Ok(s) => s,
        Err(OtpFailure::NotEnrolled) => return Ok(Verdict::NotEnrolled),
        Err(e) => return Err(e),
    };
    let (objects, mut state) = otp::read_state(session, sel)?;
    if state.failures >= max_failures {
        match unlocked_at {
            // I5: an unlock done after the lock resets the count.
            Some(u) if u > state.locked_at => {
                state = OtpState {
                    last_step: state.last_step,
                    ..OtpState::default()
                };
            }
            _ => {
                return Ok(Verdict::Locked {
                    locked_at: state.locked_at,
                });
            }
        }
    }
    let mut accepted = None;
    for s in [step, step.wrapping_sub(1), step.wrapping_add(1)] {
        // A step at or before the last accepted one is never accepted again.
        if s <= state.last_step {
            continue;
        }
        if consent::truncate(&otp::hmac(session, seed, s)?) == code {
            accepted = Some(s);
            break;
        }
    }
    let verdict = match accepted {
        Some(s) => {
            state = OtpState {
                failures: 0,
                last_step: s,
                locked_at: 0,
            };
            Verdict::Accepted
        }
        None => {
            state.failures = state.failures.saturating_add(1);
            if state.failures >= max_failures {
                state.locked_at = now;
            }
            Verdict::Wrong {
                left: max_failures.saturating_sub(state.failures),
            }
        }
    };
    otp::write_state(session, sel, &objects, &state)?;
    Ok(verdict)
}

impl SignerService {
    /// A1, before the registry is asked: a personal key signs only with the holder's
    /// activation token for this very digest, or for a caller that signs on behalf of the
    /// organisation's leaders (config). Organisation keys are not concerned. The token's
    /// digest is spent here, whatever happens to the signature afterwards.
    pub(super) fn consent(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        ctx: &pb::SigningContext,
        now: OffsetDateTime,
    ) -> Result<Factor> {
        if job.key.certificate.kind() != CertKind::Personal {
            return Ok(Factor::None);
        }
        if caller.sign_on_behalf.contains(&ctx.organisation_id) {
            return Ok(Factor::OnBehalf);
        }
        self.inner
            .grants
            .consume(
                &job.activation_token,
                &caller.name,
                &job.key.name,
                job.digest_algorithm,
                &job.document_digest,
                now,
            )
            .map(|()| Factor::Totp)
            .map_err(|r| refused("A1", r.reason().to_owned()))
    }

    /// `AuthorizeSignature`: see the proto. Every outcome after parsing is recorded.
    pub(super) async fn authorize_signature_inner(
        &self,
        caller: &Caller,
        r: pb::AuthorizeSignatureRequest,
        now: OffsetDateTime,
    ) -> Result<pb::AuthorizeSignatureResponse> {
        let key = self.key(&r.key)?;
        if key.certificate.kind() != CertKind::Personal {
            return Err(Error::InvalidField {
                field: "key",
                reason: "an organisation key needs no holder consent; AuthorizeSignature is for personal keys".into(),
            });
        }
        let alg = Self::digest_algorithm(&r.digest_algorithm)?;
        if r.digests.is_empty() || r.digests.len() > MAX_BATCH {
            return Err(Error::InvalidField {
                field: "digests",
                reason: format!("one to {MAX_BATCH} digests"),
            });
        }
        for d in &r.digests {
            check_digest_len(alg, d)?;
        }
        let code = consent::parse_code(&r.otp).ok_or(Error::InvalidField {
            field: "otp",
            reason: format!("the holder's {}-digit code", consent::DIGITS),
        })?;
        let label = alg.name().to_ascii_lowercase().replace('-', "");
        let label = match r.digests.len() {
            1 => label,
            n => format!("{label}x{n}"),
        };
        let job = Job {
            key,
            ctx: pb::SigningContext::default(),
            digest_algorithm: alg,
            document_digest: r.digests.concat(),
            signing_time: now,
            raw: false,
            activation_token: String::new(),
            factor: Factor::Totp,
            seal: Default::default(),
        };
        let verdict = self.verify_code(key, code, now).await;
        let outcome = match verdict {
            Ok(Verdict::Accepted) => Ok(()),
            Ok(Verdict::Wrong { left: 0 }) => Err(refused(
                "I5",
                format!(
                    "wrong one-time code: the credential is now locked after {} wrong codes; the certificate's managing agency files an unlock request (RequestUnlock) and it is done (ResolveUnlock)",
                    self.inner.consent.max_failures
                ),
            )),
            Ok(Verdict::Wrong { left }) => Err(refused(
                "A1",
                format!(
                    "wrong or already used one-time code ({left} attempts left before the credential locks, I5)"
                ),
            )),
            Ok(Verdict::Locked { locked_at }) => Err(refused(
                "I5",
                format!(
                    "the one-time-code credential is locked since {} (too many wrong codes); no code is accepted until an unlock request for the certificate is done after that time",
                    OffsetDateTime::from_unix_timestamp(locked_at).unwrap_or(now)
                ),
            )),
            Ok(Verdict::NotEnrolled) => Err(refused(
                "A1",
                "no one-time code is enrolled for this personal key (kyso signer enroll-otp)"
                    .into(),
            )),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            return Err(self.record_as_failure(caller, &job, e, now, &label).await);
        }
        let ttl = i64::try_from(self.inner.consent.token_ttl_secs).unwrap_or(120);
        let expires = now + time::Duration::seconds(ttl);
        let token =
            match self
                .inner
                .grants
                .issue(&caller.name, &key.name, alg, r.digests, now, expires)
            {
                Ok(t) => t,
                Err(e) => {
                    let e = Error::Busy(e.reason().to_owned());
                    return Err(self.record_as_failure(caller, &job, e, now, &label).await);
                }
            };
        self.record_as(caller, &job, AuditDecision::Authorised, now, &label)
            .await?;
        Ok(pb::AuthorizeSignatureResponse {
            activation_token: token,
            expires_at: Some(prost_types::Timestamp {
                seconds: expires.unix_timestamp(),
                nanos: 0,
            }),
        })
    }

    /// The code checked on the token, under the key's lock; a locked credential asks the
    /// registry for an unlock done after the lock (I5) and tries once more if there is one.
    async fn verify_code(
        &self,
        key: &crate::config::KeySpec,
        code: u32,
        now: OffsetDateTime,
    ) -> Result<Verdict> {
        let _one = match self.inner.credentials.get(&key.name) {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let step = consent::step_of(now);
        let max = self.inner.consent.max_failures;
        let at = now.unix_timestamp();
        let run = |unlocked_at: Option<i64>| {
            self.inner.hsm.with_credential(&key.name, move |s, sel| {
                check_code(s, sel, code, step, max, at, unlocked_at)
            })
        };
        let first = run(None).await?.map_err(|e| otp_error(&key.name, e))?;
        let Verdict::Locked { locked_at } = first else {
            return Ok(first);
        };
        let unlocked = self
            .inner
            .registry
            .latest_unlock(&key.certificate.fingerprint_hex())
            .await?;
        match unlocked {
            Some(u) if u > locked_at => {
                Ok(run(Some(u)).await?.map_err(|e| otp_error(&key.name, e))?)
            }
            _ => Ok(first),
        }
    }

    /// [`Self::record_failure`] with the digest's label given (a batch).
    async fn record_as_failure(
        &self,
        caller: &Caller,
        job: &Job<'_>,
        err: Error,
        now: OffsetDateTime,
        label: &str,
    ) -> Error {
        let decision = match err.rule_ids() {
            rules if rules.is_empty() => AuditDecision::Failed {
                reason: err.to_string(),
            },
            rules => AuditDecision::Refused {
                rules,
                reason: err.to_string(),
            },
        };
        if let Err(e) = self.record_as(caller, job, decision, now, label).await {
            tracing::error!(error = %e, "a refused authorisation could not be recorded");
        }
        err
    }
}
