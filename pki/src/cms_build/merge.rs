//! Co-signatures: two SignedData over the same content merged into one
//! ([`add_signers`]), element by element, without re-encoding what was signed.

use super::*;

/// Most elements accepted in any SET OF of an input (as [`crate::cms::parse`]).
const MAX_MERGE_SET_ELEMENTS: usize = 256;

/// Merges the SignerInfos of `other` into `existing`: both are CMS
/// `ContentInfo`s holding a SignedData (DER, or BER as `openssl cms -stream`
/// writes it) over the same content. The result is DER.
///
/// - The encapsulated content is `existing`'s; if `existing` is detached and
///   `other` attached, `other`'s (the result is then attached).
/// - The eContentTypes must be equal ([`BuildError::ContentTypeMismatch`]).
/// - Both attached: the contents must be equal ([`BuildError::ContentMismatch`]).
/// - At least one detached: every SignerInfo of `other` must carry a
///   message-digest attribute ([`BuildError::NoMessageDigest`]). If the
///   content is known (one side is attached), it must equal the digest of
///   the content with the SignerInfo's digest algorithm; so must the
///   message-digest attributes of `existing`'s SignerInfos when `existing`
///   is the detached side (SignerInfos without one are left to the
///   verifier). If neither is attached, it must equal the message-digest of
///   every SignerInfo of `existing` with the same digest algorithm; with no
///   algorithm in common nothing can be compared and the merge is accepted
///   (the verifier checks each signer against the content).
/// - version: the higher of the two; digestAlgorithms: the union by OID
///   (the SignerInfos' digest algorithms included); certificates and crls:
///   the unions, duplicates (same bytes) dropped.
/// - signerInfos: `existing`'s then `other`'s, each kept byte for byte (as
///   normalised from BER to DER: lengths only), a SignerInfo present in both
///   kept once, so merging twice is harmless. Being a DER `SET OF`, the
///   SignerInfos are written sorted by their encodings, not in merge order:
///   which signature came first is told by the signing-time attributes, not
///   by the position.
///
/// No signature is verified here: verify the result.
pub fn add_signers(existing: &[u8], other: &[u8]) -> Result<Vec<u8>, BuildError> {
    let a = RawSignedData::split(existing, "existing")?;
    let b = RawSignedData::split(other, "other")?;
    if a.econtent_type != b.econtent_type {
        return Err(BuildError::ContentTypeMismatch {
            existing: a.econtent_type,
            other: b.econtent_type,
        });
    }
    check_same_content(&a, &b)?;

    let version = a.version.max(b.version);

    // digestAlgorithms: the union by OID, the first encoding seen kept.
    let mut digest_algorithms: Vec<(ObjectIdentifier, Vec<u8>)> = Vec::new();
    let signer_digests = a
        .signer_infos
        .iter()
        .chain(&b.signer_infos)
        .map(|s| {
            Ok((
                s.info.digest_alg.oid,
                s.info.digest_alg.to_der().map_err(enc)?,
            ))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    for (oid, raw) in a
        .digest_algorithms
        .iter()
        .chain(&b.digest_algorithms)
        .chain(&signer_digests)
    {
        if !digest_algorithms.iter().any(|(o, _)| o == oid) {
            digest_algorithms.push((*oid, raw.clone()));
        }
    }
    let digest_algorithms: Vec<Vec<u8>> = digest_algorithms.into_iter().map(|(_, r)| r).collect();

    let encap = if a.content.is_some() || b.content.is_none() {
        &a.encap_raw
    } else {
        &b.encap_raw
    };
    let certificates = union(&a.certificates, &b.certificates);
    let crls = union(&a.crls, &b.crls);
    let existing_signers: Vec<Vec<u8>> = a.signer_infos.iter().map(|s| s.raw.clone()).collect();
    let other_signers: Vec<Vec<u8>> = b.signer_infos.iter().map(|s| s.raw.clone()).collect();
    let signer_infos = union(&existing_signers, &other_signers);

    let mut body = version.to_der().map_err(enc)?;
    body.extend(der_set(0x31, digest_algorithms)?);
    body.extend_from_slice(encap);
    if !certificates.is_empty() {
        body.extend(der_set(0xA0, certificates)?);
    }
    if !crls.is_empty() {
        body.extend(der_set(0xA1, crls)?);
    }
    body.extend(der_set(0x31, signer_infos)?);
    let signed_data = der_tlv(0x30, &body)?;
    let mut ci = cms_oid::SIGNED_DATA.to_der().map_err(enc)?;
    ci.extend(der_tlv(0xA0, &signed_data)?);
    let out = der_tlv(0x30, &ci)?;

    // What kyso's own parser cannot read must not leave here (too many
    // signers, for one).
    crate::cms::parse(&out)
        .map_err(|e| BuildError::Encoding(format!("the merged CMS does not parse: {e}")))?;
    Ok(out)
}

/// One SignerInfo: its DER and its decoding.
#[derive(Debug)]
struct RawSigner {
    raw: Vec<u8>,
    info: SignerInfo,
}

/// A SignedData taken apart into the DER of its elements, so that nothing
/// is re-encoded when it is put together again.
#[derive(Debug)]
struct RawSignedData {
    version: CmsVersion,
    /// (OID, DER AlgorithmIdentifier), without duplicate OIDs.
    digest_algorithms: Vec<(ObjectIdentifier, Vec<u8>)>,
    /// The DER EncapsulatedContentInfo.
    encap_raw: Vec<u8>,
    econtent_type: ObjectIdentifier,
    /// The eContent's contents octets; `None` when detached.
    content: Option<Vec<u8>>,
    /// DER CertificateChoices, without duplicates.
    certificates: Vec<Vec<u8>>,
    /// DER RevocationInfoChoice, without duplicates.
    crls: Vec<Vec<u8>>,
    signer_infos: Vec<RawSigner>,
}

impl RawSignedData {
    fn split(input: &[u8], which: &'static str) -> Result<Self, BuildError> {
        let bad = |reason: String| BuildError::InvalidCms { which, reason };
        if input.len() > MAX_CMS_LEN {
            return Err(bad(format!("larger than {MAX_CMS_LEN} bytes")));
        }
        let limits = Limits {
            max_len: MAX_CMS_LEN,
            ..Limits::default()
        };
        let der = ber::to_der(input, limits).map_err(|e| bad(e.to_string()))?;
        ber::check_set_sizes(&der, MAX_MERGE_SET_ELEMENTS, limits.max_depth)
            .map_err(|e| bad(e.to_string()))?;

        let (ci, _) = ber::read_tlv(&der).map_err(|e| bad(e.to_string()))?;
        expect(&ci, 0x30, "ContentInfo SEQUENCE").map_err(&bad)?;
        let mut kids = ber::children(ci.content);
        let mut next = |field: &str| -> Result<Tlv<'_>, BuildError> {
            match kids.next() {
                Some(Ok(t)) => Ok(t),
                Some(Err(e)) => Err(bad(e.to_string())),
                None => Err(bad(format!("missing {field}"))),
            }
        };
        let ct = next("contentType")?;
        let content_type =
            ObjectIdentifier::from_der(ct.raw).map_err(|e| bad(format!("contentType: {e}")))?;
        if content_type != cms_oid::SIGNED_DATA {
            return Err(bad(format!(
                "content type {content_type} ({}), expected id-signedData",
                crypto::algorithm_name(&content_type)
            )));
        }
        let explicit = next("content")?;
        expect(&explicit, 0xA0, "[0] EXPLICIT content").map_err(&bad)?;
        if kids.next().is_some() {
            return Err(bad("unexpected element after the content".into()));
        }
        let (sd, rest) = ber::read_tlv(explicit.content).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("unexpected data after the SignedData".into()));
        }
        expect(&sd, 0x30, "SignedData SEQUENCE").map_err(&bad)?;

        let mut kids = ber::children(sd.content);
        let mut next = |field: &str| -> Result<Tlv<'_>, BuildError> {
            match kids.next() {
                Some(Ok(t)) => Ok(t),
                Some(Err(e)) => Err(bad(e.to_string())),
                None => Err(bad(format!("missing {field}"))),
            }
        };
        let version =
            CmsVersion::from_der(next("version")?.raw).map_err(|e| bad(format!("version: {e}")))?;

        let digest_set = next("digestAlgorithms")?;
        expect(&digest_set, 0x31, "digestAlgorithms SET").map_err(&bad)?;
        let mut digest_algorithms: Vec<(ObjectIdentifier, Vec<u8>)> = Vec::new();
        for d in ber::children(digest_set.content) {
            let d = d.map_err(|e| bad(e.to_string()))?;
            let id = AlgorithmIdentifierOwned::from_der(d.raw)
                .map_err(|e| bad(format!("digest algorithm: {e}")))?;
            if !digest_algorithms.iter().any(|(o, _)| *o == id.oid) {
                digest_algorithms.push((id.oid, d.raw.to_vec()));
            }
        }

        let encap_tlv = next("encapContentInfo")?;
        let encap = EncapsulatedContentInfo::from_der(encap_tlv.raw)
            .map_err(|e| bad(format!("encapContentInfo: {e}")))?;

        let mut element = next("signerInfos")?;
        let mut certificates = Vec::new();
        if element.tag == 0xA0 {
            certificates = distinct_children(&element).map_err(&bad)?;
            element = next("signerInfos")?;
        }
        let mut crls = Vec::new();
        if element.tag == 0xA1 {
            crls = distinct_children(&element).map_err(&bad)?;
            element = next("signerInfos")?;
        }
        expect(&element, 0x31, "signerInfos SET").map_err(&bad)?;
        if kids.next().is_some() {
            return Err(bad("unexpected element after signerInfos".into()));
        }
        let mut signer_infos = Vec::new();
        for (index, s) in ber::children(element.content).enumerate() {
            let s = s.map_err(|e| bad(e.to_string()))?;
            let info = SignerInfo::from_der(s.raw)
                .map_err(|e| bad(format!("SignerInfo #{index}: {e}")))?;
            signer_infos.push(RawSigner {
                raw: s.raw.to_vec(),
                info,
            });
        }
        if signer_infos.is_empty() {
            return Err(bad("no SignerInfo".into()));
        }

        Ok(Self {
            version,
            digest_algorithms,
            encap_raw: encap_tlv.raw.to_vec(),
            econtent_type: encap.econtent_type,
            // RFC 5652 §5.4: the digest is over the contents octets of the
            // eContent OCTET STRING (after BER normalisation, one primitive
            // string).
            content: encap.econtent.as_ref().map(|c| c.value().to_vec()),
            certificates,
            crls,
            signer_infos,
        })
    }
}

