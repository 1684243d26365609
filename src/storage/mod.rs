//! Storage: turns an address (DESIGN.md "Addresses") into an `object_store` store
//! plus a key prefix. Everything that reads or writes data goes through a
//! [`Location`], so a job runs the same on a local folder and behind an S3 access
//! point.
//!
//! [`address`] parses the forms; [`s3`] builds S3 stores for buckets, access point
//! aliases and access point ARNs (which `object_store` does not know about).

pub mod address;
pub mod s3;

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;

use crate::error::{Error, Result};

pub const ACCEPTED_FORMS: &str = "accepted forms: ./dir, /abs/dir, file:///abs/dir, s3://bucket/prefix, \
s3://NAME-XXXX-s3alias/prefix, s3://NAME-XXXX-ext-s3alias/prefix, \
arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME[/prefix], s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME[/prefix]";

/// True for addresses that are not on the local filesystem.
pub fn is_remote(url: &str) -> bool {
    url.starts_with("s3://") || url.starts_with("arn:")
}

/// A store and the key prefix a job reads or writes under.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// `scheme://authority` under which the store is registered with DataFusion.
    pub store_url: ObjectStoreUrl,
    /// What a key is appended to to form a full address (`file:///`, `s3://bucket/`,
    /// `s3://arn:…:accesspoint/NAME/`), for catalog locations and messages.
    pub base_url: String,
    /// Key prefix inside the store (no leading or trailing `/`).
    pub prefix: ObjPath,
    /// The address as the user wrote it, for messages.
    pub display: String,
}

impl Location {
    /// Opens an address. Relative local paths are relative to the working directory.
    pub fn open(url: &str) -> Result<Location> {
        match address::parse(url).map_err(|e| address_error(url, &e))? {
            address::Address::Local(path) => {
                let abs = std::path::absolute(&path)
                    .map_err(|e| address_error(url, &format!("not a usable path: {e}")))?;
                let abs = normalize(&abs);
                let prefix = ObjPath::from_absolute_path(&abs)
                    .map_err(|e| address_error(url, &format!("not a usable path: {e}")))?;
                Ok(Location {
                    store: Arc::new(LocalFileSystem::new()),
                    store_url: ObjectStoreUrl::local_filesystem(),
                    base_url: "file:///".into(),
                    prefix,
                    display: url.to_string(),
                })
            }
            remote => s3::open(url, remote).map_err(|e| address_error(url, &e)),
        }
    }

    /// The key of `relative` under this location.
    pub fn child(&self, relative: &str) -> ObjPath {
        let mut p = self.prefix.clone();
        for part in relative.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// A key made into a full address (for catalog locations and messages).
    pub fn url_of(&self, key: &ObjPath) -> String {
        format!("{}{}", self.base_url, key.as_ref())
    }

    /// The key relative to this location's prefix, or `None` when outside it.
    pub fn relative(&self, key: &ObjPath) -> Option<String> {
        key.prefix_match(&self.prefix).map(|parts| {
            parts
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
    }

    /// True when `other` is this location or lies under it, in the same store.
    pub fn contains(&self, other: &Location) -> bool {
        self.store_url == other.store_url && other.prefix.prefix_matches(&self.prefix)
    }
}

/// Removes `.` and `..` components without touching the filesystem (the output
/// folder may not exist yet).
fn normalize(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn address_error(url: &str, reason: &str) -> Error {
    Error::Address {
        url: url.to_string(),
        reason: reason.to_string(),
        accepted: ACCEPTED_FORMS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_absolute_and_normalized() {
        let a = Location::open("/tmp/x/../y/./z").unwrap();
        assert_eq!(a.prefix.as_ref(), "tmp/y/z");
        let b = Location::open("file:///tmp/y").unwrap();
        assert!(b.contains(&a));
        assert!(!a.contains(&b));
        assert_eq!(a.relative(&a.child("k/v.csv")).as_deref(), Some("k/v.csv"));
    }
}
