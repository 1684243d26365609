//! The reader stage: one file at a time, sequentially. It decompresses, checks that
//! the file is CSV text at all, matches the header to the declared columns and
//! cuts the byte stream into chunks of whole records for the parsers.
//!
//! Whole-file problems (empty, binary, not UTF-8, wrong header, corrupt gzip) and
//! records too long to buffer are rejected here; everything else is the parsers'.
//!
//! Skipping a record too long to hold follows quotes exactly as csv-core does, so
//! reading resumes at the next record, never inside a quoted field. Only at the end
//! of the file is a quote that never closed taken for a stray one: its line is
//! rejected and reading goes on after it.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use super::split::Splitter;
use super::{Chunk, CsvLayout, FileCtx, Reject};
use crate::discover::ItemStats;
use crate::sources::ReadError;

/// Chunks handed to the parsers are about this big (≈ 30k sensor rows).
pub const CHUNK_BYTES: usize = 2 << 20;
/// How much is read from storage at a time.
const READ_BYTES: usize = 256 << 10;
/// How much of a file's start is checked for binary content and encoding.
const SNIFF_BYTES: usize = 8 << 10;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the reader sends its output. Both calls block while the consumer is
/// behind (bounded channels), which is what bounds memory; both fail when nobody
/// listens any more (the run stops or fails), which stops the reader.
pub trait ReaderSink {
    fn chunk(&mut self, chunk: Chunk) -> Result<(), ReadError>;
    fn reject(&mut self, reject: Reject) -> Result<(), ReadError>;
}

/// Why the reader stopped before the end of a file.
#[derive(Debug)]
pub enum StorageError {
    /// An I/O error that is not the data's fault (network, permissions): the run fails.
    Io(std::io::Error),
    /// The sink stopped taking chunks or rejects.
    Stopped(ReadError),
}

impl From<ReadError> for StorageError {
    fn from(e: ReadError) -> Self {
        StorageError::Stopped(e)
    }
}

/// Reads one file to its end. `grew_to` is set when the file grew after it was
/// listed: its listed bytes may end inside a record still being written, which is
/// then rejected rather than loaded.
pub fn read_file(
    layout: &CsvLayout,
    source_key: Arc<str>,
    stats: Arc<ItemStats>,
    input: impl Read,
    grew_to: Option<u64>,
    sink: &mut impl ReaderSink,
) -> Result<(), StorageError> {
    read_file_in_chunks(
        layout,
        source_key,
        stats,
        input,
        grew_to,
        sink,
        (CHUNK_BYTES, READ_BYTES),
    )
}

/// [`read_file`] with a chosen chunk size (tests use tiny chunks to cut records at
/// every possible place).
pub fn read_file_in_chunks(
    layout: &CsvLayout,
    source_key: Arc<str>,
    stats: Arc<ItemStats>,
    mut input: impl Read,
    grew_to: Option<u64>,
    sink: &mut impl ReaderSink,
    (chunk_bytes, read_bytes): (usize, usize),
) -> Result<(), StorageError> {
    let mut r = FileReader {
        layout,
        source_key,
        stats,
        buf: Vec::with_capacity(chunk_bytes + read_bytes),
        eof: false,
        line: 1,
        chunk_bytes,
        read_bytes,
        grew_to,
    };
    r.run(&mut input, sink)
}

struct FileReader<'a> {
    layout: &'a CsvLayout,
    source_key: Arc<str>,
    stats: Arc<ItemStats>,
    buf: Vec<u8>,
    eof: bool,
    /// Line number of `buf[0]`.
    line: u64,
    chunk_bytes: usize,
    read_bytes: usize,
    grew_to: Option<u64>,
}

/// Outcome of reading more bytes.
enum Fill {
    Ok,
    /// The bytes are not decodable (corrupt gzip): the rest of the file is rejected.
    Corrupt(std::io::Error),
}

