//! BFGS with a dense inverse Hessian: Nocedal & Wright eq. (6.17), with the first
//! approximation scaled by `(s.y / y.y)` before the first update (eq. 6.20).

use serde::{Deserialize, Serialize};

use super::quasi_newton::{qn_step, InverseHessian, QnPoint, QnSettings};
use super::{all_finite, check_len, load_state, save_state, LineSearch, Objective, OptimError, Optimizer, StepOutcome};

/// BFGS with a dense `n x n` inverse-Hessian approximation and a strong-Wolfe line search.
/// For up to a few hundred parameters; use [`super::Lbfgs`] beyond.
///
/// ```
/// use diffsim::optim::Bfgs;
///
/// let opt = Bfgs::default().gtol(1e-10);
/// # let _ = opt;
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bfgs {
    settings: QnSettings,
    point: QnPoint,
    h: Dense,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Dense {
    n: usize,
    /// Row-major inverse Hessian; empty means the identity.
    h: Vec<f64>,
    #[serde(skip)]
    hy: Vec<f64>,
}

impl Bfgs {
    /// BFGS with default tolerances (`gtol` 1e-8, `ftol` 1e-14).
    pub fn new() -> Self {
        Bfgs::default()
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
}

impl InverseHessian for Dense {
    fn direction(&mut self, g: &[f64], d: &mut [f64]) {
        let n = g.len();
        if self.h.len() != n * n {
            for (di, gi) in d.iter_mut().zip(g) {
                *di = -gi;
            }
            return;
        }
        for (i, di) in d.iter_mut().enumerate() {
            *di = -super::dot(&self.h[i * n..(i + 1) * n], g);
        }
    }

    fn update(&mut self, s: &[f64], y: &[f64], sy: f64) {
        let n = s.len();
        if self.h.len() != n * n {
            let gamma = sy / super::dot(y, y);
            self.h = vec![0.0; n * n];
            for i in 0..n {
                self.h[i * n + i] = gamma;
            }
            self.n = n;
        }
        // H+ = H - rho (Hy s' + s (Hy)') + (rho^2 y'Hy + rho) s s'   (H symmetric)
        let rho = 1.0 / sy;
        self.hy.resize(n, 0.0);
        for i in 0..n {
            self.hy[i] = super::dot(&self.h[i * n..(i + 1) * n], y);
        }
        let yhy = super::dot(y, &self.hy);
        let c = rho * rho * yhy + rho;
        for i in 0..n {
            for j in 0..n {
                self.h[i * n + j] += -rho * (self.hy[i] * s[j] + s[i] * self.hy[j]) + c * s[i] * s[j];
            }
        }
        if !all_finite(&self.h) {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.h.clear();
        self.n = 0;
    }

    fn is_empty(&self) -> bool {
        self.h.is_empty()
    }
}

impl Optimizer for Bfgs {
    fn name(&self) -> &str {
        "bfgs"
    }

    fn check(&self) -> Result<(), OptimError> {
        self.settings.check()
    }

    fn step(&mut self, x: &mut [f64], f: &mut Objective<'_>) -> StepOutcome {
        if !self.h.is_empty() && self.h.n != x.len() {
            self.h.clear();
        }
        qn_step(&mut self.point, &mut self.h, &self.settings, x, f)
    }

    fn reset(&mut self) {
        self.point.clear();
        self.h.clear();
    }

    fn state_json(&self) -> serde_json::Value {
        save_state(self.name(), self)
    }

    fn restore(&mut self, state: &serde_json::Value, n_params: usize) -> Result<(), OptimError> {
        let new: Bfgs = load_state("bfgs", state)?;
        new.check().map_err(|e| OptimError::IncompatibleState { why: e.to_string() })?;
        new.point.check(n_params)?;
        let n2 = n_params.saturating_mul(n_params);
        if !new.h.h.is_empty() && (new.h.n != n_params || new.h.h.len() != n2) {
            return Err(OptimError::IncompatibleState {
                why: format!("the bfgs matrix does not fit {n_params} parameters"),
            });
        }
        check_len("bfgs matrix", &new.h.h, n2)?;
        *self = new;
        Ok(())
    }
}
