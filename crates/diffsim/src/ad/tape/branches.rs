//! What a recording says about a model's branches: which of its comparisons and kinks
//! depend on the state, and which compare time with the parameters.
//!
//! Gradient methods differ in what they survive: the continuous adjoints and forward
//! sensitivities resolve a kink in the state to the solver's tolerance, while the discrete
//! adjoint differentiates the solver's steps, whose error control does not see the
//! sensitivities' error at the kink. A switch time that compares `t` with a parameter moves
//! with the parameters, which only a declared, parameter-dependent tstop makes visible to
//! the gradient. The recording knows all of this: every comparison is a guard, and `abs`,
//! `max` and `min` are operations of their own.

use super::record::{Operand, Recording, Test};
use super::Unreplayable;

/// The branches one recording of a right-hand side took part in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Branching {
    /// A comparison of values that depend on the state `u` (`if u[0] > 0`).
    pub state_comparison: bool,
    /// `abs`, `max` or `min` of a value that depends on the state (a kink in `u`).
    pub state_kink: bool,
    /// A comparison of time with a value that depends on the parameters (`t <= p[4]`).
    pub parameter_time: bool,
    /// The model read a recorded value ([`crate::Scalar::value`]) or used
    /// [`crate::Scalar::chain`]: it may branch where the recording cannot see.
    pub hidden: bool,
}

impl Branching {
    /// Whether `f` may switch or kink with the state.
    pub fn on_state(&self) -> bool {
        self.state_comparison || self.state_kink
    }
}

const U: u8 = 1;
const P: u8 = 2;
const T: u8 = 4;

/// Classify the guards and kinks of `rec`, whose inputs are `n` states, `np` parameters and
/// time, in that order.
pub(super) fn classify(rec: &Recording, n: usize, np: usize) -> Branching {
    let base = rec.base();
    let mut deps = vec![0u8; rec.vals.len()];
    deps[1..=n].fill(U);
    deps[n + 1..=n + np].fill(P);
    deps[n + np + 1] = T;
    let mut out = Branching {
        hidden: matches!(rec.unreplayable, Some(Unreplayable::ValueRead | Unreplayable::Chain)),
        ..Branching::default()
    };
    for (k, (op, e)) in rec.ops.iter().zip(&rec.edges).enumerate() {
        let d = deps[e.a as usize] | deps[e.b as usize];
        deps[base + k] = d;
        if matches!(op, super::record::Op::Abs | super::record::Op::Max | super::record::Op::Min) && d & U != 0 {
            out.state_kink = true;
        }
    }
    let of = |o: Operand| match o {
        Operand::Node(i) => deps[i as usize],
        Operand::Const(_) => 0,
    };
    for g in rec.guards.iter().filter(|g| g.test != Test::Finite) {
        let d = of(g.lhs) | of(g.rhs);
        if d & U != 0 {
            out.state_comparison = true;
        } else if d & T != 0 && d & P != 0 {
            out.parameter_time = true;
        }
    }
    out
}
