//! Smoothed values and derivatives of measured series by local polynomial kernel
//! regression, the first stage of two-stage collocation.
//!
//! At each time `tau` a polynomial `a + b (t - tau) + c (t - tau)^2 + ...` is fitted to the
//! measurements by weighted least squares with weights `K((t_i - tau) / h)`; `a` estimates
//! the value and `b` the derivative at `tau`. At least a quadratic (rather than a local mean
//! or line) keeps the derivative free of the first-order bias at the ends of the series and
//! at peaks; a cubic or quartic removes more of it where the data are nearly exact. Where
//! fewer than `degree + 2` measurements lie within `h` of `tau` (the ends of the series,
//! gaps) a compact kernel is widened there just enough. Missing values are left out of each
//! column's fit.
//!
//! The default bandwidth (and, in [`select_smoothing`], the degree) is chosen per series by
//! leave-one-out cross-validation of the smoothed values over a logarithmic grid from twice
//! the smallest spacing to half the span (searched from the narrowest window up, and stopped
//! a few candidates past the best): it adapts to the noise (wide windows on noisy data, narrow ones on exact data),
//! where a fixed rule of thumb in `n` over- or under-smooths depending on how fast the
//! series moves. Leaving point `i` out needs no refit: its residual is
//! `(y_i - y_hat_i) / (1 - L_ii)`, with `L_ii = K(0) [(X^T W X)^-1]_00` the local fit's
//! leverage.

use crate::error::{DiffsimError, Result};

/// A smoothing kernel: a weight function of `(t_i - tau) / h`, integrating to 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `3/4 (1 - x^2)` on `|x| <= 1`.
    Epanechnikov,
    /// `1/2` on `|x| <= 1`.
    Uniform,
    /// `1 - |x|` on `|x| <= 1`.
    Triangular,
    /// (biweight) `15/16 (1 - x^2)^2` on `|x| <= 1`.
    Quartic,
    /// `35/32 (1 - x^2)^3` on `|x| <= 1`.
    Triweight,
    /// `70/81 (1 - |x|^3)^3` on `|x| <= 1`.
    Tricube,
    /// `exp(-x^2 / 2) / sqrt(2 pi)`.
    Gaussian,
    /// `pi/4 cos(pi x / 2)` on `|x| <= 1`.
    Cosine,
    /// `1 / (e^x + 2 + e^-x)`.
    Logistic,
    /// `2 / pi / (e^x + e^-x)`.
    Sigmoid,
    /// `1/2 exp(-|x| / sqrt 2) sin(|x| / sqrt 2 + pi / 4)`.
    Silverman,
}

impl Kernel {
    /// Every kernel, in the order of their names.
    pub const ALL: [Kernel; 11] = [
        Kernel::Epanechnikov,
        Kernel::Uniform,
        Kernel::Triangular,
        Kernel::Quartic,
        Kernel::Triweight,
        Kernel::Tricube,
        Kernel::Gaussian,
        Kernel::Cosine,
        Kernel::Logistic,
        Kernel::Sigmoid,
        Kernel::Silverman,
    ];

