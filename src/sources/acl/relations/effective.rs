//! `acl.effective_access`: for every covered path, every user with any right,
//! through no share and through each share over the path — the access check of
//! `access.rs` with each user's token from `directory/`.
//!
//! It reads the job's table of this source's entries (`acl_entries`, as this
//! run wrote it) sorted by path, so one path's entries are in hand at a time,
//! and evaluates that path user by user into batches of `BATCH_ROWS`: memory
//! holds an input batch, one path's users and one output batch, whatever the
//! volume's size or the number of rows. Users are the
//! directory's, and the users an entry names that the directory does not know
//! (found by a first pass over the entries; their token: themselves, Everyone,
//! Authenticated Users). Past `effective_access_limit` rows the read fails, so
//! the run stops before it writes billions of rows.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{Int32Type, Int64Type, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::rows::BATCH_ROWS;
use super::{Access, Loader, one_stream};
use crate::sources::acl::access::{Ace, Dacl, Who, check};
use crate::sources::acl::directory::Directory;
use crate::sources::acl::entry::is_within;
use crate::sources::acl::ontap::shares::Permission;
use crate::sources::acl::options::{AclOptions, EffectiveScope};
use crate::sources::acl::principals::NtfsNames;
use crate::sources::acl::rights::{FULL_CONTROL, Rights};
use crate::sources::acl::rows::{bigints, bools, ints, strings};
use crate::sources::columns::{batch, string_lists};

/// OWNER RIGHTS.
const OWNER_RIGHTS: &str = "S-1-3-4";

/// The relation.
#[derive(Debug)]
pub struct EffectiveAccess {
    schema: SchemaRef,
    loader: Arc<Loader>,
    /// The job's table of this source's entries.
    entries: Option<String>,
    scope: EffectiveScope,
    limit: u64,
}

impl EffectiveAccess {
    pub fn new(
        schema: SchemaRef,
        loader: Arc<Loader>,
        entries: Option<String>,
        options: &AclOptions,
    ) -> Self {
        EffectiveAccess {
            schema,
            loader,
            entries,
            scope: options.effective_access,
            limit: options.effective_access_limit,
        }
    }

    /// The entries of the covered NTFS paths, path by path in order.
    fn entries_sql(&self, table: &str) -> String {
        let sensitive = match self.scope {
            EffectiveScope::Sensitive => " AND sensitive",
            EffectiveScope::All => "",
        };
        format!(
            "SELECT path, owner, owner_sid, dacl_present, entry_index, principal, principal_sid, \
             entry_type, access_mask, \
             coalesce(has_any(apply_to, 'this_folder'), false) AS applies, sensitive, \
             CAST(snapshot_date AS VARCHAR) AS snapshot_date, CAST(volume AS VARCHAR) AS volume \
             FROM \"{}\" WHERE effective_style = 'ntfs'{sensitive} \
             ORDER BY volume, path, entry_index NULLS FIRST",
            table.replace('"', "\"\"")
        )
    }
}

#[async_trait]
impl TableProvider for EffectiveAccess {
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
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = self.entries.as_deref().ok_or_else(|| {
            DataFusionError::Plan(
                "effective access reads the job's table of the ACL source's rows (acl_entries), and the job has none".into(),
            )
        })?;
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Internal("effective access is read in a naslake session".into())
            })?;
        let ctx = SessionContext::new_with_state(state.clone());
        // Planned here, read when the table is (EXPLAIN reads neither).
        let named = ctx
            .sql(&named_users_sql(table))
            .await?
            .create_physical_plan()
            .await?;
        let input = ctx
            .sql(&self.entries_sql(table))
            .await?
            .create_physical_plan()
            .await?;
        let part = Part {
            schema: self.schema.clone(),
            loader: self.loader.clone(),
            input,
            named,
            limit: self.limit,
        };
        one_stream(self.schema.clone(), Arc::new(part), projection, limit)
    }
}

/// A user an entry names, as it names them.
#[derive(Debug, Clone)]
struct Named {
    name: String,
    sid: Option<String>,
}

/// An input batch and its next row.
struct Cursor {
    batch: RecordBatch,
    row: usize,
}

/// The query of every user an NTFS entry of kind `user` names.
fn named_users_sql(table: &str) -> String {
    format!(
        "SELECT DISTINCT principal, principal_sid FROM \"{}\" \
         WHERE effective_style = 'ntfs' AND principal_kind = 'user' AND principal IS NOT NULL \
         ORDER BY principal, principal_sid",
        table.replace('"', "\"\"")
    )
}

