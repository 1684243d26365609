//! The two ACL formats Linux keeps in extended attributes, decoded from their
//! bytes. Both come from the file system (or, for NFSv4, from a server) and are
//! read as untrusted: every count and length is checked against the bytes there
//! are before it is used.
//!
//! - `system.posix_acl_access` / `system.posix_acl_default`: a little-endian u32
//!   version (2), then 8-byte entries `{u16 tag, u16 perm, u32 id}` (the kernel's
//!   `posix_acl_xattr_entry`).
//! - `system.nfs4_acl` (RFC 8881 `nfsace4`, XDR, big-endian): a u32 count, then per
//!   entry u32 type, u32 flags, u32 access mask and the principal as an XDR
//!   string (u32 length, bytes, padded to 4).

/// A POSIX ACL entry's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosixTag {
    UserObj,
    User,
    GroupObj,
    Group,
    Mask,
    Other,
}

impl PosixTag {
    fn of(tag: u16) -> Option<Self> {
        Some(match tag {
            0x01 => PosixTag::UserObj,
            0x02 => PosixTag::User,
            0x04 => PosixTag::GroupObj,
            0x08 => PosixTag::Group,
            0x10 => PosixTag::Mask,
            0x20 => PosixTag::Other,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosixEntry {
    pub tag: PosixTag,
    /// r 4, w 2, x 1.
    pub perm: u16,
    /// The uid or gid of a `User` or `Group` entry.
    pub id: Option<u32>,
}

const POSIX_ACL_VERSION: u32 = 2;
/// More than the kernel allows on any file system (ext4 fits about 500 in a block).
const MAX_ENTRIES: usize = 8192;

pub fn posix_acl(bytes: &[u8]) -> Result<Vec<PosixEntry>, String> {
    let (head, body) = bytes
        .split_first_chunk::<4>()
        .ok_or("a POSIX ACL shorter than its version")?;
    let version = u32::from_le_bytes(*head);
    if version != POSIX_ACL_VERSION {
        return Err(format!("a POSIX ACL of version {version} (2 is known)"));
    }
    if body.len() % 8 != 0 {
        return Err("a POSIX ACL whose entries are not 8 bytes each".into());
    }
    if body.len() / 8 > MAX_ENTRIES {
        return Err(format!("a POSIX ACL of more than {MAX_ENTRIES} entries"));
    }
    body.chunks_exact(8)
        .enumerate()
        .map(|(i, e)| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let tag = PosixTag::of(tag)
                .ok_or_else(|| format!("POSIX ACL entry {i}: unknown tag {tag:#x}"))?;
            if perm > 7 {
                return Err(format!("POSIX ACL entry {i}: permission bits {perm:#o}"));
            }
            let id = matches!(tag, PosixTag::User | PosixTag::Group).then_some(id);
            Ok(PosixEntry { tag, perm, id })
        })
        .collect()
}

/// An NFSv4 ACE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nfs4Ace {
    /// ALLOW 0, DENY 1, AUDIT 2, ALARM 3.
    pub ace_type: u32,
    pub flags: u32,
    pub mask: u32,
    /// `OWNER@`, `GROUP@`, `EVERYONE@`, `user@domain` or a numeric id.
    pub who: String,
}

pub mod nfs4 {
    pub const ALLOW: u32 = 0;
    pub const DENY: u32 = 1;
    pub const AUDIT: u32 = 2;
    pub const ALARM: u32 = 3;
    pub const FILE_INHERIT: u32 = 0x01;
    pub const DIRECTORY_INHERIT: u32 = 0x02;
    pub const INHERIT_ONLY: u32 = 0x08;
    pub const SUCCESSFUL_ACCESS: u32 = 0x10;
    pub const FAILED_ACCESS: u32 = 0x20;
    pub const IDENTIFIER_GROUP: u32 = 0x40;
    pub const INHERITED: u32 = 0x80;
}

/// Longest principal accepted (`utf8str_mixed`; real ones are far shorter).
const MAX_WHO: usize = 1024;

pub fn nfs4_acl(bytes: &[u8]) -> Result<Vec<Nfs4Ace>, String> {
    let head = bytes
        .first_chunk::<4>()
        .ok_or("the NFSv4 ACL ends inside its entry count")?;
    let count = u32::from_be_bytes(*head) as usize;
    // Each entry is at least 16 bytes: a count the bytes cannot hold is refused
    // before anything is allocated for it.
    if count > (bytes.len() - 4) / 16 || count > MAX_ENTRIES {
        return Err(format!(
            "the NFSv4 ACL declares {count} entries in {} bytes",
            bytes.len()
        ));
    }
    let mut aces = Vec::with_capacity(count);
    let mut at = 4usize;
    for i in 0..count {
        let mut fields = [0u32; 4];
        for f in fields.iter_mut() {
            let w = bytes
                .get(at..at + 4)
                .ok_or_else(|| format!("NFSv4 ACE {i} ends at byte {at}"))?;
            *f = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            at += 4;
        }
        let [ace_type, flags, mask, len] = fields;
        let len = len as usize;
        if len > MAX_WHO {
            return Err(format!("NFSv4 ACE {i}: a principal of {len} bytes"));
        }
        let padded = len.div_ceil(4) * 4;
        let who = bytes
            .get(at..at + len)
            .filter(|_| at + padded <= bytes.len())
            .ok_or_else(|| format!("NFSv4 ACE {i}: its principal runs past the end"))?;
        let who = std::str::from_utf8(who)
            .map_err(|_| format!("NFSv4 ACE {i}: a principal that is not UTF-8"))?;
        if who.chars().any(char::is_control) {
            return Err(format!(
                "NFSv4 ACE {i}: a principal with control characters"
            ));
        }
        at += padded;
        aces.push(Nfs4Ace {
            ace_type,
            flags,
            mask,
            who: who.to_string(),
        });
    }
    if at != bytes.len() {
        return Err(format!(
            "the NFSv4 ACL has {} bytes after its last entry",
            bytes.len() - at
        ));
    }
    Ok(aces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn posix_bytes(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut b = 2u32.to_le_bytes().to_vec();
        for (t, p, id) in entries {
            b.extend(t.to_le_bytes());
            b.extend(p.to_le_bytes());
            b.extend(id.to_le_bytes());
        }
        b
    }

    pub(crate) fn nfs4_bytes(aces: &[(u32, u32, u32, &str)]) -> Vec<u8> {
        let mut b = (aces.len() as u32).to_be_bytes().to_vec();
        for (t, f, m, who) in aces {
            for w in [*t, *f, *m, who.len() as u32] {
                b.extend(w.to_be_bytes());
            }
            b.extend(who.as_bytes());
            b.resize(b.len().div_ceil(4) * 4, 0);
        }
        b
    }

    #[test]
    fn posix_acl_as_setfacl_writes_it() {
        let undefined = u32::MAX;
        let b = posix_bytes(&[
            (0x01, 7, undefined),
            (0x02, 5, 1001),
            (0x04, 5, undefined),
            (0x08, 6, 2000),
            (0x10, 7, undefined),
            (0x20, 0, undefined),
        ]);
        let e = posix_acl(&b).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(
            e[0],
            PosixEntry {
                tag: PosixTag::UserObj,
                perm: 7,
                id: None
            }
        );
        assert_eq!(
            e[1],
            PosixEntry {
                tag: PosixTag::User,
                perm: 5,
                id: Some(1001)
            }
        );
        assert_eq!(e[3].id, Some(2000));
        assert_eq!(e[5].tag, PosixTag::Other);
    }

    #[test]
    fn posix_acl_refuses_what_it_cannot_read() {
        assert!(posix_acl(&[2, 0]).is_err());
        assert!(
            posix_acl(&1u32.to_le_bytes())
                .unwrap_err()
                .contains("version 1")
        );
        let mut b = posix_bytes(&[(0x01, 7, 0)]);
        b.push(0);
        assert!(posix_acl(&b).is_err());
        assert!(
            posix_acl(&posix_bytes(&[(0x40, 7, 0)]))
                .unwrap_err()
                .contains("tag")
        );
        assert!(posix_acl(&posix_bytes(&[(0x01, 8, 0)])).is_err());
        assert_eq!(posix_acl(&posix_bytes(&[])).unwrap(), vec![]);
    }

    #[test]
    fn nfs4_acl_decodes_owner_group_everyone_and_users() {
        let b = nfs4_bytes(&[
            (nfs4::ALLOW, 0, 0x1F01FF, "OWNER@"),
            (nfs4::DENY, nfs4::IDENTIFIER_GROUP, 0x2, "staff@example.com"),
            (
                nfs4::ALLOW,
                nfs4::FILE_INHERIT | nfs4::INHERITED,
                0x120089,
                "EVERYONE@",
            ),
            (nfs4::AUDIT, nfs4::FAILED_ACCESS, 0x1, "bob@example.com"),
        ]);
        let a = nfs4_acl(&b).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].who, "OWNER@");
        assert_eq!(a[1].ace_type, nfs4::DENY);
        assert_eq!(a[1].flags, nfs4::IDENTIFIER_GROUP);
        assert_eq!(a[2].mask, 0x120089);
        assert_eq!(a[3].who, "bob@example.com");
    }

    #[test]
    fn nfs4_acl_refuses_lying_counts_and_lengths() {
        // A count of 2^32-1 in 4 bytes: refused before any allocation.
        assert!(
            nfs4_acl(&u32::MAX.to_be_bytes())
                .unwrap_err()
                .contains("declares")
        );
        let good = nfs4_bytes(&[(0, 0, 1, "OWNER@")]);
        // Truncated anywhere: an error, never a panic.
        for cut in 0..good.len() {
            assert!(nfs4_acl(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A principal length past the end.
        let mut long = good.clone();
        long[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert!(nfs4_acl(&long).is_err());
        let mut trailing = good.clone();
        trailing.extend([0, 0, 0, 0]);
        assert!(nfs4_acl(&trailing).unwrap_err().contains("after"));
        assert!(nfs4_acl(&nfs4_bytes(&[(0, 0, 1, "a\u{1}b")])).is_err());
    }

    proptest! {
        #[test]
        fn nfs4_acl_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = nfs4_acl(&bytes);
        }

        #[test]
        fn nfs4_acl_round_trips(aces in proptest::collection::vec(
            (0u32..4, any::<u32>(), any::<u32>(), "[A-Za-z@.]{0,20}"), 0..8)) {
            let refs: Vec<(u32, u32, u32, &str)> =
                aces.iter().map(|(t, f, m, w)| (*t, *f, *m, w.as_str())).collect();
            let decoded = nfs4_acl(&nfs4_bytes(&refs)).unwrap();
            prop_assert_eq!(decoded.len(), aces.len());
            for (d, (t, f, m, w)) in decoded.iter().zip(&aces) {
                prop_assert_eq!((d.ace_type, d.flags, d.mask, d.who.as_str()), (*t, *f, *m, w.as_str()));
            }
        }

        #[test]
        fn posix_acl_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = posix_acl(&bytes);
        }
    }
}
