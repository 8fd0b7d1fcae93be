//! The complex iteration matrices of the Radau IIA methods ([`super::radau`]):
//! `W = (a + i b) M - J`, its LU factorisation and solves, on the same three storages as the
//! real `W` ([`super::linalg::WMatrix`]).
//!
//! - **Small dense** (under [`FAER_MIN_N`] states, the common case): an inlined
//!   partial-pivoting LU on split real and imaginary row-major buffers, the diagonal of `U`
//!   stored as reciprocals (Smith's division, safe from overflow) so that the solves only
//!   multiply. Split buffers keep the inner loops on plain `f64` lanes; a copy of the
//!   factors by columns lets the solves run along contiguous memory.
//! - **Large dense**: faer's partial-pivoting LU on `c64`.
//! - **Sparse** (the Jacobian is sparse, `jc.sparse`): faer's sparse LU on `c64`, on the
//!   pattern of the real `W` (the union of `J`'s pattern, the diagonal and `M`'s nonzeros),
//!   with its own symbolic analysis once per solve. The alternative, the real `2n x 2n`
//!   block system `[[aM - J, -bM], [bM, aM - J]]` through [`super::sparse_lu::SparseW`],
//!   would reuse that code but factor twice the unknowns with a coupled pattern (more
//!   fill, about twice the work of the complex factorisation); faer's sparse LU is generic
//!   over the field, so the complex system costs only this module.

