//! Signature levels above B-B (N1: a timestamp from the provider's timestamp service where a
//! law requires one): the TSA client the signer shares between requests, the TSA's trust,
//! and the time budget.
//!
//! One [`Stamper`] per signer process: every request in flight uses the same
//! [`TsaClient`] (one HTTP/1.1 keep-alive pool, one circuit breaker for the TSA host), so
//! concurrent requests do not queue behind each other's TSA calls.
//!
//! A token is embedded only when every check passed: the reply's status, the token's
//! signature, its imprint (the SHA-256 of the signature value, ETSI EN 319 122-1 §5.3), the
//! nonce and policy asked for (`kyso_pki::tsp::verify_response`), AND the TSA certificate's
//! path to the TSA trust anchors ([tsa] `tsa_roots`, else the signer's [trust] anchors), valid
//! at the token's genTime. A token that fails any of them is never embedded: the signature
//! stays at B-B with a warning.

use std::sync::Arc;
use std::time::Duration;

use kyso_pki::cert::Cert;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::path::{PathBuilder, TrustStore};
use kyso_pki::tsp::VerifiedTimestamp;
use kyso_proto::signer::v1::SignatureLevel;
use kyso_revocation::tsa::TsaClient;

/// The signer's TSA: the shared client, the TSA trust and the budget.
#[derive(Clone, Debug)]
pub struct Stamper {
    client: TsaClient,
    paths: PathBuilder,
    budget: Duration,
    digest: DigestAlgorithm,
    pdf_reserve: usize,
}

/// Why no token was embedded (the signature is returned below the level asked for).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// The budget ran out before the TSA answered (it may still answer later).
    #[error("N1: the timestamp authority did not answer within the budget of {0:?}")]
    Budget(Duration),
    /// The TSA failed, refused or gave a token that fails its checks.
    #[error("N1: {0}")]
    Tsa(String),
    /// The token is good but its TSA certificate does not chain to the TSA trust anchors.
    #[error("N1: the timestamp authority's certificate is not trusted: {0}")]
    Untrusted(String),
}

impl Stamper {
    /// A stamper over `client`, trusting TSA certificates that chain to `anchors`.
    pub fn new(
        client: TsaClient,
        anchors: Vec<Cert>,
        budget: Duration,
        digest: DigestAlgorithm,
        pdf_reserve: usize,
    ) -> Self {
        let trust = Arc::new(TrustStore::new(anchors, Vec::new(), &[]));
        Self {
            client,
            paths: PathBuilder::new(trust, None),
            budget,
            digest,
            pdf_reserve,
        }
    }

    /// The per-request budget for the timestamp.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Bytes reserved in a PDF's /Contents for the signature timestamp token.
    pub fn pdf_reserve(&self) -> usize {
        self.pdf_reserve
    }

    /// A verified, trusted token over `signature_value` (the SignerInfo's signature field
    /// value), without a budget (the background upgrade).
    pub async fn stamp(&self, signature_value: &[u8]) -> Result<VerifiedTimestamp, StampError> {
        let digest = self.digest.digest(signature_value);
        self.stamp_digest(&digest).await
    }

    /// The imprint's algorithm (a document timestamp's digest is computed with it).
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest
    }

    /// The TSA path builder (its trust anchors: `tsa_roots`, else `[trust]`'s).
    pub fn paths(&self) -> &PathBuilder {
        &self.paths
    }

    /// A verified, trusted token over `digest` (computed with [`Self::digest_algorithm`]),
    /// without a budget: a PAdES document timestamp's imprint.
    pub async fn stamp_digest(&self, digest: &[u8]) -> Result<VerifiedTimestamp, StampError> {
        let token = self
            .client
            .timestamp(self.digest, digest, &[])
            .await
            .map_err(|e| StampError::Tsa(e.to_string()))?;
        let path = self
            .paths
            .build(&token.tsa_cert, &token.pool)
            .await
            .map_err(|e| StampError::Untrusted(format!("{e:?}")))?;
        path.check_validity(token.gen_time())
            .map_err(|e| StampError::Untrusted(format!("{e:?}")))?;
        Ok(token)
    }

    /// [`Self::stamp`] within the budget: past it the call is abandoned and the signature
    /// goes out at B-B (the caller never waits long for a slow TSA; item 3 of the levels).
    pub async fn stamp_within_budget(
        &self,
        signature_value: &[u8],
    ) -> Result<VerifiedTimestamp, StampError> {
        match tokio::time::timeout(self.budget, self.stamp(signature_value)).await {
            Ok(r) => r,
            Err(_) => Err(StampError::Budget(self.budget)),
        }
    }
}

/// "B_B", "B_T", ... as in the proto, for the audit log and messages.
pub fn level_name(level: SignatureLevel) -> &'static str {
    match level {
        SignatureLevel::Unspecified => "UNSPECIFIED",
        SignatureLevel::BB => "B_B",
        SignatureLevel::BT => "B_T",
        SignatureLevel::BLt => "B_LT",
        SignatureLevel::BLta => "B_LTA",
    }
}

/// A level as written in the configuration: `b-b`, `B_T`, `b-lt`, ... (case and `-`/`_`
/// free); `None` when it is not one.
pub fn parse_level(s: &str) -> Option<SignatureLevel> {
    match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
        "B_B" => Some(SignatureLevel::BB),
        "B_T" => Some(SignatureLevel::BT),
        "B_LT" => Some(SignatureLevel::BLt),
        "B_LTA" => Some(SignatureLevel::BLta),
        _ => None,
    }
}
