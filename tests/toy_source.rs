//! A source kind defined outside the crate, through the `Source` trait alone: one
//! row per object with its size (empty objects are rejected). Registered next to the
//! built-in kinds, it runs through the same runner, rejects writer, accounting,
//! catalog and query as CSV, with nothing else changed.

use std::io::Read;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use futures::future::BoxFuture;
use naslake::discover::ItemSink;
use naslake::model::schema::TableSchema;
use naslake::model::{Fingerprint, WorkItem};
use naslake::sources::{Emitter, ItemInput, Parsed, Parser, ReadError, Registry, Source};

#[derive(Debug)]
struct ObjectSizes {
    name: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

/// One object: its key and how many bytes it had.
struct ObjectSize {
    key: String,
    bytes: u64,
    stats: Arc<naslake::discover::ItemStats>,
}

struct Rejected {
    key: String,
    reason: String,
}

const REJECTS: &str = r#"
name = "object_size_rejects"
description = "Objects whose size could not be taken."
[[columns]]
name = "source_key"
type = "string"
nullable = false
comment = "Key of the object."
[[columns]]
name = "reason"
type = "string"
nullable = false
comment = "Why."
"#;

impl Source for ObjectSizes {
    const FORMAT: &'static str = "object_sizes";
    const SUFFIXES: Option<&'static [&'static str]> = Some(&[".txt"]);
    type Options = NoOptions;
    type Unit = ObjectSize;
    type Reject = Rejected;
    type Parser = SizeParser;

    fn new(name: &str, _options: NoOptions) -> Result<Self, String> {
        Ok(ObjectSizes { name: name.into() })
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("source_key", DataType::Utf8, false),
            Field::new("size", DataType::Int64, false),
        ]))
    }

    fn rejects_table() -> TableSchema {
        TableSchema::parse(REJECTS, "toy rejects").unwrap()
    }

    fn rejects_batch(&self, rejects: Vec<Rejected>) -> RecordBatch {
        RecordBatch::try_new(
            Self::rejects_table().file_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rejects.iter().map(|r| &r.key),
                )),
                Arc::new(StringArray::from_iter_values(
                    rejects.iter().map(|r| &r.reason),
                )),
            ],
        )
        .unwrap()
    }

    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Rejected {
        Rejected {
            key: item.key.clone(),
            reason: reason.into(),
        }
    }

    fn read(&self, input: &ItemInput<'_>, out: &mut Emitter<'_, Self>) -> Result<(), ReadError> {
        // A kind with a bug, for the test of what the host does with a panic.
        assert!(
            !input.item.key.ends_with("crash.txt"),
            "the toy reader crashed"
        );
        let mut pinned = input.open()?;
        let mut bytes = Vec::new();
        pinned
            .reader
            .read_to_end(&mut bytes)
            .map_err(|e| ReadError::Storage(e.to_string()))?;
        out.unit(ObjectSize {
            key: input.item.key.clone(),
            bytes: bytes.len() as u64,
            stats: input.stats.clone(),
        })
    }

    fn parser(&self) -> SizeParser {
        SizeParser {
            schema: self.schema(),
            _source: self.name.clone(),
        }
    }
}

struct SizeParser {
    schema: SchemaRef,
    _source: String,
}

impl Parser for SizeParser {
    type Unit = ObjectSize;
    type Reject = Rejected;

    fn parse(&mut self, unit: ObjectSize) -> Parsed<Rejected> {
        assert!(
            !unit.key.ends_with("bad_parse.txt"),
            "the toy parser crashed"
        );
        if unit.bytes == 0 {
            unit.stats.count(0, 1);
            return Parsed {
                batch: None,
                rejects: vec![Rejected {
                    key: unit.key,
                    reason: "empty object".into(),
                }],
            };
        }
        unit.stats.count(1, 0);
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![unit.key])),
                Arc::new(Int64Array::from(vec![unit.bytes as i64])),
            ],
        )
        .unwrap();
        Parsed {
            batch: Some(batch),
            rejects: vec![],
        }
    }
}

