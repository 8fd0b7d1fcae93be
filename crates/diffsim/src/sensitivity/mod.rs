//! Gradients of a loss through a solve: [`gradient`] and the [`SensAlg`] choices.
//!
//! | sensealg | how | cost | memory | stiff | notes |
//! |---|---|---|---|---|---|
//! | `Forward` | the model augmented with `S = du/d(p, u0)`: `S' = J S + f_p`, one error control | one solve of `n (1 + n_p + n)` states; each right-hand side `(n_p + n) / 8` dual evaluations | one augmented state | yes (augmented Jacobian: `J` by AD, `dS'/du` by differences) | exact in the limit of tolerance; best for few inputs, any method |
//! | `ForwardAd` | the explicit solver run on dual numbers, parameters and initial state seeded | about `(n_p + n) / 8` solves on 8-wide duals | one solve | no | exact derivative of the *adaptive* discrete solution; the error norm counts the derivative parts, so the step sequence also controls the derivatives' error |
//! | `ForwardAdValueNorm` | as above, error norm on values only | same | same | no | kept to show why this is wrong: steps ignore the derivatives' error, and gradients are inaccurate at ordinary tolerances |
//! | `Discrete(vjp)` | reverse mode through the accepted steps of the solve (see [`discrete`](self#discrete-adjoint)) | explicit: one solve plus one VJP per stage and step; Rodas4/Rodas5P: each step re-taken, then a transposed `W` solve and three VJPs per stage | explicit: one state and the stage derivatives per step; Rodas: one state per step | yes (Rodas4, Rodas5P) | exact gradient of the discrete solution with the steps held fixed (through Rodas, the `J(u, p)` term by central differences of VJPs); cost independent of `n_p`: the method for neural ODEs |
//! | `DiscreteCheckpointing(vjp)` | the discrete adjoint re-running each segment of [`STEPS_PER_CHECKPOINT`] steps from its checkpoint before crossing it | about one forward solve more than `Discrete` (explicit: no error control in the re-run) | one state per checkpoint plus one segment's stages | yes (Rodas4, Rodas5P) | the same gradient as `Discrete`, for long solves |
//! | `Interpolating(vjp)` | the adjoint ODE `lambda' = -J^T lambda`, `mu' = -f_p^T lambda` solved backwards, `u(t)` from the forward dense output | one forward solve plus one backward solve of `n + n_p` states, one VJP per stage | the whole dense output (about 8 states per step) | yes (Rodas5P adjoint, Jacobian by AD) | gradient of the continuous solution, accurate to the tolerances |
//! | `Checkpointing(vjp)` | interpolating, with a state kept every [`STEPS_PER_CHECKPOINT`] steps and each interval re-solved before the adjoint crosses it | about one forward solve more than `Interpolating` | one state per checkpoint plus one interval's dense output | yes | the choice for long solves |
//! | `Quadrature(vjp)` | `lambda` alone solved backwards with dense output; `dL/dp` by Gauss-Legendre quadrature of `f_p^T lambda` on every adjoint step | as interpolating, plus 3 (Vern7: 4) VJPs per adjoint step; the adjoint has `n` states, not `n + n_p` | both dense outputs | yes, and its stiff linear algebra is `n x n` | many parameters with a stiff model |
//! | `Backsolve(vjp)` | `u` solved backwards together with `lambda` and `mu` from `u(t1)` | one forward solve plus one backward solve of `2 n + n_p` states | one state | **unstable** | backwards in time decaying modes grow: wrong on stiff and dissipative problems (see the tests); for non-dissipative problems only |
//! | `Auto` | for `Algorithm::Auto` (which may switch method mid-solve) `Interpolating`; for Rodas4/Rodas5P `Discrete` from [`AUTO_STIFF_DISCRETE_FROM`] states on, else `Interpolating`; for other stiff choices `Interpolating`; for explicit methods `ForwardAd` when `n_p + n <= 8` (one dual chunk) and no tstop moves with the parameters, else `Discrete`; with events and `n_p + n <= 8`, `Forward` for stiff and switching solvers. Never the discrete adjoint for a model that branches or kinks on its state (it then takes `Interpolating`) | | | | never backsolve |
//!
//! The VJPs the adjoints need come from [`VjpMethod`]: the model's own, forward-mode AD
//! (cheapest for a handful of inputs), a reverse-mode tape recorded per call, a compiled
//! tape recorded once and replayed (with guards on the model's branches; the default above
//! 16 inputs), or finite differences. Mass-matrix models (DAEs) have no gradient method yet.
//!
//! # Switches, kinks and what a gradient reports
//! - **Switches in time declared as tstops** (`Model::tstops`): every solve lands on them,
//!   the step after one starts from the right-hand limit of `f` and the step before one
//!   evaluates its last stages on its own side (see [`crate::Solution`]'s dense output: it
//!   never interpolates across one); the backward solves land and restart on them too.
//! - **A switch time that moves with the parameters** (a tstop computed from `p`): the
//!   adjoints add its term `(dtau/dp) lambda^T (f_before - f_after)` where they cross it;
//!   forward methods refuse such models with an error.
//! - **Switches in time not declared**: the solvers' error control finds them; the
//!   continuous adjoints control `dL/dp` as well as `lambda` (and the quadrature adjoint
//!   its quadrature error), so they resolve them too.
//! - **Switches and kinks in the state** (`if u > 0`, `max(u, c)`): the model is recorded
//!   once before the gradient (see [`crate::ad::Branching`]); the result carries a
//!   [`GradientWarning`], `Auto` avoids the discrete adjoint (its steps do not control the
//!   sensitivities' error at a kink), and a switch where `f` itself jumps (a relay) misses
//!   its switching-time term: write it as an event.
//! - **Events** ([`crate::event`]): every method differentiates through them, the event
//!   time's own dependence on the inputs included (its saltation,
//!   `sensitivity/event_jump.rs`). The forward methods jump the sensitivities at each
//!   event; the adjoints carry `lambda` back across each jump by the saltation's transpose
//!   (the discrete ones between the logged steps, the continuous ones between backward
//!   segments, each of which stays on one side of the jump). A save at an event time holds
//!   the state before the jump; with `save_events` the second save there holds the state
//!   after it, and its `dL/du` enters after the jump, as the solve saw it. `Auto` takes a
//!   forward method for a model with events and at most 8 inputs, and the usual choice
//!   above that.
//! - **Rest points**: where the values do not move, value-only error control lets steps
//!   grow unchecked while the sensitivities still evolve; the explicit discrete adjoint then
//!   re-runs its forward solve with one tangent under error control (forward-mode AD counts
//!   every derivative part already).
//! - Finite-difference VJPs are refused for stiff solves.
//!
//! To check a gradient on your own model: [`gradient_check`] (`diffsim grad --check`).
//!
//! Losses are functions of the saved points (any [`SavedLoss`]; the common ones are
//! [`Loss`]): with `SaveAt::Times` these are the data times, including `t0` when it is
//! listed. A loss may add an integral over time, `integral g(u, p, t) dt`: see
//! [`SavedLoss::plus_running_cost`] and [`RunningCost`].
//!
//! # Discrete adjoint
//! The forward solve records each accepted step; the reverse sweep rebuilds each step's
//! stages from its start state and pulls the adjoint back through them, last stage first.
//! Saved points inside a step are pulled back through the method's dense output. Explicit
//! methods keep their stage derivatives from the forward solve; Rosenbrock steps are re-taken
//! (their Jacobian and `W` again) and pulled back through `W^T` solves, with the dependence
//! of `J` on `u` and `p` included, so the stiff discrete adjoint is also the gradient of
//! the discrete solution.
//!
//! Through explicit methods, with the model's own VJP, the sweep calls the VJP at exactly
//! the points the forward solve evaluated `f` at. A model that keeps records of its
//! evaluations ([`crate::capabilities::RecordedVjp`]; the UDE model keeps its network's forward pass)
//! has them filed by the exact bits of `(t, u)` during the forward solve, and each VJP starts
//! from its record instead of repeating that work.

