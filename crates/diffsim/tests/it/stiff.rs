//! Stiff machinery: Jacobians by AD, finite differences and by hand agree; mass matrices.

use diffsim::ad::{jacobian_fd, ForwardJacobian};
use diffsim::capabilities::AnalyticJacobian;
use diffsim::models::{lookup, Brusselator1D, Robertson, ZooModel};
use diffsim::{solve, Algorithm, JacobianMethod, Model, Problem, SolveOptions};

#[test]
fn ad_jacobian_matches_the_analytic_one_and_finite_differences() {
    let (u, p, t) = ([0.8, 2e-5, 0.2], [0.04, 3e7, 1e4], 0.3);
    let mut analytic = vec![0.0; 9];
    Robertson.jacobian(&mut analytic, &u, &p, t);
    let mut ad = vec![0.0; 9];
    let mut dfdt = vec![1.0; 3];
    ForwardJacobian::new(3, 3).evaluate(&Robertson, &u, &p, t, &mut ad, Some(&mut dfdt));
    for i in 0..9 {
        assert!((ad[i] - analytic[i]).abs() <= 1e-12 * analytic[i].abs().max(1.0), "entry {i}");
    }
    assert_eq!(dfdt, vec![0.0; 3], "autonomous");
    let mut f0 = vec![0.0; 3];
    Robertson.rhs(&mut f0, &u, &p, t);
    let mut fd = vec![0.0; 9];
    let (mut w1, mut w2) = (vec![0.0; 3], vec![0.0; 3]);
    jacobian_fd(&Robertson, &u, &p, t, &f0, &mut fd, None, &mut w1, &mut w2);
    // Forward differences: truncation error k2 * h ~ 3e7 * 1.5e-8 on the quadratic term.
    for i in 0..9 {
        assert!(
            (fd[i] - analytic[i]).abs() <= 1e-3 * analytic[i].abs().max(1.0),
            "entry {i}: {} vs {}",
            fd[i],
            analytic[i]
        );
    }
}

/// A system larger than one AD chunk (8 columns) and larger than the small-LU limit,
/// against finite differences.
#[test]
fn chunked_jacobian_of_a_large_system_matches_finite_differences() {
    let m = Brusselator1D { n: 30 };
    let u = m.initial_state();
    let p = [1.0, 3.0, 0.02];
    let n = m.n_states();
    let mut ad = vec![0.0; n * n];
    ForwardJacobian::new(n, 3).evaluate(&m, &u, &p, 0.0, &mut ad, None);
    let mut f0 = vec![0.0; n];
    m.rhs(&mut f0, &u, &p, 0.0);
    let mut fd = vec![0.0; n * n];
    let (mut w1, mut w2) = (vec![0.0; n], vec![0.0; n]);
    jacobian_fd(&m, &u, &p, 0.0, &f0, &mut fd, None, &mut w1, &mut w2);
    let worst = ad.iter().zip(&fd).map(|(a, b)| (a - b).abs() / a.abs().max(1.0)).fold(0.0, f64::max);
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn every_jacobian_method_gives_the_same_solution() {
    let prob = Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 40.0)).unwrap();
    let reference = [0.715_827_068_7, 9.185_534_764e-6, 0.284_163_745_7];
    // SparseAd on three states: the sparse LU path at a size the solver otherwise unrolls.
    for jm in [JacobianMethod::Auto, JacobianMethod::ForwardAd, JacobianMethod::FiniteDiff, JacobianMethod::SparseAd] {
        for alg in [Algorithm::Rodas5P, Algorithm::Rosenbrock23] {
            let opts = SolveOptions::default().rtol(1e-7).atol(1e-12).jacobian(jm).saveat_times(vec![40.0]);
            let sol = solve(&prob, alg, &opts).unwrap();
            let u = sol.u(0);
            for i in 0..3 {
                assert!((u[i] - reference[i]).abs() / reference[i] < 2e-4, "{alg} {jm:?}: {u:?}");
            }
            // Finite differences count in nf; Robertson's own Jacobian leaves df/dt to one
            // dual pass; AD fits 3 states and t in one pass.
            let s = sol.stats();
            let expected = if jm == JacobianMethod::FiniteDiff { 0 } else { s.njac };
            assert_eq!(s.nf_ad, expected, "{alg} {jm:?}: {s:?}");
        }
    }
}

