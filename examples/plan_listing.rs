//! Plans a synthetic listing of N objects the way `naslake plan` does (the
//! external sort and the byte cut, each shard's items written out as JSON lines)
//! and prints the time and the peak RSS; `--in-memory` sorts the whole listing in
//! memory instead, for comparison. Used by scripts/bench-plan.
//!
//!   cargo run --example plan_listing -- 1000000 64 [--in-memory]

use std::io::Write;

use naslake::discover::shards::Sharder;
use naslake::model::{Fingerprint, WorkItem};

fn item(i: u64) -> WorkItem {
    // A listing out of key order (a local walk), sizes 1 KiB to ~1 MiB.
    let j = (i * 7_919) % 1_000_003;
    WorkItem {
        source: "long".into(),
        key: format!("long/line-{:02}/{:04}/f-{j:07}.csv", j % 50, j % 3000),
        sealed: None,
        fingerprint: Fingerprint {
            size: 1024 + j.wrapping_mul(2_654_435_761) % (1 << 20),
            etag: Some(format!(
                "\"{:032x}\"",
                j.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )),
            last_modified: Some("2026-11-30T12:00:00+00:00".into()),
        },
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(Ok(1_000_000), |a| a.parse())?;
    let shards: usize = args.get(2).map_or(Ok(64), |a| a.parse())?;
    let in_memory = args.iter().any(|a| a == "--in-memory");
    let started = std::time::Instant::now();
    let out = std::io::sink();
    let mut out = std::io::BufWriter::new(out);
    let mut per_shard = vec![(0u64, 0u64); shards];
    if in_memory {
        let mut all: Vec<WorkItem> = (0..n).map(item).collect();
        all.sort_by(|a, b| (&a.source, &a.key).cmp(&(&b.source, &b.key)));
        let total: u64 = all.iter().map(|i| i.fingerprint.size).sum();
        let mut cut = naslake::discover::shards::Cut::new(shards, total, n);
        for i in &all {
            let s = cut.next(i.fingerprint.size);
            per_shard[s].0 += 1;
            per_shard[s].1 += i.fingerprint.size;
            serde_json::to_writer(&mut out, i)?;
            out.write_all(b"\n")?;
        }
    } else {
        let mut sharder = Sharder::new()?;
        for i in 0..n {
            sharder.push(item(i))?;
        }
        for next in sharder.finish(shards)? {
            let (s, i) = next?;
            per_shard[s].0 += 1;
            per_shard[s].1 += i.fingerprint.size;
            serde_json::to_writer(&mut out, &i)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    let (lo, hi) = per_shard
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.1), hi.max(s.1)));
    println!(
        "{} {n} objects into {shards} shards: {:.2} s, peak RSS {:.0} MiB, shard bytes {lo}..{hi}",
        if in_memory {
            "in memory:"
        } else {
            "external sort:"
        },
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
