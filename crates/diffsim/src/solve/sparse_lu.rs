//! Sparse iteration matrices for large sparsely coupled models (method of lines):
//! `W = alpha M + beta J` on the union of `J`'s pattern, the diagonal and `M`'s nonzeros,
//! factored by faer's sparse LU. The symbolic analysis (fill-reducing ordering, elimination
//! structure) is done once per solve; each step refactors numerically in place, on one
//! thread (these factorisations are far too small to gain from threads, and ensembles
//! already use every core).

use crate::ad::JacobianPattern;
use crate::mass::MassMatrix;
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::sparse::linalg::lu::{factorize_symbolic_lu, LuRef, NumericLu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{Conj, MatMut, Par};
use std::cell::RefCell;

/// `W` in compressed columns with its sparse LU factors.
pub(crate) struct SparseW {
    n: usize,
    col_ptr: Vec<usize>,
    row_idx: Vec<usize>,
    values: Vec<f64>,
    /// Slot in `values` of each Jacobian nonzero, in the pattern's row-by-row order.
    jac_slot: Vec<usize>,
    /// Slots and values of the mass matrix's nonzeros (the diagonal's ones for `M = I`).
    mass: Vec<(usize, f64)>,
    symbolic: SymbolicLu<usize>,
    numeric: NumericLu<usize, f64>,
    /// Scratch for factorisations and solves (solves take `&self`).
    scratch: RefCell<MemBuffer>,
}

impl SparseW {
    /// The structure for Jacobians of `pattern` and the mass matrix `mass` (`None` for the
    /// identity). `None` if faer's symbolic analysis fails (out of memory).
    pub(crate) fn new(pattern: &JacobianPattern, mass: Option<&MassMatrix>) -> Option<Self> {
        let n = pattern.n();
        let mut cols: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, col) in cols.iter_mut().enumerate() {
            col.push(i);
        }
        for i in 0..n {
            for &j in pattern.row(i) {
                cols[j].push(i);
            }
        }
        let mass_entries: Vec<(usize, usize, f64)> = match mass {
            None => (0..n).map(|i| (i, i, 1.0)).collect(),
            Some(m) => m.nonzeros(),
        };
        for &(i, j, _) in &mass_entries {
            cols[j].push(i);
        }
        let mut col_ptr = Vec::with_capacity(n + 1);
        let mut row_idx = Vec::new();
        col_ptr.push(0);
        for c in &mut cols {
            c.sort_unstable();
            c.dedup();
            row_idx.extend_from_slice(c);
            col_ptr.push(row_idx.len());
        }
        let slot = |i: usize, j: usize| {
            let rows = &row_idx[col_ptr[j]..col_ptr[j + 1]];
            col_ptr[j] + rows.binary_search(&i).expect("every entry was inserted above")
        };
        let jac_slot =
            (0..n).flat_map(|i| pattern.row(i).iter().map(move |&j| (i, j))).map(|(i, j)| slot(i, j)).collect();
        let mass = mass_entries.iter().map(|&(i, j, v)| (slot(i, j), v)).collect();
        let structure = SymbolicSparseColMatRef::new_checked(n, n, &col_ptr, None, &row_idx);
        let symbolic = factorize_symbolic_lu(structure, Default::default()).ok()?;
        let req = StackReq::any_of(&[
            symbolic.factorize_numeric_lu_scratch::<f64>(Par::Seq, Default::default()),
            symbolic.solve_in_place_scratch::<f64>(1, Par::Seq),
            symbolic.solve_transpose_in_place_scratch::<f64>(1, Par::Seq),
        ]);
        let scratch = RefCell::new(MemBuffer::try_new(req).ok()?);
        let values = vec![0.0; row_idx.len()];
        Some(Self { n, col_ptr, row_idx, values, jac_slot, mass, symbolic, numeric: NumericLu::new(), scratch })
    }

    /// Form and factor `alpha M + beta J` from the Jacobian's nonzeros (pattern order).
    /// False if faer finds it singular.
    pub(crate) fn factor(&mut self, jac_values: &[f64], alpha: f64, beta: f64) -> bool {
        self.values.fill(0.0);
        for &(s, m) in &self.mass {
            self.values[s] += alpha * m;
        }
        for (&s, &j) in self.jac_slot.iter().zip(jac_values) {
            self.values[s] += beta * j;
        }
        let n = self.n;
        let structure = SymbolicSparseColMatRef::new_checked(n, n, &self.col_ptr, None, &self.row_idx);
        let w = SparseColMatRef::new(structure, &self.values);
        let scratch = self.scratch.get_mut();
        let stack = MemStack::new(scratch);
        self.symbolic.factorize_numeric_lu(&mut self.numeric, w, Par::Seq, stack, Default::default()).is_ok()
    }

    /// Solve `W x = b` (or `W^T x = b`) in place with the current factors.
    pub(crate) fn solve(&self, b: &mut [f64], transpose: bool) {
        let lu = LuRef::new_unchecked(&self.symbolic, &self.numeric);
        let rhs = MatMut::from_column_major_slice_mut(b, self.n, 1);
        let mut scratch = self.scratch.borrow_mut();
        let stack = MemStack::new(&mut scratch);
        if transpose {
            lu.solve_transpose_in_place_with_conj(Conj::No, rhs, Par::Seq, stack);
        } else {
            lu.solve_in_place_with_conj(Conj::No, rhs, Par::Seq, stack);
        }
    }
}
