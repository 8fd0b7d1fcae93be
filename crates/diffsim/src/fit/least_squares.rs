//! Parameter estimation by least squares with forward sensitivities: the model is solved
//! once over the data's span (single shooting), the residuals are the weighted differences
//! `(h(u(t_i)) - y_i) / sigma_i` over every value present, and their Jacobian comes from
//! the same solve's sensitivities `du/dp` (and `du/du0` when the initial state is fitted
//! too). Levenberg-Marquardt ([`LevenbergMarquardt`](crate::optim::LevenbergMarquardt)) then needs one sensitivity solve per
//! iteration and one plain solve per trial step, which is what makes fits with few
//! parameters and many data points cheap.

use super::data::TimeSeries;
use super::spec::{observed_residual, observed_sensitivity, write_ridge, FitProblem};
use super::uncertainty::Uncertainty;
use crate::error::{DiffsimError, Result};
use crate::optim::{LeastSquaresSolver, LeastSquaresStop, Residuals};
use crate::problem::{Model, Problem};
use crate::sensitivity::{forward_sensitivities_wrt, Wrt};
use crate::solve::{solve, Algorithm, RetCode, SaveAt, SolveOptions};

/// The weighted residuals of a single-shooting fit, as a [`Residuals`] problem over the
/// parameters (then the initial state, when fitted).
pub struct ShootingResiduals<'a, M> {
    problem: Problem<M>,
    data: &'a TimeSeries,
    /// `H`, `columns x n`.
    h: Vec<f64>,
    alg: Algorithm,
    opts: SolveOptions,
    fit_u0: bool,
    /// The (row, column) of every value present, in residual order.
    present: Vec<(usize, usize)>,
    /// The ridge weight (its residuals follow the data's).
    l2: f64,
}

impl<'a, M: Model + Clone> ShootingResiduals<'a, M> {
    /// The residuals of `fit`.
    pub fn new(fit: &FitProblem<'a, M>) -> Result<Self> {
        let h = fit.checked_observation()?;
        let data = fit.data;
        let present = data.present(0..data.t().len());
        let n_fit = fit.n_fitted();
        if present.len() + fit.n_ridge() < n_fit {
            return Err(DiffsimError::Data {
                path: data.source().into(),
                line: 0,
                column: 0,
                why: format!(
                    "{} values present for {n_fit} unknowns; a fit needs at least as many measurements as parameters \
                     (or a ridge weight l2 for a network's weights)",
                    present.len()
                ),
            });
        }
        let mut problem = fit.problem.clone();
        problem.tspan = (problem.tspan.0, data.t()[data.t().len() - 1]);
        let opts = SolveOptions { saveat: SaveAt::Times(data.t().to_vec()), ..fit.opts.clone() };
        Ok(Self { problem, data, h, alg: fit.alg, opts, fit_u0: fit.fit_u0, present, l2: fit.l2 })
    }

    /// Set the problem's parameters (and initial state) from the fit's vector; false if
    /// they are not acceptable (not finite).
    fn set(&mut self, x: &[f64]) -> bool {
        let np = self.problem.p.len();
        self.problem.set_p(&x[..np]).is_ok() && (!self.fit_u0 || self.problem.set_u0(&x[np..]).is_ok())
    }

    /// The fit's starting vector: `p`, then `u0` when fitted.
    pub fn start(&self) -> Vec<f64> {
        let mut x = self.problem.p.clone();
        if self.fit_u0 {
            x.extend_from_slice(&self.problem.u0);
        }
        x
    }
}

impl<M: Model + Clone> Residuals for ShootingResiduals<'_, M> {
    fn n_params(&self) -> usize {
        self.problem.p.len() + if self.fit_u0 { self.problem.u0.len() } else { 0 }
    }

    fn n_residuals(&self) -> usize {
        self.present.len() + if self.l2 > 0.0 { self.problem.p.len() } else { 0 }
    }

    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> bool {
        if !self.set(x) {
            return false;
        }
        let Ok(sol) = solve(&self.problem, self.alg, &self.opts) else { return false };
        if sol.retcode() != RetCode::Success || sol.len() != self.data.t().len() {
            return false;
        }
        for (k, &at) in self.present.iter().enumerate() {
            r[k] = observed_residual(&self.h, self.data, at, sol.u(at.0));
        }
        if self.l2 > 0.0 {
            write_ridge(self.l2, &self.problem.p, &mut r[self.present.len()..], None, 0);
        }
        true
    }

    fn jacobian(&mut self, x: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
        if !self.set(x) {
            return false;
        }
        let wrt = if self.fit_u0 { Wrt::ParametersAndInitialState } else { Wrt::Parameters };
        let Ok(s) = forward_sensitivities_wrt(&self.problem, self.alg, &self.opts, wrt) else { return false };
        if s.retcode != RetCode::Success || s.len() != self.data.t().len() {
            return false;
        }
        let (np, cols) = (self.problem.p.len(), self.n_params());
        for (k, &at) in self.present.iter().enumerate() {
            r[k] = observed_residual(&self.h, self.data, at, s.u(at.0));
            let row = &mut jac[k * cols..(k + 1) * cols];
            observed_sensitivity(&self.h, self.data, at, s.du_dp(at.0), &mut row[..np]);
            if self.fit_u0 {
                observed_sensitivity(&self.h, self.data, at, s.du_du0(at.0), &mut row[np..]);
            }
        }
        if self.l2 > 0.0 {
            let m = self.present.len();
            write_ridge(self.l2, &self.problem.p, &mut r[m..], Some(&mut jac[m * cols..]), cols);
        }
        true
    }
}

