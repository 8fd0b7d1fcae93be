//! `Algorithm::Auto`: Tsit5 with Hairer's stiffness detection, switching to the stiff method
//! that suits the problem's size and tolerance ([`stiff_choice`]).
//!
//! Tsit5 estimates `h * rho` at every accepted step (`rho` from its last two stages, which
//! share the time `t + h`). After 15 steps limited by stability rather than accuracy (reset
//! by 6 unlimited ones) the solve continues from the current point with the stiff method;
//! the two parts are joined into one solution whose dense output covers the whole span. A
//! switch is one-way: a problem that turns stiff usually stays stiff. Problems with a mass
//! matrix go to the stiff method directly.

use super::driver::{integrate, StepCallback, Watch};
use super::explicit_rk::{ExplicitRk, Tsit5};
use super::options::{SaveAt, SolveOptions};
use super::solution::{JumpRecord, Solution};
use super::{fixed_states, solve_watched, Algorithm};
use crate::error::Result;
use crate::problem::Model;

/// From this many states on, the stiff part is BDF's: its Jacobian and LU last many steps,
/// where a Rosenbrock step pays for both every step.
pub(crate) const AUTO_BDF_FROM_STATES: usize = 50;

/// At or below this relative tolerance (smaller systems), the stiff part is Radau IIA 9's:
/// its order 9 with a Newton iteration takes far longer steps than Rodas5P (which needs a
/// fresh Jacobian and LU every step) and Radau IIA 5. Above it, at equal rtol, Rodas5P is
/// as fast and usually more accurate (Radau, as RADAU, works at a looser internal
/// tolerance). Measurements: bench/peers/README.md, "Which stiff method `Auto` takes".
pub(crate) const AUTO_RADAU_AT_RTOL: f64 = 1e-9;

/// The stiff method `Auto` uses for a model of `n` states solved at `opts`' tolerances from
/// a state `u` (the bench README's stiff test set has the measurements behind the
/// thresholds).
///
/// A Rosenbrock method puts its Jacobian straight into the solution: rounding in `J`
/// (relative `eps`, so absolute `eps |J|`) enters every stage amplified by `gamma h` and
/// mixes components. Linear conservation laws are protected from that (the Rosenbrock
/// steppers find them and take each stage's component along them out, see
/// `solve/invariants.rs`), but other small components are not, while a Newton method
/// iterates each component's residual to its own scale. So when some component asks for an
/// absolute accuracy below the rounding of the largest state (`atol < eps max|u|`), the
/// stiff part is a Newton method even at loose tolerances.
pub(crate) fn stiff_choice(n: usize, opts: &SolveOptions, u: &[f64]) -> Algorithm {
    let largest = u.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    if n >= AUTO_BDF_FROM_STATES {
        Algorithm::Bdf
    } else if opts.rtol.smallest() <= AUTO_RADAU_AT_RTOL {
        Algorithm::Radau9
    } else if opts.atol.smallest() < f64::EPSILON * largest {
        Algorithm::Bdf
    } else {
        Algorithm::Rodas5P
    }
}

pub(crate) fn solve_auto<M: Model>(
    model: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    opts: &SolveOptions,
    watch: Watch<'_, f64>,
) -> Result<Solution<f64>> {
    let Watch { mut callback, events, .. } = watch;
    if model.mass_matrix().is_some() {
        let stiff_alg = stiff_choice(model.n_states(), opts, u0);
        return solve_watched(
            model,
            u0,
            p,
            tspan,
            stiff_alg,
            opts,
            Watch { callback, log: None, resumes: false, events },
        );
    }
    let cb = callback.as_mut().map(|c| &mut **c as StepCallback<'_, f64>);
    // Tsit5 specialised to the size a model type states (the same stepper `solve` compiles
    // for it); for any other model the stepper for any size, so that `Auto` compiles no
    // further specialisations.
    macro_rules! go {
        ($size:literal) => {{
            let mut explicit = ExplicitRk::<f64, Tsit5, $size>::new(model.n_states()).with_stiffness_detection();
            integrate(
                model,
                u0,
                p,
                tspan,
                opts,
                &mut explicit,
                Algorithm::Tsit5,
                Watch { events, ..Watch::callback(cb) },
                true,
            )?
        }};
    }
    let mut first = match const { fixed_states::<M>() } {
        1 => go!(1),
        2 => go!(2),
        3 => go!(3),
        4 => go!(4),
        _ => go!(0),
    };
    if !first.switched || first.t_reached == tspan.1 {
        return Ok(first);
    }
    // Continue stiffly from where Tsit5 stopped, saving what is still to be saved.
    let t_switch = first.t_reached;
    let dir = (tspan.1 - tspan.0).signum();
    let mut rest_opts = opts.clone();
    if let SaveAt::Times(ts) = &opts.saveat {
        rest_opts.saveat = SaveAt::Times(ts.iter().copied().filter(|&t| (t - t_switch) * dir > 0.0).collect());
    }
    rest_opts.dense = Some(first.dense.is_some());
    rest_opts.dt = None;
    let u_switch = first.u_reached.clone();
    // The scale of the states: where the solve started and where it switches.
    let stiff_alg = stiff_choice(model.n_states(), opts, &[u0, &u_switch[..]].concat());
    // The first part fired the events scheduled at the switch (it landed there).
    let resumed = Watch { callback, log: None, resumes: true, events };
    let second = solve_watched(model, &u_switch, p, (t_switch, tspan.1), stiff_alg, &rest_opts, resumed)?;
    // Join: drop the second part's copy of the switching point when saving every step.
    let skip = usize::from(matches!(opts.saveat, SaveAt::EveryStep));
    let n = first.n;
    first.t.extend_from_slice(&second.t[skip.min(second.t.len())..]);
    first.u_flat.extend_from_slice(&second.u_flat[(skip * n).min(second.u_flat.len())..]);
    if let (Some(d1), Some(d2)) = (first.dense.as_mut(), second.dense.as_ref()) {
        d1.switch(d2.segments[0].1);
        d1.append(d2);
    }
    first.events.extend_from_slice(&second.events);
    // The second part's saves follow the first's (less the dropped copy).
    let saves = first.t.len() - (second.t.len() - skip.min(second.t.len()));
    first.jumps.extend(
        second
            .jumps
            .iter()
            .map(|j| JumpRecord { saves_before: saves + j.saves_before.saturating_sub(skip), ..j.clone() }),
    );
    first.stats += second.stats;
    first.retcode = second.retcode;
    first.t_reached = second.t_reached;
    first.u_reached = second.u_reached;
    first.alg = second.alg;
    first.switched = false;
    Ok(first)
}
