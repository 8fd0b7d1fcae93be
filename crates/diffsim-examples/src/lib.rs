//! The worked training examples of diffsim, built on its public API only: the spiral
//! neural ODE and the Lotka-Volterra universal differential equation, with the recipes that
//! train them and the reports on what the network learned.
//!
//! Both build their data from a known true system, so what the network learned can be
//! checked against the truth. The CLI's `train` command, the examples and the benchmarks
//! use them.
//!
//! ```
//! use diffsim::optim::{Adam, Control, MinimizeOptions};
//! use diffsim_examples::Worked;
//! let mut ex = diffsim_examples::spiral(0, 1e-6, 1e-8).unwrap();
//! let p0 = ex.p0.clone();
//! let start = ex.loss(&p0);
//! let opts = MinimizeOptions::default().max_iters(20);
//! let report = ex.train(&p0, &mut Adam::new(0.05), &opts, None, &mut |_| Control::Continue).unwrap();
//! assert!(report.best_loss < start);
//! ```

use diffsim::fit::{best_subsets, Fit, NoPhysics, Physics, PolynomialLibrary, PolynomialUde, SparseFit, Ude, CUBE};
use diffsim::nn::{Activation, Init, Mlp};
use diffsim::optim::{
    Adam, Chain, Control, Lbfgs, MinimizeOptions, MinimizeReport, OptimError, Optimizer, Progress, Schedule,
};
use diffsim::sensitivity::{gradient, Gradient, Loss, SensAlg};
use diffsim::{solve, Algorithm, Model, Problem, Result, Scalar, Solution, SolveOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

/// A training example: the fit, a seeded start, and the data it was made from.
#[derive(Clone, Debug)]
pub struct Example<M> {
    /// Its name (`spiral`, `lv-ude`).
    pub name: &'static str,
    /// Model, data, solver and gradient method.
    pub fit: Fit<M>,
    /// Seeded initial parameters.
    pub p0: Vec<f64>,
    /// The seed of `p0` (and of the data's noise, where there is noise).
    pub seed: u64,
    /// The scale of the network's initial weights relative to Glorot's.
    pub init_scale: f64,
    /// Data times.
    pub times: Vec<f64>,
    /// Data (`times.len() * n_states`, time-major), possibly noisy.
    pub data: Vec<f64>,
    /// The noise-free truth at the data times.
    pub truth: Vec<f64>,
}

/// The known part of the examples' UDEs: none (the spiral, a neural ODE) or the
/// Lotka-Volterra linear terms.
///
/// One type for both examples, so that their fitting code (the whole solve-and-gradient
/// stack) is compiled once rather than once per example; the match per right-hand side is
/// nothing beside the network.
#[derive(Clone, Copy, Debug)]
pub enum Known {
    /// No known part (a neural ODE).
    Nothing,
    /// The linear terms of Lotka-Volterra.
    LvLinear(LvLinear),
}

impl Physics for Known {
    #[inline]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], t: T) {
        match self {
            Known::Nothing => NoPhysics.rhs(du, u, t),
            Known::LvLinear(lv) => lv.rhs(du, u, t),
        }
    }
    fn is_present(&self) -> bool {
        matches!(self, Known::LvLinear(_))
    }
}

/// A worked example's type: known physics (possibly none) plus a network.
pub type UdeExample = Example<Ude<Known>>;

/// The spiral example (no known physics).
pub type Spiral = UdeExample;

/// The lv-ude example (the linear terms known).
pub type LvUde = UdeExample;

