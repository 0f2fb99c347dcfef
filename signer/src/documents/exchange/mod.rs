//! The exchange axis (N6, W4, N5): envelopes received and answered with signed status
//! messages (`receive`), status messages from the other side and take-back (`status`).
//!
//! A status message is the organisation's word to another one: it is sealed with the
//! organisation's seal by its custodian (A5) through the signer's XML seal flow (profile
//! STATUS, made only here), kept with the organisation's originals (D7) and entered in the
//! document's status history in the register (W4), each step journaled for a retry.

mod receive;
mod send;
mod status;

use kyso_edxml::envelope::Message;
use kyso_edxml::envelope::model::{Organization, ResponseFor};
use kyso_edxml::organ::OrganId;
use kyso_edxml::status::{StatusCode, StatusMessage};
use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use kyso_validation::edxml::{EdxmlReport, EdxmlVerifyOptions};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::config::Caller;
use crate::error::{Error, Result};
use crate::journal::{Run, Step};
use crate::service::XmlSealRequest;

use super::DocumentsService;
use super::receipt::stamp;

/// Vietnam's time: the exchange writes local timestamps (`yyyy/MM/dd HH:mm:ss`).
pub(super) const VIETNAM: time::UtcOffset = time::macros::offset!(+7);

/// The organisation's seal as a request names it: key and custodian (A5).
pub(super) struct Seal<'a> {
    pub organisation_id: &'a str,
    pub key: &'a str,
    pub custodian_person_id: &'a str,
    /// The document's type: the registry grants PROFILE_STATUS per type.
    pub document_type: &'a str,
}

/// An organisation on the exchange: its registry id, its code and its name.
#[derive(Clone, Debug)]
pub(super) struct Party {
    pub code: OrganId,
    pub name: String,
}

impl Party {
    fn organization(&self) -> Organization {
        Organization {
            organ_name: Some(self.name.clone()),
            ..Organization::new(self.code)
        }
    }
}

/// The caller acts for the organisation it names (its client certificate's `[[callers]]`
/// entry): checked before anything is read, kept or asked, as every signing step checks it.
pub(super) fn acting_for(caller: &Caller, organisation_id: &str) -> Result<()> {
    if caller.acts_for(organisation_id) {
        return Ok(());
    }
    Err(Error::Refused(vec![crate::error::Refusal {
        rule: "caller".into(),
        reason: format!(
            "caller {:?} does not act for organisation {organisation_id:?}",
            caller.name
        ),
    }]))
}

/// A local timestamp as the exchange writes it.
pub(super) fn local(t: OffsetDateTime) -> PrimitiveDateTime {
    let t = t.to_offset(VIETNAM);
    PrimitiveDateTime::new(t.date(), t.time().replace_nanosecond(0).unwrap_or(t.time()))
}

/// The status message `code` from `from` about the document `about` (N6).
pub(super) fn status_message(
    from: &Party,
    about: ResponseFor,
    code: StatusCode,
    description: Option<String>,
    at: OffsetDateTime,
) -> StatusMessage {
    StatusMessage {
        from: from.organization(),
        response_for: about,
        staff_info: None,
        status_code: code,
        description,
        timestamp: local(at),
    }
}

impl DocumentsService {
    /// This organisation on the exchange: it must have a code in the registry (N6: the
    /// exchange addresses organisations by code only).
    pub(super) async fn party(&self, organisation_id: &str) -> Result<Party> {
        let found = self.signer.registry().organisation(organisation_id).await?;
        let name = found.name;
        let code = OrganId::parse(&found.code).map_err(|e| Error::InvalidField {
            field: "organisation_id",
            reason: format!(
                "organisation {organisation_id} has no usable organisation code in the registry \
                 (N6: the exchange addresses organisations by code): {e}"
            ),
        })?;
        Ok(Party { code, name })
    }

