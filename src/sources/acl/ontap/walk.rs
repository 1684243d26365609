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
    Failure, Found, Limits, Note, Notes, Sender, Stage, child_path, refused_key, refused_name,
};
use super::client::{Answer, Client, ClientError, encode_path};
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
        let done = done.map_err(|e| Error::Collect(format!("a directory listing stopped: {e}")))?;
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
                    http_status: status,
                    reason: format!("cannot list the directory: {message}"),
                }));
            }
        };
        if let Err(why) = records(&page, &mut children) {
            return Ok(Err(Failure::new(Stage::Walk, why)));
        }
        match next_link(&page, &endpoint, &client.origin()) {
            Ok(Some(next)) => target = next,
            Ok(None) => {
                // A name given twice (on two pages, say) is one path.
                children.sort();
                children.dedup_by(|a, b| a.name == b.name);
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

/// `_links.next.href`, if it is the next page of the same listing (the same
/// files path on this filer, another query).
/// An absolute link is taken only on the client's own origin; paths compare
/// decoded, so a filer that encodes `.` or the hex digits its own way is followed.
fn next_link(
    page: &Value,
    endpoint: &str,
    origin: &str,
) -> std::result::Result<Option<String>, String> {
    let Some(href) = page.pointer("/_links/next/href") else {
        return Ok(None);
    };
    let refused = || "_links.next.href is not the next page of this listing; not followed";
    let href = href.as_str().ok_or("_links.next.href is not a string")?;
    let relative = if href.starts_with('/') {
        href
    } else {
        href.strip_prefix(origin)
            .filter(|rest| rest.starts_with('/'))
            .ok_or_else(refused)?
    };
    let path = relative.split('?').next().unwrap_or(relative);
    let decoded = |p: &str| percent_encoding::percent_decode_str(p).collect::<Vec<u8>>();
    if decoded(path) != decoded(endpoint) || relative.chars().any(|c| c.is_control() || c == ' ') {
        return Err(refused().into());
    }
    Ok(Some(relative.to_string()))
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

    #[test]
    fn only_the_next_page_of_the_same_listing_is_followed() {
        let at = "/api/storage/volumes/v/files/d%2Ee";
        let origin = "https://filer:8443";
        assert_eq!(next_link(&json!({}), at, origin).unwrap(), None);
        for ok in [
            "/api/storage/volumes/v/files/d%2Ee?start.x=1",
            "/api/storage/volumes/v/files/d.e?start.x=1",
            "https://filer:8443/api/storage/volumes/v/files/d%2ee?start=3",
        ] {
            let page = json!({"_links": {"next": {"href": ok}}});
            let next = next_link(&page, at, origin).unwrap().unwrap();
            assert!(next.starts_with("/api/"), "{ok}");
        }
        for bad in [
            "https://evil/api/storage/volumes/v/files/d%2Ee?x",
            "https://filer:8443.evil/api/storage/volumes/v/files/d%2Ee?x",
            "/other",
            "/api/storage/volumes/v/files/d1?x",
            "/api/storage/volumes/v/files/d%2Ee?a\n",
        ] {
            let page = json!({"_links": {"next": {"href": bad}}});
            assert!(next_link(&page, at, origin).is_err(), "{bad}");
        }
    }
}
