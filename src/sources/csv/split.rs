//! Record boundaries in a CSV byte stream, found without parsing the fields.
//!
//! The reader cuts a file into chunks that end on record boundaries so that chunks
//! can be parsed on several cores at once. A newline is a boundary only outside a
//! quoted field, so the splitter follows quoting exactly as csv-core does: a quote
//! opens a quoted field only at the start of a field; inside one, a doubled quote is
//! an escaped quote and a single quote closes it; a quote in the middle of an
//! unquoted field is a literal character. When the source has a comment prefix, a
//! record whose first line starts with it is a comment line: its quotes are all
//! literal (csv-core's `comment` rule, for a prefix of any length).
//!
//! Without a comment prefix the bytes go 64 at a time ([`Splitter::scan_blocks`]):
//! every quote is taken to open or close a quoted field, so the quoted bytes are
//! the prefix XOR of the quote mask, and a block is accepted when each quote that
//! this makes an opening one stands where csv-core opens a quoted field: at a
//! field's start, or right after a closing quote (the second quote of a doubled
//! one). A block where one does not (a literal quote inside an unquoted field) is
//! scanned byte by byte, as is every record of a source with comment lines: there
//! only quotes are visited one by one (`memchr`), the dense newlines and
//! delimiters in between skipped in bulk.

use memchr::{memchr, memchr2, memrchr};

use super::marks::eq_mask;

/// Bytes per block of the fast scan.
const BLOCK: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a quoted field.
    Out,
    /// Inside a quoted field.
    In,
    /// Inside a quoted field, just after a quote: the next byte decides whether it
    /// was an escaped quote (`""`) or the closing one.
    QuoteIn,
}

/// Incremental boundary finder over a growing buffer whose start is a record start.
#[derive(Debug, Clone)]
pub struct Splitter {
    delimiter: u8,
    quote: u8,
    state: State,
    /// Everything before `scanned` has been looked at.
    scanned: usize,
    /// End (exclusive) of the last complete record seen, 0 if none.
    last_boundary: usize,
    /// The comment prefix, if the source has one.
    comment: Option<Vec<u8>>,
    /// Whether the record after `last_boundary` is a comment line, once known.
    record_is_comment: Option<bool>,
    /// `last_boundary` is where the current record starts (false once the caller
    /// dropped its start to skip a record too long to hold).
    start_known: bool,
}

impl Splitter {
    pub fn new(delimiter: u8, quote: u8) -> Self {
        Self {
            delimiter,
            quote,
            state: State::Out,
            scanned: 0,
            last_boundary: 0,
            comment: None,
            record_is_comment: None,
            start_known: true,
        }
    }

    /// Lines starting with `prefix` are comment lines (`None`: there are none).
    pub fn with_comment(mut self, prefix: Option<&[u8]>) -> Self {
        self.comment = prefix.filter(|p| !p.is_empty()).map(<[u8]>::to_vec);
        self
    }

    /// A new record starts at `at`.
    fn record_starts(&mut self, at: usize) {
        self.last_boundary = at;
        self.record_is_comment = None;
        self.start_known = true;
    }

    /// Whether a quote at `qpos` may open a quoted field: at a field's start, and
    /// not in a comment line.
    fn opens_quote(&mut self, buf: &[u8], qpos: usize) -> bool {
        if !self.at_field_start(buf, qpos) {
            return false;
        }
        let Some(prefix) = &self.comment else {
            return true;
        };
        if self.record_is_comment.is_none() && self.start_known {
            // The prefix holds no quote (the options check), so a comment's prefix
            // lies wholly before its first quote.
            self.record_is_comment = Some(buf[self.last_boundary..qpos].starts_with(prefix));
        }
        !self.record_is_comment.unwrap_or(false)
    }

    /// Scans the bytes of `buf` not yet seen; `buf` only ever grows between calls
    /// to [`Splitter::consume`].
    pub fn scan(&mut self, buf: &[u8]) {
        let mut pos = self.scanned;
        while pos < buf.len() {
            if self.comment.is_some() {
                pos = self.scan_bytes(buf, pos, buf.len());
                continue;
            }
            if self.state == State::Out {
                // Up to the next quote only newlines matter: one search finds it
                // (plain CSV has none, and then no block is looked at).
                let quote = memchr(self.quote, &buf[pos..]).map_or(buf.len(), |q| pos + q);
                if let Some(nl) = memrchr(b'\n', &buf[pos..quote]) {
                    self.record_starts(pos + nl + 1);
                }
                pos = quote;
            }
            pos = self.scan_blocks(buf, pos);
            // One block byte by byte (or the tail, shorter than a block), then
            // blocks again.
            pos = self.scan_bytes(buf, pos, (pos + BLOCK).min(buf.len()));
        }
        self.scanned = buf.len();
    }

