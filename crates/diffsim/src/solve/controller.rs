//! Step-size control in one place: the error norm, the PI controller and the initial step.

use super::options::ErrorNorm;
use super::stepper::BoundRhs;
use crate::scalar::Scalar;

/// The SQUARE of the RMS of `err_i / (atol_i + rtol_i * max(|u_old_i|, |u_new_i|))` over all
/// components (and, with [`ErrorNorm::AllParts`], over every derivative part of AD numbers).
/// Squared because the step-size controller only needs its logarithm: a square root would sit
/// on the critical path of every step.
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
            ErrorNorm::AllParts => component_error_sq(err[i], u_old[i], u_new[i], atol[i], rtol[i]),
            ErrorNorm::ValuesOnly => value_error_sq(err[i], u_old[i], u_new[i], atol[i], rtol[i]),
        };
        sum += s;
        count += c;
    }
    // A multiply by the reciprocal (known early; a constant for plain floats) rather than a
    // division on the critical path of every step.
    sum * (1.0 / count.max(1) as f64)
}

/// One component's contribution to the squared error norm: its error scaled by
/// `atol + rtol * max(|u_old|, |u_new|)`, squared and summed over every part of the number
/// (the value and, for dual numbers, each derivative part with its own scale), with the
/// number of parts counted.
#[inline(always)]
fn component_error_sq<T: Scalar>(err: T, u_old: T, u_new: T, atol: f64, rtol: f64) -> (f64, usize) {
    if T::PARTS == 1 {
        // The reciprocal depends on the states only, so it is ready before the error (which
        // waits for the last stage): the division is off the step's critical path.
        let inv_sc = 1.0 / (atol + rtol * u_old.value().abs().max(u_new.value().abs()));
        let r = err.value() * inv_sc;
        return (r * r, 1);
    }
    let mut s = 0.0;
    for k in 0..T::PARTS {
        let sc = atol + rtol * u_old.part(k).abs().max(u_new.part(k).abs());
        let r = err.part(k) / sc;
        s += r * r;
    }
    (s, T::PARTS)
}

/// [`component_error_sq`] counting the value part only ([`ErrorNorm::ValuesOnly`], kept to
/// show why ignoring the derivative parts gives wrong gradients).
#[inline(always)]
fn value_error_sq<T: Scalar>(err: T, u_old: T, u_new: T, atol: f64, rtol: f64) -> (f64, usize) {
    let sc = atol + rtol * u_old.value().abs().max(u_new.value().abs());
    let r = err.value() / sc;
    (r * r, 1)
}

/// log2(1e-4): the floor of the previous error in the PI formula (keeps one tiny error from
/// inflating the next step).
const LOG2_ERR_FLOOR: f64 = -13.287_712_379_549_449;

/// The PI step-size controller (Gustafsson; Hairer, Norsett & Wanner I, IV.2):
/// `h_new = h / clamp(E^beta1 / E_old^beta2 / safety, 1/qmax, 1/qmin)`, with Hairer's
/// DOPRI5 tuning beta2 = 0.04, beta1 = 1/k - 0.75 beta2 for an error estimate `O(h^k)`.
/// (OrdinaryDiffEq's 7/(10k), 2/(5k) settle at a steady error well below the tolerance and
/// take more steps at equal tolerance.)
///
/// The powers are taken as `2^(beta2 log2 E_old - beta1 log2 E)` with the coarse
/// [`log2_coarse`] and [`exp2_coarse`]: the new step size waits on them at the end of every
/// step, and they are cheaper than the C library's `log` and `exp` (full precision, behind
/// calls). Their error moves the step-size factor by
/// under 2e-4 of itself, far below what the controller's heuristics resolve.
#[derive(Clone, Debug)]
pub(crate) struct PiController {
    beta1: f64,
    beta2: f64,
    qmin: f64,
    qmax: f64,
    safety: f64,
    /// `log2(max(err_old, 1e-4))` of the last accepted step.
    log2_err_old: f64,
}

impl PiController {
    /// Defaults for an error estimate of order `k`.
    pub(crate) fn new(k: u32) -> Self {
        let beta2 = 0.04;
        let beta1 = 1.0 / k as f64 - 0.75 * beta2;
        Self { beta1, beta2, qmin: 0.2, qmax: 10.0, safety: 0.9, log2_err_old: LOG2_ERR_FLOOR }
    }

