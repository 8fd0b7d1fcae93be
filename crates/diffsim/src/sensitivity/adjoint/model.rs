//! The adjoint system as a model: state `lambda` (and `mu`, unless the parameter part is
//! integrated by quadrature), `u(t)` from a forward dense output.
//!
//! ```text
//! lambda' = -(df/du)^T lambda,     mu' = -(df/dp)^T lambda
//! ```

use crate::ad::{Dual, Vjp, VjpMethod};
use crate::capabilities::{AnalyticJacobian, AnalyticTimeDerivative, Derivatives};
use crate::error::Result;
use crate::problem::Model;
use crate::scalar::Scalar;
use crate::solve::DenseOutput;
use std::sync::Mutex;

/// Reusable buffers of the adjoint right-hand side (behind a lock: `Model::rhs` takes
/// `&self`). One set serves every segment of a sweep.
pub(crate) struct Buffers {
    pub(crate) vjp: Vjp,
    pub(crate) u: Vec<f64>,
    pub(crate) w: Vec<f64>,
    pub(crate) du: Vec<f64>,
    pub(crate) dp: Vec<f64>,
    /// f(u) (the backsolve adjoint integrates u too).
    pub(crate) f: Vec<f64>,
    // Jacobian of the original model in u and p, by forward AD.
    ud: Vec<Dual<8>>,
    pd: Vec<Dual<8>>,
    fd: Vec<Dual<8>>,
    // Right-hand sides at t +- delta for df/dt.
    up: Vec<f64>,
    down: Vec<f64>,
}

impl Buffers {
    pub(crate) fn new<M: Model>(model: &M, vjp: VjpMethod) -> Result<Mutex<Self>> {
        let (n, np) = (model.n_states(), model.n_params());
        Ok(Mutex::new(Self {
            vjp: Vjp::new(model, vjp)?,
            u: vec![0.0; n],
            w: vec![0.0; n],
            du: vec![0.0; n],
            dp: vec![0.0; np],
            f: vec![0.0; n],
            ud: vec![Dual::default(); n],
            pd: vec![Dual::default(); np],
            fd: vec![Dual::default(); n],
            up: vec![0.0; n + np],
            down: vec![0.0; n + np],
        }))
    }
}

/// Lock the buffers. A panic in a model while the lock was held poisons it; the buffers
/// hold nothing that outlives one call, so carry on.
pub(crate) fn lock(buffers: &Mutex<Buffers>) -> std::sync::MutexGuard<'_, Buffers> {
    buffers.lock().unwrap_or_else(|e| e.into_inner())
}

/// The adjoint system of `model` along the forward solution `dense`.
pub(crate) struct AdjointModel<'a, M> {
    pub(crate) model: &'a M,
    pub(crate) p: &'a [f64],
    pub(crate) dense: &'a DenseOutput<f64>,
    pub(crate) buffers: &'a Mutex<Buffers>,
    /// Whether `mu` is part of the state (not for the quadrature adjoint).
    pub(crate) with_mu: bool,
    pub(crate) tstops: &'a [f64],
}

impl<M: Model> AdjointModel<'_, M> {
    /// The adjoint right-hand side on values (AD cannot see through the dense output, so
    /// the Jacobian and df/dt are provided separately).
    fn eval<T: Scalar>(&self, dz: &mut [T], z: &[T], t: f64, b: &mut Buffers) {
        let n = self.model.n_states();
        let Buffers { vjp, u, w, du, dp, .. } = b;
        self.dense.evaluate(t, u);
        for (wi, zi) in w.iter_mut().zip(z) {
            *wi = zi.value();
        }
        du.fill(0.0);
        dp.fill(0.0);
        vjp.apply(self.model, w, u, self.p, t, du, dp);
        for (o, &v) in dz[..n].iter_mut().zip(du.iter()) {
            *o = T::from_f64(-v);
        }
        if self.with_mu {
            for (o, &v) in dz[n..].iter_mut().zip(dp.iter()) {
                *o = T::from_f64(-v);
            }
        }
    }
}

impl<M: Model> Model for AdjointModel<'_, M> {
    fn n_states(&self) -> usize {
        self.model.n_states() + if self.with_mu { self.p.len() } else { 0 }
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, dz: &mut [T], z: &[T], _p: &[T], t: T) {
        // Values only: the adjoint's own derivatives come from `jacobian`.
        self.eval(dz, z, t.value(), &mut lock(self.buffers));
    }
    fn tstops(&self, _p: &[f64]) -> Vec<f64> {
        self.tstops.to_vec()
    }
    fn derivatives(&self) -> Derivatives<'_> {
        Derivatives::none().jacobian(self).time_derivative(self)
    }
}

