//! Organisations: their mail domain (I1), status (I2) and the two hierarchies (I6).

use serde_json::json;
use sqlx::AnyConnection;

use super::Book;
use super::model::{Change, NewOrganisation, OrganisationStatusChange, OrganisationUpdate};
use super::search::search_key;
use super::shared::{ORG_EXISTS, must_exist, need};
use crate::error::{Error, Result};
use crate::storage::new_id;

/// An organisation's mail domain (I1), lowercase, without a leading `@`.
fn mail_domain(v: &str) -> Result<String> {
    let domain = need("mail_domain", v)?
        .trim_start_matches('@')
        .to_ascii_lowercase();
    if !domain.contains('.') || domain.contains(['@', ' ', '/']) {
        return Err(Error::field(
            "mail_domain",
            "not a mail domain such as khanhhoa.gov.vn",
        ));
    }
    Ok(domain)
}

/// An organisation code (Decision 20/2020), checked and in its printed form.
fn code(v: &str) -> Result<String> {
    kyso_pki::orgcode::OrgCode::parse(v)
        .map(|c| c.to_string())
        .map_err(|e| Error::field("code", e.to_string()))
}

/// A code names one organisation: refused, with the holder named, when another has it.
async fn code_free(conn: &mut AnyConnection, code: &str, org: &str) -> Result<()> {
    let holder: Option<(String, String)> =
        sqlx::query_as("SELECT id, name FROM organisations WHERE code = $1 AND id <> $2")
            .bind(code)
            .bind(org)
            .fetch_optional(conn)
            .await?;
    match holder {
        Some((id, name)) => Err(Error::field(
            "code",
            format!("{code} is already the code of {name} ({id})"),
        )),
        None => Ok(()),
    }
}

/// The two organisation hierarchies (I6): who manages whose subscribers, and who is part of
/// whom.
#[derive(Clone, Copy, Debug)]
enum Hierarchy {
    ManagingAgency,
    Parent,
}

impl Hierarchy {
    fn field(self) -> &'static str {
        match self {
            Self::ManagingAgency => "managing_agency_id",
            Self::Parent => "parent_id",
        }
    }

    fn up(self) -> &'static str {
        match self {
            Self::ManagingAgency => "SELECT managing_agency_id FROM organisations WHERE id = $1",
            Self::Parent => "SELECT parent_id FROM organisations WHERE id = $1",
        }
    }
}

/// An organisation's name ("" when there is none).
async fn name_of(conn: &mut AnyConnection, id: &str) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT name FROM organisations WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?
            .unwrap_or_default(),
    )
}

/// I6: the chain from `start` upwards in a hierarchy, if it reaches `org` (which would then
/// close a cycle once `start` is put above `org`): the names along the way, `start` first.
async fn chain_to(
    conn: &mut AnyConnection,
    h: Hierarchy,
    start: &str,
    org: &str,
) -> Result<Option<Vec<String>>> {
    let mut names = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut at = start.to_owned();
    loop {
        if at == org {
            return Ok(Some(names));
        }
        if seen.contains(&at) {
            // A cycle already there that does not pass through `org`.
            return Ok(None);
        }
        names.push(name_of(&mut *conn, &at).await?);
        let next: Option<Option<String>> = sqlx::query_scalar(h.up())
            .bind(&at)
            .fetch_optional(&mut *conn)
            .await?;
        seen.push(at);
        match next.flatten() {
            Some(n) => at = n,
            None => return Ok(None),
        }
    }
}

/// What an update reads before it writes.
#[derive(Debug, sqlx::FromRow)]
struct Current {
    name: String,
    mail_domain: String,
    managing_agency_id: Option<String>,
    parent_id: Option<String>,
    code: Option<String>,
}

impl Book {
    /// Creates an organisation (I6 hierarchy and managing agency, I1 mail domain).
    pub async fn create_organisation(
        &self,
        change: &Change,
        new: &NewOrganisation,
        now: i64,
    ) -> Result<String> {
        let name = &new.name;
        let domain = mail_domain(&new.mail_domain)?;
        let parent = new.parent_id.as_deref();
        let managing = new.managing_agency_id.as_deref();
        let org_code = new.code.as_deref().map(code).transpose()?;
        let id = new_id("org");
        let mut tx = self.db.begin_write().await?;
        if let Some(c) = &org_code {
            code_free(&mut tx, c, &id).await?;
        }
        if let Some(p) = parent {
            must_exist(&mut tx, ORG_EXISTS, "organisation", "parent_id", p).await?;
        }
        if let Some(m) = managing {
            must_exist(&mut tx, ORG_EXISTS, "organisation", "managing_agency_id", m).await?;
        }
        sqlx::query(
            "INSERT INTO organisations (id, name, parent_id, managing_agency_id, mail_domain, \
             status, created_at, search_key, code) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8)",
        )
        .bind(&id)
        .bind(name)
        .bind(parent)
        .bind(managing)
        .bind(&domain)
        .bind(now)
        .bind(search_key(name))
        .bind(org_code.as_deref())
        .execute(&mut *tx)
        .await?;
        let data = json!({"name": name, "parent_id": parent, "managing_agency_id": managing,
            "mail_domain": domain, "code": org_code});
        self.commit(tx, change, now, "organisation.created", &id, data)
            .await?;
        Ok(id)
    }

