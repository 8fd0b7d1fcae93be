//! Nonlinear least squares as every solver sees it: a [`Residuals`] problem, a
//! [`LeastSquaresSolver`] that minimises `1/2 |r(p)|^2` within box bounds, and the
//! [`LeastSquaresReport`] they all return.
//!
//! Three kinds of solver implement the trait, so every fitting strategy runs with any of
//! them:
//!
//! | solver | uses | when |
//! |---|---|---|
//! | [`LevenbergMarquardt`](super::LevenbergMarquardt) | residuals and their Jacobian | the default: few parameters, many data, smooth residuals |
//! | [`Bobyqa`](super::Bobyqa) | residual values only | no trustworthy Jacobian (a model with kinks, a black-box piece) |
//! | [`ScalarLeastSquares`] around [`Adam`](super::Adam), [`Lbfgs`](super::Lbfgs), [`Bfgs`](super::Bfgs) or [`NelderMead`](super::NelderMead) | the loss `1/2 |r|^2`, and `J^T r` for the gradient methods | many parameters (a network), or comparing optimizers on one problem |

use super::{minimize, MinimizeOptions, Optimizer, StopReason};
use crate::error::{DiffsimError, Result};

/// A residual vector `r(p)` and its Jacobian `dr/dp`.
pub trait Residuals {
    /// The number of parameters.
    fn n_params(&self) -> usize;
    /// The number of residuals.
    fn n_residuals(&self) -> usize;
    /// Write `r(p)`. False when the residuals cannot be evaluated at `p` (a solve failed):
    /// the step is rejected.
    fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool;
    /// Write `r(p)` and the Jacobian `dr/dp`, row-major (`n_residuals x n_params`). False as
    /// for [`Residuals::residuals`].
    fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool;
}

/// Why a least-squares solver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeastSquaresStop {
    /// The gradient is orthogonal to the residuals to within `gtol` (free parameters), or a
    /// gradient optimizer's convergence test passed.
    Gradient,
    /// The step fell below its tolerance (for BOBYQA: the trust region shrank to
    /// `rho_end`; for Nelder-Mead: the simplex collapsed).
    Step,
    /// The cost's actual and predicted relative reductions fell below `ftol`.
    Cost,
    /// The cost is zero.
    ZeroCost,
    /// The iteration or evaluation budget was used up.
    MaxIters,
    /// No step reduced the cost (a rough or inconsistent residual function, a Jacobian
    /// that does not match it, or a degenerate interpolation model).
    NoProgress,
}

impl LeastSquaresStop {
    /// True for the stops that mean a local minimum was found.
    pub fn converged(self) -> bool {
        !matches!(self, LeastSquaresStop::MaxIters | LeastSquaresStop::NoProgress)
    }
}

/// The outcome of a least-squares fit.
#[derive(Clone, Debug)]
pub struct LeastSquaresReport {
    /// The parameters found.
    pub p: Vec<f64>,
    /// `1/2 sum r_i^2` at `p`.
    pub cost: f64,
    /// The residuals at `p`.
    pub residuals: Vec<f64>,
    /// `dr/dp` at `p`, row-major (`residuals.len() x p.len()`); NaN when the Jacobian
    /// could not be evaluated there.
    pub jacobian: Vec<f64>,
    /// Iterations (Levenberg-Marquardt: accepted steps; BOBYQA:
    /// objective evaluations; scalar optimizers: their iterations).
    pub iters: usize,
    /// Residual evaluations without a Jacobian.
    pub n_residuals: usize,
    /// Jacobian evaluations.
    pub n_jacobians: usize,
    /// Why it stopped.
    pub stop: LeastSquaresStop,
}

