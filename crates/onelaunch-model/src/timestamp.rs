//! ISO 8601 date-times as written into JUnit reports, read as epoch milliseconds.

/// Parses an ISO 8601 date-time into epoch milliseconds: `YYYY-MM-DDThh:mm[:ss[.fff]]`
/// (a space may replace the `T`), then `Z`, `±hh:mm`, `±hhmm`, `±hh` or nothing (UTC).
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let year = digits(0, 4)?;
    (b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-')).then_some(())?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    matches!(b.get(10), Some(b'T' | b't' | b' ')).then_some(())?;
    let hour = digits(11, 2)?;
    (b.get(13) == Some(&b':')).then_some(())?;
    let minute = digits(14, 2)?;
    let mut pos = 16;
    let mut second = 0;
    let mut millis = 0;
    if b.get(pos) == Some(&b':') {
        second = digits(pos + 1, 2)?;
        pos += 3;
        if matches!(b.get(pos), Some(b'.' | b',')) {
            pos += 1;
            let frac_len = b[pos..].iter().take_while(|d| d.is_ascii_digit()).count();
            if frac_len == 0 {
                return None;
            }
            let frac = &b[pos..pos + frac_len];
            millis = (0..3).fold(0, |n, i| {
                n * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'))
            });
            pos += frac_len;
        }
    }
    let offset_minutes = match &b[pos..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [h1, h2] => (zone_part(*h1, *h2)?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (zone_part(*h1, *h2)?, zone_part(*m1, *m2)?)
                }
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn zone_part(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1_500));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.123456Z"), Some(123));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00-0130"), Some(5_400_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00+01"), Some(-3_600_000));
        assert_eq!(parse_timestamp("2000-02-29T12:30"), Some(951_827_400_000));
        assert_eq!(
            parse_timestamp("2024-03-01T10:00:00"),
            Some(1_709_287_200_000)
        );
        for bad in [
            "",
            "yesterday",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00.",
            "2024-01-01T00:00:00+1",
            "2024-01-01T00:00:00 UTC",
            "1710000000",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }
}
