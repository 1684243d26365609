//! Fault points for the kill tests: `NASLAKE_FAULT=POINT:N` makes the process
//! SIGKILL itself the N-th time it passes `POINT` (counting from 1), the way a Spot
//! reclaim, a stopped ECS task or the OOM killer would: no destructor runs, no
//! buffer is flushed. Unset (always, outside tests) a point costs one relaxed load.
//!
//! The points name the step they are in (`discover.item`, `extract.item`,
//! `write.file`, `commit.record`, `catalog.table` (after each table's catalog
//! change), `commit.catalog`, `commit.state`, `commit.cleanup`);
//! `tests/test_incremental.py` kills runs at seeded ones.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("NASLAKE_FAULT").ok()?;
            let (point, at) = v.rsplit_once(':').unwrap_or((v.as_str(), "1"));
            Some(Armed {
                point: point.to_string(),
                at: at.parse().ok().filter(|n| *n > 0)?,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Passes fault point `name`: kills the process here if the test armed it.
pub fn point(name: &str) {
    let Some(a) = armed() else {
        return;
    };
    if a.point == name && a.seen.fetch_add(1, Ordering::Relaxed) + 1 == a.at {
        eprintln!("naslake: fault point {name}:{} reached, SIGKILL", a.at);
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
