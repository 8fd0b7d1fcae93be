//! Running a kernel with wide vectors when the CPU has them, and viewing generic slices as
//! floats.
//!
//! The library is built for the baseline x86-64 target, whose vectors hold two `f64`. The
//! tanh network kernels are throughput-bound (a division and a polynomial per unit, a few
//! short matrix-vector products), so wider lanes make them markedly faster. [`wide`]
//! compiles its closure's body twice more, with AVX2 and with AVX-512F enabled, and picks
//! the widest version the CPU runs (the CPU check is a cached load). AVX-512 gains little
//! over AVX2 (bench/peers/README.md): most of the hot loops are blocks of four lanes, which
//! it does not widen. FMA is deliberately not
//! used: the wide code does the same IEEE operations in the same order as the SSE2 code
//! (no reduction is reordered; the dot products already keep eight explicit lanes), so
//! results are bit-identical on every x86-64 machine and a trained network does not depend
//! on where it was trained.

use super::Float;
use crate::Scalar;
use std::any::TypeId;

/// A kernel body for [`wide`]. `run` must be `#[inline(always)]` and call only
/// `#[inline(always)]` code, so that all of it is compiled into the wide copies. (A closure
/// would not do: it stays a separate function compiled for the baseline target.)
pub(crate) trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

/// Run `k`, compiled for AVX-512F or AVX2 when the CPU supports them.
#[inline(always)]
pub(crate) fn wide<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (and so AVX2), checked just above.
            return unsafe { avx512(k) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { avx2(k) };
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<K: Kernel>(k: K) -> K::Output {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<K: Kernel>(k: K) -> K::Output {
    k.run()
}

/// `x` as a slice of the float type `F` when `T` is `F` itself (the generic forward pass
/// on plain floats then takes the fast kernels).
#[inline(always)]
pub(crate) fn as_float<T: Scalar, F: Float>(x: &[T]) -> Option<&[F]> {
    if TypeId::of::<T>() == TypeId::of::<F>() {
        // SAFETY: T and F are the same type, so the slice is already a slice of F.
        Some(unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<F>(), x.len()) })
    } else {
        None
    }
}

/// [`as_float`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_float_mut<T: Scalar, F: Float>(x: &mut [T]) -> Option<&mut [F]> {
    if TypeId::of::<T>() == TypeId::of::<F>() {
        // SAFETY: T and F are the same type; the exclusive borrow of `x` moves into the result.
        Some(unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<F>(), x.len()) })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::Dual;

    #[test]
    fn float_views_only_for_the_same_type() {
        let x = [1.0f64, 2.0];
        assert_eq!(as_float::<f64, f64>(&x), Some(&x[..]));
        assert!(as_float::<f64, f32>(&x).is_none());
        let d = [Dual::<2>::constant(1.0)];
        assert!(as_float::<Dual<2>, f64>(&d).is_none());
        let mut y = [0.0f32; 3];
        as_float_mut::<f32, f32>(&mut y).unwrap()[1] = 5.0;
        assert_eq!(y[1], 5.0);
        struct Add(i32, i32);
        impl Kernel for Add {
            type Output = i32;
            #[inline(always)]
            fn run(self) -> i32 {
                self.0 + self.1
            }
        }
        assert_eq!(wide(Add(3, 4)), 7);
    }
}
