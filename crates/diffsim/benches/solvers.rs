//! Criterion benchmarks of the core solvers on the peer-benchmark problems
//! (same problems and tolerances as bench/peers; there the ratios against peers).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use diffsim::ensemble::{solve_ensemble, Member};
use diffsim::models::{Brusselator1D, Lorenz, Robertson, VanDerPol};
use diffsim::{solve, Algorithm, Problem, SolveOptions};

fn end_only(t1: f64, rtol: f64, atol: f64) -> SolveOptions {
    SolveOptions::default().rtol(rtol).atol(atol).saveat_times(vec![t1])
}

fn lorenz(c: &mut Criterion) {
    let prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 100.0)).unwrap();
    let opts = end_only(100.0, 1e-8, 1e-8);
    for alg in [Algorithm::Tsit5, Algorithm::Vern7, Algorithm::Dp5] {
        c.bench_function(&format!("lorenz_{alg}"), |b| b.iter(|| solve(black_box(&prob), alg, &opts).unwrap()));
    }
}

fn stiff(c: &mut Criterion) {
    let rober = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5)).unwrap();
    let opts = end_only(1e5, 1e-6, 1e-10);
    for alg in [Algorithm::Rodas5P, Algorithm::Rodas4, Algorithm::Rosenbrock23] {
        c.bench_function(&format!("robertson_{alg}"), |b| b.iter(|| solve(black_box(&rober), alg, &opts).unwrap()));
    }
    let vdp = Problem::new(VanDerPol, vec![2.0, 0.0], vec![1e3], (0.0, 3.0)).unwrap();
    let opts = end_only(3.0, 1e-6, 1e-6);
    c.bench_function("vdp_rodas5p", |b| b.iter(|| solve(black_box(&vdp), Algorithm::Rodas5P, &opts).unwrap()));
    let bruss = Brusselator1D { n: 32 };
    let prob = Problem::new(bruss, bruss.initial_state(), vec![1.0, 3.0, 0.02], (0.0, 10.0)).unwrap();
    let opts = end_only(10.0, 1e-6, 1e-6);
    c.bench_function("brusselator32_rodas5p", |b| {
        b.iter(|| solve(black_box(&prob), Algorithm::Rodas5P, &opts).unwrap())
    });
}

fn ensemble(c: &mut Criterion) {
    let rober = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5)).unwrap();
    let opts = end_only(1e5, 1e-6, 1e-10);
    let members: Vec<Member> = (0..1000)
        .map(|i| {
            let f = 2f64.powf(((i * 37) % 1000) as f64 / 500.0 - 1.0);
            Member { u0: None, p: Some(vec![0.04 * f, 3e7 / f, 1e4 * f]) }
        })
        .collect();
    let mut g = c.benchmark_group("ensemble");
    g.sample_size(10);
    g.bench_function("robertson_1000_rodas5p", |b| {
        b.iter(|| solve_ensemble(&rober, Algorithm::Rodas5P, &opts, &members))
    });
    g.finish();
}

criterion_group!(benches, lorenz, stiff, ensemble);
criterion_main!(benches);
