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

/// Where a backward pass puts its parameter gradient.
pub(crate) enum ParamGrad<'a, F> {
    /// Accumulated into `pbar` at once.
    Now(&'a mut [F]),
    /// Left pending: the pass appends what the gradient needs (`[d2, x, a1, d1]`: the two
    /// layers' pre-activation adjoints and their inputs) for [`flush_pending`], which adds
    /// the gradients of a series of passes in one sweep over the parameters. The series of
    /// a Runge-Kutta step's stages then loads and stores each gradient block once instead
    /// of once per stage; the additions are the same and in the same order, so the bits are
    /// those of [`ParamGrad::Now`].
    Pending(&'a mut Vec<F>),
}

/// Backward pass of a network with [`Mlp::fused_width`] `Some(n)` from a stored forward
/// pass: ACCUMULATES `xbar += (dy/dx)^T ybar`, and `(dy/dp)^T ybar` into `grad`.
#[inline(always)]
pub(crate) fn backward<F: Float>(
    net: &Mlp,
    params: &[F],
    kept: Kept<'_, F>,
    ybar: &[F],
    xbar: &mut [F],
    grad: ParamGrad<'_, F>,
) {
    match net.n_inputs() {
        1 => backward_n::<F, 1>(net, params, kept, ybar, xbar, grad),
        2 => backward_n::<F, 2>(net, params, kept, ybar, xbar, grad),
        3 => backward_n::<F, 3>(net, params, kept, ybar, xbar, grad),
        _ => backward_n::<F, 4>(net, params, kept, ybar, xbar, grad),
    }
}

/// Add the parameter gradients that backward passes left in `pending`
/// ([`ParamGrad::Pending`]) to `pbar`, in the order the passes ran.
#[inline(always)]
pub(crate) fn flush_pending<F: Float>(net: &Mlp, pending: &[F], pbar: &mut [F]) {
    match net.n_inputs() {
        1 => flush_n::<F, 1>(net, pending, pbar),
        2 => flush_n::<F, 2>(net, pending, pbar),
        3 => flush_n::<F, 3>(net, pending, pbar),
        _ => flush_n::<F, 4>(net, pending, pbar),
    }
}

/// The parameter-gradient slices of a fused network's layers: `(gw1, gb1, gw2, gb2)`.
type GradParts<'g, F> = (&'g mut [F], &'g mut [F], &'g mut [F], &'g mut [F]);

#[inline(always)]
fn grad_parts<F>(l1: Dense, l2: Dense, n: usize, pbar: &mut [F]) -> GradParts<'_, F> {
    let h = l1.n_out;
    let (g1, g2) = pbar[l1.offset..l2.offset + l2.n_params()].split_at_mut(l1.n_params());
    let (gw1, gb1) = g1.split_at_mut(h * n);
    let (gw2, gb2) = g2.split_at_mut(n * h);
    (&mut gw1[..h * n], &mut gb1[..h], &mut gw2[..n * h], gb2)
}

#[inline(always)]
fn flush_n<F: Float, const N: usize>(net: &Mlp, pending: &[F], pbar: &mut [F]) {
    let (l1, l2) = (net.layers()[0], net.layers()[1]);
    let h = l1.n_out;
    let stride = 2 * N + 2 * h;
    let (gw1, gb1, gw2, gb2) = grad_parts(l1, l2, N, pbar);
    // One pass's pending data: `[d2 (N), x (N), a1 (h), d1 (h)]`; `a1` starts at `at`.
    let at = 2 * N;
    let split = |st: &[F]| -> ([F; N], [F; N]) { (st[..N].try_into().expect("n"), st[N..at].try_into().expect("n")) };
    for st in pending.chunks_exact(stride) {
        let (d2, _) = split(st);
        for o in 0..N {
            gb2[o] += d2[o];
        }
    }
    let full = h / 4 * 4;
    let mut c = 0;
    while c < full {
        let mut g = GradBlock::<F, N>::load(gw2, gw1, gb1, h, c);
        for st in pending.chunks_exact(stride) {
            let (d2, x) = split(st);
            let a: [F; 4] = st[at + c..at + c + 4].try_into().expect("four units");
            let d1: [F; 4] = st[at + h + c..at + h + c + 4].try_into().expect("four units");
            for o in 0..N {
                for r in 0..4 {
                    g.g2[o][r] += d2[o] * a[r];
                }
            }
            for r in 0..4 {
                g.b1[r] += d1[r];
                for j in 0..N {
                    g.g1[r][j] += d1[r] * x[j];
                }
            }
        }
        g.store(gw2, gw1, gb1, h, c);
        c += 4;
    }
    while c < h {
        for st in pending.chunks_exact(stride) {
            let (d2, x) = split(st);
            for o in 0..N {
                gw2[o * h + c] += d2[o] * st[at + c];
            }
            let d1 = st[at + h + c];
            gb1[c] += d1;
            for j in 0..N {
                gw1[c * N + j] += d1 * x[j];
            }
        }
        c += 1;
    }
}

