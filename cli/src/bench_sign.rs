//! `kyso bench sign`: detached `SignCms` through a running signer (registry
//! `Authorize`, own-certificate check, CMS, HSM signature, durable audit
//! record), against the raw signing rate of the same PKCS#11 module with the
//! same number of sessions, measured in the same run.
//!
//! The raw phase opens the signer's own configuration in this process
//! (`kyso_signer::Config::from_file(..)?.load()`, then `Hsm::open`), so this
//! process needs the same PKCS#11 environment as the signer: with
//! `p11-kit-client.so`, `P11_KIT_SERVER_ADDRESS` (e.g.
//! `unix:path=.kyso-dev/p11kit.sock`); with a vendor module, its own variables.
//! The in-process `Hsm` is shut down before the gRPC phase so it does not
//! compete with the signer.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use kyso_pki::crypto::DigestAlgorithm;
use kyso_proto::signer::v1 as pb;
use kyso_proto::signer::v1::signer_client::SignerClient;
use kyso_signer::hsm::{Hsm, SignMechanism};
use serde_json::json;
use tonic::transport::Channel;

use crate::CliError;
use crate::client::ServerArgs;

/// The document size: each request signs a fresh random document of this size (its digest).
const DOCUMENT_BYTES: usize = 4096;
/// The gRPC rate must reach this share of the raw HSM rate.
const TARGET: f64 = 0.85;

/// `kyso bench sign`.
#[derive(Debug, Args)]
pub struct SignBench {
    #[command(flatten)]
    server: ServerArgs,
    /// The signer's own configuration (TOML): the raw phase opens the same modules, slots and
    /// keys in this process. Needs the signer's PKCS#11 environment (with p11-kit-client.so:
    /// P11_KIT_SERVER_ADDRESS).
    #[arg(long)]
    config: PathBuf,
    /// Key to sign with: NAME (with --profile and --acting-person) or NAME:PROFILE:PERSON_ID,
    /// e.g. `seal:issue:per_…`. Repeat for a mixed load (requests go round robin over the keys).
    #[arg(long = "key", required = true, value_name = "NAME[:PROFILE:PERSON]")]
    keys: Vec<String>,
    /// Profile for keys given without one (approval, issue, scanned-issue, copy, appendix,
    /// received, comment).
    #[arg(long)]
    profile: Option<String>,
    /// Registry ID of the person ordering the signatures, for keys given without one.
    #[arg(long)]
    acting_person: Option<String>,
    /// Registry ID of the organisation the documents belong to.
    #[arg(long)]
    organisation: String,
    /// Document type code, as the registry knows it.
    #[arg(long)]
    doc_type: String,
    /// Signing mode (own, kt, tl, tuq).
    #[arg(long, default_value = "own")]
    mode: String,
    /// Number and symbol written in the requests.
    #[arg(long, default_value = "01/BENCH")]
    number: String,
    /// Issue date, YYYY-MM-DD; default: today in Vietnam (UTC+7), as ISSUE requires (W2).
    #[arg(long)]
    issue_date: Option<String>,
    /// For ISSUE keys (A6: the seal goes only on a document the competent person signed):
    /// before measuring, have this key sign (APPROVAL, for this person) a pool of random
    /// documents through the signer; ISSUE requests then seal those documents, each with its
    /// approval CMS. Without it ISSUE requests carry no approval.
    #[arg(long, value_name = "NAME:PERSON")]
    approve_with: Option<String>,
    /// Documents in the approval pool (ISSUE requests cycle through them).
    #[arg(long, default_value_t = 32)]
    approval_pool: usize,
    /// The approver's current one-time code (A1: a personal key signs only with its holder's
    /// consent, unless the caller signs on behalf of the organisation): the whole pool (at
    /// most 32 documents) is authorised with it as one batch before it is signed.
    #[arg(long, value_name = "CODE")]
    approve_otp: Option<String>,
    /// Measured seconds, per phase.
    #[arg(long = "duration", alias = "duration-secs", default_value_t = 10)]
    duration_secs: u64,
    /// Warm-up seconds before each phase, not measured.
    #[arg(long = "warmup", alias = "warmup-secs", default_value_t = 2)]
    warmup_secs: u64,
    /// Concurrent callers in both phases; default: 2 × the sessions of the keys' slots.
    #[arg(long)]
    concurrency: Option<usize>,
    /// The level each request asks for (N1: b-b, b-t with the signer's TSA, b-lt with the
    /// validation data too); absent: the signer's level for the profile. The result counts
    /// the levels the replies reached (a slow TSA gives B-B within the budget).
    #[arg(long, value_enum)]
    level: Option<crate::sign::LevelArg>,
    /// Instead of timed phases: exactly this many gRPC requests, no raw phase and no warm-up
    /// (for counting the signer's instructions per signature: scripts/callgrind-sign.sh runs
    /// it twice with different counts).
    #[arg(long)]
    requests: Option<u64>,
}