/// The Brusselator grows past the small-LU size at N = 32 (64 states), so this exercises
/// faer's dense LU (forced dense AD) and the sparse Jacobian with faer's sparse LU (what
/// `Auto` picks for this banded model); both must agree with an explicit reference.
#[test]
fn medium_stiff_system_solves_with_every_lu_path() {
    for name in ["brusselator-8", "brusselator-32"] {
        let e = lookup(name).unwrap();
        let prob = Problem::new(e.model, e.u0, e.p, (0.0, 10.0)).unwrap();
        let reference =
            solve(&prob, Algorithm::Vern7, &SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![10.0]))
                .unwrap();
        for jm in [JacobianMethod::Auto, JacobianMethod::ForwardAd, JacobianMethod::SparseAd] {
            for alg in [Algorithm::Rodas5P, Algorithm::Rodas4, Algorithm::Rosenbrock23] {
                let opts = SolveOptions::default().rtol(1e-7).atol(1e-7).jacobian(jm).saveat_times(vec![10.0]);
                let sol = solve(&prob, alg, &opts).unwrap();
                assert!(sol.retcode().is_success());
                let worst = sol.u(0).iter().zip(reference.u(0)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                let tol = if alg == Algorithm::Rosenbrock23 { 1e-3 } else { 1e-4 };
                assert!(worst < tol, "{name} {alg} {jm:?}: {worst}");
                // The dual-number evaluations behind the AD Jacobians are counted: dense AD
                // seeds the states eight at a time and t in a pass of its own when they
                // fill every slot; the sparse one needs fewer passes (one per colour group).
                let (n, s) = (prob.u0().len(), sol.stats());
                let dense_passes = n.div_ceil(8) + usize::from(n % 8 == 0);
                match jm {
                    JacobianMethod::ForwardAd => assert_eq!(s.nf_ad, dense_passes * s.njac, "{name} {alg}"),
                    JacobianMethod::SparseAd => {
                        assert!(s.nf_ad >= s.njac && s.nf_ad < dense_passes * s.njac, "{name} {alg}: {s:?}")
                    }
                    // Dense or sparse by size.
                    _ => assert!(s.nf_ad >= s.njac && s.nf_ad <= dense_passes * s.njac, "{name} {alg}: {s:?}"),
                }
            }
        }
    }
}

/// Sparse and dense Jacobians are the same numbers (structural zeros add exact zeros), so
/// the solves differ only by the LU's rounding: same steps, same answer to round-off. `Auto`
/// takes the sparse path on this 256-state banded model (its answer is the sparse one bit
/// for bit), and a mass matrix (the Robertson DAE) goes into the sparse `W` too.
#[test]
fn sparse_jacobian_solves_match_dense_ones() {
    let e = lookup("brusselator-128").unwrap();
    let prob = Problem::new(e.model, e.u0, e.p, (0.0, 2.0)).unwrap();
    let run = |jm: JacobianMethod| {
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).jacobian(jm).saveat_times(vec![1.0, 2.0]);
        solve(&prob, Algorithm::Rodas5P, &opts).unwrap()
    };
    let (dense, sparse, auto) =
        (run(JacobianMethod::ForwardAd), run(JacobianMethod::SparseAd), run(JacobianMethod::Auto));
    assert_eq!(dense.stats().naccept, sparse.stats().naccept);
    assert_eq!(sparse.u(1), auto.u(1));
    assert_ne!(dense.u(1), sparse.u(1), "the LU paths should differ in rounding");
    let worst = dense.u(1).iter().zip(sparse.u(1)).map(|(a, b)| (a - b).abs() / a.abs()).fold(0.0, f64::max);
    assert!(worst < 1e-11, "{worst}");

    let dae = lookup("robertson-dae").unwrap();
    let prob = Problem::new(dae.model, dae.u0, dae.p, (0.0, 40.0)).unwrap();
    let run = |jm: JacobianMethod| {
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-10).jacobian(jm).saveat_times(vec![40.0]);
        solve(&prob, Algorithm::Rodas4, &opts).unwrap()
    };
    let (dense, sparse) = (run(JacobianMethod::ForwardAd), run(JacobianMethod::SparseAd));
    assert!(sparse.retcode().is_success());
    for (a, b) in dense.u(0).iter().zip(sparse.u(0)) {
        assert!((a - b).abs() <= 1e-12 * a.abs().max(1e-6), "{:?} vs {:?}", dense.u(0), sparse.u(0));
    }
}

/// Robertson as a DAE started off its constraint `y1 + y2 + y3 = 1`: every stiff method
/// solves its algebraic state from the constraint first and then gives the solution of the
/// consistent start, bit for bit. (From the inconsistent state itself no step can satisfy
/// the constraint: Rosenbrock23 would reject every step at `t = 0`, and the Rodas methods
/// would jump onto the constraint from a state other than the one given.)
#[test]
fn a_dae_started_off_its_constraint_starts_from_the_consistent_state() {
    let dae = lookup("robertson-dae").unwrap();
    let opts = SolveOptions::default().rtol(1e-6).atol(1e-10).saveat_times(vec![0.0, 1.0, 40.0]);
    for alg in [Algorithm::Rosenbrock23, Algorithm::Rodas4, Algorithm::Rodas5P, Algorithm::Auto] {
        let consistent = Problem::new(dae.model, vec![1.0, 0.0, 0.0], dae.p.clone(), (0.0, 40.0)).unwrap();
        let off = Problem::new(dae.model, vec![1.0, 0.0, 0.5], dae.p.clone(), (0.0, 40.0)).unwrap();
        let (a, b) = (solve(&consistent, alg, &opts).unwrap(), solve(&off, alg, &opts).unwrap());
        assert!(b.retcode().is_success(), "{alg}: {:?}", b.retcode());
        assert_eq!(b.u(0), &[1.0, 0.0, 0.0], "{alg}");
        assert_eq!(a.u_flat(), b.u_flat(), "{alg}");
    }
    // A constraint no algebraic state satisfies (0 = y^2 + 1) is an error that says so.
    struct NoRoot;
    impl Model for NoRoot {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: diffsim::Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = -u[0];
            du[1] = u[1] * u[1] + T::one();
        }
        fn mass_matrix(&self) -> Option<diffsim::MassMatrix> {
            Some(diffsim::MassMatrix::algebraic_states(2, &[1]).expect("state 1 of 2"))
        }
    }
    let prob = Problem::new(NoRoot, vec![1.0, 0.3], vec![], (0.0, 1.0)).unwrap();
    let e = solve(&prob, Algorithm::Rodas5P, &SolveOptions::default()).unwrap_err();
    assert!(matches!(e, diffsim::DiffsimError::InconsistentStart { .. }), "{e}");
    assert!(e.to_string().contains("algebraic"), "{e}");
}

