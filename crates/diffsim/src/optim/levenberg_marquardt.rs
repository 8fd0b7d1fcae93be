//! Levenberg-Marquardt for bounded nonlinear least squares: minimise
//! `cost(p) = 1/2 sum_i r_i(p)^2` over `lower <= p <= upper`.
//!
//! Each iteration solves the damped Gauss-Newton system
//! `(J^T J + mu D^2) h = -J^T r` on the parameters not held at a bound, with Marquardt's
//! scaling `D` (the column norms of `J`, never decreasing, as in MINPACK, so the method does
//! not depend on the parameters' units), projects the trial point into the box and accepts
//! it when the cost falls. The damping `mu` follows Nielsen's rule: after a step whose
//! actual reduction is `rho` times the predicted one, `mu *= max(1/3, 1 - (2 rho - 1)^3)`;
//! after a rejected step `mu *= nu`, `nu *= 2`. A parameter at a bound whose gradient pushes
//! it outwards is held there for the step (an active set), so the other parameters get a
//! proper Gauss-Newton step instead of a projected fragment of one.
//!
//! Stopping (all relative, as MINPACK's `lmder`): the cosine between the residual vector and
//! every free column of `J` below `gtol` (a stationary point), a scaled step below
//! `xtol` times the scaled parameters, or actual and predicted relative reductions of the
//! cost both below `ftol`.
//!
//! Why not a crate: the Rust least-squares crates are unbounded and cannot be told that a
//! residual evaluation failed (an ODE solve that blew up at a trial point). Here a failed
//! evaluation is an infinite cost, so the step is rejected and the damping raised.

use super::least_squares::{
    checked_start, expand_bounds, unsolvable_start, LeastSquaresReport, LeastSquaresSolver, LeastSquaresStop, Residuals,
};
use crate::error::{DiffsimError, Result};
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

/// Levenberg-Marquardt with box bounds (see the module docs).
///
/// ```
/// use diffsim::optim::{LevenbergMarquardt, Residuals};
///
/// /// `y = a exp(b t)` through four points of `2 exp(-0.5 t)`.
/// struct Decay;
/// const T: [f64; 4] = [0.0, 1.0, 2.0, 3.0];
/// impl Residuals for Decay {
///     fn n_params(&self) -> usize { 2 }
///     fn n_residuals(&self) -> usize { 4 }
///     fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
///         for (ri, t) in r.iter_mut().zip(T) { *ri = p[0] * (p[1] * t).exp() - 2.0 * (-0.5 * t).exp(); }
///         true
///     }
///     fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
///         self.residuals(p, r);
///         for (row, t) in jac.chunks_exact_mut(2).zip(T) {
///             row[0] = (p[1] * t).exp();
///             row[1] = p[0] * t * (p[1] * t).exp();
///         }
///         true
///     }
/// }
/// let report = LevenbergMarquardt::default().minimize(&mut Decay, &[1.0, 0.0]).unwrap();
/// assert!(report.stop.converged());
/// assert!((report.p[0] - 2.0).abs() < 1e-10 && (report.p[1] + 0.5).abs() < 1e-10);
/// ```
#[derive(Clone, Debug)]
pub struct LevenbergMarquardt {
    /// Lower bounds (`-inf` for none); empty for no bounds.
    pub lower: Vec<f64>,
    /// Upper bounds (`+inf` for none); empty for no bounds.
    pub upper: Vec<f64>,
    /// Relative reduction of the cost below which it stops.
    pub ftol: f64,
    /// Relative step below which it stops.
    pub xtol: f64,
    /// Cosine between residuals and Jacobian columns below which it stops.
    pub gtol: f64,
    /// The most Jacobian evaluations.
    pub max_iters: usize,
}

impl Default for LevenbergMarquardt {
    fn default() -> Self {
        Self { lower: Vec::new(), upper: Vec::new(), ftol: 1e-14, xtol: 1e-12, gtol: 1e-12, max_iters: 200 }
    }
}

/// Damping past this multiple of the largest diagonal entry means no step can help.
const MAX_DAMPING: f64 = 1e16;
/// A step is accepted when the cost falls by at least this fraction of the predicted fall.
const ACCEPT_RATIO: f64 = 1e-4;

impl LevenbergMarquardt {
    /// With box bounds (each `lower[j] <= upper[j]`; infinities for none).
    pub fn bounds(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.lower = lower;
        self.upper = upper;
        self
    }

    /// With the most Jacobian evaluations.
    pub fn max_iters(mut self, max_iters: usize) -> Self {
        self.max_iters = max_iters;
        self
    }

