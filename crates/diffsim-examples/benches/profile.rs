//! A fixed workload for profilers (valgrind --tool=callgrind, perf): repeated solves of
//! Lorenz (Tsit5/Vern7, rtol = atol = 1e-8) or Robertson (Rodas5P, rtol 1e-6, atol 1e-10), or
//! repeated spiral neural-ODE loss-and-gradient evaluations (discrete adjoint, at the network
//! after 300 Adam(0.05) iterations, where the solves take as many steps as late in training;
//! prints the fastest and the median).
//! `cargo bench -p diffsim-examples --bench profile -- [[zoo-]tsit5|[zoo-]vern7|[zoo-]rober|spiral]
//! [REPEATS]` (or the binary it builds under `target/release/deps/profile-*`, for a profiler).
use diffsim::{models::*, *};
fn main() {
    // `cargo bench` appends `--bench`.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let which = args.first().cloned().unwrap_or_default();
    let n: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    if which == "spiral" {
        spiral_gradients(n);
        return;
    }
    // `zoo-` solves the same problem through the `ZooModel` enum (the dispatch the CLI
    // would use to compile each solver once for all zoo models), to measure its cost.
    let (name, through_zoo) = match which.strip_prefix("zoo-") {
        Some(rest) => (rest, true),
        None => (which.as_str(), false),
    };
    let (steps, el) = if name == "rober" {
        let opts = SolveOptions::default().rtol(1e-6).atol(1e-10).saveat_times(vec![1e5]);
        let (u0, p, span) = (vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5));
        if through_zoo {
            timed_solves(&Problem::new(zoo("robertson"), u0, p, span).unwrap(), Algorithm::Rodas5P, &opts, n)
        } else {
            timed_solves(&Problem::new(Robertson, u0, p, span).unwrap(), Algorithm::Rodas5P, &opts, n)
        }
    } else {
        let alg = if name == "vern7" { Algorithm::Vern7 } else { Algorithm::Tsit5 };
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(vec![100.0]);
        let (u0, p, span) = (vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 100.0));
        if through_zoo {
            timed_solves(&Problem::new(zoo("lorenz"), u0, p, span).unwrap(), alg, &opts, n)
        } else {
            timed_solves(&Problem::new(Lorenz, u0, p, span).unwrap(), alg, &opts, n)
        }
    };
    println!("{which}: {steps} steps {:?} per solve", el / n);
}

fn zoo(name: &str) -> ZooModel {
    lookup(name).unwrap().model
}

/// Accepted steps of one solve and the time of `n`.
fn timed_solves<M: Model>(
    prob: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    n: u32,
) -> (usize, std::time::Duration) {
    let t = std::time::Instant::now();
    let mut steps = 0;
    for _ in 0..n {
        steps = solve(prob, alg, opts).unwrap().stats().naccept;
    }
    (steps, t.elapsed())
}

fn spiral_gradients(n: u32) {
    let mut ex = diffsim_examples::spiral(0, 1e-7, 1e-9).unwrap();
    let opts = diffsim::optim::MinimizeOptions::default().max_iters(300);
    let p0 = ex.p0.clone();
    let report = ex
        .fit
        .train(&p0, &mut diffsim::optim::Adam::new(0.05), &opts, None, |_| diffsim::optim::Control::Continue)
        .unwrap();
    let p = report.final_x;
    let mut grad = vec![0.0; ex.p0.len()];
    let mut times: Vec<f64> = (0..n.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            ex.fit.loss_and_gradient(&p, &mut grad);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("spiral: gradient min {:.4} ms median {:.4} ms", times[0] * 1e3, times[times.len() / 2] * 1e3);
}
