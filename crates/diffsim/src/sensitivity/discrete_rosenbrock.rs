//! Discrete adjoint of the Rodas-family Rosenbrock solvers: reverse mode through the
//! solver's own accepted steps, for stiff problems.
//!
//! A step in the transformed form (identity mass matrix) is
//!
//! ```text
//! W = I / (gamma h) - J,   J = df/du(u, p, t),
//! W k_i = f(Y_i, p, t + c_i h) + sum_{j<i} (C_ij / h) k_j + h d_i f_t(u, p, t),
//! Y_i = u + sum_{j<i} a_ij k_j,   u_new = u + sum_i m_i k_i,
//! ```
//!
//! and the dense output `u(t + theta h) = (1 - theta) u + theta u_new + theta (1 - theta)
//! sum_r theta^r kd_r` with `kd_r = sum_i H_ri k_i`. Going back through a step, last stage
//! first, each stage adjoint `kbar_i` is solved through `W^T z_i = kbar_i`; `z_i` then
//! feeds `f`'s VJP at `Y_i` (into `u`, `p` and the earlier stages through `a_ij`), the
//! earlier stages through `C_ij / h`, and, because `W` holds `J(u, p)` and the right-hand
//! side holds `f_t(u, p)`, the second-order term
//!
//! ```text
//! grad_(u, p) z_i^T (J k_i + h d_i f_t) = d/d eps [ (f_u, f_p)^T z_i at (u + eps k_i, p, t + eps h d_i) ]
//! ```
//!
//! a directional derivative of a VJP, taken by central differences (two VJPs per stage, a
//! relative error near 1e-10 of a term that is itself `O(h)` of the step's derivative).
//! Everything else is exact: the step sizes are held fixed, so this is the gradient of the
//! discrete map the forward solve applied.
//!
//! Memory: one state per accepted step. The stages are not stored: each step is re-taken
//! from its stored start (`f`, `J`, `W` and its LU again) before the sweep crosses it, so
//! the reverse sweep costs about one forward step plus `3 s` VJPs per step for `s` stages.
//! Checkpointed, only every `k`-th start state is kept and each segment's start states are
//! re-run from it (one more step per step) before the sweep crosses the segment.

use crate::ad::{Vjp, VjpMethod};
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::solve::rosenbrock::{Rodas4, Rodas5P, Rosenbrock, RosenbrockMethod};
use crate::solve::tableau::RosenbrockTableau;
use crate::solve::{solve_rodas_logged, Algorithm, SolveOptions, Stats, StepRecord};

use super::discrete::{add, attribute_saves, values_left_steps_unchecked, SavedAt};
use super::event_jump::{EventJumps, Jumps};
use super::limits::GradientWarning;
use super::switches::JumpTerms;
use super::{Gradient, SavedLoss};

/// Relative size of the central-difference step in the second-order term
/// (about the cube root of the machine epsilon).
const SECOND_ORDER_STEP: f64 = 6e-6;

/// dL/dp and dL/du0 by the discrete adjoint of a Rodas4 or Rodas5P solve.
pub(crate) fn rosenbrock_discrete_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
    checkpoint_every: Option<usize>,
) -> Result<Gradient> {
    match alg {
        Algorithm::Rodas4 => sweep::<M, Rodas4>(problem, alg, opts, loss, vjp, checkpoint_every),
        Algorithm::Rodas5P => sweep::<M, Rodas5P>(problem, alg, opts, loss, vjp, checkpoint_every),
        _ => Err(DiffsimError::Unsupported {
            alg: alg.name(),
            why: "the stiff discrete adjoint goes through rodas4 or rodas5p steps; use one of those, \
                  or keep this solver with forward sensitivities or a continuous adjoint \
                  (interpolating, checkpointing, quadrature)"
                .into(),
        }),
    }
}

