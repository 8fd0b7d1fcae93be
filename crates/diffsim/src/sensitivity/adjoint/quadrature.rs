//! Quadrature adjoint: only `lambda` is an ODE state. Its backward solve keeps a dense
//! output, and `dL/dp = integral of f_p^T lambda dt` is summed step by step by adaptive
//! Gauss-Kronrod quadrature, with `u` and `lambda` from the two dense outputs. The
//! parameters leave the adjoint's linear algebra (a stiff adjoint factors `n x n`, not
//! `(n + n_p)^2`), for a few extra VJPs per step: the method for many parameters with a
//! stiff model.
//!
//! The quadrature's error is controlled like the solve's: on each adjoint step the 7-point
//! Kronrod rule is compared with the 3-point Gauss rule it extends, and a step whose
//! difference exceeds the tolerances is bisected. A smooth integrand passes at once; an
//! integrand that jumps inside a step (a rate switching at a time the model did not declare
//! in its tstops, where `f_p` jumps and `lambda` does not) is bisected down to the jump,
//! where one fixed rule per step would carry an error proportional to the jump.

use super::model::{lock, AdjointModel, Buffers};
use super::{backward_alg, backward_options, forward_loss, reject_mass_matrix, solve_segment, Crossings, Sweep};
use crate::ad::VjpMethod;
use crate::error::Result;
use crate::problem::{Model, Problem};
use crate::sensitivity::{Gradient, SavedLoss};
use crate::solve::DenseOutput;
use crate::solve::{Algorithm, SolveOptions};
use std::cell::Cell;

/// The 7-point Gauss-Kronrod rule on [-1, 1]: nodes and weights of the Kronrod rule, and
/// the weights of the 3-point Gauss rule whose nodes are among them (0 where not a Gauss node).
/// Kronrod exact to degree 11, Gauss to degree 5 (unit test).
const GK7: [(f64, f64, f64); 7] = [
    (-0.960_491_268_708_020_3, 0.104_656_226_026_467_27, 0.0),
    (-0.774_596_669_241_483_4, 0.268_488_089_868_333_44, 5.0 / 9.0),
    (-0.434_243_749_346_802_56, 0.401_397_414_775_962_2, 0.0),
    (0.0, 0.450_916_538_658_474_1, 8.0 / 9.0),
    (0.434_243_749_346_802_56, 0.401_397_414_775_962_2, 0.0),
    (0.774_596_669_241_483_4, 0.268_488_089_868_333_44, 5.0 / 9.0),
    (0.960_491_268_708_020_3, 0.104_656_226_026_467_27, 0.0),
];

/// Bisections of one adjoint step at most (a jump is then located to `2^-40` of the step).
const MAX_BISECTIONS: u32 = 40;

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
    let (sol, value, mut g) = forward_loss(problem, alg, opts, loss, true)?;
    let dense = sol.dense.as_ref().expect("dense output was requested");
    let buffers = Buffers::new(model, vjp)?;
    let tstops = model.tstops(&problem.p);
    let adjoint = AdjointModel { model, p: &problem.p, dense, buffers: &buffers, with_mu: false, tstops: &tstops };
    let back_alg = backward_alg(alg, sol.alg);
    let back_opts = backward_options(opts, 0, n);
    let tol = (opts.rtol.smallest(), opts.atol.smallest());

    let mut mu = vec![0.0; np];
    let mut scratch = Scratch {
        lambda: vec![0.0; n],
        u: vec![0.0; n],
        du: vec![0.0; n],
        node: vec![0.0; np],
        kronrod: vec![0.0; np],
        gauss: vec![0.0; np],
        pieces: Vec::new(),
    };
    let mut crossings = Crossings::new(problem, &sol, &mut g)?;
    // The jumps' parameter terms (`mu` is the quadrature's).
    let mut jump_dp = vec![0.0; np];
    let mut sweep = Sweep::new(n, 0, &sol, &g, problem.tspan, vec![0.0; n]).with_switches(crossings.switch_times());
    let hint = Cell::new(0.0);
    sweep.back_to(
        problem.tspan.0,
        |z, a, b, stats| {
            let back = solve_segment(&adjoint, z, &[], (a, b), back_alg, &back_opts, true, &hint, stats)?;
            let lambda_dense = back.dense.as_ref().expect("dense output was requested");
            let mut guard = lock(&buffers);
            integrate_fp_lambda(problem, dense, lambda_dense, tol, &mut guard.vjp, &mut scratch, &mut mu);
            Ok(())
        },
        |z, crossing| crossings.cross(crossing, dense, z, &mut jump_dp),
    )?;
    sweep.finish();
    let mut stats = sol.stats;
    stats += sweep.stats;
    stats.nf += lock(&buffers).vjp.evals;
    crossings.add_switch_terms(&mut mu);
    mu.iter_mut().zip(&jump_dp).for_each(|(m, d)| *m += d);
    Ok(Gradient::computed(value, mu, sweep.z, stats))
}

