//! The parser stage: a chunk of whole records → one typed Arrow batch plus the
//! records that did not fit the declared columns, each with a reason.
//!
//! A record's fields are validated, converted and appended to the chunk's
//! columns one by one; a record with a bad field is taken back ([`Columns`]), so
//! it never leaves half a row behind.

use std::sync::Arc;

use csv_core::ReadRecordResult;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer};

use super::columns::{Column, Columns};
use super::instants::Recent;
use super::marks::Marks;
use super::reader::trim_eol;
use super::{BLANK_LINES, Chunk, CsvLayout, FileCtx, LINES_SKIPPED, NOT_A_COLUMN, Reject};
use crate::sources::Parsed as SourceParsed;

/// Parses chunks of one source; keeps its scratch buffers between chunks.
pub struct ChunkParser {
    layout: Arc<CsvLayout>,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Split simple lines without csv-core (off only to test the two agree).
    fast_path: bool,
    marks: Marks,
    /// Per declared column, what its last timestamp settled (date, UTC offset).
    recent: Vec<Recent>,
    /// Scratch space for a value joined from several fields (`from`).
    joined: Vec<u8>,
}

pub struct Parsed {
    pub batch: RecordBatch,
    pub rejects: Vec<Reject>,
}

impl ChunkParser {
    pub fn new(layout: Arc<CsvLayout>) -> Self {
        let n = layout.columns.len();
        ChunkParser {
            layout,
            out: Vec::new(),
            ends: vec![0; n * 2 + 16],
            fast_path: true,
            marks: Marks::default(),
            recent: vec![Recent::default(); n],
            joined: Vec::new(),
        }
    }

    /// A parser that sends every record through csv-core (the reference the fast
    /// path is tested against).
    #[cfg(test)]
    pub fn csv_core_only(layout: Arc<CsvLayout>) -> Self {
        ChunkParser {
            fast_path: false,
            ..ChunkParser::new(layout)
        }
    }

