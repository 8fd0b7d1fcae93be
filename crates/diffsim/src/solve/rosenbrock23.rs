//! Rosenbrock23: the L-stable order-2 Rosenbrock-W method of Shampine & Reichelt's
//! `ode23s` (SIAM J. Sci. Comput. 18, 1997), with its order-3 error estimate and its own
//! interpolant. With a mass matrix it uses `W = M - d h J`.
//!
//! ```text
//! k1 = W^{-1} (f0 + h d df/dt)
//! f1 = f(u + h/2 k1, t + h/2)
//! k2 = W^{-1} (f1 - M k1) + k1
//! u_new = u + h k2,  f2 = f(u_new, t + h)          (f2 is the next step's f0)
//! k3 = W^{-1} (f2 - e32 (M k2 - f1) - 2 (M k1 - f0) + h d df/dt)
//! err = h/6 (k1 - 2 k2 + k3),   d = 1/(2 + sqrt 2),  e32 = 6 + sqrt 2
//! ```

use super::dense::Interpolant;
use super::linalg::{JacobianCache, WMatrix};
use super::options::JacobianMethod;
use super::solution::{Stats, StepRecord};
use super::stepper::{StartSlope, Stepper};
use crate::problem::Model;

const D: f64 = 0.292_893_218_813_452_5; // 1 / (2 + sqrt(2))
const E32: f64 = 7.414_213_562_373_095; // 6 + sqrt(2)

/// Buffers of a Rosenbrock23 solve (f64).
pub(crate) struct Rosenbrock23 {
    n: usize,
    jc: JacobianCache,
    w: WMatrix,
    slope: StartSlope,
    f1: Vec<f64>,
    f2: Vec<f64>,
    /// k1 then k2 (the interpolation data).
    k12: Vec<f64>,
    k3: Vec<f64>,
    tmp: Vec<f64>,
    mk: Vec<f64>,
}

impl Rosenbrock23 {
    pub(crate) fn new<M: Model>(model: &M, method: JacobianMethod) -> Self {
        let n = model.n_states();
        let z = || vec![0.0; n];
        Self {
            n,
            jc: JacobianCache::new(model, method),
            w: WMatrix::new(n),
            slope: StartSlope::new(n),
            f1: z(),
            f2: z(),
            k12: vec![0.0; 2 * n],
            k3: z(),
            tmp: z(),
            mk: z(),
        }
    }
}

impl<M: Model> Stepper<f64, M> for Rosenbrock23 {
    fn order(&self) -> u32 {
        2
    }

    fn error_order(&self) -> u32 {
        3
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Rosenbrock23 { d: D }
    }

    fn ensure_f0(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], stats: &mut Stats) -> &[f64] {
        self.slope.ensure(model, p, t, u, stats)
    }

    fn attempt(
        &mut self,
        model: &M,
        p: &[f64],
        times: &StepRecord,
        u: &[f64],
        u_new: &mut [f64],
        err: &mut [f64],
        stats: &mut Stats,
    ) {
        let n = self.n;
        let (t, h) = (times.first, times.h);
        self.ensure_f0(model, p, t, u, stats);
        self.jc.update(model, p, t, u, &self.slope.f0, stats);
        if !self.w.factor(&self.jc, 1.0, -D * h, 0, stats) {
            err.fill(f64::INFINITY);
            u_new.copy_from_slice(u);
            return;
        }
        let hd = h * D;
        let (k1, k2) = self.k12.split_at_mut(n);
        for c in 0..n {
            k1[c] = self.slope.f0[c] + hd * self.jc.dfdt[c];
        }
        self.w.solve(k1, 0);
        for c in 0..n {
            self.tmp[c] = u[c] + 0.5 * h * k1[c];
        }
        model.rhs(&mut self.f1, &self.tmp, p, times.stage_time(0.5));
        self.jc.mass_mul(k1, &mut self.mk);
        for c in 0..n {
            k2[c] = self.f1[c] - self.mk[c];
        }
        self.w.solve(k2, 0);
        for c in 0..n {
            k2[c] += k1[c];
            u_new[c] = u[c] + h * k2[c];
        }
        model.rhs(&mut self.f2, u_new, p, times.stage_time(1.0));
        stats.nf += 2;
        // k3 = W^{-1}(f2 - e32 (M k2 - f1) - 2 (M k1 - f0) + h d df/dt)
        for c in 0..n {
            self.tmp[c] = E32 * k2[c] + 2.0 * k1[c];
        }
        self.jc.mass_mul(&self.tmp, &mut self.mk);
        for c in 0..n {
            self.k3[c] = self.f2[c] - self.mk[c] + E32 * self.f1[c] + 2.0 * self.slope.f0[c] + hd * self.jc.dfdt[c];
        }
        self.w.solve(&mut self.k3, 0);
        for c in 0..n {
            err[c] = h / 6.0 * (k1[c] - 2.0 * k2[c] + self.k3[c]);
        }
    }

    fn dense_data(
        &mut self,
        _model: &M,
        _p: &[f64],
        _times: &StepRecord,
        _u: &[f64],
        _u_new: &[f64],
        _stats: &mut Stats,
    ) -> &[f64] {
        &self.k12
    }

    fn accept(&mut self, discontinuity: bool) {
        self.jc.valid = false;
        if discontinuity {
            self.slope.valid = false;
        } else {
            std::mem::swap(&mut self.slope.f0, &mut self.f2);
            self.slope.valid = true;
        }
    }
}
