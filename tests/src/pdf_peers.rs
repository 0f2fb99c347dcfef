//! Real PDF peers for the interop tests, and the sample documents.
//!
//! - pyHanko (from the package index, in a venv under the cargo target directory, made once per
//!   machine by `tests/peers/peers.sh` behind a file lock): [`Peers::pyhanko_sign`],
//!   [`Peers::pyhanko_validate`], [`Peers::pyhanko_bench`], [`Peers::tamper`], all through
//!   `tests/peers/pyhanko_tool.py`.
//! - poppler: [`pdfsig`] (with a throwaway NSS database, [`NssDb`], that trusts the test root and
//!   holds its CRLs), [`pdftotext`], [`render`] (`pdftoppm`, parsed here: [`RgbImage`]).
//! - qpdf: [`qpdf_check`].
//! - The samples of `tests/peers/make_samples.py` ([`Peers::sample`]): a Vietnamese decision
//!   with its signature block's coordinates, a ~1 MiB variant, an object-stream copy and an
//!   encrypted copy.
//!
//! Nothing here skips: a missing tool fails the test with what to install (`scripts/setup.sh`,
//! which the test command runs, installs every one of them).
//!
//! ```no_run
//! use kyso_tests::TestPki;
//! use kyso_tests::pdf_peers::{Peers, PyhankoSign, SampleKind, ValidateOptions};
//!
//! let pki = TestPki::get();
//! let peers = Peers::get();
//! let sample = peers.sample(SampleKind::Decision);
//! let signed = peers.pyhanko_sign(
//!     &sample.bytes,
//!     &PyhankoSign::leaf(pki, "personal-rsa", "Sig1").visible(sample.signature_block.signature_box),
//! );
//! let sigs = peers.pyhanko_validate(&signed, &ValidateOptions::offline(pki));
//! assert!(sigs[0].bottom_line, "{}", sigs[0].describe());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::PkiServers;
use crate::pki::TestPki;
use crate::process::{self, Output};

/// Creating the venv downloads and installs packages: generous, it happens once per machine.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// One pyHanko run (interpreter start, imports, a validation that may fetch revocation data).
const PYHANKO_TIMEOUT: Duration = Duration::from_secs(180);
/// One poppler or qpdf run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// The owner password of [`SampleKind::Encrypted`] (its user password is empty, so it opens
/// without one, as such government documents usually do).
pub const ENCRYPTED_OWNER_PASSWORD: &str = "kyso-owner";

/// `tests/peers`: the peers' scripts and requirements.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// The cargo target directory of the running test binary: the nearest ancestor of the
/// executable that holds cargo's `CACHEDIR.TAG` (so `CARGO_TARGET_DIR` and `--target` layouts
/// work without being told), else `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
    {
        return dir.to_path_buf();
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// The executables the peers run, with the Debian package of each (for the failure message).
const TOOLS: &[(&str, &str)] = &[
    ("python3", "python3 python3-venv"),
    ("pdfsig", "poppler-utils"),
    ("pdftoppm", "poppler-utils"),
    ("pdftotext", "poppler-utils"),
    ("pdfinfo", "poppler-utils"),
    ("qpdf", "qpdf"),
    ("certutil", "libnss3-tools"),
    ("crlutil", "libnss3-tools"),
];

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Fails the test (these tests never skip) when `tool` is not installed.
#[track_caller]
fn require_tool(tool: &str) {
    if find_in_path(tool).is_none() {
        let package = TOOLS
            .iter()
            .find(|(t, _)| *t == tool)
            .map_or("?", |(_, p)| p);
        panic!(
            "`{tool}` is not installed: the PDF interop tests need the Debian package(s) \
             {package}; run `bash scripts/setup.sh` as root (the test command does)"
        );
    }
}

/// A temporary working directory for one peer call.
fn workdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("kyso-pdf-peers-")
        .tempdir()
        .expect("create a temporary directory for a PDF peer")
}

