//! The set-up shared by the registry's end-to-end tests: `kyso_registry::serve` in-process on
//! loopback listeners over a temporary SQLite file or a throwaway PostgreSQL cluster, a sample
//! province seeded through the gRPC management calls (Khánh Hòa People's Committee: the
//! Chairman with a personal certificate, the organisation certificate kept by the clerk), tonic
//! clients as the signer and the verifier, and `on_both_backends!`, which runs every scenario
//! of a topic module on both backends.
//!
//! The scenarios live by topic: `authority`, `certificates`, `events`, `organisations`,
//! `reports`, `unlock`. Test names carry the DOMAIN.md rule they check. Certificates are the
//! test PKI's leaves, or self-signed ones made with the openssl CLI when a test needs
//! particular validity dates (the registry indexes certificates; it does not build paths).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_proto::signer::v1::{Classification, Profile, SigningMode};
use kyso_registry::{Config, Listeners, serve, system_clock};
use kyso_tests::TestPki;
use kyso_tests::pg::PgCluster;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::transport::Channel;
use tonic_types::StatusExt;

pub(crate) const DAY: i64 = 86_400;
pub(crate) const YEAR: i64 = 365 * DAY;
pub(crate) const DOMAIN: &str = "khanhhoa.gov.vn";

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

pub(crate) fn change(reason: &str) -> Option<pb::Change> {
    Some(pb::Change {
        actor: "subscriber-manager@sotttt.khanhhoa.gov.vn".into(),
        reason: reason.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------------

pub(crate) struct Service {
    client: RegistryClient<Channel>,
    pub(crate) grpc_addr: SocketAddr,
    pub(crate) database_url: String,
    /// Dropped after the service: the cluster outlives the pool using it.
    _postgres: Option<PgCluster>,
    pub(crate) metrics_addr: SocketAddr,
    pub(crate) dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<kyso_registry::Result<()>>>,
}

impl Service {
    pub(crate) async fn start_sqlite() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("registry.db").display());
        Self::start_on(dir, url, None).await
    }

    pub(crate) async fn start_postgres() -> Service {
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
            access: kyso_registry::config::AccessSection {
                development_plaintext: true,
                ..kyso_registry::config::AccessSection::default()
            },
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

    pub(crate) fn c(&self) -> RegistryClient<Channel> {
        self.client.clone()
    }

    pub(crate) async fn stop(mut self) {
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

    pub(crate) async fn events(&self) -> Vec<pb::Event> {
        events(self.c()).await
    }
}

/// The first 1,000 events of the log, read through `client`.
pub(crate) async fn events(mut client: RegistryClient<Channel>) -> Vec<pb::Event> {
    client
        .list_events(pb::ListEventsRequest {
            after_seq: 0,
            limit: 1000,
        })
        .await
        .unwrap()
        .into_inner()
        .events
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
pub(crate) struct Province {
    pub(crate) ubnd: String,
    pub(crate) sotttt: String,
    pub(crate) chairman: String,
    pub(crate) deputy: String,
    pub(crate) clerk: String,
    pub(crate) outsider: String,
    pub(crate) chairman_title: String,
    pub(crate) deputy_title: String,
    /// The Chairman's personal certificate (test PKI leaf `personal-rsa`).
    pub(crate) chairman_cert: String,
    /// The deputy's personal certificate (leaf `personal-ec256`).
    pub(crate) deputy_cert: String,
    /// The organisation certificate (leaf `org-rsa`), kept by the clerk.
    pub(crate) org_cert: String,
}

pub(crate) async fn create_person(
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

pub(crate) async fn appoint(c: &mut RegistryClient<Channel>, person: &str, title: &str, org: &str) {
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

pub(crate) async fn register(
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

pub(crate) async fn seed(svc: &Service) -> Province {
    let mut c = svc.c();
    let pki = TestPki::get();
    let sotttt = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: "Sở Thông tin và Truyền thông tỉnh Khánh Hòa".into(),
            parent_id: String::new(),
            managing_agency_id: String::new(),
            mail_domain: "sotttt.khanhhoa.gov.vn".into(),
            code: String::new(),
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
            code: String::new(),
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
            scanned_issue_allowed: false,
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

pub(crate) fn authorize_req(
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

pub(crate) async fn authorize(svc: &Service, req: pb::AuthorizeRequest) -> pb::AuthorizeResponse {
    svc.c().authorize(req).await.unwrap().into_inner()
}

pub(crate) fn rules(r: &pb::AuthorizeResponse) -> Vec<&str> {
    r.refusals.iter().map(|x| x.rule.as_str()).collect()
}

/// The rule IDs of a status's PreconditionFailure violations.
pub(crate) fn status_rules(s: &Status) -> Vec<String> {
    s.get_details_precondition_failure()
        .map(|p| p.violations.iter().map(|v| v.r#type.clone()).collect())
        .unwrap_or_default()
}

pub(crate) fn bad_fields(s: &Status) -> Vec<String> {
    s.get_details_bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Changes a certificate's status (suspend, reinstate, revoke).
pub(crate) async fn set_status(
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
                    super::$name($crate::setup::Service::start_sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::setup::Service::start_postgres().await).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
