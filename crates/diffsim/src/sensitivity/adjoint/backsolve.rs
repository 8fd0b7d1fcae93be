//! Backsolve adjoint: `u` is solved backwards from `u(t1)` together with the adjoint,
//!
//! ```text
//! u' = f(u),   lambda' = -(df/du)^T lambda,   mu' = -(df/dp)^T lambda,
//! ```
//!
//! so nothing of the forward solve is stored but the states at the save times, from which
//! `u` is restarted at each one (the loss needs them anyway). It is **unstable** on stiff
//! and dissipative
//! problems: backwards in time every decaying mode grows, so the tolerance-sized errors of
//! the backward `u` are amplified by `exp(rate * span)` and the `u(t)` the adjoint sees
//! leaves the forward trajectory. Never chosen by `Auto`; kept for non-dissipative
//! (e.g. Hamiltonian) problems where its O(1) memory pays, and to show the failure (see the
//! tests). A stiff forward method still gets a Rodas5P backward solve, whose Jacobian is
//! taken by central differences of the coupled right-hand side.

use super::model::{lock, Buffers};
use super::{backward_alg, backward_options, forward_loss, reject_mass_matrix, solve_segment, Crossing, Sweep};
use crate::ad::VjpMethod;
use crate::capabilities::{AnalyticJacobian, AnalyticTimeDerivative, Derivatives};
use crate::error::Result;
use crate::problem::{Model, Problem};
use crate::scalar::Scalar;
use crate::sensitivity::event_jump::Jumps;
use crate::sensitivity::switches::JumpTerms;
use crate::sensitivity::{Gradient, SavedLoss};
use crate::solve::{Algorithm, SolveOptions};
use std::cell::Cell;
use std::sync::Mutex;

/// The coupled system `(u, lambda, mu)` integrated backwards.
struct BacksolveModel<'a, M> {
    model: &'a M,
    p: &'a [f64],
    buffers: &'a Mutex<Buffers>,
    scratch: Mutex<Vec<f64>>,
    tstops: &'a [f64],
}

impl<M: Model> BacksolveModel<'_, M> {
    fn eval<T: Scalar>(&self, dz: &mut [T], z: &[T], t: f64) {
        let n = self.model.n_states();
        let mut guard = lock(self.buffers);
        let b = &mut *guard;
        let (u, w) = (&mut b.u, &mut b.w);
        for (ui, zi) in u.iter_mut().zip(&z[..n]) {
            *ui = zi.value();
        }
        for (wi, zi) in w.iter_mut().zip(&z[n..2 * n]) {
            *wi = zi.value();
        }
        self.model.rhs(&mut b.f, u, self.p, t);
        b.du.fill(0.0);
        b.dp.fill(0.0);
        b.vjp.apply(self.model, w, u, self.p, t, &mut b.du, &mut b.dp);
        for (o, &v) in dz[..n].iter_mut().zip(b.f.iter()) {
            *o = T::from_f64(v);
        }
        for (o, &v) in dz[n..2 * n].iter_mut().zip(b.du.iter()) {
            *o = T::from_f64(-v);
        }
        for (o, &v) in dz[2 * n..].iter_mut().zip(b.dp.iter()) {
            *o = T::from_f64(-v);
        }
    }
}

impl<M: Model> Model for BacksolveModel<'_, M> {
    fn n_states(&self) -> usize {
        2 * self.model.n_states() + self.p.len()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, dz: &mut [T], z: &[T], _p: &[T], t: T) {
        self.eval(dz, z, t.value());
    }
    fn tstops(&self, _p: &[f64]) -> Vec<f64> {
        self.tstops.to_vec()
    }
    fn derivatives(&self) -> Derivatives<'_> {
        Derivatives::none().jacobian(self).time_derivative(self)
    }
}

