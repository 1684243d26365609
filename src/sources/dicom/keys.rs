//! Object keys de-identified (`deidentification.keys = "pseudonymize"`, the
//! default with a key). Hospital shares name folders and files after patients and
//! accessions, so the key is as identifying as the header; the rest of the run
//! sees only the name these rules give it:
//!
//! - A key is split at `/` into segments. Its leading segments that equal the
//!   segments of the source's `prefix`, one for one, stay in clear: the job spec
//!   shows them already (`prefix = "studies/2024/"` keeps `studies` and `2024`;
//!   `prefix = "studies/20"` keeps `studies` only).
//! - Every other segment becomes its pseudonym: the first 10 bytes of
//!   `HMAC(key, "SourceKey" 0x00 segment)` in lower-case hex (20 digits), with the
//!   pseudonym key of the header's values in a domain of its own. The same
//!   folder gets the same pseudonym in every row and every run, so a folder's
//!   files still group together; two segments share one with odds of 2^-80.
//! - The file name's suffix stays when it is made of `.dcm`, `.dicom`, `.ima` and
//!   `.gz` (any case, as written: `a.DCM`, `a.dcm.gz`); the name before it is a
//!   segment like any other. Any other suffix is part of the name, so a file
//!   named by its UID keeps none of it.
//! - An empty segment (`a//b`) stays empty.
//!
//! The real key, which the readers need, travels sealed: AES-256-GCM under
//! `HMAC(key, "SourceKeySeal" 0x00)`, with the nonce
//! `HMAC(key, "SourceKeyNonce" 0x00 key)[..12]`, written as base64url of nonce,
//! ciphertext and tag. The nonce is derived from the key sealed, so sealing is
//! deterministic and shows no more than the name does (whether two keys are
//! equal); the tag makes a seal from another key or an altered one an error.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::deidentify::{Key, push_hex};
use crate::base::sync::lock;
use crate::discover::KeyNames;

/// File-name endings that say only that a file is DICOM (or compressed).
const KEPT_SUFFIXES: [&str; 4] = [".dcm", ".dicom", ".ima", ".gz"];
/// Bytes of a segment's HMAC its pseudonym shows.
const SEGMENT_BYTES: usize = 10;

/// The DICOM kind's disguise for object keys.
pub struct KeyPseudonyms {
    key: Key,
    /// The segments of the source's prefix.
    prefix: Vec<String>,
    seal: LessSafeKey,
    /// The folder last named: a listing mostly gives a folder's files one after
    /// another, so its segments' HMACs are computed once for them. A `Mutex`
    /// because names are made through `&self`; discovery names one key at a
    /// time, so it is never contended.
    last_folder: Mutex<Option<NamedFolder>>,
}

/// A folder (a key up to its last `/`) and its name. It holds the real folder,
/// so it has no `Debug`, and `KeyPseudonyms`' `Debug` leaves it out.
struct NamedFolder {
    folder: String,
    named: String,
    /// Where the file name's segment is (the folder's segment count), when every
    /// segment of the folder equals the prefix's there and stays in clear.
    clear_to: Option<usize>,
}

impl std::fmt::Debug for KeyPseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPseudonyms")
            .field("key", &self.key)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl KeyPseudonyms {
    pub fn new(key: Key, prefix: &str) -> Self {
        let seal_key = key.mac("SourceKeySeal", b"");
        let seal = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &seal_key).expect("AES-256 takes a 32-byte key"),
        );
        KeyPseudonyms {
            key,
            prefix: prefix.split('/').map(str::to_string).collect(),
            seal,
            last_folder: Mutex::new(None),
        }
    }

    /// The pseudonym of one folder (or of a file name without its kept suffix).
    pub fn segment(&self, segment: &str) -> String {
        let mut out = String::new();
        self.push_segment(&mut out, segment);
        out
    }

    /// The pseudonym of a file name: its stem's, and the suffix it keeps.
    pub fn file(&self, name: &str) -> String {
        let mut out = String::new();
        self.push_file(&mut out, name);
        out
    }

    /// [`Self::segment`], added to `out` (a name is built in place: one per
    /// listed object).
    fn push_segment(&self, out: &mut String, segment: &str) {
        if !segment.is_empty() {
            let mac = self.key.mac("SourceKey", segment.as_bytes());
            push_hex(out, &mac[..SEGMENT_BYTES]);
        }
    }

    /// [`Self::file`], added to `out`.
    fn push_file(&self, out: &mut String, name: &str) {
        let (stem, suffix) = split_suffix(name);
        self.push_segment(out, stem);
        out.push_str(suffix);
    }

    /// `folder` named: each segment in clear while it and those before it equal
    /// the prefix's, a pseudonym from the first that does not.
    fn name_folder(&self, folder: &str) -> NamedFolder {
        let mut named = String::with_capacity(folder.len() + 2 * SEGMENT_BYTES);
        let mut clear = true;
        let mut segments = 0;
        for (i, s) in folder.split('/').enumerate() {
            if i > 0 {
                named.push('/');
            }
            clear = clear && self.prefix.get(i).is_some_and(|p| p == s);
            if clear {
                named.push_str(s);
            } else {
                self.push_segment(&mut named, s);
            }
            segments = i + 1;
        }
        NamedFolder {
            folder: folder.to_string(),
            named,
            clear_to: clear.then_some(segments),
        }
    }
}

