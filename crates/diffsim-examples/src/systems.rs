//! The true systems the examples' data come from, and the helpers that make the data.

use diffsim::fit::Physics;
use diffsim::{solve, Algorithm, Model, Problem, Result, Scalar, SolveOptions};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The spiral's true system `u' = ((u.^3)^T A)^T`, `A = [[-0.1, 2], [-2, -0.1]]`.
#[derive(Clone, Copy, Debug)]
pub struct SpiralTruth;

impl Model for SpiralTruth {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
        let (a, b) = (u[0] * u[0] * u[0], u[1] * u[1] * u[1]);
        du[0] = a.scale(-0.1) + b.scale(-2.0);
        du[1] = a.scale(2.0) + b.scale(-0.1);
    }
}

/// Lotka-Volterra `x' = alpha x - beta x y`, `y' = gamma x y - delta y`, p = [alpha, beta, gamma, delta].
#[derive(Clone, Copy, Debug)]
pub struct LvTruth;

impl Model for LvTruth {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        4
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = p[0] * u[0] - p[1] * u[0] * u[1];
        du[1] = p[2] * u[0] * u[1] - p[3] * u[1];
    }
}

/// The lv-ude example's true parameters alpha, beta, gamma, delta.
pub const LV_PARAMS: [f64; 4] = [1.3, 0.9, 0.8, 1.8];

/// The known part of the Lotka-Volterra UDE: the linear terms `alpha x` and `-delta y`.
#[derive(Clone, Copy, Debug)]
pub struct LvLinear {
    /// Growth rate of the prey.
    pub alpha: f64,
    /// Death rate of the predator.
    pub delta: f64,
}

impl Physics for LvLinear {
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _t: T) {
        du[0] = u[0].scale(self.alpha);
        du[1] = u[1].scale(-self.delta);
    }
}

pub(crate) fn linspace(t0: f64, t1: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| t0 + (t1 - t0) * i as f64 / (k - 1) as f64).collect()
}

/// The true solution at `times`, solved tightly.
pub(crate) fn truth<M: Model>(model: M, u0: Vec<f64>, p: Vec<f64>, times: &[f64]) -> Result<Vec<f64>> {
    let span = (times[0], *times.last().unwrap_or(&times[0]));
    let prob = Problem::new(model, u0, p, span)?;
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(times.to_vec());
    Ok(solve(&prob, Algorithm::Vern7, &opts)?.into_u_flat())
}

/// A standard normal draw (Box-Muller on the seeded stream).
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
