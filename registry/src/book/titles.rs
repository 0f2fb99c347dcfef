//! Titles, appointments to them (A3), document types with their classification (A7) and
//! the grants that say which title signs what and what an organisation's seal may do (A3,
//! A4).

use serde_json::json;
use sqlx::AnyConnection;

use super::Book;
use super::model::{AppointmentEnd, Change, Grants, NewAppointment, NewDocumentType, Profile};
use super::shared::{ORG_EXISTS, PERSON_EXISTS, TITLE_EXISTS, dup, must_exist, need};
use crate::error::{Error, Result};
use crate::policy::show;
use crate::storage::new_id;

/// A document type's classification as stored, or NotFound naming `field`.
pub(super) async fn classification_of(
    conn: &mut AnyConnection,
    field: &'static str,
    code: &str,
) -> Result<String> {
    sqlx::query_scalar("SELECT classification FROM document_types WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("document type", field, code))
}

/// An appointment's period, read before it is ended.
#[derive(Debug, sqlx::FromRow)]
struct Period {
    valid_from: i64,
    valid_to: Option<i64>,
}

impl Book {
    /// Creates a title (Chủ tịch, Văn thư, ...).
    pub async fn create_title(&self, change: &Change, name: &str, now: i64) -> Result<String> {
        let id = new_id("tit");
        let mut tx = self.db.begin_write().await?;
        sqlx::query("INSERT INTO titles (id, name) VALUES ($1, $2)")
            .bind(&id)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(dup("title", "name", name))?;
        self.commit(tx, change, now, "title.created", &id, json!({"name": name}))
            .await?;
        Ok(id)
    }

    /// Appoints a person to a title in an organisation for a period.
    pub async fn create_appointment(
        &self,
        change: &Change,
        new: &NewAppointment,
        now: i64,
    ) -> Result<String> {
        let (person, title, org) = (&new.person_id, &new.title_id, &new.organisation_id);
        let (from, to) = (new.valid_from, new.valid_to);
        if let Some(to) = to
            && to <= from
        {
            return Err(Error::field("valid_to", "must be after valid_from"));
        }
        let id = new_id("apt");
        let mut tx = self.db.begin_write().await?;
        must_exist(&mut tx, PERSON_EXISTS, "person", "person_id", person).await?;
        must_exist(&mut tx, TITLE_EXISTS, "title", "title_id", title).await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "organisation_id", org).await?;
        sqlx::query(
            "INSERT INTO appointments (id, person_id, title_id, organisation_id, valid_from, \
             valid_to, decision_ref) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(person)
        .bind(title)
        .bind(org)
        .bind(from)
        .bind(to)
        .bind(&new.decision_ref)
        .execute(&mut *tx)
        .await?;
        let data = json!({"person_id": person, "title_id": title, "organisation_id": org,
            "valid_from": from, "valid_to": to, "decision_ref": new.decision_ref});
        self.commit(tx, change, now, "appointment.created", &id, data)
            .await?;
        Ok(id)
    }

    /// Ends an appointment: from `valid_to` the title no longer gives authority (A3). An end
    /// already set can be brought forward by a later decision, never pushed back.
    pub async fn end_appointment(
        &self,
        change: &Change,
        req: &AppointmentEnd,
        now: i64,
    ) -> Result<()> {
        let id = &req.appointment_id;
        let end = req.valid_to;
        let mut tx = self.db.begin_write().await?;
        let Period {
            valid_from: from,
            valid_to: current,
        } = sqlx::query_as("SELECT valid_from, valid_to FROM appointments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("appointment", "appointment_id", id.clone()))?;
        if end <= from {
            return Err(Error::field(
                "valid_to",
                format!(
                    "{} is not after the appointment's start ({}); an appointment ends after it begins",
                    show(end),
                    show(from)
                ),
            ));
        }
        if let Some(cur) = current
            && end >= cur
        {
            return Err(Error::field(
                "valid_to",
                format!(
                    "the appointment already ends at {}; an end can only be brought forward",
                    show(cur)
                ),
            ));
        }
        sqlx::query("UPDATE appointments SET valid_to = $1 WHERE id = $2")
            .bind(end)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let data = json!({"valid_to": end, "decision_ref": req.decision_ref,
            "previous_valid_to": current});
        self.commit(tx, change, now, "appointment.ended", id, data)
            .await
    }

    /// Creates a document type with its classification (A7).
    pub async fn create_document_type(
        &self,
        change: &Change,
        new: &NewDocumentType,
        now: i64,
    ) -> Result<()> {
        let (code, name) = (&new.code, &new.name);
        let class = new.classification.as_str();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO document_types (code, name, classification, scanned_issue_allowed) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(code)
        .bind(name)
        .bind(class)
        .bind(i64::from(new.scanned_issue_allowed))
        .execute(&mut *tx)
        .await
        .map_err(dup("document type", "code", code))?;
        let data = json!({"name": name, "classification": class,
                          "scanned_issue_allowed": new.scanned_issue_allowed});
        self.commit(tx, change, now, "document_type.created", code, data)
            .await
    }

    /// Grants title authorities and organisation profiles, all or nothing.
    /// Each grant is checked as it is written, so a bad one late in the list
    /// rolls back the ones before it (one transaction).
    pub async fn grant_authority(&self, change: &Change, grants: &Grants, now: i64) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let mut written = Vec::new();
        for g in &grants.title_authorities {
            let org = need("title_authorities.organisation_id", &g.organisation_id)?;
            let title = need("title_authorities.title_id", &g.title_id)?;
            let doc = need("title_authorities.document_type", &g.document_type)?;
            must_exist(
                &mut tx,
                ORG_EXISTS,
                "organisation",
                "title_authorities.organisation_id",
                &org,
            )
            .await?;
            must_exist(
                &mut tx,
                TITLE_EXISTS,
                "title",
                "title_authorities.title_id",
                &title,
            )
            .await?;
            let class = classification_of(&mut tx, "title_authorities.document_type", &doc).await?;
            if class != "none" {
                return Err(Error::rule_invalid(
                    "A7",
                    "title_authorities.document_type",
                    format!(
                        "{doc} is classified ({class}): no authority to sign it can be granted"
                    ),
                ));
            }
            sqlx::query(
                "INSERT INTO title_authorities (organisation_id, title_id, document_type) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&org)
            .bind(&title)
            .bind(&doc)
            .execute(&mut *tx)
            .await?;
            written.push(json!({"organisation_id": org, "title_id": title, "document_type": doc}));
        }
        for g in &grants.organisation_profiles {
            let org = need("organisation_profiles.organisation_id", &g.organisation_id)?;
            let doc = need("organisation_profiles.document_type", &g.document_type)?;
            let profile = match g.profile {
                None => {
                    return Err(Error::field("organisation_profiles.profile", "required"));
                }
                Some(Profile::Approval | Profile::Comment) => {
                    return Err(Error::rule_invalid(
                        "A4",
                        "organisation_profiles.profile",
                        "approvals and comments are personal signatures (D1); an organisation certificate is the seal",
                    ));
                }
                Some(p) => p.as_str(),
            };
            must_exist(
                &mut tx,
                ORG_EXISTS,
                "organisation",
                "organisation_profiles.organisation_id",
                &org,
            )
            .await?;
            let class =
                classification_of(&mut tx, "organisation_profiles.document_type", &doc).await?;
            if class != "none" {
                return Err(Error::rule_invalid(
                    "A7",
                    "organisation_profiles.document_type",
                    format!("{doc} is classified ({class}): it is never signed"),
                ));
            }
            sqlx::query(
                "INSERT INTO organisation_profiles (organisation_id, document_type, profile) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&org)
            .bind(&doc)
            .bind(profile)
            .execute(&mut *tx)
            .await?;
            written.push(json!({"organisation_id": org, "document_type": doc, "profile": profile}));
        }
        self.commit(
            tx,
            change,
            now,
            "authority.granted",
            "",
            json!({"grants": written}),
        )
        .await
    }
}
