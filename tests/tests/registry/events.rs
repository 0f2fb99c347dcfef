//! The registry's event log end to end: one transaction and one event per change, concurrent
//! writers, health and metrics, the log replayed into a fresh registry giving the same state,
//! and the log append-only in the database itself. Each scenario runs on SQLite and PostgreSQL
//! (`setup::on_both_backends`).

use std::time::Duration;

use kyso_proto::registry::v1 as pb;
use kyso_proto::signer::v1::{Classification, Profile, SigningMode};
use kyso_tests::self_signed_ec;
use tonic::Code;

use crate::setup::{
    DAY, Service, authorize, authorize_req, change, now, on_both_backends, register, rules, seed,
    set_status, ts,
};
use crate::unlock::{overdue, request_unlock, resolve_unlock};

// ---------------------------------------------------------------------------------------------
// Transactions and the event log
// ---------------------------------------------------------------------------------------------

async fn failed_multi_row_change_leaves_no_rows_and_no_event(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await;
    // Two good grants, then one naming an unknown document type: nothing is written.
    let err = svc
        .c()
        .grant_authority(pb::GrantAuthorityRequest {
            change: change("grants"),
            title_authorities: vec![
                pb::TitleAuthority {
                    organisation_id: p.ubnd.clone(),
                    title_id: p.deputy_title.clone(),
                    document_type: "QD".into(),
                },
                pb::TitleAuthority {
                    organisation_id: p.ubnd.clone(),
                    title_id: p.deputy_title.clone(),
                    document_type: "NOPE".into(),
                },
            ],
            organisation_profiles: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
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
    assert_eq!(
        rules(&r),
        vec!["A3"],
        "the first grant must not have been kept"
    );
    // A delegation row is written before its document types: an unknown type rolls it back.
    let err = svc
        .c()
        .create_delegation(pb::CreateDelegationRequest {
            change: change("delegation"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.deputy.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["QD".into(), "NOPE".into()],
            decision_ref: "78/QĐ-UBND".into(),
            valid_from: ts(now() - DAY),
            valid_to: ts(now() + DAY),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let r = authorize(
        &svc,
        authorize_req(
            &p.deputy_cert,
            &p.deputy,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Kt,
        ),
    )
    .await;
    assert_eq!(
        rules(&r),
        vec!["A2"],
        "the delegation must not have been kept"
    );
    let after = svc.events().await;
    assert_eq!(after.len(), before.len());
    // The database file agrees: no orphan delegation rows (read through a second pool).
    let db = kyso_registry::storage::Db::connect(
        &svc.database_url,
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
        kyso_registry::metrics::Metrics::new().unwrap().db_duration,
    )
    .await
    .unwrap();
    for table in ["delegations", "delegation_document_types"] {
        let n = db.count_rows(table).await.unwrap();
        assert_eq!(n, 0, "{table}");
    }
    svc.stop().await;
}

async fn every_change_has_one_event_in_order_with_actor_and_reason(svc: Service) {
    let _p = seed(&svc).await;
    let events = svc.events().await;
    // 2 organisations, 3 titles, 4 people, 3 appointments, 3 document types, 1 grant,
    // 3 certificates, 1 custodian.
    assert_eq!(events.len(), 20);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert!(!e.actor.is_empty() && !e.reason.is_empty());
        serde_json::from_str::<serde_json::Value>(&e.change_json).unwrap();
    }
    assert_eq!(events.last().unwrap().kind, "custodian.assigned");
    svc.stop().await;
}

async fn concurrent_writers_and_authorizations_lose_nothing(svc: Service) {
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut c = svc.c();
        let ubnd = p.ubnd.clone();
        tasks.push(tokio::spawn(async move {
            c.create_person(pb::CreatePersonRequest {
                change: change("bulk"),
                full_name: format!("Cán bộ {i}"),
                email: format!("canbo{i}@khanhhoa.gov.vn"),
                organisation_id: ubnd,
                service_end: None,
            })
            .await
            .map(|_| ())
        }));
        let mut c = svc.c();
        let req = authorize_req(
            &p.chairman_cert,
            &p.chairman,
            &p.ubnd,
            "QD",
            Profile::Approval,
            SigningMode::Own,
        );
        tasks.push(tokio::spawn(async move {
            let r = c.authorize(req).await?.into_inner();
            assert!(r.allowed);
            Ok(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let events = svc.events().await;
    assert_eq!(events.len(), before + 24);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "gapless, ordered");
    }
    svc.stop().await;
}

async fn health_reflection_and_metrics_with_decisions_by_rule(svc: Service) {
    let p = seed(&svc).await;
    let _ = authorize(
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
    let addr = svc.metrics_addr;
    let resp = tokio::task::spawn_blocking(move || {
        kyso_tests::exchange(addr, "GET", "/metrics", None, b"", Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status, 200);
    let body = String::from_utf8_lossy(&resp.body);
    assert!(
        body.contains(
            r#"kyso_registry_decisions_total{decision="deny",method="Authorize",rule="A1"} 1"#
        ),
        "{body}"
    );
    assert!(body.contains("kyso_registry_db_duration_seconds"), "{body}");
    assert!(
        body.contains(
            r#"kyso_registry_requests_total{method="RegisterCertificate",outcome="ok"} 3"#
        )
    );

    // Health answers SERVING for the registry; reflection lists it.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", svc.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kyso.registry.v1.Registry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(channel);
    let mut stream = refl
        .server_reflection_info(futures::stream::iter([
            tonic_reflection::pb::v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "kyso.registry.v1.Registry")
    );
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The event log replays to the same state
// ---------------------------------------------------------------------------------------------

/// A string field of an event's change JSON; empty when absent or null.
fn jstr(v: &serde_json::Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// A time field (Unix seconds) of an event's change JSON.
fn jts(v: &serde_json::Value, key: &str) -> Option<prost_types::Timestamp> {
    v[key].as_i64().and_then(ts)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Rebuilds a registry from another's event log through the management calls, each event
/// reconstructed from its kind and change JSON. The fresh registry makes its own IDs; the
/// answer maps the original IDs to them.
async fn replay(events: &[pb::Event], into: &Service) -> std::collections::HashMap<String, String> {
    let mut ids = std::collections::HashMap::<String, String>::new();
    let mut c = into.c();
    for e in events {
        let v: serde_json::Value = serde_json::from_str(&e.change_json).unwrap();
        let change = Some(pb::Change {
            actor: e.actor.clone(),
            reason: e.reason.clone(),
        });
        let id = |ids: &std::collections::HashMap<String, String>, key: &str| {
            let old = jstr(&v, key);
            ids.get(&old).cloned().unwrap_or(old)
        };
        let new_id = match e.kind.as_str() {
            "organisation.created" => Some(
                c.create_organisation(pb::CreateOrganisationRequest {
                    change,
                    name: jstr(&v, "name"),
                    parent_id: id(&ids, "parent_id"),
                    managing_agency_id: id(&ids, "managing_agency_id"),
                    mail_domain: jstr(&v, "mail_domain"),
                    code: jstr(&v, "code"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "organisation.status_changed" => {
                let status = format!("ORGANISATION_STATUS_{}", jstr(&v, "status").to_uppercase());
                c.set_organisation_status(pb::SetOrganisationStatusRequest {
                    change,
                    organisation_id: ids[&e.entity_id].clone(),
                    status: pb::OrganisationStatus::from_str_name(&status).unwrap() as i32,
                    decision_ref: jstr(&v, "decision_ref"),
                })
                .await
                .unwrap();
                None
            }
            "person.created" => Some(
                c.create_person(pb::CreatePersonRequest {
                    change,
                    full_name: jstr(&v, "full_name"),
                    email: jstr(&v, "email"),
                    organisation_id: id(&ids, "organisation_id"),
                    service_end: jts(&v, "service_end"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "title.created" => Some(
                c.create_title(pb::CreateTitleRequest {
                    change,
                    name: jstr(&v, "name"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "appointment.created" => Some(
                c.create_appointment(pb::CreateAppointmentRequest {
                    change,
                    person_id: id(&ids, "person_id"),
                    title_id: id(&ids, "title_id"),
                    organisation_id: id(&ids, "organisation_id"),
                    valid_from: jts(&v, "valid_from"),
                    valid_to: jts(&v, "valid_to"),
                    decision_ref: jstr(&v, "decision_ref"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "document_type.created" => {
                let class = format!(
                    "CLASSIFICATION_{}",
                    jstr(&v, "classification").to_uppercase()
                );
                c.create_document_type(pb::CreateDocumentTypeRequest {
                    change,
                    code: e.entity_id.clone(),
                    name: jstr(&v, "name"),
                    classification: Classification::from_str_name(&class).unwrap() as i32,
                    scanned_issue_allowed: v["scanned_issue_allowed"].as_bool().unwrap_or(false),
                })
                .await
                .unwrap();
                None
            }
            "authority.granted" => {
                let mut req = pb::GrantAuthorityRequest {
                    change,
                    ..Default::default()
                };
                for g in v["grants"].as_array().unwrap() {
                    let org = ids[&jstr(g, "organisation_id")].clone();
                    if g.get("title_id").is_some() {
                        req.title_authorities.push(pb::TitleAuthority {
                            organisation_id: org,
                            title_id: ids[&jstr(g, "title_id")].clone(),
                            document_type: jstr(g, "document_type"),
                        });
                    } else {
                        req.organisation_profiles.push(pb::OrganisationProfile {
                            organisation_id: org,
                            document_type: jstr(g, "document_type"),
                            profile: Profile::from_str_name(&jstr(g, "profile")).unwrap() as i32,
                        });
                    }
                }
                c.grant_authority(req).await.unwrap();
                None
            }
            "certificate.registered" | "certificate.renewed" => {
                let kind = match jstr(&v, "kind").as_str() {
                    "personal" => pb::CertificateKind::Personal,
                    _ => pb::CertificateKind::Organisation,
                };
                let cert = c
                    .register_certificate(pb::RegisterCertificateRequest {
                        change,
                        der: unhex(&jstr(&v, "der_hex")),
                        kind: kind as i32,
                        person_id: id(&ids, "person_id"),
                        organisation_id: id(&ids, "organisation_id"),
                        renewal_of: jstr(&v, "renewal_of"),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .certificate
                    .unwrap();
                assert_eq!(cert.fingerprint, jstr(&v, "fingerprint"));
                Some(cert.id)
            }
            "certificate.status_changed" => {
                let status = format!("CERTIFICATE_STATUS_{}", jstr(&v, "to").to_uppercase());
                let reason = pb::RevocationReason::from_str_name(&jstr(&v, "reason"))
                    .unwrap_or(pb::RevocationReason::Unspecified);
                c.change_certificate_status(pb::ChangeCertificateStatusRequest {
                    change,
                    fingerprint: jstr(&v, "fingerprint"),
                    status: pb::CertificateStatus::from_str_name(&status).unwrap() as i32,
                    reason: reason as i32,
                    effective_at: jts(&v, "effective_at"),
                })
                .await
                .unwrap();
                None
            }
            "custodian.assigned" => Some(
                c.assign_custodian(pb::AssignCustodianRequest {
                    change,
                    fingerprint: jstr(&v, "fingerprint"),
                    person_id: id(&ids, "person_id"),
                    decision_ref: jstr(&v, "decision_ref"),
                    decision_date: jts(&v, "decision_date"),
                    handover_record: jstr(&v, "handover_record"),
                    effective_at: jts(&v, "effective_at"),
                })
                .await
                .unwrap()
                .into_inner()
                .id,
            ),
            "delegation.created" => {
                let mode = format!("SIGNING_MODE_{}", jstr(&v, "mode").to_uppercase());
                Some(
                    c.create_delegation(pb::CreateDelegationRequest {
                        change,
                        organisation_id: id(&ids, "organisation_id"),
                        from_person_id: id(&ids, "from_person_id"),
                        to_person_id: id(&ids, "to_person_id"),
                        mode: SigningMode::from_str_name(&mode).unwrap() as i32,
                        document_types: v["document_types"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d.as_str().unwrap().to_owned())
                            .collect(),
                        decision_ref: jstr(&v, "decision_ref"),
                        valid_from: jts(&v, "valid_from"),
                        valid_to: jts(&v, "valid_to"),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .id,
                )
            }
            // I5: the fresh registry dates the request (and its due time) at the replay.
            "unlock.requested" => Some(
                c.request_unlock(pb::RequestUnlockRequest {
                    change,
                    fingerprint: jstr(&v, "fingerprint"),
                    requested_by: id(&ids, "requested_by"),
                    reason: jstr(&v, "reason"),
                })
                .await
                .unwrap()
                .into_inner()
                .request
                .unwrap()
                .id,
            ),
            "unlock.resolved" => {
                let outcome = format!("UNLOCK_STATUS_{}", jstr(&v, "outcome").to_uppercase());
                c.resolve_unlock(pb::ResolveUnlockRequest {
                    change,
                    id: ids[&e.entity_id].clone(),
                    outcome: pb::UnlockStatus::from_str_name(&outcome).unwrap() as i32,
                    reason: jstr(&v, "reason"),
                })
                .await
                .unwrap();
                None
            }
            "appointment.ended" => {
                c.end_appointment(pb::EndAppointmentRequest {
                    change,
                    appointment_id: ids[&e.entity_id].clone(),
                    valid_to: jts(&v, "valid_to"),
                    decision_ref: jstr(&v, "decision_ref"),
                })
                .await
                .unwrap();
                None
            }
            "delegation.revoked" => {
                c.revoke_delegation(pb::RevokeDelegationRequest {
                    change,
                    delegation_id: ids[&e.entity_id].clone(),
                    decision_ref: jstr(&v, "decision_ref"),
                    effective_at: jts(&v, "effective_at"),
                })
                .await
                .unwrap();
                None
            }
            // Only the fields changed are in the event; null clears an ID.
            "organisation.updated" => {
                let text = |key: &str| v.get(key).map(|x| x.as_str().unwrap().to_owned());
                let org_id = |key: &str| {
                    v.get(key).map(|x| {
                        x.as_str()
                            .map(|s| ids.get(s).cloned().unwrap_or_else(|| s.to_owned()))
                            .unwrap_or_default()
                    })
                };
                c.update_organisation(pb::UpdateOrganisationRequest {
                    change,
                    organisation_id: ids[&e.entity_id].clone(),
                    name: text("name"),
                    mail_domain: text("mail_domain"),
                    code: None,
                    managing_agency_id: org_id("managing_agency_id"),
                    parent_id: org_id("parent_id"),
                })
                .await
                .unwrap();
                None
            }
            "person.updated" => {
                let text = |key: &str| v.get(key).map(|x| x.as_str().unwrap().to_owned());
                c.update_person(pb::UpdatePersonRequest {
                    change,
                    person_id: ids[&e.entity_id].clone(),
                    full_name: text("full_name"),
                    email: text("email"),
                    service_end: jts(&v, "service_end"),
                    clear_service_end: v.get("service_end").is_some_and(|x| x.is_null()),
                })
                .await
                .unwrap();
                None
            }
            "holidays.set" => {
                c.set_holidays(pb::SetHolidaysRequest {
                    change,
                    year: v["year"].as_i64().unwrap() as i32,
                    dates: v["dates"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_owned())
                        .collect(),
                })
                .await
                .unwrap();
                None
            }
            other => panic!("event kind {other} has no replay"),
        };
        if let Some(new_id) = new_id {
            ids.insert(e.entity_id.clone(), new_id);
        }
    }
    ids
}

async fn event_log_replays_to_the_same_state(svc: Service) {
    let p = seed(&svc).await;
    let mut c = svc.c();
    // More history than the seed: a delegation (A2), a suspension and reinstatement (N7), a
    // renewal (I3) then a revocation (V4) of the renewed certificate, a pending change of an
    // organisation (I2).
    c.create_delegation(pb::CreateDelegationRequest {
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
    let t0 = now();
    set_status(
        &svc,
        &p.deputy_cert,
        pb::CertificateStatus::Suspended,
        pb::RevocationReason::Unspecified,
        Some(t0 - 100),
    )
    .await
    .unwrap();
    set_status(
        &svc,
        &p.deputy_cert,
        pb::CertificateStatus::Active,
        pb::RevocationReason::Unspecified,
        Some(t0 - 50),
    )
    .await
    .unwrap();
    let old = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "Le Van Cuong 1", 365),
        pb::CertificateKind::Personal,
        &p.clerk,
        "",
    )
    .await
    .unwrap();
    let renewed = c
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("renewal"),
            der: self_signed_ec(svc.dir.path(), "Le Van Cuong 2", 700),
            kind: pb::CertificateKind::Personal as i32,
            person_id: p.clerk.clone(),
            organisation_id: String::new(),
            renewal_of: old.fingerprint.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    set_status(
        &svc,
        &renewed.fingerprint,
        pb::CertificateStatus::Revoked,
        pb::RevocationReason::PositionChanged,
        None,
    )
    .await
    .unwrap();
    c.set_organisation_status(pb::SetOrganisationStatusRequest {
        change: change("rename decided"),
        organisation_id: p.sotttt.clone(),
        status: pb::OrganisationStatus::PendingRename as i32,
        decision_ref: "9/QĐ-UBND".into(),
    })
    .await
    .unwrap();

    // The management calls of the registry issue: an appointment ended (A3), a delegation
    // revoked (A2), an organisation and a person updated (I1, I6), holidays set (I5).
    let apt = c
        .create_appointment(pb::CreateAppointmentRequest {
            change: change("acting deputy"),
            person_id: p.outsider.clone(),
            title_id: p.deputy_title.clone(),
            organisation_id: p.ubnd.clone(),
            valid_from: ts(now() - 30 * DAY),
            valid_to: None,
            decision_ref: "10/QĐ-UBND".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    c.end_appointment(pb::EndAppointmentRequest {
        change: change("acting period over"),
        appointment_id: apt,
        valid_to: ts(now() - DAY),
        decision_ref: "11/QĐ-UBND".into(),
    })
    .await
    .unwrap();
    let dlg = c
        .create_delegation(pb::CreateDelegationRequest {
            change: change("KT. Chủ tịch"),
            organisation_id: p.ubnd.clone(),
            from_person_id: p.chairman.clone(),
            to_person_id: p.clerk.clone(),
            mode: SigningMode::Kt as i32,
            document_types: vec!["CV".into()],
            decision_ref: "12/QĐ-UBND".into(),
            valid_from: ts(now() - 2 * DAY),
            valid_to: ts(now() + 30 * DAY),
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    c.revoke_delegation(pb::RevokeDelegationRequest {
        change: change("delegation withdrawn"),
        delegation_id: dlg,
        decision_ref: "13/QĐ-UBND".into(),
        effective_at: ts(now() - DAY),
    })
    .await
    .unwrap();
    c.update_organisation(pb::UpdateOrganisationRequest {
        change: change("renamed"),
        organisation_id: p.sotttt.clone(),
        name: Some("Sở Khoa học và Công nghệ tỉnh Khánh Hòa".into()),
        managing_agency_id: Some(String::new()),
        ..Default::default()
    })
    .await
    .unwrap();
    c.update_person(pb::UpdatePersonRequest {
        change: change("new mail account"),
        person_id: p.outsider.clone(),
        email: Some("dung.pt@skhcn.khanhhoa.gov.vn".into()),
        clear_service_end: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let next_year = time::OffsetDateTime::now_utc().year() + 1;
    c.set_holidays(pb::SetHolidaysRequest {
        change: change("holidays"),
        year: next_year,
        dates: vec![format!("{next_year}-01-01"), format!("{next_year}-09-02")],
    })
    .await
    .unwrap();

    // Two unlock requests (I5): one refused in writing, one still pending.
    let refused = request_unlock(&svc, &p.org_cert, &p.sotttt).await.unwrap();
    resolve_unlock(
        &svc,
        &refused.id,
        pb::UnlockStatus::Refused,
        "device broken",
    )
    .await
    .unwrap();
    let pending = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();

    let events = svc.events().await;
    let fresh = if svc.database_url.starts_with("sqlite") {
        Service::start_sqlite().await
    } else {
        Service::start_postgres().await
    };
    let ids = replay(&events, &fresh).await;
    let map = |s: &str| ids.get(s).cloned().unwrap_or_else(|| s.to_owned());

    // The fresh log tells the same story: same kinds, actors and reasons, in order.
    let again = fresh.events().await;
    let story = |es: &[pb::Event]| -> Vec<(String, String, String)> {
        es.iter()
            .map(|e| (e.kind.clone(), e.actor.clone(), e.reason.clone()))
            .collect()
    };
    assert_eq!(story(&again), story(&events));

    // Same certificates with the same status and history.
    let fingerprints = [
        &p.chairman_cert,
        &p.deputy_cert,
        &p.org_cert,
        &old.fingerprint,
        &renewed.fingerprint,
    ];
    let t = now();
    for fp in fingerprints {
        let get = |s: &Service| {
            let mut c = s.c();
            let fp = fp.clone();
            async move {
                c.get_certificate(pb::GetCertificateRequest {
                    by: Some(pb::get_certificate_request::By::Fingerprint(fp)),
                })
                .await
                .unwrap()
                .into_inner()
                .certificate
                .unwrap()
            }
        };
        let mut a = get(&svc).await;
        let b = get(&fresh).await;
        a.id = map(&a.id);
        a.person_id = map(&a.person_id);
        a.organisation_id = map(&a.organisation_id);
        a.renewal_of = map(&a.renewal_of);
        assert_eq!(a, b, "certificate {fp}");

        // The verifier's question has the same answer for every document type.
        for doc in ["QD", "CV", "MAT"] {
            let check = |s: &Service| {
                let mut c = s.c();
                let fp = fp.clone();
                async move {
                    c.check_authority(pb::CheckAuthorityRequest {
                        fingerprint: fp,
                        document_type: doc.into(),
                        at: ts(t),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                }
            };
            let mut a = check(&svc).await;
            a.organisation_id = map(&a.organisation_id);
            assert_eq!(a, check(&fresh).await, "{fp} {doc}");
        }
    }

    // The signer's question has the same answer for every combination.
    let people = [&p.chairman, &p.deputy, &p.clerk, &p.outsider];
    let (mut asked, mut allowed) = (0, 0);
    for fp in fingerprints {
        for person in people {
            for org in [&p.ubnd, &p.sotttt] {
                for doc in ["QD", "CV", "MAT"] {
                    for profile in [Profile::Approval, Profile::Issue, Profile::Copy] {
                        for mode in [SigningMode::Own, SigningMode::Kt] {
                            let mut req = authorize_req(fp, person, org, doc, profile, mode);
                            req.at = ts(t);
                            let a = authorize(&svc, req.clone()).await;
                            req.acting_person_id = map(person);
                            req.organisation_id = map(org);
                            let b = authorize(&fresh, req).await;
                            assert_eq!(
                                (
                                    a.allowed,
                                    rules(&a),
                                    &a.holder_name,
                                    &a.title,
                                    &a.on_behalf_of
                                ),
                                (
                                    b.allowed,
                                    rules(&b),
                                    &b.holder_name,
                                    &b.title,
                                    &b.on_behalf_of
                                ),
                                "{fp} {person} {org} {doc} {profile:?} {mode:?}"
                            );
                            asked += 1;
                            allowed += usize::from(a.allowed);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(asked, 5 * 4 * 2 * 3 * 3 * 2);
    // The set holds allowed and refused requests alike.
    assert!(
        allowed > 0 && allowed < asked,
        "{allowed} of {asked} allowed"
    );
    // The same unlock requests are pending (due times follow the replay's own clock).
    let later = now() + 10 * DAY;
    assert_eq!(overdue(&svc, later).await, vec![pending.id.clone()]);
    assert_eq!(overdue(&fresh, later).await, vec![map(&pending.id)]);
    fresh.stop().await;
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The event log is append-only in the database itself
// ---------------------------------------------------------------------------------------------

async fn event_log_rejects_update_and_delete_in_the_database(svc: Service) {
    use kyso_registry::sqlx;
    let _p = seed(&svc).await;
    let before = svc.events().await;
    // A second pool on the same database, as an operator's tool would open.
    let db = kyso_registry::storage::Db::connect(
        &svc.database_url,
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
        kyso_registry::metrics::Metrics::new().unwrap().db_duration,
    )
    .await
    .unwrap();
    let mut statements = vec![
        "UPDATE events SET actor = 'someone else' WHERE seq = 1",
        "UPDATE events SET reason = ''",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
    ];
    if svc.database_url.starts_with("postgres") {
        statements.push("TRUNCATE events");
    }
    for sql in statements {
        let err = sqlx::query(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(svc.events().await, before);
    // Appending still works, through the service and its write path.
    svc.c()
        .create_title(pb::CreateTitleRequest {
            change: change("titles"),
            name: "Chánh Văn phòng".into(),
        })
        .await
        .unwrap();
    assert_eq!(svc.events().await.len(), before.len() + 1);
    svc.stop().await;
}

on_both_backends!(
    failed_multi_row_change_leaves_no_rows_and_no_event,
    every_change_has_one_event_in_order_with_actor_and_reason,
    concurrent_writers_and_authorizations_lose_nothing,
    health_reflection_and_metrics_with_decisions_by_rule,
    event_log_replays_to_the_same_state,
    event_log_rejects_update_and_delete_in_the_database,
);
