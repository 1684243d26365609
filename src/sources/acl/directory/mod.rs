//! Who is who: the users and groups of the directory (an LDIF export, `ldif.rs`),
//! the SVM's local groups and UNIX groups, and each user's token — every group
//! they are in, directly or through other groups, with the shortest way there.
//!
//! Building is pure: the collectors hand over records and lists, and
//! [`Builder::finish`] resolves members, cuts cycles and computes the tokens.
//! The rules (README, "Who can reach what"):
//! - A user's token holds every group reachable over `member` / `memberOf`
//!   edges, the group its `primaryGroupID` names, the SVM's local groups that
//!   hold any of them, Everyone and Authenticated Users; each group once, at its
//!   shortest depth.
//! - A member that nothing describes is kept as an `unresolved` identity and
//!   counted, never dropped.
//! - A group that is, through its members, a member of itself is marked
//!   `in_cycle`; the walk visits every group once, so cycles cost nothing.

pub mod ldap;
pub mod ldif;
pub mod sid;

use std::collections::{HashMap, VecDeque};

use super::principals::DOMAIN_GROUPS;

/// What an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    User,
    Group,
    Computer,
    /// Named as a member (or a foreign security principal) but not described.
    Unresolved,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::User => "user",
            IdentityKind::Group => "group",
            IdentityKind::Computer => "computer",
            IdentityKind::Unresolved => "unresolved",
        }
    }
}

/// Where an identity is described (`acl_principals.origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Described {
    Directory,
    LocalGroup,
    UnixGroup,
    /// Only named as a member of something.
    Member,
    /// Everyone and Authenticated Users, which every token holds.
    WellKnown,
}

impl Described {
    pub fn as_str(self) -> &'static str {
        match self {
            Described::Directory => "directory",
            Described::LocalGroup => "local_group",
            Described::UnixGroup => "unix_group",
            Described::Member => "member",
            Described::WellKnown => "well_known",
        }
    }
}

/// One user, group or unresolved member.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `DOMAIN\sAMAccountName`, a local group's or UNIX group's name, or what a
    /// member was named by (its DN) when nothing describes it.
    pub name: String,
    pub sid: Option<String>,
    pub kind: IdentityKind,
    pub described: Described,
    pub dn: Option<String>,
    pub disabled: Option<bool>,
    /// `lastLogonTimestamp` as microseconds since the Unix epoch.
    pub last_logon_micros: Option<i64>,
    pub in_cycle: bool,
    /// A Windows account, whose token holds Everyone and Authenticated Users
    /// (not a UNIX user named by a UNIX group).
    windows: bool,
}

impl Identity {
    /// An identity with nothing known of it but its name, kind and origin
    /// (a Windows account, unless it is made otherwise).
    fn named(name: impl Into<String>, kind: IdentityKind, described: Described) -> Self {
        Identity {
            name: name.into(),
            sid: None,
            kind,
            described,
            dn: None,
            disabled: None,
            last_logon_micros: None,
            in_cycle: false,
            windows: true,
        }
    }
}

/// A group in a user's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub group: u32,
    /// 1 for a group the user is a member of.
    pub depth: u16,
    /// The group before this one on the shortest way (`NONE` at depth 1).
    pub through: u32,
}

/// No identity (a chain's start).
pub const NONE: u32 = u32::MAX;

/// Everything that went wrong in the input without stopping the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// Members (DNs, names, SIDs) that nothing describes.
    pub unresolved_members: u64,
    /// `objectSid` values that do not decode (the identity is kept without one).
    pub bad_sids: u64,
    /// `userAccountControl` or `lastLogonTimestamp` values that are no number.
    pub bad_numbers: u64,
    /// Groups that are members of themselves through others (strongly connected
    /// sets of groups).
    pub cycles: u64,
}

/// The directory, resolved: identities, and each user's token.
#[derive(Debug, Default)]
pub struct Directory {
    pub identities: Vec<Identity>,
    by_sid: HashMap<String, u32>,
    by_name: HashMap<String, u32>,
    /// Each user's token, sorted by group (empty for anything but a user).
    tokens: Vec<Vec<Held>>,
    /// For each group, the users whose token holds it.
    holders: Vec<Vec<u32>>,
    pub problems: Problems,
    /// The NetBIOS domain the names carry.
    pub domain: String,
    /// Everyone and Authenticated Users (the builder adds them first).
    implicit: [u32; 2],
}

