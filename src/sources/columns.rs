//! Arrow column builders the source kinds share: their rows are built column by
//! column, in the order their schema files declare.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};

/// A batch of `schema`, the columns of the schema file `file`, each built by
/// `column` from its field. A column with no builder, or a builder of another
/// type, is a bug of the kind (its unit test builds every column, so it fails
/// there first).
pub fn batch(
    schema: &SchemaRef,
    file: &str,
    column: impl Fn(&Field) -> Option<ArrayRef>,
) -> RecordBatch {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            column(f).unwrap_or_else(|| {
                panic!(
                    "{file} column `{}` has no builder (a unit test checks them all)",
                    f.name()
                )
            })
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| {
        panic!("the builders match the types of {file} (a unit test checks them): {e}")
    })
}

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
