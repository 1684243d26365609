//! The command line (DESIGN.md "Command line"). Parsing is clap's; this file maps
//! commands to the library and errors to exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::base::error::{EXIT_FAILED, EXIT_OK, EXIT_REJECTS, EXIT_USAGE, Error};
use crate::base::logging::{self, LogFormat};
use crate::catalog::table_input::athena_ddl;
use crate::catalog::{Catalog, CatalogSpec};
use crate::discover::shards::Split;
use crate::drive::{self, RunOptions, sharded};
use crate::history;
use crate::query::{self, OutputFormat};
use crate::sources::Registry;
use crate::storage::Location;

const EXIT_CODES: &str = "Exit codes: 0 all good; 1 failed (the catalog is left as it was); \
2 bad usage or config; 3 finished, but some inputs were rejected (rejects were written).";

#[derive(Debug, Parser)]
#[command(name = "naslake", version, about = "Turns NAS data behind S3 access points into an Athena data lake", after_help = EXIT_CODES)]
pub struct Cli {
    /// Log format: text (default on a terminal) or JSON lines (default otherwise).
    #[arg(long, global = true, env = "NASLAKE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a job (or every job in jobs/ with --all).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// List the input and split it into shards for `work` (the first step of a
    /// sharded run); prints the plan's address.
    Plan(PlanArgs),
    /// Do one shard of a planned run; prints the address of its result.
    Work(WorkArgs),
    /// Commit a planned run once every shard has its result (exit codes as for `run`).
    #[command(after_help = EXIT_CODES)]
    Commit(CommitArgs),
    /// Run SQL over the tables of a catalog.
    Query(QueryArgs),
    /// List past runs from their reports, newest first, or show one report.
    Runs(RunsArgs),
    /// List or show the tables of a catalog.
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Print a `[sources.NAME]` block that reads a file no job describes yet (its
    /// encoding, delimiter, preamble, columns and their types), for a person to
    /// review and paste into a job spec. Reads at most the file's first 4 MiB.
    Sniff {
        /// The file: a local path or any address `run` takes.
        url: String,
        /// The source's name in the block (default: the file's name in snake_case).
        #[arg(long)]
        name: Option<String>,
    },
    /// The DICOM kind's tools.
    Dicom {
        #[command(subcommand)]
        action: DicomAction,
    },
}

#[derive(Debug, Subcommand)]
enum DicomAction {
    /// Print the real key of an object a DICOM run named by a pseudonymous key (a
    /// `source_key`), walking the input's listing along it. Needs the run's
    /// pseudonym key (NASLAKE_PSEUDONYM_KEY or NASLAKE_PSEUDONYM_SECRET_ID) and
    /// read access to the input. Exits 1 when no object has that name.
    Locate {
        /// The pseudonymous key, as `source_key` holds it.
        name: String,
        /// The job's input location.
        #[arg(long, env = "NASLAKE_INPUT")]
        input: String,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The job spec (jobs/NAME.toml).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    job: Option<PathBuf>,
    /// Run every job in the jobs directory on its bundled samples.
    #[arg(long)]
    all: bool,
    /// Directory holding the job specs for --all.
    #[arg(long, env = "NASLAKE_JOBS_DIR", default_value = "jobs")]
    jobs_dir: PathBuf,
    /// Input location; overrides the job spec's `input`.
    #[arg(long, env = "NASLAKE_INPUT", conflicts_with = "all")]
    input: Option<String>,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    basis: BasisArgs,
}

/// What a run reads and whether it writes (`run` and `plan`).
#[derive(Debug, Args)]
struct BasisArgs {
    /// Discover and check everything, print what the run would read; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Read only the objects that are new or changed since the job's last
    /// committed run (sharded or not), and remove the rows of deleted ones (the
    /// job's `incremental.enabled`).
    #[arg(long, conflicts_with = "full")]
    incremental: bool,
    /// Read everything and start the incremental state anew (the way out when the
    /// state does not match the catalog).
    #[arg(long)]
    full: bool,
}

impl BasisArgs {
    /// `--incremental` (`Some(true)`), `--full` (`Some(false)`), or the job spec's choice.
    fn incremental(&self) -> Option<bool> {
        match (self.incremental, self.full) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// Where a run writes, and what it changes of the job spec (`run` and `plan`).
#[derive(Debug, Args)]
struct Target {
    /// Output location (default ./lake).
    #[arg(long, env = "NASLAKE_OUTPUT")]
    output: Option<String>,
    /// local[:DIR] or glue[:DATABASE] (default local, under the output).
    #[arg(long, env = "NASLAKE_CATALOG")]
    catalog: Option<String>,
    /// Override a job spec key, e.g. --set params.zscore_threshold=2.5
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl Target {
    /// `--catalog`, parsed.
    fn catalog_spec(&self) -> Result<Option<CatalogSpec>, Error> {
        self.catalog.as_deref().map(str::parse).transpose()
    }
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// The job spec (jobs/NAME.toml).
    job: PathBuf,
    /// Input location; overrides the job spec's `input`.
    #[arg(long, env = "NASLAKE_INPUT")]
    input: Option<String>,
    #[command(flatten)]
    target: Target,
    /// Split into this many shards, balanced by bytes.
    #[arg(long, conflicts_with = "shard_size")]
    shards: Option<usize>,
    /// Split into shards of about this size (e.g. 512MiB; the default).
    #[arg(long, value_name = "BYTES")]
    shard_size: Option<bytesize::ByteSize>,
    /// The run's id, a ULID in lowercase; new by default. AWS Batch names it up
    /// front, so the array job knows the plan's address.
    #[arg(long, env = "NASLAKE_RUN_ID")]
    run_id: Option<String>,
    #[command(flatten)]
    basis: BasisArgs,
}

/// Shards of about this size when neither --shards nor --shard-size is given.
const DEFAULT_SHARD_SIZE: u64 = 512 * 1024 * 1024;

#[derive(Debug, Args)]
struct WorkArgs {
    /// The plan's address, as `naslake plan` printed it.
    #[arg(env = "NASLAKE_PLAN")]
    plan: String,
    /// The shard to do (from 0).
    #[arg(
        long,
        required_unless_present = "shard_from_env",
        conflicts_with = "shard_from_env"
    )]
    shard: Option<usize>,
    /// Take the shard from AWS_BATCH_JOB_ARRAY_INDEX (an AWS Batch array child).
    #[arg(long)]
    shard_from_env: bool,
    /// The attempt's number, for logs and fault scopes (default:
    /// AWS_BATCH_JOB_ATTEMPT, else 0). Files are named by a new id each attempt.
    #[arg(long, env = "AWS_BATCH_JOB_ATTEMPT")]
    attempt: Option<u32>,
}

#[derive(Debug, Args)]
struct CommitArgs {
    /// The plan's address, as `naslake plan` printed it.
    #[arg(env = "NASLAKE_PLAN")]
    plan: String,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// The SQL (DataFusion dialect).
    sql: String,
    /// local[:DIR] or glue[:DATABASE] (default local:./lake).
    #[arg(long, env = "NASLAKE_CATALOG")]
    catalog: Option<String>,
    /// The output whose run reports make the `naslake_runs` table (default: a
    /// local catalog's directory; with a Glue catalog the table needs it).
    #[arg(long, env = "NASLAKE_OUTPUT")]
    output: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct RunsArgs {
    #[command(subcommand)]
    action: Option<RunsAction>,
    /// The output whose runs to list.
    #[arg(long, env = "NASLAKE_OUTPUT", default_value = "./lake")]
    output: String,
    /// Only the runs of this job (its `name`).
    #[arg(long)]
    job: Option<String>,
    /// At most this many runs, the newest.
    #[arg(long)]
    last: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum RunsAction {
    /// Print one run's report (JSON).
    Show {
        run_id: String,
        /// The output the run wrote.
        #[arg(long, env = "NASLAKE_OUTPUT", default_value = "./lake")]
        output: String,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogAction {
    /// List tables with their partition counts and locations.
    List {
        #[arg(long, env = "NASLAKE_CATALOG")]
        catalog: Option<String>,
    },
    /// Show a table's definition (Glue TableInput) and partitions as JSON.
    Show {
        /// TABLE or DATABASE.TABLE
        table: String,
        #[arg(long, env = "NASLAKE_CATALOG")]
        catalog: Option<String>,
        /// Print the equivalent Athena DDL (CREATE EXTERNAL TABLE) instead.
        #[arg(long)]
        ddl: bool,
    },
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> i32 {
    // Before anything runs: a panic's message may quote input data.
    crate::base::panics::install();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    // `query` and `catalog` print results on stdout, so their logs go to stderr.
    let logs_to_stderr = !matches!(cli.command, Command::Run(_) | Command::Commit(_));
    let format = cli
        .log_format
        .unwrap_or_else(|| logging::default_format(logs_to_stderr));
    logging::init(format, logs_to_stderr);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::transform::cores())
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("naslake: cannot start the runtime: {e}");
            return EXIT_FAILED;
        }
    };
    let output = Output {
        progress: format == LogFormat::Text && std::io::stderr().is_terminal(),
        metrics: format == LogFormat::Json,
    };
    let result = runtime.block_on(dispatch(cli.command, output));
    // The process exits next. After a command that succeeded, what the pool
    // still holds is idle threads, whose stopping took 4-5 ms of a 0.4 s run, so
    // they are not waited for; an aborted lease renewal's write may be cut off
    // (a stray file beside the lease, which nothing reads). After a failure, a
    // detached clean-up of a cut-off write that is already running (object_store
    // removing a partial upload) is waited for.
    if matches!(result, Ok(EXIT_OK | EXIT_REJECTS)) {
        runtime.shutdown_background();
    } else {
        drop(runtime);
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            let message = crate::base::redact::scrub(&e.to_string()).into_owned();
            eprintln!("naslake: {message}");
            e.exit_code()
        }
    }
}

/// What a command shows besides its result.
#[derive(Debug, Clone, Copy)]
struct Output {
    /// Progress bars (text logs on a terminal).
    progress: bool,
    /// The run's CloudWatch metrics as the last log lines (JSON logs).
    metrics: bool,
}

impl Output {
    /// A run's summary, then (with JSON logs) its metrics records.
    fn outcome(self, report: &crate::report::RunReport, exit_code: i32) -> Result<(), Error> {
        out(&report.summary())?;
        if self.metrics {
            let now = chrono::Utc::now().timestamp_millis();
            for record in crate::metrics::records(report, exit_code, now) {
                out(&format!("{record}\n"))?;
            }
        }
        Ok(())
    }

