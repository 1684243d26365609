//! The rows of `acl.principals`, `acl.memberships` and `acl.shares`, column by
//! column in the order their schema files declare.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};

use super::Access;
use crate::sources::acl::directory::{Directory, IdentityKind};
use crate::sources::acl::ontap::shares::{Share, ShareEntry};
use crate::sources::acl::principals::NtfsNames;
use crate::sources::acl::rows::{Snapshot, bigints, bools, ints, strings};
use crate::sources::columns::{batch, string_lists};

pub const PRINCIPALS: &str = include_str!("../../../../schemas/acl_principals.toml");
pub const MEMBERSHIPS: &str = include_str!("../../../../schemas/acl_memberships.toml");
pub const SHARES: &str = include_str!("../../../../schemas/acl_shares.toml");
pub const EFFECTIVE_ACCESS: &str = include_str!("../../../../schemas/acl_effective_access.toml");

/// Rows per batch.
pub const BATCH_ROWS: usize = 8192;

/// The partition keys every relation shares, or `None` for another column.
pub fn snapshot_column(f: &Field, snap: &Snapshot, rows: usize) -> Option<ArrayRef> {
    let same = |v: Option<&str>| strings(std::iter::repeat_n(v, rows));
    match f.name().as_str() {
        "snapshot_date" => Some(same(Some(&snap.date))),
        "volume" => Some(same(snap.volume.get().map(String::as_str))),
        "svm" => Some(same(snap.svm.as_deref())),
        _ => None,
    }
}

pub fn principals(
    schema: SchemaRef,
    access: Arc<Access>,
    snap: Snapshot,
) -> Box<dyn Iterator<Item = RecordBatch> + Send> {
    let n = access.directory.identities.len();
    Box::new((0..n).step_by(BATCH_ROWS).map(move |start| {
        let chunk = &access.directory.identities[start..(start + BATCH_ROWS).min(n)];
        batch(&schema, "schemas/acl_principals.toml", |f| {
            let it = || chunk.iter();
            Some(match f.name().as_str() {
                "name" => strings(it().map(|i| Some(i.name.as_str()))),
                "sid" => strings(it().map(|i| i.sid.as_deref())),
                "kind" => strings(it().map(|i| Some(i.kind.as_str()))),
                "origin" => strings(it().map(|i| Some(i.described.as_str()))),
                "dn" => strings(it().map(|i| i.dn.as_deref())),
                "disabled" => bools(it().map(|i| i.disabled)),
                "last_logon" => Arc::new(
                    it().map(|i| i.last_logon_micros)
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone_opt(timezone(f)),
                ),
                "in_cycle" => bools(it().map(|i| Some(i.in_cycle))),
                _ => return snapshot_column(f, &snap, chunk.len()),
            })
        })
    }))
}

fn timezone(f: &Field) -> Option<Arc<str>> {
    match f.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    }
}

/// One row of `acl.memberships`: a user and a group in its token.
struct Membership {
    user: u32,
    group: u32,
    depth: u16,
}

/// `acl.memberships`, a batch of users' tokens at a time.
pub fn memberships(
    schema: SchemaRef,
    access: Arc<Access>,
    snap: Snapshot,
) -> Box<dyn Iterator<Item = RecordBatch> + Send> {
    let n = access.directory.identities.len() as u32;
    let mut next_user = 0u32;
    Box::new(std::iter::from_fn(move || {
        let dir = &access.directory;
        let mut rows = Vec::new();
        while next_user < n && rows.len() < BATCH_ROWS {
            let user = next_user;
            next_user += 1;
            if dir.get(user).kind == IdentityKind::User {
                rows.extend(dir.token(user).iter().map(|h| Membership {
                    user,
                    group: h.group,
                    depth: h.depth,
                }));
            }
        }
        (!rows.is_empty()).then(|| membership_batch(&schema, &rows, dir, &snap))
    }))
}

fn membership_batch(
    schema: &SchemaRef,
    rows: &[Membership],
    dir: &Directory,
    snap: &Snapshot,
) -> RecordBatch {
    batch(schema, "schemas/acl_memberships.toml", |f| {
        let it = || rows.iter();
        let id = |i: u32| dir.get(i);
        Some(match f.name().as_str() {
            "user" => strings(it().map(|m| Some(id(m.user).name.as_str()))),
            "user_sid" => strings(it().map(|m| id(m.user).sid.as_deref())),
            "group" => strings(it().map(|m| Some(id(m.group).name.as_str()))),
            "group_sid" => strings(it().map(|m| id(m.group).sid.as_deref())),
            "depth" => ints(it().map(|m| Some(i32::from(m.depth)))),
            "chain" => string_lists(
                f.data_type(),
                it().map(|m| Some(dir.chain(m.user, m.group))),
            ),
            _ => return snapshot_column(f, snap, rows.len()),
        })
    })
}

/// One row of `acl.shares`: a share and one of its entries (none: its one row).
struct ShareRow<'a> {
    share: &'a Share,
    entry: Option<usize>,
}

/// `acl.shares` (a handful of rows: made at once).
pub fn shares(
    schema: SchemaRef,
    access: Arc<Access>,
    snap: Snapshot,
) -> Box<dyn Iterator<Item = RecordBatch> + Send> {
    Box::new(share_batches(&schema, &access, &snap).into_iter())
}

fn share_batches(schema: &SchemaRef, access: &Access, snap: &Snapshot) -> Vec<RecordBatch> {
    let rows: Vec<ShareRow<'_>> = access
        .shares
        .iter()
        .flat_map(|share| {
            let entries: Vec<Option<usize>> = match share.acl.len() {
                0 => vec![None],
                n => (0..n).map(Some).collect(),
            };
            entries
                .into_iter()
                .map(move |entry| ShareRow { share, entry })
        })
        .collect();
    let dir = &access.directory;
    let names = NtfsNames::default();
    let sid = |r: &ShareRow<'_>| -> Option<String> {
        let e = &r.share.acl[r.entry?];
        if e.kind != "windows" {
            return None;
        }
        e.sid
            .clone()
            .or_else(|| names.principal(&e.principal).sid)
            .or_else(|| {
                dir.find(None, Some(&e.principal))
                    .and_then(|i| dir.get(i).sid.clone())
            })
    };
    rows.chunks(BATCH_ROWS)
        .map(|chunk| {
            batch(schema, "schemas/acl_shares.toml", |f| {
                let it = || chunk.iter();
                fn entry<'a>(r: &ShareRow<'a>) -> Option<&'a ShareEntry> {
                    r.entry.map(|i| &r.share.acl[i])
                }
                Some(match f.name().as_str() {
                    "share" => strings(it().map(|r| Some(r.share.name.as_str()))),
                    "share_path" => strings(it().map(|r| Some(r.share.share_path.as_str()))),
                    "path" => strings(it().map(|r| Some(r.share.path.as_str()))),
                    "entry_index" => ints(it().map(|r| r.entry.map(|i| i as i32))),
                    "principal" => strings(it().map(|r| entry(r).map(|e| e.principal.as_str()))),
                    "principal_sid" => {
                        let sids: Vec<Option<String>> = it().map(sid).collect();
                        strings(sids.iter().map(Option::as_deref))
                    }
                    "permission" => strings(it().map(|r| entry(r).map(|e| e.permission.as_str()))),
                    "access_mask" => {
                        bigints(it().map(|r| entry(r).map(|e| i64::from(e.permission.mask()))))
                    }
                    "type" => strings(it().map(|r| entry(r).map(|e| e.kind.as_str()))),
                    _ => return snapshot_column(f, snap, chunk.len()),
                })
            })
        })
        .collect()
}
