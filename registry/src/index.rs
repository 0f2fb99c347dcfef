//! The authorization index: what `Authorize` and `CheckAuthority` read, held in memory so a
//! decision costs no query (the issue: p99 under 2 ms at 2 000 calls/s with 100 000
//! certificates). The database stays the book; the index is a copy kept exactly in step:
//!
//! - Loaded whole at start-up, after reading the event log's last sequence number.
//! - Every change commits through [`Db::commit`] with its event, which records the sequence
//!   number ([`Db::last_commit`]). A decision that finds it above the one the index reflects
//!   first catches up ([`Index::committed`]): it reads the new events and reloads what each
//!   touched ([`units_for`]: the certificate, the person, ...; a kind it does not know, or many
//!   events at once, reload everything). Catch-ups hold one lock, so they never interleave.
//! - Writes by another process (registry replicas on one PostgreSQL, tools) are found in the
//!   event log: when [`REMOTE_CHECK`] has passed since the last look, the next decision reads
//!   `MAX(seq)` (the primary key) before answering. That is the staleness bound for other
//!   writers; this process's own writes are seen by the very next decision.
//!
//! The index keeps the inputs of the time-dependent rules (status history, validity,
//! appointment, custodian and delegation windows), never a verdict: every decision is
//! evaluated at the time asked. Its answers are the SQL path's, field for field
//! (tests/tests/registry_index.rs compares them over random requests).

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kyso_proto::signer::v1 as spb;
use sqlx::AnyConnection;

use crate::error::{Error, Result};
use crate::policy::show;
use crate::storage::{Db, col};
use crate::store::{
    AuthorityCheck, Decision, Refusal, classified_refusal, kind_value, mode_name, validity_verdict,
};

/// How stale the index may be for writes made by another process: at most this long after
/// their commit (plus the catch-up itself), a decision here reflects them.
pub const REMOTE_CHECK: Duration = Duration::from_millis(250);

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
    /// When the event log was last read for other writers' changes (ms since `started`).
    checked_ms: AtomicU64,
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

// ----- the copy ---------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Snapshot {
    /// By fingerprint.
    certs: HashMap<String, Cert>,
    /// Certificate id -> fingerprint.
    cert_fp: HashMap<String, String>,
    /// Person id -> full name.
    people: HashMap<String, String>,
    /// Organisation id -> name.
    orgs: HashMap<String, String>,
    /// Title id -> name and its rank in the database's ORDER BY name.
    titles: HashMap<String, Title>,
    /// Document type code -> classification.
    doc_types: HashMap<String, String>,
    /// Person id -> appointments.
    appointments: HashMap<String, Vec<Appointment>>,
    /// Organisation id -> its grants (A2-A4).
    rules: HashMap<String, OrgRules>,
    /// Certificate id -> custodians (A5).
    custodians: HashMap<String, Vec<Custodian>>,
    /// Delegate (to_person_id) -> delegations (A2).
    delegations: HashMap<String, Vec<Delegation>>,
}

#[derive(Debug)]
struct Cert {
    id: String,
    fingerprint: String,
    kind: String,
    person_id: Option<String>,
    organisation_id: String,
    not_before: i64,
    not_after: i64,
    /// Sorted by (effective_at, ordinal).
    history: Vec<StatusChange>,
}

#[derive(Debug)]
struct StatusChange {
    effective_at: i64,
    ordinal: i64,
    status: String,
    reason: Option<String>,
}

#[derive(Debug)]
struct Title {
    name: String,
    rank: usize,
}

#[derive(Debug)]
struct Appointment {
    organisation_id: String,
    title_id: String,
    valid_from: i64,
    valid_to: Option<i64>,
}

#[derive(Debug, Default)]
struct OrgRules {
    /// Title id -> document types it signs as APPROVAL.
    titles: HashMap<String, HashSet<String>>,
    /// Document type -> profiles of the organisation certificate.
    profiles: HashMap<String, Vec<String>>,
}

#[derive(Debug)]
struct Custodian {
    person_id: String,
    valid_from: i64,
    valid_to: Option<i64>,
}

#[derive(Debug)]
struct Delegation {
    organisation_id: String,
    from_person_id: String,
    mode: String,
    valid_from: i64,
    valid_to: i64,
    document_types: Vec<String>,
}

