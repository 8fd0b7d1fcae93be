//! Vector-Jacobian products of a model's right-hand side, by a chosen method.
//!
//! Adjoint sensitivities need `(df/du)^T w` and `(df/dp)^T w` at every stage. How they are
//! computed is a choice ([`VjpMethod`]):
//!
//! | method | cost per VJP | exact | notes |
//! |---|---|---|---|
//! | `Model` | the model's own reverse pass | yes | neural-network terms provide it |
//! | `Forward` | `(n + n_p) / 8` evaluations of `f` on 8-wide duals | yes | good for small models |
//! | `Tape` | one recording of `f` on the tape + one reverse sweep | yes | any model; cost independent of `n + n_p` |
//! | `CompiledTape` | one replay of the recorded operations + one reverse sweep (guards checked; re-records when one fails) | yes | fastest AD for larger models |
//! | `FiniteDiff` | `2 (n + n_p)` evaluations of `f` | no, about 1e-8 relative | a last resort and a cross-check |
//!
//! `Auto` picks `Model` when the model has one; else `CompiledTape` when the model has more
//! than [`AUTO_TAPE_ABOVE`] = 16 inputs (`n + n_p`, three or more chunks of duals), else
//! `Forward`: up to that size the two are within run-to-run noise of each other, forward
//! mode has no recording to go stale, and past it the tape's cost (independent of the
//! number of inputs) wins by more the larger the model (`benches/tape.rs`; the measurements
//! are in `bench/peers/README.md`, "Measurements behind the library's defaults").
//! When `Auto` chose the compiled tape and the model's recording turns out not to be
//! replayable (it reads values, see [`super::Unreplayable`]), a model with at most
//! [`AUTO_RERECORD_MAX`] = 32 inputs is served by forward mode from then on: re-recording at
//! every point costs more than forward mode up to about four chunks of duals.
//!
//! The tape methods ([`super::tape`]) record the model's `rhs` on [`super::TapeVar`]
//! numbers. `CompiledTape` records once and then replays the recording at each new
//! `(u, p, t)`; every comparison the model made while recording is a guard, and a replay
//! whose guards come out differently records afresh instead of following the old branch.
//! A model that reads values the tape cannot follow ([`crate::Scalar::value`],
//! [`crate::Scalar::chain`], as the built-in neural-network activations do) is re-recorded
//! at every point, which makes `CompiledTape` as fast as `Tape` there, never wrong.

use super::{Dual, RhsTape, TapeMode, TapeStats};
use crate::capabilities::Workspace;
use crate::error::{DiffsimError, Result};
use crate::problem::Model;

/// Chunk width of the forward-mode VJP.
const CHUNK: usize = 8;

/// `VjpMethod::Auto` uses the compiled tape for models with more inputs (`n + n_p`) than
/// this (and no VJP of their own).
pub const AUTO_TAPE_ABOVE: usize = 16;

/// `VjpMethod::Auto` on the compiled tape switches to forward mode when the recording
/// cannot be replayed and the model has at most this many inputs (`n + n_p`).
pub const AUTO_RERECORD_MAX: usize = 32;

/// How vector-Jacobian products of the right-hand side are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VjpMethod {
    /// The model's hand-written VJP if it has one; else the compiled tape for models with
    /// more than [`AUTO_TAPE_ABOVE`] inputs (`n + n_p`), forward mode for smaller ones.
    #[default]
    Auto,
    /// The model's own VJP ([`crate::capabilities::AnalyticVjp`]; an error if it has none).
    Model,
    /// Forward-mode AD: the Jacobian in chunks of 8 columns, then `J^T w`.
    Forward,
    /// Central finite differences of `f` in every input.
    FiniteDiff,
    /// Reverse mode: record `f` on the tape at every call, then one reverse sweep.
    Tape,
    /// Reverse mode: record `f` once, replay the recording at each new point (re-recording
    /// when a comparison the model made comes out differently), then one reverse sweep.
    CompiledTape,
}

