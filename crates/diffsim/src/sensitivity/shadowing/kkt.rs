//! The shadowing methods' least-squares problems, reduced to their Lagrange multipliers:
//! block tridiagonal, symmetric positive definite systems, factored once by block
//! elimination and solved for as many right-hand sides as wanted.
//!
//! Least-squares shadowing: with `v_{i+1} = Phi_i v_i + g_i + eta_i dt f_{i+1}` as the
//! constraints (`B v + F eta = g`) and `|v|^2 + alpha^2 |eta|^2` minimised, `v = B^T w` and
//! `eta = F^T w / alpha^2` with `S w = g`, `S = B B^T + F F^T / alpha^2`:
//!
//! ```text
//! S_ii = I + Phi_i Phi_i^T + dt^2 f_{i+1} f_{i+1}^T / alpha^2,   S_{i+1,i} = -Phi_{i+1}.
//! ```
//!
//! The blocks are small (the model's states, or the unstable directions) and the systems
//! long: block elimination with the crate's small dense LU costs `O(m n^3)` for `m` blocks,
//! against `O((m n)^3)` dense or a sparse factorisation's set-up per call.

use crate::solve::{factors_by_columns, lu_factor, lu_solve};

use super::segments::Segments;

/// A symmetric block tridiagonal matrix of `m` blocks of `n x n`, then its factors: each
/// eliminated diagonal block `D'_i = D_i - L_i D'_{i-1}^{-1} L_i^T` (`L_i` the block below
/// the diagonal in row `i`), LU-factored column-major for [`lu_solve`].
pub(super) struct BlockTridiagonal {
    n: usize,
    m: usize,
    /// Diagonal blocks, row-major; factored in place by [`Self::factor`].
    diag: Vec<f64>,
    /// `L_i = A_{i, i-1}` for `i >= 1` (index `i`; block 0 unused), row-major.
    sub: Vec<f64>,
    piv: Vec<usize>,
}

impl BlockTridiagonal {
    pub(super) fn new(m: usize, n: usize) -> Self {
        Self { n, m, diag: vec![0.0; m * n * n], sub: vec![0.0; m * n * n], piv: vec![0; m * n] }
    }

    /// Diagonal block `i`, row-major.
    pub(super) fn diag_mut(&mut self, i: usize) -> &mut [f64] {
        let nn = self.n * self.n;
        &mut self.diag[i * nn..(i + 1) * nn]
    }

    /// The block below the diagonal in row `i >= 1` (`A_{i, i-1}`), row-major.
    pub(super) fn sub_mut(&mut self, i: usize) -> &mut [f64] {
        let nn = self.n * self.n;
        &mut self.sub[i * nn..(i + 1) * nn]
    }

    /// Factor in place. False if a block is singular (not for a positive definite matrix,
    /// but for NaN input).
    pub(super) fn factor(&mut self) -> bool {
        let (n, nn) = (self.n, self.n * self.n);
        let mut x = vec![0.0; n];
        let mut d = vec![0.0; nn];
        for i in 0..self.m {
            d.copy_from_slice(&self.diag[i * nn..(i + 1) * nn]);
            if i > 0 {
                // Less L_i D'_{i-1}^{-1} L_i^T, a column of L_i^T at a time.
                let l = &self.sub[i * nn..(i + 1) * nn];
                for c in 0..n {
                    x.iter_mut().enumerate().for_each(|(k, xk)| *xk = l[c * n + k]);
                    lu_solve(&self.diag[(i - 1) * nn..i * nn], &self.piv[(i - 1) * n..i * n], n, &mut x);
                    for r in 0..n {
                        d[r * n + c] -= (0..n).map(|k| l[r * n + k] * x[k]).sum::<f64>();
                    }
                }
            }
            if !lu_factor(&mut d, &mut self.piv[i * n..(i + 1) * n], n) {
                return false;
            }
            factors_by_columns(&d, n, &mut self.diag[i * nn..(i + 1) * nn]);
        }
        true
    }

    /// Solve `A w = b` in place (`b`: `m` blocks of `n`), after [`Self::factor`].
    pub(super) fn solve(&self, b: &mut [f64]) {
        let (n, nn) = (self.n, self.n * self.n);
        let mut x = vec![0.0; n];
        // Forward: y_i = b_i - L_i D'_{i-1}^{-1} y_{i-1}.
        for i in 1..self.m {
            x.copy_from_slice(&b[(i - 1) * n..i * n]);
            lu_solve(&self.diag[(i - 1) * nn..i * nn], &self.piv[(i - 1) * n..i * n], n, &mut x);
            let l = &self.sub[i * nn..(i + 1) * nn];
            for r in 0..n {
                b[i * n + r] -= (0..n).map(|k| l[r * n + k] * x[k]).sum::<f64>();
            }
        }
        // Backward: w_i = D'_i^{-1} (y_i - L_{i+1}^T w_{i+1}).
        for i in (0..self.m).rev() {
            if i + 1 < self.m {
                let l = &self.sub[(i + 1) * nn..(i + 2) * nn];
                let (head, tail) = b.split_at_mut((i + 1) * n);
                for r in 0..n {
                    head[i * n + r] -= (0..n).map(|k| l[k * n + r] * tail[k]).sum::<f64>();
                }
            }
            lu_solve(&self.diag[i * nn..(i + 1) * nn], &self.piv[i * n..(i + 1) * n], n, &mut b[i * n..(i + 1) * n]);
        }
    }
}

/// The least-squares shadowing system `S` of `segments`, factored. `None` if singular.
pub(super) fn lss_system(segments: &Segments, alpha: f64) -> Option<BlockTridiagonal> {
    let (n, m, dt) = (segments.n, segments.len(), segments.dt);
    let mut s = BlockTridiagonal::new(m, n);
    for i in 0..m {
        let phi = segments.phi(i);
        let f = segments.f_end(i);
        let d = s.diag_mut(i);
        for r in 0..n {
            for c in 0..n {
                let pp: f64 = (0..n).map(|k| phi[r * n + k] * phi[c * n + k]).sum();
                d[r * n + c] = pp + f[r] * f[c] * dt * dt / (alpha * alpha) + if r == c { 1.0 } else { 0.0 };
            }
        }
        if i > 0 {
            s.sub_mut(i).iter_mut().zip(phi).for_each(|(l, p)| *l = -p);
        }
    }
    s.factor().then_some(s)
}
