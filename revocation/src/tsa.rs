//! The client of the CA's RFC 3161 timestamp authority (N1: a timestamp from the
//! provider's timestamp service where a law requires one).
//!
//! One POST of `application/timestamp-query` per attempt through the shared
//! [`Fetcher`] (its outbound policy, per-host circuit breaker, body bound and
//! `kyso_fetch_*{source="tsa"}` metrics), a deadline per attempt, a bounded
//! number of attempts with doubling backoff, and the answer verified by
//! `kyso_pki::tsp` before it is returned. The URL comes only from the
//! configuration: nothing a document or a caller says is ever posted to.

use std::time::Duration;

use bytes::Bytes;
use const_oid::ObjectIdentifier;
use kyso_pki::cert::Cert;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::tsp::{Expected, TimeStampReq, TspError, VerifiedTimestamp, verify_response};

use crate::fetch::{FetchError, FetchSource, Fetcher};

/// The media type of a query (RFC 3161 §3.4).
pub const QUERY_TYPE: &str = "application/timestamp-query";
/// The media type of a reply (RFC 3161 §3.4).
pub const REPLY_TYPE: &str = "application/timestamp-reply";

/// How to reach the TSA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsaConfig {
    /// The TSA's URL (configuration only).
    pub url: String,
    /// The policy to ask for; `None` takes the TSA's default.
    pub policy: Option<ObjectIdentifier>,
    /// Deadline of one attempt, connection and body included.
    pub deadline: Duration,
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each next one.
    pub backoff: Duration,
}

impl TsaConfig {
    /// Three attempts of at most 5 s each, 200 ms then 400 ms apart.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            policy: None,
            deadline: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Why no verified token was obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// The request could not be built (a digest of the wrong length, ...).
    #[error("timestamp request: {0}")]
    Request(String),
    /// Every attempt failed on the way; the last failure.
    #[error("timestamp authority {url}: {error} (after {attempts} attempt(s))")]
    Fetch {
        /// The TSA URL.
        url: String,
        /// The last failure.
        error: FetchError,
        /// Attempts made.
        attempts: u32,
    },
    /// The TSA answered with another media type than `application/timestamp-reply`.
    #[error("timestamp authority {url} answered {content_type:?}, not {REPLY_TYPE}")]
    ContentType {
        /// The TSA URL.
        url: String,
        /// What it answered.
        content_type: Option<String>,
    },
    /// The TSA answered, and the answer is refused (a rejection or a token that fails).
    #[error("timestamp authority {url}: {error}")]
    Token {
        /// The TSA URL.
        url: String,
        /// Why.
        error: TspError,
    },
}

/// The TSA client; cheap to clone (the fetcher is shared).
#[derive(Clone, Debug)]
pub struct TsaClient {
    cfg: TsaConfig,
    fetcher: Fetcher,
}

impl TsaClient {
    /// A client of the configured TSA through `fetcher`.
    pub fn new(cfg: TsaConfig, fetcher: Fetcher) -> Self {
        Self { cfg, fetcher }
    }

    /// The configuration.
    pub fn config(&self) -> &TsaConfig {
        &self.cfg
    }

    /// A verified token over `digest` (the `algorithm` hash of the datum), with a fresh random
    /// nonce. `extra_certs` help when the TSA does not include its certificate. The TSA
    /// certificate's path and revocation are the caller's to judge.
    pub async fn timestamp(
        &self,
        algorithm: DigestAlgorithm,
        digest: &[u8],
        extra_certs: &[Cert],
    ) -> Result<VerifiedTimestamp, TsaError> {
        let nonce: [u8; 16] = rand::random();
        let query = TimeStampReq::new(algorithm, digest, &nonce, self.cfg.policy)
            .and_then(|r| r.to_der_bytes())
            .map_err(|e| TsaError::Request(e.to_string()))?;
        let query = Bytes::from(query);
        let url = &self.cfg.url;
        let attempts = self.cfg.attempts.max(1);
        let mut backoff = self.cfg.backoff;
        let mut attempt = 0;
        let (body, content_type) = loop {
            attempt += 1;
            let sent = self
                .fetcher
                .post_typed(url, QUERY_TYPE, query.clone(), FetchSource::Tsa);
            let result = match tokio::time::timeout(self.cfg.deadline, sent).await {
                Ok(r) => r,
                Err(_) => Err(FetchError::Timeout(self.cfg.deadline)),
            };
            match result {
                Ok(answer) => break answer,
                Err(error) if attempt >= attempts || !retryable(&error) => {
                    return Err(TsaError::Fetch {
                        url: url.clone(),
                        error,
                        attempts: attempt,
                    });
                }
                Err(error) => {
                    tracing::debug!(url, attempt, %error, "timestamp attempt failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        };
        // RFC 3161 §3.4: the reply is `application/timestamp-reply` (parameters allowed).
        let ct_ok = content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case(REPLY_TYPE));
        if !ct_ok {
            return Err(TsaError::ContentType {
                url: url.clone(),
                content_type,
            });
        }
        let expected = Expected {
            algorithm,
            digest,
            nonce: Some(&nonce),
            policy: self.cfg.policy,
        };
        verify_response(&body, &expected, extra_certs).map_err(|error| TsaError::Token {
            url: url.clone(),
            error,
        })
    }
}

/// Transport failures, timeouts and 5xx are worth another attempt; an open circuit, the
/// policy, a 4xx or an oversized body are not.
fn retryable(e: &FetchError) -> bool {
    match e {
        FetchError::Timeout(_) | FetchError::Transport(_) => true,
        FetchError::Status(code) => *code >= 500,
        _ => false,
    }
}
