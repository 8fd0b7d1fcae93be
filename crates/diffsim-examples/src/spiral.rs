//! The spiral neural ODE and its training recipe.

use crate::systems::{linspace, truth, SpiralTruth};
use crate::{data_fit, Example, Known, Spiral, Worked};
use diffsim::fit::{Ude, CUBE};
use diffsim::nn::{Activation, Init, Mlp};
use diffsim::optim::{Adam, Chain, Control, Lbfgs, MinimizeOptions, MinimizeReport, OptimError, Progress};
use diffsim::Result;
use std::path::Path;

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
    let fit = data_fit(model, u0, &p0, (0.0, 1.5), &times, &data, (rtol, atol))?;
    Ok(Example { name: "spiral", fit, p0, seed, init_scale: 1.0, times, truth: data.clone(), data })
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
