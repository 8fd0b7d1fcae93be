//! Sparse Jacobians for method-of-lines and other large, sparsely coupled models: the
//! pattern read off a tape recording, a column colouring, and the compressed forward-mode
//! evaluation that gets every nonzero from `ceil(colours / 8)` dual evaluations of `f`
//! instead of `ceil(n / 8)`.
//!
//! Columns that share no row can be seeded in the same dual slot: `f` evaluated on
//! `u + eps * sum_{j in colour c} e_j` gives, in row `i`, the one entry `J[i, j]` whose
//! column `j` has colour `c` (there is at most one, by the colouring). A 1-D stencil of
//! half-width `b` needs `2b + 1` colours whatever `n`, so a 256-state Brusselator Jacobian
//! costs one 8-wide dual evaluation instead of 32.
//!
//! The colouring is greedy in column order (optimal for banded patterns; within a small
//! factor elsewhere). Crates exist for graph colouring, but this is twenty lines over
//! our own pattern type, and it runs once per solve.

use super::jacobian::CHUNK;
use super::{Dual, ForwardJacobian, RhsTape, TapeMode};
use crate::error::{DiffsimError, Result};
use crate::problem::Model;

/// Which entries of an `n x n` Jacobian can be nonzero, row by row (compressed sparse rows,
/// columns sorted within each row).
///
/// ```
/// use diffsim::ad::JacobianPattern;
/// use diffsim::models::Brusselator1D;
///
/// let model = Brusselator1D { n: 16 };
/// let u0 = model.initial_state();
/// let pattern = JacobianPattern::detect(&model, &u0, &[1.0, 3.0, 0.02], 0.0).unwrap();
/// assert_eq!(pattern.n(), 32);
/// assert!(pattern.nnz() < 32 * 6); // a stencil: a few entries per row
/// let (colours, n_colours) = pattern.colouring();
/// assert_eq!(colours.len(), 32);
/// assert!(n_colours <= 5); // banded, half-width 2
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JacobianPattern {
    n: usize,
    row_start: Vec<usize>,
    cols: Vec<usize>,
}

impl JacobianPattern {
    /// A pattern from its nonzero positions `(row, column)` (duplicates allowed).
    ///
    /// Errors: a position outside `n x n`.
    pub fn from_entries(n: usize, entries: impl IntoIterator<Item = (usize, usize)>) -> Result<Self> {
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, j) in entries {
            if i >= n || j >= n {
                return Err(DiffsimError::InvalidOption {
                    name: "jacobian pattern",
                    why: format!("entry ({i}, {j}) lies outside the {n} x {n} Jacobian"),
                });
            }
            rows[i].push(j);
        }
        Ok(Self::from_rows(rows))
    }

    fn from_rows(mut rows: Vec<Vec<usize>>) -> Self {
        let n = rows.len();
        let mut row_start = Vec::with_capacity(n + 1);
        let mut cols = Vec::new();
        row_start.push(0);
        for r in &mut rows {
            r.sort_unstable();
            r.dedup();
            cols.extend_from_slice(r);
            row_start.push(cols.len());
        }
        Self { n, row_start, cols }
    }

    /// The pattern of `df/du` read off a tape recording of `model.rhs` at `(u, p, t)`: entry
    /// `(i, j)` is in it when output `i` was computed from state `j` by any chain of
    /// operations, whatever the partial derivatives' values there (so a coefficient that
    /// happens to be zero at this point does not drop an entry).
    ///
    /// The pattern belongs to the branch the model took at this point. Use
    /// [`JacobianPattern::detect_branch_free`] when it must hold everywhere.
    ///
    /// Errors: the model reads a recorded number's value (`Scalar::value`) or mixes in
    /// numbers from elsewhere, so dependencies exist that the tape cannot see; wrong sizes.
    pub fn detect<M: Model>(model: &M, u: &[f64], p: &[f64], t: f64) -> Result<Self> {
        Ok(Self::record(model, u, p, t)?.0)
    }

    /// [`JacobianPattern::detect`], and `None` if the model made any comparison while being
    /// recorded (then another branch, elsewhere, could couple other states).
    pub fn detect_branch_free<M: Model>(model: &M, u: &[f64], p: &[f64], t: f64) -> Result<Option<Self>> {
        let (pattern, guards) = Self::record(model, u, p, t)?;
        Ok((guards == 0).then_some(pattern))
    }

    fn record<M: Model>(model: &M, u: &[f64], p: &[f64], t: f64) -> Result<(Self, usize)> {
        let mut tape = RhsTape::new(model, TapeMode::Rerecord);
        tape.at(model, u, p, t)?;
        let deps = tape.state_dependencies().ok_or_else(|| DiffsimError::InvalidOption {
            name: "jacobian pattern",
            why: "the model reads values of its numbers (Scalar::value) or mixes in numbers from \
                  elsewhere, so its dependencies cannot be traced; use a dense Jacobian"
                .into(),
        })?;
        let rows = deps.into_iter().map(|r| r.into_iter().map(|j| j as usize).collect()).collect();
        Ok((Self::from_rows(rows), tape.n_guards()))
    }

    /// Number of states (rows and columns).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of structurally nonzero entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// The columns of row `i` that can be nonzero, sorted.
    pub fn row(&self, i: usize) -> &[usize] {
        &self.cols[self.row_start[i]..self.row_start[i + 1]]
    }

    /// Offsets of each row's entries in the value arrays ([`Self::nnz`] long, row by row);
    /// `n + 1` of them.
    pub fn row_starts(&self) -> &[usize] {
        &self.row_start
    }

    /// A colouring of the columns such that no two columns of one colour share a row:
    /// the colour of each column, and the number of colours. Greedy in column order.
    pub fn colouring(&self) -> (Vec<usize>, usize) {
        let n = self.n;
        // Rows of each column (the transpose).
        let mut col_rows: Vec<Vec<usize>> = vec![Vec::new(); n];
        for i in 0..n {
            for &j in self.row(i) {
                col_rows[j].push(i);
            }
        }
        let mut colour = vec![usize::MAX; n];
        // forbidden[c] == j: colour c is taken by a neighbour of column j.
        let mut forbidden: Vec<usize> = Vec::new();
        let mut n_colours = 0;
        for j in 0..n {
            for &i in &col_rows[j] {
                for &k in self.row(i) {
                    if colour[k] != usize::MAX {
                        forbidden[colour[k]] = j;
                    }
                }
            }
            let c = (0..n_colours).find(|&c| forbidden[c] != j).unwrap_or(n_colours);
            if c == n_colours {
                n_colours += 1;
                forbidden.push(usize::MAX);
            }
            colour[j] = c;
        }
        (colour, n_colours)
    }
}

