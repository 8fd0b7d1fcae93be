//! One stepping routine for the Rosenbrock (Rodas-family) tableaus in transformed form.
//!
//! The Jacobian is evaluated once per step start and kept across rejections (only `W` is
//! refactored for the new step size). See [`super::tableau::RosenbrockTableau`] for the
//! formulation. Like the explicit steppers, the method is a type (its tableau a constant,
//! stage loops unrolled) and small systems get a stepper specialised to their size.
//!
//! The model's linear conservation laws are found at the first attempt and each stage's
//! component along them, rounding of `J` amplified by `gamma h`, is taken out
//! ([`super::invariants`]): that rounding would move a conserved combination of small
//! states (E5's `y2 - y3 - y4`) by more than their size, unseen by the error estimate.

use super::dense::Interpolant;
use super::invariants::LinearInvariants;
use super::linalg::{JacobianCache, WMatrix};
use super::options::JacobianMethod;
use super::solution::{Stats, StepRecord};
use super::stepper::{StartSlope, Stepper};
use super::tableau::RosenbrockTableau;
use crate::problem::Model;
use std::marker::PhantomData;

/// A Rosenbrock method, identified by its tableau.
pub(crate) trait RosenbrockMethod {
    const TAB: &'static RosenbrockTableau;
}

/// Rodas4.
pub(crate) struct Rodas4;
impl RosenbrockMethod for Rodas4 {
    const TAB: &'static RosenbrockTableau = &super::tableau::rodas4::RODAS4;
}

/// Rodas5P.
pub(crate) struct Rodas5P;
impl RosenbrockMethod for Rodas5P {
    const TAB: &'static RosenbrockTableau = &super::tableau::rodas5p::RODAS5P;
}

/// Buffers of a Rodas-family solve (f64). `N > 0` specialises to exactly `N` states.
pub(crate) struct Rosenbrock<R, const N: usize> {
    n: usize,
    jc: JacobianCache,
    w: WMatrix,
    /// Stage increments, stage-major.
    k: Vec<f64>,
    slope: StartSlope,
    tmp: Vec<f64>,
    rhs: Vec<f64>,
    mk: Vec<f64>,
    kd: Vec<f64>,
    /// The model's linear conservation laws, looked for at the first attempt: each stage's
    /// component along them is rounding, and is taken out (see [`super::invariants`]).
    invariants: Option<LinearInvariants>,
    invariants_sought: bool,
    atol: Vec<f64>,
    rtol: Vec<f64>,
    _method: PhantomData<R>,
}

impl<R: RosenbrockMethod, const N: usize> Rosenbrock<R, N> {
    pub(crate) fn new<M: Model>(model: &M, method: JacobianMethod) -> Self {
        let n = model.n_states();
        let tab = R::TAB;
        debug_assert!(N == 0 || N == n);
        Self {
            n,
            jc: JacobianCache::new(model, method),
            w: WMatrix::new(n),
            k: vec![0.0; tab.stages * n],
            slope: StartSlope::new(n),
            tmp: vec![0.0; n],
            rhs: vec![0.0; n],
            mk: vec![0.0; n],
            kd: vec![0.0; tab.h_dense.len() * n],
            invariants: None,
            // The search differentiates the model by AD, which a finite difference choice
            // asks to avoid.
            invariants_sought: method == JacobianMethod::FiniteDiff,
            atol: vec![0.0; n],
            rtol: vec![0.0; n],
            _method: PhantomData,
        }
    }

    /// Take the step of size `h` from `(t, u)` again, from scratch (`f(u)`, `J` and `W`
    /// recomputed): the discrete adjoint re-creates each accepted step's stages this way
    /// instead of storing them. `scratch` (`2 n`) receives the new state and the error
    /// estimate. False if `W` was singular.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retake<M: Model>(
        &mut self,
        model: &M,
        p: &[f64],
        times: &StepRecord,
        u: &[f64],
        scratch: &mut [f64],
        stats: &mut Stats,
    ) -> bool {
        let (u_new, err) = scratch.split_at_mut(self.n);
        <Self as Stepper<f64, M>>::accept(self, true);
        self.attempt(model, p, times, u, u_new, err, stats);
        err.iter().all(|e| e.is_finite())
    }

    /// The stage increments `k_i` of the last attempt, stage-major.
    pub(crate) fn stages(&self) -> &[f64] {
        &self.k
    }

    /// Solve `W^T x = b` in place with the last attempt's factors.
    pub(crate) fn solve_transpose(&self, b: &mut [f64]) {
        self.w.solve_transpose(b, N);
    }

    #[inline(always)]
    fn n(&self) -> usize {
        if N > 0 {
            N
        } else {
            self.n
        }
    }
}

