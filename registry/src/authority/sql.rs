//! The authority facts read from the database, one query per fact as a rule asks for it: the
//! reference the in-memory index is tested against (tests/tests/registry/index.rs), and the
//! answer of a store without the index. No rule here: lookups by key only (facts.rs).
//!
//! The row mappings are shared with the index's loaders, so both sources read a row alike.

use std::borrow::Cow;

use sqlx::any::AnyRow;

use super::facts::{Appointment, Certificate, Custodian, Delegation, Facts, StatusChange, Title};
use crate::error::Result;
use crate::storage::{Db, col};

/// The facts of one database, read on every lookup.
#[derive(Clone, Debug)]
pub struct SqlFacts {
    db: Db,
}

impl SqlFacts {
    /// Facts read from `db`.
    pub fn new(db: &Db) -> Self {
        Self { db: db.clone() }
    }

    async fn scalar(&self, sql: &'static str, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(sql)
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?)
    }
}

impl Facts for SqlFacts {
    async fn certificate(&self, fingerprint: &str) -> Result<Option<Cow<'_, Certificate>>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(fingerprint)
            .fetch_optional(self.db.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut c = certificate(&row)?;
        let sql = format!(
            "SELECT {HISTORY_COLUMNS} FROM certificate_status_history \
             WHERE certificate_id = $1 ORDER BY effective_at, ordinal"
        );
        for r in &sqlx::query(&sql)
            .bind(&c.id)
            .fetch_all(self.db.pool())
            .await?
        {
            c.history.push(status_change(r)?);
        }
        Ok(Some(Cow::Owned(c)))
    }

    async fn person_name(&self, id: &str) -> Result<Option<Cow<'_, str>>> {
        let name = self
            .scalar("SELECT full_name FROM people WHERE id = $1", id)
            .await?;
        Ok(name.map(Cow::Owned))
    }

    async fn organisation_name(&self, id: &str) -> Result<Option<Cow<'_, str>>> {
        let name = self
            .scalar("SELECT name FROM organisations WHERE id = $1", id)
            .await?;
        Ok(name.map(Cow::Owned))
    }

    async fn classification(&self, document_type: &str) -> Result<Option<Cow<'_, str>>> {
        let class = self
            .scalar(
                "SELECT classification FROM document_types WHERE code = $1",
                document_type,
            )
            .await?;
        Ok(class.map(Cow::Owned))
    }

    async fn appointments(&self, person_id: &str) -> Result<Cow<'_, [Appointment]>> {
        let sql = format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE person_id = $1");
        let rows = sqlx::query(&sql)
            .bind(person_id)
            .fetch_all(self.db.pool())
            .await?;
        Ok(Cow::Owned(
            rows.iter().map(appointment).collect::<Result<_>>()?,
        ))
    }

    async fn title(&self, id: &str) -> Result<Option<Cow<'_, Title>>> {
        // The rank in the database's collation, as the index's `ORDER BY name` gives it
        // (names are unique).
        let row = sqlx::query(
            "SELECT t.name AS name, (SELECT COUNT(*) FROM titles u WHERE u.name < t.name) AS title_rank \
             FROM titles t WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let rank: i64 = col(&r, "title_rank")?;
        Ok(Some(Cow::Owned(Title {
            name: col(&r, "name")?,
            rank: usize::try_from(rank).unwrap_or(usize::MAX),
        })))
    }

    async fn title_may_sign(
        &self,
        organisation_id: &str,
        title_id: &str,
        document_type: &str,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM title_authorities WHERE organisation_id = $1 \
             AND title_id = $2 AND document_type = $3",
        )
        .bind(organisation_id)
        .bind(title_id)
        .bind(document_type)
        .fetch_one(self.db.pool())
        .await?;
        Ok(n > 0)
    }

    async fn profiles(
        &self,
        organisation_id: &str,
        document_type: &str,
    ) -> Result<Cow<'_, [String]>> {
        let profiles: Vec<String> = sqlx::query_scalar(
            "SELECT profile FROM organisation_profiles WHERE organisation_id = $1 \
             AND document_type = $2",
        )
        .bind(organisation_id)
        .bind(document_type)
        .fetch_all(self.db.pool())
        .await?;
        Ok(Cow::Owned(profiles))
    }

    async fn custodians(&self, certificate_id: &str) -> Result<Cow<'_, [Custodian]>> {
        let sql = format!("SELECT {CUSTODIAN_COLUMNS} FROM custodians WHERE certificate_id = $1");
        let rows = sqlx::query(&sql)
            .bind(certificate_id)
            .fetch_all(self.db.pool())
            .await?;
        Ok(Cow::Owned(
            rows.iter().map(custodian).collect::<Result<_>>()?,
        ))
    }

    async fn delegations_to(&self, person_id: &str) -> Result<Cow<'_, [Delegation]>> {
        let sql = format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations d WHERE d.to_person_id = $1 \
             ORDER BY d.created_at, d.id"
        );
        let rows = sqlx::query(&sql)
            .bind(person_id)
            .fetch_all(self.db.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = col(r, "id")?;
            let mut dl = delegation(r)?;
            dl.document_types = sqlx::query_scalar(
                "SELECT document_type FROM delegation_document_types WHERE delegation_id = $1",
            )
            .bind(&id)
            .fetch_all(self.db.pool())
            .await?;
            out.push(dl);
        }
        Ok(Cow::Owned(out))
    }
}

