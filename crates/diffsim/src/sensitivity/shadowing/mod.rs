//! Shadowing sensitivities: derivatives of long-time averages of chaotic systems.
//!
//! For a chaotic system the derivative of a time average `<J> = (1/T) integral J(u, p) dt`
//! is the quantity a fit or a design needs (how the mean climate of a model moves with a
//! parameter), but every ordinary gradient of a long solve fails for it: the tangents of a
//! chaotic flow grow like `exp(lambda_max t)`, so forward AD, forward sensitivities and
//! adjoints return values that grow with the span instead of converging, and finite
//! differences of one long solve see a trajectory that decorrelates from the unperturbed
//! one. The derivative of the *statistics* exists all the same (for uniformly hyperbolic
//! systems, and in practice for Lorenz-like ones).
//!
//! **Least-squares shadowing** (LSS, Wang, Hu and Blonigan 2014) finds it from one
//! trajectory: among all solutions `v` of the tangent equation `v' = J v + f_p + eta f`
//! (`eta` a time dilation: the perturbed trajectory may run slightly faster or slower), it
//! takes the one of least `integral |v|^2 + alpha^2 eta^2 dt`: the shadowing direction,
//! which stays bounded. Then
//!
//! ```text
//! d<J>/dp = <J_u v + J_p> + <eta (J - <J>)>.
//! ```
//!
//! Discretised on `m` segments of length `dt` (each segment's tangent propagator from a
//! solve on dual numbers, see `segments.rs`), the minimisation is a KKT system whose
//! Schur complement is block tridiagonal and positive definite (`kkt.rs`): `O(m n^3)` to
//! factor, `O(m n^2)` per parameter to solve.
//!
//! | method | solves | memory | parameters |
//! |---|---|---|---|
//! | [`ShadowingMethod::Lss`] | one trajectory on dual numbers carrying `n + n_p` directions | `m (n^2 + n n_p)` numbers | one KKT solve per parameter after one factorisation |
//! | [`ShadowingMethod::AdjointLss`] | the trajectory with `n` directions; one KKT solve; per segment a forward and a backward (adjoint) solve | `m n^2` numbers | all at once: the solves' cost does not grow with `n_p` (the adjoint's states do) |
//! | [`ShadowingMethod::Nilss`] | the trajectory with `n + n_p` directions; a QR of `u` tangents per segment; a least-squares problem of `u` unknowns per segment (`nilss.rs`) | `m (u^2 + u n_p)` numbers after the tangents | one small solve per parameter |
//!
//! The two LSS forms solve the same least-squares problem and agree to the solves'
//! tolerance; forward LSS is the cheaper for a few parameters, adjoint LSS for many (a
//! network inside a chaotic model). NILSS minimises over the `u` unstable directions only
//! (`ShadowingOptions::unstable`, the number of positive Lyapunov exponents), without the
//! dilation weight `alpha`: its least-squares problem is `u / n` the size of LSS's, the
//! saving that matters for large systems with few unstable directions (the tangents here
//! still come from the full propagators; a tangent solve per direction is the next step
//! for large `n`). On Lorenz the three agree within about 0.015.
//!
//! The result is biased at the window's ends (the shadowing direction is least accurate
//! there); [`Window::SinSquared`] weights the average by `sin^2` over the window, which
//! removes most of that bias for the same trajectory. The spin-up (`ShadowingOptions::spinup`)
//! discards the transient before the trajectory reaches the attractor.

mod kkt;
mod naive;
mod nilss;
mod segments;

pub use naive::naive_derivative;

use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::sensitivity::adjoint::Pullback;
use crate::sensitivity::RunningCost;
use crate::solve::{solve_unsized, Algorithm, SaveAt, SolveOptions, Stats};
use kkt::BlockTridiagonal;
use segments::Segments;

/// Which shadowing method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadowingMethod {
    /// Forward least-squares shadowing, with time dilation.
    Lss,
    /// Adjoint least-squares shadowing: one KKT solve for every parameter, and the
    /// parameters' terms pulled back through each segment by an adjoint solve.
    AdjointLss,
    /// Non-intrusive least-squares shadowing: the shadowing direction in the span of
    /// `ShadowingOptions::unstable` homogeneous tangents, renormalised by QR at the segment
    /// boundaries.
    Nilss,
}

