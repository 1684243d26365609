//! The host every source kind plugs into: a source as a streaming DataFusion
//! table. The job's SQL reads it like any table, and its rows are produced while
//! the query runs, in bounded memory.
//!
//! Reader threads (as many as the kind asks for) take items from discovery and
//! read them ([`Source::read`]) into a bounded channel of units, sent
//! [`Source::UNITS_PER_SEND`] at a time (and whatever a reader has gathered
//! before it waits for its next item); each DataFusion
//! partition of the table pulls units from it and parses them, so parsing runs on
//! every core: in the partition's stream, or (a kind with
//! [`Source::PARSE_ON_RAYON`]) on rayon's pool, one unit at a time per partition
//! and at most one per core, whatever the plan above does with the partitions. A source can
//! be scanned once per run.
//!
//! Ending early is safe and prompt. A partition stream dropped before it drained
//! the unit channel (a `LIMIT`, a failed write) sets the table's abort flag: the
//! readers stop at their next unit or item. The readers hold only the sending side
//! of the unit channel, so once the session drops the table the channel closes
//! too. Either way they drop their rejects senders, and the rejects writer ends.
//!
//! Nothing is lost on the way: each unit carries its item's stats, which count the
//! item's units not parsed yet; an item is done only when its reader finished and
//! every unit of it was parsed, and a source is drained only when every partition
//! that ran saw the channel close ([`Drain`]). The runner fails a run otherwise.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use object_store::ObjectStore;

use super::object::{ItemInput, ObjectRef, ReadError};
use super::{AnySource, Configured, Emitter, Parsed, Parser, Source};
use crate::base::sync::lock;
use crate::discover::{DiscoveredItem, ItemStats, KeyNames};
use crate::storage::Location;

/// What a source's table is fed from.
pub struct Feed {
    /// Items arrive while discovery runs; the channel closes when it is done.
    pub items: async_channel::Receiver<DiscoveredItem>,
    /// Where object-backed items are read from.
    pub input: Option<Location>,
    pub rejects: async_channel::Sender<RecordBatch>,
    /// Partitions of the table (parsers running at once).
    pub partitions: usize,
    pub progress: indicatif::ProgressBar,
    /// Filled in as the table's partitions run; the runner checks it afterwards.
    pub drain: Arc<Drain>,
}

/// Whether a source's table was read to its end: every partition that started
/// saw the unit channel close (and gave what its parser held back).
#[derive(Debug, Default)]
pub struct Drain {
    started: AtomicUsize,
    drained: AtomicUsize,
}

impl Drain {
    /// True when no partition that started stopped before the end.
    pub fn complete(&self) -> bool {
        self.started.load(Ordering::Acquire) == self.drained.load(Ordering::Acquire)
    }
}

/// Units on their way to a parser (up to [`Source::UNITS_PER_SEND`] in one
/// send), each with the stats of the item it belongs to.
pub(crate) type Sent<U> = Vec<(U, Arc<ItemStats>)>;

/// Shared by the table's partitions.
struct TableSide<S: Source> {
    source: Arc<Configured<S>>,
    units: async_channel::Receiver<Sent<S::Unit>>,
    rejects: async_channel::Sender<RecordBatch>,
    /// Taken by the first partition that runs, which starts the readers.
    readers: Mutex<Option<ReaderSide<S>>>,
    /// Set by a reader when storage fails; the query then fails with it.
    error: Arc<Mutex<Option<String>>>,
    /// Set when a partition stops before the end: the readers stop too.
    abort: Arc<AtomicBool>,
    drain: Arc<Drain>,
    executions: AtomicUsize,
    partitions: usize,
}

/// What the reader threads hold: never a receiver of the unit channel.
struct ReaderSide<S: Source> {
    source: Arc<Configured<S>>,
    items: async_channel::Receiver<DiscoveredItem>,
    units: async_channel::Sender<Sent<S::Unit>>,
    rejects: async_channel::Sender<RecordBatch>,
    store: Option<(Arc<dyn ObjectStore>, Location)>,
    error: Arc<Mutex<Option<String>>>,
    abort: Arc<AtomicBool>,
    progress: indicatif::ProgressBar,
    runtime: tokio::runtime::Handle,
}

