//! The CSV source: typed, validated, lossless extraction of CSV logs.
//!
//! ```text
//!  reader thread (one per source)                        parsers (DataFusion partitions)
//!  object → gunzip → decode → preamble, header check → split ──► chunk ──► csv-core + typed columns ──► RecordBatch
//!                 │ (whole-file rejects)                 │ (row rejects)
//!                 └──────────────────────────────────────┴──► rejects channel
//! ```
//!
//! The reader cuts each file into chunks of whole records ([`split`]) so that the
//! expensive part, parsing and typing, runs on every core even for one big file.
//! Channels between the stages are bounded: memory does not grow with input size.

mod columns;
pub mod decode;
pub mod instants;
pub mod marks;
pub mod options;
pub mod parse;
pub mod reader;
pub mod sniff;
pub mod split;
pub mod timestamp;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use encoding_rs::Encoding;

use crate::discover::ItemStats;

use crate::model::WorkItem;
use crate::model::schema::TableSchema;
use crate::sources::{Emitter, ItemInput, ReadError, Source};
use instants::{DateRule, TimestampRule};
pub use options::{CsvFormat, CsvOptions, InputColumn, InputType, TimestampFormat};
use parse::ChunkParser;
use reader::{ReaderSink, StorageError};

/// The per-file counter of empty lines between records (they are not rows).
pub const BLANK_LINES: &str = "blank_lines";

/// The per-file counter of lines dropped on purpose: the preamble (`skip_lines`),
/// the lines after the header (`skip_after_header`) and comment lines.
pub const LINES_SKIPPED: &str = "lines_skipped";

/// Longest raw line kept in a rejects row; the full length is recorded beside it.
pub const MAX_RAW_BYTES: usize = 4096;

/// The CSV rejects table's columns and comments.
const REJECTS_SCHEMA: &str = include_str!("../../../schemas/csv_rejects.toml");

/// A CSV source of a job.
#[derive(Debug)]
pub struct CsvSource {
    layout: Arc<CsvLayout>,
}

impl Source for CsvSource {
    const FORMAT: &'static str = "csv";
    const SUFFIXES: Option<&'static [&'static str]> = Some(&[".csv", ".csv.gz"]);
    type Options = CsvOptions;
    type Unit = Chunk;
    type Reject = Reject;
    type Parser = ChunkParser;

    fn new(name: &str, options: CsvOptions) -> Result<Self, String> {
        options.check()?;
        Ok(CsvSource {
            layout: Arc::new(CsvLayout::new(name, &options)?),
        })
    }

    fn schema(&self) -> SchemaRef {
        self.layout.schema.clone()
    }

    fn rejects_table() -> TableSchema {
        TableSchema::parse(REJECTS_SCHEMA, "schemas/csv_rejects.toml")
            .expect("the built-in CSV rejects schema is valid (a unit test reads it)")
    }

    fn rejects_batch(&self, rejects: Vec<Reject>) -> RecordBatch {
        rejects_batch(&rejects)
    }

    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Reject {
        Reject::new(
            &self.layout.source,
            &item.key.as_str().into(),
            None,
            b"",
            reason.to_string(),
        )
    }

    fn read(&self, input: &ItemInput<'_>, out: &mut Emitter<'_, Self>) -> Result<(), ReadError> {
        let pinned = input.open_growing()?;
        let key: Arc<str> = input.item.key.as_str().into();
        let stats = input.stats.clone();
        let grew = pinned.grew_to;
        let result = if input.item.key.to_ascii_lowercase().ends_with(".gz") {
            let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
                1 << 20,
                pinned.reader,
            ));
            reader::read_file(&self.layout, key, stats, gz, grew, out)
        } else {
            reader::read_file(&self.layout, key, stats, pinned.reader, grew, out)
        };
        result.map_err(|e| match e {
            StorageError::Io(e) => ReadError::Storage(e.to_string()),
            StorageError::Stopped(e) => e,
        })
    }

    fn parser(&self) -> ChunkParser {
        ChunkParser::new(self.layout.clone())
    }

    fn sniff(
        sample: &crate::sources::sniff::Sample<'_>,
    ) -> Option<Result<crate::sources::sniff::Sniffed, String>> {
        let found = sniff::sniff(sample.head, sample.truncated, sample.file_name, sample.name);
        Some(found.map_err(|e| e.to_string()))
    }
}

impl ReaderSink for Emitter<'_, CsvSource> {
    fn chunk(&mut self, chunk: Chunk) -> Result<(), ReadError> {
        self.unit(chunk)
    }
    fn reject(&mut self, reject: Reject) -> Result<(), ReadError> {
        Emitter::reject(self, reject)
    }
}

/// A CSV record or file that could not be read.
#[derive(Debug, Clone)]
pub struct Reject {
    pub source: Arc<str>,
    pub source_key: Arc<str>,
    /// First line of the rejected record; `None` when the whole file is rejected.
    pub line_number: Option<i64>,
    /// The raw bytes, cut at [`MAX_RAW_BYTES`].
    pub raw: Vec<u8>,
    /// `raw` is decoded text in which bytes that did not decode are escaped
    /// ([`decode::MARK`]).
    pub decoded: bool,
    /// Length of the whole raw record (or of what could not be read).
    pub raw_bytes: u64,
    pub reason: String,
}

impl Reject {
    pub fn new(
        source: &Arc<str>,
        source_key: &Arc<str>,
        line_number: Option<u64>,
        raw: &[u8],
        reason: String,
    ) -> Self {
        Reject {
            source: source.clone(),
            source_key: source_key.clone(),
            line_number: line_number.map(|n| n as i64),
            raw: raw[..raw_cut(raw)].to_vec(),
            raw_bytes: raw.len() as u64,
            decoded: false,
            reason,
        }
    }

    /// Marks `raw` as text decoded from another encoding.
    pub fn decoded(mut self, decoded: bool) -> Self {
        self.decoded = decoded;
        self
    }
}