impl ShadowingMethod {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            ShadowingMethod::Lss => "lss",
            ShadowingMethod::AdjointLss => "adjoint-lss",
            ShadowingMethod::Nilss => "nilss",
        }
    }
}

/// The weight of the time average over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    /// Uniform: `<J> = (1/T) integral J dt`.
    #[default]
    Uniform,
    /// `(2/T) sin^2(pi (t - t_s) / T)`: zero at the window's ends, where the shadowing
    /// direction is least accurate.
    SinSquared,
}

impl Window {
    /// The weight at fraction `s` of the window (integrating to 1 over `[0, 1]`).
    fn weight(self, s: f64) -> f64 {
        match self {
            Window::Uniform => 1.0,
            Window::SinSquared => 2.0 * (std::f64::consts::PI * s).sin().powi(2),
        }
    }

    /// The weight's derivative with respect to `s`.
    fn slope(self, s: f64) -> f64 {
        match self {
            Window::Uniform => 0.0,
            Window::SinSquared => 2.0 * std::f64::consts::PI * (2.0 * std::f64::consts::PI * s).sin(),
        }
    }
}

/// Options of a shadowing derivative.
#[derive(Clone, Debug)]
pub struct ShadowingOptions {
    /// Time discarded at the start of the span before the window (the transient onto the
    /// attractor).
    pub spinup: f64,
    /// Segment length (the tangents start afresh on each; a fraction of the Lyapunov time).
    pub segment: f64,
    /// Weight of the time dilation in the least-squares objective.
    pub alpha: f64,
    /// Weight of the time average over the window.
    pub window: Window,
    /// NILSS: the number of unstable directions (positive Lyapunov exponents) to shadow.
    pub unstable: usize,
    /// The explicit method of the trajectory and its tangents.
    pub alg: Algorithm,
    /// Tolerances of the solves.
    pub solve: SolveOptions,
}

impl Default for ShadowingOptions {
    fn default() -> Self {
        Self {
            spinup: 10.0,
            segment: 0.05,
            alpha: 10.0,
            window: Window::Uniform,
            unstable: 1,
            alg: Algorithm::Tsit5,
            solve: SolveOptions::default().rtol(1e-10).atol(1e-10),
        }
    }
}

/// A shadowing derivative.
#[derive(Clone, Debug)]
pub struct Shadowing {
    /// The (windowed) time average of the objective over the window.
    pub average: f64,
    /// Its derivative with respect to each parameter.
    pub dj_dp: Vec<f64>,
    /// The number of segments.
    pub segments: usize,
    /// Work of the solves.
    pub stats: Stats,
}

