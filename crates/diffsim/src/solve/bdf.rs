//! Variable-order, variable-step BDF in its NDF form (the numerical differentiation formulas
//! of Shampine and Reichelt, orders 1 to 5), with a simplified Newton iteration whose
//! Jacobian and LU are kept across steps.
//!
//! The state is carried as backward differences `D_0 .. D_{k+2}` of the solution at equally
//! spaced points (`D_0` the current state); a step-size change rescales them (`R U`
//! product), so the formula stays that of constant steps. Each step predicts
//! `y0 = sum_{j<=k} D_j` and solves the corrector
//!
//! `M (y - y0 + psi) = c f(y, t + h)`, `c = h / alpha_k`, `psi = sum_j gamma_j D_j / alpha_k`
//!
//! by Newton with the matrix `M - c J`. Why this costs less than a Rosenbrock step on a stiff
//! problem: `J` is refreshed only when Newton fails to converge with it, and `M - c J` is
//! factored again only when the step size changes, which the order and step selection do at
//! most every `k + 1` steps (and not at all for small growth). Newton stops when the mean
//! contraction it has seen puts the solution within a fifth of the error tolerance (as
//! CVODE and diffsol; scipy asks up to a thousand times more at tight tolerances). The error estimate is
//! `error_const_k (y - y0)`; after `k + 1` steps of one size the orders `k - 1`, `k` and
//! `k + 1` are compared by their estimates and the one allowing the largest step is taken.
//!
//! The driver owns time, tstops and saving; this stepper chooses its own next step through
//! [`Stepper::next_step_after_accept`] and [`Stepper::next_step_after_reject`], and adapts
//! its differences when the driver shortens a step (a stop, `dt_max`). After a discontinuity
//! it starts again at order 1.

use super::controller::{exp2_coarse, log2_coarse};
use super::dense::{Interpolant, BDF_MAX_ORDER};
use super::linalg::{JacobianCache, WMatrix};
use super::options::JacobianMethod;
use super::solution::{Stats, StepRecord};
use super::stepper::{StartSlope, Stepper};
use crate::problem::Model;

const MAX_ORDER: usize = BDF_MAX_ORDER;
/// Newton iterations before a step gives up on its Jacobian.
const NEWTON_MAXITER: usize = 4;
/// Step-size factor limits after a rejection and after an accepted step.
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;
/// A growth below this keeps the step size (and the LU of `M - c J`).
const KEEP_BELOW: f64 = 1.2;
/// Newton stops when the distance left to the corrector's solution is estimated below this
/// fraction of the error tolerance (the scaled norm the error test uses), as CVODE and
/// diffsol do: the corrector need only be solved well below what the error test accepts, and
/// a rule that tightens with `rtol` (scipy's `min(0.03, sqrt(rtol))`) buys iterations, not
/// accuracy.
const NEWTON_TOL: f64 = 0.2;

/// The convergence measure `rate / (1 - rate)` assumed for the first iteration when no
/// contraction has been seen with the current factors of `M - c J` (after they are rebuilt,
/// and after a rejected step): large, so that one iteration is enough only when its
/// correction is tiny. Otherwise the iteration starts from the last measured contraction,
/// and most steps need one iteration. The measure is not carried across a rebuild (as CVODE
/// resets its rate at every setup): where the solution turns fast (van der Pol's jumps) the
/// old matrix's contraction promises more than the new one delivers.
const FIRST_ETA: f64 = 316.2;

/// NDF's `kappa_k` (Shampine & Reichelt 1997, table 1; order 5 is plain BDF).
const KAPPA: [f64; MAX_ORDER + 1] = [0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0];

/// `gamma_k = sum_{j=1..k} 1 / j`.
const GAMMA: [f64; MAX_ORDER + 1] = [0.0, 1.0, 1.5, 11.0 / 6.0, 25.0 / 12.0, 137.0 / 60.0];

/// `alpha_k = (1 - kappa_k) gamma_k`.
fn alpha(k: usize) -> f64 {
    (1.0 - KAPPA[k]) * GAMMA[k]
}

/// The local error constant of order `k`: `kappa_k gamma_k + 1 / (k + 1)`.
fn error_const(k: usize) -> f64 {
    KAPPA[k] * GAMMA[k] + 1.0 / (k as f64 + 1.0)
}

