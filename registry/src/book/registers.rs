//! Organisations' outgoing and incoming document registers (W1, W3): numbered per
//! organisation, direction and year, a refused incoming document entered with its reason.

use serde_json::json;

use super::Book;
use super::model::{
    Change, Direction, EntryLookup, NewRegisterEntry, RegisterEntry, RegisterQuery,
};
use super::shared::{ORG_EXISTS, must_exist};
use crate::error::{Error, Result};
use crate::policy;
use crate::storage::new_id;

/// A register entry as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct EntryRow {
    id: String,
    organisation_id: String,
    direction: String,
    year: i64,
    number: i64,
    document_type: String,
    number_and_symbol: String,
    sha256: String,
    counterparty: String,
    refused: i64,
    reason: String,
    at: i64,
    signatures: String,
}

/// The columns of [`EntryRow`], of `document_register` named `d`.
pub(super) const ENTRY_COLUMNS_D: &str = "d.id, d.organisation_id, d.direction, d.year, \
    d.number, d.document_type, d.number_and_symbol, d.sha256, d.counterparty, d.refused, \
    d.reason, d.at, d.signatures";

impl From<EntryRow> for RegisterEntry {
    fn from(r: EntryRow) -> Self {
        Self {
            id: r.id,
            organisation_id: r.organisation_id,
            direction: if r.direction == "outgoing" {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
            year: i32::try_from(r.year).unwrap_or_default(),
            number: r.number,
            document_type: r.document_type,
            number_and_symbol: r.number_and_symbol,
            sha256: r.sha256,
            counterparty: r.counterparty,
            refused: r.refused != 0,
            reason: r.reason,
            at: r.at,
            // Written by this module from a checked list: a row that does not read back is
            // shown without outcomes rather than failing the whole register.
            signatures: serde_json::from_str(&r.signatures).unwrap_or_default(),
        }
    }
}

impl Book {
    /// W1, W3: enters a document in an organisation's outgoing or incoming register. The
    /// number is the next of the organisation's register for that direction and year (in
    /// Vietnam's time), given under the writers' lock, so two clerks never get the same
    /// number. A refused incoming document (W3) is entered with its reason and no number.
    pub async fn register_document(
        &self,
        change: &Change,
        req: &NewRegisterEntry,
        now: i64,
    ) -> Result<RegisterEntry> {
        let organisation = &req.organisation_id;
        let direction = req.direction.as_str();
        let sha256 = req.sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::field(
                "sha256",
                "must be 64 hex digits (SHA-256 of the stored original, D7)",
            ));
        }
        let document_type = &req.document_type;
        let number_and_symbol = req.number_and_symbol.trim().to_owned();
        if req.direction == Direction::Outgoing && number_and_symbol.is_empty() {
            return Err(Error::field(
                "number_and_symbol",
                "required for an outgoing document (W1)",
            ));
        }
        if req.refused && req.direction != Direction::Incoming {
            return Err(Error::field(
                "refused",
                "only an incoming document is refused (W3)",
            ));
        }
        let refusal = req.reason.trim().to_owned();
        if req.refused && refusal.is_empty() {
            return Err(Error::field(
                "reason",
                "required when refused: it goes back to the sender (W3)",
            ));
        }
        let counterparty = req.counterparty.trim().to_owned();
        let at = req.at.unwrap_or(now);
        let year = policy::vietnam_date(at)
            .map(|d| i64::from(d.year()))
            .ok_or_else(|| Error::field("at", "impossible date"))?;
        if req.direction != Direction::Incoming && !req.signatures.is_empty() {
            return Err(Error::field(
                "signatures",
                "only an incoming document's signatures are judged (W3)",
            ));
        }
        let signatures = if req.signatures.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&req.signatures)
                .map_err(|e| Error::field("signatures", e.to_string()))?
        };
        let mut tx = self.db.begin_write().await?;
        must_exist(
            &mut tx,
            ORG_EXISTS,
            "organisation",
            "organisation_id",
            organisation,
        )
        .await?;
        let number: i64 = if req.refused {
            0
        } else {
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM document_register \
                 WHERE organisation_id = $1 AND direction = $2 AND year = $3",
            )
            .bind(organisation)
            .bind(direction)
            .bind(year)
            .fetch_one(&mut *tx)
            .await?
        };
        let id = new_id("doc");
        sqlx::query(
            "INSERT INTO document_register (id, organisation_id, direction, year, number, \
             document_type, number_and_symbol, sha256, counterparty, refused, reason, at, \
             created_at, signatures) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&id)
        .bind(organisation)
        .bind(direction)
        .bind(year)
        .bind(number)
        .bind(document_type)
        .bind(&number_and_symbol)
        .bind(&sha256)
        .bind(&counterparty)
        .bind(i64::from(req.refused))
        .bind(&refusal)
        .bind(at)
        .bind(now)
        .bind(&signatures)
        .execute(&mut *tx)
        .await?;
        let data = json!({
            "organisation_id": organisation, "direction": direction, "year": year,
            "number": number, "document_type": document_type,
            "number_and_symbol": number_and_symbol, "sha256": sha256,
            "counterparty": counterparty, "refused": req.refused,
            "reason": refusal, "at": at, "signatures": req.signatures,
        });
        self.commit(tx, change, now, "document.registered", &id, data)
            .await?;
        Ok(RegisterEntry {
            id,
            organisation_id: organisation.clone(),
            direction: req.direction,
            year: i32::try_from(year).unwrap_or_default(),
            number,
            document_type: document_type.clone(),
            number_and_symbol,
            sha256,
            counterparty,
            refused: req.refused,
            reason: refusal,
            at,
            signatures: req.signatures.clone(),
        })
    }

    /// The register entries of an organisation, by year, direction and number.
    pub async fn list_register(&self, q: &RegisterQuery) -> Result<Vec<RegisterEntry>> {
        let direction = q.direction.map(Direction::as_str).unwrap_or("");
        let sha256 = q.sha256.trim().to_ascii_lowercase();
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT id, organisation_id, direction, year, number, document_type, \
             number_and_symbol, sha256, counterparty, refused, reason, at, signatures \
             FROM document_register WHERE organisation_id = $1 \
             AND ($2 = '' OR direction = $2) AND ($3 = 0 OR year = $3) \
             AND ($4 = '' OR sha256 = $4) AND ($5 = '' OR number_and_symbol = $5) \
             ORDER BY year, direction, number, at LIMIT 10000",
        )
        .bind(&q.organisation_id)
        .bind(direction)
        .bind(i64::from(q.year))
        .bind(&sha256)
        .bind(q.number_and_symbol.trim())
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(RegisterEntry::from).collect())
    }

    /// The last entry (by year and number) of an organisation's registers that was not
    /// refused and matches `q`: what the seal's side doors ask (`CheckSeal`). A COPY is made
    /// only of a document of the organisation's outgoing or incoming register, found by the
    /// SHA-256 of its stored original (A6, P3); an APPENDIX only with the number and symbol
    /// of a document of its outgoing register (D5, P4). Empty criteria match anything, so
    /// the caller gives at least one.
    pub async fn find_entry(&self, q: &EntryLookup) -> Result<Option<RegisterEntry>> {
        let direction = q.direction.map(Direction::as_str).unwrap_or("");
        let sha256 = q.sha256.trim().to_ascii_lowercase();
        let row: Option<EntryRow> = sqlx::query_as(
            "SELECT id, organisation_id, direction, year, number, document_type, \
             number_and_symbol, sha256, counterparty, refused, reason, at, signatures \
             FROM document_register WHERE organisation_id = $1 AND refused = 0 \
             AND ($2 = '' OR direction = $2) AND ($3 = '' OR sha256 = $3) \
             AND ($4 = '' OR number_and_symbol = $4) \
             ORDER BY year DESC, number DESC, at DESC LIMIT 1",
        )
        .bind(&q.organisation_id)
        .bind(direction)
        .bind(&sha256)
        .bind(q.number_and_symbol.trim())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(RegisterEntry::from))
    }
}