    /// The kernel's name (lowercase), as the CLI takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Epanechnikov => "epanechnikov",
            Kernel::Uniform => "uniform",
            Kernel::Triangular => "triangular",
            Kernel::Quartic => "quartic",
            Kernel::Triweight => "triweight",
            Kernel::Tricube => "tricube",
            Kernel::Gaussian => "gaussian",
            Kernel::Cosine => "cosine",
            Kernel::Logistic => "logistic",
            Kernel::Sigmoid => "sigmoid",
            Kernel::Silverman => "silverman",
        }
    }

    /// The kernel called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name)).ok_or_else(|| DiffsimError::Unknown {
            kind: "kernel",
            name: name.into(),
            choices: Self::ALL.map(Kernel::name).join(", "),
        })
    }

    /// Where the weight ends: 1 for the compact kernels; for the others, where it falls
    /// below 1e-16 of its peak (what lies beyond cannot change a local fit in `f64`).
    fn reach(self) -> f64 {
        match self {
            Kernel::Gaussian => 9.0,
            Kernel::Logistic | Kernel::Sigmoid => 40.0,
            Kernel::Silverman => 56.0,
            _ => 1.0,
        }
    }

    /// The weight at `x`.
    pub fn weight(self, x: f64) -> f64 {
        use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI, SQRT_2};
        let inside = x.abs() <= 1.0;
        let compact = |v: f64| if inside { v } else { 0.0 };
        let y = x.abs();
        match self {
            Kernel::Epanechnikov => compact(0.75 * (1.0 - x * x)),
            Kernel::Uniform => compact(0.5),
            Kernel::Triangular => compact(1.0 - y),
            Kernel::Quartic => compact(15.0 / 16.0 * (1.0 - x * x).powi(2)),
            Kernel::Triweight => compact(35.0 / 32.0 * (1.0 - x * x).powi(3)),
            Kernel::Tricube => compact(70.0 / 81.0 * (1.0 - y.powi(3)).powi(3)),
            Kernel::Gaussian => (-0.5 * x * x).exp() / (2.0 * PI).sqrt(),
            Kernel::Cosine => compact(FRAC_PI_4 * (FRAC_PI_2 * x).cos()),
            Kernel::Logistic => 1.0 / (y.exp() + 2.0 + (-y).exp()),
            Kernel::Sigmoid => 2.0 / PI / (y.exp() + (-y).exp()),
            Kernel::Silverman => 0.5 * (-y / SQRT_2).exp() * (y / SQRT_2 + FRAC_PI_4).sin(),
        }
    }
}

/// Candidate bandwidths tried by [`select_bandwidth`] and [`select_smoothing`].
const BANDWIDTH_CANDIDATES: usize = 30;

/// Candidates in a row without a better score after which the search over wider windows
/// stops.
const PATIENCE: usize = 5;

/// The polynomial degrees [`select_smoothing`] chooses from.
pub const DEGREES: std::ops::RangeInclusive<usize> = 2..=MAX_DEGREE;

/// The highest local polynomial degree (the fixed-size buffers of a local fit hold it).
pub const MAX_DEGREE: usize = 4;

/// A bandwidth and a local polynomial degree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Smoothing {
    /// The kernel's half-width (in time units; widened locally where fewer than
    /// `degree + 2` measurements lie within it, as at the ends of the series).
    pub bandwidth: f64,
    /// The degree of the local polynomial (1 to `MAX_DEGREE` = 4; others are clamped there).
    pub degree: usize,
}

/// The bandwidth minimising the leave-one-out cross-validation error of the smoothed
/// values of `y` by local quadratics (missing values skipped); see the module docs.
pub fn select_bandwidth(t: &[f64], y: &[f64], kernel: Kernel) -> f64 {
    select(t, y, kernel, 2..=2).bandwidth
}

/// The bandwidth and the degree (2 to 4) minimising the leave-one-out cross-validation
/// error of the smoothed values of `y`: on exact or nearly exact data a higher degree
/// removes the bias a quadratic leaves at sharp peaks; on noisy data the degree stays low
/// and the window wide.
pub fn select_smoothing(t: &[f64], y: &[f64], kernel: Kernel) -> Smoothing {
    select(t, y, kernel, DEGREES)
}

