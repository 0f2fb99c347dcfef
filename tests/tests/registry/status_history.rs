//! The status history of registered documents (issue 15, item 5) and the certificate book by
//! issuer and serial or subject key identifier (item 8), on SQLite and PostgreSQL:
//! - `RecordDocumentStatus` / `ListDocumentStatus`: the envelope sent to each counterparty
//!   (code '') and the answers (N6 codes), listed by time then recording order; unknown codes
//!   (07-12, 14) refused (N6), a code going the wrong way refused (N6), an answer from a
//!   counterparty the document was not sent to refused (W4), another organisation's entry
//!   refused; every change one event, a refusal none.
//! - `ListUnconfirmed` (W4): an outgoing document stays in the sender's view for each
//!   counterparty until that one answers 02-06 or 15; 01 (arrived) does not settle it.
//! - The rights: recording needs the Record right (a verifier's certificate is refused), the
//!   lists the right `ListRegister` needs.
//! - `FindCertificates`: the DER the registry holds, by issuer and serial and by subject key
//!   identifier (as `openssl x509 -ext subjectKeyIdentifier` prints it).

use kyso_proto::registry::v1 as pb;
use kyso_tests::TestPki;
use tonic::Code;

use crate::setup::{DAY, Service, change, now, on_both_backends, seed, status_rules, ts};

const TAI_CHINH: &str = "000.00.01.H34";
const Y_TE: &str = "000.00.02.H34";