/// The checks of [`add_signers`] that the two CMS are over the same content.
fn check_same_content(a: &RawSignedData, b: &RawSignedData) -> Result<(), BuildError> {
    let invalid =
        |which: &'static str| move |reason: String| BuildError::InvalidCms { which, reason };
    if let (Some(x), Some(y)) = (&a.content, &b.content) {
        if x != y {
            return Err(BuildError::ContentMismatch(format!(
                "the encapsulated contents differ ({} and {} bytes)",
                x.len(),
                y.len()
            )));
        }
        return Ok(());
    }
    // At least one is detached.
    let known = a.content.as_deref().or(b.content.as_deref());
    let mut other_digests = Vec::with_capacity(b.signer_infos.len());
    for (index, s) in b.signer_infos.iter().enumerate() {
        let md = message_digest(&s.info)
            .map_err(invalid("other"))?
            .ok_or(BuildError::NoMessageDigest { index })?;
        other_digests.push(md);
    }
    match known {
        Some(content) => {
            let mut to_check: Vec<(&'static str, usize, &SignerInfo, Vec<u8>)> = b
                .signer_infos
                .iter()
                .zip(other_digests)
                .enumerate()
                .map(|(i, (s, md))| ("other", i, &s.info, md))
                .collect();
            if a.content.is_none() {
                // The existing signers get bound to the other's content.
                for (i, s) in a.signer_infos.iter().enumerate() {
                    if let Some(md) = message_digest(&s.info).map_err(invalid("existing"))? {
                        to_check.push(("existing", i, &s.info, md));
                    }
                }
            }
            for (which, index, info, md) in to_check {
                let Some(alg) = DigestAlgorithm::from_oid(&info.digest_alg.oid) else {
                    return Err(BuildError::InvalidCms {
                        which,
                        reason: format!(
                            "SignerInfo #{index} uses the unsupported digest algorithm {}",
                            crypto::algorithm_name(&info.digest_alg.oid)
                        ),
                    });
                };
                if alg.digest(content) != md {
                    return Err(BuildError::ContentMismatch(format!(
                        "the {alg} message-digest of signer #{index} of the {which} CMS \
                         does not match the encapsulated content"
                    )));
                }
            }
        }
        None => {
            for (index, (s, md)) in b.signer_infos.iter().zip(&other_digests).enumerate() {
                for (j, e) in a.signer_infos.iter().enumerate() {
                    if e.info.digest_alg.oid != s.info.digest_alg.oid {
                        continue;
                    }
                    let Some(emd) = message_digest(&e.info).map_err(invalid("existing"))? else {
                        continue;
                    };
                    if &emd != md {
                        return Err(BuildError::ContentMismatch(format!(
                            "the {} message-digest of signer #{index} of the other CMS differs \
                             from that of signer #{j} of the existing CMS",
                            crypto::algorithm_name(&s.info.digest_alg.oid)
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The value of the message-digest signed attribute, if any.
fn message_digest(si: &SignerInfo) -> Result<Option<Vec<u8>>, String> {
    let Some(attrs) = &si.signed_attrs else {
        return Ok(None);
    };
    let mut found = attrs.iter().filter(|a| a.oid == cms_oid::MESSAGE_DIGEST);
    let Some(attr) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err("more than one message-digest attribute".into());
    }
    let mut values = attr.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err("the message-digest attribute must have exactly one value".into());
    };
    let md: OctetString = value
        .decode_as()
        .map_err(|e| format!("malformed message-digest attribute: {e}"))?;
    Ok(Some(md.as_bytes().to_vec()))
}

fn expect(tlv: &Tlv<'_>, tag: u8, what: &str) -> Result<(), String> {
    if tlv.tag == tag {
        Ok(())
    } else {
        Err(format!("expected {what}, found tag 0x{:02x}", tlv.tag))
    }
}

/// The DER of the children of a constructed element, duplicates dropped.
fn distinct_children(set: &Tlv<'_>) -> Result<Vec<Vec<u8>>, String> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in ber::children(set.content) {
        let c = c.map_err(|e| e.to_string())?;
        if !out.iter().any(|o| o.as_slice() == c.raw) {
            out.push(c.raw.to_vec());
        }
    }
    Ok(out)
}

/// `first` then the elements of `second` not in `first` (same bytes).
fn union(first: &[Vec<u8>], second: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = first.to_vec();
    for e in second {
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

/// A DER SET OF (or IMPLICIT-tagged SET OF) of already encoded elements,
/// sorted by encoding (X.690 §11.6: complete TLVs never compare as
/// prefix-equal, so a byte-wise sort is the DER order).
fn der_set(tag: u8, mut elements: Vec<Vec<u8>>) -> Result<Vec<u8>, BuildError> {
    elements.sort();
    elements.dedup();
    der_tlv(tag, &elements.concat())
}

fn der_tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    der::Length::try_from(content.len())
        .and_then(|l| l.encode_to_vec(&mut out).map(|_| ()))
        .map_err(enc)?;
    out.extend_from_slice(content);
    Ok(out)
}
