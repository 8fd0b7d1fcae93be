//! A cheap estimate of the spectral radius of `J = df/du` for `Algorithm::Auto`.
//!
//! Hairer's per-step test (`h * |f(y1) - f(y0)| / |y1 - y0|` from two stages at the same
//! time) only sees the stiff mode once that mode is excited. An explicit method running on
//! a stiff problem at tight tolerance keeps the mode damped, sitting just inside its
//! stability boundary with smooth steps, so that test can stay silent for tens of
//! thousands of steps (Robertson at rtol 1e-10). A few power iterations with
//! Jacobian-vector products (one 1-wide dual evaluation each), warm-started from the last
//! vector, find the dominant eigenvalue's size directly.

use crate::ad::Dual;
use crate::problem::Model;
use crate::scalar::Scalar;

pub(crate) struct PowerIteration {
    v: Vec<f64>,
    u: Vec<Dual<1>>,
    p: Vec<Dual<1>>,
    f: Vec<Dual<1>>,
}

impl PowerIteration {
    pub(crate) fn new(n: usize, np: usize) -> Self {
        // A fixed start vector with no special structure.
        let v: Vec<f64> = (0..n).map(|i| ((i as f64 + 1.0) * 0.754_877_666).sin() + 0.1).collect();
        Self { v, u: vec![Dual::default(); n], p: vec![Dual::default(); np], f: vec![Dual::default(); n] }
    }

    /// Estimate of `max |lambda(J)|` at `(u, t)` after `iters` iterations (0 if J v = 0).
    pub(crate) fn estimate<M: Model, T: Scalar>(&mut self, model: &M, p: &[T], t: f64, u: &[T], iters: usize) -> f64 {
        for (d, x) in self.p.iter_mut().zip(p) {
            *d = Dual::constant(x.value());
        }
        let mut rho = 0.0;
        for _ in 0..iters {
            let norm_v = self.v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !(norm_v > 0.0 && norm_v.is_finite()) {
                self.v.iter_mut().enumerate().for_each(|(i, x)| *x = 1.0 / (i as f64 + 1.0));
                return rho;
            }
            for ((d, x), &vi) in self.u.iter_mut().zip(u).zip(&self.v) {
                *d = Dual { v: x.value(), d: [vi / norm_v] };
            }
            model.rhs(&mut self.f, &self.u, &self.p, Dual::constant(t));
            let norm_w = self.f.iter().map(|d| d.d[0] * d.d[0]).sum::<f64>().sqrt();
            if !(norm_w > 0.0 && norm_w.is_finite()) {
                return rho;
            }
            rho = norm_w;
            for (vi, d) in self.v.iter_mut().zip(&self.f) {
                *vi = d.d[0] / norm_w;
            }
        }
        rho
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// u' = A u with eigenvalues -1 and -1000: the estimate converges to 1000.
    #[test]
    fn finds_the_dominant_eigenvalue() {
        struct Linear;
        impl Model for Linear {
            fn n_states(&self) -> usize {
                2
            }
            fn n_params(&self) -> usize {
                0
            }
            fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
                // A = V diag(-1, -1000) V^-1 with V = [[1, 1], [1, -1]].
                let (a, b) = (T::from_f64(-500.5), T::from_f64(499.5));
                du[0] = a * u[0] + b * u[1];
                du[1] = b * u[0] + a * u[1];
            }
        }
        let mut pi = PowerIteration::new(2, 0);
        let rho = pi.estimate::<_, f64>(&Linear, &[], 0.0, &[1.0, 2.0], 8);
        assert!((rho - 1000.0).abs() < 1e-6 * 1000.0, "{rho}");
    }
}
