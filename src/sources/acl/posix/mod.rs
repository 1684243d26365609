//! Permissions from a local file system (for example an NFS mount of the volume):
//! owner, group and mode from `lstat`, POSIX ACLs (access and default) and NFSv4
//! ACLs from extended attributes. Symlinks are recorded, never followed.
//!
//! An object without an ACL attribute has the three entries its mode is (owner,
//! owning group, other), as `getfacl` shows them; with one, its entries as
//! written. On an NFSv4 mount the server's ACL (`system.nfs4_acl`) replaces both.

pub mod system;
pub mod xattr;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::entry::{Ace, ApplyTo, EntryType, ObjectAcl, mode_entries};
use super::found::{
    Failure, Found, Limits, Note, Notes, Sender, Stage, child_path, refused_key, refused_name,
};
use super::principals::{Kind, Principal};
use super::rights::Rights;
use crate::base::error::{Error, Result};
use crate::discover::ItemSink;
use xattr::{Nfs4Ace, PosixEntry, PosixTag, nfs4};

const ACCESS_ACL: &str = "system.posix_acl_access";
const DEFAULT_ACL: &str = "system.posix_acl_default";
const NFS4_ACL: &str = "system.nfs4_acl";

/// Walks `root` (depth first, names sorted), sending every path to `sink`.
pub async fn walk(root: &Path, limits: Limits, sink: &mut ItemSink, notes: &Notes) -> Result<()> {
    if !root.is_dir() {
        return Err(Error::config(format!(
            "the POSIX root {} is not a directory",
            root.display()
        )));
    }
    let mut stack = vec![("/".to_string(), 0usize)];
    let mut sender = Sender::new(notes, limits);
    while let Some((dir, depth)) = stack.pop() {
        let failure = if depth >= limits.max_depth {
            Some(Failure::new(
                Stage::Walk,
                format!(
                    "not listed: {depth} levels below the root (max_depth {})",
                    limits.max_depth
                ),
            ))
        } else {
            let at = local_path(root, &dir);
            match tokio::task::spawn_blocking(move || list_dir(&at)).await {
                Ok(Ok(children)) => {
                    let mut subdirs = Vec::new();
                    for (name, object_type, raw) in children {
                        let refused = match &raw {
                            None => refused_name(&name),
                            Some(_) => Some("a name that is not UTF-8"),
                        };
                        let path = match (refused, &raw) {
                            (Some(_), Some(raw)) => refused_key(&dir, raw),
                            (Some(_), None) => refused_key(&dir, name.as_bytes()),
                            (None, _) => child_path(&dir, &name),
                        };
                        let found = match refused {
                            Some(why) => Note::refused(why),
                            None if object_type == "directory" => {
                                subdirs.push((path, depth + 1));
                                continue;
                            }
                            None => Found::of(object_type, None).into(),
                        };
                        if !sender.send(sink, path, found).await? {
                            return Ok(());
                        }
                    }
                    // Popped in name order.
                    stack.extend(subdirs.into_iter().rev());
                    None
                }
                Ok(Err(e)) => Some(Failure::new(Stage::Walk, format!("cannot list: {e}"))),
                Err(e) => {
                    return Err(Error::config(format!(
                        "the POSIX walk's listing {}",
                        crate::base::panics::task_failure(e)
                    )));
                }
            }
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

/// A path inside the root on this machine.
pub fn local_path(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// A directory's entries, sorted by name, with their types (not following
/// links) and, for a name that is not UTF-8, its bytes (such a name is never
/// opened by a lossy version of it).
type Listing = Vec<(String, String, Option<Vec<u8>>)>;

fn list_dir(dir: &Path) -> std::io::Result<Listing> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let raw = entry.file_name();
        let name = raw.to_string_lossy().into_owned();
        let t = entry.file_type()?;
        let bytes = raw.to_str().is_none().then(|| raw.as_bytes().to_vec());
        out.push((name, type_name(&t).to_string(), bytes));
    }
    out.sort();
    Ok(out)
}

fn type_name(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "file"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else {
        "device"
    }
}

/// uid and gid names, looked up once each per run.
#[derive(Debug, Default)]
pub struct Names {
    users: Mutex<HashMap<u32, Option<String>>>,
    groups: Mutex<HashMap<u32, Option<String>>>,
}

impl Names {
    fn user(&self, uid: u32, kind: Kind) -> Principal {
        let name = cached(&self.users, uid, system::user_name);
        id_principal(uid, name, kind)
    }
    fn group(&self, gid: u32, kind: Kind) -> Principal {
        let name = cached(&self.groups, gid, system::group_name);
        id_principal(gid, name, kind)
    }
}

/// The name of an id: `Some(Some(name))`, `Some(None)` for an id the database
/// has no entry for (cached for the run), `None` when it could not say (not
/// cached: asked again next time; the principal is then neither resolved nor
/// orphaned).
fn cached(
    map: &Mutex<HashMap<u32, Option<String>>>,
    id: u32,
    look: fn(u32) -> std::io::Result<Option<String>>,
) -> Option<Option<String>> {
    if let Some(known) = map.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return Some(known.clone());
    }
    match look(id) {
        Ok(name) => {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, name.clone());
            Some(name)
        }
        Err(e) => {
            tracing::warn!(id, "the user or group database did not answer: {e}");
            None
        }
    }
}