fn select(t: &[f64], y: &[f64], kernel: Kernel, degrees: std::ops::RangeInclusive<usize>) -> Smoothing {
    let series = Series::new(t, y);
    let span = match (series.t.first(), series.t.last()) {
        (Some(&a), Some(&b)) if b > a => b - a,
        _ => return Smoothing { bandwidth: 1.0, degree: 2 },
    };
    let spacing = series.t.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    let (lo, hi) = ((2.0 * spacing).min(span / 2.0), span / 2.0);
    let mut best = (f64::INFINITY, Smoothing { bandwidth: hi, degree: 2 });
    for degree in degrees {
        let (mut best_here, mut worse) = (f64::INFINITY, 0);
        for k in 0..BANDWIDTH_CANDIDATES {
            // Past the minimum the score only grows with the window (and wide windows are
            // the costly ones): stop after a few candidates in a row that do not improve.
            if worse >= PATIENCE {
                break;
            }
            let h = lo * (hi / lo).powf(k as f64 / (BANDWIDTH_CANDIDATES - 1) as f64);
            let mut score = 0.0;
            let mut counted = 0;
            for (&ti, &yi) in series.t.iter().zip(&series.y) {
                let Some(local) = series.local_polynomial(ti, kernel, h, degree) else { continue };
                if local.leverage < 1.0 - 1e-9 {
                    score += ((yi - local.value) / (1.0 - local.leverage)).powi(2);
                    counted += 1;
                }
            }
            // Settings that leave points without a fit do not compete.
            if counted != series.t.len() {
                continue;
            }
            if score < best_here {
                (best_here, worse) = (score, 0);
            } else {
                worse += 1;
            }
            if score < best.0 {
                best = (score, Smoothing { bandwidth: h, degree });
            }
        }
    }
    best.1
}

/// A local polynomial fit at one time.
struct Local {
    value: f64,
    derivative: f64,
    /// The leverage of a point at the fit's time.
    leverage: f64,
}

/// The present measurements of one series, in time order.
struct Series {
    t: Vec<f64>,
    y: Vec<f64>,
}

impl Series {
    fn new(t: &[f64], y: &[f64]) -> Self {
        let (t, y) = t.iter().zip(y).filter(|(_, y)| !y.is_nan()).map(|(t, y)| (*t, *y)).unzip();
        Self { t, y }
    }

    /// The distance from `tau` to its `k`-th nearest measurement (`k >= 1`).
    fn kth_nearest(&self, tau: f64, k: usize) -> Option<f64> {
        if k > self.t.len() {
            return None;
        }
        let mut left = self.t.partition_point(|&x| x < tau);
        let mut right = left;
        let mut last = 0.0;
        for _ in 0..k {
            let dl = if left > 0 { tau - self.t[left - 1] } else { f64::INFINITY };
            let dr = if right < self.t.len() { self.t[right] - tau } else { f64::INFINITY };
            if dl <= dr {
                last = dl;
                left -= 1;
            } else {
                last = dr;
                right += 1;
            }
        }
        Some(last)
    }

    /// The weighted local polynomial of `degree` at `tau`, in the scaled variable
    /// `s = (t - tau) / h_local`, with `h_local` widened from `h` (for the compact kernels)
    /// until `degree + 2` measurements carry weight.
    fn local_polynomial(&self, tau: f64, kernel: Kernel, h: f64, degree: usize) -> Option<Local> {
        let size = degree.clamp(1, MAX_DEGREE) + 1;
        let mut h = h;
        if kernel.reach() == 1.0 {
            h = h.max(1.1 * self.kth_nearest(tau, size + 1)?);
        }
        let reach = kernel.reach() * h;
        let range = self.t.partition_point(|&x| x <= tau - reach)..self.t.partition_point(|&x| x < tau + reach);
        let mut a = [0.0; (MAX_DEGREE + 1) * (MAX_DEGREE + 1)];
        let mut b = [0.0; MAX_DEGREE + 1];
        let mut powers = [0.0; 2 * MAX_DEGREE + 1];
        let mut used = 0;
        for i in range {
            let x = (self.t[i] - tau) / h;
            let w = kernel.weight(x);
            if w <= 0.0 {
                continue;
            }
            used += 1;
            let mut p = w;
            for pk in powers.iter_mut().take(2 * size - 1) {
                *pk = p;
                p *= x;
            }
            for r in 0..size {
                b[r] += powers[r] * self.y[i];
                for c in 0..size {
                    a[r * size + c] += powers[r + c];
                }
            }
        }
        if used < size {
            return None;
        }
        let a = &a[..size * size];
        let coef = solve_small(a, &b[..size], size)?;
        let mut e0 = [0.0; MAX_DEGREE + 1];
        e0[0] = 1.0;
        let inverse_00 = solve_small(a, &e0[..size], size)?[0];
        Some(Local { value: coef[0], derivative: coef[1] / h, leverage: kernel.weight(0.0) * inverse_00 })
    }
}

