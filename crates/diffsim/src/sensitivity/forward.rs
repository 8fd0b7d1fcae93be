//! Forward sensitivities: the model augmented with its sensitivity matrix
//! `S = [du/dp  du/du0]` (`n x (n_p + n)`),
//!
//! ```text
//! u' = f(u, p, t),     S' = (df/du) S + [df/dp  0],     S(t0) = [0  I],
//! ```
//!
//! solved as one system under one error control (the sensitivities' errors steer the steps
//! too). `J S + f_p` is computed column by column as directional derivatives of `f` on
//! 8-wide dual numbers, never forming `J`. Then `dL/dtheta = sum_i (dg/du(t_i))^T S(t_i)`.
//! Cost grows with `n_p + n` (one augmented state block per input); memory is one
//! augmented state. Works with every method: a stiff method gets the augmented Jacobian,
//! `J` exactly (AD) and the dependence of `S'` on `u` by central differences.

use super::event_jump::Saltation;
use super::{require_success, Gradient, SavedLoss};
use crate::ad::{Dual, ForwardJacobian};
use crate::capabilities::{AnalyticJacobian, AnalyticTimeDerivative, Derivatives};
use crate::error::{DiffsimError, Result};
use crate::event::Event;
use crate::problem::{Model, Problem};
use crate::scalar::Scalar;
use crate::solve::{Algorithm, RetCode, Solution, SolveOptions, Stats, Tolerance};
use std::sync::Mutex;

const CHUNK: usize = 8;

/// Buffers of the augmented right-hand side.
struct Buffers {
    u: Vec<Dual<CHUNK>>,
    p: Vec<Dual<CHUNK>>,
    f: Vec<Dual<CHUNK>>,
    z: Vec<f64>,
    dz_plus: Vec<f64>,
    dz_minus: Vec<f64>,
    jac: ForwardJacobian,
    jac_u: Vec<f64>,
    evals: usize,
}

/// The model augmented with its sensitivities (state `[u; S column by column]`).
struct Augmented<'a, M> {
    model: &'a M,
    p: &'a [f64],
    /// The columns `du/du0` follow `du/dp`.
    with_u0: bool,
    buffers: Mutex<Buffers>,
}

impl<M: Model> Augmented<'_, M> {
    fn columns(&self) -> usize {
        self.p.len() + if self.with_u0 { self.model.n_states() } else { 0 }
    }

    /// The augmented right-hand side on values (the solver's AD cannot see through the
    /// directional derivatives: the Jacobian and df/dt are provided below).
    fn eval<T: Scalar>(&self, dz: &mut [T], z: &[T], t: f64, b: &mut Buffers) {
        let (n, m) = (self.model.n_states(), self.columns());
        let mut start = 0;
        while start < m {
            let width = (m - start).min(CHUNK);
            // Direction k is column start + k: u seeded with S's column, p with e_col.
            for (i, d) in b.u.iter_mut().enumerate() {
                let mut x = Dual::constant(z[i].value());
                for k in 0..width {
                    x.d[k] = z[n + (start + k) * n + i].value();
                }
                *d = x;
            }
            for (j, d) in b.p.iter_mut().enumerate() {
                *d = if (start..start + width).contains(&j) {
                    Dual::variable(self.p[j], j - start)
                } else {
                    Dual::constant(self.p[j])
                };
            }
            self.model.rhs(&mut b.f, &b.u, &b.p, Dual::constant(t));
            b.evals += 1;
            if start == 0 {
                for (o, fi) in dz[..n].iter_mut().zip(&b.f) {
                    *o = T::from_f64(fi.v);
                }
            }
            for k in 0..width {
                let col = n + (start + k) * n;
                for (o, fi) in dz[col..col + n].iter_mut().zip(&b.f) {
                    *o = T::from_f64(fi.d[k]);
                }
            }
            start += width;
        }
    }
}

impl<M: Model> Model for Augmented<'_, M> {
    fn n_states(&self) -> usize {
        self.model.n_states() * (1 + self.columns())
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, dz: &mut [T], z: &[T], _p: &[T], t: T) {
        let mut b = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        self.eval(dz, z, t.value(), &mut b);
    }
    fn tstops(&self, _p: &[f64]) -> Vec<f64> {
        self.model.tstops(self.p)
    }
    fn derivatives(&self) -> Derivatives<'_> {
        Derivatives::none().jacobian(self).time_derivative(self)
    }
    fn events(&self) -> Vec<Event> {
        self.model.events()
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], z: &[T], _p: &[T], t: T) {
        let p: Vec<T> = self.p.iter().map(|&x| T::from_f64(x)).collect();
        self.model.event_conditions(g, &z[..self.model.n_states()], &p, t);
    }
    fn event_affect<T: Scalar>(&self, index: usize, z: &mut [T], _p: &[T], t: T) {
        // The augmented system is solved on plain numbers.
        let mut values: Vec<f64> = z.iter().map(|x| x.value()).collect();
        self.jump(index, &mut values, t.value());
        for (x, v) in z.iter_mut().zip(values) {
            *x = T::from_f64(v);
        }
    }
}

