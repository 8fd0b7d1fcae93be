//! Events: where a model switches. Part of the model contract ([`crate::Model::events`]).
//!
//! An event changes the model when it fires: the state jumps ([`crate::Model::event_affect`]:
//! a ball bounces, a dose is given, a valve closes) or the solve ends there
//! ([`Event::terminate`]). Its [`Trigger`] says when:
//! - a **continuous** event where its condition `g_i(u, p, t)` (written once for any number
//!   type in [`crate::Model::event_conditions`]) crosses zero, located in time;
//! - a **discrete** event after an accepted step at whose end its condition is positive;
//! - a **scheduled** event at preset times or periodically (doses): the steps land on them.
//!
//! The solvers check the continuous conditions on every accepted step: at its end and at a
//! few interior points of the step's dense output (`SolveOptions::event_samples`), so that a
//! condition that crosses zero and back within one step is seen. A sign change in the
//! event's [`Crossing`] direction is located on the dense output by a bracketing root
//! finder to a few units of rounding in `t`. The step is then taken again to end there (a
//! dense output can be several orders less accurate than the step itself: Radau5's), the
//! time corrected once by Newton's method on the condition and the step taken to it, so
//! that the event time and the state there have the method's accuracy. The affect is
//! applied, and the method starts again from the new state. Several crossings in one step are taken in
//! time order; events firing at the same time fire together, in index order.
//!
//! Conventions:
//! - A condition exactly zero at the start of the span does not fire there: it fires when
//!   it next crosses zero. A scheduled time at the start of the span does fire there (a
//!   dose at time zero is given), and so does one at its end.
//! - After an event, its own condition sits at zero (to rounding). It counts as being on
//!   the side the flow leaves zero towards, so the event fires at its next crossing and
//!   not at once (a ball bounced upwards fires again when it next falls through the floor).
//! - An event never fires twice at one time: if it is about to (its firings accumulate, as
//!   a bouncing ball's do as it comes to rest), the solve ends there with
//!   `RetCode::Zeno`, since the model has no continuation past that time.
//! - At an event time, save times and the dense output give the state before the jump (the
//!   left limit), and so do the losses on them; `SolveOptions::save_events(true)` saves
//!   both sides.
//! - Affects change the state, not the parameters: `p` is what a fit estimates and stays
//!   fixed through a solve. A quantity that an event switches (a heater's power, a valve's
//!   opening, a rate after a treatment starts) is a state whose rate is zero, as the
//!   thermostat's heater is; its gradient at the start is in `du0`, and a parameter may set
//!   the value an affect switches it to.
//! - A solve that a terminating event ends has no gradient yet (the gradient functions
//!   refuse it with an error that says so): its end time moves with the inputs.
//!
//! Gradients: every `SensAlg` differentiates through events exactly. A continuous event's
//! time moves with the inputs by the implicit function theorem,
//! `dt = -(g_u du + g_p dp) / (g_u f + g_t)`; the jump is applied at that moving time and
//! the state after it read back at the fixed one, which gives the sensitivities' saltation
//! `S+ = a_u (S- + f- dt) + a_p + a_t dt - f+ dt`. A crossing that only grazes zero
//! (`g_u f + g_t = 0`) has no finite derivative. Scheduled times do not move
//! (`S+ = a_u S- + a_p`), and a discrete event's time is the end of a step, which is taken
//! as fixed too. Forward-mode AD (`SensAlg::ForwardAd`) carries the saltation in its dual
//! numbers; forward sensitivities (`SensAlg::Forward`) apply it to their sensitivity
//! columns at each jump, by directional derivatives of the condition and the affect; the
//! adjoints (discrete and continuous) carry their adjoint back across each jump by the
//! saltation's transpose. A loss on a save at an event time sees the state before the jump;
//! with `save_events`, on the second save there, the state after it.

/// Which sign changes of a condition fire its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Crossing {
    /// From negative to zero or positive.
    Up,
    /// From positive to zero or negative.
    Down,
    /// Either way.
    Either,
}

impl Crossing {
    /// Whether a change from `before` to `after` (values of the condition) is a crossing in
    /// this direction. Leaving zero is not a crossing; reaching it is.
    pub(crate) fn crossed(self, before: f64, after: f64) -> bool {
        let up = before < 0.0 && after >= 0.0;
        let down = before > 0.0 && after <= 0.0;
        match self {
            Crossing::Up => up,
            Crossing::Down => down,
            Crossing::Either => up || down,
        }
    }
}

/// What happens when an event fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventAction {
    /// Apply [`crate::Model::event_affect`] and go on.
    Affect,
    /// End the solve at the event (no affect), with `RetCode::EventTerminated`.
    Terminate,
}

/// When an event fires.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// A continuous event: where its condition crosses zero in this direction, located in
    /// time on the dense output.
    Crossing(Crossing),
    /// A discrete event: after each accepted step at whose end its condition is positive
    /// (no root location; the affect applies at the step's end). Its affect should make
    /// the condition non-positive, or it fires again after the next step.
    AfterStep,
    /// At these times (a dosing schedule, say): the steps land on them exactly. Its entry
    /// of the conditions is not used.
    Times(Vec<f64>),
    /// At `first + k * period` for every integer `k` that falls in the span. Its entry of
    /// the conditions is not used.
    Periodic {
        /// One of the times (the first dose, say).
        first: f64,
        /// The time between two firings (positive).
        period: f64,
    },
}

/// The most firing times a time-triggered event may have in one span: a period far below
/// the span's length is a mistake (and would make as many steps).
const MAX_TIMES: usize = 10_000_000;

