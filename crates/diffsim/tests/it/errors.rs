//! Every bad-input path is a typed error with a message that says what to do; none panics.

use diffsim::models::{Lorenz, RobertsonDae, ZooModel};
use diffsim::{solve, Algorithm, DiffsimError, Problem, SolveOptions, Tolerance};

fn lorenz() -> Problem<ZooModel> {
    Problem::new(ZooModel::from(Lorenz), vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).unwrap()
}

fn err_of(opts: SolveOptions) -> DiffsimError {
    solve(&lorenz(), Algorithm::Tsit5, &opts).unwrap_err()
}

#[test]
fn problem_inputs_are_checked() {
    let p = vec![10.0, 28.0, 8.0 / 3.0];
    let e = Problem::new(ZooModel::from(Lorenz), vec![1.0, 0.0], p.clone(), (0.0, 1.0)).unwrap_err();
    assert_eq!(e, DiffsimError::SizeMismatch { what: "u0", expected: 3, got: 2 });
    assert!(e.to_string().contains("pass exactly 3 values"));
    let e = Problem::new(ZooModel::from(Lorenz), vec![1.0, 0.0, 0.0], vec![1.0], (0.0, 1.0)).unwrap_err();
    assert!(matches!(e, DiffsimError::SizeMismatch { what: "p", .. }));
    let e = Problem::new(ZooModel::from(Lorenz), vec![1.0, f64::NAN, 0.0], p.clone(), (0.0, 1.0)).unwrap_err();
    assert_eq!(e, DiffsimError::NonFinite { what: "u0", index: 1 });
    let e = Problem::new(ZooModel::from(Lorenz), vec![1.0, 0.0, 0.0], vec![10.0, f64::INFINITY, 1.0], (0.0, 1.0))
        .unwrap_err();
    assert_eq!(e, DiffsimError::NonFinite { what: "p", index: 1 });
    for span in [(1.0, 1.0), (0.0, f64::INFINITY), (f64::NAN, 1.0)] {
        let e = Problem::new(ZooModel::from(Lorenz), vec![1.0, 0.0, 0.0], p.clone(), span).unwrap_err();
        assert!(matches!(e, DiffsimError::InvalidSpan { .. }), "{span:?}");
    }
}

#[test]
fn tolerances_are_checked() {
    for (rtol, atol) in [(-1e-6, 1e-6), (1e-6, f64::NAN), (0.0, 0.0)] {
        let e = err_of(SolveOptions::default().rtol(rtol).atol(atol));
        assert!(matches!(e, DiffsimError::InvalidTolerance(_)), "{rtol} {atol}: {e}");
    }
    let e = err_of(SolveOptions::default().atol(Tolerance::PerComponent(vec![1e-6, 1e-6])));
    assert!(e.to_string().contains("give one value or 3"), "{e}");
    let e = err_of(SolveOptions::default().rtol(0.0).atol(vec![1e-6, 0.0, 1e-6]));
    assert!(matches!(e, DiffsimError::InvalidTolerance(_)));
    // Per-component tolerances that are fine work.
    let ok = solve(&lorenz(), Algorithm::Tsit5, &SolveOptions::default().atol(vec![1e-8, 1e-8, 1e-6])).unwrap();
    assert!(ok.retcode().is_success());
}

#[test]
fn options_are_checked() {
    let cases: Vec<(SolveOptions, &str)> = vec![
        (SolveOptions::default().saveat_times(vec![0.5, 2.0]), "saveat"),
        (SolveOptions::default().saveat_times(vec![f64::NAN]), "saveat"),
        (SolveOptions::default().dt(-0.1), "dt"),
        (SolveOptions::default().dt(0.0), "dt"),
        (SolveOptions::default().dt_max(0.0), "dt_max"),
        (SolveOptions::default().dt_min(1.0).dt_max(0.1), "dt_min"),
        (SolveOptions::default().dt_min(f64::NAN), "dt_min"),
        (SolveOptions::default().max_steps(0), "max_steps"),
        (SolveOptions::default().tstops(vec![f64::INFINITY]), "tstops"),
        (SolveOptions::default().adaptive(false), "dt"),
    ];
    for (opts, name) in cases {
        match err_of(opts) {
            DiffsimError::InvalidOption { name: got, why } => {
                assert_eq!(got, name);
                assert!(!why.is_empty());
            }
            other => panic!("{name}: unexpected {other}"),
        }
    }
}

