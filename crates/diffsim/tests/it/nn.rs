//! Neural-network kernels checked against central finite differences and against each other
//! (generic forward on duals, f32 vs f64, batch vs single), plus initialisers and errors.

use diffsim::ad::Dual;
use diffsim::nn::{Activation, CustomActivation, Init, Mlp, MAX_WIDTH};
use diffsim::DiffsimError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const H: f64 = 1e-6;

fn cube() -> Activation {
    Activation::Custom(CustomActivation { name: "cube", f: |x| x * x * x, df: |x| 3.0 * x * x })
}

fn all_activations() -> Vec<Activation> {
    vec![
        Activation::Identity,
        Activation::Tanh,
        Activation::Relu,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Swish,
        Activation::Gelu,
        Activation::Rbf,
        cube(),
    ]
}

fn random_vec(rng: &mut ChaCha8Rng, n: usize, amp: f64) -> Vec<f64> {
    (0..n).map(|_| amp * (2.0 * rng.random::<f64>() - 1.0)).collect()
}

/// `|a - b| <= rtol * max(|a|, |b|, floor)`, with `floor` a fraction of the vector's scale so
/// that entries that are zero up to round-off do not demand impossible relative accuracy.
fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = 1e-3 * scale;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let denom = g.abs().max(w.abs()).max(floor).max(1e-300);
        assert!((g - w).abs() <= rtol * denom, "{what}[{i}]: got {g:e}, want {w:e} (scale {scale:e})");
    }
}