/// The users [`named_users_sql`]'s plan gives.
async fn named_users(plan: Arc<dyn ExecutionPlan>, ctx: Arc<TaskContext>) -> DfResult<Vec<Named>> {
    let mut out = Vec::new();
    for b in datafusion::physical_plan::collect(plan, ctx).await? {
        let (names, sids) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            out.push(Named {
                name: names.value(i).to_string(),
                sid: (!sids.is_null(i)).then(|| sids.value(i).to_string()),
            });
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct Part {
    schema: SchemaRef,
    loader: Arc<Loader>,
    input: Arc<dyn ExecutionPlan>,
    /// The plan of the users entries name (`named_users_sql`).
    named: Arc<dyn ExecutionPlan>,
    limit: u64,
}

impl PartitionStream for Part {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let (loader, input, limit) = (self.loader.clone(), self.input.clone(), self.limit);
        let named = self.named.clone();
        let start = async move {
            let named = named_users(named, ctx.clone()).await?;
            let access = loader.access().await.map_err(DataFusionError::Execution)?;
            let entries = datafusion::physical_plan::execute_stream(input, ctx)?;
            Ok::<_, DataFusionError>(Walker::new(schema, access, entries, named, limit))
        };
        let rows = futures::stream::once(start).flat_map(|walker| match walker {
            Ok(w) => w.into_stream().boxed(),
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), rows))
    }
}

/// One entry row of the input.
#[derive(Debug, Clone)]
struct EntryRow {
    principal: Option<String>,
    principal_sid: Option<String>,
    entry_type: Option<String>,
    mask: u32,
    applies: bool,
}

/// One path with its entries.
#[derive(Debug, Clone, Default)]
struct PathAcl {
    path: String,
    owner: Option<String>,
    owner_sid: Option<String>,
    dacl_present: Option<bool>,
    sensitive: bool,
    snapshot_date: String,
    volume: String,
    entries: Vec<EntryRow>,
}

/// One output row.
struct Row {
    path: Arc<str>,
    share: Option<Arc<str>>,
    user: String,
    user_sid: Option<String>,
    mask: u32,
    via: Vec<String>,
    disabled: Option<bool>,
    sensitive: bool,
    snapshot_date: Arc<str>,
    volume: Arc<str>,
}

/// Walks the sorted entries path by path.
struct Walker {
    schema: SchemaRef,
    access: Arc<Access>,
    entries: SendableRecordBatchStream,
    limit: u64,
    /// The input batch being read.
    input: Option<Cursor>,
    /// The path being gathered.
    current: Option<PathAcl>,
    /// The path being evaluated, user by user.
    pending: Option<Pending>,
    /// Rows of the next output batch (at most `BATCH_ROWS`).
    out: Vec<Row>,
    written: u64,
    shares: Vec<ShareAcl>,
    /// Users entries name that the directory does not know: identity
    /// `n + k` is the k-th, with its name (lower case) to find it by.
    strangers: Vec<Named>,
    stranger_by_name: std::collections::HashMap<String, u32>,
    /// Scratch for each path's candidate users (a stamp per identity).
    seen: Vec<u32>,
    stamp: u32,
}

/// A share's ACL, resolved once.
struct ShareAcl {
    name: Arc<str>,
    path: String,
    aces: Vec<Ace>,
}

impl Walker {
    fn new(
        schema: SchemaRef,
        access: Arc<Access>,
        entries: SendableRecordBatchStream,
        named: Vec<Named>,
        limit: u64,
    ) -> Self {
        let dir = &access.directory;
        let mut strangers: Vec<Named> = Vec::new();
        let mut stranger_by_name = std::collections::HashMap::new();
        for user in named {
            if dir.find(user.sid.as_deref(), Some(&user.name)).is_some() {
                continue;
            }
            let key = user.name.to_lowercase();
            if let std::collections::hash_map::Entry::Vacant(slot) = stranger_by_name.entry(key) {
                slot.insert(strangers.len() as u32);
                strangers.push(user);
            }
        }
        let names = NtfsNames::default();
        let n = dir.identities.len() as u32;
        let shares = access
            .shares
            .iter()
            .map(|s| ShareAcl {
                name: s.name.as_str().into(),
                path: s.path.clone(),
                aces: s
                    .acl
                    .iter()
                    .map(|e| {
                        let who = if e.kind == "windows" {
                            let sid = e.sid.clone().or_else(|| names.principal(&e.principal).sid);
                            dir.find(sid.as_deref(), Some(&e.principal))
                                .or_else(|| {
                                    stranger_by_name
                                        .get(&e.principal.to_lowercase())
                                        .map(|k| n + k)
                                })
                                .map_or(Who::Nobody, Who::Identity)
                        } else {
                            Who::Nobody
                        };
                        match e.permission {
                            Permission::NoAccess => Ace {
                                who,
                                allow: false,
                                mask: FULL_CONTROL,
                            },
                            p => Ace {
                                who,
                                allow: true,
                                mask: p.mask(),
                            },
                        }
                    })
                    .collect::<Vec<_>>(),
            })
            .map(|mut s| {
                // A share's permissions are a DACL in canonical order (denials
                // first) whatever order the listing gives them in.
                s.aces.sort_by_key(|a| a.allow);
                s
            })
            .collect();
        let identities = dir.identities.len();
        Walker {
            schema,
            access,
            entries,
            limit,
            input: None,
            current: None,
            pending: None,
            out: Vec::new(),
            written: 0,
            shares,
            strangers,
            stranger_by_name,
            seen: vec![0; identities],
            stamp: 0,
        }
    }

