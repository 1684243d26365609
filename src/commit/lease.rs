//! The lease: one run of a job at a time per output. `OUTPUT/_naslake/state/JOB/lease.json`
//! names the run holding it, its host and pid, and when it expires; the holder
//! renews it every third of its time to live and deletes it when done.
//!
//! It is taken with a conditional create where the store has one: exclusive
//! create on a local path, `If-None-Match: *` on S3. FSx for ONTAP access points
//! reject conditional writes (501); there the lease is written, read back and
//! checked, which narrows a race but cannot close it (docs/incremental-and-sharded.md,
//! "One run at a time"). Glue's `VersionId` on `UpdateTable` is the second guard there.
//!
//! A lease left by a run that died is taken over once it expired, or at once when
//! it names a process of this host that no longer exists. The run that takes it
//! over learns the dead run's id, so it can clean up after it.
//!
//! A sharded run (plan, work, commit: `crate::drive::sharded`) holds the lease as a run,
//! not as a process: `plan` takes it, every `work` and the `commit` resume it and
//! renew it while they work, and the commit releases it. It is gone only when it
//! expires, so a sharded run that dies is cleaned up after like any other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::state::StateDir;
use crate::base::error::{Error, Result};

/// What `lease.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    pub acquired_at: String,
    pub expires_at: String,
    /// Held by a sharded run, whose steps are many processes: only its expiry
    /// says it is gone, not the process that took it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sharded: bool,
}

impl LeaseBody {
    fn new(run_id: &str, ttl: Duration, acquired_at: &str, sharded: bool) -> Self {
        LeaseBody {
            run_id: run_id.to_string(),
            host: hostname(),
            pid: std::process::id(),
            acquired_at: acquired_at.to_string(),
            expires_at: (Utc::now() + ttl).to_rfc3339(),
            sharded,
        }
    }

    /// Why the holder is known to be gone, or `None` while it may be running.
    fn gone(&self) -> Option<&'static str> {
        if !self.sharded && self.host == hostname() && !process_exists(self.pid) {
            return Some("its process no longer exists");
        }
        match DateTime::parse_from_rfc3339(&self.expires_at) {
            Ok(t) if t < Utc::now() => Some("it expired"),
            Ok(_) => None,
            Err(_) => Some("its expiry is unreadable"),
        }
    }
}

/// A held lease. [`Lease::release`] ends it; dropped without that (a panic), the
/// renewal stops and the lease expires.
pub struct Lease {
    dir: StateDir,
    body: LeaseBody,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
    /// The store took a conditional create.
    pub conditional: bool,
    /// The run whose lease this one replaced because it had died.
    pub took_over_from: Option<String>,
}

impl Lease {
    /// Takes the job's lease for `run_id`, or says who holds it.
    pub async fn acquire(dir: &StateDir, run_id: &str, ttl: Duration) -> Result<Lease> {
        Lease::take(dir, run_id, ttl, false).await
    }

    /// Takes the job's lease for sharded run `run_id`: it outlives this process
    /// ([`Lease::keep`]), for the run's other steps to [`Lease::resume`].
    pub async fn acquire_for_shards(dir: &StateDir, run_id: &str, ttl: Duration) -> Result<Lease> {
        Lease::take(dir, run_id, ttl, true).await
    }

