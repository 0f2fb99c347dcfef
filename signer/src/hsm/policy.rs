//! Pure decisions of the HSM layer: retry backoff, slot choice, error classification.

use std::time::Duration;

use cryptoki::error::{Error as P11Error, RvError};

/// How a failing slot is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff: `initial`, `2 × initial`, ... capped at `max`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    config: RetryConfig,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(config: RetryConfig) -> Self {
        Self {
            config,
            failures: 0,
        }
    }

    /// The wait after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let shift = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let d = self
            .config
            .initial_backoff
            .checked_mul(1u32 << shift)
            .unwrap_or(self.config.max_backoff);
        d.min(self.config.max_backoff)
    }

    /// Consecutive failures so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A slot as seen by the chooser.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub(crate) index: usize,
    pub(crate) up: bool,
    pub(crate) in_flight: usize,
}

/// Picks the healthy candidate with the fewest requests in flight that has not been tried yet;
/// ties go round robin from `rr`.
pub(crate) fn pick_slot(candidates: &[Candidate], tried: &[usize], rr: usize) -> Option<usize> {
    let n = candidates.len();
    if n == 0 {
        return None;
    }
    let mut best: Option<Candidate> = None;
    for i in 0..n {
        let c = candidates[(rr + i) % n];
        if !c.up || tried.contains(&c.index) {
            continue;
        }
        if best.is_none_or(|b| c.in_flight < b.in_flight) {
            best = Some(c);
        }
    }
    best.map(|c| c.index)
}

/// What a PKCS#11 failure means for the slot it happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The device, the connection or the session is gone: mark the slot down, fail over.
    Device,
    /// The slot answered but refused this request (bad input, mechanism): no failover.
    Request,
}

/// Classifies a PKCS#11 error.
pub(crate) fn classify(e: &P11Error) -> FailureKind {
    match e {
        P11Error::Pkcs11(rv, _) => classify_rv(*rv),
        // A module that cannot be called at all is as good as a dead device.
        P11Error::LibraryLoading(_) | P11Error::NullFunctionPointer => FailureKind::Device,
        _ => FailureKind::Request,
    }
}

pub(crate) fn classify_rv(rv: RvError) -> FailureKind {
    use RvError::*;
    match rv {
        DeviceError
        | DeviceMemory
        | DeviceRemoved
        | TokenNotPresent
        | TokenNotRecognized
        | SessionHandleInvalid
        | SessionClosed
        | SessionCount
        | GeneralError
        | FunctionFailed
        | CryptokiNotInitialized
        | UserNotLoggedIn
        | KeyHandleInvalid
        | ObjectHandleInvalid
        | HostMemory
        | FunctionCanceled
        | CantLock
        | OperationActive => FailureKind::Device,
        _ => FailureKind::Request,
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::new(RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        });
        let got: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.failures(), 6);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_millis(1000), "no overflow");
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    fn c(index: usize, up: bool, in_flight: usize) -> Candidate {
        Candidate {
            index,
            up,
            in_flight,
        }
    }

    #[test]
    fn picks_least_loaded_healthy_slot() {
        let cs = [c(0, true, 3), c(1, true, 1), c(2, false, 0)];
        assert_eq!(pick_slot(&cs, &[], 0), Some(1));
        assert_eq!(pick_slot(&cs, &[1], 0), Some(0));
        assert_eq!(
            pick_slot(&cs, &[0, 1], 0),
            None,
            "down slots are never picked"
        );
        assert_eq!(pick_slot(&[], &[], 0), None);
    }

    #[test]
    fn ties_go_round_robin() {
        let cs = [c(4, true, 0), c(7, true, 0), c(9, true, 0)];
        let picks: Vec<_> = (0..6).map(|rr| pick_slot(&cs, &[], rr)).collect();
        assert_eq!(
            picks,
            vec![Some(4), Some(7), Some(9), Some(4), Some(7), Some(9)]
        );
    }

    #[test]
    fn device_errors_fail_over_request_errors_do_not() {
        use cryptoki::context::Function;
        let dev = P11Error::Pkcs11(RvError::DeviceError, Function::Sign);
        let removed = P11Error::Pkcs11(RvError::DeviceRemoved, Function::Sign);
        let session = P11Error::Pkcs11(RvError::SessionHandleInvalid, Function::SignInit);
        let data = P11Error::Pkcs11(RvError::DataLenRange, Function::Sign);
        let mech = P11Error::Pkcs11(RvError::MechanismInvalid, Function::SignInit);
        assert_eq!(classify(&dev), FailureKind::Device);
        assert_eq!(classify(&removed), FailureKind::Device);
        assert_eq!(classify(&session), FailureKind::Device);
        assert_eq!(classify(&data), FailureKind::Request);
        assert_eq!(classify(&mech), FailureKind::Request);
    }
}