    /// Check the options and bounds for `n` parameters; the bounds, expanded.
    fn checked_bounds(&self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        for (name, v) in [("ftol", self.ftol), ("xtol", self.xtol), ("gtol", self.gtol)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(DiffsimError::InvalidOption { name, why: format!("{v} is not a finite number >= 0") });
            }
        }
        expand_bounds(&self.lower, &self.upper, n)
    }

    /// Minimise `1/2 |r(p)|^2` from `p0` (moved into the bounds if outside).
    ///
    /// Errors: sizes or bounds that do not fit, a non-finite `p0`, or residuals that cannot
    /// be evaluated at `p0`. Not converging is not an error: see [`LeastSquaresReport::stop`].
    pub fn minimize<R: Residuals + ?Sized>(&self, problem: &mut R, p0: &[f64]) -> Result<LeastSquaresReport> {
        let (n, m) = (problem.n_params(), problem.n_residuals());
        let (lo, hi) = self.checked_bounds(n)?;
        let p = checked_start(p0, &lo, &hi)?;
        let (mut r, mut jac) = (vec![0.0; m], vec![0.0; m * n]);
        if !problem.jacobian(&p, &mut r, &mut jac) || !all_finite(&r) || !all_finite(&jac) {
            return Err(unsolvable_start());
        }
        let mut state = State::new(n, m, p, r.clone(), jac.clone());
        let report = |stop, state: State, iters, n_residuals, n_jacobians| LeastSquaresReport {
            p: state.p,
            cost: state.cost,
            residuals: state.r,
            jacobian: state.jac,
            iters,
            n_residuals,
            n_jacobians,
            stop,
        };
        let (mut n_res, mut n_jac) = (0, 1);
        let mut r_trial = vec![0.0; m];
        let mut jac_trial = vec![0.0; m * n];
        let mut trial = vec![0.0; n];
        // After an accepted step the next is usually accepted too: evaluating the trial's
        // Jacobian with its residuals then saves a second pass over the same point (for a
        // fit, a plain solve before the sensitivity solve). After a rejection, residuals
        // alone first.
        let mut speculate = true;
        for iter in 0..self.max_iters {
            if state.cost == 0.0 {
                return Ok(report(LeastSquaresStop::ZeroCost, state, iter, n_res, n_jac));
            }
            let free = state.free_parameters(&lo, &hi);
            if state.gradient_cosine(&free) <= self.gtol {
                return Ok(report(LeastSquaresStop::Gradient, state, iter, n_res, n_jac));
            }
            // Inner loop: raise the damping until a step lowers the cost.
            loop {
                let Some(h) = state.damped_step(&free) else {
                    state.reject();
                    if state.mu > MAX_DAMPING * state.max_diag() {
                        return Ok(report(LeastSquaresStop::NoProgress, state, iter, n_res, n_jac));
                    }
                    continue;
                };
                for j in 0..n {
                    trial[j] = (state.p[j] + h[j]).clamp(lo[j], hi[j]);
                }
                let step: Vec<f64> = trial.iter().zip(&state.p).map(|(a, b)| a - b).collect();
                let predicted = state.predicted_reduction(&step);
                let step_norm = scaled_norm(&step, &state.scale);
                let p_norm = scaled_norm(&state.p, &state.scale);
                let evaluated = if speculate {
                    n_jac += 1;
                    problem.jacobian(&trial, &mut r_trial, &mut jac_trial) && all_finite(&jac_trial)
                } else {
                    n_res += 1;
                    problem.residuals(&trial, &mut r_trial)
                };
                let cost_trial = if evaluated && all_finite(&r_trial) {
                    0.5 * r_trial.iter().map(|v| v * v).sum::<f64>()
                } else {
                    f64::INFINITY
                };
                let actual = state.cost - cost_trial;
                let rho = if predicted > 0.0 { actual / predicted } else { f64::NEG_INFINITY };
                if rho > ACCEPT_RATIO {
                    let small_cost =
                        actual <= self.ftol * state.cost && predicted <= self.ftol * state.cost && rho <= 2.0;
                    state.mu *= (1.0 - (2.0 * rho - 1.0).powi(3)).max(1.0 / 3.0);
                    state.nu = 2.0;
                    if speculate {
                        state.accept(&trial, &r_trial, &jac_trial);
                    } else {
                        n_jac += 1;
                        if !problem.jacobian(&trial, &mut r, &mut jac) || !all_finite(&r) || !all_finite(&jac) {
                            // Residuals worked but not their Jacobian: stop at the last good point.
                            return Ok(report(LeastSquaresStop::NoProgress, state, iter + 1, n_res, n_jac));
                        }
                        state.accept(&trial, &r, &jac);
                    }
                    speculate = true;
                    if small_cost {
                        return Ok(report(LeastSquaresStop::Cost, state, iter + 1, n_res, n_jac));
                    }
                    if step_norm <= self.xtol * (p_norm + self.xtol) {
                        return Ok(report(LeastSquaresStop::Step, state, iter + 1, n_res, n_jac));
                    }
                    break;
                }
                // A rejected step this small cannot be improved on.
                if step_norm <= self.xtol * (p_norm + self.xtol) {
                    return Ok(report(LeastSquaresStop::Step, state, iter + 1, n_res, n_jac));
                }
                state.reject();
                speculate = false;
                if state.mu > MAX_DAMPING * state.max_diag() {
                    return Ok(report(LeastSquaresStop::NoProgress, state, iter + 1, n_res, n_jac));
                }
            }
        }
        Ok(report(LeastSquaresStop::MaxIters, state, self.max_iters, n_res, n_jac))
    }
}

