//! The database: one pool through sqlx's Any driver (runtime queries, so no
//! database is needed to build), the migrations, and the write transaction.
//!
//! Writers are serialised, on purpose: every change checks rules against the
//! state (renewed only once I3, one current custodian A5, no delegation cycle
//! A2) and takes the next event sequence number, and a single writer at a time
//! makes those check-then-write steps race-free on both backends without
//! SERIALIZABLE retries. Registry writes are rare (people and certificates
//! change by the day); reads (`Authorize`) never take the lock.
//! - SQLite: `BEGIN IMMEDIATE` takes the file's write lock at the start, so
//!   two writers never deadlock upgrading a read lock; WAL lets readers go on.
//! - PostgreSQL: a transaction-scoped advisory lock, released at commit or
//!   rollback.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use prometheus::HistogramVec;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::error::{Error, Result};

/// Which database a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:PATH`: a file, WAL mode.
    Sqlite,
    /// `postgres://` or `postgresql://`.
    Postgres,
}

impl Backend {
    /// The backend of a database URL, if it is one we serve.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// The one schema for both backends, embedded so the binary carries it.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "search_keys",
        include_str!("../migrations/0002_search_keys.sql"),
    ),
    (
        3,
        "unlock_requests",
        include_str!("../migrations/0003_unlock_requests.sql"),
    ),
    (
        4,
        "holidays_and_append_only",
        include_str!("../migrations/0004_holidays_and_append_only.sql"),
    ),
    (
        5,
        "usage_and_registers",
        include_str!("../migrations/0005_usage_and_registers.sql"),
    ),
    (
        6,
        "certificate_names",
        include_str!("../migrations/0006_certificate_names.sql"),
    ),
    (7, "roles", include_str!("../migrations/0007_roles.sql")),
    (
        8,
        "audit_anchors",
        include_str!("../migrations/0008_audit_anchors.sql"),
    ),
    (
        9,
        "scanned_issue",
        include_str!("../migrations/0009_scanned_issue.sql"),
    ),
    (
        10,
        "organisation_codes",
        include_str!("../migrations/0010_organisation_codes.sql"),
    ),
    (
        11,
        "document_status",
        include_str!("../migrations/0011_document_status.sql"),
    ),
];

/// The marker of a backend section in a migration: `-- backend: sqlite`, `-- backend:
/// postgres`, and `-- backend: all` back to lines for both.
const SECTION_MARKER: &str = "-- backend:";

/// The text of a migration for one backend. Lines after `-- backend: sqlite` (or
/// `postgres`) up to the next marker are for that backend only; the rest is for both. A
/// migration without markers is returned as it is, byte for byte, so the checksums sqlx
/// recorded for the migrations already applied stay valid; one with markers is
/// checksummed as its backend's text (a database has one backend for its whole life).
pub fn migration_for(sql: &str, backend: Backend) -> std::result::Result<Cow<'_, str>, String> {
    if !sql
        .lines()
        .any(|l| l.trim_start().starts_with(SECTION_MARKER))
    {
        return Ok(Cow::Borrowed(sql));
    }
    let mut out = String::with_capacity(sql.len());
    let mut keep = true;
    for line in sql.lines() {
        if let Some(name) = line.trim_start().strip_prefix(SECTION_MARKER) {
            keep = match name.trim() {
                "all" => true,
                "sqlite" => backend == Backend::Sqlite,
                "postgres" => backend == Backend::Postgres,
                other => return Err(format!("unknown backend section {other:?}")),
            };
            continue;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(Cow::Owned(out))
}

/// Every table of the schema.
pub const TABLES: &[&str] = &[
    "organisations",
    "people",
    "unlock_requests",
    "titles",
    "appointments",
    "document_types",
    "title_authorities",
    "organisation_profiles",
    "certificates",
    "certificate_status_history",
    "custodians",
    "custodian_handovers",
    "delegations",
    "delegation_document_types",
    "events",
    "holidays",
    "roles",
    "audit_logs",
    "audit_anchors",
    "document_status",
];

/// Key of the PostgreSQL advisory lock that serialises writers ("kyso" in ASCII).
const PG_WRITE_LOCK: i64 = 0x6b79_736f;

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    db_duration: HistogramVec,
    /// The sequence number of the last change committed through this pool (shared by its
    /// clones): the authorization index catches up when it is ahead (authority/index).
    last_commit: Arc<AtomicI64>,
}