    pub fn parse(&mut self, chunk: &Chunk) -> Parsed {
        let layout = self.layout.clone();
        let data = &chunk.data[..];
        let file = &chunk.file;
        let nfields = file.field_to_column.len();
        // A file's records may have more fields than columns are declared (`from`).
        if self.ends.len() < nfields * 2 + 16 {
            self.ends.resize(nfields * 2 + 16, 0);
        }
        // Rows are ~70 bytes in typical sensor logs; a guess only sizes buffers.
        let cap = data.len() / 48 + 16;
        let columns = Columns::new(
            layout
                .columns
                .iter()
                .map(|c| Column::new(c.kind, cap, data.len() / 2))
                .collect(),
        );
        let mut rows = Rows {
            columns,
            line_numbers: Vec::with_capacity(cap),
            rejects: Vec::new(),
        };
        let mut blank_lines = 0u64;
        let mut comment_lines = 0u64;
        let chunk_is_utf8 = simdutf8::basic::from_utf8(data).is_ok();

        if self.out.len() < data.len() + 1 {
            self.out.resize(data.len() + 1, 0);
        }
        let mut rdr = csv_core::ReaderBuilder::new()
            .delimiter(layout.delimiter)
            .quote(layout.quote)
            .build();
        let mut pos = 0;
        let mut line = chunk.first_line;
        let fast_path = self.fast_path;
        if fast_path {
            self.marks.scan(data, layout.delimiter, layout.quote);
        }
        while pos < data.len() {
            if let Some(prefix) = &layout.comment
                && let Some(end) = comment_line_end(data, pos, prefix)
            {
                comment_lines += 1;
                line += u64::from(data[end - 1] == b'\n');
                pos = end;
                continue;
            }
            // Fast path: a line with no stray carriage return is split at the
            // delimiters the chunk's masks mark ([`Marks`]), straight from the chunk
            // when it has no quote or quotes around every field (`enclosed_fields`),
            // through `unquote_fields` when its quotes enclose only some whole
            // fields; that is what csv-core would do with it, at a fraction of the
            // cost. Any other line is left to csv-core below.
            if fast_path && let Some(simple) = self.marks.simple_line(data, pos) {
                let line_start = pos;
                let content = &data[pos..simple.content_end];
                if content.is_empty() {
                    // A blank line, or the `\n` of a CRLF csv-core stopped before.
                    let crlf_tail = line_start > 0 && data[line_start - 1] == b'\r';
                    blank_lines += u64::from(simple.has_newline && !crlf_tail);
                    line += u64::from(simple.has_newline);
                    pos = simple.line_end;
                    continue;
                }
                // One pass over the delimiters both counts the fields and records
                // where they end (only the count matters when there are too many).
                let mut ndelims = 0;
                self.marks.delimiters(line_start, simple.content_end, |d| {
                    if let Some(end) = self.ends.get_mut(ndelims) {
                        *end = d;
                    }
                    ndelims += 1;
                });
                // Where the fields' bytes are, and the bytes between two fields.
                let fields = if !simple.has_quote {
                    Some((content, 1))
                } else if ndelims + 1 != nfields {
                    None
                } else if self.marks.quotes(line_start, simple.content_end) as usize == 2 * nfields
                {
                    // As an export that quotes every field writes: read in place.
                    enclosed_fields(content, layout.quote, &mut self.ends[..nfields])
                        .then(|| (&content[1..], 3))
                } else if unquote_fields(
                    &self.marks,
                    content,
                    line_start,
                    layout.quote,
                    &mut self.out,
                    &mut self.ends[..nfields],
                ) {
                    Some((&self.out[..], 0))
                } else {
                    None
                };
                if let Some((src, gap)) = fields {
                    let record_line = line;
                    line += u64::from(simple.has_newline);
                    pos = simple.line_end;
                    let verdict = check_record(ndelims + 1, nfields, chunk_is_utf8, content, file)
                        .and_then(|()| {
                            if gap == 1 {
                                self.ends[nfields - 1] = content.len();
                            }
                            append_record(
                                &mut rows.columns,
                                &mut self.recent,
                                &mut self.joined,
                                &layout,
                                file,
                                src,
                                &self.ends,
                                gap,
                            )
                        });
                    rows.keep_or_reject(verdict, content, record_line, &layout, file);
                    continue;
                }
            }
            // Everything else goes through csv-core, one record at a time.
            rdr.reset();
            let rec_start = pos;
            let (mut out_pos, mut n_ends, mut total_fields) = (0, 0, 0);
            let mut ended = false;
            loop {
                let (r, nin, nout, nend) = rdr.read_record(
                    &data[pos..],
                    &mut self.out[out_pos..],
                    &mut self.ends[n_ends..],
                );
                pos += nin;
                out_pos += nout;
                n_ends += nend;
                total_fields += nend;
                match r {
                    ReadRecordResult::Record => break,
                    ReadRecordResult::End => {
                        ended = true;
                        break;
                    }
                    ReadRecordResult::InputEmpty => {}
                    ReadRecordResult::OutputEndsFull => n_ends = 0, // too many fields; only the count matters now
                    ReadRecordResult::OutputFull => unreachable!("output is as large as the input"),
                }
            }
            if ended {
                // Only line breaks were left: blank lines (less a CRLF's tail).
                let newlines = count_newlines(&data[rec_start..pos]);
                let crlf_tail = newlines > 0 && rec_start > 0 && data[rec_start - 1] == b'\r';
                blank_lines += newlines - u64::from(crlf_tail);
                break;
            }
            // csv-core skips line breaks before a record; they are blank lines or
            // the `\n` of a CRLF that ended the previous record.
            let record = &data[rec_start..pos];
            let lead = record
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            let lead_newlines = count_newlines(&record[..lead]);
            // After a record csv-core ended at a `\r`, the first line break closes
            // that record's line: it is not a blank line.
            let crlf_tail = lead_newlines > 0 && rec_start > 0 && data[rec_start - 1] == b'\r';
            blank_lines += lead_newlines - u64::from(crlf_tail);
            let record_line = line + lead_newlines;
            line += count_newlines(record);
            let raw = trim_eol(&record[lead..]);

            let verdict =
                check_record(total_fields, nfields, chunk_is_utf8, raw, file).and_then(|()| {
                    append_record(
                        &mut rows.columns,
                        &mut self.recent,
                        &mut self.joined,
                        &layout,
                        file,
                        &self.out,
                        &self.ends,
                        0,
                    )
                });
            rows.keep_or_reject(verdict, raw, record_line, &layout, file);
        }
        let Rows {
            columns,
            line_numbers,
            rejects,
        } = rows;

        let loaded = line_numbers.len();
        file.stats.count(loaded as u64, rejects.len() as u64);
        if blank_lines > 0 {
            file.stats.note(BLANK_LINES, blank_lines);
        }
        if comment_lines > 0 {
            file.stats.note(LINES_SKIPPED, comment_lines);
        }

        let mut columns = columns.finish();
        columns.push(repeated(&file.source_key, loaded));
        columns.push(Arc::new(Int64Array::from(line_numbers)));
        let batch = RecordBatch::try_new(layout.schema.clone(), columns)
            .expect("parser builds exactly the layout's columns");
        Parsed { batch, rejects }
    }
}