use super::linalg::{factors_by_columns, JacobianCache};
use super::solution::Stats;
use crate::ad::JacobianPattern;
use crate::mass::MassMatrix;
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::solvers::{PartialPivLu, Solve};
use faer::sparse::linalg::lu::{factorize_symbolic_lu, LuRef, NumericLu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{c64, Conj, Mat, MatMut, Par};

/// From this many states on, dense systems use faer's LU (as the real `W` does).
const FAER_MIN_N: usize = 48;

/// `(a + i b) M - J`, factored in place.
pub(crate) struct ComplexW {
    n: usize,
    storage: Option<Storage>,
}

/// Chosen at the first factorisation, when the Jacobian's storage is known.
enum Storage {
    /// The factors row by row, and column by column for the solves.
    Small {
        re: Vec<f64>,
        im: Vec<f64>,
        re_cols: Vec<f64>,
        im_cols: Vec<f64>,
        piv: Vec<usize>,
    },
    Dense {
        mat: Mat<c64>,
        lu: Option<PartialPivLu<c64>>,
        buf: Vec<c64>,
    },
    Sparse(Box<SparseComplexW>),
}

impl ComplexW {
    pub(crate) fn new(n: usize) -> Self {
        Self { n, storage: None }
    }

    /// Form and factor `(a + i b) M - J` from `jc`. False if it is singular (or its
    /// sparse structure could not be analysed).
    pub(crate) fn factor(&mut self, jc: &JacobianCache, a: f64, b: f64, stats: &mut Stats) -> bool {
        stats.nlu += 1;
        let n = self.n;
        if self.storage.is_none() {
            self.storage = Some(match &jc.sparse {
                Some((sparse_jac, _)) => match SparseComplexW::new(sparse_jac.pattern(), jc.mass.as_ref()) {
                    Some(w) => Storage::Sparse(Box::new(w)),
                    None => return false,
                },
                None if n >= FAER_MIN_N => {
                    Storage::Dense { mat: Mat::zeros(n, n), lu: None, buf: vec![c64::new(0.0, 0.0); n] }
                }
                None => Storage::Small {
                    re: vec![0.0; n * n],
                    im: vec![0.0; n * n],
                    re_cols: vec![0.0; n * n],
                    im_cols: vec![0.0; n * n],
                    piv: vec![0; n],
                },
            });
        }
        let mass = |i: usize, j: usize| match &jc.mass {
            None => f64::from(u8::from(i == j)),
            Some(m) => m.entry(i, j),
        };
        match self.storage.as_mut() {
            Some(Storage::Small { re, im, re_cols, im_cols, piv }) => {
                for i in 0..n {
                    for j in 0..n {
                        let m = mass(i, j);
                        re[i * n + j] = a * m - jc.jac[i * n + j];
                        im[i * n + j] = b * m;
                    }
                }
                let ok = lu_factor_complex(re, im, piv, n);
                factors_by_columns(re, n, re_cols);
                factors_by_columns(im, n, im_cols);
                ok
            }
            Some(Storage::Dense { mat, lu, .. }) => {
                for j in 0..n {
                    for i in 0..n {
                        let m = mass(i, j);
                        mat[(i, j)] = c64::new(a * m - jc.jac[i * n + j], b * m);
                    }
                }
                let f = mat.partial_piv_lu();
                // faer does not report singularity; check the diagonal of U.
                let u = f.U();
                let ok = (0..n).all(|i| {
                    let d = u[(i, i)];
                    (d.re != 0.0 || d.im != 0.0) && d.re.is_finite() && d.im.is_finite()
                });
                *lu = Some(f);
                ok
            }
            Some(Storage::Sparse(w)) => match &jc.sparse {
                Some((_, values)) => w.factor(values, a, b),
                None => false,
            },
            None => false,
        }
    }

    /// Solve `W x = b` in place, `b = re + i im`, with the last factors.
    pub(crate) fn solve(&mut self, re: &mut [f64], im: &mut [f64]) {
        let n = self.n;
        match self.storage.as_mut() {
            Some(Storage::Small { re_cols, im_cols, piv, .. }) => lu_solve_complex(re_cols, im_cols, piv, n, re, im),
            Some(Storage::Dense { lu: Some(lu), buf, .. }) => {
                for i in 0..n {
                    buf[i] = c64::new(re[i], im[i]);
                }
                lu.solve_in_place(MatMut::from_column_major_slice_mut(buf, n, 1));
                for i in 0..n {
                    (re[i], im[i]) = (buf[i].re, buf[i].im);
                }
            }
            Some(Storage::Sparse(w)) => w.solve(re, im),
            _ => {}
        }
    }
}

/// `1 / (re + i im)` by Smith's algorithm (no overflow in `re^2 + im^2`).
#[inline(always)]
fn reciprocal(re: f64, im: f64) -> (f64, f64) {
    if re.abs() >= im.abs() {
        let r = im / re;
        let d = re + im * r;
        (1.0 / d, -r / d)
    } else {
        let r = re / im;
        let d = re * r + im;
        (r / d, -1.0 / d)
    }
}

/// In-place LU with partial pivoting (on `|re| + |im|`) of the row-major complex matrix
/// `re + i im`; the diagonal of `U` is stored as its reciprocals. False if singular.
pub(crate) fn lu_factor_complex(re: &mut [f64], im: &mut [f64], piv: &mut [usize], n: usize) -> bool {
    let (re, im) = (&mut re[..n * n], &mut im[..n * n]);
    for k in 0..n {
        let mut p = k;
        let mut best = re[k * n + k].abs() + im[k * n + k].abs();
        for (i, (r, m)) in re.chunks_exact(n).zip(im.chunks_exact(n)).enumerate().skip(k + 1) {
            let v = r[k].abs() + m[k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        piv[k] = p;
        if best == 0.0 || !best.is_finite() {
            return false;
        }
        // Rows as slices (no index checks in the update, which then vectorises).
        let (re_top, re_bottom) = re.split_at_mut((k + 1) * n);
        let (im_top, im_bottom) = im.split_at_mut((k + 1) * n);
        let (pivot_re, pivot_im) = (&mut re_top[k * n..], &mut im_top[k * n..]);
        if p != k {
            pivot_re.swap_with_slice(&mut re_bottom[(p - k - 1) * n..(p - k) * n]);
            pivot_im.swap_with_slice(&mut im_bottom[(p - k - 1) * n..(p - k) * n]);
        }
        let (ir, ii) = reciprocal(pivot_re[k], pivot_im[k]);
        pivot_re[k] = ir;
        pivot_im[k] = ii;
        let (tail_re, tail_im) = (&pivot_re[k + 1..], &pivot_im[k + 1..]);
        for (row_re, row_im) in re_bottom.chunks_exact_mut(n).zip(im_bottom.chunks_exact_mut(n)) {
            let (ar, ai) = (row_re[k], row_im[k]);
            let (lr, li) = (ar * ir - ai * ii, ar * ii + ai * ir);
            row_re[k] = lr;
            row_im[k] = li;
            if lr != 0.0 || li != 0.0 {
                for (((x, y), &ur), &ui) in
                    row_re[k + 1..].iter_mut().zip(row_im[k + 1..].iter_mut()).zip(tail_re).zip(tail_im)
                {
                    *x -= lr * ur - li * ui;
                    *y -= lr * ui + li * ur;
                }
            }
        }
    }
    true
}

/// Solve with the factors of [`lu_factor_complex`] stored column by column
/// ([`factors_by_columns`] of each part), in place on `br + i bi`; column by column, as
/// the real [`super::linalg::lu_solve`].
pub(crate) fn lu_solve_complex(re: &[f64], im: &[f64], piv: &[usize], n: usize, br: &mut [f64], bi: &mut [f64]) {
    let (re, im, br, bi) = (&re[..n * n], &im[..n * n], &mut br[..n], &mut bi[..n]);
    for k in 0..n {
        br.swap(k, piv[k]);
        bi.swap(k, piv[k]);
    }
    for j in 0..n {
        let (xr, xi) = (br[j], bi[j]);
        let (lr, li) = (&re[j * n + j + 1..(j + 1) * n], &im[j * n + j + 1..(j + 1) * n]);
        for (((r, i), &a), &b) in br[j + 1..].iter_mut().zip(bi[j + 1..].iter_mut()).zip(lr).zip(li) {
            *r -= a * xr - b * xi;
            *i -= a * xi + b * xr;
        }
    }
    for j in (0..n).rev() {
        let (dr, di) = (re[j * n + j], im[j * n + j]);
        let (xr, xi) = (br[j] * dr - bi[j] * di, br[j] * di + bi[j] * dr);
        (br[j], bi[j]) = (xr, xi);
        let (ur, ui) = (&re[j * n..j * n + j], &im[j * n..j * n + j]);
        for (((r, i), &a), &b) in br[..j].iter_mut().zip(bi[..j].iter_mut()).zip(ur).zip(ui) {
            *r -= a * xr - b * xi;
            *i -= a * xi + b * xr;
        }
    }
}

/// The sparse complex `W` in compressed columns with faer's sparse LU factors.
struct SparseComplexW {
    n: usize,
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    values: Vec<c64>,
    /// Slot in `values` of each Jacobian nonzero, in the pattern's row-by-row order.
    jac_slot: Vec<usize>,
    /// Slots and values of the mass matrix's nonzeros (the diagonal's ones for `M = I`).
    mass: Vec<(usize, f64)>,
    symbolic: SymbolicLu<usize>,
    numeric: NumericLu<usize, c64>,
    scratch: MemBuffer,
    buf: Vec<c64>,
}

impl SparseComplexW {
    fn new(pattern: &JacobianPattern, mass: Option<&MassMatrix>) -> Option<Self> {
        let n = pattern.n();
        let mass_entries: Vec<(usize, usize, f64)> = match mass {
            None => (0..n).map(|i| (i, i, 1.0)).collect(),
            Some(m) => m.nonzeros(),
        };
        // Columns: the diagonal, J's pattern and M's nonzeros, sorted without repeats.
        let mut cols: Vec<Vec<usize>> = (0..n).map(|j| vec![j]).collect();
        for i in 0..n {
            for &j in pattern.row(i) {
                cols[j].push(i);
            }
        }
        for &(i, j, _) in &mass_entries {
            cols[j].push(i);
        }
        let mut col_ptr = vec![0];
        let mut row_idx = Vec::new();
        for c in &mut cols {
            c.sort_unstable();
            c.dedup();
            row_idx.extend_from_slice(c);
            col_ptr.push(row_idx.len());
        }
        let slot = |i: usize, j: usize| {
            let rows = &row_idx[col_ptr[j]..col_ptr[j + 1]];
            rows.binary_search(&i).ok().map(|k| col_ptr[j] + k)
        };
        let jac_slot = (0..n)
            .flat_map(|i| pattern.row(i).iter().map(move |&j| (i, j)))
            .map(|(i, j)| slot(i, j))
            .collect::<Option<Vec<usize>>>()?;
        let mass = mass_entries.iter().map(|&(i, j, v)| slot(i, j).map(|s| (s, v))).collect::<Option<Vec<_>>>()?;
        let structure = SymbolicSparseColMatRef::new_checked(n, n, &col_ptr, None, &row_idx);
        let symbolic = factorize_symbolic_lu(structure, Default::default()).ok()?;
        let req = StackReq::any_of(&[
            symbolic.factorize_numeric_lu_scratch::<c64>(Par::Seq, Default::default()),
            symbolic.solve_in_place_scratch::<c64>(1, Par::Seq),
        ]);
        let scratch = MemBuffer::try_new(req).ok()?;
        let values = vec![c64::new(0.0, 0.0); row_idx.len()];
        let buf = vec![c64::new(0.0, 0.0); n];
        Some(Self { n, col_ptr, row_idx, values, jac_slot, mass, symbolic, numeric: NumericLu::new(), scratch, buf })
    }

    /// Form and factor `(a + i b) M - J` from the Jacobian's nonzeros (pattern order).
    fn factor(&mut self, jac_values: &[f64], a: f64, b: f64) -> bool {
        self.values.fill(c64::new(0.0, 0.0));
        for &(s, m) in &self.mass {
            self.values[s] += c64::new(a * m, b * m);
        }
        for (&s, &j) in self.jac_slot.iter().zip(jac_values) {
            self.values[s].re -= j;
        }
        let n = self.n;
        let structure = SymbolicSparseColMatRef::new_checked(n, n, &self.col_ptr, None, &self.row_idx);
        let w = SparseColMatRef::new(structure, &self.values);
        let stack = MemStack::new(&mut self.scratch);
        self.symbolic.factorize_numeric_lu(&mut self.numeric, w, Par::Seq, stack, Default::default()).is_ok()
    }

    fn solve(&mut self, re: &mut [f64], im: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            self.buf[i] = c64::new(re[i], im[i]);
        }
        let lu = LuRef::new_unchecked(&self.symbolic, &self.numeric);
        let rhs = MatMut::from_column_major_slice_mut(&mut self.buf, n, 1);
        let stack = MemStack::new(&mut self.scratch);
        lu.solve_in_place_with_conj(Conj::No, rhs, Par::Seq, stack);
        for i in 0..n {
            (re[i], im[i]) = (self.buf[i].re, self.buf[i].im);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::options::JacobianMethod;

    /// A seeded pseudo-random number in [-1, 1).
    fn noise(k: usize) -> f64 {
        ((k.wrapping_mul(2_654_435_761) % 10_007) as f64) / 5003.5 - 1.0
    }

    /// Factor `(a + i b) M - J` for `jc`'s dense Jacobian, solve for a known `x`, and
    /// compare with `x` (the right-hand side is the product, formed here independently).
    fn check_dense(n: usize, mass: Option<MassMatrix>) {
        let entry = crate::models::lookup(&format!("brusselator-{}", n / 2)).unwrap();
        let mut jc = JacobianCache::new(&entry.model, JacobianMethod::ForwardAd);
        jc.mass = mass;
        for (k, v) in jc.jac.iter_mut().enumerate() {
            *v = 2.0 * noise(k + 7);
        }
        let (a, b) = (3.6, -2.9);
        let mut w = ComplexW::new(n);
        let mut stats = Stats::default();
        assert!(w.factor(&jc, a, b, &mut stats));
        assert_eq!(stats.nlu, 1);
        let (xr, xi): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (noise(3 * i + 1), noise(5 * i + 2))).unzip();
        let m = |i: usize, j: usize| jc.mass.as_ref().map_or(f64::from(u8::from(i == j)), |m| m.get(i, j).unwrap());
        let (mut br, mut bi) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            for j in 0..n {
                let (wr, wi) = (a * m(i, j) - jc.jac[i * n + j], b * m(i, j));
                br[i] += wr * xr[j] - wi * xi[j];
                bi[i] += wr * xi[j] + wi * xr[j];
            }
        }
        w.solve(&mut br, &mut bi);
        for i in 0..n {
            assert!(
                (br[i] - xr[i]).abs() < 1e-12 && (bi[i] - xi[i]).abs() < 1e-12,
                "n = {n}, {i}: {} {}",
                br[i],
                bi[i]
            );
        }
    }

    #[test]
    fn small_complex_lu_solves_against_the_product() {
        check_dense(6, None);
        // A mass matrix with a zero row (a DAE) and a coupling entry.
        let mut mass = vec![0.0; 36];
        for i in 0..5 {
            mass[i * 6 + i] = 1.0;
        }
        mass[6 + 2] = 0.5;
        check_dense(6, Some(MassMatrix::dense(6, mass).unwrap()));
        // A diagonal one (its own storage), with an algebraic state and a non-unit entry.
        check_dense(6, Some(MassMatrix::diagonal(vec![1.0, 2.5, 0.0, 1.0, 1.0, 0.5]).unwrap()));
        // Pivoting is needed: a zero leading entry.
        let (mut re, mut im, mut piv) = (vec![0.0, 1.0, 2.0, 0.0], vec![0.0, 1.0, 0.0, -1.0], vec![0; 2]);
        assert!(lu_factor_complex(&mut re, &mut im, &mut piv, 2));
        assert_eq!(piv[0], 1);
        // W = [[0, 1 + i], [2, -i]]: the solution of W x = b is checked by multiplying back.
        let (mut br, mut bi) = (vec![1.0, 2.0], vec![1.0, -2.0]);
        let w = [(0.0, 0.0), (1.0, 1.0), (2.0, 0.0), (0.0, -1.0)];
        let (b0r, b0i) = (br.clone(), bi.clone());
        let (mut re_cols, mut im_cols) = (vec![0.0; 4], vec![0.0; 4]);
        factors_by_columns(&re, 2, &mut re_cols);
        factors_by_columns(&im, 2, &mut im_cols);
        lu_solve_complex(&re_cols, &im_cols, &piv, 2, &mut br, &mut bi);
        for i in 0..2 {
            let (mut sr, mut si) = (0.0, 0.0);
            for j in 0..2 {
                let (wr, wi) = w[i * 2 + j];
                sr += wr * br[j] - wi * bi[j];
                si += wr * bi[j] + wi * br[j];
            }
            assert!((sr - b0r[i]).abs() < 1e-14 && (si - b0i[i]).abs() < 1e-14);
        }
        let (mut re, mut im) = (vec![1.0, 2.0, 2.0, 4.0], vec![1.0, 2.0, 2.0, 4.0]);
        assert!(!lu_factor_complex(&mut re, &mut im, &mut piv, 2), "a singular matrix is reported");
    }

    #[test]
    fn large_complex_lu_solves_against_the_product() {
        check_dense(64, None); // faer's dense LU
    }

    /// The sparse path (brusselator-64 goes sparse under `Auto`) against the product with
    /// the dense Jacobian assembled from its nonzeros.
    #[test]
    fn sparse_complex_lu_solves_against_the_product() {
        let entry = crate::models::lookup("brusselator-32").unwrap();
        let n = 64;
        let mut jc = JacobianCache::new(&entry.model, JacobianMethod::Auto);
        let f0 = vec![0.0; n];
        jc.update(&entry.model, &entry.p, 0.0, &entry.u0, &f0, &mut Stats::default());
        let (sparse, values) = jc.sparse.as_ref().expect("brusselator-32 goes sparse");
        let pattern = sparse.pattern();
        let mut dense = vec![0.0; n * n];
        let mut k = 0;
        for i in 0..n {
            for &j in pattern.row(i) {
                dense[i * n + j] = values[k];
                k += 1;
            }
        }
        let (a, b) = (12.5, 7.25);
        let mut w = ComplexW::new(n);
        assert!(w.factor(&jc, a, b, &mut Stats::default()));
        let (xr, xi): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (noise(i + 11), noise(2 * i + 13))).unzip();
        let (mut br, mut bi) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            br[i] = a * xr[i] - b * xi[i];
            bi[i] = a * xi[i] + b * xr[i];
            for j in 0..n {
                br[i] -= dense[i * n + j] * xr[j];
                bi[i] -= dense[i * n + j] * xi[j];
            }
        }
        w.solve(&mut br, &mut bi);
        for i in 0..n {
            assert!((br[i] - xr[i]).abs() < 1e-12 && (bi[i] - xi[i]).abs() < 1e-12, "{i}");
        }
    }
}