/// Buffers of the reverse sweep through one step.
struct StepAdjoint {
    /// Stage adjoints, stage-major.
    kbar: Vec<f64>,
    /// The stage input `Y_i`, and the perturbed start state for the second-order term.
    y: Vec<f64>,
    /// `W^T`-solved stage adjoint.
    z: Vec<f64>,
    ybar: Vec<f64>,
    /// VJPs at the perturbed points (state and parameter parts, plus and minus).
    plus_u: Vec<f64>,
    plus_p: Vec<f64>,
    minus_u: Vec<f64>,
    minus_p: Vec<f64>,
}

fn sweep<M: Model, R: RosenbrockMethod>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
    checkpoint_every: Option<usize>,
) -> Result<Gradient> {
    let model = &problem.model;
    if model.mass_matrix().is_some() {
        return Err(DiffsimError::Unsupported {
            alg: alg.name(),
            why: "the discrete adjoint does not handle mass matrices (DAEs) yet".into(),
        });
    }
    let tab = R::TAB;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let every = checkpoint_every.unwrap_or(1).max(1);
    let fwd_opts = SolveOptions { dense: Some(false), ..opts.clone() };
    let (u0, p, tspan) = (&problem.u0[..], &problem.p[..], problem.tspan);
    let (sol, log) = solve_rodas_logged::<M, R>(model, u0, p, tspan, alg, &fwd_opts, every)?;
    let (value, mut g) = super::saved_loss_gradient(&sol, loss)?;
    // The saves just after a jump are met where the sweep crosses it.
    let mut events = EventJumps::new(Jumps::new(&sol, &mut g), &log.jump_steps);
    let records = &log.records;
    let (at_start, per_step) = attribute_saves(&sol.t, records, problem.tspan);

    let p = &problem.p;
    let mut stepper = Rosenbrock::<R, 0>::new(model, opts.jacobian);
    let mut vjp = Vjp::new(model, vjp)?;
    let mut stats: Stats = sol.stats;
    let mut scratch = vec![0.0; 2 * n];
    let mut b = StepAdjoint {
        kbar: vec![0.0; tab.stages * n],
        y: vec![0.0; n],
        z: vec![0.0; n],
        ybar: vec![0.0; n],
        plus_u: vec![0.0; n],
        plus_p: vec![0.0; np],
        minus_u: vec![0.0; n],
        minus_p: vec![0.0; np],
    };
    let mut jumps = JumpTerms::new(model, p, problem.tspan)?;
    let mut lambda = vec![0.0; n];
    let mut ubar = vec![0.0; n];
    let mut dp = vec![0.0; np];

    let retake_failed = |t: f64| DiffsimError::InvalidOption {
        name: "problem",
        why: format!("re-taking the step at t = {t} for the discrete adjoint failed (singular W)"),
    };
    // Start states of the segment being crossed: the stored ones, or (checkpointed) re-run
    // from the segment's checkpoint with the recorded step sizes.
    let mut seg_u = vec![0.0; every * n];
    for idx in (0..records.len()).rev() {
        let rec = &records[idx];
        if every > 1 && (idx + 1 == records.len() || (idx + 1) % every == 0) {
            let first = idx / every * every;
            seg_u[..n].copy_from_slice(&log.u_start[first / every * n..(first / every + 1) * n]);
            let replayed = &records[first..idx];
            let steps = Replay { first, records: replayed, events: &events };
            if let Err(t) = replay(&mut stepper, model, p, steps, n, &mut seg_u, &mut scratch, &mut stats) {
                return Err(retake_failed(t));
            }
        }
        let u = if every > 1 {
            let j = idx % every;
            &seg_u[j * n..(j + 1) * n]
        } else {
            &log.u_start[idx * n..(idx + 1) * n]
        };
        events.back_across(idx + 1, model, p, &mut lambda, &mut dp);
        let saves = &per_step[idx];
        for &(s, kind) in saves {
            if let SavedAt::End = kind {
                add(&mut lambda, &g[s * n..(s + 1) * n], 1.0);
            }
        }
        let h = rec.h;
        if !stepper.retake(model, p, rec, u, &mut scratch, &mut stats) {
            return Err(retake_failed(rec.t));
        }
        let k = stepper.stages();
        seed_step(tab, &lambda, saves, &g, &mut ubar, &mut b.kbar);
        for i in (0..tab.stages).rev() {
            b.z.copy_from_slice(&b.kbar[i * n..(i + 1) * n]);
            if b.z.iter().all(|&x| x == 0.0) {
                continue;
            }
            stepper.solve_transpose(&mut b.z);
            // f at the stage input (stage 0: f(u) itself).
            let a = tab.a[i];
            for c in 0..n {
                let mut acc = u[c];
                for (j, &aij) in a.iter().enumerate() {
                    if aij != 0.0 {
                        acc += aij * k[j * n + c];
                    }
                }
                b.y[c] = acc;
            }
            b.ybar.fill(0.0);
            vjp.apply(model, &b.z, &b.y, p, rec.stage_time(tab.c[i]), &mut b.ybar, &mut dp);
            add(&mut ubar, &b.ybar, 1.0);
            let (before, _) = b.kbar.split_at_mut(i * n);
            for (j, &aij) in a.iter().enumerate() {
                if aij != 0.0 {
                    add(&mut before[j * n..(j + 1) * n], &b.ybar, aij);
                }
            }
            for (j, &cij) in tab.cm[i].iter().enumerate() {
                if cij != 0.0 {
                    add(&mut before[j * n..(j + 1) * n], &b.z, cij / h);
                }
            }
            second_order(&mut b, &mut vjp, model, p, u, &k[i * n..(i + 1) * n], rec, h * tab.d[i], &mut ubar, &mut dp);
        }
        std::mem::swap(&mut lambda, &mut ubar);
        if rec.after_discontinuity() {
            jumps.add(model, p, rec.t, u, &lambda);
        }
    }
    // Scheduled events at the start fired after the saves there (the state before them).
    events.back_across(0, model, p, &mut lambda, &mut dp);
    for &s in &at_start {
        add(&mut lambda, &g[s * n..(s + 1) * n], 1.0);
    }
    stats.nf += vjp.evals;
    jumps.add_to(&mut dp);
    // Rosenbrock steps run on plain floats only: no tangent re-run (see the explicit
    // discrete adjoint); say so instead.
    let warnings = if opts.adaptive && values_left_steps_unchecked(&log) {
        vec![GradientWarning::UncheckedSteps]
    } else {
        Vec::new()
    };
    Ok(Gradient { warnings, ..Gradient::computed(value, dp, lambda, stats) })
}

