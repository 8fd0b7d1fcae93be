//! Losses that integrate over time: `L = loss(saved values) + integral_{t0}^{t1} g(u, p, t) dt`.
//!
//! The integral becomes one more state `q' = g(u, p, t)`, `q(t0) = 0`, solved with the
//! model under the same error control, and `q(t1)` joins the loss. Every sensitivity method
//! then differentiates it as it does the model: the continuous adjoints see the running
//! cost as the `-dg/du` forcing of `lambda` and the `dg/dp` term of `mu`, the discrete
//! adjoint and forward modes see one more state. A model's own VJP is kept and the cost's
//! gradient added by forward-mode AD.

use super::Loss;
use crate::ad::Dual;
use crate::error::Result;
use crate::{Model, Scalar, SolveOptions, Tolerance};

/// A running cost `g(u, p, t)`, integrated over the span by
/// [`gradient_with_running_cost`](super::gradient_with_running_cost). Written once,
/// generically over the number type, like a model's right-hand side.
///
/// ```
/// use diffsim::sensitivity::RunningCost;
/// use diffsim::Scalar;
/// /// Penalise the predator population: integral of y^2.
/// struct PredatorEnergy;
/// impl RunningCost for PredatorEnergy {
///     fn cost<T: Scalar>(&self, u: &[T], _p: &[T], _t: T) -> T {
///         u[1] * u[1]
///     }
/// }
/// ```
pub trait RunningCost: Send + Sync {
    /// `g(u, p, t)`.
    fn cost<T: Scalar>(&self, u: &[T], p: &[T], t: T) -> T;
}

/// The model with the running cost's integral as its last state.
pub(crate) struct WithCost<'a, M, C> {
    pub(crate) model: &'a M,
    pub(crate) cost: &'a C,
}

impl<M: Model, C: RunningCost> Model for WithCost<'_, M, C> {
    fn n_states(&self) -> usize {
        self.model.n_states() + 1
    }
    fn n_params(&self) -> usize {
        self.model.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        let n = self.model.n_states();
        self.model.rhs(&mut du[..n], &u[..n], p, t);
        du[n] = self.cost.cost(&u[..n], p, t);
    }
    fn mass_matrix(&self) -> Option<Vec<f64>> {
        let n = self.model.n_states();
        self.model.mass_matrix().map(|m| {
            let mut out = vec![0.0; (n + 1) * (n + 1)];
            for i in 0..n {
                out[i * (n + 1)..i * (n + 1) + n].copy_from_slice(&m[i * n..(i + 1) * n]);
            }
            out[(n + 1) * (n + 1) - 1] = 1.0;
            out
        })
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        self.model.tstops(p)
    }
    fn vjp(&self, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) -> bool {
        let n = self.model.n_states();
        if !self.model.vjp(&w[..n], &u[..n], p, t, &mut du[..n], dp) {
            return false;
        }
        // + w_q * grad g, by forward AD over (u, p) in chunks of 8.
        let wq = w[n];
        if wq == 0.0 {
            return true;
        }
        let np = p.len();
        let mut ud: Vec<Dual<8>> = u[..n].iter().map(|&x| Dual::constant(x)).collect();
        let mut pd: Vec<Dual<8>> = p.iter().map(|&x| Dual::constant(x)).collect();
        for start in (0..n + np).step_by(8) {
            let end = (start + 8).min(n + np);
            for j in start..end {
                if j < n {
                    ud[j] = Dual::variable(u[j], j - start);
                } else {
                    pd[j - n] = Dual::variable(p[j - n], j - start);
                }
            }
            let g = self.cost.cost(&ud, &pd, Dual::constant(t));
            for j in start..end {
                if j < n {
                    du[j] += wq * g.d[j - start];
                    ud[j] = Dual::constant(u[j]);
                } else {
                    dp[j - n] += wq * g.d[j - start];
                    pd[j - n] = Dual::constant(p[j - n]);
                }
            }
        }
        true
    }
    fn has_vjp(&self) -> bool {
        self.model.has_vjp()
    }
}

/// The user's loss on the model's states at their save times, plus `q(t1)`.
pub(crate) struct CostLoss<'a> {
    pub(crate) inner: &'a Loss,
    /// The model's states (the augmented solve has `n + 1`).
    pub(crate) n: usize,
    /// Saves the user asked for; the augmented solve may add one at `t1` for `q`.
    pub(crate) saves: usize,
}

/// What the gradient methods need of a loss over the saved values.
pub(crate) trait SavedLoss {
    /// Check that the loss fits `len` saved values.
    fn check(&self, len: usize) -> Result<()>;
    /// The loss on values of any number type.
    fn evaluate<T: Scalar>(&self, values: &[T]) -> T;
    /// The loss and its gradient with respect to every saved value.
    fn value_and_gradient(&self, values: &[f64], out: &mut [f64]) -> f64;
}

impl SavedLoss for Loss {
    fn check(&self, len: usize) -> Result<()> {
        Loss::check(self, len)
    }
    fn evaluate<T: Scalar>(&self, values: &[T]) -> T {
        Loss::evaluate(self, values)
    }
    fn value_and_gradient(&self, values: &[f64], out: &mut [f64]) -> f64 {
        Loss::value_and_gradient(self, values, out)
    }
}

impl SavedLoss for CostLoss<'_> {
    fn check(&self, len: usize) -> Result<()> {
        let m = self.n + 1;
        if len % m != 0 || len / m < self.saves.max(1) {
            return Err(crate::DiffsimError::SizeMismatch {
                what: "saved values with a running cost",
                expected: (self.saves + 1) * m,
                got: len,
            });
        }
        self.inner.check(self.saves * self.n)
    }
    fn evaluate<T: Scalar>(&self, values: &[T]) -> T {
        let (n, m) = (self.n, self.n + 1);
        let states: Vec<T> = values.chunks(m).take(self.saves).flat_map(|u| u[..n].to_vec()).collect();
        let last = values.len() / m - 1;
        self.inner.evaluate(&states) + values[last * m + n]
    }
    fn value_and_gradient(&self, values: &[f64], out: &mut [f64]) -> f64 {
        let (n, m) = (self.n, self.n + 1);
        let states: Vec<f64> = values.chunks(m).take(self.saves).flat_map(|u| u[..n].to_vec()).collect();
        let mut g = vec![0.0; states.len()];
        let v = self.inner.value_and_gradient(&states, &mut g);
        out.fill(0.0);
        for (i, gi) in g.chunks(n).enumerate() {
            out[i * m..i * m + n].copy_from_slice(gi);
        }
        let last = values.len() / m - 1;
        out[last * m + n] = 1.0;
        v + values[last * m + n]
    }
}

/// Options for the augmented solve: a save at `t1` (for `q`) unless there is one, and
/// per-state tolerances extended to `q` (with the tightest given).
pub(crate) fn augmented_options(opts: &SolveOptions, t1: f64) -> (SolveOptions, usize) {
    let mut out = opts.clone();
    let mut saves = 0;
    if let crate::SaveAt::Times(ts) = &mut out.saveat {
        saves = ts.len();
        if ts.last() != Some(&t1) {
            ts.push(t1);
        }
    }
    let extend = |tol: &Tolerance| match tol {
        Tolerance::PerComponent(v) => {
            let tightest = v.iter().copied().fold(f64::INFINITY, f64::min);
            let mut v = v.clone();
            v.push(tightest);
            Tolerance::PerComponent(v)
        }
        other => other.clone(),
    };
    out.rtol = extend(&opts.rtol);
    out.atol = extend(&opts.atol);
    (out, saves)
}
