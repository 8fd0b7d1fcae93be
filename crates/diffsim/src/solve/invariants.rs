//! Linear conservation laws `c^T f(u, p, t) = 0` (for every `u` and `t`), found from the
//! model, so that the Rosenbrock methods keep `c^T u` constant to rounding.
//!
//! A Rosenbrock stage solves `(I / (gamma h) - J) k = rhs`. With exact arithmetic `c^T J = 0`
//! and `c^T rhs = 0` give `c^T k = 0`. But `J`'s rounding (absolute `eps |J|`) enters the
//! stage amplified by `gamma h`; once `gamma h |J| eps` is no longer small, the stage matrix
//! is singular to working precision along `c`, and the stage's `c` component is rounding of
//! the largest state's increment. Where the conserved combination is made of states far
//! below the largest (E5's `y2 - y3 - y4`, about 1e-22 beside `y1` about 1e-3), that rounding
//! is the answer, and the step's error estimate, built from the same stages, cannot see it.
//! A Newton method does not suffer: it iterates on the residual, evaluated with `f` itself.
//!
//! The cure here: find the conservation laws once, at the first step, and take each stage's
//! `c` component out, `k -= W C^T (C W C^T)^{-1} C k` with `W` the states' tolerance scales
//! (so that small states are not handed the rounding of large ones). That component is zero
//! in exact arithmetic, so the method is unchanged.
//!
//! The laws are found from the Jacobian by forward AD at three seeded sample states and
//! times: the common left null space of the three, by elimination with complete pivoting on
//! the stacked, column scaled Jacobians; snapped to small rationals (stoichiometric laws have
//! small integer coefficients; an entry that should be zero must be exactly zero, or the
//! largest state's increment leaks back in); and kept only where `c^T J` and `c^T f` vanish
//! to rounding at every sample, relative to the sizes of the terms they sum. A law that holds
//! only at the samples would need all three random states to lie on one special set; one
//! that is missed leaves the method as it was.
//!
//! Not done for mass matrices (the laws are then `c^T M u`), when the user chose finite
//! difference Jacobians (the search needs AD's exact-to-rounding entries), or above
//! [`INVARIANTS_MAX_STATES`] states (the elimination's cost grows as `n^3`; large models go
//! to BDF under `Auto`).

use super::linalg::lu_factor;
use super::solution::Stats;
use crate::ad::ForwardJacobian;
use crate::problem::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Largest model whose conservation laws are looked for.
pub(crate) const INVARIANTS_MAX_STATES: usize = 64;

/// Sample states and times at which a law must hold.
const SAMPLES: usize = 3;

/// A pivot of the elimination below this (the rows have unit length) ends it: the columns
/// left are free, each a candidate law.
const NULL_TOL: f64 = 1e-9;

/// `|c^T J e_j|` must be at most this many `eps` times `|c|^T |J e_j|` (and likewise for `f`).
const ROUNDING_SLACK: f64 = 256.0;

/// Largest denominator tried when snapping a coefficient to a rational.
const MAX_DENOMINATOR: u32 = 12;

/// The conservation laws found, as the rows of `C` (`m x n`), with what the weighted
/// projection needs, so that it is two passes over `k` per law.
#[derive(Debug, Clone)]
pub(crate) struct LinearInvariants {
    n: usize,
    c: Vec<f64>,
    /// `W C^T`, row by row: where each law's correction goes.
    wc: Vec<f64>,
    /// `(C W C^T)^{-1} C`.
    d: Vec<f64>,
    gram: Vec<f64>,
    piv: Vec<usize>,
    scratch: Vec<f64>,
}

impl LinearInvariants {
    /// Look for the model's linear conservation laws near `(u, t)`. `None` when there are none
    /// (or the model is outside the sizes and forms handled). The evaluations count in `stats`.
    pub(crate) fn detect<M: Model>(model: &M, p: &[f64], t: f64, u: &[f64], stats: &mut Stats) -> Option<Self> {
        let n = u.len();
        if !(2..=INVARIANTS_MAX_STATES).contains(&n) || model.mass_matrix().is_some() {
            return None;
        }
        let samples = sample_points(model, p, t, u, stats)?;
        let candidates = null_space_candidates(&samples, n)?;
        let laws: Vec<Vec<f64>> = candidates
            .into_iter()
            .filter_map(|row| snapped(&row).into_iter().find(|c| holds_at_every_sample(c, &samples)))
            .collect();
        if laws.is_empty() {
            return None;
        }
        let m = laws.len();
        let mut found = Self {
            n,
            c: laws.concat(),
            wc: vec![0.0; m * n],
            d: vec![0.0; m * n],
            gram: vec![0.0; m * m],
            piv: vec![0; m],
            scratch: vec![0.0; m],
        };
        found.weigh(&vec![1.0; n]).then_some(found)
    }

