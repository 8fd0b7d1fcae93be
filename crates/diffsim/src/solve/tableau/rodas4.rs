//! Rodas4: the 6-stage, order 4(3), L-stable and stiffly accurate Rosenbrock method of
//! Hairer & Wanner, with its order-3 dense output.
//!
//! Reference: E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II. Stiff and
//! Differential-Algebraic Problems*, 2nd ed., Springer (1996): Section IV.7 (transformed
//! formulation of Rosenbrock methods) and Section VI.4 (construction of RODAS); this is the
//! coefficient set METH = 1 of their code RODAS.
//!
//! Every coefficient was checked against two sources:
//! - Hairer's Fortran code `rodas.f`, subroutine `ROCOE` (METH = 1: `A21..A54`, `C21..C65`,
//!   `GAMMA`, `C2..C4`, `D1..D4`, and the dense-output coefficients `D21..D35`);
//! - OrdinaryDiffEq.jl, `OrdinaryDiffEqRosenbrockTableaus` `rosenbrock_tableaus.jl`
//!   (`RODAS4A`, `RODAS4C`, `RODAS4c`, `RODAS4d`, `RODAS4H` used by `Rodas4Tableau`).
//!
//! The published coefficients carry 16 significant digits; they are reproduced as published
//! (no more digits exist in either source). The two sources agree digit for digit except
//! `d[3]`: `rodas.f` prints -0.3620000000000023e-1, OrdinaryDiffEq uses -0.0362. Recomputing
//! d_3 = sum_j gamma_3j from `gamma` and `cm` gives -0.0362 to within 1e-15, so the difference
//! (2.3e-16) is below the rounding of the other coefficients; -0.0362 is used.
//!
//! The method is stiffly accurate (stages numbered from 0, as in `RosenbrockTableau`):
//! stages 4 and 5 are evaluated at `t + h`, stage 5 at `u_5 = u_4 + k_4`, and
//! `u_new = u_5 + k_5`, i.e. `m` is row 5 of `a` followed by 1; the embedded order-3 solution
//! is `u_5`, so the error estimate is `k_5` alone.

use super::RosenbrockTableau;

/// Rodas4 (Hairer & Wanner), order 4 with an embedded order-3 estimate.
pub const RODAS4: RosenbrockTableau = RosenbrockTableau {
    name: "Rodas4",
    stages: 6,
    gamma: 0.25,
    a: &[
        &[],
        &[1.544],
        &[0.9466785280815826, 0.2557011698983284],
        &[3.314825187068521, 2.896124015972201, 0.9986419139977817],
        &[1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895],
        &[1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0],
    ],
    cm: &[
        &[],
        &[-5.6688],
        &[-2.430093356833875, -0.2063599157091915],
        &[-0.1073529058151375, -9.594562251023355, -20.47028614809616],
        &[7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616],
        &[8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054],
    ],
    c: &[0.0, 0.386, 0.21, 0.63, 1.0, 1.0],
    d: &[0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0],
    m: &[1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0, 1.0],
    m_err: &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    order: 4,
    embedded_order: 3,
    h_dense: &[
        &[10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823, 1.025137723295662, 0.0],
        &[-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386, -6.594389125716872, 0.0],
    ],
};
