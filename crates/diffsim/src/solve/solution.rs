//! The result of a solve: saved times and states, dense output, statistics, return code.

use super::dense::DenseOutput;
use super::Algorithm;
use crate::error::{DiffsimError, Result};
use crate::event::EventRecord;
use crate::scalar::Scalar;

/// How a solve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetCode {
    /// Reached the end of the span.
    Success,
    /// Ran out of step attempts (`max_steps`); the solution holds what was computed.
    MaxIters,
    /// The step size fell below `dt_min` (or machine precision): likely a singularity or
    /// an extremely stiff problem for this method.
    DtLessThanMin,
    /// The state became NaN or infinite.
    Unstable,
    /// The right-hand side is not finite at the initial point.
    InitialFailure,
    /// The per-step callback asked the solve to stop.
    Terminated,
    /// An event whose action is to terminate fired; the solution ends at its time.
    EventTerminated,
    /// An event was about to fire again at the time it had just fired: its firings
    /// accumulate there (Zeno behaviour: a bouncing ball coming to rest bounces infinitely
    /// often before a finite time), or its affect leaves its condition crossing at once.
    /// The model has no continuation past that time; the solution ends there, before the
    /// repeated firing. Add a terminating event before it (say, when the bounce speed
    /// falls below a threshold) or change the affect.
    Zeno,
}

impl RetCode {
    /// True for [`RetCode::Success`].
    pub fn is_success(self) -> bool {
        self == RetCode::Success
    }
    /// The name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            RetCode::Success => "Success",
            RetCode::MaxIters => "MaxIters",
            RetCode::DtLessThanMin => "DtLessThanMin",
            RetCode::Unstable => "Unstable",
            RetCode::InitialFailure => "InitialFailure",
            RetCode::Terminated => "Terminated",
            RetCode::EventTerminated => "EventTerminated",
            RetCode::Zeno => "Zeno",
        }
    }
}

/// Work counters of a solve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Evaluations of the right-hand side (not counting those inside Jacobians).
    pub nf: usize,
    /// Jacobian evaluations.
    pub njac: usize,
    /// Evaluations of the right-hand side on dual numbers behind forward-mode AD Jacobians
    /// and `df/dt` (each carries up to 8 directions). Finite-difference Jacobians count
    /// their evaluations in `nf`.
    pub nf_ad: usize,
    /// LU factorisations.
    pub nlu: usize,
    /// Step attempts (`naccept + nreject`).
    pub nsteps: usize,
    /// Accepted steps.
    pub naccept: usize,
    /// Rejected steps.
    pub nreject: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.nf += o.nf;
        self.njac += o.njac;
        self.nf_ad += o.nf_ad;
        self.nlu += o.nlu;
        self.nsteps += o.nsteps;
        self.naccept += o.naccept;
        self.nreject += o.nreject;
    }
}

/// A (possibly partial) solution.
///
/// Read it through its accessors: `sol.u(i)` is the state at `sol.t()[i]`, `sol.retcode()`
/// says how the solve ended, `sol.interpolate(t)` reads the dense output. Its parts are not
/// public fields, so that times, states and dense output always belong together.
#[derive(Clone, Debug)]
pub struct Solution<T = f64> {
    /// Saved times.
    pub(crate) t: Vec<f64>,
    /// Saved states, flat (`t.len() * n`).
    pub(crate) u_flat: Vec<T>,
    /// Number of states.
    pub(crate) n: usize,
    /// How the solve ended.
    pub(crate) retcode: RetCode,
    /// Work counters.
    pub(crate) stats: Stats,
    /// The method that produced it (for `Auto`, the last one used).
    pub(crate) alg: Algorithm,
    /// The time the solve reached (the end of the span on success).
    pub(crate) t_reached: f64,
    pub(crate) dense: Option<DenseOutput<T>>,
    /// The state at `t_reached`.
    pub(crate) u_reached: Vec<T>,
    /// The solve stopped early to switch method (Auto).
    pub(crate) switched: bool,
    /// The step size the controller proposed last, before any cut to land on a stop
    /// (0 when no step was accepted): where a continuation should start.
    pub(crate) next_step: f64,
    /// The events that fired, in time order.
    pub(crate) events: Vec<EventRecord>,
    /// The state's jumps at those events, in time order (several events firing at one time
    /// make one jump): what the adjoints carry their `lambda` back across.
    pub(crate) jumps: Vec<JumpRecord>,
}