/// One key under load, with its signing context.
#[derive(Debug, Clone)]
struct Target {
    key: String,
    mechanism: SignMechanism,
    profile: pb::Profile,
    acting_person: String,
}

/// The outcome of one phase.
#[derive(Debug, Default)]
struct Phase {
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// The first message seen for each error class.
    examples: BTreeMap<String, String>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn ops_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentile in milliseconds (`p` in 0..=1).
    fn pct_ms(&self, p: f64) -> f64 {
        super::pct_ms(&self.latencies, p)
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn parse_profile(s: &str) -> Result<pb::Profile, CliError> {
    let name = format!(
        "PROFILE_{}",
        s.trim().to_ascii_uppercase().replace('-', "_")
    );
    match pb::Profile::from_str_name(&name) {
        Some(p) if p != pb::Profile::Unspecified => Ok(p),
        _ => Err(usage(format!(
            "profile {s:?}: use approval, issue, scanned-issue, copy, appendix, received or comment"
        ))),
    }
}

fn parse_mode(s: &str) -> Result<pb::SigningMode, CliError> {
    let name = format!("SIGNING_MODE_{}", s.trim().to_ascii_uppercase());
    match pb::SigningMode::from_str_name(&name) {
        Some(m) if m != pb::SigningMode::Unspecified => Ok(m),
        _ => Err(usage(format!("--mode {s:?}: use own, kt, tl or tuq"))),
    }
}

/// Today in Vietnam (UTC+7), YYYY-MM-DD.
fn today_vn() -> String {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let t = time::OffsetDateTime::now_utc().to_offset(offset);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// A fresh random document's SHA-256.
fn random_digest() -> Result<Vec<u8>, CliError> {
    let mut doc = vec![0u8; DOCUMENT_BYTES];
    aws_lc_rs::rand::fill(&mut doc).map_err(|_| usage("no randomness"))?;
    Ok(DigestAlgorithm::Sha256.digest(&doc))
}

/// Progress on stderr, one line per phase (stdout is the JSON).
fn phase(name: &str, secs: u64) {
    eprintln!("kyso bench sign: {name} phase, {secs} s");
}

/// `concurrency` closed-loop callers for `duration` (or until `requests` were sent); each request takes the next target (round
/// robin) and a fresh document digest, made before its latency starts counting. `call` returns
/// the error class and message of a failed request.
async fn drive<F, Fut>(
    concurrency: usize,
    duration: Duration,
    requests: Option<u64>,
    targets: usize,
    call: F,
) -> Result<Phase, CliError>
where
    F: Fn(usize, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), (String, String)>> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let call = call.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut p = Phase::default();
            // With a request count the callers share it and the deadline does not apply.
            while requests.is_some() || Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if requests.is_some_and(|max| n as u64 >= max) {
                    break;
                }
                let t = n % targets.max(1);
                let digest = random_digest()?;
                let sent = Instant::now();
                match call(t, digest).await {
                    Ok(()) => {
                        p.latencies.push(sent.elapsed());
                        p.ok += 1;
                    }
                    Err((class, message)) => {
                        *p.errors.entry(class.clone()).or_default() += 1;
                        p.examples.entry(class).or_insert(message);
                    }
                }
            }
            Ok::<_, CliError>(p)
        }));
    }
    let mut total = Phase::default();
    for t in tasks {
        let p = t
            .await
            .map_err(|e| usage(format!("load task failed: {e}")))??;
        total.ok += p.ok;
        for (k, v) in p.errors {
            *total.errors.entry(k).or_default() += v;
        }
        for (k, v) in p.examples {
            total.examples.entry(k).or_insert(v);
        }
        total.latencies.extend(p.latencies);
    }
    total.elapsed = start.elapsed();
    total.latencies.sort_unstable();
    Ok(total)
}

