//! The load corpus as the bench reads it: `manifest.json` in the corpus directory lists every
//! document with the verdict it must get (written by the generator,
//! `kyso_tests::load_corpus`), so a wrong answer under load is an error, not a pass.

use std::path::Path;

use kyso_proto::verifier::v1 as pb;
use serde::Deserialize;

use crate::{CliError, read_file};

/// One signature's expected verdict (proto enum names without their prefix).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub indication: String,
    #[serde(default)]
    pub sub_indication: String,
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    file: String,
    kind: String,
    #[serde(default)]
    content: Option<String>,
    class: String,
    indication: String,
    signatures: Vec<Verdict>,
    /// Who signed (names of the corpus PKI's signers) and under which issuing CAs.
    #[serde(default)]
    signers: Vec<String>,
    #[serde(default)]
    cas: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    documents: Vec<ManifestEntry>,
}

/// A request ready to send, and what its answer must be.
#[derive(Clone, Debug)]
pub enum Request {
    Cms(pb::VerifyCmsRequest),
    Pdf(pb::VerifyPdfRequest),
}

#[derive(Clone, Debug)]
pub struct Document {
    pub name: String,
    /// `valid`, `tampered` or `revoked`.
    pub class: String,
    pub bytes: usize,
    pub request: Request,
    pub indication: String,
    pub signatures: Vec<Verdict>,
    pub signers: Vec<String>,
    pub cas: Vec<String>,
}

/// Distinct signers and distinct issuing CAs over the corpus: how far the verifier's
/// certificate and CRL caches are spread.
pub fn distinct_signers_and_cas(docs: &[Document]) -> (usize, usize) {
    let signers: std::collections::HashSet<&str> = docs
        .iter()
        .flat_map(|d| d.signers.iter().map(String::as_str))
        .collect();
    let cas: std::collections::HashSet<&str> = docs
        .iter()
        .flat_map(|d| d.cas.iter().map(String::as_str))
        .collect();
    (signers.len(), cas.len())
}

/// The corpus, loaded into memory before the clock starts (reading files is not the
/// verifier's cost).
pub fn load(dir: &Path) -> Result<Vec<Document>, CliError> {
    let text = read_file(&dir.join("manifest.json"))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| CliError::Usage(format!("{}/manifest.json: {e}", dir.display())))?;
    let mut out = Vec::with_capacity(m.documents.len());
    for e in m.documents {
        // The manifest names files inside the corpus only.
        if e.file.contains("..") || e.content.as_deref().is_some_and(|c| c.contains("..")) {
            return Err(CliError::Usage(format!(
                "manifest: {} leaves the corpus",
                e.file
            )));
        }
        let data = read_file(&dir.join(&e.file))?;
        let bytes = data.len();
        let request = match e.kind.as_str() {
            "cms" => {
                let detached = match &e.content {
                    Some(c) => Some(pb::verify_cms_request::Detached::Content(read_file(
                        &dir.join(c),
                    )?)),
                    None => None,
                };
                Request::Cms(pb::VerifyCmsRequest {
                    signature: data,
                    detached,
                    at: None,
                    revocation_policy: 0,
                    request_id: String::new(),
                    certificates: Vec::new(),
                    // The full report, as a clerk's receipt asks for.
                    verdict_only: false,
                })
            }
            "pdf" => Request::Pdf(pb::VerifyPdfRequest {
                pdf: data.into(),
                at: None,
                revocation_policy: 0,
                certificates: Vec::new(),
            }),
            k => {
                return Err(CliError::Usage(format!(
                    "manifest: {}: unknown kind {k:?}",
                    e.file
                )));
            }
        };
        out.push(Document {
            name: e.file,
            class: e.class,
            bytes,
            request,
            indication: e.indication,
            signatures: e.signatures,
            signers: e.signers,
            cas: e.cas,
        });
    }
    if out.is_empty() {
        return Err(CliError::Usage(format!(
            "{}/manifest.json lists no document",
            dir.display()
        )));
    }
    Ok(out)
}

fn indication_name(i: i32) -> String {
    pb::Indication::try_from(i)
        .map(|i| i.as_str_name().trim_start_matches("INDICATION_").to_owned())
        .unwrap_or_else(|_| format!("unknown {i}"))
}

fn sub_name(i: i32) -> String {
    pb::SubIndication::try_from(i)
        .map(|i| {
            let n = i.as_str_name().trim_start_matches("SUB_INDICATION_");
            if n == "UNSPECIFIED" { "" } else { n }.to_owned()
        })
        .unwrap_or_else(|_| format!("unknown {i}"))
}

fn verdict(r: Option<&pb::SignatureReport>) -> Verdict {
    match r {
        Some(r) => Verdict {
            indication: indication_name(r.indication),
            sub_indication: sub_name(r.sub_indication),
        },
        None => Verdict {
            indication: "NO_REPORT".into(),
            sub_indication: String::new(),
        },
    }
}

/// What the verifier answered, in the manifest's terms.
pub fn answer_cms(r: &pb::VerifyCmsResponse) -> (String, Vec<Verdict>) {
    (
        indication_name(r.indication),
        r.signatures.iter().map(|s| verdict(Some(s))).collect(),
    )
}

/// What the verifier answered, in the manifest's terms.
pub fn answer_pdf(r: &pb::VerifyPdfResponse) -> (String, Vec<Verdict>) {
    (
        indication_name(r.indication),
        r.signatures
            .iter()
            .map(|s| verdict(s.report.as_ref()))
            .collect(),
    )
}

impl Document {
    /// `Ok` when the answer is the expected verdict; otherwise what differs.
    pub fn check(&self, indication: &str, signatures: &[Verdict]) -> Result<(), String> {
        if indication != self.indication || signatures != self.signatures.as_slice() {
            return Err(format!(
                "{}: expected {} {:?}, got {indication} {signatures:?}",
                self.name, self.indication, self.signatures
            ));
        }
        Ok(())
    }
}
