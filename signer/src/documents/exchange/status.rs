//! Status messages from the other side (`ReceiveStatus`) and take-back (`TakeBack`): N6,
//! W4, N5 art. 18.4b.
//!
//! A status message names the document it answers by its sender's code and its number and
//! symbol. Either it is about a document this organisation sent (the receiver's 01-06, 15,
//! 16), or about one it received from the status's sender (13, a take-back request); anything
//! else is not this organisation's business and is refused. A status is taken only when its
//! signature verifies and its signer's authority is not refused: the history a sender follows
//! (W4) is built from what the other side signed.

use kyso_edxml::envelope::Message;
use kyso_edxml::envelope::model::ResponseFor;
use kyso_edxml::organ::OrganId;
use kyso_edxml::status::{StatusCode, StatusMessage};
use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_validation::report::Indication;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Refusal, Result};

use super::super::receipt::receipt_time;
use super::super::retry::{Answer, Begun, request_sha256};
use super::super::{DocumentsService, require};
use super::receive::ENVELOPE_FIELD;
use super::{Party, Seal, read_message, response_for, status_message};

fn refuse<T>(rule: &str, reason: String) -> Result<T> {
    Err(Error::Refused(vec![Refusal {
        rule: rule.into(),
        reason,
    }]))
}

/// Which side of the document this organisation is on.
enum Side {
    /// It sent the document: the entry of its outgoing register.
    Sender(reg::RegisterEntry),
    /// It received the document from the status's sender: the incoming entry.
    Receiver(reg::RegisterEntry),
}

impl DocumentsService {
    pub(crate) async fn receive_status(
        &self,
        caller: &Caller,
        mut r: dpb::ReceiveStatusRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::ReceiveStatusResponse> {
        require("organisation_id", &r.organisation_id)?;
        require("seal_key", &r.seal_key)?;
        super::acting_for(caller, &r.organisation_id)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        if r.status.is_empty() {
            return Err(Error::InvalidField {
                field: "status",
                reason: "send the status message as received".into(),
            });
        }
        let receipt = receipt_time(caller, r.received_at.as_ref(), now, self.receipt_bound)?;
        let us = self.party(&r.organisation_id).await?;
        let status = read_status(&r.status)?;
        let from = status.from.organ_id;
        let code = status.status_code;
        let key = std::mem::take(&mut r.idempotency_key);
        let hash = request_sha256(&r);
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };
        // The other side's signature: verified at the receipt time (W5), its signer's
        // authority not refused (A4; outside this registry: not checked).
        let report = self
            .verify_edxml(&r.status, receipt.at, now)
            .await
            .map_err(|e| Error::InvalidField {
                field: "status",
                reason: format!("the status message cannot be verified (N6): {e}"),
            })?;
        let Some(sig) = &report.signature else {
            return refuse(
                "N6",
                format!(
                    "the status message carries no verifiable XML signature: {}",
                    report.warnings.join("; ")
                ),
            );
        };
        if sig.indication != Indication::TotalPassed {
            return refuse(
                "V1",
                format!(
                    "the status message's signature: {:?}{}: {}",
                    sig.indication,
                    sig.sub_indication
                        .map(|s| format!("/{s:?}"))
                        .unwrap_or_default(),
                    sig.message
                ),
            );
        }
        let side = self.side(&r.organisation_id, &us, &status).await?;
        let entry = match &side {
            Side::Sender(e) | Side::Receiver(e) => e,
        };
        if let Some(leaf) = sig.path.first() {
            let at = sig.reference_time.time.min(receipt.at);
            let judged = self
                .signer_authority(
                    ENVELOPE_FIELD,
                    leaf,
                    &entry.document_type,
                    &from.to_string(),
                    at,
                )
                .await?;
            if judged.outcome.outcome == reg::AuthorityOutcome::Refused as i32 {
                return refuse(&judged.outcome.rule, judged.outcome.message);
            }
        }
        let kept = self.stored_step(
            &mut run,
            "received",
            "received-stored",
            &r.status,
            &r.organisation_id,
        )?;
        let description = status.description.clone().unwrap_or_default();
        let mut answer = dpb::ReceiveStatusResponse {
            code: code.as_str().to_owned(),
            from_code: from.to_string(),
            register_entry_id: entry.id.clone(),
            verification: Some(kyso_validation::convert::edxml_to_pb(&report)),
            ..Default::default()
        };
        {
            let recorded = self
                .history_step(
                    &mut run,
                    "history-received",
                    caller,
                    &entry.id,
                    &r.organisation_id,
                    from,
                    reg::StatusDirection::Received,
                    code.as_str(),
                    &description,
                    &kept,
                    "",
                    receipt.at,
                )
                .await?;
            answer.recorded = recorded;
        }
        if let Side::Receiver(entry) = side {
            // W4, N5 art. 18.4b: the copies deleted and the sender told (15). A document
            // refused on arrival (02) was never entered with a number: there is nothing to
            // take back, and the sender is told so (16, with the reason).
            let seal = Seal {
                organisation_id: &r.organisation_id,
                key: &r.seal_key,
                custodian_person_id: &r.custodian_person_id,
                document_type: &entry.document_type,
            };
            let (reply, why) = if entry.refused {
                (
                    StatusCode::TakeBackRefused,
                    format!(
                        "W4: văn bản {} đã bị từ chối khi nhận (02), không vào sổ: {}",
                        entry.number_and_symbol, entry.reason
                    ),
                )
            } else {
                self.delete_copies(&r.organisation_id, &entry).await?;
                (
                    StatusCode::TakeBackAccepted,
                    format!(
                        "Đã xóa văn bản {} (số đến {}/{})",
                        entry.number_and_symbol, entry.number, entry.year
                    ),
                )
            };
            let message = status_message(
                &us,
                status.response_for.clone(),
                reply,
                Some(why.clone()),
                receipt.at,
            );
            let signed = self
                .status_step(
                    &mut run,
                    "status-answer",
                    caller,
                    &seal,
                    from,
                    &message,
                    now,
                )
                .await?;
            {
                self.history_step(
                    &mut run,
                    "history-answer",
                    caller,
                    &entry.id,
                    &r.organisation_id,
                    from,
                    reg::StatusDirection::Sent,
                    reply.as_str(),
                    &why,
                    &signed.sha256,
                    "",
                    receipt.at,
                )
                .await?;
            }
            answer.answer = Some(signed);
        }
        let mut journaled = answer.clone();
        if let Some(a) = &mut journaled.answer {
            a.xml.clear();
        }
        self.finish(&mut run, &journaled)?;
        Ok(answer)
    }

