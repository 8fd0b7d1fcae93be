//! The number trait a model is written against.
//!
//! A model's right-hand side is generic over [`Scalar`], so the same code runs on `f64`,
//! forward-mode dual numbers ([`crate::ad::Dual`]) and the reverse-mode tape
//! ([`crate::ad::TapeVar`]).
//!
//! How to write constants, powers and comparisons in a right-hand side, and why `f32` is not
//! a `Scalar`: see the trait's docs.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real number type usable in a model's right-hand side and inside the solvers: `f64`,
/// [`crate::ad::Dual`] and [`crate::ad::TapeVar`].
///
/// Besides the arithmetic between two `T`s, every `Scalar` takes a plain `f64` on the right
/// of `+ - * /` and of `+= -= *= /=` (on the left only on a concrete type, see below).
///
/// ```
/// use diffsim::Scalar;
/// fn logistic<T: Scalar>(x: T, r: T) -> T {
///     r * x * (T::one() - x)
/// }
/// assert_eq!(logistic(0.5_f64, 2.0), 0.5);
///
/// // Constants need no conversion: 2 x^2 + x / 4 - 1, and its derivative 4 x + 1/4.
/// fn poly<T: Scalar>(x: T) -> T {
///     let mut y = x * x * 2.0 + x / 4.0;
///     y -= 1.0;
///     y
/// }
/// let y = poly(diffsim::ad::Dual::<1>::variable(3.0, 0));
/// assert_eq!((y.v, y.d[0]), (18.0 + 0.75 - 1.0, 12.25));
/// ```
///
/// # Constants in a right-hand side
///
/// Plain-number constants mix with a `T` directly: `u * 2.0`, `u + 1.5`, `u - 1.0`,
/// `u / 3.0` and the assign forms `du[0] *= 0.5`, `du[0] += 1.0`, `du[0] -= 1.0`,
/// `du[0] /= 3.0`. A constant carries no derivative, so these are the cheap forms of
/// `u * T::from_f64(2.0)`: a dual number scales its parts without the product rule, and
/// the tape records one operation with the constant in it (see [`crate::ad::tape`]).
///
/// | write                      | instead of                                   |
/// |----------------------------|----------------------------------------------|
/// | `u[0] * 2.0`, `u[0] / 3.0` | `u[0].scale(2.0)`, `u[0] / T::from_f64(3.0)` |
/// | `u[0] + 1.0`, `u[0] - 1.0` | `u[0] + T::one()`, `u[0] - T::one()`         |
/// | `x.powf_f64(2.5)`          | `x.powf(T::from_f64(2.5))`                   |
/// | `T::from_f64(2.0) - u[0]`  | (`2.0 - u[0]` does not compile, see below)   |
///
/// **Put the constant on the right.** In generic code `2.0 * u` does not compile: that is
/// `f64: Mul<T>`, a bound on `f64` rather than on `T`, and Rust does not carry such a bound
/// from a trait to the code that uses it (only supertraits, bounds on `Self`, are implied).
/// Write `u * 2.0`; a constant minus a state as `-u + 2.0` or `T::from_f64(2.0) - u`, and
/// a constant over a state as `T::from_f64(2.0) / u`. On a concrete type every order
/// works: `2.0 * x` for `x: Dual<N>` or `x: TapeVar`.
///
/// A real power keeps its exponent a `T` ([`Scalar::powf`]: the exponent may be a
/// parameter to fit, e.g. a reaction order, and then it is differentiated too); a fixed
/// exponent is [`Scalar::powf_f64`].
///
/// Comparisons go through [`PartialOrd`] on the scalar itself (e.g. `t <= T::from_f64(1.0)`),
/// so that AD types can see (and guard) every branch a model takes.
///
/// # `f32` is not a `Scalar`
///
/// `T * f64` needs `impl Mul<f64> for T` for every number type, and Rust forbids that impl
/// for `f32` (both the trait and the type belong to the standard library). So models and
/// solvers run on `f64`, the dual numbers and the tape, not on `f32`. Single precision
/// lives where it pays, in the neural-network kernels: [`crate::nn::Float`] (`f32` and
/// `f64`) with [`crate::nn::Mlp::forward_float`], [`crate::nn::Mlp::forward_ws`] and the
/// batch and backward passes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `diffsim::Scalar`",
    label = "models and solvers run on `f64`, `ad::Dual<N>` and `ad::TapeVar`",
    note = "`f32` cannot be a `Scalar` (Rust forbids `impl Mul<f64> for f32` outside the standard library); \
            for `f32` networks use the `nn::Float` kernels: `Mlp::forward_float`, `Mlp::forward_ws`"
)]
pub trait Scalar:
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
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + AddAssign<f64>
    + SubAssign<f64>
    + MulAssign<f64>
    + DivAssign<f64>
{
    /// A constant (all derivative parts zero).
    fn from_f64(x: f64) -> Self;
    /// The real value (the primal part of an AD number).
    fn value(self) -> f64;
    /// Zero.
    #[inline]
    fn zero() -> Self {
        Self::from_f64(0.0)
    }
    /// One.
    #[inline]
    fn one() -> Self {
        Self::from_f64(1.0)
    }
    /// Multiply by a plain constant: the same as `self * c` (cheaper than
    /// `self * Self::from_f64(c)` for AD types); kept for code that predates the operators.
    #[inline]
    fn scale(self, c: f64) -> Self {
        self * c
    }
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Integer power.
    fn powi(self, n: i32) -> Self;
    /// Real power.
    fn powf(self, e: Self) -> Self;
    /// Real power with a plain-number exponent (a rate law's fixed order): `x.powf_f64(2.5)`
    /// instead of `x.powf(T::from_f64(2.5))`.
    ///
    /// ```
    /// use diffsim::Scalar;
    /// fn hill<T: Scalar>(x: T, k: T) -> T {
    ///     let xn = x.powf_f64(2.5);
    ///     xn / (k.powf_f64(2.5) + xn)
    /// }
    /// assert_eq!(hill(1.0_f64, 1.0), 0.5);
    /// ```
    #[inline]
    fn powf_f64(self, e: f64) -> Self {
        self.powf(Self::from_f64(e))
    }
    /// Absolute value.
    fn abs(self) -> Self;
    /// The chain-rule primitive: a number whose value is `value` and whose derivative parts
    /// are this number's parts times `derivative`.
    ///
    /// Any elementwise function `g` with a known derivative runs on every number type as
    /// `x.chain(g(x.value()), g'(x.value()))`: for `f64` that is just `g(x)`, for
    /// [`crate::ad::Dual`] it is `(g(v), g'(v) * d)`, and the reverse-mode tape
    /// ([`crate::ad::TapeVar`]) records it as one unary operation with local derivative
    /// `g'(v)`; having only the numbers, not `g`, the tape cannot replay that recording at
    /// other inputs (it re-records instead), so prefer [`Scalar::chain_fn`] where `g` is a
    /// plain function. The neural-network activations ([`crate::nn::Activation`]) are built
    /// on it.
    ///
    /// ```
    /// use diffsim::{ad::Dual, Scalar};
    /// // softsign(x) = x / (1 + |x|), derivative 1 / (1 + |x|)^2, at x = 0.5 with dx = 3
    /// let x = Dual::<1> { v: 0.5, d: [3.0] };
    /// let y = x.chain(0.5 / 1.5, 1.0 / (1.5 * 1.5));
    /// assert_eq!(y.v, 0.5 / 1.5);
    /// assert_eq!(y.d[0], 3.0 / 2.25);
    /// assert_eq!(2.0_f64.chain(7.0, 100.0), 7.0); // plain numbers keep only the value
    /// ```
    fn chain(self, value: f64, derivative: f64) -> Self;
    /// [`Scalar::chain`] given the function itself: `g(x)` returns the value and the
    /// derivative at `x`. Every number type gets the same result as
    /// `x.chain(g(x.value()).0, g(x.value()).1)`, but the reverse-mode tape
    /// ([`crate::ad::TapeVar`]) keeps `g` and re-evaluates it when it replays a recording
    /// at new inputs, which it cannot do for `chain` (a recording with `chain` in it is
    /// re-recorded at every new point instead). Prefer this form for elementwise functions
    /// known in advance.
    ///
    /// ```
    /// use diffsim::{ad::Dual, Scalar};
    /// fn softsign(x: f64) -> (f64, f64) {
    ///     let s = 1.0 + x.abs();
    ///     (x / s, 1.0 / (s * s))
    /// }
    /// let y = Dual::<1>::variable(0.5, 0).chain_fn(softsign);
    /// assert_eq!((y.v, y.d[0]), (0.5 / 1.5, 1.0 / 2.25));
    /// assert_eq!(0.5_f64.chain_fn(softsign), 0.5 / 1.5);
    /// ```
    #[inline]
    fn chain_fn(self, g: fn(f64) -> (f64, f64)) -> Self {
        let (v, d) = g(self.value());
        self.chain(v, d)
    }
    /// The larger of two values (by value).
    #[inline]
    fn max(self, other: Self) -> Self {
        if self.value() >= other.value() {
            self
        } else {
            other
        }
    }
    /// The smaller of two values (by value).
    #[inline]
    fn min(self, other: Self) -> Self {
        if self.value() <= other.value() {
            self
        } else {
            other
        }
    }
    /// True when the value and every derivative part are finite.
    fn is_finite(self) -> bool;
    /// How many numbers the value carries: 1 for plain floats and the reverse-mode tape's
    /// variables (whose derivatives are not part of the value), `N + 1` for a dual number
    /// with `N` derivative parts.
    const PARTS: usize = 1;
    /// Part `k` (`k < PARTS`): part 0 is the value, then the derivative parts.
    ///
    /// ```
    /// use diffsim::{ad::Dual, Scalar};
    /// let x = Dual::<2>::variable(3.0, 1);
    /// assert_eq!((x.part(0), x.part(1), x.part(2)), (3.0, 0.0, 1.0));
    /// assert_eq!(<Dual<2> as Scalar>::PARTS, 3);
    /// ```
    #[inline]
    fn part(self, k: usize) -> f64 {
        debug_assert_eq!(k, 0);
        self.value()
    }
    /// `x` as plain `f64`s when this type is `f64`, else `None`: generic code on plain
    /// floats takes a float-only fast path with it (the network kernels). A number type of
    /// your own keeps the default; an override must return `x` itself.
    #[doc(hidden)]
    #[inline(always)]
    fn as_f64s(x: &[Self]) -> Option<&[f64]> {
        let _ = x;
        None
    }
    /// [`Scalar::as_f64s`] for a mutable slice.
    #[doc(hidden)]
    #[inline(always)]
    fn as_f64s_mut(x: &mut [Self]) -> Option<&mut [f64]> {
        let _ = x;
        None
    }
}

