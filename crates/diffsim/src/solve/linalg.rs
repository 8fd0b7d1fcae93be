//! Dense linear algebra for the stiff solvers: the Jacobian cache, the iteration matrix
//! `W = alpha M + beta J`, and its LU factorisation.
//!
//! Small systems (the common case: 2 to ~30 states) use an inlined partial-pivoting LU
//! on a row-major buffer: general-purpose LU routines carry set-up costs that dominate at
//! these sizes. Larger systems use faer's partial-pivoting LU, and large sparsely coupled
//! ones (method of lines) a sparse Jacobian by colouring and faer's sparse LU
//! ([`super::sparse_lu`]): see [`JacobianMethod`] for when.

use super::options::JacobianMethod;
use super::solution::Stats;
use super::sparse_lu::SparseW;
use crate::ad::{jacobian_fd, ForwardJacobian, JacobianPattern, SparseForwardJacobian};
use crate::mass::MassMatrix;
use crate::problem::Model;
use faer::linalg::solvers::{PartialPivLu, Solve};
use faer::Mat;

/// Above this many states the LU is faer's.
const FAER_MIN_N: usize = 48;

/// From this many states on, [`JacobianMethod::Auto`] looks for a sparse Jacobian.
pub(crate) const SPARSE_MIN_STATES: usize = 48;

/// [`JacobianMethod::Auto`] goes sparse when at most `1 / SPARSE_MAX_FILL` of the entries
/// can be nonzero.
pub(crate) const SPARSE_MAX_FILL: usize = 8;

/// `J = df/du`, `df/dt` at the start of a step, computed as the options ask.
pub(crate) struct JacobianCache {
    pub(crate) n: usize,
    pub(crate) jac: Vec<f64>,
    pub(crate) dfdt: Vec<f64>,
    pub(crate) mass: Option<MassMatrix>,
    method: JacobianMethod,
    forward: ForwardJacobian,
    work_u: Vec<f64>,
    work_f: Vec<f64>,
    /// J belongs to the current step start.
    pub(crate) valid: bool,
    /// With a sparse Jacobian: its compressed evaluation and its nonzeros (`jac` is then
    /// empty). Chosen at the first update.
    pub(crate) sparse: Option<(SparseForwardJacobian, Vec<f64>)>,
    storage_chosen: bool,
}

impl JacobianCache {
    pub(crate) fn new<M: Model>(model: &M, method: JacobianMethod) -> Self {
        let n = model.n_states();
        Self {
            n,
            jac: vec![0.0; n * n],
            dfdt: vec![0.0; n],
            mass: model.mass_matrix(),
            method,
            forward: ForwardJacobian::new(n, model.n_params()),
            work_u: vec![0.0; n],
            work_f: vec![0.0; n],
            valid: false,
            sparse: None,
            storage_chosen: false,
        }
    }

    /// Dense or sparse, at the first point: sparse when asked ([`JacobianMethod::SparseAd`]),
    /// or under `Auto` for a large model with no analytic Jacobian whose pattern is sparse
    /// enough: the one it states ([`crate::capabilities::JacobianSparsity`]) joined with what
    /// a tape recording sees, else the recording's when it has no branches. Dense whenever
    /// there is no pattern.
    fn choose_storage<M: Model>(&mut self, model: &M, u: &[f64], p: &[f64], t: f64) {
        self.storage_chosen = true;
        let stated = model.derivatives().jacobian_sparsity().map(|s| s.jacobian_sparsity());
        let with_stated = |stated: Vec<(usize, usize)>| {
            let seen = JacobianPattern::detect(model, u, p, t).ok();
            let seen =
                seen.iter().flat_map(|pat| (0..pat.n()).flat_map(move |i| pat.row(i).iter().map(move |&j| (i, j))));
            JacobianPattern::from_entries(self.n, stated.into_iter().chain(seen)).ok()
        };
        let pattern = match (self.method, stated) {
            (JacobianMethod::SparseAd, Some(stated)) => with_stated(stated),
            (JacobianMethod::SparseAd, None) => JacobianPattern::detect(model, u, p, t).ok(),
            (JacobianMethod::Auto, stated) if self.n >= SPARSE_MIN_STATES && !model.derivatives().has_jacobian() => {
                match stated {
                    Some(stated) => with_stated(stated),
                    None => JacobianPattern::detect_branch_free(model, u, p, t).ok().flatten(),
                }
                .filter(|pat| pat.nnz() * SPARSE_MAX_FILL <= self.n * self.n)
            }
            _ => None,
        };
        if let Some(pattern) = pattern {
            let nnz = pattern.nnz();
            self.sparse = Some((SparseForwardJacobian::new(pattern, model.n_params()), vec![0.0; nnz]));
            self.jac = Vec::new();
        }
    }

