//! Gradients through the solver against central finite differences of tight solves.

use diffsim::models::ZooModel;
use diffsim::sensitivity::{gradient, Loss, SavedLoss, SensAlg, VjpMethod};
use diffsim::{solve, Algorithm, Model, Problem, SolveOptions};

mod matrix;

/// Central differences of the loss of tight Vern7 solves, for p then u0.
fn finite_differences<M: Model + Clone>(prob: &Problem<M>, times: &[f64], loss: &Loss) -> Vec<f64> {
    let opts = SolveOptions::default().rtol(1e-13).atol(1e-13).saveat_times(times.to_vec());
    let eval = |p: Vec<f64>, u0: Vec<f64>| {
        let sol = solve(&prob.remake(Some(u0), Some(p)).unwrap(), Algorithm::Vern7, &opts).unwrap();
        loss.evaluate(sol.u_flat())
    };
    let mut out = Vec::new();
    for which in 0..2 {
        let base = if which == 0 { prob.p() } else { prob.u0() };
        for i in 0..base.len() {
            let h = 1e-5 * base[i].abs().max(1.0);
            let (mut up, mut down) = (base.to_vec(), base.to_vec());
            up[i] += h;
            down[i] -= h;
            let (lu, ld) = if which == 0 {
                (eval(up, prob.u0().to_vec()), eval(down, prob.u0().to_vec()))
            } else {
                (eval(prob.p().to_vec(), up), eval(prob.p().to_vec(), down))
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
    let reference = finite_differences(prob, times, &loss);
    let opts = SolveOptions::default().rtol(1e-11).atol(1e-11).saveat_times(times.to_vec());
    for sensealg in sensealgs() {
        let g = gradient(prob, alg, &opts, &loss, sensealg).unwrap();
        let got: Vec<f64> = g.dp.iter().chain(&g.du0).copied().collect();
        let e = worst_rel(&got, &reference);
        assert!(e < 1e-6, "{alg} {sensealg:?} {loss:?}: relative error {e:.2e}\n got {got:?}\n fd  {reference:?}");
    }
}

/// The VJP methods every adjoint is checked with.
const VJPS: [VjpMethod; 4] = [VjpMethod::Forward, VjpMethod::FiniteDiff, VjpMethod::Tape, VjpMethod::CompiledTape];

/// Every sensealg, each adjoint with every VJP method.
fn sensealgs() -> Vec<SensAlg> {
    let mut out = vec![SensAlg::ForwardAd, SensAlg::Forward, SensAlg::Auto];
    for vjp in VJPS {
        out.extend([
            SensAlg::Discrete(vjp),
            SensAlg::DiscreteCheckpointing(vjp),
            SensAlg::Interpolating(vjp),
            SensAlg::Checkpointing(vjp),
            SensAlg::Quadrature(vjp),
            SensAlg::Backsolve(vjp),
        ]);
    }
    out
}

/// A zoo model as the one `ZooModel` type: every test problem of the zoo shares one
/// instantiation of the whole gradient stack (each model type compiles all of it, which
/// made this test the longest build in CI).
fn zoo(name: &str, u0: Vec<f64>, p: Vec<f64>, tspan: (f64, f64)) -> Problem<ZooModel> {
    Problem::new(diffsim::models::lookup(name).unwrap().model, u0, p, tspan).unwrap()
}

fn grid(t1: f64, k: usize) -> Vec<f64> {
    (0..=k).map(|i| t1 * i as f64 / k as f64).collect()
}

#[test]
fn forward_ad_matches_finite_differences_on_lotka_volterra() {
    let prob = zoo("lotka-volterra", vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 5.0));
    for alg in [Algorithm::Tsit5, Algorithm::Vern7, Algorithm::Dp5] {
        check(&prob, &grid(5.0, 10), Loss::Sum, alg);
        check(&prob, &grid(5.0, 10), Loss::SumSq, alg);
    }
}

#[test]
fn forward_ad_matches_finite_differences_on_lorenz() {
    // Six inputs: one chunk.
    let prob = zoo("lorenz", vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0));
    check(&prob, &grid(1.0, 10), Loss::SumSq, Algorithm::Vern7);
}

#[test]
fn forward_ad_handles_discontinuities_in_time() {
    let prob = zoo("lv-piecewise", vec![1.0, 1.0], vec![1.0, 1.5, 0.5, 2.0], (0.0, 4.0));
    check(&prob, &grid(4.0, 8), Loss::Sum, Algorithm::Vern7);
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
    let prob = zoo("lotka-volterra", vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 10.0));
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
fn gradient_needs_fixed_save_times_and_a_supported_method() {
    let prob = zoo("lotka-volterra", vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0));
    assert!(gradient(&prob, Algorithm::Tsit5, &SolveOptions::default(), &Loss::Sum, SensAlg::ForwardAd).is_err());
    let opts = SolveOptions::default().saveat_times(vec![1.0]);
    assert!(gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, SensAlg::ForwardAd).is_err());
    assert!(gradient(&prob, Algorithm::Rosenbrock23, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Auto)).is_err());
    assert!(gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, SensAlg::Auto).is_ok());
    // Data of the wrong size, and a model without its own VJP asked for one.
    assert!(gradient(&prob, Algorithm::Tsit5, &opts, &Loss::squared_error(vec![0.0; 3]), SensAlg::Auto).is_err());
    assert!(gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Model)).is_err());
    // Forward sensitivities of a 64-state stiff model would factor a dense 4288-state
    // augmented Jacobian: refused with a pointer to the adjoints, not an out-of-memory.
    let e = diffsim::models::lookup("brusselator-32").unwrap();
    let big = Problem::new(e.model, e.u0, e.p, (0.0, 1.0)).unwrap();
    let err = gradient(&big, Algorithm::Rodas5P, &opts, &Loss::Sum, SensAlg::Forward).unwrap_err().to_string();
    assert!(err.contains("adjoint"), "{err}");
}

