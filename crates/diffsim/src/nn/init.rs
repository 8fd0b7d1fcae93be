//! Seeded parameter initialisers.
//!
//! With `fan_in`, `fan_out` the layer's input and output widths:
//!
//! | initialiser | weights drawn from | variance |
//! |---|---|---|
//! | Glorot (Xavier) uniform | `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))` | `2 / (fan_in + fan_out)` |
//! | Glorot normal | `N(0, 2 / (fan_in + fan_out))` | same |
//! | He (Kaiming) normal | `N(0, 2 / fan_in)` | `2 / fan_in` |
//! | zeros | `0` | `0` |
//!
//! Biases start at zero. Every weight is then multiplied by `scale`: a neural term added to
//! a mechanistic model (a universal differential equation) trains better when it starts as
//! a small perturbation, e.g. `scale = 1e-2`.
//!
//! Normal draws use Box-Muller on the seeded ChaCha stream; that is a few lines, so the
//! crate does not take a distributions dependency for it.

use super::Mlp;
use crate::error::{DiffsimError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How to draw initial weights (biases are always zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Glorot/Xavier uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
    /// Glorot/Xavier normal: `N(0, 2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// He/Kaiming normal: `N(0, 2 / fan_in)` (for ReLU-like activations).
    HeNormal,
    /// All weights zero.
    Zeros,
}

impl Init {
    /// Look an initialiser up by name: `glorot_uniform` (or `xavier_uniform`),
    /// `glorot_normal` (`xavier_normal`), `he_normal` (`kaiming_normal`), `zeros`.
    pub fn from_name(name: &str) -> Option<Init> {
        Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "glorot_uniform" | "xavier_uniform" => Init::GlorotUniform,
            "glorot_normal" | "xavier_normal" => Init::GlorotNormal,
            "he_normal" | "kaiming_normal" => Init::HeNormal,
            "zeros" | "zero" => Init::Zeros,
            _ => return None,
        })
    }
}

/// A standard normal draw (Box-Muller; `1 - u` keeps the logarithm's argument in (0, 1]).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Mlp {
    /// A fresh parameter vector drawn with `init` from `seed`, weights multiplied by
    /// `scale`. The same seed always gives the same vector.
    ///
    /// ```
    /// use diffsim::nn::{Activation, Init, Mlp};
    /// let net = Mlp::with_hidden(&[3, 32, 3], Activation::Tanh).unwrap();
    /// let p = net.init_params(Init::GlorotUniform, 7, 1e-2);
    /// assert_eq!(p, net.init_params(Init::GlorotUniform, 7, 1e-2));
    /// assert!(p.iter().all(|w| w.abs() <= 1e-2 * (6.0f64 / 35.0).sqrt()));
    /// ```
    pub fn init_params(&self, init: Init, seed: u64, scale: f64) -> Vec<f64> {
        let mut p = vec![0.0; self.n_params()];
        self.fill_params(init, seed, scale, &mut p);
        p
    }

    /// Like [`Mlp::init_params`], writing into `params` (which must have length
    /// [`Mlp::n_params`]).
    pub fn init_params_into(&self, init: Init, seed: u64, scale: f64, params: &mut [f64]) -> Result<()> {
        if params.len() != self.n_params() {
            return Err(DiffsimError::SizeMismatch {
                what: "network parameters",
                expected: self.n_params(),
                got: params.len(),
            });
        }
        if !scale.is_finite() {
            return Err(DiffsimError::InvalidOption {
                name: "scale",
                why: format!("{scale} is not finite; use a finite factor such as 1.0 or 1e-2"),
            });
        }
        self.fill_params(init, seed, scale, params);
        Ok(())
    }

    fn fill_params(&self, init: Init, seed: u64, scale: f64, params: &mut [f64]) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for layer in self.layers() {
            let (fan_in, fan_out) = (layer.n_in() as f64, layer.n_out() as f64);
            let w = &mut params[layer.weights()];
            match init {
                Init::GlorotUniform => {
                    let a = (6.0 / (fan_in + fan_out)).sqrt();
                    w.iter_mut().for_each(|v| *v = scale * a * (2.0 * rng.random::<f64>() - 1.0));
                }
                Init::GlorotNormal => {
                    let sd = (2.0 / (fan_in + fan_out)).sqrt();
                    w.iter_mut().for_each(|v| *v = scale * sd * standard_normal(&mut rng));
                }
                Init::HeNormal => {
                    let sd = (2.0 / fan_in).sqrt();
                    w.iter_mut().for_each(|v| *v = scale * sd * standard_normal(&mut rng));
                }
                Init::Zeros => w.fill(0.0),
            }
            params[layer.biases()].fill(0.0);
        }
    }
}
