//! Gradients through the solver against central finite differences of tight solves.

use diffsim::models::{Lorenz, LotkaVolterra, LvPiecewise};
use diffsim::sensitivity::{gradient, Loss, SensAlg, VjpMethod};
use diffsim::{solve, Algorithm, Model, Problem, SolveOptions};

/// Central differences of the loss of tight Vern7 solves, for p then u0.
fn finite_differences<M: Model + Clone>(prob: &Problem<M>, times: &[f64], loss: &Loss) -> Vec<f64> {
    let opts = SolveOptions::default().rtol(1e-13).atol(1e-13).saveat_times(times.to_vec());
    let eval = |p: Vec<f64>, u0: Vec<f64>| {
        let sol = solve(&prob.remake(Some(u0), Some(p)).unwrap(), Algorithm::Vern7, &opts).unwrap();
        loss.evaluate(&sol.u_flat)
    };
    let mut out = Vec::new();
    for which in 0..2 {
        let base = if which == 0 { &prob.p } else { &prob.u0 };
        for i in 0..base.len() {
            let h = 1e-5 * base[i].abs().max(1.0);
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += h;
            down[i] -= h;
            let (lu, ld) = if which == 0 {
                (eval(up, prob.u0.clone()), eval(down, prob.u0.clone()))
            } else {
                (eval(prob.p.clone(), up), eval(prob.p.clone(), down))
            };
            out.push((lu - ld) / (2.0 * h));
        }
    }
    out
}

fn worst_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().map(|x| x.abs()).fold(0.0, f64::max);
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, f64::max)
}

/// Every sensealg x vjp pair against central differences of tight solves.
fn check<M: Model + Clone>(prob: &Problem<M>, times: &[f64], loss: Loss, alg: Algorithm) {
    check_with(prob, times, loss, alg, &[]);
}

/// [`check`] with `extra` sensealgs too.
fn check_with<M: Model + Clone>(prob: &Problem<M>, times: &[f64], loss: Loss, alg: Algorithm, extra: &[SensAlg]) {
    let reference = finite_differences(prob, times, &loss);
    let opts = SolveOptions::default().rtol(1e-11).atol(1e-11).saveat_times(times.to_vec());
    for &sensealg in SENSEALGS.iter().chain(extra) {
        let g = gradient(prob, alg, &opts, &loss, sensealg).unwrap();
        let got: Vec<f64> = g.dp.iter().chain(&g.du0).copied().collect();
        let e = worst_rel(&got, &reference);
        assert!(e < 1e-6, "{alg} {sensealg:?} {loss:?}: relative error {e:.2e}\n got {got:?}\n fd  {reference:?}");
    }
}

const SENSEALGS: [SensAlg; 6] = [
    SensAlg::ForwardAd,
    SensAlg::Interpolating(VjpMethod::Forward),
    SensAlg::Interpolating(VjpMethod::FiniteDiff),
    SensAlg::Discrete(VjpMethod::Forward),
    SensAlg::Discrete(VjpMethod::FiniteDiff),
    SensAlg::Auto,
];

/// The reverse-mode tape's VJPs, checked on Lotka-Volterra and the piecewise model only
/// (they agree with forward-mode VJPs to rounding; `tests/tape.rs` checks that everywhere).
const TAPE_SENSEALGS: [SensAlg; 3] = [
    SensAlg::Discrete(VjpMethod::Tape),
    SensAlg::Discrete(VjpMethod::CompiledTape),
    SensAlg::Interpolating(VjpMethod::CompiledTape),
];

fn grid(t1: f64, k: usize) -> Vec<f64> {
    (0..=k).map(|i| t1 * i as f64 / k as f64).collect()
}

#[test]
fn forward_ad_matches_finite_differences_on_lotka_volterra() {
    let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 5.0)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Vern7, Algorithm::Dp5] {
        check_with(&prob, &grid(5.0, 10), Loss::Sum, alg, &TAPE_SENSEALGS);
        check_with(&prob, &grid(5.0, 10), Loss::SumSq, alg, &TAPE_SENSEALGS);
    }
}

#[test]
fn forward_ad_matches_finite_differences_on_lorenz() {
    // Six inputs: one chunk.
    let prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).unwrap();
    check(&prob, &grid(1.0, 10), Loss::SumSq, Algorithm::Vern7);
}

#[test]
fn forward_ad_handles_discontinuities_in_time() {
    let prob = Problem::new(LvPiecewise, vec![1.0, 1.0], vec![1.0, 1.5, 0.5, 2.0], (0.0, 4.0)).unwrap();
    check_with(&prob, &grid(4.0, 8), Loss::Sum, Algorithm::Vern7, &TAPE_SENSEALGS);
}

/// More inputs than one chunk of duals: several solves, stitched.
#[test]
fn forward_ad_chunks_many_inputs() {
    let e = diffsim::models::lookup("brusselator-3").unwrap(); // 6 states + 3 parameters = 9 inputs
    let prob = Problem::new(e.model, e.u0, e.p, (0.0, 1.0)).unwrap();
    check(&prob, &grid(1.0, 4), Loss::Sum, Algorithm::Vern7);
}