/// What a chunk yields so far: typed columns and line numbers of the records kept,
/// and the records rejected.
struct Rows {
    columns: Columns,
    line_numbers: Vec<i64>,
    rejects: Vec<Reject>,
}

impl Rows {
    /// Keeps the record just appended, or takes it back and rejects it with its
    /// raw line.
    fn keep_or_reject(
        &mut self,
        verdict: Result<(), String>,
        raw: &[u8],
        line: u64,
        layout: &CsvLayout,
        file: &FileCtx,
    ) {
        match verdict {
            Ok(()) => {
                self.columns.keep();
                self.line_numbers.push(line as i64);
            }
            Err(reason) => {
                self.columns.take_back();
                self.rejects.push(
                    Reject::new(&layout.source, &file.source_key, Some(line), raw, reason)
                        .decoded(file.decoded_from.is_some()),
                );
            }
        }
    }
}

/// The checks before a record's fields are typed: encoding (only when the chunk as a
/// whole is not UTF-8: in a decoded file, bytes that did not decode are what makes
/// a line not UTF-8, see [`super::decode`]), then field count.
fn check_record(
    found: usize,
    expected: usize,
    chunk_is_utf8: bool,
    raw: &[u8],
    file: &FileCtx,
) -> Result<(), String> {
    if !chunk_is_utf8 && simdutf8::basic::from_utf8(raw).is_err() {
        // First: a byte that is not text can look like a delimiter to the split.
        let encoding = file.decoded_from.map_or("UTF-8", |e| e.name());
        Err(format!("line has bytes that are not valid {encoding}"))
    } else if found != expected {
        Err(format!("expected {expected} fields, found {found}"))
    } else {
        Ok(())
    }
}

/// A line is a comment when it starts with the prefix right after a line feed or
/// at the chunk's start (the splitter's rule, so chunks are cut the same way).
/// Returns where the next line starts. Blank lines before a comment are left to
/// the loop, which counts them as it counts every blank line.
fn comment_line_end(data: &[u8], pos: usize, prefix: &[u8]) -> Option<usize> {
    let at_line_start = pos == 0 || data[pos - 1] == b'\n';
    if !at_line_start || !data[pos..].starts_with(prefix) {
        return None;
    }
    Some(memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i + 1))
}

