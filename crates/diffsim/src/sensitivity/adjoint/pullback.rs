//! The interpolating adjoint of one short solve, for methods that need many of them
//! (adjoint least-squares shadowing pulls a vector back through every segment of a
//! trajectory).

use super::model::{lock, AdjointModel, Buffers};
use super::{backward_alg, backward_options, solve_segment};
use crate::ad::VjpMethod;
use crate::error::Result;
use crate::problem::Model;
use crate::solve::{Algorithm, SolveOptions, Stats};
use std::cell::Cell;
use std::sync::Mutex;

/// Pulls vectors back through solves of `model` over short spans: for the solve from `u_a`
/// over `(a, b)`, `lambda^T du(b)/dp` by one forward solve with dense output and one
/// backward solve of the adjoint system.
pub(crate) struct Pullback<'a, M> {
    model: &'a M,
    p: &'a [f64],
    alg: Algorithm,
    opts: SolveOptions,
    back_opts: SolveOptions,
    buffers: Mutex<Buffers>,
    /// Step sizes carried from one span to the next (forward, backward).
    hints: (Cell<f64>, Cell<f64>),
}

impl<'a, M: Model> Pullback<'a, M> {
    pub(crate) fn new(model: &'a M, p: &'a [f64], alg: Algorithm, opts: &SolveOptions) -> Result<Self> {
        let (n, np) = (model.n_states(), p.len());
        Ok(Self {
            model,
            p,
            alg,
            opts: SolveOptions { dense: Some(true), ..opts.clone() },
            back_opts: backward_options(opts, 0, n + np),
            buffers: Buffers::new(model, VjpMethod::Auto)?,
            hints: (Cell::new(0.0), Cell::new(0.0)),
        })
    }

    /// `dp += lambda^T du(b)/dp` for the solve from `u_a` over `(a, b)`.
    pub(crate) fn add(
        &self,
        u_a: &[f64],
        (a, b): (f64, f64),
        lambda: &[f64],
        dp: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        let n = u_a.len();
        let mut u = u_a.to_vec();
        let fwd = solve_segment(self.model, &mut u, self.p, (a, b), self.alg, &self.opts, true, &self.hints.0, stats)?;
        let dense = fwd.dense.as_ref().expect("dense output was requested");
        let adjoint =
            AdjointModel { model: self.model, p: self.p, dense, buffers: &self.buffers, with_mu: true, tstops: &[] };
        let mut z = vec![0.0; n + self.p.len()];
        z[..n].copy_from_slice(lambda);
        let back_alg = backward_alg(self.alg, fwd.alg);
        solve_segment(&adjoint, &mut z, &[], (b, a), back_alg, &self.back_opts, false, &self.hints.1, stats)?;
        stats.nf += std::mem::take(&mut lock(&self.buffers).vjp.evals);
        dp.iter_mut().zip(&z[n..]).for_each(|(d, x)| *d += x);
        Ok(())
    }
}
