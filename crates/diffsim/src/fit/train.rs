//! Fitting a model's parameters to data through the solver.

use crate::error::DiffsimError;
use crate::optim::{
    minimize_with_callback, resume_with_callback, Control, MinimizeOptions, MinimizeReport, OptimError, Optimizer,
    Progress,
};
use crate::problem::{Model, Problem};
use crate::sensitivity::{gradient, Loss, SavedLoss, SensAlg};
use crate::solve::{solve, Algorithm, Solution, SolveOptions};
use std::path::Path;

/// A model, its data and how to differentiate: everything a training loop needs.
///
/// The loss is the [`Loss`] of the solution saved at the data times (usually
/// [`Loss::SquaredError`] against the data), plus `l2 * |p|^2` when `l2 > 0`.
#[derive(Clone, Debug)]
pub struct Fit<M> {
    /// The problem; its `p` is overwritten by each evaluation.
    pub problem: Problem<M>,
    /// The solver.
    pub alg: Algorithm,
    /// Solver options; their save times are the data times.
    pub opts: SolveOptions,
    /// The misfit.
    pub loss: Loss,
    /// How gradients are computed.
    pub sensealg: SensAlg,
    /// Weight of an L2 penalty on the parameters (0 for none).
    pub l2: f64,
}

impl<M: Model + Clone> Fit<M> {
    /// The same fit on the data up to `t_end` only: the first stage of growing-interval
    /// training, which keeps a long, oscillating fit from settling in a poor minimum
    /// before it has matched the start.
    pub fn up_to(&self, t_end: f64) -> crate::error::Result<Fit<M>> {
        let times = match &self.opts.saveat {
            crate::solve::SaveAt::Times(ts) => ts.clone(),
            crate::solve::SaveAt::End => vec![self.problem.tspan.1],
            crate::solve::SaveAt::EveryStep => {
                return Err(crate::error::DiffsimError::InvalidOption {
                    name: "saveat",
                    why: "a fit needs data times".into(),
                })
            }
        };
        let (t0, _) = self.problem.tspan;
        let dir = (self.problem.tspan.1 - t0).signum();
        let kept = times.iter().take_while(|&&t| (t - t_end) * dir <= 0.0).count();
        if kept == 0 || (t_end - t0) * dir <= 0.0 {
            return Err(crate::error::DiffsimError::InvalidOption {
                name: "t_end",
                why: format!("{t_end} keeps no data time after the start {t0}"),
            });
        }
        let n = self.problem.u0.len();
        let loss = match &self.loss {
            Loss::SquaredError(d) => Loss::squared_error(d[..kept * n].to_vec()),
            Loss::Weighted(w) => Loss::Weighted(w[..kept * n].to_vec().into()),
            other => other.clone(),
        };
        let mut fit = self.clone();
        fit.problem.tspan.1 = t_end;
        fit.opts.saveat = crate::solve::SaveAt::Times(times[..kept].to_vec());
        fit.loss = loss;
        Ok(fit)
    }
}

impl<M: Model> Fit<M> {
    /// The loss at `p` and its gradient in `grad`. A failed solve, a non-finite value or a
    /// `p` or `grad` of the wrong length gives a NaN loss (the optimizers then skip the step
    /// and keep the parameters; [`Fit::train`] checks the length up front).
    pub fn loss_and_gradient(&mut self, p: &[f64], grad: &mut [f64]) -> f64 {
        if grad.len() != p.len() || self.problem.set_p(p).is_err() {
            grad.fill(f64::NAN);
            return f64::NAN;
        }
        match gradient(&self.problem, self.alg, &self.opts, &self.loss, self.sensealg) {
            Ok(g) => {
                grad.copy_from_slice(&g.dp);
                let mut loss = g.loss;
                if self.l2 > 0.0 {
                    for (gi, &pi) in grad.iter_mut().zip(p) {
                        *gi += 2.0 * self.l2 * pi;
                        loss += self.l2 * pi * pi;
                    }
                }
                loss
            }
            Err(_) => {
                grad.fill(f64::NAN);
                f64::NAN
            }
        }
    }

    /// The loss at `p` without a gradient (NaN where [`Fit::loss_and_gradient`] gives NaN).
    pub fn loss(&mut self, p: &[f64]) -> f64 {
        if self.problem.set_p(p).is_err() {
            return f64::NAN;
        }
        match solve(&self.problem, self.alg, &self.opts) {
            Ok(sol) if sol.retcode.is_success() && self.loss.check(sol.u_flat.len()).is_ok() => {
                self.loss.evaluate(&sol.u_flat) + self.l2 * p.iter().map(|x| x * x).sum::<f64>()
            }
            _ => f64::NAN,
        }
    }

    /// Solve with parameters `p` and the given options (e.g. a finer save grid, a longer span).
    pub fn predict(&mut self, p: &[f64], tspan: (f64, f64), opts: &SolveOptions) -> crate::error::Result<Solution> {
        self.problem.set_p(p)?;
        let span = std::mem::replace(&mut self.problem.tspan, tspan);
        let sol = solve(&self.problem, self.alg, opts);
        self.problem.tspan = span;
        sol
    }

    /// Train from `p0` with `optimizer` (for example a [`crate::optim::Chain`]), calling
    /// `callback` after every iteration. With `resume_from`, the run continues from that
    /// checkpoint instead (its parameters and optimizer state).
    pub fn train<O: Optimizer + ?Sized>(
        &mut self,
        p0: &[f64],
        optimizer: &mut O,
        options: &MinimizeOptions,
        resume_from: Option<&Path>,
        callback: impl FnMut(&Progress<'_>) -> Control,
    ) -> Result<MinimizeReport, OptimError> {
        let expected = self.problem.model.n_params();
        if resume_from.is_none() && p0.len() != expected {
            return Err(DiffsimError::SizeMismatch { what: "p0", got: p0.len(), expected }.into());
        }
        let objective = |p: &[f64], g: &mut [f64]| self.loss_and_gradient(p, g);
        match resume_from {
            Some(path) => resume_with_callback(path, objective, optimizer, options, callback),
            None => minimize_with_callback(p0, objective, optimizer, options, callback),
        }
    }
}
