//! Credentials that must reach neither a log line nor an error nor a report.
//!
//! [`Secret`] holds one (an access key id, a secret key, a session token): its
//! `Debug` prints `"<redacted>"`, it has no `Display` and no `Serialize`, so a type
//! that holds one can derive `Debug` and stay safe. The value is read only by
//! asking for it by name, [`Secret::expose`], where it is handed to a client.

use std::fmt;

/// What a redacted value prints as.
pub const REDACTED: &str = "<redacted>";

/// A credential; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the client that signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#?}` and `{:?}` alike; a string is quoted, so print the marker plain.
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_debug_hides_the_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        for text in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", Some(&s)),
        ] {
            assert!(
                !text.contains("wJalr") && !text.contains("EXAMPLEKEY"),
                "{text}"
            );
            assert!(text.contains(REDACTED), "{text}");
        }
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    }
}
