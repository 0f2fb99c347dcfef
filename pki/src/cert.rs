//! A parsed certificate, kept with its DER and the facts the verifier reports.

use std::sync::Arc;

use const_oid::{ObjectIdentifier, db::rfc4519};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;

use crate::error::{Error, Result};
use crate::time::{self as t, OffsetDateTime};

/// Largest certificate accepted; real ones are a few KiB.
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// How many parsed certificates are kept for reuse. The same signer and CA
/// certificates arrive with every document of an agency, so parsing them
/// once (and rendering their names once) takes work off the hot path.
const INTERN_CAPACITY: u64 = 4096;

/// A certificate, parsed once and cheap to clone.
#[derive(Clone, Debug)]
pub struct Cert(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    der: Vec<u8>,
    cert: Certificate,
    fingerprint: [u8; 32],
    /// Where the `tbsCertificate` lies in `der` (what the issuer signed).
    tbs: std::ops::Range<usize>,
    /// The rendered identity, made on first use.
    identity: std::sync::OnceLock<crate::report::SignerIdentity>,
    /// The rendered path entry fields, made on first use.
    entry: std::sync::OnceLock<EntryNames>,
}

/// Names of a certificate as the report shows them, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct EntryNames {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) serial_hex: String,
    pub(crate) fingerprint_hex: String,
    pub(crate) signature_algorithm: String,
}

/// Parsed certificates by the SHA-256 of their DER: content-addressed, so a
/// hit is the same certificate whatever message it came in.
fn interned() -> &'static moka::sync::Cache<[u8; 32], Cert> {
    static CACHE: std::sync::OnceLock<moka::sync::Cache<[u8; 32], Cert>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| moka::sync::Cache::new(INTERN_CAPACITY))
}

/// Whether a certificate stands for a person or an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertKind {
    /// An office holder's certificate: equals a handwritten signature (D1).
    Personal,
    /// An organisation's certificate: equals its seal (D1).
    Organisation,
    /// A CA certificate.
    Ca,
}

