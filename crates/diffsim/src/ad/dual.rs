//! Forward-mode dual numbers with a fixed chunk of `N` partials.
//!
//! `Dual<N>` carries a value and `N` directional derivatives. Jacobians of an n-state model
//! are built in chunks of `N` columns (like ForwardDiff's chunking), so the partials live in
//! a fixed-size array: no allocation, and loops the compiler unrolls.

use crate::scalar::Scalar;
use std::cmp::Ordering;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A dual number: value `v` and partial derivatives `d`.
///
/// ```
/// use diffsim::{ad::Dual, Scalar};
/// // d/dx (x^2 sin x) at x = 1
/// let x = Dual::<1>::variable(1.0, 0);
/// let y = x * x * x.sin();
/// let exact = 2.0 * 1f64.sin() + 1f64.cos();
/// assert!((y.d[0] - exact).abs() < 1e-15);
/// // Plain numbers mix in on either side of a `Dual` (in code generic over `Scalar`, only
/// // on the right: `x * 3.0`).
/// let z = 3.0 * x - 1.0;
/// assert_eq!((z.v, z.d[0]), (2.0, 3.0));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<const N: usize> {
    /// The value.
    pub v: f64,
    /// The partial derivatives.
    pub d: [f64; N],
}

impl<const N: usize> Default for Dual<N> {
    #[inline(always)]
    fn default() -> Self {
        Self::constant(0.0)
    }
}

impl<const N: usize> Dual<N> {
    /// A constant: all partials zero.
    #[inline(always)]
    pub fn constant(v: f64) -> Self {
        Self { v, d: [0.0; N] }
    }
    /// The `i`-th independent variable with value `v` (partial `i` is one).
    #[inline(always)]
    pub fn variable(v: f64, i: usize) -> Self {
        let mut d = [0.0; N];
        d[i] = 1.0;
        Self { v, d }
    }
}

impl<const N: usize> PartialEq for Dual<N> {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        self.v == other.v
    }
}

impl<const N: usize> PartialOrd for Dual<N> {
    #[inline(always)]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.v.partial_cmp(&other.v)
    }
}

impl<const N: usize> Add for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn add(mut self, o: Self) -> Self {
        self.v += o.v;
        for i in 0..N {
            self.d[i] += o.d[i];
        }
        self
    }
}

impl<const N: usize> Sub for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn sub(mut self, o: Self) -> Self {
        self.v -= o.v;
        for i in 0..N {
            self.d[i] -= o.d[i];
        }
        self
    }
}

impl<const N: usize> Mul for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        let mut d = [0.0; N];
        for i in 0..N {
            d[i] = self.d[i] * o.v + self.v * o.d[i];
        }
        Self { v: self.v * o.v, d }
    }
}

impl<const N: usize> Div for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        let inv = 1.0 / o.v;
        let v = self.v * inv;
        let mut d = [0.0; N];
        for i in 0..N {
            d[i] = (self.d[i] - v * o.d[i]) * inv;
        }
        Self { v, d }
    }
}

impl<const N: usize> Neg for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.scale(-1.0)
    }
}

macro_rules! assign_op {
    ($tr:ident, $m:ident, $op:tt) => {
        impl<const N: usize> $tr for Dual<N> {
            #[inline(always)]
            fn $m(&mut self, o: Self) {
                *self = *self $op o;
            }
        }
    };
}
assign_op!(AddAssign, add_assign, +);
assign_op!(SubAssign, sub_assign, -);
assign_op!(MulAssign, mul_assign, *);
assign_op!(DivAssign, div_assign, /);

// Arithmetic with a plain-number constant `c` (no derivative parts): `x * c` scales every
// part, `x + c` moves the value only. Each gives the same bits as the operation with
// `Dual::constant(c)`, without the zero partials' arithmetic.

impl<const N: usize> Add<f64> for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn add(mut self, c: f64) -> Self {
        self.v += c;
        self
    }
}

impl<const N: usize> Sub<f64> for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn sub(mut self, c: f64) -> Self {
        self.v -= c;
        self
    }
}

impl<const N: usize> Mul<f64> for Dual<N> {
    type Output = Self;
    #[inline(always)]
    fn mul(mut self, c: f64) -> Self {
        self.v *= c;
        for x in self.d.iter_mut() {
            *x *= c;
        }
        self
    }
}

impl<const N: usize> Div<f64> for Dual<N> {
    type Output = Self;
    /// Multiplies by `1 / c`, as `x / Dual::constant(c)` does.
    #[inline(always)]
    fn div(self, c: f64) -> Self {
        self * (1.0 / c)
    }
}

