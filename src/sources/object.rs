//! Reading one listed object, pinned to what was listed: at most its listed size,
//! and only the listed version.
//!
//! Files on a NAS change while a run reads them. The store's answer to the read
//! (its ETag and size) is compared with the listing before a byte is used:
//!
//! - the same version: read up to the listed size;
//! - a local file that grew (same inode, more bytes: a log being appended to): a
//!   source that reads records ([`ItemInput::open_growing`]) gets the listed bytes
//!   and is told ([`PinnedRead::grew_to`]), so a half-written last record is
//!   rejected rather than loaded; to any other source the file has changed;
//! - a file that ends before its listed size while it is read (truncated in
//!   place) is an error of the read, which the source rejects the rest for;
//! - anything else (an S3 object has no appends: another ETag is another object; a
//!   local file replaced or truncated; an object deleted): the item is rejected with
//!   "changed while reading", and the run goes on.
//!
//! A local file is opened by the path its key names (`storage::local::file_of`),
//! not through `object_store`, whose `file:` URL round trip costs more than a
//! header's read and cannot open some names (`E:`).
//!
//! An item's ranged reads of a local file share the file its first read opened:
//! each is compared with the listing again (written to since, truncated), and a
//! file replaced after the first read is still read as it was opened, the listed
//! version.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::discover::ItemStats;

use crate::model::{Fingerprint, WorkItem};

/// Why reading an item stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Storage failed (network, permissions): the run fails.
    Storage(String),
    /// The item is not what was listed: it is rejected whole, the run goes on.
    Changed(String),
    /// The source rejects the item whole for this reason (it is not what the
    /// source reads); the run goes on.
    Rejected(String),
    /// Nobody reads the units any more (the job's SQL stopped early, or the run is
    /// failing): stop quietly.
    Cancelled,
    /// The rejects writer stopped, so a reject could not be kept: the run fails.
    RejectsClosed,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Storage(e) => write!(f, "{e}"),
            ReadError::Changed(e) => write!(f, "changed while reading: {e}"),
            ReadError::Rejected(e) => write!(f, "{e}"),
            ReadError::Cancelled => write!(f, "cancelled"),
            ReadError::RejectsClosed => write!(f, "the rejects writer stopped"),
        }
    }
}

/// An item as its source's reader gets it.
pub struct ItemInput<'a> {
    pub item: &'a WorkItem,
    pub stats: &'a Arc<ItemStats>,
    pub(crate) object: Option<ObjectRef>,
    pub(crate) runtime: &'a tokio::runtime::Handle,
    pub(crate) progress: &'a indicatif::ProgressBar,
}

/// Where an object-backed item lives.
pub(crate) struct ObjectRef {
    pub store: Arc<dyn ObjectStore>,
    pub path: ObjPath,
    /// A local file system, where files are appended to in place.
    pub local: bool,
    /// A local file as its first ranged read opened it: a header read in two
    /// ranges (a third of DICOM files) opens it once.
    opened: OnceLock<(std::fs::File, std::path::PathBuf)>,
}

impl ObjectRef {
    pub fn new(store: Arc<dyn ObjectStore>, path: ObjPath, local: bool) -> Self {
        ObjectRef {
            store,
            path,
            local,
            opened: OnceLock::new(),
        }
    }
}

/// An object opened for sequential reading.
pub struct PinnedRead {
    /// At most the listed size; counts what it reads in the item's stats.
    pub reader: Box<dyn Read + Send>,
    /// Set when the object grew after it was listed (its size when opened): the
    /// listed bytes may end inside a record that was still being written.
    pub grew_to: Option<u64>,
}

/// How the object as served compares with the listing.
#[derive(Debug, PartialEq, Eq)]
enum Version {
    Listed,
    Grew(u64),
    Other(String),
}

impl Version {
    /// For a read that must see the listed version only: growth is a change too.
    fn into_strict(self, listed: u64) -> Version {
        match self {
            Version::Grew(n) => Version::Other(format!(
                "grew from {listed} to {n} bytes after it was listed; the next run reads it as it is then"
            )),
            v => v,
        }
    }
}

