//! Signing over a key's HA group: the request goes to the healthy slot with the fewest in
//! flight (ties round robin), checks a session out of the slot's pool, signs in a blocking
//! task, and on a device or session error marks the slot down and moves on to another slot.
//! Every attempt is reported to the observer (metrics).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::mechanism::SignMechanism;
use super::policy::{Candidate, FailureKind, classify, pick_slot};
use super::token::{self, KeyKind, SignFailure, p11};
use super::{Hsm, HsmError, lock};

/// What happened to one signing attempt on one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignOutcome {
    /// Signed.
    Ok,
    /// A device or session error: the slot was marked down and the request moved on.
    Failover,
    /// The slot refused the request (not a device problem); the caller gets the error.
    Error,
}

impl SignOutcome {
    /// `ok`, `failover`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignOutcome::Ok => "ok",
            SignOutcome::Failover => "failover",
            SignOutcome::Error => "error",
        }
    }
}

/// One signing attempt on one slot, for metrics.
#[derive(Clone, Copy, Debug)]
pub struct SignEvent<'a> {
    /// The key.
    pub key: &'a str,
    /// The slot.
    pub slot: &'a str,
    /// The mechanism.
    pub mechanism: SignMechanism,
    /// Time spent waiting for a free session of the slot.
    pub pool_wait: Duration,
    /// Time in the HSM (session open if needed, `C_Sign`).
    pub latency: Duration,
    /// How it ended.
    pub outcome: SignOutcome,
}

