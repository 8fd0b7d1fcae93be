//! A fixed workload for profilers (valgrind --tool=callgrind, perf): repeated solves of
//! Lorenz (Tsit5/Vern7, rtol = atol = 1e-8) or Robertson (Rodas5P, rtol 1e-6, atol 1e-10).
//! `cargo run --release -p diffsim --example profile -- [tsit5|vern7|rober] [REPEATS]`
use diffsim::{models::*, *};
fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let n: u32 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let (steps, el) = if which == "rober" {
        let prob = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5)).unwrap();
        let opts = SolveOptions::default().rtol(1e-6).atol(1e-10).saveat_times(vec![1e5]);
        let t = std::time::Instant::now();
        let mut steps = 0;
        for _ in 0..n {
            steps = solve(&prob, Algorithm::Rodas5P, &opts).unwrap().stats.naccept;
        }
        (steps, t.elapsed())
    } else {
        let prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 100.0)).unwrap();
        let alg = if which == "vern7" { Algorithm::Vern7 } else { Algorithm::Tsit5 };
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(vec![100.0]);
        let t = std::time::Instant::now();
        let mut steps = 0;
        for _ in 0..n {
            steps = solve(&prob, alg, &opts).unwrap().stats.naccept;
        }
        (steps, t.elapsed())
    };
    println!("{which}: {steps} steps {:?} per solve", el / n);
}
