//! Arrow column builders the source kinds share: their rows are built column by
//! column, in the order their schema files declare.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, FieldRef};

/// The item field of a list column (Glue's `array<T>` names it `element`).
pub fn item_field(dt: &DataType) -> FieldRef {
    match dt {
        DataType::List(f) => f.clone(),
        other => panic!("a list column has type {other} in the schema file"),
    }
}

/// An `array<string>` column of `dt`'s item field: `None` is NULL, an empty list
/// is an empty array.
pub fn string_lists<S: AsRef<str>, L: AsRef<[S]>>(
    dt: &DataType,
    values: impl Iterator<Item = Option<L>>,
) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(item_field(dt));
    for v in values {
        match v {
            Some(items) => {
                for item in items.as_ref() {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}
