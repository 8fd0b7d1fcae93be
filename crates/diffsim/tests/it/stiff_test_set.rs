//! The stiff test set (HIRES, OREGO, POLLU, VDPOL, ROBER, Akzo Nobel, E5) against its
//! published reference solutions, its invariants, and the analytic Jacobians against AD.

use diffsim::ad::ForwardJacobian;
use diffsim::capabilities::AnalyticJacobian;
use diffsim::models::{lookup, reference_solution, Orego, E5};
use diffsim::{solve, Algorithm, Model, Problem, RetCode, Solution, SolveOptions};
use std::time::Instant;

const TEST_SET: [&str; 7] = ["hires", "orego", "pollu", "vdpol", "rober", "akzo", "e5"];

/// Significant correct digits as the test set counts them ("mixed error significant
/// digits"): `-log10 max_i |y_i - ref_i| / (floor + |ref_i|)`, where the floor (the test
/// set's atol / rtol) keeps tiny or zero reference components from dominating.
fn digits(u: &[f64], reference: &[f64], floor: f64) -> f64 {
    let worst = u.iter().zip(reference).map(|(y, r)| (y - r).abs() / (floor + r.abs())).fold(0.0, f64::max);
    -worst.log10()
}

/// Each problem's ratio atol / rtol, which is also the floor of [`digits`] (the same as
/// bench/peers/stiff_problems.py).
fn atol_ratio(name: &str) -> f64 {
    match name {
        "hires" | "rober" => 1e-4,
        "e5" => 1.7e-24,
        _ => 1.0,
    }
}

/// A zoo problem over its default span, solved at `rtol` and atol = atol_ratio * rtol.
fn solve_zoo(name: &str, alg: Algorithm, rtol: f64, every_step: bool) -> Solution {
    let e = lookup(name).unwrap();
    let t1 = e.tspan.1;
    let prob = Problem::new(e.model, e.u0, e.p, e.tspan).unwrap();
    let mut opts = SolveOptions::default().rtol(rtol).atol(rtol * atol_ratio(name));
    if !every_step {
        opts = opts.saveat_times(vec![t1]);
    }
    solve(&prob, alg, &opts).unwrap()
}

/// The end state of a successful solve and its correct digits.
fn solved(name: &str, alg: Algorithm, rtol: f64) -> (Vec<f64>, f64) {
    let sol = solve_zoo(name, alg, rtol, false);
    assert_eq!(sol.retcode(), RetCode::Success, "{name} {alg} rtol {rtol:e}");
    let u = sol.u_final().to_vec();
    let d = digits(&u, reference_solution(name).unwrap(), atol_ratio(name));
    (u, d)
}

#[test]
fn zoo_entries_fit_their_references() {
    for name in TEST_SET {
        let e = lookup(name).unwrap();
        let n = e.model.n_states();
        assert!(e.stiff, "{name}");
        assert_eq!((e.u0.len(), e.p.len()), (n, e.model.n_params()), "{name}");
        assert_eq!(reference_solution(name).unwrap().len(), n, "{name}");
    }
    assert!(reference_solution("robertson").is_none());
    // Akzo's start is consistent: its algebraic state y6 = Ks y1 y4.
    let akzo = lookup("akzo").unwrap();
    assert!(akzo.model.mass_matrix().is_some());
    assert_eq!(akzo.u0[5], 115.83 * 0.444 * 0.007);
}

