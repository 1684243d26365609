//! What a walk hands the readers besides a path: the object's type, and why the
//! walk could not list a directory. Discovery only sends keys, so this is kept
//! aside, keyed by path, and taken by the reader of that path (so it holds only
//! the paths between the walk and the readers).

use std::collections::HashMap;
use std::sync::Mutex;

/// Where collecting a path stopped (`acl_rejects.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Walk,
    Permissions,
    Attributes,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Walk => "walk",
            Stage::Permissions => "permissions",
            Stage::Attributes => "attributes",
        }
    }
}

/// Why a path could not be collected (an `acl_rejects` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub http_status: Option<u16>,
    pub reason: String,
}

impl Failure {
    pub fn new(stage: Stage, reason: impl Into<String>) -> Self {
        Failure {
            stage,
            http_status: None,
            reason: reason.into(),
        }
    }
}

/// A path to collect, as the walk found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub object_type: String,
    /// The directory could not be listed, or was not descended.
    pub walk_failure: Option<Failure>,
}

impl Found {
    pub fn of(object_type: impl Into<String>, walk_failure: Option<Failure>) -> Self {
        Found {
            object_type: object_type.into(),
            walk_failure,
        }
    }
}

/// What the walk tells the reader of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Collect(Found),
    /// A listed name naslake does not ask about (it has a `/` or a control
    /// character, or is not UTF-8): this reject is its only row.
    Refused(Failure),
}

impl Note {
    pub fn refused(why: &str) -> Self {
        Note::Refused(Failure::new(
            Stage::Walk,
            format!("listed, never asked about: {why}"),
        ))
    }
}

impl From<Found> for Note {
    fn from(found: Found) -> Self {
        Note::Collect(found)
    }
}

/// The walk's notes, until each path's reader takes its own.
#[derive(Debug, Default)]
pub struct Notes(Mutex<HashMap<String, Note>>);

impl Notes {
    pub fn put(&self, path: &str, note: Note) {
        self.lock().insert(path.to_string(), note);
    }

    /// The note of `path`; `None` for a path the walk left none for (an object
    /// listing's, which is a file; in a walk, a bug).
    pub fn take(&self, path: &str) -> Option<Note> {
        self.lock().remove(path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Note>> {
        // A panic elsewhere cannot leave a map half-updated (insert and remove are
        // single calls): the notes stay usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How far a walk goes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Directories this many levels below the root (the root is level 0) are
    /// collected but not listed (a reject says so).
    pub max_depth: usize,
    /// A walk that finds more paths than this stops the run: a snapshot must not be
    /// silently cut short.
    pub max_paths: u64,
}

/// What both walks do with a path they found: count it against `max_paths`,
/// keep its note for the reader, and send it.
pub struct Sender<'a> {
    notes: &'a Notes,
    limits: Limits,
    paths: u64,
}

impl<'a> Sender<'a> {
    pub fn new(notes: &'a Notes, limits: Limits) -> Self {
        Sender {
            notes,
            limits,
            paths: 0,
        }
    }

    /// Sends `path`; false when the readers stopped (the walk should too).
    pub async fn send(
        &mut self,
        sink: &mut crate::discover::ItemSink,
        path: String,
        note: impl Into<Note>,
    ) -> crate::base::error::Result<bool> {
        self.paths += 1;
        if self.paths > self.limits.max_paths {
            return Err(crate::base::error::Error::config(format!(
                "the walk found more than max_paths ({}) paths; raise `max_paths` to collect them all",
                self.limits.max_paths
            )));
        }
        self.notes.put(&path, note.into());
        // Walked paths have no size or version: permissions are read whatever they are.
        let fingerprint = crate::model::Fingerprint {
            size: 0,
            etag: None,
            last_modified: None,
        };
        Ok(sink.found(path, fingerprint).await)
    }
}

/// The key of a listed name naslake refuses (one with a `/` or a control
/// character, or bytes that are not UTF-8): `%`, `/`, control characters and
/// non-UTF-8 bytes percent-encoded, so that two refused names never share a key,
/// and a real name shares one only if it is itself such an encoding.
pub fn refused_key(dir: &str, raw_name: &[u8]) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, percent_encode};
    const REFUSED: &AsciiSet = &CONTROLS.add(b'%').add(b'/');
    child_path(dir, &percent_encode(raw_name, REFUSED).to_string())
}

/// Joins a directory's path and a child's name (`/` + `a` = `/a`).
pub fn child_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Why a name found in a listing is not a path naslake asks about: `.` and `..`
/// (skipped silently by the caller), a `/`, a NUL or a control character.
pub fn refused_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name.contains('/') {
        Some("a name with a /")
    } else if name.chars().any(char::is_control) {
        Some("a name with a control character")
    } else {
        None
    }
}

/// Why a path is refused before any request: a `..` or `.` segment, a control
/// character, or not starting at `/`.
pub fn refused_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("a path that does not start at /")
    } else if path.chars().any(char::is_control) {
        Some("a path with a control character")
    } else if path.split('/').any(|s| s == ".." || s == ".") {
        Some("a path with a . or .. segment")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_dot_segments_or_controls_are_refused() {
        assert_eq!(refused_path("/a/b"), None);
        assert_eq!(refused_path("/"), None);
        assert_eq!(refused_path("/a/.hidden"), None);
        assert_eq!(refused_path("/a/..b"), None);
        assert!(refused_path("/a/../b").is_some());
        assert!(refused_path("/a/./b").is_some());
        assert!(refused_path("/..").is_some());
        assert!(refused_path("/a\nb").is_some());
        assert!(refused_path("/a\u{7f}").is_some());
        assert!(refused_path("a").is_some());
        assert!(refused_name("a/b").is_some());
        assert!(refused_name("a\0").is_some());
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(refused_key("/d", b"b/c"), "/d/b%2Fc");
        assert_eq!(refused_key("/d", b"a\x01%"), "/d/a%01%25");
        assert_eq!(refused_key("/", b"\xff\xfe"), "/%FF%FE");
        assert_ne!(refused_key("/", b"\xff"), refused_key("/", b"\xfe"));
        assert_eq!(refused_key("/d", b""), "/d/");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }

    #[test]
    fn a_note_is_taken_once() {
        let notes = Notes::default();
        notes.put("/d", Found::of("directory", None).into());
        assert_eq!(
            notes.take("/d"),
            Some(Note::Collect(Found::of("directory", None)))
        );
        assert_eq!(notes.take("/d"), None);
    }
}
