//! Discrete adjoint of the explicit Runge-Kutta solvers: reverse mode through the solver's
//! own accepted steps.
//!
//! The forward solve records every accepted step (start state, time, size) and keeps its
//! stage derivatives `k_i` (the dense output); the reverse sweep rebuilds each step's stage
//! inputs from them and pulls the adjoint back through
//!
//! ```text
//! Y_i = u + h sum_{j<i} a_ij k_j,   k_i = f(Y_i, p, t + c_i h),
//! u_new = u + h sum_i b_i k_i,      u(t + theta h) = u + h sum_i b_i(theta) k_i,
//! ```
//!
//! stage by stage, last first: `kbar_i` gathers `h b_i lambda` and the saved points'
//! `h b_i(theta) g`; each stage's VJP `(df/dY)^T kbar_i` feeds the start state and the
//! earlier stages through `a_ij`, and `(df/dp)^T kbar_i` accumulates into dL/dp.
//!
//! The step sizes are held fixed (the controller is not differentiated), so this is the exact
//! gradient of the discrete map the forward solve applied, to rounding (the stage inputs
//! are rebuilt in the stepper's own order of operations, so they are bit for bit the ones
//! the forward solve evaluated). Memory: per accepted step, one state and the stage
//! derivatives (the dense output: `c.len()` states); the reverse sweep evaluates no right-hand
//! side, only one VJP per stage.
//!
//! Checkpointed (`SensAlg::DiscreteCheckpointing`): the forward solve keeps only every
//! [`STEPS_PER_CHECKPOINT`]-th start state and every step's time and size; before crossing a
//! segment the sweep re-runs its steps from the checkpoint with the recorded sizes (one more
//! right-hand side per stage, no error control), so memory is one state per checkpoint plus
//! one segment's stages, and the gradient is the same.

use crate::ad::{Dual, Vjp, VjpMethod};
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::solve::explicit_rk::stage_combination;
use crate::solve::tableau::{self, ExplicitTableau};
use crate::solve::{solve_explicit_logged, solve_explicit_logged_unsized};
use crate::solve::{Algorithm, ErrorNorm, SaveAt, Solution, SolveOptions, Stats, StepLog, StepRecord};

use super::event_jump::{EventJumps, Jumps};
use super::records::{RecordStore, Recorder};
use super::switches::JumpTerms;
#[cfg(doc)]
use super::STEPS_PER_CHECKPOINT;
use super::{Gradient, SavedLoss};

/// The tableau of an explicit algorithm.
fn explicit_tableau(alg: Algorithm) -> Option<&'static ExplicitTableau> {
    match alg {
        Algorithm::Tsit5 => Some(&tableau::tsit5::TSIT5),
        Algorithm::Dp5 => Some(&tableau::dp5::DP5),
        Algorithm::Vern7 => Some(&tableau::vern7::VERN7),
        Algorithm::Bs3 => Some(&tableau::bs3::BS3),
        _ => None,
    }
}

/// Where a saved point came from within a step.
#[derive(Clone, Copy, Debug)]
pub(super) enum SavedAt {
    /// The step's end state itself.
    End,
    /// The dense output at `theta` of the step.
    Theta(f64),
}

