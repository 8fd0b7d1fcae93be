//! Multiple shooting: the data's span cut into groups of consecutive measurements that
//! share their boundary points, each group solved from its own initial state, which is a
//! decision variable beside the parameters; continuity between groups is a residual.
//!
//! Why it converges where single shooting stalls: a long solve over many periods makes
//! the loss of the parameters rugged (a wrong frequency puts every later peak out of
//! phase), while each short group sees a nearly linear response, and the continuity
//! residuals are only weighed in as the fit proceeds to agree with the data. The residual
//! vector is, in order: for every group its data residuals `(h(u_g(t_i)) - y_i) / sigma_i`
//! (a boundary point counted once, in the group it starts), then for every boundary the
//! continuity residuals `sqrt(w) (u_{g-1}(t_b) - U_g)`. The Jacobian comes from forward
//! sensitivities per group (solved in parallel); it is block sparse and formed dense, which
//! suits the few hundred decision variables of a typical fit.
//!
//! With one group this is single shooting exactly (no boundary, the same residuals).

use super::data::TimeSeries;
use super::least_squares::LeastSquaresFit;
use super::spec::{observed_residual, observed_sensitivity, write_ridge, FitProblem, Observation};
use super::uncertainty::Uncertainty;
use crate::error::{DiffsimError, Result};
use crate::optim::LeastSquaresSolver;
use crate::optim::Residuals;
use crate::problem::{Model, Problem};
use crate::sensitivity::{forward_sensitivities_wrt, Wrt};
use crate::solve::{solve, Algorithm, RetCode, SaveAt, SolveOptions};
use rayon::prelude::*;

/// How the data are cut into groups, and how strongly continuity is asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultipleShooting {
    /// Measurements per group (at least 2); consecutive groups share their boundary point.
    pub group_size: usize,
    /// The weight `w` of the continuity residuals `sqrt(w) (u_{g-1}(t_b) - U_g)` against
    /// the data residuals (which are in units of their standard deviations, or of the data).
    pub continuity_weight: f64,
}

impl Default for MultipleShooting {
    fn default() -> Self {
        Self { group_size: 10, continuity_weight: 100.0 }
    }
}

/// One group: measurement rows `first..=last` (`first` is its start), solved from
/// `t[first]` (group 0 from the problem's initial time).
#[derive(Clone, Copy, Debug)]
struct Group {
    first: usize,
    last: usize,
}

/// The residuals of a multiple-shooting fit over `p`, then the initial state when fitted,
/// then the initial state of each group after the first.
pub struct MultipleShootingResiduals<'a, M> {
    problem: Problem<M>,
    data: &'a TimeSeries,
    h: Vec<f64>,
    alg: Algorithm,
    opts: SolveOptions,
    fit_u0: bool,
    groups: Vec<Group>,
    /// `sqrt` of the continuity weight.
    root_weight: f64,
    /// Per group, the (row, column) of each data residual it owns.
    owned: Vec<Vec<(usize, usize)>>,
    /// The decision variables to start from.
    start: Vec<f64>,
    /// The ridge weight (its residuals come last).
    l2: f64,
}

