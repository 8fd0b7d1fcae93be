//! The Nelder-Mead simplex method (Nelder & Mead 1965; the coefficients and the order of
//! the tests as in Lagarias et al. 1998), optionally with the dimension-adaptive
//! coefficients of Gao & Han (2012).

use serde::{Deserialize, Serialize};

use super::{check_setting, load_state, save_state, serde_f64, Objective, OptimError, Optimizer, StepOutcome};
use super::{same_bits, StepStatus};

/// Derivative-free simplex search: uses the loss only (the gradient argument of the
/// objective is a scratch buffer and is ignored). One step is one reflection, expansion,
/// contraction or shrink. Non-finite losses (NaN, `-inf` too) count as `+inf` (the worst possible vertex).
///
/// The first step builds the simplex `x, x + step e_1, ..., x + step e_n`. Converged when
/// all vertices lie within `xtol` of the best (max norm) and their losses within `ftol`.
///
/// ```
/// use diffsim::optim::NelderMead;
///
/// let nm = NelderMead::new(0.5).xtol(1e-10).ftol(1e-14).adaptive(true);
/// # let _ = nm;
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NelderMead {
    initial_step: f64,
    xtol: f64,
    ftol: f64,
    adaptive: bool,
    /// Vertices, best first.
    vertices: Vec<Vec<f64>>,
    #[serde(with = "serde_f64::many")]
    values: Vec<f64>,
    #[serde(skip)]
    centroid: Vec<f64>,
    #[serde(skip)]
    trial: Vec<f64>,
    #[serde(skip)]
    trial2: Vec<f64>,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl Default for NelderMead {
    /// Initial step 0.1, `xtol` 1e-8, `ftol` 1e-12, standard coefficients.
    fn default() -> Self {
        NelderMead::new(0.1)
    }
}

impl NelderMead {
    /// Nelder-Mead whose initial simplex has edges of length `initial_step` along the axes.
    pub fn new(initial_step: f64) -> Self {
        NelderMead {
            initial_step,
            xtol: 1e-8,
            ftol: 1e-12,
            adaptive: false,
            vertices: Vec::new(),
            values: Vec::new(),
            centroid: Vec::new(),
            trial: Vec::new(),
            trial2: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Vertex-spread tolerance.
    pub fn xtol(mut self, xtol: f64) -> Self {
        self.xtol = xtol;
        self
    }

    /// Loss-spread tolerance.
    pub fn ftol(mut self, ftol: f64) -> Self {
        self.ftol = ftol;
        self
    }

    /// Dimension-adaptive coefficients (better beyond ~5 parameters); default off.
    pub fn adaptive(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// Reflection, expansion, contraction and shrink coefficients for `n` parameters.
    fn coefficients(&self, n: usize) -> (f64, f64, f64, f64) {
        if self.adaptive && n > 1 {
            let n = n as f64;
            (1.0, 1.0 + 2.0 / n, 0.75 - 0.5 / n, 1.0 - 1.0 / n)
        } else {
            (1.0, 2.0, 0.5, 0.5)
        }
    }

    /// The loss at `x`, `+inf` when non-finite (counted in `non_finite`).
    fn loss(f: &mut Objective<'_>, x: &[f64], scratch: &mut [f64], non_finite: &mut usize) -> f64 {
        let v = if super::all_finite(x) { super::eval(f, x, scratch) } else { f64::NAN };
        if v.is_finite() {
            v
        } else {
            *non_finite += 1;
            f64::INFINITY
        }
    }

    /// Moves the vertex at `i` up to keep the values sorted (stable: ties keep the older first).
    fn sift_up(&mut self, mut i: usize) {
        while i > 0 && self.values[i] < self.values[i - 1] {
            self.values.swap(i, i - 1);
            self.vertices.swap(i, i - 1);
            i -= 1;
        }
    }

    /// Replaces the worst vertex by `trial` (buffer swap, no allocation).
    fn replace_worst(&mut self, value: f64, second: bool) {
        let n = self.values.len() - 1;
        let buf = if second { &mut self.trial2 } else { &mut self.trial };
        std::mem::swap(&mut self.vertices[n], buf);
        self.values[n] = value;
        self.sift_up(n);
    }

    fn build(&mut self, x: &[f64], f: &mut Objective<'_>, non_finite: &mut usize) -> usize {
        let n = x.len();
        self.vertices = (0..=n)
            .map(|i| {
                let mut v = x.to_vec();
                if i > 0 {
                    v[i - 1] += self.initial_step;
                }
                v
            })
            .collect();
        self.values = self.vertices.iter().map(|v| Self::loss(f, v, &mut self.scratch, non_finite)).collect();
        for i in 1..=n {
            self.sift_up(i);
        }
        n + 1
    }

    fn converged(&self) -> bool {
        let best = &self.vertices[0];
        let f_spread = self.values.iter().map(|v| (v - self.values[0]).abs()).fold(0.0, f64::max);
        let x_spread =
            self.vertices.iter().flat_map(|v| v.iter().zip(best).map(|(a, b)| (a - b).abs())).fold(0.0, f64::max);
        f_spread <= self.ftol && x_spread <= self.xtol
    }
}

impl Optimizer for NelderMead {
    fn name(&self) -> &str {
        "nelder-mead"
    }

    fn check(&self) -> Result<(), OptimError> {
        check_setting("initial_step", self.initial_step, self.initial_step != 0.0, "use a non-zero step")?;
        check_setting("xtol", self.xtol, self.xtol >= 0.0, "use a tolerance >= 0")?;
        check_setting("ftol", self.ftol, self.ftol >= 0.0, "use a tolerance >= 0")
    }

    fn step(&mut self, x: &mut [f64], f: &mut Objective<'_>) -> StepOutcome {
        let n = x.len();
        for b in [&mut self.centroid, &mut self.trial, &mut self.trial2, &mut self.scratch] {
            b.resize(n, 0.0);
        }
        if n == 0 {
            let loss = super::eval(f, x, &mut self.scratch);
            let status = if loss.is_finite() { StepStatus::Converged } else { StepStatus::Skipped };
            let non_finite = usize::from(!loss.is_finite());
            return StepOutcome { loss, grad_norm: f64::NAN, evaluations: 1, non_finite, status, at_entry: false };
        }
        let (mut evals, mut non_finite) = (0, 0);
        if self.vertices.len() != n + 1 || !same_bits(&self.vertices[0], x) {
            evals += self.build(x, f, &mut non_finite);
        } else {
            let (alpha, gamma, rho, sigma) = self.coefficients(n);
            // Centroid of all but the worst.
            self.centroid.fill(0.0);
            for v in &self.vertices[..n] {
                for (c, vi) in self.centroid.iter_mut().zip(v) {
                    *c += vi / n as f64;
                }
            }
            let worst = self.values[n];
            let second = self.values[n - 1];
            let along = |out: &mut Vec<f64>, c: &[f64], w: &[f64], t: f64| {
                for i in 0..c.len() {
                    out[i] = c[i] + t * (c[i] - w[i]);
                }
            };
            along(&mut self.trial, &self.centroid, &self.vertices[n], alpha);
            let fr = Self::loss(f, &self.trial, &mut self.scratch, &mut non_finite);
            evals += 1;
            let mut shrink = false;
            if fr < self.values[0] {
                along(&mut self.trial2, &self.centroid, &self.vertices[n], alpha * gamma);
                let fe = Self::loss(f, &self.trial2, &mut self.scratch, &mut non_finite);
                evals += 1;
                if fe < fr {
                    self.replace_worst(fe, true);
                } else {
                    self.replace_worst(fr, false);
                }
            } else if fr < second {
                self.replace_worst(fr, false);
            } else if fr < worst {
                along(&mut self.trial2, &self.centroid, &self.vertices[n], alpha * rho);
                let fc = Self::loss(f, &self.trial2, &mut self.scratch, &mut non_finite);
                evals += 1;
                if fc <= fr {
                    self.replace_worst(fc, true);
                } else {
                    shrink = true;
                }
            } else {
                along(&mut self.trial2, &self.centroid, &self.vertices[n], -rho);
                let fc = Self::loss(f, &self.trial2, &mut self.scratch, &mut non_finite);
                evals += 1;
                if fc < worst {
                    self.replace_worst(fc, true);
                } else {
                    shrink = true;
                }
            }
            if shrink {
                let (best, rest) = self.vertices.split_first_mut().expect("n + 1 >= 1 vertices");
                for (k, v) in rest.iter_mut().enumerate() {
                    for (vi, bi) in v.iter_mut().zip(best.iter()) {
                        *vi = bi + sigma * (*vi - bi);
                    }
                    self.values[k + 1] = Self::loss(f, v, &mut self.scratch, &mut non_finite);
                    evals += 1;
                }
                for i in 1..=n {
                    self.sift_up(i);
                }
            }
        }
        let best = self.values[0];
        if !best.is_finite() {
            // Every vertex is non-finite: start again next time.
            self.vertices.clear();
            self.values.clear();
            let status = StepStatus::Skipped;
            return StepOutcome {
                loss: best,
                grad_norm: f64::NAN,
                evaluations: evals,
                non_finite,
                status,
                at_entry: false,
            };
        }
        x.copy_from_slice(&self.vertices[0]);
        let status = if self.converged() { StepStatus::Converged } else { StepStatus::Moved };
        StepOutcome { loss: best, grad_norm: f64::NAN, evaluations: evals, non_finite, status, at_entry: false }
    }

    fn reset(&mut self) {
        self.vertices.clear();
        self.values.clear();
    }

    fn state_json(&self) -> serde_json::Value {
        save_state(self.name(), self)
    }

    fn restore(&mut self, state: &serde_json::Value, n_params: usize) -> Result<(), OptimError> {
        let new: NelderMead = load_state("nelder-mead", state)?;
        new.check().map_err(|e| OptimError::IncompatibleState { why: e.to_string() })?;
        let started = !new.vertices.is_empty();
        let fits = new.vertices.len() == n_params + 1
            && new.values.len() == n_params + 1
            && new.vertices.iter().all(|v| v.len() == n_params && super::all_finite(v))
            && new.values.iter().all(|v| !v.is_nan());
        if started && !fits || !started && !new.values.is_empty() {
            return Err(OptimError::IncompatibleState {
                why: format!("the nelder-mead simplex does not fit {n_params} parameters"),
            });
        }
        *self = new;
        Ok(())
    }
}