fn compare(listed: &Fingerprint, now: &ObjectMeta, local: bool) -> Version {
    let same_etag = listed.etag.is_some() && listed.etag == now.e_tag;
    if same_etag || (listed.etag.is_none() && now.size == listed.size) {
        return Version::Listed;
    }
    // object_store names a local file's version `INODE-MTIME-SIZE`: the same inode
    // is the same file, written to since.
    let inode = |e: &Option<String>| {
        e.as_deref()
            .and_then(|e| e.split('-').next())
            .map(str::to_string)
    };
    let same_file =
        local && inode(&listed.etag).is_some() && inode(&listed.etag) == inode(&now.e_tag);
    // Growth is known only of a local file; a store without ETags says nothing of
    // what happened to the listed bytes.
    if (same_file || (local && listed.etag.is_none())) && now.size >= listed.size {
        return if now.size == listed.size {
            Version::Listed
        } else {
            Version::Grew(now.size)
        };
    }
    let what = if local && !same_file {
        "replaced".to_string()
    } else if now.size < listed.size {
        "truncated".to_string()
    } else {
        "rewritten".to_string()
    };
    Version::Other(format!(
        "{what} after it was listed (listed with {} bytes{}, now {} bytes{}); the next run reads it as it is then",
        listed.size,
        listed
            .etag
            .as_deref()
            .map(|e| format!(", ETag {e}"))
            .unwrap_or_default(),
        now.size,
        now.e_tag
            .as_deref()
            .map(|e| format!(", ETag {e}"))
            .unwrap_or_default(),
    ))
}