impl Cert {
    /// Parses one DER certificate (reusing an earlier parse of the same bytes).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        if der.len() > MAX_CERT_LEN {
            return Err(Error::TooLarge {
                what: "certificate",
                limit: MAX_CERT_LEN,
            });
        }
        let fingerprint = crate::crypto::sha256(der);
        if let Some(c) = interned().get(&fingerprint) {
            return Ok(c);
        }
        let cert = Certificate::from_der(der).map_err(|e| Error::malformed("certificate", e))?;
        let tbs = tbs_range(der)?;
        let c = Self::assemble(der.to_vec(), cert, fingerprint, tbs);
        interned().insert(fingerprint, c.clone());
        Ok(c)
    }

    /// Wraps an already decoded certificate (re-encodes it to DER).
    pub fn from_parsed(cert: Certificate) -> Result<Self> {
        let der = cert
            .to_der()
            .map_err(|e| Error::malformed("certificate", e))?;
        let tbs = tbs_range(&der)?;
        let fingerprint = crate::crypto::sha256(&der);
        Ok(Self::assemble(der, cert, fingerprint, tbs))
    }

    fn assemble(
        der: Vec<u8>,
        cert: Certificate,
        fingerprint: [u8; 32],
        tbs: std::ops::Range<usize>,
    ) -> Self {
        Self(Arc::new(Inner {
            der,
            cert,
            fingerprint,
            tbs,
            identity: std::sync::OnceLock::new(),
            entry: std::sync::OnceLock::new(),
        }))
    }

    /// The identity the certificate states, rendered once.
    pub fn identity(&self) -> &crate::report::SignerIdentity {
        self.0
            .identity
            .get_or_init(|| crate::report::SignerIdentity::render(self))
    }

    pub(crate) fn entry_names(&self) -> &EntryNames {
        self.0.entry.get_or_init(|| EntryNames {
            subject: name_to_string(self.subject()),
            issuer: name_to_string(self.issuer()),
            serial_hex: self.serial_hex(),
            fingerprint_hex: self.fingerprint_hex(),
            signature_algorithm: crate::crypto::algorithm_name(
                &self.0.cert.signature_algorithm.oid,
            ),
        })
    }

    /// Parses every certificate of a PEM bundle (or one DER certificate).
    pub fn parse_many(input: &[u8]) -> Result<Vec<Self>> {
        if !input.starts_with(b"-----") && !input.iter().take(64).any(|b| *b == b'-') {
            return Ok(vec![Self::from_der(input)?]);
        }
        let text = std::str::from_utf8(input).map_err(|e| Error::malformed("PEM bundle", e))?;
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
            let block = &rest[start..];
            let end_marker = "-----END CERTIFICATE-----";
            let end = block
                .find(end_marker)
                .ok_or_else(|| Error::malformed("PEM bundle", "unterminated CERTIFICATE block"))?;
            let pem = &block[..end + end_marker.len()];
            let (label, der) = der::pem::decode_vec(pem.as_bytes())
                .map_err(|e| Error::malformed("PEM certificate", e))?;
            if label == "CERTIFICATE" {
                out.push(Self::from_der(&der)?);
            }
            rest = &block[end + end_marker.len()..];
        }
        if out.is_empty() {
            return Err(Error::malformed("PEM bundle", "no CERTIFICATE block"));
        }
        Ok(out)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.0.der
    }

    /// The DER of the `tbsCertificate` (what the issuer signed).
    pub fn tbs_der(&self) -> &[u8] {
        self.0.der.get(self.0.tbs.clone()).unwrap_or_default()
    }

    /// The decoded certificate.
    pub fn x509(&self) -> &Certificate {
        &self.0.cert
    }

    /// SHA-256 over the DER.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.0.fingerprint
    }

    /// Hex SHA-256 fingerprint, lower case without separators.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.0.fingerprint)
    }

    /// The subject name.
    pub fn subject(&self) -> &Name {
        &self.0.cert.tbs_certificate.subject
    }

    /// The issuer name.
    pub fn issuer(&self) -> &Name {
        &self.0.cert.tbs_certificate.issuer
    }

    /// The serial number as big-endian bytes.
    pub fn serial(&self) -> &[u8] {
        self.0.cert.tbs_certificate.serial_number.as_bytes()
    }

    /// The serial number in hex, as openssl prints it (upper case).
    pub fn serial_hex(&self) -> String {
        hex::encode_upper(self.serial())
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        t::from_x509(&self.0.cert.tbs_certificate.validity.not_before)
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        t::from_x509(&self.0.cert.tbs_certificate.validity.not_after)
    }

    /// Whether the subject and issuer names are the same.
    pub fn is_self_issued(&self) -> bool {
        self.subject() == self.issuer()
    }

    /// The raw value of an extension, and whether it is critical.
    pub fn extension(&self, oid: ObjectIdentifier) -> Option<(bool, &[u8])> {
        self.0
            .cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| (e.critical, e.extn_value.as_bytes()))
    }

    /// Decoded basicConstraints, if present and well-formed.
    pub fn basic_constraints(&self) -> Result<Option<BasicConstraints>> {
        self.decode_ext(
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            "basicConstraints",
        )
    }

    /// Decoded keyUsage, if present and well-formed.
    pub fn key_usage(&self) -> Result<Option<KeyUsage>> {
        self.decode_ext(const_oid::db::rfc5280::ID_CE_KEY_USAGE, "keyUsage")
    }

    /// Decoded extendedKeyUsage, if present and well-formed.
    pub fn extended_key_usage(&self) -> Result<Option<ExtendedKeyUsage>> {
        self.decode_ext(
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            "extendedKeyUsage",
        )
    }

    fn decode_ext<T: for<'a> Decode<'a>>(
        &self,
        oid: ObjectIdentifier,
        what: &'static str,
    ) -> Result<Option<T>> {
        match self.extension(oid) {
            None => Ok(None),
            Some((_, raw)) => T::from_der(raw)
                .map(Some)
                .map_err(|e| Error::malformed(what, e)),
        }
    }

    /// Whether this is a CA certificate (basicConstraints cA=TRUE).
    pub fn is_ca(&self) -> bool {
        matches!(self.basic_constraints(), Ok(Some(bc)) if bc.ca)
    }

    /// Whether keyUsage (when present) allows the given usage.
    pub fn key_usage_allows(&self, usage: KeyUsages) -> bool {
        match self.key_usage() {
            Ok(Some(ku)) => ku.0.contains(usage),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// First value of a subject attribute, as text.
    pub fn subject_attr(&self, oid: ObjectIdentifier) -> Option<String> {
        name_attr(self.subject(), oid)
    }

    /// Personal, organisation or CA, judged from the subject: a personal
    /// certificate names a person (a title, a personal ID, or a given name),
    /// an organisation certificate names only the organisation.
    pub fn kind(&self) -> CertKind {
        if self.is_ca() {
            return CertKind::Ca;
        }
        let personal = [
            rfc4519::TITLE,
            rfc4519::GIVEN_NAME,
            rfc4519::SN,
            rfc4519::UID,
            const_oid::db::rfc3280::PSEUDONYM,
        ]
        .into_iter()
        .any(|oid| self.subject_attr(oid).is_some());
        if personal {
            CertKind::Personal
        } else {
            CertKind::Organisation
        }
    }
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.0.fingerprint == other.0.fingerprint
    }
}

