//! Adam (Kingma & Ba 2015) with decoupled weight decay (AdamW, Loshchilov & Hutter 2019).

use serde::{Deserialize, Serialize};

use super::{
    all_finite, check_len, check_setting, eval, load_state, norm, save_state, Objective, OptimError, Optimizer,
    Schedule, StepOutcome, StepStatus,
};

/// Adam: one objective evaluation per step, then
/// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
/// `x -= lr_k (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + weight_decay x)`,
/// where `lr_k` follows the [`Schedule`].
///
/// A non-finite loss or gradient at `x` undoes the update that led there (parameters and
/// moments go back exactly to the last point that evaluated finite) and halves the learning
/// rate; the next step then repeats that update with half the length. Each update that
/// lands on a finite point doubles the rate back, up to the scheduled one. So repeated non-finite steps
/// shrink the step geometrically until it lands on finite ground.
///
/// ```
/// use diffsim::optim::{Adam, Schedule};
///
/// let adam = Adam::new(0.01).schedule(Schedule::Exponential { decay: 0.999 }).weight_decay(1e-4);
/// assert_eq!(adam.learning_rate(), 0.01);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    gtol: f64,
    schedule: Schedule,
    // State.
    t: u64,
    lr_scale: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    /// The last point that evaluated finite and the moments before its update, while that
    /// update can still be undone.
    undo: Option<Undo>,
    // Scratch, rebuilt on demand.
    #[serde(skip)]
    g: Vec<f64>,
    #[serde(skip)]
    m_new: Vec<f64>,
    #[serde(skip)]
    v_new: Vec<f64>,
    #[serde(skip)]
    step: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Undo {
    x: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Default for Adam {
    /// Learning rate 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
    fn default() -> Self {
        Adam::new(1e-3)
    }
}

impl Adam {
    /// Adam with learning rate `lr`, betas (0.9, 0.999), eps 1e-8, a constant schedule, no
    /// weight decay, and convergence when the gradient norm is at most 1e-12.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            gtol: 1e-12,
            schedule: Schedule::Constant,
            t: 0,
            lr_scale: 1.0,
            m: Vec::new(),
            v: Vec::new(),
            undo: None,
            g: Vec::new(),
            m_new: Vec::new(),
            v_new: Vec::new(),
            step: Vec::new(),
        }
    }

    /// Sets the learning-rate schedule.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the moment decay rates (each in [0, 1)).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets the denominator offset (positive).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the decoupled weight decay (AdamW); 0 is plain Adam.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Reports convergence when the gradient norm is at most `gtol`.
    pub fn gtol(mut self, gtol: f64) -> Self {
        self.gtol = gtol;
        self
    }

    /// The base learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// The learning rate the next update will use (schedule and non-finite shrinking applied).
    pub fn current_learning_rate(&self) -> f64 {
        self.schedule.lr(self.lr, self.t) * self.lr_scale
    }

    /// Updates made so far.
    pub fn updates(&self) -> u64 {
        self.t
    }

    fn ensure_size(&mut self, n: usize) {
        if self.m.len() != n {
            self.t = 0;
            self.lr_scale = 1.0;
            self.m = vec![0.0; n];
            self.v = vec![0.0; n];
            self.undo = None;
        }
        for buf in [&mut self.g, &mut self.m_new, &mut self.v_new, &mut self.step] {
            buf.resize(n, 0.0);
        }
    }

    fn skip(&mut self, x: &mut [f64], loss: f64, grad_norm: f64) -> StepOutcome {
        if let Some(undo) = self.undo.take().filter(|u| u.x.len() == x.len()) {
            x.copy_from_slice(&undo.x);
            self.m = undo.m;
            self.v = undo.v;
            self.t -= 1;
        }
        self.lr_scale *= 0.5;
        StepOutcome { loss, grad_norm, evaluations: 1, non_finite: 1, status: StepStatus::Skipped, at_entry: true }
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        "adam"
    }

    fn check(&self) -> Result<(), OptimError> {
        check_setting("lr", self.lr, self.lr > 0.0, "use a positive learning rate")?;
        check_setting("beta1", self.beta1, (0.0..1.0).contains(&self.beta1), "use 0 <= beta1 < 1")?;
        check_setting("beta2", self.beta2, (0.0..1.0).contains(&self.beta2), "use 0 <= beta2 < 1")?;
        check_setting("eps", self.eps, self.eps > 0.0, "use a small positive eps such as 1e-8")?;
        check_setting("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "use a weight decay >= 0")?;
        check_setting("gtol", self.gtol, self.gtol >= 0.0, "use a gradient tolerance >= 0")?;
        self.schedule.check(self.lr)
    }

    fn step(&mut self, x: &mut [f64], f: &mut Objective<'_>) -> StepOutcome {
        self.ensure_size(x.len());
        let loss = eval(f, x, &mut self.g);
        let grad_norm = norm(&self.g);
        if !loss.is_finite() || !grad_norm.is_finite() {
            return self.skip(x, loss, grad_norm);
        }
        if grad_norm <= self.gtol {
            return StepOutcome {
                loss,
                grad_norm,
                evaluations: 1,
                non_finite: 0,
                status: StepStatus::Converged,
                at_entry: true,
            };
        }
        if self.undo.is_some() {
            // The last update landed on finite ground: let the rate recover.
            self.lr_scale = (2.0 * self.lr_scale).min(1.0);
        }
        let lr = self.current_learning_rate();
        let t = self.t + 1;
        let bc1 = 1.0 - self.beta1.powf(t as f64);
        let bc2 = 1.0 - self.beta2.powf(t as f64);
        let (b1, b2, eps, wd) = (self.beta1, self.beta2, self.eps, self.weight_decay);
        for i in 0..x.len() {
            let g = self.g[i];
            let m = b1 * self.m[i] + (1.0 - b1) * g;
            let v = b2 * self.v[i] + (1.0 - b2) * g * g;
            self.m_new[i] = m;
            self.v_new[i] = v;
            self.step[i] = -lr * (m / bc1 / ((v / bc2).sqrt() + eps) + wd * x[i]);
        }
        let x_ok = x.iter().zip(&self.step).all(|(a, b)| (a + b).is_finite());
        if !x_ok || !all_finite(&self.v_new) || !all_finite(&self.step) {
            return self.skip(x, loss, grad_norm);
        }
        // Keep what is needed to undo this update (reusing the buffers of the previous undo).
        let mut undo = self.undo.take().unwrap_or(Undo { x: Vec::new(), m: Vec::new(), v: Vec::new() });
        undo.x.clear();
        undo.x.extend_from_slice(x);
        std::mem::swap(&mut undo.m, &mut self.m);
        std::mem::swap(&mut undo.v, &mut self.v);
        std::mem::swap(&mut self.m, &mut self.m_new);
        std::mem::swap(&mut self.v, &mut self.v_new);
        self.undo = Some(undo);
        for (xi, si) in x.iter_mut().zip(&self.step) {
            *xi += si;
        }
        self.t = t;
        StepOutcome { loss, grad_norm, evaluations: 1, non_finite: 0, status: StepStatus::Moved, at_entry: true }
    }

    fn reset(&mut self) {
        self.t = 0;
        self.lr_scale = 1.0;
        self.m.clear();
        self.v.clear();
        self.undo = None;
    }

    fn state_json(&self) -> serde_json::Value {
        save_state(self.name(), self)
    }

    fn restore(&mut self, state: &serde_json::Value, n_params: usize) -> Result<(), OptimError> {
        let new: Adam = load_state("adam", state)?;
        new.check().map_err(|e| OptimError::IncompatibleState { why: e.to_string() })?;
        check_len("adam m", &new.m, n_params)?;
        check_len("adam v", &new.v, n_params)?;
        if new.m.len() != new.v.len() {
            return Err(OptimError::IncompatibleState { why: "adam moments have different lengths".into() });
        }
        if let Some(u) = &new.undo {
            for (what, v) in [("adam undo x", &u.x), ("adam undo m", &u.m), ("adam undo v", &u.v)] {
                check_len(what, v, n_params)?;
                if v.len() != n_params {
                    return Err(OptimError::IncompatibleState { why: format!("{what} is empty") });
                }
            }
            if new.t == 0 {
                return Err(OptimError::IncompatibleState { why: "adam has an undo but no update".into() });
            }
        }
        *self = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_update_is_lr_times_sign() {
        // With bias correction the first step is lr * g / (|g| + eps) per component.
        let mut adam = Adam::new(0.1);
        let mut x = vec![1.0, -2.0];
        let mut f = |x: &[f64], g: &mut [f64]| {
            g[0] = 3.0 * x[0];
            g[1] = x[1];
            1.5 * x[0] * x[0] + 0.5 * x[1] * x[1]
        };
        let out = adam.step(&mut x, &mut f);
        assert_eq!(out.status, StepStatus::Moved);
        assert!((x[0] - 0.9).abs() < 1e-8 && (x[1] + 1.9).abs() < 1e-8, "{x:?}");
    }

    #[test]
    fn non_finite_retracts_and_shrinks() {
        let mut adam = Adam::new(0.5);
        let mut x = vec![0.0];
        let mut f = |x: &[f64], g: &mut [f64]| {
            g[0] = -1.0;
            if x[0] > 0.3 {
                f64::NAN
            } else {
                -x[0]
            }
        };
        assert_eq!(adam.step(&mut x, &mut f).status, StepStatus::Moved);
        assert!((x[0] - 0.5).abs() < 1e-7);
        let out = adam.step(&mut x, &mut f);
        assert!(out.skipped());
        assert_eq!(x[0], 0.0); // back to the last finite point exactly
        assert_eq!(adam.current_learning_rate(), 0.25);
        assert_eq!(adam.updates(), 0);
        // The same update again, half as long; the rate recovers once that lands well.
        assert_eq!(adam.step(&mut x, &mut f).status, StepStatus::Moved);
        assert!((x[0] - 0.25).abs() < 1e-7, "{x:?}");
        assert_eq!(adam.current_learning_rate(), 0.25);
        assert_eq!(adam.step(&mut x, &mut f).status, StepStatus::Moved);
        assert_eq!(adam.current_learning_rate(), 0.5);
    }
}
