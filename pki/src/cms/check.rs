//! The per-signer checks of a parsed SignedData: which certificate signed, the
//! content (or its digest) against messageDigest, the signed attributes (content
//! type, signing time, ESS signing certificate) and the signature value. Pure: no
//! I/O, no clock; paths, revocation and time are judged by the verification engine.

use super::*;

/// Checks signer `index` of `msg`: certificate, content binding, signed
/// attributes and signature value. Pure: no I/O, no clock.
///
/// `extra_certs` are looked at after the message's own certificates.
pub fn check_signer(
    msg: &SignedDataMessage,
    index: usize,
    detached: &Detached<'_>,
    extra_certs: &[Cert],
) -> SignerCheck {
    let mut check = SignerCheck {
        index,
        signer_cert: None,
        digest_algorithm: None,
        signature_algorithm: None,
        signing_time: None,
        commitment_type: None,
        signed_attributes: false,
        ess: EssStatus::Absent,
        detached: msg.is_detached(),
        warnings: msg.warnings.clone(),
        failure: None,
    };
    if let Err(f) = run_checks(msg, index, detached, extra_certs, &mut check) {
        check.failure = Some(f);
    }
    check
}

/// The signed attributes kyso interprets.
#[derive(Default)]
struct Attrs {
    content_type: Option<ObjectIdentifier>,
    message_digest: Option<Vec<u8>>,
    signing_time: Option<OffsetDateTime>,
    ess_v2: Option<SigningCertificateV2>,
    ess_v1: Option<SigningCertificate>,
    commitment_type: Option<String>,
}