impl<S: Source> Clone for ReaderSide<S> {
    fn clone(&self) -> Self {
        ReaderSide {
            source: self.source.clone(),
            items: self.items.clone(),
            units: self.units.clone(),
            rejects: self.rejects.clone(),
            store: self.store.clone(),
            error: self.error.clone(),
            abort: self.abort.clone(),
            progress: self.progress.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<S: Source> std::fmt::Debug for TableSide<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTable")
            .field("source", &self.source.name)
            .finish_non_exhaustive()
    }
}

/// A source as a DataFusion table.
pub fn table<S: Source>(
    source: Arc<Configured<S>>,
    feed: Feed,
) -> datafusion::error::Result<StreamingTable> {
    // A kind's panic is reported by where it happened, never by its message
    // (`cli::main` installs the hook first; this covers the library without it).
    crate::base::panics::install();
    // The bound is in units: sends of several units take fewer places.
    let sends = (S::UNITS_IN_FLIGHT / super::per_send::<S>()).max(1);
    let (units_tx, units_rx) = async_channel::bounded(sends);
    let error = Arc::new(Mutex::new(None));
    let abort = Arc::new(AtomicBool::new(false));
    let schema = source.kind.schema();
    let readers = ReaderSide {
        source: source.clone(),
        items: feed.items,
        units: units_tx,
        rejects: feed.rejects.clone(),
        store: feed.input.map(|l| (l.store.clone(), l)),
        error: error.clone(),
        abort: abort.clone(),
        progress: feed.progress,
        runtime: tokio::runtime::Handle::current(),
    };
    let side = Arc::new(TableSide {
        source,
        units: units_rx,
        rejects: feed.rejects,
        readers: Mutex::new(Some(readers)),
        error,
        abort,
        drain: feed.drain,
        executions: AtomicUsize::new(0),
        partitions: feed.partitions.max(1),
    });
    let parts: Vec<Arc<dyn PartitionStream>> = (0..side.partitions)
        .map(|_| {
            Arc::new(Partition {
                side: side.clone(),
                schema: schema.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    StreamingTable::try_new(schema, parts)
}

struct Partition<S: Source> {
    side: Arc<TableSide<S>>,
    schema: SchemaRef,
}

impl<S: Source> std::fmt::Debug for Partition<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.side.fmt(f)
    }
}

/// A partition's stream: its parser and the state of the unit channel.
struct PartitionState<S: Source> {
    side: Arc<TableSide<S>>,
    /// The rest of the last send taken from the channel.
    queued: std::vec::IntoIter<(S::Unit, Arc<ItemStats>)>,
    /// Away (`None`) only while it parses a unit on the rayon pool.
    parser: Option<S::Parser>,
    /// The stream has given its last item.
    ended: bool,
    /// It saw the unit channel close, and gave what its parser held back.
    drained: bool,
}

impl<S: Source> PartitionState<S> {
    /// Ends the stream with an error (the readers are stopped when it is dropped).
    fn fail(
        mut self,
        e: DataFusionError,
    ) -> Option<(datafusion::error::Result<RecordBatch>, Self)> {
        self.ended = true;
        Some((Err(e), self))
    }

    /// A parser that panics is a bug of its kind; the run fails, saying so.
    /// `at` is [`crate::base::panics::describe`] of the panic, taken on the thread that
    /// caught it.
    fn panicked(&self, at: &str) -> DataFusionError {
        DataFusionError::Execution(format!(
            "the `{}` parser of source `{}` panicked {at} (a bug: please report it with the file's kind, not its contents)",
            S::FORMAT,
            self.side.source.name,
        ))
    }
}

impl<S: Source> Drop for PartitionState<S> {
    fn drop(&mut self) {
        // A stream dropped before it drained counts as stopped early, even if
        // nothing more was coming: the runner then fails the run, which errs on
        // the safe side (a `LIMIT` equal to the row count fails too).
        if !self.drained {
            // Dropped before the end: whatever is still coming would be lost, so
            // the readers stop and the source is not drained.
            self.side.abort.store(true, Ordering::Release);
        }
    }
}

impl<S: Source> PartitionStream for Partition<S> {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let side = self.side.clone();
        let schema = self.schema.clone();
        if side.executions.fetch_add(1, Ordering::SeqCst) >= side.partitions {
            let err = DataFusionError::Execution(format!(
                "source `{}` is read more than once by the job's SQL (a CTE used twice reads it twice too); read it once, into a table of the job that later SQL reads",
                side.source.name
            ));
            return Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async move { Err(err) }),
            ));
        }
        side.drain.started.fetch_add(1, Ordering::AcqRel);
        if let Some(readers) = lock(&side.readers).take() {
            start_readers(readers);
        }
        let state = PartitionState {
            queued: Vec::new().into_iter(),
            parser: Some(side.source.kind.parser()),
            side,
            ended: false,
            drained: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            if st.ended {
                return None;
            }
            loop {
                let next = match st.queued.next() {
                    Some(unit) => Ok(unit),
                    None => match st.side.units.recv().await {
                        Ok(sent) => {
                            st.queued = sent.into_iter();
                            continue;
                        }
                        Err(closed) => Err(closed),
                    },
                };
                match next {
                    Ok((unit, stats)) => {
                        let Some(mut parser) = st.parser.take() else {
                            let e =
                                DataFusionError::Internal("a partition's parser is missing".into());
                            return st.fail(e);
                        };
                        let parse = move || {
                            let parsed = catch_unwind(AssertUnwindSafe(|| parser.parse(unit)))
                                .map_err(|panic| crate::base::panics::describe(panic.as_ref()));
                            (parser, parsed)
                        };
                        let parsed = if S::PARSE_ON_RAYON {
                            let (done, result) = tokio::sync::oneshot::channel();
                            rayon::spawn(move || {
                                // The stream waiting for it may have been dropped
                                // (a failed run): the parsed unit is then unwanted.
                                if done.send(parse()).is_err() {
                                    tracing::debug!("a parsed unit had no stream left to take it");
                                }
                            });
                            result.await.ok()
                        } else {
                            Some(parse())
                        };
                        let parsed = match parsed {
                            Some((parser, parsed)) => {
                                st.parser = Some(parser);
                                parsed
                            }
                            None => {
                                let e = DataFusionError::Execution(format!(
                                    "the `{}` parser of source `{}` did not finish",
                                    S::FORMAT,
                                    st.side.source.name
                                ));
                                return st.fail(e);
                            }
                        };
                        let Parsed { batch, rejects } = match parsed {
                            Ok(p) => p,
                            Err(at) => {
                                let e = st.panicked(&at);
                                return st.fail(e);
                            }
                        };
                        stats.pending_units.fetch_sub(1, Ordering::AcqRel);
                        // Parsing a send's units is milliseconds of CPU with no await in
                        // it, and the channel rarely makes this task wait: without a yield
                        // it can keep its worker for a second while another partition,
                        // woken onto the same worker (tokio's LIFO slot, which idle workers
                        // cannot steal from), waits. Measured: the second writer started
                        // 1 s late on the 1 GB benchmark; with this, both start within
                        // milliseconds.
                        if st.queued.len() == 0 {
                            tokio::task::yield_now().await;
                        }
                        if let Err(e) = send_rejects(&st.side, rejects).await {
                            return st.fail(e);
                        }
                        if let Some(b) = batch.filter(|b| b.num_rows() > 0) {
                            return Some((Ok(b), st));
                        }
                    }
                    Err(_closed) => {
                        let error = lock(&st.side.error).clone();
                        if let Some(e) = error {
                            return st.fail(DataFusionError::External(e.into()));
                        }
                        let finished = match st.parser.as_mut() {
                            Some(parser) => catch_unwind(AssertUnwindSafe(|| parser.finish())),
                            None => Ok(None),
                        };
                        let held = match finished {
                            Ok(held) => held,
                            Err(panic) => {
                                let e = st.panicked(&crate::base::panics::describe(panic.as_ref()));
                                return st.fail(e);
                            }
                        };
                        st.ended = true;
                        st.drained = true;
                        st.side.drain.drained.fetch_add(1, Ordering::AcqRel);
                        return held.filter(|b| b.num_rows() > 0).map(|b| (Ok(b), st));
                    }
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

async fn send_rejects<S: Source>(
    side: &TableSide<S>,
    rejects: Vec<S::Reject>,
) -> datafusion::error::Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    let batch = side.source.kind.rejects_batch(rejects);
    // The rejects writer only stops when the run fails.
    side.rejects.send(batch).await.map_err(|_| {
        DataFusionError::Execution(format!(
            "source `{}`: the rejects writer stopped, so rejected rows could not be kept",
            side.source.name
        ))
    })
}

fn start_readers<S: Source>(readers: ReaderSide<S>) {
    let n = readers.source.kind.readers().max(1);
    for i in 0..n {
        let side = readers.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("read-{}-{i}", side.source.name))
            .spawn(move || read_items(side));
        if let Err(e) = spawned {
            *lock(&readers.error) = Some(format!("cannot start a reader thread: {e}"));
            readers.items.close();
        }
    }
}

/// One reader thread: items until discovery is over or the run stops. A panic
/// anywhere in reading an item (a bug of its kind) fails the run, saying so.
fn read_items<S: Source>(side: ReaderSide<S>) {
    let kind = &side.source.kind;
    let mut out = Emitter::new(kind, &side.units, &side.rejects, &side.abort);
    let names = match side.runtime.block_on(side.source.key_names()) {
        Ok(names) => names,
        Err(e) => {
            lock(&side.error).get_or_insert_with(|| e.to_string());
            side.abort.store(true, Ordering::Release);
            side.items.close();
            return;
        }
    };
    let stopped = || side.abort.load(Ordering::Acquire) || lock(&side.error).is_some();
    loop {
        let found = match side.items.try_recv() {
            Ok(found) => found,
            Err(async_channel::TryRecvError::Empty) => {
                // Nothing to read right now: what is gathered goes to the parsers
                // before this reader waits (the run stops when that fails).
                if stopped() || out.flush().is_err() {
                    side.abort.store(true, Ordering::Release);
                    break;
                }
                match side.items.recv_blocking() {
                    Ok(found) => found,
                    Err(_closed) => break,
                }
            }
            Err(async_channel::TryRecvError::Closed) => break,
        };
        // Items still buffered after a stop are not read (the run is failing).
        if stopped() {
            break;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            read_one(&side, &found, names.as_deref(), &mut out)
        }))
            .unwrap_or_else(|panic| {
                Err(ReadError::Storage(format!(
                    "the `{}` reader panicked {} (a bug: please report it with the file's kind, not its contents)",
                    S::FORMAT,
                    crate::base::panics::describe(panic.as_ref())
                )))
            });
        match outcome {
            Ok(()) => {
                crate::base::faults::point("extract.item");
                found.stats.finished.store(true, Ordering::Release)
            }
            Err(ReadError::Cancelled) => break,
            Err(e) => {
                lock(&side.error).get_or_insert_with(|| format!("reading {}: {e}", found.item.key));
                // The other readers stop too.
                side.abort.store(true, Ordering::Release);
                break;
            }
        }
    }
    // The last units. When the run is stopping they are dropped unsent, still
    // counted as pending: their items never count as done (the run fails).
    if !stopped() && out.flush().is_err() {
        side.abort.store(true, Ordering::Release);
    }
    // Stop discovery early if this reader stopped early.
    side.items.close();
}

