//! The base every layer uses: the error type and exit codes ([`error`]),
//! redaction of credentials and URL user-info ([`redact`]), run [`warnings`],
//! fault points for the kill tests ([`faults`]), logging, what a panic may say
//! ([`panics`]), poison-tolerant locks ([`sync`]) and freeing on another thread
//! ([`drop_apart`]). It imports no other module of the crate.

pub mod drop_apart;
pub mod error;
pub mod faults;
pub mod logging;
pub mod panics;
pub mod redact;
pub mod sync;
pub mod warnings;
