//! The stiff test set (HIRES, OREGO, POLLU, VDPOL, ROBER, Akzo Nobel, E5) for
//! `bench/peers/stiff_peers.py`: `diffsol-bench --stiff NAME --rtol R --atol A` solves one
//! problem at one tolerance with BDF, ESDIRK34 and TR-BDF2 (or those named by
//! `--methods BDF,ESDIRK34,TR-BDF2`) and prints one JSON line per method, in the same format as the other cases (`peer`, `problem`, `solver`, ...).
//!
//! The constants, starts and spans are those of `bench/peers/stiff_problems.py` and of
//! diffsim's zoo (`crates/diffsim/src/models/stiff_test_set.rs`). Akzo Nobel is solved as
//! the test set states it, an index-1 DAE with the mass matrix diag(1, 1, 1, 1, 1, 0).
//! Each method is timed like the other cases, but a solve slower than the budget is run
//! once only (at tight tolerances one solve can take seconds).

use crate::{emit, integrate, Outcome, LS, M};
use diffsol::OdeBuilder;
use std::time::Instant;

/// Median seconds of `f` over repeats until `budget` is spent (after a warm-up, when the
/// first solve took less than the budget), the repeats and the last outcome.
fn timed_once_or_more<F: FnMut() -> Outcome>(budget: f64, mut f: F) -> (f64, usize, Outcome) {
    let t0 = Instant::now();
    let first = f();
    let first_secs = t0.elapsed().as_secs_f64();
    if first_secs >= budget || !first.ok {
        return (first_secs, 1, first);
    }
    let mut times = Vec::new();
    let start = Instant::now();
    let mut last;
    loop {
        let t = Instant::now();
        last = f();
        times.push(t.elapsed().as_secs_f64());
        if (times.len() >= 3 && start.elapsed().as_secs_f64() >= budget) || times.len() >= 1000 {
            break;
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = times.len();
    let median = if n % 2 == 1 { times[n / 2] } else { 0.5 * (times[n / 2 - 1] + times[n / 2]) };
    (median, n, last)
}

/// BDF, ESDIRK34 and TR-BDF2 on one built problem (a solver that cannot be created is
/// reported as a failed run).
macro_rules! suite {
    ($name:expr, $problem:expr, $t1:expr, $rtol:expr, $atol:expr, $budget:expr) => {{
        let problem = $problem;
        if wanted("BDF") {
            let (s, n, o) = timed_once_or_more($budget, || match problem.bdf::<LS>() {
                Ok(solver) => integrate(solver, $t1),
                Err(_) => Outcome::failed($t1),
            });
            emit($name, "BDF", s, n, &o, $rtol, $atol);
        }
        if wanted("ESDIRK34") {
            let (s, n, o) = timed_once_or_more($budget, || match problem.esdirk34::<LS>() {
                Ok(solver) => integrate(solver, $t1),
                Err(_) => Outcome::failed($t1),
            });
            emit($name, "ESDIRK34", s, n, &o, $rtol, $atol);
        }
        if wanted("TR-BDF2") {
            let (s, n, o) = timed_once_or_more($budget, || match problem.tr_bdf2::<LS>() {
                Ok(solver) => integrate(solver, $t1),
                Err(_) => Outcome::failed($t1),
            });
            emit($name, "TR-BDF2", s, n, &o, $rtol, $atol);
        }
    }};
}

thread_local! {
    /// The methods to run (`--methods`; all when empty).
    static METHODS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn wanted(method: &str) -> bool {
    METHODS.with(|m| m.borrow().is_empty() || m.borrow().iter().any(|x| x == method))
}

// ---------------------------------------------------------------- HIRES

const HIRES_K: [f64; 10] = [1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280.0, 0.69, 0.69, 0.0007];

/// The linear part of HIRES applied to `x` (without the source `oks` and the binding term).
fn hires_linear(p: &[f64], x: &[f64], y: &mut [f64]) {
    let (k1, k2, k3, k4, k5, k6, k8, k9) = (p[0], p[1], p[2], p[3], p[4], p[5], p[7], p[8]);
    y[0] = k2 * x[1] - k1 * x[0] + k6 * x[2];
    y[1] = k1 * x[0] - (k2 + k3) * x[1];
    y[2] = k2 * x[3] + k5 * x[4] - (k1 + k6) * x[2];
    y[3] = k3 * x[1] + k1 * x[2] - (k2 + k4) * x[3];
    y[4] = k2 * (x[5] + x[6]) - (k1 + k5) * x[4];
    y[5] = k8 * (x[3] + x[6]) + k1 * x[4] - k2 * x[5];
    y[6] = -(k2 + k8 + k9) * x[6];
    y[7] = (k2 + k8 + k9) * x[6];
}

/// The binding term `b` of HIRES enters y6', y7', y8' as -b, +b, -b.
fn hires_binding(y: &mut [f64], b: f64) {
    y[5] -= b;
    y[6] += b;
    y[7] -= b;
}

fn hires(rtol: f64, atol: f64, budget: f64) {
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .p(HIRES_K)
        .rhs_implicit(
            |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                hires_linear(p, x, y);
                y[0] += p[9];
                hires_binding(y, p[6] * x[5] * x[7]);
            },
            |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                hires_linear(p, v, y);
                hires_binding(y, p[6] * (v[5] * x[7] + x[5] * v[7]));
            },
        )
        .init(
            |_p: &[f64], _t: f64, y: &mut [f64]| {
                y.fill(0.0);
                y[0] = 1.0;
                y[7] = 0.0057;
            },
            8,
        )
        .build()
        .expect("hires problem");
    suite!("hires", problem, 321.8122, rtol, atol, budget);
}

// ---------------------------------------------------------------- OREGO

fn orego(rtol: f64, atol: f64, budget: f64) {
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .p([77.27, 0.161, 8.375e-6])
        .rhs_implicit(
            |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                let (s, w, q) = (p[0], p[1], p[2]);
                y[0] = s * (x[1] + x[0] * (1.0 - q * x[0] - x[1]));
                y[1] = (x[2] - (1.0 + x[0]) * x[1]) / s;
                y[2] = w * (x[0] - x[2]);
            },
            |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                let (s, w, q) = (p[0], p[1], p[2]);
                y[0] = s * ((1.0 - 2.0 * q * x[0] - x[1]) * v[0] + (1.0 - x[0]) * v[1]);
                y[1] = (v[2] - x[1] * v[0] - (1.0 + x[0]) * v[1]) / s;
                y[2] = w * (v[0] - v[2]);
            },
        )
        .init(
            |_p: &[f64], _t: f64, y: &mut [f64]| {
                y[0] = 1.0;
                y[1] = 2.0;
                y[2] = 3.0;
            },
            3,
        )
        .build()
        .expect("orego problem");
    suite!("orego", problem, 360.0, rtol, atol, budget);
}