impl Eq for Cert {}

/// The byte range of the `tbsCertificate` inside a certificate's DER: the
/// first element inside the outer SEQUENCE.
fn tbs_range(der: &[u8]) -> Result<std::ops::Range<usize>> {
    use der::Reader;
    let bad = |e: der::Error| Error::malformed("certificate", e);
    let mut r = der::SliceReader::new(der).map_err(bad)?;
    der::Header::decode(&mut r).map_err(bad)?;
    let start = usize::try_from(r.position()).map_err(bad)?;
    let tbs = der::Header::decode(&mut r).map_err(bad)?;
    let header_len = usize::try_from(r.position()).map_err(bad)? - start;
    let body_len = usize::try_from(tbs.length).map_err(bad)?;
    let end = start + header_len + body_len;
    if end > der.len() {
        return Err(Error::malformed(
            "certificate",
            "tbsCertificate runs past the end",
        ));
    }
    Ok(start..end)
}

/// First value of an attribute of a name, decoded as text whatever its string type.
pub fn name_attr(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == oid)
        .map(|atv| any_to_string(&atv.value))
}

/// Renders a directory string (UTF8String, PrintableString, BMPString, ...).
pub fn any_to_string(v: &der::Any) -> String {
    use der::{Tag, Tagged};
    let bytes = v.value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        // TeletexString is in practice Latin-1.
        Tag::TeletexString => bytes.iter().map(|b| char::from(*b)).collect(),
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => hex::encode(bytes),
    }
}

/// RFC 4514-style rendering of a name with UTF-8 values (x509-cert's own
/// `Display` escapes non-ASCII, which is unreadable for Vietnamese names).
pub fn name_to_string(name: &Name) -> String {
    let mut parts: Vec<String> = Vec::new();
    for rdn in name.0.iter().rev() {
        let atvs: Vec<String> = rdn
            .0
            .iter()
            .map(|atv| {
                let key = attr_short_name(atv.oid);
                format!("{key}={}", escape_rfc4514(&any_to_string(&atv.value)))
            })
            .collect();
        parts.push(atvs.join("+"));
    }
    parts.join(",")
}

fn attr_short_name(oid: ObjectIdentifier) -> String {
    match oid {
        rfc4519::CN => "CN".into(),
        rfc4519::O => "O".into(),
        rfc4519::OU => "OU".into(),
        rfc4519::C => "C".into(),
        rfc4519::ST => "ST".into(),
        rfc4519::L => "L".into(),
        rfc4519::TITLE => "title".into(),
        rfc4519::UID => "UID".into(),
        rfc4519::SERIAL_NUMBER => "serialNumber".into(),
        rfc4519::GIVEN_NAME => "GN".into(),
        rfc4519::SN => "SN".into(),
        const_oid::db::rfc3280::EMAIL_ADDRESS => "emailAddress".into(),
        other => other.to_string(),
    }
}

fn escape_rfc4514(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
