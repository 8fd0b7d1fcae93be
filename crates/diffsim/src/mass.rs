//! The mass matrix `M` of a model `M u' = f(u, p, t)` ([`crate::problem::Model::mass_matrix`]).
//!
//! Most models with a mass matrix are semi-explicit index-1 DAEs: the identity, except that
//! some states are algebraic (their row and column are zero, so their equation reads
//! `0 = f_i(u, p, t)`). [`MassMatrix::algebraic_states`] says exactly that, and
//! [`MassMatrix::diagonal`] any other diagonal `M`; [`MassMatrix::dense`] takes a general
//! `n x n` matrix. A diagonal `M` is stored as its diagonal: its product with a vector is
//! elementwise, and the solvers read its algebraic states off its zeros. A dense matrix is
//! kept dense as given, even when it happens to be diagonal.
//!
//! Every constructor checks its input (sizes, indices, finite entries) and returns a
//! [`DiffsimError`] that says what was wrong; a model whose matrix has another size than
//! its state is refused when its [`Problem`](crate::problem::Problem) is built.

use crate::error::{DiffsimError, Result};

/// The mass matrix `M` of `M u' = f(u, p, t)`: dense, diagonal, or the identity with
/// zeros at the algebraic states.
///
/// A semi-explicit DAE with two states, `u0' = -u0 + u1` and `0 = u1 - u0^2` (state 1 is
/// algebraic):
///
/// ```
/// use diffsim::{solve, Algorithm, MassMatrix, Model, Problem, Scalar, SolveOptions};
///
/// struct Semi;
/// impl Model for Semi {
///     fn n_states(&self) -> usize { 2 }
///     fn n_params(&self) -> usize { 0 }
///     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
///         du[0] = -u[0] + u[1];
///         du[1] = u[1] - u[0] * u[0]; // the algebraic equation 0 = u1 - u0^2
///     }
///     fn mass_matrix(&self) -> Option<MassMatrix> {
///         Some(MassMatrix::algebraic_states(2, &[1]).expect("state 1 of 2 exists"))
///     }
/// }
///
/// // The same matrix in the three forms.
/// let m = MassMatrix::algebraic_states(2, &[1]).unwrap();
/// assert_eq!(m, MassMatrix::diagonal(vec![1.0, 0.0]).unwrap());
/// assert_eq!(m.to_dense(), MassMatrix::dense(2, vec![1.0, 0.0, 0.0, 0.0]).unwrap().to_dense());
/// assert_eq!(m.as_diagonal(), Some(&[1.0, 0.0][..]));
/// assert_eq!(m.algebraic_state_indices(), [1]);
/// // Bad input is an error, not a panic.
/// assert!(MassMatrix::algebraic_states(2, &[2]).is_err());
/// assert!(MassMatrix::dense(2, vec![1.0, 0.0, 0.0]).is_err());
///
/// // The solver makes the start consistent (u1 = u0^2) and keeps it on the constraint.
/// let prob = Problem::new(Semi, vec![0.5, 0.0], vec![], (0.0, 1.0)).unwrap();
/// let sol = solve(&prob, Algorithm::Rodas5P, &SolveOptions::default().rtol(1e-8).atol(1e-10)).unwrap();
/// let end = sol.u_final();
/// assert!((end[1] - end[0] * end[0]).abs() < 1e-9);
/// // u0' = -u0 + u0^2 from 0.5: u0(t) = 1 / (1 + e^t).
/// assert!((end[0] - 1.0 / (1.0 + 1f64.exp())).abs() < 1e-7);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MassMatrix {
    n: usize,
    storage: Storage,
}

/// How the entries are kept.
#[derive(Clone, Debug, PartialEq)]
enum Storage {
    /// All `n * n` entries, row-major.
    Dense(Vec<f64>),
    /// The `n` diagonal entries; the others are zero.
    Diagonal(Vec<f64>),
}

