//! # diffsim: differentiable simulation
//!
//! Fit differential-equation models `M u' = f(u, p, t)` (mechanistic, neural, or both) to
//! data, fast and with correct gradients.
//!
//! A model is written once, generically over the number type ([`Scalar`]), so the same
//! code runs on `f64`, on dual numbers ([`ad::Dual`]) for Jacobians and forward-mode
//! derivatives, and on the reverse-mode tape. Plain-number constants mix in on the right
//! (`u[2] / 180.0`, `u[0] * 2.0`, `du[0] -= 0.5`); in generic code `2.0 * u[0]` does not
//! compile (see [`Scalar`] for why and what to write).
//!
//! ```
//! use diffsim::{solve, Algorithm, Model, Problem, Scalar, SolveOptions};
//!
//! /// The SIRS epidemic model, p = [beta, gamma]: immunity wanes in about 180 days.
//! struct Sirs;
//! impl Model for Sirs {
//!     fn n_states(&self) -> usize { 3 }
//!     fn n_params(&self) -> usize { 2 }
//!     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
//!         let infection = p[0] * u[0] * u[1];
//!         let waning = u[2] / 180.0;
//!         du[0] = -infection + waning;
//!         du[1] = infection - p[1] * u[1];
//!         du[2] = p[1] * u[1] - waning;
//!     }
//! }
//!
//! let prob = Problem::new(Sirs, vec![0.99, 0.01, 0.0], vec![0.5, 0.1], (0.0, 100.0)).unwrap();
//! let opts = SolveOptions::default().rtol(1e-8).atol(1e-10).saveat_times(vec![50.0, 100.0]);
//! let sol = solve(&prob, Algorithm::Tsit5, &opts).unwrap();
//! assert!(sol.retcode().is_success());
//! let total: f64 = sol.u(1).iter().sum();
//! assert!((total - 1.0).abs() < 1e-8); // the population is conserved
//! ```
//!
//! The stiff methods (the Rosenbrock methods [`Algorithm::Rodas5P`], [`Algorithm::Rodas4`],
//! [`Algorithm::Rosenbrock23`], and the Newton-based [`Algorithm::Bdf`], [`Algorithm::Radau5`]
//! and [`Algorithm::Radau9`]) take the Jacobian
//! from forward-mode AD unless the model supplies one, and accept a mass matrix
//! ([`MassMatrix`]: dense, diagonal, or the identity with some algebraic states, for
//! index-1 DAEs). See [`solve`](mod@solve) for the method table.
//! What a model may compute itself besides `rhs` (a Jacobian, `df/dt`, a hand-written VJP)
//! is one small trait each, handed over by [`Model::derivatives`] ([`capabilities`]).

#![warn(missing_docs)]
// Numerical kernels index several arrays in lockstep; index loops read like the maths.
#![allow(clippy::needless_range_loop)]

pub mod ad;
mod blocks;
pub mod capabilities;
pub mod ensemble;
mod error;
pub mod event;
pub mod fit;
mod mass;
pub mod models;
pub mod nn;
pub mod optim;
mod problem;
mod scalar;
pub mod sensitivity;
pub mod solve;
pub mod surrogate;

pub use error::{DiffsimError, Result};
pub use event::{Crossing, Event, Trigger};
pub use mass::MassMatrix;
pub use problem::{Model, Problem};
pub use scalar::Scalar;
pub use solve::{
    solve, solve_explicit, solve_with_callback, Algorithm, ErrorNorm, JacobianMethod, RetCode, SaveAt, Solution,
    SolveOptions, Stats, Tolerance,
};

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
