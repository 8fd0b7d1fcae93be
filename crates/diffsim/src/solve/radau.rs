//! Radau IIA methods (Hairer and Wanner's RADAU5, and the higher orders of their RADAU) as
//! one [`Stepper`] for the shared driver: [`Algorithm::Radau5`] (3 stages, order 5) and
//! [`Algorithm::Radau9`] (5 stages, order 9), the stage count a parameter of the tableau
//! ([`RadauTableau`]).
//!
//! **The method.** `s`-stage collocation at the Radau nodes (`c_s = 1`): order `2 s - 1`,
//! stiffly accurate (`u1` is the last stage), L-stable; index-1 DAEs `M u' = f` with a
//! singular mass matrix are solved as they are. Reference: Hairer & Wanner, *Solving
//! Ordinary Differential Equations II*, section IV.8, and their paper on the
//! variable-order RADAU (*Stiff differential equations solved by Radau methods*, 1999).
//!
//! **The Newton iteration.** The stage increments `Z = (z_1, .., z_s)` solve
//! `(A^-1 (x) M) Z / h = F(Z)`. The simplified Newton iteration works on
//! `W = (T^-1 (x) I) Z`, where `T^-1 A^-1 T` is block diagonal with the real eigenvalue
//! `gamma` of `A^-1` and a `[[alpha_k, -beta_k], [beta_k, alpha_k]]` block per complex pair:
//! the `s n x s n` system splits into the real `(gamma / h) M - J` and one complex
//! `((alpha_k + i beta_k) / h) M - J` per pair ([`super::complex_lu`]). It stops when
//! `theta / (1 - theta) |dW| <= fnewt` (`theta` the observed contraction, `|.|` the RMS
//! norm scaled by the tolerances), gives up at `theta >= 0.99` or after `7 + 5 (s - 3) / 2`
//! iterations (the step is retried at half size), and rejects early, with the step size
//! RADAU predicts, when the contraction seen so far cannot reach `fnewt` in the iterations
//! left. It starts from the previous step's collocation polynomial extrapolated (zero after
//! a start or a tstop).
//!
//! **Reuse.** The Jacobian is kept across steps while the Newton iteration contracts fast
//! (`theta <= 0.001`) and recomputed otherwise, at tstops, and when a step fails with a
//! Jacobian from an earlier step; the factorisations are kept while the step size is: the
//! next step keeps `h` when the controller proposes a change within `[1, 1.2]`.
//!
//! **The error estimate** is the embedded order-`s` one filtered by the real matrix:
//! `err = ((gamma / h) M - J)^-1 (f(u0) + M sum_i dd_i z_i / h)`, and on the first step and
//! after a rejection, when that is above 1, the stabilised
//! `((gamma / h) M - J)^-1 (f(u0 + err) + M sum_i dd_i z_i / h)` (one more `f`). Like every
//! filtered estimate it damps the error of the fast states at the end of a long step: on
//! HIRES they can be off by far more than the tolerance there, an error the following steps
//! relax away (bench/peers/README.md, session 27).
//!
//! **Tolerances.** As RADAU, the method works internally with
//! `rtol' = 0.1 rtol^((s + 1) / (2 s))` and `atol' = atol rtol' / rtol` (its error estimate
//! is of order `s` only: the transformed tolerances make the global error of the
//! order-`2 s - 1` solution track the user's `rtol`), and
//! `fnewt = max(10 uround / rtol', min(0.03, rtol'^(2 s / (s + 1) - 1)))`. The driver measures
//! the error against the user's tolerances, so the error vector handed to it is scaled by
//! `rtol / rtol'` per component: the driver's norm then equals RADAU's.
//!
//! **Step size**: the stepper chooses it ([`Stepper::next_step_after_accept`]): Gustafsson's
//! predictive controller (exponent `1 / (s + 1)`) with the safety factor lowered by the
//! Newton iterations taken, as RADAU (`h` shrinks at most 5-fold and grows at most 8-fold
//! per step).
//!
//! **Dense output**: the collocation polynomial (RADAU5's CONTR5 generalised: Newton divided
//! differences), [`Interpolant::Collocation`], of order `s` between the steps.
//!
//! **Scope.** `f64` only, one stepper for every size and both orders (no specialisation:
//! every model type compiles every solver). The driver owns time, tstops, saving and
//! rejection; a DAE's start must already be consistent (the dispatcher's `dae_init` makes
//! it so). [`Stats::nlu`] counts each real and complex factorisation as one (a complex one
//! costs about four real ones of the same size).

use super::complex_lu::ComplexW;
use super::dense::Interpolant;
use super::linalg::{JacobianCache, WMatrix};
use super::options::JacobianMethod;
use super::solution::{Stats, StepRecord};
use super::stepper::{StartSlope, Stepper};
use super::tableau::radau::{RadauTableau, RADAU_IIA_3, RADAU_IIA_5};
#[cfg(any(test, doc))]
use super::Algorithm;
use crate::problem::Model;

/// The most stages any tableau has (the divided differences' scratch).
const MAX_STAGES: usize = 7;

/// The tableau of `S` stages.
const fn tableau<const S: usize>() -> &'static RadauTableau {
    if S == 5 {
        &RADAU_IIA_5
    } else {
        &RADAU_IIA_3
    }
}

/// RADAU's defaults: the contraction under which the Jacobian is kept, the safety factor,
/// the step-size bounds (`h` shrinks at most 5x and grows at most 8x per step), the window
/// of step-size ratios that keep `h`, and its unit roundoff.
const THET: f64 = 0.001;
const SAFE: f64 = 0.9;
const FACL: f64 = 5.0;
const FACR: f64 = 0.125;
const QUOT1: f64 = 1.0;
const QUOT2: f64 = 1.2;
const UROUND: f64 = 1e-16;

