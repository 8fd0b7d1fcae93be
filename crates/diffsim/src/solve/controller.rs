//! Step-size control in one place: the error norm, the PI controller and the initial step.

use super::options::ErrorNorm;
use crate::{Model, Scalar};

/// The SQUARE of the RMS of `err_i / (atol_i + rtol_i * max(|u_old_i|, |u_new_i|))` over all
/// components (and, with [`ErrorNorm::AllParts`], over every derivative part of AD numbers).
/// Squared because the step-size controller only needs its logarithm: a square root on the
/// critical path of every step was 5 % of a small explicit solve.
#[inline(always)]
pub(crate) fn error_norm_sq<T: Scalar>(
    err: &[T],
    u_old: &[T],
    u_new: &[T],
    atol: &[f64],
    rtol: &[f64],
    kind: ErrorNorm,
) -> f64 {
    let n = err.len();
    let (u_old, u_new, atol, rtol) = (&u_old[..n], &u_new[..n], &atol[..n], &rtol[..n]);
    let mut sum = 0.0;
    let mut count = 0;
    for i in 0..n {
        let (s, c) = match kind {
            ErrorNorm::AllParts => T::error_sq(err[i], u_old[i], u_new[i], atol[i], rtol[i]),
            ErrorNorm::ValuesOnly => T::error_sq_value_only(err[i], u_old[i], u_new[i], atol[i], rtol[i]),
        };
        sum += s;
        count += c;
    }
    sum / count.max(1) as f64
}

/// ln(1e-4): the floor of the previous error in the PI formula (keeps one tiny error from
/// inflating the next step).
const LN_ERR_FLOOR: f64 = -9.210_340_371_976_182;

/// The PI step-size controller (Gustafsson; Hairer, Norsett & Wanner I, IV.2):
/// `h_new = h / clamp(E^beta1 / E_old^beta2 / safety, 1/qmax, 1/qmin)`, with Hairer's
/// DOPRI5 tuning beta2 = 0.04, beta1 = 1/k - 0.75 beta2 for an error estimate `O(h^k)`.
/// (OrdinaryDiffEq's 7/(10k), 2/(5k) settle at a steady error near 0.17 of the tolerance
/// and took ~20% more steps on Lorenz at equal tolerance.)
#[derive(Clone, Debug)]
pub(crate) struct PiController {
    beta1: f64,
    beta2: f64,
    qmin: f64,
    qmax: f64,
    safety: f64,
    /// `ln(max(err_old, 1e-4))` of the last accepted step.
    ln_err_old: f64,
}

impl PiController {
    /// Defaults for an error estimate of order `k`.
    pub(crate) fn new(k: u32) -> Self {
        let beta2 = 0.04;
        let beta1 = 1.0 / k as f64 - 0.75 * beta2;
        Self { beta1, beta2, qmin: 0.2, qmax: 10.0, safety: 0.9, ln_err_old: LN_ERR_FLOOR }
    }

    /// Factor for the next step after an accepted one with squared error norm `err_sq`.
    /// After a rejection the step is not allowed to grow.
    /// (One logarithm and one exponential instead of two general powers: this runs every
    /// step and showed up in profiles of small problems.)
    #[inline]
    pub(crate) fn accept(&mut self, err_sq: f64, after_reject: bool) -> f64 {
        let l = 0.5 * err_sq.max(1e-300).ln();
        let q = (self.beta1 * l - self.beta2 * self.ln_err_old).exp() / self.safety;
        let mut q = q.clamp(1.0 / self.qmax, 1.0 / self.qmin);
        if after_reject {
            q = q.max(1.0);
        }
        self.ln_err_old = l.max(LN_ERR_FLOOR);
        1.0 / q
    }

    /// Factor for retrying after a rejected step with squared error norm `err_sq` (NaN or
    /// infinite errors shrink by the largest allowed factor).
    #[inline]
    pub(crate) fn reject(&self, err_sq: f64) -> f64 {
        if !err_sq.is_finite() {
            return self.qmin;
        }
        let q11 = err_sq.powf(0.5 * self.beta1);
        1.0 / (q11 / self.safety).min(1.0 / self.qmin)
    }
}

/// Hairer's initial step (Solving ODEs I, II.4), using `f0 = f(u0, t0)`.
/// Returns the signed step and the number of `f` evaluations it took (one).
#[allow(clippy::too_many_arguments)]
pub(crate) fn initial_step<T: Scalar, M: Model>(
    model: &M,
    p: &[T],
    t0: f64,
    u0: &[T],
    f0: &[T],
    span: f64,
    order: u32,
    atol: &[f64],
    rtol: &[f64],
    controlled: usize,
    u1: &mut [T],
    f1: &mut [T],
) -> (f64, usize) {
    // Over the first `controlled` states only (see `SolveOptions::error_states`).
    let norm = |x: &[T], at: &[T]| -> f64 {
        let mut s = 0.0;
        let mut c = 0;
        for i in 0..controlled.min(x.len()) {
            let (a, b) = T::error_sq(x[i], at[i], at[i], atol[i], rtol[i]);
            s += a;
            c += b;
        }
        (s / c.max(1) as f64).sqrt()
    };
    let dir = span.signum();
    let d0 = norm(u0, u0);
    let d1 = norm(f0, u0);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
    let h0 = h0.min(span.abs());
    for i in 0..u0.len() {
        u1[i] = u0[i] + f0[i].scale(dir * h0);
    }
    model.rhs(f1, u1, p, T::from_f64(t0 + dir * h0));
    for i in 0..u0.len() {
        u1[i] = f1[i] - f0[i];
    }
    let d2 = norm(u1, u0) / h0;
    let dmax = d1.max(d2);
    let h1 = if dmax <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / dmax).powf(1.0 / (order as f64 + 1.0)) };
    let h = (100.0 * h0).min(h1).min(span.abs());
    let h = if h.is_finite() && h > 0.0 { h } else { 1e-6f64.min(span.abs()) };
    (dir * h, 1)
}
