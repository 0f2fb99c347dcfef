//! Delegations for signing on behalf, KT./TL./TUQ. (A2): by decision, never to oneself,
//! never in a cycle, never for a classified document type (A7); revoked by decision.

use serde_json::json;

use super::Book;
use super::model::{Change, DelegationRevocation, NewDelegation};
use super::shared::{ORG_EXISTS, PERSON_EXISTS, must_exist, need};
use super::titles::classification_of;
use crate::error::{Error, Result};
use crate::policy::show;
use crate::storage::new_id;

/// A delegation's period, read before it is revoked.
#[derive(Debug, sqlx::FromRow)]
struct Period {
    valid_from: i64,
    valid_to: i64,
}

impl Book {
    /// Creates a delegation for KT./TL./TUQ. (A2): never to oneself, never in a cycle.
    pub async fn create_delegation(
        &self,
        change: &Change,
        req: &NewDelegation,
        now: i64,
    ) -> Result<String> {
        let (org, from, to) = (&req.organisation_id, &req.from_person_id, &req.to_person_id);
        if from == to {
            return Err(Error::rule_invalid(
                "A2",
                "to_person_id",
                "a person cannot delegate to themselves",
            ));
        }
        let mode = req.mode.as_str();
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::rule_invalid(
                "A2",
                "decision_ref",
                "signing on behalf needs a decision of the competent person",
            ));
        }
        let (valid_from, valid_to) = (req.valid_from, req.valid_to);
        if valid_to <= valid_from {
            return Err(Error::field("valid_to", "must be after valid_from"));
        }
        let mut tx = self.db.begin_write().await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "organisation_id", org).await?;
        must_exist(&mut tx, PERSON_EXISTS, "person", "from_person_id", from).await?;
        must_exist(&mut tx, PERSON_EXISTS, "person", "to_person_id", to).await?;
        // A2: no cycle. Follow delegations from the delegate onwards (same
        // organisation, overlapping window); reaching the delegator is a cycle.
        let mut seen = vec![to.clone()];
        let mut frontier = vec![to.clone()];
        while let Some(p) = frontier.pop() {
            let next: Vec<String> = sqlx::query_scalar(
                "SELECT to_person_id FROM delegations WHERE from_person_id = $1 \
                 AND organisation_id = $2 AND valid_from < $3 AND valid_to > $4",
            )
            .bind(&p)
            .bind(org)
            .bind(valid_to)
            .bind(valid_from)
            .fetch_all(&mut *tx)
            .await?;
            for n in next {
                if n == *from {
                    return Err(Error::rule(
                        "A2",
                        "to_person_id",
                        "this delegation would close a cycle of delegations",
                    ));
                }
                if !seen.contains(&n) {
                    seen.push(n.clone());
                    frontier.push(n);
                }
            }
        }
        let id = new_id("dlg");
        sqlx::query(
            "INSERT INTO delegations (id, organisation_id, from_person_id, to_person_id, mode, \
             decision_ref, valid_from, valid_to, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(org)
        .bind(from)
        .bind(to)
        .bind(mode)
        .bind(&decision)
        .bind(valid_from)
        .bind(valid_to)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Checked one by one after the delegation row: an unknown type rolls
        // the whole delegation back.
        let mut docs = Vec::new();
        for d in &req.document_types {
            let d = need("document_types", d)?;
            let class = classification_of(&mut tx, "document_types", &d).await?;
            if class != "none" {
                return Err(Error::rule_invalid(
                    "A7",
                    "document_types",
                    format!("{d} is classified ({class}): it is never signed"),
                ));
            }
            sqlx::query(
                "INSERT INTO delegation_document_types (delegation_id, document_type) \
                 VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(&d)
            .execute(&mut *tx)
            .await?;
            docs.push(d);
        }
        let data = json!({"organisation_id": org, "from_person_id": from, "to_person_id": to,
            "mode": mode, "document_types": docs, "decision_ref": decision,
            "valid_from": valid_from, "valid_to": valid_to});
        self.commit(tx, change, now, "delegation.created", &id, data)
            .await?;
        Ok(id)
    }

    /// Revokes a delegation from `effective_at` by decision (A2): from then it no longer
    /// allows KT./TL./TUQ. The delegation's end is brought forward to that time, so the
    /// period it was in force stays on record.
    pub async fn revoke_delegation(
        &self,
        change: &Change,
        req: &DelegationRevocation,
        now: i64,
    ) -> Result<()> {
        let id = &req.delegation_id;
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::rule_invalid(
                "A2",
                "decision_ref",
                "a delegation is revoked by a decision of the competent person",
            ));
        }
        let at = req.effective_at.unwrap_or(now);
        let mut tx = self.db.begin_write().await?;
        let Period {
            valid_from: from,
            valid_to: to,
        } = sqlx::query_as("SELECT valid_from, valid_to FROM delegations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("delegation", "delegation_id", id.clone()))?;
        if at >= to {
            return Err(Error::rule(
                "A2",
                "effective_at",
                format!(
                    "the delegation already ends at {}, before {}; there is nothing to revoke",
                    show(to),
                    show(at)
                ),
            ));
        }
        if at <= from {
            return Err(Error::field(
                "effective_at",
                format!(
                    "{} is not after the delegation's start ({}); revoke it from a time in its period",
                    show(at),
                    show(from)
                ),
            ));
        }
        sqlx::query("UPDATE delegations SET valid_to = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let data = json!({"effective_at": at, "decision_ref": decision,
            "previous_valid_to": to});
        self.commit(tx, change, now, "delegation.revoked", id, data)
            .await
    }
}
