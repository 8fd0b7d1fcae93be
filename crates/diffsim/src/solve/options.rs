//! Solver options: tolerances, saving, step-size limits, Jacobian choice.

use crate::error::{DiffsimError, Result};

/// An absolute or relative tolerance: one value for all components, or one per component.
#[derive(Clone, Debug, PartialEq)]
pub enum Tolerance {
    /// The same tolerance for every component.
    Scalar(f64),
    /// One tolerance per state component.
    PerComponent(Vec<f64>),
}

impl From<f64> for Tolerance {
    fn from(x: f64) -> Self {
        Tolerance::Scalar(x)
    }
}

impl From<Vec<f64>> for Tolerance {
    fn from(x: Vec<f64>) -> Self {
        Tolerance::PerComponent(x)
    }
}

impl Tolerance {
    /// The smallest value (the scalar itself, or the tightest component).
    pub(crate) fn smallest(&self) -> f64 {
        match self {
            Tolerance::Scalar(x) => *x,
            Tolerance::PerComponent(v) => v.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }

    /// Expand to one value per component, checking the values.
    pub(crate) fn expand(&self, n: usize, name: &'static str) -> Result<Vec<f64>> {
        let v = match self {
            Tolerance::Scalar(x) => vec![*x; n],
            Tolerance::PerComponent(v) => {
                if v.len() != n {
                    return Err(DiffsimError::InvalidTolerance(format!(
                        "{name} has {} components but the model has {n} states; give one value or {n}",
                        v.len()
                    )));
                }
                v.clone()
            }
        };
        if let Some(x) = v.iter().find(|x| !x.is_finite() || **x < 0.0) {
            return Err(DiffsimError::InvalidTolerance(format!(
                "{name} = {x}: tolerances must be finite and non-negative"
            )));
        }
        Ok(v)
    }
}

/// Where the solution is saved.
#[derive(Clone, Debug, PartialEq)]
pub enum SaveAt {
    /// The start and every accepted step.
    EveryStep,
    /// Exactly these times (interpolated with the method's dense output); they must lie
    /// in the span and are saved in the direction of integration.
    Times(Vec<f64>),
    /// Only the state at the end of the solve: at the end of the span (the same as
    /// `Times(vec![t1])`), or where a terminating event or the step callback ended it.
    End,
}

/// How the Rosenbrock methods get the Jacobian `df/du`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JacobianMethod {
    /// The model's analytic Jacobian if it has one; otherwise, for 48 states or more, a
    /// sparse Jacobian ([`JacobianMethod::SparseAd`]) when the pattern read off a tape
    /// recording at the first step has no branches (the model made no comparison) and at
    /// most 1/8 of the entries can be nonzero; otherwise dense forward-mode AD.
    #[default]
    Auto,
    /// Forward-mode AD (dual numbers) even if the model has an analytic Jacobian.
    ForwardAd,
    /// Forward finite differences.
    FiniteDiff,
    /// Sparse forward-mode AD: the Jacobian's pattern is read off a tape recording of `f`
    /// at the first step ([`crate::ad::JacobianPattern::detect`]), its columns coloured so
    /// that one dual slot serves every column of a colour, and `W` factored by a sparse LU
    /// (faer's). A method-of-lines model then costs `ceil(colours / 8)` dual evaluations
    /// per Jacobian and a banded factorisation instead of `ceil(n / 8)` and a dense one.
    /// The pattern must not change with the branch the model takes (under `Auto` a model
    /// that branches stays dense); if it cannot be traced (the model reads values with
    /// `Scalar::value`) the Jacobian is dense.
    SparseAd,
}

/// Which parts of a number the adaptive error norm counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ErrorNorm {
    /// Values and, for AD numbers, every derivative part (the correct choice when
    /// differentiating through the solver).
    #[default]
    AllParts,
    /// Values only. For demonstrations: step sequences then ignore the derivatives' error.
    ValuesOnly,
}