impl Directory {
    /// The identity with this SID or, failing that, this name (without case).
    pub fn find(&self, sid: Option<&str>, name: Option<&str>) -> Option<u32> {
        sid.and_then(|s| self.by_sid.get(&s.to_ascii_uppercase()))
            .or_else(|| name.and_then(|n| self.by_name.get(&n.trim().to_lowercase())))
            .copied()
    }

    pub fn get(&self, id: u32) -> &Identity {
        &self.identities[id as usize]
    }

    /// The users, in order: the ones effective access is computed for.
    pub fn users(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.identities.len() as u32).filter(|i| self.is_windows_user(*i))
    }

    /// A Windows user: one effective access is computed for.
    pub fn is_windows_user(&self, id: u32) -> bool {
        let i = self.get(id);
        i.kind == IdentityKind::User && i.windows
    }

    /// The groups in `user`'s token (empty for anything but a user).
    pub fn token(&self, user: u32) -> &[Held] {
        self.tokens.get(user as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether `user`'s token holds `who` (the user itself included).
    pub fn holds(&self, user: u32, who: u32) -> Option<&Held> {
        static SELF: Held = Held {
            group: NONE,
            depth: 0,
            through: NONE,
        };
        if user == who {
            return Some(&SELF);
        }
        let token = self.token(user);
        token
            .binary_search_by_key(&who, |h| h.group)
            .ok()
            .map(|i| &token[i])
    }

    /// The users whose token holds `who` (a user: itself).
    pub fn holders(&self, who: u32) -> &[u32] {
        self.holders.get(who as usize).map_or(&[], Vec::as_slice)
    }

    /// The groups from `user`'s direct group to `group`, named.
    pub fn chain(&self, user: u32, group: u32) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = self.holds(user, group).copied();
        while let Some(h) = at.filter(|h| h.group != NONE) {
            out.push(self.get(h.group).name.clone());
            at = (h.through != NONE)
                .then(|| self.holds(user, h.through).copied())
                .flatten();
            if out.len() > u16::MAX as usize {
                break; // defensive: `through` always points one step nearer
            }
        }
        out.reverse();
        out
    }

    /// Everyone, whose holders are every Windows user.
    pub fn everyone(&self) -> u32 {
        self.implicit[0]
    }

    /// Whether `id` is in every Windows user's token (Everyone, Authenticated
    /// Users): what a user the directory does not know holds.
    pub fn everyone_holds(&self, id: u32) -> bool {
        self.implicit.contains(&id)
    }
}

const EVERYONE: (&str, &str) = ("S-1-1-0", "Everyone");
const AUTHENTICATED: (&str, &str) = ("S-1-5-11", "NT AUTHORITY\\Authenticated Users");

/// A local group of the SVM, as ONTAP lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGroup {
    pub name: String,
    pub sid: Option<String>,
    /// Members by name (`CORP\Domain Admins`) or SID.
    pub members: Vec<String>,
}

/// A UNIX group of the SVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixGroup {
    pub name: String,
    pub users: Vec<String>,
}

/// Gathers identities and edges; [`Builder::finish`] resolves them.
#[derive(Debug)]
pub struct Builder {
    dir: Directory,
    /// Normalised DN → identity.
    by_dn: HashMap<String, u32>,
    /// (member, group) by DN, resolved at the end.
    dn_edges: Vec<(DnRef, DnRef)>,
    /// (member, group) between known identities.
    edges: Vec<(u32, u32)>,
    /// (user, primary group RID).
    primary: Vec<(u32, u32)>,
    /// The domain named in the options, if any.
    domain: Option<String>,
    /// Everyone and Authenticated Users.
    implicit: [u32; 2],
    /// UNIX users by name.
    unix_users: HashMap<String, u32>,
    /// Normalised DNs of the mail contacts skipped: members, but no principals.
    contacts: std::collections::HashSet<String>,
}

/// One end of an edge named by DN.
#[derive(Debug, Clone)]
enum DnRef {
    Known(u32),
    Dn(String),
}