/// Rodas5P against the published reference of each problem, at atol = atol_ratio * rtol.
/// At rtol = 1e-10 ten correct digits are what the tolerance allows; Rodas5P gets 10.3
/// (VDPOL) to 11.2 (HIRES) today. Checked on the way: HIRES keeps y7 + y8 = 0.0057 and
/// Akzo Nobel ends on its algebraic equation y6 = Ks y1 y4 (to the tolerance).
#[test]
fn rodas5p_matches_the_published_references() {
    for name in ["hires", "orego", "pollu", "vdpol", "akzo"] {
        let (u, d) = solved(name, Algorithm::Rodas5P, 1e-10);
        assert!(d >= 10.0, "{name}: {d:.2} correct digits at rtol 1e-10, expected 10");
        match name {
            // 9e-17 today (rounding).
            "hires" => assert!((u[6] + u[7] - 0.0057).abs() < 1e-15, "y7 + y8 = {}", u[6] + u[7]),
            // A Rosenbrock step keeps an algebraic equation to its error, not exactly: 6e-11
            // relative today.
            "akzo" => {
                let residual = (u[5] - 115.83 * u[0] * u[3]).abs() / u[5];
                assert!(residual < 1e-9, "y6 - Ks y1 y4 = {residual:e} y6");
            }
            _ => {}
        }
    }
}

/// ROBER over [0, 1e11]: its first steps are about 1e-6 long, far below the rounding of
/// the span's end (8.9e-5), so a step floor taken from `|t1|` would stop every method at
/// t = 0 at tight tolerances; the floor follows `|t|`. At rtol 1e-10 (atol 1e-14) every
/// stiff method finishes within two digits of the tolerance and keeps `y1 + y2 + y3 = 1` to
/// rounding.
#[test]
fn rober_solves_to_tight_tolerances_from_its_first_steps() {
    for alg in [Algorithm::Rodas5P, Algorithm::Radau5, Algorithm::Radau9, Algorithm::Bdf] {
        let (u, d) = solved("rober", alg, 1e-10);
        assert!(d >= 8.0, "rober {alg}: {d:.2} correct digits at rtol 1e-10");
        assert!((u.iter().sum::<f64>() - 1.0).abs() < 1e-13, "{alg}: y1 + y2 + y3 = {}", u.iter().sum::<f64>());
        // Rodas5P keeps y1 + y2 + y3 = 1 by taking each stage's rounding along it out,
        // weighted by the states' scales. Without the projection, or with an unweighted one
        // (which hands y1 ~ 1e-8 and y2 ~ 1e-13 a third of y3's rounding), it falls short.
        if alg == Algorithm::Rodas5P {
            assert!(d >= 11.5, "rober Rodas5P: {d:.2} correct digits at rtol 1e-10");
        }
    }
}

/// E5's conservation law: y3' = y2' - y4' (the test set's `e5.f` computes f3 as f2 - f4:
/// A1 -> A2 + A3 makes one A2 per A3, A2 + A3 -> A5 takes one of each, and A1 + A3 -> A4,
/// A4 -> A3 + A6 store A3 in A4 and give it back), so y2 - y3 - y4 stays 0 from the start
/// [1.76e-3, 0, 0, 0]. Exact Rosenbrock steps keep linear invariants; in floating point
/// the Jacobian's rounding, times `gamma h`, moves y2 - y3 - y4 by the rounding of the
/// largest state (y1(0) = 1.76e-3 eps = 4e-19), far more than the end values of y2 and y3
/// (9e-23), and the step's error estimate cannot see it. Rodas5P and Rodas4 find the law
/// from the model and take each stage's component along it out, so the law must hold to a
/// hundredth of the answer and the end state have the reference's digits (about 3: its y2
/// and y3 differ by 1.4e-3 although y4 = 0 and y2 - y3 - y4 = 0). Rosenbrock23 (no
/// projection) keeps the law by itself.
#[test]
fn e5_rosenbrock_methods_keep_the_conservation_law_and_the_answer() {
    let reference = reference_solution("e5").unwrap();
    assert!(((reference[1] - reference[2]) / reference[1] - 1.448e-3).abs() < 1e-5);
    let max_drift = |sol: &Solution| sol.states().map(|u| (u[1] - u[2] - u[3]).abs()).fold(0.0, f64::max);
    let y2_end = reference[1];
    for (alg, rtol) in [(Algorithm::Rodas5P, 1e-6), (Algorithm::Rodas5P, 1e-8), (Algorithm::Rodas4, 1e-6)] {
        let sol = solve_zoo("e5", alg, rtol, true);
        assert_eq!(sol.retcode(), RetCode::Success, "{alg} rtol {rtol:e}");
        let drift = max_drift(&sol);
        assert!(drift < 1e-2 * y2_end, "{alg} rtol {rtol:e}: |y2 - y3 - y4| up to {drift:e}");
        let d = digits(sol.u_final(), reference, atol_ratio("e5"));
        assert!(d > 2.5, "{alg} rtol {rtol:e}: {d:.2} digits, end state {:?}", sol.u_final());
    }
    let ros23 = solve_zoo("e5", Algorithm::Rosenbrock23, 1e-6, true);
    assert_eq!(ros23.retcode(), RetCode::Success);
    let drift23 = max_drift(&ros23);
    assert!(drift23 < 1e-2 * y2_end, "Rosenbrock23: |y2 - y3 - y4| up to {drift23:e}");
}