impl ItemInput<'_> {
    /// The runtime the reader's I/O runs on (the reader is a thread of its own:
    /// `runtime().block_on(…)` for a kind's own calls, a REST client's say).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime
    }

    /// Opens the object for a sequential read of its listed bytes; an object that
    /// changed in any way since it was listed is rejected.
    pub fn open(&self) -> Result<PinnedRead, ReadError> {
        let read = self.open_growing()?;
        match read.grew_to {
            None => Ok(read),
            Some(n) => Err(ReadError::Changed(format!(
                "grew from {} to {n} bytes after it was listed; the next run reads it as it is then",
                self.item.fingerprint.size
            ))),
        }
    }

    /// [`Self::open`] for a source that reads records and can tell a record cut off
    /// at the listed size: a local file that grew since it was listed is read as
    /// listed, with [`PinnedRead::grew_to`] set.
    pub fn open_growing(&self) -> Result<PinnedRead, ReadError> {
        let obj = self.object()?;
        let listed = &self.item.fingerprint;
        let (reader, grew_to) = if obj.local {
            self.open_local_file(obj)?
        } else {
            self.open_object(obj)?
        };
        Ok(PinnedRead {
            reader: Box::new(Counting {
                inner: reader.take(listed.size),
                read: 0,
                listed: listed.size,
                stats: self.stats.clone(),
                progress: self.progress.clone(),
            }),
            grew_to,
        })
    }

    /// A local file, opened as ranged reads open it (by the path its listed key
    /// names, [`crate::storage::local::file_of`]) and compared with the listing.
    fn open_local_file(
        &self,
        obj: &ObjectRef,
    ) -> Result<(Box<dyn Read + Send>, Option<u64>), ReadError> {
        let (file, path) = open_local(&obj.path)?;
        let now = local_stamp(&file, &path)?.meta(obj.path.clone());
        let grew_to = growth(compare(&self.item.fingerprint, &now, true))?;
        Ok((Box::new(file), grew_to))
    }

    /// An object of a store, with one GET of its listed bytes.
    fn open_object(
        &self,
        obj: &ObjectRef,
    ) -> Result<(Box<dyn Read + Send>, Option<u64>), ReadError> {
        let listed = &self.item.fingerprint;
        let got = self.get(obj, (listed.size > 0).then_some(0..listed.size))?;
        let grew_to = growth(compare(listed, &got.meta, obj.local))?;
        let range = got.range.clone();
        let reader: Box<dyn Read + Send> = match got.payload {
            GetResultPayload::File(mut f, _) => {
                f.seek(SeekFrom::Start(range.start))
                    .map_err(|e| ReadError::Storage(e.to_string()))?;
                Box::new(f)
            }
            GetResultPayload::Stream(s) => {
                let s = s.map(|r| r.map_err(std::io::Error::other));
                let reader = tokio_util::io::StreamReader::new(s.boxed());
                Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                    reader,
                    self.runtime.clone(),
                ))
            }
        };
        Ok((reader, grew_to))
    }

    /// Bytes `range` of the object as listed (clipped to its listed size), with
    /// one ranged GET whose answer is checked against the listing: a header-only
    /// reader reads a small first part and extends it only as far as it needs.
    pub fn read_range(&self, range: std::ops::Range<u64>) -> Result<bytes::Bytes, ReadError> {
        let obj = self.object()?;
        let listed = &self.item.fingerprint;
        let range = range.start.min(listed.size)..range.end.min(listed.size);
        if range.is_empty() {
            return Ok(bytes::Bytes::new());
        }
        if obj.local {
            return self.read_local_range(obj, range);
        }
        let got = self.get(obj, Some(range))?;
        if let Version::Other(why) = compare(listed, &got.meta, obj.local).into_strict(listed.size)
        {
            return Err(ReadError::Changed(why));
        }
        let bytes = self
            .runtime
            .block_on(got.bytes())
            .map_err(|e| ReadError::Storage(crate::base::error::explain_storage(&e)))?;
        self.stats
            .bytes_read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.progress.inc(bytes.len() as u64);
        Ok(bytes)
    }

    /// [`Self::read_range`] of a local file, in the reader's own thread: through
    /// `object_store` every read is a task on tokio's blocking pool and two thread
    /// hand-offs, which cost more than reading a DICOM header. The same checks:
    /// at every read the open file is compared with the listing (its
    /// `object_store` ETag); an item's reads share the file the first one opened.
    fn read_local_range(
        &self,
        obj: &ObjectRef,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, ReadError> {
        let (file, path) = match obj.opened.get() {
            Some(opened) => opened,
            None => {
                let opened = open_local(&obj.path)?;
                obj.opened.get_or_init(|| opened)
            }
        };
        // Stat'ed at every read: the file as it is now against the listing.
        let stamp = local_stamp(file, path)?;
        let listed = &self.item.fingerprint;
        // The same ETag is the listed version (what `compare` answers first).
        if !listed.etag.as_deref().is_some_and(|e| stamp.has_etag(e)) {
            let now = stamp.meta(obj.path.clone());
            if let Version::Other(why) = compare(listed, &now, true).into_strict(listed.size) {
                return Err(ReadError::Changed(why));
            }
        }
        // Read into fresh capacity: zeroing it first (`read_exact_at` needs
        // initialised bytes) cost as much as a header's copy from the page cache.
        let want = (range.end - range.start) as usize;
        let mut buf = Vec::with_capacity(want);
        while buf.len() < want {
            let at = range.start + buf.len() as u64;
            match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
                Ok(0) => return Err(ReadError::Changed("truncated while it was read".into())),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    let e = std::io::Error::from(e);
                    return Err(ReadError::Storage(format!("{}: {e}", path.display())));
                }
            }
        }
        // The capacity may exceed the range, and a read may have filled it.
        buf.truncate(want);
        self.stats
            .bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.progress.inc(buf.len() as u64);
        Ok(buf.into())
    }

    /// One GET of the object (a range of it); a failure is explained against the
    /// listing.
    fn get(
        &self,
        obj: &ObjectRef,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<object_store::GetResult, ReadError> {
        let options = GetOptions {
            range: range.map(Into::into),
            ..Default::default()
        };
        self.runtime
            .block_on(obj.store.get_opts(&obj.path, options))
            .map_err(|e| self.explain_failed_get(obj, e))
    }

    fn object(&self) -> Result<&ObjectRef, ReadError> {
        self.object.as_ref().ok_or_else(|| {
            ReadError::Storage(format!(
                "{} is not an object under the input",
                self.item.key
            ))
        })
    }

    /// A GET failed: the object may have gone or shrunk below the listed range
    /// since it was listed (a rejected item), or storage failed (a failed run).
    fn explain_failed_get(&self, obj: &ObjectRef, e: object_store::Error) -> ReadError {
        if matches!(e, object_store::Error::NotFound { .. }) {
            return ReadError::Changed(
                "deleted after it was listed; the next run no longer sees it".into(),
            );
        }
        match self.runtime.block_on(obj.store.head(&obj.path)) {
            Ok(now) => match compare(&self.item.fingerprint, &now, obj.local) {
                Version::Other(why) => ReadError::Changed(why),
                _ => ReadError::Storage(crate::base::error::explain_storage(&e)),
            },
            Err(object_store::Error::NotFound { .. }) => ReadError::Changed(
                "deleted after it was listed; the next run no longer sees it".into(),
            ),
            Err(_) => ReadError::Storage(crate::base::error::explain_storage(&e)),
        }
    }
}

