//! Organisation codes (Decision 20/2020) kept by the registry, and `CheckJurisdiction`: which
//! unknown signer certificates are of organisations this registry manages (refused, A4) and
//! which are outside it (authority not checked). On SQLite and PostgreSQL.

use kyso_proto::registry::v1 as pb;
use tonic::Code;

use crate::setup::{Service, bad_fields, change, on_both_backends, seed};

async fn set_code(svc: &Service, org: &str, code: &str) -> Result<(), tonic::Status> {
    svc.c()
        .update_organisation(pb::UpdateOrganisationRequest {
            change: change("organisation code"),
            organisation_id: org.into(),
            code: Some(code.into()),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn by_code(svc: &Service, code: &str) -> Vec<(String, String)> {
    svc.c()
        .find_organisations(pb::FindOrganisationsRequest {
            code: code.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organisations
        .into_iter()
        .map(|o| (o.id, o.code))
        .collect()
}

/// Codes are parsed and checked (four levels, no gap, a capital letter), printed in one form,
/// unique, set and cleared through the admin RPCs, recorded as events, found by code.
async fn organisation_codes_are_checked_set_and_found_I6(svc: Service) {
    let p = seed(&svc).await;
    for bad in [
        "H34",
        "000.01.00.H34",
        "000.00.00.h34",
        "000.00.00.H00",
        "1.2.3.H34",
    ] {
        let err = set_code(&svc, &p.ubnd, bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err:?}");
        assert_eq!(bad_fields(&err), ["code"], "{bad}: {err:?}");
    }
    set_code(&svc, &p.ubnd, " 000.00.00.H34 ").await.unwrap();
    assert_eq!(
        by_code(&svc, "000.00.00.H34").await,
        [(p.ubnd.clone(), "000.00.00.H34".to_owned())]
    );
    // By registry ID (what the signer asks for an envelope's From, N6): that one exactly,
    // with its code; an unknown ID finds nothing.
    let by_id = |id: String| {
        let mut c = svc.c();
        async move {
            c.find_organisations(pb::FindOrganisationsRequest {
                id,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .organisations
        }
    };
    let found = by_id(p.ubnd.clone()).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].id.as_str(), found[0].code.as_str(), found[0].exact),
        (p.ubnd.as_str(), "000.00.00.H34", true)
    );
    assert!(by_id("ORG-NONE".into()).await.is_empty());
    // Unique: another organisation cannot take it.
    let err = set_code(&svc, &p.sotttt, "000.00.00.H34")
        .await
        .unwrap_err();
    assert!(err.message().contains("already the code"), "{err:?}");
    // A new organisation with its code; the event carries it.
    let dept = svc
        .c()
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("department"),
            name: "Sở Y tế tỉnh Khánh Hòa".into(),
            parent_id: p.ubnd.clone(),
            managing_agency_id: p.sotttt.clone(),
            mail_domain: "syt.khanhhoa.gov.vn".into(),
            code: "000.00.12.H34".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    assert_eq!(by_code(&svc, "000.00.12.H34").await[0].0, dept);
    let events = svc.events().await;
    let created = events
        .iter()
        .rfind(|e| e.kind == "organisation.created")
        .unwrap();
    assert!(created.change_json.contains("000.00.12.H34"), "{created:?}");
    // "" clears it.
    set_code(&svc, &dept, "").await.unwrap();
    assert!(by_code(&svc, "000.00.12.H34").await.is_empty());
    let events = svc.events().await;
    let updated = events.last().unwrap();
    assert_eq!(updated.kind, "organisation.updated");
    assert!(updated.change_json.contains("000.00.12.H34"), "{updated:?}");
    svc.stop().await;
}

async fn jurisdiction(
    svc: &Service,
    fingerprint: &str,
    subject: &str,
    sender_code: &str,
) -> Result<pb::CheckJurisdictionResponse, tonic::Status> {
    svc.c()
        .check_jurisdiction(pb::CheckJurisdictionRequest {
            fingerprint: fingerprint.into(),
            subject: subject.into(),
            sender_code: sender_code.into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// A4: an unknown certificate is outside this registry only when nothing ties it to an
/// organisation the registry manages: a registered certificate's subject, an organisation's
/// name or code in the subject, a mail address in its domain, or a sender code at or under a
/// managed code all make it managed (then refused by the document flow), fail closed.
async fn unknown_signers_are_outside_only_when_nothing_ties_them_here_A4(svc: Service) {
    let p = seed(&svc).await;
    set_code(&svc, &p.ubnd, "000.00.00.H34").await.unwrap();
    let unknown = "ab".repeat(32);
    let ministry = "CN=Bộ Y tế,O=Bộ Y tế,L=Hà Nội,C=VN";

    // Registered: CheckAuthority decides.
    let r = jurisdiction(&svc, &p.chairman_cert, ministry, "")
        .await
        .unwrap();
    assert!(r.registered && r.managed, "{r:?}");

    // Outside: a ministry's certificate, sent under a ministry's code.
    let r = jurisdiction(&svc, &unknown, ministry, "000.00.00.G15")
        .await
        .unwrap();
    assert!(!r.registered && !r.managed, "{r:?}");
    assert!(r.matches.is_empty());

    // The same subject as a registered certificate (a renewal not registered).
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
    let r = jurisdiction(&svc, &unknown, &chairman.subject, "")
        .await
        .unwrap();
    assert!(r.managed, "{r:?}");
    assert!(r.matches[0].contains("same subject"), "{r:?}");
    assert_eq!(r.organisation_id, p.ubnd);

    // The organisation's name in the subject, without marks and in capitals.
    let r = jurisdiction(
        &svc,
        &unknown,
        "CN=Văn thư,O=UY BAN NHAN DAN TINH KHANH HOA,C=VN",
        "",
    )
    .await
    .unwrap();
    assert!(r.managed, "{r:?}");
    assert!(
        r.matches.iter().any(|m| m.contains("O is the name")),
        "{r:?}"
    );

    // A code under the People's Committee's in the subject.
    let r = jurisdiction(&svc, &unknown, "CN=x,OU=MNS:000.00.05.H34,O=Sở X,C=VN", "")
        .await
        .unwrap();
    assert!(r.managed, "{r:?}");
    assert!(r.matches[0].contains("000.00.00.H34"), "{r:?}");

    // A mail address in the province's domain.
    let r = jurisdiction(
        &svc,
        &unknown,
        "CN=x,emailAddress=a@so.khanhhoa.gov.vn,C=VN",
        "",
    )
    .await
    .unwrap();
    assert!(r.managed, "{r:?}");

    // The sender's code under a managed one: a ministry-looking subject does not help.
    let r = jurisdiction(&svc, &unknown, ministry, "001.02.03.H34")
        .await
        .unwrap();
    assert!(r.managed, "{r:?}");
    let r = jurisdiction(&svc, &unknown, ministry, "000.00.00.H34")
        .await
        .unwrap();
    assert_eq!(r.sender_name, "Ủy ban nhân dân tỉnh Khánh Hòa");

    // Malformed questions.
    let err = jurisdiction(&svc, &unknown, ministry, "H34")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["sender_code"], "{err:?}");
    let err = jurisdiction(&svc, "xyz", ministry, "").await.unwrap_err();
    assert_eq!(bad_fields(&err), ["fingerprint"], "{err:?}");
    let err = jurisdiction(&svc, &unknown, "", "").await.unwrap_err();
    assert_eq!(bad_fields(&err), ["subject"], "{err:?}");
    svc.stop().await;
}

on_both_backends!(
    organisation_codes_are_checked_set_and_found_I6,
    unknown_signers_are_outside_only_when_nothing_ties_them_here_A4,
);
