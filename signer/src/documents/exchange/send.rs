//! W1 -> send (N6): an issued document of the organisation's outgoing register put in an
//! edXML envelope and sealed with the organisation's key by its custodian (A5), each step
//! journaled for a retry (see `retry`).
//!
//! Nothing in the envelope's header is the caller's word but the recipients, the subject and
//! the place: the document's type, number and symbol and date come from its outgoing register
//! entry (found by the SHA-256 of its stored original, W1), the sender's code and name from
//! the registry, the attachment from the document store (D7). The seal is made last over the
//! text as written (EXCHANGE, `crate::service::xml`), and the registry's `CheckSeal` checks
//! again that the document is in the outgoing register (W1) before the HSM signs.

use kyso_edxml::attachment::Attachment;
use kyso_edxml::envelope::model::{
    Bussiness, BussinessDocType, Code, DocumentId, DocumentType, Envelope, ManifestReference,
    MessageHeader, Organization, PromulgationInfo, TraceHeader, TraceHeaderList,
};
use kyso_edxml::organ::OrganId;
use kyso_proto::documents::v1 as dpb;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use time::OffsetDateTime;

use crate::config::Caller;
use crate::error::{Error, Refusal, Result};
use crate::journal::{Run, Step};
use crate::service::{Origin, XmlSealRequest, XmlSealed};

use super::super::receipt::receipt_time;
use super::super::retry::{Answer, Begun, request_sha256};
use super::super::{DocumentsService, OWN, require};
use super::VIETNAM as VN;

/// The most recipients one envelope names.
const MAX_RECIPIENTS: usize = 256;

/// The step of the envelope's seal in the journal.
const SEAL_STEP: &str = "exchange-seal";

impl DocumentsService {
    pub(crate) async fn send_outgoing(
        &self,
        caller: &Caller,
        mut r: dpb::SendOutgoingRequest,
        now: OffsetDateTime,
    ) -> Result<dpb::SendOutgoingResponse> {
        require("organisation_id", &r.organisation_id)?;
        require("sha256", &r.sha256)?;
        require("seal_key", &r.seal_key)?;
        require("custodian_person_id", &r.custodian_person_id)?;
        require("subject", &r.subject)?;
        let recipients = recipients(&r.recipients)?;
        let sha256 = normalise_sha256(&r.sha256)?;
        // R1: the caller acts for the organisation whose original is sent (checked before
        // anything is read, so a caller learns nothing of other organisations' files).
        if !caller.organisations.is_empty() && !caller.organisations.contains(&r.organisation_id) {
            return Err(Error::Refused(vec![Refusal {
                rule: "R1".into(),
                reason: format!(
                    "caller {:?} does not act for organisation {:?}",
                    caller.name, r.organisation_id
                ),
            }]));
        }
        // W5: the sender's trace time is the clock, or the exchange system's within the bound.
        let sent_at = receipt_time(caller, r.sent_at.as_ref(), now, self.receipt_bound)?.at;
        let key = std::mem::take(&mut r.idempotency_key);
        let hash = request_sha256(&r);
        let mut run = match self.begin(caller, &r.organisation_id, &key, &hash, now)? {
            Begun::Answered(answer) => return Ok(answer),
            Begun::Run(run) => *run,
        };

        // W1: only a document of the organisation's outgoing register is sent.
        let entry = self.outgoing_entry(&r.organisation_id, &sha256).await?;
        // D7, R1: the original as stored, and stored for this organisation.
        let owners = self
            .store
            .organisations(&sha256)
            .map_err(|e| self.store_error(e))?;
        if !owners.contains(&r.organisation_id) {
            return Err(Error::Refused(vec![Refusal {
                rule: "R1".into(),
                reason: format!(
                    "the original {sha256} is not stored for organisation {:?}",
                    r.organisation_id
                ),
            }]));
        }
        let pdf = self.original(&sha256)?;
        let sender = self
            .signer
            .registry()
            .organisation(&r.organisation_id)
            .await?;
        let issue_date = entry_date(&entry)?;
        let envelope = build_envelope(&Outgoing {
            sender: &sender,
            recipients: recipients.clone(),
            entry: &entry,
            issue_date,
            subject: &r.subject,
            place: &r.place,
            sent_at,
            pdf,
        })?;
        let written = kyso_edxml::envelope::write(&envelope)?;
        let context = pb::SigningContext {
            document: Some(pb::DocumentInfo {
                document_type: entry.document_type.clone(),
                number_and_symbol: entry.number_and_symbol.clone(),
                issue_date: format!(
                    "{:04}-{:02}-{:02}",
                    issue_date.year(),
                    u8::from(issue_date.month()),
                    issue_date.day()
                ),
                classification: pb::Classification::None as i32,
            }),
            profile: pb::Profile::Exchange as i32,
            mode: OWN,
            acting_person_id: r.custodian_person_id.clone(),
            organisation_id: r.organisation_id.clone(),
        };
        let content_sha256 = hex::decode(&sha256).map_err(|e| Error::InvalidField {
            field: "sha256",
            reason: e.to_string(),
        })?;
        let (sealed, audit) = self
            .sealed_step(
                &mut run,
                SEAL_STEP,
                caller,
                XmlSealRequest {
                    key: r.seal_key.clone(),
                    context,
                    unsigned: written.text,
                    signature_at: written.signature_at,
                    content_sha256: Some(content_sha256),
                },
                now,
            )
            .await?;
        let envelope_sha256 =
            self.stored_step(&mut run, "store", "stored", &sealed, &r.organisation_id)?;
        // W4: the sender follows the document until each recipient confirms it; the history
        // starts with the envelope sent to each.
        for to in &recipients {
            self.history_step(
                &mut run,
                &format!("history-sent-{to}"),
                caller,
                &entry.id,
                &r.organisation_id,
                *to,
                reg::StatusDirection::Sent,
                "",
                "",
                &envelope_sha256,
                "",
                sent_at,
            )
            .await?;
        }
        let mut answer = dpb::SendOutgoingResponse {
            envelope: Vec::new(),
            envelope_sha256,
            audit: Some(audit),
            register_entry_id: entry.id,
            register_number: entry.number,
            register_year: entry.year,
        };
        self.finish(&mut run, &answer)?;
        answer.envelope = sealed;
        Ok(answer)
    }

