//! Measured convergence order of every method, and the accuracy of each dense output,
//! against the exact solution of a nonlinear, non-autonomous problem.

use crate::common::{exact, max_err, Exact, U0};
use diffsim::{solve, Algorithm, Problem, SolveOptions};

const T1: f64 = 2.0;

fn error_with_steps(alg: Algorithm, steps: usize) -> f64 {
    let prob = Problem::new(Exact, U0.to_vec(), vec![], (0.0, T1)).unwrap();
    let sol = solve(&prob, alg, &SolveOptions::default().fixed_dt(T1 / steps as f64).saveat_times(vec![T1])).unwrap();
    assert!(sol.retcode().is_success());
    assert_eq!(sol.stats().naccept, steps);
    max_err(sol.u(0), &exact(T1))
}

/// Order from errors with `n` and `2 n` steps (chosen in the asymptotic range, above
/// round-off).
fn measured_order(alg: Algorithm, n: usize) -> f64 {
    (error_with_steps(alg, n) / error_with_steps(alg, 2 * n)).log2()
}

#[test]
fn every_method_converges_at_its_nominal_order() {
    let cases = [
        (Algorithm::Bs3, 3.0, 128),
        (Algorithm::Tsit5, 5.0, 128),
        (Algorithm::Dp5, 5.0, 128),
        (Algorithm::Vern7, 7.0, 32),
        (Algorithm::Rosenbrock23, 2.0, 128),
        (Algorithm::Rodas4, 4.0, 128),
        (Algorithm::Rodas5P, 5.0, 128),
    ];
    for (alg, nominal, start) in cases {
        let p = measured_order(alg, start);
        assert!((p - nominal).abs() < 0.3, "{alg}: measured order {p:.2}, nominal {nominal}");
    }
}

/// The dense output between steps is as accurate as the steps themselves: its global
/// error at interior points falls at (at least) the method's interpolation order.
#[test]
fn dense_output_converges_between_steps() {
    let cases = [
        (Algorithm::Bs3, 3.0),
        (Algorithm::Tsit5, 4.0),
        (Algorithm::Dp5, 4.0),
        (Algorithm::Vern7, 6.0),
        (Algorithm::Rosenbrock23, 2.0),
        (Algorithm::Rodas4, 3.0),
        (Algorithm::Rodas5P, 4.0),
    ];
    let prob = Problem::new(Exact, U0.to_vec(), vec![], (0.0, T1)).unwrap();
    for (alg, min_order) in cases {
        let err = |steps: usize| {
            let h = T1 / steps as f64;
            let sol = solve(&prob, alg, &SolveOptions::default().fixed_dt(h).dense(true)).unwrap();
            // Interior points of every step.
            (0..steps)
                .map(|i| {
                    let t = (i as f64 + 0.37) * h;
                    max_err(&sol.interpolate(t).unwrap(), &exact(t))
                })
                .fold(0.0, f64::max)
        };
        let (e1, e2) = (err(32), err(64));
        let order = (e1 / e2).log2();
        assert!(order > min_order - 0.3, "{alg}: dense output order {order:.2} (errors {e1:.2e}, {e2:.2e})");
    }
}

/// Adaptive solves meet their tolerance at saved and interpolated points alike.
#[test]
fn adaptive_solves_meet_the_tolerance_everywhere() {
    let prob = Problem::new(Exact, U0.to_vec(), vec![], (0.0, 1.5)).unwrap();
    for alg in Algorithm::ALL {
        for tol in [1e-5, 1e-8] {
            if matches!(alg, Algorithm::Rosenbrock23 | Algorithm::Bs3) && tol < 1e-6 {
                continue; // low order: far too many steps at tight tolerances
            }
            let sol = solve(&prob, alg, &SolveOptions::default().rtol(tol).atol(tol)).unwrap();
            assert!(sol.retcode().is_success(), "{alg}");
            for i in 0..sol.len() {
                assert!(max_err(sol.u(i), &exact(sol.t()[i])) < 200.0 * tol, "{alg} at t = {}", sol.t()[i]);
            }
            for k in 0..50 {
                let t = 1.5 * (k as f64 + 0.5) / 50.0;
                let e = max_err(&sol.interpolate(t).unwrap(), &exact(t));
                assert!(e < 200.0 * tol, "{alg} tol {tol}: dense error {e:.2e} at t = {t}");
            }
        }
    }
}