impl<M: Model> AnalyticJacobian for BacksolveModel<'_, M> {
    fn jacobian(&self, jac: &mut [f64], z: &[f64], _p: &[f64], t: f64) {
        // Central differences in u and lambda; nothing depends on mu.
        let m = z.len();
        let n = self.model.n_states();
        jac.fill(0.0);
        let mut s = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let (zz, rest) = s.split_at_mut(m);
        let (fp, fm) = rest.split_at_mut(m);
        zz.copy_from_slice(z);
        for j in 0..2 * n {
            let h = 1e-7 * z[j].abs().max(1e-5);
            zz[j] = z[j] + h;
            self.eval(fp, zz, t);
            zz[j] = z[j] - h;
            self.eval(fm, zz, t);
            zz[j] = z[j];
            for i in 0..m {
                jac[i * m + j] = (fp[i] - fm[i]) / (2.0 * h);
            }
        }
    }
}

impl<M: Model> AnalyticTimeDerivative for BacksolveModel<'_, M> {
    fn time_derivative(&self, dfdt: &mut [f64], z: &[f64], _p: &[f64], t: f64) {
        let m = z.len();
        let delta = 1e-6 * t.abs().max(1e-3);
        let mut s = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let (_, rest) = s.split_at_mut(m);
        let (fp, fm) = rest.split_at_mut(m);
        self.eval(fp, z, t + delta);
        self.eval(fm, z, t - delta);
        for ((d, a), b) in dfdt.iter_mut().zip(fp.iter()).zip(fm.iter()) {
            *d = (a - b) / (2.0 * delta);
        }
    }
}

/// dL/dp and dL/du0 by the backsolve adjoint.
pub(crate) fn backsolve_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
) -> Result<Gradient> {
    let model = &problem.model;
    reject_mass_matrix(model, "backsolve adjoint")?;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let (sol, value, mut g) = forward_loss(problem, alg, opts, loss, false)?;
    let buffers = Buffers::new(model, vjp)?;
    let tstops = model.tstops(&problem.p);
    let m = 2 * n + np;
    let coupled = BacksolveModel {
        model,
        p: &problem.p,
        buffers: &buffers,
        scratch: Mutex::new(vec![0.0; 3 * m]),
        tstops: &tstops,
    };
    let back_alg = backward_alg(alg, sol.alg);
    let mut z = vec![0.0; m];
    z[..n].copy_from_slice(sol.u_final());
    let mut switches = JumpTerms::new(model, &problem.p, problem.tspan)?;
    let jumps = Jumps::new(&sol, &mut g);
    let mut sweep = Sweep::new(n, n, &sol, &g, problem.tspan, z).with_switches(switches.times());
    let back_opts = backward_options(opts, n, m);
    let hint = Cell::new(0.0);
    sweep.back_to(
        problem.tspan.0,
        |z, a, b, stats| {
            // Restart u from the forward solution at each save time (stored anyway for the
            // loss), as diffrax and torchdiffeq do: the backward u's error then builds up over
            // one interval between saves, not over the whole span.
            if let Some(i) = sol.t.iter().position(|&t| t == a) {
                z[..n].copy_from_slice(sol.u(i));
            }
            solve_segment(&coupled, z, &[], (a, b), back_alg, &back_opts, false, &hint, stats).map(|_| ())
        },
        |z, crossing| match crossing {
            Crossing::Switch(t) => switches.add(model, &problem.p, t, &z[..n], &z[n..2 * n]),
            Crossing::Jump(j) => {
                // u from the state before the jump (the forward solve's), lambda across it.
                let (u, rest) = z.split_at_mut(n);
                u.copy_from_slice(&jumps.records[j].u_before);
                let (lambda, mu) = rest.split_at_mut(n);
                jumps.back_across(j, model, &problem.p, lambda, mu);
            }
        },
    )?;
    sweep.finish();
    let mut stats = sol.stats;
    stats += sweep.stats;
    stats.nf += lock(&buffers).vjp.evals;
    let z = sweep.z;
    let mut dp = z[2 * n..].to_vec();
    switches.add_to(&mut dp);
    Ok(Gradient::computed(value, dp, z[n..2 * n].to_vec(), stats))
}
