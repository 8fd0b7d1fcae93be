//! The backward pass in one sweep over the hidden units, for networks `n -> h -> n` with
//! `n <= 4 < h`: the shape of a UDE's network on a few states (the spiral's 2-50-2).
//!
//! Layer by layer, the backward pass of such a network sweeps its `h` hidden units six
//! times (the output layer's weight gradient, its input adjoint, the activation derivative,
//! the first layer's weight and bias gradients and its input adjoint), each a short loop of
//! its own, and the hidden adjoint makes a round trip through memory in between. Here each
//! block of four hidden units goes through all of it while it sits in registers. (The
//! forward pass stays layer by layer: fused the same way, its activation's constants no
//! longer fitted in registers beside the output sums, and it was slower.)
//!
//! The arithmetic is the layer-by-layer kernels' operation for operation, in the same order
//! (the input adjoint in `transpose_mul_acc`'s four lanes), so both paths give the same bits
//! and which one ran never shows in a result.

use super::{Dense, Float, Mlp};

/// The two layers of a network the fused kernels handle, with their weights.
struct Narrow<'a, F> {
    l1: Dense,
    l2: Dense,
    w1: &'a [F],
    w2: &'a [F],
}

impl<'a, F: Float> Narrow<'a, F> {
    #[inline(always)]
    fn new<const N: usize>(net: &Mlp, params: &'a [F]) -> Self {
        let (l1, l2) = (net.layers()[0], net.layers()[1]);
        let h = l1.n_out;
        Narrow { l1, l2, w1: &params[l1.weights()][..h * N], w2: &params[l2.weights()][..N * h] }
    }
}

impl Mlp {
    /// The input (= output) width when the one-sweep backward pass applies: two layers,
    /// `n -> h -> n`, `n <= 4 < h` (narrower hidden layers take other paths in the layered
    /// kernels, whose order of operations this one follows).
    #[inline(always)]
    pub(crate) fn fused_width(&self) -> Option<usize> {
        match self.layers() {
            [l1, l2] if l1.n_in == l2.n_out && l1.n_in <= 4 && l1.n_out > 4 => Some(l1.n_in),
            _ => None,
        }
    }
}

/// What the backward pass reads from a stored forward pass: the input `x`, the hidden
/// activations `a1` and derivatives `da1`, the output derivatives `da2`.
pub(crate) struct Kept<'a, F> {
    pub(crate) x: &'a [F],
    pub(crate) a1: &'a [F],
    pub(crate) da1: &'a [F],
    pub(crate) da2: &'a [F],
}

/// Backward pass of a network with [`Mlp::fused_width`] `Some(n)` from a stored forward
/// pass: ACCUMULATES `xbar += (dy/dx)^T ybar` and `pbar += (dy/dp)^T ybar`.
#[inline(always)]
pub(crate) fn backward<F: Float>(
    net: &Mlp,
    params: &[F],
    kept: Kept<'_, F>,
    ybar: &[F],
    xbar: &mut [F],
    pbar: &mut [F],
) {
    match net.n_inputs() {
        1 => backward_n::<F, 1>(net, params, kept, ybar, xbar, pbar),
        2 => backward_n::<F, 2>(net, params, kept, ybar, xbar, pbar),
        3 => backward_n::<F, 3>(net, params, kept, ybar, xbar, pbar),
        _ => backward_n::<F, 4>(net, params, kept, ybar, xbar, pbar),
    }
}

#[inline(always)]
fn backward_n<F: Float, const N: usize>(
    net: &Mlp,
    params: &[F],
    kept: Kept<'_, F>,
    ybar: &[F],
    xbar: &mut [F],
    pbar: &mut [F],
) {
    let nw = Narrow::<F>::new::<N>(net, params);
    let h = nw.l1.n_out;
    let x: &[F; N] = kept.x[..N].try_into().expect("width checked by the caller");
    let (a1, da1) = (&kept.a1[..h], &kept.da1[..h]);
    let mut d2 = [F::zero(); N];
    for o in 0..N {
        d2[o] = ybar[o] * kept.da2[o];
    }
    let (g1, g2) = pbar[nw.l1.offset..nw.l2.offset + nw.l2.n_params()].split_at_mut(nw.l1.n_params());
    let (gw1, gb1) = g1.split_at_mut(h * N);
    let (gw2, gb2) = g2.split_at_mut(N * h);
    let (gw1, gb1, gw2) = (&mut gw1[..h * N], &mut gb1[..h], &mut gw2[..N * h]);
    for o in 0..N {
        gb2[o] += d2[o];
    }
    // The input adjoint in `transpose_mul_acc`'s lanes: in the blocks of four, unit c adds
    // to lane c mod 4; the units after the last block add to lane 0.
    let mut acc = [[F::zero(); 4]; N];
    let full = h / 4 * 4;
    let mut c = 0;
    while c < full {
        // All loads first, then arithmetic, then stores: a store into the gradient before
        // a later load would have to be assumed to alias it, which keeps the compiler from
        // turning the four units into one vector operation.
        let a: [F; 4] = a1[c..c + 4].try_into().expect("four units");
        let s: [F; 4] = da1[c..c + 4].try_into().expect("four units");
        let mut g2 = [[F::zero(); 4]; N];
        let mut w2 = [[F::zero(); 4]; N];
        for o in 0..N {
            g2[o] = gw2[o * h + c..o * h + c + 4].try_into().expect("four units");
            w2[o] = nw.w2[o * h + c..o * h + c + 4].try_into().expect("four units");
        }
        let mut g1 = [[F::zero(); N]; 4];
        let mut w1 = [[F::zero(); N]; 4];
        for r in 0..4 {
            g1[r] = gw1[(c + r) * N..(c + r + 1) * N].try_into().expect("n inputs");
            w1[r] = nw.w1[(c + r) * N..(c + r + 1) * N].try_into().expect("n inputs");
        }
        let mut b1: [F; 4] = gb1[c..c + 4].try_into().expect("four units");

        let mut g = [F::zero(); 4];
        for o in 0..N {
            for r in 0..4 {
                g2[o][r] += d2[o] * a[r];
                g[r] += d2[o] * w2[o][r];
            }
        }
        let mut d1 = [F::zero(); 4];
        for r in 0..4 {
            d1[r] = g[r] * s[r];
            b1[r] += d1[r];
            for j in 0..N {
                g1[r][j] += d1[r] * x[j];
                acc[j][r] += d1[r] * w1[r][j];
            }
        }

        for o in 0..N {
            gw2[o * h + c..o * h + c + 4].copy_from_slice(&g2[o]);
        }
        for r in 0..4 {
            gw1[(c + r) * N..(c + r + 1) * N].copy_from_slice(&g1[r]);
        }
        gb1[c..c + 4].copy_from_slice(&b1);
        c += 4;
    }
    while c < h {
        let mut g = F::zero();
        for o in 0..N {
            gw2[o * h + c] += d2[o] * a1[c];
            g += d2[o] * nw.w2[o * h + c];
        }
        let d1 = g * da1[c];
        gb1[c] += d1;
        for j in 0..N {
            gw1[c * N + j] += d1 * x[j];
            acc[j][0] += d1 * nw.w1[c * N + j];
        }
        c += 1;
    }
    for j in 0..N {
        xbar[j] += (acc[j][0] + acc[j][2]) + (acc[j][1] + acc[j][3]);
    }
}