    /// Whole blocks of `buf` from `pos` while their quotes open and close fields
    /// as csv-core's do (the module's rule); returns where it stopped, with the
    /// state as the byte-by-byte scan would leave it there. Not for a source with
    /// comment lines, whose quotes are literal in a comment.
    fn scan_blocks(&mut self, buf: &[u8], mut pos: usize) -> usize {
        // Inside a quoted field before `pos` (all ones) or not.
        let mut inside = if self.state == State::In { u64::MAX } else { 0 };
        // Whether a quote at `pos` may open a field. Just after a closing quote
        // (`QuoteIn`) a quote is the second of a doubled one: the mask rule reads
        // it as opening again, which is what it does.
        let mut may_open = pos == 0
            || self.state == State::QuoteIn
            || matches!(buf[pos - 1], b'\n' | b'\r')
            || buf[pos - 1] == self.delimiter;
        let mut last_quote = false;
        let mut moved = false;
        while let Some(block) = buf.get(pos..pos + BLOCK) {
            let block: &[u8; BLOCK] = block.try_into().expect("a slice of BLOCK bytes");
            let quotes = eq_mask(block, self.quote);
            let newlines = eq_mask(block, b'\n');
            // Bit i: inside a quoted field after byte i.
            let quoted = prefix_xor(quotes) ^ inside;
            // Quotes met outside a quoted field, which the masks make opening ones.
            let before = (quoted << 1) | (inside & 1);
            let opening = quotes & !before;
            if opening != 0 {
                let starts =
                    newlines | eq_mask(block, b'\r') | eq_mask(block, self.delimiter) | quotes;
                // A quote after a closing quote is always outside-then-opening;
                // a quote after a quote that opened is inside, so never here.
                let field_start = (starts << 1) | u64::from(may_open);
                if opening & !field_start != 0 {
                    break;
                }
            }
            let outside_newlines = newlines & !quoted;
            if outside_newlines != 0 {
                let last = BLOCK - 1 - outside_newlines.leading_zeros() as usize;
                self.record_starts(pos + last + 1);
            }
            inside = if quoted >> (BLOCK - 1) == 1 {
                u64::MAX
            } else {
                0
            };
            let end = block[BLOCK - 1];
            last_quote = end == self.quote;
            may_open = matches!(end, b'\n' | b'\r') || end == self.delimiter || last_quote;
            pos += BLOCK;
            moved = true;
            if quotes == 0 && inside == 0 {
                // Quotes are sparse here: the search for the next one skips
                // faster than blocks do.
                break;
            }
        }
        if moved {
            self.state = match (inside != 0, last_quote) {
                (true, _) => State::In,
                // The block ended on a closing quote: the next byte decides.
                (false, true) => State::QuoteIn,
                (false, false) => State::Out,
            };
        }
        pos
    }

    /// The byte-by-byte scan of `buf[pos..end]`; returns `end`.
    fn scan_bytes(&mut self, buf: &[u8], mut pos: usize, end: usize) -> usize {
        let buf = &buf[..end];
        let len = end;
        while pos < len {
            match self.state {
                State::Out => match memchr(self.quote, &buf[pos..]) {
                    None => {
                        if let Some(nl) = memrchr(b'\n', &buf[pos..]) {
                            self.record_starts(pos + nl + 1);
                        }
                        pos = len;
                    }
                    Some(q) => {
                        let qpos = pos + q;
                        if let Some(nl) = memrchr(b'\n', &buf[pos..qpos]) {
                            self.record_starts(pos + nl + 1);
                        }
                        if self.opens_quote(buf, qpos) {
                            self.state = State::In;
                        }
                        pos = qpos + 1;
                    }
                },
                State::In | State::QuoteIn => pos = self.step_quoted(buf, pos),
            }
        }
        len
    }