mod adjoint;
#[cfg(test)]
mod capability_tests;
mod check;
#[cfg(test)]
mod discontinuity_tests;
mod discrete;
mod discrete_rosenbrock;
mod event_jump;
mod forward;
mod forward_ad;
mod limits;
mod loss;
mod records;
mod running_cost;
pub mod shadowing;
mod switches;
#[cfg(test)]
pub(crate) mod test_models;

pub use crate::ad::VjpMethod;
pub use adjoint::STEPS_PER_CHECKPOINT;
pub use check::{finite_difference_gradient, gradient_check, GradientCheck};
pub use forward::{forward_sensitivities, forward_sensitivities_wrt, Sensitivities, Wrt};
pub use limits::GradientWarning;
pub use loss::{Loss, SavedLoss};
use running_cost::{augmented_options, CostLoss, WithCost};
pub use running_cost::{RunningCost, WithRunningCost};

use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::scalar::Scalar;
use crate::solve::{Algorithm, ErrorNorm, RetCode, SaveAt, Solution, SolveOptions, Stats};

/// How the gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensAlg {
    /// Forward sensitivities: the system augmented with `du/dp` and `du/du0`, under one
    /// error control.
    Forward,
    /// Forward-mode AD through the solver with a partial-aware error norm.
    ForwardAd,
    /// Forward-mode AD through the solver with a values-only error norm (for demonstration).
    ForwardAdValueNorm,
    /// Discrete adjoint: reverse mode through the solver's accepted steps (explicit
    /// Runge-Kutta, Rodas4, Rodas5P).
    Discrete(VjpMethod),
    /// The discrete adjoint with memory bounded by checkpoints: every
    /// [`STEPS_PER_CHECKPOINT`]-th step's state is kept, and each segment of steps is re-run
    /// from it before the sweep crosses it. The same gradient as `Discrete`.
    DiscreteCheckpointing(VjpMethod),
    /// Continuous adjoint solved backwards with `u(t)` from the forward dense output.
    Interpolating(VjpMethod),
    /// Interpolating adjoint with memory bounded by checkpoints: intervals between stored
    /// states are re-solved forwards as the adjoint reaches them.
    Checkpointing(VjpMethod),
    /// Continuous adjoint of `lambda` alone, `dL/dp` by Gauss-Legendre quadrature per step.
    Quadrature(VjpMethod),
    /// Continuous adjoint with `u` solved backwards alongside; unstable on stiff and
    /// dissipative problems (see the module docs). Never chosen by `Auto`.
    Backsolve(VjpMethod),
    /// A documented heuristic (see the module docs); never a backsolve adjoint.
    Auto,
}

