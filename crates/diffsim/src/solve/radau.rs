//! Radau IIA of order 5 (Hairer & Wanner's RADAU5) as a [`Stepper`] for the shared driver.
//!
//! **The method.** Three-stage collocation at the Radau nodes `c = ((4 - sqrt 6) / 10,
//! (4 + sqrt 6) / 10, 1)`: order 5, stiffly accurate (`u1` is the last stage), L-stable;
//! index-1 DAEs `M u' = f` with a singular mass matrix are solved as they are. Reference:
//! Hairer & Wanner, *Solving Ordinary Differential Equations II*, section IV.8.
//!
//! **The Newton iteration.** The stage increments `Z = (z1, z2, z3)` solve
//! `(A^-1 (x) M) Z / h = F(Z)`. The simplified Newton iteration works on `W = (T^-1 (x) I) Z`
//! where `T^-1 A^-1 T = [[gamma, 0, 0], [0, alpha, -beta], [0, beta, alpha]]`: the `3n x 3n`
//! system splits into the real `(gamma / h) M - J` and the complex `((alpha + i beta) / h) M - J`
//! ([`super::complex_lu`]). The iteration stops when `theta / (1 - theta) * |dW| <= fnewt`
//! (`theta` the observed contraction, `|.|` the RMS norm scaled by the tolerances, `fnewt =
//! max(10 uround / rtol, min(0.03, sqrt rtol))`), gives up after 7 iterations or at `theta >=
//! 0.99` (the step is retried at half size), and rejects early, with the step size RADAU5
//! predicts, when the contraction seen so far cannot reach `fnewt` in the iterations left.
//! It starts from the previous step's collocation polynomial extrapolated (zero after a start
//! or a tstop).
//!
//! **Reuse.** The Jacobian is kept across steps while the Newton iteration contracts fast
//! (`theta <= 0.001`) and recomputed otherwise, at tstops, and when a step fails with a
//! Jacobian from an earlier step; both factorisations are kept while the step size is: the
//! next step keeps `h` when RADAU5's controller proposes a change within `[1, 1.2]`.
//!
//! **The error estimate** is the embedded order-3 one filtered by the real matrix:
//! `err = ((gamma / h) M - J)^-1 (f(u0) + M (e1 z1 + e2 z2 + e3 z3) / h)`, and on the first
//! step and after a rejection, when that is above 1, the stabilised
//! `((gamma / h) M - J)^-1 (f(u0 + err) + M (e . z) / h)` (one more `f`), as RADAU5.
//!
//! **Tolerances.** As RADAU5, the method works internally with `rtol' = 0.1 rtol^(2/3)` and
//! `atol' = atol rtol' / rtol` (its error estimate is of order 3 only: the transformed
//! tolerances make the global error of the order-5 solution track the user's `rtol`). The
//! driver measures the error against the user's tolerances, so the error vector handed to it
//! is scaled by `rtol / rtol'` per component: the driver's norm then equals RADAU5's.
//!
//! **Step size**: the stepper chooses it ([`Stepper::next_step_after_accept`]): Gustafsson's
//! predictive controller with the safety factor lowered by the Newton iterations taken, as
//! RADAU5 (`h` shrinks at most 5-fold and grows at most 8-fold per step).
//!
//! **Dense output**: the collocation polynomial, [`Interpolant::Radau5`] (RADAU5's CONTR5).
//!
//! **Scope.** `f64` only, one stepper for every size (no specialisation by size: every
//! model type compiles every solver). The driver owns time, tstops, saving and rejection; a
//! DAE's start must already be consistent (the dispatcher's `dae_init` makes it so).
//! [`Stats::nlu`] counts the real and the complex factorisation as one each (a complex one
//! costs about four real ones of the same size).
//!
//! Coefficients (nodes, `T`, `T^-1`, `gamma`, `alpha`, `beta`, `e1..e3`) were checked against
//! Hairer's `radau5.f` and OrdinaryDiffEq.jl's `RadauIIA5Tableau` (and the nodes, error
//! weights and `gamma` against SciPy's `radau.py`); the tests check them against the Butcher
//! tableau itself.

