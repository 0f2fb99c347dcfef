//! The registry's reports end to end (R2): certificates per managing agency per period,
//! signatures and document exchange volumes. Each scenario runs on SQLite and PostgreSQL
//! (`setup::on_both_backends`).

use kyso_proto::registry::v1 as pb;
use kyso_tests::self_signed_ec;
use tonic::{Code, Status};

use crate::setup::{
    DAY, DOMAIN, Service, YEAR, bad_fields, change, create_person, now, on_both_backends, register,
    set_status, ts,
};

// ---------------------------------------------------------------------------------------------
// Reports (R2)
// ---------------------------------------------------------------------------------------------

/// An organisation managed by `managing` (I6; "" manages itself).
async fn create_org(svc: &Service, name: &str, managing: &str) -> String {
    svc.c()
        .create_organisation(pb::CreateOrganisationRequest {
            change: change("province set-up"),
            name: name.to_owned(),
            parent_id: String::new(),
            managing_agency_id: managing.to_owned(),
            mail_domain: DOMAIN.into(),
            code: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn report(
    svc: &Service,
    from: i64,
    to: i64,
    granularity: pb::Granularity,
) -> Result<pb::ReportResponse, Status> {
    svc.c()
        .report(pb::ReportRequest {
            from: ts(from),
            to: ts(to),
            granularity: granularity as i32,
        })
        .await
        .map(|r| r.into_inner())
}

async fn report_counts_certificates_per_managing_agency_per_period_R2(svc: Service) {
    let mut c = svc.c();
    // I6: the department manages the People's Committee; the district manages itself.
    let sotttt = create_org(&svc, "Sở Thông tin và Truyền thông", "").await;
    let ubnd = create_org(&svc, "Ủy ban nhân dân tỉnh Khánh Hòa", &sotttt).await;
    let district = create_org(&svc, "UBND huyện Khánh Sơn", "").await;
    let five_years = Some(now() + 5 * YEAR);
    let a = create_person(
        &mut c,
        "Nguyễn Văn An",
        "an@khanhhoa.gov.vn",
        &ubnd,
        five_years,
    )
    .await;
    let b = create_person(
        &mut c,
        "Lê Thị Bé",
        "be@khanhhoa.gov.vn",
        &district,
        five_years,
    )
    .await;
    let dir = svc.dir.path();
    let personal = pb::CertificateKind::Personal;
    let a1 = register(&mut c, self_signed_ec(dir, "a1", 365), personal, &a, "")
        .await
        .unwrap();
    let a2 = c
        .register_certificate(pb::RegisterCertificateRequest {
            change: change("renewal"),
            der: self_signed_ec(dir, "a2", 700),
            kind: personal as i32,
            person_id: a.clone(),
            organisation_id: String::new(),
            renewal_of: a1.fingerprint.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap();
    let b1 = register(&mut c, self_signed_ec(dir, "b1", 365), personal, &b, "")
        .await
        .unwrap();
    use pb::{CertificateStatus as S, RevocationReason as R};
    set_status(&svc, &a2.fingerprint, S::Suspended, R::Unspecified, None)
        .await
        .unwrap();
    set_status(&svc, &a2.fingerprint, S::Revoked, R::DeviceLost, None)
        .await
        .unwrap();
    set_status(&svc, &b1.fingerprint, S::Revoked, R::LeftService, None)
        .await
        .unwrap();

    let t = now();
    for g in [
        pb::Granularity::Year,
        pb::Granularity::HalfYear,
        pb::Granularity::Quarter,
    ] {
        let r = report(&svc, t - YEAR, t + DAY, g).await.unwrap();
        // Authorize decisions are not recorded: the report says so.
        assert!(!r.signatures_counted);
        let got: Vec<(&str, &str, i64, i64, i64, i64)> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.managing_agency_id.as_str(),
                    x.managing_agency_name.as_str(),
                    x.issued,
                    x.renewed,
                    x.revoked,
                    x.suspended,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (sotttt.as_str(), "Sở Thông tin và Truyền thông", 1, 1, 1, 1),
                (district.as_str(), "UBND huyện Khánh Sơn", 1, 0, 1, 0),
            ],
            "{g:?}"
        );
        for x in &r.rows {
            let (start, end) = (
                x.period_start.unwrap().seconds,
                x.period_end.unwrap().seconds,
            );
            assert!(start <= t && t < end, "{x:?}");
            let months = (end - start) / (28 * DAY);
            match g {
                pb::Granularity::Year => assert!(x.period.len() == 4 && months >= 12),
                pb::Granularity::HalfYear => assert!(x.period.contains("-H") && months == 6),
                _ => assert!(x.period.contains("-Q") && months == 3),
            }
        }
    }
    // Nothing outside the window.
    let r = report(&svc, t + DAY, t + YEAR, pb::Granularity::Quarter)
        .await
        .unwrap();
    assert!(r.rows.is_empty());
    // Bad requests name the field.
    let err = report(&svc, t, t + DAY, pb::Granularity::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), vec!["granularity"]);
    let err = report(&svc, t, t - DAY, pb::Granularity::Year)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["to"]);
    svc.stop().await;
}

/// Vietnam's date (UTC+07:00) at `t`, as the registry takes it.
fn vietnam_day(t: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(t + 7 * 3600)
        .unwrap()
        .date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn register_document(
    svc: &Service,
    org: &str,
    direction: pb::Direction,
    refused: bool,
    at: Option<i64>,
) -> Result<pb::RegisterEntry, Status> {
    svc.c()
        .register_document(pb::RegisterDocumentRequest {
            change: change("văn thư vào sổ"),
            organisation_id: org.into(),
            direction: direction as i32,
            document_type: "QD".into(),
            number_and_symbol: "123/QĐ-UBND".into(),
            sha256: "ab".repeat(32),
            counterparty: "Sở Tài chính".into(),
            refused,
            reason: if refused {
                "chữ ký số của cơ quan không hợp lệ".into()
            } else {
                String::new()
            },
            at: at.and_then(ts),
            signatures: Vec::new(),
        })
        .await
        .map(|r| r.into_inner().entry.unwrap())
}

async fn report_counts_signatures_and_exchange_volumes_R2(svc: Service) {
    let mut c = svc.c();
    let sotttt = create_org(&svc, "Sở Thông tin và Truyền thông", "").await;
    let ubnd = create_org(&svc, "Ủy ban nhân dân tỉnh Khánh Hòa", &sotttt).await;
    let a = create_person(
        &mut c,
        "Nguyễn Văn An",
        "an@khanhhoa.gov.vn",
        &ubnd,
        Some(now() + 5 * YEAR),
    )
    .await;
    let cert = register(
        &mut c,
        self_signed_ec(svc.dir.path(), "usage", 365),
        pb::CertificateKind::Personal,
        &a,
        "",
    )
    .await
    .unwrap();
    let t = now();
    let today = vietnam_day(t);
    let entry = |profile: &str, count: i64| pb::UsageEntry {
        certificate_fingerprint: cert.fingerprint.clone(),
        organisation_id: ubnd.clone(),
        profile: profile.into(),
        day: today.clone(),
        count,
    };
    let usage = |batch: &str, entries: Vec<pb::UsageEntry>| {
        let mut c = svc.c();
        let batch = batch.to_owned();
        async move {
            c.record_usage(pb::RecordUsageRequest {
                batch_id: batch,
                entries,
                change: change("R2 usage from signer-0"),
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    let r = usage(
        "signer-0/abcd:1-10",
        vec![entry("PROFILE_APPROVAL", 3), entry("ISSUE", 2)],
    )
    .await
    .unwrap();
    assert_eq!((r.duplicate, r.signatures), (false, 5));
    // The same batch again (a lost answer, a restart): counted once.
    let r = usage("signer-0/abcd:1-10", vec![entry("APPROVAL", 3)])
        .await
        .unwrap();
    assert!(r.duplicate);
    // A batch with one bad entry writes nothing, and names the field.
    let events_before = svc.events().await.len();
    let mut unknown = entry("APPROVAL", 1);
    unknown.certificate_fingerprint = "00".repeat(32);
    let err = usage("signer-0/abcd:11-12", vec![entry("APPROVAL", 7), unknown])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    for (bad, field) in [
        (entry("SEAL", 1), "entries.profile"),
        (entry("APPROVAL", 0), "entries.count"),
        (
            pb::UsageEntry {
                day: "23/11/2026".into(),
                ..entry("APPROVAL", 1)
            },
            "entries.day",
        ),
    ] {
        let err = usage("signer-0/abcd:11-12", vec![entry("APPROVAL", 7), bad])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&err), vec![field]);
    }
    assert_eq!(svc.events().await.len(), events_before);

    // The registers (W1, W3): one sequence per organisation, direction and year.
    use pb::Direction::{Incoming, Outgoing};
    let o1 = register_document(&svc, &ubnd, Outgoing, false, None)
        .await
        .unwrap();
    let o2 = register_document(&svc, &ubnd, Outgoing, false, None)
        .await
        .unwrap();
    let i1 = register_document(&svc, &ubnd, Incoming, false, None)
        .await
        .unwrap();
    let refused = register_document(&svc, &ubnd, Incoming, true, None)
        .await
        .unwrap();
    let next_year = register_document(&svc, &ubnd, Outgoing, false, Some(t + YEAR))
        .await
        .unwrap();
    assert_eq!(
        (
            o1.number,
            o2.number,
            i1.number,
            refused.number,
            next_year.number
        ),
        (1, 2, 1, 0, 1)
    );
    assert_eq!(next_year.year, o1.year + 1);
    assert!(refused.refused && !refused.reason.is_empty());
    // Bad entries name the field and write nothing.
    let events_before = svc.events().await.len();
    let bad = |f: fn(&mut pb::RegisterDocumentRequest)| {
        let mut c = svc.c();
        let ubnd = ubnd.clone();
        async move {
            let mut r = pb::RegisterDocumentRequest {
                change: change("văn thư vào sổ"),
                organisation_id: ubnd,
                direction: Outgoing as i32,
                document_type: "QD".into(),
                number_and_symbol: "124/QĐ-UBND".into(),
                sha256: "cd".repeat(32),
                ..Default::default()
            };
            f(&mut r);
            c.register_document(r).await.unwrap_err()
        }
    };
    type Edit = fn(&mut pb::RegisterDocumentRequest);
    let cases: [(Edit, &str); 5] = [
        (|r| r.sha256 = "xyz".into(), "sha256"),
        (|r| r.number_and_symbol.clear(), "number_and_symbol"),
        (|r| r.refused = true, "refused"),
        (
            |r| {
                r.direction = Incoming as i32;
                r.refused = true;
            },
            "reason",
        ),
        (|r| r.direction = 0, "direction"),
    ];
    for (f, field) in cases {
        let err = bad(f).await;
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(bad_fields(&err), vec![field]);
    }
    assert_eq!(svc.events().await.len(), events_before);
    let listed = c
        .list_register(pb::ListRegisterRequest {
            organisation_id: ubnd.clone(),
            direction: Outgoing as i32,
            year: o1.year,
            sha256: String::new(),
            number_and_symbol: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        listed.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // Two clerks at once never get the same number.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let svc_c = svc.c();
        let ubnd = ubnd.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = svc_c;
            c.register_document(pb::RegisterDocumentRequest {
                change: change("văn thư vào sổ"),
                organisation_id: ubnd,
                direction: Incoming as i32,
                document_type: "CV".into(),
                sha256: "ef".repeat(32),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entry
            .unwrap()
            .number
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (2..18).collect::<Vec<_>>());

    // R2: per managing agency, per period.
    for g in [
        pb::Granularity::Quarter,
        pb::Granularity::HalfYear,
        pb::Granularity::Year,
    ] {
        let r = report(&svc, t - YEAR, t + DAY, g).await.unwrap();
        assert!(r.signatures_counted);
        let row = r
            .rows
            .iter()
            .find(|x| x.managing_agency_id == sotttt)
            .unwrap();
        assert_eq!(
            (
                row.issued,
                row.signatures,
                row.sent,
                row.received,
                row.refused
            ),
            (1, 5, 2, 17, 1),
            "{g:?}"
        );
    }
    svc.stop().await;
}

on_both_backends!(
    report_counts_certificates_per_managing_agency_per_period_R2,
    report_counts_signatures_and_exchange_volumes_R2,
);
