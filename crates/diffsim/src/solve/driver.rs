//! The one step-control loop shared by every method family: step-size control, tstops,
//! saving, dense output, callbacks, statistics and return codes.

use super::controller::{error_norm_sq, initial_step, PiController};
use super::dense::{DenseOutput, Interpolant};
use super::events::{EventWatch, Found, StepView};
use super::options::{ErrorNorm, SaveAt, SolveOptions};
use super::solution::{JumpRecord, RetCode, Solution, Stats, StepLog, StepRecord};
use super::stepper::Stepper;
use super::stiffness::PowerIteration;
use super::Algorithm;
use crate::ad::Dual;
use crate::error::Result;
use crate::event::{Event, EventRecord};
use crate::problem::check_inputs;
use crate::problem::Model;
use crate::scalar::Scalar;

/// A per-step callback: called after every accepted step with `(t, u)`; return `false` to
/// stop the solve (it then ends with [`RetCode::Terminated`]).
pub type StepCallback<'a, T> = &'a mut dyn FnMut(f64, &[T]) -> bool;

/// What watches a solve's accepted steps besides the solution it builds: the user's
/// callback, and the step log the discrete adjoints replay.
pub(crate) struct Watch<'a, T> {
    pub(crate) callback: Option<StepCallback<'a, T>>,
    pub(crate) log: Option<&'a mut StepLog<T>>,
    /// The solve continues one that ended at its start (`Auto`'s stiff part), which has
    /// fired the events scheduled there.
    pub(crate) resumes: bool,
    /// Whether to watch the model's events (not when re-solving a piece between them).
    pub(crate) events: bool,
}

impl<'a, T> Watch<'a, T> {
    /// The user's callback, if any.
    pub(crate) fn callback(callback: Option<StepCallback<'a, T>>) -> Self {
        Self { callback, log: None, resumes: false, events: true }
    }
    /// Log every accepted step into `log`.
    pub(crate) fn log(log: &'a mut StepLog<T>) -> Self {
        Self { callback: None, log: Some(log), resumes: false, events: true }
    }
    /// Do not watch the model's events: the solve integrates one piece of a solution
    /// between its events.
    pub(crate) fn between_events(mut self) -> Self {
        self.events = false;
        self
    }
}

/// The smallest representable step away from `t` in direction `dir`: used to evaluate `f`
/// just past a discontinuity, on the side the integration is heading to.
#[inline]
fn just_past(t: f64, dir: f64) -> f64 {
    if dir > 0.0 {
        t.next_up()
    } else {
        t.next_down()
    }
}

/// The smallest representable step back from `t` against direction `dir`: the stages at the
/// end of a step that lands on a discontinuity are evaluated there, on the step's side.
#[inline]
fn just_before(t: f64, dir: f64) -> f64 {
    just_past(t, -dir)
}

/// `h |lambda|` beyond which Tsit5's step is limited by stability (its real stability
/// interval reaches about -3.5; a little margin).
const STABILITY_BOUNDARY: f64 = 3.0;

/// The solve's tolerances, expanded per component, and how a step's error is measured.
struct ErrorControl {
    atol: Vec<f64>,
    rtol: Vec<f64>,
    norm: ErrorNorm,
    adaptive: bool,
}

impl ErrorControl {
    fn new(opts: &SolveOptions, n: usize) -> Result<Self> {
        let atol = opts.atol.expand(n, "atol")?;
        let rtol = opts.rtol.expand(n, "rtol")?;
        if atol.iter().zip(&rtol).any(|(a, r)| *a == 0.0 && *r == 0.0) {
            return Err(crate::error::DiffsimError::InvalidTolerance(
                "a component has atol = rtol = 0; at least one must be positive".into(),
            ));
        }
        Ok(Self { atol, rtol, norm: opts.error_norm, adaptive: opts.adaptive })
    }

    /// The squared error norm of an attempt (accept when <= 1; infinite when the stepper
    /// could not take the step, as a Newton iteration that did not converge), and whether
    /// the candidate is finite. Inlined into each stepper's [`BoundStepper::attempt`], where
    /// a model of constant size gives the loops constant bounds.
    #[inline(always)]
    fn measure<T: Scalar>(&self, err: &[T], u: &[T], u_new: &[T]) -> (f64, bool) {
        let e = if self.adaptive {
            error_norm_sq(err, u, u_new, &self.atol, &self.rtol, self.norm)
        } else if all_finite(err) {
            0.0
        } else {
            f64::INFINITY
        };
        (e, all_finite(u_new))
    }
}

/// Times sorted in the direction of integration (`dir` = +1 or -1).
///
/// This and the other helpers that do not depend on the number type, the model or the
/// stepper are plain functions on purpose: inside the generic loop, each closure-taking
/// library call (a sort, a retain) would be compiled again for every combination.
fn sort_along(ts: &mut [f64], dir: f64) {
    ts.sort_by(|a, b| ((a - b) * dir).total_cmp(&0.0));
}

