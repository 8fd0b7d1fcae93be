//! The derivative that fails: forward-mode AD of the time average through one long solve.
//!
//! Kept to show why shadowing exists: on a chaotic attractor its value grows like
//! `exp(lambda_max T)` with the span (and overflows to infinity), where the derivative of
//! the long-time average converges.

use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::sensitivity::RunningCost;
use crate::solve::{solve_explicit, RetCode, SaveAt, SolveOptions};

use super::segments::{seeded, CHUNK};
use super::{window, ShadowingOptions};

/// `d<J>/dp` by forward-mode AD of one solve over the span (the average over the same
/// window as [`super::shadowing`], by Simpson's rule on the same segments): the naive
/// derivative, which is wrong by orders of magnitude once the window is a few Lyapunov
/// times long.
pub fn naive_derivative<M: Model, C: RunningCost>(
    problem: &Problem<M>,
    objective: &C,
    opts: &ShadowingOptions,
) -> Result<Vec<f64>> {
    problem.validate()?;
    let (t0, t1) = problem.tspan;
    let (start, m, dt) = window(opts, (t0, t1))?;
    let np = problem.p.len();
    // The window's boundaries and midpoints.
    let times: Vec<f64> = (0..=2 * m).map(|k| start + 0.5 * k as f64 * dt).collect();
    let span = t1 - start;
    let mut out = vec![0.0; np];
    for first in (0..np).step_by(CHUNK) {
        let seed = |x: f64, j: usize| seeded(x, j, first);
        let p: Vec<Dual<CHUNK>> = problem.p.iter().enumerate().map(|(j, &x)| seed(x, j)).collect();
        let u0: Vec<Dual<CHUNK>> = problem.u0.iter().map(|&x| Dual::constant(x)).collect();
        let sol_opts = SolveOptions { saveat: SaveAt::Times(times.clone()), dense: Some(false), ..opts.solve.clone() };
        let sol = solve_explicit(&problem.model, &u0, &p, (t0, t1), opts.alg, &sol_opts, None)?;
        if sol.retcode() != RetCode::Success {
            return Err(DiffsimError::InvalidOption {
                name: "problem",
                why: format!("the naive solve ended with {} at t = {}", sol.retcode().as_str(), sol.t_reached),
            });
        }
        for (k, &t) in times.iter().enumerate() {
            let s = (t - start) / span;
            let simpson = match k {
                0 => 1.0,
                k if k == 2 * m => 1.0,
                k if k % 2 == 1 => 4.0,
                _ => 2.0,
            };
            let w = simpson * dt / 6.0 * opts.window.weight(s) / span;
            let j = objective.cost(sol.u(k), &p, Dual::constant(t));
            for (c, o) in out[first..(first + CHUNK).min(np)].iter_mut().enumerate() {
                *o += w * j.d[c];
            }
        }
    }
    Ok(out)
}
