//! Two-stage collocation: smooth the measured states and their derivatives
//! ([`super::kernel_smoothing`]), then fit the parameters so that the model's right-hand
//! side matches the smoothed derivatives, `r_i = f(u_hat_i, p, t_i) - u_hat'_i`, with no
//! solve in the loop. Cheap and free of the rugged losses of long solves, but biased by the
//! smoothing: it is a warm start, which a shooting fit then refines
//! ([`fit_collocation_then_shooting`]).
//!
//! It needs every state observed directly (the smoothed values stand in for the state).

use super::kernel_smoothing::{select_smoothing, smooth_with, Kernel, Smoothing};
use super::least_squares::{refine_from, LeastSquaresFit};
use super::spec::{write_ridge, FitProblem, Observation};
use super::uncertainty::Uncertainty;
use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::optim::{LeastSquaresSolver, Residuals};
use crate::problem::Model;

const CHUNK: usize = 8;

/// The collocation residuals over the parameters.
pub struct CollocationResiduals<'a, M> {
    model: &'a M,
    n: usize,
    np: usize,
    /// Times with every state's estimate, and the smoothed states and derivatives there.
    t: Vec<f64>,
    u: Vec<f64>,
    du: Vec<f64>,
    start: Vec<f64>,
    /// The ridge weight (its residuals follow the collocation residuals).
    l2: f64,
}

impl<'a, M: Model> CollocationResiduals<'a, M> {
    /// Smooth `fit`'s data with `kernel` and local quadratics of `bandwidth` (default: the
    /// bandwidth and the degree, 2 to 4, chosen per state by cross-validation, see
    /// `fit/kernel_smoothing.rs`).
    pub fn new(fit: &FitProblem<'a, M>, kernel: Kernel, bandwidth: Option<f64>) -> Result<Self> {
        let (n, np) = (fit.problem.u0.len(), fit.problem.p.len());
        let data = fit.data;
        let columns = match &fit.observation {
            Observation::States(s) if (0..n).all(|k| s.contains(&k)) => {
                (0..n).map(|k| s.iter().position(|&x| x == k).unwrap_or(0)).collect::<Vec<_>>()
            }
            _ => {
                return Err(DiffsimError::InvalidOption {
                    name: "observe",
                    why: "collocation needs every state observed directly (its smoothed values stand in for the \
                          state); use a shooting strategy for partial or combined observations"
                        .into(),
                })
            }
        };
        let times = data.t();
        if let Some(h) = bandwidth.filter(|h| !(*h > 0.0 && h.is_finite())) {
            return Err(DiffsimError::InvalidOption {
                name: "bandwidth",
                why: format!("{h}; give a positive bandwidth"),
            });
        }
        let smoothed: Vec<Vec<Option<(f64, f64)>>> = columns
            .iter()
            .map(|&j| {
                let y: Vec<f64> = (0..times.len()).map(|i| data.row(i)[j]).collect();
                let smoothing = match bandwidth {
                    Some(h) => Smoothing { bandwidth: h, degree: 2 },
                    None => select_smoothing(times, &y, kernel),
                };
                smooth_with(times, &y, kernel, smoothing)
            })
            .collect();
        let (mut t, mut u, mut du) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &ti) in times.iter().enumerate() {
            if smoothed.iter().all(|col| col[i].is_some()) {
                t.push(ti);
                for col in &smoothed {
                    let (v, d) = col[i].unwrap_or_default();
                    u.push(v);
                    du.push(d);
                }
            }
        }
        fit.checked_observation()?;
        if t.len() * n + fit.n_ridge() < np {
            return Err(DiffsimError::Data {
                path: data.source().into(),
                line: 0,
                column: 0,
                why: format!("only {} times could be smoothed for {np} parameters; widen the bandwidth", t.len()),
            });
        }
        Ok(Self { model: &fit.problem.model, n, np, t, u, du, start: fit.problem.p.clone(), l2: fit.l2 })
    }

    /// The starting parameters.
    pub fn start(&self) -> Vec<f64> {
        self.start.clone()
    }
}

