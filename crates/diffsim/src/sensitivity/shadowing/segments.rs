//! The trajectory cut into segments of equal length, with each segment's tangent
//! propagator: what every least-squares shadowing method is built from.
//!
//! Segment `i` runs from `t_i` to `t_{i+1}`; the solve over it starts from the end of the
//! one before, on dual numbers seeded with the state's directions (its propagator
//! `Phi_i = du_{i+1}/du_i`) and the parameters' (`g_i = du_{i+1}/dp` from zero), so each
//! segment's tangents start afresh and never grow by more than one segment's worth of
//! chaos. The value-only error norm makes the values' steps independent of which directions
//! ride along, so the chunks of directions (eight per solve) follow one trajectory.

use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::problem::Model;
use crate::sensitivity::RunningCost;
use crate::solve::{solve_explicit, Algorithm, ErrorNorm, RetCode, SaveAt, SolveOptions, Stats};

pub(super) const CHUNK: usize = 8;

/// `x` as a dual number seeded in direction `d` when `d` falls in the chunk of directions
/// starting at `first`, else a constant.
pub(super) fn seeded(x: f64, d: usize, first: usize) -> Dual<CHUNK> {
    match d.checked_sub(first).filter(|&k| k < CHUNK) {
        Some(k) => Dual::variable(x, k),
        None => Dual::constant(x),
    }
}

/// One trajectory's segments and their tangents.
pub(super) struct Segments {
    pub(super) n: usize,
    pub(super) np: usize,
    /// Segment length.
    pub(super) dt: f64,
    /// Start time of the first segment.
    pub(super) t0: f64,
    /// The state at every segment boundary (`m + 1` of them).
    pub(super) u: Vec<f64>,
    /// `Phi_i`, row-major, per segment.
    phi: Vec<f64>,
    /// `g_i`, `n x np` row-major, per segment (empty when the parameters' tangents were not
    /// asked for).
    g: Vec<f64>,
    /// `f(u_{i+1})` per segment.
    f_end: Vec<f64>,
    /// The objective at every segment boundary and midpoint (`2 m + 1` values).
    pub(super) j: Vec<f64>,
    /// Its gradient in `u` and in `p` at every boundary (`m + 1` of each).
    pub(super) j_u: Vec<f64>,
    pub(super) j_p: Vec<f64>,
    pub(super) stats: Stats,
}

impl Segments {
    /// Solve from `u0` at `t0` over `m` segments of length `dt` with `alg` (explicit),
    /// tracking `objective`; with the parameters' tangents `g_i` when `with_params`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compute<M: Model, C: RunningCost>(
        model: &M,
        objective: &C,
        u0: &[f64],
        p: &[f64],
        (t0, dt, m): (f64, f64, usize),
        alg: Algorithm,
        opts: &SolveOptions,
        with_params: bool,
    ) -> Result<Self> {
        let (n, np) = (u0.len(), p.len());
        let mut s = Self {
            n,
            np,
            dt,
            t0,
            u: Vec::with_capacity((m + 1) * n),
            phi: vec![0.0; m * n * n],
            g: vec![0.0; if with_params { m * n * np } else { 0 }],
            f_end: vec![0.0; m * n],
            j: vec![0.0; 2 * m + 1],
            j_u: vec![0.0; (m + 1) * n],
            j_p: vec![0.0; (m + 1) * np],
            stats: Stats::default(),
        };
        let opts = SolveOptions { error_norm: ErrorNorm::ValuesOnly, dense: Some(false), ..opts.clone() };
        let mut u = u0.to_vec();
        let mut next = vec![0.0; n];
        let mut mid = vec![0.0; n];
        s.objective_at(objective, 0, &u, p, t0);
        s.u.extend_from_slice(&u);
        for i in 0..m {
            let (a, b) = (t0 + i as f64 * dt, t0 + (i + 1) as f64 * dt);
            let seg_opts = SolveOptions { saveat: SaveAt::Times(vec![0.5 * (a + b), b]), ..opts.clone() };
            // Directions: the state's, then the parameters'.
            let total = if with_params { n + np } else { n };
            for start in (0..total).step_by(CHUNK) {
                let seed = |x: f64, d: usize| seeded(x, d, start);
                let ud: Vec<Dual<CHUNK>> = u.iter().enumerate().map(|(k, &x)| seed(x, k)).collect();
                let pd: Vec<Dual<CHUNK>> = p.iter().enumerate().map(|(k, &x)| seed(x, n + k)).collect();
                let sol = solve_explicit(model, &ud, &pd, (a, b), alg, &seg_opts, None)?;
                if sol.retcode() != RetCode::Success {
                    return Err(DiffsimError::InvalidOption {
                        name: "problem",
                        why: format!(
                            "the solve of the shadowing segment [{a}, {b}] ended with {}",
                            sol.retcode().as_str()
                        ),
                    });
                }
                s.stats += sol.stats();
                let end = sol.u(1);
                for (r, x) in end.iter().enumerate() {
                    for k in 0..CHUNK.min(total - start) {
                        let d = start + k;
                        if d < n {
                            s.phi[i * n * n + r * n + d] = x.d[k];
                        } else {
                            s.g[i * n * np + r * np + (d - n)] = x.d[k];
                        }
                    }
                    next[r] = x.v;
                }
                sol.u(0).iter().zip(mid.iter_mut()).for_each(|(x, y)| *y = x.v);
            }
            model.rhs(&mut s.f_end[i * n..(i + 1) * n], &next, p, b);
            s.j[2 * i + 1] = objective.cost(&mid, p, 0.5 * (a + b));
            s.objective_at(objective, i + 1, &next, p, b);
            s.u.extend_from_slice(&next);
            std::mem::swap(&mut u, &mut next);
        }
        Ok(s)
    }

    /// The objective and its gradient at boundary `k`.
    fn objective_at<C: RunningCost>(&mut self, objective: &C, k: usize, u: &[f64], p: &[f64], t: f64) {
        let (n, np) = (self.n, self.np);
        self.j[2 * k] = objective.cost(u, p, t);
        for start in (0..n + np).step_by(CHUNK) {
            let seed = |x: f64, d: usize| seeded(x, d, start);
            let ud: Vec<Dual<CHUNK>> = u.iter().enumerate().map(|(c, &x)| seed(x, c)).collect();
            let pd: Vec<Dual<CHUNK>> = p.iter().enumerate().map(|(c, &x)| seed(x, n + c)).collect();
            let value = objective.cost(&ud, &pd, Dual::constant(t));
            for c in 0..CHUNK.min(n + np - start) {
                let d = start + c;
                if d < n {
                    self.j_u[k * n + d] = value.d[c];
                } else {
                    self.j_p[k * np + d - n] = value.d[c];
                }
            }
        }
    }

    /// Number of segments.
    pub(super) fn len(&self) -> usize {
        self.f_end.len() / self.n
    }

    /// `Phi_i`, row-major.
    pub(super) fn phi(&self, i: usize) -> &[f64] {
        &self.phi[i * self.n * self.n..(i + 1) * self.n * self.n]
    }

    /// Column `j` of `g_i` (the response to parameter `j`).
    pub(super) fn g_column(&self, i: usize, j: usize, out: &mut [f64]) {
        let (n, np) = (self.n, self.np);
        for (r, o) in out.iter_mut().enumerate() {
            *o = self.g[i * n * np + r * np + j];
        }
    }

    /// `f(u_{i+1})`.
    pub(super) fn f_end(&self, i: usize) -> &[f64] {
        &self.f_end[i * self.n..(i + 1) * self.n]
    }
}
