//! Where things are in the sample: its lines, the delimiter and the quote, the data
//! region, the header with the preamble above it and the units rows below it, the
//! comment lines; and the header cells and data rows this layout cuts out ([`Table`]).

use std::cmp::Reverse;

use super::MAX_LINES;
use super::cells::{KNOWN_NULLS, Rough, rough, split_line};

/// Lines with another field count allowed at the end of the sample (a footer) and,
/// with [`BRIDGE`] data lines above them, inside the data (a glitch).
const MAX_GAP: usize = 2;

const BRIDGE: usize = 5;

/// Units rows after a header, at most.
const MAX_UNITS_ROWS: usize = 2;

/// Delimiters tried, in the order preferred when two explain the sample equally well:
/// the comma last, because it is the one that also occurs inside values (decimal
/// commas) and so can look consistent by accident.
const DELIMITERS: [u8; 4] = [b'\t', b';', b'|', b','];

/// The sample's physical lines without their line ends, at most [`MAX_LINES`], and
/// whether the sample had more.
pub(super) fn sample_lines(text: &str) -> (Vec<&str>, bool) {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return (Vec::new(), false);
    }
    let mut all = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let lines: Vec<&str> = all.by_ref().take(MAX_LINES).collect();
    (lines, all.next().is_some())
}

/// Where things are in the sample, by physical line index (0 = the file's first line).
pub(super) struct Layout {
    pub(super) delimiter: u8,
    pub(super) quote: u8,
    /// Set when comment lines occur after the header, where only `csv.comment` skips them.
    pub(super) comment: Option<&'static str>,
    pub(super) header: Option<usize>,
    /// Physical lines before the header (before the first data line without one),
    /// less the comment lines right above it when `comment` is set.
    pub(super) skip_lines: usize,
    /// Physical lines from the header to the last units row, 0 without units rows.
    pub(super) skip_after_header: usize,
    /// The data lines sampled.
    pub(super) data: Vec<usize>,
    /// Lines at the end that break the data's field count.
    pub(super) footer: usize,
    /// Lines inside the data that do not fit it (another field count, a glitch).
    pub(super) misfits: usize,
    /// Lines inside the data that repeat the header (a logger restart).
    pub(super) repeated_header: Vec<usize>,
}

/// The lines with the data's field count at the end of the sample (the data region).
struct Run {
    lines: Vec<usize>,
    fields: usize,
    footer: usize,
    /// Lines with another field count inside the run, left out of `lines`.
    stepped_over: usize,
}

/// The layout of the sample, `None` when no two lines share a field count above 1.
pub(super) fn find_layout(lines: &[&str]) -> Option<Layout> {
    let comment = comment_candidate(lines);
    let takes_part: Vec<bool> = lines
        .iter()
        .map(|l| !l.trim().is_empty() && !comment.is_some_and(|c| l.starts_with(c)))
        .collect();
    let quote = choose_quote(lines);
    let (delimiter, mut run) = choose_delimiter(lines, &takes_part, quote)?;
    let cells = |i: usize| split_line(lines[i], delimiter, quote);
    let mut region = Region::read(&run, &takes_part, &cells);
    if let Some(first) = region.header.and_then(|h| first_copy(lines, h)) {
        extend_run(&mut run, first, &takes_part, &cells);
        region = Region::read(&run, &takes_part, &cells);
    }
    let Region {
        rows,
        kinds,
        header,
        data_from,
    } = region;
    let first_data = *run.lines.get(data_from)?;
    let (data, misfits): (Vec<(usize, &Vec<String>)>, Vec<_>) = run.lines[data_from..]
        .iter()
        .copied()
        .zip(&rows[data_from..])
        .partition(|(_, r)| fits_data(r, &kinds));
    let data: Vec<usize> = data.into_iter().map(|(i, _)| i).collect();
    if data.is_empty() {
        return None;
    }
    let (repeated_header, misfits): (Vec<usize>, Vec<usize>) = misfits
        .into_iter()
        .map(|(i, _)| i)
        .partition(|&i| header.is_some_and(|h| lines[i].trim() == lines[h].trim()));
    let skip_after_header = header.map_or(0, |h| {
        let last_units = (h + 1..first_data).rev().find(|&i| takes_part[i]);
        last_units.map_or(0, |u| u - h)
    });
    let header_at = header.unwrap_or(first_data);
    let comment = comment.filter(|c| lines[header_at..].iter().any(|l| l.starts_with(c)));
    Some(Layout {
        delimiter,
        quote,
        comment,
        header,
        skip_lines: preamble_to_skip(&lines[..header_at], comment),
        skip_after_header,
        data,
        footer: run.footer,
        misfits: run.stepped_over + misfits.len(),
        repeated_header,
    })
}

