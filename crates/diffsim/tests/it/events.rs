//! Events: continuous ones located against closed forms, in time order, at the conventions
//! of `diffsim::event` (nothing missed or repeated at a restart, both sides saved on
//! request); discrete and scheduled ones; gradients through them.

use diffsim::models::{BouncingBall, OralDosing, Thermostat, ZooModel};
use diffsim::sensitivity::{finite_difference_gradient, gradient, Loss, SavedLoss, SensAlg, VjpMethod};
use diffsim::{solve, Algorithm, Crossing, Event, Model, Problem, RetCode, Scalar, SolveOptions};

const G: f64 = 9.81;
const E: f64 = 0.8;
const H0: f64 = 10.0;

/// The bouncing ball's bounce times on `[0, t1]` and its state at `t` (between bounces),
/// in closed form: the first fall takes `sqrt(2 h0 / g)`, flight `k` after it lasts
/// `2 e^k v1 / g` and starts upwards at `e^k v1`.
fn ball_closed_form(t1: f64) -> (Vec<f64>, impl Fn(f64) -> [f64; 2]) {
    let t_first = (2.0 * H0 / G).sqrt();
    let v1 = G * t_first;
    let mut bounces = vec![t_first];
    let mut k = 1;
    while *bounces.last().unwrap() + 2.0 * E.powi(k) * v1 / G < t1 {
        let last = *bounces.last().unwrap();
        bounces.push(last + 2.0 * E.powi(k) * v1 / G);
        k += 1;
    }
    let starts = bounces.clone();
    let state = move |t: f64| {
        if t < starts[0] {
            return [H0 - 0.5 * G * t * t, -G * t];
        }
        let k = starts.iter().rposition(|&s| s <= t).unwrap();
        let (s, v) = (t - starts[k], E.powi(k as i32 + 1) * v1);
        [v * s - 0.5 * G * s * s, v - G * s]
    };
    (bounces, state)
}

/// The zoo's ball (through `ZooModel`, which the other tests compile the solvers for).
fn ball_problem(t1: f64) -> Problem<ZooModel> {
    Problem::new(ZooModel::from(BouncingBall), vec![H0, 0.0], vec![G, E], (0.0, t1)).unwrap()
}

#[test]
fn bouncing_ball_event_times_and_states_match_the_closed_form() {
    let t1 = 10.0;
    let (bounces, state) = ball_closed_form(t1);
    assert!(bounces.len() >= 5, "{bounces:?}");
    let saves: Vec<f64> = (1..40).map(|i| i as f64 * 0.25).collect();
    for (alg, tol, close) in [
        (Algorithm::Tsit5, 1e-12, 1e-10),
        (Algorithm::Vern7, 1e-12, 1e-10),
        (Algorithm::Rodas5P, 1e-10, 1e-8),
        (Algorithm::Bdf, 1e-10, 1e-7),
        (Algorithm::Radau5, 1e-10, 1e-8),
    ] {
        let opts = SolveOptions::default().rtol(tol).atol(tol).saveat_times(saves.clone());
        let sol = solve(&ball_problem(t1), alg, &opts).unwrap();
        assert_eq!(sol.retcode(), RetCode::Success, "{alg:?}");
        let times: Vec<f64> = sol.events().iter().map(|e| e.t).collect();
        assert_eq!(times.len(), bounces.len(), "{alg:?}: {times:?} against {bounces:?}");
        for (got, want) in times.iter().zip(&bounces) {
            assert!((got - want).abs() < close, "{alg:?}: bounce at {got}, closed form {want}");
        }
        assert!(sol.events().iter().all(|e| e.index == 0));
        for (i, &t) in sol.t().iter().enumerate() {
            let want = state(t);
            for c in 0..2 {
                assert!(
                    (sol.u(i)[c] - want[c]).abs() < 10.0 * close,
                    "{alg:?} t = {t}: {:?} against {want:?}",
                    sol.u(i)
                );
            }
        }
    }
}

#[test]
fn the_dense_output_jumps_at_an_event_and_both_sides_can_be_saved() {
    let (bounces, _) = ball_closed_form(3.0);
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).save_end().dense(true).save_events(true);
    let sol = solve(&ball_problem(3.0), Algorithm::Tsit5, &opts).unwrap();
    let te = sol.events()[0].t;
    assert!((te - bounces[0]).abs() < 1e-10);
    // Saved: the two sides of the first bounce, then the end.
    assert_eq!(sol.t().len(), 3, "{:?}", sol.t());
    assert_eq!((sol.t()[0], sol.t()[1]), (te, te));
    let v_hit = G * bounces[0];
    assert!(
        (sol.u(0)[1] + v_hit).abs() < 1e-8 && (sol.u(1)[1] - E * v_hit).abs() < 1e-8,
        "{:?} {:?}",
        sol.u(0),
        sol.u(1)
    );
    assert!(sol.u(0)[0].abs() < 1e-10 && sol.u(0)[0] == sol.u(1)[0]);
    // The dense output is left-continuous at the jump.
    let at = sol.interpolate(te).unwrap();
    let after = sol.interpolate(te + 1e-9).unwrap();
    assert!(at[1] < 0.0 && after[1] > 0.0, "{at:?} {after:?}");
    assert!((after[1] - E * v_hit).abs() < 1e-7);
}

/// The test models of this file in one type (each model type compiles every solver for
/// itself): see [`Kind`].
struct Switcher {
    kind: Kind,
    events: Vec<Event>,
    /// Condition evaluations so far.
    count: std::sync::atomic::AtomicUsize,
}

