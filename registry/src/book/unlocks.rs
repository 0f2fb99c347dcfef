//! Requests to unlock a certificate's key device (I5), with the public holidays their
//! one-working-day deadline skips.

use std::collections::BTreeSet;

use serde_json::json;
use sqlx::AnyConnection;

use super::Book;
use super::certificates::cert_by_fingerprint;
use super::model::{
    Change, UnlockFiling, UnlockOutcome, UnlockRequest, UnlockResolution, UnlockStatus,
};
use super::shared::{ORG_EXISTS, must_exist};
use crate::error::{Error, Result};
use crate::policy::{self, show};
use crate::storage::new_id;

const UNLOCK_SELECT: &str = "SELECT u.id, c.fingerprint, u.requested_by, u.reason, \
     u.requested_at, u.due_at, u.status, u.resolution_reason, u.resolved_at \
     FROM unlock_requests u JOIN certificates c ON c.id = u.certificate_id";

/// An unlock request as stored.
#[derive(Debug, sqlx::FromRow)]
struct UnlockRow {
    id: String,
    fingerprint: String,
    requested_by: String,
    reason: String,
    requested_at: i64,
    due_at: i64,
    status: String,
    resolution_reason: Option<String>,
    resolved_at: Option<i64>,
}

impl From<UnlockRow> for UnlockRequest {
    fn from(r: UnlockRow) -> Self {
        Self {
            status: UnlockStatus::from_stored(&r.status),
            id: r.id,
            fingerprint: r.fingerprint,
            requested_by: r.requested_by,
            reason: r.reason,
            requested_at: r.requested_at,
            due_at: r.due_at,
            resolution_reason: r.resolution_reason,
            resolved_at: r.resolved_at,
        }
    }
}

/// The first request still open for a certificate.
#[derive(Debug, sqlx::FromRow)]
struct Open {
    id: String,
    due_at: i64,
}

/// I5: the holidays from `from` through the unlock look-ahead (Vietnam's dates).
async fn holidays_from(conn: &mut AnyConnection, from: time::Date) -> Result<BTreeSet<time::Date>> {
    let until = from
        .checked_add(time::Duration::days(policy::UNLOCK_LOOKAHEAD_DAYS))
        .map(policy::format_date)
        .unwrap_or_else(|| "9999-12-31".to_owned());
    let days: Vec<String> =
        sqlx::query_scalar("SELECT day FROM holidays WHERE day >= $1 AND day <= $2 ORDER BY day")
            .bind(policy::format_date(from))
            .bind(until)
            .fetch_all(conn)
            .await?;
    days.iter()
        .map(|d| {
            policy::parse_date(d).ok_or_else(|| {
                Error::Database(sqlx::Error::Decode(
                    format!("holidays.day {d:?} is not YYYY-MM-DD").into(),
                ))
            })
        })
        .collect()
}

/// The first and last day of a year of holidays, as stored (I5).
fn holiday_year(field: &'static str, year: i32) -> Result<(String, String)> {
    if !(1970..=9999).contains(&year) {
        return Err(Error::field(field, "a year between 1970 and 9999"));
    }
    Ok((format!("{year:04}-01-01"), format!("{year:04}-12-31")))
}

impl Book {
    /// I5: files a request to unlock the key device of a certificate; only the managing
    /// agency of the certificate's organisation (I6; an organisation without one manages
    /// itself) files it, and only while no other request for the certificate is open. Due
    /// by the end of the next working day (weekends and configured holidays skipped).
    pub async fn request_unlock(
        &self,
        change: &Change,
        req: &UnlockFiling,
        now: i64,
    ) -> Result<UnlockRequest> {
        let (fp, by, why) = (&req.fingerprint, &req.requested_by, &req.reason);
        let mut tx = self.db.begin_write().await?;
        let c = cert_by_fingerprint(&mut tx, "fingerprint", fp).await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "requested_by", by).await?;
        let agency: String = sqlx::query_scalar(
            "SELECT COALESCE(managing_agency_id, id) FROM organisations WHERE id = $1",
        )
        .bind(&c.organisation_id)
        .fetch_one(&mut *tx)
        .await?;
        if agency != *by {
            return Err(Error::rule(
                "I5",
                "requested_by",
                "an unlock is requested by the managing agency of the certificate's organisation",
            ));
        }
        // I5: one open request per certificate (checked under the writers' lock).
        let open: Option<Open> = sqlx::query_as(
            "SELECT id, due_at FROM unlock_requests WHERE certificate_id = $1 \
             AND status = 'pending' ORDER BY requested_at LIMIT 1",
        )
        .bind(&c.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(open) = open {
            return Err(Error::rule(
                "I5",
                "fingerprint",
                format!(
                    "unlock request {} for this certificate is still open (due {}); \
                     it is done or refused before another is filed",
                    open.id,
                    show(open.due_at)
                ),
            ));
        }
        // I5: one working day; weekends and the configured holidays are not working days.
        let holidays = match policy::vietnam_date(now) {
            Some(today) => holidays_from(&mut tx, today).await?,
            None => BTreeSet::new(),
        };
        let id = new_id("unl");
        let due = policy::unlock_due_with_holidays(now, &holidays);
        sqlx::query(
            "INSERT INTO unlock_requests (id, certificate_id, requested_by, reason, requested_at, \
             due_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
        )
        .bind(&id)
        .bind(&c.id)
        .bind(by)
        .bind(why)
        .bind(now)
        .bind(due)
        .execute(&mut *tx)
        .await?;
        let data = json!({"fingerprint": fp, "requested_by": by, "reason": why,
            "requested_at": now, "due_at": due});
        self.commit(tx, change, now, "unlock.requested", &id, data)
            .await?;
        self.unlock(&id).await
    }

