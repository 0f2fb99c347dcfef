//! The registry's two sources of authority facts (registry/src/authority): the in-memory index
//! and the SQL loader, over one database, run through the one set of rules
//! (`authority::rules`), must give the same answer (refusals with their rule IDs and words,
//! names, title, delegator, errors) for random requests at random times over a random
//! province; and a change is seen by the very next decision (same process) or within the
//! staleness bound (another process writing to the same database). On SQLite and PostgreSQL.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1::{Classification, Profile, SigningMode};
use kyso_registry::authority::{AuthorizeQuery, CheckQuery, Index, SqlFacts, rules};
use kyso_registry::convert;
use kyso_registry::storage::Db;
use kyso_registry::store::Store;
use kyso_tests::pg::PgCluster;
use kyso_tests::self_signed_ec;

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;
const DOMAIN: &str = "khanhhoa.gov.vn";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// A change made by this test through the library, as an operator's tool would make it.
fn local(c: kyso_registry::book::model::Change) -> kyso_registry::book::model::Change {
    kyso_registry::book::model::Change {
        by: Some(kyso_registry::access::Actor::local("index test")),
        ..c
    }
}

fn change() -> Option<pb::Change> {
    Some(pb::Change {
        actor: "subscriber-manager@sotttt.khanhhoa.gov.vn".into(),
        reason: "index test".into(),
    })
}

/// The book's writes from the protocol's requests, converted at the edge as the service
/// converts them (registry/src/convert.rs), so the province is written as through the API.
trait Writes {
    async fn create_organisation(
        &self,
        r: &pb::CreateOrganisationRequest,
        now: i64,
    ) -> kyso_registry::Result<String>;
    async fn create_person(
        &self,
        r: &pb::CreatePersonRequest,
        now: i64,
    ) -> kyso_registry::Result<String>;
    async fn create_title(
        &self,
        r: &pb::CreateTitleRequest,
        now: i64,
    ) -> kyso_registry::Result<String>;
    async fn create_appointment(
        &self,
        r: &pb::CreateAppointmentRequest,
        now: i64,
    ) -> kyso_registry::Result<String>;
    async fn create_document_type(
        &self,
        r: &pb::CreateDocumentTypeRequest,
        now: i64,
    ) -> kyso_registry::Result<()>;
    async fn grant_authority(
        &self,
        r: &pb::GrantAuthorityRequest,
        now: i64,
    ) -> kyso_registry::Result<()>;
    async fn register_certificate(
        &self,
        r: &pb::RegisterCertificateRequest,
        now: i64,
    ) -> kyso_registry::Result<pb::Certificate>;
    async fn change_certificate_status(
        &self,
        r: &pb::ChangeCertificateStatusRequest,
        now: i64,
    ) -> kyso_registry::Result<pb::Certificate>;
    async fn assign_custodian(
        &self,
        r: &pb::AssignCustodianRequest,
        now: i64,
    ) -> kyso_registry::Result<String>;
    async fn create_delegation(
        &self,
        r: &pb::CreateDelegationRequest,
        now: i64,
    ) -> kyso_registry::Result<String>;
}

