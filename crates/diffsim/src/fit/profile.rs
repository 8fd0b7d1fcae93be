//! Profile likelihood for one fitted value: the best cost with that value held fixed at
//! each point of a grid, every other value refitted, and the likelihood-ratio confidence
//! interval it gives.
//!
//! Standard errors ([`Uncertainty`](super::Uncertainty)) assume the model is linear in its
//! parameters near the optimum. Where it is not (a rate that saturates, a parameter only a
//! few data points feel), the profile shows the truth: an asymmetric interval, or a flat
//! profile that never crosses the threshold (the data do not bound the value at all).
//!
//! The threshold is the cost at the optimum plus `chi2_1(level) s^2 / 2`, with `s^2` the
//! residual variance (1 when the data carry standard deviations). For a model linear in its
//! parameters the interval is exactly the Wald interval `+/- z se`. The profile walks
//! outwards from the optimum in both directions, each fit warm-started from its neighbour,
//! and the crossing is found by quadratic interpolation through the three profile points
//! around it (exact for a quadratic profile).

use super::least_squares::{fit_least_squares, LeastSquaresFit};
use super::spec::FitProblem;
use crate::error::{DiffsimError, Result};
use crate::optim::LeastSquaresSolver;
use crate::problem::Model;

/// The 95 % point of the chi-square distribution with one degree of freedom (1.959964^2).
pub const CHI2_1_95: f64 = 3.841_458_820_694_124;

/// Where to profile (see [`profile_likelihood`]).
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    /// Grid points on each side of the optimum (default 10).
    pub points_per_side: usize,
    /// How far the grid reaches on each side, in standard errors (default 4), cut at the
    /// bounds. When the standard error is not finite, half the value's magnitude (at least
    /// 1) is used instead.
    pub width: f64,
    /// The chi-square quantile that sets the threshold (default [`CHI2_1_95`]: a 95 %
    /// interval).
    pub chi2: f64,
    /// The grid itself, overriding `points_per_side` and `width`.
    pub values: Option<Vec<f64>>,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self { points_per_side: 10, width: 4.0, chi2: CHI2_1_95, values: None }
    }
}

/// The profile of one fitted value (see the module docs).
#[derive(Clone, Debug)]
pub struct Profile {
    /// The index of the profiled value among the fitted ones (parameters, then `u0`).
    pub index: usize,
    /// The unconstrained fit.
    pub best: LeastSquaresFit,
    /// The grid, ascending (the optimum among them).
    pub values: Vec<f64>,
    /// The best cost at each grid value (`inf` where the fit failed).
    pub cost: Vec<f64>,
    /// The cost below which a value lies inside the confidence interval.
    pub threshold: f64,
    /// The confidence interval; an end is infinite when the profile stays below the
    /// threshold up to the end of the grid (the data do not bound the value on that side).
    pub interval: (f64, f64),
}

