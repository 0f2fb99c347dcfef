//! Audit anchors (issue 13): the head of a signer's audit log, recorded by the signer at
//! every seal. Only the signer role writes them (attributed to its certificate, recorded as
//! an event), a log id is bound to the certificate subject that anchored it first, the
//! sequence only grows, and the signer and auditor roles read them. Over mTLS on SQLite and
//! PostgreSQL, as the access tests.

use kyso_proto::registry::v1 as pb;
use tonic::Code;

use crate::access::{World, change, on_both};
use crate::setup::events;

fn anchor(log_id: &str, sequence: u64, hash_byte: u8) -> pb::RecordAuditAnchorRequest {
    pb::RecordAuditAnchorRequest {
        change: change("audit seal"),
        anchor: Some(pb::AuditAnchor {
            log_id: log_id.into(),
            sequence,
            head_hash: hex::encode([hash_byte; 32]),
            seal_algorithm: "1.2.840.10045.4.3.2".into(),
            seal_key_sha256: String::new(),
            seal_signature: vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
            sealed_at: Some(prost_types::Timestamp {
                seconds: 1_780_000_000,
                nanos: 0,
            }),
            // A request cannot say who wrote it: these are ignored.
            writer_fingerprint: "00".repeat(32),
            writer_subject: "CN=someone else".into(),
            recorded_at: None,
        }),
    }
}

async fn only_the_signer_records_anchors_and_their_sequence_only_grows(w: World) {
    let r = w.start(1_000).await;
    w.grant(&r, "signer", "signer", "").await;
    w.grant(&r, "signer2", "signer", "").await;
    w.grant(&r, "auditor", "auditor", "").await;
    w.grant(&r, "verifier", "verifier", "").await;

    // Nobody but a signer-role certificate writes an anchor: not the auditor, not the
    // verifier, not even the provincial administrator.
    for who in ["auditor", "verifier", "admin"] {
        let e = w
            .c(&r, who)
            .await
            .record_audit_anchor(anchor("signer-0", 10, 1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{who}: {e:?}");
    }
    let mut signer = w.c(&r, "signer").await;
    let first = signer
        .record_audit_anchor(anchor("signer-0", 10, 1))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    // The same anchor again (a retry after a lost answer) changes nothing.
    let again = signer
        .record_audit_anchor(anchor("signer-0", 10, 1))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    // An equal sequence with another hash, or a lower one, is refused: the head only moves
    // forward.
    for (seq, byte) in [(10, 2), (9, 3), (1, 4)] {
        let e = signer
            .record_audit_anchor(anchor("signer-0", seq, byte))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "seq {seq}: {e:?}");
        assert!(e.message().contains("anchored at sequence 10"), "{e:?}");
    }
    // Malformed anchors change nothing either.
    let mut bad = anchor("signer-0", 20, 5);
    bad.anchor.as_mut().unwrap().head_hash = "not hex".into();
    let e = signer.record_audit_anchor(bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    signer
        .record_audit_anchor(anchor("signer-0", 20, 6))
        .await
        .unwrap();
    // Another signer certificate (another subject) cannot move this log's head: the log id is
    // bound to the certificate that anchored it first. Its own log it anchors.
    let mut signer2 = w.c(&r, "signer2").await;
    let e = signer2
        .record_audit_anchor(anchor("signer-0", 30, 7))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("is bound to"), "{e:?}");
    signer2
        .record_audit_anchor(anchor("signer-1", 5, 8))
        .await
        .unwrap();

    // The signer and the auditor read them; the verifier does not.
    for who in ["signer", "auditor", "admin"] {
        let latest = w
            .c(&r, who)
            .await
            .get_latest_audit_anchor(pb::GetLatestAuditAnchorRequest {
                log_id: "signer-0".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .anchor
            .expect("an anchor");
        assert_eq!(latest.sequence, 20, "{who}");
        assert_eq!(latest.head_hash, hex::encode([6u8; 32]));
        // Who wrote it is the caller's certificate, not what the request said.
        assert_eq!(latest.writer_fingerprint, w.fp("signer"));
        assert!(latest.writer_subject.contains("kyso signer"), "{latest:?}");
    }
    let e = w
        .c(&r, "verifier")
        .await
        .get_latest_audit_anchor(pb::GetLatestAuditAnchorRequest {
            log_id: "signer-0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let all = w
        .c(&r, "auditor")
        .await
        .list_audit_anchors(pb::ListAuditAnchorsRequest {
            log_id: "signer-0".into(),
            after_sequence: 0,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .anchors;
    let seqs: Vec<u64> = all.iter().map(|a| a.sequence).collect();
    assert_eq!(seqs, [10, 20]);
    let none = w
        .c(&r, "signer")
        .await
        .get_latest_audit_anchor(pb::GetLatestAuditAnchorRequest {
            log_id: "never-anchored".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .anchor;
    assert!(none.is_none());

    // Every anchor is a change in the event log, attributed to the signer's certificate.
    let events = events(w.c(&r, "admin").await).await;
    let anchored: Vec<&pb::Event> = events
        .iter()
        .filter(|e| e.kind == "anchor.recorded")
        .collect();
    assert_eq!(anchored.len(), 3, "{anchored:?}");
    assert_eq!(anchored[0].entity_id, "signer-0#10");
    assert_eq!(anchored[0].actor_fingerprint, w.fp("signer"));
    assert_eq!(anchored[0].actor_role, "signer");
    r.stop().await;
}

on_both!(only_the_signer_records_anchors_and_their_sequence_only_grows);