impl KeyNames for KeyPseudonyms {
    fn name(&self, key: &str) -> String {
        let Some((folder, file)) = key.rsplit_once('/') else {
            // A file at the top: in clear only where the prefix names it too.
            return match self.prefix.first() {
                Some(p) if p == key => key.to_string(),
                _ => self.file(key),
            };
        };
        let mut cached = lock(&self.last_folder);
        let folder = match &mut *cached {
            Some(last) if last.folder == folder => last,
            slot => slot.insert(self.name_folder(folder)),
        };
        // Built in place: a name per listed object.
        let mut named =
            String::with_capacity(folder.named.len() + 1 + file.len() + 2 * SEGMENT_BYTES);
        named.push_str(&folder.named);
        named.push('/');
        // The file name stays in clear only where the whole folder did and the
        // prefix names the file too.
        let file_in_clear = folder
            .clear_to
            .is_some_and(|at| self.prefix.get(at).is_some_and(|p| p == file));
        if file_in_clear {
            named.push_str(file);
        } else {
            self.push_file(&mut named, file);
        }
        named
    }

    fn seal(&self, key: &str) -> String {
        let derived = self.key.mac("SourceKeyNonce", key.as_bytes());
        let nonce: [u8; NONCE_LEN] = derived[..NONCE_LEN].try_into().expect("12 bytes");
        let mut sealed = key.as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .expect("AES-GCM seals a key of any length an object store allows");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    fn unseal(&self, sealed: &str) -> Result<String, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| "its sealed key is not base64url".to_string())?;
        if bytes.len() < NONCE_LEN {
            return Err("its sealed key is too short".into());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_string())?;
        let mut rest = rest.to_vec();
        let key = self
            .seal
            .open_in_place(nonce, Aad::empty(), &mut rest)
            .map_err(|_| {
                "its sealed key does not open with this run's pseudonym key (sealed with another key, or altered)"
                    .to_string()
            })?;
        String::from_utf8(key.to_vec()).map_err(|_| "its sealed key is not UTF-8".to_string())
    }
}

