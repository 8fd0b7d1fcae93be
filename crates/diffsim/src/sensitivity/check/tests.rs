//! Tests of the gradient check: it passes a right gradient, fails a wrong one, and its
//! reference meets a closed form.

use super::*;
use crate::sensitivity::test_models::TestModel::{self, BlowUp, Decay, Lv, WrongVjp};
use crate::sensitivity::{Loss, VjpMethod};

const DECAY_SAVES: [f64; 3] = [0.5, 1.0, 2.0];

fn decay() -> (Problem<TestModel>, SolveOptions) {
    let prob = Problem::new(Decay, vec![2.0], vec![0.7], (0.0, 2.0)).unwrap();
    (prob, SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(DECAY_SAVES.to_vec()))
}

/// `[dL/dp, dL/du0]` of `L = sum_k u0 exp(-p t_k)`.
fn decay_closed_form(p: f64, u0: f64) -> [f64; 2] {
    let dp = DECAY_SAVES.iter().map(|t| -t * u0 * (-p * t).exp()).sum();
    let du0 = DECAY_SAVES.iter().map(|t| (-p * t).exp()).sum();
    [dp, du0]
}

/// The closed form's `[dL/dp, dL/du0]` against `fd`, relative.
fn decay_errors(fd: &[f64]) -> [f64; 2] {
    let exact = decay_closed_form(0.7, 2.0);
    [0, 1].map(|i| (fd[i] - exact[i]).abs() / exact[i].abs())
}

/// A loss of the user's own (the predators' product over the saves, nonlinear and
/// coupling every save) is checked like the built-in ones, through `SaveAt::End` too.
#[test]
fn a_loss_of_ones_own_is_checked() {
    struct Product;
    impl SavedLoss for Product {
        fn evaluate<T: crate::scalar::Scalar>(&self, v: &[T]) -> T {
            let mut acc = T::one();
            for save in v.chunks(2) {
                acc *= save[1];
            }
            acc
        }
    }
    let prob = Problem::new(Lv, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
    for opts in [
        SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![0.25, 0.5, 1.0]),
        SolveOptions::default().rtol(1e-10).atol(1e-10).save_end(),
    ] {
        for sensealg in [SensAlg::ForwardAd, SensAlg::Discrete(VjpMethod::Auto)] {
            let check = gradient_check(&prob, Algorithm::Tsit5, &opts, &Product, sensealg).unwrap();
            assert!(check.max_rel_err < 1e-6, "{sensealg:?}: {check}");
        }
    }
}

#[test]
fn a_correct_gradient_passes_and_the_table_names_every_input() {
    let prob = Problem::new(Lv, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![0.25, 0.5, 0.75, 1.0]);
    let check = gradient_check(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::ForwardAd).unwrap();
    assert!(check.max_rel_err < 1e-7, "{check}");
    assert_eq!((check.fd.len(), check.rel_err.len()), (6, 6));
    let (i, name) = check.worst().unwrap();
    assert_eq!((check.rel_err[i], name.clone()), (check.max_rel_err, check.name(i)));
    let table = check.to_string();
    for input in ["p[0]", "p[3]", "u0[0]", "u0[1]"] {
        assert!(table.contains(input), "{table}");
    }
    assert!(table.ends_with(&format!("at {name}")), "{table}");
}

/// The reference against `dL/dp = -sum t u0 exp(-p t)`, `dL/du0 = sum exp(-p t)`, through
/// both reference methods.
#[test]
fn the_reference_matches_a_closed_form() {
    let (prob, opts) = decay();
    for alg in [Algorithm::Tsit5, Algorithm::Rodas4] {
        let fd = finite_difference_gradient(&prob, alg, &opts, &Loss::Sum).unwrap();
        let err = decay_errors(&fd);
        assert!(err.iter().all(|e| *e < 1e-8), "{alg}: {fd:?}, errors {err:?}");
    }
}

