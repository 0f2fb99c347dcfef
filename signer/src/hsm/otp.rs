//! The holder's one-time-code credential on the token (A1, I5): the TOTP seed of a personal
//! key is a secret key INSIDE the HSM, next to the key, and every HMAC is computed by the
//! token; the attempt counter is a data object beside it, so that it survives a restart and
//! every replica using the same token sees it.
//!
//! Objects, both token objects and private (only a logged-in session sees them):
//! - the seed: `CKO_SECRET_KEY`, `CKK_GENERIC_SECRET`, 20 bytes, `CKA_SIGN`, sensitive and
//!   not extractable, `CKA_LABEL` = [`otp_label`] of the personal key, `CKA_ID` = the key's
//!   `CKA_ID` when it has one;
//! - the state: `CKO_DATA`, `CKA_APPLICATION` = [`APPLICATION`], the same label, its
//!   `CKA_VALUE` the text of [`OtpState`]; replaced (created anew, the old one destroyed) at
//!   every change ([`read_state`]).
//!
//! Enrolment ([`enroll`]) generates the seed with `C_GenerateKey`
//! (`CKM_GENERIC_SECRET_KEY_GEN`) not yet sensitive and extractable, reads `CKA_VALUE` once
//! for the holder's authenticator, then sets `CKA_SENSITIVE` true and `CKA_EXTRACTABLE` false
//! (one-way transitions in PKCS#11) and reads both back: a token that refuses the transition
//! leaves no seed behind (it is destroyed) and the enrolment fails.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use zeroize::Zeroizing;

use super::token::KeySelector;

/// `CKA_APPLICATION` of the state object.
pub const APPLICATION: &str = "kyso-totp";

/// Length of a seed, bytes (RFC 4226 recommends 160 bits).
pub const SEED_LEN: usize = 20;

/// The label of the seed and state objects of the personal key named by `sel`.
pub fn otp_label(sel: &KeySelector) -> String {
    match (&sel.label, &sel.id) {
        (Some(l), _) => format!("{APPLICATION}:{l}"),
        (None, Some(id)) => format!("{APPLICATION}:id:{}", hex::encode(id)),
        (None, None) => APPLICATION.to_owned(),
    }
}

fn seed_template(sel: &KeySelector) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Label(otp_label(sel).into_bytes()),
    ];
    if let Some(id) = &sel.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

fn state_template(sel: &KeySelector) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(APPLICATION.as_bytes().to_vec()),
        Attribute::Label(otp_label(sel).into_bytes()),
    ]
}

/// A failure of the credential on the token.
#[derive(Debug)]
pub enum OtpFailure {
    /// The personal key has no enrolled seed.
    NotEnrolled,
    /// More than one seed or state object: the token was edited by hand.
    Ambiguous(&'static str),
    /// A PKCS#11 call failed.
    P11(&'static str, cryptoki::error::Error),
    /// The token answered something unusable (a state object that does not parse, a seed
    /// that stayed readable).
    Malformed(String),
}

impl std::fmt::Display for OtpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotEnrolled => f.write_str("no one-time-code seed is enrolled for this key"),
            Self::Ambiguous(what) => write!(f, "several {what} objects for this key on the token"),
            Self::P11(op, e) => write!(f, "{op}: {e}"),
            Self::Malformed(s) => f.write_str(s),
        }
    }
}

/// The attempt counter of a credential, as the state object's text
/// `kyso-totp-state v1 failures=N last_step=S locked_at=T` (decimal; `locked_at` is a Unix
/// time, 0 when not locked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtpState {
    /// Wrong codes since the last right one (or the last unlock).
    pub failures: u32,
    /// The last time step accepted: a step is never accepted twice, nor an older one.
    pub last_step: u64,
    /// When the credential was locked (Unix seconds); 0: not locked.
    pub locked_at: i64,
}