// ---------------------------------------------------------------- POLLU

const POLLU_K: [f64; 25] = [
    0.35, 26.6, 1.23e4, 8.6e-4, 8.2e-4, 1.5e4, 1.3e-4, 2.4e4, 1.65e4, 9.0e3, 2.2e-2, 1.2e4, 1.88, 1.63e4, 4.8e6,
    3.5e-4, 1.75e-2, 1.0e8, 4.44e11, 1.24e3, 2.1, 5.78, 4.74e-2, 1.78e3, 3.12,
];

/// Reaction i has rate k[i] * x[a] (* x[b]); 0-based species.
const POLLU_REACTIONS: [(usize, Option<usize>); 25] = [
    (0, None),
    (1, Some(3)),
    (4, Some(1)),
    (6, None),
    (6, None),
    (6, Some(5)),
    (8, None),
    (8, Some(5)),
    (10, Some(1)),
    (10, Some(0)),
    (12, None),
    (9, Some(1)),
    (13, None),
    (0, Some(5)),
    (2, None),
    (3, None),
    (3, None),
    (15, None),
    (15, None),
    (16, Some(5)),
    (18, None),
    (18, None),
    (0, Some(3)),
    (18, Some(0)),
    (19, None),
];

/// Species balances from reaction rates (or their directional derivatives) `r`.
fn pollu_balance(r: &[f64; 25], y: &mut [f64]) {
    y[0] = r[1] + r[2] + r[8] + r[10] + r[11] + r[21] + r[24] - r[0] - r[9] - r[13] - r[22] - r[23];
    y[1] = r[0] + r[20] - r[1] - r[2] - r[8] - r[11];
    y[2] = r[0] + r[16] + r[18] + r[21] - r[14];
    y[3] = r[14] - r[1] - r[15] - r[16] - r[22];
    y[4] = 2.0 * r[3] + r[5] + r[6] + r[12] + r[19] - r[2];
    y[5] = r[2] + 2.0 * r[17] - r[5] - r[7] - r[13] - r[19];
    y[6] = r[12] - r[3] - r[4] - r[5];
    y[7] = r[3] + r[4] + r[5] + r[6];
    y[8] = -r[6] - r[7];
    y[9] = r[6] + r[8] - r[11];
    y[10] = r[7] + r[10] - r[8] - r[9];
    y[11] = r[8];
    y[12] = r[9] - r[10];
    y[13] = r[11] - r[12];
    y[14] = r[13];
    y[15] = r[15] - r[17] - r[18];
    y[16] = -r[19];
    y[17] = r[19];
    y[18] = r[22] + r[24] - r[20] - r[21] - r[23];
    y[19] = r[23] - r[24];
}