impl FileReader<'_> {
    fn run(
        &mut self,
        input: &mut impl Read,
        sink: &mut impl ReaderSink,
    ) -> Result<(), StorageError> {
        if let Fill::Corrupt(e) = self.fill(input, SNIFF_BYTES)? {
            return self.reject_whole(sink, &format!("file cannot be decoded: {e}"));
        }
        if self.buf.starts_with(BOM) {
            self.buf.drain(..BOM.len());
        }
        if let Some(reason) = self.sniff() {
            return self.reject_whole(sink, &reason);
        }
        let field_to_column = if self.layout.header {
            match self.read_header(input)? {
                Ok(map) => map,
                Err(reason) => return self.reject_whole(sink, &reason),
            }
        } else {
            (0..self.layout.columns.len()).collect()
        };
        let file = Arc::new(FileCtx {
            source_key: self.source_key.clone(),
            stats: self.stats.clone(),
            field_to_column,
        });
        self.split_records(input, sink, &file)
    }

    /// Reads until the buffer holds `want` bytes or the input ends.
    fn fill(&mut self, input: &mut impl Read, want: usize) -> Result<Fill, StorageError> {
        while !self.eof && self.buf.len() < want {
            let old = self.buf.len();
            // read_to_end fills spare capacity without zeroing it first.
            let wanted = (want - old) as u64;
            match input.by_ref().take(wanted).read_to_end(&mut self.buf) {
                Ok(n) if (n as u64) < wanted => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof
                    ) =>
                {
                    self.eof = true;
                    return Ok(Fill::Corrupt(e));
                }
                Err(e) => return Err(StorageError::Io(e)),
            }
        }
        Ok(Fill::Ok)
    }

    /// Checks that the start of the file is text at all. Encoding is checked per
    /// line (a header that is not UTF-8 rejects the file, any other line only itself),
    /// so one stray Latin-1 byte does not cost a whole file of good rows.
    fn sniff(&self) -> Option<String> {
        let head = &self.buf[..self.buf.len().min(SNIFF_BYTES)];
        if self.eof && self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            return Some("empty file: no header and no records".into());
        }
        if let Some(at) = memchr::memchr(0, head) {
            return Some(format!(
                "binary content, not CSV text (NUL byte at offset {at})"
            ));
        }
        None
    }

    /// Reads the header record and maps its names to the declared columns.
    fn read_header(
        &mut self,
        input: &mut impl Read,
    ) -> Result<Result<Vec<usize>, String>, StorageError> {
        let mut splitter = Splitter::new(self.layout.delimiter, self.layout.quote);
        loop {
            splitter.scan(&self.buf);
            if splitter.last_boundary() > 0 || self.eof {
                break;
            }
            if self.buf.len() > self.layout.max_record_bytes {
                return Ok(Err(format!(
                    "header line is longer than csv.max_record_bytes ({} bytes)",
                    self.layout.max_record_bytes
                )));
            }
            let want = self.buf.len() + self.read_bytes;
            if let Fill::Corrupt(e) = self.fill(input, want)? {
                return Ok(Err(format!("file cannot be decoded: {e}")));
            }
        }
        // The header is the first record; its end is the first newline outside quotes.
        let mut first = Splitter::new(self.layout.delimiter, self.layout.quote);
        let end = first_record_end(&mut first, &self.buf);
        let header = &self.buf[..end];
        let names = match split_fields(header, self.layout.delimiter, self.layout.quote) {
            Some(n) => n,
            None => {
                return Ok(Err(
                    "header line is not UTF-8 text; convert the file to UTF-8".into(),
                ));
            }
        };
        let mapping = match_header(
            &names,
            &self
                .layout
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            &self.layout.source,
        );
        self.line += memchr::memchr_iter(b'\n', header).count() as u64;
        self.buf.drain(..end);
        Ok(mapping)
    }

    fn split_records(
        &mut self,
        input: &mut impl Read,
        sink: &mut impl ReaderSink,
        file: &Arc<FileCtx>,
    ) -> Result<(), StorageError> {
        let mut splitter = Splitter::new(self.layout.delimiter, self.layout.quote);
        let max = self.layout.max_record_bytes;
        loop {
            splitter.scan(&self.buf);
            let b = splitter.last_boundary();
            if b > 0 && (b >= self.chunk_bytes || self.eof) {
                self.emit(sink, file, b)?;
                splitter.consume(b);
                continue;
            }
            if self.eof {
                if self.buf.iter().all(|c| c.is_ascii_whitespace()) {
                    self.count_blank_tail();
                    return Ok(());
                }
                if let Some(size) = self.grew_to {
                    return self.reject_unfinished_tail(sink, size);
                }
                if splitter.in_quotes() && memchr::memchr(b'\n', &self.buf).is_some() {
                    // The file ended inside a quoted field: its quote never closes, so
                    // it was stray.
                    self.reject_stray_quote_line(sink)?;
                    splitter.reset();
                    continue;
                }
                if self.buf.len() > max {
                    if let Some(e) = self.reject_long_record(input, sink)? {
                        return self.reject_corrupt_rest(sink, &e);
                    }
                    splitter.reset();
                    continue;
                }
                let n = self.buf.len();
                self.emit(sink, file, n)?;
                return Ok(());
            }
            if self.buf.len() - b > max {
                if b > 0 {
                    self.emit(sink, file, b)?;
                }
                if let Some(e) = self.reject_long_record(input, sink)? {
                    return self.reject_corrupt_rest(sink, &e);
                }
                splitter.reset();
                continue;
            }
            let want = self.buf.len() + self.read_bytes;
            if let Fill::Corrupt(e) = self.fill(input, want)? {
                // Parse what arrived whole, reject what cannot be read.
                splitter.scan(&self.buf);
                let b = splitter.last_boundary();
                if b > 0 {
                    self.emit(sink, file, b)?;
                }
                return self.reject_corrupt_rest(sink, &e);
            }
        }
    }

    fn reject_corrupt_rest(
        &mut self,
        sink: &mut impl ReaderSink,
        e: &std::io::Error,
    ) -> Result<(), StorageError> {
        let reason = format!(
            "file is corrupt from line {} on ({e}); the rest of the file could not be read",
            self.line
        );
        self.reject_rest(sink, &reason)
    }

    /// The file grew after it was listed and its listed bytes end inside a record:
    /// that record was still being written, so it is rejected, not loaded.
    fn reject_unfinished_tail(
        &mut self,
        sink: &mut impl ReaderSink,
        size: u64,
    ) -> Result<(), StorageError> {
        self.stats.count(0, 1);
        let reject = Reject::new(
            &self.layout.source,
            &self.source_key,
            Some(self.line),
            trim_eol(&self.buf),
            format!(
                "unfinished last record: the file grew to {size} bytes while it was read, and its listed bytes end inside this record; the next run reads it whole"
            ),
        );
        sink.reject(reject)?;
        Ok(())
    }

    /// Sends `buf[..n]` to the parsers.
    fn emit(
        &mut self,
        sink: &mut impl ReaderSink,
        file: &Arc<FileCtx>,
        n: usize,
    ) -> Result<(), ReadError> {
        let rest = self.buf[n..].to_vec();
        let mut data = std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk_bytes + self.read_bytes),
        );
        self.buf.extend_from_slice(&rest);
        data.truncate(n);
        let first_line = self.line;
        self.line += memchr::memchr_iter(b'\n', &data).count() as u64;
        sink.chunk(Chunk {
            file: file.clone(),
            data,
            first_line,
        })
    }

    fn count_blank_tail(&self) {
        let n = memchr::memchr_iter(b'\n', &self.buf).count() as u64;
        self.stats.note(super::BLANK_LINES, n);
    }

    /// An opening quote whose field never closes before the end of the file: the
    /// quote is stray. Reject its line and go on after it.
    fn reject_stray_quote_line(&mut self, sink: &mut impl ReaderSink) -> Result<(), ReadError> {
        let nl = memchr::memchr(b'\n', &self.buf).expect("caller checked for a newline");
        let line = trim_eol(&self.buf[..nl + 1]);
        self.stats.count(0, 1);
        sink.reject(Reject::new(
            &self.layout.source,
            &self.source_key,
            Some(self.line),
            line,
            "unterminated quoted field: its quote never closes before the end of the file"
                .to_string(),
        ))?;
        self.buf.drain(..nl + 1);
        self.line += 1;
        Ok(())
    }

    /// The record at the start of the buffer is longer than the limit: keep its
    /// start for the rejects row and skip to its end without holding it in memory,
    /// following quotes as csv-core does (a line break inside a quoted field does
    /// not end it). Returns the decoding error when the input broke while skipping:
    /// the caller then rejects the rest of the file.
    fn reject_long_record(
        &mut self,
        input: &mut impl Read,
        sink: &mut impl ReaderSink,
    ) -> Result<Option<std::io::Error>, StorageError> {
        let start_line = self.line;
        let head: Vec<u8> =
            self.buf[..crate::sources::csv::MAX_RAW_BYTES.min(self.buf.len())].to_vec();
        let mut end = Splitter::new(self.layout.delimiter, self.layout.quote);
        let (mut skipped, mut lines) = (0u64, 0u64);
        let mut broken = None;
        loop {
            if let Some(e) = end.scan_to_boundary(&self.buf) {
                skipped += e as u64;
                lines += memchr::memchr_iter(b'\n', &self.buf[..e]).count() as u64;
                self.buf.drain(..e);
                break;
            }
            skipped += self.buf.len() as u64;
            lines += memchr::memchr_iter(b'\n', &self.buf).count() as u64;
            end.consume(self.buf.len());
            self.buf.clear();
            if self.eof {
                break;
            }
            if let Fill::Corrupt(e) = self.fill(input, self.read_bytes)? {
                broken = Some(e);
                break;
            }
            if self.buf.is_empty() && self.eof {
                break;
            }
        }
        self.line = start_line + lines;
        self.stats.count(0, 1);
        let reason = if end.in_quotes() && broken.is_none() {
            format!(
                "record is {skipped} bytes, longer than csv.max_record_bytes ({} bytes): a quoted field opened on this line never closes before the end of the file",
                self.layout.max_record_bytes
            )
        } else {
            format!(
                "record is {skipped} bytes, longer than csv.max_record_bytes ({} bytes)",
                self.layout.max_record_bytes
            )
        };
        let mut reject = Reject::new(
            &self.layout.source,
            &self.source_key,
            Some(start_line),
            trim_eol(&head),
            reason,
        );
        reject.raw_bytes = skipped;
        sink.reject(reject)?;
        Ok(broken)
    }

    /// Rejects the file from the current position on (the whole file when nothing
    /// was read yet).
    fn reject_rest(
        &mut self,
        sink: &mut impl ReaderSink,
        reason: &str,
    ) -> Result<(), StorageError> {
        self.reject_from(sink, reason, false)
    }

    fn reject_whole(
        &mut self,
        sink: &mut impl ReaderSink,
        reason: &str,
    ) -> Result<(), StorageError> {
        self.reject_from(sink, reason, true)
    }

    fn reject_from(
        &mut self,
        sink: &mut impl ReaderSink,
        reason: &str,
        whole: bool,
    ) -> Result<(), StorageError> {
        self.stats.set_item_error(reason);
        sink.reject(Reject::new(
            &self.layout.source,
            &self.source_key,
            if whole { None } else { Some(self.line) },
            &self.buf,
            reason.to_string(),
        ))?;
        Ok(())
    }
}

