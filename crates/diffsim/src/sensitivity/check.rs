//! Checking a gradient against central differences of tight solves: [`gradient_check`],
//! the reference alone ([`finite_difference_gradient`]) and the result ([`GradientCheck`]).

use super::{discrete::check_saveat, gradient, Gradient, SavedLoss, SensAlg};
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::solve::{solve, Algorithm, JacobianMethod, SolveOptions, Tolerance};
use rayon::prelude::*;
use std::fmt;

/// `rtol` and `atol` of the reference solves, unless the user's are tighter.
const REFERENCE_TOL: f64 = 1e-12;
/// The reference `rtol` is never below this: `f64` rounding dominates there.
const RTOL_FLOOR: f64 = 1e-14;
/// The step is this times `max(|x|, 1)` (see [`finite_difference_gradient`]).
const REL_STEP: f64 = 1e-3;
/// The relative error's denominator is at least this times the largest `|fd|`.
const REL_FLOOR: f64 = 1e-8;

/// A gradient beside central differences of tight solves, component by component.
///
/// Components are laid out as `[dL/dp..., dL/du0...]`. The relative error of component `i`
/// is `|g_i - fd_i| / max(|fd_i|, 1e-8 * max_j |fd_j|, f64::MIN_POSITIVE)`: relative to the
/// reference where it is not small, and relative to the largest component where it is (so
/// an input the loss does not depend on is judged on the gradient's scale rather than
/// dividing by zero). A NaN in the gradient gives a NaN error, which counts as the worst.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientCheck {
    /// The gradient being checked.
    pub gradient: Gradient,
    /// The central-difference reference, `[dL/dp..., dL/du0...]`.
    pub fd: Vec<f64>,
    /// The relative error of each component (same layout).
    pub rel_err: Vec<f64>,
    /// The largest relative error (NaN if any component's is).
    pub max_rel_err: f64,
}

impl GradientCheck {
    /// Compare `gradient` with a reference `fd` laid out as `[dL/dp..., dL/du0...]`.
    ///
    /// ```
    /// use diffsim::sensitivity::{Gradient, GradientCheck, SensAlg};
    /// let g = Gradient {
    ///     loss: 1.0,
    ///     dp: vec![2.0],
    ///     du0: vec![1.0],
    ///     stats: Default::default(),
    ///     warnings: vec![],
    ///     sensealg: SensAlg::Forward,
    /// };
    /// let check = GradientCheck::new(g, vec![2.0, 1.1]).unwrap();
    /// assert!((check.max_rel_err - 0.1 / 1.1).abs() < 1e-15);
    /// assert_eq!(check.worst(), Some((1, "u0[0]".to_string())));
    /// ```
    pub fn new(gradient: Gradient, fd: Vec<f64>) -> Result<Self> {
        let n = gradient.dp.len() + gradient.du0.len();
        if fd.len() != n {
            return Err(DiffsimError::SizeMismatch {
                what: "reference gradient (parameters, then initial states)",
                expected: n,
                got: fd.len(),
            });
        }
        let largest = fd.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        let floor = (REL_FLOOR * largest).max(f64::MIN_POSITIVE);
        let rel_err: Vec<f64> =
            gradient.dp.iter().chain(&gradient.du0).zip(&fd).map(|(g, r)| (g - r).abs() / r.abs().max(floor)).collect();
        let max_rel_err = worst_index(&rel_err).map_or(0.0, |i| rel_err[i]);
        Ok(Self { gradient, fd, rel_err, max_rel_err })
    }

    /// The checked gradient's components, `[dL/dp..., dL/du0...]`.
    pub fn computed(&self) -> impl Iterator<Item = f64> + '_ {
        self.gradient.dp.iter().chain(&self.gradient.du0).copied()
    }

    /// The name of component `i`: `"p[2]"`, `"u0[1]"`.
    pub fn name(&self, i: usize) -> String {
        Input::at(i, self.gradient.dp.len()).to_string()
    }

    /// The component with the largest relative error, and its name (`None` when the
    /// problem has no inputs).
    pub fn worst(&self) -> Option<(usize, String)> {
        worst_index(&self.rel_err).map(|i| (i, self.name(i)))
    }
}

/// The index of the largest value, a NaN counting as larger than any number.
fn worst_index(values: &[f64]) -> Option<usize> {
    let key = |x: f64| if x.is_nan() { f64::INFINITY } else { x };
    (0..values.len()).reduce(|best, i| if key(values[i]) > key(values[best]) { i } else { best })
}

