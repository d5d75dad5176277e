//! The process's one async runtime and its one stop signal.
//!
//! [`Process::start`] builds the tokio runtime that everything async runs on —
//! the HTTP API, the MQTT connection, signal handling — and the process's
//! [`Shutdown`]. SIGTERM and SIGINT are caught through tokio (no raw signal
//! handler): the first one sends `STOPPING=1` to systemd and requests the
//! shutdown; `vireid run` and `vireid serve` then stop intake and drain
//! ([`drain_within`]) before exiting.
//!
//! The pipeline's own work (ingest, detect, track, embed, the gallery actor)
//! runs on plain threads, not on this runtime: it is CPU-bound and must not
//! stall the API.

use std::time::Duration;

use super::{PipelineError, PipelineResult};

use super::systemd::ServiceNotifier;
use crate::core::Shutdown;

/// Worker threads of the runtime: the API and MQTT are light, the pipeline's
/// threads need the cores.
const RUNTIME_THREADS: usize = 2;

/// The runtime and the shutdown of this process.
pub struct Process {
    runtime: tokio::runtime::Runtime,
    shutdown: Shutdown,
}

impl Process {
    /// Starts the runtime and installs the SIGTERM/SIGINT handlers. A signal
    /// sent right after this returns is already caught.
    pub fn start() -> PipelineResult<Process> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("vireid-rt")
            .enable_all()
            .build()
            .map_err(PipelineError::Runtime)?;
        let shutdown = Shutdown::new();
        let (mut term, mut int) = runtime
            .block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
            })
            .map_err(PipelineError::Signals)?;
        let requested = shutdown.clone();
        runtime.spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name} received: stopping intake and draining in-flight sightings");
            if let Err(e) = ServiceNotifier.stopping(None) {
                tracing::warn!("{e}");
            }
            requested.request();
        });
        Ok(Process { runtime, shutdown })
    }

    /// Where async work (API, MQTT) is spawned.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// The process's shutdown: requested by a signal, or by whoever decides the run is over.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

/// Runs `flush` (e.g. "write every open sighting to SQLite and join the
/// workers") with a deadline below systemd's `TimeoutStopSec`, so a hung
/// flush ends in a logged error and an orderly exit instead of SIGKILL
/// halfway through a write. Returns what `flush` returned.
pub fn drain_within<T: Send + 'static>(
    deadline: Duration,
    flush: impl FnOnce() -> PipelineResult<T> + Send + 'static,
) -> PipelineResult<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            let _ = tx.send(flush());
        })
        .map_err(|e| PipelineError::Spawn("drain", e))?;
    match rx.recv_timeout(deadline) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(PipelineError::DrainTimeout(deadline)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(PipelineError::DrainPanicked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_times_out_with_a_clear_error() {
        let err = drain_within(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("TimeoutStopSec"), "{err:#}");
        assert_eq!(drain_within(Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }
}
