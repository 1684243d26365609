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

use std::cmp::Reverse;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use encoding_rs::{
    BIG5, DecoderResult, EUC_KR, Encoding, GB18030, SHIFT_JIS, UTF_8, UTF_16BE, UTF_16LE,
    WINDOWS_1252,
};

/// Physical lines looked at: plenty for the shape and the types, and it keeps the
/// pattern trials (dozens of patterns per column) quick.
pub const MAX_LINES: usize = 2000;
/// Lines with another field count allowed at the end of the sample (a footer) and,
/// with [`BRIDGE`] data lines above them, inside the data (a glitch).
const MAX_GAP: usize = 2;
const BRIDGE: usize = 5;
/// Units rows after a header, at most.
const MAX_UNITS_ROWS: usize = 2;
/// Delimiters tried, in the order preferred when two explain the sample equally well:
/// the comma last, because it is the one that also occurs inside values (decimal
/// commas) and so can look consistent by accident.
const DELIMITERS: [u8; 4] = [b'\t', b';', b'|', b','];
/// Cell texts that mean "no value" in logger exports; found in a numeric column they
/// are NULL markers even when they occur once.
const KNOWN_NULLS: &[&str] = &[
    "+OVER", "-OVER", "OVER", "BURNOUT", "B.OUT", "NaN", "nan", "NAN", "N/A", "n/a", "#N/A", "NA",
    "null", "NULL", "None", "---", "--", "-", "*", "ERR", "Error", "ERROR", "inf", "-inf", "Inf",
    "-Inf", "INF", "-INF", "OL", "+OL", "-OL",
];
/// Years a logger's dates may plausibly have; keeps `%Y` from reading `24` as year 24.
const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// What sniffing found: the TOML block for stdout, and remarks for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub block: String,
    pub remarks: Vec<String>,
}

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

// ---------------------------------------------------------------------------
// Encoding

/// The sample as text, and how its encoding was found.
struct Decoded {
    encoding: &'static Encoding,
    text: String,
    evidence: &'static str,
    /// Byte sequences that did not decode (written `\xNN` in `text`, as the rejects
    /// row shows them).
    malformed: usize,
    /// The lines (0-based) holding them: rejects at run time, if they are data.
    malformed_lines: Vec<usize>,
}

/// Tried in this order when the sample is not UTF-8; on equal plausibility the
/// earlier wins. EUC-KR comes before GB18030 because Korean bytes decode as GB18030
/// to equally tidy (but wrong) Chinese, while Chinese decodes as EUC-KR to a tell-tale
/// mix of Hangul and Hanja; likewise Japanese decodes as GB18030 to tidy Chinese.
const CANDIDATES: [&Encoding; 6] = [UTF_8, SHIFT_JIS, WINDOWS_1252, EUC_KR, GB18030, BIG5];

fn decode(head: &[u8], truncated: bool, file: &str) -> Result<Decoded, SniffError> {
    if let Some((encoding, bom)) = Encoding::for_bom(head) {
        return Ok(decode_as(
            encoding,
            &head[bom..],
            truncated,
            "a byte order mark",
        ));
    }
    if let Some(encoding) = utf16_by_nul_pattern(head) {
        let evidence = "UTF-16 without a byte order mark: every other byte is NUL";
        return Ok(decode_as(encoding, head, truncated, evidence));
    }
    if let Some(at) = memchr::memchr(0, head) {
        return Err(SniffError(format!(
            "`{file}` looks binary (a NUL byte at offset {at}) and is not UTF-16 text; \
             `naslake sniff` reads CSV text files (gzipped ones too)"
        )));
    }
    match std::str::from_utf8(head) {
        Ok(_) => return Ok(decode_as(UTF_8, head, truncated, "valid UTF-8")),
        // A sample cut in the middle of a character is still UTF-8.
        Err(e) if truncated && e.error_len().is_none() => {
            return Ok(decode_as(UTF_8, head, truncated, "valid UTF-8"));
        }
        Err(_) => {}
    }
    let evidence = "not UTF-8; of utf-8, shift_jis, windows-1252, euc-kr, gb18030 and big5 \
                    it decodes most plausibly";
    // A sequence that does not decode costs what a replacement character would.
    let score = |d: &Decoded| implausibility(&d.text) + 10 * d.malformed;
    let mut best = decode_as(CANDIDATES[0], head, truncated, evidence);
    let mut best_score = score(&best);
    for encoding in &CANDIDATES[1..] {
        let candidate = decode_as(encoding, head, truncated, evidence);
        let score = score(&candidate);
        if score < best_score {
            (best, best_score) = (candidate, score);
        }
    }
    Ok(best)
}

fn decode_as(
    encoding: &'static Encoding,
    bytes: &[u8],
    truncated: bool,
    evidence: &'static str,
) -> Decoded {
    let (mut text, mut malformed_at) = decode_escaped(encoding, bytes);
    if truncated {
        // The sample ends inside a line: drop that partial line, and with it any
        // character cut in two.
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        malformed_at.retain(|&at| at < text.len());
    }
    // The positions ascend: count line ends once, from one position to the next.
    let (mut line, mut from) = (0, 0);
    let mut malformed_lines: Vec<usize> = malformed_at
        .iter()
        .map(|&at| {
            line += memchr::memchr_iter(b'\n', &text.as_bytes()[from..at]).count();
            from = at;
            line
        })
        .collect();
    malformed_lines.dedup();
    Decoded {
        encoding,
        text,
        evidence,
        malformed: malformed_at.len(),
        malformed_lines,
    }
}

/// `bytes` decoded, with every byte of a sequence that does not decode written
/// `\xNN` (upper-case hex), the way the rejects row's `raw_line` shows it, so that
/// comments name such a value as the rejects will; and where in the text each such
/// sequence starts.
fn decode_escaped(encoding: &'static Encoding, bytes: &[u8]) -> (String, Vec<usize>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut decoder = encoding.new_decoder_without_bom_handling();
    // Into bytes, not a `String`: `decode_to_string*` zeroes the string's spare
    // room on every call, and a wrong candidate encoding stops at every other byte.
    let room = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len() * 3);
    let mut out = vec![0u8; room + 64];
    let (mut read, mut written, mut malformed_at) = (0, 0, Vec::new());
    loop {
        let (result, n, m) =
            decoder.decode_to_utf8_without_replacement(&bytes[read..], &mut out[written..], true);
        read += n;
        written += m;
        match result {
            DecoderResult::InputEmpty => break,
            DecoderResult::OutputFull => out.resize(out.len() * 2, 0),
            DecoderResult::Malformed(len, after) => {
                // The sequence ends `after` bytes before what has been read.
                let end = read.saturating_sub(usize::from(after));
                let start = end.saturating_sub(usize::from(len));
                if out.len() < written + 4 * (end - start) {
                    out.resize(out.len() * 2 + 4 * (end - start), 0);
                }
                malformed_at.push(written);
                for &b in &bytes[start..end] {
                    let escape = [
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xF)],
                    ];
                    out[written..written + 4].copy_from_slice(&escape);
                    written += 4;
                }
            }
        }
    }
    out.truncate(written);
    // The decoder writes UTF-8 and the escapes are ASCII: this never replaces anything.
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    (text, malformed_at)
}

