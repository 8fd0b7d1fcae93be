//! Stiff machinery: Jacobians by AD, finite differences and by hand agree; mass matrices.

use diffsim::ad::{jacobian_fd, ForwardJacobian};
use diffsim::models::{lookup, Brusselator1D, Robertson};
use diffsim::{solve, Algorithm, JacobianMethod, Model, Problem, SolveOptions};

#[test]
fn ad_jacobian_matches_the_analytic_one_and_finite_differences() {
    let (u, p, t) = ([0.8, 2e-5, 0.2], [0.04, 3e7, 1e4], 0.3);
    let mut analytic = vec![0.0; 9];
    assert!(Robertson.jacobian(&mut analytic, &u, &p, t));
    let mut ad = vec![0.0; 9];
    let mut dfdt = vec![1.0; 3];
    ForwardJacobian::new(3, 3).evaluate(&Robertson, &u, &p, t, &mut ad, Some(&mut dfdt));
    for i in 0..9 {
        assert!((ad[i] - analytic[i]).abs() <= 1e-12 * analytic[i].abs().max(1.0), "entry {i}");
    }
    assert_eq!(dfdt, vec![0.0; 3], "autonomous");
    let mut f0 = vec![0.0; 3];
    Robertson.rhs(&mut f0, &u, &p, t);
    let mut fd = vec![0.0; 9];
    let (mut w1, mut w2) = (vec![0.0; 3], vec![0.0; 3]);
    jacobian_fd(&Robertson, &u, &p, t, &f0, &mut fd, None, &mut w1, &mut w2);
    // Forward differences: truncation error k2 * h ~ 3e7 * 1.5e-8 on the quadratic term.
    for i in 0..9 {
        assert!(
            (fd[i] - analytic[i]).abs() <= 1e-3 * analytic[i].abs().max(1.0),
            "entry {i}: {} vs {}",
            fd[i],
            analytic[i]
        );
    }
}

/// A system larger than one AD chunk (8 columns) and larger than the small-LU limit,
/// against finite differences.
#[test]
fn chunked_jacobian_of_a_large_system_matches_finite_differences() {
    let m = Brusselator1D { n: 30 };
    let u = m.initial_state();
    let p = [1.0, 3.0, 0.02];
    let n = m.n_states();
    let mut ad = vec![0.0; n * n];
    ForwardJacobian::new(n, 3).evaluate(&m, &u, &p, 0.0, &mut ad, None);
    let mut f0 = vec![0.0; n];
    m.rhs(&mut f0, &u, &p, 0.0);
    let mut fd = vec![0.0; n * n];
    let (mut w1, mut w2) = (vec![0.0; n], vec![0.0; n]);
    jacobian_fd(&m, &u, &p, 0.0, &f0, &mut fd, None, &mut w1, &mut w2);
    let worst = ad.iter().zip(&fd).map(|(a, b)| (a - b).abs() / a.abs().max(1.0)).fold(0.0, f64::max);
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn every_jacobian_method_gives_the_same_solution() {
    let prob = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 40.0)).unwrap();
    let reference = [0.715_827_068_7, 9.185_534_764e-6, 0.284_163_745_7];
    for jm in [JacobianMethod::Auto, JacobianMethod::ForwardAd, JacobianMethod::FiniteDiff] {
        for alg in [Algorithm::Rodas5P, Algorithm::Rosenbrock23] {
            let opts = SolveOptions::default().rtol(1e-7).atol(1e-12).jacobian(jm).saveat_times(vec![40.0]);
            let sol = solve(&prob, alg, &opts).unwrap();
            let u = sol.u(0);
            for i in 0..3 {
                assert!((u[i] - reference[i]).abs() / reference[i] < 2e-4, "{alg} {jm:?}: {u:?}");
            }
        }
    }
}

/// The Brusselator grows past the small-LU size at N = 32 (64 states), so this exercises the
/// faer path; it must agree with the small path's answer on the same problem split finer.
#[test]
fn medium_stiff_system_solves_with_both_lu_paths() {
    for name in ["brusselator-8", "brusselator-32"] {
        let e = lookup(name).unwrap();
        let prob = Problem::new(e.model, e.u0, e.p, (0.0, 10.0)).unwrap();
        let reference =
            solve(&prob, Algorithm::Vern7, &SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![10.0]))
                .unwrap();
        for alg in [Algorithm::Rodas5P, Algorithm::Rodas4] {
            let sol =
                solve(&prob, alg, &SolveOptions::default().rtol(1e-7).atol(1e-7).saveat_times(vec![10.0])).unwrap();
            assert!(sol.retcode.is_success());
            let worst = sol.u(0).iter().zip(reference.u(0)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "{name} {alg}: {worst}");
        }
    }
}