/// OREGO's and E5's hand-written Jacobians against forward-mode AD, at the start and at
/// points of their solutions' ranges.
#[test]
fn analytic_jacobians_match_forward_ad() {
    let cases: [(&dyn AnalyticJacobian, &str, Vec<Vec<f64>>); 2] = [
        (&Orego, "orego", vec![vec![1.0, 2.0, 3.0], vec![1e5, 1.5, 2e4], vec![3.0, 1e3, 100.0]]),
        (
            &E5,
            "e5",
            vec![vec![1.76e-3, 0.0, 0.0, 0.0], vec![1e-3, 1e-10, 1e-12, 1e-10], vec![1e-9, 1e-22, 1e-22, 1e-30]],
        ),
    ];
    for (analytic, name, points) in cases {
        let e = lookup(name).unwrap();
        let (n, np) = (e.model.n_states(), e.model.n_params());
        for u in points {
            let (mut ja, mut jad) = (vec![0.0; n * n], vec![0.0; n * n]);
            analytic.jacobian(&mut ja, &u, &e.p, 0.0);
            ForwardJacobian::new(n, np).evaluate(&e.model, &u, &e.p, 0.0, &mut jad, None);
            for k in 0..n * n {
                let scale = ja[k].abs().max(jad[k].abs()).max(1e-300);
                assert!((ja[k] - jad[k]).abs() <= 1e-14 * scale, "{name} at {u:?}: entry {k}: {} vs {}", ja[k], jad[k]);
            }
        }
    }
}

/// The slow tier's sweep: every stiff method over rtol 1e-4 .. 1e-12 on every problem,
/// printing the correct digits and wall time, "!" marking a solve that did not finish (run
/// with `-- --ignored --nocapture`). Asserts that every finished Rodas5P solve at rtol <=
/// 1e-6 has 4 digits or more (E5: 1, its reference's y2 and y3 being good to about 3), that
/// every finished Rodas4 solve of E5 has 1, and that the Newton methods (BDF, Radau5, Radau9) finish
/// every solve with at least `k / 2 - 1` digits at rtol `1e-k` (E5: 1): none returns
/// `Success` with a wrong answer.
#[test]
#[ignore]
fn sweep_prints_the_digits_of_each_method() {
    for name in TEST_SET {
        let algs = [
            Algorithm::Rodas5P,
            Algorithm::Rodas4,
            Algorithm::Rosenbrock23,
            Algorithm::Bdf,
            Algorithm::Radau5,
            Algorithm::Radau9,
        ];
        for alg in algs {
            let mut row = Vec::new();
            for k in 4..=12 {
                let rtol = 10f64.powi(-k);
                let start = Instant::now();
                let sol = solve_zoo(name, alg, rtol, false);
                let ms = start.elapsed().as_secs_f64() * 1e3;
                let ok = sol.retcode().is_success();
                let d =
                    if ok { digits(sol.u_final(), reference_solution(name).unwrap(), atol_ratio(name)) } else { 0.0 };
                if ok && alg == Algorithm::Rodas5P && k >= 6 {
                    let want = if name == "e5" { 1.0 } else { 4.0 };
                    assert!(d >= want, "{name} rtol {rtol:e}: {d:.1} digits");
                }
                if ok && alg == Algorithm::Rodas4 && name == "e5" {
                    assert!(d >= 1.0, "e5 Rodas4 rtol {rtol:e}: {d:.1} digits");
                }
                if matches!(alg, Algorithm::Bdf | Algorithm::Radau5 | Algorithm::Radau9) {
                    let want = if name == "e5" { 1.0 } else { k as f64 / 2.0 - 1.0 };
                    assert!(ok && d >= want, "{name} {alg} rtol {rtol:e}: {:?}, {d:.1} digits", sol.retcode());
                }
                row.push(if ok {
                    format!("{k}:{d:.1}({ms:.1}ms)")
                } else {
                    format!("{k}:!{}", sol.retcode().as_str())
                });
            }
            println!("{name:6} {alg:13} {}", row.join(" "));
        }
    }
}

