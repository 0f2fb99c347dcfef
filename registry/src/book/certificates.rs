//! Certificates: registration of a new one (I1, I2, N4) or a renewal (I3, N4, V3), status
//! changes (N7, V3, V4) and look-ups with the status history.

use serde_json::json;
use sqlx::AnyConnection;

use super::Book;
use super::model::{
    Certificate, CertificateKind, CertificateLookup, CertificateStatus, Change, NewCertificate,
    RevocationReason, StatusChange, StatusEntry,
};
use super::shared::{dup, need};
use crate::cert;
use crate::error::{Error, Result};
use crate::policy::{self, show};
use crate::storage::new_id;

/// A certificate row as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(super) struct CertRow {
    pub(super) id: String,
    pub(super) fingerprint: String,
    pub(super) serial: String,
    pub(super) issuer: String,
    pub(super) subject: String,
    pub(super) kind: String,
    pub(super) person_id: Option<String>,
    pub(super) organisation_id: String,
    pub(super) not_before: i64,
    pub(super) not_after: i64,
    pub(super) renewal_of: Option<String>,
    pub(super) renewal_count: i64,
    pub(super) status: String,
    pub(super) der_hex: String,
}

const CERT_COLUMNS: &str = "id, fingerprint, serial, issuer, subject, kind, person_id, \
    organisation_id, not_before, not_after, renewal_of, renewal_count, status, der_hex";

/// A certificate by fingerprint, or NotFound naming `field`.
pub(super) async fn cert_by_fingerprint(
    conn: &mut AnyConnection,
    field: &'static str,
    fp: &str,
) -> Result<CertRow> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1");
    sqlx::query_as(&sql)
        .bind(fp)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("certificate", field, fp))
}

/// At most this many certificates in one `FindCertificates` answer.
const MAX_FOUND: i64 = 32;

/// One entry of the status history as stored.
#[derive(Debug, sqlx::FromRow)]
struct HistoryRow {
    status: String,
    reason: Option<String>,
    effective_at: i64,
}

/// The holder's facts a new personal certificate is checked against (I1, I2).
#[derive(Debug, sqlx::FromRow)]
struct Holder {
    email: String,
    organisation_id: String,
    service_end: Option<i64>,
}

/// The organisation's facts a new certificate is checked against (I1, I2).
#[derive(Debug, sqlx::FromRow)]
struct Organisation {
    mail_domain: String,
    status: String,
}

/// The last entry of a certificate's status history.
#[derive(Debug, sqlx::FromRow)]
struct LastStatus {
    status: String,
    effective_at: i64,
}