    /// Compute J and df/dt at `(u, t)` (given `f0 = f(u, t)`) unless already current.
    pub(crate) fn update<M: Model>(&mut self, model: &M, p: &[f64], t: f64, u: &[f64], f0: &[f64], stats: &mut Stats) {
        if self.valid {
            return;
        }
        stats.njac += 1;
        if !self.storage_chosen {
            self.choose_storage(model, u, p, t);
        }
        if let Some((sparse, values)) = self.sparse.as_mut() {
            let derivatives = model.derivatives();
            let dfdt = match derivatives.analytic_time_derivative() {
                Some(d) => {
                    d.time_derivative(&mut self.dfdt, u, p, t);
                    None
                }
                None => Some(&mut self.dfdt[..]),
            };
            stats.nf_ad += sparse.evaluate(model, u, p, t, values, dfdt);
            self.valid = true;
            return;
        }
        let derivatives = model.derivatives();
        let own_dfdt = derivatives.analytic_time_derivative();
        if let Some(own_dfdt) = own_dfdt {
            own_dfdt.time_derivative(&mut self.dfdt, u, p, t);
        }
        let analytic = derivatives.analytic_jacobian().filter(|_| self.method == JacobianMethod::Auto);
        if let Some(jacobian) = analytic {
            jacobian.jacobian(&mut self.jac, u, p, t);
            // Time derivative by forward AD (cheap: one chunk), unless the model has its own.
            if own_dfdt.is_none() {
                self.forward.time_derivative(model, u, p, t, &mut self.dfdt);
                stats.nf_ad += 1;
            }
        } else if self.method == JacobianMethod::FiniteDiff {
            stats.nf += jacobian_fd(
                model,
                u,
                p,
                t,
                f0,
                &mut self.jac,
                own_dfdt.is_none().then_some(&mut self.dfdt[..]),
                &mut self.work_u,
                &mut self.work_f,
            );
        } else if own_dfdt.is_some() {
            stats.nf_ad += self.forward.evaluate(model, u, p, t, &mut self.jac, None);
        } else {
            stats.nf_ad += self.forward.evaluate(model, u, p, t, &mut self.jac, Some(&mut self.dfdt));
        }
        self.valid = true;
    }

    /// `out = M x` (or `x` for the identity mass matrix; elementwise for a diagonal one).
    #[inline]
    pub(crate) fn mass_mul(&self, x: &[f64], out: &mut [f64]) {
        match &self.mass {
            None => out.copy_from_slice(x),
            Some(m) => m.mul_vec_unchecked(x, out),
        }
    }
}

/// An LU factorisation of `W = alpha M + beta J`, rebuilt in place.
pub(crate) struct WMatrix {
    n: usize,
    /// The factors row by row (the transposed solve's passes run along these rows) ...
    lu: Vec<f64>,
    /// ... and column by column (the solve's).
    lu_cols: Vec<f64>,
    piv: Vec<usize>,
    big: Option<(Mat<f64>, Option<PartialPivLu<f64>>)>,
    /// Built at the first factorisation of a sparse Jacobian.
    sparse: Option<SparseW>,
}

impl WMatrix {
    pub(crate) fn new(n: usize) -> Self {
        let big = (n >= FAER_MIN_N).then(|| (Mat::zeros(n, n), None));
        // Dense storage is allocated zeroed (untouched pages) and only written when used.
        let dense = || if big.is_some() { Vec::new() } else { vec![0.0; n * n] };
        Self { n, lu: dense(), lu_cols: dense(), piv: vec![0; n], big, sparse: None }
    }