/// The content, or its digest, that the signature must cover.
enum ContentRef<'a> {
    Data(&'a [u8]),
    Digest(&'a [u8]),
}

fn run_checks(
    msg: &SignedDataMessage,
    index: usize,
    detached: &Detached<'_>,
    extra_certs: &[Cert],
    check: &mut SignerCheck,
) -> std::result::Result<(), SignerFailure> {
    use SignerFailure as F;
    let signer = msg
        .signers
        .get(index)
        .ok_or_else(|| F::Format(format!("no signer at index {index}")))?;
    let si = &signer.info;
    check.signature_algorithm = Some(crypto::algorithm_name(&si.signature_algorithm.oid));
    check.digest_algorithm = DigestAlgorithm::from_oid(&si.digest_alg.oid);
    check.signed_attributes = si.signed_attrs.is_some();

    let attrs = match &si.signed_attrs {
        Some(a) => Some(parse_attrs(a)?),
        None => None,
    };
    if let Some(a) = &attrs {
        check.signing_time = a.signing_time;
        check.commitment_type = a.commitment_type.clone();
    }

    let candidates = find_candidates(msg, &si.sid, extra_certs);
    let Some(first) = candidates.first() else {
        return Err(F::NoSigningCertificate(format!(
            "no certificate matches the signer identifier {}",
            describe_sid(&si.sid)
        )));
    };
    check.signer_cert = Some(first.clone());

    let digest_alg = check.digest_algorithm.ok_or_else(|| {
        F::CryptoConstraints(format!(
            "unsupported digest algorithm {}",
            crypto::algorithm_name(&si.digest_alg.oid)
        ))
    })?;
    if digest_alg == DigestAlgorithm::Sha1 {
        return Err(F::CryptoConstraints(
            "the content digest is SHA-1, which is no longer accepted".into(),
        ));
    }

    let content = select_content(msg, detached, digest_alg, &mut check.warnings)?;

    let message: Vec<u8>;
    let mut raw_fallback: Option<&[u8]> = None;
    match (&attrs, &si.signed_attrs) {
        (Some(a), Some(signed)) => {
            check_attrs(a, msg.econtent_type, digest_alg, &content)?;
            message = signed
                .to_der()
                .map_err(|e| F::Format(format!("cannot encode the signed attributes: {e}")))?;
            if let Some(raw) = signer.signed_attrs_raw.as_deref()
                && raw != message.as_slice()
            {
                raw_fallback = Some(raw);
            }
        }
        _ => {
            if msg.econtent_type != oid::DATA {
                check.warnings.push(format!(
                    "signed attributes are required with content type {} (RFC 5652 §5.3)",
                    crypto::algorithm_name(&msg.econtent_type)
                ));
            }
            message = Vec::new();
        }
    }

    let policy = AlgorithmPolicy {
        allow_sha1: false,
        ..AlgorithmPolicy::default()
    };
    let signature = si.signature.as_bytes();
    let verify = |cert: &Cert| -> std::result::Result<(SignatureAlgorithm, bool), SigError> {
        let spki = &cert.x509().tbs_certificate.subject_public_key_info;
        let alg = &si.signature_algorithm;
        if si.signed_attrs.is_some() {
            match crypto::verify_signature(spki, alg, Some(digest_alg), &message, signature, policy)
            {
                Err(SigError::Invalid) if raw_fallback.is_some() => {
                    let raw = raw_fallback.unwrap_or_default();
                    crypto::verify_signature(spki, alg, Some(digest_alg), raw, signature, policy)
                        .map(|a| (a, true))
                }
                other => other.map(|a| (a, false)),
            }
        } else {
            match content {
                ContentRef::Data(data) => {
                    crypto::verify_signature(spki, alg, Some(digest_alg), data, signature, policy)
                        .map(|a| (a, false))
                }
                ContentRef::Digest(value) => crypto::verify_signature_prehashed(
                    spki, alg, digest_alg, value, signature, policy,
                )
                .map(|a| (a, false)),
            }
        }
    };

    if si.signed_attrs.is_none()
        && let ContentRef::Digest(_) = content
    {
        let sig_hash = crypto::signature_digest(&si.signature_algorithm, Some(digest_alg));
        if sig_hash.is_some_and(|h| h != digest_alg) {
            return Err(F::Format(
                "a digest alone cannot verify a signature without signed attributes \
                 whose hash differs from the digest algorithm"
                    .into(),
            ));
        }
    }

    let mut first_error: Option<SigError> = None;
    let mut verified: Option<(Cert, SignatureAlgorithm, bool)> = None;
    for cert in candidates.iter().take(MAX_SIGNER_CANDIDATES) {
        match verify(cert) {
            Ok((alg, fallback)) => {
                verified = Some((cert.clone(), alg, fallback));
                break;
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    let Some((cert, alg, fallback)) = verified else {
        return Err(match first_error {
            Some(SigError::Unsupported(m)) | Some(SigError::Weak(m)) => F::CryptoConstraints(m),
            Some(SigError::Invalid) | None => F::SigCrypto(
                "the signature value does not verify with the signer's public key".into(),
            ),
        });
    };
    check.signature_algorithm = Some(alg.name());
    check.signer_cert = Some(cert.clone());
    if fallback {
        check.warnings.push(
            "the signed attributes are not DER-encoded (SET OF out of order); \
             the signature verifies over the signer's own encoding"
                .into(),
        );
    }

    if let Some(a) = &attrs {
        check.ess = check_ess(a, &cert, &mut check.warnings)?;
    }
    Ok(())
}

/// Picks the content (or digest) the signature must cover.
fn select_content<'a>(
    msg: &'a SignedDataMessage,
    detached: &Detached<'a>,
    digest_alg: DigestAlgorithm,
    warnings: &mut Vec<String>,
) -> std::result::Result<ContentRef<'a>, SignerFailure> {
    use SignerFailure as F;
    match (msg.content(), *detached) {
        (Some(attached), Detached::None) => Ok(ContentRef::Data(attached)),
        (Some(attached), given) => {
            let same = match given {
                Detached::Content(c) => Some(c == attached),
                Detached::Digest { algorithm, value } => {
                    Some(algorithm.digest(attached).as_slice() == value)
                }
                Detached::None => None,
            };
            let note = match same {
                Some(false) => " (and it differs from the encapsulated content)",
                _ => "",
            };
            warnings.push(format!(
                "the signature encapsulates its content; the detached content given was \
                 ignored{note}"
            ));
            Ok(ContentRef::Data(attached))
        }
        (None, Detached::Content(c)) => Ok(ContentRef::Data(c)),
        (None, Detached::Digest { algorithm, value }) => {
            if algorithm != digest_alg {
                return Err(F::Format(format!(
                    "the digest given is {algorithm}, the signer uses {digest_alg}"
                )));
            }
            if value.len() != digest_alg.output_len() {
                return Err(F::Format(format!(
                    "a {digest_alg} digest has {} bytes, {} given",
                    digest_alg.output_len(),
                    value.len()
                )));
            }
            Ok(ContentRef::Digest(value))
        }
        (None, Detached::None) => Err(F::SignedDataNotFound(
            "detached signature: neither the content nor its digest was given".into(),
        )),
    }
}

fn decode_value<T: for<'a> Decode<'a>>(
    v: &Any,
    name: &str,
) -> std::result::Result<T, SignerFailure> {
    let der = v
        .to_der()
        .map_err(|e| SignerFailure::Format(format!("{name} attribute: {e}")))?;
    T::from_der(&der).map_err(|e| SignerFailure::Format(format!("malformed {name} attribute: {e}")))
}

fn parse_attrs(attrs: &x509_cert::attr::Attributes) -> std::result::Result<Attrs, SignerFailure> {
    use SignerFailure as F;
    let mut out = Attrs::default();
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for attr in attrs.iter() {
        let name = match attr.oid {
            oid::CONTENT_TYPE => "content-type",
            oid::MESSAGE_DIGEST => "message-digest",
            oid::SIGNING_TIME => "signing-time",
            oid::SIGNING_CERTIFICATE_V2 => "signing-certificate-v2",
            oid::SIGNING_CERTIFICATE => "signing-certificate",
            commitment::ID_AA_ETS_COMMITMENT_TYPE => "commitment-type-indication",
            _ => continue,
        };
        // RFC 5652 §11 and RFC 5035 §5.4: single instance, single value.
        if seen.contains(&attr.oid) {
            return Err(F::Format(format!("more than one {name} attribute")));
        }
        seen.push(attr.oid);
        let mut values = attr.values.iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(F::Format(format!(
                "the {name} attribute must have exactly one value"
            )));
        };
        match attr.oid {
            oid::CONTENT_TYPE => out.content_type = Some(decode_value(value, name)?),
            oid::MESSAGE_DIGEST => {
                let d: OctetString = decode_value(value, name)?;
                out.message_digest = Some(d.as_bytes().to_vec());
            }
            oid::SIGNING_TIME => {
                let time: x509_cert::time::Time = decode_value(value, name)?;
                out.signing_time = Some(t::from_x509(&time));
            }
            oid::SIGNING_CERTIFICATE_V2 => out.ess_v2 = Some(decode_value(value, name)?),
            oid::SIGNING_CERTIFICATE => out.ess_v1 = Some(decode_value(value, name)?),
            _ => {
                out.commitment_type = Some(
                    commitment::decode(value)
                        .map_err(|e| F::Format(format!("malformed {name} attribute: {e}")))?,
                );
            }
        }
    }
    Ok(out)
}

fn check_attrs(
    a: &Attrs,
    econtent_type: ObjectIdentifier,
    digest_alg: DigestAlgorithm,
    content: &ContentRef<'_>,
) -> std::result::Result<(), SignerFailure> {
    use SignerFailure as F;
    let ct = a
        .content_type
        .ok_or_else(|| F::Format("the signed attributes lack content-type".into()))?;
    if ct != econtent_type {
        return Err(F::HashFailure(format!(
            "the signed content-type {} differs from the encapsulated content type {}",
            crypto::algorithm_name(&ct),
            crypto::algorithm_name(&econtent_type)
        )));
    }
    let md = a
        .message_digest
        .as_deref()
        .ok_or_else(|| F::Format("the signed attributes lack message-digest".into()))?;
    let computed;
    let actual = match content {
        ContentRef::Data(d) => {
            computed = digest_alg.digest(d);
            computed.as_slice()
        }
        ContentRef::Digest(v) => v,
    };
    if md != actual {
        return Err(F::HashFailure(format!(
            "the {digest_alg} digest of the content does not match the signed message-digest"
        )));
    }
    Ok(())
}

fn check_ess(
    a: &Attrs,
    cert: &Cert,
    warnings: &mut Vec<String>,
) -> std::result::Result<EssStatus, SignerFailure> {
    use SignerFailure as F;
    let mut status = EssStatus::Absent;
    if let Some(v1) = &a.ess_v1 {
        let id = v1
            .certs
            .first()
            .ok_or_else(|| F::SigConstraints("signing-certificate lists no certificate".into()))?;
        if DigestAlgorithm::Sha1.digest(cert.der()).as_slice() != id.cert_hash.as_bytes() {
            return Err(F::SigConstraints(
                "the signing-certificate attribute does not match the signer's certificate".into(),
            ));
        }
        check_issuer_serial(
            id.issuer_serial.as_ref(),
            cert,
            "signing-certificate",
            warnings,
        );
        status = EssStatus::V1Matched;
    }
    if let Some(v2) = &a.ess_v2 {
        let id = v2.certs.first().ok_or_else(|| {
            F::SigConstraints("signing-certificate-v2 lists no certificate".into())
        })?;
        let hash = DigestAlgorithm::from_oid(&id.hash_algorithm.oid).ok_or_else(|| {
            F::SigConstraints(format!(
                "signing-certificate-v2 uses the unsupported hash {}",
                crypto::algorithm_name(&id.hash_algorithm.oid)
            ))
        })?;
        // SHA-256 (what CAdES signers put here) is the certificate's fingerprint, taken
        // once when the certificate was first parsed: no second hash of its DER.
        let matches = match hash {
            DigestAlgorithm::Sha256 => cert.fingerprint().as_slice() == id.cert_hash.as_bytes(),
            _ => hash.digest(cert.der()).as_slice() == id.cert_hash.as_bytes(),
        };
        if !matches {
            return Err(F::SigConstraints(
                "the signing-certificate-v2 attribute does not match the signer's certificate"
                    .into(),
            ));
        }
        check_issuer_serial(
            id.issuer_serial.as_ref(),
            cert,
            "signing-certificate-v2",
            warnings,
        );
        status = EssStatus::V2Matched;
    }
    Ok(status)
}

/// The hash is what binds; a wrong issuerSerial beside a matching hash is a
/// signer bug worth reporting, not a reason to reject.
fn check_issuer_serial(
    is: Option<&IssuerSerial>,
    cert: &Cert,
    attr: &str,
    warnings: &mut Vec<String>,
) {
    let Some(is) = is else { return };
    let issuer_ok = is
        .issuer
        .iter()
        .any(|g| matches!(g, GeneralName::DirectoryName(n) if n == cert.issuer()));
    if !issuer_ok || is.serial_number.as_bytes() != cert.serial() {
        warnings.push(format!(
            "the issuerSerial of the {attr} attribute does not name the signer's certificate"
        ));
    }
}

/// Certificates matching the signer identifier: the message's first, then
/// the caller's, without duplicates.
fn find_candidates(msg: &SignedDataMessage, sid: &SignerIdentifier, extra: &[Cert]) -> Vec<Cert> {
    let mut out: Vec<Cert> = Vec::new();
    for cert in msg.certificates.iter().chain(extra) {
        if matches_sid(cert, sid) && !out.contains(cert) {
            out.push(cert.clone());
        }
    }
    out
}

/// Whether `cert` is the one `sid` names (issuer and serial, or subject key
/// identifier): a candidate only, the signature value decides.
pub fn matches_sid(cert: &Cert, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            cert.serial() == ias.serial_number.as_bytes() && cert.issuer() == &ias.issuer
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            let wanted = ski.0.as_bytes();
            match cert.extension(oid::SUBJECT_KEY_IDENTIFIER) {
                Some((_, raw)) => OctetString::from_der(raw)
                    .map(|o| o.as_bytes() == wanted)
                    .unwrap_or(false),
                // RFC 5280 §4.2.1.2 method 1, for certificates without the extension.
                None => cert
                    .x509()
                    .tbs_certificate
                    .subject_public_key_info
                    .subject_public_key
                    .as_bytes()
                    .is_some_and(|k| DigestAlgorithm::Sha1.digest(k).as_slice() == wanted),
            }
        }
    }
}

fn describe_sid(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => format!(
            "issuer \"{}\" serial {}",
            rfc4514(&ias.issuer),
            hex::encode_upper(ias.serial_number.as_bytes())
        ),
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            format!("subject key identifier {}", hex::encode(ski.0.as_bytes()))
        }
    }
}
