//! The continuous-time echo state network surrogate of a stiff model (after Anantharaman et
//! al., 2020): predictions at new parameters without a stiff solve.
//!
//! One reference solution `x*(t)` (at the problem's parameters) drives a non-stiff
//! reservoir ODE, `r' = tanh(A r + W_in x*(t) / s)` (`A` sparse random with a set spectral
//! radius, `s` each state's scale). Its trajectory `r(t)` is shared by every parameter:
//! for each training sample `p_j` a stiff solve gives `x_j(t_k)` at the save times, and the
//! readout `W_out(p_j)` with `x_j(t_k) ~ W_out(p_j) [r(t_k); 1]` is fitted by least squares
//! (one column-pivoted QR of the shared feature matrix for every sample). Between samples
//! `W_out(p)` is interpolated by radial basis functions (cubic, with a linear tail) in
//! log-parameter coordinates. A prediction is then a small matrix product.
//!
//! Save times spanning decades (a stiff system's, log-spaced) are followed in log time: the
//! reservoir runs in `tau = ln t`, where the reference solution's decades are of equal length
//! and the reservoir's own time scale (one unit) resolves each of them.

use super::esn::{sparse_reservoir, uniform};
use crate::error::{DiffsimError, Result};
use crate::problem::{Model, Problem};
use crate::scalar::Scalar;
use crate::solve::{solve_explicit, solve_unsized, Algorithm, SaveAt, Solution, SolveOptions};
use faer::linalg::solvers::{Solve, SolveLstsq};
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Hyperparameters of the continuous-time reservoir.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CtesnOptions {
    /// Reservoir size.
    pub reservoir: usize,
    /// Spectral radius of `A`.
    pub spectral_radius: f64,
    /// Nonzeros per row of `A` on average.
    pub degree: usize,
    /// Scale of the input weights.
    pub input_scale: f64,
    /// Ridge weight of each readout.
    pub ridge: f64,
    /// Seed of the reservoir's random draws.
    pub seed: u64,
}

impl Default for CtesnOptions {
    fn default() -> Self {
        Self { reservoir: 100, spectral_radius: 0.5, degree: 6, input_scale: 1.0, ridge: 1e-10, seed: 1 }
    }
}

/// A trained surrogate: the reservoir's features at the save times and the interpolated
/// readouts. Serialisable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ctesn {
    n: usize,
    times: Vec<f64>,
    /// Features `[r(t_k); 1]`, row-major (`times x (reservoir + 1)`).
    features: Vec<f64>,
    /// Each state's scale.
    scale: Vec<f64>,
    /// The parameters' log coordinates are `ln(p / center) / half_width`.
    center: Vec<f64>,
    half_width: Vec<f64>,
    /// Training samples in those coordinates.
    samples: Vec<Vec<f64>>,
    /// RBF coefficients (`samples + 1 + n_p` rows) of every readout entry, row-major.
    coefficients: Vec<f64>,
}

/// The reservoir ODE in log time, driven by the reference solution.
struct Reservoir<'a> {
    a: &'a [Vec<(usize, f64)>],
    w_in: &'a [f64],
    driver: &'a Solution<f64>,
    scale: &'a [f64],
    end: f64,
    x: Mutex<Vec<f64>>,
}

impl Model for Reservoir<'_> {
    fn n_states(&self) -> usize {
        self.a.len()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, dr: &mut [T], r: &[T], _p: &[T], tau: T) {
        let mut x = self.x.lock().unwrap_or_else(|e| e.into_inner());
        let t = tau.value().exp().min(self.end);
        if self.driver.interpolate_into(t, &mut x).is_err() {
            x.fill(f64::NAN);
        }
        let n = x.len();
        for (i, out) in dr.iter_mut().enumerate() {
            let mut acc = T::zero();
            for &(c, v) in &self.a[i] {
                acc += r[c].scale(v);
            }
            let wx: f64 = (0..n).map(|k| self.w_in[i * n + k] * x[k] / self.scale[k]).sum();
            *out = (acc + T::from_f64(wx)).tanh();
        }
    }
}

