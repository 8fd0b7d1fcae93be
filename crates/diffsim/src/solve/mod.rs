//! Solving `M u' = f(u, p, t)`: [`solve`], its [`SolveOptions`], the [`Solution`] with its
//! [`RetCode`] and [`Stats`], and the [`Algorithm`] choices.
//!
//! | algorithm | kind | order | use for |
//! |---|---|---|---|
//! | `Tsit5` (default) | explicit RK, FSAL | 5(4) | non-stiff problems at ordinary tolerances |
//! | `Dp5` | explicit RK, FSAL | 5(4) | the classic Dormand-Prince pair |
//! | `Vern7` | explicit RK | 7(6) | non-stiff problems at tight tolerances (<= 1e-8) |
//! | `Bs3` | explicit RK, FSAL | 3(2) | loose tolerances (>= 1e-3), cheap right-hand sides |
//! | `Rosenbrock23` | Rosenbrock-W | 2(3) | stiff problems at loose tolerances; DAEs |
//! | `Rodas4` | Rosenbrock | 4(3) | stiff problems, index-1 DAEs |
//! | `Rodas5P` | Rosenbrock | 5(4) | stiff problems at ordinary to tight tolerances |
//! | `Bdf` | variable-order NDF/BDF, Newton | 1-5 | large stiff systems, many steps, DAEs |
//! | `Radau5` | Radau IIA, implicit RK, Newton | 5 | stiff problems and DAEs at tight tolerances |
//! | `Radau9` | Radau IIA, 5 stages, Newton | 9 | stiff problems and DAEs at very tight tolerances (1e-9 and below) |
//! | `Auto` | switching | | Tsit5 until stiffness is detected, then the stiff method below (see [`Algorithm::Auto`]) |
//!
//! Which stiff method `Auto` continues with (and takes directly for a mass matrix):
//!
//! | states | rtol | method | why |
//! |---|---|---|---|
//! | 50 or more | any | `Bdf` | its Jacobian and LU serve many steps; a Rosenbrock step needs both afresh |
//! | fewer | <= 1e-9 | `Radau9` | order 9 with a Newton iteration: few, long steps at tight tolerances, where it beats Radau5 at equal rtol |
//! | fewer | > 1e-9, `atol` below `eps max|u|` | `Bdf` | a Rosenbrock step puts the Jacobian's rounding into the solution, where it can break conserved combinations of small states (E5); Newton iterates every component to its own scale |
//! | fewer | > 1e-9 | `Rodas5P` | no Newton iteration to converge: the cheapest steps at loose to medium tolerances |
//!
//! The measurements behind the thresholds are the stiff test-set benchmark's
//! (`bench/peers/README.md`, "Stiff test set").
//!
//! All methods control the step with a PI controller on the RMS norm of the error scaled by
//! `atol + rtol * max(|u_old|, |u_new|)`, pick the first step by Hairer's rule, land exactly
//! on `tstops`, and give a dense output of the method's own interpolant. A model's events
//! ([`crate::Model::events`]) are found on that dense output after every accepted step, the
//! step cut at the first one and the method started again after its jump (see
//! [`crate::event`]; [`Solution::events`] lists them).

mod auto;
mod bdf;
mod complex_lu;
mod controller;
mod dae_init;
mod dense;
mod driver;
mod events;
pub(crate) mod explicit_rk;
mod invariants;
mod linalg;
mod options;
mod radau;
pub(crate) mod rosenbrock;
mod rosenbrock23;
mod solution;
mod sparse_lu;
mod stepper;
mod stiffness;
pub mod tableau;

pub(crate) use dense::DenseOutput;
pub use driver::StepCallback;
pub(crate) use driver::Watch;
pub(crate) use linalg::{factors_by_columns, lu_factor, lu_solve};
pub use options::{ErrorNorm, JacobianMethod, SaveAt, SolveOptions, Tolerance};
pub(crate) use solution::{JumpRecord, StepLog, StepRecord};
pub use solution::{RetCode, Solution, Stats};
use stepper::Plain;
pub(crate) use stepper::StageEval;