/// The state of an `s`-stage Radau IIA solve (f64).
pub(crate) struct RadauIIA<const S: usize> {
    n: usize,
    jc: JacobianCache,
    w_real: WMatrix,
    w_cplx: Vec<ComplexW>,
    lu_h: f64,
    jac_at_start: bool,
    slope: StartSlope,
    /// Stage increments `Z`, their transforms `W`, the stage values / corrections, `M W`
    /// (`s n` each, stage-major).
    z: Vec<f64>,
    w: Vec<f64>,
    fs: Vec<f64>,
    mw: Vec<f64>,
    y: Vec<f64>,
    scal: Vec<f64>,
    est: Vec<f64>,
    f2: Vec<f64>,
    /// The collocation polynomial's Newton coefficients of the last accepted step (`s n`).
    cont: Vec<f64>,
    cont_fresh: bool,
    have_cont: bool,
    atol: Vec<f64>,
    rtol: Vec<f64>,
    err_scale: Vec<f64>,
    fnewt: f64,
    faccon: f64,
    theta: f64,
    newt: usize,
    h_last: f64,
    h_old: f64,
    h_acc: f64,
    err_acc: f64,
    h_proposed: f64,
    naccept: usize,
    first: bool,
    rejected: bool,
    accepted_after_reject: bool,
    fail_factor: Option<f64>,
}

impl<const S: usize> RadauIIA<S> {
    /// The coefficients, a constant of the type (so that they fold into the loops).
    const TAB: &'static RadauTableau = tableau::<S>();
    /// Newton iterations before a step gives up (RADAU's `7 + 5 (s - 3) / 2`).
    const NIT: usize = 7 + 5 * (S - 3) / 2;

    /// The stepper of `S` stages: 3 for [`Algorithm::Radau5`], 5 for [`Algorithm::Radau9`]
    /// (the stage count a constant, so that the per-component loops over stages unroll).
    pub(crate) fn new<M: Model>(model: &M, method: JacobianMethod) -> Self {
        let tab = Self::TAB;
        let n = model.n_states();
        let s = S;
        debug_assert!(s % 2 == 1 && s <= MAX_STAGES && tab.stages == s && tab.nodes.len() == s);
        let v = |k: usize| vec![0.0; k * n];
        let mut st = Self {
            n,
            jc: JacobianCache::new(model, method),
            w_real: WMatrix::new(n),
            w_cplx: (0..s / 2).map(|_| ComplexW::new(n)).collect(),
            lu_h: f64::NAN,
            jac_at_start: false,
            slope: StartSlope::new(n),
            z: v(s),
            w: v(s),
            fs: v(s),
            mw: v(s),
            y: v(1),
            scal: v(1),
            est: v(1),
            f2: v(1),
            cont: v(s),
            cont_fresh: false,
            have_cont: false,
            atol: Vec::new(),
            rtol: Vec::new(),
            err_scale: Vec::new(),
            fnewt: 0.0,
            faccon: 1.0,
            theta: THET,
            newt: 0,
            h_last: 0.0,
            h_old: 0.0,
            h_acc: 0.0,
            err_acc: 1e-2,
            h_proposed: 0.0,
            naccept: 0,
            first: true,
            rejected: false,
            accepted_after_reject: false,
            fail_factor: None,
        };
        st.transform_tolerances(&vec![1e-6; n], &vec![1e-6; n]);
        st
    }

    /// RADAU's internal tolerances (module docs).
    fn transform_tolerances(&mut self, atol: &[f64], rtol: &[f64]) {
        let expm = (S as f64 + 1.0) / (2.0 * S as f64);
        self.atol.clear();
        self.rtol.clear();
        self.err_scale.clear();
        for (&a, &r) in atol.iter().zip(rtol) {
            let (a2, r2, scale) = if r > 0.0 {
                let r2 = 0.1 * r.powf(expm);
                (a * r2 / r, r2, r / r2)
            } else {
                let a2 = 0.1 * a.powf(expm);
                (a2, 0.0, a / a2)
            };
            self.atol.push(a2);
            self.rtol.push(r2);
            self.err_scale.push(scale);
        }
        let smallest = |v: &[f64]| v.iter().copied().filter(|&x| x > 0.0).fold(f64::INFINITY, f64::min);
        let tolst = smallest(&self.rtol);
        let tolst = if tolst.is_finite() { tolst } else { smallest(&self.atol) };
        self.fnewt = (10.0 * UROUND / tolst).max(0.03f64.min(tolst.powf(1.0 / expm - 1.0)));
    }

    fn fail(&mut self, u: &[f64], u_new: &mut [f64], err: &mut [f64], factor: f64, nonfinite: bool) {
        self.fail_factor = Some(factor);
        err.fill(f64::INFINITY);
        if nonfinite {
            u_new.fill(f64::NAN);
        } else {
            u_new.copy_from_slice(u);
        }
    }

    /// `T^-1` applied to the `s` values `a` of one component.
    #[inline(always)]
    fn transform(m: &[f64], a: &[f64; S]) -> [f64; S] {
        let m = &m[..S * S];
        std::array::from_fn(|i| (0..S).map(|j| m[i * S + j] * a[j]).sum())
    }

    /// The collocation polynomial of the last step, evaluated at `x` (in `s = theta - 1`
    /// of that step) for component `i`, relative to the step's end state.
    #[inline(always)]
    fn cont_at(&self, i: usize, x: f64) -> f64 {
        let n = self.n;
        let mut acc = self.cont[(S - 1) * n + i];
        for k in (1..S).rev() {
            acc = acc * (x - Self::TAB.nodes[k]) + self.cont[(k - 1) * n + i];
        }
        acc * x
    }