/// The times steps must land on: the model's discontinuities and the user's stops strictly
/// inside the span, then the end, sorted along the integration without repeats.
fn stop_times(model_stops: Vec<f64>, user_stops: &[f64], (t0, t1): (f64, f64)) -> Vec<f64> {
    let dir = (t1 - t0).signum();
    let mut stops: Vec<f64> = model_stops
        .into_iter()
        .chain(user_stops.iter().copied())
        .filter(|&s| (s - t0) * dir > 0.0 && (s - t1) * dir < 0.0)
        .collect();
    stops.push(t1);
    sort_along(&mut stops, dir);
    stops.dedup();
    stops
}

/// The smallest step the controller may shrink to before the solve gives up: `dt_min`, or a
/// few units of rounding in `t` (a smaller step would not move it). At and near `t = 0`,
/// where that is zero, `eps^2` of the span: small enough for the fastest transients of a
/// long span (Robertson's first steps on `[0, 1e11]` are `1e-6` long) and large enough that
/// a solve that cannot step ends after a few dozen rejections, not `max_steps` of them.
fn step_floor(opts: &SolveOptions, t: f64, (t0, t1): (f64, f64)) -> f64 {
    opts.dt_min.max(4.0 * f64::EPSILON * t.abs().max(f64::EPSILON * (t1 - t0).abs()))
}

fn all_finite<T: Scalar>(x: &[T]) -> bool {
    x.iter().all(|v| v.is_finite())
}

/// Hairer's rule for auto-switching: stiff after 15 stability-limited accepted steps, reset
/// by 6 others; and a power-iteration probe of J's spectral radius (see `stiffness`).
struct StiffnessWatch {
    probe: PowerIteration,
    probe_hits: u32,
    stiff_count: u32,
    nonstiff_count: u32,
}

impl StiffnessWatch {
    fn new(n: usize, n_params: usize) -> Self {
        Self { probe: PowerIteration::new(n, n_params), probe_hits: 0, stiff_count: 0, nonstiff_count: 0 }
    }

    /// After an accepted step of size `h`: has the problem turned stiff?
    fn turned_stiff<T: Scalar>(
        &mut self,
        system: &mut dyn BoundStepper<T>,
        t: f64,
        u: &[T],
        h: f64,
        naccept: usize,
    ) -> bool {
        // Every 25 accepted steps: is h beyond what stability allows?
        if naccept % 25 == 0 {
            let rho = system.spectral_radius(&mut self.probe, t, u);
            self.probe_hits = if h.abs() * rho > STABILITY_BOUNDARY { self.probe_hits + 1 } else { 0 };
            if self.probe_hits >= 2 {
                return true;
            }
        }
        self.count(system.stiffness_ratio().unwrap_or(0.0) > 1.0)
    }

    fn count(&mut self, limited: bool) -> bool {
        if limited {
            self.nonstiff_count = 0;
            self.stiff_count += 1;
            return self.stiff_count >= 15;
        }
        self.nonstiff_count += 1;
        if self.nonstiff_count >= 6 {
            self.stiff_count = 0;
        }
        false
    }
}

/// The first step: the user's `dt`, or the standard estimate from `f(t0, u0)`.
fn first_step<T: Scalar>(
    system: &mut dyn BoundStepper<T>,
    t0: f64,
    u0: &[T],
    span: f64,
    opts: &SolveOptions,
    control: &ErrorControl,
    stats: &mut Stats,
) -> f64 {
    let dir = span.signum();
    match opts.dt {
        Some(dt) => dir * dt.min(span.abs()),
        None => {
            let n = u0.len();
            let (mut a, mut b) = (vec![T::zero(); n], vec![T::zero(); n]);
            let f0 = system.ensure_f0(t0, u0, stats).to_vec();
            let order = system.order();
            let (h, evals) = initial_step(
                &mut |du, u, t| system.rhs(du, u, t),
                t0,
                u0,
                &f0,
                span,
                order,
                &control.atol,
                &control.rtol,
                &mut a,
                &mut b,
            );
            stats.nf += evals;
            h
        }
    }
}