/// The job of the toy kind over `DIR/in`: its table's schema file and spec, the
/// lake it writes, and the options of a run into it.
fn sizes_job(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    naslake::drive::RunOptions,
) {
    std::fs::write(
        dir.join("object_sizes.toml"),
        r#"
name = "object_sizes"
description = "Size of every object."
[[columns]]
name = "source_key"
type = "string"
nullable = false
comment = "Key."
[[columns]]
name = "size"
type = "bigint"
nullable = false
comment = "Bytes."
"#,
    )
    .unwrap();
    let job = dir.join("sizes.toml");
    std::fs::write(
        &job,
        r#"
name = "sizes"
input = "in"
[sources.objects]
format = "object_sizes"
[tables.object_sizes]
schema = "object_sizes.toml"
"#,
    )
    .unwrap();
    let lake = dir.join("lake");
    let opts = naslake::drive::RunOptions {
        output: Some(lake.display().to_string()),
        ..Default::default()
    };
    (job, lake, opts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_from_outside_the_crate_runs_through_the_trait_alone() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("a.txt"), "12345").unwrap();
    std::fs::write(input.join("sub/b.txt"), "1234567890").unwrap();
    std::fs::write(input.join("empty.txt"), "").unwrap();
    std::fs::write(input.join("skipped.bin"), "xx").unwrap();
    let (job, lake, opts) = sizes_job(dir.path());
    // Unknown to the built-in registry: a clear error naming the kinds it knows.
    let unknown = naslake::drive::run::run_job(&job, &opts)
        .await
        .err()
        .unwrap();
    assert!(
        unknown.to_string().contains("known source kinds: csv"),
        "{unknown}"
    );

    let registry = Registry::builtin().with::<ObjectSizes>();
    let outcome = naslake::drive::run::run_job_with(&job, &opts, &registry)
        .await
        .unwrap();
    let report = &outcome.report;
    assert_eq!(outcome.exit_code, 3, "{:?}", report.error);
    assert_eq!(report.totals.files_seen, 3);
    assert_eq!(report.totals.objects_skipped, 1);
    assert_eq!(report.totals.records_loaded, 2);
    assert_eq!(report.totals.records_rejected, 1);

    // The rows and the built-in rejects table (named after the job), read back
    // through the catalog like any table.
    let catalog =
        naslake::catalog::Catalog::Local(naslake::catalog::local::LocalCatalog::new(lake.clone()));
    let ctx = naslake::query::session_over(&catalog, None).await.unwrap();
    let rows = naslake::query::run_sql(
        &ctx,
        "SELECT source_key, size FROM object_sizes ORDER BY source_key",
    )
    .await
    .unwrap();
    let got: Vec<(String, i64)> = rows
        .iter()
        .flat_map(|b| {
            let k = b.column(0).as_string::<i32>().clone();
            let s = b.column(1).as_primitive::<Int64Type>().clone();
            (0..b.num_rows()).map(move |i| (k.value(i).to_string(), s.value(i)))
        })
        .collect();
    assert_eq!(
        got,
        vec![("a.txt".to_string(), 5), ("sub/b.txt".to_string(), 10)]
    );
    let rejects = naslake::query::run_sql(&ctx, "SELECT source_key, reason FROM sizes_rejects")
        .await
        .unwrap();
    assert_eq!(rejects.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(
        rejects[0].column(0).as_string::<i32>().value(0),
        "empty.txt"
    );
    assert!(rejects[0].column(1).is_valid(0));
}

/// A kind with discovery of its own and no object store at all (as a REST walk
/// would be): `count` numbered items, each one row.
#[derive(Debug)]
struct Numbers {
    count: u64,
    reject: Vec<u64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NumbersOptions {
    count: u64,
    /// Numbers whose items are rejected whole.
    #[serde(default)]
    reject: Vec<u64>,
}

impl Source for Numbers {
    const FORMAT: &'static str = "numbers";
    const SUFFIXES: Option<&'static [&'static str]> = None;
    // Units go three at a time from two readers, through a channel of four.
    const UNITS_IN_FLIGHT: usize = 4;
    const UNITS_PER_SEND: usize = 3;
    type Options = NumbersOptions;
    type Unit = (String, Arc<naslake::discover::ItemStats>);
    type Reject = Rejected;
    type Parser = NumberParser;

    fn new(_name: &str, options: NumbersOptions) -> Result<Self, String> {
        if options.count == 0 {
            return Err("`count` must be at least 1".into());
        }
        Ok(Numbers {
            count: options.count,
            reject: options.reject,
        })
    }

    fn readers(&self) -> usize {
        2
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new(
            "source_key",
            DataType::Utf8,
            false,
        )]))
    }

    fn rejects_table() -> TableSchema {
        ObjectSizes::rejects_table()
    }

    fn rejects_batch(&self, rejects: Vec<Rejected>) -> RecordBatch {
        ObjectSizes {
            name: String::new(),
        }
        .rejects_batch(rejects)
    }

    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Rejected {
        Rejected {
            key: item.key.clone(),
            reason: reason.into(),
        }
    }

    fn discover<'a>(
        &'a self,
        _input: Option<&'a naslake::storage::Location>,
        sink: &'a mut ItemSink,
    ) -> BoxFuture<'a, naslake::base::error::Result<String>> {
        Box::pin(async move {
            for i in 0..self.count {
                let fingerprint = Fingerprint {
                    size: 0,
                    etag: None,
                    last_modified: None,
                };
                if !sink.found(format!("n/{i}"), fingerprint).await {
                    break;
                }
            }
            Ok(format!("{} numbers", self.count))
        })
    }

    fn read(&self, input: &ItemInput<'_>, out: &mut Emitter<'_, Self>) -> Result<(), ReadError> {
        let key = &input.item.key;
        if self.reject.iter().any(|n| *key == format!("n/{n}")) {
            return Err(ReadError::Rejected("a number to reject".into()));
        }
        out.unit((key.clone(), input.stats.clone()))
    }

    fn parser(&self) -> NumberParser {
        NumberParser {
            schema: self.schema(),
        }
    }
}