impl<M: Model> AnalyticJacobian for AdjointModel<'_, M> {
    fn jacobian(&self, jac: &mut [f64], _z: &[f64], _p: &[f64], t: f64) {
        // d(lambda')/d(lambda) = -J^T, d(mu')/d(lambda) = -f_p^T, nothing depends on mu.
        let n = self.model.n_states();
        let m = self.n_states();
        jac.fill(0.0);
        let mut b = lock(self.buffers);
        let Buffers { u, ud, pd, fd, .. } = &mut *b;
        self.dense.evaluate(t, u);
        let mut start = 0;
        while start < m {
            let end = (start + 8).min(m);
            for (j, d) in ud.iter_mut().enumerate() {
                *d = if (start..end).contains(&j) { Dual::variable(u[j], j - start) } else { Dual::constant(u[j]) };
            }
            for (j, d) in pd.iter_mut().enumerate() {
                let idx = n + j;
                *d = if (start..end).contains(&idx) {
                    Dual::variable(self.p[j], idx - start)
                } else {
                    Dual::constant(self.p[j])
                };
            }
            self.model.rhs(fd, ud, pd, Dual::constant(t));
            // Column `idx` of [f_u f_p] is row `idx` of the adjoint's lambda-columns.
            for idx in start..end {
                for i in 0..n {
                    jac[idx * m + i] = -fd[i].d[idx - start];
                }
            }
            start = end;
        }
    }
}

impl<M: Model> AnalyticTimeDerivative for AdjointModel<'_, M> {
    fn time_derivative(&self, dfdt: &mut [f64], z: &[f64], _p: &[f64], t: f64) {
        // u(t) comes from the dense output, which AD in t does not see: central differences.
        let delta = 1e-6 * t.abs().max(1e-3);
        let m = z.len();
        let mut guard = lock(self.buffers);
        let b = &mut *guard;
        let (mut up, mut down) = (std::mem::take(&mut b.up), std::mem::take(&mut b.down));
        self.eval(&mut up[..m], z, t + delta, b);
        self.eval(&mut down[..m], z, t - delta, b);
        for ((d, a), c) in dfdt.iter_mut().zip(&up[..m]).zip(&down[..m]) {
            *d = (a - c) / (2.0 * delta);
        }
        (b.up, b.down) = (up, down);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Robertson;
    use crate::problem::Problem;
    use crate::solve::SolveOptions;

    #[test]
    fn adjoint_jacobian_matches_differences_of_its_rhs() {
        let p = vec![0.04, 3e7, 1e4];
        let prob = Problem::new(Robertson, vec![1.0, 0.0, 0.0], p.clone(), (0.0, 10.0)).unwrap();
        let opts = SolveOptions::default().dense(true);
        let sol = crate::solve::solve_rodas5p(&prob, &opts).unwrap();
        let buffers = Buffers::new(&Robertson, VjpMethod::Forward).unwrap();
        for with_mu in [true, false] {
            let adj = AdjointModel {
                model: &Robertson,
                p: &p,
                dense: sol.dense.as_ref().unwrap(),
                buffers: &buffers,
                with_mu,
                tstops: &[],
            };
            let m = adj.n_states();
            let z = [0.3, -2.0, 1.5, 0.1, 0.2, 0.3];
            let z = &z[..m];
            let mut jac = vec![0.0; m * m];
            adj.derivatives().analytic_jacobian().expect("the adjoint has its Jacobian").jacobian(
                &mut jac,
                z,
                &[],
                3.0,
            );
            for j in 0..m {
                let (mut zp, mut zm) = (z.to_vec(), z.to_vec());
                zp[j] += 1e-3;
                zm[j] -= 1e-3;
                let (mut fp, mut fm) = (vec![0.0; m], vec![0.0; m]);
                adj.rhs(&mut fp, &zp, &[], 3.0);
                adj.rhs(&mut fm, &zm, &[], 3.0);
                for i in 0..m {
                    let fd = (fp[i] - fm[i]) / 2e-3;
                    assert!(
                        (fd - jac[i * m + j]).abs() <= 1e-6 * fd.abs().max(1.0),
                        "with_mu {with_mu} ({i},{j}): {fd} vs {}",
                        jac[i * m + j]
                    );
                }
            }
        }
    }
}