/// The saved values of an accepted step from `(t, u)` to `(times.end, u_new)`, kept up to
/// `until` (the step's end, or an event inside it) where the state is `u_until`: the state
/// there (saving every step), or the save times the step passed, interpolated on its dense
/// output.
#[allow(clippy::too_many_arguments)]
fn save_accepted<T: Scalar>(
    sol: &mut Solution<T>,
    plan: &mut SavePlan,
    system: &mut dyn BoundStepper<T>,
    times: &StepRecord,
    u: &[T],
    u_new: &[T],
    (until, u_until, at_event): (f64, &[T], bool),
    interp: &mut [T],
    stats: &mut Stats,
) {
    let (t, t_new, dir) = (times.t, times.end, plan.dir);
    if plan.every_step {
        sol.t.push(until);
        sol.u_flat.extend_from_slice(u_until);
        return;
    }
    // A step ending at an event: a save time at the event to rounding (as when taken from
    // `Solution::events`) gives the state before the jump, as one exactly at it does.
    let reach = if at_event { until + dir * 16.0 * f64::EPSILON * until.abs() } else { until };
    while plan.next < plan.times.len() && (plan.times[plan.next] - reach) * dir <= 0.0 {
        let ts = plan.times[plan.next];
        if (ts - until) * dir >= 0.0 {
            sol.u_flat.extend_from_slice(u_until);
        } else {
            let theta = (ts - t) / (t_new - t);
            let interpolant = system.interpolant();
            let data = system.dense_data(times, u, u_new, stats);
            interpolant.evaluate(theta, times.h, u, u_new, data, interp);
            sol.u_flat.extend_from_slice(interp);
        }
        sol.t.push(ts);
        plan.next += 1;
    }
}

/// Save times and the next one due.
struct SavePlan {
    every_step: bool,
    /// Only the end is saved: where the solve ends, at `t1` or earlier (see
    /// [`SavePlan::save_early_end`]).
    end_only: bool,
    /// The direction of integration (+1 or -1).
    dir: f64,
    times: Vec<f64>,
    next: usize,
}

impl SavePlan {
    /// What to save: every step, or the given times sorted along the integration, or the
    /// end `t1`.
    fn new(saveat: &SaveAt, dir: f64, t1: f64) -> Self {
        let end_only = matches!(saveat, SaveAt::End);
        let (every_step, times) = match saveat {
            SaveAt::EveryStep => (true, Vec::new()),
            SaveAt::End => (false, vec![t1]),
            SaveAt::Times(ts) => {
                let mut ts = ts.clone();
                sort_along(&mut ts, dir);
                (false, ts)
            }
        };
        Self { every_step, end_only, dir, times, next: 0 }
    }

    /// A solve saving only its end that a terminating event or the callback ended before
    /// `t1` saves the state `u` where it ended, at `t`.
    fn save_early_end<T: Scalar>(&self, sol: &mut Solution<T>, retcode: RetCode, t: f64, u: &[T]) {
        if self.end_only && matches!(retcode, RetCode::EventTerminated | RetCode::Terminated) && sol.t.is_empty() {
            sol.t.push(t);
            sol.u_flat.extend_from_slice(u);
        }
    }

    /// How many times the initial state is saved (a save time may repeat).
    fn due_at_start(&self, t0: f64) -> usize {
        if self.every_step {
            1
        } else {
            self.times.iter().take_while(|&&ts| ts == t0).count()
        }
    }
}

/// The first events of the accepted step `times` from `u` to `u_new`: continuous ones
/// inside it (the state there goes into `ev.u_event`), or else those at its end (continuous,
/// discrete and scheduled).
fn step_events<T: Scalar>(
    ev: &mut EventLoop<T>,
    system: &mut dyn BoundStepper<T>,
    times: &StepRecord,
    u: &[T],
    u_new: &[T],
    stats: &mut Stats,
) -> Option<Found> {
    let interpolant = system.interpolant();
    let found = if ev.watch.has_crossings() {
        let data = system.dense_data(times, u, u_new, stats);
        ev.data.clear();
        ev.data.extend_from_slice(data);
        let mut view = View { system: &*system, interpolant, h: times.h, u, u_new, data: &ev.data };
        match ev.watch.search(&mut view, times.t, times.h, times.end, u_new) {
            Some(found) if found.theta < 1.0 => {
                view.state_at(found.theta, &mut ev.u_event);
                return Some(found);
            }
            found => found,
        }
    } else {
        None
    };
    let mut view = View { system: &*system, interpolant, h: times.h, u, u_new, data: &[] };
    ev.watch.at_step_end(&mut view, found, times.end, u_new)
}

