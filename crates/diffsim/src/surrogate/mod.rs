//! Surrogates: models learned from solutions that predict without solving the original.
//!
//! - [`Esn`]: a discrete echo state network, trained on a time series by ridge regression of
//!   its readout and run autonomously to predict the series on.
//! - [`Ctesn`]: the continuous-time echo state network surrogate of a stiff model over a box
//!   of parameters.

mod ctesn;
mod esn;

pub use ctesn::{Ctesn, CtesnOptions};
pub use esn::{Esn, EsnOptions};