fn first_record_end(splitter: &mut Splitter, buf: &[u8]) -> usize {
    // Feed growing prefixes so the first boundary, not the last, is found.
    let mut end = 0;
    while end < buf.len() {
        let next = memchr::memchr(b'\n', &buf[end..]).map_or(buf.len(), |i| end + i + 1);
        splitter.scan(&buf[..next]);
        if splitter.last_boundary() > 0 {
            return splitter.last_boundary();
        }
        end = next;
    }
    buf.len()
}

pub(crate) fn trim_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// Splits one record into its fields (unquoted), or `None` if it is not UTF-8.
fn split_fields(record: &[u8], delimiter: u8, quote: u8) -> Option<Vec<String>> {
    let record = trim_eol(record);
    let mut rdr = csv_core::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(quote)
        .build();
    let mut out = vec![0u8; record.len() + 1];
    let mut ends = vec![0usize; record.len() + 2];
    let (mut pos_in, mut pos_out, mut n_ends) = (0, 0, 0);
    loop {
        let (r, nin, nout, nend) =
            rdr.read_record(&record[pos_in..], &mut out[pos_out..], &mut ends[n_ends..]);
        pos_in += nin;
        pos_out += nout;
        n_ends += nend;
        if r != csv_core::ReadRecordResult::InputEmpty {
            break;
        }
    }
    // `ends` are positions in the record's whole output (csv-core's contract).
    let mut fields = Vec::with_capacity(n_ends);
    let mut start = 0;
    for &e in &ends[..n_ends] {
        fields.push(String::from_utf8(out[start..e].to_vec()).ok()?);
        start = e;
    }
    Some(fields)
}