/// UTF-16 without a byte order mark: CSV text is mostly ASCII, whose UTF-16 code
/// units have a NUL high byte, so NULs fill one of the two byte positions.
fn utf16_by_nul_pattern(head: &[u8]) -> Option<&'static Encoding> {
    let sample = &head[..head.len().min(4096) & !1];
    let units = sample.len() / 2;
    if units < 2 {
        return None;
    }
    let nuls_at = |start: usize| {
        sample
            .iter()
            .skip(start)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (nuls_at(0), nuls_at(1));
    if odd * 2 > units && even * 10 < units {
        Some(UTF_16LE)
    } else if even * 2 > units && odd * 10 < units {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// What a non-ASCII character is, for judging whether a decoding is plausible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    Latin,
    GreekCyrillic,
    /// Han, kana, CJK punctuation and full-width forms: one class, because Japanese
    /// mixes them within a word.
    Cjk,
    HalfwidthKana,
    Hangul,
    Symbol,
}

/// How implausible a decoded text is; lower is better. Wrong decodings of real text
/// leave traces that right ones do not:
/// - characters that did not decode (10 each); C1 controls and private-use
///   characters (4 each), which windows-1252 gives for Shift_JIS lead bytes and the
///   CJK decoders for the user-defined rows;
/// - runs of adjacent non-ASCII characters that mix scripts, e.g. Hangul with Han
///   (Chinese read as EUC-KR) or accented letters with symbols (CJK read as
///   windows-1252), 1 per extra script; symbols inside a run and three accented
///   letters in a row count 1 more;
/// - a lone CJK, Hangul or Greek character right after an ASCII letter (`Ger楽:`
///   from `Gerät:`: Western text read as a CJK encoding), a lone symbol between ASCII
///   letters (`ƒeƒX`), a lone or punctuation-laden half-width katakana run (`[ｰC]`
///   from `[°C]`, `ｽﾃｰ｣` from Korean), 1 each.
fn implausibility(text: &str) -> usize {
    let mut score = 0;
    let mut run: Vec<(Script, char)> = Vec::new();
    let mut before = ' ';
    for c in text.chars() {
        if c.is_ascii() {
            score += run_penalty(&run, before, c);
            run.clear();
            before = c;
            continue;
        }
        match u32::from(c) {
            0xFFFD => score += 10,
            0x80..=0x9F | 0xE000..=0xF8FF | 0xFFF0..=0xFFFF => score += 4,
            _ => run.push((script(c), c)),
        }
    }
    score + run_penalty(&run, before, ' ')
}

fn script(c: char) -> Script {
    match u32::from(c) {
        0xD7 | 0xF7 | 0x192 => Script::Symbol, // ×, ÷, ƒ
        0xC0..=0x24F => Script::Latin,
        0x370..=0x52F => Script::GreekCyrillic,
        0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Script::Hangul,
        0xFF61..=0xFF9F => Script::HalfwidthKana,
        0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFF60 | 0xFFE0..=0xFFEF | 0x20000.. => {
            Script::Cjk
        }
        _ => Script::Symbol,
    }
}

fn run_penalty(run: &[(Script, char)], before: char, after: char) -> usize {
    let Some(&(first, first_char)) = run.first() else {
        return 0;
    };
    let mut scripts: Vec<Script> = run.iter().map(|(s, _)| *s).collect();
    scripts.sort();
    scripts.dedup();
    let mut penalty = scripts.len() - 1;
    if run.len() >= 2 && scripts.contains(&Script::Symbol) {
        penalty += 1;
    }
    if run.len() >= 3 && scripts == [Script::Latin] {
        penalty += 1;
    }
    // A lone character glued to an ASCII word: Western text read as a CJK encoding
    // (`Gerät` as `Ger楽:`), CJK read as windows-1252 (`ƒeƒX`). Symbols (`m²`) and
    // accented letters are at home there.
    let after_letter = before.is_ascii_alphabetic();
    let glued = match first {
        Script::Latin => false,
        Script::Symbol => after_letter && after.is_ascii_alphabetic(),
        Script::HalfwidthKana => true,
        _ => after_letter,
    };
    if run.len() == 1 && glued {
        penalty += 1;
    }
    // Half-width punctuation (｡｢｣､･) inside a kana run, or a run that starts with a
    // sound mark (ｰﾞﾟ), which can only follow a kana.
    let kana_punct = |c: char| ('\u{FF61}'..='\u{FF65}').contains(&c);
    if first == Script::HalfwidthKana
        && (matches!(first_char, '\u{FF70}' | '\u{FF9E}' | '\u{FF9F}')
            || run.iter().skip(1).any(|(_, c)| kana_punct(*c)))
    {
        penalty += 1;
    }
    penalty
}

/// The sample's physical lines without their line ends, at most [`MAX_LINES`], and
/// whether the sample had more.
fn sample_lines(text: &str) -> (Vec<&str>, bool) {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return (Vec::new(), false);
    }
    let mut all = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let lines: Vec<&str> = all.by_ref().take(MAX_LINES).collect();
    (lines, all.next().is_some())
}

// ---------------------------------------------------------------------------
// Layout: delimiter, quote, preamble, header, units rows

/// Where things are in the sample, by physical line index (0 = the file's first line).
struct Layout {
    delimiter: u8,
    quote: u8,
    /// Set when comment lines occur after the header, where only `csv.comment` skips them.
    comment: Option<&'static str>,
    header: Option<usize>,
    /// Physical lines before the header (before the first data line without one),
    /// less the comment lines right above it when `comment` is set.
    skip_lines: usize,
    /// Physical lines from the header to the last units row, 0 without units rows.
    skip_after_header: usize,
    /// The data lines sampled.
    data: Vec<usize>,
    /// Lines at the end that break the data's field count.
    footer: usize,
    /// Lines inside the data that do not fit it (another field count, a glitch).
    misfits: usize,
    /// Lines inside the data that repeat the header (a logger restart).
    repeated_header: Vec<usize>,
}

/// The lines with the data's field count at the end of the sample (the data region).
struct Run {
    lines: Vec<usize>,
    fields: usize,
    footer: usize,
    /// Lines with another field count inside the run, left out of `lines`.
    stepped_over: usize,
}