/// Run `$body` with `$i` bound to each constant 0..=7 below `$s` (stage loop unrolled).
macro_rules! unrolled_stages {
    ($s:expr, |$i:ident| $body:block) => {
        unrolled_stages!(@ $s, $i, $body, 0 1 2 3 4 5 6 7)
    };
    (@ $s:expr, $i:ident, $body:block, $($n:literal)*) => {
        $( if $n < $s { const $i: usize = $n; $body } )*
    };
}

impl<M: Model, R: RosenbrockMethod, const N: usize> Stepper<f64, M> for Rosenbrock<R, N> {
    fn order(&self) -> u32 {
        R::TAB.order
    }

    fn error_order(&self) -> u32 {
        R::TAB.embedded_order + 1
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Rosenbrock { rows: R::TAB.h_dense.len() }
    }

    fn ensure_f0(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], stats: &mut Stats) -> &[f64] {
        self.slope.ensure(model, p, t, u, stats)
    }

    fn set_tolerances(&mut self, atol: &[f64], rtol: &[f64]) {
        self.atol.copy_from_slice(atol);
        self.rtol.copy_from_slice(rtol);
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
        let tab = R::TAB;
        let n = self.n();
        let (t, h) = (times.first, times.h);
        if !self.invariants_sought {
            self.invariants_sought = true;
            self.invariants = LinearInvariants::detect(model, p, t, u, stats);
        }
        if let Some(laws) = self.invariants.as_mut() {
            // Each state's share of a law's correction: its tolerance scale at the step start.
            for ((w, &ui), (&a, &r)) in self.tmp.iter_mut().zip(u).zip(self.atol.iter().zip(&self.rtol)) {
                *w = a + r * ui.abs();
            }
            if !laws.weigh(&self.tmp) {
                self.invariants = None;
            }
        }
        self.ensure_f0(model, p, t, u, stats);
        self.jc.update(model, p, t, u, &self.slope.f0, stats);
        if !self.w.factor(&self.jc, 1.0 / (tab.gamma * h), -1.0, N, stats) {
            err.fill(f64::INFINITY);
            u_new.copy_from_slice(u);
            return;
        }
        let identity_mass = self.jc.mass.is_none();
        let inv_h = 1.0 / h;
        let (u, dfdt) = (&u[..n], &self.jc.dfdt[..n]);
        unrolled_stages!(tab.stages, |I| {
            let (done, rest) = self.k.split_at_mut(I * n);
            let rhs = &mut self.rhs[..n];
            if I == 0 {
                rhs.copy_from_slice(&self.slope.f0[..n]);
            } else {
                let tmp = &mut self.tmp[..n];
                for c in 0..n {
                    let mut acc = u[c];
                    for (j, &a) in tab.a[I].iter().enumerate() {
                        if a != 0.0 {
                            acc += a * done[j * n + c];
                        }
                    }
                    tmp[c] = acc;
                }
                model.rhs(rhs, tmp, p, times.stage_time(tab.c[I]));
                stats.nf += 1;
                // + (1/h) sum_j C_ij M k_j (one multiplication by 1/h per component: a
                // division per coefficient was a visible share of a small system's step)
                for c in 0..n {
                    let mut acc = 0.0;
                    for (j, &cm) in tab.cm[I].iter().enumerate() {
                        if cm != 0.0 {
                            acc += cm * done[j * n + c];
                        }
                    }
                    tmp[c] = acc * inv_h;
                }
                if identity_mass {
                    for c in 0..n {
                        rhs[c] += tmp[c];
                    }
                } else {
                    self.jc.mass_mul(tmp, &mut self.mk);
                    for c in 0..n {
                        rhs[c] += self.mk[c];
                    }
                }
            }
            let hd = h * tab.d[I];
            if hd != 0.0 {
                for c in 0..n {
                    rhs[c] += hd * dfdt[c];
                }
            }
            self.w.solve(rhs, N);
            if let Some(laws) = self.invariants.as_mut() {
                laws.project_out(rhs);
            }
            rest[..n].copy_from_slice(rhs);
        });
        let k = &self.k[..tab.stages * n];
        for c in 0..n {
            let mut un = u[c];
            let mut e = 0.0;
            for i in 0..tab.stages {
                let kv = k[i * n + c];
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
        _times: &StepRecord,
        _u: &[f64],
        _u_new: &[f64],
        _stats: &mut Stats,
    ) -> &[f64] {
        let n = self.n();
        for (r, row) in R::TAB.h_dense.iter().enumerate() {
            for c in 0..n {
                self.kd[r * n + c] = row.iter().enumerate().map(|(i, &hc)| hc * self.k[i * n + c]).sum();
            }
        }
        &self.kd
    }

    fn accept(&mut self, _discontinuity: bool) {
        self.slope.valid = false;
        self.jc.valid = false;
    }
}
