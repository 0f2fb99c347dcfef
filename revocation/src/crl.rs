//! CRLs (RFC 5280 §5): verified once, then kept as an index of serials.
//!
//! National CRLs run to megabytes; walking the ASN.1 for every certificate
//! would cost more than the signature check. A CRL is decoded and verified
//! once per download and turned into a `HashMap` keyed by serial; every
//! certificate of the issuer is then a hash look-up.
//!
//! Supported: complete CRLs of one issuer (direct CRLs), optionally scoped by
//! an issuingDistributionPoint to user or CA certificates and to named
//! distribution points. Not supported, and rejected rather than misread:
//! delta CRLs (deltaCRLIndicator), indirect CRLs (indirectCRL,
//! certificateIssuer entries), CRLs partitioned by reason (onlySomeReasons),
//! attribute-certificate CRLs, and any other critical extension.

use std::collections::HashMap;

use const_oid::db::rfc5280::{
    ID_CE_CERTIFICATE_ISSUER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use der::Decode;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::name::Name;

use crate::signed::{SigCheck, normalise_serial, tbs_bytes, verify_signed};
use kyso_pki::cert::Cert;
use kyso_pki::name::rfc4514;
use kyso_pki::time::{self as t, OffsetDateTime};

/// One revoked (or held) serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RevokedEntry {
    /// When the revocation or hold took effect.
    pub revocation_date: OffsetDateTime,
    /// The reasonCode entry extension, when present.
    pub reason: Option<CrlReason>,
}

/// Which certificates a CRL speaks for (issuingDistributionPoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Scope {
    only_user: bool,
    only_ca: bool,
    /// fullName URIs of the distribution point, when the CRL names one.
    dp_uris: Option<Vec<String>>,
    /// The CRL names its distribution point relative to the issuer's name.
    relative_dp: bool,
}

/// A verified CRL, reduced to what status decisions need.
#[derive(Debug)]
pub(crate) struct CrlIndex {
    /// The CRL issuer.
    pub issuer: Name,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    /// cRLNumber in hex, for logs.
    pub crl_number: Option<String>,
    scope: Scope,
    revoked: HashMap<Box<[u8]>, RevokedEntry>,
    /// Approximate heap footprint, for the cache weigher.
    pub approx_bytes: usize,
}

impl CrlIndex {
    /// Number of listed serials.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether `cert` is listed. `Err` when this CRL cannot speak for `cert`
    /// (another issuer, another scope), so that absence would mean nothing.
    /// `dp_url` is the distribution point URL as the certificate states it.
    pub fn lookup(&self, cert: &Cert, dp_url: &str) -> Result<Option<RevokedEntry>, String> {
        if cert.issuer() != &self.issuer {
            return Err(format!(
                "CRL is issued by {}, not by the certificate's issuer {}",
                rfc4514(&self.issuer),
                rfc4514(cert.issuer())
            ));
        }
        if self.scope.only_user && cert.is_ca() {
            return Err("CRL covers only end-entity certificates, this is a CA certificate".into());
        }
        if self.scope.only_ca && !cert.is_ca() {
            return Err(
                "CRL covers only CA certificates, this is an end-entity certificate".into(),
            );
        }
        if self.scope.relative_dp {
            return Err(
                "CRL names its distribution point relative to the issuer, which is not supported"
                    .into(),
            );
        }
        if let Some(uris) = &self.scope.dp_uris
            && !uris.iter().any(|u| u == dp_url)
        {
            return Err(format!(
                "CRL is for distribution point {}, not for {dp_url}",
                uris.join(", ")
            ));
        }
        Ok(self.revoked.get(&normalise_serial(cert.serial())).copied())
    }
}