enum Kind {
    /// `u' = 1`: `u = t`, so every crossing time is known exactly; one condition per level,
    /// `u - level`. State 1 counts the events; with `reset`, event 0 sets the clock to 0.
    Clock { levels: Vec<f64>, reset: bool },
    /// `x'' = -x` from `x = 1`: `x = cos t`. Conditions `x` and `-x - 0.99`.
    Oscillator,
    /// The zoo's bouncing ball.
    Ball,
    /// `u' = u`, harvested by one unit after a step that ends above 2 (a discrete event);
    /// state 1 counts the harvests.
    Growth,
}

impl Switcher {
    fn new(kind: Kind, events: Vec<Event>) -> Self {
        Self { kind, events, count: Default::default() }
    }
    fn clock(events: Vec<Event>, levels: Vec<f64>, reset: bool) -> Self {
        Self::new(Kind::Clock { levels, reset }, events)
    }
}

impl Model for Switcher {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        if matches!(self.kind, Kind::Ball) {
            2
        } else {
            0
        }
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        match &self.kind {
            Kind::Clock { .. } => {
                du[0] = T::one();
                du[1] = T::zero();
            }
            Kind::Oscillator => {
                du[0] = u[1];
                du[1] = -u[0];
            }
            Kind::Ball => BouncingBall.rhs(du, u, p, t),
            Kind::Growth => {
                du[0] = u[0];
                du[1] = T::zero();
            }
        }
    }
    fn events(&self) -> Vec<Event> {
        self.events.clone()
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], p: &[T], t: T) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.kind {
            Kind::Clock { levels, .. } => {
                for (gi, &c) in g.iter_mut().zip(levels) {
                    *gi = u[0] - c;
                }
            }
            Kind::Oscillator => {
                g[0] = u[0];
                // Positive only around each minimum of x: crosses up and back down within
                // a fraction of a period.
                g[1] = -u[0] - 0.99;
            }
            Kind::Ball => BouncingBall.event_conditions(g, u, p, t),
            Kind::Growth => g[0] = u[0] - 2.0,
        }
    }
    fn event_affect<T: Scalar>(&self, index: usize, u: &mut [T], p: &[T], t: T) {
        match &self.kind {
            Kind::Clock { reset, .. } => {
                u[1] += 1.0;
                if *reset && index == 0 {
                    u[0] = T::zero();
                }
            }
            Kind::Oscillator => {}
            Kind::Ball => BouncingBall.event_affect(index, u, p, t),
            Kind::Growth => {
                u[0] -= 1.0;
                u[1] += 1.0;
            }
        }
    }
}

#[test]
fn a_terminating_event_ends_the_solve_at_the_crossing() {
    let clock = Switcher::clock(vec![Event::new(Crossing::Up).terminate()], vec![0.7], false);
    let prob = Problem::new(clock, vec![0.0, 0.0], vec![], (0.0, 5.0)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Rodas5P, Algorithm::Bdf] {
        let sol = solve(&prob, alg, &SolveOptions::default()).unwrap();
        assert_eq!(sol.retcode(), RetCode::EventTerminated, "{alg:?}");
        let end = *sol.t().last().unwrap();
        assert!((end - 0.7).abs() < 1e-12 && sol.events()[0].t == end, "{alg:?}: {end}");
        // No affect on termination: the counter is untouched.
        assert_eq!(sol.u(sol.t().len() - 1)[1], 0.0);
    }
    // A loss on a solve whose end moves with the inputs is refused, saying why.
    let opts = SolveOptions::default().saveat_times(vec![0.5, 1.0]);
    for sensealg in [SensAlg::ForwardAd, SensAlg::Forward, SensAlg::Discrete(VjpMethod::Auto), SensAlg::Auto] {
        let err = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, sensealg).unwrap_err().to_string();
        assert!(err.contains("terminating event ended the solve at t = 0."), "{sensealg:?}: {err}");
    }
    // One that does not fire in the span is no obstacle.
    let short = Problem::new(prob.model(), vec![0.0, 0.0], vec![], (0.0, 0.5)).unwrap();
    let opts = SolveOptions::default().saveat_times(vec![0.5]);
    for sensealg in [SensAlg::Discrete(VjpMethod::Auto), SensAlg::Interpolating(VjpMethod::Auto)] {
        let g = gradient(&short, Algorithm::Tsit5, &opts, &Loss::Sum, sensealg).unwrap();
        assert!((g.du0[0] - 1.0).abs() < 1e-9, "{sensealg:?}: {:?}", g.du0);
    }
}

#[test]
fn several_events_in_one_step_fire_in_time_order_and_only_in_their_direction() {
    // Levels crossed upwards at 0.3, 0.31 and 0.7; a downward-only event never fires.
    let events = vec![
        Event::new(Crossing::Either),
        Event::new(Crossing::Up),
        Event::new(Crossing::Up),
        Event::new(Crossing::Down),
    ];
    let clock = Switcher::clock(events, vec![0.7, 0.3, 0.31, 0.5], false);
    let prob = Problem::new(clock, vec![0.0, 0.0], vec![], (0.0, 1.0)).unwrap();
    // One step would cover the whole span: u' = 1 has no error to control.
    let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().dt(1.0).save_end()).unwrap();
    let fired: Vec<(usize, f64)> = sol.events().iter().map(|e| (e.index, e.t)).collect();
    assert_eq!(fired.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 2, 0], "{fired:?}");
    for ((_, t), want) in fired.iter().zip([0.3, 0.31, 0.7]) {
        assert!((t - want).abs() < 1e-14, "{fired:?}");
    }
    assert_eq!(sol.u(0)[1], 3.0);
}

