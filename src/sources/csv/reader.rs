//! The reader stage: one file at a time, sequentially. It decompresses, decodes
//! the file's encoding to UTF-8 ([`super::decode`]), checks that the file is text at
//! all, drops the preamble, matches the header to the declared columns, drops the
//! lines after it that are not data, and cuts the byte stream into chunks of whole
//! records for the parsers.
//!
//! Whole-file problems (empty, binary, a header that does not decode or does not
//! match, corrupt gzip) and records too long to buffer are rejected here;
//! everything else is the parsers'. Lines dropped on purpose (preamble, comment
//! lines before the header, lines after it) are counted as `lines_skipped`; line
//! numbers stay physical.
//!
//! Skipping a record too long to hold follows quotes exactly as csv-core does, so
//! reading resumes at the next record, never inside a quoted field. Only at the end
//! of the file is a quote that never closed taken for a stray one: its line is
//! rejected and reading goes on after it.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use encoding_rs::Encoding;

use super::decode;
use super::split::Splitter;
use super::{Chunk, CsvLayout, FileCtx, Join, LINES_SKIPPED, NOT_A_COLUMN, Reject};
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
        decoded_from: None,
    };
    // The first bytes say whether a byte order mark overrides the declared encoding.
    let mut head = [0u8; 4];
    let n = match read_head(&mut input, &mut head) {
        Ok(n) => n,
        Err(e) if is_corrupt(&e) => {
            return r.reject_whole(sink, &format!("file cannot be decoded: {e}"));
        }
        Err(e) => return Err(StorageError::Io(e)),
    };
    let text = decode::open(layout.encoding, &head[..n], input);
    r.decoded_from = text.decoded_from;
    let mut input = text.reader;
    r.run(&mut input, sink)
}

/// Reads up to `head.len()` bytes (fewer only at the end of the input).
fn read_head(input: &mut impl Read, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Errors of the bytes themselves (corrupt gzip), not of the storage.
fn is_corrupt(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof
    )
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
    /// The encoding the file is decoded from (`None`: UTF-8, read as it is).
    decoded_from: Option<&'static Encoding>,
}

/// Whether the buffered bytes start with a blank line (ASCII whitespace at most,
/// then the line's end); `None` when the buffer ends before that is known.
fn blank_line(rest: &[u8], eof: bool) -> Option<bool> {
    let spaces = rest
        .iter()
        .take_while(|b| b.is_ascii_whitespace() && **b != b'\n')
        .count();
    match &rest[spaces..] {
        [b'\n', ..] => Some(true),
        [] if eof => Some(true),
        [] => None,
        _ => Some(false),
    }
}

