//! Options and behaviour: tstops, saveat, backward integration, callbacks, return codes.

use crate::common::{exact, max_err, Exact, U0};
use diffsim::models::{LotkaVolterra, LvPiecewise, Robertson, ZooModel};
use diffsim::sensitivity::{gradient, Loss, SensAlg, VjpMethod};
use diffsim::{solve, solve_with_callback, Algorithm, Model, Problem, RetCode, Scalar, SolveOptions};

const ALL_FIXED: [Algorithm; 9] = [
    Algorithm::Tsit5,
    Algorithm::Dp5,
    Algorithm::Vern7,
    Algorithm::Bs3,
    Algorithm::Rosenbrock23,
    Algorithm::Rodas4,
    Algorithm::Rodas5P,
    Algorithm::Bdf,
    Algorithm::Radau5,
];

#[test]
fn tstops_are_hit_exactly() {
    let prob = Problem::new(ZooModel::from(LvPiecewise), vec![1.0, 1.0], vec![1.0, 1.5, 0.5, 2.0], (0.0, 4.0)).unwrap();
    for alg in ALL_FIXED {
        let sol = solve(&prob, alg, &SolveOptions::default().tstops(vec![0.3, 2.7]).rtol(1e-6)).unwrap();
        assert!(sol.retcode().is_success());
        for s in [0.3, 1.0, 2.0, 2.7, 3.0, 4.0] {
            assert!(sol.t().contains(&s), "{alg}: step boundaries miss {s}");
        }
    }
}

/// lv-piecewise integrated in one go (with its tstops) equals the same problem integrated
/// piece by piece with a constant rate on each interval, where nothing is discontinuous.
#[test]
fn piecewise_model_matches_pieces_solved_separately() {
    struct Lv(f64);
    impl Model for Lv {
        const STATES: Option<usize> = Some(2);
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            let a = T::from_f64(self.0);
            du[0] = a * u[0] - u[0] * u[1];
            du[1] = -a * u[1] + u[0] * u[1];
        }
    }
    let rates = [1.0, 1.5, 0.5, 2.0];
    let mut u = vec![1.0, 1.0];
    for (i, &a) in rates.iter().enumerate() {
        let piece = Problem::new(Lv(a), u.clone(), vec![], (i as f64, i as f64 + 1.0)).unwrap();
        let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(vec![i as f64 + 1.0]);
        u = solve(&piece, Algorithm::Vern7, &opts).unwrap().u(0).to_vec();
    }
    let prob = Problem::new(ZooModel::from(LvPiecewise), vec![1.0, 1.0], rates.to_vec(), (0.0, 4.0)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Vern7, Algorithm::Rodas5P] {
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![4.0]);
        let sol = solve(&prob, alg, &opts).unwrap();
        assert!(max_err(sol.u(0), &u) < 1e-7, "{alg}: {:?} vs {u:?}", sol.u(0));
    }
    // Backwards through the same discontinuities back to the start.
    let back = Problem::new(ZooModel::from(LvPiecewise), u.clone(), rates.to_vec(), (4.0, 0.0)).unwrap();
    let sol = solve(&back, Algorithm::Vern7, &SolveOptions::default().rtol(1e-11).atol(1e-11)).unwrap();
    assert!(max_err(sol.last().unwrap(), &[1.0, 1.0]) < 1e-8, "{:?}", sol.last());
}

#[test]
fn backward_integration_matches_the_exact_solution() {
    let prob = Problem::new(Exact, exact(2.0).to_vec(), vec![], (2.0, 0.0)).unwrap();
    for alg in ALL_FIXED {
        // Low-order methods' global error grows like tol^(order / (order + 1)); BDF's is the
        // sum of its (many, small) steps' local errors, each up to the tolerance.
        let (tol, factor) = match alg {
            Algorithm::Bs3 | Algorithm::Rosenbrock23 => (1e-6, 500.0),
            Algorithm::Bdf => (1e-9, 300.0),
            _ => (1e-9, 100.0),
        };
        let opts = SolveOptions::default().rtol(tol).atol(tol).saveat_times(vec![1.5, 0.5, 0.0]);
        let sol = solve(&prob, alg, &opts).unwrap();
        assert!(sol.retcode().is_success());
        assert_eq!(sol.t(), vec![1.5, 0.5, 0.0], "saved in the direction of integration");
        for (i, &t) in sol.t().iter().enumerate() {
            let e = max_err(sol.u(i), &exact(t));
            assert!(e < factor * tol, "{alg} at {t}: error {e:.2e}");
        }
        assert!(sol.t_reached() == 0.0);
    }
}

#[test]
fn saveat_returns_exactly_the_requested_times() {
    let prob = Problem::new(Exact, U0.to_vec(), vec![], (0.0, 2.0)).unwrap();
    let times = vec![0.0, 0.25, 1.0, 1.0, 1.999, 2.0];
    for alg in ALL_FIXED {
        let sol =
            solve(&prob, alg, &SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(times.clone())).unwrap();
        assert_eq!(sol.t(), times);
        assert!(!sol.has_dense(), "dense output is off by default with saveat");
        assert_eq!(sol.u(0), &U0[..]);
        for (i, &t) in times.iter().enumerate() {
            assert!(max_err(sol.u(i), &exact(t)) < 1e-4, "{alg} at {t}");
        }
    }
}