/// A squared-error loss against data, with a missing (NaN) entry, through every method.
#[test]
fn squared_error_loss_against_data() {
    let prob = zoo("lotka-volterra", vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 3.0));
    let times = grid(3.0, 6);
    let mut data: Vec<f64> = (0..times.len() * 2).map(|i| 1.0 + 0.1 * i as f64).collect();
    data[5] = f64::NAN;
    check(&prob, &times, Loss::squared_error(data), Algorithm::Tsit5);
}

/// Save times that are not on the grid of steps, not including t0, and with Bs3 (whose
/// dense output uses the stage values) and Vern7 (whose dense output needs extra stages).
#[test]
fn discrete_adjoint_through_dense_output() {
    let prob = zoo("lotka-volterra", vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 2.0));
    let times = vec![0.37, 0.9, 1.41, 2.0];
    for alg in [Algorithm::Bs3, Algorithm::Vern7, Algorithm::Dp5] {
        check(&prob, &times, Loss::SumSq, alg);
    }
}

/// The test's own models, one type so that they share one instantiation of the gradient
/// stack. `Driven`: a damped oscillator driven through its own state, `x'' = -k x - c x' +
/// a sin(t) x`, non-autonomous, so the Rosenbrock steps' `h d_i df/dt` terms depend on `x`
/// and `a`. `WithNet`: `u' = A u + MLP(u)`, a small network inside the right-hand side.
/// `LvWithIntegral`: Lotka-Volterra with the running cost's integral written out as a third
/// state by hand, the independent reference for the running-cost gradients.
/// `UndeclaredSwitch`: Lotka-Volterra whose prey rate switches from `p[0]` to `p[4]` at
/// t = 1.5, a switch no tstop declares. `MovingSwitch`: its prey rate switches from `p[0]`
/// to `p[1]` at `t = p[3]`, a tstop. `SaturatingSpring`: `x'' = -k min(x, c)`, a kink in the
/// state. `Chain`: `u_i' = -a_i u_i + b_i u_{i-1} + c_i` with `u_{-1} = 1`, three parameters
/// per state. `Fhn(style)`: a FitzHugh-Nagumo model with fixed constants, p = [I, a, b],
/// written with plain-number operators (`v * v * v / 3.0`, `dw *= 0.9`) or, the same
/// arithmetic, with `scale` and `T::from_f64`.
#[derive(Clone)]
enum Custom {
    Fhn(Style),
    Driven,
    WithNet(diffsim::nn::Mlp),
    LvWithIntegral,
    UndeclaredSwitch,
    MovingSwitch,
    SaturatingSpring,
    Chain,
}

/// States of `Custom::Chain`.
const CHAIN: usize = 7;

