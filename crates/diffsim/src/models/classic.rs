//! Small classic test problems.

use crate::capabilities::{AnalyticJacobian, Derivatives};
use crate::mass::MassMatrix;
use crate::problem::Model;
use crate::scalar::Scalar;

/// The Lorenz system, p = [sigma, rho, beta] (chaotic at 10, 28, 8/3).
#[derive(Clone, Copy, Debug, Default)]
pub struct Lorenz;

impl Model for Lorenz {
    const STATES: Option<usize> = Some(3);
    fn n_states(&self) -> usize {
        3
    }
    fn n_params(&self) -> usize {
        3
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let (x, y, z) = (u[0], u[1], u[2]);
        du[0] = p[0] * (y - x);
        du[1] = x * (p[1] - z) - y;
        du[2] = x * y - p[2] * z;
    }
}

/// Lotka-Volterra predator-prey, p = [alpha, beta, gamma, delta]:
/// x' = alpha x - beta x y, y' = -gamma y + delta x y.
#[derive(Clone, Copy, Debug, Default)]
pub struct LotkaVolterra;

impl Model for LotkaVolterra {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        4
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let (x, y) = (u[0], u[1]);
        du[0] = p[0] * x - p[1] * x * y;
        du[1] = -p[2] * y + p[3] * x * y;
    }
}

/// Robertson's stiff chemical kinetics, p = [k1, k2, k3] = [0.04, 3e7, 1e4].
/// Has an analytic Jacobian.
#[derive(Clone, Copy, Debug, Default)]
pub struct Robertson;

impl Model for Robertson {
    const STATES: Option<usize> = Some(3);
    fn n_states(&self) -> usize {
        3
    }
    fn n_params(&self) -> usize {
        3
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let (y1, y2, y3) = (u[0], u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        du[0] = -k1 * y1 + k3 * y2 * y3;
        du[1] = k1 * y1 - k2 * y2 * y2 - k3 * y2 * y3;
        du[2] = k2 * y2 * y2;
    }
    fn derivatives(&self) -> Derivatives<'_> {
        Derivatives::none().jacobian(self)
    }
}

impl AnalyticJacobian for Robertson {
    fn jacobian(&self, j: &mut [f64], u: &[f64], p: &[f64], _t: f64) {
        let (y2, y3) = (u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        j.copy_from_slice(&[-k1, k3 * y3, k3 * y2, k1, -2.0 * k2 * y2 - k3 * y3, -k3 * y2, 0.0, 2.0 * k2 * y2, 0.0]);
    }
}

/// Robertson as an index-1 DAE: the third equation replaced by the conservation law
/// `0 = y1 + y2 + y3 - 1` with mass matrix diag(1, 1, 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct RobertsonDae;

impl Model for RobertsonDae {
    const STATES: Option<usize> = Some(3);
    fn n_states(&self) -> usize {
        3
    }
    fn n_params(&self) -> usize {
        3
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let (y1, y2, y3) = (u[0], u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        du[0] = -k1 * y1 + k3 * y2 * y3;
        du[1] = k1 * y1 - k2 * y2 * y2 - k3 * y2 * y3;
        du[2] = y1 + y2 + y3 - 1.0;
    }
    /// diag(1, 1, 0): `y3` is algebraic.
    fn mass_matrix(&self) -> Option<MassMatrix> {
        Some(MassMatrix::algebraic_states(3, &[2]).expect("state 2 of 3 exists"))
    }
}

/// Van der Pol oscillator in Hairer's scaling, `p = [mu]`: `u1' = u2`, `u2' = mu ((1 - u1^2) u2 - u1)`
/// (eps = 1/mu; the period is about 3 - 2 ln 2 ~ 1.6 whatever mu).
/// Stiff for large mu (1e3 and up).
#[derive(Clone, Copy, Debug, Default)]
pub struct VanDerPol;

impl Model for VanDerPol {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        1
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = u[1];
        du[1] = p[0] * ((T::one() - u[0] * u[0]) * u[1] - u[0]);
    }
}

/// A damped pendulum, p = [g/L, c]: theta'' = -(g/L) sin(theta) - c theta'.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pendulum;

impl Model for Pendulum {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = u[1];
        du[1] = -p[0] * u[0].sin() - p[1] * u[1];
    }
}

/// Lotka-Volterra with a growth rate that switches in time, p = [p1, p2, p3, p4]:
/// x' = a(t) x - x y, y' = -a(t) y + x y with a(t) = p1 on t <= 1, p2 on (1, 2],
/// p3 on (2, 3], p4 after. Its breakpoints 1, 2, 3 are tstops.
#[derive(Clone, Copy, Debug, Default)]
pub struct LvPiecewise;

impl Model for LvPiecewise {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        4
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        let a = if t <= T::from_f64(1.0) {
            p[0]
        } else if t <= T::from_f64(2.0) {
            p[1]
        } else if t <= T::from_f64(3.0) {
            p[2]
        } else {
            p[3]
        };
        let (x, y) = (u[0], u[1]);
        du[0] = a * x - x * y;
        du[1] = -a * y + x * y;
    }
    fn tstops(&self, _p: &[f64]) -> Vec<f64> {
        vec![1.0, 2.0, 3.0]
    }
}
