//! A model's own derivatives are used on every path that can use them, through every
//! wrapper the library puts around a model (a borrow, the forward solve's recording, a running
//! cost's augmented state, the forward-sensitivity system), and the gradients they give are
//! right (against central differences of tight solves).

use super::running_cost::WithCost;
use super::test_models::{take_calls, Calls, TestCost, TestModel};
use super::{finite_difference_gradient, gradient, Gradient, Loss, SavedLoss, SensAlg, VjpMethod};
use crate::ad::{ForwardJacobian, Vjp};
use crate::models::Robertson;
use crate::problem::{Model, Problem};
use crate::solve::{solve, Algorithm, SolveOptions};

fn problem() -> Problem<TestModel> {
    Problem::new(TestModel::Capable, vec![1.5], vec![0.8, 0.6], (0.0, 3.0)).unwrap()
}

fn opts() -> SolveOptions {
    SolveOptions::default().rtol(1e-9).atol(1e-9).saveat_times(vec![0.5, 1.0, 2.0, 3.0])
}

/// `gradient` against central differences: worst relative error of `[dL/dp, dL/du0]`.
fn error(g: &Gradient, reference: &[f64]) -> f64 {
    let got = g.dp.iter().chain(&g.du0);
    got.zip(reference).map(|(a, b)| (a - b).abs() / b.abs().max(1e-3)).fold(0.0, f64::max)
}

#[test]
fn the_stiff_solvers_use_the_models_jacobian_and_time_derivative_even_borrowed() {
    let prob = problem();
    for borrowed in [false, true] {
        take_calls();
        let sol = if borrowed {
            let by_ref = Problem::new(prob.model(), prob.u0().to_vec(), prob.p().to_vec(), prob.tspan()).unwrap();
            crate::solve::solve_rodas5p(&by_ref, &opts()).unwrap()
        } else {
            solve(&prob, Algorithm::Rodas5P, &opts()).unwrap()
        };
        let calls = take_calls();
        assert!(
            sol.stats.njac > 0 && calls.jacobian == sol.stats.njac,
            "borrowed {borrowed}: {calls:?} {:?}",
            sol.stats
        );
        assert_eq!(calls.time_derivative, sol.stats.njac, "borrowed {borrowed}");
    }
}

#[test]
fn a_stated_sparsity_reaches_through_every_wrapper() {
    let model = TestModel::Capable;
    let stated = |d: crate::capabilities::Derivatives<'_>| d.jacobian_sparsity().map(|s| s.jacobian_sparsity());
    let borrowed: &TestModel = &model;
    assert_eq!(stated(Model::derivatives(&borrowed)), Some(vec![(0, 0)]));
    // The running cost's state adds its row.
    let with_cost = WithCost { model: &model, cost: &TestCost };
    assert_eq!(stated(with_cost.derivatives()), Some(vec![(0, 0), (1, 0)]));
    assert_eq!(stated(TestModel::Decay.derivatives()), None);
}

#[test]
fn every_adjoint_uses_the_models_vjp_and_every_gradient_is_right() {
    let prob = problem();
    let reference = finite_difference_gradient(&prob, Algorithm::Tsit5, &opts(), &Loss::Sum).unwrap();
    // (solver, method, what must have been called)
    type Expect = fn(&Calls) -> bool;
    let cases: [(Algorithm, SensAlg, Expect); 9] = [
        (Algorithm::Tsit5, SensAlg::Discrete(VjpMethod::Auto), |c| c.rhs_record > 0 && c.from_record > 0),
        (Algorithm::Tsit5, SensAlg::Interpolating(VjpMethod::Auto), |c| c.vjp > 0),
        (Algorithm::Tsit5, SensAlg::Checkpointing(VjpMethod::Model), |c| c.vjp > 0),
        (Algorithm::Tsit5, SensAlg::Quadrature(VjpMethod::Auto), |c| c.vjp > 0),
        (Algorithm::Tsit5, SensAlg::Backsolve(VjpMethod::Auto), |c| c.vjp > 0),
        (Algorithm::Rodas5P, SensAlg::Discrete(VjpMethod::Auto), |c| c.vjp > 0 && c.jacobian > 0),
        (Algorithm::Rodas5P, SensAlg::Interpolating(VjpMethod::Auto), |c| c.vjp > 0 && c.time_derivative > 0),
        // The forward-sensitivity system's Jacobian starts from the model's.
        (Algorithm::Rodas5P, SensAlg::Forward, |c| c.jacobian > 0),
        (Algorithm::Tsit5, SensAlg::DiscreteCheckpointing(VjpMethod::Auto), |c| c.vjp > 0),
    ];
    for (alg, sensealg, expect) in cases {
        take_calls();
        let g = gradient(&prob, alg, &opts(), &Loss::Sum, sensealg).unwrap();
        let calls = take_calls();
        assert!(expect(&calls), "{alg} {}: {calls:?}", sensealg.name());
        assert!(error(&g, &reference) < 1e-6, "{alg} {}: {g:?} vs {reference:?}", sensealg.name());
    }
}