impl<M: Model> Augmented<'_, M> {
    /// Event `index`'s jump of the augmented state `z = [u; S]` at `t`: the state's affect,
    /// and each sensitivity column's saltation (see [`Saltation`]; the event time moves with
    /// the inputs for a continuous event, and is fixed for the others). Events firing
    /// together each jump by their own condition, in turn.
    fn jump(&self, index: usize, z: &mut [f64], t: f64) {
        let (n, np) = (self.model.n_states(), self.p.len());
        let moving = self.model.events().get(index).and_then(|e| e.crossing()).map(|_| index);
        let saltation = Saltation::new(self.model, self.p, t, &z[..n], &[index], moving);
        z[..n].copy_from_slice(&saltation.after);
        for (col, s) in z[n..].chunks_exact_mut(n).enumerate() {
            saltation.apply(s, (col < np).then_some(col));
        }
    }
}

impl<M: Model> AnalyticJacobian for Augmented<'_, M> {
    fn jacobian(&self, jac: &mut [f64], z: &[f64], _p: &[f64], t: f64) {
        // Lower block-triangular: J on the diagonal blocks, d(S')/du in the first block
        // column (second derivatives of f, by central differences).
        let n = self.model.n_states();
        let big = z.len();
        jac.fill(0.0);
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut *guard;
        let mut jac_u = std::mem::take(&mut b.jac_u);
        match self.model.derivatives().analytic_jacobian() {
            Some(own) => own.jacobian(&mut jac_u, &z[..n], self.p, t),
            None => b.evals += b.jac.evaluate(self.model, &z[..n], self.p, t, &mut jac_u, None),
        }
        for block in 0..=self.columns() {
            let o = block * n;
            for i in 0..n {
                jac[(o + i) * big + o..(o + i) * big + o + n].copy_from_slice(&jac_u[i * n..(i + 1) * n]);
            }
        }
        b.jac_u = jac_u;
        let (mut zz, mut plus, mut minus) =
            (std::mem::take(&mut b.z), std::mem::take(&mut b.dz_plus), std::mem::take(&mut b.dz_minus));
        zz.copy_from_slice(z);
        for j in 0..n {
            let h = 1e-6 * z[j].abs().max(1e-3);
            zz[j] = z[j] + h;
            self.eval(&mut plus, &zz, t, b);
            zz[j] = z[j] - h;
            self.eval(&mut minus, &zz, t, b);
            zz[j] = z[j];
            for i in n..big {
                jac[i * big + j] = (plus[i] - minus[i]) / (2.0 * h);
            }
        }
        (b.z, b.dz_plus, b.dz_minus) = (zz, plus, minus);
    }
}

impl<M: Model> AnalyticTimeDerivative for Augmented<'_, M> {
    fn time_derivative(&self, dfdt: &mut [f64], z: &[f64], _p: &[f64], t: f64) {
        let delta = 1e-6 * t.abs().max(1e-3);
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut *guard;
        let (mut plus, mut minus) = (std::mem::take(&mut b.dz_plus), std::mem::take(&mut b.dz_minus));
        self.eval(&mut plus, z, t + delta, b);
        self.eval(&mut minus, z, t - delta, b);
        for ((d, a), c) in dfdt.iter_mut().zip(&plus).zip(&minus) {
            *d = (a - c) / (2.0 * delta);
        }
        (b.dz_plus, b.dz_minus) = (plus, minus);
    }
}

/// Per-state tolerances apply to each sensitivity column as to its state.
fn augment_tolerance(tol: &Tolerance, n: usize, blocks: usize) -> Tolerance {
    match tol {
        Tolerance::PerComponent(v) if v.len() == n => Tolerance::PerComponent(v.repeat(blocks)),
        other => other.clone(),
    }
}

/// dL/dp and dL/du0 by forward sensitivities.
/// Above this many augmented states a stiff method's dense Jacobian (8 `big^2` bytes, 72 MB
/// here) and its LU are out of proportion: forward sensitivities refuse, pointing to the
/// adjoints.
const MAX_STIFF_AUGMENTED: usize = 3000;