impl SensAlg {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            SensAlg::Forward => "forward",
            SensAlg::ForwardAd => "forward-ad",
            SensAlg::ForwardAdValueNorm => "forward-ad-value-norm",
            SensAlg::Discrete(_) => "discrete",
            SensAlg::DiscreteCheckpointing(_) => "discrete-checkpointing",
            SensAlg::Interpolating(_) => "interpolating",
            SensAlg::Checkpointing(_) => "checkpointing",
            SensAlg::Quadrature(_) => "quadrature",
            SensAlg::Backsolve(_) => "backsolve",
            SensAlg::Auto => "auto",
        }
    }

    /// Every CLI name, in the order the docs list them.
    pub const NAMES: [&'static str; 10] = [
        "forward",
        "forward-ad",
        "forward-ad-value-norm",
        "backsolve",
        "interpolating",
        "checkpointing",
        "quadrature",
        "discrete",
        "discrete-checkpointing",
        "auto",
    ];

    /// The method called `name` (see [`SensAlg::NAMES`]), adjoints using `vjp`.
    ///
    /// ```
    /// use diffsim::sensitivity::{SensAlg, VjpMethod};
    /// assert_eq!(SensAlg::from_name("quadrature", VjpMethod::Forward).unwrap(), SensAlg::Quadrature(VjpMethod::Forward));
    /// assert!(SensAlg::from_name("nope", VjpMethod::Auto).is_err());
    /// ```
    pub fn from_name(name: &str, vjp: VjpMethod) -> Result<SensAlg> {
        Ok(match name {
            "forward" => SensAlg::Forward,
            "forward-ad" => SensAlg::ForwardAd,
            "forward-ad-value-norm" => SensAlg::ForwardAdValueNorm,
            "backsolve" => SensAlg::Backsolve(vjp),
            "interpolating" => SensAlg::Interpolating(vjp),
            "checkpointing" => SensAlg::Checkpointing(vjp),
            "quadrature" => SensAlg::Quadrature(vjp),
            "discrete" => SensAlg::Discrete(vjp),
            "discrete-checkpointing" => SensAlg::DiscreteCheckpointing(vjp),
            "auto" => SensAlg::Auto,
            _ => {
                return Err(DiffsimError::Unknown {
                    kind: "sensealg",
                    name: name.to_string(),
                    choices: Self::NAMES.join(", "),
                })
            }
        })
    }

    /// The VJP method, for the adjoint methods.
    pub fn vjp(self) -> Option<VjpMethod> {
        match self {
            SensAlg::Discrete(v)
            | SensAlg::DiscreteCheckpointing(v)
            | SensAlg::Interpolating(v)
            | SensAlg::Checkpointing(v)
            | SensAlg::Quadrature(v)
            | SensAlg::Backsolve(v) => Some(v),
            _ => None,
        }
    }

    /// What `Auto` becomes for `problem` (other choices are returned unchanged).
    ///
    /// Errors: the model's tstops change in number under a small change of the parameters.
    pub fn resolve<M: Model>(self, problem: &Problem<M>, alg: Algorithm) -> Result<SensAlg> {
        Ok(self.resolve_with(&Facts::of(problem)?, alg))
    }

    fn resolve_with(self, facts: &Facts, alg: Algorithm) -> SensAlg {
        if self != SensAlg::Auto {
            return self;
        }
        // The discrete adjoint is exact for the solver's steps, but at a kink in the state
        // those steps do not control the sensitivities' error; a model seen to switch there
        // gets a continuous adjoint. (One that hides its values from the recording, such as
        // a network with a custom activation given as plain functions, is not assumed to
        // switch: that would cost the neural ODEs their fastest method.)
        let discrete_reliable = !facts.branching.on_state();
        let small = facts.n + facts.np <= 8;
        match alg {
            // Small models with events: forward sensitivities jump with the state at each
            // event (ForwardAd for an explicit solver, the augmented system otherwise); the
            // adjoints below also cross the jumps, and pay for many parameters.
            _ if small && facts.events && facts.moving.is_empty() && (alg.is_stiff() || alg == Algorithm::Auto) => {
                SensAlg::Forward
            }
            _ if small && facts.events && facts.moving.is_empty() => SensAlg::ForwardAd,
            // The switching solver: only the continuous adjoints follow its change of method.
            Algorithm::Auto => SensAlg::Interpolating(VjpMethod::Auto),
            Algorithm::Rodas4 | Algorithm::Rodas5P if facts.n >= AUTO_STIFF_DISCRETE_FROM && discrete_reliable => {
                SensAlg::Discrete(VjpMethod::Auto)
            }
            _ if alg.is_stiff() => SensAlg::Interpolating(VjpMethod::Auto),
            // Forward-mode methods do not differentiate a switch time that moves.
            _ if small && facts.moving.is_empty() => SensAlg::ForwardAd,
            _ if discrete_reliable => SensAlg::Discrete(VjpMethod::Auto),
            _ => SensAlg::Interpolating(VjpMethod::Auto),
        }
    }

    /// Whether this is one of the forward-mode methods.
    fn is_forward(self) -> bool {
        matches!(self, SensAlg::Forward | SensAlg::ForwardAd | SensAlg::ForwardAdValueNorm)
    }
}