/// Checks a line that holds two quotes per field (`"a","b","7"`): when every
/// field starts and ends with a quote, none holds another, so each is its bytes
/// between them, which csv-core would give too. Their ends go to `ends` (which
/// holds the offsets of the line's delimiters on entry, one per field but the
/// last) as offsets into `content[1..]`, where each field starts three bytes
/// after the previous one ends (closing quote, delimiter, opening quote): the
/// fields are read where they are, with no copy. Returns `false` when some field
/// is not enclosed (then some field holds quotes that do not enclose it), which
/// csv-core then reads; `ends` may have been overwritten by then.
fn enclosed_fields(content: &[u8], quote: u8, ends: &mut [usize]) -> bool {
    let nfields = ends.len();
    let mut start = 0;
    for (i, field_end) in ends.iter_mut().enumerate() {
        let end = if i + 1 == nfields {
            content.len()
        } else {
            *field_end
        };
        let field = &content[start..end];
        if field.len() < 2 || field[0] != quote || field[field.len() - 1] != quote {
            return false;
        }
        // The closing quote's offset in `content`, less the opening quote of
        // the line that `content[1..]` leaves out.
        *field_end = end - 2;
        start = end + 1;
    }
    true
}

/// Unquotes a line whose quotes all enclose whole fields, with none inside them
/// (`"a",7,""`): each field's bytes, less its quotes, go to `out` one after the
/// other and their ends to `ends` (which holds the offsets of the line's
/// delimiters on entry, one per field but the last). That is what csv-core gives:
/// a quote at a field's start opens it, the next quote, followed by a delimiter or
/// the line's end, closes it. Returns `false` for every other use of quotes (a
/// quote inside a field, doubled quotes, a delimiter or a line break inside
/// quotes), which csv-core then reads; `out` and `ends` are scratch space that it
/// may have overwritten by then.
fn unquote_fields(
    marks: &Marks,
    content: &[u8],
    line_start: usize,
    quote: u8,
    out: &mut [u8],
    ends: &mut [usize],
) -> bool {
    let nfields = ends.len();
    let (mut start, mut written) = (0, 0);
    for (i, field_end) in ends.iter_mut().enumerate() {
        let end = if i + 1 == nfields {
            content.len()
        } else {
            *field_end
        };
        let field = &content[start..end];
        let inner = match marks.quotes(line_start + start, line_start + end) {
            0 => field,
            2 if field.len() >= 2 && field[0] == quote && field[field.len() - 1] == quote => {
                &field[1..field.len() - 1]
            }
            _ => return false,
        };
        out[written..written + inner.len()].copy_from_slice(inner);
        written += inner.len();
        *field_end = written;
        start = end + 1;
    }
    true
}

/// Validates, converts and appends the fields of one record to `columns`. Field
/// `i` ends at `ends[i]` in `src` and starts `gap` bytes after the previous one
/// ends (csv-core's unescaped output has no gap; a plain line has one delimiter
/// byte; a line with every field quoted, three: quote, delimiter, quote).
/// Columns built from several fields (`from`) come last, from their fields
/// joined by a space. On an error the fields appended so far stay appended: the
/// caller takes the record back.
#[allow(clippy::too_many_arguments)]
fn append_record(
    columns: &mut Columns,
    recent: &mut [Recent],
    joined: &mut Vec<u8>,
    layout: &CsvLayout,
    file: &FileCtx,
    src: &[u8],
    ends: &[usize],
    gap: usize,
) -> Result<(), String> {
    let mut start = 0;
    for (i, &col) in file.field_to_column.iter().enumerate() {
        let end = ends[i];
        if col != NOT_A_COLUMN {
            let field = &src[start..end];
            append_field(layout, col, field, &mut recent[col], columns.get_mut(col))?;
        }
        start = end + gap;
    }
    for join in &file.joins {
        joined.clear();
        for (k, &field) in join.fields.iter().enumerate() {
            let from = if field == 0 { 0 } else { ends[field - 1] + gap };
            if k > 0 {
                joined.push(b' ');
            }
            joined.extend_from_slice(&src[from..ends[field]]);
        }
        let col = join.column;
        append_field(layout, col, joined, &mut recent[col], columns.get_mut(col))?;
    }
    Ok(())
}