/// dL/dp and dL/du0 by the discrete adjoint. With `checkpoint_every = Some(k)` the forward
/// solve keeps the state of every `k`-th step only (and no dense output); the sweep re-runs
/// each segment of `k` steps from its checkpoint, with the recorded step sizes, before it
/// pulls the adjoint back through it.
pub(crate) fn discrete_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
    checkpoint_every: Option<usize>,
) -> Result<Gradient> {
    let tab = explicit_tableau(alg).ok_or_else(|| DiffsimError::Unsupported {
        alg: alg.name(),
        why: "the discrete adjoint goes through explicit Runge-Kutta (tsit5, dp5, vern7, bs3) or \
              Rodas (rodas4, rodas5p) steps"
            .into(),
    })?;
    let model = &problem.model;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let mut fwd_opts = opts.clone();
    fwd_opts.dense = Some(checkpoint_every.is_none());
    let vjp = Vjp::new(model, vjp)?;
    // The model's own VJP can start from records of the forward solve's evaluations.
    let recorder = Recorder::new(model, checkpoint_every.is_none() && vjp.method() == VjpMethod::Model);
    let every = checkpoint_every.unwrap_or(1);
    let (u0, p, tspan) = (&problem.u0[..], &problem.p[..], problem.tspan);
    let (mut sol, mut log, recorder) = solve_explicit_logged(model, u0, p, tspan, alg, &fwd_opts, every, recorder)?;
    let mut records = recorder.into_store();
    if opts.adaptive && sol.retcode.is_success() && values_left_steps_unchecked(&log) {
        if let Some(r) = records.take() {
            r.recycle();
        }
        let first = sol.stats;
        (sol, log) = tangent_controlled_solve(problem, alg, &fwd_opts, every)?;
        sol.stats += first;
    }
    let (value, mut g) = super::saved_loss_gradient(&sol, loss)?;
    // The saves just after a jump are met where the sweep crosses it.
    let event_jumps = Jumps::new(&sol, &mut g);
    let steps = &log.records;
    let (at_start, per_step) = attribute_saves(&sol.t, steps, problem.tspan);

    let total_stages = tab.c.len();
    let mut sweep = ExplicitSweep {
        tab,
        n,
        vjp,
        records,
        y: vec![0.0; n],
        kbar: vec![0.0; total_stages * n],
        ybar: vec![0.0; n],
        lambda: vec![0.0; n],
        ubar: vec![0.0; n],
        dp: vec![0.0; np],
        pending: Vec::new(),
    };
    let p = &problem.p;
    let mut jumps = JumpTerms::new(model, p, problem.tspan)?;
    // The events' jumps, taken backwards: each after the step it follows.
    let mut events = EventJumps::new(event_jumps, &log.jump_steps);
    let mut stats: Stats = sol.stats;
    match checkpoint_every {
        None => {
            // The forward solve kept every accepted step's stage derivatives k_i (its dense
            // output), so the sweep rebuilds the stage inputs Y_i from them instead of
            // calling f again.
            let dense = sol.dense.as_ref().expect("dense output was requested");
            // Each jump is a step of length zero in the dense output, after the step it
            // follows.
            debug_assert_eq!(dense.steps(), steps.len() + log.jump_steps.len());

            macro_rules! sweep_all {
                ($size:literal) => {
                    for (idx, rec) in steps.iter().enumerate().rev() {
                        let u = &log.u_start[idx * n..(idx + 1) * n];
                        events.back_across(idx + 1, model, p, &mut sweep.lambda, &mut sweep.dp);
                        // The jumps not yet crossed all came before this step.
                        let k = &dense.step_data(idx + events.pending())[..total_stages * n];
                        sweep.step::<M, $size>(model, p, u, k, rec, &per_step[idx], &g);
                        if rec.after_discontinuity() {
                            jumps.add(model, p, rec.t, u, &sweep.lambda);
                        }
                    }
                };
            }
            crate::solve::by_size!(M, n, sweep_all)
        }
        Some(every) => {
            let every = every.max(1);
            let mut seg_u = vec![0.0; every * n];
            let mut seg_k = vec![0.0; every * total_stages * n];
            for first in (0..steps.len()).step_by(every).rev() {
                let last = (first + every).min(steps.len());
                seg_u[..n].copy_from_slice(&log.u_start[first / every * n..(first / every + 1) * n]);
                // Re-run the segment's steps: stages (the extra dense-output ones only
                // where a save falls inside the step), then the next start state.
                for idx in first..last {
                    let j = idx - first;
                    let rec = &steps[idx];
                    let stages = if has_interior_save(&per_step[idx]) { total_stages } else { tab.stages };
                    let (u_seg, rest) = seg_u.split_at_mut((j + 1) * n);
                    let u = &u_seg[j * n..];
                    let k = &mut seg_k[j * total_stages * n..(j + 1) * total_stages * n];
                    for i in 0..stages {
                        stage_input(&mut sweep.y, u, k, rec.h, tab.a[i]);
                        model.rhs(&mut k[i * n..(i + 1) * n], &sweep.y, p, rec.stage_time(tab.c[i]));
                    }
                    stats.nf += stages;
                    if idx + 1 < last {
                        stage_input(&mut rest[..n], u, k, rec.h, tab.b);
                        events.replay(idx + 1, model, p, &mut rest[..n]);
                    }
                }
                for idx in (first..last).rev() {
                    let j = idx - first;
                    let u = &seg_u[j * n..(j + 1) * n];
                    let k = &seg_k[j * total_stages * n..(j + 1) * total_stages * n];
                    events.back_across(idx + 1, model, p, &mut sweep.lambda, &mut sweep.dp);
                    sweep.step::<M, 0>(model, p, u, k, &steps[idx], &per_step[idx], &g);
                    if steps[idx].after_discontinuity() {
                        jumps.add(model, p, steps[idx].t, u, &sweep.lambda);
                    }
                }
            }
        }
    }
    if let Some(records) = sweep.records {
        records.recycle();
    }
    // Scheduled events at the start fired after the saves there (the state before them).
    events.back_across(0, model, p, &mut sweep.lambda, &mut sweep.dp);
    let mut lambda = sweep.lambda;
    for &s in &at_start {
        add(&mut lambda, &g[s * n..(s + 1) * n], 1.0);
    }
    stats.nf += sweep.vjp.evals;
    jumps.add_to(&mut sweep.dp);
    Ok(Gradient::computed(value, sweep.dp, lambda, stats))
}