/// A data region cut into header, units rows and data.
struct Region {
    /// The cells of each line of the run.
    rows: Vec<Vec<String>>,
    /// The rough kind of each column, from the second half of the run.
    kinds: Vec<Rough>,
    header: Option<usize>,
    /// The index in the run of the first data line.
    data_from: usize,
}

impl Region {
    fn read(run: &Run, takes_part: &[bool], cells: &dyn Fn(usize) -> Vec<String>) -> Self {
        let rows: Vec<Vec<String>> = run.lines.iter().map(|&i| cells(i)).collect();
        let kinds = column_kinds(&rows[rows.len() / 2..], run.fields);
        let (header, data_from) = place_header(run, &rows, &kinds, takes_part, cells);
        Region {
            rows,
            kinds,
            header,
            data_from,
        }
    }
}

/// The first line with the text of line `h`, when that is an earlier one: a logger
/// that restarts writes its preamble and header again, and the data region, read
/// up from the end, then starts at the last copy. The first is the file's header.
fn first_copy(lines: &[&str], h: usize) -> Option<usize> {
    lines[..h].iter().position(|l| l.trim() == lines[h].trim())
}

/// Makes `run` start at line `first`: the lines from there to the run that take
/// part join it when they have its field count, and are stepped over otherwise
/// (a repeated preamble: rejects at run time).
fn extend_run(
    run: &mut Run,
    first: usize,
    takes_part: &[bool],
    cells: &dyn Fn(usize) -> Vec<String>,
) {
    let start = run.lines[0];
    let (joining, stepped): (Vec<usize>, Vec<usize>) = (first..start)
        .filter(|&i| takes_part[i])
        .partition(|&i| cells(i).len() == run.fields);
    run.stepped_over += stepped.len();
    run.lines.splice(0..0, joining);
}

/// `skip_lines`: the lines before the header, except that with a `comment` prefix
/// the comment lines right above the header need no counting (the reader skips
/// comment lines before the header, after `skip_lines`).
fn preamble_to_skip(preamble: &[&str], comment: Option<&str>) -> usize {
    let Some(prefix) = comment else {
        return preamble.len();
    };
    preamble
        .iter()
        .rposition(|l| !l.starts_with(prefix))
        .map_or(0, |i| i + 1)
}

/// The delimiter whose data region is longest (then: more fields, then the order
/// of [`DELIMITERS`]), and that region.
fn choose_delimiter(lines: &[&str], takes_part: &[bool], quote: u8) -> Option<(u8, Run)> {
    DELIMITERS
        .iter()
        .enumerate()
        .filter_map(|(rank, &d)| {
            let counts: Vec<Option<usize>> = lines
                .iter()
                .zip(takes_part)
                .map(|(l, &part)| part.then(|| split_line(l, d, quote).len()))
                .collect();
            data_run(&counts).map(|run| (rank, d, run))
        })
        .max_by_key(|(rank, _, run)| (run.lines.len(), run.fields, Reverse(*rank)))
        .map(|(_, d, run)| (d, run))
}

/// The header line (`None` when the file has none) and the index in `run` of the
/// first data line. The region's leading lines that do not fit the column `kinds` are
/// the header and its units rows; more than three, and the first are preamble that
/// happens to have the data's field count. A region that starts with data may have
/// its header just above it.
fn place_header(
    run: &Run,
    rows: &[Vec<String>],
    kinds: &[Rough],
    takes_part: &[bool],
    cells: &dyn Fn(usize) -> Vec<String>,
) -> (Option<usize>, usize) {
    // A row of empty cells right after the header (`;;`) is a units row without
    // units, not a record of NULLs.
    let not_data = rows
        .iter()
        .enumerate()
        .take_while(|(k, r)| !fits_data(r, kinds) || (*k > 0 && r.iter().all(String::is_empty)))
        .count();
    // At least one line of the region is data, whatever the kinds say.
    let not_data = not_data.min(rows.len() - 1);
    if not_data > 0 {
        let first = not_data.saturating_sub(1 + MAX_UNITS_ROWS);
        let h = (first..not_data)
            .find(|&k| looks_like_header(&rows[k]))
            .unwrap_or(first);
        return (Some(run.lines[h]), not_data);
    }
    match header_above(takes_part, run.lines[0], cells) {
        Some(h) => (Some(h), 0),
        // All-text columns: the header looks like data, take the first line.
        None if kinds.iter().all(|k| *k == Rough::Text) => (Some(run.lines[0]), 1),
        None => (None, 0),
    }
}