/// One block of four hidden units' parameter gradients, held in registers.
struct GradBlock<F, const N: usize> {
    g2: [[F; 4]; N],
    g1: [[F; N]; 4],
    b1: [F; 4],
}

impl<F: Float, const N: usize> GradBlock<F, N> {
    #[inline(always)]
    fn load(gw2: &[F], gw1: &[F], gb1: &[F], h: usize, c: usize) -> Self {
        let mut g2 = [[F::zero(); 4]; N];
        for o in 0..N {
            g2[o] = gw2[o * h + c..o * h + c + 4].try_into().expect("four units");
        }
        let mut g1 = [[F::zero(); N]; 4];
        for r in 0..4 {
            g1[r] = gw1[(c + r) * N..(c + r + 1) * N].try_into().expect("n inputs");
        }
        GradBlock { g2, g1, b1: gb1[c..c + 4].try_into().expect("four units") }
    }

    #[inline(always)]
    fn store(&self, gw2: &mut [F], gw1: &mut [F], gb1: &mut [F], h: usize, c: usize) {
        for o in 0..N {
            gw2[o * h + c..o * h + c + 4].copy_from_slice(&self.g2[o]);
        }
        for r in 0..4 {
            gw1[(c + r) * N..(c + r + 1) * N].copy_from_slice(&self.g1[r]);
        }
        gb1[c..c + 4].copy_from_slice(&self.b1);
    }
}

/// The weights of one block of four hidden units: `(w2, w1)`.
#[inline(always)]
fn weight_block<F: Float, const N: usize>(nw: &Narrow<'_, F>, h: usize, c: usize) -> ([[F; 4]; N], [[F; N]; 4]) {
    let mut w2 = [[F::zero(); 4]; N];
    for o in 0..N {
        w2[o] = nw.w2[o * h + c..o * h + c + 4].try_into().expect("four units");
    }
    let mut w1 = [[F::zero(); N]; 4];
    for r in 0..4 {
        w1[r] = nw.w1[(c + r) * N..(c + r + 1) * N].try_into().expect("n inputs");
    }
    (w2, w1)
}

/// `d1 = (W2^T d2) .* s` for one block of four hidden units (in the order both paths use).
#[inline(always)]
fn block_adjoint<F: Float, const N: usize>(d2: &[F; N], w2: &[[F; 4]; N], s: &[F; 4]) -> [F; 4] {
    let mut g = [F::zero(); 4];
    for o in 0..N {
        for r in 0..4 {
            g[r] += d2[o] * w2[o][r];
        }
    }
    let mut d1 = [F::zero(); 4];
    for r in 0..4 {
        d1[r] = g[r] * s[r];
    }
    d1
}

/// `d1 = (W2^T d2)_c * s` for one hidden unit `c` after the blocks of four.
#[inline(always)]
fn unit_adjoint<F: Float, const N: usize>(d2: &[F; N], nw: &Narrow<'_, F>, h: usize, c: usize, s: F) -> F {
    let mut g = F::zero();
    for o in 0..N {
        g += d2[o] * nw.w2[o * h + c];
    }
    g * s
}