    /// W1: the entry of the organisation's outgoing register holding the document.
    async fn outgoing_entry(
        &self,
        organisation_id: &str,
        sha256: &str,
    ) -> Result<reg::RegisterEntry> {
        let entries = self
            .signer
            .registry()
            .register_entries(organisation_id, reg::Direction::Outgoing, sha256)
            .await?;
        entries
            .into_iter()
            .find(|e| !e.refused && e.direction == reg::Direction::Outgoing as i32)
            .ok_or_else(|| {
                Error::Refused(vec![Refusal {
                    rule: "W1".into(),
                    reason: format!(
                        "document {sha256} is not in the outgoing register of organisation \
                         {organisation_id:?}: only an issued and registered document is sent \
                         (W1, N6)"
                    ),
                }])
            })
    }

    /// The seal over the envelope as a journaled step: the journaled envelope when done;
    /// otherwise the intent is journaled, a seal a killed attempt made and never kept is
    /// recorded as not returned, and the envelope is sealed.
    pub(super) async fn sealed_step(
        &self,
        run: &mut Run,
        step: &str,
        caller: &Caller,
        req: XmlSealRequest,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, pb::AuditReceipt)> {
        if let Some(s) = run.done(step) {
            let xml = run
                .blob(&s.output_sha256)
                .map_err(|e| self.journal_error(e))?;
            let receipt = pb::AuditReceipt {
                sequence: s.audit_seq,
                record_hash: s.audit_hash.clone(),
            };
            return Ok((xml, receipt));
        }
        if let Some(begun) = run.step(step).cloned() {
            self.record_lost_signatures(run, caller, &begun, now)
                .await?;
        }
        let intent = Step {
            key: req.key.clone(),
            input_sha256: hex::encode(kyso_pki::crypto::sha256(req.unsigned.as_bytes())),
            audit_from: self.signer.audit().head_seq(),
            ..Step::default()
        };
        run.save(step, intent.clone())
            .map_err(|e| self.journal_error(e))?;
        let sealed: XmlSealed = self
            .signer
            .seal_xml_as(caller, req, Origin::Exchange, now)
            .await?;
        let xml = sealed.xml.into_bytes();
        let output_sha256 = run.put_blob(&xml).map_err(|e| self.journal_error(e))?;
        // The journal keeps the blob by its SHA-256: the sealed text's, or the store is not
        // keeping what it was given.
        if output_sha256 != hex::encode(&sealed.sha256) {
            return Err(Error::Storage {
                reason: format!(
                    "the journal kept the sealed envelope as {output_sha256}, not as its SHA-256 {}",
                    hex::encode(&sealed.sha256)
                ),
            });
        }
        run.save(
            step,
            Step {
                done: true,
                output_sha256,
                audit_seq: sealed.audit.sequence,
                audit_hash: sealed.audit.record_hash.clone(),
                ..intent
            },
        )
        .map_err(|e| self.journal_error(e))?;
        Ok((xml, sealed.audit))
    }
}