/// Tenfold or more worse a hundred times larger (truncation) and a thousand times
/// smaller (the solves' error over `h`): the step sits between the two.
#[test]
fn the_step_balances_truncation_and_solve_error() {
    let (prob, opts) = decay();
    let reference = Reference::new(&prob, Algorithm::Tsit5, &opts, &Loss::Sum).unwrap();
    let dp_err = |rel_step| decay_errors(&[reference.derivative(Input::Param(0), rel_step).unwrap(), 0.0])[0];
    let chosen = dp_err(REL_STEP);
    assert!(chosen < 1e-10, "{chosen:e}");
    for other in [REL_STEP * 100.0, REL_STEP / 1000.0] {
        assert!(dp_err(other) > 10.0 * chosen, "step {other:e}: {:e} vs {chosen:e}", dp_err(other));
    }
}

#[test]
fn richardson_cancels_the_h_squared_term() {
    let (x, h) = (0.3_f64, 0.1);
    let central = |h: f64| ((x + h).sin() - (x - h).sin()) / (2.0 * h);
    let plain = (central(h) - x.cos()).abs();
    let extrapolated = (richardson(central(h), central(h / 2.0)) - x.cos()).abs();
    assert!(plain > 1e-3 && extrapolated < 1e-3 * plain, "{plain:e} {extrapolated:e}");
}

#[test]
fn a_wrong_gradient_fails_the_check() {
    let prob = Problem::new(WrongVjp, vec![2.0], vec![0.7], (0.0, 2.0)).unwrap();
    let (_, opts) = decay();
    let check =
        gradient_check(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Interpolating(VjpMethod::Model)).unwrap();
    assert!(check.max_rel_err > 0.1, "{check}");
    assert_eq!(check.worst(), Some((0, "p[0]".to_string())));
    assert!(check.rel_err[1] < 1e-7, "dL/du0 does not use the wrong part: {check}");
}

#[test]
fn relative_errors_follow_their_definition() {
    let gradient = |dp: Vec<f64>, du0: Vec<f64>| Gradient {
        loss: 0.0,
        dp,
        du0,
        stats: Default::default(),
        warnings: Vec::new(),
        sensealg: SensAlg::Forward,
    };
    // Relative to |fd|, and to 1e-8 of the largest |fd| where the reference is zero.
    let check = GradientCheck::new(gradient(vec![1.5, 1e-9], vec![0.0]), vec![1.0, 0.0, 0.0]).unwrap();
    assert_eq!(check.rel_err, vec![0.5, 1e-9 / 1e-8, 0.0]);
    assert_eq!((check.max_rel_err, check.worst()), (0.5, Some((0, "p[0]".into()))));
    // A NaN is the worst error.
    let check = GradientCheck::new(gradient(vec![2.0], vec![f64::NAN]), vec![1.0, 1.0]).unwrap();
    assert!(check.max_rel_err.is_nan());
    assert_eq!(check.worst(), Some((1, "u0[0]".into())));
    // Sizes are checked.
    assert!(GradientCheck::new(gradient(vec![1.0], vec![1.0]), vec![1.0]).is_err());
}

#[test]
fn a_moved_solve_that_fails_names_the_input() {
    // Blows up at t = 1 for p0 = 1; moved up by 1e-3 before the span ends at 0.9995.
    let prob = Problem::new(BlowUp, vec![1.0], vec![1.0], (0.0, 0.9995)).unwrap();
    let opts = SolveOptions::default().saveat_times(vec![0.9995]);
    let err = finite_difference_gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum).unwrap_err().to_string();
    assert!(err.contains("p[0] = 1.001"), "{err}");
}

#[test]
fn auto_is_checked_with_the_method_its_solve_ends_with() {
    let (prob, opts) = decay();
    assert_eq!(reference_algorithm(&prob, Algorithm::Auto, &opts).unwrap(), Algorithm::Vern7);
    let stiff = Problem::new(Decay, vec![1.0], vec![1e5], (0.0, 2.0)).unwrap();
    assert_eq!(reference_algorithm(&stiff, Algorithm::Auto, &opts).unwrap(), Algorithm::Rodas5P);
}
