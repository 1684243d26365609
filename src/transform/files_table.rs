//! A DataFusion table over an explicit list of Parquet files with their hive
//! partition values. `naslake query` reads catalog tables through it, and a job's
//! later SQL reads the tables written earlier in the same run, seeing exactly this
//! run's files (not whatever else lies in the directory).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

/// One data file of a table.
#[derive(Debug, Clone)]
pub struct TableFile {
    /// Key in the table's object store.
    pub path: object_store::path::Path,
    pub size: u64,
    pub partition_values: Vec<String>,
}

#[derive(Debug)]
pub struct FilesTable {
    file_schema: SchemaRef,
    partition_cols: Vec<FieldRef>,
    schema: SchemaRef,
    store_url: ObjectStoreUrl,
    files: Vec<TableFile>,
}

impl FilesTable {
    pub fn new(
        file_schema: SchemaRef,
        partition_keys: &[String],
        store_url: ObjectStoreUrl,
        files: Vec<TableFile>,
    ) -> Self {
        let partition_cols: Vec<FieldRef> = partition_keys
            .iter()
            .map(|k| Arc::new(Field::new(k, DataType::Utf8, true)))
            .collect();
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(partition_cols.iter().cloned());
        FilesTable {
            file_schema,
            partition_cols,
            schema: Arc::new(Schema::new(fields)),
            store_url,
            files,
        }
    }
}

#[async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups_n = state
            .config()
            .target_partitions()
            .max(1)
            .min(self.files.len());
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups_n];
        for (i, f) in self.files.iter().enumerate() {
            // Built from the key itself: a path string would be escaped again.
            let meta = object_store::ObjectMeta {
                location: f.path.clone(),
                last_modified: chrono::DateTime::<chrono::Utc>::MIN_UTC,
                size: f.size,
                e_tag: None,
                version: None,
            };
            let pf = PartitionedFile::from(meta).with_partition_values(
                f.partition_values
                    .iter()
                    .map(|v| ScalarValue::Utf8(Some(v.clone())))
                    .collect(),
            );
            groups[i % groups_n].push(pf);
        }
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(self.partition_cols.clone())
            .build();
        let source = Arc::new(ParquetSource::new(table_schema));
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