async fn register_outgoing(svc: &Service, org: &str, number: &str, at: i64) -> pb::RegisterEntry {
    svc.c()
        .register_document(pb::RegisterDocumentRequest {
            change: change("văn thư vào sổ"),
            organisation_id: org.into(),
            direction: pb::Direction::Outgoing as i32,
            document_type: "QD".into(),
            number_and_symbol: number.into(),
            sha256: "ab".repeat(32),
            counterparty: "Sở Tài chính; Sở Y tế".into(),
            at: ts(at),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap()
}

fn status(
    org: &str,
    entry: &str,
    counterparty: &str,
    direction: pb::StatusDirection,
    code: &str,
    at: i64,
) -> pb::RecordDocumentStatusRequest {
    pb::RecordDocumentStatusRequest {
        organisation_id: org.into(),
        register_entry_id: entry.into(),
        counterparty_code: counterparty.into(),
        direction: direction as i32,
        code: code.into(),
        description: String::new(),
        envelope_sha256: "cd".repeat(32),
        at: ts(at),
        change: change("trục liên thông"),
        document_sha256: String::new(),
    }
}

async fn record(
    svc: &Service,
    req: pb::RecordDocumentStatusRequest,
) -> Result<pb::DocumentStatus, tonic::Status> {
    svc.c()
        .record_document_status(req)
        .await
        .map(|r| r.into_inner().status.unwrap())
}

async fn unconfirmed(svc: &Service, org: &str) -> Vec<pb::Unconfirmed> {
    svc.c()
        .list_unconfirmed(pb::ListUnconfirmedRequest {
            organisation_id: org.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .documents
}

async fn history(svc: &Service, org: &str, entry: &str) -> Result<Vec<(String, String)>, Code> {
    svc.c()
        .list_document_status(pb::ListDocumentStatusRequest {
            organisation_id: org.into(),
            register_entry_id: entry.into(),
        })
        .await
        .map(|r| {
            r.into_inner()
                .statuses
                .into_iter()
                .map(|s| (s.counterparty_code, s.code))
                .collect()
        })
        .map_err(|s| s.code())
}

/// The history is recorded and listed by time, then in the order recorded; the checks refuse
/// unknown codes (N6), a code going the wrong way (N6), an answer before the envelope (W4)
/// and another organisation's entry, each without an event.
async fn status_history_is_recorded_in_order_and_unknown_codes_are_refused_N6(svc: Service) {
    let p = seed(&svc).await;
    let t = now() - 10 * DAY;
    let doc = register_outgoing(&svc, &p.ubnd, "12/QĐ-UBND", t).await;
    use pb::StatusDirection::{Received, Sent};
    let sent = record(&svc, status(&p.ubnd, &doc.id, TAI_CHINH, Sent, "", t))
        .await
        .unwrap();
    assert_eq!(sent.code, "");
    assert_eq!(sent.direction, Sent as i32);
    assert_eq!(sent.register_entry_id, doc.id);
    assert!(!sent.actor.is_empty(), "{sent:?}");
    // The exchange's address form is read for the code it carries.
    let sent2 = record(
        &svc,
        status(&p.ubnd, &doc.id, &format!("VN:GOV:{Y_TE}:1"), Sent, "", t),
    )
    .await
    .unwrap();
    assert_eq!(sent2.counterparty_code, Y_TE);
    // Two answers at the same second: listed in the order recorded.
    record(
        &svc,
        status(&p.ubnd, &doc.id, TAI_CHINH, Received, "01", t + 60),
    )
    .await
    .unwrap();
    record(
        &svc,
        status(&p.ubnd, &doc.id, TAI_CHINH, Received, "03", t + 60),
    )
    .await
    .unwrap();
    // Recorded late but earlier in time: listed by time.
    record(&svc, status(&p.ubnd, &doc.id, Y_TE, Received, "01", t + 30))
        .await
        .unwrap();
    assert_eq!(
        history(&svc, &p.ubnd, &doc.id).await.unwrap(),
        vec![
            (TAI_CHINH.to_owned(), String::new()),
            (Y_TE.to_owned(), String::new()),
            (Y_TE.to_owned(), "01".to_owned()),
            (TAI_CHINH.to_owned(), "01".to_owned()),
            (TAI_CHINH.to_owned(), "03".to_owned()),
        ]
    );
    let kinds: Vec<String> = svc
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == "document.status")
        .map(|e| e.entity_id)
        .collect();
    assert_eq!(kinds.len(), 5);
    assert!(kinds.contains(&sent.id));

    let events_before = svc.events().await.len();
    // N6: 07-12 and 14 have no known meaning.
    for code in ["07", "12", "14", "99", "3"] {
        let err = record(&svc, status(&p.ubnd, &doc.id, TAI_CHINH, Received, code, t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{code}: {err:?}");
        assert_eq!(status_rules(&err), ["N6"], "{code}: {err:?}");
    }
    // N6: the receiver answers; the sender does not send itself "accepted", nor receive its
    // own document.
    for (direction, code) in [(Sent, "03"), (Received, ""), (Received, "13")] {
        let err = record(
            &svc,
            status(&p.ubnd, &doc.id, TAI_CHINH, direction, code, t),
        )
        .await
        .unwrap_err();
        assert_eq!(status_rules(&err), ["N6"], "{direction:?} {code}: {err:?}");
    }
    // W4: an answer from a counterparty the document was not sent to.
    let err = record(
        &svc,
        status(&p.ubnd, &doc.id, "000.00.03.H34", Received, "03", t),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(status_rules(&err), ["W4"], "{err:?}");
    // Not an organisation code, no direction.
    let err = record(&svc, status(&p.ubnd, &doc.id, "H34", Received, "03", t))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = record(
        &svc,
        pb::RecordDocumentStatusRequest {
            direction: 0,
            ..status(&p.ubnd, &doc.id, TAI_CHINH, Received, "03", t)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // Another organisation's entry: not in its register, recorded nowhere, not listed.
    let err = record(&svc, status(&p.sotttt, &doc.id, TAI_CHINH, Sent, "", t))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(history(&svc, &p.sotttt, &doc.id).await, Err(Code::NotFound));
    assert_eq!(svc.events().await.len(), events_before);
    assert_eq!(history(&svc, &p.ubnd, &doc.id).await.unwrap().len(), 5);
    svc.stop().await;
}

/// W4: sent to two; one answers 03 (accepted), so one is left, the other has only said 01
/// (arrived); oldest first; a refusal (02) and a take-back accepted (15) settle too, a
/// take-back refused (16) does not; incoming entries are not in the sender's view.
async fn the_sender_sees_what_is_not_yet_confirmed_W4(svc: Service) {
    let p = seed(&svc).await;
    use pb::StatusDirection::{Received, Sent};
    let t = now() - 20 * DAY;
    let older = register_outgoing(&svc, &p.ubnd, "10/QĐ-UBND", t).await;
    let newer = register_outgoing(&svc, &p.ubnd, "11/QĐ-UBND", t + DAY).await;
    assert!(unconfirmed(&svc, &p.ubnd).await.is_empty());
    // Recorded newest first: listed oldest first all the same.
    for (doc, at) in [(&newer, t + DAY), (&older, t)] {
        for to in [TAI_CHINH, Y_TE] {
            record(&svc, status(&p.ubnd, &doc.id, to, Sent, "", at))
                .await
                .unwrap();
        }
    }
    let pairs = |u: &[pb::Unconfirmed]| -> Vec<(String, String, String)> {
        u.iter()
            .map(|u| {
                (
                    u.entry.as_ref().unwrap().number_and_symbol.clone(),
                    u.counterparty_code.clone(),
                    u.last_code.clone(),
                )
            })
            .collect()
    };
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    let u = unconfirmed(&svc, &p.ubnd).await;
    assert_eq!(
        pairs(&u),
        vec![
            s("10/QĐ-UBND", TAI_CHINH, ""),
            s("10/QĐ-UBND", Y_TE, ""),
            s("11/QĐ-UBND", TAI_CHINH, ""),
            s("11/QĐ-UBND", Y_TE, ""),
        ]
    );
    assert_eq!(u[0].sent_at, ts(t));
    assert_eq!(u[0].entry.as_ref().unwrap().id, older.id);

    // The older one: Tài chính accepts (03), Y tế says only that it arrived (01).
    record(
        &svc,
        status(&p.ubnd, &older.id, TAI_CHINH, Received, "01", t + 10),
    )
    .await
    .unwrap();
    record(
        &svc,
        status(&p.ubnd, &older.id, TAI_CHINH, Received, "03", t + 20),
    )
    .await
    .unwrap();
    record(
        &svc,
        status(&p.ubnd, &older.id, Y_TE, Received, "01", t + 30),
    )
    .await
    .unwrap();
    let u = unconfirmed(&svc, &p.ubnd).await;
    assert_eq!(
        pairs(&u),
        vec![
            s("10/QĐ-UBND", Y_TE, "01"),
            s("11/QĐ-UBND", TAI_CHINH, ""),
            s("11/QĐ-UBND", Y_TE, ""),
        ]
    );
    assert_eq!(u[0].last_at, ts(t + 30));

    // The newer one: Tài chính refuses it (02, with the reason); the sender asks Y tế to
    // take it back (13), Y tế refuses (16): still unconfirmed; then accepts (15): settled.
    let mut refusal = status(&p.ubnd, &newer.id, TAI_CHINH, Received, "02", t + DAY + 5);
    refusal.description = "Sai thẩm quyền ban hành".into();
    let refused = record(&svc, refusal).await.unwrap();
    assert_eq!(refused.description, "Sai thẩm quyền ban hành");
    for (direction, code) in [(Sent, "13"), (Received, "16")] {
        record(
            &svc,
            status(&p.ubnd, &newer.id, Y_TE, direction, code, t + DAY + 9),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        pairs(&unconfirmed(&svc, &p.ubnd).await),
        vec![s("10/QĐ-UBND", Y_TE, "01"), s("11/QĐ-UBND", Y_TE, "16")]
    );
    record(
        &svc,
        status(&p.ubnd, &newer.id, Y_TE, Received, "15", t + DAY + 99),
    )
    .await
    .unwrap();
    assert_eq!(
        pairs(&unconfirmed(&svc, &p.ubnd).await),
        vec![s("10/QĐ-UBND", Y_TE, "01")]
    );

    // The receiving side: an incoming entry, its envelope received and its answers sent.
    let incoming = svc
        .c()
        .register_document(pb::RegisterDocumentRequest {
            change: change("văn thư vào sổ đến"),
            organisation_id: p.sotttt.clone(),
            direction: pb::Direction::Incoming as i32,
            document_type: "QD".into(),
            sha256: "ef".repeat(32),
            counterparty: "UBND tỉnh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    let ubnd_code = "000.00.00.H34";
    for (direction, code) in [(Received, ""), (Sent, "01"), (Sent, "03")] {
        record(
            &svc,
            status(&p.sotttt, &incoming.id, ubnd_code, direction, code, t),
        )
        .await
        .unwrap();
    }
    assert!(unconfirmed(&svc, &p.sotttt).await.is_empty());
    // Another organisation's view does not show the People's Committee's documents.
    assert_eq!(unconfirmed(&svc, &p.ubnd).await.len(), 1);
    // ListRegister finds a document by its number and symbol.
    let found = svc
        .c()
        .list_register(pb::ListRegisterRequest {
            organisation_id: p.ubnd.clone(),
            number_and_symbol: "11/QĐ-UBND".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, newer.id);
    svc.stop().await;
}

/// The subject key identifier of a test PKI leaf as openssl prints it, lowercase hex.
fn openssl_ski(leaf: &str) -> String {
    let pki = TestPki::get();
    let out = pki.openssl([
        "x509",
        "-in",
        pki.leaf_cert(leaf).to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectKeyIdentifier",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().nth(1).unwrap_or_default();
    let ski = line.trim().replace(':', "").to_ascii_lowercase();
    assert_eq!(ski.len(), 40, "{text}");
    ski
}

/// Issue 15, item 8: the book gives the DER it holds by issuer and serial, and by subject
/// key identifier; nothing for one it does not hold; a malformed or double question is
/// refused. The certificates registered carry their DER (`Certificate.der`).
async fn the_book_finds_certificates_by_issuer_serial_and_key_identifier_V5(svc: Service) {
    let p = seed(&svc).await;
    let pki = TestPki::get();
    let chairman = svc
        .c()
        .get_certificate(pb::GetCertificateRequest {
            by: Some(pb::get_certificate_request::By::Fingerprint(
                p.chairman_cert.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(chairman.der, pki.leaf_der("personal-rsa"));
    let find = |issuer: &str, serial: &str, ski: &str| {
        let mut c = svc.c();
        let req = pb::FindCertificatesRequest {
            issuer: issuer.into(),
            serial: serial.into(),
            subject_key_identifier: ski.into(),
        };
        async move { c.find_certificates(req).await.map(|r| r.into_inner().der) }
    };
    // By issuer and serial, as the registry reports them; the serial in any hex form.
    let colons: Vec<String> = chairman
        .serial
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_lowercase())
        .collect();
    for serial in [chairman.serial.clone(), format!("00{}", colons.join(":"))] {
        assert_eq!(
            find(&chairman.issuer, &serial, "").await.unwrap(),
            vec![pki.leaf_der("personal-rsa")],
            "{serial}"
        );
    }
    // By subject key identifier, computed by openssl, not by the registry.
    for leaf in ["personal-rsa", "org-rsa", "personal-ec256"] {
        let ski = openssl_ski(leaf);
        assert_eq!(
            find("", "", &ski).await.unwrap(),
            vec![pki.leaf_der(leaf)],
            "{leaf}"
        );
        assert_eq!(
            find("", "", &ski.to_ascii_uppercase()).await.unwrap().len(),
            1
        );
    }
    // Not in the book: nothing.
    assert!(find("", "", &"00".repeat(20)).await.unwrap().is_empty());
    assert!(find(&chairman.issuer, "7777", "").await.unwrap().is_empty());
    // A question that is not one.
    for (issuer, serial, ski) in [
        ("", "", ""),
        (chairman.issuer.as_str(), "", ""),
        ("", chairman.serial.as_str(), ""),
        (chairman.issuer.as_str(), chairman.serial.as_str(), "ab"),
        ("", "", "xyz"),
        ("", "", "abc"),
    ] {
        let err = find(issuer, serial, ski).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{issuer} {serial} {ski}");
    }
    svc.stop().await;
}

on_both_backends!(
    status_history_is_recorded_in_order_and_unknown_codes_are_refused_N6,
    the_sender_sees_what_is_not_yet_confirmed_W4,
    the_book_finds_certificates_by_issuer_serial_and_key_identifier_V5,
);

/// Who may record and read the history, by the caller's certificate (mTLS).
mod rights {
    use kyso_proto::registry::v1 as pb;
    use tonic::Code;

    use crate::access::{World, change, on_both};

    /// Recording is a signer's record (the Record right, as RegisterDocument): a verifier's
    /// certificate is refused and nothing is written; the lists and the book need the right
    /// ListRegister needs, which the verifier has.
    async fn recording_a_status_needs_the_record_right_W4(w: World) {
        let r = w.start(1_000).await;
        w.grant(&r, "signer", "signer", "").await;
        w.grant(&r, "verifier", "verifier", "").await;
        let mut admin = w.c(&r, "admin").await;
        let org = admin
            .create_organisation(pb::CreateOrganisationRequest {
                change: change("province set-up"),
                name: "UBND huyện Diên Khánh".into(),
                mail_domain: crate::setup::DOMAIN.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .id;
        admin
            .create_document_type(pb::CreateDocumentTypeRequest {
                change: change("document types"),
                code: "QD".into(),
                name: "Quyết định".into(),
                classification: kyso_proto::signer::v1::Classification::None as i32,
                scanned_issue_allowed: false,
            })
            .await
            .unwrap();
        let mut signer = w.c(&r, "signer").await;
        let entry = signer
            .register_document(pb::RegisterDocumentRequest {
                change: change("văn thư vào sổ"),
                organisation_id: org.clone(),
                direction: pb::Direction::Outgoing as i32,
                document_type: "QD".into(),
                number_and_symbol: "5/QĐ-UBND".into(),
                sha256: "ab".repeat(32),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entry
            .unwrap();
        let req = pb::RecordDocumentStatusRequest {
            organisation_id: org.clone(),
            register_entry_id: entry.id.clone(),
            counterparty_code: "000.00.01.H34".into(),
            direction: pb::StatusDirection::Sent as i32,
            change: change("trục liên thông"),
            ..Default::default()
        };
        let mut verifier = w.c(&r, "verifier").await;
        let err = verifier
            .record_document_status(req.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("RecordDocumentStatus"), "{err:?}");
        let list = pb::ListDocumentStatusRequest {
            organisation_id: org.clone(),
            register_entry_id: entry.id.clone(),
        };
        assert!(
            verifier
                .list_document_status(list.clone())
                .await
                .unwrap()
                .into_inner()
                .statuses
                .is_empty()
        );
        // The signer records; the event names its certificate and role.
        let recorded = signer
            .record_document_status(req)
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert!(recorded.actor.contains("CN=kyso signer"), "{recorded:?}");
        let events = crate::setup::events(admin.clone()).await;
        let last = events.last().unwrap();
        assert_eq!(last.kind, "document.status");
        assert_eq!(last.actor_role, "signer");
        let unconfirmed = verifier
            .list_unconfirmed(pb::ListUnconfirmedRequest {
                organisation_id: org.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .documents;
        assert_eq!(unconfirmed.len(), 1);
        assert_eq!(
            verifier
                .list_document_status(list)
                .await
                .unwrap()
                .into_inner()
                .statuses
                .len(),
            1
        );
        verifier
            .find_certificates(pb::FindCertificatesRequest {
                subject_key_identifier: "00".repeat(20),
                ..Default::default()
            })
            .await
            .unwrap();
        // The auditor reads the log, not the registers.
        w.grant(&r, "auditor", "auditor", "").await;
        let err = w
            .c(&r, "auditor")
            .await
            .list_unconfirmed(pb::ListUnconfirmedRequest {
                organisation_id: org,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        r.stop().await;
    }

    on_both!(recording_a_status_needs_the_record_right_W4);
}

/// Certificates registered before migration 0011 have no subject key identifier: the
/// registry fills it from their DER when it starts, once, and finds them by it.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_registered_before_get_their_key_identifier_at_start_V5() {
    use kyso_tests::registry::Registry;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("registry.db").display());
    let mut registry = Registry::start_with(&url).await;
    crate::names::register_org_certificate(&mut registry.client().await).await;
    registry.stop().await;

    // What an older registry stored: no key identifier.
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE certificates SET subject_key_identifier = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let mut registry = Registry::start_with(&url).await;
    let found = registry
        .client()
        .await
        .find_certificates(pb::FindCertificatesRequest {
            subject_key_identifier: openssl_ski("org-rsa"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .der;
    assert_eq!(found, vec![TestPki::get().leaf_der("org-rsa")]);
    registry.stop().await;
}
