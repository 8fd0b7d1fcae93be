//! Gradients of a loss through a solve: [`gradient`] and the [`SensAlg`] choices.
//!
//! | sensealg | how | cost | memory | notes |
//! |---|---|---|---|---|
//! | `ForwardAd` | the explicit solver run on dual numbers, parameters and initial state seeded | about `(n_p + n_u) / 8` solves on 8-wide duals | one solve | exact derivative of the *adaptive* discrete solution; the error norm counts the derivative parts, so the step sequence also controls the derivatives' error. Best when `n_p + n_u` is small |
//! | `ForwardAdValueNorm` | as above, but the error norm counts values only | same | same | kept to show why this is wrong: steps ignore the derivatives' error, and gradients are inaccurate at ordinary tolerances |
//! | `Discrete(vjp)` | reverse mode through the accepted steps of an explicit solve (see [`discrete`](self#discrete-adjoint)) | one solve plus, per step, one replay of the stages and one VJP per stage | one state per step | exact gradient of the discrete solution with the steps held fixed; cost independent of `n_p`: the method for neural ODEs |
//! | `Interpolating(vjp)` | the adjoint ODE `lambda' = -J^T lambda`, `mu' = -f_p^T lambda` solved backwards, `u(t)` from the forward dense output, `lambda` jumping by `dg/du` at save times | one forward solve plus one backward solve of `n + n_p` states, one VJP per stage | the dense output of the forward solve | gradient of the continuous solution (accurate to the tolerances); stiff forward methods get a Rodas5P adjoint solve with an AD Jacobian |
//! | `Auto` | for explicit methods `ForwardAd` when `n_p + n_u <= 8` (one dual chunk), else `Discrete`; for stiff methods `Interpolating`; VJPs the model's own when it has one, else forward mode | | | never a backsolve adjoint |
//!
//! The VJPs the adjoints need come from [`VjpMethod`]: the model's own, forward-mode AD,
//! or finite differences.
//!
//! Still to come: forward sensitivities (augmented system), the backsolve, checkpointed and
//! quadrature adjoints, and the tape-based VJPs.
//!
//! Losses are functions of the saved points (see [`Loss`]): with `SaveAt::Times` these are
//! the data times, including `t0` when it is listed.
//!
//! # Discrete adjoint
//! The forward solve records each accepted step; the reverse sweep replays each step's
//! stages from its start state and pulls the adjoint back through them, last stage first.
//! Saved points inside a step are pulled back through the method's dense output.

mod discrete;
mod forward_ad;
mod interpolating;
mod loss;

pub use crate::ad::VjpMethod;
pub use loss::Loss;

use crate::error::{DiffsimError, Result};
use crate::{Algorithm, ErrorNorm, Model, Problem, RetCode, Scalar, Solution, SolveOptions, Stats};

/// How the gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensAlg {
    /// Forward-mode AD through the solver with a partial-aware error norm.
    ForwardAd,
    /// Forward-mode AD through the solver with a values-only error norm (for demonstration).
    ForwardAdValueNorm,
    /// Discrete adjoint: reverse mode through the explicit solver's accepted steps.
    Discrete(VjpMethod),
    /// Continuous adjoint solved backwards with `u(t)` from the forward dense output.
    Interpolating(VjpMethod),
    /// A documented heuristic (see the module docs); never a backsolve adjoint.
    Auto,
}

impl SensAlg {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            SensAlg::ForwardAd => "forward-ad",
            SensAlg::ForwardAdValueNorm => "forward-ad-value-norm",
            SensAlg::Discrete(_) => "discrete",
            SensAlg::Interpolating(_) => "interpolating",
            SensAlg::Auto => "auto",
        }
    }

    /// The VJP method, for the adjoint methods.
    pub fn vjp(self) -> Option<VjpMethod> {
        match self {
            SensAlg::Discrete(v) | SensAlg::Interpolating(v) => Some(v),
            _ => None,
        }
    }

    /// What `Auto` becomes for `problem` (other choices are returned unchanged).
    pub fn resolve<M: Model>(self, problem: &Problem<M>, alg: Algorithm) -> SensAlg {
        match self {
            SensAlg::Auto if !alg.is_stiff() && problem.p.len() + problem.u0.len() <= 8 => SensAlg::ForwardAd,
            SensAlg::Auto if alg.is_stiff() => SensAlg::Interpolating(VjpMethod::Auto),
            SensAlg::Auto => SensAlg::Discrete(VjpMethod::Auto),
            other => other,
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
/// let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::ForwardAd).unwrap();
/// assert_eq!((g.dp.len(), g.du0.len()), (4, 2));
/// ```
pub fn gradient<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &Loss,
    sensealg: SensAlg,
) -> Result<Gradient> {
    discrete::check_saveat(opts)?;
    match sensealg.resolve(problem, alg) {
        SensAlg::ForwardAd => forward_ad::forward_ad(problem, alg, &opts.clone().error_norm(ErrorNorm::AllParts), loss),
        SensAlg::ForwardAdValueNorm => {
            forward_ad::forward_ad(problem, alg, &opts.clone().error_norm(ErrorNorm::ValuesOnly), loss)
        }
        SensAlg::Discrete(vjp) => discrete::discrete_adjoint(problem, alg, opts, loss, vjp),
        SensAlg::Interpolating(vjp) => interpolating::interpolating_adjoint(problem, alg, opts, loss, vjp),
        SensAlg::Auto => unreachable!("resolved above"),
    }
}

/// A gradient of a partial solution would silently describe another loss.
pub(crate) fn require_success<T: Scalar>(sol: &Solution<T>) -> Result<()> {
    if sol.retcode == RetCode::Success {
        return Ok(());
    }
    Err(DiffsimError::InvalidOption {
        name: "problem",
        why: format!(
            "the solve ended with {} at t = {}; no gradient of a partial solution",
            sol.retcode.as_str(),
            sol.t_reached
        ),
    })
}
