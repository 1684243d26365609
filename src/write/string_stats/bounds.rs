//! A slice's bounds as kept (at most [`KEPT_BYTES`] of each), and the bounds
//! parquet-rs writes for them: a port of its truncation of UTF-8 statistics
//! (`truncate_utf8`, `truncate_and_increment_utf8`, `increment_utf8` in its
//! `column/writer`).

use std::cmp::Ordering;

/// Bytes of a slice's least and greatest values kept: more than any truncation
/// length this writer takes a column for ([`super::Truncation::of_column`]).
pub(super) const KEPT_BYTES: usize = 1024;

/// A value as kept: its first [`KEPT_BYTES`] bytes, and whether it had more.
///
/// Ordered by those bytes, then a value with more after one without: the
/// order of the values, except that two with more and the same kept bytes
/// compare equal without being so ([`Kept::order`] says when).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Kept {
    pub(super) head: Box<[u8]>,
    pub(super) longer: bool,
}

impl Kept {
    pub(super) fn new(value: &[u8]) -> Self {
        Kept {
            head: value[..value.len().min(KEPT_BYTES)].into(),
            longer: value.len() > KEPT_BYTES,
        }
    }

    /// The order of the two values, when what is kept decides it.
    pub(super) fn order(&self, other: &Kept) -> Option<Ordering> {
        match self.cmp(other) {
            Ordering::Equal if self.longer => None,
            known => Some(known),
        }
    }

    /// The value's length is more than `limit` bytes.
    fn exceeds(&self, limit: usize) -> bool {
        self.longer || self.head.len() > limit
    }

    /// The whole value as a bound (an exact one), when it was kept whole.
    fn whole(&self) -> Option<(Vec<u8>, bool)> {
        (!self.longer).then(|| (self.head.to_vec(), true))
    }
}

/// parquet-rs's lower bound of at most `limit` bytes for `value`
/// (`truncate_min_value` on a UTF-8 column), and whether it is the value.
/// None when that is the whole value and it was not kept whole.
pub(super) fn lower_bound(value: &Kept, limit: usize) -> Option<(Vec<u8>, bool)> {
    if !value.exceeds(limit) {
        return value.whole();
    }
    match (1..=limit)
        .rev()
        .find(|&at| is_char_boundary(&value.head, at))
    {
        Some(at) => Some((value.head[..at].to_vec(), false)),
        None => value.whole(),
    }
}

/// parquet-rs's upper bound of at most `limit` bytes for `value`
/// (`truncate_max_value`: cut, then the last character that can be is
/// incremented), and whether it is the value. None as for [`lower_bound`].
pub(super) fn upper_bound(value: &Kept, limit: usize) -> Option<(Vec<u8>, bool)> {
    if !value.exceeds(limit) {
        return value.whole();
    }
    let cut = (limit.saturating_sub(3)..=limit)
        .rev()
        .find(|&at| is_char_boundary(&value.head, at))
        .and_then(|at| std::str::from_utf8(&value.head[..at]).ok())
        .and_then(increment_utf8);
    match cut {
        Some(bound) => Some((bound, false)),
        None => value.whole(),
    }
}

/// `str::is_char_boundary` on the bytes of a string (or of its beginning).
fn is_char_boundary(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at) {
        None => at == bytes.len(),
        // Not a continuation byte (0b10xx_xxxx).
        Some(&b) => (b as i8) >= -0x40,
    }
}

/// `text` with its last character that can be incremented without changing
/// its width so incremented, and what followed it dropped (parquet-rs's
/// `increment_utf8`).
fn increment_utf8(text: &str) -> Option<Vec<u8>> {
    text.char_indices().rev().find_map(|(at, c)| {
        let next = char::from_u32(c as u32 + 1).filter(|n| n.len_utf8() == c.len_utf8())?;
        let mut bound = text.as_bytes()[..at + c.len_utf8()].to_vec();
        next.encode_utf8(&mut bound[at..]);
        Some(bound)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Kept values order as the values do, unless both were cut and
        /// agree on what was kept.
        #[test]
        fn kept_values_order_as_the_values(
            a in "[ab]{0,3}", b in "[ab]{0,3}", pad in 1020usize..1030,
        ) {
            let a = format!("{}{a}", "x".repeat(pad));
            let b = format!("{}{b}", "x".repeat(pad));
            let (ka, kb) = (Kept::new(a.as_bytes()), Kept::new(b.as_bytes()));
            match ka.order(&kb) {
                Some(order) => prop_assert_eq!(order, a.cmp(&b)),
                None => prop_assert!(ka.longer && kb.longer && ka.head == kb.head),
            }
        }
    }

    /// The bounds parquet-rs writes for long values: cut at a character's
    /// start, the upper one incremented, and none short of the whole value
    /// when nothing can be incremented in place.
    #[test]
    fn bounds_are_cut_as_parquet_cuts_them() {
        let kept = |s: &str| Kept::new(s.as_bytes());
        assert_eq!(
            lower_bound(&kept("abcdef"), 4),
            Some((b"abcd".to_vec(), false))
        );
        assert_eq!(
            upper_bound(&kept("abcdef"), 4),
            Some((b"abce".to_vec(), false))
        );
        assert_eq!(lower_bound(&kept("abc"), 4), Some((b"abc".to_vec(), true)));
        // "é" is two bytes: a cut at 4 falls inside the second.
        assert_eq!(
            lower_bound(&kept("aééé"), 4),
            Some(("aé".as_bytes().to_vec(), false))
        );
        assert_eq!(
            upper_bound(&kept("aééé"), 4),
            Some(("aê".as_bytes().to_vec(), false))
        );
        // U+007F would become two bytes: the character before it is incremented.
        assert_eq!(
            upper_bound(&kept("a\u{7f}\u{7f}\u{7f}\u{7f}"), 3),
            Some(b"b".to_vec()).map(|b| (b, false))
        );
        // Nothing can be: the whole value, when it was kept whole.
        let dels = "\u{7f}".repeat(100);
        assert_eq!(
            upper_bound(&kept(&dels), 64),
            Some((dels.as_bytes().to_vec(), true))
        );
        let dels = "\u{7f}".repeat(KEPT_BYTES + 1);
        assert_eq!(upper_bound(&kept(&dels), 64), None);
    }
}