    /// How many laws were found.
    pub(crate) fn len(&self) -> usize {
        self.scratch.len()
    }

    /// Weigh the projection by `w` (positive, one per state: the scale of each state): the
    /// part of `k` along the laws is removed by changing each state in proportion to its
    /// weight. With equal weights the rounding removed (of the largest terms of `c^T k`)
    /// would land on every state of a law alike, and ROBER's y1 and y2 (1e-8 and 1e-13
    /// beside y3 = 1) lost two digits to it. False if the laws are dependent under `w`.
    pub(crate) fn weigh(&mut self, w: &[f64]) -> bool {
        let (n, m) = (self.n, self.len());
        for (wc, &c) in self.wc.iter_mut().zip(&self.c) {
            *wc = c;
        }
        for row in self.wc.chunks_exact_mut(n) {
            row.iter_mut().zip(w).for_each(|(x, &wi)| *x *= wi);
        }
        for a in 0..m {
            for b in 0..m {
                self.gram[a * m + b] = dot(&self.c[a * n..(a + 1) * n], &self.wc[b * n..(b + 1) * n]);
            }
        }
        if !lu_factor(&mut self.gram, &mut self.piv, m) {
            return false;
        }
        // D = G^{-1} C, all columns at once: the steps of `lu_solve` on whole rows.
        self.d.copy_from_slice(&self.c);
        let (g, d) = (&self.gram, &mut self.d);
        for (k, &p) in self.piv.iter().enumerate() {
            if p != k {
                for i in 0..n {
                    d.swap(k * n + i, p * n + i);
                }
            }
        }
        for a in 1..m {
            let (done, rest) = d.split_at_mut(a * n);
            for b in 0..a {
                let l = g[a * m + b];
                rest[..n].iter_mut().zip(&done[b * n..(b + 1) * n]).for_each(|(x, &y)| *x -= l * y);
            }
        }
        for a in (0..m).rev() {
            let (head, tail) = d.split_at_mut((a + 1) * n);
            let row = &mut head[a * n..];
            for b in a + 1..m {
                let u = g[a * m + b];
                row.iter_mut().zip(&tail[(b - a - 1) * n..(b - a) * n]).for_each(|(x, &y)| *x -= u * y);
            }
            let inv = g[a * m + a];
            row.iter_mut().for_each(|x| *x *= inv);
        }
        true
    }