/// `#` or `//` when some lines start with it, but fewer than half (more would be
/// data that happens to start so).
fn comment_candidate(lines: &[&str]) -> Option<&'static str> {
    let non_blank = lines.iter().filter(|l| !l.trim().is_empty()).count();
    ["#", "//"]
        .into_iter()
        .map(|p| (p, lines.iter().filter(|l| l.starts_with(p)).count()))
        .filter(|&(_, n)| n > 0 && n * 2 < non_blank)
        .max_by_key(|&(_, n)| n)
        .map(|(p, _)| p)
}

/// `"`, unless it never occurs and at least two lines have fields wrapped in `'`.
fn choose_quote(lines: &[&str]) -> u8 {
    if lines.iter().any(|l| l.contains('"')) {
        return b'"';
    }
    let wrapped = |l: &&&str| {
        let l = l.trim();
        l.len() >= 2 && l.starts_with('\'') && l.ends_with('\'')
            || DELIMITERS
                .iter()
                .any(|&d| l.contains(&format!("{}'", d as char)))
    };
    if lines.iter().filter(wrapped).count() >= 2 {
        b'\''
    } else {
        b'"'
    }
}

/// The data region, read upwards from the last line that takes part (`Some`): the
/// lines with its field count (> 1). A stretch of up to [`MAX_GAP`] lines with
/// another count is stepped over when [`BRIDGE`] lines with the count lie right
/// above it (a glitch inside the data; a preamble has no data above it); up to
/// [`MAX_GAP`] lines at the very end may be a footer. The longest region wins.
fn data_run(counts: &[Option<usize>]) -> Option<Run> {
    let counted: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .collect();
    if counted.is_empty() {
        return None;
    }
    let mut best: Option<Run> = None;
    for footer in 0..=MAX_GAP.min(counted.len().saturating_sub(1)) {
        let end = counted.len() - footer;
        let fields = counted[end - 1].1;
        let (mut lines, mut stepped_over) = (Vec::new(), 0);
        let mut k = end;
        while fields > 1 && k > 0 {
            let gap = counted[..k]
                .iter()
                .rev()
                .take_while(|(_, c)| *c != fields)
                .count();
            let above = counted[..k - gap].iter().rev().take(BRIDGE);
            if gap > 0 && (gap > MAX_GAP || above.filter(|(_, c)| *c == fields).count() < BRIDGE) {
                break;
            }
            stepped_over += gap;
            k -= gap;
            lines.push(counted[k - 1].0);
            k -= 1;
        }
        lines.reverse();
        if lines.len() >= 2 && best.as_ref().is_none_or(|b| lines.len() > b.lines.len()) {
            best = Some(Run {
                lines,
                fields,
                footer,
                stepped_over,
            });
        }
    }
    best
}

/// A header just above a data region that starts with data: among the three lines
/// that take part above it (units rows may lie between, with another field count),
/// the widest that looks like a header, the upper one on ties.
fn header_above(
    takes_part: &[bool],
    first_data: usize,
    cells: &dyn Fn(usize) -> Vec<String>,
) -> Option<usize> {
    (0..first_data)
        .rev()
        .filter(|&i| takes_part[i])
        .take(1 + MAX_UNITS_ROWS)
        .map(|i| (i, cells(i)))
        .filter(|(_, c)| c.len() > 1 && looks_like_header(c))
        .max_by_key(|(i, c)| (c.len(), Reverse(*i)))
        .map(|(i, _)| i)
}

/// Each column's most frequent rough kind among `rows` (known NULL markers and empty
/// cells left out; ties go to the non-text kind); `Text` when nothing tells.
fn column_kinds(rows: &[Vec<String>], fields: usize) -> Vec<Rough> {
    const KINDS: [Rough; 4] = [Rough::Number, Rough::Temporal, Rough::Boolean, Rough::Text];
    (0..fields)
        .map(|i| {
            let mut counts = [0usize; 4];
            for cell in rows.iter().filter_map(|r| r.get(i)) {
                if let Some(k) = KINDS.iter().position(|k| *k == rough(cell))
                    && !KNOWN_NULLS.contains(&cell.as_str())
                {
                    counts[k] += 1;
                }
            }
            let best = (0..4).max_by_key(|&k| (counts[k], Reverse(k))).unwrap_or(3);
            if counts[best] == 0 {
                Rough::Text
            } else {
                KINDS[best]
            }
        })
        .collect()
}

