//! The registry's operations on the database: every change is one write
//! transaction with its event (storage.rs), every refusal names its rule.

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1 as spb;
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::authority::facts::{kind_value, mode_name, status_value};
use crate::authority::{
    AuthorityCheck, AuthorizeQuery, CheckQuery, Decision, Index, SqlFacts, rules,
};
use crate::cert;
use crate::error::{Error, Result};
use crate::policy::{self, show};
use crate::storage::{Db, Event, col, is_unique_violation, new_id};

/// The registry's book: the database and the deployment's settings.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    mail_domain: String,
    /// Where `Authorize` and `CheckAuthority` read their facts when loaded (authority/index);
    /// without it they read them from the database (authority/sql.rs).
    index: Option<std::sync::Arc<Index>>,
}

/// A certificate row, with its status now and its history.
#[derive(Clone, Debug)]
struct CertRow {
    id: String,
    fingerprint: String,
    serial: String,
    issuer: String,
    subject: String,
    kind: String,
    person_id: Option<String>,
    organisation_id: String,
    not_before: i64,
    not_after: i64,
    renewal_of: Option<String>,
    renewal_count: i64,
    status: String,
}

const CERT_COLUMNS: &str = "id, fingerprint, serial, issuer, subject, kind, person_id, \
    organisation_id, not_before, not_after, renewal_of, renewal_count, status";

fn cert_row(r: &AnyRow) -> Result<CertRow> {
    Ok(CertRow {
        id: col(r, "id")?,
        fingerprint: col(r, "fingerprint")?,
        serial: col(r, "serial")?,
        issuer: col(r, "issuer")?,
        subject: col(r, "subject")?,
        kind: col(r, "kind")?,
        person_id: col(r, "person_id")?,
        organisation_id: col(r, "organisation_id")?,
        not_before: col(r, "not_before")?,
        not_after: col(r, "not_after")?,
        renewal_of: col(r, "renewal_of")?,
        renewal_count: col(r, "renewal_count")?,
        status: col(r, "status")?,
    })
}

// ----- enum names as stored -------------------------------------------------------------------

fn org_status_name(s: pb::OrganisationStatus) -> Option<&'static str> {
    use pb::OrganisationStatus as S;
    Some(match s {
        S::Unspecified => return None,
        S::Active => "active",
        S::PendingDissolution => "pending_dissolution",
        S::PendingMerger => "pending_merger",
        S::PendingSplit => "pending_split",
        S::PendingRename => "pending_rename",
        S::Dissolved => "dissolved",
    })
}

fn classification_name(c: spb::Classification) -> Option<&'static str> {
    use spb::Classification as C;
    Some(match c {
        C::Unspecified => return None,
        C::None => "none",
        C::Secret => "secret",
        C::TopSecret => "top_secret",
        C::HighestSecret => "highest_secret",
    })
}

fn status_name(s: pb::CertificateStatus) -> Option<&'static str> {
    use pb::CertificateStatus as S;
    match s {
        S::Active => Some("active"),
        S::Suspended => Some("suspended"),
        S::Revoked => Some("revoked"),
        S::Unspecified => None,
    }
}

// ----- unlock requests (I5) ----------------------------------------------------------------------

const UNLOCK_SELECT: &str = "SELECT u.id, c.fingerprint, u.requested_by, u.reason, \
     u.requested_at, u.due_at, u.status, u.resolution_reason, u.resolved_at \
     FROM unlock_requests u JOIN certificates c ON c.id = u.certificate_id";

fn unlock_row(r: &AnyRow) -> Result<pb::UnlockRequest> {
    let t = |s: i64| {
        Some(prost_types::Timestamp {
            seconds: s,
            nanos: 0,
        })
    };
    let status: String = col(r, "status")?;
    Ok(pb::UnlockRequest {
        id: col(r, "id")?,
        fingerprint: col(r, "fingerprint")?,
        requested_by: col(r, "requested_by")?,
        reason: col(r, "reason")?,
        requested_at: t(col(r, "requested_at")?),
        due_at: t(col(r, "due_at")?),
        status: match status.as_str() {
            "pending" => pb::UnlockStatus::Pending,
            "done" => pb::UnlockStatus::Done,
            "refused" => pb::UnlockStatus::Refused,
            _ => pb::UnlockStatus::Unspecified,
        } as i32,
        resolution_reason: col::<Option<String>>(r, "resolution_reason")?.unwrap_or_default(),
        resolved_at: col::<Option<i64>>(r, "resolved_at")?.and_then(t),
    })
}

// ----- names -----------------------------------------------------------------------------------

/// At most this many matches of a find.
const FIND_LIMIT: usize = 100;

/// The stored search key of a name: NFD, combining marks removed, đ/Đ as d, Unicode
/// lowercase, whitespace collapsed ("Nguyễn  Văn An" -> "nguyen van an"). SQLite's LOWER()
/// folds ASCII only, so the key is made here for both backends.
pub fn search_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let folded: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whole-name equality, case-insensitive but keeping the marks ("Lê" is not "Le").
fn same_name(a: &str, b: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let key = |s: &str| {
        s.nfc()
            .flat_map(char::to_lowercase)
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    key(a) == key(b)
}

/// A LIKE pattern for "contains `key`", `!` escaping the wildcards.
fn like_pattern(key: &str) -> String {
    let mut p = String::from("%");
    for c in key.chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

// ----- request checks -------------------------------------------------------------------------

fn need(field: &'static str, v: &str) -> Result<String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::field(field, "required"));
    }
    Ok(t.to_owned())
}

/// Who and why, required on every change (the event log keeps them).
fn change(c: &Option<pb::Change>) -> Result<(String, String)> {
    let c = c
        .as_ref()
        .ok_or_else(|| Error::field("change", "required: actor and reason"))?;
    Ok((
        need("change.actor", &c.actor)?,
        need("change.reason", &c.reason)?,
    ))
}

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

/// A person's mail address, lowercase; whether it is an account of the deployment's
/// domain is checked when a certificate is issued (I1).
fn mail_address(v: &str) -> Result<String> {
    let email = need("email", v)?.to_ascii_lowercase();
    if !matches!(email.split_once('@'), Some((l, h)) if !l.is_empty() && h.contains('.')) {
        return Err(Error::field("email", "not a mail address"));
    }
    Ok(email)
}

fn ts(field: &'static str, t: &Option<prost_types::Timestamp>) -> Result<Option<i64>> {
    match t {
        None => Ok(None),
        Some(t) if t.nanos < 0 || t.nanos >= 1_000_000_000 => {
            Err(Error::field(field, "nanos out of range"))
        }
        // Years 1..9999, as RFC 3339 can write them.
        Some(t) if t.seconds < -62_135_596_800 || t.seconds > 253_402_300_799 => {
            Err(Error::field(field, "impossible date"))
        }
        Some(t) => Ok(Some(t.seconds)),
    }
}

fn ts_req(field: &'static str, t: &Option<prost_types::Timestamp>) -> Result<i64> {
    ts(field, t)?.ok_or_else(|| Error::field(field, "required"))
}

async fn exists(conn: &mut AnyConnection, sql: &'static str, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(sql).bind(id).fetch_one(conn).await?;
    Ok(n > 0)
}

const ORG_EXISTS: &str = "SELECT COUNT(*) FROM organisations WHERE id = $1";
const PERSON_EXISTS: &str = "SELECT COUNT(*) FROM people WHERE id = $1";
const TITLE_EXISTS: &str = "SELECT COUNT(*) FROM titles WHERE id = $1";
const CERT_EXISTS: &str = "SELECT COUNT(*) FROM certificates WHERE fingerprint = $1";

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

async fn must_exist(
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

/// A document type's classification, or NotFound.
async fn doc_classification(
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

async fn cert_by_fingerprint(
    conn: &mut AnyConnection,
    field: &'static str,
    fp: &str,
) -> Result<CertRow> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1");
    let row = sqlx::query(&sql).bind(fp).fetch_optional(conn).await?;
    match row {
        Some(r) => cert_row(&r),
        None => Err(Error::not_found("certificate", field, fp)),
    }
}

/// The status at time `t` (N7, V3): the last change effective at or before
/// `t`; None before the certificate's first entry.
async fn status_at(
    conn: &mut AnyConnection,
    cert_id: &str,
    t: i64,
) -> Result<Option<(String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT status, reason FROM certificate_status_history \
         WHERE certificate_id = $1 AND effective_at <= $2 \
         ORDER BY effective_at DESC, ordinal DESC LIMIT 1",
    )
    .bind(cert_id)
    .bind(t)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => Ok(Some((col(&r, "status")?, col(&r, "reason")?))),
        None => Ok(None),
    }
}