    /// Form and factor `alpha M + beta J`. Returns false if it is singular (to working
    /// precision), in which case the step should be retried smaller.
    /// `fixed_n > 0` is the size known at compile time (loops unroll).
    #[inline(always)]
    pub(crate) fn factor(
        &mut self,
        jc: &JacobianCache,
        alpha: f64,
        beta: f64,
        fixed_n: usize,
        stats: &mut Stats,
    ) -> bool {
        stats.nlu += 1;
        if let Some((sparse_jac, values)) = &jc.sparse {
            if self.sparse.is_none() {
                self.sparse = SparseW::new(sparse_jac.pattern(), jc.mass.as_ref());
            }
            return self.sparse.as_mut().is_some_and(|w| w.factor(values, alpha, beta));
        }
        let n = if fixed_n > 0 { fixed_n } else { self.n };
        let entry = |i: usize, j: usize| {
            let m = match &jc.mass {
                None => {
                    if i == j {
                        1.0
                    } else {
                        0.0
                    }
                }
                Some(m) => m.entry(i, j),
            };
            alpha * m + beta * jc.jac[i * n + j]
        };
        if let (0, Some((mat, lu))) = (fixed_n, self.big.as_mut()) {
            for j in 0..n {
                for i in 0..n {
                    mat[(i, j)] = entry(i, j);
                }
            }
            let f = mat.partial_piv_lu();
            // faer does not report singularity; check the diagonal of U.
            let u = f.U();
            let ok = (0..n).all(|i| u[(i, i)] != 0.0 && u[(i, i)].is_finite());
            *lu = Some(f);
            return ok;
        }
        let lu = &mut self.lu[..n * n];
        for i in 0..n {
            for j in 0..n {
                lu[i * n + j] = entry(i, j);
            }
        }
        let ok = lu_factor(lu, &mut self.piv[..n], n);
        factors_by_columns(lu, n, &mut self.lu_cols[..n * n]);
        ok
    }

    /// Solve `W x = b` in place (`fixed_n` as in [`WMatrix::factor`]).
    #[inline(always)]
    pub(crate) fn solve(&self, b: &mut [f64], fixed_n: usize) {
        if let Some(w) = &self.sparse {
            return w.solve(b, false);
        }
        if fixed_n == 0 {
            if let Some((_, Some(lu))) = &self.big {
                let mut rhs = faer::MatMut::from_column_major_slice_mut(b, self.n, 1);
                lu.solve_in_place(rhs.as_mut());
                return;
            }
        }
        let n = if fixed_n > 0 { fixed_n } else { self.n };
        lu_solve(&self.lu_cols[..n * n], &self.piv[..n], n, &mut b[..n]);
    }
}

impl WMatrix {
    /// Solve `W^T x = b` in place with the current factors (the discrete adjoint's
    /// transposed stage solves).
    pub(crate) fn solve_transpose(&self, b: &mut [f64], fixed_n: usize) {
        if let Some(w) = &self.sparse {
            return w.solve(b, true);
        }
        if fixed_n == 0 {
            if let Some((_, Some(lu))) = &self.big {
                let mut rhs = faer::MatMut::from_column_major_slice_mut(b, self.n, 1);
                lu.solve_transpose_in_place(rhs.as_mut());
                return;
            }
        }
        let n = if fixed_n > 0 { fixed_n } else { self.n };
        lu_solve_transpose(&self.lu[..n * n], &self.piv[..n], n, &mut b[..n]);
    }
}