/// One field of column `col`, validated, converted and appended to `column`
/// (nothing is appended when it is rejected).
fn append_field(
    layout: &CsvLayout,
    col: usize,
    bytes: &[u8],
    recent: &mut Recent,
    column: &mut Column,
) -> Result<(), String> {
    let spec = &layout.columns[col];
    let nulls = &layout.nulls;
    // Null texts are compared trimmed, in every column; a string that is not NULL
    // keeps its spaces.
    let trimmed = trim_ascii(bytes);
    let null = if trimmed.is_empty() {
        nulls.empty
    } else {
        nulls.has_texts() && nulls.is_text(trimmed)
    };
    if null {
        return if spec.nullable {
            column.append_null();
            Ok(())
        } else if trimmed.is_empty() {
            Err(format!("column `{}` is empty but required", spec.name))
        } else {
            Err(format!(
                "column `{}` is NULL ({}) but required",
                spec.name,
                shown(trimmed)
            ))
        };
    }
    let text = if matches!(column, Column::Str(_)) {
        bytes
    } else {
        trimmed
    };
    convert(column, text, layout, col, recent)
        .map_err(|why| format!("column `{}`: {} {why}", spec.name, shown(text)))
}

/// Appends `text` to `column` as its type; a string goes in as it is.
fn convert(
    column: &mut Column,
    text: &[u8],
    layout: &CsvLayout,
    col: usize,
    recent: &mut Recent,
) -> Result<(), String> {
    match column {
        Column::Str(c) => c.append(text),
        Column::Int(c) => c.append(
            ascii(text)?
                .parse()
                .map_err(|_| "is not an integer".to_string())?,
        ),
        Column::Float(c) => {
            ascii(text)?;
            let v = if layout.decimal_comma {
                parse_decimal_comma(text)?
            } else {
                parse_f64(text).ok_or_else(|| "is not a number".to_string())?
            };
            if !v.is_finite() {
                return Err("is not a finite number".into());
            }
            c.append(v)
        }
        Column::Bool(c) => c.append(match ascii(text)?.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => true,
            "false" | "f" | "no" | "n" | "0" => false,
            _ => return Err("is not a boolean (true/false, yes/no, 1/0)".into()),
        }),
        Column::Ts(c) => {
            let rule = layout.timestamps[col]
                .as_ref()
                .expect("every timestamp column has a rule (CsvLayout::new)");
            c.append(
                rule.parse(ascii(text)?, recent)
                    .map_err(|e| format!("is not a valid timestamp: {e}"))?,
            )
        }
        Column::Date(c) => {
            let rule = layout.dates[col]
                .as_ref()
                .expect("every date column has a rule (CsvLayout::new)");
            c.append(
                rule.parse(ascii(text)?)
                    .map_err(|e| format!("is not a valid date: {e}"))?,
            )
        }
    }
    Ok(())
}

/// `text` as a `str`, when it is ASCII. Non-ASCII bytes can never form a valid
/// number, boolean or timestamp (chrono's patterns included: their month and day
/// names are English); checking for ASCII is cheaper than UTF-8 validation and
/// makes the conversion sound.
fn ascii(text: &[u8]) -> Result<&str, String> {
    if !text.is_ascii() {
        return Err("contains non-ASCII characters".into());
    }
    // SAFETY: every byte is ASCII (checked above), and ASCII is valid UTF-8.
    Ok(unsafe { std::str::from_utf8_unchecked(text) })
}