/// What the example programs, their tests and the CLI do with a worked example, as
/// functions compiled once, here.
///
/// `Fit`'s methods are generic over the model, so each crate that calls them compiles the
/// whole solve-and-gradient stack for the example's model again (minutes of optimised
/// build per caller, since generic code is not shared between crates). These methods are
/// not generic: a caller links to the copy in this crate. `Fit` stays the API to learn from;
/// this trait is only the examples' build-time economy.
pub trait Worked {
    /// [`Fit::loss`].
    fn loss(&mut self, p: &[f64]) -> f64;
    /// [`Fit::loss_and_gradient`].
    fn loss_and_gradient(&mut self, p: &[f64], grad: &mut [f64]) -> f64;
    /// The gradient of the fit's loss at `p` by `sensealg` (the fit keeps its own method).
    fn gradient_by(&mut self, p: &[f64], sensealg: SensAlg) -> Result<Gradient>;
    /// [`Fit::predict`].
    fn predict(&mut self, p: &[f64], tspan: (f64, f64), opts: &SolveOptions) -> Result<Solution>;
    /// The name of the gradient method the fit's `sensealg` resolves to.
    fn sensealg_name(&self) -> Result<&'static str>;
    /// [`Fit::train`], with the optimizer and the callback as trait objects.
    fn train(
        &mut self,
        p0: &[f64],
        optimizer: &mut dyn Optimizer,
        options: &MinimizeOptions,
        resume_from: Option<&Path>,
        callback: &mut dyn FnMut(&Progress<'_>) -> Control,
    ) -> std::result::Result<MinimizeReport, OptimError>;
    /// The network's term alone at state `u` ([`Ude::network_term`]).
    fn network_term(&self, u: &[f64], p: &[f64], out: &mut [f64]);
}

impl Worked for UdeExample {
    #[inline(never)]
    fn loss(&mut self, p: &[f64]) -> f64 {
        self.fit.loss(p)
    }
    #[inline(never)]
    fn loss_and_gradient(&mut self, p: &[f64], grad: &mut [f64]) -> f64 {
        self.fit.loss_and_gradient(p, grad)
    }
    #[inline(never)]
    fn gradient_by(&mut self, p: &[f64], sensealg: SensAlg) -> Result<Gradient> {
        let fit = &mut self.fit;
        fit.problem.set_p(p)?;
        gradient(&fit.problem, fit.alg, &fit.opts, &fit.loss, sensealg)
    }
    #[inline(never)]
    fn predict(&mut self, p: &[f64], tspan: (f64, f64), opts: &SolveOptions) -> Result<Solution> {
        self.fit.predict(p, tspan, opts)
    }
    #[inline(never)]
    fn sensealg_name(&self) -> Result<&'static str> {
        Ok(self.fit.sensealg.resolve(&self.fit.problem, self.fit.alg)?.name())
    }
    #[inline(never)]
    fn train(
        &mut self,
        p0: &[f64],
        optimizer: &mut dyn Optimizer,
        options: &MinimizeOptions,
        resume_from: Option<&Path>,
        callback: &mut dyn FnMut(&Progress<'_>) -> Control,
    ) -> std::result::Result<MinimizeReport, OptimError> {
        self.fit.train(p0, optimizer, options, resume_from, callback)
    }
    fn network_term(&self, u: &[f64], p: &[f64], out: &mut [f64]) {
        self.fit.problem.model().network_term(u, p, out)
    }
}

/// The spiral's true system `u' = ((u.^3)^T A)^T`, `A = [[-0.1, 2], [-2, -0.1]]`.
#[derive(Clone, Copy, Debug)]
pub struct SpiralTruth;

impl Model for SpiralTruth {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
        let (a, b) = (u[0] * u[0] * u[0], u[1] * u[1] * u[1]);
        du[0] = a.scale(-0.1) + b.scale(-2.0);
        du[1] = a.scale(2.0) + b.scale(-0.1);
    }
}

/// Lotka-Volterra `x' = alpha x - beta x y`, `y' = gamma x y - delta y`, p = [alpha, beta, gamma, delta].
#[derive(Clone, Copy, Debug)]
pub struct LvTruth;

impl Model for LvTruth {
    const STATES: Option<usize> = Some(2);
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        4
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
        du[0] = p[0] * u[0] - p[1] * u[0] * u[1];
        du[1] = p[2] * u[0] * u[1] - p[3] * u[1];
    }
}

