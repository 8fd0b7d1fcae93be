//! Mass matrices in their three forms: a DAE given by its algebraic states, by its diagonal
//! and by the equivalent dense matrix has the same solution with every stiff method; a
//! non-trivial diagonal and a coupled dense matrix on ODEs against their analytic solutions;
//! a matrix of the wrong size is refused.

use diffsim::capabilities::Derivatives;
use diffsim::models::lookup;
use diffsim::{solve, Algorithm, DiffsimError, MassMatrix, Model, Problem, Scalar, SolveOptions};

/// The stiff methods that take a mass matrix.
const STIFF: [Algorithm; 5] =
    [Algorithm::Rodas5P, Algorithm::Rodas4, Algorithm::Rosenbrock23, Algorithm::Bdf, Algorithm::Radau5];

/// A zoo model with the mass matrix given here instead of its own.
#[derive(Debug)]
struct WithMass<M> {
    inner: M,
    mass: MassMatrix,
}

impl<M: Model> Model for WithMass<M> {
    fn n_states(&self) -> usize {
        self.inner.n_states()
    }
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        self.inner.rhs(du, u, p, t)
    }
    fn mass_matrix(&self) -> Option<MassMatrix> {
        Some(self.mass.clone())
    }
    fn derivatives(&self) -> Derivatives<'_> {
        self.inner.derivatives()
    }
}

/// The three forms of the identity with zeros at `algebraic`.
fn three_forms(n: usize, algebraic: &[usize]) -> [(&'static str, MassMatrix); 3] {
    let states = MassMatrix::algebraic_states(n, algebraic).unwrap();
    let diagonal = MassMatrix::diagonal((0..n).map(|i| if algebraic.contains(&i) { 0.0 } else { 1.0 }).collect());
    let dense = MassMatrix::dense(n, states.to_dense()).unwrap();
    assert!(states.is_diagonal() && !dense.is_diagonal(), "the forms take different paths");
    [("algebraic_states", states), ("diagonal", diagonal.unwrap()), ("dense", dense)]
}

/// The largest difference of `a` from `b`, relative to `b` (absolute below `floor`).
fn max_rel_diff(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(floor)).fold(0.0, f64::max)
}

/// Akzo Nobel (state 5 algebraic) and Robertson as a DAE (state 2 algebraic), each solved
/// with its mass matrix in the three forms: the same saved states, to rounding, with
/// Rodas5P, Rodas4, Rosenbrock23, BDF and Radau5; and the DAE is solved (the constraint
/// holds at the end, the differential states have moved).
#[test]
fn the_three_forms_of_a_dae_mass_matrix_give_the_same_solution() {
    for (name, algebraic, t1) in [("akzo", 5, 20.0), ("robertson-dae", 2, 40.0)] {
        let entry = lookup(name).unwrap();
        let n = entry.u0.len();
        let times: Vec<f64> = (1..=8).map(|k| t1 * k as f64 / 8.0).collect();
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-10).saveat_times(times);
        for alg in STIFF {
            let solutions: Vec<(&str, Vec<f64>)> = three_forms(n, &[algebraic])
                .into_iter()
                .map(|(form, mass)| {
                    let model = WithMass { inner: entry.model, mass };
                    let prob = Problem::new(model, entry.u0.clone(), entry.p.clone(), (0.0, t1)).unwrap();
                    let sol = solve(&prob, alg, &opts).unwrap();
                    assert!(sol.retcode().is_success(), "{name} {alg} {form}: {:?}", sol.retcode());
                    assert_eq!(sol.len(), 8, "{name} {alg} {form}");
                    // On the constraint at the end: f's algebraic component is zero.
                    let mut f = vec![0.0; n];
                    prob.model().rhs(&mut f, sol.u_final(), &entry.p, t1);
                    assert!(f[algebraic].abs() < 1e-7, "{name} {alg} {form}: constraint residual {}", f[algebraic]);
                    (form, sol.u_flat().to_vec())
                })
                .collect();
            let (_, reference) = &solutions[0];
            let moved = max_rel_diff(&reference[reference.len() - n..], &entry.u0, 1e-3);
            assert!(moved > 1e-2, "{name} {alg}: the solution should move ({moved})");
            for (form, u) in &solutions[1..] {
                let d = max_rel_diff(u, reference, 1e-12);
                assert!(d <= 1e-12, "{name} {alg}: {form} differs from algebraic_states by {d:e} (relative)");
            }
        }
    }
}