use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::scalar::Scalar;
use explicit_rk::{Bs3, Dp5, ExplicitRk, Tsit5, Vern7};

/// The integration method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Tsitouras 5(4), the default non-stiff method.
    #[default]
    Tsit5,
    /// Dormand-Prince 5(4).
    Dp5,
    /// Verner's efficient 7(6), for tight tolerances.
    Vern7,
    /// Bogacki-Shampine 3(2), for loose tolerances.
    Bs3,
    /// Shampine's L-stable Rosenbrock 2(3) (`ode23s`).
    Rosenbrock23,
    /// Hairer-Wanner's Rodas4 (order 4, stiffly accurate).
    Rodas4,
    /// Steinebach's Rodas5P (order 5, stiffly accurate). Like every Rosenbrock method it
    /// uses the Jacobian in the solution itself, so components asked to an absolute
    /// accuracy below the rounding of the largest state (`atol < eps max|u|`) can take on
    /// errors its estimate does not see (on E5, a conserved combination drifts and the end
    /// state is wrong): use `Bdf` or `Radau5` there.
    Rodas5P,
    /// Variable-order (1-5), variable-step BDF in Shampine and Reichelt's NDF form, with a
    /// Newton iteration that keeps its Jacobian and LU across steps: for larger stiff
    /// systems, long spans and index-1 DAEs.
    Bdf,
    /// Radau IIA of order 5 (Hairer and Wanner's RADAU5): three implicit stages solved by a
    /// simplified Newton iteration split into a real and a complex system, for stiff
    /// problems and index-1 DAEs at tight tolerances. Its dense output (the collocation
    /// polynomial) is of order 3 between its long steps: values interpolated between steps,
    /// and the continuous adjoints that read them, are less accurate than the steps' ends
    /// (for gradients at tight tolerances prefer forward sensitivities or Rodas5P).
    Radau5,
    /// Radau IIA of order 9 (five implicit stages; Hairer's RADAU at its middle order):
    /// the same Newton iteration as `Radau5`, split into one real and two complex systems,
    /// for stiff problems and index-1 DAEs at tight tolerances (1e-9 and below), where its
    /// steps are several times longer than Radau5's. Its dense output is the collocation
    /// polynomial, of order 5 between those long steps: values interpolated between steps,
    /// and the continuous adjoints that read them, are less accurate than the steps' ends
    /// (for gradients at tight tolerances prefer forward sensitivities or Rodas5P).
    Radau9,
    /// Tsit5 with Hairer's stiffness test; on sustained stiffness the solve continues
    /// from where it is with the stiff method that suits the problem's size and tolerance
    /// (Rodas5P, Radau9 or Bdf: see the table in the [module docs](self)). Problems with a
    /// mass matrix go to that method directly.
    Auto,
}

impl Algorithm {
    /// Every algorithm, in the order of the CLI's list.
    pub const ALL: [Algorithm; 11] = [
        Algorithm::Tsit5,
        Algorithm::Dp5,
        Algorithm::Vern7,
        Algorithm::Bs3,
        Algorithm::Rosenbrock23,
        Algorithm::Rodas4,
        Algorithm::Rodas5P,
        Algorithm::Bdf,
        Algorithm::Radau5,
        Algorithm::Radau9,
        Algorithm::Auto,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Tsit5 => "tsit5",
            Algorithm::Dp5 => "dp5",
            Algorithm::Vern7 => "vern7",
            Algorithm::Bs3 => "bs3",
            Algorithm::Rosenbrock23 => "rosenbrock23",
            Algorithm::Rodas4 => "rodas4",
            Algorithm::Rodas5P => "rodas5p",
            Algorithm::Bdf => "bdf",
            Algorithm::Radau5 => "radau5",
            Algorithm::Radau9 => "radau9",
            Algorithm::Auto => "auto",
        }
    }

    /// True for the methods that handle stiff problems (and mass matrices).
    pub fn is_stiff(self) -> bool {
        matches!(
            self,
            Algorithm::Rosenbrock23
                | Algorithm::Rodas4
                | Algorithm::Rodas5P
                | Algorithm::Bdf
                | Algorithm::Radau5
                | Algorithm::Radau9
        )
    }
}

