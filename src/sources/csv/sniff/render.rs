//! What the reviewer reads: the TOML block, its `#` comment lines (how the encoding
//! was found, what will be rejected, which patterns were a guess, which time zone to
//! set), and the remarks for standard error.

use encoding_rs::{Encoding, UTF_8};

use super::columns::{Bad, Column};
use super::encoding::Decoded;
use super::layout::{Layout, Table};
use super::values::{Ambiguity, Kind};

/// What the block is made from, besides the columns.
pub(super) struct Found<'a> {
    pub(super) decoded: &'a Decoded,
    /// The sample's lines, as [`sample_lines`](super::layout::sample_lines) cut them.
    pub(super) lines: &'a [&'a str],
    pub(super) layout: &'a Layout,
    pub(super) decimal: u8,
    pub(super) nulls: &'a [String],
}

/// Comment lines on what the reviewer should know: how the encoding was found, what
/// will be rejected, what does not add up.
pub(super) fn notes(found: &Found, table: &Table) -> Vec<String> {
    let (d, layout) = (found.decoded, found.layout);
    let mut out = Vec::new();
    if d.encoding != UTF_8 || d.evidence != "valid UTF-8" {
        out.push(format!("encoding: {} ({}).", label(d.encoding), d.evidence));
    }
    out.extend(malformed_note(found));
    if !layout.repeated_header.is_empty() {
        let n = layout.repeated_header.len();
        out.push(format!(
            "the header is repeated on {} (the logger restarted?): {} a reject.",
            line_list(&layout.repeated_header),
            if n == 1 { "it will be" } else { "each will be" },
        ));
    }
    if layout.misfits > 0 {
        out.push(format!(
            "{} among the data {} another number of fields or {} not fit the columns \
             (a glitch, a repeated preamble?): {}.",
            plural(layout.misfits, "line", "lines"),
            if layout.misfits == 1 { "has" } else { "have" },
            if layout.misfits == 1 { "does" } else { "do" },
            if layout.misfits == 1 {
                "it will be a reject"
            } else {
                "they will be rejects"
            },
        ));
    }
    if layout.footer > 0 {
        out.push(format!(
            "{} at the end of the sample {} another number of fields (a footer?): {}.",
            plural(layout.footer, "line", "lines"),
            if layout.footer == 1 { "has" } else { "have" },
            if layout.footer == 1 {
                "it will be a reject"
            } else {
                "they will be rejects"
            },
        ));
    }
    if layout.header.is_some() && table.header.len() != table.fields {
        out.push(format!(
            "the header has {}, the data lines {}: check the columns.",
            plural(table.header.len(), "field", "fields"),
            table.fields
        ));
    }
    let folded: Vec<String> = table.header.iter().map(|h| h.to_lowercase()).collect();
    for (i, h) in folded.iter().enumerate() {
        if folded[..i].contains(h) {
            out.push(format!(
                "the header names `{h}` twice: naslake cannot tell those columns apart."
            ));
        }
    }
    out
}

/// What becomes of the sampled lines with bytes that do not decode: a header that
/// does not decode rejects every file; a data line is a reject; preamble, units
/// rows and comment lines are skipped whatever they hold, so they go unmentioned.
fn malformed_note(found: &Found) -> Option<String> {
    let (d, layout) = (found.decoded, found.layout);
    let encoding = d.encoding.name();
    if let Some(h) = layout.header.filter(|h| d.malformed_lines.contains(h)) {
        return Some(format!(
            "the header (line {}) has bytes that are not valid {encoding}: naslake rejects \
             a file whose header does not decode; check the encoding.",
            h + 1
        ));
    }
    let data_from = layout
        .header
        .map_or(layout.skip_lines, |h| h + 1 + layout.skip_after_header);
    let is_comment = |i: usize| {
        layout
            .comment
            .is_some_and(|c| found.lines[i].starts_with(c))
    };
    let rejects: Vec<usize> = d
        .malformed_lines
        .iter()
        .copied()
        .filter(|&i| i >= data_from && i < found.lines.len() && !is_comment(i))
        .collect();
    let n = rejects.len();
    (n > 0).then(|| {
        format!(
            "{} of the sample {} bytes that are not valid {encoding} ({}): {}.",
            plural(n, "line", "lines"),
            if n == 1 { "has" } else { "have" },
            line_list(&rejects),
            if n == 1 {
                "it will be a reject"
            } else {
                "they will be rejects"
            },
        )
    })
}

