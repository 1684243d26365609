//! Every page of one ONTAP listing: `_links.next.href` is followed until it is
//! absent, only when it is the next page of the same listing on the same filer
//! (`next_link`), never to a page already given, and at most `max_pages` times,
//! so a filer that links in a circle or elsewhere cannot keep a run going.

use serde_json::Value;

use super::client::{Answer, Client, ClientError};

/// Why a listing stopped before its last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The filer refused a page.
    Refused {
        status: Option<u16>,
        message: String,
    },
    /// A page naslake cannot read, or a link it does not follow.
    Unreadable(String),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Refused { message, .. } => write!(f, "refused: {message}"),
            Stopped::Unreadable(why) => f.write_str(why),
        }
    }
}

/// Hands each page of the listing that starts at `first` (a target under
/// `endpoint`, the listing's path) to `take`, in order. `Ok(Err)`: the listing
/// stopped (a refusal, a page `take` cannot read, a bad link); `Err`: the
/// client failed.
pub async fn each_page(
    client: &Client,
    endpoint: &str,
    first: String,
    max_pages: u64,
    mut take: impl FnMut(&Value) -> Result<(), String>,
) -> Result<Result<(), Stopped>, ClientError> {
    let mut target = first;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..max_pages {
        if !seen.insert(target.clone()) {
            return Ok(Err(Stopped::Unreadable(
                "the listing links back to a page it already gave".into(),
            )));
        }
        let page = match client.get(&target).await? {
            Answer::Ok(v) => v,
            Answer::Refused { status, message } => {
                return Ok(Err(Stopped::Refused { status, message }));
            }
        };
        if let Err(why) = take(&page) {
            return Ok(Err(Stopped::Unreadable(why)));
        }
        match next_link(&page, endpoint, &client.origin()) {
            Ok(Some(next)) => target = next,
            Ok(None) => return Ok(Ok(())),
            Err(why) => return Ok(Err(Stopped::Unreadable(why))),
        }
    }
    Ok(Err(Stopped::Unreadable(format!(
        "more than {max_pages} pages"
    ))))
}

/// `_links.next.href`, if it is the next page of the same listing (the same
/// path on this filer, another query).
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
