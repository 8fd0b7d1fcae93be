//! The statement of a fit: the model problem to start from, the measurements, what the
//! measurements observe, the solver, and whether the initial state is fitted too. Every
//! fitting strategy takes one.

use super::data::TimeSeries;
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::solve::{Algorithm, SolveOptions};

/// What the data's columns measure: column `j` is `sum_k H[j][k] u_k`.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Column `j` is the state `states[j]`.
    States(Vec<usize>),
    /// Column `j` is the linear combination `rows[j]` of the states.
    Linear(Vec<Vec<f64>>),
}

impl Observation {
    /// Every state observed, in order.
    pub fn all(n_states: usize) -> Self {
        Observation::States((0..n_states).collect())
    }

    /// The matrix `H` (row-major, `columns x n_states`), checked against the sizes.
    pub(crate) fn matrix(&self, n_states: usize, columns: usize) -> Result<Vec<f64>> {
        let rows = match self {
            Observation::States(s) => s.len(),
            Observation::Linear(r) => r.len(),
        };
        if rows != columns {
            return Err(DiffsimError::InvalidOption {
                name: "observe",
                why: format!("{rows} observed quantities but the data has {columns} columns; give one per data column"),
            });
        }
        let mut h = vec![0.0; columns * n_states];
        match self {
            Observation::States(states) => {
                for (j, &k) in states.iter().enumerate() {
                    if k >= n_states {
                        return Err(DiffsimError::InvalidOption {
                            name: "observe",
                            why: format!("state {k} does not exist; the model has states 0 to {}", n_states - 1),
                        });
                    }
                    h[j * n_states + k] = 1.0;
                }
            }
            Observation::Linear(rows) => {
                for (j, row) in rows.iter().enumerate() {
                    if row.len() != n_states || row.iter().any(|v| !v.is_finite()) {
                        return Err(DiffsimError::InvalidOption {
                            name: "observe",
                            why: format!("row {j} needs {n_states} finite coefficients, one per state"),
                        });
                    }
                    h[j * n_states..(j + 1) * n_states].copy_from_slice(row);
                }
            }
        }
        Ok(h)
    }
}

/// What is fitted to what (see the module docs).
///
/// The problem's `p` (and `u0`) are the starting point, its span's start the initial time
/// (at or before the first measurement); its span's end is replaced by the last measurement.
#[derive(Clone, Debug)]
pub struct FitProblem<'a, M> {
    /// The model problem.
    pub problem: &'a Problem<M>,
    /// The measurements.
    pub data: &'a TimeSeries,
    /// What the data's columns measure (default: states 0, 1, ... in column order).
    pub observation: Observation,
    /// The solver (default: Tsit5).
    pub alg: Algorithm,
    /// Solver options; their `saveat` is replaced by the measurement times (default:
    /// rtol = atol = 1e-8).
    pub opts: SolveOptions,
    /// Fit the initial state too (default: no).
    pub fit_u0: bool,
    /// Ridge weight `l2`: residuals `sqrt(l2) p_j` for every model parameter join the data's,
    /// adding `l2/2 |p|^2` to the cost (default 0: none). For a network inside the model
    /// (a UDE), whose weights outnumber the data and are not identifiable one by one, it
    /// makes the least-squares problem well posed; the standard errors then belong to the
    /// regularised estimate.
    pub l2: f64,
}

impl<'a, M: Model> FitProblem<'a, M> {
    /// `problem` against `data`, with the defaults above.
    pub fn new(problem: &'a Problem<M>, data: &'a TimeSeries) -> Self {
        Self {
            problem,
            data,
            observation: Observation::States((0..data.n_observed()).collect()),
            alg: Algorithm::Tsit5,
            opts: SolveOptions { rtol: 1e-8.into(), atol: 1e-8.into(), ..Default::default() },
            fit_u0: false,
            l2: 0.0,
        }
    }

    /// With this observation map.
    pub fn observe(mut self, observation: Observation) -> Self {
        self.observation = observation;
        self
    }

