//! Locks over data that stays consistent when a holder panics (counters, lists
//! that are only pushed to): a poisoned lock is taken as it is, rather than losing
//! what it guards or panicking in turn.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
