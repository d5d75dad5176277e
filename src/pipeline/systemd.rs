//! Running under systemd: readiness, a progress-based watchdog, and SIGTERM.
//!
//! * `READY=1` is sent by the caller (`ServiceNotifier::ready`) once cameras and
//!   the model are up: systemd then considers the unit started.
//! * `WATCHDOG=1` is sent by [`Watchdog`] only while the pipeline makes progress:
//!   the pipeline bumps a [`Progress`] heartbeat for every frame it finishes, and
//!   a heartbeat that stops moving stops the pings, so systemd's `WatchdogSec`
//!   fires and restarts a hung pipeline (a wedged decoder, a dead camera thread).
//!   A timer that pinged regardless would hide exactly those failures.
//! * `STOPPING=1` is sent when SIGTERM/SIGINT arrives ([`super::process`]).
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every notification is a no-op.

use sd_notify::NotifyState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{PipelineError, PipelineResult};
use crate::core::Shutdown;

fn notify(what: &'static str, states: &[NotifyState]) -> PipelineResult<()> {
    sd_notify::notify(states).map_err(|source| PipelineError::Notify { what, source })
}

/// Sends state changes to the service manager (through `$NOTIFY_SOCKET`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceNotifier;

impl ServiceNotifier {
    /// The unit is up: cameras are streaming and the model is loaded.
    pub fn ready(&self, status: &str) -> PipelineResult<()> {
        notify("READY=1", &[NotifyState::Ready, NotifyState::Status(status)])
    }

    /// A human-readable line `systemctl status vireid` shows.
    pub fn status(&self, status: &str) -> PipelineResult<()> {
        notify("STATUS=", &[NotifyState::Status(status)])
    }

    pub fn watchdog(&self) -> PipelineResult<()> {
        notify("WATCHDOG=1", &[NotifyState::Watchdog])
    }

    /// Shutdown started; `extend` asks systemd for more stop time than
    /// `TimeoutStopSec` when a drain is expected to take long.
    pub fn stopping(&self, extend: Option<Duration>) -> PipelineResult<()> {
        let mut states = vec![NotifyState::Stopping, NotifyState::Status("draining in-flight sightings")];
        if let Some(extend) = extend {
            states.push(NotifyState::ExtendTimeoutUsec(extend.as_micros().min(u32::MAX as u128) as u32));
        }
        notify("STOPPING=1", &states)
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

    /// For a pipeline that already counts its frames: moves the heartbeat to
    /// that count (never backwards).
    pub fn advance_to(&self, total: u64) {
        self.0.fetch_max(total, Ordering::Relaxed);
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
    stop: Shutdown,
    stats: Arc<WatchdogStats>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts pinging. The first ping goes out at once (startup was progress).
    pub fn start(config: WatchdogConfig, progress: Progress) -> PipelineResult<Watchdog> {
        if config.ping_every.is_zero() || config.stall_after.is_zero() {
            return Err(PipelineError::Watchdog);
        }
        let stop = Shutdown::new();
        let stats = Arc::new(WatchdogStats::default());
        let (stop2, stats2) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || watchdog_loop(config, progress, &stop2, &stats2))
            .map_err(|e| PipelineError::Spawn("watchdog", e))?;
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
        self.stop.request();
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

fn watchdog_loop(config: WatchdogConfig, progress: Progress, stop: &Shutdown, stats: &WatchdogStats) {
    let notifier = ServiceNotifier;
    let mut last_value = progress.value();
    let mut last_change = Instant::now();
    let mut warned = false;
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
                Err(e) => tracing::warn!("{e}"),
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
        if stop.wait_timeout(config.ping_every) {
            return;
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
        p.advance_to(10);
        p.advance_to(5);
        assert_eq!(q.value(), 10);
    }

    #[test]
    fn period_splits_into_ping_and_stall() {
        let c = WatchdogConfig::for_period(Duration::from_secs(30));
        assert_eq!(c.ping_every, Duration::from_secs(15));
        assert_eq!(c.stall_after, Duration::from_secs(30));
    }
}