impl OtpState {
    /// The stored text.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "kyso-totp-state v1 failures={} last_step={} locked_at={}",
            self.failures, self.last_step, self.locked_at
        )
        .into_bytes()
    }

    /// Parses the stored text (strictly: the object is ours).
    pub fn decode(v: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(v).ok()?;
        let rest = s.strip_prefix("kyso-totp-state v1 ")?;
        let mut parts = rest.split(' ');
        let failures = parts.next()?.strip_prefix("failures=")?.parse().ok()?;
        let last_step = parts.next()?.strip_prefix("last_step=")?.parse().ok()?;
        let locked_at = parts.next()?.strip_prefix("locked_at=")?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            failures,
            last_step,
            locked_at,
        })
    }
}

fn one(
    session: &Session,
    template: &[Attribute],
    what: &'static str,
) -> Result<Option<ObjectHandle>, OtpFailure> {
    let found = session
        .find_objects(template)
        .map_err(|e| OtpFailure::P11("C_FindObjects", e))?;
    match found.as_slice() {
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        _ => Err(OtpFailure::Ambiguous(what)),
    }
}

/// The seed of the personal key named by `sel`.
pub fn find_seed(session: &Session, sel: &KeySelector) -> Result<ObjectHandle, OtpFailure> {
    one(session, &seed_template(sel), "seed")?.ok_or(OtpFailure::NotEnrolled)
}

/// HMAC-SHA-1 of the 8-byte big-endian `counter` under the seed, computed by the token
/// (`C_Sign` with `CKM_SHA_1_HMAC`): the seed never leaves it.
pub fn hmac(session: &Session, seed: ObjectHandle, counter: u64) -> Result<[u8; 20], OtpFailure> {
    let mac = session
        .sign(&Mechanism::Sha1Hmac, seed, &counter.to_be_bytes())
        .map_err(|e| OtpFailure::P11("C_Sign", e))?;
    <[u8; 20]>::try_from(mac.as_slice())
        .map_err(|_| OtpFailure::Malformed(format!("an HMAC-SHA-1 of {} bytes", mac.len())))
}

/// The stored state (default when none was stored yet) and its objects. A token does not
/// let an application change a data object's value (SoftHSM refuses `C_SetAttributeValue` on
/// `CKA_VALUE`), so [`write_state`] creates the new object before it destroys the old one: a
/// crash in between leaves two, and they are merged to the most restrictive state (most
/// failures, latest step, latest lock): fail closed, never an extra attempt.
pub fn read_state(
    session: &Session,
    sel: &KeySelector,
) -> Result<(Vec<ObjectHandle>, OtpState), OtpFailure> {
    let found = session
        .find_objects(&state_template(sel))
        .map_err(|e| OtpFailure::P11("C_FindObjects", e))?;
    let mut merged: Option<OtpState> = None;
    for &h in &found {
        let attrs = session
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| OtpFailure::P11("C_GetAttributeValue", e))?;
        let value = attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        });
        let state = value.as_deref().and_then(OtpState::decode).ok_or_else(|| {
            OtpFailure::Malformed("the attempt counter object does not parse".into())
        })?;
        merged = Some(match merged {
            None => state,
            Some(m) => OtpState {
                failures: m.failures.max(state.failures),
                last_step: m.last_step.max(state.last_step),
                locked_at: m.locked_at.max(state.locked_at),
            },
        });
    }
    Ok((found, merged.unwrap_or_default()))
}

/// Stores `state` in a new object, then destroys the `old` ones (a read-write session: the
/// objects are token objects).
pub fn write_state(
    session: &Session,
    sel: &KeySelector,
    old: &[ObjectHandle],
    state: &OtpState,
) -> Result<(), OtpFailure> {
    let mut t = state_template(sel);
    t.extend([
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Value(state.encode()),
    ]);
    session
        .create_object(&t)
        .map_err(|e| OtpFailure::P11("C_CreateObject", e))?;
    for &h in old {
        session
            .destroy_object(h)
            .map_err(|e| OtpFailure::P11("C_DestroyObject", e))?;
    }
    Ok(())
}