impl MassMatrix {
    /// A general `n x n` matrix from its entries, row-major (`entries[i * n + j]` is row
    /// `i`, column `j`).
    ///
    /// Errors: `entries` does not have `n * n` values
    /// ([`SizeMismatch`](DiffsimError::SizeMismatch)), or one is NaN or infinite
    /// ([`NonFinite`](DiffsimError::NonFinite), with its row-major index).
    pub fn dense(n: usize, entries: Vec<f64>) -> Result<Self> {
        let Some(expected) = n.checked_mul(n) else {
            return Err(DiffsimError::InvalidModel {
                why: format!(
                    "MassMatrix::dense with n = {n}: n * n entries do not fit in memory; give a diagonal mass matrix \
                     (MassMatrix::diagonal or MassMatrix::algebraic_states)"
                ),
            });
        };
        if entries.len() != expected {
            return Err(DiffsimError::SizeMismatch {
                what: "MassMatrix::dense entries (n * n, row-major)",
                expected,
                got: entries.len(),
            });
        }
        check_finite(&entries, "dense mass matrix (row-major)")?;
        Ok(Self { n, storage: Storage::Dense(entries) })
    }

    /// The diagonal matrix `diag(diagonal)`, with as many states as entries. A zero entry
    /// makes its state algebraic.
    ///
    /// Errors: an entry is NaN or infinite ([`NonFinite`](DiffsimError::NonFinite)).
    pub fn diagonal(diagonal: Vec<f64>) -> Result<Self> {
        check_finite(&diagonal, "diagonal mass matrix")?;
        Ok(Self { n: diagonal.len(), storage: Storage::Diagonal(diagonal) })
    }

    /// The `n x n` identity with zeros on the diagonal at `states`: those states are
    /// algebraic, their equations read `0 = f_i(u, p, t)` (the semi-explicit DAE). Indices
    /// count from 0; a repeated index is the same zero.
    ///
    /// Errors: an index is not below `n` ([`InvalidModel`](DiffsimError::InvalidModel)).
    pub fn algebraic_states(n: usize, states: &[usize]) -> Result<Self> {
        if let Some(&bad) = states.iter().find(|&&i| i >= n) {
            return Err(DiffsimError::InvalidModel {
                why: format!(
                    "MassMatrix::algebraic_states lists state {bad}, but there are {n} states; give indices from 0 \
                     to {}",
                    n.saturating_sub(1)
                ),
            });
        }
        let mut diagonal = vec![1.0; n];
        for &i in states {
            diagonal[i] = 0.0;
        }
        Ok(Self { n, storage: Storage::Diagonal(diagonal) })
    }

    /// The number of states (the matrix is `n x n`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// All `n * n` entries, row-major.
    pub fn to_dense(&self) -> Vec<f64> {
        match &self.storage {
            Storage::Dense(m) => m.clone(),
            Storage::Diagonal(d) => {
                let n = self.n;
                let mut m = vec![0.0; n * n];
                for (i, &v) in d.iter().enumerate() {
                    m[i * n + i] = v;
                }
                m
            }
        }
    }

    /// True when it is stored as a diagonal (built by [`MassMatrix::diagonal`] or
    /// [`MassMatrix::algebraic_states`]); a matrix built by [`MassMatrix::dense`] is kept
    /// dense even when its off-diagonal entries are zero.
    pub fn is_diagonal(&self) -> bool {
        matches!(self.storage, Storage::Diagonal(_))
    }

    /// The diagonal, when the matrix is stored as one (see [`MassMatrix::is_diagonal`]).
    pub fn as_diagonal(&self) -> Option<&[f64]> {
        match &self.storage {
            Storage::Diagonal(d) => Some(d),
            Storage::Dense(_) => None,
        }
    }

    /// The `n * n` entries (row-major), when the matrix is stored dense.
    pub fn as_dense(&self) -> Option<&[f64]> {
        match &self.storage {
            Storage::Dense(m) => Some(m),
            Storage::Diagonal(_) => None,
        }
    }

    /// The entry in row `i`, column `j` (`None` outside the matrix).
    pub fn get(&self, i: usize, j: usize) -> Option<f64> {
        (i < self.n && j < self.n).then(|| self.entry(i, j))
    }

    /// The states whose derivative no equation involves (the zero columns of `M`; the zero
    /// diagonal entries of a diagonal `M`): in a semi-explicit DAE, the algebraic states.
    pub fn algebraic_state_indices(&self) -> Vec<usize> {
        let n = self.n;
        match &self.storage {
            Storage::Diagonal(d) => zeros(d),
            Storage::Dense(m) => (0..n).filter(|&j| (0..n).all(|i| m[i * n + j] == 0.0)).collect(),
        }
    }

