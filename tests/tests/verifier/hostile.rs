//! Hostile documents through the service (issue 14): clients send, over and over and side by
//! side, the 17-certificate issuer loop (N2), the PDF form-field fan-out with a 1 MiB name,
//! and a signature whose AIA points at the metadata address. Each is answered promptly with
//! its verdict or refusal, memory stays bounded, and a client sending ordinary signatures
//! meanwhile is answered at normal latency: the work runs on the verifier's pool, not on the
//! threads that serve connections.

use std::time::{Duration, Instant};

use kyso_proto::verifier::v1 as pb;
use kyso_tests::hostile::{field_fan_out_pdf, rogue};
use kyso_tests::{CmsSign, PkiServers, TestPki, peak_rss};
use tonic::Code;

use crate::service::{CONTENT, RPC_DEADLINE, Service, config, request, sign};

#[tokio::test(flavor = "multi_thread")]
async fn hostile_documents_are_answered_promptly_and_ordinary_ones_meanwhile_N2() {
    let _turn = crate::MACHINE.lock().await;
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Service::start(config(pki, &servers)).await;
    let good = sign(&CmsSign::new("personal-ec256", CONTENT.as_bytes()));
    let loop17 = rogue().cms;
    let fan_out = field_fan_out_pdf();
    let mut client = service.client().await;
    let mut before = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        client.verify_cms(request(good.clone())).await.unwrap();
        before.push(t.elapsed());
    }
    before.sort();
    let rss_before = peak_rss();

    // Four attacking clients, each sending each hostile document five times.
    const ROUNDS: usize = 5;
    let started = Instant::now();
    let mut attack = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut c = service.client().await;
        let (loop17, fan_out) = (loop17.clone(), fan_out.clone());
        attack.spawn(async move {
            let mut slowest = Duration::ZERO;
            for _ in 0..ROUNDS {
                let t = Instant::now();
                let r = c.verify_cms(request(loop17.clone())).await.unwrap();
                let s = &r.get_ref().signatures[0];
                assert_eq!(
                    s.sub_indication,
                    pb::SubIndication::NoCertificateChainFound as i32,
                    "{s:?}"
                );
                slowest = slowest.max(t.elapsed());
                let t = Instant::now();
                let e = c
                    .verify_pdf(pb::VerifyPdfRequest {
                        pdf: fan_out.clone().into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(e.message().contains("form field name length"), "{e:?}");
                slowest = slowest.max(t.elapsed());
            }
            slowest
        });
    }
    let mut during = Vec::new();
    while !attack.is_empty() {
        let t = Instant::now();
        let r = tokio::time::timeout(RPC_DEADLINE, client.verify_cms(request(good.clone())))
            .await
            .expect("an ordinary request is answered during the attack")
            .expect("an ordinary request succeeds during the attack");
        assert_eq!(
            r.get_ref().signatures[0].indication,
            pb::Indication::TotalPassed as i32
        );
        during.push(t.elapsed());
        let mut slowest_hostile = Duration::ZERO;
        while let Some(done) = attack.try_join_next() {
            slowest_hostile = slowest_hostile.max(done.unwrap());
        }
        // A hostile document is answered well within a second (a debug build, two cores
        // shared with the attackers and the ordinary client).
        assert!(
            slowest_hostile < Duration::from_secs(2),
            "a hostile document took {slowest_hostile:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    during.sort();
    let rss_growth = peak_rss().saturating_sub(rss_before);
    eprintln!(
        "{} hostile documents in {took:?}; ordinary requests p50 {:?} before, p50 {:?} / max \
         {:?} during ({} samples); peak RSS growth {} MiB",
        4 * ROUNDS * 2,
        before[before.len() / 2],
        during[during.len() / 2],
        during.last().unwrap(),
        during.len(),
        rss_growth >> 20
    );
    assert!(
        *during.last().unwrap() < Duration::from_secs(2),
        "ordinary requests slowed to {:?}",
        during.last()
    );
    assert!(
        rss_growth < 512 << 20,
        "peak RSS grew {} MiB",
        rss_growth >> 20
    );
}
