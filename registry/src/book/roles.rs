//! Roles bound to client certificates (access/): granted and revoked as changes of the book,
//! each with its event (`role.granted`, `role.revoked`), so the authorization index of every
//! replica picks them up from the event log like any other change.

use serde_json::json;

use super::Book;
use super::model::{Change, NewRole, RoleRow};
use super::shared::{ORG_EXISTS, must_exist};
use crate::access::Role;
use crate::error::{Error, Result};
use crate::storage::new_id;

impl Book {
    /// Grants a role to a client certificate; its id.
    pub async fn grant_role(&self, change: &Change, new: &NewRole, now: i64) -> Result<String> {
        let valid_from = new.valid_from.unwrap_or(now);
        if new.valid_to.is_some_and(|to| to <= valid_from) {
            return Err(Error::field("valid_to", "must be after valid_from"));
        }
        match (new.role, &new.agency_id) {
            (Role::AgencyAdmin, None) => {
                return Err(Error::rule_invalid(
                    "I6",
                    "agency_id",
                    "an agency-admin administers one managing agency: name it",
                ));
            }
            (r, Some(_)) if r != Role::AgencyAdmin => {
                return Err(Error::field(
                    "agency_id",
                    "only an agency-admin has an agency",
                ));
            }
            _ => {}
        }
        let id = new_id("rol");
        let mut tx = self.db.begin_write().await?;
        if let Some(a) = &new.agency_id {
            must_exist(&mut tx, ORG_EXISTS, "organisation", "agency_id", a).await?;
        }
        sqlx::query(
            "INSERT INTO roles (id, fingerprint, subject, role, agency_id, valid_from, valid_to, \
             granted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&new.fingerprint)
        .bind(&new.subject)
        .bind(new.role.as_str())
        .bind(&new.agency_id)
        .bind(valid_from)
        .bind(new.valid_to)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let data = json!({"fingerprint": new.fingerprint, "subject": new.subject,
            "role": new.role.as_str(), "agency_id": new.agency_id,
            "valid_from": valid_from, "valid_to": new.valid_to});
        self.commit(tx, change, now, "role.granted", &id, data)
            .await?;
        Ok(id)
    }

    /// Revokes a grant from now on; a grant already revoked is refused.
    pub async fn revoke_role(&self, change: &Change, id: &str, now: i64) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT fingerprint, revoked_at FROM roles WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((fingerprint, revoked)) = row else {
            return Err(Error::not_found("role", "id", id));
        };
        if let Some(at) = revoked {
            return Err(Error::field("id", format!("revoked already, at {at}")));
        }
        sqlx::query("UPDATE roles SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let data = json!({"fingerprint": fingerprint, "revoked_at": now});
        self.commit(tx, change, now, "role.revoked", id, data).await
    }

    /// Every grant, or those of one certificate, revoked ones included (oldest first).
    pub async fn list_roles(&self, fingerprint: Option<&str>) -> Result<Vec<RoleRow>> {
        Ok(sqlx::query_as(
            "SELECT id, fingerprint, subject, role, agency_id, valid_from, valid_to, revoked_at \
             FROM roles WHERE ($1 = '' OR fingerprint = $1) ORDER BY granted_at, id",
        )
        .bind(fingerprint.unwrap_or_default())
        .fetch_all(self.db.pool())
        .await?)
    }
}