/// The layout of the sample, `None` when no two lines share a field count above 1.
fn find_layout(lines: &[&str]) -> Option<Layout> {
    let comment = comment_candidate(lines);
    let takes_part: Vec<bool> = lines
        .iter()
        .map(|l| !l.trim().is_empty() && !comment.is_some_and(|c| l.starts_with(c)))
        .collect();
    let quote = choose_quote(lines);
    let (delimiter, mut run) = choose_delimiter(lines, &takes_part, quote)?;
    let cells = |i: usize| split_line(lines[i], delimiter, quote);
    let mut region = Region::read(&run, &takes_part, &cells);
    if let Some(first) = region.header.and_then(|h| first_copy(lines, h)) {
        extend_run(&mut run, first, &takes_part, &cells);
        region = Region::read(&run, &takes_part, &cells);
    }
    let Region {
        rows,
        kinds,
        header,
        data_from,
    } = region;
    let first_data = *run.lines.get(data_from)?;
    let (data, misfits): (Vec<(usize, &Vec<String>)>, Vec<_>) = run.lines[data_from..]
        .iter()
        .copied()
        .zip(&rows[data_from..])
        .partition(|(_, r)| fits_data(r, &kinds));
    let data: Vec<usize> = data.into_iter().map(|(i, _)| i).collect();
    if data.is_empty() {
        return None;
    }
    let (repeated_header, misfits): (Vec<usize>, Vec<usize>) = misfits
        .into_iter()
        .map(|(i, _)| i)
        .partition(|&i| header.is_some_and(|h| lines[i].trim() == lines[h].trim()));
    let skip_after_header = header.map_or(0, |h| {
        let last_units = (h + 1..first_data).rev().find(|&i| takes_part[i]);
        last_units.map_or(0, |u| u - h)
    });
    let header_at = header.unwrap_or(first_data);
    let comment = comment.filter(|c| lines[header_at..].iter().any(|l| l.starts_with(c)));
    Some(Layout {
        delimiter,
        quote,
        comment,
        header,
        skip_lines: preamble_to_skip(&lines[..header_at], comment),
        skip_after_header,
        data,
        footer: run.footer,
        misfits: run.stepped_over + misfits.len(),
        repeated_header,
    })
}

/// A data region cut into header, units rows and data.
struct Region {
    /// The cells of each line of the run.
    rows: Vec<Vec<String>>,
    /// The rough kind of each column, from the second half of the run.
    kinds: Vec<Rough>,
    header: Option<usize>,
    /// The index in the run of the first data line.
    data_from: usize,
}

impl Region {
    fn read(run: &Run, takes_part: &[bool], cells: &dyn Fn(usize) -> Vec<String>) -> Self {
        let rows: Vec<Vec<String>> = run.lines.iter().map(|&i| cells(i)).collect();
        let kinds = column_kinds(&rows[rows.len() / 2..], run.fields);
        let (header, data_from) = place_header(run, &rows, &kinds, takes_part, cells);
        Region {
            rows,
            kinds,
            header,
            data_from,
        }
    }
}

/// The first line with the text of line `h`, when that is an earlier one: a logger
/// that restarts writes its preamble and header again, and the data region, read
/// up from the end, then starts at the last copy. The first is the file's header.
fn first_copy(lines: &[&str], h: usize) -> Option<usize> {
    lines[..h].iter().position(|l| l.trim() == lines[h].trim())
}

/// Makes `run` start at line `first`: the lines from there to the run that take
/// part join it when they have its field count, and are stepped over otherwise
/// (a repeated preamble: rejects at run time).
fn extend_run(
    run: &mut Run,
    first: usize,
    takes_part: &[bool],
    cells: &dyn Fn(usize) -> Vec<String>,
) {
    let start = run.lines[0];
    let (joining, stepped): (Vec<usize>, Vec<usize>) = (first..start)
        .filter(|&i| takes_part[i])
        .partition(|&i| cells(i).len() == run.fields);
    run.stepped_over += stepped.len();
    run.lines.splice(0..0, joining);
}

/// `skip_lines`: the lines before the header, except that with a `comment` prefix
/// the comment lines right above the header need no counting (the reader skips
/// comment lines before the header, after `skip_lines`).
fn preamble_to_skip(preamble: &[&str], comment: Option<&str>) -> usize {
    let Some(prefix) = comment else {
        return preamble.len();
    };
    preamble
        .iter()
        .rposition(|l| !l.starts_with(prefix))
        .map_or(0, |i| i + 1)
}

/// The delimiter whose data region is longest (then: more fields, then the order
/// of [`DELIMITERS`]), and that region.
fn choose_delimiter(lines: &[&str], takes_part: &[bool], quote: u8) -> Option<(u8, Run)> {
    DELIMITERS
        .iter()
        .enumerate()
        .filter_map(|(rank, &d)| {
            let counts: Vec<Option<usize>> = lines
                .iter()
                .zip(takes_part)
                .map(|(l, &part)| part.then(|| split_line(l, d, quote).len()))
                .collect();
            data_run(&counts).map(|run| (rank, d, run))
        })
        .max_by_key(|(rank, _, run)| (run.lines.len(), run.fields, Reverse(*rank)))
        .map(|(_, d, run)| (d, run))
}

/// The header line (`None` when the file has none) and the index in `run` of the
/// first data line. The region's leading lines that do not fit the column `kinds` are
/// the header and its units rows; more than three, and the first are preamble that
/// happens to have the data's field count. A region that starts with data may have
/// its header just above it.
fn place_header(
    run: &Run,
    rows: &[Vec<String>],
    kinds: &[Rough],
    takes_part: &[bool],
    cells: &dyn Fn(usize) -> Vec<String>,
) -> (Option<usize>, usize) {
    let not_data = rows.iter().take_while(|r| !fits_data(r, kinds)).count();
    // At least one line of the region is data, whatever the kinds say.
    let not_data = not_data.min(rows.len() - 1);
    if not_data > 0 {
        let first = not_data.saturating_sub(1 + MAX_UNITS_ROWS);
        let h = (first..not_data)
            .find(|&k| looks_like_header(&rows[k]))
            .unwrap_or(first);
        return (Some(run.lines[h]), not_data);
    }
    match header_above(takes_part, run.lines[0], cells) {
        Some(h) => (Some(h), 0),
        // All-text columns: the header looks like data, take the first line.
        None if kinds.iter().all(|k| *k == Rough::Text) => (Some(run.lines[0]), 1),
        None => (None, 0),
    }
}

/// `#` or `//` when some lines start with it, but fewer than half (more would be
/// data that happens to start so).
fn comment_candidate(lines: &[&str]) -> Option<&'static str> {
    let non_blank = lines.iter().filter(|l| !l.trim().is_empty()).count();
    ["#", "//"]
        .into_iter()
        .map(|p| (p, lines.iter().filter(|l| l.starts_with(p)).count()))
        .filter(|&(_, n)| n > 0 && n * 2 < non_blank)
        .max_by_key(|&(_, n)| n)
        .map(|(p, _)| p)
}

/// `"`, unless it never occurs and at least two lines have fields wrapped in `'`.
fn choose_quote(lines: &[&str]) -> u8 {
    if lines.iter().any(|l| l.contains('"')) {
        return b'"';
    }
    let wrapped = |l: &&&str| {
        let l = l.trim();
        l.len() >= 2 && l.starts_with('\'') && l.ends_with('\'')
            || DELIMITERS
                .iter()
                .any(|&d| l.contains(&format!("{}'", d as char)))
    };
    if lines.iter().filter(wrapped).count() >= 2 {
        b'\''
    } else {
        b'"'
    }
}

