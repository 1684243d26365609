//! What decides access besides a path's own DACL, as the SVM lists it: its CIFS
//! shares with their ACLs (`/api/protocols/cifs/shares`), its local groups
//! (`/api/protocols/cifs/local-groups`) and its UNIX groups
//! (`/api/name-services/unix-groups`), each paged like every listing.

use serde_json::Value;

use super::client::{Client, ClientError};
use super::fields::text;
use super::pages::each_page;
use crate::sources::acl::directory::{LocalGroup, UnixGroup};
use crate::sources::acl::rights::{FULL_CONTROL, MODIFY, READ_AND_EXECUTE};

/// Pages of one of these listings at most.
const MAX_PAGES: u64 = 100_000;

/// A share whose folder lies in the collected volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub name: String,
    /// As ONTAP gives it, in the SVM namespace (`/vol1/hr`).
    pub share_path: String,
    /// The same folder inside the volume (`/hr`).
    pub path: String,
    /// Empty when ONTAP gave no `acls` (nobody can connect).
    pub acl: Vec<ShareEntry>,
}

/// One entry of a share's ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEntry {
    pub principal: String,
    pub sid: Option<String>,
    pub permission: Permission,
    /// `windows`, `unix_user` or `unix_group`.
    pub kind: String,
}

/// A share permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    FullControl,
    Change,
    Read,
    NoAccess,
}

impl Permission {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "full_control" => Permission::FullControl,
            "change" => Permission::Change,
            "read" => Permission::Read,
            "no_access" => Permission::NoAccess,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => "full_control",
            Permission::Change => "change",
            Permission::Read => "read",
            Permission::NoAccess => "no_access",
        }
    }

    /// The NTFS rights the permission caps a path's to (no_access: none, and it
    /// denies them all).
    pub fn mask(self) -> u32 {
        match self {
            Permission::FullControl => FULL_CONTROL,
            Permission::Change => MODIFY,
            Permission::Read => READ_AND_EXECUTE,
            Permission::NoAccess => 0,
        }
    }
}

/// The volume path a share reaches from, when it reaches into the volume whose
/// junction path is `junction` (`""` for a volume mounted at `/`): its own
/// folder inside the volume, or `/` for a share at or above the junction.
pub fn in_volume(share_path: &str, junction: &str) -> Option<String> {
    let p = share_path.trim_end_matches('/');
    if junction.is_empty() {
        return Some(if p.is_empty() {
            "/".into()
        } else {
            p.to_string()
        });
    }
    // A share at or above the junction (ONTAP's `c$` at `/`, a share on a
    // parent volume) reaches the whole volume.
    if crate::sources::acl::entry::is_within(junction, p) {
        return Some("/".into());
    }
    p.strip_prefix(junction)
        .filter(|rest| rest.starts_with('/'))
        .map(str::to_string)
}

fn records(page: &Value) -> Result<&Vec<Value>, String> {
    match page.get("records") {
        Some(Value::Array(r)) => Ok(r),
        _ => Err("a listing page without a records array".into()),
    }
}

/// The names in a list of `{"name": …}` objects.
fn names(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                text(i, "name")?
                    .map(str::to_string)
                    .ok_or_else(|| "a member without a name".to_string())
            })
            .collect(),
        Some(_) => Err("members is not a list".into()),
    }
}

/// Lists one endpoint of the SVM, every page, into `take`.
async fn list(
    client: &Client,
    endpoint: &str,
    svm: &str,
    fields: &str,
    page_size: usize,
    mut take: impl FnMut(&Value) -> Result<(), String>,
) -> Result<(), String> {
    let first = format!("{endpoint}?svm.uuid={svm}&fields={fields}&max_records={page_size}");
    let listed = each_page(client, endpoint, first, MAX_PAGES, |page| {
        records(page)?.iter().try_for_each(&mut take)
    })
    .await
    .map_err(|e: ClientError| e.to_string())?;
    listed.map_err(|stopped| format!("{endpoint}: {stopped}"))
}

