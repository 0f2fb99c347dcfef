//! The mixed corpus of `kyso bench load`: what the document exchange sends a verifier. PDFs of
//! 100 KiB–5 MiB (log-uniform) with 1–3 PAdES signatures, detached CMS over 2–64 KiB, signers
//! spread over the test PKI's leaves under its two issuing CAs (`issuing-ca` under the modern
//! root, `legacy-sub` under the SHA-1 legacy root), and a share of tampered documents (a byte
//! of signed content changed: HASH_FAILURE) and of documents whose last signer is the revoked
//! leaf (REVOKED). `manifest.json` lists every file with the verdict it must get; the bench
//! counts any other answer as an error.
//!
//! Deterministic for a seed (sizes, kinds, signers), except the keys and dates of the PKI,
//! which is generated per process ([`TestPki::get`]): the verifier must trust that PKI and
//! fetch its CRLs ([`crate::verifier_config`] on [`crate::shared_servers`]).

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::pdf_fixtures::{BaseOptions, PdfDoc, SignOptions};
use crate::{CmsSign, TestPki, cms_sign_in};

/// Signers of valid PAdES signatures (RSA keys: the fixture signs with PKCS#1 v1.5), under
/// both issuing CAs.
const PDF_SIGNERS: &[&str] = &["personal-rsa", "org-rsa", "personal-pss", "legacy"];
/// Signers of valid CMS signatures: the PDF ones and the EC leaves.
const CMS_SIGNERS: &[&str] = &[
    "personal-rsa",
    "org-rsa",
    "personal-pss",
    "legacy",
    "personal-ec256",
    "personal-ec384",
];

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

/// Writes the corpus into `dir` (`docs/` and `manifest.json`); returns the manifest.
pub fn generate(dir: &Path, opts: &CorpusOptions) -> Value {
    let pki = TestPki::get();
    fs::create_dir_all(dir.join("docs")).expect("create the corpus directory");
    let mut rng = Rng(opts.seed.max(1));
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
            cms_document(pki, dir, i, class, &mut rng)
        } else {
            pdf_document(dir, i, class, opts, &mut rng)
        };
        documents.push(entry);
    }
    let manifest = json!({
        "generator": "kyso_tests::load_corpus",
        "seed": opts.seed,
        "documents": documents,
    });
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("JSON"),
    )
    .expect("write manifest.json");
    manifest
}

fn cms_document(pki: &TestPki, dir: &Path, i: usize, class: &str, rng: &mut Rng) -> Value {
    let len = 2048 + rng.below(62 << 10);
    let mut content = rng.bytes(len);
    let leaf = match class {
        "revoked" => "revoked",
        _ => CMS_SIGNERS[rng.below(CMS_SIGNERS.len())],
    };
    let sig = cms_sign_in(pki, &CmsSign::new(leaf, content.clone()).detached());
    let (indication, sub) = match class {
        "tampered" => {
            let at = rng.below(content.len());
            content[at] ^= 0x01;
            ("TOTAL_FAILED", "HASH_FAILURE")
        }
        "revoked" => ("TOTAL_FAILED", "REVOKED"),
        _ => ("TOTAL_PASSED", ""),
    };
    let file = format!("docs/{i:05}.p7s");
    let data = format!("docs/{i:05}.bin");
    fs::write(dir.join(&file), sig).expect("write the signature");
    fs::write(dir.join(&data), content).expect("write the content");
    json!({
        "file": file,
        "kind": "cms",
        "content": data,
        "class": class,
        "signers": [leaf],
        "indication": indication,
        "signatures": [verdict(indication, sub)],
    })
}

fn pdf_document(dir: &Path, i: usize, class: &str, opts: &CorpusOptions, rng: &mut Rng) -> Value {
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
    let mut signers = Vec::new();
    let mut sigs = Vec::new();
    for k in 0..count {
        let leaf = if class == "revoked" && k + 1 == count {
            "revoked"
        } else {
            PDF_SIGNERS[rng.below(PDF_SIGNERS.len())]
        };
        doc.sign(&SignOptions::new(leaf, &format!("Sig{}", k + 1)));
        signers.push(leaf);
        sigs.push(match (class, leaf) {
            ("tampered", _) => verdict("TOTAL_FAILED", "HASH_FAILURE"),
            (_, "revoked") => verdict("TOTAL_FAILED", "REVOKED"),
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
        "signers": signers,
        "indication": indication,
        "signatures": sigs,
    })
}
