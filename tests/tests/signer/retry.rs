//! The document flow is safe to retry (issue 13 item 4, docs/FLOWS.md "Retries"): the
//! `kyso-signer` process is aborted at each step of `IssueOutgoing`, `ReceiveIncoming` and
//! `SignAttachments` (a failpoint, `KYSO_SIGNER_FAILPOINT`, compiled in only with the cargo
//! feature `failpoints`: build it with `cargo build -p kyso-signer --features failpoints`),
//! restarted, and the request retried with the same idempotency key: one stored original,
//! one register number, audit records that match (a signature made and never kept is
//! recorded as `not_returned`), and the first answer again on every later retry. Plus: the
//! same key with another request is refused, and `GetDocument` only serves the caller's
//! organisations (R1).

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use kyso_proto::documents::v1 as dpb;
use kyso_proto::documents::v1::documents_client::DocumentsClient;
use kyso_proto::registry::v1 as reg;
use kyso_proto::signer::v1 as pb;
use kyso_signer::audit::verify_log;
use kyso_tests::cluster::Cluster;
use kyso_tests::pdf_peers::{Peers, SampleKind};
use serde_json::Value;
use tonic::Code;

use crate::documents::register;
use crate::sign::{
    audit_lines, callers_config, let_dms_sign_on_behalf, make_tls, mtls_channel, status_rules,
};

const FAILPOINT: &str = "KYSO_SIGNER_FAILPOINT";

async fn documents(c: &Cluster) -> DocumentsClient<tonic::transport::Channel> {
    DocumentsClient::connect(format!("http://{}", c.addr))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// Restarts the signer, with `failpoint` armed or none.
async fn restart(c: &mut Cluster, failpoint: Option<&str>) {
    c.kill_signer();
    c.signer_env = failpoint
        .map(|f| vec![(FAILPOINT.to_owned(), f.to_owned())])
        .unwrap_or_default();
    c.start_signer().await;
}

/// The signer must have aborted at `step` (SIGABRT), not answered or exited otherwise.
fn assert_aborted(c: &mut Cluster, step: &str, answer: &str) {
    let status = c.wait_signer_exit(Duration::from_secs(60));
    assert_eq!(
        status.signal(),
        Some(6),
        "kyso-signer did not abort at failpoint {step} (exit {status}; answer {answer}): \
         build it with `cargo build -p kyso-signer --features failpoints`\n{}",
        c.signer_log()
    );
}

pub(crate) fn issue_request(
    c: &Cluster,
    pdf: &[u8],
    number: &str,
    key: &str,
) -> dpb::IssueOutgoingRequest {
    let sample = Peers::get().sample(SampleKind::Decision);
    let b = &sample.signature_block.signature_box;
    dpb::IssueOutgoingRequest {
        pdf: pdf.to_vec(),
        document: Some(pb::DocumentInfo {
            document_type: "QD".into(),
            number_and_symbol: number.into(),
            issue_date: Cluster::today(),
            classification: pb::Classification::None as i32,
        }),
        organisation_id: c.province.ubnd.clone(),
        approval_key: "chairman".into(),
        approver_person_id: c.province.chairman.clone(),
        approval_mode: pb::SigningMode::Own as i32,
        approval_placement: Some(pb::PdfPlacement {
            r#where: Some(pb::pdf_placement::Where::Rect(pb::PdfRect {
                page: sample.signature_block.page,
                x0: b.x1,
                y0: b.y1,
                x1: b.x2,
                y1: b.y2,
            })),
        }),
        seal_key: "seal".into(),
        custodian_person_id: c.province.clerk.clone(),
        recipients: "Sở Tài chính".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

fn receive_request(c: &Cluster, pdf: &[u8], key: &str) -> dpb::ReceiveIncomingRequest {
    dpb::ReceiveIncomingRequest {
        pdf: pdf.to_vec(),
        organisation_id: c.province.ubnd.clone(),
        seal_key: "seal".into(),
        custodian_person_id: c.province.clerk.clone(),
        sender: "UBND tỉnh Khánh Hòa".into(),
        document_type: "QD".into(),
        received_at: None,
        idempotency_key: key.into(),
        sender_code: String::new(),
    }
}