/// Titles the person holds in the organisation at `t`: (title_id, name).
async fn titles_held(
    conn: &mut AnyConnection,
    person: &str,
    org: &str,
    t: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT a.title_id AS title_id, t.name AS name FROM appointments a \
         JOIN titles t ON t.id = a.title_id \
         WHERE a.person_id = $1 AND a.organisation_id = $2 AND a.valid_from <= $3 \
         AND (a.valid_to IS NULL OR a.valid_to > $3) ORDER BY t.name",
    )
    .bind(person)
    .bind(org)
    .bind(t)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, "title_id")?, col(r, "name")?)))
        .collect()
}

/// The current custodian of an organisation certificate at `t` (A5).
async fn custodian_at(conn: &mut AnyConnection, cert_id: &str, t: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT person_id FROM custodians WHERE certificate_id = $1 AND valid_from <= $2 \
         AND (valid_to IS NULL OR valid_to > $2) ORDER BY valid_from DESC LIMIT 1",
    )
    .bind(cert_id)
    .bind(t)
    .fetch_optional(conn)
    .await?)
}

async fn name_of(conn: &mut AnyConnection, sql: &'static str, id: &str) -> Result<String> {
    Ok(sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .unwrap_or_default())
}

const ORG_NAME: &str = "SELECT name FROM organisations WHERE id = $1";

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
        names.push(name_of(&mut *conn, ORG_NAME, &at).await?);
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

/// I5: the holidays from `from` through the unlock look-ahead (Vietnam's dates).
async fn holidays_from(
    conn: &mut AnyConnection,
    from: time::Date,
) -> Result<std::collections::BTreeSet<time::Date>> {
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

/// Maps a unique violation on insert to AlreadyExists; anything else stays a database error.
fn dup(what: &'static str, field: &'static str, value: &str) -> impl FnOnce(sqlx::Error) -> Error {
    let value = value.to_owned();
    move |e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists { what, field, value }
        } else {
            Error::Database(e)
        }
    }
}

impl Store {
    /// A store over a connected database; `mail_domain` is checked by the config (I1).
    pub fn new(db: Db, mail_domain: String) -> Self {
        Self {
            db,
            mail_domain,
            index: None,
        }
    }

    /// The same store answering `Authorize` and `CheckAuthority` from the in-memory
    /// authorization index, loaded now from the database (authority/index).
    pub async fn with_index(mut self) -> Result<Self> {
        let index = Index::load(self.db.clone()).await?;
        self.index = Some(std::sync::Arc::new(index));
        Ok(self)
    }

    /// The authorization index, when loaded.
    pub fn index(&self) -> Option<&Index> {
        self.index.as_deref()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    // ----- management -------------------------------------------------------------------------

    /// Creates an organisation (I6 hierarchy and managing agency, I1 mail domain).
    pub async fn create_organisation(
        &self,
        req: &pb::CreateOrganisationRequest,
        now: i64,
    ) -> Result<String> {
        let (actor, reason) = change(&req.change)?;
        let name = need("name", &req.name)?;
        let domain = mail_domain(&req.mail_domain)?;
        let parent = Some(req.parent_id.trim()).filter(|s| !s.is_empty());
        let managing = Some(req.managing_agency_id.trim()).filter(|s| !s.is_empty());
        let id = new_id("org");
        let mut tx = self.db.begin_write().await?;
        if let Some(p) = parent {
            must_exist(&mut tx, ORG_EXISTS, "organisation", "parent_id", p).await?;
        }
        if let Some(m) = managing {
            must_exist(&mut tx, ORG_EXISTS, "organisation", "managing_agency_id", m).await?;
        }
        sqlx::query(
            "INSERT INTO organisations (id, name, parent_id, managing_agency_id, mail_domain, \
             status, created_at, search_key) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)",
        )
        .bind(&id)
        .bind(&name)
        .bind(parent)
        .bind(managing)
        .bind(&domain)
        .bind(now)
        .bind(search_key(&name))
        .execute(&mut *tx)
        .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "organisation.created",
            entity_id: &id,
            change: json!({"name": name, "parent_id": parent, "managing_agency_id": managing,
                "mail_domain": domain}),
        };
        self.db.commit(tx, event).await?;
        Ok(id)
    }

