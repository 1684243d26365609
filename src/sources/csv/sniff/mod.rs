//! `naslake sniff`: reads the head of a CSV file no one has described yet and writes
//! the `[sources.NAME]` block that reads it, for a person to review and paste into a
//! job spec. DuckDB's sniffer is the model; the difference is that the guess is
//! written down once, with comments on what was unsure, instead of being made again
//! at every run.
//!
//! The rules, in the order they are applied:
//! - Encoding: a byte order mark decides; else valid UTF-8 is UTF-8; else UTF-16 when
//!   most other bytes are NUL; NUL bytes otherwise mean a binary file; else the
//!   candidate whose decoding looks most like text ([`implausibility`]). Bytes that
//!   do not decode are written `\xNN`, as the rejects will show them.
//! - Lines: at most [`MAX_LINES`] physical lines; the partial last line of a truncated
//!   sample is dropped. Lines starting with `#` or `//` take no part in the shape
//!   unless they are half the lines or more.
//! - Delimiter (`,` `;` tab `|`, fields counted with csv-core so that quoted
//!   delimiters do not count): the one whose field count (> 1) stays the same on the
//!   most lines at the end of the sample (the data region; up to two lines with
//!   another count may follow it as a footer, or interrupt it as a glitch); then the
//!   one giving more fields; then tab, `;`, `|`, `,` in that order. The quote is
//!   `"`, or `'` when `"` never occurs and `'` wraps fields.
//! - Header: the first line of the data region whose cells do not fit the kinds of
//!   the columns below (numbers, times, booleans) and are mostly text; lines before
//!   it are the preamble (`skip_lines`, less the comment lines right above the header
//!   when `comment` is set), up to two unfitting lines after it units rows
//!   (`skip_after_header`). When the region starts with data, the header is the
//!   widest text-like line of the three just above it, whatever its field count.
//!   When the header line occurs earlier too (a logger that restarted wrote its
//!   preamble and header again), the first copy is the header and the region starts
//!   there.
//! - Values: [`decimal_separator`], [`null_markers`], then one type per column
//!   ([`infer`]: every value parses, or all but a few bad cells, which the block
//!   names as rejects); a date column next to a time-of-day column becomes one
//!   timestamp built `from` both.
//! - Names: snake_case ASCII, Latin letters with diacritics folded ([`snake_case`]).
//!
//! Time zones are never guessed (none is in the data): timestamps get
//! `time_zone = "UTC"` and a comment asking for the loggers' zone.
//!
//! Each step has its own file: `encoding.rs`; `layout.rs` (lines, delimiter, quote,
//! header, preamble, units rows, comments), which reads cells with `cells.rs`;
//! `values.rs` (decimal separator, NULL markers, types); `columns.rs` (the block's
//! columns, a date column and a time column joined) and `names.rs`; `render.rs` (the
//! block, its comments and the remarks).
//!
//! [`implausibility`]: encoding::implausibility
//! [`decimal_separator`]: values::decimal_separator
//! [`null_markers`]: values::null_markers
//! [`infer`]: values::infer
//! [`snake_case`]: names::snake_case

mod cells;
mod columns;
mod encoding;
mod layout;
mod names;
mod render;
#[cfg(test)]
mod test_support;
mod values;

use std::fmt;

use columns::columns;
use encoding::decode;
use layout::{Table, find_layout, sample_lines};
use names::source_name_of;
use render::{Found, notes, offset_note, plural, printable, render, summary};
use values::{Kind, decimal_separator, null_markers};

/// Physical lines looked at: plenty for the shape and the types, and it keeps the
/// pattern trials (dozens of patterns per column) quick.
pub const MAX_LINES: usize = 2000;

/// What sniffing found: the TOML block for stdout, and remarks for stderr.
pub use crate::sources::sniff::Sniffed;

/// Why a file cannot be sniffed; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniffError(pub String);

impl fmt::Display for SniffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SniffError {}