use super::complex_lu::ComplexW;
use super::dense::Interpolant;
use super::driver::{self, Watch};
use super::linalg::{JacobianCache, WMatrix};
use super::options::{JacobianMethod, SolveOptions};
use super::solution::{Solution, Stats, StepRecord};
use super::stepper::{StartSlope, Stepper};
use super::Algorithm;
use crate::error::Result;
use crate::problem::Model;

/// The nodes `(4 -+ sqrt 6) / 10` (the third is 1).
const C1: f64 = 0.155_051_025_721_682_2;
const C2: f64 = 0.644_948_974_278_317_8;
const C1M1: f64 = C1 - 1.0;
const C2M1: f64 = C2 - 1.0;
/// The eigenvalues of `A^-1`: `gamma` and `alpha +- i beta`.
const GAMMA: f64 = 3.637_834_252_744_496;
const ALPHA: f64 = 2.681_082_873_627_752_3;
const BETA: f64 = 3.050_430_199_247_410_5;
/// The error estimate's weights `-(13 + 7 sqrt 6) / 3`, `(-13 + 7 sqrt 6) / 3`, `-1 / 3`.
const DD: [f64; 3] = [-10.048_809_399_827_416, 1.382_142_733_160_749, -1.0 / 3.0];
/// `T` (its last row is `(T31, 1, 0)`) and `T^-1`.
const T: [[f64; 3]; 3] = [
    [0.091_232_394_870_892_95, -0.141_255_295_020_954_2, -0.030_029_194_105_147_424],
    [0.241_717_932_707_107, 0.204_129_352_293_799_94, 0.382_942_112_757_261_9],
    [0.966_048_182_615_093, 1.0, 0.0],
];
const TI: [[f64; 3]; 3] = [
    [4.325_579_890_063_155, 0.339_199_251_815_809_84, 0.541_770_539_935_874_9],
    [-4.178_718_591_551_905, -0.327_682_820_761_062_37, 0.476_623_554_500_550_44],
    [-0.502_872_634_945_786_8, 2.571_926_949_855_605, -0.596_039_204_828_224_9],
];

/// RADAU5's defaults: Newton iterations, the contraction under which the Jacobian is kept,
/// the step-size safety factor and bounds (`h` shrinks at most 5x and grows at most 8x per
/// step), the window of step-size ratios that keep `h`, and its unit roundoff.
const NIT: usize = 7;
const THET: f64 = 0.001;
const SAFE: f64 = 0.9;
const FACL: f64 = 5.0;
const FACR: f64 = 0.125;
const QUOT1: f64 = 1.0;
const QUOT2: f64 = 1.2;
const UROUND: f64 = 1e-16;

/// The buffers and the iteration and step-size state of a Radau IIA 5 solve (f64).
pub(crate) struct Radau5 {
    n: usize,
    jc: JacobianCache,
    w_real: WMatrix,
    w_cplx: ComplexW,
    /// The step size both factorisations belong to (NaN: none).
    lu_h: f64,
    /// The Jacobian was evaluated at the current step's start (RADAU5's CALJAC).
    jac_at_start: bool,
    slope: StartSlope,
    /// Stage increments `z1, z2, z3`, their transforms `W`, and the stage values / Newton
    /// corrections (`3n` each, stage-major); `M W` with a mass matrix.
    z: Vec<f64>,
    w: Vec<f64>,
    fs: Vec<f64>,
    mw: Vec<f64>,
    /// A stage state, then the scaled error combination.
    y: Vec<f64>,
    scal: Vec<f64>,
    est: Vec<f64>,
    f2: Vec<f64>,
    /// The collocation polynomial of the last accepted step ([`Interpolant::Radau5`]'s data).
    cont: Vec<f64>,
    cont_fresh: bool,
    have_cont: bool,
    /// Transformed tolerances, the error vector's scale for the driver, Newton's bound.
    atol: Vec<f64>,
    rtol: Vec<f64>,
    err_scale: Vec<f64>,
    fnewt: f64,
    faccon: f64,
    theta: f64,
    newt: usize,
    /// The step sizes of the last attempt, of the last accepted step, of the last step the
    /// predictive controller saw, and the last one proposed (0: none yet).
    h_last: f64,
    h_old: f64,
    h_acc: f64,
    err_acc: f64,
    h_proposed: f64,
    naccept: usize,
    first: bool,
    rejected: bool,
    accepted_after_reject: bool,
    /// Set by an attempt whose iteration failed: the factor for the retry.
    fail_factor: Option<f64>,
}