impl LeastSquaresSolver for LevenbergMarquardt {
    fn name(&self) -> &str {
        "lm"
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
        self.minimize(problem, p0)
    }
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn scaled_norm(v: &[f64], scale: &[f64]) -> f64 {
    v.iter().zip(scale).map(|(x, d)| (x * d) * (x * d)).sum::<f64>().sqrt()
}

/// The current point, its normal equations and the damping.
struct State {
    n: usize,
    m: usize,
    p: Vec<f64>,
    r: Vec<f64>,
    jac: Vec<f64>,
    cost: f64,
    /// `J^T J` (row-major `n x n`) and `g = J^T r`.
    a: Vec<f64>,
    g: Vec<f64>,
    /// Marquardt's scaling `D`.
    scale: Vec<f64>,
    mu: f64,
    nu: f64,
}

impl State {
    fn new(n: usize, m: usize, p: Vec<f64>, r: Vec<f64>, jac: Vec<f64>) -> Self {
        let cost = 0.5 * r.iter().map(|v| v * v).sum::<f64>();
        let mut s =
            Self { n, m, p, r, jac, cost, a: vec![0.0; n * n], g: vec![0.0; n], scale: vec![0.0; n], mu: 0.0, nu: 2.0 };
        s.form();
        // Nielsen's start: a small multiple of the largest curvature.
        s.mu = 1e-3 * s.max_diag();
        s
    }

    /// `J^T J`, `J^T r`, and the scaling (never decreasing).
    fn form(&mut self) {
        let (n, m) = (self.n, self.m);
        self.a.fill(0.0);
        self.g.fill(0.0);
        for i in 0..m {
            let row = &self.jac[i * n..(i + 1) * n];
            for j in 0..n {
                self.g[j] += row[j] * self.r[i];
                for k in 0..=j {
                    self.a[j * n + k] += row[j] * row[k];
                }
            }
        }
        for j in 0..n {
            for k in 0..j {
                self.a[k * n + j] = self.a[j * n + k];
            }
            self.scale[j] = self.scale[j].max(self.a[j * n + j].sqrt());
        }
    }

    fn max_diag(&self) -> f64 {
        (0..self.n).map(|j| self.a[j * self.n + j]).fold(f64::MIN_POSITIVE, f64::max)
    }

    /// The parameters free to move this iteration: not at a bound that the gradient pushes
    /// them against.
    fn free_parameters(&self, lo: &[f64], hi: &[f64]) -> Vec<bool> {
        (0..self.n)
            .map(|j| !((self.p[j] <= lo[j] && self.g[j] > 0.0) || (self.p[j] >= hi[j] && self.g[j] < 0.0)))
            .collect()
    }

    /// The largest cosine between `r` and a free column of `J` (0 for a zero column).
    fn gradient_cosine(&self, free: &[bool]) -> f64 {
        let r_norm = self.r.iter().map(|v| v * v).sum::<f64>().sqrt();
        (0..self.n)
            .filter(|&j| free[j] && self.a[j * self.n + j] > 0.0)
            .map(|j| self.g[j].abs() / (r_norm * self.a[j * self.n + j].sqrt()))
            .fold(0.0, f64::max)
    }

    /// Solve `(A + mu D^2) h = -g` on the free parameters (zero elsewhere); `None` if the
    /// damped matrix is not positive definite to working precision.
    fn damped_step(&self, free: &[bool]) -> Option<Vec<f64>> {
        let idx: Vec<usize> = (0..self.n).filter(|&j| free[j]).collect();
        let k = idx.len();
        let mut h = vec![0.0; self.n];
        if k == 0 {
            return Some(h);
        }
        let mat = Mat::from_fn(k, k, |a, b| {
            let (i, j) = (idx[a], idx[b]);
            self.a[i * self.n + j] + if a == b { self.mu * self.scale[i] * self.scale[i] } else { 0.0 }
        });
        let llt = mat.llt(Side::Lower).ok()?;
        let mut rhs = Mat::from_fn(k, 1, |a, _| -self.g[idx[a]]);
        llt.solve_in_place(rhs.as_mut());
        for (a, &j) in idx.iter().enumerate() {
            h[j] = rhs[(a, 0)];
        }
        h.iter().all(|v| v.is_finite()).then_some(h)
    }