    /// Remove from `k` its component along the laws: `k -= W C^T (C W C^T)^{-1} C k`, after
    /// which `C k = 0` to rounding of `k`'s entries on the laws. Inlined, with `n` from `k` (a
    /// stepper specialised to its size passes a slice of known length, and the loops
    /// unroll): a small system's stage is only a few dozen operations.
    #[inline(always)]
    pub(crate) fn project_out(&mut self, k: &mut [f64]) {
        let n = k.len();
        debug_assert_eq!(n, self.n);
        if self.len() == 1 {
            // One law (the usual case): no scratch.
            let y = dot(&self.d[..n], k);
            k.iter_mut().zip(&self.wc[..n]).for_each(|(ki, &wc)| *ki -= wc * y);
            return;
        }
        for (a, y) in self.scratch.iter_mut().enumerate() {
            *y = dot(&self.d[a * n..(a + 1) * n], k);
        }
        for (a, &y) in self.scratch.iter().enumerate() {
            for (ki, &wc) in k.iter_mut().zip(&self.wc[a * n..(a + 1) * n]) {
                *ki -= wc * y;
            }
        }
    }
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One sample: `f` and the row-major `J` at a state and time.
struct Sample {
    f: Vec<f64>,
    jac: Vec<f64>,
}

/// `f` and `J` at `(u, t)` and at two seeded states and times near it: each state scaled by
/// a random factor in [1, 1.5) and raised by a random share of a percent of the largest
/// (zero states become positive, signs are kept). None if `f` or `J` is not finite at one.
fn sample_points<M: Model>(model: &M, p: &[f64], t: f64, u: &[f64], stats: &mut Stats) -> Option<Vec<Sample>> {
    let n = u.len();
    let largest = u.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    let lift = if largest > 0.0 { 1e-2 * largest } else { 1e-2 };
    let mut rng = ChaCha8Rng::seed_from_u64(0x1a7e_1a7e);
    let mut forward = ForwardJacobian::new(n, model.n_params());
    let mut state = u.to_vec();
    (0..SAMPLES)
        .map(|s| {
            let ts = t + s as f64 * 0.1 * t.abs().max(1.0);
            if s > 0 {
                for (x, &u0) in state.iter_mut().zip(u) {
                    let grow = 1.0 + 0.5 * rng.random::<f64>();
                    let raise = lift * rng.random::<f64>();
                    *x = if u0 < 0.0 { u0 * grow - raise } else { u0 * grow + raise };
                }
            }
            let mut f = vec![0.0; n];
            let mut jac = vec![0.0; n * n];
            let mut dfdt = vec![0.0; n];
            model.rhs(&mut f, &state, p, ts);
            // Counted as the steppers count a Jacobian by AD (with df/dt: the same passes).
            stats.nf += 1;
            stats.njac += 1;
            stats.nf_ad += forward.evaluate(model, &state, p, ts, &mut jac, Some(&mut dfdt));
            (f.iter().chain(&jac).all(|v| v.is_finite())).then_some(Sample { f, jac })
        })
        .collect()
}

/// A basis of the vectors `c` with `J_s^T c = 0` for every sample, by Gaussian elimination
/// with complete pivoting on the stack of the `J_s^T` (rank revealing in practice, and a
/// fraction of an SVD's cost on these small matrices). Each column of a `J_s` is a row of
/// the stack, scaled to unit length: that changes no null vector and puts slow and fast
/// columns on one footing. Each basis vector is 1 at one free column and 0 at the others,
/// so laws on few states come out with exact zeros (up to rounding, which snapping removes).
fn null_space_candidates(samples: &[Sample], n: usize) -> Option<Vec<Vec<f64>>> {
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(samples.len() * n);
    for sample in samples {
        for j in 0..n {
            let row: Vec<f64> = (0..n).map(|i| sample.jac[i * n + j]).collect();
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                rows.push(row.into_iter().map(|x| x / norm).collect());
            }
        }
    }
    if rows.is_empty() {
        // J = 0 everywhere: every combination is constant, nothing to protect.
        return None;
    }
    // Eliminate: `perm[k]` is the state of the k-th column.
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rank = 0;
    while rank < n.min(rows.len()) {
        let (mut bi, mut bj, mut best) = (rank, rank, 0.0);
        for (i, row) in rows.iter().enumerate().skip(rank) {
            for (j, &x) in row.iter().enumerate().skip(rank) {
                if x.abs() > best {
                    (bi, bj, best) = (i, j, x.abs());
                }
            }
        }
        if best <= NULL_TOL {
            break;
        }
        rows.swap(rank, bi);
        perm.swap(rank, bj);
        rows.iter_mut().for_each(|row| row.swap(rank, bj));
        let pivot_row = rows[rank].clone();
        for row in rows.iter_mut().skip(rank + 1) {
            let l = row[rank] / pivot_row[rank];
            if l != 0.0 {
                row.iter_mut().zip(&pivot_row).skip(rank).for_each(|(x, &u)| *x -= l * u);
            }
        }
        rank += 1;
    }
    // One null vector per free column: 1 there, solve the triangle for the pivot columns.
    let basis: Vec<Vec<f64>> = (rank..n)
        .map(|free| {
            let mut x = vec![0.0; n];
            x[free] = 1.0;
            for k in (0..rank).rev() {
                let s: f64 = (k + 1..n).map(|j| rows[k][j] * x[j]).sum();
                x[k] = -s / rows[k][k];
            }
            let mut c = vec![0.0; n];
            for (k, &state) in perm.iter().enumerate() {
                c[state] = x[k];
            }
            c
        })
        .collect();
    (!basis.is_empty()).then_some(basis)
}

/// The row snapped to small rationals (each coefficient within 1e-9 of `a / b`, `b` at most
/// [`MAX_DENOMINATOR`]), then the row with only its negligible coefficients zeroed: the
/// versions to verify, best first.
fn snapped(row: &[f64]) -> Vec<Vec<f64>> {
    // The first largest coefficient becomes +1.
    let scale = row.iter().fold(0.0_f64, |m, &x| if x.abs() > m.abs() { x } else { m });
    if scale == 0.0 {
        return Vec::new();
    }
    let zeroed: Vec<f64> = row.iter().map(|&x| if x.abs() < 1e-9 * scale.abs() { 0.0 } else { x / scale }).collect();
    let rational: Option<Vec<f64>> = zeroed
        .iter()
        .map(|&x| {
            (1..=MAX_DENOMINATOR).find_map(|b| {
                let a = (x * b as f64).round();
                ((x - a / b as f64).abs() < 1e-9).then_some(a / b as f64)
            })
        })
        .collect();
    rational.into_iter().chain(std::iter::once(zeroed)).collect()
}

