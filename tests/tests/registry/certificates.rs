//! The registry's certificates end to end: status changes (suspension, reinstatement,
//! revocation), issuing and renewing (I1-I3, N4), lookups by fingerprint, issuer and serial,
//! and the answers to bad input. Each scenario runs on SQLite and PostgreSQL
//! (`setup::on_both_backends`).

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1::{Profile, SigningMode};
use kyso_tests::TestPki;
use kyso_tests::self_signed_ec;
use tonic::{Code, Status};

use crate::setup::{
    DAY, Service, YEAR, authorize, authorize_req, bad_fields, change, create_person, now,
    on_both_backends, register, rules, seed, set_status, status_rules, ts,
};

// ---------------------------------------------------------------------------------------------
// Status: suspension, reinstatement, revocation
// ---------------------------------------------------------------------------------------------

async fn suspended_certificate_is_refused_until_reinstated_N7(svc: Service) {
    let p = seed(&svc).await;
    let req = authorize_req(
        &p.chairman_cert,
        &p.chairman,
        &p.ubnd,
        "QD",
        Profile::Approval,
        SigningMode::Own,
    );
    let t0 = now();
    let c = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Suspended,
        pb::RevocationReason::Unspecified,
        Some(t0 - 100),
    )
    .await
    .unwrap();
    assert_eq!(c.status, pb::CertificateStatus::Suspended as i32);
    assert_eq!(rules(&authorize(&svc, req.clone()).await), vec!["N7"]);
    // Suspending twice is refused.
    let err = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Suspended,
        pb::RevocationReason::Unspecified,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["N7"]);
    set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Active,
        pb::RevocationReason::Unspecified,
        Some(t0),
    )
    .await
    .unwrap();
    assert!(authorize(&svc, req.clone()).await.allowed);
    // The history still answers for the time of the hold, and before it.
    let mut during = req.clone();
    during.at = ts(t0 - 50);
    assert_eq!(rules(&authorize(&svc, during).await), vec!["N7"]);
    let mut before = req.clone();
    before.at = ts(t0 - 1000);
    assert!(authorize(&svc, before).await.allowed);
    svc.stop().await;
}

async fn revocation_needs_a_reason_and_is_permanent_V4_V3(svc: Service) {
    let p = seed(&svc).await;
    let err = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::Unspecified,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["V4"]);
    let c = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::LeftService,
        None,
    )
    .await
    .unwrap();
    assert_eq!(c.status, pb::CertificateStatus::Revoked as i32);
    assert_eq!(
        c.history.last().unwrap().reason,
        pb::RevocationReason::LeftService as i32
    );
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
    assert_eq!(rules(&r), vec!["V3"]);
    let err = set_status(
        &svc,
        &p.chairman_cert,
        pb::CertificateStatus::Active,
        pb::RevocationReason::Unspecified,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["V3"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Issuing and renewing
// ---------------------------------------------------------------------------------------------

async fn renew(
    svc: &Service,
    der: Vec<u8>,
    person: &str,
    old_fp: &str,
) -> Result<pb::Certificate, Status> {
    svc.c()
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("renewal"),
            der,
            kind: pb::CertificateKind::Personal as i32,
            person_id: person.into(),
            organisation_id: String::new(),
            renewal_of: old_fp.into(),
        })
        .await
        .map(|r| r.into_inner().certificate.unwrap())
}