impl Cert {
    /// The status at `t` (N7, V3): the last change effective at or before `t`.
    fn status_at(&self, t: i64) -> Option<(&str, Option<&str>)> {
        let n = self.history.partition_point(|s| s.effective_at <= t);
        n.checked_sub(1)
            .and_then(|i| self.history.get(i))
            .map(|s| (s.status.as_str(), s.reason.as_deref()))
    }
}

impl Snapshot {
    /// Titles (name, rank) the person holds in the organisation at `t`, by name; one per
    /// appointment, as the SQL join gives them.
    fn titles_held(&self, person: &str, org: &str, t: i64) -> Vec<&Title> {
        let mut held: Vec<&Title> = self
            .appointments
            .get(person)
            .into_iter()
            .flatten()
            .filter(|a| a.organisation_id == org && in_force(a.valid_from, a.valid_to, t))
            .filter_map(|a| self.titles.get(&a.title_id))
            .collect();
        held.sort_by_key(|t| t.rank);
        held
    }

    /// The first title (by name) under which the person may sign `doc` as APPROVAL in `org`
    /// at `t` (A2, A3).
    fn authorised_title(&self, person: &str, org: &str, doc: &str, t: i64) -> Option<&str> {
        let rules = self.rules.get(org)?;
        self.appointments
            .get(person)
            .into_iter()
            .flatten()
            .filter(|a| a.organisation_id == org && in_force(a.valid_from, a.valid_to, t))
            .filter(|a| {
                rules
                    .titles
                    .get(&a.title_id)
                    .is_some_and(|d| d.contains(doc))
            })
            .filter_map(|a| self.titles.get(&a.title_id))
            .min_by_key(|t| t.rank)
            .map(|t| t.name.as_str())
    }

