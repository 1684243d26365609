//! The typed columns of one chunk as the parser builds them, a record at a time.
//!
//! A record's fields are appended as they are validated. When one fails, the
//! record is taken back: every column is cut to the rows kept before it
//! ([`Columns::take_back`]), so a rejected record never leaves half a row.
//! A field is written once, where it ends up; records are rejected rarely, and
//! taking one back costs a cut per column.

use std::sync::Arc;

use datafusion::arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, PrimitiveArray, StringArray, types::ArrowPrimitiveType,
};
use datafusion::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};

use super::options::InputType;

/// One declared column of a chunk, by its type.
pub(super) enum Column {
    Str(StrColumn),
    Int(PrimitiveColumn<Int64Type>),
    Float(PrimitiveColumn<Float64Type>),
    Bool(BoolColumn),
    Ts(PrimitiveColumn<TimestampMicrosecondType>),
    Date(PrimitiveColumn<Date32Type>),
}

impl Column {
    /// An empty column of `kind`, with room for `rows` rows (and `bytes` of text).
    pub(super) fn new(kind: InputType, rows: usize, bytes: usize) -> Self {
        match kind {
            InputType::String => Column::Str(StrColumn::with_capacity(rows, bytes)),
            InputType::Bigint => Column::Int(PrimitiveColumn::with_capacity(rows)),
            InputType::Double => Column::Float(PrimitiveColumn::with_capacity(rows)),
            InputType::Boolean => Column::Bool(BoolColumn::with_capacity(rows)),
            InputType::Timestamp => Column::Ts(PrimitiveColumn::with_capacity(rows)),
            InputType::Date => Column::Date(PrimitiveColumn::with_capacity(rows)),
        }
    }

    pub(super) fn append_null(&mut self) {
        match self {
            Column::Str(c) => c.append_null(),
            Column::Int(c) => c.append_null(),
            Column::Float(c) => c.append_null(),
            Column::Bool(c) => c.append_null(),
            Column::Ts(c) => c.append_null(),
            Column::Date(c) => c.append_null(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::Str(c) => c.offsets.len() - 1,
            Column::Int(c) => c.values.len(),
            Column::Float(c) => c.values.len(),
            Column::Bool(c) => c.values.len(),
            Column::Ts(c) => c.values.len(),
            Column::Date(c) => c.values.len(),
        }
    }

    /// Cuts the column to its first `rows` rows.
    fn truncate(&mut self, rows: usize) {
        match self {
            Column::Str(c) => c.truncate(rows),
            Column::Int(c) => c.truncate(rows),
            Column::Float(c) => c.truncate(rows),
            Column::Bool(c) => c.truncate(rows),
            Column::Ts(c) => c.truncate(rows),
            Column::Date(c) => c.truncate(rows),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::Str(c) => c.finish(),
            Column::Int(c) => Arc::new(c.finish()),
            Column::Float(c) => Arc::new(c.finish()),
            Column::Bool(c) => Arc::new(c.finish()),
            Column::Ts(c) => Arc::new(c.finish().with_timezone("UTC")),
            Column::Date(c) => Arc::new(c.finish()),
        }
    }
}

/// A chunk's declared columns and how many rows they hold.
pub(super) struct Columns {
    columns: Vec<Column>,
    rows: usize,
}

impl Columns {
    pub(super) fn new(columns: Vec<Column>) -> Self {
        Columns { columns, rows: 0 }
    }

    /// Column `i`, for a field of the record under way.
    pub(super) fn get_mut(&mut self, i: usize) -> &mut Column {
        &mut self.columns[i]
    }

    /// The record under way is complete: every column holds one more row.
    pub(super) fn keep(&mut self) {
        self.rows += 1;
        debug_assert!(
            self.columns.iter().all(|c| c.len() == self.rows),
            "a kept record filled every column once"
        );
    }

    /// The record under way is rejected: the fields it appended are taken back.
    pub(super) fn take_back(&mut self) {
        for c in &mut self.columns {
            c.truncate(self.rows);
        }
    }

