//! `vireid run` under a systemd-like NOTIFY_SOCKET: the real binary sends
//! READY=1 after its cameras start, WATCHDOG=1 while frames are processed, and
//! STOPPING=1 on SIGTERM, then drains and exits 0.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn run_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n\
             [[camera]]\nname = \"cam-rgb\"\nmodality = \"rgb\"\nsource = \"test:ball\"\n\
             [[camera]]\nname = \"cam-thermal\"\nmodality = \"thermal\"\nsource = \"test:snow\"\n\
             [ingest]\nwidth = 160\nheight = 120\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "run", "--config"])
        .arg(&config)
        .args(["--tracks", "/dev/null", "--duration", "60"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut messages: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    // READY, then at least three watchdog pings (frames are flowing).
    while Instant::now() < deadline && messages.iter().filter(|m| m.contains("WATCHDOG=1")).count() < 3 {
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("vireid run exited early with {status}: {messages:?}");
        }
    }
    let ready_at = messages.iter().position(|m| m.lines().any(|l| l == "READY=1"));
    let first_ping = messages.iter().position(|m| m.contains("WATCHDOG=1"));
    assert!(ready_at.is_some(), "no READY=1: {messages:?}");
    assert!(first_ping.is_some_and(|p| p > ready_at.unwrap()), "watchdog pings should follow READY: {messages:?}");

    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vireid run did not exit within 30 s of SIGTERM");
    };
    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let mut stderr = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "exit {status} after SIGTERM: {stderr}");
    assert!(messages.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")), "no STOPPING=1: {messages:?}");
}