/// Receives every [`SignEvent`]; must be cheap (it runs on the request path).
pub type SignObserver = Arc<dyn Fn(&SignEvent<'_>) + Send + Sync>;

/// The result of one attempt on one slot.
enum Attempt {
    Signed(Vec<u8>),
    /// The slot is down or failed with a device error: try another.
    Failover(String),
    /// Give the caller this error.
    Fail(HsmError),
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct ActiveCall<'a>(&'a AtomicUsize);

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hsm {
    /// Installs the observer of signing attempts (replaces any previous one).
    pub fn set_observer(&self, observer: SignObserver) {
        *self
            .inner
            .observer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(observer);
    }

    /// Signs a prehashed `digest` with `key`. RSA PKCS#1 v1.5 signs `DigestInfo(digest)`;
    /// PSS uses MGF1 with the same hash and a salt as long as the hash; ECDSA returns the DER
    /// `Ecdsa-Sig-Value`. Fails over to another slot of the key's group on device errors;
    /// fails at once with [`HsmError::Unavailable`] when no slot is up. Waiting for a free
    /// session is unbounded here: wrap the call in the caller's deadline.
    pub async fn sign(
        &self,
        key: &str,
        mechanism: SignMechanism,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let inner = &self.inner;
        let (ki, k) = inner.key(key)?;
        if !k.kind.allows(mechanism) {
            return Err(HsmError::BadMechanism {
                key: key.to_owned(),
                mechanism: mechanism.name().to_owned(),
                reason: match k.kind {
                    KeyKind::Rsa { .. } => "it is an RSA key".to_owned(),
                    KeyKind::Ec { .. } => "it is an EC key".to_owned(),
                },
            });
        }
        mechanism.check_digest(digest)?;
        let mut tried = Vec::new();
        let mut reasons = Vec::new();
        loop {
            let candidates: Vec<Candidate> = k
                .slots
                .iter()
                .map(|&si| Candidate {
                    index: si,
                    up: inner.slots[si].up.load(Ordering::Acquire),
                    in_flight: inner.slots[si].in_flight.load(Ordering::Relaxed),
                })
                .collect();
            let rr = inner.rr.fetch_add(1, Ordering::Relaxed);
            let Some(si) = pick_slot(&candidates, &tried, rr) else {
                let mut reason = reasons.join("; ");
                if reason.is_empty() {
                    reason = inner.down_reason(k);
                }
                return Err(HsmError::Unavailable {
                    key: key.to_owned(),
                    reason,
                });
            };
            tried.push(si);
            match self.sign_on(si, ki, mechanism, digest).await {
                Attempt::Signed(sig) => return Ok(sig),
                Attempt::Failover(reason) => {
                    reasons.push(format!("slot {:?}: {reason}", inner.slots[si].name));
                }
                Attempt::Fail(e) => return Err(e),
            }
        }
    }

    async fn sign_on(
        &self,
        si: usize,
        ki: usize,
        mechanism: SignMechanism,
        digest: &[u8],
    ) -> Attempt {
        let inner = &self.inner;
        let slot = &inner.slots[si];
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&slot.in_flight);
        let wait_start = Instant::now();
        let Ok(permit) = slot.permits.clone().acquire_owned().await else {
            return Attempt::Failover("shutting down".to_owned());
        };
        let pool_wait = wait_start.elapsed();
        // Check a session out.
        let checkout = {
            let mut st = lock(&slot.state);
            let epoch = st.epoch;
            match st.conn.as_mut() {
                None => Err(st.last_error.clone().unwrap_or_else(|| "down".to_owned())),
                Some(conn) => match conn.handles.get(&ki) {
                    None => Err("the key is not in this slot".to_owned()),
                    Some(&handle) => Ok((
                        epoch,
                        conn.ctx.clone(),
                        conn.slot,
                        conn.module_generation,
                        handle,
                        conn.idle.pop(),
                    )),
                },
            }
        };
        let (epoch, ctx, slot_id, generation, handle, session) = match checkout {
            Ok(c) => c,
            Err(reason) => return Attempt::Failover(reason),
        };
        let kind = inner.keys[ki].kind;
        let digest = digest.to_vec();
        let task_inner = inner.clone();
        inner.active_calls.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let inner = task_inner;
            let _active = ActiveCall(&inner.active_calls);
            let session = match session {
                Some(s) => s,
                None => match ctx.open_ro_session(slot_id) {
                    Ok(s) => s,
                    Err(e) => {
                        let reason = format!("C_OpenSession: {e}");
                        return match classify(&e) {
                            FailureKind::Device => {
                                inner.mark_down(si, epoch, &reason);
                                (Attempt::Failover(reason), SignOutcome::Failover)
                            }
                            FailureKind::Request => (
                                Attempt::Fail(p11(&inner.slots[si].name, "C_OpenSession", &e)),
                                SignOutcome::Error,
                            ),
                        };
                    }
                },
            };
            match token::sign_digest(&session, handle, kind, mechanism, &digest) {
                Ok(sig) => {
                    inner.return_session(si, epoch, generation, session);
                    (Attempt::Signed(sig), SignOutcome::Ok)
                }
                Err(SignFailure::P11(e)) if classify(&e) == FailureKind::Device => {
                    let reason = format!("C_Sign: {e}");
                    inner.mark_down(si, epoch, &reason);
                    inner.return_session(si, epoch, generation, session);
                    (Attempt::Failover(reason), SignOutcome::Failover)
                }
                Err(e) => {
                    inner.return_session(si, epoch, generation, session);
                    (
                        Attempt::Fail(HsmError::Pkcs11 {
                            slot: inner.slots[si].name.clone(),
                            operation: "C_Sign".to_owned(),
                            reason: e.to_string(),
                        }),
                        SignOutcome::Error,
                    )
                }
            }
        })
        .await;
        let latency = started.elapsed();
        let (attempt, outcome) = match joined {
            Ok(r) => r,
            Err(e) => (
                Attempt::Fail(HsmError::Internal(format!("signing task: {e}"))),
                SignOutcome::Error,
            ),
        };
        let observer = inner
            .observer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(obs) = observer {
            obs(&SignEvent {
                key: &inner.keys[ki].name,
                slot: &slot.name,
                mechanism,
                pool_wait,
                latency,
                outcome,
            });
        }
        attempt
    }
}
