//! Solutions against independent references: literature values and other methods at
//! tight tolerance.

use crate::common::rel_err;
use diffsim::models::{Lorenz, Robertson, RobertsonDae, VanDerPol, ZooModel};
use diffsim::{solve, Algorithm, Problem, SolveOptions};

/// Hairer & Wanner, Solving ODEs II (Robertson, t = 40).
const ROBER_40: [f64; 3] = [0.715_827_068_7, 9.185_534_764e-6, 0.284_163_745_7];

fn robertson(tspan: (f64, f64)) -> Problem<ZooModel> {
    Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], tspan).unwrap()
}

fn end_state<M: diffsim::Model>(prob: &Problem<M>, alg: Algorithm, rtol: f64, atol: f64) -> Vec<f64> {
    let t1 = prob.tspan().1;
    let sol = solve(prob, alg, &SolveOptions::default().rtol(rtol).atol(atol).saveat_times(vec![t1])).unwrap();
    assert!(sol.retcode().is_success(), "{alg}: {:?}", sol.retcode());
    sol.u(0).to_vec()
}

#[test]
fn robertson_at_40_matches_the_literature() {
    let prob = robertson((0.0, 40.0));
    for (alg, rtol, tol) in
        [(Algorithm::Rodas5P, 1e-8, 1e-7), (Algorithm::Rodas4, 1e-8, 1e-7), (Algorithm::Rosenbrock23, 1e-6, 1e-4)]
    {
        let u = end_state(&prob, alg, rtol, 1e-12);
        assert!(rel_err(&u, &ROBER_40) < tol, "{alg}: {u:?}");
    }
    // The DAE form (conservation law as an algebraic equation, singular mass matrix).
    let dae =
        Problem::new(ZooModel::from(RobertsonDae), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 40.0)).unwrap();
    for alg in [Algorithm::Rodas5P, Algorithm::Rodas4, Algorithm::Rosenbrock23] {
        let u = end_state(&dae, alg, 1e-8, 1e-12);
        assert!(rel_err(&u, &ROBER_40) < 1e-5, "{alg} DAE: {u:?}");
        assert!((u.iter().sum::<f64>() - 1.0).abs() < 1e-12, "conservation");
    }
}

#[test]
fn robertson_at_1e5_agrees_across_methods() {
    let prob = robertson((0.0, 1e5));
    // Reference: Rodas4 at very tight tolerance; checked against Rodas5P at the same.
    let reference = end_state(&prob, Algorithm::Rodas4, 1e-12, 1e-16);
    let tight5 = end_state(&prob, Algorithm::Rodas5P, 1e-12, 1e-16);
    assert!(rel_err(&tight5, &reference) < 1e-8, "{tight5:?} vs {reference:?}");
    // Benchmark tolerances give benchmark accuracy.
    for alg in [Algorithm::Rodas5P, Algorithm::Rodas4, Algorithm::Auto] {
        let u = end_state(&prob, alg, 1e-6, 1e-10);
        assert!(rel_err(&u, &reference) < 1e-4, "{alg}: {u:?} vs {reference:?}");
    }
}

/// Hairer's VDPOL test problem (eps = 1e-6, i.e. mu = 1e6, t in [0, 2]); reference values
/// from the Bari/Hairer test set: y(2) = (1.706167732170483, -0.8928097010247975).
#[test]
fn van_der_pol_mu_1e6_matches_the_test_set() {
    let reference = [1.706_167_732_170_483, -0.892_809_701_024_797_5];
    let prob = Problem::new(ZooModel::from(VanDerPol), vec![2.0, 0.0], vec![1e6], (0.0, 2.0)).unwrap();
    for (alg, tol) in [(Algorithm::Rodas5P, 1e-5), (Algorithm::Rodas4, 1e-5), (Algorithm::Auto, 1e-5)] {
        let u = end_state(&prob, alg, 1e-9, 1e-9);
        assert!(rel_err(&u, &reference) < tol, "{alg}: {u:?}");
    }
}

/// Van der Pol at mu = 1e3 over several relaxation periods: Rodas5P at benchmark tolerance
/// against Rodas4 at tight tolerance.
#[test]
fn van_der_pol_mu_1e3_agrees_with_a_tight_reference() {
    let prob = Problem::new(ZooModel::from(VanDerPol), vec![2.0, 0.0], vec![1e3], (0.0, 6.3)).unwrap();
    let reference = end_state(&prob, Algorithm::Rodas4, 1e-11, 1e-11);
    let u = end_state(&prob, Algorithm::Rodas5P, 1e-7, 1e-7);
    assert!(rel_err(&u, &reference) < 1e-4, "{u:?} vs {reference:?}");
}

/// Lorenz at t = 1: every explicit method at its working tolerance against Vern7 at 1e-13.
#[test]
fn lorenz_at_1_agrees_across_methods() {
    let prob =
        Problem::new(ZooModel::from(Lorenz), vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).unwrap();
    let reference = end_state(&prob, Algorithm::Vern7, 1e-13, 1e-13);
    let check = end_state(&prob, Algorithm::Rodas5P, 1e-11, 1e-11);
    assert!(rel_err(&check, &reference) < 1e-8, "independent stiff reference disagrees");
    for (alg, tol) in
        [(Algorithm::Tsit5, 1e-9), (Algorithm::Dp5, 1e-9), (Algorithm::Vern7, 1e-9), (Algorithm::Bs3, 1e-6)]
    {
        let u = end_state(&prob, alg, tol, tol);
        assert!(rel_err(&u, &reference) < 1000.0 * tol, "{alg}: {u:?} vs {reference:?}");
    }
}
