//! Criterion benchmarks of vector-Jacobian products by method: forward-mode duals, the tape
//! re-recorded at every point, and the compiled tape (replayed, guards checked), on small
//! models, the Brusselator at several sizes (9, 15, 19 and 67 inputs), and a 2-50-2 tanh MLP neural ODE (252 parameters)
//! written both with the network's `chain` activations (not replayable: the compiled tape
//! re-records) and with `chain_fn` (replayable). Each iteration moves to a new point, so
//! the compiled tape replays rather than reusing the last values.
//!
//! `cargo bench -p diffsim --bench tape` (or `--profile ci` for a quicker build).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use diffsim::ad::{Vjp, VjpMethod};
use diffsim::fit::{NoPhysics, Ude};
use diffsim::models;
use diffsim::nn::{Activation, Init, Mlp};
use diffsim::{Model, Scalar};
use std::time::Duration;

/// A neural ODE through [`Mlp::forward`] (activations by `Scalar::chain`).
struct NeuralOde(Mlp);
impl Model for NeuralOde {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        self.0.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        self.0.forward(p, u, du);
    }
}

fn tanh_d(x: f64) -> (f64, f64) {
    let t = x.tanh();
    (t, 1.0 - t * t)
}

/// The same 2-50-2 tanh network, activations by `Scalar::chain_fn` (replayable).
struct ChainFnMlp;
impl Model for ChainFnMlp {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        252
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let (w1, rest) = p.split_at(100);
        let (b1, rest) = rest.split_at(50);
        let (w2, b2) = rest.split_at(100);
        let mut h = [T::zero(); 50];
        for j in 0..50 {
            h[j] = (b1[j] + w1[2 * j] * u[0] + w1[2 * j + 1] * u[1]).chain_fn(tanh_d);
        }
        for k in 0..2 {
            let mut z = b2[k];
            for j in 0..50 {
                z += w2[k * 50 + j] * h[j];
            }
            du[k] = z;
        }
    }
}

fn bench_model<M: Model>(c: &mut Criterion, name: &str, model: &M, u0: &[f64], p: &[f64], methods: &[VjpMethod]) {
    let (n, np) = (model.n_states(), model.n_params());
    // Sixteen nearby points, visited in turn.
    let points: Vec<Vec<f64>> = (0..16)
        .map(|k| u0.iter().enumerate().map(|(i, x)| x * (1.0 + 0.01 * ((k * 7 + i) as f64).sin())).collect())
        .collect();
    let w: Vec<f64> = (0..n).map(|i| 1.0 - 0.01 * i as f64).collect();
    let mut group = c.benchmark_group(format!("vjp/{name}"));
    for &method in methods {
        let mut vjp = Vjp::new(model, method).unwrap();
        let (mut du, mut dp) = (vec![0.0; n], vec![0.0; np]);
        let mut k = 0;
        group.bench_function(BenchmarkId::from_parameter(method.name()), |b| {
            b.iter(|| {
                k = (k + 1) % points.len();
                vjp.apply(model, black_box(&w), &points[k], black_box(p), 0.1 * k as f64, &mut du, &mut dp);
            })
        });
    }
    group.finish();
}

fn vjp(c: &mut Criterion) {
    use VjpMethod::{CompiledTape, Forward, Tape};
    let all = [Forward, Tape, CompiledTape];
    for name in ["lorenz", "lotka-volterra", "brusselator-3", "brusselator-6", "brusselator-8", "brusselator"] {
        let e = models::lookup(name).unwrap();
        bench_model(c, name, &e.model, &e.u0, &e.p, &all);
    }
    let net = Mlp::with_hidden(&[2, 50, 2], Activation::Tanh).unwrap();
    let p = net.init_params(Init::GlorotUniform, 1, 1.0);
    let u0 = [0.5, -0.3];
    bench_model(c, "mlp-252-chain", &NeuralOde(net.clone()), &u0, &p, &all);
    bench_model(c, "mlp-252-chain-fn", &ChainFnMlp, &u0, &p, &all);
    // The network's own backward pass, for scale.
    let ude = Ude::new(NoPhysics, net, Activation::Identity).unwrap();
    bench_model(c, "mlp-252-ude", &ude, &u0, &p, &[VjpMethod::Model]);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    targets = vjp
}
criterion_main!(benches);
