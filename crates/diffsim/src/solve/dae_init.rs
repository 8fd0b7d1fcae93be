//! A consistent start for index-1 DAEs in semi-explicit form: the algebraic states are
//! solved from the constraints before the first step.
//!
//! A mass matrix with zero rows (the equations `0 = g(u, p, t)`) and as many zero columns
//! (the algebraic states, whose derivatives no equation involves) is a semi-explicit DAE.
//! Started where `g != 0`, no step can satisfy the constraints: Rosenbrock23 rejects every
//! step at `t0` and the stiffly accurate Rodas methods land on the constraint in their first
//! step, from a state other than the one given, and report success. So before the first
//! step the algebraic states are corrected by Newton's method on `g(u_d, u_a, p, t0) = 0`
//! with the differential states held (the choice of Brown, Hindmarsh and Petzold's
//! initialisation for this form: the differential states are what a user sets). A start
//! whose Newton correction is below a hundredth of the tolerance is kept as given, bit for
//! bit, and so is a start where the constraints' Jacobian in the algebraic states is
//! singular (not index 1 there) and any other singular mass matrix: the solver starts from
//! them as before. The saved state at `t0` is the corrected one.

use super::linalg::{factors_by_columns, lu_factor, lu_solve};
use super::options::{JacobianMethod, SolveOptions};
use super::solution::Stats;
use crate::ad::Dual;
use crate::error::{DiffsimError, Result};
use crate::mass::MassMatrix;
use crate::problem::{check_inputs, Model};

/// Newton corrections (in units of the tolerance) below which the algebraic states are
/// consistent: a hundredth of the error the solve itself allows.
const CONSISTENT: f64 = 0.01;

/// Newton iterations before the start is declared impossible to make consistent.
const MAX_ITERS: usize = 20;

/// Which states are algebraic and which equations constrain them, read off the mass matrix.
struct Split {
    /// Rows of the mass matrix that are zero: the algebraic equations.
    equations: Vec<usize>,
    /// Columns that are zero: the algebraic states.
    states: Vec<usize>,
}

impl Split {
    /// The split of a semi-explicit mass matrix; `None` when it has no zero row, or its zero
    /// rows and zero columns differ in number. A diagonal one's zeros are both.
    fn of(mass: &MassMatrix) -> Option<Self> {
        let equations = mass.algebraic_equation_indices();
        let states = mass.algebraic_state_indices();
        (!equations.is_empty() && equations.len() == states.len()).then_some(Self { equations, states })
    }
}

/// The start of a solve of `model` from `u0` over `tspan`: `None` when `u0` is consistent,
/// or the model is not a semi-explicit DAE of index 1 at `u0` (its constraints' Jacobian in
/// the algebraic states is singular there; the solver then starts from `u0` as given), else
/// `u0` with its algebraic states solved from the constraints. Also the work it took.
///
/// Errors: a Newton correction that is not finite, or no convergence.
pub(crate) fn consistent_start<M: Model>(
    model: &M,
    u0: &[f64],
    p: &[f64],
    tspan: (f64, f64),
    opts: &SolveOptions,
) -> Result<(Option<Vec<f64>>, Stats)> {
    let mut stats = Stats::default();
    let Some(mass) = model.mass_matrix() else { return Ok((None, stats)) };
    check_inputs(model, u0, p, tspan)?;
    let t0 = tspan.0;
    let n = u0.len();
    if mass.n() != n {
        return Err(DiffsimError::InvalidModel {
            why: format!(
                "mass_matrix() is {k} x {k} but the model has {n} states; build it for n_states() = {n} states",
                k = mass.n()
            ),
        });
    }
    let Some(split) = Split::of(&mass) else { return Ok((None, stats)) };
    let (atol, rtol) = (opts.atol.expand(n, "atol")?, opts.rtol.expand(n, "rtol")?);
    let m = split.states.len();
    let mut u = u0.to_vec();
    let mut f = vec![0.0; n];
    let mut block = vec![0.0; m * m];
    let mut cols = vec![0.0; m * m];
    let mut piv = vec![0; m];
    let mut delta = vec![0.0; m];
    for iter in 0..MAX_ITERS {
        model.rhs(&mut f, &u, p, t0);
        stats.nf += 1;
        for (r, &i) in split.equations.iter().enumerate() {
            delta[r] = f[i];
        }
        // Exactly on the constraints (or not finite there: the solver reports that).
        if delta.iter().all(|&g| g == 0.0) || delta.iter().any(|g| !g.is_finite()) {
            return Ok(((iter > 0).then_some(u), stats));
        }
        // Newton step: J_aa delta = g(u).
        block_jacobian(model, &u, p, t0, &split, opts.jacobian, &f, &mut block, &mut stats);
        stats.njac += 1;
        stats.nlu += 1;
        if !lu_factor(&mut block, &mut piv, m) {
            // Not of index 1 here: leave the start to the solver, as given.
            return Ok((None, stats));
        }
        factors_by_columns(&block, m, &mut cols);
        lu_solve(&cols, &piv, m, &mut delta);
        if delta.iter().any(|d| !d.is_finite()) {
            return Err(inconsistent(format!(
                "the Newton correction of the algebraic states is not finite (iteration {iter}); give algebraic \
                 states closer to the constraints"
            )));
        }
        // The correction's size in units of the tolerance (NaN-free: the scales are positive
        // or the correction is zero).
        let size = split
            .states
            .iter()
            .zip(&delta)
            .map(|(&j, d)| if *d == 0.0 { 0.0 } else { d.abs() / (atol[j] + rtol[j] * u[j].abs()) })
            .fold(0.0, f64::max);
        if size <= CONSISTENT {
            return Ok(((iter > 0).then_some(u), stats));
        }
        for (&j, d) in split.states.iter().zip(&delta) {
            u[j] -= d;
        }
    }
    Err(inconsistent(format!(
        "Newton's method on the algebraic equations did not converge in {MAX_ITERS} iterations; give algebraic \
         states closer to the constraints"
    )))
}

