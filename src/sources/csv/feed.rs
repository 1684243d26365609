//! Plugs the CSV reader and parsers into DataFusion as a streaming table: the job's
//! SQL reads a source like any table, and the rows are produced while the query
//! runs, in bounded memory.
//!
//! One reader thread per source feeds a bounded channel of chunks; each DataFusion
//! partition of the source pulls chunks from it and parses them, so parsing runs
//! on every core the session has. A source can be scanned once per run.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt};

use super::parse::ChunkParser;
use super::reader::{ReaderSink, read_file};
use super::{Chunk, CsvLayout};
use crate::discover::{DiscoveredFile, ManifestEntry};
use crate::sources::{FileStats, Reject};

/// Chunks waiting for a parser; with 2 MiB chunks this bounds buffered input.
const CHUNKS_IN_FLIGHT: usize = 4;

#[derive(Debug)]
struct Shared {
    layout: Arc<CsvLayout>,
    /// Files arrive while discovery lists; the channel closes when it is done.
    files: async_channel::Receiver<DiscoveredFile>,
    store: Arc<dyn ObjectStore>,
    chunks_rx: async_channel::Receiver<Chunk>,
    chunks_tx: Mutex<Option<async_channel::Sender<Chunk>>>,
    rejects: async_channel::Sender<Reject>,
    /// Set by the reader when storage fails; the query then fails with it.
    reader_error: Mutex<Option<String>>,
    executions: AtomicUsize,
    partitions: usize,
    progress: indicatif::ProgressBar,
    runtime: tokio::runtime::Handle,
}

/// A CSV source as a DataFusion table.
pub fn csv_table(
    layout: Arc<CsvLayout>,
    files: async_channel::Receiver<DiscoveredFile>,
    store: Arc<dyn ObjectStore>,
    rejects: async_channel::Sender<Reject>,
    partitions: usize,
    progress: indicatif::ProgressBar,
) -> datafusion::error::Result<StreamingTable> {
    let (tx, rx) = async_channel::bounded(CHUNKS_IN_FLIGHT);
    let schema = layout.schema.clone();
    let shared = Arc::new(Shared {
        layout,
        files,
        store,
        chunks_rx: rx,
        chunks_tx: Mutex::new(Some(tx)),
        rejects,
        reader_error: Mutex::new(None),
        executions: AtomicUsize::new(0),
        partitions: partitions.max(1),
        progress,
        runtime: tokio::runtime::Handle::current(),
    });
    let parts: Vec<Arc<dyn PartitionStream>> = (0..shared.partitions)
        .map(|_| {
            Arc::new(FeedPartition {
                shared: shared.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    StreamingTable::try_new(schema, parts)
}

#[derive(Debug)]
struct FeedPartition {
    shared: Arc<Shared>,
}

impl PartitionStream for FeedPartition {
    fn schema(&self) -> &SchemaRef {
        &self.shared.layout.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let shared = self.shared.clone();
        let schema = shared.layout.schema.clone();
        if shared.executions.fetch_add(1, Ordering::SeqCst) >= shared.partitions {
            let err = DataFusionError::Execution(format!(
                "source `{}` is read more than once by the job's SQL; read it once and use a CTE or an earlier table",
                shared.layout.source
            ));
            return Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async move { Err(err) }),
            ));
        }
        start_reader(&shared);
        let parser = ChunkParser::new(shared.layout.clone());
        let stream = futures::stream::unfold(
            (shared, parser, false),
            |(shared, mut parser, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match shared.chunks_rx.recv().await {
                        Ok(chunk) => {
                            let parsed = parser.parse(&chunk);
                            for r in parsed.rejects {
                                // The rejects writer only stops when the run fails.
                                if shared.rejects.send(r).await.is_err() {
                                    let e =
                                        DataFusionError::Execution("rejects writer stopped".into());
                                    return Some((Err(e), (shared, parser, true)));
                                }
                            }
                            if parsed.batch.num_rows() > 0 {
                                return Some((Ok(parsed.batch), (shared, parser, false)));
                            }
                        }
                        Err(_closed) => {
                            let err = shared.reader_error.lock().ok().and_then(|e| e.clone());
                            return err.map(|e| {
                                (
                                    Err(DataFusionError::External(e.into())),
                                    (shared, parser, true),
                                )
                            });
                        }
                    }
                }
            },
        );
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

/// Starts the source's reader thread the first time any partition executes.
fn start_reader(shared: &Arc<Shared>) {
    let Some(tx) = shared.chunks_tx.lock().ok().and_then(|mut t| t.take()) else {
        return;
    };
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("read-{}", shared.layout.source))
        .spawn(move || {
            let mut sink = ChannelSink {
                chunks: tx,
                rejects: shared.rejects.clone(),
            };
            while let Ok(file) = shared.files.recv_blocking() {
                if sink.chunks.is_closed() {
                    break;
                }
                if let Err(e) = read_one(&shared, &file, &mut sink) {
                    if let Ok(mut slot) = shared.reader_error.lock() {
                        *slot = Some(format!("reading {}: {e}", file.entry.key));
                    }
                    break;
                }
            }
            // Stop discovery early if we stopped early, then dropping the sender
            // ends the partitions' streams.
            shared.files.close();
        })
        .expect("spawning a reader thread");
}

fn read_one(shared: &Shared, file: &DiscoveredFile, sink: &mut ChannelSink) -> Result<(), String> {
    let input = open_object(&shared.store, &file.entry, &shared.runtime)?;
    let counting = Counting {
        inner: input,
        stats: file.stats.clone(),
        progress: shared.progress.clone(),
    };
    let key: Arc<str> = file.entry.key.as_str().into();
    let result = if file.entry.key.to_ascii_lowercase().ends_with(".gz") {
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, counting));
        read_file(&shared.layout, key, file.stats.clone(), gz, sink)
    } else {
        read_file(&shared.layout, key, file.stats.clone(), counting, sink)
    };
    result.map_err(|e| e.0.to_string())
}

/// Opens an object for sequential reading: a local file directly, anything else
/// as a stream of the GET response.
fn open_object(
    store: &Arc<dyn ObjectStore>,
    entry: &ManifestEntry,
    runtime: &tokio::runtime::Handle,
) -> Result<Box<dyn Read + Send>, String> {
    let got = runtime
        .block_on(store.get(&entry.path))
        .map_err(|e| crate::error::explain_storage(&e))?;
    let range = got.range.clone();
    match got.payload {
        GetResultPayload::File(mut f, _) => {
            f.seek(SeekFrom::Start(range.start))
                .map_err(|e| e.to_string())?;
            Ok(Box::new(f.take(range.end - range.start)))
        }
        GetResultPayload::Stream(s) => {
            let s = s.map_err(std::io::Error::other);
            let reader = tokio_util::io::StreamReader::new(s.boxed());
            Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                reader,
                runtime.clone(),
            )))
        }
    }
}

struct ChannelSink {
    chunks: async_channel::Sender<Chunk>,
    rejects: async_channel::Sender<Reject>,
}

impl ReaderSink for ChannelSink {
    fn chunk(&mut self, chunk: Chunk) -> bool {
        self.chunks.send_blocking(chunk).is_ok()
    }
    fn reject(&mut self, reject: Reject) {
        let _ = self.rejects.send_blocking(reject);
    }
}

/// Counts bytes read from storage for the file's stats and the progress bar.
struct Counting<R> {
    inner: R,
    stats: Arc<FileStats>,
    progress: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        self.progress.inc(n as u64);
        Ok(n)
    }
}