#[test]
fn an_event_right_after_another_is_neither_missed_nor_repeated() {
    // A sawtooth: event 0 resets the clock at 1 (its condition then sits at -1, and it
    // fires again one unit later), event 1 fires 1e-9 after each reset.
    let clock = Switcher::clock(vec![Event::new(Crossing::Up), Event::new(Crossing::Either)], vec![1.0, 1e-9], true);
    let prob = Problem::new(clock, vec![0.5, 0.0], vec![], (0.0, 3.2)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Rodas5P] {
        let sol = solve(&prob, alg, &SolveOptions::default().save_end()).unwrap();
        let fired: Vec<(usize, f64)> = sol.events().iter().map(|e| (e.index, e.t)).collect();
        let want = [(0, 0.5), (1, 0.5 + 1e-9), (0, 1.5), (1, 1.5 + 1e-9), (0, 2.5), (1, 2.5 + 1e-9)];
        assert_eq!(fired.len(), want.len(), "{alg:?}: {fired:?}");
        for ((i, t), (wi, wt)) in fired.iter().zip(want) {
            assert!(*i == wi && (t - wt).abs() < 1e-12, "{alg:?}: {fired:?}");
        }
        let end = sol.u(0);
        assert!((end[0] - 0.7).abs() < 1e-12 && end[1] == 6.0, "{alg:?}: {end:?}");
    }
}

#[test]
fn crossings_inside_a_step_are_found_by_the_interior_samples() {
    let oscillator = Switcher::new(Kind::Oscillator, vec![Event::new(Crossing::Either), Event::new(Crossing::Up)]);
    let prob = Problem::new(oscillator, vec![1.0, 0.0], vec![], (0.0, 10.0)).unwrap();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).save_end();
    let sol = solve(&prob, Algorithm::Vern7, &opts).unwrap();
    let zeros: Vec<f64> = sol.events().iter().filter(|e| e.index == 0).map(|e| e.t).collect();
    assert_eq!(zeros.len(), 3, "{zeros:?}");
    for (k, t) in zeros.iter().enumerate() {
        let want = std::f64::consts::FRAC_PI_2 + k as f64 * std::f64::consts::PI;
        assert!((t - want).abs() < 1e-9, "{zeros:?}");
    }
    // -cos t > 0.99 for |t - pi| < 0.1415: each such window (at pi and 3 pi) gives one
    // upward crossing, at pi - acos(0.99).
    let peaks: Vec<f64> = sol.events().iter().filter(|e| e.index == 1).map(|e| e.t).collect();
    let width = 0.99_f64.acos();
    assert_eq!(peaks.len(), 2, "{peaks:?}");
    for (k, t) in peaks.iter().enumerate() {
        let want = (2 * k + 1) as f64 * std::f64::consts::PI - width;
        assert!((t - want).abs() < 1e-9, "{peaks:?}");
    }
}

/// The ball's state at `t` from height `h0` and velocity `v0`, in closed form (any number of
/// bounces): the first impact is at `(v0 + w) / g` with speed `w = sqrt(v0^2 + 2 g h0)`.
fn ball_state(g: f64, e: f64, h0: f64, v0: f64, t: f64) -> [f64; 2] {
    let w = (v0 * v0 + 2.0 * g * h0).sqrt();
    let mut start = (v0 + w) / g;
    if t < start {
        return [h0 + v0 * t - 0.5 * g * t * t, v0 - g * t];
    }
    let mut speed = e * w;
    while t >= start + 2.0 * speed / g {
        start += 2.0 * speed / g;
        speed *= e;
    }
    let s = t - start;
    [speed * s - 0.5 * g * s * s, speed - g * s]
}

/// The closed form's gradient of `sum(u(t1))` with respect to `[g, e, h0, v0]`, by central
/// differences of the closed form (exact but for rounding: about 1e-10 relative).
fn ball_gradient(x: [f64; 4], t1: f64) -> [f64; 4] {
    let loss = |x: [f64; 4]| ball_state(x[0], x[1], x[2], x[3], t1).iter().sum::<f64>();
    std::array::from_fn(|i| {
        let step = 1e-5 * x[i].abs();
        let (mut up, mut down) = (x, x);
        up[i] += step;
        down[i] -= step;
        (loss(up) - loss(down)) / (2.0 * step)
    })
}

#[test]
fn forward_ad_differentiates_through_the_bounces_exactly() {
    // Two bounces before t1 (at 1.48 and 3.85 from v0 = 0.5), and a loss over the whole path.
    let t1 = 4.0;
    let x = [G, E, H0, 0.5];
    let prob = Problem::new(ZooModel::from(BouncingBall), vec![H0, 0.5], vec![G, E], (0.0, t1)).unwrap();
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(vec![t1]);
    for sensealg in [SensAlg::ForwardAd, SensAlg::Auto] {
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, sensealg).unwrap();
        let got = [g.dp[0], g.dp[1], g.du0[0], g.du0[1]];
        let want = ball_gradient(x, t1);
        for i in 0..4 {
            assert!(
                (got[i] - want[i]).abs() <= 1e-8 * want[i].abs().max(1.0),
                "{sensealg:?} input {i}: {got:?} against {want:?}"
            );
        }
    }
    // A gradient that froze the event times (no saltation) misses dL/dg and dL/de by far.
}