/// The lv-ude example's true parameters alpha, beta, gamma, delta.
pub const LV_PARAMS: [f64; 4] = [1.3, 0.9, 0.8, 1.8];

/// The known part of the Lotka-Volterra UDE: the linear terms `alpha x` and `-delta y`.
#[derive(Clone, Copy, Debug)]
pub struct LvLinear {
    /// Growth rate of the prey.
    pub alpha: f64,
    /// Death rate of the predator.
    pub delta: f64,
}

impl Physics for LvLinear {
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _t: T) {
        du[0] = u[0].scale(self.alpha);
        du[1] = u[1].scale(-self.delta);
    }
}

fn linspace(t0: f64, t1: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| t0 + (t1 - t0) * i as f64 / (k - 1) as f64).collect()
}

/// The true solution at `times`, solved tightly.
fn truth<M: Model>(model: M, u0: Vec<f64>, p: Vec<f64>, times: &[f64]) -> Result<Vec<f64>> {
    let span = (times[0], *times.last().unwrap_or(&times[0]));
    let prob = Problem::new(model, u0, p, span)?;
    let opts = SolveOptions::default().rtol(1e-12).atol(1e-12).saveat_times(times.to_vec());
    Ok(solve(&prob, Algorithm::Vern7, &opts)?.u_flat)
}

/// The spiral neural ODE (the DiffEqFlux / torchdiffeq / diffrax benchmark): u0 = [2, 0],
/// 30 points on [0, 1.5], network `u -> u.^3 -> Dense(2, 50, tanh) -> Dense(50, 2)`
/// (252 parameters), loss = sum of squared errors, Tsit5 at the given tolerances.
pub fn spiral(seed: u64, rtol: f64, atol: f64) -> Result<Spiral> {
    let times = linspace(0.0, 1.5, 30);
    let u0 = vec![2.0, 0.0];
    let data = truth(SpiralTruth, u0.clone(), vec![], &times)?;
    let net = Mlp::with_hidden(&[2, 50, 2], Activation::Tanh)?;
    let p0 = net.init_params(Init::GlorotUniform, seed, 1.0);
    let model = Ude::new(Known::Nothing, net, CUBE)?;
    let problem = Problem::new(model, u0, p0.clone(), (0.0, 1.5))?;
    let opts = SolveOptions::default().rtol(rtol).atol(atol).saveat_times(times.clone());
    let fit = Fit {
        problem,
        alg: Algorithm::Tsit5,
        opts,
        loss: Loss::squared_error(data.clone()),
        sensealg: SensAlg::Auto,
        l2: 0.0,
    };
    Ok(Example { name: "spiral", fit, p0, seed, init_scale: 1.0, times, truth: data.clone(), data })
}

/// The Lotka-Volterra UDE: alpha = 1.3, beta = 0.9, gamma = 0.8, delta = 1.8,
/// u0 = [0.44249296, 4.6280594], data every 0.25 on [0, 5] with 5 % seeded Gaussian noise
/// (of each state's mean magnitude). The linear terms are known; a network
/// `2 -> 5 -> 5 -> 5 -> 2` (tanh, weights initialised at a tenth of Glorot's size) learns the interaction terms `-beta x y` and `gamma x y`.
pub fn lv_ude(seed: u64, rtol: f64, atol: f64) -> Result<LvUde> {
    lv_ude_with(seed, rtol, atol, Activation::Tanh, 0.1)
}