/// `c^T J` (every column) and `c^T f` vanish at every sample to within rounding of the terms
/// they sum.
fn holds_at_every_sample(c: &[f64], samples: &[Sample]) -> bool {
    let n = c.len();
    let vanishes = |terms: &mut dyn Iterator<Item = f64>| {
        let (sum, size) = terms.fold((0.0, 0.0), |(s, a), x: f64| (s + x, a + x.abs()));
        sum.abs() <= ROUNDING_SLACK * f64::EPSILON * size
    };
    samples.iter().all(|s| {
        vanishes(&mut c.iter().zip(&s.f).map(|(ci, fi)| ci * fi))
            && (0..n).all(|j| vanishes(&mut c.iter().enumerate().map(|(i, ci)| ci * s.jac[i * n + j])))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Robertson, E5};
    use crate::problem::Model;
    use crate::scalar::Scalar;

    #[test]
    fn finds_the_stoichiometric_laws_exactly() {
        let rober =
            LinearInvariants::detect(&Robertson, &[0.04, 3e7, 1e4], 0.0, &[1.0, 0.0, 0.0], &mut Stats::default())
                .unwrap();
        assert_eq!(rober.c, vec![1.0, 1.0, 1.0]);
        let e5 = LinearInvariants::detect(
            &E5,
            &[7.89e-10, 1.1e7, 1.13e3, 1e6],
            0.0,
            &[1.76e-3, 0.0, 0.0, 0.0],
            &mut Stats::default(),
        )
        .unwrap();
        assert_eq!(e5.c, vec![0.0, 1.0, -1.0, -1.0]);
    }

    /// Two decays into one sink and a forced state: `x + y + z` is conserved, `w' = sin t`
    /// has `c^T J = 0` but not `c^T f = 0`, and must not be taken.
    struct TwoDecays;
    impl Model for TwoDecays {
        fn n_states(&self) -> usize {
            4
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], t: T) {
            du[0] = -u[0] * u[1].scale(3.0);
            du[1] = -u[1].scale(0.5);
            du[2] = u[0] * u[1].scale(3.0) + u[1].scale(0.5);
            du[3] = t.sin();
        }
    }

    #[test]
    fn a_forced_state_is_not_a_law_and_projection_removes_only_the_law() {
        let mut inv =
            LinearInvariants::detect(&TwoDecays, &[], 0.3, &[1.0, 2.0, 0.0, 0.0], &mut Stats::default()).unwrap();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv.c, vec![1.0, 1.0, 1.0, 0.0]);
        let mut k = vec![1.0, 2.0, 3.0, 4.0];
        inv.project_out(&mut k);
        assert!((k[0] + k[1] + k[2]).abs() < 1e-15);
        assert_eq!(k[3], 4.0);
        assert!((k[0] - (1.0 - 2.0)).abs() < 1e-15, "{k:?}");
        // Weighted: the correction goes to the heavy state; the light ones keep theirs.
        assert!(inv.weigh(&[1e-12, 1e-12, 1.0, 1.0]));
        let mut k = vec![1e-3, 2e-3, 1.0, 4.0];
        inv.project_out(&mut k);
        assert!((k[0] + k[1] + k[2]).abs() < 1e-15, "{k:?}");
        // Their shares: 1e-12 of the 1.003 removed.
        assert!((k[0] - 1e-3).abs() < 2e-12 && (k[1] - 2e-3).abs() < 2e-12, "{k:?}");
        assert_eq!(k[3], 4.0);
    }

    #[test]
    fn weighted_projection_with_several_laws_clears_every_law() {
        // Two laws on five states, weights of very different sizes.
        let mut inv = LinearInvariants {
            n: 5,
            c: vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 2.0],
            wc: vec![0.0; 10],
            d: vec![0.0; 10],
            gram: vec![0.0; 4],
            piv: vec![0; 2],
            scratch: vec![0.0; 2],
        };
        assert!(inv.weigh(&[1.0, 1e-6, 3.0, 0.5, 2.0]));
        let mut k = vec![0.3, -1.0, 2.0, 0.7, -0.4];
        let k0 = k.clone();
        inv.project_out(&mut k);
        let law = |c: &[f64], k: &[f64]| c.iter().zip(k).map(|(a, b)| a * b).sum::<f64>();
        assert!(law(&inv.c[..5], &k).abs() < 1e-15 && law(&inv.c[5..], &k).abs() < 1e-15, "{k:?}");
        // The change lies in the span of W C^T: the light state 1 barely moves.
        assert!((k[1] - k0[1]).abs() < 1e-5, "{k:?}");
    }

    /// Linear and nonconservative: no law.
    struct Damped;
    impl Model for Damped {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = u[1];
            du[1] = -u[0] - u[1].scale(0.1);
        }
    }

    #[test]
    fn a_model_without_laws_has_none() {
        assert!(LinearInvariants::detect(&Damped, &[], 0.0, &[1.0, 0.0], &mut Stats::default()).is_none());
    }
}
