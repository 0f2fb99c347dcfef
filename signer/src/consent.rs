//! Holder consent for personal keys (Signature Activation Data, A1): what the holder's
//! one-time code proves, and the activation tokens it yields.
//!
//! A personal signature has the force of a handwritten one, so the calling document system
//! alone cannot make it: the holder authorises each signature (or a small batch) with a
//! factor that system does not have, bound to the exact digests (EN 419 241-1 "sole
//! control", the Cloud Signature Consortium's credentials/authorize). Here:
//! - the factor is a TOTP code (RFC 6238: HMAC-SHA-1, 30 s steps, 6 digits) whose seed is a
//!   secret key inside the HSM (`hsm::otp`); the token computes the HMAC, [`truncate`] does
//!   RFC 4226's dynamic truncation;
//! - a right code yields an activation token ([`Grants`]): random, short-lived, bound to the
//!   key, the digest algorithm and the digests, each digest usable once. Tokens live in this
//!   replica's memory only (a replica does not know another's tokens: the document system
//!   signs through the replica that authorised, docs/OPERATIONS.md), so checking one costs
//!   the signature no HSM call;
//! - a deployment may let a trusted document system sign on behalf of the leaders of chosen
//!   organisations (`[[callers]] sign_on_behalf`); such signatures carry that factor in the
//!   audit log.

use std::collections::HashMap;
use std::sync::Mutex;

use kyso_pki::crypto::DigestAlgorithm;
use serde::Deserialize;
use time::OffsetDateTime;

/// Seconds in a TOTP time step (RFC 6238's default).
pub const STEP_SECS: i64 = 30;

/// Digits of a code.
pub const DIGITS: u32 = 6;

/// Most digests one authorisation may cover.
pub const MAX_BATCH: usize = 32;

/// Most live activation tokens this replica keeps (bounded memory).
pub const MAX_GRANTS: usize = 10_000;

/// What made a personal signature the holder's, as the audit log names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Factor {
    /// No holder consent was involved (an organisation key, or refused before it).
    #[default]
    None,
    /// The holder's one-time code (through an activation token).
    Totp,
    /// The caller signs on behalf of the organisation's leaders, as the config allows.
    OnBehalf,
}

impl Factor {
    /// The audit log's `factor` member: `""`, `totp`, `on_behalf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::None => "",
            Factor::Totp => "totp",
            Factor::OnBehalf => "on_behalf",
        }
    }
}

/// `[consent]` in the signer's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// How long an activation token lives, seconds.
    pub token_ttl_secs: u64,
    /// Wrong codes in a row that lock the credential until an unlock (I5).
    pub max_failures: u32,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: 120,
            max_failures: 5,
        }
    }
}

impl ConsentConfig {
    /// The config's problems.
    pub fn check(&self, problems: &mut Vec<String>) {
        if !(1..=3600).contains(&self.token_ttl_secs) {
            problems.push("consent.token_ttl_secs: between 1 and 3600".into());
        }
        if !(1..=100).contains(&self.max_failures) {
            problems.push("consent.max_failures: between 1 and 100".into());
        }
    }
}

/// The time step of `t` (Unix time / 30).
pub fn step_of(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp().div_euclid(STEP_SECS)).unwrap_or(0)
}

/// RFC 4226 5.3: dynamic truncation of an HMAC-SHA-1 to a [`DIGITS`]-digit code.
pub fn truncate(mac: &[u8; 20]) -> u32 {
    let offset = usize::from(mac[19] & 0x0f);
    let bin = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    bin % 10u32.pow(DIGITS)
}

/// A code as the holder types it: exactly [`DIGITS`] ASCII digits.
pub fn parse_code(s: &str) -> Option<u32> {
    let s = s.trim();
    (s.len() == DIGITS as usize && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The `otpauth://` URI of a seed, for the holder's authenticator (Key URI Format).
pub fn otpauth_uri(issuer: &str, account: &str, seed: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(seed),
        enc(issuer)
    )
}

/// RFC 4648 base32 without padding (what authenticators read).
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// What one activation token allows.
#[derive(Debug)]
struct Grant {
    /// The caller it was issued to (no other caller may use it).
    caller: String,
    key: String,
    algorithm: DigestAlgorithm,
    /// The digests not signed yet.
    digests: Vec<Vec<u8>>,
    expires: OffsetDateTime,
}

/// The live activation tokens of this replica, by the SHA-256 of the token (the token itself
/// is not kept).
#[derive(Debug, Default)]
pub struct Grants {
    live: Mutex<HashMap<[u8; 32], Grant>>,
}

/// Why an activation token does not allow a signature (all A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    /// No token was sent.
    Missing,
    /// Unknown, already used up, or expired.
    Unknown,
    /// For another key, or issued to another caller.
    OtherKey,
    /// Not for this digest (or this digest was signed with it already).
    OtherDigest,
    /// Too many live tokens.
    Full,
}