/// Plain numbers: every method is the `f64` one, derivatives are dropped.
impl Scalar for f64 {
    #[inline(always)]
    fn as_f64s(x: &[Self]) -> Option<&[f64]> {
        Some(x)
    }
    #[inline(always)]
    fn as_f64s_mut(x: &mut [Self]) -> Option<&mut [f64]> {
        Some(x)
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn value(self) -> f64 {
        self
    }
    #[inline(always)]
    fn scale(self, c: f64) -> Self {
        self * c
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn sin(self) -> Self {
        f64::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        f64::cos(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        f64::powi(self, n)
    }
    #[inline(always)]
    fn powf(self, e: Self) -> Self {
        f64::powf(self, e)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn chain(self, value: f64, _derivative: f64) -> Self {
        value
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        f64::max(self, other)
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        f64::min(self, other)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::Dual;

    #[test]
    fn float_views_only_for_the_same_type() {
        let x = [1.0f64, 2.0];
        assert_eq!(f64::as_f64s(&x), Some(&x[..]));
        let d = [Dual::<2>::constant(1.0)];
        assert!(Dual::<2>::as_f64s(&d).is_none());
        let mut y = [0.0f64; 3];
        f64::as_f64s_mut(&mut y).unwrap()[1] = 5.0;
        assert_eq!(y[1], 5.0);
    }
}
