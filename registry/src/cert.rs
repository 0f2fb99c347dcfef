//! What the registry reads from a certificate: fingerprint, serial, names, validity.
//!
//! Names are rendered by `kyso_pki::name`, the rendering the verifier's reports use,
//! so the issuer a report gives finds the certificate by issuer and serial.

use der::Decode;
use kyso_pki::name::rfc4514;
use x509_cert::Certificate;

use crate::error::{Error, Result};

/// The parts of a certificate the registry indexes.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    /// Serial number, uppercase hex without leading zeros (as `openssl x509 -serial` prints it).
    pub serial: String,
    /// Issuer name, RFC 4514 with UTF-8 values ([`kyso_pki::name::rfc4514`]).
    pub issuer: String,
    /// Subject name, rendered the same way.
    pub subject: String,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The subject key identifier, lowercase hex ([`subject_key_identifier`]).
    pub subject_key_identifier: String,
}

/// Parses a DER certificate; anything else (PEM, BER, trailing bytes) is refused
/// with the field named, since the registry keeps exactly the bytes the CA issued.
pub fn parse(der: &[u8], field: &'static str) -> Result<Parsed> {
    if der.is_empty() {
        return Err(Error::field(
            field,
            "empty: a DER X.509 certificate is required",
        ));
    }
    if der.starts_with(b"-----BEGIN") {
        return Err(Error::field(field, "PEM given: send the DER bytes"));
    }
    let cert = Certificate::from_der(der)
        .map_err(|e| Error::field(field, format!("not a DER X.509 certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let serial_bytes = tbs.serial_number.as_bytes();
    let trimmed: &[u8] = match serial_bytes.iter().position(|b| *b != 0) {
        Some(i) => &serial_bytes[i..],
        None => &[0],
    };
    let not_before = unix(tbs.validity.not_before.to_unix_duration(), field)?;
    let not_after = unix(tbs.validity.not_after.to_unix_duration(), field)?;
    if not_after <= not_before {
        return Err(Error::field(field, "notAfter is not after notBefore"));
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    Ok(Parsed {
        fingerprint: hex::encode(digest.as_ref()),
        serial: hex::encode_upper(trimmed),
        issuer: rfc4514(&tbs.issuer),
        subject: rfc4514(&tbs.subject),
        not_before,
        not_after,
        subject_key_identifier: subject_key_identifier(&cert),
    })
}

/// The subject key identifier a CMS SignerIdentifier names the certificate by (issue 15,
/// item 8), lowercase hex: the extension's value, or RFC 5280 §4.2.1.2 method 1 (SHA-1 of
/// the subject public key) for a certificate without it, as `kyso_pki::cms::matches_sid`
/// matches it. An extension that does not decode gives method 1 as well.
pub fn subject_key_identifier(cert: &Certificate) -> String {
    use der::oid::AssociatedOid;
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    let tbs = &cert.tbs_certificate;
    let from_extension = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SubjectKeyIdentifier::OID)
        .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok());
    match from_extension {
        Some(ski) => hex::encode(ski.0.as_bytes()),
        None => {
            let key = tbs.subject_public_key_info.subject_public_key.raw_bytes();
            let digest =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, key);
            hex::encode(digest.as_ref())
        }
    }
}

/// [`subject_key_identifier`] of a stored certificate (`der_hex`); `None` when the stored
/// bytes are not a certificate.
pub fn subject_key_identifier_of_hex(der_hex: &str) -> Option<String> {
    let der = hex::decode(der_hex).ok()?;
    let cert = Certificate::from_der(&der).ok()?;
    Some(subject_key_identifier(&cert))
}

/// Normalises a subject key identifier given by a client: hex, colons and spaces ignored,
/// any case; 1 to 64 bytes.
pub fn normalise_ski(s: &str, field: &'static str) -> Result<String> {
    let clean: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if clean.is_empty()
        || clean.len() > 128
        || clean.len() % 2 == 1
        || !clean.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(Error::field(
            field,
            "not a subject key identifier (1 to 64 bytes in hex)",
        ));
    }
    Ok(clean)
}

/// Issuer and subject of a stored certificate (`der_hex`), rendered as [`parse`] renders
/// them; `None` when the stored bytes are not a certificate.
pub fn names_of_hex(der_hex: &str) -> Option<(String, String)> {
    let der = hex::decode(der_hex).ok()?;
    let cert = Certificate::from_der(&der).ok()?;
    let tbs = &cert.tbs_certificate;
    Some((rfc4514(&tbs.issuer), rfc4514(&tbs.subject)))
}

fn unix(d: std::time::Duration, field: &'static str) -> Result<i64> {
    i64::try_from(d.as_secs()).map_err(|_| Error::field(field, "validity date out of range"))
}

/// Normalises a fingerprint given by a client: hex, colons and spaces ignored, any case.
pub fn normalise_fingerprint(s: &str, field: &'static str) -> Result<String> {
    let clean: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if clean.len() != 64 || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::field(
            field,
            "not a SHA-256 fingerprint (64 hex digits)",
        ));
    }
    Ok(clean)
}

/// Normalises a serial given by a client: hex, colons ignored, leading zeros dropped.
pub fn normalise_serial(s: &str, field: &'static str) -> Result<String> {
    let clean: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if clean.is_empty() || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::field(field, "not a hex serial number"));
    }
    let t = clean.trim_start_matches('0');
    // Whole bytes, as the DER integer holds them.
    let t = if t.is_empty() { "0" } else { t };
    Ok(if t.len() % 2 == 1 {
        format!("0{t}")
    } else {
        t.to_owned()
    })
}