/// `R(order, factor)`: row `i`, column `j` (0..=order) is `prod_{l=1..i} (l - 1 - factor j) / l`
/// (and 1 in row 0); `D <- (R(factor) R(1))^T D` rescales the differences to a step
/// `factor` times as long.
const fn compute_r(order: usize, factor: f64) -> [[f64; MAX_ORDER + 1]; MAX_ORDER + 1] {
    let mut r = [[0.0; MAX_ORDER + 1]; MAX_ORDER + 1];
    let mut j = 0;
    while j <= order {
        r[0][j] = 1.0;
        j += 1;
    }
    let mut i = 1;
    while i <= order {
        let mut j = 1;
        while j <= order {
            r[i][j] = r[i - 1][j] * (i as f64 - 1.0 - factor * j as f64) / i as f64;
            j += 1;
        }
        i += 1;
    }
    r
}

/// `R(order, 1)` of every order, computed at compile time (every rescaling needs one).
const R_OF_ONE: [[[f64; MAX_ORDER + 1]; MAX_ORDER + 1]; MAX_ORDER + 1] = {
    let mut all = [[[0.0; MAX_ORDER + 1]; MAX_ORDER + 1]; MAX_ORDER + 1];
    let mut order = 0;
    while order <= MAX_ORDER {
        all[order] = compute_r(order, 1.0);
        order += 1;
    }
    all
};

/// Rescale the differences `d` (rows of `n`) of order `order` for a step `factor` times as long.
fn change_differences(d: &mut [f64], n: usize, order: usize, factor: f64, scratch: &mut [f64]) {
    let r = compute_r(order, factor);
    let u = &R_OF_ONE[order];
    let mut ru = [[0.0; MAX_ORDER + 1]; MAX_ORDER + 1];
    for i in 0..=order {
        for j in 0..=order {
            ru[i][j] = (0..=order).map(|l| r[i][l] * u[l][j]).sum();
        }
    }
    let rows = (order + 1) * n;
    scratch[..rows].fill(0.0);
    for (i, row) in ru.iter().enumerate().take(order + 1) {
        for (j, &c) in row.iter().enumerate().take(order + 1) {
            if c != 0.0 {
                let (src, dst) = (&d[i * n..(i + 1) * n], &mut scratch[j * n..(j + 1) * n]);
                for (o, &s) in dst.iter_mut().zip(src) {
                    *o += c * s;
                }
            }
        }
    }
    d[..rows].copy_from_slice(&scratch[..rows]);
}

/// The RMS of `v_i * inv_scale_i`.
fn rms_scaled(v: &[f64], inv_scale: &[f64]) -> f64 {
    let s: f64 = v.iter().zip(inv_scale).map(|(x, w)| (x * w) * (x * w)).sum();
    (s / v.len().max(1) as f64).sqrt()
}

/// How the last Newton iteration ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Newton {
    Converged,
    /// Too slow or diverging: a fresh Jacobian or a smaller step may help.
    Failed,
    /// `f` was not finite at an iterate.
    NonFinite,
}

/// The BDF (NDF) stepper's state and buffers (f64).
pub(crate) struct Bdf {
    n: usize,
    jc: JacobianCache,
    w: WMatrix,
    /// The factors of `M - c J` must be rebuilt before the next Newton iteration.
    lu_stale: bool,
    /// Rejections since the last accepted step.
    rejects_in_row: usize,
    /// The Jacobian was computed since the last accepted step (a failure then shrinks `h`).
    jac_fresh: bool,
    /// Backward differences, `MAX_ORDER + 3` rows of `n`.
    d: Vec<f64>,
    order: usize,
    /// The step size the differences are scaled for (signed).
    h: f64,
    n_equal_steps: usize,
    /// Start (or start again after a discontinuity) at order 1 at the next attempt.
    restart: bool,
    slope: StartSlope,
    atol: Vec<f64>,
    rtol: Vec<f64>,
    /// Newton iterations of the last attempt, and how it ended.
    n_iter: usize,
    /// The convergence measure the next Newton iteration starts from: the last one measured
    /// with the current factors, or [`FIRST_ETA`].
    carried_eta: f64,
    outcome: Newton,
    // Scratch, `n` each unless said.
    y_pred: Vec<f64>,
    psi: Vec<f64>,
    corr: Vec<f64>,
    f: Vec<f64>,
    /// `f` at the predictor (Newton's first iterate, and where a fresh Jacobian is taken).
    f_pred: Vec<f64>,
    dy: Vec<f64>,
    /// `1 / (atol + rtol |y_pred|)`: Newton's norm.
    inv_scale: Vec<f64>,
    tmp: Vec<f64>,
    /// `(MAX_ORDER + 1) n`: rescaling, and the dense output's differences.
    wide: Vec<f64>,
}