/// One event of a model: when it fires, and what it does then.
///
/// ```
/// use diffsim::{Crossing, Event};
/// // The ball reaches the floor from above (height falls through zero): bounce.
/// let floor = Event::new(Crossing::Down);
/// // Stop the solve when a concentration first exceeds its threshold.
/// let threshold = Event::new(Crossing::Up).terminate();
/// // A dose every 12 hours from time 0, and a booster at 30 hours.
/// let doses = Event::periodic(0.0, 12.0);
/// let booster = Event::at_times(vec![30.0]);
/// // Harvest whenever a population is found above its quota after a step.
/// let harvest = Event::after_step();
/// assert!(floor != threshold && doses != booster && harvest != floor);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it fires.
    pub trigger: Trigger,
    /// What it does.
    pub action: EventAction,
}

impl Event {
    /// A continuous event that applies the model's affect when its condition crosses zero
    /// in the direction `crossing`.
    pub fn new(crossing: Crossing) -> Self {
        Self { trigger: Trigger::Crossing(crossing), action: EventAction::Affect }
    }

    /// A discrete event, checked after each accepted step: it fires when its condition is
    /// positive at the step's end ([`Trigger::AfterStep`]).
    pub fn after_step() -> Self {
        Self { trigger: Trigger::AfterStep, action: EventAction::Affect }
    }

    /// An event at preset times ([`Trigger::Times`]).
    pub fn at_times(times: Vec<f64>) -> Self {
        Self { trigger: Trigger::Times(times), action: EventAction::Affect }
    }

    /// An event every `period` from `first` ([`Trigger::Periodic`]).
    pub fn periodic(first: f64, period: f64) -> Self {
        Self { trigger: Trigger::Periodic { first, period }, action: EventAction::Affect }
    }

    /// End the solve at the event instead of applying an affect.
    pub fn terminate(mut self) -> Self {
        self.action = EventAction::Terminate;
        self
    }

    /// The crossing direction of a continuous event.
    pub(crate) fn crossing(&self) -> Option<Crossing> {
        match self.trigger {
            Trigger::Crossing(c) => Some(c),
            _ => None,
        }
    }

    /// The firing times of a time-triggered event in the closed span between `t0` and
    /// `t1` (none for the others), or what is wrong with them.
    pub(crate) fn times_in(&self, (t0, t1): (f64, f64)) -> Result<Vec<f64>, String> {
        let (lo, hi) = (t0.min(t1), t0.max(t1));
        match self.trigger {
            Trigger::Times(ref ts) => match ts.iter().find(|t| !t.is_finite()) {
                Some(t) => Err(format!("a preset event time is {t}; give finite times")),
                None => Ok(ts.iter().copied().filter(|&t| t >= lo && t <= hi).collect()),
            },
            Trigger::Periodic { first, period } => {
                if !(period > 0.0 && period.is_finite() && first.is_finite()) {
                    return Err(format!(
                        "a periodic event has first time {first} and period {period}; give a finite first time and \
                         a positive, finite period"
                    ));
                }
                let (k0, k1) = (((lo - first) / period).ceil(), ((hi - first) / period).floor());
                if k1 - k0 >= MAX_TIMES as f64 {
                    return Err(format!(
                        "a periodic event with period {period} fires more than {MAX_TIMES} times in the span \
                         [{lo}, {hi}]; give a longer period"
                    ));
                }
                // Each time from `first` by one product (a running sum would drift).
                Ok((k0 as i64..=k1 as i64).map(|k| first + k as f64 * period).filter(|&t| t >= lo && t <= hi).collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// An event that fired during a solve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventRecord {
    /// When (located to a few units of rounding).
    pub t: f64,
    /// Which (its index in [`crate::Model::events`]).
    pub index: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_times_fall_in_the_closed_span_either_way() {
        let doses = Event::periodic(0.0, 12.0);
        assert_eq!(doses.times_in((0.0, 36.0)).unwrap(), vec![0.0, 12.0, 24.0, 36.0]);
        assert_eq!(doses.times_in((30.0, 5.0)).unwrap(), vec![12.0, 24.0]);
        assert_eq!(Event::periodic(1.0, 0.1).times_in((0.0, 0.35)).unwrap().len(), 4);
        assert!(Event::periodic(0.0, 0.0).times_in((0.0, 1.0)).unwrap_err().contains("positive"));
        assert!(Event::periodic(0.0, 1e-12).times_in((0.0, 1.0)).unwrap_err().contains("longer period"));
        assert!(Event::at_times(vec![1.0, f64::NAN]).times_in((0.0, 1.0)).is_err());
        assert_eq!(Event::at_times(vec![3.0, -1.0, 0.5]).times_in((0.0, 1.0)).unwrap(), vec![0.5]);
        assert!(Event::new(Crossing::Up).times_in((0.0, 1.0)).unwrap().is_empty());
    }

    #[test]
    fn crossings_count_reaching_zero_but_not_leaving_it() {
        assert!(Crossing::Up.crossed(-1.0, 0.0));
        assert!(Crossing::Up.crossed(-1.0, 2.0));
        assert!(!Crossing::Up.crossed(0.0, 2.0));
        assert!(!Crossing::Up.crossed(1.0, -2.0));
        assert!(Crossing::Down.crossed(1.0, -2.0));
        assert!(!Crossing::Down.crossed(0.0, -2.0));
        assert!(Crossing::Either.crossed(1.0, -2.0) && Crossing::Either.crossed(-1.0, 2.0));
        assert!(!Crossing::Either.crossed(1.0, 2.0));
    }
}
