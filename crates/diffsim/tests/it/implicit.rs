//! The Newton-based stiff solvers (BDF, Radau IIA 5) against tight Rosenbrock references: accuracy at
//! their tolerance, at saved and interpolated points, on ODEs, a DAE, a sparse system and
//! across discontinuities; the reuse of Jacobians and factorisations that is their point;
//! and how they fail.

use diffsim::models::{lookup, ZooModel};
use diffsim::{solve, Algorithm, Problem, RetCode, Solution, SolveOptions};

/// The Newton-based methods.
const NEWTON: [Algorithm; 3] = [Algorithm::Bdf, Algorithm::Radau5, Algorithm::Radau9];

fn zoo_problem(name: &str, t1: Option<f64>) -> Problem<ZooModel> {
    let e = lookup(name).unwrap();
    let tspan = (e.tspan.0, t1.unwrap_or(e.tspan.1));
    Problem::new(e.model, e.u0, e.p, tspan).unwrap()
}

/// The largest error of `u` against `reference`, in units of `atol + rtol |reference|`.
fn scaled_error(u: &[f64], reference: &[f64], rtol: f64, atol: f64) -> f64 {
    u.iter().zip(reference).map(|(a, b)| (a - b).abs() / (atol + rtol * b.abs())).fold(0.0, f64::max)
}

fn reference(prob: &Problem<ZooModel>, atol: f64) -> Solution<f64> {
    let sol = solve(prob, Algorithm::Rodas5P, &SolveOptions::default().rtol(1e-12).atol(atol * 1e-4)).unwrap();
    assert!(sol.retcode().is_success());
    sol
}

/// Stiff ODEs, a DAE and a sparse system: the end state and the dense output within a small
/// multiple of the tolerance, with far fewer Jacobians than steps.
#[test]
fn newton_methods_meet_their_tolerance_on_stiff_problems() {
    // (model, end of span, atol)
    let cases = [
        ("robertson", Some(1e3), 1e-10),
        // Up to before the first jump, where the jump time's sensitivity multiplies any
        // method's error a thousandfold.
        ("van-der-pol", Some(0.7), 1e-8),
        ("robertson-dae", Some(1e3), 1e-10),
        ("brusselator-32", Some(2.0), 1e-8),
    ];
    for (name, t1, atol) in cases {
        let prob = zoo_problem(name, t1);
        let reference = reference(&prob, atol);
        for alg in NEWTON {
            for rtol in [1e-5, 1e-8] {
                let sol = solve(&prob, alg, &SolveOptions::default().rtol(rtol).atol(atol)).unwrap();
                assert!(sol.retcode().is_success(), "{alg} {name} {rtol:e}: {:?}", sol.retcode());
                let end = scaled_error(sol.u_final(), reference.u_final(), rtol, atol);
                // Radau9 works at a looser internal tolerance than Radau5 (RADAU's `0.1
                // rtol^((s + 1) / 2s)`: 1.6e-6 against 4.6e-7 at 1e-8) and crosses van der
                // Pol's approach to its fold, which amplifies every error, in five steps.
                let bound = if alg == Algorithm::Radau9 { 60.0 } else { 30.0 };
                assert!(end < bound, "{alg} {name} {rtol:e}: end error {end:.1} tolerances");
                let t_end = prob.tspan().1;
                let dense = (1..40)
                    .map(|k| {
                        let t = t_end * (k as f64 / 40.0).powi(3);
                        let (a, b) = (sol.interpolate(t).unwrap(), reference.interpolate(t).unwrap());
                        scaled_error(&a, &b, rtol, atol)
                    })
                    .fold(0.0, f64::max);
                assert!(dense < 2.0 * bound, "{alg} {name} {rtol:e}: dense error {dense:.1} tolerances");
                // BDF keeps its Jacobian until Newton fails and its LU while the step size
                // holds; Radau5 keeps its Jacobian while Newton contracts fast. (Radau9's
                // few long steps here rarely contract that fast: its reuse is checked at
                // rtol 1e-10 in its unit tests.)
                let s = sol.stats();
                if alg == Algorithm::Radau9 {
                    continue;
                }
                let (jac_per, lu_per) = if alg == Algorithm::Bdf { (5, 2) } else { (1, 0) };
                assert!(
                    jac_per * s.njac < s.naccept,
                    "{alg} {name} {rtol:e}: {} Jacobians for {} steps",
                    s.njac,
                    s.naccept
                );
                assert!(lu_per * s.nlu < s.naccept, "{alg} {name} {rtol:e}: {} LUs for {} steps", s.nlu, s.naccept);
            }
        }
    }
}