/// Take the step cut at the event `found` again, from `u` at `times.t` to the event time, so
/// that the state there has the method's own accuracy rather than its dense output's (which
/// is up to three orders lower: Radau5's collocation polynomial), and correct the time once
/// by Newton's method on the event's condition, `dt = -g / rate`, stepping again to the
/// corrected time. On success the step is the one to the event (returned with its error;
/// `u_new` holds the state, `found` its time); otherwise the original step is attempted
/// again and kept.
#[allow(clippy::too_many_arguments)]
fn retake_to_event<T: Scalar>(
    system: &mut dyn BoundStepper<T>,
    g: &mut [T],
    times: &StepRecord,
    found: &mut Found,
    u: &[T],
    u_new: &mut [T],
    err: &mut [T],
    control: &ErrorControl,
    stats: &mut Stats,
) -> Option<(StepRecord, f64)> {
    let to = |end: f64| StepRecord { t: times.t, h: end - times.t, first: times.first, last: end, end };
    let inside = |end: f64| (end - times.t) * (times.end - end) > 0.0;
    // The error of an accepted attempt.
    let mut attempt = |system: &mut dyn BoundStepper<T>, step: &StepRecord, u_new: &mut [T]| {
        let (e, finite) = system.attempt(step, u, u_new, err, control, stats);
        (finite && e <= 1.0).then_some(e)
    };
    let mut step = to(found.t);
    if let Some(mut e) = inside(found.t).then(|| attempt(system, &step, u_new)).flatten() {
        if let Some(i) = found.moving {
            system.conditions(g, u_new, found.t);
            let corrected = found.t - g[i].value() / system.condition_rate(i, u_new, found.t);
            let tol = 4.0 * f64::EPSILON * found.t.abs().max(times.t.abs());
            if (corrected - found.t).abs() > tol && inside(corrected) {
                let retry = to(corrected);
                if let Some(e_retry) = attempt(system, &retry, u_new) {
                    (found.t, step, e) = (corrected, retry, e_retry);
                } else if attempt(system, &step, u_new).is_none() {
                    attempt(system, times, u_new);
                    return None;
                }
            }
        }
        found.theta = 1.0;
        return Some((step, e));
    }
    attempt(system, times, u_new);
    None
}

/// On numbers with derivative parts (forward-mode AD), a continuous event time's derivative:
/// the event fires where `g(u(t), p, t) = 0`, so by the implicit function theorem it moves by
/// `dt = -(g_u du + g_p dp) / (g_u f + g_t)`, which is `-g`'s derivative parts over the
/// condition's rate along the flow. The state at the moving event time is `u + f dt`: `u`
/// becomes that, and `dt` (value zero) is returned. Plain numbers, or only discrete and
/// scheduled events (fixed times): nothing to do.
fn event_time_shift<T: Scalar>(ev: &mut EventLoop<T>, system: &dyn BoundStepper<T>, found: &Found, u: &mut [T]) -> T {
    let Some(i) = found.moving.filter(|_| T::PARTS > 1) else {
        return T::zero();
    };
    system.conditions(&mut ev.g, u, found.t);
    let g = ev.g[i];
    // A grazing crossing (rate zero) has no finite derivative: it comes out infinite.
    let rate = system.condition_rate(i, u, found.t);
    let dt = (g - T::from_f64(g.value())).scale(-1.0 / rate);
    system.rhs(&mut ev.f, u, found.t);
    for (x, f) in u.iter_mut().zip(&ev.f) {
        *x += dt.scale(f.value());
    }
    dt
}

/// Whether one of the events `found` fires has just fired at the same time (to rounding):
/// its firings accumulate there (a ball coming to rest bounces ever faster, Zeno's way), or
/// its affect leaves it firing at once; either way the solve cannot go past that time.
fn fires_again(history: &[EventRecord], found: &Found) -> bool {
    let near = |t: f64| (t - found.t).abs() <= 4.0 * f64::EPSILON * found.t.abs();
    history.iter().rev().take_while(|r| near(r.t)).any(|r| found.fired.contains(&r.index))
}

/// Apply the fired events' jumps to `u` (the state at the event), logging the jump for a
/// discrete adjoint and saving both sides when asked, and restart the event search from the
/// new state.
///
/// With derivative parts, this is the saltation of the sensitivities: the jump is applied at
/// the moving event time (`u + f_before dt`, at `t + dt`), and the state after it, read at
/// the fixed time `t`, is `u_after - f_after dt`: together
/// `S_after = a_u (S + f_before dt) + a_p + a_t dt - f_after dt`.
fn jump<T: Scalar>(
    sol: &mut Solution<T>,
    ev: &mut EventLoop<T>,
    system: &dyn BoundStepper<T>,
    found: &Found,
    u: &mut [T],
    log: Option<&mut StepLog<T>>,
) {
    if let Some(log) = log {
        log.push_jump();
    }
    if ev.save_both_sides {
        sol.t.push(found.t);
        sol.u_flat.extend_from_slice(u);
    }
    sol.jumps.push(JumpRecord {
        saves_before: sol.t.len(),
        t: found.t,
        fired: found.fired.clone(),
        moving: found.moving,
        u_before: u.iter().map(|v| v.value()).collect(),
    });
    let dt = event_time_shift(ev, system, found, u);
    let t_event = T::from_f64(found.t) + dt;
    for &i in &found.fired {
        system.affect(i, u, t_event);
    }
    if T::PARTS > 1 && found.moving.is_some() {
        system.rhs(&mut ev.f, u, found.t);
        for (x, f) in u.iter_mut().zip(&ev.f) {
            *x -= dt.scale(f.value());
        }
    }
    if ev.save_both_sides {
        sol.t.push(found.t);
        sol.u_flat.extend_from_slice(u);
    }
    if let Some(d) = sol.dense.as_mut() {
        d.push_jump(u);
    }
    let mut after = View { system, interpolant: system.interpolant(), h: 0.0, u, u_new: u, data: &[] };
    ev.watch.restart(&mut after, u, found.t, &found.fired);
}

