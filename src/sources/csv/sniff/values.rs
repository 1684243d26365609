//! What the values are: the decimal separator, the NULL markers, and each column's
//! type ([`infer`]): the date and time patterns tried, which of several that read
//! every value is chosen, and how many bad cells a type tolerates.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// The year readings are compared with when two patterns read every value: the one
/// whose years lie nearer is taken.
const REFERENCE_YEAR: i32 = 2025;

use super::cells::{KNOWN_NULLS, Number, Rough, is_boolean, number, rough};

/// Years a logger's dates may plausibly have; keeps `%Y` from reading `24` as year 24.
const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// `,` when the delimiter is not a comma and more number-like cells read with a
/// decimal comma (`12,5`) than with a decimal point (`12.5`).
pub(super) fn decimal_separator(rows: &[Vec<String>], delimiter: u8) -> u8 {
    if delimiter == b',' {
        return b'.';
    }
    let cells = || rows.iter().flatten();
    let with = |sep: u8| {
        cells()
            .filter(|c| c.contains(sep as char) && number(c, sep).is_some())
            .count()
    };
    if with(b',') > with(b'.') { b',' } else { b'.' }
}

/// Cell texts that stand for NULL, in the order first met (columns left to right).
/// In a column where at least one cell is a number, the other cells are markers when
/// each is a known one ([`KNOWN_NULLS`]) or recurs as text, there are at most four
/// of them, and the unknown ones are no more frequent than the numbers. A one-off
/// (`34O.2`, `6.012,5`) is a bad cell, a reject at run time, not a marker; a few
/// ([`Tolerance`]) leave the column numeric, more make it text, whose cells then
/// name no markers (they would turn text values NULL in every column).
pub(super) fn null_markers(rows: &[Vec<String>], decimal: u8) -> Vec<String> {
    let fields = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut markers: Vec<String> = Vec::new();
    for i in 0..fields {
        let mut numbers = 0;
        let mut others: Vec<(&str, usize)> = Vec::new();
        for cell in rows
            .iter()
            .filter_map(|r| r.get(i))
            .filter(|c| !c.is_empty())
        {
            if number(cell, decimal).is_some() {
                numbers += 1;
            } else if let Some(seen) = others.iter_mut().find(|(t, _)| *t == cell) {
                seen.1 += 1;
            } else {
                others.push((cell, 1));
            }
        }
        let known = |t: &str| KNOWN_NULLS.contains(&t);
        let plausible = |(t, n): &(&str, usize)| known(t) || (*n >= 2 && rough(t) == Rough::Text);
        let (found, bad): (Vec<_>, Vec<_>) = others.into_iter().partition(plausible);
        let bad_cells: usize = bad.iter().map(|(_, n)| n).sum();
        let unknown: usize = found
            .iter()
            .filter(|(t, _)| !known(t))
            .map(|(_, n)| n)
            .sum();
        let numeric = numbers > 0
            && Tolerance::of(numbers + bad_cells).allows(bad_cells, numbers + bad_cells);
        if numeric && found.len() <= 4 && unknown <= numbers {
            for (t, _) in found {
                if !markers.iter().any(|m| m == t) {
                    markers.push(t.to_owned());
                }
            }
        }
    }
    markers
}

/// A column's type as written in the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    String,
    Bigint,
    Double,
    Boolean,
    /// `format`: `iso8601`, `epoch_seconds`, `epoch_millis` or a chrono pattern;
    /// `zoned`: every value carries its instant (an offset, or an epoch).
    Timestamp {
        format: String,
        zoned: bool,
    },
    Date(String),
    /// A time of day (no naslake type: written as a string unless joined to a date).
    Time(String),
}

impl Kind {
    /// What a value of this kind is, in a comment.
    pub(super) fn noun(&self) -> &'static str {
        match self {
            Kind::Time(_) => "time of day",
            other => other.type_name(),
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Kind::String | Kind::Time(_) => "string",
            Kind::Bigint => "bigint",
            Kind::Double => "double",
            Kind::Boolean => "boolean",
            Kind::Timestamp { .. } => "timestamp",
            Kind::Date(_) => "date",
        }
    }
}

/// Two or more patterns read every sampled value, each differently.
pub(super) struct Ambiguity {
    pub(super) chosen: String,
    pub(super) others: Vec<String>,
    /// Why the chosen one, for the comment.
    pub(super) why: &'static str,
}

/// A column's type, the ambiguity of its pattern (dates and times), and the values
/// that will be rejects (indices into the values typed).
pub(super) struct Typed {
    pub(super) kind: Kind,
    pub(super) ambiguity: Option<Ambiguity>,
    pub(super) rejects: Vec<usize>,
}

