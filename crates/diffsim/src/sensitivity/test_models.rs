//! The sensitivity tests' own models, as one type: every model type instantiates the whole
//! gradient stack (each sensealg, each VJP, dual numbers of several widths), so the unit
//! tests share one instantiation instead of compiling it once per model.

use crate::models::{LotkaVolterra, LvPiecewise};
use crate::{Model, Scalar};

/// Each variant's equations are in its doc.
#[derive(Clone)]
pub(crate) enum TestModel {
    /// `u' = -p0 u`.
    Decay,
    /// [`TestModel::Decay`] with a hand-written VJP that doubles `dL/dp`.
    WrongVjp,
    /// `u' = p0 u^2`, which blows up at `t = 1 / (p0 u0)`.
    BlowUp,
    /// Lotka-Volterra whose prey rate switches from `p0` to `p1` at t = 1.3 inside `rhs`,
    /// declared nowhere.
    Undeclared,
    /// As [`TestModel::Undeclared`], the switch at `t = p3`, declared as a tstop.
    MovingSwitch,
    /// `u' = -p0 u` until `t = p1`, then 0: a switch time that is a parameter, not a tstop.
    HiddenSwitch,
    /// A saturating spring `x'' = -k min(x, c) - d x'`: a kink in the state.
    Saturating,
    /// A 32-cell column whose diffusivity switches on the sign of the gradient (convective
    /// adjustment).
    Column,
    /// [`LotkaVolterra`].
    Lv,
    /// [`LvPiecewise`]: rates switching at the tstops 1, 2, 3.
    LvPiecewise,
}

/// Cells of [`TestModel::Column`].
const COLUMN: usize = 32;

impl Model for TestModel {
    fn n_states(&self) -> usize {
        match self {
            Self::Decay | Self::WrongVjp | Self::BlowUp | Self::HiddenSwitch => 1,
            Self::Column => COLUMN,
            Self::Lv => LotkaVolterra.n_states(),
            Self::LvPiecewise => LvPiecewise.n_states(),
            Self::Undeclared | Self::MovingSwitch | Self::Saturating => 2,
        }
    }
    fn n_params(&self) -> usize {
        match self {
            Self::Decay | Self::WrongVjp | Self::BlowUp => 1,
            Self::HiddenSwitch | Self::Column => 2,
            Self::Undeclared | Self::Saturating => 3,
            Self::MovingSwitch => 4,
            Self::Lv => LotkaVolterra.n_params(),
            Self::LvPiecewise => LvPiecewise.n_params(),
        }
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        match self {
            Self::Decay | Self::WrongVjp => du[0] = -p[0] * u[0],
            Self::BlowUp => du[0] = p[0] * u[0] * u[0],
            Self::Undeclared | Self::MovingSwitch => {
                let switch = if matches!(self, Self::Undeclared) { T::from_f64(1.3) } else { p[3] };
                let a = if t <= switch { p[0] } else { p[1] };
                du[0] = a * u[0] - u[0] * u[1];
                du[1] = -p[2] * u[1] + u[0] * u[1];
            }
            Self::HiddenSwitch => du[0] = if t <= p[1] { -p[0] * u[0] } else { T::zero() },
            Self::Saturating => {
                du[0] = u[1];
                du[1] = -p[0] * u[0].min(p[1]) - p[2] * u[1];
            }
            Self::Column => column(du, u, p),
            Self::Lv => LotkaVolterra.rhs(du, u, p, t),
            Self::LvPiecewise => LvPiecewise.rhs(du, u, p, t),
        }
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        match self {
            Self::MovingSwitch => vec![p[3]],
            Self::LvPiecewise => LvPiecewise.tstops(p),
            _ => Vec::new(),
        }
    }
    fn vjp(&self, w: &[f64], u: &[f64], p: &[f64], _t: f64, du: &mut [f64], dp: &mut [f64]) -> bool {
        if !matches!(self, Self::WrongVjp) {
            return false;
        }
        du[0] -= p[0] * w[0];
        dp[0] -= 2.0 * u[0] * w[0];
        true
    }
    fn has_vjp(&self) -> bool {
        matches!(self, Self::WrongVjp)
    }
}

/// Fluxes `k (u[i+1] - u[i])` between cells, `k = p0` where the gradient is positive and
/// `p1` elsewhere; closed ends.
fn column<T: Scalar>(du: &mut [T], u: &[T], p: &[T]) {
    let n = u.len();
    let flux = |i: usize| {
        let g = u[i + 1] - u[i];
        let k = if g > T::zero() { p[0] } else { p[1] };
        k * g
    };
    for i in 0..n {
        let right = if i + 1 < n { flux(i) } else { T::zero() };
        let left = if i > 0 { flux(i - 1) } else { T::zero() };
        du[i] = right - left;
    }
}
