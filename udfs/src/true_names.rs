//! `true_names('a,b,c', x, y, z)`: the names whose condition holds, in order, as
//! an `array<string>` (a NULL condition does not hold). The review reasons of a
//! row are one call; this DataFusion build has no array functions to build them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::cast::{as_boolean_array, as_string_array};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrueNames {
    signature: Signature,
}

impl TrueNames {
    pub fn new() -> Self {
        TrueNames {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn element() -> Arc<Field> {
    Arc::new(Field::new("element", DataType::Utf8, true))
}

impl ScalarUDFImpl for TrueNames {
    fn name(&self) -> &str {
        "true_names"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let (names, conditions) = args.split_first().ok_or_else(|| {
            DataFusionError::Plan(
                "true_names('a,b', x, y): names, then one condition per name".into(),
            )
        })?;
        if !matches!(names, DataType::Utf8)
            || conditions
                .iter()
                .any(|t| !matches!(t, DataType::Boolean | DataType::Null))
        {
            return Err(DataFusionError::Plan(
                "true_names takes a string of comma-separated names, then booleans".into(),
            ));
        }
        Ok(DataType::List(element()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array(true_names(&arrays)?))
    }
}

pub fn true_names(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let names = as_string_array(&arrays[0])?;
    let conditions = arrays[1..]
        .iter()
        .map(|a| match a.data_type() {
            DataType::Null => Ok(BooleanArray::new_null(a.len())),
            _ => as_boolean_array(a).cloned(),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(element());
    for row in 0..names.len() {
        if names.is_null(row) {
            b.append(false);
            continue;
        }
        let listed: Vec<&str> = names.value(row).split(',').map(str::trim).collect();
        if listed.len() != conditions.len() {
            return Err(DataFusionError::Execution(format!(
                "true_names: {} names for {} conditions",
                listed.len(),
                conditions.len()
            )));
        }
        for (name, c) in listed.iter().zip(&conditions) {
            if c.is_valid(row) && c.value(row) {
                b.values().append_value(name);
            }
        }
        b.append(true);
    }
    Ok(Arc::new(b.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ListArray, StringArray};

    #[test]
    fn lists_the_names_that_hold_in_order() {
        let names: ArrayRef = Arc::new(StringArray::from(vec!["a, b,c"; 3]));
        let x: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), Some(false), None]));
        let y: ArrayRef = Arc::new(BooleanArray::from(vec![
            Some(false),
            Some(false),
            Some(true),
        ]));
        let z: ArrayRef = Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            Some(true),
        ]));
        let out = true_names(&[names.clone(), x, y, z]).unwrap();
        let out = out.as_any().downcast_ref::<ListArray>().unwrap();
        let row = |i: usize| {
            let v = out.value(i);
            let v = v.as_any().downcast_ref::<StringArray>().unwrap().clone();
            v.iter().map(|s| s.unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(row(0), ["a", "c"]);
        assert!(row(1).is_empty());
        assert_eq!(row(2), ["b", "c"]);
        assert!(true_names(&[names, Arc::new(BooleanArray::from(vec![true; 3]))]).is_err());
    }
}