/// y = net(p, x) via the fast f64 kernel.
fn eval(net: &Mlp, p: &[f64], x: &[f64]) -> Vec<f64> {
    let mut ws = net.workspace::<f64>(1);
    let mut y = vec![0.0; net.n_outputs()];
    net.forward_ws(p, x, &mut y, &mut ws).unwrap();
    y
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central-difference gradient of `g` at `v`.
fn fd_grad(v: &[f64], g: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut w = v.to_vec();
    (0..v.len())
        .map(|i| {
            w[i] = v[i] + H;
            let up = g(&w);
            w[i] = v[i] - H;
            let down = g(&w);
            w[i] = v[i];
            (up - down) / (2.0 * H)
        })
        .collect()
}

#[test]
fn activation_derivatives_match_finite_differences() {
    let points = [-12.0, -4.5, -1.3, -0.2, 0.05, 0.4, 1.1, 2.5, 6.0, 15.0];
    for act in all_activations() {
        for &x in &points {
            let d = act.derivative_f64(x);
            let fd = (act.value_f64(x + H) - act.value_f64(x - H)) / (2.0 * H);
            // round-off of the difference quotient grows with |f| / H
            let tol = 1e-6 * d.abs() + 1e-9 * (1.0 + act.value_f64(x).abs());
            assert!((d - fd).abs() <= tol, "{act} at {x}: derivative {d:e}, finite difference {fd:e}");
            // f32 agrees with f64 to single precision
            let (v32, d32) = (act.value_f32(x as f32) as f64, act.derivative_f32(x as f32) as f64);
            let v = act.value_f64(x);
            assert!((v32 - v).abs() <= 2e-6 * (1.0 + v.abs()), "{act} f32 value at {x}: {v32} vs {v}");
            assert!((d32 - d).abs() <= 2e-6 * (1.0 + d.abs()), "{act} f32 derivative at {x}: {d32} vs {d}");
            // generic version on duals carries the same derivative
            let y = act.apply(Dual::<1>::variable(x, 0));
            assert_eq!(y.v, v, "{act} dual value");
            assert!((y.d[0] - d).abs() <= 1e-15 * (1.0 + d.abs()), "{act} dual derivative");
        }
    }
    // spot values that pin the formulas (GELU is the tanh approximation)
    assert!((Activation::Gelu.value_f64(1.0) - 0.841_191_990_607_477_2).abs() < 1e-12);
    assert!((Activation::Swish.value_f64(1.0) - 0.731_058_578_630_004_9).abs() < 1e-12);
    assert!((Activation::Softplus.value_f64(0.0) - std::f64::consts::LN_2).abs() < 1e-15);
    assert!((Activation::Rbf.value_f64(1.0) - (-1.0f64).exp()).abs() < 1e-15);
}

/// Backward (VJP) of `ybar . y(p, x)` against finite differences, w.r.t. input and params.
fn check_vjp(net: &Mlp, seed: u64, scale: f64, rtol: f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let p = net.init_params(Init::GlorotNormal, seed, scale);
    // biases non-zero so that every parameter block is exercised
    let p: Vec<f64> = p.iter().map(|w| w + 0.1 * (2.0 * rng.random::<f64>() - 1.0)).collect();
    let x = random_vec(&mut rng, net.n_inputs(), 1.0);
    let ybar = random_vec(&mut rng, net.n_outputs(), 1.0);
    let mut ws = net.workspace::<f64>(1);
    let mut y = vec![0.0; net.n_outputs()];
    let mut xbar = vec![0.0; net.n_inputs()];
    let mut pbar = vec![0.0; net.n_params()];
    net.vjp(&p, &x, &mut y, &ybar, Some(&mut xbar), Some(&mut pbar), &mut ws).unwrap();
    let fd_x = fd_grad(&x, |x| dot(&ybar, &eval(net, &p, x)));
    let fd_p = fd_grad(&p, |p| dot(&ybar, &eval(net, p, &x)));
    let name = format!("{:?}", net.sizes());
    assert_close(&format!("{name} x_bar"), &xbar, &fd_x, rtol);
    assert_close(&format!("{name} p_bar"), &pbar, &fd_p, rtol);
    assert!(pbar.iter().any(|&g| g != 0.0), "{name}: gradient should not vanish");
}

#[test]
fn dense_layer_vjp_matches_finite_differences() {
    check_vjp(&Mlp::new(&[3, 4], &[Activation::Tanh]).unwrap(), 1, 1.0, 1e-6);
    check_vjp(&Mlp::new(&[5, 3], &[Activation::Sigmoid]).unwrap(), 2, 1.0, 1e-6);
    check_vjp(&Mlp::new(&[17, 9], &[Activation::Identity]).unwrap(), 3, 1.0, 1e-6);
}

#[test]
fn mlp_vjp_matches_finite_differences() {
    check_vjp(&Mlp::with_hidden(&[2, 50, 2], Activation::Tanh).unwrap(), 10, 1.0, 1e-6);
    check_vjp(&Mlp::with_hidden(&[2, 5, 5, 5, 2], Activation::Rbf).unwrap(), 11, 1.0, 1e-6);
    for (k, act) in all_activations().into_iter().enumerate() {
        // the activation on every layer, output included, so its derivative is checked everywhere
        let net = Mlp::new(&[4, 32, 32, 4], &[act; 3]).unwrap();
        check_vjp(&net, 20 + k as u64, 1.0, 1e-6);
    }
}

#[test]
fn batch_backward_is_the_sum_of_single_backwards() {
    let net = Mlp::with_hidden(&[3, 20, 20, 2], Activation::Swish).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let p = net.init_params(Init::GlorotUniform, 5, 1.0);
    let batch = 7;
    let x = random_vec(&mut rng, batch * 3, 2.0);
    let ybar = random_vec(&mut rng, batch * 2, 1.0);
    let mut ws = net.workspace::<f64>(batch);
    let mut y = vec![0.0; batch * 2];
    let (mut xbar, mut pbar) = (vec![0.0; batch * 3], vec![0.0; net.n_params()]);
    net.forward_batch(&p, &x, &mut y, &mut ws).unwrap();
    net.backward_batch(&p, &ybar, Some(&mut xbar), Some(&mut pbar), &mut ws).unwrap();

    let mut ws1 = net.workspace::<f64>(1);
    let mut pbar_sum = vec![0.0; net.n_params()];
    for b in 0..batch {
        let mut yb = [0.0; 2];
        let mut xb = [0.0; 3];
        let mut pb = vec![0.0; net.n_params()];
        net.vjp(&p, &x[b * 3..b * 3 + 3], &mut yb, &ybar[b * 2..b * 2 + 2], Some(&mut xb), Some(&mut pb), &mut ws1)
            .unwrap();
        assert_close("batch y", &y[b * 2..b * 2 + 2], &yb, 1e-14);
        assert_close("batch x_bar", &xbar[b * 3..b * 3 + 3], &xb, 1e-13);
        pbar_sum.iter_mut().zip(&pb).for_each(|(s, g)| *s += g);
    }
    assert_close("batch p_bar", &pbar, &pbar_sum, 1e-12);
}

/// Networks `n -> h -> n` with `n <= 4 < h` take a one-sweep backward pass for a single
/// input (in a workspace of batch 1 or larger); a batch of two takes the layer-by-layer one.
/// Both must give the same bits: a gradient must not depend on which ran.
#[test]
fn one_pass_kernels_match_the_layered_ones_to_the_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for n in 1..=4 {
        for h in [5, 7, 8, 11, 13, 50] {
            for (k, act) in all_activations().into_iter().enumerate() {
                let out = if k % 2 == 0 { Activation::Identity } else { Activation::Tanh };
                let net = Mlp::new(&[n, h, n], &[act, out]).unwrap();
                let p = random_vec(&mut rng, net.n_params(), 0.8);
                let x = random_vec(&mut rng, n, 1.5);
                let ybar = random_vec(&mut rng, n, 1.0);
                let pbar0 = random_vec(&mut rng, net.n_params(), 1.0);
                let xbar0 = random_vec(&mut rng, n, 1.0);
                let name = format!("{n}-{h}-{n} {act:?}/{out:?}");

                // Layered: a batch of two, the second row with a zero output adjoint.
                let mut ws2 = net.workspace::<f64>(2);
                let x2: Vec<f64> = x.iter().chain(&x).copied().collect();
                let ybar2: Vec<f64> = ybar.iter().copied().chain(std::iter::repeat_n(0.0, n)).collect();
                let mut y2 = vec![0.0; 2 * n];
                let mut xbar2: Vec<f64> = xbar0.iter().chain(&xbar0).copied().collect();
                let mut pbar2 = pbar0.clone();
                net.forward_batch(&p, &x2, &mut y2, &mut ws2).unwrap();
                net.backward_batch(&p, &ybar2, Some(&mut xbar2), Some(&mut pbar2), &mut ws2).unwrap();

                // One pass: a single input.
                let mut ws1 = net.workspace::<f64>(1);
                let (mut y1, mut xbar1, mut pbar1) = (vec![0.0; n], xbar0.clone(), pbar0.clone());
                net.vjp(&p, &x, &mut y1, &ybar, Some(&mut xbar1), Some(&mut pbar1), &mut ws1).unwrap();
                let mut y0 = vec![0.0; n];
                net.forward(&p, &x, &mut y0);
                // A single input in a workspace with room for more (other layer offsets).
                let (mut xbar3, mut pbar3) = (xbar0.clone(), pbar0.clone());
                net.vjp(&p, &x, &mut y0.clone(), &ybar, Some(&mut xbar3), Some(&mut pbar3), &mut ws2).unwrap();

                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y1), bits(&y2[..n]), "{name}: stored forward");
                assert_eq!(bits(&y0), bits(&y2[..n]), "{name}: value-only forward");
                assert_eq!(bits(&xbar1), bits(&xbar2[..n]), "{name}: input adjoint");
                assert_eq!(bits(&pbar1), bits(&pbar2), "{name}: parameter adjoint");
                assert_eq!((bits(&xbar3), bits(&pbar3)), (bits(&xbar1), bits(&pbar1)), "{name}: wider workspace");
                assert!(pbar1 != pbar0, "{name}: the parameter adjoint must change");
            }
        }
    }
}

