//! The adjoint of an event's jump: the transpose of the sensitivities' saltation.
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
//! (`v = 0` at scheduled and discrete events, whose times are fixed). An adjoint sweeping
//! backwards carries `lambda+ = dL/du+` across the jump as `lambda- = M_u^T lambda+` and adds
//! `M_p^T lambda+` to `dL/dp`: [`jump_vjp`].
//!
//! The Jacobians `a_u`, `a_p`, `a_t` and the condition's gradient come from dual numbers,
//! eight directions at a time, as dense matrices: events are few, and the states of the
//! models that have them are not many.

use crate::ad::Dual;
use crate::problem::Model;
use crate::solve::JumpRecord;

const CHUNK: usize = 8;

/// Carry the adjoint `lambda` (of the state just after the jump `jump`) back across it, and
/// add the jump's parameter term to `dp`.
pub(crate) fn jump_vjp<M: Model>(model: &M, p: &[f64], jump: &JumpRecord, lambda: &mut [f64], dp: &mut [f64]) {
    let (n, np) = (model.n_states(), p.len());
    let t = jump.t;
    let u = &jump.u_before;
    let mut f_before = vec![0.0; n];
    model.rhs(&mut f_before, u, p, t);
    // Directions: the states, the parameters, then time. Column d of `jac` is the affects'
    // derivative along direction d (n values each); `grad` the moving condition's.
    let directions = n + np + 1;
    let mut jac = vec![0.0; directions * n];
    let mut grad = vec![0.0; directions];
    let mut after = vec![0.0; n];
    let m = model.events().len();
    let mut ud = vec![Dual::<CHUNK>::default(); n];
    let mut pd = vec![Dual::<CHUNK>::default(); np];
    let mut g = vec![Dual::<CHUNK>::default(); m];
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
        if let Some(i) = jump.moving {
            model.event_conditions(&mut g, &ud, &pd, td);
            grad[start..start + width].copy_from_slice(&g[i].d[..width]);
        }
        for &index in &jump.fired {
            model.event_affect(index, &mut ud, &pd, td);
        }
        for (i, x) in ud.iter().enumerate() {
            after[i] = x.v;
            for k in 0..width {
                jac[(start + k) * n + i] = x.d[k];
            }
        }
    }
    let column = |d: usize| &jac[d * n..(d + 1) * n];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    // The fixed-time part: lambda- = a_u^T lambda+, dp += a_p^T lambda+.
    let lambda_after = lambda.to_vec();
    for (i, l) in lambda.iter_mut().enumerate() {
        *l = dot(column(i), &lambda_after);
    }
    for (j, d) in dp.iter_mut().enumerate() {
        *d += dot(column(n + j), &lambda_after);
    }
    // The moving time's part: v^T (w . lambda+).
    if jump.moving.is_some() {
        let rate = dot(&grad[..n], &f_before) + grad[n + np];
        let mut f_after = vec![0.0; n];
        model.rhs(&mut f_after, &after, p, t);
        // w . lambda+ = (a_u f-) . lambda+ + a_t . lambda+ - f+ . lambda+, the first term as
        // f- . (a_u^T lambda+), which `lambda` now holds.
        let a_u_f = dot(&f_before, lambda);
        let w_lambda = a_u_f + dot(column(n + np), &lambda_after) - dot(&f_after, &lambda_after);
        let scale = -w_lambda / rate;
        for (l, gu) in lambda.iter_mut().zip(&grad[..n]) {
            *l += scale * gu;
        }
        for (d, gp) in dp.iter_mut().zip(&grad[n..n + np]) {
            *d += scale * gp;
        }
    }
}
