//! Low-level PKCS#11 steps shared by the running [`super::Hsm`] and the administrative
//! [`Token`] (key generation, listing, CSR signing from the command line).

use std::path::Path;

use const_oid::ObjectIdentifier;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::asn1::{AnyRef, BitString, OctetString, UintRef};
use der::{Decode, Encode};
use kyso_pki::crypto::{AlgorithmPolicy, DigestAlgorithm, oid};
use secrecy::SecretString;
use serde::Serialize;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::HsmError;
use super::mechanism::{SignMechanism, ecdsa_raw_to_der, pkcs11_input};

/// secp521r1.
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// The kind of a signing key, from its SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of `bits`.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// EC on a named curve.
    Ec {
        /// The curve's OID (P-256, P-384, P-521).
        curve: ObjectIdentifier,
        /// Size of a field element (half an `r || s` signature).
        field_bytes: usize,
    },
}

impl KeyKind {
    /// The kind of the key in `spki`.
    pub fn of(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyKind, String> {
        let alg = spki.algorithm.oid;
        if alg == oid::RSA_ENCRYPTION || alg == oid::RSASSA_PSS {
            let bits = kyso_pki::crypto::rsa_modulus_bits(spki)
                .ok_or_else(|| "malformed RSA public key".to_owned())?;
            return Ok(KeyKind::Rsa { bits });
        }
        if alg == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| "EC key without a named curve".to_owned())?;
            let field_bytes = match curve {
                c if c == oid::P256 => 32,
                c if c == oid::P384 => 48,
                c if c == P521 => 66,
                c => return Err(format!("unsupported curve {c}")),
            };
            return Ok(KeyKind::Ec { curve, field_bytes });
        }
        Err(format!("unsupported key algorithm {alg}"))
    }

    /// Whether `mechanism` can be used with this key.
    pub fn allows(self, mechanism: SignMechanism) -> bool {
        mechanism.is_rsa() == matches!(self, KeyKind::Rsa { .. })
    }

    /// The mechanism used for CSRs and key checks: RSA PKCS#1 v1.5 or ECDSA, with SHA-256.
    pub fn default_mechanism(self) -> SignMechanism {
        match self {
            KeyKind::Rsa { .. } => SignMechanism::RsaPkcs1(DigestAlgorithm::Sha256),
            KeyKind::Ec { .. } => SignMechanism::Ecdsa,
        }
    }
}

/// Loads a PKCS#11 library and calls `C_Initialize` (an already initialised library is fine).
pub(crate) fn load_module(name: &str, path: &Path) -> Result<Pkcs11, HsmError> {
    let module_err = |reason: String| HsmError::Module {
        module: name.to_owned(),
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(module_err("no such file".to_owned()));
    }
    let ctx = Pkcs11::new(path).map_err(|e| module_err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(e) => Err(module_err(e.to_string())),
    }
}

/// The slot holding the token labelled `label`.
pub(crate) fn find_slot(ctx: &Pkcs11, slot_name: &str, label: &str) -> Result<Slot, HsmError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| p11(slot_name, "C_GetSlotList", &e))?;
    let mut present = Vec::new();
    for s in slots {
        let info = ctx
            .get_token_info(s)
            .map_err(|e| p11(slot_name, "C_GetTokenInfo", &e))?;
        let l = info.label().trim_end();
        if l == label {
            return Ok(s);
        }
        present.push(l.to_owned());
    }
    Err(HsmError::TokenNotFound {
        slot: slot_name.to_owned(),
        label: label.to_owned(),
        present,
    })
}

/// `C_Login` as the user; an already logged-in token is fine.
pub(crate) fn login(
    session: &Session,
    pin: &SecretString,
    slot_name: &str,
) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => Err(HsmError::Pin {
            slot: slot_name.to_owned(),
        }),
        Err(P11Error::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked {
            slot: slot_name.to_owned(),
        }),
        Err(e) => Err(p11(slot_name, "C_Login", &e)),
    }
}

/// A PKCS#11 failure with its context.
pub(crate) fn p11(slot: &str, operation: &str, e: &P11Error) -> HsmError {
    HsmError::Pkcs11 {
        slot: slot.to_owned(),
        operation: operation.to_owned(),
        reason: e.to_string(),
    }
}

/// How a key is named on the token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySelector {
    /// `CKA_ID`.
    pub id: Option<Vec<u8>>,
    /// `CKA_LABEL`.
    pub label: Option<String>,
}

