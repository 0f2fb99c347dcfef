//! `kyso signer ...`: HSM administration for the signer (key generation, CSRs, key listing) and
//! a hidden raw-signing probe of the signer's HSM layer.
//!
//! PINs come from a file (`--pin-file`, first line) or an environment variable (`--pin-env`);
//! they are never taken on the command line and never printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use der::EncodePem;
use kyso_signer::csr::{self, PreparedCsr};
use kyso_signer::hsm::{
    Hsm, HsmConfig, HsmError, KeyAlgorithm, KeySelector, SignMechanism, Token, parse_hex_id,
    read_pin_env, read_pin_file,
};
use secrecy::SecretString;

use crate::CliError;

/// `kyso signer ...`.
#[derive(Debug, Subcommand)]
pub enum SignerCommand {
    /// Generate a key pair on a token (private key sensitive, not extractable) and print its
    /// public key (PEM).
    Keygen(KeygenArgs),
    /// Create a PKCS#10 certification request signed by a key on a token.
    Csr(CsrArgs),
    /// List the keys on a token with their protection flags (JSON).
    Keys(KeysArgs),
    /// Enrol the holder's one-time code for a personal key (A1): a TOTP seed generated in the
    /// token (sensitive, not extractable once shown), printed ONCE as an otpauth:// URI and a
    /// QR code for the holder's authenticator. Enrolling again replaces the seed and resets
    /// the attempt counter.
    EnrollOtp(EnrollOtpArgs),
    /// Sign a digest through the signer's HSM layer (HA groups, failover, recovery), configured
    /// by an HSM TOML file. A test and diagnosis tool.
    #[command(hide = true)]
    SignRaw(SignRawArgs),
}

/// Which token and how to log in.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The PKCS#11 module (e.g. /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so).
    #[arg(long)]
    module: PathBuf,
    /// The token label.
    #[arg(long)]
    token: String,
    /// File whose first line is the user PIN.
    #[arg(long, conflicts_with = "pin_env", required_unless_present = "pin_env")]
    pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN.
    #[arg(long)]
    pin_env: Option<String>,
}

impl TokenArgs {
    fn pin(&self) -> Result<SecretString, CliError> {
        match (&self.pin_file, &self.pin_env) {
            (Some(f), _) => read_pin_file(f).map_err(CliError::Usage),
            (None, Some(v)) => read_pin_env(v).map_err(CliError::Usage),
            (None, None) => Err(CliError::Usage("give --pin-file or --pin-env".to_owned())),
        }
    }

    fn open(&self) -> Result<Token, CliError> {
        let pin = self.pin()?;
        Token::open(&self.module, &self.token, &pin).map_err(hsm_err)
    }
}

/// `kyso signer keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// CKA_LABEL of the new key pair.
    #[arg(long)]
    label: String,
    /// CKA_ID of the new key pair, hex.
    #[arg(long)]
    id: String,
    /// rsa2048, rsa3072, rsa4096, p256 or p384.
    #[arg(long, default_value = "rsa2048")]
    algorithm: String,
    /// Write the public key PEM here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A key on a token, by CKA_ID or CKA_LABEL.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// CKA_ID of the key, hex (as the signer's [[keys]] id).
    #[arg(long, required_unless_present = "label")]
    id: Option<String>,
    /// CKA_LABEL of the key (as the signer's [[keys]] label).
    #[arg(long)]
    label: Option<String>,
}

impl KeyArgs {
    fn selector(&self) -> Result<KeySelector, CliError> {
        let id = match &self.id {
            Some(h) => Some(parse_hex_id(h).map_err(|e| CliError::Usage(format!("--id: {e}")))?),
            None => None,
        };
        Ok(KeySelector {
            id,
            label: self.label.clone(),
        })
    }
}

/// `kyso signer csr`.
#[derive(Debug, Args)]
pub struct CsrArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Subject, RFC 4514, most specific first: "CN=...,title=...,O=...,C=VN" (UTF-8).
    #[arg(long)]
    subject: String,
    /// Write the request (PEM) here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `kyso signer enroll-otp`.
#[derive(Debug, Args)]
pub struct EnrollOtpArgs {
    /// The personal key.
    #[command(flatten)]
    key: KeyArgs,
    /// The holder's name in the authenticator (default: the key's label or id).
    #[arg(long)]
    account: Option<String>,
    /// The issuer shown by the authenticator.
    #[arg(long, default_value = "kyso")]
    issuer: String,
    /// Print only the URI (no QR code).
    #[arg(long)]
    no_qr: bool,
}

/// `kyso signer keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    token: TokenArgs,
}

/// `kyso signer sign-raw`.
#[derive(Debug, Args)]
pub struct SignRawArgs {
    /// HSM configuration (TOML: [[modules]], [[slots]], [[keys]], [retry]).
    #[arg(long)]
    config: PathBuf,
    /// The key's name in the configuration.
    #[arg(long)]
    key: String,
    /// The digest to sign, hex.
    #[arg(long)]
    digest_hex: String,
    /// rsa-pkcs1-sha256 (sha1/384/512), rsa-pss-sha256 (...), ecdsa.
    #[arg(long, default_value = "rsa-pkcs1-sha256")]
    mechanism: String,
    /// Sign this many times (one JSON line each), to watch failover and recovery.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Pause between repetitions.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
}