/// Sniffs `head`, at most the first few MiB of a file (gunzipped); `truncated` says
/// the file goes on after it. `source_name` names the block (default: the file stem).
pub fn sniff(
    head: &[u8],
    truncated: bool,
    file_name: &str,
    source_name: Option<&str>,
) -> Result<Sniffed, SniffError> {
    let file = printable(file_name);
    if head.is_empty() {
        return Err(SniffError(format!(
            "`{file}` is empty: there is nothing to sniff; point `naslake sniff` at a file \
             with a header and data lines"
        )));
    }
    let decoded = decode(head, truncated, &file)?;
    let (lines, more_lines) = sample_lines(&decoded.text);
    if lines.is_empty() {
        return Err(SniffError(format!(
            "no line ends in the first {} bytes of `{file}`; is this CSV?",
            head.len()
        )));
    }
    let layout = find_layout(&lines).ok_or_else(|| {
        SniffError(format!(
            "cannot find a header and data lines with the same number of fields in the first \
             {} lines of `{file}`; is this CSV? (delimiters tried: `,` `;` tab `|`; a file of \
             one column cannot be sniffed, write its block by hand)",
            lines.len()
        ))
    })?;
    let table = Table::read(&lines, &layout);
    if let Some(twice) = header_named_twice(&table.header) {
        let what = if twice.is_empty() {
            "has two empty cells".to_owned()
        } else {
            format!("names `{twice}` twice")
        };
        return Err(SniffError(format!(
            "the header of `{file}` {what} (naslake matches header names \
             case-insensitively, and a file with such a header is rejected); rename one in \
             the export, or read the file with `header = false` and columns in file order"
        )));
    }
    let decimal = decimal_separator(&table.rows, layout.delimiter);
    let nulls = null_markers(&table.rows, decimal);
    let (columns, ambiguities) = columns(&table, decimal, &nulls, layout.header.is_some());
    let found = Found {
        decoded: &decoded,
        lines: &lines,
        layout: &layout,
        decimal,
        nulls: &nulls,
    };
    let name = source_name.map_or_else(|| source_name_of(file_name), str::to_owned);
    let sampled = format!(
        "naslake sniff: {file}: {} {} sampled ({} bytes read, {}).",
        if more_lines { "the first" } else { "all" },
        plural(lines.len(), "line", "lines"),
        head.len(),
        if truncated {
            "the file is longer"
        } else {
            "the whole file"
        },
    );
    let mut notes = notes(&found, &table);
    notes.extend(ambiguities);
    if columns
        .iter()
        .any(|c| matches!(c.kind, Kind::Timestamp { zoned: false, .. }))
    {
        notes.push("time_zone: none is in the data; UTC is written, set the loggers' zone.".into());
    }
    notes.extend(columns.iter().filter_map(offset_note));
    let block = render(
        &name,
        file_name,
        &[&[sampled], &notes[..]].concat(),
        &columns,
        &found,
    );
    let remarks = [vec![summary(&file, &found, &table)], notes].concat();
    Ok(Sniffed { block, remarks })
}

/// A header text two cells share, compared as the reader compares them (trimmed,
/// case-insensitively).
fn header_named_twice(header: &[String]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    header
        .iter()
        .find(|h| !seen.insert(h.trim().to_lowercase()))
        .map(|h| printable(h.trim()))
}

#[cfg(test)]
mod tests {
    use super::test_support::{columns, csv, encode, sniffed, source, strings};
    use super::*;
    use encoding_rs::{SHIFT_JIS, WINDOWS_1252};
    use toml::Table;

    #[test]
    fn japanese_shift_jis_logger() {
        let text = "\"Model\",\"GL240\"\r\n\"Title\",\"Line3\"\r\n\"Trigger\",\"Start\"\r\n\"Sampling\",\"1s\"\r\n\
            日付,時刻,CH1 温度,CH2 湿度,CH3 電圧\r\n,,degC,%RH,V\r\n\
            2024/03/01,10:00:00,23.5,45.2,+OVER\r\n2024/03/01,10:00:01,23.6,45.1,1.25\r\n\
            2024/03/01,10:00:02,23.6,45.0,+OVER\r\n2024/03/01,10:00:03,23.7,44.9,1.31\r\n";
        let (block, t) = sniffed(&encode(SHIFT_JIS, text), "LINE3_EXPORT.TXT");
        let csv = csv(&t, "line3_export");
        assert_eq!(csv["encoding"].as_str(), Some("shift_jis"), "{block}");
        assert_eq!(csv["skip_lines"].as_integer(), Some(4));
        assert_eq!(csv["skip_after_header"].as_integer(), Some(1));
        assert_eq!(strings(&csv["null_values"]), ["", "+OVER"]);
        assert!(
            !csv.contains_key("delimiter") && !csv.contains_key("decimal"),
            "{block}"
        );
        assert_eq!(strings(&source(&t, "line3_export")["suffixes"]), [".txt"]);
        assert_eq!(
            columns(&block),
            [
                r#"name = "timestamp", type = "timestamp", from = ["日付", "時刻"], timestamp_format = "%Y/%m/%d %H:%M:%S", time_zone = "UTC""#,
                r#"name = "ch1", header = "CH1 温度", type = "double""#,
                r#"name = "ch2", header = "CH2 湿度", type = "double""#,
                r#"name = "ch3", header = "CH3 電圧", type = "double""#,
            ]
        );
        assert!(
            block.contains("# time_zone: none is in the data; UTC is written"),
            "{block}"
        );
    }

