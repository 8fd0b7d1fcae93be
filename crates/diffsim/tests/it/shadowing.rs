//! Shadowing sensitivities on the Lorenz attractor (sigma = 10, rho = 28, beta = 8/3), the
//! objective the time average of z.

use diffsim::models::{Lorenz, ZooModel};
use diffsim::sensitivity::shadowing::{naive_derivative, shadowing, ShadowingMethod, ShadowingOptions, Window};
use diffsim::sensitivity::RunningCost;
use diffsim::{solve, Algorithm, Problem, Scalar, SolveOptions};

/// The objective: z.
struct Z;
impl RunningCost for Z {
    fn cost<T: Scalar>(&self, u: &[T], _p: &[T], _t: T) -> T {
        u[2]
    }
}

const P: [f64; 3] = [10.0, 28.0, 8.0 / 3.0];

fn lorenz(p: [f64; 3], u0: [f64; 3], t1: f64) -> Problem<ZooModel> {
    Problem::new(ZooModel::from(Lorenz), u0.to_vec(), p.to_vec(), (0.0, t1)).unwrap()
}

#[test]
fn lss_finds_d_mean_z_d_rho_near_one_where_forward_ad_blows_up() {
    // The literature's d<z>/d rho at rho = 28 is about 1.01 (Wang, Hu and Blonigan 2014);
    // two windows and two segment lengths agree with it and with each other to the
    // sampling error of a 200-unit window (the segment length changes the steps, so the
    // chaotic trajectory, and so the sample the average is taken over).
    let prob = lorenz(P, [-8.0, 7.0, 27.0], 210.0);
    let mut found = Vec::new();
    for (window, segment) in [(Window::Uniform, 0.05), (Window::SinSquared, 0.05), (Window::Uniform, 0.02)] {
        let opts = ShadowingOptions { window, segment, ..ShadowingOptions::default() };
        let s = shadowing(&prob, &Z, ShadowingMethod::Lss, &opts).unwrap();
        println!("{window:?}, segments of {segment}: <z> = {:.4}, d<z>/d(sigma, rho, beta) = {:?}", s.average, s.dj_dp);
        assert!((s.dj_dp[1] - 1.01).abs() < 0.05, "{window:?}: {:?}", s.dj_dp);
        // The attractor's mean of z is about 23.5 (a long-time average, any reference).
        assert!((s.average - 23.55).abs() < 0.3, "{}", s.average);
        found.push(s.dj_dp);
    }
    // The adjoint form: the same least-squares problem, one solve for all parameters, the
    // same derivative up to the adjoint solves' tolerance.
    let opts = ShadowingOptions::default();
    let adjoint = shadowing(&prob, &Z, ShadowingMethod::AdjointLss, &opts).unwrap();
    println!("adjoint LSS: {:?}", adjoint.dj_dp);
    for (a, b) in adjoint.dj_dp.iter().zip(&found[0]) {
        assert!((a - b).abs() < 1e-8, "adjoint {:?} against forward {:?}", adjoint.dj_dp, found[0]);
    }
    // NILSS: the shadowing direction in the span of one unstable tangent (Lorenz has one
    // positive exponent); the same derivative to the sampling error, and the same as with
    // both directions orthogonal to the flow (the stable one adds nothing).
    for window in [Window::Uniform, Window::SinSquared] {
        let opts = ShadowingOptions { window, ..ShadowingOptions::default() };
        let nilss = shadowing(&prob, &Z, ShadowingMethod::Nilss, &opts).unwrap();
        println!("NILSS, {window:?}: {:?}", nilss.dj_dp);
        let two =
            shadowing(&prob, &Z, ShadowingMethod::Nilss, &ShadowingOptions { unstable: 2, ..opts.clone() }).unwrap();
        for (a, b) in two.dj_dp.iter().zip(&nilss.dj_dp) {
            assert!((a - b).abs() < 1e-4, "{:?} against {:?}", two.dj_dp, nilss.dj_dp);
        }
        found.push(nilss.dj_dp);
    }
    for other in &found[1..] {
        for (a, b) in other.iter().zip(&found[0]) {
            assert!((a - b).abs() < 0.06, "{found:?}");
        }
    }
    // Forward AD through one solve: orders of magnitude off over a window of 20 time units,
    // and growing with it.
    let short = ShadowingOptions { spinup: 10.0, ..ShadowingOptions::default() };
    let naive = |t1: f64| naive_derivative(&lorenz(P, [-8.0, 7.0, 27.0], t1), &Z, &short).unwrap()[1];
    let (d20, d50) = (naive(30.0), naive(60.0));
    println!("naive d<z>/d rho: span 20 {d20:.3e}, span 50 {d50:.3e}");
    assert!(d20.abs() > 1e3 && (d50.abs() > 1e3 * d20.abs() || !d50.is_finite()), "{d20} {d50}");
}

