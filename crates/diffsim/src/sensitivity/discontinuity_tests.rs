//! Gradients across switches in time and state, against central differences of tight
//! solves: the cases that once came out silently wrong (issue 17). The full matrix over
//! every method, model kind and data placement is `tests/it/gradients/matrix.rs`.

use super::test_models::TestModel::{self, *};
use super::{finite_difference_gradient, gradient, GradientWarning, Loss, SensAlg, VjpMethod};
use crate::error::DiffsimError;
use crate::problem::{Model, Problem};
use crate::solve::{Algorithm, SolveOptions};

/// Central differences of tight Vern7 solves (see [`finite_difference_gradient`]):
/// `[dL/dp..., dL/du0...]` of the sum of the saved values.
fn reference<M: Model>(prob: &Problem<M>, opts: &SolveOptions) -> Vec<f64> {
    finite_difference_gradient(prob, Algorithm::Tsit5, opts, &Loss::Sum).unwrap()
}

/// Worst relative error against `reference`, components scaled by the largest.
fn worst(g: &super::Gradient, reference: &[f64]) -> f64 {
    let scale = reference.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    g.dp.iter().chain(&g.du0).zip(reference).map(|(a, b)| (a - b).abs() / b.abs().max(1e-3 * scale)).fold(0.0, f64::max)
}

/// Every method but the value-norm demonstration, each with the default VJP.
fn methods() -> Vec<SensAlg> {
    SensAlg::NAMES
        .iter()
        .filter(|&&s| s != "forward-ad-value-norm")
        .map(|s| SensAlg::from_name(s, VjpMethod::Auto).unwrap())
        .collect()
}

fn every_tenth(t1: f64) -> Vec<f64> {
    (0..=(t1 * 10.0).round() as usize).map(|i| i as f64 * 0.1).collect()
}

/// `lv-piecewise` with its rate switching at the tstops 1, 2, 3, saved every 0.1 (data on
/// every switch): at a rest point of every piece (the steps then see nothing but the
/// switches) and away from it.
#[test]
fn every_method_is_right_across_declared_switches() {
    for (u0, p) in [(vec![1.0, 1.0], vec![1.0; 4]), (vec![1.2, 0.8], vec![1.0, 1.5, 0.5, 2.0])] {
        let prob = Problem::new(LvPiecewise, u0.clone(), p.clone(), (0.0, 4.0)).unwrap();
        let opts = SolveOptions::default().saveat_times(every_tenth(4.0));
        let fd = reference(&prob, &opts);
        let tight = opts.clone().rtol(1e-12).atol(1e-12);
        for m in methods() {
            let g = gradient(&prob, Algorithm::Tsit5, &tight, &Loss::Sum, m).unwrap();
            let e = worst(&g, &fd);
            assert!(e < 1e-6, "u0 {u0:?} p {p:?} {}: error {e:.2e}\n{:?}\nvs {fd:?}", m.name(), g.dp);
            assert!(g.warnings.is_empty(), "{}: {:?}", m.name(), g.warnings);
        }
    }
}