    /// Newton's starting values: the last step's collocation polynomial extrapolated, or 0.
    fn starting_values(&mut self, h: f64) {
        let (n, s) = (self.n, S);
        if !self.have_cont {
            self.z.fill(0.0);
            self.w.fill(0.0);
            return;
        }
        let ratio = h / self.h_old;
        for i in 0..n {
            let mut zi = [0.0; S];
            for (k, z) in zi.iter_mut().enumerate() {
                *z = self.cont_at(i, Self::TAB.c[k] * ratio);
            }
            let wi = Self::transform(Self::TAB.ti, &zi);
            for k in 0..s {
                self.z[k * n + i] = zi[k];
                self.w[k * n + i] = wi[k];
            }
        }
    }

    /// The simplified Newton iteration. `Err((factor, nonfinite))` when it fails.
    fn newton<M: Model>(
        &mut self,
        model: &M,
        p: &[f64],
        times: &StepRecord,
        u: &[f64],
        stats: &mut Stats,
    ) -> std::result::Result<(), (f64, bool)> {
        let (n, s, tab) = (self.n, S, Self::TAB);
        let h = times.h;
        let fac1 = tab.gamma / h;
        let identity = self.jc.mass.is_none();
        self.faccon = self.faccon.max(UROUND).powf(0.8);
        self.theta = THET;
        let (mut dynold, mut thqold) = (0.0, 0.0);
        let mut newt = 0;
        loop {
            if newt >= Self::NIT {
                return Err((0.5, false));
            }
            for k in 0..s {
                for i in 0..n {
                    self.y[i] = u[i] + self.z[k * n + i];
                }
                model.rhs(&mut self.fs[k * n..(k + 1) * n], &self.y, p, times.stage_time(tab.c[k]));
            }
            stats.nf += s;
            if !self.fs.iter().all(|v| v.is_finite()) {
                return Err((0.5, true));
            }
            if !identity {
                for k in 0..s {
                    self.jc.mass_mul(&self.w[k * n..(k + 1) * n], &mut self.mw[k * n..(k + 1) * n]);
                }
            }
            let mw = if identity { &self.w } else { &self.mw };
            let fs = &mut self.fs;
            for i in 0..n {
                let mut a = [0.0; S];
                let mut m = [0.0; S];
                for k in 0..s {
                    a[k] = fs[k * n + i];
                    m[k] = mw[k * n + i];
                }
                let tf = Self::transform(tab.ti, &a);
                fs[i] = tf[0] - fac1 * m[0];
                for (pair, (&al, &be)) in tab.alpha.iter().zip(tab.beta).enumerate() {
                    let (r, q) = (1 + 2 * pair, 2 + 2 * pair);
                    let (al, be) = (al / h, be / h);
                    fs[r * n + i] = tf[r] - al * m[r] + be * m[q];
                    fs[q * n + i] = tf[q] - al * m[q] - be * m[r];
                }
            }
            let (r1, mut rest) = fs.split_at_mut(n);
            self.w_real.solve(r1, 0);
            for w in &mut self.w_cplx {
                let (re, tail) = rest.split_at_mut(n);
                let (im, tail) = tail.split_at_mut(n);
                w.solve(re, im);
                rest = tail;
            }
            newt += 1;
            let mut sum = 0.0;
            for k in 0..s {
                for i in 0..n {
                    let r = fs[k * n + i] / self.scal[i];
                    sum += r * r;
                }
            }
            let dyno = (sum / (s * n) as f64).sqrt();
            if !dyno.is_finite() {
                return Err((0.5, false));
            }
            if newt > 1 && newt < Self::NIT {
                let thq = dyno / dynold;
                self.theta = if newt == 2 { thq } else { (thq * thqold).sqrt() };
                thqold = thq;
                if self.theta >= 0.99 {
                    return Err((0.5, false));
                }
                self.faccon = self.theta / (1.0 - self.theta);
                let left = (Self::NIT - 1 - newt) as i32;
                let dyth = self.faccon * dyno * self.theta.powi(left) / self.fnewt;
                if dyth >= 1.0 {
                    let qnewt = dyth.clamp(1e-4, 20.0);
                    return Err((0.8 * qnewt.powf(-1.0 / (s as f64 + 1.0 + left as f64)), false));
                }
            }
            dynold = dyno.max(UROUND);
            let (w, z) = (&mut self.w, &mut self.z);
            for i in 0..n {
                let mut wi = [0.0; S];
                for k in 0..s {
                    w[k * n + i] += fs[k * n + i];
                    wi[k] = w[k * n + i];
                }
                let zi = Self::transform(tab.t, &wi);
                for k in 0..s {
                    z[k * n + i] = zi[k];
                }
            }
            if self.faccon * dyno <= self.fnewt {
                self.newt = newt;
                return Ok(());
            }
        }
    }

    /// The filtered error estimate into `est` (module docs).
    fn estimate_error<M: Model>(
        &mut self,
        model: &M,
        p: &[f64],
        times: &StepRecord,
        u: &[f64],
        u_new: &[f64],
        stats: &mut Stats,
    ) {
        let (n, s) = (self.n, S);
        let h = times.h;
        for i in 0..n {
            self.y[i] = (0..s).map(|k| Self::TAB.dd[k] * self.z[k * n + i]).sum::<f64>() / h;
        }
        self.jc.mass_mul(&self.y, &mut self.f2);
        for i in 0..n {
            self.est[i] = self.f2[i] + self.slope.f0[i];
        }
        self.w_real.solve(&mut self.est, 0);
        if (self.first || self.rejected) && self.scaled_norm(u, u_new) >= 1.0 {
            for i in 0..n {
                self.y[i] = u[i] + self.est[i];
            }
            model.rhs(&mut self.fs[..n], &self.y, p, times.first);
            stats.nf += 1;
            for i in 0..n {
                self.est[i] = self.fs[i] + self.f2[i];
            }
            self.w_real.solve(&mut self.est, 0);
        }
    }

