//! LDIF content records (RFC 2849), as Active Directory's `ldifde` and
//! OpenLDAP's `ldapsearch -LLL` write a directory export.
//!
//! The rules this reader keeps:
//! - Lines end with LF or CR LF; a UTF-8 byte order mark at the start is skipped.
//! - A line that starts with one space continues the line before it (the space
//!   is dropped): values are folded at any byte, even inside a UTF-8 character.
//! - A line that starts with `#` is a comment, folded lines included.
//! - Records are separated by empty lines; `version: 1` may come before the first.
//! - A record starts with `dn:`. `name: value` is text (spaces after the colon
//!   dropped), `name:: value` is base64 (binary values, text with non-ASCII or
//!   leading spaces), `name:< URL` refers to a file and is refused: an export
//!   that makes naslake read other files is not followed.
//! - Attribute options are dropped from the name (`member;range=0-*` is
//!   `member`), and names compare without case; any other range
//!   (`member;range=0-1499`, `member;range=1500-*`) is refused, since the
//!   other values are missing.
//! - An export in UTF-16 (`ldifde -u`, with its byte order mark) is read as the
//!   same text in UTF-8 ([`utf8`]).
//! - `changetype: add` (what `ldifde` writes) is read as content; any other
//!   change record is refused, since it describes no entry.
//!
//! Anything else (a line without a colon, a continuation with nothing to
//! continue, base64 that does not decode) is an error naming the line.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One entry of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line its `dn:` is on (1-based).
    pub line: usize,
    pub dn: String,
    /// (attribute name, lower case without options; value), in file order.
    pub attrs: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// The values of attribute `name` (lower case).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.attrs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text, when it is UTF-8.
    pub fn text<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Why an export cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LdifError {
    pub line: usize,
    pub reason: String,
}

/// The records of an export, one at a time.
pub struct Records<'a> {
    lines: Lines<'a>,
    started: bool,
}

/// The export as UTF-8: one with a UTF-16 byte order mark (`ldifde -u`)
/// transcoded, any other as it is.
pub fn utf8(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom)) if encoding != encoding_rs::UTF_8 => {
            let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
            std::borrow::Cow::Owned(text.into_owned().into_bytes())
        }
        _ => std::borrow::Cow::Borrowed(bytes),
    }
}

/// Reads `bytes` as LDIF.
pub fn records(bytes: &[u8]) -> Records<'_> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    Records {
        lines: Lines {
            rest: bytes,
            number: 0,
            peeked: None,
        },
        started: false,
    }
}

/// Physical lines without their line ends, numbered.
struct Lines<'a> {
    rest: &'a [u8],
    number: usize,
    peeked: Option<(usize, &'a [u8])>,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        if let Some(p) = self.peeked.take() {
            return Some(p);
        }
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &b""[..]),
        };
        self.rest = rest;
        self.number += 1;
        Some((self.number, line.strip_suffix(b"\r").unwrap_or(line)))
    }

    fn peek(&mut self) -> Option<(usize, &'a [u8])> {
        if self.peeked.is_none() {
            self.peeked = self.next();
        }
        self.peeked
    }

    /// The next logical line (continuations joined), with the number of its
    /// first physical line; `None` at an empty line or the end.
    fn logical(&mut self) -> Result<Option<(usize, Vec<u8>)>, LdifError> {
        let Some((number, first)) = self.next() else {
            return Ok(None);
        };
        if first.is_empty() {
            return Ok(None);
        }
        if first[0] == b' ' {
            return Err(LdifError {
                line: number,
                reason: "a continuation line (starting with a space) with no line before it".into(),
            });
        }
        let mut joined = first.to_vec();
        while let Some((_, next)) = self.peek() {
            match next.first() {
                Some(b' ') => {
                    joined.extend_from_slice(&next[1..]);
                    self.peeked = None;
                }
                _ => break,
            }
        }
        Ok(Some((number, joined)))
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read().transpose()
    }
}

impl Records<'_> {
    fn read(&mut self) -> Result<Option<Record>, LdifError> {
        let mut record: Option<Record> = None;
        loop {
            let Some((number, line)) = self.lines.logical()? else {
                if record.is_some() || self.lines.peek().is_none() {
                    return Ok(record);
                }
                continue; // empty lines between records
            };
            if line[0] == b'#' {
                continue;
            }
            let (name, value) = attribute(number, &line)?;
            match &mut record {
                None if name == "version" && !self.started => {
                    if value != b"1" {
                        return Err(LdifError {
                            line: number,
                            reason: format!(
                                "LDIF version {} (naslake reads version 1)",
                                String::from_utf8_lossy(&value)
                            ),
                        });
                    }
                    self.started = true;
                }
                None if name == "dn" => {
                    self.started = true;
                    let dn = String::from_utf8(value).map_err(|_| LdifError {
                        line: number,
                        reason: "the dn is not UTF-8".into(),
                    })?;
                    record = Some(Record {
                        line: number,
                        dn,
                        attrs: Vec::new(),
                    });
                }
                None => {
                    return Err(LdifError {
                        line: number,
                        reason: format!("a record starts with `{name}:`, not `dn:`"),
                    });
                }
                Some(_) if name == "changetype" => {
                    if !value.eq_ignore_ascii_case(b"add") {
                        return Err(LdifError {
                            line: number,
                            reason: format!(
                                "a change record (changetype: {}) describes no entry: export the directory's content",
                                String::from_utf8_lossy(&value)
                            ),
                        });
                    }
                }
                Some(r) => r.attrs.push((name, value)),
            }
        }
    }
}

