//! One way to stop: a [`Shutdown`] is requested once and then stays requested.
//!
//! The process has one (requested by SIGTERM/SIGINT, see
//! `pipeline::process`), and every thread that must stop holds a clone or a
//! shutdown of its own: the run loop, a camera's ingest thread, the detect
//! workers, the watchdog, the HTTP server. Threads poll
//! [`Shutdown::is_requested`], block in [`Shutdown::wait_timeout`] (instead of
//! sleeping, so a stop is seen at once), and async code awaits
//! [`Shutdown::wait`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A stop request, shared by cloning. Cheap to poll.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requested: AtomicBool,
    lock: Mutex<()>,
    cvar: Condvar,
    notify: tokio::sync::Notify,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Requests the stop and wakes every waiter. Requesting twice is harmless.
    pub fn request(&self) {
        let _guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.requested.store(true, Ordering::SeqCst);
        self.inner.cvar.notify_all();
        self.inner.notify.notify_waiters();
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Blocks until the stop is requested or `timeout` passes; true if requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .inner
            .cvar
            .wait_timeout_while(guard, timeout, |_| !self.inner.requested.load(Ordering::SeqCst))
            .unwrap_or_else(|p| p.into_inner());
        self.is_requested()
    }

    /// Resolves once the stop is requested (at once if it already was).
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Registered before the check: a request between the two still wakes us.
            notified.as_mut().enable();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wakes_waiters() {
        let s = Shutdown::new();
        assert!(!s.wait_timeout(Duration::from_millis(10)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait_timeout(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        s.request();
        assert!(t.join().unwrap());
        assert!(s.is_requested());
    }

    #[test]
    fn async_wait_resolves_on_request() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let s = Shutdown::new();
        let s2 = s.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            s2.request();
        });
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), s.wait()).await }).expect("woken by request");
        // Already requested: resolves at once.
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(100), s.wait()).await }).unwrap();
    }
}
