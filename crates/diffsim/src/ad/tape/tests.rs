use super::*;
use crate::ad::ForwardJacobian;
use crate::models::{Lorenz, LotkaVolterra};
use crate::problem::Model;

/// Every operation of [`Scalar`], on recorded numbers and constants in every position.
const N_CASES: usize = 46;

fn softsign(x: f64) -> (f64, f64) {
    let s = 1.0 + x.abs();
    (x / s, 1.0 / (s * s))
}

fn case<T: Scalar>(k: usize, x: T, y: T) -> T {
    let c = T::from_f64(0.37);
    match k {
        0 => x + y,
        1 => x - y,
        2 => x * y,
        3 => x / y,
        4 => x + c,
        5 => c + x,
        6 => x - c,
        7 => c - x,
        8 => x * c,
        9 => c * x,
        10 => x / c,
        11 => c / x,
        12 => -x,
        13 => x.exp(),
        14 => x.ln(),
        15 => x.sin(),
        16 => x.cos(),
        17 => x.tanh(),
        18 => x.sqrt(),
        19 => x.powi(3),
        20 => x.powi(-2),
        21 => x.powf(y),
        22 => x.powf(c),
        23 => c.powf(y),
        24 => (-x).abs(),
        25 => x.abs(),
        26 => x.max(y),
        27 => x.min(y),
        28 => x.max(c),
        29 => c.min(y),
        30 => x.scale(-2.5),
        31 => x.chain_fn(softsign),
        32 => {
            let v = x.value();
            x.chain(v.tanh(), 1.0 - v.tanh() * v.tanh())
        }
        33 => {
            let mut z = x;
            z += y;
            z *= y;
            z -= c;
            z /= y;
            z
        }
        34 => x.powi(1) * x.powi(0),
        35 => x * x,
        36 => x * T::one() / T::one(),
        37 => y.max(x) * x.min(y),
        38 => (x * y).sin() * (x / y).exp() - y.sqrt().ln(),
        39 => T::from_f64(2.0) * T::from_f64(3.0) + x,
        // Plain-number constants on the right (the `Scalar` operators with `f64`).
        40 => x * 0.37 + 1.5,
        41 => x / 0.37 - 2.0,
        42 => (x - 1.0) * (y + 0.5) / 4.0,
        43 => {
            let mut z = x * y;
            z += 0.5;
            z *= 3.0;
            z -= 0.25;
            z /= 0.37;
            z
        }
        44 => x * 1.0 / 1.0 + y * 0.0,
        45 => (x * x * 0.5 - y / 3.0) * x + 2.0,
        _ => unreachable!(),
    }
}

/// u = [x, y]; f_0 = case k, f_1 = case k with the arguments swapped.
struct OpModel(usize);
impl Model for OpModel {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
        du[0] = case(self.0, u[0], u[1]);
        du[1] = case(self.0, u[1], u[0]);
    }
}

fn central(f: impl Fn(f64, f64) -> f64, x: f64, y: f64) -> [f64; 2] {
    let h = 1e-6;
    [(f(x + h, y) - f(x - h, y)) / (2.0 * h), (f(x, y + h) - f(x, y - h)) / (2.0 * h)]
}

#[test]
fn every_operation_matches_central_differences() {
    let (x, y) = (0.7, 1.3);
    for k in 0..N_CASES {
        let model = OpModel(k);
        let mut tape = RhsTape::new(&model, TapeMode::Compiled);
        tape.at(&model, &[x, y], &[], 0.0).unwrap();
        let mut f = [0.0; 2];
        tape.values(&mut f).unwrap();
        let mut ju = [0.0; 4];
        tape.jacobian(&mut ju, None, None).unwrap();
        for (row, (a, b)) in [(x, y), (y, x)].into_iter().enumerate() {
            let exact = case::<f64>(k, a, b);
            assert_eq!(f[row].to_bits(), exact.to_bits(), "case {k} row {row}: value {} vs {exact}", f[row]);
            let fd = if row == 0 {
                central(|a, b| case::<f64>(k, a, b), x, y)
            } else {
                central(|a, b| case::<f64>(k, b, a), x, y)
            };
            for j in 0..2 {
                let got = ju[row * 2 + j];
                assert!(
                    (got - fd[j]).abs() < 1e-7 * fd[j].abs().max(1.0),
                    "case {k} d f_{row} / d u_{j}: tape {got} vs central {}",
                    fd[j]
                );
            }
        }
    }
}