#[test]
fn shadowing_options_that_cannot_work_are_errors_that_say_so() {
    let prob = lorenz(P, [1.0, 1.0, 1.0], 20.0);
    let cases = [
        (ShadowingOptions { spinup: 30.0, ..ShadowingOptions::default() }, "spinup"),
        (ShadowingOptions { segment: 0.0, ..ShadowingOptions::default() }, "segment"),
        (ShadowingOptions { alpha: f64::NAN, ..ShadowingOptions::default() }, "alpha"),
        (ShadowingOptions { alg: Algorithm::Rodas5P, ..ShadowingOptions::default() }, "explicit"),
    ];
    for (opts, says) in cases {
        let err = shadowing(&prob, &Z, ShadowingMethod::Lss, &opts).unwrap_err().to_string();
        assert!(err.contains(says), "{says}: {err}");
    }
}

/// `<z>` over `[spin, spin + span]` from `u0`, by the trapezoid rule on a fine grid.
fn mean_z(p: [f64; 3], u0: [f64; 3], spin: f64, span: f64) -> f64 {
    let k = (span / 0.01) as usize;
    let times: Vec<f64> = (0..=k).map(|i| spin + span * i as f64 / k as f64).collect();
    let opts = SolveOptions::default().rtol(1e-9).atol(1e-9).saveat_times(times);
    let sol = solve(&lorenz(p, u0, spin + span), Algorithm::Tsit5, &opts).unwrap();
    let z: Vec<f64> = (0..=k).map(|i| sol.u(i)[2]).collect();
    (z.iter().sum::<f64>() - 0.5 * (z[0] + z[k])) / k as f64
}

/// The reference, by finite differences of long-time averages: for each parameter, `<z>`
/// at five offsets, each the mean of eight trajectories of 5000 time units, and the slope
/// of the least-squares line through them with its standard error (from the spread of the
/// eight; `<z>` is curved in sigma, so its offsets are halved). Slow (about 15 s):
/// `cargo test --profile ci -p diffsim --test it -- --ignored`.
#[test]
#[ignore]
fn shadowing_agrees_with_finite_differences_of_long_time_averages() {
    let opts = ShadowingOptions { window: Window::SinSquared, ..ShadowingOptions::default() };
    let long = lorenz(P, [-8.0, 7.0, 27.0], 1010.0);
    let lss = shadowing(&long, &Z, ShadowingMethod::Lss, &opts).unwrap();
    let nilss = shadowing(&long, &Z, ShadowingMethod::Nilss, &opts).unwrap();
    for (j, step) in [(0, 0.5), (1, 1.0), (2, 0.2)] {
        let offsets = [-2.0, -1.0, 0.0, 1.0, 2.0];
        let (mut means, mut variances) = (Vec::new(), Vec::new());
        for &o in &offsets {
            let mut p = P;
            p[j] += o * step;
            let runs: Vec<f64> = (0..8)
                .map(|r| mean_z(p, [1.0 + r as f64, 1.0 - 0.5 * r as f64, 20.0 + r as f64], 20.0, 5000.0))
                .collect();
            let mean = runs.iter().sum::<f64>() / 8.0;
            let var = runs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 7.0 / 8.0;
            means.push(mean);
            variances.push(var);
        }
        // Slope of the line through (o step, mean): sum o mean / (step sum o^2).
        let sxx: f64 = offsets.iter().map(|o| o * o).sum::<f64>() * step;
        let slope: f64 = offsets.iter().zip(&means).map(|(o, m)| o * m).sum::<f64>() / sxx;
        let se = offsets.iter().zip(&variances).map(|(o, v)| o * o * v).sum::<f64>().sqrt() / sxx;
        println!(
            "d<z>/dp{j}: LSS {:.4}, NILSS {:.4}, differences {slope:.4} +/- {se:.4}",
            lss.dj_dp[j], nilss.dj_dp[j]
        );
        for d in [lss.dj_dp[j], nilss.dj_dp[j]] {
            assert!((d - slope).abs() < 0.05f64.max(3.0 * se), "p{j}: {d} against {slope} +/- {se}");
        }
    }
}
