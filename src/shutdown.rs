//! One stop signal for the whole process.
//!
//! Every long-running piece (the two HTTP servers, the consumer and end-offsets threads, the
//! snapshotter, the key reloader, the demo's simulator) holds a clone of the same [`Shutdown`]
//! and watches it: async tasks await [`Shutdown::wait`], threads check
//! [`Shutdown::is_triggered`] between units of work or sleep with [`Shutdown::sleep`]. Whoever
//! decides to stop (a signal, a failed server, a test) calls [`Shutdown::trigger`]; the order in
//! which the pieces then finish is `startup`'s business, not theirs.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
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
        }
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

    #[tokio::test]
    async fn wait_resolves_for_every_clone() {
        let s = Shutdown::new();
        let a = s.clone();
        let waiter = tokio::spawn(async move { a.wait().await });
        s.trigger();
        waiter.await.expect("resolves");
    }
}
