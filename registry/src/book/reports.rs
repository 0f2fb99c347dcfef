//! The subscriber manager's periodic report (R2): certificates, signatures and documents
//! exchanged, per managing agency per period.

use std::collections::{BTreeMap, HashMap};

use super::Book;
use super::model::{Report, ReportQuery, ReportRow};
use crate::error::Result;
use crate::policy;

/// The counts of one (period, agency) cell, in the order of [`ReportRow`]'s counts.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    issued: i64,
    renewed: i64,
    revoked: i64,
    suspended: i64,
    signatures: i64,
    sent: i64,
    received: i64,
    refused: i64,
}

/// The cell of the period holding `at`, for `agency`.
fn cell(
    counts: &mut BTreeMap<(i64, String), Counts>,
    months: u8,
    at: i64,
    agency: String,
) -> &mut Counts {
    counts
        .entry((policy::period_start(at, months), agency))
        .or_default()
}

impl Book {
    /// R2: certificates issued, renewed (by notBefore), revoked and suspended (by the time
    /// the change takes effect), signatures made (as the signers report them, by Vietnam's
    /// day) and documents sent, received and refused (by the exchange time, W5) per managing
    /// agency (I6; an organisation without one manages itself) per calendar period in
    /// [from, to). The flag says whether any signer has reported usage at all, so a report
    /// of zero signatures from a deployment whose signers never report is not read as zero.
    pub async fn report(&self, q: &ReportQuery) -> Result<Report> {
        let (from, to) = (q.from, q.to);
        let months = q.granularity.months();
        let pool = self.db.pool();
        let names: HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT id, name FROM organisations")
                .fetch_all(pool)
                .await?
                .into_iter()
                .collect();
        let mut counts = BTreeMap::<(i64, String), Counts>::new();
        let certs: Vec<(i64, Option<String>, String)> = sqlx::query_as(
            "SELECT c.not_before, c.renewal_of, COALESCE(o.managing_agency_id, o.id) \
             FROM certificates c JOIN organisations o ON o.id = c.organisation_id \
             WHERE c.not_before >= $1 AND c.not_before < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        for (at, renewal_of, agency) in certs {
            let c = cell(&mut counts, months, at, agency);
            if renewal_of.is_some() {
                c.renewed += 1;
            } else {
                c.issued += 1;
            }
        }
        let changes: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT h.effective_at, h.status, COALESCE(o.managing_agency_id, o.id) \
             FROM certificate_status_history h \
             JOIN certificates c ON c.id = h.certificate_id \
             JOIN organisations o ON o.id = c.organisation_id \
             WHERE h.status IN ('revoked', 'suspended') \
             AND h.effective_at >= $1 AND h.effective_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        for (at, status, agency) in changes {
            let c = cell(&mut counts, months, at, agency);
            if status == "revoked" {
                c.revoked += 1;
            } else {
                c.suspended += 1;
            }
        }
        let usage: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT u.day, u.count, COALESCE(o.managing_agency_id, o.id) \
             FROM signature_usage u JOIN organisations o ON o.id = u.organisation_id \
             WHERE u.day >= $1 AND u.day < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        for (day, count, agency) in usage {
            cell(&mut counts, months, day, agency).signatures += count;
        }
        let exchanged: Vec<(i64, String, i64, String)> = sqlx::query_as(
            "SELECT r.at, r.direction, r.refused, COALESCE(o.managing_agency_id, o.id) \
             FROM document_register r JOIN organisations o ON o.id = r.organisation_id \
             WHERE r.at >= $1 AND r.at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        for (at, direction, refused, agency) in exchanged {
            let c = cell(&mut counts, months, at, agency);
            match (direction.as_str(), refused != 0) {
                ("outgoing", _) => c.sent += 1,
                (_, false) => c.received += 1,
                (_, true) => c.refused += 1,
            }
        }
        let batches: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_batches")
            .fetch_one(pool)
            .await?;
        let mut rows: Vec<ReportRow> = counts
            .into_iter()
            .map(|((start, agency), c)| ReportRow {
                period: policy::period_label(start, months),
                period_start: start,
                period_end: policy::period_end(start, months),
                managing_agency_name: names.get(&agency).cloned().unwrap_or_default(),
                managing_agency_id: agency,
                issued: c.issued,
                renewed: c.renewed,
                revoked: c.revoked,
                suspended: c.suspended,
                signatures: c.signatures,
                sent: c.sent,
                received: c.received,
                refused: c.refused,
            })
            .collect();
        rows.sort_by(|a, b| {
            (
                a.period_start,
                &a.managing_agency_name,
                &a.managing_agency_id,
            )
                .cmp(&(
                    b.period_start,
                    &b.managing_agency_name,
                    &b.managing_agency_id,
                ))
        });
        Ok(Report {
            rows,
            signatures_counted: batches > 0,
        })
    }
}
