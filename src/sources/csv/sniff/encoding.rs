//! The sample's encoding, and the sample decoded: a byte order mark decides, else
//! valid UTF-8, else UTF-16 told by its NUL bytes, else the legacy encoding whose
//! decoding looks most like text. Bytes that do not decode are written `\xNN`.

use encoding_rs::{
    BIG5, EUC_KR, Encoding, GB18030, SHIFT_JIS, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252,
};

use super::SniffError;

/// The sample as text, and how its encoding was found.
pub(super) struct Decoded {
    pub(super) encoding: &'static Encoding,
    pub(super) text: String,
    pub(super) evidence: &'static str,
    /// Byte sequences that did not decode (written `\xNN` in `text`, as the rejects
    /// row shows them).
    pub(super) malformed: usize,
    /// The lines (0-based) holding them: rejects at run time, if they are data.
    pub(super) malformed_lines: Vec<usize>,
}

/// Tried in this order when the sample is not UTF-8; on equal plausibility the
/// earlier wins. EUC-KR comes before GB18030 because Korean bytes decode as GB18030
/// to equally tidy (but wrong) Chinese, while Chinese decodes as EUC-KR to a tell-tale
/// mix of Hangul and Hanja; likewise Japanese decodes as GB18030 to tidy Chinese.
const CANDIDATES: [&Encoding; 6] = [UTF_8, SHIFT_JIS, WINDOWS_1252, EUC_KR, GB18030, BIG5];

pub(super) fn decode(head: &[u8], truncated: bool, file: &str) -> Result<Decoded, SniffError> {
    if let Some((encoding, bom)) = Encoding::for_bom(head) {
        return Ok(decode_as(
            encoding,
            &head[bom..],
            truncated,
            "a byte order mark",
        ));
    }
    if let Some(encoding) = utf16_by_nul_pattern(head) {
        let evidence = "UTF-16 without a byte order mark: every other byte is NUL";
        return Ok(decode_as(encoding, head, truncated, evidence));
    }
    if let Some(at) = memchr::memchr(0, head) {
        return Err(SniffError(format!(
            "`{file}` looks binary (a NUL byte at offset {at}) and is not UTF-16 text; \
             `naslake sniff` reads CSV text files (gzipped ones too)"
        )));
    }
    match std::str::from_utf8(head) {
        Ok(_) => return Ok(decode_as(UTF_8, head, truncated, "valid UTF-8")),
        // A sample cut in the middle of a character is still UTF-8.
        Err(e) if truncated && e.error_len().is_none() => {
            return Ok(decode_as(UTF_8, head, truncated, "valid UTF-8"));
        }
        Err(_) => {}
    }
    let evidence = "not UTF-8; of utf-8, shift_jis, windows-1252, euc-kr, gb18030 and big5 \
                    it decodes most plausibly";
    // A sequence that does not decode costs what a replacement character would.
    let score = |d: &Decoded| implausibility(&d.text) + 10 * d.malformed;
    let mut best = decode_as(CANDIDATES[0], head, truncated, evidence);
    let mut best_score = score(&best);
    for encoding in &CANDIDATES[1..] {
        let candidate = decode_as(encoding, head, truncated, evidence);
        let score = score(&candidate);
        if score < best_score {
            (best, best_score) = (candidate, score);
        }
    }
    Ok(best)
}

fn decode_as(
    encoding: &'static Encoding,
    bytes: &[u8],
    truncated: bool,
    evidence: &'static str,
) -> Decoded {
    let (mut text, mut malformed_at) = decode_escaped(encoding, bytes);
    if truncated {
        // The sample ends inside a line: drop that partial line, and with it any
        // character cut in two.
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        malformed_at.retain(|&at| at < text.len());
    }
    // The positions ascend: count line ends once, from one position to the next.
    let (mut line, mut from) = (0, 0);
    let mut malformed_lines: Vec<usize> = malformed_at
        .iter()
        .map(|&at| {
            line += memchr::memchr_iter(b'\n', &text.as_bytes()[from..at]).count();
            from = at;
            line
        })
        .collect();
    malformed_lines.dedup();
    Decoded {
        encoding,
        text,
        evidence,
        malformed: malformed_at.len(),
        malformed_lines,
    }
}

/// `bytes` decoded, with every byte of a sequence that does not decode written
/// `\xNN` (upper-case hex), the way the rejects row's `raw_line` shows it, so that
/// comments name such a value as the rejects will; and where in the text each such
/// sequence starts.
fn decode_escaped(encoding: &'static Encoding, bytes: &[u8]) -> (String, Vec<usize>) {
    use super::super::decode::{MARK, decode_all, shown};
    // The reader's own decoding: an escaped byte is MARK and two hex digits here,
    // `\xNN` (one byte more) in the text.
    let raw = decode_all(encoding, bytes);
    let marks: Vec<usize> = (raw.iter().enumerate())
        .filter(|(_, b)| **b == MARK)
        .map(|(i, _)| i)
        .collect();
    // A sequence starts at an escape that does not follow another one; in the
    // text, each escape before it moves it one byte later.
    let at = (marks.iter().enumerate())
        .filter(|&(k, &m)| k == 0 || marks[k - 1] + 3 != m)
        .map(|(k, &m)| m + k)
        .collect();
    (shown(&raw, true), at)
}

