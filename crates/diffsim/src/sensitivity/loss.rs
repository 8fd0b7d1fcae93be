//! Losses over the saved points of a solve: the [`SavedLoss`] trait, the common ones
//! ([`Loss`]), and a running cost added to any of them ([`SavedLoss::plus_running_cost`]).

use super::running_cost::{RunningCost, WithRunningCost};
use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::scalar::Scalar;
use std::sync::Arc;

/// A loss: any function of the saved values of a solve (all states at all save times, in
/// the order of the solution's [`u_flat`](crate::Solution::u_flat): save time by save time,
/// states within), which [`gradient`](super::gradient) differentiates through the solve.
///
/// Write [`SavedLoss::evaluate`] once, generically over the number type, as a model's
/// right-hand side; its gradient comes from forward-mode AD unless you also write
/// [`SavedLoss::value_and_gradient`] (worth it past a few thousand saved values).
///
/// ```
/// use diffsim::sensitivity::{gradient, SavedLoss, SensAlg};
/// use diffsim::{models::LotkaVolterra, Algorithm, Problem, Scalar, SolveOptions};
/// /// The prey's last saved value, squared.
/// struct FinalPreySq;
/// impl SavedLoss for FinalPreySq {
///     fn evaluate<T: Scalar>(&self, values: &[T]) -> T {
///         let prey = values[values.len() - 2];
///         prey * prey
///     }
/// }
/// let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
/// let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![0.5, 1.0]);
/// let g = gradient(&prob, Algorithm::Tsit5, &opts, &FinalPreySq, SensAlg::Auto).unwrap();
/// assert_eq!(g.dp.len(), 4);
/// ```
pub trait SavedLoss: Sync {
    /// Whether the loss fits `len` saved values (save times x states); the gradient checks
    /// it before any solve. The default accepts any length.
    fn check(&self, len: usize) -> Result<()> {
        let _ = len;
        Ok(())
    }
    /// The loss on saved values of any number type.
    fn evaluate<T: Scalar>(&self, values: &[T]) -> T;
    /// The loss and its gradient with respect to every saved value (`out`, as long as
    /// `values`). The default differentiates [`SavedLoss::evaluate`] by forward-mode AD,
    /// eight values per evaluation.
    fn value_and_gradient(&self, values: &[f64], out: &mut [f64]) -> f64 {
        if out.len() != values.len() {
            out.fill(f64::NAN);
            return f64::NAN;
        }
        let mut duals: Vec<Dual<8>> = values.iter().map(|&v| Dual::constant(v)).collect();
        for start in (0..values.len()).step_by(8) {
            let end = (start + 8).min(values.len());
            for j in start..end {
                duals[j] = Dual::variable(values[j], j - start);
            }
            let l = self.evaluate(&duals);
            for j in start..end {
                out[j] = l.d[j - start];
                duals[j] = Dual::constant(values[j]);
            }
        }
        self.evaluate(values)
    }
    /// This loss plus `integral_{t0}^{t1} cost(u, p, t) dt` over the span: the integral is
    /// solved as one more state under the same error control, and every sensitivity
    /// method differentiates it (see [`RunningCost`]).
    fn plus_running_cost<C: RunningCost>(self, cost: C) -> WithRunningCost<Self, C>
    where
        Self: Sized,
    {
        WithRunningCost { loss: self, cost }
    }
}

/// The loss: a function of every saved value (all states at all save times, in the order
/// of the solution's flat `u_flat`: save time by save time, states within).
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// The sum of every saved value.
    Sum,
    /// Half the sum of the squares of every saved value.
    SumSq,
    /// The sum of squared differences from data laid out like `u_flat`
    /// (`n_saves * n_states`); NaN data entries are missing and ignored.
    SquaredError(Arc<[f64]>),
    /// A weighted sum of the saved values, weights laid out like `u_flat` (an observable
    /// such as a species scaled to be comparable with the others).
    Weighted(Arc<[f64]>),
}

/// A borrowed loss is the same loss (so that `(&loss).plus_running_cost(cost)` needs no
/// copy of its data).
impl<L: SavedLoss + ?Sized> SavedLoss for &L {
    fn check(&self, len: usize) -> Result<()> {
        (**self).check(len)
    }
    fn evaluate<T: Scalar>(&self, values: &[T]) -> T {
        (**self).evaluate(values)
    }
    fn value_and_gradient(&self, values: &[f64], out: &mut [f64]) -> f64 {
        (**self).value_and_gradient(values, out)
    }
}

impl Loss {
    /// A squared-error loss against `data` (laid out like the solution's `u_flat`).
    pub fn squared_error(data: Vec<f64>) -> Self {
        Loss::SquaredError(data.into())
    }
}

impl SavedLoss for Loss {
    /// Check that the loss fits `len` saved values (save times x states): the data of
    /// `SquaredError` and the weights of `Weighted` must have exactly that length.
    ///
    /// ```
    /// use diffsim::sensitivity::{Loss, SavedLoss};
    /// assert!(Loss::Weighted(vec![1.0, 2.0].into()).check(2).is_ok());
    /// let e = Loss::Weighted(vec![1.0, 2.0].into()).check(4).unwrap_err();
    /// assert!(e.to_string().contains("Weighted"));
    /// ```
    fn check(&self, len: usize) -> Result<()> {
        let (what, got) = match self {
            Loss::SquaredError(d) => ("Loss::SquaredError data (save times x states)", d.len()),
            Loss::Weighted(w) => ("Loss::Weighted weights (save times x states)", w.len()),
            Loss::Sum | Loss::SumSq => return Ok(()),
        };
        if got != len {
            return Err(DiffsimError::SizeMismatch { what, expected: len, got });
        }
        Ok(())
    }