/// A write transaction holding the writers' lock; dropped without
/// [`Db::commit`] it rolls back, leaving no row and no event.
pub type WriteTx = Transaction<'static, Any>;

impl Db {
    /// Connects (creating a SQLite file when absent) and runs the migrations.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
        busy_timeout: Duration,
        db_duration: HistogramVec,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            Error::Config(vec![format!(
                "database_url: {url:?} must start with sqlite: or postgres:"
            )])
        })?;
        let url = match backend {
            // Create the file on first start, as an embedded default should.
            Backend::Sqlite if !url.contains('?') && !url.contains(":memory:") => {
                format!("{url}?mode=rwc")
            }
            _ => url.to_owned(),
        };
        let busy_ms = busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Per connection: foreign keys are off by default in SQLite;
                        // WAL lets Authorize read while a writer commits.
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                            .await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let mut migrations = Vec::with_capacity(MIGRATIONS.len());
        for (v, d, sql) in MIGRATIONS {
            let sql = migration_for(sql, backend)
                .map_err(|e| Error::Config(vec![format!("migration {v} ({d}): {e}")]))?;
            migrations.push(Migration::new(
                *v,
                Cow::Borrowed(*d),
                MigrationType::Simple,
                sql,
                false,
            ));
        }
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(&pool).await?;
        rerender_certificate_names(&pool).await?;
        fill_subject_key_identifiers(&pool).await?;
        Ok(Self {
            pool,
            backend,
            db_duration,
            last_commit: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The sequence number of the last change committed through this pool (0 before any).
    pub fn last_commit(&self) -> i64 {
        self.last_commit.load(Ordering::Acquire)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction holding the writers' lock (see the module doc).
    pub async fn begin_write(&self) -> Result<WriteTx> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Appends the event of a change to the log inside its transaction, then commits both.
    pub async fn commit(&self, mut tx: WriteTx, event: Event<'_>) -> Result<i64> {
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO events (seq, at, actor, reason, kind, entity_id, change_json, \
             actor_fingerprint, actor_role, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(seq)
        .bind(event.at)
        .bind(event.actor)
        .bind(event.reason)
        .bind(event.kind)
        .bind(event.entity_id)
        .bind(event.change.to_string())
        .bind(event.actor_fingerprint)
        .bind(event.actor_role)
        .bind(event.note)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // The hook of every write: the authorization index sees it before the next decision.
        self.last_commit.fetch_max(seq, Ordering::AcqRel);
        Ok(seq)
    }

    /// Rows in one of the schema's tables (for operators' checks and the
    /// tests); the name is checked against the schema, never spliced blindly.
    pub async fn count_rows(&self, table: &str) -> Result<i64> {
        if !TABLES.contains(&table) {
            return Err(Error::field(
                "table",
                format!("{table:?} is not a registry table"),
            ));
        }
        let sql = format!("SELECT COUNT(*) FROM {table}");
        Ok(sqlx::query_scalar(&sql).fetch_one(&self.pool).await?)
    }

    /// Times a database operation into `kyso_registry_db_duration_seconds`.
    pub async fn timed<T>(&self, operation: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let out = f.await;
        self.db_duration
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
        out
    }
}

/// One entry of the event log.
#[derive(Debug)]
pub struct Event<'a> {
    /// When (unix seconds).
    pub at: i64,
    /// Who made the change: the subject of the caller's client certificate (or what a
    /// development caller or a local tool is).
    pub actor: &'a str,
    /// The caller's certificate fingerprint (empty when there is no certificate).
    pub actor_fingerprint: &'a str,
    /// The role that allowed the change.
    pub actor_role: &'a str,
    /// The request's free actor text, kept as a comment.
    pub note: &'a str,
    /// Why.
    pub reason: &'a str,
    /// What kind of change (`organisation.created`, ...).
    pub kind: &'a str,
    /// The id of the thing changed.
    pub entity_id: &'a str,
    /// The change itself.
    pub change: serde_json::Value,
}

/// A fresh opaque identifier: 128 random bits, hex, with a prefix that says
/// what it names (a person reading the event log sees `org_…`, `per_…`).
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}_{}", hex::encode(bytes))
}