    #[test]
    fn european_windows_1252_with_decimal_commas() {
        let text = "Gerät:;Testo 176 T4\r\nSeriennummer:;12345678\r\n\r\n\
            Datum/Uhrzeit;Temperatur [°C];Feuchte [%rF];Taupunkt [°C]\r\n\
            27.10.2024 02:30:00;21,5;45,2;9,1\r\n27.10.2024 02:45:00;21,4;45,3;---\r\n\
            27.10.2024 02:00:00;21,4;45,3;9,0\r\n27.10.2024 02:15:00;21,3;45,6;---\r\n";
        let (block, t) = sniffed(&encode(WINDOWS_1252, text), "messung.csv");
        let csv = csv(&t, "messung");
        assert_eq!(csv["encoding"].as_str(), Some("windows-1252"), "{block}");
        assert_eq!(csv["delimiter"].as_str(), Some(";"));
        assert_eq!(csv["decimal"].as_str(), Some(","));
        assert_eq!(csv["skip_lines"].as_integer(), Some(3));
        assert_eq!(strings(&csv["null_values"]), ["", "---"]);
        assert!(!source(&t, "messung").contains_key("suffixes"));
        assert_eq!(
            columns(&block),
            [
                r#"name = "datum_uhrzeit", header = "Datum/Uhrzeit", type = "timestamp", timestamp_format = "%d.%m.%Y %H:%M:%S", time_zone = "UTC""#,
                r#"name = "temperatur_c", header = "Temperatur [°C]", type = "double""#,
                r#"name = "feuchte_rf", header = "Feuchte [%rF]", type = "double""#,
                r#"name = "taupunkt_c", header = "Taupunkt [°C]", type = "double""#,
            ]
        );
    }