/// A per-component table: name, gradient, central differences, relative error; then the
/// largest error and where it is.
impl fmt::Display for GradientCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<8} {:>22} {:>22} {:>10}", "input", "gradient", "central differences", "rel. error")?;
        for (i, g) in self.computed().enumerate() {
            writeln!(f, "{:<8} {:>22.14e} {:>22.14e} {:>10.2e}", self.name(i), g, self.fd[i], self.rel_err[i])?;
        }
        match self.worst() {
            Some((_, name)) => write!(f, "max relative error {:.2e} at {name}", self.max_rel_err),
            None => write!(f, "no inputs to check"),
        }
    }
}

/// [`gradient`] beside the central-difference reference of [`finite_difference_gradient`]:
/// verifies a gradient method on any model in one call. It reports; judging is the caller's
/// (a gradient method should reach `max_rel_err` well below `1e-6` at tight tolerances).
///
/// ```
/// use diffsim::sensitivity::{gradient_check, Loss, SensAlg};
/// use diffsim::{models::LotkaVolterra, Algorithm, Problem, SolveOptions};
/// let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
/// let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![0.5, 1.0]);
/// let check = gradient_check(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::ForwardAd).unwrap();
/// assert!(check.max_rel_err < 1e-6, "{check}");
/// ```
pub fn gradient_check<M: Model, L: SavedLoss>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &L,
    sensealg: SensAlg,
) -> Result<GradientCheck> {
    let computed = gradient(problem, alg, opts, loss, sensealg)?;
    let fd = finite_difference_gradient(problem, alg, opts, loss)?;
    GradientCheck::new(computed, fd)
}

/// The gradient of the loss, `[dL/dp..., dL/du0...]`, by Richardson-extrapolated central
/// differences of tight solves: a reference independent of every gradient method. A moved
/// solve that does not reach the end of the span is an error naming the input.
///
/// # Method
/// Every input `x` (each parameter, then each initial state) is moved by `±h` and `±h/2`
/// and the loss of each moved problem solved tightly; the two central differences
/// `D(h) = (L(x + h) - L(x - h)) / 2h` are combined by Richardson extrapolation,
/// `(4 D(h/2) - D(h)) / 3`, which cancels their `h^2` term. Four solves per input, run in
/// parallel.
///
/// The solves use a high-order method at tight tolerance: Vern7 for the non-stiff methods,
/// Rodas5P for the stiff ones (and for `Algorithm::Auto` when its own solve of the problem
/// switched to Rodas5P), at `rtol` and `atol` of `1e-12`, or the user's own where tighter
/// (`rtol` no tighter than `1e-14`, below which `f64` rounding, not the method, sets the
/// error), with the same save times, tstops and largest step as the user's options.
///
/// # The step
/// `h = 1e-3 * max(|x|, 1)`: relative to the input's size, and absolute for inputs near zero
/// so that they move too. The extrapolated difference has two errors: its truncation error
/// grows like `h^4` (times the loss's fifth derivative), and the solves' errors, which do not
/// vary smoothly with `x` (the step sequence changes with it), enter divided by `h`. With a
/// solve error of `eps ~ 1e-12` relative, `h ~ 1e-3` puts the truncation near `1e-12` and the
/// solve error near `3 eps / h ~ 3e-9`: about where their sum is least, and far below the
/// `1e-6` a gradient method is asked to meet. A smaller `h` lets the solves' noise through;
/// a larger one lets truncation grow fast where the loss is sensitive (long or chaotic
/// spans). An input that must keep its sign (a rate under a square root) must therefore
/// not lie within `h` of zero.
///
/// # Example
/// ```
/// use diffsim::sensitivity::{finite_difference_gradient, Loss};
/// use diffsim::{models::LotkaVolterra, Algorithm, Problem, SolveOptions};
/// let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
/// let opts = SolveOptions::default().saveat_times(vec![1.0]);
/// let fd = finite_difference_gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum).unwrap();
/// assert_eq!(fd.len(), 4 + 2);
/// ```
pub fn finite_difference_gradient<M: Model, L: SavedLoss>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &L,
) -> Result<Vec<f64>> {
    let reference = Reference::new(problem, alg, opts, loss)?;
    let np = problem.p.len();
    let derivatives: Vec<Result<f64>> =
        (0..np + problem.u0.len()).into_par_iter().map(|i| reference.derivative(Input::at(i, np), REL_STEP)).collect();
    // Sequentially, so that a failure names the first input that failed, run to run.
    derivatives.into_iter().collect()
}

/// One input of the loss: a parameter or an initial state.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Input {
    Param(usize),
    State(usize),
}

impl Input {
    /// Component `i` of the layout `[p..., u0...]` with `np` parameters.
    fn at(i: usize, np: usize) -> Self {
        if i < np {
            Input::Param(i)
        } else {
            Input::State(i - np)
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Param(i) => write!(f, "p[{i}]"),
            Input::State(i) => write!(f, "u0[{i}]"),
        }
    }
}