fn id_principal(id: u32, name: Option<Option<String>>, kind: Kind) -> Principal {
    Principal {
        resolved: name.as_ref().map(Option::is_some),
        given: name.flatten().unwrap_or_else(|| id.to_string()),
        sid: None,
        id: Some(id),
        kind,
    }
}

fn role(name: &str, kind: Kind) -> Principal {
    Principal {
        given: name.to_string(),
        sid: None,
        id: None,
        kind,
        resolved: Some(true),
    }
}

/// One path's permissions.
pub fn collect(root: &Path, path: &str, names: &Names) -> std::result::Result<ObjectAcl, Failure> {
    let at = local_path(root, path);
    let meta = std::fs::symlink_metadata(&at).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "vanished after it was listed".to_string()
        } else {
            format!("cannot stat: {e}")
        };
        Failure::new(Stage::Attributes, why)
    })?;
    let mode = meta.mode() & 0o7777;
    let owner = names.user(meta.uid(), Kind::User);
    let group = names.group(meta.gid(), Kind::Group);
    let is_dir = meta.is_dir();
    let object_type = type_name(&meta.file_type()).to_string();
    let attr = |name: &str| -> std::result::Result<Option<Vec<u8>>, Failure> {
        if meta.file_type().is_symlink() {
            return Ok(None);
        }
        system::lgetxattr(&at, name)
            .map_err(|e| Failure::new(Stage::Attributes, format!("cannot read {name}: {e}")))
    };
    let decode_failure =
        |name: &str, e: String| Failure::new(Stage::Attributes, format!("{name}: {e}"));
    let entries = if meta.file_type().is_symlink() {
        // A symlink's own mode is always 0777 and means nothing: what it points
        // to is collected under its own path.
        Vec::new()
    } else if let Some(b) = attr(NFS4_ACL)? {
        let aces = xattr::nfs4_acl(&b).map_err(|e| decode_failure(NFS4_ACL, e))?;
        aces.iter().map(|a| nfs4_entry(a, names)).collect()
    } else {
        let mut entries = match attr(ACCESS_ACL)? {
            Some(b) => {
                let acl = xattr::posix_acl(&b).map_err(|e| decode_failure(ACCESS_ACL, e))?;
                acl.iter()
                    .map(|e| posix_entry(e, &owner, &group, names, ApplyTo::THIS))
                    .collect()
            }
            None => mode_entries(mode, &owner, &group),
        };
        if is_dir && let Some(b) = attr(DEFAULT_ACL)? {
            let acl = xattr::posix_acl(&b).map_err(|e| decode_failure(DEFAULT_ACL, e))?;
            let inheritable = ApplyTo {
                this_folder: false,
                sub_folders: true,
                files: true,
            };
            entries.extend(
                acl.iter()
                    .map(|e| posix_entry(e, &owner, &group, names, inheritable)),
            );
        }
        entries
    };
    Ok(ObjectAcl {
        path: path.to_string(),
        object_type,
        owner: Some(owner),
        group: Some(group),
        security_style: Some("unix".into()),
        effective_style: Some("unix".into()),
        control_flags: None,
        mode: Some(mode),
        entries,
    })
}

fn posix_entry(
    e: &PosixEntry,
    owner: &Principal,
    group: &Principal,
    names: &Names,
    apply_to: ApplyTo,
) -> Ace {
    let principal = match (e.tag, e.id) {
        (PosixTag::UserObj, _) => Principal {
            kind: Kind::Owner,
            ..owner.clone()
        },
        (PosixTag::GroupObj, _) => Principal {
            kind: Kind::OwningGroup,
            ..group.clone()
        },
        (PosixTag::User, Some(id)) => names.user(id, Kind::User),
        (PosixTag::Group, Some(id)) => names.group(id, Kind::Group),
        (PosixTag::Mask, _) => role("mask", Kind::Mask),
        (PosixTag::Other, _) => role("other", Kind::Everyone),
        (PosixTag::User | PosixTag::Group, None) => role("unknown", Kind::Unknown),
    };
    Ace {
        principal,
        entry_type: EntryType::Allow,
        rights: Rights::posix(u32::from(e.perm)),
        apply_to,
        inherited: false,
    }
}

