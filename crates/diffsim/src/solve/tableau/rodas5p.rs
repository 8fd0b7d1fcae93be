//! Rodas5P: Steinebach's 8-stage, order 5(4), L-stable and stiffly accurate Rosenbrock
//! method, with its order-4 dense output.
//!
//! Reference: G. Steinebach, "Construction of Rosenbrock-Wanner method Rodas5P and numerical
//! benchmarks within the Julia Differential Equations package", BIT Numerical Mathematics 63,
//! 27 (2023). The transformed formulation follows E. Hairer, G. Wanner, *Solving Ordinary
//! Differential Equations II*, 2nd ed., Springer (1996), Section IV.7.
//!
//! Every coefficient was checked against two sources:
//! - the author's own contribution of the method to OrdinaryDiffEq.jl (G. Steinebach, commit
//!   000230a3e "New method Rodas5P ...", 2022: `Rodas5PTableau` with `gamma`, `a21..a65`,
//!   `C21..C87`, `c2..c5`, `d1..d5`, `h21..h48`);
//! - the current OrdinaryDiffEq.jl `OrdinaryDiffEqRosenbrock` `rosenbrock_tableaus.jl`
//!   (`RODAS5PA`, `RODAS5PC`, `RODAS5Pc`, `RODAS5Pd`, `RODAS5PH` used by `Rodas5PTableau`).
//!
//! Both print each coefficient as the shortest decimal that round-trips to an IEEE double
//! (up to 17 significant digits); the literals below are those decimals, so they give the
//! same doubles as the author's implementation.
//!
//! The method is stiffly accurate (stages numbered from 0, as in `RosenbrockTableau`):
//! stages 5, 6 and 7 are evaluated at `t + h`, `u_6 = u_5 + k_5`, `u_7 = u_6 + k_6` and
//! `u_new = u_7 + k_7`, i.e. `m` is row 7 of `a` followed by 1; the embedded order-4
//! solution is `u_7`, so the error estimate is `k_7`.

use super::RosenbrockTableau;

/// Rodas5P (Steinebach 2023), order 5 with an embedded order-4 estimate.
pub const RODAS5P: RosenbrockTableau = RosenbrockTableau {
    name: "Rodas5P",
    stages: 8,
    gamma: 0.21193756319429014,
    a: &[
        &[],
        &[3.0],
        &[2.849394379747939, 0.45842242204463923],
        &[-6.954028509809101, 2.489845061869568, -10.358996098473584],
        &[2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641],
        &[-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256, 0.030198172008377946],
        &[-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256, 0.030198172008377946, 1.0],
        &[
            -7.502846399306121,
            2.561846144803919,
            -11.627539656261098,
            -0.18268767659942256,
            0.030198172008377946,
            1.0,
            1.0,
        ],
    ],
    cm: &[
        &[],
        &[-14.155112264123755],
        &[-17.97296035885952, -2.859693295451294],
        &[147.12150275711716, -1.41221402718213, 71.68940251302358],
        &[165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306],
        &[24.854864614690072, -3.0009227002832186, 47.4931110020768, 5.5814197821558125, -0.6610691825249471],
        &[
            30.91273214028599,
            -3.1208243349937974,
            77.79954646070892,
            34.28646028294783,
            -19.097331116725623,
            -28.087943162872662,
        ],
        &[
            37.80277123390563,
            -3.2571969029072276,
            112.26918849496327,
            66.9347231244047,
            -40.06618937091002,
            -54.66780262877968,
            -9.48861652309627,
        ],
    ],
    c: &[0.0, 0.6358126895828704, 0.4095798393397535, 0.9769306725060716, 0.4288403609558664, 1.0, 1.0, 1.0],
    d: &[
        0.21193756319429014,
        -0.42387512638858027,
        -0.3384627126235924,
        1.8046452872882734,
        2.325825639765069,
        0.0,
        0.0,
        0.0,
    ],
    m: &[
        -7.502846399306121,
        2.561846144803919,
        -11.627539656261098,
        -0.18268767659942256,
        0.030198172008377946,
        1.0,
        1.0,
        1.0,
    ],
    m_err: &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    order: 5,
    embedded_order: 4,
    h_dense: &[
        &[
            25.948786856663858,
            -2.5579724845846235,
            10.433815404888879,
            -2.3679251022685204,
            0.524948541321073,
            1.1241088310450404,
            0.4272876194431874,
            -0.17202221070155493,
        ],
        &[
            -9.91568850695171,
            -0.9689944594115154,
            3.0438037242978453,
            -24.495224566215796,
            20.176138334709044,
            15.98066361424651,
            -6.789040303419874,
            -6.710236069923372,
        ],
        &[
            11.419903575922262,
            2.8879645146136994,
            72.92137995996029,
            80.12511834622643,
            -52.072871366152654,
            -59.78993625266729,
            -0.15582684282751913,
            4.883087185713722,
        ],
    ],
};
