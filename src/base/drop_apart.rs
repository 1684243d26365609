//! Freeing off the critical path. A run's end lets go of what it built per item
//! (the manifest, the tallies, the state): tens of thousands of small
//! allocations, whose freeing took milliseconds at the run's serial end, on one
//! core while the others had nothing to do.

/// Drops `value` on a thread of its own. Only for values whose drop frees
/// memory and nothing else: nothing waits for that thread, the process may
/// exit before it is done (the memory goes back with the process), and a panic
/// there is not the run's.
pub fn drop_apart<T: Send + 'static>(value: T) {
    let spawned = std::thread::Builder::new()
        .name("drop-apart".into())
        .spawn(move || drop(value));
    // Not joined. A spawn that failed has dropped its closure, and `value`
    // with it, here already: the run has lost nothing but the time.
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "no thread to free on; freed in place");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    struct Tell(mpsc::Sender<Option<String>>);

    impl Drop for Tell {
        fn drop(&mut self) {
            let name = std::thread::current().name().map(str::to_string);
            self.0.send(name).expect("the test waits for the drop");
        }
    }

    #[test]
    fn the_value_is_dropped_on_another_thread() {
        let (tx, rx) = mpsc::channel();
        super::drop_apart(Tell(tx));
        let on = rx.recv_timeout(Duration::from_secs(30)).expect("dropped");
        assert_eq!(on.as_deref(), Some("drop-apart"));
    }
}