#[test]
fn every_gradient_method_differentiates_through_the_bounces() {
    // After the first bounce (1.48) and before the second: every sensealg, explicit solve.
    let t1 = 2.5;
    let prob = Problem::new(ZooModel::from(BouncingBall), vec![H0, 0.5], vec![G, E], (0.0, t1)).unwrap();
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(vec![t1]);
    let want = ball_gradient([G, E, H0, 0.5], t1);
    for name in SensAlg::NAMES {
        let sensealg = SensAlg::from_name(name, VjpMethod::Auto).unwrap();
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, sensealg).unwrap();
        let got = [g.dp[0], g.dp[1], g.du0[0], g.du0[1]];
        // (The flights are quadratic in time: every method integrates them exactly.)
        for i in 0..4 {
            assert!(
                (got[i] - want[i]).abs() <= 1e-8 * want[i].abs().max(1.0),
                "{name} input {i}: {got:?} against {want:?}"
            );
        }
    }
    // The discrete adjoints of Rosenbrock steps (which are exact on quadratics too).
    for sensealg in [SensAlg::Discrete(VjpMethod::Auto), SensAlg::DiscreteCheckpointing(VjpMethod::Auto)] {
        let g = gradient(&prob, Algorithm::Rodas5P, &opts, &Loss::Sum, sensealg).unwrap();
        let got = [g.dp[0], g.dp[1], g.du0[0], g.du0[1]];
        for i in 0..4 {
            assert!(
                (got[i] - want[i]).abs() <= 1e-8 * want[i].abs().max(1.0),
                "Rodas5P {sensealg:?} input {i}: {got:?} against {want:?}"
            );
        }
    }
    // Central differences of whole solves: each locates its own bounce.
    let fd = finite_difference_gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum).unwrap();
    for (i, got) in fd.iter().enumerate() {
        assert!((got - want[i]).abs() <= 1e-6 * want[i].abs().max(1.0), "input {i}: {got} against {}", want[i]);
    }
}

#[test]
fn continuous_adjoints_cross_jumps_with_stiff_solvers_and_saves_on_both_sides() {
    // Doses (fixed times, one at the start) through BDF and Rodas5P, losses on dose times.
    let (pk, prob) = pk_problem();
    let saves = vec![0.0, 6.0, 12.0, 24.0, 30.5, 72.0];
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(saves.clone());
    let three = [
        (Algorithm::Bdf, "interpolating"),
        (Algorithm::Rodas5P, "checkpointing"),
        (Algorithm::Rodas4, "discrete-checkpointing"),
    ];
    for (alg, name) in three {
        let sensealg = SensAlg::from_name(name, VjpMethod::Auto).unwrap();
        let g = gradient(&prob, alg, &opts, &Loss::Sum, sensealg).unwrap();
        for (i, row) in [1, 2].into_iter().enumerate() {
            let want: f64 = saves.iter().map(|&t| pk_closed_form(&pk, 1.0, 0.2, t)[row].iter().sum::<f64>()).sum();
            assert!((g.dp[i] - want).abs() <= 1e-6 * want.abs(), "{alg:?} {name} d/dp{i}: {} against {want}", g.dp[i]);
        }
    }
    // The thermostat (moving times, two conditions) with Radau5 and the quadrature adjoint,
    // saving both sides of every switch: the same gradient as forward sensitivities.
    let t1 = 6.0;
    let prob =
        Problem::new(ZooModel::from(Thermostat::default()), vec![15.0, 1.0], vec![0.5, 10.0], (0.0, t1)).unwrap();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(vec![2.0, t1]).save_events(true);
    let forward = gradient(&prob, Algorithm::Radau5, &opts, &Loss::Sum, SensAlg::Forward).unwrap();
    let sol = solve(&prob, Algorithm::Radau5, &opts).unwrap();
    assert!(sol.events().len() >= 2 && sol.t().len() == 2 + 2 * sol.events().len(), "{:?}", sol.t());
    for name in ["quadrature", "discrete"] {
        let sensealg = SensAlg::from_name(name, VjpMethod::Auto).unwrap();
        let alg = if name == "discrete" { Algorithm::Vern7 } else { Algorithm::Radau5 };
        let g = gradient(&prob, alg, &opts, &Loss::Sum, sensealg).unwrap();
        for (a, b) in g.dp.iter().chain(&g.du0).zip(forward.dp.iter().chain(&forward.du0)) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{name}: {:?} {:?} against {forward:?}", g.dp, g.du0);
        }
    }
    // Without the saves after the jumps the gradient changes (the test can fail).
    let left_only = SolveOptions { save_events: false, ..opts };
    let g = gradient(&prob, Algorithm::Radau5, &left_only, &Loss::Sum, SensAlg::Forward).unwrap();
    assert!((g.dp[1] - forward.dp[1]).abs() > 1e-3 * forward.dp[1].abs(), "{:?} {:?}", g.dp, forward.dp);
}

#[test]
fn a_running_cost_is_differentiated_through_the_switches() {
    // The thermostat's running cost (the cost's integrand jumps with the heater) plus its
    // saves, against central differences of whole solves, with every method.
    let problem = |x: [f64; 4]| {
        Problem::new(ZooModel::from(Thermostat::default()), vec![x[2], x[3]], vec![x[0], x[1]], (0.0, 6.0)).unwrap()
    };
    let x = [0.5, 10.0, 15.0, 1.0];
    let prob = problem(x);
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(vec![2.0, 6.0]);
    let loss = Loss::Sum.plus_running_cost(crate::common::Cost);
    let value = |x: [f64; 4]| gradient(&problem(x), Algorithm::Tsit5, &opts, &loss, SensAlg::Forward).unwrap().loss;
    // (The heater's initial state is a switch, not a number to perturb: its derivative is
    // compared between the methods only.)
    let fd: Vec<f64> = (0..3)
        .map(|i| {
            let (mut up, mut down) = (x, x);
            let h = 1e-6 * x[i];
            up[i] += h;
            down[i] -= h;
            (value(up) - value(down)) / (2.0 * h)
        })
        .collect();
    let reference = gradient(&prob, Algorithm::Tsit5, &opts, &loss, SensAlg::ForwardAd).unwrap();
    let want: Vec<f64> = reference.dp.iter().chain(&reference.du0).copied().collect();
    for (w, f) in want.iter().zip(&fd) {
        assert!((w - f).abs() <= 1e-6 * f.abs().max(1.0), "forward-ad {want:?} against differences {fd:?}");
    }
    for name in SensAlg::NAMES {
        let sensealg = SensAlg::from_name(name, VjpMethod::Auto).unwrap();
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &loss, sensealg).unwrap();
        for (got, w) in g.dp.iter().chain(&g.du0).zip(&want) {
            assert!((got - w).abs() <= 1e-7 * w.abs().max(1.0), "{name}: {:?} {:?} against {want:?}", g.dp, g.du0);
        }
    }
}