impl Model for Custom {
    fn n_states(&self) -> usize {
        match self {
            Custom::LvWithIntegral => 3,
            Custom::Chain => CHAIN,
            _ => 2,
        }
    }
    fn n_params(&self) -> usize {
        match self {
            Custom::Driven => 3,
            Custom::WithNet(net) => net.n_params(),
            Custom::LvWithIntegral | Custom::MovingSwitch => 4,
            Custom::Fhn(_) => 3,
            Custom::UndeclaredSwitch => 5,
            Custom::SaturatingSpring => 2,
            Custom::Chain => 3 * CHAIN,
        }
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        match self {
            Custom::MovingSwitch => vec![p[3]],
            _ => Vec::new(),
        }
    }
    fn rhs<T: diffsim::Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        match self {
            Custom::Fhn(Style::Operators) => {
                let (v, w) = (u[0], u[1]);
                du[0] = (v - v * v * v / 3.0 - w + p[0]) * 2.5;
                du[0] -= 0.1;
                let mut dw = v + p[1] - w * p[2];
                dw /= 12.5;
                dw += 0.01;
                dw *= 0.9;
                du[1] = dw - w * 0.02 + t * 0.001;
            }
            Custom::Fhn(Style::Scale) => {
                let (v, w) = (u[0], u[1]);
                du[0] = (v - v * v * v / T::from_f64(3.0) - w + p[0]).scale(2.5);
                du[0] -= T::from_f64(0.1);
                let mut dw = v + p[1] - w * p[2];
                dw /= T::from_f64(12.5);
                dw += T::from_f64(0.01);
                dw = dw.scale(0.9);
                du[1] = dw - w.scale(0.02) + t.scale(0.001);
            }
            Custom::UndeclaredSwitch => {
                let a = if t <= T::from_f64(1.5) { p[0] } else { p[4] };
                du[0] = a * u[0] - p[1] * u[0] * u[1];
                du[1] = -p[2] * u[1] + p[3] * u[0] * u[1];
            }
            Custom::MovingSwitch => {
                let a = if t <= p[3] { p[0] } else { p[1] };
                du[0] = a * u[0] - u[0] * u[1];
                du[1] = -p[2] * u[1] + u[0] * u[1];
            }
            Custom::SaturatingSpring => {
                du[0] = u[1];
                du[1] = -p[0] * u[0].min(p[1]);
            }
            Custom::Chain => {
                for i in 0..CHAIN {
                    let upstream = if i == 0 { T::one() } else { u[i - 1] };
                    du[i] = -p[3 * i] * u[i] + p[3 * i + 1] * upstream + p[3 * i + 2];
                }
            }
            Custom::Driven => {
                du[0] = u[1];
                du[1] = -p[0] * u[0] - p[1] * u[1] + p[2] * t.sin() * u[0];
            }
            Custom::WithNet(net) => {
                net.forward(p, u, du);
                du[0] += u[1];
                du[1] -= u[0] + T::from_f64(0.1) * u[1];
            }
            Custom::LvWithIntegral => {
                du[0] = p[0] * u[0] - p[1] * u[0] * u[1];
                du[1] = -p[2] * u[1] + p[3] * u[0] * u[1];
                du[2] = p[1] * u[0] * u[1] + t.sin() * u[0];
            }
        }
    }
}

/// How `Custom::Fhn` writes its constants.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// `x * 2.5`, `x / 3.0`, `x += 0.01`: the `Scalar` operators with `f64`.
    Operators,
    /// `x.scale(2.5)`, `x / T::from_f64(3.0)`, `x += T::from_f64(0.01)`.
    Scale,
}

