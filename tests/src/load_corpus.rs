//! The mixed corpus of `kyso bench load`: what the document exchange sends a verifier. PDFs of
//! 100 KiB–5 MiB (log-uniform) with 1–3 PAdES signatures, detached CMS over 2–64 KiB, signed by
//! many signers of the corpus's OWN PKI ([`LoadPki`], `tests/pki/gen-load-pki.sh`: two roots,
//! four issuing CAs, [`CorpusOptions::signers`] leaves, RSA and EC, one in eight revoked, a CRL
//! per CA), so the verifier meets many distinct certificates and CRLs and its caches are not
//! trivially warm; and a share of tampered documents (a byte of signed content changed:
//! HASH_FAILURE) and of documents whose last signer is revoked (REVOKED, the revoked signers
//! taken in turn, so across the CAs). `manifest.json` lists every file with its signers, their
//! CAs and the verdict it must get; the bench counts any other answer as an error.
//!
//! Deterministic for a seed (sizes, kinds, signers), except the keys and dates of the PKI,
//! which is generated with the corpus into `DIR/pki`. [`write_verifier_config`] writes the
//! configuration of a verifier that trusts it and fetches its CRLs from a given URL, so a corpus
//! directory can outlive the process (`scripts/gen-load-corpus.sh`, docs/BENCHMARKS.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kyso_pki::cms_build::SigningAlgorithm;
use kyso_pki::crypto::DigestAlgorithm;
use serde_json::{Value, json};

use crate::pdf_fixtures::{BaseOptions, PdfDoc, SignOptions, SigningKey};
use crate::{COMMAND_TIMEOUT, run};

/// The CRL URL prefix inside the load PKI's certificates (`tests/pki/load-pki.cnf`).
pub const LOAD_CRL_PREFIX: &str = "http://crl.kyso.test/load/";

/// One signer of the load PKI.
#[derive(Clone, Debug)]
pub struct Signer {
    /// `s0000`, `s0001`, ...
    pub name: String,
    /// Its issuing CA (`ca-1` .. `ca-4`).
    pub ca: String,
    /// The root above that CA (`root-a`, `root-b`).
    pub root: String,
    /// `ec` (P-256) or `rsa` (2048).
    pub kind: String,
    /// Its certificate, PEM file.
    pub cert_pem: PathBuf,
    pub key: SigningKey,
    /// On its CA's CRL.
    pub revoked: bool,
}

/// The corpus's own PKI (`tests/pki/gen-load-pki.sh`), in `dir`.
#[derive(Clone, Debug)]
pub struct LoadPki {
    pub dir: PathBuf,
    pub signers: Vec<Signer>,
}

impl LoadPki {
    /// Generates a PKI of `signers` leaves into `dir` (absent or empty).
    pub fn generate(dir: &Path, signers: usize) -> LoadPki {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pki/gen-load-pki.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script).arg(dir).arg(signers.max(1).to_string());
        run(&mut cmd, None, COMMAND_TIMEOUT * 10).expect_success();
        let tsv = fs::read_to_string(dir.join("signers.tsv")).expect("signers.tsv");
        let signers = tsv
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                assert_eq!(f.len(), 7, "signers.tsv: {line}");
                let cert_pem = dir.join(f[5]);
                let pem = fs::read(&cert_pem).expect("the signer's certificate");
                let (_, certificate) = der::pem::decode_vec(&pem).expect("PEM certificate");
                let algorithm = if f[3] == "rsa" {
                    SigningAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256)
                } else {
                    SigningAlgorithm::Ecdsa(DigestAlgorithm::Sha256)
                };
                Signer {
                    name: f[0].into(),
                    ca: f[1].into(),
                    root: f[2].into(),
                    kind: f[3].into(),
                    cert_pem,
                    key: SigningKey {
                        certificate,
                        key: dir.join(f[4]),
                        algorithm,
                    },
                    revoked: f[6] == "1",
                }
            })
            .collect();
        LoadPki {
            dir: dir.to_owned(),
            signers,
        }
    }

    /// The trust anchors (one PEM file per root).
    pub fn anchors(&self) -> Vec<PathBuf> {
        ["root-a", "root-b"]
            .iter()
            .map(|r| self.dir.join(format!("roots/{r}.pem")))
            .collect()
    }

    /// Every issuing CA, one PEM file.
    pub fn intermediates(&self) -> PathBuf {
        self.dir.join("intermediates.pem")
    }

    /// The CRLs (`ca-1.crl`, `root-a.crl`, ... DER), to serve at the URL the verifier's
    /// configuration rewrites [`LOAD_CRL_PREFIX`] to.
    pub fn crl_dir(&self) -> PathBuf {
        self.dir.join("crl")
    }
}

