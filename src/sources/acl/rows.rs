//! `acl_entries` and `acl_rejects` rows as Arrow batches, column by column in the
//! order their schema files (`schemas/`) declare: one row per entry, or one row
//! for an object without any.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};

use super::entry::{Ace, ObjectAcl, Origin, mode_text};
use super::found::Failure;
use super::principals::Principal;
use crate::sources::columns::string_lists;

/// What every row of one source's run shares.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub origin: Origin,
    pub svm: Option<String>,
    /// The volume's UUID (ontap) or the local root (posix, known once discovery
    /// starts).
    pub volume: Arc<std::sync::OnceLock<String>>,
    /// `snapshot_date`, yyyy-mm-dd (UTC).
    pub date: String,
}

/// One collected object, with when and whether it is sensitive.
#[derive(Debug, Clone)]
pub struct Collected {
    pub acl: ObjectAcl,
    pub collected_at_micros: i64,
    pub sensitive: bool,
}

/// A path that could not be collected.
#[derive(Debug, Clone)]
pub struct Reject {
    pub source: String,
    pub path: String,
    pub failure: Failure,
}

/// (object, entry index and entry) for each row.
fn row_refs(objects: &[Collected]) -> Vec<(&Collected, Option<(usize, &Ace)>)> {
    let mut rows = Vec::new();
    for o in objects {
        if o.acl.entries.is_empty() {
            rows.push((o, None));
        }
        rows.extend(
            o.acl
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (o, Some((i, e)))),
        );
    }
    rows
}

pub fn strings<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(v.collect::<StringArray>())
}
pub fn bools(v: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(v.collect::<BooleanArray>())
}
pub fn ints(v: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    Arc::new(v.collect::<Int32Array>())
}
pub fn bigints(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(v.collect::<Int64Array>())
}

fn id(p: Option<&Principal>) -> Option<i64> {
    p.and_then(|p| p.id).map(i64::from)
}

/// The `acl_entries` rows of `objects`.
pub fn entries_batch(schema: &SchemaRef, snap: &Snapshot, objects: &[Collected]) -> RecordBatch {
    let rows = row_refs(objects);
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            entries_column(f, snap, &rows)
                .unwrap_or_else(|| panic!("no builder for acl_entries column `{}`", f.name()))
        })
        .collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .expect("the columns follow the schema (a unit test builds every one)")
}

fn entries_column(
    f: &Field,
    snap: &Snapshot,
    rows: &[(&Collected, Option<(usize, &Ace)>)],
) -> Option<ArrayRef> {
    let obj = || rows.iter().map(|(o, _)| &o.acl);
    let ace = || rows.iter().map(|(_, e)| e.map(|(_, a)| a));
    let same = |v: Option<&str>| strings(rows.iter().map(|_| v));
    Some(match f.name().as_str() {
        "snapshot_date" => same(Some(&snap.date)),
        "collected_at" => Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|(o, _)| o.collected_at_micros),
            )
            .with_timezone_opt(match f.data_type() {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            }),
        ),
        "source" => same(Some(snap.origin.as_str())),
        "svm" => same(snap.svm.as_deref()),
        "volume" => same(snap.volume.get().map(String::as_str)),
        "path" => strings(obj().map(|o| Some(o.path.as_str()))),
        "object_type" => strings(obj().map(|o| Some(o.object_type.as_str()))),
        "owner" => strings(obj().map(|o| o.owner.as_ref().map(|p| p.given.as_str()))),
        "owner_sid" => strings(obj().map(|o| o.owner.as_ref().and_then(|p| p.sid.as_deref()))),
        "owner_id" => bigints(obj().map(|o| id(o.owner.as_ref()))),
        "owner_resolved" => bools(obj().map(|o| o.owner.as_ref().and_then(|p| p.resolved))),
        "owner_group" => strings(obj().map(|o| o.group.as_ref().map(|p| p.given.as_str()))),
        "group_sid" => strings(obj().map(|o| o.group.as_ref().and_then(|p| p.sid.as_deref()))),
        "group_id" => bigints(obj().map(|o| id(o.group.as_ref()))),
        "security_style" => strings(obj().map(|o| o.security_style.as_deref())),
        "effective_style" => strings(obj().map(|o| o.effective_style.as_deref())),
        "control_flags" => ints(obj().map(|o| o.control_flags.map(|c| c as i32))),
        "dacl_present" => bools(obj().map(|o| o.dacl_present())),
        "dacl_protected" => bools(obj().map(|o| o.dacl_protected())),
        "mode" => ints(obj().map(|o| o.mode.map(|m| m as i32))),
        "mode_text" => Arc::new(
            obj()
                .map(|o| o.mode.map(mode_text))
                .collect::<StringArray>(),
        ),
        "setuid" => bools(obj().map(|o| o.mode.map(|m| m & 0o4000 != 0))),
        "setgid" => bools(obj().map(|o| o.mode.map(|m| m & 0o2000 != 0))),
        "sticky" => bools(obj().map(|o| o.mode.map(|m| m & 0o1000 != 0))),
        "entry_index" => ints(rows.iter().map(|(_, e)| e.map(|(i, _)| i as i32))),
        "principal" => strings(ace().map(|a| a.map(|a| a.principal.given.as_str()))),
        "principal_sid" => strings(ace().map(|a| a.and_then(|a| a.principal.sid.as_deref()))),
        "principal_id" => bigints(ace().map(|a| a.and_then(|a| a.principal.id).map(i64::from))),
        "principal_kind" => strings(ace().map(|a| a.map(|a| a.principal.kind.as_str()))),
        "principal_resolved" => bools(ace().map(|a| a.and_then(|a| a.principal.resolved))),
        "entry_type" => strings(ace().map(|a| a.map(|a| a.entry_type.as_str()))),
        "rights" => strings(ace().map(|a| a.map(|a| a.rights.basic()))),
        "access_mask" => bigints(ace().map(|a| a.map(|a| i64::from(a.rights.mask)))),
        "advanced_rights" => {
            string_lists(f.data_type(), ace().map(|a| a.map(|a| a.rights.advanced())))
        }
        "apply_to" => string_lists(f.data_type(), ace().map(|a| a.map(|a| a.apply_to.names()))),
        "inherited" => bools(ace().map(|a| a.map(|a| a.inherited))),
        "sensitive" => bools(rows.iter().map(|(o, _)| Some(o.sensitive))),
        _ => return None,
    })
}

/// Rows of one batch: how many `objects` make.
pub fn row_count(objects: &[Collected]) -> usize {
    objects.iter().map(|o| o.acl.entries.len().max(1)).sum()
}

pub fn rejects_batch(schema: &SchemaRef, rejects: &[Reject]) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "source" => strings(rejects.iter().map(|r| Some(r.source.as_str()))),
            "path" => strings(rejects.iter().map(|r| Some(r.path.as_str()))),
            "stage" => strings(rejects.iter().map(|r| Some(r.failure.stage.as_str()))),
            "http_status" => ints(rejects.iter().map(|r| r.failure.http_status.map(i32::from))),
            "reason" => strings(rejects.iter().map(|r| Some(r.failure.reason.as_str()))),
            other => panic!("no builder for acl_rejects column `{other}`"),
        })
        .collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rejects.len())),
    )
    .expect("the columns follow the schema (a unit test builds every one)")
}