impl VjpMethod {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            VjpMethod::Auto => "auto",
            VjpMethod::Model => "model",
            VjpMethod::Forward => "forward",
            VjpMethod::FiniteDiff => "finite",
            VjpMethod::Tape => "tape",
            VjpMethod::CompiledTape => "compiled-tape",
        }
    }

    /// Every method, in the order of the docs' table (`Auto` first).
    pub const ALL: [VjpMethod; 6] = [
        VjpMethod::Auto,
        VjpMethod::Model,
        VjpMethod::Forward,
        VjpMethod::Tape,
        VjpMethod::CompiledTape,
        VjpMethod::FiniteDiff,
    ];

    /// The method with CLI name `name` ([`VjpMethod::name`]).
    ///
    /// ```
    /// use diffsim::ad::VjpMethod;
    /// assert_eq!(VjpMethod::from_name("compiled-tape"), Some(VjpMethod::CompiledTape));
    /// assert_eq!(VjpMethod::from_name("nope"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<VjpMethod> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The method actually used for `model`: `Auto` resolved, `Model` checked (a model has
    /// a VJP of its own when its [`Model::derivatives`] include one).
    pub fn resolve<M: Model>(self, model: &M) -> Result<VjpMethod> {
        match self {
            VjpMethod::Auto | VjpMethod::Model if model.derivatives().has_vjp() => Ok(VjpMethod::Model),
            VjpMethod::Auto if model.n_states() + model.n_params() > AUTO_TAPE_ABOVE => Ok(VjpMethod::CompiledTape),
            VjpMethod::Auto => Ok(VjpMethod::Forward),
            VjpMethod::Model => Err(DiffsimError::InvalidOption {
                name: "vjp",
                why: "this model has no hand-written VJP (AnalyticVjp in Model::derivatives); use forward, \
                      compiled-tape, tape or finite"
                    .into(),
            }),
            other => Ok(other),
        }
    }
}

/// Buffers for VJPs of one model, reused across calls (no allocation per product).
///
/// ```
/// use diffsim::ad::{Vjp, VjpMethod};
/// use diffsim::models::LotkaVolterra;
/// let mut vjp = Vjp::new(&LotkaVolterra, VjpMethod::Forward).unwrap();
/// let (mut du, mut dp) = (vec![0.0; 2], vec![0.0; 4]);
/// // f_0 = a x - b x y: d f_0 / d a = x.
/// vjp.apply(&LotkaVolterra, &[1.0, 0.0], &[2.0, 3.0], &[1.5, 1.0, 3.0, 1.0], 0.0, &mut du, &mut dp);
/// assert_eq!(dp[0], 2.0);
///
/// // On the compiled tape: recorded at the first point, replayed at the next.
/// let mut tape = Vjp::new(&LotkaVolterra, VjpMethod::CompiledTape).unwrap();
/// for x in [2.0, 2.5] {
///     let (mut du, mut dp) = (vec![0.0; 2], vec![0.0; 4]);
///     tape.apply(&LotkaVolterra, &[1.0, 0.0], &[x, 3.0], &[1.5, 1.0, 3.0, 1.0], 0.0, &mut du, &mut dp);
///     assert_eq!(dp[0], x);
/// }
/// let stats = tape.tape_stats().unwrap();
/// assert_eq!((stats.recordings, stats.replays, tape.evals), (1, 1, 2));
/// ```
#[derive(Debug)]
pub struct Vjp {
    method: VjpMethod,
    /// The model's own VJP's workspace, made at its first use.
    workspace: Option<Workspace>,
    u: Vec<Dual<CHUNK>>,
    p: Vec<Dual<CHUNK>>,
    out: Vec<Dual<CHUNK>>,
    uf: Vec<f64>,
    pf: Vec<f64>,
    fa: Vec<f64>,
    fb: Vec<f64>,
    tape: Option<RhsTape>,
    /// `Auto` chose the tape: fall back to forward mode if it cannot replay a small model.
    auto_tape: bool,
    /// Number of right-hand-side evaluations (on any number type, recordings and replays of
    /// the tape included) so far.
    pub evals: usize,
}