    pub(crate) async fn take_back(
        &self,
        caller: &Caller,
        mut r: dpb::TakeBackRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::TakeBackResponse> {
        require("organisation_id", &r.organisation_id)?;
        require("sha256", &r.sha256)?;
        require("seal_key", &r.seal_key)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        super::acting_for(caller, &r.organisation_id)?;
        require("reason", &r.reason)?;
        let us = self.party(&r.organisation_id).await?;
        let key = std::mem::take(&mut r.idempotency_key);
        let hash = request_sha256(&r);
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };
        let registry = self.signer.registry();
        let Some(entry) = registry
            .register_entries(&r.organisation_id, reg::Direction::Outgoing, &r.sha256)
            .await?
            .into_iter()
            .next()
        else {
            return refuse(
                "W4",
                format!(
                    "document {} is not in the outgoing register of {}",
                    r.sha256, r.organisation_id
                ),
            );
        };
        // W4: to every organisation it was sent to, as the history says.
        let history = registry
            .document_statuses(&r.organisation_id, &entry.id)
            .await?;
        let mut sent: Vec<(OrganId, String)> = Vec::new();
        for s in &history {
            if s.direction == reg::StatusDirection::Sent as i32 && s.code.is_empty() {
                let to = OrganId::parse(&s.counterparty_code).map_err(|e| Error::Storage {
                    reason: format!("the register's history holds a bad code: {e}"),
                })?;
                if !sent.iter().any(|(c, _)| *c == to) {
                    sent.push((to, s.envelope_sha256.clone()));
                }
            }
        }
        let Some((_, envelope_sha256)) = sent.first() else {
            return refuse(
                "W4",
                format!(
                    "document {} was never sent on the exchange: nothing to take back",
                    entry.number_and_symbol
                ),
            );
        };
        // What the 13 answers: the document as the envelope sent named it.
        let about = self.sent_document(envelope_sha256)?;
        let seal = Seal {
            organisation_id: &r.organisation_id,
            key: &r.seal_key,
            custodian_person_id: &r.custodian_person_id,
            document_type: &entry.document_type,
        };
        let mut statuses = Vec::with_capacity(sent.len());
        for (to, _) in &sent {
            let message = status_message(
                &us,
                about.clone(),
                StatusCode::TakeBackRequested,
                Some(r.reason.clone()),
                now,
            );
            let signed = self
                .status_step(
                    &mut run,
                    &format!("status-13-{to}"),
                    caller,
                    &seal,
                    *to,
                    &message,
                    now,
                )
                .await?;
            self.history_step(
                &mut run,
                &format!("history-13-{to}"),
                caller,
                &entry.id,
                &r.organisation_id,
                *to,
                reg::StatusDirection::Sent,
                StatusCode::TakeBackRequested.as_str(),
                &r.reason,
                &signed.sha256,
                "",
                now,
            )
            .await?;
            statuses.push(signed);
        }
        let answer = dpb::TakeBackResponse {
            statuses,
            register_entry_id: entry.id.clone(),
        };
        let mut journaled = answer.clone();
        for s in &mut journaled.statuses {
            s.xml.clear();
        }
        self.finish(&mut run, &journaled)?;
        Ok(answer)
    }

