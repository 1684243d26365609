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

/// jemalloc's options, read when it starts: freed pages go back to the system
/// after a second unused (`dirty_decay_ms`; jemalloc's default is 10 s), and
/// straight back, without the lazy middle state whose pages still count in RSS
/// (`muzzy_decay_ms:0`, jemalloc 5.3's default, stated so it stays). This build's
/// jemalloc is prefixed: `_RJEM_MALLOC_CONF` overrides these, not `MALLOC_CONF`.
#[cfg(all(unix, not(target_env = "musl")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";

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
