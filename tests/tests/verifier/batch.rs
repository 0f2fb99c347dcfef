//! `VerifyBatch` (several documents per stream message) and `verdict_only` (issue 17):
//! - a batch of mixed documents gets each its own verdict, in order, with its request_id;
//! - a batch over `limits.max_batch_items` is refused whole (RESOURCE_EXHAUSTED) and the
//!   stream goes on answering the next batch;
//! - the documents of a batch take permits of the concurrency limit one by one, as
//!   VerifyStream items do;
//! - the verdict-only report carries the same verdict as the full one on a corpus of
//!   passed, failed and indeterminate documents, without the evidence.

use std::collections::BTreeSet;

use kyso_proto::verifier::v1 as pb;
use kyso_tests::{CmsSign, PkiServers, TestPki};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::service::{CONTENT, RPC_DEADLINE, Service, config, request, sign, tamper, with_content};

/// What a document of a batch must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Passed,
    Failed(pb::SubIndication),
    InvalidArgument,
}

/// A mixed corpus: valid (attached, detached), tampered, revoked, not a CMS, empty.
fn corpus() -> Vec<(pb::VerifyCmsRequest, Expect)> {
    let content = CONTENT.as_bytes();
    let good = sign(&CmsSign::new("personal-rsa", content));
    let detached = sign(&CmsSign::new("org-rsa", content).detached());
    let tampered = tamper(&good, content);
    let revoked = sign(&CmsSign::new("revoked", content));
    vec![
        (request(good.clone()), Expect::Passed),
        (with_content(detached, content), Expect::Passed),
        (
            request(tampered),
            Expect::Failed(pb::SubIndication::HashFailure),
        ),
        (request(revoked), Expect::Failed(pb::SubIndication::Revoked)),
        (request(b"not a CMS".to_vec()), Expect::InvalidArgument),
        (request(Vec::new()), Expect::InvalidArgument),
    ]
}

#[track_caller]
fn check_answer(id: &str, exp: Expect, answer: &pb::VerifyStreamResponse) {
    assert_eq!(answer.request_id, id, "answers come in the batch's order");
    match (exp, answer.result.as_ref()) {
        (Expect::Passed, Some(pb::verify_stream_response::Result::Report(r))) => {
            assert_eq!(r.indication(), pb::Indication::TotalPassed, "{id}: {r:#?}");
        }
        (Expect::Failed(sub), Some(pb::verify_stream_response::Result::Report(r))) => {
            assert_ne!(r.indication(), pb::Indication::TotalPassed, "{id}: {r:#?}");
            assert_eq!(r.signatures[0].sub_indication(), sub, "{id}: {r:#?}");
        }
        (Expect::InvalidArgument, Some(pb::verify_stream_response::Result::Error(e))) => {
            assert_eq!(e.code, Code::InvalidArgument as i32, "{id}: {e:?}");
        }
        (exp, got) => panic!("{id}: expected {exp:?}, got {got:#?}"),
    }
}

/// A `VerifyBatch` call fed through a channel, so that a test can send a batch, read its
/// answer, and send the next on the same stream.
struct BatchStream {
    tx: mpsc::Sender<pb::VerifyCmsBatch>,
    answers: tonic::Streaming<pb::VerifyCmsBatchResponse>,
}

impl BatchStream {
    async fn open(service: &Service) -> BatchStream {
        let mut client = service.client().await;
        let (tx, rx) = mpsc::channel(4);
        let answers =
            tokio::time::timeout(RPC_DEADLINE, client.verify_batch(ReceiverStream::new(rx)))
                .await
                .expect("VerifyBatch opens in time")
                .expect("VerifyBatch is accepted")
                .into_inner();
        BatchStream { tx, answers }
    }

