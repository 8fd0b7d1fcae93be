//! Small, fast, allocation-free neural networks (multilayer perceptrons) with a
//! hand-written backward pass, for universal differential equations `u' = f(u, p, t)` with a
//! network inside `f`.
//!
//! # The maths
//!
//! An [`Mlp`] with layer widths `n_0, ..., n_L` computes, for `l = 1..L`,
//!
//! ```text
//! z_l = W_l a_{l-1} + b_l,    a_l = sigma_l(z_l),    a_0 = x,  y = a_L
//! ```
//!
//! with `W_l` an `n_l x n_{l-1}` matrix stored row-major and `sigma_l` an elementwise
//! [`Activation`]. The parameters are one flat vector: per layer `W_l` (row-major
//! `[out][in]`), then `b_l`. Given an output adjoint `y_bar`, the backward pass
//! (vector-Jacobian product) is
//!
//! ```text
//! delta_L = y_bar * sigma_L'(z_L)
//! W_bar_l = delta_l a_{l-1}^T,   b_bar_l = delta_l,   delta_{l-1} = (W_l^T delta_l) * sigma_{l-1}'(z_{l-1})
//! x_bar   = W_1^T delta_1
//! ```
//!
//! and the input Jacobian is `diag(sigma_L') W_L ... diag(sigma_1') W_1`, built by pushing
//! the identity forward (the same recursion with `n_0` tangent columns gives the JVP).
//!
//! # Three ways to run a network
//!
//! - [`Mlp::forward`] / [`Mlp::forward_const_params`]: generic over
//!   [`Scalar`](crate::Scalar), so they run inside a model's `rhs<T>` on `f64`, duals or the
//!   tape. No allocation: hidden layers live on the stack, hence the [`MAX_WIDTH`] limit on
//!   hidden widths. On plain `f64` numbers they take the fast float kernels below, so a
//!   forward solve through a network costs what the kernels cost.
//! - [`Mlp::forward_ws`] / [`Mlp::forward_batch`] and [`Mlp::backward_ws`] /
//!   [`Mlp::backward_batch`]: fast `f32`/`f64` kernels ([`Float`]; `f32` is not a
//!   [`Scalar`](crate::Scalar)) over a caller-owned [`MlpWorkspace`] (created once, faer
//!   style), and [`Mlp::forward_float`], values only without a workspace. Backward passes
//!   ACCUMULATE into `x_bar` and `p_bar`, so an adjoint can sum over stages without extra
//!   buffers.
//! - [`Mlp::jacobian_input`], [`Mlp::jvp_input`]: the input Jacobian (for stiff solvers)
//!   and input JVP.
//!
//! Hand-written kernels rather than a tensor crate: networks here have a few dozen units,
//! where per-call overhead and allocation of general libraries dominate the arithmetic.
//!
//! # Speed
//!
//! The library targets baseline x86-64 (two `f64` lanes); the float kernels are compiled a
//! second time with AVX2 and chosen at run time (same operations in the same order, so the
//! same bits; see `simd`). `tanh` is an inlined, vectorisable Pade form accurate to 3 ulp
//! (see `fastmath`). Layers on a few inputs (1 to 4: the first layer of a UDE network on its
//! states) have their own loops, vectorised across outputs, and a network `n -> h -> n` on
//! such a state runs its backward pass in one sweep over the hidden units (see `fused`;
//! bit-identical to the layer-by-layer kernels). The vectorised activations are what make
//! a small network's pass fast (measurements: `benches/nn.rs` in diffsim-examples, and
//! `bench/peers/README.md`, "Measurements behind the library's defaults").
//!
//! ```
//! use diffsim::nn::{Activation, Init, Mlp};
//! use diffsim::{Model, Scalar};
//!
//! /// u' = -u + NN(u): a linear decay with a learned correction. p holds the network.
//! struct Ude {
//!     net: Mlp,
//! }
//! impl Model for Ude {
//!     fn n_states(&self) -> usize { 2 }
//!     fn n_params(&self) -> usize { self.net.n_params() }
//!     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
//!         self.net.forward(p, u, du);
//!         for i in 0..2 {
//!             du[i] -= u[i];
//!         }
//!     }
//! }
//!
//! let net = Mlp::with_hidden(&[2, 16, 2], Activation::Tanh).unwrap();
//! let p = net.init_params(Init::GlorotUniform, 42, 1e-2); // start as a small perturbation
//! let model = Ude { net: net.clone() };
//! let mut du = [0.0; 2];
//! model.rhs(&mut du, &[1.0, 0.5], &p, 0.0);
//! assert!((du[0] + 1.0).abs() < 0.05);
//!
//! // Fast kernels: gradient of y_0 with respect to the parameters.
//! let mut ws = net.workspace::<f64>(1);
//! let (mut y, mut pbar) = ([0.0; 2], vec![0.0; net.n_params()]);
//! net.vjp(&p, &[1.0, 0.5], &mut y, &[1.0, 0.0], None, Some(&mut pbar), &mut ws).unwrap();
//! ```

mod activation;
mod dense;
mod fastmath;
mod fused;
mod init;
mod kernels;
mod mlp;
pub(crate) mod simd;

pub use activation::{Activation, CustomActivation, ACTIVATION_NAMES};
pub use dense::Dense;
pub use init::Init;
pub use kernels::MlpWorkspace;
pub use mlp::Mlp;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// The widest hidden layer an [`Mlp`] accepts: the generic forward pass keeps two layers
/// of this many numbers on the stack (4 KiB for `f64`; for `Dual<N>` times `N + 1`;
/// narrower networks use smaller buffers).
pub const MAX_WIDTH: usize = 256;

/// The float types of the fast kernels: `f32` and `f64`.
///
/// Its own trait, not a [`Scalar`](crate::Scalar): `f32` cannot be one (see its docs, "`f32`
/// is not a `Scalar`"), and the kernels need only plain arithmetic and these few functions.
/// Sealed: the kernels are written for these two types.
///
/// ```
/// use diffsim::nn::Float;
/// fn mean<F: Float>(x: &[F]) -> F {
///     let mut s = F::zero();
///     for &v in x {
///         s += v;
///     }
///     s / F::from_f64(x.len() as f64)
/// }
/// assert_eq!(mean(&[1.0f32, 2.0]), 1.5);
/// assert_eq!(mean(&[1.0f64, 2.0, 6.0]), 3.0);
/// ```
pub trait Float:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + sealed::Sealed
{
    /// The nearest number of this type to `x`.
    fn from_f64(x: f64) -> Self;
    /// The value as an `f64` (exact).
    fn value(self) -> f64;
    /// Zero.
    fn zero() -> Self;
    /// One.
    fn one() -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// The larger of two values.
    fn max(self, other: Self) -> Self;
    /// `ln(1 + x)`, accurate for small `x`.
    fn ln_1p(self) -> Self;
    /// `tanh x` by inlined, vectorisable arithmetic (a few ulp; see the `fastmath` notes in
    /// the source): the C library call dominated small tanh networks.
    fn fast_tanh(self) -> Self;
}

macro_rules! impl_float {
    ($t:ident, $tanh:expr) => {
        impl Float for $t {
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn value(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn zero() -> Self {
                0.0
            }
            #[inline(always)]
            fn one() -> Self {
                1.0
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn fast_tanh(self) -> Self {
                $tanh(self)
            }
        }
    };
}

impl_float!(f64, fastmath::tanh_f64);
// Correctly rounded to f32 in all but rare ties: f64 has 29 spare bits.
impl_float!(f32, |x: f32| fastmath::tanh_f64(x as f64) as f32);

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
}