/// What is left after the lines before the header.
enum Preamble {
    /// The header (or, without one, the first record) comes next.
    Ended,
    /// The file ended after preamble or comment lines that held text.
    FileEnded,
    /// The file holds nothing but whitespace.
    Empty,
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
        match self.skip_preamble(input)? {
            Ok(Preamble::Ended) => {}
            Ok(Preamble::Empty) => {
                return self.reject_whole(sink, "empty file: no header and no records");
            }
            // Nothing but the preamble, blank and comment lines: no records.
            Ok(Preamble::FileEnded) => return Ok(()),
            Err(reason) => return self.reject_whole(sink, &reason),
        }
        let (field_to_column, joins) = if self.layout.header {
            match self.read_header(input)? {
                Ok(map) => map,
                Err(reason) => return self.reject_whole(sink, &reason),
            }
        } else {
            ((0..self.layout.columns.len()).collect(), Vec::new())
        };
        if let Err(reason) = self.drop_lines(input, self.layout.skip_after_header)? {
            return self.reject_whole(sink, &reason);
        }
        let file = Arc::new(FileCtx {
            source_key: self.source_key.clone(),
            stats: self.stats.clone(),
            field_to_column,
            joins,
            decoded_from: self.decoded_from,
        });
        self.split_records(input, sink, &file)
    }

    /// Drops `skip_lines` physical lines, then the blank and comment lines before
    /// the header, and says whether anything is left after them.
    fn skip_preamble(
        &mut self,
        input: &mut impl Read,
    ) -> Result<Result<Preamble, String>, StorageError> {
        let (mut at, mut skipped, mut blank) = (0, 0u64, 0u64);
        // Whether a skipped line held more than whitespace.
        let mut text = false;
        let mut to_skip = self.layout.skip_lines;
        let comment = self.layout.comment.clone();
        // Enough of a line to tell a blank or a comment line from the header.
        let enough = comment.as_ref().map_or(2, |c| c.len().max(2));
        let mut look = enough;
        let found = loop {
            if let Err(reason) = self.look_ahead(input, &mut at, look)? {
                break Err(reason);
            }
            let rest = &self.buf[at..];
            if rest.is_empty() {
                break Ok(if text {
                    Preamble::FileEnded
                } else {
                    Preamble::Empty
                });
            }
            if to_skip > 0 {
                // Skipped whatever it holds, without being held.
                to_skip -= 1;
                skipped += 1;
                match self.skip_line(input, &mut at)? {
                    Ok(held_text) => text |= held_text,
                    Err(reason) => break Err(reason),
                }
                continue;
            }
            let blank_line = match blank_line(rest, self.eof) {
                // Whitespace goes on past the buffer: read more of it, up to the
                // longest record; beyond that, skip it and see what it was.
                None if rest.len() <= self.layout.max_record_bytes => {
                    look = rest.len() + self.read_bytes;
                    continue;
                }
                None => match self.skip_line(input, &mut at)? {
                    Ok(false) => {
                        blank += 1;
                        look = enough;
                        continue;
                    }
                    Ok(true) => {
                        break Err(format!(
                            "header line is longer than csv.max_record_bytes ({} bytes)",
                            self.layout.max_record_bytes
                        ));
                    }
                    Err(reason) => break Err(reason),
                },
                Some(known) => known,
            };
            look = enough;
            if blank_line {
                blank += 1;
            } else if comment.as_deref().is_some_and(|c| rest.starts_with(c)) {
                skipped += 1;
                text = true;
            } else {
                break Ok(Preamble::Ended);
            }
            if let Err(reason) = self.skip_line(input, &mut at)? {
                break Err(reason);
            }
        };
        self.buf.drain(..at);
        if !matches!(found, Ok(Preamble::Empty)) {
            self.count(LINES_SKIPPED, skipped);
            self.count(super::BLANK_LINES, blank);
        }
        Ok(found)
    }

    /// Drops the next `n` physical lines (fewer when the file ends first) and
    /// counts them as skipped.
    fn drop_lines(
        &mut self,
        input: &mut impl Read,
        n: u64,
    ) -> Result<Result<(), String>, StorageError> {
        let (mut at, mut dropped) = (0, 0);
        let mut result = Ok(());
        while dropped < n {
            if let Err(reason) = self.look_ahead(input, &mut at, 1)? {
                result = Err(reason);
                break;
            }
            if at == self.buf.len() {
                break;
            }
            if let Err(reason) = self.skip_line(input, &mut at)? {
                result = Err(reason);
                break;
            }
            dropped += 1;
        }
        self.buf.drain(..at);
        self.count(LINES_SKIPPED, dropped);
        Ok(result)
    }

    /// Adds to one of the file's own counters (a report shows only those above 0).
    fn count(&self, counter: &'static str, n: u64) {
        if n > 0 {
            self.stats.note(counter, n);
        }
    }

    /// Makes the buffer hold `n` bytes from `*at` (fewer only at the end of the
    /// file); reading more first drops the bytes before `*at` and moves it to 0.
    fn look_ahead(
        &mut self,
        input: &mut impl Read,
        at: &mut usize,
        n: usize,
    ) -> Result<Result<(), String>, StorageError> {
        if self.buf.len() - *at >= n || self.eof {
            return Ok(Ok(()));
        }
        self.buf.drain(..*at);
        *at = 0;
        if let Fill::Corrupt(e) = self.fill(input, n)? {
            return Ok(Err(format!("file cannot be decoded: {e}")));
        }
        Ok(Ok(()))
    }

    /// Moves `*at` past the line it starts (after its line feed, or to the end of
    /// the file), however long the line: what is buffered of it is dropped before
    /// more is read, so a skipped line is never held whole. Says whether the line
    /// held more than whitespace.
    fn skip_line(
        &mut self,
        input: &mut impl Read,
        at: &mut usize,
    ) -> Result<Result<bool, String>, StorageError> {
        let mut text = false;
        loop {
            let newline = memchr::memchr(b'\n', &self.buf[*at..]);
            let end = newline.map_or(self.buf.len(), |i| *at + i);
            text |= self.buf[*at..end].iter().any(|b| !b.is_ascii_whitespace());
            if newline.is_some() {
                *at = end + 1;
                self.line += 1;
                return Ok(Ok(text));
            }
            self.buf.clear();
            *at = 0;
            if self.eof {
                return Ok(Ok(text));
            }
            if let Fill::Corrupt(e) = self.fill(input, self.read_bytes)? {
                return Ok(Err(format!("file cannot be decoded: {e}")));
            }
        }
    }

    /// Where the next read of records stops: at the end of the room the buffer
    /// was made with while there is some, else `read_bytes` further. A read past
    /// that room makes `read_to_end` double the buffer and copy what it holds; a
    /// chunk's last read did so nearly every time (a chunk's end falls inside a
    /// record), copying and faulting in about 2 MiB per chunk.
    fn next_fill(&self) -> usize {
        let spare = self.buf.capacity() - self.buf.len();
        let step = if spare > 0 {
            spare.min(self.read_bytes)
        } else {
            self.read_bytes
        };
        self.buf.len() + step
    }

    /// Reads until the buffer holds `want` bytes or the input ends.
    fn fill(&mut self, input: &mut impl Read, want: usize) -> Result<Fill, StorageError> {
        while !self.eof && self.buf.len() < want {
            let old = self.buf.len();
            // read_to_end reads into the spare capacity. It zeroes those bytes
            // first unless the reader implements `read_buf`, which `File` does and
            // the storage reader wrapping it cannot on stable Rust: about 1% of a
            // CSV run's CPU (docs/benchmarks.md).
            let wanted = (want - old) as u64;
            match input.by_ref().take(wanted).read_to_end(&mut self.buf) {
                Ok(n) if (n as u64) < wanted => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_corrupt(&e) => {
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
    ) -> Result<Result<HeaderMap, String>, StorageError> {
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
            if let Fill::Corrupt(e) = self.fill(input, self.next_fill())? {
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
                return Ok(Err(match self.decoded_from {
                    Some(e) => format!(
                        "header line has bytes that are not valid {}; check `csv.encoding`",
                        e.name()
                    ),
                    None => "header line is not valid UTF-8; set `csv.encoding` to the file's encoding (e.g. \"windows-1252\", \"shift_jis\")".into(),
                }));
            }
        };
        let mapping = match_header(&names, self.layout);
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
        let mut splitter = Splitter::new(self.layout.delimiter, self.layout.quote)
            .with_comment(self.layout.comment.as_deref());
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
            if let Fill::Corrupt(e) = self.fill(input, self.next_fill())? {
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
        )
        .decoded(self.decoded_from.is_some());
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
        sink.reject(
            Reject::new(
                &self.layout.source,
                &self.source_key,
                Some(self.line),
                line,
                "unterminated quoted field: its quote never closes before the end of the file"
                    .to_string(),
            )
            .decoded(self.decoded_from.is_some()),
        )?;
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
        if let Some(prefix) = &self.layout.comment
            && self.buf.starts_with(prefix)
        {
            return self.skip_long_comment_line(input);
        }
        let start_line = self.line;
        let head: Vec<u8> =
            self.buf[..crate::sources::csv::MAX_RAW_BYTES.min(self.buf.len())].to_vec();
        let mut end = Splitter::new(self.layout.delimiter, self.layout.quote)
            .with_comment(self.layout.comment.as_deref());
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
        )
        .decoded(self.decoded_from.is_some());
        reject.raw_bytes = skipped;
        sink.reject(reject)?;
        Ok(broken)
    }

    /// A comment line longer than the limit: skipped to its first line feed (its
    /// quotes are text), without holding it, and counted as skipped.
    fn skip_long_comment_line(
        &mut self,
        input: &mut impl Read,
    ) -> Result<Option<std::io::Error>, StorageError> {
        self.count(LINES_SKIPPED, 1);
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                self.buf.drain(..=i);
                self.line += 1;
                return Ok(None);
            }
            self.buf.clear();
            if self.eof {
                return Ok(None);
            }
            if let Fill::Corrupt(e) = self.fill(input, self.read_bytes)? {
                return Ok(Some(e));
            }
        }
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
        sink.reject(
            Reject::new(
                &self.layout.source,
                &self.source_key,
                if whole { None } else { Some(self.line) },
                &self.buf,
                reason.to_string(),
            )
            .decoded(self.decoded_from.is_some()),
        )?;
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
    record_fields(record, delimiter, quote)
        .into_iter()
        .map(|f| String::from_utf8(f).ok())
        .collect()
}

