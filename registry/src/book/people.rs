//! People: who works where, their mail address (I1 when a certificate is issued) and end of
//! service (I2).

use serde_json::json;

use super::Book;
use super::model::{Change, NewPerson, PersonUpdate};
use super::search::search_key;
use super::shared::{ORG_EXISTS, dup, must_exist, need};
use crate::error::{Error, Result};
use crate::storage::new_id;

/// A person's mail address, lowercase; whether it is an account of the deployment's
/// domain is checked when a certificate is issued (I1).
fn mail_address(v: &str) -> Result<String> {
    let email = need("email", v)?.to_ascii_lowercase();
    if !matches!(email.split_once('@'), Some((l, h)) if !l.is_empty() && h.contains('.')) {
        return Err(Error::field("email", "not a mail address"));
    }
    Ok(email)
}

/// What an update reads before it writes.
#[derive(Debug, sqlx::FromRow)]
struct Current {
    full_name: String,
    email: String,
    service_end: Option<i64>,
}

impl Book {
    /// Creates a person working in an organisation.
    pub async fn create_person(
        &self,
        change: &Change,
        new: &NewPerson,
        now: i64,
    ) -> Result<String> {
        let name = &new.full_name;
        let email = mail_address(&new.email)?;
        let org = &new.organisation_id;
        let service_end = new.service_end;
        let id = new_id("per");
        let mut tx = self.db.begin_write().await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "organisation_id", org).await?;
        sqlx::query(
            "INSERT INTO people (id, full_name, email, organisation_id, service_end, created_at, \
             search_key) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(name)
        .bind(&email)
        .bind(org)
        .bind(service_end)
        .bind(now)
        .bind(search_key(name))
        .execute(&mut *tx)
        .await
        .map_err(dup("person", "email", &email))?;
        let data = json!({"full_name": name, "email": email, "organisation_id": org,
            "service_end": service_end});
        self.commit(tx, change, now, "person.created", &id, data)
            .await?;
        Ok(id)
    }

    /// Changes a person's name, mail address (checked as on creation; I1 applies when a
    /// certificate is issued) or end of service (I2). Fields left out are unchanged.
    pub async fn update_person(&self, change: &Change, req: &PersonUpdate, now: i64) -> Result<()> {
        let person = &req.person_id;
        let name = &req.full_name;
        let email = req.email.as_deref().map(mail_address).transpose()?;
        let new_end = req.service_end;
        let mut tx = self.db.begin_write().await?;
        let old: Current =
            sqlx::query_as("SELECT full_name, email, service_end FROM people WHERE id = $1")
                .bind(person)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("person", "person_id", person.clone()))?;
        let full_name = name.clone().unwrap_or_else(|| old.full_name.clone());
        let address = email.clone().unwrap_or_else(|| old.email.clone());
        sqlx::query(
            "UPDATE people SET full_name = $1, search_key = $2, email = $3, service_end = $4 \
             WHERE id = $5",
        )
        .bind(&full_name)
        .bind(search_key(&full_name))
        .bind(&address)
        .bind(new_end.unwrap_or(old.service_end))
        .bind(person)
        .execute(&mut *tx)
        .await
        .map_err(dup("person", "email", &address))?;
        let mut set = serde_json::Map::new();
        let mut previous = serde_json::Map::new();
        if let Some(n) = name {
            set.insert("full_name".into(), json!(n));
            previous.insert("full_name".into(), json!(old.full_name));
        }
        if let Some(e) = &email {
            set.insert("email".into(), json!(e));
            previous.insert("email".into(), json!(old.email));
        }
        if let Some(end) = new_end {
            set.insert("service_end".into(), json!(end));
            previous.insert("service_end".into(), json!(old.service_end));
        }
        set.insert("previous".into(), serde_json::Value::Object(previous));
        let data = serde_json::Value::Object(set);
        self.commit(tx, change, now, "person.updated", person, data)
            .await
    }
}