/// The derivative of the long-time average of `objective` over `problem`'s span (less the
/// spin-up) with respect to the parameters, by shadowing.
///
/// ```
/// use diffsim::models::Lorenz;
/// use diffsim::sensitivity::shadowing::{shadowing, ShadowingMethod, ShadowingOptions};
/// use diffsim::sensitivity::RunningCost;
/// use diffsim::{Problem, Scalar};
///
/// struct Z;
/// impl RunningCost for Z {
///     fn cost<T: Scalar>(&self, u: &[T], _p: &[T], _t: T) -> T {
///         u[2]
///     }
/// }
/// let prob = Problem::new(Lorenz, vec![1.0, 1.0, 28.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 60.0)).unwrap();
/// let s = shadowing(&prob, &Z, ShadowingMethod::Lss, &ShadowingOptions::default()).unwrap();
/// // d<z>/d rho is about 1 on the Lorenz attractor.
/// assert!((s.dj_dp[1] - 1.0).abs() < 0.2, "{:?}", s.dj_dp);
/// ```
pub fn shadowing<M: Model, C: RunningCost>(
    problem: &Problem<M>,
    objective: &C,
    method: ShadowingMethod,
    opts: &ShadowingOptions,
) -> Result<Shadowing> {
    problem.validate()?;
    let (t0, t1) = problem.tspan;
    let (start, m, dt) = window(opts, (t0, t1))?;
    if opts.alg.is_stiff() || opts.alg == Algorithm::Auto {
        return Err(DiffsimError::InvalidOption {
            name: "alg",
            why: "shadowing runs the tangents on dual numbers through an explicit method: use tsit5, dp5, vern7 or bs3"
                .into(),
        });
    }
    // Phase 1: spin up onto the attractor.
    let mut stats = Stats::default();
    let mut u = problem.u0.clone();
    if start > t0 {
        let spin_opts = SolveOptions { saveat: SaveAt::End, ..opts.solve.clone() };
        let spin = solve_unsized(&problem.model, &u, &problem.p, (t0, start), opts.alg, &spin_opts, None)?;
        crate::sensitivity::require_success(&spin)?;
        stats += spin.stats();
        u = spin.u_final().to_vec();
    }
    // Phase 2: the segments and their tangents (the parameters' only for forward LSS).
    let with_params = method != ShadowingMethod::AdjointLss;
    let span = (start, dt, m);
    let seg = Segments::compute(&problem.model, objective, &u, &problem.p, span, opts.alg, &opts.solve, with_params)?;
    stats += seg.stats;
    // Phase 3: the least-squares problem.
    let weights = Weights::new(&seg, opts.window);
    let lss = || {
        kkt::lss_system(&seg, opts.alpha).ok_or_else(|| DiffsimError::InvalidOption {
            name: "problem",
            why: "the shadowing system is singular (a tangent propagator is not finite)".into(),
        })
    };
    let dj_dp = match method {
        ShadowingMethod::Lss => forward_lss(&seg, &lss()?, &weights, opts.alpha),
        ShadowingMethod::AdjointLss => {
            let pullback = Pullback::new(&problem.model, &problem.p, opts.alg, &opts.solve)?;
            adjoint_lss(&seg, &lss()?, &weights, opts.alpha, &pullback, &mut stats)?
        }
        ShadowingMethod::Nilss => nilss::nilss(&problem.model, &problem.p, &seg, &weights, opts.window, opts.unstable)?,
    };
    Ok(Shadowing { average: weights.average, dj_dp, segments: m, stats })
}

/// The window after the spin-up and its segments: `(start, m, dt)`.
fn window(opts: &ShadowingOptions, (t0, t1): (f64, f64)) -> Result<(f64, usize, f64)> {
    let bad = |name: &'static str, why: String| Err(DiffsimError::InvalidOption { name, why });
    if t0.is_nan() || t1.is_nan() || t1 <= t0 {
        return bad("tspan", format!("shadowing needs a forward span, got ({t0}, {t1})"));
    }
    if opts.spinup.is_nan() || opts.spinup < 0.0 || opts.spinup >= t1 - t0 {
        return bad("spinup", format!("{} must be >= 0 and shorter than the span {}", opts.spinup, t1 - t0));
    }
    let positive = |x: f64| x > 0.0;
    if !positive(opts.segment) || !positive(opts.alpha) {
        return bad("segment", format!("the segment ({}) and alpha ({}) must be > 0", opts.segment, opts.alpha));
    }
    let start = t0 + opts.spinup;
    let m = ((t1 - start) / opts.segment).round().max(1.0);
    if m > 1e8 {
        return bad("segment", format!("{m} segments: choose a longer segment"));
    }
    Ok((start, m as usize, (t1 - start) / m))
}

/// Quadrature weights of the windowed time average: per boundary (trapezoid, for
/// `<J_u v + J_p>`) and per segment (Simpson on its ends and midpoint, for `<J>` and
/// `<eta (J - <J>)>`).
struct Weights {
    /// Per boundary `k`, the weight of `J_u(u_k) v_k` (and of `J_p`).
    point: Vec<f64>,
    /// Per segment, `integral w (J - <J>) dt`.
    dilation: Vec<f64>,
    average: f64,
}

