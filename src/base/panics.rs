//! What a panic (a bug) may say. Its message can quote the data it failed on — an
//! index error prints the string it sliced, a DICOM value, a CSV field — so
//! naslake shows where it happened and never the message: the panic hook it
//! installs prints the thread and the location, and [`describe`] gives the
//! location to the error the run fails with ([`task_failure`] for a spawned
//! task's panic, whose `JoinError` would print the message). `NASLAKE_PANIC_MESSAGES=1` shows
//! messages too, for a developer reproducing a bug on data of their own.

use std::cell::RefCell;
use std::sync::{Mutex, Once};

use super::sync::lock;

thread_local! {
    /// Where this thread last panicked.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Where any thread last panicked: a spawned task's panic is seen through its
/// `JoinError` on the thread that awaits it, not the one it happened on.
static LAST_ANYWHERE: Mutex<Option<String>> = Mutex::new(None);

fn messages_shown() -> bool {
    std::env::var_os("NASLAKE_PANIC_MESSAGES").is_some_and(|v| v == "1")
}

/// Installs the hook, once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "an unknown place".into());
            // (Not during the thread's teardown, when its locals are gone.)
            let _gone = LAST.try_with(|last| *last.borrow_mut() = Some(at.clone()));
            *lock(&LAST_ANYWHERE) = Some(at.clone());
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            if messages_shown() {
                eprintln!("thread '{name}' panicked at {at}: {}", message(info.payload()));
            } else {
                eprintln!(
                    "thread '{name}' panicked at {at} (its message is not shown: it may quote input data; NASLAKE_PANIC_MESSAGES=1 shows it)"
                );
            }
        }));
    });
}

/// A caught panic, for an error message: where it happened (and its message when
/// `NASLAKE_PANIC_MESSAGES=1`). Call it on the thread that caught the panic. A
/// panic resumed on this thread from another (a query engine's task joined)
/// did not pass the hook here: it is told by the place any thread last panicked.
pub fn describe(payload: &(dyn std::any::Any + Send)) -> String {
    let at = LAST
        .with(|last| last.borrow_mut().take())
        .or_else(|| lock(&LAST_ANYWHERE).clone());
    told(at, payload)
}

/// "at PLACE", and the message when `NASLAKE_PANIC_MESSAGES=1`.
fn told(at: Option<String>, payload: &(dyn std::any::Any + Send)) -> String {
    let at = at.unwrap_or_else(|| "an unknown place".into());
    if messages_shown() {
        format!("at {at}: {}", message(payload))
    } else {
        format!("at {at}")
    }
}

/// `work`'s result, or, when it panics (a bug), an error that says where, so
/// that the caller cleans up after it as after any error.
pub async fn caught<T>(
    what: &str,
    work: impl std::future::Future<Output = super::error::Result<T>>,
) -> super::error::Result<T> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(super::error::Error::Accounting(format!(
                "{what} panicked {}",
                describe(panic.as_ref())
            )))
        })
}

/// A spawned task that did not finish, for an error message: "panicked at" the
/// place the hook recorded last (and the message when
/// `NASLAKE_PANIC_MESSAGES=1`), or "was cancelled". Never `JoinError`'s own
/// text, which quotes the panic's message.
pub fn task_failure(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => format!(
            "panicked {}",
            told(lock(&LAST_ANYWHERE).clone(), payload.as_ref())
        ),
        Err(_) => "was cancelled".into(),
    }
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_s_panic_is_told_by_its_place_not_its_message() {
        install();
        let joined = tokio::spawn(async {
            let id = std::hint::black_box("patient 1234-5678");
            panic!("no record for {id}");
        })
        .await;
        let told = task_failure(joined.expect_err("the task panicked"));
        assert!(
            told.starts_with("panicked at src/base/panics.rs:"),
            "{told}"
        );
        if !messages_shown() {
            assert!(!told.contains("1234-5678"), "{told}");
        }
        let cancelled = tokio::spawn(std::future::pending::<()>());
        cancelled.abort();
        assert_eq!(task_failure(cancelled.await.unwrap_err()), "was cancelled");
    }
}
