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

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) for logs, reports and model cards.
pub fn utc_string(t: SystemTime) -> String {
    let secs = unix_ns(t).div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod utc_tests {
    use super::*;

    #[test]
    fn utc_strings() {
        assert_eq!(utc_string(from_unix_ns(0)), "1970-01-01T00:00:00Z");
        assert_eq!(utc_string(from_unix_ns(951_782_400 * 1_000_000_000)), "2000-02-29T00:00:00Z");
        assert_eq!(utc_string(from_unix_ns(1_796_058_123 * 1_000_000_000)), "2026-11-30T17:02:03Z");
    }
}