impl<M: Model> Residuals for CollocationResiduals<'_, M> {
    fn n_params(&self) -> usize {
        self.np
    }

    fn n_residuals(&self) -> usize {
        self.t.len() * self.n + if self.l2 > 0.0 { self.np } else { 0 }
    }

    fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
        let n = self.n;
        for (i, &t) in self.t.iter().enumerate() {
            self.model.rhs(&mut r[i * n..(i + 1) * n], &self.u[i * n..(i + 1) * n], p, t);
            for (ri, d) in r[i * n..(i + 1) * n].iter_mut().zip(&self.du[i * n..(i + 1) * n]) {
                *ri -= d;
            }
        }
        if self.l2 > 0.0 {
            write_ridge(self.l2, p, &mut r[self.t.len() * n..], None, 0);
        }
        r.iter().all(|v| v.is_finite())
    }

    fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
        let (n, np) = (self.n, self.np);
        let (mut ud, mut pd, mut fd) =
            (vec![Dual::<CHUNK>::default(); n], vec![Dual::<CHUNK>::default(); np], vec![Dual::<CHUNK>::default(); n]);
        for (i, &t) in self.t.iter().enumerate() {
            for (d, &v) in ud.iter_mut().zip(&self.u[i * n..(i + 1) * n]) {
                *d = Dual::constant(v);
            }
            // df/dp by forward mode, CHUNK parameters per pass.
            for first in (0..np.max(1)).step_by(CHUNK) {
                for (j, d) in pd.iter_mut().enumerate() {
                    *d = if (first..first + CHUNK).contains(&j) {
                        Dual::variable(p[j], j - first)
                    } else {
                        Dual::constant(p[j])
                    };
                }
                self.model.rhs(&mut fd, &ud, &pd, Dual::constant(t));
                for q in 0..n {
                    r[i * n + q] = fd[q].v - self.du[i * n + q];
                    for j in first..(first + CHUNK).min(np) {
                        jac[(i * n + q) * np + j] = fd[q].d[j - first];
                    }
                }
            }
        }
        if self.l2 > 0.0 {
            let m = self.t.len() * n;
            write_ridge(self.l2, p, &mut r[m..], Some(&mut jac[m * np..]), np);
        }
        r.iter().all(|v| v.is_finite()) && jac.iter().all(|v| v.is_finite())
    }
}

/// Collocation alone: the parameters minimising `|f(u_hat, p, t) - u_hat'|^2` (standard
/// errors of that loss, which do not account for the smoothing).
pub fn fit_collocation<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    kernel: Kernel,
    bandwidth: Option<f64>,
) -> Result<LeastSquaresFit> {
    let mut residuals = CollocationResiduals::new(fit, kernel, bandwidth)?;
    let start = residuals.start();
    let report = solver.solve(&mut residuals, &start)?;
    let (m, np) = (residuals.n_residuals(), residuals.n_params());
    let uncertainty = Uncertainty::from_jacobian(&report.jacobian, m, np, report.cost, false);
    let no_u0 = FitProblem { fit_u0: false, ..fit.clone() };
    Ok(LeastSquaresFit::from_report(&no_u0, report, uncertainty, m))
}

/// Collocation as a warm start, then single shooting from its parameters (with the
/// problem's bounds and options): the shooting fit's result, with the iterations of both.
pub fn fit_collocation_then_shooting<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    kernel: Kernel,
    bandwidth: Option<f64>,
) -> Result<LeastSquaresFit> {
    let np = fit.problem.p.len();
    let clipped = |b: &[f64]| if b.len() > np { b[..np].to_vec() } else { b.to_vec() };
    let first = solver.with_bounds(clipped(solver.lower()), clipped(solver.upper()));
    let warm = fit_collocation(fit, first.as_ref(), kernel, bandwidth)?;
    refine_from(fit, &warm, solver)
}