    fn scaled_norm(&self, u: &[f64], u_new: &[f64]) -> f64 {
        let n = self.n;
        let sum: f64 = (0..n)
            .map(|i| {
                let sc = self.atol[i] + self.rtol[i] * u[i].abs().max(u_new[i].abs());
                (self.est[i] / sc).powi(2)
            })
            .sum();
        (sum / n as f64).sqrt()
    }

    /// The collocation polynomial of the step just taken, through `(0, 0)`,
    /// `(c_k - 1, z_k - z_s)` and `(-1, -z_s)` in `s = theta - 1` (relative to the end
    /// state), as Newton divided differences on the nodes `0, c_{s-1} - 1, ..., c_1 - 1, -1`.
    fn compute_cont(&mut self) {
        let (n, s) = (self.n, S);
        let mut x = [0.0; MAX_STAGES + 1];
        x[..s].copy_from_slice(Self::TAB.nodes);
        x[s] = -1.0;
        for i in 0..n {
            let zs = self.z[(s - 1) * n + i];
            // Values at the nodes: 0, then z_{s-k} - z_s, then -z_s.
            let mut d = [0.0; MAX_STAGES + 1];
            for k in 1..s {
                d[k] = self.z[(s - 1 - k) * n + i] - zs;
            }
            d[s] = -zs;
            for level in 1..=s {
                for k in (level..=s).rev() {
                    d[k] = (d[k] - d[k - 1]) / (x[k] - x[k - level]);
                }
            }
            for k in 1..=s {
                self.cont[(k - 1) * n + i] = d[k];
            }
        }
        self.cont_fresh = true;
    }

    fn quotient(&self, err: f64) -> f64 {
        let fac = SAFE.min(SAFE * (1 + 2 * Self::NIT) as f64 / (self.newt + 2 * Self::NIT) as f64);
        (err.powf(1.0 / (S as f64 + 1.0)) / fac).clamp(FACR, FACL)
    }
}

impl<M: Model, const S: usize> Stepper<f64, M> for RadauIIA<S> {
    fn order(&self) -> u32 {
        2 * S as u32 - 1
    }

    fn error_order(&self) -> u32 {
        S as u32 + 1
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Collocation(Self::TAB.nodes)
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
        let (n, s) = (self.n, S);
        let h = times.h;
        self.h_last = h;
        self.fail_factor = None;
        self.cont_fresh = false;
        self.ensure_f0(model, p, times.first, u, stats);
        if !self.jc.valid {
            self.jc.update(model, p, times.first, u, &self.slope.f0, stats);
            self.jac_at_start = true;
            self.lu_h = f64::NAN;
        }
        if self.lu_h != h {
            let tab = Self::TAB;
            let mut ok = self.w_real.factor(&self.jc, tab.gamma / h, -1.0, 0, stats);
            for (w, (&al, &be)) in self.w_cplx.iter_mut().zip(tab.alpha.iter().zip(tab.beta)) {
                ok = ok && w.factor(&self.jc, al / h, be / h, stats);
            }
            if !ok {
                self.lu_h = f64::NAN;
                return self.fail(u, u_new, err, 0.5, false);
            }
            self.lu_h = h;
        }
        for i in 0..n {
            self.scal[i] = self.atol[i] + self.rtol[i] * u[i].abs();
        }
        self.starting_values(h);
        if let Err((factor, nonfinite)) = self.newton(model, p, times, u, stats) {
            return self.fail(u, u_new, err, factor, nonfinite);
        }
        for i in 0..n {
            u_new[i] = u[i] + self.z[(s - 1) * n + i];
        }
        self.estimate_error(model, p, times, u, u_new, stats);
        for i in 0..n {
            err[i] = self.est[i] * self.err_scale[i];
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
        if !self.cont_fresh {
            self.compute_cont();
        }
        &self.cont
    }

    fn accept(&mut self, discontinuity: bool) {
        if !self.cont_fresh {
            self.compute_cont();
        }
        self.cont_fresh = false;
        self.h_old = self.h_last;
        self.have_cont = !discontinuity;
        self.slope.valid = false;
        self.jac_at_start = false;
        if discontinuity || self.theta > THET {
            self.jc.valid = false;
        }
        self.first = false;
        self.accepted_after_reject = self.rejected;
        self.rejected = false;
        self.naccept += 1;
    }

    fn set_tolerances(&mut self, atol: &[f64], rtol: &[f64]) {
        self.transform_tolerances(atol, rtol);
    }

    fn next_step_after_accept(&mut self, e: f64) -> Option<f64> {
        let h = self.h_last;
        let err = e.sqrt().max(1e-10);
        let mut quot = self.quotient(err);
        let shortened = h.abs() < self.h_proposed.abs() * (1.0 - 1e-9);
        if !shortened {
            if self.naccept > 1 {
                let expo = 1.0 / (S as f64 + 1.0);
                let facgus = (self.h_acc / h) * (err * err / self.err_acc).powf(expo) / SAFE;
                quot = quot.max(facgus.clamp(FACR, FACL));
            }
            self.h_acc = h;
            self.err_acc = err.max(1e-2);
        }
        let mut h_new = h / quot;
        if self.accepted_after_reject {
            h_new = h_new.signum() * h_new.abs().min(h.abs());
        }
        if shortened {
            h_new = h_new.signum() * h_new.abs().max(self.h_proposed.abs());
        } else if self.theta <= THET && (QUOT1..=QUOT2).contains(&(h_new / h)) {
            h_new = h;
        }
        self.h_proposed = h_new;
        Some(h_new)
    }

    fn next_step_after_reject(&mut self, e: f64) -> Option<f64> {
        let h = self.h_last;
        let h_new = match self.fail_factor {
            Some(factor) => h * factor,
            None if !e.is_finite() => h * 0.5,
            None if self.first => h * 0.1,
            None => h / self.quotient(e.sqrt().max(1e-10)),
        };
        self.rejected = true;
        if !self.jac_at_start {
            self.jc.valid = false;
        }
        self.h_proposed = h_new;
        Some(h_new)
    }
}

#[cfg(test)]
mod tests {
    use super::super::linalg::{lu_factor, lu_solve};
    use super::super::{factors_by_columns, solve, solve_unsized, RetCode, Solution, SolveOptions};
    use super::*;
    use crate::models::lookup;
    use crate::problem::Problem;
    use crate::scalar::Scalar;

