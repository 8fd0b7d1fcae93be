//! Smoothed values and derivatives of measured series by local polynomial kernel
//! regression, the first stage of two-stage collocation.
//!
//! At each time `tau` a quadratic `a + b (t - tau) + c (t - tau)^2` is fitted to the
//! measurements by weighted least squares with weights `K((t_i - tau) / h)`; `a` estimates
//! the value and `b` the derivative at `tau`. A local quadratic (rather than a local mean or
//! line) keeps the derivative free of the first-order bias at the ends of the series and at
//! peaks. Missing values are left out of each column's fit.
//!
//! The default bandwidth is chosen per series by leave-one-out cross-validation of the
//! smoothed values over a logarithmic grid (from twice the smallest spacing to half the
//! span): it adapts to the noise (wide windows on noisy data, narrow ones on exact data),
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

/// Candidate bandwidths tried by [`select_bandwidth`].
const BANDWIDTH_CANDIDATES: usize = 30;

/// The bandwidth minimising the leave-one-out cross-validation error of the smoothed
/// values of `y` (missing values skipped); see the module docs.
pub fn select_bandwidth(t: &[f64], y: &[f64], kernel: Kernel) -> f64 {
    let present: Vec<usize> = (0..t.len()).filter(|&i| !y[i].is_nan()).collect();
    let span = match (present.first(), present.last()) {
        (Some(&a), Some(&b)) if b > a => t[b] - t[a],
        _ => return 1.0,
    };
    let spacing = present.windows(2).map(|w| t[w[1]] - t[w[0]]).fold(f64::INFINITY, f64::min);
    let (lo, hi) = ((2.0 * spacing).min(span / 2.0), span / 2.0);
    let mut best = (f64::INFINITY, hi);
    for k in 0..BANDWIDTH_CANDIDATES {
        let h = lo * (hi / lo).powf(k as f64 / (BANDWIDTH_CANDIDATES - 1) as f64);
        let mut score = 0.0;
        let mut counted = 0;
        for &i in &present {
            let Some((fit, leverage)) = local_quadratic(t, y, t[i], kernel, h) else { continue };
            if leverage < 1.0 - 1e-9 {
                score += ((y[i] - fit[0]) / (1.0 - leverage)).powi(2);
                counted += 1;
            }
        }
        // Bandwidths that leave points without a fit do not compete.
        if counted == present.len() && score < best.0 {
            best = (score, h);
        }
    }
    best.1
}

/// The weighted local quadratic at `tau` (coefficients of `1, (t - tau), (t - tau)^2`) and
/// the leverage of a point at `tau`.
fn local_quadratic(t: &[f64], y: &[f64], tau: f64, kernel: Kernel, h: f64) -> Option<([f64; 3], f64)> {
    let (mut m, mut v) = ([0.0; 5], [0.0; 3]);
    let mut used = 0;
    for (&ti, &yi) in t.iter().zip(y) {
        if yi.is_nan() {
            continue;
        }
        let w = kernel.weight((ti - tau) / h);
        if w <= 0.0 {
            continue;
        }
        used += 1;
        let d = ti - tau;
        let mut p = w;
        for (k, mk) in m.iter_mut().enumerate() {
            *mk += p;
            if k < 3 {
                v[k] += p * yi;
            }
            p *= d;
        }
    }
    if used < 3 {
        return None;
    }
    let a = [[m[0], m[1], m[2]], [m[1], m[2], m[3]], [m[2], m[3], m[4]]];
    let coef = solve3(a, v)?;
    let e0 = solve3(a, [1.0, 0.0, 0.0])?;
    Some((coef, kernel.weight(0.0) * e0[0]))
}

/// Smoothed values and derivatives of one series at its own times (`None` where the local
/// fit has too few points or is degenerate: the bandwidth is too small there).
pub fn smooth(t: &[f64], y: &[f64], kernel: Kernel, bandwidth: f64) -> Vec<Option<(f64, f64)>> {
    t.iter().map(|&tau| local_quadratic(t, y, tau, kernel, bandwidth).map(|(c, _)| (c[0], c[1]))).collect()
}

/// Solve a 3x3 system by Cramer's rule; `None` when it is (nearly) singular.
fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    let scale = a.iter().flatten().fold(0.0_f64, |s, x| s.max(x.abs())).powi(3);
    let nonsingular = d.is_finite() && d.abs() > 1e-13 * scale;
    if !nonsingular {
        return None;
    }
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let mut m = a;
        for i in 0..3 {
            m[i][k] = b[i];
        }
        *o = det(m) / d;
    }
    Some(out)
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