impl<'a, M: Model + Clone> MultipleShootingResiduals<'a, M> {
    /// Cut `data` into groups as `shooting` says. Each group's initial
    /// state starts from the data where every state is observed directly at its first
    /// point, else from a solve with the starting parameters.
    pub fn new(fit: &FitProblem<'a, M>, shooting: MultipleShooting) -> Result<Self> {
        let (problem, data, observation) = (fit.problem, fit.data, &fit.observation);
        let (alg, opts, fit_u0) = (fit.alg, &fit.opts, fit.fit_u0);
        let MultipleShooting { group_size, continuity_weight } = shooting;
        if group_size < 2 {
            return Err(DiffsimError::InvalidOption {
                name: "group_size",
                why: format!("{group_size} points per group; a group needs at least 2 (its start and one more)"),
            });
        }
        if !(continuity_weight > 0.0 && continuity_weight.is_finite()) {
            return Err(DiffsimError::InvalidOption {
                name: "continuity_weight",
                why: format!("{continuity_weight}; give a positive finite weight"),
            });
        }
        let n = problem.u0.len();
        let h = fit.checked_observation()?;
        let rows = data.t().len();
        let mut groups = Vec::new();
        let mut first = 0;
        loop {
            let last = (first + group_size - 1).min(rows - 1);
            groups.push(Group { first, last });
            if last == rows - 1 {
                break;
            }
            first = last;
        }
        let owned: Vec<Vec<(usize, usize)>> = groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                // A boundary point belongs to the group it starts; the last group keeps its end.
                let end = if g + 1 == groups.len() { grp.last + 1 } else { grp.last };
                data.present(grp.first..end)
            })
            .collect();
        let n_fit = problem.p.len() + if fit_u0 { n } else { 0 } + n * (groups.len() - 1);
        let n_res: usize = owned.iter().map(Vec::len).sum::<usize>() + n * (groups.len() - 1) + fit.n_ridge();
        if n_res < n_fit {
            return Err(DiffsimError::Data {
                path: data.source().into(),
                line: 0,
                column: 0,
                why: format!("{n_res} residuals for {n_fit} unknowns; use larger groups or more data"),
            });
        }
        let t0 = problem.tspan.0;
        let mut problem = problem.clone();
        problem.tspan = (t0, data.t()[rows - 1]);
        let mut s = Self {
            problem,
            data,
            h,
            alg,
            opts: opts.clone(),
            fit_u0,
            groups,
            root_weight: continuity_weight.sqrt(),
            owned,
            start: Vec::new(),
            l2: fit.l2,
        };
        s.start = s.initial_guess(observation)?;
        Ok(s)
    }

    /// `p`, `u0` when fitted, then each later group's start: the data there when it observes
    /// every state directly, else the solve from the starting parameters.
    fn initial_guess(&self, observation: &Observation) -> Result<Vec<f64>> {
        let n = self.problem.u0.len();
        let mut x = self.problem.p.clone();
        if self.fit_u0 {
            x.extend_from_slice(&self.problem.u0);
        }
        let starts: Vec<f64> = self.groups[1..].iter().map(|g| self.data.t()[g.first]).collect();
        let opts = SolveOptions { saveat: SaveAt::Times(starts), ..self.opts.clone() };
        let sol = solve(&self.problem, self.alg, &opts)?;
        for (k, g) in self.groups[1..].iter().enumerate() {
            let row = self.data.row(g.first);
            let mut u: Vec<f64> = if k < sol.len() { sol.u(k).to_vec() } else { self.problem.u0.clone() };
            if let Observation::States(states) = observation {
                for (j, &state) in states.iter().enumerate() {
                    if !row[j].is_nan() {
                        u[state] = row[j];
                    }
                }
            }
            x.extend_from_slice(&u[..n]);
        }
        Ok(x)
    }

    /// The decision variables to start from.
    pub fn start(&self) -> Vec<f64> {
        self.start.clone()
    }

    /// The number of groups.
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Group `g`'s problem: its span and initial state from `x`, the parameters from `x`.
    fn group_problem(&self, g: usize, x: &[f64]) -> Option<Problem<M>> {
        let (n, np) = (self.problem.u0.len(), self.problem.p.len());
        let base = np + if self.fit_u0 { n } else { 0 };
        let grp = self.groups[g];
        let (t_start, u_start) = if g == 0 {
            (self.problem.tspan.0, if self.fit_u0 { x[np..np + n].to_vec() } else { self.problem.u0.clone() })
        } else {
            (self.data.t()[grp.first], x[base + (g - 1) * n..base + g * n].to_vec())
        };
        Problem::new(self.problem.model.clone(), u_start, x[..np].to_vec(), (t_start, self.data.t()[grp.last])).ok()
    }

    /// The save times of group `g`: the times of its rows.
    fn group_times(&self, g: usize) -> Vec<f64> {
        let grp = self.groups[g];
        self.data.t()[grp.first..=grp.last].to_vec()
    }

    fn n_data_residuals(&self) -> usize {
        self.owned.iter().map(Vec::len).sum()
    }
}

/// A group's solved states at its save times, and optionally their sensitivities to `p`
/// and to the group's initial state (row-major per save, as in
/// [`crate::sensitivity::Sensitivities`]).
struct GroupSolve {
    u: Vec<Vec<f64>>,
    du_dp: Vec<Vec<f64>>,
    du_du0: Vec<Vec<f64>>,
}