async fn rejects_renewal_with_less_than_60_days_left_I3(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let old = register(
        &mut svc.c(),
        self_signed_ec(dir, "old30", 30),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let before = svc.events().await.len();
    let err = renew(
        &svc,
        self_signed_ec(dir, "new", 400),
        &p.outsider,
        &old.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I3"]);
    assert_eq!(svc.events().await.len(), before);
    svc.stop().await;
}

async fn renewal_only_once_I3(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let a = register(
        &mut svc.c(),
        self_signed_ec(dir, "a", 365),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let b = renew(
        &svc,
        self_signed_ec(dir, "b", 700),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap();
    assert_eq!(b.renewal_count, 1);
    assert_eq!(b.renewal_of, a.fingerprint);
    let err = renew(
        &svc,
        self_signed_ec(dir, "c", 800),
        &p.outsider,
        &b.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I3"]);
    let err = renew(
        &svc,
        self_signed_ec(dir, "d", 800),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I3"]);
    svc.stop().await;
}

async fn renewal_of_a_revoked_certificate_is_refused_V3(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let a = register(
        &mut svc.c(),
        self_signed_ec(dir, "a", 365),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    set_status(
        &svc,
        &a.fingerprint,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::KeyCompromise,
        None,
    )
    .await
    .unwrap();
    let err = renew(
        &svc,
        self_signed_ec(dir, "b", 700),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["V3"]);
    svc.stop().await;
}

async fn new_certificate_at_most_five_years_and_renewal_adds_at_most_three_N4(svc: Service) {
    let p = seed(&svc).await;
    let dir = svc.dir.path();
    let err = register(
        &mut svc.c(),
        self_signed_ec(dir, "long", 5 * 365 + 10),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["N4"]);
    let a = register(
        &mut svc.c(),
        self_signed_ec(dir, "a", 365),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let err = renew(
        &svc,
        self_signed_ec(dir, "b", 365 + 3 * 365 + 10),
        &p.outsider,
        &a.fingerprint,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["N4"]);
    svc.stop().await;
}

async fn new_certificate_needs_a_mail_account_in_the_domain_I1(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let gmail = create_person(
        &mut c,
        "Hoàng Văn Em",
        "em.hv@gmail.com",
        &p.ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    let err = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "em", 365),
        pb::CertificateKind::Personal,
        &gmail,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I1"]);
    svc.stop().await;
}

async fn no_new_certificate_with_less_than_six_months_of_service_I2(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let retiring = create_person(
        &mut c,
        "Võ Văn Giàu",
        "giau.vv@khanhhoa.gov.vn",
        &p.ubnd,
        Some(now() + 120 * DAY),
    )
    .await;
    let err = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "giau", 365),
        pb::CertificateKind::Personal,
        &retiring,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I2"]);
    svc.stop().await;
}

async fn no_new_certificate_for_an_organisation_pending_a_change_I2(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    c.set_organisation_status(pb::SetOrganisationStatusRequest {
        change: change("merger decided"),
        organisation_id: p.sotttt.clone(),
        status: pb::OrganisationStatus::PendingMerger as i32,
        decision_ref: "12/NQ-HĐND".into(),
    })
    .await
    .unwrap();
    let err = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "org", 365),
        pb::CertificateKind::Organisation,
        "",
        &p.sotttt,
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I2"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Lookups (the verifier's questions)
// ---------------------------------------------------------------------------------------------

async fn certificate_lookups_by_fingerprint_issuer_serial_and_expiry(svc: Service) {
    let p = seed(&svc).await;
    let pki = TestPki::get();
    let mut c = svc.c();
    let by_fp = c
        .get_certificate(pb::GetCertificateRequest {
            by: Some(pb::get_certificate_request::By::Fingerprint(
                p.chairman_cert.to_uppercase(),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(by_fp.serial, pki.serial("personal-rsa"));
    assert_eq!(by_fp.person_id, p.chairman);
    let by_is = c
        .get_certificate(pb::GetCertificateRequest {
            by: Some(pb::get_certificate_request::By::IssuerSerial(
                pb::IssuerSerial {
                    issuer: by_fp.issuer.clone(),
                    serial: pki.serial("personal-rsa").to_lowercase(),
                },
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    assert_eq!(by_is.fingerprint, p.chairman_cert);

    let short = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "short", 30),
        pb::CertificateKind::Personal,
        &p.outsider,
        "",
    )
    .await
    .unwrap();
    let expiring = c
        .list_expiring_certificates(pb::ListExpiringCertificatesRequest {
            within_days: 60,
            at: None,
        })
        .await
        .unwrap()
        .into_inner()
        .certificates;
    let fps: Vec<&str> = expiring.iter().map(|c| c.fingerprint.as_str()).collect();
    assert_eq!(fps, vec![short.fingerprint.as_str()]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

async fn unknown_ids_are_not_found(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let err = c
        .create_appointment(pb::CreateAppointmentRequest {
            change: change("x"),
            person_id: "per_nobody".into(),
            title_id: p.chairman_title.clone(),
            organisation_id: p.ubnd.clone(),
            valid_from: ts(now()),
            valid_to: None,
            decision_ref: "1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .authorize(authorize_req(
            &"00".repeat(32),
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .authorize(authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "NOPE",
            Profile::Approval,
            SigningMode::Own,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("x"),
            name: "UBND huyện Khánh Sơn".into(),
            parent_id: "org_missing".into(),
            managing_agency_id: String::new(),
            mail_domain: "khanhson.khanhhoa.gov.vn".into(),
            code: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    svc.stop().await;
}

async fn duplicate_certificate_already_exists(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    let err = register(
        &mut svc.c(),
        TestPki::get().leaf_der("personal-rsa"),
        pb::CertificateKind::Personal,
        &p.chairman,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(svc.events().await.len(), before);
    svc.stop().await;
}

async fn non_der_certificate_is_invalid_argument_with_field_violation(svc: Service) {
    let p = seed(&svc).await;
    let pem = std::fs::read(TestPki::get().leaf_cert("personal-pss")).unwrap();
    for der in [b"not a certificate".to_vec(), pem, Vec::new()] {
        let err = register(
            &mut svc.c(),
            der,
            pb::CertificateKind::Personal,
            &p.chairman,
            "",
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&err), vec!["der"]);
    }
    // Impossible dates name their field too.
    let err = svc
        .c()
        .create_appointment(pb::CreateAppointmentRequest {
            change: change("x"),
            person_id: p.chairman.clone(),
            title_id: p.chairman_title.clone(),
            organisation_id: p.ubnd.clone(),
            valid_from: ts(now()),
            valid_to: ts(now() - DAY),
            decision_ref: "1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["valid_to"]);
    // Every change names its actor.
    let err = svc
        .c()
        .create_title(pb::CreateTitleRequest {
            change: None,
            name: "Giám đốc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    svc.stop().await;
}

on_both_backends!(
    suspended_certificate_is_refused_until_reinstated_N7,
    revocation_needs_a_reason_and_is_permanent_V4_V3,
    rejects_renewal_with_less_than_60_days_left_I3,
    renewal_only_once_I3,
    renewal_of_a_revoked_certificate_is_refused_V3,
    new_certificate_at_most_five_years_and_renewal_adds_at_most_three_N4,
    new_certificate_needs_a_mail_account_in_the_domain_I1,
    no_new_certificate_with_less_than_six_months_of_service_I2,
    no_new_certificate_for_an_organisation_pending_a_change_I2,
    certificate_lookups_by_fingerprint_issuer_serial_and_expiry,
    unknown_ids_are_not_found,
    duplicate_certificate_already_exists,
    non_der_certificate_is_invalid_argument_with_field_violation,
);