#[test]
fn locating_an_event_costs_a_few_condition_evaluations_and_two_steps_taken_again() {
    let count = |samples: usize| {
        let ball = Switcher::new(Kind::Ball, BouncingBall.events());
        let prob = Problem::new(ball, vec![H0, 0.0], vec![G, E], (0.0, 10.0)).unwrap();
        let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).save_end().event_samples(samples);
        let sol = solve(&prob, Algorithm::Tsit5, &opts).unwrap();
        let evals = prob.model().count.load(std::sync::atomic::Ordering::Relaxed);
        (evals, sol.stats().naccept, sol.events().len(), sol.stats().nf)
    };
    let (evals, steps, events, nf) = count(4);
    // Per step: four interior samples and the end; per event: the root finder's
    // iterations and the restart. Anderson-Bjorck converges superlinearly on the smooth
    // height: about 5-10 evaluations where bisection would need about 50.
    let locating = (evals - 5 * steps - 1) as f64 / events as f64;
    assert!(
        locating < 16.0,
        "{locating} condition evaluations per event ({evals} over {steps} steps, {events} events)"
    );
    // The samples read Tsit5's dense output, which costs no f evaluation; without them
    // (the ball's height is monotone between samples anyway) no bounce is lost, even where
    // one step covers a whole flight after a bounce.
    let (_, steps_no_samples, events_no_samples, nf_no_samples) = count(0);
    assert_eq!((nf, steps, events), (nf_no_samples, steps_no_samples, events_no_samples));
    // Per event, the step is taken again to the event and to its Newton-corrected time
    // (Tsit5: six f each) and the method restarts after the jump (one f); a rejected attempt
    // costs six more.
    let per_event = (nf - 6 * steps - 1) as f64 / events as f64;
    assert!(per_event <= 14.0, "{per_event} f evaluations per event ({nf} over {steps} steps, {events} events)");
    println!("{locating:.1} condition and {per_event:.1} f evaluations per event");
}

#[test]
fn events_are_found_integrating_backwards_in_time() {
    // u = t integrated from t = 1 back to 0: u falls through 0.6 (a Down crossing) at 0.6;
    // the Up event at 0.3 never fires backwards, the Either one at 0.2 does.
    let events = vec![Event::new(Crossing::Down), Event::new(Crossing::Up), Event::new(Crossing::Either)];
    let clock = Switcher::clock(events, vec![0.6, 0.3, 0.2], false);
    let prob = Problem::new(clock, vec![1.0, 0.0], vec![], (1.0, 0.0)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Rodas5P] {
        let sol = solve(&prob, alg, &SolveOptions::default().save_end()).unwrap();
        let fired: Vec<(usize, f64)> = sol.events().iter().map(|e| (e.index, e.t)).collect();
        assert_eq!(fired.len(), 2, "{alg:?}: {fired:?}");
        assert!(fired[0].0 == 0 && (fired[0].1 - 0.6).abs() < 1e-12, "{alg:?}: {fired:?}");
        assert!(fired[1].0 == 2 && (fired[1].1 - 0.2).abs() < 1e-12, "{alg:?}: {fired:?}");
        assert_eq!(sol.u(0)[1], 2.0);
    }
}

#[test]
fn a_save_time_at_an_event_gives_the_state_before_the_jump_and_its_derivative() {
    // The save time is the bounce the solver found (as a user would take it from
    // `Solution::events`); the saved state and its derivative are the left limit's: the
    // falling branch `[h0 + v0 t - g t^2 / 2, v0 - g t]` at that fixed time.
    let t1 = 2.5;
    let (h0, v0) = (H0, 0.5);
    let prob = Problem::new(ZooModel::from(BouncingBall), vec![h0, v0], vec![G, E], (0.0, t1)).unwrap();
    let tight = SolveOptions::default().rtol(1e-12).atol(1e-12);
    let tb = solve(&prob, Algorithm::Tsit5, &tight.clone().save_end()).unwrap().events()[0].t;
    let opts = tight.saveat_times(vec![tb, t1]);
    let sol = solve(&prob, Algorithm::Tsit5, &opts).unwrap();
    assert!(sol.u(0)[0].abs() < 1e-9 && sol.u(0)[1] < 0.0, "{:?}", sol.u(0));
    let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::ForwardAdValueNorm).unwrap();
    let got = [g.dp[0], g.dp[1], g.du0[0], g.du0[1]];
    let after = ball_gradient([G, E, h0, v0], t1);
    let before = [-0.5 * tb * tb - tb, 0.0, 1.0, tb + 1.0];
    for i in 0..4 {
        let want = before[i] + after[i];
        assert!((got[i] - want).abs() <= 1e-8 * want.abs().max(1.0), "input {i}: {got:?}, want {want}");
    }
}