/// Integrate with `stepper` from `tspan.0` to `tspan.1`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn integrate<T: Scalar, M: Model, S: Stepper<T, M>>(
    model: &M,
    u0: &[T],
    p: &[T],
    tspan: (f64, f64),
    opts: &SolveOptions,
    stepper: &mut S,
    alg: Algorithm,
    watch: Watch<'_, T>,
    stop_when_stiff: bool,
) -> Result<Solution<T>> {
    check_inputs(model, u0, p, tspan)?;
    let pv: Vec<f64> = p.iter().map(|x| x.value()).collect();
    let model_stops = model.tstops(&pv);
    let mut system = Bound { model, p, stepper };
    run(&mut system, u0, p.len(), tspan, opts, model_stops, alg, watch, stop_when_stiff)
}

/// A stepper with its model and parameters: what the step loop drives.
///
/// The loop takes it as a trait object, so that it is compiled once per number type, not
/// once for every model type, method and stepper size, each copy with that stepper's step
/// inlined (bench/peers/README.md, "Test build time"). A step makes a few virtual calls,
/// next to its stages' right-hand-side evaluations.
trait BoundStepper<T> {
    fn order(&self) -> u32;
    fn error_order(&self) -> u32;
    fn interpolant(&self) -> Interpolant;
    fn set_tolerances(&mut self, atol: &[f64], rtol: &[f64]);
    fn ensure_f0(&mut self, t: f64, u: &[T], stats: &mut Stats) -> &[T];
    /// [`Stepper::attempt`], measured by [`ErrorControl::measure`].
    fn attempt(
        &mut self,
        times: &StepRecord,
        u: &[T],
        u_new: &mut [T],
        err: &mut [T],
        control: &ErrorControl,
        stats: &mut Stats,
    ) -> (f64, bool);
    fn dense_data(&mut self, times: &StepRecord, u: &[T], u_new: &[T], stats: &mut Stats) -> &[T];
    /// [`Stepper::accept`], then (for an adaptive solve, given the attempt's error `e`)
    /// [`Stepper::next_step_after_accept`]: one call per step.
    fn accept(&mut self, discontinuity: bool, e: Option<f64>) -> Option<f64>;
    fn stiffness_ratio(&self) -> Option<f64>;
    fn next_step_after_reject(&mut self, e: f64) -> Option<f64>;
    /// `du = f(u, p, t)`.
    fn rhs(&self, du: &mut [T], u: &[T], t: f64);
    /// The power iteration's estimate of J's spectral radius at `(u, t)`.
    fn spectral_radius(&self, probe: &mut PowerIteration, t: f64, u: &[T]) -> f64;
    /// The model's events.
    fn events(&self) -> Vec<Event>;
    /// The model's event conditions at `(u, t)`.
    fn conditions(&self, g: &mut [T], u: &[T], t: f64);
    /// Event `index`'s jump of `u` at `t`.
    fn affect(&self, index: usize, u: &mut [T], t: T);
    /// `d g_i / dt` along the flow at `(u, t)` (values): `g_u f + g_t`.
    fn condition_rate(&self, index: usize, u: &[T], t: f64) -> f64;
}

struct Bound<'a, T, M, S> {
    model: &'a M,
    p: &'a [T],
    stepper: &'a mut S,
}