    /// Delegations to `person` in `org` covering `doc` in force at `t`.
    fn delegations_to<'a>(
        &'a self,
        person: &str,
        org: &'a str,
        doc: &'a str,
        t: i64,
    ) -> impl Iterator<Item = &'a Delegation> + 'a {
        self.delegations
            .get(person)
            .into_iter()
            .flatten()
            .filter(move |d| {
                d.organisation_id == org
                    && d.valid_from <= t
                    && d.valid_to > t
                    && d.document_types.iter().any(|x| x == doc)
            })
    }

    fn cert(&self, fp: &str) -> Result<&Cert> {
        self.certs
            .get(fp)
            .ok_or_else(|| Error::not_found("certificate", "fingerprint", fp))
    }

    fn doc_type(&self, doc: &str) -> Result<&str> {
        self.doc_types
            .get(doc)
            .map(String::as_str)
            .ok_or_else(|| Error::not_found("document type", "document_type", doc))
    }

    fn name(map: &HashMap<String, String>, id: &str) -> String {
        map.get(id).cloned().unwrap_or_default()
    }

    /// `Store::authorize`, from memory (same checks, same order, same words).
    #[allow(clippy::too_many_arguments)]
    fn authorize(
        &self,
        fp: &str,
        acting: &str,
        org: &str,
        doc: &str,
        profile: spb::Profile,
        mode: spb::SigningMode,
        t: i64,
    ) -> Result<Decision> {
        let c = self.cert(fp)?;
        if !self.people.contains_key(acting) {
            return Err(Error::not_found("person", "acting_person_id", acting));
        }
        if !self.orgs.contains_key(org) {
            return Err(Error::not_found("organisation", "organisation_id", org));
        }
        let class = self.doc_type(doc)?;

        let mut d = Decision::default();
        validity_verdict(
            c.not_before,
            c.not_after,
            c.status_at(t),
            t,
            &mut d.refusals,
        );
        classified_refusal(doc, class, &mut d.refusals);

        if c.kind == "personal" {
            let holder = c.person_id.as_deref().unwrap_or_default();
            d.holder_name = Self::name(&self.people, holder);
            // A1: used only by its holder.
            if holder != acting {
                d.refusals.push(Refusal {
                    rule: "A1",
                    reason: "a personal certificate is used only by its holder".into(),
                });
            }
            match profile {
                spb::Profile::Approval | spb::Profile::Comment => {}
                other => d.refusals.push(Refusal {
                    rule: "A4",
                    reason: format!(
                        "{} is a use of the organisation certificate (the seal, D1), not of a personal one",
                        other.as_str_name()
                    ),
                }),
            }
            let held = self.titles_held(acting, org, t);
            let first = held.first().map(|t| t.name.clone()).unwrap_or_default();
            if held.is_empty() {
                d.refusals.push(Refusal {
                    rule: "A3",
                    reason: "the signer holds no title in this organisation at that time".into(),
                });
            } else if let Some(m) = mode_name(mode) {
                // A2: a delegation in force from someone who has the authority.
                let from = self
                    .delegations_to(acting, org, doc, t)
                    .filter(|dl| dl.mode == m)
                    .filter_map(|dl| self.people.get(&dl.from_person_id).map(|n| (dl, n)))
                    .find(|(dl, _)| {
                        self.authorised_title(&dl.from_person_id, org, doc, t)
                            .is_some()
                    });
                d.title = first;
                match from {
                    Some((_, name)) => d.on_behalf_of = name.clone(),
                    None => d.refusals.push(Refusal {
                        rule: "A2",
                        reason: format!(
                            "no {} delegation in force for document type {doc} from someone with the authority to sign it",
                            m.to_uppercase()
                        ),
                    }),
                }
            } else if profile == spb::Profile::Approval {
                match self.authorised_title(acting, org, doc, t) {
                    Some(title) => d.title = title.to_owned(),
                    None => d.refusals.push(Refusal {
                        rule: "A3",
                        reason: format!(
                            "none of the signer's titles ({}) may sign document type {doc} in this organisation",
                            held.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }),
                }
            } else {
                d.title = first;
            }
        } else {
            d.holder_name = Self::name(&self.orgs, &c.organisation_id);
            // A5: only the current custodian uses the organisation key.
            let custodian = self
                .custodians
                .get(&c.id)
                .into_iter()
                .flatten()
                .filter(|k| in_force(k.valid_from, k.valid_to, t))
                .max_by_key(|k| k.valid_from);
            match custodian {
                Some(k) if k.person_id == acting => {}
                Some(_) => d.refusals.push(Refusal {
                    rule: "A5",
                    reason: "only the assigned custodian may use the organisation certificate"
                        .into(),
                }),
                None => d.refusals.push(Refusal {
                    rule: "A5",
                    reason: "the organisation certificate has no custodian assigned by decision"
                        .into(),
                }),
            }
            if mode_name(mode).is_some() {
                d.refusals.push(Refusal {
                    rule: "A2",
                    reason: "signing on behalf uses the delegate's own personal certificate".into(),
                });
            }
            if c.organisation_id != org {
                d.refusals.push(Refusal {
                    rule: "A4",
                    reason: "an organisation certificate signs only for its own organisation"
                        .into(),
                });
            }
            let allowed = self
                .rules
                .get(&c.organisation_id)
                .and_then(|r| r.profiles.get(doc))
                .is_some_and(|p| p.iter().any(|p| p == profile.as_str_name()));
            if !allowed {
                d.refusals.push(Refusal {
                    rule: "A4",
                    reason: format!(
                        "the organisation certificate is not allowed {} for document type {doc}",
                        profile.as_str_name()
                    ),
                });
            }
        }
        Ok(d)
    }

    /// `Store::check_authority`, from memory.
    fn check_authority(&self, fp: &str, doc: &str, t: i64) -> Result<AuthorityCheck> {
        let c = self.cert(fp)?;
        let class = self.doc_type(doc)?;
        let mut out = AuthorityCheck {
            kind: kind_value(&c.kind) as i32,
            organisation_name: Self::name(&self.orgs, &c.organisation_id),
            ..AuthorityCheck::default()
        };
        out.status = validity_verdict(
            c.not_before,
            c.not_after,
            c.status_at(t),
            t,
            &mut out.refusals,
        ) as i32;
        classified_refusal(doc, class, &mut out.refusals);
        if let Some(person) = &c.person_id {
            out.holder_name = Self::name(&self.people, person);
            match self.authorised_title(person, &c.organisation_id, doc, t) {
                Some(title) => out.title = title.to_owned(),
                None => {
                    // Signing on behalf counts too (A2).
                    if self
                        .delegations_to(person, &c.organisation_id, doc, t)
                        .next()
                        .is_none()
                    {
                        out.refusals.push(Refusal {
                            rule: "A3",
                            reason: format!(
                                "the holder had no title with authority for {doc}, nor a delegation for it, at {}",
                                show(t)
                            ),
                        });
                    }
                }
            }
        } else {
            out.holder_name = out.organisation_name.clone();
            let any = self
                .rules
                .get(&c.organisation_id)
                .and_then(|r| r.profiles.get(doc))
                .is_some_and(|p| !p.is_empty());
            if !any {
                out.refusals.push(Refusal {
                    rule: "A4",
                    reason: format!("the organisation certificate has no use for {doc}"),
                });
            }
        }
        Ok(out)
    }
}

