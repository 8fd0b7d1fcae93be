//! The prediction error method: the simulator nudged towards the measurements,
//!
//! `u' = f(u, p, t) + K H^T (y(t) - H u)`,
//!
//! with `y(t)` the measurements interpolated linearly in time (each column over its present
//! values) and `H` the observation matrix. The nudge keeps the simulated trajectory near
//! the data, so a wrong frequency or phase no longer puts every later point out of step:
//! the loss over the parameters becomes smooth and nearly convex. The gain `K` biases the
//! estimate, so it is annealed: fits at decreasing gains, each starting from the last, end
//! with `K = 0`, which is single shooting from a good start. With `K = 0` throughout this is
//! single shooting exactly.
//!
//! With a fitted gain ([`PemGain::Fitted`]) `K` joins the parameters (`K >= 0`) and the
//! nudge uses the last measurement so far instead of the interpolant (a zero-order hold:
//! the measurement times are tstops, so the hold switches exactly there). The residual at
//! each measurement is then a one-step-ahead prediction error, made before that measurement
//! is seen; with the interpolant the data would leak into their own prediction and a large
//! gain would fit anything. This is Ljung's prediction error method with a fitted observer
//! gain: consistent under process noise, and on deterministic data the gain falls towards
//! 0 as the parameters approach the truth.

use super::data::TimeSeries;
use super::least_squares::{fit_least_squares, LeastSquaresFit};
use super::spec::FitProblem;
use crate::error::{DiffsimError, Result};
use crate::optim::LeastSquaresSolver;
use crate::problem::{Model, Problem};
use crate::scalar::Scalar;

/// How the gain `K` is used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PemGain {
    /// One fit with this gain (biased unless 0: a diagnostic, or for very rough losses).
    Fixed(f64),
    /// Fits at `start`, then `start / 4`, ... (`stages` of them in all, the last at 0), each
    /// from the previous one's parameters.
    Annealed {
        /// The first gain.
        start: f64,
        /// The number of fits (at least 2).
        stages: usize,
    },
    /// One fit of the parameters and the gain together, the gain from `start` (see the
    /// module docs).
    Fitted {
        /// The gain to start from.
        start: f64,
    },
}

impl PemGain {
    /// The gains of the successive fits.
    fn schedule(self) -> Result<Vec<f64>> {
        let check = |k: f64| {
            if k >= 0.0 && k.is_finite() {
                Ok(())
            } else {
                Err(DiffsimError::InvalidOption { name: "gain", why: format!("{k}; give a finite gain >= 0") })
            }
        };
        match self {
            PemGain::Fixed(k) | PemGain::Fitted { start: k } => check(k).map(|()| vec![k]),
            PemGain::Annealed { start, stages } => {
                check(start)?;
                if stages < 2 {
                    return Err(DiffsimError::InvalidOption {
                        name: "stages",
                        why: format!("{stages}; annealing needs at least 2 fits (the last at gain 0)"),
                    });
                }
                let mut gains: Vec<f64> = (0..stages - 1).map(|i| start / 4f64.powi(i as i32)).collect();
                gains.push(0.0);
                Ok(gains)
            }
        }
    }
}