/// A DN compared as the directory compares it, nearly: without case, and
/// without spaces around separators.
fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// The first `DC=` component of a DN, upper-cased.
fn first_dc(dn: &str) -> Option<String> {
    dn.split(',').find_map(|rdn| {
        let (k, v) = rdn.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("dc")
            .then(|| v.trim().to_uppercase())
    })
}

/// The value of a DN's first component (`CN=alice,…` → `alice`).
fn first_rdn_value(dn: &str) -> &str {
    dn.split(',')
        .next()
        .and_then(|rdn| rdn.split_once('=').map(|(_, v)| v.trim()))
        .unwrap_or(dn)
}

const ACCOUNT_DISABLE: i64 = 0x2;
/// 100-ns intervals from 1601-01-01 to 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

impl Builder {
    /// `domain`: the NetBIOS domain of the names (`identity_domain`); when
    /// `None`, the first `DC=` component of the export.
    pub fn new(domain: Option<String>) -> Self {
        let mut b = Builder {
            dir: Directory::default(),
            by_dn: HashMap::new(),
            dn_edges: Vec::new(),
            edges: Vec::new(),
            primary: Vec::new(),
            domain,
            implicit: [0, 1],
            unix_users: HashMap::new(),
            contacts: std::collections::HashSet::new(),
        };
        for (k, (sid, name)) in [EVERYONE, AUTHENTICATED].into_iter().enumerate() {
            b.implicit[k] = b.add(Identity {
                sid: Some(sid.into()),
                ..Identity::named(name, IdentityKind::Group, Described::WellKnown)
            });
        }
        b
    }

    fn add(&mut self, identity: Identity) -> u32 {
        let id = self.dir.identities.len() as u32;
        if let Some(s) = &identity.sid {
            self.dir.by_sid.entry(s.to_ascii_uppercase()).or_insert(id);
        }
        self.dir
            .by_name
            .entry(identity.name.to_lowercase())
            .or_insert(id);
        if let Some(dn) = &identity.dn {
            self.by_dn.entry(normal_dn(dn)).or_insert(id);
        }
        self.dir.identities.push(identity);
        id
    }

    /// The domain the names carry when the options name none and the directory
    /// gives one (over LDAP, the domain's NetBIOS name); before any record.
    pub fn default_domain(&mut self, domain: Option<String>) {
        if self.domain.is_none() {
            self.domain = domain;
        }
    }

    /// The domain the names carry, fixed by the first record that has a `DC=`.
    fn domain_for(&mut self, dn: &str) -> String {
        if self.domain.is_none() {
            self.domain = first_dc(dn);
        }
        self.domain.clone().unwrap_or_default()
    }