/// One step's times as the driver attempts it, and where its stages are evaluated.
///
/// A stage at `c` in `(0, 1)` is evaluated at `t + c h`; the first stage (`c = 0`) at
/// `first`, which is just past `t` when `t` is a discontinuity (a tstop) so that `f` is its
/// right-hand limit; stages at `c = 1` at `last`, which is just before `end` when the step
/// lands on a discontinuity, so that they see the piece of `f` the step's interior lies in.
/// Every stage time lies in `[first, last]`: no stage evaluates `f` on the far side of a
/// tstop, whichever way the model writes its switch (`t <= s` or `t < s`) and in both
/// directions of integration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StepRecord {
    /// Start of the step.
    pub(crate) t: f64,
    /// The step size the stages used.
    pub(crate) h: f64,
    /// Time of the first stage (just past `t` after a discontinuity).
    pub(crate) first: f64,
    /// Time of the stages at the step's end (just before `end` when that is a discontinuity).
    pub(crate) last: f64,
    /// End of the step (exactly a stop when the step landed on one).
    pub(crate) end: f64,
}

impl StepRecord {
    /// The time of a stage at `c` (the tableau's node).
    #[inline(always)]
    pub(crate) fn stage_time(&self, c: f64) -> f64 {
        if c == 0.0 {
            return self.first;
        }
        if c == 1.0 {
            return self.last;
        }
        let t = self.t + c * self.h;
        if self.h > 0.0 {
            t.max(self.first).min(self.last)
        } else {
            t.min(self.first).max(self.last)
        }
    }

    /// Whether the step starts at a discontinuity (its first stage is evaluated past `t`).
    pub(crate) fn after_discontinuity(&self) -> bool {
        self.first != self.t
    }
}

/// The accepted steps of a solve and the states they started from: what a solve hands to
/// the discrete adjoints, which replay its steps (see [`super::solve_explicit_logged`] and
/// [`super::solve_rodas_logged`]).
#[derive(Clone, Debug)]
pub(crate) struct StepLog<T> {
    pub(crate) records: Vec<StepRecord>,
    /// Each accepted step's squared error norm (accepted when at most 1); NaN for a step
    /// cut short to land on a stop.
    pub(crate) error_sq: Vec<f64>,
    /// Start states, flat: of every [`StepLog::every`]-th step (steps 0, k, 2k, ...).
    pub(crate) u_start: Vec<T>,
    /// Which steps' start states are kept: every step (1), or every k-th as checkpoints.
    pub(crate) every: usize,
    /// Per jump of the solution ([`Solution::jumps`]), how many steps came before it (0: at
    /// the start of the span).
    pub(crate) jump_steps: Vec<usize>,
}

/// An event's jump of the state: what the adjoints need to carry their `lambda` across it.
#[derive(Clone, Debug)]
pub(crate) struct JumpRecord {
    /// How many saved points came before it: saves at its time with a smaller index hold
    /// the state before the jump (a save time at an event gives the left limit), the ones
    /// from this index on (`save_events`) the state after it.
    pub(crate) saves_before: usize,
    /// When.
    pub(crate) t: f64,
    /// The events that fired, in the order their affects were applied.
    pub(crate) fired: Vec<usize>,
    /// The continuous event whose root the time is (it moves with the inputs); `None` for
    /// fixed times.
    pub(crate) moving: Option<usize>,
    /// The state just before the jump (values).
    pub(crate) u_before: Vec<f64>,
}

impl JumpRecord {
    /// Apply the jump's affects (in the order they fired) to `u`, the state before it.
    pub(crate) fn apply<M: crate::problem::Model>(&self, model: &M, p: &[f64], u: &mut [f64]) {
        for &index in &self.fired {
            model.event_affect(index, u, p, self.t);
        }
    }
}

impl<T: Scalar> StepLog<T> {
    /// An empty log that keeps the start state of every `every`-th step (at least every
    /// step).
    pub(crate) fn new(every: usize) -> Self {
        Self {
            records: Vec::new(),
            error_sq: Vec::new(),
            u_start: Vec::new(),
            every: every.max(1),
            jump_steps: Vec::new(),
        }
    }

    /// Record that the solution's next jump comes after the steps so far.
    pub(crate) fn push_jump(&mut self) {
        self.jump_steps.push(self.records.len());
    }

    /// Record an accepted step from state `u` with squared error norm `error_sq`.
    pub(crate) fn push(&mut self, step: StepRecord, u: &[T], error_sq: f64) {
        if self.records.len() % self.every == 0 {
            self.u_start.extend_from_slice(u);
        }
        self.records.push(step);
        self.error_sq.push(error_sq);
    }

