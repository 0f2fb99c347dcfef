//! The status history of each registered document (issue 15, item 5): the envelope sent to
//! or received from each counterparty (code '') and the status messages that answer it (N6:
//! 01-06, 13, 15, 16; unknown codes refused), and the sender's view of what a counterparty
//! has not yet confirmed (W4).
//!
//! Who sends what (N6, N5): the receiver answers with 01-06, 15 and 16, the sender asks for a
//! take-back with 13. So for an outgoing entry the envelope and 13 are SENT and the other
//! codes RECEIVED; for an incoming entry the other way round. An answer is only about a
//! document exchanged with that counterparty: its envelope must be recorded first.

use kyso_edxml::status::StatusCode;
use kyso_pki::orgcode::OrgCode;
use serde_json::json;

use super::Book;
use super::model::{
    Change, Direction, DocumentStatus, NewDocumentStatus, RegisterEntry, StatusDirection,
    Unconfirmed,
};
use super::registers::{ENTRY_COLUMNS_D, EntryRow};
use crate::error::{Error, Result};
use crate::storage::{WriteTx, new_id};

/// The answers that settle an outgoing document for its sender (W4): refused (02), accepted
/// (03), assigned (04), in handling (05), finished (06), take-back accepted (15: the receiver
/// deleted it). 01 only says it arrived; 13 and 16 leave it where it was.
const SETTLING: &str = "('02', '03', '04', '05', '06', '15')";

/// The longest description kept (bad input is bounded).
const MAX_DESCRIPTION: usize = 2000;

/// At most this many rows in one answer.
const MAX_ROWS: i64 = 10_000;

/// A status row as stored.
#[derive(Debug, sqlx::FromRow)]
struct StatusRow {
    id: String,
    organisation_id: String,
    register_entry_id: String,
    counterparty_code: String,
    direction: String,
    code: String,
    description: String,
    envelope_sha256: String,
    document_sha256: String,
    at: i64,
    actor: String,
}

const STATUS_COLUMNS: &str = "id, organisation_id, register_entry_id, counterparty_code, \
    direction, code, description, envelope_sha256, document_sha256, at, actor";

impl From<StatusRow> for DocumentStatus {
    fn from(r: StatusRow) -> Self {
        Self {
            id: r.id,
            organisation_id: r.organisation_id,
            register_entry_id: r.register_entry_id,
            counterparty_code: r.counterparty_code,
            direction: StatusDirection::from_stored(&r.direction),
            code: r.code,
            description: r.description,
            envelope_sha256: r.envelope_sha256,
            document_sha256: r.document_sha256,
            at: r.at,
            actor: r.actor,
        }
    }
}

/// An unconfirmed (entry, counterparty) with the entry's columns.
#[derive(Debug, sqlx::FromRow)]
struct UnconfirmedRow {
    #[sqlx(flatten)]
    entry: EntryRow,
    counterparty_code: String,
    last_code: String,
    sent_at: i64,
    last_at: i64,
}

/// The code as stored: '' or a known N6 code; anything else refused (N6).
fn checked_code(code: &str) -> Result<Option<StatusCode>> {
    let code = code.trim();
    if code.is_empty() {
        return Ok(None);
    }
    StatusCode::parse(code)
        .map(Some)
        .map_err(|e| Error::rule_invalid("N6", "code", e.to_string()))
}

/// Which way a message about an entry of `entry` direction must go (N6): the envelope and a
/// take-back request (13) go from the sender, every other code from the receiver.
/// A SHA-256 given in hex (64 digits, lowercased), or empty.
fn optional_sha256(field: &'static str, given: &str) -> Result<String> {
    let v = given.trim().to_ascii_lowercase();
    if !v.is_empty() && (v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(Error::field(field, "64 hex digits (a SHA-256), or empty"));
    }
    Ok(v)
}

fn expected_direction(entry: Direction, code: Option<StatusCode>) -> StatusDirection {
    let from_sender = matches!(code, None | Some(StatusCode::TakeBackRequested));
    match (entry, from_sender) {
        (Direction::Outgoing, true) | (Direction::Incoming, false) => StatusDirection::Sent,
        (Direction::Outgoing, false) | (Direction::Incoming, true) => StatusDirection::Received,
    }
}