/// A comment naming the values of a column (or of the `part` of the file's columns
/// it is built from) that do not parse as its `kind`, at most three of them.
pub(super) fn rejects_comment(
    column: &str,
    part: Option<&str>,
    kind: &Kind,
    bad: &[Bad],
) -> Option<String> {
    let n = bad.len();
    if n == 0 {
        return None;
    }
    let of = part.map_or(String::new(), |p| format!(" of `{p}`"));
    let shown: Vec<String> = bad
        .iter()
        .take(3)
        .map(|b| format!("'{}' (line {})", shortened(&b.text), b.line + 1))
        .collect();
    let more = if n > 3 { ", …" } else { "" };
    Some(format!(
        "column `{column}`: {}{of} {} no {} and {}: {}{more}.",
        plural(n, "sampled value", "sampled values"),
        if n == 1 { "is" } else { "are" },
        kind.noun(),
        if n == 1 {
            "its line will be a reject"
        } else {
            "their lines will be rejects"
        },
        shown.join(", "),
    ))
}

/// `text`, cut to 40 characters.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

pub(super) fn ambiguity_comment(column: &str, a: &Ambiguity) -> String {
    let patterns: Vec<String> = std::iter::once(&a.chosen)
        .chain(&a.others)
        .map(|p| format!("\"{p}\""))
        .collect();
    let all = if patterns.len() == 2 { "both" } else { "all" };
    format!(
        "column `{column}`: {} {all} read every sampled value, differently; \"{}\" is written \
         because {}. Check it against the logger's settings.",
        patterns.join(" and "),
        a.chosen,
        a.why
    )
}

/// A note for a local-time column whose header names a fixed offset (HOBO writes
/// `Date Time, GMT-05:00`): the IANA zone of that offset.
pub(super) fn offset_note(column: &Column) -> Option<String> {
    if !matches!(column.kind, Kind::Timestamp { zoned: false, .. }) {
        return None;
    }
    let mut headers = column.from.iter().flatten().chain(&column.header);
    let (said, zone) = headers.find_map(|h| header_offset(h))?;
    Some(format!(
        "column `{}`: the header says {said}; if the loggers kept that offset all year, \
         time_zone = \"{zone}\" reads it (POSIX inverts the sign of Etc zones).",
        column.name
    ))
}

/// `GMT-05:00` (`UTC+9`, `GMT+0100`, …) in a header, and the `Etc/GMT…` zone of that
/// whole-hour offset.
pub(super) fn header_offset(header: &str) -> Option<(String, String)> {
    // Upper-casing ASCII keeps every byte position, so `at` indexes both.
    let upper = header.to_ascii_uppercase();
    let at = upper.find("GMT").or_else(|| upper.find("UTC"))?;
    let rest = upper[at + 3..].trim_start();
    let sign = rest.chars().next().filter(|c| matches!(c, '+' | '-'))?;
    let digits: String = rest[1..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .collect();
    let (hours, minutes) = match digits.split_once(':') {
        Some(parts) => parts,
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits.as_str(), "0"),
    };
    // The Etc zones run from Etc/GMT-14 to Etc/GMT+12 (their signs inverted).
    let hours = hours
        .parse::<u8>()
        .ok()
        .filter(|h| *h <= if sign == '+' { 14 } else { 12 })?;
    if minutes.parse::<u8>().ok()? != 0 {
        return None;
    }
    let inverted = if sign == '+' { '-' } else { '+' };
    let zone = if hours == 0 {
        "Etc/GMT".to_owned()
    } else {
        format!("Etc/GMT{inverted}{hours}")
    };
    Some((format!("{}{sign}{digits}", &upper[at..at + 3]), zone))
}