impl<M: Model + Clone> MultipleShootingResiduals<'_, M> {
    /// Solve every group (in parallel); `None` if any fails.
    fn solve_groups(&self, x: &[f64], with_sensitivities: bool) -> Option<Vec<GroupSolve>> {
        (0..self.groups.len())
            .into_par_iter()
            .map(|g| {
                let problem = self.group_problem(g, x)?;
                let opts = SolveOptions { saveat: SaveAt::Times(self.group_times(g)), ..self.opts.clone() };
                let rows = self.groups[g].last - self.groups[g].first + 1;
                if with_sensitivities {
                    // The first group starts from u0: its du/du0 is needed only when u0 is fitted.
                    let wrt = if g > 0 || self.fit_u0 { Wrt::ParametersAndInitialState } else { Wrt::Parameters };
                    let s = forward_sensitivities_wrt(&problem, self.alg, &opts, wrt).ok()?;
                    (s.retcode == RetCode::Success && s.len() == rows).then(|| GroupSolve {
                        u: (0..rows).map(|i| s.u(i).to_vec()).collect(),
                        du_dp: (0..rows).map(|i| s.du_dp(i).to_vec()).collect(),
                        du_du0: (0..rows).map(|i| s.du_du0(i).to_vec()).collect(),
                    })
                } else {
                    let sol = solve(&problem, self.alg, &opts).ok()?;
                    (sol.retcode() == RetCode::Success && sol.len() == rows).then(|| GroupSolve {
                        u: (0..rows).map(|i| sol.u(i).to_vec()).collect(),
                        du_dp: Vec::new(),
                        du_du0: Vec::new(),
                    })
                }
            })
            .collect()
    }

    /// Write the residuals (and the Jacobian, when given) from the group solves.
    fn assemble(&self, x: &[f64], solves: &[GroupSolve], r: &mut [f64], mut jac: Option<&mut [f64]>) {
        let (n, np) = (self.problem.u0.len(), self.problem.p.len());
        let cols = self.n_params();
        let base = np + if self.fit_u0 { n } else { 0 };
        if let Some(j) = jac.as_deref_mut() {
            j.fill(0.0);
        }
        // The columns of group g's initial state (None: fixed u0).
        let start_cols = |g: usize| -> Option<usize> {
            if g == 0 {
                self.fit_u0.then_some(np)
            } else {
                Some(base + (g - 1) * n)
            }
        };
        let mut k = 0;
        for (g, (grp, owned)) in self.groups.iter().zip(&self.owned).enumerate() {
            let s = &solves[g];
            for &at in owned {
                let local = at.0 - grp.first;
                r[k] = observed_residual(&self.h, self.data, at, &s.u[local]);
                if let Some(jac) = jac.as_deref_mut() {
                    let row = &mut jac[k * cols..(k + 1) * cols];
                    observed_sensitivity(&self.h, self.data, at, &s.du_dp[local], &mut row[..np]);
                    if let Some(c0) = start_cols(g) {
                        observed_sensitivity(&self.h, self.data, at, &s.du_du0[local], &mut row[c0..c0 + n]);
                    }
                }
                k += 1;
            }
        }
        // Continuity: sqrt(w) (u_{g-1}(t_b) - U_g) for each later group g.
        for g in 1..self.groups.len() {
            let prev = &solves[g - 1];
            let end = prev.u.len() - 1;
            let u_start = &x[base + (g - 1) * n..base + g * n];
            for q in 0..n {
                r[k] = self.root_weight * (prev.u[end][q] - u_start[q]);
                if let Some(jac) = jac.as_deref_mut() {
                    let row = &mut jac[k * cols..(k + 1) * cols];
                    for c in 0..np {
                        row[c] = self.root_weight * prev.du_dp[end][q * np + c];
                    }
                    if let Some(c0) = start_cols(g - 1) {
                        for c in 0..n {
                            row[c0 + c] = self.root_weight * prev.du_du0[end][q * n + c];
                        }
                    }
                    row[base + (g - 1) * n + q] -= self.root_weight;
                }
                k += 1;
            }
        }
        if self.l2 > 0.0 {
            write_ridge(self.l2, &x[..np], &mut r[k..], jac.map(|j| &mut j[k * cols..]), cols);
        }
    }
}

impl<M: Model + Clone> Residuals for MultipleShootingResiduals<'_, M> {
    fn n_params(&self) -> usize {
        let n = self.problem.u0.len();
        self.problem.p.len() + if self.fit_u0 { n } else { 0 } + n * (self.groups.len() - 1)
    }

    fn n_residuals(&self) -> usize {
        let ridge = if self.l2 > 0.0 { self.problem.p.len() } else { 0 };
        self.n_data_residuals() + self.problem.u0.len() * (self.groups.len() - 1) + ridge
    }

    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> bool {
        match self.solve_groups(x, false) {
            Some(solves) => {
                self.assemble(x, &solves, r, None);
                true
            }
            None => false,
        }
    }

    fn jacobian(&mut self, x: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
        match self.solve_groups(x, true) {
            Some(solves) => {
                self.assemble(x, &solves, r, Some(jac));
                true
            }
            None => false,
        }
    }
}

/// Fit by multiple shooting with Levenberg-Marquardt (see the module docs): the parameters
/// (and with `fit_u0` the initial state) with their standard errors, marginal over the
/// groups' initial states.
pub fn fit_multiple_shooting<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    shooting: MultipleShooting,
) -> Result<LeastSquaresFit> {
    let mut residuals = MultipleShootingResiduals::new(fit, shooting)?;
    let kept = fit.n_fitted();
    // Bounds are given for the parameters (and u0); the groups' states are free.
    let widen = |b: &[f64], fill: f64| -> Vec<f64> {
        if b.is_empty() {
            Vec::new()
        } else {
            b.iter().copied().chain(std::iter::repeat(fill)).take(residuals.n_params()).collect()
        }
    };
    let (lower, upper) = (solver.lower(), solver.upper());
    if !lower.is_empty() && lower.len() != kept || !upper.is_empty() && upper.len() != kept {
        return Err(DiffsimError::InvalidOption {
            name: "bounds",
            why: format!("give {kept} bounds (the parameters, then u0 when fitted); the groups' states are unbounded"),
        });
    }
    let solver = solver.with_bounds(widen(lower, f64::NEG_INFINITY), widen(upper, f64::INFINITY));
    let start = residuals.start();
    let report = solver.solve(&mut residuals, &start)?;
    let (m, total) = (residuals.n_residuals(), residuals.n_params());
    let uncertainty =
        Uncertainty::from_jacobian(&report.jacobian, m, total, report.cost, fit.data.has_sigma()).restrict(kept);
    Ok(LeastSquaresFit::from_report(fit, report, uncertainty, m))
}