/// [`lv_ude`] with another hidden activation and initial weight scale.
pub fn lv_ude_with(seed: u64, rtol: f64, atol: f64, hidden: Activation, init_scale: f64) -> Result<LvUde> {
    let times = linspace(0.0, 5.0, 21);
    let u0 = vec![0.442_492_96, 4.628_059_4];
    let clean = truth(LvTruth, u0.clone(), LV_PARAMS.to_vec(), &times)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 2;
    let scale: Vec<f64> = (0..n)
        .map(|j| 0.05 * clean.iter().skip(j).step_by(n).map(|v| v.abs()).sum::<f64>() / times.len() as f64)
        .collect();
    let data: Vec<f64> = clean.iter().enumerate().map(|(i, &v)| v + scale[i % n] * normal(&mut rng)).collect();
    let net = Mlp::with_hidden(&[2, 5, 5, 5, 2], hidden)?;
    let p0 = net.init_params(Init::GlorotUniform, seed, init_scale);
    let physics = Known::LvLinear(LvLinear { alpha: LV_PARAMS[0], delta: LV_PARAMS[3] });
    let model = Ude::new(physics, net, Activation::Identity)?;
    let problem = Problem::new(model, u0, p0.clone(), (0.0, 5.0))?;
    let opts = SolveOptions::default().rtol(rtol).atol(atol).saveat_times(times.clone());
    let fit = Fit {
        problem,
        alg: Algorithm::Tsit5,
        opts,
        loss: Loss::squared_error(data.clone()),
        sensealg: SensAlg::Auto,
        l2: 0.0,
    };
    Ok(Example { name: "lv-ude", fit, p0, seed, init_scale, times, data, truth: clean })
}

/// A standard normal draw (Box-Muller on the seeded stream).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl<P: Physics> Example<Ude<P>> {
    /// Initial network parameters for start `k` of a multi-start fit: `p0` for `k = 0`, else
    /// a fresh Glorot draw at the example's scale from a seed derived from `seed` and `k`.
    pub fn start_params(&self, k: u64) -> Vec<f64> {
        if k == 0 {
            return self.p0.clone();
        }
        // Golden-ratio increments: distinct, well-spread seeds for the ChaCha stream.
        let seed = self.seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.fit.problem.model().net().init_params(Init::GlorotUniform, seed, self.init_scale)
    }
}

/// How [`train_lv_ude`] trains.
#[derive(Clone, Debug, PartialEq)]
pub struct LvRecipe {
    /// Network initialisations trained side by side (at least 1; start 0 is the example's
    /// `p0`); the one with the lowest loss after its Adam and short L-BFGS runs goes on to
    /// the refinement.
    pub starts: u64,
    /// Adam iterations (learning rate 0.05) on each growing window: the first quarter, half
    /// and three quarters of the data.
    pub stage_iters: u64,
    /// Adam iterations on all the data, the learning rate falling from 0.05 to 0.001 along a
    /// half cosine.
    pub adam_iters: u64,
    /// L-BFGS iterations after each start's Adam, before the starts are compared: Adam
    /// leaves good and poor starts at similar losses, L-BFGS tells them apart.
    pub explore_lbfgs_iters: u64,
    /// L-BFGS iterations from the best start.
    pub lbfgs_iters: u64,
}

impl Default for LvRecipe {
    /// 4 starts; 300 iterations per window; 1000 Adam and 200 L-BFGS on all the data per
    /// start, and 1000 L-BFGS from the best.
    fn default() -> Self {
        Self { starts: 4, stage_iters: 300, adam_iters: 1000, explore_lbfgs_iters: 200, lbfgs_iters: 1000 }
    }
}

/// Smallest learning rate of the full-data Adam run's cosine decay.
const LV_MIN_LR: f64 = 0.001;

