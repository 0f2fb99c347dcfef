//! Path building under a hostile bundle (issue 14, N2): a CMS carrying 17 self-issued CA
//! certificates with one name and one key (issuers that all verify each other, a loop), and a
//! leaf signed by that key, none of them under a configured anchor. Path building must give up
//! promptly with INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND, within its budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kyso_pki::cert::Cert;
use kyso_pki::cms::Detached;
use kyso_pki::path::{PathBudget, PathBuilder, PathFailure, TrustStore};
use kyso_tests::TestPki;
use kyso_validation::report::{Indication, RevocationPolicy, SubIndication};
use kyso_validation::verify::{CmsRequest, Verifier};

use kyso_tests::hostile::rogue;

/// The test PKI's anchors only: the rogue CA is not trusted, so no path exists.
fn verifier() -> Verifier {
    kyso_tests::verifier_from(&kyso_tests::trust_config(kyso_tests::shared_servers()))
}

#[tokio::test(flavor = "multi_thread")]
async fn seventeen_self_issued_same_name_same_key_cas_answer_promptly_N2() {
    let r = rogue();
    let v = verifier();
    let before = v.paths().signature_checks();
    let started = Instant::now();
    let report = v
        .verify_cms(
            CmsRequest {
                signature: &r.cms,
                detached: Detached::None,
                at: None,
                policy: Some(RevocationPolicy::Off),
            },
            kyso_pki::time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("the CMS is well-formed and gets a verdict");
    let took = started.elapsed();
    let checks = v.paths().signature_checks() - before;
    assert_eq!(report.signatures.len(), 1, "{report:#?}");
    let sig = &report.signatures[0];
    assert_eq!(
        (sig.indication, sig.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::NoCertificateChainFound)
        ),
        "{sig:#?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "path building took {took:?} on the 17-certificate bundle"
    );
    let budget = v.paths().budget();
    assert!(
        checks <= budget.max_signature_checks as u64,
        "{checks} signature checks, budget {}",
        budget.max_signature_checks
    );
    // Same (subject, key): one candidate per level, never twice on a path.
    assert!(
        checks <= 2,
        "{checks} signature checks for one rogue issuer"
    );
    eprintln!("17-certificate bundle: {took:?}, {checks} signature check(s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_stops_the_build_with_the_reason_N2() {
    let r = rogue();
    let pki = TestPki::get();
    let anchors = Cert::parse_many(&std::fs::read(pki.root_pem()).expect("root")).expect("root");
    let budget = PathBudget {
        max_candidates: 3,
        max_signature_checks: 1,
    };
    // The rogue CA as an intermediate too, so the builder has links to try.
    let paths = PathBuilder::new(Arc::new(TrustStore::new(anchors, r.cas.clone(), &[])), None)
        .with_budget(budget);
    let started = Instant::now();
    let err = paths
        .build(&r.leaf, &r.cas)
        .await
        .expect_err("no path to the test root");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        paths.signature_checks() <= 1,
        "{}",
        paths.signature_checks()
    );
    match err {
        PathFailure::NoChain(m) => {
            assert!(
                m.contains("no path") && !m.is_empty(),
                "unexpected reason: {m}"
            );
        }
        other => panic!("expected NoChain, got {other:?}"),
    }
    // A budget of no signature check at all is exhausted on the first link.
    let paths = PathBuilder::new(
        Arc::new(TrustStore::new(Vec::new(), r.cas.clone(), &[])),
        None,
    )
    .with_budget(PathBudget {
        max_candidates: 3,
        max_signature_checks: 0,
    });
    match paths.build(&r.leaf, &r.cas).await {
        Err(PathFailure::NoChain(m)) => assert!(
            m.contains("path-building budget was exhausted") && m.contains("0 signature checks"),
            "unexpected reason: {m}"
        ),
        other => panic!("expected an exhausted budget, got {other:?}"),
    }
    assert_eq!(paths.signature_checks(), 0);
}