/// A method that minimises `1/2 |r(p)|^2` within box bounds.
///
/// Object safe, so a fitting strategy takes `&dyn LeastSquaresSolver` and a command line
/// picks the solver at run time.
///
/// ```
/// use diffsim::optim::{Bobyqa, LeastSquaresSolver, LevenbergMarquardt, Residuals};
///
/// /// `r = (p0 - 1, 10 (p1 - p0^2))`: Rosenbrock's function as least squares.
/// struct Banana;
/// impl Residuals for Banana {
///     fn n_params(&self) -> usize { 2 }
///     fn n_residuals(&self) -> usize { 2 }
///     fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
///         r[0] = p[0] - 1.0;
///         r[1] = 10.0 * (p[1] - p[0] * p[0]);
///         true
///     }
///     fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
///         self.residuals(p, r);
///         jac.copy_from_slice(&[1.0, 0.0, -20.0 * p[0], 10.0]);
///         true
///     }
/// }
/// let solvers: [Box<dyn LeastSquaresSolver>; 2] = [
///     Box::new(LevenbergMarquardt::default()),
///     Box::new(Bobyqa::default().bounds(vec![-2.0, -2.0], vec![2.0, 2.0])),
/// ];
/// for solver in &solvers {
///     let report = solver.solve(&mut Banana, &[-1.2, 1.0]).unwrap();
///     assert!((report.p[0] - 1.0).abs() < 1e-6 && (report.p[1] - 1.0).abs() < 1e-6, "{}", solver.name());
/// }
/// ```
pub trait LeastSquaresSolver {
    /// A short lowercase name (`"lm"`, `"bobyqa"`, `"lbfgs"`, ...).
    fn name(&self) -> &str;
    /// Lower bounds (empty: none).
    fn lower(&self) -> &[f64];
    /// Upper bounds (empty: none).
    fn upper(&self) -> &[f64];
    /// The same solver with other bounds (a strategy that adds decision variables widens
    /// them; empty vectors for none).
    fn with_bounds(&self, lower: Vec<f64>, upper: Vec<f64>) -> Box<dyn LeastSquaresSolver>;
    /// Minimise `1/2 |r(p)|^2` from `p0` (moved into the bounds if outside).
    ///
    /// Errors: sizes or bounds that do not fit, a non-finite `p0`, or residuals that cannot
    /// be evaluated at `p0`. Not converging is not an error: see [`LeastSquaresReport::stop`].
    fn solve(&self, problem: &mut dyn Residuals, p0: &[f64]) -> Result<LeastSquaresReport>;
}

/// The bounds for `n` parameters, expanded to full length (empty means none), checked to
/// be ordered.
pub(crate) fn expand_bounds(lower: &[f64], upper: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let expand = |b: &[f64], what: &'static str, fill: f64| -> Result<Vec<f64>> {
        match b.len() {
            0 => Ok(vec![fill; n]),
            len if len == n => Ok(b.to_vec()),
            got => Err(DiffsimError::SizeMismatch { what, got, expected: n }),
        }
    };
    let (lo, hi) = (expand(lower, "lower bounds", f64::NEG_INFINITY)?, expand(upper, "upper bounds", f64::INFINITY)?);
    if let Some(j) = (0..n).find(|&j| lo[j].is_nan() || hi[j].is_nan() || lo[j] > hi[j]) {
        return Err(DiffsimError::InvalidOption {
            name: "bounds",
            why: format!("parameter {j} has lower bound {} above upper bound {}; give lower <= upper", lo[j], hi[j]),
        });
    }
    Ok((lo, hi))
}

/// `p0` checked for size and finiteness, then clamped into the bounds.
pub(crate) fn checked_start(p0: &[f64], lo: &[f64], hi: &[f64]) -> Result<Vec<f64>> {
    if p0.len() != lo.len() {
        return Err(DiffsimError::SizeMismatch { what: "p0", got: p0.len(), expected: lo.len() });
    }
    if let Some(index) = p0.iter().position(|v| !v.is_finite()) {
        return Err(DiffsimError::NonFinite { what: "p0", index });
    }
    Ok(p0.iter().zip(lo.iter().zip(hi)).map(|(v, (l, h))| v.clamp(*l, *h)).collect())
}

/// The error for residuals that cannot be evaluated at the start.
pub(crate) fn unsolvable_start() -> DiffsimError {
    DiffsimError::InvalidOption {
        name: "p0",
        why: "the residuals cannot be evaluated at the starting parameters (a solve failed or gave non-finite \
              values); start from parameters where the model can be solved"
            .into(),
    }
}

/// `1/2 |r(p)|^2`, infinite when the residuals cannot be evaluated.
pub(crate) fn cost_at(problem: &mut dyn Residuals, p: &[f64], r: &mut [f64]) -> f64 {
    if problem.residuals(p, r) && r.iter().all(|v| v.is_finite()) {
        0.5 * r.iter().map(|v| v * v).sum::<f64>()
    } else {
        f64::INFINITY
    }
}