/// Writes `bytes` to `dir/name` and returns the path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
    p
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A rectangle in PDF user space (points, origin bottom left): `x1 < x2`, `y1 < y2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PdfRect {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

impl PdfRect {
    pub fn new(x1: f64, y1: f64, x2: f64, y2: f64) -> PdfRect {
        PdfRect { x1, y1, x2, y2 }
    }
    pub fn width(&self) -> f64 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> f64 {
        self.y2 - self.y1
    }
    /// Whether every edge of `self` is within `tol` points of the same edge of `other`.
    pub fn close_to(&self, other: &PdfRect, tol: f64) -> bool {
        (self.x1 - other.x1).abs() <= tol
            && (self.y1 - other.y1).abs() <= tol
            && (self.x2 - other.x2).abs() <= tol
            && (self.y2 - other.y2).abs() <= tol
    }
    fn from_json(v: &Value) -> Result<PdfRect, String> {
        let a = v
            .as_array()
            .ok_or_else(|| format!("not a rectangle: {v}"))?;
        let n: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
        match n[..] {
            [x1, y1, x2, y2] => Ok(PdfRect { x1, y1, x2, y2 }),
            _ => Err(format!("not a rectangle: {v}")),
        }
    }
}

impl fmt::Display for PdfRect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:.1} {:.1} {:.1} {:.1}]",
            self.x1, self.y1, self.x2, self.y2
        )
    }
}

/// One line of text the sample generator placed, in PDF points on its page.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    /// Left end of the baseline.
    pub x: f64,
    /// Centre of the line (the lines of a signature block are centred).
    pub x_center: f64,
    /// Baseline.
    pub y: f64,
    pub width: f64,
    pub font_size: f64,
}

impl TextLine {
    fn from_json(v: &Value) -> Result<TextLine, String> {
        let num = |k: &str| {
            v[k].as_f64()
                .ok_or_else(|| format!("text line without {k}: {v}"))
        };
        Ok(TextLine {
            text: v["text"]
                .as_str()
                .ok_or_else(|| format!("text line without text: {v}"))?
                .to_owned(),
            x: num("x")?,
            x_center: num("x_center")?,
            y: num("y")?,
            width: num("width")?,
            font_size: num("font_size")?,
        })
    }
}

/// Where the signature goes on a sample: the title line ("CHỦ TỊCH"), the name line
/// ("Nguyễn Văn An") and the free space between them for the signature image (P1).
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureBlock {
    /// 1-based page.
    pub page: u32,
    pub title: TextLine,
    pub name: TextLine,
    /// Between the title's baseline (less a little) and the top of the name line.
    pub signature_box: PdfRect,
}

impl SignatureBlock {
    fn from_json(v: &Value) -> Result<SignatureBlock, String> {
        Ok(SignatureBlock {
            page: v["page"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| format!("signature block without page: {v}"))?,
            title: TextLine::from_json(&v["title"])?,
            name: TextLine::from_json(&v["name"])?,
            signature_box: PdfRect::from_json(&v["signature_box"])?,
        })
    }
}

/// The sample documents (`tests/peers/make_samples.py`). Every one has the same first page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SampleKind {
    /// One A4 page: an administrative decision of a provincial People's Committee
    /// ("Số: 123/QĐ-UBND", "QUYẾT ĐỊNH", signature block "CHỦ TỊCH" / "Nguyễn Văn An").
    Decision,
    /// The decision, then 8 pages of text and a page with an incompressible image: ~1 MiB
    /// (for benchmarks).
    Large,
    /// The decision rewritten by `qpdf --object-streams=generate` (cross-reference stream,
    /// object streams).
    ObjectStreams,
    /// The decision encrypted by `qpdf --encrypt` (AES-256, empty user password, owner
    /// password [`ENCRYPTED_OWNER_PASSWORD`]).
    Encrypted,
}

impl SampleKind {
    pub const ALL: [SampleKind; 4] = [
        SampleKind::Decision,
        SampleKind::Large,
        SampleKind::ObjectStreams,
        SampleKind::Encrypted,
    ];

    /// The key in `samples.json`.
    pub fn key(self) -> &'static str {
        match self {
            SampleKind::Decision => "decision",
            SampleKind::Large => "large",
            SampleKind::ObjectStreams => "object-streams",
            SampleKind::Encrypted => "encrypted",
        }
    }
}

/// A sample document.
#[derive(Debug, Clone)]
pub struct SamplePdf {
    pub kind: SampleKind,
    pub bytes: Vec<u8>,
    /// The file in the shared cache under the target directory: read it, never write it.
    pub path: PathBuf,
    /// On page 1 of every kind.
    pub signature_block: SignatureBlock,
}

/// pyHanko's revocation mode (`ValidationContext(revocation_mode=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationMode {
    /// Missing revocation data is fine; a failed fetch is fine.
    SoftFail,
    /// Missing revocation data is fine, but a failed fetch fails.
    #[default]
    HardFail,
    /// Every certificate needs revocation data.
    Require,
}

impl RevocationMode {
    fn arg(self) -> &'static str {
        match self {
            RevocationMode::SoftFail => "soft-fail",
            RevocationMode::HardFail => "hard-fail",
            RevocationMode::Require => "require",
        }
    }
}

/// What pyHanko validates against.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Trust roots, PEM (bundles fine) or DER.
    pub roots: Vec<PathBuf>,
    /// Other certificates for path building.
    pub intermediates: Vec<PathBuf>,
    /// CRLs given to pyHanko (PEM bundles or DER).
    pub crls: Vec<PathBuf>,
    /// OCSP responses given to pyHanko (DER).
    pub ocsp_responses: Vec<PathBuf>,
    /// URL prefix rewrites (from, to). Non-empty turns fetching on: pyHanko then asks the
    /// certificates' OCSP/CRL URLs, rewritten onto the test servers.
    pub rewrites: Vec<(String, String)>,
    /// Validation time, ISO 8601 with an offset (e.g. `2026-11-23T10:00:00+00:00`); cannot be
    /// combined with fetching.
    pub moment: Option<String>,
    pub revocation_mode: RevocationMode,
    pub retroactive_revinfo: bool,
    /// User password of an encrypted document (the samples' is empty).
    pub password: Option<String>,
}

impl ValidateOptions {
    /// The test PKI without network: the modern root, the intermediates, every genuine CRL
    /// (`crl/all.pem`), hard-fail.
    pub fn offline(pki: &TestPki) -> ValidateOptions {
        ValidateOptions {
            roots: vec![pki.root_pem()],
            intermediates: vec![pki.intermediates_pem()],
            crls: vec![pki.crls_pem()],
            ..ValidateOptions::default()
        }
    }

    /// The test PKI with pyHanko fetching OCSP and CRLs from `servers` (the certificates'
    /// URLs rewritten), revocation data required for every certificate.
    pub fn online(pki: &TestPki, servers: &PkiServers) -> ValidateOptions {
        ValidateOptions {
            roots: vec![pki.root_pem()],
            intermediates: vec![pki.intermediates_pem()],
            rewrites: servers.rewrites(),
            revocation_mode: RevocationMode::Require,
            ..ValidateOptions::default()
        }
    }

    fn args(&self, cmd: &mut Command) {
        for r in &self.roots {
            cmd.arg("--root").arg(r);
        }
        for i in &self.intermediates {
            cmd.arg("--intermediate").arg(i);
        }
        for c in &self.crls {
            cmd.arg("--crl").arg(c);
        }
        for o in &self.ocsp_responses {
            cmd.arg("--ocsp").arg(o);
        }
        for (from, to) in &self.rewrites {
            cmd.arg("--rewrite").arg(format!("{from}={to}"));
        }
        if let Some(m) = &self.moment {
            cmd.arg("--moment").arg(m);
        }
        cmd.arg("--revocation-mode").arg(self.revocation_mode.arg());
        if self.retroactive_revinfo {
            cmd.arg("--retroactive-revinfo");
        }
        if let Some(p) = &self.password {
            cmd.arg("--password").arg(p);
        }
    }
}

