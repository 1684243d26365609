//! `naslake dicom locate NAME --input URL`: the real key of an object a DICOM run
//! named `NAME` (a `source_key` of `dicom_instances` or `dicom_rejects`), for a
//! person who holds the pseudonym key and may read the share (the job's rights).
//!
//! It walks the listing one folder level at a time along the name, keeping the
//! folders whose name or pseudonym is the name's segment, so it lists only the
//! folders on the way, not the share. A segment in clear (the job's prefix)
//! matches itself, so the job's prefix need not be given.

use super::deidentify::{self, Key, KeySource};
use super::keys::KeyPseudonyms;
use crate::base::error::{Error, Result};
use crate::storage::Location;

/// The pseudonym key as a run would take it (the environment's, or the secret's).
pub async fn key() -> Result<Key> {
    let value = match deidentify::key_source().map_err(Error::config)? {
        Some(KeySource::Value(v)) => v,
        Some(KeySource::Secret(id)) => deidentify::fetch_secret(&id)
            .await
            .map_err(Error::Collect)?,
        None => {
            return Err(Error::config(format!(
                "locating a key needs the pseudonym key the run used: set {} or {}",
                deidentify::KEY_VAR,
                deidentify::SECRET_VAR
            )));
        }
    };
    Key::new(&value).map_err(|e| Error::config(format!("{}: {e}", deidentify::KEY_VAR)))
}

/// The keys (relative to `input`) of the objects named `name`: one, unless the
/// name is ambiguous (a clear segment that is also another folder's pseudonym).
pub async fn locate(name: &str, input: &Location, key: Key) -> Result<Vec<String>> {
    let names = KeyPseudonyms::new(key, "");
    let segments: Vec<&str> = name.trim_matches('/').split('/').collect();
    let Some((file, folders)) = segments.split_last() else {
        return Ok(Vec::new());
    };
    // Folders (relative, with a trailing `/`) that match the name so far.
    let mut under = vec![String::new()];
    for want in folders {
        let mut next = Vec::new();
        for folder in &under {
            for prefix in listing(input, folder).await?.common_prefixes {
                let Some(seg) = prefix.filename() else {
                    continue;
                };
                if seg == *want || names.segment(seg) == *want {
                    next.push(format!("{folder}{seg}/"));
                }
            }
        }
        under = next;
    }
    let mut found = Vec::new();
    for folder in &under {
        for object in listing(input, folder).await?.objects {
            let Some(seg) = object.location.filename() else {
                continue;
            };
            if seg == *file || names.file(seg) == *file {
                found.extend(input.relative(&object.location));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// One folder's listing (its objects and its folders), relative to `input`.
async fn listing(input: &Location, folder: &str) -> Result<object_store::ListResult> {
    Ok(input
        .store
        .list_with_delimiter(Some(&input.key_path(folder)))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::KeyNames;

    #[tokio::test]
    async fn a_name_leads_back_to_its_key_and_only_to_it() {
        let dir = tempfile::tempdir().unwrap();
        for key in [
            "studies/YAMADA_TARO/ACC778/1.dcm",
            "studies/YAMADA_TARO/ACC779/1.dcm",
            "studies/SUZUKI/ACC778/1.dcm",
        ] {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let input = Location::open(dir.path().to_str().unwrap()).unwrap();
        let key = Key::new("0123456789abcdef-test-key").unwrap();
        let name =
            KeyPseudonyms::new(key.clone(), "studies/").name("studies/YAMADA_TARO/ACC779/1.dcm");
        assert!(name.starts_with("studies/") && !name.contains("YAMADA"));
        assert_eq!(
            locate(&name, &input, key.clone()).await.unwrap(),
            ["studies/YAMADA_TARO/ACC779/1.dcm"]
        );
        // Without the job's prefix every segment is a pseudonym: found all the same.
        let all = KeyPseudonyms::new(key.clone(), "").name("studies/SUZUKI/ACC778/1.dcm");
        assert_eq!(
            locate(&all, &input, key.clone()).await.unwrap(),
            ["studies/SUZUKI/ACC778/1.dcm"]
        );
        let other = Key::new("another-key-of-16-bytes").unwrap();
        assert!(locate(&name, &input, other).await.unwrap().is_empty());
    }
}