#[test]
fn input_jacobian_and_jvp_match_finite_differences() {
    for (sizes, act) in [(&[2usize, 50, 2][..], Activation::Tanh), (&[4, 32, 32, 3][..], Activation::Gelu)] {
        let net = Mlp::with_hidden(sizes, act).unwrap();
        let (n_in, n_out) = (net.n_inputs(), net.n_outputs());
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let p = net.init_params(Init::GlorotNormal, 8, 1.0);
        let x = random_vec(&mut rng, n_in, 1.0);
        let mut ws = net.workspace::<f64>(1);
        let mut jac = vec![0.0; n_out * n_in];
        net.jacobian_input(&p, &x, &mut jac, &mut ws).unwrap();
        for i in 0..n_out {
            let fd = fd_grad(&x, |x| eval(&net, &p, x)[i]);
            assert_close("jacobian row", &jac[i * n_in..(i + 1) * n_in], &fd, 1e-6);
        }
        let v = random_vec(&mut rng, n_in, 1.0);
        let (mut y, mut jv) = (vec![0.0; n_out], vec![0.0; n_out]);
        net.jvp_input(&p, &x, &v, &mut y, &mut jv, &mut ws).unwrap();
        let jv_ref: Vec<f64> = (0..n_out).map(|i| dot(&jac[i * n_in..(i + 1) * n_in], &v)).collect();
        assert_close("jvp", &jv, &jv_ref, 1e-12);
        assert_close("jvp value", &y, &eval(&net, &p, &x), 1e-15);
    }
}

