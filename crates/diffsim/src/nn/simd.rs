//! Running a kernel with wide vectors when the CPU has them.
//!
//! The library is built for the baseline x86-64 target, whose vectors hold two `f64`. The
//! tanh network kernels are throughput-bound (a division and a polynomial per unit, a few
//! short matrix-vector products), so wider lanes make them markedly faster. [`wide`]
//! compiles its closure's body twice more, with AVX2 and with AVX-512F enabled, and picks
//! the widest version the CPU runs (the CPU check is a cached load). AVX-512 gains little
//! over AVX2 (bench/peers/README.md): most of the hot loops are blocks of four lanes, which
//! it does not widen. FMA is deliberately not used: the wide code does the same IEEE operations in the same order as the SSE2 code
//! (no reduction is reordered; the dot products already keep eight explicit lanes), so
//! results are bit-identical on every x86-64 machine and a trained network does not depend
//! on where it was trained.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_runs() {
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