/// A step whose error estimate is below this (squared, in units of the tolerance) was not
/// sized by accuracy: the values barely moved (a rest point, a polynomial stretch), and the
/// controller grew the step as far as it could.
const UNCHECKED_STEP_ERROR_SQ: f64 = 1e-10;

/// Whether the value-only error control let some step grow without checking anything.
///
/// The discrete adjoint is the exact gradient of the steps taken, so it is only as good as
/// those steps are for the *sensitivities*. Value-only control sizes them for the values;
/// where the values are at rest (a model started at an equilibrium of every piece, whose
/// parameters still move it), the estimate is zero and steps grow to the next stop while the
/// sensitivities oscillate. Those steps show as errors far below the tolerance.
///
/// The first steps are left out: a high-order method's first step is often far below the
/// tolerance by design (the initial-step rule is conservative, and the controller grows the
/// step by at most a factor of ten per step).
pub(super) fn values_left_steps_unchecked(log: &StepLog<f64>) -> bool {
    log.error_sq.iter().skip(STARTING_STEPS).any(|&e| e < UNCHECKED_STEP_ERROR_SQ)
}

/// Accepted steps at the start of a solve that [`values_left_steps_unchecked`] ignores.
const STARTING_STEPS: usize = 2;

/// The forward solve again, on dual numbers carrying one tangent `(du0, dp)` under the same
/// error control as the values ([`crate::ErrorNorm::AllParts`]), so the steps also resolve
/// the sensitivities along that direction: a fixed direction with every component nonzero
/// and of mixed signs, so generically every sensitivity mode takes part. Returned as values
/// (the sweep needs only the steps and the stage derivatives, which are the same numbers an
/// `f64` solve with these steps computes).
fn tangent_controlled_solve<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    every: usize,
) -> Result<(Solution<f64>, StepLog<f64>)> {
    // Magnitudes in [1, 2) by the golden ratio's fractional parts, alternating signs.
    let direction = |i: usize| {
        let m = 1.0 + (i as f64 * 0.618_033_988_749_895).fract();
        if i % 2 == 0 {
            m
        } else {
            -m
        }
    };
    let np = problem.p.len();
    let seed = |x: f64, i: usize| Dual::<1> { v: x, d: [direction(i)] };
    let p: Vec<Dual<1>> = problem.p.iter().enumerate().map(|(i, &x)| seed(x, i)).collect();
    let u0: Vec<Dual<1>> = problem.u0.iter().enumerate().map(|(i, &x)| seed(x, np + i)).collect();
    let opts = opts.clone().error_norm(ErrorNorm::AllParts);
    // A fallback (see its caller): the stepper for any size is enough.
    let (sol, log) = solve_explicit_logged_unsized(&problem.model, &u0, &p, problem.tspan, alg, &opts, every)?;
    Ok((sol.values(), log.into_values()))
}

/// Whether a save falls strictly inside the step (its dense output is used).
fn has_interior_save(saves: &[(usize, SavedAt)]) -> bool {
    saves.iter().any(|(_, kind)| matches!(kind, SavedAt::Theta(_)))
}

/// The reverse sweep's state and buffers for an explicit method.
struct ExplicitSweep {
    tab: &'static ExplicitTableau,
    n: usize,
    vjp: Vjp,
    /// Records of the forward solve's evaluations, when the model keeps them.
    records: Option<RecordStore>,
    y: Vec<f64>,
    /// Stage adjoints, stage-major.
    kbar: Vec<f64>,
    ybar: Vec<f64>,
    /// The adjoint of the state at the end of the step about to be crossed.
    lambda: Vec<f64>,
    ubar: Vec<f64>,
    dp: Vec<f64>,
    /// Parameter gradients the model left pending during a step (flushed at its end).
    pending: Vec<f64>,
}