/// Enrols the personal key named by `sel`: replaces any earlier seed and state, generates the
/// seed in the token and answers its value, read once before it is made sensitive and not
/// extractable (see the module documentation). A read-write, logged-in session.
pub fn enroll(session: &Session, sel: &KeySelector) -> Result<Zeroizing<Vec<u8>>, OtpFailure> {
    for t in [seed_template(sel), state_template(sel)] {
        let old = session
            .find_objects(&t)
            .map_err(|e| OtpFailure::P11("C_FindObjects", e))?;
        for h in old {
            session
                .destroy_object(h)
                .map_err(|e| OtpFailure::P11("C_DestroyObject", e))?;
        }
    }
    let mut t = seed_template(sel);
    t.extend([
        Attribute::ValueLen((SEED_LEN as u64).into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]);
    let seed = session
        .generate_key(&Mechanism::GenericSecretKeyGen, &t)
        .map_err(|e| OtpFailure::P11("C_GenerateKey", e))?;
    let sealed = read_once_and_seal(session, seed);
    if sealed.is_err() {
        // No seed that may have stayed readable is left behind.
        let _ = session.destroy_object(seed);
    }
    let value = sealed?;
    write_state(session, sel, &[], &OtpState::default())?;
    Ok(value)
}

fn read_once_and_seal(
    session: &Session,
    seed: ObjectHandle,
) -> Result<Zeroizing<Vec<u8>>, OtpFailure> {
    let attrs = session
        .get_attributes(seed, &[AttributeType::Value])
        .map_err(|e| OtpFailure::P11("C_GetAttributeValue", e))?;
    let value = Zeroizing::new(
        attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .ok_or_else(|| OtpFailure::Malformed("the new seed's value is not readable".into()))?,
    );
    if value.len() != SEED_LEN {
        return Err(OtpFailure::Malformed(format!(
            "a seed of {} bytes, {SEED_LEN} asked for",
            value.len()
        )));
    }
    session
        .update_attributes(
            seed,
            &[Attribute::Sensitive(true), Attribute::Extractable(false)],
        )
        .map_err(|e| OtpFailure::P11("C_SetAttributeValue (sensitive, not extractable)", e))?;
    check_sealed(session, seed)?;
    Ok(value)
}

/// The seed is sensitive, not extractable, and its value cannot be read.
pub fn check_sealed(session: &Session, seed: ObjectHandle) -> Result<(), OtpFailure> {
    let attrs = session
        .get_attributes(
            seed,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Value,
            ],
        )
        .map_err(|e| OtpFailure::P11("C_GetAttributeValue", e))?;
    let (mut sensitive, mut extractable, mut readable) = (false, true, false);
    for a in attrs {
        match a {
            Attribute::Sensitive(b) => sensitive = b,
            Attribute::Extractable(b) => extractable = b,
            Attribute::Value(_) => readable = true,
            _ => {}
        }
    }
    if sensitive && !extractable && !readable {
        Ok(())
    } else {
        Err(OtpFailure::Malformed(format!(
            "the seed is not sealed in the token (sensitive {sensitive}, extractable \
             {extractable}, value readable {readable})"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_and_strict_parse() {
        let s = OtpState {
            failures: 3,
            last_step: 59_000_000,
            locked_at: 1_700_000_000,
        };
        assert_eq!(OtpState::decode(&s.encode()), Some(s));
        assert_eq!(OtpState::decode(b"kyso-totp-state v1 failures=1"), None);
        assert_eq!(
            OtpState::decode(b"kyso-totp-state v1 failures=1 last_step=2 locked_at=3 x"),
            None
        );
    }

    #[test]
    fn labels() {
        let sel = KeySelector {
            id: Some(vec![1, 2]),
            label: Some("chairman".into()),
        };
        assert_eq!(otp_label(&sel), "kyso-totp:chairman");
        let sel = KeySelector {
            id: Some(vec![0xab]),
            label: None,
        };
        assert_eq!(otp_label(&sel), "kyso-totp:id:ab");
    }
}