    async fn send(&mut self, items: Vec<pb::VerifyCmsRequest>) -> pb::VerifyCmsBatchResponse {
        self.tx
            .send(pb::VerifyCmsBatch { items })
            .await
            .expect("the stream takes the batch");
        tokio::time::timeout(RPC_DEADLINE, self.answers.message())
            .await
            .expect("the batch is answered in time")
            .expect("the stream does not fail")
            .expect("the stream is not over")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_batch_answers_each_document_in_order_V5_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Service::start(config(pki, &servers)).await;
    let mut stream = BatchStream::open(&service).await;
    let corpus = corpus();
    // Three rounds of the corpus in one batch, shuffled by a stride so neighbours differ.
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for i in 0..corpus.len() * 3 {
        let (mut req, exp) = corpus[(i * 5) % corpus.len()].clone();
        req.request_id = format!("doc-{i:02}");
        // Half of them verdict-only: the same verdicts either way.
        req.verdict_only = i % 2 == 0;
        expected.push((req.request_id.clone(), exp));
        items.push(req);
    }
    let answer = stream.send(items).await;
    assert!(answer.error.is_none(), "{:?}", answer.error);
    assert_eq!(
        answer.items.len(),
        expected.len(),
        "one answer per document"
    );
    for ((id, exp), a) in expected.iter().zip(&answer.items) {
        check_answer(id, *exp, a);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_batch_over_the_item_limit_is_refused_and_the_stream_goes_on() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.max_batch_items = 8;
    let service = Service::start(cfg).await;
    let mut stream = BatchStream::open(&service).await;
    let good = sign(&CmsSign::new("personal-ec256", CONTENT.as_bytes()));
    let batch = |n: usize| -> Vec<pb::VerifyCmsRequest> {
        (0..n)
            .map(|i| {
                let mut r = request(good.clone());
                r.request_id = format!("{n}-{i}");
                r
            })
            .collect()
    };

    let refused = stream.send(batch(9)).await;
    let e = refused
        .error
        .expect("a batch of 9 over a limit of 8 is refused");
    assert_eq!(e.code, Code::ResourceExhausted as i32, "{e:?}");
    assert!(e.message.contains("max_batch_items"), "{e:?}");
    assert!(refused.items.is_empty(), "nothing of it is verified");

    // The same stream answers the next batches: at the limit, and a single document.
    for n in [8, 1] {
        let answer = stream.send(batch(n)).await;
        assert!(answer.error.is_none(), "{:?}", answer.error);
        assert_eq!(answer.items.len(), n);
        for (i, a) in answer.items.iter().enumerate() {
            check_answer(&format!("{n}-{i}"), Expect::Passed, a);
        }
    }
    // An empty batch is answered by an empty answer, not an error.
    let empty = stream.send(Vec::new()).await;
    assert!(empty.error.is_none() && empty.items.is_empty(), "{empty:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_batch_documents_take_the_concurrency_limit_one_by_one() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.max_concurrent_requests = 3;
    cfg.limits.stream_parallelism = 64;
    cfg.limits.max_batch_items = 256;
    let service = Service::start(cfg).await;
    let good = sign(&CmsSign::new("personal-ec256", CONTENT.as_bytes()));
    // Two streams of batches of 200: 400 documents, far more than the limit of 3 at once;
    // none is shed (items wait for a permit, as VerifyStream items do) and all pass.
    // Both streams open before either sends: the calls themselves take a permit until
    // their headers are sent, and a call beyond the limit is shed (as any request).
    let mut streams = Vec::new();
    for _ in 0..2 {
        streams.push(BatchStream::open(&service).await);
    }
    let mut tasks = Vec::new();
    for (s, mut stream) in streams.into_iter().enumerate() {
        let good = good.clone();
        tasks.push(tokio::spawn(async move {
            let items = (0..200)
                .map(|i| {
                    let mut r = request(good.clone());
                    r.request_id = format!("{s}-{i}");
                    r
                })
                .collect();
            stream.send(items).await
        }));
    }
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(answer.error.is_none(), "{:?}", answer.error);
        assert_eq!(answer.items.len(), 200);
        for a in &answer.items {
            match &a.result {
                Some(pb::verify_stream_response::Result::Report(r)) => {
                    assert_eq!(r.indication(), pb::Indication::TotalPassed, "{r:#?}")
                }
                other => panic!("{}: {other:?}", a.request_id),
            }
        }
    }
    let peak = crate::admission::in_flight_peak(&service).await;
    assert!((1..=3).contains(&peak), "in-flight peak: {peak}");
}

/// What a verdict is: everything but the evidence.
fn verdict(
    r: &pb::VerifyCmsResponse,
) -> Vec<(i32, i32, i32, String, Option<prost_types::Timestamp>, i32)> {
    r.signatures
        .iter()
        .map(|s| {
            (
                s.index as i32,
                s.indication,
                s.sub_indication,
                s.message.clone(),
                s.reference_time.as_ref().and_then(|t| t.time),
                s.level,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn verdict_only_agrees_with_the_full_report_on_passed_failed_and_indeterminate_N2() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let service = Service::start(config(pki, &servers)).await;
    let mut client = service.client().await;
    let content = CONTENT.as_bytes();
    // Fixed reference time, so the two calls judge at the same instant.
    let at = prost_types::Timestamp {
        seconds: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        nanos: 0,
    };
    let mut docs: Vec<pb::VerifyCmsRequest> = corpus()
        .into_iter()
        .filter(|(_, e)| *e != Expect::InvalidArgument)
        .map(|(r, _)| r)
        .collect();
    for leaf in [
        "personal-ec256",
        "personal-pss",
        "expired",
        "notyet",
        "rogue",
        "onhold",
    ] {
        docs.push(request(sign(&CmsSign::new(leaf, content))));
    }
    let mut seen = BTreeSet::new();
    for (i, mut req) in docs.into_iter().enumerate() {
        req.at = Some(at);
        let full = tokio::time::timeout(RPC_DEADLINE, client.verify_cms(req.clone()))
            .await
            .expect("in time")
            .unwrap_or_else(|s| panic!("document {i}: {s:?}"))
            .into_inner();
        req.verdict_only = true;
        let lean = tokio::time::timeout(RPC_DEADLINE, client.verify_cms(req))
            .await
            .expect("in time")
            .unwrap_or_else(|s| panic!("document {i}: {s:?}"))
            .into_inner();
        assert_eq!(
            full.indication, lean.indication,
            "document {i}: {full:#?} / {lean:#?}"
        );
        assert_eq!(verdict(&full), verdict(&lean), "document {i}");
        for s in &lean.signatures {
            assert!(
                s.signer.is_none() && s.path.is_empty() && s.revocation.is_empty(),
                "document {i}: the verdict only, no evidence: {s:#?}"
            );
        }
        assert!(
            full.signatures
                .iter()
                .any(|s| !s.path.is_empty() || s.signer.is_some()),
            "document {i}: the full report has its evidence: {full:#?}"
        );
        seen.insert(full.indication());
    }
    assert_eq!(
        seen,
        BTreeSet::from([
            pb::Indication::TotalPassed,
            pb::Indication::TotalFailed,
            pb::Indication::Indeterminate
        ]),
        "the corpus covers every indication"
    );
}
