//! One stop signal for the whole process.
//!
//! Every long-running piece (the two HTTP servers, the consumer and end-offsets threads, the
//! snapshotter, the key reloader, the demo's simulator) holds a clone of the same [`Shutdown`]
//! and watches it: async tasks await [`Shutdown::wait`], threads check
//! [`Shutdown::is_triggered`] between units of work or sleep with [`Shutdown::sleep`]. Whoever
//! decides to stop (a signal, a failed server, a test) calls [`Shutdown::trigger`]; the order in
//! which the pieces then finish is `startup`'s business, not theirs.
//!
//! Supervision: a part that ends when nobody asked it to (a panic, a server that returns, a
//! thread whose loop fell through) must not leave the process up and ready with frozen numbers.
//! Every thread runs under [`Shutdown::supervise`] and every spawned task under
//! [`Shutdown::watch_task`]; they call [`Shutdown::fail`], which records the first failure,
//! logs it with the part's name, and stops the *whole* process (even from a child signal).
//! `startup` then drains, writes the final snapshot, and exits non-zero naming the part, so the
//! orchestrator restarts the replica.

use std::any::Any;
use std::fmt::Display;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Shutdown {
    token: CancellationToken,
    /// The process's signal: what [`Shutdown::fail`] triggers, from any child.
    root: CancellationToken,
    failure: Arc<OnceLock<Failure>>,
}

/// The first part that ended unexpectedly, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub part: &'static str,
    pub cause: String,
}

impl Default for Shutdown {
    fn default() -> Self {
        let token = CancellationToken::new();
        Shutdown {
            root: token.clone(),
            token,
            failure: Arc::default(),
        }
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal of its own that also fires when this one does: a part can then be stopped
    /// alone (and stop what it owns) without stopping the process.
    pub fn child(&self) -> Shutdown {
        Shutdown {
            token: self.token.child_token(),
            root: self.root.clone(),
            failure: self.failure.clone(),
        }
    }

    /// `part` ended unexpectedly: records it (the first failure wins), logs it once, and stops
    /// the whole process.
    pub fn fail(&self, part: &'static str, cause: impl Display) {
        let failure = Failure {
            part,
            cause: cause.to_string(),
        };
        if self.failure.set(failure.clone()).is_ok() {
            tracing::error!(part, cause = %failure.cause, "part failed; stopping the process");
        }
        self.root.cancel();
    }

    /// The first failure recorded by [`Shutdown::fail`], if any.
    pub fn failure(&self) -> Option<Failure> {
        self.failure.get().cloned()
    }

    /// Runs a thread's body as `part`: a panic, or a return while nobody asked it to stop,
    /// fails the process (the panic then carries on unwinding, so a join still sees it).
    pub fn supervise<T>(&self, part: &'static str, run: impl FnOnce() -> T) -> T {
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(value) => {
                if !self.is_triggered() {
                    self.fail(part, "ended on its own");
                }
                value
            }
            Err(panic) => {
                self.fail(part, format_args!("panicked: {}", panic_message(&*panic)));
                resume_unwind(panic)
            }
        }
    }

    /// Watches a spawned task as `part`, the async twin of [`Shutdown::supervise`]: the
    /// returned handle ends with the task.
    pub fn watch_task<T: Send + 'static>(
        &self,
        part: &'static str,
        task: tokio::task::JoinHandle<T>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            match task.await {
                Ok(_) if this.is_triggered() => {}
                Ok(_) => this.fail(part, "ended on its own"),
                Err(e) => this.fail(part, e),
            }
        })
    }

    /// Watches a task that may end whenever its work is done (a live stream, whose client may
    /// leave at any time): only a panic fails the process. The watcher runs on the current
    /// thread's local set, as actix's tasks do.
    pub fn watch_panics<T: 'static>(
        &self,
        part: &'static str,
        task: tokio::task::JoinHandle<T>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::task::spawn_local(async move {
            if let Err(e) = task.await {
                if e.is_panic() {
                    this.fail(part, e);
                }
            }
        })
    }

    /// Asks everything watching this signal to stop. Idempotent.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the signal is triggered.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Blocks the calling thread for `duration` or until the signal, whichever comes first;
    /// `true` when stopping. For threads, which cannot await: they wake at least every 50 ms.
    pub fn sleep(&self, duration: Duration) -> bool {
        const TICK: Duration = Duration::from_millis(50);
        let deadline = Instant::now() + duration;
        loop {
            if self.is_triggered() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(TICK));
        }
    }
}

/// The text a panic was raised with, when it is text.
pub fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a text)")
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C) and names it; on other platforms, on Ctrl-C.
pub async fn terminate_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_ends_early_on_trigger() {
        let s = Shutdown::new();
        assert!(!s.sleep(Duration::from_millis(10)));
        let t = s.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t.trigger();
        });
        let started = Instant::now();
        assert!(s.sleep(Duration::from_secs(60)));
        assert!(started.elapsed() < Duration::from_secs(30));
        waker.join().expect("joins");
        assert!(s.is_triggered());
    }

    #[test]
    fn a_panicking_part_stops_the_process_and_is_named() {
        let process = Shutdown::new();
        let part = process.child();
        let thread = std::thread::spawn(move || part.supervise("worker", || panic!("boom")));
        assert!(thread.join().is_err(), "the panic still reaches the join");
        assert!(process.is_triggered());
        let failure = process.failure().expect("recorded");
        assert_eq!(failure.part, "worker");
        assert!(failure.cause.contains("boom"), "{}", failure.cause);
    }

    #[test]
    fn a_part_ending_on_its_own_fails_but_one_told_to_stop_does_not() {
        let process = Shutdown::new();
        assert_eq!(process.child().supervise("fetch", || 7), 7);
        assert!(process.is_triggered());
        assert_eq!(process.failure().map(|f| f.part), Some("fetch"));

        let process = Shutdown::new();
        let part = process.child();
        part.trigger();
        part.supervise("fetch", || ());
        assert!(
            !process.is_triggered(),
            "a part stopped alone is no failure"
        );
        assert_eq!(process.failure(), None);
    }

    #[tokio::test]
    async fn a_task_that_panics_or_returns_unasked_fails_the_process() {
        let process = Shutdown::new();
        let watched = process.watch_task("reloader", tokio::spawn(async { panic!("bad") }));
        watched.await.expect("the watcher itself ends cleanly");
        assert_eq!(process.failure().map(|f| f.part), Some("reloader"));

        let process = Shutdown::new();
        let watched = process.watch_task("server", tokio::spawn(async {}));
        watched.await.expect("ends");
        assert_eq!(
            process.failure().map(|f| f.cause),
            Some("ended on its own".into())
        );
    }

    #[actix_web::test]
    async fn a_stream_that_ends_is_fine_but_one_that_panics_fails_the_process() {
        let process = Shutdown::new();
        let watched = process.watch_panics("live stream", actix_web::rt::spawn(async {}));
        watched.await.expect("ends");
        assert!(process.failure().is_none(), "a stream that ends is normal");

        let watched = process.watch_panics(
            "live stream",
            actix_web::rt::spawn(async { panic!("bad row") }),
        );
        watched.await.expect("the watcher itself ends cleanly");
        assert_eq!(process.failure().map(|f| f.part), Some("live stream"));
        assert!(process.is_triggered());
    }

    #[tokio::test]
    async fn wait_resolves_for_every_clone() {
        let s = Shutdown::new();
        let a = s.clone();
        let waiter = tokio::spawn(async move { a.wait().await });
        s.trigger();
        waiter.await.expect("resolves");
    }
}
