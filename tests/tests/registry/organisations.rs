//! The registry's organisations and people end to end: finding them by (Unicode) name, and
//! updating them (the managing-agency cycle, I6; the mail address and what it feeds, I1-I2).
//! Each scenario runs on SQLite and PostgreSQL (`setup::on_both_backends`).

use kyso_proto::registry::v1 as pb;
use kyso_tests::self_signed_ec;
use tonic::Code;

use crate::setup::{
    DAY, DOMAIN, Service, YEAR, bad_fields, change, create_person, now, on_both_backends, register,
    seed, status_rules, ts,
};
use crate::unlock::request_unlock;

// ---------------------------------------------------------------------------------------------
// Finding people and organisations by name
// ---------------------------------------------------------------------------------------------

async fn find_people(svc: &Service, name: &str, org: &str) -> Vec<(String, bool)> {
    svc.c()
        .find_people(pb::FindPeopleRequest {
            name: name.into(),
            organisation_id: org.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .people
        .into_iter()
        .map(|p| (p.id, p.exact))
        .collect()
}

async fn find_organisations(svc: &Service, name: &str) -> Vec<(String, bool)> {
    svc.c()
        .find_organisations(pb::FindOrganisationsRequest {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organisations
        .into_iter()
        .map(|o| (o.id, o.exact))
        .collect()
}

async fn people_and_organisations_are_found_by_unicode_name(svc: Service) {
    let p = seed(&svc).await;
    // Case-insensitive beyond ASCII (SQLite's LOWER() would not fold "Ễ").
    assert_eq!(
        find_people(&svc, "NGUYỄN VĂN AN", "").await,
        vec![(p.chairman.clone(), true)]
    );
    // The same name in decomposed form (NFD) is the same name.
    assert_eq!(
        find_people(&svc, "Nguye\u{302}\u{303}n Va\u{306}n An", "").await,
        vec![(p.chairman.clone(), true)]
    );
    // Without marks (certificate subjects often drop them): found, but not exact.
    assert_eq!(
        find_people(&svc, "nguyen  van an", "").await,
        vec![(p.chairman.clone(), false)]
    );
    // A part of a name.
    let mut van = find_people(&svc, "văn", "").await;
    van.sort();
    let mut want = vec![(p.chairman.clone(), false), (p.clerk.clone(), false)];
    want.sort();
    assert_eq!(van, want);
    assert_eq!(
        find_people(&svc, "DUNG", "").await,
        vec![(p.outsider.clone(), false)]
    );
    // Only people of one organisation.
    assert_eq!(
        find_people(&svc, "thị", &p.sotttt).await,
        vec![(p.outsider.clone(), false)]
    );
    assert!(
        find_people(&svc, "Nguyễn Văn An", &p.sotttt)
            .await
            .is_empty()
    );
    // Organisations.
    assert_eq!(
        find_organisations(&svc, "ủy ban nhân dân tỉnh KHÁNH HÒA").await,
        vec![(p.ubnd.clone(), true)]
    );
    let mut kh = find_organisations(&svc, "khanh hoa").await;
    kh.sort();
    let mut want = vec![(p.ubnd.clone(), false), (p.sotttt.clone(), false)];
    want.sort();
    assert_eq!(kh, want);
    // Wildcards are literal.
    assert!(find_organisations(&svc, "%").await.is_empty());
    let err = svc
        .c()
        .find_people(pb::FindPeopleRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["name"]);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Updating organisations and people
// ---------------------------------------------------------------------------------------------

fn org_update(org: &str) -> pb::UpdateOrganisationRequest {
    pb::UpdateOrganisationRequest {
        change: change("reorganisation"),
        organisation_id: org.into(),
        ..Default::default()
    }
}

async fn organisation_update_refuses_a_cycle_of_managing_agencies_I6(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    // A district People's Committee managed by the provincial one's managing agency chain:
    // district -> ubnd -> sotttt.
    let district = c
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("district"),
            name: "Ủy ban nhân dân huyện Khánh Sơn".into(),
            parent_id: p.ubnd.clone(),
            managing_agency_id: p.ubnd.clone(),
            mail_domain: "khanhson.khanhhoa.gov.vn".into(),
            code: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    let before = svc.events().await.len();
    for (req, code, field) in [
        // sotttt managed by the district: sotttt -> district -> ubnd -> sotttt.
        (
            pb::UpdateOrganisationRequest {
                managing_agency_id: Some(district.clone()),
                ..org_update(&p.sotttt)
            },
            Code::FailedPrecondition,
            "managing_agency_id",
        ),
        (
            pb::UpdateOrganisationRequest {
                managing_agency_id: Some(p.ubnd.clone()),
                ..org_update(&p.sotttt)
            },
            Code::FailedPrecondition,
            "managing_agency_id",
        ),
        (
            pb::UpdateOrganisationRequest {
                managing_agency_id: Some(p.ubnd.clone()),
                ..org_update(&p.ubnd)
            },
            Code::InvalidArgument,
            "managing_agency_id",
        ),
        // The parent hierarchy has no cycle either.
        (
            pb::UpdateOrganisationRequest {
                parent_id: Some(district.clone()),
                ..org_update(&p.ubnd)
            },
            Code::FailedPrecondition,
            "parent_id",
        ),
    ] {
        let err = c.update_organisation(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert_eq!(status_rules(&err), vec!["I6"], "{}", err.message());
        assert_eq!(bad_fields(&err), vec![field]);
    }
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            managing_agency_id: Some(district.clone()),
            ..org_update(&p.sotttt)
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("cycle"), "{}", err.message());
    // Bad fields, unknown IDs, nothing to change.
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            mail_domain: Some("not a domain".into()),
            ..org_update(&p.ubnd)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["mail_domain"]);
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            name: Some("  ".into()),
            ..org_update(&p.ubnd)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["name"]);
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            managing_agency_id: Some("org_nope".into()),
            ..org_update(&p.ubnd)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .update_organisation(org_update(&p.ubnd))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .update_organisation(pb::UpdateOrganisationRequest {
            name: Some("X".into()),
            ..org_update("org_nope")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(svc.events().await.len(), before);

    // Allowed: a new name and domain (found by the new name), and the district taken over by
    // the department; then the People's Committee manages itself ("" clears) and files its
    // own unlock requests (I5, I6).
    c.update_organisation(pb::UpdateOrganisationRequest {
        name: Some("UBND tỉnh Khánh Hòa (mới)".into()),
        mail_domain: Some("@UBND.KhanhHoa.gov.vn".into()),
        ..org_update(&p.ubnd)
    })
    .await
    .unwrap();
    assert_eq!(
        find_organisations(&svc, "ubnd tinh khanh hoa (moi)").await,
        vec![(p.ubnd.clone(), false)]
    );
    c.update_organisation(pb::UpdateOrganisationRequest {
        managing_agency_id: Some(p.sotttt.clone()),
        parent_id: Some(String::new()),
        ..org_update(&district)
    })
    .await
    .unwrap();
    let err = request_unlock(&svc, &p.chairman_cert, &p.ubnd)
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I5"]);
    c.update_organisation(pb::UpdateOrganisationRequest {
        managing_agency_id: Some(String::new()),
        ..org_update(&p.ubnd)
    })
    .await
    .unwrap();
    request_unlock(&svc, &p.chairman_cert, &p.ubnd)
        .await
        .unwrap();
    // Now sotttt may be managed by the People's Committee: no cycle any more.
    c.update_organisation(pb::UpdateOrganisationRequest {
        managing_agency_id: Some(p.ubnd.clone()),
        ..org_update(&p.sotttt)
    })
    .await
    .unwrap();
    let events = svc.events().await;
    let updates: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.kind == "organisation.updated")
        .map(|e| serde_json::from_str(&e.change_json).unwrap())
        .collect();
    assert_eq!(updates.len(), 4);
    assert_eq!(updates[0]["mail_domain"], "ubnd.khanhhoa.gov.vn");
    assert_eq!(updates[0]["previous"]["mail_domain"], DOMAIN);
    assert!(updates[0].get("managing_agency_id").is_none());
    assert_eq!(updates[1]["parent_id"], serde_json::Value::Null);
    assert_eq!(updates[1]["previous"]["parent_id"], p.ubnd.as_str());
    assert_eq!(updates[2]["managing_agency_id"], serde_json::Value::Null);
    svc.stop().await;
}

fn person_update(person: &str) -> pb::UpdatePersonRequest {
    pb::UpdatePersonRequest {
        change: change("personnel record"),
        person_id: person.into(),
        ..Default::default()
    }
}

async fn person_update_checks_the_mail_address_and_feeds_I1_I2(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    let newcomer = create_person(
        &mut c,
        "Hoàng Văn Em",
        "em.hv@khanhhoa.gov.vn",
        &p.ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    let before = svc.events().await.len();
    for (req, code, field) in [
        (
            pb::UpdatePersonRequest {
                email: Some("not-a-mail".into()),
                ..person_update(&newcomer)
            },
            Code::InvalidArgument,
            Some("email"),
        ),
        (
            pb::UpdatePersonRequest {
                full_name: Some(" ".into()),
                ..person_update(&newcomer)
            },
            Code::InvalidArgument,
            Some("full_name"),
        ),
        (
            pb::UpdatePersonRequest {
                service_end: ts(now()),
                clear_service_end: true,
                ..person_update(&newcomer)
            },
            Code::InvalidArgument,
            Some("clear_service_end"),
        ),
        (person_update(&newcomer), Code::InvalidArgument, None),
        (
            pb::UpdatePersonRequest {
                email: Some("AN.NV@khanhhoa.gov.vn".into()),
                ..person_update(&newcomer)
            },
            Code::AlreadyExists,
            None,
        ),
        (
            pb::UpdatePersonRequest {
                full_name: Some("X".into()),
                ..person_update("per_nope")
            },
            Code::NotFound,
            None,
        ),
    ] {
        let err = c.update_person(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        if let Some(f) = field {
            assert_eq!(bad_fields(&err), vec![f]);
        }
    }
    assert_eq!(svc.events().await.len(), before);

    // A mail account outside the deployment's domain is a mail address (as on creation),
    // but no new certificate is issued on it (I1).
    c.update_person(pb::UpdatePersonRequest {
        email: Some("em.hv@gmail.com".into()),
        full_name: Some("Hoàng Văn Êm".into()),
        ..person_update(&newcomer)
    })
    .await
    .unwrap();
    let der = self_signed_ec(svc.dir.path(), "em", 365);
    let err = register(
        &mut c,
        der.clone(),
        pb::CertificateKind::Personal,
        &newcomer,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I1"]);
    assert_eq!(
        find_people(&svc, "hoang van em", "").await,
        vec![(newcomer.clone(), false)]
    );
    // Back in the domain, but retiring in four months (I2); then the end of service is no
    // longer known, and the certificate is issued.
    c.update_person(pb::UpdatePersonRequest {
        email: Some("em.hv@khanhhoa.gov.vn".into()),
        service_end: ts(now() + 120 * DAY),
        ..person_update(&newcomer)
    })
    .await
    .unwrap();
    let err = register(
        &mut c,
        der.clone(),
        pb::CertificateKind::Personal,
        &newcomer,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I2"]);
    c.update_person(pb::UpdatePersonRequest {
        clear_service_end: true,
        ..person_update(&newcomer)
    })
    .await
    .unwrap();
    register(&mut c, der, pb::CertificateKind::Personal, &newcomer, "")
        .await
        .unwrap();
    let updates: Vec<serde_json::Value> = svc
        .events()
        .await
        .iter()
        .filter(|e| e.kind == "person.updated")
        .map(|e| serde_json::from_str(&e.change_json).unwrap())
        .collect();
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[0]["email"], "em.hv@gmail.com");
    assert_eq!(updates[0]["previous"]["full_name"], "Hoàng Văn Em");
    assert!(updates[0].get("service_end").is_none());
    assert_eq!(updates[2]["service_end"], serde_json::Value::Null);
    assert!(updates[2].get("email").is_none());
    svc.stop().await;
}

on_both_backends!(
    people_and_organisations_are_found_by_unicode_name,
    organisation_update_refuses_a_cycle_of_managing_agencies_I6,
    person_update_checks_the_mail_address_and_feeds_I1_I2,
);