/// pyHanko's verdict on one signature (`validate` of `pyhanko_tool.py`).
#[derive(Debug, Clone)]
pub struct PyhankoSignature {
    /// Signature field name.
    pub field: String,
    /// The digest over the byte range matches.
    pub intact: bool,
    /// The signature value over the signed attributes verifies.
    pub valid: bool,
    /// Intact, valid and a path to a trust root (revocation included) was validated.
    pub trusted: bool,
    pub revoked: bool,
    /// `ENTIRE_FILE`, `ENTIRE_REVISION`, `CONTIGUOUS_BLOCK_FROM_START`, `UNCLEAR`; `None` on
    /// an error.
    pub coverage: Option<String>,
    /// Changes after this signature: `NONE`, `LTA_UPDATES`, `FORM_FILLING`, `ANNOTATIONS`,
    /// `OTHER`.
    pub modification_level: Option<String>,
    /// The modifications are within what the document's DocMDP allows.
    pub docmdp_ok: Option<bool>,
    /// pyHanko's overall judgement (cryptography, trust, modifications, seed values).
    pub bottom_line: bool,
    /// pyHanko's machine-readable summary, e.g. `INTACT:TRUSTED,UNTOUCHED`, `INVALID`.
    pub summary: String,
    /// The AdES sub-indication of a trust problem, e.g. `REVOKED_NO_POE`,
    /// `NO_CERTIFICATE_CHAIN_FOUND`.
    pub trust_problem: Option<String>,
    /// asn1crypto's name, e.g. `key_compromise`.
    pub revocation_reason: Option<String>,
    /// The signer's subject, human-friendly.
    pub signer: Option<String>,
    pub md_algorithm: Option<String>,
    pub subfilter: Option<String>,
    pub byte_range: Vec<u64>,
    /// pyHanko raised instead of giving a status (malformed signature).
    pub error: Option<String>,
    /// pyHanko's pretty-printed report.
    pub details: Option<String>,
    /// The whole JSON object.
    pub raw: Value,
}

impl PyhankoSignature {
    fn from_json(v: &Value) -> Result<PyhankoSignature, String> {
        let flag = |k: &str| v[k].as_bool().ok_or_else(|| format!("no {k} in {v}"));
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Ok(PyhankoSignature {
            field: text("field").ok_or_else(|| format!("no field in {v}"))?,
            intact: flag("intact")?,
            valid: flag("valid")?,
            trusted: flag("trusted")?,
            revoked: flag("revoked")?,
            coverage: text("coverage"),
            modification_level: text("modification_level"),
            docmdp_ok: v["docmdp_ok"].as_bool(),
            bottom_line: flag("bottom_line")?,
            summary: text("summary").unwrap_or_default(),
            trust_problem: text("trust_problem"),
            revocation_reason: text("revocation_reason"),
            signer: text("signer"),
            md_algorithm: text("md_algorithm"),
            subfilter: text("subfilter"),
            byte_range: v["byte_range"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
            error: text("error"),
            details: text("details"),
            raw: v.clone(),
        })
    }

    /// One line for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{}: intact={} valid={} trusted={} revoked={} coverage={:?} modification={:?} \
             bottom_line={} summary={} trust_problem={:?} error={:?}",
            self.field,
            self.intact,
            self.valid,
            self.trusted,
            self.revoked,
            self.coverage,
            self.modification_level,
            self.bottom_line,
            self.summary,
            self.trust_problem,
            self.error
        )
    }
}

/// A PAdES signature for pyHanko to make (`sign` of `pyhanko_tool.py`): SubFilter
/// ETSI.CAdES.detached, SHA-256, always as an incremental update (so a second one over a signed
/// file keeps the first intact).
#[derive(Debug, Clone)]
pub struct PyhankoSign {
    /// PEM private key, unencrypted.
    pub key: PathBuf,
    /// PEM signer certificate.
    pub cert: PathBuf,
    /// CA certificates to embed in the CMS.
    pub chain: Vec<PathBuf>,
    /// The new signature field.
    pub field: String,
    /// 1-based page of a visible field.
    pub page: u32,
    /// A visible signature: the field's rectangle (pyHanko rounds it to whole points), painted
    /// in one flat colour [`PyhankoSign::color`] so a rendering shows where it is.
    pub rect: Option<PdfRect>,
    pub color: [u8; 3],
    pub reason: Option<String>,
    pub location: Option<String>,
    /// User password of an encrypted input (the samples' is empty).
    pub password: Option<String>,
}

/// The PAdES level pyHanko signs at (B-B by default).
#[derive(Clone, Debug, Default)]
pub struct PyhankoLevel {
    /// The TSA's URL: a signature timestamp (B-T), and the document timestamp of B-LTA.
    pub timestamp_url: Option<String>,
    /// A DSS with the certificates and revocation data of the paths (B-LT).
    pub embed_validation_info: bool,
    /// A document timestamp after the DSS (B-LTA).
    pub use_pades_lta: bool,
    /// Trust roots for the paths of B-LT (the signer's and the TSA's).
    pub roots: Vec<PathBuf>,
    /// URL prefix rewrites onto the loopback OCSP/CRL servers (B-LT fetches through them).
    pub rewrites: Vec<(String, String)>,
    /// Sign with the clock moved this far (libfaketime's `-f` format, e.g. `-100d`): a
    /// signature from the past, its signing time and everything pyHanko checks then.
    pub clock: Option<String>,
}

impl PyhankoSign {
    /// An invisible signature by a leaf of the test PKI, its issuer embedded.
    pub fn leaf(pki: &TestPki, leaf: &str, field: &str) -> PyhankoSign {
        PyhankoSign {
            key: pki.leaf_key(leaf),
            cert: pki.leaf_cert(leaf),
            chain: vec![pki.leaf_issuer(leaf)],
            field: field.to_owned(),
            page: 1,
            rect: None,
            color: [0x1f, 0x4f, 0xbf],
            reason: None,
            location: None,
            password: None,
        }
    }

    /// Makes the signature visible in `rect` on page 1.
    pub fn visible(mut self, rect: PdfRect) -> PyhankoSign {
        self.rect = Some(rect);
        self
    }

