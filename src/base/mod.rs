//! The base every layer uses: the error type and exit codes ([`error`]),
//! redaction of credentials and URL user-info ([`redact`]), run [`warnings`],
//! fault points for the kill tests ([`faults`]), logging, what a panic may say
//! ([`panics`]) and poison-tolerant locks ([`sync`]). It imports no other module
//! of the crate.

pub mod error;
pub mod faults;
pub mod logging;
pub mod panics;
pub mod redact;
pub mod sync;
pub mod warnings;