/// The SVM's shares whose folder lies in the volume (`junction`).
pub async fn shares(
    client: &Client,
    svm: &str,
    junction: &str,
    page_size: usize,
) -> Result<Vec<Share>, String> {
    let mut out = Vec::new();
    list(
        client,
        "/api/protocols/cifs/shares",
        svm,
        "name,path,acls",
        page_size,
        |r| {
            let (name, share_path) = match (text(r, "name"), text(r, "path")) {
                (Ok(name), Ok(path)) => (name, path),
                (Err(e), _) | (_, Err(e)) => {
                    // Not a name a table should hold; one odd share does not stop the run.
                    tracing::warn!("a share is left out: its {e}");
                    return Ok(());
                }
            };
            let name = name.ok_or("a share without a name")?;
            let share_path = share_path.ok_or_else(|| format!("share {name} has no path"))?;
            let Some(path) = in_volume(share_path, junction) else {
                return Ok(());
            };
            let acl = match r.get("acls") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(entries)) => entries
                    .iter()
                    .map(|e| share_entry(name, e))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(format!("share {name}: acls is not a list")),
            };
            out.push(Share {
                name: name.to_string(),
                share_path: share_path.to_string(),
                path,
                acl,
            });
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

fn share_entry(share: &str, e: &Value) -> Result<ShareEntry, String> {
    let principal = text(e, "user_or_group")
        .map_err(|e| format!("share {share}: {e}"))?
        .ok_or_else(|| format!("share {share}: an entry without user_or_group"))?;
    let given = text(e, "permission")
        .map_err(|e| format!("share {share}: {e}"))?
        .unwrap_or_default();
    let permission = Permission::parse(given).ok_or_else(|| {
        format!("share {share}: permission `{given}` (full_control, change, read or no_access)")
    })?;
    Ok(ShareEntry {
        principal: principal.to_string(),
        sid: text(e, "sid")
            .map_err(|e| format!("share {share}: {e}"))?
            .map(str::to_string),
        permission,
        kind: text(e, "type")
            .map_err(|e| format!("share {share}: {e}"))?
            .unwrap_or("windows")
            .to_string(),
    })
}

/// The SVM's CIFS local groups and their members.
pub async fn local_groups(
    client: &Client,
    svm: &str,
    page_size: usize,
) -> Result<Vec<LocalGroup>, String> {
    let mut out = Vec::new();
    list(
        client,
        "/api/protocols/cifs/local-groups",
        svm,
        "name,sid,members",
        page_size,
        |r| {
            let name = text(r, "name")?.ok_or("a local group without a name")?;
            out.push(LocalGroup {
                name: name.to_string(),
                sid: text(r, "sid")
                    .map_err(|e| format!("local group {name}: {e}"))?
                    .map(str::to_string),
                members: names(r.get("members")).map_err(|e| format!("local group {name}: {e}"))?,
            });
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

/// The SVM's UNIX groups and the users they name.
pub async fn unix_groups(
    client: &Client,
    svm: &str,
    page_size: usize,
) -> Result<Vec<UnixGroup>, String> {
    let mut out = Vec::new();
    list(
        client,
        "/api/name-services/unix-groups",
        svm,
        "name,id,users",
        page_size,
        |r| {
            let name = text(r, "name")?.ok_or("a UNIX group without a name")?;
            out.push(UnixGroup {
                name: name.to_string(),
                users: names(r.get("users")).map_err(|e| format!("UNIX group {name}: {e}"))?,
            });
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_into_the_volume() {
        assert_eq!(in_volume("/vol1/hr", "/vol1").as_deref(), Some("/hr"));
        assert_eq!(in_volume("/vol1/", "/vol1").as_deref(), Some("/"));
        assert_eq!(in_volume("/vol10/hr", "/vol1"), None);
        assert_eq!(in_volume("/other", "/vol1"), None);
        assert_eq!(
            in_volume("/", "/vol1").as_deref(),
            Some("/"),
            "c$ reaches every volume"
        );
        assert_eq!(in_volume("/data", "/data/hr").as_deref(), Some("/"));
        assert_eq!(in_volume("/dat", "/data/hr"), None);
        assert_eq!(in_volume("/hr", "").as_deref(), Some("/hr"));
        assert_eq!(in_volume("/", "").as_deref(), Some("/"));
    }

    #[test]
    fn entries_and_members_are_read_strictly() {
        let e = serde_json::json!({"user_or_group": "Everyone", "permission": "change", "type": "windows"});
        assert_eq!(share_entry("s", &e).unwrap().permission.mask(), MODIFY);
        let bad = serde_json::json!({"user_or_group": "x", "permission": "write"});
        assert!(share_entry("s", &bad).unwrap_err().contains("write"));
        assert_eq!(
            names(Some(&serde_json::json!([{"name": "a"}]))).unwrap(),
            ["a"]
        );
        assert!(names(Some(&serde_json::json!([{}]))).is_err());
        // A control character is an error naming the field, not a missing value.
        let bell = serde_json::json!({"user_or_group": "x\u{7}", "permission": "read"});
        let e = share_entry("s", &bell).unwrap_err();
        assert!(e.contains("user_or_group holds a control character"), "{e}");
        let e = names(Some(&serde_json::json!([{"name": "a\u{1b}"}]))).unwrap_err();
        assert!(e.contains("name holds a control character"), "{e}");
    }
}