/// `d g / d u_a` (the algebraic equations' rows, the algebraic states' columns) into `block`
/// (`m x m`): from the model's analytic Jacobian under [`JacobianMethod::Auto`], by finite
/// differences of the algebraic columns under [`JacobianMethod::FiniteDiff`], else by
/// forward-mode AD seeding only the algebraic states, eight per pass (no `n x n` matrix).
#[allow(clippy::too_many_arguments)]
fn block_jacobian<M: Model>(
    model: &M,
    u: &[f64],
    p: &[f64],
    t: f64,
    split: &Split,
    method: JacobianMethod,
    f: &[f64],
    block: &mut [f64],
    stats: &mut Stats,
) {
    let (n, m) = (u.len(), split.states.len());
    let analytic = model.derivatives().analytic_jacobian().filter(|_| method == JacobianMethod::Auto);
    if let Some(jacobian) = analytic {
        let mut jac = vec![0.0; n * n];
        jacobian.jacobian(&mut jac, u, p, t);
        for (r, &i) in split.equations.iter().enumerate() {
            for (c, &j) in split.states.iter().enumerate() {
                block[r * m + c] = jac[i * n + j];
            }
        }
        return;
    }
    if method == JacobianMethod::FiniteDiff {
        let (mut shifted, mut fs) = (u.to_vec(), vec![0.0; n]);
        for (c, &j) in split.states.iter().enumerate() {
            let h = f64::EPSILON.sqrt() * u[j].abs().max(1.0);
            shifted[j] = u[j] + h;
            model.rhs(&mut fs, &shifted, p, t);
            stats.nf += 1;
            shifted[j] = u[j];
            for (r, &i) in split.equations.iter().enumerate() {
                block[r * m + c] = (fs[i] - f[i]) / h;
            }
        }
        return;
    }
    let mut ud: Vec<Dual<8>> = u.iter().map(|&x| Dual::constant(x)).collect();
    let pd: Vec<Dual<8>> = p.iter().map(|&x| Dual::constant(x)).collect();
    let mut fd = vec![Dual::<8>::default(); n];
    for chunk in (0..m).step_by(8) {
        let cols = &split.states[chunk..(chunk + 8).min(m)];
        for (slot, &j) in cols.iter().enumerate() {
            ud[j] = Dual::variable(u[j], slot);
        }
        model.rhs(&mut fd, &ud, &pd, Dual::constant(t));
        stats.nf_ad += 1;
        for (slot, &j) in cols.iter().enumerate() {
            ud[j] = Dual::constant(u[j]);
            for (r, &i) in split.equations.iter().enumerate() {
                block[r * m + chunk + slot] = fd[i].d[slot];
            }
        }
    }
}

