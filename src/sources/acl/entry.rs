//! What one object's permissions are, whichever collector read them: the object
//! (owner, group, styles, control flags, mode) and its entries. `rows.rs` turns
//! these into `acl_entries` rows; the collectors (`ontap/`, `posix/`) only fill them.

use super::principals::{Kind, Principal};
use super::rights::Rights;

/// Whether `path` is the folder `dir` or inside it (`dir` with or without a
/// trailing `/`; an empty `dir` is the root, which holds every path).
pub fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Where the permissions came from (`acl_entries.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Ontap,
    Posix,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Ontap => "ontap",
            Origin::Posix => "posix",
        }
    }
}

/// One file or directory with its permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectAcl {
    pub path: String,
    pub object_type: String,
    pub owner: Option<Principal>,
    pub group: Option<Principal>,
    pub security_style: Option<String>,
    pub effective_style: Option<String>,
    pub control_flags: Option<u32>,
    /// UNIX mode bits, with setuid/setgid/sticky (0o7777).
    pub mode: Option<u32>,
    pub entries: Vec<Ace>,
}

/// NTFS security descriptor control flags (MS-DTYP 2.4.6).
pub mod control {
    /// SE_DACL_PRESENT: without it an NTFS object has a null DACL (everyone: full).
    pub const DACL_PRESENT: u32 = 0x0004;
    /// SE_DACL_PROTECTED: inheritance from the parent is broken.
    pub const DACL_PROTECTED: u32 = 0x1000;
}

impl ObjectAcl {
    pub fn dacl_present(&self) -> Option<bool> {
        self.control_flags.map(|f| f & control::DACL_PRESENT != 0)
    }
    pub fn dacl_protected(&self) -> Option<bool> {
        self.control_flags.map(|f| f & control::DACL_PROTECTED != 0)
    }
}

/// What kind of entry it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryType {
    Allow,
    Deny,
    AuditSuccess,
    AuditFailure,
    /// NFSv4 AUDIT without a success or failure flag.
    Audit,
    Alarm,
    /// A type this version does not know, as the filer named it.
    Other(String),
}

impl EntryType {
    pub fn as_str(&self) -> &str {
        match self {
            EntryType::Allow => "allow",
            EntryType::Deny => "deny",
            EntryType::AuditSuccess => "audit_success",
            EntryType::AuditFailure => "audit_failure",
            EntryType::Audit => "audit",
            EntryType::Alarm => "alarm",
            EntryType::Other(s) => s,
        }
    }

    /// ONTAP's `access` value (`access_allow`, `access_deny`, `audit_success`, …).
    pub fn from_ontap(access: &str) -> Self {
        match access.to_ascii_lowercase().as_str() {
            "access_allow" | "allow" | "access_allowed" => EntryType::Allow,
            "access_deny" | "deny" | "access_denied" => EntryType::Deny,
            "audit_success" => EntryType::AuditSuccess,
            "audit_failure" => EntryType::AuditFailure,
            other => EntryType::Other(other.to_string()),
        }
    }
}

/// Where an entry applies (`apply_to`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyTo {
    pub this_folder: bool,
    pub sub_folders: bool,
    pub files: bool,
}

impl ApplyTo {
    pub const THIS: ApplyTo = ApplyTo {
        this_folder: true,
        sub_folders: false,
        files: false,
    };

    pub fn names(&self) -> Vec<String> {
        [
            (self.this_folder, "this_folder"),
            (self.sub_folders, "sub_folders"),
            (self.files, "files"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .collect()
    }
}

/// One access control entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Ace {
    pub principal: Principal,
    pub entry_type: EntryType,
    pub rights: Rights,
    pub apply_to: ApplyTo,
    pub inherited: bool,
}

/// The three entries a UNIX mode is (owner, owning group, other), as `getfacl`
/// shows an object without an ACL: for POSIX objects and ONTAP's unix-style ones.
pub fn mode_entries(mode: u32, owner: &Principal, group: &Principal) -> Vec<Ace> {
    let entry = |principal: Principal, perm: u32| Ace {
        principal,
        entry_type: EntryType::Allow,
        rights: Rights::posix(perm),
        apply_to: ApplyTo::THIS,
        inherited: false,
    };
    let other = Principal {
        given: "other".into(),
        sid: None,
        id: None,
        kind: Kind::Everyone,
        resolved: Some(true),
    };
    vec![
        entry(
            Principal {
                kind: Kind::Owner,
                ..owner.clone()
            },
            (mode >> 6) & 7,
        ),
        entry(
            Principal {
                kind: Kind::OwningGroup,
                ..group.clone()
            },
            (mode >> 3) & 7,
        ),
        entry(other, mode & 7),
    ]
}

/// The mode as `ls -l` shows it, without the type letter: `rwxr-sr-t`.
pub fn mode_text(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    let triads = [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')];
    for (shift, special, letter) in triads {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (mode & special != 0, x) {
            (true, true) => letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_text_is_what_ls_shows() {
        assert_eq!(mode_text(0o755), "rwxr-xr-x");
        assert_eq!(mode_text(0o4755), "rwsr-xr-x");
        assert_eq!(mode_text(0o2640), "rw-r-S---");
        assert_eq!(mode_text(0o1777), "rwxrwxrwt");
        assert_eq!(mode_text(0o1776), "rwxrwxrwT");
        assert_eq!(mode_text(0), "---------");
    }

    #[test]
    fn control_flags_say_present_and_protected() {
        let mut o = ObjectAcl {
            path: "/".into(),
            object_type: "directory".into(),
            owner: None,
            group: None,
            security_style: None,
            effective_style: None,
            control_flags: Some(0x9014),
            mode: None,
            entries: vec![],
        };
        assert_eq!(o.dacl_present(), Some(true));
        assert_eq!(o.dacl_protected(), Some(true));
        o.control_flags = Some(0x8000);
        assert_eq!(o.dacl_present(), Some(false));
        assert_eq!(o.dacl_protected(), Some(false));
        o.control_flags = None;
        assert_eq!(o.dacl_present(), None);
    }
}