/// What an outgoing envelope is built from.
struct Outgoing<'a> {
    sender: &'a reg::OrganisationMatch,
    recipients: Vec<OrganId>,
    entry: &'a reg::RegisterEntry,
    issue_date: time::Date,
    subject: &'a str,
    place: &'a str,
    sent_at: OffsetDateTime,
    pdf: Vec<u8>,
}

/// The envelope (N6): the header from the register entry and the sender's registry facts,
/// the sender's trace, the issued original as its one attachment.
fn build_envelope(o: &Outgoing<'_>) -> Result<Envelope> {
    if o.sender.code.trim().is_empty() {
        return Err(Error::InvalidField {
            field: "organisation_id",
            reason: format!(
                "organisation {:?} has no organisation code (Decision 20/2020) in the registry: \
                 an envelope's From needs one (N6)",
                o.sender.id
            ),
        });
    }
    let code = OrganId::parse(&o.sender.code).map_err(|e| Error::InvalidField {
        field: "organisation_id",
        reason: format!("the organisation's code in the registry: {e}"),
    })?;
    let (number, notation) = split_number(&o.entry.number_and_symbol)?;
    let mut from = Organization::new(code);
    from.organ_name = Some(o.sender.name.clone());
    let sent = o.sent_at.to_offset(VN);
    let content_id = "cid:1".to_owned();
    let attachment_name = format!("{}.pdf", o.entry.number_and_symbol.replace('/', "_"));
    Ok(Envelope {
        header: MessageHeader {
            from,
            to: o
                .recipients
                .iter()
                .cloned()
                .map(Organization::new)
                .collect(),
            document_id: DocumentId {
                organ_id: code,
                date: o.issue_date,
                number: number.clone(),
                notation: notation.clone(),
            },
            code: Code {
                code_number: number,
                code_notation: notation,
            },
            promulgation_info: PromulgationInfo {
                place: o.place.trim().to_owned(),
                promulgation_date: o.issue_date,
            },
            document_type: DocumentType {
                doc_type: o.entry.document_type.clone(),
                type_detail: None,
                type_name: None,
            },
            subject: o.subject.trim().to_owned(),
            content: None,
            signer_info: None,
            due_date: None,
            other_info: None,
            response_for: Vec::new(),
            steering_type: None,
            to_places: Vec::new(),
        },
        trace: TraceHeaderList {
            trace_headers: vec![TraceHeader {
                organ_id: code,
                timestamp: time::PrimitiveDateTime::new(sent.date(), sent.time())
                    .replace_nanosecond(0)
                    .unwrap_or(time::PrimitiveDateTime::new(
                        sent.date(),
                        time::Time::MIDNIGHT,
                    )),
            }],
            bussiness: Some(Bussiness {
                doc_type: BussinessDocType::New,
                reason: None,
                document_id: None,
                paper: None,
                staff_info: None,
            }),
        },
        manifest: vec![ManifestReference {
            content_id: content_id.clone(),
            content_type: Some("application/pdf".into()),
            description: None,
            attachment_name: Some(attachment_name.clone()),
        }],
        attachments: vec![Attachment {
            content_id,
            attachment_name,
            description: None,
            content_type: "application/pdf".into(),
            data: o.pdf.clone(),
        }],
    })
}