/// Reads one item; an item the source rejects whole becomes its rejects row. An
/// item under a disguised name is read at the key its seal holds, and a storage
/// error, which may quote that key, names it by its name.
fn read_one<S: Source>(
    side: &ReaderSide<S>,
    found: &DiscoveredItem,
    names: Option<&dyn KeyNames>,
    out: &mut Emitter<'_, S>,
) -> Result<(), ReadError> {
    let item = &found.item;
    let key = match (&item.sealed, names) {
        (None, None) => item.key.clone(),
        // A plan made without the pseudonym key named its items in clear: this
        // run would write those keys into the tables.
        (None, Some(_)) => {
            return Err(ReadError::Storage(
                "an item of the plan is named in clear, but its source disguises keys in this run: plan again with the pseudonym key set".into(),
            ));
        }
        (Some(sealed), Some(names)) => names
            .unseal(sealed)
            .map_err(|e| ReadError::Storage(format!("{} cannot be found again: {e}", item.key)))?,
        (Some(_), None) => {
            return Err(ReadError::Storage(format!(
                "{} has a disguised name, but its source disguises no keys in this run (the job's `keys` or its key changed since the plan)",
                item.key
            )));
        }
    };
    // What the run may show of a message about this item.
    let shown = |text: String| {
        if key == item.key {
            text
        } else {
            crate::discover::names::scrub(&text, &key, &item.key)
        }
    };
    let kind = &side.source.kind;
    let object = side.store.as_ref().map(|(store, input)| {
        ObjectRef::new(store.clone(), input.key_path(&key), input.is_local())
    });
    let input = ItemInput {
        item: &found.item,
        stats: &found.stats,
        object,
        runtime: &side.runtime,
        progress: &side.progress,
    };
    out.item = Some(found.stats.clone());
    match kind.read(&input, out) {
        Err(e @ (ReadError::Changed(_) | ReadError::Rejected(_))) => {
            let reason = shown(e.to_string());
            found.stats.set_item_error(&reason);
            out.reject(kind.item_rejected(&found.item, &reason))
        }
        Err(ReadError::Storage(text)) => Err(ReadError::Storage(shown(text))),
        other => other,
    }
}