/// In force at `t`: from `valid_from` (inclusive) to `valid_to` (exclusive, open when None).
fn in_force(valid_from: i64, valid_to: Option<i64>, t: i64) -> bool {
    valid_from <= t && valid_to.is_none_or(|to| to > t)
}

// ----- keeping in step ------------------------------------------------------------------------

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
        // I5 key-device unlocks and the holiday calendar: no rule of Authorize reads them.
        "unlock" | "holiday" | "holidays" => Unit::Nothing,
        _ => Unit::All,
    }
}

impl Index {
    /// Loads the whole index from the database.
    pub async fn load(db: Db) -> Result<Self> {
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
            checked_ms: AtomicU64::new(0),
        })
    }

    /// The last event sequence number the index reflects.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// `Authorize` from the index (the arguments checked by `Store::authorize`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn authorize(
        &self,
        fp: &str,
        acting: &str,
        org: &str,
        doc: &str,
        profile: spb::Profile,
        mode: spb::SigningMode,
        t: i64,
    ) -> Result<Decision> {
        self.ready().await?;
        self.read()?
            .authorize(fp, acting, org, doc, profile, mode, t)
    }

    /// `CheckAuthority` from the index.
    pub(crate) async fn check_authority(
        &self,
        fp: &str,
        doc: &str,
        t: i64,
    ) -> Result<AuthorityCheck> {
        self.ready().await?;
        self.read()?.check_authority(fp, doc, t)
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Snapshot>> {
        self.snapshot
            .read()
            .map_err(|_| Error::Config(vec!["authorization index poisoned".into()]))
    }

    /// Brings the index up to this process's last commit, and every [`REMOTE_CHECK`] up to
    /// the event log (other writers).
    async fn ready(&self) -> Result<()> {
        if self.db.last_commit() > self.applied() {
            return self.committed().await;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= REMOTE_CHECK.as_millis() as u64
            && self
                .checked_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(self.db.pool())
                .await?;
            if head > self.applied() {
                self.committed().await?;
            }
        }
        Ok(())
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

// ----- reading from the database ----------------------------------------------------------------

/// Rows read for one unit, applied to the snapshot under its write lock.
enum Loaded {
    Nothing,
    /// The row an event names is gone: the caller reloads everything.
    Gone,
    Cert {
        id: String,
        cert: Option<Cert>,
    },
    Person {
        id: String,
        name: Option<String>,
        appointments: Vec<Appointment>,
        delegations: Vec<Delegation>,
    },
    Org {
        id: String,
        name: Option<String>,
    },
    Titles(HashMap<String, Title>),
    DocTypes(HashMap<String, String>),
    Rules(HashMap<String, OrgRules>),
    Appointments {
        person: String,
        appointments: Vec<Appointment>,
    },
    Custodians {
        cert_id: String,
        custodians: Vec<Custodian>,
    },
    Delegations {
        person: String,
        delegations: Vec<Delegation>,
    },
}

impl Loaded {
    async fn read(conn: &mut AnyConnection, unit: Unit) -> Result<Self> {
        Ok(match unit {
            // Handled by the caller (a full reload).
            Unit::All | Unit::Nothing => Self::Nothing,
            Unit::Cert(id) => {
                let cert = load_certs(conn, Some(&id)).await?.pop();
                Self::Cert { id, cert }
            }
            Unit::Person(id) => Self::Person {
                name: load_names(conn, PEOPLE, Some(&id))
                    .await?
                    .pop()
                    .map(|(_, n)| n),
                appointments: load_appointments(conn, Some(&id))
                    .await?
                    .into_values()
                    .next()
                    .unwrap_or_default(),
                delegations: load_delegations(conn, Some(&id))
                    .await?
                    .into_values()
                    .next()
                    .unwrap_or_default(),
                id,
            },
            Unit::Org(id) => Self::Org {
                name: load_names(conn, ORGS, Some(&id))
                    .await?
                    .pop()
                    .map(|(_, n)| n),
                id,
            },
            Unit::Titles => Self::Titles(load_titles(conn).await?),
            Unit::DocTypes => Self::DocTypes(load_doc_types(conn).await?),
            Unit::Rules => Self::Rules(load_rules(conn).await?),
            Unit::Appointment(id) => {
                let person: Option<String> =
                    sqlx::query_scalar("SELECT person_id FROM appointments WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match person {
                    Some(person) => Self::Appointments {
                        appointments: load_appointments(conn, Some(&person))
                            .await?
                            .into_values()
                            .next()
                            .unwrap_or_default(),
                        person,
                    },
                    // Gone (deleted by a change): reload everything.
                    None => Self::Gone,
                }
            }
            Unit::Custodian(id) => {
                let cert: Option<String> =
                    sqlx::query_scalar("SELECT certificate_id FROM custodians WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match cert {
                    Some(cert_id) => Self::Custodians {
                        custodians: load_custodians(conn, Some(&cert_id))
                            .await?
                            .into_values()
                            .next()
                            .unwrap_or_default(),
                        cert_id,
                    },
                    None => Self::Gone,
                }
            }
            Unit::Delegation(id) => {
                let to: Option<String> =
                    sqlx::query_scalar("SELECT to_person_id FROM delegations WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?;
                match to {
                    Some(person) => Self::Delegations {
                        delegations: load_delegations(conn, Some(&person))
                            .await?
                            .into_values()
                            .next()
                            .unwrap_or_default(),
                        person,
                    },
                    None => Self::Gone,
                }
            }
        })
    }

    fn apply(self, s: &mut Snapshot) {
        match self {
            Self::Nothing | Self::Gone => {}
            Self::Cert { id, cert } => {
                if let Some(fp) = s.cert_fp.remove(&id) {
                    s.certs.remove(&fp);
                }
                if let Some(c) = cert {
                    s.cert_fp.insert(c.id.clone(), c.fingerprint.clone());
                    s.certs.insert(c.fingerprint.clone(), c);
                }
            }
            Self::Person {
                id,
                name,
                appointments,
                delegations,
            } => {
                set(&mut s.appointments, &id, appointments);
                set(&mut s.delegations, &id, delegations);
                match name {
                    Some(n) => s.people.insert(id, n),
                    None => s.people.remove(&id),
                };
            }
            Self::Org { id, name } => {
                match name {
                    Some(n) => s.orgs.insert(id, n),
                    None => s.orgs.remove(&id),
                };
            }
            Self::Titles(t) => s.titles = t,
            Self::DocTypes(d) => s.doc_types = d,
            Self::Rules(r) => s.rules = r,
            Self::Appointments {
                person,
                appointments,
            } => set(&mut s.appointments, &person, appointments),
            Self::Custodians {
                cert_id,
                custodians,
            } => set(&mut s.custodians, &cert_id, custodians),
            Self::Delegations {
                person,
                delegations,
            } => set(&mut s.delegations, &person, delegations),
        }
    }
}

fn set<T>(map: &mut HashMap<String, Vec<T>>, key: &str, rows: Vec<T>) {
    if rows.is_empty() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), rows);
    }
}

