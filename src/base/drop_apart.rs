//! Freeing off the critical path. A run's end lets go of what it built per item
//! (the manifest, the tallies, the state): tens of thousands of small
//! allocations, whose freeing took milliseconds at a run's serial end, on one
//! core while the others had nothing to do.

/// Drops `value` on a thread of its own. Nothing waits for it, and the process
/// may exit before it is done: the memory goes back with the process.
pub fn drop_apart<T: Send + 'static>(value: T) {
    let spawned = std::thread::Builder::new()
        .name("drop-apart".into())
        .spawn(move || drop(value));
    // Not joined. A spawn that failed has dropped its closure, and `value`
    // with it, here already.
    drop(spawned);
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