#[test]
fn methods_refuse_what_they_cannot_solve() {
    let dae =
        Problem::new(ZooModel::from(RobertsonDae), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1.0)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Dp5, Algorithm::Vern7, Algorithm::Bs3] {
        let e = solve(&dae, alg, &SolveOptions::default()).unwrap_err();
        assert!(e.to_string().contains("use rodas5p"), "{alg}: {e}");
    }
    let e = diffsim::solve_explicit::<f64, _>(
        &ZooModel::from(Lorenz),
        &[1.0, 0.0, 0.0],
        &[10.0, 28.0, 2.0],
        (0.0, 1.0),
        Algorithm::Rodas5P,
        &SolveOptions::default(),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, DiffsimError::Unsupported { .. }));
    let e = "radau".parse::<Algorithm>().unwrap_err();
    assert!(e.to_string().contains("tsit5"), "{e}");
    assert_eq!("Rodas5P".parse::<Algorithm>().unwrap(), Algorithm::Rodas5P);
}

#[test]
fn interpolation_outside_the_solution_is_an_error() {
    let sol = solve(&lorenz(), Algorithm::Tsit5, &SolveOptions::default()).unwrap();
    assert!(sol.interpolate(0.5).is_ok());
    assert!(sol.interpolate(1.5).is_err());
    let mut wrong = vec![0.0; 2];
    assert!(sol.interpolate_into(0.5, &mut wrong).is_err());
    let no_dense = solve(&lorenz(), Algorithm::Tsit5, &SolveOptions::default().saveat_times(vec![1.0])).unwrap();
    let e = no_dense.interpolate(0.5).unwrap_err();
    assert!(e.to_string().contains("dense(true)"), "{e}");
}

mod boundary {
    //! Sizes and options checked where the user hands them over: no panics, no silent
    //! truncation, errors in the user's terms.

    use diffsim::capabilities::{AnalyticVjp, Derivatives};
    use diffsim::models::ZooModel;
    use diffsim::sensitivity::{gradient, Loss, SavedLoss, SensAlg, VjpMethod};
    use diffsim::{solve, Algorithm, DiffsimError, Model, Problem, RetCode, Scalar, SolveOptions, Tolerance};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// Lotka-Volterra as a `ZooModel`, the type the gradient tests already compile the
    /// gradient stack for (each model type costs the build a copy of it).
    fn lv() -> Problem<ZooModel> {
        lv_on(vec![1.0, 1.0], (0.0, 1.0))
    }

    fn lv_on(u0: Vec<f64>, tspan: (f64, f64)) -> Problem<ZooModel> {
        let model = diffsim::models::lookup("lotka-volterra").unwrap().model;
        Problem::new(model, u0, vec![1.5, 1.0, 3.0, 1.0], tspan).unwrap()
    }

    /// `f(sensealg, alg)` for every sensealg (the adjoints with two VJPs) with Tsit5 and Rodas5P:
    /// the cases that panicked or returned something other than the expected error.
    fn every_method(mut f: impl FnMut(SensAlg, Algorithm) -> Result<(), String>) -> Vec<String> {
        let mut bad = Vec::new();
        for name in SensAlg::NAMES {
            for vjp in [VjpMethod::Auto, VjpMethod::CompiledTape] {
                for alg in [Algorithm::Tsit5, Algorithm::Rodas5P] {
                    let sensealg = SensAlg::from_name(name, vjp).unwrap();
                    match catch_unwind(AssertUnwindSafe(|| f(sensealg, alg))) {
                        Ok(Ok(())) => {}
                        Ok(Err(why)) => bad.push(format!("{name} {vjp:?} {alg}: {why}")),
                        Err(_) => bad.push(format!("{name} {vjp:?} {alg}: panicked")),
                    }
                }
            }
        }
        bad
    }

    #[test]
    fn loss_data_of_the_wrong_length_is_an_error_for_every_method() {
        let prob = lv();
        // Two save times x two states: 4 values.
        let opts = SolveOptions::default().rtol(1e-6).atol(1e-6).saveat_times(vec![0.5, 1.0]);
        for (loss, name) in [
            (Loss::Weighted(vec![1.0, 2.0, 3.0].into()), "Weighted"),
            (Loss::squared_error(vec![1.0; 5]), "SquaredError"),
        ] {
            let bad = every_method(|sensealg, alg| match gradient(&prob, alg, &opts, &loss, sensealg) {
                Err(e @ DiffsimError::SizeMismatch { expected: 4, .. }) if e.to_string().contains(name) => Ok(()),
                other => Err(format!("{other:?}")),
            });
            assert!(bad.is_empty(), "{name}:\n{}", bad.join("\n"));
        }
    }

