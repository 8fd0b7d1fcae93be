//! Checkpointed interpolating adjoint: the forward solve keeps only its state every
//! [`STEPS_PER_CHECKPOINT`] accepted steps; before the adjoint crosses the interval between
//! two checkpoints, that interval is re-solved forwards with dense output, which is dropped
//! once crossed. Memory: one state per checkpoint plus one interval's dense output, instead
//! of the whole solve's dense output; cost: about one more forward solve.

use super::model::{lock, AdjointModel, Buffers};
use super::{backward_alg, backward_options, reject_mass_matrix, solve_segment, Crossings, Sweep};
use crate::ad::VjpMethod;
use crate::error::Result;
use crate::problem::{Model, Problem};
use crate::sensitivity::{saved_loss_gradient, Gradient, SavedLoss};
use crate::solve::{solve_with_callback, Algorithm, Solution, SolveOptions};
use std::cell::Cell;

/// Accepted forward steps between two checkpoints.
///
/// With `N` steps and `n` states, memory is about `n (N / K + 8 K)` numbers for `K` steps
/// per checkpoint (a Tsit5 step's dense output holds 7 state-sized vectors plus its end
/// state), smallest near `K = sqrt(N / 8)`: 32 suits solves of a few thousand steps.
pub const STEPS_PER_CHECKPOINT: usize = 32;

/// A forward state kept for the re-solve: time, the last step size, the state.
struct Checkpoint {
    t: f64,
    h: Option<f64>,
    u: Vec<f64>,
}

/// dL/dp and dL/du0 by the checkpointed interpolating adjoint.
pub(crate) fn checkpointed_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
) -> Result<Gradient> {
    let model = &problem.model;
    reject_mass_matrix(model, "checkpointed adjoint")?;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let (t0, t1) = problem.tspan;
    let dir = (t1 - t0).signum();

    let mut checkpoints = vec![Checkpoint { t: t0, h: None, u: problem.u0.clone() }];
    let (mut steps, mut t_prev) = (0usize, t0);
    let mut keep = |t: f64, u: &[f64]| {
        steps += 1;
        if steps % STEPS_PER_CHECKPOINT == 0 && t != t1 {
            // A step size is a magnitude (the span may run backwards).
            checkpoints.push(Checkpoint { t, h: Some((t - t_prev).abs()), u: u.to_vec() });
        }
        t_prev = t;
        true
    };
    let fwd_opts = SolveOptions { dense: Some(false), ..opts.clone() };
    let sol = solve_with_callback(problem, alg, &fwd_opts, Some(&mut keep))?;
    let (value, mut g) = saved_loss_gradient(&sol, loss)?;
    let checkpoints = with_jumps(model, &problem.p, checkpoints, &sol, dir);

    let resolve_alg = if sol.alg.is_stiff() { sol.alg } else { alg };
    let back_alg = backward_alg(alg, sol.alg);
    let buffers = Buffers::new(model, vjp)?;
    let tstops = model.tstops(&problem.p);
    let back_opts = backward_options(opts, 0, n + np);
    // The backward solves carry their step size across segments; the forward re-solves
    // start from the step the forward solve took there instead.
    let (hint, no_hint) = (Cell::new(0.0), Cell::new(0.0));
    let mut crossings = Crossings::new(problem, &sol, &mut g)?;
    let mut sweep =
        Sweep::new(n, 0, &sol, &g, problem.tspan, vec![0.0; n + np]).with_switches(crossings.switch_times());
    let mut stats = sol.stats;
    let mut end = t1;
    for cp in checkpoints.iter().rev() {
        // Re-solve this interval forwards (a piece between events: they are not watched),
        // starting with the step the forward solve took.
        let mut u = cp.u.clone();
        let resolve_opts = SolveOptions { dt: cp.h.or(opts.dt), ..opts.clone() };
        let interval = solve_segment(
            model,
            &mut u,
            &problem.p,
            (cp.t, end),
            resolve_alg,
            &resolve_opts,
            true,
            &no_hint,
            &mut stats,
        )?;
        let dense = interval.dense.as_ref().expect("dense output was requested");
        let adjoint = AdjointModel { model, p: &problem.p, dense, buffers: &buffers, with_mu: true, tstops: &tstops };
        sweep.back_to(
            cp.t,
            |z, a, b, stats| {
                solve_segment(&adjoint, z, &[], (a, b), back_alg, &back_opts, false, &hint, stats).map(|_| ())
            },
            |z, crossing| {
                let (lambda, mu) = z.split_at_mut(n);
                crossings.cross(crossing, dense, lambda, mu);
            },
        )?;
        end = cp.t;
    }
    sweep.finish();
    stats += sweep.stats;
    stats.nf += lock(&buffers).vjp.evals;
    let z = sweep.z;
    let mut dp = z[n..].to_vec();
    crossings.add_switch_terms(&mut dp);
    Ok(Gradient::computed(value, dp, z[..n].to_vec(), stats))
}

/// The checkpoints and, at each of `sol`'s events, the state just after its jump (the state
/// before it with the affects applied, as the solve applied them), in the forward order:
/// the intervals between them are pieces of the solution that the re-solves integrate
/// without watching events, so each re-solved dense output is smooth and ends where the
/// forward solve's piece ended.
fn with_jumps<M: Model>(
    model: &M,
    p: &[f64],
    checkpoints: Vec<Checkpoint>,
    sol: &Solution<f64>,
    dir: f64,
) -> Vec<Checkpoint> {
    if sol.jumps.is_empty() {
        return checkpoints;
    }
    let at_jumps = sol.jumps.iter().map(|jump| {
        let mut u = jump.u_before.clone();
        jump.apply(model, p, &mut u);
        Checkpoint { t: jump.t, h: None, u }
    });
    let mut all: Vec<Checkpoint> = checkpoints.into_iter().chain(at_jumps).collect();
    // Stable: at one time, the start or a checkpoint, then the jumps in their order.
    all.sort_by(|a, b| (dir * (a.t - b.t)).total_cmp(&0.0));
    // At one time, the state after the last jump there starts the piece.
    let mut pieces: Vec<Checkpoint> = Vec::with_capacity(all.len());
    for cp in all {
        match pieces.last_mut() {
            Some(last) if last.t == cp.t => *last = cp,
            _ => pieces.push(cp),
        }
    }
    pieces
}