    fn into_stream(self) -> futures::stream::BoxStream<'static, DfResult<RecordBatch>> {
        futures::stream::unfold(Some(self), |state| async move {
            let mut w = state?;
            match w.next_batch().await {
                Ok(Some(b)) => Some((Ok(b), Some(w))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
        .boxed()
    }

    /// The next batch of rows, or `None` at the end: paths are evaluated user
    /// by user until the batch is full, so a path any number of users can
    /// reach never makes a larger batch.
    async fn next_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        while self.out.len() < BATCH_ROWS {
            if let Some(mut pending) = self.pending.take() {
                self.advance(&mut pending)?;
                if pending.next < pending.subjects.len() {
                    self.pending = Some(pending);
                }
                continue;
            }
            match self.next_path().await? {
                Some(path) => self.pending = Some(self.prepare(&path)),
                None => break,
            }
        }
        if self.out.is_empty() {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.out);
        self.written += rows.len() as u64;
        Ok(Some(rows_batch(&self.schema, &rows)))
    }

    /// The next path with all its entries (they come sorted by path).
    async fn next_path(&mut self) -> DfResult<Option<PathAcl>> {
        loop {
            if let Some(Cursor { batch, mut row }) = self.input.take() {
                let columns = EntryColumns::of(&batch)?;
                while row < batch.num_rows() {
                    let done = columns.gather(row, &mut self.current);
                    row += 1;
                    if done.is_some() {
                        let batch = batch.clone();
                        self.input = Some(Cursor { batch, row });
                        return Ok(done);
                    }
                }
            }
            match self.entries.next().await {
                Some(batch) => {
                    self.input = Some(Cursor {
                        batch: batch?,
                        row: 0,
                    })
                }
                None => return Ok(self.current.take()),
            }
        }
    }

    /// A path's entries resolved against the directory, and the users they
    /// can reach.
    fn prepare(&mut self, p: &PathAcl) -> Pending {
        let access = self.access.clone();
        let dir = &access.directory;
        let n = dir.identities.len() as u32;
        let mut aces = Vec::new();
        for e in p.entries.iter().filter(|e| e.applies) {
            let allow = match e.entry_type.as_deref() {
                Some("allow") => true,
                Some("deny") => false,
                _ => continue,
            };
            let who = if e.principal_sid.as_deref() == Some(OWNER_RIGHTS) {
                Who::OwnerRights
            } else if let Some(id) = dir.find(e.principal_sid.as_deref(), e.principal.as_deref()) {
                Who::Identity(id)
            } else if let Some(k) = e
                .principal
                .as_ref()
                .and_then(|p| self.stranger_by_name.get(&p.to_lowercase()))
            {
                Who::Identity(n + k)
            } else {
                Who::Nobody
            };
            aces.push(Ace {
                who,
                allow,
                mask: e.mask,
            });
        }
        let owner = dir
            .find(p.owner_sid.as_deref(), p.owner.as_deref())
            .or_else(|| {
                p.owner
                    .as_ref()
                    .and_then(|o| self.stranger_by_name.get(&o.to_lowercase()))
                    .map(|k| n + k)
            });
        let null_dacl = p.dacl_present == Some(false);
        // The users any allow entry (or the owner's implicit rights) can reach.
        self.stamp = self.stamp.wrapping_add(1).max(1);
        let (seen, stamp) = (&mut self.seen, self.stamp);
        let mut users = Vec::new();
        let mut reach = |who: u32| {
            for &u in dir.holders(who) {
                if dir.is_windows_user(u) && seen[u as usize] != stamp {
                    seen[u as usize] = stamp;
                    users.push(u);
                }
            }
        };
        if null_dacl {
            reach(dir.everyone());
        } else {
            for a in aces.iter().filter(|a| a.allow) {
                if let Who::Identity(id) = a.who
                    && id < n
                {
                    reach(id);
                }
            }
            if let Some(o) = owner {
                reach(o);
            }
        }
        users.sort_unstable();
        let subjects = users
            .into_iter()
            .map(Subject::Known)
            .chain((0..self.strangers.len() as u32).map(Subject::Stranger))
            .collect();
        Pending {
            path: p.path.as_str().into(),
            snapshot_date: p.snapshot_date.as_str().into(),
            volume: p.volume.as_str().into(),
            sensitive: p.sensitive,
            covering: (0..self.shares.len())
                .filter(|i| is_within(&p.path, &self.shares[*i].path))
                .collect(),
            aces,
            owner,
            null_dacl,
            subjects,
            next: 0,
        }
    }

    /// Evaluates `p`'s users until the batch is full or none is left.
    fn advance(&mut self, p: &mut Pending) -> DfResult<()> {
        let access = self.access.clone();
        let dir = &access.directory;
        let n = dir.identities.len() as u32;
        let dacl = match p.null_dacl {
            true => Dacl::Null,
            false => Dacl::Entries(&p.aces),
        };
        while p.next < p.subjects.len() && self.out.len() < BATCH_ROWS {
            let subject = p.subjects[p.next];
            p.next += 1;
            let holds = |id: u32| subject.holds(dir, n, id);
            let is_owner = p.owner.is_some_and(holds);
            let ntfs = check(dacl, holds, is_owner);
            if ntfs.granted == 0 {
                continue;
            }
            let via = match (ntfs.deciding.map(|i| p.aces[i].who), subject) {
                (Some(Who::Identity(g)), Subject::Known(u)) if g != u && g < n => dir.chain(u, g),
                (Some(Who::Identity(g)), Subject::Stranger(_)) if g < n => {
                    vec![dir.get(g).name.clone()]
                }
                _ => vec![],
            };
            let (user, user_sid, disabled) = match subject {
                Subject::Known(u) => {
                    let i = dir.get(u);
                    (i.name.clone(), i.sid.clone(), i.disabled)
                }
                Subject::Stranger(k) => {
                    let s = &self.strangers[k as usize];
                    (s.name.clone(), s.sid.clone(), None)
                }
            };
            let row = |share: Option<Arc<str>>, mask: u32| Row {
                path: p.path.clone(),
                share,
                user: user.clone(),
                user_sid: user_sid.clone(),
                mask,
                via: via.clone(),
                disabled,
                sensitive: p.sensitive,
                snapshot_date: p.snapshot_date.clone(),
                volume: p.volume.clone(),
            };
            self.out.push(row(None, ntfs.granted));
            for s in p.covering.iter().map(|i| &self.shares[*i]) {
                let through = check(Dacl::Entries(&s.aces), holds, false).granted & ntfs.granted;
                if through != 0 {
                    self.out.push(row(Some(s.name.clone()), through));
                }
            }
        }
        if self.written + self.out.len() as u64 > self.limit {
            return Err(DataFusionError::Execution(format!(
                "effective access has more than {} rows (effective_access_limit): narrow `sensitive`, use effective_access = \"sensitive\", or raise the limit",
                self.limit
            )));
        }
        Ok(())
    }
}

/// A path being evaluated: its entries resolved, the users to evaluate, and
/// the next of them.
struct Pending {
    path: Arc<str>,
    snapshot_date: Arc<str>,
    volume: Arc<str>,
    sensitive: bool,
    /// The shares over the path (indices into the walker's).
    covering: Vec<usize>,
    aces: Vec<Ace>,
    owner: Option<u32>,
    null_dacl: bool,
    subjects: Vec<Subject>,
    next: usize,
}

/// The columns of an input batch of entries.
struct EntryColumns<'a> {
    path: &'a StringArray,
    owner: &'a StringArray,
    owner_sid: &'a StringArray,
    principal: &'a StringArray,
    principal_sid: &'a StringArray,
    entry_type: &'a StringArray,
    date: &'a StringArray,
    volume: &'a StringArray,
    dacl: &'a BooleanArray,
    applies: &'a BooleanArray,
    sensitive: &'a BooleanArray,
    index: &'a Int32Array,
    mask: &'a Int64Array,
}

impl<'a> EntryColumns<'a> {
    fn of(b: &'a RecordBatch) -> DfResult<Self> {
        let missing = |name: &str| {
            DataFusionError::Internal(format!(
                "entries column {name} is missing or of another type"
            ))
        };
        let text = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| missing(name))
        };
        let flag = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_boolean_opt())
                .ok_or_else(|| missing(name))
        };
        Ok(EntryColumns {
            path: text("path")?,
            owner: text("owner")?,
            owner_sid: text("owner_sid")?,
            principal: text("principal")?,
            principal_sid: text("principal_sid")?,
            entry_type: text("entry_type")?,
            date: text("snapshot_date")?,
            volume: text("volume")?,
            dacl: flag("dacl_present")?,
            applies: flag("applies")?,
            sensitive: flag("sensitive")?,
            index: b
                .column_by_name("entry_index")
                .and_then(|c| c.as_primitive_opt::<Int32Type>())
                .ok_or_else(|| missing("entry_index"))?,
            mask: b
                .column_by_name("access_mask")
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| missing("access_mask"))?,
        })
    }

    /// Adds row `i` to the path being gathered; when it starts another path,
    /// the finished one is returned.
    fn gather(&self, i: usize, current: &mut Option<PathAcl>) -> Option<PathAcl> {
        let opt = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
        let same = current
            .as_ref()
            .is_some_and(|c| c.path == self.path.value(i) && c.volume == self.volume.value(i));
        let done = if same {
            None
        } else {
            current.replace(PathAcl {
                path: self.path.value(i).to_string(),
                owner: opt(self.owner),
                owner_sid: opt(self.owner_sid),
                dacl_present: (!self.dacl.is_null(i)).then(|| self.dacl.value(i)),
                sensitive: !self.sensitive.is_null(i) && self.sensitive.value(i),
                snapshot_date: self.date.value(i).to_string(),
                volume: self.volume.value(i).to_string(),
                entries: Vec::new(),
            })
        };
        if !self.index.is_null(i) {
            let cur = current.as_mut().expect("set above");
            cur.entries.push(EntryRow {
                principal: opt(self.principal),
                principal_sid: opt(self.principal_sid),
                entry_type: opt(self.entry_type),
                mask: u32::try_from(self.mask.value(i)).unwrap_or(0),
                applies: !self.applies.is_null(i) && self.applies.value(i),
            });
        }
        done
    }
}