/// Profile the fitted value `index` (a parameter, or with [`FitProblem::fit_u0`] an
/// initial state after the parameters) by single shooting with `solver`.
///
/// Errors: an index that is not a fitted value, a grid value outside the bounds or not
/// finite, or an unconstrained fit that fails.
///
/// ```
/// use diffsim::fit::{profile_likelihood, FitProblem, ProfileOptions, TimeSeries};
/// use diffsim::optim::LevenbergMarquardt;
/// use diffsim::{Model, Problem, Scalar};
///
/// /// `u' = a`: a straight line, so the profile is a parabola and the interval is `+/- 1.96 se`.
/// #[derive(Clone)]
/// struct Drift;
/// impl Model for Drift {
///     fn n_states(&self) -> usize { 1 }
///     fn n_params(&self) -> usize { 1 }
///     fn rhs<T: Scalar>(&self, du: &mut [T], _u: &[T], p: &[T], _t: T) { du[0] = p[0]; }
/// }
/// let t = vec![1.0, 2.0, 3.0, 4.0];
/// let y = vec![0.9, 2.1, 3.0, 3.9];
/// let data = TimeSeries::new(t, vec!["u".into()], y, None).unwrap();
/// let problem = Problem::new(Drift, vec![0.0], vec![0.5], (0.0, 4.0)).unwrap();
/// let fit = FitProblem::new(&problem, &data);
/// let profile = profile_likelihood(&fit, &LevenbergMarquardt::default(), 0, &ProfileOptions::default()).unwrap();
/// let (a, se) = (profile.best.p[0], profile.best.uncertainty.stderr[0]);
/// assert!((profile.interval.0 - (a - 1.959964 * se)).abs() < 1e-5 * se);
/// assert!((profile.interval.1 - (a + 1.959964 * se)).abs() < 1e-5 * se);
/// ```
pub fn profile_likelihood<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    index: usize,
    options: &ProfileOptions,
) -> Result<Profile> {
    let n = fit.n_fitted();
    if index >= n {
        return Err(DiffsimError::InvalidOption {
            name: "profile",
            why: format!("value {index} is not fitted; give an index below {n} (the parameters, then u0 when fitted)"),
        });
    }
    if !(options.chi2 > 0.0 && options.chi2.is_finite()) {
        return Err(DiffsimError::InvalidOption {
            name: "chi2",
            why: format!("{}; give a positive quantile", options.chi2),
        });
    }
    let best = fit_least_squares(fit, solver)?;
    let (lo, hi) = crate::optim::expand_bounds(solver.lower(), solver.upper(), n)?;
    let x_best = fitted_values(&best, fit.fit_u0);
    let (below, above) = grid(&best, &x_best, index, lo[index], hi[index], options)?;
    let threshold = best.cost + 0.5 * options.chi2 * best.uncertainty.residual_variance;
    // Walk outwards on each side, each fit from its neighbour's optimum.
    let side = |values: &[f64]| -> Result<Vec<f64>> {
        let mut x = x_best.clone();
        let mut costs = Vec::with_capacity(values.len());
        for &v in values {
            let (mut l, mut h) = (lo.clone(), hi.clone());
            (l[index], h[index]) = (v, v);
            x[index] = v;
            let fixed = solver.with_bounds(l, h);
            let (p, u0) = x.split_at(fit.problem.p.len());
            let problem = fit.problem.remake(fit.fit_u0.then(|| u0.to_vec()), Some(p.to_vec()))?;
            let stage = FitProblem { problem: &problem, ..fit.clone() };
            match fit_least_squares(&stage, fixed.as_ref()) {
                Ok(f) => {
                    x = fitted_values(&f, fit.fit_u0);
                    costs.push(f.cost);
                }
                Err(_) => costs.push(f64::INFINITY),
            }
        }
        Ok(costs)
    };
    let (cost_below, cost_above) = (side(&below)?, side(&above)?);
    let lower_end = crossing(x_best[index], best.cost, &below, &cost_below, threshold, f64::NEG_INFINITY);
    let upper_end = crossing(x_best[index], best.cost, &above, &cost_above, threshold, f64::INFINITY);
    let values: Vec<f64> =
        below.iter().rev().copied().chain(std::iter::once(x_best[index])).chain(above.iter().copied()).collect();
    let cost: Vec<f64> =
        cost_below.iter().rev().copied().chain(std::iter::once(best.cost)).chain(cost_above.iter().copied()).collect();
    Ok(Profile { index, best, values, cost, threshold, interval: (lower_end, upper_end) })
}

/// The fitted values of a fit: the parameters, then the initial state when fitted.
fn fitted_values(f: &LeastSquaresFit, fit_u0: bool) -> Vec<f64> {
    let mut x = f.p.clone();
    if fit_u0 {
        x.extend_from_slice(&f.u0);
    }
    x
}

