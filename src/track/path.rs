//! Where and when a track was seen: a bounded, evenly thinned record of its
//! matched boxes, in frame-relative coordinates. Pairing (`crate::pair`) uses
//! it to tell that an RGB and a thermal track of one box followed the same
//! person at the same time, whatever the two sensors' resolutions.

use crate::core::BBox;

/// One matched detection of a track.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PathPoint {
    /// Stream timestamp of the frame, when the stream has one.
    pub pts_ns: Option<u64>,
    /// Wall clock of the frame, nanoseconds since the Unix epoch.
    pub wall_ns: i64,
    /// The box as fractions of the frame's width and height (0..1).
    pub rel_box: BBox,
}

/// At most `capacity` points, spread evenly over the whole track: when full,
/// every second point is dropped and only every `stride`-th new one is kept,
/// so a track of any length costs the same memory.
#[derive(Debug, Clone)]
pub struct TrackPath {
    points: Vec<PathPoint>,
    capacity: usize,
    stride: u64,
    offered: u64,
}

impl TrackPath {
    pub const DEFAULT_CAPACITY: usize = 64;

    pub fn new(capacity: usize) -> TrackPath {
        let capacity = capacity.max(2);
        TrackPath { points: Vec::with_capacity(capacity), capacity, stride: 1, offered: 0 }
    }

    /// Records a matched box of a `width × height` frame.
    pub fn offer(&mut self, pts_ns: Option<u64>, wall_ns: i64, bbox: &BBox, width: u32, height: u32) {
        let keep = self.offered.is_multiple_of(self.stride);
        self.offered += 1;
        if !keep || width == 0 || height == 0 {
            return;
        }
        if self.points.len() == self.capacity {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
            // The point that triggered the thinning is kept only if it falls on the new stride.
            if !(self.offered - 1).is_multiple_of(self.stride) {
                return;
            }
        }
        let (w, h) = (width as f32, height as f32);
        self.points.push(PathPoint {
            pts_ns,
            wall_ns,
            rel_box: BBox::new(bbox.x / w, bbox.y / h, bbox.w / w, bbox.h / h),
        });
    }

    pub fn into_points(self) -> Vec<PathPoint> {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_even_and_relative() {
        let mut p = TrackPath::new(8);
        for i in 0..1000u64 {
            p.offer(Some(i), i as i64, &BBox::new(i as f32, 0.0, 64.0, 128.0), 640, 512);
        }
        let pts = p.into_points();
        assert!(pts.len() <= 8 && pts.len() >= 4, "{} points", pts.len());
        // Spread over the whole track, in time order, evenly spaced.
        assert_eq!(pts[0].pts_ns, Some(0));
        assert!(pts.last().unwrap().pts_ns.unwrap() >= 1000 - 256);
        let gaps: Vec<u64> = pts.windows(2).map(|w| w[1].pts_ns.unwrap() - w[0].pts_ns.unwrap()).collect();
        assert!(gaps.iter().all(|g| *g == gaps[0]), "uneven gaps {gaps:?}");
        assert_eq!(pts[0].rel_box, BBox::new(0.0, 0.0, 0.1, 0.25));
        // A zero-sized frame records nothing rather than dividing by zero.
        let mut q = TrackPath::new(8);
        q.offer(None, 0, &BBox::new(1.0, 1.0, 1.0, 1.0), 0, 0);
        assert!(q.into_points().is_empty());
    }
}