/// A line is data unless more of its cells in typed columns misfit than fit.
fn fits_data(cells: &[String], kinds: &[Rough]) -> bool {
    let (mut fit, mut misfit) = (0, 0);
    for (cell, kind) in cells.iter().zip(kinds) {
        if *kind == Rough::Text || cell.is_empty() {
            continue;
        }
        if rough(cell) == *kind || KNOWN_NULLS.contains(&cell.as_str()) {
            fit += 1;
        } else {
            misfit += 1;
        }
    }
    misfit <= fit
}

/// More text cells than numbers, times and booleans.
fn looks_like_header(cells: &[String]) -> bool {
    let text = cells.iter().filter(|c| rough(c) == Rough::Text).count();
    let other = cells
        .iter()
        .filter(|c| !matches!(rough(c), Rough::Text | Rough::Empty))
        .count();
    text > other
}

/// The header cells (none without a header line) and the data rows, cut by the layout.
pub(super) struct Table {
    pub(super) header: Vec<String>,
    pub(super) rows: Vec<Vec<String>>,
    /// Each row's line in the file (0-based).
    pub(super) lines: Vec<usize>,
    pub(super) fields: usize,
}

impl Table {
    pub(super) fn read(lines: &[&str], layout: &Layout) -> Self {
        let split = |i: usize| split_line(lines[i], layout.delimiter, layout.quote);
        let rows: Vec<Vec<String>> = layout.data.iter().map(|&i| split(i)).collect();
        let fields = rows.first().map_or(0, Vec::len);
        let header = layout.header.map(split).unwrap_or_default();
        Table {
            header,
            rows,
            lines: layout.data.clone(),
            fields,
        }
    }