/// The grid below the optimum (descending, outwards) and above it (ascending).
fn grid(
    best: &LeastSquaresFit,
    x_best: &[f64],
    index: usize,
    lo: f64,
    hi: f64,
    options: &ProfileOptions,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let centre = x_best[index];
    let values = match &options.values {
        Some(v) => v.clone(),
        None => {
            let se = best.uncertainty.stderr[index];
            let reach = if se.is_finite() && se > 0.0 { options.width * se } else { 0.5 * centre.abs().max(1.0) };
            let k = options.points_per_side.max(1);
            (1..=k)
                .flat_map(|i| {
                    let d = reach * i as f64 / k as f64;
                    [centre - d, centre + d]
                })
                .filter(|v| (lo..=hi).contains(v))
                .collect()
        }
    };
    if let Some(bad) = values.iter().find(|v| !v.is_finite() || !(lo..=hi).contains(*v)) {
        return Err(DiffsimError::InvalidOption {
            name: "profile values",
            why: format!("{bad} is not a finite value within the bounds [{lo}, {hi}]"),
        });
    }
    let mut below: Vec<f64> = values.iter().copied().filter(|&v| v < centre).collect();
    let mut above: Vec<f64> = values.iter().copied().filter(|&v| v > centre).collect();
    below.sort_by(|a, b| b.total_cmp(a));
    above.sort_by(f64::total_cmp);
    Ok((below, above))
}

/// Where the profile along one side (values moving outwards from `centre`) first rises
/// through `threshold`: the root of the parabola through the two points inside and the one
/// outside (linear when only one point is inside); `unbounded` when it never does.
fn crossing(centre: f64, cost_centre: f64, values: &[f64], cost: &[f64], threshold: f64, unbounded: f64) -> f64 {
    let mut xs = vec![centre];
    let mut ys = vec![cost_centre];
    xs.extend_from_slice(values);
    ys.extend_from_slice(cost);
    let Some(k) = (1..xs.len()).find(|&k| ys[k] > threshold) else { return unbounded };
    let (x1, y1, x2, y2) = (xs[k - 1], ys[k - 1], xs[k], ys[k]);
    let linear = if y2.is_finite() { x1 + (threshold - y1) * (x2 - x1) / (y2 - y1) } else { x1 };
    if k < 2 || !y2.is_finite() {
        return linear;
    }
    // Newton's divided differences through (x0, y0), (x1, y1), (x2, y2), then the root in
    // [x1, x2] of q(x) - threshold.
    let (x0, y0) = (xs[k - 2], ys[k - 2]);
    let d01 = (y1 - y0) / (x1 - x0);
    let d12 = (y2 - y1) / (x2 - x1);
    let c = (d12 - d01) / (x2 - x0);
    // q(x) = y1 + b (x - x1) + c (x - x1)^2 with b = d01 + c (x1 - x0).
    let b = d01 + c * (x1 - x0);
    let g = y1 - threshold;
    let (lo, hi) = (x1.min(x2), x1.max(x2));
    let roots = if c.abs() < 1e-300 {
        vec![x1 - g / b]
    } else {
        let disc = b * b - 4.0 * c * g;
        if disc < 0.0 {
            return linear;
        }
        let s = disc.sqrt();
        vec![x1 + (-b + s) / (2.0 * c), x1 + (-b - s) / (2.0 * c)]
    };
    roots.into_iter().find(|r| (lo..=hi).contains(r)).unwrap_or(linear)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_is_exact_for_a_parabola_and_infinite_for_a_flat_profile() {
        let q = |x: f64| 1.0 + 2.0 * (x - 3.0).powi(2);
        let values = [3.5, 4.0, 4.5, 5.0];
        let cost: Vec<f64> = values.iter().map(|&x| q(x)).collect();
        // q = 4 at x = 3 + sqrt(1.5).
        let got = crossing(3.0, q(3.0), &values, &cost, 4.0, f64::INFINITY);
        assert!((got - (3.0 + 1.5f64.sqrt())).abs() < 1e-12, "{got}");
        let below = [2.5, 2.0, 1.5];
        let cost: Vec<f64> = below.iter().map(|&x| q(x)).collect();
        let got = crossing(3.0, q(3.0), &below, &cost, 4.0, f64::NEG_INFINITY);
        assert!((got - (3.0 - 1.5f64.sqrt())).abs() < 1e-12, "{got}");
        assert_eq!(crossing(3.0, 1.0, &values, &[1.0, 1.0, 1.0, 1.0], 4.0, f64::INFINITY), f64::INFINITY);
        // A failed fit beyond the last inside point: the crossing is placed there.
        assert_eq!(crossing(3.0, 1.0, &values, &[1.5, f64::INFINITY, 9.0, 9.0], 4.0, f64::INFINITY), 3.5);
    }
}