impl Radau5 {
    pub(crate) fn new<M: Model>(model: &M, method: JacobianMethod) -> Self {
        let n = model.n_states();
        let mut s = Self {
            n,
            jc: JacobianCache::new(model, method),
            w_real: WMatrix::new(n),
            w_cplx: ComplexW::new(n),
            lu_h: f64::NAN,
            jac_at_start: false,
            slope: StartSlope::new(n),
            z: vec![0.0; 3 * n],
            w: vec![0.0; 3 * n],
            fs: vec![0.0; 3 * n],
            mw: vec![0.0; 3 * n],
            y: vec![0.0; n],
            scal: vec![0.0; n],
            est: vec![0.0; n],
            f2: vec![0.0; n],
            cont: vec![0.0; 3 * n],
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
        s.transform_tolerances(&vec![1e-6; n], &vec![1e-6; n]);
        s
    }

    /// RADAU5's internal tolerances (see the module docs).
    fn transform_tolerances(&mut self, atol: &[f64], rtol: &[f64]) {
        self.atol.clear();
        self.rtol.clear();
        self.err_scale.clear();
        for (&a, &r) in atol.iter().zip(rtol) {
            let (a2, r2, scale) = if r > 0.0 {
                let r2 = 0.1 * r.powf(2.0 / 3.0);
                (a * r2 / r, r2, r / r2)
            } else {
                // Absolute control only: atol is transformed as RADAU5 transforms rtol.
                let a2 = 0.1 * a.powf(2.0 / 3.0);
                (a2, 0.0, a / a2)
            };
            self.atol.push(a2);
            self.rtol.push(r2);
            self.err_scale.push(scale);
        }
        let smallest = |v: &[f64]| v.iter().copied().filter(|&x| x > 0.0).fold(f64::INFINITY, f64::min);
        let tolst = smallest(&self.rtol);
        let tolst = if tolst.is_finite() { tolst } else { smallest(&self.atol) };
        self.fnewt = (10.0 * UROUND / tolst).max(0.03f64.min(tolst.sqrt()));
    }

    /// An attempt that could not solve its stages: reject it, retry `factor` times the size;
    /// `nonfinite`: `f` was not finite (the state is then NaN, so a solve that cannot get
    /// past it ends `Unstable`).
    fn fail(&mut self, u: &[f64], u_new: &mut [f64], err: &mut [f64], factor: f64, nonfinite: bool) {
        self.fail_factor = Some(factor);
        err.fill(f64::INFINITY);
        if nonfinite {
            u_new.fill(f64::NAN);
        } else {
            u_new.copy_from_slice(u);
        }
    }

    /// Newton's starting values: the last step's collocation polynomial extrapolated, or 0.
    fn starting_values(&mut self, h: f64) {
        let n = self.n;
        if !self.have_cont {
            self.z.fill(0.0);
            self.w.fill(0.0);
            return;
        }
        let c3q = h / self.h_old;
        let q = [C1 * c3q, C2 * c3q, c3q];
        let (cont, z, w) = (&self.cont, &mut self.z, &mut self.w);
        for i in 0..n {
            let (a1, a2, a3) = (cont[i], cont[n + i], cont[2 * n + i]);
            let zi = q.map(|s| s * (a1 + (s - C2M1) * (a2 + (s - C1M1) * a3)));
            for k in 0..3 {
                z[k * n + i] = zi[k];
                w[k * n + i] = TI[k][0] * zi[0] + TI[k][1] * zi[1] + TI[k][2] * zi[2];
            }
        }
    }

    /// The simplified Newton iteration from the starting values. `Err((factor, nonfinite))`
    /// when it fails.
    fn newton<M: Model>(
        &mut self,
        model: &M,
        p: &[f64],
        times: &StepRecord,
        u: &[f64],
        stats: &mut Stats,
    ) -> std::result::Result<(), (f64, bool)> {
        let n = self.n;
        let h = times.h;
        let (fac1, alphn, betan) = (GAMMA / h, ALPHA / h, BETA / h);
        let identity = self.jc.mass.is_none();
        self.faccon = self.faccon.max(UROUND).powf(0.8);
        self.theta = THET;
        let (mut dynold, mut thqold) = (0.0, 0.0);
        let mut newt = 0;
        loop {
            if newt >= NIT {
                return Err((0.5, false));
            }
            for (k, c) in [C1, C2, 1.0].into_iter().enumerate() {
                for i in 0..n {
                    self.y[i] = u[i] + self.z[k * n + i];
                }
                model.rhs(&mut self.fs[k * n..(k + 1) * n], &self.y, p, times.stage_time(c));
            }
            stats.nf += 3;
            if !self.fs.iter().all(|v| v.is_finite()) {
                return Err((0.5, true));
            }
            if !identity {
                for k in 0..3 {
                    self.jc.mass_mul(&self.w[k * n..(k + 1) * n], &mut self.mw[k * n..(k + 1) * n]);
                }
            }
            let mw = if identity { &self.w } else { &self.mw };
            let fs = &mut self.fs;
            for i in 0..n {
                let a = [fs[i], fs[n + i], fs[2 * n + i]];
                let m = [mw[i], mw[n + i], mw[2 * n + i]];
                let tf = TI.map(|row| row[0] * a[0] + row[1] * a[1] + row[2] * a[2]);
                fs[i] = tf[0] - fac1 * m[0];
                fs[n + i] = tf[1] - alphn * m[1] + betan * m[2];
                fs[2 * n + i] = tf[2] - alphn * m[2] - betan * m[1];
            }
            let (r1, rest) = fs.split_at_mut(n);
            let (r2, r3) = rest.split_at_mut(n);
            self.w_real.solve(r1, 0);
            self.w_cplx.solve(r2, r3);
            newt += 1;
            let mut sum = 0.0;
            for i in 0..n {
                let s = 1.0 / self.scal[i];
                sum += (r1[i] * r1[i] + r2[i] * r2[i] + r3[i] * r3[i]) * s * s;
            }
            let dyno = (sum / (3 * n) as f64).sqrt();
            if !dyno.is_finite() {
                return Err((0.5, false));
            }
            if newt > 1 && newt < NIT {
                let thq = dyno / dynold;
                self.theta = if newt == 2 { thq } else { (thq * thqold).sqrt() };
                thqold = thq;
                if self.theta >= 0.99 {
                    return Err((0.5, false));
                }
                self.faccon = self.theta / (1.0 - self.theta);
                let left = (NIT - 1 - newt) as i32;
                let dyth = self.faccon * dyno * self.theta.powi(left) / self.fnewt;
                if dyth >= 1.0 {
                    // Too slow to converge in the iterations left: retry with the step
                    // size that would make it.
                    let qnewt = dyth.clamp(1e-4, 20.0);
                    return Err((0.8 * qnewt.powf(-1.0 / (4.0 + left as f64)), false));
                }
            }
            dynold = dyno.max(UROUND);
            let (w, z) = (&mut self.w, &mut self.z);
            for i in 0..n {
                w[i] += r1[i];
                w[n + i] += r2[i];
                w[2 * n + i] += r3[i];
                let wi = [w[i], w[n + i], w[2 * n + i]];
                for k in 0..3 {
                    z[k * n + i] = T[k][0] * wi[0] + T[k][1] * wi[1] + T[k][2] * wi[2];
                }
            }
            if self.faccon * dyno <= self.fnewt {
                self.newt = newt;
                return Ok(());
            }
        }
    }

    /// RADAU5's filtered error estimate into `est`, with the stabilised second estimate on
    /// the first step and after a rejection.
    fn estimate_error<M: Model>(
        &mut self,
        model: &M,
        p: &[f64],
        times: &StepRecord,
        u: &[f64],
        u_new: &[f64],
        stats: &mut Stats,
    ) {
        let n = self.n;
        let h = times.h;
        for i in 0..n {
            self.y[i] = (DD[0] * self.z[i] + DD[1] * self.z[n + i] + DD[2] * self.z[2 * n + i]) / h;
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

    /// The RMS norm of `est` against the transformed tolerances (the driver's norm of the
    /// scaled error vector).
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

    /// The collocation polynomial of the step just taken, in Newton form through
    /// `s = 0, c2 - 1, c1 - 1, -1` (`s = theta - 1`): `u1 + s (d1 + (s - s2)(d2 + (s - s1) d3))`.
    fn compute_cont(&mut self) {
        let n = self.n;
        let (z, cont) = (&self.z, &mut self.cont);
        for i in 0..n {
            let (z1, z2, z3) = (z[i], z[n + i], z[2 * n + i]);
            let d1 = (z2 - z3) / C2M1;
            let ak = (z1 - z2) / (C1 - C2);
            let d2 = (ak - d1) / C1M1;
            let a3 = (ak - z1 / C1) / C2;
            cont[i] = d1;
            cont[n + i] = d2;
            cont[2 * n + i] = d2 - a3;
        }
        self.cont_fresh = true;
    }

    /// RADAU5's step-size quotient `h / h_new` from the error norm `err` and the Newton
    /// iterations of the last attempt.
    fn quotient(&self, err: f64) -> f64 {
        let fac = SAFE.min(SAFE * (1 + 2 * NIT) as f64 / (self.newt + 2 * NIT) as f64);
        (err.powf(0.25) / fac).clamp(FACR, FACL)
    }
}

impl<M: Model> Stepper<f64, M> for Radau5 {
    fn order(&self) -> u32 {
        5
    }

    fn error_order(&self) -> u32 {
        4
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Radau5
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
            let ok = self.w_real.factor(&self.jc, GAMMA / h, -1.0, 0, stats)
                && self.w_cplx.factor(&self.jc, ALPHA / h, BETA / h, stats);
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
            u_new[i] = u[i] + self.z[2 * n + i];
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
        // A fast contraction keeps the Jacobian (RADAU5's THET); a tstop changes f.
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
        // A step the driver cut short (to land on a stop, or to dt_max) says little about
        // the next one: keep at least the size proposed before, and keep it out of the
        // predictive controller's memory.
        let shortened = h.abs() < self.h_proposed.abs() * (1.0 - 1e-9);
        if !shortened {
            if self.naccept > 1 {
                // Gustafsson's predictive controller.
                let facgus = (self.h_acc / h) * (err * err / self.err_acc).powf(0.25) / SAFE;
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
            // Keep h, and with it the factorisations.
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
        // Retry with a fresh Jacobian unless it already is one (RADAU5's CALJAC).
        if !self.jac_at_start {
            self.jc.valid = false;
        }
        self.h_proposed = h_new;
        Some(h_new)
    }
}

/// Solve with Radau IIA 5 (the caller has made a DAE's start consistent).
pub(crate) fn solve_radau5<M: Model>(
    model: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    watch: Watch<'_, f64>,
) -> Result<Solution<f64>> {
    let mut s = Radau5::new(model, opts.jacobian);
    driver::integrate(model, u0, p, tspan, opts, &mut s, alg, watch, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::lookup;
    use crate::problem::Problem;
    use crate::scalar::Scalar;
    use crate::solve::solution::RetCode;

    fn radau<M: Model>(model: &M, u0: &[f64], p: &[f64], tspan: (f64, f64), opts: &SolveOptions) -> Solution<f64> {
        solve_radau5(model, u0, p, tspan, Algorithm::Radau5, opts, Watch::callback(None)).unwrap()
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

    /// 3x3 row-major product.
    fn mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
        std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
    }

    /// Radau IIA 5's Butcher matrix from its closed form, and its inverse.
    fn butcher_a() -> ([[f64; 3]; 3], [[f64; 3]; 3]) {
        let s6 = 6f64.sqrt();
        let a = [
            [(88.0 - 7.0 * s6) / 360.0, (296.0 - 169.0 * s6) / 1800.0, (-2.0 + 3.0 * s6) / 225.0],
            [(296.0 + 169.0 * s6) / 1800.0, (88.0 + 7.0 * s6) / 360.0, (-2.0 - 3.0 * s6) / 225.0],
            [(16.0 - s6) / 36.0, (16.0 + s6) / 36.0, 1.0 / 9.0],
        ];
        // The adjugate by cyclic cofactors, over the determinant.
        let cof = |i: usize, j: usize| {
            let (i1, i2, j1, j2) = ((i + 1) % 3, (i + 2) % 3, (j + 1) % 3, (j + 2) % 3);
            a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1]
        };
        let det: f64 = (0..3).map(|k| a[0][k] * cof(0, k)).sum();
        let inv = std::array::from_fn(|i| std::array::from_fn(|j| cof(j, i) / det));
        (a, inv)
    }

    /// The coefficients against the tableau: the nodes are A's row sums, `T^-1 T = I`,
    /// `T^-1 A^-1 T` is the block-diagonal `[[gamma, 0, 0], [0, alpha, -beta], [0, beta,
    /// alpha]]` the Newton iteration is written for, and the error weights make
    /// `u0 + h (gamma0 f0 + sum (b + A^T e)_i f_i)` (`e = gamma0 dd`) exact for quadratics
    /// but not for cubics (an embedded formula of order 3).
    #[test]
    fn coefficients_match_the_butcher_tableau() {
        let (a, ainv) = butcher_a();
        let c = [C1, C2, 1.0];
        for i in 0..3 {
            assert!((a[i].iter().sum::<f64>() - c[i]).abs() < 1e-15);
        }
        let id = mul(&TI, &T);
        let lam = mul(&mul(&TI, &ainv), &T);
        let want = [[GAMMA, 0.0, 0.0], [0.0, ALPHA, -BETA], [0.0, BETA, ALPHA]];
        for i in 0..3 {
            for j in 0..3 {
                assert!((id[i][j] - f64::from(u8::from(i == j))).abs() < 1e-14, "T^-1 T at {i}{j}");
                assert!((lam[i][j] - want[i][j]).abs() < 1e-12, "T^-1 A^-1 T at {i}{j}: {}", lam[i][j]);
            }
        }
        // The closed forms of the eigenvalues.
        let (c9, c81) = (9f64.cbrt(), 81f64.cbrt());
        let (al, be) = ((12.0 - c81 + c9) / 60.0, (c81 + c9) * 3f64.sqrt() / 60.0);
        assert!((GAMMA - 30.0 / (6.0 + c81 - c9)).abs() < 1e-14);
        assert!((ALPHA - al / (al * al + be * be)).abs() < 1e-14 && (BETA - be / (al * al + be * be)).abs() < 1e-14);
        // The embedded formula: weights gamma0 at node 0 and b + A^T e at c.
        let g0 = 1.0 / GAMMA;
        let b = a[2];
        let bh: [f64; 3] = std::array::from_fn(|i| b[i] + (0..3).map(|k| g0 * DD[k] * a[k][i]).sum::<f64>());
        for q in 0..4 {
            let quad = (0..3).map(|i| bh[i] * c[i].powi(q)).sum::<f64>() + if q == 0 { g0 } else { 0.0 };
            let exact = 1.0 / (q + 1) as f64;
            if q < 3 {
                assert!((quad - exact).abs() < 1e-14, "order condition {q}: {quad}");
            } else {
                assert!((quad - exact).abs() > 1e-3, "the estimate would vanish at order 4");
            }
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
}
