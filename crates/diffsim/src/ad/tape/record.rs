//! The recording: the instruction format, the guards, and the thread-local recorder that
//! [`TapeVar`] operations write to.
//!
//! Node numbering: node 0 is a sink (value 0, never read by anything that matters; unary
//! operations point their unused second argument at it, so the reverse sweep needs no
//! branch on arity), nodes `1..=n_inputs` are the inputs, and operation `k` produces node
//! `1 + n_inputs + k`.

use super::TapeVar;
use std::cell::Cell;
use std::cmp::Ordering;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

/// The sink node's index.
pub(super) const SINK: u32 = 0;

/// One recorded operation. Constants of the common binary operations are immediates, so
/// `T::from_f64` never adds a node; the rare ones (`max`, `min`) get a [`Op::Const`] node.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    /// `x + y`.
    Add,
    /// `x - y`.
    Sub,
    /// `x * y`.
    Mul,
    /// `x / y`.
    Div,
    /// `x + c` (also `c + x` and `x - c` as `x + (-c)`, both exact in IEEE arithmetic).
    AddC(f64),
    /// `c - x`.
    SubFromC(f64),
    /// `x * c`.
    MulC(f64),
    /// `x / c`.
    DivC(f64),
    /// `c / x`.
    DivIntoC(f64),
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// `ln x`.
    Ln,
    /// `sin x`.
    Sin,
    /// `cos x`.
    Cos,
    /// `tanh x`.
    Tanh,
    /// `sqrt x`.
    Sqrt,
    /// `x^n`.
    Powi(i32),
    /// `x^y`.
    Powf,
    /// `x^c`.
    PowC(f64),
    /// `c^x`.
    CPow(f64),
    /// A constant operand of a rare binary operation.
    Const(f64),
    /// `|x|`: re-evaluated on replay, so the sign is never stale.
    Abs,
    /// `max(x, y)` (`x` on ties, like [`crate::Scalar::max`]): re-evaluated on replay.
    Max,
    /// `min(x, y)` (`x` on ties): re-evaluated on replay.
    Min,
    /// `g(x)` for a function that returns value and derivative ([`crate::Scalar::chain_fn`]).
    Map(fn(f64) -> (f64, f64)),
    /// [`crate::Scalar::chain`]: value and derivative were given as numbers, so the operation
    /// cannot be re-evaluated at other inputs (a recording holding one is not replayable).
    Chain,
}

/// Value and the two local partial derivatives of `op` at arguments `x`, `y` (`y` unused by
/// unary operations). The one definition serves recording and replay, so a replay gives
/// bit-for-bit the numbers a fresh recording would.
#[inline(always)]
pub(super) fn eval(op: Op, x: f64, y: f64) -> (f64, f64, f64) {
    match op {
        Op::Add => (x + y, 1.0, 1.0),
        Op::Sub => (x - y, 1.0, -1.0),
        Op::Mul => (x * y, y, x),
        Op::Div => {
            let v = x / y;
            (v, 1.0 / y, -v / y)
        }
        Op::AddC(c) => (x + c, 1.0, 0.0),
        Op::SubFromC(c) => (c - x, -1.0, 0.0),
        Op::MulC(c) => (x * c, c, 0.0),
        Op::DivC(c) => (x / c, 1.0 / c, 0.0),
        Op::DivIntoC(c) => {
            let v = c / x;
            (v, -v / x, 0.0)
        }
        Op::Neg => (-x, -1.0, 0.0),
        Op::Exp => {
            let e = x.exp();
            (e, e, 0.0)
        }
        Op::Ln => (x.ln(), 1.0 / x, 0.0),
        Op::Sin => (x.sin(), x.cos(), 0.0),
        Op::Cos => (x.cos(), -x.sin(), 0.0),
        Op::Tanh => {
            let t = x.tanh();
            (t, 1.0 - t * t, 0.0)
        }
        Op::Sqrt => {
            let s = x.sqrt();
            (s, 0.5 / s, 0.0)
        }
        Op::Powi(n) => (x.powi(n), n as f64 * x.powi(n.saturating_sub(1)), 0.0),
        Op::Powf => {
            let f = x.powf(y);
            let dy = if x > 0.0 { x.ln() * f } else { 0.0 };
            (f, y * x.powf(y - 1.0), dy)
        }
        Op::PowC(c) => (x.powf(c), c * x.powf(c - 1.0), 0.0),
        Op::CPow(c) => {
            let f = c.powf(x);
            (f, if c > 0.0 { c.ln() * f } else { 0.0 }, 0.0)
        }
        Op::Const(c) => (c, 0.0, 0.0),
        Op::Abs => {
            if x < 0.0 {
                (-x, -1.0, 0.0)
            } else {
                (x, 1.0, 0.0)
            }
        }
        Op::Max => {
            if x >= y {
                (x, 1.0, 0.0)
            } else {
                (y, 0.0, 1.0)
            }
        }
        Op::Min => {
            if x <= y {
                (x, 1.0, 0.0)
            } else {
                (y, 0.0, 1.0)
            }
        }
        Op::Map(g) => {
            let (v, d) = g(x);
            (v, d, 0.0)
        }
        // Never replayed (the recording is marked unreplayable); NaN makes a bug loud.
        Op::Chain => (f64::NAN, f64::NAN, 0.0),
    }
}

