//! Reverse-mode AD: a tape that records a model's right-hand side once and replays it.
//!
//! # Recording
//!
//! [`TapeVar`] is a [`Scalar`] that, while a recording is active on the thread, appends every
//! operation to it: which nodes it read, its value and its local partial derivatives. A
//! `TapeVar` is just a value with a node index (it has to be `Copy + Send + Sync`), and the
//! recording lives in a thread-local that [`RhsTape`] installs around one call of
//! [`Model::rhs`](crate::Model::rhs). Constants (plain `f64`s and [`Scalar::from_f64`]) are
//! not nodes: an operation between a recorded number and a constant stores the constant in
//! the instruction, so `x * 2.0` (or `x * T::from_f64(2.0)`) costs one instruction and
//! `T::from_f64(a) * b` of two constants costs none.
//!
//! The inputs are `u`, `p` and `t`, so time is a recorded value too: a comparison on `t`
//! is seen like any other.
//!
//! # Reverse sweep, Jacobians, JVPs
//!
//! With `adj` the adjoint of every node, seeded with `w` on the outputs, one backward pass
//! over the operations (`adj[a] += da * adj[k]`, `adj[b] += db * adj[k]`) gives
//! `(df/du)^T w`, `(df/dp)^T w` and `(df/dt)^T w` at once, at a cost of a few times one
//! evaluation of `f`, whatever the number of parameters. [`RhsTape::jacobian`] takes one
//! sweep per output (row) over the same recording; [`RhsTape::jvp`] pushes a tangent forward
//! through the recorded partials.
//!
//! # Guards: a replay never silently follows the wrong branch
//!
//! A model branches through the scalar's comparisons (`t <= T::from_f64(1.0)`). While
//! recording, every comparison involving a recorded number (`partial_cmp`, `<`, `<=`, `>`,
//! `>=`, `==`, and `is_finite`) is kept as a *guard*: the compared nodes (or constants), the
//! test, and its outcome. Operations whose derivative depends on where their argument lies
//! (`abs`, `max`, `min`, `powf`'s `ln x` term, functions given to [`Scalar::chain_fn`]) are
//! recorded as operations that re-evaluate that choice on replay, so they need no guard.
//!
//! [`TapeMode::Compiled`] replays the recorded operation list at a new `(u, p, t)`: a flat
//! loop over a compact instruction array that rewrites values and partials in place (no
//! allocation, no thread-local, no dispatch through the model). Each guard is re-tested as
//! soon as the replay has computed its operands; if any comes out differently the replay is
//! abandoned and the right-hand side is recorded afresh at the new point
//! ([`TapeStats::guard_failures`] counts these). [`TapeMode::Rerecord`] records at every
//! point: slower, and the reference the compiled mode is tested against.
//!
//! What the tape cannot see, it refuses to replay. A model that reads a recorded number's
//! value ([`Scalar::value`], and so could branch on it or make a constant of it), uses
//! [`Scalar::chain`] (value and derivative given as plain numbers; use
//! [`Scalar::chain_fn`], which hands over the function), or mixes in numbers of another
//! recording gets a recording marked [`Unreplayable`]: the compiled mode then re-records at
//! every new point, which is always right. Identical inputs (bit for bit) reuse the current
//! values in the compiled mode.
//!
//! # Cost
//!
//! Recording is one thread-local pointer load and three pushes onto buffers that keep their
//! capacity per operation; a compiled replay plus the reverse sweep touches each operation
//! twice, with no allocation after the first recording. A VJP on the tape costs the same
//! whatever the number of inputs, where forward-mode duals cost one pass per eight inputs:
//! the tape wins on large models, duals on small ones (`benches/tape.rs`; the measurements
//! are in `bench/peers/README.md`, "Measurements behind the library's defaults";
//! [`crate::ad::VjpMethod`] documents which method `Auto` picks).
//!
//! Why our own: Rust has no maintained scalar reverse-mode AD crate that runs generic
//! `Scalar` code, records comparisons, and replays without allocation. The recorder is
//! reached through a thread-local raw pointer (the only `unsafe` here, argued at its use):
//! a `RefCell` there (a borrow per operation) made recording about a quarter slower, and
//! the operators are written without closures, which the compiler did not inline (that
//! doubled the recording time).
//!
//! # Example
//!
//! ```
//! use diffsim::ad::{RhsTape, TapeMode};
//! use diffsim::models::LvPiecewise;
//!
//! // x' = a(t) x - x y, y' = -a(t) y + x y, with a(t) = p[0] for t <= 1, p[1] on (1, 2], ...
//! let model = LvPiecewise;
//! let (u, p) = ([1.0, 2.0], [0.5, 1.5, 2.5, 3.5]);
//! let mut tape = RhsTape::new(&model, TapeMode::Compiled);
//! let (mut du, mut dp) = ([0.0; 2], [0.0; 4]);
//!
//! tape.at(&model, &u, &p, 0.5).unwrap(); // records; t <= 1 is kept as a guard
//! tape.vjp(&[1.0, 0.0], &mut du, &mut dp).unwrap();
//! assert_eq!(dp, [1.0, 0.0, 0.0, 0.0]); // d f_0 / d p_0 = x
//!
//! tape.at(&model, &u, &p, 0.75).unwrap(); // same branch: replayed
//! assert_eq!(tape.stats().replays, 1);
//!
//! tape.at(&model, &u, &p, 1.5).unwrap(); // the guard t <= 1 fails: recorded afresh
//! assert_eq!(tape.stats().guard_failures, 1);
//! let mut dp = [0.0; 4];
//! tape.vjp(&[1.0, 0.0], &mut [0.0; 2], &mut dp).unwrap();
//! assert_eq!(dp, [0.0, 1.0, 0.0, 0.0]); // now the rate is p_1
//! ```

