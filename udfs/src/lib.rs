//! DataFusion functions that naslake job SQL can call. [`register_all`] is called for
//! every session (`naslake run` and `naslake query`), so a job's SQL and a user's
//! ad-hoc query see the same functions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, Float64Array};
use datafusion::arrow::compute::kernels::arity::unary;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::cast::{
    as_float64_array, as_list_array, as_string_array, as_timestamp_microsecond_array,
};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;

mod athena;
pub mod phash;
mod phash_sql;
mod true_names;

/// Registers every naslake function with a session.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "zscore",
        vec![DataType::Float64, DataType::Float64, DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(zscore_columnar),
    ));
    ctx.register_udf(create_udf(
        "utc_date",
        vec![DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(utc_date_columnar),
    ));
    ctx.register_udf(create_udf(
        "has_any",
        vec![
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
            DataType::Utf8,
        ],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(has_any_columnar),
    ));
    phash_sql::register(ctx);
    athena::register(ctx);
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(
        true_names::TrueNames::new(),
    ));
}

/// `has_any(list, 'a,b,c')`: whether a list of strings holds any of the
/// comma-separated names (the rights an ACL rule is about). NULL for a NULL list
/// or names; false for an empty list. This build of DataFusion has no array
/// functions (they would add a feature, and a rebuild, for one test).
fn has_any_columnar(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    Ok(ColumnarValue::Array(has_any(&arrays[0], &arrays[1])?))
}

pub fn has_any(lists: &ArrayRef, names: &ArrayRef) -> Result<ArrayRef> {
    let lists = as_list_array(lists)?;
    let names = as_string_array(names)?;
    let out: BooleanArray = (0..lists.len())
        .map(|i| {
            if lists.is_null(i) || names.is_null(i) {
                return Ok(None);
            }
            let wanted: Vec<&str> = names.value(i).split(',').map(str::trim).collect();
            let items = lists.value(i);
            let items = as_string_array(&items)?;
            Ok(Some(
                items.iter().flatten().any(|item| wanted.contains(&item)),
            ))
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `utc_date(ts)`: the UTC calendar date of a UTC timestamp — the `dt` partition
/// key of time-series tables. Integer arithmetic on the microseconds; it is the same
/// as `CAST(ts AS DATE)` but skips a per-row time-zone conversion.
fn utc_date_columnar(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    Ok(ColumnarValue::Array(utc_date(&arrays[0])?))
}

pub fn utc_date(ts: &ArrayRef) -> Result<ArrayRef> {
    let ts = as_timestamp_microsecond_array(ts)?;
    let days: Date32Array = unary(ts, |us| us.div_euclid(MICROS_PER_DAY) as i32);
    Ok(Arc::new(days))
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
    fn has_any_finds_any_named_item() {
        use datafusion::arrow::array::{ListBuilder, StringArray, StringBuilder};
        let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
            "element",
            DataType::Utf8,
            true,
        )));
        b.values().append_value("read_data");
        b.values().append_value("write_perm");
        b.append(true);
        b.append(true);
        b.append(false);
        let lists: ArrayRef = Arc::new(b.finish());
        let names: ArrayRef = Arc::new(StringArray::from(vec!["write_data, write_perm"; 3]));
        let got = has_any(&lists, &names).unwrap();
        let got = got.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            [Some(true), Some(false), None]
        );
        let none: ArrayRef = Arc::new(StringArray::from(vec!["delete"; 3]));
        let got = has_any(&lists, &none).unwrap();
        let got = got.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(!got.value(0));
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

    #[test]
    fn utc_date_floors_to_the_day_before_and_after_the_epoch() {
        use datafusion::arrow::array::TimestampMicrosecondArray;
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(0),
                Some(-1),
                Some(1_709_294_400_000_000),
                None,
            ])
            .with_timezone("UTC"),
        );
        let d = utc_date(&ts).unwrap();
        let d = d.as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!((d.value(0), d.value(1), d.value(2)), (0, -1, 19_783));
        assert!(d.is_null(3));
    }

    #[tokio::test]
    async fn utc_date_agrees_with_cast_to_date() {
        let ctx = SessionContext::new();
        register_all(&ctx);
        // Hourly instants from 1963 to 2032, every 37th hour.
        let sql = "SELECT count(*), sum(CASE WHEN utc_date(t) = CAST(t AS DATE) THEN 1 ELSE 0 END) \
                   FROM (SELECT arrow_cast(to_timestamp_micros(v * 3600000000 - 200000000000000), 'Timestamp(Microsecond, Some(\"UTC\"))') AS t \
                   FROM generate_series(0, 600000, 37) AS g(v))";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let col = |i: usize| {
            batches[0]
                .column(i)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .value(0)
        };
        assert!(col(0) > 16_000);
        assert_eq!(col(1), col(0));
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