/// Solve the model augmented with its sensitivities; the solution (state `[u; S column by
/// column]`) and the model's own right-hand-side evaluations.
fn solve_augmented<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    wrt: Wrt,
) -> Result<(Solution<f64>, usize)> {
    // Sizes in the user's terms (u0, p): past this point the only system is the augmented one.
    problem.validate()?;
    let model = &problem.model;
    if model.mass_matrix().is_some() {
        return Err(DiffsimError::Unsupported {
            alg: "forward sensitivity",
            why: "models with a mass matrix (DAEs) need consistent initial sensitivities, not supported yet".into(),
        });
    }
    let (n, np) = (problem.u0.len(), problem.p.len());
    let with_u0 = wrt == Wrt::ParametersAndInitialState;
    let m = np + if with_u0 { n } else { 0 };
    let big = n * (1 + m);
    if (alg.is_stiff() || alg == Algorithm::Auto) && big > MAX_STIFF_AUGMENTED {
        return Err(DiffsimError::InvalidOption {
            name: "sensealg",
            why: format!(
                "forward sensitivities through a stiff method factor the dense Jacobian of the \
                 augmented system, {big} states here ({:.1} GB); use an adjoint (interpolating, \
                 quadrature, checkpointing or discrete)",
                (big * big * 8) as f64 / 1e9
            ),
        });
    }
    let buffers = Buffers {
        u: vec![Dual::default(); n],
        p: vec![Dual::default(); np],
        f: vec![Dual::default(); n],
        z: vec![0.0; big],
        dz_plus: vec![0.0; big],
        dz_minus: vec![0.0; big],
        jac: ForwardJacobian::new(n, np),
        jac_u: vec![0.0; n * n],
        evals: 0,
    };
    let augmented = Augmented { model, p: &problem.p, with_u0, buffers: Mutex::new(buffers) };
    let mut z0 = vec![0.0; big];
    z0[..n].copy_from_slice(&problem.u0);
    if with_u0 {
        for k in 0..n {
            // Column np + k is du/du0_k, starting as e_k.
            z0[n + (np + k) * n + k] = 1.0;
        }
    }
    let aug_opts = SolveOptions {
        rtol: augment_tolerance(&opts.rtol, n, 1 + m),
        atol: augment_tolerance(&opts.atol, n, 1 + m),
        dense: Some(false),
        ..opts.clone()
    };
    let sol = crate::solve::solve_unsized(&augmented, &z0, &[], problem.tspan, alg, &aug_opts, None)?;
    let evals = augmented.buffers.lock().unwrap_or_else(|e| e.into_inner()).evals;
    Ok((sol, evals))
}

pub(crate) fn forward_sensitivity<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    loss: &impl SavedLoss,
) -> Result<Gradient> {
    let (n, np) = (problem.u0.len(), problem.p.len());
    let m = np + n;
    let (sol, evals) = solve_augmented(problem, alg, opts, Wrt::ParametersAndInitialState)?;
    require_success(&sol)?;
    let saves = sol.len();
    let values: Vec<f64> = (0..saves).flat_map(|i| sol.u(i)[..n].to_vec()).collect();
    loss.check(values.len())?;
    let mut g = vec![0.0; values.len()];
    let value = loss.value_and_gradient(&values, &mut g);
    let mut grad = vec![0.0; m];
    for i in 0..saves {
        let z = sol.u(i);
        let gi = &g[i * n..(i + 1) * n];
        for (c, out) in grad.iter_mut().enumerate() {
            let col = &z[n + c * n..n + (c + 1) * n];
            *out += gi.iter().zip(col).map(|(a, b)| a * b).sum::<f64>();
        }
    }
    let mut stats = sol.stats;
    // Count evaluations of the model itself (each augmented one is several, on duals).
    stats.nf = evals;
    Ok(Gradient::computed(value, grad[..np].to_vec(), grad[np..].to_vec(), stats))
}

/// The states and their first derivatives with respect to the parameters and the initial
/// state at the saved times, from [`forward_sensitivities`].
#[derive(Clone, Debug)]
pub struct Sensitivities {
    n: usize,
    np: usize,
    t: Vec<f64>,
    u: Vec<f64>,
    du_dp: Vec<f64>,
    du_du0: Vec<f64>,
    /// How the solve ended; the arrays hold the saves made before a failure.
    pub retcode: RetCode,
    /// Solver statistics (`nf` counts evaluations of the model's own right-hand side).
    pub stats: Stats,
}