/// Options of one solve. Build with [`SolveOptions::default`] and the chaining setters.
///
/// ```
/// use diffsim::SolveOptions;
/// let opts = SolveOptions::default().rtol(1e-8).atol(1e-10).saveat_times(vec![0.5, 1.0]).tstops(vec![0.25]);
/// assert_eq!(opts.tstops, vec![0.25]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SolveOptions {
    /// Relative tolerance (default 1e-6).
    pub rtol: Tolerance,
    /// Absolute tolerance (default 1e-6).
    pub atol: Tolerance,
    /// Where to save (default: every step).
    pub saveat: SaveAt,
    /// Times the steps must land on exactly (discontinuities in time). Merged with the
    /// model's own [`crate::Model::tstops`].
    pub tstops: Vec<f64>,
    /// Initial step size (magnitude); `None` picks one automatically (Hairer's rule).
    pub dt: Option<f64>,
    /// Smallest step magnitude before the solve gives up with `DtLessThanMin`.
    pub dt_min: f64,
    /// Largest step magnitude.
    pub dt_max: f64,
    /// Maximum number of step attempts (accepted plus rejected) before `MaxIters`.
    pub max_steps: usize,
    /// Keep the dense output (every step's interpolation data) in the solution.
    /// `None`: keep it when saving every step.
    pub dense: Option<bool>,
    /// Adaptive step-size control; when false, steps of fixed size `dt` are taken.
    pub adaptive: bool,
    /// How the Jacobian is obtained by the Rosenbrock methods.
    pub jacobian: JacobianMethod,
    /// Which parts of AD numbers the error norm counts.
    pub error_norm: ErrorNorm,
    /// Interior points of each step at which the model's event conditions are checked,
    /// besides the step's end (default 4): a condition that crosses zero and back between
    /// two checked points is not seen. Each costs one evaluation of the dense output and
    /// of the conditions; models without events pay nothing.
    pub event_samples: usize,
    /// Save the state just before and just after each event's jump (two entries at the
    /// event time), whatever [`SolveOptions::saveat`] says (default false).
    pub save_events: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            rtol: Tolerance::Scalar(1e-6),
            atol: Tolerance::Scalar(1e-6),
            saveat: SaveAt::EveryStep,
            tstops: Vec::new(),
            dt: None,
            dt_min: 0.0,
            dt_max: f64::INFINITY,
            max_steps: 1_000_000,
            dense: None,
            adaptive: true,
            jacobian: JacobianMethod::Auto,
            error_norm: ErrorNorm::AllParts,
            event_samples: 4,
            save_events: false,
        }
    }
}