impl Typed {
    fn plain(kind: Kind, rejects: Vec<usize>) -> Self {
        Typed {
            kind,
            ambiguity: None,
            rejects,
        }
    }
}

/// How many sampled values of a column may fail to parse as its type: one bad cell
/// (a misread digit, a byte that does not decode) must not make a numeric column
/// `string`, but a column of text with a few numbers in it is still text.
#[derive(Debug, Clone, Copy)]
struct Tolerance {
    /// At most this many values may fail…
    bad: usize,
    /// …and then at least this many must parse.
    good: usize,
}

impl Tolerance {
    const EXACT: Tolerance = Tolerance { bad: 0, good: 0 };

    /// For a column of `n` values: two or 1 %, whichever is more, and 10 that parse.
    fn of(n: usize) -> Self {
        Tolerance {
            bad: (n / 100).max(2),
            good: 10,
        }
    }

    fn allows(self, bad: usize, total: usize) -> bool {
        bad == 0 || (bad <= self.bad && total - bad >= self.good)
    }

    /// The indices of the `values` that `parses` refuses, when they are allowed.
    fn rejects(self, values: &[&str], parses: impl Fn(&str) -> bool) -> Option<Vec<usize>> {
        let mut bad = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if !parses(v) {
                bad.push(i);
                if bad.len() > self.bad {
                    return None;
                }
            }
        }
        self.allows(bad.len(), values.len()).then_some(bad)
    }
}

/// `values` without the ones at `rejects` (ascending indices).
fn except<'a>(values: &[&'a str], rejects: &[usize]) -> Vec<&'a str> {
    let mut skip = rejects.iter().peekable();
    (0..values.len())
        .filter(|i| skip.next_if_eq(&i).is_none())
        .map(|i| values[i])
        .collect()
}

/// The type of a column from its non-NULL values: bigint, double, boolean, ISO-8601
/// timestamp (a date when no value has a time), a strftime timestamp, date or time
/// of day, else string. Integers are epoch timestamps only when the header says time.
/// Every value must parse; a column that would be a string so is typed again with a
/// few values allowed to fail ([`Tolerance::of`]): they will be rejects.
pub(super) fn infer(header: &str, values: &[&str], decimal: u8) -> Typed {
    let exact = infer_with(header, values, decimal, Tolerance::EXACT);
    if exact.kind != Kind::String || values.is_empty() {
        return exact;
    }
    infer_with(header, values, decimal, Tolerance::of(values.len()))
}

/// [`infer`] with the values that may fail to parse as the type.
fn infer_with(header: &str, values: &[&str], decimal: u8, tolerance: Tolerance) -> Typed {
    if values.is_empty() {
        return Typed::plain(Kind::String, Vec::new());
    }
    if let Some(rejects) = tolerance.rejects(values, |v| number(v, decimal).is_some()) {
        let good = except(values, &rejects);
        let integers = good
            .iter()
            .all(|v| number(v, decimal) == Some(Number::Integer));
        let kind = match epoch_format(header, &good).filter(|_| integers) {
            Some(format) => Kind::Timestamp {
                format: format.into(),
                zoned: true,
            },
            None if integers => Kind::Bigint,
            None => Kind::Double,
        };
        return Typed::plain(kind, rejects);
    }
    if let Some(rejects) = tolerance.rejects(values, is_boolean) {
        return Typed::plain(Kind::Boolean, rejects);
    }
    if let Some(rejects) = tolerance.rejects(values, |v| iso8601(v).is_some()) {
        let shapes: Vec<Iso> = except(values, &rejects)
            .iter()
            .filter_map(|v| iso8601(v))
            .collect();
        let kind = if shapes.iter().all(|s| *s == Iso::Date) {
            Kind::Date("%Y-%m-%d".into())
        } else {
            Kind::Timestamp {
                format: "iso8601".into(),
                zoned: shapes.iter().all(|s| *s == Iso::Offset),
            }
        };
        return Typed::plain(kind, rejects);
    }
    // Every pattern below reads a digit first: text columns stop here, cheaply.
    let digit_first = |v: &str| v.starts_with(|c: char| c.is_ascii_digit());
    if tolerance.rejects(values, digit_first).is_none() {
        return Typed::plain(Kind::String, Vec::new());
    }
    let timestamps: Vec<String> = DATE_PATTERNS
        .iter()
        .flat_map(|d| TIME_PATTERNS.iter().map(move |t| format!("{d} {t}")))
        .collect();
    // Timestamps first: a date pattern never reads a value with a time of day.
    let families: [Family; 3] = [
        (timestamps, datetime_millis, |format| Kind::Timestamp {
            format,
            zoned: false,
        }),
        (owned(DATE_PATTERNS), date_millis, Kind::Date),
        (owned(TIME_PATTERNS), time_millis, Kind::Time),
    ];
    for (patterns, parse, kind) in families {
        if let Some((ambiguity, rejects)) = choose_pattern(values, &patterns, parse, tolerance) {
            let kind = kind(ambiguity.chosen.clone());
            let ambiguity = (!ambiguity.others.is_empty()).then_some(ambiguity);
            return Typed {
                kind,
                ambiguity,
                rejects,
            };
        }
    }
    Typed::plain(Kind::String, Vec::new())
}

