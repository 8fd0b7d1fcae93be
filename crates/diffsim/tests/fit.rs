//! Training universal differential equations: gradients of a neural ODE by every method,
//! the two worked examples, and checkpoint-resume.

use diffsim::fit::examples::{self, lv_term_errors};
use diffsim::optim::{Adam, Chain, Control, MinimizeOptions};
use diffsim::sensitivity::{gradient, SensAlg, VjpMethod};

/// The spiral network's gradient (252 parameters) by every method against central
/// differences of tight solves.
#[test]
fn neural_ode_gradient_by_every_method_matches_finite_differences() {
    let mut ex = examples::spiral(3, 1e-11, 1e-11).unwrap();
    let p0 = ex.p0.clone();
    // A tighter copy for the differences.
    let mut tight = ex.fit.clone();
    tight.opts = tight.opts.clone().rtol(1e-13).atol(1e-13);
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
    ex.fit.problem.p.copy_from_slice(&p0);
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
        let g = gradient(&ex.fit.problem, ex.fit.alg, &ex.fit.opts, &ex.fit.loss, sensealg).unwrap();
        let worst = g.dp.iter().zip(&fd).map(|(a, b)| (a - b).abs() / scale).fold(0.0, f64::max);
        assert!(worst < 1e-6, "{sensealg:?}: relative error {worst:.2e}");
    }
}

#[test]
fn spiral_training_reduces_the_loss_a_hundredfold() {
    let mut ex = examples::spiral(0, 1e-7, 1e-9).unwrap();
    let initial = ex.fit.loss(&ex.p0.clone());
    let report =
        examples::train_spiral(&mut ex, 300, 0, &MinimizeOptions::default(), None, |_| Control::Continue).unwrap();
    assert!(report.best_loss < initial / 100.0, "{initial} -> {}", report.best_loss);
}

/// The stated tolerance: the learned interaction terms within 30 % relative RMS of
/// -beta x y and gamma x y along the data (seed 1; other seeds can need multiple shooting).
#[test]
fn lv_ude_learns_the_interaction_terms() {
    let mut ex = examples::lv_ude(1, 1e-6, 1e-6).unwrap();
    let (_, before) = lv_term_errors(&ex, &ex.p0);
    let report =
        examples::train_lv_ude(&mut ex, 300, 1000, 1000, &MinimizeOptions::default(), None, |_| Control::Continue)
            .unwrap();
    let (_, after) = lv_term_errors(&ex, &report.best_x);
    assert!(before > 0.9, "the untrained network should not know the terms ({before})");
    assert!(after < 0.3, "relative RMS error of the learned terms {after}");
    assert!(report.best_loss < 1.0, "loss {}", report.best_loss);

    // Sparse regression of the network's terms, refitted to the data, recovers the
    // equations themselves: one x y term each, with the true coefficients to a few percent
    // (the data carry 5 % noise).
    let found = examples::discover_lv(&mut ex, &report.best_x).unwrap();
    let terms = found.fit.problem.model.terms();
    let library = found.fit.problem.model.library();
    let xy = (0..library.len()).find(|&j| library.exponents(j) == [1, 1]).unwrap();
    assert_eq!(terms, [(0, xy), (1, xy)], "{:?}", found.equations());
    let (beta, gamma) = (examples::LV_PARAMS[1], examples::LV_PARAMS[2]);
    let c = &found.coefficients;
    assert!((c[0] + beta).abs() < 0.03 * beta && (c[1] - gamma).abs() < 0.03 * gamma, "{c:?}");
    assert!(found.loss < 2.0 * report.best_loss, "refitted loss {} vs network {}", found.loss, report.best_loss);
    assert!(found.compared >= 4);
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
        .fit
        .train(&p0, &mut chain(), &MinimizeOptions::default().max_iters(20), None, |_| Control::Continue)
        .unwrap();
    let first = MinimizeOptions::default().max_iters(15).checkpoint(&ckpt, 5);
    ex.fit.train(&p0, &mut chain(), &first, None, |_| Control::Continue).unwrap();
    let rest = MinimizeOptions::default().max_iters(20).checkpoint(&ckpt, 5);
    let resumed = ex.fit.train(&p0, &mut chain(), &rest, Some(&ckpt), |_| Control::Continue).unwrap();
    assert_eq!(straight.final_x, resumed.final_x);
    assert_eq!(straight.best_x, resumed.best_x);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fit_cut_before_any_data_is_an_error() {
    let ex = examples::spiral(0, 1e-6, 1e-8).unwrap();
    assert!(ex.fit.up_to(-1.0).is_err());
    assert!(ex.fit.up_to(0.5).is_ok());
}
