//! DataFusion functions that naslake job SQL can call. [`register_all`] is called for
//! every session (`naslake run` and `naslake query`), so a job's SQL and a user's
//! ad-hoc query see the same functions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_float64_array;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// Registers every naslake function with a session.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "zscore",
        vec![DataType::Float64, DataType::Float64, DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(zscore_columnar),
    ));
}

/// `zscore(value, mean, stddev)`: how many standard deviations `value` lies from
/// `mean`. NULL when any input is NULL or the deviation is zero (a constant series
/// has no outliers), never ±inf or NaN.
fn zscore_columnar(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    Ok(ColumnarValue::Array(zscore(
        &arrays[0], &arrays[1], &arrays[2],
    )?))
}

pub fn zscore(value: &ArrayRef, mean: &ArrayRef, stddev: &ArrayRef) -> Result<ArrayRef> {
    let (v, m, s) = (
        as_float64_array(value)?,
        as_float64_array(mean)?,
        as_float64_array(stddev)?,
    );
    let out: Float64Array = (0..v.len())
        .map(|i| {
            if v.is_null(i) || m.is_null(i) || s.is_null(i) {
                return None;
            }
            let sd = s.value(i);
            (sd > 0.0 && sd.is_finite()).then(|| (v.value(i) - m.value(i)) / sd)
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    #[test]
    fn zscore_is_null_where_undefined() {
        let z = zscore(
            &arr(&[Some(12.0), Some(5.0), None, Some(1.0)]),
            &arr(&[Some(10.0), Some(5.0), Some(1.0), Some(1.0)]),
            &arr(&[Some(2.0), Some(0.0), Some(1.0), None]),
        )
        .unwrap();
        let z = z.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(z.value(0), 1.0);
        assert!(z.is_null(1) && z.is_null(2) && z.is_null(3));
    }

    #[tokio::test]
    async fn registered_function_runs_in_sql() {
        let ctx = SessionContext::new();
        register_all(&ctx);
        let batches = ctx
            .sql("SELECT zscore(13.0, 10.0, 1.5) AS z")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let z = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(z.value(0), 2.0);
    }
}