    /// The equations without a derivative (the zero rows of `M`; the zero diagonal entries
    /// of a diagonal `M`): the algebraic equations `0 = f_i(u, p, t)`.
    pub fn algebraic_equation_indices(&self) -> Vec<usize> {
        let n = self.n;
        match &self.storage {
            Storage::Diagonal(d) => zeros(d),
            Storage::Dense(m) => (0..n).filter(|&i| m[i * n..(i + 1) * n].iter().all(|&v| v == 0.0)).collect(),
        }
    }

    /// The nonzero entries `(row, column, value)`, row by row.
    pub fn nonzeros(&self) -> Vec<(usize, usize, f64)> {
        let n = self.n;
        match &self.storage {
            Storage::Diagonal(d) => d.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(i, &v)| (i, i, v)).collect(),
            Storage::Dense(m) => (0..n * n).filter(|&k| m[k] != 0.0).map(|k| (k / n, k % n, m[k])).collect(),
        }
    }

    /// `out = M x`.
    ///
    /// Errors: `x` or `out` does not have [`MassMatrix::n`] entries
    /// ([`SizeMismatch`](DiffsimError::SizeMismatch)).
    pub fn mul_vec(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        for (what, got) in [("x of M x", x.len()), ("out of M x", out.len())] {
            if got != self.n {
                return Err(DiffsimError::SizeMismatch { what, expected: self.n, got });
            }
        }
        self.mul_vec_unchecked(x, out);
        Ok(())
    }

    /// `out = M x` for slices of length `n` (the solvers' hot loops; sizes are theirs).
    /// A diagonal `M` multiplies elementwise.
    #[inline]
    pub(crate) fn mul_vec_unchecked(&self, x: &[f64], out: &mut [f64]) {
        let n = self.n;
        match &self.storage {
            Storage::Diagonal(d) => {
                for i in 0..n {
                    out[i] = d[i] * x[i];
                }
            }
            Storage::Dense(m) => {
                for i in 0..n {
                    out[i] = (0..n).map(|j| m[i * n + j] * x[j]).sum();
                }
            }
        }
    }

    /// The entry `(i, j)`, both below `n` (the solvers' loops; sizes are theirs).
    #[inline(always)]
    pub(crate) fn entry(&self, i: usize, j: usize) -> f64 {
        match &self.storage {
            Storage::Diagonal(d) => {
                if i == j {
                    d[i]
                } else {
                    0.0
                }
            }
            Storage::Dense(m) => m[i * self.n + j],
        }
    }

    /// `M` bordered by `extra` more differential states: `[[M, 0], [0, I]]`, in `M`'s
    /// storage (a system augmented with states that follow ODEs, such as a running cost).
    pub(crate) fn with_trailing_identity(&self, extra: usize) -> Self {
        let (n, big) = (self.n, self.n + extra);
        let storage = match &self.storage {
            Storage::Diagonal(d) => {
                Storage::Diagonal(d.iter().copied().chain(std::iter::repeat_n(1.0, extra)).collect())
            }
            Storage::Dense(m) => {
                let mut out = vec![0.0; big * big];
                for i in 0..n {
                    out[i * big..i * big + n].copy_from_slice(&m[i * n..(i + 1) * n]);
                }
                for i in n..big {
                    out[i * big + i] = 1.0;
                }
                Storage::Dense(out)
            }
        };
        Self { n: big, storage }
    }
}

/// The indices of the zero entries.
fn zeros(d: &[f64]) -> Vec<usize> {
    d.iter().enumerate().filter(|(_, &v)| v == 0.0).map(|(i, _)| i).collect()
}

