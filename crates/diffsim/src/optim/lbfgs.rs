//! Limited-memory BFGS: Nocedal & Wright Algorithm 7.4 (two-loop recursion) with the
//! initial scaling `H0 = (s.y / y.y) I` of eq. (7.20).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::quasi_newton::{qn_step, InverseHessian, QnPoint, QnSettings};
use super::{check_len, dot, load_state, save_state, LineSearch, Objective, OptimError, Optimizer, StepOutcome};

/// L-BFGS with memory `m` (default 10) and a strong-Wolfe line search.
///
/// Each step evaluates the objective only inside the line search (usually once).
/// Converges when the gradient norm is at most `gtol` (default 1e-8) or the loss changes by
/// at most `ftol` (default 1e-14) relative to its size.
///
/// ```
/// use diffsim::optim::Lbfgs;
///
/// let opt = Lbfgs::new(5).gtol(1e-10).ftol(0.0);
/// assert_eq!(opt.memory(), 5);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lbfgs {
    memory: usize,
    settings: QnSettings,
    point: QnPoint,
    pairs: Pairs,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Pairs {
    memory: usize,
    /// Oldest first: (s, y, 1 / s.y).
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    #[serde(skip)]
    alpha: Vec<f64>,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Lbfgs::new(10)
    }
}

impl Lbfgs {
    /// L-BFGS keeping the last `memory` curvature pairs (at least 1).
    pub fn new(memory: usize) -> Self {
        Lbfgs {
            memory,
            settings: QnSettings::default(),
            point: QnPoint::default(),
            pairs: Pairs { memory, ..Pairs::default() },
        }
    }

    /// Converged when the gradient norm is at most `gtol`.
    pub fn gtol(mut self, gtol: f64) -> Self {
        self.settings.gtol = gtol;
        self
    }

    /// Converged when `|f_old - f_new| <= ftol * max(|f_old|, |f_new|)`; 0 disables.
    pub fn ftol(mut self, ftol: f64) -> Self {
        self.settings.ftol = ftol;
        self
    }

    /// Sets the line-search constants.
    pub fn line_search(mut self, line_search: LineSearch) -> Self {
        self.settings.line_search = line_search;
        self
    }

    /// The number of curvature pairs kept.
    pub fn memory(&self) -> usize {
        self.memory
    }
}

impl InverseHessian for Pairs {
    fn direction(&mut self, g: &[f64], d: &mut [f64]) {
        let k = self.pairs.len();
        self.alpha.resize(k, 0.0);
        d.copy_from_slice(g);
        for (i, (s, y, rho)) in self.pairs.iter().enumerate().rev() {
            let a = rho * dot(s, d);
            self.alpha[i] = a;
            for (dj, yj) in d.iter_mut().zip(y) {
                *dj -= a * yj;
            }
        }
        if let Some((s, y, _)) = self.pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|v| *v *= gamma);
        }
        for (i, (s, y, rho)) in self.pairs.iter().enumerate() {
            let b = rho * dot(y, d);
            let a = self.alpha[i];
            for (dj, sj) in d.iter_mut().zip(s) {
                *dj += (a - b) * sj;
            }
        }
        d.iter_mut().for_each(|v| *v = -*v);
    }

    fn update(&mut self, s: &[f64], y: &[f64], sy: f64) {
        if self.memory == 0 {
            return;
        }
        // Reuse the oldest pair's storage once the memory is full.
        let (mut s_buf, mut y_buf) =
            if self.pairs.len() >= self.memory { self.pairs.pop_front().map(|(s, y, _)| (s, y)) } else { None }
                .unwrap_or_default();
        s_buf.clear();
        s_buf.extend_from_slice(s);
        y_buf.clear();
        y_buf.extend_from_slice(y);
        self.pairs.push_back((s_buf, y_buf, 1.0 / sy));
    }

    fn clear(&mut self) {
        self.pairs.clear();
    }

    fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl Optimizer for Lbfgs {
    fn name(&self) -> &str {
        "lbfgs"
    }

    fn check(&self) -> Result<(), OptimError> {
        super::check_setting("memory", self.memory as f64, self.memory >= 1, "keep at least 1 pair (10 is usual)")?;
        self.settings.check()
    }

    fn step(&mut self, x: &mut [f64], f: &mut Objective<'_>) -> StepOutcome {
        self.pairs.memory = self.memory;
        if self.pairs.pairs.front().is_some_and(|(s, _, _)| s.len() != x.len()) {
            self.pairs.clear();
        }
        qn_step(&mut self.point, &mut self.pairs, &self.settings, x, f)
    }

    fn reset(&mut self) {
        self.point.clear();
        self.pairs.clear();
    }

    fn state_json(&self) -> serde_json::Value {
        save_state(self.name(), self)
    }

    fn restore(&mut self, state: &serde_json::Value, n_params: usize) -> Result<(), OptimError> {
        let new: Lbfgs = load_state("lbfgs", state)?;
        new.check().map_err(|e| OptimError::IncompatibleState { why: e.to_string() })?;
        new.point.check(n_params)?;
        if new.pairs.pairs.len() > new.memory || new.pairs.memory != new.memory {
            return Err(OptimError::IncompatibleState { why: "lbfgs holds more pairs than its memory".into() });
        }
        for (s, y, rho) in &new.pairs.pairs {
            if s.len() != n_params || y.len() != n_params || !(rho.is_finite() && *rho > 0.0) {
                return Err(OptimError::IncompatibleState {
                    why: format!("an lbfgs curvature pair does not fit {n_params} parameters"),
                });
            }
            check_len("lbfgs s", s, n_params)?;
            check_len("lbfgs y", y, n_params)?;
        }
        *self = new;
        Ok(())
    }
}
