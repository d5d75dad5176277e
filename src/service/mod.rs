//! Running under systemd: readiness, a progress-based watchdog, and SIGTERM.
//!
//! * `READY=1` is sent by the caller (`ServiceNotifier::ready`) once cameras and
//!   the model are up: systemd then considers the unit started.
//! * `WATCHDOG=1` is sent by [`Watchdog`] only while the pipeline makes progress:
//!   the pipeline bumps a [`Progress`] heartbeat for every frame it finishes, and
//!   a heartbeat that stops moving stops the pings, so systemd's `WatchdogSec`
//!   fires and restarts a hung pipeline (a wedged decoder, a dead camera thread).
//!   A timer that pinged regardless would hide exactly those failures.
//! * [`Shutdown`] turns SIGTERM/SIGINT into a flag the pipeline polls, sends
//!   `STOPPING=1`, and [`Shutdown::drain`] gives in-flight work (sightings not yet
//!   in SQLite) a bounded time to finish.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every notification is a no-op.

use anyhow::{Context, Result};
use sd_notify::NotifyState;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends state changes to the service manager (through `$NOTIFY_SOCKET`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceNotifier;

impl ServiceNotifier {
    /// The unit is up: cameras are streaming and the model is loaded.
    pub fn ready(&self, status: &str) -> Result<()> {
        sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)])
            .context("cannot send READY=1 to systemd's NOTIFY_SOCKET")
    }

    /// A human-readable line `systemctl status vireid` shows.
    pub fn status(&self, status: &str) -> Result<()> {
        sd_notify::notify(&[NotifyState::Status(status)]).context("cannot send STATUS= to systemd's NOTIFY_SOCKET")
    }

    pub fn watchdog(&self) -> Result<()> {
        sd_notify::notify(&[NotifyState::Watchdog]).context("cannot send WATCHDOG=1 to systemd's NOTIFY_SOCKET")
    }

    /// Shutdown started; `extend` asks systemd for more stop time than
    /// `TimeoutStopSec` when a drain is expected to take long.
    pub fn stopping(&self, extend: Option<Duration>) -> Result<()> {
        let mut states = vec![NotifyState::Stopping, NotifyState::Status("draining in-flight sightings")];
        if let Some(extend) = extend {
            states.push(NotifyState::ExtendTimeoutUsec(extend.as_micros().min(u32::MAX as u128) as u32));
        }
        sd_notify::notify(&states).context("cannot send STOPPING=1 to systemd's NOTIFY_SOCKET")
    }
}

/// The pipeline's heartbeat: a counter of finished units of work (frames).
/// Cheap to clone and bump from any thread.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Called by the pipeline each time it finishes a frame.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn value(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// When the watchdog pings, and after how long without progress it stops.
#[derive(Debug, Clone, Copy)]
pub struct WatchdogConfig {
    /// Time between checks (and pings). systemd recommends half of `WatchdogSec`.
    pub ping_every: Duration,
    /// No progress for this long counts as a stall: pings stop.
    pub stall_after: Duration,
}

impl WatchdogConfig {
    /// From systemd's `WATCHDOG_USEC` (set when the unit has `WatchdogSec=`);
    /// `None` when the watchdog is not enabled for this process.
    pub fn from_env() -> Option<WatchdogConfig> {
        let period = sd_notify::watchdog_enabled()?;
        Some(WatchdogConfig::for_period(period))
    }

    /// Pings at half the period; a stall is declared after one whole period
    /// without progress, so systemd fires within about two periods of a hang.
    pub fn for_period(period: Duration) -> WatchdogConfig {
        WatchdogConfig { ping_every: period / 2, stall_after: period }
    }
}

/// Counters the watchdog keeps; read by tests and `/metrics`.
#[derive(Debug, Default)]
pub struct WatchdogStats {
    pub pings: AtomicU64,
    pub skipped_stalled: AtomicU64,
}

