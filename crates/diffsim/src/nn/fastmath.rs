//! A branch-free `tanh` the compiler can inline and vectorise.
//!
//! In a 2-50-2 tanh network the 50 calls to the C library's `tanh` cost more than all the
//! multiply-adds, and a call cannot be vectorised. This version is straight-line arithmetic
//! with a single division. For `a = |x|` (clamped to 20, where `tanh` is 1 in `f64`):
//!
//! ```text
//! y = -2a = k ln2 + r,   |r| <= ln2 / 2         (so e^y = 2^k e^r)
//! e^r ~ (E + O) / (E - O),   E = E(r^2) even,  O = r O(r^2) odd    (Pade [6/6])
//! tanh a = (1 - e^y) / (1 + e^y)
//!        = (E (1 - 2^k) - O (1 + 2^k)) / (E (1 + 2^k) - O (1 - 2^k))
//! ```
//!
//! `k` comes from the round-to-nearest "magic number" trick and `2^k` is built from its
//! exponent bits. `ln 2` is not split in two (Cody-Waite): the rounding of `k ln2` matters
//! only where `|k|` is large, and there it is scaled down with `e^y = 2^k e^r` before it
//! reaches `tanh`; the single split costs a dependent multiply-add per element and gained
//! nothing on the error bound below. The sign is put back by flipping the sign bit of
//! `tanh |x|` (cheaper than `copysign`). The diagonal
//! Pade approximant `e^r = p(r) / p(-r)` with `p(r) = sum_j (12 - j)! 6! / (12! j! (6 - j)!) r^j`
//! has relative error below `(6!)^2 / (12! 13!) |r|^13 < 2e-19` on the reduced range, and
//! costs seven coefficients where a Taylor series needs fourteen. Folding it into the tanh
//! quotient leaves one division instead of two. The form keeps full relative accuracy near
//! zero: for `k = 0` the numerator is exactly `-2 O`, no cancellation.
//!
//! Accuracy: at most 3 ulp against the C library's `tanh` (checked on a dense grid below).
//! It is faster than the C library call per element because it vectorises (measurements in
//! bench/peers/README.md). `tanh(-0) = -0`, NaN propagates, `tanh(+-inf) = +-1`.
//!
//! A network's backward pass uses `1 - t^2` with `t` this function's value: that is the
//! exact derivative of the true `tanh` at a point a few ulp away, so gradients agree with
//! finite differences of the network to the precision finite differences can resolve.

/// 1.5 * 2^52: adding it rounds a number of magnitude < 2^51 to an integer held in the low
/// mantissa bits.
const MAGIC: f64 = 6_755_399_441_055_744.0;
/// `-2 log2(e)`: `-2 a log2(e)` is `y log2(e)` with the same bits (scaling by 2 is exact).
const MINUS_2_LOG2_E: f64 = -2.0 * std::f64::consts::LOG2_E;
/// The sign bit of an `f64`.
const SIGN: u64 = 1 << 63;

/// The Pade [6/6] coefficients of `e^r`: `E(s) = 1 + E1 s + E2 s^2 + E3 s^3` and
/// `O(s) = 1/2 + O1 s + O2 s^2` with `s = r^2`, so `e^r ~ (E + r O) / (E - r O)`.
const E1: f64 = 5.0 / 44.0;
const E2: f64 = 1.0 / 792.0;
const E3: f64 = 1.0 / 665_280.0;
const O1: f64 = 1.0 / 66.0;
const O2: f64 = 1.0 / 15_840.0;

/// `tanh(x)` in `f64`, inlined and branch-free (NaN in, NaN out; `tanh(-0) = -0`).
#[inline(always)]
pub(crate) fn tanh_f64(x: f64) -> f64 {
    let a = x.abs();
    // A select, not `f64::min`, so NaN propagates.
    let a = if a > 20.0 { 20.0 } else { a };
    let y = -2.0 * a;
    // Off the critical path of `y`: both multiplies start from `a`.
    let shifted = a * MINUS_2_LOG2_E + MAGIC;
    let k = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i64;
    let kf = shifted - MAGIC;
    let r = y - kf * std::f64::consts::LN_2;
    let s = r * r;
    let e = 1.0 + s * (E1 + s * (E2 + s * E3));
    let o = r * (0.5 + s * (O1 + s * O2));
    // k is in [-58, 0] here, so the biased exponent stays in range; 1 - 2^k and 1 + 2^k are
    // exact (the latter rounds to 1 only below k = -52, where it no longer matters).
    let two_k = f64::from_bits(((k + 1023) as u64) << 52);
    let (m, p) = (1.0 - two_k, 1.0 + two_k);
    // The quotient is tanh|x| >= 0 (or NaN): XOR in x's sign bit (cheaper than copysign).
    let q = (e * m - o * p) / (e * p - o * m);
    f64::from_bits(q.to_bits() ^ (x.to_bits() & SIGN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_c_library_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -25.0;
        while x <= 25.0 {
            for v in [x, x * 1e-3, x * 1e-9] {
                let (got, want) = (tanh_f64(v), v.tanh());
                let err = (got - want).abs() / (want.abs() * f64::EPSILON).max(f64::MIN_POSITIVE);
                worst = worst.max(err);
            }
            x += 0.000_731;
        }
        assert!(worst <= 3.0, "worst error {worst} ulp");
        assert_eq!(tanh_f64(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_f64(f64::INFINITY), 1.0);
        assert_eq!(tanh_f64(-1e300), -1.0);
        assert!(tanh_f64(f64::NAN).is_nan());
        assert_eq!(tanh_f64(1e-300), 1e-300);
    }
}