/// A model written with the plain-number operators gives the same solution and the same
/// gradient, by every kind of number the library differentiates with (duals through the
/// solver, dual Jacobians, the tape recorded and compiled, stiff steps), as the same model
/// written with `scale` and `T::from_f64`; and its gradient matches finite differences.
#[test]
fn plain_number_operators_give_the_same_solution_and_gradient() {
    let times = grid(4.0, 8);
    let make = |style| Problem::new(Custom::Fhn(style), vec![1.0, 0.5], vec![0.5, 0.7, 0.8], (0.0, 4.0)).unwrap();
    let (ops, scaled) = (make(Style::Operators), make(Style::Scale));
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(times.clone());
    for alg in [Algorithm::Tsit5, Algorithm::Rodas5P] {
        let (a, b) = (solve(&ops, alg, &opts).unwrap(), solve(&scaled, alg, &opts).unwrap());
        assert_eq!(a.u_flat(), b.u_flat(), "{alg}: solutions");
        for sensealg in [
            SensAlg::ForwardAd,
            SensAlg::Forward,
            SensAlg::Discrete(VjpMethod::Tape),
            SensAlg::Discrete(VjpMethod::CompiledTape),
            SensAlg::Interpolating(VjpMethod::Forward),
            SensAlg::Quadrature(VjpMethod::CompiledTape),
        ] {
            if alg == Algorithm::Rodas5P && sensealg == SensAlg::ForwardAd {
                continue; // forward AD runs the explicit methods only
            }
            let ga = gradient(&ops, alg, &opts, &Loss::SumSq, sensealg).unwrap();
            let gb = gradient(&scaled, alg, &opts, &Loss::SumSq, sensealg).unwrap();
            assert_eq!((&ga.dp, &ga.du0), (&gb.dp, &gb.du0), "{alg} {sensealg:?}: gradients");
            assert!(ga.dp.iter().chain(&ga.du0).all(|g| g.abs() > 1e-3), "{alg} {sensealg:?}: {ga:?}");
        }
    }
    let fd = finite_differences(&ops, &times, &Loss::SumSq);
    let g = gradient(&ops, Algorithm::Tsit5, &opts, &Loss::SumSq, SensAlg::ForwardAd).unwrap();
    let got: Vec<f64> = g.dp.iter().chain(&g.du0).copied().collect();
    assert!(worst_rel(&got, &fd) < 1e-6, "got {got:?}\n fd  {fd:?}");
}

/// The discrete adjoint (stored and checkpointed) through Rodas4 and Rodas5P steps: saves
/// on and off the step grid, a time-dependent model, every VJP method.
#[test]
fn discrete_adjoint_through_rosenbrock_steps() {
    let prob = Problem::new(Custom::Driven, vec![1.0, 0.0], vec![4.0, 0.3, 0.8], (0.0, 3.0)).unwrap();
    let times = vec![0.0, 0.37, 1.2, 2.05, 3.0];
    let reference = finite_differences(&prob, &times, &Loss::SumSq);
    let opts = SolveOptions::default().rtol(1e-11).atol(1e-11).saveat_times(times.clone());
    for alg in [Algorithm::Rodas4, Algorithm::Rodas5P] {
        for vjp in VJPS {
            for sensealg in [SensAlg::Discrete(vjp), SensAlg::DiscreteCheckpointing(vjp)] {
                if vjp == VjpMethod::FiniteDiff {
                    // Refused for stiff solves: its error is amplified by the stiff adjoint.
                    assert!(gradient(&prob, alg, &opts, &Loss::SumSq, sensealg).is_err());
                    continue;
                }
                let g = gradient(&prob, alg, &opts, &Loss::SumSq, sensealg).unwrap();
                let got: Vec<f64> = g.dp.iter().chain(&g.du0).copied().collect();
                let e = worst_rel(&got, &reference);
                assert!(e < 1e-6, "{alg} {sensealg:?}: relative error {e:.2e}\n got {got:?}\n fd  {reference:?}");
            }
        }
    }
}

/// A 48-state banded model takes the sparse Jacobian and sparse LU by default: the discrete
/// adjoint's transposed `W` solves and the stiff continuous adjoints' own Rosenbrock solves
/// then run on the sparse factors. Same gradients as with dense Jacobians, and the checked
/// dense path agrees with central differences.
#[test]
fn stiff_gradients_with_sparse_jacobians_match_dense_ones() {
    let e = diffsim::models::lookup("brusselator-24").unwrap();
    let prob = zoo("brusselator-24", e.u0, e.p, (0.0, 1.0));
    let times = vec![0.5, 1.0];
    let base = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(times.clone());
    let sparse = base.clone().jacobian(diffsim::JacobianMethod::SparseAd);
    let dense = base.jacobian(diffsim::JacobianMethod::ForwardAd);
    let fd = finite_differences(&prob, &times, &Loss::Sum);
    // Auto takes the discrete adjoint for a stiff model this large, interpolating for a small one.
    assert_eq!(SensAlg::Auto.resolve(&prob, Algorithm::Rodas5P).unwrap(), SensAlg::Discrete(VjpMethod::Auto));
    let small = zoo("robertson", vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1.0));
    assert_eq!(SensAlg::Auto.resolve(&small, Algorithm::Rodas5P).unwrap(), SensAlg::Interpolating(VjpMethod::Auto));
    for m in [SensAlg::Discrete(VjpMethod::Auto), SensAlg::Interpolating(VjpMethod::Auto)] {
        let g = |o: &SolveOptions| {
            let g = gradient(&prob, Algorithm::Rodas5P, o, &Loss::Sum, m).unwrap();
            [g.dp, g.du0].concat()
        };
        let (gs, gd) = (g(&sparse), g(&dense));
        assert!(worst_rel(&gs, &gd) < 1e-9, "{m:?}: sparse vs dense {}", worst_rel(&gs, &gd));
        assert!(worst_rel(&gd, &fd) < 1e-5, "{m:?}: dense vs differences {}", worst_rel(&gd, &fd));
    }
}

