//! The Windows access check, as a pure decision: which rights a token gets
//! from a DACL (MS-DTYP 2.5.3.2, asked for every right at once). The rules, as
//! the README's "Who can reach what" states them:
//! - A null DACL grants every right.
//! - A token that holds the owner gets read-control and write-DAC before any
//!   entry is read, unless an entry is for OWNER RIGHTS; no deny takes them away.
//! - Entries are read in order; each right not yet decided is decided by the
//!   first entry for a principal in the token whose mask holds it: granted by an
//!   allow entry, denied by a deny entry. An empty DACL grants nothing.
//! - Masks are the file rights (`rights.rs` maps generic rights as files map
//!   them); nothing beyond full control counts.
//!
//! A share's ACL is checked the same way, and the right through a share is the
//! two intersected (`relations/effective.rs`).

use super::rights::FULL_CONTROL;

/// Read-control and write-DAC: what an owner may always do.
pub const OWNER_IMPLICIT: u32 = 0x0002_0000 | 0x0004_0000;

/// Whom an entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// An identity of the directory (its index).
    Identity(u32),
    /// OWNER RIGHTS (S-1-3-4): the owner, whoever it is.
    OwnerRights,
    /// Nobody's token holds it (CREATOR OWNER, SYSTEM, a name nothing describes).
    Nobody,
}

/// One entry that applies to the object (audit entries and entries only for
/// children are not given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ace {
    pub who: Who,
    pub allow: bool,
    /// File rights (`Rights::mask`, generic rights mapped).
    pub mask: u32,
}

/// The DACL of an object or a share.
#[derive(Debug, Clone, Copy)]
pub enum Dacl<'a> {
    /// No DACL at all: every right to everyone.
    Null,
    Entries(&'a [Ace]),
}

/// What a token got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub granted: u32,
    /// The allow entry that decided the most of the granted rights (the first on
    /// a tie); `None` when no entry granted any (a null DACL, the owner's rights).
    pub deciding: Option<usize>,
}

/// The rights a token gets. `holds(id)`: the token holds that identity;
/// `is_owner`: it holds the object's owner.
pub fn check(dacl: Dacl<'_>, holds: impl Fn(u32) -> bool, is_owner: bool) -> Outcome {
    let entries = match dacl {
        Dacl::Null => {
            return Outcome {
                granted: FULL_CONTROL,
                deciding: None,
            };
        }
        Dacl::Entries(e) => e,
    };
    let owner_rights_entry = entries.iter().any(|a| a.who == Who::OwnerRights);
    let mut granted = if is_owner && !owner_rights_entry {
        OWNER_IMPLICIT
    } else {
        0
    };
    let mut decided = granted;
    let mut best: Option<(usize, u32)> = None;
    for (i, ace) in entries.iter().enumerate() {
        let applies = match ace.who {
            Who::Identity(id) => holds(id),
            Who::OwnerRights => is_owner,
            Who::Nobody => false,
        };
        if !applies {
            continue;
        }
        let fresh = ace.mask & FULL_CONTROL & !decided;
        decided |= fresh;
        if ace.allow && fresh != 0 {
            granted |= fresh;
            let n = fresh.count_ones();
            if best.is_none_or(|(_, most)| n > most) {
                best = Some((i, n));
            }
        }
        if decided == FULL_CONTROL {
            break;
        }
    }
    Outcome {
        granted,
        deciding: best.map(|(i, _)| i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::acl::rights::{MODIFY, READ, WRITE};

    fn allow(id: u32, mask: u32) -> Ace {
        Ace {
            who: Who::Identity(id),
            allow: true,
            mask,
        }
    }
    fn deny(id: u32, mask: u32) -> Ace {
        Ace {
            who: Who::Identity(id),
            allow: false,
            mask,
        }
    }

    /// The token holds identities 1 and 2.
    fn token(id: u32) -> bool {
        id == 1 || id == 2
    }

    #[test]
    fn first_entry_that_decides_a_right_decides_it() {
        let dacl = [deny(2, WRITE), allow(1, MODIFY), allow(3, FULL_CONTROL)];
        let o = check(Dacl::Entries(&dacl), token, false);
        assert_eq!(o.granted, MODIFY & !WRITE);
        assert_eq!(o.deciding, Some(1));
        // An allow before the deny wins (a DACL out of canonical order).
        let dacl = [allow(1, MODIFY), deny(2, WRITE)];
        assert_eq!(check(Dacl::Entries(&dacl), token, false).granted, MODIFY);
    }

    #[test]
    fn null_empty_and_owner() {
        assert_eq!(check(Dacl::Null, token, false).granted, FULL_CONTROL);
        assert_eq!(check(Dacl::Entries(&[]), token, false).granted, 0);
        let o = check(Dacl::Entries(&[]), token, true);
        assert_eq!((o.granted, o.deciding), (OWNER_IMPLICIT, None));
        // A deny cannot take the owner's rights away.
        let dacl = [deny(1, FULL_CONTROL)];
        assert_eq!(
            check(Dacl::Entries(&dacl), token, true).granted,
            OWNER_IMPLICIT
        );
        // OWNER RIGHTS replaces them.
        let dacl = [Ace {
            who: Who::OwnerRights,
            allow: true,
            mask: READ,
        }];
        assert_eq!(check(Dacl::Entries(&dacl), token, true).granted, READ);
        assert_eq!(check(Dacl::Entries(&dacl), token, false).granted, 0);
    }

    #[test]
    fn the_entry_that_grants_most_is_the_way_in() {
        let dacl = [allow(1, READ), allow(2, MODIFY), allow(2, FULL_CONTROL)];
        let o = check(Dacl::Entries(&dacl), token, false);
        assert_eq!(o.granted, FULL_CONTROL);
        assert_eq!(
            o.deciding,
            Some(1),
            "MODIFY adds more to READ than FULL_CONTROL adds after it"
        );
    }
}