/// The tight solves of one problem's loss.
struct Reference<'a, M, L> {
    problem: &'a Problem<M>,
    alg: Algorithm,
    opts: SolveOptions,
    /// The reference solves' `rtol` (for messages).
    rtol: f64,
    loss: &'a L,
}

impl<'a, M: Model, L: SavedLoss> Reference<'a, M, L> {
    fn new(problem: &'a Problem<M>, alg: Algorithm, opts: &SolveOptions, loss: &'a L) -> Result<Self> {
        check_saveat(opts)?;
        let alg = reference_algorithm(problem, alg, opts)?;
        let rtol = reference_rtol(opts);
        Ok(Self { problem, alg, opts: reference_options(opts, rtol), loss, rtol })
    }

    /// `dL/dx` at the problem's value of `input`, with step `rel_step * max(|x|, 1)`.
    fn derivative(&self, input: Input, rel_step: f64) -> Result<f64> {
        let x = match input {
            Input::Param(i) => self.problem.p[i],
            Input::State(i) => self.problem.u0[i],
        };
        let h = rel_step * x.abs().max(1.0);
        let central = |h: f64| -> Result<f64> {
            let (up, down) = (x + h, x - h);
            // Divided by the step as represented, not as asked for.
            Ok((self.loss_at(input, up)? - self.loss_at(input, down)?) / (up - down))
        };
        Ok(richardson(central(h)?, central(h / 2.0)?))
    }

    /// The loss of a tight solve with `input` set to `x`.
    fn loss_at(&self, input: Input, x: f64) -> Result<f64> {
        let (mut u0, mut p) = (self.problem.u0.clone(), self.problem.p.clone());
        match input {
            Input::Param(i) => p[i] = x,
            Input::State(i) => u0[i] = x,
        }
        let sol =
            crate::solve::solve_parts(&self.problem.model, &u0, &p, self.problem.tspan, self.alg, &self.opts, None)?;
        if !sol.retcode.is_success() {
            return Err(DiffsimError::InvalidOption {
                name: "problem",
                why: format!(
                    "the reference solve ({}, rtol {:e}) with {input} = {x} ended with {} at t = {}; \
                     the loss has no central difference in {input} here: check that the model is smooth \
                     and solvable near this value, or raise max_steps",
                    self.alg,
                    self.rtol,
                    sol.retcode.as_str(),
                    sol.t_reached
                ),
            });
        }
        self.loss.check(sol.u_flat.len())?;
        Ok(self.loss.evaluate(&sol.u_flat))
    }
}

/// Richardson extrapolation of central differences at `h` and `h/2`: cancels the `h^2` term.
fn richardson(coarse: f64, fine: f64) -> f64 {
    (4.0 * fine - coarse) / 3.0
}

/// Vern7 for non-stiff methods, Rodas5P for stiff ones; `Auto` is judged by its own solve.
fn reference_algorithm<M: Model>(problem: &Problem<M>, alg: Algorithm, opts: &SolveOptions) -> Result<Algorithm> {
    let stiff = match alg {
        Algorithm::Auto => solve(problem, alg, opts)?.alg.is_stiff(),
        other => other.is_stiff(),
    };
    Ok(if stiff { Algorithm::Rodas5P } else { Algorithm::Vern7 })
}

/// Tight tolerances, the user's save times, tstops, largest step and (exact) Jacobian choice.
fn reference_options(opts: &SolveOptions, rtol: f64) -> SolveOptions {
    let defaults = SolveOptions::default();
    let jacobian = match opts.jacobian {
        JacobianMethod::FiniteDiff => JacobianMethod::Auto,
        exact => exact,
    };
    SolveOptions {
        saveat: opts.saveat.clone(),
        tstops: opts.tstops.clone(),
        dt_max: opts.dt_max,
        max_steps: opts.max_steps.max(defaults.max_steps),
        ..defaults.rtol(rtol).atol(tightest(&opts.atol)).jacobian(jacobian)
    }
}

fn reference_rtol(opts: &SolveOptions) -> f64 {
    tightest(&opts.rtol).max(RTOL_FLOOR)
}

/// The smallest positive value of `tol`, at most [`REFERENCE_TOL`].
fn tightest(tol: &Tolerance) -> f64 {
    let values = match tol {
        Tolerance::Scalar(x) => std::slice::from_ref(x),
        Tolerance::PerComponent(v) => v.as_slice(),
    };
    values.iter().copied().filter(|x| *x > 0.0).fold(REFERENCE_TOL, f64::min)
}

#[cfg(test)]
mod tests;