/// `2 u0' = -k u0`, `u1' = -u1` (M = diag(2, 1)): `u0 = e^(-k t / 2)`, `u1 = e^(-t)`.
struct HalfSpeed;
impl Model for HalfSpeed {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = -p[0] * u[0];
        du[1] = -u[1];
    }
    fn mass_matrix(&self) -> Option<MassMatrix> {
        Some(MassMatrix::diagonal(vec![2.0, 1.0]).expect("finite"))
    }
}

/// A non-trivial diagonal on an ODE against the analytic solution, for every stiff method:
/// the first state decays at half the rate `f` gives it (ignoring `M` would be off by a
/// factor e^1.5 at the end).
#[test]
fn a_diagonal_mass_matrix_divides_the_derivative() {
    let k = 3.0;
    let prob = Problem::new(HalfSpeed, vec![1.0, 1.0], vec![k], (0.0, 1.0)).unwrap();
    let times: Vec<f64> = (1..=10).map(|i| i as f64 / 10.0).collect();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-12).saveat_times(times.clone());
    for alg in STIFF.into_iter().chain([Algorithm::Auto]) {
        let sol = solve(&prob, alg, &opts).unwrap();
        assert!(sol.retcode().is_success(), "{alg}: {:?}", sol.retcode());
        for (i, &t) in times.iter().enumerate() {
            let exact = [(-k * t / 2.0).exp(), (-t).exp()];
            // Rosenbrock23 is of order 2: at rtol 1e-10 its global error is larger.
            let bound = if alg == Algorithm::Rosenbrock23 { 1e-7 } else { 1e-8 };
            let d = max_rel_diff(sol.u(i), &exact, 1.0);
            assert!(d < bound, "{alg} at t = {t}: {:?} vs {exact:?} ({d:e})", sol.u(i));
        }
    }
    // The explicit methods cannot take a mass matrix, whatever its form.
    let e = solve(&prob, Algorithm::Tsit5, &opts).unwrap_err();
    assert!(matches!(e, DiffsimError::Unsupported { .. }), "{e}");
}

/// `f = -u` on two states.
#[derive(Clone, Copy)]
struct Decay;
impl Model for Decay {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
        du[0] = -u[0];
        du[1] = -u[1];
    }
}

/// A coupled dense matrix on an ODE: `M = [[2, 1], [0, 1]]`, `f = -u`, so
/// `u1 = e^(-t)` and `u0 = 2 e^(-t/2) - e^(-t)` from `u = (1, 1)`.
#[test]
fn a_coupled_dense_mass_matrix_against_the_analytic_solution() {
    let mass = MassMatrix::dense(2, vec![2.0, 1.0, 0.0, 1.0]).unwrap();
    assert!(!mass.is_diagonal() && mass.algebraic_state_indices().is_empty());
    let prob = Problem::new(WithMass { inner: Decay, mass }, vec![1.0, 1.0], vec![], (0.0, 2.0)).unwrap();
    let times: Vec<f64> = (1..=10).map(|i| i as f64 / 5.0).collect();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-12).saveat_times(times.clone());
    for alg in [Algorithm::Rodas5P, Algorithm::Bdf, Algorithm::Radau5] {
        let sol = solve(&prob, alg, &opts).unwrap();
        assert!(sol.retcode().is_success(), "{alg}: {:?}", sol.retcode());
        for (i, &t) in times.iter().enumerate() {
            let exact = [2.0 * (-t / 2.0).exp() - (-t).exp(), (-t).exp()];
            let d = max_rel_diff(sol.u(i), &exact, 1.0);
            assert!(d < 1e-8, "{alg} at t = {t}: {:?} vs {exact:?} ({d:e})", sol.u(i));
        }
    }
}

/// A mass matrix with another size than the model's state is refused when the problem is
/// built, with a message that says both sizes.
#[test]
fn a_mass_matrix_of_another_size_is_refused() {
    let entry = lookup("robertson-dae").unwrap();
    let model = WithMass { inner: entry.model, mass: MassMatrix::algebraic_states(4, &[2]).unwrap() };
    let e = Problem::new(model, entry.u0.clone(), entry.p.clone(), (0.0, 1.0)).unwrap_err();
    assert!(
        matches!(&e, DiffsimError::InvalidModel { why } if why.contains("4 x 4") && why.contains("3 states")),
        "{e}"
    );
}
