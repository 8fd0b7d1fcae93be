//! Models that switch: their events (see [`crate::event`]) change the state where a
//! condition crosses zero.

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