/// Where a raw line is cut for its rejects row: at [`MAX_RAW_BYTES`], moved back so
/// that it splits neither a UTF-8 character nor the escape of a byte that did not
/// decode ([`decode::MARK`] and two hex digits).
fn raw_cut(raw: &[u8]) -> usize {
    if raw.len() <= MAX_RAW_BYTES {
        return raw.len();
    }
    let mut cut = MAX_RAW_BYTES;
    // A UTF-8 character is at most 4 bytes: back off over continuation bytes.
    while cut > MAX_RAW_BYTES - 3 && (raw[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if let Some(at) = raw[cut.saturating_sub(2)..cut]
        .iter()
        .position(|&b| b == decode::MARK)
    {
        cut = cut.saturating_sub(2) + at;
    }
    cut
}

/// Builds a rejects batch. Raw bytes that are not UTF-8 (or did not decode) are
/// shown as `\xNN`, never as a replacement character (the reason says why).
pub fn rejects_batch(rejects: &[Reject]) -> RecordBatch {
    let mut source = StringBuilder::new();
    let mut key = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut raw = StringBuilder::new();
    let mut raw_bytes = Int64Builder::new();
    let mut reason = StringBuilder::new();
    for r in rejects {
        source.append_value(&r.source);
        key.append_value(&r.source_key);
        line.append_option(r.line_number);
        raw.append_value(decode::shown(&r.raw, r.decoded));
        raw_bytes.append_value(r.raw_bytes as i64);
        reason.append_value(&r.reason);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(key.finish()),
        Arc::new(line.finish()),
        Arc::new(raw.finish()),
        Arc::new(raw_bytes.finish()),
        Arc::new(reason.finish()),
    ];
    static SCHEMA: std::sync::LazyLock<SchemaRef> =
        std::sync::LazyLock::new(|| CsvSource::rejects_table().file_schema());
    RecordBatch::try_new(SCHEMA.clone(), columns)
        .expect("rejects columns match the CSV rejects schema (a unit test checks)")
}

/// How one source's files are read and typed.
#[derive(Debug)]
pub struct CsvLayout {
    pub source: Arc<str>,
    pub columns: Vec<InputColumn>,
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub max_record_bytes: usize,
    /// The declared encoding (a byte order mark overrides it per file).
    pub encoding: &'static Encoding,
    pub skip_lines: u64,
    pub skip_after_header: u64,
    pub comment: Option<Vec<u8>>,
    pub decimal_comma: bool,
    pub nulls: NullTexts,
    /// Per declared column: how a timestamp column's cells are read.
    pub timestamps: Vec<Option<TimestampRule>>,
    /// Per declared column: how a date column's cells are read.
    pub dates: Vec<Option<DateRule>>,
    /// Declared columns plus `source_key` and `line_number`.
    pub schema: SchemaRef,
}

/// Cell texts that mean NULL.
#[derive(Debug, Clone)]
pub struct NullTexts {
    /// An empty or whitespace-only cell is NULL (in every column).
    pub empty: bool,
    /// The other texts, compared after trimming.
    texts: Vec<Vec<u8>>,
}

impl NullTexts {
    pub fn new(values: &[String]) -> Self {
        NullTexts {
            empty: values.iter().any(|v| v.trim().is_empty()),
            texts: values
                .iter()
                .map(|v| v.trim().as_bytes().to_vec())
                .filter(|v| !v.is_empty())
                .collect(),
        }
    }

    pub fn has_texts(&self) -> bool {
        !self.texts.is_empty()
    }

    /// `trimmed` is one of the texts other than the empty one.
    pub fn is_text(&self, trimmed: &[u8]) -> bool {
        self.texts.iter().any(|t| t == trimmed)
    }
}

impl CsvLayout {
    /// The layout of a checked source; errors name the key (a pattern, a zone or
    /// an encoding that does not exist).
    pub fn new(source: &str, options: &CsvOptions) -> Result<Self, String> {
        let csv = &options.csv;
        let mut fields: Vec<Field> = options
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_input_type(c.kind), c.nullable))
            .collect();
        fields.push(Field::new("source_key", DataType::Utf8, false));
        fields.push(Field::new("line_number", DataType::Int64, false));
        let encoding = Encoding::for_label(csv.encoding.trim().as_bytes()).ok_or_else(|| {
            let hint = codepage_label(&csv.encoding)
                .map(|l| format!("; for {:?} write {l:?}", csv.encoding))
                .unwrap_or_default();
            format!(
                "`csv.encoding`: {:?} is not a label of the WHATWG Encoding Standard (e.g. \"utf-8\", \"shift_jis\", \"windows-1252\", \"utf-16le\"){hint}",
                csv.encoding
            )
        })?;
        // ISO-2022-JP switches its meaning of bytes with escapes that a line break
        // does not reset, so one unclosed run would swallow every later line; the
        // `replacement` encoding decodes nothing.
        if encoding == encoding_rs::ISO_2022_JP || encoding == encoding_rs::REPLACEMENT {
            return Err(format!(
                "`csv.encoding`: {:?} ({}) cannot be read line by line; convert the files to UTF-8",
                csv.encoding,
                encoding.name()
            ));
        }
        let in_column = |c: &InputColumn, e: String| format!("`columns`: `{}`: {e}", c.name);
        let mut timestamps = Vec::with_capacity(options.columns.len());
        let mut dates = Vec::with_capacity(options.columns.len());
        for c in &options.columns {
            timestamps.push(match c.kind {
                InputType::Timestamp => Some(TimestampRule::new(c).map_err(|e| in_column(c, e))?),
                _ => None,
            });
            dates.push(match c.kind {
                InputType::Date => Some(DateRule::new(c).map_err(|e| in_column(c, e))?),
                _ => None,
            });
        }
        Ok(CsvLayout {
            source: source.into(),
            columns: options.columns.clone(),
            delimiter: csv.delimiter.as_bytes()[0],
            quote: csv.quote.as_bytes()[0],
            header: csv.header,
            max_record_bytes: csv.max_record_bytes.as_u64() as usize,
            encoding,
            skip_lines: csv.skip_lines,
            skip_after_header: csv.skip_after_header,
            comment: csv.comment.as_ref().map(|c| c.as_bytes().to_vec()),
            decimal_comma: csv.decimal == ",",
            nulls: NullTexts::new(&csv.null_values),
            timestamps,
            dates,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

/// The WHATWG label of an encoding named the way Python, Java or Windows name it,
/// for the error that refuses the name.
fn codepage_label(name: &str) -> Option<&'static str> {
    Some(
        match name
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "cp932" | "ms932" | "windows31j" | "sjis" => "shift_jis",
            "cp1252" => "windows-1252",
            "cp936" | "ms936" => "gbk",
            "cp949" | "ms949" | "uhc" => "euc-kr",
            "cp950" | "ms950" => "big5",
            "utf16" => "utf-16le",
            _ => return None,
        },
    )
}

fn arrow_input_type(t: InputType) -> DataType {
    match t {
        InputType::String => DataType::Utf8,
        InputType::Bigint => DataType::Int64,
        InputType::Double => DataType::Float64,
        InputType::Boolean => DataType::Boolean,
        InputType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        InputType::Date => DataType::Date32,
    }
}

/// In [`FileCtx::field_to_column`]: the field fills no declared column by itself
/// (a `from` column reads it).
pub const NOT_A_COLUMN: usize = usize::MAX;

/// A column built from several fields of a record (`from`).
#[derive(Debug, Clone)]
pub struct Join {
    pub column: usize,
    /// The fields, in the order they are joined.
    pub fields: Vec<usize>,
}

/// One input file as the parsers see it.
#[derive(Debug)]
pub struct FileCtx {
    pub source_key: Arc<str>,
    pub stats: Arc<ItemStats>,
    /// For each field of a record in this file, the declared column it fills, or
    /// [`NOT_A_COLUMN`].
    pub field_to_column: Vec<usize>,
    /// Columns built from several fields.
    pub joins: Vec<Join>,
    /// The encoding the file was decoded from (`None`: read as UTF-8).
    pub decoded_from: Option<&'static Encoding>,
}

/// Whole records of one file, starting at line `first_line`.
#[derive(Debug)]
pub struct Chunk {
    pub file: Arc<FileCtx>,
    pub data: Vec<u8>,
    pub first_line: u64,
}

#[cfg(test)]
mod tests {
    //! Reader + parser together: however a file is cut into chunks, the rows and
    //! rejects (with their line numbers) are the same.
    use super::parse::ChunkParser;
    use super::reader::{ReaderSink, read_file_in_chunks};
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use proptest::prelude::*;

    fn layout() -> Arc<CsvLayout> {
        layout_with_max(1 << 20)
    }

    fn layout_with_max(max_record_bytes: usize) -> Arc<CsvLayout> {
        let options: CsvOptions = toml::from_str(
            r#"
            columns = [
              { name = "a", type = "string", nullable = false },
              { name = "n", type = "bigint" },
              { name = "t", type = "string" },
            ]
            "#,
        )
        .unwrap();
        let mut layout = CsvLayout::new("s", &options).unwrap();
        layout.max_record_bytes = max_record_bytes;
        Arc::new(layout)
    }

    struct Collect {
        chunks: Vec<Chunk>,
        rejects: Vec<Reject>,
    }
    impl ReaderSink for Collect {
        fn chunk(&mut self, chunk: Chunk) -> Result<(), ReadError> {
            self.chunks.push(chunk);
            Ok(())
        }
        fn reject(&mut self, reject: Reject) -> Result<(), ReadError> {
            self.rejects.push(reject);
            Ok(())
        }
    }

    /// What the reader sends for one file (in chunks of `chunk` bytes, reading
    /// `read` bytes at a time), and the file's counters.
    fn collect(
        layout: &CsvLayout,
        data: &[u8],
        (chunk, read): (usize, usize),
        grew_to: Option<u64>,
    ) -> (Collect, Arc<ItemStats>) {
        let stats = Arc::new(ItemStats::default());
        let mut sink = Collect {
            chunks: vec![],
            rejects: vec![],
        };
        read_file_in_chunks(
            layout,
            "k".into(),
            stats.clone(),
            data,
            grew_to,
            &mut sink,
            (chunk, read),
        )
        .unwrap();
        (sink, stats)
    }

    /// (rows as (line, a, n, t), rejects as (line, reason)) and the file counters.
    #[allow(clippy::type_complexity)]
    fn read(
        data: &[u8],
        chunk: usize,
        read: usize,
    ) -> (
        Vec<(i64, String, Option<i64>, Option<String>)>,
        Vec<(Option<i64>, String)>,
        (u64, u64, u64),
    ) {
        read_with(layout(), data, chunk, read, None)
    }

    #[allow(clippy::type_complexity)]
    fn read_with(
        layout: Arc<CsvLayout>,
        data: &[u8],
        chunk: usize,
        read: usize,
        grew_to: Option<u64>,
    ) -> (
        Vec<(i64, String, Option<i64>, Option<String>)>,
        Vec<(Option<i64>, String)>,
        (u64, u64, u64),
    ) {
        let (sink, stats) = collect(&layout, data, (chunk, read), grew_to);
        let mut parser = ChunkParser::new(layout);
        let mut rows = Vec::new();
        let mut rejects: Vec<(Option<i64>, String)> = sink
            .rejects
            .iter()
            .map(|r| (r.line_number, r.reason.clone()))
            .collect();
        for c in &sink.chunks {
            let p = parser.parse(c);
            let b = p.batch;
            let a = b.column(0).as_string::<i32>();
            let n = b.column(1).as_primitive::<Int64Type>();
            let t = b.column(2).as_string::<i32>();
            let line = b.column(4).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                rows.push((
                    line.value(i),
                    a.value(i).to_string(),
                    n.is_valid(i).then(|| n.value(i)),
                    t.is_valid(i).then(|| t.value(i).to_string()),
                ));
            }
            rejects.extend(p.rejects.iter().map(|r| (r.line_number, r.reason.clone())));
        }
        rows.sort();
        rejects.sort();
        let c = stats.counts();
        (rows, rejects, (c.records, c.loaded, c.rejected))
    }

    #[test]
    fn line_numbers_count_header_quoted_newlines_and_blank_lines() {
        let data = b"a,n,t\r\nx,1,\"two\nlines\"\r\n\r\ny,2,z\r\nbad,zz,q\r\n";
        let (rows, rejects, counts) = read(data, 1 << 20, 1 << 20);
        assert_eq!(rows[0], (2, "x".into(), Some(1), Some("two\nlines".into())));
        assert_eq!(rows[1], (5, "y".into(), Some(2), Some("z".into())));
        assert_eq!(
            rejects,
            vec![(Some(6), "column `n`: 'zz' is not an integer".into())]
        );
        assert_eq!(counts, (3, 2, 1));
    }

    #[test]
    fn chunks_are_sent_in_the_buffers_they_were_made_with() {
        // Records of 7 to 13 bytes, shorter than a read, so a chunk's last read
        // never needs more room than the buffer was made with. Reading past that
        // room grew (and copied) the buffer of nearly every chunk.
        let mut data = String::from("a,n,t\n");
        for i in 0..3000 {
            data.push_str(&format!("s{i},{i},x\n"));
        }
        let (chunk, read) = (64, 16);
        let (sink, _) = collect(&layout(), data.as_bytes(), (chunk, read), None);
        assert!(sink.chunks.len() > 100, "{} chunks", sink.chunks.len());
        // The first chunk is the file's start, read at once to check it is text.
        for c in &sink.chunks[1..] {
            assert_eq!(
                c.data.capacity(),
                chunk + read,
                "a chunk of {} bytes",
                c.data.len()
            );
        }
        // Nothing was lost or doubled on the way.
        let joined: Vec<u8> = sink.chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, data.as_bytes()["a,n,t\n".len()..]);
    }

    /// Rows and rejects of one chunk, parsed with or without the fast path.
    #[allow(clippy::type_complexity)]
    fn parse_once(
        data: &[u8],
        fast: bool,
    ) -> (
        Vec<(i64, String, Option<i64>, Option<String>)>,
        Vec<(Option<i64>, String, Vec<u8>)>,
        u64,
    ) {
        let layout = layout();
        let stats = Arc::new(ItemStats::default());
        let chunk = Chunk {
            file: Arc::new(FileCtx {
                source_key: "k".into(),
                stats: stats.clone(),
                field_to_column: vec![0, 1, 2],
                joins: vec![],
                decoded_from: None,
            }),
            data: data.to_vec(),
            first_line: 2,
        };
        let mut parser = if fast {
            ChunkParser::new(layout)
        } else {
            ChunkParser::csv_core_only(layout)
        };
        let p = parser.parse(&chunk);
        let b = p.batch;
        let a = b.column(0).as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        let t = b.column(2).as_string::<i32>();
        let line = b.column(4).as_primitive::<Int64Type>();
        let rows = (0..b.num_rows())
            .map(|i| {
                (
                    line.value(i),
                    a.value(i).to_string(),
                    n.is_valid(i).then(|| n.value(i)),
                    t.is_valid(i).then(|| t.value(i).to_string()),
                )
            })
            .collect();
        let rejects = p
            .rejects
            .iter()
            .map(|r| (r.line_number, r.reason.clone(), r.raw.clone()))
            .collect();
        (
            rows,
            rejects,
            stats.counts().notes.get(BLANK_LINES).copied().unwrap_or(0),
        )
    }

    #[test]
    fn a_file_that_grew_rejects_its_unfinished_last_record() {
        let data = b"a,n,t\nx,1,y\nz,2,half-writ";
        let (rows, rejects, counts) = read_with(layout(), data, 1 << 20, 1 << 20, Some(99));
        assert_eq!(rows.len(), 1);
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].0, Some(3));
        assert!(
            rejects[0].1.starts_with("unfinished last record"),
            "{}",
            rejects[0].1
        );
        assert_eq!(counts, (2, 1, 1));
        // Listed bytes that end on a record boundary lose nothing.
        let (rows, rejects, _) = read_with(layout(), b"a,n,t\nx,1,y\n", 1 << 20, 1 << 20, Some(99));
        assert_eq!((rows.len(), rejects.len()), (1, 0));
        // A file that did not grow keeps its last line without a newline.
        let (rows, rejects, _) = read_with(layout(), data, 1 << 20, 1 << 20, None);
        assert_eq!((rows.len(), rejects.len()), (2, 0));
    }

    #[test]
    fn gzip_breaking_inside_an_overlong_record_rejects_the_rest() {
        use std::io::Write;
        let mut text = String::from("a,n,t\n");
        for i in 0..50 {
            text.push_str(&format!("x{i},{i},ok\n"));
        }
        // A 20 kB record (over the 4 kB limit below), then more good lines.
        text.push_str(&format!("long,1,{}\n", "y".repeat(20_000)));
        for i in 0..50 {
            text.push_str(&format!("w{i},{i},ok\n"));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let mut bytes = gz.finish().unwrap();
        // Corrupt the stream where the long record's bytes are.
        let at = bytes.len() * 3 / 5;
        for b in &mut bytes[at..at + 8] {
            *b ^= 0x5a;
        }
        let layout = layout_with_max(4096);
        let stats = Arc::new(ItemStats::default());
        let mut sink = Collect {
            chunks: vec![],
            rejects: vec![],
        };
        let gz = flate2::read::MultiGzDecoder::new(&bytes[..]);
        read_file_in_chunks(
            &layout,
            "k".into(),
            stats.clone(),
            gz,
            None,
            &mut sink,
            (1 << 20, 1024),
        )
        .unwrap();
        let counts = stats.counts();
        let reasons: Vec<&str> = sink.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert!(
            counts
                .item_error
                .as_deref()
                .is_some_and(|e| e.contains("corrupt")),
            "{counts:?} {reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("the rest of the file could not be read")),
            "{reasons:?}"
        );
    }

    /// Lists `name` under `dir`, lets `change` alter the file, then reads it with
    /// the CSV source the way the host does: (rows loaded, rejects, item error).
    fn read_after_change(
        dir: &std::path::Path,
        name: &str,
        change: impl FnOnce(&std::path::Path),
    ) -> (u64, Vec<Reject>, Option<String>) {
        use crate::sources::object::ObjectRef;
        use object_store::ObjectStoreExt;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let input = crate::storage::Location::open(dir.to_str().unwrap()).unwrap();
        let meta = rt.block_on(input.store.head(&input.child(name))).unwrap();
        let item = WorkItem {
            source: "s".into(),
            key: name.into(),
            sealed: None,
            fingerprint: crate::discover::fingerprint(&meta),
        };
        change(&dir.join(name));
        let source = CsvSource { layout: layout() };
        let stats = Arc::new(ItemStats::default());
        let progress = indicatif::ProgressBar::hidden();
        let (units_tx, units_rx) = async_channel::unbounded();
        let (rejects_tx, rejects_rx) = async_channel::unbounded();
        let item_input = ItemInput {
            item: &item,
            stats: &stats,
            object: Some(ObjectRef::new(
                input.store.clone(),
                input.key_path(name),
                input.is_local(),
            )),
            runtime: rt.handle(),
            progress: &progress,
        };
        let abort = std::sync::atomic::AtomicBool::new(false);
        let mut out = Emitter::new(&source, &units_tx, &rejects_tx, &abort);
        out.item = Some(stats.clone());
        let mut rejects = Vec::new();
        // What the host does with an item that is read or rejected: the units
        // gathered are sent.
        let read = source.read(&item_input, &mut out);
        out.flush().expect("the test's channel is open");
        if let Err(e) = read {
            // What the host does with an item that changed.
            let ReadError::Changed(_) = &e else {
                panic!("{e}")
            };
            stats.set_item_error(&e.to_string());
            rejects.push(source.item_rejected(&item, &e.to_string()));
        }
        drop((units_tx, rejects_tx));
        let mut parser = source.parser();
        while let Ok(sent) = units_rx.try_recv() {
            for (chunk, _) in sent {
                rejects.extend(parser.parse(&chunk).rejects);
            }
        }
        while let Ok(batch) = rejects_rx.try_recv() {
            let reasons = batch.column(5).as_string::<i32>().clone();
            let lines = batch.column(2).as_primitive::<Int64Type>().clone();
            for i in 0..batch.num_rows() {
                rejects.push(Reject::new(
                    &"s".into(),
                    &name.into(),
                    lines.is_valid(i).then(|| lines.value(i) as u64),
                    b"",
                    reasons.value(i).to_string(),
                ));
            }
        }
        let c = stats.counts();
        (c.loaded, rejects, c.item_error)
    }

    #[test]
    fn a_local_log_that_grows_after_listing_loads_exactly_its_listed_bytes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("a,n,t\n");
        for i in 0..1000 {
            text.push_str(&format!("r{i},{i},x\n"));
        }
        // The logger is in the middle of a line when the listing happens.
        text.push_str("r1000,10");
        std::fs::write(dir.path().join("log.csv"), &text).unwrap();
        let (loaded, rejects, error) = read_after_change(dir.path(), "log.csv", |path| {
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(b"00,x\n").unwrap();
            for i in 1001..1500 {
                f.write_all(format!("r{i},{i},x\n").as_bytes()).unwrap();
            }
        });
        assert_eq!(loaded, 1000);
        assert_eq!(error, None);
        assert_eq!(rejects.len(), 1, "{rejects:?}");
        assert_eq!(rejects[0].line_number, Some(1002));
        assert!(rejects[0].reason.starts_with("unfinished last record"));
    }

    #[test]
    fn a_local_file_replaced_after_listing_is_rejected_as_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut listed = String::from("a,n,t\n");
        for i in 0..1000 {
            listed.push_str(&format!("r{i},{i},x\n"));
        }
        std::fs::write(dir.path().join("f.csv"), &listed).unwrap();
        let (loaded, rejects, error) = read_after_change(dir.path(), "f.csv", |path| {
            let mut other = String::from("a,n,t\n");
            for i in 0..1500 {
                other.push_str(&format!("new{i},{i},y\n"));
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, other).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        });
        assert_eq!(loaded, 0);
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("changed while reading")),
            "{error:?}"
        );
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].line_number, None);
        // Deleted after listing: rejected too, with its own reason.
        std::fs::write(dir.path().join("g.csv"), &listed).unwrap();
        let (loaded, _, error) = read_after_change(dir.path(), "g.csv", |path| {
            std::fs::remove_file(path).unwrap();
        });
        assert_eq!(loaded, 0);
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("deleted after it was listed")),
            "{error:?}"
        );
    }

    /// csv-core's records of `data` (after the header line), each with its first
    /// line number and fields.
    fn csv_core_records(data: &[u8]) -> Vec<(i64, Vec<String>)> {
        let mut rdr = csv_core::ReaderBuilder::new().build();
        let mut out = vec![0u8; data.len() + 1];
        let mut ends = vec![0usize; data.len() + 1];
        let (mut pos, mut result) = (0, Vec::new());
        loop {
            let start = pos;
            let (r, nin, _, nend) = rdr.read_record(&data[pos..], &mut out, &mut ends);
            pos += nin;
            match r {
                csv_core::ReadRecordResult::Record => {
                    let mut from = 0;
                    let fields = ends[..nend]
                        .iter()
                        .map(|&e| {
                            let f = String::from_utf8(out[from..e].to_vec()).unwrap();
                            from = e;
                            f
                        })
                        .collect();
                    let line = 1 + memchr::memchr_iter(b'\n', &data[..start]).count() as i64;
                    result.push((line, fields));
                }
                csv_core::ReadRecordResult::End => return result,
                csv_core::ReadRecordResult::InputEmpty => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// Lines with two quotes per field take `enclosed_fields`' check of each
    /// field's ends: every field enclosed (one line crossing the masks' 64-byte
    /// words, one with two empty fields), and lines whose count matches while a
    /// field is not enclosed (one field holds four quotes and another none; text
    /// after a closing quote; a quote after a space). Each parses as csv-core
    /// parses it.
    #[test]
    fn lines_with_two_quotes_per_field_parse_as_csv_core_does() {
        let long = format!("\"{}\"", "v".repeat(70));
        let data = format!(
            "\"a\",\"7\",{long}\n\"b\",\"8\",\"c\"\n\"e\",\"\",\"\"\n\"q\"\"r\",x,\"\"\n\"x\"y,\"x\"y, \"x\"\n"
        );
        let fast = parse_once(data.as_bytes(), true);
        assert_eq!(fast, parse_once(data.as_bytes(), false));
        // The enclosed lines were read, not rejected.
        let read: Vec<&str> = fast.0.iter().map(|r| r.1.as_str()).collect();
        assert!(read.starts_with(&["a", "b", "e"]), "{read:?}");
    }

    proptest! {
        // The quote-free fast path gives exactly what csv-core gives, on any bytes.
        #[test]
        fn fast_path_agrees_with_csv_core(
            data in proptest::collection::vec(prop_oneof![
                Just(b'x'), Just(b'7'), Just(b','), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\n'), Just(b'\r'), Just(b' '), Just(0xC3u8),
            ], 0..300),
        ) {
            prop_assert_eq!(parse_once(&data, true), parse_once(&data, false));
        }

        // Lines whose quotes enclose whole fields take the fast path too; built
        // from fields quoted every way (empty, around a delimiter, doubled quotes,
        // a quote inside a bare field, text after the closing quote, a line break
        // or a byte that is not UTF-8 inside quotes), with LF and CRLF ends, they
        // still parse as csv-core does.
        #[test]
        fn quoted_fields_agree_with_csv_core(
            lines in proptest::collection::vec(
                (proptest::collection::vec(prop_oneof![
                    Just(&b"x"[..]), Just(&b"7"[..]), Just(&b""[..]), Just(&b"\"x\""[..]), Just(&b"\"7\""[..]), Just(&b"\"\""[..]),
                    Just(&b"\" 12 \""[..]), Just(&b"\"a,b\""[..]), Just(&b"\"q\"\"r\""[..]), Just(&b"a\"b"[..]),
                    Just(&b"\"x\"y"[..]), Just("\"\u{e9}\"".as_bytes()), Just(&b"\"\xC3\""[..]), Just(&b"\"l\nf\""[..]),
                    Just(&b"\""[..]), Just(&b" \"x\""[..]), Just(&b"x\"y\""[..]), Just(&b"a\"\"b"[..]), Just(&b"\"x\"\r"[..]),
                    Just(&b"\"a long quoted value, longer than one 64-byte word of the masks\""[..]),
                ], 1..5), any::<bool>()),
                0..30),
            last_newline in any::<bool>(),
        ) {
            let mut data = Vec::new();
            for (fields, crlf) in &lines {
                data.extend_from_slice(&fields.join(&b","[..]));
                data.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            if !last_newline && data.ends_with(b"\n") {
                data.pop();
            }
            prop_assert_eq!(parse_once(&data, true), parse_once(&data, false));
        }

        #[test]
        fn chunking_never_changes_the_result(
            records in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![
                    Just("x".to_string()), Just("12".to_string()), Just("".to_string()),
                    Just("\"q,\"\"uo\nted\"".to_string()), Just("a\"b".to_string()), Just("-7".to_string()),
                ], 1..5),
                0..40),
            chunk in 1usize..200,
            read_size in 1usize..64,
        ) {
            let mut text = String::from("a,n,t\n");
            for r in &records {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            let whole = read(text.as_bytes(), 1 << 20, 1 << 20);
            let cut = read(text.as_bytes(), chunk, read_size);
            prop_assert_eq!(&cut, &whole);
            let (rows, rejects, (records_n, loaded, rejected)) = whole;
            prop_assert_eq!(records_n, loaded + rejected);
            prop_assert_eq!(rows.len() as u64, loaded);
            prop_assert_eq!(rejects.len() as u64, rejected);
        }

        // Records too long to hold, with quoted line breaks and quotes in them, are
        // skipped to their true end: on well-formed CSV every record csv-core reads
        // is loaded (with csv-core's fields) or rejected, at its own first line, and
        // nothing else is (a reader that resumed inside a quoted field would load
        // rows from inside it).
        #[test]
        fn skipping_long_records_never_resumes_inside_a_quoted_field(
            records in proptest::collection::vec(
                (0usize..4, 0usize..300, any::<bool>()),
                1..30),
            chunk in 64usize..400,
            read_size in 1usize..97,
        ) {
            // The reader takes the first 8 KiB at once (to sniff the file): the
            // records under test come after them, where reads are small.
            let mut text = String::from("a,n,t\n");
            for i in 0..800 {
                text.push_str(&format!("f{i},{i},filler\n"));
            }
            for (i, (kind, len, quoted_a)) in records.iter().enumerate() {
                let a = if *quoted_a { format!("\"r,{i}\"") } else { format!("r{i}") };
                let t = match kind {
                    0 => "plain".to_string(),
                    1 => format!("\"{}\"", "q\n\"\"x,".repeat(len / 5 + 1)),
                    2 => "y".repeat(len + 1),
                    _ => format!("\"{}\"\"{}\"", "z\n".repeat(len / 3), ",".repeat(len % 7)),
                };
                text.push_str(&format!("{a},{i},{t}\n"));
            }
            let data = text.as_bytes();
            let expected: Vec<(i64, Vec<String>)> = csv_core_records(data).into_iter().skip(1).collect();
            let (rows, rejects, (n, loaded, rejected)) = read_with(layout_with_max(64), data, chunk, read_size, None);
            let mut seen: Vec<i64> = rows.iter().map(|r| r.0).chain(rejects.iter().filter_map(|r| r.0)).collect();
            seen.sort();
            let starts: Vec<i64> = expected.iter().map(|r| r.0).collect();
            prop_assert_eq!(&seen, &starts, "{:?}", text);
            prop_assert_eq!(n, expected.len() as u64);
            prop_assert_eq!(n, loaded + rejected);
            for row in &rows {
                let want = &expected.iter().find(|r| r.0 == row.0).unwrap().1;
                prop_assert_eq!(&row.1, &want[0]);
                prop_assert_eq!(row.2, want[1].parse::<i64>().ok());
                prop_assert_eq!(row.3.as_deref(), Some(want[2].as_str()));
            }
        }
    }

    /// A source's rows (each as its cells' text, then the line number) and its
    /// rejects (line, reason) for one file read whole, and the file's counters.
    struct Read {
        rows: Vec<(i64, Vec<String>)>,
        rejects: Vec<(Option<i64>, String, String)>,
        counts: crate::model::item::ItemCounts,
    }

    fn read_source(options: &str, data: &[u8], chunk: usize) -> Read {
        use datafusion::arrow::util::display::array_value_to_string;
        let options: CsvOptions = toml::from_str(options).unwrap();
        options.check().unwrap();
        let layout = Arc::new(CsvLayout::new("s", &options).unwrap());
        let (sink, stats) = collect(&layout, data, (chunk, 7), None);
        let mut parser = ChunkParser::new(layout.clone());
        let ncols = layout.columns.len();
        let mut rows = Vec::new();
        let shown = |r: &Reject| {
            (
                r.line_number,
                r.reason.clone(),
                decode::shown(&r.raw, r.decoded),
            )
        };
        let mut rejects: Vec<_> = sink.rejects.iter().map(shown).collect();
        for c in &sink.chunks {
            let p = parser.parse(c);
            let b = p.batch;
            let line = b.column(ncols + 1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let cells = (0..ncols)
                    .map(|c| {
                        let col = b.column(c);
                        if col.is_null(i) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(col, i).unwrap()
                        }
                    })
                    .collect();
                rows.push((line.value(i), cells));
            }
            rejects.extend(p.rejects.iter().map(shown));
        }
        rows.sort();
        rejects.sort();
        Read {
            rows,
            rejects,
            counts: stats.counts(),
        }
    }

    const ID_V: &str =
        r#"columns = [{ name = "id", type = "bigint" }, { name = "v", type = "string" }]"#;

    #[test]
    fn blank_and_comment_lines_before_the_header_are_skipped_and_counted() {
        let spec = format!("{ID_V}\ncsv = {{ skip_lines = 1, comment = \"#\" }}");
        let data = b"Device,GL240\n\n# a \"quoted, comment\n\r\nid,v\n1,a\n\n#x,\"y\n2,b\n";
        for chunk in [1 << 20, 3, 9] {
            let r = read_source(&spec, data, chunk);
            assert_eq!(
                r.rows,
                vec![
                    (6, vec!["1".into(), "a".into()]),
                    (9, vec!["2".into(), "b".into()])
                ]
            );
            assert!(r.rejects.is_empty(), "{:?}", r.rejects);
            assert_eq!(r.counts.notes.get(LINES_SKIPPED), Some(&3));
            assert_eq!(r.counts.notes.get(BLANK_LINES), Some(&3));
        }
        // Nothing after the preamble: no records, nothing rejected.
        let r = read_source(&spec, b"Device,GL240\n# only\n\n", 1 << 20);
        assert_eq!((r.rows.len(), r.rejects.len(), r.counts.records), (0, 0, 0));
        // Only whitespace, however much, skipped preamble lines included: an empty
        // file, rejected whole (and no blank lines counted for it).
        let skip_one = format!("{ID_V}\ncsv = {{ skip_lines = 1, max_record_bytes = \"64B\" }}");
        let spaces = " ".repeat(20_000);
        for (spec, data) in [
            (ID_V, " \r\n".repeat(3)),
            (ID_V, " \r\n".repeat(20_000)),
            (ID_V, "\r\r\x0c\r".to_string()),
            (skip_one.as_str(), "\n\n   \n".to_string()),
            (skip_one.as_str(), spaces.clone()),
        ] {
            let r = read_source(spec, data.as_bytes(), 1 << 20);
            assert_eq!(r.rejects.len(), 1, "{data:?}");
            assert!(r.rejects[0].1.starts_with("empty file"), "{:?}", r.rejects);
            assert_eq!(r.counts.notes.get(BLANK_LINES), None);
        }
        // A blank line longer than a record may be: skipped, not held, not a header.
        let small = format!("{ID_V}\ncsv = {{ max_record_bytes = \"64B\" }}");
        let r = read_source(&small, format!("{spaces}\nid,v\n1,a\n").as_bytes(), 1 << 20);
        assert_eq!(r.rows, vec![(3, vec!["1".into(), "a".into()])]);
        assert_eq!(r.counts.notes.get(BLANK_LINES), Some(&1));
        let r = read_source(&small, format!("{spaces}x\nid,v\n").as_bytes(), 1 << 20);
        assert!(
            r.rejects[0].1.contains("header line is longer"),
            "{:?}",
            r.rejects
        );
        // Preamble and comment lines of any length are skipped, not held.
        let spec = format!(
            "{ID_V}\ncsv = {{ skip_lines = 1, comment = \"#\", max_record_bytes = \"64B\" }}"
        );
        let long = "p".repeat(10_000);
        let data = format!("{long}\n#{long}\nid,v\n1,a\n");
        let r = read_source(&spec, data.as_bytes(), 1 << 20);
        assert_eq!(r.rows, vec![(4, vec!["1".into(), "a".into()])]);
        assert_eq!(r.counts.notes.get(LINES_SKIPPED), Some(&2));
    }

    #[test]
    fn a_comment_line_too_long_to_hold_is_skipped_whole_whatever_its_quotes() {
        let spec = format!("{ID_V}\ncsv = {{ comment = \"#\", max_record_bytes = \"1KiB\" }}");
        let mut data = b"id,v\n1,a\n#".to_vec();
        data.extend(std::iter::repeat_n(b'x', 20_000));
        data.extend_from_slice(b",\"oops\n");
        for i in 0..48 {
            data.extend_from_slice(format!("{i},z\n").as_bytes());
        }
        let r = read_source(&spec, &data, 4096);
        assert_eq!(r.rows.len(), 49);
        assert!(r.rejects.is_empty(), "{:?}", r.rejects);
        assert_eq!(r.rows.last().unwrap().0, 51);
        assert_eq!(r.counts.notes.get(LINES_SKIPPED), Some(&1));
    }

    #[test]
    fn a_column_from_many_fields_and_trimmed_null_texts() {
        let headers: Vec<String> = (0..20).map(|i| format!("\"p{i}\"")).collect();
        let spec = format!(
            "columns = [{{ name = \"at\", type = \"timestamp\", timestamp_format = \"%Y %m %d %H %M %S{}\", from = [{}] }}, {{ name = \"s\", type = \"string\" }}]\ncsv = {{ null_values = [\"\", \"---\"] }}",
            " %S".repeat(14),
            headers.join(", ")
        );
        let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let values = ["2024", "3", "10", "1", "59", "59"]
            .into_iter()
            .chain(std::iter::repeat_n("59", 14))
            .collect::<Vec<_>>()
            .join(",");
        let data = format!(
            "{},s\n{values},  \n{values}, --- \n{values}, x \n",
            names.join(",")
        );
        let r = read_source(&spec, data.as_bytes(), 1 << 20);
        assert!(r.rejects.is_empty(), "{:?}", r.rejects);
        let cells: Vec<&str> = r.rows.iter().map(|(_, c)| c[1].as_str()).collect();
        assert_eq!(cells, vec!["NULL", "NULL", " x "]);
        assert_eq!(r.rows[0].1[0], "2024-03-10T01:59:59Z");
    }

    /// Lines with every field quoted are read in place, where each field starts
    /// three bytes after the previous one ends: a column joined from several
    /// fields (which are not columns themselves), NULL texts, a bad value and a
    /// wrong field count come out as they do from the same lines unquoted, with
    /// `"` or a file's own quote byte.
    #[test]
    fn every_field_quoted_reads_as_the_same_fields_bare() {
        let spec = concat!(
            r#"columns = [{ name = "at", type = "timestamp", timestamp_format = "%Y-%m-%d %H:%M", from = ["d", "t"] }, "#,
            r#"{ name = "n", type = "bigint" }, { name = "s", type = "string" }]"#,
            "\ncsv = { null_values = [\"\", \"---\"] }"
        );
        let lines = [
            vec!["2024-03-10", "01:59", "7", " x "],
            vec!["2024-03-11", "02:00", "", "---"],
            vec!["2024-03-12", "03:00", "8x", "y"],
            vec!["2024-03-13", "04:00", "9"],
            vec![
                "2024-03-14",
                "05:00",
                "-1",
                "a long value that is longer than one 64-byte word of the masks",
            ],
        ];
        let file = |quote: &str| {
            let mut data = String::from("d,t,n,s\n");
            for fields in &lines {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{quote}{f}{quote}"))
                    .collect();
                data += &fields.join(",");
                data += "\n";
            }
            data
        };
        let bare = read_source(spec, file("").as_bytes(), 1 << 20);
        let reasons = |r: &Read| {
            r.rejects
                .iter()
                .map(|j| (j.0, j.1.clone()))
                .collect::<Vec<_>>()
        };
        // With a file's own quote byte, too.
        let own_quote = spec.replace("csv = {", "csv = { quote = \"'\",");
        for (spec, quote) in [(spec, "\""), (own_quote.as_str(), "'")] {
            let quoted = read_source(spec, file(quote).as_bytes(), 1 << 20);
            assert_eq!(quoted.rows.len(), 3, "{quote}");
            assert_eq!(
                quoted.rows[0].1,
                vec!["2024-03-10T01:59:00Z".to_string(), "7".into(), " x ".into()]
            );
            assert_eq!(quoted.rows, bare.rows);
            assert_eq!(reasons(&quoted), reasons(&bare));
            assert_eq!(reasons(&quoted).len(), 2);
        }
    }

    #[test]
    fn a_line_that_does_not_decode_is_rejected_for_its_bytes() {
        let spec = format!("{ID_V}\ncsv = {{ encoding = \"shift_jis\" }}");
        let (good, _, _) = encoding_rs::SHIFT_JIS.encode("id,v\n1,温度\n");
        let mut data = good.into_owned();
        // A lead byte before a delimiter: the line reads as three fields, but what
        // is wrong with it is the byte.
        data.extend_from_slice(b"2,b\x82,x\n3,c\n");
        let r = read_source(&spec, &data, 1 << 20);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(
            r.rejects,
            vec![(
                Some(3),
                "line has bytes that are not valid Shift_JIS".into(),
                "2,b\\x82,x".into()
            )]
        );
    }

    #[test]
    fn raw_lines_are_cut_between_characters_and_escapes() {
        let mut raw = vec![b'a'; MAX_RAW_BYTES - 1];
        raw.extend_from_slice("é".as_bytes());
        assert_eq!(raw_cut(&raw), MAX_RAW_BYTES - 1);
        let mut raw = vec![b'a'; MAX_RAW_BYTES - 2];
        raw.extend_from_slice(&[decode::MARK, b'8', b'2', b'b']);
        assert_eq!(raw_cut(&raw), MAX_RAW_BYTES - 2);
    }

    #[test]
    fn encodings_are_whatwg_labels_and_code_page_names_get_a_hint() {
        let layout = |label: &str| {
            let options: CsvOptions =
                toml::from_str(&format!("{ID_V}\ncsv = {{ encoding = {label:?} }}")).unwrap();
            CsvLayout::new("s", &options).map(|l| l.encoding.name())
        };
        assert_eq!(layout("Shift_JIS"), Ok("Shift_JIS"));
        assert_eq!(layout("latin1"), Ok("windows-1252"));
        let err = layout("cp932").unwrap_err();
        assert!(err.contains("write \"shift_jis\""), "{err}");
        assert!(layout("iso-2022-jp").unwrap_err().contains("line by line"));
        assert!(layout("klingon").unwrap_err().contains("not a label"));
    }

    /// Every column type, each field a text whose outcome is known without the
    /// parser (a value, NULL, or refused): a record is kept exactly when all its
    /// fields are good, with each value in its own column, and a refused one is
    /// rejected for its first bad field, leaving nothing behind in the columns the
    /// record had reached. Chunks of any size; quoted fields send a line through
    /// the fast path's unquoting, every field quoted through its reading in place,
    /// a doubled quote through csv-core.
    mod every_type {
        use datafusion::arrow::datatypes::{
            Date32Type, Float64Type, Int64Type, TimestampMicrosecondType,
        };
        use proptest::prelude::*;

        use super::*;

        /// A cell as the file has it, and as the column should hold it: `Ok(None)`
        /// is NULL, `Err(())` refuses the record.
        type Cell = (&'static str, Result<Option<Value>, ()>);

        #[derive(Debug, Clone, PartialEq)]
        enum Value {
            S(String),
            I(i64),
            F(f64),
            B(bool),
            T(i64),
            D(i32),
        }

        const NAMES: [&str; 6] = ["s", "b", "d", "f", "ts", "dt"];

        fn cells(column: usize) -> Vec<Cell> {
            use Value::*;
            match column {
                0 => vec![
                    ("s1", Ok(Some(S("s1".into())))),
                    ("", Ok(None)),
                    ("é x", Ok(Some(S("é x".into())))),
                    ("\"s,2\"", Ok(Some(S("s,2".into())))),
                    ("\"q\"\"r\"", Ok(Some(S("q\"r".into())))),
                ],
                1 => vec![
                    ("12", Ok(Some(I(12)))),
                    ("\"-3\"", Ok(Some(I(-3)))),
                    ("", Ok(None)),
                    ("1x", Err(())),
                ],
                2 => vec![("1.5", Ok(Some(F(1.5)))), ("", Ok(None)), ("inf", Err(()))],
                3 => vec![
                    ("yes", Ok(Some(B(true)))),
                    ("0", Ok(Some(B(false)))),
                    ("", Ok(None)),
                    ("maybe", Err(())),
                ],
                // 2024-01-02T03:04:05Z: 1 704 164 645 s after the epoch.
                4 => vec![
                    ("2024-01-02T03:04:05Z", Ok(Some(T(1_704_164_645_000_000)))),
                    ("", Ok(None)),
                    ("2024-01-02T25:00:00Z", Err(())),
                ],
                // 2024-01-02: day 19 724 after the epoch.
                _ => vec![
                    ("2024-01-02", Ok(Some(D(19_724)))),
                    ("", Ok(None)),
                    ("2024-02-30", Err(())),
                ],
            }
        }

        fn layout() -> Arc<CsvLayout> {
            let options: CsvOptions = toml::from_str(
                r#"
                columns = [
                  { name = "s", type = "string" },
                  { name = "b", type = "bigint" },
                  { name = "d", type = "double" },
                  { name = "f", type = "boolean" },
                  { name = "ts", type = "timestamp" },
                  { name = "dt", type = "date" },
                ]
                "#,
            )
            .unwrap();
            Arc::new(CsvLayout::new("s", &options).unwrap())
        }

        /// Row `i` of `batch` as values, by column.
        fn row(batch: &RecordBatch, i: usize) -> Vec<Option<Value>> {
            let c = |k: usize| batch.column(k);
            let valid = |k: usize| c(k).is_valid(i);
            vec![
                valid(0).then(|| Value::S(c(0).as_string::<i32>().value(i).to_string())),
                valid(1).then(|| Value::I(c(1).as_primitive::<Int64Type>().value(i))),
                valid(2).then(|| Value::F(c(2).as_primitive::<Float64Type>().value(i))),
                valid(3).then(|| Value::B(c(3).as_boolean().value(i))),
                valid(4)
                    .then(|| Value::T(c(4).as_primitive::<TimestampMicrosecondType>().value(i))),
                valid(5).then(|| Value::D(c(5).as_primitive::<Date32Type>().value(i))),
            ]
        }

        proptest! {
            #[test]
            fn records_are_kept_whole_or_rejected_whole(
                picks in proptest::collection::vec(
                    (proptest::array::uniform6(0usize..60), any::<bool>()),
                    1..40,
                ),
                chunk in 16usize..300,
            ) {
                let mut data = NAMES.join(",") + "\n";
                let mut want_rows = Vec::new();
                let mut want_rejects = Vec::new();
                for (r, (pick, quote_all)) in picks.iter().enumerate() {
                    let line = r as i64 + 2;
                    let row: Vec<Cell> = pick
                        .iter()
                        .enumerate()
                        .map(|(k, &p)| {
                            let options = cells(k);
                            options[p % options.len()].clone()
                        })
                        .collect();
                    // Quotes around a field change nothing in what it holds.
                    let quoted = |text: &str| if text.starts_with('"') {
                        text.to_string()
                    } else {
                        format!("\"{text}\"")
                    };
                    let texts: Vec<String> = row
                        .iter()
                        .map(|(text, _)| if *quote_all { quoted(text) } else { text.to_string() })
                        .collect();
                    data += &texts.join(",");
                    data += "\n";
                    match row.iter().position(|(_, v)| v.is_err()) {
                        Some(bad) => want_rejects.push((Some(line), NAMES[bad])),
                        None => want_rows.push((
                            line,
                            row.into_iter().map(|(_, v)| v.unwrap()).collect::<Vec<_>>(),
                        )),
                    }
                }
                let layout = layout();
                let (sink, _) = collect(&layout, data.as_bytes(), (chunk, 16), None);
                prop_assert!(sink.rejects.is_empty());
                let mut parser = ChunkParser::new(layout);
                let (mut rows, mut rejects) = (Vec::new(), Vec::new());
                for c in &sink.chunks {
                    let parsed = parser.parse(c);
                    let b = &parsed.batch;
                    let lines = b.column(7).as_primitive::<Int64Type>();
                    for i in 0..b.num_rows() {
                        rows.push((lines.value(i), row(b, i)));
                    }
                    rejects.extend(parsed.rejects.iter().map(|r| (r.line_number, r.reason.clone())));
                }
                prop_assert_eq!(rows, want_rows);
                prop_assert_eq!(rejects.len(), want_rejects.len());
                for ((line, reason), (want_line, column)) in rejects.iter().zip(&want_rejects) {
                    prop_assert_eq!(line, want_line);
                    let named = format!("column `{column}`");
                    prop_assert!(reason.starts_with(&named), "{} for {}", reason, named);
                }
            }
        }
    }
}
