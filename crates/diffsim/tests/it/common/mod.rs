//! Shared test problems with exact solutions.
#![allow(dead_code)]

use diffsim::{Model, Scalar};

/// u1' = -2 t u1^2 (u1(0) = 1: u1 = 1/(1 + t^2)); (u2, u3) rotating at the rate
/// 1 + u2^2 + u3^2 (from (1, 0): u2 = cos 2t, u3 = sin 2t). Nonlinear and non-autonomous,
/// so a missing time-derivative term shows up.
pub struct Exact;

impl Model for Exact {
    const STATES: Option<usize> = Some(3);
    fn n_states(&self) -> usize {
        3
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], t: T) {
        du[0] = -t.scale(2.0) * u[0] * u[0];
        let w = T::one() + u[1] * u[1] + u[2] * u[2];
        du[1] = -w * u[2];
        du[2] = w * u[1];
    }
}

pub const U0: [f64; 3] = [1.0, 1.0, 0.0];

pub fn exact(t: f64) -> [f64; 3] {
    [1.0 / (1.0 + t * t), (2.0 * t).cos(), (2.0 * t).sin()]
}

pub fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1e-300)).fold(0.0, f64::max)
}

/// The tests' running cost `g = b x y + sin(t) x` (for two states and `p[1] = b`): depends
/// on the states, a parameter and time. One type for every test, because each running-cost
/// type compiles the whole gradient stack again.
pub struct Cost;

impl diffsim::sensitivity::RunningCost for Cost {
    fn cost<T: Scalar>(&self, u: &[T], p: &[T], t: T) -> T {
        p[1] * u[0] * u[1] + t.sin() * u[0]
    }
}