/// The arguments and local partials of one operation: all the reverse sweep reads.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Edge {
    pub a: u32,
    pub b: u32,
    pub da: f64,
    pub db: f64,
}

/// One side of a guard.
#[derive(Clone, Copy, Debug)]
pub(super) enum Operand {
    Node(u32),
    Const(f64),
}

impl Operand {
    #[inline(always)]
    pub fn value(self, vals: &[f64]) -> f64 {
        match self {
            Operand::Node(i) => vals[i as usize],
            Operand::Const(c) => c,
        }
    }
}

/// What a guard tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Test {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    /// `partial_cmp`; the outcome is [`encode_ordering`] of the result.
    Cmp,
    /// `is_finite` of the left side.
    Finite,
}

/// `Option<Ordering>` as a small integer (None is NaN involved).
#[inline(always)]
pub(super) fn encode_ordering(o: Option<Ordering>) -> i8 {
    match o {
        Some(Ordering::Less) => -1,
        Some(Ordering::Equal) => 0,
        Some(Ordering::Greater) => 1,
        None => 2,
    }
}

impl Test {
    /// The outcome of this test on values `x`, `y`.
    #[inline(always)]
    pub fn outcome(self, x: f64, y: f64) -> i8 {
        match self {
            Test::Lt => (x < y) as i8,
            Test::Le => (x <= y) as i8,
            Test::Gt => (x > y) as i8,
            Test::Ge => (x >= y) as i8,
            Test::Eq => (x == y) as i8,
            Test::Cmp => encode_ordering(x.partial_cmp(&y)),
            Test::Finite => x.is_finite() as i8,
        }
    }
}

/// A comparison made while recording: which values were compared, how, and what came out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Guard {
    /// How many operations had been recorded when the comparison was made: a replay can test
    /// the guard as soon as it has replayed this many.
    pub at: u32,
    pub lhs: Operand,
    pub rhs: Operand,
    pub test: Test,
    pub outcome: i8,
}

impl Guard {
    /// Whether the guard comes out as recorded on the values `vals`.
    #[inline(always)]
    pub fn holds(&self, vals: &[f64]) -> bool {
        self.test.outcome(self.lhs.value(vals), self.rhs.value(vals)) == self.outcome
    }
}

/// Why a recording cannot be replayed at other inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreplayable {
    /// The model called [`crate::Scalar::chain`], whose value and derivative are plain
    /// numbers the tape cannot recompute (use [`crate::Scalar::chain_fn`] instead).
    Chain,
    /// The model read a recorded number's value ([`crate::Scalar::value`]) and may have
    /// branched on it or turned it into a constant, which the tape cannot see.
    ValueRead,
    /// A number from another recording (or from outside any) was mixed in.
    Foreign,
}

/// A recorded operation list with its values, partials and guards.
#[derive(Clone, Debug, Default)]
pub(super) struct Recording {
    /// The recording's identity (0: no recording is active).
    pub gen: u32,
    /// Number of inputs (nodes `1..=n_inputs`).
    pub n_inputs: usize,
    pub ops: Vec<Op>,
    pub edges: Vec<Edge>,
    /// Values of every node: the sink, the inputs, then one per operation.
    pub vals: Vec<f64>,
    pub guards: Vec<Guard>,
    /// Set when the recording holds something a replay cannot re-evaluate.
    pub unreplayable: Option<Unreplayable>,
}

impl Recording {
    /// Start a new recording over `inputs`, reusing the buffers.
    pub fn reset(&mut self, gen: u32, inputs: impl Iterator<Item = f64>) {
        self.gen = gen;
        self.ops.clear();
        self.edges.clear();
        self.vals.clear();
        self.guards.clear();
        self.unreplayable = None;
        self.vals.push(0.0);
        self.vals.extend(inputs);
        self.n_inputs = self.vals.len() - 1;
    }

