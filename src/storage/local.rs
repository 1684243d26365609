//! A local folder as `object_store` sees it, with fewer system calls.
//!
//! `LocalFileSystem::list` stats every file three times by its path (a check for
//! broken links, `is_file`, then the metadata it reports): on a folder of small
//! files (DICOM headers) that was a tenth of a run's CPU. [`list`] gives the same
//! objects — the same keys, sizes, times and ETags, and the same files left out
//! (directories, broken links, whatever cannot be stat'ed, `object_store`'s own
//! `NAME#DIGITS` upload parts) — with one `stat` per file, and that one by the
//! file's name in its folder, held open (`fstatat`; an `open` per folder), so the
//! kernel resolves one name rather than the whole path again. A test holds the two
//! listings equal. Linux only (`O_PATH`), as the rest of the binary.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, Result};

/// Entries stat'ed per hand-off to tokio's blocking pool (`object_store`'s own).
const CHUNK: usize = 1024;

/// Every file under `prefix` (a key of the local store, whose root is `/`), in
/// the order the directories give them.
pub fn list(prefix: &ObjPath) -> BoxStream<'static, Result<ObjectMeta>> {
    let root = match folder_of(prefix) {
        Ok(root) => root,
        Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
    };
    // `object_store`'s walk: the root itself left out, links followed.
    let mut folders = Folders::default();
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(true)
        .into_iter()
        .filter_map(move |entry| object(entry, &mut folders));
    if tokio::runtime::Handle::try_current().is_err() {
        // No runtime to hand the walk to (as `object_store` does then).
        return futures::stream::iter(walk).boxed();
    }
    futures::stream::try_unfold(
        (walk, VecDeque::with_capacity(CHUNK)),
        |(mut walk, mut buffer)| async move {
            if buffer.is_empty() {
                (walk, buffer) = tokio::task::spawn_blocking(move || {
                    buffer.extend(walk.by_ref().take(CHUNK));
                    (walk, buffer)
                })
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: format!("the listing {}", crate::base::panics::task_failure(e)).into(),
                })?;
            }
            match buffer.pop_front() {
                Some(meta) => Ok(Some((meta?, (walk, buffer)))),
                None => Ok(None),
            }
        },
    )
    .boxed()
}

/// The folder a key names (its parts percent-decoded, as `object_store` does).
fn folder_of(prefix: &ObjPath) -> Result<std::path::PathBuf> {
    let mut url = url::Url::parse("file:///").map_err(|e| generic(e.to_string()))?;
    url.path_segments_mut()
        .map_err(|()| generic("file:/// has no path".into()))?
        .pop_if_empty()
        .extend(prefix.parts());
    url.to_file_path()
        .map_err(|()| generic(format!("{url} is not a local path")))
}

/// The key of a file the walk found under the local store's root (`/`): its
/// path without the leading `/`. For such a path (absolute, with no `.`, `..` or
/// empty parts) that is the key `ObjPath::from_absolute_path` makes, which goes
/// through a `file:` URL and back (percent-encoding every part, then decoding
/// it) at a per-file cost a listing of small files notices. A path that is not
/// UTF-8 gets that function's error.
fn location_of(path: &std::path::Path) -> std::result::Result<ObjPath, object_store::path::Error> {
    match path.to_str().and_then(|p| p.strip_prefix('/')) {
        Some(relative) => ObjPath::parse(relative),
        None => ObjPath::from_absolute_path(path),
    }
}

/// The file a key of the local store names: `/` and the key (the store's root
/// is `/`, as `Location::open` makes every local store), the inverse of
/// [`location_of`], so a listed key opens the file that was listed. The reads of
/// `ItemInput` open local files by it; what still reads a local file through
/// `object_store` (a DICOM source's sample check, `sniff`) cannot open such a
/// name.
/// (`LocalFileSystem::path_to_filesystem` goes through a `file:` URL and back,
/// where a path ending in a letter and `:` or `|` (a file named `E:`) is taken
/// for a Windows drive and gets a `/` after it: such a file does not open by its
/// listed key there. The property test below found it.)
pub fn file_of(location: &ObjPath) -> std::path::PathBuf {
    std::path::Path::new("/").join(location.as_ref())
}