/// A replay at a new point gives what a fresh recording there gives, for every operation.
#[test]
fn every_operation_replays_as_it_records() {
    let w = [1.0, -0.5];
    for k in 0..N_CASES {
        let model = OpModel(k);
        let mut compiled = RhsTape::new(&model, TapeMode::Compiled);
        let mut fresh = RhsTape::new(&model, TapeMode::Rerecord);
        for u in [[0.7, 1.3], [0.4, 1.1], [1.6, 0.9]] {
            let got = vjp_at(&mut compiled, &model, &u, &[], 0.0, &w);
            let want = vjp_at(&mut fresh, &model, &u, &[], 0.0, &w);
            assert_eq!(got, want, "case {k} at {u:?}");
        }
    }
}

/// `x op c` and `c op x` with a plain `f64` record exactly what they record with
/// `TapeVar::constant(c)`: one instruction, the same value and local derivative (checked
/// against central differences), including the orders only a concrete type allows (`2.0 * x`).
#[test]
fn plain_number_operators_record_the_constant_forms() {
    let (x0, c) = (0.7, 2.5);
    let k = TapeVar::constant(c);
    type Pair = (fn(TapeVar) -> TapeVar, fn(TapeVar) -> TapeVar, fn(f64) -> f64);
    let pairs: [Pair; 8] = [
        (|x| x + 2.5, |x| x + TapeVar::constant(2.5), |x| x + 2.5),
        (|x| x - 2.5, |x| x - TapeVar::constant(2.5), |x| x - 2.5),
        (|x| x * 2.5, |x| x * TapeVar::constant(2.5), |x| x * 2.5),
        (|x| x / 2.5, |x| x / TapeVar::constant(2.5), |x| x / 2.5),
        (|x| 2.5 + x, |x| TapeVar::constant(2.5) + x, |x| 2.5 + x),
        (|x| 2.5 - x, |x| TapeVar::constant(2.5) - x, |x| 2.5 - x),
        (|x| 2.5 * x, |x| TapeVar::constant(2.5) * x, |x| 2.5 * x),
        (|x| 2.5 / x, |x| TapeVar::constant(2.5) / x, |x| 2.5 / x),
    ];
    for (i, (plain, constant, f)) in pairs.into_iter().enumerate() {
        let a = record_fn(x0, plain);
        let b = record_fn(x0, constant);
        assert_eq!((a.ops.len(), b.ops.len()), (1, 1), "pair {i}");
        assert_eq!(a.vals, b.vals, "pair {i}");
        assert_eq!((a.edges[0].da, a.edges[0].db), (b.edges[0].da, b.edges[0].db), "pair {i}");
        assert_eq!(a.vals.last().unwrap().to_bits(), f(x0).to_bits(), "pair {i}: value");
        let h = 1e-6;
        let fd = (f(x0 + h) - f(x0 - h)) / (2.0 * h);
        assert!((a.edges[0].da - fd).abs() < 1e-8, "pair {i}: derivative {} vs {fd}", a.edges[0].da);
    }
    // The assign forms, on a chain of operations: d/dx ((x + c) * c - c) / c = 1.
    let rec = record_fn(x0, |x| {
        let mut z = x;
        z += 2.5;
        z *= 2.5;
        z -= 2.5;
        z /= 2.5;
        z
    });
    assert_eq!(rec.ops.len(), 4);
    assert_eq!(*rec.vals.last().unwrap(), ((x0 + c) * c - c) / c);
    assert!((rec.edges.iter().map(|e| e.da).product::<f64>() - 1.0).abs() < 1e-15);
    // Outside a recording: values only.
    assert_eq!((k * 2.0 + 1.0).value(), 6.0);
    assert!(!(2.0 * TapeVar::constant(3.0)).is_recorded());
}

