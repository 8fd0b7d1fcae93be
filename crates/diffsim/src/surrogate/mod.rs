//! Surrogates: models learned from solutions that predict without solving the original.
//!
//! - [`Esn`]: a discrete echo state network, trained on a time series by ridge regression of
//!   its readout and run autonomously to predict the series on.

mod esn;

pub use esn::{Esn, EsnOptions};