    async fn take(dir: &StateDir, run_id: &str, ttl: Duration, sharded: bool) -> Result<Lease> {
        let path = dir.path("lease.json");
        let acquired_at = Utc::now().to_rfc3339();
        let mut took_over_from = None;
        for _ in 0..4 {
            let body = LeaseBody::new(run_id, ttl, &acquired_at, sharded);
            let payload = PutPayload::from(serde_json::to_vec_pretty(&body)?);
            let opts = PutOptions::from(PutMode::Create);
            match dir.output.store.put_opts(&path, payload, opts).await {
                Ok(_) => return Ok(Lease::held(dir, body, ttl, true, took_over_from)),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let Some((held, version)) = read(dir).await? else {
                        continue;
                    };
                    if sharded && held.sharded && held.run_id == run_id {
                        // This run's own plan step, retried: the lease is ours.
                        return Lease::resume(dir, run_id, ttl).await;
                    }
                    let Some(why) = held.gone() else {
                        return Err(busy(dir, &held));
                    };
                    info!(run_id = %held.run_id, reason = why, "taking over the lease of a run that is gone");
                    took_over_from = Some(held.run_id.clone());
                    // Replaced only if it is still the lease read above: of two
                    // runs taking over the same dead lease, one wins.
                    match replace(dir, &body, version).await? {
                        Replace::Done => {
                            return Ok(Lease::held(dir, body, ttl, true, took_over_from));
                        }
                        Replace::Raced => continue,
                        Replace::Unsupported => {
                            // A local path: no compare-and-swap, so delete and
                            // create again; a run that loses that race finds the
                            // winner's lease on its next try, or at its commit.
                            match dir.output.store.delete(&path).await {
                                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                }
                Err(e) if conditional_unsupported(&e) => {
                    return Lease::acquire_unconditional(dir, run_id, ttl, &acquired_at, sharded)
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Lease(format!(
            "could not take the lease {}: other runs kept taking it",
            dir.output.url_of(&path)
        )))
    }

    /// Stores without conditional writes: write, then read back and check.
    async fn acquire_unconditional(
        dir: &StateDir,
        run_id: &str,
        ttl: Duration,
        acquired_at: &str,
        sharded: bool,
    ) -> Result<Lease> {
        warn!(
            state = %dir.url(),
            "the output store does not take conditional writes (an FSx for ONTAP access point?): the lease is written and read back, which does not rule out a race"
        );
        let mut took_over_from = None;
        if let Some((held, _)) = read(dir).await? {
            if held.gone().is_none() {
                return Err(busy(dir, &held));
            }
            took_over_from = Some(held.run_id);
        }
        let body = LeaseBody::new(run_id, ttl, acquired_at, sharded);
        write(dir, &body).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        match read(dir).await?.map(|(b, _)| b) {
            Some(b) if b.run_id == body.run_id => {
                Ok(Lease::held(dir, body, ttl, false, took_over_from))
            }
            Some(other) => Err(busy(dir, &other)),
            None => Err(Error::Lease(format!(
                "the lease {} vanished right after it was written: another run is starting",
                dir.output.url_of(&dir.path("lease.json"))
            ))),
        }
    }

    /// A step of sharded run `run_id` picks up the run's lease and renews it while
    /// it works; fails when the run no longer holds it (it expired and another run
    /// took it over, or the run was committed).
    pub async fn resume(dir: &StateDir, run_id: &str, ttl: Duration) -> Result<Lease> {
        let lease = dir.output.url_of(&dir.path("lease.json"));
        for _ in 0..4 {
            let Some((held, version)) = read(dir).await? else {
                return Err(Error::Lease(format!(
                    "run {run_id} does not hold the job's lease {lease} any more: it was committed, or it expired and was cleaned up after"
                )));
            };
            if held.run_id != run_id {
                return Err(Error::Lease(format!(
                    "run {run_id} does not hold the job's lease {lease} any more: run {} does (it expired, and that run took it over and removes what this one wrote). Plan the run again",
                    held.run_id
                )));
            }
            let mut body = held;
            body.expires_at = (Utc::now() + ttl).to_rfc3339();
            match replace(dir, &body, version).await? {
                Replace::Done => return Ok(Lease::held(dir, body, ttl, true, None)),
                // Another step of the run renewed it in between: read it again.
                Replace::Raced => continue,
                Replace::Unsupported => {
                    write(dir, &body).await?;
                    return Ok(Lease::held(dir, body, ttl, false, None));
                }
            }
        }
        Err(Error::Lease(format!(
            "could not renew the lease {lease} of run {run_id}: it kept changing"
        )))
    }

    /// Leaves the lease held after this process (a step of a sharded run): the
    /// renewal stops, and the run's next step resumes it before it expires.
    pub fn keep(self) {
        self.renewal.abort();
    }

    fn held(
        dir: &StateDir,
        body: LeaseBody,
        ttl: Duration,
        conditional: bool,
        took_over_from: Option<String>,
    ) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = tokio::spawn(renew(dir.clone(), body.clone(), ttl, lost.clone()));
        Lease {
            dir: dir.clone(),
            body,
            lost,
            renewal,
            conditional,
            took_over_from,
        }
    }

    /// Fails unless the lease is still this run's: checked right before the commit.
    pub async fn check(&self) -> Result<()> {
        let held = read(&self.dir).await?.map(|(b, _)| b);
        // A lease that ran out may have been taken over by now, even if the file
        // still names this run.
        let expired = held.as_ref().is_some_and(|h| {
            DateTime::parse_from_rfc3339(&h.expires_at).is_ok_and(|t| t < Utc::now())
        });
        if self.lost.load(Ordering::Acquire)
            || expired
            || held.as_ref().is_none_or(|h| h.run_id != self.body.run_id)
        {
            return Err(Error::Lease(format!(
                "run {} lost the job's lease {} (it was not renewed in time, or was taken over); nothing was committed",
                self.body.run_id,
                self.dir.output.url_of(&self.dir.path("lease.json"))
            )));
        }
        Ok(())
    }

    /// Ends the lease (deletes it if it is still this run's).
    pub async fn release(self) -> Result<()> {
        self.renewal.abort();
        match read(&self.dir).await?.map(|(b, _)| b) {
            Some(h) if h.run_id == self.body.run_id => {
                match self
                    .dir
                    .output
                    .store
                    .delete(&self.dir.path("lease.json"))
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Renews the lease every third of its time to live while the run goes on.
async fn renew(dir: StateDir, mut body: LeaseBody, ttl: Duration, lost: Arc<AtomicBool>) {
    let every = (ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let version = match read(&dir).await {
            Ok(Some((h, version))) if h.run_id == body.run_id => version,
            Ok(_) => {
                lost.store(true, Ordering::Release);
                return;
            }
            Err(e) => {
                warn!(error = %e, "could not read the lease to renew it; trying again");
                continue;
            }
        };
        body.expires_at = (Utc::now() + ttl).to_rfc3339();
        match replace(&dir, &body, version).await {
            Ok(Replace::Done) => {}
            // Changed between the read and the write: taken over, or renewed by
            // another step of a sharded run. Read again at once to tell which.
            Ok(Replace::Raced) => match read(&dir).await {
                Ok(Some((h, _))) if h.run_id == body.run_id && body.sharded => {}
                Err(e) => warn!(error = %e, "could not read the lease to renew it; trying again"),
                Ok(_) => {
                    lost.store(true, Ordering::Release);
                    return;
                }
            },
            Ok(Replace::Unsupported) => {
                if let Err(e) = write(&dir, &body).await {
                    warn!(error = %e, "could not renew the lease; trying again");
                }
            }
            Err(e) => warn!(error = %e, "could not renew the lease; trying again"),
        }
    }
}

/// What a conditional replace of the lease did.
enum Replace {
    Done,
    /// The lease changed since it was read.
    Raced,
    /// The store has no compare-and-swap (a local path) or no version was read.
    Unsupported,
}

/// Replaces the lease if it is still the version read (`If-Match` on S3).
async fn replace(
    dir: &StateDir,
    body: &LeaseBody,
    version: Option<UpdateVersion>,
) -> Result<Replace> {
    let Some(version) = version else {
        return Ok(Replace::Unsupported);
    };
    let payload = PutPayload::from(serde_json::to_vec_pretty(body)?);
    let opts = PutOptions::from(PutMode::Update(version));
    match dir
        .output
        .store
        .put_opts(&dir.path("lease.json"), payload, opts)
        .await
    {
        Ok(_) => Ok(Replace::Done),
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            Ok(Replace::Raced)
        }
        Err(e) if conditional_unsupported(&e) => Ok(Replace::Unsupported),
        Err(e) => Err(e.into()),
    }
}

/// The lease and its version (the ETag a conditional replace names).
async fn read(dir: &StateDir) -> Result<Option<(LeaseBody, Option<UpdateVersion>)>> {
    let path = dir.path("lease.json");
    let (bytes, version) = match dir.output.store.get(&path).await {
        Ok(r) => {
            let version = r.meta.e_tag.clone().map(|e_tag| UpdateVersion {
                e_tag: Some(e_tag),
                version: r.meta.version.clone(),
            });
            (r.bytes().await?, version)
        }
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        // A lease nobody can read names no run to wait for: treated as expired.
        warn!(lease = %dir.output.url_of(&path), error = %e, "the lease file is unreadable; taking it as expired");
        LeaseBody {
            run_id: UNREADABLE.into(),
            host: String::new(),
            pid: 0,
            acquired_at: String::new(),
            expires_at: String::new(),
            sharded: false,
        }
    });
    Ok(Some((body, version)))
}

/// The run id an unreadable lease is taken to name.
pub const UNREADABLE: &str = "unreadable";

async fn write(dir: &StateDir, body: &LeaseBody) -> Result<()> {
    let payload = PutPayload::from(serde_json::to_vec_pretty(body)?);
    dir.output
        .store
        .put(&dir.path("lease.json"), payload)
        .await?;
    Ok(())
}

fn busy(dir: &StateDir, held: &LeaseBody) -> Error {
    let holder = if held.sharded {
        format!(
            "sharded run {} (planned on host {})",
            held.run_id, held.host
        )
    } else {
        format!(
            "run {} on host {} (pid {})",
            held.run_id, held.host, held.pid
        )
    };
    Error::Lease(format!(
        "job is already running: {holder} holds the lease {} since {}, until {} unless renewed. \
         If that run is gone, wait for the lease to expire or delete the lease file",
        dir.output.url_of(&dir.path("lease.json")),
        held.acquired_at,
        held.expires_at
    ))
}

/// The store refused a conditional write as unsupported (FSx for ONTAP: 501).
fn conditional_unsupported(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotImplemented { .. })
        || e.to_string().contains("501 Not Implemented")
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