/// A file name's stem and the suffix it keeps (the longest ending made of
/// [`KEPT_SUFFIXES`], as written).
fn split_suffix(name: &str) -> (&str, &str) {
    let mut stem = name;
    loop {
        // An ASCII suffix matched: what is before it ends on a character boundary.
        let ends_with = |s: &str| {
            stem.len() > s.len()
                && stem.as_bytes()[stem.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
        };
        match KEPT_SUFFIXES.iter().find(|s| ends_with(s)) {
            Some(s) => stem = &stem[..stem.len() - s.len()],
            None => return (stem, &name[stem.len()..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str) -> KeyPseudonyms {
        KeyPseudonyms::new(Key::new("0123456789abcdef-test-key").unwrap(), prefix)
    }

    #[test]
    fn every_segment_after_the_prefix_is_a_pseudonym_and_the_dicom_suffix_stays() {
        let n = names("studies/2024/");
        let name = n.name("studies/2024/YAMADA_TARO_0012345/ACC778/12345678.DCM");
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(&parts[..2], ["studies", "2024"]);
        assert_eq!(parts.len(), 5);
        for p in &parts[2..4] {
            assert!(
                p.len() == 20 && p.chars().all(|c| c.is_ascii_hexdigit()),
                "{p}"
            );
        }
        assert!(parts[4].ends_with(".DCM") && parts[4].len() == 24);
        assert!(!name.contains("YAMADA") && !name.contains("ACC778") && !name.contains("1234"));
        // The same folder, the same pseudonym, in every key and every run.
        let other = names("studies/2024/").name("studies/2024/YAMADA_TARO_0012345/x.dcm");
        assert_eq!(other.split('/').nth(2), Some(parts[2]));
        // Only whole segments of the prefix stay.
        let partial = names("studies/20").name("studies/2024/a.dcm");
        assert!(partial.starts_with("studies/") && !partial.contains("2024"));
    }

    #[test]
    fn a_name_is_the_documented_hmac() {
        // Python's `hmac` of the rules in the module's doc, not this code:
        // hmac.new(key, b"SourceKey\x00" + segment, sha256).hexdigest()[:20].
        assert_eq!(
            names("studies/").name("studies/YAMADA_TARO_0012345/12345678.DCM"),
            "studies/fd841dc6b2146a6e1a71/49bfb24a3abea46051bc.DCM"
        );
    }

    #[test]
    fn suffixes_stay_only_when_they_say_dicom_or_compressed() {
        let n = names("");
        assert!(n.name("a.dcm.gz").ends_with(".dcm.gz"));
        assert!(n.name("a.IMA").ends_with(".IMA"));
        assert!(n.name("a.dicom").ends_with(".dicom"));
        let uid = n.name("1.2.840.113619.2.55.3.604688119.971.1.dcm");
        assert_eq!(uid.len(), 24, "{uid}");
        assert!(!n.name("report.pdf").contains("pdf"));
        assert_eq!(n.name("no_suffix").len(), 20);
        assert_eq!(n.name("a//b.dcm").split('/').nth(1), Some(""));
        assert_ne!(n.name("a.dcm"), n.name("b.dcm"));
        assert_ne!(n.name("x/a.dcm"), n.name("y/a.dcm"));
    }

    #[test]
    fn a_sealed_key_opens_with_the_same_key_only() {
        let n = names("");
        let key = "患者/山田 太郎/0012345.dcm";
        let sealed = n.seal(key);
        assert!(!sealed.contains("0012345"));
        assert_eq!(n.unseal(&sealed).unwrap(), key);
        assert_eq!(n.seal(key), sealed, "deterministic");
        let other = KeyPseudonyms::new(Key::new("another-key-of-16-bytes").unwrap(), "");
        assert!(other.unseal(&sealed).is_err());
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(n.unseal(&String::from_utf8(altered).unwrap()).is_err());
        assert!(n.unseal("not base64!").is_err());
    }

    /// The names as first written (segments collected, then joined; suffixes
    /// found on a lower-cased copy): the reference the in-place build is held to.
    fn name_by_parts(n: &KeyPseudonyms, key: &str) -> String {
        let split = |name: &str| -> (String, String) {
            let mut stem = name.to_string();
            loop {
                let lower = stem.to_ascii_lowercase();
                match KEPT_SUFFIXES
                    .iter()
                    .find(|s| lower.ends_with(*s) && lower.len() > s.len())
                {
                    Some(s) => stem.truncate(stem.len() - s.len()),
                    None => return (stem.clone(), name[stem.len()..].to_string()),
                }
            }
        };
        let segments: Vec<&str> = key.split('/').collect();
        let clear = segments
            .iter()
            .zip(&n.prefix)
            .take_while(|(s, p)| *s == p)
            .count();
        let last = segments.len() - 1;
        let named: Vec<String> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| match i {
                i if i < clear => s.to_string(),
                i if i == last => {
                    let (stem, suffix) = split(s);
                    format!("{}{suffix}", n.segment(&stem))
                }
                _ => n.segment(s),
            })
            .collect();
        named.join("/")
    }

    proptest::proptest! {
        /// Keys named one after another by one disguise (which keeps the last
        /// folder's name) get the names built by parts, each afresh.
        #[test]
        fn names_are_the_names_built_by_parts(
            prefix in "(a/|b/|a/b/|a/b|)",
            keys in proptest::collection::vec(
                "[ab/]{0,4}(\\.(dcm|DcM|GZ|ima|dicom|pdf)|é|\\.){0,3}",
                1..6,
            ),
        ) {
            let n = names(&prefix);
            for key in &keys {
                proptest::prop_assert_eq!(n.name(key), name_by_parts(&names(&prefix), key));
            }
        }

        /// As above, with the keys' folders drawn from a few, so that a folder
        /// named before comes back (after others, too), in clear or not.
        #[test]
        fn names_of_folders_named_before_are_the_names_built_by_parts(
            prefix in "(a/|b/|a/b/|a/b|a/b/a\\.dcm|)",
            folders in proptest::collection::vec("[ab]{0,2}(/[ab]{0,2}){0,2}", 1..4),
            files in proptest::collection::vec(
                (proptest::option::of(0..4usize), "[ab]{0,2}(\\.dcm|\\.GZ|é|\\.){0,2}"),
                1..10,
            ),
        ) {
            let n = names(&prefix);
            for (folder, file) in &files {
                let key = match folder {
                    Some(i) => format!("{}/{file}", folders[i % folders.len()]),
                    None => file.clone(),
                };
                proptest::prop_assert_eq!(n.name(&key), name_by_parts(&names(&prefix), &key));
            }
        }
    }
}
