//! Walking a volume with `GET /api/storage/volumes/{uuid}/files/{path}`: every
//! directory's pages (`_links.next` until it is absent), `.` and `..` skipped,
//! several directories at once. A directory is sent to the readers after its
//! listing, so that a listing that failed travels with it ([`Found`]).
//!
//! Each listing is a task of its own: while the walk waits for the readers to
//! take paths, a listing in the middle of a request must still finish it, or it
//! would hold one of the client's permits that the readers are waiting for.
//!
//! A directory gives at most as many pages as `max_paths` allows (`pages.rs`
//! follows the links).

use std::sync::Arc;

use serde_json::Value;
use tokio::task::JoinSet;

use super::super::found::{
    Failure, Found, Limits, Note, Notes, Sender, Stage, child_path, refused_key, refused_name,
};
use super::client::{Client, ClientError, encode_path};
use super::pages::{Stopped, each_page};
use crate::base::error::{Error, Result};
use crate::discover::ItemSink;

/// A name in a listing: its type, and why naslake will not ask about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Child {
    name: String,
    object_type: String,
    refused: Option<&'static str>,
}

/// One directory's children, or why there are none.
type Listed = std::result::Result<Vec<Child>, Failure>;

/// The files-API path of a volume path (`/` is `%2F`; others without the
/// leading slash, as the API's examples write them).
fn files_path(volume: &str, path: &str) -> String {
    let p = if path == "/" {
        encode_path("/")
    } else {
        encode_path(path.trim_start_matches('/'))
    };
    format!("/api/storage/volumes/{volume}/files/{p}")
}

pub(super) fn files_target(volume: &str, path: &str, page_size: usize) -> String {
    format!(
        "{}?fields=name,type&max_records={page_size}",
        files_path(volume, path)
    )
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
    let mut sender = Sender::new(notes, limits);
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
                            "not listed: {depth} levels below the root (max_depth {})",
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
        let done = done.map_err(|e| {
            Error::Collect(format!(
                "a directory listing {}",
                crate::base::panics::task_failure(e)
            ))
        })?;
        let (dir, depth, listed) = done.map_err(|e| Error::Collect(e.to_string()))?;
        let failure = match listed {
            Ok(children) => {
                let mut keys = std::collections::HashSet::new();
                for child in children {
                    let path = match child.refused {
                        Some(_) => refused_key(&dir, child.name.as_bytes()),
                        None => child_path(&dir, &child.name),
                    };
                    if !keys.insert(path.clone()) {
                        // Only a real name that is itself a refused name's
                        // encoding can get here.
                        tracing::warn!(path = %path, "two listed names share one path; the second is skipped");
                        sink.skipped();
                        continue;
                    }
                    let found = match child.refused {
                        Some(why) => Note::refused(why),
                        None if child.object_type == "directory" => {
                            waiting.push((path, depth + 1));
                            continue;
                        }
                        None => Found::of(child.object_type, None).into(),
                    };
                    if !sender.send(sink, path, found).await? {
                        return Ok(());
                    }
                }
                None
            }
            Err(f) => Some(f),
        };
        if !sender
            .send(sink, dir, Found::of("directory", failure))
            .await?
        {
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
    let endpoint = files_path(volume, dir);
    let first = files_target(volume, dir, page_size);
    let max_pages = limits.max_paths / page_size.max(1) as u64 + 2;
    let mut children = Vec::new();
    let listed = each_page(client, &endpoint, first, max_pages, |page| {
        records(page, &mut children)
    })
    .await?;
    Ok(match listed {
        Ok(()) => {
            // A name given twice (on two pages, say) is one path.
            children.sort();
            children.dedup_by(|a, b| a.name == b.name);
            Ok(children)
        }
        Err(Stopped::Refused { status, message }) => Err(Failure {
            stage: Stage::Walk,
            http_status: status,
            reason: format!("cannot list the directory: {message}"),
        }),
        Err(Stopped::Unreadable(why)) => Err(Failure::new(Stage::Walk, why)),
    })
}

/// The records of a page, without `.` and `..`; names naslake refuses to ask
/// about are kept with the reason (they become rejects).
fn records(page: &Value, out: &mut Vec<Child>) -> std::result::Result<(), String> {
    // ONTAP lists `.` and `..` in every directory: a page without records is not
    // an empty directory but an answer naslake does not understand.
    let records = match page.get("records") {
        Some(Value::Array(r)) => r,
        _ => return Err("a listing page without a records array".into()),
    };
    for r in records {
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a record without a name")?;
        if name == "." || name == ".." {
            continue;
        }
        let object_type = r.get("type").and_then(Value::as_str).unwrap_or("file");
        out.push(Child {
            name: name.to_string(),
            object_type: object_type.to_string(),
            refused: refused_name(name),
        });
    }
    Ok(())
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
    fn records_skip_dots_and_mark_refused_names() {
        let page = json!({"records": [
            {"name": ".", "type": "directory"}, {"name": "..", "type": "directory"},
            {"name": "a", "type": "file"}, {"name": "b/c", "type": "file"}, {"name": "d", "type": "directory"}
        ]});
        let mut out = vec![];
        records(&page, &mut out).unwrap();
        let names: Vec<(&str, bool)> = out
            .iter()
            .map(|c| (c.name.as_str(), c.refused.is_some()))
            .collect();
        assert_eq!(names, [("a", false), ("b/c", true), ("d", false)]);
        assert!(records(&json!({"records": [{"type": "file"}]}), &mut out).is_err());
        // Not an empty directory: an answer naslake does not understand.
        assert!(records(&json!({}), &mut out).is_err());
        assert!(records(&Value::Null, &mut out).is_err());
    }
}
