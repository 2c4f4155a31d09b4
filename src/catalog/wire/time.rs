//! Unix milliseconds <-> RFC 3339 UTC timestamps of the exact form `YYYY-MM-DDTHH:MM:SS.mmmZ`.
//!
//! Hand-written civil-from-days (Howard Hinnant's algorithm); no clock is ever read here.
//! The range is 1970-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z.
//!
//! Imports nothing of `catalog`.

/// The largest timestamp representable with a four-digit year: 9999-12-31T23:59:59.999Z.
pub const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

const MS_PER_DAY: u64 = 86_400_000;

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` past year 9999.
pub fn format_rfc3339_ms(ms: u64) -> Option<String> {
    if ms > MAX_RFC3339_MS {
        return None;
    }
    let days = (ms / MS_PER_DAY) as i64;
    let in_day = ms % MS_PER_DAY;
    let (y, m, d) = civil_from_days(days);
    let (hh, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (mm, rest) = (rest / 60_000, rest % 60_000);
    let (ss, milli) = (rest / 1000, rest % 1000);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z"
    ))
}

/// Parses exactly the form [`format_rfc3339_ms`] produces (24 bytes, `Z`, millisecond
/// precision, no leap seconds) back to unix milliseconds. Anything else is `None`.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        let mut n = 0u64;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u64::from(c - b'0');
        }
        Some(n)
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if y < 1970 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y as i64, mo as u32, d as u32)).ok()?;
    Some(days * MS_PER_DAY + hh * 3_600_000 + mm * 60_000 + ss * 1000 + milli)
}

fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 -> (year, month 1..=12, day 1..=31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01, proleptic Gregorian.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (MAX_RFC3339_MS, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, s) in cases {
            assert_eq!(format_rfc3339_ms(ms).as_deref(), Some(s));
            assert_eq!(parse_rfc3339_ms(s), Some(ms));
        }
        assert_eq!(format_rfc3339_ms(MAX_RFC3339_MS + 1), None);
    }

    #[test]
    fn rejects_non_canonical() {
        for s in [
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.123+00:00",
            "2023-11-14 22:13:20.123Z",
            "2023-02-29T00:00:00.000Z",
            "2100-02-29T00:00:00.000Z",
            "2023-13-01T00:00:00.000Z",
            "2023-00-01T00:00:00.000Z",
            "2023-01-00T00:00:00.000Z",
            "2023-01-01T24:00:00.000Z",
            "2023-01-01T00:60:00.000Z",
            "2023-01-01T00:00:60.000Z",
            "1969-12-31T23:59:59.999Z",
            "2023-01-01T00:00:00.00aZ",
            "+023-01-01T00:00:00.000Z",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
    }

    #[test]
    fn round_trips_every_day_boundary_sample() {
        let mut ms = 0u64;
        while ms <= MAX_RFC3339_MS {
            let s = format_rfc3339_ms(ms).unwrap();
            assert_eq!(parse_rfc3339_ms(&s), Some(ms), "{s}");
            ms += 86_400_000 * 37 + 3_599_999;
        }
    }
}
