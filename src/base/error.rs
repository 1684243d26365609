//! Typed errors of the library and the exit codes they map to.
//!
//! The exit codes are a contract (DESIGN.md): 0 all good, 2 bad usage or config,
//! 3 finished with rejected inputs, 1 failed.

use std::path::PathBuf;

/// Exit code of a run that finished and rejected nothing.
pub const EXIT_OK: i32 = 0;
/// Exit code of a run that failed; the catalog is left as it was.
pub const EXIT_FAILED: i32 = 1;
/// Exit code of bad usage or a bad job spec / schema; no work was done.
pub const EXIT_USAGE: i32 = 2;
/// Exit code of a run that finished, but rejected some inputs (rejects were written).
pub const EXIT_REJECTS: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A job spec, schema file or command-line value is wrong. The message names the
    /// file, the key and what is allowed.
    #[error("{0}")]
    Config(String),

    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("storage: {}", explain_storage(.0))]
    Storage(#[from] object_store::Error),

    #[error("bad address `{url}`: {reason}\n{accepted}")]
    Address {
        url: String,
        reason: String,
        accepted: &'static str,
    },

    #[error("query engine: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),

    #[error("catalog: {0}")]
    Catalog(String),

    /// A commit failed and could not be fully undone: the catalog may point at
    /// this run's files, so they are kept.
    #[error("catalog: {0}")]
    CatalogInconsistent(String),

    #[error("{0}")]
    Io(#[from] std::io::Error),

    #[error("{0}")]
    Json(#[from] serde_json::Error),

    /// A source found nothing to read, which would empty its tables: the run fails
    /// and changes nothing (unless the spec allows an empty source).
    #[error("{0}")]
    NothingToRead(String),

    /// An invariant of the run did not hold (for example rows read != rows written +
    /// rows rejected). This is a bug or a job SQL that drops rows; the run fails.
    #[error("accounting: {0}")]
    Accounting(String),

    /// The incremental state is unreadable or does not match the catalog: the
    /// message says what differs; `--full` starts the state anew.
    #[error("state: {0}")]
    State(String),

    /// Another run of the job holds its lease, or this run lost it.
    #[error("lease: {0}")]
    Lease(String),

    /// A source's own server (a filer's REST API) refused the run's credentials or
    /// could not be reached: the run fails and changes nothing.
    #[error("{0}")]
    Collect(String),
    /// A sharded run's plan or shard results are missing, duplicated or do not
    /// match: its commit fails and changes nothing.
    #[error("shards: {0}")]
    Shards(String),
    /// `naslake commit` of a run that is committed already: nothing to do (exit 0,
    /// so a retried commit job ends well).
    #[error("{0}")]
    Committed(String),
}

impl Error {
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Address { .. } => EXIT_USAGE,
            Error::Committed(_) => EXIT_OK,
            _ => EXIT_FAILED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A storage error's message; a denial also says where to look, because through an
/// FSx for ONTAP access point two separate layers can deny.
/// Any URL it quotes is shown without user-info.
pub fn explain_storage(e: &object_store::Error) -> String {
    let text = super::redact::redact_url(&e.to_string()).into_owned();
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || text.contains("AccessDenied");
    if !denied {
        return text;
    }
    format!(
        "{text}\naccess denied (not retried). Two layers decide access through an S3 access point: \
(1) IAM and the access point policy must allow the action on the access point ARN \
(s3:ListBucket on arn:…:accesspoint/NAME, s3:GetObject and s3:PutObject on arn:…:accesspoint/NAME/object/*; \
an alias in a policy grants nothing); (2) on FSx for ONTAP, the file-system user the access point \
maps to must be allowed by the files' NTFS ACLs or UNIX permissions (an unreachable domain \
controller also shows up as AccessDenied)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_both_layers_and_other_errors_stay_plain() {
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "AccessDenied".into(),
        };
        let text = Error::from(denied).to_string();
        assert!(
            text.contains("IAM") && text.contains("/object/*") && text.contains("file-system user"),
            "{text}"
        );
        let missing = object_store::Error::NotFound {
            path: "k".into(),
            source: "NoSuchKey".into(),
        };
        assert!(!Error::from(missing).to_string().contains("IAM"));
    }
}