/// A clone starts without the model's workspace (it makes its own at its first use).
impl Clone for Vjp {
    fn clone(&self) -> Self {
        Self {
            method: self.method,
            workspace: None,
            u: self.u.clone(),
            p: self.p.clone(),
            out: self.out.clone(),
            uf: self.uf.clone(),
            pf: self.pf.clone(),
            fa: self.fa.clone(),
            fb: self.fb.clone(),
            tape: self.tape.clone(),
            auto_tape: self.auto_tape,
            evals: self.evals,
        }
    }
}

impl Vjp {
    /// Buffers for `model` with `method` (resolved: `Auto` becomes a concrete method).
    pub fn new<M: Model>(model: &M, method: VjpMethod) -> Result<Self> {
        let (n, np) = (model.n_states(), model.n_params());
        let auto_tape = method == VjpMethod::Auto;
        let method = method.resolve(model)?;
        let auto_tape = auto_tape && method == VjpMethod::CompiledTape;
        let tape = match method {
            VjpMethod::Tape => Some(RhsTape::new(model, TapeMode::Rerecord)),
            VjpMethod::CompiledTape => Some(RhsTape::new(model, TapeMode::Compiled)),
            _ => None,
        };
        Ok(Self {
            tape,
            auto_tape,
            method,
            workspace: None,
            u: vec![Dual::default(); n],
            p: vec![Dual::default(); np],
            out: vec![Dual::default(); n],
            uf: vec![0.0; n],
            pf: vec![0.0; np],
            fa: vec![0.0; n],
            fb: vec![0.0; n],
            evals: 0,
        })
    }

    /// The concrete method in use (`Forward` once `Auto` has left an unreplayable tape).
    pub fn method(&self) -> VjpMethod {
        self.method
    }

    /// What the tape did (recordings, replays, guard failures), for the tape methods.
    pub fn tape_stats(&self) -> Option<TapeStats> {
        self.tape.as_ref().map(RhsTape::stats)
    }

    /// Accumulate `du += (df/du)^T w` and `dp += (df/dp)^T w` at `(u, p, t)`. `model` must
    /// be the one the buffers were made for.
    #[allow(clippy::too_many_arguments)]
    pub fn apply<M: Model>(
        &mut self,
        model: &M,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        du: &mut [f64],
        dp: &mut [f64],
    ) {
        match self.method {
            VjpMethod::Model | VjpMethod::Auto => match model.derivatives().analytic_vjp() {
                Some(own) => {
                    self.evals += 1;
                    let ws = self.workspace.get_or_insert_with(|| own.workspace());
                    own.vjp(ws, w, u, p, t, du, dp);
                }
                // A model handed here other than the one `resolve` saw: AD, never nothing.
                None => self.forward(model, w, u, p, t, du, dp),
            },
            VjpMethod::Forward => self.forward(model, w, u, p, t, du, dp),
            VjpMethod::FiniteDiff => self.finite(model, w, u, p, t, du, dp),
            VjpMethod::Tape | VjpMethod::CompiledTape => {
                if !self.tape_vjp(model, w, u, p, t, du, dp) {
                    self.forward(model, w, u, p, t, du, dp);
                }
            }
        }
    }

