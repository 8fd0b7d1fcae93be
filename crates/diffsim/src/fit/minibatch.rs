//! Minibatching over time windows: each optimizer step sees a few short windows of the
//! data, drawn at random (seeded), instead of the whole series.
//!
//! A window of `window` consecutive measurements is solved from its own first measurement
//! time, starting from the data there for every state the data observe directly, and from
//! the model's trajectory at the current parameters for the others (that trajectory is
//! re-solved every `refresh` steps). The window at the very start of the series starts
//! from the problem's initial state instead (fitted with [`FitProblem::fit_u0`]). So each
//! step's loss is short-horizon and smooth, as in multiple shooting, and costs a few short
//! solves however long the series: the way to fit long records, and to train a network
//! inside the model with a stochastic optimizer such as [`Adam`](crate::optim::Adam).
//!
//! The step's loss is `1/2 |r|^2` over the windows of the batch, its gradient `J^T r` from
//! forward sensitivities of each window (the windows solved in parallel). Bounds are kept by
//! projection. The loss is noisy by design, so the run ends after `iters` steps;
//! [`fit_minibatch_then_shooting`] then refines the result on the whole series with a
//! least-squares solver.

use super::least_squares::{refine_from, LeastSquaresFit, ShootingResiduals};
use super::spec::{FitProblem, Observation};
use super::uncertainty::Uncertainty;
use crate::error::{DiffsimError, Result};
use crate::optim::{LeastSquaresSolver, LeastSquaresStop, Optimizer, Residuals, StepStatus};
use crate::problem::{Model, Problem};
use crate::solve::{solve, SaveAt, SolveOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// How the windows are drawn (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Minibatch {
    /// Measurements per window (at least 2; default 20).
    pub window: usize,
    /// Windows per step (default 4).
    pub batch: usize,
    /// Optimizer steps (default 500).
    pub iters: usize,
    /// Steps between re-solves of the trajectory that starts windows at unobserved states
    /// (default 25).
    pub refresh: usize,
    /// The seed of the window draws.
    pub seed: u64,
    /// Lower bounds of the fitted values (empty: none).
    pub lower: Vec<f64>,
    /// Upper bounds of the fitted values (empty: none).
    pub upper: Vec<f64>,
}

impl Default for Minibatch {
    fn default() -> Self {
        Self { window: 20, batch: 4, iters: 500, refresh: 25, seed: 0, lower: Vec::new(), upper: Vec::new() }
    }
}

/// Fit by `optimizer` on random windows (see the module docs): the values after
/// `minibatch.iters` steps, with the cost and standard errors of single shooting over the
/// whole series there. `stop` is [`LeastSquaresStop::Gradient`] when the optimizer's own
/// convergence test passed, else [`LeastSquaresStop::MaxIters`].
pub fn fit_minibatch<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    optimizer: &mut dyn Optimizer,
    minibatch: &Minibatch,
) -> Result<LeastSquaresFit> {
    let windows = Windows::new(fit, minibatch)?;
    let n_fit = fit.n_fitted();
    let (lo, hi) = crate::optim::expand_bounds(&minibatch.lower, &minibatch.upper, n_fit)?;
    let clamp = |x: &[f64]| -> Vec<f64> { x.iter().enumerate().map(|(j, v)| v.clamp(lo[j], hi[j])).collect() };
    let mut x = clamp(&windows.start_vector());
    let mut rng = ChaCha8Rng::seed_from_u64(minibatch.seed);
    let mut trajectory = windows.trajectory(&x).unwrap_or_else(|| windows.fallback_trajectory());
    let mut stop = LeastSquaresStop::MaxIters;
    let mut iters = 0;
    for step in 0..minibatch.iters {
        if step > 0 && step % minibatch.refresh.max(1) == 0 {
            if let Some(t) = windows.trajectory(&x) {
                trajectory = t;
            }
        }
        let batch: Vec<usize> = (0..minibatch.batch.max(1)).map(|_| rng.random_range(0..windows.n_starts())).collect();
        let mut objective = |x: &[f64], g: &mut [f64]| -> f64 {
            let xc = clamp(x);
            match windows.loss_and_gradient(&xc, &batch, &trajectory, g) {
                Some(loss) => {
                    for (j, gj) in g.iter_mut().enumerate() {
                        if (xc[j] <= lo[j] && *gj > 0.0) || (xc[j] >= hi[j] && *gj < 0.0) {
                            *gj = 0.0;
                        }
                    }
                    loss
                }
                None => f64::NAN,
            }
        };
        let outcome = optimizer.step(&mut x, &mut objective);
        iters += 1;
        if outcome.status == StepStatus::Converged {
            stop = LeastSquaresStop::Gradient;
            break;
        }
        if outcome.status == StepStatus::Finished {
            break;
        }
    }
    windows.whole_series_fit(clamp(&x), iters, stop)
}

/// [`fit_minibatch`], then `solver` on the whole series from its result: the second fit's
/// result, with the steps of both.
pub fn fit_minibatch_then_shooting<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    optimizer: &mut dyn Optimizer,
    minibatch: &Minibatch,
    solver: &dyn LeastSquaresSolver,
) -> Result<LeastSquaresFit> {
    let warm = fit_minibatch(fit, optimizer, minibatch)?;
    refine_from(fit, &warm, solver)
}

/// The windows of one fit.
struct Windows<'f, 'a, M> {
    fit: &'f FitProblem<'a, M>,
    window: usize,
}