/// Smoothed values and derivatives of one series at its own times by local quadratics
/// (`None` where fewer than four measurements are present in all).
pub fn smooth(t: &[f64], y: &[f64], kernel: Kernel, bandwidth: f64) -> Vec<Option<(f64, f64)>> {
    smooth_with(t, y, kernel, Smoothing { bandwidth, degree: 2 })
}

/// Smoothed values and derivatives with a chosen [`Smoothing`] (`None` where the local fit
/// is impossible: fewer than `degree + 2` measurements present).
pub fn smooth_with(t: &[f64], y: &[f64], kernel: Kernel, smoothing: Smoothing) -> Vec<Option<(f64, f64)>> {
    let series = Series::new(t, y);
    t.iter()
        .map(|&tau| {
            series.local_polynomial(tau, kernel, smoothing.bandwidth, smoothing.degree).map(|l| (l.value, l.derivative))
        })
        .collect()
}

/// Solve the small dense system `a x = b` (`size x size`, row-major) by Gaussian
/// elimination with partial pivoting; `None` when it is (nearly) singular.
fn solve_small(a: &[f64], b: &[f64], size: usize) -> Option<Vec<f64>> {
    let mut m = a.to_vec();
    let mut x = b.to_vec();
    let scale = m.iter().fold(0.0_f64, |s, v| s.max(v.abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    for col in 0..size {
        let pivot = (col..size).max_by(|&i, &j| m[i * size + col].abs().total_cmp(&m[j * size + col].abs()))?;
        if m[pivot * size + col].abs() <= 1e-13 * scale {
            return None;
        }
        if pivot != col {
            for c in 0..size {
                m.swap(pivot * size + c, col * size + c);
            }
            x.swap(pivot, col);
        }
        for row in col + 1..size {
            let f = m[row * size + col] / m[col * size + col];
            for c in col..size {
                m[row * size + c] -= f * m[col * size + c];
            }
            x[row] -= f * x[col];
        }
    }
    for col in (0..size).rev() {
        let mut v = x[col];
        for c in col + 1..size {
            v -= m[col * size + c] * x[c];
        }
        x[col] = v / m[col * size + col];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel integrates to 1 (trapezoid rule over a wide enough range).
    #[test]
    fn every_kernel_integrates_to_one() {
        for k in Kernel::ALL {
            // The midpoint rule, on a grid whose points avoid the compact kernels' edges.
            let (lo, hi, steps) = (-40.0, 40.0, 800_000);
            let h = (hi - lo) / steps as f64;
            let integral: f64 = (0..steps).map(|i| k.weight(lo + (i as f64 + 0.5) * h)).sum::<f64>() * h;
            assert!((integral - 1.0).abs() < 1e-6, "{}: {integral}", k.name());
            // Beyond its reach a kernel weighs nothing a local fit could notice.
            assert!(k.weight(k.reach() * 1.0001) < 1e-16 * k.weight(0.0), "{}", k.name());
            assert_eq!(Kernel::from_name(&k.name().to_uppercase()).unwrap(), k);
        }
        assert!(Kernel::from_name("box").unwrap_err().to_string().contains("epanechnikov"));
    }

    /// Each kernel's derivative estimate of a smooth signal against the analytic
    /// derivative, away from and at the ends.
    #[test]
    fn each_kernel_estimates_the_derivative_of_a_smooth_signal() {
        let t: Vec<f64> = (0..=200).map(|i| i as f64 * 0.025).collect();
        let y: Vec<f64> = t.iter().map(|t| (1.3 * t).sin() + 0.2 * t).collect();
        let dy = |t: f64| 1.3 * (1.3 * t).cos() + 0.2;
        for k in Kernel::ALL {
            let est = smooth(&t, &y, k, select_bandwidth(&t, &y, k));
            let worst = est
                .iter()
                .zip(&t)
                .map(|(e, &ti)| {
                    let (v, d) = e.expect("enough points");
                    ((v - (1.3 * ti).sin() - 0.2 * ti).abs()).max((d - dy(ti)).abs())
                })
                .fold(0.0, f64::max);
            assert!(worst < 2e-2, "{}: worst error {worst:.2e}", k.name());
        }
    }

    /// On noisy data cross-validation widens the window, and the derivative estimate stays
    /// useful (within about 10 % of the derivative's amplitude).
    #[test]
    fn cross_validation_widens_the_window_on_noisy_data() {
        let t: Vec<f64> = (0..=200).map(|i| i as f64 * 0.025).collect();
        let exact: Vec<f64> = t.iter().map(|t| (1.3 * t).sin()).collect();
        // Deterministic pseudo-noise of sd about 0.01.
        let noisy: Vec<f64> = exact
            .iter()
            .enumerate()
            .map(|(i, y)| y + 0.02 * ((i as f64 * 12.9898).sin() * 43758.5453).fract())
            .collect();
        let (h_exact, h_noisy) =
            (select_bandwidth(&t, &exact, Kernel::Epanechnikov), select_bandwidth(&t, &noisy, Kernel::Epanechnikov));
        assert!(h_noisy > 2.0 * h_exact, "{h_noisy} vs {h_exact}");
        let worst = smooth(&t, &noisy, Kernel::Epanechnikov, h_noisy)
            .iter()
            .zip(&t)
            .skip(20)
            .take(160)
            .map(|(e, &ti)| (e.unwrap().1 - 1.3 * (1.3 * ti).cos()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.15, "worst derivative error {worst}");
    }

    /// On exact data with sharp peaks cross-validation raises the degree, and the derivative
    /// error falls well below the local quadratic's; a constant-free quartic is reproduced
    /// exactly by the quartic fit, ends included.
    #[test]
    fn cross_validation_raises_the_degree_on_exact_data() {
        let t: Vec<f64> = (0..=120).map(|i| i as f64 * 0.05).collect();
        let f = |t: f64| (3.0 * t).sin().powi(3);
        let df = |t: f64| 9.0 * (3.0 * t).sin().powi(2) * (3.0 * t).cos();
        let y: Vec<f64> = t.iter().map(|&t| f(t)).collect();
        let chosen = select_smoothing(&t, &y, Kernel::Epanechnikov);
        assert!(chosen.degree > 2, "{chosen:?}");
        let worst = |est: Vec<Option<(f64, f64)>>| {
            est.iter().zip(&t).map(|(e, &ti)| (e.unwrap().1 - df(ti)).abs()).fold(0.0, f64::max)
        };
        let quadratic = worst(smooth(&t, &y, Kernel::Epanechnikov, select_bandwidth(&t, &y, Kernel::Epanechnikov)));
        let chosen_error = worst(smooth_with(&t, &y, Kernel::Epanechnikov, chosen));
        assert!(chosen_error < 0.25 * quadratic, "{chosen_error} vs {quadratic}");
        let quartic: Vec<f64> = t.iter().map(|t| t - 0.3 * t.powi(4)).collect();
        let est = smooth_with(&t, &quartic, Kernel::Tricube, Smoothing { bandwidth: 0.2, degree: 4 });
        for (e, &ti) in est.iter().zip(&t) {
            let (v, d) = e.unwrap();
            assert!((v - (ti - 0.3 * ti.powi(4))).abs() < 1e-9 && (d - (1.0 - 1.2 * ti.powi(3))).abs() < 1e-7, "{ti}");
        }
    }

    /// A quadratic is reproduced exactly, missing values skipped.
    #[test]
    fn a_quadratic_is_reproduced_exactly() {
        let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.1).collect();
        let mut y: Vec<f64> = t.iter().map(|t| 1.0 - 2.0 * t + 0.5 * t * t).collect();
        y[7] = f64::NAN;
        for (e, &ti) in smooth(&t, &y, Kernel::Epanechnikov, 0.5).iter().zip(&t) {
            let (v, d) = e.unwrap();
            assert!((v - (1.0 - 2.0 * ti + 0.5 * ti * ti)).abs() < 1e-10 && (d - (-2.0 + ti)).abs() < 1e-9);
        }
    }
}
