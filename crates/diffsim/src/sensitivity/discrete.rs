//! Discrete adjoint of the explicit Runge-Kutta solvers: reverse mode through the solver's
//! own accepted steps.
//!
//! The forward solve records every accepted step (start state, time, size) and keeps its
//! stage derivatives `k_i` (the dense output); the reverse sweep rebuilds each step's stage
//! inputs from them and pulls the adjoint back through
//!
//! ```text
//! Y_i = u + h sum_{j<i} a_ij k_j,   k_i = f(Y_i, p, t + c_i h),
//! u_new = u + h sum_i b_i k_i,      u(t + theta h) = u + h sum_i b_i(theta) k_i,
//! ```
//!
//! stage by stage, last first: `kbar_i` gathers `h b_i lambda` and the saved points'
//! `h b_i(theta) g`; each stage's VJP `(df/dY)^T kbar_i` feeds the start state and the
//! earlier stages through `a_ij`, and `(df/dp)^T kbar_i` accumulates into dL/dp.
//!
//! The step sizes are held fixed (the controller is not differentiated), so this is the exact
//! gradient of the discrete map the forward solve applied, to rounding (the stage inputs
//! are rebuilt in the stepper's own order of operations, so they are bit for bit the ones
//! the forward solve evaluated). Memory: per accepted step, one state and the stage
//! derivatives (the dense output: `c.len()` states); the reverse sweep evaluates no right-hand
//! side, only one VJP per stage.

use crate::ad::{Vjp, VjpMethod};
use crate::error::{DiffsimError, Result};
use crate::solve::tableau::{self, ExplicitTableau};
use crate::{solve_explicit, Algorithm, Model, Problem, Stats};
use crate::{SaveAt, SolveOptions};

use super::{Gradient, SavedLoss};

/// The tableau of an explicit algorithm.
fn explicit_tableau(alg: Algorithm) -> Option<&'static ExplicitTableau> {
    match alg {
        Algorithm::Tsit5 => Some(&tableau::tsit5::TSIT5),
        Algorithm::Dp5 => Some(&tableau::dp5::DP5),
        Algorithm::Vern7 => Some(&tableau::vern7::VERN7),
        Algorithm::Bs3 => Some(&tableau::bs3::BS3),
        _ => None,
    }
}

/// Where a saved point came from within a step.
#[derive(Clone, Copy, Debug)]
enum SavedAt {
    /// The step's end state itself.
    End,
    /// The dense output at `theta` of the step.
    Theta(f64),
}

