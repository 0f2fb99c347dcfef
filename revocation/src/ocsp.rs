//! OCSP (RFC 6960): building the request and judging the response.
//!
//! Only what can be verified is believed: the response must be signed by the
//! certificate's issuer itself or by a responder certificate that the issuer
//! signed for exactly this purpose (id-kp-OCSPSigning), and must answer for
//! our CertID. Anything else is rejected with the reason, never read.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use const_oid::db::rfc6960::{ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NONCE};
use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    ResponderId, SingleResponse, TbsRequest, Version,
};

use crate::signed::{SigCheck, normalise_serial, tbs_bytes, verify_signed};
use kyso_pki::cert::Cert;
use kyso_pki::name::rfc4514;
use kyso_pki::time::{self as t, OffsetDateTime};

/// The media type of an OCSP request body.
pub(crate) const REQUEST_CONTENT_TYPE: &str = "application/ocsp-request";

/// id-sha1: responders, `openssl ocsp` included, index their answers by
/// SHA-1 CertIDs; a SHA-256 CertID is often answered `unknown`.
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Digest named by a CertID hash algorithm.
fn digest(oid: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest as d;
    let alg = match oid {
        ID_SHA1 => &d::SHA1_FOR_LEGACY_USE_ONLY,
        ID_SHA256 => &d::SHA256,
        ID_SHA384 => &d::SHA384,
        ID_SHA512 => &d::SHA512,
        _ => return None,
    };
    Some(d::digest(alg, data).as_ref().to_vec())
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-1 of a certificate's subjectPublicKey BIT STRING value: the CertID
/// issuerKeyHash of the certificates it issued, a ResponderID byKey, and the
/// issuer part of cache keys.
pub(crate) fn key_hash(cert: &Cert) -> [u8; 20] {
    sha1(
        cert.x509()
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    )
}

/// An encoded request and what its answer must match.
#[derive(Debug)]
pub(crate) struct PreparedRequest {
    /// DER of the OCSPRequest.
    pub der: Vec<u8>,
    /// The extnValue of the nonce extension sent, if any.
    nonce: Option<Vec<u8>>,
    serial: Box<[u8]>,
}

/// Builds a one-certificate request with a SHA-1 CertID.
pub(crate) fn build_request(
    cert: &Cert,
    issuer: &Cert,
    with_nonce: bool,
) -> Result<PreparedRequest, String> {
    let enc = |e: der::Error| format!("cannot encode the OCSP request: {e}");
    let name_der = issuer.subject().to_der().map_err(enc)?;
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA1,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(&name_der).to_vec()).map_err(enc)?,
        issuer_key_hash: OctetString::new(key_hash(issuer).to_vec()).map_err(enc)?,
        serial_number: cert.x509().tbs_certificate.serial_number.clone(),
    };
    let mut nonce = None;
    let mut request_extensions = None;
    if with_nonce {
        // RFC 8954: 1 to 32 octets; 16 random octets cannot repeat in practice.
        let raw: [u8; 16] = rand::random();
        let value = OctetString::new(raw.to_vec())
            .and_then(|o| o.to_der())
            .map_err(enc)?;
        request_extensions = Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(value.clone()).map_err(enc)?,
        }]);
        nonce = Some(value);
    }
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    Ok(PreparedRequest {
        der: req.to_der().map_err(enc)?,
        nonce,
        serial: normalise_serial(cert.serial()),
    })
}

/// The status an OCSP response gives for our certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OcspStatus {
    Good,
    Revoked {
        time: OffsetDateTime,
        reason: Option<CrlReason>,
    },
    Unknown,
}

/// A verified answer.
#[derive(Clone, Debug)]
pub(crate) struct OcspAnswer {
    pub status: OcspStatus,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub produced_at: OffsetDateTime,
}

