//! Small formatting helpers for the pages: times, durations, URLs.

/// Percent-encodes a query-string value.
pub(super) fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2025-01-06T09:05:00Z` (machine-readable, for `<time datetime>`).
pub(super) fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// `2025-01-06 09:05 UTC` (for people).
pub(super) fn datetime(ms: i64) -> String {
    let s = iso(ms);
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`.
pub(super) fn ago(ms: i64, now: i64) -> String {
    let s = ((now - ms) / 1000).max(0);
    if s < 60 {
        format!("{s} s ago")
    } else if s < 3600 {
        format!("{} min ago", s / 60)
    } else if s < 86_400 {
        format!("{} h ago", s / 3600)
    } else {
        format!("{} d ago", s / 86_400)
    }
}

/// `850 ms`, `1.2 s`, `3 min 5 s`, `2 h 4 min`.
pub(super) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms / 1000) % 60)
    } else if ms < 48 * 3_600_000 {
        format!("{} h {} min", ms / 3_600_000, (ms / 60_000) % 60)
    } else {
        format!("{} d {} h", ms / 86_400_000, (ms / 3_600_000) % 24)
    }
}

/// The `?page=` links of a paginated list: `base` already has its other
/// query parameters (and ends with `?` or `&`).
pub(super) fn page_href(base: &str, page: i64) -> String {
    format!("{base}page={page}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_durations() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_736_154_300_000), "2025-01-06T09:05:00Z");
        assert_eq!(datetime(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(ago(0, 59_000), "59 s ago");
        assert_eq!(ago(0, 3_600_000), "1 h ago");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(1_250), "1.2 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(url_encode("/launch/1?a=b c"), "%2Flaunch%2F1%3Fa%3Db+c");
    }
}