/// What the choice of method and the warnings depend on, found once per gradient.
struct Facts {
    n: usize,
    np: usize,
    branching: crate::ad::Branching,
    /// The model's tstops that move with the parameters, in the order of integration.
    moving: Vec<f64>,
    /// The model has events.
    events: bool,
}

impl Facts {
    fn of<M: Model>(problem: &Problem<M>) -> Result<Self> {
        let moving = switches::moving_stops(&problem.model, &problem.p, problem.tspan)?;
        Ok(Facts {
            n: problem.u0.len(),
            np: problem.p.len(),
            branching: limits::probe(&problem.model, &problem.u0, &problem.p, problem.tspan.0),
            moving: moving.iter().map(|s| s.t).collect(),
            events: !problem.model.events().is_empty(),
        })
    }

    /// The warnings a gradient by `sensealg` carries.
    fn warnings(&self, sensealg: SensAlg, save_times: &[f64]) -> Vec<GradientWarning> {
        let mut w = Vec::new();
        if self.branching.on_state() {
            w.push(GradientWarning::StateDependentSwitch);
            if matches!(sensealg, SensAlg::Discrete(_) | SensAlg::DiscreteCheckpointing(_)) {
                w.push(GradientWarning::DiscreteAcrossStateSwitch);
            }
        }
        if self.branching.parameter_time && self.moving.is_empty() {
            w.push(GradientWarning::UndeclaredParameterSwitch);
        }
        for &t in &self.moving {
            if save_times.contains(&t) {
                w.push(GradientWarning::DataOnMovingSwitch { t });
            }
        }
        w
    }
}

