//! The Document Security Store (ETSI EN 319 142-1 §5.4.2, ISO 32000-2 §12.8.4.3):
//! a `/DSS` dictionary in the catalog holding the validation data of the
//! document's signatures (PAdES B-LT), added as an incremental update.
//!
//! "The DSS dictionary … shall contain … Certs: an array of (indirect
//! references to) streams, each containing one DER-encoded X.509 certificate;
//! OCSPs: … one DER-encoded OCSP response; CRLs: … one DER-encoded CRL; VRI: a
//! dictionary of signature VRI dictionaries", whose "key … shall be the
//! base-16-encoded (uppercase) SHA-1 digest of the signature to which it
//! applies" — here, as Adobe and pyHanko read it, the bytes of the signature
//! dictionary's `/Contents` string as written, padding included.
//!
//! An existing DSS is extended, never replaced: its streams are kept, an item
//! already there (same SHA-256 of the decoded stream) is referenced again rather
//! than written twice, and a signature's VRI entry keeps what it listed.

use std::collections::{BTreeMap, BTreeSet};

pub use kyso_pdf::{DssContents, VriCounts};

use lopdf::{Dictionary, Object, ObjectId};
use time::OffsetDateTime;

use kyso_pki::crypto::{DigestAlgorithm, sha256};

use crate::serialize::{flate_stream, write_dict};
use crate::source::Source;
use crate::writer::{Objects, write_update};
use crate::{PadesError, PadesLimits};

/// The validation data of one signature or document time-stamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureValidationData {
    /// The signature dictionary's `/Contents` as written (padding included): it
    /// names the VRI entry ([`vri_key`]); [`signature_contents`] reads it.
    pub contents: Vec<u8>,
    /// DER certificates: the signer's path, the OCSP responders', the CRL issuers'.
    pub certs: Vec<Vec<u8>>,
    /// DER `OCSPResponse`s.
    pub ocsps: Vec<Vec<u8>>,
    /// DER CRLs.
    pub crls: Vec<Vec<u8>>,
}

/// A signature dictionary of the document, as [`add_dss`] keys it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureContents {
    /// The field's partial name (`/T`).
    pub field_name: String,
    /// `/Type /DocTimeStamp` (or `/SubFilter /ETSI.RFC3161`).
    pub document_timestamp: bool,
    /// `/Contents` as written, padding included.
    pub contents: Vec<u8>,
}

impl SignatureContents {
    /// The CMS (or time-stamp token) in `/Contents`, without the zero padding after it:
    /// the first BER element, as the reader takes it (`kyso_pki::ber::element_len`); all
    /// of `/Contents` when that cannot be measured (the CMS parser then says what is wrong).
    pub fn cms(&self) -> &[u8] {
        match kyso_pki::ber::element_len(&self.contents, kyso_pki::ber::Limits::default()) {
            Ok(n) => &self.contents[..n.min(self.contents.len())],
            Err(_) => &self.contents,
        }
    }
}

/// How many new items the update wrote (items already in the DSS are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DssAdded {
    /// New certificate streams.
    pub certs: usize,
    /// New OCSP response streams.
    pub ocsps: usize,
    /// New CRL streams.
    pub crls: usize,
    /// VRI entries created or extended.
    pub vri: usize,
}

impl DssAdded {
    /// Nothing new.
    pub fn is_empty(&self) -> bool {
        self.certs == 0 && self.ocsps == 0 && self.crls == 0 && self.vri == 0
    }
}

/// The document with its DSS update.
#[derive(Clone, Debug)]
pub struct DssUpdate {
    /// The original followed by the update; the original unchanged when
    /// nothing was new ([`DssAdded::is_empty`]).
    pub pdf: Vec<u8>,
    /// What was written.
    pub added: DssAdded,
}

/// The VRI key of a signature: uppercase hex SHA-1 of its `/Contents` bytes.
pub fn vri_key(contents: &[u8]) -> String {
    hex::encode_upper(DigestAlgorithm::Sha1.digest(contents))
}