impl std::str::FromStr for Algorithm {
    type Err = DiffsimError;
    fn from_str(s: &str) -> Result<Self> {
        let l = s.to_ascii_lowercase();
        Algorithm::ALL.into_iter().find(|a| a.name() == l).ok_or_else(|| DiffsimError::Unknown {
            kind: "algorithm",
            name: s.to_string(),
            choices: Algorithm::ALL.map(|a| a.name()).join(", "),
        })
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Solve a problem.
///
/// Bad input is an `Err`; a solve that could not finish is an `Ok` whose
/// [`Solution::retcode`] says why, holding everything computed up to that point.
///
/// ```
/// use diffsim::{models::LotkaVolterra, solve, Algorithm, Problem, SolveOptions};
/// let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0)).unwrap();
/// let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().rtol(1e-8).atol(1e-8)).unwrap();
/// assert!(sol.retcode().is_success());
/// let mid = sol.interpolate(5.0).unwrap(); // dense output
/// assert_eq!(mid.len(), 2);
/// ```
pub fn solve<M: Model>(problem: &Problem<M>, alg: Algorithm, opts: &SolveOptions) -> Result<Solution<f64>> {
    solve_with_callback(problem, alg, opts, None)
}

/// [`solve`] with a callback after every accepted step (return `false` to stop).
pub fn solve_with_callback<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    callback: Option<StepCallback<'_, f64>>,
) -> Result<Solution<f64>> {
    solve_parts(&problem.model, &problem.u0, &problem.p, problem.tspan, alg, opts, callback)
}

/// [`solve_with_callback`] on a model, initial state, parameters and span given apart: for
/// the library's own solves of a user's model at other inputs (a `Problem<&M>` would compile
/// every solver again for the reference type).
pub(crate) fn solve_parts<M: Model>(
    m: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    callback: Option<StepCallback<'_, f64>>,
) -> Result<Solution<f64>> {
    if !alg.is_stiff() && alg != Algorithm::Auto {
        no_mass_matrix(m, alg)?;
        return solve_explicit(m, u0, p, tspan, alg, opts, callback);
    }
    // A DAE starts from algebraic states that satisfy its constraints.
    opts.validate(tspan)?;
    let (start, init) = dae_init::consistent_start(m, u0, p, tspan, opts)?;
    let u0 = start.as_deref().unwrap_or(u0);
    let cb = Watch::callback(callback);
    macro_rules! integrate {
        ($stepper:expr) => {{
            let mut s = $stepper;
            driver::integrate(m, u0, p, tspan, opts, &mut s, alg, cb, false)
        }};
    }
    let mut sol = match alg {
        Algorithm::Rosenbrock23 => integrate!(rosenbrock23::Rosenbrock23::new(m, opts.jacobian)),
        Algorithm::Rodas4 => solve_rosenbrock::<M, rosenbrock::Rodas4>(m, u0, p, tspan, alg, opts, cb),
        Algorithm::Rodas5P => solve_rosenbrock::<M, rosenbrock::Rodas5P>(m, u0, p, tspan, alg, opts, cb),
        Algorithm::Bdf => integrate!(bdf::Bdf::new(m, opts.jacobian)),
        Algorithm::Radau5 => integrate!(radau::RadauIIA::<3>::new(m, opts.jacobian)),
        Algorithm::Radau9 => integrate!(radau::RadauIIA::<5>::new(m, opts.jacobian)),
        _ => auto::solve_auto(m, u0, p, tspan, opts, cb),
    }?;
    sol.stats += init;
    Ok(sol)
}

/// A solve by the Rodas method `R` handing over, besides the solution, the log of its
/// accepted steps with the start state of every `every`-th one: what the stiff discrete
/// adjoint replays. (The explicit methods' is [`solve_explicit_logged`].)
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve_rodas_logged<M: Model, R: rosenbrock::RosenbrockMethod>(
    m: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    every: usize,
) -> Result<(Solution<f64>, StepLog<f64>)> {
    let mut log = StepLog::new(every);
    let sol = solve_rosenbrock::<M, R>(m, u0, p, tspan, alg, opts, Watch::log(&mut log))?;
    Ok((sol, log))
}

/// The explicit methods cannot solve a model with a mass matrix (a DAE): say which can.
fn no_mass_matrix<M: Model>(m: &M, alg: Algorithm) -> Result<()> {
    if m.mass_matrix().is_some() {
        return Err(DiffsimError::Unsupported {
            alg: alg.name(),
            why: "the model has a mass matrix; use rodas5p, rodas4 or rosenbrock23".into(),
        });
    }
    Ok(())
}

/// [`solve`] for the library's internal systems (adjoints, sensitivity-augmented models):
/// only the steppers for any size are instantiated, not those specialised to 1-4 states.
/// These systems are rarely tiny, and every specialisation is compiled once per model
/// type: for four internal systems per model this kept test builds several times longer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve_unsized<M: Model>(
    m: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    callback: Option<StepCallback<'_, f64>>,
) -> Result<Solution<f64>> {
    solve_watched(m, u0, p, tspan, alg, opts, Watch::callback(callback))
}

