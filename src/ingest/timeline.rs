//! A camera's timeline: its frames' timestamps run forward for the life of
//! the process, and a break in the stream starts a new segment.
//!
//! A live source's PTS starts again near 0 on every connection (a restarted
//! RTSP server, a replugged device), and a looped file's at every loop. Left
//! as they are, a track spanning the break had a first PTS after its last (a
//! thermal track once ran from 25.44 s to 9.04 s across a 14 s outage). So
//! each connection is placed after the last one, with the wall-clock time
//! between them, and its frames carry a new [`segment`](crate::core::Frame::segment):
//! the camera's tracks end there (`pipeline::front`).

use std::time::Instant;

/// Maps one camera's stream PTS to a timeline that never runs backwards.
#[derive(Debug, Default)]
pub struct Timeline {
    segment: u64,
    /// Stream PTS of the segment's first frame and where it lands on the timeline.
    origin: Option<(u64, u64)>,
    last_in: Option<u64>,
    /// The last timestamp given out, and when.
    last_out: Option<(u64, Instant)>,
    started: bool,
}

impl Timeline {
    /// A new connection to the source: its frames start a new segment.
    pub fn reconnected(&mut self) {
        if self.started {
            self.break_segment();
        }
    }

    fn break_segment(&mut self) {
        self.segment += 1;
        self.origin = None;
        self.last_in = None;
    }

    /// The frame's place: (timestamp on the camera's timeline, segment). A
    /// PTS that goes backwards within a connection (a file looping) breaks
    /// the segment too. Frames without a PTS keep `None`.
    pub fn place(&mut self, pts: Option<u64>, now: Instant) -> (Option<u64>, u64) {
        self.started = true;
        let Some(pts) = pts else { return (None, self.segment) };
        if self.last_in.is_some_and(|last| pts < last) {
            self.break_segment();
        }
        self.last_in = Some(pts);
        let (first_in, first_out) = *self.origin.get_or_insert_with(|| match self.last_out {
            // The first segment keeps the stream's own timestamps.
            None => (pts, pts),
            // Later ones start after the last frame, by the time that has passed.
            Some((out, at)) => (pts, out + (now.saturating_duration_since(at).as_nanos() as u64).max(1)),
        });
        let mut out = first_out + (pts - first_in);
        if let Some((last, _)) = self.last_out {
            out = out.max(last + 1);
        }
        self.last_out = Some((out, now));
        (Some(out), self.segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_reconnect_continues_the_timeline_in_a_new_segment() {
        let t0 = Instant::now();
        let mut tl = Timeline::default();
        tl.reconnected(); // the first connection is not a break
        assert_eq!(tl.place(Some(2 * S), t0), (Some(2 * S), 0), "the first segment keeps the stream's PTS");
        assert_eq!(tl.place(Some(25 * S), t0 + Duration::from_secs(23)), (Some(25 * S), 0));
        // 14 s outage; the restarted server's PTS starts again near 0.
        tl.reconnected();
        let (pts, seg) = tl.place(Some(S / 10), t0 + Duration::from_secs(37));
        assert_eq!((pts, seg), (Some(39 * S), 1), "after the last frame by the outage");
        assert_eq!(tl.place(Some(S / 10 + S), t0 + Duration::from_secs(38)), (Some(40 * S), 1));
        assert_eq!(tl.place(None, t0 + Duration::from_secs(38)), (None, 1));
    }

    #[test]
    fn a_pts_running_backwards_breaks_the_segment_and_time_still_runs_forward() {
        let t0 = Instant::now();
        let mut tl = Timeline::default();
        let mut last = 0;
        let mut segments = vec![];
        // A file looped twice: 0..8 s, 0..8 s.
        for (i, pts) in (0..80).chain(0..80).map(|f| f * S / 10).enumerate() {
            let (out, seg) = tl.place(Some(pts), t0 + Duration::from_millis(i as u64 * 100));
            let out = out.unwrap();
            assert!(i == 0 || out > last, "frame {i}: {out} after {last}");
            last = out;
            segments.push(seg);
        }
        assert_eq!(segments[79], 0);
        assert_eq!(segments[80], 1);
    }
}