/// `1 line`, `2 lines`.
pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `line 7`, `lines 7, 9, 12`, `lines 7, 9, 12, … (5 in all)`: 1-based, at most three.
fn line_list(lines: &[usize]) -> String {
    let shown: Vec<String> = lines.iter().take(3).map(|i| (i + 1).to_string()).collect();
    let more = if lines.len() > 3 {
        format!(", … ({} in all)", lines.len())
    } else {
        String::new()
    };
    let word = if lines.len() == 1 { "line" } else { "lines" };
    format!("{word} {}{more}", shown.join(", "))
}

/// One line for standard error: what was found.
pub(super) fn summary(file: &str, found: &Found, table: &Table) -> String {
    let layout = found.layout;
    let delimiter = match layout.delimiter {
        b'\t' => "tab".to_owned(),
        d => format!("`{}`", char::from(d)),
    };
    let header = match layout.header {
        Some(h) => format!("header on line {}", h + 1),
        None => "no header line".to_owned(),
    };
    format!(
        "{file}: {}, delimiter {delimiter}, {header} (skip_lines = {}, skip_after_header = {}), \
         {}, {} sampled",
        label(found.decoded.encoding),
        layout.skip_lines,
        layout.skip_after_header,
        plural(table.fields, "column", "columns"),
        plural(table.rows.len(), "data line", "data lines"),
    )
}

/// The WHATWG label naslake's `csv.encoding` takes (encoding_rs names, lower-cased).
pub(super) fn label(encoding: &'static Encoding) -> String {
    encoding.name().to_ascii_lowercase()
}

pub(super) fn render(
    name: &str,
    file_name: &str,
    comments: &[String],
    columns: &[Column],
    found: &Found,
) -> String {
    let key = toml_key(name);
    let mut out: String = comments
        .iter()
        .map(|c| format!("# {}\n", printable(c)))
        .collect();
    out += &format!("[sources.{key}]\nformat = \"csv\"\n");
    if let Some(suffixes) = suffixes_of(file_name) {
        if suffixes.is_empty() {
            out += "# the file name has no suffix: `suffixes = []` reads every file under the prefix.\n";
        }
        out += &format!("suffixes = {}\n", toml_list(&suffixes));
    }
    out += "columns = [\n";
    for c in columns {
        out += &format!("  {{ {} }},\n", column_entry(c).join(", "));
    }
    out += "]\n";
    let csv = csv_keys(found);
    if !csv.is_empty() {
        out += &format!("\n[sources.{key}.csv]\n");
        for (k, v) in csv {
            out += &format!("{k} = {v}\n");
        }
    }
    out
}

fn column_entry(c: &Column) -> Vec<String> {
    let mut parts = vec![format!("name = {}", toml_string(&c.name))];
    if let Some(h) = &c.header {
        parts.push(format!("header = {}", toml_string(h)));
    }
    parts.push(format!("type = \"{}\"", c.kind.type_name()));
    if let Some([a, b]) = &c.from {
        parts.push(format!("from = [{}, {}]", toml_string(a), toml_string(b)));
    }
    match &c.kind {
        Kind::Timestamp { format, .. } => {
            parts.push(format!("timestamp_format = {}", toml_string(format)));
            parts.push("time_zone = \"UTC\"".into());
        }
        Kind::Date(pattern) if pattern != "%Y-%m-%d" => {
            parts.push(format!("date_format = {}", toml_string(pattern)));
        }
        _ => {}
    }
    parts
}