fn pollu(rtol: f64, atol: f64, budget: f64) {
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .p(POLLU_K)
        .rhs_implicit(
            |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                let mut r = [0.0; 25];
                for (i, &(a, b)) in POLLU_REACTIONS.iter().enumerate() {
                    r[i] = p[i] * x[a] * b.map_or(1.0, |b| x[b]);
                }
                pollu_balance(&r, y);
            },
            |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                let mut dr = [0.0; 25];
                for (i, &(a, b)) in POLLU_REACTIONS.iter().enumerate() {
                    dr[i] = match b {
                        Some(b) => p[i] * (v[a] * x[b] + x[a] * v[b]),
                        None => p[i] * v[a],
                    };
                }
                pollu_balance(&dr, y);
            },
        )
        .init(
            |_p: &[f64], _t: f64, y: &mut [f64]| {
                y.fill(0.0);
                for (i, v) in [(1, 0.2), (3, 0.04), (6, 0.1), (7, 0.3), (8, 0.01), (16, 0.007)] {
                    y[i] = v;
                }
            },
            20,
        )
        .build()
        .expect("pollu problem");
    suite!("pollu", problem, 60.0, rtol, atol, budget);
}

// ---------------------------------------------------------------- Akzo Nobel (DAE)

const AKZO_P: [f64; 9] = [18.7, 0.58, 0.09, 0.42, 34.4, 3.3, 115.83, 0.9, 737.0];

/// Akzo's five reaction terms and the inflow from the state, and the balances.
fn akzo_balance(r: &[f64; 5], inflow: f64, y: &mut [f64]) {
    y[0] = r[1] - r[2] - r[3] - 2.0 * r[0];
    y[1] = inflow - 0.5 * r[0] - r[3] - 0.5 * r[4];
    y[2] = r[0] - r[1] + r[2];
    y[3] = r[2] - r[1] - 2.0 * r[3];
    y[4] = r[1] - r[2] + r[4];
}