    /// The stamp's colour.
    pub fn color(mut self, rgb: [u8; 3]) -> PyhankoSign {
        self.color = rgb;
        self
    }
}

/// A test variant of a signed PDF (`tamper` of `pyhanko_tool.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// A later incremental update adding a content stream (a red bar) to page 1.
    Content,
    /// A later incremental update adding a non-signature annotation (a sticky note) to page 1.
    Annotation,
    /// One bit flipped inside the signed range of every signature, where the file stays
    /// well-formed (the comment on line 2): the digest alone is wrong.
    FlipByte,
    /// One bit flipped at this offset (must be inside the last signature's first range).
    FlipByteAt(u64),
}

/// The installed peers: the venv's python and the samples. See the module documentation.
#[derive(Debug)]
pub struct Peers {
    python: PathBuf,
    samples_dir: PathBuf,
    files: BTreeMap<String, String>,
    block: SignatureBlock,
}

impl Peers {
    /// Installs the peers on first use (once per machine: a venv and the samples under
    /// `TARGET/pdf-peers`, keyed by the hash of what they are made from, parallel test
    /// processes serialised by a file lock) and checks that every tool is there. Panics with
    /// what to install when something is missing.
    pub fn get() -> &'static Peers {
        static PEERS: OnceLock<Peers> = OnceLock::new();
        PEERS.get_or_init(Peers::install)
    }

    fn install() -> Peers {
        for (tool, _) in TOOLS {
            require_tool(tool);
        }
        let base = target_dir().join("pdf-peers");
        let script = peers_dir().join("peers.sh");
        let ask = |what: &str| {
            let out = process::run(
                Command::new("bash").arg(&script).arg(&base).arg(what),
                None,
                INSTALL_TIMEOUT,
            );
            assert!(
                out.success(),
                "installing the PDF peers failed (needs python3-venv and the package index; \
                 scripts/setup.sh installs the system part): {out}"
            );
            PathBuf::from(out.stdout_str().trim())
        };
        let python = ask("venv");
        let samples_dir = ask("samples");
        let manifest = samples_dir.join("samples.json");
        let json: Value = serde_json::from_slice(&read(&manifest))
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", manifest.display()));
        let block = SignatureBlock::from_json(&json["signature_block"])
            .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let files = json["files"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Peers {
            python,
            samples_dir,
            files,
            block,
        }
    }

    /// The venv's python (pyHanko, pyhanko-certvalidator, reportlab, Pillow).
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// A sample document.
    #[track_caller]
    pub fn sample(&self, kind: SampleKind) -> SamplePdf {
        let name = self
            .files
            .get(kind.key())
            .unwrap_or_else(|| panic!("samples.json has no {:?}", kind.key()));
        let path = self.samples_dir.join(name);
        SamplePdf {
            kind,
            bytes: read(&path),
            path,
            signature_block: self.block.clone(),
        }
    }

    /// Runs `pyhanko_tool.py ARGS` and parses its JSON; panics with the output on failure.
    #[track_caller]
    fn tool(&self, cmd: &mut Command, timeout: Duration) -> Value {
        let out = process::run(cmd, None, timeout);
        assert!(out.success(), "pyHanko failed: {out}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("pyHanko printed no JSON ({e}): {out}"))
    }

    fn command(&self, sub: &str) -> Command {
        self.command_at(None, sub)
    }

    /// [`Self::command`], under `faketime -f CLOCK` when a clock is given.
    fn command_at(&self, clock: Option<&str>, sub: &str) -> Command {
        let mut cmd = match clock {
            Some(c) => {
                let mut cmd = Command::new("faketime");
                cmd.args(["-f", c]).arg(&self.python);
                cmd
            }
            None => Command::new(&self.python),
        };
        cmd.arg(peers_dir().join("pyhanko_tool.py")).arg(sub);
        cmd
    }

    /// pyHanko signs `pdf` (incrementally); returns the signed file.
    #[track_caller]
    pub fn pyhanko_sign(&self, pdf: &[u8], req: &PyhankoSign) -> Vec<u8> {
        self.pyhanko_sign_level(pdf, req, &PyhankoLevel::default())
    }

    /// pyHanko signs `pdf` with a signature time-stamp from the TSA at `tsa_url` (PAdES B-T).
    #[track_caller]
    pub fn pyhanko_sign_timestamped(
        &self,
        pdf: &[u8],
        req: &PyhankoSign,
        tsa_url: &str,
    ) -> Vec<u8> {
        self.pyhanko_sign_level(
            pdf,
            req,
            &PyhankoLevel {
                timestamp_url: Some(tsa_url.to_owned()),
                ..PyhankoLevel::default()
            },
        )
    }

    /// pyHanko's PAdES long-term validation (B-LTA, ETSI EN 319 102-1 §5.6.3) of every
    /// signature, trusting `roots`, with only the document's own validation data (no
    /// fetching): `{"signatures": [{field, indication, sub_indication, passed, ...}],
    /// "document_timestamps": [{field}]}`.
    #[track_caller]
    pub fn pyhanko_validate_ltv(&self, pdf: &[u8], roots: &[PathBuf], others: &[PathBuf]) -> Value {
        let dir = workdir();
        let input = put(dir.path(), "in.pdf", pdf);
        let mut cmd = self.command("validate");
        cmd.arg("--in").arg(&input).arg("--ltv");
        for r in roots {
            cmd.arg("--root").arg(r);
        }
        for o in others {
            cmd.arg("--intermediate").arg(o);
        }
        self.tool(&mut cmd, PYHANKO_TIMEOUT)
    }

    /// [`PeerTools::pyhanko_sign`] at a PAdES level above B-B: a signature timestamp from a
    /// TSA (B-T), a DSS of the validation data pyHanko fetched (B-LT), a document timestamp
    /// (B-LTA).
    #[track_caller]
    pub fn pyhanko_sign_level(
        &self,
        pdf: &[u8],
        req: &PyhankoSign,
        level: &PyhankoLevel,
    ) -> Vec<u8> {
        let dir = workdir();
        let input = put(dir.path(), "in.pdf", pdf);
        let output = dir.path().join("signed.pdf");
        let mut cmd = self.command_at(level.clock.as_deref(), "sign");
        cmd.arg("--in")
            .arg(&input)
            .arg("--out")
            .arg(&output)
            .arg("--key")
            .arg(&req.key)
            .arg("--cert")
            .arg(&req.cert)
            .arg("--field")
            .arg(&req.field)
            .arg("--page")
            .arg(req.page.to_string())
            .arg("--color")
            .arg(hex::encode(req.color));
        for c in &req.chain {
            cmd.arg("--chain").arg(c);
        }
        if let Some(r) = req.rect {
            cmd.arg("--rect")
                .arg(format!("{},{},{},{}", r.x1, r.y1, r.x2, r.y2));
        }
        if let Some(r) = &req.reason {
            cmd.arg("--reason").arg(r);
        }
        if let Some(l) = &req.location {
            cmd.arg("--location").arg(l);
        }
        if let Some(p) = &req.password {
            cmd.arg("--password").arg(p);
        }
        if let Some(u) = &level.timestamp_url {
            cmd.arg("--timestamp-url").arg(u);
        }
        if level.embed_validation_info {
            cmd.arg("--embed-validation-info");
        }
        if level.use_pades_lta {
            cmd.arg("--use-pades-lta");
        }
        for r in &level.roots {
            cmd.arg("--root").arg(r);
        }
        for (from, to) in &level.rewrites {
            cmd.arg("--rewrite").arg(format!("{from}={to}"));
        }
        self.tool(&mut cmd, PYHANKO_TIMEOUT);
        read(&output)
    }

    /// pyHanko's verdict on every signature of `pdf`, in file order.
    #[track_caller]
    pub fn pyhanko_validate(&self, pdf: &[u8], opts: &ValidateOptions) -> Vec<PyhankoSignature> {
        let (sigs, _) = self.validate_inner(pdf, opts, 0);
        sigs
    }

    /// Seconds pyHanko takes per validation of every signature of `pdf` (the mean of `n` runs
    /// after one warm-up, in one interpreter, a fresh validation context each time: no
    /// revocation or path cache carried over).
    #[track_caller]
    pub fn pyhanko_bench(&self, pdf: &[u8], opts: &ValidateOptions, n: u32) -> f64 {
        let (_, secs) = self.validate_inner(pdf, opts, n.max(1));
        secs.unwrap_or_else(|| panic!("pyHanko reported no timing"))
    }

    #[track_caller]
    fn validate_inner(
        &self,
        pdf: &[u8],
        opts: &ValidateOptions,
        repeat: u32,
    ) -> (Vec<PyhankoSignature>, Option<f64>) {
        let dir = workdir();
        let input = put(dir.path(), "in.pdf", pdf);
        let mut cmd = self.command("validate");
        cmd.arg("--in").arg(&input);
        opts.args(&mut cmd);
        cmd.arg("--repeat").arg(repeat.to_string());
        let timeout = PYHANKO_TIMEOUT + Duration::from_secs(10) * repeat;
        let v = self.tool(&mut cmd, timeout);
        let sigs = v["signatures"]
            .as_array()
            .unwrap_or_else(|| panic!("no signatures in pyHanko's answer: {v}"))
            .iter()
            .map(|s| PyhankoSignature::from_json(s).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        (sigs, v["seconds_per_validation"].as_f64())
    }

    /// A tampered variant of a signed PDF.
    #[track_caller]
    pub fn tamper(&self, signed: &[u8], how: Tamper) -> Vec<u8> {
        let dir = workdir();
        let input = put(dir.path(), "in.pdf", signed);
        let output = dir.path().join("tampered.pdf");
        let mut cmd = self.command("tamper");
        cmd.arg("--in").arg(&input).arg("--out").arg(&output);
        let kind = match how {
            Tamper::Content => "content",
            Tamper::Annotation => "annotation",
            Tamper::FlipByte | Tamper::FlipByteAt(_) => "flip-byte",
        };
        cmd.arg("--kind").arg(kind);
        if let Tamper::FlipByteAt(off) = how {
            cmd.arg("--offset").arg(off.to_string());
        }
        self.tool(&mut cmd, PYHANKO_TIMEOUT);
        read(&output)
    }
}

/// Splits a PEM file into the DER of its blocks; a file that is not PEM is one DER object.
fn der_objects(path: &Path) -> Vec<Vec<u8>> {
    let bytes = read(path);
    if !bytes.starts_with(b"-----BEGIN") {
        return vec![bytes];
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("-----BEGIN") {
        let block = &rest[start..];
        let Some(end) = block.find("-----END") else {
            break;
        };
        let end = end + block[end..].find('\n').unwrap_or(block.len() - end);
        let (_label, der) = der::pem::decode_vec(block[..end].trim().as_bytes())
            .unwrap_or_else(|e| panic!("bad PEM in {}: {e}", path.display()));
        out.push(der);
        rest = &block[end..];
    }
    out
}

/// A throwaway NSS database for `pdfsig` (deleted on drop): trusted roots, other CA
/// certificates, and CRLs (NSS checks imported CRLs during certificate validation, which is
/// how `pdfsig` sees revocations here: its OCSP client cannot reach the test responder).
#[derive(Debug)]
pub struct NssDb {
    dir: TempDir,
}

impl NssDb {
    /// `roots` are trusted for every purpose; `cas` are only known (an imported CRL needs its
    /// issuer in the database); `crls` are imported after them. PEM (bundles fine) or DER.
    #[track_caller]
    pub fn new(roots: &[PathBuf], cas: &[PathBuf], crls: &[PathBuf]) -> NssDb {
        require_tool("certutil");
        require_tool("crlutil");
        let dir = tempfile::Builder::new()
            .prefix("kyso-nssdb-")
            .tempdir()
            .expect("create a temporary NSS database directory");
        let db = format!("sql:{}", dir.path().display());
        let run = |cmd: &mut Command| {
            process::run(cmd, None, TOOL_TIMEOUT).expect_success();
        };
        run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"]));
        let mut n = 0;
        let mut import = |trust: &str, der: &[u8]| {
            n += 1;
            let file = put(dir.path(), &format!("import-{n}.der"), der);
            run(Command::new("certutil")
                .args([
                    "-A",
                    "-d",
                    &db,
                    "-n",
                    &format!("kyso-{n}"),
                    "-t",
                    trust,
                    "-i",
                ])
                .arg(&file));
        };
        for p in roots {
            for der in der_objects(p) {
                import("CT,C,C", &der);
            }
        }
        for p in cas {
            for der in der_objects(p) {
                import(",,", &der);
            }
        }
        for p in crls {
            for der in der_objects(p) {
                n += 1;
                let file = put(dir.path(), &format!("crl-{n}.der"), &der);
                run(Command::new("crlutil")
                    .args(["-I", "-d", &db, "-t", "1", "-i"])
                    .arg(&file));
            }
        }
        NssDb { dir }
    }

    /// The test PKI: its modern root trusted, the issuing CA known, the root's and the issuing
    /// CA's CRLs imported.
    pub fn for_test_pki(pki: &TestPki) -> NssDb {
        NssDb::new(
            &[pki.root_pem()],
            &[pki.issuing_ca_pem()],
            &[pki.crl("root"), pki.crl("issuing-ca")],
        )
    }

    /// The `-nssdir` argument.
    pub fn nssdir(&self) -> String {
        format!("sql:{}", self.dir.path().display())
    }
}

/// `pdfsig`'s report on one signature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PdfsigSignature {
    pub field: Option<String>,
    pub signer_common_name: Option<String>,
    pub signer_dn: Option<String>,
    pub signing_time: Option<String>,
    pub hash_algorithm: Option<String>,
    /// `ETSI.CAdES.detached`, `adbe.pkcs7.detached`, ...
    pub signature_type: Option<String>,
    /// `[start - end]` pairs as printed (end exclusive).
    pub signed_ranges: Vec<(u64, u64)>,
    /// "Total document signed" (vs "Not total document signed").
    pub total_document_signed: bool,
    /// "Signature is Valid.", "Digest Mismatch.", ...
    pub signature_validation: String,
    /// "Certificate is Trusted.", "Certificate has been Revoked.", ...; `None` with -nocert.
    pub certificate_validation: Option<String>,
}

impl PdfsigSignature {
    pub fn signature_valid(&self) -> bool {
        self.signature_validation == "Signature is Valid."
    }
    pub fn certificate_trusted(&self) -> bool {
        self.certificate_validation.as_deref() == Some("Certificate is Trusted.")
    }
    pub fn certificate_revoked(&self) -> bool {
        self.certificate_validation.as_deref() == Some("Certificate has been Revoked.")
    }
}

/// How `pdfsig` runs.
#[derive(Debug, Clone, Default)]
pub struct PdfsigOptions {
    /// Let NSS ask the certificates' OCSP URLs (off by default: the test URLs point at
    /// hosts that do not exist; revocation comes from the CRLs in the [`NssDb`]).
    pub ocsp: bool,
    /// Skip certificate validation (`-nocert`).
    pub no_cert: bool,
    /// User password of an encrypted document.
    pub user_password: Option<String>,
}

/// `pdfsig` on `pdf` with the trust of `db`, without OCSP.
#[track_caller]
pub fn pdfsig(pdf: &[u8], db: &NssDb) -> Vec<PdfsigSignature> {
    pdfsig_with(pdf, db, &PdfsigOptions::default()).0
}

/// `pdfsig` with options; also returns the raw output.
#[track_caller]
pub fn pdfsig_with(pdf: &[u8], db: &NssDb, opts: &PdfsigOptions) -> (Vec<PdfsigSignature>, Output) {
    require_tool("pdfsig");
    let dir = workdir();
    let input = put(dir.path(), "in.pdf", pdf);
    let mut cmd = Command::new("pdfsig");
    cmd.arg("-nssdir").arg(db.nssdir());
    if !opts.ocsp {
        cmd.arg("-no-ocsp");
    }
    if opts.no_cert {
        cmd.arg("-nocert");
    }
    if let Some(p) = &opts.user_password {
        cmd.arg("-upw").arg(p);
    }
    cmd.arg(&input);
    let out = process::run(&mut cmd, None, TOOL_TIMEOUT);
    let text = out.stdout_str();
    // pdfsig exits non-zero for a file without signatures, and for some damaged ones: the
    // parsed report (empty then) is the verdict; the raw output goes with it.
    (parse_pdfsig(&text), out)
}

/// Parses `pdfsig`'s text report (poppler 22.x layout: "Signature #N:" then "  - Key: value").
pub fn parse_pdfsig(text: &str) -> Vec<PdfsigSignature> {
    let mut out: Vec<PdfsigSignature> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Signature #") {
            out.push(PdfsigSignature::default());
            continue;
        }
        let Some(sig) = out.last_mut() else {
            continue;
        };
        let Some(item) = line.trim_start().strip_prefix("- ") else {
            continue;
        };
        match item.split_once(": ") {
            Some(("Signature Field Name", v)) => sig.field = Some(v.to_owned()),
            Some(("Signer Certificate Common Name", v)) => {
                sig.signer_common_name = Some(v.to_owned())
            }
            Some(("Signer full Distinguished Name", v)) => sig.signer_dn = Some(v.to_owned()),
            Some(("Signing Time", v)) => sig.signing_time = Some(v.to_owned()),
            Some(("Signing Hash Algorithm", v)) => sig.hash_algorithm = Some(v.to_owned()),
            Some(("Signature Type", v)) => sig.signature_type = Some(v.to_owned()),
            Some(("Signed Ranges", v)) => {
                sig.signed_ranges = v
                    .split(',')
                    .filter_map(|r| {
                        let r = r.trim().strip_prefix('[')?.strip_suffix(']')?;
                        let (a, b) = r.split_once(" - ")?;
                        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
                    })
                    .collect()
            }
            Some(("Signature Validation", v)) => sig.signature_validation = v.to_owned(),
            Some(("Certificate Validation", v)) => sig.certificate_validation = Some(v.to_owned()),
            _ if item == "Total document signed" => sig.total_document_signed = true,
            _ => {}
        }
    }
    out
}