/// The Newton methods keep E5's conservation law to rounding of its smallest states (they
/// iterate on the residual; no projection) and so get the digits the published
/// reference has (about 3: its y2 and y3 disagree by 1.4e-3 where the law makes
/// them equal).
#[test]
fn e5_newton_methods_keep_the_conservation_law_and_the_answer() {
    let max_drift = |sol: &Solution| sol.states().map(|u| (u[1] - u[2] - u[3]).abs()).fold(0.0, f64::max);
    // BDF at 1e-4: most of its steps take one Newton iteration elsewhere; here (atol far
    // below the rounding of y1) every step must take two, or the law drifts.
    let cases = [
        (Algorithm::Bdf, 1e-4),
        (Algorithm::Bdf, 1e-6),
        (Algorithm::Bdf, 1e-8),
        (Algorithm::Radau5, 1e-6),
        (Algorithm::Radau5, 1e-8),
        (Algorithm::Radau9, 1e-8),
    ];
    let y2_end = reference_solution("e5").unwrap()[1];
    for (alg, rtol) in cases {
        let sol = solve_zoo("e5", alg, rtol, true);
        assert_eq!(sol.retcode(), RetCode::Success, "{alg} rtol {rtol:e}");
        // At rtol 1e-4 the law may drift by a tenth of the answer (1.5 digits), below by
        // a hundredth.
        let (share, want) = if rtol > 1e-5 { (1e-1, 1.5) } else { (1e-2, 2.8) };
        let drift = max_drift(&sol);
        assert!(drift < share * y2_end, "{alg} rtol {rtol:e}: |y2 - y3 - y4| up to {drift:e}");
        let d = digits(sol.u_final(), reference_solution("e5").unwrap(), atol_ratio("e5"));
        assert!(d > want, "{alg} rtol {rtol:e}: {d:.2} digits, end state {:?}", sol.u_final());
    }
}

/// E5 asked to an atol far below the rounding of y1 (1.76e-3 eps = 4e-19): `Auto` continues
/// with a Newton method (measured the better choice there; see `stiff_choice`) and gets the
/// reference's digits.
#[test]
fn auto_solves_e5_to_its_tiny_atol_with_a_newton_method() {
    let sol = solve_zoo("e5", Algorithm::Auto, 1e-6, false);
    assert_eq!(sol.retcode(), RetCode::Success);
    assert_eq!(sol.alg(), Algorithm::Bdf);
    let d = digits(sol.u_final(), reference_solution("e5").unwrap(), atol_ratio("e5"));
    assert!(d > 2.8, "Auto: {d:.2} digits, end state {:?}", sol.u_final());
}