impl<T: Scalar, M: Model, S: Stepper<T, M>> BoundStepper<T> for Bound<'_, T, M, S> {
    fn order(&self) -> u32 {
        self.stepper.order()
    }
    fn error_order(&self) -> u32 {
        self.stepper.error_order()
    }
    fn interpolant(&self) -> Interpolant {
        self.stepper.interpolant()
    }
    fn set_tolerances(&mut self, atol: &[f64], rtol: &[f64]) {
        self.stepper.set_tolerances(atol, rtol)
    }
    fn ensure_f0(&mut self, t: f64, u: &[T], stats: &mut Stats) -> &[T] {
        self.stepper.ensure_f0(self.model, self.p, t, u, stats)
    }
    fn attempt(
        &mut self,
        times: &StepRecord,
        u: &[T],
        u_new: &mut [T],
        err: &mut [T],
        control: &ErrorControl,
        stats: &mut Stats,
    ) -> (f64, bool) {
        self.stepper.attempt(self.model, self.p, times, u, u_new, err, stats);
        let n = self.model.n_states();
        control.measure(&err[..n], &u[..n], &u_new[..n])
    }
    fn dense_data(&mut self, times: &StepRecord, u: &[T], u_new: &[T], stats: &mut Stats) -> &[T] {
        self.stepper.dense_data(self.model, self.p, times, u, u_new, stats)
    }
    fn accept(&mut self, discontinuity: bool, e: Option<f64>) -> Option<f64> {
        self.stepper.accept(discontinuity);
        e.and_then(|e| self.stepper.next_step_after_accept(e))
    }
    fn stiffness_ratio(&self) -> Option<f64> {
        self.stepper.stiffness_ratio()
    }
    fn next_step_after_reject(&mut self, e: f64) -> Option<f64> {
        self.stepper.next_step_after_reject(e)
    }
    fn rhs(&self, du: &mut [T], u: &[T], t: f64) {
        self.model.rhs(du, u, self.p, T::from_f64(t))
    }
    fn spectral_radius(&self, probe: &mut PowerIteration, t: f64, u: &[T]) -> f64 {
        probe.estimate(self.model, self.p, t, u, 4)
    }
    fn events(&self) -> Vec<Event> {
        self.model.events()
    }
    fn conditions(&self, g: &mut [T], u: &[T], t: f64) {
        self.model.event_conditions(g, u, self.p, T::from_f64(t))
    }
    fn affect(&self, index: usize, u: &mut [T], t: T) {
        self.model.event_affect(index, u, self.p, t)
    }
    fn condition_rate(&self, index: usize, u: &[T], t: f64) -> f64 {
        let values = |x: &[T]| x.iter().map(|v| v.value()).collect::<Vec<f64>>();
        condition_rate(self.model, index, &values(u), &values(self.p), t)
    }
}

/// `d g_i / dt` along the flow at `(u, p, t)`: one forward-mode direction, the state moving
/// along `f` and time along itself. Generic over the model only (not the number type or
/// the stepper), so that it is compiled once per model.
fn condition_rate<M: Model>(model: &M, index: usize, u: &[f64], p: &[f64], t: f64) -> f64 {
    let mut f = vec![0.0; u.len()];
    model.rhs(&mut f, u, p, t);
    let ud: Vec<Dual<1>> = u.iter().zip(&f).map(|(&v, &d)| Dual { v, d: [d] }).collect();
    let pd: Vec<Dual<1>> = p.iter().map(|&v| Dual::constant(v)).collect();
    let mut g = vec![Dual::<1>::constant(0.0); model.events().len()];
    model.event_conditions(&mut g, &ud, &pd, Dual { v: t, d: [1.0] });
    g[index].d[0]
}

/// A step's dense output and the model's conditions, for the event search.
struct View<'a, T> {
    system: &'a dyn BoundStepper<T>,
    interpolant: Interpolant,
    h: f64,
    u: &'a [T],
    u_new: &'a [T],
    data: &'a [T],
}

impl<T: Scalar> StepView<T> for View<'_, T> {
    fn state_at(&mut self, theta: f64, out: &mut [T]) {
        self.interpolant.evaluate(theta, self.h, self.u, self.u_new, self.data, out);
    }
    fn conditions(&mut self, g: &mut [T], u: &[T], t: f64) {
        self.system.conditions(g, u, t)
    }
    fn rate(&mut self, i: usize, u: &[T], t: f64) -> f64 {
        self.system.condition_rate(i, u, t)
    }
}

/// The event search's state and buffers inside the step loop.
struct EventLoop<T> {
    watch: EventWatch<T>,
    /// The step's dense output data, copied so that the search can call the model.
    data: Vec<T>,
    /// The state at the event.
    u_event: Vec<T>,
    save_both_sides: bool,
    /// The conditions and `f` at an event (for the event time's derivative parts).
    g: Vec<T>,
    f: Vec<T>,
}

