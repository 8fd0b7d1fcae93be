//! Radau IIA methods of `s` stages (order `2 s - 1`) in the transformed form their Newton
//! iteration uses ([`super::super::radau`]).
//!
//! The coefficients come from `tools/radau_tableau.py --rust`, which derives them from the
//! method's definition in 60-digit arithmetic (nodes, `A`, the eigen-decomposition of
//! `A^-1`, the embedded error weights). The 3-stage nodes, eigenvalues, error weights and
//! the last two columns of `T` are Hairer's RADAU5 constants (RADAU5 scales `T`'s first
//! column differently); the 5-stage nodes, eigenvalues, error weights and `T^-1` agree with
//! OrdinaryDiffEq.jl's `RadauIIA9Tableau`. The unit tests check both against the Butcher
//! tableau itself.

/// An `s`-stage Radau IIA method, transformed: `T^-1 A^-1 T` is block diagonal with the
/// real eigenvalue `gamma` of `A^-1` first, then one `[[alpha_k, -beta_k], [beta_k,
/// alpha_k]]` block per complex pair `alpha_k +- i beta_k`.
#[derive(Debug)]
pub(crate) struct RadauTableau {
    /// `s`, odd.
    pub(crate) stages: usize,
    /// The nodes (`c_s = 1`).
    pub(crate) c: &'static [f64],
    /// The dense output's Newton-form nodes ([`newton_nodes`]).
    pub(crate) nodes: &'static [f64],
    pub(crate) gamma: f64,
    /// `(s - 1) / 2` pairs.
    pub(crate) alpha: &'static [f64],
    pub(crate) beta: &'static [f64],
    /// `T` and `T^-1`, row-major `s x s`.
    pub(crate) t: &'static [f64],
    pub(crate) ti: &'static [f64],
    /// The filtered error estimate's weights: `err = (gamma / h M - J)^-1 (f(u0) + M sum_i
    /// dd_i z_i / h)`.
    pub(crate) dd: &'static [f64],
}

/// The nodes of a step's collocation polynomial in Newton form, in `x = theta - 1`:
/// `0, c_{s-1} - 1, ..., c_1 - 1` (the polynomial also passes through `x = -1`, which
/// enters only its divided differences).
pub(crate) const fn newton_nodes<const S: usize>(c: &[f64; S]) -> [f64; S] {
    let mut x = [0.0; S];
    let mut k = 1;
    while k < S {
        x[k] = c[S - 1 - k] - 1.0;
        k += 1;
    }
    x
}

/// Radau IIA of order 5 (RADAU5).
const RADAU_IIA_3_C: [f64; 3] = [0.1550510257216822, 0.6449489742783178, 1.0];
pub(crate) const RADAU_IIA_3: RadauTableau = RadauTableau {
    stages: 3,
    c: &RADAU_IIA_3_C,
    nodes: &newton_nodes::<3>(&RADAU_IIA_3_C),
    gamma: 3.637834252744496,
    alpha: &[2.6810828736277523],
    beta: &[3.0504301992474105],
    t: &[
        0.09443876248897524,
        -0.1412552950209542,
        -0.030029194105147424,
        0.2502131229653333,
        0.20412935229379994,
        0.3829421127572619,
        1.0,
        1.0,
        0.0,
    ],
    ti: &[
        4.178718591551905,
        0.32768282076106237,
        0.5233764454994495,
        -4.178718591551905,
        -0.32768282076106237,
        0.47662355450055044,
        -0.5028726349457868,
        2.571926949855605,
        -0.5960392048282249,
    ],
    dd: &[-10.048809399827416, 1.382142733160749, -0.3333333333333333],
};

/// Radau IIA of order 9.
const RADAU_IIA_5_C: [f64; 5] = [0.05710419611451768, 0.2768430136381238, 0.5835904323689168, 0.8602401356562195, 1.0];
pub(crate) const RADAU_IIA_5: RadauTableau = RadauTableau {
    stages: 5,
    c: &RADAU_IIA_5_C,
    nodes: &newton_nodes::<5>(&RADAU_IIA_5_C),
    gamma: 6.2867047517292765,
    alpha: &[3.655694325463572, 5.70095329867179],
    beta: &[6.543736899360077, 3.2102656003085497],
    t: &[
        0.013576867344947943,
        -0.010242047817908826,
        0.04767387729029572,
        -0.011478515255229515,
        -0.01401985889287541,
        0.0016179004017190875,
        0.05017286451737106,
        -0.09433181918161143,
        -0.007668830749180163,
        0.024708578426518527,
        0.07915785334744721,
        -0.23053953404341795,
        0.1027030453801259,
        0.01939846399882895,
        0.08180035370375117,
        0.41225608268046143,
        0.37789390224886127,
        0.46674413033249434,
        0.40760117128019907,
        0.19968242788680252,
        1.0,
        1.0,
        0.0,
        1.0,
        0.0,
    ],
    ti: &[
        27.697693775684087,
        12.783337911304406,
        3.20848938671343,
        -0.9514904122489162,
        0.7415504960259897,
        5.344186437834912,
        4.593615567759161,
        -3.0363603234594243,
        1.050660190231459,
        -0.27277861186429625,
        3.748059807439805,
        -3.984965736343885,
        -1.0444156416080188,
        1.1840985681379486,
        -0.44991777015678036,
        -33.041880213519,
        -17.376953479063566,
        -0.17212906325400557,
        -0.09916977798254265,
        0.5312281158383066,
        -8.611443979875292,
        9.699991409528808,
        1.9147286396968743,
        2.41869200608494,
        -1.0474634879353375,
    ],
    dd: &[-27.78093394406464, 3.641478498049213, -1.2525477211691187, 0.5920031671845428, -0.2],
};
