//! Redaction: credentials that must reach neither a log line nor an error nor a
//! report, and the user-info of URLs ([`redact_url`]).
//!
//! [`Secret`] holds one (an access key id, a secret key, a session token): its
//! `Debug` prints `"<redacted>"`, it has no `Display` and no `Serialize`, so a type
//! that holds one can derive `Debug` and stay safe. The value is read only by
//! asking for it by name, [`Secret::expose`], where it is handed to a client.
//!
//! Other crates' `Debug` is not ours to change: the AWS SDK logs its credentials
//! (at info and debug) with the whole access key id. So every credential naslake
//! sees is also [`remember`]ed, and [`scrub`] (which the log writer applies to every
//! line, see [`super::logging`]) masks those values and anything shaped like an
//! AWS access key id (`AKIA…`, `ASIA…`: 20 upper-case letters and digits).

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

/// What a redacted value prints as.
pub const REDACTED: &str = "<redacted>";

/// A credential; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// A secret, also [`remember`]ed so that logs never show it.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Secret(value)
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

/// Credentials seen in this process, longest first.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Values shorter than this are not masked (they are no real AWS credential, and
/// masking every `abc` would garble the logs).
const MIN_REMEMBERED: usize = 8;

/// Notes a credential so that [`scrub`] masks it.
pub fn remember(value: &str) {
    let value = value.trim();
    if value.len() < MIN_REMEMBERED {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// The credentials of the process environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), remembered before any log line.
pub fn remember_environment() {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        if let Ok(v) = std::env::var(var) {
            remember(&v);
        }
    }
}

/// `text` with every [`remember`]ed credential and every AWS access key id
/// replaced by `<redacted>`; borrowed when there is none.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        for k in known.iter() {
            if out.contains(k.as_str()) {
                out = Cow::Owned(out.replace(k.as_str(), REDACTED));
            }
        }
    }
    if let Some(masked) = mask_key_ids(&out) {
        out = Cow::Owned(masked);
    }
    match mask_panic_messages(&out) {
        Some(masked) => Cow::Owned(masked),
        None => out,
    }
}

/// What a task's join error says of a panic, in other crates' errors too (a
/// query engine's repartition wraps its input task's): `panicked with message
/// "…"`, the message as Rust quotes it. The message may quote input data.
const PANIC_MESSAGE: &str = "panicked with message \"";
/// The same inside a JSON string (a log line), where its quotes are escaped.
const PANIC_MESSAGE_IN_JSON: &str = "panicked with message \\\"";
const PANIC_CUT: &str = "panicked (its message is not shown: it may quote input data)";

/// Text with every quoted panic message cut out (see [`PANIC_MESSAGE`]): to
/// the quote that closes it, or inside a JSON string to the end of that string.
fn mask_panic_messages(text: &str) -> Option<String> {
    let next = |t: &str| {
        [PANIC_MESSAGE, PANIC_MESSAGE_IN_JSON]
            .into_iter()
            .filter_map(|p| t.find(p).map(|at| (at, p)))
            .min()
    };
    next(text)?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, prefix)) = next(rest) {
        out.push_str(&rest[..at]);
        out.push_str(PANIC_CUT);
        let quoted = &rest[at + prefix.len()..];
        // The first quote no backslash escapes: the message's end, or (in
        // JSON, where the message's own quotes are escaped) the string's, which
        // is kept.
        let mut escaped = false;
        let end = quoted.char_indices().find_map(|(i, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes.then_some(i)
        });
        rest = match (end, prefix == PANIC_MESSAGE) {
            (Some(i), true) => &quoted[i + 1..],
            (Some(i), false) => &quoted[i..],
            // Unclosed: cut to the end of the line (the next log line stays).
            (None, _) => quoted.find('\n').map_or("", |i| &quoted[i..]),
        };
    }
    out.push_str(rest);
    Some(out)
}

/// Access key ids: `AKIA` (long-term) or `ASIA` (temporary) and 16 more upper-case
/// letters or digits, not inside a longer such word.
fn mask_key_ids(text: &str) -> Option<String> {
    const LEN: usize = 20;
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + LEN <= b.len() {
        let starts = (b[i..].starts_with(b"AKIA") || b[i..].starts_with(b"ASIA"))
            && (i == 0 || !word(b[i - 1]))
            && b[i..i + LEN].iter().all(|c| word(*c))
            && b.get(i + LEN).is_none_or(|c| !word(*c));
        if starts {
            // All ASCII, so `i` and `i + LEN` are char boundaries.
            let o = out.get_or_insert_with(String::new);
            o.push_str(&text[copied..i]);
            o.push_str(REDACTED);
            copied = i + LEN;
            i += LEN;
        } else {
            i += 1;
        }
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#?}` and `{:?}` alike; a string is quoted, so print the marker plain.
        f.write_str(REDACTED)
    }
}

/// `text` with the user-info of every URL in it (`scheme://user:password@host`)
/// replaced by `***`: `https://***@host/x`. Everything else, and any string with
/// no user-info, is returned as it is. For URLs and for messages that quote them.
///
/// The user-info is what lies between `://` and the last `@` before the path (the
/// first `/`, `?`, `#` or whitespace), as URL parsers read it; a password holding
/// a raw `@` or `:` is still hidden whole. Never panics.
pub fn redact_url(text: &str) -> Cow<'_, str> {
    const MASK: &str = "***";
    let mut out = String::new();
    // Bytes of `text` before `copied` are in `out` already (redacted).
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let authority = &text[start..];
        let end = authority
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(authority.len());
        // Every split point is an ASCII byte, so every slice is on a char boundary.
        if let Some(at) = authority[..end].rfind('@').filter(|at| *at > 0) {
            out.push_str(&text[copied..start]);
            out.push_str(MASK);
            copied = start + at;
        }
        // A `://` inside this authority ends it (at its `/`), so the next one
        // found lies past anything masked here.
        search = start;
    }
    if copied == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// True when `url` holds a user name or password (`scheme://user:password@…`).
