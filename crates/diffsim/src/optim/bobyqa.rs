//! BOBYQA (Powell 2009): bound-constrained minimisation from function values alone, by
//! quadratic models interpolated through `2n + 1` points and a trust region that shrinks
//! from `rho_begin` to `rho_end`.
//!
//! The algorithm is the `bobyqa` crate's (a faithful port of PRIMA's reference
//! implementation). What this module adds is what a fit needs around it:
//!
//! - **Scaling.** BOBYQA's trust region is a ball, so parameters of different units would
//!   be searched on one length scale. Each parameter with finite bounds is mapped to
//!   `[0, 1]`; one without is divided by `max(|p0|, 1)`. `rho_begin` and `rho_end` are in
//!   these units.
//! - **Fixed parameters.** A parameter whose bounds are equal is held there (BOBYQA needs
//!   a box of positive width); the others are searched.
//! - **Failed evaluations.** A loss that is NaN or infinite (a solve that blew up) counts
//!   as a very large value, so the search steps away from it.

use super::least_squares::{
    checked_start, cost_at, expand_bounds, report_at, unsolvable_start, LeastSquaresReport, LeastSquaresSolver,
    LeastSquaresStop, Residuals,
};
use crate::error::{DiffsimError, Result};

/// BOBYQA with box bounds (see the module docs).
///
/// As a [`LeastSquaresSolver`] it minimises `1/2 |r|^2` from the residuals alone (one
/// Jacobian at the end, for the standard errors); [`Bobyqa::minimize`] takes any scalar
/// loss.
///
/// ```
/// use diffsim::optim::Bobyqa;
///
/// // A quadratic bowl whose minimum (3, -1) lies outside the box [0, 2] x [-2, 2].
/// let bobyqa = Bobyqa::default().bounds(vec![0.0, -2.0], vec![2.0, 2.0]);
/// let run = bobyqa.minimize(|x| (x[0] - 3.0).powi(2) + (x[1] + 1.0).powi(2), &[1.0, 1.0]).unwrap();
/// assert!((run.x[0] - 2.0).abs() < 1e-9 && (run.x[1] + 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct Bobyqa {
    /// Lower bounds (`-inf` for none); empty for no bounds.
    pub lower: Vec<f64>,
    /// Upper bounds (`+inf` for none); empty for no bounds.
    pub upper: Vec<f64>,
    /// The first trust-region radius, in scaled units (a box is `[0, 1]`); at most 0.5.
    pub rho_begin: f64,
    /// The last trust-region radius, in scaled units: the accuracy of the parameters.
    pub rho_end: f64,
    /// The most loss evaluations.
    pub max_evals: usize,
}

impl Default for Bobyqa {
    /// `rho_begin` 0.1 (a tenth of each box), `rho_end` 1e-9, 2000 evaluations.
    fn default() -> Self {
        Self { lower: Vec::new(), upper: Vec::new(), rho_begin: 0.1, rho_end: 1e-9, max_evals: 2000 }
    }
}

/// The outcome of [`Bobyqa::minimize`].
#[derive(Clone, Debug)]
pub struct BobyqaReport {
    /// The best point found.
    pub x: Vec<f64>,
    /// The loss there.
    pub loss: f64,
    /// Loss evaluations.
    pub evaluations: usize,
    /// Why it stopped: [`LeastSquaresStop::Step`] when the trust region reached
    /// `rho_end`, [`LeastSquaresStop::MaxIters`] when `max_evals` ran out,
    /// [`LeastSquaresStop::NoProgress`] when the interpolation model degenerated.
    pub stop: LeastSquaresStop,
}

impl Bobyqa {
    /// With box bounds (each `lower[j] <= upper[j]`; infinities for none).
    pub fn bounds(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.lower = lower;
        self.upper = upper;
        self
    }

    /// With the most loss evaluations.
    pub fn max_evals(mut self, max_evals: usize) -> Self {
        self.max_evals = max_evals;
        self
    }

    /// With the last trust-region radius (scaled units).
    pub fn rho_end(mut self, rho_end: f64) -> Self {
        self.rho_end = rho_end;
        self
    }

