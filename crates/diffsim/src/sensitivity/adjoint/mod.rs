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
//! At an event's jump the sweep carries `lambda` across by the saltation's transpose
//! ([`Sweep`], [`crate::sensitivity::event_jump`]); each backward segment lies on one side
//! of every jump, and the checkpointed re-solves start again after each jump, so no step
//! integrates across one.
//!
//! The gradient is that of the continuous solution, so it agrees with the discrete adjoint
//! and with finite differences to the solver tolerances, not to rounding.

mod backsolve;
mod checkpointing;
mod interpolating;
mod model;
mod pullback;
mod quadrature;

pub(crate) use backsolve::backsolve_adjoint;
pub(crate) use checkpointing::checkpointed_adjoint;
pub use checkpointing::STEPS_PER_CHECKPOINT;
pub(crate) use interpolating::interpolating_adjoint;
pub(crate) use pullback::Pullback;
pub(crate) use quadrature::quadrature_adjoint;

use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::sensitivity::event_jump::Jumps;
use crate::sensitivity::switches::JumpTerms;
use crate::solve::{solve, Algorithm, DenseOutput, SaveAt, Solution, SolveOptions, Stats, Tolerance};
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

/// What the backward sweep meets on its way, other than saves: where the caller changes
/// the adjoint state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Crossing {
    /// A switch (tstop) at this time that moves with the parameters (see
    /// [`crate::sensitivity::switches`]): the caller adds its term to the gradient.
    Switch(f64),
    /// The solution's jump `j` at an event: the caller carries `lambda` back across it
    /// ([`crate::sensitivity::event_jump::Jumps`]).
    Jump(usize),
}

/// One thing the sweep meets, in the forward order of the solve.
#[derive(Clone, Copy, Debug)]
enum Mark {
    /// Save `i`: its `dL/du` is added to `lambda`.
    Save(usize),
    Cross(Crossing),
}

/// Walks the adjoint back over the save times, adding each save's `dg/du` to `lambda` when
/// the sweep reaches it, and stopping at every event jump and every switch that moves with
/// the parameters to let the caller change the adjoint there. The state `z` holds `lambda`
/// at `offset..offset + n`.
///
/// At an event at `te`, the backward segment ends just past `te` (on the side of the
/// piece after the jump, in the forward direction) so that no stage of the backward solve
/// reads the forward state on the wrong side of the jump; the jump is crossed there and the
/// sweep goes on from `te` itself, whose forward state is the one before the jump.
pub(crate) struct Sweep<'a> {
    n: usize,
    offset: usize,
    /// dL/du at every save (save-major).
    g: &'a [f64],
    /// What the sweep meets, in the forward order, with the time the sweep is at when it
    /// meets it.
    marks: Vec<(Mark, f64)>,
    /// Marks `0..pending` have not been reached yet.
    pending: usize,
    /// Where the sweep is.
    pub(crate) t: f64,
    dir: f64,
    /// The adjoint state.
    pub(crate) z: Vec<f64>,
    /// Work of all the solves.
    pub(crate) stats: Stats,
}

impl<'a> Sweep<'a> {
    /// A sweep from the end of `sol`'s span back over its saves (`g`: their `dL/du`, with
    /// the saves after a jump taken out, see [`crate::sensitivity::event_jump::Jumps`]) and
    /// its events' jumps, with state `z` (zero adjoint, or the final forward state for
    /// backsolve).
    pub(crate) fn new(
        n: usize,
        offset: usize,
        sol: &Solution<f64>,
        g: &'a [f64],
        tspan: (f64, f64),
        z: Vec<f64>,
    ) -> Self {
        let dir = if tspan.1 >= tspan.0 { 1.0 } else { -1.0 };
        let just_past = |t: f64| if dir > 0.0 { t.next_up() } else { t.next_down() };
        let mut marks = Vec::with_capacity(sol.t.len() + sol.jumps.len());
        let mut jumps = sol.jumps.iter().enumerate().peekable();
        // The time of the last jump so far: saves there come after it.
        let mut jumped = f64::NAN;
        for (i, &t) in sol.t.iter().enumerate() {
            while let Some((j, jump)) = jumps.next_if(|(_, jump)| jump.saves_before <= i) {
                marks.push((Mark::Cross(Crossing::Jump(j)), just_past(jump.t)));
                jumped = jump.t;
            }
            marks.push((Mark::Save(i), if t == jumped { just_past(t) } else { t }));
        }
        for (j, jump) in jumps {
            marks.push((Mark::Cross(Crossing::Jump(j)), just_past(jump.t)));
        }
        let pending = marks.len();
        Self { n, offset, g, marks, pending, t: tspan.1, dir, z, stats: Stats::default() }
    }

