//! The Lotka-Volterra universal differential equation: its data, its training recipe and
//! how well the network learned the missing terms.

use crate::systems::{linspace, normal, truth, LvLinear, LvTruth, LV_PARAMS};
use crate::{data_fit, Example, Known, LvUde, Worked};
use diffsim::fit::{Physics, Ude};
use diffsim::nn::{Activation, Init, Mlp};
use diffsim::optim::{Adam, Chain, Control, Lbfgs, MinimizeOptions, MinimizeReport, OptimError, Progress, Schedule};
use diffsim::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

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
    let fit = data_fit(model, u0, &p0, (0.0, 5.0), &times, &data, (rtol, atol))?;
    Ok(Example { name: "lv-ude", fit, p0, seed, init_scale, times, data, truth: clean })
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
