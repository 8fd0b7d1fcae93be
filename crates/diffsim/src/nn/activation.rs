//! Elementwise activation functions with their derivatives.
//!
//! Each activation has a value and a derivative in `f64` and `f32` (the fast kernels) and a
//! generic version on any [`Scalar`] built on [`Scalar::chain`], so the same network runs on
//! dual numbers and, later, on the reverse-mode tape.
//!
//! The forms are the numerically stable ones: softplus is `max(x, 0) + ln(1 + e^-|x|)` and
//! sigmoid never evaluates `e^x` for large positive `x`, so neither overflows nor loses the
//! small tail values.

use super::Float;
use crate::scalar::Scalar;
use std::fmt;

/// A user-supplied activation: a name (for printing), a function and its derivative.
///
/// ```
/// use diffsim::nn::{Activation, CustomActivation};
/// let cube = Activation::Custom(CustomActivation { name: "cube", f: |x| x * x * x, df: |x| 3.0 * x * x });
/// assert_eq!(cube.value_f64(2.0), 8.0);
/// assert_eq!(cube.derivative_f64(2.0), 12.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CustomActivation {
    /// Name shown in `Debug`/`Display` output.
    pub name: &'static str,
    /// The function.
    pub f: fn(f64) -> f64,
    /// Its derivative.
    pub df: fn(f64) -> f64,
}

/// An elementwise activation function.
#[derive(Clone, Copy, Debug)]
pub enum Activation {
    /// `x` (usually the output layer).
    Identity,
    /// `tanh x`.
    Tanh,
    /// `max(x, 0)`; the derivative at 0 is taken as 0.
    Relu,
    /// `ln(1 + e^x)`, evaluated stably.
    Softplus,
    /// `1 / (1 + e^-x)`, evaluated stably.
    Sigmoid,
    /// Swish / SiLU: `x * sigmoid(x)`.
    Swish,
    /// GELU in its tanh approximation `x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, not the
    /// exact `x Phi(x)` form.
    Gelu,
    /// Gaussian radial basis `e^(-x^2)`.
    Rbf,
    /// A user-supplied function and derivative.
    Custom(CustomActivation),
}

