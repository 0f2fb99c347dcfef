//! Archive care of a stored original (R1, D7, N3; `ExtendStored`, `kyso ltv extend --store`):
//! what level its current version carries, whether its last timestamp still holds, and the
//! extension itself.
//!
//! A PDF gets a DSS (with VRI) holding the path and OCSP/CRL DER of every signature, of the
//! TSA of every signature timestamp and of every earlier document timestamp, then a fresh
//! document timestamp from the signer's `[tsa]` over all of it (PAdES B-LTA, ETSI EN 319
//! 142-1 §5.5): both incremental updates, the stored bytes stay the prefix (D7). A CMS at
//! B-B gets its signature timestamp, and a CMS without validation data gets the signer's and
//! the TSA's certificate-values and revocation-values (CAdES B-LT); a CMS already at B-LT
//! cannot take more here (no CAdES archive timestamp is made) and is reported skipped, with
//! the reason, once its timestamp needs renewal.
//!
//! Renewal rule, as `kyso ltv extend` over a folder: a PDF at B-LTA whose last document
//! timestamp's TSA certificate expires more than the horizon from now, with a strong digest
//! (not SHA-1) and key (RSA >= 2048 bits or EC), is up to date unless forced.

use kyso_pades::PadesLimits;
use kyso_pades::ltv::{
    DocTimestampRequest, SignatureValidationData, add_dss, prepare_document_timestamp, read_dss,
    signature_contents,
};
use kyso_pki::cert::Cert;
use kyso_pki::cms::{self, Detached};
use kyso_pki::crypto::{DigestAlgorithm, rsa_modulus_bits};
use time::OffsetDateTime;

use crate::ltdata::{PathData, ValidationSource, signature_tokens};
use crate::timestamp::Stamper;

/// What a stored original is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A signed PDF (PAdES).
    Pdf,
    /// A CMS signature (CAdES).
    Cms,
}

impl Kind {
    /// `pdf` or `cms`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Cms => "cms",
        }
    }
}

/// The TSA certificate of a timestamp and the token's digest algorithm.
#[derive(Clone, Debug)]
pub struct LastTimestamp {
    /// The TSA's certificate (its `notAfter` bounds the timestamp's proof).
    pub tsa_cert: Cert,
    /// The token's digest algorithm (`None`: unknown, treated as weak).
    pub digest_algorithm: Option<DigestAlgorithm>,
}

/// What a stored original carries, read structurally (the verifier judges it).
#[derive(Clone, Debug)]
pub struct Inspected {
    /// PDF or CMS.
    pub kind: Kind,
    /// `B_B`, `B_T`, `B_LT` or `B_LTA`.
    pub level: &'static str,
    /// A PDF's last document timestamp, else the latest signature timestamp.
    pub last: Option<LastTimestamp>,
}

/// Limits for a stored PDF of `len` bytes (it was accepted once; twice its size leaves room
/// for the DSS and the document timestamp).
pub fn limits(len: usize) -> PadesLimits {
    PadesLimits {
        max_bytes: len.saturating_mul(2).max(1 << 20),
        ..Default::default()
    }
}

/// Reads the level and the last timestamp of `bytes` (a PDF by its header, else a CMS).
pub fn inspect(bytes: &[u8]) -> Result<Inspected, String> {
    if bytes.starts_with(b"%PDF-") {
        inspect_pdf(bytes)
    } else {
        inspect_cms(bytes)
    }
}

fn inspect_pdf(pdf: &[u8]) -> Result<Inspected, String> {
    let limits = limits(pdf.len());
    let sigs = signature_contents(pdf, &limits).map_err(|e| format!("signatures: {e}"))?;
    if sigs.iter().all(|s| s.document_timestamp) {
        return Err("the PDF has no signature".into());
    }
    let has_dss = matches!(read_dss(pdf, &limits), Ok(Some(_)));
    let mut last_doc = None;
    let mut last_sig_ts = None;
    let mut all_t = true;
    for s in &sigs {
        let Ok(msg) = cms::parse(s.cms()) else {
            all_t &= s.document_timestamp;
            continue;
        };
        if s.document_timestamp {
            last_doc = timestamp_of(&msg).or(last_doc);
        } else {
            let tokens = signature_tokens(&msg);
            all_t &= !tokens.is_empty();
            if let Some(t) = tokens.last().and_then(|t| token_tsa(t)) {
                last_sig_ts = Some(t);
            }
        }
    }
    let level = match (has_dss, last_doc.is_some(), all_t) {
        (true, true, _) => "B_LTA",
        (true, false, _) => "B_LT",
        (false, true, _) | (false, false, true) => "B_T",
        _ => "B_B",
    };
    Ok(Inspected {
        kind: Kind::Pdf,
        level,
        last: last_doc.or(last_sig_ts),
    })
}