/// `qpdf --check`: `Ok` only when qpdf finds neither errors nor warnings (exit 0); else its
/// report.
#[track_caller]
pub fn qpdf_check(pdf: &[u8]) -> Result<(), String> {
    require_tool("qpdf");
    let dir = workdir();
    let input = put(dir.path(), "in.pdf", pdf);
    let out = process::run(
        Command::new("qpdf").arg("--check").arg(&input),
        None,
        TOOL_TIMEOUT,
    );
    if out.success() {
        Ok(())
    } else {
        Err(out.to_string())
    }
}

/// The text of every page (`pdftotext -enc UTF-8`, reading order).
#[track_caller]
pub fn pdftotext(pdf: &[u8]) -> String {
    require_tool("pdftotext");
    let dir = workdir();
    let input = put(dir.path(), "in.pdf", pdf);
    let out = process::run(
        Command::new("pdftotext")
            .args(["-enc", "UTF-8"])
            .arg(&input)
            .arg("-"),
        None,
        TOOL_TIMEOUT,
    )
    .expect_success();
    out.stdout_str()
}

/// An 8-bit RGB raster, row-major from the top left.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pixels would drown any assertion message.
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

/// A rectangle of pixels, `x0..x1` × `y0..y1` (ends exclusive), y down from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl PixelRect {
    pub fn width(&self) -> u32 {
        self.x1.saturating_sub(self.x0)
    }
    pub fn height(&self) -> u32 {
        self.y1.saturating_sub(self.y0)
    }
}

