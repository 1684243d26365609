//! What a source calls its objects where others can read it. Most kinds call an
//! object by its key. A kind whose keys may themselves identify people (hospital
//! shares name folders after patients) disguises them: discovery gives every item
//! the disguised name and the real key sealed ([`KeyNames`]), and everything after
//! it (rows, rejects, reports, logs, the incremental state, a sharded run's plan
//! and results) sees only the name. The source's readers alone open the seal, to
//! read the object.

use std::fmt::Debug;

/// A source's disguise for object keys.
pub trait KeyNames: Debug + Send + Sync {
    /// The name of the object at `key` (relative to the job's input). The same key
    /// gets the same name in every run, and two keys never share one.
    fn name(&self, key: &str) -> String;
    /// `key`, sealed so that only this disguise opens it (for the files that must
    /// find the object again: a sharded run's plan).
    fn seal(&self, key: &str) -> String;
    /// The key a sealed text holds; an error when another key sealed it or it was
    /// altered.
    fn unseal(&self, sealed: &str) -> Result<String, String>;
}

/// `text` (an error from storage that may quote the object's path) with the real
/// key and each of its path segments of three characters or more replaced by the
/// name's, so the message still says what failed and names only what the rest of
/// the run names.
pub fn scrub(text: &str, key: &str, name: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![(key, name)];
    pairs.extend(
        key.split('/')
            .zip(name.split('/'))
            .filter(|(real, shown)| real.chars().count() >= 3 && real != shown),
    );
    // The longest first, so a segment inside the whole key is replaced with it.
    pairs.sort_by_key(|(real, _)| std::cmp::Reverse(real.len()));
    let mut out = text.to_string();
    for (real, shown) in pairs {
        out = out.replace(real, shown);
        let encoded = percent_encoding::utf8_percent_encode(real, SEGMENT).to_string();
        if encoded != real {
            out = out.replace(&encoded, shown);
        }
    }
    out
}

/// What object_store's paths and S3's URLs percent-encode in a key.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_error_names_the_disguised_key_only() {
        let key = "YAMADA TARO/ACC778/12345678.dcm";
        let name = "a1b2/c3d4/e5f6.dcm";
        let text = "reading /srv/share/YAMADA TARO/ACC778/12345678.dcm: permission denied; \
                    directory /srv/share/YAMADA%20TARO not found; ACC778 again";
        let out = scrub(text, key, name);
        for secret in ["YAMADA", "ACC778", "12345678"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("/srv/share/a1b2/c3d4/e5f6.dcm: permission denied"));
        assert!(out.contains("directory /srv/share/a1b2 not found"));
    }
}
