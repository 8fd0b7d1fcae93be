//! Gradient cost of every sensitivity method, as a ratio to one forward solve, and peak
//! heap memory of the adjoints on a long solve. Prints markdown tables.
//!
//! `cargo bench -p diffsim-examples --bench gradient_table [-- quick]`
//!
//! Problems: Lorenz on [0, 1], Robertson on [0, 40] (stiff), the 252-parameter spiral
//! neural ODE, and the 1-D Brusselator (method of lines, 2N states for N = 64 and 128).
//! Peak memory: Lotka-Volterra on [0, 2000] at rtol = atol = 1e-9 (tens of thousands of
//! steps), heap bytes above the baseline during one gradient call.

use diffsim::models::{self, Lorenz, Robertson};
use diffsim::sensitivity::{gradient, Loss, SensAlg, VjpMethod};
use diffsim::{solve, Algorithm, Model, Problem, SolveOptions};
use diffsim_examples as examples;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes and their peak.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Median seconds of `f` over enough repetitions to fill ~`budget` seconds (at least 3).
fn median_time(budget: f64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64();
    let reps = ((budget / once.max(1e-9)) as usize).clamp(3, 200);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

fn row<M: Model>(
    name: &str,
    prob: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &Loss,
    methods: &[SensAlg],
    budget: f64,
) {
    let solve_time = median_time(budget, || {
        solve(prob, alg, opts).unwrap();
    });
    let reference = gradient(prob, alg, opts, loss, SensAlg::Auto).ok();
    for &m in methods {
        let mut result = None;
        let secs = median_time(budget, || result = Some(gradient(prob, alg, opts, loss, m)));
        let cell = match result.unwrap() {
            Ok(g) => {
                let diff = reference.as_ref().map_or(0.0, |r| {
                    let scale = r.dp.iter().chain(&r.du0).fold(0.0f64, |a, x| a.max(x.abs()));
                    g.dp.iter()
                        .chain(&g.du0)
                        .zip(r.dp.iter().chain(&r.du0))
                        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()))
                        / scale
                });
                format!("{:.3} | {:.1} | {:.1e}", secs * 1e3, secs / solve_time, diff)
            }
            Err(e) => format!("- | - | fails: {}", e.to_string().chars().take(60).collect::<String>()),
        };
        let vjp = m.vjp().map_or(String::new(), |v| format!(" ({})", v.name()));
        println!("| {name} | {}{vjp} | {cell} |", m.name());
    }
    println!("| {name} | one forward solve | {:.3} | 1.0 | |", solve_time * 1e3);
}

fn grid(t1: f64, k: usize) -> Vec<f64> {
    (0..=k).map(|i| t1 * i as f64 / k as f64).collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let budget = if quick { 0.05 } else { 0.3 };
    let v = VjpMethod::Auto;
    let explicit = [
        SensAlg::ForwardAd,
        SensAlg::Forward,
        SensAlg::Discrete(v),
        SensAlg::DiscreteCheckpointing(v),
        SensAlg::Interpolating(v),
        SensAlg::Checkpointing(v),
        SensAlg::Quadrature(v),
        SensAlg::Backsolve(v),
    ];
    let stiff = [
        SensAlg::Forward,
        SensAlg::Discrete(v),
        SensAlg::DiscreteCheckpointing(v),
        SensAlg::Interpolating(v),
        SensAlg::Checkpointing(v),
        SensAlg::Quadrature(v),
    ];

    println!("| problem | method | ms | x forward solve | max rel diff vs auto |");
    println!("|---|---|---|---|---|");
    let lorenz = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(grid(1.0, 10));
    row("Lorenz [0,1] Tsit5 1e-8", &lorenz, Algorithm::Tsit5, &opts, &Loss::SumSq, &explicit, budget);

    let rober = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 40.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-6).atol(1e-10).saveat_times(vec![0.4, 4.0, 40.0]);
    // Not Loss::Sum: u1 + u2 + u3 is conserved, so its adjoint is constant and trivially cheap.
    row("Robertson [0,40] Rodas5P", &rober, Algorithm::Rodas5P, &opts, &Loss::SumSq, &stiff, budget);

    let ex = examples::spiral(1, 1e-7, 1e-9).unwrap();
    let nn = [
        SensAlg::Discrete(v),
        SensAlg::DiscreteCheckpointing(v),
        SensAlg::Interpolating(v),
        SensAlg::Checkpointing(v),
        SensAlg::Quadrature(v),
        SensAlg::Backsolve(v),
        SensAlg::ForwardAd,
    ];
    let mut prob = ex.fit.problem.clone();
    prob.set_p(&ex.p0).unwrap();
    row("spiral NODE (252 p) Tsit5", &prob, ex.fit.alg, &ex.fit.opts, &ex.fit.loss, &nn, budget);

    for n in [64, 128] {
        let e = models::lookup(&format!("brusselator-{n}")).unwrap();
        let prob = Problem::new(e.model, e.u0, e.p, (0.0, 2.0)).unwrap();
        let opts = SolveOptions::default().rtol(1e-6).atol(1e-8).saveat_times(grid(2.0, 4));
        // Forward sensitivities refuse here: their dense stiff Jacobian has (2N (3 + 2N))^2 entries.
        let methods = &stiff[1..];
        row(
            &format!("Brusselator N={n} ({} states) Rodas5P", 2 * n),
            &prob,
            Algorithm::Rodas5P,
            &opts,
            &Loss::Sum,
            methods,
            budget,
        );
    }

    println!();
    println!("| long solve (LV [0,2000], 1e-9) | method | peak heap KiB | ms |");
    println!("|---|---|---|---|");
    let lv = Problem::new(models::LotkaVolterra, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 2000.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-9).atol(1e-9).saveat_times(grid(2000.0, 200));
    for m in [
        SensAlg::Interpolating(v),
        SensAlg::Checkpointing(v),
        SensAlg::Quadrature(v),
        SensAlg::Backsolve(v),
        SensAlg::Discrete(v),
        SensAlg::DiscreteCheckpointing(v),
        SensAlg::Forward,
        SensAlg::ForwardAd,
    ] {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let t = Instant::now();
        let g = gradient(&lv, Algorithm::Tsit5, &opts, &Loss::Sum, m);
        let secs = t.elapsed().as_secs_f64();
        let peak = PEAK.load(Ordering::Relaxed) - base;
        let status = if g.is_ok() { "" } else { " (failed)" };
        println!("| | {}{status} | {:.0} | {:.1} |", m.name(), peak as f64 / 1024.0, secs * 1e3);
    }
}