pub fn has_user_info(url: &str) -> bool {
    matches!(redact_url(url), Cow::Owned(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    #[test]
    fn a_quoted_panic_message_is_cut_out() {
        let said = r#"Join Error caused by External error: task 7 panicked with message "no row for \"Doe^Jane\" at 3"; then more"#;
        assert_eq!(
            scrub(said),
            "Join Error caused by External error: task 7 panicked (its message is not shown: it may quote input data); then more"
        );
        let twice = r#"a panicked with message "x" b panicked with message "y\\" c"#;
        assert_eq!(
            scrub(twice),
            "a panicked (its message is not shown: it may quote input data) b panicked (its message is not shown: it may quote input data) c"
        );
        let unclosed = "task 1 panicked with message \"Doe^Jane\nthe next line";
        assert_eq!(
            scrub(unclosed),
            "task 1 panicked (its message is not shown: it may quote input data)\nthe next line",
            "cut to the end of its line"
        );
        assert_eq!(
            scrub("task 1 panicked at src/x.rs:1:2"),
            "task 1 panicked at src/x.rs:1:2"
        );
        // A log line: the error is a JSON string, the message's quotes escaped.
        let line =
            r#"{"error":"task 7 panicked with message \"no row for \\\"Doe\\\"\"","run_id":"r"}"#;
        assert_eq!(
            scrub(line),
            r#"{"error":"task 7 panicked (its message is not shown: it may quote input data)","run_id":"r"}"#
        );
    }

    #[test]
    fn redact_url_masks_user_info_only() {
        for (raw, want) in [
            ("https://user:pw@host/x", "https://***@host/x"),
            ("s3://user:hunter2-SECRET@bucket/x", "s3://***@bucket/x"),
            ("http://token@localhost:5000", "http://***@localhost:5000"),
            ("http://u:p@ss:w@rd@h:1/k?q#f", "http://***@h:1/k?q#f"),
            (
                "bad `a://u:p@h/k` and `b://v:q@g`: see c://w@x",
                "bad `a://***@h/k` and `b://***@g`: see c://***@x",
            ),
        ] {
            assert_eq!(redact_url(raw), want, "{raw}");
            assert!(has_user_info(raw));
        }
        for plain in [
            "",
            "s3://bucket/user@example.com/data",
            "s3://bucket/x?who=a@b",
            "arn:aws:s3:eu-west-1:123456789012:accesspoint/sensors",
            "s3://arn:aws:s3:eu-west-1:123456789012:accesspoint/sensors/x",
            "./local/dir@2024",
            "http://@host/x",
            "mailto:someone@example.com",
            "://",
            "a://",
        ] {
            let out = redact_url(plain);
            assert!(matches!(out, Cow::Borrowed(_)), "{plain} -> {out}");
            assert!(!has_user_info(plain), "{plain}");
        }
        assert_eq!(redact_url("ü://é@h/ö"), "ü://***@h/ö");
    }

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

    #[test]
    fn redact_scrub_masks_remembered_values_and_key_ids() {
        let _ = Secret::new("remembered-secret-value-1");
        remember("short");
        let line = "key AKIAIOSFODNN7EXAMPLE, token ASIAY34FZKBOKMUTVV7A; \
secret remembered-secret-value-1 and short; not AKIAIOSFODNN7EXAMPLEX nor XAKIAIOSFODNN7EXAMPLE \
nor AKIA123";
        let out = scrub(line);
        assert_eq!(
            out,
            "key <redacted>, token <redacted>; secret <redacted> and short; \
not AKIAIOSFODNN7EXAMPLEX nor XAKIAIOSFODNN7EXAMPLE nor AKIA123"
        );
        assert!(matches!(
            scrub("nothing to hide, ünïcödé"),
            Cow::Borrowed(_)
        ));
        assert_eq!(scrub("ü AKIAIOSFODNN7EXAMPLE"), "ü <redacted>");
    }

    proptest! {
        #[test]
        fn redact_url_never_panics(s in "\\PC{0,80}", t in "[a-z:/@?#\\\\ ]{0,40}") {
            let _ = redact_url(&s);
            let out = redact_url(&t);
            // Only user-info changes: no `@` after a `://` means nothing to do.
            if !t.contains('@') || !t.contains("://") {
                prop_assert_eq!(&out, &t);
            }
        }

        #[test]
        fn redact_url_hides_every_password(
            user in "[^/\\\\?#\\s]{0,12}",
            password in "[^/\\\\?#\\s*]{1,16}",
            host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            path in "(/[a-zA-Z0-9@:._=-]{0,10}){0,3}",
            before in "[a-z ]{0,8}",
        ) {
            // A path that itself holds `://…@` reads as a second URL with
            // user-info and is redacted too (safe, and not what this checks).
            prop_assume!(!path.contains("://"));
            let url = format!("a://{user}:{password}@{host}{path}");
            let text = format!("{before}{url} then {url}");
            let out = redact_url(&text);
            let want = format!("{before}a://***@{host}{path} then a://***@{host}{path}");
            prop_assert_eq!(out.as_ref(), want.as_str());
            let needle = format!(":{password}@");
            prop_assert!(!redact_url(&url).contains(&needle));
        }


        #[test]
        fn redact_scrub_never_panics(s in "\\PC{0,60}(AKIA[A-Z0-9]{16})?\\PC{0,10}") {
            let out = scrub(&s);
            prop_assert!(!out.contains("AKIA") || s.contains("AKIA"));
        }
    }
}
