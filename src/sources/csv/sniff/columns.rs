//! The block's columns: one per column of the file, typed and named, except that a
//! date column next to a time-of-day column becomes one timestamp built `from` both.

use super::layout::Table;
use super::names::{column_names, joined_name};
use super::render::{ambiguity_comment, rejects_comment};
use super::values::{Kind, Typed, infer};

/// One entry of `columns = [...]`.
pub(super) struct Column {
    pub(super) name: String,
    /// The header text when it differs from the name (after trimming, case folded).
    pub(super) header: Option<String>,
    /// The header texts a timestamp is built from (a date and a time column).
    pub(super) from: Option<[String; 2]>,
    pub(super) kind: Kind,
}

/// The columns, and `#` comment lines for the ambiguous patterns.
pub(super) fn columns(
    table: &Table,
    decimal: u8,
    nulls: &[String],
    has_header: bool,
) -> (Vec<Column>, Vec<String>) {
    let headers: Vec<String> = (0..table.fields)
        .map(|i| table.header.get(i).cloned().unwrap_or_default())
        .collect();
    let names = column_names(&headers, has_header);
    let (typed, bad): (Vec<Typed>, Vec<Vec<Bad>>) = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (lines, values): (Vec<usize>, Vec<&str>) = table
                .column(i)
                .filter(|(_, v)| !v.is_empty() && !nulls.iter().any(|n| n == v))
                .unzip();
            let typed = infer(h, &values, decimal);
            let bad = (typed.rejects.iter())
                .map(|&k| Bad {
                    text: values[k].to_owned(),
                    line: lines[k],
                })
                .collect();
            (typed, bad)
        })
        .unzip();
    let mut taken = names.clone();
    let (mut columns, mut comments) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < typed.len() {
        // Only named columns can be joined: `from` names them by their headers.
        let named = |k: usize| !headers[k].trim().is_empty();
        let joined = typed
            .get(i + 1)
            .filter(|_| has_header && named(i) && named(i + 1))
            .and_then(|next| date_and_time(&typed[i].kind, &next.kind));
        if let Some(pattern) = joined {
            let name = joined_name(&names, i, &mut taken);
            for a in typed[i..i + 2].iter().filter_map(|t| t.ambiguity.as_ref()) {
                comments.push(ambiguity_comment(&name, a));
            }
            for k in [i, i + 1] {
                let part = Some(headers[k].as_str());
                comments.extend(rejects_comment(&name, part, &typed[k].kind, &bad[k]));
            }
            columns.push(Column {
                name,
                header: None,
                from: Some([headers[i].clone(), headers[i + 1].clone()]),
                kind: Kind::Timestamp {
                    format: pattern,
                    zoned: false,
                },
            });
            i += 2;
            continue;
        }
        if let Some(a) = &typed[i].ambiguity {
            comments.push(ambiguity_comment(&names[i], a));
        }
        comments.extend(rejects_comment(&names[i], None, &typed[i].kind, &bad[i]));
        let differs = has_header && headers[i].to_lowercase() != names[i];
        columns.push(Column {
            name: names[i].clone(),
            header: differs.then(|| headers[i].clone()),
            from: None,
            kind: typed[i].kind.clone(),
        });
        i += 1;
    }
    (columns, comments)
}

/// A sampled value that will be a reject: its text and its line (0-based).
pub(super) struct Bad {
    pub(super) text: String,
    pub(super) line: usize,
}

/// The pattern of a date column next to a time-of-day column, in their order.
fn date_and_time(a: &Kind, b: &Kind) -> Option<String> {
    match (a, b) {
        (Kind::Date(d), Kind::Time(t)) => Some(format!("{d} {t}")),
        (Kind::Time(t), Kind::Date(d)) => Some(format!("{t} {d}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{columns, comments, sniffed};

    #[test]
    fn bad_dates_and_times_are_tolerated_and_named_by_their_part() {
        let mut text = String::from("Datum;Zeit;Wert\n");
        for i in 0..20 {
            let date = if i == 4 {
                "3l.03.2024".to_owned()
            } else {
                format!("{:02}.03.2024", i + 1)
            };
            let time = if i == 9 { "10:6O:00" } else { "10:00:00" };
            text += &format!("{date};{time};{i},5\n");
        }
        let (block, _) = sniffed(text.as_bytes(), "d.csv");
        assert_eq!(
            columns(&block)[0],
            r#"name = "datum_time", type = "timestamp", from = ["Datum", "Zeit"], timestamp_format = "%d.%m.%Y %H:%M:%S", time_zone = "UTC""#
        );
        let notes = comments(&block);
        assert!(notes.contains(&"column `datum_time`: 1 sampled value of `Datum` is no date and its line will be a reject: '3l.03.2024' (line 6)."), "{block}");
        assert!(notes.contains(&"column `datum_time`: 1 sampled value of `Zeit` is no time of day and its line will be a reject: '10:6O:00' (line 11)."), "{block}");
        // A pattern that reads every value beats one that fails on a few: 13/03 is
        // no month, so month-first is not chosen with a reject.
        let mut text = String::from("day,v\n");
        for i in 1..=15 {
            text += &format!("{i:02}/03/2024,{i}\n");
        }
        let (block, _) = sniffed(text.as_bytes(), "e.csv");
        assert_eq!(
            columns(&block)[0],
            r#"name = "day", type = "date", date_format = "%d/%m/%Y""#
        );
        assert!(!block.contains("reject"), "{block}");
    }
}
