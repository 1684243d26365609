//! Who an entry is for. The filer gives a name (`DOMAIN\user`, `Everyone`) or,
//! when it could not resolve one, a bare SID; POSIX gives ids. This file knows
//! the well-known SIDs (MS-DTYP 2.4.2.4) so a rule can match a principal by SID
//! whether the filer named it or not, and says whether it is a user or a group as
//! far as that can be told without asking the directory: well-known groups,
//! domain groups by RID or name, and the names the spec's `group_names` patterns
//! match are groups; any other name is a user; a bare SID is `unknown`.

/// What kind of principal (`acl_entries.principal_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    /// The object's owner entry (POSIX user_obj, NFSv4 OWNER@).
    Owner,
    /// The owning group's entry (POSIX group_obj, NFSv4 GROUP@).
    OwningGroup,
    /// Everyone (S-1-1-0, NFSv4 EVERYONE@, POSIX other).
    Everyone,
    /// The POSIX ACL mask.
    Mask,
    /// CREATOR OWNER, SYSTEM, OWNER RIGHTS, …: accounts that stand for a role.
    Special,
    /// A bare SID: neither its name nor its kind is known.
    Unknown,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Owner => "owner",
            Kind::OwningGroup => "owning_group",
            Kind::Everyone => "everyone",
            Kind::Mask => "mask",
            Kind::Special => "special",
            Kind::Unknown => "unknown",
        }
    }
}

/// A principal as given, with what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// As the filer gave it (name or SID), or the POSIX name (or the id when it
    /// has no name).
    pub given: String,
    pub sid: Option<String>,
    pub id: Option<u32>,
    pub kind: Kind,
    /// False for a bare SID or id that no name was found for; `None` when naslake
    /// cannot tell (names were not looked up, or the user database did not answer).
    pub resolved: Option<bool>,
}

/// Well-known SIDs: (SID, names it goes by, kind). Names compare without case and
/// with or without their authority (`BUILTIN\Users`, `Users` is not matched alone
/// because a domain may have its own `Users`).
const WELL_KNOWN: &[(&str, &[&str], Kind)] = &[
    ("S-1-1-0", &["everyone", "\\everyone"], Kind::Everyone),
    (
        "S-1-5-7",
        &["nt authority\\anonymous logon", "anonymous logon"],
        Kind::Group,
    ),
    (
        "S-1-5-11",
        &["nt authority\\authenticated users", "authenticated users"],
        Kind::Group,
    ),
    ("S-1-5-32-544", &["builtin\\administrators"], Kind::Group),
    ("S-1-5-32-545", &["builtin\\users"], Kind::Group),
    ("S-1-5-32-546", &["builtin\\guests"], Kind::Group),
    ("S-1-5-32-547", &["builtin\\power users"], Kind::Group),
    ("S-1-5-32-551", &["builtin\\backup operators"], Kind::Group),
    ("S-1-5-4", &["nt authority\\interactive"], Kind::Group),
    ("S-1-5-2", &["nt authority\\network"], Kind::Group),
    (
        "S-1-5-18",
        &["nt authority\\system", "system"],
        Kind::Special,
    ),
    ("S-1-3-0", &["creator owner"], Kind::Special),
    ("S-1-3-1", &["creator group"], Kind::Special),
    ("S-1-3-4", &["owner rights"], Kind::Special),
];

/// Groups every domain has, by RID and by name (after `DOMAIN\`), as the filer
/// names them (compared without case).
pub const DOMAIN_GROUPS: &[(u32, &str)] = &[
    (512, "Domain Admins"),
    (513, "Domain Users"),
    (514, "Domain Guests"),
    (515, "Domain Computers"),
    (516, "Domain Controllers"),
    (517, "Cert Publishers"),
    (518, "Schema Admins"),
    (519, "Enterprise Admins"),
    (520, "Group Policy Creator Owners"),
];

