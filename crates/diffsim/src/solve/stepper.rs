//! The interface between the one step-control loop ([`super::driver`]) and a method family.

use super::dense::Interpolant;
use super::solution::{Stats, StepRecord};
use crate::problem::Model;
use crate::scalar::Scalar;

/// One method family's step. The driver owns time, the controller, saving and tstops;
/// a stepper owns its stage buffers (allocated once per solve) and computes one attempt.
pub(crate) trait Stepper<T: Scalar, M: Model> {
    /// Order used by the controller's exponents and the initial step.
    fn order(&self) -> u32;
    /// `k` such that the error estimate is `O(h^k)` (embedded order + 1): the controller's
    /// exponents scale with `1 / k`.
    fn error_order(&self) -> u32;
    /// The dense-output formula this stepper's data feeds.
    fn interpolant(&self) -> Interpolant;
    /// Make sure `f(u, t)` at the start of the step is evaluated (after a start or a
    /// discontinuity), and return it.
    fn ensure_f0(&mut self, model: &M, p: &[T], t: f64, u: &[T], stats: &mut Stats) -> &[T];
    /// Attempt the step `times` (size `times.h`, stages at [`StepRecord::stage_time`]) from
    /// `u`, writing the candidate and its error estimate.
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &mut self,
        model: &M,
        p: &[T],
        times: &StepRecord,
        u: &[T],
        u_new: &mut [T],
        err: &mut [T],
        stats: &mut Stats,
    );
    /// Step data of the accepted attempt for [`Stepper::interpolant`] (may evaluate extra
    /// stages lazily).
    fn dense_data(&mut self, model: &M, p: &[T], times: &StepRecord, u: &[T], u_new: &[T], stats: &mut Stats) -> &[T];
    /// The attempt was accepted; the next step starts at its end. `discontinuity`: a tstop
    /// was hit, so `f` at the new start must be evaluated afresh.
    fn accept(&mut self, discontinuity: bool);
    /// `h * rho / boundary` of the last attempt, where `rho` estimates the dominant
    /// eigenvalue magnitude and `boundary` is the method's stability limit on the negative
    /// real axis: above 1 the step size is limited by stability, not accuracy. `None` when
    /// the stepper does not estimate it.
    fn stiffness_ratio(&self) -> Option<f64> {
        None
    }
    /// The solve's tolerances per component, once before the first step: for steppers
    /// that measure their own iterations (Newton) or choose their own order.
    fn set_tolerances(&mut self, _atol: &[f64], _rtol: &[f64]) {}
    /// The (signed) size of the next step after an accepted one whose squared error norm
    /// was `e` (called after [`Stepper::accept`]): multistep methods choose step and order
    /// together. `None`: the driver's controller chooses.
    fn next_step_after_accept(&mut self, _e: f64) -> Option<f64> {
        None
    }
    /// The (signed) size of the retry after a rejected attempt whose squared error norm was
    /// `e` (infinite when the stepper's own iteration failed). `None`: the driver's
    /// controller chooses.
    fn next_step_after_reject(&mut self, _e: f64) -> Option<f64> {
        None
    }
}

/// `rhs(du, u, t)`: `du = f(u, p, t)` with the model and its parameters bound. Code that
/// takes it rather than the model is compiled once per number type, not once per model.
pub(crate) type BoundRhs<'a, T> = &'a mut dyn FnMut(&mut [T], &[T], f64);

/// `f(u, t)` at the start of a step for the `f64` steppers: evaluated once after a start or
/// an accepted step, and kept while the step is retried.
pub(crate) struct StartSlope {
    pub(crate) f0: Vec<f64>,
    /// `f0` belongs to the current step start.
    pub(crate) valid: bool,
}

impl StartSlope {
    pub(crate) fn new(n: usize) -> Self {
        Self { f0: vec![0.0; n], valid: false }
    }

    /// `f(u, t)`, evaluated unless current.
    #[inline]
    pub(crate) fn ensure<M: Model>(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], stats: &mut Stats) -> &[f64] {
        if !self.valid {
            model.rhs(&mut self.f0, u, p, t);
            stats.nf += 1;
            self.valid = true;
        }
        &self.f0
    }
}

/// How a stepper evaluates `f` at its stages: [`Plain`]ly, or through a hook that also keeps
/// something of each evaluation (the discrete adjoint's records of a network's forward
/// pass). The stepper owns it for the solve and hands it back after.
pub(crate) trait StageEval<T: Scalar, M: Model> {
    /// `du = f(u, p, t)`, as [`Model::rhs`] computes it.
    fn rhs(&mut self, model: &M, du: &mut [T], u: &[T], p: &[T], t: f64);
}

/// Stages evaluated by [`Model::rhs`] alone.
pub(crate) struct Plain;

impl<T: Scalar, M: Model> StageEval<T, M> for Plain {
    #[inline(always)]
    fn rhs(&mut self, model: &M, du: &mut [T], u: &[T], p: &[T], t: f64) {
        model.rhs(du, u, p, T::from_f64(t))
    }
}
