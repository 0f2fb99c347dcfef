//! Admission under attack (issue 14): what the verifier holds at once stays within its limits
//! whatever the clients send, and ordinary requests are still answered meanwhile.
//! - A `VerifyStream` of 10,000 items: its items take permits of the concurrency limit (the
//!   in-flight gauge never passes it) and are all answered, in order.
//! - An item whose revocation check hangs gets its own DEADLINE_EXCEEDED; the stream goes on.
//! - 600 concurrent requests of 32 MiB: the bytes-in-flight budget admits a few at a time and
//!   sheds the rest with RESOURCE_EXHAUSTED at once; peak memory stays bounded; a client
//!   sending ordinary requests all along is answered at normal latency.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use kyso_proto::verifier::v1 as pb;
use kyso_tests::{CmsSign, DownMode, PkiServers, TestPki, peak_rss};
use tonic::Code;
use tonic::codegen::http;
use tower::ServiceExt;

use crate::service::{CONTENT, RPC_DEADLINE, Service, config, request, sign};

/// The in-flight high-water mark, read from `/metrics`.
pub(crate) async fn in_flight_peak(service: &Service) -> i64 {
    let addr = service.metrics_addr;
    let r = tokio::task::spawn_blocking(move || {
        kyso_tests::exchange(addr, "GET", "/metrics", None, b"", Duration::from_secs(5))
    })
    .await
    .unwrap()
    .expect("/metrics answers");
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("kyso_verifier_in_flight_peak "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the in-flight gauge is exported")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_of_10000_items_stays_within_the_concurrency_limit() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.max_concurrent_requests = 6;
    cfg.limits.stream_parallelism = 64;
    let service = Service::start(cfg).await;
    let mut client = service.client().await;
    let good = sign(&CmsSign::new("personal-ec256", CONTENT.as_bytes()));
    const ITEMS: usize = 10_000;
    let requests: Vec<pb::VerifyCmsRequest> = (0..ITEMS)
        .map(|i| {
            // Mostly cheap refusals, one real signature in ten.
            let mut r = if i % 10 == 0 {
                request(good.clone())
            } else {
                request(format!("item {i}: not a CMS").into_bytes())
            };
            r.request_id = i.to_string();
            r
        })
        .collect();

    let started = Instant::now();
    let mut stream = client
        .verify_stream(tokio_stream::iter(requests))
        .await
        .expect("VerifyStream is accepted")
        .into_inner();
    let (mut answered, mut passed) = (0usize, 0usize);
    while let Some(item) = tokio::time::timeout(RPC_DEADLINE, stream.message())
        .await
        .expect("the stream keeps answering")
        .expect("the stream does not fail")
    {
        assert_eq!(item.request_id, answered.to_string(), "answers in order");
        if let Some(pb::verify_stream_response::Result::Report(r)) = &item.result {
            passed += usize::from(r.indication == pb::Indication::TotalPassed as i32);
        }
        answered += 1;
    }
    let peak = in_flight_peak(&service).await;
    assert_eq!(answered, ITEMS);
    assert_eq!(passed, ITEMS / 10);
    // The items stay within the limit of 6 (the call's own permit ends with its headers);
    // and they did run side by side (the limit, not a lack of work, is what bounded them).
    assert!((2..=6).contains(&peak), "in-flight peak: {peak}");
    eprintln!(
        "{ITEMS} stream items answered in {:?} (in-flight peak sampled {peak})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_item_past_its_deadline_fails_alone() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.request_timeout_ms = 1_500;
    let service = Service::start(cfg).await;
    let mut client = service.client().await;
    // OCSP and CRLs hang: the check of a real signature cannot finish.
    servers.crl.set_down_mode(DownMode::Hang);
    servers.crl.set_down(true);
    servers.ocsp_proxy.set_down_mode(DownMode::Hang);
    servers.ocsp_proxy.set_down(true);
    let good = sign(&CmsSign::new("personal-rsa", CONTENT.as_bytes()));
    let items = vec![
        request(b"first: not a CMS".to_vec()),
        request(good),
        request(b"third: not a CMS".to_vec()),
    ];
    let started = Instant::now();
    let answers: Vec<pb::VerifyStreamResponse> = {
        let mut stream = client
            .verify_stream(tokio_stream::iter(items))
            .await
            .expect("VerifyStream is accepted")
            .into_inner();
        let mut out = Vec::new();
        while let Some(a) = tokio::time::timeout(RPC_DEADLINE, stream.message())
            .await
            .expect("the stream answers")
            .expect("the stream does not fail")
        {
            out.push(a);
        }
        out
    };
    let took = started.elapsed();
    assert_eq!(answers.len(), 3);
    let code = |a: &pb::VerifyStreamResponse| match &a.result {
        Some(pb::verify_stream_response::Result::Error(e)) => Code::from(e.code),
        _ => Code::Ok,
    };
    assert_eq!(code(&answers[0]), Code::InvalidArgument);
    assert_eq!(
        code(&answers[1]),
        Code::DeadlineExceeded,
        "{:?}",
        answers[1]
    );
    assert_eq!(code(&answers[2]), Code::InvalidArgument);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    servers.crl.set_down(false);
    servers.ocsp_proxy.set_down(false);
}

/// A gRPC request body of one `VerifyCmsRequest` whose signature is `len` bytes, produced
/// as it is sent (the client holds 1 MiB, not the message).
struct LazyMessage {
    head: Option<Bytes>,
    chunk: Bytes,
    left: usize,
}

impl LazyMessage {
    fn new(len: usize, chunk: &Bytes) -> Self {
        // Field 1 (signature), length-delimited: tag, varint length, bytes.
        let mut msg_head = vec![0x0a];
        let mut n = len;
        while n >= 0x80 {
            msg_head.push((n as u8) | 0x80);
            n >>= 7;
        }
        msg_head.push(n as u8);
        let total = u32::try_from(msg_head.len() + len).unwrap();
        let mut head = vec![0u8];
        head.extend_from_slice(&total.to_be_bytes());
        head.extend_from_slice(&msg_head);
        Self {
            head: Some(Bytes::from(head)),
            chunk: chunk.clone(),
            left: len,
        }
    }
}

impl Body for LazyMessage {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(h) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(h))));
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len());
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}