/// The PK model's state at `t` and its derivatives with respect to `ka` and `ke`, in closed
/// form: each dose given before `t` (strictly: at a dose time, the state before it) adds
/// `D exp(-ka s)` to the gut and the Bateman function to the centre, `s` after it.
fn pk_closed_form(pk: &OralDosing, ka: f64, ke: f64, t: f64) -> [[f64; 2]; 3] {
    let mut out = [[0.0; 2]; 3];
    for k in 0..pk.doses {
        let s = t - k as f64 * pk.interval;
        if s <= 0.0 {
            break;
        }
        let (ea, ee, r) = ((-ka * s).exp(), (-ke * s).exp(), ka / (ka - ke));
        let d = pk.dose;
        out[0][0] += d * ea;
        out[0][1] += d * r * (ee - ea);
        out[1][0] += -d * s * ea;
        out[1][1] += d * (-ke / (ka - ke).powi(2) * (ee - ea) + r * s * ea);
        out[2][1] += d * (ka / (ka - ke).powi(2) * (ee - ea) - r * s * ee);
    }
    out
}

fn pk_problem() -> (OralDosing, Problem<ZooModel>) {
    let pk = OralDosing::default();
    (pk, Problem::new(ZooModel::from(pk), vec![0.0, 0.0], vec![1.0, 0.2], (0.0, 96.0)).unwrap())
}

#[test]
fn pk_doses_match_the_closed_form_superposition_with_every_solver() {
    let (pk, prob) = pk_problem();
    // Saves on dose times (0, 12, 24, 60: the state before the dose), between them and after.
    let saves = vec![0.0, 6.0, 12.0, 18.0, 24.0, 30.5, 60.0, 72.0, 96.0];
    for (alg, tol, close) in [
        (Algorithm::Tsit5, 1e-10, 1e-7),
        (Algorithm::Vern7, 1e-10, 1e-7),
        (Algorithm::Rodas5P, 1e-9, 1e-5),
        (Algorithm::Bdf, 1e-9, 1e-5),
        (Algorithm::Radau5, 1e-9, 1e-5),
        (Algorithm::Auto, 1e-9, 1e-5),
    ] {
        let opts = SolveOptions::default().rtol(tol).atol(tol).saveat_times(saves.clone());
        let sol = solve(&prob, alg, &opts).unwrap();
        assert_eq!(sol.retcode(), RetCode::Success, "{alg:?}");
        let times: Vec<f64> = sol.events().iter().map(|e| e.t).collect();
        assert_eq!(times, [0.0, 12.0, 24.0, 36.0, 48.0, 60.0], "{alg:?}");
        for (i, &t) in sol.t().iter().enumerate() {
            let want = pk_closed_form(&pk, 1.0, 0.2, t)[0];
            for c in 0..2 {
                assert!((sol.u(i)[c] - want[c]).abs() < close, "{alg:?} t = {t}: {:?} against {want:?}", sol.u(i));
            }
        }
    }
}

#[test]
fn pk_gradients_through_the_doses_match_the_closed_form_with_losses_on_dose_times() {
    let (pk, prob) = pk_problem();
    let saves = vec![6.0, 12.0, 24.0, 30.5, 72.0];
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(saves.clone());
    let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, SensAlg::Auto).unwrap();
    let want = |row: usize| saves.iter().map(|&t| pk_closed_form(&pk, 1.0, 0.2, t)[row].iter().sum::<f64>()).sum();
    let (dka, dke): (f64, f64) = (want(1), want(2));
    assert!((g.dp[0] - dka).abs() <= 1e-8 * dka.abs(), "{} against {dka}", g.dp[0]);
    assert!((g.dp[1] - dke).abs() <= 1e-8 * dke.abs(), "{} against {dke}", g.dp[1]);
    // The initial amounts: gut0 acts as one more dose at 0 (of size 1); central0 decays.
    let unit = OralDosing { dose: 1.0, interval: 1.0, doses: 1 };
    let dgut: f64 = saves.iter().map(|&t| pk_closed_form(&unit, 1.0, 0.2, t)[0].iter().sum::<f64>()).sum();
    let dcentral: f64 = saves.iter().map(|&t| (-0.2 * t).exp()).sum();
    assert!((g.du0[0] - dgut).abs() <= 1e-9 && (g.du0[1] - dcentral).abs() <= 1e-9, "{:?}", g.du0);
}

/// The thermostat's switch times on `[0, t1]` and its temperature at `t1`, in closed form
/// (for the zoo's band and outside temperature): each phase relaxes towards its
/// equilibrium until it reaches the band's far edge.
fn thermostat_closed_form(k: f64, power: f64, temp0: f64, t1: f64) -> (Vec<f64>, f64) {
    let room = Thermostat::default();
    let (mut t, mut temp, mut heating, mut switches) = (0.0, temp0, true, Vec::new());
    loop {
        let (eq, target) = if heating { (room.outside + power / k, room.high) } else { (room.outside, room.low) };
        let phase = ((temp - eq) / (target - eq)).ln() / k;
        if t + phase > t1 {
            return (switches, eq + (temp - eq) * (-k * (t1 - t)).exp());
        }
        t += phase;
        switches.push(t);
        (temp, heating) = (target, !heating);
    }
}