/// The data region, read upwards from the last line that takes part (`Some`): the
/// lines with its field count (> 1). A stretch of up to [`MAX_GAP`] lines with
/// another count is stepped over when [`BRIDGE`] lines with the count lie right
/// above it (a glitch inside the data; a preamble has no data above it); up to
/// [`MAX_GAP`] lines at the very end may be a footer. The longest region wins.
fn data_run(counts: &[Option<usize>]) -> Option<Run> {
    let counted: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .collect();
    if counted.is_empty() {
        return None;
    }
    let mut best: Option<Run> = None;
    for footer in 0..=MAX_GAP.min(counted.len().saturating_sub(1)) {
        let end = counted.len() - footer;
        let fields = counted[end - 1].1;
        let (mut lines, mut stepped_over) = (Vec::new(), 0);
        let mut k = end;
        while fields > 1 && k > 0 {
            let gap = counted[..k]
                .iter()
                .rev()
                .take_while(|(_, c)| *c != fields)
                .count();
            let above = counted[..k - gap].iter().rev().take(BRIDGE);
            if gap > 0 && (gap > MAX_GAP || above.filter(|(_, c)| *c == fields).count() < BRIDGE) {
                break;
            }
            stepped_over += gap;
            k -= gap;
            lines.push(counted[k - 1].0);
            k -= 1;
        }
        lines.reverse();
        if lines.len() >= 2 && best.as_ref().is_none_or(|b| lines.len() > b.lines.len()) {
            best = Some(Run {
                lines,
                fields,
                footer,
                stepped_over,
            });
        }
    }
    best
}

/// A header just above a data region that starts with data: among the three lines
/// that take part above it (units rows may lie between, with another field count),
/// the widest that looks like a header, the upper one on ties.
fn header_above(
    takes_part: &[bool],
    first_data: usize,
    cells: &dyn Fn(usize) -> Vec<String>,
) -> Option<usize> {
    (0..first_data)
        .rev()
        .filter(|&i| takes_part[i])
        .take(1 + MAX_UNITS_ROWS)
        .map(|i| (i, cells(i)))
        .filter(|(_, c)| c.len() > 1 && looks_like_header(c))
        .max_by_key(|(i, c)| (c.len(), Reverse(*i)))
        .map(|(i, _)| i)
}

/// The fields of one line, unquoted and trimmed, as csv-core reads them.
fn split_line(line: &str, delimiter: u8, quote: u8) -> Vec<String> {
    let mut reader = csv_core::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(quote)
        .build();
    let input = line.as_bytes();
    let mut out = vec![0u8; input.len() + 1];
    let mut ends = vec![0usize; input.len() + 2];
    let (mut pos_in, mut pos_out, mut n_ends) = (0, 0, 0);
    loop {
        let (result, nin, nout, nend) =
            reader.read_record(&input[pos_in..], &mut out[pos_out..], &mut ends[n_ends..]);
        pos_in += nin;
        pos_out += nout;
        n_ends += nend;
        // An empty input tells csv-core the record ended; it answers with the record.
        if result != csv_core::ReadRecordResult::InputEmpty {
            break;
        }
    }
    let mut start = 0;
    ends[..n_ends]
        .iter()
        .map(|&end| {
            // Fields of valid UTF-8 split at ASCII bytes are valid UTF-8.
            let field = String::from_utf8_lossy(&out[start..end]).trim().to_owned();
            start = end;
            field
        })
        .collect()
}

/// A cell's rough kind, for telling header and units rows from data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rough {
    Empty,
    Number,
    Temporal,
    Boolean,
    Text,
}

fn rough(cell: &str) -> Rough {
    if cell.is_empty() {
        Rough::Empty
    } else if number(cell, b'.').is_some() || number(cell, b',').is_some() {
        Rough::Number
    } else if is_boolean(cell) {
        Rough::Boolean
    } else if looks_temporal(cell) {
        Rough::Temporal
    } else {
        Rough::Text
    }
}

/// Starts with a digit, has a time (`:`) or two date separators, and nothing else
/// than what dates and times are written with.
fn looks_temporal(cell: &str) -> bool {
    let separators = cell
        .chars()
        .filter(|c| matches!(c, '/' | '-' | '.'))
        .count();
    cell.starts_with(|c: char| c.is_ascii_digit())
        && (cell.contains(':') || separators >= 2)
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || " :/-.,TtZz+APMapm".contains(c))
}

/// Each column's most frequent rough kind among `rows` (known NULL markers and empty
/// cells left out; ties go to the non-text kind); `Text` when nothing tells.
fn column_kinds(rows: &[Vec<String>], fields: usize) -> Vec<Rough> {
    const KINDS: [Rough; 4] = [Rough::Number, Rough::Temporal, Rough::Boolean, Rough::Text];
    (0..fields)
        .map(|i| {
            let mut counts = [0usize; 4];
            for cell in rows.iter().filter_map(|r| r.get(i)) {
                if let Some(k) = KINDS.iter().position(|k| *k == rough(cell))
                    && !KNOWN_NULLS.contains(&cell.as_str())
                {
                    counts[k] += 1;
                }
            }
            let best = (0..4).max_by_key(|&k| (counts[k], Reverse(k))).unwrap_or(3);
            if counts[best] == 0 {
                Rough::Text
            } else {
                KINDS[best]
            }
        })
        .collect()
}

/// A line is data unless more of its cells in typed columns misfit than fit.
fn fits_data(cells: &[String], kinds: &[Rough]) -> bool {
    let (mut fit, mut misfit) = (0, 0);
    for (cell, kind) in cells.iter().zip(kinds) {
        if *kind == Rough::Text || cell.is_empty() {
            continue;
        }
        if rough(cell) == *kind || KNOWN_NULLS.contains(&cell.as_str()) {
            fit += 1;
        } else {
            misfit += 1;
        }
    }
    misfit <= fit
}

/// More text cells than numbers, times and booleans.
fn looks_like_header(cells: &[String]) -> bool {
    let text = cells.iter().filter(|c| rough(c) == Rough::Text).count();
    let other = cells
        .iter()
        .filter(|c| !matches!(rough(c), Rough::Text | Rough::Empty))
        .count();
    text > other
}

// ---------------------------------------------------------------------------
// Values: decimal separator, NULL markers, column types

/// The header cells (none without a header line) and the data rows, cut by the layout.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Each row's line in the file (0-based).
    lines: Vec<usize>,
    fields: usize,
}

impl Table {
    fn read(lines: &[&str], layout: &Layout) -> Self {
        let split = |i: usize| split_line(lines[i], layout.delimiter, layout.quote);
        let rows: Vec<Vec<String>> = layout.data.iter().map(|&i| split(i)).collect();
        let fields = rows.first().map_or(0, Vec::len);
        let header = layout.header.map(split).unwrap_or_default();
        Table {
            header,
            rows,
            lines: layout.data.clone(),
            fields,
        }
    }