/// The step loop of [`integrate`], after the checks that need the model.
#[allow(clippy::too_many_arguments)]
fn run<T: Scalar>(
    system: &mut dyn BoundStepper<T>,
    u0: &[T],
    n_params: usize,
    tspan: (f64, f64),
    opts: &SolveOptions,
    model_stops: Vec<f64>,
    alg: Algorithm,
    watch: Watch<'_, T>,
    stop_when_stiff: bool,
) -> Result<Solution<T>> {
    let Watch { mut callback, mut log, resumes, events: watch_events } = watch;
    // Set-up: tolerances, stops and save times.
    opts.validate(tspan)?;
    let n = u0.len();
    let control = ErrorControl::new(opts, n)?;
    system.set_tolerances(&control.atol, &control.rtol);
    let (t0, t1) = tspan;
    let dir = (t1 - t0).signum();
    let span = t1 - t0;
    let model_events = if watch_events { system.events() } else { Vec::new() };
    let m = model_events.len();
    let mut events = EventWatch::new(model_events, opts.event_samples, n, tspan)?.map(|watch| EventLoop {
        watch,
        data: Vec::new(),
        u_event: vec![T::zero(); n],
        save_both_sides: opts.save_events,
        g: vec![T::zero(); m],
        f: vec![T::zero(); n],
    });
    let scheduled = events.iter().flat_map(|ev| ev.watch.scheduled_times());
    let stops = stop_times(model_stops.into_iter().chain(scheduled).collect(), &opts.tstops, tspan);
    let mut plan = SavePlan::new(&opts.saveat, dir, t1);
    let keep_dense = opts.dense.unwrap_or(plan.every_step);

    let mut stats = Stats::default();
    let mut sol = Solution {
        t: Vec::new(),
        u_flat: Vec::new(),
        n,
        retcode: RetCode::Success,
        stats,
        alg,
        t_reached: t0,
        u_reached: Vec::new(),
        switched: false,
        next_step: 0.0,
        dense: keep_dense.then(|| DenseOutput::new(n, t0, u0, system.interpolant())),
        events: Vec::new(),
        jumps: Vec::new(),
    };
    // The initial state, when it is to be saved.
    let at_start = plan.due_at_start(t0);
    for _ in 0..at_start {
        sol.t.push(t0);
        sol.u_flat.extend_from_slice(u0);
    }
    plan.next = at_start;

    let mut t = t0;
    let mut u = u0.to_vec();
    let mut u_new = vec![T::zero(); n];
    let mut err = vec![T::zero(); n];
    let mut interp = vec![T::zero(); n];

    // The events scheduled at the start fire before the first step.
    if let Some(ev) = events.as_mut() {
        match ev.watch.at_start(t0, resumes) {
            Some(found) => {
                sol.events.extend(found.fired.iter().map(|&index| EventRecord { t: t0, index }));
                if found.terminate {
                    sol.retcode = RetCode::EventTerminated;
                    plan.save_early_end(&mut sol, RetCode::EventTerminated, t0, &u);
                    sol.u_reached = u;
                    return Ok(sol);
                }
                jump(&mut sol, ev, system, &found, &mut u, log.as_deref_mut());
            }
            None => {
                let mut start =
                    View { system: &*system, interpolant: system.interpolant(), h: 0.0, u: &u, u_new: &u, data: &[] };
                ev.watch.restart(&mut start, &u, t0, &[]);
            }
        }
    }
    if !all_finite(system.ensure_f0(t, &u, &mut stats)) {
        sol.retcode = RetCode::InitialFailure;
        sol.stats = stats;
        return Ok(sol);
    }
    let mut h = first_step(system, t0, &u, span, opts, &control, &mut stats);
    let mut controller = PiController::new(system.error_order());
    let mut stop_idx = 0;
    let mut after_discontinuity = false;
    let mut after_reject = false;
    let mut watch = stop_when_stiff.then(|| StiffnessWatch::new(n, n_params));

    // The step loop: attempt, then accept (save, record, land on stops, callbacks, stiffness
    // watch, next step size) or reject (shrink, or give up at the floor).
    let retcode = loop {
        if stats.nsteps >= opts.max_steps {
            break RetCode::MaxIters;
        }
        let next_stop = stops[stop_idx];
        // `h` already carries the direction; a branch (not abs, min and a multiply) keeps the
        // common case off the step's critical path.
        let mut h_try = if h.abs() <= opts.dt_max { h } else { dir * opts.dt_max };
        let mut lands = false;
        // Land on the stop; also stretch slightly to it rather than leave a sliver.
        if (t + h_try * 1.000_001 - next_stop) * dir >= 0.0 {
            h_try = next_stop - t;
            lands = true;
        }
        let mut end = if lands { next_stop } else { t + h_try };
        // Stops other than the last are discontinuities: no stage sees the far side.
        let at_discontinuity = lands && stop_idx + 1 < stops.len();
        let mut times = StepRecord {
            t,
            h: h_try,
            first: if after_discontinuity { just_past(t, dir) } else { t },
            last: if at_discontinuity { just_before(end, dir) } else { end },
            end,
        };
        let (e, finite) = system.attempt(&times, &u, &mut u_new, &mut err, &control, &mut stats);
        stats.nsteps += 1;
        if !(finite && e <= 1.0) {
            stats.nreject += 1;
            after_reject = true;
            h = match system.next_step_after_reject(e) {
                Some(h) => h,
                None => h_try * controller.reject(e),
            };
            if h.abs() < step_floor(opts, t, tspan) || !opts.adaptive {
                break if finite { RetCode::DtLessThanMin } else { RetCode::Unstable };
            }
            continue;
        }
        stats.naccept += 1;
        // The first events inside the step or at its end, if any: the step is kept up to them,
        // taken again to end there.
        let mut found = events.as_mut().and_then(|ev| step_events(ev, system, &times, &u, &u_new, &mut stats));
        // The error of the step kept (the retaken one's, when it is retaken).
        let mut e_logged = e;
        if let (Some(f), Some(ev)) = (found.as_mut(), events.as_mut()) {
            if f.theta < 1.0 {
                // Without a retaken step, the original one is kept: its end state in `u_new`,
                // the event's from its dense output in `ev.u_event`.
                let retaken =
                    retake_to_event(system, &mut ev.g, &times, f, &u, &mut u_new, &mut err, &control, &mut stats);
                match retaken {
                    Some((step, e_step)) => (times, end, lands, e_logged) = (step, step.end, false, e_step),
                    // A discrete adjoint replays the logged steps: one cut inside would be
                    // replayed whole.
                    None if log.is_some() => {
                        return Err(crate::error::DiffsimError::Unsupported {
                            alg: alg.name(),
                            why: format!(
                                "the step to the event at t = {} failed when taken again, so the discrete adjoint \
                                 cannot replay it; use --sensealg forward or forward-ad, or tighter tolerances",
                                f.t
                            ),
                        })
                    }
                    None => {}
                }
            }
        }
        let (until, u_until): (f64, &[T]) = match (&found, &events) {
            (Some(f), Some(ev)) if f.theta < 1.0 => (f.t, &ev.u_event),
            _ => (end, &u_new),
        };
        let at_event = found.is_some();
        save_accepted(
            &mut sol,
            &mut plan,
            system,
            &times,
            &u,
            &u_new,
            (until, u_until, at_event),
            &mut interp,
            &mut stats,
        );
        if keep_dense {
            let data = system.dense_data(&times, &u, &u_new, &mut stats);
            if let Some(d) = sol.dense.as_mut() {
                if until == end {
                    d.push(end, &u_new, data);
                } else {
                    d.push_cut(until, u_until, data, times.h, &u_new);
                }
            }
        }
        if let Some(log) = log.as_mut() {
            // A step cut to land on a stop says nothing about what accuracy asked for.
            log.push(times, &u, if lands { f64::NAN } else { e_logged });
        }
        let proposal = match (found, events.as_mut()) {
            (Some(found), Some(ev)) => {
                // Keep the step up to the event, then jump (or stop) there.
                if until != end {
                    u_new.copy_from_slice(&ev.u_event);
                    lands = false;
                }
                if fires_again(&sol.events, &found) {
                    // The firings accumulate: the model has no continuation past here.
                    t = found.t;
                    sol.t_reached = t;
                    std::mem::swap(&mut u, &mut u_new);
                    break RetCode::Zeno;
                }
                sol.events.extend(found.fired.iter().map(|&index| EventRecord { t: found.t, index }));
                system.accept(true, None);
                t = found.t;
                sol.t_reached = t;
                if found.terminate {
                    // The solve ends at the event time, which moves with the inputs.
                    event_time_shift(ev, system, &found, &mut u_new);
                    std::mem::swap(&mut u, &mut u_new);
                    break RetCode::EventTerminated;
                }
                jump(&mut sol, ev, system, &found, &mut u_new, log.as_deref_mut());
                std::mem::swap(&mut u, &mut u_new);
                if !all_finite(&u) {
                    break RetCode::Unstable;
                }
                after_discontinuity = true;
                None
            }
            _ => {
                after_discontinuity = at_discontinuity;
                let proposal = system.accept(after_discontinuity, opts.adaptive.then_some(e));
                std::mem::swap(&mut u, &mut u_new);
                t = end;
                sol.t_reached = t;
                proposal
            }
        };
        if lands {
            stop_idx += 1;
            if stop_idx == stops.len() {
                break RetCode::Success;
            }
        }
        if let Some(cb) = callback.as_mut() {
            if !cb(t, &u) {
                break RetCode::Terminated;
            }
        }
        if let Some(w) = watch.as_mut() {
            if w.turned_stiff(system, t, &u, h_try, stats.naccept) {
                sol.switched = true;
                break RetCode::Success;
            }
        }
        if opts.adaptive {
            h = match proposal {
                Some(h) => h,
                None => {
                    // A step shortened to land on a stop says little about the next one.
                    let h_base = if lands { dir * h.abs().max(h_try.abs()) } else { h_try };
                    h_base * controller.accept(e, after_reject)
                }
            };
        }
        after_reject = false;
    };
    sol.retcode = retcode;
    plan.save_early_end(&mut sol, retcode, t, &u);
    sol.stats = stats;
    if stats.naccept > 0 && h.is_finite() {
        sol.next_step = h.abs();
    }
    sol.u_reached = u;
    Ok(sol)
}