#[test]
fn dual_forward_matches_kernel_values_and_jacobian() {
    let net = Mlp::with_hidden(&[4, 32, 32, 4], Activation::Tanh).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let p = net.init_params(Init::GlorotUniform, 9, 1.0);
    let x = random_vec(&mut rng, 4, 1.0);
    let y_ref = eval(&net, &p, &x);
    let mut ws = net.workspace::<f64>(1);
    let mut jac = vec![0.0; 16];
    net.jacobian_input(&p, &x, &mut jac, &mut ws).unwrap();

    let xd: Vec<Dual<4>> = x.iter().enumerate().map(|(j, &v)| Dual::variable(v, j)).collect();
    let mut yd = [Dual::<4>::default(); 4];
    net.forward_const_params(&p, &xd, &mut yd);
    let mut yd2 = [Dual::<4>::default(); 4];
    let pd: Vec<Dual<4>> = p.iter().map(|&v| Dual::constant(v)).collect();
    net.forward(&pd, &xd, &mut yd2);
    for i in 0..4 {
        for y in [yd[i], yd2[i]] {
            assert!((y.v - y_ref[i]).abs() <= 1e-13, "value {i}: {} vs {}", y.v, y_ref[i]);
            assert_close("dual row", &y.d, &jac[i * 4..i * 4 + 4], 1e-12);
        }
    }
    // plain f64 through the generic path too
    let mut y64 = [0.0; 4];
    net.forward(&p, &x, &mut y64);
    assert_close("generic f64", &y64, &y_ref, 1e-13);
}

