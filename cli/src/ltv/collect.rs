//! The validation data of a document's signatures and document time-stamps, as the
//! DSS wants it (ETSI EN 319 142-1 §5.4.2): for each one, the path of its signer
//! (or its TSA) to the anchor, and for every certificate of that path but the anchor
//! the OCSP response or CRL that answers for it now, fetched under the verifier's
//! fetch policy. Signature time-stamps inside the CMS (B-T) are covered too: their
//! TSA's path and revocation data go into the same VRI entry.

use kyso_pades::PadesLimits;
use kyso_pades::ltv::{SignatureValidationData, signature_contents};
use kyso_pki::cert::Cert;
use kyso_pki::cms::{self, Detached};
use kyso_pki::time::OffsetDateTime;
use kyso_validation::report::RevocationPolicy;
use kyso_validation::verify::Verifier;

/// What was gathered for one signature field.
pub(crate) struct Collected {
    pub field_name: String,
    pub document_timestamp: bool,
    /// Whether the CMS carries a signature time-stamp (B-T).
    pub signature_timestamp: bool,
    pub data: SignatureValidationData,
    /// Sources that gave nothing (no path, no revocation answer).
    pub problems: Vec<String>,
}

/// The last document time-stamp's TSA certificate and digest, for the renewal rule.
pub(crate) struct LastTimestamp {
    pub tsa_cert: Cert,
    pub digest_algorithm: Option<kyso_pki::crypto::DigestAlgorithm>,
}

/// The signature fields of `pdf` with their validation data.
pub(crate) async fn collect(
    verifier: &Verifier,
    pdf: &[u8],
    now: OffsetDateTime,
    policy: RevocationPolicy,
) -> Result<(Vec<Collected>, Option<LastTimestamp>), String> {
    let sigs = signature_contents(pdf, &PadesLimits::default()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(sigs.len());
    let mut last = None;
    for s in sigs {
        let mut c = Collected {
            field_name: s.field_name.clone(),
            document_timestamp: s.document_timestamp,
            signature_timestamp: false,
            data: SignatureValidationData {
                contents: s.contents.clone(),
                ..SignatureValidationData::default()
            },
            problems: Vec::new(),
        };
        let cms_bytes = s.cms();
        match cms::parse(cms_bytes) {
            Err(e) => c
                .problems
                .push(format!("{}: the CMS cannot be read: {e}", s.field_name)),
            Ok(msg) => {
                let check = cms::check_signer(&msg, 0, &Detached::None, &[]);
                if let Some(signer) = &check.signer_cert {
                    add_path(verifier, signer, msg.certificates(), now, policy, &mut c).await;
                    if s.document_timestamp {
                        last = Some(LastTimestamp {
                            tsa_cert: signer.clone(),
                            digest_algorithm: check.digest_algorithm,
                        });
                    }
                } else {
                    c.problems.push(format!(
                        "{}: no signer certificate in the CMS",
                        s.field_name
                    ));
                }
                for token in signature_timestamps(&msg) {
                    c.signature_timestamp = true;
                    match cms::parse(&token) {
                        Ok(t) => {
                            let tc = cms::check_signer(&t, 0, &Detached::None, &[]);
                            if let Some(tsa) = &tc.signer_cert {
                                add_path(verifier, tsa, t.certificates(), now, policy, &mut c)
                                    .await;
                            }
                        }
                        Err(e) => c.problems.push(format!(
                            "{}: the signature time-stamp cannot be read: {e}",
                            s.field_name
                        )),
                    }
                }
            }
        }
        out.push(c);
    }
    Ok((out, last))
}

/// The DER tokens of the first signer's signature time-stamp attributes.
fn signature_timestamps(msg: &cms::SignedDataMessage) -> Vec<Vec<u8>> {
    cms::embedded(msg, 0)
        .map(|e| e.timestamp_tokens)
        .unwrap_or_default()
}

/// Adds the path of `leaf` (to the anchor) and the revocation data of every
/// certificate on it but the anchor.
async fn add_path(
    verifier: &Verifier,
    leaf: &Cert,
    pool: &[Cert],
    now: OffsetDateTime,
    policy: RevocationPolicy,
    c: &mut Collected,
) {
    let path = match verifier.paths().build(leaf, pool).await {
        Ok(p) => p,
        Err(e) => {
            c.problems.push(format!(
                "{}: no path to a trust anchor for {}: {e:?}",
                c.field_name,
                leaf.entry_names().subject
            ));
            return;
        }
    };
    for pc in &path.certs {
        push_unique(&mut c.data.certs, pc.cert.der());
    }
    for pair in path.certs.windows(2) {
        let (cert, issuer) = (&pair[0].cert, &pair[1].cert);
        let raw = verifier
            .revocation()
            .fetch_raw(cert, issuer, now, policy)
            .await;
        // A certificate that names no OCSP responder and no CRL (a TSA's, often) has
        // nothing to fetch; one whose sources all failed is worth a warning.
        if raw.is_empty() && !raw.errors.is_empty() {
            c.problems.push(format!(
                "{}: no revocation data for {}: {}",
                c.field_name,
                cert.entry_names().subject,
                raw.errors.join("; ")
            ));
        }
        for o in raw.ocsps {
            // The responder's certificates travel inside the response; its path is
            // the CA's, already listed.
            push_unique(&mut c.data.ocsps, &o);
        }
        for crl in raw.crls {
            push_unique(&mut c.data.crls, &crl);
        }
    }
}

fn push_unique(list: &mut Vec<Vec<u8>>, item: &[u8]) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_vec());
    }
}