impl<const N: usize> Add<Dual<N>> for f64 {
    type Output = Dual<N>;
    #[inline(always)]
    fn add(self, x: Dual<N>) -> Dual<N> {
        x + self
    }
}

impl<const N: usize> Sub<Dual<N>> for f64 {
    type Output = Dual<N>;
    #[inline(always)]
    fn sub(self, x: Dual<N>) -> Dual<N> {
        Dual::constant(self) - x
    }
}

impl<const N: usize> Mul<Dual<N>> for f64 {
    type Output = Dual<N>;
    #[inline(always)]
    fn mul(self, x: Dual<N>) -> Dual<N> {
        x * self
    }
}

impl<const N: usize> Div<Dual<N>> for f64 {
    type Output = Dual<N>;
    #[inline(always)]
    fn div(self, x: Dual<N>) -> Dual<N> {
        Dual::constant(self) / x
    }
}

macro_rules! assign_op_f64 {
    ($tr:ident, $m:ident, $op:tt) => {
        impl<const N: usize> $tr<f64> for Dual<N> {
            #[inline(always)]
            fn $m(&mut self, c: f64) {
                *self = *self $op c;
            }
        }
    };
}
assign_op_f64!(AddAssign, add_assign, +);
assign_op_f64!(SubAssign, sub_assign, -);
assign_op_f64!(MulAssign, mul_assign, *);
assign_op_f64!(DivAssign, div_assign, /);