/// [`solve_unsized`] with what watches its steps.
pub(crate) fn solve_watched<M: Model>(
    m: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    watch: Watch<'_, f64>,
) -> Result<Solution<f64>> {
    macro_rules! go {
        ($stepper:expr) => {{
            let mut s = $stepper;
            driver::integrate(m, u0, p, tspan, opts, &mut s, alg, watch, false)
        }};
    }
    match alg {
        Algorithm::Rosenbrock23 => go!(rosenbrock23::Rosenbrock23::new(m, opts.jacobian)),
        Algorithm::Rodas4 => go!(rosenbrock::Rosenbrock::<rosenbrock::Rodas4, 0>::new(m, opts.jacobian)),
        Algorithm::Rodas5P => go!(rosenbrock::Rosenbrock::<rosenbrock::Rodas5P, 0>::new(m, opts.jacobian)),
        Algorithm::Bdf => go!(bdf::Bdf::new(m, opts.jacobian)),
        Algorithm::Radau5 => go!(radau::RadauIIA::<3>::new(m, opts.jacobian)),
        Algorithm::Radau9 => go!(radau::RadauIIA::<5>::new(m, opts.jacobian)),
        Algorithm::Auto => auto::solve_auto(m, u0, p, tspan, opts, watch),
        _ => {
            no_mass_matrix(m, alg)?;
            Ok(explicit_sized::<f64, M, Plain, false>(m, u0, p, tspan, alg, opts, watch, Plain)?.0)
        }
    }
}

/// The stepper size a model of type `M` with `n` states gets: its [`Model::STATES`] when it
/// states one, else `n` (chosen at run time). Size 0 means any size.
pub(crate) const fn fixed_states<M: Model>() -> usize {
    match M::STATES {
        Some(n) => n,
        None => 0,
    }
}

/// Run `$go!(SIZE)` for a model of type `$m` with `$n` states: sizes 1-4 get steppers
/// specialised to them (component loops unroll), others the stepper for any size (0).
/// A model type that states its size ([`Model::STATES`]) compiles only its own: the match
/// is on a constant, and the arms it cannot take are never instantiated.
macro_rules! by_size {
    ($m:ty, $n:expr, $go:ident) => {
        match const { $crate::solve::fixed_states::<$m>() } {
            0 => match $n {
                1 => $go!(1),
                2 => $go!(2),
                3 => $go!(3),
                4 => $go!(4),
                _ => $go!(0),
            },
            1 => $go!(1),
            2 => $go!(2),
            3 => $go!(3),
            4 => $go!(4),
            _ => $go!(0),
        }
    };
}
pub(crate) use by_size;

/// [`solve`] with Rodas5P only: for tests of a model type that need no other method (the
/// whole `solve` compiles every method for it).
#[cfg(test)]
pub(crate) fn solve_rodas5p<M: Model>(problem: &Problem<M>, opts: &SolveOptions) -> Result<Solution<f64>> {
    let (m, u0, p, tspan) = (&problem.model, &problem.u0[..], &problem.p[..], problem.tspan);
    solve_rosenbrock::<M, rosenbrock::Rodas5P>(m, u0, p, tspan, Algorithm::Rodas5P, opts, Watch::callback(None))
}

