//! The perceptual-hash functions of job SQL (see [`crate::phash`]):
//!
//! - `hamming_distance(a, b)`: bits two BIGINT hashes differ in (NULL if either is);
//! - `phash_bands(h)`: the hash's band values, to join on;
//! - `phash_probes(h, d)`: the band values that find every hash within `d` bits;
//! - `near_duplicates(h, d) OVER (…)`: how many other rows of the window's
//!   partition hold a hash within `d` bits (0 for a NULL hash).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, Int64Builder, ListBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_int32_array, as_int64_array};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    ColumnarValue, PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl, create_udf,
};
use datafusion::prelude::SessionContext;

use crate::phash;

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Int64, true)))
}

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "hamming_distance",
        vec![DataType::Int64, DataType::Int64],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let a = ColumnarValue::values_to_arrays(args)?;
            let (x, y) = (as_int64_array(&a[0])?, as_int64_array(&a[1])?);
            let out: Int32Array = x
                .iter()
                .zip(y.iter())
                .map(|(x, y)| Some(phash::hamming(x?, y?) as i32))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
    ctx.register_udf(create_udf(
        "phash_bands",
        vec![DataType::Int64],
        list_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let a = ColumnarValue::values_to_arrays(args)?;
            let hashes = as_int64_array(&a[0])?;
            Ok(ColumnarValue::Array(lists(
                hashes.iter().map(|h| h.map(phash::bands)),
            )))
        }),
    ));
    ctx.register_udf(create_udf(
        "phash_probes",
        vec![DataType::Int64, DataType::Int32],
        list_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let a = ColumnarValue::values_to_arrays(args)?;
            let hashes = as_int64_array(&a[0])?;
            let distances = as_int32_array(&a[1])?;
            let mut probes = Vec::with_capacity(hashes.len());
            for (h, d) in hashes.iter().zip(distances.iter()) {
                probes.push(match (h, d) {
                    (Some(h), Some(d)) => Some(phash::probes(h, distance(d)?)),
                    _ => None,
                });
            }
            Ok(ColumnarValue::Array(lists(probes.into_iter())))
        }),
    ));
    ctx.register_udwf(WindowUDF::from(NearDuplicates::new()));
}

/// A distance argument: 0 to 64 bits.
fn distance(d: i32) -> Result<u32> {
    u32::try_from(d).ok().filter(|d| *d <= 64).ok_or_else(|| {
        DataFusionError::Execution(format!("a Hamming distance of {d} bits: it is 0 to 64"))
    })
}

fn lists(values: impl Iterator<Item = Option<Vec<i64>>>) -> ArrayRef {
    let mut b = ListBuilder::new(Int64Builder::new()).with_field(Arc::new(Field::new(
        "element",
        DataType::Int64,
        true,
    )));
    for v in values {
        match v {
            Some(items) => {
                b.values().append_slice(&items);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NearDuplicates {
    signature: Signature,
}

impl NearDuplicates {
    fn new() -> Self {
        NearDuplicates {
            signature: Signature::exact(
                vec![DataType::Int64, DataType::Int32],
                Volatility::Immutable,
            ),
        }
    }
}

impl WindowUDFImpl for NearDuplicates {
    fn name(&self) -> &str {
        "near_duplicates"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn partition_evaluator(
        &self,
        _: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(NearDuplicatesEvaluator))
    }
    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(args.name(), DataType::Int64, false)))
    }
}

/// Evaluates a whole partition at once: the band index is built over all of it.
#[derive(Debug)]
struct NearDuplicatesEvaluator;

impl PartitionEvaluator for NearDuplicatesEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let hashes = as_int64_array(&values[0])?;
        let distances = as_int32_array(&values[1])?;
        let mut d = None;
        for x in distances.iter().flatten() {
            match d {
                None => d = Some(x),
                Some(y) if y != x => {
                    return Err(DataFusionError::Execution(
                        "near_duplicates: the distance must be the same for the whole window"
                            .into(),
                    ));
                }
                Some(_) => {}
            }
        }
        let Some(d) = d else {
            return Ok(Arc::new(Int64Array::from(vec![0i64; num_rows])));
        };
        let hashes: Vec<Option<i64>> = (0..hashes.len())
            .map(|i| hashes.is_valid(i).then(|| hashes.value(i)))
            .collect();
        let counts = phash::near_counts(&hashes, distance(d)?);
        Ok(Arc::new(
            counts.into_iter().map(|c| c as i64).collect::<Int64Array>(),
        ))
    }
}