    /// Sets an organisation's status; a pending change blocks new certificates (I2).
    pub async fn set_organisation_status(
        &self,
        change: &Change,
        req: &OrganisationStatusChange,
        now: i64,
    ) -> Result<()> {
        let org = &req.organisation_id;
        let status = req.status.as_str();
        let decision = &req.decision_ref;
        let mut tx = self.db.begin_write().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM organisations WHERE id = $1")
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?;
        match current.as_deref() {
            None => return Err(Error::not_found("organisation", "organisation_id", org)),
            Some("dissolved") => {
                return Err(Error::rule(
                    "I2",
                    "status",
                    "the organisation is dissolved; its status no longer changes",
                ));
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE organisations SET status = $1, status_decision_ref = $2 WHERE id = $3")
            .bind(status)
            .bind(decision)
            .bind(org)
            .execute(&mut *tx)
            .await?;
        let data = json!({"status": status, "decision_ref": decision, "previous": current});
        self.commit(tx, change, now, "organisation.status_changed", org, data)
            .await
    }

    /// Changes an organisation's name, mail domain (I1), managing agency or parent; neither
    /// hierarchy may get a cycle (I6). Fields left out are unchanged.
    pub async fn update_organisation(
        &self,
        change: &Change,
        req: &OrganisationUpdate,
        now: i64,
    ) -> Result<()> {
        let org = &req.organisation_id;
        let name = &req.name;
        let domain = req.mail_domain.as_deref().map(mail_domain).transpose()?;
        let managing = &req.managing_agency_id;
        let parent = &req.parent_id;
        // "" clears the code (convert.rs makes it None); anything else must be a code.
        let new_code = match &req.code {
            Some(Some(c)) => Some(Some(code(c)?)),
            other => other.clone(),
        };
        let mut tx = self.db.begin_write().await?;
        let old: Current = sqlx::query_as(
            "SELECT name, mail_domain, managing_agency_id, parent_id, code FROM organisations \
             WHERE id = $1",
        )
        .bind(org)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("organisation", "organisation_id", org.clone()))?;
        for (h, new) in [
            (Hierarchy::ManagingAgency, managing),
            (Hierarchy::Parent, parent),
        ] {
            let Some(Some(above)) = new else { continue };
            let field = h.field();
            if above == org {
                return Err(Error::rule_invalid(
                    "I6",
                    field,
                    format!(
                        "an organisation cannot be its own {}; give \"\" to clear it",
                        match h {
                            Hierarchy::ManagingAgency =>
                                "managing agency (one without a managing agency manages itself)",
                            Hierarchy::Parent => "parent",
                        }
                    ),
                ));
            }
            must_exist(&mut tx, ORG_EXISTS, "organisation", field, above).await?;
            if let Some(chain) = chain_to(&mut tx, h, above, org).await? {
                return Err(Error::rule(
                    "I6",
                    field,
                    format!(
                        "the {} hierarchy would have a cycle: {} -> {}",
                        match h {
                            Hierarchy::ManagingAgency => "managing-agency",
                            Hierarchy::Parent => "parent",
                        },
                        chain.join(" -> "),
                        old.name
                    ),
                ));
            }
        }
        if let Some(Some(c)) = &new_code {
            code_free(&mut tx, c, org).await?;
        }
        let new_name = name.clone().unwrap_or_else(|| old.name.clone());
        sqlx::query(
            "UPDATE organisations SET name = $1, search_key = $2, mail_domain = $3, \
             managing_agency_id = $4, parent_id = $5, code = $6 WHERE id = $7",
        )
        .bind(&new_name)
        .bind(search_key(&new_name))
        .bind(domain.as_deref().unwrap_or(&old.mail_domain))
        .bind(
            managing
                .clone()
                .unwrap_or_else(|| old.managing_agency_id.clone()),
        )
        .bind(parent.clone().unwrap_or_else(|| old.parent_id.clone()))
        .bind(new_code.clone().unwrap_or_else(|| old.code.clone()))
        .bind(org)
        .execute(&mut *tx)
        .await?;
        // Only the fields changed, with their previous values; null clears.
        let mut set = serde_json::Map::new();
        let mut previous = serde_json::Map::new();
        if let Some(n) = name {
            set.insert("name".into(), json!(n));
            previous.insert("name".into(), json!(old.name));
        }
        if let Some(d) = &domain {
            set.insert("mail_domain".into(), json!(d));
            previous.insert("mail_domain".into(), json!(old.mail_domain));
        }
        if let Some(m) = managing {
            set.insert("managing_agency_id".into(), json!(m));
            previous.insert("managing_agency_id".into(), json!(old.managing_agency_id));
        }
        if let Some(p) = parent {
            set.insert("parent_id".into(), json!(p));
            previous.insert("parent_id".into(), json!(old.parent_id));
        }
        if let Some(c) = &new_code {
            set.insert("code".into(), json!(c));
            previous.insert("code".into(), json!(old.code));
        }
        set.insert("previous".into(), serde_json::Value::Object(previous));
        let data = serde_json::Value::Object(set);
        self.commit(tx, change, now, "organisation.updated", org, data)
            .await
    }
}
