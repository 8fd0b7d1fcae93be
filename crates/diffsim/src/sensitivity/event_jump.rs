//! An event's jump, linearised: the sensitivities' saltation, and its transpose for the
//! adjoints.
//!
//! At an event at time `t` the state read at that fixed time jumps from `u-` to
//! `u+ = a(u-, p, t)` (the affects of the events that fired, in order). When the time is a
//! continuous event's root it moves with the inputs, `dt = v_u du- + v_p dp` with
//! `v = -(g_u, g_p) / (g_u f- + g_t)`, and the jump of the sensitivities is
//!
//! ```text
//! S+ = M_u S- + M_p,   M_u = a_u + w v_u,   M_p = a_p + w v_p,   w = a_u f- + a_t - f+,
//! ```
//!
//! (`v = 0` at scheduled and discrete events, whose times are fixed). Forward sensitivities
//! apply `[M_u M_p]` to their columns ([`Saltation::apply`]); an adjoint sweeping backwards
//! carries `lambda+ = dL/du+` across the jump as `lambda- = M_u^T lambda+` and adds
//! `M_p^T lambda+` to `dL/dp` ([`Jumps::back_across`]).
//!
//! The Jacobians `a_u`, `a_p`, `a_t` and the condition's gradient come from dual numbers,
//! eight directions at a time, as dense matrices: events are few, and the states of the
//! models that have them are not many.

use crate::ad::Dual;
use crate::problem::Model;
use crate::solve::{JumpRecord, Solution};

const CHUNK: usize = 8;

/// The jump of the events `fired` (their affects applied in that order) at `t`, linearised:
/// `[M_u M_p]`, dense, and the state after it.
pub(crate) struct Saltation {
    n: usize,
    /// Column `d` is `[M_u M_p] e_d` (`n` values): the states' directions, then the
    /// parameters'.
    m: Vec<f64>,
    /// The state after the jump.
    pub(crate) after: Vec<f64>,
}

impl Saltation {
    /// The jump at `t` from `u_before`, whose time moves with the inputs as the root of
    /// event `moving`'s condition (`None`: a fixed time).
    pub(crate) fn new<M: Model>(
        model: &M,
        p: &[f64],
        t: f64,
        u_before: &[f64],
        fired: &[usize],
        moving: Option<usize>,
    ) -> Self {
        let (n, np) = (model.n_states(), p.len());
        let u = u_before;
        // Directions: the states, the parameters, then time. Column d of `jac` is the
        // affects' derivative along direction d; `grad` the moving condition's.
        let directions = n + np + 1;
        let mut jac = vec![0.0; directions * n];
        let mut grad = vec![0.0; directions];
        let mut after = vec![0.0; n];
        let mut ud = vec![Dual::<CHUNK>::default(); n];
        let mut pd = vec![Dual::<CHUNK>::default(); np];
        let mut g = vec![Dual::<CHUNK>::default(); if moving.is_some() { model.events().len() } else { 0 }];
        for start in (0..directions).step_by(CHUNK) {
            let width = (directions - start).min(CHUNK);
            let seed = |d: usize| (start..start + width).contains(&d).then(|| d - start);
            for (i, x) in ud.iter_mut().enumerate() {
                *x = seed(i).map_or(Dual::constant(u[i]), |k| Dual::variable(u[i], k));
            }
            for (j, x) in pd.iter_mut().enumerate() {
                *x = seed(n + j).map_or(Dual::constant(p[j]), |k| Dual::variable(p[j], k));
            }
            let td = seed(n + np).map_or(Dual::constant(t), |k| Dual::variable(t, k));
            if let Some(i) = moving {
                model.event_conditions(&mut g, &ud, &pd, td);
                grad[start..start + width].copy_from_slice(&g[i].d[..width]);
            }
            for &index in fired {
                model.event_affect(index, &mut ud, &pd, td);
            }
            for (i, x) in ud.iter().enumerate() {
                after[i] = x.v;
                for k in 0..width {
                    jac[(start + k) * n + i] = x.d[k];
                }
            }
        }
        // The moving time's part, `w v` with `w = a_u f- + a_t - f+`, `v = -grad / rate`;
        // `a_t` is the last column.
        let a_t = jac.split_off((n + np) * n);
        if moving.is_some() {
            let mut f_before = vec![0.0; n];
            model.rhs(&mut f_before, u, p, t);
            let mut w = vec![0.0; n];
            model.rhs(&mut w, &after, p, t);
            for (i, wi) in w.iter_mut().enumerate() {
                let a_u_f: f64 = (0..n).map(|d| jac[d * n + i] * f_before[d]).sum();
                *wi = a_u_f + a_t[i] - *wi;
            }
            let rate = (0..n).map(|d| grad[d] * f_before[d]).sum::<f64>() + grad[n + np];
            for (d, column) in jac.chunks_exact_mut(n).enumerate() {
                let v = -grad[d] / rate;
                for (x, wi) in column.iter_mut().zip(&w) {
                    *x += wi * v;
                }
            }
        }
        Self { n, m: jac, after }
    }

