//! The iteration shared by L-BFGS and BFGS: direction from an inverse-Hessian
//! approximation, strong-Wolfe line search, curvature update, convergence tests.

use serde::{Deserialize, Serialize};

use super::{
    all_finite, check_len, check_setting, dot, eval, norm, same_bits, strong_wolfe, LineSearch, LineSearchStatus,
    Objective, OptimError, StepOutcome, StepStatus,
};

/// An inverse-Hessian approximation `H`.
pub(crate) trait InverseHessian {
    /// `d = -H g`.
    fn direction(&mut self, g: &[f64], d: &mut [f64]);
    /// Learns from the step `s` and gradient change `y` (with `s.y > 0`).
    fn update(&mut self, s: &[f64], y: &[f64], sy: f64);
    /// Back to `H = I`.
    fn clear(&mut self);
    /// Whether `H = I` (nothing learned).
    fn is_empty(&self) -> bool;
}

/// Settings shared by L-BFGS and BFGS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct QnSettings {
    pub gtol: f64,
    pub ftol: f64,
    pub line_search: LineSearch,
}

impl Default for QnSettings {
    fn default() -> Self {
        QnSettings { gtol: 1e-8, ftol: 1e-14, line_search: LineSearch::default() }
    }
}

impl QnSettings {
    pub fn check(&self) -> Result<(), OptimError> {
        let ls = &self.line_search;
        check_setting("gtol", self.gtol, self.gtol >= 0.0, "use a gradient tolerance >= 0")?;
        check_setting("ftol", self.ftol, self.ftol >= 0.0, "use a relative loss tolerance >= 0")?;
        check_setting("c1", ls.c1, ls.c1 > 0.0 && ls.c1 < 0.5, "use 0 < c1 < 0.5 (1e-4 is usual)")?;
        check_setting("c2", ls.c2, ls.c2 > ls.c1 && ls.c2 < 1.0, "use c1 < c2 < 1 (0.9 is usual)")?;
        check_setting("max_evals", ls.max_evals as f64, ls.max_evals >= 1, "allow at least 1 evaluation")?;
        check_setting("alpha_max", ls.alpha_max, ls.alpha_max > 0.0, "use a positive largest step")
    }
}

/// The point the optimizer stands on: `x`, its loss and gradient (all finite).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct QnPoint {
    pub x: Vec<f64>,
    pub f: Option<f64>,
    pub g: Vec<f64>,
    #[serde(skip)]
    d: Vec<f64>,
    #[serde(skip)]
    x_trial: Vec<f64>,
    #[serde(skip)]
    g_trial: Vec<f64>,
    #[serde(skip)]
    s: Vec<f64>,
    #[serde(skip)]
    y: Vec<f64>,
}

impl QnPoint {
    pub fn clear(&mut self) {
        self.x.clear();
        self.g.clear();
        self.f = None;
    }

    pub fn check(&self, n: usize) -> Result<(), OptimError> {
        check_len("x", &self.x, n)?;
        check_len("g", &self.g, n)?;
        let known = self.f.is_some_and(f64::is_finite) && self.x.len() == n && self.g.len() == n;
        if self.f.is_some() && !known {
            return Err(OptimError::IncompatibleState { why: "the stored point is incomplete".into() });
        }
        Ok(())
    }

    fn resize(&mut self, n: usize) {
        for b in [&mut self.d, &mut self.x_trial, &mut self.g_trial, &mut self.s, &mut self.y] {
            b.resize(n, 0.0);
        }
    }
}

fn outcome(loss: f64, grad_norm: f64, evals: (usize, usize), status: StepStatus, at_entry: bool) -> StepOutcome {
    StepOutcome { loss, grad_norm, evaluations: evals.0, non_finite: evals.1, status, at_entry }
}