fn inspect_cms(der: &[u8]) -> Result<Inspected, String> {
    let msg = cms::parse(der).map_err(|e| format!("neither a PDF nor a CMS: {e}"))?;
    let e = cms::embedded(&msg, 0).ok_or("the CMS has no signer")?;
    let level = match (e.has_timestamp(), e.certificates.is_empty()) {
        (true, false) => "B_LT",
        (true, true) => "B_T",
        _ => "B_B",
    };
    Ok(Inspected {
        kind: Kind::Cms,
        level,
        last: e.timestamp_tokens.last().and_then(|t| token_tsa(t)),
    })
}

/// The TSA certificate and digest of a timestamp token (a document timestamp's CMS).
fn timestamp_of(msg: &cms::SignedDataMessage) -> Option<LastTimestamp> {
    let check = cms::check_signer(msg, 0, &Detached::None, &[]);
    Some(LastTimestamp {
        tsa_cert: check.signer_cert?,
        digest_algorithm: check.digest_algorithm,
    })
}

fn token_tsa(token: &[u8]) -> Option<LastTimestamp> {
    timestamp_of(&cms::parse(token).ok()?)
}

/// The last timestamp holds beyond `horizon_days` with strong algorithms.
pub fn still_good(last: &LastTimestamp, now: OffsetDateTime, horizon_days: u32) -> bool {
    let far = last.tsa_cert.not_after() - now > time::Duration::days(i64::from(horizon_days));
    let digest_ok = !matches!(last.digest_algorithm, Some(DigestAlgorithm::Sha1) | None);
    let spki = &last.tsa_cert.x509().tbs_certificate.subject_public_key_info;
    let key_ok = rsa_modulus_bits(spki).is_none_or(|bits| bits >= 2048);
    far && digest_ok && key_ok
}

/// What to do with a stored original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: its level and its last timestamp hold.
    UpToDate,
    /// Extend it.
    Extend,
    /// It needs care this signer cannot give; why.
    Skip(String),
}

/// The renewal rule (module doc) for `i`, `force` or not.
pub fn plan(i: &Inspected, now: OffsetDateTime, horizon_days: u32, force: bool) -> Plan {
    let good = i
        .last
        .as_ref()
        .is_some_and(|l| still_good(l, now, horizon_days));
    match (i.kind, i.level) {
        (Kind::Pdf, "B_LTA") if good && !force => Plan::UpToDate,
        (Kind::Pdf, _) => Plan::Extend,
        (Kind::Cms, "B_LT") if good => Plan::UpToDate,
        (Kind::Cms, "B_LT") => Plan::Skip(
            "CAdES B-LT: its signature timestamp needs renewal, and this signer makes no CAdES \
             archive timestamp (B-LTA); re-seal the document or keep it as a PDF"
                .into(),
        ),
        (Kind::Cms, _) => Plan::Extend,
    }
}

/// What an extension produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The new current version.
    pub bytes: Vec<u8>,
    /// Its level.
    pub level: &'static str,
    /// The new document timestamp's time (PDF).
    pub timestamp_time: Option<OffsetDateTime>,
    /// Validation data that could not be had (the rest was added).
    pub warnings: Vec<String>,
}

/// Extends `before` (a stored original of kind `kind`) at `now`; `Err` (nothing changed) says
/// why not.
pub async fn extend(
    before: &[u8],
    kind: Kind,
    stamper: &Stamper,
    source: &ValidationSource,
    now: OffsetDateTime,
) -> Result<Outcome, String> {
    match kind {
        Kind::Pdf => extend_pdf(before, stamper, source, now).await,
        Kind::Cms => extend_cms(before, stamper, source, now).await,
    }
}