#[test]
fn thermostat_switches_with_hysteresis_at_the_closed_form_times_and_differentiates() {
    let (k, power, t1) = (0.5, 10.0, 24.0);
    let prob = Problem::new(ZooModel::from(Thermostat::default()), vec![15.0, 1.0], vec![k, power], (0.0, t1)).unwrap();
    let (switches, temp1) = thermostat_closed_form(k, power, 15.0, t1);
    assert!(switches.len() > 20, "{switches:?}");
    for (alg, tol, close) in
        [(Algorithm::Tsit5, 1e-12, 1e-10), (Algorithm::Rodas5P, 1e-10, 1e-9), (Algorithm::Radau5, 1e-10, 1e-8)]
    {
        let sol = solve(&prob, alg, &SolveOptions::default().rtol(tol).atol(tol).save_end()).unwrap();
        let fired: Vec<(usize, f64)> = sol.events().iter().map(|e| (e.index, e.t)).collect();
        assert_eq!(fired.len(), switches.len(), "{alg:?}: {fired:?}");
        // Off at the top of the band, on at its bottom, in turn.
        assert!(fired.iter().enumerate().all(|(j, f)| f.0 == j % 2), "{alg:?}: {fired:?}");
        let worst = fired.iter().zip(&switches).map(|(f, want)| (f.1 - want).abs()).fold(0.0, f64::max);
        println!("{alg:?}: switch times within {worst:.1e} of the closed form");
        assert!(worst < close, "{alg:?}: switch times off by {worst:e}");
        assert!((sol.u(0)[0] - temp1).abs() < 10.0 * close, "{alg:?}: {} against {temp1}", sol.u(0)[0]);
        assert_eq!(sol.u(0)[1], if switches.len() % 2 == 0 { 1.0 } else { 0.0 });
    }
    // d T(t1) / d(k, power): through every switch time, against central differences of the
    // closed form.
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).save_end();
    let g =
        gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Weighted(vec![1.0, 0.0].into()), SensAlg::ForwardAd).unwrap();
    for (i, got) in g.dp.iter().enumerate() {
        let mut x = [k, power];
        let step = 1e-6 * x[i];
        x[i] += step;
        let up = thermostat_closed_form(x[0], x[1], 15.0, t1).1;
        x[i] -= 2.0 * step;
        let want = (up - thermostat_closed_form(x[0], x[1], 15.0, t1).1) / (2.0 * step);
        assert!((got - want).abs() <= 1e-6 * want.abs(), "d/dp{i}: {got} against {want}");
    }
}

#[test]
fn scheduled_events_fire_exactly_at_their_times_including_the_ends_of_the_span() {
    // A clock (u = t) counting firings: a periodic event and preset times at the span's
    // start, inside it and at its end.
    let events = vec![Event::periodic(0.25, 0.5), Event::at_times(vec![2.0, 1.0, 0.0, 7.0])];
    let clock = Switcher::clock(events, vec![], false);
    let prob = Problem::new(clock, vec![0.0, 0.0], vec![], (0.0, 2.0)).unwrap();
    for alg in [Algorithm::Tsit5, Algorithm::Bdf] {
        let opts = SolveOptions::default().saveat_times(vec![1.0, 2.0]).save_events(true);
        let sol = solve(&prob, alg, &opts).unwrap();
        let fired: Vec<(usize, f64)> = sol.events().iter().map(|e| (e.index, e.t)).collect();
        let want = [(1, 0.0), (0, 0.25), (0, 0.75), (1, 1.0), (0, 1.25), (0, 1.75), (1, 2.0)];
        assert_eq!(fired, want, "{alg:?}");
        // Saved at 1: the save time's entry (the state before the firing), then both sides
        // (save_events); likewise at 2.
        let at_one: Vec<f64> = (0..sol.t().len()).filter(|&i| sol.t()[i] == 1.0).map(|i| sol.u(i)[1]).collect();
        assert_eq!(at_one, [3.0, 3.0, 4.0], "{alg:?}");
        assert_eq!(sol.u(sol.t().len() - 1)[1], 7.0, "{alg:?}");
    }
    // Backwards, the periodic times in reverse; a terminating preset time ends the solve.
    let events = vec![Event::periodic(0.25, 0.5), Event::at_times(vec![0.5]).terminate()];
    let clock = Switcher::clock(events, vec![], false);
    let prob = Problem::new(clock, vec![2.0, 0.0], vec![], (2.0, 0.0)).unwrap();
    let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().save_end()).unwrap();
    let fired: Vec<(usize, f64)> = sol.events().iter().map(|e| (e.index, e.t)).collect();
    assert_eq!(fired, [(0, 1.75), (0, 1.25), (0, 0.75), (1, 0.5)]);
    assert_eq!((sol.retcode(), sol.u(0)[1]), (RetCode::EventTerminated, 3.0));
    // A schedule that cannot be met is an error that says so.
    let clock = Switcher::clock(vec![Event::periodic(0.0, -1.0)], vec![], false);
    let prob = Problem::new(clock, vec![0.0, 0.0], vec![], (0.0, 1.0)).unwrap();
    let err = solve(&prob, Algorithm::Tsit5, &SolveOptions::default()).unwrap_err();
    assert!(err.to_string().contains("positive, finite period"), "{err}");
}

#[test]
fn a_discrete_event_fires_after_steps_that_end_with_its_condition_positive() {
    let growth = Switcher::new(Kind::Growth, vec![Event::after_step()]);
    let t1 = 3.0;
    let prob = Problem::new(growth, vec![1.0, 0.0], vec![], (0.0, t1)).unwrap();
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10);
    let sol = solve(&prob, Algorithm::Tsit5, &opts).unwrap();
    let times: Vec<f64> = sol.events().iter().map(|e| e.t).collect();
    assert!(times.len() >= 3, "{times:?}");
    // Each firing is at the end of a step (saved there, before its jump), the first step
    // to end above 2 (no root location), and the state between firings grows as exp(t):
    // replayed in closed form.
    let (mut u, mut last) = (1.0, 0.0);
    for &te in &times {
        let i = sol.t().iter().position(|&t| t == te).expect("an event at a step's end");
        u *= (te - last).exp();
        assert!((sol.u(i)[0] - u).abs() < 1e-8 * u, "at {te}: {:?} against {u}", sol.u(i));
        assert!(u > 2.0 && sol.u(i - 1)[0] <= 2.0, "fired at {te} with u = {u}, {:?} before", sol.u(i - 1));
        u -= 1.0;
        last = te;
    }
    u *= (t1 - last).exp();
    let end = sol.u(sol.t().len() - 1);
    assert!((end[0] - u).abs() < 1e-8 * u && end[1] == times.len() as f64, "{end:?} against {u}");
}