/// The direction of `organisation`'s entry `entry_id`; NotFound when its register has no
/// such entry (an entry of another organisation is not there for this one).
async fn entry_direction(
    conn: &mut sqlx::AnyConnection,
    organisation: &str,
    entry_id: &str,
) -> Result<Direction> {
    let direction: Option<String> = sqlx::query_scalar(
        "SELECT direction FROM document_register WHERE id = $1 AND organisation_id = $2",
    )
    .bind(entry_id)
    .bind(organisation)
    .fetch_optional(&mut *conn)
    .await?;
    direction
        .as_deref()
        .and_then(Direction::from_stored)
        .ok_or_else(|| {
            Error::not_found(
                "register entry of this organisation",
                "register_entry_id",
                entry_id,
            )
        })
}

impl Book {
    /// Records one message about a registered document (W4, N6), with its event, in one
    /// transaction. Refused: an unknown code (N6), a message going the wrong way for its
    /// code (N6), an answer about a document not exchanged with that counterparty (W4), an
    /// entry that is not `organisation_id`'s.
    pub async fn record_document_status(
        &self,
        change: &Change,
        req: &NewDocumentStatus,
        now: i64,
    ) -> Result<DocumentStatus> {
        let code = checked_code(&req.code)?;
        let counterparty = OrgCode::parse(&req.counterparty_code)
            .map_err(|e| Error::field("counterparty_code", e.to_string()))?
            .to_string();
        let description = req.description.trim().to_owned();
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(Error::field(
                "description",
                format!("at most {MAX_DESCRIPTION} characters"),
            ));
        }
        let envelope_sha256 = optional_sha256("envelope_sha256", &req.envelope_sha256)?;
        let document_sha256 = optional_sha256("document_sha256", &req.document_sha256)?;
        let at = req.at.unwrap_or(now);
        let by = change
            .by
            .as_ref()
            .map(|b| b.name.clone())
            .unwrap_or_default();
        let mut tx = self.db.begin_write().await?;
        let entry = entry_direction(&mut tx, &req.organisation_id, &req.register_entry_id).await?;
        let expected = expected_direction(entry, code);
        if req.direction != expected {
            let what = code.map_or("the document's envelope".to_owned(), |c| {
                format!("status {c} ({})", c.meaning())
            });
            return Err(Error::rule_invalid(
                "N6",
                "direction",
                format!(
                    "{what} about an {} document is {} by this organisation, not {}",
                    entry.as_str(),
                    expected.as_str(),
                    req.direction.as_str()
                ),
            ));
        }
        if code.is_some() {
            exchanged_with(&mut tx, &req.register_entry_id, &counterparty).await?;
        }
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM document_status")
            .fetch_one(&mut *tx)
            .await?;
        let id = new_id("dst");
        let code_text = code.map(StatusCode::as_str).unwrap_or("");
        sqlx::query(
            "INSERT INTO document_status (id, seq, organisation_id, register_entry_id, \
             counterparty_code, direction, code, description, envelope_sha256, document_sha256, \
             at, actor, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&id)
        .bind(seq)
        .bind(&req.organisation_id)
        .bind(&req.register_entry_id)
        .bind(&counterparty)
        .bind(req.direction.as_str())
        .bind(code_text)
        .bind(&description)
        .bind(&envelope_sha256)
        .bind(&document_sha256)
        .bind(at)
        .bind(&by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let data = json!({
            "organisation_id": req.organisation_id, "register_entry_id": req.register_entry_id,
            "counterparty_code": counterparty, "direction": req.direction.as_str(),
            "code": code_text, "description": description,
            "envelope_sha256": envelope_sha256, "document_sha256": document_sha256, "at": at,
        });
        self.commit(tx, change, now, "document.status", &id, data)
            .await?;
        Ok(DocumentStatus {
            id,
            organisation_id: req.organisation_id.clone(),
            register_entry_id: req.register_entry_id.clone(),
            counterparty_code: counterparty,
            direction: Some(req.direction),
            code: code_text.to_owned(),
            description,
            envelope_sha256,
            document_sha256,
            at,
            actor: by,
        })
    }

    /// The status history of `organisation`'s entry `entry_id`, by time, then in the order
    /// recorded.
    pub async fn list_document_status(
        &self,
        organisation: &str,
        entry_id: &str,
    ) -> Result<Vec<DocumentStatus>> {
        let mut conn = self.db.pool().acquire().await?;
        entry_direction(&mut conn, organisation, entry_id).await?;
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM document_status WHERE register_entry_id = $1 \
             ORDER BY at, seq LIMIT {MAX_ROWS}"
        );
        let rows: Vec<StatusRow> = sqlx::query_as(&sql)
            .bind(entry_id)
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows.into_iter().map(DocumentStatus::from).collect())
    }

    /// W4: for each outgoing entry of `organisation` and each counterparty it was sent to,
    /// the pairs without an answer from that counterparty that settles it ([`SETTLING`]),
    /// oldest first.
    pub async fn list_unconfirmed(&self, organisation: &str) -> Result<Vec<Unconfirmed>> {
        let sql = format!(
            "WITH pairs AS ( \
               SELECT s.register_entry_id, s.counterparty_code, MIN(s.at) AS sent_at \
               FROM document_status s \
               WHERE s.organisation_id = $1 AND s.direction = 'sent' AND s.code = '' \
               AND NOT EXISTS (SELECT 1 FROM document_status a \
                 WHERE a.register_entry_id = s.register_entry_id \
                 AND a.counterparty_code = s.counterparty_code \
                 AND a.direction = 'received' AND a.code IN {SETTLING}) \
               GROUP BY s.register_entry_id, s.counterparty_code \
             ) \
             SELECT {ENTRY_COLUMNS_D}, p.counterparty_code, p.sent_at, \
               COALESCE((SELECT a.code FROM document_status a \
                 WHERE a.register_entry_id = p.register_entry_id \
                 AND a.counterparty_code = p.counterparty_code AND a.direction = 'received' \
                 ORDER BY a.at DESC, a.seq DESC LIMIT 1), '') AS last_code, \
               (SELECT MAX(a.at) FROM document_status a \
                 WHERE a.register_entry_id = p.register_entry_id \
                 AND a.counterparty_code = p.counterparty_code) AS last_at \
             FROM pairs p JOIN document_register d ON d.id = p.register_entry_id \
             WHERE d.direction = 'outgoing' \
             ORDER BY p.sent_at, d.id, p.counterparty_code LIMIT {MAX_ROWS}"
        );
        let rows: Vec<UnconfirmedRow> = sqlx::query_as(&sql)
            .bind(organisation)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Unconfirmed {
                entry: RegisterEntry::from(r.entry),
                counterparty_code: r.counterparty_code,
                last_code: r.last_code,
                sent_at: r.sent_at,
                last_at: r.last_at,
            })
            .collect())
    }
}

