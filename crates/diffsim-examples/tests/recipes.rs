//! Training universal differential equations: gradients of a neural ODE by every method,
//! the two worked examples, and checkpoint-resume.

use diffsim::optim::{Adam, Chain, Control, MinimizeOptions};
use diffsim::sensitivity::{SensAlg, VjpMethod};
use diffsim_examples::{self as examples, lv_term_errors, Worked};

/// The spiral network's gradient (252 parameters) by every method against central
/// differences of tight solves.
#[test]
fn neural_ode_gradient_by_every_method_matches_finite_differences() {
    let mut ex = examples::spiral(3, 1e-11, 1e-11).unwrap();
    let p0 = ex.p0.clone();
    // A tighter copy for the differences.
    let mut tight = ex.clone();
    tight.fit.opts = tight.fit.opts.clone().rtol(1e-13).atol(1e-13);
    let fd: Vec<f64> = (0..p0.len())
        .map(|i| {
            let h = 1e-6;
            let (mut up, mut down) = (p0.clone(), p0.clone());
            up[i] += h;
            down[i] -= h;
            (tight.loss(&up) - tight.loss(&down)) / (2.0 * h)
        })
        .collect();
    let scale = fd.iter().map(|x| x.abs()).fold(0.0, f64::max);
    for sensealg in [
        SensAlg::Discrete(VjpMethod::Model),
        SensAlg::Discrete(VjpMethod::Forward),
        SensAlg::Interpolating(VjpMethod::Model),
        SensAlg::Interpolating(VjpMethod::FiniteDiff),
        SensAlg::Checkpointing(VjpMethod::Model),
        SensAlg::Quadrature(VjpMethod::Model),
        SensAlg::Backsolve(VjpMethod::Model),
        SensAlg::Forward,
        SensAlg::ForwardAd,
        SensAlg::Auto,
    ] {
        let g = ex.gradient_by(&p0, sensealg).unwrap();
        let worst = g.dp.iter().zip(&fd).map(|(a, b)| (a - b).abs() / scale).fold(0.0, f64::max);
        assert!(worst < 1e-6, "{sensealg:?}: relative error {worst:.2e}");
    }
}

#[test]
fn spiral_training_reduces_the_loss_a_hundredfold() {
    let mut ex = examples::spiral(0, 1e-7, 1e-9).unwrap();
    let initial = ex.loss(&ex.p0.clone());
    let report =
        examples::train_spiral(&mut ex, 300, 0, &MinimizeOptions::default(), None, &mut |_| Control::Continue).unwrap();
    assert!(report.best_loss < initial / 100.0, "{initial} -> {}", report.best_loss);
}