/// Counts bytes read from storage for the item's stats and the progress bar, and
/// turns an end before the listed size (the file was truncated while it was read)
/// into an error rather than a short, quiet read.
struct Counting<R> {
    inner: R,
    read: u64,
    listed: u64,
    stats: Arc<ItemStats>,
    progress: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.read < self.listed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the object ended after {} of its {} listed bytes: it was truncated while it was read",
                    self.read, self.listed
                ),
            ));
        }
        self.read += n as u64;
        self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// What a sequential read makes of the object as served: read as listed, read
/// as listed though it grew since, or not read (why).
fn growth(version: Version) -> Result<Option<u64>, ReadError> {
    match version {
        Version::Listed => Ok(None),
        Version::Grew(n) => Ok(Some(n)),
        Version::Other(why) => Err(ReadError::Changed(why)),
    }
}

/// An open local file's stamp; what is not a file any more (a folder made where
/// it was) was deleted, as `object_store` reports it.
fn local_stamp(
    file: &std::fs::File,
    path: &std::path::Path,
) -> Result<crate::storage::local::Stamp, ReadError> {
    let meta = file
        .metadata()
        .map_err(|e| ReadError::Storage(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(ReadError::Changed(
            "deleted after it was listed; the next run no longer sees it".into(),
        ));
    }
    Ok(crate::storage::local::Stamp::of(&meta))
}

/// A local object's file, opened for reading.
fn open_local(path: &ObjPath) -> Result<(std::fs::File, std::path::PathBuf), ReadError> {
    let path = crate::storage::local::file_of(path);
    match std::fs::File::open(&path) {
        Ok(file) => Ok((file, path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ReadError::Changed(
            "deleted after it was listed; the next run no longer sees it".into(),
        )),
        Err(e) => Err(ReadError::Storage(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn meta(size: u64, etag: &str) -> ObjectMeta {
        ObjectMeta {
            location: ObjPath::from("k"),
            last_modified: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            size,
            e_tag: Some(etag.into()),
            version: None,
        }
    }

    fn listed(size: u64, etag: &str) -> Fingerprint {
        Fingerprint {
            size,
            etag: Some(etag.into()),
            last_modified: None,
        }
    }

    #[test]
    fn growth_is_told_apart_from_replacement() {
        // A local file appended to keeps its inode.
        assert_eq!(
            compare(&listed(10, "a1-5-a"), &meta(15, "a1-9-f"), true),
            Version::Grew(15)
        );
        assert_eq!(
            compare(&listed(10, "a1-5-a"), &meta(10, "a1-5-a"), true),
            Version::Listed
        );
        // Replaced by rename: another inode, whatever the size.
        assert!(matches!(
            compare(&listed(10, "a1-5-a"), &meta(15, "b2-9-f"), true),
            Version::Other(w) if w.starts_with("replaced")
        ));
        // Truncated in place.
        assert!(matches!(
            compare(&listed(10, "a1-5-a"), &meta(4, "a1-9-4"), true),
            Version::Other(w) if w.starts_with("truncated")
        ));
        // On S3 another ETag is another object, even a longer one.
        assert!(matches!(
            compare(&listed(10, "\"x\""), &meta(15, "\"y\""), false),
            Version::Other(w) if w.contains("ETag \"x\"")
        ));
        assert_eq!(
            compare(&listed(10, "\"x\""), &meta(10, "\"x\""), false),
            Version::Listed
        );
    }

    /// An `ItemInput` for `name` under `dir` as listed now, and a runtime for it.
    fn listed_item(
        dir: &std::path::Path,
        name: &str,
    ) -> (tokio::runtime::Runtime, WorkItem, crate::storage::Location) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let loc = crate::storage::Location::open(dir.to_str().unwrap()).unwrap();
        let meta = rt.block_on(loc.store.head(&loc.child(name))).unwrap();
        let item = WorkItem {
            source: "s".into(),
            key: name.into(),
            sealed: None,
            fingerprint: crate::discover::fingerprint(&meta),
        };
        (rt, item, loc)
    }

    fn input<'a>(
        rt: &'a tokio::runtime::Runtime,
        item: &'a WorkItem,
        loc: &crate::storage::Location,
        stats: &'a Arc<ItemStats>,
        progress: &'a indicatif::ProgressBar,
    ) -> ItemInput<'a> {
        ItemInput {
            item,
            stats,
            object: Some(ObjectRef::new(
                loc.store.clone(),
                loc.key_path(&item.key),
                true,
            )),
            runtime: rt.handle(),
            progress,
        }
    }

    #[test]
    fn a_file_truncated_while_it_is_read_is_an_error_not_a_short_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), vec![b'x'; 100_000]).unwrap();
        let (rt, item, loc) = listed_item(dir.path(), "f");
        let (stats, progress) = (
            Arc::new(ItemStats::default()),
            indicatif::ProgressBar::hidden(),
        );
        let mut read = input(&rt, &item, &loc, &stats, &progress).open().unwrap();
        let mut head = vec![0u8; 1000];
        read.reader.read_exact(&mut head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("f"))
            .unwrap()
            .set_len(5000)
            .unwrap();
        let mut rest = Vec::new();
        let err = read.reader.read_to_end(&mut rest).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains("truncated while it was read"),
            "{err}"
        );
    }

    #[test]
    fn ranged_reads_of_an_item_share_the_file_they_opened_and_check_it_each_time() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("f"), &data).unwrap();
        let (rt, item, loc) = listed_item(dir.path(), "f");
        let (stats, progress) = (
            Arc::new(ItemStats::default()),
            indicatif::ProgressBar::hidden(),
        );
        // Replaced after the first read: the rest is read from the file opened,
        // the listed version.
        let replaced = input(&rt, &item, &loc, &stats, &progress);
        assert_eq!(replaced.read_range(0..100).unwrap(), &data[..100]);
        std::fs::write(dir.path().join("g"), vec![b'y'; 20_000]).unwrap();
        std::fs::rename(dir.path().join("g"), dir.path().join("f")).unwrap();
        assert_eq!(replaced.read_range(100..9000).unwrap(), &data[100..9000]);
        // A new item input opens the file anew: the replacement is not the listed
        // version.
        let fresh = input(&rt, &item, &loc, &stats, &progress);
        assert!(matches!(
            fresh.read_range(0..100),
            Err(ReadError::Changed(_))
        ));
        // Written to in place after the first read: the second read sees it.
        std::fs::write(dir.path().join("h"), &data).unwrap();
        let (rt, item, loc) = listed_item(dir.path(), "h");
        let appended = input(&rt, &item, &loc, &stats, &progress);
        assert_eq!(appended.read_range(0..100).unwrap(), &data[..100]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("h"))
            .unwrap()
            .write_all(b"more")
            .unwrap();
        assert!(matches!(
            appended.read_range(100..200),
            Err(ReadError::Changed(_))
        ));
    }

    #[test]
    fn only_a_source_that_reads_records_accepts_a_grown_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log"), b"a\nb\n").unwrap();
        let (rt, item, loc) = listed_item(dir.path(), "log");
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("log"))
            .unwrap()
            .write_all(b"c\n")
            .unwrap();
        let (stats, progress) = (
            Arc::new(ItemStats::default()),
            indicatif::ProgressBar::hidden(),
        );
        let input = input(&rt, &item, &loc, &stats, &progress);
        assert!(
            matches!(input.open(), Err(ReadError::Changed(w)) if w.contains("grew from 4 to 6 bytes"))
        );
        let mut grown = input.open_growing().unwrap();
        assert_eq!(grown.grew_to, Some(6));
        let mut bytes = Vec::new();
        grown.reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"a\nb\n");
        // A ranged read is pinned too, and counted.
        assert!(matches!(input.read_range(0..2), Err(ReadError::Changed(_))));
        std::fs::write(dir.path().join("still"), b"0123456789").unwrap();
        let (rt2, item2, loc2) = listed_item(dir.path(), "still");
        let input2 = super::tests::input(&rt2, &item2, &loc2, &stats, &progress);
        assert_eq!(&input2.read_range(2..5).unwrap()[..], b"234");
        assert_eq!(&input2.read_range(8..50).unwrap()[..], b"89");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn local_reads_compute_the_etag_object_store_lists() {
        let dir = tempfile::tempdir().unwrap();
        let loc = crate::storage::Location::open(dir.path().to_str().unwrap()).unwrap();
        let name = "a dir/x %41+y.dcm";
        std::fs::create_dir_all(dir.path().join("a dir")).unwrap();
        std::fs::write(dir.path().join(name), b"0123456789").unwrap();
        let meta = loc.store.head(&loc.key_path(name)).await.unwrap();
        let ours =
            crate::storage::local::Stamp::of(&std::fs::metadata(dir.path().join(name)).unwrap())
                .etag();
        assert_eq!(meta.e_tag.as_deref(), Some(ours.as_str()));
        let path = crate::storage::local::file_of(&loc.key_path(name));
        assert_eq!(path, dir.path().join(name));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn local_etags_keep_the_inode_across_appends_and_not_across_renames() {
        // The growth rule above relies on this form of object_store's local ETag.
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let loc = crate::storage::Location::open(dir.path().to_str().unwrap()).unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(&path, "a\n").unwrap();
        let first = loc.store.head(&loc.child("log.csv")).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"b\n")
            .unwrap();
        let grown = loc.store.head(&loc.child("log.csv")).await.unwrap();
        assert_eq!(
            compare(&crate::discover::fingerprint(&first), &grown, true),
            Version::Grew(4)
        );
        let other = dir.path().join("new.csv");
        std::fs::write(&other, "a\nb\nc\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let replaced = loc.store.head(&loc.child("log.csv")).await.unwrap();
        assert!(matches!(
            compare(&crate::discover::fingerprint(&first), &replaced, true),
            Version::Other(_)
        ));
    }

    #[test]
    fn a_file_object_store_cannot_open_by_its_key_is_read_by_both_reads() {
        // object_store's `file:` URL round trip takes a path ending in a letter
        // and `:` for a Windows drive (`…/E:/`); both reads here open the listed
        // file by its key.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(":")).unwrap();
        std::fs::write(dir.path().join(":/E:"), b"a\nb\n").unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let loc = crate::storage::Location::open(dir.path().to_str().unwrap()).unwrap();
        let stamp =
            crate::storage::local::Stamp::of(&std::fs::metadata(dir.path().join(":/E:")).unwrap());
        // The premise: object_store cannot read it by its key.
        assert!(rt.block_on(loc.store.get(&loc.key_path(":/E:"))).is_err());
        let item = WorkItem {
            source: "s".into(),
            key: ":/E:".into(),
            sealed: None,
            fingerprint: crate::discover::fingerprint(&stamp.meta(loc.key_path(":/E:"))),
        };
        let (stats, progress) = (
            Arc::new(ItemStats::default()),
            indicatif::ProgressBar::hidden(),
        );
        let input = input(&rt, &item, &loc, &stats, &progress);
        let mut bytes = Vec::new();
        let mut read = input.open().unwrap();
        read.reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"a\nb\n");
        assert_eq!(&input.read_range(2..4).unwrap()[..], b"b\n");
    }

    #[test]
    fn a_folder_made_where_a_listed_file_was_is_a_deleted_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let (rt, item, loc) = listed_item(dir.path(), "f");
        std::fs::remove_file(dir.path().join("f")).unwrap();
        std::fs::create_dir(dir.path().join("f")).unwrap();
        let (stats, progress) = (
            Arc::new(ItemStats::default()),
            indicatif::ProgressBar::hidden(),
        );
        let input = input(&rt, &item, &loc, &stats, &progress);
        for err in [input.open().err(), input.read_range(0..4).err()] {
            assert!(
                matches!(&err, Some(ReadError::Changed(why)) if why.starts_with("deleted")),
                "{err:?}"
            );
        }
    }
}