/// A certificate with its status at `now` and its history.
async fn certificate(conn: &mut AnyConnection, c: CertRow, now: i64) -> Result<Certificate> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT status, reason, effective_at FROM certificate_status_history \
         WHERE certificate_id = $1 ORDER BY effective_at, ordinal",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    let history = rows
        .into_iter()
        .map(|r| StatusEntry {
            status: CertificateStatus::from_stored(&r.status),
            reason: r.reason.as_deref().and_then(RevocationReason::from_stored),
            effective_at: r.effective_at,
        })
        .collect();
    // N7, V3: the last change effective at or before `now`.
    let status_now: Option<String> = sqlx::query_scalar(
        "SELECT status FROM certificate_status_history \
         WHERE certificate_id = $1 AND effective_at <= $2 \
         ORDER BY effective_at DESC, ordinal DESC LIMIT 1",
    )
    .bind(&c.id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let renewal_of = match &c.renewal_of {
        Some(id) => {
            sqlx::query_scalar("SELECT fingerprint FROM certificates WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => None,
    };
    Ok(Certificate {
        id: c.id,
        fingerprint: c.fingerprint,
        serial: c.serial,
        issuer: c.issuer,
        subject: c.subject,
        kind: CertificateKind::from_stored(&c.kind),
        person_id: c.person_id,
        organisation_id: c.organisation_id,
        not_before: c.not_before,
        not_after: c.not_after,
        status: status_now
            .as_deref()
            .and_then(CertificateStatus::from_stored),
        history,
        renewal_count: c.renewal_count,
        renewal_of,
        // Written by this module from the DER it parsed: a row that does not read back is
        // shown without it rather than failing the look-up.
        der: hex::decode(&c.der_hex).unwrap_or_default(),
    })
}

impl Book {
    /// Registers a certificate from its DER: a new one (I1, I2, N4) or the
    /// renewal of another (I3, N4, V3).
    pub async fn register_certificate(
        &self,
        change: &Change,
        req: &NewCertificate,
        now: i64,
    ) -> Result<Certificate> {
        let parsed = cert::parse(&req.der, "der")?;
        let kind = req.kind.as_str();
        let renewal_of = &req.renewal_of;
        let mut tx = self.db.begin_write().await?;

        // The holder.
        let (person, org) = if req.kind == CertificateKind::Personal {
            let person = need("person_id", &req.person_id)?;
            let holder: Holder = sqlx::query_as(
                "SELECT email, organisation_id, service_end FROM people WHERE id = $1",
            )
            .bind(&person)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("person", "person_id", person.clone()))?;
            let org = match req.organisation_id.trim() {
                "" => holder.organisation_id,
                o => o.to_owned(),
            };
            if renewal_of.is_none() {
                // I1: a new certificate needs a government mail account of the deployment.
                if !policy::email_in_domain(&holder.email, &self.mail_domain) {
                    return Err(Error::rule(
                        "I1",
                        "person_id",
                        format!(
                            "{} is not a mail account of {}; a new certificate needs one",
                            holder.email, self.mail_domain
                        ),
                    ));
                }
                // I2: no new certificate with less than 6 months of service left.
                if let Some(end) = holder.service_end {
                    let limit = policy::add_months(now, policy::SERVICE_MIN_MONTHS);
                    if end < limit {
                        return Err(Error::rule(
                            "I2",
                            "person_id",
                            format!(
                                "service ends {} (less than {} months from now)",
                                show(end),
                                policy::SERVICE_MIN_MONTHS
                            ),
                        ));
                    }
                }
            }
            (Some(person), org)
        } else {
            if !req.person_id.trim().is_empty() {
                return Err(Error::field(
                    "person_id",
                    "an organisation certificate has no personal holder (custodians are assigned separately, A5)",
                ));
            }
            (None, need("organisation_id", &req.organisation_id)?)
        };
        let Organisation {
            mail_domain: org_domain,
            status: org_status,
        } = sqlx::query_as("SELECT mail_domain, status FROM organisations WHERE id = $1")
            .bind(&org)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("organisation", "organisation_id", org.clone()))?;
        if renewal_of.is_none() && req.kind == CertificateKind::Organisation {
            if !policy::host_in_domain(&org_domain, &self.mail_domain) {
                return Err(Error::rule(
                    "I1",
                    "organisation_id",
                    format!(
                        "the organisation's mail domain {org_domain} is not in {}",
                        self.mail_domain
                    ),
                ));
            }
            if org_status != "active" {
                return Err(Error::rule(
                    "I2",
                    "organisation_id",
                    format!(
                        "the organisation is {org_status}: no new certificate until that is done"
                    ),
                ));
            }
        }

        // Validity (N4) and renewal (I3).
        let mut renewal_count = 0;
        let mut renewal_id = None;
        match renewal_of {
            None => {
                let max = policy::add_months(parsed.not_before, policy::NEW_MAX_MONTHS);
                if parsed.not_after > max {
                    return Err(Error::rule_invalid(
                        "N4",
                        "der",
                        format!(
                            "valid {} to {}: a new certificate is valid at most 5 years",
                            show(parsed.not_before),
                            show(parsed.not_after)
                        ),
                    ));
                }
            }
            Some(old_fp) => {
                let old = cert_by_fingerprint(&mut tx, "renewal_of", old_fp).await?;
                if old.kind != kind || old.person_id != person || old.organisation_id != org {
                    return Err(Error::field(
                        "renewal_of",
                        "a renewal keeps the kind, holder and organisation of the certificate it renews",
                    ));
                }
                if old.status == "revoked" {
                    return Err(Error::rule(
                        "V3",
                        "renewal_of",
                        "the certificate is revoked, permanently; it cannot be renewed",
                    ));
                }
                let renewed: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE renewal_of = $1")
                        .bind(&old.id)
                        .fetch_one(&mut *tx)
                        .await?;
                if old.renewal_count >= 1 || renewed > 0 {
                    return Err(Error::rule(
                        "I3",
                        "renewal_of",
                        "a certificate may be renewed only once",
                    ));
                }
                let left = old.not_after - now;
                if left < policy::RENEWAL_MIN_LEFT_SECS {
                    return Err(Error::rule(
                        "I3",
                        "renewal_of",
                        format!(
                            "{} days of validity left (expires {}); renewal needs at least 60",
                            left.max(0) / policy::DAY,
                            show(old.not_after)
                        ),
                    ));
                }
                let max = policy::add_months(old.not_after, policy::RENEWAL_MAX_MONTHS);
                if parsed.not_after > max {
                    return Err(Error::rule_invalid(
                        "N4",
                        "der",
                        format!(
                            "the renewal runs to {}: a renewal adds at most 3 years to {}",
                            show(parsed.not_after),
                            show(old.not_after)
                        ),
                    ));
                }
                renewal_count = old.renewal_count + 1;
                renewal_id = Some(old.id);
            }
        }

        let id = new_id("crt");
        sqlx::query(
            "INSERT INTO certificates (id, fingerprint, der_hex, serial, issuer, subject, kind, \
             person_id, organisation_id, not_before, not_after, renewal_of, renewal_count, status, \
             registered_at, subject_key_identifier) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, 'active', $14, $15)",
        )
        .bind(&id)
        .bind(&parsed.fingerprint)
        .bind(hex::encode(&req.der))
        .bind(&parsed.serial)
        .bind(&parsed.issuer)
        .bind(&parsed.subject)
        .bind(kind)
        .bind(person.as_deref())
        .bind(&org)
        .bind(parsed.not_before)
        .bind(parsed.not_after)
        .bind(renewal_id.as_deref())
        .bind(renewal_count)
        .bind(now)
        .bind(&parsed.subject_key_identifier)
        .execute(&mut *tx)
        .await
        .map_err(dup("certificate", "der", &parsed.fingerprint))?;
        // Active from its notBefore, so questions about any time in its
        // validity have an answer (CheckAuthority asks about the past).
        sqlx::query(
            "INSERT INTO certificate_status_history (id, certificate_id, status, reason, \
             effective_at, ordinal, recorded_at) VALUES ($1, $2, 'active', NULL, $3, 1, $4)",
        )
        .bind(new_id("sth"))
        .bind(&id)
        .bind(parsed.not_before)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let kind_of_event = if renewal_of.is_some() {
            "certificate.renewed"
        } else {
            "certificate.registered"
        };
        let data = json!({"fingerprint": parsed.fingerprint, "serial": parsed.serial,
            "issuer": parsed.issuer, "kind": kind, "person_id": person,
            "organisation_id": org, "not_before": parsed.not_before,
            "not_after": parsed.not_after, "renewal_of": renewal_of,
            "renewal_count": renewal_count,
            // The DER itself, so the log alone rebuilds the registry (replay).
            "der_hex": hex::encode(&req.der)});
        self.commit(tx, change, now, kind_of_event, &id, data)
            .await?;
        self.get_certificate_by_fingerprint(&parsed.fingerprint, now)
            .await
    }

    /// Suspends, reinstates (N7) or revokes (V3, V4) a certificate.
    pub async fn change_certificate_status(
        &self,
        change: &Change,
        req: &StatusChange,
        now: i64,
    ) -> Result<Certificate> {
        let fp = &req.fingerprint;
        let target = req.status.as_str();
        let revocation_reason = req.reason.map(RevocationReason::as_str);
        match (req.status, revocation_reason) {
            (CertificateStatus::Revoked, None) => {
                return Err(Error::rule_invalid(
                    "V4",
                    "reason",
                    "a revocation needs one of the reasons of the regulations",
                ));
            }
            (CertificateStatus::Active | CertificateStatus::Suspended, Some(_)) => {
                return Err(Error::field(
                    "reason",
                    "only a revocation carries a reason (V4)",
                ));
            }
            _ => {}
        }
        let effective = req.effective_at.unwrap_or(now);
        let mut tx = self.db.begin_write().await?;
        let c = cert_by_fingerprint(&mut tx, "fingerprint", fp).await?;
        let last: Option<LastStatus> = sqlx::query_as(
            "SELECT status, effective_at FROM certificate_status_history \
             WHERE certificate_id = $1 ORDER BY effective_at DESC, ordinal DESC LIMIT 1",
        )
        .bind(&c.id)
        .fetch_optional(&mut *tx)
        .await?;
        let (current, last_at, ordinal) = match last {
            Some(last) => (
                last.status,
                last.effective_at,
                sqlx::query_scalar::<_, i64>(
                    "SELECT COALESCE(MAX(ordinal), 0) FROM certificate_status_history \
                     WHERE certificate_id = $1",
                )
                .bind(&c.id)
                .fetch_one(&mut *tx)
                .await?,
            ),
            None => ("active".to_owned(), c.not_before, 0),
        };
        if current == "revoked" {
            return Err(Error::rule(
                "V3",
                "status",
                "the certificate is revoked; revocation is permanent",
            ));
        }
        match (current.as_str(), target) {
            ("active", "active") => {
                return Err(Error::rule(
                    "N7",
                    "status",
                    "the certificate is already active",
                ));
            }
            ("suspended", "suspended") => {
                return Err(Error::rule(
                    "N7",
                    "status",
                    "the certificate is already suspended",
                ));
            }
            _ => {}
        }
        if effective < last_at {
            return Err(Error::field(
                "effective_at",
                format!("before the last status change ({})", show(last_at)),
            ));
        }
        sqlx::query(
            "INSERT INTO certificate_status_history (id, certificate_id, status, reason, \
             effective_at, ordinal, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id("sth"))
        .bind(&c.id)
        .bind(target)
        .bind(revocation_reason)
        .bind(effective)
        .bind(ordinal + 1)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE certificates SET status = $1 WHERE id = $2")
            .bind(target)
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        let data = json!({"fingerprint": fp, "from": current, "to": target,
            "reason": revocation_reason, "effective_at": effective});
        self.commit(tx, change, now, "certificate.status_changed", &c.id, data)
            .await?;
        self.get_certificate_by_fingerprint(fp, now).await
    }

    /// A certificate by fingerprint, with its status now and its history.
    pub async fn get_certificate_by_fingerprint(&self, fp: &str, now: i64) -> Result<Certificate> {
        let fp = cert::normalise_fingerprint(fp, "fingerprint")?;
        let mut conn = self.db.pool().acquire().await?;
        let c = cert_by_fingerprint(&mut conn, "fingerprint", &fp).await?;
        certificate(&mut conn, c, now).await
    }

    /// A certificate by issuer (RFC 4514, as the registry reports it) and serial (hex).
    pub async fn get_certificate_by_issuer_serial(
        &self,
        issuer: &str,
        serial: &str,
        now: i64,
    ) -> Result<Certificate> {
        let issuer = need("issuer_serial.issuer", issuer)?;
        let serial = cert::normalise_serial(serial, "issuer_serial.serial")?;
        let mut conn = self.db.pool().acquire().await?;
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer = $1 AND serial = $2");
        let c: CertRow = sqlx::query_as(&sql)
            .bind(&issuer)
            .bind(&serial)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "certificate",
                    "issuer_serial",
                    format!("{issuer} / {serial}"),
                )
            })?;
        certificate(&mut conn, c, now).await
    }

    /// The DER of the certificates `q` names (issue 15, item 8): by issuer and serial (at
    /// most one, the pair is unique) or by subject key identifier (a re-keyed certificate
    /// may share it, so several). Candidates only: the caller's signature value decides.
    pub async fn find_certificates(&self, q: &CertificateLookup) -> Result<Vec<Vec<u8>>> {
        let rows: Vec<(String,)> = match q {
            CertificateLookup::IssuerSerial { issuer, serial } => {
                sqlx::query_as(
                    "SELECT der_hex FROM certificates WHERE issuer = $1 AND serial = $2 \
                     ORDER BY registered_at, id LIMIT $3",
                )
                .bind(issuer)
                .bind(serial)
                .bind(MAX_FOUND)
                .fetch_all(self.db.pool())
                .await?
            }
            CertificateLookup::SubjectKeyIdentifier(ski) => {
                sqlx::query_as(
                    "SELECT der_hex FROM certificates WHERE subject_key_identifier = $1 \
                     ORDER BY registered_at, id LIMIT $2",
                )
                .bind(ski)
                .bind(MAX_FOUND)
                .fetch_all(self.db.pool())
                .await?
            }
        };
        // Written by this module from DER it parsed; a row that does not decode is left out.
        Ok(rows
            .into_iter()
            .filter_map(|(h,)| hex::decode(h).ok())
            .collect())
    }

    /// Active or suspended certificates whose validity ends within `days` of `at`, counted
    /// by kind (`personal`, `organisation`): the I3 renewal window, for the metrics gauge.
    pub async fn count_expiring(&self, days: u32, at: i64) -> Result<Vec<(String, i64)>> {
        let until = at.saturating_add(i64::from(days) * policy::DAY);
        Ok(sqlx::query_as(
            "SELECT kind, COUNT(*) AS n FROM certificates WHERE not_after >= $1 AND not_after <= $2 \
             AND status <> 'revoked' GROUP BY kind",
        )
        .bind(at)
        .bind(until)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Certificates not revoked whose validity ends within `days` of `at`
    /// (the I3 renewal window), soonest first.
    pub async fn expiring(&self, days: u32, at: i64) -> Result<Vec<Certificate>> {
        let until = at.saturating_add(i64::from(days) * policy::DAY);
        let mut conn = self.db.pool().acquire().await?;
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE not_after >= $1 AND not_after <= $2 \
             AND status <> 'revoked' ORDER BY not_after LIMIT 10000"
        );
        let rows: Vec<CertRow> = sqlx::query_as(&sql)
            .bind(at)
            .bind(until)
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for c in rows {
            out.push(certificate(&mut conn, c, at).await?);
        }
        Ok(out)
    }
}