    /// A run that failed before it had a report still ends with its run record,
    /// named by the spec's `name` if the spec says one, else by its file.
    fn failed_before_start(self, job: &std::path::Path, exit_code: i32) -> Result<(), Error> {
        let name = std::fs::read_to_string(job)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|spec| spec.get("name")?.as_str().map(str::to_string))
            .unwrap_or_else(|| {
                job.file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
            });
        let now = chrono::Utc::now().timestamp_millis();
        let record = crate::metrics::failed_before_start(&name, exit_code, now);
        out(&format!("{record}\n"))
    }
}

async fn dispatch(command: Command, output: Output) -> Result<i32, Error> {
    match command {
        Command::Run(args) => run(args, output).await,
        Command::Plan(args) => {
            let catalog = args.target.catalog_spec()?;
            let opts = sharded::plan::PlanOptions {
                job: args.job,
                run: RunOptions {
                    input: args.input,
                    output: args.target.output,
                    catalog,
                    overrides: args.target.overrides,
                    dry_run: args.basis.dry_run,
                    progress: false,
                    incremental: args.basis.incremental(),
                },
                catalog: args.target.catalog,
                split: match (args.shards, args.shard_size) {
                    (Some(n), _) => Split::Shards(n),
                    (None, Some(size)) => Split::ShardSize(size.as_u64()),
                    (None, None) => Split::ShardSize(DEFAULT_SHARD_SIZE),
                },
                run_id: args.run_id,
            };
            if opts.run.dry_run {
                let outcome = sharded::plan::dry_run_plan(&opts, &Registry::builtin()).await?;
                out(&format!("{}\n", history::indented(&outcome.json()?)))?;
                return Ok(outcome.exit_code);
            }
            let url = sharded::plan::plan_run(&opts, &Registry::builtin()).await?;
            out(&format!("{url}\n"))?;
            Ok(EXIT_OK)
        }
        Command::Work(args) => {
            let shard = match args.shard {
                Some(s) => s,
                None => array_index()?,
            };
            let attempt = args.attempt.unwrap_or(0);
            let done =
                sharded::work::work_shard(&args.plan, shard, attempt, &Registry::builtin()).await?;
            tracing::info!(
                items = done.items,
                rows_rejected = done.rows_rejected,
                "shard written"
            );
            out(&format!("{}\n", done.result_url))?;
            Ok(EXIT_OK)
        }
        Command::Commit(args) => {
            let outcome = sharded::commit::commit_run(&args.plan, &Registry::builtin()).await?;
            output.outcome(&outcome.report, outcome.exit_code)?;
            Ok(outcome.exit_code)
        }
        Command::Query(args) => {
            let catalog = open_catalog(args.catalog.as_deref()).await?;
            let ctx = query::session_over(&catalog.0, catalog.1.as_deref()).await?;
            // The run history is read only for SQL that names it: from the
            // reports of the output named with --output, which then win over a
            // catalog table of that name (the reports hold every run, failed
            // ones too), else from a local catalog's directory unless the
            // catalog has the table.
            let explicit = args.output.is_some();
            let history_output = args.output.clone().or_else(|| catalog.0.local_dir());
            if args.sql.to_ascii_lowercase().contains(history::TABLE)
                && (explicit || !ctx.table_exist(history::TABLE)?)
                && let Some(url) = history_output
            {
                let rows = history::list(&Location::open(&url)?, None, None).await?;
                query::register_beside_catalog(
                    &ctx,
                    catalog.1.as_deref(),
                    history::TABLE,
                    history::to_batch(&rows)?,
                )?;
            }
            let batches = query::run_sql(&ctx, &args.sql).await?;
            out(&query::format_batches(&batches, args.format)?)?;
            Ok(EXIT_OK)
        }
        Command::Runs(args) => match args.action {
            Some(RunsAction::Show { run_id, output }) => {
                let report = history::report(&Location::open(&output)?, &run_id).await?;
                out(&format!("{}\n", report.trim_end()))?;
                Ok(EXIT_OK)
            }
            None => {
                let output = Location::open(&args.output)?;
                let rows = history::list(&output, args.job.as_deref(), args.last).await?;
                out(&query::format_batches(
                    &[history::to_batch(&rows)?],
                    args.format,
                )?)?;
                Ok(EXIT_OK)
            }
        },
        Command::Sniff { url, name } => {
            let sampled = crate::sources::sniff::sample(&url).await?;
            let sample = crate::sources::sniff::Sample {
                head: &sampled.head,
                truncated: sampled.truncated,
                file_name: &sampled.file_name,
                name: name.as_deref(),
            };
            match crate::sources::Registry::builtin().sniff(&sample) {
                Some(Ok(found)) => {
                    for remark in &found.remarks {
                        eprintln!("{remark}");
                    }
                    out(&found.block)?;
                    Ok(EXIT_OK)
                }
                Some(Err(why)) => Err(Error::config(format!("{url}: {why}"))),
                None => Err(Error::config(format!(
                    "{url}: no source kind can describe this file"
                ))),
            }
        }
        Command::Dicom {
            action: DicomAction::Locate { name, input },
        } => {
            use crate::sources::dicom::locate;
            let input = Location::open(&input)?;
            let found = locate::locate(&name, &input, locate::key().await?).await?;
            for key in &found {
                out(&format!("{key}\n"))?;
            }
            Ok(if found.is_empty() {
                eprintln!("no object under {} is named {name}", input.display);
                EXIT_FAILED
            } else {
                EXIT_OK
            })
        }
        Command::Catalog { action } => match action {
            CatalogAction::List { catalog } => {
                let (catalog, db) = open_catalog(catalog.as_deref()).await?;
                for e in catalog.list(db.as_deref()).await? {
                    out(&format!(
                        "{}.{}	{} partitions	{}
",
                        e.database,
                        e.table_input.name,
                        e.partitions.len(),
                        e.table_input.storage_descriptor.location
                    ))?;
                }
                Ok(EXIT_OK)
            }
            CatalogAction::Show {
                table,
                catalog,
                ddl,
            } => {
                let (catalog, db) = open_catalog(catalog.as_deref()).await?;
                let (db, name) = match table.split_once('.') {
                    Some((d, t)) => (d.to_string(), t.to_string()),
                    None => (
                        db.unwrap_or_else(|| query::DEFAULT_DATABASE.into()),
                        table.clone(),
                    ),
                };
                match catalog.get(&db, &name).await? {
                    Some(e) if ddl => {
                        out(&athena_ddl(&e.database, &e.table_input))?;
                        Ok(EXIT_OK)
                    }
                    Some(e) => {
                        out(&format!("{}\n", serde_json::to_string_pretty(&e)?))?;
                        Ok(EXIT_OK)
                    }
                    None => Err(Error::config(format!(
                        "no table {db}.{name} in {}",
                        catalog.describe()
                    ))),
                }
            }
        },
    }
}

async fn open_catalog(spec: Option<&str>) -> Result<(Catalog, Option<String>), Error> {
    let spec: CatalogSpec = spec.unwrap_or("local").parse()?;
    Catalog::open(&spec, Path::new("./lake")).await
}

async fn run(args: RunArgs, output: Output) -> Result<i32, Error> {
    let catalog = args.target.catalog_spec()?;
    let opts = RunOptions {
        input: args.input,
        output: args.target.output,
        catalog,
        overrides: args.target.overrides,
        dry_run: args.basis.dry_run,
        progress: output.progress,
        incremental: args.basis.incremental(),
    };
    let jobs = match args.job {
        Some(j) => vec![j],
        None => list_jobs(&args.jobs_dir)?,
    };
    let mut worst = EXIT_OK;
    for job in jobs {
        let outcome = match drive::run::run_job(&job, &opts).await {
            Ok(outcome) => outcome,
            Err(e) => {
                if output.metrics && !opts.dry_run {
                    output.failed_before_start(&job, e.exit_code())?;
                }
                return Err(e);
            }
        };
        if opts.dry_run {
            out(&format!("{}\n", history::indented(&outcome.json()?)))?;
        } else {
            output.outcome(&outcome.report, outcome.exit_code)?;
        }
        worst = worse(worst, outcome.exit_code);
    }
    Ok(worst)
}

/// Writes a result to stdout. A reader that stopped early (`naslake catalog show T |
/// head`) is not an error: the rest is not wanted.
fn out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io(e)),
        _ => Ok(()),
    }
}

/// Combines exit codes of several jobs: failure over rejects over success.
fn worse(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        EXIT_OK => 0,
        EXIT_REJECTS => 1,
        EXIT_USAGE => 2,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The shard of an AWS Batch array child.
fn array_index() -> Result<usize, Error> {
    let v = std::env::var("AWS_BATCH_JOB_ARRAY_INDEX").map_err(|_| {
        Error::config("--shard-from-env: AWS_BATCH_JOB_ARRAY_INDEX is not set (is this an array job's child?)")
    })?;
    v.parse().map_err(|_| {
        Error::config(format!(
            "--shard-from-env: AWS_BATCH_JOB_ARRAY_INDEX is `{v}`, not a shard number"
        ))
    })
}

fn list_jobs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let pattern = dir.join("*.toml");
    let mut jobs: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
        .map_err(|e| Error::config(format!("--jobs-dir {}: {e}", dir.display())))?
        .filter_map(|p| p.ok())
        .collect();
    jobs.sort();
    if jobs.is_empty() {
        return Err(Error::config(format!(
            "no job specs (*.toml) in {}",
            dir.display()
        )));
    }
    Ok(jobs)
}