    /// With this solver.
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// With these solver options.
    pub fn options(mut self, opts: SolveOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Fit the initial state too.
    pub fn fit_u0(mut self, fit_u0: bool) -> Self {
        self.fit_u0 = fit_u0;
        self
    }

    /// With the ridge weight `l2` on the model parameters.
    pub fn l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// The same statement for another problem (of any model: the prediction error
    /// method's nudged one).
    pub(crate) fn with_problem<'b, N>(&self, problem: &'b Problem<N>) -> FitProblem<'b, N>
    where
        'a: 'b,
    {
        FitProblem {
            problem,
            data: self.data,
            observation: self.observation.clone(),
            alg: self.alg,
            opts: self.opts.clone(),
            fit_u0: self.fit_u0,
            l2: self.l2,
        }
    }

    /// The number of ridge residuals: one per model parameter when `l2 > 0`.
    pub(crate) fn n_ridge(&self) -> usize {
        if self.l2 > 0.0 {
            self.problem.p.len()
        } else {
            0
        }
    }

    /// The number of values fitted: the parameters, and the initial state when fitted.
    pub fn n_fitted(&self) -> usize {
        self.problem.p.len() + if self.fit_u0 { self.problem.u0.len() } else { 0 }
    }

    /// The observation matrix, checked; an error unless the data lie after the initial time.
    pub(crate) fn checked_observation(&self) -> Result<Vec<f64>> {
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(DiffsimError::InvalidOption {
                name: "l2",
                why: format!("{}; give a finite weight >= 0", self.l2),
            });
        }
        let h = self.observation.matrix(self.problem.u0.len(), self.data.n_observed())?;
        let t0 = self.problem.tspan.0;
        let t = self.data.t();
        let (first, last) = (t[0], t[t.len() - 1]);
        if first < t0 || last <= t0 {
            return Err(DiffsimError::Data {
                path: self.data.source().into(),
                line: 0,
                column: 0,
                why: format!(
                    "measurements from t = {first} to {last} but the model starts at t = {t0}; the data must lie \
                     after the initial time (and not all at it)"
                ),
            });
        }
        Ok(h)
    }
}

/// The weighted residual `(h_j . u - y_ij) / sigma_ij` of the value at `(i, j)` given the
/// state `u` there (`h` is the observation matrix, `columns x n`).
pub(crate) fn observed_residual(h: &[f64], data: &TimeSeries, (i, j): (usize, usize), u: &[f64]) -> f64 {
    let n = u.len();
    let model: f64 = h[j * n..(j + 1) * n].iter().zip(u).map(|(a, b)| a * b).sum();
    (model - data.row(i)[j]) / data.sigma_row(i)[j]
}

/// Its derivative with respect to `cols` inputs, given the state's sensitivities `s`
/// (row-major `n x cols`): `row = h_j S / sigma_ij`.
pub(crate) fn observed_sensitivity(h: &[f64], data: &TimeSeries, (i, j): (usize, usize), s: &[f64], row: &mut [f64]) {
    let (cols, n) = (row.len(), s.len() / row.len().max(1));
    let (h, sigma) = (&h[j * n..(j + 1) * n], data.sigma_row(i)[j]);
    for (c, out) in row.iter_mut().enumerate() {
        *out = (0..n).map(|q| h[q] * s[q * cols + c]).sum::<f64>() / sigma;
    }
}

/// The ridge residuals `sqrt(l2) p_j` into `r` (one per parameter) and, when given, their
/// Jacobian rows into `jac` (`p.len()` rows of `cols`, the parameters first).
pub(crate) fn write_ridge(l2: f64, p: &[f64], r: &mut [f64], jac: Option<&mut [f64]>, cols: usize) {
    let w = l2.sqrt();
    for (ri, pj) in r.iter_mut().zip(p) {
        *ri = w * pj;
    }
    if let Some(jac) = jac {
        jac.fill(0.0);
        for j in 0..p.len() {
            jac[j * cols + j] = w;
        }
    }
}
