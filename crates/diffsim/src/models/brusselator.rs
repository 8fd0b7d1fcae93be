//! The 1-D Brusselator reaction-diffusion system by the method of lines (Hairer & Wanner,
//! Solving ODEs II, problem BRUS): a medium-size stiff system whose size is a choice.

use crate::problem::Model;
use crate::scalar::Scalar;

/// `u_t = A + u^2 v - (B + 1) u + alpha u_xx`, `v_t = B u - u^2 v + alpha v_xx` on
/// x in (0, 1) with u = 1, v = 3 at both ends, on `n` interior points (2 n states,
/// interleaved u_1, v_1, u_2, v_2, ... so the Jacobian is banded). p = [A, B, alpha],
/// classically [1, 3, 1/50], with u(x, 0) = 1 + sin(2 pi x), v(x, 0) = 3.
#[derive(Clone, Copy, Debug)]
pub struct Brusselator1D {
    /// Number of interior grid points.
    pub n: usize,
}

impl Brusselator1D {
    /// The classic initial state for this grid.
    pub fn initial_state(&self) -> Vec<f64> {
        let dx = 1.0 / (self.n as f64 + 1.0);
        (0..self.n)
            .flat_map(|i| {
                let x = (i as f64 + 1.0) * dx;
                [1.0 + (2.0 * std::f64::consts::PI * x).sin(), 3.0]
            })
            .collect()
    }
}

impl Default for Brusselator1D {
    fn default() -> Self {
        Self { n: 32 }
    }
}

impl Model for Brusselator1D {
    fn n_states(&self) -> usize {
        2 * self.n
    }
    fn n_params(&self) -> usize {
        3
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let n = self.n;
        let (a, b, alpha) = (p[0], p[1], p[2]);
        let dx = 1.0 / (n as f64 + 1.0);
        let c = alpha * (1.0 / (dx * dx)); // alpha / dx^2
        let (ul, vl) = (T::from_f64(1.0), T::from_f64(3.0));
        for i in 0..n {
            let (ui, vi) = (u[2 * i], u[2 * i + 1]);
            let (um, vm) = if i == 0 { (ul, vl) } else { (u[2 * i - 2], u[2 * i - 1]) };
            let (up, vp) = if i + 1 == n { (ul, vl) } else { (u[2 * i + 2], u[2 * i + 3]) };
            let uuv = ui * ui * vi;
            du[2 * i] = a + uuv - (b + 1.0) * ui + c * (um - ui * 2.0 + up);
            du[2 * i + 1] = b * ui - uuv + c * (vm - vi * 2.0 + vp);
        }
    }
}
