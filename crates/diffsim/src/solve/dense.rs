//! Dense output: each method's interpolant, and the per-step data that feeds it.

use super::tableau::ExplicitTableau;
use crate::blocks::{BlockSlice, BlockVec};
use crate::scalar::Scalar;

/// Which interpolation formula a step's data feeds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interpolant {
    /// `u0 + h * sum_i b_i(theta) k_i` with the tableau's polynomials.
    Explicit(&'static ExplicitTableau),
    /// Rosenbrock (Rodas) form:
    /// `(1 - theta) u0 + theta (u1 + (1 - theta)(kd_0 + theta kd_1 + theta^2 kd_2 ...))`.
    Rosenbrock { rows: usize },
    /// Shampine's Rosenbrock23 interpolant with its constant `d`:
    /// `u0 + h (theta (1 - theta) k1 + theta (theta - 2 d) k2) / (1 - 2 d)`.
    Rosenbrock23 { d: f64 },
    /// The BDF (NDF) interpolating polynomial through the last `order + 1` solution points,
    /// from the step's backward differences `D_1 .. D_5` after the step (rows past the
    /// order zero): `u1 + sum_j D_j prod_{i<j} (theta - 1 + i) / (i + 1)`.
    Bdf,
    /// A Radau IIA method's collocation polynomial of degree `s` in Newton form on the
    /// nodes `x_0 = 0, x_1, .., x_{s-1}` (here) in `s = theta - 1`, from the step's `s`
    /// coefficient vectors `d_1 .. d_s`:
    /// `u1 + x (d_1 + (x - x_1) (d_2 + ... + (x - x_{s-1}) d_s))`.
    Collocation(&'static [f64]),
}

/// The largest BDF order (rows of [`Interpolant::Bdf`]'s data).
pub(crate) const BDF_MAX_ORDER: usize = 5;

impl Interpolant {
    /// How many state-sized vectors of step data the interpolant needs.
    pub(crate) fn vectors(&self) -> usize {
        match self {
            Interpolant::Explicit(tab) => tab.c.len(),
            Interpolant::Rosenbrock { rows } => *rows,
            Interpolant::Rosenbrock23 { .. } => 2,
            Interpolant::Bdf => BDF_MAX_ORDER,
            Interpolant::Collocation(nodes) => nodes.len(),
        }
    }

    /// Evaluate at `theta` in [0, 1] of a step of size `h` from `u0` to `u1` with step
    /// data `ks` (`vectors() * n`, vector-major).
    #[inline]
    pub(crate) fn evaluate<T: Scalar>(&self, theta: f64, h: f64, u0: &[T], u1: &[T], ks: &[T], out: &mut [T]) {
        let n = u0.len();
        match self {
            Interpolant::Explicit(tab) => {
                out.copy_from_slice(u0);
                for (i, poly) in tab.interp.iter().enumerate() {
                    // b_i(theta) = sum_k poly[k] theta^(k+1), by Horner.
                    let mut b = 0.0;
                    for &c in poly.iter().rev() {
                        b = b * theta + c;
                    }
                    b *= theta * h;
                    if b != 0.0 {
                        let k = &ks[i * n..(i + 1) * n];
                        for (o, &kv) in out.iter_mut().zip(k) {
                            *o += kv.scale(b);
                        }
                    }
                }
            }
            Interpolant::Rosenbrock { rows } => {
                let one_m = 1.0 - theta;
                for c in 0..n {
                    let mut acc = T::zero();
                    for r in (0..*rows).rev() {
                        acc = acc.scale(theta) + ks[r * n + c];
                    }
                    out[c] = u0[c].scale(one_m) + (u1[c] + acc.scale(one_m)).scale(theta);
                }
            }
            Interpolant::Rosenbrock23 { d } => {
                let c1 = h * theta * (1.0 - theta) / (1.0 - 2.0 * d);
                let c2 = h * theta * (theta - 2.0 * d) / (1.0 - 2.0 * d);
                for c in 0..n {
                    out[c] = u0[c] + ks[c].scale(c1) + ks[n + c].scale(c2);
                }
            }
            Interpolant::Bdf => {
                out.copy_from_slice(u1);
                let mut w = 1.0;
                for j in 0..BDF_MAX_ORDER {
                    w *= (theta - 1.0 + j as f64) / (j as f64 + 1.0);
                    let d = &ks[j * n..(j + 1) * n];
                    for (o, &dv) in out.iter_mut().zip(d) {
                        *o += dv.scale(w);
                    }
                }
            }
            Interpolant::Collocation(nodes) => {
                let x = theta - 1.0;
                let s = nodes.len();
                for c in 0..n {
                    let mut acc = ks[(s - 1) * n + c];
                    for k in (1..s).rev() {
                        acc = acc.scale(x - nodes[k]) + ks[(k - 1) * n + c];
                    }
                    out[c] = u1[c] + acc.scale(x);
                }
            }
        }
    }
}

/// The interpolation data of every accepted step, so a solution can be evaluated at any
/// time in its span.
#[derive(Clone, Debug)]
pub(crate) struct DenseOutput<T> {
    pub(crate) n: usize,
    /// One interpolant per segment: a solve may switch methods (see `Algorithm::Auto`).
    pub(crate) segments: Vec<(usize, Interpolant)>,
    /// Step boundaries: `ts[i]..ts[i+1]` is step i.
    pub(crate) ts: Vec<f64>,
    /// States at the step boundaries (`ts.len() * n`).
    pub(crate) us: Vec<T>,
    /// Step data, in blocks that never move.
    ks: BlockVec<T>,
    /// Where step i's data is in `ks`.
    offsets: Vec<BlockSlice>,
    /// Steps cut short at an event, by step index (usually none).
    cuts: Vec<Cut<T>>,
}

/// A step cut short at an event: its interpolation data describe the whole attempted step
/// (size `h`, end state `u1`), of which the recorded step is the first part.
#[derive(Clone, Debug)]
struct Cut<T> {
    step: usize,
    h: f64,
    u1: Vec<T>,
}

impl<T: Scalar> DenseOutput<T> {
    pub(crate) fn new(n: usize, t0: f64, u0: &[T], interp: Interpolant) -> Self {
        Self {
            n,
            segments: vec![(0, interp)],
            ts: vec![t0],
            us: u0.to_vec(),
            ks: BlockVec::default(),
            offsets: Vec::new(),
            cuts: Vec::new(),
        }
    }

    /// Start using another interpolant from the next step on.
    pub(crate) fn switch(&mut self, interp: Interpolant) {
        self.segments.push((self.offsets.len(), interp));
    }

    /// Record one accepted step ending at `t1` with state `u1` and step data `ks`.
    pub(crate) fn push(&mut self, t1: f64, u1: &[T], ks: &[T]) {
        self.offsets.push(self.ks.push(ks));
        self.ts.push(t1);
        self.us.extend_from_slice(u1);
    }

    /// Record a step attempted from the last boundary with size `h` to `u1` (data `ks`)
    /// but kept only up to `t_cut` (an event), where its interpolant gives `u_cut`.
    pub(crate) fn push_cut(&mut self, t_cut: f64, u_cut: &[T], ks: &[T], h: f64, u1: &[T]) {
        self.push(t_cut, u_cut, ks);
        self.cuts.push(Cut { step: self.offsets.len() - 1, h, u1: u1.to_vec() });
    }

    /// Record a jump of the state at the last boundary (an event's affect): a step of
    /// length zero. Evaluation at the jump's time gives the state before it (the dense
    /// output is left-continuous there, as the saved values are).
    pub(crate) fn push_jump(&mut self, u_after: &[T]) {
        let t = *self.ts.last().expect("a dense output has its start");
        self.push(t, u_after, &[]);
    }

    /// Record the steps of `other`, which starts where this one ends.
    pub(crate) fn append(&mut self, other: &DenseOutput<T>) {
        let (n, first) = (self.n, self.steps());
        for i in 0..other.steps() {
            self.push(other.ts[i + 1], &other.us[(i + 1) * n..(i + 2) * n], other.step_data(i));
        }
        self.cuts.extend(other.cuts.iter().map(|c| Cut { step: first + c.step, ..c.clone() }));
    }

    /// Number of recorded steps.
    pub(crate) fn steps(&self) -> usize {
        self.offsets.len()
    }

    /// Step `i`'s data, as given to [`Self::push`].
    #[inline]
    pub(crate) fn step_data(&self, i: usize) -> &[T] {
        self.ks.get(self.offsets[i])
    }

    /// The same dense output with every number replaced by its value (an AD number's
    /// derivative parts dropped).
    pub(crate) fn values(&self) -> DenseOutput<f64> {
        let n = self.n;
        let to_values = |x: &[T]| x.iter().map(|v| v.value()).collect::<Vec<f64>>();
        let mut out = DenseOutput::new(n, self.ts[0], &to_values(&self.us[..n]), self.segments[0].1);
        out.segments = self.segments.clone();
        for i in 0..self.steps() {
            out.push(self.ts[i + 1], &to_values(&self.us[(i + 1) * n..(i + 2) * n]), &to_values(self.step_data(i)));
        }
        out.cuts = self.cuts.iter().map(|c| Cut { step: c.step, h: c.h, u1: to_values(&c.u1) }).collect();
        out
    }

    /// Evaluate at time `t` (which must lie in the covered span; the caller checks).
    pub(crate) fn evaluate(&self, t: f64, out: &mut [T]) {
        let n = self.n;
        let steps = self.offsets.len();
        if steps == 0 {
            out.copy_from_slice(&self.us[..n]);
            return;
        }
        let forward = self.ts[steps] >= self.ts[0];
        // First boundary past t (in the direction of integration), clamped to a step.
        let idx = self.ts.partition_point(|&s| if forward { s <= t } else { s >= t });
        let i = idx.saturating_sub(1).min(steps - 1);
        let (t0, t1) = (self.ts[i], self.ts[i + 1]);
        // At an event's jump (a step of length zero), the state before it: the end of the
        // step that reached the event.
        if t1 == t0 {
            out.copy_from_slice(&self.us[i * n..(i + 1) * n]);
            return;
        }
        if t == t0 && i > 0 && self.ts[i - 1] == t0 {
            out.copy_from_slice(&self.us[(i - 1) * n..i * n]);
            return;
        }
        let u1 = &self.us[(i + 1) * n..(i + 2) * n];
        let cut = match self.cuts.is_empty() {
            true => None,
            false => self.cuts.binary_search_by_key(&i, |c| c.step).ok().map(|k| &self.cuts[k]),
        };
        let (h, u1) = cut.map_or((t1 - t0, u1), |c| (c.h, &c.u1[..]));
        let theta = (t - t0) / h;
        let seg = self.segments.partition_point(|(start, _)| *start <= i) - 1;
        let interp = self.segments[seg].1;
        let ks = &self.step_data(i)[..interp.vectors() * n];
        interp.evaluate(theta, h, &self.us[i * n..(i + 1) * n], u1, ks, out);
    }
}
