//! glibc 2.35 gave `hypot` and `hypotf` new symbol versions, so a binary built on
//! a newer glibc would not start on Amazon Linux 2023 (glibc 2.34), the base of the
//! EMR Serverless 7.x images. The binary's calls to them are wrapped
//! (`--wrap`, see `src/main.rs`), which leaves nothing newer than GLIBC_2.34.
fn main() {
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "gnu");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|o| o == "linux");
    if gnu && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,--wrap=hypot,--wrap=hypotf");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
