//! Losses that integrate over time: `L = loss(saved values) + integral_{t0}^{t1} g(u, p, t) dt`.
//!
//! The integral becomes one more state `q' = g(u, p, t)`, `q(t0) = 0`, solved with the
//! model under the same error control, and `q(t1)` joins the loss. Every sensitivity method
//! then differentiates it as it does the model: the continuous adjoints see the running
//! cost as the `-dg/du` forcing of `lambda` and the `dg/dp` term of `mu`, the discrete
//! adjoint and forward modes see one more state. What the model computes itself (its
//! Jacobian, `df/dt`, VJP, records) is kept and the cost's part added by forward-mode AD.

use super::SavedLoss;
use crate::ad::Dual;
use crate::capabilities::{
    AnalyticJacobian, AnalyticTimeDerivative, AnalyticVjp, Derivatives, JacobianSparsity, RecordedVjp, Workspace,
};
use crate::error::{DiffsimError, Result};
use crate::mass::MassMatrix;
use crate::problem::Model;
use crate::scalar::Scalar;
use crate::solve::{SaveAt, SolveOptions, Tolerance};

/// A running cost `g(u, p, t)`, integrated over the span when added to a loss with
/// [`SavedLoss::plus_running_cost`]. Written once, generically over the number type, like
/// a model's right-hand side.
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

/// A borrowed running cost is the same cost.
impl<C: RunningCost + ?Sized> RunningCost for &C {
    fn cost<T: Scalar>(&self, u: &[T], p: &[T], t: T) -> T {
        (**self).cost(u, p, t)
    }
}

/// The model with the running cost's integral as its last state.
pub(crate) struct WithCost<'a, M, C> {
    pub(crate) model: &'a M,
    pub(crate) cost: &'a C,
}

impl<M: Model, C: RunningCost> Model for WithCost<'_, M, C> {
    const STATES: Option<usize> = match M::STATES {
        Some(n) => Some(n + 1),
        None => None,
    };
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
    /// The model's mass matrix with the cost's state appended (an ODE: a one on the diagonal).
    fn mass_matrix(&self) -> Option<MassMatrix> {
        self.model.mass_matrix().map(|m| m.with_trailing_identity(1))
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        self.model.tstops(p)
    }
    /// The model's events, on its own states (the cost's integral does not jump).
    fn events(&self) -> Vec<crate::event::Event> {
        self.model.events()
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], p: &[T], t: T) {
        self.model.event_conditions(g, &u[..self.model.n_states()], p, t)
    }
    fn event_affect<T: Scalar>(&self, index: usize, u: &mut [T], p: &[T], t: T) {
        let n = self.model.n_states();
        self.model.event_affect(index, &mut u[..n], p, t)
    }
    /// What the model computes itself, extended to the cost's state (the cost's own
    /// derivatives by forward-mode AD).
    fn derivatives(&self) -> Derivatives<'_> {
        let inner = self.model.derivatives();
        let mut d = Derivatives::none();
        if inner.has_jacobian() {
            d = d.jacobian(self);
        }
        if inner.has_time_derivative() {
            d = d.time_derivative(self);
        }
        if inner.jacobian_sparsity().is_some() {
            d = d.sparsity(self);
        }
        if inner.record_vjp().is_some() {
            d = d.recorded_vjp(self);
        } else if inner.has_vjp() {
            d = d.vjp(self);
        }
        d
    }
}

/// The model's VJP workspace and the cost's dual numbers.
pub(crate) struct CostWorkspace {
    inner: Workspace,
    ud: Vec<Dual<8>>,
    pd: Vec<Dual<8>>,
}

impl<M: Model, C: RunningCost> WithCost<'_, M, C> {
    /// `du += w_q dg/du`, `dp += w_q dg/dp`, by forward AD over `(u, p)` in chunks of 8.
    #[allow(clippy::too_many_arguments)]
    fn add_cost_gradient(
        &self,
        ws: &mut CostWorkspace,
        wq: f64,
        u: &[f64],
        p: &[f64],
        t: f64,
        du: &mut [f64],
        dp: &mut [f64],
    ) {
        if wq == 0.0 {
            return;
        }
        let (n, np) = (u.len(), p.len());
        let CostWorkspace { ud, pd, .. } = ws;
        ud.clear();
        ud.extend(u.iter().map(|&x| Dual::constant(x)));
        pd.clear();
        pd.extend(p.iter().map(|&x| Dual::constant(x)));
        for start in (0..n + np).step_by(8) {
            let end = (start + 8).min(n + np);
            for j in start..end {
                if j < n {
                    ud[j] = Dual::variable(u[j], j - start);
                } else {
                    pd[j - n] = Dual::variable(p[j - n], j - start);
                }
            }
            let g = self.cost.cost(ud, pd, Dual::constant(t));
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
    }
}