impl RgbImage {
    /// Parses a binary PPM (P6, maxval 255), as `pdftoppm` writes it.
    pub fn from_ppm(bytes: &[u8]) -> Result<RgbImage, String> {
        let mut pos = 0usize;
        // Header tokens are separated by whitespace; `#` starts a comment to the line end.
        let mut token = || -> Result<String, String> {
            loop {
                match bytes.get(pos) {
                    Some(b) if b.is_ascii_whitespace() => pos += 1,
                    Some(b'#') => {
                        while bytes.get(pos).is_some_and(|&b| b != b'\n') {
                            pos += 1;
                        }
                    }
                    Some(_) => break,
                    None => return Err("PPM header ends early".to_owned()),
                }
            }
            let start = pos;
            while bytes.get(pos).is_some_and(|b| !b.is_ascii_whitespace()) {
                pos += 1;
            }
            Ok(String::from_utf8_lossy(&bytes[start..pos]).into_owned())
        };
        let magic = token()?;
        if magic != "P6" {
            return Err(format!("not a binary PPM (magic {magic:?})"));
        }
        let num = |t: String| {
            t.parse::<u32>()
                .map_err(|e| format!("bad PPM header number {t:?}: {e}"))
        };
        let width = num(token()?)?;
        let height = num(token()?)?;
        let maxval = num(token()?)?;
        if maxval != 255 {
            return Err(format!("PPM maxval {maxval}, only 255 is supported"));
        }
        // Exactly one whitespace byte separates the header from the raster.
        let start = pos + 1;
        let len = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(3))
            .ok_or("PPM dimensions overflow")?;
        let data = bytes
            .get(start..start + len)
            .ok_or_else(|| {
                format!(
                    "PPM raster short: {} bytes for {width}x{height}",
                    bytes.len().saturating_sub(start)
                )
            })?
            .to_vec();
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    /// Writes the image as a binary PPM (to look at a failure).
    pub fn write_ppm(&self, path: &Path) -> std::io::Result<()> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.data);
        fs::write(path, out)
    }

    /// The pixel at (x, y), `None` outside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        Some([self.data[i], self.data[i + 1], self.data[i + 2]])
    }

    /// The bounding box of the pixels for which `pred(r, g, b)` holds.
    pub fn bbox_where(&self, pred: impl Fn(u8, u8, u8) -> bool) -> Option<PixelRect> {
        self.bbox_where_in(
            PixelRect {
                x0: 0,
                y0: 0,
                x1: self.width,
                y1: self.height,
            },
            pred,
        )
    }

    /// [`RgbImage::bbox_where`] within `region` (clipped to the image).
    pub fn bbox_where_in(
        &self,
        region: PixelRect,
        pred: impl Fn(u8, u8, u8) -> bool,
    ) -> Option<PixelRect> {
        let mut bb: Option<PixelRect> = None;
        for y in region.y0..region.y1.min(self.height) {
            for x in region.x0..region.x1.min(self.width) {
                let Some([r, g, b]) = self.pixel(x, y) else {
                    continue;
                };
                if pred(r, g, b) {
                    let b = bb.get_or_insert(PixelRect {
                        x0: x,
                        y0: y,
                        x1: x + 1,
                        y1: y + 1,
                    });
                    b.x0 = b.x0.min(x);
                    b.y0 = b.y0.min(y);
                    b.x1 = b.x1.max(x + 1);
                    b.y1 = b.y1.max(y + 1);
                }
            }
        }
        bb
    }

    /// How many pixels within `region` satisfy `pred`.
    pub fn count_where_in(&self, region: PixelRect, pred: impl Fn(u8, u8, u8) -> bool) -> usize {
        let mut n = 0;
        for y in region.y0..region.y1.min(self.height) {
            for x in region.x0..region.x1.min(self.width) {
                if let Some([r, g, b]) = self.pixel(x, y) {
                    n += usize::from(pred(r, g, b));
                }
            }
        }
        n
    }
}

