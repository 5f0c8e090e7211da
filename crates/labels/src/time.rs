//! RFC 3339 timestamps, parsed just enough to order labels given in different time zones.

/// An instant: seconds since 1970-01-01T00:00:00Z and nanoseconds within the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch (UTC).
    pub unix_s: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339; `t`, `z` and a space for `T`
/// are accepted). `None` if it is anything else or names an impossible date.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    // A leap second (60) is allowed by RFC 3339; it orders as the next second's start.
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        // First nine digits are nanoseconds; further digits are below the resolution kept.
        let frac = &s[start..at.min(start + 9)];
        let scale = 10u32.pow(9 - frac.len() as u32);
        nanos = frac.parse::<u32>().ok()? * scale;
    }
    let offset_s = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let unix_s =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(Timestamp { unix_s, nanos })
}

/// `unix_s` (seconds since the epoch) as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(unix_s: i64) -> String {
    let (days, secs) = (unix_s.div_euclid(86_400), unix_s.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
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
    fn known_instants() {
        let t = |s| parse_rfc3339(s).map(|t| (t.unix_s, t.nanos));
        assert_eq!(t("1970-01-01T00:00:00Z"), Some((0, 0)));
        // 2000-03-01 is day 11 017 (2000 is a leap year: 29 February exists).
        assert_eq!(t("2000-03-01T00:00:00Z"), Some((11_017 * 86_400, 0)));
        assert_eq!(
            t("2026-11-23T01:30:00.25Z"),
            Some((1_795_397_400, 250_000_000))
        );
        // The same instant written in another zone.
        assert_eq!(
            t("2026-11-23T02:30:00.25+01:00"),
            t("2026-11-23T01:30:00.25Z")
        );
        assert_eq!(t("2026-11-22T20:00:00-05:30"), t("2026-11-23T01:30:00z"));
        assert_eq!(
            t("1969-12-31T23:59:59.123456789123Z"),
            Some((-1, 123_456_789))
        );
    }

    #[test]
    fn formats_and_parses_back() {
        for s in [0, 951_868_800, 1_795_397_400, -86_401, 4_102_444_799] {
            let text = format_rfc3339(s);
            assert_eq!(parse_rfc3339(&text).map(|t| t.unix_s), Some(s), "{text}");
        }
        assert_eq!(format_rfc3339(1_795_397_400), "2026-11-23T01:30:00Z");
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T01:30:00",
            "2026-11-23T01:30Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T01:30:00.Z",
            "2026-11-23T01:30:00+0100",
            "2026-11-23T01:30:00Z junk",
            "２026-11-23T01:30:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }
}
