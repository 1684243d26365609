//! Conversions between naslake's Glue structures (`table_input`, which the local
//! catalog stores as JSON) and the SDK's types.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_glue::types as g;

use super::build_error;
use crate::base::error::Result;
use crate::catalog::table_input::{
    Column, PartitionInput, SerDeInfo, StorageDescriptor, TableInput,
};

pub(super) fn to_btree(m: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub(super) fn to_sdk_column(c: &Column) -> Result<g::Column> {
    g::Column::builder()
        .name(&c.name)
        .r#type(&c.type_name)
        .set_comment(c.comment.clone())
        .build()
        .map_err(build_error)
}

pub(super) fn from_sdk_column(c: &g::Column) -> Column {
    Column {
        name: c.name().to_string(),
        type_name: c.r#type().unwrap_or_default().to_string(),
        comment: c.comment().map(str::to_string),
    }
}

pub(super) fn to_sdk_sd(sd: &StorageDescriptor) -> Result<g::StorageDescriptor> {
    Ok(g::StorageDescriptor::builder()
        .set_columns(Some(
            sd.columns
                .iter()
                .map(to_sdk_column)
                .collect::<Result<Vec<_>>>()?,
        ))
        .location(&sd.location)
        .input_format(&sd.input_format)
        .output_format(&sd.output_format)
        .compressed(sd.compressed)
        .serde_info(
            g::SerDeInfo::builder()
                .serialization_library(&sd.serde_info.serialization_library)
                .set_parameters(Some(sd.serde_info.parameters.clone().into_iter().collect()))
                .build(),
        )
        .set_parameters(Some(sd.parameters.clone().into_iter().collect()))
        .build())
}

pub(super) fn from_sdk_sd(sd: Option<&g::StorageDescriptor>) -> StorageDescriptor {
    let Some(sd) = sd else {
        return StorageDescriptor {
            columns: Vec::new(),
            location: String::new(),
            input_format: String::new(),
            output_format: String::new(),
            compressed: false,
            serde_info: SerDeInfo {
                serialization_library: String::new(),
                parameters: BTreeMap::new(),
            },
            parameters: BTreeMap::new(),
        };
    };
    StorageDescriptor {
        columns: sd.columns().iter().map(from_sdk_column).collect(),
        location: sd.location().unwrap_or_default().to_string(),
        input_format: sd.input_format().unwrap_or_default().to_string(),
        output_format: sd.output_format().unwrap_or_default().to_string(),
        compressed: sd.compressed(),
        serde_info: SerDeInfo {
            serialization_library: sd
                .serde_info()
                .and_then(|s| s.serialization_library())
                .unwrap_or_default()
                .to_string(),
            parameters: to_btree(sd.serde_info().and_then(|s| s.parameters())),
        },
        parameters: to_btree(sd.parameters()),
    }
}

pub(super) fn to_sdk_table(t: &TableInput) -> Result<g::TableInput> {
    g::TableInput::builder()
        .name(&t.name)
        .description(&t.description)
        .table_type(&t.table_type)
        .set_parameters(Some(t.parameters.clone().into_iter().collect()))
        .storage_descriptor(to_sdk_sd(&t.storage_descriptor)?)
        .set_partition_keys(Some(
            t.partition_keys
                .iter()
                .map(to_sdk_column)
                .collect::<Result<Vec<_>>>()?,
        ))
        .build()
        .map_err(build_error)
}

pub(super) fn to_sdk_partition(p: &PartitionInput) -> Result<g::PartitionInput> {
    Ok(g::PartitionInput::builder()
        .set_values(Some(p.values.clone()))
        .storage_descriptor(to_sdk_sd(&p.storage_descriptor)?)
        .set_parameters(Some(p.parameters.clone().into_iter().collect()))
        .build())
}

pub(super) fn from_sdk_partition(p: &g::Partition) -> PartitionInput {
    PartitionInput {
        values: p.values().to_vec(),
        storage_descriptor: from_sdk_sd(p.storage_descriptor()),
        parameters: to_btree(p.parameters()),
    }
}

/// A partition's values as the batch get/delete calls take them.
pub(super) fn value_list(values: &[String]) -> Result<g::PartitionValueList> {
    g::PartitionValueList::builder()
        .set_values(Some(values.to_vec()))
        .build()
        .map_err(build_error)
}
