//! Models that switch: their events (see [`crate::event`]) change the state where a
//! condition crosses zero or at preset times.

use crate::event::{Crossing, Event};
use crate::problem::Model;
use crate::scalar::Scalar;

/// A ball bouncing on a floor, `u = [height, velocity]`, `p = [g, e]` (gravity and the
/// coefficient of restitution): `h' = v`, `v' = -g`; when the height falls through zero
/// the velocity becomes `-e v`.
///
/// Dropped from rest at height `h0`, it first reaches the floor at `sqrt(2 h0 / g)` with
/// speed `sqrt(2 g h0)`; after each bounce the speed is `e` times the last, and each flight
/// lasts `2 e^k v_0 / g`, which is what the tests check against.
#[derive(Clone, Copy, Debug, Default)]
pub struct BouncingBall;

impl Model for BouncingBall {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = u[1];
        du[1] = -p[0];
    }
    fn events(&self) -> Vec<Event> {
        vec![Event::new(Crossing::Down)]
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], _p: &[T], _t: T) {
        g[0] = u[0];
    }
    fn event_affect<T: Scalar>(&self, _index: usize, u: &mut [T], p: &[T], _t: T) {
        u[1] = -(p[1] * u[1]);
    }
}

/// A one-compartment pharmacokinetic model with repeated oral doses, `u = [gut, central]`
/// (amounts of drug), `p = [ka, ke]` (absorption and elimination rates):
/// `gut' = -ka gut`, `central' = ka gut - ke central`; `dose` is added to the gut at
/// `0, interval, 2 interval, ...` (`doses` of them: a scheduled event).
///
/// One dose `D` at time 0 gives `central(t) = D ka / (ka - ke) (exp(-ke t) - exp(-ka t))`
/// (the Bateman function, for `ka != ke`); the model is linear, so a schedule's solution
/// is the sum of that over the doses given so far, which is what the tests check against.
#[derive(Clone, Copy, Debug)]
pub struct OralDosing {
    /// The amount of each dose.
    pub dose: f64,
    /// The time between doses.
    pub interval: f64,
    /// How many doses are given.
    pub doses: usize,
}

impl Default for OralDosing {
    /// 100 units every 12 hours, six times.
    fn default() -> Self {
        Self { dose: 100.0, interval: 12.0, doses: 6 }
    }
}

impl Model for OralDosing {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        let absorbed = p[0] * u[0];
        du[0] = -absorbed;
        du[1] = absorbed - p[1] * u[1];
    }
    fn events(&self) -> Vec<Event> {
        vec![Event::at_times((0..self.doses).map(|k| k as f64 * self.interval).collect())]
    }
    fn event_affect<T: Scalar>(&self, _index: usize, u: &mut [T], _p: &[T], _t: T) {
        u[0] += T::from_f64(self.dose);
    }
}

/// A room heated by a thermostat with hysteresis, `u = [temperature, heater]` (the heater
/// 1 when on, 0 when off: a state of rate zero that only the events change), `p = [k, power]`:
/// `temperature' = -k (temperature - outside) + power heater`. Two conditions: rising
/// through `high` switches the heater off, falling through `low` switches it on.
///
/// Between switches the temperature relaxes to `outside + power heater / k`, so each phase
/// lasts `ln((T_start - T_eq) / (T_end - T_eq)) / k`, which is what the tests check against.
#[derive(Clone, Copy, Debug)]
pub struct Thermostat {
    /// The outside temperature.
    pub outside: f64,
    /// The temperature below which the heater comes on.
    pub low: f64,
    /// The temperature above which it goes off.
    pub high: f64,
}

impl Default for Thermostat {
    /// 5 degrees outside, a band from 19 to 21.
    fn default() -> Self {
        Self { outside: 5.0, low: 19.0, high: 21.0 }
    }
}

impl Model for Thermostat {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        2
    }
    #[inline(always)]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = p[1] * u[1] - p[0] * (u[0] - T::from_f64(self.outside));
        du[1] = T::zero();
    }
    fn events(&self) -> Vec<Event> {
        vec![Event::new(Crossing::Up), Event::new(Crossing::Down)]
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], _p: &[T], _t: T) {
        g[0] = u[0] - T::from_f64(self.high);
        g[1] = u[0] - T::from_f64(self.low);
    }
    fn event_affect<T: Scalar>(&self, index: usize, u: &mut [T], _p: &[T], _t: T) {
        u[1] = if index == 0 { T::zero() } else { T::one() };
    }
}