/// Diffusion on a ring with a reaction that switches on the state's sign: the recording sees
/// a branch, so without a stated pattern `Auto` keeps the Jacobian dense.
#[derive(Clone, Copy)]
struct SwitchedDiffusion {
    /// State the tridiagonal pattern (or, with `drop_diagonal`, leave the diagonal out).
    stated: bool,
    drop_diagonal: bool,
}

const RING: usize = 64;

impl Model for SwitchedDiffusion {
    fn n_states(&self) -> usize {
        RING
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs<T: diffsim::Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        for i in 0..RING {
            let (l, r) = (u[(i + RING - 1) % RING], u[(i + 1) % RING]);
            let reaction = if u[i] > T::zero() { -p[0] * u[i] } else { -u[i].scale(0.1) };
            du[i] = (l - u[i].scale(2.0) + r).scale(400.0) + reaction;
        }
    }
    fn derivatives(&self) -> diffsim::capabilities::Derivatives<'_> {
        let d = diffsim::capabilities::Derivatives::none();
        if self.stated {
            d.sparsity(self)
        } else {
            d
        }
    }
}

impl diffsim::capabilities::JacobianSparsity for SwitchedDiffusion {
    fn jacobian_sparsity(&self) -> Vec<(usize, usize)> {
        let mut e = Vec::new();
        for i in 0..RING {
            if !self.drop_diagonal {
                e.push((i, i));
            }
            e.push((i, (i + RING - 1) % RING));
            e.push((i, (i + 1) % RING));
        }
        e
    }
}

/// A stated sparsity pattern gives a model the recording cannot read sparse Jacobians (a
/// third of the dual passes), the same solution as dense Jacobians to rounding, survives an
/// entry left out (what the recording sees is added), and is checked for its size.
#[test]
fn a_stated_sparsity_pattern_makes_the_jacobian_sparse() {
    let u0: Vec<f64> = (0..RING).map(|i| (i as f64 * 0.3).sin()).collect();
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-10).saveat_times(vec![0.5]);
    let run = |m: SwitchedDiffusion, jm: JacobianMethod| {
        let prob = Problem::new(m, u0.clone(), vec![5.0], (0.0, 0.5)).unwrap();
        solve(&prob, Algorithm::Rodas5P, &opts.clone().jacobian(jm)).unwrap()
    };
    let plain = SwitchedDiffusion { stated: false, drop_diagonal: false };
    let stated = SwitchedDiffusion { stated: true, drop_diagonal: false };
    let missing = SwitchedDiffusion { stated: true, drop_diagonal: true };
    let dense = run(plain, JacobianMethod::Auto);
    let passes = RING / 8 + 1;
    assert_eq!(dense.stats().nf_ad, passes * dense.stats().njac, "without a pattern: dense");
    let sparse = run(stated, JacobianMethod::Auto);
    assert!(sparse.retcode().is_success());
    assert!(sparse.stats().nf_ad * 2 < passes * sparse.stats().njac, "{:?}", sparse.stats());
    // The LU paths differ in rounding: the same solution to the tolerance.
    let worst = sparse.u(0).iter().zip(dense.u(0)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-8, "{worst}");
    // The diagonal left out of the stated pattern is added from the recording: the same
    // Jacobian, the same solve.
    let patched = run(missing, JacobianMethod::Auto);
    assert_eq!(patched.u_flat(), sparse.u_flat());
    assert_eq!(patched.stats(), sparse.stats());
    // Entries outside the Jacobian are the model's error, said as such.
    #[derive(Debug)]
    struct Outside;
    impl Model for Outside {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: diffsim::Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = -u[0];
            du[1] = -u[1];
        }
        fn derivatives(&self) -> diffsim::capabilities::Derivatives<'_> {
            diffsim::capabilities::Derivatives::none().sparsity(self)
        }
    }
    impl diffsim::capabilities::JacobianSparsity for Outside {
        fn jacobian_sparsity(&self) -> Vec<(usize, usize)> {
            vec![(0, 0), (1, 2)]
        }
    }
    let e = Problem::new(Outside, vec![1.0, 1.0], vec![], (0.0, 1.0)).unwrap_err();
    assert!(e.to_string().contains("(1, 2)"), "{e}");
}