impl Writes for Store {
    async fn create_organisation(
        &self,
        r: &pb::CreateOrganisationRequest,
        now: i64,
    ) -> kyso_registry::Result<String> {
        let (c, new) = convert::new_organisation(r)?;
        let c = local(c);
        self.book().create_organisation(&c, &new, now).await
    }
    async fn create_person(
        &self,
        r: &pb::CreatePersonRequest,
        now: i64,
    ) -> kyso_registry::Result<String> {
        let (c, new) = convert::new_person(r)?;
        let c = local(c);
        self.book().create_person(&c, &new, now).await
    }
    async fn create_title(
        &self,
        r: &pb::CreateTitleRequest,
        now: i64,
    ) -> kyso_registry::Result<String> {
        let (c, name) = convert::new_title(r)?;
        let c = local(c);
        self.book().create_title(&c, &name, now).await
    }
    async fn create_appointment(
        &self,
        r: &pb::CreateAppointmentRequest,
        now: i64,
    ) -> kyso_registry::Result<String> {
        let (c, new) = convert::new_appointment(r)?;
        let c = local(c);
        self.book().create_appointment(&c, &new, now).await
    }
    async fn create_document_type(
        &self,
        r: &pb::CreateDocumentTypeRequest,
        now: i64,
    ) -> kyso_registry::Result<()> {
        let (c, new) = convert::new_document_type(r)?;
        let c = local(c);
        self.book().create_document_type(&c, &new, now).await
    }
    async fn grant_authority(
        &self,
        r: &pb::GrantAuthorityRequest,
        now: i64,
    ) -> kyso_registry::Result<()> {
        let (c, grants) = convert::grants(r)?;
        let c = local(c);
        self.book().grant_authority(&c, &grants, now).await
    }
    async fn register_certificate(
        &self,
        r: &pb::RegisterCertificateRequest,
        now: i64,
    ) -> kyso_registry::Result<pb::Certificate> {
        let (c, new) = convert::new_certificate(r)?;
        let c = local(c);
        let cert = self.book().register_certificate(&c, &new, now).await?;
        Ok(convert::certificate(cert))
    }
    async fn change_certificate_status(
        &self,
        r: &pb::ChangeCertificateStatusRequest,
        now: i64,
    ) -> kyso_registry::Result<pb::Certificate> {
        let (c, change) = convert::status_change(r)?;
        let c = local(c);
        let cert = self
            .book()
            .change_certificate_status(&c, &change, now)
            .await?;
        Ok(convert::certificate(cert))
    }
    async fn assign_custodian(
        &self,
        r: &pb::AssignCustodianRequest,
        now: i64,
    ) -> kyso_registry::Result<String> {
        let (c, assignment) = convert::custodian_assignment(r)?;
        let c = local(c);
        self.book().assign_custodian(&c, &assignment, now).await
    }
    async fn create_delegation(
        &self,
        r: &pb::CreateDelegationRequest,
        now: i64,
    ) -> kyso_registry::Result<String> {
        let (c, new) = convert::new_delegation(r)?;
        let c = local(c);
        self.book().create_delegation(&c, &new, now).await
    }
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

// ---------------------------------------------------------------------------------------------
// Databases: a temporary SQLite file, or a throwaway PostgreSQL cluster (as in registry.rs)
// ---------------------------------------------------------------------------------------------

struct Database {
    url: String,
    _dir: tempfile::TempDir,
    _pg: Option<PgCluster>,
}

impl Database {
    async fn sqlite() -> Database {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("registry.db").display());
        Database {
            url,
            _dir: dir,
            _pg: None,
        }
    }

    async fn postgres() -> Database {
        let pg = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
        Database {
            url: pg.url.clone(),
            _dir: tempfile::tempdir().unwrap(),
            _pg: Some(pg),
        }
    }

    async fn db(&self) -> Db {
        Db::connect(
            &self.url,
            4,
            Duration::from_secs(10),
            Duration::from_secs(10),
            kyso_registry::metrics::Metrics::new().unwrap().db_duration,
        )
        .await
        .unwrap()
    }

    /// A store answering from SQL.
    async fn sql_store(&self) -> Store {
        Store::new(self.db().await, DOMAIN.into())
    }

    /// The SQL fact source, on its own pool.
    async fn sql_facts(&self) -> SqlFacts {
        SqlFacts::new(&self.db().await)
    }

    /// The index fact source, on its own pool, loaded now: it sees other pools' writes
    /// within [`REMOTE_CHECK`](kyso_registry::authority::index::REMOTE_CHECK).
    async fn index(&self) -> Index {
        Index::load(self.db().await).await.unwrap()
    }