impl Bdf {
    pub(crate) fn new<M: Model>(model: &M, method: JacobianMethod) -> Self {
        let n = model.n_states();
        let v = || vec![0.0; n];
        Self {
            n,
            jc: JacobianCache::new(model, method),
            w: WMatrix::new(n),
            lu_stale: true,
            rejects_in_row: 0,
            jac_fresh: false,
            d: vec![0.0; (MAX_ORDER + 3) * n],
            order: 1,
            h: f64::NAN,
            n_equal_steps: 0,
            restart: true,
            slope: StartSlope::new(n),
            atol: v(),
            rtol: v(),
            n_iter: 0,
            carried_eta: FIRST_ETA,
            outcome: Newton::Converged,
            y_pred: v(),
            psi: v(),
            corr: v(),
            f: v(),
            f_pred: v(),
            dy: v(),
            inv_scale: v(),
            tmp: v(),
            wide: vec![0.0; (MAX_ORDER + 1) * n],
        }
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.d[i * self.n..(i + 1) * self.n]
    }

    /// Change the step to `h_new`, rescaling the differences; `new_lu`: rebuild the LU.
    fn rescale(&mut self, h_new: f64, new_lu: bool) {
        let factor = h_new / self.h;
        change_differences(&mut self.d, self.n, self.order, factor, &mut self.wide);
        self.h = h_new;
        self.n_equal_steps = 0;
        self.lu_stale |= new_lu;
    }