impl ExplicitSweep {
    /// Pull `lambda` back across one accepted step from `u` with stage derivatives `k`,
    /// adding the loss gradients `g` of the step's saved points.
    /// `N` is the number of states when it is a small constant (0: `self.n` at run time),
    /// so that the many two- or three-element loops of a small system compile to
    /// straight-line code.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn step<M: Model, const N: usize>(
        &mut self,
        model: &M,
        p: &[f64],
        u: &[f64],
        k: &[f64],
        rec: &StepRecord,
        saves: &[(usize, SavedAt)],
        g: &[f64],
    ) {
        let (tab, h) = (self.tab, rec.h);
        let n = if N == 0 { self.n } else { N };
        let u = &u[..n];
        for &(s, kind) in saves {
            if let SavedAt::End = kind {
                add(&mut self.lambda[..n], &g[s * n..(s + 1) * n], 1.0);
            }
        }
        let stages = if has_interior_save(saves) { tab.c.len() } else { tab.stages };
        // Seed the stage adjoints.
        self.kbar[..stages * n].fill(0.0);
        self.ubar[..n].copy_from_slice(&self.lambda[..n]);
        for (i, &b) in tab.b.iter().enumerate() {
            if b != 0.0 {
                add(&mut self.kbar[i * n..(i + 1) * n], &self.lambda[..n], h * b);
            }
        }
        for &(s, kind) in saves {
            if let SavedAt::Theta(theta) = kind {
                let gs = &g[s * n..(s + 1) * n];
                add(&mut self.ubar[..n], gs, 1.0);
                for (i, poly) in tab.interp.iter().enumerate() {
                    let bi = poly.iter().rev().fold(0.0, |acc, &c| acc * theta + c) * theta * h;
                    if bi != 0.0 {
                        add(&mut self.kbar[i * n..(i + 1) * n], gs, bi);
                    }
                }
            }
        }
        // Pull back through the stages, last first.
        for i in (0..stages).rev() {
            let (before, this) = self.kbar.split_at_mut(i * n);
            let w = &this[..n];
            if w.iter().all(|&x| x == 0.0) {
                continue;
            }
            stage_input(&mut self.y[..n], u, k, h, tab.a[i]);
            self.ybar[..n].fill(0.0);
            let t = rec.stage_time(tab.c[i]);
            let (y, ybar) = (&self.y[..n], &mut self.ybar[..n]);
            let record = self.records.as_mut().and_then(|r| r.get(t, y));
            let from_record = record.is_some_and(|record| {
                self.vjp.apply_from_record(model, w, y, p, t, record, ybar, &mut self.dp, &mut self.pending)
            });
            if !from_record {
                self.vjp.apply(model, w, y, p, t, ybar, &mut self.dp);
            }
            add(&mut self.ubar[..n], &self.ybar[..n], 1.0);
            for (j, &a) in tab.a[i].iter().enumerate() {
                if a != 0.0 {
                    add(&mut before[j * n..(j + 1) * n], &self.ybar[..n], h * a);
                }
            }
        }
        // The stages' parameter gradients, in one pass (see `RecordedVjp::vjp_from_record`).
        match model.derivatives().record_vjp() {
            Some(own) => own.flush_pending(p, &mut self.pending, &mut self.dp),
            None => self.pending.clear(),
        }
        std::mem::swap(&mut self.lambda, &mut self.ubar);
    }
}

/// Each saved point's step, as the driver attributed it: the indices saved at `t0` (before
/// any step), and per accepted step its saved indices and where in the step they lie.
pub(super) type SaveAttribution = (Vec<usize>, Vec<Vec<(usize, SavedAt)>>);

/// Attribute the saved times `ts` to the accepted steps `records` of a solve over `tspan`.
pub(super) fn attribute_saves(ts: &[f64], records: &[StepRecord], tspan: (f64, f64)) -> SaveAttribution {
    let t0 = tspan.0;
    let dir = (tspan.1 - t0).signum();
    let mut per_step: Vec<Vec<(usize, SavedAt)>> = vec![Vec::new(); records.len()];
    let mut at_start = Vec::new();
    let mut si = 0;
    while si < ts.len() && ts[si] == t0 {
        at_start.push(si);
        si += 1;
    }
    for (k, rec) in records.iter().enumerate() {
        while si < ts.len() && (ts[si] - rec.end) * dir <= 0.0 {
            let t = ts[si];
            let kind = if t == rec.end { SavedAt::End } else { SavedAt::Theta((t - rec.t) / (rec.end - rec.t)) };
            per_step[k].push((si, kind));
            si += 1;
        }
    }
    (at_start, per_step)
}

/// `y = u + h sum_j a_j k_j`, computed as the forward step computed it (bit for bit).
#[inline(always)]
fn stage_input(y: &mut [f64], u: &[f64], k: &[f64], h: f64, a: &[f64]) {
    stage_combination(k, y, Some(u), h, a, u.len());
}

