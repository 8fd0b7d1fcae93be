//! Forward-mode AD through an explicit solver.

use super::{require_success, Gradient, SavedLoss};
use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::solve::{solve_explicit, Algorithm, SolveOptions, Stats};

/// Width of the dual numbers: parameters and initial states are differentiated in chunks.
const CHUNK: usize = 8;

/// Forward-mode AD through an explicit solver, `CHUNK` directions per solve.
pub(crate) fn forward_ad<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
) -> Result<Gradient> {
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
        require_success(&sol)?;
        loss.check(sol.u_flat.len())?;
        stats += sol.stats;
        let l = loss.evaluate(&sol.u_flat);
        value = l.v;
        let width = CHUNK.min(total - start);
        grad[start..start + width].copy_from_slice(&l.d[..width]);
    }
    Ok(Gradient::computed(value, grad[..np].to_vec(), grad[np..].to_vec(), stats))
}