    /// Begin at order 1 from `(t, u)` with step `h`: `D_0 = u`, `D_1 = h f(u, t)`.
    fn start<M: Model>(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], h: f64, stats: &mut Stats) {
        let f0 = self.slope.ensure(model, p, t, u, stats);
        let n = self.n;
        self.d.fill(0.0);
        self.d[..n].copy_from_slice(u);
        for (d1, &f) in self.d[n..2 * n].iter_mut().zip(f0) {
            *d1 = h * f;
        }
        self.order = 1;
        self.h = h;
        self.n_equal_steps = 0;
        // A restart follows a discontinuity: the old Jacobian may not hold past it.
        self.jc.valid = false;
        self.lu_stale = true;
        self.restart = false;
    }

    /// Predictor, `psi` and the Newton scale for the current order and step (row by row:
    /// the same sums as column by column, without strided reads).
    fn predict(&mut self) {
        let (n, k) = (self.n, self.order);
        let inv_a = 1.0 / alpha(k);
        let (y_pred, psi) = (&mut self.y_pred[..n], &mut self.psi[..n]);
        y_pred.copy_from_slice(&self.d[..n]);
        psi.fill(0.0);
        for (j, row) in self.d[n..(k + 1) * n].chunks_exact(n).enumerate() {
            let g = GAMMA[j + 1];
            for ((y, s), &v) in y_pred.iter_mut().zip(psi.iter_mut()).zip(row) {
                *y += v;
                *s += g * v;
            }
        }
        for (((s, w), &y), (&a, &r)) in
            psi.iter_mut().zip(&mut self.inv_scale[..n]).zip(y_pred.iter()).zip(self.atol.iter().zip(&self.rtol))
        {
            *s *= inv_a;
            *w = 1.0 / (a + r * y.abs());
        }
    }

    /// Factor `M - c J` if the factors are stale. Factors for a nearby `c` are kept after a
    /// step rejected for its error (Newton then iterates with a slightly wrong matrix; if it
    /// fails, the Jacobian and the factors are renewed). False if singular.
    fn ensure_lu(&mut self, c: f64, stats: &mut Stats) -> bool {
        if !self.lu_stale {
            return true;
        }
        let ok = self.w.factor(&self.jc, 1.0, -c, 0, stats);
        self.lu_stale = !ok;
        self.carried_eta = FIRST_ETA;
        ok
    }

    /// The simplified Newton iteration for the corrector from `y_pred` at `t_new`, writing
    /// the iterate into `y` and its distance from the predictor into `self.corr`.
    fn newton<M: Model>(
        &mut self,
        model: &M,
        p: &[f64],
        t_new: f64,
        c: f64,
        y: &mut [f64],
        stats: &mut Stats,
    ) -> Newton {
        let n = self.n;
        y.copy_from_slice(&self.y_pred);
        self.corr.fill(0.0);
        let mut first_norm = f64::NAN;
        let mut eta = self.carried_eta;
        for k in 0..NEWTON_MAXITER {
            self.n_iter = k + 1;
            if k == 0 {
                self.f.copy_from_slice(&self.f_pred);
            } else {
                model.rhs(&mut self.f, y, p, t_new);
                stats.nf += 1;
            }
            if !self.f.iter().all(|v| v.is_finite()) {
                return Newton::NonFinite;
            }
            // dy solves (M - c J) dy = c f - M (psi + corr).
            if self.jc.mass.is_none() {
                for i in 0..n {
                    self.dy[i] = c * self.f[i] - self.psi[i] - self.corr[i];
                }
            } else {
                for i in 0..n {
                    self.tmp[i] = self.psi[i] + self.corr[i];
                }
                self.jc.mass_mul(&self.tmp, &mut self.dy);
                for i in 0..n {
                    self.dy[i] = c * self.f[i] - self.dy[i];
                }
            }
            self.w.solve(&mut self.dy, 0);
            let dy_norm = rms_scaled(&self.dy, &self.inv_scale);
            if k == 0 {
                first_norm = dy_norm;
                // The first correction carries the LU's rounding of its largest entry into
                // every component. Where that exceeds the smallest atol, the norm cannot see
                // an error that matters (a conserved combination of small states, as in
                // E5), and a second iteration, on the residual, removes it: no carried
                // contraction then.
                let largest = self.dy.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
                let smallest_atol = self.atol.iter().fold(f64::INFINITY, |m, &a| m.min(a));
                if f64::EPSILON * largest > smallest_atol {
                    eta = FIRST_ETA;
                }
            } else {
                // The mean contraction so far: give up when it diverges, or when it cannot
                // reach the tolerance within the iterations left.
                let ratio = dy_norm / first_norm;
                let rate = if k == 1 { ratio } else { ratio.powf(1.0 / k as f64) };
                if rate > 0.9 || rate.powi((NEWTON_MAXITER - k - 1) as i32) / (1.0 - rate) * dy_norm > NEWTON_TOL {
                    return Newton::Failed;
                }
                eta = rate / (1.0 - rate);
                self.carried_eta = eta;
            }
            for i in 0..n {
                y[i] += self.dy[i];
                self.corr[i] += self.dy[i];
            }
            // The distance left to the solution is about eta |dy|.
            if dy_norm == 0.0 || eta * dy_norm < NEWTON_TOL {
                return Newton::Converged;
            }
        }
        Newton::Failed
    }

    /// The RMS norm of `error_const_k D_k`-type estimates, scaled at the new state.
    fn scaled_norm(&self, v: &[f64], factor: f64) -> f64 {
        let y = self.row(0);
        let s: f64 = v
            .iter()
            .zip(y)
            .enumerate()
            .map(|(i, (x, yi))| {
                let r = factor * x / (self.atol[i] + self.rtol[i] * yi.abs());
                r * r
            })
            .sum();
        (s / self.n.max(1) as f64).sqrt()
    }

    /// The safety factor of a step that took `n_iter` Newton iterations.
    fn safety(&self) -> f64 {
        0.9 * (2 * NEWTON_MAXITER + 1) as f64 / (2 * NEWTON_MAXITER + self.n_iter) as f64
    }
}

impl<M: Model> Stepper<f64, M> for Bdf {
    fn order(&self) -> u32 {
        self.order as u32
    }