/// `name: value`, `name:: base64` or `name:< url`.
fn attribute(number: usize, line: &[u8]) -> Result<(String, Vec<u8>), LdifError> {
    let fail = |reason: String| LdifError {
        line: number,
        reason,
    };
    let colon = memchr::memchr(b':', line).ok_or_else(|| {
        fail(
            "a line without a colon: not `name: value` (a folded line must start with one space)"
                .into(),
        )
    })?;
    let full = std::str::from_utf8(&line[..colon])
        .ok()
        .filter(|n| {
            !n.is_empty()
                && n.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || b == b'-'
                        || b == b';'
                        || b == b'='
                        || b == b'.'
                        || b == b'*'
                })
        })
        .ok_or_else(|| {
            fail(format!(
                "`{}` is not an attribute name",
                String::from_utf8_lossy(&line[..colon])
            ))
        })?;
    let name = full.split(';').next().unwrap_or(full).to_ascii_lowercase();
    // `ldapsearch` against Active Directory gives a large attribute's first
    // 1,500 values as `member;range=0-1499` and stops: the rest is missing. Only
    // a range that holds every value (`range=0-*`) is whole.
    if let Some(range) = full.split(';').skip(1).find_map(|o| {
        o.to_ascii_lowercase()
            .strip_prefix("range=")
            .map(str::to_string)
    }) && range != "0-*"
    {
        return Err(fail(format!(
            "`{full}` is part of `{name}`'s values (the server gives a large attribute in ranges): export with ldifde, or read the directory with [ldap], which fetches every range"
        )));
    }
    let rest = &line[colon + 1..];
    let value = match rest.first() {
        Some(b':') => {
            let text: Vec<u8> = rest[1..].iter().copied().filter(|b| *b != b' ').collect();
            STANDARD
                .decode(&text)
                .map_err(|e| fail(format!("the base64 value of `{name}` does not decode: {e}")))?
        }
        Some(b'<') => {
            return Err(fail(format!(
                "the value of `{name}` refers to a URL (`:<`): naslake reads no file an export points at"
            )));
        }
        _ => {
            let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
            rest[start..].to_vec()
        }
    };
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<Record>, LdifError> {
        records(text.as_bytes()).collect()
    }

    #[test]
    fn reads_an_ldifde_export() {
        let text = "\u{feff}version: 1\r\n\r\ndn: CN=alice,OU=People,DC=corp,DC=example,DC=com\r\nchangetype: add\r\nobjectClass: top\r\nobjectClass: user\r\nobjectSid:: AQEAAAAAAAEAAAAA\r\nsAMAccountName: al\r\n ice\r\nmember;range=0-*: CN=x\r\n\r\n\r\ndn:: Q049w6lsaXNl\r\ncn:    spaced\r\n";
        let got = all(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, 3);
        assert_eq!(got[0].dn, "CN=alice,OU=People,DC=corp,DC=example,DC=com");
        assert_eq!(got[0].values("objectclass").count(), 2);
        assert_eq!(
            got[0].values("objectsid").next().unwrap(),
            &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(got[0].text("samaccountname"), Some("alice"));
        assert_eq!(got[0].text("member"), Some("CN=x"));
        assert_eq!(got[1].dn, "CN=élise");
        assert_eq!(got[1].text("cn"), Some("spaced"));
    }

    #[test]
    fn comments_and_folds_inside_characters() {
        // "é" is C3 A9: folded between its two bytes.
        let text = b"# exported\n#  folded comment\n continues\ndn: CN=a\ncn: \xC3\n \xA9\n";
        let got = records(text).collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text("cn"), Some("é"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = all("dn: CN=a\ncn: a\nbroken line\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("without a colon"), "{e}");
        assert_eq!(all(" x\n").unwrap_err().line, 1);
        assert_eq!(all("cn: a\n").unwrap_err().line, 1);
        assert!(
            all("dn: CN=a\nobjectSid:: !!!\n")
                .unwrap_err()
                .reason
                .contains("base64")
        );
        assert!(
            all("dn: CN=a\njpegPhoto:< file:///etc/passwd\n")
                .unwrap_err()
                .reason
                .contains("URL")
        );
        assert!(
            all("dn: CN=a\nchangetype: modify\n")
                .unwrap_err()
                .reason
                .contains("change record")
        );
        assert!(all("version: 2\n").is_err());
    }

    #[test]
    fn partial_ranges_are_refused_and_utf16_is_read() {
        let e = all("dn: CN=g\nmember;range=0-1499: CN=a\n").unwrap_err();
        assert!(e.reason.contains("ranges"), "{e}");
        assert!(
            all("dn: CN=g\nmember;range=1500-*: CN=a\n").is_err(),
            "values 0-1499 are missing"
        );
        assert_eq!(
            all("dn: CN=g\nmember;range=0-*: CN=a\n").unwrap()[0].text("member"),
            Some("CN=a")
        );
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "dn: CN=é\r\ncn: é\r\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let text = utf8(&utf16);
        let got: Vec<Record> = records(&text).collect::<Result<_, _>>().unwrap();
        assert_eq!((got[0].dn.as_str(), got[0].text("cn")), ("CN=é", Some("é")));
    }

    #[test]
    fn empty_export_has_no_records() {
        assert!(all("").unwrap().is_empty());
        assert!(all("\n\n# nothing\n\n").unwrap().is_empty());
    }
}
