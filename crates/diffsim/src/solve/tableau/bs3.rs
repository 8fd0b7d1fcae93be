//! Bogacki-Shampine 3(2) pair ("BS3", the method of MATLAB's ode23) with cubic Hermite
//! dense output.
//!
//! Method: P. Bogacki and L. F. Shampine, "A 3(2) pair of Runge-Kutta formulas",
//! Appl. Math. Lett. 2(4) (1989) 321-325, doi:10.1016/0893-9659(89)90079-7. Four
//! stages, FSAL: the last row of `a` is `b` and `b[3] = 0`; the embedded second-order
//! weights are (7/24, 1/4, 1/3, 1/8) and `e = b - b_hat`.
//!
//! Dense output: the cubic Hermite interpolant through (u, k_0) at theta = 0 and
//! (u_new, k_3) at theta = 1. With h01 = 3 theta^2 - 2 theta^3,
//! h10 = theta - 2 theta^2 + theta^3 and h11 = theta^3 - theta^2, it reads
//! b_i(theta) = h01 b_i + [i = 0] h10 + [i = 3] h11, expanded below in powers of theta.
//!
//! All coefficients are exact rationals. Checked exactly against two independent
//! sources:
//! - SciPy, `scipy/integrate/_ivp/rk.py`, class `RK23` (`A`, `B`, `C`, `E` = `b_hat - b`,
//!   and the Hermite matrix `P`, equal to the `interp` rows below);
//! - diffrax, `diffrax/_solver/bosh3.py` (`a`, `b`, `c`, `b_error`).

use super::ExplicitTableau;

/// Bogacki-Shampine 3(2): 4 stages, FSAL, order 3, embedded order 2, cubic Hermite dense
/// output (order 3).
pub const BS3: ExplicitTableau = ExplicitTableau {
    name: "BS3",
    stages: 4,
    a: &[&[], &[1.0 / 2.0], &[0.0, 3.0 / 4.0], &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0]],
    c: &[0.0, 1.0 / 2.0, 3.0 / 4.0, 1.0],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    e: &[-5.0 / 72.0, 1.0 / 12.0, 1.0 / 9.0, -1.0 / 8.0],
    fsal: true,
    order: 3,
    embedded_order: 2,
    interp: &[&[1.0, -4.0 / 3.0, 5.0 / 9.0], &[0.0, 1.0, -2.0 / 3.0], &[0.0, 4.0 / 3.0, -8.0 / 9.0], &[0.0, -1.0, 1.0]],
    interp_order: 3,
};