impl GrantRefusal {
    /// The refusal's text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => {
                "a personal key signs only with the holder's consent: authorise the digest with AuthorizeSignature and send its activation_token"
            }
            Self::Unknown => {
                "the activation token is unknown, expired or already used (tokens are single-use and known only to the replica that issued them)"
            }
            Self::OtherKey => {
                "the activation token was issued for another key or to another caller"
            }
            Self::OtherDigest => {
                "the activation token does not cover this digest (or it was signed with it already)"
            }
            Self::Full => "too many activation tokens are live; try again shortly",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Grants {
    /// Issues `caller` a token for `digests` of `key`, valid until `expires`; answers the
    /// token.
    pub fn issue(
        &self,
        caller: &str,
        key: &str,
        algorithm: DigestAlgorithm,
        digests: Vec<Vec<u8>>,
        now: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<String, GrantRefusal> {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| GrantRefusal::Full)?;
        let token = hex::encode(raw);
        let id = kyso_pki::crypto::sha256(token.as_bytes());
        let mut live = lock(&self.live);
        live.retain(|_, g| g.expires > now);
        if live.len() >= MAX_GRANTS {
            return Err(GrantRefusal::Full);
        }
        live.insert(
            id,
            Grant {
                caller: caller.to_owned(),
                key: key.to_owned(),
                algorithm,
                digests,
                expires,
            },
        );
        Ok(token)
    }

    /// Uses `token` for one signature of `digest` with `key` by `caller`: the digest is spent
    /// (and the token with its last digest), whatever happens to the signature afterwards.
    pub fn consume(
        &self,
        token: &str,
        caller: &str,
        key: &str,
        algorithm: DigestAlgorithm,
        digest: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), GrantRefusal> {
        if token.trim().is_empty() {
            return Err(GrantRefusal::Missing);
        }
        let id = kyso_pki::crypto::sha256(token.trim().as_bytes());
        let mut live = lock(&self.live);
        let Some(grant) = live.get_mut(&id) else {
            return Err(GrantRefusal::Unknown);
        };
        if grant.expires <= now {
            live.remove(&id);
            return Err(GrantRefusal::Unknown);
        }
        if grant.key != key || grant.caller != caller {
            return Err(GrantRefusal::OtherKey);
        }
        let Some(i) = (grant.algorithm == algorithm)
            .then(|| grant.digests.iter().position(|d| d == digest))
            .flatten()
        else {
            return Err(GrantRefusal::OtherDigest);
        };
        grant.digests.swap_remove(i);
        if grant.digests.is_empty() {
            live.remove(&id);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_truncation() {
        // RFC 4226 5.4's example HMAC.
        let mac: [u8; 20] = hex::decode("1f8698690e02ca16618550ef7f19da8e945b555a")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(truncate(&mac), 872_921);
    }

    #[test]
    fn base32_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(parse_code("012345"), Some(12345));
        assert_eq!(parse_code("12345"), None);
        assert_eq!(parse_code("12345a"), None);
        assert_eq!(parse_code("+12345"), None);
    }

    #[test]
    fn a_token_covers_its_digests_once() {
        let g = Grants::default();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let exp = now + time::Duration::seconds(120);
        let alg = DigestAlgorithm::Sha256;
        let t = g
            .issue("c", "k", alg, vec![vec![1; 32], vec![2; 32]], now, exp)
            .unwrap();
        assert_eq!(
            g.consume(&t, "c", "other", alg, &[1; 32], now),
            Err(GrantRefusal::OtherKey)
        );
        assert_eq!(
            g.consume(&t, "another caller", "k", alg, &[1; 32], now),
            Err(GrantRefusal::OtherKey)
        );
        assert_eq!(
            g.consume(&t, "c", "k", alg, &[3; 32], now),
            Err(GrantRefusal::OtherDigest)
        );
        g.consume(&t, "c", "k", alg, &[1; 32], now).unwrap();
        assert_eq!(
            g.consume(&t, "c", "k", alg, &[1; 32], now),
            Err(GrantRefusal::OtherDigest)
        );
        g.consume(&t, "c", "k", alg, &[2; 32], now).unwrap();
        assert_eq!(
            g.consume(&t, "c", "k", alg, &[2; 32], now),
            Err(GrantRefusal::Unknown)
        );
        let t = g.issue("c", "k", alg, vec![vec![1; 32]], now, exp).unwrap();
        assert_eq!(
            g.consume(&t, "c", "k", alg, &[1; 32], exp),
            Err(GrantRefusal::Unknown)
        );
        assert_eq!(
            g.consume("", "c", "k", alg, &[1; 32], now),
            Err(GrantRefusal::Missing)
        );
    }
}
