//! Optimizers over a flat parameter vector `&[f64]`, and a driver that runs them.
//!
//! | optimizer | uses | for |
//! |---|---|---|
//! | [`Adam`] (AdamW with weight decay) + [`Schedule`] | loss and gradient | noisy or rough losses, neural networks, the first few hundred iterations |
//! | [`Lbfgs`] | loss and gradient, strong-Wolfe line search | smooth losses, many parameters; polishing after Adam |
//! | [`Bfgs`] | loss and gradient, dense inverse Hessian | smooth losses, few parameters (up to a few hundred) |
//! | [`NelderMead`] | loss only | few parameters, no gradient available |
//! | [`LevenbergMarquardt`] | residuals and their Jacobian, box bounds | least squares: fitting a mechanistic model with up to ~100 parameters to data (its own entry point, [`LevenbergMarquardt::minimize`]) |
//! | [`Bobyqa`] | loss only, box bounds | few parameters, no gradient; converges far faster than Nelder-Mead (its own entry point, [`Bobyqa::minimize`]) |
//! | [`Chain`] | stages of the above | e.g. Adam for 300 iterations, then L-BFGS |
//!
//! An objective is any `FnMut(&[f64], &mut [f64]) -> f64`: it receives the parameters,
//! writes the gradient into the second argument (zeroed before each call) and returns the
//! loss. It may return NaN or infinity, or write a non-finite gradient (a solve that blew
//! up, a parameter out of the model's domain): the optimizers skip such a step without ever
//! writing a non-finite value into the parameters, shrink the step and report it
//! ([`StepStatus::Skipped`]). Derivative-free methods ignore the gradient argument.
//!
//! Least squares has its own interface, [`LeastSquaresSolver`], implemented by
//! [`LevenbergMarquardt`], [`Bobyqa`] and [`ScalarLeastSquares`] (any of the step-wise
//! optimizers on `1/2 |r|^2`): the fitting strategies take any of them.
//!
//! [`minimize`] runs an optimizer (or a chain) with a per-iteration callback, early
//! stopping, best-parameter tracking and atomic JSON checkpoints that [`resume`] continues
//! bit-for-bit.
//!
//! ```
//! use diffsim::optim::{minimize, Adam, Chain, Lbfgs, MinimizeOptions, StopReason};
//!
//! // Rosenbrock's banana: minimum 0 at (1, 1).
//! let rosenbrock = |x: &[f64], g: &mut [f64]| {
//!     let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
//!     g[0] = -2.0 * a - 400.0 * x[0] * b;
//!     g[1] = 200.0 * b;
//!     a * a + 100.0 * b * b
//! };
//! let mut chain = Chain::new().then(Adam::new(0.05), 200).then(Lbfgs::default().gtol(1e-10), 100);
//! let report = minimize(&[-1.2, 1.0], rosenbrock, &mut chain, &MinimizeOptions::default()).unwrap();
//! assert_eq!(report.stop, StopReason::Converged);
//! assert!((report.best_x[0] - 1.0).abs() < 1e-8 && (report.best_x[1] - 1.0).abs() < 1e-8);
//! ```
//!
//! # Why our own optimizers
//!
//! The field's crates (argmin, among others) serve batch optimisation well, but fitting
//! differential equations needs per-iteration control they do not give together: a step
//! whose loss or gradient is non-finite (an unstable solve) must be skipped without touching
//! the parameters, the step shrunk and the event reported; and the complete optimizer state
//! must serialize to JSON so an interrupted fit resumes bit-for-bit. So each optimizer here
//! is a small state machine whose state is a serde value (every stored number finite), one
//! iteration per [`Optimizer::step`]. The line search is Nocedal & Wright's (Algorithms 3.5
//! and 3.6, cubic interpolation), L-BFGS is their two-loop recursion (Algorithm 7.4) and
//! BFGS their inverse update (6.17) with the initial scaling (6.20).

mod adam;
mod bfgs;
mod bobyqa;
mod chain;
mod checkpoint;
mod driver;
mod error;
mod lbfgs;
mod least_squares;
mod levenberg_marquardt;
mod line_search;
mod nelder_mead;
mod quasi_newton;
mod schedule;
mod serde_f64;

pub use adam::Adam;
pub use bfgs::Bfgs;
pub use bobyqa::{Bobyqa, BobyqaReport};
pub use chain::Chain;
pub use checkpoint::Checkpoint;
pub use driver::{
    minimize, minimize_or_resume, minimize_with_callback, resume, resume_with_callback, Control, MinimizeOptions,
    MinimizeReport, Progress, StopReason,
};
pub use error::OptimError;
pub use lbfgs::Lbfgs;
pub(crate) use least_squares::{expand_bounds, report_at};
pub use least_squares::{LeastSquaresReport, LeastSquaresSolver, LeastSquaresStop, Residuals, ScalarLeastSquares};
pub use levenberg_marquardt::LevenbergMarquardt;
pub use line_search::{strong_wolfe, LineSearch, LineSearchResult, LineSearchStatus};
pub use nelder_mead::NelderMead;
pub use schedule::Schedule;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The objective as the optimizers see it: writes the gradient (second argument, zeroed
/// before the call) and returns the loss. Non-finite results are allowed and handled.
pub type Objective<'a> = dyn FnMut(&[f64], &mut [f64]) -> f64 + 'a;

/// What one optimizer iteration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    /// The parameters moved to a point with a finite loss and gradient.
    Moved,
    /// A loss or gradient was non-finite: the parameters were not updated with it (Adam
    /// retracts towards its last good point, the line-search methods keep the point) and the
    /// next step will be shorter.
    Skipped,
    /// The convergence test passed (after the step, if one was taken).
    Converged,
    /// No progress is possible (a line search failed even along the steepest descent).
    Stalled,
    /// The optimizer has used its whole budget (a [`Chain`] after its last stage); nothing
    /// was evaluated.
    Finished,
}