/// From this many states on, `Auto` with Rodas4/Rodas5P picks the discrete adjoint: it
/// re-takes the forward steps with the forward solve's (sparse, when the model is) Jacobian
/// and factors, where the continuous adjoints solve an `n + n_p` stiff system backwards with
/// a dense Jacobian, whose cost grows much faster with the size. Below it the choice is a
/// toss-up and `Auto` keeps interpolating (the measurements are in `bench/peers/README.md`,
/// "Measurements behind the library's defaults").
pub const AUTO_STIFF_DISCRETE_FROM: usize = 32;

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
    /// What this gradient cannot see (see [`GradientWarning`]); empty when nothing is known
    /// to be missing.
    pub warnings: Vec<GradientWarning>,
    /// The method that computed it (what `Auto` became).
    pub sensealg: SensAlg,
}

impl Gradient {
    /// A gradient as a method returns it: [`gradient`] then says which method ran and adds
    /// what the gradient cannot see.
    pub(crate) fn computed(loss: f64, dp: Vec<f64>, du0: Vec<f64>, stats: Stats) -> Self {
        Gradient { loss, dp, du0, stats, warnings: Vec::new(), sensealg: SensAlg::Auto }
    }
}

/// The loss of the solution saved as `opts` asks, and its gradient with respect to the
/// parameters and the initial state.
///
/// `loss` is any [`SavedLoss`] (the common ones are [`Loss`]), or one with a running cost
/// added: `loss.plus_running_cost(cost)` differentiates
/// `loss(saved values) + integral_{t0}^{t1} cost(u, p, t) dt`, the integral solved as one
/// more state under the same error control (see [`RunningCost`]); every `sensealg`
/// supports it, and [`Gradient::loss`] is then the total.
///
/// A solve that does not reach the end of the span is an error here (a gradient of a
/// partial solution would silently describe another loss).
///
/// ```
/// use diffsim::sensitivity::{gradient, Loss, RunningCost, SavedLoss, SensAlg};
/// use diffsim::{models::LotkaVolterra, Algorithm, Problem, Scalar, SolveOptions};
/// let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
/// let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![0.5, 1.0]);
/// let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::ForwardAd).unwrap();
/// assert_eq!((g.dp.len(), g.du0.len()), (4, 2));
///
/// /// The integral of the prey population.
/// struct Prey;
/// impl RunningCost for Prey {
///     fn cost<T: Scalar>(&self, u: &[T], _p: &[T], _t: T) -> T {
///         u[0]
///     }
/// }
/// let with_cost = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum.plus_running_cost(Prey), SensAlg::Auto).unwrap();
/// assert!(with_cost.loss > g.loss);
/// ```
pub fn gradient<M: Model, L: Objective>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &L,
    sensealg: SensAlg,
) -> Result<Gradient> {
    loss.gradient_of(problem, alg, opts, sensealg)
}

