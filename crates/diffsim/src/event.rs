//! Events: where a model switches. Part of the model contract ([`crate::Model::events`]).
//!
//! An event is a condition `g_i(u, p, t)`, written once for any number type in
//! [`crate::Model::event_conditions`], whose zero crossing changes the model: the state
//! jumps ([`crate::Model::event_affect`]: a ball bounces, a valve closes) or the solve ends
//! there ([`Event::terminate`]).
//!
//! The solvers check every condition on every accepted step: at its end and at a few
//! interior points of the step's dense output (`SolveOptions::event_samples`), so that a
//! condition that crosses zero and back within one step is seen. A sign change in the
//! event's [`Crossing`] direction is located on the dense output by a bracketing root
//! finder to a few units of rounding in `t`; the step is cut there, the affect applied, and
//! the method starts again from the new state. Several crossings in one step are taken in
//! time order; crossings at the same time fire together, in index order.
//!
//! Conventions:
//! - A condition exactly zero at the start of the span does not fire there: it fires when
//!   it next crosses zero.
//! - After an event, its own condition sits at zero (to rounding). It counts as being on
//!   the side the flow leaves zero towards, so the event fires at its next crossing and
//!   not at once (a ball bounced upwards fires again when it next falls through the floor).
//! - At an event time, save times and the dense output give the state before the jump (the
//!   left limit); `SolveOptions::save_events(true)` saves both sides.
//!
//! Gradients: forward-mode AD (`SensAlg::ForwardAd`, explicit methods) differentiates
//! through events exactly. The event time moves with the inputs by the implicit function
//! theorem, `dt = -(g_u du + g_p dp) / (g_u f + g_t)`; the jump is applied at that moving
//! time and the state after it read back at the fixed one, which gives the sensitivities'
//! saltation `S+ = a_u (S- + f- dt) + a_p + a_t dt - f+ dt`. A crossing that only grazes
//! zero (`g_u f + g_t = 0`) has no finite derivative. The other gradient methods refuse
//! models with events for now, saying what to use.

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

/// One event of a model: which crossings of its condition fire it, and what it does.
///
/// ```
/// use diffsim::{Crossing, Event};
/// // The ball reaches the floor from above (height falls through zero): bounce.
/// let floor = Event::new(Crossing::Down);
/// // Stop the solve when a concentration first exceeds its threshold.
/// let threshold = Event::new(Crossing::Up).terminate();
/// assert!(floor != threshold);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// The sign changes that fire it.
    pub crossing: Crossing,
    /// What it does.
    pub action: EventAction,
}

impl Event {
    /// A continuous event that applies the model's affect when its condition crosses zero
    /// in the direction `crossing`.
    pub fn new(crossing: Crossing) -> Self {
        Self { crossing, action: EventAction::Affect }
    }

    /// End the solve at the event instead of applying an affect.
    pub fn terminate(mut self) -> Self {
        self.action = EventAction::Terminate;
        self
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