/// Dates in order of preference when several read every value the same way or
/// nothing tells them apart: year first, then month first with `/` (US) and day
/// first with `.` and `-`.
const DATE_PATTERNS: &[&str] = &[
    "%Y/%m/%d", "%Y-%m-%d", "%Y.%m.%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%d-%m-%Y", "%m-%d-%Y",
    "%m/%d/%y", "%d/%m/%y", "%y/%m/%d", "%d.%m.%y",
];

/// Times of day; a fraction (`%.f`) is optional in chrono, so the plain form comes first.
const TIME_PATTERNS: &[&str] = &[
    "%H:%M:%S",
    "%H:%M:%S%.f",
    "%H:%M",
    "%I:%M:%S %p",
    "%I:%M %p",
];

/// Reads a value with a pattern, as milliseconds (to compare readings).
type Parse = fn(&str, &str) -> Option<i64>;

/// Patterns of one kind, how they read a value, and the type a pattern gives.
type Family = (Vec<String>, Parse, fn(String) -> Kind);

fn owned(patterns: &[&str]) -> Vec<String> {
    patterns.iter().map(|p| (*p).to_owned()).collect()
}

fn datetime_millis(v: &str, pattern: &str) -> Option<i64> {
    let t = NaiveDateTime::parse_from_str(v, pattern).ok()?;
    PLAUSIBLE_YEARS
        .contains(&t.year())
        .then(|| t.and_utc().timestamp_millis())
}

fn date_millis(v: &str, pattern: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(v, pattern).ok()?;
    let plausible = PLAUSIBLE_YEARS.contains(&d.year());
    plausible.then(|| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
}

fn time_millis(v: &str, pattern: &str) -> Option<i64> {
    let t = NaiveTime::parse_from_str(v, pattern).ok()?;
    Some(i64::from(t.num_seconds_from_midnight()) * 1000 + i64::from(t.nanosecond() / 1_000_000))
}

/// Among `patterns` that parse every value (or all but the few `tolerance` allows,
/// and then those that fail on the fewest), the one reading them as the steadiest
/// series (least total change from one value to the next: logs are written in time
/// order, so a day-month swap shows as jumps); then the one whose first year is
/// nearest this year (`24/03/10` is 2024, not 2010: exports are recent); then the
/// earliest. Patterns that read every value as an earlier one does are dropped.
/// Returns the choice and the indices of the values it does not read.
fn choose_pattern(
    values: &[&str],
    patterns: &[String],
    parse: Parse,
    tolerance: Tolerance,
) -> Option<(Ambiguity, Vec<usize>)> {
    let mut readings: Vec<(&String, Vec<Option<i64>>)> = Vec::new();
    for pattern in patterns {
        let Some(read) = read_all(values, pattern, parse, tolerance) else {
            continue;
        };
        if !readings.iter().any(|(_, r)| *r == read) {
            readings.push((pattern, read));
        }
    }
    let failures = |read: &[Option<i64>]| read.iter().filter(|r| r.is_none()).count();
    let fewest = readings.iter().map(|(_, r)| failures(r)).min()?;
    readings.retain(|(_, r)| failures(r) == fewest);
    // A fixed year, not today's, so that the block is the same whenever it is
    // sniffed; loggers' dates are recent.
    let this_year = REFERENCE_YEAR;
    let keys: Vec<(u64, u32)> = readings
        .iter()
        .map(|(_, read)| {
            let read: Vec<i64> = read.iter().flatten().copied().collect();
            let unsteadiness = read
                .windows(2)
                .fold(0u64, |sum, w| sum.saturating_add(w[1].abs_diff(w[0])));
            let year = read
                .first()
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(*ms));
            (
                unsteadiness,
                year.map_or(0, |t| t.year().abs_diff(this_year)),
            )
        })
        .collect();
    let best = (0..readings.len()).min_by_key(|&i| (keys[i], i))?;
    let beats = |pick: fn(&(u64, u32)) -> u64| {
        keys.iter()
            .enumerate()
            .all(|(i, k)| i == best || pick(k) > pick(&keys[best]))
    };
    let why = if beats(|k| k.0) {
        "it reads them as the steadier time series"
    } else if beats(|k| u64::from(k.1)) {
        "its years are the nearest to this one"
    } else {
        "nothing in the sample tells them apart and it comes first in naslake's order \
         (month first with `/`, day first with `.` and `-`)"
    };
    let rejects = (readings[best].1.iter().enumerate())
        .filter(|(_, r)| r.is_none())
        .map(|(i, _)| i)
        .collect();
    let ambiguity = Ambiguity {
        chosen: readings[best].0.clone(),
        others: readings
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != best)
            .map(|(_, r)| r.0.clone())
            .collect(),
        why,
    };
    Some((ambiguity, rejects))
}