/// The event log's head, then every table the index holds. A change committed while this
/// runs has a later sequence number, so the next catch-up applies it again (reloads are
/// idempotent).
async fn load_all(db: &Db) -> Result<(i64, Snapshot)> {
    let mut conn = db.pool().acquire().await?;
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let mut s = Snapshot {
        titles: load_titles(&mut conn).await?,
        doc_types: load_doc_types(&mut conn).await?,
        rules: load_rules(&mut conn).await?,
        people: load_names(&mut conn, PEOPLE, None)
            .await?
            .into_iter()
            .collect(),
        orgs: load_names(&mut conn, ORGS, None)
            .await?
            .into_iter()
            .collect(),
        appointments: load_appointments(&mut conn, None).await?,
        custodians: load_custodians(&mut conn, None).await?,
        delegations: load_delegations(&mut conn, None).await?,
        ..Snapshot::default()
    };
    for c in load_certs(&mut conn, None).await? {
        s.cert_fp.insert(c.id.clone(), c.fingerprint.clone());
        s.certs.insert(c.fingerprint.clone(), c);
    }
    Ok((seq, s))
}

const PEOPLE: (&str, &str) = ("people", "full_name");
const ORGS: (&str, &str) = ("organisations", "name");

/// (id, name) of people or organisations, all or one.
async fn load_names(
    conn: &mut AnyConnection,
    (table, column): (&str, &str),
    id: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut sql = format!("SELECT id, {column} AS name FROM {table}");
    if id.is_some() {
        sql.push_str(" WHERE id = $1");
    }
    let rows = bind_opt(sqlx::query(&sql), id).fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((col(r, "id")?, col(r, "name")?)))
        .collect()
}

