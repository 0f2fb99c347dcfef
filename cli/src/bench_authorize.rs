//! `kyso bench authorize`: seeds a synthetic province through the registry API (or, for
//! the issue's size, straight into the registry's database in one transaction, by the
//! registry's own `book::seed`), then measures `Authorize` calls per second and latency
//! percentiles, closed loop and/or at fixed rates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_proto::signer::v1 as spb;
use kyso_registry::book::seed::{self, ProvinceSpec, Signer};
use serde_json::json;
use tonic::transport::Channel;

use crate::CliError;
use crate::client::ServerArgs;

/// `kyso bench authorize`.
#[derive(Debug, Args)]
pub struct AuthorizeBench {
    #[command(flatten)]
    server: ServerArgs,
    /// Concurrent callers.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Open loop at this many calls per second (all streams together); latency is
    /// measured from the scheduled send time; 0 is closed loop. Repeat it to measure several
    /// loads over one seeded province (then the output is an array). Without it: closed loop.
    #[arg(long)]
    rate: Vec<f64>,
    /// Organisations to seed (the default seeds in about 20 s on the 2-core machine).
    #[arg(long, default_value_t = 1000)]
    organisations: usize,
    /// Personal certificates to seed (each with its person and appointment).
    #[arg(long, default_value_t = 5000)]
    certificates: usize,
    /// The registry's configured mail domain (I1): people's mail accounts are made in it.
    #[arg(long, default_value = "khanhhoa.gov.vn")]
    mail_domain: String,
    /// Concurrent calls while seeding.
    #[arg(long, default_value_t = 8)]
    seed_concurrency: usize,
    /// Seed straight into the registry's database (its `database_url`) in one transaction
    /// with one `bench.seeded` event, instead of through the API: 100 000 certificates in
    /// about a minute. The running registry sees it through its event log.
    #[arg(long)]
    seed_database_url: Option<String>,
    /// Closed loop for exactly this many calls (all streams together), no warm-up and no
    /// time limit: a fixed amount of work, for counting the registry's instructions per call
    /// (scripts/callgrind-authorize.sh) rather than for timing.
    #[arg(long, conflicts_with = "rate")]
    calls: Option<u64>,
}

