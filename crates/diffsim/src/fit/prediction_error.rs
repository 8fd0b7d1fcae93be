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
            PemGain::Fixed(k) => check(k).map(|()| vec![k]),
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
}

/// A model nudged towards interpolated measurements (see the module docs).
#[derive(Clone, Debug)]
pub struct Nudged<M> {
    model: M,
    /// `H`, `columns x n`.
    h: Vec<f64>,
    data: Interpolated,
    gain: f64,
}

impl<M: Model> Model for Nudged<M> {
    fn n_states(&self) -> usize {
        self.model.n_states()
    }
    fn n_params(&self) -> usize {
        self.model.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        self.model.rhs(du, u, p, t);
        if self.gain == 0.0 {
            return;
        }
        let n = u.len();
        for (j, row) in self.h.chunks_exact(n).enumerate() {
            let Some(y) = self.data.at(j, t.value()) else { continue };
            let mut innovation = T::from_f64(y);
            for (&c, &uk) in row.iter().zip(u) {
                if c != 0.0 {
                    innovation -= uk.scale(c);
                }
            }
            let push = innovation.scale(self.gain);
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
        let mut stops = self.model.tstops(p);
        if self.gain != 0.0 {
            stops.extend(self.data.columns.iter().flat_map(|(t, _)| t.iter().copied()));
        }
        stops
    }
}

/// Fit by the prediction error method with Levenberg-Marquardt and forward sensitivities:
/// the fit at the last gain of `gain`'s schedule (for [`PemGain::Annealed`], gain 0:
/// single shooting from the nudged fits' parameters), with the iterations of all fits.
pub fn fit_prediction_error<M: Model + Clone>(
    fit: &FitProblem<'_, M>,
    solver: &dyn LeastSquaresSolver,
    gain: PemGain,
) -> Result<LeastSquaresFit> {
    let h = fit.checked_observation()?;
    let data = Interpolated::new(fit.data);
    let mut p = fit.problem.p.clone();
    let mut u0 = fit.problem.u0.clone();
    let mut last: Option<LeastSquaresFit> = None;
    let mut iters = 0;
    for k in gain.schedule()? {
        let nudged = Nudged { model: fit.problem.model.clone(), h: h.clone(), data: data.clone(), gain: k };
        let problem = Problem::new(nudged, u0.clone(), p.clone(), fit.problem.tspan)?;
        let stage = FitProblem {
            problem: &problem,
            data: fit.data,
            observation: fit.observation.clone(),
            alg: fit.alg,
            opts: fit.opts.clone(),
            fit_u0: fit.fit_u0,
        };
        let result = fit_least_squares(&stage, solver)?;
        iters += result.iters;
        p.clone_from(&result.p);
        u0.clone_from(&result.u0);
        last = Some(result);
    }
    let mut fit =
        last.ok_or_else(|| DiffsimError::InvalidOption { name: "gain", why: "no gains to fit with".into() })?;
    fit.iters = iters;
    Ok(fit)
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
    }

    #[test]
    fn annealing_ends_at_zero_and_bad_gains_are_errors() {
        assert_eq!(PemGain::Annealed { start: 16.0, stages: 4 }.schedule().unwrap(), vec![16.0, 4.0, 1.0, 0.0]);
        assert!(PemGain::Annealed { start: 1.0, stages: 1 }.schedule().is_err());
        assert!(PemGain::Fixed(-1.0).schedule().is_err());
    }
}