/// The stated tolerances, over the seeds 1 to 4 (each seed draws its own noise and its own
/// network starts). With 5 % noise on 21 points the learned terms' error varies a lot from
/// seed to seed (over 48 seeds: median 0.24, one in six above 0.5), so one seed's error
/// against a tight bound would test the rounding of that seed, not the method:
/// - every run fits the data to the noise level (sum of squared errors about 0.4; the poor
///   minima the earlier single-start recipe fell into one time in three sit at 5-100);
/// - the learned interaction terms are within 60 % relative RMS of -beta x y and gamma x y
///   along the data for the median seed, and every seed has learned something;
/// - sparse regression of the network's terms, refitted to the data, recovers the
///   equations themselves (one x y term each, the true coefficients within 3 %) for at
///   least three of the four.
#[test]
fn lv_ude_learns_the_interaction_terms() {
    let mut term_errors = vec![];
    let mut recovered = 0;
    for seed in 1..=4 {
        let mut ex = examples::lv_ude(seed, 1e-6, 1e-6).unwrap();
        let (_, before) = lv_term_errors(&ex, &ex.p0);
        assert!(before > 0.9, "the untrained network should not know the terms ({before})");
        let recipe = examples::LvRecipe::default();
        let report =
            examples::train_lv_ude(&mut ex, &recipe, &MinimizeOptions::default(), None, &mut |_| Control::Continue)
                .unwrap();
        assert!(report.best_loss < 4.0, "seed {seed}: loss {}", report.best_loss);
        let (_, after) = lv_term_errors(&ex, &report.best_x);
        assert!(after < 0.9 * before, "seed {seed}: relative RMS error of the learned terms {after}");
        term_errors.push(after);

        let found = examples::discover_lv(&mut ex, &report.best_x).unwrap();
        assert!(found.loss < 2.0 * report.best_loss, "refitted loss {} vs network {}", found.loss, report.best_loss);
        assert!(found.compared >= 4);
        let terms = found.fit.problem.model().terms();
        let library = found.fit.problem.model().library();
        let xy = (0..library.len()).find(|&j| library.exponents(j) == [1, 1]).unwrap();
        let (beta, gamma) = (examples::LV_PARAMS[1], examples::LV_PARAMS[2]);
        let c = &found.coefficients;
        if terms == [(0, xy), (1, xy)] && (c[0] + beta).abs() < 0.03 * beta && (c[1] - gamma).abs() < 0.03 * gamma {
            recovered += 1;
        } else {
            eprintln!("seed {seed}: recovered {:?}", found.equations());
        }
    }
    term_errors.sort_by(f64::total_cmp);
    let median = 0.5 * (term_errors[1] + term_errors[2]);
    assert!(median < 0.6, "median relative RMS error of the learned terms {median} ({term_errors:?})");
    assert!(recovered >= 3, "equations recovered for {recovered} of 4 seeds");
}