    /// Minimise `loss` from `x0` (clamped into the bounds) within the bounds.
    ///
    /// Errors: bounds or settings that do not fit, a non-finite `x0`, or a loss that is not
    /// finite anywhere BOBYQA looked.
    pub fn minimize(&self, mut loss: impl FnMut(&[f64]) -> f64, x0: &[f64]) -> Result<BobyqaReport> {
        let n = x0.len();
        let (lo, hi) = expand_bounds(&self.lower, &self.upper, n)?;
        let start = checked_start(x0, &lo, &hi)?;
        if !(self.rho_begin > 0.0 && self.rho_begin <= 0.5 && self.rho_end > 0.0 && self.rho_end <= self.rho_begin) {
            return Err(DiffsimError::InvalidOption {
                name: "rho_begin, rho_end",
                why: format!(
                    "{} and {}; give 0 < rho_end <= rho_begin <= 0.5 (scaled units: a box is [0, 1])",
                    self.rho_begin, self.rho_end
                ),
            });
        }
        let scaling = Scaling::new(&lo, &hi, &start);
        let mut z = scaling.to_scaled(&start);
        let (zlo, zhi) = scaling.scaled_bounds();
        let mut x = start.clone();
        let mut evaluations = 0;
        let mut scaled_loss = |z: &[f64]| {
            scaling.to_original(z, &mut x);
            evaluations += 1;
            loss(&x)
        };
        if z.is_empty() {
            // Every parameter is fixed: nothing to search.
            let value = scaled_loss(&z);
            return Ok(BobyqaReport { x: start, loss: value, evaluations, stop: LeastSquaresStop::Step });
        }
        let nz = z.len();
        let max_fun = self.max_evals.max(2 * nz + 3);
        let config =
            bobyqa::Config { rho_begin: self.rho_begin, rho_end: self.rho_end, max_fun, ..bobyqa::Config::new(nz) };
        let mut solver = bobyqa::Bobyqa::new(nz, config)
            .map_err(|status| DiffsimError::InvalidOption { name: "bobyqa", why: status.to_string() })?;
        let outcome = solver.minimize(&mut scaled_loss, &mut z, &zlo, &zhi);
        if !outcome.found_finite() {
            return Err(unsolvable_start());
        }
        let stop = match outcome.status {
            bobyqa::Status::Converged | bobyqa::Status::TargetReached => LeastSquaresStop::Step,
            bobyqa::Status::MaxFunReached => LeastSquaresStop::MaxIters,
            bobyqa::Status::ModelDegenerate => LeastSquaresStop::NoProgress,
            bobyqa::Status::InvalidArgs => {
                return Err(DiffsimError::InvalidOption { name: "bobyqa", why: outcome.status.to_string() })
            }
        };
        let mut best = start;
        scaling.to_original(&z, &mut best);
        Ok(BobyqaReport { x: best, loss: outcome.f, evaluations: outcome.n_eval, stop })
    }
}

impl LeastSquaresSolver for Bobyqa {
    fn name(&self) -> &str {
        "bobyqa"
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
        if p0.len() != problem.n_params() {
            return Err(DiffsimError::SizeMismatch { what: "p0", got: p0.len(), expected: problem.n_params() });
        }
        let mut r = vec![0.0; problem.n_residuals()];
        let run = self.minimize(|p| cost_at(problem, p, &mut r), p0)?;
        Ok(report_at(problem, run.x, run.evaluations, run.evaluations, run.stop))
    }
}

/// The map between a parameter vector and BOBYQA's scaled, free variables.
struct Scaling {
    /// For each free parameter: its index and `p = offset + scale z`.
    free: Vec<(usize, f64, f64)>,
    /// The bounds of the scaled variables.
    zlo: Vec<f64>,
    zhi: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// The values of the fixed parameters (and the template for the others).
    template: Vec<f64>,
}

impl Scaling {
    /// A box of finite width maps to `[0, 1]`; otherwise `p = max(|p0|, 1) z`, with any
    /// one-sided bound scaled alike. Zero width: fixed.
    fn new(lo: &[f64], hi: &[f64], start: &[f64]) -> Self {
        let (mut free, mut zlo, mut zhi) = (Vec::new(), Vec::new(), Vec::new());
        for j in 0..start.len() {
            let width = hi[j] - lo[j];
            if width == 0.0 {
                continue;
            }
            if width.is_finite() {
                free.push((j, lo[j], width));
                zlo.push(0.0);
                zhi.push(1.0);
            } else {
                let scale = start[j].abs().max(1.0);
                free.push((j, 0.0, scale));
                zlo.push(lo[j] / scale);
                zhi.push(hi[j] / scale);
            }
        }
        Self { free, zlo, zhi, lo: lo.to_vec(), hi: hi.to_vec(), template: start.to_vec() }
    }