/// A rate switching at t = 1.3 inside `rhs`, not declared: the continuous adjoints control
/// `dL/dp` too, so they resolve the switch like every other method.
#[test]
fn every_method_is_right_across_an_undeclared_switch() {
    let prob = Problem::new(Undeclared, vec![1.0, 1.0], vec![1.5, 0.7, 1.0], (0.0, 3.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(every_tenth(3.0));
    let fd = reference(&prob, &opts);
    for m in methods() {
        let g = gradient(&prob, Algorithm::Tsit5, &opts.clone().rtol(1e-12).atol(1e-12), &Loss::Sum, m).unwrap();
        let e = worst(&g, &fd);
        assert!(e < 1e-6, "{}: error {e:.2e}", m.name());
    }
}

#[test]
fn a_switch_time_parameter_gets_its_derivative_or_an_error() {
    // Backwards too: the adjoints' jump term holds in either direction of integration.
    for (tspan, tau) in [((0.0, 3.0), 1.37), ((3.0, 0.0), 1.63)] {
        let prob = Problem::new(MovingSwitch, vec![1.0, 1.0], vec![1.5, 0.7, 1.0, tau], tspan).unwrap();
        let saves: Vec<f64> = every_tenth(3.0);
        let opts = SolveOptions::default().saveat_times(saves);
        let fd = reference(&prob, &opts);
        assert!(fd[3].abs() > 0.1, "the switch time matters: {fd:?}");
        for m in methods() {
            let tight = opts.clone().rtol(1e-12).atol(1e-12);
            match gradient(&prob, Algorithm::Tsit5, &tight, &Loss::Sum, m) {
                Ok(g) => {
                    let e = worst(&g, &fd);
                    assert!(e < 1e-6, "{tspan:?} {}: error {e:.2e}: {:?} vs {fd:?}", m.name(), g.dp);
                }
                Err(e) => {
                    assert!(matches!(m, SensAlg::Forward | SensAlg::ForwardAd), "{}: {e}", m.name());
                    assert!(e.to_string().contains("depends on the parameters"), "{e}");
                }
            }
        }
        // Auto avoids the forward methods here.
        let g = gradient(&prob, Algorithm::Tsit5, &opts.clone().rtol(1e-12).atol(1e-12), &Loss::Sum, SensAlg::Auto);
        assert!(worst(&g.unwrap(), &fd) < 1e-6);
    }
}

/// The switch compares time with a parameter but no tstop says so: the gradient is
/// missing the switch's term, and says so.
#[test]
fn an_undeclared_parameter_switch_is_reported() {
    let prob = Problem::new(HiddenSwitch, vec![1.0], vec![0.5, 0.5], (0.0, 1.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(vec![1.0]);
    let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Auto).unwrap();
    assert!(g.warnings.contains(&GradientWarning::UndeclaredParameterSwitch), "{:?}", g.warnings);
}

#[test]
fn a_kink_in_the_state_is_reported_and_auto_avoids_the_discrete_adjoint() {
    let prob = Problem::new(Saturating, vec![1.0, 0.0], vec![4.0, 0.5, 0.3], (0.0, 3.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(every_tenth(3.0)).rtol(1e-12).atol(1e-12);
    let fd = reference(&prob, &SolveOptions::default().saveat_times(every_tenth(3.0)));
    for m in [SensAlg::Auto, SensAlg::Interpolating(VjpMethod::Auto), SensAlg::Forward] {
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, m).unwrap();
        assert!(worst(&g, &fd) < 1e-6, "{}: {:.2e}", m.name(), worst(&g, &fd));
        assert_eq!(g.warnings, vec![GradientWarning::StateDependentSwitch], "{}", m.name());
    }
    let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Auto)).unwrap();
    assert!(g.warnings.contains(&GradientWarning::DiscreteAcrossStateSwitch), "{:?}", g.warnings);
}

#[test]
fn finite_difference_vjps_are_refused_for_stiff_solves() {
    let prob = Problem::new(LvPiecewise, vec![1.2, 0.8], vec![1.0; 4], (0.0, 4.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(vec![4.0]);
    for m in [SensAlg::Discrete(VjpMethod::FiniteDiff), SensAlg::Interpolating(VjpMethod::FiniteDiff)] {
        let e = gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, m).unwrap_err();
        assert!(matches!(e, DiffsimError::Unsupported { .. }), "{e}");
    }
    // Non-stiff solves keep them.
    assert!(gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::FiniteDiff)).is_ok());
}

/// Differencing `f` in the switch time across the switch itself gave dL/dtau off by 2x to
/// 600x: refused, while the other VJPs of the same adjoint stay.
#[test]
fn finite_difference_vjps_are_refused_where_a_switch_moves_with_p() {
    let prob = Problem::new(MovingSwitch, vec![1.0, 1.0], vec![1.5, 0.7, 1.0, 1.37], (0.0, 3.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(vec![3.0]);
    for m in [SensAlg::Discrete(VjpMethod::FiniteDiff), SensAlg::Quadrature(VjpMethod::FiniteDiff)] {
        let e = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, m).unwrap_err();
        assert!(e.to_string().contains("moves with p"), "{}: {e}", m.name());
    }
    assert!(gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Forward)).is_ok());
}

#[test]
fn auto_works_with_the_switching_solver() {
    let prob = Problem::new(LvPiecewise, vec![1.2, 0.8], vec![1.0, 1.5, 0.5, 2.0], (0.0, 4.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(every_tenth(4.0));
    let fd = reference(&prob, &opts);
    let g = gradient(&prob, Algorithm::Auto, &opts.clone().rtol(1e-10).atol(1e-10), &Loss::Sum, SensAlg::Auto).unwrap();
    assert!(worst(&g, &fd) < 1e-6, "{:.2e}", worst(&g, &fd));
}

#[test]
fn per_component_tolerances_work_with_the_continuous_adjoints() {
    let prob = Problem::new(LvPiecewise, vec![1.2, 0.8], vec![1.0, 1.5, 0.5, 2.0], (0.0, 4.0)).unwrap();
    let opts = SolveOptions::default().saveat_times(every_tenth(4.0));
    let fd = reference(&prob, &opts);
    let per = opts.clone().rtol(1e-11).atol(vec![1e-11, 1e-12]);
    for m in methods() {
        let g = gradient(&prob, Algorithm::Tsit5, &per, &Loss::Sum, m).unwrap();
        assert!(worst(&g, &fd) < 1e-6, "{}: {:.2e}", m.name(), worst(&g, &fd));
    }
}

/// The convective column is large enough that `Auto` would take the discrete adjoint for a
/// stiff method, if the model did not branch on its state.
#[test]
fn auto_never_takes_the_discrete_adjoint_through_state_switches() {
    let u0: Vec<f64> = (0..32).map(|i| (i as f64 * 0.7).sin()).collect();
    let prob = Problem::new(TestModel::Column, u0, vec![10.0, 0.1], (0.0, 1.0)).unwrap();
    for alg in [Algorithm::Rodas5P, Algorithm::Tsit5] {
        assert_eq!(SensAlg::Auto.resolve(&prob, alg).unwrap(), SensAlg::Interpolating(VjpMethod::Auto), "{alg:?}");
    }
}