#[test]
fn dual_parameters_give_the_parameter_gradient() {
    let net = Mlp::with_hidden(&[3, 10, 10, 2], Activation::Softplus).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let p = net.init_params(Init::HeNormal, 12, 1.0);
    let x = random_vec(&mut rng, 3, 1.0);
    let ybar = [0.7, -1.3];
    let mut ws = net.workspace::<f64>(1);
    let (mut y, mut pbar) = ([0.0; 2], vec![0.0; net.n_params()]);
    net.vjp(&p, &x, &mut y, &ybar, None, Some(&mut pbar), &mut ws).unwrap();
    // seed two parameters: one first-layer weight and the last bias
    let picks = [1, net.n_params() - 1];
    let mut pd: Vec<Dual<2>> = p.iter().map(|&v| Dual::constant(v)).collect();
    for (k, &i) in picks.iter().enumerate() {
        pd[i] = Dual::variable(p[i], k);
    }
    let xd: Vec<Dual<2>> = x.iter().map(|&v| Dual::constant(v)).collect();
    let mut yd = [Dual::<2>::default(); 2];
    net.forward(&pd, &xd, &mut yd);
    for (k, &i) in picks.iter().enumerate() {
        let g = ybar[0] * yd[0].d[k] + ybar[1] * yd[1].d[k];
        assert!((g - pbar[i]).abs() <= 1e-12 * (1.0 + g.abs()), "param {i}: dual {g}, backward {}", pbar[i]);
    }
}

#[test]
fn f32_kernels_agree_with_f64() {
    for sizes in [&[2usize, 50, 2][..], &[4, 32, 32, 4][..]] {
        let net = Mlp::with_hidden(sizes, Activation::Tanh).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let p = net.init_params(Init::GlorotUniform, 13, 1.0);
        let batch = 5;
        let x = random_vec(&mut rng, batch * net.n_inputs(), 1.0);
        let ybar = random_vec(&mut rng, batch * net.n_outputs(), 1.0);
        let (p32, x32, ybar32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            p.iter().map(|&v| v as f32).collect(),
            x.iter().map(|&v| v as f32).collect(),
            ybar.iter().map(|&v| v as f32).collect(),
        );
        let mut ws = net.workspace::<f64>(batch);
        let mut ws32 = net.workspace::<f32>(batch);
        let mut y = vec![0.0; batch * net.n_outputs()];
        let mut y32 = vec![0.0f32; batch * net.n_outputs()];
        net.forward_batch(&p, &x, &mut y, &mut ws).unwrap();
        net.forward_batch(&p32, &x32, &mut y32, &mut ws32).unwrap();
        for (a, b) in y32.iter().zip(&y) {
            assert!((*a as f64 - b).abs() < 1e-5, "f32 {a} vs f64 {b}");
        }
        let mut pbar = vec![0.0; net.n_params()];
        let mut pbar32 = vec![0.0f32; net.n_params()];
        net.backward_batch(&p, &ybar, None, Some(&mut pbar), &mut ws).unwrap();
        net.backward_batch(&p32, &ybar32, None, Some(&mut pbar32), &mut ws32).unwrap();
        let pbar32: Vec<f64> = pbar32.iter().map(|&v| v as f64).collect();
        assert_close("f32 p_bar", &pbar32, &pbar, 1e-4);
    }
}

#[test]
fn backward_accumulates() {
    let net = Mlp::with_hidden(&[2, 8, 2], Activation::Sigmoid).unwrap();
    let p = net.init_params(Init::GlorotUniform, 3, 1.0);
    let mut ws = net.workspace::<f64>(1);
    let mut y = [0.0; 2];
    net.forward_ws(&p, &[0.3, -0.8], &mut y, &mut ws).unwrap();
    let (mut xbar, mut pbar) = ([0.0; 2], vec![0.0; net.n_params()]);
    net.backward_ws(&p, &[1.0, 2.0], Some(&mut xbar), Some(&mut pbar), &mut ws).unwrap();
    let (x1, p1) = (xbar, pbar.clone());
    net.backward_ws(&p, &[1.0, 2.0], Some(&mut xbar), Some(&mut pbar), &mut ws).unwrap();
    assert!(p1.iter().any(|&g| g != 0.0));
    // x_bar sums over outputs one term at a time, so a non-zero start may round differently
    for i in 0..2 {
        assert!((xbar[i] - 2.0 * x1[i]).abs() <= 1e-15 * x1[i].abs(), "{} vs 2 * {}", xbar[i], x1[i]);
    }
    // each weight gradient gets one term per input: exactly doubled
    for i in 0..pbar.len() {
        assert_eq!(pbar[i], 2.0 * p1[i]);
    }
    // starting from a non-zero gradient adds to it
    let mut pbar = vec![1.0; net.n_params()];
    net.backward_ws(&p, &[1.0, 2.0], None, Some(&mut pbar), &mut ws).unwrap();
    for i in 0..pbar.len() {
        assert_eq!(pbar[i], 1.0 + p1[i]);
    }
}

fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
}

#[test]
fn initialisers_are_reproducible_with_the_right_variance() {
    let net = Mlp::new(&[300, 200, 100], &[Activation::Tanh, Activation::Identity]).unwrap();
    let l0 = net.layers()[0];
    for init in [Init::GlorotUniform, Init::GlorotNormal, Init::HeNormal] {
        let p = net.init_params(init, 77, 1.0);
        assert_eq!(p, net.init_params(init, 77, 1.0), "{init:?} same seed");
        assert_ne!(p, net.init_params(init, 78, 1.0), "{init:?} other seed");
        let (mean, var) = moments(&p[l0.weights()]);
        let want = match init {
            Init::HeNormal => 2.0 / 300.0,
            _ => 2.0 / 500.0,
        };
        // 60000 samples: the variance estimate is good to ~1%; a wrong formula is off by >= 1.5x
        assert!((var / want - 1.0).abs() < 0.05, "{init:?}: variance {var:e}, want {want:e}");
        assert!(mean.abs() < 0.01 * want.sqrt() * 5.0, "{init:?}: mean {mean:e}");
        assert!(p[l0.biases()].iter().all(|&b| b == 0.0));
        let small = net.init_params(init, 77, 1e-2);
        for (s, w) in small.iter().zip(&p) {
            assert!((s - 1e-2 * w).abs() <= 1e-15 * w.abs());
        }
    }
    let bound = (6.0f64 / 500.0).sqrt();
    let p = net.init_params(Init::GlorotUniform, 1, 1.0);
    let max = p[l0.weights()].iter().fold(0.0f64, |m, w| m.max(w.abs()));
    assert!(max <= bound && max > 0.99 * bound, "uniform bound {max} vs {bound}");
    assert!(net.init_params(Init::Zeros, 1, 1.0).iter().all(|&w| w == 0.0));
    assert_eq!(Init::from_name("xavier-uniform"), Some(Init::GlorotUniform));
}

#[test]
fn shape_accessors_and_layout() {
    let net = Mlp::with_hidden(&[3, 5, 2], Activation::Relu).unwrap();
    assert_eq!((net.n_inputs(), net.n_outputs(), net.n_params()), (3, 2, 3 * 5 + 5 + 5 * 2 + 2));
    assert_eq!(net.sizes(), &[3, 5, 2]);
    let l = net.layers();
    assert_eq!((l[0].weights(), l[0].biases(), l[1].weights(), l[1].biases()), (0..15, 15..20, 20..30, 30..32));
    assert_eq!(l[1].activation(), Activation::Identity);
    // layout: W row-major [out][in]; set y_1 = x_2 (weight W2[1][0] after a relu of x_2)
    let mut p = vec![0.0; net.n_params()];
    p[2] = 1.0; // W1[0][2]
    p[20 + 5] = 1.0; // W2[1][0]
    p[31] = 0.25; // b2[1]
    let mut y = [0.0; 2];
    net.forward(&p, &[9.0, 9.0, 4.0], &mut y);
    assert_eq!(y, [0.0, 4.25]);
    // widest allowed hidden layer works through the generic path
    let wide = Mlp::with_hidden(&[2, MAX_WIDTH, 1], Activation::Tanh).unwrap();
    let p = wide.init_params(Init::GlorotUniform, 1, 1.0);
    let mut y = [0.0];
    wide.forward(&p, &[0.1, 0.2], &mut y);
    assert!((y[0] - eval(&wide, &p, &[0.1, 0.2])[0]).abs() < 1e-13);
}