/// The gRPC status of a raw call (trailers-only or trailers after the body).
async fn raw_verify(channel: tonic::transport::Channel, len: usize, chunk: &Bytes) -> Code {
    let req = http::Request::builder()
        .method("POST")
        .uri("/kyso.verifier.v1.Verifier/VerifyCms")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(LazyMessage::new(len, chunk)))
        .unwrap();
    let resp = match channel.oneshot(req).await {
        Ok(r) => r,
        Err(_) => return Code::Unavailable,
    };
    let status_of = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map(Code::from)
    };
    if let Some(code) = status_of(resp.headers()) {
        return code;
    }
    match resp.into_body().collect().await {
        Ok(c) => c.trailers().and_then(status_of).unwrap_or(Code::Unknown),
        Err(_) => Code::Unavailable,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn six_hundred_concurrent_32_mib_requests_stay_within_the_bytes_budget() {
    let pki = TestPki::get();
    let servers = PkiServers::start(pki);
    let mut cfg = config(pki, &servers);
    cfg.limits.max_concurrent_requests = 1024;
    cfg.limits.max_bytes_in_flight = 256 << 20;
    cfg.limits.request_timeout_ms = 20_000;
    let service = Service::start(cfg).await;
    let good = sign(&CmsSign::new("personal-ec256", CONTENT.as_bytes()));
    let mut client = service.client().await;
    // Warm: the ordinary request's latency before the attack.
    let mut before = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        client.verify_cms(request(good.clone())).await.unwrap();
        before.push(t.elapsed());
    }
    before.sort();
    let rss_before = peak_rss();

    // The attack: 600 requests of 32 MiB at once, over 6 connections.
    const ATTACKERS: usize = 600;
    let len = (32 << 20) - 16;
    let chunk = Bytes::from(vec![0x30u8; 1 << 20]);
    let mut channels = Vec::new();
    for _ in 0..6 {
        channels.push(service.channel().await);
    }
    let started = Instant::now();
    let mut attack = tokio::task::JoinSet::new();
    for i in 0..ATTACKERS {
        let (ch, chunk) = (channels[i % channels.len()].clone(), chunk.clone());
        attack.spawn(async move { raw_verify(ch, len, &chunk).await });
    }
    // Ordinary requests all along.
    let mut during = Vec::new();
    let mut codes = Vec::new();
    while !attack.is_empty() && during.len() < 400 {
        let t = Instant::now();
        let r = tokio::time::timeout(RPC_DEADLINE, client.verify_cms(request(good.clone())))
            .await
            .expect("an ordinary request is answered during the attack")
            .expect("an ordinary request succeeds during the attack");
        assert_eq!(r.get_ref().signatures.len(), 1);
        during.push(t.elapsed());
        // Stop sampling once the attack is over.
        while let Some(done) = attack.try_join_next() {
            codes.push(done.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(done) = tokio::time::timeout(RPC_DEADLINE * 2, attack.join_next())
        .await
        .expect("every attacking request is answered")
    {
        codes.push(done.unwrap());
    }
    let took = started.elapsed();
    let shed = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    let admitted = codes
        .iter()
        .filter(|c| **c == Code::InvalidArgument)
        .count();
    let rss_growth = peak_rss().saturating_sub(rss_before);
    during.sort();
    let p50 = |v: &[Duration]| v[v.len() / 2];
    eprintln!(
        "600 x 32 MiB: {admitted} admitted (not a CMS), {shed} shed, in {took:?}; peak RSS growth \
         {} MiB; ordinary requests p50 {:?} before, p50 {:?} / max {:?} during ({} samples)",
        rss_growth >> 20,
        p50(&before),
        p50(&during),
        during.last().unwrap(),
        during.len()
    );
    assert_eq!(
        shed + admitted,
        ATTACKERS,
        "every request admitted or shed: {codes:?}"
    );
    assert!(shed > 0 && admitted > 0, "{admitted} admitted, {shed} shed");
    // Without the budget: 600 x 32 MiB x ~2 = 38 GiB. With it: a few hundred MiB.
    assert!(
        rss_growth < 1536 << 20,
        "peak RSS grew {} MiB",
        rss_growth >> 20
    );
    assert!(
        *during.last().unwrap() < Duration::from_secs(3),
        "ordinary requests slowed to {:?}",
        during.last()
    );
}
