fn main() {
    std::process::exit(naslake::cli::main());
}

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