    #[test]
    fn us_export_month_first_with_am_pm_and_the_ambiguity_named() {
        let text = "Date Time,Temperature (°F),Humidity (%),Door\n\
            3/9/2024 11:59:59 PM,68.2,40.5,closed\n3/10/2024 1:59:59 AM,68.0,41,open\n\
            3/10/2024 3:00:00 AM,67.9,41,closed\n3/11/2024 12:00:00 AM,67.5,42,closed\n";
        let (block, t) = sniffed(text.as_bytes(), "us.csv");
        assert!(!source(&t, "us").contains_key("csv"), "{block}");
        assert_eq!(
            columns(&block),
            [
                r#"name = "date_time", header = "Date Time", type = "timestamp", timestamp_format = "%m/%d/%Y %I:%M:%S %p", time_zone = "UTC""#,
                r#"name = "temperature_f", header = "Temperature (°F)", type = "double""#,
                r#"name = "humidity", header = "Humidity (%)", type = "double""#,
                r#"name = "door", type = "string""#,
            ]
        );
        assert!(
            block.contains(r#"# column `date_time`: "%m/%d/%Y %I:%M:%S %p" and "%d/%m/%Y %I:%M:%S %p" both read every sampled value"#)
                && block.contains("steadier time series"),
            "{block}"
        );
    }

    #[test]
    fn plain_utf8_iso_csv_gives_a_minimal_block() {
        let text = "time,sensor,value,ok\n2024-03-01T10:00:00Z,a,1.5,true\n2024-03-01T10:00:01Z,b,2,false\n";
        let (block, _) = sniffed(text.as_bytes(), "data/readings.csv.gz");
        assert_eq!(
            block,
            "# naslake sniff: data/readings.csv.gz: all 3 lines sampled (84 bytes read, the whole file).\n\
             [sources.readings]\nformat = \"csv\"\ncolumns = [\n\
             \x20 { name = \"time\", type = \"timestamp\", timestamp_format = \"iso8601\", time_zone = \"UTC\" },\n\
             \x20 { name = \"sensor\", type = \"string\" },\n\
             \x20 { name = \"value\", type = \"double\" },\n\
             \x20 { name = \"ok\", type = \"boolean\" },\n]\n"
        );
    }

    #[test]
    fn truncated_sample_drops_the_partial_line_and_epoch_needs_a_time_header() {
        let text = "epoch_time,count\n1709287200,5\n1709287201,6\n1709287202,7\n17092";
        let s = sniff(text.as_bytes(), true, "e.log", None).expect("sniffs");
        toml::from_str::<Table>(&s.block).expect("TOML");
        assert!(
            s.block.contains("the file is longer") && !s.block.contains("footer"),
            "{}",
            s.block
        );
        assert_eq!(
            columns(&s.block),
            [
                r#"name = "epoch_time", type = "timestamp", timestamp_format = "epoch_seconds", time_zone = "UTC""#,
                r#"name = "count", type = "bigint""#
            ]
        );
    }

    #[test]
    fn unreadable_files_are_clear_errors() {
        let err = |bytes: &[u8]| sniff(bytes, false, "f.csv", None).expect_err("an error").0;
        assert!(err(b"").contains("`f.csv` is empty"));
        assert!(err(b"\n\r\n\n").contains("cannot find a header"));
        assert!(err(b"a,b,c").contains("cannot find a header"));
        assert!(err(b"PK\x03\x04\x00\x00\x08\x00binary").contains("looks binary"));
        let prose = err(b"Dear operator\nthe logger was serviced today\n");
        assert!(prose.contains("cannot find a header and data lines with the same number of fields in the first 2 lines"), "{prose}");
    }

    #[test]
    fn random_bytes_never_panic_and_blocks_are_toml() {
        // xorshift: deterministic, no dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789,,;\t|\"'\n\r #/.:-+aZ \xe3\x81\x82\x83\x40\x93\xfa\xb0\xa1\xfe";
        for _ in 0..1000 {
            let len = next() % 300;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if let Ok(s) = sniff(&bytes, next() % 2 == 0, "f.csv", None) {
                toml::from_str::<Table>(&s.block).unwrap_or_else(|e| panic!("{e}\n{}", s.block));
            }
        }
    }

    #[test]
    fn headers_the_reader_would_refuse_are_not_written() {
        // Two cells named alike: the reader rejects such a file, so sniff says so.
        let err = sniff(b"Temp,TEMP\n1,2\n3,4\n5,6\n", false, "t.csv", None).unwrap_err();
        assert!(err.0.contains("names `TEMP` twice"), "{err}");
        // A date and a time without header names are not joined (`from` names them).
        let mut text = String::from("Date,,v\n");
        for m in 0..12 {
            text.push_str(&format!("2024/03/01,10:{m:02}:00,{m}\n"));
        }
        let (block, _) = sniffed(text.as_bytes(), "t.csv");
        assert!(!block.contains("from = "), "{block}");
    }

    #[test]
    fn cells_are_trimmed_of_ascii_spaces_only_as_the_reader_trims_them() {
        // windows-1252 0xA0 is a no-break space: the reader refuses it in a number.
        let mut bytes = b"id;v\n".to_vec();
        for i in 0..12 {
            bytes.extend_from_slice(format!("{i};\u{a0}{i},5\n").as_bytes());
        }
        let (block, _) = sniffed(&bytes, "t.csv");
        let columns = columns(&block);
        assert!(columns[1].contains("type = \"string\""), "{block}");
    }

    #[test]
    fn an_empty_row_after_the_header_is_a_units_row() {
        let mut text = String::from("Zeit;Temp;Druck\n;;\n");
        for m in 0..12 {
            text.push_str(&format!("01.03.2024 10:{m:02}:00;{m},5;1013\n"));
        }
        let (block, t) = sniffed(text.as_bytes(), "t.csv");
        assert_eq!(
            csv(&t, "t")["skip_after_header"].as_integer(),
            Some(1),
            "{block}"
        );
    }
}
