//! A file's text in its declared encoding → UTF-8 for the reader, with bytes that
//! do not decode kept visible instead of replaced.
//!
//! The rules:
//! - a byte order mark decides the encoding (UTF-8, UTF-16LE, UTF-16BE) whatever the
//!   source declares, and is dropped;
//! - otherwise the source's `csv.encoding` decodes the file (encoding_rs, the WHATWG
//!   Encoding Standard's decoders);
//! - a UTF-8 file with no UTF-16 byte order mark is passed through untouched: the
//!   reader and the parsers check UTF-8 themselves, line by line, at no cost to
//!   valid files;
//! - every byte of a sequence that does not decode becomes [`MARK`] followed by its
//!   value in two upper-case hex digits. `MARK` never occurs in UTF-8, so the line
//!   holding it fails the parsers' UTF-8 check and is rejected, never loaded with a
//!   replacement character; [`shown`] turns the mark back into `\xNN` for the
//!   rejects row. Line breaks are never part of such a sequence (the decoders
//!   leave ASCII bytes to the next character), so line numbers stay physical.

use std::io::{self, Read};

use encoding_rs::{DecoderResult, Encoding, UTF_8};

/// Starts the escape of a byte that does not decode (never a byte of UTF-8).
pub const MARK: u8 = 0xFF;

/// How much undecoded input is read at a time.
const INPUT_BYTES: usize = 64 << 10;

/// A file's bytes as UTF-8, and the encoding they were decoded from (`None`: the
/// file is UTF-8 and passed through as it is).
pub struct Text<'a> {
    pub reader: Box<dyn Read + 'a>,
    pub decoded_from: Option<&'static Encoding>,
}

/// Opens a file as text in `declared`, unless a byte order mark says otherwise:
/// `head` is the file's first bytes (up to four; fewer only when the file is
/// shorter), `rest` what follows them.
pub fn open<'a>(declared: &'static Encoding, head: &[u8], rest: impl Read + 'a) -> Text<'a> {
    let (encoding, bom) = Encoding::for_bom(head).unwrap_or((declared, 0));
    if encoding == UTF_8 {
        // The reader drops a UTF-8 byte order mark itself.
        return Text {
            reader: Box::new(io::Cursor::new(head.to_vec()).chain(rest)),
            decoded_from: None,
        };
    }
    let rest = io::Cursor::new(head[bom..].to_vec()).chain(rest);
    Text {
        reader: Box::new(Transcoder::new(encoding, rest)),
        decoded_from: Some(encoding),
    }
}

/// All of `bytes` decoded from `encoding` (no byte order mark handling), bytes that
/// do not decode escaped as the reader escapes them (the sniffer's view of a file).
pub fn decode_all(encoding: &'static Encoding, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 3 / 2);
    Transcoder::new(encoding, bytes)
        .read_to_end(&mut out)
        .expect("reading a byte slice does not fail");
    out
}

/// Decodes a byte stream to UTF-8 as it is read.
struct Transcoder<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    /// `input[start..]` is not decoded yet.
    start: usize,
    input_done: bool,
    /// The last bytes decoded: a sequence that does not decode may have begun in
    /// an earlier read.
    recent: Vec<u8>,
    output: Vec<u8>,
    /// `output[out_start..]` is not handed out yet.
    out_start: usize,
    finished: bool,
}

/// Longest sequence a decoder reports as not decoding, plus what it read after it.
const RECENT_BYTES: usize = 16;

impl<R: Read> Transcoder<R> {
    fn new(encoding: &'static Encoding, inner: R) -> Self {
        Transcoder {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: Vec::with_capacity(INPUT_BYTES),
            start: 0,
            input_done: false,
            recent: Vec::with_capacity(2 * RECENT_BYTES),
            output: Vec::new(),
            out_start: 0,
            finished: false,
        }
    }