/// `Auto` on a model type that states its size (`Exact`: 3) starts with the Tsit5 stepper
/// specialised to that size: on a non-stiff problem it never switches, takes Tsit5's steps
/// and matches the analytic solution.
#[test]
fn auto_on_a_sized_model_takes_tsit5_steps_until_stiff() {
    let prob = Problem::new(Exact, U0.to_vec(), vec![], (0.0, 2.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8);
    let auto = solve(&prob, Algorithm::Auto, &opts).unwrap();
    let tsit5 = solve(&prob, Algorithm::Tsit5, &opts).unwrap();
    assert!(auto.retcode().is_success());
    assert_eq!(auto.stats().njac, 0, "Auto switched to a stiff method");
    assert_eq!(auto.t(), tsit5.t());
    for i in 0..auto.t().len() {
        assert_eq!(auto.u(i), tsit5.u(i), "step {i}");
        assert!(max_err(auto.u(i), &exact(auto.t()[i])) < 1e-6, "at {}", auto.t()[i]);
    }
}

/// `SaveAt::End` saves the end state alone, the same numbers as saving at `t1`: forwards,
/// backwards, through the switching `Auto`, and in a gradient.
#[test]
fn save_end_is_saving_at_the_end_of_the_span() {
    let lv = ZooModel::from(LotkaVolterra);
    for span in [(0.0, 2.0), (2.0, 0.0)] {
        let prob = Problem::new(lv, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], span).unwrap();
        for alg in ALL_FIXED {
            let opts = SolveOptions::default().rtol(1e-8).atol(1e-8);
            let end = solve(&prob, alg, &opts.clone().save_end()).unwrap();
            let at = solve(&prob, alg, &opts.saveat_times(vec![span.1])).unwrap();
            assert!(end.retcode().is_success(), "{alg} {span:?}");
            assert_eq!((end.t(), end.u_flat()), (at.t(), at.u_flat()), "{alg} {span:?}");
            assert_eq!(end.t(), &[span.1]);
        }
    }
    let stiff = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e3)).unwrap();
    let end = solve(&stiff, Algorithm::Auto, &SolveOptions::default().save_end()).unwrap();
    assert_eq!(end.alg(), Algorithm::Rodas5P, "the solve should have switched");
    assert_eq!(end.t(), &[1e3]);
    let prob = Problem::new(lv, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 2.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-9).atol(1e-9);
    for sensealg in [SensAlg::Discrete(VjpMethod::Auto), SensAlg::Interpolating(VjpMethod::Auto), SensAlg::Forward] {
        let end = gradient(&prob, Algorithm::Tsit5, &opts.clone().save_end(), &Loss::SumSq, sensealg).unwrap();
        let at =
            gradient(&prob, Algorithm::Tsit5, &opts.clone().saveat_times(vec![2.0]), &Loss::SumSq, sensealg).unwrap();
        assert_eq!(end, at, "{sensealg:?}");
    }
}

#[test]
fn callback_sees_every_accepted_step_and_can_stop_the_solve() {
    let prob =
        Problem::new(ZooModel::from(LotkaVolterra), vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0)).unwrap();
    let mut seen = Vec::new();
    let mut cb = |t: f64, _u: &[f64]| {
        seen.push(t);
        t < 5.0
    };
    let sol = solve_with_callback(&prob, Algorithm::Tsit5, &SolveOptions::default(), Some(&mut cb)).unwrap();
    assert_eq!(sol.retcode(), RetCode::Terminated);
    assert!(sol.t_reached() >= 5.0 && sol.t_reached() < 10.0);
    assert_eq!(&sol.t()[1..], &seen[..], "the callback ran once per accepted step");
}

#[test]
fn max_steps_returns_the_partial_solution() {
    let prob =
        Problem::new(ZooModel::from(LotkaVolterra), vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0)).unwrap();
    for alg in ALL_FIXED {
        let sol = solve(&prob, alg, &SolveOptions::default().max_steps(10)).unwrap();
        assert_eq!(sol.retcode(), RetCode::MaxIters, "{alg}");
        assert_eq!(sol.stats().nsteps, 10);
        assert_eq!(sol.len(), sol.stats().naccept + 1);
        assert!(sol.t_reached() > 0.0 && sol.t_reached() < 10.0);
        assert_eq!(sol.u_final(), sol.last().unwrap());
        // The partial solution is right as far as it goes.
        let full = solve(&prob, Algorithm::Vern7, &SolveOptions::default().rtol(1e-10).atol(1e-10)).unwrap();
        let reference = full.interpolate(sol.t_reached()).unwrap();
        assert!(max_err(sol.u_final(), &reference) < 1e-3, "{alg}");
    }
}

