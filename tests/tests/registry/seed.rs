//! The authorize benchmark's province, written straight into the database by the registry's
//! own seeding (`kyso_registry::book::seed`): every row the API would write, one event, and
//! every seeded signer allowed, by the SQL path and by the index loaded afterwards.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1::{Profile, SigningMode};
use kyso_registry::book::model::Change;
use kyso_registry::book::seed::{self, ProvinceSpec};
use kyso_registry::storage::Db;
use kyso_registry::store::Store;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_seeded_province_has_every_row_and_every_signer_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("registry.db").display());
    let db = Db::connect(
        &url,
        2,
        Duration::from_secs(10),
        Duration::from_secs(10),
        kyso_registry::metrics::Metrics::new().unwrap().db_duration,
    )
    .await
    .unwrap();
    let spec = ProvinceSpec {
        nonce: 7,
        organisations: 3,
        certificates: 10,
        mail_domain: "khanhhoa.gov.vn".into(),
    };
    let change = Change::local("seed test", "benchmark province");
    let province = seed::province(&db, &spec, &change, now()).await.unwrap();
    assert_eq!(province.document_type, "B7");
    assert_eq!(province.signers.len(), 10);
    for (table, n) in [
        ("organisations", 3),
        ("title_authorities", 3),
        ("people", 10),
        ("appointments", 10),
        ("certificates", 10),
        ("certificate_status_history", 10),
        ("titles", 1),
        ("document_types", 1),
        ("events", 1),
    ] {
        assert_eq!(db.count_rows(table).await.unwrap(), n, "{table}");
    }
    // The names the API seeding uses too, found by their search keys.
    let book = Store::new(db.clone(), spec.mail_domain.clone()).book();
    let found = book.find_people("bench person 7-3", "").await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].exact);
    let sql = Store::new(db.clone(), spec.mail_domain.clone());
    let index = Store::new(db, spec.mail_domain.clone())
        .with_index()
        .await
        .unwrap();
    for s in &province.signers {
        let req = pb::AuthorizeRequest {
            fingerprint: s.fingerprint.clone(),
            acting_person_id: s.person.clone(),
            organisation_id: s.organisation.clone(),
            document_type: province.document_type.clone(),
            profile: Profile::Approval as i32,
            mode: SigningMode::Own as i32,
            at: None,
        };
        for store in [&sql, &index] {
            let d = store.authorize(&req, now()).await.unwrap();
            assert!(d.refusals.is_empty(), "{d:?}");
            assert_eq!(d.title, spec.title_name());
        }
    }
}