/// Writes `DIR/verifier.toml`: a verifier on `listen` (metrics on `metrics_listen`) that
/// trusts the corpus PKI in `DIR/pki` and fetches its CRLs from `crl_url` (which serves
/// `DIR/pki/crl/`), CRLs only (the load PKI has no OCSP responder). Returns its path.
pub fn write_verifier_config(
    dir: &Path,
    crl_url: &str,
    listen: &str,
    metrics_listen: &str,
) -> PathBuf {
    let pki = dir.join("pki");
    let q = |p: &Path| toml_string(&p.display().to_string());
    let anchors: Vec<String> = ["root-a", "root-b"]
        .iter()
        .map(|r| q(&pki.join(format!("roots/{r}.pem"))))
        .collect();
    let to = if crl_url.ends_with('/') {
        crl_url.to_owned()
    } else {
        format!("{crl_url}/")
    };
    let text = format!(
        "# A verifier for the load corpus in this directory (kyso_tests::load_corpus).\n\
         # Serve the CRLs first: python3 -m http.server PORT --bind 127.0.0.1 --directory pki/crl\n\
         listen = {}\nmetrics_listen = {}\ntrust_anchors = [{}]\nintermediates = [{}]\n\
         fetch_aia = false\n\n[revocation]\norder = \"crl-only\"\n\
         url_rewrites = [{{ from = {}, to = {} }}]\n",
        toml_string(listen),
        toml_string(metrics_listen),
        anchors.join(", "),
        q(&pki.join("intermediates.pem")),
        toml_string(LOAD_CRL_PREFIX),
        toml_string(&to),
    );
    let path = dir.join("verifier.toml");
    fs::write(&path, text).expect("write verifier.toml");
    path
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct CorpusOptions {
    pub documents: usize,
    /// Share of CMS documents (the rest are PDFs).
    pub cms_share: f64,
    /// Share of tampered documents.
    pub tampered_share: f64,
    /// Share of documents whose last signer is revoked.
    pub revoked_share: f64,
    pub min_pdf_bytes: usize,
    pub max_pdf_bytes: usize,
    /// Leaves of the corpus PKI, spread over its four issuing CAs (one in eight revoked, at
    /// least one per CA); one in five RSA, the others EC.
    pub signers: usize,
    pub seed: u64,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        Self {
            documents: 120,
            cms_share: 0.3,
            tampered_share: 0.05,
            revoked_share: 0.05,
            min_pdf_bytes: 100 << 10,
            max_pdf_bytes: 5 << 20,
            signers: 200,
            seed: 17,
        }
    }
}

/// xorshift64*: enough for reproducible choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn verdict(indication: &str, sub: &str) -> Value {
    json!({ "indication": indication, "sub_indication": sub })
}

/// Who signs next: the valid signers in a seeded order, then again (so a corpus of N
/// signatures meets min(N, valid signers) distinct ones), and the revoked signers in turn (so
/// the revoked documents are spread over the CAs).
struct Signers<'a> {
    valid: Vec<&'a Signer>,
    revoked: Vec<&'a Signer>,
    next_valid: usize,
    next_revoked: usize,
}

impl<'a> Signers<'a> {
    fn new(pki: &'a LoadPki, rng: &mut Rng) -> Self {
        let mut valid: Vec<&Signer> = pki.signers.iter().filter(|s| !s.revoked).collect();
        for i in (1..valid.len()).rev() {
            valid.swap(i, rng.below(i + 1));
        }
        let revoked = pki.signers.iter().filter(|s| s.revoked).collect();
        Signers {
            valid,
            revoked,
            next_valid: 0,
            next_revoked: 0,
        }
    }
    fn valid(&mut self) -> &'a Signer {
        assert!(!self.valid.is_empty(), "the corpus PKI has no valid signer");
        let s = self.valid[self.next_valid % self.valid.len()];
        self.next_valid += 1;
        s
    }
    fn revoked(&mut self) -> &'a Signer {
        let s = self.revoked[self.next_revoked % self.revoked.len()];
        self.next_revoked += 1;
        s
    }
}

/// Writes the corpus into `dir` (`pki/`, `docs/` and `manifest.json`); returns the manifest.
/// `dir` must be absent or empty.
pub fn generate(dir: &Path, opts: &CorpusOptions) -> Value {
    fs::create_dir_all(dir.join("docs")).expect("create the corpus directory");
    // At least one signer per CA, and a valid one besides the revoked first of each CA.
    let pki = LoadPki::generate(&dir.join("pki"), opts.signers.max(8));
    let mut rng = Rng(opts.seed.max(1));
    let mut signers = Signers::new(&pki, &mut rng);
    let mut documents = Vec::new();
    for i in 0..opts.documents {
        let r = rng.unit();
        let class = if r < opts.tampered_share {
            "tampered"
        } else if r < opts.tampered_share + opts.revoked_share {
            "revoked"
        } else {
            "valid"
        };
        let entry = if rng.unit() < opts.cms_share {
            cms_document(dir, i, class, &mut signers, &mut rng)
        } else {
            pdf_document(dir, i, class, opts, &mut signers, &mut rng)
        };
        documents.push(entry);
    }
    let mut cas: Vec<&str> = pki.signers.iter().map(|s| s.ca.as_str()).collect();
    cas.sort_unstable();
    cas.dedup();
    let mut roots: Vec<&str> = pki.signers.iter().map(|s| s.root.as_str()).collect();
    roots.sort_unstable();
    roots.dedup();
    let manifest = json!({
        "generator": "kyso_tests::load_corpus",
        "seed": opts.seed,
        "pki": {
            "signers": pki.signers.len(),
            "revoked_signers": pki.signers.iter().filter(|s| s.revoked).count(),
            "rsa_signers": pki.signers.iter().filter(|s| s.kind == "rsa").count(),
            "cas": cas,
            "roots": roots,
        },
        "documents": documents,
    });
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("JSON"),
    )
    .expect("write manifest.json");
    manifest
}