/// Backsolve restarts `u` from the forward solution at each save time: on Lorenz at 1e-8 its
/// gradient then agrees with the interpolating adjoint to about the tolerance (it was 1e-4
/// off when the backward `u` ran unrestarted over the whole span).
#[test]
fn backsolve_restarts_u_at_save_times() {
    let prob = zoo("lorenz", vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0));
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(grid(1.0, 10));
    let g = |m: SensAlg| {
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::SumSq, m).unwrap();
        [g.dp, g.du0].concat()
    };
    let (back, interp) = (g(SensAlg::Backsolve(VjpMethod::Forward)), g(SensAlg::Interpolating(VjpMethod::Forward)));
    let e = worst_rel(&back, &interp);
    assert!(e < 1e-6, "backsolve vs interpolating: {e:.2e}");
}

/// Robertson's p = (k1, k2, k3), a loss weighting y2 (~1e-5) up, and its gradient (times
/// p: the rate constants span nine decades) by central differences of tight Rodas5P solves.
fn robertson_reference(t1: f64, times: &[f64]) -> (Problem<ZooModel>, Loss, Vec<f64>) {
    let p = vec![0.04, 3e7, 1e4];
    let prob = zoo("robertson", vec![1.0, 0.0, 0.0], p.clone(), (0.0, t1));
    let weights: Vec<f64> = times.iter().flat_map(|_| [1.0, 1e4, 1.0]).collect();
    let loss = Loss::Weighted(weights.into());
    let tight = SolveOptions::default().rtol(1e-12).atol(1e-14).saveat_times(times.to_vec());
    let eval = |p: Vec<f64>| {
        let sol = solve(&prob.remake(None, Some(p)).unwrap(), Algorithm::Rodas5P, &tight).unwrap();
        loss.evaluate(sol.u_flat())
    };
    let fd = (0..3)
        .map(|i| {
            let h = 1e-4 * p[i];
            let (mut up, mut down) = (p.clone(), p.clone());
            up[i] += h;
            down[i] -= h;
            (eval(up) - eval(down)) / (2.0 * h) * p[i]
        })
        .collect();
    (prob, loss, fd)
}

/// A stiff problem: Robertson through Rodas5P, the adjoints solved backwards by Rodas5P.
#[test]
fn continuous_adjoints_and_forward_sensitivities_on_stiff_robertson() {
    let times = [0.4, 4.0, 40.0];
    let (prob, loss, fd) = robertson_reference(40.0, &times);
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-12).saveat_times(times.to_vec());
    let mut sensealgs = vec![SensAlg::Forward, SensAlg::Auto];
    for vjp in VJPS {
        sensealgs.extend([
            SensAlg::Discrete(vjp),
            SensAlg::DiscreteCheckpointing(vjp),
            SensAlg::Interpolating(vjp),
            SensAlg::Checkpointing(vjp),
            SensAlg::Quadrature(vjp),
        ]);
    }
    for sensealg in sensealgs {
        if sensealg.vjp() == Some(VjpMethod::FiniteDiff) {
            // Refused for stiff solves: its error is amplified by the stiff adjoint.
            assert!(gradient(&prob, Algorithm::Rodas5P, &opts, &loss, sensealg).is_err());
            continue;
        }
        let g = gradient(&prob, Algorithm::Rodas5P, &opts, &loss, sensealg).unwrap();
        let got: Vec<f64> = g.dp.iter().zip(prob.p()).map(|(d, p)| d * p).collect();
        let e = worst_rel(&got, &fd);
        assert!(e < 1e-6, "{sensealg:?}: relative error {e:.2e}\n got {got:?}\n fd  {fd:?}");
    }
}

