//! Constant-velocity Kalman filter on a box `(cx, cy, w, h)`.
//!
//! With a constant-velocity model each coordinate's `(position, velocity)`
//! evolves independently of the others, and the measurement picks positions
//! only; with per-coordinate (diagonal) noise the 8×8 covariance therefore
//! stays block-diagonal, and four exact 2×2 filters are the same filter as the
//! 8-state one SORT uses, without a matrix library.

use crate::core::BBox;

/// One coordinate: state `[p, v]`, covariance `[[a, b], [b, c]]`.
#[derive(Debug, Clone, Copy)]
struct Axis {
    p: f32,
    v: f32,
    a: f32,
    b: f32,
    c: f32,
}

impl Axis {
    fn new(p: f32, pos_std: f32, vel_std: f32) -> Self {
        Axis { p, v: 0.0, a: pos_std * pos_std, b: 0.0, c: vel_std * vel_std }
    }

    /// x ← F x, P ← F P Fᵀ + Q with F = [[1, 1], [0, 1]] (one frame step).
    fn predict(&mut self, q_pos: f32, q_vel: f32) {
        self.p += self.v;
        let (a, b, c) = (self.a, self.b, self.c);
        self.a = a + 2.0 * b + c + q_pos;
        self.b = b + c;
        self.c = c + q_vel;
    }

    /// Measurement z of the position with variance r.
    fn update(&mut self, z: f32, r: f32) {
        let s = self.a + r;
        let (k0, k1) = (self.a / s, self.b / s);
        let y = z - self.p;
        self.p += k0 * y;
        self.v += k1 * y;
        let (a, b, c) = (self.a, self.b, self.c);
        self.a = (1.0 - k0) * a;
        self.b = (1.0 - k0) * b;
        self.c = c - k1 * b;
    }
}

/// The filter for one track. Noise scales with the box height, as a far (small)
/// person moves fewer pixels per frame than a near one.
#[derive(Debug, Clone)]
pub struct BoxKalman {
    axes: [Axis; 4],
}

const POS_STD: f32 = 1.0 / 20.0;
const VEL_STD: f32 = 1.0 / 160.0;

impl BoxKalman {
    pub fn new(b: &BBox) -> Self {
        let (cx, cy) = b.center();
        let h = b.h.max(1.0);
        let z = [cx, cy, b.w, b.h];
        let axes = z.map(|p| Axis::new(p, 2.0 * POS_STD * h, 10.0 * VEL_STD * h));
        BoxKalman { axes }
    }

    pub fn predict(&mut self) -> BBox {
        let h = self.axes[3].p.max(1.0);
        let (qp, qv) = ((POS_STD * h).powi(2), (VEL_STD * h).powi(2));
        for ax in &mut self.axes {
            ax.predict(qp, qv);
        }
        // A shrinking box must not go through zero.
        for ax in &mut self.axes[2..] {
            if ax.p < 1.0 {
                ax.p = 1.0;
                ax.v = 0.0;
            }
        }
        self.bbox()
    }

    pub fn update(&mut self, b: &BBox) {
        let (cx, cy) = b.center();
        let r = (POS_STD * b.h.max(1.0)).powi(2);
        for (ax, z) in self.axes.iter_mut().zip([cx, cy, b.w, b.h]) {
            ax.update(z, r);
        }
    }

    pub fn bbox(&self) -> BBox {
        let [cx, cy, w, h] = self.axes.map(|a| a.p);
        BBox::new(cx - w / 2.0, cy - h / 2.0, w, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_constant_motion_and_coasts() {
        let mut k = BoxKalman::new(&BBox::new(0.0, 100.0, 50.0, 100.0));
        for t in 1..20 {
            k.predict();
            k.update(&BBox::new(5.0 * t as f32, 100.0, 50.0, 100.0));
        }
        // With no more measurements the box keeps moving at ~5 px/frame.
        let p = k.predict();
        assert!((p.x - 100.0).abs() < 2.0, "{p:?}");
        assert!((p.w - 50.0).abs() < 1.0 && (p.y - 100.0).abs() < 1.0, "{p:?}");
    }
}
