//! One dense layer `a = sigma(W x + b)` and its kernels.
//!
//! The kernels work on caller-owned slices and never allocate. Weights are row-major
//! `[out][in]`, so each output is one dot product over a contiguous row (forward) and each
//! backward step is an `axpy` over a contiguous row (`x_bar += delta_o * W[o, :]`,
//! `W_bar[o, :] += delta_o * x`), both of which the compiler vectorises.

use super::{Activation, Float};
use crate::Scalar;
use std::ops::Range;

/// Shape, activation and parameter location of one dense layer of an [`super::Mlp`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) activation: Activation,
    /// Offset of `W` in the flat parameter vector; `b` follows it.
    pub(crate) offset: usize,
}

impl Dense {
    /// Input width.
    pub fn n_in(&self) -> usize {
        self.n_in
    }
    /// Output width.
    pub fn n_out(&self) -> usize {
        self.n_out
    }
    /// The activation applied to `W x + b`.
    pub fn activation(&self) -> Activation {
        self.activation
    }
    /// Number of parameters, `n_out * n_in + n_out`.
    pub fn n_params(&self) -> usize {
        self.n_out * self.n_in + self.n_out
    }
    /// Where `W` (row-major `[out][in]`) sits in the flat parameter vector.
    pub fn weights(&self) -> Range<usize> {
        self.offset..self.offset + self.n_out * self.n_in
    }
    /// Where `b` sits in the flat parameter vector.
    pub fn biases(&self) -> Range<usize> {
        let s = self.offset + self.n_out * self.n_in;
        s..s + self.n_out
    }

    /// Generic forward for one input: `out = sigma(W x + b)`. `mul(w, x)` is `w * x` in the
    /// number type and `lift(b)` turns a parameter into it, so parameters can be `T` (to
    /// differentiate through them) or `f64` (cheaper when only the input is differentiated).
    #[inline(always)]
    pub(crate) fn forward_generic<T: Scalar, P: Copy>(
        &self,
        params: &[P],
        x: &[T],
        out: &mut [T],
        mul: impl Fn(P, T) -> T,
        lift: impl Fn(P) -> T,
    ) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let w = &params[self.weights()];
        let b = &params[self.biases()];
        let x = &x[..n_in];
        let out = &mut out[..n_out];
        for o in 0..n_out {
            let row = &w[o * n_in..(o + 1) * n_in];
            let mut z = lift(b[o]);
            for j in 0..n_in {
                z += mul(row[j], x[j]);
            }
            out[o] = z;
        }
        self.activation.apply_slice(out);
    }

    /// Batched float forward: for each of `batch` rows of `x` (`[batch][n_in]`), writes the
    /// activations to `a` and their derivatives `sigma'(z)` to `da` (both `[batch][n_out]`).
    #[inline]
    pub(crate) fn forward_batch<F: Float>(&self, params: &[F], x: &[F], a: &mut [F], da: &mut [F], batch: usize) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let w = &params[self.weights()];
        let b = &params[self.biases()];
        let a = &mut a[..batch * n_out];
        for (xr, ar) in x[..batch * n_in].chunks_exact(n_in).zip(a.chunks_exact_mut(n_out)) {
            for ((z, row), &bo) in ar.iter_mut().zip(w.chunks_exact(n_in)).zip(b) {
                *z = bo + dot(row, xr);
            }
        }
        self.activation.eval_slice(a, &mut da[..batch * n_out]);
    }

    /// Batched backward through the affine part. `delta` (`[batch][n_out]`) is the adjoint
    /// of `z = W x + b` (the activation derivative already applied). Accumulates
    /// `W_bar += delta^T x` and `b_bar += sum delta` into `pbar` (the full flat gradient) and,
    /// when `xbar` is given, `xbar += delta W` (`[batch][n_in]`).
    #[inline]
    pub(crate) fn backward_batch<F: Float>(
        &self,
        params: &[F],
        x: &[F],
        delta: &[F],
        xbar: Option<&mut [F]>,
        pbar: Option<&mut [F]>,
        batch: usize,
    ) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let x = &x[..batch * n_in];
        let delta = &delta[..batch * n_out];
        if let Some(pbar) = pbar {
            let (gw, gb) = pbar[self.offset..self.offset + self.n_params()].split_at_mut(n_out * n_in);
            for (xr, dr) in x.chunks_exact(n_in).zip(delta.chunks_exact(n_out)) {
                for ((grow, &d), gbo) in gw.chunks_exact_mut(n_in).zip(dr).zip(gb.iter_mut()) {
                    axpy(d, xr, grow);
                    *gbo += d;
                }
            }
        }
        if let Some(xbar) = xbar {
            let w = &params[self.weights()];
            for (xb, dr) in xbar[..batch * n_in].chunks_exact_mut(n_in).zip(delta.chunks_exact(n_out)) {
                for (row, &d) in w.chunks_exact(n_in).zip(dr) {
                    axpy(d, row, xb);
                }
            }
        }
    }

    /// Tangent propagation for `k` directions: `t_out[o, :] = sigma'(z_o) sum_j W[o, j] t_in[j, :]`
    /// with `t_in` `[n_in][k]` and `t_out` `[n_out][k]` row-major; `da` is the stored
    /// `sigma'(z)` of a single input.
    #[inline]
    pub(crate) fn tangent<F: Float>(&self, params: &[F], da: &[F], t_in: &[F], t_out: &mut [F], k: usize) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let w = &params[self.weights()];
        let t_in = &t_in[..n_in * k];
        for ((out_row, row), &s) in t_out[..n_out * k].chunks_exact_mut(k).zip(w.chunks_exact(n_in)).zip(&da[..n_out]) {
            out_row.fill(F::zero());
            for (&wj, tj) in row.iter().zip(t_in.chunks_exact(k)) {
                axpy(wj, tj, out_row);
            }
            for v in out_row.iter_mut() {
                *v *= s;
            }
        }
    }
}

/// Dot product with eight independent accumulators: float addition is not associative, so
/// the compiler only vectorises a reduction when the code already splits it into lanes.
#[inline(always)]
pub(crate) fn dot<F: Float>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [F::zero(); 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += xa[l] * xb[l];
        }
    }
    let mut tail = F::zero();
    for (&u, &v) in ra.iter().zip(rb) {
        tail += u * v;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y += alpha * x`.
#[inline(always)]
pub(crate) fn axpy<F: Float>(alpha: F, x: &[F], y: &mut [F]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_naive_sum_for_every_tail_length() {
        for n in 0..40 {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-13, "n = {n}");
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            assert!((dot(&a32, &b32) as f64 - naive).abs() < 1e-5, "f32 n = {n}");
        }
    }

    #[test]
    fn axpy_adds_a_scaled_vector() {
        let mut y = [1.0, 2.0, 3.0];
        axpy(2.0, &[1.0, -1.0, 0.5], &mut y);
        assert_eq!(y, [3.0, 0.0, 4.0]);
    }
}
