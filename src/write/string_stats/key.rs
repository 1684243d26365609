//! The key a string value is compared by, and the least and greatest values
//! of a slice found with it (see the parent module).

use datafusion::arrow::array::{GenericStringArray, OffsetSizeTrait};

/// A value's first 15 bytes as one big-endian number (zeros after a shorter
/// value), followed by a byte of its length up to [`Key::LONG`]: one number
/// to compare. Keys order as their values do, except two `LONG` ones with the
/// same first 15 bytes, which are not known to be equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u128);

impl Key {
    /// Bytes of the value a key holds.
    const PREFIX: usize = 15;
    /// The length byte of a value longer than the prefix.
    const LONG: u8 = Self::PREFIX as u8 + 1;
    /// `MASKS[n]` keeps a word's first `n` bytes (a table: the shifts that
    /// make these cost more than the rest of a key).
    const MASKS: [u128; Self::PREFIX + 1] = {
        let mut masks = [0u128; Self::PREFIX + 1];
        let mut n = 1;
        while n <= Self::PREFIX {
            masks[n] = !(u128::MAX >> (8 * n));
            n += 1;
        }
        masks
    };

    fn of<O: OffsetSizeTrait>(values: &GenericStringArray<O>, row: usize) -> Key {
        let offsets = values.value_offsets();
        let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
        let data = values.value_data();
        let len = end - start;
        // Sixteen bytes from the value's start, past its end when the buffer
        // goes on (the mask clears them); copied otherwise.
        let word = match data.get(start..).and_then(|rest| rest.first_chunk::<16>()) {
            Some(word) => u128::from_be_bytes(*word),
            None => {
                let mut word = [0u8; 16];
                let head = data.get(start..start + len.min(16)).unwrap_or_default();
                word[..head.len()].copy_from_slice(head);
                u128::from_be_bytes(word)
            }
        };
        let kept = len.min(Self::PREFIX);
        Key(word & Self::MASKS[kept] | u128::from(len.min(Self::LONG as usize) as u8))
    }

    /// `self` may come before `other`: it does, or both are long with the
    /// same prefix. (Written without short-circuits: one branch at the caller.)
    fn may_precede(self, other: Key) -> bool {
        (self < other) | ((self == other) & (self.0 as u8 == Self::LONG))
    }
}

/// The rows of the least and greatest of `values` among `rows` (in byte
/// order, the first of equal ones), or none when `rows` is empty.
pub(super) fn least_and_greatest<O: OffsetSizeTrait>(
    values: &GenericStringArray<O>,
    mut rows: impl Iterator<Item = usize>,
) -> Option<(usize, usize)> {
    let first = rows.next()?;
    let (mut least, mut greatest) = (first, first);
    let (mut least_key, mut greatest_key) = (Key::of(values, first), Key::of(values, first));
    for row in rows {
        let key = Key::of(values, row);
        if key.may_precede(least_key) && values.value(row) < values.value(least) {
            (least, least_key) = (row, key);
        }
        if greatest_key.may_precede(key) && values.value(row) > values.value(greatest) {
            (greatest, greatest_key) = (row, key);
        }
    }
    Some((least, greatest))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, LargeStringArray, StringArray};
    use proptest::prelude::*;

    use super::*;

    /// Values that meet every branch of the keys: empty, around the 15-byte
    /// prefix, sharing it, NULs (which the prefix pads with), and characters
    /// of every width up to U+10FFFF.
    fn value() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(String::new()),
            Just("\0".to_string()),
            Just("sensor-0000000000".to_string()), // 17 bytes
            Just("sensor-000000000".to_string()),  // 16 bytes
            Just("sensor-00000000".to_string()),   // 15 bytes
            Just("é".to_string()),
            Just("\u{10FFFF}".to_string()),
            "[a-c\0]{0,3}",
        ];
        proptest::collection::vec(piece, 0..4).prop_map(|p| p.concat())
    }

    proptest! {
        /// The rows found are those of the least and greatest values (the
        /// first of equal ones), nulls passed over, on arrays sliced off a
        /// buffer (the keys read past a value's end) and at its end.
        #[test]
        fn least_and_greatest_are_those_of_a_plain_search(
            values in proptest::collection::vec(proptest::option::weighted(0.8, value()), 0..40),
            skip in 0usize..3,
        ) {
            let array = StringArray::from(values.clone());
            let skip = skip.min(values.len());
            let array = array.slice(skip, values.len() - skip);
            let rows: Vec<usize> = (0..array.len()).filter(|&r| array.is_valid(r)).collect();
            let want = rows.first().map(|&first| {
                let (mut least, mut greatest) = (first, first);
                for &r in &rows {
                    if array.value(r) < array.value(least) { least = r; }
                    if array.value(r) > array.value(greatest) { greatest = r; }
                }
                (least, greatest)
            });
            prop_assert_eq!(least_and_greatest(&array, rows.iter().copied()), want);
            let large = LargeStringArray::from(values[skip..].to_vec());
            prop_assert_eq!(least_and_greatest(&large, rows.into_iter()), want);
        }
    }
}
