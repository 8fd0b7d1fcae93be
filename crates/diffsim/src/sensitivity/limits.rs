//! What a gradient cannot see, found before it is computed, and said in its result.
//!
//! Before a gradient runs, the model's right-hand side is recorded once at the problem's
//! start (see [`crate::ad::Branching`]): comparisons and kinks that depend on the state, and
//! comparisons of time with the parameters. They decide what `SensAlg::Auto` may pick and
//! which [`GradientWarning`]s the result carries. A branch that is not taken at the start
//! can hide inside another branch; the probe sees what one evaluation sees.

use crate::ad::{Branching, RhsTape, TapeMode};
use crate::problem::Model;
use std::fmt;

/// A limit of the gradient that was computed, reported with it (never silently).
#[derive(Clone, Debug, PartialEq)]
pub enum GradientWarning {
    /// The model compares or kinks on its state (`if u > 0`, `max(u, 0)`). Where `f` jumps
    /// there (a relay), the true gradient has a switching-time term that no method here
    /// computes until events exist; where only `df/du` jumps (a kink), forward methods and
    /// continuous adjoints are right to the tolerances.
    StateDependentSwitch,
    /// As above, and the discrete adjoint was asked for: its steps' error control does not
    /// see the sensitivities' error at a kink, so its gradient can be off well above the
    /// tolerances (use `interpolating`, `forward` or `forward-ad` there).
    DiscreteAcrossStateSwitch,
    /// The model compares time with a parameter (`t <= p[4]`) but does not list that time
    /// among its tstops (`Model::tstops(p)`): the derivative with respect to the switch
    /// time is missing. List it there and an adjoint adds the switch's term.
    UndeclaredParameterSwitch,
    /// Over some steps of the forward solve the values barely moved (a rest point), so its
    /// error control did not check those steps for the sensitivities, and the discrete
    /// adjoint through Rosenbrock steps cannot re-run them with a tangent under control (the
    /// explicit one does): the gradient may be off well above the tolerances. `Auto` then
    /// computes the gradient by the interpolating adjoint instead.
    UncheckedSteps,
    /// A data time lies exactly on a switch that moves with the parameters: the loss has a
    /// kink in the switch time there, and the gradient given is its one-sided derivative
    /// (the switch moving later in the direction of integration).
    DataOnMovingSwitch {
        /// The switch time.
        t: f64,
    },
}

impl fmt::Display for GradientWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradientWarning::StateDependentSwitch => write!(
                f,
                "the model switches on its state: if f jumps there (not only its slope), the gradient misses \
                 the switching-time term (events are not supported yet)"
            ),
            GradientWarning::DiscreteAcrossStateSwitch => write!(
                f,
                "the discrete adjoint through a model that switches on its state can be off well above the \
                 tolerances; use interpolating, forward or forward-ad"
            ),
            GradientWarning::UndeclaredParameterSwitch => write!(
                f,
                "the model compares time with a parameter but lists no tstop that moves with the parameters: \
                 the derivative with respect to that switch time is missing; return it from Model::tstops(p)"
            ),
            GradientWarning::UncheckedSteps => write!(
                f,
                "the values barely moved over some steps (a rest point), so the error control did not check \
                 them for the sensitivities; the discrete adjoint through Rosenbrock steps may be off: use \
                 interpolating"
            ),
            GradientWarning::DataOnMovingSwitch { t } => write!(
                f,
                "a data time lies exactly on the switch at t = {t}, which moves with the parameters: the loss \
                 has a kink there; the gradient is the one-sided derivative for a later switch"
            ),
        }
    }
}

/// The branches of `model`'s right-hand side at `(u, p, t)`.
pub(crate) fn probe<M: Model>(model: &M, u: &[f64], p: &[f64], t: f64) -> Branching {
    let mut tape = RhsTape::new(model, TapeMode::Rerecord);
    // Sizes were checked with the problem; a failure here would only hide what it finds.
    match tape.at(model, u, p, t) {
        Ok(()) => tape.branching().unwrap_or_default(),
        Err(_) => Branching::default(),
    }
}