/// Whether `s` is a SID in its string form (`S-1-` and numbers).
pub fn is_sid(s: &str) -> bool {
    let mut parts = s.split('-');
    matches!(parts.next(), Some(p) if p.eq_ignore_ascii_case("s")) && parts.next() == Some("1") && {
        let rest: Vec<&str> = parts.collect();
        !rest.is_empty()
            && rest
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// The RID of a domain SID (`S-1-5-21-a-b-c-RID`).
fn domain_rid(sid: &str) -> Option<u32> {
    let parts: Vec<&str> = sid.split('-').collect();
    if parts.len() == 8 && parts[2] == "5" && parts[3] == "21" {
        parts[7].parse().ok()
    } else {
        None
    }
}

/// Classifies NTFS principals (names and SIDs as ONTAP gives them).
#[derive(Debug, Clone, Default)]
pub struct NtfsNames {
    /// Names matched as groups (the spec's `group_names`, glob patterns without case).
    groups: Vec<glob::Pattern>,
    /// ONTAP was asked to translate SIDs (`lookup_names`): a bare SID is then one it
    /// could not translate, an orphan; otherwise bare SIDs say nothing.
    looked_up: bool,
}

impl NtfsNames {
    pub fn new(group_names: &[String], looked_up: bool) -> Result<Self, String> {
        let groups = group_names
            .iter()
            .map(|p| {
                glob::Pattern::new(&p.to_lowercase())
                    .map_err(|e| format!("`group_names`: `{p}`: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(NtfsNames { groups, looked_up })
    }

    /// What a bare SID or id says of its principal: unresolved (an orphan) when
    /// ONTAP was asked to name it, nothing otherwise.
    pub fn unnamed(&self) -> Option<bool> {
        self.looked_up.then_some(false)
    }

    /// A principal as ONTAP named it.
    pub fn principal(&self, given: &str) -> Principal {
        let given = given.trim();
        if is_sid(given) {
            let sid = given.to_ascii_uppercase();
            let unnamed = self.unnamed();
            let (kind, resolved) = match WELL_KNOWN.iter().find(|(s, _, _)| *s == sid) {
                Some((_, _, kind)) => (*kind, Some(true)),
                None => match domain_rid(&sid) {
                    Some(rid) if DOMAIN_GROUPS.iter().any(|(r, _)| *r == rid) => {
                        (Kind::Group, unnamed)
                    }
                    _ => (Kind::Unknown, unnamed),
                },
            };
            return Principal {
                given: given.to_string(),
                sid: Some(sid),
                id: None,
                kind,
                resolved,
            };
        }
        let lower = given.to_lowercase();
        if let Some((sid, _, kind)) = WELL_KNOWN
            .iter()
            .find(|(_, names, _)| names.contains(&lower.as_str()))
        {
            return Principal {
                given: given.to_string(),
                sid: Some(sid.to_string()),
                id: None,
                kind: *kind,
                resolved: Some(true),
            };
        }
        let account = lower.rsplit('\\').next().unwrap_or(&lower);
        let group = (lower.contains('\\')
            && DOMAIN_GROUPS
                .iter()
                .any(|(_, n)| n.eq_ignore_ascii_case(account)))
            || self.groups.iter().any(|p| p.matches(&lower));
        Principal {
            given: given.to_string(),
            sid: None,
            id: None,
            kind: if group { Kind::Group } else { Kind::User },
            resolved: Some(!given.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_recognised_strictly() {
        assert!(is_sid("S-1-1-0"));
        assert!(is_sid("S-1-5-21-1004336348-1177238915-682003330-513"));
        assert!(!is_sid("S-1-"));
        assert!(!is_sid("S-1-5-x"));
        assert!(!is_sid("CORP\\S-1-5"));
        assert!(!is_sid("S-2-5-7"));
    }

    #[test]
    fn names_and_sids_of_well_known_principals() {
        let n = NtfsNames::new(&["corp\\*-team".into()], true).unwrap();
        let everyone = n.principal("Everyone");
        assert_eq!(everyone.sid.as_deref(), Some("S-1-1-0"));
        assert_eq!(everyone.kind, Kind::Everyone);
        assert_eq!(n.principal("s-1-1-0").kind, Kind::Everyone);
        let users = n.principal("BUILTIN\\Users");
        assert_eq!(users.sid.as_deref(), Some("S-1-5-32-545"));
        assert_eq!(users.kind, Kind::Group);
        assert_eq!(n.principal("CORP\\Domain Users").kind, Kind::Group);
        assert_eq!(n.principal("CORP\\Finance-Team").kind, Kind::Group);
        let alice = n.principal("CORP\\alice");
        assert_eq!((alice.kind, alice.resolved), (Kind::User, Some(true)));
        let orphan = n.principal("S-1-5-21-1-2-3-1104");
        assert_eq!((orphan.kind, orphan.resolved), (Kind::Unknown, Some(false)));
        let unasked = NtfsNames::new(&[], false).unwrap();
        assert_eq!(unasked.principal("S-1-5-21-1-2-3-1104").resolved, None);
        let domain_users = n.principal("S-1-5-21-1-2-3-513");
        assert_eq!(domain_users.kind, Kind::Group);
        assert_eq!(n.principal("NT AUTHORITY\\SYSTEM").kind, Kind::Special);
    }
}
