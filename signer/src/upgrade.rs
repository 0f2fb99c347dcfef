//! The background upgrade (N1, D7): a signature returned below its requested level, because
//! the timestamp authority did not answer within the request's budget, is kept in the
//! document store and raised later, as soon as the TSA answers.
//!
//! Each such signature is a journal entry, one JSON file per stored original, written
//! durably before the reply (`<documents_dir>/upgrades/cms/<sha256>.json`). The task
//! retries the TSA for every entry (no budget; doubling pause after a failed round, 30 s at
//! most), adds the signature timestamp to the stored CMS (`kyso_pki::cms_build::unsigned`:
//! nothing signed changes), keeps the result as the original's successor
//! (`DocumentStore::supersede`: `GetDocument` by the first hash gives the upgraded bytes),
//! appends an `upgraded` audit record with the SHA-256 before and after, and only then
//! removes the entry. A crash in between leaves the entry, and the next round does it again
//! (the store keeps the same bytes once; a second token would only add a second record).
//!
//! A CMS asked at B-LT also gets the signer's certificate and revocation values
//! (`crate::ltdata`) when it went out without them.
//!
//! A PDF cannot take a timestamp inside its signature's /Contents without signing again: a
//! PDF returned below its level is journaled under `upgrades/pdf/`, and this task adds a DSS
//! (the signer's and the TSA's validation data) and a document timestamp revision
//! (`crate::pades_lt`; ETSI EN 319 142-1 lets the document timestamp give a B-B signature
//! its proof of existence), both incremental updates, and keeps the result as for a CMS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::{AuditEntry, AuditLog, Decision, LevelNote};
use crate::ltdata::ValidationSource;
use crate::store::{DocumentStore, write_atomic};
use crate::timestamp::Stamper;

/// One signature waiting for its level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// `cms` or `pdf`.
    pub kind: String,
    /// SHA-256 (hex) of the original as returned and stored.
    pub sha256: String,
    /// The level asked for (`B_T`, ...).
    pub requested: String,
    /// The level returned (`B_B`).
    pub reached: String,
    /// The organisation the original belongs to.
    pub organisation_id: String,
    /// The caller, key, certificate and profile of the signing request (for the record).
    pub caller: String,
    /// The signer key.
    pub key: String,
    /// SHA-256 of the key's certificate, hex.
    pub cert_sha256: String,
    /// The request's profile (proto name).
    pub profile: String,
    /// The acting person.
    pub acting_person_id: String,
    /// When the signature was returned below its level (RFC 3339).
    pub since: String,
    /// Why no timestamp then.
    pub reason: String,
}

/// The journal of pending upgrades and the task that works it off.
#[derive(Clone, Debug)]
pub struct Upgrades {
    root: PathBuf,
    store: DocumentStore,
    wake: Arc<tokio::sync::Notify>,
}

/// Most entries one round takes on (the rest wait for the next round).
const MAX_PER_ROUND: usize = 256;

