//! Key device unlock requests end to end (I5): requested by the managing agency, due the next
//! working day (holidays skipped), refused only with a written reason, one open request per
//! certificate. Each scenario runs on SQLite and PostgreSQL (`setup::on_both_backends`).

use kyso_proto::registry::v1 as pb;
use tonic::{Code, Status};

use crate::setup::{
    DAY, Service, bad_fields, change, now, on_both_backends, seed, status_rules, ts,
};

// ---------------------------------------------------------------------------------------------
// Key device unlock requests (I5)
// ---------------------------------------------------------------------------------------------

pub(crate) async fn request_unlock(
    svc: &Service,
    fp: &str,
    by: &str,
) -> Result<pb::UnlockRequest, Status> {
    svc.c()
        .request_unlock(pb::RequestUnlockRequest {
            change: change("device locked after wrong PINs"),
            fingerprint: fp.into(),
            requested_by: by.into(),
            reason: "khóa sau 5 lần nhập sai PIN".into(),
        })
        .await
        .map(|r| r.into_inner().request.unwrap())
}

pub(crate) async fn resolve_unlock(
    svc: &Service,
    id: &str,
    outcome: pb::UnlockStatus,
    reason: &str,
) -> Result<pb::UnlockRequest, Status> {
    svc.c()
        .resolve_unlock(pb::ResolveUnlockRequest {
            change: change("unlock handled"),
            id: id.into(),
            outcome: outcome as i32,
            reason: reason.into(),
        })
        .await
        .map(|r| r.into_inner().request.unwrap())
}

pub(crate) async fn overdue(svc: &Service, at: i64) -> Vec<String> {
    svc.c()
        .list_overdue_unlocks(pb::ListOverdueUnlocksRequest { now: ts(at) })
        .await
        .unwrap()
        .into_inner()
        .requests
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn unlock_is_requested_by_the_managing_agency_and_due_next_working_day_I5(svc: Service) {
    let p = seed(&svc).await;
    // I6: the department manages the People's Committee's subscribers, not the Committee.
    let err = request_unlock(&svc, &p.chairman_cert, &p.ubnd)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I5"]);
    let r = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    assert_eq!(r.status, pb::UnlockStatus::Pending as i32);
    assert_eq!(r.fingerprint, p.chairman_cert);
    let (asked, due) = (r.requested_at.unwrap().seconds, r.due_at.unwrap().seconds);
    // The end of the next working day in Vietnam's time: at most 4 days (Friday to Monday).
    assert_eq!(due, kyso_registry::policy::unlock_due(asked));
    assert!(
        due > asked + 3600 && due <= asked + 4 * DAY,
        "{asked} {due}"
    );
    let local = time::OffsetDateTime::from_unix_timestamp(due - 1 + 7 * 3600).unwrap();
    assert!(!matches!(
        local.weekday(),
        time::Weekday::Saturday | time::Weekday::Sunday
    ));
    // Not overdue until the due time has passed.
    assert!(overdue(&svc, due - 1).await.is_empty());
    assert!(overdue(&svc, now()).await.is_empty());
    assert_eq!(overdue(&svc, due + 1).await, vec![r.id.clone()]);
    // Done: no longer overdue, and resolved once only.
    let done = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Done, "")
        .await
        .unwrap();
    assert_eq!(done.status, pb::UnlockStatus::Done as i32);
    assert!(done.resolved_at.is_some());
    assert!(overdue(&svc, due + 1).await.is_empty());
    let err = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Refused, "too late")
        .await
        .unwrap_err();
    assert_eq!(status_rules(&err), vec!["I5"]);
    svc.stop().await;
}

async fn unlock_refusal_needs_a_written_reason_I5(svc: Service) {
    let p = seed(&svc).await;
    let r = request_unlock(&svc, &p.org_cert, &p.sotttt).await.unwrap();
    let err = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Refused, "  ")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(status_rules(&err), vec!["I5"]);
    // Nothing written: still pending.
    let due = r.due_at.unwrap().seconds;
    assert_eq!(overdue(&svc, due + 1).await, vec![r.id.clone()]);
    let refused = resolve_unlock(
        &svc,
        &r.id,
        pb::UnlockStatus::Refused,
        "the device is broken: revoke and issue a new certificate (V4)",
    )
    .await
    .unwrap();
    assert_eq!(refused.status, pb::UnlockStatus::Refused as i32);
    assert!(
        refused
            .resolution_reason
            .starts_with("the device is broken")
    );
    assert!(overdue(&svc, due + 1).await.is_empty());
    // Unknown IDs and a missing outcome.
    let err = resolve_unlock(&svc, "unl_nope", pb::UnlockStatus::Done, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = resolve_unlock(&svc, &r.id, pb::UnlockStatus::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), vec!["outcome"]);
    let kinds: Vec<String> = svc.events().await.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["unlock.requested", "unlock.resolved"]
    );
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Holidays and one open unlock request per certificate (I5)
// ---------------------------------------------------------------------------------------------

async fn set_holidays(svc: &Service, year: i32, dates: &[String]) -> Result<Vec<String>, Status> {
    svc.c()
        .set_holidays(pb::SetHolidaysRequest {
            change: change("holidays of the year"),
            year,
            dates: dates.to_vec(),
        })
        .await
        .map(|r| r.into_inner().dates)
}

