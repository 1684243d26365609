//! The CSV source: typed, validated, lossless extraction of CSV logs.
//!
//! ```text
//!  reader thread (one per source)            parser tasks (DataFusion partitions)
//!  object → gunzip → header check → split ──► chunk ──► csv-core + typed builders ──► RecordBatch
//!                 │ (whole-file rejects)                 │ (row rejects)
//!                 └──────────────────────────────────────┴──► rejects channel
//! ```
//!
//! The reader cuts each file into chunks of whole records ([`split`]) so that the
//! expensive part, parsing and typing, runs on every core even for one big file.
//! Channels between the stages are bounded: memory does not grow with input size.

pub mod feed;
pub mod parse;
pub mod reader;
pub mod split;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::FileStats;
use crate::spec::{InputColumn, InputType, SourceSpec, TimestampFormat};

/// How one source's files are read and typed.
#[derive(Debug)]
pub struct CsvLayout {
    pub source: Arc<str>,
    pub columns: Vec<InputColumn>,
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub max_record_bytes: usize,
    /// Declared columns plus `source_key` and `line_number`.
    pub schema: SchemaRef,
}

impl CsvLayout {
    pub fn new(source: &str, spec: &SourceSpec) -> Self {
        let mut fields: Vec<Field> = spec
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_input_type(c.kind), c.nullable))
            .collect();
        fields.push(Field::new("source_key", DataType::Utf8, false));
        fields.push(Field::new("line_number", DataType::Int64, false));
        CsvLayout {
            source: source.into(),
            columns: spec.columns.clone(),
            delimiter: spec.csv.delimiter_byte(),
            quote: spec.csv.quote_byte(),
            header: spec.csv.header,
            max_record_bytes: spec.csv.max_record_bytes.as_u64() as usize,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    pub fn timestamp_format(&self, col: usize) -> TimestampFormat {
        self.columns[col].timestamp_format
    }
}

fn arrow_input_type(t: InputType) -> DataType {
    match t {
        InputType::String => DataType::Utf8,
        InputType::Bigint => DataType::Int64,
        InputType::Double => DataType::Float64,
        InputType::Boolean => DataType::Boolean,
        InputType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// One input file as the parsers see it.
#[derive(Debug)]
pub struct FileCtx {
    pub source_key: Arc<str>,
    pub stats: Arc<FileStats>,
    /// For each field of a record in this file, the declared column it fills.
    pub field_to_column: Vec<usize>,
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
    use crate::sources::Reject;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use proptest::prelude::*;

    fn layout() -> Arc<CsvLayout> {
        let spec: SourceSpec = toml::from_str(
            r#"
            format = "csv"
            columns = [
              { name = "a", type = "string", nullable = false },
              { name = "n", type = "bigint" },
              { name = "t", type = "string" },
            ]
            "#,
        )
        .unwrap();
        Arc::new(CsvLayout::new("s", &spec))
    }

    struct Collect {
        chunks: Vec<Chunk>,
        rejects: Vec<Reject>,
    }
    impl ReaderSink for Collect {
        fn chunk(&mut self, chunk: Chunk) -> bool {
            self.chunks.push(chunk);
            true
        }
        fn reject(&mut self, reject: Reject) {
            self.rejects.push(reject);
        }
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
        let layout = layout();
        let stats = Arc::new(FileStats::default());
        let mut sink = Collect {
            chunks: vec![],
            rejects: vec![],
        };
        read_file_in_chunks(
            &layout,
            "k".into(),
            stats.clone(),
            data,
            &mut sink,
            chunk,
            read,
        )
        .unwrap();
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
        let stats = Arc::new(FileStats::default());
        let chunk = Chunk {
            file: Arc::new(FileCtx {
                source_key: "k".into(),
                stats: stats.clone(),
                field_to_column: vec![0, 1, 2],
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
        (rows, rejects, stats.counts().blank_lines)
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
    }
}
