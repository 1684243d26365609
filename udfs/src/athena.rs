//! Athena's names for what ad-hoc permission questions need, so that the
//! README's Athena SQL runs unchanged in `naslake query`: `bitwise_and(x, y)`,
//! and `contains(array, element)` beside DataFusion's `contains(string,
//! substring)`, which this function still answers for strings. (This build of
//! DataFusion has no array functions; they would add a feature and a rebuild.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::{as_int64_array, as_list_array, as_string_array};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};

pub fn register(ctx: &datafusion::prelude::SessionContext) {
    ctx.register_udf(create_udf(
        "bitwise_and",
        vec![DataType::Int64, DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            Ok(ColumnarValue::Array(bitwise_and(&arrays[0], &arrays[1])?))
        }),
    ));
    ctx.register_udf(ScalarUDF::from(Contains::new()));
}

/// `bitwise_and(x, y)`: the bits both have; NULL when either is.
pub fn bitwise_and(x: &ArrayRef, y: &ArrayRef) -> Result<ArrayRef> {
    let (x, y) = (as_int64_array(x)?, as_int64_array(y)?);
    let out: Int64Array = x.iter().zip(y.iter()).map(|(a, b)| Some(a? & b?)).collect();
    Ok(Arc::new(out))
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Contains {
    signature: Signature,
}

impl Contains {
    pub fn new() -> Self {
        Contains {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl Default for Contains {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for Contains {
    fn name(&self) -> &str {
        "contains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::List(_) | DataType::Null, _] => Ok(DataType::Boolean),
            [a, b] if is_text(a) && is_text(b) => Ok(DataType::Boolean),
            _ => Err(DataFusionError::Plan(
                "contains(array, element) or contains(string, substring)".into(),
            )),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if matches!(args.args[0].data_type(), DataType::List(_) | DataType::Null) {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            return Ok(ColumnarValue::Array(array_contains(
                &arrays[0], &arrays[1],
            )?));
        }
        datafusion::functions::string::contains().invoke_with_args(args)
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

/// Whether each list holds the element (compared as text); NULL when either is
/// NULL, false for an empty list.
pub fn array_contains(lists: &ArrayRef, elements: &ArrayRef) -> Result<ArrayRef> {
    if lists.data_type() == &DataType::Null {
        return Ok(Arc::new(BooleanArray::new_null(lists.len())));
    }
    let lists = as_list_array(lists)?;
    let elements = cast(elements, &DataType::Utf8)?;
    let elements = as_string_array(&elements)?;
    let out: BooleanArray = (0..lists.len())
        .map(|i| {
            if lists.is_null(i) || elements.is_null(i) {
                return Ok(None);
            }
            let items = cast(&lists.value(i), &DataType::Utf8)?;
            let items = as_string_array(&items)?;
            let wanted = elements.value(i);
            Ok(Some(items.iter().flatten().any(|item| item == wanted)))
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        crate::register_all(&ctx);
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn contains_answers_arrays_and_strings() {
        // true_names builds the lists: this build cannot plan array literals.
        let t = one("SELECT contains(true_names('a,this_folder', true, true), 'this_folder') AS x, \
                     contains(true_names('a', true), 'b') AS y, contains('sub_folders', 'fold') AS z, \
                     contains(NULL, 'a') AS n")
            .await;
        assert!(t.contains("| true | false | true |   |"), "{t}");
    }

    #[tokio::test]
    async fn bitwise_and_is_athenas() {
        let t = one("SELECT bitwise_and(1245631, 2) AS w, bitwise_and(1179785, 2) AS r, bitwise_and(NULL, 2) AS n").await;
        assert!(t.contains("| 2 | 0 |   |"), "{t}");
    }
}