/// Runs `kyso bench sign` and prints its JSON.
pub async fn run(b: SignBench) -> Result<ExitCode, CliError> {
    let url = b
        .server
        .server
        .clone()
        .ok_or_else(|| usage("--server is required"))?;
    if b.duration_secs == 0 {
        return Err(usage("--duration must be above 0"));
    }
    if b.requests == Some(0) {
        return Err(usage("--requests must be above 0"));
    }
    let mut ctx = SignContext {
        doc_type: b.doc_type.clone(),
        number: b.number.clone(),
        organisation: b.organisation.clone(),
        mode: parse_mode(&b.mode)?,
        issue_date: b.issue_date.clone().unwrap_or_else(today_vn),
        approvals: Vec::new(),
        next_approval: AtomicUsize::new(0),
        level: crate::sign::LevelArg::proto(b.level),
    };

    // The signer's configuration: keys, their mechanisms, their slots' sessions.
    let loaded = kyso_signer::Config::from_file(&b.config)
        .and_then(|c| c.load())
        .map_err(|e| usage(format!("--config {}: {e}", b.config.display())))?;
    let mut targets = Vec::new();
    for spec in &b.keys {
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default().to_owned();
        let (profile, person) = match (parts.next(), parts.next()) {
            (None, _) => (
                b.profile.clone().ok_or_else(|| {
                    usage(format!(
                        "--key {spec}: give --profile or NAME:PROFILE:PERSON"
                    ))
                })?,
                b.acting_person.clone().ok_or_else(|| {
                    usage(format!(
                        "--key {spec}: give --acting-person or NAME:PROFILE:PERSON"
                    ))
                })?,
            ),
            (Some(p), Some(who)) if !who.is_empty() => (p.to_owned(), who.to_owned()),
            _ => {
                return Err(usage(format!(
                    "--key {spec}: use NAME or NAME:PROFILE:PERSON"
                )));
            }
        };
        let key = loaded.keys.iter().find(|k| k.name == name).ok_or_else(|| {
            usage(format!(
                "--key {name}: not a key of {} (keys: {})",
                b.config.display(),
                loaded
                    .keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        targets.push(Target {
            key: name,
            mechanism: key.scheme.mechanism(DigestAlgorithm::Sha256),
            profile: parse_profile(&profile)?,
            acting_person: person,
        });
    }
    // The sessions that can serve these keys: every slot holding one of them, counted once.
    let mut slots: Vec<String> = loaded
        .hsm
        .keys
        .iter()
        .filter(|k| targets.iter().any(|t| t.key == k.name))
        .flat_map(|k| k.slots.iter().cloned())
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let sessions: usize = loaded
        .hsm
        .slots
        .iter()
        .filter(|s| slots.contains(&s.name))
        .map(|s| s.sessions)
        .sum();
    let concurrency = b.concurrency.unwrap_or(2 * sessions.max(1));
    if concurrency == 0 {
        return Err(usage("--concurrency must be above 0"));
    }
    let module_paths: Vec<String> = loaded
        .hsm
        .modules
        .iter()
        .map(|m| m.path.display().to_string())
        .collect();
    if module_paths.iter().any(|p| p.contains("p11-kit-client"))
        && std::env::var_os("P11_KIT_SERVER_ADDRESS").is_none()
    {
        return Err(usage(
            "the configuration loads p11-kit-client.so: set P11_KIT_SERVER_ADDRESS as for the signer \
             (e.g. unix:path=.kyso-dev/p11kit.sock)",
        ));
    }

    // Every key must sign through the signer before the numbers mean anything.
    let channel: Channel = b.server.connect(&url).await?;
    let client = SignerClient::new(channel);
    let mut signed_outside = 0u64;
    if let Some(spec) = &b.approve_with {
        let (key, person) = spec
            .split_once(':')
            .filter(|(k, p)| !k.is_empty() && !p.is_empty())
            .ok_or_else(|| usage(format!("--approve-with {spec}: use NAME:PERSON")))?;
        let approver = Target {
            key: key.to_owned(),
            mechanism: SignMechanism::Ecdsa, // not used for gRPC requests
            profile: pb::Profile::Approval,
            acting_person: person.to_owned(),
        };
        let pool = (0..b.approval_pool.max(1))
            .map(|_| random_digest())
            .collect::<Result<Vec<_>, _>>()?;
        // A1: one authorisation for the whole pool (a batch), outside the measured phases.
        let token = match &b.approve_otp {
            Some(otp) => {
                client
                    .clone()
                    .authorize_signature(pb::AuthorizeSignatureRequest {
                        key: key.to_owned(),
                        digest_algorithm: "sha256".into(),
                        digests: pool.clone(),
                        otp: otp.clone(),
                    })
                    .await
                    .map_err(|s| {
                        usage(format!(
                            "--approve-otp: authorising the pool failed: {}: {}",
                            s.code(),
                            s.message()
                        ))
                    })?
                    .into_inner()
                    .activation_token
            }
            None => String::new(),
        };
        for digest in pool {
            let mut req = ctx.request(&approver, digest.clone());
            req.activation_token = token.clone();
            let cms = client
                .clone()
                .sign_cms(req)
                .await
                .map_err(|s| {
                    usage(format!(
                        "--approve-with {spec}: approving a document failed: {}: {}",
                        s.code(),
                        s.message()
                    ))
                })?
                .into_inner()
                .cms;
            ctx.approvals.push((digest, cms));
            signed_outside += 1;
        }
    }
    let ctx = Arc::new(ctx);
    for t in &targets {
        let req = ctx.request(t, random_digest()?);
        let resp = client.clone().sign_cms(req).await.map_err(|s| {
            usage(format!(
                "the probe signature with key {:?} failed: {}: {}",
                t.key,
                s.code(),
                s.message()
            ))
        })?;
        if resp.into_inner().cms.is_empty() {
            return Err(usage(format!(
                "key {:?}: the signer answered an empty CMS",
                t.key
            )));
        }
        signed_outside += 1;
    }

    // Raw phase: the same module, slots and keys in this process (not with --requests: that
    // run counts the signer's own work).
    let shared = Arc::new(targets.clone());
    let raw = if b.requests.is_none() {
        let hsm_config = loaded.hsm;
        let hsm = tokio::task::spawn_blocking(move || Hsm::open(hsm_config))
            .await
            .map_err(|e| usage(format!("opening the HSM: {e}")))?
            .map_err(|e| usage(format!("opening the HSM from {}: {e}", b.config.display())))?;
        let hsm = Arc::new(hsm);
        let raw_call = {
            let hsm = hsm.clone();
            let targets = shared.clone();
            move |i: usize, digest: Vec<u8>| {
                let hsm = hsm.clone();
                let targets = targets.clone();
                async move {
                    let t = &targets[i];
                    hsm.sign(&t.key, t.mechanism, &digest)
                        .await
                        .map(|_| ())
                        .map_err(|e| ("hsm".to_owned(), e.to_string()))
                }
            }
        };
        if b.warmup_secs > 0 {
            phase("raw warm-up", b.warmup_secs);
            drive(
                concurrency,
                Duration::from_secs(b.warmup_secs),
                None,
                targets.len(),
                raw_call.clone(),
            )
            .await?;
        }
        phase("raw", b.duration_secs);
        let raw = drive(
            concurrency,
            Duration::from_secs(b.duration_secs),
            None,
            targets.len(),
            raw_call,
        )
        .await?;
        eprintln!("kyso bench sign: raw phase done");
        // Close the in-process sessions so they do not compete with the signer.
        match Arc::try_unwrap(hsm) {
            Ok(h) => h.shutdown().await,
            Err(h) => drop(h),
        }
        raw
    } else {
        Phase::default()
    };

    // gRPC phase. The levels the replies reached, by name (reset after the warm-up).
    let reached: Arc<std::sync::Mutex<BTreeMap<String, u64>>> = Arc::default();
    let grpc_call = {
        let client = client.clone();
        let targets = shared.clone();
        let ctx = ctx.clone();
        let reached = reached.clone();
        move |i: usize, digest: Vec<u8>| {
            let mut client = client.clone();
            let targets = targets.clone();
            let ctx = ctx.clone();
            let reached = reached.clone();
            async move {
                let req = ctx.request(&targets[i], digest);
                match client.sign_cms(req).await {
                    Ok(r) if !r.get_ref().cms.is_empty() => {
                        let level = pb::SignatureLevel::try_from(r.get_ref().level)
                            .map(kyso_signer::timestamp::level_name)
                            .unwrap_or("UNKNOWN");
                        if let Ok(mut m) = reached.lock() {
                            *m.entry(level.to_owned()).or_default() += 1;
                        }
                        Ok(())
                    }
                    Ok(_) => Err(("EmptyCms".to_owned(), "empty CMS".to_owned())),
                    Err(s) => Err((format!("{:?}", s.code()), s.message().to_owned())),
                }
            }
        }
    };
    let mut warm_signed = 0;
    if b.warmup_secs > 0 && b.requests.is_none() {
        phase("grpc warm-up", b.warmup_secs);
        warm_signed = drive(
            concurrency,
            Duration::from_secs(b.warmup_secs),
            None,
            targets.len(),
            grpc_call.clone(),
        )
        .await?
        .ok;
    }
    signed_outside += warm_signed;
    if let Ok(mut m) = reached.lock() {
        m.clear();
    }
    phase("grpc", b.duration_secs);
    let grpc = drive(
        concurrency,
        Duration::from_secs(b.duration_secs),
        b.requests,
        targets.len(),
        grpc_call,
    )
    .await?;

    let raw_rate = raw.ops_per_sec();
    let grpc_rate = grpc.ops_per_sec();
    let ratio = if raw_rate > 0.0 {
        grpc_rate / raw_rate
    } else {
        0.0
    };
    let out = json!({
        "bench": "sign",
        "server": url,
        "config": b.config.display().to_string(),
        "modules": module_paths,
        "keys": targets.iter().map(|t| json!({
            "key": t.key,
            "mechanism": t.mechanism.name(),
            "profile": t.profile.as_str_name(),
            "acting_person_id": t.acting_person,
        })).collect::<Vec<_>>(),
        "document_bytes": DOCUMENT_BYTES,
        "approve_with": b.approve_with,
        "approval_pool": ctx.approvals.len(),
        "slots": slots,
        "sessions": sessions,
        "concurrency": concurrency,
        "duration_s": b.duration_secs,
        "requests": b.requests,
        "warmup_s": b.warmup_secs,
        "raw": {
            "signatures": raw.ok,
            "elapsed_s": raw.elapsed.as_secs_f64(),
            "ops_per_sec": raw_rate,
            "p50_ms": raw.pct_ms(0.50),
            "p99_ms": raw.pct_ms(0.99),
            "max_ms": raw.pct_ms(1.0),
            "errors": raw.error_count(),
            "error_examples": raw.examples,
        },
        "grpc": {
            "signatures": grpc.ok,
            "elapsed_s": grpc.elapsed.as_secs_f64(),
            "ops_per_sec": grpc_rate,
            "p50_ms": grpc.pct_ms(0.50),
            "p99_ms": grpc.pct_ms(0.99),
            "max_ms": grpc.pct_ms(1.0),
            "errors": grpc.errors,
            "error_examples": grpc.examples,
            // Signatures made outside the measured window (one probe per key, the warm-up):
            // with `signatures`, the number of `signed` records this run added to the audit log.
            "signed_outside_measurement": signed_outside,
            // The level asked for and, per level, how many replies reached it.
            "level_requested": pb::SignatureLevel::try_from(ctx.level)
                .map(kyso_signer::timestamp::level_name)
                .unwrap_or("UNSPECIFIED"),
            "levels_reached": reached.lock().map(|m| m.clone()).unwrap_or_default(),
        },
        "ratio": ratio,
        "target": TARGET,
        "met": ratio >= TARGET,
        "cores": super::cores(),
        "load_average_1m": super::load_average(),
    });
    eprintln!("kyso bench sign: done");
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    // A missed target is a result; a phase without a single signature is not a measurement.
    if (raw.ok == 0 && b.requests.is_none()) || grpc.ok == 0 {
        eprintln!("kyso: a phase made no signature; see error_examples");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The parts of the signing context shared by every request.
#[derive(Debug)]
struct SignContext {
    doc_type: String,
    number: String,
    organisation: String,
    mode: pb::SigningMode,
    issue_date: String,
    /// Approved documents (digest, approval CMS) that ISSUE requests seal, in turn.
    approvals: Vec<(Vec<u8>, Vec<u8>)>,
    next_approval: AtomicUsize,
    /// The level asked for (0: the signer's for the profile).
    level: i32,
}

impl SignContext {
    /// A detached `SignCms` request for `digest`, as `kyso sign --detached` sends it: only the
    /// digest crosses the network.
    fn request(&self, t: &Target, digest: Vec<u8>) -> pb::SignCmsRequest {
        let (digest, approval) = match t.profile {
            pb::Profile::Issue if !self.approvals.is_empty() => {
                let i = self.next_approval.fetch_add(1, Ordering::Relaxed) % self.approvals.len();
                self.approvals[i].clone()
            }
            _ => (digest, Vec::new()),
        };
        pb::SignCmsRequest {
            key: t.key.clone(),
            context: Some(pb::SigningContext {
                document: Some(pb::DocumentInfo {
                    document_type: self.doc_type.clone(),
                    number_and_symbol: self.number.clone(),
                    issue_date: self.issue_date.clone(),
                    classification: pb::Classification::None as i32,
                }),
                profile: t.profile as i32,
                mode: self.mode as i32,
                acting_person_id: t.acting_person.clone(),
                organisation_id: self.organisation.clone(),
            }),
            payload: Some(pb::sign_cms_request::Payload::Digest(digest)),
            detached: true,
            digest_algorithm: "sha256".into(),
            signing_time: None,
            approval,
            // SCANNED_ISSUE is not benchmarked: its competent person is a registry fact.
            competent_person_id: String::new(),
            activation_token: String::new(),
            // `--level`, else the signer's level for the profile ([levels]).
            level: self.level,
        }
    }
}