    /// One step inside a quoted field from `pos`; returns where scanning goes on.
    fn step_quoted(&mut self, buf: &[u8], pos: usize) -> usize {
        match self.state {
            State::In => match memchr(self.quote, &buf[pos..]) {
                None => buf.len(),
                Some(q) => {
                    self.state = State::QuoteIn;
                    pos + q + 1
                }
            },
            State::QuoteIn if buf[pos] == self.quote => {
                self.state = State::In;
                pos + 1
            }
            _ => {
                // Closing quote: re-read this byte outside the quoted field.
                self.state = State::Out;
                pos
            }
        }
    }

    /// Scans on from where the last call stopped until the first record boundary,
    /// and returns it (the end of the record, after its newline), or `None` when
    /// `buf` ends first. Skipping a long record uses this to find its true end.
    pub fn scan_to_boundary(&mut self, buf: &[u8]) -> Option<usize> {
        let mut pos = self.scanned;
        let len = buf.len();
        while pos < len {
            match self.state {
                State::Out => match memchr2(self.quote, b'\n', &buf[pos..]) {
                    None => pos = len,
                    Some(i) if buf[pos + i] == b'\n' => {
                        let end = pos + i + 1;
                        self.scanned = end;
                        self.record_starts(end);
                        return Some(end);
                    }
                    Some(i) => {
                        let qpos = pos + i;
                        if self.opens_quote(buf, qpos) {
                            self.state = State::In;
                        }
                        pos = qpos + 1;
                    }
                },
                State::In | State::QuoteIn => pos = self.step_quoted(buf, pos),
            }
        }
        self.scanned = len;
        None
    }

    /// A quote opens a quoted field only at the start of a field.
    fn at_field_start(&self, buf: &[u8], qpos: usize) -> bool {
        qpos == 0
            || buf[qpos - 1] == self.delimiter
            || buf[qpos - 1] == b'\n'
            || buf[qpos - 1] == b'\r'
    }

    /// End of the last complete record in the scanned bytes (0 if none).
    pub fn last_boundary(&self) -> usize {
        self.last_boundary
    }

    /// True when the scanned bytes end inside a quoted field.
    pub fn in_quotes(&self) -> bool {
        self.state == State::In
    }

    /// The caller removed the first `n` bytes (n ≤ last boundary) from its buffer.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.scanned);
        self.scanned -= n;
        if n > self.last_boundary {
            // The current record's start is gone; what it is stays decided.
            self.start_known = false;
        }
        self.last_boundary = self.last_boundary.saturating_sub(n);
    }

    /// Forget everything scanned: the caller re-scans its buffer from the start
    /// (after dropping a line with a stray quote, for example).
    pub fn reset(&mut self) {
        self.state = State::Out;
        self.scanned = 0;
        self.record_starts(0);
    }
}