/// Stopping after 10 iterations and resuming from the checkpoint to 20 gives exactly the
/// parameters of an uninterrupted 20-iteration run (Adam then L-BFGS).
#[test]
fn resuming_from_a_checkpoint_reproduces_an_uninterrupted_run() {
    let dir = std::env::temp_dir().join(format!("diffsim-fit-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("ckpt.json");
    let chain = || Chain::new().then(Adam::new(0.05), 12).then(diffsim::optim::Lbfgs::default(), 8);
    let mut ex = examples::spiral(0, 1e-6, 1e-8).unwrap();
    let p0 = ex.p0.clone();
    let straight = ex
        .train(&p0, &mut chain(), &MinimizeOptions::default().max_iters(20), None, &mut |_| Control::Continue)
        .unwrap();
    let first = MinimizeOptions::default().max_iters(15).checkpoint(&ckpt, 5);
    ex.train(&p0, &mut chain(), &first, None, &mut |_| Control::Continue).unwrap();
    let rest = MinimizeOptions::default().max_iters(20).checkpoint(&ckpt, 5);
    let resumed = ex.train(&p0, &mut chain(), &rest, Some(&ckpt), &mut |_| Control::Continue).unwrap();
    assert_eq!(straight.final_x, resumed.final_x);
    assert_eq!(straight.best_x, resumed.best_x);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// lv-ude's recipe resumes too: its L-BFGS refinement, stopped after 6 iterations and resumed
/// from the checkpoint (which skips the starts), ends exactly where an uninterrupted run does.
#[test]
fn lv_ude_resumes_its_refinement() {
    let dir = std::env::temp_dir().join(format!("diffsim-fit-lv-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("ckpt.json");
    let recipe =
        examples::LvRecipe { starts: 2, stage_iters: 20, adam_iters: 30, explore_lbfgs_iters: 5, lbfgs_iters: 15 };
    let mut ex = examples::lv_ude(2, 1e-6, 1e-6).unwrap();
    let straight =
        examples::train_lv_ude(&mut ex, &recipe, &MinimizeOptions::default(), None, &mut |_| Control::Continue)
            .unwrap();
    let options = MinimizeOptions::default().checkpoint(&ckpt, 1);
    let stopped = examples::train_lv_ude(&mut ex, &recipe, &options, None, &mut |p| {
        if p.iteration >= 6 {
            Control::Stop
        } else {
            Control::Continue
        }
    })
    .unwrap();
    assert_ne!(stopped.final_x, straight.final_x, "the first run should stop early");
    let resumed = examples::train_lv_ude(&mut ex, &recipe, &options, Some(&ckpt), &mut |_| Control::Continue).unwrap();
    assert_eq!(straight.final_x, resumed.final_x);
    assert!(examples::train_lv_ude(&mut ex, &examples::LvRecipe { starts: 0, ..recipe }, &options, None, &mut |_| {
        Control::Continue
    })
    .is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fit_cut_before_any_data_is_an_error() {
    let ex = examples::spiral(0, 1e-6, 1e-8).unwrap();
    assert!(ex.fit.up_to(-1.0).is_err());
    assert!(ex.fit.up_to(0.5).is_ok());
}

/// Slow tier (`cargo test --workspace --profile ci -- --ignored`): the recipe's claim that the
/// best of four starts never ends in a poor minimum, over 48 seeds (each seed its own noise
/// and network starts). A poor minimum sits at a loss of 5-100; fits to the noise level at
/// about 0.4. CI keeps the four-seed test above.
#[test]
#[ignore = "slow tier: 48 full training runs"]
fn lv_ude_best_of_four_starts_fits_the_noise_for_48_seeds() {
    let poor: Vec<(u64, f64)> = (1..=48)
        .filter_map(|seed| {
            let mut ex = examples::lv_ude(seed, 1e-6, 1e-6).unwrap();
            let recipe = examples::LvRecipe::default();
            let report =
                examples::train_lv_ude(&mut ex, &recipe, &MinimizeOptions::default(), None, &mut |_| Control::Continue)
                    .unwrap();
            (report.best_loss >= 4.0).then_some((seed, report.best_loss))
        })
        .collect();
    assert!(poor.is_empty(), "seeds that ended in a poor minimum (seed, loss): {poor:?}");
}

/// The parameter-estimation strategies take a UDE as they take any model: the LV UDE's 87
/// network weights (more than the 42 measurements, so with a small ridge weight) by
/// Levenberg-Marquardt, their Jacobian from forward sensitivities, over multiple shooting,
/// from the example's initial network to the noise level (a sum of squared errors about
/// 0.4, as the Adam and L-BFGS recipe reaches; poor minima sit at 5-100).
#[test]
fn lv_ude_network_by_multiple_shooting_with_levenberg_marquardt() {
    use diffsim::fit::{fit_multiple_shooting, FitProblem, MultipleShooting, TimeSeries};
    use diffsim::optim::LevenbergMarquardt;
    use diffsim::SolveOptions;
    let ex = examples::lv_ude(1, 1e-6, 1e-6).unwrap();
    let data = TimeSeries::new(ex.times.clone(), vec!["x".into(), "y".into()], ex.data.clone(), None).unwrap();
    let l2 = 1e-3;
    let spec = FitProblem::new(&ex.fit.problem, &data).options(SolveOptions::default().rtol(1e-6).atol(1e-6));
    // Without the ridge the weights outnumber the data: refused with a message saying so.
    let lm = LevenbergMarquardt::default().max_iters(150);
    let refused = fit_multiple_shooting(&spec, &lm, MultipleShooting { group_size: 5, continuity_weight: 100.0 });
    assert!(refused.unwrap_err().to_string().contains("unknowns"));
    let spec = spec.l2(l2);
    let fit = fit_multiple_shooting(&spec, &lm, MultipleShooting { group_size: 5, continuity_weight: 100.0 }).unwrap();
    let ridge = 0.5 * l2 * fit.p.iter().map(|w| w * w).sum::<f64>();
    let sse = 2.0 * (fit.cost - ridge);
    assert!(sse < 1.0, "sum of squared errors {sse}");
}