    /// Sets an organisation's status; a pending change blocks new certificates (I2).
    pub async fn set_organisation_status(
        &self,
        req: &pb::SetOrganisationStatusRequest,
        now: i64,
    ) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        let org = need("organisation_id", &req.organisation_id)?;
        let status = pb::OrganisationStatus::try_from(req.status)
            .ok()
            .and_then(org_status_name)
            .ok_or_else(|| Error::field("status", "required: one of the organisation statuses"))?;
        let decision = need("decision_ref", &req.decision_ref)?;
        let mut tx = self.db.begin_write().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM organisations WHERE id = $1")
                .bind(&org)
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
            .bind(&decision)
            .bind(&org)
            .execute(&mut *tx)
            .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "organisation.status_changed",
            entity_id: &org,
            change: json!({"status": status, "decision_ref": decision, "previous": current}),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    /// Creates a person working in an organisation.
    pub async fn create_person(&self, req: &pb::CreatePersonRequest, now: i64) -> Result<String> {
        let (actor, reason) = change(&req.change)?;
        let name = need("full_name", &req.full_name)?;
        let email = mail_address(&req.email)?;
        let org = need("organisation_id", &req.organisation_id)?;
        let service_end = ts("service_end", &req.service_end)?;
        let id = new_id("per");
        let mut tx = self.db.begin_write().await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "organisation_id", &org).await?;
        sqlx::query(
            "INSERT INTO people (id, full_name, email, organisation_id, service_end, created_at, \
             search_key) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&email)
        .bind(&org)
        .bind(service_end)
        .bind(now)
        .bind(search_key(&name))
        .execute(&mut *tx)
        .await
        .map_err(dup("person", "email", &email))?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "person.created",
            entity_id: &id,
            change: json!({"full_name": name, "email": email, "organisation_id": org,
                "service_end": service_end}),
        };
        self.db.commit(tx, event).await?;
        Ok(id)
    }

    /// Creates a title (Chủ tịch, Văn thư, ...).
    pub async fn create_title(&self, req: &pb::CreateTitleRequest, now: i64) -> Result<String> {
        let (actor, reason) = change(&req.change)?;
        let name = need("name", &req.name)?;
        let id = new_id("tit");
        let mut tx = self.db.begin_write().await?;
        sqlx::query("INSERT INTO titles (id, name) VALUES ($1, $2)")
            .bind(&id)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(dup("title", "name", &name))?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "title.created",
            entity_id: &id,
            change: json!({"name": name}),
        };
        self.db.commit(tx, event).await?;
        Ok(id)
    }

    /// Appoints a person to a title in an organisation for a period.
    pub async fn create_appointment(
        &self,
        req: &pb::CreateAppointmentRequest,
        now: i64,
    ) -> Result<String> {
        let (actor, reason) = change(&req.change)?;
        let person = need("person_id", &req.person_id)?;
        let title = need("title_id", &req.title_id)?;
        let org = need("organisation_id", &req.organisation_id)?;
        let decision = need("decision_ref", &req.decision_ref)?;
        let from = ts_req("valid_from", &req.valid_from)?;
        let to = ts("valid_to", &req.valid_to)?;
        if let Some(to) = to
            && to <= from
        {
            return Err(Error::field("valid_to", "must be after valid_from"));
        }
        let id = new_id("apt");
        let mut tx = self.db.begin_write().await?;
        must_exist(&mut tx, PERSON_EXISTS, "person", "person_id", &person).await?;
        must_exist(&mut tx, TITLE_EXISTS, "title", "title_id", &title).await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "organisation_id", &org).await?;
        sqlx::query(
            "INSERT INTO appointments (id, person_id, title_id, organisation_id, valid_from, \
             valid_to, decision_ref) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&person)
        .bind(&title)
        .bind(&org)
        .bind(from)
        .bind(to)
        .bind(&decision)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "appointment.created",
            entity_id: &id,
            change: json!({"person_id": person, "title_id": title, "organisation_id": org,
                "valid_from": from, "valid_to": to, "decision_ref": decision}),
        };
        self.db.commit(tx, event).await?;
        Ok(id)
    }

    /// Creates a document type with its classification (A7).
    pub async fn create_document_type(
        &self,
        req: &pb::CreateDocumentTypeRequest,
        now: i64,
    ) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        let code = need("code", &req.code)?;
        let name = need("name", &req.name)?;
        let class = spb::Classification::try_from(req.classification)
            .ok()
            .and_then(classification_name)
            .ok_or_else(|| {
                Error::field("classification", "required: NONE or a secrecy level (A7)")
            })?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("INSERT INTO document_types (code, name, classification) VALUES ($1, $2, $3)")
            .bind(&code)
            .bind(&name)
            .bind(class)
            .execute(&mut *tx)
            .await
            .map_err(dup("document type", "code", &code))?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "document_type.created",
            entity_id: &code,
            change: json!({"name": name, "classification": class}),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    /// Grants title authorities and organisation profiles, all or nothing.
    /// Each grant is checked as it is written, so a bad one late in the list
    /// rolls back the ones before it (one transaction).
    pub async fn grant_authority(&self, req: &pb::GrantAuthorityRequest, now: i64) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        if req.title_authorities.is_empty() && req.organisation_profiles.is_empty() {
            return Err(Error::field("title_authorities", "nothing to grant"));
        }
        let mut tx = self.db.begin_write().await?;
        let mut written = Vec::new();
        for g in &req.title_authorities {
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
            let class =
                doc_classification(&mut tx, "title_authorities.document_type", &doc).await?;
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
        for g in &req.organisation_profiles {
            let org = need("organisation_profiles.organisation_id", &g.organisation_id)?;
            let doc = need("organisation_profiles.document_type", &g.document_type)?;
            let profile = match spb::Profile::try_from(g.profile) {
                Ok(spb::Profile::Unspecified) | Err(_) => {
                    return Err(Error::field("organisation_profiles.profile", "required"));
                }
                Ok(spb::Profile::Approval) | Ok(spb::Profile::Comment) => {
                    return Err(Error::rule_invalid(
                        "A4",
                        "organisation_profiles.profile",
                        "approvals and comments are personal signatures (D1); an organisation certificate is the seal",
                    ));
                }
                Ok(p) => p.as_str_name(),
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
                doc_classification(&mut tx, "organisation_profiles.document_type", &doc).await?;
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
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "authority.granted",
            entity_id: "",
            change: json!({"grants": written}),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    /// Registers a certificate from its DER: a new one (I1, I2, N4) or the
    /// renewal of another (I3, N4, V3).
    pub async fn register_certificate(
        &self,
        req: &pb::RegisterCertificateRequest,
        now: i64,
    ) -> Result<pb::Certificate> {
        let (actor, reason) = change(&req.change)?;
        let parsed = cert::parse(&req.der, "der")?;
        let kind = match pb::CertificateKind::try_from(req.kind) {
            Ok(pb::CertificateKind::Personal) => "personal",
            Ok(pb::CertificateKind::Organisation) => "organisation",
            _ => return Err(Error::field("kind", "required: PERSONAL or ORGANISATION")),
        };
        let renewal_of = match req.renewal_of.trim() {
            "" => None,
            s => Some(cert::normalise_fingerprint(s, "renewal_of")?),
        };
        let mut tx = self.db.begin_write().await?;

        // The holder.
        let (person, org) = if kind == "personal" {
            let person = need("person_id", &req.person_id)?;
            let row =
                sqlx::query("SELECT email, organisation_id, service_end FROM people WHERE id = $1")
                    .bind(&person)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| Error::not_found("person", "person_id", person.clone()))?;
            let email: String = col(&row, "email")?;
            let home: String = col(&row, "organisation_id")?;
            let service_end: Option<i64> = col(&row, "service_end")?;
            let org = match req.organisation_id.trim() {
                "" => home,
                o => o.to_owned(),
            };
            if renewal_of.is_none() {
                // I1: a new certificate needs a government mail account of the deployment.
                if !policy::email_in_domain(&email, &self.mail_domain) {
                    return Err(Error::rule(
                        "I1",
                        "person_id",
                        format!(
                            "{email} is not a mail account of {}; a new certificate needs one",
                            self.mail_domain
                        ),
                    ));
                }
                // I2: no new certificate with less than 6 months of service left.
                if let Some(end) = service_end {
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
        let org_row = sqlx::query("SELECT mail_domain, status FROM organisations WHERE id = $1")
            .bind(&org)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("organisation", "organisation_id", org.clone()))?;
        let org_domain: String = col(&org_row, "mail_domain")?;
        let org_status: String = col(&org_row, "status")?;
        if renewal_of.is_none() && kind == "organisation" {
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
        match &renewal_of {
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
             registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             'active', $14)",
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
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: if renewal_of.is_some() {
                "certificate.renewed"
            } else {
                "certificate.registered"
            },
            entity_id: &id,
            change: json!({"fingerprint": parsed.fingerprint, "serial": parsed.serial,
                "issuer": parsed.issuer, "kind": kind, "person_id": person,
                "organisation_id": org, "not_before": parsed.not_before,
                "not_after": parsed.not_after, "renewal_of": renewal_of,
                "renewal_count": renewal_count,
                // The DER itself, so the log alone rebuilds the registry (replay).
                "der_hex": hex::encode(&req.der)}),
        };
        self.db.commit(tx, event).await?;
        self.get_certificate_by_fingerprint(&parsed.fingerprint, now)
            .await
    }

    /// Suspends, reinstates (N7) or revokes (V3, V4) a certificate.
    pub async fn change_certificate_status(
        &self,
        req: &pb::ChangeCertificateStatusRequest,
        now: i64,
    ) -> Result<pb::Certificate> {
        let (actor, reason) = change(&req.change)?;
        let fp = cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?;
        let target = pb::CertificateStatus::try_from(req.status)
            .ok()
            .and_then(status_name)
            .ok_or_else(|| Error::field("status", "required: ACTIVE, SUSPENDED or REVOKED"))?;
        let revocation_reason = match pb::RevocationReason::try_from(req.reason) {
            Ok(pb::RevocationReason::Unspecified) | Err(_) => None,
            Ok(r) => Some(r.as_str_name()),
        };
        match (target, revocation_reason) {
            ("revoked", None) => {
                return Err(Error::rule_invalid(
                    "V4",
                    "reason",
                    "a revocation needs one of the reasons of the regulations",
                ));
            }
            ("active" | "suspended", Some(_)) => {
                return Err(Error::field(
                    "reason",
                    "only a revocation carries a reason (V4)",
                ));
            }
            _ => {}
        }
        let effective = ts("effective_at", &req.effective_at)?.unwrap_or(now);
        let mut tx = self.db.begin_write().await?;
        let c = cert_by_fingerprint(&mut tx, "fingerprint", &fp).await?;
        let last = sqlx::query(
            "SELECT status, effective_at, ordinal FROM certificate_status_history \
             WHERE certificate_id = $1 ORDER BY effective_at DESC, ordinal DESC LIMIT 1",
        )
        .bind(&c.id)
        .fetch_optional(&mut *tx)
        .await?;
        let (current, last_at, ordinal) = match &last {
            Some(r) => (
                col::<String>(r, "status")?,
                col::<i64>(r, "effective_at")?,
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
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "certificate.status_changed",
            entity_id: &c.id,
            change: json!({"fingerprint": fp, "from": current, "to": target,
                "reason": revocation_reason, "effective_at": effective}),
        };
        self.db.commit(tx, event).await?;
        self.get_certificate_by_fingerprint(&fp, now).await
    }

    /// Assigns the custodian of an organisation certificate by written
    /// decision; replacing one needs a handover record (A5).
    pub async fn assign_custodian(
        &self,
        req: &pb::AssignCustodianRequest,
        now: i64,
    ) -> Result<String> {
        let (actor, reason) = change(&req.change)?;
        let fp = cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?;
        let person = need("person_id", &req.person_id)?;
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::rule_invalid(
                "A5",
                "decision_ref",
                "a custodian is assigned by a written decision of the head of the organisation",
            ));
        }
        let decision_date = ts_req("decision_date", &req.decision_date)?;
        let effective = ts("effective_at", &req.effective_at)?.unwrap_or(now);
        if decision_date > effective {
            return Err(Error::field(
                "decision_date",
                "after the assignment takes effect",
            ));
        }
        let handover = req.handover_record.trim().to_owned();
        let mut tx = self.db.begin_write().await?;
        let c = cert_by_fingerprint(&mut tx, "fingerprint", &fp).await?;
        if c.kind != "organisation" {
            return Err(Error::rule_invalid(
                "A1",
                "fingerprint",
                "a personal certificate is used only by its holder; it has no custodian",
            ));
        }
        let home: Option<String> =
            sqlx::query_scalar("SELECT organisation_id FROM people WHERE id = $1")
                .bind(&person)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(home) = home else {
            return Err(Error::not_found("person", "person_id", person));
        };
        let member = home == c.organisation_id
            || !titles_held(&mut tx, &person, &c.organisation_id, effective)
                .await?
                .is_empty();
        if !member {
            return Err(Error::rule(
                "A5",
                "person_id",
                "the custodian must be a member (the clerk) of the certificate's organisation",
            ));
        }
        let current = custodian_at(&mut tx, &c.id, effective).await?;
        if let Some(cur) = &current {
            if *cur == person {
                return Err(Error::rule(
                    "A5",
                    "person_id",
                    "this person is already the custodian",
                ));
            }
            if handover.is_empty() {
                return Err(Error::rule(
                    "A5",
                    "handover_record",
                    "a change of custodian needs a handover record",
                ));
            }
            sqlx::query(
                "UPDATE custodians SET valid_to = $1 WHERE certificate_id = $2 AND person_id = $3 \
                 AND valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)",
            )
            .bind(effective)
            .bind(&c.id)
            .bind(cur)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO custodian_handovers (id, certificate_id, from_person_id, \
                 to_person_id, record_ref, handed_over_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new_id("hnd"))
            .bind(&c.id)
            .bind(cur)
            .bind(&person)
            .bind(&handover)
            .bind(effective)
            .execute(&mut *tx)
            .await?;
        }
        let id = new_id("cus");
        sqlx::query(
            "INSERT INTO custodians (id, certificate_id, person_id, decision_ref, decision_date, \
             valid_from, valid_to) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&id)
        .bind(&c.id)
        .bind(&person)
        .bind(&decision)
        .bind(decision_date)
        .bind(effective)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "custodian.assigned",
            entity_id: &id,
            change: json!({"fingerprint": fp, "person_id": person, "previous": current,
                "decision_ref": decision, "decision_date": decision_date,
                "handover_record": Some(handover).filter(|h| !h.is_empty()),
                "effective_at": effective}),
        };
        self.db.commit(tx, event).await?;
        Ok(id)
    }

    /// Creates a delegation for KT./TL./TUQ. (A2): never to oneself, never in a cycle.
    pub async fn create_delegation(
        &self,
        req: &pb::CreateDelegationRequest,
        now: i64,
    ) -> Result<String> {
        let (actor, reason) = change(&req.change)?;
        let org = need("organisation_id", &req.organisation_id)?;
        let from = need("from_person_id", &req.from_person_id)?;
        let to = need("to_person_id", &req.to_person_id)?;
        if from == to {
            return Err(Error::rule_invalid(
                "A2",
                "to_person_id",
                "a person cannot delegate to themselves",
            ));
        }
        let mode = spb::SigningMode::try_from(req.mode)
            .ok()
            .and_then(mode_name)
            .ok_or_else(|| Error::field("mode", "required: KT, TL or TUQ (A2)"))?;
        if req.document_types.is_empty() {
            return Err(Error::field("document_types", "at least one document type"));
        }
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::rule_invalid(
                "A2",
                "decision_ref",
                "signing on behalf needs a decision of the competent person",
            ));
        }
        let valid_from = ts_req("valid_from", &req.valid_from)?;
        let valid_to = ts_req("valid_to", &req.valid_to)?;
        if valid_to <= valid_from {
            return Err(Error::field("valid_to", "must be after valid_from"));
        }
        let mut tx = self.db.begin_write().await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "organisation_id", &org).await?;
        must_exist(&mut tx, PERSON_EXISTS, "person", "from_person_id", &from).await?;
        must_exist(&mut tx, PERSON_EXISTS, "person", "to_person_id", &to).await?;
        // A2: no cycle. Follow delegations from the delegate onwards (same
        // organisation, overlapping window); reaching the delegator is a cycle.
        let mut seen = vec![to.clone()];
        let mut frontier = vec![to.clone()];
        while let Some(p) = frontier.pop() {
            let next: Vec<String> = sqlx::query_scalar(
                "SELECT to_person_id FROM delegations WHERE from_person_id = $1 \
                 AND organisation_id = $2 AND valid_from < $3 AND valid_to > $4",
            )
            .bind(&p)
            .bind(&org)
            .bind(valid_to)
            .bind(valid_from)
            .fetch_all(&mut *tx)
            .await?;
            for n in next {
                if n == from {
                    return Err(Error::rule(
                        "A2",
                        "to_person_id",
                        "this delegation would close a cycle of delegations",
                    ));
                }
                if !seen.contains(&n) {
                    seen.push(n.clone());
                    frontier.push(n);
                }
            }
        }
        let id = new_id("dlg");
        sqlx::query(
            "INSERT INTO delegations (id, organisation_id, from_person_id, to_person_id, mode, \
             decision_ref, valid_from, valid_to, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&org)
        .bind(&from)
        .bind(&to)
        .bind(mode)
        .bind(&decision)
        .bind(valid_from)
        .bind(valid_to)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Checked one by one after the delegation row: an unknown type rolls
        // the whole delegation back.
        let mut docs = Vec::new();
        for d in &req.document_types {
            let d = need("document_types", d)?;
            let class = doc_classification(&mut tx, "document_types", &d).await?;
            if class != "none" {
                return Err(Error::rule_invalid(
                    "A7",
                    "document_types",
                    format!("{d} is classified ({class}): it is never signed"),
                ));
            }
            sqlx::query(
                "INSERT INTO delegation_document_types (delegation_id, document_type) \
                 VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(&d)
            .execute(&mut *tx)
            .await?;
            docs.push(d);
        }
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "delegation.created",
            entity_id: &id,
            change: json!({"organisation_id": org, "from_person_id": from, "to_person_id": to,
                "mode": mode, "document_types": docs, "decision_ref": decision,
                "valid_from": valid_from, "valid_to": valid_to}),
        };
        self.db.commit(tx, event).await?;
        Ok(id)
    }

    /// Ends an appointment: from `valid_to` the title no longer gives authority (A3). An end
    /// already set can be brought forward by a later decision, never pushed back.
    pub async fn end_appointment(&self, req: &pb::EndAppointmentRequest, now: i64) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        let id = need("appointment_id", &req.appointment_id)?;
        let end = ts_req("valid_to", &req.valid_to)?;
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::field(
                "decision_ref",
                "required: the decision ending the appointment",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT valid_from, valid_to FROM appointments WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("appointment", "appointment_id", id.clone()))?;
        let from: i64 = col(&row, "valid_from")?;
        let current: Option<i64> = col(&row, "valid_to")?;
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
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "appointment.ended",
            entity_id: &id,
            change: json!({"valid_to": end, "decision_ref": decision,
                "previous_valid_to": current}),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    /// Revokes a delegation from `effective_at` by decision (A2): from then it no longer
    /// allows KT./TL./TUQ. The delegation's end is brought forward to that time, so the
    /// period it was in force stays on record.
    pub async fn revoke_delegation(
        &self,
        req: &pb::RevokeDelegationRequest,
        now: i64,
    ) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        let id = need("delegation_id", &req.delegation_id)?;
        let decision = req.decision_ref.trim().to_owned();
        if decision.is_empty() {
            return Err(Error::rule_invalid(
                "A2",
                "decision_ref",
                "a delegation is revoked by a decision of the competent person",
            ));
        }
        let at = ts("effective_at", &req.effective_at)?.unwrap_or(now);
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT valid_from, valid_to FROM delegations WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("delegation", "delegation_id", id.clone()))?;
        let from: i64 = col(&row, "valid_from")?;
        let to: i64 = col(&row, "valid_to")?;
        if at >= to {
            return Err(Error::rule(
                "A2",
                "effective_at",
                format!(
                    "the delegation already ends at {}, before {}; there is nothing to revoke",
                    show(to),
                    show(at)
                ),
            ));
        }
        if at <= from {
            return Err(Error::field(
                "effective_at",
                format!(
                    "{} is not after the delegation's start ({}); revoke it from a time in its period",
                    show(at),
                    show(from)
                ),
            ));
        }
        sqlx::query("UPDATE delegations SET valid_to = $1 WHERE id = $2")
            .bind(at)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "delegation.revoked",
            entity_id: &id,
            change: json!({"effective_at": at, "decision_ref": decision,
                "previous_valid_to": to}),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    /// Changes an organisation's name, mail domain (I1), managing agency or parent; neither
    /// hierarchy may get a cycle (I6). Fields left out are unchanged.
    pub async fn update_organisation(
        &self,
        req: &pb::UpdateOrganisationRequest,
        now: i64,
    ) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        let org = need("organisation_id", &req.organisation_id)?;
        let name = req.name.as_deref().map(|n| need("name", n)).transpose()?;
        let domain = req.mail_domain.as_deref().map(mail_domain).transpose()?;
        // "" clears (manages itself, top-level body).
        let optional_id = |v: &Option<String>| {
            v.as_deref()
                .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
        };
        let managing = optional_id(&req.managing_agency_id);
        let parent = optional_id(&req.parent_id);
        if name.is_none() && domain.is_none() && managing.is_none() && parent.is_none() {
            return Err(Error::field(
                "organisation_id",
                "nothing to change: give name, mail_domain, managing_agency_id or parent_id",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "SELECT name, mail_domain, managing_agency_id, parent_id FROM organisations \
             WHERE id = $1",
        )
        .bind(&org)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("organisation", "organisation_id", org.clone()))?;
        let old_name: String = col(&row, "name")?;
        let old_domain: String = col(&row, "mail_domain")?;
        let old_managing: Option<String> = col(&row, "managing_agency_id")?;
        let old_parent: Option<String> = col(&row, "parent_id")?;
        for (h, new) in [
            (Hierarchy::ManagingAgency, &managing),
            (Hierarchy::Parent, &parent),
        ] {
            let Some(Some(above)) = new else { continue };
            let field = h.field();
            if *above == org {
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
            if let Some(chain) = chain_to(&mut tx, h, above, &org).await? {
                return Err(Error::rule(
                    "I6",
                    field,
                    format!(
                        "the {} hierarchy would have a cycle: {} -> {old_name}",
                        match h {
                            Hierarchy::ManagingAgency => "managing-agency",
                            Hierarchy::Parent => "parent",
                        },
                        chain.join(" -> ")
                    ),
                ));
            }
        }
        let new_name = name.clone().unwrap_or_else(|| old_name.clone());
        sqlx::query(
            "UPDATE organisations SET name = $1, search_key = $2, mail_domain = $3, \
             managing_agency_id = $4, parent_id = $5 WHERE id = $6",
        )
        .bind(&new_name)
        .bind(search_key(&new_name))
        .bind(domain.as_deref().unwrap_or(&old_domain))
        .bind(managing.clone().unwrap_or_else(|| old_managing.clone()))
        .bind(parent.clone().unwrap_or_else(|| old_parent.clone()))
        .bind(&org)
        .execute(&mut *tx)
        .await?;
        // Only the fields changed, with their previous values; null clears.
        let mut set = serde_json::Map::new();
        let mut previous = serde_json::Map::new();
        if let Some(n) = &name {
            set.insert("name".into(), json!(n));
            previous.insert("name".into(), json!(old_name));
        }
        if let Some(d) = &domain {
            set.insert("mail_domain".into(), json!(d));
            previous.insert("mail_domain".into(), json!(old_domain));
        }
        if let Some(m) = &managing {
            set.insert("managing_agency_id".into(), json!(m));
            previous.insert("managing_agency_id".into(), json!(old_managing));
        }
        if let Some(p) = &parent {
            set.insert("parent_id".into(), json!(p));
            previous.insert("parent_id".into(), json!(old_parent));
        }
        set.insert("previous".into(), serde_json::Value::Object(previous));
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "organisation.updated",
            entity_id: &org,
            change: serde_json::Value::Object(set),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    /// Changes a person's name, mail address (checked as on creation; I1 applies when a
    /// certificate is issued) or end of service (I2). Fields left out are unchanged.
    pub async fn update_person(&self, req: &pb::UpdatePersonRequest, now: i64) -> Result<()> {
        let (actor, reason) = change(&req.change)?;
        let person = need("person_id", &req.person_id)?;
        let name = req
            .full_name
            .as_deref()
            .map(|n| need("full_name", n))
            .transpose()?;
        let email = req.email.as_deref().map(mail_address).transpose()?;
        let service_end = ts("service_end", &req.service_end)?;
        if service_end.is_some() && req.clear_service_end {
            return Err(Error::field(
                "clear_service_end",
                "give service_end or clear_service_end, not both",
            ));
        }
        let new_end = match (service_end, req.clear_service_end) {
            (Some(t), _) => Some(Some(t)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        if name.is_none() && email.is_none() && new_end.is_none() {
            return Err(Error::field(
                "person_id",
                "nothing to change: give full_name, email, service_end or clear_service_end",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT full_name, email, service_end FROM people WHERE id = $1")
            .bind(&person)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("person", "person_id", person.clone()))?;
        let old_name: String = col(&row, "full_name")?;
        let old_email: String = col(&row, "email")?;
        let old_end: Option<i64> = col(&row, "service_end")?;
        let full_name = name.clone().unwrap_or_else(|| old_name.clone());
        let address = email.clone().unwrap_or_else(|| old_email.clone());
        sqlx::query(
            "UPDATE people SET full_name = $1, search_key = $2, email = $3, service_end = $4 \
             WHERE id = $5",
        )
        .bind(&full_name)
        .bind(search_key(&full_name))
        .bind(&address)
        .bind(new_end.unwrap_or(old_end))
        .bind(&person)
        .execute(&mut *tx)
        .await
        .map_err(dup("person", "email", &address))?;
        let mut set = serde_json::Map::new();
        let mut previous = serde_json::Map::new();
        if let Some(n) = &name {
            set.insert("full_name".into(), json!(n));
            previous.insert("full_name".into(), json!(old_name));
        }
        if let Some(e) = &email {
            set.insert("email".into(), json!(e));
            previous.insert("email".into(), json!(old_email));
        }
        if let Some(end) = new_end {
            set.insert("service_end".into(), json!(end));
            previous.insert("service_end".into(), json!(old_end));
        }
        set.insert("previous".into(), serde_json::Value::Object(previous));
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "person.updated",
            entity_id: &person,
            change: serde_json::Value::Object(set),
        };
        self.db.commit(tx, event).await?;
        Ok(())
    }

    // ----- decisions --------------------------------------------------------------------------

    /// `Authorize`: the authority rules (authority/rules.rs) over the index's facts, or the
    /// database's when the index is not loaded.
    pub async fn authorize(&self, req: &pb::AuthorizeRequest, now: i64) -> Result<Decision> {
        let q = AuthorizeQuery::parse(req, now)?;
        match &self.index {
            Some(index) => index.authorize(&q).await,
            None => rules::authorize(&SqlFacts::new(&self.db), &q).await,
        }
    }

    /// `CheckAuthority`, for the verifier: as [`Store::authorize`].
    pub async fn check_authority(
        &self,
        req: &pb::CheckAuthorityRequest,
        now: i64,
    ) -> Result<AuthorityCheck> {
        let q = CheckQuery::parse(req, now)?;
        match &self.index {
            Some(index) => index.check_authority(&q).await,
            None => rules::check_authority(&SqlFacts::new(&self.db), &q).await,
        }
    }

    // ----- lookups ----------------------------------------------------------------------------

    /// A certificate by fingerprint, with its status now and its history.
    pub async fn get_certificate_by_fingerprint(
        &self,
        fp: &str,
        now: i64,
    ) -> Result<pb::Certificate> {
        let fp = cert::normalise_fingerprint(fp, "fingerprint")?;
        let mut conn = self.db.pool().acquire().await?;
        let c = cert_by_fingerprint(&mut conn, "fingerprint", &fp).await?;
        to_proto(&mut conn, c, now).await
    }

    /// A certificate by issuer (RFC 4514, as the registry reports it) and serial (hex).
    pub async fn get_certificate_by_issuer_serial(
        &self,
        issuer: &str,
        serial: &str,
        now: i64,
    ) -> Result<pb::Certificate> {
        let issuer = need("issuer_serial.issuer", issuer)?;
        let serial = cert::normalise_serial(serial, "issuer_serial.serial")?;
        let mut conn = self.db.pool().acquire().await?;
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE issuer = $1 AND serial = $2");
        let row = sqlx::query(&sql)
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
        let c = cert_row(&row)?;
        to_proto(&mut conn, c, now).await
    }

    /// Certificates not revoked whose validity ends within `days` of `at`
    /// (the I3 renewal window), soonest first.
    /// Active or suspended certificates whose validity ends within `days` of `at`, counted
    /// by kind (`personal`, `organisation`): the I3 renewal window, for the metrics gauge.
    pub async fn count_expiring(&self, days: u32, at: i64) -> Result<Vec<(String, i64)>> {
        let until = at.saturating_add(i64::from(days) * policy::DAY);
        let mut conn = self.db.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM certificates WHERE not_after >= $1 AND not_after <= $2 \
             AND status <> 'revoked' GROUP BY kind",
        )
        .bind(at)
        .bind(until)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((
                sqlx::Row::try_get::<String, _>(r, "kind")?,
                sqlx::Row::try_get::<i64, _>(r, "n")?,
            ));
        }
        Ok(out)
    }

    pub async fn expiring(&self, days: u32, at: i64) -> Result<Vec<pb::Certificate>> {
        let until = at.saturating_add(i64::from(days) * policy::DAY);
        let mut conn = self.db.pool().acquire().await?;
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE not_after >= $1 AND not_after <= $2 \
             AND status <> 'revoked' ORDER BY not_after LIMIT 10000"
        );
        let rows = sqlx::query(&sql)
            .bind(at)
            .bind(until)
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let c = cert_row(r)?;
            out.push(to_proto(&mut conn, c, at).await?);
        }
        Ok(out)
    }

    /// Gives rows written before migration 0002 their search key (made in Rust: SQLite's
    /// LOWER() folds ASCII only).
    pub async fn backfill_search_keys(&self) -> Result<()> {
        for (table, name_col) in [("people", "full_name"), ("organisations", "name")] {
            let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT id, {name_col} FROM {table} WHERE search_key IS NULL"
            ))
            .fetch_all(self.db.pool())
            .await?;
            for (id, name) in rows {
                sqlx::query(&format!("UPDATE {table} SET search_key = $1 WHERE id = $2"))
                    .bind(search_key(&name))
                    .bind(&id)
                    .execute(self.db.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// People whose name contains `name` (case- and accent-insensitive), optionally only
    /// those working in one organisation; whole-name matches first.
    pub async fn find_people(&self, req: &pb::FindPeopleRequest) -> Result<Vec<pb::PersonMatch>> {
        let name = need("name", &req.name)?;
        let pattern = like_pattern(&search_key(&name));
        let org = req.organisation_id.trim();
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, full_name, email, organisation_id FROM people \
             WHERE search_key LIKE $1 ESCAPE '!' AND ($2 = '' OR organisation_id = $2) \
             ORDER BY full_name, id LIMIT 1000",
        )
        .bind(&pattern)
        .bind(org)
        .fetch_all(self.db.pool())
        .await?;
        let mut out: Vec<pb::PersonMatch> = rows
            .into_iter()
            .map(|(id, full_name, email, organisation_id)| pb::PersonMatch {
                exact: same_name(&full_name, &name),
                id,
                full_name,
                email,
                organisation_id,
            })
            .collect();
        out.sort_by_key(|m| !m.exact);
        out.truncate(FIND_LIMIT);
        Ok(out)
    }

    /// Organisations whose name contains `name` (case- and accent-insensitive); whole-name
    /// matches first.
    pub async fn find_organisations(
        &self,
        req: &pb::FindOrganisationsRequest,
    ) -> Result<Vec<pb::OrganisationMatch>> {
        let name = need("name", &req.name)?;
        let pattern = like_pattern(&search_key(&name));
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, name, managing_agency_id FROM organisations \
             WHERE search_key LIKE $1 ESCAPE '!' ORDER BY name, id LIMIT 1000",
        )
        .bind(&pattern)
        .fetch_all(self.db.pool())
        .await?;
        let mut out: Vec<pb::OrganisationMatch> = rows
            .into_iter()
            .map(|(id, org_name, managing)| pb::OrganisationMatch {
                exact: same_name(&org_name, &name),
                id,
                name: org_name,
                managing_agency_id: managing.unwrap_or_default(),
            })
            .collect();
        out.sort_by_key(|m| !m.exact);
        out.truncate(FIND_LIMIT);
        Ok(out)
    }

    /// R2: certificates issued, renewed (by notBefore), revoked and suspended (by the time
    /// the change takes effect), signatures made (as the signers report them, by Vietnam's
    /// day) and documents sent, received and refused (by the exchange time, W5) per managing
    /// agency (I6; an organisation without one manages itself) per calendar period in
    /// [from, to). The flag says whether any signer has reported usage at all, so a report
    /// of zero signatures from a deployment whose signers never report is not read as zero.
    pub async fn report(&self, req: &pb::ReportRequest) -> Result<(Vec<pb::ReportRow>, bool)> {
        let from = ts_req("from", &req.from)?;
        let to = ts_req("to", &req.to)?;
        if to <= from {
            return Err(Error::field("to", "must be after from"));
        }
        let months = match pb::Granularity::try_from(req.granularity) {
            Ok(pb::Granularity::Quarter) => 3,
            Ok(pb::Granularity::HalfYear) => 6,
            Ok(pb::Granularity::Year) => 12,
            _ => {
                return Err(Error::field(
                    "granularity",
                    "required: HALF_YEAR, YEAR or QUARTER",
                ));
            }
        };
        let pool = self.db.pool();
        let names: std::collections::HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT id, name FROM organisations")
                .fetch_all(pool)
                .await?
                .into_iter()
                .collect();
        // (period start, agency) -> [issued, renewed, revoked, suspended, signatures, sent,
        // received, refused]
        let mut counts = std::collections::BTreeMap::<(i64, String), [i64; 8]>::new();
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
            let slot = usize::from(renewal_of.is_some());
            counts
                .entry((policy::period_start(at, months), agency))
                .or_default()[slot] += 1;
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
            let slot = if status == "revoked" { 2 } else { 3 };
            counts
                .entry((policy::period_start(at, months), agency))
                .or_default()[slot] += 1;
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
            counts
                .entry((policy::period_start(day, months), agency))
                .or_default()[4] += count;
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
            let slot = match (direction.as_str(), refused != 0) {
                ("outgoing", _) => 5,
                (_, false) => 6,
                (_, true) => 7,
            };
            counts
                .entry((policy::period_start(at, months), agency))
                .or_default()[slot] += 1;
        }
        let batches: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_batches")
            .fetch_one(pool)
            .await?;
        let mut rows: Vec<pb::ReportRow> = counts
            .into_iter()
            .map(
                |(
                    (start, agency),
                    [
                        issued,
                        renewed,
                        revoked,
                        suspended,
                        signatures,
                        sent,
                        received,
                        refused,
                    ],
                )| pb::ReportRow {
                    period: policy::period_label(start, months),
                    period_start: Some(prost_types::Timestamp {
                        seconds: start,
                        nanos: 0,
                    }),
                    period_end: Some(prost_types::Timestamp {
                        seconds: policy::period_end(start, months),
                        nanos: 0,
                    }),
                    managing_agency_name: names.get(&agency).cloned().unwrap_or_default(),
                    managing_agency_id: agency,
                    issued,
                    renewed,
                    revoked,
                    suspended,
                    signatures,
                    sent,
                    received,
                    refused,
                },
            )
            .collect();
        rows.sort_by(|a, b| {
            (
                a.period_start.map(|t| t.seconds),
                &a.managing_agency_name,
                &a.managing_agency_id,
            )
                .cmp(&(
                    b.period_start.map(|t| t.seconds),
                    &b.managing_agency_name,
                    &b.managing_agency_id,
                ))
        });
        Ok((rows, batches > 0))
    }

    /// I5: files a request to unlock the key device of a certificate; only the managing
    /// agency of the certificate's organisation (I6; an organisation without one manages
    /// itself) files it, and only while no other request for the certificate is open. Due
    /// by the end of the next working day (weekends and configured holidays skipped).
    pub async fn request_unlock(
        &self,
        req: &pb::RequestUnlockRequest,
        now: i64,
    ) -> Result<pb::UnlockRequest> {
        let (actor, reason) = change(&req.change)?;
        let fp = cert::normalise_fingerprint(&req.fingerprint, "fingerprint")?;
        let by = need("requested_by", &req.requested_by)?;
        let why = need("reason", &req.reason)?;
        let mut tx = self.db.begin_write().await?;
        let c = cert_by_fingerprint(&mut tx, "fingerprint", &fp).await?;
        must_exist(&mut tx, ORG_EXISTS, "organisation", "requested_by", &by).await?;
        let agency: String = sqlx::query_scalar(
            "SELECT COALESCE(managing_agency_id, id) FROM organisations WHERE id = $1",
        )
        .bind(&c.organisation_id)
        .fetch_one(&mut *tx)
        .await?;
        if agency != by {
            return Err(Error::rule(
                "I5",
                "requested_by",
                "an unlock is requested by the managing agency of the certificate's organisation",
            ));
        }
        // I5: one open request per certificate (checked under the writers' lock).
        let open: Option<(String, i64)> = sqlx::query_as(
            "SELECT id, due_at FROM unlock_requests WHERE certificate_id = $1 \
             AND status = 'pending' ORDER BY requested_at LIMIT 1",
        )
        .bind(&c.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((open_id, open_due)) = open {
            return Err(Error::rule(
                "I5",
                "fingerprint",
                format!(
                    "unlock request {open_id} for this certificate is still open (due {}); \
                     it is done or refused before another is filed",
                    show(open_due)
                ),
            ));
        }
        // I5: one working day; weekends and the configured holidays are not working days.
        let holidays = match policy::vietnam_date(now) {
            Some(today) => holidays_from(&mut tx, today).await?,
            None => std::collections::BTreeSet::new(),
        };
        let id = new_id("unl");
        let due = policy::unlock_due_with_holidays(now, &holidays);
        sqlx::query(
            "INSERT INTO unlock_requests (id, certificate_id, requested_by, reason, requested_at, \
             due_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
        )
        .bind(&id)
        .bind(&c.id)
        .bind(&by)
        .bind(&why)
        .bind(now)
        .bind(due)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "unlock.requested",
            entity_id: &id,
            change: json!({"fingerprint": fp, "requested_by": by, "reason": why,
                "requested_at": now, "due_at": due}),
        };
        self.db.commit(tx, event).await?;
        self.unlock(&id).await
    }

    /// I5: records that an unlock was done, or refused in writing with the reason.
    pub async fn resolve_unlock(
        &self,
        req: &pb::ResolveUnlockRequest,
        now: i64,
    ) -> Result<pb::UnlockRequest> {
        let (actor, reason) = change(&req.change)?;
        let id = need("id", &req.id)?;
        let outcome = match pb::UnlockStatus::try_from(req.outcome) {
            Ok(pb::UnlockStatus::Done) => "done",
            Ok(pb::UnlockStatus::Refused) => "refused",
            _ => return Err(Error::field("outcome", "required: DONE or REFUSED")),
        };
        let written = req.reason.trim().to_owned();
        if outcome == "refused" && written.is_empty() {
            return Err(Error::rule_invalid(
                "I5",
                "reason",
                "a refusal is made in writing with the reason",
            ));
        }
        let mut tx = self.db.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM unlock_requests WHERE id = $1")
                .bind(&id)
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
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "unlock.resolved",
            entity_id: &id,
            change: json!({"outcome": outcome, "reason": Some(&written).filter(|w| !w.is_empty()),
                "resolved_at": now}),
        };
        self.db.commit(tx, event).await?;
        self.unlock(&id).await
    }

    /// I5: replaces the public holidays of a year (Vietnam's dates, `YYYY-MM-DD`); the
    /// unlock deadline skips them. Answers the year's holidays, sorted.
    pub async fn set_holidays(
        &self,
        req: &pb::SetHolidaysRequest,
        now: i64,
    ) -> Result<Vec<String>> {
        let (actor, reason) = change(&req.change)?;
        let (first, last) = holiday_year("year", req.year)?;
        let mut days = std::collections::BTreeSet::new();
        for d in &req.dates {
            let d = d.trim();
            let date = policy::parse_date(d).ok_or_else(|| {
                Error::field("dates", format!("{d:?} is not a date written YYYY-MM-DD"))
            })?;
            if date.year() != req.year {
                return Err(Error::field("dates", format!("{d} is not in {}", req.year)));
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
        let year = req.year.to_string();
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "holidays.set",
            entity_id: &year,
            change: json!({"year": req.year, "dates": dates, "previous": previous}),
        };
        self.db.commit(tx, event).await?;
        Ok(dates)
    }

    /// I5: the public holidays of a year (0: every year), sorted.
    pub async fn list_holidays(&self, req: &pb::ListHolidaysRequest) -> Result<Vec<String>> {
        let (first, last) = if req.year == 0 {
            ("0000-01-01".to_owned(), "9999-12-31".to_owned())
        } else {
            holiday_year("year", req.year)?
        };
        Ok(sqlx::query_scalar(
            "SELECT day FROM holidays WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(first)
        .bind(last)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// I5: pending unlock requests past their due time at `now`, oldest due first.
    pub async fn overdue_unlocks(
        &self,
        req: &pb::ListOverdueUnlocksRequest,
        now: i64,
    ) -> Result<Vec<pb::UnlockRequest>> {
        let at = ts("now", &req.now)?.unwrap_or(now);
        let rows = sqlx::query(&format!(
            "{UNLOCK_SELECT} WHERE u.status = 'pending' AND u.due_at < $1 \
             ORDER BY u.due_at, u.id LIMIT 1000"
        ))
        .bind(at)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(unlock_row).collect()
    }

    async fn unlock(&self, id: &str) -> Result<pb::UnlockRequest> {
        let row = sqlx::query(&format!("{UNLOCK_SELECT} WHERE u.id = $1"))
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        unlock_row(&row)
    }

    /// Events after `after_seq`, oldest first.
    /// R2: adds a signer's batch of signature counts. The batch id names the audit records
    /// it covers, so a batch sent again (the answer was lost, the signer restarted before
    /// moving its cursor) is reported as a duplicate and counted once. Every entry is
    /// checked before anything is written: an unknown certificate or organisation, a
    /// profile that is not one of the legal forms, a bad day or count refuses the batch.
    pub async fn record_usage(
        &self,
        req: &pb::RecordUsageRequest,
        now: i64,
    ) -> Result<pb::RecordUsageResponse> {
        let (actor, reason) = change(&req.change)?;
        let batch_id = need("batch_id", &req.batch_id)?;
        if batch_id.len() > 200 {
            return Err(Error::field("batch_id", "longer than 200 characters"));
        }
        if req.entries.is_empty() {
            return Err(Error::field("entries", "required: at least one entry"));
        }
        if req.entries.len() > MAX_USAGE_ENTRIES {
            return Err(Error::field(
                "entries",
                format!("at most {MAX_USAGE_ENTRIES} entries in one batch"),
            ));
        }
        // (organisation, fingerprint, profile, day) -> count: entries repeating a key add up.
        let mut counts = std::collections::BTreeMap::<(String, String, String, i64), i64>::new();
        let mut total: i64 = 0;
        for e in &req.entries {
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
                .bind(&batch_id)
                .fetch_one(&mut *tx)
                .await?;
        if seen > 0 {
            return Ok(pb::RecordUsageResponse {
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
        .bind(&batch_id)
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
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason,
            kind: "usage.recorded",
            entity_id: &batch_id,
            change: json!({"batch_id": batch_id, "signatures": total, "entries": entries}),
        };
        self.db.commit(tx, event).await?;
        Ok(pb::RecordUsageResponse {
            duplicate: false,
            signatures: total,
        })
    }

    /// W1, W3: enters a document in an organisation's outgoing or incoming register. The
    /// number is the next of the organisation's register for that direction and year (in
    /// Vietnam's time), given under the writers' lock, so two clerks never get the same
    /// number. A refused incoming document (W3) is entered with its reason and no number.
    pub async fn register_document(
        &self,
        req: &pb::RegisterDocumentRequest,
        now: i64,
    ) -> Result<pb::RegisterEntry> {
        let (actor, reason_of_change) = change(&req.change)?;
        let organisation = need("organisation_id", &req.organisation_id)?;
        let direction = match pb::Direction::try_from(req.direction) {
            Ok(pb::Direction::Outgoing) => "outgoing",
            Ok(pb::Direction::Incoming) => "incoming",
            _ => return Err(Error::field("direction", "required: OUTGOING or INCOMING")),
        };
        let sha256 = req.sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::field(
                "sha256",
                "must be 64 hex digits (SHA-256 of the stored original, D7)",
            ));
        }
        let document_type = need("document_type", &req.document_type)?;
        let number_and_symbol = req.number_and_symbol.trim().to_owned();
        if direction == "outgoing" && number_and_symbol.is_empty() {
            return Err(Error::field(
                "number_and_symbol",
                "required for an outgoing document (W1)",
            ));
        }
        if req.refused && direction != "incoming" {
            return Err(Error::field(
                "refused",
                "only an incoming document is refused (W3)",
            ));
        }
        let refusal = req.reason.trim().to_owned();
        if req.refused && refusal.is_empty() {
            return Err(Error::field(
                "reason",
                "required when refused: it goes back to the sender (W3)",
            ));
        }
        let at = ts("at", &req.at)?.unwrap_or(now);
        let year = policy::vietnam_date(at)
            .map(|d| i64::from(d.year()))
            .ok_or_else(|| Error::field("at", "impossible date"))?;
        let mut tx = self.db.begin_write().await?;
        must_exist(
            &mut tx,
            ORG_EXISTS,
            "organisation",
            "organisation_id",
            &organisation,
        )
        .await?;
        let number: i64 = if req.refused {
            0
        } else {
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM document_register \
                 WHERE organisation_id = $1 AND direction = $2 AND year = $3",
            )
            .bind(&organisation)
            .bind(direction)
            .bind(year)
            .fetch_one(&mut *tx)
            .await?
        };
        let id = new_id("doc");
        sqlx::query(
            "INSERT INTO document_register (id, organisation_id, direction, year, number, \
             document_type, number_and_symbol, sha256, counterparty, refused, reason, at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&id)
        .bind(&organisation)
        .bind(direction)
        .bind(year)
        .bind(number)
        .bind(&document_type)
        .bind(&number_and_symbol)
        .bind(&sha256)
        .bind(req.counterparty.trim())
        .bind(i64::from(req.refused))
        .bind(&refusal)
        .bind(at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            at: now,
            actor: &actor,
            reason: &reason_of_change,
            kind: "document.registered",
            entity_id: &id,
            change: json!({
                "organisation_id": organisation, "direction": direction, "year": year,
                "number": number, "document_type": document_type,
                "number_and_symbol": number_and_symbol, "sha256": sha256,
                "counterparty": req.counterparty.trim(), "refused": req.refused,
                "reason": refusal, "at": at,
            }),
        };
        self.db.commit(tx, event).await?;
        Ok(pb::RegisterEntry {
            id,
            organisation_id: organisation,
            direction: req.direction,
            year: i32::try_from(year).unwrap_or_default(),
            number,
            document_type,
            number_and_symbol,
            sha256,
            counterparty: req.counterparty.trim().to_owned(),
            refused: req.refused,
            reason: refusal,
            at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
        })
    }

    /// The register entries of an organisation, by year, direction and number.
    pub async fn list_register(
        &self,
        req: &pb::ListRegisterRequest,
    ) -> Result<Vec<pb::RegisterEntry>> {
        let organisation = need("organisation_id", &req.organisation_id)?;
        let direction = match pb::Direction::try_from(req.direction) {
            Ok(pb::Direction::Outgoing) => "outgoing",
            Ok(pb::Direction::Incoming) => "incoming",
            _ => "",
        };
        let sha256 = req.sha256.trim().to_ascii_lowercase();
        let rows = sqlx::query(
            "SELECT id, organisation_id, direction, year, number, document_type, \
             number_and_symbol, sha256, counterparty, refused, reason, at \
             FROM document_register WHERE organisation_id = $1 \
             AND ($2 = '' OR direction = $2) AND ($3 = 0 OR year = $3) \
             AND ($4 = '' OR sha256 = $4) \
             ORDER BY year, direction, number, at LIMIT 10000",
        )
        .bind(&organisation)
        .bind(direction)
        .bind(i64::from(req.year))
        .bind(&sha256)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let direction: String = col(r, "direction")?;
                let year: i64 = col(r, "year")?;
                let refused: i64 = col(r, "refused")?;
                Ok(pb::RegisterEntry {
                    id: col(r, "id")?,
                    organisation_id: col(r, "organisation_id")?,
                    direction: if direction == "outgoing" {
                        pb::Direction::Outgoing as i32
                    } else {
                        pb::Direction::Incoming as i32
                    },
                    year: i32::try_from(year).unwrap_or_default(),
                    number: col(r, "number")?,
                    document_type: col(r, "document_type")?,
                    number_and_symbol: col(r, "number_and_symbol")?,
                    sha256: col(r, "sha256")?,
                    counterparty: col(r, "counterparty")?,
                    refused: refused != 0,
                    reason: col(r, "reason")?,
                    at: Some(prost_types::Timestamp {
                        seconds: col(r, "at")?,
                        nanos: 0,
                    }),
                })
            })
            .collect()
    }

    pub async fn events(&self, after_seq: i64, limit: u32) -> Result<Vec<pb::Event>> {
        let limit = i64::from(if limit == 0 { 100 } else { limit.min(1000) });
        let rows = sqlx::query(
            "SELECT seq, at, actor, reason, kind, entity_id, change_json FROM events \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(pb::Event {
                    seq: col(r, "seq")?,
                    at: Some(prost_types::Timestamp {
                        seconds: col(r, "at")?,
                        nanos: 0,
                    }),
                    actor: col(r, "actor")?,
                    reason: col(r, "reason")?,
                    kind: col(r, "kind")?,
                    entity_id: col(r, "entity_id")?,
                    change_json: col(r, "change_json")?,
                })
            })
            .collect()
    }
}

