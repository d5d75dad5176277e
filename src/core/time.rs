//! Points in time as the stages exchange them: wall-clock instants as
//! nanoseconds or seconds since the Unix epoch (SQLite rows, events, the API),
//! and `SystemTime` where frames are stamped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 for a time before it).
pub fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Seconds since the Unix epoch (0 for a time before it).
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    unix_ns(SystemTime::now())
}

/// Now, in seconds since the Unix epoch.
pub fn now_secs() -> f64 {
    unix_secs(SystemTime::now())
}

/// Nanoseconds since the epoch → seconds.
pub fn ns_to_secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Seconds since the epoch → nanoseconds (rounded towards zero).
pub fn secs_to_ns(secs: f64) -> i64 {
    (secs * 1e9) as i64
}

/// `SystemTime` of nanoseconds since the epoch (negative clamps to the epoch).
pub fn from_unix_ns(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = from_unix_ns(1_700_000_000_123_456_789);
        assert_eq!(unix_ns(t), 1_700_000_000_123_456_789);
        assert!((unix_secs(t) - 1_700_000_000.123_456_7).abs() < 1e-6);
        assert_eq!(ns_to_secs(1_500_000_000), 1.5);
        assert_eq!(secs_to_ns(1.5), 1_500_000_000);
        assert_eq!(unix_ns(UNIX_EPOCH - Duration::from_secs(1)), 0, "before the epoch clamps to 0");
        assert!(now_ns() > 1_600_000_000_000_000_000);
    }
}
