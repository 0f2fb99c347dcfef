//! Pure rule checks (no database): dates and mail domains. The store applies
//! them inside its transactions; keeping them here makes them easy to read
//! against DOMAIN.md.

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// I3: a renewal needs at least this much validity left.
pub const RENEWAL_MIN_LEFT_SECS: i64 = 60 * DAY;

/// I2: months of service a person must have left to get a new certificate.
pub const SERVICE_MIN_MONTHS: u32 = 6;

/// N4: longest validity of a new certificate, months.
pub const NEW_MAX_MONTHS: u32 = 60;

/// N4: most a renewal may add to the old notAfter, months.
pub const RENEWAL_MAX_MONTHS: u32 = 36;

/// `t` plus `months` calendar months (day clamped to the month's end), unix
/// seconds; the rules count months and years, not 30-day blocks.
pub fn add_months(t: i64, months: u32) -> i64 {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(t) else {
        return t;
    };
    let total = i64::from(dt.month() as u8) - 1 + i64::from(months);
    let year = i64::from(dt.year()) + total / 12;
    let month_index = (total % 12) as u8 + 1;
    let (Ok(year), Ok(month)) = (i32::try_from(year), time::Month::try_from(month_index)) else {
        return i64::MAX;
    };
    let last = time::util::days_in_month(month, year);
    let day = dt.day().min(last);
    match time::Date::from_calendar_date(year, month, day) {
        Ok(d) => dt.replace_date(d).unix_timestamp(),
        Err(_) => i64::MAX,
    }
}

/// I1: whether `email` is an account of the deployment's mail domain (or a subdomain).
pub fn email_in_domain(email: &str, domain: &str) -> bool {
    match email.rsplit_once('@') {
        Some((local, host)) if !local.is_empty() => host_in_domain(host, domain),
        _ => false,
    }
}

