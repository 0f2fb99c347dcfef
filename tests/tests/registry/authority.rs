//! The registry's rules of authority end to end: `Authorize` (the signer's question: A1-A7,
//! delegations KT/TL/TUQ), custodians of organisation certificates (A5), `CheckAuthority`
//! (the verifier's question) and what ending an appointment or revoking a delegation takes
//! away. Each scenario runs on SQLite and PostgreSQL (`setup::on_both_backends`).

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1::{Profile, SigningMode};
use tonic::{Code, Status};

use crate::setup::{
    DAY, Service, YEAR, authorize, authorize_req, bad_fields, change, now, on_both_backends, rules,
    seed, status_rules, ts,
};

// ---------------------------------------------------------------------------------------------
// Authorize: the signer's question
// ---------------------------------------------------------------------------------------------

async fn chairman_approves_a_decision_with_his_own_certificate_A2_A3(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(r.allowed, "{:?}", r.refusals);
    assert_eq!(r.title, "Chủ tịch");
    assert_eq!(r.holder_name, "Nguyễn Văn An");
    svc.stop().await;
}

async fn personal_certificate_used_by_someone_else_is_refused_A1(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(!r.allowed);
    assert!(rules(&r).contains(&"A1"), "{:?}", r.refusals);
    svc.stop().await;
}

async fn title_without_authority_for_the_document_type_is_refused_A3(svc: Service) {
    let p = seed(&svc).await;
    // The deputy may sign official letters (CV) but not decisions (QD).
    let ok = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "CV",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(ok.allowed, "{:?}", ok.refusals);
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A3"]);
    // No title at all in another organisation.
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.sotttt,
            "CV",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A3"]);
    svc.stop().await;
}

async fn organisation_certificate_is_used_by_its_custodian_only_A5(svc: Service) {
    let p = seed(&svc).await;
    let ok = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(ok.allowed, "{:?}", ok.refusals);
    assert_eq!(ok.holder_name, "Ủy ban nhân dân tỉnh Khánh Hòa");
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A5"]);
    svc.stop().await;
}

async fn organisation_certificate_only_for_allowed_profiles_A4(svc: Service) {
    let p = seed(&svc).await;
    // COPY is allowed for decisions, not for letters; APPROVAL is never the seal's.
    let ok = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Copy,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(ok.allowed, "{:?}", ok.refusals);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "CV",
            Profile::Copy,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A4"]);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.sotttt,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A4"), "{:?}", r.refusals);
    // A personal certificate cannot stand in for the seal.
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A4"), "{:?}", r.refusals);
    svc.stop().await;
}