/// A page rendered by `pdftoppm`, with what it takes to map PDF points to pixels.
#[derive(Debug, Clone)]
pub struct RenderedPage {
    pub image: RgbImage,
    pub dpi: u32,
    /// 1-based.
    pub page: u32,
    /// The page box `pdftoppm` rendered (the crop box), in points, as `pdfinfo` reports it.
    pub width_pt: f64,
    pub height_pt: f64,
}

impl RenderedPage {
    fn scale(&self) -> f64 {
        f64::from(self.dpi) / 72.0
    }

    /// A point in PDF user space (origin bottom left) to pixel coordinates (origin top left).
    /// Assumes an unrotated page whose box starts at the origin, as every sample's does.
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        (x * self.scale(), (self.height_pt - y) * self.scale())
    }

    /// A pixel position back to PDF user space.
    pub fn to_point(&self, px: f64, py: f64) -> (f64, f64) {
        (px / self.scale(), self.height_pt - py / self.scale())
    }

    /// The pixels a PDF rectangle covers (rounded outwards, clipped to the image).
    pub fn rect_to_pixels(&self, r: PdfRect) -> PixelRect {
        let (x0, y0) = self.to_pixel(r.x1, r.y2);
        let (x1, y1) = self.to_pixel(r.x2, r.y1);
        let clip = |v: f64, max: u32| (v.max(0.0) as u32).min(max);
        PixelRect {
            x0: clip(x0.floor(), self.image.width),
            y0: clip(y0.floor(), self.image.height),
            x1: clip(x1.ceil(), self.image.width),
            y1: clip(y1.ceil(), self.image.height),
        }
    }

    /// The PDF rectangle of a pixel box.
    pub fn pixels_to_rect(&self, p: PixelRect) -> PdfRect {
        let (x1, y2) = self.to_point(f64::from(p.x0), f64::from(p.y0));
        let (x2, y1) = self.to_point(f64::from(p.x1), f64::from(p.y1));
        PdfRect { x1, y1, x2, y2 }
    }

    /// The PDF rectangle around the pixels satisfying `pred`.
    pub fn rect_where(&self, pred: impl Fn(u8, u8, u8) -> bool) -> Option<PdfRect> {
        self.image.bbox_where(pred).map(|b| self.pixels_to_rect(b))
    }
}