impl SolveOptions {
    /// Set the relative tolerance.
    pub fn rtol(mut self, rtol: impl Into<Tolerance>) -> Self {
        self.rtol = rtol.into();
        self
    }
    /// Set the absolute tolerance.
    pub fn atol(mut self, atol: impl Into<Tolerance>) -> Self {
        self.atol = atol.into();
        self
    }
    /// Save at exactly these times.
    pub fn saveat_times(mut self, times: Vec<f64>) -> Self {
        self.saveat = SaveAt::Times(times);
        self
    }
    /// Save only the state at the end of the span.
    ///
    /// ```
    /// use diffsim::{models::Lorenz, solve, Algorithm, Problem, SolveOptions};
    /// let prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).unwrap();
    /// let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().save_end()).unwrap();
    /// assert_eq!(sol.t(), &[1.0]);
    /// ```
    pub fn save_end(mut self) -> Self {
        self.saveat = SaveAt::End;
        self
    }
    /// These options with [`SaveAt::End`] written out as the one save time `t1` (for code
    /// that reads save times).
    pub(crate) fn end_as_time(&self, t1: f64) -> std::borrow::Cow<'_, SolveOptions> {
        match self.saveat {
            SaveAt::End => std::borrow::Cow::Owned(SolveOptions { saveat: SaveAt::Times(vec![t1]), ..self.clone() }),
            _ => std::borrow::Cow::Borrowed(self),
        }
    }
    /// Save every step.
    pub fn save_every_step(mut self) -> Self {
        self.saveat = SaveAt::EveryStep;
        self
    }
    /// Land steps exactly on these times.
    pub fn tstops(mut self, tstops: Vec<f64>) -> Self {
        self.tstops = tstops;
        self
    }
    /// Initial step size.
    pub fn dt(mut self, dt: f64) -> Self {
        self.dt = Some(dt);
        self
    }
    /// Fixed steps of size `dt` (no error control).
    pub fn fixed_dt(mut self, dt: f64) -> Self {
        self.dt = Some(dt);
        self.adaptive = false;
        self
    }
    /// Smallest step.
    pub fn dt_min(mut self, dt_min: f64) -> Self {
        self.dt_min = dt_min;
        self
    }
    /// Largest step.
    pub fn dt_max(mut self, dt_max: f64) -> Self {
        self.dt_max = dt_max;
        self
    }
    /// Step-attempt budget.
    pub fn max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = max_steps;
        self
    }
    /// Keep (or drop) the dense output.
    pub fn dense(mut self, dense: bool) -> Self {
        self.dense = Some(dense);
        self
    }
    /// Jacobian method for the stiff solvers.
    pub fn jacobian(mut self, jacobian: JacobianMethod) -> Self {
        self.jacobian = jacobian;
        self
    }
    /// Error norm.
    pub fn error_norm(mut self, error_norm: ErrorNorm) -> Self {
        self.error_norm = error_norm;
        self
    }
    /// How many interior points of each step the event conditions are checked at.
    pub fn event_samples(mut self, event_samples: usize) -> Self {
        self.event_samples = event_samples;
        self
    }
    /// Save both sides of each event's jump.
    pub fn save_events(mut self, save_events: bool) -> Self {
        self.save_events = save_events;
        self
    }
    /// Adaptive steps (the default), or steps of the fixed size `dt` ([`SolveOptions::fixed_dt`]
    /// sets both).
    pub fn adaptive(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// The smallest usable positive relative tolerance: 100 machine epsilons of `f64`.
    /// Below it the error estimate is rounding noise, and a solve would take steps at
    /// the precision floor until it runs out of attempts. An `rtol` of 0 (absolute error
    /// control only, with a positive `atol`) is allowed.
    pub const MIN_RTOL: f64 = 100.0 * f64::EPSILON;

    /// Check everything that does not depend on the model.
    pub(crate) fn validate(&self, tspan: (f64, f64)) -> Result<()> {
        let bad = |name, why: String| Err(DiffsimError::InvalidOption { name, why });
        let rtols = match &self.rtol {
            Tolerance::Scalar(r) => std::slice::from_ref(r),
            Tolerance::PerComponent(v) => v.as_slice(),
        };
        if let Some(r) = rtols.iter().find(|&&r| r > 0.0 && r < Self::MIN_RTOL) {
            return Err(DiffsimError::InvalidTolerance(format!(
                "rtol = {r:e} is below what f64 arithmetic resolves; the smallest usable rtol is {:.1e} \
                 (or 0 for absolute error control with atol alone)",
                Self::MIN_RTOL
            )));
        }
        if let (Tolerance::Scalar(r), Tolerance::Scalar(a)) = (&self.rtol, &self.atol) {
            if *r == 0.0 && *a == 0.0 {
                return Err(DiffsimError::InvalidTolerance(
                    "rtol and atol are both zero; at least one must be positive".into(),
                ));
            }
        }
        if let Some(dt) = self.dt {
            if !dt.is_finite() || dt <= 0.0 {
                return bad("dt", format!("dt = {dt}: give a positive finite step size"));
            }
        }
        if !self.adaptive && self.dt.is_none() {
            return bad("dt", "fixed-step solves need dt".into());
        }
        if self.dt_min.is_nan() || self.dt_min < 0.0 || self.dt_min.is_infinite() {
            return bad("dt_min", format!("dt_min = {}: must be finite and >= 0", self.dt_min));
        }
        if self.dt_max.is_nan() || self.dt_max <= 0.0 {
            return bad("dt_max", format!("dt_max = {}: must be > 0", self.dt_max));
        }
        if self.dt_min > self.dt_max {
            return bad("dt_min", format!("dt_min = {} exceeds dt_max = {}", self.dt_min, self.dt_max));
        }
        if self.max_steps == 0 {
            return bad("max_steps", "must be at least 1".into());
        }
        let (t0, t1) = tspan;
        let inside = |t: f64| t.is_finite() && (t - t0) * (t1 - t0) >= 0.0 && (t - t1) * (t0 - t1) >= 0.0;
        if let SaveAt::Times(ts) = &self.saveat {
            if let Some(t) = ts.iter().find(|t| !inside(**t)) {
                return bad("saveat", format!("time {t} lies outside the span ({t0}, {t1})"));
            }
        }
        if let Some(t) = self.tstops.iter().find(|t| !t.is_finite()) {
            return bad("tstops", format!("tstop {t} is not finite"));
        }
        Ok(())
    }
}
