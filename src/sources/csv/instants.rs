//! Timestamp and date cells as a column declares them: the built-in forms
//! ([`super::timestamp`]), chrono strftime patterns, and local times resolved in an
//! IANA zone with the tz database (chrono-tz).
//!
//! The rules:
//! - a value that carries an offset (`Z`, `+09:00`, or `%z` in a pattern) means that
//!   instant, whatever the column's zone;
//! - a value without one is a wall-clock time in the column's `time_zone` (UTC
//!   unless declared); epoch numbers are UTC by definition;
//! - a wall-clock time that occurs twice (the hour repeated when DST ends) is the
//!   earlier or the later instant, or a reject, as `ambiguous` says; one that does
//!   not occur (the hour skipped when DST starts) is a reject naming the zone;
//! - a pattern without a time of day gives midnight; values must fall in the years
//!   1 to 9999 (Athena's range).
//!
//! UTC columns in the built-in forms never reach chrono: that is the hot path of
//! every sensor log, and [`super::timestamp`] parses it by hand.

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::options::{Ambiguous, InputColumn, TimestampFormat};
use super::timestamp::{
    Builtin, DateCache, looks_like_epoch, parse_iso8601_zoned, parse_timestamp_with,
};

const MICROS_PER_SECOND: i64 = 1_000_000;
/// 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in microseconds.
const MIN_MICROS: i64 = -62_135_596_800 * MICROS_PER_SECOND;
const END_MICROS: i64 = 253_402_300_800 * MICROS_PER_SECOND;

/// What a column's last values settled, kept for the next ones: logs are written in
/// time order, so consecutive values share their date and their UTC offset.
#[derive(Debug, Default, Clone)]
pub struct Recent {
    pub dates: DateCache,
    /// A wall-clock hour `[start, end)` (microseconds, as if UTC) whose every time
    /// is one instant at `offset`: no transition falls inside it.
    hour: Option<(i64, i64, i64)>,
}

const MICROS_PER_HOUR: i64 = 3600 * MICROS_PER_SECOND;

/// How one timestamp column's cells become UTC microseconds.
#[derive(Debug, Clone)]
pub struct TimestampRule {
    form: Form,
    /// `None` for UTC (nothing to resolve).
    zone: Option<Tz>,
    ambiguous: Ambiguous,
}

#[derive(Debug, Clone)]
enum Form {
    Builtin(Builtin),
    Pattern(Pattern),
}

/// A compiled chrono pattern and its text (for reasons).
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    items: Vec<Item<'static>>,
}

impl Pattern {
    fn compile(text: &str) -> Result<Self, String> {
        let items = StrftimeItems::new(text)
            .parse_to_owned()
            .map_err(|_| format!("{text:?} is not a valid chrono strftime pattern"))?;
        // chrono reads a zone name but cannot turn it into an offset: the value
        // would load as if it had none.
        if items
            .iter()
            .any(|i| matches!(i, Item::Fixed(chrono::format::Fixed::TimezoneName)))
        {
            return Err(format!(
                "{text:?} has %Z: a zone name (JST, CET) is ambiguous and is not read; use %z for a numeric offset, or match the name as literal text (and, for a timestamp, set `time_zone`)"
            ));
        }
        // A 12-hour clock without AM/PM names two hours every time.
        let has = |wanted: &dyn Fn(&Item<'static>) -> bool| items.iter().any(wanted);
        if has(&|i| matches!(i, Item::Numeric(chrono::format::Numeric::Hour12, _)))
            && !has(&|i| {
                matches!(
                    i,
                    Item::Fixed(
                        chrono::format::Fixed::UpperAmPm | chrono::format::Fixed::LowerAmPm
                    )
                )
            })
        {
            return Err(format!(
                "{text:?} has %I (a 12-hour clock) without %p (AM/PM): every value would be ambiguous"
            ));
        }
        Ok(Pattern {
            text: text.to_string(),
            items,
        })
    }

    /// Reads `s` into chrono's field collection, or says why it does not match. An
    /// hour without minutes (`%Y%m%d%H`) is on the hour.
    fn fields(&self, s: &str) -> Result<Parsed, String> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, s, self.items.iter())
            .map_err(|e| format!("does not match {:?} ({e})", self.text))?;
        if parsed.minute().is_none() && parsed.hour_mod_12().is_some() {
            parsed
                .set_minute(0)
                .map_err(|e| format!("does not match {:?} ({e})", self.text))?;
        }
        Ok(parsed)
    }
}