/// Reads a column, mapping a decode failure to a database error.
pub fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    Ok(row.try_get::<T, _>(name)?)
}

/// Whether an error is a unique-constraint violation (a duplicate).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation(),
        _ => false,
    }
}

/// Re-renders the issuer and subject of certificates stored before migration 6 from their
/// DER, in kyso's one rendering of names (`kyso_pki::name`); rows written since are
/// checked once too. Batches keep memory bounded; a row is done once `names_rendering`
/// is 1, so a restart does not scan the table again. Not an event: the certificate is
/// the same, only the text the registry shows and looks up by changes.
async fn rerender_certificate_names(pool: &AnyPool) -> Result<()> {
    const BATCH: i64 = 500;
    let mut updated = 0u64;
    loop {
        let rows = sqlx::query(
            "SELECT id, der_hex, issuer, subject FROM certificates \
             WHERE names_rendering = 0 ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = pool.begin().await?;
        for r in &rows {
            let id: String = sqlx::Row::try_get(r, "id")?;
            let der_hex: String = sqlx::Row::try_get(r, "der_hex")?;
            let issuer: String = sqlx::Row::try_get(r, "issuer")?;
            let subject: String = sqlx::Row::try_get(r, "subject")?;
            let names =
                crate::cert::names_of_hex(&der_hex).filter(|(i, s)| *i != issuer || *s != subject);
            match names {
                Some((i, s)) => {
                    sqlx::query(
                        "UPDATE certificates SET issuer = $1, subject = $2, names_rendering = 1 \
                         WHERE id = $3",
                    )
                    .bind(&i)
                    .bind(&s)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    updated += 1;
                }
                None => {
                    sqlx::query("UPDATE certificates SET names_rendering = 1 WHERE id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
    }
    if updated > 0 {
        tracing::info!(updated, "certificate names re-rendered (RFC 4514, UTF-8)");
    }
    Ok(())
}

/// Fills the subject key identifier (migration 11) of certificates registered before it,
/// from their DER, in batches; a row whose bytes are not a certificate gets '' so it is
/// looked at once. Not an event: the certificate is the same, only an index is added.
async fn fill_subject_key_identifiers(pool: &AnyPool) -> Result<()> {
    const BATCH: i64 = 500;
    loop {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, der_hex FROM certificates WHERE subject_key_identifier IS NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = pool.begin().await?;
        for (id, der_hex) in &rows {
            let ski = crate::cert::subject_key_identifier_of_hex(der_hex).unwrap_or_default();
            sqlx::query("UPDATE certificates SET subject_key_identifier = $1 WHERE id = $2")
                .bind(&ski)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_without_sections_are_kept_byte_for_byte() {
        // The checksums of the migrations already applied must not change.
        for (v, _, sql) in &MIGRATIONS[..3] {
            for backend in [Backend::Sqlite, Backend::Postgres] {
                assert!(
                    matches!(migration_for(sql, backend), Ok(Cow::Borrowed(s)) if s == *sql),
                    "migration {v}"
                );
            }
        }
    }

    #[test]
    fn each_backend_gets_its_own_section_and_the_common_part() {
        let (_, _, sql) = MIGRATIONS[3];
        let sqlite = migration_for(sql, Backend::Sqlite).unwrap_or_default();
        let pg = migration_for(sql, Backend::Postgres).unwrap_or_default();
        for text in [&sqlite, &pg] {
            assert!(text.contains("CREATE TABLE holidays"));
            assert!(!text.contains(SECTION_MARKER));
        }
        assert!(sqlite.contains("RAISE(ABORT") && !sqlite.contains("plpgsql"));
        assert!(pg.contains("plpgsql") && !pg.contains("RAISE(ABORT"));
        assert!(migration_for("-- backend: oracle\nSELECT 1;", Backend::Sqlite).is_err());
    }
}