async fn extend_pdf(
    before: &[u8],
    stamper: &Stamper,
    source: &ValidationSource,
    now: OffsetDateTime,
) -> Result<Outcome, String> {
    let limits = limits(before.len());
    let sigs = signature_contents(before, &limits).map_err(|e| format!("signatures: {e}"))?;
    let mut warnings = Vec::new();
    let mut all = Vec::with_capacity(sigs.len());
    for s in &sigs {
        let mut data = PathData::default();
        let msg = match cms::parse(s.cms()) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("{}: the CMS cannot be read: {e}", s.field_name));
                continue;
            }
        };
        let check = cms::check_signer(&msg, 0, &Detached::None, &[]);
        let Some(signer) = check.signer_cert else {
            warnings.push(format!("{}: no signer certificate", s.field_name));
            continue;
        };
        // A document timestamp's signer is a TSA: its path goes to the TSA roots.
        let paths = s.document_timestamp.then(|| stamper.paths());
        match source
            .get_with(paths, &signer, msg.certificates(), now)
            .await
        {
            Ok(d) => data.merge(&d),
            Err(e) => warnings.push(format!("{}: {e}", s.field_name)),
        }
        let tokens = signature_tokens(&msg);
        match source.tsa_data(stamper.paths(), &tokens, now).await {
            Ok(d) => data.merge(&d),
            Err(e) => warnings.push(format!("{}: {e}", s.field_name)),
        }
        all.push(SignatureValidationData {
            contents: s.contents.clone(),
            certs: data.certificates,
            ocsps: data.ocsps,
            crls: data.crls,
        });
    }
    if all.iter().all(|d| d.certs.is_empty()) {
        return Err(format!(
            "no validation data for any signature: {}",
            warnings.join("; ")
        ));
    }
    let with_dss = add_dss(before, &all, Some(now), &limits).map_err(|e| format!("DSS: {e}"))?;
    let req = DocTimestampRequest {
        digest_algorithm: stamper.digest_algorithm(),
        limits,
        ..Default::default()
    };
    let prepared = prepare_document_timestamp(&with_dss.pdf, &req)
        .map_err(|e| format!("document timestamp: {e}"))?;
    let token = stamper
        .stamp_digest(prepared.digest())
        .await
        .map_err(|e| format!("TSA: {e}"))?;
    // Verified again against the prepared document's digest before it is written.
    let (bytes, verified) = prepared
        .finish(&token.token, &token.pool)
        .map_err(|e| format!("document timestamp: {e}"))?;
    Ok(Outcome {
        bytes,
        level: "B_LTA",
        timestamp_time: Some(verified.gen_time()),
        warnings,
    })
}

async fn extend_cms(
    before: &[u8],
    stamper: &Stamper,
    source: &ValidationSource,
    now: OffsetDateTime,
) -> Result<Outcome, String> {
    let msg = cms::parse(before).map_err(|e| e.to_string())?;
    let has = cms::embedded(&msg, 0).ok_or("the CMS has no signer")?;
    let signer = cms::check_signer(&msg, 0, &Detached::None, &[])
        .signer_cert
        .ok_or("the CMS carries no signer certificate")?;
    let mut after = before.to_vec();
    let mut tokens = has.timestamp_tokens.clone();
    // B-T: the signature timestamp over the signature value (nothing signed changes).
    if tokens.is_empty() {
        let value =
            kyso_pki::cms_build::unsigned::signature_value(before, 0).map_err(|e| e.to_string())?;
        let token = stamper
            .stamp(&value)
            .await
            .map_err(|e| format!("TSA: {e}"))?;
        after = kyso_pki::cms_build::add_signature_timestamp(&after, 0, &token.token)
            .map_err(|e| e.to_string())?;
        tokens.push(token.token);
    }
    // B-LT (R1): the signer's and the TSA's paths and revocation DER.
    if has.certificates.is_empty() {
        let mut data = (*source.get(&signer, msg.certificates(), now).await?).clone();
        data.merge(&source.tsa_data(stamper.paths(), &tokens, now).await?);
        after = kyso_pki::cms_build::add_validation_data(&after, 0, &data.cades())
            .map_err(|e| e.to_string())?;
    }
    Ok(Outcome {
        bytes: after,
        level: "B_LT",
        timestamp_time: None,
        warnings: Vec::new(),
    })
}
