//! Continuous adjoints: the adjoint system
//!
//! ```text
//! lambda' = -(df/du)^T lambda,     mu' = -(df/dp)^T lambda
//! ```
//!
//! solved backwards from `lambda(t1) = 0, mu(t1) = 0` to `t0`, with `lambda += dg/du(t_i)`
//! at each save time `t_i`; then `dL/du0 = lambda(t0)` and `dL/dp = mu(t0)`. The variants
//! differ in where `u(t)` comes from and how `mu` is integrated:
//!
//! - [`interpolating`](interpolating::interpolating_adjoint): the forward solve's dense
//!   output, kept whole;
//! - [`checkpointing`](checkpointing::checkpointed_adjoint): states stored every
//!   [`STEPS_PER_CHECKPOINT`] forward steps; each interval between checkpoints is re-solved
//!   forwards (with dense output) just before the adjoint crosses it;
//! - [`quadrature`](quadrature::quadrature_adjoint): as interpolating, but `mu` is not
//!   an ODE state: `lambda` alone is solved (with dense output) and `mu` is the integral of
//!   `f_p^T lambda`, by Gauss-Legendre quadrature on every adjoint step;
//! - [`backsolve`](backsolve::backsolve_adjoint): `u` solved backwards together with the
//!   adjoint from `u(t1)`. Nothing stored, but unstable: backwards in time a dissipative
//!   system is anti-dissipative, and errors in `u` grow like the decay rates forwards.
//!
//! The adjoint is solved by the family of the forward method: a stiff forward method gets a
//! stiff (Rodas5P) adjoint solve whose Jacobian comes from forward-mode AD of the model.
//! Model discontinuities in time (`Model::tstops`) are steps' end points in both directions.
//!
//! The gradient is that of the continuous solution, so it agrees with the discrete adjoint
//! and with finite differences to the solver tolerances, not to rounding.

mod backsolve;
mod checkpointing;
mod interpolating;
mod model;
mod quadrature;

pub(crate) use backsolve::backsolve_adjoint;
pub(crate) use checkpointing::checkpointed_adjoint;
pub use checkpointing::STEPS_PER_CHECKPOINT;
pub(crate) use interpolating::interpolating_adjoint;
pub(crate) use quadrature::quadrature_adjoint;

use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::solve::{solve, Algorithm, SaveAt, Solution, SolveOptions, Stats, Tolerance};
use std::cell::Cell;

use super::{require_success, SavedLoss};

/// Continuous adjoints need `M = I`.
fn reject_mass_matrix<M: Model>(model: &M, name: &'static str) -> Result<()> {
    if model.mass_matrix().is_some() {
        return Err(DiffsimError::Unsupported {
            alg: name,
            why: "models with a mass matrix (DAEs) are not supported by the continuous adjoints yet; use forward-ad \
                  or forward"
                .into(),
        });
    }
    Ok(())
}

/// Options for a backward solve of `m` states whose first `n_u` are the model's own states
/// (backsolve solves `u` backwards; the other adjoints have `n_u = 0`), followed by the
/// adjoint `lambda` and the parameter part `mu = dL/dp`.
///
/// Every state is under error control, `mu` included: `mu` feeds nothing back, but it *is*
/// the gradient, and `f_p^T lambda` can change where `lambda` does not (a rate that switches
/// inside a step), so steps sized for `lambda` alone do not bound its error. A per-component `atol` is the user's for
/// the model's states and its smallest value for the adjoint's (whose scale the user's
/// per-state values do not describe); the same for `rtol`.
fn backward_options(opts: &SolveOptions, n_u: usize, m: usize) -> SolveOptions {
    let widen = |tol: &Tolerance| match tol {
        Tolerance::Scalar(x) => Tolerance::Scalar(*x),
        Tolerance::PerComponent(v) => {
            let own = v.iter().copied().take(n_u);
            Tolerance::PerComponent(own.chain(std::iter::repeat(tol.smallest())).take(m).collect())
        }
    };
    SolveOptions { rtol: widen(&opts.rtol), atol: widen(&opts.atol), ..opts.clone() }
}

/// The adjoint's method: the forward method's family (explicit stays explicit, stiff stays
/// stiff).
fn backward_alg(forward: Algorithm, solved_with: Algorithm) -> Algorithm {
    if solved_with.is_stiff() || forward.is_stiff() {
        Algorithm::Rodas5P
    } else if forward == Algorithm::Auto {
        Algorithm::Tsit5
    } else {
        forward
    }
}

/// Walks the adjoint back over the save times, adding each save's `dg/du` to `lambda` when
/// the sweep reaches it, and stopping at every switch that moves with the parameters (see
/// [`crate::sensitivity::switches`]) to hand `lambda` there to the caller. The state `z`
/// holds `lambda` at `offset..offset + n`.
pub(crate) struct Sweep<'a> {
    n: usize,
    offset: usize,
    save_times: &'a [f64],
    /// dL/du at every save (save-major).
    g: &'a [f64],
    /// Saves `0..pending` have not been reached yet.
    pending: usize,
    /// Moving switches in the forward order; `0..pending_switches` not reached yet.
    switches: Vec<f64>,
    pending_switches: usize,
    /// Where the sweep is.
    pub(crate) t: f64,
    dir: f64,
    /// The adjoint state.
    pub(crate) z: Vec<f64>,
    /// Work of all the solves.
    pub(crate) stats: Stats,
}