/// The result of one [`Optimizer::step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// Loss of the point described by [`StepOutcome::at_entry`]; may be non-finite when
    /// the step was skipped.
    pub loss: f64,
    /// Euclidean norm of the gradient there; NaN for derivative-free methods.
    pub grad_norm: f64,
    /// Objective evaluations made by this step.
    pub evaluations: usize,
    /// How many of them gave a non-finite loss or gradient (and were backtracked from or
    /// skipped).
    pub non_finite: usize,
    /// What the step did.
    pub status: StepStatus,
    /// `true` when `loss` and `grad_norm` belong to the parameters on entry to the step
    /// (Adam evaluates once, then updates), `false` when they belong to the parameters on
    /// return (line-search methods, Nelder-Mead's best vertex).
    pub at_entry: bool,
}

impl StepOutcome {
    /// Whether the step was skipped because of a non-finite value.
    pub fn skipped(&self) -> bool {
        self.status == StepStatus::Skipped
    }

    /// Whether the convergence test passed.
    pub fn converged(&self) -> bool {
        self.status == StepStatus::Converged
    }

    pub(crate) fn finished() -> Self {
        StepOutcome {
            loss: f64::NAN,
            grad_norm: f64::NAN,
            evaluations: 0,
            non_finite: 0,
            status: StepStatus::Finished,
            at_entry: true,
        }
    }
}

/// An optimizer: a state machine that makes one iteration per [`Optimizer::step`].
///
/// Implementations never write a non-finite value into `x`, and their state round-trips
/// through [`Optimizer::state_json`] / [`Optimizer::restore`] exactly.
///
/// ```
/// use diffsim::optim::{Lbfgs, Optimizer};
///
/// let mut opt = Lbfgs::default();
/// let mut x = vec![3.0, -2.0];
/// let mut f = |x: &[f64], g: &mut [f64]| {
///     g[0] = 2.0 * x[0];
///     g[1] = 8.0 * x[1];
///     x[0] * x[0] + 4.0 * x[1] * x[1]
/// };
/// for _ in 0..20 {
///     if opt.step(&mut x, &mut f).converged() {
///         break;
///     }
/// }
/// assert!(x[0].abs() < 1e-8 && x[1].abs() < 1e-8);
/// ```
pub trait Optimizer {
    /// A short lowercase name (`"adam"`, `"lbfgs"`, `"chain"`, ...), stored in checkpoints.
    fn name(&self) -> &str;

    /// The name of the optimizer that made (or will make) the current iteration: the
    /// active stage of a [`Chain`], otherwise [`Optimizer::name`].
    fn active(&self) -> &str {
        self.name()
    }

    /// Checks the settings; [`minimize`] calls this before the first step.
    fn check(&self) -> Result<(), OptimError> {
        Ok(())
    }

    /// Makes one iteration from `x`, updating `x` in place.
    fn step(&mut self, x: &mut [f64], f: &mut Objective<'_>) -> StepOutcome;

    /// Forgets everything learned so far (moments, curvature pairs, simplex, stage).
    fn reset(&mut self);

    /// The complete state (settings included) as JSON.
    fn state_json(&self) -> serde_json::Value;

    /// Replaces the state with one from [`Optimizer::state_json`] for `n_params`
    /// parameters. Errors if the state belongs to another optimizer or another size.
    fn restore(&mut self, state: &serde_json::Value, n_params: usize) -> Result<(), OptimError>;
}

/// Wraps a serializable optimizer as `{"kind": name, "state": ...}`.
pub(crate) fn save_state<T: Serialize>(kind: &str, value: &T) -> serde_json::Value {
    let state = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    serde_json::json!({ "kind": kind, "state": state })
}

/// Reads what [`save_state`] wrote, checking the kind.
pub(crate) fn load_state<T: DeserializeOwned>(kind: &str, value: &serde_json::Value) -> Result<T, OptimError> {
    let got = value.get("kind").and_then(|k| k.as_str()).unwrap_or("<none>");
    if got != kind {
        return Err(OptimError::IncompatibleState { why: format!("the state is for optimizer '{got}', not '{kind}'") });
    }
    let state = value.get("state").cloned().unwrap_or(serde_json::Value::Null);
    serde_json::from_value(state)
        .map_err(|e| OptimError::IncompatibleState { why: format!("the '{kind}' state is malformed: {e}") })
}

/// Errors unless `v` is empty (not started) or has `n` entries.
pub(crate) fn check_len(what: &str, v: &[f64], n: usize) -> Result<(), OptimError> {
    if !v.is_empty() && v.len() != n {
        return Err(OptimError::IncompatibleState {
            why: format!("{what} has {} entries but there are {n} parameters", v.len()),
        });
    }
    if let Some(i) = v.iter().position(|a| !a.is_finite()) {
        return Err(OptimError::IncompatibleState { why: format!("{what}[{i}] is not finite") });
    }
    Ok(())
}

/// Settings check helper: `value` must be finite and inside `ok`.
pub(crate) fn check_setting(name: &'static str, value: f64, ok: bool, what: &str) -> Result<(), OptimError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(OptimError::from(crate::error::DiffsimError::InvalidOption { name, why: format!("is {value}; {what}") }))
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

pub(crate) fn all_finite(a: &[f64]) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// Bitwise equality (so NaN == NaN and -0 != +0): "is this exactly the point I know?".
pub(crate) fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Calls the objective with a zeroed gradient buffer.
pub(crate) fn eval(f: &mut Objective<'_>, x: &[f64], g: &mut [f64]) -> f64 {
    g.fill(0.0);
    f(x, g)
}