/// W4: an answer is about a document exchanged with that counterparty: the entry's envelope
/// to or from it must be recorded.
async fn exchanged_with(tx: &mut WriteTx, entry_id: &str, counterparty: &str) -> Result<()> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM document_status WHERE register_entry_id = $1 \
         AND counterparty_code = $2 AND code = ''",
    )
    .bind(entry_id)
    .bind(counterparty)
    .fetch_one(&mut **tx)
    .await?;
    if n == 0 {
        return Err(Error::rule(
            "W4",
            "counterparty_code",
            format!(
                "no envelope of this document was exchanged with {counterparty}: record it \
                 (code '') before the answers"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(non_snake_case)] // rule IDs in test names
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_are_refused_N6() {
        for bad in ["07", "08", "12", "14", "1", "001", "xx"] {
            assert!(checked_code(bad).is_err(), "{bad}");
        }
        assert_eq!(checked_code("").ok(), Some(None));
        assert_eq!(checked_code("03").ok(), Some(Some(StatusCode::Accepted)));
    }

    #[test]
    fn who_sends_what_N6() {
        use StatusDirection::{Received, Sent};
        assert_eq!(expected_direction(Direction::Outgoing, None), Sent);
        assert_eq!(
            expected_direction(Direction::Outgoing, Some(StatusCode::TakeBackRequested)),
            Sent
        );
        assert_eq!(
            expected_direction(Direction::Outgoing, Some(StatusCode::Accepted)),
            Received
        );
        assert_eq!(expected_direction(Direction::Incoming, None), Received);
        assert_eq!(
            expected_direction(Direction::Incoming, Some(StatusCode::Arrived)),
            Sent
        );
    }
}