/// A thread that pings systemd while [`Progress`] moves.
pub struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    stats: Arc<WatchdogStats>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts pinging. The first ping goes out at once (startup was progress).
    pub fn start(config: WatchdogConfig, progress: Progress) -> Result<Watchdog> {
        anyhow::ensure!(
            !config.ping_every.is_zero() && !config.stall_after.is_zero(),
            "watchdog intervals must be positive: check WatchdogSec= in the unit file"
        );
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stats = Arc::new(WatchdogStats::default());
        let (stop2, stats2) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || watchdog_loop(config, progress, &stop2, &stats2))
            .context("cannot start the watchdog thread")?;
        Ok(Watchdog { stop, stats, thread: Some(thread) })
    }

    pub fn stats(&self) -> &WatchdogStats {
        &self.stats
    }

    /// Stops pinging (on shutdown, after `STOPPING=1`).
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn watchdog_loop(config: WatchdogConfig, progress: Progress, stop: &(Mutex<bool>, Condvar), stats: &WatchdogStats) {
    let notifier = ServiceNotifier;
    let mut last_value = progress.value();
    let mut last_change = Instant::now();
    let mut warned = false;
    let (lock, cvar) = stop;
    loop {
        let value = progress.value();
        if value != last_value {
            last_value = value;
            last_change = Instant::now();
            if warned {
                tracing::info!("pipeline progressing again; watchdog pings resumed");
                warned = false;
            }
        }
        if last_change.elapsed() < config.stall_after {
            match notifier.watchdog() {
                Ok(()) => {
                    stats.pings.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!("{e:#}"),
            }
        } else {
            stats.skipped_stalled.fetch_add(1, Ordering::Relaxed);
            if !warned {
                tracing::error!(
                    "pipeline made no progress for {:?}: withholding WATCHDOG=1 so systemd restarts vireid",
                    last_change.elapsed()
                );
                let _ = notifier.status("stalled: no frames processed");
                warned = true;
            }
        }
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = cvar
            .wait_timeout_while(guard, config.ping_every, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        if *guard {
            return;
        }
    }
}

/// Set once SIGTERM or SIGINT arrives; the pipeline stops taking new frames
/// when it sees it, then drains.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    requested: Arc<(AtomicBool, Mutex<()>, Condvar)>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Installs SIGTERM and SIGINT handlers (on a small thread with its own
    /// tokio runtime, so no unsafe signal handler touches our state). The
    /// first signal requests shutdown and sends `STOPPING=1`.
    pub fn install_signal_handlers(&self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("cannot create the signal-handling runtime")?;
        // Registering inside the runtime before returning means a signal sent
        // right after this call is already caught.
        let (mut term, mut int) = runtime.block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
        })
        .context("cannot install SIGTERM/SIGINT handlers")?;
        let this = self.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    let name = tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = int.recv() => "SIGINT",
                    };
                    tracing::info!("{name} received: stopping intake and draining in-flight sightings");
                    if let Err(e) = ServiceNotifier.stopping(None) {
                        tracing::warn!("{e:#}");
                    }
                    this.request();
                })
            })
            .context("cannot start the signal thread")?;
        Ok(())
    }

    /// Requests shutdown (what the signal handler does; also usable directly).
    pub fn request(&self) {
        let (flag, lock, cvar) = &*self.requested;
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        flag.store(true, Ordering::SeqCst);
        cvar.notify_all();
    }

    pub fn is_requested(&self) -> bool {
        self.requested.0.load(Ordering::SeqCst)
    }

    /// Blocks until shutdown is requested or `timeout` passes; true if requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (flag, lock, cvar) = &*self.requested;
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = cvar
            .wait_timeout_while(guard, timeout, |_| !flag.load(Ordering::SeqCst))
            .unwrap_or_else(|p| p.into_inner());
        flag.load(Ordering::SeqCst)
    }

    /// Runs `flush` (e.g. "write every open sighting to SQLite and join the
    /// workers") with a deadline below systemd's `TimeoutStopSec`, so a hung
    /// flush ends in a logged error and an orderly exit instead of SIGKILL
    /// halfway through a write. Returns what `flush` returned.
    pub fn drain<T: Send + 'static>(
        &self,
        deadline: Duration,
        flush: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("drain".into())
            .spawn(move || {
                let _ = tx.send(flush());
            })
            .context("cannot start the drain thread")?;
        match rx.recv_timeout(deadline) {
            Ok(result) => result.context("draining in-flight work on shutdown"),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => anyhow::bail!(
                "draining in-flight work did not finish within {deadline:?}: some sightings may not be saved; \
                 raise TimeoutStopSec= in the unit and the drain deadline if this box is slow"
            ),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the drain thread panicked: in-flight sightings were not saved")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_across_clones() {
        let p = Progress::new();
        let q = p.clone();
        p.bump();
        q.bump();
        assert_eq!(p.value(), 2);
    }

    #[test]
    fn period_splits_into_ping_and_stall() {
        let c = WatchdogConfig::for_period(Duration::from_secs(30));
        assert_eq!(c.ping_every, Duration::from_secs(15));
        assert_eq!(c.stall_after, Duration::from_secs(30));
    }

    #[test]
    fn drain_times_out_with_a_clear_error() {
        let s = Shutdown::new();
        let err = s
            .drain(Duration::from_millis(50), || {
                std::thread::sleep(Duration::from_secs(2));
                Ok(())
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains("TimeoutStopSec"), "{err:#}");
        assert_eq!(s.drain(Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }

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
}
