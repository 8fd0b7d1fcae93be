//! One stepping routine for the Rosenbrock (Rodas-family) tableaus in transformed form.
//!
//! The Jacobian is evaluated once per step start and kept across rejections (only `W` is
//! refactored for the new step size). See [`super::tableau::RosenbrockTableau`] for the
//! formulation.

use super::dense::Interpolant;
use super::linalg::{JacobianCache, WMatrix};
use super::options::JacobianMethod;
use super::solution::Stats;
use super::stepper::Stepper;
use super::tableau::RosenbrockTableau;
use crate::Model;

/// Buffers of a Rodas-family solve (f64).
pub(crate) struct Rosenbrock {
    tab: &'static RosenbrockTableau,
    n: usize,
    jc: JacobianCache,
    w: WMatrix,
    /// Stage increments, stage-major.
    k: Vec<f64>,
    f0: Vec<f64>,
    f0_valid: bool,
    tmp: Vec<f64>,
    rhs: Vec<f64>,
    mk: Vec<f64>,
    kd: Vec<f64>,
}

impl Rosenbrock {
    pub(crate) fn new<M: Model>(model: &M, tab: &'static RosenbrockTableau, method: JacobianMethod) -> Self {
        let n = model.n_states();
        Self {
            tab,
            n,
            jc: JacobianCache::new(model, method),
            w: WMatrix::new(n),
            k: vec![0.0; tab.stages * n],
            f0: vec![0.0; n],
            f0_valid: false,
            tmp: vec![0.0; n],
            rhs: vec![0.0; n],
            mk: vec![0.0; n],
            kd: vec![0.0; tab.h_dense.len() * n],
        }
    }
}

impl<M: Model> Stepper<f64, M> for Rosenbrock {
    fn order(&self) -> u32 {
        self.tab.order
    }

    fn error_order(&self) -> u32 {
        self.tab.embedded_order + 1
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Rosenbrock { rows: self.tab.h_dense.len() }
    }

    fn ensure_f0(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], stats: &mut Stats) -> &[f64] {
        if !self.f0_valid {
            model.rhs(&mut self.f0, u, p, t);
            stats.nf += 1;
            self.f0_valid = true;
        }
        &self.f0
    }

    fn attempt(
        &mut self,
        model: &M,
        p: &[f64],
        t: f64,
        h: f64,
        u: &[f64],
        u_new: &mut [f64],
        err: &mut [f64],
        stats: &mut Stats,
    ) {
        let tab = self.tab;
        let n = self.n;
        self.ensure_f0(model, p, t, u, stats);
        self.jc.update(model, p, t, u, &self.f0, stats);
        if !self.w.factor(&self.jc, 1.0 / (tab.gamma * h), -1.0, stats) {
            err.fill(f64::INFINITY);
            u_new.copy_from_slice(u);
            return;
        }
        for i in 0..tab.stages {
            let (done, rest) = self.k.split_at_mut(i * n);
            if i == 0 {
                self.rhs.copy_from_slice(&self.f0);
            } else {
                for c in 0..n {
                    let mut acc = u[c];
                    for (j, &a) in tab.a[i].iter().enumerate() {
                        if a != 0.0 {
                            acc += a * done[j * n + c];
                        }
                    }
                    self.tmp[c] = acc;
                }
                model.rhs(&mut self.rhs, &self.tmp, p, t + tab.c[i] * h);
                stats.nf += 1;
                // + sum_j (C_ij / h) M k_j
                self.tmp.fill(0.0);
                for (j, &cm) in tab.cm[i].iter().enumerate() {
                    if cm != 0.0 {
                        for c in 0..n {
                            self.tmp[c] += (cm / h) * done[j * n + c];
                        }
                    }
                }
                self.jc.mass_mul(&self.tmp, &mut self.mk);
                for c in 0..n {
                    self.rhs[c] += self.mk[c];
                }
            }
            let hd = h * tab.d[i];
            if hd != 0.0 {
                for c in 0..n {
                    self.rhs[c] += hd * self.jc.dfdt[c];
                }
            }
            self.w.solve(&mut self.rhs);
            rest[..n].copy_from_slice(&self.rhs);
        }
        for c in 0..n {
            let mut un = u[c];
            let mut e = 0.0;
            for i in 0..tab.stages {
                let kv = self.k[i * n + c];
                un += tab.m[i] * kv;
                e += tab.m_err[i] * kv;
            }
            u_new[c] = un;
            err[c] = e;
        }
    }

    fn dense_data(
        &mut self,
        _model: &M,
        _p: &[f64],
        _t: f64,
        _h: f64,
        _u: &[f64],
        _u_new: &[f64],
        _stats: &mut Stats,
    ) -> &[f64] {
        let n = self.n;
        for (r, row) in self.tab.h_dense.iter().enumerate() {
            for c in 0..n {
                self.kd[r * n + c] = row.iter().enumerate().map(|(i, &hc)| hc * self.k[i * n + c]).sum();
            }
        }
        &self.kd
    }

    fn accept(&mut self, _discontinuity: bool) {
        self.f0_valid = false;
        self.jc.valid = false;
    }
}
