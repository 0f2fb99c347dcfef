//! Custodians of organisation certificates (A5): assigned by written decision, a member of
//! the certificate's organisation, replaced only with a handover record.

use serde_json::json;
use sqlx::AnyConnection;

use super::Book;
use super::certificates::cert_by_fingerprint;
use super::model::{Change, CustodianAssignment};
use crate::error::{Error, Result};
use crate::storage::new_id;

/// Whether the person holds any title in the organisation at `t` (a member, A5).
async fn holds_title(conn: &mut AnyConnection, person: &str, org: &str, t: i64) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM appointments a JOIN titles t ON t.id = a.title_id \
         WHERE a.person_id = $1 AND a.organisation_id = $2 AND a.valid_from <= $3 \
         AND (a.valid_to IS NULL OR a.valid_to > $3)",
    )
    .bind(person)
    .bind(org)
    .bind(t)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// The custodian of an organisation certificate at `t` (A5).
async fn custodian_at(conn: &mut AnyConnection, cert_id: &str, t: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT person_id FROM custodians WHERE certificate_id = $1 AND valid_from <= $2 \
         AND (valid_to IS NULL OR valid_to > $2) ORDER BY valid_from DESC LIMIT 1",
    )
    .bind(cert_id)
    .bind(t)
    .fetch_optional(conn)
    .await?)
}

impl Book {
    /// Assigns the custodian of an organisation certificate by written
    /// decision; replacing one needs a handover record (A5).
    pub async fn assign_custodian(
        &self,
        change: &Change,
        req: &CustodianAssignment,
        now: i64,
    ) -> Result<String> {
        let fp = &req.fingerprint;
        let person = &req.person_id;
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::rule_invalid(
                "A5",
                "decision_ref",
                "a custodian is assigned by a written decision of the head of the organisation",
            ));
        }
        let decision_date = req.decision_date;
        let effective = req.effective_at.unwrap_or(now);
        if decision_date > effective {
            return Err(Error::field(
                "decision_date",
                "after the assignment takes effect",
            ));
        }
        let handover = req.handover_record.trim().to_owned();
        let mut tx = self.db.begin_write().await?;
        let c = cert_by_fingerprint(&mut tx, "fingerprint", fp).await?;
        if c.kind != "organisation" {
            return Err(Error::rule_invalid(
                "A1",
                "fingerprint",
                "a personal certificate is used only by its holder; it has no custodian",
            ));
        }
        let home: Option<String> =
            sqlx::query_scalar("SELECT organisation_id FROM people WHERE id = $1")
                .bind(person)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(home) = home else {
            return Err(Error::not_found("person", "person_id", person));
        };
        let member = home == c.organisation_id
            || holds_title(&mut tx, person, &c.organisation_id, effective).await?;
        if !member {
            return Err(Error::rule(
                "A5",
                "person_id",
                "the custodian must be a member (the clerk) of the certificate's organisation",
            ));
        }
        let current = custodian_at(&mut tx, &c.id, effective).await?;
        if let Some(cur) = &current {
            if cur == person {
                return Err(Error::rule(
                    "A5",
                    "person_id",
                    "this person is already the custodian",
                ));
            }
            if handover.is_empty() {
                return Err(Error::rule(
                    "A5",
                    "handover_record",
                    "a change of custodian needs a handover record",
                ));
            }
            sqlx::query(
                "UPDATE custodians SET valid_to = $1 WHERE certificate_id = $2 AND person_id = $3 \
                 AND valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)",
            )
            .bind(effective)
            .bind(&c.id)
            .bind(cur)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO custodian_handovers (id, certificate_id, from_person_id, \
                 to_person_id, record_ref, handed_over_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new_id("hnd"))
            .bind(&c.id)
            .bind(cur)
            .bind(person)
            .bind(&handover)
            .bind(effective)
            .execute(&mut *tx)
            .await?;
        }
        let id = new_id("cus");
        sqlx::query(
            "INSERT INTO custodians (id, certificate_id, person_id, decision_ref, decision_date, \
             valid_from, valid_to) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&id)
        .bind(&c.id)
        .bind(person)
        .bind(&decision)
        .bind(decision_date)
        .bind(effective)
        .execute(&mut *tx)
        .await?;
        let data = json!({"fingerprint": fp, "person_id": person, "previous": current,
            "decision_ref": decision, "decision_date": decision_date,
            "handover_record": Some(handover).filter(|h| !h.is_empty()),
            "effective_at": effective});
        self.commit(tx, change, now, "custodian.assigned", &id, data)
            .await?;
        Ok(id)
    }
}