/// The `/Contents` of every signed signature field (top-level fields and their
/// kids), in the order of `/Fields`.
pub fn signature_contents(
    pdf: &[u8],
    limits: &PadesLimits,
) -> Result<Vec<SignatureContents>, PadesError> {
    let src = Source::load(pdf, limits)?;
    let mut out = Vec::new();
    for f in src.fields()? {
        if !f.is_sig {
            continue;
        }
        let field = src.dict(f.id)?;
        let Ok(v) = field.get(b"V") else { continue };
        let Ok(sig) = src.deref(v).and_then(|o| {
            o.as_dict()
                .map_err(|_| PadesError::Malformed("/V is not a dictionary".into()))
        }) else {
            continue;
        };
        let Ok(contents) = sig.get(b"Contents").and_then(Object::as_str) else {
            continue;
        };
        let name_is = |key: &[u8], value: &[u8]| {
            sig.get(key)
                .and_then(Object::as_name)
                .is_ok_and(|n| n == value)
        };
        out.push(SignatureContents {
            field_name: f.name.clone(),
            document_timestamp: name_is(b"Type", b"DocTimeStamp")
                || name_is(b"SubFilter", b"ETSI.RFC3161"),
            contents: contents.to_vec(),
        });
    }
    Ok(out)
}

/// The three kinds of DSS streams.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Cert,
    Ocsp,
    Crl,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Cert, Kind::Ocsp, Kind::Crl];
    /// The DSS array's key.
    fn dss_key(self) -> &'static str {
        match self {
            Kind::Cert => "Certs",
            Kind::Ocsp => "OCSPs",
            Kind::Crl => "CRLs",
        }
    }
    /// The VRI array's key.
    fn vri_key(self) -> &'static str {
        match self {
            Kind::Cert => "Cert",
            Kind::Ocsp => "OCSP",
            Kind::Crl => "CRL",
        }
    }
}

/// One DSS array: its references in order, and which SHA-256 each holds.
#[derive(Default)]
struct Pool {
    refs: Vec<ObjectId>,
    by_hash: BTreeMap<[u8; 32], ObjectId>,
}