/// Decodes (DER or PEM), verifies with `issuer`'s key and indexes a CRL.
pub(crate) fn parse_and_verify(
    body: &[u8],
    issuer: &Cert,
    now: OffsetDateTime,
    check: &SigCheck,
) -> Result<CrlIndex, String> {
    let pem_der;
    let der: &[u8] = match pem_body(body) {
        Some(text) => {
            let (label, bytes) =
                der::pem::decode_vec(text).map_err(|e| format!("malformed PEM CRL: {e}"))?;
            if label != "X509 CRL" {
                return Err(format!("PEM block {label:?} is not an X509 CRL"));
            }
            pem_der = bytes;
            &pem_der
        }
        None => body,
    };
    // The decoder's SET OF sort is quadratic on a hostile order: bound the sets first.
    kyso_pki::ber::check_set_sizes(der, kyso_pki::ber::MAX_SET_ELEMENTS, 64)
        .map_err(|e| format!("malformed CRL: {e}"))?;
    let crl = CertificateList::from_der(der).map_err(|e| format!("malformed CRL: {e}"))?;
    let tbs = &crl.tbs_cert_list;
    if &tbs.issuer != issuer.subject() {
        return Err(format!(
            "CRL is issued by {}, not by the certificate's issuer {}",
            rfc4514(&tbs.issuer),
            rfc4514(issuer.subject())
        ));
    }
    if tbs.signature != crl.signature_algorithm {
        return Err("CRL signature algorithm differs inside and outside the signed part".into());
    }
    let tbs_der = tbs_bytes(der).map_err(|e| format!("malformed CRL: {e}"))?;
    verify_signed(
        &issuer.x509().tbs_certificate.subject_public_key_info,
        &crl.signature_algorithm,
        tbs_der,
        crl.signature.raw_bytes(),
        check,
    )
    .map_err(|e| format!("CRL signature does not verify with the issuer's key ({e})"))?;

    let this_update = t::from_x509(&tbs.this_update);
    let next_update = tbs.next_update.as_ref().map(t::from_x509);
    if this_update > now + check.clock_skew {
        return Err(format!(
            "CRL thisUpdate {} is in the future",
            t::rfc3339(this_update)
        ));
    }
    if let Some(nu) = next_update
        && nu < this_update
    {
        return Err(format!(
            "CRL nextUpdate {} is before its thisUpdate {}",
            t::rfc3339(nu),
            t::rfc3339(this_update)
        ));
    }

    let mut scope = Scope::default();
    let mut crl_number = None;
    for ext in tbs.crl_extensions.iter().flatten() {
        match ext.extn_id {
            ID_CE_DELTA_CRL_INDICATOR => {
                return Err("delta CRLs are not supported".into());
            }
            ID_CE_ISSUING_DISTRIBUTION_POINT => {
                let idp = IssuingDistributionPoint::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| format!("malformed issuingDistributionPoint: {e}"))?;
                scope = idp_scope(&idp)?;
            }
            ID_CE_CRL_NUMBER => {
                crl_number = der::asn1::Uint::from_der(ext.extn_value.as_bytes())
                    .ok()
                    .map(|n| hex::encode_upper(n.as_bytes()));
            }
            other if ext.critical => {
                return Err(format!(
                    "CRL carries the unsupported critical extension {other}"
                ));
            }
            // authorityKeyIdentifier, issuerAltName, freshestCRL (deltas are
            // not used), expiredCertsOnCRL...: informative for us.
            _ => {}
        }
    }

    let listed = tbs.revoked_certificates.as_deref().unwrap_or_default();
    let mut revoked = HashMap::with_capacity(listed.len());
    let mut approx_bytes = 512 + name_len(&tbs.issuer);
    for entry in listed {
        let mut reason = None;
        for ext in entry.crl_entry_extensions.iter().flatten() {
            match ext.extn_id {
                ID_CE_CRL_REASONS => {
                    reason = Some(
                        CrlReason::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| format!("malformed CRL reasonCode: {e}"))?,
                    );
                }
                ID_CE_CERTIFICATE_ISSUER => {
                    return Err(
                        "indirect CRLs (certificateIssuer entries) are not supported".into(),
                    );
                }
                other if ext.critical => {
                    return Err(format!(
                        "CRL entry carries the unsupported critical extension {other}"
                    ));
                }
                // invalidityDate is informative: the revocation takes effect
                // at revocationDate (the date the CA acted).
                _ => {}
            }
        }
        if reason == Some(CrlReason::RemoveFromCRL) {
            // Only meaningful in delta CRLs (RFC 5280 §5.3.1): in a complete
            // CRL the serial is simply not revoked any more.
            continue;
        }
        let serial = normalise_serial(entry.serial_number.as_bytes());
        approx_bytes += serial.len() + ENTRY_OVERHEAD;
        revoked.entry(serial).or_insert(RevokedEntry {
            revocation_date: t::from_x509(&entry.revocation_date),
            reason,
        });
    }
    Ok(CrlIndex {
        issuer: tbs.issuer.clone(),
        this_update,
        next_update,
        crl_number,
        scope,
        revoked,
        approx_bytes,
    })
}

/// Per-entry cost beyond the serial bytes: the boxed slice header, the
/// entry value and the hash table's slot and control byte.
const ENTRY_OVERHEAD: usize = size_of::<Box<[u8]>>() + size_of::<RevokedEntry>() + 16 + 8;

fn name_len(n: &Name) -> usize {
    der::Encode::encoded_len(n)
        .ok()
        .and_then(|l| usize::try_from(u32::from(l)).ok())
        .unwrap_or(256)
}

fn idp_scope(idp: &IssuingDistributionPoint) -> Result<Scope, String> {
    if idp.indirect_crl {
        return Err("indirect CRLs are not supported".into());
    }
    if idp.only_some_reasons.is_some() {
        return Err("CRLs partitioned by reason (onlySomeReasons) are not supported".into());
    }
    if idp.only_contains_attribute_certs {
        return Err("CRL covers only attribute certificates".into());
    }
    let mut scope = Scope {
        only_user: idp.only_contains_user_certs,
        only_ca: idp.only_contains_ca_certs,
        ..Scope::default()
    };
    match &idp.distribution_point {
        None => {}
        Some(DistributionPointName::FullName(names)) => {
            scope.dp_uris = Some(
                names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                        _ => None,
                    })
                    .collect(),
            );
        }
        Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => scope.relative_dp = true,
    }
    Ok(scope)
}

/// The PEM text of a CRL served as PEM (some CAs do), from its BEGIN line.
fn pem_body(body: &[u8]) -> Option<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    body[start..].starts_with(BEGIN).then(|| &body[start..])
}
