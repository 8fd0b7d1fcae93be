//! Gradients of a loss through a solve: [`gradient`] and the [`SensAlg`] choices.
//!
//! Implemented so far:
//!
//! | sensealg | how | cost | memory | notes |
//! |---|---|---|---|---|
//! | `ForwardAd` | the explicit solver run on dual numbers, parameters and initial state seeded | about `(n_p + n_u) / 8` solves on 8-wide duals | one solve | exact derivative of the *adaptive* discrete solution; the error norm counts the derivative parts, so the step sequence also controls the derivatives' error |
//! | `ForwardAdValueNorm` | as above, but the error norm counts values only | same | same | kept to show why this is wrong: steps ignore the derivatives' error, and gradients are inaccurate at ordinary tolerances |
//!
//! The adjoint methods (backsolve, interpolating, checkpointed, quadrature, discrete) and
//! forward sensitivities are the next increments of this module.
//!
//! Losses are sums over the saved points (see [`Loss`]): with `SaveAt::Times` these are the
//! data times, including `t0` when it is listed.

use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::{solve_explicit, Algorithm, ErrorNorm, Model, Problem, RetCode, SaveAt, Scalar, SolveOptions, Stats};

/// Width of the dual numbers: parameters and initial states are differentiated in chunks.
const CHUNK: usize = 8;

/// The loss: a function of every saved value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The sum of every saved value (all states, all saved times).
    Sum,
    /// Half the sum of the squares of every saved value.
    SumSq,
}

impl Loss {
    /// Evaluate on saved values of any number type.
    pub fn evaluate<T: Scalar>(self, values: &[T]) -> T {
        let mut acc = T::zero();
        for &v in values {
            acc += match self {
                Loss::Sum => v,
                Loss::SumSq => (v * v).scale(0.5),
            };
        }
        acc
    }
}

/// How the gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensAlg {
    /// Forward-mode AD through the solver with a partial-aware error norm.
    ForwardAd,
    /// Forward-mode AD through the solver with a values-only error norm (for demonstration).
    ForwardAdValueNorm,
}

impl SensAlg {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            SensAlg::ForwardAd => "forward-ad",
            SensAlg::ForwardAdValueNorm => "forward-ad-value-norm",
        }
    }
}

/// A loss and its gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// The loss.
    pub loss: f64,
    /// dL/dp.
    pub dp: Vec<f64>,
    /// dL/du0.
    pub du0: Vec<f64>,
    /// Work of all the solves it took.
    pub stats: Stats,
}

/// The loss of the solution saved as `opts` asks, and its gradient with respect to the
/// parameters and the initial state.
///
/// A solve that does not reach the end of the span is an error here (a gradient of a
/// partial solution would silently describe another loss).
///
/// ```
/// use diffsim::sensitivity::{gradient, Loss, SensAlg};
/// use diffsim::{models::LotkaVolterra, Algorithm, Problem, SolveOptions};
/// let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
/// let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![0.5, 1.0]);
/// let g = gradient(&prob, Algorithm::Tsit5, &opts, Loss::Sum, SensAlg::ForwardAd).unwrap();
/// assert_eq!((g.dp.len(), g.du0.len()), (4, 2));
/// ```
pub fn gradient<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: Loss,
    sensealg: SensAlg,
) -> Result<Gradient> {
    if matches!(opts.saveat, SaveAt::EveryStep) {
        return Err(DiffsimError::InvalidOption {
            name: "saveat",
            why: "a loss needs fixed save times (the steps depend on the parameters); pass saveat times".into(),
        });
    }
    let norm = match sensealg {
        SensAlg::ForwardAd => ErrorNorm::AllParts,
        SensAlg::ForwardAdValueNorm => ErrorNorm::ValuesOnly,
    };
    forward_ad(problem, alg, &opts.clone().error_norm(norm), loss)
}

/// Forward-mode AD through an explicit solver, `CHUNK` directions per solve.
fn forward_ad<M: Model>(problem: &Problem<M>, alg: Algorithm, opts: &SolveOptions, loss: Loss) -> Result<Gradient> {
    if alg.is_stiff() || alg == Algorithm::Auto {
        return Err(DiffsimError::Unsupported {
            alg: alg.name(),
            why: "forward AD runs the explicit methods on dual numbers; use tsit5, dp5, vern7 or bs3".into(),
        });
    }
    let (np, n) = (problem.p.len(), problem.u0.len());
    let total = np + n;
    let mut grad = vec![0.0; total];
    let mut value = 0.0;
    let mut stats = Stats::default();
    for start in (0..total).step_by(CHUNK) {
        // Direction d of this chunk seeds input start + d (parameters first, then u0).
        let seed = |x: f64, index: usize| {
            if index >= start && index < start + CHUNK {
                Dual::<CHUNK>::variable(x, index - start)
            } else {
                Dual::constant(x)
            }
        };
        let p: Vec<Dual<CHUNK>> = problem.p.iter().enumerate().map(|(i, &x)| seed(x, i)).collect();
        let u0: Vec<Dual<CHUNK>> = problem.u0.iter().enumerate().map(|(i, &x)| seed(x, np + i)).collect();
        let sol = solve_explicit(&problem.model, &u0, &p, problem.tspan, alg, opts, None)?;
        if sol.retcode != RetCode::Success {
            return Err(DiffsimError::InvalidOption {
                name: "problem",
                why: format!(
                    "the solve ended with {} at t = {}; no gradient of a partial solution",
                    sol.retcode.as_str(),
                    sol.t_reached
                ),
            });
        }
        stats += sol.stats;
        let l = loss.evaluate(&sol.u_flat);
        value = l.v;
        let width = CHUNK.min(total - start);
        grad[start..start + width].copy_from_slice(&l.d[..width]);
    }
    Ok(Gradient { loss: value, dp: grad[..np].to_vec(), du0: grad[np..].to_vec(), stats })
}