impl Weights {
    fn new(seg: &Segments, window: Window) -> Self {
        let m = seg.len();
        let span = seg.dt * m as f64;
        let w = |s: f64| window.weight(s) / span;
        let at = |k: usize| w(k as f64 / m as f64);
        let mid = |i: usize| w((i as f64 + 0.5) / m as f64);
        let mut point: Vec<f64> = (0..=m).map(|k| seg.dt * at(k)).collect();
        point[0] *= 0.5;
        point[m] *= 0.5;
        let simpson = |i: usize, shift: f64| {
            let j = |k: usize| seg.j[k] - shift;
            seg.dt / 6.0 * (at(i) * j(2 * i) + 4.0 * mid(i) * j(2 * i + 1) + at(i + 1) * j(2 * i + 2))
        };
        let average: f64 = (0..m).map(|i| simpson(i, 0.0)).sum();
        let dilation = (0..m).map(|i| simpson(i, average)).collect();
        Self { point, dilation, average }
    }
}

/// Forward LSS: per parameter, `S w = g`, then `v = B^T w`, `eta = F^T w / alpha^2` and the
/// derivative.
fn forward_lss(seg: &Segments, kkt: &BlockTridiagonal, weights: &Weights, alpha: f64) -> Vec<f64> {
    let (n, np, m, dt) = (seg.n, seg.np, seg.len(), seg.dt);
    let mut w = vec![0.0; m * n];
    let mut v = vec![0.0; n];
    (0..np)
        .map(|j| {
            for i in 0..m {
                seg.g_column(i, j, &mut w[i * n..(i + 1) * n]);
            }
            kkt.solve(&mut w);
            let mut d: f64 = (0..=m).map(|k| weights.point[k] * seg.j_p[k * np + j]).sum();
            for k in 0..=m {
                // v_k = w_{k-1} - Phi_k^T w_k (the terms that exist).
                v.fill(0.0);
                if k > 0 {
                    v.copy_from_slice(&w[(k - 1) * n..k * n]);
                }
                if k < m {
                    let phi = seg.phi(k);
                    for (r, vr) in v.iter_mut().enumerate() {
                        *vr -= (0..n).map(|c| phi[c * n + r] * w[k * n + c]).sum::<f64>();
                    }
                }
                d += weights.point[k] * (0..n).map(|r| seg.j_u[k * n + r] * v[r]).sum::<f64>();
            }
            for i in 0..m {
                // eta_i = (F^T w)_i / alpha^2, F's column i = -dt f_{i+1}.
                let f = seg.f_end(i);
                let eta = -dt * (0..n).map(|r| f[r] * w[i * n + r]).sum::<f64>() / (alpha * alpha);
                d += eta * weights.dilation[i];
            }
            d
        })
        .collect()
}

/// Adjoint LSS: the derivative is `r^T S^{-1} g + <J_p>` for the objective's vector
/// `r = B c + F d / alpha^2` (`c` the weights of `J_u` at the boundaries, `d` the dilation
/// weights), so one solve `S w = r` serves every parameter, and `w_i^T g_i` is pulled back
/// through segment `i` by an adjoint solve, never forming `g`.
fn adjoint_lss<M: Model>(
    seg: &Segments,
    kkt: &BlockTridiagonal,
    weights: &Weights,
    alpha: f64,
    pullback: &Pullback<'_, M>,
    stats: &mut Stats,
) -> Result<Vec<f64>> {
    let (n, np, m, dt) = (seg.n, seg.np, seg.len(), seg.dt);
    let c = |k: usize, r: usize| weights.point[k] * seg.j_u[k * n + r];
    let mut w = vec![0.0; m * n];
    for i in 0..m {
        let (phi, f) = (seg.phi(i), seg.f_end(i));
        for r in 0..n {
            let phi_c: f64 = (0..n).map(|k| phi[r * n + k] * c(i, k)).sum();
            w[i * n + r] = c(i + 1, r) - phi_c - dt * f[r] * weights.dilation[i] / (alpha * alpha);
        }
    }
    kkt.solve(&mut w);
    let mut dj: Vec<f64> = (0..np).map(|j| (0..=m).map(|k| weights.point[k] * seg.j_p[k * np + j]).sum()).collect();
    for i in 0..m {
        let (a, b) = (seg.t0 + i as f64 * dt, seg.t0 + (i + 1) as f64 * dt);
        pullback.add(&seg.u[i * n..(i + 1) * n], (a, b), &w[i * n..(i + 1) * n], &mut dj, stats)?;
    }
    Ok(dj)
}