/// Decodes and verifies an OCSP response to `req` about `cert`, at `now`.
pub(crate) fn verify_response(
    body: &[u8],
    req: &PreparedRequest,
    cert: &Cert,
    issuer: &Cert,
    now: OffsetDateTime,
    check: &SigCheck,
) -> Result<OcspAnswer, String> {
    // The decoder's SET OF sort is quadratic on a hostile order: bound the sets first.
    kyso_pki::ber::check_set_sizes(body, kyso_pki::ber::MAX_SET_ELEMENTS, 64)
        .map_err(|e| format!("malformed OCSP response: {e}"))?;
    let resp = OcspResponse::from_der(body).map_err(|e| format!("malformed OCSP response: {e}"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(format!(
            "OCSP responder answered {}",
            status_name(resp.response_status)
        ));
    }
    let bytes = resp
        .response_bytes
        .ok_or("OCSP response is successful but carries no response")?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(format!(
            "unsupported OCSP response type {}",
            bytes.response_type
        ));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der)
        .map_err(|e| format!("malformed BasicOCSPResponse: {e}"))?;
    let tbs = tbs_bytes(basic_der).map_err(|e| format!("malformed BasicOCSPResponse: {e}"))?;

    verify_signer(&basic, tbs, issuer, now, check)?;

    let data = &basic.tbs_response_data;
    for ext in data.response_extensions.iter().flatten() {
        if ext.critical && ext.extn_id != ID_PKIX_OCSP_NONCE {
            return Err(format!(
                "OCSP response carries the unsupported critical extension {}",
                ext.extn_id
            ));
        }
    }
    if let Some(sent) = &req.nonce {
        let echoed = data
            .response_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
            .map(|e| e.extn_value.as_bytes());
        match echoed {
            None => return Err("OCSP responder did not echo the nonce".into()),
            Some(v) if v != sent.as_slice() => {
                return Err(
                    "OCSP response nonce differs from the one sent (replayed response?)".into(),
                );
            }
            Some(_) => {}
        }
    }

    let single = data
        .responses
        .iter()
        .find(|s| cert_id_matches(&s.cert_id, &req.serial, cert, issuer))
        .ok_or("OCSP response does not answer for the certificate asked about")?;
    judge_single(single, data.produced_at.0, now, check)
}

/// Decodes and verifies an OCSP response embedded with a signature (a DSS
/// `OCSPResponse`, or a CAdES revocation-values `BasicOCSPResponse`) about `cert`:
/// signed by `issuer` or its delegated responder (valid at producedAt, when the
/// response was made), answering for `cert`'s serial under `issuer`, thisUpdate not
/// in the future at `now`. No nonce: it was not fetched for this request.
pub(crate) fn verify_embedded(
    body: &[u8],
    cert: &Cert,
    issuer: &Cert,
    now: OffsetDateTime,
    check: &SigCheck,
) -> Result<OcspAnswer, String> {
    kyso_pki::ber::check_set_sizes(body, kyso_pki::ber::MAX_SET_ELEMENTS, 64)
        .map_err(|e| format!("malformed OCSP response: {e}"))?;
    let full;
    let basic_der: &[u8] = match OcspResponse::from_der(body) {
        Ok(resp) => {
            if resp.response_status != OcspResponseStatus::Successful {
                return Err(format!(
                    "the OCSP response says {}",
                    status_name(resp.response_status)
                ));
            }
            let bytes = resp
                .response_bytes
                .ok_or("OCSP response is successful but carries no response")?;
            if bytes.response_type != ID_PKIX_OCSP_BASIC {
                return Err(format!(
                    "unsupported OCSP response type {}",
                    bytes.response_type
                ));
            }
            full = bytes.response.as_bytes().to_vec();
            &full
        }
        Err(_) => body,
    };
    let basic = BasicOcspResponse::from_der(basic_der)
        .map_err(|e| format!("malformed BasicOCSPResponse: {e}"))?;
    let tbs = tbs_bytes(basic_der).map_err(|e| format!("malformed BasicOCSPResponse: {e}"))?;
    let data = &basic.tbs_response_data;
    // The cheap test first: a DSS holds answers about many certificates.
    let serial = normalise_serial(cert.serial());
    let single = data
        .responses
        .iter()
        .find(|s| cert_id_matches(&s.cert_id, &serial, cert, issuer))
        .ok_or("the OCSP response does not answer for this certificate")?;
    let produced_at = t::from_generalized(&data.produced_at.0);
    verify_signer(&basic, tbs, issuer, produced_at, check)?;
    for ext in data.response_extensions.iter().flatten() {
        if ext.critical && ext.extn_id != ID_PKIX_OCSP_NONCE {
            return Err(format!(
                "OCSP response carries the unsupported critical extension {}",
                ext.extn_id
            ));
        }
    }
    judge_single(single, data.produced_at.0, now, check)
}

fn judge_single(
    single: &SingleResponse,
    produced_at: der::asn1::GeneralizedTime,
    now: OffsetDateTime,
    check: &SigCheck,
) -> Result<OcspAnswer, String> {
    for ext in single.single_extensions.iter().flatten() {
        if ext.critical {
            return Err(format!(
                "OCSP single response carries the unsupported critical extension {}",
                ext.extn_id
            ));
        }
    }
    let this_update = t::from_generalized(&single.this_update.0);
    let next_update = single.next_update.map(|n| t::from_generalized(&n.0));
    if this_update > now + check.clock_skew {
        return Err(format!(
            "OCSP response thisUpdate {} is in the future",
            t::rfc3339(this_update)
        ));
    }
    if let Some(nu) = next_update
        && nu < this_update
    {
        return Err(format!(
            "OCSP response nextUpdate {} is before its thisUpdate {}",
            t::rfc3339(nu),
            t::rfc3339(this_update)
        ));
    }
    let status = match single.cert_status {
        CertStatus::Good(_) => OcspStatus::Good,
        CertStatus::Unknown(_) => OcspStatus::Unknown,
        CertStatus::Revoked(info) => OcspStatus::Revoked {
            time: t::from_generalized(&info.revocation_time.0),
            reason: info.revocation_reason,
        },
    };
    Ok(OcspAnswer {
        status,
        this_update,
        next_update,
        produced_at: t::from_generalized(&produced_at),
    })
}

