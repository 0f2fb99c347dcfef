//! The authorization index: the facts `Authorize` and `CheckAuthority` read (facts.rs), held
//! in memory so a decision costs no query (the issue: p99 under 2 ms at 2 000 calls/s with 100 000
//! certificates). The database stays the book; the index is a copy kept exactly in step:
//!
//! - Loaded whole at start-up, after reading the event log's last sequence number.
//! - Every change commits through [`Db::commit`] with its event, which records the sequence
//!   number ([`Db::last_commit`]). A decision that finds it above the one the index reflects
//!   first catches up ([`Index::committed`]): it reads the new events and reloads what each
//!   touched ([`units_for`]: the certificate, the person, ...; a kind it does not know, or many
//!   events at once, reload everything). Catch-ups hold one lock, so they never interleave.
//! - Writes by another process (registry replicas on one PostgreSQL, tools) are found in the
//!   event log: every quarter of the staleness bound (at most [`REMOTE_CHECK`]) a background
//!   task ([`Index::keep_fresh`]) reads `MAX(seq)` (the primary key) and applies what is new;
//!   this process's own writes are seen by the very next decision.
//! - The staleness bound (`access.staleness_bound_ms`, default 1 s): once the index has not
//!   caught up with the database for longer, decisions and role lookups answer UNAVAILABLE
//!   (`Error::Stale`) instead of deciding from what a replica cut off from its database last
//!   saw; the look at the event log's head is itself bounded by it (the catch-up it leads to,
//!   up to a full reload, has a longer limit, or a bulk load would leave the replica stale).
//! - It also holds the role map (access/): the roles of each client certificate, kept in step
//!   the same way (`role.*` events), so admitting a call is a hash lookup.
//!
//! The index keeps the inputs of the time-dependent rules (status history, validity,
//! appointment, custodian and delegation windows), never a verdict: every decision is
//! evaluated at the time asked, by the one set of rules (rules.rs). Its facts are the
//! database's (sql.rs), field for field: tests/tests/registry/index.rs runs the rules over both
//! sources on random requests and compares the answers.

mod load;
mod snapshot;

use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;

use self::load::{Loaded, load_all};
use self::snapshot::Snapshot;
use super::decision::{AuthorityCheck, Decision};
use super::request::{AuthorizeQuery, CheckQuery};
use super::rules;
use crate::error::{Error, Result};
use crate::storage::{Db, col};

/// How often the index looks for writes made by another process: at most this long after
/// their commit (plus the catch-up itself), a decision here reflects them.
pub const REMOTE_CHECK: Duration = Duration::from_millis(250);

/// The default staleness bound: past it without having caught up with the database, the
/// index refuses to decide (UNAVAILABLE) rather than answer from stale facts.
pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(1);

/// How long one catch-up (up to a full reload of every certificate, person and organisation)
/// may take before the look gives up and tries again at the next tick. Not the staleness
/// bound: a full reload of 100 000 certificates takes seconds, and bounding it by the bound
/// would cancel every attempt after a bulk load, leaving the replica stale for good.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// More new events than this at once (a bulk load, a long-idle replica): reload everything
/// rather than entity by entity.
const FULL_RELOAD_AFTER: usize = 256;

/// The in-memory copy and the bookkeeping that keeps it in step.
pub struct Index {
    db: Db,
    snapshot: RwLock<Snapshot>,
    /// The last event sequence number the snapshot reflects.
    applied: AtomicI64,
    /// One catch-up at a time.
    catching_up: tokio::sync::Mutex<()>,
    started: Instant,
    /// When the index was last known caught up with the database (ms since `started`): the
    /// start of the last event-log read that succeeded and was applied.
    fresh_ms: AtomicU64,
    /// The staleness bound: how long past `fresh_ms` the index still answers; none for an
    /// index nothing keeps fresh ([`Index::load`]: tests and tools reading through one pool).
    bound: Option<Duration>,
    /// How often the event log is read: a quarter of the bound, at most [`REMOTE_CHECK`].
    check_every: Duration,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let certificates = self.snapshot.read().map(|s| s.certs.len()).unwrap_or(0);
        f.debug_struct("Index")
            .field("applied", &self.applied.load(Ordering::Relaxed))
            .field("certificates", &certificates)
            .finish_non_exhaustive()
    }
}

/// What one committed change makes the index reload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unit {
    /// Everything (a kind the index does not know, or a bulk change).
    All,
    /// Nothing an authorisation reads.
    Nothing,
    /// A certificate with its status history, by id.
    Cert(String),
    /// A person's name, appointments and the delegations to them, by id.
    Person(String),
    /// An organisation's name, by id.
    Org(String),
    /// Every title (names order them).
    Titles,
    /// Every document type.
    DocTypes,
    /// Every title authority and organisation profile.
    Rules,
    /// Every role grant (access/).
    Roles,
    /// The appointments of the person of an appointment, by appointment id.
    Appointment(String),
    /// The custodians of the certificate of a custodian, by custodian id.
    Custodian(String),
    /// The delegations to the delegate of a delegation, by delegation id.
    Delegation(String),
}