/// Bit `i` set when an odd number of the bits `0..=i` of `x` are.
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn boundaries_by_splitter(data: &[u8], step: usize, comment: Option<u8>) -> Vec<usize> {
        let prefix = comment.map(|c| [c]);
        let s = Splitter::new(b',', b'"').with_comment(prefix.as_ref().map(|p| &p[..]));
        boundaries_in(data, step, s)
    }

    fn boundaries_in(data: &[u8], step: usize, mut s: Splitter) -> Vec<usize> {
        // Feed the data in pieces of `step` bytes, the way the reader does.
        let mut out = Vec::new();
        let mut end = 0;
        while end < data.len() {
            end = (end + step).min(data.len());
            s.scan(&data[..end]);
            if out.last() != Some(&s.last_boundary()) && s.last_boundary() > 0 {
                out.push(s.last_boundary());
            }
        }
        out
    }

    /// Every record csv-core reads from `data`, as lists of fields.
    fn records(data: &[u8], comment: Option<u8>) -> Vec<Vec<Vec<u8>>> {
        records_with(
            data,
            csv_core::ReaderBuilder::new().comment(comment).build(),
        )
    }

    fn records_with(data: &[u8], mut rdr: csv_core::Reader) -> Vec<Vec<Vec<u8>>> {
        let mut out = vec![0u8; data.len() + 1];
        let mut ends = vec![0usize; data.len() + 1];
        let (mut pos, mut result) = (0, Vec::new());
        loop {
            let (r, nin, _, nend) = rdr.read_record(&data[pos..], &mut out, &mut ends);
            pos += nin;
            match r {
                csv_core::ReadRecordResult::Record => {
                    let mut start = 0;
                    let fields = ends[..nend]
                        .iter()
                        .map(|&e| {
                            let f = out[start..e].to_vec();
                            start = e;
                            f
                        })
                        .collect();
                    result.push(fields);
                }
                csv_core::ReadRecordResult::End => return result,
                csv_core::ReadRecordResult::InputEmpty => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// A field as exporters write it: plain, or quoted with what needs quoting
    /// inside (delimiters, line breaks, doubled quotes), now and then with a
    /// quote where csv-core takes it literally.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        let inner = proptest::collection::vec(
            prop_oneof![
                4 => Just(b"a".to_vec()),
                1 => Just(b",".to_vec()),
                1 => Just(b"\n".to_vec()),
                1 => Just(b"\r\n".to_vec()),
                1 => Just(b"\"\"".to_vec()),
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat());
        prop_oneof![
            30 => inner.clone().prop_map(|v| [&b"\""[..], &v, b"\""].concat()),
            20 => proptest::collection::vec(Just(b'x'), 0..4),
            // Literal quotes: inside an unquoted field, or after a closing quote.
            1 => Just(b"12\"".to_vec()),
            1 => Just(b"\"a\"b\"".to_vec()),
        ]
    }

    /// Records of such fields, ended by `\n` or `\r\n`.
    fn quoted_csv() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            (proptest::collection::vec(field(), 1..5), any::<bool>()),
            0..40,
        )
        .prop_map(|records| {
            let mut out = Vec::new();
            for (fields, crlf) in records {
                out.extend(fields.join(&b","[..]));
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            out
        })
    }

    #[test]
    fn newlines_inside_quotes_are_not_boundaries() {
        let data = b"a,\"x\ny\",1\nb,\"he said \"\"hi\"\"\n\",2\nc,d\"e,3\n";
        let mut s = Splitter::new(b',', b'"');
        s.scan(data);
        assert_eq!(s.last_boundary(), data.len());
        let first = b"a,\"x\ny\",1\n".len();
        let mut s = Splitter::new(b',', b'"');
        s.scan(&data[..first + 3]);
        assert_eq!(s.last_boundary(), first);
    }

    /// `data` with `,` and `"` as the dialect's delimiter and quote.
    fn dialect(data: &[u8], delimiter: u8, quote: u8) -> Vec<u8> {
        data.iter()
            .map(|&b| match b {
                b',' => delimiter,
                b'"' => quote,
                other => other,
            })
            .collect()
    }

    #[test]
    fn well_formed_exports_are_scanned_block_by_block_to_the_end() {
        // Doubled quotes, CRLF, line breaks and delimiters inside quotes, and a
        // quote on each side of every block end as the line lengths drift.
        let mut data = Vec::new();
        for i in 0..200 {
            let pad = "p".repeat(i % 7);
            data.extend(format!("\"s{i}{pad}\",\"a \"\"b\"\"\",\"x,\ny\",{i},\"\"\r\n").as_bytes());
        }
        for (delimiter, quote) in [(b',', b'"'), (b';', b'\''), (b'\t', b'"')] {
            let data = dialect(&data, delimiter, quote);
            let mut s = Splitter::new(delimiter, quote);
            let whole = data.len() / BLOCK * BLOCK;
            assert_eq!(s.scan_blocks(&data, 0), whole, "every block accepted");
            let mut s = Splitter::new(delimiter, quote);
            s.scan(&data);
            assert_eq!(s.last_boundary(), data.len());
            assert!(!s.in_quotes());
        }
    }

    #[test]
    fn a_doubled_quote_across_a_block_end_stays_inside_the_field() {
        // The block ends on the first quote of `""`, and the first piece with it:
        // the next byte decides whether that quote closed the field.
        let mut data = b"\"".to_vec();
        data.extend([b'a'; BLOCK - 2]);
        data.extend(b"\"\"b\nc\",1\nd,2\n");
        let mut s = Splitter::new(b',', b'"');
        s.scan(&data[..BLOCK]);
        assert_eq!(s.last_boundary(), 0);
        s.scan(&data[..BLOCK + 4]);
        assert_eq!(
            s.last_boundary(),
            0,
            "the newline inside quotes is no boundary"
        );
        s.scan(&data);
        assert_eq!(s.last_boundary(), data.len());
        // And a literal quote ending a block (in an unquoted field) opens nothing.
        let mut data = vec![b'x'; BLOCK - 1];
        data.extend(b"\"\"\n,y\n");
        let mut s = Splitter::new(b',', b'"');
        s.scan(&data[..BLOCK]);
        s.scan(&data[..BLOCK + 2]);
        assert_eq!(
            s.last_boundary(),
            BLOCK + 2,
            "literal quotes, then a newline"
        );
        s.scan(&data);
        assert_eq!(s.last_boundary(), data.len());
    }

    /// End of the first record csv-core reads from `data`, if it ends in a newline.
    fn first_record_end(data: &[u8]) -> Option<usize> {
        let mut rdr = csv_core::ReaderBuilder::new().build();
        let mut out = vec![0u8; data.len() + 1];
        let mut ends = vec![0usize; data.len() + 1];
        let (r, nin, _, _) = rdr.read_record(data, &mut out, &mut ends);
        (r == csv_core::ReadRecordResult::Record && data[..nin].ends_with(b"\n")).then_some(nin)
    }

    proptest! {
        // The first boundary, however the bytes arrive, is where csv-core ends the
        // first record (when a newline ends it).
        #[test]
        fn first_boundary_is_where_csv_core_ends_the_first_record(
            data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n')], 0..200),
            step in 1usize..40,
        ) {
            let mut s = Splitter::new(b',', b'"');
            let mut found = None;
            let mut end = 0;
            while end < data.len() && found.is_none() {
                end = (end + step).min(data.len());
                found = s.scan_to_boundary(&data[..end]);
            }
            // csv-core skips a record that is only a newline; the splitter does not.
            if !data.starts_with(b"\n") {
                prop_assert_eq!(found, first_record_end(&data), "{:?}", String::from_utf8_lossy(&data));
            }
        }

        // Quoted exports, mostly well formed (the block scan's case), in pieces of
        // any size: every boundary is one of csv-core's, and the last one the
        // splitter reports at the end is the end of csv-core's last record.
        #[test]
        fn quoted_exports_cut_where_csv_core_does(
            data in quoted_csv(),
            step in 1usize..400,
            semicolons in any::<bool>(),
        ) {
            let (delimiter, quote) = if semicolons { (b';', b'\'') } else { (b',', b'"') };
            let data = dialect(&data, delimiter, quote);
            let rdr = || csv_core::ReaderBuilder::new().delimiter(delimiter).quote(quote).build();
            let whole = records_with(&data, rdr());
            let cuts = boundaries_in(&data, step, Splitter::new(delimiter, quote));
            for &b in &cuts {
                let mut halves = records_with(&data[..b], rdr());
                halves.extend(records_with(&data[b..], rdr()));
                prop_assert_eq!(&halves, &whole, "cut at {} in {:?}", b, String::from_utf8_lossy(&data));
            }
            if !data.is_empty() {
                prop_assert_eq!(cuts.last(), Some(&data.len()), "{:?}", String::from_utf8_lossy(&data));
            }
        }

        // Whatever the bytes and however they arrive, cutting at a boundary the
        // splitter reports and parsing both halves apart gives csv-core's records.
        // (Most blocks of these bytes hold a literal quote and are scanned byte by
        // byte; the tests above and below feed the block scan.)
        #[test]
        fn agrees_with_csv_core(
            data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'#')], 0..400),
            step in 1usize..300,
            comment in prop_oneof![Just(None), Just(Some(b'#'))],
        ) {
            // A comment line starts after a line feed; csv-core also starts one after
            // a lone carriage return, which the splitter never cuts at.
            let data: Vec<u8> = match comment {
                Some(_) => data.iter().map(|&b| if b == b'\r' { b'a' } else { b }).collect(),
                None => data,
            };
            let whole = records(&data, comment);
            for b in boundaries_by_splitter(&data, step, comment) {
                let mut halves = records(&data[..b], comment);
                halves.extend(records(&data[b..], comment));
                prop_assert_eq!(&halves, &whole, "cut at {} in {:?}", b, String::from_utf8_lossy(&data));
            }
        }
    }
}