    /// Decodes the next stretch of input into `output`.
    fn decode_more(&mut self) -> io::Result<()> {
        if self.start == self.input.len() && !self.input_done {
            self.input.clear();
            self.start = 0;
            let n = (&mut self.inner)
                .take(INPUT_BYTES as u64)
                .read_to_end(&mut self.input)?;
            self.input_done = n == 0;
        }
        self.output.clear();
        self.out_start = 0;
        let src = &self.input[self.start..];
        let room = self
            .decoder
            .max_utf8_buffer_length_without_replacement(src.len())
            .unwrap_or(src.len() * 3 + 16)
            .max(16);
        self.output.resize(room, 0);
        let mut written_total = 0;
        let mut read_total = 0;
        loop {
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &src[read_total..],
                &mut self.output[written_total..],
                self.input_done,
            );
            remember(&mut self.recent, &src[read_total..read_total + read]);
            read_total += read;
            written_total += written;
            match result {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => {
                    let more = self.output.len() + 64;
                    self.output.resize(more, 0);
                }
                DecoderResult::Malformed(len, after) => {
                    let end = self.recent.len().saturating_sub(usize::from(after));
                    let bad_start = end.saturating_sub(usize::from(len));
                    let escapes = (end - bad_start) * 3;
                    // Room for the escapes and for decoding what is left: the
                    // buffer grows only when a run of bad bytes outgrows it.
                    let needed = written_total
                        + escapes
                        + self
                            .decoder
                            .max_utf8_buffer_length_without_replacement(src.len() - read_total)
                            .unwrap_or(3 * (src.len() - read_total) + 16);
                    if self.output.len() < needed {
                        self.output.resize(needed.max(2 * self.output.len()), 0);
                    }
                    for &b in &self.recent[bad_start..end] {
                        self.output[written_total..written_total + 3].copy_from_slice(&escape(b));
                        written_total += 3;
                    }
                }
            }
        }
        self.output.truncate(written_total);
        self.start += read_total;
        if self.input_done && self.start == self.input.len() {
            self.finished = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.output.len() {
            if self.finished {
                return Ok(0);
            }
            self.decode_more()?;
        }
        let n = buf.len().min(self.output.len() - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

/// Keeps the last [`RECENT_BYTES`] of what was decoded.
fn remember(recent: &mut Vec<u8>, bytes: &[u8]) {
    let keep = &bytes[bytes.len().saturating_sub(RECENT_BYTES)..];
    recent.extend_from_slice(keep);
    if recent.len() > RECENT_BYTES {
        recent.drain(..recent.len() - RECENT_BYTES);
    }
}

fn escape(b: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [MARK, HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]
}

/// A raw line as a rejects row shows it: valid UTF-8 as it is, every other byte as
/// `\xNN`, and in a decoded file every escaped byte ([`MARK`]`NN`) as `\xNN` too.
pub fn shown(raw: &[u8], decoded: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
            if decoded && b == MARK {
                // The two hex digits that follow are the original byte's value.
                out.truncate(out.len() - 4);
                out.push_str("\\x");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(label: &str, bytes: &[u8], read_size: usize) -> (String, Option<&'static str>) {
        let cut = bytes.len().min(4);
        let text = open(
            Encoding::for_label(label.as_bytes()).unwrap(),
            &bytes[..cut],
            &bytes[cut..],
        );
        let from = text.decoded_from.map(|e| e.name());
        let mut reader = text.reader;
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_size];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (shown(&out, from.is_some()), from)
    }

    #[test]
    fn legacy_encodings_decode_and_bad_bytes_stay_visible() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("温度,1\n");
        assert_eq!(
            decode("shift_jis", &sjis, 7),
            ("温度,1\n".into(), Some("Shift_JIS"))
        );
        let (text, _) = decode("shift_jis", b"a\xa0b\n\x82\nc", 3);
        assert_eq!(text, "a\\xA0b\n\\x82\nc");
        let (text, _) = decode("windows-1252", b"caf\xe9;1\n", 2);
        assert_eq!(text, "café;1\n");
        // GB18030 reads ahead before it knows `81` does not start a character; the
        // `0` it read is still decoded, in its place.
        let (text, _) = decode("gb18030", b"a\x81\x30\x81\nb", 1);
        assert_eq!(text, "a\\x810\\x81\nb");
    }

    #[test]
    fn a_byte_order_mark_decides() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a\tb\n".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(
            decode("utf-8", &utf16, 5),
            ("a\tb\n".into(), Some("UTF-16LE"))
        );
        // A UTF-8 mark in a file declared Shift_JIS: passed through as UTF-8.
        assert_eq!(
            decode("shift_jis", "\u{feff}é".as_bytes(), 5),
            ("\u{feff}é".into(), None)
        );
        // An unpaired surrogate, then the line break (which stays).
        let bad = [0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'\n', 0, b'b', 0];
        assert_eq!(decode("utf-16le", &bad, 3).0, "a\\x00\\xD8\nb");
    }

    #[test]
    fn shown_marks_invalid_utf8_bytes() {
        assert_eq!(shown(b"temp\xe9rature", false), "temp\\xE9rature");
        assert_eq!(shown("ok é".as_bytes(), false), "ok é");
        assert_eq!(shown(b"\xffA0", false), "\\xFFA0");
        assert_eq!(shown(b"\xffA0", true), "\\xA0");
    }
}