    /// The cells of column `i`, each with its line.
    fn column(&self, i: usize) -> impl Iterator<Item = (usize, &str)> {
        self.rows
            .iter()
            .zip(&self.lines)
            .filter_map(move |(r, &line)| Some((line, r.get(i)?.as_str())))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Integer,
    Real,
}

/// A number as the reader converts it: `[+-]digits[<decimal>digits][e[+-]digits]`
/// (digits on at least one side of the decimal separator); `Integer` when it has
/// neither separator nor exponent and fits an i64.
fn number(s: &str, decimal: u8) -> Option<Number> {
    let b = s.as_bytes();
    let digits_from = |i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let whole = digits_from(i);
    i += whole;
    let mut fraction = 0;
    let point = b.get(i) == Some(&decimal);
    if point {
        fraction = digits_from(i + 1);
        i += 1 + fraction;
    }
    if whole + fraction == 0 {
        return None;
    }
    let exponent = matches!(b.get(i), Some(b'e' | b'E'));
    if exponent {
        i += 1 + usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let digits = digits_from(i);
        if digits == 0 {
            return None;
        }
        i += digits;
    }
    if i != b.len() {
        return None;
    }
    let integer = !point && !exponent && s.parse::<i64>().is_ok();
    Some(if integer {
        Number::Integer
    } else {
        Number::Real
    })
}

fn is_boolean(s: &str) -> bool {
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
}

/// `,` when the delimiter is not a comma and more number-like cells read with a
/// decimal comma (`12,5`) than with a decimal point (`12.5`).
fn decimal_separator(rows: &[Vec<String>], delimiter: u8) -> u8 {
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
fn null_markers(rows: &[Vec<String>], decimal: u8) -> Vec<String> {
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
enum Kind {
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
    fn noun(&self) -> &'static str {
        match self {
            Kind::Time(_) => "time of day",
            other => other.type_name(),
        }
    }

    fn type_name(&self) -> &'static str {
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
struct Ambiguity {
    chosen: String,
    others: Vec<String>,
    /// Why the chosen one, for the comment.
    why: &'static str,
}

/// A column's type, the ambiguity of its pattern (dates and times), and the values
/// that will be rejects (indices into the values typed).
struct Typed {
    kind: Kind,
    ambiguity: Option<Ambiguity>,
    rejects: Vec<usize>,
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
fn infer(header: &str, values: &[&str], decimal: u8) -> Typed {
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
    let this_year = chrono::Utc::now().year();
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

/// What naslake's own ISO-8601 parser ([`super::timestamp`], the one runs use)
/// makes of `s`: a date, a wall-clock time, or an instant with an offset.
fn iso8601(s: &str) -> Option<Iso> {
    let iso = super::timestamp::parse_iso8601_zoned(
        s.as_bytes(),
        &mut super::timestamp::DateCache::default(),
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

// ---------------------------------------------------------------------------
// Columns: names, types, date + time joined

/// One entry of `columns = [...]`.
struct Column {
    name: String,
    /// The header text when it differs from the name (after trimming, case folded).
    header: Option<String>,
    /// The header texts a timestamp is built from (a date and a time column).
    from: Option<[String; 2]>,
    kind: Kind,
}

/// The columns, and `#` comment lines for the ambiguous patterns.
fn columns(
    table: &Table,
    decimal: u8,
    nulls: &[String],
    has_header: bool,
) -> (Vec<Column>, Vec<String>) {
    let headers: Vec<String> = (0..table.fields)
        .map(|i| table.header.get(i).cloned().unwrap_or_default())
        .collect();
    let names = column_names(&headers, has_header);
    let (typed, bad): (Vec<Typed>, Vec<Vec<Bad>>) = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (lines, values): (Vec<usize>, Vec<&str>) = table
                .column(i)
                .filter(|(_, v)| !v.is_empty() && !nulls.iter().any(|n| n == v))
                .unzip();
            let typed = infer(h, &values, decimal);
            let bad = (typed.rejects.iter())
                .map(|&k| Bad {
                    text: values[k].to_owned(),
                    line: lines[k],
                })
                .collect();
            (typed, bad)
        })
        .unzip();
    let mut taken = names.clone();
    let (mut columns, mut comments) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < typed.len() {
        let joined = typed
            .get(i + 1)
            .filter(|_| has_header)
            .and_then(|next| date_and_time(&typed[i].kind, &next.kind));
        if let Some(pattern) = joined {
            let name = joined_name(&names, i, &mut taken);
            for a in typed[i..i + 2].iter().filter_map(|t| t.ambiguity.as_ref()) {
                comments.push(ambiguity_comment(&name, a));
            }
            for k in [i, i + 1] {
                let part = Some(headers[k].as_str());
                comments.extend(rejects_comment(&name, part, &typed[k].kind, &bad[k]));
            }
            columns.push(Column {
                name,
                header: None,
                from: Some([headers[i].clone(), headers[i + 1].clone()]),
                kind: Kind::Timestamp {
                    format: pattern,
                    zoned: false,
                },
            });
            i += 2;
            continue;
        }
        if let Some(a) = &typed[i].ambiguity {
            comments.push(ambiguity_comment(&names[i], a));
        }
        comments.extend(rejects_comment(&names[i], None, &typed[i].kind, &bad[i]));
        let differs = has_header && headers[i].to_lowercase() != names[i];
        columns.push(Column {
            name: names[i].clone(),
            header: differs.then(|| headers[i].clone()),
            from: None,
            kind: typed[i].kind.clone(),
        });
        i += 1;
    }
    (columns, comments)
}

/// A sampled value that will be a reject: its text and its line (0-based).
struct Bad {
    text: String,
    line: usize,
}

/// A comment naming the values of a column (or of the `part` of the file's columns
/// it is built from) that do not parse as its `kind`, at most three of them.
fn rejects_comment(column: &str, part: Option<&str>, kind: &Kind, bad: &[Bad]) -> Option<String> {
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

/// A note for a local-time column whose header names a fixed offset (HOBO writes
/// `Date Time, GMT-05:00`): the IANA zone of that offset.
fn offset_note(column: &Column) -> Option<String> {
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
fn header_offset(header: &str) -> Option<(String, String)> {
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
    let hours = hours.parse::<u8>().ok().filter(|h| *h <= 14)?;
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

/// The pattern of a date column next to a time-of-day column, in their order.
fn date_and_time(a: &Kind, b: &Kind) -> Option<String> {
    match (a, b) {
        (Kind::Date(d), Kind::Time(t)) => Some(format!("{d} {t}")),
        (Kind::Time(t), Kind::Date(d)) => Some(format!("{t} {d}")),
        _ => None,
    }
}

/// `<date name>_time`, or `timestamp` when the date column has no name of its own.
fn joined_name(names: &[String], i: usize, taken: &mut Vec<String>) -> String {
    let date = &names[i];
    let wanted = if date.starts_with("col_") {
        "timestamp".to_owned()
    } else {
        format!("{date}_time")
    };
    let others: Vec<String> = taken
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != i && *k != i + 1)
        .map(|(_, n)| n.clone())
        .collect();
    let name = if others.contains(&wanted) {
        unique(format!("col_{}", i + 1), &others)
    } else {
        wanted
    };
    taken.push(name.clone());
    name
}

/// snake_case ASCII names ([`snake_case`]); `col_N` for a header without a letter or
/// digit it can keep, `c_` before a leading digit, the lineage columns' names
/// (`source_key`, `line_number`) and duplicates renamed.
fn column_names(headers: &[String], has_header: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let mut name = if has_header {
            snake_case(header)
        } else {
            String::new()
        };
        if name.is_empty() {
            name = format!("col_{}", i + 1);
        } else if name.starts_with(|c: char| c.is_ascii_digit()) {
            name = format!("c_{name}");
        }
        if name == "source_key" || name == "line_number" {
            name = unique(format!("{name}_1"), &names);
        } else if names.contains(&name) {
            name = unique(format!("col_{}", i + 1), &names);
        }
        names.push(name);
    }
    names
}

/// Lower-case ASCII letters and digits, every other run one `_`; Latin letters with
/// diacritics folded to ASCII first (`Öltemperatur °C` → `oltemperatur_c`).
fn snake_case(text: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in text.chars() {
        let folded = fold_latin(c);
        if !c.is_ascii_alphanumeric() && folded.is_none() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        match folded {
            Some(letters) => out.push_str(letters),
            None => out.push(c.to_ascii_lowercase()),
        }
    }
    // Athena allows 255; names longer than this are unreadable anyway.
    out.truncate(64);
    out.trim_end_matches('_').to_owned()
}

/// U+00C0–U+00FF in lower-case ASCII, one entry per code point (`-`: × and ÷ are
/// no letters): the base letter of Unicode's decomposition (NFKD) where there is
/// one, else the usual transliteration (Æ ae, Ð d, Ø o, Þ th, ß ss).
const LATIN_1_FOLDED: &str = "a a a a a a ae c e e e e i i i i d n o o o o o - o u u u u y th ss \
                              a a a a a a ae c e e e e i i i i d n o o o o o - o u u u u y th y";
/// U+0100–U+017F (Latin Extended-A: Central and Northern Europe, Turkish, Baltic)
/// likewise (Đ d, Ħ h, ı i, Ĳ ij, ĸ k, Ł l, Ŋ n, Œ oe, Ŧ t, ſ s).
const LATIN_EXTENDED_A_FOLDED: &str = "a a a a a a c c c c c c c c d d d d e e e e e e e e e e \
    g g g g g g g g h h h h i i i i i i i i i i ij ij j j k k k l l l l l l l l l l \
    n n n n n n n n n o o o o o o oe oe r r r r r r s s s s s s s s t t t t t t \
    u u u u u u u u u u u u w w y y y z z z z z z s";

/// A Latin letter with a diacritic (or a Latin ligature), the micro sign or a
/// superscript digit in ASCII; `None` for any other character (names in non-Latin
/// scripts keep their ASCII parts only).
fn fold_latin(c: char) -> Option<&'static str> {
    let code = u32::from(c);
    let (table, first) = match code {
        0xC0..=0xFF => (LATIN_1_FOLDED, 0xC0),
        0x100..=0x17F => (LATIN_EXTENDED_A_FOLDED, 0x100),
        // Romanian's comma-below letters, in Latin Extended-B.
        0x218 | 0x219 => return Some("s"),
        0x21A | 0x21B => return Some("t"),
        // Units: the micro sign as `u` (`µm` → `um`), superscripts as digits (`m²`).
        0xB5 => return Some("u"),
        0xB2 => return Some("2"),
        0xB3 => return Some("3"),
        0xB9 => return Some("1"),
        _ => return None,
    };
    let index = usize::try_from(code - first).ok()?;
    table.split_whitespace().nth(index).filter(|f| *f != "-")
}

/// `name`, or `name_2`, `name_3`, … whichever is not taken.
fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}_{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(name)
}

fn ambiguity_comment(column: &str, a: &Ambiguity) -> String {
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

// ---------------------------------------------------------------------------
// Output

/// What the block is made from, besides the columns.
struct Found<'a> {
    decoded: &'a Decoded,
    /// The sample's lines, as [`sample_lines`] cut them.
    lines: &'a [&'a str],
    layout: &'a Layout,
    decimal: u8,
    nulls: &'a [String],
}

/// Comment lines on what the reviewer should know: how the encoding was found, what
/// will be rejected, what does not add up.
fn notes(found: &Found, table: &Table) -> Vec<String> {
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

/// `1 line`, `2 lines`.
fn plural(n: usize, one: &str, many: &str) -> String {
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
fn summary(file: &str, found: &Found, table: &Table) -> String {
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
fn label(encoding: &'static Encoding) -> String {
    encoding.name().to_ascii_lowercase()
}

fn render(
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
fn suffixes_of(file_name: &str) -> Option<Vec<String>> {
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

/// The file stem, snake_cased (a source name is an SQL table name); `logger` when
/// nothing is left, `logger_` before a leading digit.
fn source_name_of(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let base = base
        .strip_suffix(".gz")
        .or_else(|| base.strip_suffix(".GZ"))
        .unwrap_or(base);
    let stem = base
        .rfind('.')
        .filter(|&i| i > 0)
        .map_or(base, |i| &base[..i]);
    match snake_case(stem) {
        s if s.is_empty() => "logger".to_owned(),
        s if s.starts_with(|c: char| c.is_ascii_digit()) => format!("logger_{s}"),
        s => s,
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
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::{Table, Value};

    /// Sniffs `bytes` as a whole file; checks the block is TOML and returns it parsed.
    fn sniffed(bytes: &[u8], file: &str) -> (String, Table) {
        let s = sniff(bytes, false, file, None).unwrap_or_else(|e| panic!("{e}"));
        let parsed =
            toml::from_str::<Table>(&s.block).unwrap_or_else(|e| panic!("{e}\n{}", s.block));
        (s.block, parsed)
    }

    fn source<'a>(t: &'a Table, name: &str) -> &'a Table {
        t["sources"][name]
            .as_table()
            .unwrap_or_else(|| panic!("no sources.{name}"))
    }

    fn csv<'a>(t: &'a Table, name: &str) -> &'a Table {
        source(t, name)["csv"].as_table().expect("a csv table")
    }

    /// The entries of `columns = [...]` as written, without their braces.
    fn columns(block: &str) -> Vec<&str> {
        let start = block.find("columns = [\n").expect("columns") + "columns = [\n".len();
        block[start..]
            .lines()
            .take_while(|l| *l != "]")
            .map(|l| l.trim().trim_start_matches("{ ").trim_end_matches(" },"))
            .collect()
    }

    fn encode(encoding: &'static Encoding, text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = encoding.encode(text);
        assert!(!unmappable, "{} cannot encode the fixture", encoding.name());
        bytes.into_owned()
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string"))
            .collect()
    }

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
    fn windows_utf16le_with_bom_and_tabs() {
        let text = "Timestamp\tTag\tValue\tQuality\r\n2024-03-01 10:00:00.123\tFIC101\t12.5\tGood\r\n\
            2024-03-01 10:00:01.123\tFIC101\t12.75\tGood\r\n2024-03-01 10:00:02.123\tFIC101\t13\tBad\r\n";
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let (block, t) = sniffed(&bytes, "export.txt");
        let keys = csv(&t, "export");
        assert_eq!(keys["encoding"].as_str(), Some("utf-16le"), "{block}");
        assert_eq!(keys["delimiter"].as_str(), Some("\t"));
        assert_eq!(keys.len(), 2, "{block}");
        assert_eq!(
            columns(&block),
            [
                r#"name = "timestamp", type = "timestamp", timestamp_format = "iso8601", time_zone = "UTC""#,
                r#"name = "tag", type = "string""#,
                r#"name = "value", type = "double""#,
                r#"name = "quality", type = "string""#,
            ]
        );
        // The same bytes without the byte order mark.
        let (block, t) = sniffed(&bytes[2..], "export.txt");
        assert_eq!(
            csv(&t, "export")["encoding"].as_str(),
            Some("utf-16le"),
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
    fn cjk_legacy_encodings_are_told_apart() {
        let cases: [(&'static Encoding, &str, &str); 3] = [
            (GB18030, "时间,温度(°C),湿度(%),电压(V),状态", "正常,报警"),
            (EUC_KR, "시간,온도(°C),습도(%),전압(V),상태", "정상,경고"),
            (BIG5, "時間,溫度(°C),濕度(%),電壓(V),狀態", "正常,警報"),
        ];
        for (encoding, header, states) in cases {
            let (ok, alarm) = states.split_once(',').expect("two states");
            let text = format!(
                "{header}\n2024-03-01 10:00:00,21.5,45,3.3,{ok}\n2024-03-01 10:00:01,21.6,45,3.3,{alarm}\n\
                 2024-03-01 10:00:02,21.6,46,3.2,{ok}\n"
            );
            let (block, t) = sniffed(&encode(encoding, &text), "x.csv");
            assert_eq!(
                csv(&t, "x")["encoding"].as_str(),
                Some(label(encoding).as_str()),
                "{block}"
            );
            assert!(
                block.contains(&format!(
                    "header = \"{}\"",
                    header.split(',').nth(1).unwrap_or_default()
                )),
                "{block}"
            );
        }
    }

    #[test]
    fn short_headers_decode_in_their_own_encoding() {
        let cases: &[(&'static Encoding, &str)] = &[
            (WINDOWS_1252, "Gerät:;Testo"),
            (WINDOWS_1252, "Température;Humidité;Débit"),
            (WINDOWS_1252, "Größe;Maß"),
            (WINDOWS_1252, "Temp [°C];Feuchte [%]"),
            (WINDOWS_1252, "µm;mm²"),
            (SHIFT_JIS, "度,値"),
            (SHIFT_JIS, "ｵﾝﾄﾞ,ｼﾂﾄﾞ"),
            (SHIFT_JIS, "テスト,センサー"),
            (SHIFT_JIS, "pH値,温度(℃)"),
            (EUC_KR, "시간,온도"),
            (GB18030, "日期,时间"),
            (BIG5, "時間,溫度"),
        ];
        for (encoding, header) in cases {
            let bytes = encode(encoding, &format!("{header}\n1,2\n"));
            let chosen = decode(&bytes, false, "x").map(|d| d.encoding);
            assert_eq!(chosen, Ok(*encoding), "{header}");
        }
    }

    #[test]
    fn comments_after_the_header_set_comment() {
        let text = "# exported by logger 7\nts,v\n2024-03-01 10:00:00,1\n# power cut\n2024-03-01 10:00:01,2\n2024-03-01 10:00:02,3\n";
        let (block, t) = sniffed(text.as_bytes(), "c.csv");
        assert_eq!(csv(&t, "c")["comment"].as_str(), Some("#"), "{block}");
        // The reader skips the comment line above the header: no `skip_lines`.
        assert!(!csv(&t, "c").contains_key("skip_lines"), "{block}");
        // Only before the header: they are preamble lines.
        let text = "# exported by logger 7\nts,v\n2024-03-01 10:00:00,1\n2024-03-01 10:00:01,2\n";
        let (block, t) = sniffed(text.as_bytes(), "c.csv");
        assert!(!csv(&t, "c").contains_key("comment"), "{block}");
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
    fn a_short_units_row_a_glitch_a_repeated_header_and_a_footer() {
        let data: String = (0..12).map(|i| format!("10:00:{i:02},1.{i},2\n")).collect();
        let (head, tail) = data.split_at(data.len() / 2);
        let text = format!(
            "Time,Flow,Pressure\ns,l/min\n{head}10:00:06,POWER FAIL\nTime,Flow,Pressure\n{tail}End\n"
        );
        let (block, t) = sniffed(text.as_bytes(), "f.csv");
        assert_eq!(
            csv(&t, "f")["skip_after_header"].as_integer(),
            Some(1),
            "{block}"
        );
        assert!(
            block.contains("# 1 line at the end of the sample has another number"),
            "{block}"
        );
        assert!(
            block.contains("# the header is repeated on line 10 (the logger restarted?)"),
            "{block}"
        );
        assert!(
            block.contains("# 1 line among the data has another number"),
            "{block}"
        );
        assert_eq!(
            columns(&block),
            [
                r#"name = "time", type = "string""#,
                r#"name = "flow", type = "double""#,
                r#"name = "pressure", type = "bigint""#
            ]
        );
    }

    #[test]
    fn names_are_snake_case_ascii_unique_and_not_lineage_columns() {
        let headers: Vec<String> = [
            "CH1 温度",
            "温度",
            "1st",
            "Source Key",
            "line_number",
            "CH1-温度",
            "a__b ",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            column_names(&headers, true),
            [
                "ch1",
                "col_2",
                "c_1st",
                "source_key_1",
                "line_number_1",
                "col_6",
                "a_b"
            ]
        );
        assert_eq!(
            source_name_of("/nas/2024/Line 3 Export.TXT.gz"),
            "line_3_export"
        );
        assert_eq!(source_name_of("2024-03.csv"), "logger_2024_03");
        assert_eq!(source_name_of("温度.csv"), "logger");
        assert_eq!(
            suffixes_of("a.TXT.gz"),
            Some(vec![".txt".into(), ".txt.gz".into()])
        );
        assert_eq!(suffixes_of("a.CSV.gz"), None);
        assert_eq!(suffixes_of("LOG001"), Some(vec![]));
        let offset = |h| header_offset(h).map(|(said, zone)| format!("{said} {zone}"));
        assert_eq!(
            offset("Date Time, GMT-05:00").as_deref(),
            Some("GMT-05:00 Etc/GMT+5")
        );
        assert_eq!(
            offset("Zeit (UTC+0100)").as_deref(),
            Some("UTC+0100 Etc/GMT-1")
        );
        assert_eq!(offset("time UTC+05:30"), None);
        assert_eq!(offset("Time"), None);
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
    fn single_quotes_pipes_and_a_given_source_name() {
        let s = sniff(b"'id';'name'\n'1';'a;b'\n'2';'c'\n", false, "q.csv", None).expect("sniffs");
        let t = toml::from_str::<Table>(&s.block).expect("TOML");
        assert_eq!(csv(&t, "q")["quote"].as_str(), Some("'"), "{}", s.block);
        assert_eq!(columns(&s.block).len(), 2, "{}", s.block);
        let s = sniff(b"a|b\n1|x\n2|y\n", false, "p.dat", Some("my source")).expect("sniffs");
        let t = toml::from_str::<Table>(&s.block).expect("TOML");
        assert_eq!(csv(&t, "my source")["delimiter"].as_str(), Some("|"));
        assert!(!s.remarks.is_empty());
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

    /// The comment lines of a block, without their `# `.
    fn comments(block: &str) -> Vec<&str> {
        block.lines().filter_map(|l| l.strip_prefix("# ")).collect()
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

    #[test]
    fn bad_dates_and_times_are_tolerated_and_named_by_their_part() {
        let mut text = String::from("Datum;Zeit;Wert\n");
        for i in 0..20 {
            let date = if i == 4 {
                "3l.03.2024".to_owned()
            } else {
                format!("{:02}.03.2024", i + 1)
            };
            let time = if i == 9 { "10:6O:00" } else { "10:00:00" };
            text += &format!("{date};{time};{i},5\n");
        }
        let (block, _) = sniffed(text.as_bytes(), "d.csv");
        assert_eq!(
            columns(&block)[0],
            r#"name = "datum_time", type = "timestamp", from = ["Datum", "Zeit"], timestamp_format = "%d.%m.%Y %H:%M:%S", time_zone = "UTC""#
        );
        let notes = comments(&block);
        assert!(notes.contains(&"column `datum_time`: 1 sampled value of `Datum` is no date and its line will be a reject: '3l.03.2024' (line 6)."), "{block}");
        assert!(notes.contains(&"column `datum_time`: 1 sampled value of `Zeit` is no time of day and its line will be a reject: '10:6O:00' (line 11)."), "{block}");
        // A pattern that reads every value beats one that fails on a few: 13/03 is
        // no month, so month-first is not chosen with a reject.
        let mut text = String::from("day,v\n");
        for i in 1..=15 {
            text += &format!("{i:02}/03/2024,{i}\n");
        }
        let (block, _) = sniffed(text.as_bytes(), "e.csv");
        assert_eq!(
            columns(&block)[0],
            r#"name = "day", type = "date", date_format = "%d/%m/%Y""#
        );
        assert!(!block.contains("reject"), "{block}");
    }

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

    #[test]
    fn comment_lines_above_the_header_are_not_counted_in_skip_lines() {
        let data: String = (0..5)
            .map(|i| format!("3/10/2024 1:{i:02}:00 AM,349.{i}\n"))
            .collect();
        let keys = |text: &str| {
            let (block, t) = sniffed(text.as_bytes(), "oven.csv");
            let csv = csv(&t, "oven");
            (
                csv.get("skip_lines").and_then(Value::as_integer),
                csv.get("comment")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                block,
            )
        };
        // US: comment lines only, and one among the data: `comment` alone.
        let (skip, comment, block) = keys(&format!(
            "# Oven 2 temperature log\n# Exported by ThermoTrack\nDate/Time,Zone 1\n{data}# door opened\n{data}"
        ));
        assert_eq!((skip, comment.as_deref()), (None, Some("#")), "{block}");
        // A device line above the comment lines: skip_lines counts up to it.
        let (skip, comment, block) = keys(&format!(
            "Oven 2,ThermoTrack 3.2,x\n# Exported\nDate/Time,Zone 1\n{data}# door opened\n{data}"
        ));
        assert_eq!((skip, comment.as_deref()), (Some(1), Some("#")), "{block}");
        // A blank line is no comment line: the reader's header would be empty.
        let (skip, comment, block) = keys(&format!(
            "# Oven 2\n\nDate/Time,Zone 1\n{data}# door opened\n{data}"
        ));
        assert_eq!((skip, comment.as_deref()), (Some(2), Some("#")), "{block}");
    }

    #[test]
    fn latin_letters_fold_to_ascii_in_names() {
        let headers: Vec<String> = [
            "Öltemperatur °C",
            "Größe",
            "Température",
            "Łódź",
            "Ærø",
            "Straße",
            "Şoför",
            "Maß (m²)",
            "µm",
            "Δt",
            "温度",
            "CH1 温度",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            column_names(&headers, true),
            [
                "oltemperatur_c",
                "grosse",
                "temperature",
                "lodz",
                "aero",
                "strasse",
                "sofor",
                "mass_m2",
                "um",
                "t",
                "col_11",
                "ch1"
            ]
        );
        assert_eq!(source_name_of("Prüfstand Süd.csv"), "prufstand_sud");
        // One entry per code point in each table; × and ÷ are no letters.
        assert_eq!(LATIN_1_FOLDED.split_whitespace().count(), 0x100 - 0xC0);
        assert_eq!(
            LATIN_EXTENDED_A_FOLDED.split_whitespace().count(),
            0x180 - 0x100
        );
        assert_eq!(fold_latin('×'), None);
        assert_eq!(fold_latin('ÿ'), Some("y"));
        assert_eq!(fold_latin('ž'), Some("z"));
        assert_eq!(fold_latin('ſ'), Some("s"));
    }

    #[test]
    fn a_logger_restart_repeats_preamble_and_header_mid_file() {
        let preamble = "\"機種\",\"GL240\"\r\n\"タイトル\",\"ライン3\"\r\n\r\n";
        let header = "No.,日付,時刻,CH1 温度\r\n,,,℃\r\n";
        let rows = |from: usize, n: usize| -> String {
            (from..from + n)
                .map(|i| format!("{i},2024/10/27,07:{i:02}:00,33.{i}\r\n"))
                .collect()
        };
        let text = format!(
            "{preamble}{header}{}{preamble}{header}{}",
            rows(1, 20),
            rows(1, 8)
        );
        let (block, t) = sniffed(&encode(SHIFT_JIS, &text), "line3.csv");
        let csv = csv(&t, "line3");
        assert_eq!(csv["skip_lines"].as_integer(), Some(3), "{block}");
        assert_eq!(csv["skip_after_header"].as_integer(), Some(1), "{block}");
        let notes = comments(&block);
        assert!(
            notes.contains(
                &"the header is repeated on line 29 (the logger restarted?): it will be a reject."
            ),
            "{block}"
        );
        assert!(
            notes.contains(&"3 lines among the data have another number of fields or do not fit the columns (a glitch, a repeated preamble?): they will be rejects."),
            "{block}"
        );
        assert_eq!(columns(&block).len(), 3, "{block}");
        // The header alone again (UTF-8, comment lines skipped by `comment`).
        let data: String = (0..8)
            .map(|i| format!("2024-03-01 10:00:0{i},{i}.5\n"))
            .collect();
        let text = format!("# logger 7\nts,v\n{data}# restart\nts,v\n{data}");
        let (block, t) = sniffed(text.as_bytes(), "r.csv");
        assert!(!csv_has(&t, "r", "skip_lines"), "{block}");
        assert!(
            comments(&block).contains(
                &"the header is repeated on line 12 (the logger restarted?): it will be a reject."
            ),
            "{block}"
        );
    }

    fn csv_has(t: &Table, name: &str, key: &str) -> bool {
        source(t, name)
            .get("csv")
            .and_then(Value::as_table)
            .is_some_and(|c| c.contains_key(key))
    }

    #[test]
    fn bytes_that_do_not_decode_are_shown_as_the_rejects_show_them() {
        let (text, at) = decode_escaped(SHIFT_JIS, b"a,\x82,b\n\xa0\n");
        assert_eq!(text, "a,\\x82,b\n\\xA0\n");
        assert_eq!(at, [2, 9]);
        let d = decode_as(SHIFT_JIS, b"1\n2,\x82\n3\n\x82", true, "test");
        assert_eq!(d.text, "1\n2,\\x82\n3\n");
        assert_eq!((d.malformed, d.malformed_lines), (1, vec![1]));
        // GB18030 reads a byte ahead before it knows `81` starts nothing.
        assert_eq!(
            decode_escaped(GB18030, b"a\x81\x30\x81\nb").0,
            "a\\x810\\x81\nb"
        );
    }
}
