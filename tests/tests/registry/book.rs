//! End-to-end tests of the registry: `kyso_registry::serve` in-process on loopback listeners
//! with a temporary SQLite file, a sample province seeded through the gRPC management calls
//! (Khánh Hòa People's Committee: the Chairman with a personal certificate, the organisation
//! certificate kept by the clerk), and tonic clients as the signer and the verifier.
//!
//! Test names carry the DOMAIN.md rule they check. Certificates are the test PKI's leaves, or
//! self-signed ones made with the openssl CLI when a test needs particular validity dates
//! (the registry indexes certificates; it does not build paths).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_proto::signer::v1::{Classification, Profile, SigningMode};
use kyso_registry::{Config, Listeners, serve, system_clock};
use kyso_tests::TestPki;
use kyso_tests::pg::PgCluster;
use kyso_tests::self_signed_ec;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

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

fn change(reason: &str) -> Option<pb::Change> {
    Some(pb::Change {
        actor: "subscriber-manager@sotttt.khanhhoa.gov.vn".into(),
        reason: reason.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------------

struct Service {
    client: RegistryClient<Channel>,
    grpc_addr: SocketAddr,
    database_url: String,
    /// Dropped after the service: the cluster outlives the pool using it.
    _postgres: Option<PgCluster>,
    metrics_addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<kyso_registry::Result<()>>>,
}

impl Service {
    async fn start_sqlite() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("registry.db").display());
        Self::start_on(dir, url, None).await
    }

    async fn start_postgres() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let pg = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
        let url = pg.url.clone();
        Self::start_on(dir, url, Some(pg)).await
    }

    async fn start_on(
        dir: tempfile::TempDir,
        database_url: String,
        pg: Option<PgCluster>,
    ) -> Service {
        let config = Config {
            database_url: database_url.clone(),
            mail_domain: DOMAIN.into(),
            ..Config::default()
        };
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap();
        let metrics_addr = metrics.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            Listeners {
                grpc,
                metrics: Some(metrics),
            },
            system_clock(),
            async move {
                let _ = rx.await;
            },
        ));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10));
        // The listener is bound already; retry only while the database migrates.
        let mut client = None;
        for _ in 0..100 {
            match channel.connect().await {
                Ok(c) => {
                    client = Some(RegistryClient::new(c));
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Service {
            client: client.expect("the registry accepts connections"),
            grpc_addr: addr,
            database_url,
            _postgres: pg,
            metrics_addr,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn c(&self) -> RegistryClient<Channel> {
        self.client.clone()
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the registry stops")
                .unwrap()
                .unwrap();
        }
    }

    async fn events(&self) -> Vec<pb::Event> {
        self.c()
            .list_events(pb::ListEventsRequest {
                after_seq: 0,
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner()
            .events
    }
}

// ---------------------------------------------------------------------------------------------
// A throwaway PostgreSQL cluster
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Certificates made for a test
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The sample province
// ---------------------------------------------------------------------------------------------

/// Khánh Hòa People's Committee, as the seeds describe it.
struct Province {
    ubnd: String,
    sotttt: String,
    chairman: String,
    deputy: String,
    clerk: String,
    outsider: String,
    chairman_title: String,
    deputy_title: String,
    /// The Chairman's personal certificate (test PKI leaf `personal-rsa`).
    chairman_cert: String,
    /// The deputy's personal certificate (leaf `personal-ec256`).
    deputy_cert: String,
    /// The organisation certificate (leaf `org-rsa`), kept by the clerk.
    org_cert: String,
}

async fn create_person(
    c: &mut RegistryClient<Channel>,
    name: &str,
    email: &str,
    org: &str,
    service_end: Option<i64>,
) -> String {
    c.create_person(pb::CreatePersonRequest {
        change: change("staff list"),
        full_name: name.into(),
        email: email.into(),
        organisation_id: org.into(),
        service_end: service_end.and_then(ts),
    })
    .await
    .unwrap()
    .into_inner()
    .id
}

async fn appoint(c: &mut RegistryClient<Channel>, person: &str, title: &str, org: &str) {
    c.create_appointment(pb::CreateAppointmentRequest {
        change: change("appointment"),
        person_id: person.into(),
        title_id: title.into(),
        organisation_id: org.into(),
        valid_from: ts(now() - YEAR),
        valid_to: None,
        decision_ref: "123/QĐ-UBND".into(),
    })
    .await
    .unwrap();
}

async fn register(
    c: &mut RegistryClient<Channel>,
    der: Vec<u8>,
    kind: pb::CertificateKind,
    person: &str,
    org: &str,
) -> Result<pb::Certificate, Status> {
    c.register_certificate(pb::RegisterCertificateRequest {
        change: change("issued by the CA"),
        der,
        kind: kind as i32,
        person_id: person.into(),
        organisation_id: org.into(),
        renewal_of: String::new(),
    })
    .await
    .map(|r| r.into_inner().certificate.unwrap())
}

async fn seed(svc: &Service) -> Province {
    let mut c = svc.c();
    let pki = TestPki::get();
    let sotttt = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: "Sở Thông tin và Truyền thông tỉnh Khánh Hòa".into(),
            parent_id: String::new(),
            managing_agency_id: String::new(),
            mail_domain: "sotttt.khanhhoa.gov.vn".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    // I6: the provincial department manages the People's Committee's subscribers.
    let ubnd = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: "Ủy ban nhân dân tỉnh Khánh Hòa".into(),
            parent_id: String::new(),
            managing_agency_id: sotttt.clone(),
            mail_domain: DOMAIN.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let title = |name: &'static str| {
        let mut c = c.clone();
        async move {
            c.create_title(pb::CreateTitleRequest {
                change: change("titles"),
                name: name.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .id
        }
    };
    let chairman_title = title("Chủ tịch").await;
    let deputy_title = title("Phó Chủ tịch").await;
    let clerk_title = title("Văn thư").await;

    let five_years = Some(now() + 5 * YEAR);
    let chairman = create_person(
        &mut c,
        "Nguyễn Văn An",
        "an.nv@khanhhoa.gov.vn",
        &ubnd,
        five_years,
    )
    .await;
    let deputy = create_person(
        &mut c,
        "Trần Thị Bình",
        "binh.tt@khanhhoa.gov.vn",
        &ubnd,
        five_years,
    )
    .await;
    let clerk = create_person(
        &mut c,
        "Lê Văn Cường",
        "cuong.lv@khanhhoa.gov.vn",
        &ubnd,
        five_years,
    )
    .await;
    let outsider = create_person(
        &mut c,
        "Phạm Thị Dung",
        "dung.pt@sotttt.khanhhoa.gov.vn",
        &sotttt,
        five_years,
    )
    .await;
    appoint(&mut c, &chairman, &chairman_title, &ubnd).await;
    appoint(&mut c, &deputy, &deputy_title, &ubnd).await;
    appoint(&mut c, &clerk, &clerk_title, &ubnd).await;

    for (code, name, class) in [
        ("QD", "Quyết định", Classification::None),
        ("CV", "Công văn", Classification::None),
        ("MAT", "Công văn mật", Classification::Secret),
    ] {
        c.create_document_type(pb::CreateDocumentTypeRequest {
            change: change("document types"),
            code: code.into(),
            name: name.into(),
            classification: class as i32,
        })
        .await
        .unwrap();
    }
    let ta = |title: &str, doc: &str| pb::TitleAuthority {
        organisation_id: ubnd.clone(),
        title_id: title.into(),
        document_type: doc.into(),
    };
    let op = |doc: &str, profile: Profile| pb::OrganisationProfile {
        organisation_id: ubnd.clone(),
        document_type: doc.into(),
        profile: profile as i32,
    };
    c.grant_authority(pb::GrantAuthorityRequest {
        change: change("working rules of the People's Committee"),
        title_authorities: vec![
            ta(&chairman_title, "QD"),
            ta(&chairman_title, "CV"),
            ta(&deputy_title, "CV"),
        ],
        organisation_profiles: vec![
            op("QD", Profile::Issue),
            op("CV", Profile::Issue),
            op("QD", Profile::Copy),
        ],
    })
    .await
    .unwrap();

    let chairman_cert = register(
        &mut c,
        pki.leaf_der("personal-rsa"),
        pb::CertificateKind::Personal,
        &chairman,
        "",
    )
    .await
    .unwrap()
    .fingerprint;
    let deputy_cert = register(
        &mut c,
        pki.leaf_der("personal-ec256"),
        pb::CertificateKind::Personal,
        &deputy,
        "",
    )
    .await
    .unwrap()
    .fingerprint;
    let org_cert = register(
        &mut c,
        pki.leaf_der("org-rsa"),
        pb::CertificateKind::Organisation,
        "",
        &ubnd,
    )
    .await
    .unwrap()
    .fingerprint;
    c.assign_custodian(pb::AssignCustodianRequest {
        change: change("custodian of the seal"),
        fingerprint: org_cert.clone(),
        person_id: clerk.clone(),
        decision_ref: "45/QĐ-UBND".into(),
        decision_date: ts(now() - DAY),
        handover_record: String::new(),
        effective_at: None,
    })
    .await
    .unwrap();
    Province {
        ubnd,
        sotttt,
        chairman,
        deputy,
        clerk,
        outsider,
        chairman_title,
        deputy_title,
        chairman_cert,
        deputy_cert,
        org_cert,
    }
}

fn authorize_req(
    fp: &str,
    acting: &str,
    org: &str,
    doc: &str,
    profile: Profile,
    mode: SigningMode,
) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        fingerprint: fp.into(),
        acting_person_id: acting.into(),
        organisation_id: org.into(),
        document_type: doc.into(),
        profile: profile as i32,
        mode: mode as i32,
        at: None,
    }
}

async fn authorize(svc: &Service, req: pb::AuthorizeRequest) -> pb::AuthorizeResponse {
    svc.c().authorize(req).await.unwrap().into_inner()
}

fn rules(r: &pb::AuthorizeResponse) -> Vec<&str> {
    r.refusals.iter().map(|x| x.rule.as_str()).collect()
}

/// The rule IDs of a status's PreconditionFailure violations.
fn status_rules(s: &Status) -> Vec<String> {
    s.get_details_precondition_failure()
        .map(|p| p.violations.iter().map(|v| v.r#type.clone()).collect())
        .unwrap_or_default()
}

fn bad_fields(s: &Status) -> Vec<String> {
    s.get_details_bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Authorize: the signer's question
// ---------------------------------------------------------------------------------------------

async fn chairman_approves_a_decision_with_his_own_certificate_A2_A3(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(r.allowed, "{:?}", r.refusals);
    assert_eq!(r.title, "Chủ tịch");
    assert_eq!(r.holder_name, "Nguyễn Văn An");
    svc.stop().await;
}

async fn personal_certificate_used_by_someone_else_is_refused_A1(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(!r.allowed);
    assert!(rules(&r).contains(&"A1"), "{:?}", r.refusals);
    svc.stop().await;
}

async fn title_without_authority_for_the_document_type_is_refused_A3(svc: Service) {
    let p = seed(&svc).await;
    // The deputy may sign official letters (CV) but not decisions (QD).
    let ok = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "CV",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(ok.allowed, "{:?}", ok.refusals);
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A3"]);
    // No title at all in another organisation.
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.sotttt,
            "CV",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A3"]);
    svc.stop().await;
}

async fn organisation_certificate_is_used_by_its_custodian_only_A5(svc: Service) {
    let p = seed(&svc).await;
    let ok = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(ok.allowed, "{:?}", ok.refusals);
    assert_eq!(ok.holder_name, "Ủy ban nhân dân tỉnh Khánh Hòa");
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A5"]);
    svc.stop().await;
}

async fn organisation_certificate_only_for_allowed_profiles_A4(svc: Service) {
    let p = seed(&svc).await;
    // COPY is allowed for decisions, not for letters; APPROVAL is never the seal's.
    let ok = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Copy,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(ok.allowed, "{:?}", ok.refusals);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "CV",
            Profile::Copy,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A4"]);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.sotttt,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A4"), "{:?}", r.refusals);
    // A personal certificate cannot stand in for the seal.
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A4"), "{:?}", r.refusals);
    svc.stop().await;
}

async fn classified_documents_are_never_signed_A7(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "MAT",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(!r.allowed);
    assert!(rules(&r).contains(&"A7"), "{:?}", r.refusals);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "MAT",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A7"), "{:?}", r.refusals);
    // No authority over a classified type can even be granted.
    let err = svc
        .c()
        .grant_authority(pb::GrantAuthorityRequest {
            change: change("try"),
            title_authorities: vec![pb::TitleAuthority {
                organisation_id: p.ubnd.clone(),
                title_id: p.chairman_title.clone(),
                document_type: "MAT".into(),
            }],
            organisation_profiles: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A7"]);
    svc.stop().await;
}

async fn a_refusal_lists_every_failed_rule_A1_A4_A7(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.clerk,
            &p.ubnd,
            "MAT",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    let got = rules(&r);
    for want in ["A1", "A4", "A7"] {
        assert!(got.contains(&want), "{want} missing from {:?}", r.refusals);
    }
    assert!(r.refusals.iter().all(|x| !x.reason.is_empty()));
    svc.stop().await;
}

async fn deputy_signs_on_behalf_of_the_chairman_only_under_a_delegation_KT_A2(svc: Service) {
    let p = seed(&svc).await;
    let req = authorize_req(
        &p.deputy_cert,
        &p.deputy,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Kt,
    );
    let r = authorize(&svc, req.clone()).await;
    assert_eq!(rules(&r), vec!["A2"]);
    svc.c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("KT. Chủ tịch"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.deputy.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["QD".into()],
            decision_ref: "77/QĐ-UBND".into(),
            valid_from: ts(now() - DAY),
            valid_to: ts(now() + 30 * DAY),
        })
        .await
        .unwrap();
    let r = authorize(&svc, req.clone()).await;
    assert!(r.allowed, "{:?}", r.refusals);
    assert_eq!(r.on_behalf_of, "Nguyễn Văn An");
    // The delegation is KT only, for QD only, and in force only in its window.
    let mut tl = req.clone();
    tl.mode = SigningMode::Tl as i32;
    assert_eq!(rules(&authorize(&svc, tl).await), vec!["A2"]);
    let mut later = req.clone();
    later.at = ts(now() + 60 * DAY);
    assert_eq!(rules(&authorize(&svc, later).await), vec!["A2"]);
    // The delegate signs with their own certificate, never with the Chairman's (A1, A2).
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Kt,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A1"), "{:?}", r.refusals);
    svc.stop().await;
}

async fn delegation_to_oneself_is_refused_A2(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    let err = svc
        .c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("self"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.chairman.clone(),
            mode: SigningMode::Tuq as i32,
            document_types: vec!["QD".into()],
            decision_ref: "1/QĐ".into(),
            valid_from: ts(now()),
            valid_to: ts(now() + DAY),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A2"]);
    assert_eq!(bad_fields(&err), vec!["to_person_id"]);
    assert_eq!(svc.events().await.len(), before);
    svc.stop().await;
}

async fn delegation_cycle_is_refused_A2(svc: Service) {
    let p = seed(&svc).await;
    let d = |from: &str, to: &str| pb::CreateDelegationRequest {
        change: change("delegation"),
        organisation_id: p.ubnd.clone(),
        from_person_id: from.into(),
        to_person_id: to.into(),
        mode: SigningMode::Tl as i32,
        document_types: vec!["CV".into()],
        decision_ref: "9/QĐ".into(),
        valid_from: ts(now()),
        valid_to: ts(now() + 30 * DAY),
    };
    svc.c()
        .create_delegation(d(&p.chairman, &p.deputy))
        .await
        .unwrap();
    svc.c()
        .create_delegation(d(&p.deputy, &p.clerk))
        .await
        .unwrap();
    let err = svc
        .c()
        .create_delegation(d(&p.clerk, &p.chairman))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["A2"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Status: suspension, reinstatement, revocation
// ---------------------------------------------------------------------------------------------

async fn set_status(
    svc: &Service,
    fp: &str,
    status: pb::CertificateStatus,
    reason: pb::RevocationReason,
    effective_at: Option<i64>,
) -> Result<pb::Certificate, Status> {
    svc.c()
        .change_certificate_status(pb::ChangeCertificateStatusRequest {
            change: change("status"),
            fingerprint: fp.into(),
            status: status as i32,
            reason: reason as i32,
            effective_at: effective_at.and_then(ts),
        })
        .await
        .map(|r| r.into_inner().certificate.unwrap())
}

async fn suspended_certificate_is_refused_until_reinstated_N7(svc: Service) {
    let p = seed(&svc).await;
    let req = authorize_req(
        &p.chairman_cert,
        &p.chairman,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Own,
    );
    let t0 = now();
    let c = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Suspended,
        pb::RevocationReason::Unspecified,
        Some(t0 - 100),
    )
    .await
    .unwrap();
    assert_eq!(c.status, pb::CertificateStatus::Suspended as i32);
    assert_eq!(rules(&authorize(&svc, req.clone()).await), vec!["N7"]);
    // Suspending twice is refused.
    let err = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Suspended,
        pb::RevocationReason::Unspecified,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["N7"]);
    set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Active,
        pb::RevocationReason::Unspecified,
        Some(t0),
    )
    .await
    .unwrap();
    assert!(authorize(&svc, req.clone()).await.allowed);
    // The history still answers for the time of the hold, and before it.
    let mut during = req.clone();
    during.at = ts(t0 - 50);
    assert_eq!(rules(&authorize(&svc, during).await), vec!["N7"]);
    let mut before = req.clone();
    before.at = ts(t0 - 1000);
    assert!(authorize(&svc, before).await.allowed);
    svc.stop().await;
}

async fn revocation_needs_a_reason_and_is_permanent_V4_V3(svc: Service) {
    let p = seed(&svc).await;
    let err = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::Unspecified,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["V4"]);
    let c = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::LeftService,
        None,
    )
    .await
    .unwrap();
    assert_eq!(c.status, pb::CertificateStatus::Revoked as i32);
    assert_eq!(
        c.history.last().unwrap().reason,
        pb::RevocationReason::LeftService as i32
    );
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["V3"]);
    let err = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Active,
        pb::RevocationReason::Unspecified,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["V3"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Issuing and renewing
// ---------------------------------------------------------------------------------------------

async fn renew(
    svc: &Service,
    der: Vec<u8>,
    person: &str,
    old_fp: &str,
) -> Result<pb::Certificate, Status> {
    svc.c()
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("renewal"),
            der,
            kind: pb::CertificateKind::Personal as i32,
            person_id: person.into(),
            organisation_id: String::new(),
            renewal_of: old_fp.into(),
        })
        .await
        .map(|r| r.into_inner().certificate.unwrap())
}

async fn rejects_renewal_with_less_than_60_days_left_I3(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let old = register(
        &mut svc.c(),
        self_signed_ec(dir, "old30", 30),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let before = svc.events().await.len();
    let err = renew(
        &svc,
        self_signed_ec(dir, "new", 400),
        &p.outsider,
        &old.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I3"]);
    assert_eq!(svc.events().await.len(), before);
    svc.stop().await;
}

async fn renewal_only_once_I3(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let a = register(
        &mut svc.c(),
        self_signed_ec(dir, "a", 365),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let b = renew(
        &svc,
        self_signed_ec(dir, "b", 700),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap();
    assert_eq!(b.renewal_count, 1);
    assert_eq!(b.renewal_of, a.fingerprint);
    let err = renew(
        &svc,
        self_signed_ec(dir, "c", 800),
        &p.outsider,
        &b.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I3"]);
    let err = renew(
        &svc,
        self_signed_ec(dir, "d", 800),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I3"]);
    svc.stop().await;
}

async fn renewal_of_a_revoked_certificate_is_refused_V3(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let a = register(
        &mut svc.c(),
        self_signed_ec(dir, "a", 365),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    set_status(
        &svc,
        &a.fingerprint,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::KeyCompromise,
        None,
    )
    .await
    .unwrap();
    let err = renew(
        &svc,
        self_signed_ec(dir, "b", 700),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["V3"]);
    svc.stop().await;
}

async fn new_certificate_at_most_five_years_and_renewal_adds_at_most_three_N4(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let err = register(
        &mut svc.c(),
        self_signed_ec(dir, "long", 5 * 365 + 10),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["N4"]);
    let a = register(
        &mut svc.c(),
        self_signed_ec(dir, "a", 365),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let err = renew(
        &svc,
        self_signed_ec(dir, "b", 365 + 3 * 365 + 10),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["N4"]);
    svc.stop().await;
}

async fn new_certificate_needs_a_mail_account_in_the_domain_I1(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let gmail = create_person(
        &mut c,
        "Hoàng Văn Em",
        "em.hv@gmail.com",
        &p.ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    let err = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "em", 365),
        pb::CertificateKind::Personal,
        &gmail,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I1"]);
    svc.stop().await;
}

async fn no_new_certificate_with_less_than_six_months_of_service_I2(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let retiring = create_person(
        &mut c,
        "Võ Văn Giàu",
        "giau.vv@khanhhoa.gov.vn",
        &p.ubnd,
        Some(now() + 120 * DAY),
    )
    .await;
    let err = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "giau", 365),
        pb::CertificateKind::Personal,
        &retiring,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I2"]);
    svc.stop().await;
}

async fn no_new_certificate_for_an_organisation_pending_a_change_I2(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    c.set_organisation_status(pb::SetOrganisationStatusRequest {
        change: change("merger decided"),
        organisation_id: p.sotttt.clone(),
        status: pb::OrganisationStatus::PendingMerger as i32,
        decision_ref: "12/NQ-HĐND".into(),
    })
    .await
    .unwrap();
    let err = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "org", 365),
        pb::CertificateKind::Organisation,
        "",
        &p.sotttt,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I2"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Custodians (A5)
// ---------------------------------------------------------------------------------------------

async fn custodian_must_belong_to_the_organisation_and_changes_need_a_handover_A5(svc: Service) {
    let p = seed(&svc).await;
    let assign = |person: &str, handover: &str| pb::AssignCustodianRequest {
        change: change("custodian"),
        fingerprint: p.org_cert.clone(),
        person_id: person.into(),
        decision_ref: "46/QĐ-UBND".into(),
        decision_date: ts(now() - 10),
        handover_record: handover.into(),
        effective_at: None,
    };
    let err = svc
        .c()
        .assign_custodian(assign(&p.outsider, "BB-01"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["A5"]);
    let err = svc
        .c()
        .assign_custodian(assign(&p.deputy, ""))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), vec!["A5"]);
    assert_eq!(bad_fields(&err), vec!["handover_record"]);
    let mut no_decision = assign(&p.deputy, "BB-01");
    no_decision.decision_ref.clear();
    let err = svc.c().assign_custodian(no_decision).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A5"]);
    // With a decision and a handover record the seal passes to the deputy.
    svc.c()
        .assign_custodian(assign(&p.deputy, "BB-01"))
        .await
        .unwrap();
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A5"]);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(r.allowed, "{:?}", r.refusals);
    // A personal certificate has no custodian (A1).
    let mut personal = assign(&p.clerk, "BB-02");
    personal.fingerprint = p.chairman_cert.clone();
    let err = svc.c().assign_custodian(personal).await.unwrap_err();
    assert_eq!(status_rules(&err), vec!["A1"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// CheckAuthority and lookups (the verifier's questions)
// ---------------------------------------------------------------------------------------------

async fn check_authority_answers_for_the_signing_time_A3(svc: Service) {
    let p = seed(&svc).await;
    let r = svc
        .c()
        .check_authority(pb::CheckAuthorityRequest {
            fingerprint: p.chairman_cert.clone(),
            document_type: "QD".into(),
            at: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.authorised, "{:?}", r.refusals);
    assert_eq!(r.title, "Chủ tịch");
    assert_eq!(r.kind, pb::CertificateKind::Personal as i32);
    assert_eq!(r.status, pb::CertificateStatus::Active as i32);
    // Two years ago the appointment had not started (and the certificate was not yet valid).
    let r = svc
        .c()
        .check_authority(pb::CheckAuthorityRequest {
            fingerprint: p.chairman_cert.clone(),
            document_type: "QD".into(),
            at: ts(now() - 2 * YEAR),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.authorised);
    let got: Vec<&str> = r.refusals.iter().map(|x| x.rule.as_str()).collect();
    assert!(got.contains(&"A3") && got.contains(&"V1"), "{got:?}");
    svc.stop().await;
}

async fn certificate_lookups_by_fingerprint_issuer_serial_and_expiry(svc: Service) {
    let p = seed(&svc).await;
    let pki = TestPki::get();
    let mut c = svc.c();
    let by_fp = c
        .get_certificate(pb::GetCertificateRequest {
            by: Some(pb::get_certificate_request::By::Fingerprint(
                p.chairman_cert.to_uppercase(),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(by_fp.serial, pki.serial("personal-rsa"));
    assert_eq!(by_fp.person_id, p.chairman);
    let by_is = c
        .get_certificate(pb::GetCertificateRequest {
            by: Some(pb::get_certificate_request::By::IssuerSerial(
                pb::IssuerSerial {
                    issuer: by_fp.issuer.clone(),
                    serial: pki.serial("personal-rsa").to_lowercase(),
                },
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(by_is.fingerprint, p.chairman_cert);

    let short = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "short", 30),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let expiring = c
        .list_expiring_certificates(pb::ListExpiringCertificatesRequest {
            within_days: 60,
            at: None,
        })
        .await
        .unwrap()
        .into_inner()
        .certificates;
    let fps: Vec<&str> = expiring.iter().map(|c| c.fingerprint.as_str()).collect();
    assert_eq!(fps, vec![short.fingerprint.as_str()]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

async fn unknown_ids_are_not_found(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let err = c
        .create_appointment(pb::CreateAppointmentRequest {
            change: change("x"),
            person_id: "per_nobody".into(),
            title_id: p.chairman_title.clone(),
            organisation_id: p.ubnd.clone(),
            valid_from: ts(now()),
            valid_to: None,
            decision_ref: "1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .authorize(authorize_req(
            &"00".repeat(32),
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .authorize(authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "NOPE",
            Profile::Approval,
            SigningMode::Own,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("x"),
            name: "UBND huyện Khánh Sơn".into(),
            parent_id: "org_missing".into(),
            managing_agency_id: String::new(),
            mail_domain: "khanhson.khanhhoa.gov.vn".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    svc.stop().await;
}

async fn duplicate_certificate_already_exists(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    let err = register(
        &mut svc.c(),
        TestPki::get().leaf_der("personal-rsa"),
        pb::CertificateKind::Personal,
        &p.chairman,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(svc.events().await.len(), before);
    svc.stop().await;
}

async fn non_der_certificate_is_invalid_argument_with_field_violation(svc: Service) {
    let p = seed(&svc).await;
    let pem = std::fs::read(TestPki::get().leaf_cert("personal-pss")).unwrap();
    for der in [b"not a certificate".to_vec(), pem, Vec::new()] {
        let err = register(
            &mut svc.c(),
            der,
            pb::CertificateKind::Personal,
            &p.chairman,
            "",
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&err), vec!["der"]);
    }
    // Impossible dates name their field too.
    let err = svc
        .c()
        .create_appointment(pb::CreateAppointmentRequest {
            change: change("x"),
            person_id: p.chairman.clone(),
            title_id: p.chairman_title.clone(),
            organisation_id: p.ubnd.clone(),
            valid_from: ts(now()),
            valid_to: ts(now() - DAY),
            decision_ref: "1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    // Every change names its actor.
    let err = svc
        .c()
        .create_title(pb::CreateTitleRequest {
            change: None,
            name: "Giám đốc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Transactions and the event log
// ---------------------------------------------------------------------------------------------

async fn failed_multi_row_change_leaves_no_rows_and_no_event(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await;
    // Two good grants, then one naming an unknown document type: nothing is written.
    let err = svc
        .c()
        .grant_authority(pb::GrantAuthorityRequest {
            change: change("grants"),
            title_authorities: vec![
                pb::TitleAuthority {
                    organisation_id: p.ubnd.clone(),
                    title_id: p.deputy_title.clone(),
                    document_type: "QD".into(),
                },
                pb::TitleAuthority {
                    organisation_id: p.ubnd.clone(),
                    title_id: p.deputy_title.clone(),
                    document_type: "NOPE".into(),
                },
            ],
            organisation_profiles: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(
        rules(&r),
        vec!["A3"],
        "the first grant must not have been kept"
    );
    // A delegation row is written before its document types: an unknown type rolls it back.
    let err = svc
        .c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("delegation"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.deputy.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["QD".into(), "NOPE".into()],
            decision_ref: "78/QĐ-UBND".into(),
            valid_from: ts(now() - DAY),
            valid_to: ts(now() + DAY),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Kt,
        ),
    )
    .await;
    assert_eq!(
        rules(&r),
        vec!["A2"],
        "the delegation must not have been kept"
    );
    let after = svc.events().await;
    assert_eq!(after.len(), before.len());
    // The database file agrees: no orphan delegation rows (read through a second pool).
    let db = kyso_registry::storage::Db::connect(
        &svc.database_url,
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
        kyso_registry::metrics::Metrics::new().unwrap().db_duration,
    )
    .await
    .unwrap();
    for table in ["delegations", "delegation_document_types"] {
        let n = db.count_rows(table).await.unwrap();
        assert_eq!(n, 0, "{table}");
    }
    svc.stop().await;
}

async fn every_change_has_one_event_in_order_with_actor_and_reason(svc: Service) {
    let _p = seed(&svc).await;
    let events = svc.events().await;
    // 2 organisations, 3 titles, 4 people, 3 appointments, 3 document types, 1 grant,
    // 3 certificates, 1 custodian.
    assert_eq!(events.len(), 20);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert!(!e.actor.is_empty() && !e.reason.is_empty());
        serde_json::from_str::<serde_json::Value>(&e.change_json).unwrap();
    }
    assert_eq!(events.last().unwrap().kind, "custodian.assigned");
    svc.stop().await;
}

async fn concurrent_writers_and_authorizations_lose_nothing(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut c = svc.c();
        let ubnd = p.ubnd.clone();
        tasks.push(tokio::spawn(async move {
            c.create_person(pb::CreatePersonRequest {
                change: change("bulk"),
                full_name: format!("Cán bộ {i}"),
                email: format!("canbo{i}@khanhhoa.gov.vn"),
                organisation_id: ubnd,
                service_end: None,
            })
            .await
            .map(|_| ())
        }));
        let mut c = svc.c();
        let req = authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        );
        tasks.push(tokio::spawn(async move {
            let r = c.authorize(req).await?.into_inner();
            assert!(r.allowed);
            Ok(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let events = svc.events().await;
    assert_eq!(events.len(), before + 24);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "gapless, ordered");
    }
    svc.stop().await;
}

async fn health_reflection_and_metrics_with_decisions_by_rule(svc: Service) {
    let p = seed(&svc).await;
    let _ = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    let addr = svc.metrics_addr;
    let resp = tokio::task::spawn_blocking(move || {
        kyso_tests::exchange(addr, "GET", "/metrics", None, b"", Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status, 200);
    let body = String::from_utf8_lossy(&resp.body);
    assert!(
        body.contains(
            r#"kyso_registry_decisions_total{decision="deny",method="Authorize",rule="A1"} 1"#
        ),
        "{body}"
    );
    assert!(body.contains("kyso_registry_db_duration_seconds"), "{body}");
    assert!(
        body.contains(
            r#"kyso_registry_requests_total{method="RegisterCertificate",outcome="ok"} 3"#
        )
    );

    // Health answers SERVING for the registry; reflection lists it.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", svc.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kyso.registry.v1.Registry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(channel);
    let mut stream = refl
        .server_reflection_info(futures::stream::iter([
            tonic_reflection::pb::v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "kyso.registry.v1.Registry")
    );
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The event log replays to the same state
// ---------------------------------------------------------------------------------------------

/// A string field of an event's change JSON; empty when absent or null.
fn jstr(v: &serde_json::Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// A time field (Unix seconds) of an event's change JSON.
fn jts(v: &serde_json::Value, key: &str) -> Option<prost_types::Timestamp> {
    v[key].as_i64().and_then(ts)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Rebuilds a registry from another's event log through the management calls, each event
/// reconstructed from its kind and change JSON. The fresh registry makes its own IDs; the
/// answer maps the original IDs to them.
async fn replay(events: &[pb::Event], into: &Service) -> std::collections::HashMap<String, String> {
    let mut ids = std::collections::HashMap::<String, String>::new();
    let mut c = into.c();
    for e in events {
        let v: serde_json::Value = serde_json::from_str(&e.change_json).unwrap();
        let change = Some(pb::Change {
            actor: e.actor.clone(),
            reason: e.reason.clone(),
        });
        let id = |ids: &std::collections::HashMap<String, String>, key: &str| {
            let old = jstr(&v, key);
            ids.get(&old).cloned().unwrap_or(old)
        };
        let new_id = match e.kind.as_str() {
            "organisation.created" => Some(
                c.create_organisation(pb::CreateOrganisationRequest {
                    change,
                    name: jstr(&v, "name"),
                    parent_id: id(&ids, "parent_id"),
                    managing_agency_id: id(&ids, "managing_agency_id"),
                    mail_domain: jstr(&v, "mail_domain"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "organisation.status_changed" => {
                let status = format!("ORGANISATION_STATUS_{}", jstr(&v, "status").to_uppercase());
                c.set_organisation_status(pb::SetOrganisationStatusRequest {
                    change,
                    organisation_id: ids[&e.entity_id].clone(),
                    status: pb::OrganisationStatus::from_str_name(&status).unwrap() as i32,
                    decision_ref: jstr(&v, "decision_ref"),
                })
                .await
                .unwrap();
                None
            }
            "person.created" => Some(
                c.create_person(pb::CreatePersonRequest {
                    change,
                    full_name: jstr(&v, "full_name"),
                    email: jstr(&v, "email"),
                    organisation_id: id(&ids, "organisation_id"),
                    service_end: jts(&v, "service_end"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "title.created" => Some(
                c.create_title(pb::CreateTitleRequest {
                    change,
                    name: jstr(&v, "name"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "appointment.created" => Some(
                c.create_appointment(pb::CreateAppointmentRequest {
                    change,
                    person_id: id(&ids, "person_id"),
                    title_id: id(&ids, "title_id"),
                    organisation_id: id(&ids, "organisation_id"),
                    valid_from: jts(&v, "valid_from"),
                    valid_to: jts(&v, "valid_to"),
                    decision_ref: jstr(&v, "decision_ref"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "document_type.created" => {
                let class = format!(
                    "CLASSIFICATION_{}",
                    jstr(&v, "classification").to_uppercase()
                );
                c.create_document_type(pb::CreateDocumentTypeRequest {
                    change,
                    code: e.entity_id.clone(),
                    name: jstr(&v, "name"),
                    classification: Classification::from_str_name(&class).unwrap() as i32,
                })
                .await
                .unwrap();
                None
            }
            "authority.granted" => {
                let mut req = pb::GrantAuthorityRequest {
                    change,
                    ..Default::default()
                };
                for g in v["grants"].as_array().unwrap() {
                    let org = ids[&jstr(g, "organisation_id")].clone();
                    if g.get("title_id").is_some() {
                        req.title_authorities.push(pb::TitleAuthority {
                            organisation_id: org,
                            title_id: ids[&jstr(g, "title_id")].clone(),
                            document_type: jstr(g, "document_type"),
                        });
                    } else {
                        req.organisation_profiles.push(pb::OrganisationProfile {
                            organisation_id: org,
                            document_type: jstr(g, "document_type"),
                            profile: Profile::from_str_name(&jstr(g, "profile")).unwrap() as i32,
                        });
                    }
                }
                c.grant_authority(req).await.unwrap();
                None
            }
            "certificate.registered" | "certificate.renewed" => {
                let kind = match jstr(&v, "kind").as_str() {
                    "personal" => pb::CertificateKind::Personal,
                    _ => pb::CertificateKind::Organisation,
                };
                let cert = c
                    .register_certificate(pb::RegisterCertificateRequest {
                        change,
                        der: unhex(&jstr(&v, "der_hex")),
                        kind: kind as i32,
                        person_id: id(&ids, "person_id"),
                        organisation_id: id(&ids, "organisation_id"),
                        renewal_of: jstr(&v, "renewal_of"),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .certificate
                    .unwrap();
                assert_eq!(cert.fingerprint, jstr(&v, "fingerprint"));
                Some(cert.id)
            }
            "certificate.status_changed" => {
                let status = format!("CERTIFICATE_STATUS_{}", jstr(&v, "to").to_uppercase());
                let reason = pb::RevocationReason::from_str_name(&jstr(&v, "reason"))
                    .unwrap_or(pb::RevocationReason::Unspecified);
                c.change_certificate_status(pb::ChangeCertificateStatusRequest {
                    change,
                    fingerprint: jstr(&v, "fingerprint"),
                    status: pb::CertificateStatus::from_str_name(&status).unwrap() as i32,
                    reason: reason as i32,
                    effective_at: jts(&v, "effective_at"),
                })
                .await
                .unwrap();
                None
            }
            "custodian.assigned" => Some(
                c.assign_custodian(pb::AssignCustodianRequest {
                    change,
                    fingerprint: jstr(&v, "fingerprint"),
                    person_id: id(&ids, "person_id"),
                    decision_ref: jstr(&v, "decision_ref"),
                    decision_date: jts(&v, "decision_date"),
                    handover_record: jstr(&v, "handover_record"),
                    effective_at: jts(&v, "effective_at"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "delegation.created" => {
                let mode = format!("SIGNING_MODE_{}", jstr(&v, "mode").to_uppercase());
                Some(
                    c.create_delegation(pb::CreateDelegationRequest {
                        change,
                        organisation_id: id(&ids, "organisation_id"),
                        from_person_id: id(&ids, "from_person_id"),
                        to_person_id: id(&ids, "to_person_id"),
                        mode: SigningMode::from_str_name(&mode).unwrap() as i32,
                        document_types: v["document_types"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d.as_str().unwrap().to_owned())
                            .collect(),
                        decision_ref: jstr(&v, "decision_ref"),
                        valid_from: jts(&v, "valid_from"),
                        valid_to: jts(&v, "valid_to"),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .id,
                )
            }
            // I5: the fresh registry dates the request (and its due time) at the replay.
            "unlock.requested" => Some(
                c.request_unlock(pb::RequestUnlockRequest {
                    change,
                    fingerprint: jstr(&v, "fingerprint"),
                    requested_by: id(&ids, "requested_by"),
                    reason: jstr(&v, "reason"),
                })
                .await
                .unwrap()
                .into_inner()
                .request
                .unwrap()
                .id,
            ),
            "unlock.resolved" => {
                let outcome = format!("UNLOCK_STATUS_{}", jstr(&v, "outcome").to_uppercase());
                c.resolve_unlock(pb::ResolveUnlockRequest {
                    change,
                    id: ids[&e.entity_id].clone(),
                    outcome: pb::UnlockStatus::from_str_name(&outcome).unwrap() as i32,
                    reason: jstr(&v, "reason"),
                })
                .await
                .unwrap();
                None
            }
            "appointment.ended" => {
                c.end_appointment(pb::EndAppointmentRequest {
                    change,
                    appointment_id: ids[&e.entity_id].clone(),
                    valid_to: jts(&v, "valid_to"),
                    decision_ref: jstr(&v, "decision_ref"),
                })
                .await
                .unwrap();
                None
            }
            "delegation.revoked" => {
                c.revoke_delegation(pb::RevokeDelegationRequest {
                    change,
                    delegation_id: ids[&e.entity_id].clone(),
                    decision_ref: jstr(&v, "decision_ref"),
                    effective_at: jts(&v, "effective_at"),
                })
                .await
                .unwrap();
                None
            }
            // Only the fields changed are in the event; null clears an ID.
            "organisation.updated" => {
                let text = |key: &str| v.get(key).map(|x| x.as_str().unwrap().to_owned());
                let org_id = |key: &str| {
                    v.get(key).map(|x| {
                        x.as_str()
                            .map(|s| ids.get(s).cloned().unwrap_or_else(|| s.to_owned()))
                            .unwrap_or_default()
                    })
                };
                c.update_organisation(pb::UpdateOrganisationRequest {
                    change,
                    organisation_id: ids[&e.entity_id].clone(),
                    name: text("name"),
                    mail_domain: text("mail_domain"),
                    managing_agency_id: org_id("managing_agency_id"),
                    parent_id: org_id("parent_id"),
                })
                .await
                .unwrap();
                None
            }
            "person.updated" => {
                let text = |key: &str| v.get(key).map(|x| x.as_str().unwrap().to_owned());
                c.update_person(pb::UpdatePersonRequest {
                    change,
                    person_id: ids[&e.entity_id].clone(),
                    full_name: text("full_name"),
                    email: text("email"),
                    service_end: jts(&v, "service_end"),
                    clear_service_end: v.get("service_end").is_some_and(|x| x.is_null()),
                })
                .await
                .unwrap();
                None
            }
            "holidays.set" => {
                c.set_holidays(pb::SetHolidaysRequest {
                    change,
                    year: v["year"].as_i64().unwrap() as i32,
                    dates: v["dates"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_owned())
                        .collect(),
                })
                .await
                .unwrap();
                None
            }
            other => panic!("event kind {other} has no replay"),
        };
        if let Some(new_id) = new_id {
            ids.insert(e.entity_id.clone(), new_id);
        }
    }
    ids
}

async fn event_log_replays_to_the_same_state(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    // More history than the seed: a delegation (A2), a suspension and reinstatement (N7), a
    // renewal (I3) then a revocation (V4) of the renewed certificate, a pending change of an
    // organisation (I2).
    c.create_delegation(pb::CreateDelegationRequest {
        change: change("KT. Chủ tịch"),
        organisation_id: p.ubnd.clone(),
        from_person_id: p.chairman.clone(),
        to_person_id: p.deputy.clone(),
        mode: SigningMode::Kt as i32,
        document_types: vec!["QD".into()],
        decision_ref: "77/QĐ-UBND".into(),
        valid_from: ts(now() - DAY),
        valid_to: ts(now() + 30 * DAY),
    })
    .await
    .unwrap();
    let t0 = now();
    set_status(
        &svc,
        &p.deputy_cert,
        pb::CertificateStatus::Suspended,
        pb::RevocationReason::Unspecified,
        Some(t0 - 100),
    )
    .await
    .unwrap();
    set_status(
        &svc,
        &p.deputy_cert,
        pb::CertificateStatus::Active,
        pb::RevocationReason::Unspecified,
        Some(t0 - 50),
    )
    .await
    .unwrap();
    let old = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "Le Van Cuong 1", 365),
        pb::CertificateKind::Personal,
        &p.clerk,
        "",
    )
    .await
    .unwrap();
    let renewed = c
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("renewal"),
            der: self_signed_ec(svc.dir.path(), "Le Van Cuong 2", 700),
            kind: pb::CertificateKind::Personal as i32,
            person_id: p.clerk.clone(),
            organisation_id: String::new(),
            renewal_of: old.fingerprint.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    set_status(
        &svc,
        &renewed.fingerprint,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::PositionChanged,
        None,
    )
    .await
    .unwrap();
    c.set_organisation_status(pb::SetOrganisationStatusRequest {
        change: change("rename decided"),
        organisation_id: p.sotttt.clone(),
        status: pb::OrganisationStatus::PendingRename as i32,
        decision_ref: "9/QĐ-UBND".into(),
    })
    .await
    .unwrap();

    // The management calls of the registry issue: an appointment ended (A3), a delegation
    // revoked (A2), an organisation and a person updated (I1, I6), holidays set (I5).
    let apt = c
        .create_appointment(pb::CreateAppointmentRequest {
            change: change("acting deputy"),
            person_id: p.outsider.clone(),
            title_id: p.deputy_title.clone(),
            organisation_id: p.ubnd.clone(),
            valid_from: ts(now() - 30 * DAY),
            valid_to: None,
            decision_ref: "10/QĐ-UBND".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    c.end_appointment(pb::EndAppointmentRequest {
        change: change("acting period over"),
        appointment_id: apt,
        valid_to: ts(now() - DAY),
        decision_ref: "11/QĐ-UBND".into(),
    })
    .await
    .unwrap();
    let dlg = c
        .create_delegation(pb::CreateDelegationRequest {
            change: change("KT. Chủ tịch"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.clerk.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["CV".into()],
            decision_ref: "12/QĐ-UBND".into(),
            valid_from: ts(now() - 2 * DAY),
            valid_to: ts(now() + 30 * DAY),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    c.revoke_delegation(pb::RevokeDelegationRequest {
        change: change("delegation withdrawn"),
        delegation_id: dlg,
        decision_ref: "13/QĐ-UBND".into(),
        effective_at: ts(now() - DAY),
    })
    .await
    .unwrap();
    c.update_organisation(pb::UpdateOrganisationRequest {
        change: change("renamed"),
        organisation_id: p.sotttt.clone(),
        name: Some("Sở Khoa học và Công nghệ tỉnh Khánh Hòa".into()),
        managing_agency_id: Some(String::new()),
        ..Default::default()
    })
    .await
    .unwrap();
    c.update_person(pb::UpdatePersonRequest {
        change: change("new mail account"),
        person_id: p.outsider.clone(),
        email: Some("dung.pt@skhcn.khanhhoa.gov.vn".into()),
        clear_service_end: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let next_year = time::OffsetDateTime::now_utc().year() + 1;
    c.set_holidays(pb::SetHolidaysRequest {
        change: change("holidays"),
        year: next_year,
        dates: vec![format!("{next_year}-01-01"), format!("{next_year}-09-02")],
    })
    .await
    .unwrap();

    // Two unlock requests (I5): one refused in writing, one still pending.
    let refused = request_unlock(&svc, &p.org_cert, &p.sotttt).await.unwrap();
    resolve_unlock(
        &svc,
        &refused.id,
        pb::UnlockStatus::Refused,
        "device broken",
    )
    .await
    .unwrap();
    let pending = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();

    let events = svc.events().await;
    let fresh = if svc.database_url.starts_with("sqlite") {
        Service::start_sqlite().await
    } else {
        Service::start_postgres().await
    };
    let ids = replay(&events, &fresh).await;
    let map = |s: &str| ids.get(s).cloned().unwrap_or_else(|| s.to_owned());

    // The fresh log tells the same story: same kinds, actors and reasons, in order.
    let again = fresh.events().await;
    let story = |es: &[pb::Event]| -> Vec<(String, String, String)> {
        es.iter()
            .map(|e| (e.kind.clone(), e.actor.clone(), e.reason.clone()))
            .collect()
    };
    assert_eq!(story(&again), story(&events));

    // Same certificates with the same status and history.
    let fingerprints = [
        &p.chairman_cert,
        &p.deputy_cert,
        &p.org_cert,
        &old.fingerprint,
        &renewed.fingerprint,
    ];
    let t = now();
    for fp in fingerprints {
        let get = |s: &Service| {
            let mut c = s.c();
            let fp = fp.clone();
            async move {
                c.get_certificate(pb::GetCertificateRequest {
                    by: Some(pb::get_certificate_request::By::Fingerprint(fp)),
                })
                .await
                .unwrap()
                .into_inner()
                .certificate
                .unwrap()
            }
        };
        let mut a = get(&svc).await;
        let b = get(&fresh).await;
        a.id = map(&a.id);
        a.person_id = map(&a.person_id);
        a.organisation_id = map(&a.organisation_id);
        a.renewal_of = map(&a.renewal_of);
        assert_eq!(a, b, "certificate {fp}");

        // The verifier's question has the same answer for every document type.
        for doc in ["QD", "CV", "MAT"] {
            let check = |s: &Service| {
                let mut c = s.c();
                let fp = fp.clone();
                async move {
                    c.check_authority(pb::CheckAuthorityRequest {
                        fingerprint: fp,
                        document_type: doc.into(),
                        at: ts(t),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                }
            };
            assert_eq!(check(&svc).await, check(&fresh).await, "{fp} {doc}");
        }
    }

    // The signer's question has the same answer for every combination.
    let people = [&p.chairman, &p.deputy, &p.clerk, &p.outsider];
    let (mut asked, mut allowed) = (0, 0);
    for fp in fingerprints {
        for person in people {
            for org in [&p.ubnd, &p.sotttt] {
                for doc in ["QD", "CV", "MAT"] {
                    for profile in [Profile::Approval, Profile::Issue, Profile::Copy] {
                        for mode in [SigningMode::Own, SigningMode::Kt] {
                            let mut req = authorize_req(fp, person, org, doc, profile, mode);
                            req.at = ts(t);
                            let a = authorize(&svc, req.clone()).await;
                            req.acting_person_id = map(person);
                            req.organisation_id = map(org);
                            let b = authorize(&fresh, req).await;
                            assert_eq!(
                                (
                                    a.allowed,
                                    rules(&a),
                                    &a.holder_name,
                                    &a.title,
                                    &a.on_behalf_of
                                ),
                                (
                                    b.allowed,
                                    rules(&b),
                                    &b.holder_name,
                                    &b.title,
                                    &b.on_behalf_of
                                ),
                                "{fp} {person} {org} {doc} {profile:?} {mode:?}"
                            );
                            asked += 1;
                            allowed += usize::from(a.allowed);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(asked, 5 * 4 * 2 * 3 * 3 * 2);
    // The set holds allowed and refused requests alike.
    assert!(
        allowed > 0 && allowed < asked,
        "{allowed} of {asked} allowed"
    );
    // The same unlock requests are pending (due times follow the replay's own clock).
    let later = now() + 10 * DAY;
    assert_eq!(overdue(&svc, later).await, vec![pending.id.clone()]);
    assert_eq!(overdue(&fresh, later).await, vec![map(&pending.id)]);
    fresh.stop().await;
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Finding people and organisations by name
// ---------------------------------------------------------------------------------------------

async fn find_people(svc: &Service, name: &str, org: &str) -> Vec<(String, bool)> {
    svc.c()
        .find_people(pb::FindPeopleRequest {
            name: name.into(),
            organisation_id: org.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .people
        .into_iter()
        .map(|p| (p.id, p.exact))
        .collect()
}

async fn find_organisations(svc: &Service, name: &str) -> Vec<(String, bool)> {
    svc.c()
        .find_organisations(pb::FindOrganisationsRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .organisations
        .into_iter()
        .map(|o| (o.id, o.exact))
        .collect()
}

async fn people_and_organisations_are_found_by_unicode_name(svc: Service) {
    let p = seed(&svc).await;
    // Case-insensitive beyond ASCII (SQLite's LOWER() would not fold "Ễ").
    assert_eq!(
        find_people(&svc, "NGUYỄN VĂN AN", "").await,
        vec![(p.chairman.clone(), true)]
    );
    // The same name in decomposed form (NFD) is the same name.
    assert_eq!(
        find_people(&svc, "Nguye\u{302}\u{303}n Va\u{306}n An", "").await,
        vec![(p.chairman.clone(), true)]
    );
    // Without marks (certificate subjects often drop them): found, but not exact.
    assert_eq!(
        find_people(&svc, "nguyen  van an", "").await,
        vec![(p.chairman.clone(), false)]
    );
    // A part of a name.
    let mut van = find_people(&svc, "văn", "").await;
    van.sort();
    let mut want = vec![(p.chairman.clone(), false), (p.clerk.clone(), false)];
    want.sort();
    assert_eq!(van, want);
    assert_eq!(
        find_people(&svc, "DUNG", "").await,
        vec![(p.outsider.clone(), false)]
    );
    // Only people of one organisation.
    assert_eq!(
        find_people(&svc, "thị", &p.sotttt).await,
        vec![(p.outsider.clone(), false)]
    );
    assert!(
        find_people(&svc, "Nguyễn Văn An", &p.sotttt)
            .await
            .is_empty()
    );
    // Organisations.
    assert_eq!(
        find_organisations(&svc, "ủy ban nhân dân tỉnh KHÁNH HÒA").await,
        vec![(p.ubnd.clone(), true)]
    );
    let mut kh = find_organisations(&svc, "khanh hoa").await;
    kh.sort();
    let mut want = vec![(p.ubnd.clone(), false), (p.sotttt.clone(), false)];
    want.sort();
    assert_eq!(kh, want);
    // Wildcards are literal.
    assert!(find_organisations(&svc, "%").await.is_empty());
    let err = svc
        .c()
        .find_people(pb::FindPeopleRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["name"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Reports (R2)
// ---------------------------------------------------------------------------------------------

/// An organisation managed by `managing` (I6; "" manages itself).
async fn create_org(svc: &Service, name: &str, managing: &str) -> String {
    svc.c()
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: name.to_owned(),
            parent_id: String::new(),
            managing_agency_id: managing.to_owned(),
            mail_domain: DOMAIN.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn report(
    svc: &Service,
    from: i64,
    to: i64,
    granularity: pb::Granularity,
) -> Result<pb::ReportResponse, Status> {
    svc.c()
        .report(pb::ReportRequest {
            from: ts(from),
            to: ts(to),
            granularity: granularity as i32,
        })
        .await
        .map(|r| r.into_inner())
}

async fn report_counts_certificates_per_managing_agency_per_period_R2(svc: Service) {
    let mut c = svc.c();
    // I6: the department manages the People's Committee; the district manages itself.
    let sotttt = create_org(&svc, "Sở Thông tin và Truyền thông", "").await;
    let ubnd = create_org(&svc, "Ủy ban nhân dân tỉnh Khánh Hòa", &sotttt).await;
    let district = create_org(&svc, "UBND huyện Khánh Sơn", "").await;
    let five_years = Some(now() + 5 * YEAR);
    let a = create_person(
        &mut c,
        "Nguyễn Văn An",
        "an@khanhhoa.gov.vn",
        &ubnd,
        five_years,
    )
    .await;
    let b = create_person(
        &mut c,
        "Lê Thị Bé",
        "be@khanhhoa.gov.vn",
        &district,
        five_years,
    )
    .await;
    let dir = svc.dir.path();
    let personal = pb::CertificateKind::Personal;
    let a1 = register(&mut c, self_signed_ec(dir, "a1", 365), personal, &a, "")
        .await
        .unwrap();
    let a2 = c
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("renewal"),
            der: self_signed_ec(dir, "a2", 700),
            kind: personal as i32,
            person_id: a.clone(),
            organisation_id: String::new(),
            renewal_of: a1.fingerprint.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    let b1 = register(&mut c, self_signed_ec(dir, "b1", 365), personal, &b, "")
        .await
        .unwrap();
    use pb::{CertificateStatus as S, RevocationReason as R};
    set_status(&svc, &a2.fingerprint, S::Suspended, R::Unspecified, None)
        .await
        .unwrap();
    set_status(&svc, &a2.fingerprint, S::Revoked, R::DeviceLost, None)
        .await
        .unwrap();
    set_status(&svc, &b1.fingerprint, S::Revoked, R::LeftService, None)
        .await
        .unwrap();

    let t = now();
    for g in [
        pb::Granularity::Year,
        pb::Granularity::HalfYear,
        pb::Granularity::Quarter,
    ] {
        let r = report(&svc, t - YEAR, t + DAY, g).await.unwrap();
        // Authorize decisions are not recorded: the report says so.
        assert!(!r.signatures_counted);
        let got: Vec<(&str, &str, i64, i64, i64, i64)> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.managing_agency_id.as_str(),
                    x.managing_agency_name.as_str(),
                    x.issued,
                    x.renewed,
                    x.revoked,
                    x.suspended,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (sotttt.as_str(), "Sở Thông tin và Truyền thông", 1, 1, 1, 1),
                (district.as_str(), "UBND huyện Khánh Sơn", 1, 0, 1, 0),
            ],
            "{g:?}"
        );
        for x in &r.rows {
            let (start, end) = (
                x.period_start.unwrap().seconds,
                x.period_end.unwrap().seconds,
            );
            assert!(start <= t && t < end, "{x:?}");
            let months = (end - start) / (28 * DAY);
            match g {
                pb::Granularity::Year => assert!(x.period.len() == 4 && months >= 12),
                pb::Granularity::HalfYear => assert!(x.period.contains("-H") && months == 6),
                _ => assert!(x.period.contains("-Q") && months == 3),
            }
        }
    }
    // Nothing outside the window.
    let r = report(&svc, t + DAY, t + YEAR, pb::Granularity::Quarter)
        .await
        .unwrap();
    assert!(r.rows.is_empty());
    // Bad requests name the field.
    let err = report(&svc, t, t + DAY, pb::Granularity::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["granularity"]);
    let err = report(&svc, t, t - DAY, pb::Granularity::Year)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["to"]);
    svc.stop().await;
}

/// Vietnam's date (UTC+07:00) at `t`, as the registry takes it.
fn vietnam_day(t: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(t + 7 * 3600)
        .unwrap()
        .date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn register_document(
    svc: &Service,
    org: &str,
    direction: pb::Direction,
    refused: bool,
    at: Option<i64>,
) -> Result<pb::RegisterEntry, Status> {
    svc.c()
        .register_document(pb::RegisterDocumentRequest {
            change: change("văn thư vào sổ"),
            organisation_id: org.into(),
            direction: direction as i32,
            document_type: "QD".into(),
            number_and_symbol: "123/QĐ-UBND".into(),
            sha256: "ab".repeat(32),
            counterparty: "Sở Tài chính".into(),
            refused,
            reason: if refused {
                "chữ ký số của cơ quan không hợp lệ".into()
            } else {
                String::new()
            },
            at: at.and_then(ts),
        })
        .await
        .map(|r| r.into_inner().entry.unwrap())
}

async fn report_counts_signatures_and_exchange_volumes_R2(svc: Service) {
    let mut c = svc.c();
    let sotttt = create_org(&svc, "Sở Thông tin và Truyền thông", "").await;
    let ubnd = create_org(&svc, "Ủy ban nhân dân tỉnh Khánh Hòa", &sotttt).await;
    let a = create_person(
        &mut c,
        "Nguyễn Văn An",
        "an@khanhhoa.gov.vn",
        &ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    let cert = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "usage", 365),
        pb::CertificateKind::Personal,
        &a,
        "",
    )
    .await
    .unwrap();
    let t = now();
    let today = vietnam_day(t);
    let entry = |profile: &str, count: i64| pb::UsageEntry {
        certificate_fingerprint: cert.fingerprint.clone(),
        organisation_id: ubnd.clone(),
        profile: profile.into(),
        day: today.clone(),
        count,
    };
    let usage = |batch: &str, entries: Vec<pb::UsageEntry>| {
        let mut c = svc.c();
        let batch = batch.to_owned();
        async move {
            c.record_usage(pb::RecordUsageRequest {
                batch_id: batch,
                entries,
                change: change("R2 usage from signer-0"),
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    let r = usage(
        "signer-0/abcd:1-10",
        vec![entry("PROFILE_APPROVAL", 3), entry("ISSUE", 2)],
    )
    .await
    .unwrap();
    assert_eq!((r.duplicate, r.signatures), (false, 5));
    // The same batch again (a lost answer, a restart): counted once.
    let r = usage("signer-0/abcd:1-10", vec![entry("APPROVAL", 3)])
        .await
        .unwrap();
    assert!(r.duplicate);
    // A batch with one bad entry writes nothing, and names the field.
    let events_before = svc.events().await.len();
    let mut unknown = entry("APPROVAL", 1);
    unknown.certificate_fingerprint = "00".repeat(32);
    let err = usage("signer-0/abcd:11-12", vec![entry("APPROVAL", 7), unknown])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    for (bad, field) in [
        (entry("SEAL", 1), "entries.profile"),
        (entry("APPROVAL", 0), "entries.count"),
        (
            pb::UsageEntry {
                day: "23/11/2026".into(),
                ..entry("APPROVAL", 1)
            },
            "entries.day",
        ),
    ] {
        let err = usage("signer-0/abcd:11-12", vec![entry("APPROVAL", 7), bad])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&err), vec![field]);
    }
    assert_eq!(svc.events().await.len(), events_before);

    // The registers (W1, W3): one sequence per organisation, direction and year.
    use pb::Direction::{Incoming, Outgoing};
    let o1 = register_document(&svc, &ubnd, Outgoing, false, None)
        .await
        .unwrap();
    let o2 = register_document(&svc, &ubnd, Outgoing, false, None)
        .await
        .unwrap();
    let i1 = register_document(&svc, &ubnd, Incoming, false, None)
        .await
        .unwrap();
    let refused = register_document(&svc, &ubnd, Incoming, true, None)
        .await
        .unwrap();
    let next_year = register_document(&svc, &ubnd, Outgoing, false, Some(t + YEAR))
        .await
        .unwrap();
    assert_eq!(
        (
            o1.number,
            o2.number,
            i1.number,
            refused.number,
            next_year.number
        ),
        (1, 2, 1, 0, 1)
    );
    assert_eq!(next_year.year, o1.year + 1);
    assert!(refused.refused && !refused.reason.is_empty());
    // Bad entries name the field and write nothing.
    let events_before = svc.events().await.len();
    let bad = |f: fn(&mut pb::RegisterDocumentRequest)| {
        let mut c = svc.c();
        let ubnd = ubnd.clone();
        async move {
            let mut r = pb::RegisterDocumentRequest {
                change: change("văn thư vào sổ"),
                organisation_id: ubnd,
                direction: Outgoing as i32,
                document_type: "QD".into(),
                number_and_symbol: "124/QĐ-UBND".into(),
                sha256: "cd".repeat(32),
                ..Default::default()
            };
            f(&mut r);
            c.register_document(r).await.unwrap_err()
        }
    };
    type Edit = fn(&mut pb::RegisterDocumentRequest);
    let cases: [(Edit, &str); 5] = [
        (|r| r.sha256 = "xyz".into(), "sha256"),
        (|r| r.number_and_symbol.clear(), "number_and_symbol"),
        (|r| r.refused = true, "refused"),
        (
            |r| {
                r.direction = Incoming as i32;
                r.refused = true;
            },
            "reason",
        ),
        (|r| r.direction = 0, "direction"),
    ];
    for (f, field) in cases {
        let err = bad(f).await;
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(bad_fields(&err), vec![field]);
    }
    assert_eq!(svc.events().await.len(), events_before);
    let listed = c
        .list_register(pb::ListRegisterRequest {
            organisation_id: ubnd.clone(),
            direction: Outgoing as i32,
            year: o1.year,
            sha256: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        listed.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // Two clerks at once never get the same number.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let svc_c = svc.c();
        let ubnd = ubnd.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = svc_c;
            c.register_document(pb::RegisterDocumentRequest {
                change: change("văn thư vào sổ"),
                organisation_id: ubnd,
                direction: Incoming as i32,
                document_type: "CV".into(),
                sha256: "ef".repeat(32),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entry
            .unwrap()
            .number
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (2..18).collect::<Vec<_>>());

    // R2: per managing agency, per period.
    for g in [
        pb::Granularity::Quarter,
        pb::Granularity::HalfYear,
        pb::Granularity::Year,
    ] {
        let r = report(&svc, t - YEAR, t + DAY, g).await.unwrap();
        assert!(r.signatures_counted);
        let row = r
            .rows
            .iter()
            .find(|x| x.managing_agency_id == sotttt)
            .unwrap();
        assert_eq!(
            (
                row.issued,
                row.signatures,
                row.sent,
                row.received,
                row.refused
            ),
            (1, 5, 2, 17, 1),
            "{g:?}"
        );
    }
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Key device unlock requests (I5)
// ---------------------------------------------------------------------------------------------

async fn request_unlock(svc: &Service, fp: &str, by: &str) -> Result<pb::UnlockRequest, Status> {
    svc.c()
        .request_unlock(pb::RequestUnlockRequest {
            change: change("device locked after wrong PINs"),
            fingerprint: fp.into(),
            requested_by: by.into(),
            reason: "khóa sau 5 lần nhập sai PIN".into(),
        })
        .await
        .map(|r| r.into_inner().request.unwrap())
}

async fn resolve_unlock(
    svc: &Service,
    id: &str,
    outcome: pb::UnlockStatus,
    reason: &str,
) -> Result<pb::UnlockRequest, Status> {
    svc.c()
        .resolve_unlock(pb::ResolveUnlockRequest {
            change: change("unlock handled"),
            id: id.into(),
            outcome: outcome as i32,
            reason: reason.into(),
        })
        .await
        .map(|r| r.into_inner().request.unwrap())
}

async fn overdue(svc: &Service, at: i64) -> Vec<String> {
    svc.c()
        .list_overdue_unlocks(pb::ListOverdueUnlocksRequest { now: ts(at) })
        .await
        .unwrap()
        .into_inner()
        .requests
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn unlock_is_requested_by_the_managing_agency_and_due_next_working_day_I5(svc: Service) {
    let p = seed(&svc).await;
    // I6: the department manages the People's Committee's subscribers, not the Committee.
    let err = request_unlock(&svc, &p.chairman_cert, &p.ubnd)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I5"]);
    let r = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    assert_eq!(r.status, pb::UnlockStatus::Pending as i32);
    assert_eq!(r.fingerprint, p.chairman_cert);
    let (asked, due) = (r.requested_at.unwrap().seconds, r.due_at.unwrap().seconds);
    // The end of the next working day in Vietnam's time: at most 4 days (Friday to Monday).
    assert_eq!(due, kyso_registry::policy::unlock_due(asked));
    assert!(
        due > asked + 3600 && due <= asked + 4 * DAY,
        "{asked} {due}"
    );
    let local = time::OffsetDateTime::from_unix_timestamp(due - 1 + 7 * 3600).unwrap();
    assert!(!matches!(
        local.weekday(),
        time::Weekday::Saturday | time::Weekday::Sunday
    ));
    // Not overdue until the due time has passed.
    assert!(overdue(&svc, due - 1).await.is_empty());
    assert!(overdue(&svc, now()).await.is_empty());
    assert_eq!(overdue(&svc, due + 1).await, vec![r.id.clone()]);
    // Done: no longer overdue, and resolved once only.
    let done = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Done, "")
        .await
        .unwrap();
    assert_eq!(done.status, pb::UnlockStatus::Done as i32);
    assert!(done.resolved_at.is_some());
    assert!(overdue(&svc, due + 1).await.is_empty());
    let err = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Refused, "too late")
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I5"]);
    svc.stop().await;
}

async fn unlock_refusal_needs_a_written_reason_I5(svc: Service) {
    let p = seed(&svc).await;
    let r = request_unlock(&svc, &p.org_cert, &p.sotttt).await.unwrap();
    let err = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Refused, "  ")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["I5"]);
    // Nothing written: still pending.
    let due = r.due_at.unwrap().seconds;
    assert_eq!(overdue(&svc, due + 1).await, vec![r.id.clone()]);
    let refused = resolve_unlock(
        &svc,
        &r.id,
        pb::UnlockStatus::Refused,
        "the device is broken: revoke and issue a new certificate (V4)",
    )
    .await
    .unwrap();
    assert_eq!(refused.status, pb::UnlockStatus::Refused as i32);
    assert!(
        refused
            .resolution_reason
            .starts_with("the device is broken")
    );
    assert!(overdue(&svc, due + 1).await.is_empty());
    // Unknown IDs and a missing outcome.
    let err = resolve_unlock(&svc, "unl_nope", pb::UnlockStatus::Done, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["outcome"]);
    let kinds: Vec<String> = svc.events().await.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["unlock.requested", "unlock.resolved"]
    );
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Ending appointments, revoking delegations, updating organisations and people
// ---------------------------------------------------------------------------------------------

/// The ID of the appointment of `person` (from the event log).
async fn appointment_of(svc: &Service, person: &str) -> String {
    svc.events()
        .await
        .into_iter()
        .find(|e| {
            e.kind == "appointment.created"
                && serde_json::from_str::<serde_json::Value>(&e.change_json).unwrap()["person_id"]
                    == person
        })
        .unwrap()
        .entity_id
}

async fn end_appointment(
    svc: &Service,
    id: &str,
    valid_to: Option<i64>,
    decision: &str,
) -> Result<(), Status> {
    svc.c()
        .end_appointment(pb::EndAppointmentRequest {
            change: change("relieved of the post"),
            appointment_id: id.into(),
            valid_to: valid_to.and_then(ts),
            decision_ref: decision.into(),
        })
        .await
        .map(|_| ())
}

async fn check(svc: &Service, fp: &str, doc: &str, at: i64) -> pb::CheckAuthorityResponse {
    svc.c()
        .check_authority(pb::CheckAuthorityRequest {
            fingerprint: fp.into(),
            document_type: doc.into(),
            at: ts(at),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn ended_appointment_no_longer_gives_authority_A3(svc: Service) {
    let p = seed(&svc).await;
    let apt = appointment_of(&svc, &p.chairman).await;
    let req = authorize_req(
        &p.chairman_cert,
        &p.chairman,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Own,
    );
    assert!(authorize(&svc, req.clone()).await.allowed);
    let before = svc.events().await.len();
    // An end at or before the start, no decision, an unknown appointment: refused, nothing written.
    let err = end_appointment(&svc, &apt, Some(now() - 2 * YEAR), "5/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    assert!(err.message().contains("start"), "{}", err.message());
    let err = end_appointment(&svc, &apt, None, "5/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    let err = end_appointment(&svc, &apt, Some(now() - 10), " ")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["decision_ref"]);
    let err = end_appointment(&svc, "apt_nope", Some(now() - 10), "5/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(svc.events().await.len(), before);
    assert!(authorize(&svc, req.clone()).await.allowed);

    // Ended: the title no longer gives authority (A3), neither to the signer nor to the
    // verifier; before the end it still did.
    let end = now() - 10;
    end_appointment(&svc, &apt, Some(end), "5/QĐ-TTg")
        .await
        .unwrap();
    let r = authorize(&svc, req.clone()).await;
    assert_eq!(rules(&r), vec!["A3"], "{:?}", r.refusals);
    let mut earlier = req.clone();
    earlier.at = ts(end - DAY);
    assert!(authorize(&svc, earlier).await.allowed);
    assert!(
        check(&svc, &p.chairman_cert, "QD", end - DAY)
            .await
            .authorised
    );
    let c = check(&svc, &p.chairman_cert, "QD", end + 1).await;
    assert_eq!(
        c.refusals
            .iter()
            .map(|r| r.rule.as_str())
            .collect::<Vec<_>>(),
        vec!["A3"]
    );
    // An end is brought forward, never pushed back.
    let err = end_appointment(&svc, &apt, Some(end + DAY), "6/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    end_appointment(&svc, &apt, Some(end - 3600), "6/QĐ-TTg")
        .await
        .unwrap();
    let events = svc.events().await;
    assert_eq!(events.len(), before + 2);
    let last = events.last().unwrap();
    assert_eq!(last.kind, "appointment.ended");
    assert_eq!(last.entity_id, apt);
    assert_eq!(last.reason, "relieved of the post");
    let v: serde_json::Value = serde_json::from_str(&last.change_json).unwrap();
    assert_eq!(v["previous_valid_to"], end);
    assert_eq!(v["decision_ref"], "6/QĐ-TTg");
    svc.stop().await;
}

async fn revoke_delegation(
    svc: &Service,
    id: &str,
    decision: &str,
    at: Option<i64>,
) -> Result<(), Status> {
    svc.c()
        .revoke_delegation(pb::RevokeDelegationRequest {
            change: change("delegation withdrawn"),
            delegation_id: id.into(),
            decision_ref: decision.into(),
            effective_at: at.and_then(ts),
        })
        .await
        .map(|_| ())
}

async fn revoked_delegation_no_longer_allows_signing_on_behalf_A2(svc: Service) {
    let p = seed(&svc).await;
    let start = now() - DAY;
    let dlg = svc
        .c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("KT. Chủ tịch"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.deputy.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["QD".into()],
            decision_ref: "77/QĐ-UBND".into(),
            valid_from: ts(start),
            valid_to: ts(now() + 30 * DAY),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let req = authorize_req(
        &p.deputy_cert,
        &p.deputy,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Kt,
    );
    assert!(authorize(&svc, req.clone()).await.allowed);
    let before = svc.events().await.len();
    // No decision (A2), a time outside its period, an unknown delegation: nothing written.
    let err = revoke_delegation(&svc, &dlg, "", None).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A2"]);
    assert_eq!(bad_fields(&err), vec!["decision_ref"]);
    let err = revoke_delegation(&svc, &dlg, "80/QĐ-UBND", Some(start - 1))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["effective_at"]);
    let err = revoke_delegation(&svc, "dlg_nope", "80/QĐ-UBND", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(svc.events().await.len(), before);
    assert!(authorize(&svc, req.clone()).await.allowed);

    // Revoked from now: no more KT. under it; before the revocation it still held.
    let at = now() - 5;
    revoke_delegation(&svc, &dlg, "80/QĐ-UBND", Some(at))
        .await
        .unwrap();
    let r = authorize(&svc, req.clone()).await;
    assert_eq!(rules(&r), vec!["A2"], "{:?}", r.refusals);
    let mut earlier = req.clone();
    earlier.at = ts(at - 3600);
    let r = authorize(&svc, earlier).await;
    assert!(r.allowed, "{:?}", r.refusals);
    assert_eq!(r.on_behalf_of, "Nguyễn Văn An");
    // The verifier agrees: the deputy had no authority for QD after the revocation.
    assert!(!check(&svc, &p.deputy_cert, "QD", at + 1).await.authorised);
    assert!(check(&svc, &p.deputy_cert, "QD", at - 1).await.authorised);
    // Revoked once: a second revocation later than the end is refused (A2).
    let err = revoke_delegation(&svc, &dlg, "81/QĐ-UBND", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["A2"]);
    let events = svc.events().await;
    assert_eq!(events.len(), before + 1);
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.entity_id.as_str()),
        ("delegation.revoked", dlg.as_str())
    );
    let v: serde_json::Value = serde_json::from_str(&last.change_json).unwrap();
    assert_eq!(v["effective_at"], at);
    assert_eq!(v["decision_ref"], "80/QĐ-UBND");
    svc.stop().await;
}

fn org_update(org: &str) -> pb::UpdateOrganisationRequest {
    pb::UpdateOrganisationRequest {
        change: change("reorganisation"),
        organisation_id: org.into(),
        ..Default::default()
    }
}

async fn organisation_update_refuses_a_cycle_of_managing_agencies_I6(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    // A district People's Committee managed by the provincial one's managing agency chain:
    // district -> ubnd -> sotttt.
    let district = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("district"),
            name: "Ủy ban nhân dân huyện Khánh Sơn".into(),
            parent_id: p.ubnd.clone(),
            managing_agency_id: p.ubnd.clone(),
            mail_domain: "khanhson.khanhhoa.gov.vn".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let before = svc.events().await.len();
    for (req, code, field) in [
        // sotttt managed by the district: sotttt -> district -> ubnd -> sotttt.
        (
            pb::UpdateOrganisationRequest {
                managing_agency_id: Some(district.clone()),
                ..org_update(&p.sotttt)
            },
            Code::FailedPrecondition,
            "managing_agency_id",
        ),
        (
            pb::UpdateOrganisationRequest {
                managing_agency_id: Some(p.ubnd.clone()),
                ..org_update(&p.sotttt)
            },
            Code::FailedPrecondition,
            "managing_agency_id",
        ),
        (
            pb::UpdateOrganisationRequest {
                managing_agency_id: Some(p.ubnd.clone()),
                ..org_update(&p.ubnd)
            },
            Code::InvalidArgument,
            "managing_agency_id",
        ),
        // The parent hierarchy has no cycle either.
        (
            pb::UpdateOrganisationRequest {
                parent_id: Some(district.clone()),
                ..org_update(&p.ubnd)
            },
            Code::FailedPrecondition,
            "parent_id",
        ),
    ] {
        let err = c.update_organisation(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert_eq!(status_rules(&err), vec!["I6"], "{}", err.message());
        assert_eq!(bad_fields(&err), vec![field]);
    }
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            managing_agency_id: Some(district.clone()),
            ..org_update(&p.sotttt)
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("cycle"), "{}", err.message());
    // Bad fields, unknown IDs, nothing to change.
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            mail_domain: Some("not a domain".into()),
            ..org_update(&p.ubnd)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["mail_domain"]);
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            name: Some("  ".into()),
            ..org_update(&p.ubnd)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["name"]);
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            managing_agency_id: Some("org_nope".into()),
            ..org_update(&p.ubnd)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .update_organisation(org_update(&p.ubnd))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            name: Some("X".into()),
            ..org_update("org_nope")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(svc.events().await.len(), before);

    // Allowed: a new name and domain (found by the new name), and the district taken over by
    // the department; then the People's Committee manages itself ("" clears) and files its
    // own unlock requests (I5, I6).
    c.update_organisation(pb::UpdateOrganisationRequest {
        name: Some("UBND tỉnh Khánh Hòa (mới)".into()),
        mail_domain: Some("@UBND.KhanhHoa.gov.vn".into()),
        ..org_update(&p.ubnd)
    })
    .await
    .unwrap();
    assert_eq!(
        find_organisations(&svc, "ubnd tinh khanh hoa (moi)").await,
        vec![(p.ubnd.clone(), false)]
    );
    c.update_organisation(pb::UpdateOrganisationRequest {
        managing_agency_id: Some(p.sotttt.clone()),
        parent_id: Some(String::new()),
        ..org_update(&district)
    })
    .await
    .unwrap();
    let err = request_unlock(&svc, &p.chairman_cert, &p.ubnd)
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I5"]);
    c.update_organisation(pb::UpdateOrganisationRequest {
        managing_agency_id: Some(String::new()),
        ..org_update(&p.ubnd)
    })
    .await
    .unwrap();
    request_unlock(&svc, &p.chairman_cert, &p.ubnd)
        .await
        .unwrap();
    // Now sotttt may be managed by the People's Committee: no cycle any more.
    c.update_organisation(pb::UpdateOrganisationRequest {
        managing_agency_id: Some(p.ubnd.clone()),
        ..org_update(&p.sotttt)
    })
    .await
    .unwrap();
    let events = svc.events().await;
    let updates: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.kind == "organisation.updated")
        .map(|e| serde_json::from_str(&e.change_json).unwrap())
        .collect();
    assert_eq!(updates.len(), 4);
    assert_eq!(updates[0]["mail_domain"], "ubnd.khanhhoa.gov.vn");
    assert_eq!(updates[0]["previous"]["mail_domain"], DOMAIN);
    assert!(updates[0].get("managing_agency_id").is_none());
    assert_eq!(updates[1]["parent_id"], serde_json::Value::Null);
    assert_eq!(updates[1]["previous"]["parent_id"], p.ubnd.as_str());
    assert_eq!(updates[2]["managing_agency_id"], serde_json::Value::Null);
    svc.stop().await;
}

fn person_update(person: &str) -> pb::UpdatePersonRequest {
    pb::UpdatePersonRequest {
        change: change("personnel record"),
        person_id: person.into(),
        ..Default::default()
    }
}

async fn person_update_checks_the_mail_address_and_feeds_I1_I2(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let newcomer = create_person(
        &mut c,
        "Hoàng Văn Em",
        "em.hv@khanhhoa.gov.vn",
        &p.ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    let before = svc.events().await.len();
    for (req, code, field) in [
        (
            pb::UpdatePersonRequest {
                email: Some("not-a-mail".into()),
                ..person_update(&newcomer)
            },
            Code::InvalidArgument,
            Some("email"),
        ),
        (
            pb::UpdatePersonRequest {
                full_name: Some(" ".into()),
                ..person_update(&newcomer)
            },
            Code::InvalidArgument,
            Some("full_name"),
        ),
        (
            pb::UpdatePersonRequest {
                service_end: ts(now()),
                clear_service_end: true,
                ..person_update(&newcomer)
            },
            Code::InvalidArgument,
            Some("clear_service_end"),
        ),
        (person_update(&newcomer), Code::InvalidArgument, None),
        (
            pb::UpdatePersonRequest {
                email: Some("AN.NV@khanhhoa.gov.vn".into()),
                ..person_update(&newcomer)
            },
            Code::AlreadyExists,
            None,
        ),
        (
            pb::UpdatePersonRequest {
                full_name: Some("X".into()),
                ..person_update("per_nope")
            },
            Code::NotFound,
            None,
        ),
    ] {
        let err = c.update_person(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        if let Some(f) = field {
            assert_eq!(bad_fields(&err), vec![f]);
        }
    }
    assert_eq!(svc.events().await.len(), before);

    // A mail account outside the deployment's domain is a mail address (as on creation),
    // but no new certificate is issued on it (I1).
    c.update_person(pb::UpdatePersonRequest {
        email: Some("em.hv@gmail.com".into()),
        full_name: Some("Hoàng Văn Êm".into()),
        ..person_update(&newcomer)
    })
    .await
    .unwrap();
    let der = self_signed_ec(svc.dir.path(), "em", 365);
    let err = register(
        &mut c,
        der.clone(),
        pb::CertificateKind::Personal,
        &newcomer,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I1"]);
    assert_eq!(
        find_people(&svc, "hoang van em", "").await,
        vec![(newcomer.clone(), false)]
    );
    // Back in the domain, but retiring in four months (I2); then the end of service is no
    // longer known, and the certificate is issued.
    c.update_person(pb::UpdatePersonRequest {
        email: Some("em.hv@khanhhoa.gov.vn".into()),
        service_end: ts(now() + 120 * DAY),
        ..person_update(&newcomer)
    })
    .await
    .unwrap();
    let err = register(
        &mut c,
        der.clone(),
        pb::CertificateKind::Personal,
        &newcomer,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I2"]);
    c.update_person(pb::UpdatePersonRequest {
        clear_service_end: true,
        ..person_update(&newcomer)
    })
    .await
    .unwrap();
    register(&mut c, der, pb::CertificateKind::Personal, &newcomer, "")
        .await
        .unwrap();
    let updates: Vec<serde_json::Value> = svc
        .events()
        .await
        .iter()
        .filter(|e| e.kind == "person.updated")
        .map(|e| serde_json::from_str(&e.change_json).unwrap())
        .collect();
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[0]["email"], "em.hv@gmail.com");
    assert_eq!(updates[0]["previous"]["full_name"], "Hoàng Văn Em");
    assert!(updates[0].get("service_end").is_none());
    assert_eq!(updates[2]["service_end"], serde_json::Value::Null);
    assert!(updates[2].get("email").is_none());
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Holidays and one open unlock request per certificate (I5)
// ---------------------------------------------------------------------------------------------

async fn set_holidays(svc: &Service, year: i32, dates: &[String]) -> Result<Vec<String>, Status> {
    svc.c()
        .set_holidays(pb::SetHolidaysRequest {
            change: change("holidays of the year"),
            year,
            dates: dates.to_vec(),
        })
        .await
        .map(|r| r.into_inner().dates)
}

async fn list_holidays(svc: &Service, year: i32) -> Vec<String> {
    svc.c()
        .list_holidays(pb::ListHolidaysRequest { year })
        .await
        .unwrap()
        .into_inner()
        .dates
}

async fn unlock_deadline_skips_holidays_I5(svc: Service) {
    use kyso_registry::policy;
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    // Refused: a date of another year, not a date, a year out of range; nothing written.
    for (year, dates) in [
        (2027, vec!["2026-12-31".to_owned()]),
        (2027, vec!["2027-02-30".to_owned()]),
        (2027, vec!["05/02/2027".to_owned()]),
        (0, vec![]),
    ] {
        let err = set_holidays(&svc, year, &dates).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{year} {dates:?}");
        assert_eq!(
            bad_fields(&err),
            vec![if year == 0 { "year" } else { "dates" }]
        );
    }
    assert_eq!(svc.events().await.len(), before);
    assert!(list_holidays(&svc, 0).await.is_empty());

    // The next five days in Vietnam are holidays (over a new year, two calls).
    let today = policy::vietnam_date(now()).unwrap();
    let mut holidays = std::collections::BTreeSet::new();
    let mut day = today;
    for _ in 0..5 {
        day = day.next_day().unwrap();
        holidays.insert(day);
    }
    let years: std::collections::BTreeSet<i32> = holidays.iter().map(|d| d.year()).collect();
    for year in &years {
        let mut dates: Vec<String> = holidays
            .iter()
            .filter(|d| d.year() == *year)
            .map(|d| policy::format_date(*d))
            .collect();
        // Listed twice and unsorted: stored once, sorted.
        dates.push(dates[0].clone());
        dates.reverse();
        let stored = set_holidays(&svc, *year, &dates).await.unwrap();
        assert_eq!(stored.len(), dates.len() - 1);
        assert!(stored.windows(2).all(|w| w[0] < w[1]), "{stored:?}");
    }
    let all: Vec<String> = holidays.iter().map(|d| policy::format_date(*d)).collect();
    assert_eq!(list_holidays(&svc, 0).await, all);

    let r = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    let (asked, due) = (r.requested_at.unwrap().seconds, r.due_at.unwrap().seconds);
    assert_eq!(due, policy::unlock_due_with_holidays(asked, &holidays));
    // Due at the end of a working day after the five holidays; every day between the
    // request and that day is a holiday or a weekend.
    let due_day = policy::vietnam_date(due - 1).unwrap();
    assert!(due_day > *holidays.last().unwrap(), "{due_day}");
    assert!(!matches!(
        due_day.weekday(),
        time::Weekday::Saturday | time::Weekday::Sunday
    ));
    let mut d = today.next_day().unwrap();
    while d < due_day {
        assert!(
            holidays.contains(&d)
                || matches!(d.weekday(), time::Weekday::Saturday | time::Weekday::Sunday),
            "{d} is a working day before {due_day}"
        );
        d = d.next_day().unwrap();
    }
    assert!(due > policy::unlock_due(asked));

    // Cleared: the deadline is the next weekday again.
    resolve_unlock(&svc, &r.id, pb::UnlockStatus::Done, "")
        .await
        .unwrap();
    for year in &years {
        assert!(set_holidays(&svc, *year, &[]).await.unwrap().is_empty());
    }
    assert!(list_holidays(&svc, 0).await.is_empty());
    let r = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    let (asked, due) = (r.requested_at.unwrap().seconds, r.due_at.unwrap().seconds);
    assert_eq!(due, policy::unlock_due(asked));
    let sets: Vec<serde_json::Value> = svc
        .events()
        .await
        .iter()
        .filter(|e| e.kind == "holidays.set")
        .map(|e| serde_json::from_str(&e.change_json).unwrap())
        .collect();
    assert_eq!(sets.len(), 2 * years.len());
    assert_eq!(sets.last().unwrap()["dates"], serde_json::json!([]));
    assert!(
        !sets.last().unwrap()["previous"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    svc.stop().await;
}

async fn second_open_unlock_request_for_a_certificate_is_refused_I5(svc: Service) {
    let p = seed(&svc).await;
    let first = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    let before = svc.events().await.len();
    let err = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I5"]);
    assert_eq!(bad_fields(&err), vec!["fingerprint"]);
    assert!(
        err.message().contains(&first.id) && err.message().contains("still open"),
        "{}",
        err.message()
    );
    assert_eq!(svc.events().await.len(), before);
    // Another certificate is another request.
    request_unlock(&svc, &p.org_cert, &p.sotttt).await.unwrap();
    // Once refused in writing, a new request may be filed.
    resolve_unlock(&svc, &first.id, pb::UnlockStatus::Refused, "device broken")
        .await
        .unwrap();
    let second = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The event log is append-only in the database itself
// ---------------------------------------------------------------------------------------------

async fn event_log_rejects_update_and_delete_in_the_database(svc: Service) {
    use kyso_registry::sqlx;
    let _p = seed(&svc).await;
    let before = svc.events().await;
    // A second pool on the same database, as an operator's tool would open.
    let db = kyso_registry::storage::Db::connect(
        &svc.database_url,
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
        kyso_registry::metrics::Metrics::new().unwrap().db_duration,
    )
    .await
    .unwrap();
    let mut statements = vec![
        "UPDATE events SET actor = 'someone else' WHERE seq = 1",
        "UPDATE events SET reason = ''",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
    ];
    if svc.database_url.starts_with("postgres") {
        statements.push("TRUNCATE events");
    }
    for sql in statements {
        let err = sqlx::query(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(svc.events().await, before);
    // Appending still works, through the service and its write path.
    svc.c()
        .create_title(pb::CreateTitleRequest {
            change: change("titles"),
            name: "Chánh Văn phòng".into(),
        })
        .await
        .unwrap();
    assert_eq!(svc.events().await.len(), before.len() + 1);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Every scenario on both backends: `sqlite::NAME` (the embedded default, a temporary file) and
// `postgres::NAME` (a throwaway cluster of its own)
// ---------------------------------------------------------------------------------------------

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Service::start_sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Service::start_postgres().await).await
                }
            )*
        }
    };
}

on_both_backends!(
    chairman_approves_a_decision_with_his_own_certificate_A2_A3,
    personal_certificate_used_by_someone_else_is_refused_A1,
    title_without_authority_for_the_document_type_is_refused_A3,
    organisation_certificate_is_used_by_its_custodian_only_A5,
    organisation_certificate_only_for_allowed_profiles_A4,
    classified_documents_are_never_signed_A7,
    a_refusal_lists_every_failed_rule_A1_A4_A7,
    deputy_signs_on_behalf_of_the_chairman_only_under_a_delegation_KT_A2,
    delegation_to_oneself_is_refused_A2,
    delegation_cycle_is_refused_A2,
    suspended_certificate_is_refused_until_reinstated_N7,
    revocation_needs_a_reason_and_is_permanent_V4_V3,
    rejects_renewal_with_less_than_60_days_left_I3,
    renewal_only_once_I3,
    renewal_of_a_revoked_certificate_is_refused_V3,
    new_certificate_at_most_five_years_and_renewal_adds_at_most_three_N4,
    new_certificate_needs_a_mail_account_in_the_domain_I1,
    no_new_certificate_with_less_than_six_months_of_service_I2,
    no_new_certificate_for_an_organisation_pending_a_change_I2,
    custodian_must_belong_to_the_organisation_and_changes_need_a_handover_A5,
    check_authority_answers_for_the_signing_time_A3,
    certificate_lookups_by_fingerprint_issuer_serial_and_expiry,
    unknown_ids_are_not_found,
    duplicate_certificate_already_exists,
    non_der_certificate_is_invalid_argument_with_field_violation,
    failed_multi_row_change_leaves_no_rows_and_no_event,
    every_change_has_one_event_in_order_with_actor_and_reason,
    concurrent_writers_and_authorizations_lose_nothing,
    health_reflection_and_metrics_with_decisions_by_rule,
    event_log_replays_to_the_same_state,
    people_and_organisations_are_found_by_unicode_name,
    report_counts_certificates_per_managing_agency_per_period_R2,
    report_counts_signatures_and_exchange_volumes_R2,
    unlock_is_requested_by_the_managing_agency_and_due_next_working_day_I5,
    unlock_refusal_needs_a_written_reason_I5,
    ended_appointment_no_longer_gives_authority_A3,
    revoked_delegation_no_longer_allows_signing_on_behalf_A2,
    organisation_update_refuses_a_cycle_of_managing_agencies_I6,
    person_update_checks_the_mail_address_and_feeds_I1_I2,
    unlock_deadline_skips_holidays_I5,
    second_open_unlock_request_for_a_certificate_is_refused_I5,
    event_log_rejects_update_and_delete_in_the_database,
);