    /// [`Vjp::apply`] from a record the model's [`crate::capabilities::RecordedVjp`] left at
    /// this point in the forward solve (with its workspace); `false` (nothing done) when the
    /// model keeps no records or `record` is not one of its records.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_from_record<M: Model>(
        &mut self,
        model: &M,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        pending: &mut Vec<f64>,
    ) -> bool {
        let Some(own) = model.derivatives().record_vjp() else { return false };
        if record.len() != own.record_len() {
            return false;
        }
        self.evals += 1;
        let ws = self.workspace.get_or_insert_with(|| own.workspace());
        own.vjp_from_record(ws, w, u, p, t, record, du, dp, pending);
        true
    }

    /// The VJP on the tape; `false` (nothing done) when the sizes do not fit the model.
    #[allow(clippy::too_many_arguments)]
    fn tape_vjp<M: Model>(
        &mut self,
        model: &M,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        du: &mut [f64],
        dp: &mut [f64],
    ) -> bool {
        let Some(tape) = self.tape.as_mut() else { return false };
        let (n, np) = (model.n_states(), model.n_params());
        let states_fit = u.len() == n && w.len() == n && du.len() == n && self.u.len() == n;
        if !states_fit || p.len() != np || dp.len() != np || self.p.len() != np {
            return false;
        }
        let before = tape.stats().evaluations();
        tape.prepare(model, u, p, t);
        self.evals += tape.stats().evaluations() - before;
        tape.vjp_unchecked(w, du, dp);
        if self.auto_tape && tape.unreplayable().is_some() && n + np <= AUTO_RERECORD_MAX {
            self.method = VjpMethod::Forward;
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn forward<M: Model>(
        &mut self,
        model: &M,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        du: &mut [f64],
        dp: &mut [f64],
    ) {
        let (n, np) = (u.len(), p.len());
        let total = n + np;
        let mut start = 0;
        while start < total {
            let end = (start + CHUNK).min(total);
            // Inputs are numbered states first, then parameters.
            for (j, (d, &x)) in self.u.iter_mut().zip(u).enumerate() {
                *d = if (start..end).contains(&j) { Dual::variable(x, j - start) } else { Dual::constant(x) };
            }
            for (j, (d, &x)) in self.p.iter_mut().zip(p).enumerate() {
                let idx = n + j;
                *d = if (start..end).contains(&idx) { Dual::variable(x, idx - start) } else { Dual::constant(x) };
            }
            model.rhs(&mut self.out, &self.u, &self.p, Dual::constant(t));
            self.evals += 1;
            for idx in start..end {
                let k = idx - start;
                let mut acc = 0.0;
                for (o, &wi) in self.out.iter().zip(w) {
                    acc += o.d[k] * wi;
                }
                if idx < n {
                    du[idx] += acc;
                } else {
                    dp[idx - n] += acc;
                }
            }
            start = end;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finite<M: Model>(&mut self, model: &M, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
        self.uf.copy_from_slice(u);
        self.pf.copy_from_slice(p);
        let n = u.len();
        for idx in 0..n + p.len() {
            let x = if idx < n { u[idx] } else { p[idx - n] };
            // Central differences: step ~ eps^(1/3) scaled by the input.
            let h = f64::EPSILON.cbrt() * x.abs().max(1.0);
            let set = |s: &mut Self, v: f64| {
                if idx < n {
                    s.uf[idx] = v;
                } else {
                    s.pf[idx - n] = v;
                }
            };
            set(self, x + h);
            model.rhs(&mut self.fa, &self.uf, &self.pf, t);
            set(self, x - h);
            model.rhs(&mut self.fb, &self.uf, &self.pf, t);
            set(self, x);
            self.evals += 2;
            let mut acc = 0.0;
            for c in 0..n {
                acc += w[c] * (self.fa[c] - self.fb[c]) / (2.0 * h);
            }
            if idx < n {
                du[idx] += acc;
            } else {
                dp[idx - n] += acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Lorenz, LotkaVolterra};

    fn check<M: Model>(model: &M, u: &[f64], p: &[f64]) {
        let (n, np) = (u.len(), p.len());
        let w: Vec<f64> = (0..n).map(|i| 0.3 + 0.7 * i as f64).collect();
        let mut results = Vec::new();
        for method in [VjpMethod::Forward, VjpMethod::FiniteDiff, VjpMethod::Tape, VjpMethod::CompiledTape] {
            let mut v = Vjp::new(model, method).unwrap();
            let (mut du, mut dp) = (vec![0.0; n], vec![0.0; np]);
            v.apply(model, &w, u, p, 0.5, &mut du, &mut dp);
            results.push((du, dp));
        }
        // Reference: the forward Jacobian, transposed by hand.
        let mut jac = vec![0.0; n * n];
        super::super::ForwardJacobian::new(n, np).evaluate(model, u, p, 0.5, &mut jac, None);
        for j in 0..n {
            let expect: f64 = (0..n).map(|i| jac[i * n + j] * w[i]).sum();
            assert!((results[0].0[j] - expect).abs() < 1e-12);
        }
        for (a, b) in results[0].0.iter().chain(&results[0].1).zip(results[1].0.iter().chain(&results[1].1)) {
            assert!((a - b).abs() < 1e-7 * a.abs().max(1.0), "{a} vs {b}");
        }
        for tape in &results[2..] {
            for (a, b) in results[0].0.iter().chain(&results[0].1).zip(tape.0.iter().chain(&tape.1)) {
                assert!((a - b).abs() < 1e-12 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn forward_and_finite_agree_with_the_jacobian() {
        check(&LotkaVolterra, &[1.2, 0.7], &[1.5, 1.0, 3.0, 1.0]);
        check(&Lorenz, &[1.0, 2.0, 3.0], &[10.0, 28.0, 8.0 / 3.0]);
    }

    #[test]
    fn tape_methods_accumulate_count_and_report() {
        use crate::models::LvPiecewise;
        let p = [1.0, 1.5, 0.5, 2.0];
        for method in [VjpMethod::Tape, VjpMethod::CompiledTape] {
            let mut v = Vjp::new(&LvPiecewise, method).unwrap();
            let (mut du, mut dp) = ([1.0, 1.0], [0.0; 4]);
            for t in [0.5, 0.75, 1.5] {
                v.apply(&LvPiecewise, &[1.0, 0.0], &[2.0, 3.0], &p, t, &mut du, &mut dp);
            }
            // f_0 = a(t) x - x y: d/du = (a - y, -x), d/dp_k = x on the active piece.
            assert_eq!(du, [1.0 + 2.0 * (1.0 - 3.0) + (1.5 - 3.0), 1.0 - 3.0 * 2.0]);
            assert_eq!(dp, [4.0, 2.0, 0.0, 0.0]);
            let s = v.tape_stats().unwrap();
            match method {
                VjpMethod::Tape => assert_eq!((s.recordings, v.evals), (3, 3)),
                _ => assert_eq!((s.recordings, s.replays, s.guard_failures, v.evals), (2, 1, 1, 4)),
            }
        }
        assert!(Vjp::new(&LvPiecewise, VjpMethod::Forward).unwrap().tape_stats().is_none());
        for m in VjpMethod::ALL {
            assert_eq!(VjpMethod::from_name(m.name()), Some(m));
        }
    }

    /// A model with `n` states whose right-hand side reads a value (unreplayable on the tape).
    struct ReadsValues(usize);
    impl Model for ReadsValues {
        fn n_states(&self) -> usize {
            self.0
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs<T: crate::scalar::Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
            for i in 0..self.0 {
                let s = if u[i].value() > 0.0 { p[0] } else { -p[0] };
                du[i] = s * u[i] * u[(i + 1) % self.0];
            }
        }
    }

    #[test]
    fn auto_prefers_the_compiled_tape_for_larger_models() {
        use crate::models::Brusselator1D;
        // 2 n + 3 inputs: 15 and 17.
        assert_eq!(Vjp::new(&Brusselator1D { n: 6 }, VjpMethod::Auto).unwrap().method(), VjpMethod::Forward);
        assert_eq!(Vjp::new(&Brusselator1D { n: 7 }, VjpMethod::Auto).unwrap().method(), VjpMethod::CompiledTape);
        // An unreplayable small model goes back to forward mode after its first recording;
        // a large one stays on the (re-recorded) tape. Either way the VJP is exact.
        for (n, after) in [(20, VjpMethod::Forward), (40, VjpMethod::CompiledTape)] {
            let model = ReadsValues(n);
            let mut auto = Vjp::new(&model, VjpMethod::Auto).unwrap();
            let mut forward = Vjp::new(&model, VjpMethod::Forward).unwrap();
            assert_eq!(auto.method(), VjpMethod::CompiledTape);
            for k in 0..3 {
                let u: Vec<f64> = (0..n).map(|i| ((i + k) as f64).sin()).collect();
                let w: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
                let (mut a, mut b) = ((vec![0.0; n], vec![0.0]), (vec![0.0; n], vec![0.0]));
                auto.apply(&model, &w, &u, &[1.5], 0.0, &mut a.0, &mut a.1);
                forward.apply(&model, &w, &u, &[1.5], 0.0, &mut b.0, &mut b.1);
                for (x, y) in a.0.iter().chain(&a.1).zip(b.0.iter().chain(&b.1)) {
                    assert!((x - y).abs() <= 1e-13 * y.abs().max(1.0), "n = {n}: {x} vs {y}");
                }
            }
            assert_eq!(auto.method(), after, "n = {n}");
        }
    }

    /// `Vjp` lives behind a `Mutex` shared across threads.
    #[test]
    fn vjp_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Vjp>();
    }

    #[test]
    fn model_method_requires_a_model_vjp() {
        assert!(Vjp::new(&Lorenz, VjpMethod::Model).is_err());
        assert_eq!(Vjp::new(&Lorenz, VjpMethod::Auto).unwrap().method(), VjpMethod::Forward);
    }

    /// `u' = -p u` with a hand-written VJP.
    struct OwnVjp;
    impl Model for OwnVjp {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs<T: crate::scalar::Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
            du[0] = -p[0] * u[0];
        }
        fn derivatives(&self) -> crate::capabilities::Derivatives<'_> {
            crate::capabilities::Derivatives::none().vjp(self)
        }
    }
    impl crate::capabilities::AnalyticVjp for OwnVjp {
        /// Counts the calls made with this workspace.
        type Workspace = usize;
        fn workspace(&self) -> usize {
            0
        }
        fn vjp(&self, calls: &mut usize, w: &[f64], u: &[f64], p: &[f64], _t: f64, du: &mut [f64], dp: &mut [f64]) {
            *calls += 1;
            du[0] -= p[0] * w[0];
            dp[0] -= u[0] * w[0];
        }
    }

    #[test]
    fn a_model_vjp_is_used_with_its_own_workspace() {
        for method in [VjpMethod::Auto, VjpMethod::Model] {
            let mut vjp = Vjp::new(&OwnVjp, method).unwrap();
            assert_eq!(vjp.method(), VjpMethod::Model, "{method:?}");
            for k in 1..=2 {
                let (mut du, mut dp) = ([0.0], [0.0]);
                vjp.apply(&OwnVjp, &[2.0], &[3.0], &[0.5], 0.0, &mut du, &mut dp);
                // The model's own products, against the derivatives of -p u by hand.
                assert_eq!((du, dp, vjp.evals), ([-1.0], [-6.0], k), "{method:?}");
            }
            // One workspace, made once and kept: it counted both calls.
            let ws = vjp.workspace.as_ref().and_then(|w| w.downcast_ref::<usize>());
            assert_eq!(ws, Some(&2), "{method:?}");
            // Through a borrowed model, too.
            assert_eq!(Vjp::new(&&OwnVjp, method).unwrap().method(), VjpMethod::Model);
        }
    }
}
