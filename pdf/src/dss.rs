//! The Document Security Store as the file holds it (ETSI EN 319 142-1 §5.4.2, ISO
//! 32000-2 §12.8.4.3): the `/DSS` dictionary of the last revision's catalog, its
//! `/Certs`, `/OCSPs` and `/CRLs` streams decoded, and what each `/VRI` entry lists.
//!
//! Read with the same strict reader as the signatures: every stream decoded counts
//! against [`PdfLimits::max_decoded_bytes`], arrays against the parser's bounds; a DSS
//! that is not what the standard says (an item that is no stream, a `/VRI` that is no
//! dictionary) is an error, not repaired. What the items are worth (a certificate, an
//! OCSP response about whom, signed by whom) is not judged here: that is the verifier's.

use std::collections::BTreeMap;

use crate::file::PdfFile;
use crate::syntax::{DictExt, Object};
use crate::{PdfError, PdfLimits, text};

/// A document's DSS, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DssContents {
    /// Certificates, DER (as stored: the verifier parses them).
    pub certs: Vec<Vec<u8>>,
    /// OCSP responses, DER `OCSPResponse`.
    pub ocsps: Vec<Vec<u8>>,
    /// CRLs, DER.
    pub crls: Vec<Vec<u8>>,
    /// VRI entries by key (uppercase hex SHA-1 of a signature's `/Contents`).
    pub vri: BTreeMap<String, VriCounts>,
}

/// What one VRI entry lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VriCounts {
    /// Certificates.
    pub certs: usize,
    /// OCSP responses.
    pub ocsps: usize,
    /// CRLs.
    pub crls: usize,
    /// `/TU`.
    pub tu: Option<String>,
}

impl DssContents {
    /// No item at all.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty() && self.ocsps.is_empty() && self.crls.is_empty()
    }
}

fn malformed(what: &str) -> PdfError {
    PdfError::Unsupported {
        offset: 0,
        what: format!("DSS: {what}"),
    }
}

/// The DSS of the last revision of `pdf`; `None` when its catalog has none.
pub fn read_dss(pdf: &[u8], limits: &PdfLimits) -> Result<Option<DssContents>, PdfError> {
    let file = PdfFile::parse(pdf, limits)?;
    read(&file)
}

pub(crate) fn read(file: &PdfFile<'_>) -> Result<Option<DssContents>, PdfError> {
    let Some(rev) = file.revs.len().checked_sub(1) else {
        return Ok(None);
    };
    let Some(root) = file.revs[rev].trailer.get_key("Root") else {
        return Ok(None);
    };
    let Some(catalog) = file.resolve(rev, root)? else {
        return Ok(None);
    };
    let Some(d) = catalog.dict().and_then(|c| c.get_key("DSS")) else {
        return Ok(None);
    };
    let dss = file
        .resolve(rev, d)?
        .ok_or_else(|| malformed("/DSS is null"))?;
    let dss = dss
        .dict()
        .ok_or_else(|| malformed("/DSS is not a dictionary"))?;
    let mut out = DssContents::default();
    for (key, into) in [
        ("Certs", &mut out.certs),
        ("OCSPs", &mut out.ocsps),
        ("CRLs", &mut out.crls),
    ] {
        let Some(list) = dss.get_key(key) else {
            continue;
        };
        let list = file
            .resolve(rev, list)?
            .ok_or_else(|| malformed("a DSS array is null"))?;
        let list = list
            .array()
            .ok_or_else(|| malformed("a DSS array is not an array"))?;
        for item in list {
            let item = file
                .resolve(rev, item)?
                .ok_or_else(|| malformed("a DSS item is null"))?;
            let Object::Stream(s) = &*item else {
                return Err(malformed("a DSS item is not a stream"));
            };
            into.push(file.decode_stream(s, s.data.0)?);
        }
    }
    if let Some(v) = dss.get_key("VRI") {
        let v = file
            .resolve(rev, v)?
            .ok_or_else(|| malformed("/VRI is null"))?;
        let v = v
            .dict()
            .ok_or_else(|| malformed("/VRI is not a dictionary"))?;
        for (key, entry) in v {
            let entry = file
                .resolve(rev, entry)?
                .ok_or_else(|| malformed("a VRI entry is null"))?;
            let entry = entry
                .dict()
                .ok_or_else(|| malformed("a VRI entry is not a dictionary"))?;
            let count = |k: &str| -> Result<usize, PdfError> {
                match entry.get_key(k) {
                    None => Ok(0),
                    Some(a) => Ok(file
                        .resolve(rev, a)?
                        .as_deref()
                        .and_then(Object::array)
                        .map_or(0, <[Object]>::len)),
                }
            };
            let counts = VriCounts {
                certs: count("Cert")?,
                ocsps: count("OCSP")?,
                crls: count("CRL")?,
                tu: entry
                    .get_key("TU")
                    .and_then(Object::string)
                    .map(|s| text(&s.bytes)),
            };
            out.vri
                .insert(String::from_utf8_lossy(key).into_owned(), counts);
        }
    }
    Ok(Some(out))
}
