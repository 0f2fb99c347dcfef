//! The event log, read back: every change the book made, in order (storage.rs writes it).

use super::Book;
use super::model::LogEntry;
use crate::error::Result;

impl Book {
    /// Events after `after_seq`, oldest first; at most `limit` (100 for 0, at most 1000).
    pub async fn events(&self, after_seq: i64, limit: u32) -> Result<Vec<LogEntry>> {
        let limit = i64::from(if limit == 0 { 100 } else { limit.min(1000) });
        Ok(sqlx::query_as(
            "SELECT seq, at, actor, reason, kind, entity_id, change_json, actor_fingerprint, \
             actor_role, note FROM events \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?)
    }
}