    /// One record of the export. Entries that are no user, group, computer or
    /// foreign security principal (containers, the domain) are not identities.
    pub fn ldif_record(&mut self, r: &ldif::Record) {
        let classes: Vec<String> = r
            .values("objectclass")
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
            .collect();
        let has = |names: &[&str]| classes.iter().any(|c| names.contains(&c.as_str()));
        // A mail contact is a person with no account: nobody signs in as it, and
        // a group that lists it gains no member by it.
        if has(&["contact"]) {
            self.contacts.insert(normal_dn(&r.dn));
            return;
        }
        let kind = if has(&["group", "groupofnames", "groupofuniquenames", "posixgroup"]) {
            IdentityKind::Group
        } else if has(&["computer"]) {
            IdentityKind::Computer
        } else if has(&[
            "user",
            "person",
            "inetorgperson",
            "organizationalperson",
            "posixaccount",
        ]) {
            IdentityKind::User
        } else if has(&["foreignsecurityprincipal"]) {
            IdentityKind::Unresolved
        } else {
            return;
        };
        let sid = r.values("objectsid").next().and_then(|v| {
            let decoded = sid::from_bytes(v)
                .ok()
                .or_else(|| std::str::from_utf8(v).ok().and_then(sid::parse_text));
            if decoded.is_none() {
                self.dir.problems.bad_sids += 1;
                tracing::warn!(
                    line = r.line,
                    "an objectSid that does not decode: the identity is kept without a SID"
                );
            }
            decoded
        });
        // A foreign security principal for a SID already known (S-1-5-11,
        // Authenticated Users, which domain-local groups hold) is that identity:
        // its DN leads there.
        if kind == IdentityKind::Unresolved
            && let Some(existing) = sid.as_deref().and_then(|s| self.dir.find(Some(s), None))
        {
            self.by_dn.entry(normal_dn(&r.dn)).or_insert(existing);
            return;
        }
        let account = ["samaccountname", "uid", "cn"]
            .iter()
            .find_map(|a| r.text(a))
            .unwrap_or_else(|| first_rdn_value(&r.dn))
            .to_string();
        let domain = self.domain_for(&r.dn);
        let name = if kind == IdentityKind::Unresolved {
            account
        } else {
            format!("{domain}\\{account}")
        };
        let mut number = |attr: &str| -> Option<i64> {
            let text = r.text(attr)?;
            match text.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.dir.problems.bad_numbers += 1;
                    None
                }
            }
        };
        let disabled = number("useraccountcontrol").map(|uac| uac & ACCOUNT_DISABLE != 0);
        let last_logon_micros = number("lastlogontimestamp")
            .filter(|ft| *ft > 0 && *ft < i64::MAX)
            .map(|ft| (ft - FILETIME_UNIX_EPOCH) / 10);
        let primary = number("primarygroupid");
        let id = self.add(Identity {
            name,
            sid,
            kind,
            described: Described::Directory,
            dn: Some(r.dn.clone()),
            disabled,
            last_logon_micros,
            in_cycle: false,
            windows: true,
        });
        if let Some(rid) = primary.and_then(|p| u32::try_from(p).ok()) {
            self.primary.push((id, rid));
        }
        for m in r.values("member").chain(r.values("uniquemember")) {
            let m = String::from_utf8_lossy(m).into_owned();
            self.dn_edges.push((DnRef::Dn(m), DnRef::Known(id)));
        }
        for g in r.values("memberof") {
            let g = String::from_utf8_lossy(g).into_owned();
            self.dn_edges.push((DnRef::Known(id), DnRef::Dn(g)));
        }
    }

    /// An identity named by `given` (a name or SID), or a new unresolved one.
    fn named(&mut self, given: &str) -> u32 {
        let as_sid = sid::parse_text(given);
        if let Some(id) = self.dir.find(as_sid.as_deref(), Some(given)) {
            return id;
        }
        self.dir.problems.unresolved_members += 1;
        self.add(Identity {
            sid: as_sid,
            ..Identity::named(
                given.trim().to_string(),
                IdentityKind::Unresolved,
                Described::Member,
            )
        })
    }

    /// Resolves the DN edges (before local groups, which name members by name).
    fn resolve_dns(&mut self) {
        for (member, group) in std::mem::take(&mut self.dn_edges) {
            let contact =
                |r: &DnRef| matches!(r, DnRef::Dn(dn) if self.contacts.contains(&normal_dn(dn)));
            if contact(&member) || contact(&group) {
                continue;
            }
            let end = |r: DnRef, b: &mut Builder| match r {
                DnRef::Known(id) => id,
                DnRef::Dn(dn) => match b.by_dn.get(&normal_dn(&dn)) {
                    Some(id) => *id,
                    None => {
                        b.dir.problems.unresolved_members += 1;
                        b.add(Identity {
                            dn: Some(dn.clone()),
                            ..Identity::named(dn, IdentityKind::Unresolved, Described::Member)
                        })
                    }
                },
            };
            let m = end(member, self);
            let g = end(group, self);
            self.edges.push((m, g));
        }
        for (user, rid) in std::mem::take(&mut self.primary) {
            let Some(group_sid) = self.dir.identities[user as usize]
                .sid
                .as_deref()
                .and_then(|s| sid::sibling(s, rid))
            else {
                continue;
            };
            let g = match self.dir.find(Some(&group_sid), None) {
                Some(g) => g,
                None => self.missing_primary_group(group_sid, rid),
            };
            self.edges.push((user, g));
        }
    }

    /// A primary group the export does not describe (one filtered to an OU):
    /// a domain's own group (Domain Users, RID 513) by the name the filer gives
    /// it, so entries that name it still match; another by its SID.
    fn missing_primary_group(&mut self, sid: String, rid: u32) -> u32 {
        let name = match DOMAIN_GROUPS.iter().find(|(r, _)| *r == rid) {
            Some((_, group)) => format!("{}\\{group}", self.domain.clone().unwrap_or_default()),
            None => sid.clone(),
        };
        self.dir.problems.unresolved_members += 1;
        self.add(Identity {
            sid: Some(sid),
            ..Identity::named(name, IdentityKind::Group, Described::Member)
        })
    }

    /// The SVM's local groups. One with a SID the directory has (the domain's
    /// own `BUILTIN\Administrators`) is the SVM's group on the SVM: its members
    /// are the SVM's.
    pub fn local_groups(&mut self, groups: &[LocalGroup]) {
        self.resolve_dns();
        for g in groups {
            let existing = self.dir.find(g.sid.as_deref(), None);
            let id = match existing {
                Some(id) => {
                    self.edges.retain(|(_, to)| *to != id);
                    let i = &mut self.dir.identities[id as usize];
                    i.described = Described::LocalGroup;
                    i.kind = IdentityKind::Group;
                    // On the SVM it is the SVM's group, by the SVM's name.
                    i.name = g.name.clone();
                    self.dir.by_name.insert(g.name.to_lowercase(), id);
                    id
                }
                None => self.add(Identity {
                    sid: g.sid.as_deref().and_then(sid::parse_text),
                    ..Identity::named(g.name.clone(), IdentityKind::Group, Described::LocalGroup)
                }),
            };
            for m in &g.members {
                let m = self.named(m);
                self.edges.push((m, id));
            }
        }
    }

    /// The SVM's UNIX groups and the UNIX users they name.
    pub fn unix_groups(&mut self, groups: &[UnixGroup]) {
        for g in groups {
            let id = self.add(Identity {
                windows: false,
                ..Identity::named(g.name.clone(), IdentityKind::Group, Described::UnixGroup)
            });
            for u in &g.users {
                // UNIX users apart: a user-private group has its user's name.
                let user = match self.unix_users.get(u) {
                    Some(id) => *id,
                    None => {
                        let id = self.add(Identity {
                            windows: false,
                            ..Identity::named(u.clone(), IdentityKind::User, Described::Member)
                        });
                        self.unix_users.insert(u.clone(), id);
                        id
                    }
                };
                self.edges.push((user, id));
            }
        }
    }

    /// Resolves what is left, marks cycles and computes every user's token.
    pub fn finish(mut self) -> Directory {
        self.resolve_dns();
        let n = self.dir.identities.len();
        let mut parents: Vec<Vec<u32>> = vec![Vec::new(); n];
        self.edges.sort_unstable();
        self.edges.dedup();
        for (m, g) in &self.edges {
            parents[*m as usize].push(*g);
        }
        let mut dir = self.dir;
        dir.domain = self.domain.unwrap_or_default();
        dir.problems.cycles = mark_cycles(&mut dir.identities, &parents);
        let [everyone, authenticated] = self.implicit;
        dir.implicit = self.implicit;
        dir.tokens = vec![Vec::new(); n];
        dir.holders = vec![Vec::new(); n];
        let mut seen = vec![NONE; n];
        for user in 0..n as u32 {
            let i = &dir.identities[user as usize];
            if i.kind != IdentityKind::User {
                continue;
            }
            let mut token = Vec::new();
            let mut queue = VecDeque::new();
            let mut visit = |g: u32,
                             depth: u16,
                             through: u32,
                             token: &mut Vec<Held>,
                             queue: &mut VecDeque<u32>| {
                if g != user && seen[g as usize] != user {
                    seen[g as usize] = user;
                    token.push(Held {
                        group: g,
                        depth,
                        through,
                    });
                    queue.push_back(token.len() as u32 - 1);
                }
            };
            if i.windows {
                visit(everyone, 1, NONE, &mut token, &mut queue);
                visit(authenticated, 1, NONE, &mut token, &mut queue);
            }
            for g in &parents[user as usize] {
                visit(*g, 1, NONE, &mut token, &mut queue);
            }
            while let Some(at) = queue.pop_front() {
                let h = token[at as usize];
                for g in &parents[h.group as usize] {
                    visit(
                        *g,
                        h.depth.saturating_add(1),
                        h.group,
                        &mut token,
                        &mut queue,
                    );
                }
            }
            token.sort_unstable_by_key(|h| h.group);
            for h in &token {
                dir.holders[h.group as usize].push(user);
            }
            dir.holders[user as usize].push(user);
            dir.tokens[user as usize] = token;
        }
        dir
    }
}