/// A number as `str::parse::<f64>` reads it (what a `double` cell has always
/// accepted, and what its rejects are measured against), by lexical-core where
/// it can: faster on the short decimals loggers write (docs/benchmarks.md), and
/// correctly rounded, so the same bits. The two accept the same texts up to
/// [`LEXICAL_MAX_BYTES`] (`lexical_agrees_with_str_parse`, spellings of infinity
/// and NaN included); a text lexical-core refuses still goes to `str::parse`, so
/// that a difference the tests did not find could only cost time, never refuse a
/// number.
fn parse_f64(text: &[u8]) -> Option<f64> {
    if text.len() <= LEXICAL_MAX_BYTES
        && let Ok(v) = lexical_core::parse(text)
    {
        return Some(v);
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The longest text lexical-core reads in place of `str::parse`. Past it the two
/// can differ: each stops following an exponent's digits at its own cap (65 536
/// for `str::parse`), which a text of hundreds of thousands of digits can reach
/// with a value in range (`1` and 700 000 zeros, `e-700000`). Up to 64 bytes an
/// exponent that large gives 0 or infinity in both.
const LEXICAL_MAX_BYTES: usize = 64;

/// A number written with a decimal comma (`-12,5`, `1e3`). A `.` is refused rather
/// than read: in such files it groups thousands (`1.234,5`), and a value read as
/// 1.234 would be wrong without a trace.
fn parse_decimal_comma(text: &[u8]) -> Result<f64, String> {
    if text.contains(&b'.') {
        return Err("is not a number (the decimal separator is `,`)".into());
    }
    let mut buf = [0u8; 64];
    let Some(dst) = buf.get_mut(..text.len()) else {
        return Err("is not a number".into());
    };
    for (d, &b) in dst.iter_mut().zip(text) {
        *d = if b == b',' { b'.' } else { b };
    }
    parse_f64(dst).ok_or_else(|| "is not a number".to_string())
}

/// `n` rows of one value (the chunk's source key), its bytes repeated in one
/// buffer of the exact size: collecting them from an iterator grows the buffer by
/// doubling, copying it each time. (Offsets past `i32` panic, as they did there.
/// A chunk of short records is at most `CHUNK_BYTES + READ_BYTES` (2.25 MiB) and
/// a record at least 2 bytes, so about 1.18 million rows: keys up to about
/// 1.8 KiB fit. A local path nested deeper than that would not.)
fn repeated(value: &str, n: usize) -> ArrayRef {
    let offsets = OffsetBuffer::from_repeated_length(value.len(), n);
    let values = Buffer::from_vec(value.as_bytes().repeat(n));
    // SAFETY: the values are `n` copies of one `str`, and each offset falls
    // between two of them: every slice the offsets cut is that `str`, valid UTF-8.
    // (The checked constructor would validate the whole buffer again per chunk.)
    Arc::new(unsafe { StringArray::new_unchecked(offsets, values, None) })
}

/// Line breaks in a record. Nearly every record has one, at its end, so one search
/// of the rest for a quoted line break settles most records.
fn count_newlines(b: &[u8]) -> u64 {
    match b.split_last() {
        None => 0,
        Some((&last, rest)) => {
            let end = u64::from(last == b'\n');
            if memchr::memchr(b'\n', rest).is_none() {
                end
            } else {
                end + memchr::memchr_iter(b'\n', rest).count() as u64
            }
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// A value as shown in a reason: quoted, cut to 64 bytes.
fn shown(b: &[u8]) -> String {
    // Bytes that are not UTF-8 show as `\xNN`, never as a replacement character;
    // the cut falls between characters.
    let s = super::decode::shown(b, false);
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("'{}…'", &s[..end])
    } else {
        format!("'{s}'")
    }
}

impl crate::sources::Parser for ChunkParser {
    type Unit = Chunk;
    type Reject = Reject;

    fn parse(&mut self, chunk: Chunk) -> SourceParsed<Reject> {
        let Parsed { batch, rejects } = ChunkParser::parse(self, &chunk);
        SourceParsed {
            batch: Some(batch),
            rejects,
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use proptest::prelude::*;

    use super::*;

    /// `parse_f64` against the reference it stands for: the same number, to the
    /// bit, or the same refusal.
    fn same_as_str_parse(text: &str) -> Result<(), TestCaseError> {
        let got = parse_f64(text.as_bytes());
        let want = text.parse::<f64>().ok();
        match (got, want) {
            (Some(g), Some(w)) => prop_assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{:?}: {} against {}",
                text,
                g,
                w
            ),
            (g, w) => prop_assert_eq!(g, w, "{:?}", text),
        }
        Ok(())
    }

    #[test]
    fn lexical_agrees_with_str_parse_on_the_edges() {
        for text in [
            "",
            "+",
            "-",
            ".",
            "-.",
            "e5",
            ".e5",
            "1.e5",
            ".5e-3",
            "5.",
            "+.5",
            "-0",
            "-0.0",
            "0",
            "1e400",
            "-1e400",
            "1e-400",
            "4.9e-324",
            "2.4703282292062327e-324",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "9007199254740993",
            "0.1000000000000000055511151231257827",
            "123456789012345678901234567890",
            "inf",
            "-inf",
            "+INF",
            "Infinity",
            "-infinity",
            "NaN",
            "nan",
            "-NaN",
            "infin",
            "0x1p3",
            "1_000",
            "1,5",
            "1 ",
            " 1",
            "1e",
            "1e+",
            "1E+05",
            "1d5",
            "1f",
            "١",
            "00012.5000",
            "1e0000000000000000000000001",
            "0e99999999999",
        ] {
            same_as_str_parse(text).unwrap();
        }
        // Past the bound, where lexical-core and `str::parse` cap an exponent's
        // digits at different lengths.
        let zeros = "0".repeat(700_000);
        for text in [format!("1{zeros}e-700000"), format!("0.{zeros}1e700001")] {
            same_as_str_parse(&text).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Texts shaped like numbers (signs, up to 40 digits on each side of a
        /// point, exponents of up to 6 digits, past the 64-byte bound too) and
        /// texts of the bytes numbers and their spellings are made of:
        /// `parse_f64` reads each as `str::parse` does.
        #[test]
        fn lexical_agrees_with_str_parse(
            number in "[+-]?0{0,30}[0-9]{0,40}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{0,6})?",
            bytes in "[0-9.+eE infatyNIFATY_x-]{0,24}",
        ) {
            same_as_str_parse(&number)?;
            same_as_str_parse(&bytes)?;
        }
    }

    /// Each field of `src` as `append_record` cuts it from `ends` and `gap`.
    fn cut<'a>(src: &'a [u8], ends: &[usize], gap: usize) -> Vec<&'a [u8]> {
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let field = &src[start..end];
                start = end + gap;
                field
            })
            .collect()
    }

    #[test]
    fn enclosed_fields_are_cut_in_place_three_bytes_apart() {
        // A line, its quote byte, its delimiters' offsets (as the masks give them,
        // then room for the last field's end), and the fields it holds.
        for (line, quote, delimiters, fields) in [
            (
                &br#""ab","","c""#[..],
                b'"',
                &[4, 7][..],
                &[&b"ab"[..], b"", b"c"][..],
            ),
            (b"'x;y'", b'\'', &[], &[b"x;y"]),
            (b"''", b'\'', &[], &[b""]),
        ] {
            let mut ends = delimiters.to_vec();
            ends.push(0);
            assert!(enclosed_fields(line, quote, &mut ends), "{line:?}");
            assert_eq!(cut(&line[1..], &ends, 3), fields, "{line:?}");
        }
        let mut ends = [4, 7, 0];
        enclosed_fields(br#""ab","","c""#, b'"', &mut ends);
        assert_eq!(ends, [2, 5, 9]);
        // A field that does not start and end with the quote: csv-core's line.
        for (line, comma) in [(&br#""x"y,"b""#[..], 4), (br#"x"",""#, 3), (br#""a",b"#, 3)] {
            assert!(!enclosed_fields(line, b'"', &mut [comma, 0]), "{line:?}");
        }
    }

    #[test]
    fn a_repeated_value_is_the_array_collected_from_it() {
        for (value, n) in [
            ("long/sensors.csv", 3),
            ("", 4),
            ("ü/日付.csv", 1),
            ("k", 0),
        ] {
            let got = repeated(value, n);
            let want = StringArray::from_iter_values(std::iter::repeat_n(value, n));
            assert_eq!(got.as_string::<i32>(), &want, "{value:?} × {n}");
        }
    }
}
