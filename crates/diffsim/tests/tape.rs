//! The reverse-mode tape against forward-mode duals on the whole zoo, and its guards: a
//! compiled replay never returns the gradient of a branch the model did not take.

use diffsim::ad::{ForwardJacobian, RhsTape, TapeMode, Vjp, VjpMethod};
use diffsim::models::{self, LvPiecewise};
use diffsim::nn::{Activation, CustomActivation, Init, Mlp};
use diffsim::{Model, Scalar};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations per thread (so the harness's other threads do not disturb it).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Seeded points around `(u, p)`: small relative perturbations, so every model stays in
/// its usual regime (and the piecewise one sees several pieces through `t`).
fn points(u: &[f64], p: &[f64], k: usize) -> Vec<(Vec<f64>, Vec<f64>, f64)> {
    let wobble = |x: f64, i: usize, j: usize| x * (1.0 + 0.1 * ((7 * i + 3 * j + 1) as f64).sin()) + 0.01 * j as f64;
    (0..k)
        .map(|i| {
            let u: Vec<f64> = u.iter().enumerate().map(|(j, &x)| wobble(x, i, j)).collect();
            let p: Vec<f64> = p.iter().enumerate().map(|(j, &x)| wobble(x, i, j + 100)).collect();
            (u, p, 0.37 + 0.61 * i as f64)
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// `[df/du df/dp]` row by row from forward-mode VJPs with unit weights, and `df/du`,
/// `df/dt` from the forward Jacobian.
fn forward_reference<M: Model>(model: &M, u: &[f64], p: &[f64], t: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, np) = (u.len(), p.len());
    let (mut ju, mut ft) = (vec![0.0; n * n], vec![0.0; n]);
    ForwardJacobian::new(n, np).evaluate(model, u, p, t, &mut ju, Some(&mut ft));
    let mut jp = vec![0.0; n * np];
    let mut vjp = Vjp::new(model, VjpMethod::Forward).unwrap();
    for i in 0..n {
        let mut w = vec![0.0; n];
        w[i] = 1.0;
        let mut du = vec![0.0; n];
        vjp.apply(model, &w, u, p, t, &mut du, &mut jp[i * np..(i + 1) * np]);
        for j in 0..n {
            assert!(close(du[j], ju[i * n + j], 1e-14), "forward VJP vs forward Jacobian");
        }
    }
    (ju, jp, ft)
}

/// Tape Jacobians, VJPs and JVPs, in both modes, against forward mode to 1e-12 on every
/// model of the zoo at several points.
#[test]
fn tape_matches_forward_mode_on_every_zoo_model() {
    for name in models::NAMES.iter().copied().chain(["brusselator-5"]) {
        let e = models::lookup(name).unwrap();
        let model = e.model;
        let (n, np) = (model.n_states(), model.n_params());
        for mode in [TapeMode::Compiled, TapeMode::Rerecord] {
            let mut tape = RhsTape::new(&model, mode);
            let mut vjp =
                Vjp::new(&model, if mode == TapeMode::Compiled { VjpMethod::CompiledTape } else { VjpMethod::Tape })
                    .unwrap();
            for (u, p, t) in points(&e.u0, &e.p, 6) {
                let (ju_ref, jp_ref, ft_ref) = forward_reference(&model, &u, &p, t);
                tape.at(&model, &u, &p, t).unwrap();
                let (mut ju, mut jp, mut ft) = (vec![0.0; n * n], vec![0.0; n * np], vec![0.0; n]);
                tape.jacobian(&mut ju, Some(&mut jp), Some(&mut ft)).unwrap();
                for (what, got, want) in [("df/du", &ju, &ju_ref), ("df/dp", &jp, &jp_ref), ("df/dt", &ft, &ft_ref)] {
                    for (k, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                        assert!(close(*a, *b, 1e-12), "{name} {mode:?} t = {t}: {what}[{k}] tape {a} vs forward {b}");
                    }
                }
                // The VJP (through Vjp) and the JVP against the reference Jacobians.
                let w: Vec<f64> = (0..n).map(|i| 0.3 + 0.7 * i as f64).collect();
                let (mut du, mut dp) = (vec![0.0; n], vec![0.0; np]);
                vjp.apply(&model, &w, &u, &p, t, &mut du, &mut dp);
                for j in 0..n {
                    let want: f64 = (0..n).map(|i| w[i] * ju_ref[i * n + j]).sum();
                    let scale: f64 = (0..n).map(|i| (w[i] * ju_ref[i * n + j]).abs()).sum();
                    assert!((du[j] - want).abs() <= 1e-12 * scale.max(1.0), "{name} {mode:?}: VJP du[{j}]");
                }
                for j in 0..np {
                    let want: f64 = (0..n).map(|i| w[i] * jp_ref[i * np + j]).sum();
                    let scale: f64 = (0..n).map(|i| (w[i] * jp_ref[i * np + j]).abs()).sum();
                    assert!((dp[j] - want).abs() <= 1e-12 * scale.max(1.0), "{name} {mode:?}: VJP dp[{j}]");
                }
                let vu: Vec<f64> = (0..n).map(|j| 1.0 - 0.2 * j as f64).collect();
                let mut out = vec![0.0; n];
                tape.jvp(&vu, &vec![0.0; np], 0.0, &mut out).unwrap();
                for i in 0..n {
                    let want: f64 = (0..n).map(|j| ju_ref[i * n + j] * vu[j]).sum();
                    let scale: f64 = (0..n).map(|j| (ju_ref[i * n + j] * vu[j]).abs()).sum();
                    assert!((out[i] - want).abs() <= 1e-12 * scale.max(1.0), "{name} {mode:?}: JVP[{i}]");
                }
                // The recorded values are f itself, bit for bit.
                let (mut f_tape, mut f) = (vec![0.0; n], vec![0.0; n]);
                tape.values(&mut f_tape).unwrap();
                model.rhs(&mut f, &u, &p, t);
                assert_eq!(f_tape, f, "{name} {mode:?}: values");
            }
            let s = tape.stats();
            match mode {
                TapeMode::Rerecord => assert_eq!(s.recordings, 6, "{name}"),
                // Only the piecewise model has guards (on t).
                TapeMode::Compiled if name == "lv-piecewise" => assert!(s.guard_failures > 0, "{name}: {s:?}"),
                TapeMode::Compiled => assert_eq!((s.recordings, s.replays), (1, 5), "{name}: {s:?}"),
            }
        }
    }
}

/// The VJP of `model` at `(u, p, t)` on a tape (reused across calls by the caller).
fn vjp_on(tape: &mut RhsTape, model: &impl Model, u: &[f64], p: &[f64], t: f64, w: &[f64]) -> Vec<f64> {
    tape.at(model, u, p, t).unwrap();
    let (mut du, mut dp) = (vec![0.0; u.len()], vec![0.0; p.len()]);
    tape.vjp(w, &mut du, &mut dp).unwrap();
    du.into_iter().chain(dp).collect()
}

/// Lotka-Volterra with a rate switching in time, recorded at t = 0.5 (rate p_0) and asked
/// at t = 1.5 (rate p_1): the guard `t <= 1` fails, the tape records afresh, and the
/// gradient is the t = 1.5 one, equal to a fresh recording's.
#[test]
fn time_branch_guard_forces_a_re_recording() {
    let (u, p, w) = ([1.2, 0.7], [1.0, 1.5, 0.5, 2.0], [1.0, -0.5]);
    let mut compiled = RhsTape::new(&LvPiecewise, TapeMode::Compiled);
    let at_half = vjp_on(&mut compiled, &LvPiecewise, &u, &p, 0.5, &w);
    assert_eq!(compiled.stats().recordings, 1);
    assert!(compiled.n_guards() >= 1);
    // Same piece: a replay.
    vjp_on(&mut compiled, &LvPiecewise, &u, &p, 0.9, &w);
    assert_eq!((compiled.stats().recordings, compiled.stats().replays), (1, 1));

    let got = vjp_on(&mut compiled, &LvPiecewise, &u, &p, 1.5, &w);
    let s = compiled.stats();
    assert_eq!((s.recordings, s.guard_failures), (2, 1), "the re-record counter rises: {s:?}");
    let fresh = vjp_on(&mut RhsTape::new(&LvPiecewise, TapeMode::Rerecord), &LvPiecewise, &u, &p, 1.5, &w);
    assert_eq!(got, fresh);
    assert_ne!(got, at_half);
    // dL/dp: x w_0 - y w_1 on the active rate only.
    let active = 1.2 * 1.0 - 0.7 * -0.5;
    assert_eq!(&at_half[2..], &[active, 0.0, 0.0, 0.0]);
    assert_eq!(&got[2..], &[0.0, active, 0.0, 0.0]);
    // Through Vjp as the adjoints use it.
    let mut vjp = Vjp::new(&LvPiecewise, VjpMethod::CompiledTape).unwrap();
    let (mut du, mut dp) = ([0.0; 2], [0.0; 4]);
    vjp.apply(&LvPiecewise, &w, &u, &p, 0.5, &mut du, &mut dp);
    let (mut du, mut dp) = ([0.0; 2], [0.0; 4]);
    vjp.apply(&LvPiecewise, &w, &u, &p, 1.5, &mut du, &mut dp);
    assert_eq!(du.iter().chain(&dp).copied().collect::<Vec<_>>(), fresh);
    assert_eq!(vjp.tape_stats().unwrap().guard_failures, 1);
}

/// Convective adjustment: heat flows from the lower layer to the upper only when the lower
/// is warmer (a branch on the states' difference), at a rate set by a parameter.
#[derive(Clone, Copy)]
struct Convective;
impl Model for Convective {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let gap = u[0] - u[1];
        let flux = if gap > T::zero() { p[0] * gap * gap } else { T::zero() };
        du[0] = -flux - p[1] * u[0];
        du[1] = flux - p[1] * u[1];
    }
}

#[test]
fn state_branch_guard_forces_a_re_recording() {
    let (p, w) = ([2.0, 0.1], [1.0, 2.0]);
    let mut compiled = RhsTape::new(&Convective, TapeMode::Compiled);
    let mut fresh = RhsTape::new(&Convective, TapeMode::Rerecord);
    let unstable = vjp_on(&mut compiled, &Convective, &[2.0, 1.0], &p, 0.0, &w);
    // Now the upper layer is warmer: no flux, and no flux gradient.
    let got = vjp_on(&mut compiled, &Convective, &[1.0, 2.0], &p, 0.0, &w);
    let want = vjp_on(&mut fresh, &Convective, &[1.0, 2.0], &p, 0.0, &w);
    assert_eq!(got, want);
    assert_eq!(got[2], 0.0, "d/dp_0 must vanish without flux");
    assert_ne!(unstable[2], 0.0);
    assert_eq!(compiled.stats().guard_failures, 1);
    // Back and forth: every answer equals a fresh recording's.
    for k in 0..12 {
        let u = [1.5 + (k as f64).sin(), 1.5 + (1.3 * k as f64).cos()];
        assert_eq!(
            vjp_on(&mut compiled, &Convective, &u, &p, 0.0, &w),
            vjp_on(&mut fresh, &Convective, &u, &p, 0.0, &w),
            "point {k}"
        );
    }
    let s = compiled.stats();
    assert!(s.replays > 0 && s.guard_failures > 1, "{s:?}");
}

/// Compiled replays give exactly what re-recording gives, on every zoo model along a
/// sequence of points (1e-14 is allowed by the brief; bit-for-bit is what we get, since
/// both evaluate each operation with the same function).
#[test]
fn compiled_tape_equals_re_recording_bit_for_bit() {
    for name in models::NAMES {
        let e = models::lookup(name).unwrap();
        let model = e.model;
        let mut compiled = RhsTape::new(&model, TapeMode::Compiled);
        let mut fresh = RhsTape::new(&model, TapeMode::Rerecord);
        let w: Vec<f64> = (0..model.n_states()).map(|i| 1.0 - 0.3 * i as f64).collect();
        for (i, (u, p, t)) in points(&e.u0, &e.p, 8).into_iter().enumerate() {
            let a = vjp_on(&mut compiled, &model, &u, &p, t, &w);
            let b = vjp_on(&mut fresh, &model, &u, &p, t, &w);
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} point {i}: {a:?} vs {b:?}");
        }
        assert!(compiled.stats().replays > 0, "{name}: {:?}", compiled.stats());
    }
}

/// A neural ODE through the network's generic forward pass (a 2-50-2 MLP, 252 parameters).
/// Built-in activations go through `Scalar::chain_fn`, so the compiled tape records once and
/// replays; a custom activation (a closure over user function pointers) goes through
/// `Scalar::chain`, which the tape cannot replay: it re-records at each new point instead,
/// and stays exact either way.
#[derive(Clone)]
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

/// VJPs of a 2-state model by the compiled tape and by forward mode agree at `points`
/// states; returns the compiled tape's statistics.
fn compiled_tape_matches_forward_mode<M: Model>(model: &M, p: &[f64], points: usize) -> diffsim::ad::TapeStats {
    let np = p.len();
    let mut forward = Vjp::new(model, VjpMethod::Forward).unwrap();
    let mut compiled = Vjp::new(model, VjpMethod::CompiledTape).unwrap();
    for k in 0..points {
        let u = [0.5 - 0.2 * k as f64, 0.1 * k as f64];
        let w = [1.0, -0.7];
        let (mut du_a, mut dp_a, mut du_b, mut dp_b) = ([0.0; 2], vec![0.0; np], [0.0; 2], vec![0.0; np]);
        forward.apply(model, &w, &u, p, 0.0, &mut du_a, &mut dp_a);
        compiled.apply(model, &w, &u, p, 0.0, &mut du_b, &mut dp_b);
        for (a, b) in du_a.iter().chain(&dp_a).zip(du_b.iter().chain(&dp_b)) {
            assert!(close(*b, *a, 1e-12), "{b} vs {a}");
        }
    }
    compiled.tape_stats().unwrap()
}

#[test]
fn neural_ode_vjp_by_compiled_tape_replays_built_in_and_re_records_custom_activations() {
    let custom = Activation::Custom(CustomActivation { name: "cube", f: |x| x * x * x, df: |x| 3.0 * x * x });
    for (activation, replays) in [(Activation::Tanh, true), (Activation::Gelu, true), (custom, false)] {
        let net = Mlp::with_hidden(&[2, 50, 2], activation).unwrap();
        let p = net.init_params(Init::GlorotUniform, 7, 1.0);
        let model = NeuralOde(net);
        assert_eq!(model.n_params(), 252);
        let s = compiled_tape_matches_forward_mode(&model, &p, 3);
        let mut tape = RhsTape::new(&model, TapeMode::Compiled);
        tape.at(&model, &[0.1, 0.2], &p, 0.0).unwrap();
        if replays {
            assert_eq!((s.recordings, s.replays), (1, 2), "{activation}: {s:?}");
            assert_eq!(tape.unreplayable(), None, "{activation}");
        } else {
            assert_eq!((s.recordings, s.unreplayable, s.replays), (3, 2, 0), "{activation}: {s:?}");
            assert!(tape.unreplayable().is_some());
        }
    }
}

/// The same network written with `chain_fn` (the function handed over) replays.
#[derive(Clone)]
struct ReplayableMlp {
    sizes: [usize; 3],
}
fn tanh_d(x: f64) -> (f64, f64) {
    let t = x.tanh();
    (t, 1.0 - t * t)
}
impl Model for ReplayableMlp {
    fn n_states(&self) -> usize {
        self.sizes[0]
    }
    fn n_params(&self) -> usize {
        let [a, b, c] = self.sizes;
        b * a + b + c * b + c
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let [ni, nh, no] = self.sizes;
        let (w1, rest) = p.split_at(nh * ni);
        let (b1, rest) = rest.split_at(nh);
        let (w2, b2) = rest.split_at(no * nh);
        let mut h = [T::zero(); 64];
        for j in 0..nh {
            let mut z = b1[j];
            for i in 0..ni {
                z += w1[j * ni + i] * u[i];
            }
            h[j] = z.chain_fn(tanh_d);
        }
        for k in 0..no {
            let mut z = b2[k];
            for j in 0..nh {
                z += w2[k * nh + j] * h[j];
            }
            du[k] = z;
        }
    }
}

#[test]
fn chain_fn_networks_replay_and_match_forward_mode() {
    let model = ReplayableMlp { sizes: [2, 50, 2] };
    let p: Vec<f64> = (0..252).map(|i| 0.3 * ((i as f64) * 0.77).sin()).collect();
    let s = compiled_tape_matches_forward_mode(&model, &p, 4);
    assert_eq!((s.recordings, s.replays), (1, 3), "{s:?}");
}

/// After the first recordings, neither replays, re-recordings (after a guard fails, or in
/// the re-recording mode), reverse sweeps, Jacobians nor JVPs allocate.
#[test]
fn tape_calls_do_not_allocate_after_warm_up() {
    let e = models::lookup("brusselator-8").unwrap();
    let bruss = e.model;
    let (n, np) = (bruss.n_states(), bruss.n_params());
    let p = [1.0, 1.5, 0.5, 2.0];
    let mut vjps: Vec<Vjp> = [VjpMethod::Tape, VjpMethod::CompiledTape]
        .into_iter()
        .flat_map(|m| [Vjp::new(&bruss, m).unwrap(), Vjp::new(&LvPiecewise, m).unwrap()])
        .collect();
    let mut tape = RhsTape::new(&bruss, TapeMode::Compiled);
    let (mut du, mut dp, mut ju, mut jp, mut out) =
        (vec![0.0; n], vec![0.0; np], vec![0.0; n * n], vec![0.0; n * np], vec![0.0; n]);
    let w = vec![1.0; n];
    let (mut du2, mut dp4) = ([0.0; 2], [0.0; 4]);
    let mut run = |k: usize| {
        let s = 0.01 * k as f64;
        let u: Vec<f64> = e.u0.iter().map(|x| x + s).collect();
        let t = 0.3 + 0.6 * (k % 7) as f64; // all four pieces of the piecewise model
        for (i, v) in vjps.iter_mut().enumerate() {
            if i % 2 == 0 {
                v.apply(&bruss, &w, &u, &e.p, t, &mut du, &mut dp);
            } else {
                v.apply(&LvPiecewise, &w[..2], &u[..2], &p, t, &mut du2, &mut dp4);
            }
        }
        tape.at(&bruss, &u, &e.p, t).unwrap();
        tape.vjp(&w, &mut du, &mut dp).unwrap();
        tape.jacobian(&mut ju, Some(&mut jp), None).unwrap();
        tape.jvp(&w, &e.p, 1.0, &mut out).unwrap();
        drop(u);
    };
    for k in 0..7 {
        run(k);
    }
    let before = allocations();
    for k in 7..40 {
        run(k);
    }
    // One Vec per call of `run` (the point `u`), nothing else.
    assert_eq!(allocations() - before, 33);
    let s = vjps[3].tape_stats().unwrap();
    assert!(s.guard_failures > 5 && s.replays > 5, "{s:?}");
}