/// f becomes NaN past t = 1: the solve stops there with `Unstable` and keeps what it had.
#[test]
fn non_finite_right_hand_side_gives_unstable() {
    struct Breaks;
    impl Model for Breaks {
        const STATES: Option<usize> = Some(1);
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], _u: &[T], _p: &[T], t: T) {
            du[0] = (T::one() - t).sqrt();
        }
    }
    let prob = Problem::new(Breaks, vec![0.0], vec![], (0.0, 2.0)).unwrap();
    for alg in ALL_FIXED {
        let sol = solve(&prob, alg, &SolveOptions::default()).unwrap();
        assert_eq!(sol.retcode(), RetCode::Unstable, "{alg}");
        assert!(sol.t_reached() <= 1.0 && sol.t_reached() > 0.9, "{alg}: reached {}", sol.t_reached());
    }
    let at_start = Problem::new(Breaks, vec![0.0], vec![], (1.5, 2.0)).unwrap();
    let sol = solve(&at_start, Algorithm::Tsit5, &SolveOptions::default()).unwrap();
    assert_eq!(sol.retcode(), RetCode::InitialFailure);
}

/// u' = u^2 from u = 1 blows up at t = 1: the step size collapses.
#[test]
fn finite_time_blow_up_gives_dt_less_than_min() {
    struct Blow;
    impl Model for Blow {
        const STATES: Option<usize> = Some(1);
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = u[0] * u[0];
        }
    }
    let prob = Problem::new(Blow, vec![1.0], vec![], (0.0, 2.0)).unwrap();
    let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().dt_min(1e-10)).unwrap();
    assert!(matches!(sol.retcode(), RetCode::DtLessThanMin | RetCode::Unstable), "{:?}", sol.retcode());
    assert!((sol.t_reached() - 1.0).abs() < 1e-3);
}

#[test]
fn dt_max_limits_the_steps() {
    let prob =
        Problem::new(ZooModel::from(LotkaVolterra), vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0)).unwrap();
    let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().dt_max(0.01)).unwrap();
    assert!(sol.t().windows(2).all(|w| w[1] - w[0] <= 0.01 + 1e-12));
    assert!(sol.stats().naccept >= 1000);
}

#[test]
fn auto_switches_only_when_the_problem_is_stiff() {
    let lv =
        Problem::new(ZooModel::from(LotkaVolterra), vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0)).unwrap();
    let sol = solve(&lv, Algorithm::Auto, &SolveOptions::default()).unwrap();
    assert_eq!(sol.alg(), Algorithm::Tsit5);
    let rober = Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5)).unwrap();
    let sol = solve(&rober, Algorithm::Auto, &SolveOptions::default().rtol(1e-6).atol(1e-10)).unwrap();
    assert_eq!(sol.alg(), Algorithm::Rodas5P);
    assert!(sol.retcode().is_success());
    assert!(sol.stats().naccept < 1000, "switched early: {:?}", sol.stats());
    // The joined solution's dense output covers both parts, and the saved times are increasing.
    assert!(sol.t().windows(2).all(|w| w[1] > w[0]));
    for t in [1e-4, 0.5, 40.0, 1e4] {
        assert!(sol.interpolate(t).is_ok());
    }
    let at40 = sol.interpolate(40.0).unwrap();
    assert!((at40[0] - 0.7158270687).abs() < 1e-4);
}

/// The solver runs on any `Scalar`: here dual numbers seeded on `u0[0]` and `u0[1]`, whose
/// parts must be the exact solution's derivatives at t = 1. (`f32` is not a `Scalar`: Rust
/// forbids `impl Mul<f64> for f32`, which the operators `T * f64` need.)
#[test]
fn the_solver_is_generic_over_the_number_type() {
    use diffsim::ad::Dual;
    let u0 = [Dual::<2>::variable(1.0, 0), Dual::variable(1.0, 1), Dual::constant(0.0)];
    let sol = diffsim::solve_explicit(
        &Exact,
        &u0,
        &[],
        (0.0, 1.0),
        Algorithm::Tsit5,
        &SolveOptions::default().rtol(1e-10).atol(1e-10),
        None,
    )
    .unwrap();
    let u = sol.last().unwrap();
    let values: Vec<f64> = u.iter().map(|x| x.v).collect();
    assert!(max_err(&values, &exact(1.0)) < 1e-8);
    // u0(t) = a / (1 + a t^2): d/da = 1 / (1 + t^2)^2 = 1/4. (u1, u2) turns at rate
    // w = 1 + r^2 with radius r = u1(0): u1 = r cos(w t), so d u1 / d r = cos 2 - 2 sin 2 and
    // d u2 / d r = sin 2 + 2 cos 2 at r = t = 1.
    let (c, s) = (2f64.cos(), 2f64.sin());
    let expected = [[0.25, 0.0], [0.0, c - 2.0 * s], [0.0, s + 2.0 * c]];
    for (i, row) in expected.iter().enumerate() {
        for (k, &want) in row.iter().enumerate() {
            assert!((u[i].d[k] - want).abs() < 1e-7, "d u{i} / d seed {k}: {} vs {want}", u[i].d[k]);
        }
    }
}