    /// Index of the first operation's node.
    #[inline(always)]
    pub fn base(&self) -> usize {
        1 + self.n_inputs
    }

    /// `x` as an argument of this recording: a node, or a constant (a number of another
    /// recording is taken by value, and makes this one unreplayable).
    #[inline(always)]
    pub fn arg(&mut self, x: TapeVar) -> Option<u32> {
        if x.gen == 0 {
            None
        } else if x.gen == self.gen {
            Some(x.idx)
        } else {
            self.mark(Unreplayable::Foreign);
            None
        }
    }

    /// Note why this recording cannot be replayed (the first reason is kept).
    #[inline(always)]
    pub fn mark(&mut self, why: Unreplayable) {
        if self.unreplayable.is_none() {
            self.unreplayable = Some(why);
        }
    }

    /// Append an operation whose value and partials are already known.
    #[inline(always)]
    pub fn push_evaluated(&mut self, op: Op, a: u32, b: u32, v: f64, da: f64, db: f64) -> TapeVar {
        let idx = self.vals.len() as u32;
        self.ops.push(op);
        self.edges.push(Edge { a, b, da, db });
        self.vals.push(v);
        TapeVar { v, idx, gen: self.gen }
    }

    /// Append an operation on nodes `a`, `b` whose values are `x`, `y`.
    #[inline(always)]
    pub fn push(&mut self, op: Op, a: u32, b: u32, x: f64, y: f64) -> TapeVar {
        let (v, da, db) = eval(op, x, y);
        self.push_evaluated(op, a, b, v, da, db)
    }

    /// Append a constant node (for the rare binary operations without an immediate form).
    #[inline]
    pub fn constant_node(&mut self, c: f64) -> u32 {
        self.push_evaluated(Op::Const(c), SINK, SINK, c, 0.0, 0.0).idx
    }

    /// Record a comparison.
    #[inline]
    pub fn guard(&mut self, lhs: Operand, rhs: Operand, test: Test, outcome: i8) {
        let at = self.ops.len() as u32;
        self.guards.push(Guard { at, lhs, rhs, test, outcome });
    }
}

thread_local! {
    /// The recording [`TapeVar`] operations on this thread append to (null: none). A plain
    /// pointer in a `Cell`, so reaching it costs one thread-local load, with no lazy
    /// initialisation and no borrow flag: recording is dominated by this access.
    static ACTIVE: Cell<*mut Recording> = const { Cell::new(std::ptr::null_mut()) };
}

/// This thread's active recording, if any.
///
/// # Safety
/// The reference must not outlive the current operation, and no user code may run while it
/// is held (user code could record, and alias it). The callers in this module only append
/// to the recording and return.
#[inline(always)]
pub(super) unsafe fn active<'a>() -> Option<&'a mut Recording> {
    let p = ACTIVE.with(Cell::get);
    // SAFETY: a non-null pointer was set by `Installed::new` from a `&mut Recording` that
    // the `Installed` guard keeps borrowed (so nothing else touches it) until its drop
    // resets the pointer, also on unwinding. The pointer is thread-local, and the caller
    // keeps the reference for one operation only, so no two `&mut` exist at once.
    unsafe { p.as_mut() }
}

/// Run `f` on this thread's active recording; `None` when there is none (callers then
/// compute values only). `f` must only append to the recording (see [`active`]).
#[inline(always)]
pub(super) fn with_active<R>(f: impl FnOnce(&mut Recording) -> R) -> Option<R> {
    // SAFETY: `f` runs no user code (every closure passed here is in this module).
    unsafe { active() }.map(f)
}

/// A fresh recording identity (never 0; unique across threads, so numbers that travel to
/// another thread are recognised as foreign there).
pub(super) fn next_gen() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    loop {
        let g = NEXT.fetch_add(1, AtomicOrdering::Relaxed);
        if g != 0 {
            return g;
        }
    }
}

/// Makes `rec` this thread's active recording until dropped; then the previous one (an
/// outer recording, or none) is active again. Dropping during a panic restores it too.
pub(super) struct Installed<'a> {
    previous: *mut Recording,
    _rec: PhantomData<&'a mut Recording>,
}

impl<'a> Installed<'a> {
    /// Install `rec` (it stays mutably borrowed while installed).
    pub fn new(rec: &'a mut Recording) -> Self {
        let previous = ACTIVE.with(|c| c.replace(rec as *mut Recording));
        Self { previous, _rec: PhantomData }
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        ACTIVE.with(|c| c.set(self.previous));
    }
}