/// THE list to extend when a new kind of change is added: which part of the index an event
/// (kind, entity id) touches. The entity id must be what its prefix says (`crt_`, `per_`, ...),
/// and the change must touch nothing beyond the unit named here (a person's update that also
/// ends appointments is covered by `Person`, which reloads them; one that changes a
/// certificate is not). Unknown kinds reload everything: correct, but slow with 100 000
/// certificates, so map new kinds here.
fn units_for(kind: &str, entity: &str) -> Unit {
    let family = kind.split('.').next().unwrap_or_default();
    let id = |prefix: &str, unit: fn(String) -> Unit| {
        if entity.starts_with(prefix) {
            unit(entity.to_owned())
        } else {
            Unit::All
        }
    };
    match family {
        "certificate" => id("crt_", Unit::Cert),
        "person" => id("per_", Unit::Person),
        "organisation" => id("org_", Unit::Org),
        "appointment" => id("apt_", Unit::Appointment),
        "custodian" => id("cus_", Unit::Custodian),
        "delegation" => id("dlg_", Unit::Delegation),
        "title" => Unit::Titles,
        "document_type" => Unit::DocTypes,
        "authority" => Unit::Rules,
        "role" => Unit::Roles,
        // I5 key-device unlocks and the holiday calendar: no rule of Authorize reads them.
        "unlock" | "holiday" | "holidays" => Unit::Nothing,
        _ => Unit::All,
    }
}

impl Index {
    /// Loads the whole index from the database, without a staleness bound: it sees the
    /// writes made through `db` (its own process's), and other writers' only if
    /// [`Index::keep_fresh`] runs. For tests and tools; the service uses [`Store::with_index`].
    ///
    /// [`Store::with_index`]: crate::store::Store::with_index
    pub async fn load(db: Db) -> Result<Self> {
        Self::load_with(db, None).await
    }

    /// Loads the whole index; it answers only while caught up with the database within
    /// `bound`, which [`Index::keep_fresh`] must then be running to keep it.
    pub async fn load_bounded(db: Db, bound: Duration) -> Result<Self> {
        Self::load_with(db, Some(bound)).await
    }

    async fn load_with(db: Db, bound: Option<Duration>) -> Result<Self> {
        let started = Instant::now();
        let (seq, snapshot) = load_all(&db).await?;
        tracing::info!(
            certificates = snapshot.certs.len(),
            people = snapshot.people.len(),
            organisations = snapshot.orgs.len(),
            seq,
            ms = started.elapsed().as_millis() as u64,
            "authorization index loaded"
        );
        Ok(Self {
            db,
            snapshot: RwLock::new(snapshot),
            applied: AtomicI64::new(seq),
            catching_up: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            fresh_ms: AtomicU64::new(0),
            bound,
            check_every: bound.map_or(REMOTE_CHECK, |b| REMOTE_CHECK.min(b / 4)),
        })
    }

    /// The last event sequence number the index reflects.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// `Authorize` over the index's facts (rules.rs).
    pub async fn authorize(&self, q: &AuthorizeQuery) -> Result<Decision> {
        self.ready().await?;
        let snapshot = self.read()?;
        // The facts are in memory: the rules finish in one poll, under the read lock.
        rules::authorize(&*snapshot, q)
            .now_or_never()
            .unwrap_or_else(|| Err(pending()))
    }