impl TimestampRule {
    /// The rule of a timestamp column; errors name the bad key.
    pub fn new(column: &InputColumn) -> Result<Self, String> {
        let form = match &column.timestamp_format {
            TimestampFormat::Auto => Form::Builtin(Builtin::Auto),
            TimestampFormat::Iso8601 => Form::Builtin(Builtin::Iso8601),
            TimestampFormat::EpochMillis => Form::Builtin(Builtin::EpochMillis),
            TimestampFormat::EpochSeconds => Form::Builtin(Builtin::EpochSeconds),
            TimestampFormat::Pattern(p) => {
                Form::Pattern(Pattern::compile(p).map_err(|e| format!("`timestamp_format`: {e}"))?)
            }
        };
        Ok(TimestampRule {
            form,
            zone: zone(column.time_zone.as_deref())?,
            ambiguous: column.ambiguous,
        })
    }

    /// UTC microseconds of a trimmed ASCII cell, or why it is not a timestamp.
    #[inline]
    pub fn parse(&self, s: &str, recent: &mut Recent) -> Result<i64, String> {
        let dates = &mut recent.dates;
        match (&self.form, &self.zone) {
            // Every value's own instant: the hand-written parser alone.
            (Form::Builtin(form), None) => {
                parse_timestamp_with(s.as_bytes(), *form, dates).map_err(str::to_string)
            }
            (Form::Builtin(form), Some(zone)) => {
                // Epoch numbers are UTC by definition.
                let epoch = match form {
                    Builtin::EpochMillis | Builtin::EpochSeconds => true,
                    Builtin::Auto => looks_like_epoch(s.as_bytes()),
                    Builtin::Iso8601 => false,
                };
                if epoch {
                    return parse_timestamp_with(s.as_bytes(), *form, dates)
                        .map_err(str::to_string);
                }
                let iso = parse_iso8601_zoned(s.as_bytes(), dates).map_err(str::to_string)?;
                if iso.has_offset {
                    Ok(iso.micros)
                } else {
                    self.resolve(*zone, iso.micros, &mut recent.hour)
                }
            }
            (Form::Pattern(p), zone) => {
                let parsed = p.fields(s)?;
                if parsed.timestamp().is_some() {
                    // `%s`, seconds since the epoch: an instant, UTC by definition.
                    let at = parsed
                        .to_naive_datetime_with_offset(0)
                        .map_err(|e| format!("does not match {:?} ({e})", p.text))?;
                    return in_range(at.and_utc().timestamp_micros());
                }
                if parsed.offset().is_some() {
                    let at = parsed
                        .to_datetime()
                        .map_err(|e| format!("does not match {:?} ({e})", p.text))?;
                    return in_range(at.timestamp_micros());
                }
                let date = parsed
                    .to_naive_date()
                    .map_err(|e| format!("does not match {:?} ({e})", p.text))?;
                let time = if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
                    NaiveTime::MIN
                } else {
                    parsed
                        .to_naive_time()
                        .map_err(|e| format!("does not match {:?} ({e})", p.text))?
                };
                let wall = NaiveDateTime::new(date, time).and_utc().timestamp_micros();
                match zone {
                    None => in_range(wall),
                    Some(zone) => self.resolve(*zone, wall, &mut recent.hour),
                }
            }
        }
    }

    /// The instant of a wall-clock time (given as if it were UTC) in `zone`.
    /// `hour` remembers the last hour found free of transitions (zones change their
    /// offset at most once within an hour, so an hour whose first and last
    /// microsecond have one offset has it throughout).
    fn resolve(
        &self,
        zone: Tz,
        wall: i64,
        hour: &mut Option<(i64, i64, i64)>,
    ) -> Result<i64, String> {
        if let Some((start, end, offset)) = *hour
            && (start..end).contains(&wall)
        {
            return in_range(wall - offset);
        }
        let single_offset = |w: i64| {
            let naive = chrono::DateTime::from_timestamp_micros(w)?.naive_utc();
            match zone.from_local_datetime(&naive) {
                chrono::LocalResult::Single(t) => Some(w - t.timestamp_micros()),
                _ => None,
            }
        };
        let start = wall.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
        let end = start + MICROS_PER_HOUR;
        if let Some(offset) = single_offset(start)
            && single_offset(end - 1) == Some(offset)
        {
            *hour = Some((start, end, offset));
            return in_range(wall - offset);
        }
        let naive = chrono::DateTime::from_timestamp_micros(wall)
            .ok_or("out of range (years 1-9999)")?
            .naive_utc();
        let instant = match zone.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t,
            chrono::LocalResult::Ambiguous(earliest, latest) => match self.ambiguous {
                Ambiguous::Earliest => earliest,
                Ambiguous::Latest => latest,
                Ambiguous::Reject => {
                    return Err(format!(
                        "is ambiguous in {}: {naive} occurs twice (at {} and at {}); `ambiguous` is \"reject\"",
                        zone.name(),
                        earliest.format("%:z"),
                        latest.format("%:z"),
                    ));
                }
            },
            chrono::LocalResult::None => {
                return Err(format!(
                    "does not exist in {}: {naive} falls in the hour skipped when the clocks moved forward",
                    zone.name()
                ));
            }
        };
        in_range(instant.timestamp_micros())
    }
}