/// The size of a page in points (`pdfinfo`).
#[track_caller]
fn page_size(input: &Path, page: u32) -> (f64, f64) {
    require_tool("pdfinfo");
    let p = page.to_string();
    let out = process::run(
        Command::new("pdfinfo")
            .args(["-f", &p, "-l", &p])
            .arg(input),
        None,
        TOOL_TIMEOUT,
    )
    .expect_success();
    let text = out.stdout_str();
    // "Page    1 size: 595.276 x 841.89 pts (A4)"
    let size = text
        .lines()
        .filter_map(|l| l.strip_prefix("Page"))
        .filter_map(|l| l.split_once(" size: "))
        .find(|(n, _)| n.trim() == p)
        .and_then(|(_, s)| {
            let mut it = s.split_whitespace();
            let w = it.next()?.parse().ok()?;
            let _x = it.next()?;
            let h = it.next()?.parse().ok()?;
            Some((w, h))
        });
    size.unwrap_or_else(|| panic!("pdfinfo gave no size for page {page}: {out}"))
}

/// Renders page `page` (1-based) at `dpi` with `pdftoppm`.
#[track_caller]
pub fn render(pdf: &[u8], page: u32, dpi: u32) -> RenderedPage {
    require_tool("pdftoppm");
    let dir = workdir();
    let input = put(dir.path(), "in.pdf", pdf);
    let (width_pt, height_pt) = page_size(&input, page);
    let p = page.to_string();
    let out = process::run(
        Command::new("pdftoppm")
            .args(["-r", &dpi.to_string(), "-f", &p, "-l", &p, "-singlefile"])
            .arg(&input),
        None,
        TOOL_TIMEOUT,
    )
    .expect_success();
    let image = RgbImage::from_ppm(&out.stdout)
        .unwrap_or_else(|e| panic!("pdftoppm's output is no PPM: {e}"));
    RenderedPage {
        image,
        dpi,
        page,
        width_pt,
        height_pt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_parses_with_comments() {
        let mut ppm = b"P6\n# made by hand\n2 1\n255\n".to_vec();
        ppm.extend_from_slice(&[255, 0, 0, 0, 0, 255]);
        let img = RgbImage::from_ppm(&ppm).unwrap();
        assert_eq!((img.width, img.height), (2, 1));
        assert_eq!(img.pixel(1, 0), Some([0, 0, 255]));
        assert_eq!(img.pixel(2, 0), None);
        assert_eq!(
            img.bbox_where(|r, _, _| r > 200),
            Some(PixelRect {
                x0: 0,
                y0: 0,
                x1: 1,
                y1: 1
            })
        );
        assert!(RgbImage::from_ppm(b"P6\n2 1\n255\n\x00").is_err());
        assert!(RgbImage::from_ppm(b"P3\n1 1\n255\n0 0 0").is_err());
    }

    #[test]
    fn pdfsig_report_parses() {
        let text = "Digital Signature Info of: x.pdf\nSignature #1:\n  - Signature Field Name: Sig1\n  - Signed Ranges: [0 - 52168], [61266 - 61807]\n  - Not total document signed\n  - Signature Validation: Signature is Valid.\n  - Certificate Validation: Certificate has been Revoked.\nSignature #2:\n  - Signature Field Name: Sig2\n  - Total document signed\n  - Signature Validation: Digest Mismatch.\n";
        let s = parse_pdfsig(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].field.as_deref(), Some("Sig1"));
        assert_eq!(s[0].signed_ranges, vec![(0, 52168), (61266, 61807)]);
        assert!(!s[0].total_document_signed && s[1].total_document_signed);
        assert!(s[0].signature_valid() && s[0].certificate_revoked());
        assert!(!s[1].signature_valid());
        assert_eq!(s[1].certificate_validation, None);
    }

    #[test]
    fn points_and_pixels_round_trip() {
        let page = RenderedPage {
            image: RgbImage {
                width: 1191,
                height: 1684,
                data: Vec::new(),
            },
            dpi: 144,
            page: 1,
            width_pt: 595.276,
            height_pt: 841.89,
        };
        let r = PdfRect::new(345.0, 157.0, 495.0, 244.0);
        let px = page.rect_to_pixels(r);
        assert_eq!((px.x0, px.x1), (690, 990));
        assert!(page.pixels_to_rect(px).close_to(&r, 1.0));
    }
}