#[test]
fn constants_add_no_nodes() {
    struct Consts;
    impl Model for Consts {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            let a = T::from_f64(2.0) * T::from_f64(3.0) - T::one(); // constants only: nothing recorded
            du[0] = u[0] * a + T::from_f64(1.0); // two operations
        }
    }
    let mut tape = RhsTape::new(&Consts, TapeMode::Compiled);
    tape.at(&Consts, &[2.0], &[], 0.0).unwrap();
    assert_eq!(tape.len(), 2);
    let mut du = [0.0];
    tape.vjp(&[1.0], &mut du, &mut []).unwrap();
    assert_eq!(du[0], 5.0);
}

/// Branches on a state value: f = p0 u0^2 if u0 > u1, else p1 sin(u1), plus |u0 - 1|.
struct StateBranch;
impl Model for StateBranch {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = if u[0] > u[1] { p[0] * u[0] * u[0] } else { p[1] * u[1].sin() };
        du[1] = (u[0] - T::one()).abs() + u[1];
    }
}

fn vjp_at<M: Model>(tape: &mut RhsTape, model: &M, u: &[f64], p: &[f64], t: f64, w: &[f64]) -> (Vec<f64>, Vec<f64>) {
    tape.at(model, u, p, t).unwrap();
    let (mut du, mut dp) = (vec![0.0; u.len()], vec![0.0; p.len()]);
    tape.vjp(w, &mut du, &mut dp).unwrap();
    (du, dp)
}

#[test]
fn a_failed_guard_re_records() {
    let p = [1.5, 2.5];
    let w = [1.0, 0.5];
    let mut compiled = RhsTape::new(&StateBranch, TapeMode::Compiled);
    let mut fresh = RhsTape::new(&StateBranch, TapeMode::Rerecord);
    // Recorded with u0 > u1; the second point keeps the branch (abs changes sign, which a
    // replay re-evaluates); the third takes the other branch.
    let points = [[2.0, 1.0], [0.5, 0.25], [0.5, 1.0], [3.0, 1.0]];
    for (i, u) in points.iter().enumerate() {
        let got = vjp_at(&mut compiled, &StateBranch, u, &p, 0.0, &w);
        let want = vjp_at(&mut fresh, &StateBranch, u, &p, 0.0, &w);
        assert_eq!(got, want, "point {i}");
    }
    let s = compiled.stats();
    assert_eq!((s.recordings, s.replays, s.guard_failures), (3, 1, 2), "{s:?}");
    assert_eq!(fresh.stats().recordings, 4);
    // d f_0 / d u_0 at u = (3, 1): 2 p0 u0 = 9; d f_1 / d u_0 = sign(u0 - 1) = 1.
    assert_eq!(vjp_at(&mut compiled, &StateBranch, &[3.0, 1.0], &p, 0.0, &[1.0, 0.0]).0, vec![9.0, 0.0]);
    assert_eq!(compiled.stats().reuses, 1);
}

#[test]
fn compiled_replay_equals_re_recording_bit_for_bit() {
    let p = [10.0, 28.0, 8.0 / 3.0];
    let mut compiled = RhsTape::new(&Lorenz, TapeMode::Compiled);
    let mut fresh = RhsTape::new(&Lorenz, TapeMode::Rerecord);
    for i in 0..20 {
        let s = i as f64;
        let u = [s.sin(), (2.0 * s).cos(), 0.5 * s];
        let w = [1.0, -s, 0.25];
        assert_eq!(vjp_at(&mut compiled, &Lorenz, &u, &p, s, &w), vjp_at(&mut fresh, &Lorenz, &u, &p, s, &w));
    }
    assert_eq!(compiled.stats().recordings, 1);
    assert_eq!(compiled.stats().replays, 19);
}