#[inline(always)]
fn backward_n<F: Float, const N: usize>(
    net: &Mlp,
    params: &[F],
    kept: Kept<'_, F>,
    ybar: &[F],
    xbar: &mut [F],
    grad: ParamGrad<'_, F>,
) {
    let nw = Narrow::<F>::new::<N>(net, params);
    let h = nw.l1.n_out;
    let x: &[F; N] = kept.x[..N].try_into().expect("width checked by the caller");
    let (a1, da1) = (&kept.a1[..h], &kept.da1[..h]);
    let mut d2 = [F::zero(); N];
    for o in 0..N {
        d2[o] = ybar[o] * kept.da2[o];
    }
    // The input adjoint in `transpose_mul_acc`'s lanes: in the blocks of four, unit c adds
    // to lane c mod 4; the units after the last block add to lane 0.
    let mut acc = [[F::zero(); 4]; N];
    let full = h / 4 * 4;
    match grad {
        ParamGrad::Now(pbar) => {
            let (gw1, gb1, gw2, gb2) = grad_parts(nw.l1, nw.l2, N, pbar);
            for o in 0..N {
                gb2[o] += d2[o];
            }
            let mut c = 0;
            while c < full {
                // All loads first, then arithmetic, then stores: a store into the gradient
                // before a later load would have to be assumed to alias it, which keeps the
                // compiler from turning the four units into one vector operation.
                let a: [F; 4] = a1[c..c + 4].try_into().expect("four units");
                let s: [F; 4] = da1[c..c + 4].try_into().expect("four units");
                let mut g = GradBlock::<F, N>::load(gw2, gw1, gb1, h, c);
                let (w2, w1) = weight_block::<F, N>(&nw, h, c);

                for o in 0..N {
                    for r in 0..4 {
                        g.g2[o][r] += d2[o] * a[r];
                    }
                }
                let d1 = block_adjoint(&d2, &w2, &s);
                for r in 0..4 {
                    g.b1[r] += d1[r];
                    for j in 0..N {
                        g.g1[r][j] += d1[r] * x[j];
                        acc[j][r] += d1[r] * w1[r][j];
                    }
                }

                g.store(gw2, gw1, gb1, h, c);
                c += 4;
            }
            while c < h {
                for o in 0..N {
                    gw2[o * h + c] += d2[o] * a1[c];
                }
                let d1 = unit_adjoint(&d2, &nw, h, c, da1[c]);
                gb1[c] += d1;
                for j in 0..N {
                    gw1[c * N + j] += d1 * x[j];
                    acc[j][0] += d1 * nw.w1[c * N + j];
                }
                c += 1;
            }
        }
        ParamGrad::Pending(buf) => {
            buf.extend_from_slice(&d2);
            buf.extend_from_slice(x);
            buf.extend_from_slice(a1);
            let start = buf.len();
            buf.resize(start + h, F::zero());
            let d1s = &mut buf[start..start + h];
            let mut c = 0;
            while c < full {
                let s: [F; 4] = da1[c..c + 4].try_into().expect("four units");
                let (w2, w1) = weight_block::<F, N>(&nw, h, c);
                let d1 = block_adjoint(&d2, &w2, &s);
                for r in 0..4 {
                    for j in 0..N {
                        acc[j][r] += d1[r] * w1[r][j];
                    }
                }
                d1s[c..c + 4].copy_from_slice(&d1);
                c += 4;
            }
            while c < h {
                let d1 = unit_adjoint(&d2, &nw, h, c, da1[c]);
                d1s[c] = d1;
                for j in 0..N {
                    acc[j][0] += d1 * nw.w1[c * N + j];
                }
                c += 1;
            }
        }
    }
    for j in 0..N {
        xbar[j] += (acc[j][0] + acc[j][2]) + (acc[j][1] + acc[j][3]);
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{Activation, Init, Mlp};

    /// A step's worth of backward passes with their parameter gradients left pending and
    /// flushed at the end adds exactly (bit for bit) what the passes add one by one, for
    /// every input width and a hidden width with a remainder after the blocks of four.
    #[test]
    fn pending_gradients_flush_to_the_same_bits() {
        for (n, h) in [(1, 9), (2, 50), (3, 7), (4, 12)] {
            let net = Mlp::with_hidden(&[n, h, n], Activation::Tanh).unwrap();
            let p = net.init_params(Init::GlorotUniform, 11, 1.0);
            let base: Vec<f64> = (0..p.len()).map(|i| 0.01 * (i as f64).sin()).collect();
            let (mut now, mut later) = (base.clone(), base.clone());
            let (mut xbar_now, mut xbar_later) = (vec![0.0; n], vec![0.0; n]);
            let mut pending = Vec::new();
            for stage in 0..6 {
                let x: Vec<f64> = (0..n).map(|i| 0.7 * ((stage * n + i) as f64).cos()).collect();
                let ybar: Vec<f64> = (0..n).map(|i| 1.3 * ((stage + 2 * i) as f64).sin()).collect();
                let mut y = vec![0.0; n];
                let mut record = vec![0.0; net.record_len()];
                net.forward_record(&p, &x, &mut y, &mut record);
                assert!(net.backward_record_fused(&p, &record, &ybar, &mut xbar_now, &mut now));
                assert!(net.backward_record_pending(&p, &record, &ybar, &mut xbar_later, &mut pending));
            }
            assert_eq!(later, base, "nothing is added before the flush");
            net.flush_pending(&mut pending, &mut later);
            assert!(pending.is_empty());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&now), bits(&later), "n {n}, h {h}");
            assert_eq!(bits(&xbar_now), bits(&xbar_later), "n {n}, h {h}");
            assert_ne!(now, base);
        }
    }

    #[test]
    fn networks_without_the_fused_pass_decline() {
        let net = Mlp::with_hidden(&[2, 5, 5, 2], Activation::Tanh).unwrap();
        let p = net.init_params(Init::GlorotUniform, 1, 1.0);
        let record = vec![0.0; net.record_len()];
        let (mut xbar, mut pending) = (vec![0.0; 2], Vec::new());
        assert!(!net.backward_record_pending(&p, &record, &[1.0, 1.0], &mut xbar, &mut pending));
        assert!(pending.is_empty());
        assert_eq!(xbar, [0.0, 0.0]);
    }
}
