//! What every part of the book shares: the write transaction committed with its event-log
//! entry, required values, existence checks and the duplicate-key mapping.

use sqlx::AnyConnection;

use super::Book;
use super::model::Change;
use crate::error::{Error, Result};
use crate::storage::{Event, WriteTx, is_unique_violation};

impl Book {
    /// Appends the event of a change to the log inside its transaction and commits both, so
    /// the log and the state never disagree (storage.rs).
    pub(super) async fn commit(
        &self,
        tx: WriteTx,
        change: &Change,
        now: i64,
        kind: &str,
        entity_id: &str,
        data: serde_json::Value,
    ) -> Result<()> {
        let mut tx = tx;
        let by = change.by.as_ref().ok_or_else(|| {
            Error::Config(vec![format!(
                "the change {kind} reached the book without its caller"
            )])
        })?;
        // Who may make it is checked here, against the database, in the change's own
        // transaction (access/scope.rs): a refusal rolls everything back.
        let role = crate::access::scope::check(&mut tx, by, kind, entity_id, &data, now).await?;
        let event = Event {
            at: now,
            actor: &by.name,
            actor_fingerprint: &by.fingerprint,
            actor_role: role.as_str(),
            note: &change.note,
            reason: &change.reason,
            kind,
            entity_id,
            change: data,
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }
}

/// A required value, trimmed; blank is refused with the field named.
pub(crate) fn need(field: &'static str, v: &str) -> Result<String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::field(field, "required"));
    }
    Ok(t.to_owned())
}

pub(crate) const ORG_EXISTS: &str = "SELECT COUNT(*) FROM organisations WHERE id = $1";
pub(crate) const PERSON_EXISTS: &str = "SELECT COUNT(*) FROM people WHERE id = $1";
pub(crate) const TITLE_EXISTS: &str = "SELECT COUNT(*) FROM titles WHERE id = $1";
pub(crate) const CERT_EXISTS: &str = "SELECT COUNT(*) FROM certificates WHERE fingerprint = $1";

/// Whether the row `sql` counts (one of the `*_EXISTS` queries) is there.
pub(crate) async fn exists(conn: &mut AnyConnection, sql: &'static str, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(conn).await?;
    Ok(n > 0)
}

/// NotFound, naming the request field, unless the row `sql` counts is there.
pub(crate) async fn must_exist(
    conn: &mut AnyConnection,
    sql: &'static str,
    what: &'static str,
    field: &'static str,
    id: &str,
) -> Result<()> {
    if exists(conn, sql, id).await? {
        Ok(())
    } else {
        Err(Error::not_found(what, field, id))
    }
}

/// Maps a unique violation on insert to AlreadyExists; anything else stays a database error.
pub(super) fn dup(
    what: &'static str,
    field: &'static str,
    value: &str,
) -> impl FnOnce(sqlx::Error) -> Error {
    let value = value.to_owned();
    move |e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists { what, field, value }
        } else {
            Error::Database(e)
        }
    }
}