async fn list_holidays(svc: &Service, year: i32) -> Vec<String> {
    svc.c()
        .list_holidays(pb::ListHolidaysRequest { year })
        .await
        .unwrap()
        .into_inner()
        .dates
}

async fn unlock_deadline_skips_holidays_I5(svc: Service) {
    use kyso_registry::policy;
    let p = seed(&svc).await;
    let before = svc.events().await.len();
    // Refused: a date of another year, not a date, a year out of range; nothing written.
    for (year, dates) in [
        (2027, vec!["2026-12-31".to_owned()]),
        (2027, vec!["2027-02-30".to_owned()]),
        (2027, vec!["05/02/2027".to_owned()]),
        (0, vec![]),
    ] {
        let err = set_holidays(&svc, year, &dates).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{year} {dates:?}");
        assert_eq!(
            bad_fields(&err),
            vec![if year == 0 { "year" } else { "dates" }]
        );
    }
    assert_eq!(svc.events().await.len(), before);
    assert!(list_holidays(&svc, 0).await.is_empty());

    // The next five days in Vietnam are holidays (over a new year, two calls).
    let today = policy::vietnam_date(now()).unwrap();
    let mut holidays = std::collections::BTreeSet::new();
    let mut day = today;
    for _ in 0..5 {
        day = day.next_day().unwrap();
        holidays.insert(day);
    }
    let years: std::collections::BTreeSet<i32> = holidays.iter().map(|d| d.year()).collect();
    for year in &years {
        let mut dates: Vec<String> = holidays
            .iter()
            .filter(|d| d.year() == *year)
            .map(|d| policy::format_date(*d))
            .collect();
        // Listed twice and unsorted: stored once, sorted.
        dates.push(dates[0].clone());
        dates.reverse();
        let stored = set_holidays(&svc, *year, &dates).await.unwrap();
        assert_eq!(stored.len(), dates.len() - 1);
        assert!(stored.windows(2).all(|w| w[0] < w[1]), "{stored:?}");
    }
    let all: Vec<String> = holidays.iter().map(|d| policy::format_date(*d)).collect();
    assert_eq!(list_holidays(&svc, 0).await, all);

    let r = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    let (asked, due) = (r.requested_at.unwrap().seconds, r.due_at.unwrap().seconds);
    assert_eq!(due, policy::unlock_due_with_holidays(asked, &holidays));
    // Due at the end of a working day after the five holidays; every day between the
    // request and that day is a holiday or a weekend.
    let due_day = policy::vietnam_date(due - 1).unwrap();
    assert!(due_day > *holidays.last().unwrap(), "{due_day}");
    assert!(!matches!(
        due_day.weekday(),
        time::Weekday::Saturday | time::Weekday::Sunday
    ));
    let mut d = today.next_day().unwrap();
    while d < due_day {
        assert!(
            holidays.contains(&d)
                || matches!(d.weekday(), time::Weekday::Saturday | time::Weekday::Sunday),
            "{d} is a working day before {due_day}"
        );
        d = d.next_day().unwrap();
    }
    assert!(due > policy::unlock_due(asked));

    // Cleared: the deadline is the next weekday again.
    resolve_unlock(&svc, &r.id, pb::UnlockStatus::Done, "")
        .await
        .unwrap();
    for year in &years {
        assert!(set_holidays(&svc, *year, &[]).await.unwrap().is_empty());
    }
    assert!(list_holidays(&svc, 0).await.is_empty());
    let r = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    let (asked, due) = (r.requested_at.unwrap().seconds, r.due_at.unwrap().seconds);
    assert_eq!(due, policy::unlock_due(asked));
    let sets: Vec<serde_json::Value> = svc
        .events()
        .await
        .iter()
        .filter(|e| e.kind == "holidays.set")
        .map(|e| serde_json::from_str(&e.change_json).unwrap())
        .collect();
    assert_eq!(sets.len(), 2 * years.len());
    assert_eq!(sets.last().unwrap()["dates"], serde_json::json!([]));
    assert!(
        !sets.last().unwrap()["previous"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    svc.stop().await;
}

async fn second_open_unlock_request_for_a_certificate_is_refused_I5(svc: Service) {
    let p = seed(&svc).await;
    let first = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    let before = svc.events().await.len();
    let err = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(status_rules(&err), vec!["I5"]);
    assert_eq!(bad_fields(&err), vec!["fingerprint"]);
    assert!(
        err.message().contains(&first.id) && err.message().contains("still open"),
        "{}",
        err.message()
    );
    assert_eq!(svc.events().await.len(), before);
    // Another certificate is another request.
    request_unlock(&svc, &p.org_cert, &p.sotttt).await.unwrap();
    // Once refused in writing, a new request may be filed.
    resolve_unlock(&svc, &first.id, pb::UnlockStatus::Refused, "device broken")
        .await
        .unwrap();
    let second = request_unlock(&svc, &p.chairman_cert, &p.sotttt)
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    svc.stop().await;
}

on_both_backends!(
    unlock_is_requested_by_the_managing_agency_and_due_next_working_day_I5,
    unlock_refusal_needs_a_written_reason_I5,
    unlock_deadline_skips_holidays_I5,
    second_open_unlock_request_for_a_certificate_is_refused_I5,
);
