//! Parameter uncertainty at a least-squares optimum, from the Gauss-Newton approximation of
//! the Hessian: `cov = s^2 (J^T J)^-1`, with `J` the Jacobian of the weighted residuals.
//!
//! `s^2` is 1 when the data carried standard deviations (the residuals are then in units of
//! their own noise), and the residual variance `2 cost / (m - n)` otherwise, as
//! `scipy.optimize.curve_fit` does by default.
//!
//! Identifiability is read from the spectrum of `J^T J` scaled to unit diagonal (so units
//! do not matter): a condition number above [`MAX_CONDITION`] means some combination of
//! parameters is not determined by the data; the directions below it get an infinite
//! variance, and the parameters taking part in them an infinite standard error.

use faer::{Mat, Side};

/// The condition number of the scaled Fisher information beyond which a fit is reported as
/// not identifiable.
pub const MAX_CONDITION: f64 = 1e10;

/// Standard errors and correlations of fitted parameters.
#[derive(Clone, Debug)]
pub struct Uncertainty {
    /// One standard error per parameter (infinite where not identifiable).
    pub stderr: Vec<f64>,
    /// The correlation matrix, row-major `n x n` (NaN where a standard error is infinite).
    pub correlation: Vec<f64>,
    /// The condition number of `J^T J` scaled to unit diagonal.
    pub condition: f64,
    /// False when the data do not determine every parameter (see the module docs).
    pub identifiable: bool,
    /// The `s^2` used.
    pub residual_variance: f64,
}

impl Uncertainty {
    /// From the residuals' Jacobian (row-major, `m x n`) at the optimum and its cost
    /// `1/2 |r|^2`; `absolute_sigma`: the residuals are already divided by known standard
    /// deviations.
    pub fn from_jacobian(jac: &[f64], m: usize, n: usize, cost: f64, absolute_sigma: bool) -> Self {
        let a = Mat::from_fn(n, n, |i, j| (0..m).map(|k| jac[k * n + i] * jac[k * n + j]).sum::<f64>());
        let d: Vec<f64> = (0..n).map(|i| a[(i, i)].sqrt()).collect();
        let residual_variance = if absolute_sigma {
            1.0
        } else if m > n {
            2.0 * cost / (m - n) as f64
        } else {
            f64::INFINITY
        };
        let unidentified = |n: usize, condition: f64| Self {
            stderr: vec![f64::INFINITY; n],
            correlation: vec![f64::NAN; n * n],
            condition,
            identifiable: false,
            residual_variance,
        };
        if d.iter().any(|&x| !(x > 0.0 && x.is_finite())) {
            // A parameter the residuals do not depend on at all.
            return unidentified(n, f64::INFINITY);
        }
        let scaled = Mat::from_fn(n, n, |i, j| a[(i, j)] / (d[i] * d[j]));
        let Ok(eig) = scaled.self_adjoint_eigen(Side::Lower) else {
            return unidentified(n, f64::INFINITY);
        };
        let lambda: Vec<f64> = (0..n).map(|i| eig.S()[i]).collect();
        let (lo, hi) = (lambda[0], lambda[n - 1]);
        let condition = if lo > 0.0 { hi / lo } else { f64::INFINITY };
        let v = eig.U();
        // cov = s^2 D^-1 V diag(1 / lambda) V^T D^-1, with the unresolved directions infinite.
        let resolved: Vec<bool> = lambda.iter().map(|&l| l > hi / MAX_CONDITION).collect();
        let mut cov = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let mut s = 0.0;
                for k in 0..n {
                    if resolved[k] {
                        s += v[(i, k)] * v[(j, k)] / lambda[k];
                    } else if i == j && v[(i, k)].abs() > 1e-8 {
                        s = f64::INFINITY;
                    }
                }
                cov[i * n + j] = residual_variance * s / (d[i] * d[j]);
            }
        }
        let stderr: Vec<f64> = (0..n).map(|i| cov[i * n + i].sqrt()).collect();
        let correlation = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                if stderr[i].is_finite() && stderr[j].is_finite() {
                    cov[k] / (stderr[i] * stderr[j])
                } else {
                    f64::NAN
                }
            })
            .collect();
        Self { stderr, correlation, condition, identifiable: condition <= MAX_CONDITION, residual_variance }
    }
}

impl Uncertainty {
    /// The uncertainty of the first `k` parameters alone (their marginal: the others, such
    /// as multiple shooting's group states, were estimated too).
    pub fn restrict(&self, k: usize) -> Self {
        let k = k.min(self.stderr.len());
        self.select(&(0..k).collect::<Vec<_>>())
    }

    /// The uncertainty of the values at `indices` alone (their marginal), in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        let n = self.stderr.len();
        let kept: Vec<usize> = indices.iter().copied().filter(|&i| i < n).collect();
        Self {
            stderr: kept.iter().map(|&i| self.stderr[i]).collect(),
            correlation: kept.iter().flat_map(|&i| kept.iter().map(move |&j| self.correlation[i * n + j])).collect(),
            condition: self.condition,
            identifiable: self.identifiable,
            residual_variance: self.residual_variance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight line `a + b t` through points with unit noise: the textbook covariance
    /// `(X^T X)^-1`.
    #[test]
    fn linear_regression_has_the_textbook_covariance() {
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let jac: Vec<f64> = t.iter().flat_map(|&ti| [1.0, ti]).collect();
        let u = Uncertainty::from_jacobian(&jac, 5, 2, 0.0, true);
        // X^T X = [[5, 10], [10, 30]]; its inverse is [[30, -10], [-10, 5]] / 50.
        assert!((u.stderr[0] - (30.0f64 / 50.0).sqrt()).abs() < 1e-12);
        assert!((u.stderr[1] - (5.0f64 / 50.0).sqrt()).abs() < 1e-12);
        let rho = -10.0 / (30.0f64 * 5.0).sqrt();
        assert!((u.correlation[1] - rho).abs() < 1e-12 && (u.correlation[2] - rho).abs() < 1e-12);
        assert!(u.identifiable);
        // A selection in another order keeps each value's own entries.
        let swapped = u.select(&[1, 0]);
        assert_eq!(swapped.stderr, vec![u.stderr[1], u.stderr[0]]);
        assert_eq!(swapped.correlation, vec![u.correlation[3], u.correlation[2], u.correlation[1], u.correlation[0]]);
        // Estimated noise: cost 1.5 over 3 degrees of freedom gives s^2 = 1.
        let v = Uncertainty::from_jacobian(&jac, 5, 2, 1.5, false);
        assert!((v.residual_variance - 1.0).abs() < 1e-15 && (v.stderr[0] - u.stderr[0]).abs() < 1e-12);
    }

    /// Two parameters that enter only as their sum are flagged, with infinite errors.
    #[test]
    fn a_sum_of_two_parameters_is_not_identifiable() {
        let jac: Vec<f64> = (0..4).flat_map(|k| [k as f64 + 1.0, k as f64 + 1.0]).collect();
        let u = Uncertainty::from_jacobian(&jac, 4, 2, 0.1, true);
        assert!(!u.identifiable && u.condition > MAX_CONDITION);
        assert!(u.stderr.iter().all(|s| s.is_infinite()));
    }
}
