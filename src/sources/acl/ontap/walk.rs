//! Walking a volume with `GET /api/storage/volumes/{uuid}/files/{path}`: every
//! directory's pages (`_links.next` until it is absent), `.` and `..` skipped,
//! several directories at once. A directory is sent to the readers after its
//! listing, so that a listing that failed travels with it ([`Found`]).
//!
//! Each listing is a task of its own: while the walk waits for the readers to
//! take paths, a listing in the middle of a request must still finish it, or it
//! would hold one of the client's permits that the readers are waiting for.
//!
//! A `next` link is followed only if it is a path on the same filer (`/api/…`),
//! and a directory gives at most as many pages as `max_paths` allows, so a filer
//! that links in a circle cannot keep the walk going.

use std::sync::Arc;

use serde_json::Value;
use tokio::task::JoinSet;

use super::super::found::{
    Failure, Found, Limits, Notes, Stage, check_count, child_path, empty_fingerprint, refused_name,
};
use super::client::{Answer, Client, ClientError, encode_path};
use crate::discover::ItemSink;
use crate::error::{Error, Result};

/// One directory's children, or why there are none.
type Listed = std::result::Result<Vec<(String, String)>, Failure>;

/// The files-API target of a volume path (`/` is `%2F`; others without the
/// leading slash, as the API's examples write them).
fn files_target(volume: &str, path: &str, page_size: usize) -> String {
    let p = if path == "/" {
        encode_path("/")
    } else {
        encode_path(path.trim_start_matches('/'))
    };
    format!("/api/storage/volumes/{volume}/files/{p}?fields=name,type&max_records={page_size}")
}