/// Maps header names to declared columns: every declared column must appear once,
/// nothing else may appear (an unknown column would be data dropped silently).
fn match_header(names: &[String], declared: &[&str], source: &str) -> Result<Vec<usize>, String> {
    let mut mapping = Vec::with_capacity(names.len());
    let mut seen = vec![false; declared.len()];
    let mut unexpected = Vec::new();
    for name in names {
        let wanted = name.trim().to_ascii_lowercase();
        match declared.iter().position(|d| *d == wanted) {
            Some(i) if seen[i] => {
                return Err(format!("header names column `{}` twice", name.trim()));
            }
            Some(i) => {
                seen[i] = true;
                mapping.push(i);
            }
            None => unexpected.push(name.trim().to_string()),
        }
    }
    let missing: Vec<&str> = declared
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(d, _)| *d)
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(mapping);
    }
    let mut reason = format!("header does not match source `{source}`:");
    if !missing.is_empty() {
        reason.push_str(&format!(" missing {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        reason.push_str(&format!(
            "{} unexpected {}",
            if missing.is_empty() { "" } else { ";" },
            unexpected.join(", ")
        ));
    }
    reason.push_str(&format!(" (expected: {})", declared.join(", ")));
    Err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matching_explains_mismatches() {
        let declared = ["sensor_id", "timestamp", "value"];
        let names: Vec<String> = ["Value", " sensor_id", "TIMESTAMP"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            match_header(&names, &declared, "long").unwrap(),
            vec![2, 0, 1]
        );
        let names: Vec<String> = ["sensor_id", "ts", "value"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = match_header(&names, &declared, "long").unwrap_err();
        assert!(
            err.contains("missing timestamp") && err.contains("unexpected ts"),
            "{err}"
        );
    }

    #[test]
    fn header_fields_are_unquoted() {
        assert_eq!(
            split_fields(b"a,\"b,c\",\"d\"\"e\"\r\n", b',', b'"').unwrap(),
            vec!["a", "b,c", "d\"e"]
        );
        assert!(split_fields(b"a,\xff\n", b',', b'"').is_none());
    }
}