mod branches;
mod record;
mod replay;

pub use branches::Branching;
pub use record::Unreplayable;
pub use replay::{RhsTape, TapeMode, TapeStats};

use crate::scalar::Scalar;
use record::{active, eval, with_active, Op, Operand, Recording, Test, SINK};
use std::cmp::Ordering;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A reverse-mode AD number: a value and, while a recording is active, the node that
/// produced it.
///
/// Outside a recording a `TapeVar` is just its value (operations compute values only), so
/// it never panics; inside one, every operation is recorded (see [the module docs](crate::ad::tape)).
///
/// ```
/// use diffsim::{ad::TapeVar, Scalar};
/// let c = TapeVar::constant(2.0);
/// assert_eq!((c * c + TapeVar::from_f64(1.0)).value(), 5.0);
/// // Plain numbers mix in on either side of a `TapeVar` (in code generic over `Scalar`,
/// // only on the right: `x * 2.0`).
/// assert_eq!((2.0 * c + 1.0).value(), 5.0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TapeVar {
    v: f64,
    /// Node index within recording `gen`.
    idx: u32,
    /// The recording this number belongs to; 0 for constants.
    gen: u32,
}

impl TapeVar {
    /// A constant (not a node of any recording).
    #[inline(always)]
    pub const fn constant(v: f64) -> Self {
        Self { v, idx: SINK, gen: 0 }
    }

    /// Whether this number is a node of a recording (not a constant).
    #[inline(always)]
    pub fn is_recorded(self) -> bool {
        self.gen != 0
    }
}

/// The binary operations.
#[derive(Clone, Copy)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

impl Bin {
    /// The value alone.
    #[inline(always)]
    fn plain(self, x: f64, y: f64) -> f64 {
        match self {
            Bin::Add => x + y,
            Bin::Sub => x - y,
            Bin::Mul => x * y,
            Bin::Div => x / y,
            Bin::Pow => x.powf(y),
            Bin::Max => eval(Op::Max, x, y).0,
            Bin::Min => eval(Op::Min, x, y).0,
        }
    }
}

/// A binary operation: values only when neither side is recorded, else one instruction
/// (with the constant side, if any, as an immediate).
///
/// Everything here is `inline(always)` with `kind` known at each call site, so an operator
/// compiles to its own few instructions (closures or a runtime `kind` cost several times
/// more per operation).
#[inline(always)]
fn binary(x: TapeVar, y: TapeVar, kind: Bin) -> TapeVar {
    if x.gen == 0 && y.gen == 0 {
        return TapeVar::constant(kind.plain(x.v, y.v));
    }
    // SAFETY: `record_binary` only appends to the recording.
    match unsafe { active() } {
        Some(r) => record_binary(r, x, y, kind),
        None => TapeVar::constant(kind.plain(x.v, y.v)),
    }
}