impl PartialEq for Activation {
    /// Built-in activations compare by kind; custom ones by name (function pointers have no
    /// reliable identity).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Activation::Custom(a), Activation::Custom(b)) => a.name == b.name,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names [`Activation::from_name`] accepts, for help texts and error messages.
pub const ACTIVATION_NAMES: &str = "identity, tanh, relu, softplus, sigmoid, swish (silu), gelu, rbf";

// sqrt(2 / pi) and the cubic coefficient of the tanh-approximated GELU.
const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044_715;

impl Activation {
    /// Look an activation up by name (case-insensitive): `identity`, `tanh`, `relu`,
    /// `softplus`, `sigmoid`, `swish` or `silu`, `gelu`, `rbf`.
    ///
    /// ```
    /// use diffsim::nn::Activation;
    /// assert_eq!(Activation::from_name("SiLU"), Some(Activation::Swish));
    /// assert_eq!(Activation::from_name("cube"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name.to_ascii_lowercase().as_str() {
            "identity" | "linear" => Activation::Identity,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "softplus" => Activation::Softplus,
            "sigmoid" => Activation::Sigmoid,
            "swish" | "silu" => Activation::Swish,
            "gelu" => Activation::Gelu,
            "rbf" => Activation::Rbf,
            _ => return None,
        })
    }

    /// The name (the one [`Activation::from_name`] accepts, or the custom name).
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Softplus => "softplus",
            Activation::Sigmoid => "sigmoid",
            Activation::Swish => "swish",
            Activation::Gelu => "gelu",
            Activation::Rbf => "rbf",
            Activation::Custom(c) => c.name,
        }
    }

    /// Value and derivative at `x`, in the float type `F` (`f32` or `f64`).
    #[inline(always)]
    pub fn eval<F: Float>(&self, x: F) -> (F, F) {
        match self {
            Activation::Identity => (x, F::one()),
            Activation::Tanh => tanh_d(x),
            Activation::Relu => relu_d(x),
            Activation::Softplus => softplus_d(x),
            Activation::Sigmoid => sigmoid_d(x),
            Activation::Swish => swish_d(x),
            Activation::Gelu => gelu_d(x),
            Activation::Rbf => rbf_d(x),
            Activation::Custom(c) => {
                let v = x.value();
                (F::from_f64((c.f)(v)), F::from_f64((c.df)(v)))
            }
        }
    }

    /// The value in `f64`.
    #[inline]
    pub fn value_f64(&self, x: f64) -> f64 {
        // `apply` on a plain float computes the value only (a custom map calls just `f`).
        self.apply(x)
    }
    /// The derivative in `f64`.
    pub fn derivative_f64(&self, x: f64) -> f64 {
        match self {
            // Only `df`: a custom map's `f` is an opaque call the compiler cannot drop.
            Activation::Custom(c) => (c.df)(x),
            _ => self.eval(x).1,
        }
    }
    /// The value in `f32`.
    pub fn value_f32(&self, x: f32) -> f32 {
        self.eval(x).0
    }
    /// The derivative in `f32`.
    pub fn derivative_f32(&self, x: f32) -> f32 {
        self.eval(x).1
    }

    /// The activation on any [`Scalar`]: value and derivative are computed in `f64` from
    /// `x.value()` and applied with [`Scalar::chain_fn`], so duals carry exact first
    /// derivatives and a compiled tape replays it.
    ///
    /// ```
    /// use diffsim::{ad::Dual, nn::Activation};
    /// let y = Activation::Sigmoid.apply(Dual::<1>::variable(0.0, 0));
    /// assert_eq!((y.v, y.d[0]), (0.5, 0.25));
    /// ```
    #[inline]
    pub fn apply<T: Scalar>(&self, x: T) -> T {
        if let Activation::Identity = self {
            return x;
        }
        let mut z = [x];
        self.apply_slice(&mut z);
        z[0]
    }

    /// Apply to every element of `z` in place (one `match` for the whole slice).
    #[inline]
    pub(crate) fn apply_slice<T: Scalar>(&self, z: &mut [T]) {
        // Built-ins go through `chain_fn` so a compiled tape can replay them at new inputs;
        // a custom activation's closure is no `fn` pointer, so it uses `chain` (a tape
        // holding one is re-recorded at every point).
        macro_rules! each {
            ($g:expr) => {
                for x in z.iter_mut() {
                    *x = x.chain_fn($g);
                }
            };
        }
        match self {
            Activation::Identity => {}
            Activation::Tanh => each!(tanh_d::<f64>),
            Activation::Relu => each!(relu_d::<f64>),
            Activation::Softplus => each!(softplus_d::<f64>),
            Activation::Sigmoid => each!(sigmoid_d::<f64>),
            Activation::Swish => each!(swish_d::<f64>),
            Activation::Gelu => each!(gelu_d::<f64>),
            Activation::Rbf => each!(rbf_d::<f64>),
            Activation::Custom(c) => {
                // Plain floats need only the value: the derivative is an opaque call the
                // compiler could not drop (the spiral's input map runs at every evaluation).
                if let Some(z) = T::as_f64s_mut(z) {
                    z.iter_mut().for_each(|x| *x = (c.f)(*x));
                    return;
                }
                for x in z.iter_mut() {
                    let v = x.value();
                    *x = x.chain((c.f)(v), (c.df)(v));
                }
            }
        }
    }

    /// Overwrite `a` (holding pre-activations) with the activation values and `da` with the
    /// derivatives. One `match` per slice keeps the dispatch out of the element loop.
    #[inline(always)]
    pub(crate) fn eval_slice<F: Float>(&self, a: &mut [F], da: &mut [F]) {
        let da = &mut da[..a.len()];
        macro_rules! each {
            ($g:expr) => {
                for (x, d) in a.iter_mut().zip(da.iter_mut()) {
                    let (v, dv) = $g(*x);
                    *x = v;
                    *d = dv;
                }
            };
        }
        match self {
            Activation::Identity => da.fill(F::one()),
            Activation::Tanh => each!(tanh_d::<F>),
            Activation::Relu => each!(relu_d::<F>),
            Activation::Softplus => each!(softplus_d::<F>),
            Activation::Sigmoid => each!(sigmoid_d::<F>),
            Activation::Swish => each!(swish_d::<F>),
            Activation::Gelu => each!(gelu_d::<F>),
            Activation::Rbf => each!(rbf_d::<F>),
            Activation::Custom(c) => each!(|x: F| {
                let v = x.value();
                (F::from_f64((c.f)(v)), F::from_f64((c.df)(v)))
            }),
        }
    }
    /// Overwrite `a` (holding pre-activations) with the activation values only (a forward
    /// pass that no backward pass follows).
    #[inline(always)]
    pub(crate) fn value_slice<F: Float>(&self, a: &mut [F]) {
        macro_rules! each {
            ($g:expr) => {
                for x in a.iter_mut() {
                    *x = $g(*x).0;
                }
            };
        }
        match self {
            Activation::Identity => {}
            Activation::Tanh => {
                for x in a.iter_mut() {
                    *x = x.fast_tanh();
                }
            }
            Activation::Relu => each!(relu_d::<F>),
            Activation::Softplus => each!(softplus_d::<F>),
            Activation::Sigmoid => each!(sigmoid_d::<F>),
            Activation::Swish => each!(swish_d::<F>),
            Activation::Gelu => each!(gelu_d::<F>),
            Activation::Rbf => each!(rbf_d::<F>),
            Activation::Custom(c) => each!(|x: F| (F::from_f64((c.f)(x.value())), ())),
        }
    }
}