/// UTF-16 without a byte order mark: CSV text is mostly ASCII, whose UTF-16 code
/// units have a NUL high byte, so NULs fill one of the two byte positions.
fn utf16_by_nul_pattern(head: &[u8]) -> Option<&'static Encoding> {
    let sample = &head[..head.len().min(4096) & !1];
    let units = sample.len() / 2;
    if units < 2 {
        return None;
    }
    let nuls_at = |start: usize| {
        sample
            .iter()
            .skip(start)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (nuls_at(0), nuls_at(1));
    if odd * 2 > units && even * 10 < units {
        Some(UTF_16LE)
    } else if even * 2 > units && odd * 10 < units {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// What a non-ASCII character is, for judging whether a decoding is plausible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    Latin,
    GreekCyrillic,
    /// Han, kana, CJK punctuation and full-width forms: one class, because Japanese
    /// mixes them within a word.
    Cjk,
    HalfwidthKana,
    Hangul,
    Symbol,
}

/// How implausible a decoded text is; lower is better. Wrong decodings of real text
/// leave traces that right ones do not:
/// - characters that did not decode (10 each); C1 controls and private-use
///   characters (4 each), which windows-1252 gives for Shift_JIS lead bytes and the
///   CJK decoders for the user-defined rows;
/// - runs of adjacent non-ASCII characters that mix scripts, e.g. Hangul with Han
///   (Chinese read as EUC-KR) or accented letters with symbols (CJK read as
///   windows-1252), 1 per extra script; symbols inside a run and three accented
///   letters in a row count 1 more;
/// - a lone CJK, Hangul or Greek character right after an ASCII letter (`Ger楽:`
///   from `Gerät:`: Western text read as a CJK encoding), a lone symbol between ASCII
///   letters (`ƒeƒX`), a lone or punctuation-laden half-width katakana run (`[ｰC]`
///   from `[°C]`, `ｽﾃｰ｣` from Korean), 1 each.
pub(super) fn implausibility(text: &str) -> usize {
    let mut score = 0;
    let mut run: Vec<(Script, char)> = Vec::new();
    let mut before = ' ';
    for c in text.chars() {
        if c.is_ascii() {
            score += run_penalty(&run, before, c);
            run.clear();
            before = c;
            continue;
        }
        match u32::from(c) {
            0xFFFD => score += 10,
            0x80..=0x9F | 0xE000..=0xF8FF | 0xFFF0..=0xFFFF => score += 4,
            _ => run.push((script(c), c)),
        }
    }
    score + run_penalty(&run, before, ' ')
}

fn script(c: char) -> Script {
    match u32::from(c) {
        0xD7 | 0xF7 | 0x192 => Script::Symbol, // ×, ÷, ƒ
        0xC0..=0x24F => Script::Latin,
        0x370..=0x52F => Script::GreekCyrillic,
        0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Script::Hangul,
        0xFF61..=0xFF9F => Script::HalfwidthKana,
        0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFF60 | 0xFFE0..=0xFFEF | 0x20000.. => {
            Script::Cjk
        }
        _ => Script::Symbol,
    }
}

fn run_penalty(run: &[(Script, char)], before: char, after: char) -> usize {
    let Some(&(first, first_char)) = run.first() else {
        return 0;
    };
    let mut scripts: Vec<Script> = run.iter().map(|(s, _)| *s).collect();
    scripts.sort();
    scripts.dedup();
    let mut penalty = scripts.len() - 1;
    if run.len() >= 2 && scripts.contains(&Script::Symbol) {
        penalty += 1;
    }
    if run.len() >= 3 && scripts == [Script::Latin] {
        penalty += 1;
    }
    // A lone character glued to an ASCII word: Western text read as a CJK encoding
    // (`Gerät` as `Ger楽:`), CJK read as windows-1252 (`ƒeƒX`). Symbols (`m²`) and
    // accented letters are at home there.
    let after_letter = before.is_ascii_alphabetic();
    let glued = match first {
        Script::Latin => false,
        Script::Symbol => after_letter && after.is_ascii_alphabetic(),
        Script::HalfwidthKana => true,
        _ => after_letter,
    };
    if run.len() == 1 && glued {
        penalty += 1;
    }
    // Half-width punctuation (｡｢｣､･) inside a kana run, or a run that starts with a
    // sound mark (ｰﾞﾟ), which can only follow a kana.
    let kana_punct = |c: char| ('\u{FF61}'..='\u{FF65}').contains(&c);
    if first == Script::HalfwidthKana
        && (matches!(first_char, '\u{FF70}' | '\u{FF9E}' | '\u{FF9F}')
            || run.iter().skip(1).any(|(_, c)| kana_punct(*c)))
    {
        penalty += 1;
    }
    penalty
}

#[cfg(test)]
mod tests {
    use super::super::render::label;
    use super::super::test_support::{columns, csv, encode, sniffed};
    use super::*;

    #[test]
    fn windows_utf16le_with_bom_and_tabs() {
        let text = "Timestamp\tTag\tValue\tQuality\r\n2024-03-01 10:00:00.123\tFIC101\t12.5\tGood\r\n\
            2024-03-01 10:00:01.123\tFIC101\t12.75\tGood\r\n2024-03-01 10:00:02.123\tFIC101\t13\tBad\r\n";
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let (block, t) = sniffed(&bytes, "export.txt");
        let keys = csv(&t, "export");
        assert_eq!(keys["encoding"].as_str(), Some("utf-16le"), "{block}");
        assert_eq!(keys["delimiter"].as_str(), Some("\t"));
        assert_eq!(keys.len(), 2, "{block}");
        assert_eq!(
            columns(&block),
            [
                r#"name = "timestamp", type = "timestamp", timestamp_format = "iso8601", time_zone = "UTC""#,
                r#"name = "tag", type = "string""#,
                r#"name = "value", type = "double""#,
                r#"name = "quality", type = "string""#,
            ]
        );
        // The same bytes without the byte order mark.
        let (block, t) = sniffed(&bytes[2..], "export.txt");
        assert_eq!(
            csv(&t, "export")["encoding"].as_str(),
            Some("utf-16le"),
            "{block}"
        );
    }

    #[test]
    fn cjk_legacy_encodings_are_told_apart() {
        let cases: [(&'static Encoding, &str, &str); 3] = [
            (GB18030, "时间,温度(°C),湿度(%),电压(V),状态", "正常,报警"),
            (EUC_KR, "시간,온도(°C),습도(%),전압(V),상태", "정상,경고"),
            (BIG5, "時間,溫度(°C),濕度(%),電壓(V),狀態", "正常,警報"),
        ];
        for (encoding, header, states) in cases {
            let (ok, alarm) = states.split_once(',').expect("two states");
            let text = format!(
                "{header}\n2024-03-01 10:00:00,21.5,45,3.3,{ok}\n2024-03-01 10:00:01,21.6,45,3.3,{alarm}\n\
                 2024-03-01 10:00:02,21.6,46,3.2,{ok}\n"
            );
            let (block, t) = sniffed(&encode(encoding, &text), "x.csv");
            assert_eq!(
                csv(&t, "x")["encoding"].as_str(),
                Some(label(encoding).as_str()),
                "{block}"
            );
            assert!(
                block.contains(&format!(
                    "header = \"{}\"",
                    header.split(',').nth(1).unwrap_or_default()
                )),
                "{block}"
            );
        }
    }

    #[test]
    fn short_headers_decode_in_their_own_encoding() {
        let cases: &[(&'static Encoding, &str)] = &[
            (WINDOWS_1252, "Gerät:;Testo"),
            (WINDOWS_1252, "Température;Humidité;Débit"),
            (WINDOWS_1252, "Größe;Maß"),
            (WINDOWS_1252, "Temp [°C];Feuchte [%]"),
            (WINDOWS_1252, "µm;mm²"),
            (SHIFT_JIS, "度,値"),
            (SHIFT_JIS, "ｵﾝﾄﾞ,ｼﾂﾄﾞ"),
            (SHIFT_JIS, "テスト,センサー"),
            (SHIFT_JIS, "pH値,温度(℃)"),
            (EUC_KR, "시간,온도"),
            (GB18030, "日期,时间"),
            (BIG5, "時間,溫度"),
        ];
        for (encoding, header) in cases {
            let bytes = encode(encoding, &format!("{header}\n1,2\n"));
            let chosen = decode(&bytes, false, "x").map(|d| d.encoding);
            assert_eq!(chosen, Ok(*encoding), "{header}");
        }
    }

    #[test]
    fn bytes_that_do_not_decode_are_shown_as_the_rejects_show_them() {
        let (text, at) = decode_escaped(SHIFT_JIS, b"a,\x82,b\n\xa0\n");
        assert_eq!(text, "a,\\x82,b\n\\xA0\n");
        assert_eq!(at, [2, 9]);
        let d = decode_as(SHIFT_JIS, b"1\n2,\x82\n3\n\x82", true, "test");
        assert_eq!(d.text, "1\n2,\\x82\n3\n");
        assert_eq!((d.malformed, d.malformed_lines), (1, vec![1]));
        // GB18030 reads a byte ahead before it knows `81` starts nothing.
        assert_eq!(
            decode_escaped(GB18030, b"a\x81\x30\x81\nb").0,
            "a\\x810\\x81\nb"
        );
    }
}
