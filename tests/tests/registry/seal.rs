//! `CheckSeal` (issue 13): the facts behind the seal's side doors, on SQLite and PostgreSQL
//! (`setup::on_both_backends`).
//! - SCANNED_ISSUE: the competent person named for the paper original had authority in the
//!   sealing organisation (A3, A6); where that person holds a valid personal certificate at
//!   the time, the scanned form is refused unless the document type allows it (D2, D3).
//! - COPY: only of a document in the sealing organisation's own outgoing or incoming
//!   register, by the SHA-256 of its stored original (A6, P3).
//! - APPENDIX: only with the number and symbol of a document of its outgoing register (D5).
//! - EXCHANGE: an edXML envelope only over a document of its OUTGOING register, by the
//!   SHA-256 of its stored original (W1, N6).

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1::{Classification, Profile};
use tonic::Code;

use crate::setup::{
    DAY, Service, YEAR, appoint, change, create_person, now, on_both_backends, seed, set_status, ts,
};

fn ask(org: &str, profile: Profile, doc: &str) -> pb::CheckSealRequest {
    pb::CheckSealRequest {
        organisation_id: org.into(),
        profile: profile as i32,
        document_type: doc.into(),
        ..Default::default()
    }
}

async fn check(svc: &Service, req: pb::CheckSealRequest) -> pb::CheckSealResponse {
    svc.c().check_seal(req).await.unwrap().into_inner()
}

fn rules(r: &pb::CheckSealResponse) -> Vec<&str> {
    r.refusals.iter().map(|x| x.rule.as_str()).collect()
}

async fn scanned(svc: &Service, org: &str, doc: &str, person: &str) -> pb::CheckSealResponse {
    check(
        svc,
        pb::CheckSealRequest {
            competent_person_id: person.into(),
            ..ask(org, Profile::ScannedIssue, doc)
        },
    )
    .await
}