/// Walks the volume from its root into `sink`.
pub async fn walk(
    client: &Arc<Client>,
    volume: &str,
    page_size: usize,
    parallel: usize,
    limits: Limits,
    sink: &mut ItemSink,
    notes: &Notes,
) -> Result<()> {
    let mut waiting: Vec<(String, usize)> = vec![("/".into(), 0)];
    let mut running = JoinSet::new();
    let mut paths = 0u64;
    loop {
        while running.len() < parallel.max(1) {
            let Some((dir, depth)) = waiting.pop() else {
                break;
            };
            let (client, volume) = (client.clone(), volume.to_string());
            running.spawn(async move {
                let listed = if depth >= limits.max_depth {
                    Err(Failure::new(
                        Stage::Walk,
                        format!(
                            "not descended: deeper than max_depth ({})",
                            limits.max_depth
                        ),
                    ))
                } else {
                    list(&client, &volume, &dir, page_size, limits).await?
                };
                std::result::Result::<_, ClientError>::Ok((dir, depth, listed))
            });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let done = done.map_err(|e| Error::Collect(format!("a directory listing stopped: {e}")))?;
        let (dir, depth, listed) = done.map_err(|e| Error::Collect(e.to_string()))?;
        let failure = match listed {
            Ok(children) => {
                for (name, object_type) in children {
                    let path = child_path(&dir, &name);
                    if object_type == "directory" {
                        waiting.push((path, depth + 1));
                        continue;
                    }
                    paths += 1;
                    check_count(paths, limits)?;
                    notes.put(
                        &path,
                        Found {
                            object_type,
                            walk_failure: None,
                        },
                    );
                    if !sink.found(path, empty_fingerprint()).await {
                        return Ok(());
                    }
                }
                None
            }
            Err(f) => Some(f),
        };
        paths += 1;
        check_count(paths, limits)?;
        notes.put(
            &dir,
            Found {
                object_type: "directory".into(),
                walk_failure: failure,
            },
        );
        if !sink.found(dir, empty_fingerprint()).await {
            return Ok(());
        }
    }
    Ok(())
}

/// All pages of one directory.
async fn list(
    client: &Client,
    volume: &str,
    dir: &str,
    page_size: usize,
    limits: Limits,
) -> std::result::Result<Listed, ClientError> {
    let mut target = files_target(volume, dir, page_size);
    let mut children = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let max_pages = limits.max_paths / page_size.max(1) as u64 + 2;
    for _ in 0..max_pages {
        if !seen.insert(target.clone()) {
            return Ok(Err(Failure::new(
                Stage::Walk,
                "the listing links back to a page it already gave",
            )));
        }
        let page = match client.get(&target).await? {
            Answer::Ok(v) => v,
            Answer::Refused { status, message } => {
                return Ok(Err(Failure {
                    stage: Stage::Walk,
                    http_status: Some(status),
                    reason: format!("cannot list the directory: {message}"),
                }));
            }
        };
        if let Err(why) = records(&page, &mut children) {
            return Ok(Err(Failure::new(Stage::Walk, why)));
        }
        match next_link(&page) {
            Ok(Some(next)) => target = next,
            Ok(None) => {
                children.sort();
                return Ok(Ok(children));
            }
            Err(why) => return Ok(Err(Failure::new(Stage::Walk, why))),
        }
    }
    Ok(Err(Failure::new(
        Stage::Walk,
        format!("more than {max_pages} pages"),
    )))
}

/// The records of a page: (name, type), without `.` and `..`; a name naslake
/// refuses to ask about is skipped with a warning (it names no reachable path).
fn records(page: &Value, out: &mut Vec<(String, String)>) -> std::result::Result<(), String> {
    let records = match page.get("records") {
        Some(Value::Array(r)) => r,
        None | Some(Value::Null) => return Ok(()),
        Some(_) => return Err("records is not an array".into()),
    };
    for r in records {
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a record without a name")?;
        if name == "." || name == ".." {
            continue;
        }
        if let Some(why) = refused_name(name) {
            tracing::warn!("skipped a listed name: {why}");
            continue;
        }
        let object_type = r.get("type").and_then(Value::as_str).unwrap_or("file");
        out.push((name.to_string(), object_type.to_string()));
    }
    Ok(())
}

/// `_links.next.href`, if it is a path on this filer.
fn next_link(page: &Value) -> std::result::Result<Option<String>, String> {
    let Some(href) = page.pointer("/_links/next/href") else {
        return Ok(None);
    };
    let href = href.as_str().ok_or("_links.next.href is not a string")?;
    if !href.starts_with("/api/")
        || href.contains("://")
        || href.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err("_links.next.href is not a path on this filer; not followed".into());
    }
    Ok(Some(href.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_encode_the_path_as_the_api_asks() {
        assert_eq!(
            files_target("v", "/", 10),
            "/api/storage/volumes/v/files/%2F?fields=name,type&max_records=10"
        );
        assert_eq!(
            files_target("v", "/a/b.c", 10),
            "/api/storage/volumes/v/files/a%2Fb%2Ec?fields=name,type&max_records=10"
        );
    }

    #[test]
    fn records_skip_dots_and_refused_names() {
        let page = json!({"records": [
            {"name": ".", "type": "directory"}, {"name": "..", "type": "directory"},
            {"name": "a", "type": "file"}, {"name": "b/c", "type": "file"}, {"name": "d", "type": "directory"}
        ]});
        let mut out = vec![];
        records(&page, &mut out).unwrap();
        assert_eq!(
            out,
            [
                ("a".into(), "file".into()),
                ("d".into(), "directory".into())
            ]
        );
        assert!(records(&json!({"records": [{"type": "file"}]}), &mut out).is_err());
    }

    #[test]
    fn only_links_on_the_same_filer_are_followed() {
        assert_eq!(next_link(&json!({})).unwrap(), None);
        let ok =
            json!({"_links": {"next": {"href": "/api/storage/volumes/v/files/%2F?start.x=1"}}});
        assert!(next_link(&ok).unwrap().is_some());
        for bad in ["https://evil/api/x", "/other", "/api/x\n"] {
            assert!(
                next_link(&json!({"_links": {"next": {"href": bad}}})).is_err(),
                "{bad}"
            );
        }
    }
}