    fn to_scaled(&self, p: &[f64]) -> Vec<f64> {
        self.free.iter().map(|&(j, offset, scale)| (p[j] - offset) / scale).collect()
    }

    /// The parameters at `z`, inside the bounds despite rounding.
    fn to_original(&self, z: &[f64], p: &mut [f64]) {
        p.copy_from_slice(&self.template);
        for (&(j, offset, scale), zj) in self.free.iter().zip(z) {
            p[j] = (offset + scale * zj).clamp(self.lo[j], self.hi[j]);
        }
    }

    fn scaled_bounds(&self) -> (Vec<f64>, Vec<f64>) {
        (self.zlo.clone(), self.zhi.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's function in units a million apart: the scaling makes them one problem.
    fn scaled_rosenbrock(x: &[f64]) -> f64 {
        let (a, b) = (x[0], x[1] * 1e-6);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn finds_a_minimum_inside_the_box_whatever_the_units() {
        let bobyqa = Bobyqa::default().bounds(vec![-2.0, -2e6], vec![2.0, 2e6]);
        let run = bobyqa.minimize(scaled_rosenbrock, &[-1.2, 1e6]).unwrap();
        assert_eq!(run.stop, LeastSquaresStop::Step);
        assert!((run.x[0] - 1.0).abs() < 1e-7 && (run.x[1] / 1e6 - 1.0).abs() < 1e-7, "{:?}", run.x);
    }

    #[test]
    fn holds_fixed_parameters_and_keeps_one_sided_bounds() {
        // Minimum of (x - 3)^2 + (y + 1)^2 + (z - 5)^2 with y fixed at 0 and z >= 6.
        let f = |x: &[f64]| (x[0] - 3.0).powi(2) + (x[1] + 1.0).powi(2) + (x[2] - 5.0).powi(2);
        let bobyqa =
            Bobyqa::default().bounds(vec![f64::NEG_INFINITY, 0.0, 6.0], vec![f64::INFINITY, 0.0, f64::INFINITY]);
        let mut seen_outside = false;
        let run = bobyqa
            .minimize(
                |x| {
                    seen_outside |= x[1] != 0.0 || x[2] < 6.0;
                    f(x)
                },
                &[0.0, 0.0, 7.0],
            )
            .unwrap();
        assert!(!seen_outside, "a point outside the bounds was evaluated");
        assert!((run.x[0] - 3.0).abs() < 1e-7 && run.x[1] == 0.0 && (run.x[2] - 6.0).abs() < 1e-9, "{:?}", run.x);
    }

    #[test]
    fn steps_away_from_points_where_the_loss_fails() {
        // A loss undefined (NaN) for x < 0.5, minimum at 1.
        let run = Bobyqa::default()
            .bounds(vec![0.0], vec![4.0])
            .minimize(|x| if x[0] < 0.5 { f64::NAN } else { (x[0] - 1.0).powi(2) }, &[3.0])
            .unwrap();
        assert!((run.x[0] - 1.0).abs() < 1e-7, "{:?}", run.x);
    }

    #[test]
    fn bad_settings_and_hopeless_losses_are_errors() {
        let quad = |x: &[f64]| x[0] * x[0];
        assert!(Bobyqa { rho_begin: 0.8, ..Bobyqa::default() }.minimize(quad, &[1.0]).is_err());
        assert!(Bobyqa::default().rho_end(1.0).minimize(quad, &[1.0]).is_err());
        assert!(Bobyqa::default().bounds(vec![1.0], vec![0.0]).minimize(quad, &[0.5]).is_err());
        assert!(Bobyqa::default().minimize(quad, &[f64::NAN]).is_err());
        assert!(Bobyqa::default().minimize(|_| f64::NAN, &[1.0]).is_err());
        let budget = Bobyqa::default().max_evals(10).minimize(scaled_rosenbrock, &[-1.2, 1e6]).unwrap();
        assert_eq!((budget.stop, budget.evaluations), (LeastSquaresStop::MaxIters, 10));
    }
}