struct Scratch {
    lambda: Vec<f64>,
    u: Vec<f64>,
    du: Vec<f64>,
    /// `f_p^T lambda` at one node.
    node: Vec<f64>,
    /// The two rules' integrals over one piece.
    kronrod: Vec<f64>,
    gauss: Vec<f64>,
    /// Pieces still to integrate: `(from, to, bisections so far)`.
    pieces: Vec<(f64, f64, u32)>,
}

/// `mu += integral of f_p^T lambda` over every step of the adjoint's dense output, each
/// step by adaptive Gauss-Kronrod quadrature to the tolerances `(rtol, atol)`.
fn integrate_fp_lambda<M: Model>(
    problem: &Problem<M>,
    forward: &DenseOutput<f64>,
    lambda: &DenseOutput<f64>,
    (rtol, atol): (f64, f64),
    vjp: &mut crate::ad::Vjp,
    s: &mut Scratch,
    mu: &mut [f64],
) {
    for step in lambda.ts.windows(2) {
        // The adjoint runs from step[0] back to step[1]; a piece (a, b) adds the integral
        // over [b, a], (a - b)/2 sum w g(node).
        let step_len = (step[0] - step[1]).abs();
        s.pieces.push((step[0], step[1], 0));
        while let Some((a, b, depth)) = s.pieces.pop() {
            kronrod_and_gauss(problem, forward, lambda, a, b, vjp, s);
            // The piece's share of the step's absolute tolerance.
            let abs_tol = atol * (a - b).abs() / step_len;
            let converged = s
                .kronrod
                .iter()
                .zip(&s.gauss)
                .zip(mu.iter())
                .all(|((k, g), m)| (k - g).abs() <= rtol * k.abs().max(m.abs()) + abs_tol);
            if converged || depth >= MAX_BISECTIONS {
                mu.iter_mut().zip(&s.kronrod).for_each(|(m, k)| *m += k);
            } else {
                let mid = 0.5 * (a + b);
                s.pieces.push((mid, b, depth + 1));
                s.pieces.push((a, mid, depth + 1));
            }
        }
    }
}

/// The Kronrod and Gauss integrals of `f_p^T lambda` over `[b, a]` (signed as `(a - b)`),
/// into `s.kronrod` and `s.gauss`.
fn kronrod_and_gauss<M: Model>(
    problem: &Problem<M>,
    forward: &DenseOutput<f64>,
    lambda: &DenseOutput<f64>,
    a: f64,
    b: f64,
    vjp: &mut crate::ad::Vjp,
    s: &mut Scratch,
) {
    let (mid, half) = (0.5 * (a + b), 0.5 * (a - b));
    s.kronrod.fill(0.0);
    s.gauss.fill(0.0);
    for &(x, wk, wg) in &GK7 {
        let t = mid + half * x;
        lambda.evaluate(t, &mut s.lambda);
        forward.evaluate(t, &mut s.u);
        s.node.fill(0.0);
        vjp.apply(&problem.model, &s.lambda, &s.u, &problem.p, t, &mut s.du, &mut s.node);
        for ((k, g), &v) in s.kronrod.iter_mut().zip(s.gauss.iter_mut()).zip(&s.node) {
            *k += wk * half * v;
            *g += wg * half * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GK7;

    #[test]
    fn kronrod_and_gauss_weights_are_exact_to_their_degrees() {
        // integral_{-1}^{1} x^d dx = 2 / (d + 1) for even d, 0 for odd.
        for d in 0..=13 {
            let exact = if d % 2 == 0 { 2.0 / (d as f64 + 1.0) } else { 0.0 };
            let k: f64 = GK7.iter().map(|&(x, wk, _)| wk * x.powi(d)).sum();
            let g: f64 = GK7.iter().map(|&(x, _, wg)| wg * x.powi(d)).sum();
            let (k_ok, g_ok) = ((k - exact).abs() < 1e-15, (g - exact).abs() < 1e-15);
            assert_eq!(k_ok, d <= 11 || d % 2 == 1, "Kronrod, degree {d}: {k} vs {exact}");
            assert_eq!(g_ok, d <= 5 || d % 2 == 1, "Gauss, degree {d}: {g} vs {exact}");
        }
    }
}
