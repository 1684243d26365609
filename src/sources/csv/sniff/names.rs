//! The names the block gives: snake_case ASCII column names (Latin letters with
//! diacritics folded, each name once, no lineage column's name) and the source name.

/// snake_case ASCII names ([`snake_case`]); `col_N` for a header without a letter or
/// digit it can keep, `c_` before a leading digit, the lineage columns' names
/// (`source_key`, `line_number`) and duplicates renamed.
pub(super) fn column_names(headers: &[String], has_header: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let mut name = if has_header {
            snake_case(header)
        } else {
            String::new()
        };
        if name.is_empty() {
            name = format!("col_{}", i + 1);
        } else if name.starts_with(|c: char| c.is_ascii_digit()) {
            name = format!("c_{name}");
        }
        if name == "source_key" || name == "line_number" {
            name = unique(format!("{name}_1"), &names);
        } else if names.contains(&name) {
            name = unique(format!("col_{}", i + 1), &names);
        }
        names.push(name);
    }
    names
}

/// Lower-case ASCII letters and digits, every other run one `_`; Latin letters with
/// diacritics folded to ASCII first (`Öltemperatur °C` → `oltemperatur_c`).
pub(super) fn snake_case(text: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in text.chars() {
        let folded = fold_latin(c);
        if !c.is_ascii_alphanumeric() && folded.is_none() {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        match folded {
            Some(letters) => out.push_str(letters),
            None => out.push(c.to_ascii_lowercase()),
        }
    }
    // Athena allows 255; names longer than this are unreadable anyway.
    out.truncate(64);
    out.trim_end_matches('_').to_owned()
}

/// U+00C0–U+00FF in lower-case ASCII, one entry per code point (`-`: × and ÷ are
/// no letters): the base letter of Unicode's decomposition (NFKD) where there is
/// one, else the usual transliteration (Æ ae, Ð d, Ø o, Þ th, ß ss).
const LATIN_1_FOLDED: &str = "a a a a a a ae c e e e e i i i i d n o o o o o - o u u u u y th ss \
                              a a a a a a ae c e e e e i i i i d n o o o o o - o u u u u y th y";

/// U+0100–U+017F (Latin Extended-A: Central and Northern Europe, Turkish, Baltic)
/// likewise (Đ d, Ħ h, ı i, Ĳ ij, ĸ k, Ł l, Ŋ n, Œ oe, Ŧ t, ſ s).
const LATIN_EXTENDED_A_FOLDED: &str = "a a a a a a c c c c c c c c d d d d e e e e e e e e e e \
    g g g g g g g g h h h h i i i i i i i i i i ij ij j j k k k l l l l l l l l l l \
    n n n n n n n n n o o o o o o oe oe r r r r r r s s s s s s s s t t t t t t \
    u u u u u u u u u u u u w w y y y z z z z z z s";

/// A Latin letter with a diacritic (or a Latin ligature), the micro sign or a
/// superscript digit in ASCII; `None` for any other character (names in non-Latin
/// scripts keep their ASCII parts only).
fn fold_latin(c: char) -> Option<&'static str> {
    let code = u32::from(c);
    let (table, first) = match code {
        0xC0..=0xFF => (LATIN_1_FOLDED, 0xC0),
        0x100..=0x17F => (LATIN_EXTENDED_A_FOLDED, 0x100),
        // Romanian's comma-below letters, in Latin Extended-B.
        0x218 | 0x219 => return Some("s"),
        0x21A | 0x21B => return Some("t"),
        // Units: the micro sign as `u` (`µm` → `um`), superscripts as digits (`m²`).
        0xB5 => return Some("u"),
        0xB2 => return Some("2"),
        0xB3 => return Some("3"),
        0xB9 => return Some("1"),
        _ => return None,
    };
    let index = usize::try_from(code - first).ok()?;
    table.split_whitespace().nth(index).filter(|f| *f != "-")
}

/// `name`, or `name_2`, `name_3`, … whichever is not taken.
fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}_{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(name)
}