#[test]
fn a_running_cost_keeps_the_models_derivatives() {
    let prob = problem();
    // The running cost's gradient by forward sensitivities (no model VJP involved).
    let reference =
        gradient(&prob, Algorithm::Vern7, &opts(), &Loss::Sum.plus_running_cost(TestCost), SensAlg::Forward).unwrap();
    let reference: Vec<f64> = reference.dp.iter().chain(&reference.du0).copied().collect();
    type Expect = fn(&Calls) -> bool;
    let cases: [(Algorithm, SensAlg, Expect); 4] = [
        (Algorithm::Tsit5, SensAlg::Discrete(VjpMethod::Auto), |c| c.rhs_record > 0 && c.from_record > 0),
        (Algorithm::Tsit5, SensAlg::Interpolating(VjpMethod::Model), |c| c.vjp > 0),
        (Algorithm::Rodas5P, SensAlg::Discrete(VjpMethod::Auto), |c| c.vjp > 0 && c.jacobian > 0),
        (Algorithm::Rodas5P, SensAlg::Quadrature(VjpMethod::Auto), |c| c.time_derivative > 0 && c.vjp > 0),
    ];
    for (alg, sensealg, expect) in cases {
        take_calls();
        let g = gradient(&prob, alg, &opts(), &Loss::Sum.plus_running_cost(TestCost), sensealg).unwrap();
        let calls = take_calls();
        assert!(expect(&calls), "{alg} {}: {calls:?}", sensealg.name());
        assert!(error(&g, &reference) < 1e-6, "{alg} {}: {g:?} vs {reference:?}", sensealg.name());
    }
}

/// The running cost's augmented Jacobian, `df/dt` and VJP against forward-mode AD of the
/// augmented right-hand side, on a model with several states (Robertson's own Jacobian).
#[test]
fn the_running_costs_derivatives_match_ad_of_the_augmented_system() {
    let with_cost = WithCost { model: &Robertson, cost: &TestCost };
    let (u, p, t) = ([0.8, 2e-5, 0.2, 0.7], [0.04, 3e7, 1e4], 0.3);
    let own = with_cost.derivatives();
    let (mut jac, mut dfdt) = (vec![f64::NAN; 16], vec![f64::NAN; 4]);
    own.analytic_jacobian().expect("Robertson's Jacobian is kept").jacobian(&mut jac, &u, &p, t);
    assert!(!own.has_time_derivative(), "Robertson has no df/dt of its own");
    let (mut ad_jac, mut ad_dfdt) = (vec![0.0; 16], vec![0.0; 4]);
    ForwardJacobian::new(4, 3).evaluate(&with_cost, &u, &p, t, &mut ad_jac, Some(&mut ad_dfdt));
    for (i, (a, b)) in jac.iter().zip(&ad_jac).enumerate() {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "entry {i}: {a} vs {b}");
    }
    // The 1-state model with every capability: df/dt and the VJP.
    let capable = WithCost { model: &TestModel::Capable, cost: &TestCost };
    let (u, p) = ([0.7, 0.4], [0.8, 0.6]);
    let own = capable.derivatives();
    own.analytic_time_derivative().unwrap().time_derivative(&mut dfdt[..2], &u, &p, t);
    ForwardJacobian::new(2, 2).evaluate(&capable, &u, &p, t, &mut ad_jac[..4], Some(&mut ad_dfdt[..2]));
    assert!((dfdt[0] - ad_dfdt[0]).abs() < 1e-14 && (dfdt[1] - ad_dfdt[1]).abs() < 1e-14, "{dfdt:?} {ad_dfdt:?}");
    let w = [0.3, -1.2];
    let (mut mine, mut ad) = ((vec![0.0; 2], vec![0.0; 2]), (vec![0.0; 2], vec![0.0; 2]));
    Vjp::new(&capable, VjpMethod::Model).unwrap().apply(&capable, &w, &u, &p, t, &mut mine.0, &mut mine.1);
    Vjp::new(&capable, VjpMethod::Forward).unwrap().apply(&capable, &w, &u, &p, t, &mut ad.0, &mut ad.1);
    for (a, b) in mine.0.iter().chain(&mine.1).zip(ad.0.iter().chain(&ad.1)) {
        assert!((a - b).abs() < 1e-14, "{mine:?} vs {ad:?}");
    }
}
