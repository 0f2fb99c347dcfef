//! PAdES B-LT and B-LTA for a signed PDF (N1, R1, D7): a DSS incremental update with the
//! validation data of the signature (the signer's path and its OCSP/CRL DER,
//! `ltdata::ValidationSource`; the TSA's certificates and their revocation data for its
//! signature timestamp), then, for B-LTA or for a signature that carries no timestamp, a
//! document timestamp revision (ETSI EN 319 142-1 §5.5: it is what gives a B-B signature
//! a proof of existence, and it covers the DSS). Both are incremental updates: the signed
//! bytes stay the prefix of the result (D7). Used by SignPdf (within the budget) and by the
//! background upgrade (without one).

use kyso_pades::PadesLimits;
use kyso_pades::ltv::{
    DocTimestampRequest, SignatureValidationData, add_dss, prepare_document_timestamp,
    signature_contents,
};
use kyso_pki::cert::Cert;
use time::OffsetDateTime;

use crate::ltdata::{ValidationSource, signature_tokens};
use crate::timestamp::Stamper;

/// Where the pieces come from: the TSA and the validation data source.
#[derive(Clone, Copy, Debug)]
pub struct With<'a> {
    /// The TSA (document timestamp; its trust for the TSA's path).
    pub stamper: &'a Stamper,
    /// The validation data (cached per certificate).
    pub source: &'a ValidationSource,
}

/// What [`extend`] added.
#[derive(Clone, Debug)]
pub struct Extended {
    /// The document with the DSS (and the document timestamp).
    pub pdf: Vec<u8>,
    /// The document timestamp's field, if one was added.
    pub document_timestamp: Option<String>,
}

/// Adds the DSS for the last signature of `pdf` (made by `cert` with `chain`) and, when
/// `doc_timestamp` (or when the signature carries no signature timestamp), a document
/// timestamp revision. `Err` (nothing changed) says why not.
pub async fn extend(
    pdf: &[u8],
    cert: &Cert,
    chain: &[Cert],
    doc_timestamp: bool,
    with: With<'_>,
    limits: &PadesLimits,
    now: OffsetDateTime,
) -> Result<Extended, String> {
    let With { stamper, source } = with;
    let sigs = signature_contents(pdf, limits).map_err(|e| format!("signatures: {e}"))?;
    let sig = sigs
        .iter()
        .rev()
        .find(|s| !s.document_timestamp)
        .ok_or("the document has no signature")?;
    let mut data = SignatureValidationData {
        contents: sig.contents.clone(),
        ..Default::default()
    };
    let own = source.get(cert, chain, now).await?;
    merge(&mut data, &own);
    // The TSA of the signature timestamp: its certificates and their revocation data,
    // the path built to the TSA anchors.
    let tokens = kyso_pki::cms::parse(sig.cms())
        .map(|m| signature_tokens(&m))
        .unwrap_or_default();
    // A signature without its own timestamp gets its proof of existence from a document
    // timestamp (ETSI EN 319 142-1: B-LTA's, over the signature and the DSS).
    let doc_timestamp = doc_timestamp || tokens.is_empty();
    merge(
        &mut data,
        &source.tsa_data(stamper.paths(), &tokens, now).await?,
    );
    let with_dss = add_dss(pdf, &[data], Some(now), limits).map_err(|e| format!("DSS: {e}"))?;
    if !doc_timestamp {
        return Ok(Extended {
            pdf: with_dss.pdf,
            document_timestamp: None,
        });
    }
    let req = DocTimestampRequest {
        digest_algorithm: stamper.digest_algorithm(),
        limits: *limits,
        ..Default::default()
    };
    let prepared = prepare_document_timestamp(&with_dss.pdf, &req)
        .map_err(|e| format!("document timestamp: {e}"))?;
    let token = stamper
        .stamp_digest(prepared.digest())
        .await
        .map_err(|e| e.to_string())?;
    let field = prepared.field_name().to_owned();
    // Verified again against the prepared document's digest before it is written.
    let (out, _) = prepared
        .finish(&token.token, &token.pool)
        .map_err(|e| format!("document timestamp: {e}"))?;
    Ok(Extended {
        pdf: out,
        document_timestamp: Some(field),
    })
}

fn merge(data: &mut SignatureValidationData, d: &crate::ltdata::PathData) {
    for (list, items) in [
        (&mut data.certs, &d.certificates),
        (&mut data.ocsps, &d.ocsps),
        (&mut data.crls, &d.crls),
    ] {
        for i in items {
            if !list.contains(i) {
                list.push(i.clone());
            }
        }
    }
}
