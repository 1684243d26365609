//! The typed columns of one chunk as the parser builds them, a record at a time.
//!
//! A record's fields are appended as they are validated. When one fails, the
//! record is taken back: every column is cut to the rows kept before it
//! ([`Columns::take_back`]), so a rejected record never leaves half a row.
//! Appending straight away, rather than staging a record's values and copying
//! them once all passed, saves a store, a load and a dispatch per field; records
//! are rejected rarely, and taking one back costs a cut per column.

use std::sync::Arc;

use datafusion::arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, PrimitiveArray, StringArray, types::ArrowPrimitiveType,
};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};

use super::options::InputType;

/// One declared column of a chunk, by its type.
pub(super) enum Column {
    Str(StrColumn),
    Int(Values<Int64Type>),
    Float(Values<Float64Type>),
    Bool(BoolColumn),
    Ts(Values<TimestampMicrosecondType>),
    Date(Values<Date32Type>),
}

impl Column {
    /// An empty column of `kind`, with room for `rows` rows (and `bytes` of text).
    pub(super) fn new(kind: InputType, rows: usize, bytes: usize) -> Self {
        match kind {
            InputType::String => Column::Str(StrColumn::with_capacity(rows, bytes)),
            InputType::Bigint => Column::Int(Values::with_capacity(rows)),
            InputType::Double => Column::Float(Values::with_capacity(rows)),
            InputType::Boolean => Column::Bool(BoolColumn::with_capacity(rows)),
            InputType::Timestamp => Column::Ts(Values::with_capacity(rows)),
            InputType::Date => Column::Date(Values::with_capacity(rows)),
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

/// Fixed-width values and their validity.
pub(super) struct Values<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> Values<T> {
    fn with_capacity(rows: usize) -> Self {
        Values {
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
        PrimitiveArray::new(ScalarBuffer::from(self.values), self.nulls.finish())
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
        BooleanArray::new(self.values.finish(), self.nulls.finish())
    }
}

/// A string column built from raw bytes. Every record that reaches it was checked to
/// be UTF-8 (the whole chunk, or the line), and unquoting only removes ASCII quotes,
/// so the column is validated once, as a whole, when it is finished.
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
        let nulls = self.nulls.finish();
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let values = Buffer::from_vec(self.values);
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

    /// Each kind of column: a record taken back halfway leaves the rows kept
    /// before it as they were, and the next record lands right after them.
    #[test]
    fn a_record_taken_back_leaves_the_rows_kept_before_it() {
        let kinds = [
            InputType::String,
            InputType::Bigint,
            InputType::Double,
            InputType::Boolean,
            InputType::Timestamp,
            InputType::Date,
        ];
        let mut columns = Columns::new(kinds.iter().map(|&k| Column::new(k, 2, 8)).collect());
        let append = |c: &mut Column, n: i64| match c {
            Column::Str(c) => c.append(format!("v{n}").as_bytes()),
            Column::Int(c) => c.append(n),
            Column::Float(c) => c.append(n as f64),
            Column::Bool(c) => c.append(n % 2 == 1),
            Column::Ts(c) => c.append(n),
            Column::Date(c) => c.append(n as i32),
        };
        // Row 0: values; row 1: NULLs; then a record whose first three fields
        // went in before the fourth failed; then row 2: values again.
        for i in 0..kinds.len() {
            append(columns.get_mut(i), 1);
        }
        columns.keep();
        for i in 0..kinds.len() {
            columns.get_mut(i).append_null();
        }
        columns.keep();
        for i in 0..3 {
            append(columns.get_mut(i), 100);
        }
        columns.take_back();
        for i in 0..kinds.len() {
            append(columns.get_mut(i), 3);
        }
        columns.keep();
        let arrays = columns.finish();
        for a in &arrays {
            assert_eq!(a.len(), 3, "{:?}", a.data_type());
            assert_eq!(
                (a.is_valid(0), a.is_null(1), a.is_valid(2)),
                (true, true, true),
                "{:?}",
                a.data_type()
            );
        }
        let s = arrays[0].as_string::<i32>();
        assert_eq!((s.value(0), s.value(2)), ("v1", "v3"));
        assert_eq!(s.value_offsets(), &[0, 2, 2, 4]);
        let i = arrays[1].as_primitive::<Int64Type>();
        assert_eq!((i.value(0), i.value(2)), (1, 3));
        let f = arrays[2].as_primitive::<Float64Type>();
        assert_eq!((f.value(0), f.value(2)), (1.0, 3.0));
        let b = arrays[3].as_boolean();
        assert_eq!((b.value(0), b.value(2)), (true, true));
        let t = arrays[4].as_primitive::<TimestampMicrosecondType>();
        assert_eq!((t.value(0), t.value(2)), (1, 3));
        assert_eq!(t.timezone(), Some("UTC"));
        let d = arrays[5].as_primitive::<Date32Type>();
        assert_eq!((d.value(0), d.value(2)), (1, 3));
    }
}