    /// `CheckAuthority` over the index's facts (rules.rs).
    pub async fn check_authority(&self, q: &CheckQuery) -> Result<AuthorityCheck> {
        self.ready().await?;
        let snapshot = self.read()?;
        rules::check_authority(&*snapshot, q)
            .now_or_never()
            .unwrap_or_else(|| Err(pending()))
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Snapshot>> {
        self.snapshot
            .read()
            .map_err(|_| Error::Config(vec!["authorization index poisoned".into()]))
    }

    /// The roles a client certificate holds at `now` (access/): a hash lookup on the
    /// snapshot, after the same catch-up and staleness check as a decision, so a role
    /// revoked on another replica stops working here within the staleness bound.
    pub async fn roles_of(&self, fingerprint: &str, now: i64) -> Result<crate::access::RoleSet> {
        self.ready().await?;
        let snapshot = self.read()?;
        Ok(snapshot
            .roles
            .get(fingerprint)
            .map(|g| crate::access::role::roles_at(g, now))
            .unwrap_or_default())
    }

    /// Brings the index up to this process's last commit; refuses (UNAVAILABLE) once it has
    /// not caught up with the database for longer than the staleness bound. Other writers'
    /// changes are applied by [`Index::keep_fresh`], off the request path.
    async fn ready(&self) -> Result<()> {
        if self.db.last_commit() > self.applied() {
            self.committed().await?;
        }
        let Some(bound) = self.bound else {
            return Ok(());
        };
        let now = self.started.elapsed().as_millis() as u64;
        let behind = now.saturating_sub(self.fresh_ms.load(Ordering::Acquire));
        if u128::from(behind) > bound.as_millis() {
            return Err(Error::Stale {
                behind_ms: behind,
                bound_ms: bound.as_millis() as u64,
            });
        }
        Ok(())
    }

    /// Looks at the event log every quarter of the staleness bound (at most [`REMOTE_CHECK`])
    /// until the index is dropped: applies other writers' changes and records when the index
    /// was last known caught up. A background task rather than the requests, so freshness
    /// does not depend on traffic (after a quiet minute the first calls are not stale) and no
    /// request waits on the database for it. Each look at the event log's head is bounded by
    /// the staleness bound; the catch-up it leads to, by [`CATCH_UP_LIMIT`] (a full reload
    /// after a bulk load takes seconds; meanwhile decisions answer UNAVAILABLE past the bound).
    pub async fn keep_fresh(index: std::sync::Weak<Index>) {
        let Some(every) = index.upgrade().map(|i| i.check_every) else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut healthy = true;
        loop {
            tick.tick().await;
            let Some(ix) = index.upgrade() else {
                return;
            };
            let started = ix.started.elapsed().as_millis() as u64;
            let limit = ix.bound.unwrap_or(4 * REMOTE_CHECK);
            let outcome = match tokio::time::timeout(limit, ix.head()).await {
                Ok(Ok(head)) if head > ix.applied() => {
                    match tokio::time::timeout(CATCH_UP_LIMIT, ix.committed()).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!(
                            "catching up took longer than {} s",
                            CATCH_UP_LIMIT.as_secs()
                        )),
                    }
                }
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "the database did not answer within {} ms",
                    limit.as_millis()
                )),
            };
            match outcome {
                Ok(()) => {
                    // Caught up with the database as it was when the look started.
                    ix.fresh_ms.fetch_max(started, Ordering::AcqRel);
                    if !healthy {
                        tracing::info!("authorization index: caught up with the database again");
                    }
                    healthy = true;
                }
                Err(e) => {
                    // Logged once per outage; decisions turn UNAVAILABLE past the bound.
                    if healthy {
                        tracing::warn!(error = %e, "authorization index: cannot catch up");
                    }
                    healthy = false;
                }
            }
        }
    }

    /// The event log's last sequence number: the look at the database that the staleness
    /// bound limits (a database that does not answer this within the bound is cut off).
    async fn head(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(self.db.pool())
                .await?,
        )
    }

    /// The invalidation hook: applies every change committed since the index's sequence
    /// number (read from the event log, so whoever wrote it), one catch-up at a time.
    pub async fn committed(&self) -> Result<()> {
        let _one = self.catching_up.lock().await;
        let from = self.applied();
        let rows = sqlx::query(
            "SELECT seq, kind, entity_id FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(from)
        .bind(FULL_RELOAD_AFTER as i64 + 1)
        .fetch_all(self.db.pool())
        .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let last_seq: i64 = col(last, "seq")?;
        let mut units = Vec::new();
        for r in &rows {
            let kind: String = col(r, "kind")?;
            let entity: String = col(r, "entity_id")?;
            let u = units_for(&kind, &entity);
            if !units.contains(&u) {
                units.push(u);
            }
        }
        if rows.len() > FULL_RELOAD_AFTER || units.contains(&Unit::All) {
            return self.reload(from).await;
        }
        let mut loaded = Vec::with_capacity(units.len());
        {
            let mut conn = self.db.pool().acquire().await?;
            for u in units {
                loaded.push(Loaded::read(&mut conn, u).await?);
            }
        }
        if loaded.iter().any(|l| matches!(l, Loaded::Gone)) {
            return self.reload(from).await;
        }
        {
            let mut s = self.write()?;
            for l in loaded {
                l.apply(&mut s);
            }
        }
        self.applied.store(last_seq, Ordering::Release);
        Ok(())
    }

    /// Replaces the whole snapshot (the caller holds `catching_up`).
    async fn reload(&self, from: i64) -> Result<()> {
        let started = Instant::now();
        let (seq, snapshot) = load_all(&self.db).await?;
        *self.write()? = snapshot;
        self.applied.store(seq, Ordering::Release);
        tracing::info!(
            from,
            seq,
            ms = started.elapsed().as_millis() as u64,
            "authorization index reloaded"
        );
        Ok(())
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Snapshot>> {
        self.snapshot
            .write()
            .map_err(|_| Error::Config(vec!["authorization index poisoned".into()]))
    }
}

/// Never happens: a fact of the snapshot that would wait.
fn pending() -> Error {
    Error::Config(vec![
        "authorization index: a decision waited on an in-memory fact".into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_part_they_touch() {
        assert_eq!(
            units_for("certificate.status_changed", "crt_1"),
            Unit::Cert("crt_1".into())
        );
        assert_eq!(units_for("certificate.renewed", "x"), Unit::All);
        assert_eq!(
            units_for("custodian.assigned", "cus_9"),
            Unit::Custodian("cus_9".into())
        );
        assert_eq!(units_for("authority.granted", ""), Unit::Rules);
        assert_eq!(units_for("unlock.requested", "unl_1"), Unit::Nothing);
        assert_eq!(units_for("bench.seeded", ""), Unit::All);
    }
}