    /// The cells of column `i`, each with its line.
    pub(super) fn column(&self, i: usize) -> impl Iterator<Item = (usize, &str)> {
        self.rows
            .iter()
            .zip(&self.lines)
            .filter_map(move |(r, &line)| Some((line, r.get(i)?.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::sniff;
    use super::super::test_support::{columns, comments, csv, csv_has, encode, sniffed};
    use encoding_rs::SHIFT_JIS;
    use toml::{Table, Value};

    #[test]
    fn comments_after_the_header_set_comment() {
        let text = "# exported by logger 7\nts,v\n2024-03-01 10:00:00,1\n# power cut\n2024-03-01 10:00:01,2\n2024-03-01 10:00:02,3\n";
        let (block, t) = sniffed(text.as_bytes(), "c.csv");
        assert_eq!(csv(&t, "c")["comment"].as_str(), Some("#"), "{block}");
        // The reader skips the comment line above the header: no `skip_lines`.
        assert!(!csv(&t, "c").contains_key("skip_lines"), "{block}");
        // Only before the header: they are preamble lines.
        let text = "# exported by logger 7\nts,v\n2024-03-01 10:00:00,1\n2024-03-01 10:00:01,2\n";
        let (block, t) = sniffed(text.as_bytes(), "c.csv");
        assert!(!csv(&t, "c").contains_key("comment"), "{block}");
    }

    #[test]
    fn a_short_units_row_a_glitch_a_repeated_header_and_a_footer() {
        let data: String = (0..12).map(|i| format!("10:00:{i:02},1.{i},2\n")).collect();
        let (head, tail) = data.split_at(data.len() / 2);
        let text = format!(
            "Time,Flow,Pressure\ns,l/min\n{head}10:00:06,POWER FAIL\nTime,Flow,Pressure\n{tail}End\n"
        );
        let (block, t) = sniffed(text.as_bytes(), "f.csv");
        assert_eq!(
            csv(&t, "f")["skip_after_header"].as_integer(),
            Some(1),
            "{block}"
        );
        assert!(
            block.contains("# 1 line at the end of the sample has another number"),
            "{block}"
        );
        assert!(
            block.contains("# the header is repeated on line 10 (the logger restarted?)"),
            "{block}"
        );
        assert!(
            block.contains("# 1 line among the data has another number"),
            "{block}"
        );
        assert_eq!(
            columns(&block),
            [
                r#"name = "time", type = "string""#,
                r#"name = "flow", type = "double""#,
                r#"name = "pressure", type = "bigint""#
            ]
        );
    }

    #[test]
    fn single_quotes_pipes_and_a_given_source_name() {
        let s = sniff(b"'id';'name'\n'1';'a;b'\n'2';'c'\n", false, "q.csv", None).expect("sniffs");
        let t = toml::from_str::<Table>(&s.block).expect("TOML");
        assert_eq!(csv(&t, "q")["quote"].as_str(), Some("'"), "{}", s.block);
        assert_eq!(columns(&s.block).len(), 2, "{}", s.block);
        let s = sniff(b"a|b\n1|x\n2|y\n", false, "p.dat", Some("my source")).expect("sniffs");
        let t = toml::from_str::<Table>(&s.block).expect("TOML");
        assert_eq!(csv(&t, "my source")["delimiter"].as_str(), Some("|"));
        assert!(!s.remarks.is_empty());
    }

    #[test]
    fn comment_lines_above_the_header_are_not_counted_in_skip_lines() {
        let data: String = (0..5)
            .map(|i| format!("3/10/2024 1:{i:02}:00 AM,349.{i}\n"))
            .collect();
        let keys = |text: &str| {
            let (block, t) = sniffed(text.as_bytes(), "oven.csv");
            let csv = csv(&t, "oven");
            (
                csv.get("skip_lines").and_then(Value::as_integer),
                csv.get("comment")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                block,
            )
        };
        // US: comment lines only, and one among the data: `comment` alone.
        let (skip, comment, block) = keys(&format!(
            "# Oven 2 temperature log\n# Exported by ThermoTrack\nDate/Time,Zone 1\n{data}# door opened\n{data}"
        ));
        assert_eq!((skip, comment.as_deref()), (None, Some("#")), "{block}");
        // A device line above the comment lines: skip_lines counts up to it.
        let (skip, comment, block) = keys(&format!(
            "Oven 2,ThermoTrack 3.2,x\n# Exported\nDate/Time,Zone 1\n{data}# door opened\n{data}"
        ));
        assert_eq!((skip, comment.as_deref()), (Some(1), Some("#")), "{block}");
        // A blank line is no comment line: the reader's header would be empty.
        let (skip, comment, block) = keys(&format!(
            "# Oven 2\n\nDate/Time,Zone 1\n{data}# door opened\n{data}"
        ));
        assert_eq!((skip, comment.as_deref()), (Some(2), Some("#")), "{block}");
    }

    #[test]
    fn a_logger_restart_repeats_preamble_and_header_mid_file() {
        let preamble = "\"機種\",\"GL240\"\r\n\"タイトル\",\"ライン3\"\r\n\r\n";
        let header = "No.,日付,時刻,CH1 温度\r\n,,,℃\r\n";
        let rows = |from: usize, n: usize| -> String {
            (from..from + n)
                .map(|i| format!("{i},2024/10/27,07:{i:02}:00,33.{i}\r\n"))
                .collect()
        };
        let text = format!(
            "{preamble}{header}{}{preamble}{header}{}",
            rows(1, 20),
            rows(1, 8)
        );
        let (block, t) = sniffed(&encode(SHIFT_JIS, &text), "line3.csv");
        let csv = csv(&t, "line3");
        assert_eq!(csv["skip_lines"].as_integer(), Some(3), "{block}");
        assert_eq!(csv["skip_after_header"].as_integer(), Some(1), "{block}");
        let notes = comments(&block);
        assert!(
            notes.contains(
                &"the header is repeated on line 29 (the logger restarted?): it will be a reject."
            ),
            "{block}"
        );
        assert!(
            notes.contains(&"3 lines among the data have another number of fields or do not fit the columns (a glitch, a repeated preamble?): they will be rejects."),
            "{block}"
        );
        assert_eq!(columns(&block).len(), 3, "{block}");
        // The header alone again (UTF-8, comment lines skipped by `comment`).
        let data: String = (0..8)
            .map(|i| format!("2024-03-01 10:00:0{i},{i}.5\n"))
            .collect();
        let text = format!("# logger 7\nts,v\n{data}# restart\nts,v\n{data}");
        let (block, t) = sniffed(text.as_bytes(), "r.csv");
        assert!(!csv_has(&t, "r", "skip_lines"), "{block}");
        assert!(
            comments(&block).contains(
                &"the header is repeated on line 12 (the logger restarted?): it will be a reject."
            ),
            "{block}"
        );
    }
}