fn change(reason: &str) -> Option<pb::Change> {
    Some(pb::Change {
        actor: "kyso bench authorize".into(),
        reason: reason.into(),
    })
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn registry(e: kyso_registry::Error) -> CliError {
    usage(format!("registry database: {e}"))
}

/// The province of `b`, seeded through the registry API.
async fn seed_api(
    c: &RegistryClient<Channel>,
    b: &AuthorizeBench,
    spec: &ProvinceSpec,
) -> Result<(Vec<Signer>, String), CliError> {
    let mut cl = c.clone();
    let title = cl
        .create_title(pb::CreateTitleRequest {
            change: change("bench"),
            name: spec.title_name(),
        })
        .await?
        .into_inner()
        .id;
    let doc = spec.document_type();
    cl.create_document_type(pb::CreateDocumentTypeRequest {
        change: change("bench"),
        code: doc.clone(),
        name: spec.document_type_name().into(),
        classification: spb::Classification::None as i32,
        scanned_issue_allowed: false,
    })
    .await?;
    let orgs: Vec<String> = futures::stream::iter(0..b.organisations)
        .map(|i| {
            let mut c = c.clone();
            let (name, domain) = spec.organisation(i);
            async move {
                c.create_organisation(pb::CreateOrganisationRequest {
                    change: change("bench"),
                    name,
                    parent_id: String::new(),
                    managing_agency_id: String::new(),
                    mail_domain: domain,
                    code: String::new(),
                })
                .await
                .map(|r| r.into_inner().id)
            }
        })
        .buffered(b.seed_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // One grant for all organisations, in chunks to stay under the message limit.
    for chunk in orgs.chunks(1000) {
        cl.grant_authority(pb::GrantAuthorityRequest {
            change: change("bench"),
            title_authorities: chunk
                .iter()
                .map(|o| pb::TitleAuthority {
                    organisation_id: o.clone(),
                    title_id: title.clone(),
                    document_type: doc.clone(),
                })
                .collect(),
            organisation_profiles: vec![],
        })
        .await?;
    }
    let orgs = Arc::new(orgs);
    let signers: Vec<Signer> = futures::stream::iter(0..b.certificates)
        .map(|i| {
            let mut c = c.clone();
            let orgs = orgs.clone();
            let title = title.clone();
            let (name, email) = spec.person(i);
            async move {
                let org = spec
                    .organisation_of(i, &orgs)
                    .cloned()
                    .ok_or_else(|| usage("no organisation seeded"))?;
                let person = c
                    .create_person(pb::CreatePersonRequest {
                        change: change("bench"),
                        full_name: name,
                        email,
                        organisation_id: org.clone(),
                        service_end: None,
                    })
                    .await?
                    .into_inner()
                    .id;
                c.create_appointment(pb::CreateAppointmentRequest {
                    change: change("bench"),
                    person_id: person.clone(),
                    title_id: title,
                    organisation_id: org.clone(),
                    valid_from: Some(prost_types::Timestamp {
                        seconds: 0,
                        nanos: 0,
                    }),
                    valid_to: None,
                    decision_ref: spec.decision_ref(i),
                })
                .await?;
                let der = spec.certificate(i).map_err(registry)?;
                let cert = c
                    .register_certificate(pb::RegisterCertificateRequest {
                        change: change("bench"),
                        der,
                        kind: pb::CertificateKind::Personal as i32,
                        person_id: person.clone(),
                        organisation_id: org.clone(),
                        renewal_of: String::new(),
                    })
                    .await?
                    .into_inner()
                    .certificate
                    .ok_or_else(|| usage("RegisterCertificate answered without a certificate"))?;
                Ok::<_, CliError>(Signer {
                    fingerprint: cert.fingerprint,
                    person,
                    organisation: org,
                })
            }
        })
        .buffer_unordered(b.seed_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok((signers, doc))
}

/// The province of `b`, written straight into the registry's database (its `database_url`)
/// by the registry's seeding, in one write transaction with one `bench.seeded` event.
async fn seed_database(url: &str, spec: &ProvinceSpec) -> Result<(Vec<Signer>, String), CliError> {
    let metrics = kyso_registry::metrics::Metrics::new().map_err(usage)?;
    let db = kyso_registry::storage::Db::connect(
        url,
        2,
        Duration::from_secs(60),
        Duration::from_secs(60),
        metrics.db_duration,
    )
    .await
    .map_err(registry)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let change =
        kyso_registry::book::model::Change::local("kyso bench authorize", "benchmark province");
    let province = seed::province(&db, spec, &change, now)
        .await
        .map_err(registry)?;
    Ok((province.signers, province.document_type))
}

#[derive(Debug, Default)]
struct Load {
    allowed: u64,
    refused: u64,
    errors: u64,
    latencies: Vec<Duration>,
    /// From the moment the call was actually sent (open loop: without the generator's own
    /// lateness, such as the timer's 1 ms resolution).
    sent_latencies: Vec<Duration>,
    elapsed: Duration,
}

fn request(s: &Signer, doc: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        fingerprint: s.fingerprint.clone(),
        acting_person_id: s.person.clone(),
        organisation_id: s.organisation.clone(),
        document_type: doc.to_owned(),
        profile: spb::Profile::Approval as i32,
        mode: spb::SigningMode::Own as i32,
        at: None,
    }
}

async fn load(
    c: &RegistryClient<Channel>,
    signers: &Arc<Vec<Signer>>,
    doc: &str,
    streams: usize,
    duration: Duration,
    rate: Option<f64>,
    calls: Option<u64>,
) -> Result<Load, CliError> {
    match rate.filter(|r| *r > 0.0) {
        Some(rate) => open_loop(c, signers, doc, duration, rate).await,
        None => closed_loop(c, signers, doc, streams, duration, calls).await,
    }
}

/// `streams` callers, each sending its next call when the last one is answered, for
/// `duration` or, with `calls`, until that many calls have been sent.
async fn closed_loop(
    c: &RegistryClient<Channel>,
    signers: &Arc<Vec<Signer>>,
    doc: &str,
    streams: usize,
    duration: Duration,
    calls: Option<u64>,
) -> Result<Load, CliError> {
    let start = Instant::now();
    let deadline = start + duration;
    let tickets = Arc::new(AtomicU64::new(calls.unwrap_or(u64::MAX)));
    let next_signer = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(streams);
    for _ in 0..streams {
        let mut c = c.clone();
        let signers = signers.clone();
        let next_signer = next_signer.clone();
        let tickets = tickets.clone();
        let doc = doc.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut r = Load::default();
            let take = || {
                tickets
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            };
            while (calls.is_some() || Instant::now() < deadline) && take() {
                let k = next_signer.fetch_add(1, Ordering::Relaxed) % signers.len();
                let sent = Instant::now();
                let res = c.authorize(request(&signers[k], &doc)).await;
                let d = sent.elapsed();
                tally(&mut r, Ok((res.map(|a| a.into_inner().allowed), d, d)));
            }
            r
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        let r = t
            .await
            .map_err(|e| usage(format!("load task failed: {e}")))?;
        total.allowed += r.allowed;
        total.refused += r.refused;
        total.errors += r.errors;
        total.latencies.extend(r.latencies);
        total.sent_latencies.extend(r.sent_latencies);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// Open loop: call *i* is due at `i / rate` after the start and is sent then, whatever the
/// earlier answers; its latency counts from the due time (a queue anywhere shows).
///
/// The schedule is kept by a thread of its own sleeping with the operating system's
/// high-resolution timer, not by tokio's timer: that one has a 1 ms resolution, so calls
/// would leave up to a millisecond late and in clumps (every call due within one tick at
/// once), which is the generator's latency, not the registry's. The pacer only hands each
/// call to the runtime; the runtime sends it and waits for the answer.
async fn open_loop(
    c: &RegistryClient<Channel>,
    signers: &Arc<Vec<Signer>>,
    doc: &str,
    duration: Duration,
    rate: f64,
) -> Result<Load, CliError> {
    let handle = tokio::runtime::Handle::current();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (c, signers, doc) = (c.clone(), signers.clone(), doc.to_owned());
    let start = Instant::now();
    let pacer = std::thread::Builder::new()
        .name("kyso-bench-pacer".into())
        .spawn(move || {
            for i in 0u64.. {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if due.duration_since(start) >= duration {
                    break;
                }
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let req = request(&signers[(i as usize) % signers.len()], &doc);
                let mut c = c.clone();
                let call = handle.spawn(async move {
                    let sent = Instant::now();
                    let res = c.authorize(req).await;
                    let from_sent = sent.elapsed();
                    (
                        res.map(|a| a.into_inner().allowed),
                        due.elapsed(),
                        from_sent,
                    )
                });
                if tx.send(call).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| usage(format!("cannot start the pacer thread: {e}")))?;
    let mut r = Load::default();
    // The channel closes when the pacer is done; every call it started is awaited.
    while let Some(call) = rx.recv().await {
        tally(&mut r, call.await);
    }
    pacer
        .join()
        .map_err(|_| usage("the pacer thread panicked"))?;
    r.elapsed = start.elapsed();
    Ok(r)
}

type Outcome = (Result<bool, tonic::Status>, Duration, Duration);

fn tally(r: &mut Load, done: Result<Outcome, tokio::task::JoinError>) {
    match done {
        Ok((Ok(allowed), d, sent)) => {
            if allowed {
                r.allowed += 1;
            } else {
                r.refused += 1;
            }
            r.latencies.push(d);
            r.sent_latencies.push(sent);
        }
        _ => r.errors += 1,
    }
}

/// Runs `kyso bench authorize` and prints its JSON.
pub async fn run(b: AuthorizeBench) -> Result<std::process::ExitCode, CliError> {
    let url = b
        .server
        .server
        .clone()
        .ok_or_else(|| CliError::Usage("--server is required".into()))?;
    if b.streams == 0 || b.organisations == 0 || b.certificates == 0 || b.seed_concurrency == 0 {
        return Err(CliError::Usage(
            "--streams, --organisations, --certificates and --seed-concurrency must be above 0"
                .into(),
        ));
    }
    let channel = b.server.connect(&url).await?;
    let client = RegistryClient::new(channel);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default();
    let spec = ProvinceSpec {
        nonce,
        organisations: b.organisations,
        certificates: b.certificates,
        mail_domain: b.mail_domain.clone(),
    };
    let seed_start = Instant::now();
    let (signers, doc) = match &b.seed_database_url {
        Some(db) => seed_database(db, &spec).await?,
        None => seed_api(&client, &b, &spec).await?,
    };
    let seed_secs = seed_start.elapsed().as_secs_f64();
    let signers = Arc::new(signers);

    // Every seeded signer must be allowed before the numbers mean anything. Seeded into the
    // database, the province reaches the registry through its event log: wait for it.
    let waited = Instant::now();
    loop {
        let first = client
            .clone()
            .authorize(request(&signers[signers.len() - 1], &doc))
            .await;
        match first {
            Ok(a) if a.get_ref().allowed => break,
            Ok(_) | Err(_) if b.seed_database_url.is_some() && waited.elapsed().as_secs() < 120 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(a) => {
                return Err(CliError::Usage(format!(
                    "a seeded signer is refused: {:?}",
                    a.into_inner().refusals
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let visible_secs = waited.elapsed().as_secs_f64();
    let rates: Vec<Option<f64>> = if b.rate.is_empty() {
        vec![None]
    } else {
        b.rate
            .iter()
            .map(|r| Some(*r).filter(|r| *r > 0.0))
            .collect()
    };
    let mut outs = Vec::new();
    for rate in rates {
        if b.calls.is_none() {
            drop(
                load(
                    &client,
                    &signers,
                    &doc,
                    b.streams,
                    Duration::from_secs(b.warmup_secs),
                    rate,
                    None,
                )
                .await?,
            );
        }
        let run = load(
            &client,
            &signers,
            &doc,
            b.streams,
            Duration::from_secs(b.duration_secs),
            rate,
            b.calls,
        )
        .await?;
        let mut lat = run.latencies.clone();
        lat.sort_unstable();
        let mut sent_lat = run.sent_latencies.clone();
        sent_lat.sort_unstable();
        let pct_of = |lat: &[Duration], p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
            lat.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
        };
        let pct = |p: f64| pct_of(&lat, p);
        let sent_pct = |p: f64| pct_of(&sent_lat, p);
        let secs = run.elapsed.as_secs_f64().max(1e-9);
        let calls = run.allowed + run.refused;
        outs.push(json!({
            "bench": "authorize",
            "server": url,
            "organisations": b.organisations,
            "certificates": b.certificates,
            "seed": if b.seed_database_url.is_some() { "database" } else { "api" },
            "seed_s": seed_secs,
            "visible_s": visible_secs,
            "streams": b.streams,
            "mode": if rate.is_some() { "open-loop" } else { "closed-loop" },
            "target_rate": rate,
            "duration_s": secs,
            "calls": calls,
            "allowed": run.allowed,
            "refused": run.refused,
            "errors": run.errors,
            "calls_per_sec": calls as f64 / secs,
            "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
            "latency_from_send_ms": { "p50": sent_pct(0.50), "p90": sent_pct(0.90),
                "p99": sent_pct(0.99), "max": sent_pct(1.0) },
            "cores": crate::bench::cores(),
        }));
    }
    let out = if outs.len() == 1 {
        outs.pop().unwrap_or_default()
    } else {
        serde_json::Value::Array(outs)
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(std::process::ExitCode::SUCCESS)
}