    /// The arrays, each `rows` long.
    pub(super) fn finish(self) -> Vec<ArrayRef> {
        self.columns.into_iter().map(Column::finish).collect()
    }
}

/// The column's validity; none when every row is valid. (A NULL appended by a
/// record that was then taken back leaves the builder's bitmap in place, though
/// no row is NULL any more; readers and kernels take a column with a validity
/// buffer for one that may hold NULLs.)
fn nulls_of(builder: &mut NullBufferBuilder) -> Option<NullBuffer> {
    builder.finish().filter(|n| n.null_count() > 0)
}

/// Fixed-width values and their validity.
pub(super) struct PrimitiveColumn<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> PrimitiveColumn<T> {
    fn with_capacity(rows: usize) -> Self {
        PrimitiveColumn {
            values: Vec::with_capacity(rows),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    pub(super) fn append(&mut self, v: T::Native) {
        self.values.push(v);
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        self.values.push(T::Native::default());
        self.nulls.append_null();
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.nulls.truncate(rows);
    }

    fn finish(mut self) -> PrimitiveArray<T> {
        PrimitiveArray::new(ScalarBuffer::from(self.values), nulls_of(&mut self.nulls))
    }
}

/// Booleans and their validity.
pub(super) struct BoolColumn {
    values: BooleanBufferBuilder,
    nulls: NullBufferBuilder,
}

impl BoolColumn {
    fn with_capacity(rows: usize) -> Self {
        BoolColumn {
            values: BooleanBufferBuilder::new(rows),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    pub(super) fn append(&mut self, v: bool) {
        self.values.append(v);
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        self.values.append(false);
        self.nulls.append_null();
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.nulls.truncate(rows);
    }

    fn finish(mut self) -> BooleanArray {
        BooleanArray::new(self.values.finish(), nulls_of(&mut self.nulls))
    }
}

/// A string column built from raw bytes. Every record that reaches it was checked to
/// be UTF-8 (the whole chunk, or the line), and unquoting only removes ASCII quotes,
/// so the column is checked as a whole when it is finished: for ASCII, and when it
/// is not ASCII, as UTF-8.
pub(super) struct StrColumn {
    offsets: Vec<i32>,
    values: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl StrColumn {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrColumn {
            offsets,
            values: Vec::with_capacity(bytes),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    pub(super) fn append(&mut self, v: &[u8]) {
        self.values.extend_from_slice(v);
        self.offsets.push(self.values.len() as i32);
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        self.offsets.push(self.values.len() as i32);
        self.nulls.append_null();
    }

    fn truncate(&mut self, rows: usize) {
        self.offsets.truncate(rows + 1);
        let end = self.offsets.last().map_or(0, |&e| e as usize);
        self.values.truncate(end);
        self.nulls.truncate(rows);
    }

    fn finish(mut self) -> ArrayRef {
        let nulls = nulls_of(&mut self.nulls);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let values = Buffer::from_vec(self.values);
        // ASCII text needs no UTF-8 check, and every offset into it falls on a
        // character's boundary: one pass over the bytes, where `try_new` makes a
        // pass of its own and then checks every offset (together about 1% of a
        // plain CSV run's CPU, docs/benchmarks.md). Offsets and nulls are
        // checked as `try_new` checks them.
        let in_bounds = offsets
            .last()
            .is_some_and(|&end| end as usize <= values.len());
        let nulls_fit = nulls.as_ref().is_none_or(|n| n.len() == offsets.len() - 1);
        if in_bounds && nulls_fit && values.as_slice().is_ascii() {
            // SAFETY: the offsets are monotonic (`OffsetBuffer::new` checks), end
            // within the values, and the nulls cover every row (both checked just
            // above); every byte is ASCII, so any slice of them is UTF-8. That is
            // all `try_new` would check.
            return Arc::new(unsafe { StringArray::new_unchecked(offsets, values, nulls) });
        }
        // Buffers are reference-counted: the clones below copy no data.
        match StringArray::try_new(offsets.clone(), values.clone(), nulls.clone()) {
            Ok(array) => Arc::new(array),
            // Unreachable by the invariant above; never panic on input data anyway.
            Err(_) => Arc::new(
                offsets
                    .windows(2)
                    .enumerate()
                    .map(|(i, w)| {
                        let valid = nulls.as_ref().is_none_or(|n| n.is_valid(i));
                        let bytes = &values.as_slice()[w[0] as usize..w[1] as usize];
                        valid.then(|| String::from_utf8_lossy(bytes).into_owned())
                    })
                    .collect::<StringArray>(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};

    use super::*;

    const KINDS: [InputType; 6] = [
        InputType::String,
        InputType::Bigint,
        InputType::Double,
        InputType::Boolean,
        InputType::Timestamp,
        InputType::Date,
    ];

    fn columns() -> Columns {
        Columns::new(KINDS.iter().map(|&k| Column::new(k, 2, 8)).collect())
    }

    /// A record whose fields reach the first `reach` columns: `n` in each, or NULL.
    fn record(columns: &mut Columns, reach: usize, n: Option<i64>) {
        for i in 0..reach {
            let c = columns.get_mut(i);
            match (c, n) {
                (c, None) => c.append_null(),
                (Column::Str(c), Some(n)) => c.append(format!("v{n}").as_bytes()),
                (Column::Int(c), Some(n)) => c.append(n),
                (Column::Float(c), Some(n)) => c.append(n as f64),
                (Column::Bool(c), Some(n)) => c.append(n % 2 == 1),
                (Column::Ts(c), Some(n)) => c.append(n),
                (Column::Date(c), Some(n)) => c.append(n as i32),
            }
        }
    }

    /// The rows of every column as text ("∅" for NULL), and whether it has a
    /// validity buffer.
    fn rows(arrays: &[ArrayRef]) -> Vec<(Vec<String>, bool)> {
        use datafusion::arrow::util::display::array_value_to_string;
        arrays
            .iter()
            .map(|a| {
                if let Some(n) = a.nulls() {
                    assert_eq!(n.len(), a.len(), "{:?}", a.data_type());
                }
                let values = (0..a.len())
                    .map(|i| {
                        if a.is_null(i) {
                            "∅".to_string()
                        } else {
                            array_value_to_string(a, i).unwrap()
                        }
                    })
                    .collect();
                (values, a.nulls().is_some())
            })
            .collect()
    }

    /// Every kind of column, a record taken back at each point: before any NULL
    /// (no validity bitmap yet), after a NULL row (the bitmap in use), and a
    /// record that itself appended NULLs. The rows kept are what they would be
    /// had the record never been appended, and a column with no NULL left has
    /// no validity buffer.
    #[test]
    fn a_record_taken_back_leaves_the_rows_kept_before_it() {
        // (the records: how many columns each reaches, its value, kept or not)
        type Script = &'static [(usize, Option<i64>, bool)];
        let scripts: [Script; 4] = [
            // Values only; the taken-back record (odd: `true`) reaches every column.
            &[(6, Some(2), true), (6, Some(3), false), (6, Some(4), true)],
            // Taken back halfway, before any NULL.
            &[(6, Some(2), true), (3, Some(5), false), (6, Some(4), true)],
            // A record of NULLs taken back: no NULL is left.
            &[(6, Some(2), true), (4, None, false), (6, Some(4), true)],
            // A NULL row kept, then a record of values taken back.
            &[(6, None, true), (6, Some(7), false), (6, Some(4), true)],
        ];
        for script in scripts {
            let mut taken = columns();
            let mut never = columns();
            for &(reach, n, keep) in script {
                record(&mut taken, reach, n);
                if keep {
                    taken.keep();
                    record(&mut never, reach, n);
                    never.keep();
                } else {
                    taken.take_back();
                }
            }
            let (got, want) = (taken.finish(), never.finish());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.data_type(), w.data_type());
            }
            assert_eq!(rows(&got), rows(&want), "{script:?}");
            let nulls_kept = script.iter().any(|&(_, n, keep)| keep && n.is_none());
            for (values, has_nulls) in rows(&got) {
                assert_eq!(values.len(), 2, "{script:?}");
                assert_eq!(has_nulls, nulls_kept, "{script:?}");
            }
        }
        let t = columns().finish();
        assert_eq!(
            t[4].as_primitive::<TimestampMicrosecondType>().timezone(),
            Some("UTC")
        );
    }

    proptest::proptest! {
        /// A string column finishes as the array of its values and NULLs, ASCII
        /// (read without a check) or not (checked), a record taken back or not.
        #[test]
        fn a_string_column_finishes_as_its_values(
            values in proptest::collection::vec(
                proptest::option::of(proptest::prop_oneof![
                    "[ -~]{0,12}",
                    "[a-zé€\u{1F600}]{0,6}",
                ]),
                0..40,
            ),
            taken_back in proptest::option::of("[ -~é]{0,6}"),
        ) {
            let mut column = StrColumn::with_capacity(2, 4);
            for v in &values {
                match v {
                    Some(v) => column.append(v.as_bytes()),
                    None => column.append_null(),
                }
            }
            if let Some(v) = &taken_back {
                column.append(v.as_bytes());
                column.truncate(values.len());
            }
            let got = column.finish();
            let want: ArrayRef = Arc::new(values.iter().map(|v| v.as_deref()).collect::<StringArray>());
            proptest::prop_assert_eq!(got.to_data(), want.to_data());
            proptest::prop_assert_eq!(got.nulls().is_some(), values.iter().any(Option::is_none));
        }
    }

    /// Bytes that are not ASCII are checked as UTF-8 row by row, even where the
    /// whole buffer is UTF-8: a character split across two rows (`é` as `\xC3`
    /// then `\xA9`) or a stray byte each become U+FFFD, never an array whose
    /// rows are not UTF-8.
    #[test]
    fn a_column_that_is_not_ascii_is_checked_as_utf8() {
        let mut column = StrColumn::with_capacity(3, 3);
        for v in [&b"\xC3"[..], b"\xA9", b"\xFF"] {
            column.append(v);
        }
        let got = column.finish();
        let want: ArrayRef = Arc::new(StringArray::from(vec!["\u{FFFD}"; 3]));
        assert_eq!(got.to_data(), want.to_data());
    }
}