impl<'f, 'a, M: Model + Clone> Windows<'f, 'a, M> {
    fn new(fit: &'f FitProblem<'a, M>, minibatch: &Minibatch) -> Result<Self> {
        fit.checked_observation()?;
        let rows = fit.data.t().len();
        if minibatch.window < 2 || minibatch.window > rows {
            return Err(DiffsimError::InvalidOption {
                name: "window",
                why: format!("{}; give 2 to {rows} measurements per window", minibatch.window),
            });
        }
        if minibatch.batch == 0 {
            return Err(DiffsimError::InvalidOption {
                name: "batch",
                why: "0; give at least 1 window per step".into(),
            });
        }
        Ok(Self { fit, window: minibatch.window })
    }

    /// Window `k` covers rows `k .. k + window`; window 0 starts at the initial time.
    fn n_starts(&self) -> usize {
        self.fit.data.t().len() - self.window + 1
    }

    fn start_vector(&self) -> Vec<f64> {
        let mut x = self.fit.problem.p.clone();
        if self.fit.fit_u0 {
            x.extend_from_slice(&self.fit.problem.u0);
        }
        x
    }

    /// The states at the measurement times, solved at `x`; `None` if the solve fails.
    fn trajectory(&self, x: &[f64]) -> Option<Vec<Vec<f64>>> {
        let np = self.fit.problem.p.len();
        let u0 = self.fit.fit_u0.then(|| x[np..].to_vec());
        let mut problem = self.fit.problem.remake(u0, Some(x[..np].to_vec())).ok()?;
        let t = self.fit.data.t();
        problem.tspan.1 = t[t.len() - 1];
        let opts = SolveOptions { saveat: SaveAt::Times(t.to_vec()), ..self.fit.opts.clone() };
        let sol = solve(&problem, self.fit.alg, &opts).ok()?;
        (sol.len() == t.len()).then(|| (0..sol.len()).map(|i| sol.u(i).to_vec()).collect())
    }

    /// Without a trajectory: the initial state everywhere (the data overwrite what they see).
    fn fallback_trajectory(&self) -> Vec<Vec<f64>> {
        vec![self.fit.problem.u0.clone(); self.fit.data.t().len()]
    }

    /// The state to start window `k` from: the trajectory, with the directly observed
    /// states replaced by the data.
    fn start_state(&self, k: usize, trajectory: &[Vec<f64>]) -> Vec<f64> {
        let mut u = trajectory[k].clone();
        if let Observation::States(states) = &self.fit.observation {
            for (j, &state) in states.iter().enumerate() {
                let y = self.fit.data.row(k)[j];
                if !y.is_nan() {
                    u[state] = y;
                }
            }
        }
        u
    }

    /// `1/2 |r|^2` over the windows `batch` at `x`, its gradient written to `g`; `None` if a
    /// window's solve fails.
    fn loss_and_gradient(&self, x: &[f64], batch: &[usize], trajectory: &[Vec<f64>], g: &mut [f64]) -> Option<f64> {
        let parts: Vec<Option<(f64, Vec<f64>)>> =
            batch.par_iter().map(|&k| self.window_loss(x, k, trajectory)).collect();
        g.fill(0.0);
        let mut loss = 0.0;
        for part in parts {
            let (l, gk) = part?;
            loss += l;
            for (a, b) in g.iter_mut().zip(gk) {
                *a += b;
            }
        }
        Some(loss)
    }

    /// One window's loss and gradient (over every fitted value; zero for `u0` unless the
    /// window starts at the initial time).
    fn window_loss(&self, x: &[f64], k: usize, trajectory: &[Vec<f64>]) -> Option<(f64, Vec<f64>)> {
        let fit = self.fit;
        let np = fit.problem.p.len();
        let data = fit.data.rows(k..k + self.window);
        let t_end = data.t()[data.t().len() - 1];
        let (u0, t0, fit_u0) = if k == 0 {
            let u0 = if fit.fit_u0 { x[np..].to_vec() } else { fit.problem.u0.clone() };
            (u0, fit.problem.tspan.0, fit.fit_u0)
        } else {
            (self.start_state(k, trajectory), fit.data.t()[k], false)
        };
        let problem = Problem::new(fit.problem.model.clone(), u0, x[..np].to_vec(), (t0, t_end)).ok()?;
        let spec = FitProblem { problem: &problem, data: &data, fit_u0, ..fit.clone() };
        let mut residuals = ShootingResiduals::new(&spec).ok()?;
        let (m, n) = (residuals.n_residuals(), residuals.n_params());
        let (mut r, mut jac) = (vec![0.0; m], vec![0.0; m * n]);
        if !residuals.jacobian(&residuals.start(), &mut r, &mut jac) {
            return None;
        }
        let mut grad = vec![0.0; x.len()];
        for (j, gj) in grad.iter_mut().enumerate().take(n) {
            *gj = (0..m).map(|i| jac[i * n + j] * r[i]).sum();
        }
        Some((0.5 * r.iter().map(|v| v * v).sum::<f64>(), grad))
    }

    /// The fit at `x` as single shooting over the whole series sees it.
    fn whole_series_fit(&self, x: Vec<f64>, iters: usize, stop: LeastSquaresStop) -> Result<LeastSquaresFit> {
        let mut residuals = ShootingResiduals::new(self.fit)?;
        let (m, n) = (residuals.n_residuals(), residuals.n_params());
        let report = crate::optim::report_at(&mut residuals, x, iters, 0, stop);
        let uncertainty = Uncertainty::from_jacobian(&report.jacobian, m, n, report.cost, self.fit.data.has_sigma());
        Ok(LeastSquaresFit::from_report(self.fit, report, uncertainty, m))
    }
}