/// What [`gradient`] differentiates: a [`SavedLoss`], or one with a running cost added
/// ([`WithRunningCost`], made by [`SavedLoss::plus_running_cost`]). Implemented for both;
/// implement [`SavedLoss`] for a loss of your own.
pub trait Objective: sealed::Sealed {
    /// [`gradient`] of this objective.
    fn gradient_of<M: Model>(
        &self,
        problem: &Problem<M>,
        alg: Algorithm,
        opts: &SolveOptions,
        sensealg: SensAlg,
    ) -> Result<Gradient>;
}

mod sealed {
    /// Only this crate's objectives.
    pub trait Sealed {}
    impl<L: super::SavedLoss> Sealed for L {}
    impl<L, C> Sealed for super::WithRunningCost<L, C> {}
}

impl<L: SavedLoss> Objective for L {
    fn gradient_of<M: Model>(
        &self,
        problem: &Problem<M>,
        alg: Algorithm,
        opts: &SolveOptions,
        sensealg: SensAlg,
    ) -> Result<Gradient> {
        let opts = &*opts.end_as_time(problem.tspan.1);
        check_request(problem, opts, self)?;
        dispatch(problem, alg, opts, self, sensealg)
    }
}

impl<L: SavedLoss, C: RunningCost> Objective for WithRunningCost<L, C> {
    fn gradient_of<M: Model>(
        &self,
        problem: &Problem<M>,
        alg: Algorithm,
        opts: &SolveOptions,
        sensealg: SensAlg,
    ) -> Result<Gradient> {
        let opts = &*opts.end_as_time(problem.tspan.1);
        check_request(problem, opts, &self.loss)?;
        let n = problem.u0.len();
        let mut u0 = problem.u0.clone();
        u0.push(0.0);
        let with_cost = WithCost { model: &problem.model, cost: &self.cost };
        let augmented = Problem::new(with_cost, u0, problem.p.clone(), problem.tspan)?;
        let (aug_opts, saves) = augmented_options(opts, problem.tspan.1);
        let loss = CostLoss { inner: &self.loss, n, saves };
        let mut g = dispatch(&augmented, alg, &aug_opts, &loss, sensealg)?;
        g.du0.truncate(n);
        Ok(g)
    }
}

/// What every gradient checks before any solve, in the user's terms: the problem (its
/// public fields may have changed since [`Problem::new`]), fixed save times, and the loss's
/// data against them (save times x states).
fn check_request<M: Model>(problem: &Problem<M>, opts: &SolveOptions, loss: &impl SavedLoss) -> Result<()> {
    problem.validate()?;
    discrete::check_saveat(opts)?;
    if let SaveAt::Times(times) = &opts.saveat {
        loss.check(times.len() * problem.model.n_states())?;
    }
    Ok(())
}

fn dispatch<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    sensealg: SensAlg,
) -> Result<Gradient> {
    let facts = Facts::of(problem)?;
    let mut chosen = sensealg.resolve_with(&facts, alg);
    check_method(&facts, alg, chosen)?;
    let mut g = run(problem, alg, opts, loss, chosen)?;
    if sensealg == SensAlg::Auto && g.warnings.contains(&GradientWarning::UncheckedSteps) {
        // Auto promises a method that is right here: the continuous adjoint controls its
        // own backward steps.
        chosen = SensAlg::Interpolating(VjpMethod::Auto);
        let first = g.stats;
        g = run(problem, alg, opts, loss, chosen)?;
        g.stats += first;
    }
    let saves = match &opts.saveat {
        SaveAt::Times(ts) => ts.as_slice(),
        // (`End` is written out as a time before any gradient.)
        SaveAt::EveryStep | SaveAt::End => &[],
    };
    g.sensealg = chosen;
    let mut warnings = facts.warnings(chosen, saves);
    warnings.append(&mut g.warnings);
    g.warnings = warnings;
    Ok(g)
}

