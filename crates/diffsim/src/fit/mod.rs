//! Fitting models to data: universal differential equations, the training loop, and the
//! worked examples.
//!
//! - [`Ude`]: known physics plus a neural network in one model, with a hand-written VJP
//!   (the network's backward pass), so adjoints cost little per parameter.
//! - [`Fit`]: a problem, data, solver and sensitivity method, giving loss-and-gradient
//!   evaluations that never hand an optimizer a corrupt value (a failed solve is a NaN loss,
//!   which the optimizers skip), and [`Fit::train`] with checkpoints and resume.
//! - [`Stlsq`] and [`PolynomialLibrary`]: equations from a trained network, by sparse
//!   regression of its terms on candidate monomials; [`PolynomialUde`] refits their
//!   coefficients to the data through the solver.
//! - [`examples`]: the spiral neural ODE and the Lotka-Volterra UDE.
//!
//! ```
//! use diffsim::fit::examples;
//! use diffsim::optim::{Adam, MinimizeOptions};
//! let mut ex = examples::spiral(0, 1e-6, 1e-8).unwrap();
//! let start = ex.fit.loss(&ex.p0.clone());
//! let opts = MinimizeOptions::default().max_iters(20);
//! let report = ex.fit.train(&ex.p0.clone(), &mut Adam::new(0.05), &opts, None, |_| diffsim::optim::Control::Continue).unwrap();
//! assert!(report.best_loss < start);
//! ```

pub mod examples;
mod polynomial_ude;
mod sparse;
mod train;
mod ude;

pub use polynomial_ude::PolynomialUde;
pub use sparse::{best_subsets, PolynomialLibrary, SparseFit, Stlsq};
pub use train::Fit;
pub use ude::{NoPhysics, Physics, Ude, CUBE};