    /// Column `d` of `[M_u M_p]`.
    fn column(&self, d: usize) -> &[f64] {
        &self.m[d * self.n..(d + 1) * self.n]
    }

    /// A sensitivity column across the jump: `s <- M_u s (+ M_p e_param)`, for the
    /// derivative with respect to parameter `param` (or `None`: an initial state's).
    pub(crate) fn apply(&self, s: &mut [f64], param: Option<usize>) {
        let n = self.n;
        let mut out = param.map_or(vec![0.0; n], |j| self.column(n + j).to_vec());
        for (d, &sd) in s.iter().enumerate() {
            for (o, x) in out.iter_mut().zip(self.column(d)) {
                *o += x * sd;
            }
        }
        s.copy_from_slice(&out);
    }
}

/// A solution's jumps, for an adjoint sweeping back across them: each jump's record and
/// `dL/du` of the saves of the state just after it (`save_events`), which the sweep meets
/// before it crosses the jump.
pub(crate) struct Jumps<'a> {
    pub(crate) records: &'a [JumpRecord],
    n: usize,
    /// Per jump, the summed `dL/du` of the saves after it (flat, `n` per jump).
    after: Vec<f64>,
}

impl<'a> Jumps<'a> {
    /// The jumps of `sol`, taking the rows of the saves after each jump out of `g` (`dL/du`
    /// per save, flat): what is left in `g` are the saves a sweep meets between the jumps.
    pub(crate) fn new(sol: &'a Solution<f64>, g: &mut [f64]) -> Self {
        let n = sol.n;
        let mut after = vec![0.0; sol.jumps.len() * n];
        for j in 0..sol.jumps.len() {
            for s in sol.saves_after_jump(j) {
                for (a, x) in after[j * n..(j + 1) * n].iter_mut().zip(&mut g[s * n..(s + 1) * n]) {
                    *a += std::mem::take(x);
                }
            }
        }
        Self { records: &sol.jumps, n, after }
    }

    /// Carry `lambda` (of the state after jump `j`, without the saves there) back across it,
    /// adding its parameter term to `dp`.
    pub(crate) fn back_across<M: Model>(&self, j: usize, model: &M, p: &[f64], lambda: &mut [f64], dp: &mut [f64]) {
        lambda.iter_mut().zip(&self.after[j * self.n..(j + 1) * self.n]).for_each(|(l, a)| *l += a);
        jump_vjp(model, p, &self.records[j], lambda, dp);
    }
}

/// The jumps of a logged solve's events, for a sweep that runs backwards through its steps.
pub(crate) struct EventJumps<'a> {
    jumps: Jumps<'a>,
    /// Per jump, the steps before it.
    steps_before: &'a [usize],
    /// The jumps at and after this index are behind the sweep.
    next: usize,
}

impl<'a> EventJumps<'a> {
    /// `jumps`, which follow `steps_before[j]` steps each, before the sweep.
    pub(crate) fn new(jumps: Jumps<'a>, steps_before: &'a [usize]) -> Self {
        Self { jumps, steps_before, next: steps_before.len() }
    }

    /// How many jumps the sweep has not crossed yet.
    pub(crate) fn pending(&self) -> usize {
        self.next
    }

    /// Carry `lambda` back across the jumps that follow the first `steps` steps (adding
    /// their parameter terms to `dp`), latest first.
    pub(crate) fn back_across<M: Model>(
        &mut self,
        steps: usize,
        model: &M,
        p: &[f64],
        lambda: &mut [f64],
        dp: &mut [f64],
    ) {
        while self.next > 0 && self.steps_before[self.next - 1] == steps {
            self.next -= 1;
            self.jumps.back_across(self.next, model, p, lambda, dp);
        }
    }

    /// Apply to `u` (the end of step `steps - 1`, recomputed) the jumps that followed it.
    pub(crate) fn replay<M: Model>(&self, steps: usize, model: &M, p: &[f64], u: &mut [f64]) {
        let after = self.steps_before.iter().zip(self.jumps.records).filter(|(&s, _)| s == steps);
        for (_, jump) in after {
            jump.apply(model, p, u);
        }
    }
}

/// Carry the adjoint `lambda` (of the state just after the jump `jump`) back across it, and
/// add the jump's parameter term to `dp`.
fn jump_vjp<M: Model>(model: &M, p: &[f64], jump: &JumpRecord, lambda: &mut [f64], dp: &mut [f64]) {
    let s = Saltation::new(model, p, jump.t, &jump.u_before, &jump.fired, jump.moving);
    let n = s.n;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let lambda_after = lambda.to_vec();
    for (d, l) in lambda.iter_mut().enumerate() {
        *l = dot(s.column(d), &lambda_after);
    }
    for (j, x) in dp.iter_mut().enumerate() {
        *x += dot(s.column(n + j), &lambda_after);
    }
}