/// One walked entry as an object, or `None` for what the listing leaves out.
fn object(
    entry: walkdir::Result<walkdir::DirEntry>,
    folders: &mut Folders,
) -> Option<Result<ObjectMeta>> {
    let entry = match entry {
        Ok(entry) => entry,
        // Gone since its directory was read, or a link to nothing.
        Err(e) if e.io_error().map(|io| io.kind()) == Some(std::io::ErrorKind::NotFound) => {
            return None;
        }
        Err(e) => {
            return Some(Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            }));
        }
    };
    if entry.file_type().is_dir() {
        return None;
    }
    // The one stat, through links. `object_store` skips a file whose `is_file`
    // fails for any reason, so an error leaves it out here too.
    let stamp = folders.stat(entry.path(), entry.depth())?;
    let location = match location_of(entry.path()) {
        Ok(location) => location,
        Err(e) => return Some(Err(e.into())),
    };
    if is_upload_part(&location) {
        return None;
    }
    Some(Ok(stamp.meta(location)))
}

/// The folders above the entry being listed, held open by depth: the walk goes
/// depth first (into a subfolder where it meets it, then back), so a folder's
/// files are stat'ed by name in it, and a folder is opened once per visit. A
/// folder renamed or replaced while it is held is still the one its files are
/// looked up in (a listing of a tree that changes under it is never exact).
#[derive(Default)]
struct Folders {
    /// Index `d`: the open folder at depth `d` below the root, if one was needed.
    open: Vec<Option<(std::path::PathBuf, rustix::fd::OwnedFd)>>,
    /// Folders opened so far (a test counts them).
    opened: usize,
}

/// Linux's `PATH_MAX`: a longer path cannot be stat'ed (or read) by its path, so
/// it is left out here too, as `object_store` leaves it out.
const PATH_MAX: usize = 4096;

/// Folders held open at most (walkdir holds 10 of its own): deeper files are
/// stat'ed by their path, so a deep tree cannot run the process out of files.
const MAX_OPEN_FOLDERS: usize = 16;

impl Folders {
    /// `path`'s metadata, through links, if it is a file (`None` for anything
    /// else, and for whatever cannot be stat'ed). `depth` is the walk's (1: in
    /// the root).
    fn stat(&mut self, path: &std::path::Path, depth: usize) -> Option<Stamp> {
        use rustix::fs::{AtFlags, FileType};
        let (parent, name) = (path.parent()?, path.file_name()?);
        if path.as_os_str().len() >= PATH_MAX {
            return None;
        }
        let st = match self.folder(parent, depth) {
            Some(fd) => rustix::fs::statat(fd, name, AtFlags::empty()),
            // Too deep, or the folder would not open: by its path, as before.
            None => rustix::fs::stat(path),
        }
        .ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        Some(Stamp {
            ino: st.st_ino,
            len: u64::try_from(st.st_size).ok()?,
            modified: since_epoch(st.st_mtime, st.st_mtime_nsec),
        })
    }

    /// The open folder `parent` of an entry at `depth`, opened if it is not.
    fn folder(&mut self, parent: &std::path::Path, depth: usize) -> Option<&rustix::fd::OwnedFd> {
        use rustix::fs::{Mode, OFlags};
        // Deeper folders are behind the walk now; the parent's depth is one up.
        let at = depth.checked_sub(1).filter(|at| *at < MAX_OPEN_FOLDERS)?;
        self.open.truncate(at + 1);
        self.open.resize_with(at + 1, || None);
        let slot = &mut self.open[at];
        if slot.as_ref().is_none_or(|(open, _)| open != parent) {
            *slot = None;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(parent, flags, Mode::empty()).ok()?;
            self.opened += 1;
            *slot = Some((parent.to_path_buf(), fd));
        }
        slot.as_ref().map(|(_, fd)| fd)
    }
}