    /// Verifies an edXML document at the trusted time `at` (W5).
    pub(super) async fn verify_edxml(
        &self,
        xml: &[u8],
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> std::result::Result<EdxmlReport, kyso_edxml::EdxmlError> {
        let options = EdxmlVerifyOptions {
            at: Some(at),
            ..EdxmlVerifyOptions::default()
        };
        self.signer
            .verifier()
            .verify_edxml(xml, &options, now)
            .await
    }

    /// A status message sealed with the organisation's seal (profile STATUS, for the
    /// document's type, which the registry must grant the organisation) and kept (D7), as
    /// step `step` of the run (the seal journaled like the envelope's: `sealed_step`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn status_step(
        &self,
        run: &mut Run,
        step: &str,
        caller: &Caller,
        seal: &Seal<'_>,
        to: OrganId,
        status: &StatusMessage,
        now: OffsetDateTime,
    ) -> Result<dpb::SignedStatus> {
        let written = kyso_edxml::envelope::write_status(status)?;
        let (xml, audit) = self
            .sealed_step(
                run,
                step,
                caller,
                XmlSealRequest {
                    key: seal.key.to_owned(),
                    context: pb::SigningContext {
                        document: Some(pb::DocumentInfo {
                            document_type: seal.document_type.to_owned(),
                            number_and_symbol: status.response_for.code.clone(),
                            classification: pb::Classification::None as i32,
                            ..Default::default()
                        }),
                        profile: pb::Profile::Status as i32,
                        mode: super::OWN,
                        acting_person_id: seal.custodian_person_id.to_owned(),
                        organisation_id: seal.organisation_id.to_owned(),
                    },
                    unsigned: written.text,
                    signature_at: written.signature_at,
                    content_sha256: None,
                },
                now,
            )
            .await?;
        let sha256 = self.stored_step(
            run,
            &format!("{step}-store"),
            "status-stored",
            &xml,
            seal.organisation_id,
        )?;
        Ok(dpb::SignedStatus {
            code: status.status_code.as_str().to_owned(),
            counterparty_code: to.to_string(),
            xml,
            sha256,
            audit: Some(audit),
        })
    }

    /// An entry of the document's status history (W4) as step `step`, recorded once: the
    /// status message or envelope kept (`kept_sha256`) and, for an accepted document, the
    /// stamped copy kept with it (`document_sha256`: what a take-back deletes).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn history_step(
        &self,
        run: &mut Run,
        step: &str,
        caller: &Caller,
        entry_id: &str,
        organisation_id: &str,
        counterparty: OrganId,
        direction: reg::StatusDirection,
        code: &str,
        description: &str,
        kept_sha256: &str,
        document_sha256: &str,
        at: OffsetDateTime,
    ) -> Result<Option<reg::DocumentStatus>> {
        if run.done(step).is_some() {
            return Ok(None);
        }
        let recorded = self
            .signer
            .registry()
            .record_document_status(reg::RecordDocumentStatusRequest {
                organisation_id: organisation_id.to_owned(),
                register_entry_id: entry_id.to_owned(),
                counterparty_code: counterparty.to_string(),
                direction: direction as i32,
                code: code.to_owned(),
                description: description.to_owned(),
                envelope_sha256: kept_sha256.to_owned(),
                document_sha256: document_sha256.to_owned(),
                at: Some(stamp(at)),
                change: Some(reg::Change {
                    actor: caller.name.clone(),
                    reason: format!("W4: status {code:?} {direction:?}"),
                }),
            })
            .await?;
        run.save(
            step,
            Step {
                done: true,
                ..Step::default()
            },
        )
        .map_err(|e| self.journal_error(e))?;
        Ok(Some(recorded))
    }
}

/// One bounded read of an edXML document (`field` names it in the refusal); its signature
/// is judged by the verifier, not here.
pub(super) fn read_message(xml: &[u8], field: &'static str) -> Result<Message> {
    kyso_edxml::open(
        xml,
        &kyso_edxml::EdxmlLimits::default(),
        &kyso_edxml::dsig::DsigPolicy::default(),
    )
    .map(|o| o.message)
    .map_err(|e| Error::InvalidField {
        field,
        reason: format!("not an edXML document kyso can read (N6): {e}"),
    })
}

/// What a status message answers: the document by its sender's code, its number and
/// symbol, its identifier and date.
pub(super) fn response_for(header: &kyso_edxml::envelope::model::MessageHeader) -> ResponseFor {
    ResponseFor {
        organ_id: header.from.organ_id,
        code: format!("{}/{}", header.code.code_number, header.code.code_notation),
        document_id: Some(header.document_id.clone()),
        promulgation_date: Some(header.promulgation_info.promulgation_date),
    }
}
