//! Security identifiers as the directory stores them (`objectSid`, MS-DTYP
//! 2.4.2.2): a revision byte (1), the number of sub-authorities (at most 15),
//! a 48-bit identifier authority in big-endian order, then each sub-authority
//! as a little-endian u32. Shown as `S-1-5-21-…` (2.4.2.1).

/// The SID `bytes` hold, as text; `Err` says why they are none.
pub fn from_bytes(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() < 8 {
        return Err(format!(
            "{} bytes are too few for a SID (at least 8)",
            bytes.len()
        ));
    }
    if bytes[0] != 1 {
        return Err(format!("revision {} (a SID has revision 1)", bytes[0]));
    }
    let count = bytes[1] as usize;
    if count > 15 {
        return Err(format!("{count} sub-authorities (at most 15)"));
    }
    if bytes.len() != 8 + 4 * count {
        return Err(format!(
            "{} bytes for {count} sub-authorities (want {})",
            bytes.len(),
            8 + 4 * count
        ));
    }
    let authority = bytes[2..8]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = format!("S-1-{authority}");
    for chunk in bytes[8..].chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        out.push('-');
        out.push_str(&sub.to_string());
    }
    Ok(out)
}

/// A SID in text form, checked (`S-1-` then decimal numbers that fit); the
/// directory may give one as text rather than bytes.
pub fn parse_text(text: &str) -> Option<String> {
    let rest = text
        .trim()
        .strip_prefix("S-1-")
        .or_else(|| text.trim().strip_prefix("s-1-"))?;
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.is_empty() || parts.len() > 16 {
        return None;
    }
    let authority: u64 = parts[0].parse().ok().filter(|a| *a < 1 << 48)?;
    let mut out = format!("S-1-{authority}");
    for p in &parts[1..] {
        let sub: u32 = p.parse().ok()?;
        out.push('-');
        out.push_str(&sub.to_string());
    }
    Some(out)
}

/// The SID of `rid` in the domain of `sid` (a user's primary group: its own SID
/// with the last sub-authority replaced).
pub fn sibling(sid: &str, rid: u32) -> Option<String> {
    let (domain, _) = sid.rsplit_once('-')?;
    domain
        .starts_with("S-1-5-21-")
        .then(|| format!("{domain}-{rid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(text: &str) -> Vec<u8> {
        let parts: Vec<u64> = text[2..].split('-').map(|p| p.parse().unwrap()).collect();
        let mut out = vec![parts[0] as u8, (parts.len() - 2) as u8];
        out.extend_from_slice(&parts[1].to_be_bytes()[2..]);
        for s in &parts[2..] {
            out.extend_from_slice(&(*s as u32).to_le_bytes());
        }
        out
    }

    #[test]
    fn decodes_what_windows_shows() {
        for s in [
            "S-1-1-0",
            "S-1-5-11",
            "S-1-5-32-544",
            "S-1-5-21-3623811015-3361044348-30300820-1013",
            "S-1-5-21-4294967295-0-1-500",
        ] {
            assert_eq!(from_bytes(&bytes_of(s)).unwrap(), s);
            assert_eq!(parse_text(s).unwrap(), s);
        }
        // Everyone: revision 1, 1 sub-authority, authority 1, sub-authority 0.
        assert_eq!(
            from_bytes(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap(),
            "S-1-1-0"
        );
    }

    #[test]
    fn refuses_what_is_no_sid() {
        assert!(from_bytes(&[1, 2, 3]).is_err());
        assert!(from_bytes(&[2, 0, 0, 0, 0, 0, 0, 5]).is_err());
        assert!(from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5]).is_err());
        assert!(from_bytes(&[1, 16, 0, 0, 0, 0, 0, 5]).is_err());
        for t in ["S-1-", "S-2-5", "S-1-5-x", "S-1-5-4294967296", "alice"] {
            assert_eq!(parse_text(t), None, "{t}");
        }
    }

    #[test]
    fn primary_group_is_a_sibling_in_the_domain() {
        assert_eq!(
            sibling("S-1-5-21-1-2-3-1104", 513).as_deref(),
            Some("S-1-5-21-1-2-3-513")
        );
        assert_eq!(sibling("S-1-5-32-544", 513), None);
    }
}
