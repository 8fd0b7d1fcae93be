//! Interpolating (continuous) adjoint: the forward solution's dense output supplies `u(t)`
//! while the adjoint system is solved backwards,
//!
//! ```text
//! lambda' = -(df/du)^T lambda,     mu' = -(df/dp)^T lambda,
//! ```
//!
//! from `lambda(t1) = 0, mu(t1) = 0` to `t0`, with `lambda += dg/du(t_i)` at each save time.
//! Then `dL/du0 = lambda(t0)` and `dL/dp = mu(t0)`. The adjoint is solved by the same
//! method family as the forward problem: a stiff forward method gets a stiff adjoint solve,
//! whose Jacobian `[-J^T 0; -f_p^T 0]` comes from forward-mode AD of the model.
//!
//! The gradient is that of the continuous solution, so it agrees with the discrete adjoint
//! and with finite differences to the solver tolerances, not to rounding.

use crate::ad::{Dual, Vjp, VjpMethod};
use crate::error::{DiffsimError, Result};
use crate::solve::DenseOutput;
use crate::{solve, Algorithm, Model, Problem, Scalar, SolveOptions, Stats};
use std::sync::Mutex;

use super::{require_success, Gradient, Loss};

/// Reusable buffers of the adjoint right-hand side (behind a lock: `Model::rhs` takes `&self`).
struct Buffers {
    vjp: Vjp,
    u: Vec<f64>,
    w: Vec<f64>,
    du: Vec<f64>,
    dp: Vec<f64>,
    // Jacobian of the original model in u and p, by forward AD.
    ud: Vec<Dual<8>>,
    pd: Vec<Dual<8>>,
    fd: Vec<Dual<8>>,
}

/// The adjoint system as a model with state `(lambda, mu)` and no parameters of its own.
struct AdjointModel<'a, M> {
    model: &'a M,
    p: &'a [f64],
    dense: &'a DenseOutput<f64>,
    buffers: Mutex<Buffers>,
    /// Right-hand sides at t +- delta for df/dt (a separate lock: `rhs` takes `buffers`).
    dfdt_buffers: Mutex<(Vec<f64>, Vec<f64>)>,
    tstops: Vec<f64>,
}

impl<M: Model> AdjointModel<'_, M> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffers> {
        // A panic in a model while the lock was held poisons it; the buffers hold nothing
        // that outlives one call, so carry on.
        self.buffers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<M: Model> Model for AdjointModel<'_, M> {
    fn n_states(&self) -> usize {
        self.model.n_states() + self.p.len()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, dz: &mut [T], z: &[T], _p: &[T], t: T) {
        let n = self.model.n_states();
        let mut b = self.lock();
        let Buffers { vjp, u, w, du, dp, .. } = &mut *b;
        self.dense.evaluate(t.value(), u);
        for (wi, zi) in w.iter_mut().zip(z) {
            *wi = zi.value();
        }
        du.fill(0.0);
        dp.fill(0.0);
        vjp.apply(self.model, w, u, self.p, t.value(), du, dp);
        for (o, &v) in dz[..n].iter_mut().zip(du.iter()) {
            *o = T::from_f64(-v);
        }
        for (o, &v) in dz[n..].iter_mut().zip(dp.iter()) {
            *o = T::from_f64(-v);
        }
    }
    fn jacobian(&self, jac: &mut [f64], _z: &[f64], _p: &[f64], t: f64) -> bool {
        // d(lambda')/d(lambda) = -J^T, d(mu')/d(lambda) = -f_p^T, nothing depends on mu.
        let (n, np) = (self.model.n_states(), self.p.len());
        let m = n + np;
        jac.fill(0.0);
        let mut b = self.lock();
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
        true
    }
    fn time_derivative(&self, dfdt: &mut [f64], z: &[f64], _p: &[f64], t: f64) -> bool {
        // u(t) comes from the dense output, which AD in t does not see: central differences.
        let delta = 1e-6 * t.abs().max(1e-3);
        let mut guard = self.dfdt_buffers.lock().unwrap_or_else(|e| e.into_inner());
        let (up, down) = &mut *guard;
        self.rhs(up, z, &[], t + delta);
        self.rhs(down, z, &[], t - delta);
        for ((d, a), b) in dfdt.iter_mut().zip(up.iter()).zip(down.iter()) {
            *d = (a - b) / (2.0 * delta);
        }
        true
    }
    fn tstops(&self, _p: &[f64]) -> Vec<f64> {
        self.tstops.clone()
    }
}