/// The `[sources.NAME.csv]` keys that differ from their defaults, with TOML values.
fn csv_keys(found: &Found) -> Vec<(&'static str, String)> {
    let layout = found.layout;
    let char_value = |b: u8| toml_string(&char::from(b).to_string());
    let mut keys = Vec::new();
    if found.decoded.encoding != UTF_8 {
        keys.push(("encoding", toml_string(&label(found.decoded.encoding))));
    }
    if layout.delimiter != b',' {
        keys.push(("delimiter", char_value(layout.delimiter)));
    }
    if layout.quote != b'"' {
        keys.push(("quote", char_value(layout.quote)));
    }
    if layout.header.is_none() {
        keys.push(("header", "false".into()));
    }
    if layout.skip_lines > 0 {
        keys.push(("skip_lines", layout.skip_lines.to_string()));
    }
    if layout.skip_after_header > 0 {
        keys.push(("skip_after_header", layout.skip_after_header.to_string()));
    }
    if let Some(c) = layout.comment {
        keys.push(("comment", toml_string(c)));
    }
    if found.decimal != b'.' {
        keys.push(("decimal", char_value(found.decimal)));
    }
    if !found.nulls.is_empty() {
        // The list replaces the default `[""]`: keep empty cells NULL.
        let nulls: Vec<String> = std::iter::once(String::new())
            .chain(found.nulls.iter().cloned())
            .collect();
        keys.push(("null_values", toml_list(&nulls)));
    }
    keys
}

/// The suffixes to list: none when `.csv` / `.csv.gz` (the default), else the file's
/// own (lower-cased; naslake compares them case-insensitively), with `.gz` if gzipped.
pub(super) fn suffixes_of(file_name: &str) -> Option<Vec<String>> {
    let base = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(file_name)
        .to_ascii_lowercase();
    let (inner, gz) = match base.strip_suffix(".gz") {
        Some(inner) => (inner, true),
        None => (base.as_str(), false),
    };
    let ext = inner.rfind('.').filter(|&i| i > 0).map(|i| &inner[i..]);
    match (ext, gz) {
        (Some(".csv"), _) => None,
        (Some(ext), false) => Some(vec![ext.to_owned()]),
        (Some(ext), true) => Some(vec![ext.to_owned(), format!("{ext}.gz")]),
        (None, true) => Some(vec![".gz".to_owned()]),
        (None, false) => Some(Vec::new()),
    }
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", items.join(", "))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { s.to_owned() } else { toml_string(s) }
}

/// Text safe on one comment line: control characters become `?`.
pub(super) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::sniff;
    use super::super::test_support::encode;
    use super::*;
    use encoding_rs::SHIFT_JIS;

    #[test]
    fn counts_are_singular_or_plural() {
        assert_eq!(plural(1, "line", "lines"), "1 line");
        assert_eq!(plural(0, "line", "lines"), "0 lines");
        assert_eq!(line_list(&[6]), "line 7");
        assert_eq!(line_list(&[6, 8, 9, 12]), "lines 7, 9, 10, … (4 in all)");
        // Two lines with a byte that does not decode, a footer of one line.
        let mut bytes = encode(SHIFT_JIS, "番号;状態\n");
        for i in 0..12 {
            bytes.extend(encode(SHIFT_JIS, &format!("{i};正常\n")));
        }
        bytes.extend(b"7;\x82\n8;\x82\nEnd\n");
        let s = sniff(&bytes, false, "f.csv", None).expect("sniffs");
        assert!(
            s.block.contains("# 2 lines of the sample have bytes that are not valid Shift_JIS (lines 14, 15): they will be rejects."),
            "{}",
            s.block
        );
        assert!(
            s.block.contains("# 1 line at the end of the sample has another number of fields (a footer?): it will be a reject."),
            "{}",
            s.block
        );
        assert!(
            s.remarks[0].contains("2 columns, 14 data lines sampled"),
            "{:?}",
            s.remarks
        );
    }
}