/// Reusable buffers for the compressed forward-mode Jacobian of a model with a known
/// pattern: values in the pattern's row-by-row order.
///
/// ```
/// use diffsim::ad::{ForwardJacobian, JacobianPattern, SparseForwardJacobian};
/// use diffsim::models::Brusselator1D;
///
/// let model = Brusselator1D { n: 20 };
/// let (u, p) = (model.initial_state(), [1.0, 3.0, 0.02]);
/// let pattern = JacobianPattern::detect(&model, &u, &p, 0.0).unwrap();
/// let mut sparse = SparseForwardJacobian::new(pattern, 3);
/// let mut values = vec![0.0; sparse.pattern().nnz()];
/// let evals = sparse.evaluate(&model, &u, &p, 0.0, &mut values, None);
/// assert_eq!(evals, 1); // 5 colours fit in one 8-wide evaluation (dense AD takes 5)
///
/// let mut dense = vec![0.0; 40 * 40];
/// ForwardJacobian::new(40, 3).evaluate(&model, &u, &p, 0.0, &mut dense, None);
/// let pattern = sparse.pattern();
/// for i in 0..40 {
///     for (k, &j) in pattern.row(i).iter().enumerate() {
///         assert_eq!(values[pattern.row_starts()[i] + k], dense[i * 40 + j]);
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct SparseForwardJacobian {
    pattern: JacobianPattern,
    colour: Vec<usize>,
    n_colours: usize,
    /// The dual buffers and chunked passes, shared with the dense Jacobian.
    passes: ForwardJacobian,
}

impl SparseForwardJacobian {
    /// Buffers for `pattern` (its colouring is computed here) and `np` parameters.
    pub fn new(pattern: JacobianPattern, np: usize) -> Self {
        let n = pattern.n();
        let (colour, n_colours) = pattern.colouring();
        Self { pattern, colour, n_colours, passes: ForwardJacobian::new(n, np) }
    }

    /// The pattern.
    pub fn pattern(&self) -> &JacobianPattern {
        &self.pattern
    }

    /// Number of column colours (compressed columns).
    pub fn n_colours(&self) -> usize {
        self.n_colours
    }