    /// A store answering from the index, loaded now.
    async fn index_store(&self) -> Store {
        Store::new(self.db().await, DOMAIN.into())
            .with_index()
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Seeding through the store
// ---------------------------------------------------------------------------------------------

async fn organisation(s: &Store, name: &str, domain: &str) -> String {
    s.create_organisation(
        &pb::CreateOrganisationRequest {
            change: change(),
            name: name.into(),
            mail_domain: domain.into(),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap()
}

async fn person(s: &Store, name: &str, email: &str, org: &str) -> String {
    s.create_person(
        &pb::CreatePersonRequest {
            change: change(),
            full_name: name.into(),
            email: email.into(),
            organisation_id: org.into(),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap()
}

async fn title(s: &Store, name: &str) -> String {
    s.create_title(
        &pb::CreateTitleRequest {
            change: change(),
            name: name.into(),
        },
        now(),
    )
    .await
    .unwrap()
}

async fn appoint(s: &Store, p: &str, t: &str, org: &str, from: i64, to: Option<i64>) {
    s.create_appointment(
        &pb::CreateAppointmentRequest {
            change: change(),
            person_id: p.into(),
            title_id: t.into(),
            organisation_id: org.into(),
            valid_from: ts(from),
            valid_to: to.and_then(ts),
            decision_ref: "1/QĐ-UBND".into(),
        },
        now(),
    )
    .await
    .unwrap();
}

async fn doc_type(s: &Store, code: &str, class: Classification) {
    s.create_document_type(
        &pb::CreateDocumentTypeRequest {
            change: change(),
            code: code.into(),
            name: code.into(),
            classification: class as i32,
            scanned_issue_allowed: false,
        },
        now(),
    )
    .await
    .unwrap();
}

async fn register(s: &Store, der: Vec<u8>, personal: Option<&str>, org: &str) -> String {
    let kind = if personal.is_some() {
        pb::CertificateKind::Personal
    } else {
        pb::CertificateKind::Organisation
    };
    s.register_certificate(
        &pb::RegisterCertificateRequest {
            change: change(),
            der,
            kind: kind as i32,
            person_id: personal.unwrap_or_default().into(),
            organisation_id: org.into(),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap()
    .fingerprint
}

async fn set_status(
    s: &Store,
    fp: &str,
    status: pb::CertificateStatus,
    at: i64,
) -> kyso_registry::Result<pb::Certificate> {
    let reason = if status == pb::CertificateStatus::Revoked {
        pb::RevocationReason::KeyCompromise
    } else {
        pb::RevocationReason::Unspecified
    };
    s.change_certificate_status(
        &pb::ChangeCertificateStatusRequest {
            change: change(),
            fingerprint: fp.into(),
            status: status as i32,
            reason: reason as i32,
            effective_at: ts(at),
        },
        now(),
    )
    .await
}

async fn custodian(s: &Store, fp: &str, p: &str, at: i64, handover: &str) {
    s.assign_custodian(
        &pb::AssignCustodianRequest {
            change: change(),
            fingerprint: fp.into(),
            person_id: p.into(),
            decision_ref: "7/QĐ-UBND".into(),
            decision_date: ts(at - DAY),
            effective_at: ts(at),
            handover_record: handover.into(),
        },
        now(),
    )
    .await
    .unwrap();
}

#[allow(clippy::too_many_arguments)]
async fn delegate(
    s: &Store,
    org: &str,
    from: &str,
    to: &str,
    mode: SigningMode,
    docs: &[&str],
    valid_from: i64,
    valid_to: i64,
) -> String {
    s.create_delegation(
        &pb::CreateDelegationRequest {
            change: change(),
            organisation_id: org.into(),
            from_person_id: from.into(),
            to_person_id: to.into(),
            mode: mode as i32,
            document_types: docs.iter().map(|d| (*d).to_owned()).collect(),
            decision_ref: "9/QĐ-UBND".into(),
            valid_from: ts(valid_from),
            valid_to: ts(valid_to),
        },
        now(),
    )
    .await
    .unwrap()
}

/// What a random request may name.
struct Province {
    orgs: Vec<String>,
    people: Vec<String>,
    docs: Vec<String>,
    fingerprints: Vec<String>,
    /// (fingerprint, a person who may act with it, its organisation, personal?)
    holders: Vec<(String, String, String, bool)>,
}

/// A random province: organisations, people holding random titles over random windows,
/// grants, personal and organisation certificates with status changes, custodians with
/// handovers, delegations (at most one to each delegate, so "on behalf of" has one answer).
async fn random_province(s: &Store, rng: &mut Rng, dir: &Path) -> Province {
    let t0 = now();
    let orgs = vec![
        organisation(s, "UBND tỉnh Khánh Hòa", "khanhhoa.gov.vn").await,
        organisation(s, "Sở Thông tin và Truyền thông", "sotttt.khanhhoa.gov.vn").await,
        organisation(s, "UBND huyện Khánh Sơn", "khanhson.khanhhoa.gov.vn").await,
    ];
    // Names whose byte order and alphabetical order differ (Ch < Ph < V, Đ after Z in bytes).
    let titles = vec![
        title(s, "Chủ tịch").await,
        title(s, "Phó Chủ tịch").await,
        title(s, "Văn thư").await,
        title(s, "Đại diện").await,
    ];
    let docs = vec!["QD", "CV", "TB", "MAT"];
    for d in &docs[..3] {
        doc_type(s, d, Classification::None).await;
    }
    doc_type(s, "MAT", Classification::Secret).await;

    let mut people = Vec::new();
    for i in 0..14 {
        let home = rng.pick(&orgs).clone();
        let p = person(
            s,
            &format!("Cán bộ {i}"),
            &format!("canbo{i}@{DOMAIN}"),
            &home,
        )
        .await;
        for _ in 0..=rng.below(3) {
            let org = if rng.chance(70) {
                home.clone()
            } else {
                rng.pick(&orgs).clone()
            };
            let from = rng.between(t0 - 2 * YEAR, t0 + YEAR);
            let to = rng.chance(50).then(|| from + rng.between(DAY, 3 * YEAR));
            let t = rng.pick(&titles).clone();
            appoint(s, &p, &t, &org, from, to).await;
        }
        people.push((p, home));
    }

    let mut authorities = Vec::new();
    let mut profiles = Vec::new();
    for o in &orgs {
        for t in &titles {
            for d in &docs[..3] {
                if rng.chance(45) {
                    authorities.push(pb::TitleAuthority {
                        organisation_id: o.clone(),
                        title_id: t.clone(),
                        document_type: (*d).to_owned(),
                    });
                }
            }
        }
        for d in &docs[..3] {
            for p in [Profile::Issue, Profile::Copy, Profile::Received] {
                if rng.chance(40) {
                    profiles.push(pb::OrganisationProfile {
                        organisation_id: o.clone(),
                        document_type: (*d).to_owned(),
                        profile: p as i32,
                    });
                }
            }
        }
    }
    s.grant_authority(
        &pb::GrantAuthorityRequest {
            change: change(),
            title_authorities: authorities,
            organisation_profiles: profiles,
        },
        t0,
    )
    .await
    .unwrap();

    let mut fingerprints = Vec::new();
    let mut holders = Vec::new();
    for (i, (p, home)) in people.iter().enumerate().take(9) {
        let der = self_signed_ec(dir, &format!("person{i}"), rng.between(30, 4 * 365));
        let fp = register(s, der, Some(p), home).await;
        holders.push((fp.clone(), p.clone(), home.clone(), true));
        fingerprints.push(fp);
    }
    for (i, o) in orgs.iter().enumerate() {
        let der = self_signed_ec(dir, &format!("org{i}"), rng.between(30, 4 * 365));
        let fp = register(s, der, None, o).await;
        let members: Vec<&String> = people
            .iter()
            .filter(|(_, h)| h == o)
            .map(|(p, _)| p)
            .collect();
        for m in &members {
            holders.push((fp.clone(), (*m).clone(), o.clone(), false));
        }
        if let Some(first) = members.first() {
            let at = t0 + rng.between(0, 90 * DAY);
            custodian(s, &fp, first, at, "").await;
            if let Some(second) = members.get(1) {
                custodian(s, &fp, second, at + rng.between(DAY, YEAR), "BB-01").await;
            }
        }
        fingerprints.push(fp);
    }
    // Status histories: suspend, reinstate, sometimes revoke, at later and later times.
    for fp in &fingerprints {
        let mut at = t0 + rng.between(0, 200 * DAY);
        for _ in 0..rng.below(4) {
            let target = *rng.pick(&[
                pb::CertificateStatus::Suspended,
                pb::CertificateStatus::Active,
                pb::CertificateStatus::Revoked,
            ]);
            // Refusals (already active, revoked for good) are part of the game.
            let _ = set_status(s, fp, target, at).await;
            at += rng.between(0, 200 * DAY);
        }
    }
    // Delegations: each delegate at most once.
    let mut delegates = people.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    for _ in 0..6 {
        if delegates.len() < 2 {
            break;
        }
        let to = delegates.remove(rng.below(delegates.len()));
        let (from, _) = rng.pick(&people).clone();
        if from == to {
            continue;
        }
        let org = rng.pick(&orgs).clone();
        let mode = *rng.pick(&[SigningMode::Kt, SigningMode::Tl, SigningMode::Tuq]);
        let n = 1 + rng.below(3);
        let from_t = rng.between(t0 - YEAR, t0 + YEAR);
        let to_t = from_t + rng.between(DAY, 2 * YEAR);
        let _ = s
            .create_delegation(
                &pb::CreateDelegationRequest {
                    change: change(),
                    organisation_id: org,
                    from_person_id: from,
                    to_person_id: to,
                    mode: mode as i32,
                    document_types: docs[..n].iter().map(|d| (*d).to_owned()).collect(),
                    decision_ref: "9/QĐ-UBND".into(),
                    valid_from: ts(from_t),
                    valid_to: ts(to_t),
                },
                t0,
            )
            .await;
    }
    Province {
        orgs,
        people: people.into_iter().map(|(p, _)| p).collect(),
        docs: docs.into_iter().map(str::to_owned).collect(),
        fingerprints,
        holders,
    }
}

fn random_authorize(rng: &mut Rng, p: &Province, t0: i64) -> pb::AuthorizeRequest {
    if rng.chance(60) && !p.holders.is_empty() {
        // A request that could be allowed: the holder (or a member, for the seal), the
        // certificate's organisation, a fitting profile, mostly in its own name, near now.
        let (fp, acting, org, personal) = rng.pick(&p.holders).clone();
        let profile = if personal {
            *rng.pick(&[Profile::Approval, Profile::Approval, Profile::Comment])
        } else {
            *rng.pick(&[Profile::Issue, Profile::Copy, Profile::Received])
        };
        let mode = if rng.chance(70) {
            SigningMode::Own
        } else {
            *rng.pick(&[SigningMode::Kt, SigningMode::Tl, SigningMode::Tuq])
        };
        return pb::AuthorizeRequest {
            fingerprint: fp,
            acting_person_id: acting,
            organisation_id: org,
            document_type: rng.pick(&p.docs[..3]).clone(),
            profile: profile as i32,
            mode: mode as i32,
            at: ts(rng.between(t0 - YEAR, t0 + 2 * YEAR)),
        };
    }
    let unknown = |rng: &mut Rng, v: &str, known: &[String]| {
        if rng.chance(3) {
            v.to_owned()
        } else {
            rng.pick(known).clone()
        }
    };
    pb::AuthorizeRequest {
        fingerprint: unknown(rng, &"ab".repeat(32), &p.fingerprints),
        acting_person_id: unknown(rng, "per_nobody", &p.people),
        organisation_id: unknown(rng, "org_nowhere", &p.orgs),
        document_type: unknown(rng, "NOPE", &p.docs),
        profile: rng.below(8) as i32,
        mode: rng.below(5) as i32,
        at: if rng.chance(5) {
            None
        } else {
            ts(rng.between(t0 - 3 * YEAR, t0 + 5 * YEAR))
        },
    }
}

/// Both answers in one comparable text: the decision's every field, or the error.
fn show<T: std::fmt::Debug>(r: &kyso_registry::Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {e}"),
    }
}

async fn index_facts_answer_as_the_sql_facts_over_random_requests(db: Database) {
    let seed = std::env::var("KYSO_INDEX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now() as u64 | 1);
    eprintln!("KYSO_INDEX_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    // The book's writes and the early index share a pool, as in one registry process.
    let pool = db.db().await;
    let book = Store::new(pool.clone(), DOMAIN.into());
    let sql = db.sql_facts().await;
    // Loaded before the province exists: everything arrives through catch-ups.
    let early = Index::load(pool).await.unwrap();
    let province = random_province(&book, &mut rng, dir.path()).await;
    // Loaded after: everything arrives through the full load.
    let late = db.index().await;
    let t0 = now();
    let (mut allowed, mut refused, mut errors) = (0, 0, 0);
    for i in 0..3000 {
        let req = random_authorize(&mut rng, &province, t0);
        let check = pb::CheckAuthorityRequest {
            fingerprint: req.fingerprint.clone(),
            document_type: req.document_type.clone(),
            at: req.at,
        };
        // A request the rules never see (a malformed field) is the same error for both.
        let q = match AuthorizeQuery::parse(&req, t0) {
            Ok(q) => q,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        let want = rules::authorize(&sql, &q).await;
        match &want {
            Ok(d) if d.refusals.is_empty() => allowed += 1,
            Ok(_) => refused += 1,
            Err(_) => errors += 1,
        }
        let want = show(&want);
        for (name, index) in [("early", &early), ("late", &late)] {
            let got = show(&index.authorize(&q).await);
            assert_eq!(
                got, want,
                "authorize #{i} ({name} index, seed {seed}): {req:?}"
            );
        }
        let q = CheckQuery::parse(&check, t0).unwrap();
        let want = show(&rules::check_authority(&sql, &q).await);
        for (name, index) in [("early", &early), ("late", &late)] {
            let got = show(&index.check_authority(&q).await);
            assert_eq!(
                got, want,
                "check #{i} ({name} index, seed {seed}): {check:?}"
            );
        }
    }
    eprintln!("allowed {allowed}, refused {refused}, errors {errors}");
    // The comparison means something only if every kind of answer came up.
    assert!(
        allowed > 20 && refused > 500 && errors > 50,
        "{allowed} {refused} {errors}"
    );
}

/// The store answers from whichever source it has, through the same rules: with and without
/// its index, the same decisions (the service's path, request parsing included).
async fn a_store_answers_alike_with_and_without_its_index(db: Database) {
    let mut rng = Rng(now() as u64 | 1);
    let dir = tempfile::tempdir().unwrap();
    // One pool, as in one registry process: the index sees each write at the next decision.
    let pool = db.db().await;
    let sql = Store::new(pool.clone(), DOMAIN.into());
    let indexed = Store::new(pool, DOMAIN.into()).with_index().await.unwrap();
    let province = random_province(&sql, &mut rng, dir.path()).await;
    let t0 = now();
    for i in 0..300 {
        let req = random_authorize(&mut rng, &province, t0);
        assert_eq!(
            show(&indexed.authorize(&req, t0).await),
            show(&sql.authorize(&req, t0).await),
            "authorize #{i}: {req:?}"
        );
        let check = pb::CheckAuthorityRequest {
            fingerprint: req.fingerprint.clone(),
            document_type: req.document_type.clone(),
            at: req.at,
        };
        assert_eq!(
            show(&indexed.check_authority(&check, t0).await),
            show(&sql.check_authority(&check, t0).await),
            "check #{i}: {check:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Writes are seen by the next decision
// ---------------------------------------------------------------------------------------------

fn approve(fp: &str, acting: &str, org: &str, mode: SigningMode) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        fingerprint: fp.into(),
        acting_person_id: acting.into(),
        organisation_id: org.into(),
        document_type: "QD".into(),
        profile: Profile::Approval as i32,
        mode: mode as i32,
        at: None,
    }
}

async fn refused_by(s: &Store, req: &pb::AuthorizeRequest) -> Vec<&'static str> {
    let d = s.authorize(req, now()).await.unwrap();
    d.refusals.iter().map(|r| r.rule.as_str()).collect()
}

async fn a_write_is_visible_to_the_next_authorize(db: Database) {
    let dir = tempfile::tempdir().unwrap();
    let s = db.index_store().await;
    let t0 = now();
    let ubnd = organisation(&s, "UBND tỉnh Khánh Hòa", DOMAIN).await;
    let chairman_title = title(&s, "Chủ tịch").await;
    let deputy_title = title(&s, "Phó Chủ tịch").await;
    doc_type(&s, "QD", Classification::None).await;
    let chairman = person(&s, "Nguyễn Văn A", "chutich@khanhhoa.gov.vn", &ubnd).await;
    let deputy = person(&s, "Trần Thị B", "phochutich@khanhhoa.gov.vn", &ubnd).await;
    appoint(&s, &chairman, &chairman_title, &ubnd, t0 - YEAR, None).await;
    appoint(&s, &deputy, &deputy_title, &ubnd, t0 - YEAR, None).await;
    // A certificate registered is known to the very next call (not NotFound).
    let fp = register(
        &s,
        self_signed_ec(dir.path(), "chairman", 365),
        Some(&chairman),
        &ubnd,
    )
    .await;
    let deputy_fp = register(
        &s,
        self_signed_ec(dir.path(), "deputy", 365),
        Some(&deputy),
        &ubnd,
    )
    .await;
    assert_eq!(
        refused_by(&s, &approve(&fp, &chairman, &ubnd, SigningMode::Own)).await,
        vec!["A3"],
        "no grant yet"
    );
    s.grant_authority(
        &pb::GrantAuthorityRequest {
            change: change(),
            title_authorities: vec![pb::TitleAuthority {
                organisation_id: ubnd.clone(),
                title_id: chairman_title.clone(),
                document_type: "QD".into(),
            }],
            organisation_profiles: vec![],
        },
        now(),
    )
    .await
    .unwrap();
    let own = approve(&fp, &chairman, &ubnd, SigningMode::Own);
    assert!(refused_by(&s, &own).await.is_empty(), "granted");
    // Suspended now: refused by the next call; reinstated: allowed again (N7).
    set_status(&s, &fp, pb::CertificateStatus::Suspended, now())
        .await
        .unwrap();
    assert_eq!(refused_by(&s, &own).await, vec!["N7"]);
    set_status(&s, &fp, pb::CertificateStatus::Active, now())
        .await
        .unwrap();
    assert!(refused_by(&s, &own).await.is_empty(), "reinstated");
    // A delegation is in force for the next call (A2).
    let kt = approve(&deputy_fp, &deputy, &ubnd, SigningMode::Kt);
    assert_eq!(refused_by(&s, &kt).await, vec!["A2"]);
    delegate(
        &s,
        &ubnd,
        &chairman,
        &deputy,
        SigningMode::Kt,
        &["QD"],
        now() - DAY,
        now() + YEAR,
    )
    .await;
    let d = s.authorize(&kt, now()).await.unwrap();
    assert!(d.refusals.is_empty(), "{d:?}");
    assert_eq!(d.on_behalf_of, "Nguyễn Văn A");

    // Another process (a second registry replica on the same database) revokes the
    // certificate: this index sees it within its staleness bound, from the event log.
    let replica = db.sql_store().await;
    set_status(&replica, &fp, pb::CertificateStatus::Revoked, now())
        .await
        .unwrap();
    tokio::time::sleep(kyso_registry::authority::index::REMOTE_CHECK + Duration::from_millis(50))
        .await;
    assert_eq!(
        refused_by(&s, &own).await,
        vec!["V3"],
        "the replica's revocation"
    );
}

// ---------------------------------------------------------------------------------------------
// Both backends
// ---------------------------------------------------------------------------------------------

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Database::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Database::postgres().await).await
                }
            )*
        }
    };
}

on_both_backends!(
    index_facts_answer_as_the_sql_facts_over_random_requests,
    a_store_answers_alike_with_and_without_its_index,
    a_write_is_visible_to_the_next_authorize,
);