    /// The register entry a status message is about, and which side this organisation is on.
    async fn side(
        &self,
        organisation_id: &str,
        us: &Party,
        status: &StatusMessage,
    ) -> Result<Side> {
        let from = status.from.organ_id;
        let about = &status.response_for;
        let code = status.status_code;
        let registry = self.signer.registry();
        if about.organ_id == us.code {
            if code == StatusCode::TakeBackRequested {
                return refuse(
                    "N6",
                    format!(
                        "a take-back request (13) about this organisation's own document comes from {from}, not from its sender"
                    ),
                );
            }
            // A document this organisation sent to `from`.
            for entry in registry
                .entries_by_number(organisation_id, reg::Direction::Outgoing, &about.code)
                .await?
            {
                let history = registry
                    .document_statuses(organisation_id, &entry.id)
                    .await?;
                if history.iter().any(|s| {
                    s.direction == reg::StatusDirection::Sent as i32
                        && s.code.is_empty()
                        && s.counterparty_code == from.to_string()
                }) {
                    return Ok(Side::Sender(entry));
                }
            }
            return refuse(
                "W4",
                format!(
                    "no document {} of this organisation was sent to {from}",
                    about.code
                ),
            );
        }
        if about.organ_id == from {
            if code != StatusCode::TakeBackRequested {
                return refuse(
                    "N6",
                    format!(
                        "status {} about {from}'s own document comes from its receiver, not from {from}",
                        code.as_str()
                    ),
                );
            }
            // A document received from `from`.
            for entry in registry
                .entries_by_number(organisation_id, reg::Direction::Incoming, &about.code)
                .await?
            {
                let history = registry
                    .document_statuses(organisation_id, &entry.id)
                    .await?;
                if history.iter().any(|s| {
                    s.direction == reg::StatusDirection::Received as i32
                        && s.code.is_empty()
                        && s.counterparty_code == from.to_string()
                }) {
                    return Ok(Side::Receiver(entry));
                }
            }
            return refuse(
                "W4",
                format!("no document {} from {from} is held here", about.code),
            );
        }
        refuse(
            "N6",
            format!(
                "the status is about a document of {}, neither this organisation's ({}) nor its sender's ({from})",
                about.organ_id, us.code
            ),
        )
    }

    /// W4, N5 art. 18.4b: every copy of a received document kept here: the envelope, the
    /// document as received and as stamped.
    async fn delete_copies(&self, organisation_id: &str, entry: &reg::RegisterEntry) -> Result<()> {
        let history = self
            .signer
            .registry()
            .document_statuses(organisation_id, &entry.id)
            .await?;
        let mut copies = vec![entry.sha256.clone()];
        for s in &history {
            if s.direction == reg::StatusDirection::Received as i32 && s.code.is_empty() {
                copies.push(s.envelope_sha256.clone());
            }
            if !s.document_sha256.is_empty() {
                copies.push(s.document_sha256.clone());
            }
        }
        for sha in copies.iter().filter(|s| !s.is_empty()) {
            self.store.remove(sha).map_err(|e| self.store_error(e))?;
        }
        Ok(())
    }

    /// What an envelope this organisation sent answers to (its sender, number, identifier).
    fn sent_document(&self, envelope_sha256: &str) -> Result<ResponseFor> {
        let xml = self.original(envelope_sha256)?;
        match read_message(&xml, "envelope")? {
            Message::Envelope(e) => Ok(response_for(&e.header)),
            Message::Status(_) => Err(Error::Storage {
                reason: format!("{envelope_sha256} is a status message, not the envelope sent"),
            }),
        }
    }
}

/// A status message as received (N6: unknown codes are refused by the reader).
fn read_status(xml: &[u8]) -> Result<StatusMessage> {
    match read_message(xml, "status")? {
        Message::Status(s) => Ok(*s),
        Message::Envelope(_) => Err(Error::InvalidField {
            field: "status",
            reason: "a document envelope, not a status message: ReceiveEnvelope takes it".into(),
        }),
    }
}

impl Answer for dpb::ReceiveStatusResponse {
    const OPERATION: &'static str = "ReceiveStatus";
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        if let Some(a) = &mut self.answer {
            a.xml = documents.original(&a.sha256)?;
        }
        Ok(())
    }
}

impl Answer for dpb::TakeBackResponse {
    const OPERATION: &'static str = "TakeBack";
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        for s in &mut self.statuses {
            s.xml = documents.original(&s.sha256)?;
        }
        Ok(())
    }
}