/// A stat's time as std makes it (`Metadata::modified`): seconds from 1970, then
/// the nanoseconds forward, even before 1970; `None` for nanoseconds out of range.
/// (The fields' C types differ by platform, hence the conversions.)
fn since_epoch(secs: impl TryInto<i64>, nanos: impl TryInto<u32>) -> Option<SystemTime> {
    let secs: i64 = secs.try_into().ok()?;
    let nanos = nanos.try_into().ok().filter(|n| *n < 1_000_000_000)?;
    match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH.checked_add(Duration::new(secs, nanos)),
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos))),
    }
}

/// What a local file's `ObjectMeta` is made of.
pub struct Stamp {
    pub ino: u64,
    pub len: u64,
    /// `None` where the time cannot be had (as std's `modified` gives it).
    pub modified: Option<SystemTime>,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }

    /// The file at `location` as `object_store` lists it.
    pub fn meta(&self, location: ObjPath) -> ObjectMeta {
        ObjectMeta {
            location,
            last_modified: self.last_modified(),
            size: self.len,
            e_tag: Some(self.etag()),
            version: None,
        }
    }

    fn last_modified(&self) -> chrono::DateTime<chrono::Utc> {
        self.modified
            .map(chrono::DateTime::from)
            .unwrap_or_default()
    }

    /// The ETag `object_store` gives a local file (`INODE-MTIME-SIZE` in hex, the
    /// modification time in microseconds); a unit test holds it to object_store's.
    pub fn etag(&self) -> String {
        ETag(self).to_string()
    }

    /// `self.etag() == etag`, without building the string: a header reader
    /// compares the open file with its listing at every read.
    pub fn has_etag(&self, etag: &str) -> bool {
        use std::fmt::Write;
        let mut rest = Rest(etag.as_bytes());
        write!(rest, "{}", ETag(self)).is_ok() && rest.0.is_empty()
    }
}

/// What is left of an expected text as pieces of it are written: writing a
/// piece it does not start with fails.
struct Rest<'a>(&'a [u8]);

impl std::fmt::Write for Rest<'_> {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        self.0 = self
            .0
            .strip_prefix(piece.as_bytes())
            .ok_or(std::fmt::Error)?;
        Ok(())
    }
}

/// A stamp's ETag as text (one writer for [`Stamp::etag`] and [`Stamp::has_etag`]).
struct ETag<'a>(&'a Stamp);

impl std::fmt::Display for ETag<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mtime = self
            .0
            .modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default()
            .as_micros();
        write!(f, "{:x}-{mtime:x}-{:x}", self.0.ino, self.0.len)
    }
}