// ----- rows, shared with the index's loaders ----------------------------------------------------

pub(super) const CERT_COLUMNS: &str =
    "id, fingerprint, kind, person_id, organisation_id, not_before, not_after";

/// A certificate row, its history still empty.
pub(super) fn certificate(r: &AnyRow) -> Result<Certificate> {
    Ok(Certificate {
        id: col(r, "id")?,
        fingerprint: col(r, "fingerprint")?,
        kind: col(r, "kind")?,
        person_id: col(r, "person_id")?,
        organisation_id: col(r, "organisation_id")?,
        not_before: col(r, "not_before")?,
        not_after: col(r, "not_after")?,
        history: Vec::new(),
    })
}

pub(super) const HISTORY_COLUMNS: &str = "certificate_id, status, reason, effective_at, ordinal";

pub(super) fn status_change(r: &AnyRow) -> Result<StatusChange> {
    Ok(StatusChange {
        effective_at: col(r, "effective_at")?,
        ordinal: col(r, "ordinal")?,
        status: col(r, "status")?,
        reason: col(r, "reason")?,
    })
}

pub(super) const APPOINTMENT_COLUMNS: &str =
    "person_id, organisation_id, title_id, valid_from, valid_to";

pub(super) fn appointment(r: &AnyRow) -> Result<Appointment> {
    Ok(Appointment {
        organisation_id: col(r, "organisation_id")?,
        title_id: col(r, "title_id")?,
        valid_from: col(r, "valid_from")?,
        valid_to: col(r, "valid_to")?,
    })
}

pub(super) const CUSTODIAN_COLUMNS: &str = "certificate_id, person_id, valid_from, valid_to";

pub(super) fn custodian(r: &AnyRow) -> Result<Custodian> {
    Ok(Custodian {
        person_id: col(r, "person_id")?,
        valid_from: col(r, "valid_from")?,
        valid_to: col(r, "valid_to")?,
    })
}

/// Of `delegations d`.
pub(super) const DELEGATION_COLUMNS: &str = "d.id AS id, d.organisation_id AS organisation_id, \
     d.from_person_id AS from_person_id, d.to_person_id AS to_person_id, d.mode AS mode, \
     d.valid_from AS valid_from, d.valid_to AS valid_to";

/// A delegation row, its document types still empty.
pub(super) fn delegation(r: &AnyRow) -> Result<Delegation> {
    Ok(Delegation {
        organisation_id: col(r, "organisation_id")?,
        from_person_id: col(r, "from_person_id")?,
        mode: col(r, "mode")?,
        valid_from: col(r, "valid_from")?,
        valid_to: col(r, "valid_to")?,
        document_types: Vec::new(),
    })
}