async fn to_proto(conn: &mut AnyConnection, c: CertRow, now: i64) -> Result<pb::Certificate> {
    let rows = sqlx::query(
        "SELECT status, reason, effective_at FROM certificate_status_history \
         WHERE certificate_id = $1 ORDER BY effective_at, ordinal",
    )
    .bind(&c.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut history = Vec::with_capacity(rows.len());
    for r in &rows {
        let reason: Option<String> = col(r, "reason")?;
        history.push(pb::StatusChange {
            status: status_value(&col::<String>(r, "status")?) as i32,
            reason: reason
                .and_then(|s| pb::RevocationReason::from_str_name(&s))
                .unwrap_or(pb::RevocationReason::Unspecified) as i32,
            effective_at: Some(prost_types::Timestamp {
                seconds: col(r, "effective_at")?,
                nanos: 0,
            }),
        });
    }
    let status_now = status_at(conn, &c.id, now)
        .await?
        .map(|(s, _)| status_value(&s))
        .unwrap_or(pb::CertificateStatus::Unspecified);
    let renewal_of = match &c.renewal_of {
        Some(id) => sqlx::query_scalar("SELECT fingerprint FROM certificates WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(pb::Certificate {
        id: c.id,
        fingerprint: c.fingerprint,
        serial: c.serial,
        issuer: c.issuer,
        subject: c.subject,
        kind: kind_value(&c.kind) as i32,
        person_id: c.person_id.unwrap_or_default(),
        organisation_id: c.organisation_id,
        not_before: Some(prost_types::Timestamp {
            seconds: c.not_before,
            nanos: 0,
        }),
        not_after: Some(prost_types::Timestamp {
            seconds: c.not_after,
            nanos: 0,
        }),
        status: status_now as i32,
        history,
        renewal_count: c.renewal_count,
        renewal_of,
    })
}