    /// Evaluate on saved values of any number type. Values that do not fit the loss's data
    /// ([`Loss::check`]) give NaN, never a loss of the data's first values only.
    fn evaluate<T: Scalar>(&self, values: &[T]) -> T {
        if self.check(values.len()).is_err() {
            return T::from_f64(f64::NAN);
        }
        let mut acc = T::zero();
        match self {
            Loss::Sum => values.iter().for_each(|&v| acc += v),
            Loss::SumSq => values.iter().for_each(|&v| acc += (v * v).scale(0.5)),
            Loss::Weighted(w) => values.iter().zip(w.iter()).for_each(|(&v, &w)| acc += v.scale(w)),
            Loss::SquaredError(d) => {
                for (&v, &y) in values.iter().zip(d.iter()) {
                    if !y.is_nan() {
                        let r = v - T::from_f64(y);
                        acc += r * r;
                    }
                }
            }
        }
        acc
    }

    /// The loss and its gradient with respect to every saved value (`out`, same length).
    /// Lengths that do not fit ([`Loss::check`], or `out` not as long as `values`) give NaN
    /// in the loss and in every entry of `out`.
    fn value_and_gradient(&self, values: &[f64], out: &mut [f64]) -> f64 {
        if self.check(values.len()).is_err() || out.len() != values.len() {
            out.fill(f64::NAN);
            return f64::NAN;
        }
        match self {
            Loss::Sum => out.fill(1.0),
            Loss::SumSq => out.copy_from_slice(values),
            Loss::Weighted(w) => out.copy_from_slice(w),
            Loss::SquaredError(d) => {
                for ((o, &v), &y) in out.iter_mut().zip(values).zip(d.iter()) {
                    *o = if y.is_nan() { 0.0 } else { 2.0 * (v - y) };
                }
            }
        }
        self.evaluate(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_differences() {
        let values = [0.3, -1.2, 2.0];
        for loss in [
            Loss::Sum,
            Loss::SumSq,
            Loss::squared_error(vec![1.0, f64::NAN, 0.5]),
            Loss::Weighted(vec![2.0, -1.0, 0.5].into()),
        ] {
            let mut g = [0.0; 3];
            let l = loss.value_and_gradient(&values, &mut g);
            assert_eq!(l, loss.evaluate(&values));
            for i in 0..3 {
                let mut v = values;
                v[i] += 1e-6;
                let fd = (loss.evaluate(&v) - l) / 1e-6;
                assert!((fd - g[i]).abs() < 1e-5, "{loss:?} {i}: {fd} vs {}", g[i]);
            }
        }
        assert!(Loss::squared_error(vec![0.0; 2]).check(3).is_err());
    }

    /// A loss written only as `evaluate`: its gradient comes from forward-mode AD.
    struct Chain;
    impl SavedLoss for Chain {
        fn evaluate<T: Scalar>(&self, v: &[T]) -> T {
            let mut acc = T::zero();
            for w in v.windows(2) {
                acc += w[0] * w[1] * w[1];
            }
            acc + v[0].sin()
        }
    }

    #[test]
    fn the_default_gradient_is_the_derivative_of_evaluate() {
        // 19 values: three chunks of eight, the last one partial.
        let values: Vec<f64> = (0..19).map(|i| (i as f64 * 0.37).cos()).collect();
        let mut g = vec![0.0; 19];
        let l = Chain.value_and_gradient(&values, &mut g);
        assert_eq!(l, Chain.evaluate(&values));
        for i in 0..19 {
            let (mut up, mut down) = (values.clone(), values.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let fd = (Chain.evaluate(&up) - Chain.evaluate(&down)) / 2e-6;
            assert!((fd - g[i]).abs() < 1e-8, "{i}: {fd} vs {}", g[i]);
        }
        let mut short = vec![0.0; 18];
        assert!(Chain.value_and_gradient(&values, &mut short).is_nan());
        assert!(Chain.check(7).is_ok());
    }

    #[test]
    fn lengths_that_do_not_fit_give_nan_not_a_panic() {
        for loss in [Loss::squared_error(vec![1.0; 2]), Loss::Weighted(vec![2.0; 2].into())] {
            assert!(loss.check(3).is_err() && loss.check(2).is_ok(), "{loss:?}");
            assert!(loss.evaluate(&[1.0f64; 3]).is_nan(), "{loss:?}");
            let mut out = [0.0; 3];
            assert!(loss.value_and_gradient(&[1.0; 3], &mut out).is_nan(), "{loss:?}");
            assert!(out.iter().all(|x| x.is_nan()), "{loss:?}");
        }
        let mut short = [0.0; 1];
        assert!(Loss::Sum.value_and_gradient(&[1.0; 2], &mut short).is_nan());
    }
}