/// `acc += c * x`.
#[inline(always)]
pub(super) fn add(acc: &mut [f64], x: &[f64], c: f64) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += c * v;
    }
}

/// The discrete adjoint saves nothing every step by itself; a loss needs save times.
pub(crate) fn check_saveat(opts: &SolveOptions) -> Result<()> {
    if matches!(opts.saveat, SaveAt::EveryStep) {
        return Err(DiffsimError::InvalidOption {
            name: "saveat",
            why: "a loss needs fixed save times (the steps depend on the parameters); pass saveat times or save_end()"
                .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{AnalyticVjp, Derivatives, RecordedVjp};
    use crate::scalar::Scalar;
    use crate::sensitivity::Loss;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// `u' = -p0 u + p1 sin(t) u^2`, whose record is its own `(t, u)`: every VJP from a
    /// record checks it got the record of its own point.
    #[derive(Default)]
    struct Recorded {
        from_record: AtomicUsize,
        plain: AtomicUsize,
    }

    impl Model for Recorded {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            2
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
            du[0] = -p[0] * u[0] + p[1] * t.sin() * u[0] * u[0];
        }
        fn derivatives(&self) -> Derivatives<'_> {
            Derivatives::none().recorded_vjp(self)
        }
    }

    impl Recorded {
        fn products(w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
            du[0] += w[0] * (-p[0] + 2.0 * p[1] * t.sin() * u[0]);
            dp[0] += -w[0] * u[0];
            dp[1] += w[0] * t.sin() * u[0] * u[0];
        }
    }

    impl AnalyticVjp for Recorded {
        type Workspace = ();
        fn workspace(&self) {}
        fn vjp(&self, _: &mut (), w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
            self.plain.fetch_add(1, Relaxed);
            Self::products(w, u, p, t, du, dp);
        }
    }

    impl RecordedVjp for Recorded {
        fn record_len(&self) -> usize {
            2
        }
        fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]) {
            record.copy_from_slice(&[t, u[0]]);
            self.rhs(du, u, p, t);
        }
        fn vjp_from_record(
            &self,
            _: &mut (),
            w: &[f64],
            u: &[f64],
            p: &[f64],
            t: f64,
            record: &[f64],
            du: &mut [f64],
            dp: &mut [f64],
            _pending: &mut Vec<f64>,
        ) {
            assert_eq!(record, &[t, u[0]]);
            self.from_record.fetch_add(1, Relaxed);
            Self::products(w, u, p, t, du, dp);
        }
    }

    #[test]
    fn every_stage_vjp_starts_from_its_record() {
        for alg in [Algorithm::Tsit5, Algorithm::Vern7, Algorithm::Bs3, Algorithm::Dp5] {
            let problem = Problem::new(Recorded::default(), vec![0.8], vec![0.7, 0.4], (0.0, 3.0)).unwrap();
            let opts = SolveOptions { saveat: SaveAt::Times(vec![0.4, 1.0, 1.3, 3.0]), ..Default::default() };
            let with = discrete_adjoint(&problem, alg, &opts, &Loss::Sum, VjpMethod::Model, None).unwrap();
            let (hits, plain) = (problem.model.from_record.load(Relaxed), problem.model.plain.load(Relaxed));
            assert!(hits > 20, "{alg:?}: {hits} VJPs from records");
            assert_eq!(plain, 0, "{alg:?}: {plain} VJPs without a record");
            // The same gradient by forward-mode VJPs (no records).
            let without = discrete_adjoint(&problem, alg, &opts, &Loss::Sum, VjpMethod::Forward, None).unwrap();
            assert_eq!(with.loss.to_bits(), without.loss.to_bits());
            for (a, b) in with.dp.iter().chain(&with.du0).zip(without.dp.iter().chain(&without.du0)) {
                assert!((a - b).abs() <= 1e-13 * b.abs().max(1.0), "{alg:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn fsal_tableaus_propagate_with_their_last_row() {
        // The replay uses b for u_new while the stepper copies the last stage's input:
        // the same numbers only if a[last] == b for FSAL methods.
        for alg in [Algorithm::Tsit5, Algorithm::Dp5, Algorithm::Bs3, Algorithm::Vern7] {
            let tab = explicit_tableau(alg).unwrap();
            if tab.fsal {
                assert_eq!(tab.a[tab.stages - 1], &tab.b[..tab.stages - 1], "{}", tab.name);
            }
        }
    }
}
