//! Finding a model's events on an accepted step. Continuous ones: the conditions are
//! sampled along the step's dense output, each sign change in an event's direction is
//! bracketed, and the earliest root is located by the Anderson-Bjorck variant of false
//! position (superlinear on smooth conditions, where plain false position keeps one end and
//! creeps) to a few units of rounding in `t`. Discrete ones: the conditions at the step's
//! end. Scheduled ones: the step landed on their time (they are among its stops).
//! The conventions at zero are [`crate::event`]'s.

use crate::error::{DiffsimError, Result};
use crate::event::{Crossing, Event, EventAction, Trigger};
use crate::scalar::Scalar;

/// What the event search needs from the step just taken.
pub(super) trait StepView<T> {
    /// The state at `theta` in `[0, 1]` of the step, from its dense output.
    fn state_at(&mut self, theta: f64, out: &mut [T]);
    /// The conditions `g(u, p, t)`.
    fn conditions(&mut self, g: &mut [T], u: &[T], t: f64);
    /// `d g_i / dt` along the flow at `(u, t)`.
    fn rate(&mut self, i: usize, u: &[T], t: f64) -> f64;
}

/// Where in a step the first events fire.
pub(super) struct Found {
    /// The fraction of the step at which they fire (on the far side of every root, within
    /// the root finder's tolerance), and the time.
    pub(super) theta: f64,
    pub(super) t: f64,
    /// The events firing there, in index order.
    pub(super) fired: Vec<usize>,
    /// Whether one of them ends the solve.
    pub(super) terminate: bool,
    /// The first continuous event among them, whose condition's root the time is (it moves
    /// with the inputs); `None` when only discrete or scheduled events fire (a fixed time).
    pub(super) moving: Option<usize>,
}

/// The scheduled firings of `events` in the span, `(time, event)` along the integration
/// (at the same time in index order). Not generic, so compiled once.
fn schedule(events: &[Event], tspan: (f64, f64)) -> Result<Vec<(f64, usize)>> {
    let dir = (tspan.1 - tspan.0).signum();
    let mut schedule = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let times = event.times_in(tspan).map_err(|why| DiffsimError::InvalidModel { why })?;
        schedule.extend(times.into_iter().map(|t| (t, i)));
    }
    schedule.sort_by(|a, b| ((a.0 - b.0) * dir).total_cmp(&0.0).then(a.1.cmp(&b.1)));
    Ok(schedule)
}

/// The model's events and their conditions at the start of the current step.
pub(super) struct EventWatch<T> {
    events: Vec<Event>,
    /// The direction of each continuous event (`None` for the others).
    crossings: Vec<Option<Crossing>>,
    /// The discrete events.
    after_step: Vec<usize>,
    /// The scheduled firings in the span, `(time, event)` along the integration, and the
    /// next one due.
    schedule: Vec<(f64, usize)>,
    next_scheduled: usize,
    /// Interior sample points per step.
    samples: usize,
    /// The direction of integration (+1 or -1).
    dir: f64,
    /// The conditions at the start of the step (values; see [`EventWatch::restart`]).
    left: Vec<f64>,
    /// The conditions at each sample point (`(samples + 2) x m`, row 0 the start).
    grid: Vec<f64>,
    g: Vec<T>,
    u: Vec<T>,
}

impl<T: Scalar> EventWatch<T> {
    /// Watch `events` on the span `tspan` (None when the model has none), or say what is
    /// wrong with their schedules.
    pub(super) fn new(events: Vec<Event>, samples: usize, n: usize, tspan: (f64, f64)) -> Result<Option<Self>> {
        let m = events.len();
        if m == 0 {
            return Ok(None);
        }
        let dir = (tspan.1 - tspan.0).signum();
        Ok(Some(Self {
            crossings: events.iter().map(Event::crossing).collect(),
            after_step: (0..m).filter(|&i| events[i].trigger == Trigger::AfterStep).collect(),
            schedule: schedule(&events, tspan)?,
            next_scheduled: 0,
            events,
            samples,
            dir,
            left: vec![0.0; m],
            grid: vec![0.0; (samples + 2) * m],
            g: vec![T::zero(); m],
            u: vec![T::zero(); n],
        }))
    }

