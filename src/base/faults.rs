//! Fault points for the kill tests: `NASLAKE_FAULT=POINT:N` makes the process
//! SIGKILL itself the N-th time it passes `POINT` (counting from 1), the way a Spot
//! reclaim, a stopped ECS task or the OOM killer would: no destructor runs, no
//! buffer is flushed. Unset (always, outside tests) a point costs one relaxed load.
//!
//! `POINT:N@SCOPE` arms it only in a process whose scope is `SCOPE`: `naslake
//! work` sets `shardI.attemptA`, so a test can fail the first attempt of one
//! shard and let the retry through.
//!
//! With `NASLAKE_FAULT_KIND=panic` the point panics instead, as a bug would,
//! with a message that quotes [`PANIC_DATA`]: it stands for the input data a
//! panic's message may quote, which no error, report or log may show
//! (`tests/test_panics.py`).
//!
//! The points name the step they are in (`discover.item`, `extract.item`,
//! `write.file`, `write.part` (after an upload's part is sent), `write.join`
//! (after a partition's files from several writers are joined),
//! `commit.record`, `catalog.table` (after each table's catalog change),
//! `commit.catalog`, `commit.state`, `commit.cleanup`);
//! `tests/test_incremental.py` kills runs at seeded ones.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// What an armed point's panic message quotes, standing for input data.
pub const PANIC_DATA: &str = "Doe^Jane 1970-01-01";

struct Armed {
    point: String,
    at: u64,
    scope: Option<String>,
    seen: AtomicU64,
    /// Panic there instead of killing the process.
    panics: bool,
}

static SCOPE: OnceLock<String> = OnceLock::new();

/// Names what this process does, for faults armed with `@SCOPE`; set once.
pub fn set_scope(scope: &str) {
    let _first_wins = SCOPE.set(scope.to_string());
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("NASLAKE_FAULT").ok()?;
            let (v, scope) = match v.split_once('@') {
                Some((v, s)) => (v, Some(s.to_string())),
                None => (v.as_str(), None),
            };
            let (point, at) = v.rsplit_once(':').unwrap_or((v, "1"));
            Some(Armed {
                point: point.to_string(),
                at: at.parse().ok().filter(|n| *n > 0)?,
                scope,
                seen: AtomicU64::new(0),
                panics: std::env::var("NASLAKE_FAULT_KIND").is_ok_and(|k| k == "panic"),
            })
        })
        .as_ref()
}

/// Passes fault point `name`: kills the process here if the test armed it.
pub fn point(name: &str) {
    let Some(a) = armed() else {
        return;
    };
    if a.scope.is_some() && a.scope.as_ref() != SCOPE.get() {
        return;
    }
    if a.point == name && a.seen.fetch_add(1, Ordering::Relaxed) + 1 == a.at {
        if a.panics {
            panic!("fault point {name}:{} reached, on {PANIC_DATA}", a.at);
        }
        eprintln!("naslake: fault point {name}:{} reached, SIGKILL", a.at);
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