#[test]
fn jacobian_jvp_and_vjp_agree_with_forward_mode() {
    let (u, p) = ([1.2, 0.7], [1.5, 1.0, 3.0, 1.0]);
    let mut tape = RhsTape::new(&LotkaVolterra, TapeMode::Compiled);
    tape.at(&LotkaVolterra, &u, &p, 0.3).unwrap();
    let (mut ju, mut jp, mut ft) = ([0.0; 4], [0.0; 8], [1.0; 2]);
    tape.jacobian(&mut ju, Some(&mut jp), Some(&mut ft)).unwrap();
    let mut reference = [0.0; 4];
    ForwardJacobian::new(2, 4).evaluate(&LotkaVolterra, &u, &p, 0.3, &mut reference, None);
    assert_eq!(ju, reference);
    assert_eq!(ft, [0.0; 2]);
    // JVP with a unit vector in p_1 is column 1 of jp.
    let mut out = [0.0; 2];
    tape.jvp(&[0.0; 2], &[0.0, 1.0, 0.0, 0.0], 0.0, &mut out).unwrap();
    assert_eq!(out, [jp[1], jp[4 + 1]]);
    // VJP accumulates.
    let (mut du, mut dp) = ([1.0; 2], [0.0; 4]);
    tape.vjp(&[1.0, 2.0], &mut du, &mut dp).unwrap();
    assert_eq!(du, [1.0 + ju[0] + 2.0 * ju[2], 1.0 + ju[1] + 2.0 * ju[3]]);
}

#[test]
fn time_is_an_input() {
    struct Forced;
    impl Model for Forced {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
            du[0] = p[0] * (t * t).sin() - u[0];
        }
    }
    let mut tape = RhsTape::new(&Forced, TapeMode::Compiled);
    tape.at(&Forced, &[0.0], &[2.0], 0.5).unwrap();
    let dt = tape.vjp(&[1.0], &mut [0.0], &mut [0.0]).unwrap();
    assert!((dt - 2.0 * 2.0 * 0.5 * 0.25f64.cos()).abs() < 1e-15);
}

#[test]
fn value_reads_and_chain_make_a_recording_unreplayable() {
    /// Branches where no guard sees (on `value()`).
    struct Sneaky;
    impl Model for Sneaky {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = if u[0].value() > 0.0 { u[0] * u[0] } else { -u[0] };
        }
    }
    let mut tape = RhsTape::new(&Sneaky, TapeMode::Compiled);
    assert_eq!(vjp_at(&mut tape, &Sneaky, &[2.0], &[], 0.0, &[1.0]).0, vec![4.0]);
    assert_eq!(tape.unreplayable(), Some(Unreplayable::ValueRead));
    assert_eq!(vjp_at(&mut tape, &Sneaky, &[-2.0], &[], 0.0, &[1.0]).0, vec![-1.0]);
    assert_eq!(tape.stats().unreplayable, 1);

    let model = OpModel(32); // chain
    let mut tape = RhsTape::new(&model, TapeMode::Compiled);
    tape.at(&model, &[0.1, 0.2], &[], 0.0).unwrap();
    assert_eq!(tape.unreplayable(), Some(Unreplayable::ValueRead)); // value() came first
    let model = OpModel(31); // chain_fn is replayable
    let mut tape = RhsTape::new(&model, TapeMode::Compiled);
    tape.at(&model, &[0.1, 0.2], &[], 0.0).unwrap();
    tape.at(&model, &[-0.1, 0.2], &[], 0.0).unwrap();
    assert_eq!(tape.unreplayable(), None);
    assert_eq!(tape.stats().replays, 1);
}

/// Record `f` of one input at `x` (a bare recording, without a model).
fn record_fn(x: f64, f: impl FnOnce(TapeVar) -> TapeVar) -> record::Recording {
    let mut rec = record::Recording::default();
    let gen = record::next_gen();
    rec.reset(gen, std::iter::once(x));
    let input = TapeVar { v: x, idx: 1, gen };
    {
        let _installed = record::Installed::new(&mut rec);
        f(input);
    }
    rec
}

#[test]
fn numbers_outside_their_recording_are_plain_values() {
    let mut kept = TapeVar::default();
    let rec = record_fn(3.0, |x| {
        kept = x;
        x * x
    });
    assert_eq!((rec.ops.len(), rec.unreplayable), (1, None));
    assert!(kept.is_recorded());
    // Outside any recording: values only, nothing panics, nothing recorded.
    let y = (kept * kept + kept.sin()).max(kept);
    assert_eq!(y.value(), 9.0 + 3f64.sin());
    assert!(!y.is_recorded());
    assert!(kept < TapeVar::constant(4.0));
    // In another recording it is a constant, and that recording cannot be replayed.
    let rec = record_fn(2.0, |x| x * kept);
    assert_eq!(rec.ops.len(), 1);
    assert_eq!(rec.vals.last(), Some(&6.0));
    assert_eq!(rec.unreplayable, Some(Unreplayable::Foreign));
}

