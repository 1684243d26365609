//! Fast, strict timestamp parsing for text inputs: ISO-8601 (with or without an
//! offset or a fraction) and epoch integers, to microseconds since the epoch, UTC.
//!
//! Hand-written because it runs once per value on the hot path of CSV extraction
//! and because its errors must say what was wrong (they end up in rejects rows).

/// The forms parsed here, by hand (a column's `timestamp_format` other than a pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// ISO-8601, or an integer of epoch milliseconds.
    Auto,
    Iso8601,
    EpochMillis,
    EpochSeconds,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Parses `s` (already trimmed) in the given format.
pub fn parse_timestamp(s: &[u8], format: Builtin) -> Result<i64, &'static str> {
    parse_timestamp_with(s, format, &mut DateCache::default())
}

/// [`parse_timestamp`], reusing the date part of the column's last ISO-8601 value.
pub fn parse_timestamp_with(
    s: &[u8],
    format: Builtin,
    dates: &mut DateCache,
) -> Result<i64, &'static str> {
    match format {
        Builtin::Iso8601 => parse_iso8601_with(s, dates),
        Builtin::EpochMillis => parse_epoch_with_unit(s, 1_000),
        Builtin::EpochSeconds => parse_epoch_with_unit(s, MICROS_PER_SECOND),
        Builtin::Auto => {
            if looks_like_epoch(s) {
                parse_epoch_with_unit(s, 1_000)
            } else {
                parse_iso8601_with(s, dates)
            }
        }
    }
}

/// The date (`YYYY-MM-DD`) a column's last valid ISO-8601 value began with, and
/// its midnight in microseconds. Logs are written in time order, so nearly every
/// value shares its date with the one before: comparing ten bytes then replaces
/// reading, checking and converting the date. Only valid dates are kept.
#[derive(Debug, Default, Clone)]
pub struct DateCache {
    last: Option<([u8; 10], i64)>,
}

/// An optional `-` and digits: an epoch number, not a date.
pub fn looks_like_epoch(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Epoch integer in units of `micros_per_unit` microseconds.
pub fn parse_epoch_with_unit(s: &[u8], micros_per_unit: i64) -> Result<i64, &'static str> {
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err("not an epoch integer");
    }
    let mut v: i64 = 0;
    for d in digits {
        v = v * 10 + i64::from(d - b'0');
    }
    let v = if neg { -v } else { v };
    let micros = v
        .checked_mul(micros_per_unit)
        .ok_or("epoch value out of range")?;
    // Years 0001..=9999, the range Athena's timestamp covers.
    if !(-62_135_596_800 * MICROS_PER_SECOND..253_402_300_800 * MICROS_PER_SECOND).contains(&micros)
    {
        return Err("epoch value out of range (years 1-9999)");
    }
    Ok(micros)
}

#[inline]
fn digits2(s: &[u8], at: usize) -> Option<u32> {
    let a = s.get(at)?.wrapping_sub(b'0');
    let b = s.get(at + 1)?.wrapping_sub(b'0');
    (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
}

const BAD: &str = "not an ISO-8601 timestamp (YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM])";

/// `YYYY-MM-DD[(T|t| )HH:MM[:SS[(.|,)F{1,9}]]][Z|z|±HH[:]MM|±HH]`; no offset means UTC.
pub fn parse_iso8601(s: &[u8]) -> Result<i64, &'static str> {
    parse_iso8601_with(s, &mut DateCache::default())
}

/// Midnight (UTC) of the date `YYYY-MM-DD` that `s` starts with, in microseconds.
fn date_micros(s: &[u8]) -> Result<i64, &'static str> {
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return Err(BAD);
    }
    let year = digits2(s, 0)
        .zip(digits2(s, 2))
        .map(|(a, b)| a * 100 + b)
        .ok_or(BAD)?;
    let month = digits2(s, 5).ok_or(BAD)?;
    let day = digits2(s, 8).ok_or(BAD)?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("date out of range");
    }
    Ok(days_from_civil(year as i64, month, day) * MICROS_PER_DAY)
}

/// [`parse_iso8601`] with the column's [`DateCache`].
#[inline]
pub fn parse_iso8601_with(s: &[u8], dates: &mut DateCache) -> Result<i64, &'static str> {
    parse_iso8601_zoned(s, dates).map(|iso| iso.micros)
}

/// An ISO-8601 value: microseconds as if its wall-clock time were UTC when it has
/// no offset, the instant when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iso8601 {
    pub micros: i64,
    /// It ended in `Z` or `±HH[:MM]`.
    pub has_offset: bool,
}