/// Robertson's DAE form conserves `y1 + y2 + y3 = 1` through its algebraic equation.
#[test]
fn the_dae_keeps_its_constraint() {
    let prob = zoo_problem("robertson-dae", None);
    for alg in NEWTON {
        let sol = solve(&prob, alg, &SolveOptions::default().rtol(1e-6).atol(1e-10)).unwrap();
        assert!(sol.retcode().is_success());
        for i in 0..sol.len() {
            let u = sol.u(i);
            assert!((u[0] + u[1] + u[2] - 1.0).abs() < 1e-12, "{alg} at t = {}", sol.t()[i]);
        }
    }
}

/// A solution with no continuation (`u' = sqrt(u) - 1` from `u = 0`: every step leaves the
/// domain) ends quickly with its partial solution, not after `max_steps` rejections.
#[test]
fn a_newton_solver_that_cannot_step_ends_quickly() {
    use diffsim::{Model, Scalar};
    struct SqrtDecay;
    impl Model for SqrtDecay {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = u[0].sqrt() - T::one();
        }
    }
    for alg in NEWTON {
        for t0 in [0.0, 1.0] {
            let prob = Problem::new(SqrtDecay, vec![0.0], vec![], (t0, t0 + 1.0)).unwrap();
            let sol = solve(&prob, alg, &SolveOptions::default()).unwrap();
            assert!(
                matches!(sol.retcode(), RetCode::DtLessThanMin | RetCode::Unstable),
                "{alg}: {:?} after {} attempts",
                sol.retcode(),
                sol.stats().nsteps
            );
            assert!(sol.stats().nsteps < 200, "{alg}: {} attempts", sol.stats().nsteps);
            assert_eq!((sol.t(), sol.u_flat(), sol.t_reached()), (&[t0][..], &[0.0][..], t0));
        }
    }
}

/// `Auto` continues a stiff solve with Rodas5P at ordinary tolerances, Radau9 at tight ones
/// and BDF for large systems (the table in `solve`'s docs); a mass matrix goes there directly.
#[test]
fn auto_picks_the_stiff_method_by_size_and_tolerance() {
    let cases = [
        ("robertson", Some(1e3), 1e-6, Algorithm::Rodas5P),
        ("robertson", Some(1e3), 1e-10, Algorithm::Radau9),
        ("robertson-dae", Some(1e3), 1e-10, Algorithm::Radau9),
        ("brusselator-32", Some(10.0), 1e-6, Algorithm::Bdf),
    ];
    for (name, t1, rtol, want) in cases {
        let prob = zoo_problem(name, t1);
        let sol = solve(&prob, Algorithm::Auto, &SolveOptions::default().rtol(rtol).atol(rtol * 1e-4)).unwrap();
        assert!(sol.retcode().is_success(), "{name} {rtol:e}");
        assert_eq!(sol.alg(), want, "{name} at rtol {rtol:e}");
    }
    // An atol below the rounding of the largest state (1 eps): a Newton method even at a
    // loose rtol, and it still meets the tolerance.
    let prob = zoo_problem("robertson", Some(1e3));
    let opts = SolveOptions::default().rtol(1e-6).atol(1e-17);
    let sol = solve(&prob, Algorithm::Auto, &opts).unwrap();
    assert_eq!(sol.alg(), Algorithm::Bdf);
    let reference = solve(&prob, Algorithm::Radau5, &SolveOptions::default().rtol(1e-12).atol(1e-20)).unwrap();
    for (y, r) in sol.u_final().iter().zip(reference.u_final()) {
        assert!((y - r).abs() < 1e-4 * r.abs() + 1e-12, "{y} vs {r}");
    }
}
