//! `kyso bench authorize`: seeds a synthetic province through the registry API,
//! then measures `Authorize` calls per second and latency percentiles.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use der::Encode;
use der::asn1::BitString;
use der::oid::ObjectIdentifier;
use futures::StreamExt;
use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_proto::signer::v1 as spb;
use serde_json::json;
use tonic::transport::Channel;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Validity;

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
    /// measured from the scheduled send time. Without it: closed loop.
    #[arg(long)]
    rate: Option<f64>,
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

/// A syntactically valid certificate with a fresh serial and key; the registry
/// indexes certificates and does not check their signature.
fn synthetic_cert(nonce: u64, i: usize, cn: &str) -> Result<Vec<u8>, CliError> {
    let rsa_sha256 = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
        parameters: None,
    };
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| usage("no randomness"))?;
    let mut serial = vec![0x01];
    serial.extend_from_slice(&nonce.to_be_bytes());
    serial.extend_from_slice(&(i as u64).to_be_bytes());
    let tbs = x509_cert::TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(usage)?,
        signature: rsa_sha256.clone(),
        issuer: Name::from_str("CN=kyso bench CA,O=kyso").map_err(usage)?,
        validity: Validity::from_now(Duration::from_secs(2 * 365 * 86_400)).map_err(usage)?,
        subject: Name::from_str(&format!("CN={cn},O=kyso bench")).map_err(usage)?,
        subject_public_key_info: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.3.101.112"),
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(&key).map_err(usage)?,
        },
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let cert = x509_cert::Certificate {
        tbs_certificate: tbs,
        signature_algorithm: rsa_sha256,
        signature: BitString::from_bytes(&[0u8; 256]).map_err(usage)?,
    };
    cert.to_der().map_err(usage)
}

/// One seeded signer: who may sign the benchmark document type with which certificate.
#[derive(Debug, Clone)]
struct Signer {
    fingerprint: String,
    person: String,
    organisation: String,
}

async fn seed(
    c: &RegistryClient<Channel>,
    b: &AuthorizeBench,
    nonce: u64,
) -> Result<(Vec<Signer>, String), CliError> {
    let mut cl = c.clone();
    let title = cl
        .create_title(pb::CreateTitleRequest {
            change: change("bench"),
            name: format!("Bench Chairman {nonce}"),
        })
        .await?
        .into_inner()
        .id;
    let doc = format!("B{nonce}");
    cl.create_document_type(pb::CreateDocumentTypeRequest {
        change: change("bench"),
        code: doc.clone(),
        name: "Bench decision".into(),
        classification: spb::Classification::None as i32,
    })
    .await?;
    let orgs: Vec<String> = futures::stream::iter(0..b.organisations)
        .map(|i| {
            let mut c = c.clone();
            let domain = format!("o{i}.{}", b.mail_domain);
            async move {
                c.create_organisation(pb::CreateOrganisationRequest {
                    change: change("bench"),
                    name: format!("Bench organisation {nonce}-{i}"),
                    parent_id: String::new(),
                    managing_agency_id: String::new(),
                    mail_domain: domain,
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
            let email = format!("p{nonce}x{i}@{}", b.mail_domain);
            async move {
                let org = orgs[i % orgs.len()].clone();
                let name = format!("Bench Person {nonce}-{i}");
                let person = c
                    .create_person(pb::CreatePersonRequest {
                        change: change("bench"),
                        full_name: name.clone(),
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
                    decision_ref: format!("{i}/QD-BENCH"),
                })
                .await?;
                let der = synthetic_cert(nonce, i, &name)?;
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

#[derive(Debug, Default)]
struct Load {
    allowed: u64,
    refused: u64,
    errors: u64,
    latencies: Vec<Duration>,
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
) -> Result<Load, CliError> {
    let start = Instant::now();
    let deadline = start + duration;
    let next_signer = Arc::new(AtomicUsize::new(0));
    let interval = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(streams as f64 / r));
    let mut tasks = Vec::with_capacity(streams);
    for s in 0..streams {
        let c = c.clone();
        let signers = signers.clone();
        let next_signer = next_signer.clone();
        let doc = doc.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut r = Load::default();
            let mut inflight = tokio::task::JoinSet::new();
            let mut next = Instant::now()
                + interval
                    .map(|i| i.mul_f64(s as f64 / streams as f64))
                    .unwrap_or_default();
            while Instant::now() < deadline {
                let k = next_signer.fetch_add(1, Ordering::Relaxed) % signers.len();
                let req = request(&signers[k], &doc);
                let mut c = c.clone();
                match interval {
                    Some(i) => {
                        // Open loop: send on schedule without waiting for earlier answers;
                        // latency counts from the scheduled time.
                        tokio::time::sleep_until(next.into()).await;
                        let scheduled = next;
                        next += i;
                        inflight.spawn(async move {
                            let res = c.authorize(req).await;
                            (res.map(|a| a.into_inner().allowed), scheduled.elapsed())
                        });
                        while let Some(done) = inflight.try_join_next() {
                            tally(&mut r, done);
                        }
                    }
                    None => {
                        let sent = Instant::now();
                        let res = c.authorize(req).await;
                        tally(
                            &mut r,
                            Ok((res.map(|a| a.into_inner().allowed), sent.elapsed())),
                        );
                    }
                }
            }
            while let Some(done) = inflight.join_next().await {
                tally(&mut r, done);
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
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

type Outcome = (Result<bool, tonic::Status>, Duration);

fn tally(r: &mut Load, done: Result<Outcome, tokio::task::JoinError>) {
    match done {
        Ok((Ok(true), d)) => {
            r.allowed += 1;
            r.latencies.push(d);
        }
        Ok((Ok(false), d)) => {
            r.refused += 1;
            r.latencies.push(d);
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
    let seed_start = Instant::now();
    let (signers, doc) = seed(&client, &b, nonce).await?;
    let seed_secs = seed_start.elapsed().as_secs_f64();
    let signers = Arc::new(signers);

    // Every seeded signer must be allowed before the numbers mean anything.
    let first = client
        .clone()
        .authorize(request(&signers[0], &doc))
        .await?
        .into_inner();
    if !first.allowed {
        return Err(CliError::Usage(format!(
            "a seeded signer is refused: {:?}",
            first.refusals
        )));
    }
    drop(
        load(
            &client,
            &signers,
            &doc,
            b.streams,
            Duration::from_secs(b.warmup_secs),
            b.rate,
        )
        .await?,
    );
    let run = load(
        &client,
        &signers,
        &doc,
        b.streams,
        Duration::from_secs(b.duration_secs),
        b.rate,
    )
    .await?;
    let mut lat = run.latencies.clone();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    };
    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let calls = run.allowed + run.refused;
    let out = json!({
        "bench": "authorize",
        "server": url,
        "organisations": b.organisations,
        "certificates": b.certificates,
        "seed_s": seed_secs,
        "streams": b.streams,
        "mode": if b.rate.is_some() { "open-loop" } else { "closed-loop" },
        "target_rate": b.rate,
        "duration_s": secs,
        "calls": calls,
        "allowed": run.allowed,
        "refused": run.refused,
        "errors": run.errors,
        "calls_per_sec": calls as f64 / secs,
        "latency_ms": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(std::process::ExitCode::SUCCESS)
}