/// Each value read with `pattern` (`None` where it does not parse), unless more
/// fail than `tolerance` allows.
fn read_all(
    values: &[&str],
    pattern: &str,
    parse: Parse,
    tolerance: Tolerance,
) -> Option<Vec<Option<i64>>> {
    let mut failed = 0;
    let mut read = Vec::with_capacity(values.len());
    for v in values {
        let r = parse(v, pattern);
        failed += usize::from(r.is_none());
        if failed > tolerance.bad {
            return None;
        }
        read.push(r);
    }
    tolerance.allows(failed, values.len()).then_some(read)
}

/// `epoch_seconds` or `epoch_millis` for integers of a column whose header says
/// time, when every value falls in 2000..2100 in that unit.
fn epoch_format(header: &str, values: &[&str]) -> Option<&'static str> {
    let h = header.to_ascii_lowercase();
    if !["time", "epoch", "unix", "stamp"]
        .iter()
        .any(|w| h.contains(w))
        && h != "ts"
    {
        return None;
    }
    const SECONDS: std::ops::Range<i64> = 946_684_800..4_102_444_800;
    let all_in = |scale: i64| {
        values.iter().all(|v| {
            v.parse::<i64>()
                .is_ok_and(|n| SECONDS.contains(&(n / scale)))
        })
    };
    if all_in(1) {
        Some("epoch_seconds")
    } else if all_in(1000) {
        Some("epoch_millis")
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Iso {
    Date,
    Local,
    Offset,
}

/// What naslake's own ISO-8601 parser ([`super::super::timestamp`], the one runs use)
/// makes of `s`: a date, a wall-clock time, or an instant with an offset.
fn iso8601(s: &str) -> Option<Iso> {
    let iso = super::super::timestamp::parse_iso8601_zoned(
        s.as_bytes(),
        &mut super::super::timestamp::DateCache::default(),
    )
    .ok()?;
    Some(if iso.has_offset {
        Iso::Offset
    } else if s.len() == 10 {
        Iso::Date
    } else {
        Iso::Local
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{columns, comments, csv, encode, sniffed, strings};
    use encoding_rs::{SHIFT_JIS, WINDOWS_1252};

    #[test]
    fn ambiguity_without_evidence_prefers_month_first_then_recent_years() {
        let text = "day;value\n01/02/2024;1\n01/02/2024;2\n";
        let (block, _) = sniffed(text.as_bytes(), "d.csv");
        assert_eq!(
            columns(&block)[0],
            r#"name = "day", type = "date", date_format = "%m/%d/%Y""#
        );
        assert!(
            block.contains(r#""%m/%d/%Y" and "%d/%m/%Y" both read"#)
                && block.contains("nothing in the sample tells them apart"),
            "{block}"
        );
        // 24 March 2010 or 10 March 2024: the recent reading.
        let text = "time,value\n24/03/10 10:00:00,1\n24/03/10 10:00:01,2\n";
        let (block, _) = sniffed(text.as_bytes(), "y.csv");
        assert!(
            block.contains(r#"timestamp_format = "%y/%m/%d %H:%M:%S""#),
            "{block}"
        );
        assert!(
            block.contains("its years are the nearest to this one"),
            "{block}"
        );
    }

    #[test]
    fn an_undecodable_byte_leaves_its_column_double_and_names_the_reject() {
        // GL240-style: a lone Shift_JIS lead byte (0x82) where CH2's value belongs.
        let mut bytes = encode(
            SHIFT_JIS,
            "\"機種\",\"GL240\"\r\n\r\nNo.,日付,時刻,CH1 温度,CH2 湿度\r\n,,,℃,%RH\r\n",
        );
        for i in 1..=14 {
            let ch2 = if i == 9 {
                "\u{1}".to_owned()
            } else {
                format!("54.{i}")
            };
            let line = format!("{i},2024/10/27,07:{i:02}:00,33.{i},{ch2}\r\n");
            bytes.extend(line.bytes().map(|b| if b == 1 { 0x82 } else { b }));
        }
        let (block, t) = sniffed(&bytes, "line3.csv");
        assert_eq!(
            columns(&block)[3],
            r#"name = "ch2", header = "CH2 湿度", type = "double""#
        );
        let notes = comments(&block);
        assert!(
            notes.contains(
                &"1 line of the sample has bytes that are not valid Shift_JIS (line 13): it will be a reject."
            ),
            "{block}"
        );
        assert!(
            notes.contains(
                &r"column `ch2`: 1 sampled value is no double and its line will be a reject: '\x82' (line 13)."
            ),
            "{block}"
        );
        assert!(!csv(&t, "line3").contains_key("null_values"), "{block}");
    }

    #[test]
    fn a_one_off_bad_cell_is_a_reject_and_a_recurring_token_a_null_marker() {
        // EU: `---` (a known marker, once) is NULL; `6.012,5` (a `.` with decimal
        // commas) is a bad cell, not a marker, and the column stays double.
        let mut text = String::from("Zeitstempel;Öltemperatur °C;Druck mbar\r\n");
        for i in 0..20 {
            let druck = match i {
                5 => "---".to_owned(),
                12 => "6.012,5".to_owned(),
                _ => format!("60{i:02},3"),
            };
            text += &format!("27.10.2024 01:{i:02}:00;45,{i};{druck}\r\n");
        }
        let (block, t) = sniffed(&encode(WINDOWS_1252, &text), "press.csv");
        assert_eq!(strings(&csv(&t, "press")["null_values"]), ["", "---"]);
        assert_eq!(
            columns(&block)[2],
            r#"name = "druck_mbar", header = "Druck mbar", type = "double""#
        );
        assert!(
            comments(&block).contains(
                &"column `druck_mbar`: 1 sampled value is no double and its line will be a reject: '6.012,5' (line 14)."
            ),
            "{block}"
        );
        // US: `34O.2` once is a reject; `ERR7` twice is a marker.
        let mut text = String::from("Date/Time,Zone 1 (°F),Zone 2 (°F)\n");
        for i in 0..20 {
            let zone2 = match i {
                3 => "34O.2",
                8 | 15 => "ERR7",
                _ => "347.5",
            };
            text += &format!("3/10/2024 1:{i:02}:00 AM,349.2,{zone2}\n");
        }
        let (block, t) = sniffed(text.as_bytes(), "oven.csv");
        assert_eq!(strings(&csv(&t, "oven")["null_values"]), ["", "ERR7"]);
        assert_eq!(
            columns(&block)[2],
            r#"name = "zone_2_f", header = "Zone 2 (°F)", type = "double""#
        );
        assert!(
            block.contains(
                "1 sampled value is no double and its line will be a reject: '34O.2' (line 5)."
            ),
            "{block}"
        );
    }

    #[test]
    fn bad_cells_are_tolerated_only_when_few_among_many() {
        let file = |bad: &[usize], n: usize| {
            let mut text = String::from("n,v\n");
            for i in 0..n {
                let v = if bad.contains(&i) {
                    format!("x{i}")
                } else {
                    i.to_string()
                };
                text += &format!("{i},{v}\n");
            }
            sniffed(text.as_bytes(), "t.csv").0
        };
        let v_type = |block: &str| columns(block)[1].to_owned();
        // Two bad values among 12: still bigint, both named, their lines given.
        let block = file(&[2, 7], 12);
        assert_eq!(v_type(&block), r#"name = "v", type = "bigint""#);
        assert!(
            block.contains("# column `v`: 2 sampled values are no bigint and their lines will be rejects: 'x2' (line 4), 'x7' (line 9)."),
            "{block}"
        );
        // Three among 12 is more than two (and more than 1 %): text.
        assert_eq!(
            v_type(&file(&[2, 7, 9], 12)),
            r#"name = "v", type = "string""#
        );
        // One among 9: fewer than ten values parse, too few to tell.
        assert_eq!(v_type(&file(&[2], 9)), r#"name = "v", type = "string""#);
        // 1 % of 600 is six; at most three are shown.
        let block = file(&[10, 20, 30, 40, 50, 60], 600);
        assert_eq!(v_type(&block), r#"name = "v", type = "bigint""#);
        assert!(
            block.contains("6 sampled values are no bigint and their lines will be rejects: 'x10' (line 12), 'x20' (line 22), 'x30' (line 32), …"),
            "{block}"
        );
    }
}
