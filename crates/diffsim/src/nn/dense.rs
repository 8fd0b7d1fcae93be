//! One dense layer `a = sigma(W x + b)` and its kernels.
//!
//! The kernels work on caller-owned slices and never allocate. Weights are row-major
//! `[out][in]`, so each output is one dot product over a contiguous row (forward) and each
//! backward step is an `axpy` over a contiguous row (`x_bar += delta_o * W[o, :]`,
//! `W_bar[o, :] += delta_o * x`), both of which the compiler vectorises.

use super::{Activation, Float};
use crate::scalar::Scalar;
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
    #[inline(always)]
    pub(crate) fn forward_batch<F: Float>(&self, params: &[F], x: &[F], a: &mut [F], da: &mut [F], batch: usize) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let w = &params[self.weights()];
        let b = &params[self.biases()];
        let a = &mut a[..batch * n_out];
        // Rows by index, not `chunks_exact`: that divides by the (runtime) width, and a
        // few integer divisions per layer were a visible share of a small network's time.
        for r in 0..batch {
            affine(w, b, &x[r * n_in..(r + 1) * n_in], &mut a[r * n_out..(r + 1) * n_out]);
        }
        self.activation.eval_slice(a, &mut da[..batch * n_out]);
    }

    /// Float forward for one input, values only (no derivatives kept): `out = sigma(W x + b)`.
    #[inline(always)]
    pub(crate) fn forward_values<F: Float>(&self, params: &[F], x: &[F], out: &mut [F]) {
        let out = &mut out[..self.n_out];
        affine(&params[self.weights()], &params[self.biases()], &x[..self.n_in], out);
        self.activation.value_slice(out);
    }

    /// Batched backward through the affine part. `delta` (`[batch][n_out]`) is the adjoint
    /// of `z = W x + b` (the activation derivative already applied). Accumulates
    /// `W_bar += delta^T x` and `b_bar += sum delta` into `pbar` (the full flat gradient) and,
    /// when `xbar` is given, `xbar += delta W` (`[batch][n_in]`).
    #[inline(always)]
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
            for r in 0..batch {
                let (xr, dr) = (&x[r * n_in..(r + 1) * n_in], &delta[r * n_out..(r + 1) * n_out]);
                outer_acc(dr, xr, gw);
                for (g, &d) in gb.iter_mut().zip(dr) {
                    *g += d;
                }
            }
        }
        if let Some(xbar) = xbar {
            let w = &params[self.weights()];
            for r in 0..batch {
                let dr = &delta[r * n_out..(r + 1) * n_out];
                transpose_mul_acc(w, dr, &mut xbar[r * n_in..(r + 1) * n_in]);
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

/// `z = W x + b` for one input (`W` row-major `[z.len()][x.len()]`).
///
/// Layers with up to four inputs (the first layer of a network on a few states) get a loop
/// with the width as a constant, which the compiler vectorises across outputs; wider ones a
/// dot product per row. The narrow loop sums `(b + w_0 x_0) + w_1 x_1 + ...` in the order of
/// the generic forward pass, so that a solve through the network is unchanged to the bit.
#[inline(always)]
pub(crate) fn affine<F: Float>(w: &[F], b: &[F], x: &[F], z: &mut [F]) {
    match x.len() {
        1 => affine_narrow::<F, 1>(w, b, x, z),
        2 => affine_narrow::<F, 2>(w, b, x, z),
        3 => affine_narrow::<F, 3>(w, b, x, z),
        4 => affine_narrow::<F, 4>(w, b, x, z),
        n_in => {
            for (o, (zo, &bo)) in z.iter_mut().zip(b).enumerate() {
                *zo = bo + dot(&w[o * n_in..(o + 1) * n_in], x);
            }
        }
    }
}

#[inline(always)]
fn affine_narrow<F: Float, const N: usize>(w: &[F], b: &[F], x: &[F], z: &mut [F]) {
    // Plain indexing over the outputs (after one up-front slice of each operand): this
    // shape the compiler vectorises across outputs, de-interleaving the rows of `W`; with
    // per-row chunks it vectorised each tiny row instead, one output at a time.
    let n_out = z.len();
    let (w, b) = (&w[..n_out * N], &b[..n_out]);
    let x: &[F; N] = x.try_into().expect("width checked by the caller");
    for o in 0..n_out {
        let mut s = b[o];
        for j in 0..N {
            s += w[o * N + j] * x[j];
        }
        z[o] = s;
    }
}

/// `G += d x^T` (`G` row-major `[d.len()][x.len()]`).
#[inline(always)]
fn outer_acc<F: Float>(d: &[F], x: &[F], g: &mut [F]) {
    macro_rules! narrow {
        ($n:literal) => {{
            let x: &[F; $n] = x.try_into().expect("width matched");
            let g = &mut g[..d.len() * $n];
            for o in 0..d.len() {
                for j in 0..$n {
                    g[o * $n + j] += d[o] * x[j];
                }
            }
        }};
    }
    match x.len() {
        1 => narrow!(1),
        2 => narrow!(2),
        3 => narrow!(3),
        4 => narrow!(4),
        n_in => {
            for (o, &dv) in d.iter().enumerate() {
                axpy(dv, x, &mut g[o * n_in..(o + 1) * n_in]);
            }
        }
    }
}

/// `xb += W^T d`, i.e. `xb += sum_o d_o W[o, :]` (`W` row-major `[d.len()][xb.len()]`).
///
/// Wide rows are one `axpy` each. Narrow ones (a first layer on a few states, with many
/// outputs) would make each `xb_j` one long serial chain of additions, so there the sum
/// runs in four interleaved partial sums (rows `o mod 4`), added at the end.
#[inline(always)]
fn transpose_mul_acc<F: Float>(w: &[F], d: &[F], xb: &mut [F]) {
    macro_rules! narrow {
        ($n:literal) => {{
            let n_out = d.len();
            let w = &w[..n_out * $n];
            let xb: &mut [F; $n] = xb.try_into().expect("width matched");
            let mut acc = [[F::zero(); 4]; $n];
            let full = n_out / 4 * 4;
            let mut o = 0;
            while o < full {
                for r in 0..4 {
                    for j in 0..$n {
                        acc[j][r] += d[o + r] * w[(o + r) * $n + j];
                    }
                }
                o += 4;
            }
            while o < n_out {
                for j in 0..$n {
                    acc[j][0] += d[o] * w[o * $n + j];
                }
                o += 1;
            }
            for j in 0..$n {
                xb[j] += (acc[j][0] + acc[j][2]) + (acc[j][1] + acc[j][3]);
            }
        }};
    }
    match xb.len() {
        1 => narrow!(1),
        2 => narrow!(2),
        3 => narrow!(3),
        4 => narrow!(4),
        n_in => {
            for (o, &dv) in d.iter().enumerate() {
                axpy(dv, &w[o * n_in..(o + 1) * n_in], xb);
            }
        }
    }
}

/// Dot product with eight independent accumulators: float addition is not associative, so
/// the compiler only vectorises a reduction when the code already splits it into lanes.
/// The lanes are two groups of four, combined lane by lane and then as halves: written as
/// one array of eight, the final sum made the compiler pair lanes 0 and 2 into one vector and
/// shuffle every load.
#[inline(always)]
pub(crate) fn dot<F: Float>(a: &[F], b: &[F]) -> F {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lo = [F::zero(); 4];
    let mut hi = [F::zero(); 4];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..4 {
            lo[l] += xa[l] * xb[l];
            hi[l] += xa[4 + l] * xb[4 + l];
        }
    }
    let mut tail = F::zero();
    for (&u, &v) in ra.iter().zip(rb) {
        tail += u * v;
    }
    let mut s = [F::zero(); 4];
    for l in 0..4 {
        s[l] = lo[l] + hi[l];
    }
    ((s[0] + s[2]) + (s[1] + s[3])) + tail
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
