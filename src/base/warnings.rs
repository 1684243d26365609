//! Problems that did not fail a run but that its user must hear of. Every step
//! may push one; the run report lists them.

use std::sync::{Arc, Mutex};

use super::sync::lock;

/// Problems that did not fail the run but that its user must hear of (a replaced
/// file that could not be removed): logged when they happen and listed in the report.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    pub fn push(&self, warning: String) {
        tracing::warn!(warning = %warning, "run warning");
        lock(&self.0).push(warning);
    }

    pub fn all(&self) -> Vec<String> {
        lock(&self.0).clone()
    }
}
