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

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A one-page PDF whose catalog has `/DSS 3 0 R`, with `dss` as object 3 and
    /// `extra` as objects 4.. (each given whole, `obj`..`endobj` excluded).
    fn pdf_with_dss(dss: &str, extra: &[Vec<u8>]) -> Vec<u8> {
        let mut objects: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R /DSS 3 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [] /Count 0 >>".to_vec(),
            dss.as_bytes().to_vec(),
        ];
        objects.extend(extra.iter().cloned());
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            writeln!(out, "{} 0 obj", i + 1).expect("write");
            out.extend_from_slice(o);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        writeln!(out, "xref\n0 {}\n0000000000 65535 f ", objects.len() + 1).expect("write");
        for off in offsets {
            writeln!(out, "{off:010} 00000 n ").expect("write");
        }
        write!(
            out,
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .expect("write");
        out
    }

    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut s = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        s.extend_from_slice(data);
        s.extend_from_slice(b"\nendstream");
        s
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("deflate");
        e.finish().expect("deflate")
    }

    #[test]
    fn reads_items_decoded_and_vri_counts() {
        let pdf = pdf_with_dss(
            "<< /Certs [4 0 R] /OCSPs [5 0 R] /VRI << /ABCD << /Cert [4 0 R] /OCSP [5 0 R] /TU (D:20260101000000Z) >> >> >>",
            &[
                stream("", b"cert-der"),
                stream("/Filter /FlateDecode", &deflate(b"ocsp-der")),
            ],
        );
        let dss = read_dss(&pdf, &PdfLimits::default())
            .expect("reads")
            .expect("a DSS");
        assert_eq!(dss.certs, [b"cert-der".to_vec()]);
        assert_eq!(dss.ocsps, [b"ocsp-der".to_vec()]);
        assert!(dss.crls.is_empty());
        let vri = dss.vri.get("ABCD").expect("the VRI entry");
        assert_eq!((vri.certs, vri.ocsps, vri.crls), (1, 1, 0));
        assert_eq!(vri.tu.as_deref(), Some("D:20260101000000Z"));
    }

    #[test]
    fn strict_not_repaired_and_bounded() {
        // An item that is no stream is refused, not skipped.
        let pdf = pdf_with_dss("<< /Certs [(not a stream)] >>", &[]);
        assert!(read_dss(&pdf, &PdfLimits::default()).is_err());
        // A /VRI that is no dictionary.
        let pdf = pdf_with_dss("<< /VRI [1 2] >>", &[]);
        assert!(read_dss(&pdf, &PdfLimits::default()).is_err());
        // A small stream inflating past the decoding budget.
        let bomb = deflate(&vec![0u8; 1 << 20]);
        let pdf = pdf_with_dss(
            "<< /CRLs [4 0 R] >>",
            &[stream("/Filter /FlateDecode", &bomb)],
        );
        let limits = PdfLimits {
            max_decoded_bytes: 64 << 10,
            ..PdfLimits::default()
        };
        assert!(matches!(
            read_dss(&pdf, &limits),
            Err(PdfError::TooLarge { .. })
        ));
        // No DSS at all.
        let plain = pdf_with_dss("<< >>", &[]).replace_dss_ref();
        assert_eq!(read_dss(&plain, &PdfLimits::default()), Ok(None));
    }

    trait NoDss {
        fn replace_dss_ref(self) -> Vec<u8>;
    }
    impl NoDss for Vec<u8> {
        /// The same bytes with the catalog's `/DSS` key renamed (same length).
        fn replace_dss_ref(mut self) -> Vec<u8> {
            if let Some(i) = self.windows(4).position(|w| w == b"/DSS") {
                self[i + 1..i + 4].copy_from_slice(b"XYZ");
            }
            self
        }
    }
}