/// The report at the point a Jacobian-free search ended: residuals and, for the
/// uncertainty, one Jacobian (NaN where it cannot be evaluated).
pub(crate) fn report_at(
    problem: &mut dyn Residuals,
    p: Vec<f64>,
    iters: usize,
    n_residuals: usize,
    stop: LeastSquaresStop,
) -> LeastSquaresReport {
    let (m, n) = (problem.n_residuals(), problem.n_params());
    let (mut r, mut jac) = (vec![0.0; m], vec![0.0; m * n]);
    if !problem.jacobian(&p, &mut r, &mut jac) {
        r.fill(f64::NAN);
        jac.fill(f64::NAN);
    }
    let cost = if r.iter().all(|v| v.is_finite()) { 0.5 * r.iter().map(|v| v * v).sum::<f64>() } else { f64::INFINITY };
    LeastSquaresReport { p, cost, residuals: r, jacobian: jac, iters, n_residuals, n_jacobians: 1, stop }
}

/// Least squares by one of the scalar optimizers: the loss `1/2 |r|^2` and, for the
/// gradient methods, its gradient `J^T r` from the residuals' Jacobian.
///
/// Bounds by projection: the loss is evaluated at the point clamped into the box, and a
/// gradient component that pushes a clamped parameter outwards is zeroed. Derivative-free
/// Nelder-Mead starts a twentieth of the box's width inside each finite bound (a simplex
/// built on a bound would be flattened by the clamp).
///
/// ```
/// use diffsim::optim::{Lbfgs, MinimizeOptions, ScalarLeastSquares};
///
/// let lbfgs = ScalarLeastSquares::new(Lbfgs::default(), MinimizeOptions::default().max_iters(500));
/// # let _ = lbfgs;
/// ```
#[derive(Clone, Debug)]
pub struct ScalarLeastSquares<O> {
    optimizer: O,
    options: MinimizeOptions,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl<O: Optimizer + Clone + 'static> ScalarLeastSquares<O> {
    /// `optimizer` run by [`minimize`](super::minimize) with `options`, no bounds.
    pub fn new(optimizer: O, options: MinimizeOptions) -> Self {
        Self { optimizer, options, lower: Vec::new(), upper: Vec::new() }
    }

    /// With box bounds (infinities for none).
    pub fn bounds(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.lower = lower;
        self.upper = upper;
        self
    }

    fn derivative_free(&self) -> bool {
        self.optimizer.name() == "nelder-mead"
    }
}