#[inline(always)]
fn record_binary(r: &mut Recording, x: TapeVar, y: TapeVar, kind: Bin) -> TapeVar {
    match (r.arg(x), r.arg(y)) {
        (Some(a), Some(b)) => {
            let op = match kind {
                Bin::Add => Op::Add,
                Bin::Sub => Op::Sub,
                Bin::Mul => Op::Mul,
                Bin::Div => Op::Div,
                Bin::Pow => Op::Powf,
                Bin::Max => Op::Max,
                Bin::Min => Op::Min,
            };
            r.push(op, a, b, x.v, y.v)
        }
        // A recorded number and a constant `c`.
        (Some(a), None) => {
            let c = y.v;
            let op = match kind {
                Bin::Add => Op::AddC(c),
                // x - c == x + (-c) exactly.
                Bin::Sub => Op::AddC(-c),
                Bin::Mul | Bin::Div if c == 1.0 => return x,
                Bin::Mul => Op::MulC(c),
                Bin::Div => Op::DivC(c),
                Bin::Pow => Op::PowC(c),
                Bin::Max | Bin::Min => {
                    let b = r.constant_node(c);
                    return r.push(if let Bin::Max = kind { Op::Max } else { Op::Min }, a, b, x.v, c);
                }
            };
            r.push(op, a, SINK, x.v, 0.0)
        }
        (None, Some(b)) => {
            let c = x.v;
            let op = match kind {
                // c + x == x + c exactly.
                Bin::Add => Op::AddC(c),
                Bin::Sub => Op::SubFromC(c),
                Bin::Mul if c == 1.0 => return y,
                Bin::Mul => Op::MulC(c),
                Bin::Div => Op::DivIntoC(c),
                Bin::Pow => Op::CPow(c),
                Bin::Max | Bin::Min => {
                    let a = r.constant_node(c);
                    return r.push(if let Bin::Max = kind { Op::Max } else { Op::Min }, a, b, c, y.v);
                }
            };
            r.push(op, b, SINK, y.v, 0.0)
        }
        (None, None) => TapeVar::constant(kind.plain(x.v, y.v)),
    }
}

/// A unary operation.
#[inline(always)]
fn unary(x: TapeVar, op: Op) -> TapeVar {
    if x.gen == 0 {
        return TapeVar::constant(eval(op, x.v, 0.0).0);
    }
    // SAFETY: `record_unary` only appends to the recording.
    match unsafe { active() } {
        Some(r) => record_unary(r, x, op),
        None => TapeVar::constant(eval(op, x.v, 0.0).0),
    }
}

#[inline(always)]
fn record_unary(r: &mut Recording, x: TapeVar, op: Op) -> TapeVar {
    match r.arg(x) {
        Some(a) => r.push(op, a, SINK, x.v, 0.0),
        None => TapeVar::constant(eval(op, x.v, 0.0).0),
    }
}

/// A comparison: its outcome, recorded as a guard when a recorded number takes part.
#[inline]
fn compare(x: TapeVar, y: TapeVar, test: Test) -> i8 {
    let outcome = test.outcome(x.v, y.v);
    if x.gen != 0 || y.gen != 0 {
        with_active(|r| {
            let (a, b) = (r.arg(x), r.arg(y));
            if a.is_some() || b.is_some() {
                let side = |n: Option<u32>, v: f64| n.map_or(Operand::Const(v), Operand::Node);
                r.guard(side(a, x.v), side(b, y.v), test, outcome);
            }
        });
    }
    outcome
}

impl Add for TapeVar {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        binary(self, o, Bin::Add)
    }
}

impl Sub for TapeVar {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        binary(self, o, Bin::Sub)
    }
}

impl Mul for TapeVar {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        binary(self, o, Bin::Mul)
    }
}

impl Div for TapeVar {
    type Output = Self;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        binary(self, o, Bin::Div)
    }
}

impl Neg for TapeVar {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        unary(self, Op::Neg)
    }
}

macro_rules! assign_op {
    ($tr:ident, $m:ident, $op:tt) => {
        impl $tr for TapeVar {
            #[inline(always)]
            fn $m(&mut self, o: Self) {
                *self = *self $op o;
            }
        }
    };
}
assign_op!(AddAssign, add_assign, +);
assign_op!(SubAssign, sub_assign, -);
assign_op!(MulAssign, mul_assign, *);
assign_op!(DivAssign, div_assign, /);

// Arithmetic with a plain-number constant: the same recording as the operation with
// `TapeVar::constant(c)`, one instruction with `c` as its immediate (`x * c` is `MulC(c)`,
// `x - c` is `AddC(-c)`, `c / x` is `DivIntoC(c)`), so a replay and the reverse sweep see
// the constant exactly as before.
macro_rules! const_op {
    ($tr:ident, $m:ident, $kind:ident) => {
        impl $tr<f64> for TapeVar {
            type Output = Self;
            #[inline(always)]
            fn $m(self, c: f64) -> Self {
                binary(self, Self::constant(c), Bin::$kind)
            }
        }
        impl $tr<TapeVar> for f64 {
            type Output = TapeVar;
            #[inline(always)]
            fn $m(self, x: TapeVar) -> TapeVar {
                binary(TapeVar::constant(self), x, Bin::$kind)
            }
        }
    };
}
const_op!(Add, add, Add);
const_op!(Sub, sub, Sub);
const_op!(Mul, mul, Mul);
const_op!(Div, div, Div);