fn nfs4_entry(a: &Nfs4Ace, names: &Names) -> Ace {
    let group_flag = a.flags & nfs4::IDENTIFIER_GROUP != 0;
    let principal = match a.who.as_str() {
        "OWNER@" => role("OWNER@", Kind::Owner),
        "GROUP@" => role("GROUP@", Kind::OwningGroup),
        "EVERYONE@" => role("EVERYONE@", Kind::Everyone),
        who => match who.parse::<u32>() {
            Ok(id) if group_flag => names.group(id, Kind::Group),
            Ok(id) => names.user(id, Kind::User),
            Err(_) => role(who, if group_flag { Kind::Group } else { Kind::User }),
        },
    };
    let entry_type = match a.ace_type {
        nfs4::ALLOW => EntryType::Allow,
        nfs4::DENY => EntryType::Deny,
        nfs4::AUDIT if a.flags & nfs4::SUCCESSFUL_ACCESS != 0 => EntryType::AuditSuccess,
        nfs4::AUDIT if a.flags & nfs4::FAILED_ACCESS != 0 => EntryType::AuditFailure,
        nfs4::AUDIT => EntryType::Audit,
        nfs4::ALARM => EntryType::Alarm,
        other => EntryType::Other(format!("type_{other}")),
    };
    Ace {
        principal,
        entry_type,
        rights: Rights::from_mask(a.mask),
        apply_to: ApplyTo {
            this_folder: a.flags & nfs4::INHERIT_ONLY == 0,
            sub_folders: a.flags & nfs4::DIRECTORY_INHERIT != 0,
            files: a.flags & nfs4::FILE_INHERIT != 0,
        },
        inherited: a.flags & nfs4::INHERITED != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfs4_entries_map_types_flags_and_principals() {
        let names = Names::default();
        let ace = |t, f, m, who: &str| Nfs4Ace {
            ace_type: t,
            flags: f,
            mask: m,
            who: who.into(),
        };
        let e = nfs4_entry(&ace(nfs4::ALLOW, 0, 0x1F01FF, "EVERYONE@"), &names);
        assert_eq!(e.principal.kind, Kind::Everyone);
        assert_eq!(e.rights.basic(), "full_control");
        assert_eq!(e.apply_to, ApplyTo::THIS);
        let e = nfs4_entry(
            &ace(
                nfs4::DENY,
                nfs4::IDENTIFIER_GROUP
                    | nfs4::FILE_INHERIT
                    | nfs4::DIRECTORY_INHERIT
                    | nfs4::INHERIT_ONLY
                    | nfs4::INHERITED,
                0x2,
                "staff@example.com",
            ),
            &names,
        );
        assert_eq!(e.entry_type, EntryType::Deny);
        assert_eq!(e.principal.kind, Kind::Group);
        assert_eq!(e.apply_to.names(), ["sub_folders", "files"]);
        assert!(e.inherited);
        let e = nfs4_entry(&ace(nfs4::AUDIT, nfs4::FAILED_ACCESS, 1, "0"), &names);
        assert_eq!(e.entry_type, EntryType::AuditFailure);
        assert_eq!(
            (e.principal.given.as_str(), e.principal.id),
            ("root", Some(0))
        );
    }

    #[test]
    fn a_path_gone_after_the_walk_is_a_reject_that_says_so() {
        let root = std::env::temp_dir();
        let f = collect(&root, "/naslake-no-such-path-4f1d", &Names::default()).unwrap_err();
        assert_eq!(f.stage, Stage::Attributes);
        assert!(f.reason.contains("vanished"), "{}", f.reason);
    }

    #[test]
    fn a_mode_is_three_entries() {
        let owner = id_principal(0, Some(Some("root".into())), Kind::User);
        let group = id_principal(4_000_000_000, Some(None), Kind::Group);
        let e = mode_entries(0o4751, &owner, &group);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].principal.kind, e[0].rights.basic()),
            (Kind::Owner, "modify")
        );
        assert_eq!(e[1].principal.given, "4000000000");
        assert_eq!(e[1].principal.resolved, Some(false));
        let unknown = id_principal(7, None, Kind::User);
        assert_eq!((unknown.given.as_str(), unknown.resolved), ("7", None));
        assert_eq!(e[1].rights.basic(), "read_and_execute");
        assert_eq!(
            (e[2].principal.kind, e[2].rights.basic()),
            (Kind::Everyone, "special")
        );
    }
}
