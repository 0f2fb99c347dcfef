//! The document time-stamp (ETSI EN 319 142-1 §5.4.3, ISO 32000-2 §12.8.5): a
//! signature field whose value is `/Type /DocTimeStamp /Filter /Adobe.PPKLite
//! /SubFilter /ETSI.RFC3161`, with `/Contents` "the DER-encoded TimeStampToken
//! … computed over the document's byte range" (the token's message imprint is the
//! digest of the byte ranges). It makes the document PAdES B-LTA: it covers the
//! signatures and the DSS written before it, so their existence at its time is
//! proven for as long as its own TSA certificate and algorithms hold.
//!
//! Two phases like the signature writer: [`prepare_document_timestamp`] appends the
//! field (an invisible widget on page 1) with placeholders and returns the digest
//! of the byte ranges; the caller asks its TSA for a token over that digest; then
//! [`PreparedDocTimestamp::finish`] verifies the token against the digest
//! (`kyso_pki::tsp::verify_token`: signature, ESS, EKU, imprint) and only then
//! writes it. A token that does not verify is never written.

use kyso_pki::cert::Cert;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_pki::tsp::{Expected, VerifiedTimestamp, verify_token};

use crate::placeholder::{self, BYTE_RANGE_PLACEHOLDER, Prepared};
use crate::serialize::text_string;
use crate::source::Source;
use crate::writer::{Objects, write_update};
use crate::{PadesError, PadesLimits};

/// Bytes reserved for the token when the request says nothing: a token with the
/// TSA's chain of a few certificates is 3-8 KiB.
pub const DEFAULT_TOKEN_ROOM: usize = 16 * 1024;

/// A document time-stamp request.
#[derive(Clone, Debug)]
pub struct DocTimestampRequest {
    /// The field's name; `None`: `kyso_doc_timestamp_<n>`.
    pub field_name: Option<String>,
    /// The imprint's algorithm (SHA-256 unless there is a reason).
    pub digest_algorithm: DigestAlgorithm,
    /// Bytes reserved for the token.
    pub token_room: usize,
    /// Input bounds.
    pub limits: PadesLimits,
}

impl Default for DocTimestampRequest {
    fn default() -> Self {
        Self {
            field_name: None,
            digest_algorithm: DigestAlgorithm::Sha256,
            token_room: DEFAULT_TOKEN_ROOM,
            limits: PadesLimits::default(),
        }
    }
}

/// The document with the time-stamp field appended and `/Contents` still zeros; the
/// digest, byte range and room are those of any [`Prepared`] document.
#[derive(Clone, Debug)]
pub struct PreparedDocTimestamp(Prepared);

impl std::ops::Deref for PreparedDocTimestamp {
    type Target = Prepared;
    fn deref(&self) -> &Prepared {
        &self.0
    }
}

impl PreparedDocTimestamp {
    /// The prepared bytes, `/Contents` still zeros (for checks before the token).
    pub fn into_prepared_bytes(self) -> Vec<u8> {
        self.0.into_prepared_bytes()
    }

    /// Verifies `token` (a DER `TimeStampToken`) against this digest, then writes
    /// it into `/Contents`. `extra_certs` help find the TSA certificate when the
    /// token does not carry it. The TSA certificate's path and revocation are the
    /// caller's to judge (as for any signer); nothing is written when the token's
    /// own checks fail.
    pub fn finish(
        self,
        token: &[u8],
        extra_certs: &[Cert],
    ) -> Result<(Vec<u8>, VerifiedTimestamp), PadesError> {
        let expected = Expected {
            algorithm: self.digest_algorithm(),
            digest: self.digest(),
            nonce: None,
            policy: None,
        };
        let verified = verify_token(token, &expected, extra_certs)
            .map_err(|e| PadesError::Timestamp(e.to_string()))?;
        let pdf = self.0.fill(&verified.token)?;
        Ok((pdf, verified))
    }
}

/// Reads `pdf` and appends the document time-stamp field with its placeholders.
pub fn prepare_document_timestamp(
    pdf: &[u8],
    req: &DocTimestampRequest,
) -> Result<PreparedDocTimestamp, PadesError> {
    if req.digest_algorithm == DigestAlgorithm::Sha1 {
        return Err(PadesError::Unsupported(
            "SHA-1 is not accepted for new time-stamps".into(),
        ));
    }
    if req.token_room == 0 || req.token_room > 1 << 20 {
        return Err(PadesError::Unsupported(format!(
            "a token room of {} bytes",
            req.token_room
        )));
    }
    let src = Source::load(pdf, &req.limits)?;
    let fields = src.fields()?;
    let field_name = match &req.field_name {
        Some(n) if fields.iter().any(|f| &f.name == n) => {
            return Err(PadesError::Field(format!("a field named {n:?} exists")));
        }
        Some(n) => n.clone(),
        None => {
            let n = (1..)
                .find(|i| {
                    !fields
                        .iter()
                        .any(|f| f.name == format!("kyso_doc_timestamp_{i}"))
                })
                .unwrap_or(1);
            format!("kyso_doc_timestamp_{n}")
        }
    };
    let page = src.page(1)?;
    let mut objs = Objects::new(src.size);
    // An invisible widget still gets an (empty) appearance: PDF/A and some readers want one.
    let form = objs.add(
        b"<</Type /XObject /Subtype /Form /BBox [0 0 0 0] /Resources <<>> /Length 0>>\nstream\n\nendstream"
            .to_vec(),
    );
    let sig_id = objs.reserve();
    let hex_len = req.token_room * 2;
    objs.set(
        sig_id,
        0,
        format!(
            "<</Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161 \
             {BYTE_RANGE_PLACEHOLDER} /Contents <{}>>>",
            "0".repeat(hex_len)
        )
        .into_bytes(),
    );
    let widget = objs.reserve();
    objs.set(
        widget,
        0,
        format!(
            "<</Type /Annot /Subtype /Widget /FT /Sig /T {} /V {sig_id} 0 R /Rect [0 0 0 0] \
             /P {} {} R /F 132 /AP <</N {form} 0 R>>>>",
            text_string(&field_name),
            page.0,
            page.1,
        )
        .into_bytes(),
    );
    src.add_annot(&mut objs, page, widget)?;
    src.update_acroform(&mut objs, Some(widget))?;
    let (out, starts) = write_update(pdf, objs, &src.trailer)?;
    let sig_at = *starts
        .get(&sig_id)
        .ok_or_else(|| PadesError::Encoding("the time-stamp dictionary was not written".into()))?;
    let prepared = placeholder::patch(
        out,
        sig_at,
        hex_len,
        req.digest_algorithm,
        field_name,
        pdf.len(),
    )?;
    Ok(PreparedDocTimestamp(prepared))
}