fn bind_opt<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    v: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match v {
        Some(v) => q.bind(v),
        None => q,
    }
}

/// Certificates with their status history, all or one by id.
async fn load_certs(conn: &mut AnyConnection, id: Option<&str>) -> Result<Vec<Cert>> {
    let (cert_where, hist_where) = match id {
        Some(_) => (" WHERE id = $1", " WHERE certificate_id = $1"),
        None => ("", ""),
    };
    let value = id;
    let sql = format!(
        "SELECT id, fingerprint, kind, person_id, organisation_id, not_before, not_after \
         FROM certificates{cert_where}"
    );
    let rows = bind_opt(sqlx::query(&sql), value)
        .fetch_all(&mut *conn)
        .await?;
    let mut certs: HashMap<String, Cert> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let c = Cert {
            id: col(r, "id")?,
            fingerprint: col(r, "fingerprint")?,
            kind: col(r, "kind")?,
            person_id: col(r, "person_id")?,
            organisation_id: col(r, "organisation_id")?,
            not_before: col(r, "not_before")?,
            not_after: col(r, "not_after")?,
            history: Vec::new(),
        };
        certs.insert(c.id.clone(), c);
    }
    let sql = format!(
        "SELECT certificate_id, status, reason, effective_at, ordinal \
         FROM certificate_status_history{hist_where}"
    );
    let rows = bind_opt(sqlx::query(&sql), value)
        .fetch_all(&mut *conn)
        .await?;
    for r in &rows {
        let id: String = col(r, "certificate_id")?;
        if let Some(c) = certs.get_mut(&id) {
            c.history.push(StatusChange {
                effective_at: col(r, "effective_at")?,
                ordinal: col(r, "ordinal")?,
                status: col(r, "status")?,
                reason: col(r, "reason")?,
            });
        }
    }
    let mut out: Vec<Cert> = certs.into_values().collect();
    for c in &mut out {
        c.history.sort_by_key(|s| (s.effective_at, s.ordinal));
    }
    Ok(out)
}

/// Titles ranked in the database's own order of names (its collation), as `ORDER BY t.name`.
async fn load_titles(conn: &mut AnyConnection) -> Result<HashMap<String, Title>> {
    let rows = sqlx::query("SELECT id, name FROM titles ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .enumerate()
        .map(|(rank, r)| {
            Ok((
                col(r, "id")?,
                Title {
                    name: col(r, "name")?,
                    rank,
                },
            ))
        })
        .collect()
}

async fn load_doc_types(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("SELECT code, classification FROM document_types")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((col(r, "code")?, col(r, "classification")?)))
        .collect()
}

async fn load_rules(conn: &mut AnyConnection) -> Result<HashMap<String, OrgRules>> {
    let mut rules: HashMap<String, OrgRules> = HashMap::new();
    let rows =
        sqlx::query("SELECT organisation_id, title_id, document_type FROM title_authorities")
            .fetch_all(&mut *conn)
            .await?;
    for r in &rows {
        rules
            .entry(col(r, "organisation_id")?)
            .or_default()
            .titles
            .entry(col(r, "title_id")?)
            .or_default()
            .insert(col(r, "document_type")?);
    }
    let rows =
        sqlx::query("SELECT organisation_id, document_type, profile FROM organisation_profiles")
            .fetch_all(&mut *conn)
            .await?;
    for r in &rows {
        rules
            .entry(col(r, "organisation_id")?)
            .or_default()
            .profiles
            .entry(col(r, "document_type")?)
            .or_default()
            .push(col(r, "profile")?);
    }
    Ok(rules)
}

