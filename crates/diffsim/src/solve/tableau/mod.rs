//! Methods as data: Butcher tableaus of the explicit Runge-Kutta methods and the
//! (transformed) coefficients of the Rosenbrock methods, each with its dense output.
//!
//! One stepping routine per family reads these; a method file is its coefficients only.

/// An explicit Runge-Kutta method with an embedded error estimate and a dense output.
///
/// Stages are numbered from 0. The step uses stages `0..stages`; stages `stages..` (if any)
/// are extra stages evaluated only when the dense output is needed.
#[derive(Debug)]
pub struct ExplicitTableau {
    /// Short name, e.g. "Tsit5".
    pub name: &'static str,
    /// Number of stages of one step (for FSAL methods this includes the last stage,
    /// evaluated at (t + h, u_new), whose value is reused as stage 0 of the next step).
    pub stages: usize,
    /// Strictly lower-triangular A, row by row, for all stages including the extra
    /// dense-output stages: `a[i]` has exactly `i` entries (`a[0]` is empty).
    /// Stage `i` is evaluated at `u + h * sum_j a[i][j] k_j`, time `t + c[i] h`.
    pub a: &'static [&'static [f64]],
    /// Nodes c, one per stage (including extra stages).
    pub c: &'static [f64],
    /// Weights of the propagated solution: `u_new = u + h * sum_i b[i] k_i` (len `stages`).
    pub b: &'static [f64],
    /// Error weights: `err = h * sum_i e[i] k_i`, `e = b - b_hat` (len `stages`).
    pub e: &'static [f64],
    /// First same as last: stage `stages - 1` has c = 1 and a = b, so its f value is the
    /// next step's stage 0.
    pub fsal: bool,
    /// Order of the propagated solution.
    pub order: u32,
    /// Order of the embedded solution (the error estimate is O(h^(embedded_order + 1))).
    pub embedded_order: u32,
    /// Dense output: u(t + theta h) = u + h * sum_i b_i(theta) k_i with
    /// `b_i(theta) = sum_k interp[i][k] * theta^(k + 1)`. One row per stage, including the
    /// extra stages; rows may be shorter than others (missing high coefficients are 0).
    pub interp: &'static [&'static [f64]],
    /// Order of the dense output.
    pub interp_order: u32,
}

/// A Rosenbrock (linearly implicit) method in the transformed form used by Hairer & Wanner
/// and OrdinaryDiffEq, for M u' = f(u, t) with W = M / (gamma h) - J:
///
/// ```text
/// for i in 0..stages:
///     u_i   = u + sum_{j<i} a[i][j] k_j
///     rhs_i = f(u_i, t + c[i] h) + sum_{j<i} (cm[i][j] / h) M k_j + h d[i] df/dt
///     k_i   = W^{-1} rhs_i
/// u_new = u + sum_i m[i] k_i
/// err   = sum_i m_err[i] k_i
/// ```
#[derive(Debug)]
pub struct RosenbrockTableau {
    /// Short name, e.g. "Rodas5P".
    pub name: &'static str,
    /// Number of stages.
    pub stages: usize,
    /// The diagonal gamma.
    pub gamma: f64,
    /// Transformed a: `a[i]` has exactly `i` entries.
    pub a: &'static [&'static [f64]],
    /// Transformed C ("cm" to avoid clashing with the nodes): `cm[i]` has `i` entries.
    pub cm: &'static [&'static [f64]],
    /// Time nodes.
    pub c: &'static [f64],
    /// d_i = sum_j gamma_ij (row sums of the original Gamma, diagonal included).
    pub d: &'static [f64],
    /// Weights of the new solution in terms of the k_i.
    pub m: &'static [f64],
    /// Weights of the error estimate in terms of the k_i.
    pub m_err: &'static [f64],
    /// Order of the propagated solution.
    pub order: u32,
    /// Order of the embedded solution.
    pub embedded_order: u32,
    /// Dense output rows: `kd_r = sum_i h_dense[r][i] k_i`, and
    /// `u(t + theta h) = (1 - theta) u + theta (u_new + (1 - theta)(kd_0 + theta kd_1 + theta^2 kd_2 + ...))`.
    pub h_dense: &'static [&'static [f64]],
}

pub mod bs3;
pub mod dp5;
pub(crate) mod radau;
pub mod rodas4;
pub mod rodas5p;
pub mod tsit5;
pub mod vern7;