fn cert_id_matches(id: &CertId, serial: &[u8], cert: &Cert, issuer: &Cert) -> bool {
    if *normalise_serial(id.serial_number.as_bytes()) != *serial {
        return false;
    }
    let alg = id.hash_algorithm.oid;
    let key_bits = issuer
        .x509()
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    if digest(alg, key_bits).as_deref() != Some(id.issuer_key_hash.as_bytes()) {
        return false;
    }
    // The issuer's subject and the certificate's issuer field are the same
    // name, but may differ in encoding; accept the hash of either.
    [issuer.subject(), cert.issuer()].iter().any(|name| {
        name.to_der()
            .ok()
            .and_then(|d| digest(alg, &d))
            .is_some_and(|h| h == id.issuer_name_hash.as_bytes())
    })
}

fn responder_id_matches(rid: &ResponderId, c: &Cert) -> bool {
    match rid {
        ResponderId::ByName(name) => name == c.subject(),
        ResponderId::ByKey(hash) => hash.as_bytes() == key_hash(c).as_slice(),
    }
}

fn describe_responder_id(rid: &ResponderId) -> String {
    match rid {
        ResponderId::ByName(name) => format!("name {}", rfc4514(name)),
        ResponderId::ByKey(hash) => format!("key hash {}", hex::encode(hash.as_bytes())),
    }
}

const NOT_AUTHORISED: &str =
    "OCSP response signed by a key that is neither the issuer nor an authorised responder";

/// RFC 6960 §4.2.2.2: the signer is the CA itself, or a delegated responder
/// certificate issued directly by the CA with id-kp-OCSPSigning.
fn verify_signer(
    basic: &BasicOcspResponse,
    tbs: &[u8],
    issuer: &Cert,
    now: OffsetDateTime,
    check: &SigCheck,
) -> Result<(), String> {
    let rid = &basic.tbs_response_data.responder_id;
    let issuer_spki = &issuer.x509().tbs_certificate.subject_public_key_info;
    if responder_id_matches(rid, issuer) {
        return verify_signed(
            issuer_spki,
            &basic.signature_algorithm,
            tbs,
            basic.signature.raw_bytes(),
            check,
        )
        .map_err(|e| {
            format!("{NOT_AUTHORISED}: the signature does not verify with the issuer's key ({e})")
        });
    }
    let responder = basic
        .certs
        .iter()
        .flatten()
        .find_map(|c| {
            Cert::from_parsed(c.clone())
                .ok()
                .filter(|c| responder_id_matches(rid, c))
        })
        .ok_or_else(|| {
            format!(
                "{NOT_AUTHORISED}: responder {} is neither the issuer nor a certificate in the response",
                describe_responder_id(rid)
            )
        })?;
    let who = rfc4514(responder.subject());
    if responder.issuer() != issuer.subject() {
        return Err(format!(
            "{NOT_AUTHORISED}: responder certificate {who} is issued by {}, not by the certificate's issuer",
            rfc4514(responder.issuer())
        ));
    }
    verify_signed(
        issuer_spki,
        &responder.x509().signature_algorithm,
        responder.tbs_der(),
        responder.x509().signature.raw_bytes(),
        check,
    )
    .map_err(|e| {
        format!("{NOT_AUTHORISED}: responder certificate {who} is not signed by the issuer ({e})")
    })?;
    let eku = responder
        .extended_key_usage()
        .map_err(|e| format!("{NOT_AUTHORISED}: responder certificate {who}: {e}"))?;
    if !eku.is_some_and(|eku| eku.0.contains(&ID_KP_OCSP_SIGNING)) {
        return Err(format!(
            "{NOT_AUTHORISED}: responder certificate {who} lacks id-kp-OCSPSigning"
        ));
    }
    if now + check.clock_skew < responder.not_before() || now > responder.not_after() {
        return Err(format!(
            "{NOT_AUTHORISED}: responder certificate {who} is not valid at {} (valid {} to {})",
            t::rfc3339(now),
            t::rfc3339(responder.not_before()),
            t::rfc3339(responder.not_after())
        ));
    }
    verify_signed(
        &responder.x509().tbs_certificate.subject_public_key_info,
        &basic.signature_algorithm,
        tbs,
        basic.signature.raw_bytes(),
        check,
    )
    .map_err(|e| {
        format!("OCSP response signature does not verify with the key of responder {who} ({e})")
    })
}

fn status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}