/// How one date column's cells become days since 1970-01-01.
#[derive(Debug, Clone)]
pub struct DateRule {
    pattern: Pattern,
}

impl DateRule {
    pub fn new(column: &InputColumn) -> Result<Self, String> {
        let text = column.date_format.as_deref().unwrap_or("%Y-%m-%d");
        Ok(DateRule {
            pattern: Pattern::compile(text).map_err(|e| format!("`date_format`: {e}"))?,
        })
    }

    pub fn parse(&self, s: &str) -> Result<i32, String> {
        let date = self
            .pattern
            .fields(s)?
            .to_naive_date()
            .map_err(|e| format!("does not match {:?} ({e})", self.pattern.text))?;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");
        if !(1..=9999).contains(&chrono::Datelike::year(&date)) {
            return Err("out of range (years 1-9999)".into());
        }
        Ok((date - epoch).num_days() as i32)
    }
}

/// The zone a `time_zone` key names; `None` for UTC.
fn zone(name: Option<&str>) -> Result<Option<Tz>, String> {
    let Some(name) = name else { return Ok(None) };
    let tz: Tz = name.parse().map_err(|_| {
        format!("`time_zone`: {name:?} is not an IANA time zone (e.g. \"Europe/Berlin\", \"Asia/Tokyo\", \"UTC\")")
    })?;
    // UTC under any of its names needs no resolving.
    let utc = matches!(
        tz.name(),
        "UTC" | "Etc/UTC" | "UCT" | "Etc/UCT" | "Universal" | "Etc/Universal" | "Zulu" | "Etc/Zulu"
    );
    Ok((!utc).then_some(tz))
}