impl Ctesn {
    /// Train on `problem` (its parameters are the reference) at the save `times` (positive,
    /// increasing), with a stiff solve by `alg` at each of the `samples` (parameter
    /// vectors, positive).
    pub fn train<M: Model>(
        problem: &Problem<M>,
        alg: Algorithm,
        opts: &SolveOptions,
        times: &[f64],
        samples: &[Vec<f64>],
        c: &CtesnOptions,
    ) -> Result<Self> {
        let (n, np) = (problem.u0.len(), problem.p.len());
        check(problem, times, samples)?;
        let t_end = *times.last().expect("checked");
        // Phase 1: the reference solution, dense, and the states' scales.
        let dense_opts = SolveOptions { dense: Some(true), saveat: SaveAt::Times(times.to_vec()), ..opts.clone() };
        let span = (problem.tspan.0, t_end);
        let reference = solve_unsized(&problem.model, &problem.u0, &problem.p, span, alg, &dense_opts, None)?;
        crate::sensitivity::require_success(&reference)?;
        let scale: Vec<f64> = (0..n)
            .map(|s| (0..times.len()).map(|k| reference.u(k)[s].abs()).fold(0.0, f64::max).max(f64::MIN_POSITIVE))
            .collect();
        // Phase 2: the reservoir's trajectory in log time, from two units before the first
        // save time (its start-up forgotten by then).
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
        let a = sparse_reservoir(c.reservoir, c.degree, c.spectral_radius, &mut rng)?;
        let w_in: Vec<f64> = (0..c.reservoir * n).map(|_| uniform(&mut rng, c.input_scale)).collect();
        let reservoir = Reservoir {
            a: &a,
            w_in: &w_in,
            driver: &reference,
            scale: &scale,
            end: t_end,
            x: Mutex::new(vec![0.0; n]),
        };
        let taus: Vec<f64> = times.iter().map(|t| t.ln()).collect();
        let tau_span = (taus[0] - 2.0, taus[taus.len() - 1]);
        let r_opts = SolveOptions { saveat: SaveAt::Times(taus), dense: Some(false), ..SolveOptions::default() };
        let r0 = vec![0.0; c.reservoir];
        let rsol = solve_explicit(&reservoir, &r0, &[], tau_span, Algorithm::Tsit5, &r_opts, None)?;
        crate::sensitivity::require_success(&rsol)?;
        let width = c.reservoir + 1;
        let k = times.len();
        let features: Vec<f64> = (0..k).flat_map(|i| rsol.u(i).iter().copied().chain([1.0])).collect();
        // Phase 3: each sample's stiff solve and readout (one QR for all of them).
        let save_opts = SolveOptions { saveat: SaveAt::Times(times.to_vec()), dense: Some(false), ..opts.clone() };
        let mut y = Mat::<f64>::zeros(k + width, samples.len() * n);
        for (j, p) in samples.iter().enumerate() {
            let sol = solve_unsized(&problem.model, &problem.u0, p, span, alg, &save_opts, None)?;
            crate::sensitivity::require_success(&sol)?;
            for i in 0..k {
                for s in 0..n {
                    y[(i, j * n + s)] = sol.u(i)[s] / scale[s];
                }
            }
        }
        let ridge = c.ridge.sqrt();
        let f = Mat::<f64>::from_fn(k + width, width, |i, col| {
            if i < k {
                features[i * width + col]
            } else if i - k == col {
                ridge
            } else {
                0.0
            }
        });
        let readouts = f.col_piv_qr().solve_lstsq(&y);
        // Phase 4: radial basis functions over the samples, one per readout entry.
        let center = problem.p.clone();
        let half_width: Vec<f64> = (0..np)
            .map(|d| samples.iter().map(|p| (p[d] / center[d]).ln().abs()).fold(0.0, f64::max).max(1e-12))
            .collect();
        let coords: Vec<Vec<f64>> =
            samples.iter().map(|p| (0..np).map(|d| (p[d] / center[d]).ln() / half_width[d]).collect()).collect();
        let m = samples.len();
        let size = m + 1 + np;
        let system = Mat::<f64>::from_fn(size, size, |i, jj| match (i < m, jj < m) {
            (true, true) => cubic(&coords[i], &coords[jj]),
            (true, false) => tail(&coords[i], jj - m),
            (false, true) => tail(&coords[jj], i - m),
            (false, false) => 0.0,
        });
        // Right-hand sides: every readout entry (state s, feature col) across the samples.
        let entries = n * width;
        let rhs =
            Mat::<f64>::from_fn(
                size,
                entries,
                |i, e| if i < m { readouts[(e % width, i * n + e / width)] } else { 0.0 },
            );
        let coef = system.partial_piv_lu().solve(&rhs);
        let coefficients: Vec<f64> =
            (0..size).flat_map(|i| (0..entries).map(move |e| (i, e))).map(|(i, e)| coef[(i, e)]).collect();
        if coefficients.iter().any(|v| !v.is_finite()) {
            return Err(DiffsimError::InvalidOption {
                name: "samples",
                why: "the interpolation over the samples is singular (repeated samples?)".into(),
            });
        }
        Ok(Self { n, times: times.to_vec(), features, scale, center, half_width, samples: coords, coefficients })
    }

