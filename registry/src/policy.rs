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
}