macro_rules! assign_op_f64 {
    ($tr:ident, $m:ident, $op:tt) => {
        impl $tr<f64> for TapeVar {
            #[inline(always)]
            fn $m(&mut self, c: f64) {
                *self = *self $op c;
            }
        }
    };
}
assign_op_f64!(AddAssign, add_assign, +);
assign_op_f64!(SubAssign, sub_assign, -);
assign_op_f64!(MulAssign, mul_assign, *);
assign_op_f64!(DivAssign, div_assign, /);

impl PartialEq for TapeVar {
    /// Compares values; recorded as a guard.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        compare(*self, *other, Test::Eq) == 1
    }
}

impl PartialOrd for TapeVar {
    /// Compares values; recorded as a guard.
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match compare(*self, *other, Test::Cmp) {
            -1 => Some(Ordering::Less),
            0 => Some(Ordering::Equal),
            1 => Some(Ordering::Greater),
            _ => None,
        }
    }
    #[inline]
    fn lt(&self, other: &Self) -> bool {
        compare(*self, *other, Test::Lt) == 1
    }
    #[inline]
    fn le(&self, other: &Self) -> bool {
        compare(*self, *other, Test::Le) == 1
    }
    #[inline]
    fn gt(&self, other: &Self) -> bool {
        compare(*self, *other, Test::Gt) == 1
    }
    #[inline]
    fn ge(&self, other: &Self) -> bool {
        compare(*self, *other, Test::Ge) == 1
    }
}

impl Scalar for TapeVar {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        Self::constant(x)
    }
    /// The value. Reading a recorded number's value makes its recording unreplayable
    /// ([`Unreplayable::ValueRead`]): the model may branch on it where no guard sees.
    #[inline]
    fn value(self) -> f64 {
        if self.gen != 0 {
            with_active(|r| {
                if r.gen == self.gen {
                    r.mark(Unreplayable::ValueRead);
                }
            });
        }
        self.v
    }
    #[inline(always)]
    fn scale(self, c: f64) -> Self {
        if c == 1.0 {
            self
        } else {
            unary(self, Op::MulC(c))
        }
    }
    #[inline]
    fn exp(self) -> Self {
        unary(self, Op::Exp)
    }
    #[inline]
    fn ln(self) -> Self {
        unary(self, Op::Ln)
    }
    #[inline]
    fn sin(self) -> Self {
        unary(self, Op::Sin)
    }
    #[inline]
    fn cos(self) -> Self {
        unary(self, Op::Cos)
    }
    #[inline]
    fn tanh(self) -> Self {
        unary(self, Op::Tanh)
    }
    #[inline]
    fn sqrt(self) -> Self {
        unary(self, Op::Sqrt)
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        match n {
            0 => Self::constant(1.0),
            1 => self,
            _ => unary(self, Op::Powi(n)),
        }
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        binary(self, e, Bin::Pow)
    }
    #[inline]
    fn abs(self) -> Self {
        unary(self, Op::Abs)
    }
    /// Records one operation whose value and derivative are fixed numbers: the recording
    /// becomes unreplayable ([`Unreplayable::Chain`]). Prefer [`Scalar::chain_fn`].
    #[inline]
    fn chain(self, value: f64, derivative: f64) -> Self {
        if self.gen == 0 {
            return Self::constant(value);
        }
        with_active(|r| match r.arg(self) {
            Some(a) => {
                r.mark(Unreplayable::Chain);
                r.push_evaluated(Op::Chain, a, SINK, value, derivative, 0.0)
            }
            None => Self::constant(value),
        })
        .unwrap_or(Self::constant(value))
    }
    /// Records `g` itself, so a replay re-evaluates it at the new argument.
    #[inline]
    fn chain_fn(self, g: fn(f64) -> (f64, f64)) -> Self {
        // Evaluate outside the recorder's borrow: `g` is user code.
        let (v, d) = g(self.v);
        if self.gen == 0 {
            return Self::constant(v);
        }
        with_active(|r| match r.arg(self) {
            Some(a) => r.push_evaluated(Op::Map(g), a, SINK, v, d, 0.0),
            None => Self::constant(v),
        })
        .unwrap_or(Self::constant(v))
    }
    /// `self` when `self >= other`, else `other`, re-evaluated on replay.
    #[inline]
    fn max(self, other: Self) -> Self {
        binary(self, other, Bin::Max)
    }
    /// `self` when `self <= other`, else `other`, re-evaluated on replay.
    #[inline]
    fn min(self, other: Self) -> Self {
        binary(self, other, Bin::Min)
    }
    /// Whether the value is finite; recorded as a guard.
    #[inline]
    fn is_finite(self) -> bool {
        compare(self, Self::constant(0.0), Test::Finite) == 1
    }
}

#[cfg(test)]
mod tests;