    /// Write the nonzeros (row by row, as [`JacobianPattern::row`] lists them) into
    /// `values` and, if asked, `df/dt` into `dfdt`. Returns the number of evaluations of `f`.
    pub fn evaluate<M: Model>(
        &mut self,
        model: &M,
        u: &[f64],
        p: &[f64],
        t: f64,
        values: &mut [f64],
        dfdt: Option<&mut [f64]>,
    ) -> usize {
        let (pattern, colour) = (&self.pattern, &self.colour);
        let read = |start: usize, width: usize, du: &[Dual<CHUNK>]| {
            for (i, r) in pattern.row_start.windows(2).enumerate() {
                for k in r[0]..r[1] {
                    let c = colour[pattern.cols[k]];
                    if c >= start && c < start + width {
                        values[k] = du[i].d[c - start];
                    }
                }
            }
        };
        self.passes.seeded_passes(model, u, p, t, self.n_colours, |j| colour[j], read, dfdt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Scalar;

    /// f_i couples i to i + 3 (mod n) through a product that is zero at the test point, and
    /// the last output to everything (a dense row).
    struct Arrow;
    impl Model for Arrow {
        fn n_states(&self) -> usize {
            10
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
            let n = u.len();
            for i in 0..n - 1 {
                du[i] = p[0] * u[i].sin() + u[(i + 3) % n] * u[(i + 3) % n] * t;
            }
            du[n - 1] = u.iter().fold(T::zero(), |a, &x| a + x);
        }
    }

    #[test]
    fn pattern_keeps_entries_whose_value_is_zero_here() {
        let u = [0.0; 10];
        let pattern = JacobianPattern::detect(&Arrow, &u, &[2.0], 0.0).unwrap();
        // d f_0 / d u_3 = 2 u_3 t = 0 at this point, but structurally there.
        assert_eq!(pattern.row(0), &[0, 3]);
        assert_eq!(pattern.row(9).len(), 10);
        assert_eq!(pattern.nnz(), 9 * 2 + 10);
    }

    #[test]
    fn colouring_separates_columns_that_share_a_row_and_compressed_values_match_dense() {
        let u: Vec<f64> = (0..10).map(|i| 0.3 + 0.1 * i as f64).collect();
        let pattern = JacobianPattern::detect(&Arrow, &u, &[2.0], 0.7).unwrap();
        let (colour, n_colours) = pattern.colouring();
        // The dense last row forces every column into its own colour.
        assert_eq!(n_colours, 10);
        for i in 0..10 {
            for (a, &j) in pattern.row(i).iter().enumerate() {
                for &k in &pattern.row(i)[a + 1..] {
                    assert_ne!(colour[j], colour[k], "row {i} columns {j} {k}");
                }
            }
        }
        let mut sparse = SparseForwardJacobian::new(pattern.clone(), 1);
        let mut values = vec![f64::NAN; pattern.nnz()];
        let mut dfdt = vec![0.0; 10];
        let evals = sparse.evaluate(&Arrow, &u, &[2.0], 0.7, &mut values, Some(&mut dfdt));
        assert_eq!(evals, 2); // 10 colours + time: 8 + 3 slots
        let mut dense = vec![0.0; 100];
        let mut dense_dt = vec![0.0; 10];
        super::super::ForwardJacobian::new(10, 1).evaluate(&Arrow, &u, &[2.0], 0.7, &mut dense, Some(&mut dense_dt));
        let mut covered = 0;
        for i in 0..10 {
            for (a, &j) in pattern.row(i).iter().enumerate() {
                assert_eq!(values[pattern.row_starts()[i] + a], dense[i * 10 + j]);
                covered += (dense[i * 10 + j] != 0.0) as usize;
            }
        }
        // Every nonzero of the dense Jacobian is in the pattern.
        assert_eq!(covered, dense.iter().filter(|x| **x != 0.0).count());
        assert_eq!(dfdt, dense_dt);
    }

    #[test]
    fn banded_pattern_needs_bandwidth_colours() {
        // Tridiagonal: three colours for any n.
        let entries = (0..50).flat_map(|i: usize| [(i, i.saturating_sub(1)), (i, i), (i, (i + 1).min(49))]);
        let pattern = JacobianPattern::from_entries(50, entries).unwrap();
        assert_eq!(pattern.nnz(), 50 * 3 - 2);
        assert_eq!(pattern.colouring().1, 3);
        assert!(JacobianPattern::from_entries(3, [(0, 3)]).is_err());
    }

    #[test]
    fn branching_models_are_not_branch_free() {
        let m = crate::models::LvPiecewise;
        let u = [1.0, 1.0];
        let p = [1.0, 2.0, 3.0, 4.0];
        assert!(JacobianPattern::detect_branch_free(&m, &u, &p, 0.5).unwrap().is_none());
        assert_eq!(JacobianPattern::detect(&m, &u, &p, 0.5).unwrap().nnz(), 4);
        let b = crate::models::Brusselator1D { n: 4 };
        let u0 = b.initial_state();
        assert!(JacobianPattern::detect_branch_free(&b, &u0, &[1.0, 3.0, 0.02], 0.0).unwrap().is_some());
    }
}