    /// The same log with every state replaced by its value.
    pub(crate) fn into_values(self) -> StepLog<f64> {
        let Self { records, error_sq, u_start, every, jump_steps } = self;
        StepLog { records, error_sq, u_start: u_start.iter().map(|v| v.value()).collect(), every, jump_steps }
    }
}

impl<T: Scalar> Solution<T> {
    /// The same solution with every number replaced by its value (an AD number's
    /// derivative parts dropped).
    pub(crate) fn values(&self) -> Solution<f64> {
        let to_values = |x: &[T]| x.iter().map(|v| v.value()).collect::<Vec<f64>>();
        Solution {
            t: self.t.clone(),
            u_flat: to_values(&self.u_flat),
            n: self.n,
            retcode: self.retcode,
            stats: self.stats,
            alg: self.alg,
            t_reached: self.t_reached,
            dense: self.dense.as_ref().map(DenseOutput::values),
            u_reached: to_values(&self.u_reached),
            switched: self.switched,
            next_step: self.next_step,
            events: self.events.clone(),
            jumps: self.jumps.clone(),
        }
    }

    /// The saves of the state just after jump `j` (`save_events`): from its
    /// [`JumpRecord::saves_before`] on, at its time, up to the next jump.
    pub(crate) fn saves_after_jump(&self, j: usize) -> std::ops::Range<usize> {
        let jump = &self.jumps[j];
        let limit = self.jumps.get(j + 1).map_or(self.t.len(), |next| next.saves_before);
        let end = (jump.saves_before..limit).find(|&s| self.t[s] != jump.t).unwrap_or(limit);
        jump.saves_before..end
    }

    /// The saved times.
    pub fn t(&self) -> &[f64] {
        &self.t
    }
    /// The saved states, flat: `len() * n_states()` numbers, state after state.
    pub fn u_flat(&self) -> &[T] {
        &self.u_flat
    }
    /// The saved states, flat, without a copy.
    pub fn into_u_flat(self) -> Vec<T> {
        self.u_flat
    }
    /// Number of states.
    pub fn n_states(&self) -> usize {
        self.n
    }
    /// How the solve ended.
    pub fn retcode(&self) -> RetCode {
        self.retcode
    }
    /// The model's events that fired, in time order (see [`crate::Model::events`]).
    pub fn events(&self) -> &[EventRecord] {
        &self.events
    }
    /// Work counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// The method that produced it (for `Auto`, the last one used).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
    /// The time the solve reached (the end of the span on success).
    pub fn t_reached(&self) -> f64 {
        self.t_reached
    }
    /// The saved state number `i`.
    pub fn u(&self, i: usize) -> &[T] {
        &self.u_flat[i * self.n..(i + 1) * self.n]
    }
    /// Iterate over saved states.
    pub fn states(&self) -> impl Iterator<Item = &[T]> {
        self.u_flat.chunks_exact(self.n.max(1))
    }
    /// The last saved state.
    pub fn last(&self) -> Option<&[T]> {
        (!self.t.is_empty()).then(|| self.u(self.t.len() - 1))
    }
    /// The state at [`Solution::t_reached`], whether or not it was saved.
    pub fn u_final(&self) -> &[T] {
        &self.u_reached
    }
    /// Number of saved points.
    pub fn len(&self) -> usize {
        self.t.len()
    }
    /// True if nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
    /// True if the dense output was kept (see [`crate::SolveOptions::dense`]).
    pub fn has_dense(&self) -> bool {
        self.dense.is_some()
    }

    /// The state at any time `t` of the integrated span, from the method's own dense
    /// output. Errors if the dense output was not kept or `t` is outside the span reached.
    pub fn interpolate(&self, t: f64) -> Result<Vec<T>> {
        let mut out = vec![T::zero(); self.n];
        self.interpolate_into(t, &mut out)?;
        Ok(out)
    }

    /// [`Solution::interpolate`] into a caller-provided buffer.
    pub fn interpolate_into(&self, t: f64, out: &mut [T]) -> Result<()> {
        let dense = self.dense.as_ref().ok_or_else(|| DiffsimError::InvalidOption {
            name: "dense",
            why: "this solution kept no dense output; solve with SolveOptions::dense(true)".into(),
        })?;
        if out.len() != self.n {
            return Err(DiffsimError::SizeMismatch { what: "out", expected: self.n, got: out.len() });
        }
        let (a, b) = (dense.ts[0], *dense.ts.last().unwrap_or(&dense.ts[0]));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        if !(t >= lo && t <= hi) {
            return Err(DiffsimError::InvalidOption {
                name: "t",
                why: format!("t = {t} is outside the integrated span [{lo}, {hi}]"),
            });
        }
        dense.evaluate(t, out);
        Ok(())
    }
}
