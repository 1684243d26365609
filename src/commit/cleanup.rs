//! Removing files: the files of a run that failed, and after a commit the files of
//! the catalog entries it replaced. What cannot be removed is a counted warning in
//! the run report, never silence.

use std::collections::BTreeSet;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

use crate::base::warnings::Warnings;
use crate::storage::Location;
use crate::write::Staged;
use crate::write::layout::is_data_file;

/// Deletes every file a failed run wrote.
pub async fn discard(output: &Location, staged: &Staged, warnings: &Warnings) {
    let paths = staged.paths();
    let mut emptied = BTreeSet::new();
    for path in paths {
        match output.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                emptied.extend(parent(&path));
            }
            Err(e) => warnings.push(format!(
                "could not remove {} of the failed run: {e}",
                output.url_of(&path)
            )),
        }
    }
    remove_empty_local_dirs(output, &output.prefix, emptied);
}

/// Deletes the data files directly inside `locations` (the directories catalog
/// entries pointed at before the commit replaced them), within `table_prefix`
/// only. Direct children only: a version directory of this run may sit inside an
/// older (pre-versioning) location. Returns how many files were removed.
pub async fn remove_replaced(
    output: &Location,
    table_prefix: &ObjPath,
    locations: &BTreeSet<String>,
    warnings: &Warnings,
) -> u64 {
    let mut removed = 0;
    let mut emptied = BTreeSet::new();
    for location in locations {
        let Some(dir) = output.key_of_url(location) else {
            warnings.push(format!(
                "left the replaced files at {location} in place: they are outside this run's output {}",
                output.display
            ));
            continue;
        };
        if !dir.prefix_matches(table_prefix) || dir == *table_prefix {
            warnings.push(format!(
                "left the replaced files at {location} in place: not a partition directory of {}",
                output.url_of(table_prefix)
            ));
            continue;
        }
        let listing = match output.store.list_with_delimiter(Some(&dir)).await {
            Ok(l) => l,
            Err(e) => {
                warnings.push(format!(
                    "could not list the replaced location {location} to remove its files: {e}"
                ));
                continue;
            }
        };
        for meta in listing.objects {
            if !meta.location.filename().is_some_and(is_data_file) {
                continue;
            }
            match output.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    removed += 1;
                    emptied.extend(parent(&meta.location));
                }
                Err(e) => warnings.push(format!(
                    "could not remove the replaced file {}: {e}",
                    output.url_of(&meta.location)
                )),
            }
        }
    }
    remove_empty_local_dirs(output, table_prefix, emptied);
    removed
}

/// The data files directly inside a location, for copying them forward.
pub async fn data_files(
    output: &Location,
    dir: &ObjPath,
) -> crate::base::error::Result<Vec<ObjPath>> {
    let listing = output.store.list_with_delimiter(Some(dir)).await?;
    Ok(listing
        .objects
        .into_iter()
        .filter(|m| m.location.filename().is_some_and(is_data_file))
        .map(|m| m.location)
        .collect())
}

fn parent(path: &ObjPath) -> Option<String> {
    path.as_ref().rsplit_once('/').map(|(d, _)| d.to_string())
}

/// Object stores have no directories, but a local output keeps emptied version
/// and partition directories; remove them, up to (not including) `stop`.
pub(crate) fn remove_empty_local_dirs(output: &Location, stop: &ObjPath, dirs: BTreeSet<String>) {
    if !output.is_local() {
        return;
    }
    let stop = std::path::PathBuf::from(format!("/{}", stop.as_ref()));
    for dir in dirs.into_iter().rev() {
        let mut path = std::path::PathBuf::from(format!("/{dir}"));
        // remove_dir fails on a directory that is not empty, which ends the walk.
        while path.starts_with(&stop) && path != stop && std::fs::remove_dir(&path).is_ok() {
            path.pop();
        }
    }
}