impl<const N: usize> Scalar for Dual<N> {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        Self::constant(x)
    }
    #[inline(always)]
    fn value(self) -> f64 {
        self.v
    }
    #[inline(always)]
    fn scale(self, c: f64) -> Self {
        self * c
    }
    #[inline]
    fn exp(self) -> Self {
        let e = self.v.exp();
        self.chain(e, e)
    }
    #[inline]
    fn ln(self) -> Self {
        self.chain(self.v.ln(), 1.0 / self.v)
    }
    #[inline]
    fn sin(self) -> Self {
        self.chain(self.v.sin(), self.v.cos())
    }
    #[inline]
    fn cos(self) -> Self {
        self.chain(self.v.cos(), -self.v.sin())
    }
    #[inline]
    fn tanh(self) -> Self {
        let t = self.v.tanh();
        self.chain(t, 1.0 - t * t)
    }
    #[inline]
    fn sqrt(self) -> Self {
        let s = self.v.sqrt();
        self.chain(s, 0.5 / s)
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        if n == 0 {
            return Self::constant(1.0);
        }
        let pm1 = self.v.powi(n - 1);
        self.chain(pm1 * self.v, n as f64 * pm1)
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        // x^e = exp(e ln x); d = x^e (e' ln x + e x'/x)
        let f = self.v.powf(e.v);
        let ln = if self.v > 0.0 { self.v.ln() } else { 0.0 };
        let mut d = [0.0; N];
        for i in 0..N {
            let de = if e.d[i] != 0.0 { e.d[i] * ln * f } else { 0.0 };
            d[i] = de + e.v * self.v.powf(e.v - 1.0) * self.d[i];
        }
        Self { v: f, d }
    }
    #[inline]
    fn abs(self) -> Self {
        if self.v < 0.0 {
            -self
        } else {
            self
        }
    }
    /// Value `f`, partials `d[i] * df` (the chain rule for a unary function).
    #[inline(always)]
    fn chain(self, f: f64, df: f64) -> Self {
        let mut d = self.d;
        for x in d.iter_mut() {
            *x *= df;
        }
        Self { v: f, d }
    }
    #[inline]
    fn is_finite(self) -> bool {
        self.v.is_finite() && self.d.iter().all(|x| x.is_finite())
    }
    const PARTS: usize = N + 1;
    #[inline(always)]
    fn part(self, k: usize) -> f64 {
        if k == 0 {
            self.v
        } else {
            self.d[k - 1]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
        let h = 1e-6;
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    #[test]
    fn unary_functions_match_central_differences() {
        let x0 = 0.7;
        let x = Dual::<1>::variable(x0, 0);
        type Case = (Dual<1>, fn(f64) -> f64);
        let cases: Vec<Case> = vec![
            (x.exp(), f64::exp),
            (x.ln(), f64::ln),
            (x.sin(), f64::sin),
            (x.cos(), f64::cos),
            (x.tanh(), f64::tanh),
            (x.sqrt(), f64::sqrt),
            (x.powi(3), |x| x.powi(3)),
            (x.powf(Dual::constant(2.5)), |x| x.powf(2.5)),
            ((-x).abs(), |x| (-x).abs()),
            (Dual::constant(1.0) / x, |x| 1.0 / x),
        ];
        for (k, (y, f)) in cases.into_iter().enumerate() {
            assert!((y.v - f(x0)).abs() < 1e-15, "value {k}");
            assert!((y.d[0] - fd(f, x0)).abs() < 1e-8, "derivative {k}: {} vs {}", y.d[0], fd(f, x0));
        }
    }

    /// `x op c`, `c op x` and `x op= c` with a plain `f64`: the same bits as with
    /// `Dual::constant(c)`, and derivatives that match central differences.
    #[test]
    fn plain_number_operators_match_constants_and_central_differences() {
        let (x0, c) = (0.7, 2.5);
        let x = Dual::<2> { v: x0, d: [1.0, -3.0] };
        let k = Dual::<2>::constant(c);
        type Case = (Dual<2>, Dual<2>, fn(f64) -> f64);
        let cases: [Case; 8] = [
            (x + c, x + k, |x| x + 2.5),
            (x - c, x - k, |x| x - 2.5),
            (x * c, x * k, |x| x * 2.5),
            (x / c, x / k, |x| x / 2.5),
            (c + x, k + x, |x| 2.5 + x),
            (c - x, k - x, |x| 2.5 - x),
            (c * x, k * x, |x| 2.5 * x),
            (c / x, k / x, |x| 2.5 / x),
        ];
        for (i, (y, reference, f)) in cases.into_iter().enumerate() {
            assert_eq!(y.v.to_bits(), reference.v.to_bits(), "case {i}: value");
            assert_eq!(y.d, reference.d, "case {i}: partials");
            assert_eq!(y.v, f(x0), "case {i}: value");
            let df = fd(f, x0);
            assert!((y.d[0] - df).abs() < 1e-8 && (y.d[1] + 3.0 * df).abs() < 3e-8, "case {i}: {y:?} vs {df}");
        }
        let mut z = x;
        z += c;
        z *= c;
        z -= 1.0;
        z /= 4.0;
        let f = |x: f64| ((x + 2.5) * 2.5 - 1.0) / 4.0;
        assert_eq!(z.v, f(x0));
        assert!((z.d[0] - fd(f, x0)).abs() < 1e-8 && (z.d[0] - 2.5 / 4.0).abs() < 1e-15, "{z:?}");
        assert_eq!(z.d[1], -3.0 * z.d[0]);
        // `scale` is `* c`.
        assert_eq!(x.scale(-1.5).d, (x * -1.5).d);
    }

    #[test]
    fn chain_scales_every_partial_by_the_derivative() {
        let x = Dual::<3> { v: 0.3, d: [1.0, -2.0, 0.5] };
        let y = x.chain(4.0, -1.5);
        assert_eq!(y.v, 4.0);
        assert_eq!(y.d, [-1.5, 3.0, -0.75]);
        // Composing with chain gives the same partials as the built-in rule.
        let t = x.tanh();
        let c = x.chain(0.3f64.tanh(), 1.0 - 0.3f64.tanh().powi(2));
        assert_eq!(t.v, c.v);
        for i in 0..3 {
            assert!((t.d[i] - c.d[i]).abs() < 1e-16);
        }
    }

    #[test]
    fn powf_f64_is_the_power_with_a_constant_exponent() {
        let x = Dual::<2>::variable(2.0, 1);
        let y = x.powf_f64(2.5);
        assert_eq!(y.v, 2.0f64.powf(2.5));
        assert!((y.d[1] - 2.5 * 2.0f64.powf(1.5)).abs() < 1e-14 && y.d[0] == 0.0, "{y:?}");
        // At zero the derivative is zero, not 0 * ln 0.
        let z = Dual::<1>::variable(0.0, 0).powf_f64(2.5);
        assert_eq!((z.v, z.d[0]), (0.0, 0.0));
        assert_eq!(3.0f64.powf_f64(0.5), 3.0f64.powf(0.5));
    }

    #[test]
    fn powf_differentiates_the_exponent() {
        let b = Dual::<2>::variable(1.5, 0);
        let e = Dual::<2>::variable(0.8, 1);
        let y = b.powf(e);
        assert!((y.d[0] - fd(|b| b.powf(0.8), 1.5)).abs() < 1e-8);
        assert!((y.d[1] - fd(|e| 1.5f64.powf(e), 0.8)).abs() < 1e-8);
    }
}