/// `<date name>_time`, or `timestamp` when the date column has no name of its own.
pub(super) fn joined_name(names: &[String], i: usize, taken: &mut Vec<String>) -> String {
    let date = &names[i];
    let wanted = if date.starts_with("col_") {
        "timestamp".to_owned()
    } else {
        format!("{date}_time")
    };
    let others: Vec<String> = taken
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != i && *k != i + 1)
        .map(|(_, n)| n.clone())
        .collect();
    let name = if others.contains(&wanted) {
        unique(format!("col_{}", i + 1), &others)
    } else {
        wanted
    };
    taken.push(name.clone());
    name
}

/// The file stem, snake_cased (a source name is an SQL table name); `logger` when
/// nothing is left, `logger_` before a leading digit.
pub(super) fn source_name_of(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let base = base
        .strip_suffix(".gz")
        .or_else(|| base.strip_suffix(".GZ"))
        .unwrap_or(base);
    let stem = base
        .rfind('.')
        .filter(|&i| i > 0)
        .map_or(base, |i| &base[..i]);
    match snake_case(stem) {
        s if s.is_empty() => "logger".to_owned(),
        s if s.starts_with(|c: char| c.is_ascii_digit()) => format!("logger_{s}"),
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::super::render::{header_offset, suffixes_of};
    use super::*;

    #[test]
    fn names_are_snake_case_ascii_unique_and_not_lineage_columns() {
        let headers: Vec<String> = [
            "CH1 温度",
            "温度",
            "1st",
            "Source Key",
            "line_number",
            "CH1-温度",
            "a__b ",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            column_names(&headers, true),
            [
                "ch1",
                "col_2",
                "c_1st",
                "source_key_1",
                "line_number_1",
                "col_6",
                "a_b"
            ]
        );
        assert_eq!(
            source_name_of("/nas/2024/Line 3 Export.TXT.gz"),
            "line_3_export"
        );
        assert_eq!(source_name_of("2024-03.csv"), "logger_2024_03");
        assert_eq!(source_name_of("温度.csv"), "logger");
        assert_eq!(
            suffixes_of("a.TXT.gz"),
            Some(vec![".txt".into(), ".txt.gz".into()])
        );
        assert_eq!(suffixes_of("a.CSV.gz"), None);
        assert_eq!(suffixes_of("LOG001"), Some(vec![]));
        let offset = |h| header_offset(h).map(|(said, zone)| format!("{said} {zone}"));
        assert_eq!(
            offset("Date Time, GMT-05:00").as_deref(),
            Some("GMT-05:00 Etc/GMT+5")
        );
        assert_eq!(
            offset("Zeit (UTC+0100)").as_deref(),
            Some("UTC+0100 Etc/GMT-1")
        );
        assert_eq!(offset("time UTC+05:30"), None);
        assert_eq!(offset("Time"), None);
    }

    #[test]
    fn latin_letters_fold_to_ascii_in_names() {
        let headers: Vec<String> = [
            "Öltemperatur °C",
            "Größe",
            "Température",
            "Łódź",
            "Ærø",
            "Straße",
            "Şoför",
            "Maß (m²)",
            "µm",
            "Δt",
            "温度",
            "CH1 温度",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            column_names(&headers, true),
            [
                "oltemperatur_c",
                "grosse",
                "temperature",
                "lodz",
                "aero",
                "strasse",
                "sofor",
                "mass_m2",
                "um",
                "t",
                "col_11",
                "ch1"
            ]
        );
        assert_eq!(source_name_of("Prüfstand Süd.csv"), "prufstand_sud");
        // One entry per code point in each table; × and ÷ are no letters.
        assert_eq!(LATIN_1_FOLDED.split_whitespace().count(), 0x100 - 0xC0);
        assert_eq!(
            LATIN_EXTENDED_A_FOLDED.split_whitespace().count(),
            0x180 - 0x100
        );
        assert_eq!(fold_latin('×'), None);
        assert_eq!(fold_latin('ÿ'), Some("y"));
        assert_eq!(fold_latin('ž'), Some("z"));
        assert_eq!(fold_latin('ſ'), Some("s"));
    }
}