impl KeySelector {
    fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        t
    }

    fn describe(&self) -> String {
        match (&self.id, &self.label) {
            (Some(id), Some(l)) => format!("id {} label {l:?}", hex::encode(id)),
            (Some(id), None) => format!("id {}", hex::encode(id)),
            (None, Some(l)) => format!("label {l:?}"),
            (None, None) => "(no id or label)".to_owned(),
        }
    }
}

/// Objects of `class` matching `sel`.
pub(crate) fn find_objects(
    session: &Session,
    sel: &KeySelector,
    class: ObjectClass,
) -> Result<Vec<ObjectHandle>, P11Error> {
    session.find_objects(&sel.template(class))
}

/// The single private key matching `sel`.
pub(crate) fn find_private_key(
    session: &Session,
    sel: &KeySelector,
    key_name: &str,
    slot_name: &str,
) -> Result<ObjectHandle, HsmError> {
    let found = find_objects(session, sel, ObjectClass::PRIVATE_KEY)
        .map_err(|e| p11(slot_name, "C_FindObjects", &e))?;
    match found.as_slice() {
        [h] => Ok(*h),
        [] => Err(HsmError::KeyNotFound {
            key: key_name.to_owned(),
            slot: slot_name.to_owned(),
        }),
        many => Err(HsmError::Config(format!(
            "key {key_name:?}: {} private keys match {} in slot {slot_name:?}; give both id and label",
            many.len(),
            sel.describe()
        ))),
    }
}

/// Why a signing call failed.
#[derive(Debug)]
pub(crate) enum SignFailure {
    /// The PKCS#11 call failed.
    P11(P11Error),
    /// The token returned something unusable.
    Malformed(String),
}

impl std::fmt::Display for SignFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignFailure::P11(e) => write!(f, "{e}"),
            SignFailure::Malformed(s) => f.write_str(s),
        }
    }
}

/// Signs a prehashed `digest` (length already checked) with `key`.
pub(crate) fn sign_digest(
    session: &Session,
    key: ObjectHandle,
    kind: KeyKind,
    mechanism: SignMechanism,
    digest: &[u8],
) -> Result<Vec<u8>, SignFailure> {
    let (mech, input) = pkcs11_input(mechanism, digest);
    let raw = session.sign(&mech, key, &input).map_err(SignFailure::P11)?;
    match kind {
        KeyKind::Ec { field_bytes, .. } => {
            if raw.len() != 2 * field_bytes {
                return Err(SignFailure::Malformed(format!(
                    "ECDSA signature of {} bytes, expected {}",
                    raw.len(),
                    2 * field_bytes
                )));
            }
            ecdsa_raw_to_der(&raw)
                .ok_or_else(|| SignFailure::Malformed("malformed ECDSA signature".to_owned()))
        }
        KeyKind::Rsa { .. } => Ok(raw),
    }
}

/// Signs a test digest with `key` and verifies it with `spki`: proves that the HSM key is the
/// certificate's key.
pub(crate) fn check_key_matches(
    session: &Session,
    key: ObjectHandle,
    kind: KeyKind,
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<(), String> {
    let message = b"kyso: does this HSM key match its certificate?";
    let digest = DigestAlgorithm::Sha256.digest(message);
    let mechanism = kind.default_mechanism();
    let sig = sign_digest(session, key, kind, mechanism, &digest).map_err(|e| match e {
        SignFailure::P11(P11Error::Pkcs11(RvError::KeyTypeInconsistent, _)) => {
            "the HSM key is of another type than the certificate's".to_owned()
        }
        e => format!("test signature failed: {e}"),
    })?;
    let (spki, sig_alg) = match kind {
        KeyKind::Rsa { .. } => {
            let mut s = spki.clone();
            s.algorithm = AlgorithmIdentifierOwned {
                oid: oid::RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL.into()),
            };
            (
                s,
                AlgorithmIdentifierOwned {
                    oid: oid::SHA256_WITH_RSA,
                    parameters: Some(AnyRef::NULL.into()),
                },
            )
        }
        KeyKind::Ec { .. } => (
            spki.clone(),
            AlgorithmIdentifierOwned {
                oid: oid::ECDSA_WITH_SHA256,
                parameters: None,
            },
        ),
    };
    let policy = AlgorithmPolicy {
        allow_sha1: false,
        min_rsa_bits: 1024,
    };
    kyso_pki::crypto::verify_signature_prehashed(
        &spki,
        &sig_alg,
        DigestAlgorithm::Sha256,
        &digest,
        &sig,
        policy,
    )
    .map(|_| ())
    .map_err(|e| format!("a test signature does not verify with the certificate's key ({e})"))
}

