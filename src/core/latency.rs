//! Stage latencies: a histogram a stage's thread fills without locks
//! ([`LatencyHistogram`]) and its snapshot ([`LatencySnapshot`]), which
//! `/metrics` renders (`api::metrics`) as `vireid_stage_latency_seconds`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Cumulative bucket counts (Prometheus `le`), the sum and the count.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LatencySnapshot {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub sum_s: f64,
    pub count: u64,
}

impl LatencySnapshot {
    /// Adds one observation.
    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            *b += u64::from(secs <= le);
        }
        self.sum_s += secs;
        self.count += 1;
    }

    /// Adds another histogram of the same stage (e.g. another camera's).
    pub fn merge(&mut self, other: &LatencySnapshot) {
        for (b, o) in self.buckets.iter_mut().zip(other.buckets) {
            *b += o;
        }
        self.sum_s += other.sum_s;
        self.count += other.count;
    }
}

/// A histogram one stage's thread fills (atomics: read any time by the
/// service that exports it).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_ns.fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_s: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atomic_and_the_plain_histogram_agree() {
        let (h, mut s) = (LatencyHistogram::default(), LatencySnapshot::default());
        for ms in [3, 300, 12_000] {
            h.observe(Duration::from_millis(ms));
            s.observe(Duration::from_millis(ms));
        }
        let snap = h.snapshot();
        assert_eq!((snap.buckets, snap.count), (s.buckets, 3));
        assert_eq!(snap.buckets[2], 1, "3 ms is within 5 ms");
        assert_eq!(snap.buckets[8], 2, "300 ms is within 0.5 s");
        assert_eq!(snap.buckets[11], 2, "12 s is in +Inf only");
        assert!((snap.sum_s - 12.303).abs() < 1e-9);
        let mut twice = snap.clone();
        twice.merge(&snap);
        assert_eq!(twice.count, 6);
    }
}
