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
];

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
];

/// Key of the PostgreSQL advisory lock that serialises writers ("kyso" in ASCII).
const PG_WRITE_LOCK: i64 = 0x6b79_736f;

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    db_duration: HistogramVec,
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
        let migrator = Migrator {
            migrations: Cow::Owned(
                MIGRATIONS
                    .iter()
                    .map(|(v, d, sql)| {
                        Migration::new(
                            *v,
                            Cow::Borrowed(*d),
                            MigrationType::Simple,
                            Cow::Borrowed(*sql),
                            false,
                        )
                    })
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        migrator.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            db_duration,
        })
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
            "INSERT INTO events (seq, at, actor, reason, kind, entity_id, change_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(seq)
        .bind(event.at)
        .bind(event.actor)
        .bind(event.reason)
        .bind(event.kind)
        .bind(event.entity_id)
        .bind(event.change.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
    /// Who made the change.
    pub actor: &'a str,
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
