//! What the ACL kind offers the job's SQL besides `acl_entries`' rows, as
//! `SOURCE.NAME` (`acl.principals`, …): who is who (`directory/`), the shares
//! over the volume (`ontap/shares.rs`), and who can reach what
//! (`effective.rs`, the access check of `access.rs` for every user).
//!
//! Nothing is asked of the filer or read from the directory export until a
//! job's table reads one of these: [`Loader`] gathers it all once, at the first
//! scan, so a job without those tables makes no such request.

pub mod effective;
pub mod rows;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::directory::{Builder, Directory, ldap, ldif};
use super::ontap::Collector;
use super::ontap::shares::Share;
use super::options::{AclOptions, Collect, LdapSpec};
use super::rows::Snapshot;
use crate::model::schema::TableSchema;
use crate::sources::Relation;
use crate::storage::Location;

/// An identity export larger than this is refused: it is read whole.
const MAX_IDENTITIES_BYTES: u64 = 2 << 30;

/// Everything that decides access besides the paths' own DACLs.
#[derive(Debug)]
pub struct Access {
    pub directory: Directory,
    pub shares: Vec<Share>,
}

/// Gathers [`Access`] once, when a relation is first read.
#[derive(Debug)]
pub struct Loader {
    source: String,
    collect: Collect,
    identities: Option<String>,
    ldap: Option<LdapSpec>,
    identity_domain: Option<String>,
    /// Set by discovery: the ONTAP client, and the job's input.
    pub collector: Arc<OnceLock<Collector>>,
    pub input: Arc<OnceLock<Option<Location>>>,
    pub snapshot: Snapshot,
    access: tokio::sync::OnceCell<Arc<Access>>,
}

impl Loader {
    pub fn new(source: &str, options: &AclOptions, snapshot: Snapshot) -> Self {
        Loader {
            source: source.to_string(),
            collect: options.collect,
            identities: options.identities.clone(),
            ldap: options.ldap.clone(),
            identity_domain: options.identity_domain.clone(),
            collector: Arc::default(),
            input: Arc::default(),
            snapshot,
            access: tokio::sync::OnceCell::new(),
        }
    }

    /// The directory and shares, gathered at the first call.
    pub async fn access(&self) -> Result<Arc<Access>, String> {
        self.access
            .get_or_try_init(|| async { self.gather().await.map(Arc::new) })
            .await
            .cloned()
            .map_err(|e| format!("source `{}`: {e}", self.source))
    }

    async fn gather(&self) -> Result<Access, String> {
        let mut builder = Builder::new(self.identity_domain.clone());
        if self.identities.is_none() && self.ldap.is_none() {
            tracing::warn!(
                source = %self.source,
                "no directory (`identities` or `[ldap]`): effective access knows only the users the entries name, and no group's members"
            );
        }
        if let Some(spec) = &self.identities {
            let input = self.input.get().and_then(Option::as_ref);
            let bytes = read_identities(spec, input).await?;
            let text = ldif::utf8(&bytes);
            for record in ldif::records(&text) {
                let record = record.map_err(|e| format!("`identities` {spec}: {e}"))?;
                builder.ldif_record(&record);
            }
        }
        if let Some(spec) = &self.ldap {
            // The whole read has a deadline: each request's own timeout does not
            // stop a server that answers page after page.
            let deadline = std::time::Duration::from_secs(spec.deadline_secs);
            tokio::time::timeout(deadline, self.read_ldap(spec, &mut builder))
                .await
                .map_err(|_| {
                    format!(
                        "LDAP server {}: the directory was not read within {} s (`ldap.deadline_secs`)",
                        spec.url, spec.deadline_secs
                    )
                })??;
        }
        let shares = match self.collect {
            Collect::Posix => vec![],
            Collect::Ontap => {
                let c = self.collector.get().ok_or(
                    "the ONTAP client was not connected (shares and groups are read where the paths were found)",
                )?;
                builder.local_groups(&c.local_groups().await?);
                builder.unix_groups(&c.unix_groups().await?);
                c.shares().await?
            }
        };
        let directory = builder.finish();
        let configured = self.identities.is_some() || self.ldap.is_some();
        if configured && directory.users().next().is_none() {
            tracing::warn!(
                source = %self.source,
                "the directory (`identities` or `[ldap]`) holds no users: effective access knows only the users the entries name; check the export or `ldap.base_dn`"
            );
        }
        let p = &directory.problems;
        tracing::info!(
            source = %self.source,
            identities = directory.identities.len(),
            shares = shares.len(),
            unresolved_members = p.unresolved_members,
            cycles = p.cycles,
            "directory read"
        );
        if p.unresolved_members + p.bad_sids + p.bad_numbers + p.cycles > 0 {
            tracing::warn!(
                source = %self.source,
                unresolved_members = p.unresolved_members,
                undecodable_sids = p.bad_sids,
                unreadable_numbers = p.bad_numbers,
                cycles_cut = p.cycles,
                "the directory has members nothing describes, values that do not decode, or groups that contain themselves (see acl_principals: kind 'unresolved', in_cycle)"
            );
        }
        Ok(Access { directory, shares })
    }
}

impl Loader {
    async fn read_ldap(&self, spec: &LdapSpec, builder: &mut Builder) -> Result<(), String> {
        let password = ldap::password(spec).await?;
        let mut session = ldap::Session::bind(spec, &password).await?;
        if self.identity_domain.is_none() {
            let netbios = session.netbios_name().await.unwrap_or_else(|e| {
                // Names can still be made from the base DN: the run goes on.
                tracing::warn!(source = %self.source, error = %e, "the NetBIOS domain lookup failed");
                None
            });
            if netbios.is_none() {
                tracing::warn!(
                    source = %self.source,
                    "the LDAP server names no NetBIOS domain (CN=Partitions): names take the base DN's first DC=; set `identity_domain` if the filer's differ"
                );
            }
            builder.default_domain(netbios);
        }
        let entries = session.each_entry(|r| builder.ldif_record(&r)).await?;
        session.unbind().await;
        tracing::info!(source = %self.source, entries, "directory entries read over LDAP");
        Ok(())
    }
}

