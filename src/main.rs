fn main() {
    std::process::exit(naslake::cli::main());
}

/// jemalloc, not glibc's malloc: a run allocates and frees batch-sized buffers
/// (megabytes each) on several threads, and glibc's per-thread arenas kept the
/// freed ones, so peak RSS crept up with the input. Measured on scripts/bench-csv's
/// data, one run each: glibc 229 MiB at 1 GB and 273 MiB at 10 GB (45 s); jemalloc
/// about 230 MiB at both (41 s at 10 GB).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts:
///
/// - One arena per CPU, each thread allocating from the arena of the CPU it was
///   last seen on (`percpu_arena:percpu`; jemalloc checks again when another
///   thread has used that arena), where jemalloc's default is four per CPU with
///   threads bound to one for life. Memory freed goes back to the arena it came
///   from, and only threads allocating from that arena reuse it: the blocking
///   threads that read and write files and the workers that free what they
///   read spread freed pages over eight arenas on two cores. The end of a 5 GB
///   run, which joins 122 partitions' files on fourteen threads more, rose to a
///   peak of 233–236 MiB that way, against 210–215 with one arena per CPU
///   (docs/benchmarks.md, "One arena per CPU"). `narenas:2` did as well here
///   but fixes the number whatever the machine. Where the CPU counts the system
///   gives disagree (a cpuset, `taskset`), jemalloc keeps its default arenas and
///   says so once on stderr; under a CPU quota it makes one per host CPU.
/// - Freed pages go back to the system after a second unused (`dirty_decay_ms`;
///   jemalloc's default is 10 s), and straight back, without the lazy middle
///   state whose pages still count in RSS (`muzzy_decay_ms:0`, jemalloc 5.3's
///   default, stated so it stays).
///
/// This build's jemalloc is prefixed: `_RJEM_MALLOC_CONF` overrides these, not
/// `MALLOC_CONF` (`tests/test_allocator.py` reads them back from the binary).
#[cfg(all(unix, not(target_env = "musl")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 57] = b"percpu_arena:percpu,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// `hypot`, where the binary's calls to glibc's land (`build.rs` links with
/// `--wrap=hypot`): glibc's own is versioned 2.35, newer than the glibc of the
/// images the binary runs in. `libm` is a port of musl's, accurate within an ulp.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_hypot(x: f64, y: f64) -> f64 {
    libm::hypot(x, y)
}

/// `hypotf`, as [`__wrap_hypot`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_hypotf(x: f32, y: f32) -> f32 {
    libm::hypotf(x, y)
}