/// A Rodas-family solve with a stepper specialised to small sizes.
fn solve_rosenbrock<M: Model, R: rosenbrock::RosenbrockMethod>(
    model: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    watch: Watch<'_, f64>,
) -> Result<Solution<f64>> {
    macro_rules! go {
        ($size:literal) => {{
            let mut s = rosenbrock::Rosenbrock::<R, $size>::new(model, opts.jacobian);
            driver::integrate(model, u0, p, tspan, opts, &mut s, alg, watch, false)
        }};
    }
    by_size!(M, model.n_states(), go)
}

/// Solve with an explicit method on any number type (for example dual numbers, to
/// differentiate through the solver). `alg` must be an explicit method.
pub fn solve_explicit<T: Scalar, M: Model>(
    model: &M,
    u0: &[T],
    p: &[T],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    callback: Option<StepCallback<'_, T>>,
) -> Result<Solution<T>> {
    Ok(explicit_sized::<T, M, Plain, true>(model, u0, p, tspan, alg, opts, Watch::callback(callback), Plain)?.0)
}

/// [`solve_explicit`] with only the stepper for any size, and the log of its accepted steps
/// (see [`solve_rodas_logged`]): for the library's occasional solves on other number types (see
/// [`solve_unsized`]).
pub(crate) fn solve_explicit_logged_unsized<T: Scalar, M: Model>(
    model: &M,
    u0: &[T],
    p: &[T],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    every: usize,
) -> Result<(Solution<T>, StepLog<T>)> {
    let mut log = StepLog::new(every);
    let (sol, Plain) =
        explicit_sized::<T, M, Plain, false>(model, u0, p, tspan, alg, opts, Watch::log(&mut log), Plain)?;
    Ok((sol, log))
}

/// [`solve_explicit`] in `f64` with the log of its accepted steps (see [`solve_rodas_logged`])
/// and its stages evaluated through `eval` (handed back with the solution).
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve_explicit_logged<M: Model, E: StageEval<f64, M>>(
    model: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    every: usize,
    eval: E,
) -> Result<(Solution<f64>, StepLog<f64>, E)> {
    no_mass_matrix(model, alg)?;
    let mut log = StepLog::new(every);
    let (sol, eval) = explicit_sized::<f64, M, E, true>(model, u0, p, tspan, alg, opts, Watch::log(&mut log), eval)?;
    Ok((sol, log, eval))
}

/// The explicit solve, with steppers specialised to small sizes when `SIZED` and stages
/// evaluated by `eval` (handed back with the solution).
#[allow(clippy::too_many_arguments)]
fn explicit_sized<T: Scalar, M: Model, E: StageEval<T, M>, const SIZED: bool>(
    model: &M,
    u0: &[T],
    p: &[T],
    tspan: (f64, f64),
    alg: Algorithm,
    opts: &SolveOptions,
    watch: Watch<'_, T>,
    eval: E,
) -> Result<(Solution<T>, E)> {
    let n = model.n_states();
    // Small systems (the common case) get steppers specialised to their size.
    macro_rules! run {
        ($m:ty) => {{
            macro_rules! go {
                ($size:literal) => {{
                    let mut s = ExplicitRk::<T, $m, $size>::new(n).with_eval(eval);
                    let sol = driver::integrate(model, u0, p, tspan, opts, &mut s, alg, watch, false)?;
                    Ok((sol, s.into_eval()))
                }};
            }
            if SIZED {
                by_size!(M, n, go)
            } else {
                go!(0)
            }
        }};
    }
    match alg {
        Algorithm::Tsit5 => run!(Tsit5),
        Algorithm::Dp5 => run!(Dp5),
        Algorithm::Vern7 => run!(Vern7),
        Algorithm::Bs3 => run!(Bs3),
        _ => Err(DiffsimError::Unsupported {
            alg: alg.name(),
            why: "solve_explicit takes tsit5, dp5, vern7 or bs3; use solve() for the stiff methods".into(),
        }),
    }
}