/// I1: whether a host name is the mail domain or one of its subdomains.
pub fn host_in_domain(host: &str, domain: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// RFC 3339 for messages (falls back to the number).
pub fn show(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Vietnam's offset from UTC (+07:00), for report periods (R2).
pub const VIETNAM_OFFSET_SECS: i64 = 7 * 3600;

/// The start (Unix seconds) of the calendar period of `months` (3, 6 or 12) holding `t`,
/// in Vietnam's time (R2).
pub fn period_start(t: i64, months: u8) -> i64 {
    let Ok(local) = time::OffsetDateTime::from_unix_timestamp(t + VIETNAM_OFFSET_SECS) else {
        return t;
    };
    let m = local.month() as u8;
    let first = (m - 1) / months * months + 1;
    let Ok(month) = time::Month::try_from(first) else {
        return t;
    };
    match time::Date::from_calendar_date(local.year(), month, 1) {
        Ok(d) => d.midnight().assume_utc().unix_timestamp() - VIETNAM_OFFSET_SECS,
        Err(_) => t,
    }
}

/// The end (exclusive) of the period starting at `start`: the next period's start (31 days
/// a month always lands in the next period, never beyond it).
pub fn period_end(start: i64, months: u8) -> i64 {
    period_start(start + i64::from(months) * 31 * DAY, months)
}

/// The name of the period starting at `start`: "2026" (year), "2026-H2" (half year),
/// "2026-Q4" (quarter).
pub fn period_label(start: i64, months: u8) -> String {
    let Ok(local) = time::OffsetDateTime::from_unix_timestamp(start + VIETNAM_OFFSET_SECS) else {
        return String::new();
    };
    let index = (local.month() as u8 - 1) / months + 1;
    match months {
        12 => local.year().to_string(),
        6 => format!("{}-H{index}", local.year()),
        _ => format!("{}-Q{index}", local.year()),
    }
}

/// The calendar date in Vietnam (UTC+07:00) at `t`.
pub fn vietnam_date(t: i64) -> Option<time::Date> {
    time::OffsetDateTime::from_unix_timestamp(t + VIETNAM_OFFSET_SECS)
        .ok()
        .map(|d| d.date())
}

/// A date as `YYYY-MM-DD` (how holidays are stored and exchanged, I5).
pub fn format_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// A `YYYY-MM-DD` date, strictly in that form.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    if !s
        .bytes()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// I5: the most days an unlock deadline looks ahead for a working day (a year of holidays
/// and weekends cannot push it further).
pub const UNLOCK_LOOKAHEAD_DAYS: i64 = 400;

/// I5: when an unlock requested at `t` is due: the end of the next working day (Monday to
/// Friday) after the day of the request, in Vietnam's time. No holidays; see
/// [`unlock_due_with_holidays`].
pub fn unlock_due(t: i64) -> i64 {
    unlock_due_with_holidays(t, &std::collections::BTreeSet::new())
}

/// I5: the end of the next working day after the day of the request, in Vietnam's time:
/// Saturdays, Sundays and the configured `holidays` (Vietnam's dates) are skipped.
pub fn unlock_due_with_holidays(t: i64, holidays: &std::collections::BTreeSet<time::Date>) -> i64 {
    let Some(mut day) = vietnam_date(t) else {
        return t;
    };
    for _ in 0..UNLOCK_LOOKAHEAD_DAYS {
        let Some(next) = day.next_day() else {
            return t;
        };
        day = next;
        let weekend = matches!(
            day.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        );
        if !weekend && !holidays.contains(&day) {
            break;
        }
    }
    day.midnight().assume_utc().unix_timestamp() + DAY - VIETNAM_OFFSET_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_clamp_to_month_end() {
        // 2024-08-31 + 6 months = 2025-02-28
        let t = time::macros::datetime!(2024-08-31 12:00 UTC).unix_timestamp();
        let want = time::macros::datetime!(2025-02-28 12:00 UTC).unix_timestamp();
        assert_eq!(add_months(t, 6), want);
        let t = time::macros::datetime!(2020-02-29 00:00 UTC).unix_timestamp();
        let want = time::macros::datetime!(2025-02-28 00:00 UTC).unix_timestamp();
        assert_eq!(add_months(t, 60), want);
    }

    #[test]
    fn mail_domain_and_subdomains_i1() {
        assert!(email_in_domain("an.nv@khanhhoa.gov.vn", "khanhhoa.gov.vn"));
        assert!(email_in_domain(
            "x@STTTT.khanhhoa.gov.vn",
            "khanhhoa.gov.vn"
        ));
        assert!(!email_in_domain("x@gmail.com", "khanhhoa.gov.vn"));
        assert!(!email_in_domain("x@evilkhanhhoa.gov.vn", "khanhhoa.gov.vn"));
        assert!(!email_in_domain("@khanhhoa.gov.vn", "khanhhoa.gov.vn"));
    }

    #[test]
    #[allow(non_snake_case)] // rule ID in the name
    fn report_periods_are_calendar_periods_in_vietnam_time_R2() {
        use time::macros::datetime;
        // 2026-12-31T17:30Z is 2027-01-01 00:30 in Vietnam.
        let t = datetime!(2026-12-31 17:30 UTC).unix_timestamp();
        let q = period_start(t, 3);
        assert_eq!(q, datetime!(2027-01-01 00:00 +7).unix_timestamp());
        assert_eq!(period_label(q, 3), "2027-Q1");
        assert_eq!(
            period_end(q, 3),
            datetime!(2027-04-01 00:00 +7).unix_timestamp()
        );
        let t = datetime!(2026-09-30 12:00 UTC).unix_timestamp();
        let q = period_start(t, 3);
        assert_eq!(period_label(q, 3), "2026-Q3");
        assert_eq!(
            period_end(q, 3),
            datetime!(2026-10-01 00:00 +7).unix_timestamp()
        );
        let q4 = period_end(q, 3);
        assert_eq!(
            period_end(q4, 3),
            datetime!(2027-01-01 00:00 +7).unix_timestamp()
        );
        let h = period_start(t, 6);
        assert_eq!(period_label(h, 6), "2026-H2");
        assert_eq!(h, datetime!(2026-07-01 00:00 +7).unix_timestamp());
        assert_eq!(
            period_end(h, 6),
            datetime!(2027-01-01 00:00 +7).unix_timestamp()
        );
        let y = period_start(t, 12);
        assert_eq!(period_label(y, 12), "2026");
        assert_eq!(
            period_end(y, 12),
            datetime!(2027-01-01 00:00 +7).unix_timestamp()
        );
    }

    #[test]
    #[allow(non_snake_case)] // rule ID in the name
    fn unlock_is_due_at_the_end_of_the_next_working_day_I5() {
        use time::macros::datetime;
        let due = |t: time::OffsetDateTime| unlock_due(t.unix_timestamp());
        // Thursday -> end of Friday.
        assert_eq!(
            due(datetime!(2026-11-19 10:00 +7)),
            datetime!(2026-11-21 00:00 +7).unix_timestamp()
        );
        // Friday, Saturday and Sunday -> end of Monday.
        for t in [
            datetime!(2026-11-20 16:59 +7),
            datetime!(2026-11-21 09:00 +7),
            datetime!(2026-11-22 23:59 +7),
        ] {
            assert_eq!(
                due(t),
                datetime!(2026-11-24 00:00 +7).unix_timestamp(),
                "{t}"
            );
        }
        // Friday 23:30 in Vietnam is still Friday although UTC says Friday 16:30.
        assert_eq!(
            due(datetime!(2026-11-20 16:30 UTC)),
            datetime!(2026-11-24 00:00 +7).unix_timestamp()
        );
    }

    #[test]
    #[allow(non_snake_case)] // rule ID in the name
    fn unlock_deadline_skips_weekends_and_holidays_I5() {
        use time::macros::{date, datetime};
        // Tết 2027: Friday 5 February to Wednesday 10 February are holidays.
        let tet: std::collections::BTreeSet<time::Date> = [
            date!(2027 - 02 - 05),
            date!(2027 - 02 - 08),
            date!(2027 - 02 - 09),
            date!(2027 - 02 - 10),
        ]
        .into_iter()
        .collect();
        let due = |t: time::OffsetDateTime| unlock_due_with_holidays(t.unix_timestamp(), &tet);
        // Thursday before Tết -> the weekend and the holidays skipped -> end of Thursday 11th.
        assert_eq!(
            due(datetime!(2027-02-04 09:00 +7)),
            datetime!(2027-02-12 00:00 +7).unix_timestamp()
        );
        // A request on a holiday is due at the end of the next working day too.
        assert_eq!(
            due(datetime!(2027-02-09 09:00 +7)),
            datetime!(2027-02-12 00:00 +7).unix_timestamp()
        );
        // Without holidays, only the weekend is skipped.
        assert_eq!(
            unlock_due(datetime!(2027-02-04 09:00 +7).unix_timestamp()),
            datetime!(2027-02-06 00:00 +7).unix_timestamp()
        );
    }

    #[test]
    fn dates_are_strictly_yyyy_mm_dd() {
        use time::macros::date;
        assert_eq!(parse_date("2027-02-05"), Some(date!(2027 - 02 - 05)));
        assert_eq!(format_date(date!(2027 - 02 - 05)), "2027-02-05");
        for bad in [
            "2027-2-05",
            "2027-02-30",
            "27-02-05x",
            "2027/02/05",
            "+027-02-05",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
