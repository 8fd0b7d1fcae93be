//! Growing time windows: fit the data up to a short horizon first, then refit over longer
//! ones, each from the last fit's parameters (and initial state), ending with the whole
//! series. A short window sees a nearly monotone response whose loss has one basin; each
//! longer one starts inside the right basin of its own loss. Each window is a single
//! shooting fit by Levenberg-Marquardt.

use super::least_squares::{fit_least_squares, LeastSquaresFit};
use super::spec::FitProblem;
use crate::error::{DiffsimError, Result};
use crate::optim::LeastSquaresSolver;
use crate::problem::Model;

/// Fit over `windows` horizons spaced evenly from the initial time to the last measurement
/// (the last horizon is the whole series); the last fit's result, with the iterations of
/// all windows.
pub fn fit_growing_windows<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    windows: usize,
) -> Result<LeastSquaresFit> {
    if windows == 0 {
        return Err(DiffsimError::InvalidOption { name: "windows", why: "0; give at least 1 window".into() });
    }
    let t0 = fit.problem.tspan.0;
    let t = fit.data.t();
    let end = t[t.len() - 1];
    let (mut p, mut u0) = (fit.problem.p.clone(), fit.problem.u0.clone());
    let mut last: Option<LeastSquaresFit> = None;
    let mut iters = 0;
    for k in 1..=windows {
        let horizon = if k == windows { end } else { t0 + (end - t0) * k as f64 / windows as f64 };
        let data = fit.data.until(horizon);
        // A window too short to determine the unknowns is skipped, not an error.
        if k < windows && (data.t().last().is_none_or(|&tl| tl <= t0) || data.n_present() < fit.n_fitted()) {
            continue;
        }
        let problem = fit.problem.remake(Some(u0.clone()), Some(p.clone()))?;
        let window = FitProblem { problem: &problem, data: &data, ..fit.clone() };
        let result = fit_least_squares(&window, solver)?;
        iters += result.iters;
        p.clone_from(&result.p);
        u0.clone_from(&result.u0);
        last = Some(result);
    }
    let mut fit =
        last.ok_or_else(|| DiffsimError::InvalidOption { name: "windows", why: "no window could be fitted".into() })?;
    fit.iters = iters;
    Ok(fit)
}
