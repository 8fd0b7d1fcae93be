//! Interpolating adjoint: `u(t)` from the forward solve's dense output, kept whole.

use super::model::{lock, AdjointModel, Buffers};
use super::{backward_alg, backward_options, forward_loss, reject_mass_matrix, solve_segment, Crossings, Sweep};
use crate::ad::VjpMethod;
use crate::error::Result;
use crate::problem::{Model, Problem};
use crate::sensitivity::{Gradient, SavedLoss};
use crate::solve::{Algorithm, SolveOptions};
use std::cell::Cell;

/// dL/dp and dL/du0 by the interpolating adjoint.
pub(crate) fn interpolating_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
) -> Result<Gradient> {
    let model = &problem.model;
    reject_mass_matrix(model, "interpolating adjoint")?;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let (sol, value, mut g) = forward_loss(problem, alg, opts, loss, true)?;
    let dense = sol.dense.as_ref().expect("dense output was requested");
    let buffers = Buffers::new(model, vjp)?;
    let tstops = model.tstops(&problem.p);
    let adjoint = AdjointModel { model, p: &problem.p, dense, buffers: &buffers, with_mu: true, tstops: &tstops };
    let back_alg = backward_alg(alg, sol.alg);
    let back_opts = backward_options(opts, 0, n + np);
    let mut crossings = Crossings::new(problem, &sol, &mut g)?;
    let mut sweep =
        Sweep::new(n, 0, &sol, &g, problem.tspan, vec![0.0; n + np]).with_switches(crossings.switch_times());
    let hint = Cell::new(0.0);
    sweep.back_to(
        problem.tspan.0,
        |z, a, b, stats| solve_segment(&adjoint, z, &[], (a, b), back_alg, &back_opts, false, &hint, stats).map(|_| ()),
        |z, crossing| {
            let (lambda, mu) = z.split_at_mut(n);
            crossings.cross(crossing, dense, lambda, mu);
        },
    )?;
    sweep.finish();
    let mut stats = sol.stats;
    stats += sweep.stats;
    stats.nf += lock(&buffers).vjp.evals;
    let z = sweep.z;
    let mut dp = z[n..].to_vec();
    crossings.add_switch_terms(&mut dp);
    Ok(Gradient::computed(value, dp, z[..n].to_vec(), stats))
}