#[test]
fn forward_sensitivities_jump_by_the_saltation_with_explicit_and_stiff_solvers() {
    // The ball over two bounces, against its closed form.
    let t1 = 4.0;
    let prob = Problem::new(ZooModel::from(BouncingBall), vec![H0, 0.5], vec![G, E], (0.0, t1)).unwrap();
    let want = ball_gradient([G, E, H0, 0.5], t1);
    for (alg, tol, close) in [(Algorithm::Tsit5, 1e-12, 1e-8), (Algorithm::Rodas5P, 1e-10, 1e-6)] {
        let opts = SolveOptions::default().rtol(tol).atol(tol).saveat_times(vec![t1]);
        let g = gradient(&prob, alg, &opts, &Loss::Sum, SensAlg::Forward).unwrap();
        let got = [g.dp[0], g.dp[1], g.du0[0], g.du0[1]];
        for i in 0..4 {
            assert!(
                (got[i] - want[i]).abs() <= close * want[i].abs().max(1.0),
                "{alg:?} input {i}: {got:?} against {want:?}"
            );
        }
    }
    // Doses (scheduled: fixed times) through BDF, where Auto takes forward sensitivities.
    let (pk, prob) = pk_problem();
    let saves = vec![6.0, 12.0, 30.5, 72.0];
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(saves.clone());
    let g = gradient(&prob, Algorithm::Bdf, &opts, &Loss::Sum, SensAlg::Auto).unwrap();
    assert_eq!(g.sensealg, SensAlg::Forward);
    for (i, row) in [1, 2].into_iter().enumerate() {
        let want: f64 = saves.iter().map(|&t| pk_closed_form(&pk, 1.0, 0.2, t)[row].iter().sum::<f64>()).sum();
        assert!((g.dp[i] - want).abs() <= 1e-6 * want.abs(), "d/dp{i}: {} against {want}", g.dp[i]);
    }
}

#[test]
fn the_discrete_adjoint_carries_lambda_back_across_each_jump() {
    // The ball over two bounces (moving times), with and without checkpoints.
    let t1 = 4.0;
    let prob = Problem::new(ZooModel::from(BouncingBall), vec![H0, 0.5], vec![G, E], (0.0, t1)).unwrap();
    let want = ball_gradient([G, E, H0, 0.5], t1);
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(vec![2.0, t1]);
    let want_mid = ball_gradient([G, E, H0, 0.5], 2.0);
    for name in ["discrete", "discrete-checkpointing"] {
        let sensealg = SensAlg::from_name(name, VjpMethod::Auto).unwrap();
        let g = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum, sensealg).unwrap();
        let got = [g.dp[0], g.dp[1], g.du0[0], g.du0[1]];
        for i in 0..4 {
            let w = want[i] + want_mid[i];
            assert!((got[i] - w).abs() <= 1e-8 * w.abs().max(1.0), "{name} input {i}: {got:?}, want {w}");
        }
    }
    // Doses at fixed times, one at the start of the span, losses on dose times.
    let (pk, prob) = pk_problem();
    let saves = vec![0.0, 6.0, 12.0, 24.0, 30.5, 72.0];
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(saves.clone());
    let g = gradient(&prob, Algorithm::Vern7, &opts, &Loss::Sum, SensAlg::Discrete(VjpMethod::Auto)).unwrap();
    for (i, row) in [1, 2].into_iter().enumerate() {
        let want: f64 = saves.iter().map(|&t| pk_closed_form(&pk, 1.0, 0.2, t)[row].iter().sum::<f64>()).sum();
        assert!((g.dp[i] - want).abs() <= 1e-8 * want.abs(), "d/dp{i}: {} against {want}", g.dp[i]);
    }
    let forward = gradient(&prob, Algorithm::Vern7, &opts, &Loss::Sum, SensAlg::ForwardAd).unwrap();
    for (a, b) in g.du0.iter().zip(&forward.du0) {
        assert!((a - b).abs() <= 1e-8 * b.abs().max(1.0), "du0: {:?} against forward-ad {:?}", g.du0, forward.du0);
    }
}

#[test]
fn a_ball_coming_to_rest_stops_with_zeno_before_its_bounces_accumulate() {
    // Bounces accumulate at t_first + (2 v1 / g) e / (1 - e) = 12.85: past it the model has
    // no continuation (the ball used to fall through the floor with `Success`).
    let t_first = (2.0 * H0 / G).sqrt();
    let t_zeno = t_first + 2.0 * G * t_first / G * E / (1.0 - E);
    // (The closed form's bounces before t_zeno never end: take those before 12.)
    let (bounces, _) = ball_closed_form(12.0);
    for alg in [Algorithm::Tsit5, Algorithm::Rodas5P] {
        let sol = solve(&ball_problem(20.0), alg, &SolveOptions::default().saveat_times(vec![5.0, 20.0])).unwrap();
        assert_eq!(sol.retcode(), RetCode::Zeno, "{alg:?}");
        let times: Vec<f64> = sol.events().iter().map(|e| e.t).collect();
        assert!(times.len() > 10 && times.windows(2).all(|w| w[1] > w[0]), "{alg:?}: {times:?}");
        for (got, want) in times.iter().zip(&bounces).take(8) {
            assert!((got - want).abs() < 1e-4, "{alg:?}: bounce at {got}, closed form {want}");
        }
        let end = *times.last().unwrap();
        assert!(end < t_zeno && end > t_zeno - 0.5, "{alg:?}: stopped at {end}, accumulation at {t_zeno}");
        // Nothing past the floor was saved.
        assert!(sol.t().iter().all(|&t| t <= end) && sol.u(0)[0] > 0.0, "{alg:?}: {:?}", sol.t());
    }
}