/// Every entry finite, else the first that is not.
fn check_finite(entries: &[f64], what: &'static str) -> Result<()> {
    match entries.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DiffsimError::NonFinite { what, index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_constructors_build_the_same_matrix() {
        let by_states = MassMatrix::algebraic_states(3, &[2]).unwrap();
        let by_diagonal = MassMatrix::diagonal(vec![1.0, 1.0, 0.0]).unwrap();
        let by_dense = MassMatrix::dense(3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        assert_eq!(by_states, by_diagonal);
        for m in [&by_states, &by_diagonal, &by_dense] {
            assert_eq!(m.n(), 3);
            assert_eq!(m.to_dense(), by_dense.as_dense().unwrap());
            assert_eq!(m.algebraic_state_indices(), [2]);
            assert_eq!(m.algebraic_equation_indices(), [2]);
            assert_eq!(m.nonzeros(), [(0, 0, 1.0), (1, 1, 1.0)]);
            assert_eq!((m.get(1, 1), m.get(0, 1), m.get(3, 0)), (Some(1.0), Some(0.0), None));
        }
        // Stored as built: the dense one stays dense.
        assert!(by_states.is_diagonal() && by_diagonal.is_diagonal() && !by_dense.is_diagonal());
        assert_eq!(by_states.as_diagonal(), Some(&[1.0, 1.0, 0.0][..]));
        assert_eq!((by_dense.as_diagonal(), by_states.as_dense()), (None, None));
        // Repeated indices are the same zero; none is the identity.
        assert_eq!(MassMatrix::algebraic_states(3, &[2, 2]).unwrap(), by_states);
        assert_eq!(MassMatrix::algebraic_states(2, &[]).unwrap().as_diagonal(), Some(&[1.0, 1.0][..]));
    }

    #[test]
    fn wrong_sizes_indices_and_non_finite_entries_are_errors() {
        let e = MassMatrix::dense(2, vec![1.0, 0.0, 0.0]).unwrap_err();
        assert!(matches!(e, DiffsimError::SizeMismatch { expected: 4, got: 3, .. }), "{e}");
        assert!(e.to_string().contains("row-major") && e.to_string().contains("pass exactly 4"), "{e}");
        let e = MassMatrix::dense(usize::MAX, vec![]).unwrap_err();
        assert!(matches!(&e, DiffsimError::InvalidModel { why } if why.contains("diagonal")), "{e}");
        let e = MassMatrix::dense(2, vec![1.0, 0.0, f64::NAN, 1.0]).unwrap_err();
        assert_eq!(e, DiffsimError::NonFinite { what: "dense mass matrix (row-major)", index: 2 });
        let e = MassMatrix::diagonal(vec![1.0, f64::INFINITY]).unwrap_err();
        assert_eq!(e, DiffsimError::NonFinite { what: "diagonal mass matrix", index: 1 });
        let e = MassMatrix::diagonal(vec![f64::NAN]).unwrap_err();
        assert!(matches!(e, DiffsimError::NonFinite { index: 0, .. }), "{e}");
        let e = MassMatrix::algebraic_states(6, &[5, 6]).unwrap_err();
        assert!(matches!(&e, DiffsimError::InvalidModel { why } if why.contains("state 6") && why.contains("0 to 5")));
        assert!(MassMatrix::algebraic_states(0, &[0]).is_err());
        // The product checks its slices.
        let m = MassMatrix::diagonal(vec![2.0, 0.0]).unwrap();
        let e = m.mul_vec(&[1.0], &mut [0.0; 2]).unwrap_err();
        assert!(matches!(e, DiffsimError::SizeMismatch { expected: 2, got: 1, .. }), "{e}");
        assert!(m.mul_vec(&[1.0, 2.0], &mut [0.0; 3]).is_err());
    }

    #[test]
    fn the_product_matches_the_dense_product() {
        let x = [0.5, -2.0, 3.0];
        let dense = MassMatrix::dense(3, vec![1.0, 2.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.5, 4.0]).unwrap();
        let mut out = [0.0; 3];
        dense.mul_vec(&x, &mut out).unwrap();
        assert_eq!(out, [0.5 - 4.0, 0.0, -0.5 - 1.0 + 12.0]);
        assert_eq!(dense.algebraic_equation_indices(), [1]);
        assert_eq!(dense.algebraic_state_indices(), Vec::<usize>::new());
        let diagonal = MassMatrix::diagonal(vec![2.0, 0.0, -1.5]).unwrap();
        diagonal.mul_vec(&x, &mut out).unwrap();
        assert_eq!(out, [1.0, 0.0, -4.5]);
    }

    #[test]
    fn bordering_adds_identity_states_in_the_same_storage() {
        let diagonal = MassMatrix::algebraic_states(2, &[0]).unwrap().with_trailing_identity(2);
        assert_eq!(diagonal.as_diagonal(), Some(&[0.0, 1.0, 1.0, 1.0][..]));
        let dense = MassMatrix::dense(2, vec![1.0, 2.0, 3.0, 4.0]).unwrap().with_trailing_identity(1);
        assert_eq!(dense.as_dense().unwrap(), [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(dense.n(), 3);
    }
}
