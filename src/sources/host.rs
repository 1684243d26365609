//! The host every source kind plugs into: a source as a streaming DataFusion
//! table. The job's SQL reads it like any table, and its rows are produced while
//! the query runs, in bounded memory.
//!
//! Reader threads (as many as the kind asks for) take items from discovery and
//! read them ([`Source::read`]) into a bounded channel of units; each DataFusion
//! partition of the table pulls units from it and parses them, so parsing runs on
//! every core. A source can be scanned once per run.
//!
//! Ending early is safe: the readers hold only the sending side of the unit
//! channel, the table and its streams the receiving side. When the query stops
//! reading (a `LIMIT`, a failed write) and drops them, the channel closes, the
//! readers' next send fails, and they stop, dropping their rejects senders so the
//! rejects writer finishes too. The runner then sees items not read to the end.

use std::sync::atomic::{AtomicUsize, Ordering};
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
use super::{Configured, Emitter, Parsed, Parser, Source};
use crate::discover::DiscoveredItem;
use crate::discover::manifest::lock;
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
}

/// Shared by the table's partitions.
struct TableSide<S: Source> {
    source: Arc<Configured<S>>,
    units: async_channel::Receiver<S::Unit>,
    rejects: async_channel::Sender<RecordBatch>,
    /// Taken by the first partition that runs, which starts the readers.
    readers: Mutex<Option<ReaderSide<S>>>,
    /// Set by a reader when storage fails; the query then fails with it.
    error: Arc<Mutex<Option<String>>>,
    executions: AtomicUsize,
    partitions: usize,
}

/// What the reader threads hold: never a receiver of the unit channel.
struct ReaderSide<S: Source> {
    source: Arc<Configured<S>>,
    items: async_channel::Receiver<DiscoveredItem>,
    units: async_channel::Sender<S::Unit>,
    rejects: async_channel::Sender<RecordBatch>,
    store: Option<(Arc<dyn ObjectStore>, Location)>,
    error: Arc<Mutex<Option<String>>>,
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
    let (units_tx, units_rx) = async_channel::bounded(S::UNITS_IN_FLIGHT.max(1));
    let error = Arc::new(Mutex::new(None));
    let schema = source.kind.schema();
    let readers = ReaderSide {
        source: source.clone(),
        items: feed.items,
        units: units_tx,
        rejects: feed.rejects.clone(),
        store: feed.input.map(|l| (l.store.clone(), l)),
        error: error.clone(),
        progress: feed.progress,
        runtime: tokio::runtime::Handle::current(),
    };
    let side = Arc::new(TableSide {
        source,
        units: units_rx,
        rejects: feed.rejects,
        readers: Mutex::new(Some(readers)),
        error,
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
    parser: S::Parser,
    done: bool,
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
                "source `{}` is read more than once by the job's SQL; read it once and use a CTE or an earlier table",
                side.source.name
            ));
            return Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async move { Err(err) }),
            ));
        }
        if let Some(readers) = lock(&side.readers).take() {
            start_readers(readers);
        }
        let state = PartitionState {
            parser: side.source.kind.parser(),
            side,
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                match st.side.units.recv().await {
                    Ok(unit) => {
                        let Parsed { batch, rejects } = st.parser.parse(unit);
                        if let Err(e) = send_rejects(&st.side, rejects).await {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                        if let Some(b) = batch.filter(|b| b.num_rows() > 0) {
                            return Some((Ok(b), st));
                        }
                    }
                    Err(_closed) => {
                        st.done = true;
                        if let Some(b) = st.parser.finish().filter(|b| b.num_rows() > 0) {
                            return Some((Ok(b), st));
                        }
                        let err = lock(&st.side.error).clone();
                        return err.map(|e| (Err(DataFusionError::External(e.into())), st));
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

/// One reader thread: items until discovery is over or the run stops.
fn read_items<S: Source>(side: ReaderSide<S>) {
    let kind = &side.source.kind;
    let mut out = Emitter {
        source: kind,
        units: &side.units,
        rejects: &side.rejects,
    };
    while let Ok(found) = side.items.recv_blocking() {
        let object = side.store.as_ref().map(|(store, input)| ObjectRef {
            store: store.clone(),
            path: input.key_path(&found.item.key),
            local: input.is_local(),
            runtime: side.runtime.clone(),
        });
        let input = ItemInput {
            item: &found.item,
            stats: &found.stats,
            object,
            progress: &side.progress,
        };
        let outcome = match kind.read(&input, &mut out) {
            Err(ReadError::Changed(why)) => {
                let reason = ReadError::Changed(why).to_string();
                found.stats.set_item_error(&reason);
                out.reject(kind.item_rejected(&found.item, &reason))
            }
            other => other,
        };
        match outcome {
            Ok(()) => found.stats.finished.store(true, Ordering::Release),
            Err(ReadError::Cancelled) => break,
            Err(e) => {
                lock(&side.error).get_or_insert_with(|| format!("reading {}: {e}", found.item.key));
                break;
            }
        }
    }
    // Stop discovery early if this reader stopped early; the other readers then
    // find the channel closed too.
    side.items.close();
}