/// `object_store` writes a file in parts named `NAME#DIGITS` and leaves them out
/// of its listings.
fn is_upload_part(location: &ObjPath) -> bool {
    match location.filename().and_then(|name| name.split_once('#')) {
        Some((_, suffix)) => !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStore;

    /// A folder with what a share holds and what listings leave out.
    fn share() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b/empty")).unwrap();
        std::fs::create_dir_all(root.join("odd name %")).unwrap();
        std::fs::write(root.join("top.csv"), "1\n").unwrap();
        std::fs::write(root.join("a/one.dcm"), "x".repeat(300)).unwrap();
        std::fs::write(root.join("a/b/two.dcm"), "").unwrap();
        std::fs::write(root.join("odd name %/é ü#1.csv"), "odd").unwrap();
        std::fs::write(root.join("a/part#12"), "upload part").unwrap();
        std::fs::write(root.join("a/tag#v2"), "not a part").unwrap();
        std::os::unix::fs::symlink(root.join("a/one.dcm"), root.join("link.dcm")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("broken.dcm")).unwrap();
        std::os::unix::fs::symlink(root.join("a/b"), root.join("linked dir")).unwrap();
        // Modification times the stat's seconds and nanoseconds must carry over:
        // one before 1970 (negative seconds, nanoseconds forward), one with
        // nanoseconds a microsecond rounds.
        for (name, mtime) in [
            ("a/old.csv", UNIX_EPOCH - Duration::new(100, 250_000_000)),
            (
                "a/b/fine.csv",
                UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            ),
        ] {
            let file = std::fs::File::create(root.join(name)).unwrap();
            file.set_modified(mtime).unwrap();
        }
        dir
    }

    fn sorted(mut metas: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        metas
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lists_what_object_store_lists_with_the_same_metadata() {
        let dir = share();
        let prefix = ObjPath::from_absolute_path(dir.path()).unwrap();
        let ours = sorted(list(&prefix).try_collect().await.unwrap());
        let store = object_store::local::LocalFileSystem::new();
        let theirs = sorted(store.list(Some(&prefix)).try_collect().await.unwrap());
        assert_eq!(ours, theirs);
        let names: Vec<_> = ours
            .iter()
            .map(|m| m.location.as_ref().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(
            names.len(),
            10,
            "files, links to files, a linked folder's file, not the part or the broken link: {names:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_prefix_narrows_it_and_a_missing_folder_lists_nothing() {
        let dir = share();
        let base = ObjPath::from_absolute_path(dir.path()).unwrap();
        let store = object_store::local::LocalFileSystem::new();
        for sub in ["a", "odd name %", "nothing here"] {
            let prefix = base.clone().join(sub);
            let ours = sorted(list(&prefix).try_collect().await.unwrap());
            let theirs = sorted(store.list(Some(&prefix)).try_collect().await.unwrap());
            assert_eq!(ours, theirs, "under {sub}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_name_that_is_not_utf8_fails_both_listings() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fine.csv"), "1").unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"bad\xff.csv");
        std::fs::write(dir.path().join(odd), "2").unwrap();
        let prefix = ObjPath::from_absolute_path(dir.path()).unwrap();
        let ours: Result<Vec<ObjectMeta>> = list(&prefix).try_collect().await;
        let store = object_store::local::LocalFileSystem::new();
        let theirs: Result<Vec<ObjectMeta>> = store.list(Some(&prefix)).try_collect().await;
        assert!(ours.is_err() && theirs.is_err(), "{ours:?} / {theirs:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_link_back_up_the_tree_fails_both_listings() {
        // A share whose folder links to its parent: following it never ends, so
        // both walks stop with an error rather than listing forever.
        let dir = share();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/b/up")).unwrap();
        let prefix = ObjPath::from_absolute_path(dir.path()).unwrap();
        let ours: Result<Vec<ObjectMeta>> = list(&prefix).try_collect().await;
        let store = object_store::local::LocalFileSystem::new();
        let theirs: Result<Vec<ObjectMeta>> = store.list(Some(&prefix)).try_collect().await;
        assert!(ours.is_err() && theirs.is_err(), "{ours:?} / {theirs:?}");
    }

    #[test]
    fn a_folder_stays_open_while_the_walk_is_below_it() {
        let dir = share();
        let root = dir.path();
        let mut folders = Folders::default();
        let held = |f: &Folders| -> Vec<Option<std::path::PathBuf>> {
            f.open
                .iter()
                .map(|s| s.as_ref().map(|(p, _)| p.clone()))
                .collect()
        };
        assert!(folders.stat(&root.join("a/one.dcm"), 2).is_some());
        assert!(folders.stat(&root.join("a/b/two.dcm"), 3).is_some());
        assert_eq!(
            held(&folders),
            [None, Some(root.join("a")), Some(root.join("a/b"))]
        );
        // Back up: `a` is the same open folder, `a/b` is let go.
        assert!(folders.stat(&root.join("a/old.csv"), 2).is_some());
        assert_eq!(held(&folders), [None, Some(root.join("a"))]);
        assert_eq!(folders.opened, 2, "a and a/b, each once");
        // A sibling folder at the same depth replaces it; a folder is not a file.
        assert!(
            folders
                .stat(&root.join("odd name %/é ü#1.csv"), 2)
                .is_some()
        );
        assert_eq!(held(&folders), [None, Some(root.join("odd name %"))]);
        assert!(folders.stat(&root.join("a/b"), 2).is_none());
        // Through a linked folder, and by path below the folders held open.
        assert!(folders.stat(&root.join("linked dir/two.dcm"), 2).is_some());
        let deep = (0..MAX_OPEN_FOLDERS + 2).fold(root.to_path_buf(), |p, i| p.join(i.to_string()));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("deep.csv"), "x").unwrap();
        let stamp = folders
            .stat(&deep.join("deep.csv"), MAX_OPEN_FOLDERS + 3)
            .unwrap();
        assert_eq!(stamp.len, 1);
        assert!(folders.open.len() <= MAX_OPEN_FOLDERS);
        // At PATH_MAX a path is left out, as a stat by path leaves it out.
        let long = root.join("x".repeat(PATH_MAX));
        assert!(folders.stat(&long, 1).is_none());
    }

    #[test]
    fn stat_times_are_the_times_std_makes() {
        let half = Duration::from_millis(500);
        assert_eq!(since_epoch(-1i64, 500_000_000u64), Some(UNIX_EPOCH - half));
        assert_eq!(
            since_epoch(1i64, 500_000_000u64),
            Some(UNIX_EPOCH + Duration::from_secs(1) + half)
        );
        // std rejects nanoseconds of a second or more rather than carrying them.
        assert_eq!(since_epoch(0i64, 1_000_000_000u64), None);
        assert_eq!(since_epoch(0i64, -1i64), None);
    }

    #[test]
    fn without_a_runtime_the_walk_runs_in_place() {
        let dir = share();
        let prefix = ObjPath::from_absolute_path(dir.path()).unwrap();
        let listed: Vec<ObjectMeta> =
            futures::executor::block_on(list(&prefix).try_collect()).unwrap();
        assert_eq!(listed.len(), 10);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn more_files_than_one_chunk_are_all_listed() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..CHUNK + 5 {
            std::fs::write(dir.path().join(format!("{i}.dcm")), "x").unwrap();
        }
        let prefix = ObjPath::from_absolute_path(dir.path()).unwrap();
        let ours: Vec<ObjectMeta> = list(&prefix).try_collect().await.unwrap();
        assert_eq!(ours.len(), CHUNK + 5);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Every listed key opens the file that was listed, and is the key
        /// `object_store` makes of its path, for names with what URLs and keys
        /// treat specially: `%` sequences (`%2e`, a dot escaped), dots, `#`,
        /// `\`, `|`, `:`, spaces and letters beyond ASCII.
        #[test]
        fn a_listed_key_opens_the_listed_file(
            names in proptest::collection::btree_set(
                ("[ab.%2eE#|:\\\\ é]{1,6}", "[ab.%2eE#|:\\\\ é]{1,6}"),
                1..6,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut written = std::collections::BTreeMap::new();
            for (i, (folder, name)) in names.iter().enumerate() {
                // The file system refuses `.` and `..` as names; skip them.
                if [".", ".."].contains(&folder.as_str()) || [".", ".."].contains(&name.as_str()) {
                    continue;
                }
                let path = dir.path().join(folder).join(name);
                if std::fs::create_dir_all(path.parent().unwrap()).is_err()
                    || std::fs::write(&path, i.to_string()).is_err()
                {
                    // A name already taken by a folder (or the reverse).
                    continue;
                }
                written.insert(path, i.to_string());
            }
            let prefix = ObjPath::from_absolute_path(dir.path()).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let listed: Vec<ObjectMeta> = rt.block_on(list(&prefix).try_collect()).unwrap();
            let uploads = written.keys().filter(|p| is_upload_part(&location_of(p).unwrap())).count();
            proptest::prop_assert_eq!(listed.len() + uploads, written.len());
            for meta in &listed {
                let file = file_of(&meta.location);
                let read = std::fs::read_to_string(&file).ok();
                proptest::prop_assert_eq!(
                    read.as_ref(),
                    written.get(&file),
                    "{} lists as {}", file.display(), meta.location
                );
                proptest::prop_assert_eq!(
                    &location_of(&file).unwrap(),
                    &ObjPath::from_absolute_path(&file).unwrap()
                );
                let stamp = Stamp::of(&std::fs::metadata(&file).unwrap());
                proptest::prop_assert!(stamp.has_etag(meta.e_tag.as_deref().unwrap()));
                let (longer, etag) = (format!("{}0", stamp.etag()), stamp.etag());
                proptest::prop_assert!(!stamp.has_etag(&longer));
                proptest::prop_assert!(!stamp.has_etag(&etag[1..]));
                proptest::prop_assert!(!stamp.has_etag(&etag[..etag.len() - 1]));
            }
        }
    }
}