/// Appointments by person, all or one person's.
async fn load_appointments(
    conn: &mut AnyConnection,
    person: Option<&str>,
) -> Result<HashMap<String, Vec<Appointment>>> {
    let mut sql = "SELECT person_id, organisation_id, title_id, valid_from, valid_to \
                   FROM appointments"
        .to_owned();
    if person.is_some() {
        sql.push_str(" WHERE person_id = $1");
    }
    let rows = bind_opt(sqlx::query(&sql), person).fetch_all(conn).await?;
    let mut out: HashMap<String, Vec<Appointment>> = HashMap::new();
    for r in &rows {
        out.entry(col(r, "person_id")?)
            .or_default()
            .push(Appointment {
                organisation_id: col(r, "organisation_id")?,
                title_id: col(r, "title_id")?,
                valid_from: col(r, "valid_from")?,
                valid_to: col(r, "valid_to")?,
            });
    }
    Ok(out)
}

/// Custodians by certificate id, all or one certificate's.
async fn load_custodians(
    conn: &mut AnyConnection,
    cert_id: Option<&str>,
) -> Result<HashMap<String, Vec<Custodian>>> {
    let mut sql =
        "SELECT certificate_id, person_id, valid_from, valid_to FROM custodians".to_owned();
    if cert_id.is_some() {
        sql.push_str(" WHERE certificate_id = $1");
    }
    let rows = bind_opt(sqlx::query(&sql), cert_id).fetch_all(conn).await?;
    let mut out: HashMap<String, Vec<Custodian>> = HashMap::new();
    for r in &rows {
        out.entry(col(r, "certificate_id")?)
            .or_default()
            .push(Custodian {
                person_id: col(r, "person_id")?,
                valid_from: col(r, "valid_from")?,
                valid_to: col(r, "valid_to")?,
            });
    }
    Ok(out)
}

/// Delegations by delegate, all or one delegate's, in the order they were made.
async fn load_delegations(
    conn: &mut AnyConnection,
    to: Option<&str>,
) -> Result<HashMap<String, Vec<Delegation>>> {
    let filter = if to.is_some() {
        " WHERE d.to_person_id = $1"
    } else {
        ""
    };
    let sql = format!(
        "SELECT d.id AS id, d.organisation_id AS organisation_id, \
         d.from_person_id AS from_person_id, d.to_person_id AS to_person_id, d.mode AS mode, \
         d.valid_from AS valid_from, d.valid_to AS valid_to FROM delegations d{filter} \
         ORDER BY d.created_at, d.id"
    );
    let rows = bind_opt(sqlx::query(&sql), to)
        .fetch_all(&mut *conn)
        .await?;
    let sql = format!(
        "SELECT dd.delegation_id AS delegation_id, dd.document_type AS document_type \
         FROM delegation_document_types dd JOIN delegations d ON d.id = dd.delegation_id{filter}"
    );
    let doc_rows = bind_opt(sqlx::query(&sql), to)
        .fetch_all(&mut *conn)
        .await?;
    let mut docs: HashMap<String, Vec<String>> = HashMap::new();
    for r in &doc_rows {
        docs.entry(col(r, "delegation_id")?)
            .or_default()
            .push(col(r, "document_type")?);
    }
    let mut out: HashMap<String, Vec<Delegation>> = HashMap::new();
    for r in &rows {
        let id: String = col(r, "id")?;
        out.entry(col(r, "to_person_id")?)
            .or_default()
            .push(Delegation {
                organisation_id: col(r, "organisation_id")?,
                from_person_id: col(r, "from_person_id")?,
                mode: col(r, "mode")?,
                valid_from: col(r, "valid_from")?,
                valid_to: col(r, "valid_to")?,
                document_types: docs.remove(&id).unwrap_or_default(),
            });
    }
    Ok(out)
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

    #[test]
    fn status_at_takes_the_last_change_at_or_before() {
        let c = Cert {
            id: "crt_1".into(),
            fingerprint: "ab".into(),
            kind: "personal".into(),
            person_id: Some("per_1".into()),
            organisation_id: "org_1".into(),
            not_before: 10,
            not_after: 100,
            history: vec![
                StatusChange {
                    effective_at: 10,
                    ordinal: 1,
                    status: "active".into(),
                    reason: None,
                },
                StatusChange {
                    effective_at: 50,
                    ordinal: 2,
                    status: "suspended".into(),
                    reason: None,
                },
                StatusChange {
                    effective_at: 50,
                    ordinal: 3,
                    status: "active".into(),
                    reason: None,
                },
            ],
        };
        assert_eq!(c.status_at(9), None);
        assert_eq!(c.status_at(10), Some(("active", None)));
        assert_eq!(c.status_at(50), Some(("active", None)));
        assert_eq!(c.status_at(49), Some(("active", None)));
    }
}