/// Measurements as functions of time: each column's present values, interpolated linearly
/// and held constant beyond its ends.
#[derive(Clone, Debug)]
struct Interpolated {
    columns: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Interpolated {
    fn new(data: &TimeSeries) -> Self {
        let columns = (0..data.n_observed())
            .map(|j| {
                (0..data.t().len()).filter(|&i| !data.row(i)[j].is_nan()).map(|i| (data.t()[i], data.row(i)[j])).unzip()
            })
            .collect();
        Self { columns }
    }

    /// Column `j` at `t`; `None` if it has no values.
    fn at(&self, j: usize, t: f64) -> Option<f64> {
        let (ts, ys) = &self.columns[j];
        let last = ts.len().checked_sub(1)?;
        if t <= ts[0] {
            return Some(ys[0]);
        }
        if t >= ts[last] {
            return Some(ys[last]);
        }
        let k = ts.partition_point(|&x| x <= t);
        let w = (t - ts[k - 1]) / (ts[k] - ts[k - 1]);
        Some(ys[k - 1] + w * (ys[k] - ys[k - 1]))
    }

    /// Column `j`'s last value at or before `t`; `None` before its first.
    fn held(&self, j: usize, t: f64) -> Option<f64> {
        let (ts, ys) = &self.columns[j];
        let k = ts.partition_point(|&x| x <= t);
        k.checked_sub(1).map(|k| ys[k])
    }
}

/// The gain of a [`Nudged`] model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Gain {
    /// A constant, towards the interpolated data.
    Fixed(f64),
    /// The model's last parameter, towards the last measurement so far.
    Parameter,
}

/// A model nudged towards interpolated measurements (see the module docs).
#[derive(Clone, Debug)]
pub struct Nudged<M> {
    model: M,
    /// `H`, `columns x n`.
    h: Vec<f64>,
    data: Interpolated,
    gain: Gain,
}

impl<M: Model> Model for Nudged<M> {
    fn n_states(&self) -> usize {
        self.model.n_states()
    }
    fn n_params(&self) -> usize {
        self.model.n_params() + usize::from(self.gain == Gain::Parameter)
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        let np = self.model.n_params();
        self.model.rhs(du, u, &p[..np], t);
        let gain = match self.gain {
            Gain::Fixed(0.0) => return,
            Gain::Fixed(k) => T::from_f64(k),
            Gain::Parameter => p[np],
        };
        let n = u.len();
        for (j, row) in self.h.chunks_exact(n).enumerate() {
            let y = match self.gain {
                Gain::Fixed(_) => self.data.at(j, t.value()),
                Gain::Parameter => self.data.held(j, t.value()),
            };
            let Some(y) = y else { continue };
            let mut innovation = T::from_f64(y);
            for (&c, &uk) in row.iter().zip(u) {
                if c != 0.0 {
                    innovation -= uk.scale(c);
                }
            }
            let push = innovation * gain;
            for (d, &c) in du.iter_mut().zip(row) {
                if c != 0.0 {
                    *d += push.scale(c);
                }
            }
        }
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        // The interpolated data kink at every measurement: steps that end there are not
        // rejected for stepping over a kink.
        let mut stops = self.model.tstops(&p[..self.model.n_params()]);
        if self.gain != Gain::Fixed(0.0) {
            stops.extend(self.data.columns.iter().flat_map(|(t, _)| t.iter().copied()));
        }
        stops
    }
}

/// The result of [`fit_prediction_error`]: the fit (parameters without the gain, their
/// standard errors marginal over it) and the last gain used (0 after annealing; the fitted
/// value for [`PemGain::Fitted`]).
#[derive(Clone, Debug)]
pub struct PemFit {
    /// The fit.
    pub fit: LeastSquaresFit,
    /// The gain of the last fit.
    pub gain: f64,
}

/// Fit by the prediction error method: the fit at the last gain of `gain`'s schedule (for
/// [`PemGain::Annealed`], gain 0: single shooting from the nudged fits' parameters), with
/// the iterations of all fits; for [`PemGain::Fitted`], one fit of the parameters and the
/// gain.
pub fn fit_prediction_error<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    gain: PemGain,
) -> Result<PemFit> {
    let h = fit.checked_observation()?;
    let data = Interpolated::new(fit.data);
    let gains = gain.schedule()?;
    if let PemGain::Fitted { start } = gain {
        return fit_with_gain(
            fit,
            solver,
            Nudged { model: fit.problem.model.clone(), h, data, gain: Gain::Parameter },
            start,
        );
    }
    let mut p = fit.problem.p.clone();
    let mut u0 = fit.problem.u0.clone();
    let mut last: Option<PemFit> = None;
    let mut iters = 0;
    for k in gains {
        let nudged =
            Nudged { model: fit.problem.model.clone(), h: h.clone(), data: data.clone(), gain: Gain::Fixed(k) };
        let problem = Problem::new(nudged, u0.clone(), p.clone(), fit.problem.tspan)?;
        let stage = fit.with_problem(&problem);
        let result = fit_least_squares(&stage, solver)?;
        iters += result.iters;
        p.clone_from(&result.p);
        u0.clone_from(&result.u0);
        last = Some(PemFit { fit: result, gain: k });
    }
    let mut pem =
        last.ok_or_else(|| DiffsimError::InvalidOption { name: "gain", why: "no gains to fit with".into() })?;
    pem.fit.iters = iters;
    Ok(pem)
}