/// The fields of one record (a line ending is ignored), unquoted as csv-core
/// unquotes them: the header's, and the sniffer's lines'.
pub(crate) fn record_fields(record: &[u8], delimiter: u8, quote: u8) -> Vec<Vec<u8>> {
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
        // An empty input tells csv-core the record ended; it answers with the record.
        if r != csv_core::ReadRecordResult::InputEmpty {
            break;
        }
    }
    // `ends` are positions in the record's whole output (csv-core's contract).
    let mut start = 0;
    ends[..n_ends]
        .iter()
        .map(|&e| {
            let field = out[start..e].to_vec();
            start = e;
            field
        })
        .collect()
}

/// Per field of a record, the declared column it fills, and the columns built
/// from several fields.
type HeaderMap = (Vec<usize>, Vec<Join>);

/// Header text as it is compared: trimmed, lower-case (any script).
fn header_key(text: &str) -> String {
    text.trim().to_lowercase()
}

/// Maps header names to declared columns (by their `header`, or by the `from`
/// list of a column built from several): every declared column and every `from`
/// header must appear once, nothing else may appear (an unknown column would be
/// data dropped silently).
fn match_header(names: &[String], layout: &CsvLayout) -> Result<HeaderMap, String> {
    let columns = &layout.columns;
    let mut mapping = vec![NOT_A_COLUMN; names.len()];
    let mut seen = vec![false; columns.len()];
    // Per column built from several fields, the field of each `from` header.
    let mut parts: Vec<(usize, Vec<Option<usize>>)> = columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.from.as_ref().map(|f| (i, vec![None; f.len()])))
        .collect();
    let mut unexpected = Vec::new();
    for (field, name) in names.iter().enumerate() {
        let key = header_key(name);
        let twice = || format!("header names column `{}` twice", name.trim());
        let mut used = false;
        if let Some(col) = columns
            .iter()
            .position(|c| c.from.is_none() && header_key(c.header_text()) == key)
        {
            if seen[col] {
                return Err(twice());
            }
            seen[col] = true;
            mapping[field] = col;
            used = true;
        }
        for (col, fields) in &mut parts {
            let from = columns[*col].from.as_deref().unwrap_or_default();
            for (k, header) in from.iter().enumerate() {
                if header_key(header) == key {
                    if fields[k].is_some() {
                        return Err(twice());
                    }
                    fields[k] = Some(field);
                    used = true;
                }
            }
        }
        if !used {
            unexpected.push(name.trim().to_string());
        }
    }
    let mut missing: Vec<&str> = columns
        .iter()
        .zip(&seen)
        .filter(|(c, s)| c.from.is_none() && !**s)
        .map(|(c, _)| c.header_text())
        .collect();
    let mut joins = Vec::with_capacity(parts.len());
    for (col, fields) in &parts {
        let from = columns[*col].from.as_deref().unwrap_or_default();
        missing.extend(
            from.iter()
                .zip(fields)
                .filter(|(_, f)| f.is_none())
                .map(|(h, _)| h.as_str()),
        );
        joins.push(Join {
            column: *col,
            fields: fields.iter().flatten().copied().collect(),
        });
    }
    if missing.is_empty() && unexpected.is_empty() {
        return Ok((mapping, joins));
    }
    let expected: Vec<&str> = columns
        .iter()
        .flat_map(|c| match &c.from {
            Some(from) => from.iter().map(String::as_str).collect(),
            None => vec![c.header_text()],
        })
        .collect();
    let mut reason = format!("header does not match source `{}`:", layout.source);
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
    reason.push_str(&format!(" (expected: {})", expected.join(", ")));
    Err(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(columns: &str) -> CsvLayout {
        let options: super::super::CsvOptions =
            toml::from_str(&format!("columns = [{columns}]")).unwrap();
        options.check().unwrap();
        CsvLayout::new("long", &options).unwrap()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_matching_explains_mismatches() {
        let layout = layout(
            r#"{ name = "sensor_id", type = "string" }, { name = "timestamp", type = "timestamp" }, { name = "value", type = "double" }"#,
        );
        let (mapping, joins) =
            match_header(&names(&["Value", " sensor_id", "TIMESTAMP"]), &layout).unwrap();
        assert_eq!((mapping, joins.len()), (vec![2, 0, 1], 0));
        let err = match_header(&names(&["sensor_id", "ts", "value"]), &layout).unwrap_err();
        assert!(
            err.contains("missing timestamp") && err.contains("unexpected ts"),
            "{err}"
        );
    }

    #[test]
    fn headers_in_any_script_and_columns_from_several() {
        let layout = layout(
            r#"{ name = "at", type = "timestamp", from = ["日付", "時刻"], timestamp_format = "%Y/%m/%d %H:%M:%S" },
               { name = "ch1", header = "CH1 温度", type = "double" },
               { name = "date", header = "日付", type = "string" }"#,
        );
        let (mapping, joins) =
            match_header(&names(&["日付", "時刻", " ch1 温度 "]), &layout).unwrap();
        assert_eq!(mapping, vec![2, NOT_A_COLUMN, 1]);
        assert_eq!((joins[0].column, joins[0].fields.clone()), (0, vec![0, 1]));
        let err = match_header(&names(&["日付", "CH1 温度"]), &layout).unwrap_err();
        assert!(err.contains("missing 時刻"), "{err}");
        assert!(
            err.contains("(expected: 日付, 時刻, CH1 温度, 日付)"),
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