fn cms_document(dir: &Path, i: usize, class: &str, signers: &mut Signers, rng: &mut Rng) -> Value {
    let len = 2048 + rng.below(62 << 10);
    let mut content = rng.bytes(len);
    let signer = match class {
        "revoked" => signers.revoked(),
        _ => signers.valid(),
    };
    // `openssl cms` (the PDFs' CMS comes from kyso's builder: two producers).
    let input = dir.join(format!("docs/{i:05}.bin"));
    let output = dir.join(format!("docs/{i:05}.p7s"));
    fs::write(&input, &content).expect("write the content");
    let mut cmd = Command::new("openssl");
    cmd.args([
        "cms", "-sign", "-binary", "-outform", "DER", "-md", "sha256",
    ])
    .arg("-signer")
    .arg(&signer.cert_pem)
    .arg("-inkey")
    .arg(&signer.key.key)
    .arg("-in")
    .arg(&input)
    .arg("-out")
    .arg(&output);
    run(&mut cmd, None, COMMAND_TIMEOUT).expect_success();
    let (indication, sub) = match class {
        "tampered" => {
            let at = rng.below(content.len());
            content[at] ^= 0x01;
            fs::write(&input, &content).expect("write the content");
            ("TOTAL_FAILED", "HASH_FAILURE")
        }
        "revoked" => ("TOTAL_FAILED", "REVOKED"),
        _ => ("TOTAL_PASSED", ""),
    };
    json!({
        "file": format!("docs/{i:05}.p7s"),
        "kind": "cms",
        "content": format!("docs/{i:05}.bin"),
        "class": class,
        "signers": [&signer.name],
        "cas": [&signer.ca],
        "indication": indication,
        "signatures": [verdict(indication, sub)],
    })
}

fn pdf_document(
    dir: &Path,
    i: usize,
    class: &str,
    opts: &CorpusOptions,
    signers: &mut Signers,
    rng: &mut Rng,
) -> Value {
    // Log-uniform sizes: many small documents, a few large ones, as an exchange sees them.
    let (lo, hi) = (
        opts.min_pdf_bytes.max(1) as f64,
        opts.max_pdf_bytes.max(opts.min_pdf_bytes.max(1)) as f64,
    );
    let target = (lo.ln() + rng.unit() * (hi.ln() - lo.ln())).exp() as usize;
    let mut doc = PdfDoc::base(&BaseOptions::default());
    // The bulk: one stream of incompressible bytes, as scanned pages are.
    let pad = target.saturating_sub(doc.bytes.len() + 30_000).max(1024);
    let data = rng.bytes(pad);
    let mut body = format!("<< /Length {pad} >>\nstream\n").into_bytes();
    let data_at = body.len();
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\nendstream");
    let n = doc.alloc();
    let off = doc.append_update(&[(n, body)])[0];
    let data_offset = off + format!("{n} 0 obj\n").len() + data_at;

    let count = 1 + rng.below(3);
    let mut names = Vec::new();
    let mut cas = Vec::new();
    let mut sigs = Vec::new();
    for k in 0..count {
        let revoked = class == "revoked" && k + 1 == count;
        let signer = if revoked {
            signers.revoked()
        } else {
            signers.valid()
        };
        doc.sign_by(
            &signer.key,
            &SignOptions::new(&signer.name, &format!("Sig{}", k + 1)),
        );
        names.push(&signer.name);
        cas.push(&signer.ca);
        sigs.push(match (class, revoked) {
            ("tampered", _) => verdict("TOTAL_FAILED", "HASH_FAILURE"),
            (_, true) => verdict("TOTAL_FAILED", "REVOKED"),
            _ => verdict("TOTAL_PASSED", ""),
        });
    }
    if class == "tampered" {
        // Inside the bulk stream, which every signature covers.
        let at = data_offset + rng.below(pad);
        doc.bytes[at] ^= 0x01;
    }
    let indication = if class == "valid" {
        "TOTAL_PASSED"
    } else {
        "TOTAL_FAILED"
    };
    let file = format!("docs/{i:05}.pdf");
    fs::write(dir.join(&file), &doc.bytes).expect("write the PDF");
    json!({
        "file": file,
        "kind": "pdf",
        "class": class,
        "bytes": doc.bytes.len(),
        "signers": names,
        "cas": cas,
        "indication": indication,
        "signatures": sigs,
    })
}
