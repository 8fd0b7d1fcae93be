//! [`RhsTape`]: a model's right-hand side on the tape, moved from point to point by
//! replaying (guards checked) or re-recording, with VJPs, JVPs and Jacobians.

use super::record::{eval, next_gen, Edge, Installed, Op, Recording, Unreplayable};
use super::{Branching, TapeVar};
use crate::error::{DiffsimError, Result};
use crate::problem::Model;

/// How an [`RhsTape`] gets the values and partials at a new point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TapeMode {
    /// Record the right-hand side afresh at every point: slower, always right.
    Rerecord,
    /// Record once, then replay the recorded operations at each new point, re-recording
    /// when a guard comes out differently or the recording cannot be replayed.
    #[default]
    Compiled,
}

/// What an [`RhsTape`] did to reach its points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapeStats {
    /// Recordings of the right-hand side, the first one included.
    pub recordings: usize,
    /// Replays at a new point whose guards all held (no recording needed).
    pub replays: usize,
    /// Replays abandoned because a guard came out differently; each was followed by a
    /// recording at the new point.
    pub guard_failures: usize,
    /// Recordings made because the current recording cannot be replayed
    /// (see [`Unreplayable`]).
    pub unreplayable: usize,
    /// Points identical (bit for bit) to the current one: nothing to do (compiled mode).
    pub reuses: usize,
}

impl TapeStats {
    /// Recordings after the first: guard failures, unreplayable recordings, and every new
    /// point of the re-recording mode.
    pub fn rerecords(&self) -> usize {
        self.recordings.saturating_sub(1)
    }
    /// Forward passes over the right-hand side of any kind (recordings, replays, abandoned
    /// replays): the number of `f` evaluations this tape cost.
    pub fn evaluations(&self) -> usize {
        self.recordings + self.replays + self.guard_failures
    }
}

/// An output of the recording: a node, or a constant.
#[derive(Clone, Copy, Debug)]
enum Out {
    Node(u32),
    Const(f64),
}

/// A model's right-hand side `f(u, p, t)` on the reverse-mode tape.
///
/// [`RhsTape::at`] moves it to a point `(u, p, t)` (recording, or in
/// [`TapeMode::Compiled`] replaying with guards); then [`RhsTape::vjp`],
/// [`RhsTape::jvp`], [`RhsTape::jacobian`] and [`RhsTape::values`] read that point as often
/// as needed. After the first few calls nothing allocates: buffers keep their capacity.
///
/// The model must be the same at every call, and its `rhs` a function of `(u, p, t)` only
/// (no state of its own that changes between calls): a replay re-runs what was recorded.
///
/// ```
/// use diffsim::ad::{RhsTape, TapeMode};
/// use diffsim::models::Lorenz;
/// let p = [10.0, 28.0, 8.0 / 3.0];
/// let mut tape = RhsTape::new(&Lorenz, TapeMode::Compiled);
/// tape.at(&Lorenz, &[1.0, 2.0, 3.0], &p, 0.0).unwrap();
/// let (mut ju, mut jp) = (vec![0.0; 9], vec![0.0; 9]);
/// tape.jacobian(&mut ju, Some(&mut jp), None).unwrap();
/// assert_eq!(&ju[..3], &[-10.0, 10.0, 0.0]); // d(sigma (y - x)) / d(x, y, z)
/// assert_eq!(jp[0], 1.0); // d(sigma (y - x)) / d sigma = y - x
/// // JVP: J_u v + J_p q + f_t s
/// let mut out = [0.0; 3];
/// tape.jvp(&[1.0, 0.0, 0.0], &[0.0; 3], 0.0, &mut out).unwrap();
/// assert_eq!(out, [ju[0], ju[3], ju[6]]);
/// ```
#[derive(Clone, Debug)]
pub struct RhsTape {
    mode: TapeMode,
    n: usize,
    np: usize,
    rec: Recording,
    outputs: Vec<Out>,
    xu: Vec<TapeVar>,
    xp: Vec<TapeVar>,
    out: Vec<TapeVar>,
    /// `(u, p, t)` of the current values.
    point: Vec<f64>,
    /// Whether `rec` holds a complete recording or replay at `point`.
    ready: bool,
    /// Adjoints or tangents of every node.
    work: Vec<f64>,
    stats: TapeStats,
}