/// The values-only error norm lets the derivatives' error go unchecked: at ordinary
/// tolerances its gradient is several times less accurate than the partial-aware norm's,
/// which stays within the tolerance's reach. (Tsit5 on Lotka-Volterra over ten time units.)
#[test]
fn values_only_error_norm_gives_a_wrong_gradient() {
    let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0)).unwrap();
    let times = grid(10.0, 20);
    let reference = finite_differences(&prob, &times, &Loss::Sum);
    for tol in [1e-5, 1e-6] {
        let opts = SolveOptions::default().rtol(tol).atol(tol).saveat_times(times.clone());
        let err = |s| {
            let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, s).unwrap();
            let got: Vec<f64> = g.dp.iter().chain(&g.du0).copied().collect();
            worst_rel(&got, &reference)
        };
        let (right, wrong) = (err(SensAlg::ForwardAd), err(SensAlg::ForwardAdValueNorm));
        assert!(right < 5.0 * tol, "tol {tol:e}: partial-aware norm error {right:.2e}");
        assert!(wrong > 5.0 * right, "tol {tol:e}: values-only {wrong:.2e} vs partial-aware {right:.2e}");
    }
}

#[test]
fn gradient_needs_fixed_save_times_and_an_explicit_method() {
    let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
    assert!(gradient(&prob, Algorithm::Tsit5, &SolveOptions::default(), &Loss::Sum, SensAlg::ForwardAd).is_err());
    let opts = SolveOptions::default().saveat_times(vec![1.0]);
    assert!(gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, SensAlg::ForwardAd).is_err());
    assert!(gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Auto)).is_err());
    assert!(gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, SensAlg::Auto).is_ok());
    // Data of the wrong size, and a model without its own VJP asked for one.
    assert!(gradient(&prob, Algorithm::Tsit5, &opts, &Loss::squared_error(vec![0.0; 3]), SensAlg::Auto).is_err());
    assert!(gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Model)).is_err());
}

/// A squared-error loss against data, with a missing (NaN) entry, through every method.
#[test]
fn squared_error_loss_against_data() {
    let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 3.0)).unwrap();
    let times = grid(3.0, 6);
    let mut data: Vec<f64> = (0..times.len() * 2).map(|i| 1.0 + 0.1 * i as f64).collect();
    data[5] = f64::NAN;
    check(&prob, &times, Loss::squared_error(data), Algorithm::Tsit5);
}

/// Save times that are not on the grid of steps, not including t0, and with Bs3 (whose
/// dense output uses the stage values) and Vern7 (whose dense output needs extra stages).
#[test]
fn discrete_adjoint_through_dense_output() {
    let prob = Problem::new(LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 2.0)).unwrap();
    let times = vec![0.37, 0.9, 1.41, 2.0];
    for alg in [Algorithm::Bs3, Algorithm::Vern7, Algorithm::Dp5] {
        check(&prob, &times, Loss::SumSq, alg);
    }
}

/// A stiff problem: Robertson through Rodas5P, the interpolating adjoint solved backwards by
/// Rodas5P, against central differences of tight Rodas5P solves (relative steps in the
/// rate constants, which span nine decades).
#[test]
fn interpolating_adjoint_on_stiff_robertson() {
    let p = vec![0.04, 3e7, 1e4];
    let prob = Problem::new(diffsim::models::Robertson, vec![1.0, 0.0, 0.0], p.clone(), (0.0, 40.0)).unwrap();
    let times = vec![0.4, 4.0, 40.0];
    let loss = Loss::Sum;
    let tight = SolveOptions::default().rtol(1e-12).atol(1e-14).saveat_times(times.clone());
    let eval = |p: Vec<f64>| {
        let sol = solve(&prob.remake(None, Some(p)).unwrap(), Algorithm::Rodas5P, &tight).unwrap();
        // y2 is ~1e-5: weight it up so that all three states count.
        let v: Vec<f64> = sol.u_flat.chunks(3).flat_map(|u| [u[0], 1e4 * u[1], u[2]]).collect();
        loss.evaluate(&v)
    };
    let fd: Vec<f64> = (0..3)
        .map(|i| {
            let h = 1e-4 * p[i];
            let (mut up, mut down) = (p.clone(), p.clone());
            up[i] += h;
            down[i] -= h;
            (eval(up) - eval(down)) / (2.0 * h) * p[i]
        })
        .collect();
    let weights: Vec<f64> = times.iter().flat_map(|_| [1.0, 1e4, 1.0]).collect();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-12).saveat_times(times.clone());
    for vjp in [VjpMethod::Forward, VjpMethod::FiniteDiff] {
        let g = gradient(
            &prob,
            Algorithm::Rodas5P,
            &opts,
            &Loss::Weighted(weights.clone().into()),
            SensAlg::Interpolating(vjp),
        )
        .unwrap();
        let got: Vec<f64> = g.dp.iter().zip(&p).map(|(d, p)| d * p).collect();
        let e = worst_rel(&got, &fd);
        assert!(e < 1e-6, "{vjp:?}: relative error {e:.2e}\n got {got:?}\n fd  {fd:?}");
    }
}