/// [`parse_iso8601_with`], saying whether the value carried an offset.
#[inline]
pub fn parse_iso8601_zoned(s: &[u8], dates: &mut DateCache) -> Result<Iso8601, &'static str> {
    let local = |micros| Iso8601 {
        micros,
        has_offset: false,
    };
    let Some(date) = s.first_chunk::<10>() else {
        return Err(BAD);
    };
    let mut micros = match dates.last {
        Some((last, micros)) if last == *date => micros,
        _ => {
            let micros = date_micros(s)?;
            dates.last = Some((*date, micros));
            micros
        }
    };
    let mut i = 10;
    if i == s.len() {
        return Ok(local(micros));
    }
    if !matches!(s[i], b'T' | b't' | b' ') {
        return Err(BAD);
    }
    i += 1;
    let hour = digits2(s, i).ok_or(BAD)?;
    if s.get(i + 2) != Some(&b':') {
        return Err(BAD);
    }
    let minute = digits2(s, i + 3).ok_or(BAD)?;
    i += 5;
    let mut second = 0;
    if s.get(i) == Some(&b':') {
        second = digits2(s, i + 1).ok_or(BAD)?;
        i += 3;
        if matches!(s.get(i), Some(b'.') | Some(b',')) {
            i += 1;
            let start = i;
            let mut frac: i64 = 0;
            while let Some(d) = s.get(i).filter(|d| d.is_ascii_digit()) {
                // Digits beyond microseconds are read but not kept (truncated).
                if i - start < 6 {
                    frac = frac * 10 + i64::from(d - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 || n > 9 {
                return Err("fraction of a second must have 1 to 9 digits");
            }
            for _ in n..6 {
                frac *= 10;
            }
            micros += frac;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time of day out of range");
    }
    micros +=
        (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * MICROS_PER_SECOND;
    match s.get(i) {
        None => Ok(local(micros)),
        Some(b'Z' | b'z') if i + 1 == s.len() => Ok(Iso8601 {
            micros,
            has_offset: true,
        }),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits2(s, i + 1).ok_or(BAD)?;
            let mut j = i + 3;
            let mut om = 0;
            if s.get(j) == Some(&b':') {
                j += 1;
            }
            if j < s.len() {
                om = digits2(s, j).ok_or(BAD)?;
                j += 2;
            }
            if j != s.len() || oh > 23 || om > 59 {
                return Err("bad UTC offset");
            }
            let offset = (i64::from(oh) * 3600 + i64::from(om) * 60) * MICROS_PER_SECOND;
            // Local time = UTC + offset, so UTC = local - offset.
            Ok(Iso8601 {
                micros: if sign == b'+' {
                    micros - offset
                } else {
                    micros + offset
                },
                has_offset: true,
            })
        }
        _ => Err(BAD),
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDateTime};
    use proptest::prelude::*;

    fn iso(s: &str) -> Result<i64, &'static str> {
        parse_timestamp(s.as_bytes(), Builtin::Auto)
    }

    #[test]
    fn accepts_the_common_shapes() {
        let base = 1_709_294_400_000_000; // 2024-03-01T12:00:00Z
        assert_eq!(iso("2024-03-01T12:00:00Z"), Ok(base));
        assert_eq!(iso("2024-03-01 12:00:00"), Ok(base));
        assert_eq!(iso("2024-03-01T12:00"), Ok(base));
        assert_eq!(iso("2024-03-01T13:00:00+01:00"), Ok(base));
        assert_eq!(iso("2024-03-01T07:00:00-0500"), Ok(base));
        assert_eq!(iso("2024-03-01T21:00:00+09"), Ok(base));
        assert_eq!(iso("2024-03-01T12:00:00.5Z"), Ok(base + 500_000));
        assert_eq!(iso("2024-03-01T12:00:00.123456789Z"), Ok(base + 123_456));
        assert_eq!(iso("2024-03-01"), Ok(base - 12 * 3600 * 1_000_000));
        assert_eq!(iso("1709294400000"), Ok(base));
        assert_eq!(iso("-1000"), Ok(-1_000_000));
        assert_eq!(
            parse_timestamp(b"1709294400", Builtin::EpochSeconds),
            Ok(base)
        );
    }

    #[test]
    fn rejects_impossible_values() {
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T24:00:00",
            "2024-01-01T10:61:00",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T10:00:00.1234567891Z",
            "2024-01-01T10:00:00+25:00",
            "2024-01-01T10:00:00ZZ",
            "2024/01/01",
            "yesterday",
            "",
            "99999999999999999",
        ] {
            assert!(iso(bad).is_err(), "{bad} should be rejected");
        }
        assert!(parse_timestamp(b"2024-01-01", Builtin::EpochMillis).is_err());
        assert!(parse_timestamp(b"1709294400000", Builtin::Iso8601).is_err());
    }

    proptest! {
        // The hand-written parser agrees with chrono on every valid instant.
        #[test]
        fn agrees_with_chrono(secs in -62_135_510_400i64..253_402_214_399, micros in 0u32..1_000_000, off_min in -1439i32..1439) {
            let utc = DateTime::from_timestamp(secs, micros * 1000).unwrap();
            let offset = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
            let text = utc.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string();
            prop_assert_eq!(iso(&text), Ok(secs * 1_000_000 + i64::from(micros)), "{}", text);
            let naive: NaiveDateTime = utc.naive_utc();
            let text = naive.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
            prop_assert_eq!(iso(&text), Ok(secs * 1_000_000 + i64::from(micros / 1000 * 1000)));
        }

        /// One cache over a column's values gives what parsing each value alone
        /// gives, whatever came before: same and other dates, invalid ones, junk.
        #[test]
        fn the_date_cache_changes_no_result(
            values in proptest::collection::vec(
                prop_oneof![
                    (0u32..3, 0u32..24).prop_map(|(d, h)| format!("2024-02-2{}T{h:02}:00:00Z", 7 + d)),
                    Just("2023-02-29T00:00:00Z".to_string()),
                    Just("2024-02-28".to_string()),
                    Just("2024-02-28T".to_string()),
                    Just("2024-02-28T25:00".to_string()),
                    "[-0-9T:Z .+]{0,24}",
                ],
                1..40,
            ),
        ) {
            let mut dates = DateCache::default();
            for v in &values {
                prop_assert_eq!(parse_iso8601_with(v.as_bytes(), &mut dates), parse_iso8601(v.as_bytes()), "{}", v);
            }
        }
    }
}