async fn scanned_issue_needs_the_competent_person_and_the_form_D2_D3_A3_A6(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    // A type whose scanned paper form the province allows even for leaders with a certificate.
    c.create_document_type(pb::CreateDocumentTypeRequest {
        change: change("document types"),
        code: "TB".into(),
        name: "Thông báo".into(),
        classification: Classification::None as i32,
        scanned_issue_allowed: true,
    })
    .await
    .unwrap();
    c.grant_authority(pb::GrantAuthorityRequest {
        change: change("working rules"),
        title_authorities: vec![pb::TitleAuthority {
            organisation_id: p.ubnd.clone(),
            title_id: p.chairman_title.clone(),
            document_type: "TB".into(),
        }],
        organisation_profiles: Vec::new(),
    })
    .await
    .unwrap();

    // D2: the Chairman holds a valid personal certificate; QD does not allow the scanned form.
    let r = scanned(&svc, &p.ubnd, "QD", &p.chairman).await;
    assert!(!r.allowed);
    assert_eq!(rules(&r), ["D2"], "{r:?}");
    assert!(r.refusals[0].reason.contains(&p.chairman_cert), "{r:?}");
    // ... but TB does.
    let r = scanned(&svc, &p.ubnd, "TB", &p.chairman).await;
    assert!(r.allowed && r.refusals.is_empty(), "{r:?}");

    // A3: the clerk has no title with authority for QD; another body's staff have none here.
    let r = scanned(&svc, &p.ubnd, "QD", &p.clerk).await;
    assert_eq!(rules(&r), ["A3"], "{r:?}");
    let r = scanned(&svc, &p.ubnd, "QD", &p.outsider).await;
    assert_eq!(rules(&r), ["A3"], "{r:?}");
    // A6: nobody of that name.
    let r = scanned(&svc, &p.ubnd, "QD", "per_nobody").await;
    assert_eq!(rules(&r), ["A6"], "{r:?}");

    // A competent person without a certificate signs on paper: the scanned form (D3).
    let acting = create_person(
        &mut c,
        "Võ Thị Hoa",
        "hoa.vt@khanhhoa.gov.vn",
        &p.ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    appoint(&mut c, &acting, &p.chairman_title, &p.ubnd).await;
    let r = scanned(&svc, &p.ubnd, "QD", &acting).await;
    assert!(r.allowed && r.refusals.is_empty(), "{r:?}");

    // The certificate counts when valid at the time asked: revoked an hour ago, it no longer
    // requires the electronic form for now, and still did two hours ago.
    set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::KeyCompromise,
        Some(now() - 3600),
    )
    .await
    .unwrap();
    let r = scanned(&svc, &p.ubnd, "QD", &p.chairman).await;
    assert!(r.allowed, "{r:?}");
    let r = check(
        &svc,
        pb::CheckSealRequest {
            competent_person_id: p.chairman.clone(),
            at: ts(now() - 2 * 3600),
            ..ask(&p.ubnd, Profile::ScannedIssue, "QD")
        },
    )
    .await;
    assert_eq!(rules(&r), ["D2"], "{r:?}");

    // Bad questions: no person named; an unknown type; a profile CheckSeal does not answer.
    let e = svc
        .c()
        .check_seal(ask(&p.ubnd, Profile::ScannedIssue, "QD"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = svc
        .c()
        .check_seal(pb::CheckSealRequest {
            competent_person_id: p.chairman.clone(),
            ..ask(&p.ubnd, Profile::ScannedIssue, "XX")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = svc
        .c()
        .check_seal(ask(&p.ubnd, Profile::Issue, "QD"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    svc.stop().await;
}

async fn enter(
    svc: &Service,
    org: &str,
    direction: pb::Direction,
    number: &str,
    sha: &str,
    refused: bool,
) -> pb::RegisterEntry {
    svc.c()
        .register_document(pb::RegisterDocumentRequest {
            change: change("văn thư vào sổ"),
            organisation_id: org.into(),
            direction: direction as i32,
            document_type: "QD".into(),
            number_and_symbol: number.into(),
            sha256: sha.into(),
            counterparty: "Sở Tài chính".into(),
            refused,
            reason: if refused {
                "chữ ký số không hợp lệ".into()
            } else {
                String::new()
            },
            at: ts(now() - DAY),
            signatures: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap()
}

async fn copies_and_appendices_only_from_the_organisations_own_registers_P3_D5_A6(svc: Service) {
    let p = seed(&svc).await;
    let (out_sha, in_sha, bad_sha, other_sha) = (
        "a1".repeat(32),
        "b2".repeat(32),
        "c3".repeat(32),
        "d4".repeat(32),
    );
    let outgoing = enter(
        &svc,
        &p.ubnd,
        pb::Direction::Outgoing,
        "12/QĐ-UBND",
        &out_sha,
        false,
    )
    .await;
    let incoming = enter(
        &svc,
        &p.ubnd,
        pb::Direction::Incoming,
        "7/QĐ-BTC",
        &in_sha,
        false,
    )
    .await;
    enter(
        &svc,
        &p.ubnd,
        pb::Direction::Incoming,
        "8/QĐ-BTC",
        &bad_sha,
        true,
    )
    .await;
    enter(
        &svc,
        &p.sotttt,
        pb::Direction::Outgoing,
        "5/QĐ-STTTT",
        &other_sha,
        false,
    )
    .await;

    let copy = |sha: &str| pb::CheckSealRequest {
        // Upper case and colons are the same SHA-256.
        sha256: sha.to_ascii_uppercase(),
        ..ask(&p.ubnd, Profile::Copy, "QD")
    };
    // COPY of a document of its own outgoing or incoming register (A6, P3).
    let r = check(&svc, copy(&out_sha)).await;
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.entry.as_ref().map(|e| e.id.as_str()), Some(&*outgoing.id));
    let r = check(&svc, copy(&in_sha)).await;
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.entry.as_ref().map(|e| e.id.as_str()), Some(&*incoming.id));
    // Not of a refused incoming document, another body's register, or anything else.
    for sha in [&bad_sha, &other_sha, &"e5".repeat(32)] {
        let r = check(&svc, copy(sha)).await;
        assert!(!r.allowed && r.entry.is_none(), "{r:?}");
        assert_eq!(rules(&r), ["P3"], "{r:?}");
    }

    let appendix = |number: &str| pb::CheckSealRequest {
        number_and_symbol: number.into(),
        ..ask(&p.ubnd, Profile::Appendix, "QD")
    };
    // APPENDIX with the number of a registered outgoing document (D5, P4).
    let r = check(&svc, appendix("12/QĐ-UBND")).await;
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.entry.map(|e| e.id), Some(outgoing.id));
    // Not an incoming document's number, another body's, or one never registered.
    for number in ["7/QĐ-BTC", "5/QĐ-STTTT", "99/QĐ-UBND"] {
        let r = check(&svc, appendix(number)).await;
        assert_eq!(rules(&r), ["D5"], "{number}: {r:?}");
    }

    // Bad questions: no SHA-256, no number.
    for req in [copy("not hex"), appendix("  ")] {
        let e = svc.c().check_seal(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    svc.stop().await;
}

async fn envelopes_only_over_the_organisations_outgoing_register_W1_N6(svc: Service) {
    let p = seed(&svc).await;
    let (out_sha, in_sha, other_sha) = ("a1".repeat(32), "b2".repeat(32), "d4".repeat(32));
    let outgoing = enter(
        &svc,
        &p.ubnd,
        pb::Direction::Outgoing,
        "12/QĐ-UBND",
        &out_sha,
        false,
    )
    .await;
    enter(
        &svc,
        &p.ubnd,
        pb::Direction::Incoming,
        "7/QĐ-BTC",
        &in_sha,
        false,
    )
    .await;
    enter(
        &svc,
        &p.sotttt,
        pb::Direction::Outgoing,
        "5/QĐ-STTTT",
        &other_sha,
        false,
    )
    .await;
    let exchange = |sha: &str| pb::CheckSealRequest {
        sha256: sha.into(),
        ..ask(&p.ubnd, Profile::Exchange, "QD")
    };
    // The organisation's own issued and registered document (W1).
    let r = check(&svc, exchange(&out_sha)).await;
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.entry.map(|e| e.id), Some(outgoing.id));
    // Not a document it received, another body's outgoing one, or one never registered.
    for sha in [&in_sha, &other_sha, &"e5".repeat(32)] {
        let r = check(&svc, exchange(sha)).await;
        assert!(!r.allowed && r.entry.is_none(), "{r:?}");
        assert_eq!(rules(&r), ["W1"], "{r:?}");
    }
    // No SHA-256: a bad question; STATUS has no side door here (the signer's origin check).
    for req in [exchange(""), ask(&p.ubnd, Profile::Status, "QD")] {
        let e = svc.c().check_seal(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    svc.stop().await;
}

on_both_backends!(
    scanned_issue_needs_the_competent_person_and_the_form_D2_D3_A3_A6,
    copies_and_appendices_only_from_the_organisations_own_registers_P3_D5_A6,
    envelopes_only_over_the_organisations_outgoing_register_W1_N6,
);