fn akzo(rtol: f64, atol: f64, budget: f64) {
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .p(AKZO_P)
        .rhs_implicit(
            |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                let (k1, k2, k3, k4, kbig, kla, ks, pco2, hen) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]);
                let s = x[1].max(0.0).sqrt();
                let r = [
                    k1 * x[0].powi(4) * s,
                    k2 * x[2] * x[3],
                    k2 / kbig * x[0] * x[4],
                    k3 * x[0] * x[3] * x[3],
                    k4 * x[5] * x[5] * s,
                ];
                akzo_balance(&r, kla * (pco2 / hen - x[1]), y);
                y[5] = ks * x[0] * x[3] - x[5];
            },
            |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                let (k1, k2, k3, k4, kbig, kla, ks) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
                let s = x[1].max(1e-300).sqrt();
                let dr = [
                    k1 * (4.0 * x[0].powi(3) * s * v[0] + 0.5 * x[0].powi(4) / s * v[1]),
                    k2 * (v[2] * x[3] + x[2] * v[3]),
                    k2 / kbig * (v[0] * x[4] + x[0] * v[4]),
                    k3 * (v[0] * x[3] * x[3] + 2.0 * x[0] * x[3] * v[3]),
                    k4 * (2.0 * x[5] * s * v[5] + 0.5 * x[5] * x[5] / s * v[1]),
                ];
                akzo_balance(&dr, -kla * v[1], y);
                y[5] = ks * (v[0] * x[3] + x[0] * v[3]) - v[5];
            },
        )
        .mass(|v: &[f64], _p: &[f64], _t: f64, beta: f64, y: &mut [f64]| {
            for i in 0..5 {
                y[i] = v[i] + beta * y[i];
            }
            y[5] *= beta;
        })
        .init(
            |p: &[f64], _t: f64, y: &mut [f64]| {
                y.copy_from_slice(&[0.444, 0.00123, 0.0, 0.007, 0.0, p[6] * 0.444 * 0.007]);
            },
            6,
        )
        .build()
        .expect("akzo problem");
    suite!("akzo", problem, 180.0, rtol, atol, budget);
}

// ---------------------------------------------------------------- E5

fn e5(rtol: f64, atol: f64, budget: f64) {
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .p([7.89e-10, 1.1e7, 1.13e3, 1e6])
        .rhs_implicit(
            |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                let (a, b, c, m) = (p[0], p[1], p[2], p[3]);
                let (decay, capture) = (a * x[0], b * x[0] * x[2]);
                let (recombination, release) = (c * m * x[1] * x[2], c * x[3]);
                y[0] = -decay - capture;
                y[1] = decay - recombination;
                y[3] = capture - release;
                y[2] = y[1] - y[3];
            },
            |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                let (a, b, c, m) = (p[0], p[1], p[2], p[3]);
                let capture = b * (v[0] * x[2] + x[0] * v[2]);
                let recombination = c * m * (v[1] * x[2] + x[1] * v[2]);
                y[0] = -a * v[0] - capture;
                y[1] = a * v[0] - recombination;
                y[3] = capture - c * v[3];
                y[2] = y[1] - y[3];
            },
        )
        .init(
            |_p: &[f64], _t: f64, y: &mut [f64]| {
                y.copy_from_slice(&[1.76e-3, 0.0, 0.0, 0.0]);
            },
            4,
        )
        .build()
        .expect("e5 problem");
    suite!("e5", problem, 1e13, rtol, atol, budget);
}

/// Run test-set problem `name` at (rtol, atol) with `methods` (BDF, ESDIRK34, TR-BDF2;
/// all when empty); false for an unknown name.
pub fn run(name: &str, rtol: f64, atol: f64, budget: f64, methods: Vec<String>) -> bool {
    METHODS.with(|m| *m.borrow_mut() = methods);
    match name {
        "hires" => hires(rtol, atol, budget),
        "orego" => orego(rtol, atol, budget),
        "pollu" => pollu(rtol, atol, budget),
        "vdpol" => suite!("vdpol", vdp_problem!(1e6, rtol, atol), 2.0, rtol, atol, budget),
        "rober" => suite!("rober", robertson_problem!([0.04, 3e7, 1e4], rtol, atol), 1e11, rtol, atol, budget),
        "akzo" => akzo(rtol, atol, budget),
        "e5" => e5(rtol, atol, budget),
        _ => return false,
    }
    true
}
