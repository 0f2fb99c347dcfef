//! Signature usage the signers report (R2): counted once per batch, by organisation,
//! certificate, legal form and Vietnam's day.

use std::collections::BTreeMap;

use serde_json::json;

use super::Book;
use super::model::{Change, UsageBatch, UsageRecorded};
use super::shared::{CERT_EXISTS, ORG_EXISTS, must_exist, need};
use crate::cert;
use crate::error::{Error, Result};
use crate::policy;

/// Bounds on one usage batch: a signer flushes every few seconds, so a batch far beyond
/// these is a bug or an attack, not a busy day.
const MAX_USAGE_ENTRIES: usize = 10_000;
const MAX_USAGE_COUNT: i64 = 100_000_000;

/// The legal forms a signature is counted under (the signer's profiles, D1-D6).
fn usage_profile(p: &str) -> Result<&'static str> {
    const PROFILES: [&str; 7] = [
        "APPROVAL",
        "ISSUE",
        "SCANNED_ISSUE",
        "COPY",
        "APPENDIX",
        "RECEIVED",
        "COMMENT",
    ];
    let p = p.trim().to_ascii_uppercase();
    let p = p.strip_prefix("PROFILE_").unwrap_or(&p);
    PROFILES.iter().find(|k| **k == p).copied().ok_or_else(|| {
        Error::field(
            "entries.profile",
            format!("{p:?} is not one of {}", PROFILES.join(", ")),
        )
    })
}

impl Book {
    /// R2: adds a signer's batch of signature counts. The batch id names the audit records
    /// it covers, so a batch sent again (the answer was lost, the signer restarted before
    /// moving its cursor) is reported as a duplicate and counted once. Every entry is
    /// checked before anything is written: an unknown certificate or organisation, a
    /// profile that is not one of the legal forms, a bad day or count refuses the batch.
    pub async fn record_usage(
        &self,
        change: &Change,
        batch: &UsageBatch,
        now: i64,
    ) -> Result<UsageRecorded> {
        let batch_id = &batch.batch_id;
        if batch_id.len() > 200 {
            return Err(Error::field("batch_id", "longer than 200 characters"));
        }
        if batch.entries.is_empty() {
            return Err(Error::field("entries", "required: at least one entry"));
        }
        if batch.entries.len() > MAX_USAGE_ENTRIES {
            return Err(Error::field(
                "entries",
                format!("at most {MAX_USAGE_ENTRIES} entries in one batch"),
            ));
        }
        // (organisation, fingerprint, profile, day) -> count: entries repeating a key add up.
        let mut counts = BTreeMap::<(String, String, String, i64), i64>::new();
        let mut total: i64 = 0;
        for e in &batch.entries {
            let fingerprint = cert::normalise_fingerprint(
                &e.certificate_fingerprint,
                "entries.certificate_fingerprint",
            )?;
            let organisation = need("entries.organisation_id", &e.organisation_id)?;
            let profile = usage_profile(&e.profile)?;
            let day = policy::parse_date(e.day.trim()).ok_or_else(|| {
                Error::field(
                    "entries.day",
                    format!("{:?} is not a date written YYYY-MM-DD", e.day),
                )
            })?;
            if e.count <= 0 || e.count > MAX_USAGE_COUNT {
                return Err(Error::field(
                    "entries.count",
                    format!("must be between 1 and {MAX_USAGE_COUNT}"),
                ));
            }
            let day = day.midnight().assume_utc().unix_timestamp() - policy::VIETNAM_OFFSET_SECS;
            *counts
                .entry((organisation, fingerprint, profile.to_owned(), day))
                .or_default() += e.count;
            total = total.saturating_add(e.count);
        }
        let mut tx = self.db.begin_write().await?;
        let seen: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM usage_batches WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_one(&mut *tx)
                .await?;
        if seen > 0 {
            return Ok(UsageRecorded {
                duplicate: true,
                signatures: 0,
            });
        }
        for (organisation, fingerprint, _, _) in counts.keys() {
            must_exist(
                &mut tx,
                ORG_EXISTS,
                "organisation",
                "entries.organisation_id",
                organisation,
            )
            .await?;
            must_exist(
                &mut tx,
                CERT_EXISTS,
                "certificate",
                "entries.certificate_fingerprint",
                fingerprint,
            )
            .await?;
        }
        for ((organisation, fingerprint, profile, day), count) in &counts {
            // An upsert both backends read the same way.
            let updated = sqlx::query(
                "UPDATE signature_usage SET count = count + $1 WHERE organisation_id = $2 \
                 AND certificate_fingerprint = $3 AND profile = $4 AND day = $5",
            )
            .bind(*count)
            .bind(organisation)
            .bind(fingerprint)
            .bind(profile)
            .bind(*day)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                sqlx::query(
                    "INSERT INTO signature_usage (organisation_id, certificate_fingerprint, \
                     profile, day, count) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(organisation)
                .bind(fingerprint)
                .bind(profile)
                .bind(*day)
                .bind(*count)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO usage_batches (batch_id, signatures, recorded_at) VALUES ($1, $2, $3)",
        )
        .bind(batch_id)
        .bind(total)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let entries: Vec<serde_json::Value> = counts
            .iter()
            .map(|((o, f, p, d), c)| {
                json!({"organisation_id": o, "certificate_fingerprint": f, "profile": p,
                       "day": policy::vietnam_date(*d).map(policy::format_date), "count": c})
            })
            .collect();
        let data = json!({"batch_id": batch_id, "signatures": total, "entries": entries});
        self.commit(tx, change, now, "usage.recorded", batch_id, data)
            .await?;
        Ok(UsageRecorded {
            duplicate: false,
            signatures: total,
        })
    }
}