impl Sensitivities {
    /// The saved times.
    pub fn t(&self) -> &[f64] {
        &self.t
    }
    /// The number of saves.
    pub fn len(&self) -> usize {
        self.t.len()
    }
    /// True when nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
    /// The state at save `i`.
    pub fn u(&self, i: usize) -> &[f64] {
        &self.u[i * self.n..(i + 1) * self.n]
    }
    /// `du/dp` at save `i`, row-major: entry `(k, j)` at `k * n_params + j` is `du_k/dp_j`.
    pub fn du_dp(&self, i: usize) -> &[f64] {
        let size = self.n * self.np;
        &self.du_dp[i * size..(i + 1) * size]
    }
    /// `du/du0` at save `i`, row-major: entry `(k, j)` at `k * n + j` is `du_k/du0_j`;
    /// empty when only [`Wrt::Parameters`] were asked for.
    pub fn du_du0(&self, i: usize) -> &[f64] {
        if self.du_du0.is_empty() {
            return &[];
        }
        let size = self.n * self.n;
        &self.du_du0[i * size..(i + 1) * size]
    }
}

/// What [`forward_sensitivities_wrt`] differentiates with respect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrt {
    /// `du/dp` only: `n_p` sensitivity columns (a fit that keeps the initial state).
    Parameters,
    /// `du/dp` and `du/du0`: `n_p + n` columns.
    ParametersAndInitialState,
}

/// Solve `problem` together with its forward sensitivities, saving as `opts.saveat` asks:
/// the states, `du/dp` and `du/du0` at each saved time (what a Gauss-Newton or
/// Levenberg-Marquardt fit needs for the Jacobian of its residuals).
///
/// A failed solve is not an error: see [`Sensitivities::retcode`].
///
/// ```
/// use diffsim::sensitivity::forward_sensitivities;
/// use diffsim::{Algorithm, Model, Problem, SaveAt, Scalar, SolveOptions};
///
/// /// `u' = -k u`: `u = u0 exp(-k t)`, `du/dk = -t u`, `du/du0 = exp(-k t)`.
/// struct Decay;
/// impl Model for Decay {
///     fn n_states(&self) -> usize { 1 }
///     fn n_params(&self) -> usize { 1 }
///     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) { du[0] = -p[0] * u[0]; }
/// }
/// let problem = Problem::new(Decay, vec![2.0], vec![0.5], (0.0, 2.0)).unwrap();
/// let opts = SolveOptions { rtol: 1e-10.into(), atol: 1e-10.into(), saveat: SaveAt::Times(vec![2.0]), ..Default::default() };
/// let s = forward_sensitivities(&problem, Algorithm::Tsit5, &opts).unwrap();
/// let u = 2.0 * (-1.0f64).exp();
/// assert!((s.u(0)[0] - u).abs() < 1e-8);
/// assert!((s.du_dp(0)[0] + 2.0 * u).abs() < 1e-8);
/// assert!((s.du_du0(0)[0] - (-1.0f64).exp()).abs() < 1e-8);
/// ```
pub fn forward_sensitivities<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
) -> Result<Sensitivities> {
    forward_sensitivities_wrt(problem, alg, opts, Wrt::ParametersAndInitialState)
}

/// [`forward_sensitivities`] with respect to the parameters only, or to both: the `du/du0`
/// columns cost as much as `n` more parameters, and they also steer the step sizes, so a
/// fit that keeps the initial state fixed leaves them out.
pub fn forward_sensitivities_wrt<M: Model>(
    problem: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    wrt: Wrt,
) -> Result<Sensitivities> {
    let (n, np) = (problem.u0.len(), problem.p.len());
    let (sol, evals) = solve_augmented(problem, alg, opts, wrt)?;
    let with_u0 = wrt == Wrt::ParametersAndInitialState;
    let saves = sol.len();
    let mut out = Sensitivities {
        n,
        np,
        t: sol.t().to_vec(),
        u: Vec::with_capacity(saves * n),
        du_dp: Vec::with_capacity(saves * n * np),
        du_du0: Vec::with_capacity(if with_u0 { saves * n * n } else { 0 }),
        retcode: sol.retcode(),
        stats: sol.stats,
    };
    out.stats.nf = evals;
    for i in 0..saves {
        let z = sol.u(i);
        out.u.extend_from_slice(&z[..n]);
        // Column c of S is z[n + c n .. n + (c + 1) n]; store row-major by state.
        for k in 0..n {
            out.du_dp.extend((0..np).map(|c| z[n + c * n + k]));
        }
        if with_u0 {
            for k in 0..n {
                out.du_du0.extend((0..n).map(|c| z[n + (np + c) * n + k]));
            }
        }
    }
    Ok(out)
}