#[test]
fn bad_input_returns_errors() {
    let opt = |r: Result<Mlp, DiffsimError>| matches!(r, Err(DiffsimError::InvalidOption { name: "sizes", .. }));
    assert!(opt(Mlp::new(&[], &[])));
    assert!(opt(Mlp::new(&[3], &[])));
    assert!(opt(Mlp::new(&[2, 0, 2], &[Activation::Tanh; 2])));
    assert!(opt(Mlp::new(&[2, MAX_WIDTH + 1, 2], &[Activation::Tanh; 2])));
    assert!(opt(Mlp::new(&[usize::MAX, usize::MAX], &[Activation::Tanh])));
    assert!(matches!(
        Mlp::new(&[2, 4, 2], &[Activation::Tanh]),
        Err(DiffsimError::SizeMismatch { expected: 2, got: 1, .. })
    ));
    assert!(Mlp::with_hidden(&[], Activation::Tanh).is_err());

    let net = Mlp::with_hidden(&[2, 4, 3], Activation::Tanh).unwrap();
    let p = net.init_params(Init::GlorotUniform, 0, 1.0);
    let mut ws = net.workspace::<f64>(2);
    let mut y = [0.0; 3];
    let size = |r: diffsim::Result<()>| matches!(r, Err(DiffsimError::SizeMismatch { .. }));
    let option = |r: diffsim::Result<()>| matches!(r, Err(DiffsimError::InvalidOption { name: "workspace", .. }));
    assert!(option(net.backward_batch(&p, &[0.0; 3], None, None, &mut ws)), "backward before forward");
    assert!(size(net.forward_ws(&p[1..], &[0.0; 2], &mut y, &mut ws)));
    assert!(size(net.forward_ws(&p, &[0.0; 3], &mut y, &mut ws)));
    assert!(size(net.forward_batch(&p, &[0.0; 3], &mut y, &mut ws)), "x not a whole batch");
    assert!(size(net.forward_batch(&p, &[0.0; 4], &mut y, &mut ws)), "y too short for batch 2");
    assert!(option(net.forward_batch(&p, &[0.0; 6], &mut [0.0; 9], &mut ws)), "batch over capacity");
    let other = Mlp::with_hidden(&[2, 5, 3], Activation::Tanh).unwrap();
    assert!(option(net.forward_ws(&p, &[0.0; 2], &mut y, &mut other.workspace(1))), "foreign workspace");
    net.forward_batch(&p, &[0.0; 4], &mut [0.0; 6], &mut ws).unwrap();
    assert!(option(net.backward_ws(&p, &[0.0; 3], None, None, &mut ws)), "single backward after a batch");
    assert!(size(net.backward_batch(&p, &[0.0; 3], None, None, &mut ws)), "ybar for the wrong batch");
    assert!(size(net.backward_batch(&p, &[0.0; 6], Some(&mut [0.0; 2]), None, &mut ws)));
    assert!(size(net.backward_batch(&p, &[0.0; 6], None, Some(&mut [0.0; 3]), &mut ws)));
    assert!(size(net.jacobian_input(&p, &[0.0; 2], &mut [0.0; 5], &mut ws)));
    assert!(size(net.jvp_input(&p, &[0.0; 2], &[0.0; 1], &mut y, &mut [0.0; 3], &mut ws)));
    assert!(size(net.init_params_into(Init::GlorotUniform, 0, 1.0, &mut [0.0; 3])));
    let mut q = vec![0.0; net.n_params()];
    assert!(net.init_params_into(Init::GlorotUniform, 0, f64::NAN, &mut q).is_err());
    assert!(net.check_params(p.len()).is_ok() && net.check_params(1).is_err());
}