/// Steps to re-take: `records`, from step `first` of the solve on, with the events' jumps
/// between them.
struct Replay<'a> {
    first: usize,
    records: &'a [StepRecord],
    events: &'a EventJumps<'a>,
}

/// Re-take the recorded steps from the state in `seg_u[..n]`, writing each next start state
/// (after the jumps that followed the step) after it in `seg_u` (the checkpointed sweep's
/// segment). A step that cannot be re-taken (singular W) is an error at its time.
#[allow(clippy::too_many_arguments)]
fn replay<M: Model, R: RosenbrockMethod>(
    stepper: &mut Rosenbrock<R, 0>,
    model: &M,
    p: &[f64],
    steps: Replay<'_>,
    n: usize,
    seg_u: &mut [f64],
    scratch: &mut [f64],
    stats: &mut Stats,
) -> std::result::Result<(), f64> {
    for (j, r) in steps.records.iter().enumerate() {
        let (done, next) = seg_u.split_at_mut((j + 1) * n);
        if !stepper.retake(model, p, r, &done[j * n..], scratch, stats) {
            return Err(r.t);
        }
        next[..n].copy_from_slice(&scratch[..n]);
        steps.events.replay(steps.first + j + 1, model, p, &mut next[..n]);
    }
    Ok(())
}