/// Train the lv-ude network by `recipe`, in two phases.
///
/// 1. **Exploration**, for each of `recipe.starts` initialisations in parallel: Adam on
///    growing windows of the data (a long oscillating fit started on all the data falls
///    into poor minima), then Adam on all of it with a decaying learning rate (a constant
///    0.05 knocks good fits out of their basin), then a short L-BFGS run (after Adam, good
///    and poor starts have similar losses). Over 48 seeds, one start ended in a poor minimum
///    (loss 10-100x the noise) 5 times; the best of four, never.
/// 2. **Refinement**: L-BFGS from the best start's best parameters. `options` (checkpoint,
///    resume) and `callback` apply to this phase; resuming from a checkpoint skips phase 1.
///
/// The report is phase 2's, with phase 1's evaluations added, and with the chosen start's
/// full-data history (and iterations) put before phase 2's.
pub fn train_lv_ude(
    ex: &mut LvUde,
    recipe: &LvRecipe,
    options: &MinimizeOptions,
    resume_from: Option<&Path>,
    callback: &mut dyn FnMut(&Progress<'_>) -> Control,
) -> std::result::Result<MinimizeReport, OptimError> {
    if recipe.starts == 0 {
        return Err(diffsim::DiffsimError::InvalidOption {
            name: "starts",
            why: "at least one network initialisation is needed".into(),
        }
        .into());
    }
    let mut best_start: Option<MinimizeReport> = None;
    let mut evaluations = 0;
    let mut p = ex.p0.clone();
    if resume_from.is_none() {
        let runs = (0..recipe.starts)
            .into_par_iter()
            .map(|k| explore_lv_start(ex, ex.start_params(k), recipe))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        evaluations = runs.iter().map(|r| r.evaluations).sum();
        // The first of equal losses, so the choice does not depend on thread timing.
        let best = runs.into_iter().reduce(|a, b| if b.best_loss < a.best_loss { b } else { a });
        if let Some(best) = best {
            p.clone_from(&best.best_x);
            best_start = Some(best);
        }
    }
    let options = MinimizeOptions { max_iters: recipe.lbfgs_iters, ..options.clone() };
    let mut report = ex.train(&p, &mut Lbfgs::default(), &options, resume_from, callback)?;
    report.evaluations += evaluations;
    // Phase 2 starts at the best start's best point, so its best is never worse.
    if let Some(start) = best_start {
        report.iterations += start.iterations;
        let mut history = start.history;
        history.append(&mut report.history);
        report.history = history;
    }
    Ok(report)
}

/// Phase 1 of [`train_lv_ude`] for one start: the growing windows, then Adam and a short
/// L-BFGS run on all the data. The report is the full-data run's, with the windows'
/// evaluations added.
fn explore_lv_start(ex: &LvUde, mut p: Vec<f64>, recipe: &LvRecipe) -> std::result::Result<MinimizeReport, OptimError> {
    let mut evaluations = 0;
    if recipe.stage_iters > 0 {
        for t_end in [1.25, 2.5, 3.75] {
            let mut stage = ex.fit.up_to(t_end)?;
            let opts = MinimizeOptions::default().max_iters(recipe.stage_iters);
            let r = stage.train(&p, &mut Adam::new(0.05), &opts, None, |_| Control::Continue)?;
            evaluations += r.evaluations;
            p = r.best_x;
        }
    }
    let decay = Schedule::Cosine { period: recipe.adam_iters.max(1), min_lr: LV_MIN_LR };
    let mut chain = Chain::new()
        .then(Adam::new(0.05).schedule(decay), recipe.adam_iters)
        .then(Lbfgs::default(), recipe.explore_lbfgs_iters);
    let opts = MinimizeOptions::default().max_iters(recipe.adam_iters + recipe.explore_lbfgs_iters);
    let mut fit = ex.fit.clone();
    let mut r = fit.train(&p, &mut chain, &opts, None, |_| Control::Continue)?;
    r.evaluations += evaluations;
    Ok(r)
}

/// The spiral recipe: Adam (0.05) for `adam_iters`, then L-BFGS for `lbfgs_iters` (may be 0).
pub fn train_spiral(
    ex: &mut Spiral,
    adam_iters: u64,
    lbfgs_iters: u64,
    options: &MinimizeOptions,
    resume_from: Option<&Path>,
    callback: &mut dyn FnMut(&Progress<'_>) -> Control,
) -> std::result::Result<MinimizeReport, OptimError> {
    let mut chain = Chain::new().then(Adam::new(0.05), adam_iters);
    if lbfgs_iters > 0 {
        chain = chain.then(Lbfgs::default(), lbfgs_iters);
    }
    let options = MinimizeOptions { max_iters: adam_iters + lbfgs_iters, ..options.clone() };
    let p0 = ex.p0.clone();
    ex.train(&p0, &mut chain, &options, resume_from, callback)
}

/// How well the learned interaction terms match `-beta x y` and `gamma x y` along the true
/// trajectory at the data times: (largest absolute error, relative RMS error).
pub fn lv_term_errors(ex: &LvUde, p: &[f64]) -> (f64, f64) {
    let (beta, gamma) = (LV_PARAMS[1], LV_PARAMS[2]);
    let (mut worst, mut se, mut st) = (0.0_f64, 0.0, 0.0);
    let mut nn = [0.0; 2];
    for u in ex.truth.chunks(2) {
        ex.fit.problem.model().network_term(u, p, &mut nn);
        let truth = [-beta * u[0] * u[1], gamma * u[0] * u[1]];
        for k in 0..2 {
            worst = worst.max((nn[k] - truth[k]).abs());
            se += (nn[k] - truth[k]).powi(2);
            st += truth[k].powi(2);
        }
    }
    (worst, (se / st).sqrt())
}

/// What sparse regression made of a trained lv-ude network: see [`discover_lv`].
#[derive(Clone, Debug)]
pub struct LvDiscovery {
    /// The chosen regression of the network's two terms on them.
    pub regression: SparseFit,
    /// The recovered equations as a model, set up to fit the example's data.
    pub fit: Fit<PolynomialUde<LvLinear>>,
    /// The kept terms' coefficients refitted to the data (one per term of `fit`'s model).
    pub coefficients: Vec<f64>,
    /// The recovered model's loss on the data with those coefficients.
    pub loss: f64,
    /// How many sparse models were refitted and compared.
    pub compared: usize,
}

impl LvDiscovery {
    /// The recovered interaction terms (the polynomial part of each equation) at state `u`.
    pub fn terms_at(&self, u: &[f64]) -> [f64; 2] {
        let mut out = [0.0; 2];
        self.fit.problem.model().add_terms(&mut out, u, &self.coefficients);
        out
    }

    /// The recovered model's solution at `times` (from the example's `u0` and start time;
    /// `times` sorted, the last the end of the span), flat and time-major.
    pub fn predict(&self, times: &[f64]) -> Result<Vec<f64>> {
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(times.to_vec());
        let mut fit = self.fit.clone();
        let span = (fit.problem.tspan().0, times.last().copied().unwrap_or(fit.problem.tspan().1));
        Ok(fit.predict(&self.coefficients, span, &opts)?.u_flat)
    }

    /// The recovered equations, one line per state, e.g. `x' = 1.3 x - 0.901 x y`.
    pub fn equations(&self) -> [String; 2] {
        let model = &self.fit.problem.model();
        let vars = ["x", "y"];
        let known = [format!("{} x", LV_PARAMS[0]), format!("-{} y", LV_PARAMS[3])];
        [0, 1].map(|i| {
            let terms = model.terms_string(i, &self.coefficients, &vars, 3);
            let rest = match terms.strip_prefix('-') {
                _ if terms == "0" => String::new(),
                Some(t) => format!(" - {t}"),
                None => format!(" + {terms}"),
            };
            format!("{}' = {}{rest}", vars[i], known[i])
        })
    }
}

/// Most terms per equation [`discover_lv`] considers.
const MAX_DISCOVERED_TERMS: usize = 3;

/// Most solver steps of one solve while refitting a candidate model.
const MAX_REFIT_STEPS: usize = 2000;

/// Turn the trained network `p` of an lv-ude example into equations.
///
/// 1. Sample the network's two terms along its own fitted trajectory over the data window
///    (201 points).
/// 2. For each equation and each size `k = 1..=3`, find the `k` monomials of `x, y` (degrees
///    0 to 3) that fit its samples best ([`best_subsets`]).
/// 3. Refit every combination's coefficients to the data through the solver (L-BFGS, at
///    most 100 iterations from the regression's values), and keep the one with the lowest
///    Bayesian information criterion `N ln(SSE / N) + K ln N` (`N` data values, `K` terms):
///    a term must pay for itself in the fit to the data, not to the network.
///
/// The network is only trusted where it was trained; the data decide the final model. The
/// true terms are `-0.9 x y` and `0.8 x y`.
pub fn discover_lv(ex: &mut LvUde, p: &[f64]) -> std::result::Result<LvDiscovery, OptimError> {
    let span = ex.fit.problem.tspan();
    let times = linspace(span.0, span.1, 201);
    let sol = ex.fit.predict(p, span, &SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(times))?;
    if !sol.retcode.is_success() {
        return Err(diffsim::DiffsimError::InvalidOption {
            name: "trained parameters",
            why: format!("the trained model does not solve over the data window ({:?})", sol.retcode),
        }
        .into());
    }
    let states = sol.u_flat;
    let mut targets = vec![0.0; states.len()];
    for (u, out) in states.chunks(2).zip(targets.chunks_mut(2)) {
        ex.fit.problem.model().network_term(u, p, out);
    }
    let library = PolynomialLibrary::new(2, 0, 3)?;
    let features = library.features(&states)?;
    let sizes = best_subsets(&features, library.len(), &targets, 2, MAX_DISCOVERED_TERMS, 1e-12)?;
    let Known::LvLinear(physics) = *ex.fit.problem.model().physics() else {
        return Err(diffsim::DiffsimError::InvalidOption {
            name: "example",
            why: "equations are recovered for the lv-ude example only".into(),
        }
        .into());
    };
    let n_data = ex.data.len() as f64;
    let mut best: Option<(f64, LvDiscovery)> = None;
    for kx in 0..sizes.len() {
        for ky in 0..sizes.len() {
            // Equation 0 from the kx-term fit, equation 1 from the ky-term fit.
            let mut regression = sizes[kx].clone();
            let nt = library.len();
            regression.coefficients[nt..].copy_from_slice(&sizes[ky].coefficients[nt..]);
            regression.relative_residual[1] = sizes[ky].relative_residual[1];
            let (model, c0) = PolynomialUde::from_sparse_fit(physics, library.clone(), &regression)?;
            let problem = Problem::new(model, ex.fit.problem.u0().to_vec(), c0.clone(), span)?;
            let mut fit = Fit {
                problem,
                alg: ex.fit.alg,
                // Candidates with spurious terms can blow up or turn stiff: such a solve is
                // cut short (a NaN loss, which the optimizer steps back from) rather than
                // left to grind. The true model needs about a hundred steps.
                opts: ex.fit.opts.clone().max_steps(MAX_REFIT_STEPS),
                loss: ex.fit.loss.clone(),
                sensealg: SensAlg::Auto,
                l2: 0.0,
            };
            let opts = MinimizeOptions::default().max_iters(100);
            let r = fit.train(&c0, &mut Lbfgs::default(), &opts, None, |_| Control::Continue)?;
            if !r.best_loss.is_finite() {
                continue;
            }
            let bic = n_data * (r.best_loss / n_data).ln() + c0.len() as f64 * n_data.ln();
            if best.as_ref().is_none_or(|(b, _)| bic < *b) {
                let found = LvDiscovery {
                    regression,
                    fit,
                    coefficients: r.best_x,
                    loss: r.best_loss,
                    compared: sizes.len() * sizes.len(),
                };
                best = Some((bic, found));
            }
        }
    }
    let (_, found) = best.ok_or_else(|| diffsim::DiffsimError::InvalidOption {
        name: "trained parameters",
        why: "no sparse model of the network's terms could be fitted to the data".into(),
    })?;
    Ok(found)
}