/// dL/dp and dL/du0 by the discrete adjoint.
pub(crate) fn discrete_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
) -> Result<Gradient> {
    let tab = explicit_tableau(alg).ok_or_else(|| DiffsimError::Unsupported {
        alg: alg.name(),
        why: "the discrete adjoint replays explicit Runge-Kutta steps; use tsit5, dp5, vern7 or bs3".into(),
    })?;
    let model = &problem.model;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let mut fwd_opts = opts.clone();
    fwd_opts.record_steps = true;
    fwd_opts.dense = Some(true);
    let sol = solve_explicit(model, &problem.u0, &problem.p, problem.tspan, alg, &fwd_opts, None)?;
    super::require_success(&sol)?;
    loss.check(sol.u_flat.len())?;
    let mut g = vec![0.0; sol.u_flat.len()];
    let value = loss.value_and_gradient(&sol.u_flat, &mut g);
    let log = sol.steps.as_ref().expect("record_steps was set");
    let records = &log.records;

    // Attribute each saved point to the step that produced it, as the driver did.
    let t0 = problem.tspan.0;
    let dir = (problem.tspan.1 - t0).signum();
    let mut per_step: Vec<Vec<(usize, SavedAt)>> = vec![Vec::new(); records.len()];
    let mut at_start = Vec::new();
    let mut si = 0;
    while si < sol.t.len() && sol.t[si] == t0 {
        at_start.push(si);
        si += 1;
    }
    for (k, rec) in records.iter().enumerate() {
        while si < sol.t.len() && (sol.t[si] - rec.t_new) * dir <= 0.0 {
            let ts = sol.t[si];
            let kind = if ts == rec.t_new { SavedAt::End } else { SavedAt::Theta((ts - rec.t) / (rec.t_new - rec.t)) };
            per_step[k].push((si, kind));
            si += 1;
        }
    }

    // The forward solve kept every accepted step's stage derivatives k_i (its dense
    // output), so the sweep rebuilds the stage inputs Y_i from them instead of calling f
    // again: replaying cost one right-hand side per stage and step, as much as the VJPs.
    let dense = sol.dense.as_ref().expect("dense output was requested");
    debug_assert_eq!(dense.offsets.len(), records.len());
    let total_stages = tab.c.len();
    let mut vjp = Vjp::new(model, vjp)?;
    let mut y = vec![0.0; n];
    let mut kbar = vec![0.0; total_stages * n];
    let mut ybar = vec![0.0; n];
    let mut lambda = vec![0.0; n];
    let mut ubar = vec![0.0; n];
    let mut dp = vec![0.0; np];
    let p = &problem.p;

    for (idx, rec) in records.iter().enumerate().rev() {
        let u = &log.u_start[idx * n..(idx + 1) * n];
        let k = &dense.ks[dense.offsets[idx]..dense.offsets[idx] + total_stages * n];
        let h = rec.h;
        let saves = &per_step[idx];
        for &(s, kind) in saves {
            if let SavedAt::End = kind {
                add(&mut lambda, &g[s * n..(s + 1) * n], 1.0);
            }
        }
        let interpolated = saves.iter().any(|(_, kind)| matches!(kind, SavedAt::Theta(_)));
        let stages = if interpolated { total_stages } else { tab.stages };
        // Seed the stage adjoints.
        kbar[..stages * n].fill(0.0);
        ubar.copy_from_slice(&lambda);
        for (i, &b) in tab.b.iter().enumerate() {
            if b != 0.0 {
                add(&mut kbar[i * n..(i + 1) * n], &lambda, h * b);
            }
        }
        for &(s, kind) in saves {
            if let SavedAt::Theta(theta) = kind {
                let gs = &g[s * n..(s + 1) * n];
                add(&mut ubar, gs, 1.0);
                for (i, poly) in tab.interp.iter().enumerate() {
                    let bi = poly.iter().rev().fold(0.0, |acc, &c| acc * theta + c) * theta * h;
                    if bi != 0.0 {
                        add(&mut kbar[i * n..(i + 1) * n], gs, bi);
                    }
                }
            }
        }
        // Pull back through the stages, last first.
        for i in (0..stages).rev() {
            let (before, this) = kbar.split_at_mut(i * n);
            let w = &this[..n];
            if w.iter().all(|&x| x == 0.0) {
                continue;
            }
            stage_input(&mut y, u, k, h, tab.a[i]);
            ybar.fill(0.0);
            vjp.apply(model, w, &y, p, rec.t_eval + tab.c[i] * h, &mut ybar, &mut dp);
            add(&mut ubar, &ybar, 1.0);
            for (j, &a) in tab.a[i].iter().enumerate() {
                if a != 0.0 {
                    add(&mut before[j * n..(j + 1) * n], &ybar, h * a);
                }
            }
        }
        std::mem::swap(&mut lambda, &mut ubar);
    }
    for &s in &at_start {
        add(&mut lambda, &g[s * n..(s + 1) * n], 1.0);
    }
    let mut stats: Stats = sol.stats;
    stats.nf += vjp.evals;
    Ok(Gradient { loss: value, dp, du0: lambda, stats })
}

/// `y = u + h sum_j a_j k_j`, summed in the stepper's order (the weighted stages first,
/// then scaled by `h`), so that `y` is bit for bit the stage input the forward solve used.
#[inline]
fn stage_input(y: &mut [f64], u: &[f64], k: &[f64], h: f64, a: &[f64]) {
    let n = u.len();
    for c in 0..n {
        let mut acc = 0.0;
        for (j, &aj) in a.iter().enumerate() {
            if aj != 0.0 {
                acc += k[j * n + c] * aj;
            }
        }
        y[c] = u[c] + acc * h;
    }
}

/// `acc += c * x`.
#[inline]
fn add(acc: &mut [f64], x: &[f64], c: f64) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += c * v;
    }
}

/// The discrete adjoint saves nothing every step by itself; a loss needs save times.
pub(crate) fn check_saveat(opts: &SolveOptions) -> Result<()> {
    if matches!(opts.saveat, SaveAt::EveryStep) {
        return Err(DiffsimError::InvalidOption {
            name: "saveat",
            why: "a loss needs fixed save times (the steps depend on the parameters); pass saveat times".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsal_tableaus_propagate_with_their_last_row() {
        // The replay uses b for u_new while the stepper copies the last stage's input:
        // the same numbers only if a[last] == b for FSAL methods.
        for alg in [Algorithm::Tsit5, Algorithm::Dp5, Algorithm::Bs3, Algorithm::Vern7] {
            let tab = explicit_tableau(alg).unwrap();
            if tab.fsal {
                assert_eq!(tab.a[tab.stages - 1], &tab.b[..tab.stages - 1], "{}", tab.name);
            }
        }
    }
}
