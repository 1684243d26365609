//! De-identification: the keyed operations of the profile (pseudonyms, UIDs, date
//! shifts), the cleaning of descriptors, and where the key comes from.
//!
//! Every keyed value is an HMAC-SHA-256 of the original under the pseudonym key,
//! with the attribute's keyword as a domain separator, so the same patient gets the
//! same pseudonym in every file and every run, and nobody without the key can
//! recompute or reverse one:
//! - a pseudonym (PatientID, AccessionNumber, StudyID) is the first 16 bytes of
//!   `HMAC(key, KEYWORD "\0" value)`, in lower-case hex;
//! - a replaced UID is `2.25.` and the first 16 bytes of `HMAC(key, "UID\0" uid)`
//!   as an unsigned decimal (PS3.5 B.2), so a UID maps to the same UID wherever it
//!   is referenced;
//! - the date shift of a patient is `1 + n mod 3650` days back, `n` the first four
//!   bytes (big-endian) of `HMAC(key, "DateShift\0" PatientID)`.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::base::redact::{REDACTED, remember};

/// The environment variable holding the pseudonym key itself.
pub const KEY_VAR: &str = "NASLAKE_PSEUDONYM_KEY";
/// The environment variable naming an AWS Secrets Manager secret that holds it.
pub const SECRET_VAR: &str = "NASLAKE_PSEUDONYM_SECRET_ID";
/// A key shorter than this is refused (an HMAC key should be as long as the hash).
pub const MIN_KEY_BYTES: usize = 16;
/// What the bundled samples declare in DeidentificationMethod (0012,0063): they
/// hold invented values only, so they may run with the published sample key.
pub const SAMPLE_MARK: &str = "naslake synthetic sample: invented values, no PHI";
/// The published key the bundled samples run with when no key is set.
const SAMPLE_KEY: &[u8] = b"naslake sample key: not a secret, only for samples/dicom";

/// The pseudonym key; its `Debug` never shows it.
#[derive(Clone)]
pub struct Key {
    /// HMAC-SHA-256 keyed once (its padded key blocks hashed): each value costs
    /// only its own blocks.
    keyed: Arc<Hmac<Sha256>>,
    /// The published sample key: only files marked [`SAMPLE_MARK`] may use it.
    pub sample: bool,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("bytes", &REDACTED)
            .field("sample", &self.sample)
            .finish()
    }
}

impl Key {
    pub fn new(value: &str) -> Result<Self, String> {
        if value.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the pseudonym key has {} bytes; it needs at least {MIN_KEY_BYTES}",
                value.len()
            ));
        }
        remember(value);
        Ok(Key {
            keyed: Arc::new(keyed(value.as_bytes())),
            sample: false,
        })
    }

    pub fn sample() -> Self {
        Key {
            keyed: Arc::new(keyed(SAMPLE_KEY)),
            sample: true,
        }
    }

    pub(super) fn mac(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = (*self.keyed).clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The keyed pseudonym of an identifier (32 hex digits).
    pub fn pseudonym(&self, keyword: &str, value: &str) -> String {
        hex(&self.mac(keyword, value.as_bytes())[..16])
    }

    /// The `2.25.` UID that replaces `uid`.
    pub fn uid(&self, uid: &str) -> String {
        let mac = self.mac("UID", uid.as_bytes());
        let n = u128::from_be_bytes(mac[..16].try_into().expect("16 bytes"));
        format!("2.25.{n}")
    }

    /// Days every date of this patient moves back (1 to 3650).
    pub fn date_shift_days(&self, patient_id: &str) -> i32 {
        let mac = self.mac("DateShift", patient_id.as_bytes());
        let n = u32::from_be_bytes(mac[..4].try_into().expect("4 bytes"));
        1 + (n % 3650) as i32
    }
}

/// Bytes in lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// [`hex`], added to `out`.
pub(super) fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// The key from the environment: the key itself, or the Secrets Manager secret
/// that holds it (fetched by the caller). `Ok(None)` when neither is set.
pub enum KeySource {
    Value(String),
    Secret(String),
}