/// One quasi-Newton iteration from `x`.
pub(crate) fn qn_step<H: InverseHessian>(
    pt: &mut QnPoint,
    h: &mut H,
    set: &QnSettings,
    x: &mut [f64],
    f: &mut Objective<'_>,
) -> StepOutcome {
    let n = x.len();
    if pt.g.len() != n {
        pt.clear();
        h.clear();
    }
    pt.resize(n);
    let mut evals = 0;
    // Know f and g at x (re-evaluate if x is not the point we stand on).
    let f0 = match pt.f {
        Some(f0) if same_bits(&pt.x, x) => f0,
        _ => {
            pt.g.resize(n, 0.0);
            let fx = eval(f, x, &mut pt.g);
            evals += 1;
            let gn = norm(&pt.g);
            if !fx.is_finite() || !gn.is_finite() {
                pt.clear();
                return outcome(fx, gn, (evals, 1), StepStatus::Skipped, true);
            }
            pt.f = Some(fx);
            pt.x.clear();
            pt.x.extend_from_slice(x);
            if gn <= set.gtol {
                return outcome(fx, gn, (evals, 0), StepStatus::Converged, true);
            }
            fx
        }
    };
    let mut non_finite = 0;
    loop {
        h.direction(&pt.g, &mut pt.d);
        let mut dphi0 = dot(&pt.g, &pt.d);
        if dphi0.is_nan() || dphi0 >= 0.0 || !all_finite(&pt.d) {
            h.clear();
            for (d, g) in pt.d.iter_mut().zip(&pt.g) {
                *d = -g;
            }
            dphi0 = dot(&pt.g, &pt.d);
        }
        let alpha0 = if h.is_empty() { (1.0 / norm(&pt.g)).min(1.0) } else { 1.0 };
        let QnPoint { d, x_trial, g_trial, .. } = pt;
        let last_alpha = std::cell::Cell::new(f64::NAN);
        let mut phi = |alpha: f64| {
            last_alpha.set(alpha);
            for i in 0..n {
                x_trial[i] = x[i] + alpha * d[i];
            }
            if !all_finite(x_trial) {
                return (f64::NAN, f64::NAN);
            }
            evals += 1;
            let ft = eval(f, x_trial, g_trial);
            (ft, dot(g_trial, d))
        };
        let mut ls = strong_wolfe(&mut phi, f0, dphi0, alpha0, &set.line_search);
        if ls.status != LineSearchStatus::Failed && ls.alpha.to_bits() != last_alpha.get().to_bits() {
            // The accepted step was evaluated earlier: evaluate it again for its gradient.
            let (ft, dphi) = phi(ls.alpha);
            if !ft.is_finite() || !dphi.is_finite() {
                ls.non_finite += 1;
                ls.status = LineSearchStatus::Failed;
            }
            ls.f = ft;
        }
        non_finite += ls.non_finite;
        if ls.status == LineSearchStatus::Failed {
            if !h.is_empty() {
                h.clear(); // retry along the steepest descent
                continue;
            }
            let status = if non_finite > 0 { StepStatus::Skipped } else { StepStatus::Stalled };
            return outcome(f0, norm(&pt.g), (evals, non_finite), status, false);
        }
        // Accept: s = x_trial - x, y = g_trial - g.
        for i in 0..n {
            pt.s[i] = pt.x_trial[i] - x[i];
            pt.y[i] = pt.g_trial[i] - pt.g[i];
        }
        let sy = dot(&pt.s, &pt.y);
        if sy.is_finite() && sy > f64::EPSILON * norm(&pt.s) * norm(&pt.y) {
            h.update(&pt.s, &pt.y, sy);
        }
        x.copy_from_slice(&pt.x_trial);
        pt.x.copy_from_slice(&pt.x_trial);
        std::mem::swap(&mut pt.g, &mut pt.g_trial);
        let f1 = ls.f;
        pt.f = Some(f1);
        let gn = norm(&pt.g);
        let converged = gn <= set.gtol || (set.ftol > 0.0 && (f0 - f1).abs() <= set.ftol * f0.abs().max(f1.abs()));
        let status = if converged { StepStatus::Converged } else { StepStatus::Moved };
        return outcome(f1, gn, (evals, non_finite), status, false);
    }
}