/// Marks every group in a cycle of membership (Tarjan's strongly connected
/// components, without recursion); returns the number of cycles.
fn mark_cycles(identities: &mut [Identity], parents: &[Vec<u32>]) -> u64 {
    let n = parents.len();
    let mut index = vec![u32::MAX; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0u32;
    let mut cycles = 0;
    for root in 0..n {
        if index[root] != u32::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 && index[v] == u32::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = parents[v].get(*edge) {
                *edge += 1;
                let w = w as usize;
                if index[w] == u32::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut members = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                let looped = members.len() > 1 || parents[v].contains(&(v as u32));
                if looped {
                    cycles += 1;
                    for m in members {
                        identities[m].in_cycle = true;
                    }
                }
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = "\
dn: CN=alice,OU=People,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: alice
objectSid:: AQUAAAAAAAUVAAAAAQAAAAIAAAADAAAAUAQAAA==
primaryGroupID: 513
userAccountControl: 512
lastLogonTimestamp: 133000000000000000

dn: CN=bob,OU=People,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: bob
userAccountControl: 514

dn: CN=Domain Users,DC=corp,DC=example,DC=com
objectClass: group
sAMAccountName: Domain Users
objectSid:: AQUAAAAAAAUVAAAAAQAAAAIAAAADAAAAAQIAAA==

dn: CN=a,DC=corp,DC=example,DC=com
objectClass: group
sAMAccountName: A
member: CN=alice,OU=People,DC=corp,DC=example,DC=com
member: CN=ghost,DC=corp,DC=example,DC=com

dn: CN=b,DC=corp,DC=example,DC=com
objectClass: group
sAMAccountName: B
member: cn=a, dc=corp, dc=example, dc=com
member: CN=c,DC=corp,DC=example,DC=com

dn: CN=c,DC=corp,DC=example,DC=com
objectClass: group
sAMAccountName: C
member: CN=b,DC=corp,DC=example,DC=com

dn: OU=People,DC=corp,DC=example,DC=com
objectClass: organizationalUnit
";

    fn built() -> Directory {
        let mut b = Builder::new(None);
        for r in ldif::records(EXPORT.as_bytes()) {
            b.ldif_record(&r.unwrap());
        }
        b.local_groups(&[LocalGroup {
            name: "BUILTIN\\Administrators".into(),
            sid: Some("S-1-5-32-544".into()),
            members: vec!["corp\\c".into(), "CORP\\nobody".into()],
        }]);
        b.finish()
    }

    fn names(d: &Directory, user: &str) -> Vec<(String, u16, Vec<String>)> {
        let u = d.find(None, Some(user)).unwrap();
        let mut out: Vec<_> = d
            .token(u)
            .iter()
            .map(|h| (d.get(h.group).name.clone(), h.depth, d.chain(u, h.group)))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn tokens_hold_every_group_once_at_the_shortest_depth() {
        let d = built();
        assert_eq!(d.domain, "CORP");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&d, "CORP\\alice"),
            vec![
                (
                    "BUILTIN\\Administrators".into(),
                    4,
                    s(&["CORP\\A", "CORP\\B", "CORP\\C", "BUILTIN\\Administrators"])
                ),
                ("CORP\\A".into(), 1, s(&["CORP\\A"])),
                ("CORP\\B".into(), 2, s(&["CORP\\A", "CORP\\B"])),
                ("CORP\\C".into(), 3, s(&["CORP\\A", "CORP\\B", "CORP\\C"])),
                ("CORP\\Domain Users".into(), 1, s(&["CORP\\Domain Users"])),
                ("Everyone".into(), 1, s(&["Everyone"])),
                (
                    "NT AUTHORITY\\Authenticated Users".into(),
                    1,
                    s(&["NT AUTHORITY\\Authenticated Users"])
                ),
            ]
        );
        let alice = d.find(Some("S-1-5-21-1-2-3-1104"), None).unwrap();
        assert_eq!(d.get(alice).disabled, Some(false));
        assert_eq!(
            d.get(alice).last_logon_micros,
            Some((133000000000000000 - FILETIME_UNIX_EPOCH) / 10)
        );
        let bob = d.find(None, Some("corp\\BOB")).unwrap();
        assert_eq!(d.get(bob).disabled, Some(true));
        assert_eq!(d.token(bob).len(), 2, "Everyone and Authenticated Users");
    }

    #[test]
    fn cycles_are_marked_and_members_kept() {
        let d = built();
        let cyc: Vec<_> = d
            .identities
            .iter()
            .filter(|i| i.in_cycle)
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(cyc, ["CORP\\B", "CORP\\C"]);
        assert_eq!(d.problems.cycles, 1);
        assert_eq!(
            d.problems.unresolved_members, 2,
            "the ghost DN and CORP\\nobody"
        );
        let ghost = d
            .find(None, Some("CN=ghost,DC=corp,DC=example,DC=com"))
            .unwrap();
        assert_eq!(d.get(ghost).kind, IdentityKind::Unresolved);
        let admins = d.find(Some("S-1-5-32-544"), None).unwrap();
        let alice = d.find(None, Some("CORP\\alice")).unwrap();
        assert!(d.holders(admins).contains(&alice));
        assert!(d.holders(d.everyone()).contains(&alice));
    }

    #[test]
    fn unix_groups_name_unix_users() {
        let mut b = Builder::new(Some("CORP".into()));
        // A user-private group first, with its user's name.
        b.unix_groups(&[
            UnixGroup {
                name: "alice".into(),
                users: vec!["alice".into()],
            },
            UnixGroup {
                name: "eng".into(),
                users: vec!["alice".into()],
            },
        ]);
        let d = b.finish();
        let users: Vec<u32> = (0..d.identities.len() as u32)
            .filter(|i| d.get(*i).kind == IdentityKind::User)
            .collect();
        assert_eq!(users.len(), 1, "one alice");
        assert_eq!(d.token(users[0]).len(), 2, "in alice and eng");
        assert_eq!(d.problems.cycles, 0);
        assert_eq!(d.users().count(), 0, "no Windows user");
    }

    #[test]
    fn foreign_principals_contacts_and_missing_primary_groups() {
        // Authenticated Users as AD exports it (a foreign security principal a
        // domain-local group holds), a mail contact, and a user whose primary
        // group the export (filtered to an OU) does not hold.
        let export = "\
dn: CN=S-1-5-11,CN=ForeignSecurityPrincipals,DC=corp,DC=example,DC=com
objectClass: foreignSecurityPrincipal
objectSid:: AQEAAAAAAAULAAAA

dn: CN=Readers,DC=corp,DC=example,DC=com
objectClass: group
sAMAccountName: Readers
member: CN=S-1-5-11,CN=ForeignSecurityPrincipals,DC=corp,DC=example,DC=com
member: CN=vendor,DC=corp,DC=example,DC=com

dn: CN=vendor,DC=corp,DC=example,DC=com
objectClass: person
objectClass: contact
cn: vendor

dn: CN=alice,OU=Staff,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: alice
objectSid:: AQUAAAAAAAUVAAAAAQAAAAIAAAADAAAAUAQAAA==
primaryGroupID: 513
";
        let mut b = Builder::new(None);
        for r in ldif::records(export.as_bytes()) {
            b.ldif_record(&r.unwrap());
        }
        let d = b.finish();
        let alice = d.find(None, Some("CORP\\alice")).unwrap();
        let readers = d.find(None, Some("CORP\\Readers")).unwrap();
        assert!(
            d.holds(alice, readers).is_some(),
            "Readers holds Authenticated Users"
        );
        assert_eq!(
            d.find(None, Some("CORP\\vendor")),
            None,
            "a contact is no principal"
        );
        assert_eq!(
            d.problems.unresolved_members, 1,
            "the missing primary group; not the contact"
        );
        assert_eq!(d.users().count(), 1);
        let users = d.find(None, Some("CORP\\Domain Users")).unwrap();
        assert_eq!(d.get(users).sid.as_deref(), Some("S-1-5-21-1-2-3-513"));
        assert!(d.holds(alice, users).is_some());
    }
}