/// Solve `A^T x = b` with the factors of `A` from [`lu_factor`], in place: with
/// `P A = L U`, `A^T = U^T L^T P`, so `U^T` forwards, `L^T` backwards, then the row swaps
/// undone in reverse order. Column by column, as [`lu_solve`]: here a column of `U^T` or
/// `L^T` is a contiguous row of the factors.
pub(crate) fn lu_solve_transpose(lu: &[f64], piv: &[usize], n: usize, b: &mut [f64]) {
    let (lu, b) = (&lu[..n * n], &mut b[..n]);
    for (j, row) in lu.chunks_exact(n).enumerate() {
        let (done, rest) = b.split_at_mut(j + 1);
        let x = done[j] * row[j];
        done[j] = x;
        for (bi, &u) in rest.iter_mut().zip(&row[j + 1..]) {
            *bi -= u * x;
        }
    }
    for (j, row) in lu.chunks_exact(n).enumerate().rev() {
        let (head, tail) = b.split_at_mut(j);
        let x = tail[0];
        for (bi, &l) in head.iter_mut().zip(&row[..j]) {
            *bi -= l * x;
        }
    }
    for k in (0..n).rev() {
        b.swap(k, piv[k]);
    }
}

/// In-place LU with partial pivoting of a row-major `n x n` matrix. False if singular.
/// The diagonal of `U` is stored as its reciprocals: the solves then multiply, and a
/// Rosenbrock step's eight solves of a 3-state system no longer queue up behind divisions.
#[inline(always)]
pub(crate) fn lu_factor(a: &mut [f64], piv: &mut [usize], n: usize) -> bool {
    let a = &mut a[..n * n];
    for k in 0..n {
        let mut p = k;
        let mut best = a[k * n + k].abs();
        for (i, row) in a.chunks_exact(n).enumerate().skip(k + 1) {
            let v = row[k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        piv[k] = p;
        if best == 0.0 || !best.is_finite() {
            return false;
        }
        let (top, bottom) = a.split_at_mut((k + 1) * n);
        let pivot_row = &mut top[k * n..];
        if p != k {
            pivot_row.swap_with_slice(&mut bottom[(p - k - 1) * n..(p - k) * n]);
        }
        let inv = 1.0 / pivot_row[k];
        pivot_row[k] = inv;
        let pivot_tail = &pivot_row[k + 1..];
        for row in bottom.chunks_exact_mut(n) {
            let l = row[k] * inv;
            row[k] = l;
            if l != 0.0 {
                for (x, &u) in row[k + 1..].iter_mut().zip(pivot_tail) {
                    *x -= l * u;
                }
            }
        }
    }
    true
}

/// The factors from [`lu_factor`] column by column (`cols[j n + i] = lu[i n + j]`), for
/// [`lu_solve`]. A copy per factorisation (`n^2` moves against the factorisation's
/// `n^3 / 3` multiply-adds) lets every solve read contiguous memory.
#[inline(always)]
pub(crate) fn factors_by_columns(lu: &[f64], n: usize, cols: &mut [f64]) {
    for (j, col) in cols[..n * n].chunks_exact_mut(n).enumerate() {
        for (i, c) in col.iter_mut().enumerate() {
            *c = lu[i * n + j];
        }
    }
}

/// Solve with the factors from [`lu_factor`] (reciprocal diagonal) stored column by column
/// ([`factors_by_columns`]), in place, column by column: once `x_j` is known it is taken
/// off every later (earlier) right-hand side, along one contiguous column. Each entry's
/// subtractions keep the order of a row-by-row sum, but the updates of different entries
/// do not wait on each other, where a row's dot product is one chain of dependent additions
/// (for a small system, that latency bounds the solve).
#[inline(always)]
pub(crate) fn lu_solve(cols: &[f64], piv: &[usize], n: usize, b: &mut [f64]) {
    let (cols, b) = (&cols[..n * n], &mut b[..n]);
    for (k, &p) in piv[..n].iter().enumerate() {
        b.swap(k, p);
    }
    for (j, col) in cols.chunks_exact(n).enumerate() {
        let (done, rest) = b.split_at_mut(j + 1);
        let x = done[j];
        for (bi, &l) in rest.iter_mut().zip(&col[j + 1..]) {
            *bi -= l * x;
        }
    }
    for (i, col) in cols.chunks_exact(n).enumerate().rev() {
        let (head, tail) = b.split_at_mut(i);
        let x = tail[0] * col[i];
        tail[0] = x;
        for (bk, &u) in head.iter_mut().zip(&col[..i]) {
            *bk -= u * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_lu_solves_a_pivoting_system() {
        // Needs a row swap at the first column.
        let a = [0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let x = [1.0, -2.0, 0.5];
        let mut b: Vec<f64> = (0..3).map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum()).collect();
        let mut lu = a.to_vec();
        let mut piv = vec![0; 3];
        assert!(lu_factor(&mut lu, &mut piv, 3));
        let mut cols = vec![0.0; 9];
        factors_by_columns(&lu, 3, &mut cols);
        lu_solve(&cols, &piv, 3, &mut b);
        for i in 0..3 {
            assert!((b[i] - x[i]).abs() < 1e-14);
        }
        // The transposed solve against the transposed product.
        let mut bt: Vec<f64> = (0..3).map(|i| (0..3).map(|j| a[j * 3 + i] * x[j]).sum()).collect();
        lu_solve_transpose(&lu, &piv, 3, &mut bt);
        for i in 0..3 {
            assert!((bt[i] - x[i]).abs() < 1e-14, "{bt:?}");
        }
        let mut sing = vec![1.0, 2.0, 2.0, 4.0];
        assert!(!lu_factor(&mut sing, &mut piv, 2));
    }

    /// A diagonal mass matrix forms the same `W = alpha M + beta J` as its dense form, bit
    /// for bit, on the small and the large (faer) path, and `M x` is the same product.
    #[test]
    fn a_diagonal_mass_matrix_forms_the_same_w_as_its_dense_form() {
        for (name, n) in [("brusselator-3", 6), ("brusselator-32", 64)] {
            let entry = crate::models::lookup(name).unwrap();
            let diagonal: Vec<f64> = (0..n).map(|i| [1.0, 0.0, 2.5][i % 3]).collect();
            let forms = [
                MassMatrix::diagonal(diagonal.clone()).unwrap(),
                MassMatrix::dense(n, MassMatrix::diagonal(diagonal).unwrap().to_dense()).unwrap(),
            ];
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let results: Vec<(Vec<f64>, Vec<f64>)> = forms
                .into_iter()
                .map(|mass| {
                    let mut jc = JacobianCache::new(&entry.model, JacobianMethod::ForwardAd);
                    for (i, v) in jc.jac.iter_mut().enumerate() {
                        *v = ((i * 7919) % 101) as f64 / 50.0 - 1.0;
                    }
                    jc.mass = Some(mass);
                    let mut w = WMatrix::new(n);
                    assert!(w.factor(&jc, 30.0, -1.0, 0, &mut Stats::default()), "{name}");
                    let mut b = x.clone();
                    w.solve(&mut b, 0);
                    let mut mx = vec![0.0; n];
                    jc.mass_mul(&x, &mut mx);
                    (b, mx)
                })
                .collect();
            assert_eq!(results[0], results[1], "{name}");
            // Not the identity's: the mass matrix is used.
            let (_, mx) = &results[0];
            assert_eq!((mx[1], mx[2]), (0.0, 2.5 * x[2]), "{name}");
        }
    }

    /// faer's transposed solve (the large-system path) against the product `W^T x`.
    #[test]
    fn large_w_solves_transposed_systems() {
        let entry = crate::models::lookup("brusselator-32").unwrap(); // 64 states: faer's LU
        let n = 64;
        let mut jc = JacobianCache::new(&entry.model, JacobianMethod::Auto);
        for (i, v) in jc.jac.iter_mut().enumerate() {
            *v = ((i * 7919) % 101) as f64 / 50.0 - 1.0;
        }
        let mut w = WMatrix::new(n);
        assert!(w.factor(&jc, 30.0, -1.0, 0, &mut Stats::default()));
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let wt = |i: usize, j: usize| if i == j { 30.0 } else { 0.0 } - jc.jac[j * n + i];
        let mut b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| wt(i, j) * x[j]).sum()).collect();
        w.solve_transpose(&mut b, 0);
        for i in 0..n {
            assert!((b[i] - x[i]).abs() < 1e-12, "{i}: {} vs {}", b[i], x[i]);
        }
    }
}