    /// The fall of the Gauss-Newton model of the cost along `h`: `-(g.h + h.A.h / 2)`.
    fn predicted_reduction(&self, h: &[f64]) -> f64 {
        let n = self.n;
        let gh: f64 = self.g.iter().zip(h).map(|(a, b)| a * b).sum();
        let hah: f64 = (0..n).map(|i| h[i] * (0..n).map(|j| self.a[i * n + j] * h[j]).sum::<f64>()).sum();
        -(gh + 0.5 * hah)
    }

    fn reject(&mut self) {
        self.mu *= self.nu;
        self.nu *= 2.0;
    }

    fn accept(&mut self, p: &[f64], r: &[f64], jac: &[f64]) {
        self.p.copy_from_slice(p);
        self.r.copy_from_slice(r);
        self.jac.copy_from_slice(jac);
        self.cost = 0.5 * r.iter().map(|v| v * v).sum::<f64>();
        self.form();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's function as residuals `(10 (y - x^2), 1 - x)`.
    struct Banana;
    impl Residuals for Banana {
        fn n_params(&self) -> usize {
            2
        }
        fn n_residuals(&self) -> usize {
            2
        }
        fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
            r[0] = 10.0 * (p[1] - p[0] * p[0]);
            r[1] = 1.0 - p[0];
            true
        }
        fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
            self.residuals(p, r);
            jac.copy_from_slice(&[-20.0 * p[0], 10.0, -1.0, 0.0]);
            true
        }
    }

    #[test]
    fn rosenbrock_residuals_reach_the_minimum() {
        let report = LevenbergMarquardt::default().minimize(&mut Banana, &[-1.2, 1.0]).unwrap();
        assert!(report.stop.converged(), "{:?}", report.stop);
        assert!((report.p[0] - 1.0).abs() < 1e-10 && (report.p[1] - 1.0).abs() < 1e-10, "{:?}", report.p);
    }

    /// With the minimum outside the box, the fit ends on the bound with the other parameter
    /// at its constrained optimum: for `x <= 0.5`, `y = x^2 = 0.25`.
    #[test]
    fn a_bound_holds_and_the_free_parameter_is_optimal() {
        let lm = LevenbergMarquardt::default().bounds(vec![-2.0, -2.0], vec![0.5, 2.0]);
        let report = lm.minimize(&mut Banana, &[-1.2, 1.0]).unwrap();
        assert!(report.stop.converged(), "{:?}", report.stop);
        assert_eq!(report.p[0], 0.5);
        assert!((report.p[1] - 0.25).abs() < 1e-10, "{:?}", report.p);
    }

    /// `r = tanh(p - 3)`, which cannot be evaluated above 3.5 (a solve that blows up).
    /// From `p = 1` the Gauss-Newton step lands near 14: it must be rejected, the damping
    /// raised, and the minimum reached from below.
    struct Walled {
        failed: usize,
    }
    impl Residuals for Walled {
        fn n_params(&self) -> usize {
            1
        }
        fn n_residuals(&self) -> usize {
            1
        }
        fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
            r[0] = (p[0] - 3.0).tanh();
            self.failed += usize::from(p[0] > 3.5);
            p[0] <= 3.5
        }
        fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
            jac[0] = 1.0 / (p[0] - 3.0).cosh().powi(2);
            self.residuals(p, r)
        }
    }

    #[test]
    fn failed_evaluations_are_rejected_steps() {
        let mut walled = Walled { failed: 0 };
        let report = LevenbergMarquardt::default().minimize(&mut walled, &[1.0]).unwrap();
        assert!(report.stop.converged(), "{:?}", report.stop);
        assert!((report.p[0] - 3.0).abs() < 1e-10, "{:?}", report.p);
        assert!(walled.failed > 0, "some trial steps should have failed");
        let err = LevenbergMarquardt::default().minimize(&mut walled, &[4.0]).unwrap_err();
        assert!(err.to_string().contains("starting parameters"), "{err}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let lm = LevenbergMarquardt::default();
        assert!(lm.minimize(&mut Banana, &[1.0]).is_err());
        assert!(lm.minimize(&mut Banana, &[f64::NAN, 1.0]).is_err());
        let crossed = LevenbergMarquardt::default().bounds(vec![1.0, 0.0], vec![0.0, 1.0]);
        assert!(crossed.minimize(&mut Banana, &[0.5, 0.5]).unwrap_err().to_string().contains("lower bound"));
    }
}