impl<O: Optimizer + Clone + std::fmt::Debug + 'static> LeastSquaresSolver for ScalarLeastSquares<O> {
    fn name(&self) -> &str {
        self.optimizer.name()
    }

    fn lower(&self) -> &[f64] {
        &self.lower
    }

    fn upper(&self) -> &[f64] {
        &self.upper
    }

    fn with_bounds(&self, lower: Vec<f64>, upper: Vec<f64>) -> Box<dyn LeastSquaresSolver> {
        Box::new(self.clone().bounds(lower, upper))
    }

    fn solve(&self, problem: &mut dyn Residuals, p0: &[f64]) -> Result<LeastSquaresReport> {
        let (m, n) = (problem.n_residuals(), problem.n_params());
        let (lo, hi) = expand_bounds(&self.lower, &self.upper, n)?;
        let mut x0 = checked_start(p0, &lo, &hi)?;
        let derivative_free = self.derivative_free();
        if derivative_free {
            for (j, x) in x0.iter_mut().enumerate() {
                let width = hi[j] - lo[j];
                if width.is_finite() {
                    *x = x.clamp(lo[j] + 0.05 * width, hi[j] - 0.05 * width);
                }
            }
        }
        let clamp = |x: &[f64]| -> Vec<f64> { x.iter().enumerate().map(|(j, v)| v.clamp(lo[j], hi[j])).collect() };
        let (mut r, mut jac) = (vec![0.0; m], vec![0.0; m * n]);
        let mut n_residuals = 0;
        let mut n_jacobians = 0;
        let objective = |x: &[f64], g: &mut [f64]| -> f64 {
            let xc = clamp(x);
            let ok = if derivative_free {
                n_residuals += 1;
                problem.residuals(&xc, &mut r)
            } else {
                n_jacobians += 1;
                problem.jacobian(&xc, &mut r, &mut jac)
            };
            if !ok {
                return f64::NAN;
            }
            if !derivative_free {
                for (j, gj) in g.iter_mut().enumerate() {
                    *gj = (0..m).map(|k| jac[k * n + j] * r[k]).sum();
                    if (xc[j] <= lo[j] && *gj > 0.0) || (xc[j] >= hi[j] && *gj < 0.0) {
                        *gj = 0.0;
                    }
                }
            }
            0.5 * r.iter().map(|v| v * v).sum::<f64>()
        };
        let mut optimizer = self.optimizer.clone();
        optimizer.reset();
        let run = minimize(&x0, objective, &mut optimizer, &self.options)
            .map_err(|e| DiffsimError::InvalidOption { name: "optimizer", why: e.to_string() })?;
        if !run.best_loss.is_finite() {
            return Err(unsolvable_start());
        }
        let stop = match run.stop {
            StopReason::Converged if derivative_free => LeastSquaresStop::Step,
            StopReason::Converged => LeastSquaresStop::Gradient,
            StopReason::TargetReached | StopReason::NoImprovement => LeastSquaresStop::Cost,
            StopReason::MaxIters | StopReason::Finished | StopReason::Callback => LeastSquaresStop::MaxIters,
            StopReason::Stalled | StopReason::NonFinite => LeastSquaresStop::NoProgress,
        };
        let best = clamp(&run.best_x);
        let mut report = report_at(problem, best, run.iterations as usize, n_residuals, stop);
        report.n_jacobians += n_jacobians;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Lbfgs, NelderMead};

    /// `y = a exp(b t)` at six points of `2 exp(-0.5 t)`, with `a <= 1.5` (active at the
    /// solution) as the bound.
    struct Decay;
    const T: [f64; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0];
    impl Residuals for Decay {
        fn n_params(&self) -> usize {
            2
        }
        fn n_residuals(&self) -> usize {
            6
        }
        fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
            for (ri, t) in r.iter_mut().zip(T) {
                *ri = p[0] * (p[1] * t).exp() - 2.0 * (-0.5 * t).exp();
            }
            true
        }
        fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
            self.residuals(p, r);
            for (row, t) in jac.chunks_exact_mut(2).zip(T) {
                row[0] = (p[1] * t).exp();
                row[1] = p[0] * t * (p[1] * t).exp();
            }
            true
        }
    }

    /// The bounded optimum by Levenberg-Marquardt, the reference for the scalar optimizers.
    fn reference() -> LeastSquaresReport {
        let lm = crate::optim::LevenbergMarquardt::default().bounds(vec![0.0, -5.0], vec![1.5, 5.0]);
        lm.solve(&mut Decay, &[1.0, 0.0]).unwrap()
    }

    #[test]
    fn scalar_optimizers_reach_the_bounded_least_squares_optimum() {
        let want = reference();
        assert_eq!(want.p[0], 1.5, "the bound should be active");
        let options = MinimizeOptions::default().max_iters(5000);
        let solvers: [Box<dyn LeastSquaresSolver>; 2] = [
            Box::new(ScalarLeastSquares::new(Lbfgs::default(), options.clone())),
            Box::new(ScalarLeastSquares::new(NelderMead::default(), options)),
        ];
        for solver in solvers {
            let solver = solver.with_bounds(vec![0.0, -5.0], vec![1.5, 5.0]);
            let got = solver.solve(&mut Decay, &[1.0, 0.0]).unwrap();
            assert!(got.stop.converged(), "{}: {:?}", solver.name(), got.stop);
            assert!(
                (got.p[0] - 1.5).abs() < 1e-6 && (got.p[1] - want.p[1]).abs() < 1e-5,
                "{}: {:?}",
                solver.name(),
                got.p
            );
            assert!((got.cost - want.cost).abs() < 1e-8 * want.cost.max(1.0));
            assert_eq!(got.jacobian.len(), 12);
        }
    }

    #[test]
    fn sizes_and_bounds_are_checked() {
        let solver = ScalarLeastSquares::new(Lbfgs::default(), MinimizeOptions::default());
        assert!(solver.solve(&mut Decay, &[1.0]).is_err());
        assert!(solver.clone().bounds(vec![0.0], vec![1.0]).solve(&mut Decay, &[1.0, 0.0]).is_err());
        assert!(solver.bounds(vec![2.0, 0.0], vec![1.0, 1.0]).solve(&mut Decay, &[1.0, 0.0]).is_err());
    }
}
