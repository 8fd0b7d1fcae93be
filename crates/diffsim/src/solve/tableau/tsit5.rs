//! Tsitouras' 5(4) pair ("Tsit5") with its free fourth-order dense output.
//!
//! Method: Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first
//! column simplifying assumption", Computers & Mathematics with Applications 62(2)
//! (2011) 770-775, doi:10.1016/j.camwa.2011.06.002. Seven stages, FSAL: the
//! propagated weights are the last row of `a` (so `b[6] = 0`), and the embedded
//! fourth-order weights are the paper's b-hat, whose last entry is 1/66; here
//! `e = b - b_hat`. The dense output is the paper's interpolant, with the factored
//! polynomials b_i(theta) expanded into monomial coefficients of theta..theta^4.
//! The theta^2 coefficient of stage 1 is 0.1317 exactly as in the factored form
//! (0.1317 - 0.2234 + 0.1017 = b_1 = 0.01); the long decimal printed for it in
//! OrdinaryDiffEq.jl rounds to the f64 one ulp below.
//!
//! Coefficients are the f64 values nearest to the long decimal expansions, written as
//! the shortest literal that round-trips. They were taken from, and checked against,
//! two independent published implementations:
//! - OrdinaryDiffEq.jl, `lib/OrdinaryDiffEqTsit5/src/tsit_tableaus.jl` (the
//!   arbitrary-precision `a`, `c`, `b`-hat, `btilde` and interpolation values; its
//!   `btilde` is `b_hat - b`, the negative of `e` here);
//! - diffrax, `diffrax/_solver/tsit5.py` (`a`, `b`, `c`, `b_error`, and the factored
//!   interpolation polynomials, which agree with the expanded ones to 1e-14).
//!
//! Checked numerically: row sums of `a` equal `c`; the order conditions hold up to order
//! 5 for `b` and 4 for `b - e`; `b_i(1) = b_i`; the interpolant satisfies the
//! continuous order conditions up to order 4; the measured convergence orders match.

use super::ExplicitTableau;

/// Tsitouras 5(4): 7 stages, FSAL, order 5, embedded order 4, dense output of order 4.
pub const TSIT5: ExplicitTableau = ExplicitTableau {
    name: "Tsit5",
    stages: 7,
    a: &[
        &[],
        &[0.161],
        &[-0.008480655492356989, 0.335480655492357],
        &[2.8971530571054935, -6.359448489975075, 4.3622954328695815],
        &[5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
        &[5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383],
        &[0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774],
    ],
    c: &[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    b: &[0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774, 0.0],
    e: &[
        0.0017800110522257714,
        0.0008164344596567469,
        -0.007880878010261995,
        0.1447110071732629,
        -0.5823571654525552,
        0.45808210592918697,
        -1.0 / 66.0,
    ],
    fsal: true,
    order: 5,
    embedded_order: 4,
    interp: &[
        &[1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216],
        &[0.0, 0.1317, -0.2234, 0.1017],
        &[0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253],
        &[0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902],
        &[0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928],
        &[0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661],
        &[0.0, 1.5, -4.0, 2.5],
    ],
    interp_order: 4,
};