async fn classified_documents_are_never_signed_A7(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "MAT",
            Profile::Approval,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(!r.allowed);
    assert!(rules(&r).contains(&"A7"), "{:?}", r.refusals);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "MAT",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A7"), "{:?}", r.refusals);
    // No authority over a classified type can even be granted.
    let err = svc
        .c()
        .grant_authority(pb::GrantAuthorityRequest {
            change: change("try"),
            title_authorities: vec![pb::TitleAuthority {
                organisation_id: p.ubnd.clone(),
                title_id: p.chairman_title.clone(),
                document_type: "MAT".into(),
            }],
            organisation_profiles: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A7"]);
    svc.stop().await;
}

async fn a_refusal_lists_every_failed_rule_A1_A4_A7(svc: Service) {
    let p = seed(&svc).await;
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.clerk,
            &p.ubnd,
            "MAT",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    let got = rules(&r);
    for want in ["A1", "A4", "A7"] {
        assert!(got.contains(&want), "{want} missing from {:?}", r.refusals);
    }
    assert!(r.refusals.iter().all(|x| !x.reason.is_empty()));
    svc.stop().await;
}

async fn deputy_signs_on_behalf_of_the_chairman_only_under_a_delegation_KT_A2(svc: Service) {
    let p = seed(&svc).await;
    let req = authorize_req(
        &p.deputy_cert,
        &p.deputy,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Kt,
    );
    let r = authorize(&svc, req.clone()).await;
    assert_eq!(rules(&r), vec!["A2"]);
    svc.c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("KT. Chủ tịch"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.deputy.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["QD".into()],
            decision_ref: "77/QĐ-UBND".into(),
            valid_from: ts(now() - DAY),
            valid_to: ts(now() + 30 * DAY),
        })
        .await
        .unwrap();
    let r = authorize(&svc, req.clone()).await;
    assert!(r.allowed, "{:?}", r.refusals);
    assert_eq!(r.on_behalf_of, "Nguyễn Văn An");
    // The delegation is KT only, for QD only, and in force only in its window.
    let mut tl = req.clone();
    tl.mode = SigningMode::Tl as i32;
    assert_eq!(rules(&authorize(&svc, tl).await), vec!["A2"]);
    let mut later = req.clone();
    later.at = ts(now() + 60 * DAY);
    assert_eq!(rules(&authorize(&svc, later).await), vec!["A2"]);
    // The delegate signs with their own certificate, never with the Chairman's (A1, A2).
    let r = authorize(
        &svc,
        authorize_req(
            &p.chairman_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Kt,
        ),
    )
    .await;
    assert!(rules(&r).contains(&"A1"), "{:?}", r.refusals);
    svc.stop().await;
}

async fn delegation_to_oneself_is_refused_A2(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    let err = svc
        .c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("self"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.chairman.clone(),
            mode: SigningMode::Tuq as i32,
            document_types: vec!["QD".into()],
            decision_ref: "1/QĐ".into(),
            valid_from: ts(now()),
            valid_to: ts(now() + DAY),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A2"]);
    assert_eq!(bad_fields(&err), vec!["to_person_id"]);
    assert_eq!(svc.events().await.len(), before);
    svc.stop().await;
}

async fn delegation_cycle_is_refused_A2(svc: Service) {
    let p = seed(&svc).await;
    let d = |from: &str, to: &str| pb::CreateDelegationRequest {
        change: change("delegation"),
        organisation_id: p.ubnd.clone(),
        from_person_id: from.into(),
        to_person_id: to.into(),
        mode: SigningMode::Tl as i32,
        document_types: vec!["CV".into()],
        decision_ref: "9/QĐ".into(),
        valid_from: ts(now()),
        valid_to: ts(now() + 30 * DAY),
    };
    svc.c()
        .create_delegation(d(&p.chairman, &p.deputy))
        .await
        .unwrap();
    svc.c()
        .create_delegation(d(&p.deputy, &p.clerk))
        .await
        .unwrap();
    let err = svc
        .c()
        .create_delegation(d(&p.clerk, &p.chairman))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["A2"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Custodians (A5)
// ---------------------------------------------------------------------------------------------

async fn custodian_must_belong_to_the_organisation_and_changes_need_a_handover_A5(svc: Service) {
    let p = seed(&svc).await;
    let assign = |person: &str, handover: &str| pb::AssignCustodianRequest {
        change: change("custodian"),
        fingerprint: p.org_cert.clone(),
        person_id: person.into(),
        decision_ref: "46/QĐ-UBND".into(),
        decision_date: ts(now() - 10),
        handover_record: handover.into(),
        effective_at: None,
    };
    let err = svc
        .c()
        .assign_custodian(assign(&p.outsider, "BB-01"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["A5"]);
    let err = svc
        .c()
        .assign_custodian(assign(&p.deputy, ""))
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), vec!["A5"]);
    assert_eq!(bad_fields(&err), vec!["handover_record"]);
    let mut no_decision = assign(&p.deputy, "BB-01");
    no_decision.decision_ref.clear();
    let err = svc.c().assign_custodian(no_decision).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A5"]);
    // With a decision and a handover record the seal passes to the deputy.
    svc.c()
        .assign_custodian(assign(&p.deputy, "BB-01"))
        .await
        .unwrap();
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.clerk,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert_eq!(rules(&r), vec!["A5"]);
    let r = authorize(
        &svc,
        authorize_req(
            &p.org_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Issue,
            SigningMode::Own,
        ),
    )
    .await;
    assert!(r.allowed, "{:?}", r.refusals);
    // A personal certificate has no custodian (A1).
    let mut personal = assign(&p.clerk, "BB-02");
    personal.fingerprint = p.chairman_cert.clone();
    let err = svc.c().assign_custodian(personal).await.unwrap_err();
    assert_eq!(status_rules(&err), vec!["A1"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// CheckAuthority (the verifier's question)
// ---------------------------------------------------------------------------------------------

async fn check_authority_answers_for_the_signing_time_A3(svc: Service) {
    let p = seed(&svc).await;
    let r = svc
        .c()
        .check_authority(pb::CheckAuthorityRequest {
            fingerprint: p.chairman_cert.clone(),
            document_type: "QD".into(),
            at: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.authorised, "{:?}", r.refusals);
    assert_eq!(r.title, "Chủ tịch");
    assert_eq!(r.kind, pb::CertificateKind::Personal as i32);
    assert_eq!(r.status, pb::CertificateStatus::Active as i32);
    // Two years ago the appointment had not started (and the certificate was not yet valid).
    let r = svc
        .c()
        .check_authority(pb::CheckAuthorityRequest {
            fingerprint: p.chairman_cert.clone(),
            document_type: "QD".into(),
            at: ts(now() - 2 * YEAR),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.authorised);
    let got: Vec<&str> = r.refusals.iter().map(|x| x.rule.as_str()).collect();
    assert!(got.contains(&"A3") && got.contains(&"V1"), "{got:?}");
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Ending appointments and revoking delegations
// ---------------------------------------------------------------------------------------------

/// The ID of the appointment of `person` (from the event log).
async fn appointment_of(svc: &Service, person: &str) -> String {
    svc.events()
        .await
        .into_iter()
        .find(|e| {
            e.kind == "appointment.created"
                && serde_json::from_str::<serde_json::Value>(&e.change_json).unwrap()["person_id"]
                    == person
        })
        .unwrap()
        .entity_id
}

async fn end_appointment(
    svc: &Service,
    id: &str,
    valid_to: Option<i64>,
    decision: &str,
) -> Result<(), Status> {
    svc.c()
        .end_appointment(pb::EndAppointmentRequest {
            change: change("relieved of the post"),
            appointment_id: id.into(),
            valid_to: valid_to.and_then(ts),
            decision_ref: decision.into(),
        })
        .await
        .map(|_| ())
}

async fn check(svc: &Service, fp: &str, doc: &str, at: i64) -> pb::CheckAuthorityResponse {
    svc.c()
        .check_authority(pb::CheckAuthorityRequest {
            fingerprint: fp.into(),
            document_type: doc.into(),
            at: ts(at),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn ended_appointment_no_longer_gives_authority_A3(svc: Service) {
    let p = seed(&svc).await;
    let apt = appointment_of(&svc, &p.chairman).await;
    let req = authorize_req(
        &p.chairman_cert,
        &p.chairman,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Own,
    );
    assert!(authorize(&svc, req.clone()).await.allowed);
    let before = svc.events().await.len();
    // An end at or before the start, no decision, an unknown appointment: refused, nothing written.
    let err = end_appointment(&svc, &apt, Some(now() - 2 * YEAR), "5/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    assert!(err.message().contains("start"), "{}", err.message());
    let err = end_appointment(&svc, &apt, None, "5/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    let err = end_appointment(&svc, &apt, Some(now() - 10), " ")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["decision_ref"]);
    let err = end_appointment(&svc, "apt_nope", Some(now() - 10), "5/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(svc.events().await.len(), before);
    assert!(authorize(&svc, req.clone()).await.allowed);

    // Ended: the title no longer gives authority (A3), neither to the signer nor to the
    // verifier; before the end it still did.
    let end = now() - 10;
    end_appointment(&svc, &apt, Some(end), "5/QĐ-TTg")
        .await
        .unwrap();
    let r = authorize(&svc, req.clone()).await;
    assert_eq!(rules(&r), vec!["A3"], "{:?}", r.refusals);
    let mut earlier = req.clone();
    earlier.at = ts(end - DAY);
    assert!(authorize(&svc, earlier).await.allowed);
    assert!(
        check(&svc, &p.chairman_cert, "QD", end - DAY)
            .await
            .authorised
    );
    let c = check(&svc, &p.chairman_cert, "QD", end + 1).await;
    assert_eq!(
        c.refusals
            .iter()
            .map(|r| r.rule.as_str())
            .collect::<Vec<_>>(),
        vec!["A3"]
    );
    // An end is brought forward, never pushed back.
    let err = end_appointment(&svc, &apt, Some(end + DAY), "6/QĐ-TTg")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    end_appointment(&svc, &apt, Some(end - 3600), "6/QĐ-TTg")
        .await
        .unwrap();
    let events = svc.events().await;
    assert_eq!(events.len(), before + 2);
    let last = events.last().unwrap();
    assert_eq!(last.kind, "appointment.ended");
    assert_eq!(last.entity_id, apt);
    assert_eq!(last.reason, "relieved of the post");
    let v: serde_json::Value = serde_json::from_str(&last.change_json).unwrap();
    assert_eq!(v["previous_valid_to"], end);
    assert_eq!(v["decision_ref"], "6/QĐ-TTg");
    svc.stop().await;
}

async fn revoke_delegation(
    svc: &Service,
    id: &str,
    decision: &str,
    at: Option<i64>,
) -> Result<(), Status> {
    svc.c()
        .revoke_delegation(pb::RevokeDelegationRequest {
            change: change("delegation withdrawn"),
            delegation_id: id.into(),
            decision_ref: decision.into(),
            effective_at: at.and_then(ts),
        })
        .await
        .map(|_| ())
}

async fn revoked_delegation_no_longer_allows_signing_on_behalf_A2(svc: Service) {
    let p = seed(&svc).await;
    let start = now() - DAY;
    let dlg = svc
        .c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("KT. Chủ tịch"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.deputy.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["QD".into()],
            decision_ref: "77/QĐ-UBND".into(),
            valid_from: ts(start),
            valid_to: ts(now() + 30 * DAY),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let req = authorize_req(
        &p.deputy_cert,
        &p.deputy,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Kt,
    );
    assert!(authorize(&svc, req.clone()).await.allowed);
    let before = svc.events().await.len();
    // No decision (A2), a time outside its period, an unknown delegation: nothing written.
    let err = revoke_delegation(&svc, &dlg, "", None).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["A2"]);
    assert_eq!(bad_fields(&err), vec!["decision_ref"]);
    let err = revoke_delegation(&svc, &dlg, "80/QĐ-UBND", Some(start - 1))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["effective_at"]);
    let err = revoke_delegation(&svc, "dlg_nope", "80/QĐ-UBND", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(svc.events().await.len(), before);
    assert!(authorize(&svc, req.clone()).await.allowed);

    // Revoked from now: no more KT. under it; before the revocation it still held.
    let at = now() - 5;
    revoke_delegation(&svc, &dlg, "80/QĐ-UBND", Some(at))
        .await
        .unwrap();
    let r = authorize(&svc, req.clone()).await;
    assert_eq!(rules(&r), vec!["A2"], "{:?}", r.refusals);
    let mut earlier = req.clone();
    earlier.at = ts(at - 3600);
    let r = authorize(&svc, earlier).await;
    assert!(r.allowed, "{:?}", r.refusals);
    assert_eq!(r.on_behalf_of, "Nguyễn Văn An");
    // The verifier agrees: the deputy had no authority for QD after the revocation.
    assert!(!check(&svc, &p.deputy_cert, "QD", at + 1).await.authorised);
    assert!(check(&svc, &p.deputy_cert, "QD", at - 1).await.authorised);
    // Revoked once: a second revocation later than the end is refused (A2).
    let err = revoke_delegation(&svc, &dlg, "81/QĐ-UBND", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["A2"]);
    let events = svc.events().await;
    assert_eq!(events.len(), before + 1);
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.entity_id.as_str()),
        ("delegation.revoked", dlg.as_str())
    );
    let v: serde_json::Value = serde_json::from_str(&last.change_json).unwrap();
    assert_eq!(v["effective_at"], at);
    assert_eq!(v["decision_ref"], "80/QĐ-UBND");
    svc.stop().await;
}

on_both_backends!(
    chairman_approves_a_decision_with_his_own_certificate_A2_A3,
    personal_certificate_used_by_someone_else_is_refused_A1,
    title_without_authority_for_the_document_type_is_refused_A3,
    organisation_certificate_is_used_by_its_custodian_only_A5,
    organisation_certificate_only_for_allowed_profiles_A4,
    classified_documents_are_never_signed_A7,
    a_refusal_lists_every_failed_rule_A1_A4_A7,
    deputy_signs_on_behalf_of_the_chairman_only_under_a_delegation_KT_A2,
    delegation_to_oneself_is_refused_A2,
    delegation_cycle_is_refused_A2,
    custodian_must_belong_to_the_organisation_and_changes_need_a_handover_A5,
    check_authority_answers_for_the_signing_time_A3,
    ended_appointment_no_longer_gives_authority_A3,
    revoked_delegation_no_longer_allows_signing_on_behalf_A2,
);
