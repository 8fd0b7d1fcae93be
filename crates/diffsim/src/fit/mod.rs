//! Fitting models to data: universal differential equations, the training loop, and
//! equations recovered from a trained network.
//!
//! - [`Ude`]: known physics plus a neural network in one model, with a hand-written VJP
//!   (the network's backward pass), so adjoints cost little per parameter.
//! - [`Fit`]: a problem, data, solver and sensitivity method, giving loss-and-gradient
//!   evaluations that never hand an optimizer a corrupt value (a failed solve is a NaN loss,
//!   which the optimizers skip), and [`Fit::train`] with checkpoints and resume.
//! - Parameter estimation from measured [`TimeSeries`] (read from CSV), stated once as a
//!   [`FitProblem`] (with an [`Observation`] map: a subset of the states, or linear
//!   combinations), by Levenberg-Marquardt with forward sensitivities and bounds, with
//!   standard errors and correlations at the optimum ([`Uncertainty`]):
//!   [`fit_least_squares`] (single shooting), [`fit_multiple_shooting`] (for long spans
//!   and oscillations, where single shooting stalls), [`fit_collocation`] and
//!   [`fit_collocation_then_shooting`] (smoothed derivatives from the data by
//!   [`Kernel`] regression, no solve in the loop, as a warm start) and
//!   [`fit_prediction_error`] (the solve nudged towards the data, the gain annealed to 0)
//!   and [`fit_growing_windows`] (short horizons first, each warm-starting the next). Every
//!   strategy takes any [`LeastSquaresSolver`](crate::optim::LeastSquaresSolver): Levenberg-Marquardt,
//!   derivative-free BOBYQA, or a scalar optimizer. [`profile_likelihood`] gives the
//!   likelihood-ratio interval of one value where the standard error's linear picture fails.
//!   [`fit_minibatch`] steps a stochastic optimizer on random short windows of the data
//!   (long records, networks inside the model).
//! - [`Stlsq`] and [`PolynomialLibrary`]: equations from a trained network, by sparse
//!   regression of its terms on candidate monomials; [`PolynomialUde`] refits their
//!   coefficients to the data through the solver.
//!
//! The worked examples (the spiral neural ODE, the Lotka-Volterra UDE and their training
//! recipes) are the `diffsim-examples` crate, built on this crate's public API.

mod collocation;
mod data;
mod growing_windows;
mod kernel_smoothing;
mod least_squares;
mod minibatch;
mod multiple_shooting;
mod polynomial_ude;
mod prediction_error;
mod profile;
mod sparse;
mod spec;
mod train;
mod ude;
mod uncertainty;

pub use collocation::{fit_collocation, fit_collocation_then_shooting, CollocationResiduals};
pub use data::TimeSeries;
pub use growing_windows::fit_growing_windows;
pub use kernel_smoothing::{select_bandwidth, select_smoothing, smooth, smooth_with, Kernel, Smoothing};
pub use least_squares::{fit_least_squares, LeastSquaresFit, ShootingResiduals};
pub use minibatch::{fit_minibatch, fit_minibatch_then_shooting, Minibatch};
pub use multiple_shooting::{fit_multiple_shooting, MultipleShooting, MultipleShootingResiduals};
pub use polynomial_ude::PolynomialUde;
pub use prediction_error::{fit_prediction_error, Nudged, PemGain};
pub use profile::{profile_likelihood, Profile, ProfileOptions, CHI2_1_95};
pub use sparse::{best_subsets, PolynomialLibrary, SparseFit, Stlsq};
pub use spec::{FitProblem, Observation};
pub use train::Fit;
pub use ude::{NoPhysics, Physics, Ude, CUBE};
pub use uncertainty::{Uncertainty, MAX_CONDITION};