    /// Also stop at these times (in the forward order): the switches that move with the
    /// parameters, where [`Sweep::back_to`]'s `at_crossing` is called before the saves at the
    /// same time are added.
    pub(crate) fn with_switches(mut self, times: Vec<f64>) -> Self {
        let dir = self.dir;
        for t in times {
            let at = self.marks.partition_point(|&(_, s)| dir * (s - t) <= 0.0);
            self.marks.insert(at, (Mark::Cross(Crossing::Switch(t)), t));
        }
        self.pending = self.marks.len();
        self
    }

    /// Move the sweep back to `t_to`, meeting every save, switch and jump after `t_to`.
    /// `segment(z, a, b)` solves the adjoint from `a` back to `b` in place; `at_crossing(z,
    /// crossing)` changes it at a switch or a jump. Saves exactly at `t_to` are left for the
    /// next interval (or [`Sweep::finish`]).
    pub(crate) fn back_to(
        &mut self,
        t_to: f64,
        mut segment: impl FnMut(&mut [f64], f64, f64, &mut Stats) -> Result<()>,
        mut at_crossing: impl FnMut(&mut [f64], Crossing),
    ) -> Result<()> {
        let dir = self.dir;
        while self.pending > 0 {
            let (mark, at) = self.marks[self.pending - 1];
            if dir * (at - t_to) <= 0.0 {
                break;
            }
            if dir * (self.t - at) > 0.0 {
                segment(&mut self.z, self.t, at, &mut self.stats)?;
                self.t = at;
            }
            self.pending -= 1;
            match mark {
                Mark::Save(i) => self.add_save(i),
                Mark::Cross(crossing) => {
                    at_crossing(&mut self.z, crossing);
                    if let Crossing::Jump(_) = crossing {
                        // From the state before the jump on.
                        self.t = if dir > 0.0 { at.next_down() } else { at.next_up() };
                    }
                }
            }
        }
        if dir * (self.t - t_to) > 0.0 {
            segment(&mut self.z, self.t, t_to, &mut self.stats)?;
            self.t = t_to;
        }
        Ok(())
    }

    /// Add the saves at the start of the span (which come before anything else there).
    pub(crate) fn finish(&mut self) {
        while self.pending > 0 {
            self.pending -= 1;
            match self.marks[self.pending].0 {
                Mark::Save(i) => self.add_save(i),
                Mark::Cross(c) => debug_assert!(false, "{c:?} at the start of the span was not crossed"),
            }
        }
    }

    fn add_save(&mut self, save: usize) {
        let (n, o) = (self.n, self.offset);
        for (zi, gi) in self.z[o..o + n].iter_mut().zip(&self.g[save * n..(save + 1) * n]) {
            *zi += gi;
        }
    }
}

/// What a sweep with the forward state from a dense output does where it crosses a switch
/// that moves with the parameters (adds its term) or an event's jump (carries `lambda`
/// back across it).
pub(crate) struct Crossings<'a, M> {
    model: &'a M,
    p: &'a [f64],
    switches: JumpTerms,
    jumps: Jumps<'a>,
    u: Vec<f64>,
}

impl<'a, M: Model> Crossings<'a, M> {
    /// The moving switches of `problem` and the jumps of its forward solve `sol`, taking the
    /// saves after each jump out of `g` (see [`Jumps::new`]).
    pub(crate) fn new(problem: &'a Problem<M>, sol: &'a Solution<f64>, g: &mut [f64]) -> Result<Self> {
        let switches = JumpTerms::new(&problem.model, &problem.p, problem.tspan)?;
        let jumps = Jumps::new(sol, g);
        Ok(Self { model: &problem.model, p: &problem.p, switches, jumps, u: vec![0.0; sol.n] })
    }

    /// The moving switches' times, for [`Sweep::with_switches`].
    pub(crate) fn switch_times(&self) -> Vec<f64> {
        self.switches.times()
    }

    /// Cross `crossing` with `lambda` the adjoint of the state; a jump's parameter term goes
    /// into `dp`.
    pub(crate) fn cross(&mut self, crossing: Crossing, dense: &DenseOutput<f64>, lambda: &mut [f64], dp: &mut [f64]) {
        match crossing {
            Crossing::Switch(t) => {
                dense.evaluate(t, &mut self.u);
                self.switches.add(self.model, self.p, t, &self.u, lambda);
            }
            Crossing::Jump(j) => self.jumps.back_across(j, self.model, self.p, lambda, dp),
        }
    }

    /// Add the switches' terms to the gradient's `dp`.
    pub(crate) fn add_switch_terms(&self, dp: &mut [f64]) {
        self.switches.add_to(dp);
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
    // A segment is one piece between events (the adjoint's own model has none).
    let watch = crate::solve::Watch::callback(None).between_events();
    let sol = crate::solve::solve_watched(model, z, p, span, alg, &seg_opts, watch)?;
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