/// Adds (or extends) the DSS with `data`, as an incremental update. `time`, when
/// given, is written as each touched VRI entry's `/TU`.
pub fn add_dss(
    pdf: &[u8],
    data: &[SignatureValidationData],
    time: Option<OffsetDateTime>,
    limits: &PadesLimits,
) -> Result<DssUpdate, PadesError> {
    let src = Source::load(pdf, limits)?;
    let catalog = src.dict(src.root)?;
    let existing = match catalog.get(b"DSS") {
        Ok(Object::Reference(id)) => Some((Some(*id), src.dict(*id)?.clone())),
        Ok(Object::Dictionary(d)) => Some((None, d.clone())),
        Ok(_) => return Err(PadesError::Malformed("/DSS is not a dictionary".into())),
        Err(_) => None,
    };
    let mut dss = existing
        .as_ref()
        .map(|(_, d)| d.clone())
        .unwrap_or_default();

    // The pools already in the document, hashed to refuse duplicates.
    let mut pools: BTreeMap<Kind, Pool> = BTreeMap::new();
    for kind in Kind::ALL {
        let mut pool = Pool::default();
        if let Ok(list) = dss.get(kind.dss_key().as_bytes()) {
            let list = src.deref(list)?.as_array().map_err(|_| {
                PadesError::Malformed(format!("/DSS /{} is not an array", kind.dss_key()))
            })?;
            for item in list {
                let id = item.as_reference().map_err(|_| {
                    PadesError::Malformed(format!(
                        "/DSS /{} holds a direct object, not a stream reference",
                        kind.dss_key()
                    ))
                })?;
                let stream = src
                    .doc
                    .get_object(id)
                    .and_then(Object::as_stream)
                    .map_err(|e| {
                        PadesError::Malformed(format!("DSS stream {} {}: {e}", id.0, id.1))
                    })?;
                let body = if stream.dict.has(b"Filter") {
                    stream.decompressed_content().map_err(|e| {
                        PadesError::Malformed(format!("DSS stream {} {}: {e}", id.0, id.1))
                    })?
                } else {
                    stream.content.clone()
                };
                pool.by_hash.entry(sha256(&body)).or_insert(id);
                pool.refs.push(id);
            }
        }
        pools.insert(kind, pool);
    }

    let mut vri = match dss.get(b"VRI") {
        Ok(v) => src
            .deref(v)?
            .as_dict()
            .map_err(|_| PadesError::Malformed("/DSS /VRI is not a dictionary".into()))?
            .clone(),
        Err(_) => Dictionary::new(),
    };

    let mut objs = Objects::new(src.size);
    let mut added = DssAdded::default();
    for sig in data {
        let key = vri_key(&sig.contents);
        let mut entry = match vri.get(key.as_bytes()) {
            Ok(v) => src
                .deref(v)?
                .as_dict()
                .map_err(|_| PadesError::Malformed(format!("VRI {key} is not a dictionary")))?
                .clone(),
            Err(_) => Dictionary::new(),
        };
        let mut touched = false;
        for (kind, items) in [
            (Kind::Cert, &sig.certs),
            (Kind::Ocsp, &sig.ocsps),
            (Kind::Crl, &sig.crls),
        ] {
            let pool = pools.entry(kind).or_default();
            let mut listed: Vec<Object> = match entry.get(kind.vri_key().as_bytes()) {
                Ok(v) => src
                    .deref(v)?
                    .as_array()
                    .map_err(|_| {
                        PadesError::Malformed(format!(
                            "VRI {key} /{} is not an array",
                            kind.vri_key()
                        ))
                    })?
                    .clone(),
                Err(_) => Vec::new(),
            };
            let mut seen: BTreeSet<ObjectId> = listed
                .iter()
                .filter_map(|o| o.as_reference().ok())
                .collect();
            for der in items {
                let hash = sha256(der);
                let id = match pool.by_hash.get(&hash) {
                    Some(id) => *id,
                    None => {
                        let id = (objs.add(flate_stream("", der)?), 0);
                        pool.by_hash.insert(hash, id);
                        pool.refs.push(id);
                        match kind {
                            Kind::Cert => added.certs += 1,
                            Kind::Ocsp => added.ocsps += 1,
                            Kind::Crl => added.crls += 1,
                        }
                        id
                    }
                };
                if seen.insert(id) {
                    listed.push(Object::Reference(id));
                    touched = true;
                }
            }
            if !listed.is_empty() {
                entry.set(kind.vri_key(), Object::Array(listed));
            }
        }
        if touched {
            if let Some(t) = time {
                entry.set("TU", Object::string_literal(pdf_date(t)?));
            }
            vri.set(key.into_bytes(), Object::Dictionary(entry));
            added.vri += 1;
        }
    }
    if added.is_empty() {
        return Ok(DssUpdate {
            pdf: pdf.to_vec(),
            added,
        });
    }
    for (kind, pool) in &pools {
        if !pool.refs.is_empty() {
            let refs = pool.refs.iter().map(|id| Object::Reference(*id)).collect();
            dss.set(kind.dss_key(), Object::Array(refs));
        }
    }
    dss.set("VRI", Object::Dictionary(vri));
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    let mut body = Vec::new();
    write_dict(&mut body, &dss)?;
    match existing {
        Some((Some(id), _)) => objs.set(id.0, id.1, body),
        _ => {
            let id = objs.add(body);
            let mut cat = catalog.clone();
            cat.set("DSS", Object::Reference((id, 0)));
            let mut cb = Vec::new();
            write_dict(&mut cb, &cat)?;
            objs.set(src.root.0, src.root.1, cb);
        }
    }
    let (out, _) = write_update(pdf, objs, &src.trailer)?;
    Ok(DssUpdate { pdf: out, added })
}

/// A PDF date in UTC (`D:YYYYMMDDHHmmSSZ`).
pub(crate) fn pdf_date(t: OffsetDateTime) -> Result<String, PadesError> {
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let s = t
        .to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .map_err(|e| PadesError::Encoding(format!("date: {e}")))?;
    Ok(format!("D:{s}Z"))
}

/// Reads back the DSS of a document with the strict reader of `kyso-pdf`: per kind, the
/// decoded items; per VRI key, the number of items listed.
pub fn read_dss(pdf: &[u8], limits: &PadesLimits) -> Result<Option<DssContents>, PadesError> {
    if pdf.len() > limits.max_bytes {
        return Err(PadesError::TooLarge {
            size: pdf.len(),
            limit: limits.max_bytes,
        });
    }
    let pdf_limits = kyso_pdf::PdfLimits {
        max_bytes: limits.max_bytes,
        ..kyso_pdf::PdfLimits::default()
    };
    kyso_pdf::read_dss(pdf, &pdf_limits).map_err(|e| PadesError::Malformed(e.to_string()))
}