/// Seed a step's adjoints from `lambda = dL/du_new`: `u_new = u + sum m_i k_i` gives
/// `ubar = lambda` and `kbar_i = m_i lambda`; each save inside the step (at `theta`, loss
/// gradient rows of `g`) adds through the dense output.
fn seed_step(
    tab: &RosenbrockTableau,
    lambda: &[f64],
    saves: &[(usize, SavedAt)],
    g: &[f64],
    ubar: &mut [f64],
    kbar: &mut [f64],
) {
    let n = lambda.len();
    ubar.copy_from_slice(lambda);
    kbar.fill(0.0);
    for (i, &m) in tab.m.iter().enumerate() {
        add(&mut kbar[i * n..(i + 1) * n], lambda, m);
    }
    for &(s, kind) in saves {
        if let SavedAt::Theta(theta) = kind {
            let gs = &g[s * n..(s + 1) * n];
            add(ubar, gs, 1.0);
            for i in 0..tab.stages {
                // theta m_i from u_new, theta (1 - theta) sum_r theta^r H_ri from kd.
                let dense = tab.h_dense.iter().rev().fold(0.0, |acc, row| acc * theta + row[i]);
                let w = theta * tab.m[i] + theta * (1.0 - theta) * dense;
                if w != 0.0 {
                    add(&mut kbar[i * n..(i + 1) * n], gs, w);
                }
            }
        }
    }
}

/// Add `grad_(u, p) z^T (J(u, p, t) k + hd f_t(u, p, t))` (with `z` in `b.z`) to `ubar`
/// and `dp`: the derivative of `(f_u, f_p)^T z` along `(k, hd)` in `(u, t)` at the step's
/// Jacobian time `times.first`, by central differences. After a discontinuity both points
/// stay on the step's side of it: the centre moves into the step by one difference step
/// (an `O(eps)` shift of where the derivative is taken, instead of differencing across
/// the jump).
#[allow(clippy::too_many_arguments)]
fn second_order<M: Model>(
    b: &mut StepAdjoint,
    vjp: &mut Vjp,
    model: &M,
    p: &[f64],
    u: &[f64],
    k: &[f64],
    times: &StepRecord,
    hd: f64,
    ubar: &mut [f64],
    dp: &mut [f64],
) {
    let t = times.first;
    let norm = |x: &[f64]| x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // The step makes the larger of the relative changes in u and t about SECOND_ORDER_STEP.
    let u_scale = norm(k) / norm(u).max(f64::MIN_POSITIVE);
    let t_scale = hd.abs() / t.abs().max(hd.abs()).max(f64::MIN_POSITIVE);
    let along = u_scale.max(t_scale);
    if along == 0.0 || !along.is_finite() {
        return;
    }
    let eps = SECOND_ORDER_STEP / along;
    let t = if times.after_discontinuity() { t + times.h.signum() * eps * hd.abs() } else { t };
    for (sign, (du, dpp)) in [(1.0, (&mut b.plus_u, &mut b.plus_p)), (-1.0, (&mut b.minus_u, &mut b.minus_p))] {
        for ((y, &uc), &kc) in b.y.iter_mut().zip(u).zip(k) {
            *y = uc + sign * eps * kc;
        }
        du.fill(0.0);
        dpp.fill(0.0);
        vjp.apply(model, &b.z, &b.y, p, t + sign * eps * hd, du, dpp);
    }
    let inv = 1.0 / (2.0 * eps);
    for (acc, (a, m)) in ubar.iter_mut().zip(b.plus_u.iter().zip(&b.minus_u)) {
        *acc += (a - m) * inv;
    }
    for (acc, (a, m)) in dp.iter_mut().zip(b.plus_p.iter().zip(&b.minus_p)) {
        *acc += (a - m) * inv;
    }
}
