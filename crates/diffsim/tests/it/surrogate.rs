//! Surrogates: the discrete echo state network on a chaotic series.

use diffsim::models::{Lorenz, ZooModel};
use diffsim::surrogate::{Esn, EsnOptions};
use diffsim::{solve, Algorithm, Problem, SolveOptions};

/// Lorenz sampled every `dt` from a point on the attractor, `steps` samples, step-major.
fn lorenz_series(steps: usize, dt: f64) -> Vec<f64> {
    let times: Vec<f64> = (0..steps).map(|k| 20.0 + k as f64 * dt).collect();
    let t1 = *times.last().unwrap();
    let prob =
        Problem::new(ZooModel::from(Lorenz), vec![1.0, 1.0, 1.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, t1)).unwrap();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(times);
    let sol = solve(&prob, Algorithm::Vern7, &opts).unwrap();
    (0..steps).flat_map(|k| sol.u(k).to_vec()).collect()
}

#[test]
fn an_echo_state_network_forecasts_lorenz_for_a_few_lyapunov_times() {
    // Train on 60 time units, forecast the next ones; the valid time is where the error
    // first exceeds 0.3 of the attractor's spread (about 8 in each state).
    let dt = 0.02;
    let (train, test) = (3000, 500);
    let all = lorenz_series(train + test, dt);
    let scaled: Vec<f64> = all.iter().map(|v| v / 10.0).collect();
    let opts =
        EsnOptions { reservoir: 400, spectral_radius: 0.4, input_scale: 0.5, ridge: 1e-7, ..EsnOptions::default() };
    let esn = Esn::train(&scaled[..train * 3], 3, &opts).unwrap();
    let forecast = esn.predict(test);
    let valid = (0..test)
        .position(|k| {
            let err: f64 = (0..3).map(|c| (forecast[k * 3 + c] - scaled[(train + k) * 3 + c]).powi(2)).sum::<f64>();
            err.sqrt() > 0.3 * 0.8
        })
        .unwrap_or(test);
    let lyapunov_times = valid as f64 * dt * 0.906;
    println!("valid for {lyapunov_times:.2} Lyapunov times ({valid} steps)");
    assert!(lyapunov_times > 4.0, "{lyapunov_times}");
    // The same seed builds the same network; saved and loaded, it forecasts the same.
    let again = Esn::train(&scaled[..train * 3], 3, &opts).unwrap();
    assert_eq!(again.predict(50), forecast[..150]);
    let saved = serde_json::to_string(&esn).unwrap();
    let loaded: Esn = serde_json::from_str(&saved).unwrap();
    assert_eq!(loaded.predict(50), forecast[..150]);
    // A different seed: a different network, the same quality at the start.
    let other = Esn::train(&scaled[..train * 3], 3, &EsnOptions { seed: 2, ..opts.clone() }).unwrap();
    let first = other.predict(20);
    assert!(first != forecast[..60] && (first[0] - scaled[train * 3]).abs() < 0.05, "{:?}", &first[..3]);
}

#[test]
fn an_echo_state_network_refuses_series_it_cannot_use() {
    let opts = EsnOptions::default();
    let cases: [(&[f64], usize, &str); 3] =
        [(&[1.0, 2.0, 3.0], 2, "whole steps"), (&[1.0, f64::NAN], 1, "NaN"), (&[1.0; 50], 1, "washout")];
    for (series, n, says) in cases {
        let err = Esn::train(series, n, &opts).unwrap_err().to_string();
        assert!(err.contains(says), "{says}: {err}");
    }
    let err = Esn::train(&[0.5; 300], 1, &EsnOptions { leak: 0.0, ..opts }).unwrap_err().to_string();
    assert!(err.contains("leak"), "{err}");
}

/// Robertson's rate constants log-uniform within a factor of two of (0.04, 3e7, 1e4).
fn robertson_samples(count: usize, seed: u64) -> Vec<Vec<f64>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|_| [0.04, 3e7, 1e4].iter().map(|k| k * 2f64.powf(rng.random_range(-1.0..1.0))).collect()).collect()
}

#[test]
fn a_continuous_time_esn_predicts_robertson_at_held_out_rates() {
    use diffsim::models::Robertson;
    use diffsim::surrogate::{Ctesn, CtesnOptions};
    let prob = Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5)).unwrap();
    let times: Vec<f64> = (0..=40).map(|i| 10f64.powf(-5.0 + 0.25 * i as f64)).collect();
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-12);
    let train = robertson_samples(40, 1);
    let start = std::time::Instant::now();
    let surrogate = Ctesn::train(&prob, Algorithm::Rodas5P, &opts, &times, &train, &CtesnOptions::default()).unwrap();
    println!("trained in {:.2} s", start.elapsed().as_secs_f64());
    let mut errors = Vec::new();
    for p in robertson_samples(10, 2) {
        let got = surrogate.predict(&p).unwrap();
        let held = Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], p.clone(), (0.0, 1e5)).unwrap();
        let sol = solve(&held, Algorithm::Rodas5P, &opts.clone().saveat_times(times.clone())).unwrap();
        for s in 0..3 {
            let scale = (0..times.len()).map(|k| sol.u(k)[s].abs()).fold(0.0, f64::max);
            for k in 0..times.len() {
                errors.push(((got[k * 3 + s] - sol.u(k)[s]) / scale).abs());
            }
        }
    }
    errors.sort_by(f64::total_cmp);
    let (median, max) = (errors[errors.len() / 2], errors[errors.len() - 1]);
    println!("held-out error relative to each species' largest value: median {median:.2e}, max {max:.2e}");
    assert!(median < 1e-3 && max < 0.05, "median {median}, max {max}");
    // Saved and loaded, it predicts the same; parameters it cannot take are errors.
    let loaded: Ctesn = serde_json::from_str(&serde_json::to_string(&surrogate).unwrap()).unwrap();
    let p = &train[0];
    assert_eq!(loaded.predict(p).unwrap(), surrogate.predict(p).unwrap());
    assert!(surrogate.predict(&[0.04, -1.0, 1e4]).unwrap_err().to_string().contains("positive"));
    let few = Ctesn::train(&prob, Algorithm::Rodas5P, &opts, &times, &train[..3], &CtesnOptions::default());
    assert!(few.unwrap_err().to_string().contains("at least 5"));
}