fn inconsistent(why: String) -> DiffsimError {
    DiffsimError::InconsistentStart { why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Scalar;

    /// `u0' = -u0 + u1`, `0 = u1 - c u0^2` (c = p[0]).
    struct Quadratic;
    impl Model for Quadratic {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
            du[0] = -u[0] + u[1];
            du[1] = u[1] - p[0] * u[0] * u[0];
        }
        fn mass_matrix(&self) -> Option<MassMatrix> {
            Some(MassMatrix::dense(2, vec![1.0, 0.0, 0.0, 0.0]).expect("2 x 2 entries"))
        }
    }

    /// `0 = u1^2 + 1`: no real algebraic state satisfies it.
    struct NoRoot;
    impl Model for NoRoot {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = -u[0];
            du[1] = u[1] * u[1] + T::one();
        }
        fn mass_matrix(&self) -> Option<MassMatrix> {
            Some(MassMatrix::algebraic_states(2, &[1]).expect("state 1 of 2"))
        }
    }

    /// `0 = u0 - 1`: the constraint does not involve the algebraic state (index 2).
    struct Undetermined;
    impl Model for Undetermined {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = u[1];
            du[1] = u[0] - T::one();
        }
        fn mass_matrix(&self) -> Option<MassMatrix> {
            Some(MassMatrix::algebraic_states(2, &[1]).expect("state 1 of 2"))
        }
    }

    #[test]
    fn the_algebraic_state_is_solved_and_the_differential_one_kept() {
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-12);
        let (u, work) = consistent_start(&Quadratic, &[1.5, 7.0], &[2.0], (0.0, 1.0), &opts).unwrap();
        let u = u.expect("an inconsistent start");
        // Newton on a quadratic constraint that is linear in the algebraic state: one step,
        // then the check; one dual pass per Jacobian.
        assert_eq!((work.nf, work.njac, work.nf_ad), (2, 1, 1), "{work:?}");
        assert_eq!(u[0], 1.5);
        assert!((u[1] - 4.5).abs() <= 1e-12, "{u:?}");
        // A consistent start (to rounding) is kept as given.
        assert_eq!(consistent_start(&Quadratic, &[1.5, 4.5], &[2.0], (0.0, 1.0), &opts).unwrap().0, None);
        assert_eq!(consistent_start(&Quadratic, &[1.5, 4.5 + 1e-14], &[2.0], (0.0, 1.0), &opts).unwrap().0, None);
        // Finite differences agree.
        let fd = opts.clone().jacobian(JacobianMethod::FiniteDiff);
        let v = consistent_start(&Quadratic, &[1.5, 7.0], &[2.0], (0.0, 1.0), &fd).unwrap().0.unwrap();
        assert!((v[1] - 4.5).abs() <= 1e-12, "{v:?}");
        // Not a DAE: nothing to do.
        let lorenz =
            consistent_start(&crate::models::Lorenz, &[1.0, 2.0, 3.0], &[10.0, 28.0, 8.0 / 3.0], (0.0, 1.0), &opts);
        assert_eq!(lorenz.unwrap(), (None, Stats::default()));
    }

    /// The split read off a diagonal matrix's zeros is the one read off its dense form's
    /// zero rows and columns; a matrix whose zero rows and columns differ has none.
    #[test]
    fn the_split_of_a_diagonal_is_the_split_of_its_dense_form() {
        let diagonal = MassMatrix::algebraic_states(4, &[3, 1]).unwrap();
        let dense = MassMatrix::dense(4, diagonal.to_dense()).unwrap();
        for m in [&diagonal, &dense] {
            let split = Split::of(m).expect("semi-explicit");
            assert_eq!((split.equations, split.states), (vec![1, 3], vec![1, 3]));
        }
        assert!(Split::of(&MassMatrix::diagonal(vec![1.0, 2.0]).unwrap()).is_none());
        // A zero row but no zero column: not semi-explicit.
        assert!(Split::of(&MassMatrix::dense(2, vec![1.0, 1.0, 0.0, 0.0]).unwrap()).is_none());
        // The same consistent start from either form.
        struct Diagonal;
        impl Model for Diagonal {
            fn n_states(&self) -> usize {
                2
            }
            fn n_params(&self) -> usize {
                1
            }
            fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
                Quadratic.rhs(du, u, p, t)
            }
            fn mass_matrix(&self) -> Option<MassMatrix> {
                Some(MassMatrix::diagonal(vec![1.0, 0.0]).expect("finite"))
            }
        }
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-12);
        let a = consistent_start(&Quadratic, &[1.5, 7.0], &[2.0], (0.0, 1.0), &opts).unwrap();
        let b = consistent_start(&Diagonal, &[1.5, 7.0], &[2.0], (0.0, 1.0), &opts).unwrap();
        assert!(a.0.is_some());
        assert_eq!(a, b);
    }

    /// A model whose mass matrix has another size than its state is refused.
    #[test]
    fn a_mass_matrix_of_the_wrong_size_is_an_error() {
        struct Wrong;
        impl Model for Wrong {
            fn n_states(&self) -> usize {
                2
            }
            fn n_params(&self) -> usize {
                0
            }
            fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
                du[0] = -u[0];
                du[1] = u[1];
            }
            fn mass_matrix(&self) -> Option<MassMatrix> {
                Some(MassMatrix::algebraic_states(3, &[1]).expect("state 1 of 3"))
            }
        }
        let e = consistent_start(&Wrong, &[1.0, 0.0], &[], (0.0, 1.0), &SolveOptions::default()).unwrap_err();
        assert!(matches!(&e, DiffsimError::InvalidModel { why } if why.contains("3 x 3") && why.contains("2 states")));
    }

    #[test]
    fn starts_that_cannot_be_made_consistent_are_errors_or_left_alone() {
        let opts = SolveOptions::default();
        let e = consistent_start(&NoRoot, &[1.0, 0.5], &[], (0.0, 1.0), &opts).unwrap_err();
        assert!(matches!(e, DiffsimError::InconsistentStart { .. }), "{e}");
        // Not of index 1 (the constraint does not involve the algebraic state): left to the
        // solver as given, consistent or not.
        assert_eq!(consistent_start(&Undetermined, &[2.0, 0.0], &[], (0.0, 1.0), &opts).unwrap().0, None);
        assert_eq!(consistent_start(&Undetermined, &[1.0, 0.0], &[], (0.0, 1.0), &opts).unwrap().0, None);
    }
}