    /// The save times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// The predicted states at the save times for parameters `p` (`times x n`, time-major).
    pub fn predict(&self, p: &[f64]) -> Result<Vec<f64>> {
        let np = self.center.len();
        if p.len() != np || p.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(DiffsimError::InvalidOption {
                name: "p",
                why: format!("the surrogate takes {np} positive parameters, got {p:?}"),
            });
        }
        let z: Vec<f64> = (0..np).map(|d| (p[d] / self.center[d]).ln() / self.half_width[d]).collect();
        let m = self.samples.len();
        let basis: Vec<f64> = self.samples.iter().map(|s| cubic(&z, s)).chain((0..=np).map(|d| tail(&z, d))).collect();
        let (n, width) = (self.n, self.features.len() / self.times.len());
        let entries = n * width;
        let mut w_out = vec![0.0; entries];
        for (i, b) in basis.iter().enumerate().take(m + 1 + np) {
            for (w, c) in w_out.iter_mut().zip(&self.coefficients[i * entries..(i + 1) * entries]) {
                *w += b * c;
            }
        }
        let mut out = Vec::with_capacity(self.times.len() * n);
        for row in self.features.chunks_exact(width) {
            for s in 0..n {
                let x: f64 = w_out[s * width..(s + 1) * width].iter().zip(row).map(|(w, r)| w * r).sum();
                out.push(x * self.scale[s]);
            }
        }
        Ok(out)
    }
}

/// The cubic kernel `|a - b|^3`.
fn cubic(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt().powi(3)
}

/// The linear tail's basis: 1, then each coordinate.
fn tail(z: &[f64], d: usize) -> f64 {
    if d == 0 {
        1.0
    } else {
        z[d - 1]
    }
}

fn check<M: Model>(problem: &Problem<M>, times: &[f64], samples: &[Vec<f64>]) -> Result<()> {
    let bad = |name: &'static str, why: String| Err(DiffsimError::InvalidOption { name, why });
    problem.validate()?;
    if times.len() < 2 || times.windows(2).any(|w| w[1] <= w[0]) || times[0] <= problem.tspan.0.max(0.0) {
        return bad("times", "give at least two increasing save times after the start of the span, all > 0".into());
    }
    let np = problem.p.len();
    if samples.len() < np + 2 {
        return bad("samples", format!("{} samples for {np} parameters: give at least {}", samples.len(), np + 2));
    }
    let positive = |p: &Vec<f64>| p.len() == np && p.iter().all(|v| v.is_finite() && *v > 0.0);
    if !positive(&problem.p) || !samples.iter().all(positive) {
        return bad("samples", format!("every parameter vector needs {np} positive values (log coordinates)"));
    }
    Ok(())
}