/// The result of [`fit_least_squares`].
#[derive(Clone, Debug)]
pub struct LeastSquaresFit {
    /// The fitted parameters.
    pub p: Vec<f64>,
    /// The initial state (fitted when asked, else the problem's).
    pub u0: Vec<f64>,
    /// `1/2 sum r_i^2` of the weighted residuals.
    pub cost: f64,
    /// Levenberg-Marquardt iterations.
    pub iters: usize,
    /// Why it stopped.
    pub stop: LeastSquaresStop,
    /// Standard errors and correlations of `p` (then `u0` when fitted), in that order.
    pub uncertainty: Uncertainty,
    /// The number of residuals (values present).
    pub n_residuals: usize,
}

impl LeastSquaresFit {
    /// True when a local minimum was found.
    pub fn converged(&self) -> bool {
        self.stop.converged()
    }
}

/// Fit the parameters (and with [`FitProblem::fit_u0`] the initial state) by
/// Levenberg-Marquardt with forward sensitivities, from the problem's values.
///
/// ```
/// use diffsim::fit::{fit_least_squares, FitProblem, TimeSeries};
/// use diffsim::optim::LevenbergMarquardt;
/// use diffsim::{Model, Problem, Scalar};
///
/// /// `u' = -k u`, measured at t = 1, 2, 3 from a decay with k = 0.7.
/// #[derive(Clone)]
/// struct Decay;
/// impl Model for Decay {
///     fn n_states(&self) -> usize { 1 }
///     fn n_params(&self) -> usize { 1 }
///     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) { du[0] = -p[0] * u[0]; }
/// }
/// let t = vec![1.0, 2.0, 3.0];
/// let y = t.iter().map(|t: &f64| (-0.7 * t).exp()).collect();
/// let data = TimeSeries::new(t, vec!["u".into()], y, None).unwrap();
/// let problem = Problem::new(Decay, vec![1.0], vec![0.2], (0.0, 3.0)).unwrap();
/// let fit = fit_least_squares(&FitProblem::new(&problem, &data), &LevenbergMarquardt::default()).unwrap();
/// assert!(fit.converged() && (fit.p[0] - 0.7).abs() < 1e-6);
/// ```
pub fn fit_least_squares<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
) -> Result<LeastSquaresFit> {
    let mut residuals = ShootingResiduals::new(fit)?;
    let start = residuals.start();
    let report = solver.solve(&mut residuals, &start)?;
    let (m, n) = (residuals.n_residuals(), residuals.n_params());
    let uncertainty = Uncertainty::from_jacobian(&report.jacobian, m, n, report.cost, fit.data.has_sigma());
    Ok(LeastSquaresFit::from_report(fit, report, uncertainty, m))
}

/// Single shooting with `solver` from a warm start's parameters (and initial state): the
/// refined fit, with the warm start's iterations added.
pub(crate) fn refine_from<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    warm: &LeastSquaresFit,
    solver: &dyn LeastSquaresSolver,
) -> Result<LeastSquaresFit> {
    let problem = fit.problem.remake(Some(warm.u0.clone()), Some(warm.p.clone()))?;
    let mut result = fit_least_squares(&FitProblem { problem: &problem, ..fit.clone() }, solver)?;
    result.iters += warm.iters;
    Ok(result)
}

impl LeastSquaresFit {
    /// Split an optimizer report into the parameters and initial state of `fit`.
    pub(crate) fn from_report<M>(
        fit: &FitProblem<'_, M>,
        report: crate::optim::LeastSquaresReport,
        uncertainty: Uncertainty,
        n_residuals: usize,
    ) -> Self {
        let (np, n) = (fit.problem.p.len(), fit.problem.u0.len());
        Self {
            p: report.p[..np].to_vec(),
            u0: if fit.fit_u0 { report.p[np..np + n].to_vec() } else { fit.problem.u0.clone() },
            cost: report.cost,
            iters: report.iters,
            stop: report.stop,
            uncertainty,
            n_residuals,
        }
    }
}
