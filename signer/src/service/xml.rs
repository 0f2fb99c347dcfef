//! The seal over an edXML message (N6): an envelope of the exchange flow (EXCHANGE, W1 ->
//! send) or a status message (STATUS, W4), made with the organisation's key by its custodian
//! (A5) through the same steps as a PDF (`super::pdf`): the context and the signer's own
//! rules, the registry's decision and `CheckSeal` (EXCHANGE: the document carried is in the
//! outgoing register, W1), the key's own certificate, the HSM signature, the audit record.
//!
//! The signature goes in last and nothing is re-serialised after it: the flow writes the
//! message (`kyso_edxml::envelope::write`), `kyso_edxml::dsig::prepare` splices the
//! Signature skeleton in at `signature_at`, the HSM signs the canonical SignedInfo's digest
//! and `finish` puts the value in place and verifies the result before it leaves.

use std::time::Instant;

use kyso_edxml::dsig::{self, alg::SignatureMethod};
use kyso_pki::cert::Cert;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::audit::Decision as AuditDecision;
use crate::config::{Caller, KeySpec, Scheme};
use crate::consent::Factor;
use crate::error::{Error, Result};

use super::SignerService;
use super::approval::Approval;
use super::request::{Job, Origin, SealSubject};

/// An edXML message to seal: the unsigned text as the writer made it, and where its
/// signature goes.
pub(crate) struct XmlSealRequest {
    /// The organisation's seal key.
    pub key: String,
    /// EXCHANGE or STATUS, the custodian acting, the organisation, the document.
    pub context: pb::SigningContext,
    /// The message as written (LF only, no signature).
    pub unsigned: String,
    /// Byte offset of `</edXML:edXMLHeader>` in `unsigned`.
    pub signature_at: usize,
    /// EXCHANGE: the SHA-256 of the issued original it carries (CheckSeal).
    pub content_sha256: Option<Vec<u8>>,
}

/// A sealed edXML message.
pub(crate) struct XmlSealed {
    /// The signed message: `unsigned` with the Signature spliced in.
    pub xml: String,
    /// SHA-256 of `xml`.
    pub sha256: Vec<u8>,
    /// The audit record of the seal.
    pub audit: pb::AuditReceipt,
}

/// The reference and SignedInfo digests kyso signs edXML with.
const XML_DIGEST: DigestAlgorithm = DigestAlgorithm::Sha256;

impl SignerService {
    /// Seals an edXML message with the organisation's key (EXCHANGE or STATUS only); counted
    /// and timed like a direct call.
    pub(crate) async fn seal_xml_as(
        &self,
        caller: &Caller,
        r: XmlSealRequest,
        origin: Origin,
        now: OffsetDateTime,
    ) -> Result<XmlSealed> {
        let started = Instant::now();
        let (key, ctx) = (r.key.clone(), r.context.clone());
        let out = self.seal_xml_inner(caller, r, origin, now).await;
        self.count(
            &key,
            Some(&ctx),
            out.as_ref().map_or_else(Error::outcome, |_| "signed"),
        );
        self.observe("SealXml", started);
        out
    }

    async fn seal_xml_inner(
        &self,
        caller: &Caller,
        r: XmlSealRequest,
        origin: Origin,
        now: OffsetDateTime,
    ) -> Result<XmlSealed> {
        let key = self.key(&r.key)?;
        let profile = pb::Profile::try_from(r.context.profile).unwrap_or_default();
        if !matches!(profile, pb::Profile::Exchange | pb::Profile::Status) {
            return Err(Error::InvalidField {
                field: "context.profile",
                reason: "an edXML message is sealed as EXCHANGE or STATUS only (N6)".into(),
            });
        }
        // Bounded: `prepare` parses within the edXML limits (size, depth, nodes) and refuses
        // anything over them before hashing.
        let chain = chain(key);
        let prepared = dsig::prepare(&r.unsigned, r.signature_at, &chain, method(key.scheme))
            .map_err(|e| Error::InvalidField {
                field: "unsigned",
                reason: e.to_string(),
            })?;
        let input_sha256 = kyso_pki::crypto::sha256(r.unsigned.as_bytes()).to_vec();
        let job = Job {
            key,
            ctx: pb::SigningContext::default(),
            digest_algorithm: XML_DIGEST,
            document_digest: input_sha256.clone(),
            signing_time: now,
            raw: false,
            seal: SealSubject {
                competent_person_id: String::new(),
                content_sha256: r.content_sha256.clone(),
            },
            activation_token: String::new(),
            factor: Factor::None,
        };
        let job = self
            .with_context(caller, job, Some(r.context), origin, now)
            .await?;
        // No approval: EXCHANGE carries a document already issued (its ISSUE seal checked A6
        // then) and found in the outgoing register by CheckSeal; STATUS is the organisation's
        // own answer.
        let no_approval = Approval::Cms {
            approval: &[],
            content: None,
        };
        self.authorise(caller, &job, no_approval, now).await?;
        let signature = self
            .sign_recorded(caller, &job, prepared.signed_info_digest(), now)
            .await?;
        let xml = match prepared.finish(&signature) {
            Ok(x) => x,
            Err(e) => return Err(self.record_not_returned(caller, &job, e.into(), now).await),
        };
        let output_sha256 = kyso_pki::crypto::sha256(xml.as_bytes()).to_vec();
        // The record binds both texts, the unsigned message's SHA-256 then the sealed one's,
        // as for a PDF (`sha256-in-out`).
        let mut both = input_sha256;
        both.extend_from_slice(&output_sha256);
        let job = Job {
            document_digest: both,
            ..job
        };
        let audit = self
            .record_as(caller, &job, AuditDecision::Signed, now, "sha256-in-out")
            .await?;
        Ok(XmlSealed {
            xml,
            sha256: output_sha256,
            audit,
        })
    }
}

/// The signature method of the key: RSA PKCS#1 v1.5 -> rsa-sha256, RSA-PSS ->
/// sha256-rsa-MGF1, P-256 -> ecdsa-sha256.
fn method(scheme: Scheme) -> SignatureMethod {
    match scheme {
        Scheme::RsaPkcs1 => SignatureMethod::RsaPkcs1(XML_DIGEST),
        Scheme::RsaPss => SignatureMethod::RsaPss(XML_DIGEST),
        Scheme::Ecdsa => SignatureMethod::Ecdsa(XML_DIGEST),
    }
}

/// The signer's certificate then its issuers, for `KeyInfo/X509Data`.
fn chain(key: &KeySpec) -> Vec<Cert> {
    std::iter::once(key.certificate.clone())
        .chain(key.chain.iter().cloned())
        .collect()
}