/// Whom rights are computed for.
#[derive(Debug, Clone, Copy)]
enum Subject {
    Known(u32),
    /// The k-th user entries name that the directory does not know: identity
    /// `n + k` in the entries.
    Stranger(u32),
}

impl Subject {
    fn holds(self, dir: &Directory, n: u32, id: u32) -> bool {
        match self {
            Subject::Known(u) => id < n && dir.holds(u, id).is_some(),
            Subject::Stranger(k) => id == n + k || dir.everyone_holds(id),
        }
    }
}

fn rows_batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
    batch(schema, "schemas/acl_effective_access.toml", |f| {
        let it = || rows.iter();
        Some(match f.name().as_str() {
            "path" => strings(it().map(|r| Some(&*r.path))),
            "share" => strings(it().map(|r| r.share.as_deref())),
            "user" => strings(it().map(|r| Some(r.user.as_str()))),
            "user_sid" => strings(it().map(|r| r.user_sid.as_deref())),
            "access_mask" => bigints(it().map(|r| Some(i64::from(r.mask)))),
            "rights" => {
                let names: Vec<String> = it()
                    .map(|r| Rights::from_mask(r.mask).basic().to_string())
                    .collect();
                strings(names.iter().map(|s| Some(s.as_str())))
            }
            "via" => string_lists(f.data_type(), it().map(|r| Some(&r.via))),
            "via_depth" => ints(it().map(|r| Some(r.via.len() as i32))),
            "account_disabled" => bools(it().map(|r| r.disabled)),
            "sensitive" => bools(it().map(|r| Some(r.sensitive))),
            "snapshot_date" => strings(it().map(|r| Some(&*r.snapshot_date))),
            "volume" => strings(it().map(|r| Some(&*r.volume))),
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_their_folder_and_below() {
        assert!(is_within("/hr", "/hr"));
        assert!(is_within("/hr/pay.xlsx", "/hr"));
        assert!(!is_within("/hrx", "/hr"));
        assert!(is_within("/anything", "/"));
    }
}
