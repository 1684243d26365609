//! Rights as an access mask. NTFS and NFSv4 (RFC 8881 §6.2.1.3) give the same
//! bits the same meaning, so one mask describes an entry from either; POSIX r, w
//! and x are mapped onto it ([`Rights::posix`]). The basic-right names are the
//! ones Windows shows (Full Control, Modify, Read & Execute, Read, Write), by their
//! exact masks; any other combination is `special`.

/// The advanced rights by bit, in ONTAP's names (`advanced_rights`), in mask order.
pub const ADVANCED: [(&str, u32); 14] = [
    ("read_data", 0x0000_0001),
    ("write_data", 0x0000_0002),
    ("append_data", 0x0000_0004),
    ("read_ea", 0x0000_0008),
    ("write_ea", 0x0000_0010),
    ("execute_file", 0x0000_0020),
    ("delete_child", 0x0000_0040),
    ("read_attr", 0x0000_0080),
    ("write_attr", 0x0000_0100),
    ("delete", 0x0001_0000),
    ("read_perm", 0x0002_0000),
    ("write_perm", 0x0004_0000),
    ("write_owner", 0x0008_0000),
    ("synchronize", 0x0010_0000),
];

pub const FULL_CONTROL: u32 = 0x001F_01FF;
pub const MODIFY: u32 = 0x0013_01BF;
pub const READ_AND_EXECUTE: u32 = 0x0012_00A9;
pub const READ: u32 = 0x0012_0089;
pub const WRITE: u32 = 0x0010_0116;

const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_EXECUTE: u32 = 0x2000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_READ: u32 = 0x8000_0000;

/// An entry's rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    /// The specific rights (generic bits mapped as for files).
    pub mask: u32,
    /// The basic-right name when the filer gave one (ONTAP's `rights`); otherwise
    /// it is derived from the mask.
    pub named: Option<String>,
}

impl Rights {
    pub fn from_mask(mask: u32) -> Self {
        Rights {
            mask: specific(mask),
            named: None,
        }
    }

    /// POSIX permission bits (r 4, w 2, x 1) of one entry. r maps to the read
    /// rights, w to the write rights, x to execute; the name is the closest basic
    /// right: rw is `modify` (POSIX w on a directory also lets a user delete its
    /// entries), --x alone is `special`.
    pub fn posix(perm: u32) -> Self {
        let (r, w, x) = (perm & 4 != 0, perm & 2 != 0, perm & 1 != 0);
        let mut mask = 0;
        if r {
            mask |= READ;
        }
        if w {
            mask |= WRITE;
        }
        if x {
            mask |= 0x20;
        }
        let name = match (r, w, x) {
            (false, false, false) => "none",
            (true, false, false) => "read",
            (true, false, true) => "read_and_execute",
            (false, true, _) => "write",
            (true, true, _) => "modify",
            (false, false, true) => "special",
        };
        Rights {
            mask,
            named: Some(name.to_string()),
        }
    }

    /// The basic right: the filer's name when it gave one, else by exact mask.
    pub fn basic(&self) -> &str {
        if let Some(n) = &self.named {
            return n;
        }
        match self.mask & FULL_CONTROL {
            FULL_CONTROL => "full_control",
            MODIFY => "modify",
            READ_AND_EXECUTE => "read_and_execute",
            READ => "read",
            WRITE => "write",
            0 => "none",
            _ => "special",
        }
    }

    pub fn advanced(&self) -> Vec<String> {
        ADVANCED
            .iter()
            .filter(|(_, bit)| self.mask & bit != 0)
            .map(|(n, _)| n.to_string())
            .collect()
    }

    /// The mask of a basic-right name (ONTAP's `rights` without `advanced_rights`).
    pub fn mask_of_basic(name: &str) -> Option<u32> {
        Some(match name {
            "full_control" => FULL_CONTROL,
            "modify" => MODIFY,
            "read_and_execute" => READ_AND_EXECUTE,
            "read" => READ,
            "write" => WRITE,
            "no_access" | "none" => 0,
            _ => return None,
        })
    }
}

/// Generic rights mapped to the specific rights of a file (MS-DTYP 2.4.3).
fn specific(mask: u32) -> u32 {
    let mut m = mask & 0x01FF_FFFF;
    if mask & GENERIC_ALL != 0 {
        m |= FULL_CONTROL;
    }
    if mask & GENERIC_READ != 0 {
        m |= READ;
    }
    if mask & GENERIC_WRITE != 0 {
        m |= WRITE | 0x0002_0000;
    }
    if mask & GENERIC_EXECUTE != 0 {
        m |= 0x0012_00A0;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_rights_by_exact_mask() {
        for (mask, name) in [
            (FULL_CONTROL, "full_control"),
            (MODIFY, "modify"),
            (READ_AND_EXECUTE, "read_and_execute"),
            (READ, "read"),
            (WRITE, "write"),
            (0, "none"),
            (READ | 0x0004_0000, "special"),
            (GENERIC_ALL, "full_control"),
        ] {
            assert_eq!(Rights::from_mask(mask).basic(), name, "{mask:#x}");
        }
    }

    #[test]
    fn advanced_names_follow_bits() {
        let r = Rights::from_mask(0x0004_0001 | 0x0008_0000);
        assert_eq!(r.advanced(), ["read_data", "write_perm", "write_owner"]);
        assert_eq!(Rights::from_mask(FULL_CONTROL).advanced().len(), 14);
    }

    #[test]
    fn posix_bits_map_to_read_write_execute() {
        assert_eq!(Rights::posix(0o5).basic(), "read_and_execute");
        assert_eq!(Rights::posix(0o5).mask, READ_AND_EXECUTE);
        assert_eq!(Rights::posix(0o7).basic(), "modify");
        assert_eq!(Rights::posix(0o2).basic(), "write");
        assert_eq!(Rights::posix(0o0).basic(), "none");
        assert_eq!(Rights::posix(0o1).basic(), "special");
        assert!(
            !Rights::posix(0o7)
                .advanced()
                .contains(&"write_perm".to_string())
        );
    }
}