/// Refuse the combinations that would return a wrong gradient.
fn check_method(facts: &Facts, alg: Algorithm, sensealg: SensAlg) -> Result<()> {
    if let (true, Some(&t)) = (sensealg.is_forward(), facts.moving.first()) {
        return Err(switches::moving_refusal(sensealg.name(), t));
    }
    if alg.is_stiff() && sensealg.vjp() == Some(VjpMethod::FiniteDiff) {
        return Err(DiffsimError::Unsupported {
            alg: sensealg.name(),
            why: "finite-difference VJPs are too inaccurate for stiff solves (their error is amplified by the \
                  stiff adjoint: gradients off by factors); use --vjp forward, tape, compiled-tape or auto"
                .into(),
        });
    }
    if let (Some(VjpMethod::FiniteDiff), Some(&t)) = (sensealg.vjp(), facts.moving.first()) {
        return Err(DiffsimError::Unsupported {
            alg: sensealg.name(),
            why: format!(
                "a finite-difference VJP differences f across the switch at t = {t} that moves with p \
                 (the jump term would be off by orders of magnitude); use --vjp forward, tape, compiled-tape or auto"
            ),
        });
    }
    Ok(())
}

fn run<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    sensealg: SensAlg,
) -> Result<Gradient> {
    match sensealg {
        SensAlg::ForwardAd => forward_ad::forward_ad(problem, alg, &opts.clone().error_norm(ErrorNorm::AllParts), loss),
        SensAlg::ForwardAdValueNorm => {
            forward_ad::forward_ad(problem, alg, &opts.clone().error_norm(ErrorNorm::ValuesOnly), loss)
        }
        SensAlg::Discrete(vjp) if alg.is_stiff() => {
            discrete_rosenbrock::rosenbrock_discrete_adjoint(problem, alg, opts, loss, vjp, None)
        }
        SensAlg::DiscreteCheckpointing(vjp) if alg.is_stiff() => {
            discrete_rosenbrock::rosenbrock_discrete_adjoint(problem, alg, opts, loss, vjp, Some(STEPS_PER_CHECKPOINT))
        }
        SensAlg::Discrete(vjp) => discrete::discrete_adjoint(problem, alg, opts, loss, vjp, None),
        SensAlg::DiscreteCheckpointing(vjp) => {
            discrete::discrete_adjoint(problem, alg, opts, loss, vjp, Some(STEPS_PER_CHECKPOINT))
        }
        SensAlg::Interpolating(vjp) => adjoint::interpolating_adjoint(problem, alg, opts, loss, vjp),
        SensAlg::Checkpointing(vjp) => adjoint::checkpointed_adjoint(problem, alg, opts, loss, vjp),
        SensAlg::Quadrature(vjp) => adjoint::quadrature_adjoint(problem, alg, opts, loss, vjp),
        SensAlg::Backsolve(vjp) => adjoint::backsolve_adjoint(problem, alg, opts, loss, vjp),
        SensAlg::Forward => forward::forward_sensitivity(problem, alg, opts, loss),
        SensAlg::Auto => unreachable!("resolved above"),
    }
}

/// A gradient of a partial solution would silently describe another loss.
/// The loss of a successful forward solve's saved values and its gradient with respect to
/// them (laid out like `u_flat`).
pub(crate) fn saved_loss_gradient(sol: &Solution<f64>, loss: &impl SavedLoss) -> Result<(f64, Vec<f64>)> {
    require_success(sol)?;
    loss.check(sol.u_flat.len())?;
    let mut g = vec![0.0; sol.u_flat.len()];
    let value = loss.value_and_gradient(&sol.u_flat, &mut g);
    Ok((value, g))
}

pub(crate) fn require_success<T: Scalar>(sol: &Solution<T>) -> Result<()> {
    if sol.retcode == RetCode::Success {
        return Ok(());
    }
    if sol.retcode == RetCode::EventTerminated {
        return Err(DiffsimError::InvalidOption {
            name: "problem",
            why: format!(
                "a terminating event ended the solve at t = {} (before its save times and the end of the span), and \
                 losses on a solve whose end moves with the parameters are not differentiated yet; end the span \
                 before the event, or make the event's affect change the state instead of ending the solve",
                sol.t_reached
            ),
        });
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
