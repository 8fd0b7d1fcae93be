//! Discontinuities whose time depends on the parameters, and their term of the gradient.
//!
//! A model that lists a switch time `tau(p)` in [`Model::tstops`] (a dose given at
//! `t = p[4]`, a rate that changes at a fitted time) has a loss that depends on `tau`
//! through where `f` changes piece, which no derivative of `f` sees. Moving the switch by
//! `d tau` runs the piece before it for `d tau` longer, so the state just after the switch
//! moves by `(f_before - f_after) d tau`, and
//!
//! ```text
//! dL/dp += (dtau/dp) lambda(tau)^T (f(u(tau), p, tau_before) - f(u(tau), p, tau_after))
//! ```
//!
//! with `lambda(tau)` the adjoint of the state at the switch, before any data exactly at
//! `tau` is added ("before" and "after" in the direction of integration). The adjoint
//! methods add this term where their backward sweep crosses the switch; forward methods
//! refuse such models with an error.
//!
//! `dtau/dp` comes from central differences of [`Model::tstops`] (exact for the usual
//! `tau = p[j]` or any linear map, whose differences have no truncation error).

use crate::error::{DiffsimError, Result};
use crate::problem::Model;

/// A discontinuity at `t` that moves with the parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MovingStop {
    /// Where it is at the problem's parameters.
    pub(crate) t: f64,
    /// `d t / d p`.
    pub(crate) dt_dp: Vec<f64>,
}

/// The model's tstops inside `tspan` that move with `p`, in the order of integration.
///
/// Errors when the number of tstops changes under a small change of a parameter (their
/// derivative is then not defined by this rule).
pub(crate) fn moving_stops<M: Model>(model: &M, p: &[f64], tspan: (f64, f64)) -> Result<Vec<MovingStop>> {
    let (t0, t1) = tspan;
    let dir = (t1 - t0).signum();
    let sorted = |p: &[f64]| {
        let mut s = model.tstops(p);
        s.sort_by(|a, b| ((a - b) * dir).total_cmp(&0.0));
        s
    };
    let base = sorted(p);
    if base.is_empty() {
        // Most models have no switches: spare the differences (two tstops calls per
        // parameter, every gradient; a network has hundreds of parameters).
        return Ok(Vec::new());
    }
    let mut dt_dp = vec![vec![0.0; p.len()]; base.len()];
    let mut moved = vec![false; base.len()];
    let mut q = p.to_vec();
    for j in 0..p.len() {
        // A power of two, so p +- h and the difference are exact for moderate p.
        let h = (p[j].abs().max(1.0) * 2f64.powi(-20)).log2().floor().exp2();
        q[j] = p[j] + h;
        let plus = sorted(&q);
        q[j] = p[j] - h;
        let minus = sorted(&q);
        q[j] = p[j];
        if plus.len() != base.len() || minus.len() != base.len() {
            return Err(DiffsimError::InvalidOption {
                name: "tstops",
                why: format!(
                    "the model's tstops change in number when p[{j}] changes slightly ({} at p, {} and {} \
                     nearby); return the same list of switch times for nearby parameters",
                    base.len(),
                    plus.len(),
                    minus.len()
                ),
            });
        }
        for (k, (a, b)) in plus.iter().zip(&minus).enumerate() {
            if a != b {
                dt_dp[k][j] = (a - b) / (2.0 * h);
                moved[k] = true;
            }
        }
    }
    let inside = |t: f64| (t - t0) * dir > 0.0 && (t - t1) * dir < 0.0;
    Ok(base
        .into_iter()
        .zip(dt_dp)
        .zip(moved)
        .filter(|((t, _), m)| *m && inside(*t))
        .map(|((t, dt_dp), _)| MovingStop { t, dt_dp })
        .collect())
}

/// The refusal of `method` (a forward method, which does not carry the switch's term) for a
/// model whose switch at `t` moves with the parameters.
pub(crate) fn moving_refusal(method: &'static str, t: f64) -> DiffsimError {
    DiffsimError::Unsupported {
        alg: method,
        why: format!(
            "the model's switch time {t} (a tstop) depends on the parameters, and this method does not \
             differentiate where a switch lies; use an adjoint (interpolating, checkpointing, quadrature, \
             discrete) or auto"
        ),
    }
}

