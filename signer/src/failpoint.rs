//! Named crash points of the document flow, for the crash tests only.
//!
//! Built with the cargo feature `failpoints` (never in a deployment build), a signer started
//! with `KYSO_SIGNER_FAILPOINT=<step>` aborts (`std::process::abort`: no unwinding, no
//! shutdown, no seal; what a power cut or `kill -9` leaves) when the flow reaches `<step>`.
//! Without the feature [`hit`] is an empty inline function and the variable is never read.
//!
//! The steps, in flow order (docs/FLOWS.md, "Retries"):
//! - `IssueOutgoing`: `approval-signed`, `approval-journaled`, `seal-signed`,
//!   `seal-journaled`, `stored`, `registered`, `replying`;
//! - `ReceiveIncoming`: `received-stored`, `verified`, `numbered`, `stamp-signed`,
//!   `stamp-journaled`, `stored`, `replying`;
//! - `SignAttachments`: `appendix-signed`, `appendix-journaled`, `stored`, `replying`.
//!
//! `*-signed` is after the HSM signature and its audit record, before the flow's journal
//! keeps it: the one window where a retry signs a second time (the first is then recorded
//! as `not_returned`).

/// The environment variable naming the step to abort at.
#[cfg(feature = "failpoints")]
pub const VARIABLE: &str = "KYSO_SIGNER_FAILPOINT";

/// Aborts the process if `step` is the armed failpoint.
#[cfg(feature = "failpoints")]
pub fn hit(step: &str) {
    if std::env::var(VARIABLE).is_ok_and(|v| v == step) {
        eprintln!("failpoint {step}: aborting");
        std::process::abort();
    }
}

/// Aborts the process if `step` is the armed failpoint (not in this build: a no-op).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_step: &str) {}

/// Logs, at start-up, the failpoint armed (a build with failpoints only).
#[cfg(feature = "failpoints")]
pub fn announce() {
    if let Ok(step) = std::env::var(VARIABLE) {
        tracing::warn!(%step, "a failpoint is armed: the signer aborts at that step (tests only)");
    }
}

/// Logs, at start-up, the failpoint armed (not in this build: a no-op).
#[cfg(not(feature = "failpoints"))]
pub fn announce() {}
