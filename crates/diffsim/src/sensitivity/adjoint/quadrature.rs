//! Quadrature adjoint: only `lambda` is an ODE state. Its backward solve keeps a dense
//! output, and `dL/dp = integral of f_p^T lambda dt` is summed step by step by
//! Gauss-Legendre quadrature (3 nodes, exact for degree 5; 4 for Vern7), with `u` and
//! `lambda` from the two dense outputs. The parameters leave the adjoint's error control
//! and its linear algebra (a stiff adjoint factors `n x n`, not `(n + n_p)^2`), for a few
//! extra VJPs per step: the method for many parameters with a stiff model.

use super::model::{lock, AdjointModel, Buffers};
use super::{backward_alg, forward_loss, reject_mass_matrix, solve_segment, Sweep};
use crate::ad::VjpMethod;
use crate::error::Result;
use crate::sensitivity::{Gradient, SavedLoss};
use crate::solve::DenseOutput;
use crate::{Algorithm, Model, Problem, SolveOptions};
use std::cell::Cell;

/// Gauss-Legendre nodes on [-1, 1] and weights, 3 points.
const GL3: [(f64, f64); 3] =
    [(-0.774_596_669_241_483_4, 5.0 / 9.0), (0.0, 8.0 / 9.0), (0.774_596_669_241_483_4, 5.0 / 9.0)];
/// Gauss-Legendre nodes on [-1, 1] and weights, 4 points.
const GL4: [(f64, f64); 4] = [
    (-0.861_136_311_594_052_6, 0.347_854_845_137_453_9),
    (-0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
    (0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
    (0.861_136_311_594_052_6, 0.347_854_845_137_453_9),
];

/// dL/dp and dL/du0 by the quadrature adjoint.
pub(crate) fn quadrature_adjoint<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
    vjp: VjpMethod,
) -> Result<Gradient> {
    let model = &problem.model;
    reject_mass_matrix(model, "quadrature adjoint")?;
    let (n, np) = (problem.u0.len(), problem.p.len());
    let (sol, value, g) = forward_loss(problem, alg, opts, loss, true)?;
    let dense = sol.dense.as_ref().expect("dense output was requested");
    let buffers = Buffers::new(model, vjp)?;
    let tstops = model.tstops(&problem.p);
    let adjoint = AdjointModel { model, p: &problem.p, dense, buffers: &buffers, with_mu: false, tstops: &tstops };
    let back_alg = backward_alg(alg, sol.alg);
    let rule: &[(f64, f64)] = if back_alg == Algorithm::Vern7 { &GL4 } else { &GL3 };

    let mut mu = vec![0.0; np];
    let mut scratch = Scratch { lambda: vec![0.0; n], u: vec![0.0; n], du: vec![0.0; n] };
    let mut sweep = Sweep::new(n, 0, &sol.t, &g, problem.tspan, vec![0.0; n]);
    let hint = Cell::new(0.0);
    sweep.back_to(problem.tspan.0, |z, a, b, stats| {
        let back = solve_segment(&adjoint, z, &[], (a, b), back_alg, opts, true, &hint, stats)?;
        let lambda_dense = back.dense.as_ref().expect("dense output was requested");
        let mut guard = lock(&buffers);
        integrate_fp_lambda(problem, dense, lambda_dense, rule, &mut guard.vjp, &mut scratch, &mut mu);
        Ok(())
    })?;
    sweep.finish();
    let mut stats = sol.stats;
    stats += sweep.stats;
    stats.nf += lock(&buffers).vjp.evals;
    Ok(Gradient { loss: value, dp: mu, du0: sweep.z, stats })
}

struct Scratch {
    lambda: Vec<f64>,
    u: Vec<f64>,
    du: Vec<f64>,
}

/// `mu += integral of f_p^T lambda` over every step of the adjoint's dense output.
fn integrate_fp_lambda<M: Model>(
    problem: &Problem<M>,
    forward: &DenseOutput<f64>,
    lambda: &DenseOutput<f64>,
    rule: &[(f64, f64)],
    vjp: &mut crate::ad::Vjp,
    s: &mut Scratch,
    mu: &mut [f64],
) {
    for step in lambda.ts.windows(2) {
        // The adjoint runs from a back to b; integral over [b, a] = (a - b)/2 sum w f(node).
        let (a, b) = (step[0], step[1]);
        let (mid, half) = (0.5 * (a + b), 0.5 * (a - b));
        for &(x, w) in rule {
            let t = mid + half * x;
            lambda.evaluate(t, &mut s.lambda);
            forward.evaluate(t, &mut s.u);
            // VJPs are linear in their vector: fold the weight in.
            let c = w * half;
            s.lambda.iter_mut().for_each(|l| *l *= c);
            vjp.apply(&problem.model, &s.lambda, &s.u, &problem.p, t, &mut s.du, mu);
        }
    }
}