/// The originals in the store (not the journal's documents between steps).
fn originals(store: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in std::fs::read_dir(store).unwrap() {
        let d = d.unwrap();
        let name = d.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !d.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap() {
            let n = f.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(sha) = n.strip_suffix(".pdf") {
                out.insert(sha.to_owned());
            }
        }
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(kyso_pki::crypto::sha256(bytes))
}

/// The audit entries of one document number: (seq, profile, decision, reason).
fn entries_of(c: &Cluster, number: &str) -> Vec<(u64, String, String, String)> {
    audit_lines(&c.audit_path())
        .iter()
        .filter(|l| l["entry"]["number_and_symbol"] == number)
        .map(|l| {
            let e = &l["entry"];
            (
                l["seq"].as_u64().unwrap(),
                e["profile"].as_str().unwrap().to_owned(),
                e["decision"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The log verifies (chain, seals with the seal certificate) and every receipt returned
/// names a `signed` record.
fn assert_audit_matches(c: &Cluster, receipts: &[pb::AuditReceipt]) {
    let seal = kyso_signer::audit::SealKey::from_certificate(
        &std::fs::read(c.pki.path("leaves/seal.pem")).unwrap(),
    )
    .unwrap();
    let report = verify_log(&c.audit_path(), &[seal]).unwrap();
    assert!(report.intact(), "{report:?}");
    let lines = audit_lines(&c.audit_path());
    for r in receipts {
        let rec = lines
            .iter()
            .find(|l| l["seq"].as_u64() == Some(r.sequence))
            .unwrap_or_else(|| panic!("no record {}", r.sequence));
        assert_eq!(rec["hash"], Value::from(r.record_hash.clone()));
        assert_eq!(rec["entry"]["decision"], "signed", "{rec}");
    }
}

/// Checks what one step's lost signature must leave: `signed` records of `profile`, one more
/// than kept when the signer died between the signature and the journal, and that one named
/// by a `not_returned` record.
fn assert_signatures(c: &Cluster, number: &str, profile: &str, lost: bool, step: &str) {
    let entries = entries_of(c, number);
    let signed: Vec<_> = entries
        .iter()
        .filter(|e| e.1 == profile && e.2 == "signed")
        .collect();
    let not_returned: Vec<_> = entries
        .iter()
        .filter(|e| e.1 == profile && e.2 == "not_returned")
        .collect();
    if lost {
        assert_eq!(signed.len(), 2, "{step}: {entries:?}");
        assert_eq!(not_returned.len(), 1, "{step}: {entries:?}");
        assert!(
            not_returned[0]
                .3
                .starts_with(&format!("signature of record {}:", signed[0].0)),
            "{step}: the not_returned record names the lost signature: {entries:?}"
        );
    } else {
        assert_eq!(signed.len(), 1, "{step}: {entries:?}");
        assert!(not_returned.is_empty(), "{step}: {entries:?}");
    }
}

/// W1, D7: `IssueOutgoing` killed at each step and retried with the same key: exactly one
/// original, one outgoing number, the audit records matching; a further retry answers the
/// same; the same key over another request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_outgoing_killed_at_each_step_and_retried_gives_one_original_and_one_number_W1_D7() {
    let mut c = Cluster::start().await;
    let sample = Peers::get().sample(SampleKind::Decision);
    let steps = [
        "approval-signed",
        "approval-journaled",
        "seal-signed",
        "seal-journaled",
        "stored",
        "registered",
        "replying",
    ];
    for (i, step) in steps.iter().enumerate() {
        let number = format!("{}/QĐ-UBND", 200 + i);
        let key = format!("issue-{step}");
        let originals_before = originals(&c.documents_dir());
        let numbers_before = register(&c, reg::Direction::Outgoing).await.len();

        restart(&mut c, Some(step)).await;
        let first = documents(&c)
            .await
            .issue_outgoing(issue_request(&c, &sample.bytes, &number, &key))
            .await;
        assert!(first.is_err(), "{step}: answered {first:?}");
        assert_aborted(&mut c, step, &format!("{first:?}"));
        restart(&mut c, None).await;

        let answer = documents(&c)
            .await
            .issue_outgoing(issue_request(&c, &sample.bytes, &number, &key))
            .await
            .unwrap_or_else(|s| panic!("{step}: retry: {s:?}\n{}", c.signer_log()))
            .into_inner();
        assert_eq!(answer.sha256, sha256_hex(&answer.pdf), "{step}");
        assert!(answer.pdf.starts_with(&sample.bytes), "{step}");
        // One original more, and it is the answer.
        let now = originals(&c.documents_dir());
        let new: Vec<_> = now.difference(&originals_before).collect();
        assert_eq!(new, [&answer.sha256], "{step}: originals {new:?}");
        // One number more, for this original.
        let outgoing = register(&c, reg::Direction::Outgoing).await;
        assert_eq!(outgoing.len(), numbers_before + 1, "{step}: {outgoing:?}");
        let mine: Vec<_> = outgoing
            .iter()
            .filter(|e| e.number_and_symbol == number)
            .collect();
        assert_eq!(mine.len(), 1, "{step}: {outgoing:?}");
        assert_eq!(mine[0].sha256, answer.sha256, "{step}");
        assert_eq!(mine[0].number, answer.register_number, "{step}");
        // The audit log: one kept signature per step, a lost one recorded as such.
        assert_eq!(answer.audit.len(), 2, "{step}");
        assert_audit_matches(&c, &answer.audit);
        assert_signatures(
            &c,
            &number,
            "PROFILE_APPROVAL",
            *step == "approval-signed",
            step,
        );
        assert_signatures(&c, &number, "PROFILE_ISSUE", *step == "seal-signed", step);

        // Retried again (the answer was lost once more): the same answer, nothing new.
        let again = documents(&c)
            .await
            .issue_outgoing(issue_request(&c, &sample.bytes, &number, &key))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, answer, "{step}");
        assert_eq!(originals(&c.documents_dir()), now, "{step}");
        assert_eq!(
            register(&c, reg::Direction::Outgoing).await.len(),
            numbers_before + 1
        );
    }

    // The same key over another request: refused, nothing signed.
    let records = audit_lines(&c.audit_path()).len();
    let mut other = issue_request(&c, &sample.bytes, "200/QĐ-UBND", "issue-approval-signed");
    other.recipients = "Sở Nội vụ".into();
    let err = documents(&c).await.issue_outgoing(other).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("different request"), "{err:?}");
    assert_eq!(audit_lines(&c.audit_path()).len(), records);
    // A key that is not printable ASCII, or too long: refused before anything.
    for bad in ["a key", &"k".repeat(129)] {
        let err = documents(&c)
            .await
            .issue_outgoing(issue_request(&c, &sample.bytes, "299/QĐ-UBND", bad))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
}

/// W3, D6: `ReceiveIncoming` killed at each step and retried: the incoming number taken
/// before the stamp is the one the retry stamps (never a second number), one stamped
/// original, one RECEIVED signature kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_incoming_killed_at_each_step_keeps_one_incoming_number_W3_D6() {
    let mut c = Cluster::start().await;
    let sample = Peers::get().sample(SampleKind::Decision);
    let issued = documents(&c)
        .await
        .issue_outgoing(issue_request(&c, &sample.bytes, "300/QĐ-UBND", "issue-300"))
        .await
        .unwrap()
        .into_inner()
        .pdf;
    let steps = [
        "received-stored",
        "verified",
        "numbered",
        "stamp-signed",
        "stamp-journaled",
        "stored",
        "replying",
    ];
    let mut numbers = BTreeSet::new();
    for step in steps {
        let key = format!("receive-{step}");
        let incoming_before = register(&c, reg::Direction::Incoming).await.len();
        let originals_before = originals(&c.documents_dir());
        restart(&mut c, Some(step)).await;
        let first = documents(&c)
            .await
            .receive_incoming(receive_request(&c, &issued, &key))
            .await;
        assert!(first.is_err(), "{step}: answered {first:?}");
        assert_aborted(&mut c, step, &format!("{first:?}"));
        restart(&mut c, None).await;
        let answer = documents(&c)
            .await
            .receive_incoming(receive_request(&c, &issued, &key))
            .await
            .unwrap_or_else(|s| panic!("{step}: retry: {s:?}\n{}", c.signer_log()))
            .into_inner();
        assert!(answer.accepted, "{step}: {:?}", answer.problems);
        assert!(
            numbers.insert(answer.incoming_number),
            "{step}: number reused"
        );
        let incoming = register(&c, reg::Direction::Incoming).await;
        assert_eq!(incoming.len(), incoming_before + 1, "{step}: {incoming:?}");
        let entry = incoming.last().unwrap();
        assert_eq!(entry.number, answer.incoming_number, "{step}");
        assert_eq!(entry.sha256, sha256_hex(&issued), "{step}");
        // The stamped original is the only new file (the received file is stored once, by
        // the first receipt).
        let now = originals(&c.documents_dir());
        let new: Vec<_> = now.difference(&originals_before).collect();
        assert_eq!(new, [&answer.sha256], "{step}");
        assert_eq!(answer.sha256, sha256_hex(&answer.pdf));
        // One RECEIVED signature kept per receipt; the lost one recorded.
        let audit = answer.audit.clone().unwrap();
        assert_audit_matches(&c, std::slice::from_ref(&audit));
        let received: Vec<_> = audit_lines(&c.audit_path())
            .into_iter()
            .filter(|l| l["entry"]["profile"] == "PROFILE_RECEIVED")
            .collect();
        let lost = received
            .iter()
            .filter(|l| l["entry"]["decision"] == "not_returned")
            .count();
        let signed = received
            .iter()
            .filter(|l| l["entry"]["decision"] == "signed")
            .count();
        // Every earlier step kept one; "stamp-signed" lost one.
        let stamps_lost = usize::from(steps.iter().position(|s| *s == step).unwrap() >= 3);
        assert_eq!(lost, stamps_lost, "{step}");
        assert_eq!(signed, numbers.len() + stamps_lost, "{step}");
        let again = documents(&c)
            .await
            .receive_incoming(receive_request(&c, &issued, &key))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, answer, "{step}");
    }
}

/// D5: `SignAttachments` killed between an appendix signature and its journal entry, and
/// after storing: one stored original per attachment, the lost signature recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_attachments_killed_and_retried_keeps_one_original_per_attachment_D5() {
    let mut c = Cluster::start().await;
    let sample = Peers::get().sample(SampleKind::Decision);
    let (ubnd, clerk) = (c.province.ubnd.clone(), c.province.clerk.clone());
    for (i, step) in ["appendix-signed", "stored"].iter().enumerate() {
        let number = format!("{}/QĐ-UBND", 400 + i);
        let request = || dpb::SignAttachmentsRequest {
            attachments: vec![
                dpb::Attachment {
                    name: "phu-luc-1.pdf".into(),
                    pdf: sample.bytes.clone(),
                },
                dpb::Attachment {
                    name: "phu-luc-2.pdf".into(),
                    pdf: sample.bytes.clone(),
                },
            ],
            document: Some(pb::DocumentInfo {
                document_type: "QD".into(),
                number_and_symbol: number.clone(),
                issue_date: String::new(),
                classification: pb::Classification::None as i32,
            }),
            organisation_id: ubnd.clone(),
            seal_key: "seal".into(),
            custodian_person_id: clerk.clone(),
            idempotency_key: format!("attach-{step}"),
        };
        // D5: the main document is in the outgoing register.
        c.register_document(&ubnd, "OUTGOING", &number, &"0".repeat(64))
            .await;
        let before = originals(&c.documents_dir());
        restart(&mut c, Some(step)).await;
        let first = documents(&c).await.sign_attachments(request()).await;
        assert!(first.is_err(), "{step}: answered {first:?}");
        assert_aborted(&mut c, step, &format!("{first:?}"));
        restart(&mut c, None).await;
        let answer = documents(&c)
            .await
            .sign_attachments(request())
            .await
            .unwrap_or_else(|s| panic!("{step}: retry: {s:?}\n{}", c.signer_log()))
            .into_inner();
        assert_eq!(answer.attachments.len(), 2);
        let now = originals(&c.documents_dir());
        let new: BTreeSet<_> = now.difference(&before).cloned().collect();
        let returned: BTreeSet<_> = answer
            .attachments
            .iter()
            .map(|a| a.sha256.clone())
            .collect();
        assert_eq!(new, returned, "{step}");
        let receipts: Vec<_> = answer
            .attachments
            .iter()
            .map(|a| a.audit.clone().unwrap())
            .collect();
        assert_audit_matches(&c, &receipts);
        let entries = entries_of(&c, &number);
        let signed = entries.iter().filter(|e| e.2 == "signed").count();
        let lost = entries.iter().filter(|e| e.2 == "not_returned").count();
        let expect_lost = usize::from(*step == "appendix-signed");
        assert_eq!(
            (signed, lost),
            (2 + expect_lost, expect_lost),
            "{entries:?}"
        );
        let again = documents(&c)
            .await
            .sign_attachments(request())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, answer, "{step}");
    }
}