/// Backwards in time Robertson's fast modes grow: the backsolve adjoint's u leaves the
/// forward trajectory and its gradient is wrong (or its solve fails), while the
/// checkpointed adjoint, which re-solves forwards, stays right.
#[test]
fn backsolve_goes_wrong_on_stiff_robertson_where_checkpointing_does_not() {
    let times = [1.0, 10.0, 100.0];
    let (prob, loss, fd) = robertson_reference(100.0, &times);
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-10).saveat_times(times.to_vec());
    let error = |sensealg| {
        gradient(&prob, Algorithm::Rodas5P, &opts, &loss, sensealg).map(|g| {
            let got: Vec<f64> = g.dp.iter().zip(prob.p()).map(|(d, p)| d * p).collect();
            worst_rel(&got, &fd)
        })
    };
    let right = error(SensAlg::Checkpointing(VjpMethod::Forward)).unwrap();
    let back = error(SensAlg::Backsolve(VjpMethod::Forward));
    eprintln!("checkpointing {right:.2e}, backsolve {back:?}");
    assert!(right < 1e-4, "checkpointed adjoint error {right:.2e}");
    if let Ok(e) = back {
        assert!(e > 1e-2, "backsolve error {e:.2e} (checkpointed {right:.2e})");
    }
}

use crate::common::Cost;

/// Every method differentiates `sum of saved values + integral of g` like central
/// differences of the hand-augmented model (save times without t1, so the integral's save
/// is added internally).
#[test]
fn running_cost_gradients_by_every_method() {
    let p = vec![1.5, 1.0, 3.0, 1.0];
    let times = vec![0.5, 1.0, 1.5];
    let t1 = 2.0;
    let by_hand = Problem::new(Custom::LvWithIntegral, vec![1.0, 1.0, 0.0], p.clone(), (0.0, t1)).unwrap();
    let tight = SolveOptions::default().rtol(1e-13).atol(1e-13).saveat_times(vec![0.5, 1.0, 1.5, t1]);
    let total = |p: Vec<f64>, u0: Vec<f64>| {
        let sol = solve(&by_hand.remake(Some(u0), Some(p)).unwrap(), Algorithm::Vern7, &tight).unwrap();
        (0..3).map(|i| sol.u(i)[0] + sol.u(i)[1]).sum::<f64>() + sol.u(3)[2]
    };
    let mut fd = Vec::new();
    for i in 0..6 {
        let h = 1e-5;
        let (mut pu, mut pd, mut uu, mut ud) = (p.clone(), p.clone(), vec![1.0, 1.0, 0.0], vec![1.0, 1.0, 0.0]);
        if i < 4 {
            pu[i] += h;
            pd[i] -= h;
        } else {
            uu[i - 4] += h;
            ud[i - 4] -= h;
        }
        fd.push((total(pu, uu) - total(pd, ud)) / (2.0 * h));
    }
    let prob = zoo("lotka-volterra", vec![1.0, 1.0], p.clone(), (0.0, t1));
    let opts = SolveOptions::default().rtol(1e-11).atol(1e-11).saveat_times(times);
    for sensealg in sensealgs() {
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum.plus_running_cost(Cost), sensealg).unwrap();
        assert!((g.loss - total(p.clone(), vec![1.0, 1.0, 0.0])).abs() < 1e-8, "{sensealg:?}: loss {}", g.loss);
        let got: Vec<f64> = g.dp.iter().chain(&g.du0).copied().collect();
        let e = worst_rel(&got, &fd);
        assert!(e < 1e-6, "{sensealg:?}: relative error {e:.2e}\n got {got:?}\n fd  {fd:?}");
    }
}

/// A small neural network inside the right-hand side (a 2-6-2 tanh MLP, 32 parameters, all
/// differentiated), through every sensealg x VJP method.
#[test]
fn every_method_through_a_small_mlp() {
    use diffsim::nn::{Activation, Init, Mlp};
    let net = Mlp::with_hidden(&[2, 6, 2], Activation::Tanh).unwrap();
    let p = net.init_params(Init::GlorotUniform, 3, 1.0);
    let prob = Problem::new(Custom::WithNet(net), vec![1.0, 0.5], p, (0.0, 2.0)).unwrap();
    check(&prob, &grid(2.0, 8), Loss::SumSq, Algorithm::Tsit5);
}