struct NumberParser {
    schema: SchemaRef,
}

impl Parser for NumberParser {
    type Unit = (String, Arc<naslake::discover::ItemStats>);
    type Reject = Rejected;

    fn parse(&mut self, (key, stats): Self::Unit) -> Parsed<Rejected> {
        stats.count(1, 0);
        Parsed {
            batch: Some(
                RecordBatch::try_new(
                    self.schema.clone(),
                    vec![Arc::new(StringArray::from(vec![key]))],
                )
                .unwrap(),
            ),
            rejects: vec![],
        }
    }
}

/// The error a run of `job` fails with before doing any work.
async fn run_error(
    job: &std::path::Path,
    opts: &naslake::drive::RunOptions,
    registry: &Registry,
) -> naslake::base::error::Error {
    match naslake::drive::run::run_job_with(job, opts, registry).await {
        Err(e) => e,
        Ok(outcome) => panic!("the run did not fail: {:?}", outcome.report.status),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_with_its_own_discovery_needs_no_input_and_no_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("numbers.toml"),
        r#"
name = "numbers"
description = "Numbered items."
[[columns]]
name = "source_key"
type = "string"
nullable = false
comment = "Item."
"#,
    )
    .unwrap();
    let job = dir.path().join("numbers_job.toml");
    let spec = |extra: &str| {
        format!(
            "name = \"numbers_job\"\n[sources.n]\nformat = \"numbers\"\ncount = 25\n{extra}\n[tables.numbers]\nschema = \"numbers.toml\"\n"
        )
    };
    let lake = dir.path().join("lake");
    let opts = naslake::drive::RunOptions {
        output: Some(lake.display().to_string()),
        ..Default::default()
    };
    let registry = Registry::builtin().with::<Numbers>();
    // Object-listing keys make no sense for it, and unknown keys are errors.
    std::fs::write(&job, spec("prefix = \"x/\"")).unwrap();
    let err = run_error(&job, &opts, &registry).await;
    assert!(
        err.to_string().contains("`sources.n`") && err.to_string().contains("prefix"),
        "{err}"
    );
    std::fs::write(&job, spec("cuont = 3")).unwrap();
    let err = run_error(&job, &opts, &registry).await;
    assert!(
        err.to_string().contains("cuont") && err.to_string().contains("allow_empty"),
        "{err}"
    );

    std::fs::write(&job, spec("")).unwrap();
    let outcome = naslake::drive::run::run_job_with(&job, &opts, &registry)
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 0, "{:?}", outcome.report.error);
    assert_eq!(outcome.report.totals.records_loaded, 25);
    assert_eq!(outcome.report.sources[0].prefix, "25 numbers");
    let catalog =
        naslake::catalog::Catalog::Local(naslake::catalog::local::LocalCatalog::new(lake.clone()));
    let ctx = naslake::query::session_over(&catalog, None).await.unwrap();
    let rows = naslake::query::run_sql(&ctx, "SELECT count(DISTINCT source_key) AS n FROM numbers")
        .await
        .unwrap();
    assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_sent_several_at_a_time_are_all_parsed_once() {
    // Numbers sends its units three at a time from two readers; 1,000 items (not
    // a multiple of three) with rejected ones among them: every item is loaded
    // or rejected, none twice, and the counts add up.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("numbers.toml"),
        "name = \"numbers\"\ndescription = \"Numbered items.\"\n[[columns]]\nname = \"source_key\"\ntype = \"string\"\nnullable = false\ncomment = \"Item.\"\n",
    )
    .unwrap();
    let job = dir.path().join("numbers_job.toml");
    std::fs::write(
        &job,
        "name = \"numbers_job\"\n[sources.n]\nformat = \"numbers\"\ncount = 1000\nreject = [0, 7, 500, 999]\n[tables.numbers]\nschema = \"numbers.toml\"\n[tables.object_size_rejects]\nschema = \"rejects.toml\"\nfrom = \"rejects\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rejects.toml"), REJECTS).unwrap();
    let lake = dir.path().join("lake");
    let opts = naslake::drive::RunOptions {
        output: Some(lake.display().to_string()),
        ..Default::default()
    };
    let registry = Registry::builtin().with::<Numbers>();
    let outcome = naslake::drive::run::run_job_with(&job, &opts, &registry)
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 3, "{:?}", outcome.report.error);
    let totals = &outcome.report.totals;
    assert_eq!(totals.files_seen, 1000);
    assert_eq!(totals.records_loaded, 996);
    assert_eq!(totals.files_rejected, 4);
    let catalog =
        naslake::catalog::Catalog::Local(naslake::catalog::local::LocalCatalog::new(lake.clone()));
    let ctx = naslake::query::session_over(&catalog, None).await.unwrap();
    let rows = naslake::query::run_sql(
        &ctx,
        "SELECT count(*) AS n, count(DISTINCT source_key) AS d FROM numbers",
    )
    .await
    .unwrap();
    assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 996);
    assert_eq!(rows[0].column(1).as_primitive::<Int64Type>().value(0), 996);
    let rows = naslake::query::run_sql(&ctx, "SELECT count(*) AS n FROM object_size_rejects")
        .await
        .unwrap();
    assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 4);

    // Hardly more items than one send per reader takes: each reader sends what
    // it gathered before it waits for more (or, if discovery is over by then,
    // after its last item).
    std::fs::write(
        &job,
        "name = \"numbers_job\"\n[sources.n]\nformat = \"numbers\"\ncount = 10\nreject = [4]\n[tables.numbers]\nschema = \"numbers.toml\"\n[tables.object_size_rejects]\nschema = \"rejects.toml\"\nfrom = \"rejects\"\n",
    )
    .unwrap();
    let outcome = naslake::drive::run::run_job_with(&job, &opts, &registry)
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 3, "{:?}", outcome.report.error);
    assert_eq!(outcome.report.totals.records_loaded, 9);
    assert_eq!(outcome.report.totals.files_rejected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_panics_fails_the_run_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.txt"), "12345").unwrap();
    std::fs::write(input.join("crash.txt"), "1").unwrap();
    let (job, lake, opts) = sizes_job(dir.path());
    let registry = Registry::builtin().with::<ObjectSizes>();
    let outcome = naslake::drive::run::run_job_with(&job, &opts, &registry)
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 1);
    let error = outcome.report.error.unwrap();
    assert!(
        error.contains("reader panicked at") && error.contains("toy_source.rs"),
        "{error}"
    );
    // The message may quote input data: it is not shown.
    assert!(!error.contains("the toy reader crashed"), "{error}");
    assert!(
        !lake.join("_naslake/catalog").exists(),
        "the catalog was changed"
    );
    assert!(
        !lake.join("object_sizes").exists(),
        "files of the failed run were left"
    );

    // A parser that panics (on the engine's threads) fails the run the same way.
    std::fs::remove_file(input.join("crash.txt")).unwrap();
    std::fs::write(input.join("bad_parse.txt"), "1").unwrap();
    let outcome = naslake::drive::run::run_job_with(&job, &opts, &registry)
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, 1);
    let error = outcome.report.error.unwrap();
    assert!(
        error.contains("parser of source `objects` panicked at") && error.contains("toy_source.rs"),
        "{error}"
    );
    assert!(
        !lake.join("_naslake/catalog").exists(),
        "the catalog was changed"
    );
}