/// RSAPublicKey (RFC 8017 A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// The DER SubjectPublicKeyInfo of a public key object.
pub(crate) fn public_key_spki(session: &Session, public: ObjectHandle) -> Result<Vec<u8>, String> {
    let attrs = session
        .get_attributes(
            public,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|e| e.to_string())?;
    let mut key_type = None;
    let (mut n, mut e, mut params, mut point) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let spki = match key_type {
        Some(KeyType::RSA) => {
            let (Some(n), Some(e)) = (n, e) else {
                return Err("RSA public key without modulus or exponent".to_owned());
            };
            let key = RsaPublicKey {
                modulus: UintRef::new(&n).map_err(|e| e.to_string())?,
                public_exponent: UintRef::new(&e).map_err(|e| e.to_string())?,
            }
            .to_der()
            .map_err(|e| e.to_string())?;
            SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: oid::RSA_ENCRYPTION,
                    parameters: Some(AnyRef::NULL.into()),
                },
                subject_public_key: BitString::from_bytes(&key).map_err(|e| e.to_string())?,
            }
        }
        Some(KeyType::EC) => {
            let (Some(params), Some(point)) = (params, point) else {
                return Err("EC public key without parameters or point".to_owned());
            };
            let curve = ObjectIdentifier::from_der(&params)
                .map_err(|_| "EC parameters are not a named curve".to_owned())?;
            let point = ec_point(&point)?;
            SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: oid::EC_PUBLIC_KEY,
                    parameters: Some(der::Any::from(&curve)),
                },
                subject_public_key: BitString::from_bytes(&point).map_err(|e| e.to_string())?,
            }
        }
        other => return Err(format!("unsupported key type {other:?}")),
    };
    spki.to_der().map_err(|e| e.to_string())
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point; some modules return the raw point.
fn ec_point(v: &[u8]) -> Result<Vec<u8>, String> {
    if let Ok(os) = OctetString::from_der(v)
        && os.as_bytes().first() == Some(&0x04)
    {
        return Ok(os.as_bytes().to_vec());
    }
    if v.first() == Some(&0x04) && !v.len().is_multiple_of(2) {
        return Ok(v.to_vec());
    }
    Err("unusable CKA_EC_POINT".to_owned())
}

/// Key algorithms [`Token::generate_key`] can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA 2048, e = 65537.
    Rsa2048,
    /// RSA 3072, e = 65537.
    Rsa3072,
    /// RSA 4096, e = 65537.
    Rsa4096,
    /// NIST P-256.
    EcP256,
    /// NIST P-384.
    EcP384,
}

impl KeyAlgorithm {
    /// Parses `rsa2048`, `rsa3072`, `rsa4096`, `p256` (`ec-p256`), `p384` (`ec-p384`).
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rsa2048" | "rsa-2048" => Some(Self::Rsa2048),
            "rsa3072" | "rsa-3072" => Some(Self::Rsa3072),
            "rsa4096" | "rsa-4096" => Some(Self::Rsa4096),
            "p256" | "ec-p256" | "p-256" | "secp256r1" | "prime256v1" => Some(Self::EcP256),
            "p384" | "ec-p384" | "p-384" | "secp384r1" => Some(Self::EcP384),
            _ => None,
        }
    }
}