    /// The scheduled times, which the steps must land on.
    pub(super) fn scheduled_times(&self) -> impl Iterator<Item = f64> + '_ {
        self.schedule.iter().map(|&(t, _)| t)
    }

    /// Whether any event is continuous (else a step needs no search along it).
    pub(super) fn has_crossings(&self) -> bool {
        self.crossings.iter().any(Option::is_some)
    }

    /// The scheduled events at the start `t0` of the span, which fire before the first step
    /// unless the solve `resumes` one that has fired them; either way they are then done.
    pub(super) fn at_start(&mut self, t0: f64, resumes: bool) -> Option<Found> {
        let mut fired = Vec::new();
        while let Some(&(ts, i)) = self.schedule.get(self.next_scheduled) {
            if ts != t0 {
                break;
            }
            fired.push(i);
            self.next_scheduled += 1;
        }
        if resumes {
            fired.clear();
        }
        self.fixed_time(t0, fired)
    }

    /// The events at the end `end` (state `u_new`) of an accepted step: the continuous ones
    /// `found` there (if any), the discrete ones whose condition is positive, and the
    /// scheduled ones due (the step landed on their time).
    pub(super) fn at_step_end(
        &mut self,
        view: &mut dyn StepView<T>,
        found: Option<Found>,
        end: f64,
        u_new: &[T],
    ) -> Option<Found> {
        let (mut fired, moving) = found.map_or((Vec::new(), None), |f| (f.fired, f.moving));
        if !self.after_step.is_empty() {
            view.conditions(&mut self.g, u_new, end);
            fired.extend(self.after_step.iter().copied().filter(|&i| self.g[i].value() > 0.0));
        }
        while let Some(&(ts, i)) = self.schedule.get(self.next_scheduled) {
            if (ts - end) * self.dir > 0.0 {
                break;
            }
            fired.push(i);
            self.next_scheduled += 1;
        }
        fired.sort_unstable();
        fired.dedup();
        let mut found = self.fixed_time(end, fired)?;
        found.moving = moving;
        Some(found)
    }

    /// Events `fired` at a time that does not move with the inputs.
    fn fixed_time(&self, t: f64, fired: Vec<usize>) -> Option<Found> {
        let terminate = self.terminates(&fired);
        (!fired.is_empty()).then_some(Found { theta: 1.0, t, fired, terminate, moving: None })
    }

    /// Whether one of the events `fired` ends the solve.
    fn terminates(&self, fired: &[usize]) -> bool {
        fired.iter().any(|&i| self.events[i].action == EventAction::Terminate)
    }

    /// The conditions at the start of a step from `(t, u)`: the start of the span, or the
    /// state after an event's jump (`fired`: the events that just fired).
    ///
    /// A fired event's condition sits at its root, a few units of rounding to either side.
    /// Its reference is then the side the flow is leaving zero towards (the sign of its
    /// rate), so that the event fires again only when it next crosses zero, neither at once
    /// nor never (a ball bounced upwards is on the positive side, and its next fall through
    /// zero is a crossing). An affect that moved the condition clearly off zero (a reset)
    /// leaves the value as it is.
    pub(super) fn restart(&mut self, view: &mut dyn StepView<T>, u: &[T], t: f64, fired: &[usize]) {
        view.conditions(&mut self.g, u, t);
        for (l, g) in self.left.iter_mut().zip(&self.g) {
            *l = g.value();
        }
        for &i in fired.iter().filter(|&&i| self.crossings[i].is_some()) {
            let rate = view.rate(i, u, t);
            let at_root = 1e3 * f64::EPSILON * rate.abs() * t.abs().max(f64::MIN_POSITIVE);
            // The rate is in t; the flow runs along the direction of integration.
            if self.left[i].abs() <= at_root && rate != 0.0 {
                self.left[i] = f64::MIN_POSITIVE.copysign(rate * self.dir);
            }
        }
    }

    /// Search the step from `t` of size `h` (accepted, ending at `end` in `u_new`) for the
    /// first events. Without one, the end's conditions become the next step's start.
    pub(super) fn search(
        &mut self,
        view: &mut dyn StepView<T>,
        t: f64,
        h: f64,
        end: f64,
        u_new: &[T],
    ) -> Option<Found> {
        let m = self.events.len();
        let rows = self.samples + 2;
        let theta_of = |k: usize| if k + 1 == rows { 1.0 } else { k as f64 / (rows - 1) as f64 };
        // Conditions at the sample points; the end from the step's own end state.
        self.grid[..m].copy_from_slice(&self.left);
        let mut found_any = false;
        for k in 1..rows {
            let theta = theta_of(k);
            if k + 1 == rows {
                view.conditions(&mut self.g, u_new, end);
            } else {
                view.state_at(theta, &mut self.u);
                view.conditions(&mut self.g, &self.u, t + theta * h);
            }
            for (i, g) in self.g.iter().enumerate() {
                self.grid[k * m + i] = g.value();
            }
            found_any |= (0..m).any(|i| self.crossing_in(i, k).is_some());
        }
        if !found_any {
            self.left.copy_from_slice(&self.grid[(rows - 1) * m..]);
            return None;
        }
        // Each event's earliest crossing, located; then the earliest of them.
        let tol = 4.0 * f64::EPSILON * t.abs().max((t + h).abs()) / h.abs();
        let mut roots = vec![f64::INFINITY; m];
        for (i, root) in roots.iter_mut().enumerate() {
            if let Some((k, (ga, gb))) = (1..rows).find_map(|k| self.crossing_in(i, k).map(|g| (k, g))) {
                *root = self.locate(view, i, t, h, (theta_of(k - 1), ga), (theta_of(k), gb), tol);
            }
        }
        let theta = roots.iter().copied().fold(f64::INFINITY, f64::min);
        let fired: Vec<usize> = (0..m).filter(|&i| roots[i] <= theta + 2.0 * tol).collect();
        // The cut lies past every firing root.
        let theta = fired.iter().map(|&i| roots[i]).fold(theta, f64::max).min(1.0);
        let terminate = self.terminates(&fired);
        let moving = fired.first().copied();
        Some(Found { theta, t: if theta == 1.0 { end } else { t + theta * h }, fired, terminate, moving })
    }

    /// The values of event `i` bracketing a crossing in its direction between sample rows
    /// `k - 1` and `k`, if there is one.
    fn crossing_in(&self, i: usize, k: usize) -> Option<(f64, f64)> {
        let m = self.events.len();
        let (before, after) = (self.grid[(k - 1) * m + i], self.grid[k * m + i]);
        self.crossings[i]?.crossed(before, after).then_some((before, after))
    }

    /// The root of event `i`'s condition between `a` (value `ga`, before the crossing) and
    /// `b` (`gb`, at or past it), to `tol` in theta; returns the far side.
    #[allow(clippy::too_many_arguments)]
    fn locate(
        &mut self,
        view: &mut dyn StepView<T>,
        i: usize,
        t: f64,
        h: f64,
        (mut a, mut ga): (f64, f64),
        (mut b, mut gb): (f64, f64),
        tol: f64,
    ) -> f64 {
        let Some(crossing) = self.crossings[i] else { return b };
        // The condition's value at theta, on the step's dense output.
        let mut eval = |theta: f64, this: &mut Self| -> f64 {
            view.state_at(theta, &mut this.u);
            view.conditions(&mut this.g, &this.u, t + theta * h);
            this.g[i].value()
        };
        // Which end the last iteration kept (-1: a, 1: b): a second time in a row, the kept
        // end's value is scaled down (Anderson-Bjorck) so that false position does not creep.
        let mut kept = 0;
        for _ in 0..200 {
            if b - a <= tol || gb == 0.0 {
                break;
            }
            let mut c = b - gb * (b - a) / (gb - ga);
            if !(c > a && c < b) {
                c = 0.5 * (a + b);
            }
            let gc = eval(c, self);
            if crossing.crossed(ga, gc) || gc == 0.0 {
                let scale = 1.0 - gc / gb;
                (b, gb) = (c, gc);
                if kept == -1 {
                    ga *= if scale > 0.0 { scale } else { 0.5 };
                }
                kept = -1;
            } else {
                let scale = 1.0 - gc / ga;
                (a, ga) = (c, gc);
                if kept == 1 {
                    gb *= if scale > 0.0 { scale } else { 0.5 };
                }
                kept = 1;
            }
        }
        b
    }
}
