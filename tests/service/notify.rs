//! systemd notification tests against a real NOTIFY_SOCKET: a Unix datagram
//! socket this test binds, exactly what systemd gives a Type=notify service.

use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use vireid::pipeline::systemd::{Progress, ServiceNotifier, Watchdog, WatchdogConfig};
use vireid::pipeline::{drain_within, Process};

/// One socket for the whole binary (NOTIFY_SOCKET is process-wide); tests take
/// turns through the mutex.
struct NotifySocket {
    sock: UnixDatagram,
    _dir: tempfile::TempDir,
}

fn notify_socket() -> &'static Mutex<NotifySocket> {
    static SOCKET: OnceLock<Mutex<NotifySocket>> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        // Set before any notifier runs; the tests only read it afterwards.
        std::env::set_var("NOTIFY_SOCKET", &path);
        Mutex::new(NotifySocket { sock, _dir: dir })
    })
}

/// Receives datagrams until `until`, each with the time it arrived.
fn collect(sock: &UnixDatagram, until: Instant) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let now = Instant::now();
        if now >= until {
            return out;
        }
        sock.set_read_timeout(Some(until - now)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => out.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned())),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return out,
            Err(e) => panic!("recv on NOTIFY_SOCKET: {e}"),
        }
    }
}

fn drain_pending(sock: &UnixDatagram) {
    collect(sock, Instant::now() + Duration::from_millis(20));
}

#[test]
fn stalled_pipeline_stops_watchdog_pings_and_progress_resumes_them() {
    let guard = notify_socket().lock().unwrap_or_else(|p| p.into_inner());
    let sock = &guard.sock;
    drain_pending(sock);

    ServiceNotifier.ready("2 cameras up, model loaded").unwrap();
    let ready = collect(sock, Instant::now() + Duration::from_millis(500));
    assert!(ready.iter().any(|(_, m)| m.lines().any(|l| l == "READY=1")), "no READY=1 datagram: {ready:?}");

    let config = WatchdogConfig { ping_every: Duration::from_millis(100), stall_after: Duration::from_millis(400) };
    let progress = Progress::new();
    let watchdog = Watchdog::start(config, progress.clone()).unwrap();

    // A "pipeline" that finishes a frame every 10 ms for 800 ms, then hangs.
    let pipeline_progress = progress.clone();
    let pipeline = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_millis(800);
        while Instant::now() < end {
            pipeline_progress.bump();
            std::thread::sleep(Duration::from_millis(10));
        }
        Instant::now()
    });
    let stalled_at_guess = Instant::now() + Duration::from_millis(800);
    let messages = collect(sock, stalled_at_guess + Duration::from_millis(2000));
    let stalled_at = pipeline.join().unwrap();

    let pings: Vec<Instant> =
        messages.iter().filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1")).map(|(t, _)| *t).collect();
    let while_progressing = pings.iter().filter(|t| **t <= stalled_at).count();
    assert!(
        while_progressing >= 4,
        "expected WATCHDOG=1 every ~100 ms while frames flow, got {while_progressing}: {messages:?}"
    );
    // A ping may legitimately come up to stall_after (+ one check interval for
    // the watchdog to notice the last bump, + scheduling slack) after the stall.
    let allowed_until = stalled_at + config.stall_after + 2 * config.ping_every + Duration::from_millis(250);
    let late: Vec<_> = pings.iter().filter(|t| **t > allowed_until).collect();
    assert!(late.is_empty(), "WATCHDOG=1 kept coming {} time(s) after the pipeline stalled", late.len());
    assert!(
        messages.iter().any(|(_, m)| m.contains("STATUS=stalled")),
        "systemd status should say the pipeline stalled: {messages:?}"
    );
    assert!(watchdog.stats().skipped_stalled.load(std::sync::atomic::Ordering::Relaxed) > 0);

    // Frames flow again: pings come back.
    for _ in 0..30 {
        progress.bump();
        std::thread::sleep(Duration::from_millis(10));
    }
    let resumed = collect(sock, Instant::now() + Duration::from_millis(300));
    assert!(
        resumed.iter().any(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1")),
        "progress resumed but no WATCHDOG=1: {resumed:?}"
    );
    watchdog.stop();
}

#[test]
fn sigterm_requests_shutdown_sends_stopping_and_drains() {
    let guard = notify_socket().lock().unwrap_or_else(|p| p.into_inner());
    let sock = &guard.sock;
    drain_pending(sock);

    // The process's runtime installs the SIGTERM/SIGINT handlers (through tokio).
    let process = Process::start().unwrap();
    let shutdown = process.shutdown().clone();
    assert!(!shutdown.is_requested());
    // SAFETY: sending a signal to our own process; the handler installed above catches it.
    let rc = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(rc, 0);
    assert!(shutdown.wait_timeout(Duration::from_secs(5)), "SIGTERM did not request shutdown");
    let messages = collect(sock, Instant::now() + Duration::from_millis(500));
    assert!(
        messages.iter().any(|(_, m)| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1 after SIGTERM: {messages:?}"
    );

    // In-flight work (here: 50 pending items flushed one by one) completes within the deadline.
    let pending: Vec<u32> = (0..50).collect();
    let flushed = drain_within(Duration::from_secs(5), move || {
        let mut saved = 0usize;
        for _ in pending {
            std::thread::sleep(Duration::from_millis(1));
            saved += 1;
        }
        Ok(saved)
    })
    .unwrap();
    assert_eq!(flushed, 50);
}