/// R1: an original is given only to a caller acting for an organisation it belongs to; a
/// caller bound to another organisation is refused with the rule, whether the file exists
/// or not; a caller with no organisations listed reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_document_only_for_the_callers_organisations_R1() {
    let tls = make_tls(&["dms", "dms-other"]);
    let d = tls.path();
    let mut c = Cluster::start_with(&callers_config(&tls)).await;
    // The document system signs the approval on behalf of the People's Committee's leaders,
    // as this deployment says (A1; holder consent has its own tests).
    let_dms_sign_on_behalf(&mut c).await;
    let c = c;
    let client = |name: &'static str| {
        let addr = c.addr;
        async move {
            let ch = mtls_channel(addr, d, Some(name)).await.unwrap();
            DocumentsClient::new(ch).max_decoding_message_size(64 << 20)
        }
    };
    let sample = Peers::get().sample(SampleKind::Decision);
    let issued = client("dms")
        .await
        .issue_outgoing(issue_request(&c, &sample.bytes, "500/QĐ-UBND", "get-500"))
        .await
        .unwrap()
        .into_inner();
    let get = |sha: &str| dpb::GetDocumentRequest { sha256: sha.into() };
    let got = client("dms")
        .await
        .get_document(get(&issued.sha256))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.pdf, issued.pdf);
    let mut other = client("dms-other").await;
    let err = other.get_document(get(&issued.sha256)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(status_rules(&err), "R1");
    // A hash that names no file: the same refusal (nothing learnt about other files).
    let err = other.get_document(get(&"00".repeat(32))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = client("dms")
        .await
        .get_document(get(&"00".repeat(32)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}