/// `123/QĐ-UBND` -> (`123`, `QĐ-UBND`): the number ends at the first `/` (N6 DocumentId).
fn split_number(number_and_symbol: &str) -> Result<(String, String)> {
    match number_and_symbol.trim().split_once('/') {
        Some((n, s)) if !n.trim().is_empty() && !s.trim().is_empty() => {
            Ok((n.trim().to_owned(), s.trim().to_owned()))
        }
        _ => Err(Error::InvalidField {
            field: "sha256",
            reason: format!(
                "the register entry's number and symbol {number_and_symbol:?} is not \
                 Number/Notation: an envelope's Code and DocumentId need both (N6)"
            ),
        }),
    }
}

/// The issue date of a registered outgoing document: the local (UTC+7) date of its entry,
/// made on the day the seal was applied (W1, W2).
fn entry_date(entry: &reg::RegisterEntry) -> Result<time::Date> {
    let at = entry
        .at
        .as_ref()
        .ok_or_else(|| Error::RegistryUnavailable {
            reason: "ListRegister answered an entry without its time".into(),
        })?;
    let t = OffsetDateTime::from_unix_timestamp(at.seconds).map_err(|_| {
        Error::RegistryUnavailable {
            reason: "ListRegister answered an impossible time".into(),
        }
    })?;
    Ok(t.to_offset(VN).date())
}

/// The recipients' organisation codes (Decision 20/2020), at least one, none twice.
fn recipients(codes: &[String]) -> Result<Vec<OrganId>> {
    if codes.is_empty() {
        return Err(Error::InvalidField {
            field: "recipients",
            reason: "name at least one recipient by its organisation code".into(),
        });
    }
    if codes.len() > MAX_RECIPIENTS {
        return Err(Error::InvalidField {
            field: "recipients",
            reason: format!("at most {MAX_RECIPIENTS} recipients"),
        });
    }
    let mut out: Vec<OrganId> = Vec::with_capacity(codes.len());
    for c in codes {
        let code = OrganId::parse(c).map_err(|e| Error::InvalidField {
            field: "recipients",
            reason: format!("{:?}: {e}", c.chars().take(40).collect::<String>()),
        })?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    Ok(out)
}

/// A SHA-256 in hex, lower case.
fn normalise_sha256(text: &str) -> Result<String> {
    let t = text.trim().to_ascii_lowercase();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidField {
            field: "sha256",
            reason: "64 hexadecimal digits (the SHA-256 IssueOutgoing answered)".into(),
        });
    }
    Ok(t)
}

impl Answer for dpb::SendOutgoingResponse {
    const OPERATION: &'static str = "SendOutgoing";
    /// Answered before: the same answer, the envelope read back from the store.
    fn restore(&mut self, documents: &DocumentsService) -> Result<()> {
        self.envelope = documents.original(&self.envelope_sha256)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, non_snake_case)] // rule IDs in test names
mod tests {
    use super::*;

    #[test]
    fn number_and_symbol_split_at_the_first_slash_N6() {
        assert_eq!(
            split_number("123/QĐ-UBND").unwrap(),
            ("123".to_owned(), "QĐ-UBND".to_owned())
        );
        assert_eq!(
            split_number("05/2026/QĐ-UBND").unwrap(),
            ("05".to_owned(), "2026/QĐ-UBND".to_owned())
        );
        for bad in ["123", "/QĐ", "123/", ""] {
            assert!(split_number(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recipients_are_organisation_codes_N6() {
        let got = recipients(&["000.00.00.G22".into(), "000.00.00.G22".into()]).unwrap();
        assert_eq!(got.len(), 1);
        assert!(recipients(&[]).is_err());
        assert!(recipients(&["Sở Tài chính".into()]).is_err());
    }
}