pub fn key_source() -> Result<Option<KeySource>, String> {
    let value = std::env::var(KEY_VAR).ok().filter(|v| !v.is_empty());
    let secret = std::env::var(SECRET_VAR).ok().filter(|v| !v.is_empty());
    match (value, secret) {
        (Some(_), Some(_)) => Err(format!("set {KEY_VAR} or {SECRET_VAR}, not both")),
        (Some(v), None) => Ok(Some(KeySource::Value(v))),
        (None, Some(id)) => Ok(Some(KeySource::Secret(id))),
        (None, None) => Ok(None),
    }
}

/// The pseudonym key held by a Secrets Manager secret.
pub async fn fetch_secret(id: &str) -> Result<String, String> {
    crate::storage::sdk::secret_value(id, "the pseudonym key secret").await
}

/// Clean Descriptors, conservatively: a description is kept only if it holds none
/// of `identifiers` (the instance's names, IDs, dates, addresses, institution;
/// compared case-insensitively, each name component on its own) and no run of six
/// or more digits (a date, a phone number, an ID); a component of two letters
/// counts as a whole word. Else it is dropped.
pub fn clean(text: &str, identifiers: &[String]) -> Option<String> {
    let lower = text.to_lowercase();
    let digits = lower
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() >= 6);
    if digits {
        return None;
    }
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    let leaks = identifiers
        .iter()
        .flat_map(|v| v.split(['^', '=', ' ', ',', '\\']))
        .map(|part| part.trim().to_lowercase())
        .any(|part| match part.chars().count() {
            // Initials say nothing; a two-letter name (Li, Wu, Ng) is a whole word.
            0 | 1 => false,
            2 => words.contains(&part.as_str()),
            _ => lower.contains(&part),
        });
    (!leaks).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_are_stable_distinct_and_shaped_as_the_standard_wants() {
        let key = Key::new("0123456789abcdef-test-key").unwrap();
        let other = Key::new("fedcba9876543210-test-key").unwrap();
        assert_eq!(
            key.pseudonym("PatientID", "12345"),
            key.pseudonym("PatientID", "12345")
        );
        assert_ne!(
            key.pseudonym("PatientID", "12345"),
            other.pseudonym("PatientID", "12345")
        );
        assert_ne!(
            key.pseudonym("PatientID", "12345"),
            key.pseudonym("AccessionNumber", "12345")
        );
        assert_eq!(key.pseudonym("PatientID", "12345").len(), 32);
        let uid = key.uid("1.2.3.4");
        assert!(
            uid.starts_with("2.25.")
                && uid.len() <= 64
                && uid[5..].chars().all(|c| c.is_ascii_digit())
        );
        assert_eq!(uid, key.uid("1.2.3.4"));
        for id in ["", "a", "PAT-1", "very long patient identifier"] {
            assert!((1..=3650).contains(&key.date_shift_days(id)));
        }
        assert!(
            format!("{key:?}").contains(REDACTED) && !format!("{key:?}").contains("0123456789")
        );
        assert!(Key::new("short").is_err());
    }

    #[test]
    fn cleaning_drops_descriptions_holding_an_identifier() {
        let ids = vec!["Doe^Jane".to_string(), "PID-778899".to_string()];
        assert_eq!(
            clean("CT chest w/o contrast", &ids).as_deref(),
            Some("CT chest w/o contrast")
        );
        assert_eq!(clean("Follow-up for DOE", &ids), None);
        assert_eq!(clean("jane's knee", &ids), None);
        assert_eq!(clean("scan 19700101", &ids), None);
        assert_eq!(clean("id pid-778899", &ids), None);
        assert_eq!(clean("T2 axial 5mm", &ids).as_deref(), Some("T2 axial 5mm"));
        let short = vec!["Li^Wu".to_string()];
        assert_eq!(clean("knee of Li", &short), None);
        assert_eq!(clean("limb lift", &short).as_deref(), Some("limb lift"));
    }
}
