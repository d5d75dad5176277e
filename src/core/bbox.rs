//! Axis-aligned boxes in pixel coordinates, shared by synth ground truth,
//! detection, tracking and sightings.

use serde::{Deserialize, Serialize};

/// A box `[x, y, w, h]` in pixels, top-left origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BBox {
    pub fn new(x: f32, y: f32, w: f32, h: f32) -> Self {
        BBox { x, y, w, h }
    }

    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    pub fn right(&self) -> f32 {
        self.x + self.w
    }

    pub fn bottom(&self) -> f32 {
        self.y + self.h
    }

    pub fn center(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    pub fn intersection(&self, other: &BBox) -> f32 {
        let iw = self.right().min(other.right()) - self.x.max(other.x);
        let ih = self.bottom().min(other.bottom()) - self.y.max(other.y);
        if iw <= 0.0 || ih <= 0.0 {
            0.0
        } else {
            iw * ih
        }
    }

    /// Intersection over union; 0 for degenerate boxes.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The box clipped to a `width × height` frame (may become empty).
    pub fn clip(&self, width: u32, height: u32) -> BBox {
        let x0 = self.x.clamp(0.0, width as f32);
        let y0 = self.y.clamp(0.0, height as f32);
        let x1 = self.right().clamp(0.0, width as f32);
        let y1 = self.bottom().clamp(0.0, height as f32);
        BBox::new(x0, y0, (x1 - x0).max(0.0), (y1 - y0).max(0.0))
    }

    /// True if the box lies wholly inside a `width × height` frame.
    pub fn inside(&self, width: u32, height: u32) -> bool {
        self.x >= 0.0 && self.y >= 0.0 && self.right() <= width as f32 && self.bottom() <= height as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_known_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BBox::new(5.0, 0.0, 10.0, 10.0);
        // intersection 50, union 150
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 5.0, 5.0)), 0.0);
        assert_eq!(a.iou(&a), 1.0);
    }

    #[test]
    fn clip_keeps_inside() {
        let b = BBox::new(-5.0, 90.0, 20.0, 20.0).clip(100, 100);
        assert_eq!(b, BBox::new(0.0, 90.0, 15.0, 10.0));
        assert!(b.inside(100, 100));
    }
}
