//! The least-squares shadowing KKT system, reduced to the Lagrange multipliers: a block
//! tridiagonal, symmetric positive definite system, factored once by block elimination and
//! solved for as many right-hand sides as wanted.
//!
//! With `v_{i+1} = Phi_i v_i + g_i + eta_i dt f_{i+1}` as the constraints (`B v + F eta = g`)
//! and `|v|^2 + alpha^2 |eta|^2` minimised, `v = B^T w` and `eta = F^T w / alpha^2` with
//! `S w = g`, `S = B B^T + F F^T / alpha^2`:
//!
//! ```text
//! S_ii = I + Phi_i Phi_i^T + dt^2 f_{i+1} f_{i+1}^T / alpha^2,   S_{i+1,i} = -Phi_{i+1}.
//! ```
//!
//! The blocks are `n x n` (the model's states) and few methods factor a block tridiagonal
//! system: block elimination with the crate's small dense LU costs `O(m n^3)` for `m`
//! segments, against `O((m n)^3)` dense or a sparse factorisation's set-up per call.

use crate::solve::{factors_by_columns, lu_factor, lu_solve};

use super::segments::Segments;

/// `S` factored: the pivots' factors (column-major, for [`lu_solve`]) of each eliminated
/// diagonal block `D'_i = S_ii - Phi_i D'_{i-1}^{-1} Phi_i^T`.
pub(super) struct Kkt<'a> {
    segments: &'a Segments,
    cols: Vec<f64>,
    piv: Vec<usize>,
}

impl<'a> Kkt<'a> {
    /// Factor `S` for the segments with time-dilation weight `alpha`. `None` if a block is
    /// singular (which `S`, positive definite, is not, but for NaN input).
    pub(super) fn factor(segments: &'a Segments, alpha: f64) -> Option<Self> {
        let (n, m, dt) = (segments.n, segments.len(), segments.dt);
        let mut cols = vec![0.0; m * n * n];
        let mut piv = vec![0; m * n];
        let mut d = vec![0.0; n * n];
        let mut x = vec![0.0; n];
        for i in 0..m {
            // S_ii.
            let phi = segments.phi(i);
            let f = segments.f_end(i);
            for r in 0..n {
                for c in 0..n {
                    let pp: f64 = (0..n).map(|k| phi[r * n + k] * phi[c * n + k]).sum();
                    d[r * n + c] = pp + f[r] * f[c] * dt * dt / (alpha * alpha) + if r == c { 1.0 } else { 0.0 };
                }
            }
            if i > 0 {
                // Less Phi_i D'_{i-1}^{-1} Phi_i^T, a column of Phi_i^T at a time.
                for c in 0..n {
                    x.iter_mut().enumerate().for_each(|(k, xk)| *xk = phi[c * n + k]);
                    lu_solve(&cols[(i - 1) * n * n..i * n * n], &piv[(i - 1) * n..i * n], n, &mut x);
                    for r in 0..n {
                        d[r * n + c] -= (0..n).map(|k| phi[r * n + k] * x[k]).sum::<f64>();
                    }
                }
            }
            if !lu_factor(&mut d, &mut piv[i * n..(i + 1) * n], n) {
                return None;
            }
            factors_by_columns(&d, n, &mut cols[i * n * n..(i + 1) * n * n]);
        }
        Some(Self { segments, cols, piv })
    }

    /// Solve `S w = b` in place (`b`: `m` blocks of `n`).
    pub(super) fn solve(&self, b: &mut [f64]) {
        let (n, m) = (self.segments.n, self.segments.len());
        let mut x = vec![0.0; n];
        // Forward: y_i = b_i + Phi_i D'_{i-1}^{-1} y_{i-1}.
        for i in 1..m {
            x.copy_from_slice(&b[(i - 1) * n..i * n]);
            self.block_solve(i - 1, &mut x);
            let phi = self.segments.phi(i);
            for r in 0..n {
                b[i * n + r] += (0..n).map(|k| phi[r * n + k] * x[k]).sum::<f64>();
            }
        }
        // Backward: w_i = D'_i^{-1} (y_i + Phi_{i+1}^T w_{i+1}).
        for i in (0..m).rev() {
            if i + 1 < m {
                let phi = self.segments.phi(i + 1);
                let (head, tail) = b.split_at_mut((i + 1) * n);
                for r in 0..n {
                    head[i * n + r] += (0..n).map(|k| phi[k * n + r] * tail[k]).sum::<f64>();
                }
            }
            self.block_solve(i, &mut b[i * n..(i + 1) * n]);
        }
    }

    fn block_solve(&self, i: usize, x: &mut [f64]) {
        let n = self.segments.n;
        lu_solve(&self.cols[i * n * n..(i + 1) * n * n], &self.piv[i * n..(i + 1) * n], n, x);
    }
}
