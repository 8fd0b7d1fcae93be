//! Criterion benchmarks of the MLP kernels: forward + backward (input and parameter
//! adjoints) for the two common small shapes, single input and batch 64, f32 and f64; and
//! one loss-and-gradient of the spiral neural ODE (discrete adjoint through Tsit5), at the
//! random initial network and after 100 Adam iterations (which needs many more steps).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use diffsim::nn::{Activation, Float, Init, Mlp};
use std::time::Duration;

fn bench_shape<F: Float>(c: &mut Criterion, sizes: &[usize], ty: &str) {
    let net = Mlp::with_hidden(sizes, Activation::Tanh).unwrap();
    let p: Vec<F> = net.init_params(Init::GlorotUniform, 1, 1.0).into_iter().map(F::from_f64).collect();
    let name = format!("mlp_{}_tanh_{ty}", sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("-"));
    let mut group = c.benchmark_group(name);
    for batch in [1usize, 64] {
        let (n_in, n_out) = (net.n_inputs(), net.n_outputs());
        let x: Vec<F> = (0..batch * n_in).map(|i| F::from_f64((i as f64 * 0.37).sin())).collect();
        let ybar: Vec<F> = (0..batch * n_out).map(|i| F::from_f64((i as f64 * 0.11).cos())).collect();
        let mut y = vec![F::zero(); batch * n_out];
        let mut xbar = vec![F::zero(); batch * n_in];
        let mut pbar = vec![F::zero(); net.n_params()];
        let mut ws = net.workspace::<F>(batch);
        group.bench_function(BenchmarkId::new("forward", batch), |b| {
            b.iter(|| net.forward_batch(black_box(&p), black_box(&x), &mut y, &mut ws).unwrap())
        });
        group.bench_function(BenchmarkId::new("forward_backward", batch), |b| {
            b.iter(|| {
                net.forward_batch(black_box(&p), black_box(&x), &mut y, &mut ws).unwrap();
                net.backward_batch(&p, black_box(&ybar), Some(&mut xbar), Some(&mut pbar), &mut ws).unwrap();
            })
        });
    }
    group.finish();
}

fn mlp(c: &mut Criterion) {
    for sizes in [&[2usize, 50, 2][..], &[4, 32, 32, 4][..]] {
        bench_shape::<f64>(c, sizes, "f64");
        bench_shape::<f32>(c, sizes, "f32");
    }
    // The generic (any Scalar) forward on f64, for comparison with the kernel.
    let net = Mlp::with_hidden(&[2, 50, 2], Activation::Tanh).unwrap();
    let p = net.init_params(Init::GlorotUniform, 1, 1.0);
    let mut y = [0.0; 2];
    c.bench_function("mlp_2-50-2_tanh_f64/generic_forward/1", |b| {
        b.iter(|| net.forward(black_box(&p), black_box(&[0.3, -0.2]), &mut y))
    });
}

fn spiral(c: &mut Criterion) {
    use diffsim::optim::{Control, MinimizeOptions};
    use diffsim_examples as examples;
    let mut ex = examples::spiral(0, 1e-7, 1e-9).unwrap();
    let p0 = ex.p0.clone();
    let opts = MinimizeOptions::default();
    let trained = examples::train_spiral(&mut ex, 100, 0, &opts, None, &mut |_| Control::Continue).unwrap().best_x;
    let mut grad = vec![0.0; p0.len()];
    let mut group = c.benchmark_group("spiral_loss_and_gradient");
    for (name, p) in [("untrained", &p0), ("adam100", &trained)] {
        group.bench_function(name, |b| b.iter(|| ex.fit.loss_and_gradient(black_box(p), &mut grad)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    targets = mlp, spiral
}
criterion_main!(benches);