    #[test]
    fn loss_data_of_the_wrong_length_is_an_error_with_a_running_cost() {
        let prob = lv();
        let opts = SolveOptions::default().saveat_times(vec![0.5]);
        for sensealg in [SensAlg::Forward, SensAlg::ForwardAd, SensAlg::Discrete(VjpMethod::Auto)] {
            let loss = Loss::Weighted(vec![1.0; 4].into());
            let e = gradient(
                &prob,
                Algorithm::Tsit5,
                &opts,
                &loss.clone().plus_running_cost(crate::common::Cost),
                sensealg,
            )
            .unwrap_err();
            assert!(matches!(e, DiffsimError::SizeMismatch { expected: 2, got: 4, .. }), "{sensealg:?}: {e}");
            assert!(e.to_string().contains("Weighted"), "{e}");
        }
    }

    #[test]
    fn problem_setters_are_checked() {
        let mut prob = lv();
        let e = prob.set_p(&[1.0; 5]).unwrap_err();
        assert_eq!(e, DiffsimError::SizeMismatch { what: "p", expected: 4, got: 5 });
        assert_eq!(
            prob.set_p(&[1.0, f64::NAN, 1.0, 1.0]).unwrap_err(),
            DiffsimError::NonFinite { what: "p", index: 1 }
        );
        assert_eq!(prob.set_u0(&[1.0]).unwrap_err(), DiffsimError::SizeMismatch { what: "u0", expected: 2, got: 1 });
        // A refused value leaves the problem as it was; an accepted one is used.
        assert_eq!((prob.p(), prob.u0()), (&[1.5, 1.0, 3.0, 1.0][..], &[1.0, 1.0][..]));
        prob.set_p(&[1.0, 1.0, 3.0, 1.0]).unwrap();
        prob.set_u0(&[2.0, 0.5]).unwrap();
        let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().saveat_times(vec![0.0])).unwrap();
        assert_eq!((prob.p()[0], sol.u_flat()), (1.0, &[2.0, 0.5][..]));
    }

    #[test]
    fn checkpointing_runs_on_a_reversed_span() {
        // Lotka-Volterra is conservative: backwards in time it is as tame as forwards.
        let prob = lv_on(vec![1.2, 0.8], (6.0, 0.0));
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![4.5, 2.0, 0.0]);
        let loss = Loss::SumSq;
        let run = |s| gradient(&prob, Algorithm::Tsit5, &opts, &loss, s).unwrap();
        let checkpointed = run(SensAlg::Checkpointing(VjpMethod::Auto));
        assert!(checkpointed.stats.naccept > 2 * diffsim::sensitivity::STEPS_PER_CHECKPOINT);
        for reference in [SensAlg::Interpolating(VjpMethod::Auto), SensAlg::Forward] {
            let r = run(reference);
            let scale = r.dp.iter().chain(&r.du0).fold(0.0f64, |m, x| m.max(x.abs()));
            for (a, b) in checkpointed.dp.iter().chain(&checkpointed.du0).zip(r.dp.iter().chain(&r.du0)) {
                assert!((a - b).abs() <= 1e-6 * scale, "{reference:?}: {a} vs {b}");
            }
        }
    }

    /// `u' = -p u`, with a hand-written VJP that counts its calls.
    #[derive(Default)]
    struct VjpOnly(std::sync::atomic::AtomicUsize);
    impl Model for VjpOnly {
        const STATES: Option<usize> = Some(1);
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
            du[0] = -p[0] * u[0];
        }
        fn derivatives(&self) -> Derivatives<'_> {
            Derivatives::none().vjp(self)
        }
    }
    impl AnalyticVjp for VjpOnly {
        type Workspace = ();
        fn workspace(&self) {}
        fn vjp(&self, _: &mut (), w: &[f64], u: &[f64], p: &[f64], _t: f64, du: &mut [f64], dp: &mut [f64]) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            du[0] -= p[0] * w[0];
            dp[0] -= u[0] * w[0];
        }
    }

    #[test]
    fn a_model_vjp_does_the_adjoints_work() {
        let prob = Problem::new(VjpOnly::default(), vec![2.0], vec![0.7], (0.0, 1.0)).unwrap();
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![1.0]);
        // L = u(1) = u0 exp(-p): dL/dp = -u0 exp(-p), dL/du0 = exp(-p).
        let e = (-0.7f64).exp();
        for vjp in [VjpMethod::Auto, VjpMethod::Model] {
            let before = prob.model().0.load(std::sync::atomic::Ordering::Relaxed);
            let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Interpolating(vjp)).unwrap();
            assert!((g.dp[0] + 2.0 * e).abs() < 1e-8 && (g.du0[0] - e).abs() < 1e-8, "{vjp:?}: {g:?}");
            assert!(prob.model().0.load(std::sync::atomic::Ordering::Relaxed) - before > 10, "{vjp:?}");
        }
    }

    /// `u' = sqrt(u) - 1`: from u = 0 every step leaves the model's domain (u < 0).
    struct SqrtDecay;
    impl Model for SqrtDecay {
        const STATES: Option<usize> = Some(1);
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

    #[test]
    fn a_solve_that_cannot_step_ends_quickly_with_its_partial_solution() {
        for t0 in [0.0, 1.0, -1.0] {
            let prob = Problem::new(SqrtDecay, vec![0.0], vec![], (t0, t0 + 1.0)).unwrap();
            let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default()).unwrap();
            // The solution has no real continuation past t0: a NaN state, not a small step.
            assert_eq!(sol.retcode(), RetCode::Unstable, "t0 = {t0}");
            assert!(sol.stats().nsteps < 100, "t0 = {t0}: {} attempts", sol.stats().nsteps);
            assert_eq!((sol.t(), sol.u_flat(), sol.t_reached()), (&[t0][..], &[0.0][..], t0));
        }
    }

    /// A fit's objective takes the optimizer's `p`: a wrong length is a NaN loss (which the
    /// optimizers skip), an error from `predict` and from `train` before it starts.
    #[test]
    fn a_fit_checks_the_parameters_it_is_handed() {
        use diffsim::fit::Fit;
        use diffsim::optim::{Adam, Control, MinimizeOptions, OptimError};
        let opts = SolveOptions::default().saveat_times(vec![0.5, 1.0]);
        let mut fit = Fit {
            problem: lv(),
            alg: Algorithm::Tsit5,
            opts: opts.clone(),
            loss: Loss::Sum,
            sensealg: SensAlg::Auto,
            l2: 0.0,
        };
        let mut grad = vec![0.0; 3];
        assert!(fit.loss_and_gradient(&[1.5, 1.0, 3.0], &mut grad).is_nan());
        assert!(grad.iter().all(|g| g.is_nan()));
        let mut grad = vec![0.0; 3];
        assert!(fit.loss_and_gradient(&[1.5, 1.0, 3.0, 1.0], &mut grad).is_nan(), "grad of the wrong length");
        assert!(fit.loss(&[1.5, 1.0]).is_nan());
        let e = fit.predict(&[1.5], (0.0, 1.0), &opts).unwrap_err();
        assert!(matches!(e, DiffsimError::SizeMismatch { what: "p", got: 1, expected: 4 }), "{e}");
        let e = fit
            .train(&[1.5, 1.0], &mut Adam::new(0.01), &MinimizeOptions::default(), None, |_| Control::Continue)
            .unwrap_err();
        assert!(matches!(e, OptimError::Input(DiffsimError::SizeMismatch { what: "p0", .. })), "{e}");
        // The right length works.
        let mut grad = vec![0.0; 4];
        assert!(fit.loss_and_gradient(&[1.5, 1.0, 3.0, 1.0], &mut grad).is_finite());
    }

    #[test]
    fn tolerances_below_the_precision_are_errors() {
        let prob = lv();
        for rtol in [Tolerance::Scalar(1e-15), Tolerance::Scalar(1e-16), Tolerance::PerComponent(vec![1e-8, 1e-17])] {
            let opts = SolveOptions::default().rtol(rtol);
            let e = solve(&prob, Algorithm::Tsit5, &opts).unwrap_err();
            assert!(matches!(e, DiffsimError::InvalidTolerance(_)), "{e}");
            assert!(e.to_string().contains("smallest usable rtol is 2.2e-14"), "{e}");
        }
        // Pure absolute control (rtol = 0) and the tightest usable rtol are fine.
        for rtol in [0.0, 100.0 * f64::EPSILON] {
            let sol = solve(&prob, Algorithm::Vern7, &SolveOptions::default().rtol(rtol).atol(1e-12)).unwrap();
            assert!(sol.retcode().is_success(), "{rtol}");
        }
    }
}