/// The moving switches of a problem and the sum of their terms so far.
pub(crate) struct JumpTerms {
    stops: Vec<MovingStop>,
    before: Vec<f64>,
    after: Vec<f64>,
    dir: f64,
    /// The terms added so far (`dL/dp`'s share of the switches).
    pub(crate) dp: Vec<f64>,
}

impl JumpTerms {
    /// The moving switches of `model` over `tspan` (none: every `add` is a no-op).
    pub(crate) fn new<M: Model>(model: &M, p: &[f64], tspan: (f64, f64)) -> Result<Self> {
        let n = model.n_states();
        let stops = moving_stops(model, p, tspan)?;
        let dir = (tspan.1 - tspan.0).signum();
        Ok(Self { stops, before: vec![0.0; n], after: vec![0.0; n], dir, dp: vec![0.0; p.len()] })
    }

    /// The switch times, in the order of integration.
    pub(crate) fn times(&self) -> Vec<f64> {
        self.stops.iter().map(|s| s.t).collect()
    }

    /// Add the switches' terms to a gradient's `dp`.
    pub(crate) fn add_to(&self, dp: &mut [f64]) {
        dp.iter_mut().zip(&self.dp).for_each(|(d, j)| *d += j);
    }

    /// If a moving switch lies at `t`, add its term to [`JumpTerms::dp`], with `u` the state
    /// there and `lambda` its adjoint (without data exactly at `t`).
    pub(crate) fn add<M: Model>(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], lambda: &[f64]) {
        let Some(stop) = self.stops.iter().find(|s| s.t == t) else {
            return;
        };
        let (before, after) = if self.dir > 0.0 { (t.next_down(), t.next_up()) } else { (t.next_up(), t.next_down()) };
        model.rhs(&mut self.before, u, p, before);
        model.rhs(&mut self.after, u, p, after);
        let dl_dtau: f64 = lambda.iter().zip(self.before.iter().zip(&self.after)).map(|(l, (b, a))| l * (b - a)).sum();
        for (d, &s) in self.dp.iter_mut().zip(&stop.dt_dp) {
            *d += s * dl_dtau;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Scalar;

    /// `u' = -p0 u` before `t = p1`, `u' = -p2 u` after.
    struct Switch;
    impl Model for Switch {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            3
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
            du[0] = if t <= p[1] { -p[0] * u[0] } else { -p[2] * u[0] };
        }
        fn tstops(&self, p: &[f64]) -> Vec<f64> {
            vec![0.25, p[1], 2.0 * p[1] + 1.0]
        }
    }

    #[test]
    fn finds_the_stops_that_move_and_their_derivatives() {
        let p = [0.5, 0.7, 2.0];
        let m = moving_stops(&Switch, &p, (0.0, 2.0)).unwrap();
        assert_eq!(m, vec![MovingStop { t: 0.7, dt_dp: vec![0.0, 1.0, 0.0] }]);
        // Backwards, and with the second moving stop (2.4) inside the span.
        let m = moving_stops(&Switch, &p, (3.0, 0.0)).unwrap();
        assert_eq!(m.iter().map(|s| s.t).collect::<Vec<_>>(), vec![2.4, 0.7]);
        assert_eq!((m[0].dt_dp[0], m[0].dt_dp[2]), (0.0, 0.0));
        assert!((m[0].dt_dp[1] - 2.0).abs() < 1e-9, "{:?}", m[0].dt_dp);
    }

    #[test]
    fn the_jump_term_is_lambda_times_the_jump_of_f() {
        let p = [0.5, 0.7, 2.0];
        let mut jt = JumpTerms::new(&Switch, &p, (0.0, 2.0)).unwrap();
        jt.add(&Switch, &p, 0.7, &[3.0], &[2.0]);
        // lambda (f_before - f_after) = 2 (-0.5 * 3 + 2 * 3) = 9, times dtau/dp1 = 1.
        assert_eq!(jt.dp, [0.0, 9.0, 0.0]);
        jt.add(&Switch, &p, 0.5, &[3.0], &[2.0]);
        assert_eq!(jt.dp, [0.0, 9.0, 0.0], "no switch at 0.5");
        let mut dp = [1.0; 3];
        jt.add_to(&mut dp);
        assert_eq!(dp, [1.0, 10.0, 1.0]);
    }
}