impl RhsTape {
    /// A tape for `model` (nothing recorded yet).
    pub fn new<M: Model>(model: &M, mode: TapeMode) -> Self {
        let (n, np) = (model.n_states(), model.n_params());
        Self {
            mode,
            n,
            np,
            rec: Recording::default(),
            outputs: Vec::with_capacity(n),
            xu: vec![TapeVar::default(); n],
            xp: vec![TapeVar::default(); np],
            out: vec![TapeVar::default(); n],
            point: Vec::with_capacity(n + np + 1),
            ready: false,
            work: Vec::new(),
            stats: TapeStats::default(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> TapeMode {
        self.mode
    }

    /// What the tape did so far.
    pub fn stats(&self) -> TapeStats {
        self.stats
    }

    /// Number of recorded operations (0 before the first recording).
    pub fn len(&self) -> usize {
        self.rec.ops.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.rec.ops.is_empty()
    }

    /// Number of guards (comparisons) in the current recording.
    pub fn n_guards(&self) -> usize {
        self.rec.guards.len()
    }

    /// The branches and kinks of the current recording (`None` before the first):
    /// which comparisons depend on the state, which compare time with the parameters.
    ///
    /// ```
    /// use diffsim::ad::{RhsTape, TapeMode};
    /// use diffsim::models::LvPiecewise;
    /// let mut tape = RhsTape::new(&LvPiecewise, TapeMode::Rerecord);
    /// tape.at(&LvPiecewise, &[1.0, 2.0], &[0.5, 1.5, 2.5, 3.5], 0.5).unwrap();
    /// let b = tape.branching().unwrap();
    /// // Its rate switches at fixed times: no comparison involves the state or a parameter.
    /// assert!(!b.on_state() && !b.parameter_time);
    /// ```
    pub fn branching(&self) -> Option<Branching> {
        self.ready.then(|| super::branches::classify(&self.rec, self.n, self.np))
    }

    /// Why the current recording cannot be replayed at other points, if it cannot.
    pub fn unreplayable(&self) -> Option<Unreplayable> {
        self.rec.unreplayable
    }

    /// Move to the point `(u, p, t)`: record there, or (compiled mode) replay the recording
    /// if every guard comes out as recorded, else record afresh.
    ///
    /// Errors: `u`, `p` or the model of other sizes than the tape was made for.
    pub fn at<M: Model>(&mut self, model: &M, u: &[f64], p: &[f64], t: f64) -> Result<()> {
        check_len("u", self.n, u.len())?;
        check_len("p", self.np, p.len())?;
        check_len("model states", self.n, model.n_states())?;
        check_len("model parameters", self.np, model.n_params())?;
        self.prepare(model, u, p, t);
        Ok(())
    }

    /// [`RhsTape::at`] without the size checks (the caller has made them).
    pub(crate) fn prepare<M: Model>(&mut self, model: &M, u: &[f64], p: &[f64], t: f64) {
        if self.ready && self.mode == TapeMode::Compiled {
            if self.is_current(u, p, t) {
                self.stats.reuses += 1;
                return;
            }
            if self.rec.unreplayable.is_some() {
                self.stats.unreplayable += 1;
            } else if self.replay(u, p, t) {
                self.stats.replays += 1;
                self.set_point(u, p, t);
                return;
            } else {
                self.stats.guard_failures += 1;
            }
        }
        self.record(model, u, p, t)
    }

    fn is_current(&self, u: &[f64], p: &[f64], t: f64) -> bool {
        let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        let (n, np) = (self.n, self.np);
        same(&self.point[..n], u) && same(&self.point[n..n + np], p) && self.point[n + np].to_bits() == t.to_bits()
    }

    fn set_point(&mut self, u: &[f64], p: &[f64], t: f64) {
        self.point.clear();
        self.point.extend_from_slice(u);
        self.point.extend_from_slice(p);
        self.point.push(t);
    }

    /// Record `model.rhs` at `(u, p, t)`.
    fn record<M: Model>(&mut self, model: &M, u: &[f64], p: &[f64], t: f64) {
        self.ready = false;
        let gen = next_gen();
        self.rec.reset(gen, u.iter().chain(p).copied().chain(std::iter::once(t)));
        for (i, (x, &v)) in self.xu.iter_mut().zip(u).enumerate() {
            *x = TapeVar { v, idx: (1 + i) as u32, gen };
        }
        for (j, (x, &v)) in self.xp.iter_mut().zip(p).enumerate() {
            *x = TapeVar { v, idx: (1 + self.n + j) as u32, gen };
        }
        let xt = TapeVar { v: t, idx: (1 + self.n + self.np) as u32, gen };
        self.out.fill(TapeVar::default());
        {
            let _installed = Installed::new(&mut self.rec);
            model.rhs(&mut self.out, &self.xu, &self.xp, xt);
        }
        self.outputs.clear();
        for o in &self.out {
            self.outputs.push(if o.gen == gen {
                Out::Node(o.idx)
            } else {
                if o.gen != 0 {
                    self.rec.mark(Unreplayable::Foreign);
                }
                Out::Const(o.v)
            });
        }
        self.stats.recordings += 1;
        self.set_point(u, p, t);
        self.ready = true;
    }

    /// Replay the recorded operations at `(u, p, t)`, testing each guard as soon as its
    /// operands are computed. `false` when a guard fails (the values are then garbage).
    fn replay(&mut self, u: &[f64], p: &[f64], t: f64) -> bool {
        self.ready = false;
        let (n, np) = (self.n, self.np);
        let base = self.rec.base();
        let Recording { ops, edges, vals, guards, .. } = &mut self.rec;
        let inputs = &mut vals[1..base];
        inputs[..n].copy_from_slice(u);
        inputs[n..n + np].copy_from_slice(p);
        inputs[n + np] = t;
        let mut done = 0;
        for g in guards.iter() {
            let at = g.at as usize;
            if at > done {
                run(&ops[done..at], &mut edges[done..at], vals, base + done);
                done = at;
            }
            if !g.holds(vals) {
                return false;
            }
        }
        run(&ops[done..], &mut edges[done..], vals, base + done);
        self.ready = true;
        true
    }

    fn check_ready(&self) -> Result<()> {
        if self.ready {
            Ok(())
        } else {
            Err(DiffsimError::InvalidOption {
                name: "tape",
                why: "the tape is at no point yet; call RhsTape::at(model, u, p, t) first".into(),
            })
        }
    }

    /// `f(u, p, t)` at the current point.
    pub fn values(&self, f: &mut [f64]) -> Result<()> {
        self.check_ready()?;
        check_len("f", self.n, f.len())?;
        for (o, out) in f.iter_mut().zip(&self.outputs) {
            *o = match *out {
                Out::Node(k) => self.rec.vals[k as usize],
                Out::Const(c) => c,
            };
        }
        Ok(())
    }

    /// Accumulate `du += (df/du)^T w` and `dp += (df/dp)^T w` at the current point; returns
    /// `(df/dt)^T w`. One reverse sweep.
    pub fn vjp(&mut self, w: &[f64], du: &mut [f64], dp: &mut [f64]) -> Result<f64> {
        self.check_ready()?;
        check_len("w", self.n, w.len())?;
        check_len("du", self.n, du.len())?;
        check_len("dp", self.np, dp.len())?;
        Ok(self.vjp_unchecked(w, du, dp))
    }

    /// [`RhsTape::vjp`] without checks (the caller has made them).
    pub(crate) fn vjp_unchecked(&mut self, w: &[f64], du: &mut [f64], dp: &mut [f64]) -> f64 {
        let (n, np) = (self.n, self.np);
        let work = &mut self.work;
        work.clear();
        work.resize(self.rec.vals.len(), 0.0);
        for (out, &wi) in self.outputs.iter().zip(w) {
            if let Out::Node(k) = *out {
                work[k as usize] += wi;
            }
        }
        sweep(&self.rec.edges, work, self.rec.base());
        for (d, a) in du.iter_mut().zip(&work[1..1 + n]) {
            *d += a;
        }
        for (d, a) in dp.iter_mut().zip(&work[1 + n..1 + n + np]) {
            *d += a;
        }
        work[1 + n + np]
    }

    /// The Jacobian at the current point by one reverse sweep per output: `ju` (row-major
    /// `n x n`, `ju[i * n + j] = d f_i / d u_j`), optionally `jp` (`n x n_p`) and `dfdt`.
    pub fn jacobian(&mut self, ju: &mut [f64], mut jp: Option<&mut [f64]>, mut dfdt: Option<&mut [f64]>) -> Result<()> {
        self.check_ready()?;
        let (n, np) = (self.n, self.np);
        check_len("ju", n * n, ju.len())?;
        if let Some(jp) = jp.as_deref() {
            check_len("jp", n * np, jp.len())?;
        }
        if let Some(ft) = dfdt.as_deref() {
            check_len("dfdt", n, ft.len())?;
        }
        let base = self.rec.base();
        let work = &mut self.work;
        work.resize(self.rec.vals.len(), 0.0);
        for (i, out) in self.outputs.iter().enumerate() {
            work.fill(0.0);
            if let Out::Node(k) = *out {
                let k = k as usize;
                work[k] = 1.0;
                // Operations after the output's own node cannot reach it.
                let upto = (k + 1).saturating_sub(base).min(self.rec.edges.len());
                sweep(&self.rec.edges[..upto], work, base);
            }
            ju[i * n..(i + 1) * n].copy_from_slice(&work[1..1 + n]);
            if let Some(jp) = jp.as_deref_mut() {
                jp[i * np..(i + 1) * np].copy_from_slice(&work[1 + n..1 + n + np]);
            }
            if let Some(ft) = dfdt.as_deref_mut() {
                ft[i] = work[1 + n + np];
            }
        }
        Ok(())
    }

    /// For each output, the states it was computed from through any chain of recorded
    /// operations (sorted indices): the Jacobian's structural pattern at this recording.
    /// `None` when the recording hides dependencies (the model read a value, or mixed in
    /// numbers from elsewhere) or nothing is recorded yet.
    pub(crate) fn state_dependencies(&self) -> Option<Vec<Vec<u32>>> {
        let hidden = matches!(self.rec.unreplayable, Some(Unreplayable::ValueRead | Unreplayable::Foreign));
        if hidden || !self.ready {
            return None;
        }
        let base = self.rec.base();
        let mut deps: Vec<Vec<u32>> = vec![Vec::new(); self.rec.vals.len()];
        for (j, d) in deps[1..=self.n].iter_mut().enumerate() {
            d.push(j as u32);
        }
        for (k, e) in self.rec.edges.iter().enumerate() {
            let mut merged = deps[e.a as usize].clone();
            merged.extend_from_slice(&deps[e.b as usize]);
            merged.sort_unstable();
            merged.dedup();
            deps[base + k] = merged;
        }
        let of = |o: &Out| match *o {
            Out::Node(k) => deps[k as usize].clone(),
            Out::Const(_) => Vec::new(),
        };
        Some(self.outputs.iter().map(of).collect())
    }

    /// The Jacobian-vector product `out = (df/du) vu + (df/dp) vp + (df/dt) vt` at the current
    /// point: one forward sweep of tangents through the recorded partials.
    pub fn jvp(&mut self, vu: &[f64], vp: &[f64], vt: f64, out: &mut [f64]) -> Result<()> {
        self.check_ready()?;
        let (n, np) = (self.n, self.np);
        check_len("vu", n, vu.len())?;
        check_len("vp", np, vp.len())?;
        check_len("out", n, out.len())?;
        let base = self.rec.base();
        let work = &mut self.work;
        work.clear();
        work.resize(self.rec.vals.len(), 0.0);
        work[1..1 + n].copy_from_slice(vu);
        work[1 + n..1 + n + np].copy_from_slice(vp);
        work[1 + n + np] = vt;
        for (k, e) in self.rec.edges.iter().enumerate() {
            work[base + k] = e.da * work[e.a as usize] + e.db * work[e.b as usize];
        }
        for (o, r) in out.iter_mut().zip(&self.outputs) {
            *o = match *r {
                Out::Node(k) => work[k as usize],
                Out::Const(_) => 0.0,
            };
        }
        Ok(())
    }
}

/// Re-evaluate operations `ops` (producing nodes `first..`) in place.
#[inline]
fn run(ops: &[Op], edges: &mut [Edge], vals: &mut [f64], first: usize) {
    for (k, (&op, e)) in ops.iter().zip(edges.iter_mut()).enumerate() {
        let (v, da, db) = eval(op, vals[e.a as usize], vals[e.b as usize]);
        e.da = da;
        e.db = db;
        vals[first + k] = v;
    }
}

/// The reverse sweep: pull the adjoints in `work` back through `edges` (operation `k`
/// produced node `base + k`), last operation first.
#[inline]
fn sweep(edges: &[Edge], work: &mut [f64], base: usize) {
    for (k, e) in edges.iter().enumerate().rev() {
        let g = work[base + k];
        work[e.a as usize] += e.da * g;
        work[e.b as usize] += e.db * g;
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(DiffsimError::SizeMismatch { what, expected, got })
    }
}