impl<M: Model, C: RunningCost> AnalyticJacobian for WithCost<'_, M, C> {
    /// The model's Jacobian in the top-left block, `dg/du` in the last row; nothing
    /// depends on the cost's state.
    fn jacobian(&self, jac: &mut [f64], u: &[f64], p: &[f64], t: f64) {
        let n = self.model.n_states();
        if let Some(own) = self.model.derivatives().analytic_jacobian() {
            own.jacobian(&mut jac[..n * n], &u[..n], p, t);
        }
        // Spread the model's rows (n wide) to the augmented rows (n + 1 wide), last first.
        for i in (0..n).rev() {
            jac.copy_within(i * n..(i + 1) * n, i * (n + 1));
            jac[i * (n + 1) + n] = 0.0;
        }
        let last = &mut jac[n * (n + 1)..];
        last.fill(0.0);
        let mut ud: Vec<Dual<8>> = u[..n].iter().map(|&x| Dual::constant(x)).collect();
        let pd: Vec<Dual<8>> = p.iter().map(|&x| Dual::constant(x)).collect();
        for start in (0..n).step_by(8) {
            let end = (start + 8).min(n);
            for j in start..end {
                ud[j] = Dual::variable(u[j], j - start);
            }
            let g = self.cost.cost(&ud, &pd, Dual::constant(t));
            for j in start..end {
                last[j] = g.d[j - start];
                ud[j] = Dual::constant(u[j]);
            }
        }
    }
}

impl<M: Model, C: RunningCost> JacobianSparsity for WithCost<'_, M, C> {
    /// The model's pattern; the cost's state depends on nothing in `f` and its rate may
    /// depend on every state (a full last row).
    fn jacobian_sparsity(&self) -> Vec<(usize, usize)> {
        let n = self.model.n_states();
        let own = self.model.derivatives().jacobian_sparsity().map(|s| s.jacobian_sparsity()).unwrap_or_default();
        own.into_iter().chain((0..n).map(|j| (n, j))).collect()
    }
}

impl<M: Model, C: RunningCost> AnalyticTimeDerivative for WithCost<'_, M, C> {
    /// The model's `df/dt`, and `dg/dt` by forward AD.
    fn time_derivative(&self, dfdt: &mut [f64], u: &[f64], p: &[f64], t: f64) {
        let n = self.model.n_states();
        if let Some(own) = self.model.derivatives().analytic_time_derivative() {
            own.time_derivative(&mut dfdt[..n], &u[..n], p, t);
        }
        let ud: Vec<Dual<1>> = u[..n].iter().map(|&x| Dual::constant(x)).collect();
        let pd: Vec<Dual<1>> = p.iter().map(|&x| Dual::constant(x)).collect();
        dfdt[n] = self.cost.cost(&ud, &pd, Dual::variable(t, 0)).d[0];
    }
}

impl<M: Model, C: RunningCost> AnalyticVjp for WithCost<'_, M, C> {
    type Workspace = CostWorkspace;
    fn workspace(&self) -> CostWorkspace {
        let inner =
            self.model.derivatives().analytic_vjp().map_or_else(|| Box::new(()) as Workspace, |v| v.workspace());
        CostWorkspace { inner, ud: Vec::new(), pd: Vec::new() }
    }
    /// The model's own VJP on its states, the cost's gradient by forward AD.
    fn vjp(&self, ws: &mut CostWorkspace, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
        let n = self.model.n_states();
        if let Some(own) = self.model.derivatives().analytic_vjp() {
            own.vjp(&mut ws.inner, &w[..n], &u[..n], p, t, &mut du[..n], dp);
        }
        self.add_cost_gradient(ws, w[n], &u[..n], p, t, &mut du[..n], dp);
    }
}

impl<M: Model, C: RunningCost> RecordedVjp for WithCost<'_, M, C> {
    fn record_len(&self) -> usize {
        self.model.derivatives().record_len()
    }
    fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]) {
        let n = self.model.n_states();
        match self.model.derivatives().record_vjp() {
            Some(own) => own.rhs_record(&mut du[..n], &u[..n], p, t, record),
            None => self.model.rhs(&mut du[..n], &u[..n], p, t),
        }
        du[n] = self.cost.cost(&u[..n], p, t);
    }
    fn vjp_from_record(
        &self,
        ws: &mut CostWorkspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        pending: &mut Vec<f64>,
    ) {
        let n = self.model.n_states();
        if let Some(own) = self.model.derivatives().record_vjp() {
            own.vjp_from_record(&mut ws.inner, &w[..n], &u[..n], p, t, record, &mut du[..n], dp, pending);
        }
        self.add_cost_gradient(ws, w[n], &u[..n], p, t, &mut du[..n], dp);
    }
    fn flush_pending(&self, p: &[f64], pending: &mut Vec<f64>, dp: &mut [f64]) {
        match self.model.derivatives().record_vjp() {
            Some(own) => own.flush_pending(p, pending, dp),
            None => pending.clear(),
        }
    }
}

/// A loss of the saved values plus the integral of a running cost over the span: what
/// [`SavedLoss::plus_running_cost`] makes, for [`gradient`](super::gradient).
#[derive(Clone, Debug)]
pub struct WithRunningCost<L, C> {
    /// The loss of the saved values.
    pub loss: L,
    /// The running cost `g(u, p, t)` integrated over the span.
    pub cost: C,
}

/// The user's loss on the model's states at their save times, plus `q(t1)`.
pub(crate) struct CostLoss<'a, L> {
    pub(crate) inner: &'a L,
    /// The model's states (the augmented solve has `n + 1`).
    pub(crate) n: usize,
    /// Saves the user asked for; the augmented solve may add one at `t1` for `q`.
    pub(crate) saves: usize,
}

impl<L: SavedLoss> SavedLoss for CostLoss<'_, L> {
    fn check(&self, len: usize) -> Result<()> {
        let m = self.n + 1;
        if len % m != 0 || len / m < self.saves.max(1) {
            return Err(DiffsimError::SizeMismatch {
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
    if let SaveAt::Times(ts) = &mut out.saveat {
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
