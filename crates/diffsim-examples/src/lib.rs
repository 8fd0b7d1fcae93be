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

mod discovery;
mod lv_ude;
mod spiral;
mod systems;

pub use discovery::{discover_lv, LvDiscovery};
pub use lv_ude::{lv_term_errors, lv_ude, lv_ude_with, train_lv_ude, LvRecipe};
pub use spiral::{spiral, train_spiral};
pub use systems::{LvLinear, LvTruth, SpiralTruth, LV_PARAMS};

use diffsim::fit::{Fit, NoPhysics, Physics, Ude};
use diffsim::optim::{Control, MinimizeOptions, MinimizeReport, OptimError, Optimizer, Progress};
use diffsim::sensitivity::{gradient, Gradient, Loss, SensAlg};
use diffsim::{Algorithm, Problem, Result, Scalar, Solution, SolveOptions};
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

/// The fit both examples train: Tsit5 at tolerances `(rtol, atol)` saving at the data
/// `times`, the sum of squared errors against `data`, the gradient method left to `Auto`.
fn data_fit(
    model: Ude<Known>,
    u0: Vec<f64>,
    p0: &[f64],
    span: (f64, f64),
    times: &[f64],
    data: &[f64],
    (rtol, atol): (f64, f64),
) -> Result<Fit<Ude<Known>>> {
    Ok(Fit {
        problem: Problem::new(model, u0, p0.to_vec(), span)?,
        alg: Algorithm::Tsit5,
        opts: SolveOptions::default().rtol(rtol).atol(atol).saveat_times(times.to_vec()),
        loss: Loss::squared_error(data.to_vec()),
        sensealg: SensAlg::Auto,
        l2: 0.0,
    })
}

/// The spiral example (no known physics).
pub type Spiral = UdeExample;

/// The lv-ude example (the linear terms known).
pub type LvUde = UdeExample;

/// What the example programs, their tests and the CLI do with a worked example, as
/// functions compiled once, here.
///
/// `Fit`'s methods are generic over the model, so each crate that calls them compiles the
/// whole solve-and-gradient stack for the example's model again (a long optimised
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
