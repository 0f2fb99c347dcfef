//! One open-loop phase: requests leave at fixed times (`i / rate` after the start) whatever
//! the verifier's answers, each on its own task, and each latency is measured from the time
//! the request was due, not from when it left, so a queue in the client or the server shows
//! as latency (no coordinated omission). A sampler reads the processes' CPU and RSS once a
//! second for the timeline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kyso_proto::verifier::v1::verifier_client::VerifierClient;
use tonic::transport::Channel;

use super::corpus::{self, Document, Request};
use super::procstat::{self, ProcSample, Scrape};

/// Where the verifier's process figures come from.
#[derive(Clone, Debug)]
pub struct Observe {
    pub verifier_pid: Option<u32>,
    pub metrics_url: Option<String>,
}

/// One second of the sampler.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub t: f64,
    pub verifier: Option<ProcSample>,
    pub generator: Option<ProcSample>,
    pub machine: Option<(u64, u64)>,
    pub load_average: Option<f64>,
    pub scrape: Option<Scrape>,
}

impl Observe {
    pub async fn sample(&self, t: f64) -> Sample {
        let scrape = match &self.metrics_url {
            Some(u) => procstat::scrape(u).await,
            None => None,
        };
        let verifier = match self.verifier_pid {
            Some(pid) => procstat::read_proc(&pid.to_string()),
            None => scrape.as_ref().and_then(|s| s.process),
        };
        Sample {
            t,
            verifier,
            generator: procstat::read_proc("self"),
            machine: procstat::machine_ticks(),
            load_average: crate::bench::load_average(),
            scrape,
        }
    }
}

/// One request's fate.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// When it was due, seconds after the phase started.
    pub due_s: f64,
    /// When its answer arrived (or it was given up).
    pub done_s: f64,
    pub latency: Duration,
    /// `None` when the verdict was the expected one; else the error kind and a message.
    pub error: Option<(String, String)>,
    pub class: String,
}

/// A phase's raw results.
#[derive(Debug)]
pub struct PhaseRun {
    pub rate: f64,
    pub duration: Duration,
    pub outcomes: Vec<Outcome>,
    pub samples: Vec<Sample>,
    /// Requests still unanswered when the drain time ran out (counted as errors too).
    pub unfinished: usize,
}

async fn send(mut client: VerifierClient<Channel>, doc: &Document) -> Result<(), (String, String)> {
    let answer = match &doc.request {
        Request::Cms(r) => client
            .verify_cms(r.clone())
            .await
            .map(|r| corpus::answer_cms(&r.into_inner())),
        Request::Pdf(r) => client
            .verify_pdf(r.clone())
            .await
            .map(|r| corpus::answer_pdf(&r.into_inner())),
    };
    match answer {
        Ok((ind, sigs)) => doc
            .check(&ind, &sigs)
            .map_err(|m| ("wrong_verdict".to_owned(), m)),
        Err(status) => Err((
            format!("grpc_{:?}", status.code()),
            status.message().to_owned(),
        )),
    }
}

/// A fixed permutation of `0..n` (the same every run), so that consecutive requests go to
/// different documents, signers and CAs, and a run is repeatable.
pub fn order(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        // xorshift64*
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
    v
}

/// Runs `rate` requests per second for `duration` over `docs` (in `order`, cycling), then
/// waits up to `drain` for the last answers.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    clients: &[VerifierClient<Channel>],
    docs: &Arc<Vec<Document>>,
    order: &Arc<Vec<usize>>,
    offset: usize,
    rate: f64,
    duration: Duration,
    drain: Duration,
    max_in_flight: usize,
    observe: &Observe,
) -> PhaseRun {
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());

    // The sampler: one reading at the start and then once a second until told to stop.
    let sampler = {
        let observe = observe.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = vec![observe.sample(0.0).await];
            let mut tick = tokio::time::interval_at(
                (start + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        samples.push(observe.sample(start.elapsed().as_secs_f64()).await);
                    }
                    _ = stop.notified() => break,
                }
            }
            samples.push(observe.sample(start.elapsed().as_secs_f64()).await);
            samples
        })
    };

    let n = (rate * duration.as_secs_f64()).round().max(0.0) as usize;
    let mut dropped = Vec::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let idx = order
            .get((offset + i) % order.len().max(1))
            .copied()
            .unwrap_or(0);
        let Some(doc) = docs.get(idx) else { continue };
        // The generator's own bound: past it the request is not sent and counts as an error
        // (the verifier is so far behind that more load would only measure this process).
        if in_flight.load(Ordering::Relaxed) >= max_in_flight {
            let t = due.duration_since(start).as_secs_f64();
            dropped.push(Outcome {
                due_s: t,
                done_s: t,
                latency: Duration::ZERO,
                error: Some((
                    "not_sent_in_flight_bound".into(),
                    format!("{max_in_flight} requests outstanding"),
                )),
                class: doc.class.clone(),
            });
            continue;
        }
        let Some(client) = clients.get(i % clients.len().max(1)).cloned() else {
            continue;
        };
        let docs = docs.clone();
        let tx = tx.clone();
        let in_flight = in_flight.clone();
        in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let Some(doc) = docs.get(idx) else { return };
            let result = send(client, doc).await;
            let done = Instant::now();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Outcome {
                due_s: due.duration_since(start).as_secs_f64(),
                done_s: done.duration_since(start).as_secs_f64(),
                latency: done.duration_since(due),
                error: result.err(),
                class: doc.class.clone(),
            });
        });
    }
    drop(tx);
    // The phase lasts its full window (the sampler covers every second of it), then the
    // last answers are awaited.
    tokio::time::sleep_until((start + duration).into()).await;
    let mut outcomes = dropped;
    let deadline = tokio::time::Instant::from_std(start + duration + drain);
    while let Ok(Some(o)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        outcomes.push(o);
    }
    let unfinished = in_flight.load(Ordering::Relaxed);
    stop.notify_one();
    let samples = sampler.await.unwrap_or_default();
    PhaseRun {
        rate,
        duration,
        outcomes,
        samples,
        unfinished,
    }
}

/// Error counts by kind, and the first message of each kind.
pub fn errors(outcomes: &[Outcome]) -> (BTreeMap<String, u64>, BTreeMap<String, String>) {
    let mut counts = BTreeMap::new();
    let mut examples = BTreeMap::new();
    for (kind, msg) in outcomes.iter().filter_map(|o| o.error.as_ref()) {
        *counts.entry(kind.clone()).or_insert(0) += 1;
        examples.entry(kind.clone()).or_insert_with(|| msg.clone());
    }
    (counts, examples)
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_is_a_permutation() {
        let mut v = super::order(100, 7);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