    /// A solve by the stepper of `alg` (Radau5 or Radau9), through the dispatcher.
    fn solve_with<M: Model>(
        alg: Algorithm,
        model: &M,
        u0: &[f64],
        p: &[f64],
        tspan: (f64, f64),
        opts: &SolveOptions,
    ) -> Solution<f64> {
        solve_unsized(model, u0, p, tspan, alg, opts, None).unwrap()
    }

    fn radau<M: Model>(model: &M, u0: &[f64], p: &[f64], tspan: (f64, f64), opts: &SolveOptions) -> Solution<f64> {
        solve_with(Algorithm::Radau5, model, u0, p, tspan, opts)
    }

    /// `y1' = -2 y1 + y2 + 2 sin t`, `y2' = y1 - 2 y2 + 2 (cos t - sin t)`: from (2, 3),
    /// `y = 2 e^-t + (sin t, cos t)`.
    struct Forced;

    impl Model for Forced {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], t: T) {
            let two = T::from_f64(2.0);
            du[0] = -two * u[0] + u[1] + two * t.sin();
            du[1] = u[0] - two * u[1] + two * (t.cos() - t.sin());
        }
    }

    fn forced_exact(t: f64) -> [f64; 2] {
        [2.0 * (-t).exp() + t.sin(), 2.0 * (-t).exp() + t.cos()]
    }

    /// Row-major `s x s` product.
    fn mul(a: &[f64], b: &[f64], s: usize) -> Vec<f64> {
        (0..s * s).map(|ij| (0..s).map(|k| a[ij / s * s + k] * b[k * s + ij % s]).sum()).collect()
    }

    /// The Butcher matrix of the collocation method with the tableau's nodes:
    /// `sum_j a_ij c_j^(q-1) = c_i^q / q`, `q = 1..s`.
    fn butcher_a(c: &[f64]) -> Vec<f64> {
        let s = c.len();
        let mut v: Vec<f64> = (0..s * s).map(|qj| c[qj % s].powi((qj / s) as i32)).collect();
        let mut piv = vec![0; s];
        assert!(lu_factor(&mut v, &mut piv, s));
        let mut cols = vec![0.0; s * s];
        factors_by_columns(&v, s, &mut cols);
        let mut a = vec![0.0; s * s];
        for i in 0..s {
            let mut rhs: Vec<f64> = (1..=s).map(|q| c[i].powi(q as i32) / q as f64).collect();
            lu_solve(&cols, &piv, s, &mut rhs);
            a[i * s..(i + 1) * s].copy_from_slice(&rhs);
        }
        a
    }

    /// Each tableau against its Butcher tableau: the last row of `A` (the weights) is a
    /// quadrature of order `2 s - 1` (which makes the nodes Radau's), `T^-1 T = I`,
    /// `A T Lambda = T` for the block-diagonal `Lambda` the iteration is written for (so
    /// `T^-1 A^-1 T = Lambda`), and the error weights make `gamma0 f0 + sum (b + A^T
    /// gamma0 dd)_i f_i` a quadrature of order `s` exactly (`gamma0 = 1 / gamma`).
    #[test]
    fn tableaus_match_their_butcher_tableau() {
        for tab in [&RADAU_IIA_3, &RADAU_IIA_5] {
            assert_eq!(tab.nodes[1..], tab.c[..tab.stages - 1].iter().rev().map(|c| c - 1.0).collect::<Vec<_>>()[..]);
            let (s, c) = (tab.stages, tab.c);
            let a = butcher_a(c);
            let b = &a[(s - 1) * s..];
            for q in 0..2 * s {
                let quad: f64 = (0..s).map(|j| b[j] * c[j].powi(q as i32)).sum();
                let exact = 1.0 / (q + 1) as f64;
                if q < 2 * s - 1 {
                    assert!((quad - exact).abs() < 1e-13, "s = {s}: quadrature of degree {q}: {quad}");
                } else {
                    assert!((quad - exact).abs() > 1e-9, "s = {s}: exact beyond order 2s - 1");
                }
            }
            let id = mul(tab.ti, tab.t, s);
            let mut lambda = vec![0.0; s * s];
            lambda[0] = tab.gamma;
            for (k, (&al, &be)) in tab.alpha.iter().zip(tab.beta).enumerate() {
                let (r, q) = (1 + 2 * k, 2 + 2 * k);
                lambda[r * s + r] = al;
                lambda[q * s + q] = al;
                lambda[r * s + q] = -be;
                lambda[q * s + r] = be;
            }
            let atl = mul(&mul(&a, tab.t, s), &lambda, s);
            for ij in 0..s * s {
                let eye = f64::from(u8::from(ij / s == ij % s));
                assert!((id[ij] - eye).abs() < 1e-12, "s = {s}: T^-1 T at {ij}: {}", id[ij]);
                assert!((atl[ij] - tab.t[ij]).abs() < 1e-12, "s = {s}: A T Lambda at {ij}");
            }
            let g0 = 1.0 / tab.gamma;
            let bh: Vec<f64> =
                (0..s).map(|i| b[i] + (0..s).map(|k| g0 * tab.dd[k] * a[k * s + i]).sum::<f64>()).collect();
            for q in 0..=s {
                let quad = (0..s).map(|i| bh[i] * c[i].powi(q as i32)).sum::<f64>() + if q == 0 { g0 } else { 0.0 };
                let exact = 1.0 / (q + 1) as f64;
                if q < s {
                    assert!((quad - exact).abs() < 1e-12, "s = {s}: embedded condition {q}: {quad}");
                } else {
                    assert!((quad - exact).abs() > 1e-6, "s = {s}: the estimate would vanish at order {}", s + 1);
                }
            }
        }
    }

    /// Radau IIA 5's Butcher matrix in closed form (Hairer and Wanner, table IV.5.6).
    fn radau5_closed_form() -> [[f64; 3]; 3] {
        let s6 = 6f64.sqrt();
        [
            [(88.0 - 7.0 * s6) / 360.0, (296.0 - 169.0 * s6) / 1800.0, (-2.0 + 3.0 * s6) / 225.0],
            [(296.0 + 169.0 * s6) / 1800.0, (88.0 + 7.0 * s6) / 360.0, (-2.0 - 3.0 * s6) / 225.0],
            [(16.0 - s6) / 36.0, (16.0 + s6) / 36.0, 1.0 / 9.0],
        ]
    }

    /// The 3-stage tableau against closed forms from the literature, independent of the
    /// derivation script: `A` (from the nodes, below) equals its closed form, and `gamma`,
    /// `alpha`, `beta` the closed forms of `A^-1`'s eigenvalues.
    #[test]
    fn radau5_matches_its_closed_forms() {
        let a = butcher_a(RADAU_IIA_3.c);
        for (i, row) in radau5_closed_form().iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                assert!((a[i * 3 + j] - x).abs() < 1e-14, "A at {i}{j}");
            }
        }
        let (c9, c81) = (9f64.cbrt(), 81f64.cbrt());
        let (al, be) = ((12.0 - c81 + c9) / 60.0, (c81 + c9) * 3f64.sqrt() / 60.0);
        let tab = &RADAU_IIA_3;
        assert!((tab.gamma - 30.0 / (6.0 + c81 - c9)).abs() < 1e-14);
        assert!((tab.alpha[0] - al / (al * al + be * be)).abs() < 1e-14);
        assert!((tab.beta[0] - be / (al * al + be * be)).abs() < 1e-14);
        let s6 = 6f64.sqrt();
        let dd = [-(13.0 + 7.0 * s6) / 3.0, (-13.0 + 7.0 * s6) / 3.0, -1.0 / 3.0];
        for (x, y) in tab.dd.iter().zip(dd) {
            assert!((x - y).abs() < 1e-14);
        }
    }

    /// Order 5 with fixed steps on a linear problem with a known solution: halving the step
    /// divides the end error by about 32; and with a constant step (exact in binary, so that
    /// the last step is not cut) the Jacobian and both factorisations of the first step
    /// serve the whole solve.
    #[test]
    fn fixed_steps_converge_with_order_five() {
        let errs: Vec<f64> = [0.5, 0.25, 0.125, 0.0625]
            .iter()
            .map(|&h| {
                let opts = SolveOptions::default().fixed_dt(h).rtol(1e-12).atol(1e-12).save_end();
                let sol = radau(&Forced, &[2.0, 3.0], &[], (0.0, 2.0), &opts);
                assert_eq!(sol.retcode(), RetCode::Success);
                let st = sol.stats();
                assert_eq!((st.njac, st.nlu), (1, 2), "h = {h}: {st:?}");
                let exact = forced_exact(2.0);
                sol.u_final().iter().zip(exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
            })
            .collect();
        for w in errs.windows(2).skip(1) {
            let ratio = w[0] / w[1];
            assert!((26.0..40.0).contains(&ratio), "errors {errs:?}: ratio {ratio}");
        }
    }

    /// End-state error of `sol` against `reference`, in units of `atol + rtol |reference|`.
    fn scaled_error(sol: &Solution<f64>, reference: &Solution<f64>, rtol: f64, atol: f64) -> f64 {
        sol.u_final()
            .iter()
            .zip(reference.u_final())
            .map(|(a, b)| (a - b).abs() / (atol + rtol * b.abs()))
            .fold(0.0, f64::max)
    }

    /// A zoo model at rtol 1e-6 and 1e-10 against Rodas5P at rtol 1e-12 (its own error is
    /// far below either tolerance): the end state within a few tolerances, the work printed.
    fn against_rodas(name: &str, atol_factor: f64, bound: f64) {
        let e = lookup(name).unwrap();
        let prob = Problem::new(e.model, e.u0.clone(), e.p.clone(), e.tspan).unwrap();
        let tight = SolveOptions::default().rtol(1e-12).atol(1e-12 * atol_factor).save_end();
        let reference = super::super::solve_rodas5p(&prob, &tight).unwrap();
        assert!(reference.retcode().is_success());
        for rtol in [1e-6, 1e-10] {
            let atol = rtol * atol_factor;
            let opts = SolveOptions::default().rtol(rtol).atol(atol).save_end();
            let sol = radau(&prob.model, &prob.u0, &prob.p, prob.tspan, &opts);
            assert_eq!(sol.retcode(), RetCode::Success, "{name} at {rtol}");
            let rodas = super::super::solve_rodas5p(&prob, &opts).unwrap();
            let (err, err_rodas) =
                (scaled_error(&sol, &reference, rtol, atol), scaled_error(&rodas, &reference, rtol, atol));
            eprintln!(
                "{name} rtol {rtol:e}: radau5 {:?} error {err:.3}; rodas5p {:?} error {err_rodas:.3}",
                sol.stats(),
                rodas.stats()
            );
            assert!(err < bound, "{name} at rtol {rtol}: error {err} tolerances");
            // Reuse at work: fewer Jacobians than steps, fewer factorisations than attempts.
            let st = sol.stats();
            assert!(st.njac < st.naccept && st.nlu < 2 * st.nsteps, "{st:?}");
        }
    }

    #[test]
    fn robertson_matches_rodas5p() {
        against_rodas("robertson", 1e-4, 10.0);
    }

    #[test]
    fn van_der_pol_matches_rodas5p() {
        against_rodas("van-der-pol", 1.0, 10.0);
    }

    /// The index-1 DAE (singular mass matrix): differential and algebraic states both.
    #[test]
    fn robertson_dae_matches_rodas5p() {
        against_rodas("robertson-dae", 1e-4, 10.0);
    }

    /// The largest error of the dense output at interior points of every step of `sol`
    /// (a solve of [`Forced`]) against the exact solution.
    fn worst_interior_error(sol: &Solution<f64>) -> f64 {
        let mut worst: f64 = 0.0;
        for w in sol.t().windows(2) {
            for theta in [0.2, 0.5, 0.9] {
                let t = w[0] + theta * (w[1] - w[0]);
                let u = sol.interpolate(t).unwrap();
                let ex = forced_exact(t);
                worst = worst.max((u[0] - ex[0]).abs().max((u[1] - ex[1]).abs()));
            }
        }
        worst
    }

    /// Dense output inside steps: the collocation polynomial (degree 3) at interior points
    /// against the exact solution converges with order 4 under fixed steps (halving the
    /// step divides the error by about 16; a wrong polynomial through the right end points
    /// would not); an adaptive solve stays within its (transformed) tolerance between
    /// the steps; and on a stiff problem, values saved between steps match Rodas5P at a
    /// tight tolerance.
    #[test]
    fn dense_output_inside_steps() {
        let errs: Vec<f64> = [0.25, 0.125]
            .iter()
            .map(|&h| {
                let opts = SolveOptions::default().fixed_dt(h).rtol(1e-12).atol(1e-12);
                worst_interior_error(&radau(&Forced, &[2.0, 3.0], &[], (0.0, 2.0), &opts))
            })
            .collect();
        let ratio = errs[0] / errs[1];
        assert!((12.0..22.0).contains(&ratio), "interior errors {errs:?}");

        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8);
        let sol = radau(&Forced, &[2.0, 3.0], &[], (0.0, 5.0), &opts);
        assert!(sol.retcode().is_success() && sol.t().len() > 5);
        let worst = worst_interior_error(&sol);
        // rtol' = 0.1 (1e-8)^(2/3) = 4.6e-7 is what the steps are chosen for.
        assert!(worst < 1e-6, "dense output error {worst}");

        // Robertson (stiff, smooth) saved at log-spaced times between the steps.
        let e = lookup("robertson").unwrap();
        let prob = Problem::new(e.model, e.u0.clone(), e.p.clone(), e.tspan).unwrap();
        let times: Vec<f64> = (0..36).map(|k| 1e-4 * 10f64.powf(k as f64 / 4.0)).collect();
        let (rtol, atol) = (1e-8, 1e-12);
        let opts = SolveOptions::default().rtol(rtol).atol(atol).saveat_times(times.clone());
        let sol = radau(&prob.model, &prob.u0, &prob.p, prob.tspan, &opts);
        let tight = SolveOptions::default().rtol(1e-12).atol(1e-16).saveat_times(times);
        let reference = super::super::solve_rodas5p(&prob, &tight).unwrap();
        assert_eq!(sol.t(), reference.t());
        for (a, b) in sol.states().zip(reference.states()) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 20.0 * (atol + rtol * y.abs()), "{x} vs {y}");
            }
        }
    }

    /// The sparse path (brusselator-32 goes sparse under `Auto`: sparse real and complex
    /// LUs) against the dense one (forward-mode AD: faer's dense LUs at 64 states).
    #[test]
    fn sparse_jacobian_matches_dense() {
        let e = lookup("brusselator-32").unwrap();
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).save_end();
        let sparse = radau(&e.model, &e.u0, &e.p, e.tspan, &opts);
        let dense = radau(&e.model, &e.u0, &e.p, e.tspan, &opts.clone().jacobian(JacobianMethod::ForwardAd));
        assert!(sparse.retcode().is_success() && dense.retcode().is_success());
        for (a, b) in sparse.u_final().iter().zip(dense.u_final()) {
            assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let prob = Problem::new(e.model, e.u0.clone(), e.p.clone(), e.tspan).unwrap();
        let reference = super::super::solve_rodas5p(&prob, &opts.clone().rtol(1e-11).atol(1e-11)).unwrap();
        assert!(scaled_error(&sparse, &reference, 1e-8, 1e-8) < 10.0);
    }

    /// `u' = -u` whose right-hand side turns NaN at t = 0.5.
    struct BreaksAtHalf;

    impl Model for BreaksAtHalf {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], t: T) {
            du[0] = if t.value() > 0.5 { T::from_f64(f64::NAN) } else { -u[0] };
        }
    }

    /// A right-hand side that turns NaN mid-span ends the solve (Unstable or DtLessThanMin)
    /// with its partial solution up to there, without panicking; fixed steps that cannot
    /// converge end DtLessThanMin at once.
    #[test]
    fn nan_mid_span_ends_with_the_partial_solution() {
        let sol = radau(&BreaksAtHalf, &[1.0], &[], (0.0, 1.0), &SolveOptions::default());
        assert!(matches!(sol.retcode(), RetCode::Unstable | RetCode::DtLessThanMin), "{:?}", sol.retcode());
        let t = sol.t_reached();
        assert!(t > 0.49 && t <= 0.5, "reached {t}");
        let last = sol.u_final()[0];
        assert!(last.is_finite() && (last - (-t).exp()).abs() < 1e-5, "{last}");
        assert!(sol.t().len() > 2);

        let sol = radau(&BreaksAtHalf, &[1.0], &[], (0.0, 1.0), &SolveOptions::default().fixed_dt(0.3));
        assert!(matches!(sol.retcode(), RetCode::Unstable | RetCode::DtLessThanMin), "{:?}", sol.retcode());
        assert!((sol.t_reached() - 0.3).abs() < 1e-15);
    }

    /// Backwards in time (a negative step throughout) against the exact solution, and a
    /// model with tstops (steps land on its switches; Jacobian and starting values are
    /// renewed after each) against Rodas5P at a tight tolerance.
    #[test]
    fn backwards_and_across_tstops() {
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).save_end();
        let sol = radau(&Forced, &forced_exact(1.0), &[], (1.0, 0.0), &opts);
        assert!(sol.retcode().is_success());
        let back = sol.u_final();
        assert!((back[0] - 2.0).abs() < 1e-8 && (back[1] - 3.0).abs() < 1e-8, "{back:?}");

        let e = lookup("lv-piecewise").unwrap();
        let prob = Problem::new(e.model, e.u0.clone(), vec![1.5, 0.5, 2.0, 1.0], e.tspan).unwrap();
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8);
        let sol = radau(&prob.model, &prob.u0, &prob.p, prob.tspan, &opts);
        assert!(sol.retcode().is_success());
        for s in [1.0, 2.0, 3.0] {
            assert!(sol.t().contains(&s), "no step lands on {s}");
        }
        let reference = super::super::solve_rodas5p(&prob, &opts.clone().rtol(1e-12).atol(1e-12)).unwrap();
        assert!(scaled_error(&sol, &reference, 1e-8, 1e-8) < 10.0);
    }

    /// Order 9 with fixed steps on a linear problem with a known solution (halving the step
    /// divides the end error by about 512), and the collocation polynomial between the steps
    /// of order 5 or more (the interior error falls by at least 32).
    #[test]
    fn radau9_converges_with_order_nine() {
        let (mut ends, mut inner) = (Vec::new(), Vec::new());
        for h in [1.0, 0.5, 0.25] {
            let opts = SolveOptions::default().fixed_dt(h).rtol(1e-13).atol(1e-13);
            let sol = solve_with(Algorithm::Radau9, &Forced, &[2.0, 3.0], &[], (0.0, 8.0), &opts);
            assert_eq!(sol.retcode(), RetCode::Success);
            let ex = forced_exact(8.0);
            ends.push(sol.u_final().iter().zip(ex).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max));
            let mut worst: f64 = 0.0;
            for w in sol.t().windows(2) {
                let t = w[0] + 0.37 * (w[1] - w[0]);
                let (u, ex) = (sol.interpolate(t).unwrap(), forced_exact(t));
                worst = worst.max((u[0] - ex[0]).abs().max((u[1] - ex[1]).abs()));
            }
            inner.push(worst);
        }
        let ratio = ends[0] / ends[1];
        assert!((300.0..800.0).contains(&ratio), "end errors {ends:?}");
        assert!(inner[0] / inner[1] > 32.0 && inner[1] / inner[2] > 32.0, "interior errors {inner:?}");
    }

    /// Radau9 on stiff zoo models, an index-1 DAE among them and POLLU (20 states), at rtol
    /// 1e-6 and 1e-10 against Rodas5P at 1e-13: the end state within a few tolerances, and
    /// at the tight one its Jacobian and factorisations reused across steps. (Not HIRES:
    /// there, as with Radau5, the fast states at the end of a long step can be off by far
    /// more than the tolerance: the filtered estimate damps their error, which the next
    /// steps relax away; bench/peers/README.md.)
    #[test]
    fn radau9_matches_rodas5p_on_stiff_models() {
        for (name, atol_factor) in [("robertson", 1e-4), ("van-der-pol", 1.0), ("robertson-dae", 1e-4), ("pollu", 1.0)]
        {
            let e = lookup(name).unwrap();
            let prob = Problem::new(e.model, e.u0.clone(), e.p.clone(), e.tspan).unwrap();
            let tight = SolveOptions::default().rtol(1e-13).atol(1e-13 * atol_factor).save_end();
            let reference = solve(&prob, Algorithm::Rodas5P, &tight).unwrap();
            for rtol in [1e-6, 1e-10] {
                let atol = rtol * atol_factor;
                let opts = SolveOptions::default().rtol(rtol).atol(atol).save_end();
                let sol = solve(&prob, Algorithm::Radau9, &opts).unwrap();
                assert_eq!(sol.retcode(), RetCode::Success, "{name} at {rtol}");
                let err = sol
                    .u_final()
                    .iter()
                    .zip(reference.u_final())
                    .map(|(a, b)| (a - b).abs() / (atol + rtol * b.abs()))
                    .fold(0.0, f64::max);
                eprintln!("{name} rtol {rtol:e}: radau9 {:?} error {err:.3} tolerances", sol.stats());
                assert!(err < 10.0, "{name} at rtol {rtol}: error {err} tolerances");
                // Reuse where the method is meant to be used (at loose tolerances POLLU's
                // start takes a fresh Jacobian and factors at almost every attempt).
                let st = sol.stats();
                if rtol < 1e-8 {
                    assert!(st.njac < st.naccept && st.nlu <= 3 * st.nsteps, "{name}: {st:?}");
                }
            }
        }
    }
}
