//! A parsed certificate, kept with its DER and the facts the verifier reports.

use std::sync::Arc;

use const_oid::{ObjectIdentifier, db::rfc3280, db::rfc4519};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;

use crate::error::{Error, Result};
use crate::name;
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
    /// Shared with the intern cache's key: the bytes are held once.
    der: Arc<[u8]>,
    cert: Certificate,
    fingerprint: [u8; 32],
    /// Where the `tbsCertificate` lies in `der` (what the issuer signed).
    tbs: std::ops::Range<usize>,
    /// The rendered identity, made on first use.
    identity: std::sync::OnceLock<SignerIdentity>,
    /// The rendered path entry fields, made on first use.
    entry: std::sync::OnceLock<EntryNames>,
    /// The identities path building compares, made on first use
    /// ([`Cert::path_identities`]): on the hot path of every verification.
    path_ids: std::sync::OnceLock<[[u8; 32]; 2]>,
}

/// Names of a certificate as the report shows them, rendered once.
#[derive(Debug, Clone)]
pub struct EntryNames {
    /// RFC 4514 subject ([`name::rfc4514`]).
    pub subject: String,
    /// RFC 4514 issuer ([`name::rfc4514`]).
    pub issuer: String,
    /// Serial, upper-case hex.
    pub serial_hex: String,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint_hex: String,
    /// Name of the algorithm the issuer signed with.
    pub signature_algorithm: String,
}

/// Parsed certificates keyed by their DER itself: content-addressed, so a hit is
/// the same certificate whatever message it came in. The lookup hashes the bytes with
/// the cache's keyed SipHash and compares them on a hit, about a tenth of the
/// instructions of the SHA-256 this cache was keyed by before (every certificate of
/// every request is looked up); the SHA-256 is taken once, when a certificate is first
/// seen, and kept in it (the fingerprint, the ESS check). Bounded by entries
/// ([`INTERN_CAPACITY`]) and by [`MAX_CERT_LEN`] per key.
fn interned() -> &'static moka::sync::Cache<Arc<[u8]>, Cert> {
    static CACHE: std::sync::OnceLock<moka::sync::Cache<Arc<[u8]>, Cert>> =
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
        if let Some(c) = interned().get(der) {
            return Ok(c);
        }
        // The decoder sorts every SET OF (a name's RDNs) with an insertion sort: a
        // hostile order would make it quadratic, so large SETs are refused first.
        crate::ber::check_set_sizes(der, crate::ber::MAX_SET_ELEMENTS, 64)?;
        let cert = Certificate::from_der(der).map_err(|e| Error::malformed("certificate", e))?;
        let tbs = tbs_range(der)?;
        let fingerprint = crate::crypto::sha256(der);
        let bytes: Arc<[u8]> = Arc::from(der);
        let c = Self::assemble(Arc::clone(&bytes), cert, fingerprint, tbs);
        interned().insert(bytes, c.clone());
        Ok(c)
    }

    /// Wraps an already decoded certificate (re-encodes it to DER).
    pub fn from_parsed(cert: Certificate) -> Result<Self> {
        let der = cert
            .to_der()
            .map_err(|e| Error::malformed("certificate", e))?;
        let tbs = tbs_range(&der)?;
        let fingerprint = crate::crypto::sha256(&der);
        Ok(Self::assemble(Arc::from(der), cert, fingerprint, tbs))
    }

    fn assemble(
        der: Arc<[u8]>,
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
            path_ids: std::sync::OnceLock::new(),
        }))
    }

    /// The identities path building compares, computed by `f` once per certificate (the
    /// definitions are path building's; the certificate only keeps them).
    pub fn path_identities(&self, f: impl FnOnce(&Self) -> [[u8; 32]; 2]) -> [[u8; 32]; 2] {
        *self.0.path_ids.get_or_init(|| f(self))
    }

    /// The identity the certificate states, rendered once.
    pub fn identity(&self) -> &SignerIdentity {
        self.0.identity.get_or_init(|| SignerIdentity::render(self))
    }

    /// Subject, issuer, serial, fingerprint and algorithm as the reports show them,
    /// rendered once per certificate.
    pub fn entry_names(&self) -> &EntryNames {
        self.0.entry.get_or_init(|| EntryNames {
            subject: name::rfc4514(self.subject()),
            issuer: name::rfc4514(self.issuer()),
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
        name::attribute(self.subject(), oid)
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
            rfc3280::PSEUDONYM,
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

/// Who a certificate names, as the reports show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignerIdentity {
    /// RFC 4514 subject ([`name::rfc4514`]).
    pub subject: String,
    /// CN.
    pub common_name: Option<String>,
    /// Title (2.5.4.12), e.g. "Chủ tịch".
    pub title: Option<String>,
    /// O.
    pub organisation: Option<String>,
    /// OU.
    pub organisational_unit: Option<String>,
    /// emailAddress in the subject, or the first rfc822Name of subjectAltName.
    pub email: Option<String>,
    /// L.
    pub locality: Option<String>,
    /// ST.
    pub province: Option<String>,
    /// C.
    pub country: Option<String>,
    /// UID (personal identification numbers are carried here).
    pub uid: Option<String>,
    /// Certificate serial number, hex.
    pub serial_number: String,
    /// RFC 4514 issuer ([`name::rfc4514`]): with the serial, what the registry's
    /// issuer and serial look-up takes.
    pub issuer: String,
    /// Personal, organisation or CA.
    pub kind: Option<CertKind>,
    /// SHA-256 of the certificate, hex.
    pub fingerprint_sha256: String,
}

impl SignerIdentity {
    /// The identity a certificate states (rendered once per certificate).
    pub fn from_cert(c: &Cert) -> Self {
        c.identity().clone()
    }

    fn render(c: &Cert) -> Self {
        Self {
            subject: name::rfc4514(c.subject()),
            common_name: c.subject_attr(rfc4519::CN),
            title: c.subject_attr(rfc4519::TITLE),
            organisation: c.subject_attr(rfc4519::O),
            organisational_unit: c.subject_attr(rfc4519::OU),
            email: c.subject_attr(rfc3280::EMAIL_ADDRESS),
            locality: c.subject_attr(rfc4519::L),
            province: c.subject_attr(rfc4519::ST),
            country: c.subject_attr(rfc4519::C),
            uid: c.subject_attr(rfc4519::UID),
            serial_number: c.serial_hex(),
            issuer: name::rfc4514(c.issuer()),
            kind: Some(c.kind()),
            fingerprint_sha256: c.fingerprint_hex(),
        }
    }
}