    fn error_order(&self) -> u32 {
        self.order as u32 + 1
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Bdf
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
        if self.restart {
            self.start(model, p, times.first, u, times.h, stats);
        } else if times.h != self.h {
            // The driver shortened the step (a stop, dt_max, the end of the span).
            self.rescale(times.h, true);
        }
        self.predict();
        let c = self.h / alpha(self.order);
        let t_new = times.last;
        model.rhs(&mut self.f_pred, &self.y_pred, p, t_new);
        stats.nf += 1;
        self.outcome = loop {
            if !self.jc.valid {
                self.jc.update(model, p, t_new, &self.y_pred, &self.f_pred, stats);
                self.jac_fresh = true;
                self.lu_stale = true;
            }
            if !self.ensure_lu(c, stats) {
                break Newton::Failed;
            }
            match self.newton(model, p, t_new, c, u_new, stats) {
                // Try again with the Jacobian at the predictor.
                Newton::Failed if !self.jac_fresh => self.jc.valid = false,
                outcome => break outcome,
            }
        };
        match self.outcome {
            Newton::Converged => {
                let e = error_const(self.order);
                for (ei, &ci) in err.iter_mut().zip(&self.corr) {
                    *ei = e * ci;
                }
            }
            Newton::Failed => {
                u_new.copy_from_slice(u);
                err.fill(f64::INFINITY);
            }
            Newton::NonFinite => {
                u_new.fill(f64::NAN);
                err.fill(f64::INFINITY);
            }
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
        // The differences after this step (as `accept` will make them), rows 1..=order;
        // rows past the order stay zero.
        let (n, k) = (self.n, self.order);
        self.wide.fill(0.0);
        let next = &mut self.tmp;
        next.copy_from_slice(&self.corr);
        for j in (1..=k).rev() {
            for c in 0..n {
                next[c] += self.d[j * n + c];
            }
            self.wide[(j - 1) * n..j * n].copy_from_slice(next);
        }
        &self.wide[..MAX_ORDER * n]
    }

    fn accept(&mut self, discontinuity: bool) {
        let (n, k) = (self.n, self.order);
        // D_{k+2} = corr - D_{k+1}; D_{k+1} = corr; D_j += D_{j+1} for j = k..0.
        for c in 0..n {
            self.d[(k + 2) * n + c] = self.corr[c] - self.d[(k + 1) * n + c];
            self.d[(k + 1) * n + c] = self.corr[c];
        }
        for j in (0..=k).rev() {
            for c in 0..n {
                self.d[j * n + c] += self.d[(j + 1) * n + c];
            }
        }
        self.n_equal_steps += 1;
        self.rejects_in_row = 0;
        self.jac_fresh = false;
        self.slope.valid = false;
        if discontinuity {
            self.restart = true;
        }
    }

    fn next_step_after_accept(&mut self, _e: f64) -> Option<f64> {
        if self.restart {
            return None;
        }
        let (n, k) = (self.n, self.order);
        if self.n_equal_steps < k + 1 {
            return Some(self.h);
        }
        // Errors of orders k - 1, k, k + 1 from the differences, at one scale.
        let norm_here = self.scaled_norm(&self.corr, error_const(k));
        let norm_down =
            if k > 1 { self.scaled_norm(&self.d[k * n..(k + 1) * n], error_const(k - 1)) } else { f64::INFINITY };
        let norm_up = if k < MAX_ORDER {
            self.scaled_norm(&self.d[(k + 2) * n..(k + 3) * n], error_const(k + 1))
        } else {
            f64::INFINITY
        };
        // norm^(-1 / (order + 1)), coarsely: three powers at every step are a visible share
        // of a small system's step, and the choice needs no more than a few digits.
        let factor_of = |norm: f64, order: usize| {
            if norm == 0.0 {
                MAX_FACTOR
            } else if norm.is_finite() {
                exp2_coarse((-log2_coarse(norm) / (order as f64 + 1.0)).clamp(-8.0, 8.0))
            } else {
                0.0
            }
        };
        // (An order-0 candidate never wins: its norm is infinite, its factor 0.)
        let candidates =
            [(factor_of(norm_down, k - 1), k - 1), (factor_of(norm_here, k), k), (factor_of(norm_up, k + 1), k + 1)];
        let (best, new_order) = candidates.into_iter().fold((0.0, k), |acc, c| if c.0 > acc.0 { c } else { acc });
        let factor = (self.safety() * best).clamp(MIN_FACTOR, MAX_FACTOR);
        if new_order == k && (1.0..KEEP_BELOW).contains(&factor) {
            // Not worth a new LU.
            return Some(self.h);
        }
        self.order = new_order;
        self.rescale(self.h * factor, true);
        Some(self.h)
    }

    fn next_step_after_reject(&mut self, e: f64) -> Option<f64> {
        if self.restart {
            return None;
        }
        let converged = self.outcome == Newton::Converged;
        self.carried_eta = FIRST_ETA;
        let factor = if converged {
            // e is the squared norm.
            (self.safety() * e.powf(-0.5 / (self.order as f64 + 1.0))).max(MIN_FACTOR)
        } else {
            0.5
        };
        // After a first rejection the old factors are kept: Newton usually still converges
        // with them, and new ones at every rejection cost more than they save. A second
        // rejection in a row means the factors, for a `c` now well off, slow Newton down
        // until its unconverged part dominates the error estimate, and the step would be
        // rejected again and again: new factors then (bench README, session 23).
        self.rejects_in_row += 1;
        self.rescale(self.h * factor, !converged || self.rejects_in_row >= 2);
        Some(self.h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Scalar;

    /// `u' = lambda (u - sin t) + cos t`: the solution from `u(0) = 0` is `sin t` whatever
    /// `lambda` (stiff for large negative values).
    struct Forced;
    const LAMBDA: f64 = -50.0;
    impl Model for Forced {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], t: T) {
            du[0] = (u[0] - t.sin()).scale(LAMBDA) + t.cos();
        }
    }

    /// Step `steps` times with order `k` and step `h` from `t = 0`, the differences set from
    /// the exact solution at `0, -h, ..., -k h`; the error at the end.
    fn fixed_order_error(k: usize, h: f64, steps: usize) -> f64 {
        let mut s = Bdf::new(&Forced, JacobianMethod::Auto);
        <Bdf as Stepper<f64, Forced>>::set_tolerances(&mut s, &[1e-12], &[1e-12]);
        // Backward differences of sin at 0, -h, -2h, ...
        let mut col: Vec<f64> = (0..=k).map(|i| (-(i as f64) * h).sin()).collect();
        for j in 0..=k {
            s.d[j] = col[0];
            for i in 0..k - j {
                col[i] -= col[i + 1];
            }
        }
        s.order = k;
        s.h = h;
        s.restart = false;
        let (mut u, mut u_new, mut err) = ([0.0], [0.0], [0.0]);
        let mut stats = Stats::default();
        for i in 0..steps {
            let t = i as f64 * h;
            let times = StepRecord { t, h, first: t, last: t + h, end: t + h };
            s.attempt(&Forced, &[], &times, &u, &mut u_new, &mut err, &mut stats);
            assert_eq!(s.outcome, Newton::Converged);
            <Bdf as Stepper<f64, Forced>>::accept(&mut s, false);
            u = u_new;
        }
        (u[0] - (steps as f64 * h).sin()).abs()
    }

    /// Each order converges at its order, with the differences carried step to step.
    #[test]
    fn each_order_converges_at_its_order() {
        for k in 1..=MAX_ORDER {
            let (e1, e2) = (fixed_order_error(k, 1.0 / 40.0, 40), fixed_order_error(k, 1.0 / 80.0, 80));
            let order = (e1 / e2).log2();
            assert!((order - k as f64).abs() < 0.25, "order {k}: observed {order:.2} (errors {e1:.2e}, {e2:.2e})");
        }
    }

    /// Rescaling the differences for a new step size is the same as taking the differences
    /// of the interpolating polynomial at the new spacing.
    #[test]
    fn rescaled_differences_are_those_of_the_new_spacing() {
        let y = |t: f64| 1.0 + 0.3 * t - 0.7 * t * t + 0.2 * t * t * t;
        let diffs = |h: f64, k: usize| {
            let mut col: Vec<f64> = (0..=k).map(|i| y(-(i as f64) * h)).collect();
            let mut d = vec![0.0; MAX_ORDER + 1];
            for j in 0..=k {
                d[j] = col[0];
                for i in 0..k - j {
                    col[i] -= col[i + 1];
                }
            }
            d
        };
        for k in 3..=MAX_ORDER {
            let mut d = diffs(0.1, k);
            d.resize(MAX_ORDER + 3, 0.0);
            let mut scratch = vec![0.0; MAX_ORDER + 1];
            change_differences(&mut d, 1, k, 0.37, &mut scratch);
            let want = diffs(0.037, k);
            for j in 0..=k {
                assert!((d[j] - want[j]).abs() < 1e-13, "order {k}, row {j}: {} vs {}", d[j], want[j]);
            }
        }
    }
}