fn in_range(micros: i64) -> Result<i64, String> {
    if (MIN_MICROS..END_MICROS).contains(&micros) {
        Ok(micros)
    } else {
        Err("out of range (years 1-9999)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(format: &str, zone: Option<&str>, ambiguous: &str) -> TimestampRule {
        let column: InputColumn = toml::from_str(&format!(
            "name = \"t\"\ntype = \"timestamp\"\ntimestamp_format = {format:?}\nambiguous = {ambiguous:?}\n{}",
            zone.map(|z| format!("time_zone = {z:?}")).unwrap_or_default()
        ))
        .unwrap();
        TimestampRule::new(&column).unwrap()
    }

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn local_times_resolve_in_their_zone() {
        let berlin = rule("%d.%m.%Y %H:%M:%S", Some("Europe/Berlin"), "earliest");
        let mut d = Recent::default();
        assert_eq!(
            berlin.parse("01.07.2024 12:00:00", &mut d),
            Ok(utc("2024-07-01T10:00:00Z"))
        );
        assert_eq!(
            berlin.parse("01.01.2024 12:00:00", &mut d),
            Ok(utc("2024-01-01T11:00:00Z"))
        );
        // The repeated hour in October: earliest is still summer time.
        assert_eq!(
            berlin.parse("27.10.2024 02:30:00", &mut d),
            Ok(utc("2024-10-27T00:30:00Z"))
        );
        let latest = rule("%d.%m.%Y %H:%M:%S", Some("Europe/Berlin"), "latest");
        assert_eq!(
            latest.parse("27.10.2024 02:30:00", &mut d),
            Ok(utc("2024-10-27T01:30:00Z"))
        );
        let strict = rule("%d.%m.%Y %H:%M:%S", Some("Europe/Berlin"), "reject");
        let e = strict.parse("27.10.2024 02:30:00", &mut d).unwrap_err();
        assert!(e.contains("ambiguous in Europe/Berlin"), "{e}");
        // The skipped hour in March.
        let e = berlin.parse("31.03.2024 02:30:00", &mut d).unwrap_err();
        assert!(e.contains("does not exist in Europe/Berlin"), "{e}");
    }

    #[test]
    fn an_offset_in_the_data_wins_over_the_zone() {
        let mut d = Recent::default();
        let iso = rule("iso8601", Some("America/Chicago"), "earliest");
        assert_eq!(
            iso.parse("2024-03-10T12:00:00Z", &mut d),
            Ok(utc("2024-03-10T12:00:00Z"))
        );
        assert_eq!(
            iso.parse("2024-03-10 12:00:00", &mut d),
            Ok(utc("2024-03-10T17:00:00Z"))
        );
        let pattern = rule("%Y/%m/%d %H:%M:%S %z", Some("America/Chicago"), "earliest");
        assert_eq!(
            pattern.parse("2024/03/10 12:00:00 +0900", &mut d),
            Ok(utc("2024-03-10T03:00:00Z"))
        );
    }

    #[test]
    fn twelve_hour_clocks_and_bad_values() {
        let mut d = Recent::default();
        let us = rule("%m/%d/%Y %I:%M:%S %p", None, "earliest");
        assert_eq!(
            us.parse("3/10/2024 1:59:59 AM", &mut d),
            Ok(utc("2024-03-10T01:59:59Z"))
        );
        assert_eq!(
            us.parse("3/10/2024 1:59:59 PM", &mut d),
            Ok(utc("2024-03-10T13:59:59Z"))
        );
        let e = us.parse("2024-03-10 01:59:59", &mut d).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let date_only = rule("%Y%m%d", None, "earliest");
        assert_eq!(
            date_only.parse("20240310", &mut d),
            Ok(utc("2024-03-10T00:00:00Z"))
        );
    }

    #[test]
    fn bad_patterns_and_zones_are_errors() {
        let column: InputColumn =
            toml::from_str("name = \"t\"\ntype = \"timestamp\"\ntimestamp_format = \"%Q %Y\"")
                .unwrap();
        assert!(
            TimestampRule::new(&column)
                .unwrap_err()
                .contains("timestamp_format")
        );
        let column: InputColumn =
            toml::from_str("name = \"t\"\ntype = \"timestamp\"\ntime_zone = \"Mars/Olympus\"")
                .unwrap();
        assert!(
            TimestampRule::new(&column)
                .unwrap_err()
                .contains("not an IANA time zone")
        );
        let column: InputColumn =
            toml::from_str("name = \"t\"\ntype = \"timestamp\"\ntime_zone = \"UTC\"").unwrap();
        assert!(TimestampRule::new(&column).unwrap().zone.is_none());
    }

    proptest::proptest! {
        // The remembered hour never changes a result: a column's values in any
        // order (across both DST changes of a year) give what a fresh rule gives.
        #[test]
        fn the_remembered_hour_changes_no_result(
            minutes in proptest::collection::vec(0i64..(366 * 24 * 60), 1..60),
            zone in proptest::prop_oneof![
                proptest::strategy::Just("Europe/Berlin"),
                proptest::strategy::Just("America/Chicago"),
                proptest::strategy::Just("Australia/Lord_Howe"),
                proptest::strategy::Just("Asia/Kolkata"),
            ],
        ) {
            let rule = rule("%Y-%m-%d %H:%M:%S", Some(zone), "latest");
            let mut kept = Recent::default();
            for m in minutes {
                let wall = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap()
                    + chrono::Duration::minutes(m);
                let text = wall.format("%Y-%m-%d %H:%M:%S").to_string();
                proptest::prop_assert_eq!(
                    rule.parse(&text, &mut kept),
                    rule.parse(&text, &mut Recent::default()),
                    "{}", text
                );
            }
        }
    }

    #[test]
    fn dates_in_a_pattern() {
        let column: InputColumn =
            toml::from_str("name = \"d\"\ntype = \"date\"\ndate_format = \"%d.%m.%Y\"").unwrap();
        let rule = DateRule::new(&column).unwrap();
        assert_eq!(rule.parse("02.01.1970"), Ok(1));
        assert_eq!(rule.parse("31.12.1969"), Ok(-1));
        assert!(rule.parse("31.02.2024").is_err());
    }
}
