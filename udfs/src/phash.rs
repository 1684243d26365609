//! Near-duplicate search over 64-bit perceptual hashes, without comparing every
//! pair: multi-index hashing.
//!
//! A hash is cut into [`BANDS`] bands of 16 bits. If two hashes differ in at most
//! `d` bits, then (pigeonhole) at least one band differs in at most `⌊d / 4⌋` bits:
//! were every band `⌊d / 4⌋ + 1` bits apart, the hashes would be
//! `4·(⌊d / 4⌋ + 1) > d` apart. So the candidates of a hash are the hashes that
//! share, in some band, one of the values within that radius of its own
//! ([`probes`]); every candidate is then checked at full length. No pair within
//! `d` is missed, and for unrelated hashes a candidate is rare (at `d = 10`,
//! radius 2: 137 of the 65 536 values of a band, about 0.8% of pairs over four
//! bands).
//!
//! A band value is one `i64`: the band's index times 2¹⁶ plus its 16 bits
//! ([`bands`]), so SQL can join probes to bands on one column.

use std::collections::HashMap;

/// Bands of a hash.
pub const BANDS: u32 = 4;
const BAND_BITS: u32 = 64 / BANDS;
const BAND_MASK: u64 = (1 << BAND_BITS) - 1;

/// Bits two hashes differ in.
pub fn hamming(a: i64, b: i64) -> u32 {
    (a ^ b).count_ones()
}

fn band(hash: i64, i: u32) -> u64 {
    ((hash as u64) >> (i * BAND_BITS)) & BAND_MASK
}

fn tagged(i: u32, value: u64) -> i64 {
    ((u64::from(i) << BAND_BITS) | value) as i64
}

/// The band values of a hash, one per band.
pub fn bands(hash: i64) -> Vec<i64> {
    (0..BANDS).map(|i| tagged(i, band(hash, i))).collect()
}

/// The band radius that finds every pair within `max_distance` bits.
pub fn radius(max_distance: u32) -> u32 {
    max_distance.min(64) / BANDS
}

/// Every band value within [`radius`]`(max_distance)` bits of one of the hash's
/// own: what it is looked up by. `1 + 16 + 120 = 137` values per band at radius 2.
pub fn probes(hash: i64, max_distance: u32) -> Vec<i64> {
    let r = radius(max_distance);
    let mut out = Vec::new();
    for i in 0..BANDS {
        let own = band(hash, i);
        flips(own, r, 0, &mut |v| out.push(tagged(i, v)));
    }
    out
}

/// Calls `f` with `value` and every value that differs from it in at most `r` of
/// the bits from `from` up, each once.
fn flips(value: u64, r: u32, from: u32, f: &mut impl FnMut(u64)) {
    f(value);
    if r == 0 {
        return;
    }
    for bit in from..BAND_BITS {
        flips(value ^ (1 << bit), r - 1, bit + 1, f);
    }
}

/// For each hash (`None`: no hash), how many of the others are within
/// `max_distance` bits of it.
pub fn near_counts(hashes: &[Option<i64>], max_distance: u32) -> Vec<u64> {
    let mut index: HashMap<i64, Vec<usize>> = HashMap::new();
    for (row, h) in hashes.iter().enumerate() {
        if let Some(h) = h {
            for b in bands(*h) {
                index.entry(b).or_default().push(row);
            }
        }
    }
    let mut seen = Vec::new();
    hashes
        .iter()
        .enumerate()
        .map(|(row, h)| {
            let Some(h) = *h else { return 0 };
            seen.clear();
            for p in probes(h, max_distance) {
                for &other in index.get(&p).into_iter().flatten() {
                    if other != row && hamming(h, hashes[other].unwrap_or(h)) <= max_distance {
                        seen.push(other);
                    }
                }
            }
            seen.sort_unstable();
            seen.dedup();
            seen.len() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(hashes: &[Option<i64>], d: u32) -> Vec<u64> {
        hashes
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                None => 0,
                Some(a) => hashes
                    .iter()
                    .enumerate()
                    .filter(|(j, b)| *j != i && b.is_some_and(|b| hamming(*a, b) <= d))
                    .count() as u64,
            })
            .collect()
    }

    #[test]
    fn probes_are_every_value_within_the_radius_once() {
        let p = probes(0x1234_5678_9abc_def0, 10);
        assert_eq!(p.len(), 4 * 137);
        let mut unique = p.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), p.len());
        assert_eq!(
            probes(7, 3).len(),
            4,
            "radius 0 probes the bands themselves"
        );
        assert_eq!(probes(7, 3), bands(7));
    }

    #[test]
    fn counts_match_comparing_every_pair() {
        // Clusters of hashes a few bits apart, plus unrelated ones: a linear
        // congruential generator keeps the test deterministic without a crate.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x
        };
        let mut hashes = Vec::new();
        for _ in 0..40 {
            let centre = next();
            for _ in 0..5 {
                let mut h = centre;
                for _ in 0..(next() % 14) {
                    h ^= 1 << (next() % 64);
                }
                hashes.push(Some(h as i64));
            }
        }
        hashes.push(None);
        hashes.push(hashes[0]);
        for d in [0, 1, 3, 4, 7, 10, 12, 16, 24, 64] {
            assert_eq!(near_counts(&hashes, d), brute(&hashes, d), "distance {d}");
        }
    }
}