    /// Factor for the next step after an accepted one with squared error norm `err_sq`.
    /// After a rejection the step is not allowed to grow.
    #[inline]
    pub(crate) fn accept(&mut self, err_sq: f64, after_reject: bool) -> f64 {
        let l = 0.5 * log2_coarse(err_sq.max(1e-300));
        // safety / (E^beta1 / E_old^beta2), without a division on the critical path; the
        // exponent is clamped to the factor's range first (exp2_coarse's domain).
        let y = (self.beta2 * self.log2_err_old - self.beta1 * l).clamp(-8.0, 8.0);
        let factor = self.safety * exp2_coarse(y);
        let mut factor = factor.clamp(self.qmin, self.qmax);
        if after_reject {
            factor = factor.min(1.0);
        }
        self.log2_err_old = l.max(LOG2_ERR_FLOOR);
        factor
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

/// `log2(x)` for a positive normal `x`, to within 1.1e-4: the exponent bits plus a quartic
/// in the mantissa `m - 1` on `[0, 1)` (a near-minimax fit of `log2(1 + t)`, made here).
#[inline(always)]
pub(crate) fn log2_coarse(x: f64) -> f64 {
    const C: [f64; 4] =
        [1.439_014_624_420_142_7, -0.679_943_680_896_454_1, 0.325_594_994_690_718_4, -0.084_768_266_004_104_95];
    let bits = x.to_bits();
    let exponent = ((bits >> 52) as i64 - 1023) as f64;
    let t = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000) - 1.0;
    // Estrin's scheme: two independent halves, then one multiply-add.
    let t2 = t * t;
    let low = C[0] + C[1] * t;
    let high = C[2] + C[3] * t;
    exponent + t * (low + t2 * high)
}

/// `2^y` for `|y| <= 1000`, to a relative 1.1e-4: `2^k` from exponent bits times a cubic for
/// `2^f` on `f in [-1/2, 1/2]` (a near-minimax fit, made here). `k` comes from the
/// round-to-nearest "magic number" trick, as in `nn::fastmath`.
#[inline(always)]
pub(crate) fn exp2_coarse(y: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    const D: [f64; 3] = [0.693_282_928_021_676, 0.242_210_978_862_257_45, 0.055_008_936_201_443_13];
    let shifted = y + MAGIC;
    let k = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i64;
    let f = y - (shifted - MAGIC);
    let f2 = f * f;
    let p = 1.0 + f * D[0] + f2 * (D[1] + f * D[2]);
    p * f64::from_bits(((k + 1023) as u64) << 52)
}

/// Hairer's initial step (Solving ODEs I, II.4), using `f0 = f(u0, t0)` and `rhs(du, u, t)`
/// for the one further evaluation. Returns the signed step and the number of `f`
/// evaluations it took (one).
#[allow(clippy::too_many_arguments)]
pub(crate) fn initial_step<T: Scalar>(
    rhs: BoundRhs<'_, T>,
    t0: f64,
    u0: &[T],
    f0: &[T],
    span: f64,
    order: u32,
    atol: &[f64],
    rtol: &[f64],
    u1: &mut [T],
    f1: &mut [T],
) -> (f64, usize) {
    let norm = |x: &[T], at: &[T]| -> f64 {
        let mut s = 0.0;
        let mut c = 0;
        for i in 0..x.len() {
            let (a, b) = component_error_sq(x[i], at[i], at[i], atol[i], rtol[i]);
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
    rhs(f1, u1, t0 + dir * h0);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense log-uniform grid over the controller's range of squared error norms, and
    /// every binade's edges (where the mantissa polynomial wraps).
    #[test]
    fn coarse_log2_is_within_its_bound() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = 2f64.powf(-990.0 + 1990.0 * i as f64 / 200_000.0);
            worst = worst.max((log2_coarse(x) - x.log2()).abs());
        }
        for e in -990..1000 {
            for x in [2f64.powi(e), 2f64.powi(e).next_down(), 2f64.powi(e).next_up()] {
                worst = worst.max((log2_coarse(x) - x.log2()).abs());
            }
        }
        assert!(worst < 1.1e-4, "log2 error {worst}");
        assert!(worst > 1e-6, "the bound is not tight: {worst}");
        assert_eq!(log2_coarse(1.0), 0.0);
    }

    #[test]
    fn coarse_exp2_is_within_its_bound() {
        let mut worst: f64 = 0.0;
        for i in 0..=400_000 {
            let y = -20.0 + 40.0 * i as f64 / 400_000.0;
            worst = worst.max((exp2_coarse(y) / y.exp2() - 1.0).abs());
        }
        assert!(worst < 1.1e-4, "exp2 relative error {worst}");
        assert!((exp2_coarse(1000.0) / 1000f64.exp2() - 1.0).abs() < 1.1e-4);
        assert!((exp2_coarse(-1000.0) / (-1000f64).exp2() - 1.0).abs() < 1.1e-4);
    }

    /// The coarse powers move the factor by a tiny fraction of itself: compare with the
    /// same PI formula in full precision over a sweep of error sequences.
    #[test]
    fn controller_factor_matches_the_exact_pi_formula() {
        for k in [3, 5, 8] {
            let mut c = PiController::new(k);
            let mut l_old = 1e-4f64.ln();
            for i in 0..2000 {
                let err = 10f64.powf(-12.0 + 12.0 * ((i * 7919) % 2000) as f64 / 2000.0);
                let after_reject = i % 13 == 0;
                let got = c.accept(err * err, after_reject);
                let l = err.ln();
                let q = ((c.beta1 * l - c.beta2 * l_old).exp() / c.safety).clamp(1.0 / c.qmax, 1.0 / c.qmin);
                let q = if after_reject { q.max(1.0) } else { q };
                l_old = l.max(1e-4f64.ln());
                let want = 1.0 / q;
                assert!((got / want - 1.0).abs() < 2e-4, "k {k}, err {err}: {got} vs {want}");
            }
        }
    }
}