/// One fit of `[p, K]` (then `u0` when fitted) for the nudged model whose last parameter
/// is the gain, `K >= 0` from `start`.
fn fit_with_gain<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    nudged: Nudged<M>,
    start: f64,
) -> Result<PemFit> {
    let np = fit.problem.p.len();
    let n_fit = fit.n_fitted();
    let mut p = fit.problem.p.clone();
    p.push(start);
    let problem = Problem::new(nudged, fit.problem.u0.clone(), p, fit.problem.tspan)?;
    let stage = fit.with_problem(&problem);
    // The gain's bounds, [0, inf), between the parameters' and u0's.
    let with_gain = |b: &[f64], fill: f64, bound: f64| -> Result<Vec<f64>> {
        if b.is_empty() {
            let mut v = vec![fill; n_fit + 1];
            v[np] = bound;
            return Ok(v);
        }
        if b.len() != n_fit {
            return Err(DiffsimError::SizeMismatch { what: "bounds", got: b.len(), expected: n_fit });
        }
        let mut v = b.to_vec();
        v.insert(np, bound);
        Ok(v)
    };
    let bounded = solver.with_bounds(
        with_gain(solver.lower(), f64::NEG_INFINITY, 0.0)?,
        with_gain(solver.upper(), f64::INFINITY, f64::INFINITY)?,
    );
    let mut result = fit_least_squares(&stage, bounded.as_ref())?;
    let gain = result.p.remove(np);
    let others: Vec<usize> = (0..=n_fit).filter(|&i| i != np).collect();
    result.uncertainty = result.uncertainty.select(&others);
    Ok(PemFit { fit: result, gain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_skips_missing_values_and_holds_the_ends() {
        let data =
            TimeSeries::new(vec![0.0, 1.0, 2.0, 3.0], vec!["y".into()], vec![1.0, f64::NAN, 3.0, 5.0], None).unwrap();
        let y = Interpolated::new(&data);
        assert_eq!(y.at(0, -1.0), Some(1.0));
        assert_eq!(y.at(0, 1.0), Some(2.0));
        assert_eq!(y.at(0, 2.5), Some(4.0));
        assert_eq!(y.at(0, 9.0), Some(5.0));
        // The hold: the last value at or before t, none before the first.
        assert_eq!(y.held(0, -1.0), None);
        assert_eq!(y.held(0, 0.0), Some(1.0));
        assert_eq!(y.held(0, 1.5), Some(1.0));
        assert_eq!(y.held(0, 2.0), Some(3.0));
        assert_eq!(y.held(0, 9.0), Some(5.0));
    }

    #[test]
    fn annealing_ends_at_zero_and_bad_gains_are_errors() {
        assert_eq!(PemGain::Annealed { start: 16.0, stages: 4 }.schedule().unwrap(), vec![16.0, 4.0, 1.0, 0.0]);
        assert!(PemGain::Annealed { start: 1.0, stages: 1 }.schedule().is_err());
        assert!(PemGain::Fixed(-1.0).schedule().is_err());
        assert!(PemGain::Fitted { start: f64::NAN }.schedule().is_err());
    }
}