/// Binds to the directory server and leaves: whether the job's account may
/// read it.
pub async fn check_bind(spec: &LdapSpec) -> Result<(), String> {
    let password = ldap::password(spec).await?;
    ldap::Session::bind(spec, &password).await?.unbind().await;
    Ok(())
}

/// Where the export lies: `spec` is a path under the job's input, or an
/// address; the third part names it in messages.
fn locate_identities(
    spec: &str,
    input: Option<&Location>,
) -> Result<
    (
        Arc<dyn object_store::ObjectStore>,
        object_store::path::Path,
        String,
    ),
    String,
> {
    if spec.contains("://") || spec.starts_with('/') || crate::storage::is_remote(spec) {
        let at = Location::open(spec).map_err(|e| e.to_string())?;
        return Ok((at.store.clone(), at.prefix.clone(), at.display.clone()));
    }
    let input = input.ok_or_else(|| {
        format!("`identities` = \"{spec}\" is a path under the job's input, and the job has none")
    })?;
    Ok((
        input.store.clone(),
        input.child(spec),
        format!("{spec} under the input"),
    ))
}

/// Refuses an export larger than naslake reads.
fn check_size(size: u64, shown: &str) -> Result<(), String> {
    if size > MAX_IDENTITIES_BYTES {
        return Err(format!(
            "`identities` {shown} is {size} bytes; naslake reads an export of at most {MAX_IDENTITIES_BYTES}"
        ));
    }
    Ok(())
}

/// Whether the export is there and of a size naslake reads (one HEAD): a
/// mistyped path stops the run before the walk.
pub async fn check_identities(spec: &str, input: Option<&Location>) -> Result<(), String> {
    let (store, key, shown) = locate_identities(spec, input)?;
    let meta = store
        .head(&key)
        .await
        .map_err(|e| format!("`identities` {shown}: {e}"))?;
    check_size(meta.size, &shown)
}

/// The export's bytes.
async fn read_identities(spec: &str, input: Option<&Location>) -> Result<bytes::Bytes, String> {
    let (store, key, shown) = locate_identities(spec, input)?;
    let got = store
        .get(&key)
        .await
        .map_err(|e| format!("`identities` {shown}: {e}"))?;
    check_size(got.meta.size, &shown)?;
    got.bytes()
        .await
        .map_err(|e| format!("`identities` {shown}: {e}"))
}

/// The relations of a source, with `rows` the job's table of its entries.
pub fn relations(loader: &Arc<Loader>, rows: Option<&str>, options: &AclOptions) -> Vec<Relation> {
    let table = |file: &str, text: &str| {
        TableSchema::parse(text, file)
            .expect("the built-in schemas are valid (a unit test reads them)")
            .table_schema()
    };
    let lazy = |name: &'static str, schema: SchemaRef, make: MakeRows| Relation {
        name,
        table: Arc::new(LazyRows {
            schema,
            loader: loader.clone(),
            make,
        }),
    };
    vec![
        lazy(
            "principals",
            table("schemas/acl_principals.toml", rows::PRINCIPALS),
            rows::principals,
        ),
        lazy(
            "memberships",
            table("schemas/acl_memberships.toml", rows::MEMBERSHIPS),
            rows::memberships,
        ),
        lazy(
            "shares",
            table("schemas/acl_shares.toml", rows::SHARES),
            rows::shares,
        ),
        Relation {
            name: "effective_access",
            table: Arc::new(effective::EffectiveAccess::new(
                table("schemas/acl_effective_access.toml", rows::EFFECTIVE_ACCESS),
                loader.clone(),
                rows.map(str::to_string),
                options,
            )),
        },
    ]
}

/// Batches of a relation, made one at a time from what the loader gathered.
type MakeRows =
    fn(SchemaRef, Arc<Access>, Snapshot) -> Box<dyn Iterator<Item = RecordBatch> + Send>;

/// The plan of a relation read as one stream of batches.
fn one_stream(
    schema: SchemaRef,
    part: Arc<dyn PartitionStream>,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    Ok(Arc::new(StreamingTableExec::try_new(
        schema,
        vec![part],
        projection,
        vec![],
        false,
        limit,
    )?))
}

/// A relation whose rows are made from [`Access`] when it is read.
#[derive(Debug)]
struct LazyRows {
    schema: SchemaRef,
    loader: Arc<Loader>,
    make: MakeRows,
}

#[async_trait]
impl TableProvider for LazyRows {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let part = LazyPart {
            schema: self.schema.clone(),
            loader: self.loader.clone(),
            make: self.make,
        };
        one_stream(self.schema.clone(), Arc::new(part), projection, limit)
    }
}

#[derive(Debug)]
struct LazyPart {
    schema: SchemaRef,
    loader: Arc<Loader>,
    make: MakeRows,
}

impl PartitionStream for LazyPart {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (schema, loader, make) = (self.schema.clone(), self.loader.clone(), self.make);
        let batches = futures::stream::once(async move {
            let access = loader.access().await.map_err(DataFusionError::Execution)?;
            Ok::<_, DataFusionError>(make(schema, access, loader.snapshot.clone()))
        })
        .flat_map(|made| match made {
            Ok(batches) => futures::stream::iter(batches.map(Ok)).boxed(),
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}