#[inline(always)]
fn tanh_d<F: Float>(x: F) -> (F, F) {
    let t = x.fast_tanh();
    (t, F::one() - t * t)
}

#[inline(always)]
fn relu_d<F: Float>(x: F) -> (F, F) {
    if x > F::zero() {
        (x, F::one())
    } else {
        (F::zero(), F::zero())
    }
}

/// Stable sigmoid: only ever exponentiates a non-positive number.
#[inline(always)]
fn sigmoid<F: Float>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

#[inline(always)]
fn sigmoid_d<F: Float>(x: F) -> (F, F) {
    let s = sigmoid(x);
    (s, s * (F::one() - s))
}

#[inline(always)]
fn softplus_d<F: Float>(x: F) -> (F, F) {
    // max(x, 0) + ln(1 + e^-|x|): no overflow for large x, full precision for very negative x.
    let v = x.max(F::zero()) + (-x.abs()).exp().ln_1p();
    (v, sigmoid(x))
}

#[inline(always)]
fn swish_d<F: Float>(x: F) -> (F, F) {
    let s = sigmoid(x);
    (x * s, s + x * s * (F::one() - s))
}

#[inline(always)]
fn gelu_d<F: Float>(x: F) -> (F, F) {
    let half = F::from_f64(0.5);
    let c = F::from_f64(GELU_C);
    let k = F::from_f64(GELU_K);
    let x2 = x * x;
    let t = (c * x * (F::one() + k * x2)).fast_tanh();
    let sech2 = F::one() - t * t;
    // Once tanh saturates the second term is exactly zero; skipping it avoids 0 * inf for huge |x|.
    let tail =
        if sech2 == F::zero() { F::zero() } else { half * x * sech2 * c * (F::one() + F::from_f64(3.0 * GELU_K) * x2) };
    (half * x * (F::one() + t), half * (F::one() + t) + tail)
}

#[inline(always)]
fn rbf_d<F: Float>(x: F) -> (F, F) {
    let e = (-(x * x)).exp();
    (e, F::from_f64(-2.0) * x * e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_forms_do_not_overflow() {
        for x in [-1000.0f64, -50.0, 50.0, 1000.0] {
            for a in [Activation::Softplus, Activation::Sigmoid, Activation::Swish, Activation::Gelu, Activation::Rbf] {
                let (v, d) = a.eval(x);
                assert!(v.is_finite() && d.is_finite(), "{a} at {x}: {v} {d}");
                let (v, d) = a.eval(x as f32);
                assert!(v.is_finite() && d.is_finite(), "{a} (f32) at {x}: {v} {d}");
            }
        }
        // Tails keep their precision: softplus(-40) = e^-40 to full relative accuracy.
        let v = Activation::Softplus.value_f64(-40.0);
        assert!((v / (-40f64).exp() - 1.0).abs() < 1e-15);
        assert_eq!(Activation::Softplus.value_f64(1000.0), 1000.0);
        assert_eq!(Activation::Sigmoid.value_f64(-800.0), 0.0);
    }

    /// Plain floats call only a custom activation's `f`, and only its `df` for the
    /// derivative; dual numbers get both, with the same value.
    #[test]
    fn custom_activations_call_what_they_need() {
        use crate::ad::Dual;
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static F: AtomicUsize = AtomicUsize::new(0);
        static DF: AtomicUsize = AtomicUsize::new(0);
        fn f(x: f64) -> f64 {
            F.fetch_add(1, Relaxed);
            x * x * x
        }
        fn df(x: f64) -> f64 {
            DF.fetch_add(1, Relaxed);
            3.0 * x * x
        }
        let cube = Activation::Custom(CustomActivation { name: "counted cube", f, df });
        let mut z = [2.0, -1.0];
        cube.apply_slice(&mut z);
        assert_eq!((z, F.load(Relaxed), DF.load(Relaxed)), ([8.0, -1.0], 2, 0));
        assert_eq!((cube.derivative_f64(2.0), F.load(Relaxed), DF.load(Relaxed)), (12.0, 2, 1));
        let y = cube.apply(Dual::<1>::variable(2.0, 0));
        assert_eq!((y.v, y.d[0], F.load(Relaxed), DF.load(Relaxed)), (8.0, 12.0, 3, 2));
    }

    #[test]
    fn names_round_trip() {
        for a in [
            Activation::Identity,
            Activation::Tanh,
            Activation::Relu,
            Activation::Softplus,
            Activation::Sigmoid,
            Activation::Swish,
            Activation::Gelu,
            Activation::Rbf,
        ] {
            assert_eq!(Activation::from_name(a.name()), Some(a));
        }
        assert_eq!(Activation::from_name("silu"), Some(Activation::Swish));
        assert_eq!(Activation::from_name("nope"), None);
    }
}