/// What [`Token::list_keys`] reports for a key object.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// `private` or `public`.
    pub class: String,
    /// `CKA_LABEL`.
    pub label: Option<String>,
    /// `CKA_ID` in hex.
    pub id: Option<String>,
    /// `rsa`, `ec`, or the PKCS#11 name.
    pub key_type: Option<String>,
    /// `CKA_SENSITIVE` (private keys).
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE` (private keys).
    pub extractable: Option<bool>,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: Option<bool>,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: Option<bool>,
    /// `CKA_SIGN` (private keys).
    pub sign: Option<bool>,
    /// `CKA_TOKEN`.
    pub token: Option<bool>,
    /// `CKA_PRIVATE`.
    pub private: Option<bool>,
}

/// A logged-in session on one token, for administrative work (the command line). Not used by
/// the signing service, which goes through [`super::Hsm`].
#[derive(Debug)]
pub struct Token {
    label: String,
    session: Session,
    // Keeps the library loaded for as long as the session lives.
    _ctx: Pkcs11,
}

impl Token {
    /// Loads `module`, finds the token labelled `token_label`, opens a read-write session and
    /// logs in.
    pub fn open(module: &Path, token_label: &str, pin: &SecretString) -> Result<Token, HsmError> {
        let ctx = load_module("module", module)?;
        let slot = find_slot(&ctx, token_label, token_label)?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| p11(token_label, "C_OpenSession", &e))?;
        login(&session, pin, token_label)?;
        Ok(Token {
            label: token_label.to_owned(),
            session,
            _ctx: ctx,
        })
    }

    /// Enrols the holder's one-time-code credential of the personal key named by `sel`
    /// (A1): a new TOTP seed generated in the token, answered once (for the holder's
    /// authenticator) and left sensitive and not extractable (`super::otp::enroll`). The
    /// private key must be on the token.
    pub fn enroll_otp(&self, sel: &KeySelector) -> Result<zeroize::Zeroizing<Vec<u8>>, HsmError> {
        let slot = self.label.as_str();
        find_private_key(&self.session, sel, &sel.describe(), slot)?;
        super::otp::enroll(&self.session, sel).map_err(|e| HsmError::Pkcs11 {
            slot: slot.to_owned(),
            operation: "enrolling the one-time-code seed".to_owned(),
            reason: e.to_string(),
        })
    }

    /// Generates a key pair on the token (private key: token, private, sensitive, not
    /// extractable, sign only) and returns the DER SubjectPublicKeyInfo. A key with the same
    /// id or label already on the token is an error ([`HsmError::KeyExists`]).
    pub fn generate_key(
        &self,
        label: &str,
        id: &[u8],
        algorithm: KeyAlgorithm,
    ) -> Result<Vec<u8>, HsmError> {
        let slot = self.label.as_str();
        if label.is_empty() || id.is_empty() {
            return Err(HsmError::Config(
                "a new key needs a label and an id".to_owned(),
            ));
        }
        for (sel, what) in [
            (
                KeySelector {
                    id: Some(id.to_vec()),
                    label: None,
                },
                format!("a key with id {}", hex::encode(id)),
            ),
            (
                KeySelector {
                    id: None,
                    label: Some(label.to_owned()),
                },
                format!("a key labelled {label:?}"),
            ),
        ] {
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                let found = find_objects(&self.session, &sel, class)
                    .map_err(|e| p11(slot, "C_FindObjects", &e))?;
                if !found.is_empty() {
                    return Err(HsmError::KeyExists {
                        slot: slot.to_owned(),
                        what,
                    });
                }
            }
        }
        let common_pub = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let (mech, public) = match algorithm {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let bits: u64 = match algorithm {
                    KeyAlgorithm::Rsa2048 => 2048,
                    KeyAlgorithm::Rsa3072 => 3072,
                    _ => 4096,
                };
                let mut p = common_pub;
                p.push(Attribute::ModulusBits(bits.into()));
                p.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                (Mechanism::RsaPkcsKeyPairGen, p)
            }
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let curve = if algorithm == KeyAlgorithm::EcP256 {
                    oid::P256
                } else {
                    oid::P384
                };
                let params = curve
                    .to_der()
                    .map_err(|e| HsmError::Internal(e.to_string()))?;
                let mut p = common_pub;
                p.push(Attribute::EcParams(params));
                (Mechanism::EccKeyPairGen, p)
            }
        };
        let (public, _private) = self
            .session
            .generate_key_pair(&mech, &public, &private)
            .map_err(|e| p11(slot, "C_GenerateKeyPair", &e))?;
        public_key_spki(&self.session, public).map_err(|reason| HsmError::Pkcs11 {
            slot: slot.to_owned(),
            operation: "reading the new public key".to_owned(),
            reason,
        })
    }

    /// Every private and public key object on the token, with its protection flags.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>, HsmError> {
        let slot = self.label.as_str();
        let mut out = Vec::new();
        for (class, class_name) in [
            (ObjectClass::PRIVATE_KEY, "private"),
            (ObjectClass::PUBLIC_KEY, "public"),
        ] {
            let handles = self
                .session
                .find_objects(&[Attribute::Class(class)])
                .map_err(|e| p11(slot, "C_FindObjects", &e))?;
            for h in handles {
                let attrs = self
                    .session
                    .get_attributes(
                        h,
                        &[
                            AttributeType::Label,
                            AttributeType::Id,
                            AttributeType::KeyType,
                            AttributeType::Sensitive,
                            AttributeType::Extractable,
                            AttributeType::AlwaysSensitive,
                            AttributeType::NeverExtractable,
                            AttributeType::Sign,
                            AttributeType::Token,
                            AttributeType::Private,
                        ],
                    )
                    .map_err(|e| p11(slot, "C_GetAttributeValue", &e))?;
                let mut info = KeyInfo {
                    class: class_name.to_owned(),
                    label: None,
                    id: None,
                    key_type: None,
                    sensitive: None,
                    extractable: None,
                    always_sensitive: None,
                    never_extractable: None,
                    sign: None,
                    token: None,
                    private: None,
                };
                for a in attrs {
                    match a {
                        Attribute::Label(v) => {
                            info.label = Some(String::from_utf8_lossy(&v).into_owned())
                        }
                        Attribute::Id(v) => info.id = Some(hex::encode(v)),
                        Attribute::KeyType(t) => {
                            info.key_type = Some(match t {
                                KeyType::RSA => "rsa".to_owned(),
                                KeyType::EC => "ec".to_owned(),
                                t => t.to_string(),
                            })
                        }
                        Attribute::Sensitive(b) => info.sensitive = Some(b),
                        Attribute::Extractable(b) => info.extractable = Some(b),
                        Attribute::AlwaysSensitive(b) => info.always_sensitive = Some(b),
                        Attribute::NeverExtractable(b) => info.never_extractable = Some(b),
                        Attribute::Sign(b) => info.sign = Some(b),
                        Attribute::Token(b) => info.token = Some(b),
                        Attribute::Private(b) => info.private = Some(b),
                        _ => {}
                    }
                }
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The DER SubjectPublicKeyInfo of the key pair named by `sel` (from its public key object).
    pub fn public_key(&self, sel: &KeySelector) -> Result<Vec<u8>, HsmError> {
        let slot = self.label.as_str();
        let found = find_objects(&self.session, sel, ObjectClass::PUBLIC_KEY)
            .map_err(|e| p11(slot, "C_FindObjects", &e))?;
        let public = match found.as_slice() {
            [h] => *h,
            [] => {
                return Err(HsmError::KeyNotFound {
                    key: format!("public key with {}", sel.describe()),
                    slot: slot.to_owned(),
                });
            }
            _ => {
                return Err(HsmError::Config(format!(
                    "several public keys match {}",
                    sel.describe()
                )));
            }
        };
        public_key_spki(&self.session, public).map_err(|reason| HsmError::Pkcs11 {
            slot: slot.to_owned(),
            operation: "reading the public key".to_owned(),
            reason,
        })
    }

    /// Signs a prehashed `digest` with the private key named by `sel`, after checking that it
    /// matches `spki_der`.
    pub fn sign(
        &self,
        sel: &KeySelector,
        spki_der: &[u8],
        mechanism: SignMechanism,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let slot = self.label.as_str();
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
            .map_err(|e| HsmError::Config(format!("public key: {e}")))?;
        let kind = KeyKind::of(&spki).map_err(HsmError::Config)?;
        if !kind.allows(mechanism) {
            return Err(HsmError::BadMechanism {
                key: sel.describe(),
                mechanism: mechanism.name().to_owned(),
                reason: format!("the key is {kind:?}"),
            });
        }
        mechanism.check_digest(digest)?;
        let key = find_private_key(&self.session, sel, &sel.describe(), slot)?;
        check_key_matches(&self.session, key, kind, &spki).map_err(|reason| {
            HsmError::KeyMismatch {
                key: sel.describe(),
                slot: slot.to_owned(),
                reason,
            }
        })?;
        sign_digest(&self.session, key, kind, mechanism, digest).map_err(|e| HsmError::Pkcs11 {
            slot: slot.to_owned(),
            operation: "C_Sign".to_owned(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_forms() {
        let raw = {
            let mut v = vec![0x04];
            v.extend_from_slice(&[7u8; 64]);
            v
        };
        let wrapped = OctetString::new(raw.clone())
            .expect("octet string")
            .to_der()
            .expect("der");
        assert_eq!(ec_point(&wrapped).expect("wrapped"), raw);
        assert_eq!(ec_point(&raw).expect("raw"), raw);
        assert!(ec_point(&[0x02, 1, 2]).is_err());
    }

    #[test]
    fn key_algorithm_names() {
        assert_eq!(
            KeyAlgorithm::from_name("rsa2048"),
            Some(KeyAlgorithm::Rsa2048)
        );
        assert_eq!(KeyAlgorithm::from_name("P256"), Some(KeyAlgorithm::EcP256));
        assert_eq!(
            KeyAlgorithm::from_name("ec-p384"),
            Some(KeyAlgorithm::EcP384)
        );
        assert_eq!(KeyAlgorithm::from_name("dsa"), None);
    }
}