impl Upgrades {
    /// The journal under `<store root>/upgrades`.
    pub fn open(store: DocumentStore) -> std::io::Result<Self> {
        let root = store.root().join("upgrades");
        std::fs::create_dir_all(root.join("cms"))?;
        std::fs::create_dir_all(root.join("pdf"))?;
        Ok(Self {
            root,
            store,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The store the originals are kept in.
    pub fn store(&self) -> &DocumentStore {
        &self.store
    }

    /// Keeps `original` in the store for its organisation and journals it, durably, before
    /// the reply; wakes the task for a CMS.
    pub fn enqueue(&self, original: &[u8], mut p: Pending) -> Result<String, String> {
        let sha = self
            .store
            .put_for(original, &p.organisation_id)
            .map_err(|e| e.to_string())?;
        p.sha256 = sha.clone();
        let json = serde_json::to_vec_pretty(&p).map_err(|e| e.to_string())?;
        let path = self.entry_path(&p.kind, &sha);
        write_atomic(&path, &json).map_err(|(path, e)| format!("{}: {e}", path.display()))?;
        self.wake.notify_one();
        Ok(sha)
    }

    fn entry_path(&self, kind: &str, sha: &str) -> PathBuf {
        let dir = if kind == "pdf" { "pdf" } else { "cms" };
        self.root.join(dir).join(format!("{sha}.json"))
    }

    /// The entries waiting in `kind`'s journal (`cms`, or `pdf` for `kyso ltv extend`).
    pub fn pending(&self, kind: &str) -> Vec<Pending> {
        read_entries(&self.root.join(if kind == "pdf" { "pdf" } else { "cms" }))
    }

    /// Runs the upgrade rounds until `stop` turns true.
    pub fn spawn(
        self,
        stamper: Stamper,
        validation: Option<ValidationSource>,
        audit: AuditLog,
        clock: crate::service::Clock,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let first = Duration::from_millis(250);
            let mut pause = first;
            loop {
                let failed = self
                    .round(&stamper, validation.as_ref(), &audit, &clock)
                    .await;
                pause = if failed {
                    (pause * 2).min(Duration::from_secs(30))
                } else {
                    first
                };
                let waiting = !self.pending("cms").is_empty() || !self.pending("pdf").is_empty();
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(pause), if waiting => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        })
    }

    /// One pass over the CMS journal; whether some entry failed.
    async fn round(
        &self,
        stamper: &Stamper,
        validation: Option<&ValidationSource>,
        audit: &AuditLog,
        clock: &crate::service::Clock,
    ) -> bool {
        let mut failed = false;
        let mut all = self.pending("cms");
        all.extend(self.pending("pdf"));
        for p in all.into_iter().take(MAX_PER_ROUND) {
            if let Err(e) = self
                .upgrade_one(&p, stamper, validation, audit, clock)
                .await
            {
                tracing::info!(sha256 = %p.sha256, error = %e, "signature upgrade pending (N1, D7)");
                failed = true;
            }
        }
        failed
    }

    async fn upgrade_one(
        &self,
        p: &Pending,
        stamper: &Stamper,
        validation: Option<&ValidationSource>,
        audit: &AuditLog,
        clock: &crate::service::Clock,
    ) -> Result<(), String> {
        let before = self.store.get(&p.sha256).map_err(|e| e.to_string())?;
        let (after, digest_algorithm, digest) = if p.kind == "pdf" {
            let source = validation.ok_or("no source of validation data")?;
            let after = pdf_after(&before, p, stamper, source, clock()).await?;
            // The record names the upgraded file by its SHA-256, as the signing record
            // named the output.
            let digest = kyso_pki::crypto::sha256(&after).to_vec();
            (after, "sha256".to_owned(), digest)
        } else {
            self.cms_after(&before, p, stamper, validation, clock)
                .await?
        };
        let after_sha = self
            .store
            .supersede(&p.sha256, &after)
            .map_err(|e| e.to_string())?;
        let entry = AuditEntry {
            time: clock(),
            caller: p.caller.clone(),
            key: p.key.clone(),
            certificate_fingerprint: p.cert_sha256.clone(),
            digest_algorithm,
            digest,
            acting_person_id: p.acting_person_id.clone(),
            organisation_id: p.organisation_id.clone(),
            document_type: String::new(),
            number_and_symbol: String::new(),
            profile: p.profile.clone(),
            mode: String::new(),
            decision: Decision::Upgraded {
                before_sha256: p.sha256.clone(),
                after_sha256: after_sha.clone(),
            },
            factor: String::new(),
            level: Some(LevelNote {
                requested: p.requested.clone(),
                reached: p.requested.clone(),
            }),
        };
        audit.append(entry).await.map_err(|e| e.to_string())?;
        let path = self.entry_path(&p.kind, &p.sha256);
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(before = %p.sha256, after = %after_sha, "{} upgraded to {} (N1, D7)", p.kind, p.requested);
        Ok(())
    }

    /// The CMS raised: the signature timestamp and, for B-LT, the validation data, with
    /// the record's digest algorithm and message digest.
    async fn cms_after(
        &self,
        before: &[u8],
        p: &Pending,
        stamper: &Stamper,
        validation: Option<&ValidationSource>,
        clock: &crate::service::Clock,
    ) -> Result<(Vec<u8>, String, Vec<u8>), String> {
        let msg = kyso_pki::cms::parse(before).map_err(|e| e.to_string())?;
        let has = kyso_pki::cms::embedded(&msg, 0).ok_or("the CMS has no signer")?;
        let mut after = before.to_vec();
        // B-T: the signature timestamp, unless the signature went out with one already.
        if !has.has_timestamp() {
            let value = kyso_pki::cms_build::unsigned::signature_value(before, 0)
                .map_err(|e| e.to_string())?;
            let token = stamper.stamp(&value).await.map_err(|e| e.to_string())?;
            after = kyso_pki::cms_build::add_signature_timestamp(&after, 0, &token.token)
                .map_err(|e| e.to_string())?;
        }
        // B-LT (R1): the signer's path and its revocation DER, unless already there.
        if p.requested == "B_LT" && has.certificates.is_empty() {
            let source = validation.ok_or("no source of validation data")?;
            let leaf = msg
                .certificates()
                .iter()
                .find(|c| c.fingerprint_hex().eq_ignore_ascii_case(&p.cert_sha256))
                .ok_or("the signer's certificate is not in the CMS")?;
            let now = clock();
            let mut data = (*source.get(leaf, msg.certificates(), now).await?).clone();
            // The TSA's path and revocation data too (R1): the timestamp's own evidence.
            let tokens = kyso_pki::cms::parse(&after)
                .map(|m| crate::ltdata::signature_tokens(&m))
                .unwrap_or_default();
            data.merge(&source.tsa_data(stamper.paths(), &tokens, now).await?);
            after = kyso_pki::cms_build::add_validation_data(&after, 0, &data.cades())
                .map_err(|e| e.to_string())?;
        }
        // The record names the signed content as the signing record did: the signer's
        // digest algorithm (`sha256`, ...) and its message digest.
        let digest_algorithm = msg
            .signer(0)
            .and_then(|s| kyso_pki::crypto::DigestAlgorithm::from_oid(&s.digest_alg.oid))
            .map(|d| d.name().to_ascii_lowercase().replace('-', ""))
            .unwrap_or_default();
        let digest = msg
            .signer(0)
            .and_then(|s| s.signed_attrs.as_ref())
            .and_then(|a| {
                a.iter()
                    .find(|a| a.oid == kyso_pki::cms::oid::MESSAGE_DIGEST)
                    .and_then(|a| a.values.get(0))
                    .map(|v| v.value().to_vec())
            })
            .unwrap_or_default();
        Ok((after, digest_algorithm, digest))
    }
}

/// A stored PDF raised (N1, D7): the DSS of its last signature and a document timestamp
/// (`pades_lt::extend`; a signature returned at B-B cannot take a signature timestamp
/// inside its CMS without being signed again, so the document timestamp gives it its proof
/// of existence).
async fn pdf_after(
    before: &[u8],
    p: &Pending,
    stamper: &Stamper,
    source: &ValidationSource,
    now: OffsetDateTime,
) -> Result<Vec<u8>, String> {
    let limits = kyso_pades::PadesLimits {
        max_bytes: before.len().saturating_mul(2).max(1 << 20),
        ..Default::default()
    };
    let sigs = kyso_pades::ltv::signature_contents(before, &limits)
        .map_err(|e| format!("signatures: {e}"))?;
    let sig = sigs
        .iter()
        .rev()
        .find(|s| !s.document_timestamp)
        .ok_or("the stored PDF has no signature")?;
    let msg = kyso_pki::cms::parse(sig.cms()).map_err(|e| e.to_string())?;
    let leaf = msg
        .certificates()
        .iter()
        .find(|c| c.fingerprint_hex().eq_ignore_ascii_case(&p.cert_sha256))
        .ok_or("the signer's certificate is not in the signature")?;
    let doc_timestamp = p.requested == "B_LTA";
    let x = crate::pades_lt::extend(
        before,
        leaf,
        msg.certificates(),
        doc_timestamp,
        crate::pades_lt::With { stamper, source },
        &limits,
        now,
    )
    .await?;
    Ok(x.pdf)
}

/// The journal entries of `dir` (unreadable files are skipped and logged).
fn read_entries(dir: &Path) -> Vec<Pending> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()))
        {
            Ok(p) => out.push(p),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable upgrade entry")
            }
        }
    }
    out.sort_by(|a, b| a.since.cmp(&b.since));
    out
}

/// RFC 3339 of `t` (for [`Pending::since`]).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
