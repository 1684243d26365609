//! What one cell is: a line cut into cells as csv-core reads it, and a cell read as
//! a number, a boolean, a known NULL marker, or a rough kind (for telling header and
//! units rows from data).

/// The fields of one line, unquoted as the reader unquotes a header, and trimmed of
/// ASCII spaces only, as the reader trims: a no-break space makes a number cell a
/// reject at run time, so it must here too.
pub(super) fn split_line(line: &str, delimiter: u8, quote: u8) -> Vec<String> {
    crate::sources::csv::reader::record_fields(line.as_bytes(), delimiter, quote)
        .into_iter()
        // Fields of valid UTF-8 split at ASCII bytes are valid UTF-8.
        .map(|f| String::from_utf8_lossy(&f).trim_ascii().to_owned())
        .collect()
}

/// Cell texts that mean "no value" in logger exports; found in a numeric column they
/// are NULL markers even when they occur once.
pub(super) const KNOWN_NULLS: &[&str] = &[
    "+OVER", "-OVER", "OVER", "BURNOUT", "B.OUT", "NaN", "nan", "NAN", "N/A", "n/a", "#N/A", "NA",
    "null", "NULL", "None", "---", "--", "-", "*", "ERR", "Error", "ERROR", "inf", "-inf", "Inf",
    "-Inf", "INF", "-INF", "OL", "+OL", "-OL",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Number {
    Integer,
    Real,
}

/// A number as the reader converts it: `[+-]digits[<decimal>digits][e[+-]digits]`
/// (digits on at least one side of the decimal separator); `Integer` when it has
/// neither separator nor exponent and fits an i64.
pub(super) fn number(s: &str, decimal: u8) -> Option<Number> {
    let b = s.as_bytes();
    let digits_from = |i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let whole = digits_from(i);
    i += whole;
    let mut fraction = 0;
    let point = b.get(i) == Some(&decimal);
    if point {
        fraction = digits_from(i + 1);
        i += 1 + fraction;
    }
    if whole + fraction == 0 {
        return None;
    }
    let exponent = matches!(b.get(i), Some(b'e' | b'E'));
    if exponent {
        i += 1 + usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let digits = digits_from(i);
        if digits == 0 {
            return None;
        }
        i += digits;
    }
    if i != b.len() {
        return None;
    }
    let integer = !point && !exponent && s.parse::<i64>().is_ok();
    Some(if integer {
        Number::Integer
    } else {
        Number::Real
    })
}

pub(super) fn is_boolean(s: &str) -> bool {
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
}

/// A cell's rough kind, for telling header and units rows from data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rough {
    Empty,
    Number,
    Temporal,
    Boolean,
    Text,
}

pub(super) fn rough(cell: &str) -> Rough {
    if cell.is_empty() {
        Rough::Empty
    } else if number(cell, b'.').is_some() || number(cell, b',').is_some() {
        Rough::Number
    } else if is_boolean(cell) {
        Rough::Boolean
    } else if looks_temporal(cell) {
        Rough::Temporal
    } else {
        Rough::Text
    }
}

/// Starts with a digit, has a time (`:`) or two date separators, and nothing else
/// than what dates and times are written with.
fn looks_temporal(cell: &str) -> bool {
    let separators = cell
        .chars()
        .filter(|c| matches!(c, '/' | '-' | '.'))
        .count();
    cell.starts_with(|c: char| c.is_ascii_digit())
        && (cell.contains(':') || separators >= 2)
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || " :/-.,TtZz+APMapm".contains(c))
}
