//! The sensitivity tests' own models, as one type: every model type instantiates the whole
//! gradient stack (each sensealg, each VJP, dual numbers of several widths), so the unit
//! tests share one instantiation instead of compiling it once per model.

use crate::capabilities::{AnalyticJacobian, AnalyticTimeDerivative, AnalyticVjp, Derivatives, RecordedVjp};
use crate::models::{LotkaVolterra, LvPiecewise};
use crate::problem::Model;
use crate::scalar::Scalar;

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
    /// `u' = -p0 u + p1 sin(t)`, with every capability (an analytic Jacobian, `df/dt`, a VJP,
    /// a VJP from records), each counting its calls in [`CALLS`].
    Capable,
}

/// What [`TestModel::Capable`]'s capabilities were asked for on this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Calls {
    pub(crate) jacobian: usize,
    pub(crate) time_derivative: usize,
    pub(crate) vjp: usize,
    pub(crate) from_record: usize,
    pub(crate) rhs_record: usize,
}

thread_local! {
    /// The calls on this thread (a solve and its gradient run on the caller's thread).
    pub(crate) static CALLS: std::cell::Cell<Calls> = const { std::cell::Cell::new(Calls {
        jacobian: 0, time_derivative: 0, vjp: 0, from_record: 0, rhs_record: 0,
    }) };
}

fn count(f: impl FnOnce(&mut Calls)) {
    CALLS.with(|c| {
        let mut calls = c.get();
        f(&mut calls);
        c.set(calls);
    });
}

/// The calls counted since the last `take_calls`.
pub(crate) fn take_calls() -> Calls {
    CALLS.with(|c| c.take())
}

/// Cells of [`TestModel::Column`].
const COLUMN: usize = 32;

impl Model for TestModel {
    fn n_states(&self) -> usize {
        match self {
            Self::Decay | Self::WrongVjp | Self::BlowUp | Self::HiddenSwitch | Self::Capable => 1,
            Self::Column => COLUMN,
            Self::Lv => LotkaVolterra.n_states(),
            Self::LvPiecewise => LvPiecewise.n_states(),
            Self::Undeclared | Self::MovingSwitch | Self::Saturating => 2,
        }
    }
    fn n_params(&self) -> usize {
        match self {
            Self::Decay | Self::WrongVjp | Self::BlowUp => 1,
            Self::HiddenSwitch | Self::Column | Self::Capable => 2,
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
            Self::Capable => du[0] = -p[0] * u[0] + p[1] * t.sin(),
        }
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        match self {
            Self::MovingSwitch => vec![p[3]],
            Self::LvPiecewise => LvPiecewise.tstops(p),
            _ => Vec::new(),
        }
    }
    fn derivatives(&self) -> Derivatives<'_> {
        match self {
            Self::WrongVjp => Derivatives::none().vjp(self),
            Self::Capable => Derivatives::none().jacobian(self).time_derivative(self).recorded_vjp(self).sparsity(self),
            _ => Derivatives::none(),
        }
    }
}

/// The VJPs of `WrongVjp` (deliberately wrong in `dp`) and `Capable`.
impl AnalyticVjp for TestModel {
    type Workspace = ();
    fn workspace(&self) {}
    fn vjp(&self, _: &mut (), w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
        du[0] -= p[0] * w[0];
        match self {
            Self::Capable => {
                count(|c| c.vjp += 1);
                dp[0] -= u[0] * w[0];
                dp[1] += t.sin() * w[0];
            }
            _ => dp[0] -= 2.0 * u[0] * w[0],
        }
    }
}

impl AnalyticJacobian for TestModel {
    fn jacobian(&self, jac: &mut [f64], _u: &[f64], p: &[f64], _t: f64) {
        count(|c| c.jacobian += 1);
        jac[0] = -p[0];
    }
}

impl AnalyticTimeDerivative for TestModel {
    fn time_derivative(&self, dfdt: &mut [f64], _u: &[f64], p: &[f64], t: f64) {
        count(|c| c.time_derivative += 1);
        dfdt[0] = p[1] * t.cos();
    }
}

/// `Capable`'s record is the state it was evaluated at.
impl RecordedVjp for TestModel {
    fn record_len(&self) -> usize {
        1
    }
    fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]) {
        count(|c| c.rhs_record += 1);
        record[0] = u[0];
        self.rhs(du, u, p, t);
    }
    fn vjp_from_record(
        &self,
        ws: &mut (),
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        _pending: &mut Vec<f64>,
    ) {
        assert_eq!(record, u, "a record of another point");
        count(|c| c.from_record += 1);
        self.vjp(ws, w, u, p, t, du, dp);
        count(|c| c.vjp -= 1);
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

/// A running cost for the tests: `g = u0^2 + sin(t) p0 u_last`.
pub(crate) struct TestCost;

impl crate::sensitivity::RunningCost for TestCost {
    fn cost<T: Scalar>(&self, u: &[T], p: &[T], t: T) -> T {
        u[0] * u[0] + t.sin() * p[0] * u[u.len() - 1]
    }
}

impl crate::capabilities::JacobianSparsity for TestModel {
    fn jacobian_sparsity(&self) -> Vec<(usize, usize)> {
        vec![(0, 0)]
    }
}