/// dL/dp and dL/du0 by the interpolating adjoint.
pub(crate) fn interpolating_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &Loss,
    vjp: VjpMethod,
) -> Result<Gradient> {
    let model = &problem.model;
    if model.mass_matrix().is_some() {
        return Err(DiffsimError::Unsupported {
            alg: "interpolating adjoint",
            why: "models with a mass matrix (DAEs) are not supported by the continuous adjoints yet; use forward-ad"
                .into(),
        });
    }
    let (n, np) = (problem.u0.len(), problem.p.len());
    let mut fwd_opts = opts.clone();
    fwd_opts.dense = Some(true);
    let sol = solve(problem, alg, &fwd_opts)?;
    require_success(&sol)?;
    loss.check(sol.u_flat.len())?;
    let mut g = vec![0.0; sol.u_flat.len()];
    let value = loss.value_and_gradient(&sol.u_flat, &mut g);
    let dense = sol.dense.as_ref().expect("dense output was requested");

    let buffers = Buffers {
        vjp: Vjp::new(model, vjp)?,
        u: vec![0.0; n],
        w: vec![0.0; n],
        du: vec![0.0; n],
        dp: vec![0.0; np],
        ud: vec![Dual::default(); n],
        pd: vec![Dual::default(); np],
        fd: vec![Dual::default(); n],
    };
    let adjoint = AdjointModel {
        model,
        p: &problem.p,
        dense,
        buffers: Mutex::new(buffers),
        dfdt_buffers: Mutex::new((vec![0.0; n + np], vec![0.0; n + np])),
        tstops: model.tstops(&problem.p),
    };
    // The same family backwards: explicit stays explicit, stiff stays stiff.
    let back_alg = if sol.alg.is_stiff() { Algorithm::Rodas5P } else { alg };
    let back_alg = if back_alg == Algorithm::Auto { Algorithm::Tsit5 } else { back_alg };
    let back_opts = SolveOptions { dense: Some(false), ..opts.clone() };

    let (t0, t1) = problem.tspan;
    let mut z = vec![0.0; n + np];
    let mut t = t1;
    let mut stats = sol.stats;
    for (i, &ts) in sol.t.iter().enumerate().rev() {
        if ts != t {
            back_segment(&adjoint, &mut z, (t, ts), back_alg, &back_opts, &mut stats)?;
            t = ts;
        }
        for c in 0..n {
            z[c] += g[i * n + c];
        }
    }
    if t != t0 {
        back_segment(&adjoint, &mut z, (t, t0), back_alg, &back_opts, &mut stats)?;
    }
    stats.nf += adjoint.lock().vjp.evals;
    Ok(Gradient { loss: value, dp: z[n..].to_vec(), du0: z[..n].to_vec(), stats })
}

/// Solve the adjoint from `span.0` back to `span.1`, updating `z` in place.
fn back_segment<M: Model>(
    adjoint: &AdjointModel<'_, M>,
    z: &mut [f64],
    span: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    stats: &mut Stats,
) -> Result<()> {
    let mut seg_opts = opts.clone();
    seg_opts.saveat = crate::SaveAt::Times(vec![span.1]);
    let prob = Problem::new(ByRef(adjoint), z.to_vec(), Vec::new(), span)?;
    let sol = solve(&prob, alg, &seg_opts)?;
    require_success(&sol)?;
    *stats += sol.stats;
    z.copy_from_slice(sol.u(0));
    Ok(())
}

/// Lets a borrowed model stand in a `Problem` (which owns its model).
struct ByRef<'a, M>(&'a M);

impl<M: Model> Model for ByRef<'_, M> {
    fn n_states(&self) -> usize {
        self.0.n_states()
    }
    fn n_params(&self) -> usize {
        self.0.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        self.0.rhs(du, u, p, t)
    }
    fn jacobian(&self, jac: &mut [f64], u: &[f64], p: &[f64], t: f64) -> bool {
        self.0.jacobian(jac, u, p, t)
    }
    fn time_derivative(&self, dfdt: &mut [f64], u: &[f64], p: &[f64], t: f64) -> bool {
        self.0.time_derivative(dfdt, u, p, t)
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        self.0.tstops(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Robertson;

    #[test]
    fn adjoint_jacobian_matches_differences_of_its_rhs() {
        let p = vec![0.04, 3e7, 1e4];
        let prob = Problem::new(Robertson, vec![1.0, 0.0, 0.0], p.clone(), (0.0, 10.0)).unwrap();
        let opts = SolveOptions::default().dense(true);
        let sol = solve(&prob, Algorithm::Rodas5P, &opts).unwrap();
        let n = 3;
        let buffers = Buffers {
            vjp: Vjp::new(&Robertson, VjpMethod::Forward).unwrap(),
            u: vec![0.0; n],
            w: vec![0.0; n],
            du: vec![0.0; n],
            dp: vec![0.0; 3],
            ud: vec![Dual::default(); n],
            pd: vec![Dual::default(); 3],
            fd: vec![Dual::default(); n],
        };
        let adj = AdjointModel {
            model: &Robertson,
            p: &p,
            dense: sol.dense.as_ref().unwrap(),
            buffers: Mutex::new(buffers),
            dfdt_buffers: Mutex::new((vec![0.0; 6], vec![0.0; 6])),
            tstops: vec![],
        };
        let m = 6;
        let z = [0.3, -2.0, 1.5, 0.1, 0.2, 0.3];
        let mut jac = vec![0.0; m * m];
        assert!(adj.jacobian(&mut jac, &z, &[], 3.0));
        for j in 0..m {
            let (mut zp, mut zm) = (z, z);
            zp[j] += 1e-3;
            zm[j] -= 1e-3;
            let (mut fp, mut fm) = ([0.0; 6], [0.0; 6]);
            adj.rhs(&mut fp, &zp, &[], 3.0);
            adj.rhs(&mut fm, &zm, &[], 3.0);
            for i in 0..m {
                let fd = (fp[i] - fm[i]) / 2e-3;
                assert!(
                    (fd - jac[i * m + j]).abs() <= 1e-6 * fd.abs().max(1.0),
                    "({i},{j}): {fd} vs {}",
                    jac[i * m + j]
                );
            }
        }
    }
}