    /// I5: records that an unlock was done, or refused in writing with the reason.
    pub async fn resolve_unlock(
        &self,
        change: &Change,
        req: &UnlockResolution,
        now: i64,
    ) -> Result<UnlockRequest> {
        let id = &req.id;
        let outcome = req.outcome.status().as_str();
        let written = req.reason.trim().to_owned();
        if req.outcome == UnlockOutcome::Refused && written.is_empty() {
            return Err(Error::rule_invalid(
                "I5",
                "reason",
                "a refusal is made in writing with the reason",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM unlock_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match status.as_deref() {
            None => return Err(Error::not_found("unlock request", "id", id)),
            Some("pending") => {}
            Some(done) => {
                return Err(Error::rule(
                    "I5",
                    "id",
                    format!("the request is already resolved ({done})"),
                ));
            }
        }
        sqlx::query(
            "UPDATE unlock_requests SET status = $1, resolution_reason = $2, resolved_at = $3 \
             WHERE id = $4",
        )
        .bind(outcome)
        .bind(Some(written.as_str()).filter(|w| !w.is_empty()))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let data = json!({"outcome": outcome, "reason": Some(&written).filter(|w| !w.is_empty()),
            "resolved_at": now});
        self.commit(tx, change, now, "unlock.resolved", id, data)
            .await?;
        self.unlock(id).await
    }

    /// I5: pending unlock requests past their due time at `at`, oldest due first.
    pub async fn overdue_unlocks(&self, at: i64) -> Result<Vec<UnlockRequest>> {
        let rows: Vec<UnlockRow> = sqlx::query_as(&format!(
            "{UNLOCK_SELECT} WHERE u.status = 'pending' AND u.due_at < $1 \
             ORDER BY u.due_at, u.id LIMIT 1000"
        ))
        .bind(at)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(UnlockRequest::from).collect())
    }

    /// I5: the last unlock request of the certificate `fingerprint` that was done (for the
    /// signer, which lifts a lock of the holder's one-time-code credential made before it).
    pub async fn latest_unlock(&self, fingerprint: &str) -> Result<Option<UnlockRequest>> {
        let row: Option<UnlockRow> = sqlx::query_as(&format!(
            "{UNLOCK_SELECT} WHERE c.fingerprint = $1 AND u.status = 'done' \
             ORDER BY u.resolved_at DESC, u.id DESC LIMIT 1"
        ))
        .bind(fingerprint)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(UnlockRequest::from))
    }

    async fn unlock(&self, id: &str) -> Result<UnlockRequest> {
        let row: UnlockRow = sqlx::query_as(&format!("{UNLOCK_SELECT} WHERE u.id = $1"))
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.into())
    }

    /// I5: replaces the public holidays of a year (Vietnam's dates, `YYYY-MM-DD`); the
    /// unlock deadline skips them. Answers the year's holidays, sorted.
    pub async fn set_holidays(
        &self,
        change: &Change,
        year: i32,
        dates: &[String],
        now: i64,
    ) -> Result<Vec<String>> {
        let (first, last) = holiday_year("year", year)?;
        let mut days = BTreeSet::new();
        for d in dates {
            let d = d.trim();
            let date = policy::parse_date(d).ok_or_else(|| {
                Error::field("dates", format!("{d:?} is not a date written YYYY-MM-DD"))
            })?;
            if date.year() != year {
                return Err(Error::field("dates", format!("{d} is not in {year}")));
            }
            days.insert(date);
        }
        let dates: Vec<String> = days.into_iter().map(policy::format_date).collect();
        let mut tx = self.db.begin_write().await?;
        let previous: Vec<String> = sqlx::query_scalar(
            "SELECT day FROM holidays WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(&first)
        .bind(&last)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM holidays WHERE day >= $1 AND day <= $2")
            .bind(&first)
            .bind(&last)
            .execute(&mut *tx)
            .await?;
        for d in &dates {
            sqlx::query("INSERT INTO holidays (day) VALUES ($1)")
                .bind(d)
                .execute(&mut *tx)
                .await?;
        }
        let data = json!({"year": year, "dates": dates, "previous": previous});
        self.commit(tx, change, now, "holidays.set", &year.to_string(), data)
            .await?;
        Ok(dates)
    }

    /// I5: the public holidays of a year (0: every year), sorted.
    pub async fn list_holidays(&self, year: i32) -> Result<Vec<String>> {
        let (first, last) = if year == 0 {
            ("0000-01-01".to_owned(), "9999-12-31".to_owned())
        } else {
            holiday_year("year", year)?
        };
        Ok(sqlx::query_scalar(
            "SELECT day FROM holidays WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(first)
        .bind(last)
        .fetch_all(self.db.pool())
        .await?)
    }
}
