//! Dormand-Prince 5(4) pair ("DP5", the method of DOPRI5 and ode45) with Shampine's
//! fourth-order continuous extension.
//!
//! Method: J. R. Dormand and P. J. Prince, "A family of embedded Runge-Kutta
//! formulae", J. Comput. Appl. Math. 6(1) (1980) 19-26,
//! doi:10.1016/0771-050X(80)90013-3. Seven stages, FSAL: the last row of `a` is `b`
//! and `b[6] = 0`; the embedded weights are (5179/57600, 0, 7571/16695, 393/640,
//! -92097/339200, 187/2100, 1/40) and `e = b - b_hat`.
//!
//! Dense output: L. F. Shampine, "Some practical Runge-Kutta formulas", Math. Comp.
//! 46(173) (1986) 135-150, in the form used by Hairer's DOPRI5 (E. Hairer, S. P.
//! Norsett, G. Wanner, "Solving Ordinary Differential Equations I", 2nd ed., Springer
//! 1993, Sec. II.6): with theta1 = 1 - theta,
//! u(t + theta h) = u + theta (r2 + theta1 (r3 + theta (r4 + theta1 r5))), where
//! r2 = u_new - u, r3 = h k_0 - r2, r4 = r2 - h k_6 - r3 and r5 = h sum_i d_i k_i.
//! Expanding in powers of theta gives, per stage, the exact rational coefficients below
//! (theta^1: [i = 0]; theta^2: 3 b_i - 2 [i = 0] - [i = 6] + d_i;
//! theta^3: -2 b_i + [i = 0] + [i = 6] - 2 d_i; theta^4: d_i).
//!
//! All coefficients are exact rationals (each numerator and denominator is exactly
//! representable, so every quotient is correctly rounded). Taken from, and checked
//! exactly (rational arithmetic) against, two independent sources:
//! - Hairer's `dopri5.f` (subroutine `CDOPRI`: `a`, `c`, `e`, `d`; function `CONTD5`:
//!   the dense-output formula above);
//! - SciPy, `scipy/integrate/_ivp/rk.py`, class `RK45` (`A`, `B`, `C`, `E` = `b_hat - b`,
//!   and the matrix `P`, which equals the `interp` rows below entry for entry).
//!
//! The quartic of diffrax (`diffrax/_solver/dopri5.py`, through u, u_new, k_0, k_6 and a
//! fifth-order midpoint value) was also checked to be the same polynomial.

use super::ExplicitTableau;

/// Dormand-Prince 5(4): 7 stages, FSAL, order 5, embedded order 4, dense output of order 4.
pub const DP5: ExplicitTableau = ExplicitTableau {
    name: "DP5",
    stages: 7,
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
        &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
        &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
    ],
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    b: &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0, 0.0],
    e: &[71.0 / 57600.0, 0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0],
    fsal: true,
    order: 5,
    embedded_order: 4,
    interp: &[
        &[1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0, -12715105075.0 / 11282082432.0],
        &[0.0, 0.0, 0.0, 0.0],
        &[0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0, 87487479700.0 / 32700410799.0],
        &[0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0, -10690763975.0 / 1880347072.0],
        &[0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0, 701980252875.0 / 199316789632.0],
        &[0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0, -1453857185.0 / 822651844.0],
        &[0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0],
    ],
    interp_order: 4,
};