impl<'a> Sweep<'a> {
    /// A sweep from `t1` over `save_times` (in the forward order) of a forward solve on
    /// `tspan`, with state `z` (zero adjoint, or the final forward state for backsolve).
    pub(crate) fn new(
        n: usize,
        offset: usize,
        save_times: &'a [f64],
        g: &'a [f64],
        tspan: (f64, f64),
        z: Vec<f64>,
    ) -> Self {
        let dir = if tspan.1 >= tspan.0 { 1.0 } else { -1.0 };
        Self {
            n,
            offset,
            save_times,
            g,
            pending: save_times.len(),
            switches: Vec::new(),
            pending_switches: 0,
            t: tspan.1,
            dir,
            z,
            stats: Stats::default(),
        }
    }

    /// Also stop at these times (in the forward order): the switches that move with the
    /// parameters, where [`Sweep::back_to`]'s `at_switch` is called.
    pub(crate) fn with_switches(mut self, times: Vec<f64>) -> Self {
        self.pending_switches = times.len();
        self.switches = times;
        self
    }

    /// Move the sweep back to `t_to`, crossing every save and switch after `t_to`.
    /// `segment(z, a, b)` solves the adjoint from `a` back to `b` in place;
    /// `at_switch(z, t)` is called at each switch before the saves at the same time are
    /// added. Saves and switches exactly at `t_to` are left for the next interval (or
    /// [`Sweep::finish`]).
    pub(crate) fn back_to(
        &mut self,
        t_to: f64,
        mut segment: impl FnMut(&mut [f64], f64, f64, &mut Stats) -> Result<()>,
        mut at_switch: impl FnMut(&[f64], f64),
    ) -> Result<()> {
        let dir = self.dir;
        let after = move |t: f64| dir * (t - t_to) > 0.0;
        loop {
            let save = (self.pending > 0).then(|| self.save_times[self.pending - 1]).filter(|&t| after(t));
            let switch =
                (self.pending_switches > 0).then(|| self.switches[self.pending_switches - 1]).filter(|&t| after(t));
            // The next event backwards: the later one in the forward direction, a switch
            // before a save at the same time.
            let (ts, is_switch) = match (save, switch) {
                (None, None) => break,
                (Some(s), None) => (s, false),
                (None, Some(w)) => (w, true),
                (Some(s), Some(w)) => {
                    if self.dir * (w - s) >= 0.0 {
                        (w, true)
                    } else {
                        (s, false)
                    }
                }
            };
            if ts != self.t {
                segment(&mut self.z, self.t, ts, &mut self.stats)?;
                self.t = ts;
            }
            if is_switch {
                at_switch(&self.z, ts);
                self.pending_switches -= 1;
            } else {
                self.jump(self.pending - 1);
                self.pending -= 1;
            }
        }
        if t_to != self.t {
            segment(&mut self.z, self.t, t_to, &mut self.stats)?;
            self.t = t_to;
        }
        Ok(())
    }

    /// Apply the jumps of the saves at the start of the span.
    pub(crate) fn finish(&mut self) {
        while self.pending > 0 {
            self.jump(self.pending - 1);
            self.pending -= 1;
        }
    }

    fn jump(&mut self, save: usize) {
        let (n, o) = (self.n, self.offset);
        for (zi, gi) in self.z[o..o + n].iter_mut().zip(&self.g[save * n..(save + 1) * n]) {
            *zi += gi;
        }
    }
}

/// Solve `model` with parameters `p` from `span.0` to `span.1` starting at `z`; returns the solution (saved at
/// `span.1` only, with dense output when `dense`) and writes the end state into `z`.
///
/// `step_hint` carries the controller's last proposal (before it was cut to land on the
/// segment's end) from one segment to the next (0: none yet). The adjoint sweep restarts at
/// every data time; a fresh initial-step estimate each time, growing again from there, took
/// about twice the steps the adjoint needs (spiral, 30 data points: 58 backward steps
/// instead of 30).
#[allow(clippy::too_many_arguments)]
fn solve_segment<M: Model>(
    model: &M,
    z: &mut [f64],
    p: &[f64],
    span: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    dense: bool,
    step_hint: &Cell<f64>,
    stats: &mut Stats,
) -> Result<Solution<f64>> {
    let dt = if step_hint.get() > 0.0 { Some(step_hint.get()) } else { opts.dt };
    let seg_opts = SolveOptions { saveat: SaveAt::Times(vec![span.1]), dense: Some(dense), dt, ..opts.clone() };
    let sol = crate::solve::solve_unsized(model, z, p, span, alg, &seg_opts, None)?;
    if sol.next_step > 0.0 {
        step_hint.set(sol.next_step);
    }
    require_success(&sol)?;
    *stats += sol.stats;
    z.copy_from_slice(sol.u(0));
    Ok(sol)
}

/// The forward solve with its loss and `dL/du` at every save.
fn forward_loss<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    dense: bool,
) -> Result<(Solution<f64>, f64, Vec<f64>)> {
    let fwd_opts = SolveOptions { dense: Some(dense), ..opts.clone() };
    let sol = solve(problem, alg, &fwd_opts)?;
    let (value, g) = super::saved_loss_gradient(&sol, loss)?;
    Ok((sol, value, g))
}