#[test]
fn recordings_nest() {
    /// A model whose right-hand side records another tape inside (like an adjoint model
    /// calling a VJP).
    struct Outer;
    impl Model for Outer {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            let a = u[0] * u[1];
            let mut inner = RhsTape::new(&Lorenz, TapeMode::Rerecord);
            inner.at(&Lorenz, &[1.0, 2.0, 3.0], &[10.0, 28.0, 8.0 / 3.0], 0.0).unwrap();
            let mut dl = [0.0; 3];
            inner.vjp(&[1.0, 0.0, 0.0], &mut dl, &mut [0.0; 3]).unwrap();
            du[0] = a * T::from_f64(dl[1]); // 10 u0 u1
            du[1] = a + u[1];
        }
    }
    let mut tape = RhsTape::new(&Outer, TapeMode::Compiled);
    let (du, _) = vjp_at(&mut tape, &Outer, &[2.0, 3.0], &[], 0.0, &[1.0, 1.0]);
    assert_eq!(du, vec![30.0 + 3.0, 20.0 + 2.0 + 1.0]);
}

#[test]
fn sizes_are_checked() {
    let mut tape = RhsTape::new(&Lorenz, TapeMode::Compiled);
    assert!(tape.vjp(&[1.0; 3], &mut [0.0; 3], &mut [0.0; 3]).is_err()); // no point yet
    assert!(tape.at(&Lorenz, &[1.0; 2], &[1.0; 3], 0.0).is_err());
    assert!(tape.at(&Lorenz, &[1.0; 3], &[1.0; 4], 0.0).is_err());
    tape.at(&Lorenz, &[1.0; 3], &[1.0; 3], 0.0).unwrap();
    assert!(tape.vjp(&[1.0; 2], &mut [0.0; 3], &mut [0.0; 3]).is_err());
    assert!(tape.jacobian(&mut [0.0; 8], None, None).is_err());
    assert!(tape.jvp(&[0.0; 3], &[0.0; 2], 0.0, &mut [0.0; 3]).is_err());
    assert!(tape.values(&mut [0.0; 4]).is_err());
}

#[test]
fn guards_see_every_comparison() {
    struct Compares;
    impl Model for Compares {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], t: T) {
            let x = u[0];
            let one = T::one();
            let mut acc = x;
            if x < one {
                acc += one;
            }
            if x <= one {
                acc += one;
            }
            if x > one {
                acc *= x;
            }
            if x >= one {
                acc *= x;
            }
            if x == one {
                acc -= x;
            }
            if x.partial_cmp(&t) == Some(std::cmp::Ordering::Less) {
                acc *= t;
            }
            if !x.is_finite() {
                acc = one;
            }
            du[0] = acc;
        }
    }
    let mut compiled = RhsTape::new(&Compares, TapeMode::Compiled);
    compiled.at(&Compares, &[0.5], &[], 0.0).unwrap();
    assert_eq!(compiled.n_guards(), 7);
    let mut fresh = RhsTape::new(&Compares, TapeMode::Rerecord);
    for &(x, t) in &[(0.25, 0.0), (1.0, 0.0), (2.0, 0.0), (1.5, 3.0), (0.1, 3.0), (f64::INFINITY, 0.0), (0.5, 0.0)] {
        let a = vjp_at(&mut compiled, &Compares, &[x], &[], t, &[1.0]);
        let b = vjp_at(&mut fresh, &Compares, &[x], &[], t, &[1.0]);
        assert_eq!(a.0[0].to_bits(), b.0[0].to_bits(), "x = {x}, t = {t}");
    }
    let s = compiled.stats();
    assert_eq!(s.recordings + s.replays, 8, "{s:?}");
    assert!(s.guard_failures >= 5, "{s:?}");
}