/// Runs a `kyso signer` command.
pub async fn run(cmd: SignerCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SignerCommand::Keygen(a) => keygen(a).await,
        SignerCommand::Csr(a) => csr_cmd(a).await,
        SignerCommand::Keys(a) => keys(a).await,
        SignerCommand::EnrollOtp(a) => enroll_otp(a).await,
        SignerCommand::SignRaw(a) => sign_raw(a).await,
    }
}

fn hsm_err(e: HsmError) -> CliError {
    CliError::Usage(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CliError> + Send + 'static,
) -> Result<T, CliError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CliError::Usage(format!("internal: {e}")))?
}

fn write_out(path: Option<&Path>, text: &str) -> Result<(), CliError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|source| CliError::File {
            path: p.display().to_string(),
            source,
        }),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn spki_pem(spki_der: &[u8]) -> Result<String, CliError> {
    let spki = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(spki_der)
        .map_err(|e| CliError::Usage(format!("public key from the token: {e}")))?;
    spki.to_pem(der::pem::LineEnding::LF)
        .map_err(|e| CliError::Usage(e.to_string()))
}

async fn keygen(a: KeygenArgs) -> Result<ExitCode, CliError> {
    let algorithm = KeyAlgorithm::from_name(&a.algorithm).ok_or_else(|| {
        CliError::Usage(format!(
            "--algorithm {:?}: want rsa2048, rsa3072, rsa4096, p256 or p384",
            a.algorithm
        ))
    })?;
    let id = parse_hex_id(&a.id).map_err(|e| CliError::Usage(format!("--id: {e}")))?;
    blocking(move || {
        let token = a.token.open()?;
        let spki = token
            .generate_key(&a.label, &id, algorithm)
            .map_err(hsm_err)?;
        write_out(a.out.as_deref(), &spki_pem(&spki)?)
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn csr_cmd(a: CsrArgs) -> Result<ExitCode, CliError> {
    let sel = a.key.selector()?;
    let subject = csr::parse_subject(&a.subject).map_err(hsm_err)?;
    blocking(move || {
        let token = a.key.token.open()?;
        let spki = token.public_key(&sel).map_err(hsm_err)?;
        let prepared = PreparedCsr::new(subject, &spki).map_err(hsm_err)?;
        let sig = token
            .sign(&sel, &spki, prepared.mechanism, &prepared.digest)
            .map_err(hsm_err)?;
        let req = prepared.finish(&sig).map_err(hsm_err)?;
        let pem = csr::to_pem(&req).map_err(hsm_err)?;
        write_out(a.out.as_deref(), &pem)
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn enroll_otp(a: EnrollOtpArgs) -> Result<ExitCode, CliError> {
    let sel = a.key.selector()?;
    let account = a
        .account
        .clone()
        .unwrap_or_else(|| match (&sel.label, &sel.id) {
            (Some(l), _) => l.clone(),
            (None, Some(id)) => hex::encode(id),
            (None, None) => String::new(),
        });
    let uri = blocking(move || {
        let token = a.key.token.open()?;
        let seed = token.enroll_otp(&sel).map_err(hsm_err)?;
        Ok(kyso_signer::consent::otpauth_uri(
            &a.issuer, &account, &seed,
        ))
    })
    .await?;
    println!("{uri}");
    if !a.no_qr {
        let code = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| CliError::Usage(format!("QR code: {e}")))?;
        let art = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        println!("{art}");
    }
    eprintln!(
        "the seed is shown once: scan it now; the token keeps it sensitive and not extractable"
    );
    Ok(ExitCode::SUCCESS)
}

async fn keys(a: KeysArgs) -> Result<ExitCode, CliError> {
    let list = blocking(move || a.token.open()?.list_keys().map_err(hsm_err)).await?;
    let json = serde_json::to_string_pretty(&list).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

async fn sign_raw(a: SignRawArgs) -> Result<ExitCode, CliError> {
    let mechanism = SignMechanism::from_name(&a.mechanism)
        .ok_or_else(|| CliError::Usage(format!("--mechanism {:?}: unknown", a.mechanism)))?;
    let digest = hex::decode(a.digest_hex.trim())
        .map_err(|e| CliError::Usage(format!("--digest-hex: {e}")))?;
    let config = HsmConfig::from_toml_file(&a.config).map_err(hsm_err)?;
    let hsm = blocking(move || Hsm::open(config).map_err(hsm_err)).await?;
    let mut failed = false;
    if a.repeat <= 1 {
        let r = hsm.sign(&a.key, mechanism, &digest).await;
        hsm.shutdown().await;
        let sig = r.map_err(hsm_err)?;
        println!("{}", hex::encode(sig));
        return Ok(ExitCode::SUCCESS);
    }
    for i in 0..a.repeat {
        let started = Instant::now();
        let r = hsm.sign(&a.key, mechanism, &digest).await;
        let ms = started.elapsed().as_millis() as u64;
        let line = match r {
            Ok(sig) => {
                serde_json::json!({"i": i, "ok": true, "ms": ms, "signature": hex::encode(sig)})
            }
            Err(e) => {
                failed = true;
                serde_json::json!({"i": i, "ok": false, "ms": ms, "error": e.to_string(),
                    "unavailable": matches!(e, HsmError::Unavailable { .. })})
            }
        };
        println!("{line}");
        tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
    }
    let health =
        serde_json::to_string(&hsm.health()).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{{\"health\": {health}}}");
    hsm.shutdown().await;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
